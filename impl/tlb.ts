/**
 * The TLBs and paging-structure caches of every CPU and the flush obligations, held the
 * impl's way and brought to the canonical form of spec/contracts/flush.ts only when
 * abstract() asks.
 *
 * A CPU's TLB is, per root, one map per leaf level from the (level-aligned) vpn to the
 * cached leaf, so the lookup is at most three map probes: the 4K entry covering vpn,
 * then the 2M one, then the 1G one. Probing small first is the contract's rule that
 * among overlapping stale entries the most specific wins. Each cached leaf keeps its
 * prot code, so a hit needs no decoding to check the access.
 *
 * A CPU's paging-structure caches (Intel SDM §4.10.3: the PDE, PDPTE and PML4 caches)
 * are, per root, one map per table level L (1 = a PTE table, reached through a pmd entry,
 * up to levels - 1) from the first page the table covers to the pool slot it was in and
 * that slot's generation when the walk cached it (tables.ts `gen`), packed in one number
 * so a fill allocates nothing. The cache never follows the tables: whether an entry is
 * still 'current', 'unlinked' or 'freed' is read off the pool when it is used (the access
 * walk) or reported (abstract()). The walk on a TLB miss starts at the deepest entry
 * covering the page: at most levels - 1 map probes.
 *
 * Obligations are a RunSet labelled with their sorted, distinct reasons: adding merges
 * overlapping and adjacent ranges, a flush cuts its range out.
 */
import type { Vpn } from '../spec/address.ts';
import type { FlushObligation, Leaf, RootId, TlbEntry } from '../spec/state.ts';
import { RunSet } from './runs.ts';
import { SPAN, modSpan } from './tables.ts';

/** One cached translation: the abstract entry, its leaf's level and prot code. */
export interface Cached {
  readonly entry: TlbEntry;
  readonly level: number;
  readonly code: number;
}

/** Index 0, 1, 2: the 4K, 2M and 1G entries of one (cpu, root), by vpn. */
type ByLevel = readonly [Map<Vpn, Cached>, Map<Vpn, Cached>, Map<Vpn, Cached>];

/**
 * A cached table entry is slot + generation * SLOT_RANGE: exact in a double while the
 * generation stays below 2^29 (that many frees of one slot), and no pool has 2^24 tables.
 */
export const SLOT_RANGE = 2 ** 24;

/** Index L (1 .. levels - 1): the cached tables of level L of one (cpu, root), by the first page each covers. */
type WalkCache = Map<Vpn, number>[];

/** One paging-structure-cache entry as the impl holds it. */
export interface CachedTable {
  readonly cpu: number;
  readonly root: RootId;
  readonly level: number;
  readonly vpn: Vpn;
  readonly slot: number;
  readonly gen: number;
}

/** Two sorted lists of distinct reasons as one. */
function unionOfReasons(a: readonly string[], b: readonly string[]): readonly string[] {
  const out: string[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    const x = a[i];
    const y = b[j];
    if (y === undefined || (x !== undefined && x < y)) {
      out.push(x!);
      i++;
    } else {
      if (x === y) i++;
      out.push(y);
      j++;
    }
  }
  return out;
}

/** owedMeeting's answer with nothing owed, shared (map asks on every call). */
const NOTHING_OWED: readonly { vpn: Vpn; pages: number }[] = [];

export class Tlbs {
  private readonly perCpu: Map<RootId, ByLevel>[];
  private readonly walkCaches: Map<RootId, WalkCache>[];
  /** Whether some CPU may hold a paging-structure-cache entry: flushes skip the empty caches. */
  private walkCached = false;
  /** Bumped on every change to the paging-structure caches (abstract() keys its copy on it). */
  walkVersion = 0;
  /** The level of the entry walkStart found. */
  startLevel = 0;
  private readonly owed = new RunSet<readonly string[]>(unionOfReasons);
  /** entries() in canonical order, until the next fill or flush. */
  private sorted: TlbEntry[] | null = [];

  constructor(
    cpus: number,
    private readonly levels: number,
  ) {
    this.perCpu = Array.from({ length: cpus }, () => new Map());
    this.walkCaches = Array.from({ length: cpus }, () => new Map());
  }

  /**
   * Become a copy of `src` (RadixSystem.fork): the maps copied, the cached entries shared
   * (immutable records), the obligations and the canonical list too (never changed in place).
   */
  copyFrom(src: Tlbs): void {
    src.perCpu.forEach((tlb, cpu) => {
      const mine = this.perCpu[cpu]!;
      mine.clear();
      for (const [root, maps] of tlb) mine.set(root, [new Map(maps[0]), new Map(maps[1]), new Map(maps[2])]);
    });
    src.walkCaches.forEach((caches, cpu) => {
      const mine = this.walkCaches[cpu]!;
      mine.clear();
      for (const [root, cache] of caches) mine.set(root, cache.map((m) => new Map(m)));
    });
    this.walkCached = src.walkCached;
    this.walkVersion = src.walkVersion;
    this.startLevel = src.startLevel;
    this.owed.restore(src.owed);
    this.sorted = src.sorted;
  }

  /**
   * The paging-structure-cache entry the walk of `cpu` in `root` for vpn starts from: the
   * deepest (lowest level) covering vpn, as its packed slot and generation, with its level
   * in startLevel; -1 when none does (the walk starts at CR3).
   */
  walkStart(cpu: number, root: RootId, vpn: Vpn): number {
    if (!this.walkCached) return -1;
    const cache = this.walkCaches[cpu]!.get(root);
    if (cache === undefined) return -1;
    for (let L = 1; L < this.levels; L++) {
      const span = SPAN[(L + 1) as 2];
      const hit = cache[L]!.get(vpn - modSpan(vpn, span));
      if (hit !== undefined) {
        this.startLevel = L;
        return hit;
      }
    }
    return -1;
  }

  /**
   * After a walk found a leaf at `leafLevel`: cache every table entry above it, the tables
   * of levels leafLevel .. levels - 1 the walk read (`path`, slot by level), each with its
   * slot's generation, replacing what was cached there.
   */
  fillWalk(cpu: number, root: RootId, vpn: Vpn, leafLevel: number, path: Int32Array, gen: Uint32Array): void {
    const caches = this.walkCaches[cpu]!;
    let cache = caches.get(root);
    if (cache === undefined) {
      cache = Array.from({ length: this.levels }, () => new Map<Vpn, number>());
      caches.set(root, cache);
    }
    let changed = false;
    for (let L = leafLevel; L < this.levels; L++) {
      const slot = path[L]!;
      const span = SPAN[(L + 1) as 2];
      const m = cache[L]!;
      const key = vpn - modSpan(vpn, span);
      const packed = slot + gen[slot]! * SLOT_RANGE;
      // Walks through tables already cached change nothing: abstract() keeps its copy.
      if (m.get(key) !== packed) {
        m.set(key, packed);
        changed = true;
      }
    }
    this.walkCached = true;
    if (changed) this.walkVersion++;
  }

  /** INVLPG's side effect on the paging-structure caches of CPUs 0 .. cpus - 1: all emptied, whatever the address. */
  emptyWalkCaches(cpus: number = this.walkCaches.length): void {
    if (!this.walkCached) return;
    for (let c = 0; c < cpus; c++) this.walkCaches[c]!.clear();
    // Only emptying every CPU's makes all of them empty.
    if (cpus >= this.walkCaches.length) this.walkCached = false;
    this.walkVersion++;
  }

  /** flush_tlb_one_kernel on `cpu` for each page of the range: its TLB entries (every root) meeting it, and its paging-structure caches. */
  flushLocal(cpu: number, vpn: Vpn, pages: number, emptyWalkCache: boolean): void {
    this.dropMeeting(this.perCpu[cpu]!, vpn, vpn + pages);
    if (emptyWalkCache && this.walkCached) {
      this.walkCaches[cpu]!.clear();
      this.walkVersion++;
    }
  }

  /**
   * __flush_tlb_all on `cpu` alone (the mermap's arch_mermap_flush_tlb): every TLB entry of
   * it, any root, and its paging-structure caches; the other CPUs and the obligations stay.
   */
  flushCpu(cpu: number, emptyWalkCache: boolean): void {
    const tlb = this.perCpu[cpu]!;
    if (tlb.size > 0) {
      tlb.clear();
      this.sorted = null;
    }
    if (emptyWalkCache && this.walkCached) {
      this.walkCaches[cpu]!.clear();
      this.walkVersion++;
    }
  }

  /** `f` of every paging-structure-cache entry, in the canonical order (cpu, root, level, vpn). */
  forEachCachedTable(f: (t: CachedTable) => void): void {
    if (!this.walkCached) return;
    this.walkCaches.forEach((caches, cpu) => {
      const roots = [...caches.keys()].sort((a, b) => a - b);
      for (const root of roots) {
        const cache = caches.get(root)!;
        for (let L = 1; L < this.levels; L++) {
          const m = cache[L]!;
          if (m.size === 0) continue;
          const vpns = [...m.keys()].sort((a, b) => a - b);
          for (const vpn of vpns) {
            const packed = m.get(vpn)!;
            const slot = packed % SLOT_RANGE;
            f({ cpu, root, level: L, vpn, slot, gen: (packed - slot) / SLOT_RANGE });
          }
        }
      }
    });
  }

  /** Every cached leaf, on every CPU, in no particular order. */
  forEachCached(f: (c: Cached) => void): void {
    for (const tlb of this.perCpu) for (const maps of tlb.values()) for (const m of maps) m.forEach(f);
  }

  /** The entry `cpu` uses for vpn in `root`: the smallest cached leaf covering it. */
  lookup(cpu: number, root: RootId, vpn: Vpn): Cached | undefined {
    const maps = this.perCpu[cpu]!.get(root);
    if (maps === undefined) return undefined;
    for (let l = 0; l < 3; l++) {
      const span = SPAN[(l + 1) as 1];
      const hit = maps[l]!.get(vpn - modSpan(vpn, span));
      if (hit !== undefined) return hit;
    }
    return undefined;
  }

  /** Cache `leaf`, mapped by an entry at `level`, after a walk on `cpu` missed. */
  fill(cpu: number, root: RootId, leaf: Leaf, level: number, code: number): void {
    const tlb = this.perCpu[cpu]!;
    let maps = tlb.get(root);
    if (maps === undefined) tlb.set(root, (maps = [new Map(), new Map(), new Map()]));
    maps[level - 1]!.set(leaf.vpn, { entry: { cpu, root, leaf }, level, code });
    this.sorted = null;
  }

  /**
   * The TLB part of flush_tlb_kernel_range on CPUs 0 .. cpus - 1 (every CPU unless a
   * mutant says otherwise), every root; discharges the obligations inside the range. The
   * paging-structure caches are the caller's (emptyWalkCaches).
   */
  flushRange(vpn: Vpn, pages: number, cpus: number = this.perCpu.length): void {
    const end = vpn + pages;
    for (let c = 0; c < cpus; c++) this.dropMeeting(this.perCpu[c]!, vpn, end);
    this.owed.remove(vpn, pages);
  }

  /**
   * flush_tlb_mm_range on every CPU: the TLB entries of `roots` (one process's) meeting
   * the range, and every paging-structure-cache entry of those roots; no obligation is paid.
   * With `vpn` undefined (exit_mmap, the PCIDs dying with the mm) every entry of the roots.
   */
  flushRoots(roots: readonly RootId[], vpn?: Vpn, pages = 0): void {
    for (const tlb of this.perCpu) {
      for (const root of roots) {
        const maps = tlb.get(root);
        if (maps === undefined) continue;
        if (vpn === undefined) tlb.delete(root);
        else this.dropMeeting(new Map([[root, maps]]), vpn, vpn + pages);
        this.sorted = null;
      }
    }
    if (!this.walkCached) return;
    for (const caches of this.walkCaches) for (const root of roots) caches.delete(root);
    this.walkVersion++;
  }

  /** Drop one CPU's TLB entries (every root) whose leaf meets [vpn, end). */
  private dropMeeting(tlb: Map<RootId, ByLevel>, vpn: Vpn, end: Vpn): void {
    // Loops, not forEach: every flush runs this, and a closure per call costs more than an empty TLB.
    for (const maps of tlb.values()) {
      for (let l = 0; l < 3; l++) {
        const m = maps[l]!;
        if (m.size === 0) continue;
        const span = SPAN[(l + 1) as 1];
        for (const v of m.keys()) {
          if (v < end && vpn < v + span) {
            m.delete(v);
            this.sorted = null;
          }
        }
      }
    }
  }

  /** The TLB part of flush_tlb_all: every TLB emptied and every obligation discharged (the paging-structure caches: emptyWalkCaches). */
  flushAll(): void {
    for (const tlb of this.perCpu) tlb.clear();
    this.sorted = [];
    this.owed.clear();
  }

  owe(vpn: Vpn, pages: number, reason: string): void {
    this.owed.add(vpn, pages, [reason]);
  }

  /** Every cached entry, by cpu, root, vpn, then size ascending. */
  entries(): readonly TlbEntry[] {
    if (this.sorted === null) {
      const out: TlbEntry[] = [];
      for (const tlb of this.perCpu) {
        const here: Cached[] = [];
        for (const maps of tlb.values()) for (const m of maps) here.push(...m.values());
        here.sort((a, b) => a.entry.root - b.entry.root || a.entry.leaf.vpn - b.entry.leaf.vpn || a.level - b.level);
        for (const c of here) out.push(c.entry);
      }
      this.sorted = out;
    }
    return this.sorted;
  }

  obligations(): FlushObligation[] {
    return this.owed.map((vpn, pages, reasons) => ({ vpn, pages, reason: reasons.join('+') }));
  }

  /** The owed ranges (whole) that meet [vpn, vpn+pages): what a strict map flushes before it reuses the pages. */
  owedMeeting(vpn: Vpn, pages: number): readonly { vpn: Vpn; pages: number }[] {
    if (this.owed.size === 0) return NOTHING_OWED;
    return this.owed.map((v, n) => ({ vpn: v, pages: n })).filter((o) => o.vpn < vpn + pages && vpn < o.vpn + o.pages);
  }
}
