/**
 * The table pool: every page table is one 4 KiB frame of config.tablePool, stored as
 * 1024 32-bit words (512 entries, lo word then hi word) in one Uint32Array indexed by
 * pool slot (slot s is frame tablePool.pfn + s; init_mm's pgd is slot 0). Per slot the
 * pool keeps the table's level, its parent entry, the vpn its entry 0 maps, and a count
 * of used (non-zero) entries, so emptiness is O(1) (the kernel frees a table when its last entry
 * goes: free_pte_range / try_to_free_pmd_page in set_memory.c).
 *
 * Atomicity: while an operation runs, every entry write, allocation and free is
 * journaled; `rollback` undoes them in reverse, so a failed operation (ENOMEM or EPERM
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
const { _PAGE_PRESENT, _PAGE_PSE, LO_PFN_MASK, HI_PFN_MASK, entryPfn, pfnHi, pfnLo } = x86;

/** Told of every leaf that appears (delta +1) or disappears (delta -1). */
export interface LeafObserver {
  leafChanged(slot: number, idx: number, level: number, lo: number, hi: number, delta: number): void;
}

/** 4 KiB pages one entry of a table at `level` covers: 512^(level-1). */
export const SPAN = [0, 1, 512, 262144, 134217728, 68719476736] as const;

/** The size of a leaf mapped by an entry at `level` (1..3). */
export const LEVEL_SIZE: readonly PageSize[] = ['4K', '4K', '2M', '1G'];

/** pte/pmd_leaf/pud_leaf: a present entry at level 2 or 3 with PS set maps a 2M/1G leaf; at level 1 every present entry is a leaf. */
export function isLeafAt(lo: number, level: number): boolean {
  return (lo & _PAGE_PRESENT) !== 0 && (level === 1 || ((level === 2 || level === 3) && (lo & _PAGE_PSE) !== 0));
}

const J_WRITE = 0;
const J_ALLOC_FREE_LIST = 1;
const J_ALLOC_NEW = 2;
const J_FREE = 3;
const J_DEFER = 4;
const J_REC = 5;

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
  /** Told after every commit (the isolation capability's sync_global_pgds). */
  afterCommit: (() => void) | null = null;
  /** Slots the pool may hold beyond poolCount: top-level tables outside the pool's count (swapper_pg_dir's KPTI half, the ASI global pgd). */
  uncounted = 0;
  private journal = new Float64Array(4096);
  private journalLen = 0;
  private journaling = false;

  constructor(
    readonly poolPfn: Pfn,
    readonly poolCount: number,
    private readonly observer: LeafObserver,
  ) {
    const cap = Math.max(1, Math.min(poolCount, 64));
    this.words = new Uint32Array(cap * 1024);
    this.live = new Uint16Array(cap);
    this.level = new Uint8Array(cap);
    this.parentSlot = new Int32Array(cap);
    this.parentIdx = new Uint16Array(cap);
    this.base = new Float64Array(cap);
    this.allocated = new Uint8Array(cap);
    this.gen = new Uint32Array(cap);
  }

  /**
   * Declare a write made to `words` directly (tests that corrupt a table by hand): the
   * system's cached abstraction is keyed on `writes`, which only `set` counts otherwise.
   */
  touch(): void {
    this.writes++;
  }

  get capacity(): number {
    return this.live.length;
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

  private grow(): void {
    const cap = this.capacity * 2;
    const grown = <T extends Uint32Array | Uint16Array | Uint8Array | Int32Array | Float64Array>(a: T, make: (n: number) => T, per = 1): T => {
      const b = make(cap * per);
      b.set(a);
      return b;
    };
    this.words = grown(this.words, (n) => new Uint32Array(n), 1024);
    this.live = grown(this.live, (n) => new Uint16Array(n));
    this.level = grown(this.level, (n) => new Uint8Array(n));
    this.parentSlot = grown(this.parentSlot, (n) => new Int32Array(n));
    this.parentIdx = grown(this.parentIdx, (n) => new Uint16Array(n));
    this.base = grown(this.base, (n) => new Float64Array(n));
    this.allocated = grown(this.allocated, (n) => new Uint8Array(n));
    this.gen = grown(this.gen, (n) => new Uint32Array(n));
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

  /** A zeroed table for `level` whose entry 0 maps `base`, hanging from (parent, idx). */
  alloc(level: number, base: Vpn, parent: number, idx: number): number {
    let slot: number;
    if (this.freeList.length > 0) {
      slot = this.freeList.pop()!;
      this.record(J_ALLOC_FREE_LIST, slot, 0, 0, 0);
    } else {
      if (this.highWater === this.capacity) this.grow();
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
    this.pending.length = kept;
  }

  /** Write entry `idx` of table `slot`, keeping live counts (non-zero entries) and the observer (present leaves) up to date. */
  set(slot: number, idx: number, lo: number, hi: number): void {
    const off = slot * 1024 + idx * 2;
    const w = this.words;
    const oldLo = w[off]!;
    const oldHi = w[off + 1]!;
    this.writes++;
    this.record(J_WRITE, slot, idx, oldLo, oldHi);
    const level = this.level[slot]!;
    // A non-present entry that keeps its frame (linux profile) occupies its slot as a leaf does.
    const wasUsed = (oldLo | oldHi) !== 0;
    if (wasUsed) {
      this.live[slot]!--;
      if (isLeafAt(oldLo, level)) this.observer.leafChanged(slot, idx, level, oldLo, oldHi, -1);
    }
    w[off] = lo;
    w[off + 1] = hi;
    if ((lo | hi) !== 0) {
      this.live[slot]!++;
      if (isLeafAt(lo, level)) this.observer.leafChanged(slot, idx, level, lo, hi, 1);
    } else if (this.live[slot] === 0 && this.parentSlot[slot]! >= 0 && wasUsed) {
      this.emptied.push(slot);
    }
    // A top-level table has no parent: its entries are what other roots mirror.
    if (this.parentSlot[slot]! < 0 && this.afterCommit !== null) this.topWrites.push(slot * 512 + idx);
  }

  begin(): void {
    this.journalLen = 0;
    this.journaling = true;
    this.emptied.length = 0;
    this.topWrites.length = 0;
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
      }
    }
    this.journalLen = 0;
    this.emptied.length = 0;
    this.topWrites.length = 0;
  }

  /** One past the last slot a committed table may hold: the pool's slots and the uncounted top-level ones. */
  get slotLimit(): number {
    return this.poolCount + this.uncounted;
  }

  /** Keep everything since `begin`, and move tables living beyond the pool into it. */
  commit(): void {
    this.journaling = false;
    this.journalLen = 0;
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
