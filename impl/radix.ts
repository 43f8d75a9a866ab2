/**
 * The radix tree of init_mm: the walk, leaf installation, split_large_page,
 * collapse_large_pages and the range walks (unmap, change_page_attr) over the tables of
 * the pool. Every range walk visits only the entries that intersect the range, so its
 * cost grows with the entries touched, not the pages covered: a range inside one 1G leaf
 * is one entry.
 *
 * Leaves are written in their canonical encoding (prot.ts); table entries are
 * _KERNPG_TABLE (RW, no NX), so the leaf decides RW and NX (as the kernel's page tables do).
 * _KERNPG_TABLE has no US, so the walk (RW and US ANDed, NX ORed) reports no kernel-half
 * leaf as user; the policy refuses user leaves there (P6, judged on the leaf's own bits)
 * before that could matter.
 *
 * The per-frame counters (frames.ts) follow every leaf write through the pool's observer:
 * which frames are mapped, writable, executable. `written` lists the runs of leaves written
 * by the running operation so the policy checks only those. A walk over a range writes the
 * consecutive entries of one table it rewrites whole as one run (TablePool.writeRun,
 * clearRun), so that the bookkeeping is paid per run of up to 512 entries, not per entry.
 */
import { VPN_LIMIT, kernelLayout, upperHalfStart, type Pfn, type Vpn } from '../spec/address.ts';
import { mermapRegion } from '../spec/clients.ts';
import type { SystemConfig } from '../spec/state.ts';
import * as x86 from './arch/x86_64/entry.ts';
import { FrameCounters } from './frames.ts';
import type { MutantName } from './mutants.ts';
import * as prot from './prot.ts';
import * as tables from './tables.ts';
import { TablePool, type LeafObserver, type OperationObserver } from './tables.ts';

// Module-local copies: imported bindings are live (a getter per use once transpiled),
// which costs more than the table walk itself on this path.
const { _PAGE_PAT, _PAGE_PAT_LARGE, _PAGE_PRESENT, _PAGE_PSE, _PAGE_RW, _PAGE_USER, HI_NX, HI_PFN_MASK, LO_FLAGS_MASK } = x86;
const { entryPfn, lo4kToLarge, loLargeTo4k, pfnHi, pfnLo } = x86;
const KERNPG_TABLE_LO = x86._KERNPG_TABLE.lo;
const { HI_FLAGS, LO_4K, LO_LARGE, P_EXEC, P_KERNEL4K, P_PRESENT, leafCode } = prot;
const { SPAN, isLeafAt, modSpan } = tables;

/** Flags of a 2M/1G leaf's lo word: bits 0..11 and PAT at bit 12. */
const LARGE_FLAGS_MASK = LO_FLAGS_MASK | _PAGE_PAT_LARGE;

/** The frame a leaf maps (on 2M/1G leaves bit 12 is PAT, not a frame bit). */
export function leafPfn(lo: number, hi: number, level: number): Pfn {
  return entryPfn(level === 1 ? lo : lo & ~_PAGE_PAT_LARGE, hi);
}

/** The events vunmap_range prints (spec/system.ts KernelEvent). */
export type VunmapEvent = 'vunmap-huge' | 'vunmap-nonpresent' | 'bad-entry';

/** The numbers per run of Radix.writtenRuns: slot, level, n, vpn, pfn, lo, hi. */
export const WRITTEN_RUN = 7;
/** The numbers per record of Radix.written. */
const WRITTEN_REC = 6;
/** The per-operation lists longer than this are let go at the operation's end; shorter ones keep their storage for the next. */
const LIST_KEPT = 4096;

export function tableIndex(vpn: Vpn, level: number): number {
  return modSpan(Math.floor(vpn / SPAN[level as 1]!), 512);
}

/** Why applyTableFor stopped: a large entry in the way (its WARN), or no table left to allocate. */
export type ApplyStop = 'huge' | 'nomem';

export class Radix implements LeafObserver, OperationObserver {
  readonly pool: TablePool;
  readonly levels: number;
  /** Leaves per frame (MAPPED), and the WRITABLE and EXEC ones among them. */
  readonly counters: FrameCounters;
  /**
   * The runs of leaves written by the running operation, WRITTEN_REC numbers each: slot,
   * idx, n, the first entry's words and the pool's write count right after the run. The
   * first `writtenLen` numbers are this operation's: the arrays keep their storage between
   * operations (emptying one frees it, and the next operation's first push allocates
   * again) unless they grew past LIST_KEPT.
   */
  private readonly written: number[] = [];
  private writtenLen = 0;
  /** leafRuns' answers, for writtenRuns. */
  private readonly runs: number[] = [];
  /** writtenRuns' answer, WRITTEN_RUN numbers per run, valid while the pool's write count is `writtenRunsAt`. */
  readonly writtenOut: number[] = [];
  private writtenOutLen = 0;
  private writtenRunsAt = -1;
  /** Tables unlinked by huge leaves of the running map, freed by freeReplaced. */
  private readonly replaced: number[] = [];
  /**
   * The first page of each huge leaf of the running map that replaced a table: where
   * pmd_free_pte_page / pud_free_pmd_page flush one page before freeing it.
   */
  readonly replacedAt: number[] = [];
  /** __PAGE_OFFSET: a leaf at __PAGE_OFFSET + pfn is its frames' direct-map page. */
  private readonly pageOffset: Vpn;

  // The last successful lookup(): where the leaf is and its effective prot code.
  hitSlot = 0;
  hitIdx = 0;
  hitLevel = 0;
  hitCode = 0;
  /**
   * The last lookup()'s tables: walkPath[level] is the slot of the level-`level` table it
   * read, for the levels from the root down to walkedTo (the lowest it reached, found the
   * leaf in, or stopped at). The paging-structure caches are filled from it.
   */
  readonly walkPath = new Int32Array(6);
  walkedTo = 0;
  /**
   * The top-level table every walk and edit starts from (CR3): init_mm's pgd (slot 0)
   * but while the isolation capability works on another root (isolation.ts).
   */
  root = 0;
  /**
   * __pti_set_user_pgtbl's NX poisoning: while set, a top-level entry written for a
   * user-half table gets _PAGE_NX (the kernel copy of a KPTI pair).
   */
  poisonUserTop = false;
  /** The first page of the kernel half: tables below it are user tables (_PAGE_TABLE, with US). */
  private readonly kernelHalf: Vpn;
  /** The mermap region [lo, hi): its leaves map frames off the direct map by design (P7 exempts them). */
  private readonly mermapLo: Vpn;
  private readonly mermapHi: Vpn;
  /** Set when applyTableFor returns -1: why the descent stopped (the large entry is in the hit registers). */
  applyStop: ApplyStop | null = null;

  constructor(
    readonly config: SystemConfig,
    readonly mutant: MutantName | undefined,
  ) {
    this.levels = config.levels;
    this.pageOffset = kernelLayout(config.levels).pageOffset;
    this.kernelHalf = upperHalfStart(config.levels);
    const mermap = mermapRegion(config.levels, config.cpus);
    this.mermapLo = mermap.vpn;
    this.mermapHi = mermap.vpn + mermap.pages;
    this.pool = new TablePool(config.tablePool.pfn, config.tablePool.count, this);
    this.pool.ended = this;
    this.counters = new FrameCounters(config.frames);
    // init_mm's pgd: slot 0, its entry 0 at the start of the 512-entry sign-extended top.
    this.pool.alloc(this.levels, VPN_LIMIT - 512 * SPAN[this.levels as 4]!, -1, 0);
  }

  leavesChanged(slot: number, idx: number, n: number, level: number, lo: number, hi: number, delta: number): void {
    const span = SPAN[level as 1]!;
    const pfn = leafPfn(lo, hi, level);
    const vpn = this.pool.base[slot]! + idx * span;
    const code = leafCode(lo, hi, level > 1, true, true, false);
    // A process's user half is no executing side of P2 (spec/invariants/permissions.ts): its leaves count as not executable.
    const kernelHalf = vpn >= this.kernelHalf;
    const counted = kernelHalf ? code : code & ~P_EXEC;
    // The run's vpn and pfn move together: the direct-map page of its frames or not, all of them.
    const outside = vpn - pfn !== this.pageOffset;
    // P7's kernel-half mappings leave out the mermap's (a leaf wholly inside its region): the leaves [a, b) of the run.
    const a = kernelHalf ? Math.min(n, Math.max(0, Math.ceil((this.mermapLo - vpn) / span))) : n;
    const b = kernelHalf ? Math.max(a, Math.min(n, Math.floor((this.mermapHi - vpn) / span))) : n;
    if (a > 0) this.counters.add(level, pfn, a, counted, delta, outside, kernelHalf);
    if (b > a) this.counters.add(level, pfn + a * span, b - a, counted, delta, outside, false);
    if (n > b) this.counters.add(level, pfn + b * span, n - b, counted, delta, outside, kernelHalf);
    if (delta > 0) {
      const w = this.written;
      const k = this.writtenLen;
      w[k] = slot;
      w[k + 1] = idx;
      w[k + 2] = n;
      w[k + 3] = lo;
      w[k + 4] = hi;
      w[k + 5] = this.pool.writes;
      this.writtenLen = k + WRITTEN_REC;
    }
  }

  /** The running operation is over (TablePool.ended): its lists emptied, their storage kept unless an operation made them large. */
  operationEnded(): void {
    this.writtenLen = 0;
    this.writtenOutLen = 0;
    this.writtenRunsAt = -1;
    // What one operation wrote can be a million numbers: not kept past its end.
    if (this.written.length > LIST_KEPT) this.written.length = 0;
    if (this.writtenOut.length > LIST_KEPT) this.writtenOut.length = 0;
  }

  /**
   * Become a copy of `src` (the same machine) between operations, for RadixSystem.fork:
   * the tables and the counters. The rest is the running operation's (written, replaced,
   * the hit registers and the walk path, which every operation sets before it reads them).
   */
  copyFrom(src: Radix): void {
    this.pool.copyFrom(src.pool);
    this.counters.copyFrom(src.counters);
  }

  begin(): void {
    this.pool.begin();
    this.writtenLen = 0;
    this.writtenOutLen = 0;
    this.writtenRunsAt = -1;
    // Usually empty already: an empty array's length is not set again (that is not free).
    if (this.replaced.length > 0) this.replaced.length = 0;
    if (this.replacedAt.length > 0) this.replacedAt.length = 0;
  }

  /**
   * The leaves the running operation wrote, as they are now, in the order written: each
   * written run as the runs of leaves its entries hold now (tables.ts leafRuns; a later
   * write of the operation may have replaced some), as seven numbers each (WRITTEN_RUN):
   * the table's slot, the level, n (leaves), vpn and pfn of the first, its words (lo, hi).
   * Runs in tables freed since are left out. Returns how many numbers of `writtenOut`
   * hold them; computed once while nothing more is written (the policy and the isolation
   * rules both ask).
   */
  writtenRuns(): number {
    const pool = this.pool;
    if (this.writtenRunsAt === pool.writes) return this.writtenOutLen;
    const written = this.written;
    const runs = this.runs;
    let len = 0;
    for (let k = 0; k < this.writtenLen; k += WRITTEN_REC) {
      const slot = written[k]!;
      if (!pool.allocated[slot]) continue;
      const level = pool.level[slot]!;
      const idx = written[k + 1]!;
      // Nothing written in the table since the run: it is as written, one run of leaves.
      if (pool.lastWrite[slot] === written[k + 5]) {
        len = this.outRun(len, slot, level, idx, written[k + 2]!, written[k + 3]!, written[k + 4]!);
        continue;
      }
      const count = tables.leafRuns(pool.words, slot, idx, written[k + 2]!, level, runs);
      for (let r = 0; r < count; r++) len = this.outRun(len, slot, level, runs[r * 4]!, runs[r * 4 + 1]!, runs[r * 4 + 2]!, runs[r * 4 + 3]!);
    }
    this.writtenOutLen = len;
    this.writtenRunsAt = pool.writes;
    return len;
  }

  /** One run of writtenRuns' answer at `len` of writtenOut; the length after it. */
  private outRun(len: number, slot: number, level: number, idx: number, n: number, lo: number, hi: number): number {
    const out = this.writtenOut;
    out[len] = slot;
    out[len + 1] = level;
    out[len + 2] = n;
    out[len + 3] = this.entryVpn(slot, idx);
    out[len + 4] = leafPfn(lo, hi, level);
    out[len + 5] = lo;
    out[len + 6] = hi;
    return len + WRITTEN_RUN;
  }

  /** _KERNPG_TABLE, or in the user half _PAGE_TABLE (US too, or no user access could pass the walk). */
  private tableEntryLo(child: number): number {
    const user = this.pool.base[child]! < this.kernelHalf ? _PAGE_USER : 0;
    return (KERNPG_TABLE_LO | user | pfnLo(this.pool.slotPfn(child))) >>> 0;
  }

  /** The frame, and NX on a poisoned kernel copy's top-level user entry. */
  private tableEntryHi(child: number, top: boolean): number {
    const nx = top && this.poisonUserTop && this.pool.base[child]! < this.kernelHalf ? HI_NX : 0;
    return (pfnHi(this.pool.slotPfn(child)) | nx) >>> 0;
  }

  /** The frame the leaf at (slot, idx) maps. */
  leafPfnAt(slot: number, idx: number): Pfn {
    const off = slot * 1024 + idx * 2;
    return leafPfn(this.pool.words[off]!, this.pool.words[off + 1]!, this.pool.level[slot]!);
  }

  /** The own prot code of the leaf at (slot, idx). */
  leafCodeAt(slot: number, idx: number): number {
    const off = slot * 1024 + idx * 2;
    return leafCode(this.pool.words[off]!, this.pool.words[off + 1]!, this.pool.level[slot]! > 1, true, true, false);
  }

  /** Vpn mapped by entry `idx` of table `slot`. */
  entryVpn(slot: number, idx: number): Vpn {
    const level = this.pool.level[slot]!;
    // A top-level table's lower entries are the user half, not above its sign-extended base.
    if (idx < 256 && level === this.levels) return idx * SPAN[level as 1]!;
    return this.pool.base[slot]! + idx * SPAN[level as 1]!;
  }

  /** The walk: true and the hit registers set when vpn is mapped. */
  lookup(vpn: Vpn): boolean {
    const w = this.pool.words;
    let slot = this.root;
    let rw = true;
    let us = true;
    let nx = false;
    const path = this.walkPath;
    for (let level = this.levels; level >= 1; level--) {
      path[level] = slot;
      this.walkedTo = level;
      const idx = tableIndex(vpn, level);
      const off = slot * 1024 + idx * 2;
      const lo = w[off]!;
      const hi = w[off + 1]!;
      if (!(lo & _PAGE_PRESENT)) return false;
      if (isLeafAt(lo, level)) {
        this.hitSlot = slot;
        this.hitIdx = idx;
        this.hitLevel = level;
        this.hitCode = this.mutant === 'leaf-only-permission' ? leafCode(lo, hi, level > 1, true, true, false) : leafCode(lo, hi, level > 1, rw, us, nx);
        return true;
      }
      rw = rw && (lo & _PAGE_RW) !== 0;
      us = us && (lo & _PAGE_USER) !== 0;
      nx = nx || (hi & HI_NX) !== 0;
      slot = this.pool.childSlot(lo, hi);
    }
    return false;
  }

  /**
   * The slot of the level-`level` table the walk through memory reaches for vpn, or -1
   * when an entry above it is not a table entry (what a paging-structure-cache entry is
   * compared with: the table it cached is 'current' only if it is still this one).
   */
  tableAt(vpn: Vpn, level: number, root: number = this.root): number {
    const w = this.pool.words;
    let slot = root;
    for (let L = this.levels; L > level; L--) {
      const off = slot * 1024 + tableIndex(vpn, L) * 2;
      const lo = w[off]!;
      if (!(lo & _PAGE_PRESENT) || isLeafAt(lo, L)) return -1;
      slot = this.pool.childSlot(lo, w[off + 1]!);
      if (slot < 0 || slot >= this.pool.capacity) return -1;
    }
    return slot;
  }

  /**
   * lookup_address as CPA uses it: the entry at vpn that is a present leaf or a
   * non-present entry keeping a frame (linux profile), with hitSlot, hitIdx and hitLevel
   * set; false for a zero entry or a missing table. Table entries never restrict here
   * (_KERNPG_TABLE), so the entry's own bits are its prot.
   */
  lookupEntry(vpn: Vpn): boolean {
    const w = this.pool.words;
    let slot = this.root;
    for (let level = this.levels; level >= 1; level--) {
      const idx = tableIndex(vpn, level);
      const off = slot * 1024 + idx * 2;
      const lo = w[off]!;
      if (!(lo & _PAGE_PRESENT)) {
        if ((lo | w[off + 1]!) === 0) return false;
      } else if (!isLeafAt(lo, level)) {
        slot = this.pool.childSlot(lo, w[off + 1]!);
        continue;
      }
      this.hitSlot = slot;
      this.hitIdx = idx;
      this.hitLevel = level;
      return true;
    }
    return false;
  }

  /**
   * Write a leaf of `code` mapping pfn at (slot, idx), present or not. A non-present
   * entry keeps frame and attributes with P clear and, at 2M/1G, PS clear too (CPA sets
   * _PAGE_PSE only on a present large entry; the PAT bit stays at bit 12).
   */
  writeLeaf(slot: number, idx: number, level: number, pfn: Pfn, code: number, present: boolean): void {
    this.pool.set(slot, idx, (this.leafLo(level, code, present) | pfnLo(pfn)) >>> 0, (HI_FLAGS[code]! | pfnHi(pfn)) >>> 0);
  }

  /** writeLeaf of `n` entries from idx on, mapping the frames from pfn on: one run of the pool. */
  private writeLeaves(slot: number, idx: number, n: number, level: number, pfn: Pfn, code: number, present: boolean): void {
    this.pool.writeRun(slot, idx, n, this.leafLo(level, code, present), HI_FLAGS[code]!, pfn, SPAN[level as 1]!);
  }

  /** The lo-word flags of a leaf of `code` at `level`, present or not. */
  private leafLo(level: number, code: number, present: boolean): number {
    const lo = level === 1 ? LO_4K[code]! : LO_LARGE[code]!;
    return present ? lo : lo & (level === 1 ? ~_PAGE_PRESENT : ~(_PAGE_PRESENT | _PAGE_PSE));
  }

  /** The table at `level` on the walk to vpn, allocating the missing tables on the way. */
  private tableFor(vpn: Vpn, level: number): number {
    const pool = this.pool;
    let slot = this.root;
    for (let L = this.levels; L > level; L--) {
      const idx = tableIndex(vpn, L);
      const off = slot * 1024 + idx * 2;
      const lo = pool.words[off]!;
      if (lo & _PAGE_PRESENT) {
        slot = pool.childSlot(lo, pool.words[off + 1]!);
        continue;
      }
      const child = pool.alloc(L - 1, this.entryVpn(slot, idx), slot, idx);
      pool.set(slot, idx, this.tableEntryLo(child), this.tableEntryHi(child, L === this.levels));
      slot = child;
    }
    return slot;
  }

  /**
   * apply_to_page_range's descent with create (apply_to_p4d/pud/pmd_range) to the PTE table
   * of vpn: a none entry gets a new table while `mayAlloc()` allows one (else -1 with
   * applyStop 'nomem'); a 2M/1G leaf or a non-present large entry stops it (p?d_leaf's
   * WARN_ON_ONCE: -1 with applyStop 'huge', the entry in the hit registers).
   */
  applyTableFor(vpn: Vpn, mayAlloc: () => boolean): number {
    const pool = this.pool;
    this.applyStop = null;
    let slot = this.root;
    for (let L = this.levels; L > 1; L--) {
      const idx = tableIndex(vpn, L);
      const off = slot * 1024 + idx * 2;
      const lo = pool.words[off]!;
      const hi = pool.words[off + 1]!;
      if ((lo | hi) === 0) {
        if (!mayAlloc()) {
          this.applyStop = 'nomem';
          return -1;
        }
        const child = pool.alloc(L - 1, this.entryVpn(slot, idx), slot, idx);
        pool.set(slot, idx, this.tableEntryLo(child), this.tableEntryHi(child, L === this.levels));
        slot = child;
        continue;
      }
      if (!(lo & _PAGE_PRESENT) || isLeafAt(lo, L)) {
        // The mutant reads a 2M leaf as pmd_page_vaddr does a table entry: the frame it maps as a PTE table.
        if (L === 2 && (lo & _PAGE_PRESENT) !== 0 && this.mutant === 'apply-writes-through-huge-leaf') return pool.childSlot(lo, hi);
        this.hitSlot = slot;
        this.hitIdx = idx;
        this.hitLevel = L;
        this.applyStop = 'huge';
        return -1;
      }
      slot = pool.childSlot(lo, hi);
    }
    return slot;
  }

  /**
   * Install `n` leaves of `code` at `level` (1 = 4K, 2 = 2M, 3 = 1G) from vpn → pfn, all
   * in one table (the caller keeps the run inside it): one walk for the whole run.
   */
  installLeaves(vpn: Vpn, level: number, pfn: Pfn, n: number, code: number): void {
    const slot = this.tableFor(vpn, level);
    const flags = level === 1 ? LO_4K[code]! : LO_LARGE[code]!;
    const hiFlags = HI_FLAGS[code]!;
    const step = SPAN[level as 1]!;
    const idx = tableIndex(vpn, level);
    const w = this.pool.words;
    // A table (empty: map checked the range) where a huge leaf goes: only the linux
    // profile keeps such tables (vunmap frees none); vmap_try_huge_pmd / _pud free it
    // first (pmd_free_pte_page / pud_free_pmd_page, the tables under it too).
    for (let i = 0; level > 1 && i < n; i++) {
      const off = slot * 1024 + (idx + i) * 2;
      const lo = w[off]!;
      if ((lo & _PAGE_PRESENT) !== 0 && !isLeafAt(lo, level)) {
        this.freeTableTree(this.pool.childSlot(lo, w[off + 1]!));
        this.replacedAt.push(vpn + i * step);
      }
    }
    this.pool.writeRun(slot, idx, n, flags, hiFlags, pfn, step);
  }

  /**
   * Clear table `s` and every table under it (journaled, so a failed map restores them)
   * and list them for `freeReplaced`; the caller overwrites the parent entry at once.
   */
  freeTableTree(s: number): void {
    const pool = this.pool;
    const level = pool.level[s]!;
    for (let i = 0; i < 512; i++) {
      const off = s * 1024 + i * 2;
      const lo = pool.words[off]!;
      const hi = pool.words[off + 1]!;
      if ((lo | hi) === 0) continue;
      if (level > 1 && (lo & _PAGE_PRESENT) !== 0 && !isLeafAt(lo, level)) this.freeTableTree(pool.childSlot(lo, hi));
      pool.set(s, i, 0, 0);
    }
    this.replaced.push(s);
  }

  /**
   * Free the tables huge leaves replaced in the running map. Freed once its leaves are
   * all installed, so that no table of the operation reuses their slots: a rollback
   * restores a freed table's slot but not the metadata a reuse would overwrite. The pool
   * bound is judged after this, on the same count the kernel's free-first order ends at.
   */
  freeReplaced(): void {
    if (this.replaced.length === 0) return;
    for (const s of this.replaced) this.pool.free(s);
    this.replaced.length = 0;
  }

  /**
   * split_large_page: replace the 2M/1G leaf at (slot, idx) by a table of 512 leaves of
   * the next size down with every attribute kept (PAT moves from bit 12 to bit 7 for 4K
   * PTEs: pgprot_large_2_4k). A non-present large entry (linux profile, PS clear) splits
   * into 512 non-present ones the same way. Returns the new table's slot.
   */
  splitEntry(slot: number, idx: number): number {
    const pool = this.pool;
    const level = pool.level[slot]!;
    const off = slot * 1024 + idx * 2;
    const lo = pool.words[off]!;
    const hi = pool.words[off + 1]!;
    const pfn0 = leafPfn(lo, hi, level);
    const child = pool.alloc(level - 1, this.entryVpn(slot, idx), slot, idx);
    const flags = lo & LARGE_FLAGS_MASK;
    let childLo = level === 2 ? loLargeTo4k(flags) : flags;
    if (this.mutant === 'split-drops-pat') childLo &= level === 2 ? ~_PAGE_PAT : ~_PAGE_PAT_LARGE;
    let childHi = (hi & ~HI_PFN_MASK) >>> 0;
    if (this.mutant === 'split-drops-nx') childHi &= ~HI_NX;
    pool.writeRun(child, 0, 512, childLo >>> 0, childHi >>> 0, pfn0, SPAN[(level - 1) as 1]!);
    let tableLo = this.tableEntryLo(child);
    let tableHi = this.tableEntryHi(child, false);
    if (this.mutant === 'leaf-only-permission') {
      tableLo = (tableLo & ~(lo & _PAGE_RW ? 0 : _PAGE_RW)) >>> 0;
      tableHi = (tableHi | (hi & HI_NX)) >>> 0;
    }
    pool.set(slot, idx, tableLo, tableHi);
    return child;
  }

  /** First and last index of table `slot` (at `level`) intersecting [lo, hi). */
  private firstIdx(slot: number, level: number, lo: Vpn): number {
    // The user half of a top-level table (isolation's process roots).
    if (lo < this.kernelHalf && level === this.levels) return tableIndex(lo, level);
    const base = this.pool.base[slot]!;
    return lo <= base ? 0 : Math.floor((lo - base) / SPAN[level as 1]!);
  }

  private lastIdx(slot: number, level: number, hi: Vpn): number {
    if (hi - 1 < this.kernelHalf && level === this.levels) return tableIndex(hi - 1, level);
    return Math.min(511, Math.floor((hi - 1 - this.pool.base[slot]!) / SPAN[level as 1]!));
  }

  /** Whether some page of [lo, hi) has an entry: a leaf, or a non-present entry that keeps its frame (it occupies the slot). */
  anyMapped(lo: Vpn, hi: Vpn): boolean {
    return hi - lo === 1 ? this.hasEntry(lo, true) : this.mappedScan(lo, hi, true, true, this.root, this.levels);
  }

  /** Whether every page of [lo, hi) is mapped by a present leaf. */
  allMapped(lo: Vpn, hi: Vpn): boolean {
    return hi - lo === 1 ? this.hasEntry(lo, false) : this.mappedScan(lo, hi, false, false, this.root, this.levels);
  }

  /** Whether every page of [lo, hi) has an entry, a present leaf or a non-present one (protect's ENOENT). */
  allEntries(lo: Vpn, hi: Vpn): boolean {
    return hi - lo === 1 ? this.hasEntry(lo, true) : this.mappedScan(lo, hi, false, true, this.root, this.levels);
  }

  /** mappedScan of one page, as one walk down: whether it is a present leaf's, or (`nonPresent`) has a non-present entry keeping a frame. */
  private hasEntry(vpn: Vpn, nonPresent: boolean): boolean {
    const w = this.pool.words;
    let slot = this.root;
    for (let level = this.levels; level >= 1; level--) {
      const off = slot * 1024 + tableIndex(vpn, level) * 2;
      const lo = w[off]!;
      if (!(lo & _PAGE_PRESENT)) return nonPresent && (lo | w[off + 1]!) !== 0;
      if (isLeafAt(lo, level)) return true;
      slot = this.pool.childSlot(lo, w[off + 1]!);
    }
    return false;
  }

  /**
   * The walk they share: `any` (true) stops at the first mapped page, !any (false) at the
   * first hole; the answer is `any` when it stops early, !any when no entry decided it.
   * A non-present entry counts as mapped when `nonPresent`, else as a hole.
   */
  private mappedScan(lo: Vpn, hi: Vpn, any: boolean, nonPresent: boolean, slot: number, level: number): boolean {
    const last = this.lastIdx(slot, level, hi);
    for (let i = this.firstIdx(slot, level, lo); i <= last; i++) {
      const off = slot * 1024 + i * 2;
      const e = this.pool.words[off]!;
      if (!(e & _PAGE_PRESENT)) {
        // A zero entry is a hole; a non-present one is whatever `nonPresent` says.
        const mapped = nonPresent && (e | this.pool.words[off + 1]!) !== 0;
        if (mapped === any) return any;
        continue;
      }
      if (isLeafAt(e, level)) {
        if (any) return true;
        continue;
      }
      if (this.mappedScan(lo, hi, any, nonPresent, this.pool.childSlot(e, this.pool.words[off + 1]!), level - 1) === any) return any;
    }
    return !any;
  }

  /**
   * Calls `f(vpn, pfn, level, code)` (the entry's own prot code) for every entry
   * intersecting [lo, hi), in vpn order: every leaf, and with `nonPresent` every
   * non-present entry keeping a frame too.
   */
  forEachEntry(lo: Vpn, hi: Vpn, f: (vpn: Vpn, pfn: Pfn, level: number, code: number) => void, nonPresent = false, slot = this.root, level = this.levels): void {
    const w = this.pool.words;
    const last = this.lastIdx(slot, level, hi);
    for (let i = this.firstIdx(slot, level, lo); i <= last; i++) {
      const off = slot * 1024 + i * 2;
      const e = w[off]!;
      const eh = w[off + 1]!;
      if (!(e & _PAGE_PRESENT)) {
        if (nonPresent && (e | eh) !== 0) f(this.entryVpn(slot, i), leafPfn(e, eh, level), level, leafCode(e, eh, level > 1, true, true, false));
      } else if (isLeafAt(e, level)) f(this.entryVpn(slot, i), leafPfn(e, eh, level), level, leafCode(e, eh, level > 1, true, true, false));
      else this.forEachEntry(lo, hi, f, nonPresent, this.pool.childSlot(e, w[off + 1]!), level - 1);
    }
  }

  /** Remove every page of [lo, hi), non-present entries too, splitting entries that straddle an edge (unmap_*_range). */
  unmapRange(lo: Vpn, hi: Vpn): void {
    this.editRange(lo, hi, null, this.root, this.levels);
  }

  /**
   * vunmap_range's walk (linux profile, mm/vmalloc.c __vunmap_range_noflush): every
   * entry meeting [lo, hi) goes, with no split and no table freed. A 2M/1G leaf is
   * cleared whole (pud_clear_huge / pmd_clear_huge), warning `vunmap-huge` when the range
   * does not cover it; a non-present large entry is a bad entry (PS clear, not _KERNPG_TABLE),
   * cleared whole by pmd/pud_none_or_clear_bad with `bad-entry`; each PTE in the range is
   * cleared, a non-present one with `vunmap-nonpresent`. `warn` gets the events in address
   * order. The tables emptied stay linked.
   */
  vunmapRange(lo: Vpn, hi: Vpn, warn: (kind: VunmapEvent, vpn: Vpn, pages: number, pfn: Pfn) => void): void {
    this.vunmapIn(lo, hi, warn, this.root, this.levels);
  }

  private vunmapIn(lo: Vpn, hi: Vpn, warn: (kind: VunmapEvent, vpn: Vpn, pages: number, pfn: Pfn) => void, slot: number, level: number): void {
    const pool = this.pool;
    const w = pool.words;
    const span = SPAN[level as 1]!;
    const last = this.lastIdx(slot, level, hi);
    // Present PTEs are cleared a run at a time (the consecutive ones from `start`).
    let start = -1;
    for (let i = this.firstIdx(slot, level, lo); i <= last; i++) {
      const off = slot * 1024 + i * 2;
      const e = w[off]!;
      const eh = w[off + 1]!;
      if ((e | eh) === 0) {
        start = this.clearFrom(slot, start, i);
        continue;
      }
      const vb = this.entryVpn(slot, i);
      if (level === 1) {
        // ptep_get_and_clear; WARN_ON(!pte_none(ptent) && !pte_present(ptent)).
        if (e & _PAGE_PRESENT) {
          if (start < 0) start = i;
          continue;
        }
        start = this.clearFrom(slot, start, i);
        pool.set(slot, i, 0, 0);
        warn('vunmap-nonpresent', vb, 1, leafPfn(e, eh, 1));
        continue;
      }
      if (isLeafAt(e, level)) {
        const inside = vb >= lo && vb + span <= hi;
        // The mutant ignores pmd_clear_huge: it splits (while a table is free) and clears only the range.
        if (!inside && this.mutant === 'vunmap-keeps-huge-tail' && pool.inUse < pool.poolCount) {
          this.vunmapIn(lo, hi, warn, this.splitEntry(slot, i), level - 1);
          continue;
        }
        pool.set(slot, i, 0, 0);
        // WARN_ON(next - addr < PMD_SIZE / PUD_SIZE).
        if (!inside) warn('vunmap-huge', vb, span, leafPfn(e, eh, level));
        continue;
      }
      if (!(e & _PAGE_PRESENT)) {
        // pmd/pud_none_or_clear_bad: "bad pmd/pud", cleared whole.
        pool.set(slot, i, 0, 0);
        warn('bad-entry', vb, span, leafPfn(e, eh, level));
        continue;
      }
      this.vunmapIn(lo, hi, warn, pool.childSlot(e, eh), level - 1);
    }
    this.clearFrom(slot, start, last + 1);
  }

  /** Clear entries start .. end-1 of `slot` as one run (none when start is -1); -1, no run gathered. */
  private clearFrom(slot: number, start: number, end: number): -1 {
    if (start >= 0) this.pool.clearRun(slot, start, end - start);
    return -1;
  }

  /**
   * change_page_attr on [lo, hi) (strict): each entry, a leaf or a non-present one, gets
   * `change.apply(oldEntryCode)`, presence included; an entry straddling an edge is split
   * only if its code changes (try_preserve_large_page keeps it otherwise), and with
   * force_split (set_memory_4k) every large entry the range meets is split down to 4K.
   * Pages without an entry are skipped (the caller checked what must be mapped).
   */
  protectRange(lo: Vpn, hi: Vpn, change: prot.CodeChange): void {
    this.editRange(lo, hi, change, this.root, this.levels);
  }

  /**
   * The walk shared by unmap (`change` null: remove) and change_page_attr. The entries it
   * rewrites whole are written a run at a time (tables.ts writeRun, clearRun): consecutive
   * ones to clear, or consecutive leaves of one code over consecutive frames, which get one
   * new code.
   */
  private editRange(lo: Vpn, hi: Vpn, change: prot.CodeChange | null, slot: number, level: number): void {
    if (change === null && level === 1) return this.clearEntries(slot, this.firstIdx(slot, 1, lo), this.lastIdx(slot, 1, hi));
    const pool = this.pool;
    const span = SPAN[level as 1]!;
    const last = this.lastIdx(slot, level, hi);
    // The run being gathered: entries start .. start+count-1, their old code and first frame.
    let start = -1;
    let count = 0;
    let runOld = 0;
    let runPfn = 0;
    for (let i = this.firstIdx(slot, level, lo); i <= last; i++) {
      const off = slot * 1024 + i * 2;
      const e = pool.words[off]!;
      const eh = pool.words[off + 1]!;
      if ((e | eh) === 0) {
        count = this.editRun(change, slot, level, start, count, runOld, runPfn);
        continue;
      }
      const present = (e & _PAGE_PRESENT) !== 0;
      if (present && !isLeafAt(e, level)) {
        count = this.editRun(change, slot, level, start, count, runOld, runPfn);
        this.editRange(lo, hi, change, pool.childSlot(e, eh), level - 1);
        continue;
      }
      // A leaf, or a non-present entry keeping its frame: both carry a frame and a prot.
      const vb = this.entryVpn(slot, i);
      const inside = vb >= lo && vb + span <= hi;
      if (change === null) {
        if (inside || this.mutant === 'unmap-no-split') {
          if (count === 0) start = i;
          count++;
          continue;
        }
        count = this.editRun(change, slot, level, start, count, runOld, runPfn);
        this.editRange(lo, hi, null, this.splitEntry(slot, i), level - 1);
        continue;
      }
      if (level > 1 && change.forceSplit) {
        count = this.editRun(change, slot, level, start, count, runOld, runPfn);
        this.editRange(lo, hi, change, this.splitEntry(slot, i), level - 1);
        continue;
      }
      const old = leafCode(e, eh, level > 1, true, true, false) | (present ? P_PRESENT : 0);
      const code = change.apply(old);
      const pfn = leafPfn(e, eh, level);
      if (inside && code !== old && count > 0 && old === runOld && pfn === runPfn + count * span) {
        count++;
        continue;
      }
      count = this.editRun(change, slot, level, start, count, runOld, runPfn);
      if (code === old) continue;
      if (inside) {
        start = i;
        count = 1;
        runOld = old;
        runPfn = pfn;
      } else this.editRange(lo, hi, change, this.splitEntry(slot, i), level - 1);
    }
    count = this.editRun(change, slot, level, start, count, runOld, runPfn);
  }

  /**
   * unmap's editRange in a PTE table: every entry first .. last is inside the range and
   * none is a table, so the runs of non-zero entries are cleared (a zero entry is no write).
   */
  private clearEntries(slot: number, first: number, last: number): void {
    const w = this.pool.words;
    let start = -1;
    for (let i = first; i <= last; i++) {
      const off = slot * 1024 + i * 2;
      if ((w[off]! | w[off + 1]!) !== 0) {
        if (start < 0) start = i;
      } else start = this.clearFrom(slot, start, i);
    }
    this.clearFrom(slot, start, last + 1);
  }

  /** editRange's run written (cleared by unmap, the change's code by change_page_attr); 0, the count of the next one. */
  private editRun(change: prot.CodeChange | null, slot: number, level: number, start: number, count: number, old: number, pfn: Pfn): 0 {
    if (count === 0) return 0;
    if (change === null) this.pool.clearRun(slot, start, count);
    else {
      const code = change.apply(old);
      this.writeLeaves(slot, start, count, level, pfn, code & ~P_PRESENT, (code & P_PRESENT) !== 0);
    }
    return 0;
  }

  /**
   * Why the size-aligned block at `vpn` cannot become one leaf at `level` (2 or 3), or
   * null: it must be a table of exactly 512 present leaves of the next size down with one
   * prot and contiguous frames from a level-aligned pfn, and 4K ones must not be kept 4K
   * (collapse_pmd_page returns early on _PAGE_KERNEL_4K in the first PTE; collapse_pud_page).
   * On null, the hit registers name the entry to replace (hitSlot, hitIdx).
   */
  collapseRefusal(vpn: Vpn, level: number): string | null {
    const pool = this.pool;
    let slot = this.root;
    for (let L = this.levels; L > level; L--) {
      const off = slot * 1024 + tableIndex(vpn, L) * 2;
      const e = pool.words[off]!;
      if (!(e & _PAGE_PRESENT)) return 'the block is not mapped';
      if (isLeafAt(e, L)) return 'the block is inside a larger leaf';
      slot = pool.childSlot(e, pool.words[off + 1]!);
    }
    const idx = tableIndex(vpn, level);
    const off = slot * 1024 + idx * 2;
    const e = pool.words[off]!;
    if (!(e & _PAGE_PRESENT)) return 'the block is not mapped';
    if (isLeafAt(e, level)) return 'the block is already one leaf';
    const child = pool.childSlot(e, pool.words[off + 1]!);
    const cl = level - 1;
    const step = SPAN[cl as 1]!;
    const w = pool.words;
    const lo0 = w[child * 1024]!;
    const hi0 = w[child * 1024 + 1]!;
    if (!isLeafAt(lo0, cl)) return 'entry 0 is not a leaf';
    const pfn0 = leafPfn(lo0, hi0, cl);
    if (pfn0 % SPAN[level as 1]! !== 0) return `the first frame ${pfn0} is not aligned to the block size`;
    // The mutant's collapse never looks at _PAGE_KERNEL_4K: not in entry 0, not in the comparison.
    const seen = this.mutant === 'collapse-ignores-kernel4k' ? ~P_KERNEL4K : ~0;
    const code0 = leafCode(lo0, hi0, cl > 1, true, true, false) & seen;
    if (cl === 1 && (code0 & P_KERNEL4K) !== 0) return 'its pages are kept 4K (_PAGE_KERNEL_4K, set_memory_4k)';
    for (let i = 1; i < 512; i++) {
      const lo = w[child * 1024 + i * 2]!;
      const hi = w[child * 1024 + i * 2 + 1]!;
      if (!isLeafAt(lo, cl)) return `entry ${i} is not a leaf`;
      if (this.mutant !== 'collapse-non-uniform' && (leafCode(lo, hi, cl > 1, true, true, false) & seen) !== code0) return `entry ${i} has different attributes than entry 0`;
      if (leafPfn(lo, hi, cl) !== pfn0 + i * step) return `entry ${i} does not continue the frames of entry 0`;
    }
    this.hitSlot = slot;
    this.hitIdx = idx;
    return null;
  }

  /** collapse_large_pages after collapseRefusal returned null: one leaf replaces the table. */
  collapseAt(slot: number, idx: number): void {
    const pool = this.pool;
    const level = pool.level[slot]!;
    const off = slot * 1024 + idx * 2;
    const child = pool.childSlot(pool.words[off]!, pool.words[off + 1]!);
    const lo0 = pool.words[child * 1024]!;
    const hi0 = pool.words[child * 1024 + 1]!;
    const pfn = leafPfn(lo0, hi0, level - 1);
    const flags = level === 2 ? lo4kToLarge(lo0 & LO_FLAGS_MASK) : lo0 & LARGE_FLAGS_MASK;
    pool.set(slot, idx, (flags | pfnLo(pfn)) >>> 0, ((hi0 & ~HI_PFN_MASK) | pfnHi(pfn)) >>> 0);
    // The old table is unlinked; clearing it makes it empty, so it is freed with the others.
    pool.clearRun(child, 0, 512);
  }

  /**
   * cpa_collapse_large_pages over [vpn, vpn+pages) (CPA_COLLAPSE, set_memory_rox): for
   * each 2M block from the one containing vpn while its start is below the end, in order,
   * collapse_large_pages: the block becomes one 2M leaf when collapseRefusal allows it
   * and the CPU has PSE, and right after such a collapse the 1G block around it becomes
   * one 1G leaf when that is allowed and the CPU has GB pages. Returns the blocks
   * collapsed, in order; the emptied tables are left for releaseEmptied. Never fails.
   */
  collapseRange(vpn: Vpn, pages: number): { vpn: Vpn; pages: number }[] {
    const out: { vpn: Vpn; pages: number }[] = [];
    const { pse, gbpages } = this.config.features;
    if (!pse) return out;
    const pmd = SPAN[2];
    const pud = SPAN[3];
    for (let b = vpn - (vpn % pmd); b < vpn + pages; b += pmd) {
      if (this.collapseRefusal(b, 2) !== null) continue;
      this.collapseAt(this.hitSlot, this.hitIdx);
      out.push({ vpn: b, pages: pmd });
      const g = b - (b % pud);
      if (!gbpages || this.collapseRefusal(g, 3) !== null) continue;
      this.collapseAt(this.hitSlot, this.hitIdx);
      out.push({ vpn: g, pages: pud });
    }
    return out;
  }

  /**
   * Unlink the tables emptied by the running operation, cascading up (free_pte_range…),
   * and free them, or with `defer` (the operation flushes nothing) leave them pending
   * until a flush of their span.
   */
  releaseEmptied(defer: boolean): void {
    const pool = this.pool;
    const emptied = pool.emptied;
    while (emptied.length > 0) {
      const s = emptied.pop()!;
      if (pool.parentSlot[s]! < 0 || !pool.allocated[s] || pool.live[s] !== 0) continue;
      if (this.mutant === 'leak-empty-table') continue;
      if (pool.isLinked(s) && this.mutant !== 'free-while-linked') pool.set(pool.parentSlot[s]!, pool.parentIdx[s]!, 0, 0);
      if (defer && this.mutant !== 'free-before-flush') pool.deferFree(s);
      else pool.free(s);
    }
  }
}
