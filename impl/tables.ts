/**
 * The table pool: every page table is one 4 KiB frame of config.tablePool, stored as
 * 1024 32-bit words (512 entries, lo word then hi word) in one Uint32Array indexed by
 * pool slot (slot s is frame tablePool.pfn + s; init_mm's pgd is slot 0). Per slot the
 * pool keeps the table's level, its parent entry, the vpn its entry 0 maps, and a count
 * of used (non-zero) entries, so emptiness is O(1) (the kernel frees a table when its last entry
 * goes: free_pte_range / try_to_free_pmd_page in set_memory.c).
 *
 * Atomicity: while an operation runs, every entry write (a run of entries: one record,
 * the old words saved in one copy), allocation and free is journaled; `rollback` undoes
 * them in reverse, so a failed operation (ENOMEM or EPERM
 * found after the work) leaves the tables bit-for-bit as they were. An operation may
 * temporarily use more slots than the pool has (the contracts judge ENOMEM on the state an
 * operation produces, not on its intermediate steps); `commit` then moves any table
 * living beyond the pool into a free pool frame.
 *
 * Deferred frees (spec/contracts/flush.ts): a table emptied by an operation that does not
 * flush (set_direct_map_invalid_noflush, vunmap_range_noflush) is unlinked but not freed, because another CPU's
 * paging-structure cache may still walk through it. It stays allocated, counted in
 * `inUse` and listed in `pending`, until a flush meets the VA span its parent entry
 * covered; only then does it go back to the free list.
 *
 * Generations: every slot counts the times it was freed (`gen`). A CPU's paging-structure
 * cache (tlb.ts) remembers the slot and its generation when it caches a table entry, so a
 * cached pointer to a table that was freed since (its slot possibly reused by another
 * table) is told apart from one to the same table still unlinked or in place, in O(1)
 * and without the pool keeping any per-CPU state.
 */
import type { PageSize, Pfn, Vpn } from '../spec/address.ts';
import * as x86 from './arch/x86_64/entry.ts';

// Module-local copies: imported bindings are live (a getter per use once transpiled).
const { _PAGE_PRESENT, _PAGE_PSE, _PAGE_PAT_LARGE, LO_FLAGS_MASK, LO_PFN_MASK, HI_PFN_MASK, entryPfn, pfnHi, pfnLo } = x86;
/**
 * The lo-word bits the leaves of one run share, by level: the flags, and at 2M/1G bit 12
 * too, which is PAT there (a frame bit of a 4K leaf); and the lo-word bits of their frames.
 */
const RUN_FLAGS = [0, LO_FLAGS_MASK, LO_FLAGS_MASK | _PAGE_PAT_LARGE, LO_FLAGS_MASK | _PAGE_PAT_LARGE] as const;
const RUN_PFN = [0, LO_PFN_MASK, (LO_PFN_MASK & ~_PAGE_PAT_LARGE) >>> 0, (LO_PFN_MASK & ~_PAGE_PAT_LARGE) >>> 0] as const;

/**
 * Told of every leaf that appears (delta +1) or disappears (delta -1), a run at a time:
 * `n` leaves at entries idx .. idx + n - 1 of table `slot`, entry idx holding (lo, hi) and
 * each next one the same flags and the frame one leaf further (`leafRuns`).
 */
export interface LeafObserver {
  leavesChanged(slot: number, idx: number, n: number, level: number, lo: number, hi: number, delta: number): void;
}

/** Told when an operation ends, committed or rolled back. */
export interface OperationObserver {
  operationEnded(): void;
}

/** 4 KiB pages one entry of a table at `level` covers: 512^(level-1). */
export const SPAN = [0, 1, 512, 262144, 134217728, 68719476736] as const;

/**
 * x mod `span` for a power of two `span` and x >= 0, by division (exact for these): `%`
 * of a double beyond 2^31, which every kernel vpn is, costs a call to fmod.
 */
export function modSpan(x: number, span: number): number {
  return x - Math.floor(x / span) * span;
}

/** The size of a leaf mapped by an entry at `level` (1..3). */
export const LEVEL_SIZE: readonly PageSize[] = ['4K', '4K', '2M', '1G'];

/** pte/pmd_leaf/pud_leaf: a present entry at level 2 or 3 with PS set maps a 2M/1G leaf; at level 1 every present entry is a leaf. */
export function isLeafAt(lo: number, level: number): boolean {
  return (lo & _PAGE_PRESENT) !== 0 && (level === 1 || ((level === 2 || level === 3) && (lo & _PAGE_PSE) !== 0));
}

/**
 * The maximal runs of leaves among entries [idx, idx + count) of table `slot` at `level`:
 * consecutive entries that are leaves with the same flags, each mapping the frames right
 * after the one before (what a map, a split, a change of one leaf's worth of attributes
 * writes); other entries end a run and are skipped. Written into `out` as (idx, n, lo, hi)
 * of each run, its first entry's words; returns the number of runs. (An array the caller
 * owns rather than a callback: a closure per call costs more than a short run.)
 */
export function leafRuns(words: Uint32Array, slot: number, idx: number, count: number, level: number, out: number[]): number {
  if (level > 3) return 0;
  const span = SPAN[level as 1]!;
  const keep = RUN_FLAGS[level as 1]!;
  const frame = RUN_PFN[level as 1]!;
  const base = slot * 1024;
  const end = idx + count;
  let runs = 0;
  let start = -1;
  let lo0 = 0;
  let hi0 = 0;
  let next = 0;
  for (let i = idx; i <= end; i++) {
    const lo = i < end ? words[base + i * 2]! : 0;
    const hi = i < end ? words[base + i * 2 + 1]! : 0;
    if (start >= 0 && i < end && ((lo ^ lo0) & keep) === 0 && ((hi ^ hi0) & ~HI_PFN_MASK) === 0 && entryPfn(lo & frame, hi) === next) {
      next += span;
      continue;
    }
    if (start >= 0) {
      out[runs * 4] = start;
      out[runs * 4 + 1] = i - start;
      out[runs * 4 + 2] = lo0;
      out[runs * 4 + 3] = hi0;
      runs++;
    }
    start = -1;
    // Past the end, a zero entry: no leaf, and the loop ends.
    if (!isLeafAt(lo, level)) continue;
    start = i;
    lo0 = lo;
    hi0 = hi;
    next = entryPfn(lo & frame, hi) + span;
  }
  return runs;
}

/** `to` holding what `from` holds (no spread: a list may hold more elements than a call takes arguments). */
export function replaceAll<T>(to: T[], from: readonly T[]): void {
  to.length = from.length;
  for (let i = 0; i < from.length; i++) to[i] = from[i]!;
}

const J_WRITE = 0;
const J_ALLOC_FREE_LIST = 1;
const J_ALLOC_NEW = 2;
const J_FREE = 3;
const J_DEFER = 4;
/** A run of entries written at once: its record holds the count and where the old words were saved. */
const J_RUN = 5;
const J_REC = 5;
/** The journal's size between operations: one that grew is given back at its end. */
const JOURNAL_INITIAL = 4096;
/** The slots a pool starts with (fewer if the pool is smaller), and the least it shrinks to. */
const POOL_INITIAL = 64;
/** Written ranges listed for abstract() before it stops listing and walks everything (`dirty` null). */
const DIRTY_LIMIT = 8192;

export class TablePool {
  words: Uint32Array;
  live: Uint16Array;
  level: Uint8Array;
  parentSlot: Int32Array;
  parentIdx: Uint16Array;
  base: Float64Array;
  allocated: Uint8Array;
  /** Per slot, how often it was freed: a paging-structure-cache entry holding an older generation points to a freed table. */
  gen: Uint32Array;
  /** Per slot, `writes` right after the last write of one of its entries: a run written at that count is still as written. */
  lastWrite: Float64Array;
  /** Slots ever handed out; slots below it are allocated or on `freeList`. */
  highWater = 0;
  inUse = 0;
  /** Entry writes ever made (rollbacks included): what range operations cost, for tests and the bench. */
  writes = 0;
  /** Table frees ever made (rollbacks of them included): with `writes`, what abstract()'s paging-structure-cache states depend on. */
  frees = 0;
  readonly freeList: number[] = [];
  /** Tables whose last entry went; freed (or deferred) at the end of the operation. */
  readonly emptied: number[] = [];
  /** Unlinked tables waiting for a flush of their span before they are free, oldest first. */
  readonly pending: number[] = [];
  /**
   * Entries written in top-level tables (slot * 512 + idx), for the isolation capability's
   * pgd sync, which copies them into the roots that mirror them once the operation commits.
   */
  readonly topWrites: number[] = [];
  /** Told when an operation ends, committed or rolled back (the radix drops its per-operation lists). */
  ended: OperationObserver | null = null;
  /** Told after every commit (the isolation capability's sync_global_pgds). */
  afterCommit: (() => void) | null = null;
  /** The vpn ranges written since abstract() last took them (`takeDirty`), unsorted pairs; null: everything. */
  private dirty: number[] | null = [];
  /** Slots the pool may hold beyond poolCount: top-level tables outside the pool's count (swapper_pg_dir's KPTI half, the ASI global pgd). */
  uncounted = 0;
  private journal = new Float64Array(JOURNAL_INITIAL);
  private journalLen = 0;
  /** The words a run overwrote, for its J_RUN record: saved with one copy, put back with one. */
  private saved = new Uint32Array(JOURNAL_INITIAL);
  private savedLen = 0;
  /** leafRuns' answers for countEntries. */
  private readonly runs: number[] = [];
  private journaling = false;

  constructor(
    readonly poolPfn: Pfn,
    readonly poolCount: number,
    private readonly observer: LeafObserver,
  ) {
    const cap = Math.max(1, Math.min(poolCount, POOL_INITIAL));
    this.words = new Uint32Array(cap * 1024);
    this.live = new Uint16Array(cap);
    this.level = new Uint8Array(cap);
    this.parentSlot = new Int32Array(cap);
    this.parentIdx = new Uint16Array(cap);
    this.base = new Float64Array(cap);
    this.allocated = new Uint8Array(cap);
    this.gen = new Uint32Array(cap);
    this.lastWrite = new Float64Array(cap);
  }

  /**
   * Declare a write made to `words` directly (tests that corrupt a table by hand): the
   * system's cached abstraction is keyed on `writes`, which only `set` counts otherwise.
   */
  touch(): void {
    this.writes++;
    this.dirty = null;
  }

  /**
   * The vpn ranges entries were written in since the last call, sorted and merged, as
   * [start, end) pairs; null when anything may have changed (a write made by hand, or more
   * ranges than DIRTY_LIMIT): what abstract() walks again.
   */
  takeDirty(): number[] | null {
    const d = this.dirty;
    this.dirty = [];
    if (d === null || d.length <= 2) return d;
    const order = Array.from({ length: d.length / 2 }, (_, k) => k).sort((a, b) => d[a * 2]! - d[b * 2]!);
    const out: number[] = [];
    for (const k of order) {
      const lo = d[k * 2]!;
      const hi = d[k * 2 + 1]!;
      if (out.length > 0 && lo <= out[out.length - 1]!) out[out.length - 1] = Math.max(out[out.length - 1]!, hi);
      else out.push(lo, hi);
    }
    return out;
  }

  /** Entries idx .. idx+n-1 of `slot` were written: the pages they map (a top-level table's lower half from 0) go on the dirty list. */
  private markDirty(slot: number, idx: number, n: number): void {
    const d = this.dirty;
    if (d === null) return;
    if (d.length >= 2 * DIRTY_LIMIT) {
      this.dirty = null;
      return;
    }
    const span = SPAN[this.level[slot] as 1]!;
    const vpn = this.parentSlot[slot]! < 0 && idx < 256 ? idx * span : this.base[slot]! + idx * span;
    d.push(vpn, vpn + n * span);
  }

  get capacity(): number {
    return this.live.length;
  }

  /**
   * Become a copy of `src` between operations (RadixSystem.fork): the typed arrays copied,
   * the lists too; the journal is empty between operations, so there is none to copy.
   */
  copyFrom(src: TablePool): void {
    this.words = src.words.slice();
    this.live = src.live.slice();
    this.level = src.level.slice();
    this.parentSlot = src.parentSlot.slice();
    this.parentIdx = src.parentIdx.slice();
    this.base = src.base.slice();
    this.allocated = src.allocated.slice();
    this.gen = src.gen.slice();
    this.lastWrite = src.lastWrite.slice();
    this.highWater = src.highWater;
    this.inUse = src.inUse;
    this.writes = src.writes;
    this.frees = src.frees;
    this.uncounted = src.uncounted;
    replaceAll(this.freeList, src.freeList);
    replaceAll(this.pending, src.pending);
    replaceAll(this.emptied, src.emptied);
    replaceAll(this.topWrites, src.topWrites);
    this.dirty = src.dirty === null ? null : [...src.dirty];
  }

  /** Whether table `s`'s parent entry still points to it: a table entry (not a leaf) naming s in an allocated parent. */
  isLinked(s: number): boolean {
    const p = this.parentSlot[s]!;
    if (p < 0 || p >= this.capacity || this.allocated[p] !== 1) return false;
    const poff = p * 1024 + this.parentIdx[s]! * 2;
    const pe = this.words[poff]!;
    return (pe & _PAGE_PRESENT) !== 0 && !isLeafAt(pe, this.level[p]!) && this.childSlot(pe, this.words[poff + 1]!) === s;
  }

  slotPfn(slot: number): Pfn {
    return this.poolPfn + slot;
  }

  /** The slot of a table entry's frame. */
  childSlot(lo: number, hi: number): number {
    return entryPfn(lo, hi) - this.poolPfn;
  }

  /**
   * The per-slot arrays at `cap` slots, what they hold below it kept. `gen` only grows: a
   * paging-structure-cache entry may name a slot above a shrunk capacity, and must find
   * the slot's generation there again once it is handed out anew.
   */
  private resize(cap: number): void {
    const resized = <T extends Uint32Array | Uint16Array | Uint8Array | Int32Array | Float64Array>(a: T, make: (n: number) => T, per = 1): T => {
      const b = make(cap * per);
      b.set(a.length <= cap * per ? a : a.subarray(0, cap * per));
      return b;
    };
    this.words = resized(this.words, (n) => new Uint32Array(n), 1024);
    this.live = resized(this.live, (n) => new Uint16Array(n));
    this.level = resized(this.level, (n) => new Uint8Array(n));
    this.parentSlot = resized(this.parentSlot, (n) => new Int32Array(n));
    this.parentIdx = resized(this.parentIdx, (n) => new Uint16Array(n));
    this.base = resized(this.base, (n) => new Float64Array(n));
    this.allocated = resized(this.allocated, (n) => new Uint8Array(n));
    this.lastWrite = resized(this.lastWrite, (n) => new Float64Array(n));
    if (cap > this.gen.length) this.gen = resized(this.gen, (n) => new Uint32Array(n));
  }

  /**
   * After a commit: the free slots at the top of the ones handed out are no longer handed
   * out (highWater lowered past them, off the free list), and the arrays are halved while
   * a quarter of their slots or less is handed out. Slots keep their numbers (slot s is
   * frame poolPfn + s): only free slots at the top go.
   */
  private trim(): void {
    let hw = this.highWater;
    while (hw > 1 && this.allocated[hw - 1] === 0) hw--;
    if (hw === this.highWater) return;
    let kept = 0;
    for (const s of this.freeList) if (s < hw) this.freeList[kept++] = s;
    this.freeList.length = kept;
    this.highWater = hw;
    let cap = this.capacity;
    while (cap > POOL_INITIAL && hw <= cap / 4) cap /= 2;
    if (cap < this.capacity) this.resize(cap);
  }

  private record(kind: number, slot: number, idx: number, lo: number, hi: number): void {
    if (!this.journaling) return;
    if (this.journalLen + J_REC > this.journal.length) {
      const j = new Float64Array(this.journal.length * 2);
      j.set(this.journal);
      this.journal = j;
    }
    const j = this.journal;
    const n = this.journalLen;
    j[n] = kind;
    j[n + 1] = slot;
    j[n + 2] = idx;
    j[n + 3] = lo;
    j[n + 4] = hi;
    this.journalLen = n + J_REC;
  }

  /**
   * Room for `slots` more tables (at most up to the slots a committed state may hold): the
   * arrays grown once to the power of two that holds them, rather than doubled again and
   * again by the allocations of one large operation.
   */
  reserve(slots: number): void {
    const need = Math.min(this.highWater + Math.max(0, slots - this.freeList.length), this.slotLimit);
    if (need <= this.capacity) return;
    let cap = this.capacity;
    while (cap < need) cap *= 2;
    this.resize(cap);
  }

  /** A zeroed table for `level` whose entry 0 maps `base`, hanging from (parent, idx). */
  alloc(level: number, base: Vpn, parent: number, idx: number): number {
    let slot: number;
    if (this.freeList.length > 0) {
      slot = this.freeList.pop()!;
      this.record(J_ALLOC_FREE_LIST, slot, 0, 0, 0);
    } else {
      if (this.highWater === this.capacity) this.resize(this.capacity * 2);
      slot = this.highWater++;
      this.record(J_ALLOC_NEW, slot, 0, 0, 0);
    }
    this.allocated[slot] = 1;
    this.level[slot] = level;
    this.base[slot] = base;
    this.parentSlot[slot] = parent;
    this.parentIdx[slot] = idx;
    this.inUse++;
    return slot;
  }

  /**
   * A top-level table that is no pool table (contracts/isolation.ts "Tables": roots 1 and 2
   * are part of init_mm's): allocated at boot, before any other, never freed, not in inUse.
   */
  allocUncounted(level: number, base: Vpn): number {
    const slot = this.alloc(level, base, -1, 0);
    this.inUse--;
    this.uncounted++;
    return slot;
  }

  /** Return an (empty) table to the pool. Its metadata stays until reuse, for rollback. */
  free(slot: number): void {
    this.record(J_FREE, slot, 0, 0, 0);
    this.allocated[slot] = 0;
    this.freeList.push(slot);
    this.inUse--;
    // Whatever a CPU cached of this table now points to a free frame.
    this.gen[slot]!++;
    this.frees++;
  }

  /** Keep an unlinked, empty table allocated until a flush of its span releases it. */
  deferFree(slot: number): void {
    this.record(J_DEFER, slot, 0, 0, 0);
    this.pending.push(slot);
  }

  /** The first page after the span of table `slot`: its parent entry covered 512 of its entries. */
  spanEnd(slot: number): Vpn {
    return this.base[slot]! + 512 * SPAN[this.level[slot] as 1]!;
  }

  /** After a flush of [lo, hi): free every pending table whose span meets it. */
  releasePending(lo: Vpn, hi: Vpn): void {
    let kept = 0;
    for (const s of this.pending) {
      if (this.base[s]! < hi && lo < this.spanEnd(s)) this.free(s);
      else this.pending[kept++] = s;
    }
    if (kept < this.pending.length) this.pending.length = kept;
  }

  /** Write entry `idx` of table `slot`, keeping live counts (non-zero entries) and the observer (present leaves) up to date. */
  set(slot: number, idx: number, lo: number, hi: number): void {
    const off = slot * 1024 + idx * 2;
    const w = this.words;
    const oldLo = w[off]!;
    const oldHi = w[off + 1]!;
    this.lastWrite[slot] = ++this.writes;
    this.markDirty(slot, idx, 1);
    this.record(J_WRITE, slot, idx, oldLo, oldHi);
    const level = this.level[slot]!;
    // A non-present entry that keeps its frame (linux profile) occupies its slot as a leaf does.
    const wasUsed = (oldLo | oldHi) !== 0;
    if (wasUsed) {
      this.live[slot]!--;
      if (isLeafAt(oldLo, level)) this.observer.leavesChanged(slot, idx, 1, level, oldLo, oldHi, -1);
    }
    w[off] = lo;
    w[off + 1] = hi;
    if ((lo | hi) !== 0) {
      this.live[slot]!++;
      if (isLeafAt(lo, level)) this.observer.leavesChanged(slot, idx, 1, level, lo, hi, 1);
    } else if (this.live[slot] === 0 && this.parentSlot[slot]! >= 0 && wasUsed) {
      this.emptied.push(slot);
    }
    // A top-level table has no parent: its entries are what other roots mirror.
    if (this.parentSlot[slot]! < 0 && this.afterCommit !== null) this.topWrites.push(slot * 512 + idx);
  }

  /**
   * Write `n` leaves (or non-present entries) of one table at once: entries idx .. idx+n-1
   * of `slot` get flags (lo, hi) and the frames pfn, pfn + step, ... The bookkeeping `set`
   * does per entry is done once for the run: one journal record with the old words saved
   * in one copy, the live count, and the observer told of the old leaves and the new run.
   */
  writeRun(slot: number, idx: number, n: number, flagsLo: number, flagsHi: number, pfn: Pfn, step: number): void {
    // One entry costs less through set, to the same effect.
    if (n === 1) return this.set(slot, idx, (flagsLo | pfnLo(pfn)) >>> 0, (flagsHi | pfnHi(pfn)) >>> 0);
    this.runBefore(slot, idx, n);
    const w = this.words;
    const off = slot * 1024 + idx * 2;
    // The frame's bits by addition.
    const loStep = step * 4096;
    let lo = pfnLo(pfn) | 0;
    let hi = pfnHi(pfn) | 0;
    // In int32 arithmetic (the stores keep the bits): the lo word's carry out of bit 31 goes into the hi word.
    for (let i = 0, o = off; i < n; i++, o += 2) {
      w[o] = flagsLo | lo;
      w[o + 1] = flagsHi | hi;
      const next = (lo + loStep) | 0;
      if (next >>> 0 < lo >>> 0) hi = (hi + 1) | 0;
      lo = next;
    }
    // Every entry is in use but one of frame 0 with no flag set (no leaf, nothing kept).
    this.live[slot]! += (flagsLo | flagsHi) !== 0 || pfn !== 0 ? n : n - 1;
    const level = this.level[slot]!;
    if (isLeafAt(flagsLo, level)) this.observer.leavesChanged(slot, idx, n, level, w[off]!, w[off + 1]!, 1);
    this.runAfter(slot, idx, n, false);
  }

  /** Clear entries idx .. idx+n-1 of `slot`, as `n` sets of zero would, with a run's bookkeeping. */
  clearRun(slot: number, idx: number, n: number): void {
    if (n === 1) return this.set(slot, idx, 0, 0);
    const emptying = this.runBefore(slot, idx, n);
    this.words.fill(0, slot * 1024 + idx * 2, slot * 1024 + (idx + n) * 2);
    this.runAfter(slot, idx, n, emptying);
  }

  /**
   * A run's old entries: journaled (one record, the words saved), counted out of `live`,
   * their leaves out of the observer. Whether one of them was in use: clearing them may
   * empty the table.
   */
  private runBefore(slot: number, idx: number, n: number): boolean {
    this.lastWrite[slot] = this.writes += n;
    this.markDirty(slot, idx, n);
    const off = slot * 1024 + idx * 2;
    const inUse = this.countEntries(slot, idx, n, -1);
    if (this.journaling) {
      // Old words all zero (a map into empty entries): nothing saved, the record says so (-1).
      this.record(J_RUN, slot, idx, n, inUse ? this.savedLen : -1);
      if (!inUse) return false;
      if (this.savedLen + 2 * n > this.saved.length) {
        const s = new Uint32Array(Math.max(this.saved.length * 2, this.savedLen + 2 * n));
        s.set(this.saved.subarray(0, this.savedLen));
        this.saved = s;
      }
      this.saved.set(this.words.subarray(off, off + 2 * n), this.savedLen);
      this.savedLen += 2 * n;
    }
    return inUse;
  }

  /** Entries idx .. idx+n-1 of `slot` counted in (delta 1) or out (-1) of `live` and the observer; whether one was in use. */
  private countEntries(slot: number, idx: number, n: number, delta: number): boolean {
    const w = this.words;
    const off = slot * 1024 + idx * 2;
    // Counting out the entries as they are, the live count answers for an empty table (a
    // map into a new one) and for a whole one; counting in (a rollback's restored words) it
    // does not know them yet.
    let used = 0;
    if (delta < 0 && (n === 512 || this.live[slot] === 0)) used = this.live[slot]!;
    else for (let i = 0; i < 2 * n; i += 2) if ((w[off + i]! | w[off + i + 1]!) !== 0) used++;
    if (used === 0) return false;
    this.live[slot]! += delta * used;
    const level = this.level[slot]!;
    const runs = this.runs;
    for (let k = 0, count = leafRuns(w, slot, idx, n, level, runs); k < count; k++) {
      this.observer.leavesChanged(slot, runs[k * 4]!, runs[k * 4 + 1]!, level, runs[k * 4 + 2]!, runs[k * 4 + 3]!, delta);
    }
    return true;
  }

  /** After a run's new words are in: the table listed if the run emptied it, top-level entries for the pgd sync. */
  private runAfter(slot: number, idx: number, n: number, emptying: boolean): void {
    if (emptying && this.live[slot] === 0 && this.parentSlot[slot]! >= 0) this.emptied.push(slot);
    if (this.parentSlot[slot]! < 0 && this.afterCommit !== null) for (let i = 0; i < n; i++) this.topWrites.push(slot * 512 + idx + i);
  }

  begin(): void {
    this.journalLen = 0;
    this.savedLen = 0;
    this.journaling = true;
    // Usually empty already: an empty array's length is not set again (that is not free).
    if (this.emptied.length > 0) this.emptied.length = 0;
    if (this.topWrites.length > 0) this.topWrites.length = 0;
  }

  /** Undo everything since `begin`, newest first. */
  rollback(): void {
    this.journaling = false;
    const j = this.journal;
    for (let n = this.journalLen - J_REC; n >= 0; n -= J_REC) {
      const slot = j[n + 1]!;
      switch (j[n]) {
        case J_WRITE:
          this.set(slot, j[n + 2]!, j[n + 3]!, j[n + 4]!);
          break;
        case J_ALLOC_FREE_LIST:
          this.allocated[slot] = 0;
          this.freeList.push(slot);
          this.inUse--;
          break;
        case J_ALLOC_NEW:
          this.allocated[slot] = 0;
          this.highWater--;
          this.inUse--;
          break;
        case J_FREE:
          this.freeList.pop();
          this.allocated[slot] = 1;
          this.inUse++;
          this.gen[slot]!--;
          this.frees++;
          break;
        case J_DEFER:
          this.pending.pop();
          break;
        case J_RUN: {
          const idx = j[n + 2]!;
          const count = j[n + 3]!;
          const off = slot * 1024 + idx * 2;
          this.lastWrite[slot] = this.writes += count;
          this.markDirty(slot, idx, count);
          this.countEntries(slot, idx, count, -1);
          const from = j[n + 4]!;
          if (from < 0) this.words.fill(0, off, off + 2 * count);
          else this.words.set(this.saved.subarray(from, from + 2 * count), off);
          this.countEntries(slot, idx, count, 1);
          break;
        }
      }
    }
    this.endJournal();
    if (this.emptied.length > 0) this.emptied.length = 0;
    if (this.topWrites.length > 0) this.topWrites.length = 0;
  }

  /** The operation's journal is done with: emptied, and given back to its initial size if the operation grew it. */
  private endJournal(): void {
    this.ended?.operationEnded();
    this.journalLen = 0;
    this.savedLen = 0;
    if (this.journal.length > JOURNAL_INITIAL) this.journal = new Float64Array(JOURNAL_INITIAL);
    if (this.saved.length > JOURNAL_INITIAL) this.saved = new Uint32Array(JOURNAL_INITIAL);
  }

  /** One past the last slot a committed table may hold: the pool's slots and the uncounted top-level ones. */
  get slotLimit(): number {
    return this.poolCount + this.uncounted;
  }

  /** Keep everything since `begin`, and move tables living beyond the pool into it. */
  commit(): void {
    this.journaling = false;
    this.endJournal();
    const limit = this.slotLimit;
    if (this.highWater > limit) {
      for (let s = this.highWater - 1; s >= limit; s--) {
        if (!this.allocated[s]) continue;
        let t = this.freeList.pop()!;
        while (t >= limit) t = this.freeList.pop()!;
        this.move(s, t);
      }
      const inPool = this.freeList.filter((s) => s < limit);
      this.freeList.length = 0;
      this.freeList.push(...inPool);
      this.highWater = limit;
    }
    this.trim();
    // After the moves, so that a copied entry names a table's final slot.
    this.afterCommit?.();
  }

  /** Move a table to a free slot: copy, repoint its parent entry, re-parent its children. */
  private move(s: number, t: number): void {
    const w = this.words;
    w.copyWithin(t * 1024, s * 1024, s * 1024 + 1024);
    w.fill(0, s * 1024, s * 1024 + 1024);
    this.live[t] = this.live[s]!;
    this.level[t] = this.level[s]!;
    this.base[t] = this.base[s]!;
    const p = this.parentSlot[s]!;
    const pi = this.parentIdx[s]!;
    this.parentSlot[t] = p;
    this.parentIdx[t] = pi;
    this.allocated[t] = 1;
    this.allocated[s] = 0;
    this.live[s] = 0;
    // Only a table made by this operation lives beyond the pool, and no walk has cached it; the bump keeps that true.
    this.gen[s]!++;
    const poff = p * 1024 + pi * 2;
    this.markDirty(p, pi, 1);
    if (w[poff]! & _PAGE_PRESENT && this.childSlot(w[poff]!, w[poff + 1]!) === s) {
      const pfn = this.slotPfn(t);
      w[poff] = ((w[poff]! & ~LO_PFN_MASK) | pfnLo(pfn)) >>> 0;
      w[poff + 1] = ((w[poff + 1]! & ~HI_PFN_MASK) | pfnHi(pfn)) >>> 0;
    }
    const level = this.level[t]!;
    if (level === 1) return;
    for (let i = 0; i < 512; i++) {
      const lo = w[t * 1024 + i * 2]!;
      if ((lo & _PAGE_PRESENT) && !isLeafAt(lo, level)) this.parentSlot[this.childSlot(lo, w[t * 1024 + i * 2 + 1]!)] = t;
    }
  }
}
