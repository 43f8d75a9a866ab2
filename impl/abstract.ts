/**
 * The abstraction function: what the concrete tables mean as the spec's abstract state.
 * The leaves come from a full walk from init_mm's pgd, combining permissions over the
 * levels as the MMU does (RW and US ANDed, NX ORed: Intel SDM §4.6.1; the kernel's
 * ptdump does the same in effective_prot()), so an implementation that restricts at a
 * table level is read correctly. Leaves come out in vpn order, exactly one abstract leaf
 * per leaf entry. The frame runs come from the boot runs and the removed frames.
 *
 * Empty linked tables (the linux profile's vunmap keeps every table it empties) map
 * nothing: the walk passes through them, and they count in tablesInUse (the pool's
 * in-use count) as the kernel's kept tables do.
 */
import { VPN_LIMIT, type Pfn, type Vpn } from '../spec/address.ts';
import type { FrameRun, Leaf } from '../spec/state.ts';
import * as x86 from './arch/x86_64/entry.ts';
import * as prot from './prot.ts';
import * as radixModule from './radix.ts';
import type { Radix } from './radix.ts';
import type { Memtypes } from './memtype.ts';
import type { FreeFrames } from './policy.ts';
import type { Members } from './runs.ts';
import * as tables from './tables.ts';

// Module-local copies: imported bindings are live (a getter per use once transpiled).
const { _PAGE_PRESENT, _PAGE_RW, _PAGE_USER, HI_NX } = x86;
const { PROTS, leafCode } = prot;
const { leafPfn } = radixModule;
const { LEVEL_SIZE, SPAN, isLeafAt } = tables;

/** Vpn of entry `idx` of the top-level table: the lower half for 0..255, the sign-extended upper half above. */
export function rootEntryVpn(levels: number, idx: number): Vpn {
  const span = SPAN[levels as 4]!;
  return idx < 256 ? idx * span : VPN_LIMIT - (512 - idx) * span;
}

/**
 * The leaves of the tables, in vpn order. `previous` (an earlier walk of the same tables)
 * only saves allocation: a leaf equal in every field to the previous walk's leaf at the
 * same vpn is that object again (leaves are immutable values, prots are interned), so a
 * walk after a small change allocates little beyond the array itself.
 */
export function walkLeaves(radix: Radix, previous: readonly Leaf[] = []): Leaf[] {
  return walkEntries(radix, previous).leaves;
}

/**
 * The leaves and, beside them, the non-present entries that keep a frame (linux profile:
 * AbstractRoot.nonPresent), both in vpn order, from one walk.
 */
export function walkEntries(radix: Radix, previous: readonly Leaf[] = []): { leaves: Leaf[]; nonPresent: Leaf[] } {
  const out: Leaf[] = [];
  const nonPresent: Leaf[] = [];
  visit(radix, { out, nonPresent, previous, at: 0, lo: 0, hi: VPN_LIMIT }, 0, radix.levels, 0, true, true, false, null);
  return { leaves: out, nonPresent };
}

/**
 * walkEntries after entries were written in the vpn ranges `dirty` only (sorted, disjoint
 * [start, end) pairs, tables.ts takeDirty), from the walk before them (`leaves`,
 * `nonPresent`): equal to a full walk, at the cost of the ranges. A leaf is the entry of one
 * table, and it changes only when that entry or one above it is written, whose ranges hold
 * the leaf's first page; so the leaves starting in a range are walked again from the root,
 * and the others are the previous walk's. From init_mm's pgd, or (`slot`, `take`) from
 * another top-level table under the entries `take` accepts, as walkRoot walks it.
 */
export function rewalkEntries(
  radix: Radix, leaves: readonly Leaf[], nonPresent: readonly Leaf[], dirty: readonly number[], slot = 0, take: ((idx: number) => boolean) | null = null,
): { leaves: Leaf[]; nonPresent: Leaf[] } {
  const o: WalkOut = { out: [], nonPresent: [], previous: leaves, at: 0, lo: 0, hi: 0 };
  let kept = 0;
  let keptNp = 0;
  for (let k = 0; k < dirty.length; k += 2) {
    o.lo = dirty[k]!;
    o.hi = dirty[k + 1]!;
    kept = keep(leaves, kept, o.lo, o.out);
    keptNp = keep(nonPresent, keptNp, o.lo, o.nonPresent);
    o.at = kept;
    visit(radix, o, slot, radix.levels, 0, true, true, false, take);
    kept = firstFrom(leaves, kept, o.hi);
    keptNp = firstFrom(nonPresent, keptNp, o.hi);
  }
  keep(leaves, kept, VPN_LIMIT, o.out);
  keep(nonPresent, keptNp, VPN_LIMIT, o.nonPresent);
  return { leaves: o.out, nonPresent: o.nonPresent };
}

/** The index of the first of `list` (sorted by vpn) from `from` on whose vpn is `vpn` or above. */
function firstFrom(list: readonly Leaf[], from: number, vpn: Vpn): number {
  let lo = from;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (list[mid]!.vpn < vpn) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** `out` gets the leaves of `list` from index `from` up to the first at `vpn` or above; returns that index. */
function keep(list: readonly Leaf[], from: number, vpn: Vpn, out: Leaf[]): number {
  const end = firstFrom(list, from, vpn);
  for (let i = from; i < end; i++) out.push(list[i]!);
  return end;
}

/**
 * The leaves and non-present entries under the top-level entries `take` accepts of the
 * top-level table `slot` (a root's own slots: spec/state.ts AbstractRoot.leaves).
 */
export function walkRoot(radix: Radix, slot: number, take: (idx: number) => boolean): { leaves: Leaf[]; nonPresent: Leaf[] } {
  const out: Leaf[] = [];
  const nonPresent: Leaf[] = [];
  visit(radix, { out, nonPresent, previous: [], at: 0, lo: 0, hi: VPN_LIMIT }, slot, radix.levels, 0, true, true, false, take);
  return { leaves: out, nonPresent };
}

interface WalkOut {
  readonly out: Leaf[];
  readonly nonPresent: Leaf[];
  readonly previous: readonly Leaf[];
  /** Index of the first previous leaf not below the vpn the walk has reached. */
  at: number;
  /** The pages walked: only the entries meeting [lo, hi), and of them the ones starting there. */
  lo: Vpn;
  hi: Vpn;
}

/** The leaf, or the previous walk's equal leaf at the same vpn. */
function leafOf(o: WalkOut, vpn: Vpn, pfn: number, size: Leaf['size'], p: Leaf['prot']): Leaf {
  const prev = o.previous;
  let i = o.at;
  while (i < prev.length && prev[i]!.vpn < vpn) i++;
  o.at = i;
  const old = prev[i];
  return old !== undefined && old.vpn === vpn && old.pfn === pfn && old.size === size && old.prot === p ? old : { vpn, pfn, size, prot: p };
}

function visit(radix: Radix, o: WalkOut, slot: number, level: number, base: Vpn, rw: boolean, us: boolean, nx: boolean, take: ((idx: number) => boolean) | null): void {
  const pool = radix.pool;
  const w = pool.words;
  const span = SPAN[level as 1]!;
  const leafOnly = radix.mutant === 'leaf-only-permission';
  const top = level === radix.levels;
  // The entries meeting [o.lo, o.hi): below the top, from the table's base; at the top the
  // halves lie apart, so the whole table unless the range is inside one half.
  let first = 0;
  let last = 511;
  if (!top) {
    first = o.lo <= base ? 0 : Math.min(512, Math.floor((o.lo - base) / span));
    last = Math.min(511, Math.floor((o.hi - 1 - base) / span));
  } else if ((o.hi <= VPN_LIMIT / 2) === (o.lo < VPN_LIMIT / 2)) {
    first = Math.floor(o.lo / span) % 512;
    last = Math.floor((o.hi - 1) / span) % 512;
  }
  for (let i = first; i <= last; i++) {
    if (take !== null && !take(i)) continue;
    const off = slot * 1024 + i * 2;
    const lo = w[off]!;
    const hi = w[off + 1]!;
    if ((lo | hi) === 0) continue;
    const vpn = top ? rootEntryVpn(level, i) : base + i * span;
    if (vpn >= o.hi || vpn + span <= o.lo) continue;
    if (!(lo & _PAGE_PRESENT)) {
      // Non-zero but not present: an entry that keeps its frame and attributes (set_direct_map_invalid_noflush under linux).
      if (level <= 3 && vpn >= o.lo) o.nonPresent.push({ vpn, pfn: leafPfn(lo, hi, level), size: LEVEL_SIZE[level]!, prot: PROTS[leafCode(lo, hi, level > 1, rw, us, nx)]! });
      continue;
    }
    if (isLeafAt(lo, level)) {
      if (vpn < o.lo) continue;
      const code = leafOnly ? leafCode(lo, hi, level > 1, true, true, false) : leafCode(lo, hi, level > 1, rw, us, nx);
      o.out.push(leafOf(o, vpn, leafPfn(lo, hi, level), LEVEL_SIZE[level]!, PROTS[code]!));
      continue;
    }
    const child = pool.childSlot(lo, hi);
    // A table outside the pool (a corrupted entry) means nothing here; checkTables reports it.
    if (level === 1 || child < 0 || child >= pool.capacity) continue;
    visit(radix, o, child, level - 1, vpn, rw && (lo & _PAGE_RW) !== 0, us && (lo & _PAGE_USER) !== 0, nx || (hi & HI_NX) !== 0, null);
  }
}

/**
 * The abstract frame runs: the boot runs (sorted by pfn) with noDirectMap as `removed`
 * says now, each frame's reserved memory type (linux profile), and the use of the frames
 * the page allocator and memory hotplug move (a boot 'free', 'data' or 'absent' frame is
 * 'free' exactly when `free` holds it now, 'absent' when `free.absent` does, else 'data':
 * allocFrames, freeFrames, addMemory, removeMemory), in the canonical form of
 * spec/contracts/directmap.ts: in pfn order, no empty run, neighbours with the same use
 * and flags (spec/state.ts sameFrameFacts) merged.
 */
export function frameRuns(boot: readonly FrameRun[], removed: Members, memtypes: Memtypes, free: FreeFrames): FrameRun[] {
  const absent = free.absent;
  const out: FrameRun[] = [];
  const emit = (r: FrameRun, pfn: Pfn, count: number): void => {
    const noDirectMap = removed.first(pfn, 1) >= 0;
    const memtype = memtypes.of(pfn);
    const moves = r.use === 'free' || r.use === 'data' || r.use === 'absent';
    const use = moves ? (free.first(pfn, 1) >= 0 ? 'free' : absent.first(pfn, 1) >= 0 ? 'absent' : 'data') : r.use;
    const last = out[out.length - 1];
    if (
      last !== undefined && last.pfn + last.count === pfn && last.use === use && last.sensitive === r.sensitive &&
      last.noDirectMap === noDirectMap && last.memtype === memtype
    ) {
      out[out.length - 1] = { ...last, count: last.count + count };
    } else {
      // memtype absent when WB, as the spec's runs have it.
      out.push({ pfn, count, use, sensitive: r.sensitive, noDirectMap, ...(memtype === undefined ? {} : { memtype }) });
    }
  };
  // Where any of the per-frame sets starts or ends: between two cuts every frame has the same facts.
  const cuts = [...new Set([removed, memtypes.wc, memtypes.ucMinus, free, absent].flatMap((set) => set.map((start, count) => [start, start + count]).flat()))].sort((a, b) => a - b);
  let k = 0;
  for (const r of boot) {
    const end = r.pfn + r.count;
    for (let p = r.pfn; p < end; ) {
      while (k < cuts.length && cuts[k]! <= p) k++;
      const next = Math.min(cuts[k] ?? end, end);
      emit(r, p, next - p);
      p = next;
    }
  }
  return out;
}
