/**
 * What only the built-in impl's concrete tables show (family S, docs/SPEC.md):
 *
 *   reserved       no present entry has a reserved bit set (SDM §4.5.4: the walk faults)
 *   ps-level       PS only where the CPU allows a leaf: never in a pgd/p4d entry, a PUD
 *                  leaf only with GB pages, a PMD leaf only with PSE
 *   table-flags    kernel-half table entries are _KERNPG_TABLE (present, RW, accessed,
 *                  dirty; no NX, no US): the kernel never restricts at table level, so the
 *                  leaf decides; user-half ones are _PAGE_TABLE (US too, or no user access
 *                  passes the walk), and a KPTI kernel copy's top-level ones (and its ASI
 *                  root's) carry NX as well (__pti_set_user_pgtbl), the user copy's not
 *   table-frame    a table entry points into the table pool
 *   leaf-frame     a leaf, or a non-present entry keeping a frame, maps simulated memory only
 *   non-present    a non-present entry keeping a frame is a PTE, PMD or PUD entry (CPA
 *                  clears P only on leaves) and, at 2M/1G, has PS clear (as CPA writes it)
 *   kernel4k       _PAGE_KERNEL_4K (bit 11) only on 4K entries: set_memory_4k splits down
 *                  to 4K and collapse refuses kept-4K blocks, so no large entry has it
 *   one-parent     every table hangs from exactly one entry; with isolation a top-level
 *                  entry that is the copy of its source root's (isolation.ts `mirrored`)
 *                  shares the source's tables on purpose, so the walk leaves them to the
 *                  source, and a diverged copy pointing at them is a second parent
 *   not-allocated  every reachable table is allocated (a freed table still linked is a
 *                  use-after-free of a page-table page)
 *   leaked         every allocated table is reachable from its parent entry, or pending,
 *                  or is a top-level table: init_mm's, and with isolation roots 1 and 2
 *                  and each process's three (the walk starts at each of them)
 *   pending        a table pending free (spec/contracts/flush.ts, deferred frees) is
 *                  allocated, unlinked, empty and listed once
 *   empty-table    no reachable table but the pgd is empty (emptied tables are freed);
 *                  not under the linux profile, where vunmap keeps every table it empties
 *                  (mm/vmalloc.c: the kernel's behaviour, not corruption)
 *   live-count     each table's live-entry count equals its non-zero entries (present, or
 *                  non-present keeping a frame: linux profile)
 *   pool-count     the pool's in-use count equals the allocated slots but roots 1 and 2
 *                  (they count in no table total: contracts/isolation.ts "Tables"), all
 *                  inside the pool
 *   walk-cache     every paging-structure-cache entry names a pool slot, and one whose slot
 *                  was not freed since it was cached names an allocated table of its level
 *                  and first page that is in place or pending free (a table unlinked any
 *                  other way is one the impl forgot to free or defer); whether it is
 *                  'freed' is L4's concern, not the tables'
 *
 * With a scope, the walk visits only the entries intersecting it (the fuzzer's
 * incremental check); the per-slot checks (leaked, empty-table, pool-count) are cheap
 * and always run over every slot.
 */
import { pfnSpan, pfnToHex, upperHalfStart, vpnToHex } from '../spec/address.ts';
import type { CheckScope, Witness } from '../spec/invariant.ts';
import type { PageTableSystem } from '../spec/system.ts';
import * as x86 from './arch/x86_64/entry.ts';
import { rootEntryVpn } from './abstract.ts';
import { leafPfn } from './radix.ts';
import { RadixSystem } from './system.ts';
import * as tables from './tables.ts';
import type { TablePool } from './tables.ts';
import type { Isolation } from './isolation.ts';

// Module-local copies: imported bindings are live (a getter per use once transpiled), and
// the fuzzer runs this after every command.
const { _PAGE_KERNEL_4K, _PAGE_PRESENT, _PAGE_PSE, HI_NX, HI_PFN_MASK, LO_FLAGS_MASK, hasReservedBits, reservedMask } = x86;
const KERNPG_TABLE_LO = x86._KERNPG_TABLE.lo;
const PAGE_TABLE_LO = x86._PAGE_TABLE.lo;
const { SPAN, isLeafAt } = tables;

export type TableCheck =
  | 'reserved' | 'ps-level' | 'table-flags' | 'table-frame' | 'leaf-frame' | 'one-parent' | 'not-allocated'
  | 'leaked' | 'pending' | 'empty-table' | 'live-count' | 'pool-count' | 'non-present' | 'kernel4k' | 'walk-cache';

export interface TableFinding extends Witness {
  readonly check: TableCheck;
}

interface Walk {
  readonly sys: RadixSystem;
  /** reservedMask(level, leaf) for this machine, index level * 2 + (leaf ? 1 : 0). */
  readonly reserved: readonly x86.ReservedMask[];
  readonly pool: TablePool;
  readonly lo: number;
  readonly hi: number;
  readonly seen: Uint8Array;
  readonly out: TableFinding[];
  /** The isolation capability, whose top-level tables copy entries of one another. */
  readonly iso: Isolation | undefined;
  /** The first page of the kernel half: table entries below it are user tables. */
  readonly kernelHalf: number;
  /** Per slot, 1 for a top-level table whose user-half entries carry NX. */
  readonly nxUser: Uint8Array;
}

const LEVEL_NAMES = ['', 'pte', 'pmd', 'pud', 'p4d', 'pgd'];

function levelName(level: number, levels: number): string {
  return level === levels ? 'pgd' : LEVEL_NAMES[level]!;
}

/** Findings on the tables of `system` (the built-in impl only), empty when they are sound. */
export function checkTables(system: PageTableSystem, scope?: CheckScope): TableFinding[] {
  if (!(system instanceof RadixSystem)) throw new TypeError('checkTables reads the built-in impl\'s tables; this system is not one');
  const pool = system.tables();
  const out: TableFinding[] = [];
  const w: Walk = {
    sys: system, pool, out,
    lo: scope?.vpn ?? 0,
    hi: scope === undefined ? Infinity : scope.vpn + scope.pages,
    seen: new Uint8Array(pool.capacity),
    reserved: Array.from({ length: 12 }, (_, i) => reservedMask(Math.max(1, i >> 1) as 1, (i & 1) === 1, system.config.maxPhysBits)),
    iso: system.isolation,
    kernelHalf: upperHalfStart(system.config.levels),
    nxUser: new Uint8Array(pool.capacity),
  };
  const tops = [0, ...(system.isolation?.topTables() ?? []).map((t) => {
    if (t.nxUser) w.nxUser[t.slot] = 1;
    return t.slot;
  })];
  checkSlots(pool, system.config.levels, system.profile === 'linux', tops, out);
  checkWalkCaches(system, pool, out);
  for (const slot of tops) visitTable(w, slot, system.config.levels, 0);
  return out;
}

/** walk-cache: the paging-structure caches against the pool (a handful of entries: flushes empty them). */
function checkWalkCaches(sys: RadixSystem, pool: TablePool, out: TableFinding[]): void {
  const cached = sys.cachedTables();
  if (cached.length === 0) return;
  const pending = new Set(pool.pending);
  for (const t of cached) {
    const span = SPAN[(t.level + 1) as 2]!;
    const at = `cpu ${t.cpu}'s cached level-${t.level} table entry of root ${t.root} at ${vpnToHex(t.vpn)}`;
    const bad = (detail: string): void => void out.push({ check: 'walk-cache', root: t.root, vpn: t.vpn, pages: span, detail: `${at} ${detail}` });
    if (t.vpn % span !== 0) bad(`is not aligned to the ${span} pages its table covers`);
    if (t.slot < 0 || t.slot >= pool.capacity || t.slot >= pool.slotLimit) {
      bad(`names slot ${t.slot}, outside the table pool`);
      continue;
    }
    const gen = pool.gen[t.slot]!;
    if (gen < t.gen) bad(`holds generation ${t.gen} of slot ${t.slot}, which is only at ${gen}`);
    if (gen !== t.gen) continue;
    const frame = tableFrame(pool, t.slot);
    if (!pool.allocated[t.slot]) out.push({ check: 'walk-cache', frames: frame, detail: `${at} names frame ${pfnToHex(pool.slotPfn(t.slot))}, free in the pool though never freed since it was cached` });
    else if (pool.level[t.slot] !== t.level || pool.base[t.slot] !== t.vpn) out.push({ check: 'walk-cache', frames: frame, detail: `${at} names the level-${pool.level[t.slot]} table of ${vpnToHex(pool.base[t.slot]!)} in frame ${pfnToHex(pool.slotPfn(t.slot))}` });
    else if (sys.tableAt(t.vpn, t.level, t.root) !== t.slot && !pending.has(t.slot)) out.push({ check: 'walk-cache', frames: frame, detail: `${at} names the table in frame ${pfnToHex(pool.slotPfn(t.slot))}, which is neither in place, pending free nor freed` });
  }
}

interface EntryAt {
  readonly vpn: number;
  readonly pages: number;
  readonly frames: { pfn: number; count: number }[];
}

function tableFrame(pool: TablePool, slot: number): { pfn: number; count: number }[] {
  return [{ pfn: pool.slotPfn(slot), count: 1 }];
}

function entryAt(pool: TablePool, slot: number, vpn: number, span: number): EntryAt {
  return { vpn, pages: span, frames: tableFrame(pool, slot) };
}

function entryName(name: string, i: number, pool: TablePool, slot: number): string {
  return `${name} entry ${i} of the table in frame ${pfnToHex(pool.slotPfn(slot))}`;
}

function checkSlots(pool: TablePool, levels: number, keepsEmpty: boolean, tops: readonly number[], out: TableFinding[]): void {
  const top = new Uint8Array(pool.capacity);
  for (const s of tops) top[s] = 1;
  const pending = new Uint8Array(pool.capacity);
  for (const s of pool.pending) {
    const name = `${levelName(pool.level[s]!, levels)} table in frame ${pfnToHex(pool.slotPfn(s))}`;
    if (top[s]) out.push({ check: 'pending', frames: tableFrame(pool, s), detail: `the top-level ${name} of a live root is listed as pending free` });
    else if (pending[s]) out.push({ check: 'pending', frames: tableFrame(pool, s), detail: `${name} is listed twice as pending free` });
    else if (!pool.allocated[s]) out.push({ check: 'pending', frames: tableFrame(pool, s), detail: `${name} is pending free but already free in the pool` });
    pending[s] = 1;
  }
  let allocated = 0;
  for (let s = 0; s < pool.highWater; s++) {
    if (!pool.allocated[s]) continue;
    allocated++;
    if (top[s]) continue;
    const name = `${levelName(pool.level[s]!, levels)} table in frame ${pfnToHex(pool.slotPfn(s))}`;
    const linked = pool.isLinked(s);
    if (pending[s]) {
      // Unlinked and empty, it only waits for the flush that purges the paging-structure caches.
      if (linked) out.push({ check: 'pending', frames: tableFrame(pool, s), detail: `${name} is pending free but its parent entry still points to it` });
      if (pool.live[s] !== 0) out.push({ check: 'pending', frames: tableFrame(pool, s), detail: `${name} is pending free but has ${pool.live[s]} live entries` });
    } else if (!linked) {
      out.push({ check: 'leaked', frames: tableFrame(pool, s), detail: `${name} is allocated but its parent entry does not point to it, and no flush is awaited for it (leaked)` });
    } else if (pool.live[s] === 0 && !keepsEmpty) {
      out.push({ check: 'empty-table', vpn: pool.base[s]!, pages: pool.spanEnd(s) - pool.base[s]!, frames: tableFrame(pool, s), detail: `${name} is reachable but empty (should have been freed)` });
    }
  }
  if (!pool.allocated[0] || pool.level[0] !== levels) out.push({ check: 'pool-count', frames: tableFrame(pool, 0), detail: `init_mm's pgd (slot 0) is not an allocated level-${levels} table` });
  if (allocated !== pool.inUse + pool.uncounted) out.push({ check: 'pool-count', detail: `the pool counts ${pool.inUse} tables in use and ${pool.uncounted} outside its count, but ${allocated} slots are allocated` });
  if (pool.highWater > pool.slotLimit) out.push({ check: 'pool-count', detail: `tables live beyond the pool: ${pool.highWater} slots used, the pool has ${pool.poolCount} and ${pool.uncounted} outside its count` });
}

/** leaf-frame: the frames an entry keeps (a leaf's, or a non-present entry's) lie in simulated memory. */
function checkLeafFrame(w: Walk, slot: number, i: number, level: number, vpn: number, lo: number, hi: number): void {
  const { pool, sys } = w;
  const span = SPAN[level as 1]!;
  const frames = sys.config.frames;
  const pfn = leafPfn(lo, hi, level);
  if (pfn + span > frames) w.out.push({ check: 'leaf-frame', ...entryAt(pool, slot, vpn, span), detail: `${entryName(levelName(level, sys.config.levels), i, pool, slot)} maps frames ${pfnSpan(pfn, span)} beyond memory at ${pfnToHex(frames)} (${frames} frames)` });
}

/** A non-zero entry with P clear: a PTE/PMD/PUD that keeps its frame, PS clear, kernel4k only at 4K. */
function checkNonPresent(w: Walk, slot: number, i: number, level: number, vpn: number, lo: number, hi: number): void {
  const { pool, out, sys } = w;
  const span = SPAN[level as 1]!;
  const name = entryName(levelName(level, sys.config.levels), i, pool, slot);
  if (level > 3) {
    out.push({ check: 'non-present', ...entryAt(pool, slot, vpn, span), detail: `${name} is non-present but not zero: only PTE, PMD and PUD entries keep a frame with P clear` });
    return;
  }
  if (level > 1 && (lo & _PAGE_PSE) !== 0) out.push({ check: 'non-present', ...entryAt(pool, slot, vpn, span), detail: `${name} is non-present with PS set (CPA clears PS with P on a large entry; set, it would read as PROTNONE)` });
  if (level > 1 && (lo & _PAGE_KERNEL_4K) !== 0) out.push({ check: 'kernel4k', ...entryAt(pool, slot, vpn, span), detail: `${name} is a large non-present entry with _PAGE_KERNEL_4K (bit 11), which only 4K entries may carry` });
  checkLeafFrame(w, slot, i, level, vpn, lo, hi);
}

function visitTable(w: Walk, slot: number, level: number, base: number): void {
  const { pool, out, sys } = w;
  const levels = sys.config.levels;
  const name = levelName(level, levels);
  if (w.seen[slot]) {
    out.push({ check: 'one-parent', frames: tableFrame(pool, slot), detail: `${name} table in frame ${pool.slotPfn(slot)} is linked from more than one entry` });
    return;
  }
  w.seen[slot] = 1;
  if (!pool.allocated[slot]) out.push({ check: 'not-allocated', vpn: base, frames: tableFrame(pool, slot), detail: `${name} table in frame ${pool.slotPfn(slot)} is reachable but free in the pool (freed while still linked)` });
  if (pool.level[slot] !== level) out.push({ check: 'one-parent', vpn: base, frames: tableFrame(pool, slot), detail: `table in frame ${pool.slotPfn(slot)} is used as a ${name} table but was allocated as level ${pool.level[slot]}` });
  const span = SPAN[level as 1]!;
  const words = pool.words;
  const { features } = sys.config;
  let used = 0;
  for (let i = 0; i < 512; i++) {
    const off = slot * 1024 + i * 2;
    const lo = words[off]!;
    const hi = words[off + 1]!;
    if ((lo | hi) === 0) continue;
    used++;
    const vpn = level === levels ? rootEntryVpn(levels, i) : base + i * span;
    if (vpn + span <= w.lo || vpn >= w.hi) continue;
    // The source root's walk checks what a copied top-level entry leads to (init_mm's is no copy).
    if (level === levels && slot !== 0 && w.iso !== undefined && w.iso.mirrored(slot, i)) continue;
    // A non-present entry means nothing to the MMU: only its slot, frame and software bits count.
    if (!(lo & _PAGE_PRESENT)) {
      checkNonPresent(w, slot, i, level, vpn, lo, hi);
      continue;
    }
    // The witness place (entryAt) and its wording (entryName) are built only for a finding: this loop runs over every entry in scope.
    const ps = (lo & _PAGE_PSE) !== 0 && level > 1;
    if (ps && (level >= 4 || (level === 3 && !features.gbpages) || (level === 2 && !features.pse))) {
      out.push({ check: 'ps-level', ...entryAt(pool, slot, vpn, span), detail: `${entryName(name, i, pool, slot)} has PS set, but ${level >= 4 ? `a ${name} entry cannot map a page` : `the CPU has no ${level === 3 ? 'GB pages' : 'PSE'}`}` });
    }
    const leaf = isLeafAt(lo, level);
    if (hasReservedBits(lo, hi, w.reserved[level * 2 + (leaf ? 1 : 0)]!)) out.push({ check: 'reserved', ...entryAt(pool, slot, vpn, span), detail: `${entryName(name, i, pool, slot)} has reserved bits set` });
    if (leaf) {
      checkLeafFrame(w, slot, i, level, vpn, lo, hi);
      if (level > 1 && (lo & _PAGE_KERNEL_4K) !== 0) out.push({ check: 'kernel4k', ...entryAt(pool, slot, vpn, span), detail: `${entryName(name, i, pool, slot)} is a large leaf with _PAGE_KERNEL_4K (bit 11), which only 4K entries may carry` });
      continue;
    }
    const user = vpn < w.kernelHalf;
    const wantLo = user ? PAGE_TABLE_LO : KERNPG_TABLE_LO;
    const wantHi = user && level === levels && w.nxUser[slot] ? HI_NX : 0;
    if ((lo & LO_FLAGS_MASK) !== wantLo || ((hi & ~HI_PFN_MASK) >>> 0) !== wantHi) {
      const want = `${user ? '_PAGE_TABLE' : '_KERNPG_TABLE'} (0x${wantLo.toString(16)}${wantHi ? ' with NX' : ''})`;
      out.push({ check: 'table-flags', ...entryAt(pool, slot, vpn, span), detail: `${entryName(name, i, pool, slot)} has flags lo 0x${(lo & LO_FLAGS_MASK).toString(16)} hi 0x${((hi & ~HI_PFN_MASK) >>> 0).toString(16)}, not ${want}: the table entries of its half do not restrict or widen what the leaves grant` });
    }
    const child = pool.childSlot(lo, hi);
    if (child < 0 || child >= pool.slotLimit || child >= pool.capacity) {
      out.push({ check: 'table-frame', ...entryAt(pool, slot, vpn, span), detail: `${entryName(name, i, pool, slot)} points to frame ${pool.slotPfn(child)}, outside the table pool` });
      continue;
    }
    visitTable(w, child, level - 1, vpn);
  }
  if (used !== pool.live[slot]) out.push({ check: 'live-count', vpn: base, frames: tableFrame(pool, slot), detail: `${name} table in frame ${pool.slotPfn(slot)} counts ${pool.live[slot]} live entries but has ${used} non-zero ones` });
}
