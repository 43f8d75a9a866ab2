/**
 * Per-frame facts the policy needs (STRICT_POLICY, spec/contracts/outcome.ts), kept so that
 * a leaf costs O(1) to account whatever its size: a 1G leaf is one counter update, not
 * 262,144.
 *
 * `FrameCounters` counts leaves per frame in three tiers, one per leaf size: a 4K leaf
 * bumps its frame's counter, a 2M leaf its 2 MiB block's, a 1G leaf its 1 GiB block's
 * (large leaves are size-aligned in frames too, by the greedy rule and the split rule).
 * Running sums of the lower tiers per block answer "does any frame of this aligned block
 * have a count" in O(1), so a range query costs O(blocks + edge frames). Each tier keeps
 * one counter per kind: mapped, writable, executable, mapped with each cache mode
 * (T5 asks whether a frame is mapped with another mode than a leaf just written), and
 * mapped outside the frame's own direct-map page (D4 when freeFrames hands it back), and
 * mapped in the kernel half but the mermap (P7 when a frame leaves the direct map).
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

export class FrameCounters {
  /** 4K counters, allocated per 2 MiB block on first use (most memory is mapped huge). */
  private readonly small: (Int32Array | undefined)[];
  private readonly smallIn2m: Int32Array;
  private readonly smallIn1g: Int32Array;
  private readonly mid: Int32Array;
  private readonly midIn1g: Int32Array;
  private readonly big: Int32Array;

  constructor(frames: number) {
    const n2m = Math.ceil(frames / PER_2M);
    const n1g = Math.ceil(frames / PER_1G);
    this.small = new Array<Int32Array | undefined>(n2m).fill(undefined);
    this.smallIn2m = new Int32Array(n2m * KINDS);
    this.smallIn1g = new Int32Array(n1g * KINDS);
    this.mid = new Int32Array(n2m * KINDS);
    this.midIn1g = new Int32Array(n1g * KINDS);
    this.big = new Int32Array(n1g * KINDS);
  }

  /**
   * Account `delta` leaves at `level` (1 = 4K, 2 = 2M, 3 = 1G) mapping from `pfn` with the
   * leaf's own prot code (prot.ts): each counts as MAPPED, as WRITABLE / EXEC when its code
   * says so, as the kind of its cache mode, as OUTSIDE_DIRECT_MAP unless it is the
   * frames' direct-map mapping (`outside` false), and as KERNEL_HALF when it lies there
   * (outside the mermap: the caller decides).
   */
  add(level: number, pfn: Pfn, code: number, delta: number, outside: boolean, kernelHalf: boolean): void {
    const b2 = Math.floor(pfn / PER_2M);
    const b1 = Math.floor(pfn / PER_1G);
    const w = (code & P_WRITE) !== 0 ? delta : 0;
    const x = (code & P_EXEC) !== 0 ? delta : 0;
    const cache = CACHE + CACHE_OF_CODE[code]!;
    const o = outside ? delta : 0;
    const k = kernelHalf ? delta : 0;
    if (level === 1) {
      let chunk = this.small[b2];
      if (chunk === undefined) this.small[b2] = chunk = new Int32Array(PER_2M * KINDS);
      bump(chunk, (pfn % PER_2M) * KINDS, delta, w, x, cache, o, k);
      bump(this.smallIn2m, b2 * KINDS, delta, w, x, cache, o, k);
      bump(this.smallIn1g, b1 * KINDS, delta, w, x, cache, o, k);
    } else if (level === 2) {
      bump(this.mid, b2 * KINDS, delta, w, x, cache, o, k);
      bump(this.midIn1g, b1 * KINDS, delta, w, x, cache, o, k);
    } else {
      bump(this.big, b1 * KINDS, delta, w, x, cache, o, k);
    }
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
      if (p % PER_1G === 0 && p + PER_1G <= end && this.midIn1g[b1 * KINDS + kind]! + this.smallIn1g[b1 * KINDS + kind]! === 0) {
        p += PER_1G;
        continue;
      }
      const b2 = Math.floor(p / PER_2M);
      if (this.mid[b2 * KINDS + kind]! > 0) return p;
      const blockEnd = (b2 + 1) * PER_2M;
      const chunk = this.small[b2];
      if (chunk === undefined || this.smallIn2m[b2 * KINDS + kind] === 0) {
        p = blockEnd;
        continue;
      }
      const stop = Math.min(blockEnd, end);
      for (; p < stop; p++) if (chunk[(p % PER_2M) * KINDS + kind]! > 0) return p;
    }
    return -1;
  }
}

function bump(a: Int32Array, at: number, mapped: number, writable: number, exec: number, cache: number, outside: number, kernelHalf: number): void {
  a[at]! += mapped;
  a[at + 1]! += writable;
  a[at + 2]! += exec;
  a[at + cache]! += mapped;
  a[at + OUTSIDE_DIRECT_MAP]! += outside;
  a[at + KERNEL_HALF]! += kernelHalf;
}
