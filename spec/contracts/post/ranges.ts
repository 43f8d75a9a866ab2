/**
 * Sets of pages as sorted, disjoint, non-adjacent ranges: the ranges an operation
 * changes, flushes or removes. Built from any list of ranges (overlapping or touching
 * ones become one), queried by binary search.
 */
import { VPN_LIMIT, type Vpn } from '../../address.ts';

export interface Range {
  readonly vpn: Vpn;
  readonly pages: number;
}

export const rangeEnd = (r: Range): Vpn => r.vpn + r.pages;

export class RangeSet {
  readonly ranges: readonly Range[];

  constructor(ranges: readonly Range[]) {
    const sorted = ranges.filter((r) => r.pages > 0).sort((a, b) => a.vpn - b.vpn);
    const out: Range[] = [];
    for (const r of sorted) {
      const last = out[out.length - 1];
      if (last !== undefined && r.vpn <= rangeEnd(last)) out[out.length - 1] = { vpn: last.vpn, pages: Math.max(rangeEnd(last), rangeEnd(r)) - last.vpn };
      else out.push(r);
    }
    this.ranges = out;
  }

  static readonly EMPTY = new RangeSet([]);

  /** Index of the first range ending after `vpn`. */
  private after(vpn: Vpn): number {
    let lo = 0;
    let hi = this.ranges.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (rangeEnd(this.ranges[mid]!) <= vpn) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** The range containing `vpn`, if any. */
  around(vpn: Vpn): Range | undefined {
    const r = this.ranges[this.after(vpn)];
    return r !== undefined && r.vpn <= vpn ? r : undefined;
  }

  has(vpn: Vpn): boolean {
    return this.around(vpn) !== undefined;
  }

  /** Whether some page of [lo, hi) is in the set. */
  meets(lo: Vpn, hi: Vpn): boolean {
    const r = this.ranges[this.after(lo)];
    return r !== undefined && r.vpn < hi;
  }

  /**
   * Part in, part out: the blocks the split rule must split. The first range ending after
   * lo decides: it misses [lo, hi), or holds all of it (ranges never touch, so one range
   * holds any run of pages in the set), or it straddles.
   */
  straddles(lo: Vpn, hi: Vpn): boolean {
    const r = this.ranges[this.after(lo)];
    return r !== undefined && r.vpn < hi && (r.vpn > lo || rangeEnd(r) < hi);
  }

  /** The first page after `vpn` where the set starts or ends (VPN_LIMIT when none). */
  nextEdge(vpn: Vpn): Vpn {
    const r = this.ranges[this.after(vpn)];
    return r === undefined ? VPN_LIMIT : r.vpn > vpn ? r.vpn : rangeEnd(r);
  }

  /** [lo, hi) without the set's pages, as ranges in order. */
  outside(lo: Vpn, hi: Vpn): Range[] {
    const out: Range[] = [];
    let at = lo;
    for (let i = this.after(lo); i < this.ranges.length && at < hi; i++) {
      const r = this.ranges[i]!;
      if (r.vpn >= hi) break;
      if (r.vpn > at) out.push({ vpn: at, pages: r.vpn - at });
      at = Math.max(at, rangeEnd(r));
    }
    if (at < hi) out.push({ vpn: at, pages: hi - at });
    return out;
  }
}
