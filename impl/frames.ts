/**
 * Per-frame facts the policy needs (STRICT_POLICY, spec/contracts/outcome.ts), kept so that
 * a leaf costs O(1) to account whatever its size: a 1G leaf is one counter update, not
 * 262,144, a run of 4K leaves over a whole 2M block of frames one update too, and a
 * shorter run one pass over its frames' counters.
 *
 * `FrameCounters` counts leaves per frame in three tiers: a 4K leaf bumps its frame's
 * counter, a 2M leaf (or 512 4K leaves mapping a whole 2M block) its 2 MiB block's, a 1G
 * leaf its 1 GiB block's (large leaves are size-aligned in frames too, by the greedy rule
 * and the split rule). Per 1 GiB block the sums of the lower tiers answer "does any frame
 * of this block have a count" in O(1), so a range query costs O(blocks + edge frames),
 * and a 2M block's counter answers for all its frames. Each tier keeps
 * one counter per kind: mapped, writable, executable, mapped with each cache mode
 * (T5 asks whether a frame is mapped with another mode than a leaf just written), and
 * mapped outside the frame's own direct-map page (D4 when freeFrames hands it back), and
 * mapped in the kernel half but the mermap (P7 when a frame leaves the direct map).
 *
 * Memory in proportion to what is mapped: below the 1G tier, a 1 GiB block's counters
 * exist only while a 2M or 4K leaf maps one of its frames, and inside it each kind's 512
 * counters (of its 2M blocks, or of one 2M block's frames) only while one is non-zero, in
 * 16 bits while their sum fits (no counter can exceed the sum). A run of 4K PAGE_KERNEL
 * leaves over part of a 2M block costs five 1 KiB arrays, about what its page table weighs. (The
 * small records holding those arrays stay with their 1 GiB block: a map and unmap of one
 * page would otherwise make and drop one each time.)
 */
import type { Pfn } from '../spec/address.ts';
import { CACHE_MODES } from '../spec/state.ts';
import { P_EXEC, P_WRITE, PROTS } from './prot.ts';

const PER_2M = 512;
const PER_1G = 262144;

/** What a leaf is counted as: every leaf is MAPPED; WRITABLE and EXEC as its bits say; CACHE + i for its cache mode CACHE_MODES[i]. */
export const MAPPED = 0;
export const WRITABLE = 1;
export const EXEC = 2;
export const CACHE = 3;
/** Mapped by a leaf other than the frame's direct-map page (__PAGE_OFFSET + pfn). */
export const OUTSIDE_DIRECT_MAP = CACHE + CACHE_MODES.length;
/**
 * Mapped by a kernel-half leaf outside the mermap region (P7 asks when a frame leaves the
 * direct map; a process's user mapping of it is secretmem's point, and mapping pages the
 * direct map lacks is the mermap's).
 */
export const KERNEL_HALF = OUTSIDE_DIRECT_MAP + 1;
const KINDS = KERNEL_HALF + 1;

/** The index in CACHE_MODES of a leaf code's cache mode, by table: the counters are updated on every leaf write. */
export const CACHE_OF_CODE = Uint8Array.from(PROTS, (p) => CACHE_MODES.indexOf(p.cache));

/**
 * Zeroed 16-bit arrays of 512 counters given back by a Tier, for the next one: a 4K map
 * and unmap of one page would otherwise allocate and drop five of them. At most
 * SPARE_LIMIT are kept (64 KiB), so what stays is bounded, whatever was mapped once.
 */
const spare: Uint16Array[] = [];
const SPARE_LIMIT = 64;

/**
 * 512 counters per kind (the 2M blocks of a 1 GiB block, or the frames of a 2M block), each
 * kind's array allocated while its total is non-zero, and the totals.
 */
class Tier {
  private readonly counts: (Uint16Array | Uint32Array | undefined)[] = [];
  /** Per kind, the sum of its 512 counters (a plain array: a Tier comes and goes with a map of one page, and a typed one costs a buffer). */
  readonly total: number[] = new Array<number>(KINDS).fill(0);

  /** Counter `j` of `kind`. */
  get(kind: number, j: number): number {
    return this.counts[kind]?.[j] ?? 0;
  }

  /** The counters of `kind`, undefined while all are zero. */
  of(kind: number): Uint16Array | Uint32Array | undefined {
    return this.counts[kind];
  }

  /** Counters j .. j+m-1 of `kind` moved by d each. */
  add(kind: number, j: number, m: number, d: number): void {
    const total = this.total[kind]! + m * d;
    this.total[kind] = total;
    let a = this.counts[kind];
    if (total === 0) {
      // No counter is negative: the ones outside j .. j+m-1 are zero already, these become zero.
      if (a instanceof Uint16Array && spare.length < SPARE_LIMIT) spare.push(a.fill(0, j, j + m));
      this.counts[kind] = undefined;
      return;
    }
    if (a === undefined) a = this.counts[kind] = spare.pop() ?? new Uint16Array(512);
    else if (total > 0xffff && a instanceof Uint16Array) a = this.counts[kind] = Uint32Array.from(a);
    for (let q = j, e = j + m; q < e; q++) a[q]! += d;
  }

  get empty(): boolean {
    return this.total[MAPPED] === 0;
  }

  copy(): Tier {
    const t = new Tier();
    this.counts.forEach((a, kind) => {
      t.counts[kind] = a?.slice();
    });
    t.total.splice(0, KINDS, ...this.total);
    return t;
  }
}

/**
 * One 1 GiB block's lower tiers: per 2M block a count every frame of it has (its 2M
 * leaves, and its whole-block runs of 4K leaves: see FrameCounters.add), per frame the
 * rest (4K leaves), and per kind the sum of those per-frame counters.
 */
interface Gig {
  readonly mid: Tier;
  readonly small: (Tier | undefined)[];
  readonly smallTotal: number[];
}

const newGig = (): Gig => ({ mid: new Tier(), small: [], smallTotal: new Array<number>(KINDS).fill(0) });

export class FrameCounters {
  private readonly big: Int32Array;
  /** Per 1 GiB block, while a 2M or 4K leaf maps one of its frames. */
  private readonly gigs: (Gig | undefined)[];
  /** The last 1 GiB block's records freed, all zero: the next block to need some takes them (a map and unmap of one page there would make and drop them each time). */
  private spareGig: Gig | undefined = undefined;
  /** The kinds a run of leaves counts as (reused: a run's kinds are computed once). */
  private readonly kinds: number[] = new Array<number>(KINDS).fill(0);

  constructor(frames: number) {
    const n1g = Math.ceil(frames / PER_1G);
    this.big = new Int32Array(n1g * KINDS);
    this.gigs = new Array<undefined>(n1g).fill(undefined);
  }

  /** Become a copy of `src`, counters of the same machine (RadixSystem.fork). */
  copyFrom(src: FrameCounters): void {
    this.big.set(src.big);
    src.gigs.forEach((g, b) => {
      this.gigs[b] = g === undefined ? undefined : { mid: g.mid.copy(), small: g.small.map((t) => t?.copy()), smallTotal: [...g.smallTotal] };
    });
  }

  /**
   * Account `delta` for each of `n` leaves at `level` (1 = 4K, 2 = 2M, 3 = 1G) mapping
   * from `pfn` on, one leaf's frames after the other's, with the leaves' own prot code
   * (prot.ts): each counts as MAPPED, as WRITABLE / EXEC when its code says so, as the
   * kind of its cache mode, as OUTSIDE_DIRECT_MAP unless it is the frames' direct-map
   * mapping (`outside` false), and as KERNEL_HALF when it lies there (outside the mermap:
   * the caller decides).
   *
   * A frame's count is its 1G block's, plus its 2M block's `mid` counter, plus its own
   * `small` one, all kept non-negative. A run of 4K leaves covering a whole 2M block of
   * frames adds to the block's `mid` counter as a 2M leaf does: one update, not 512 (a
   * 1 GiB map of 4K pages is 512 of them). Taking frames out keeps every counter
   * non-negative: a whole block takes what it can from `mid` and the rest from each
   * frame's `small`, part of a block first moves the block's `mid` down to its frames.
   */
  add(level: number, pfn: Pfn, n: number, code: number, delta: number, outside: boolean, kernelHalf: boolean): void {
    // The kinds the leaves count as, each by `delta`.
    const kinds = this.kinds;
    let nk = 0;
    kinds[nk++] = MAPPED;
    if ((code & P_WRITE) !== 0) kinds[nk++] = WRITABLE;
    if ((code & P_EXEC) !== 0) kinds[nk++] = EXEC;
    kinds[nk++] = CACHE + CACHE_OF_CODE[code]!;
    if (outside) kinds[nk++] = OUTSIDE_DIRECT_MAP;
    if (kernelHalf) kinds[nk++] = KERNEL_HALF;
    if (level === 3) {
      const b1 = pfn / PER_1G;
      for (let i = 0; i < n; i++) for (let k = 0; k < nk; k++) this.big[(b1 + i) * KINDS + kinds[k]!]! += delta;
      return;
    }
    // Per 2M block the run meets (a 2M leaf is one): its counter, or its frames' counters and their sum.
    const frames = level === 2 ? n * PER_2M : n;
    for (let p = pfn, end = pfn + frames; p < end; ) {
      const b1 = Math.floor(p / PER_1G);
      const g = this.gigs[b1] ?? (this.gigs[b1] = this.spareGig ?? newGig());
      if (g === this.spareGig) this.spareGig = undefined;
      const j = Math.floor((p % PER_1G) / PER_2M);
      const from = p % PER_2M;
      // Whole 2M blocks j .. j+m-1, or frames from .. from+m-1 of block j.
      if (from === 0 && end - p >= PER_2M) {
        const m = Math.min(Math.floor((end - p) / PER_2M), 512 - j);
        for (let k = 0; k < nk; k++) {
          if (delta > 0) g.mid.add(kinds[k]!, j, m, delta);
          else this.takeBlocks(g, kinds[k]!, j, m, -delta);
        }
        p += m * PER_2M;
      } else {
        const m = Math.min(end - p, PER_2M - from);
        const t = g.small[j] ?? (g.small[j] = new Tier());
        for (let k = 0; k < nk; k++) {
          const kind = kinds[k]!;
          if (delta < 0 && g.mid.get(kind, j) > 0) this.spreadBlock(g, kind, j);
          t.add(kind, from, m, delta);
          g.smallTotal[kind]! += m * delta;
        }
        p += m;
      }
      if (g.mid.empty && g.smallTotal[MAPPED] === 0) {
        this.gigs[b1] = undefined;
        this.spareGig = g;
      }
    }
  }

  /** `amount` taken from every frame of 2M blocks j .. j+m-1 of `g`: from the blocks' counters while they have it, the rest from the frames'. */
  private takeBlocks(g: Gig, kind: number, j: number, m: number, amount: number): void {
    const mid = g.mid.of(kind);
    let enough = mid !== undefined;
    for (let q = j; enough && q < j + m; q++) enough = mid![q]! >= amount;
    if (enough) return g.mid.add(kind, j, m, -amount);
    for (let q = j; q < j + m; q++) {
      const taken = Math.min(g.mid.get(kind, q), amount);
      if (taken > 0) g.mid.add(kind, q, 1, -taken);
      const rest = amount - taken;
      if (rest === 0) continue;
      // Every frame's count is at least `amount`: the frames' own counters hold the rest.
      g.small[q]!.add(kind, 0, PER_2M, -rest);
      g.smallTotal[kind]! -= PER_2M * rest;
    }
  }

  /** Block j's counter of `kind` moved down to each of its frames (part of the block is about to be taken out). */
  private spreadBlock(g: Gig, kind: number, j: number): void {
    const c = g.mid.get(kind, j);
    (g.small[j] ?? (g.small[j] = new Tier())).add(kind, 0, PER_2M, c);
    g.smallTotal[kind]! += PER_2M * c;
    g.mid.add(kind, j, 1, -c);
  }

  /**
   * Whether some frame of [pfn, pfn+count) may be counted more often as MAPPED than as
   * `kind`: false only when no frame of the 1 GiB blocks the range meets is (their sums
   * agree: each frame's MAPPED count is at least its count of any kind). T5 asks it of
   * a leaf's cache mode: every leaf has one mode, so where the sums agree no leaf there
   * has another.
   */
  mayDiffer(kind: number, pfn: Pfn, count: number): boolean {
    for (let b1 = Math.floor(pfn / PER_1G), last = Math.floor((pfn + count - 1) / PER_1G); b1 <= last; b1++) {
      if (this.big[b1 * KINDS + MAPPED] !== this.big[b1 * KINDS + kind]) return true;
      const g = this.gigs[b1];
      if (g !== undefined && PER_2M * (g.mid.total[MAPPED]! - g.mid.total[kind]!) + g.smallTotal[MAPPED]! - g.smallTotal[kind]! !== 0) return true;
    }
    return false;
  }

  /**
   * The first frame of [pfn, pfn+count) with a non-zero count of `kind`, or -1. A block
   * whose sums are zero is skipped whole; only a block with a hit is looked into.
   */
  first(kind: number, pfn: Pfn, count: number): number {
    const end = pfn + count;
    let p = pfn;
    while (p < end) {
      const b1 = Math.floor(p / PER_1G);
      if (this.big[b1 * KINDS + kind]! > 0) return p;
      const g = this.gigs[b1];
      if (g === undefined || g.mid.total[kind]! + g.smallTotal[kind]! === 0) {
        p = (b1 + 1) * PER_1G;
        continue;
      }
      const j = Math.floor((p % PER_1G) / PER_2M);
      if (g.mid.get(kind, j) > 0) return p;
      const blockEnd = (b1 * 512 + j + 1) * PER_2M;
      const counts = g.small[j]?.of(kind);
      if (counts === undefined) {
        p = blockEnd;
        continue;
      }
      const stop = Math.min(blockEnd, end);
      for (; p < stop; p++) if (counts[p % PER_2M]! > 0) return p;
    }
    return -1;
  }
}
