/**
 * Per-frame facts the policy needs (STRICT_POLICY, spec/contracts/outcome.ts), kept so that
 * a leaf costs O(1) to account whatever its size: a 1G leaf is one counter update, not
 * 262,144.
 *
 * `FrameCounters` counts leaves per frame in three tiers, one per leaf size: a 4K leaf
 * bumps its frame's counter, a 2M leaf its 2 MiB block's, a 1G leaf its 1 GiB block's
 * (large leaves are size-aligned in frames too, by the greedy rule and the split rule).
 * Running sums of the lower tiers per block answer "does any frame of this aligned block
 * have a count" in O(1), so a range query costs O(blocks + edge frames).
 */
import type { Pfn } from '../spec/address.ts';

const PER_2M = 512;
const PER_1G = 262144;

/** What a leaf is counted as: every leaf is MAPPED; WRITABLE and EXEC as its bits say. */
export const MAPPED = 0;
export const WRITABLE = 1;
export const EXEC = 2;
const KINDS = 3;

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
   * Account `delta` leaves at `level` (1 = 4K, 2 = 2M, 3 = 1G) mapping from `pfn`: each
   * counts as MAPPED, and as WRITABLE / EXEC when `writable` / `exec`.
   */
  add(level: number, pfn: Pfn, writable: boolean, exec: boolean, delta: number): void {
    const b2 = Math.floor(pfn / PER_2M);
    const b1 = Math.floor(pfn / PER_1G);
    const w = writable ? delta : 0;
    const x = exec ? delta : 0;
    if (level === 1) {
      let chunk = this.small[b2];
      if (chunk === undefined) this.small[b2] = chunk = new Int32Array(PER_2M * KINDS);
      bump(chunk, (pfn % PER_2M) * KINDS, delta, w, x);
      bump(this.smallIn2m, b2 * KINDS, delta, w, x);
      bump(this.smallIn1g, b1 * KINDS, delta, w, x);
    } else if (level === 2) {
      bump(this.mid, b2 * KINDS, delta, w, x);
      bump(this.midIn1g, b1 * KINDS, delta, w, x);
    } else {
      bump(this.big, b1 * KINDS, delta, w, x);
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

function bump(a: Int32Array, at: number, mapped: number, writable: number, exec: number): void {
  a[at]! += mapped;
  a[at + 1]! += writable;
  a[at + 2]! += exec;
}
