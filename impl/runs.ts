/**
 * Sorted, disjoint, non-adjacent half-open runs [start, end) of page or frame numbers,
 * each with a label. The impl keeps three kinds of sets this way: the frames of one use
 * (text, rodata, page tables), the frames removed from the direct map, and the flush
 * obligations, whose label is the set of reasons they are owed for.
 *
 * Adding a run merges it with every run it overlaps or touches, joining their labels, so
 * the set stays in the canonical form spec/contracts/flush.ts asks of obligations
 * (maximal ranges); removing a range cuts the runs at its edges and the pieces outside
 * keep their label. Queries are binary searches: the sets hold a handful of runs.
 */

export class RunSet<L> {
  private starts: number[] = [];
  private ends: number[] = [];
  private labels: L[] = [];

  /** `join` labels two runs that become one; it must not depend on their order. */
  constructor(private readonly join: (a: L, b: L) => L) {}

  get size(): number {
    return this.starts.length;
  }

  /** Index of the first run ending after `p`. */
  private firstEndingAfter(p: number): number {
    let lo = 0;
    let hi = this.ends.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.ends[mid]! <= p) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** The first member of [p, p+count), or -1 when the range misses every run. */
  first(p: number, count: number): number {
    const i = this.firstEndingAfter(p);
    const s = this.starts[i];
    return s === undefined || s >= p + count ? -1 : Math.max(s, p);
  }

  /** Whether every member of [p, p+count) is in the set: one run holds it all, since touching runs are merged. */
  covers(p: number, count: number): boolean {
    const i = this.firstEndingAfter(p);
    const s = this.starts[i];
    return s !== undefined && s <= p && this.ends[i]! >= p + count;
  }

  /** The end of the run holding `p`, or `p` itself when it is no member. */
  endOf(p: number): number {
    const i = this.firstEndingAfter(p);
    const s = this.starts[i];
    return s !== undefined && s <= p ? this.ends[i]! : p;
  }

  /** Make [p, p+count) a member, labelled `label` joined with the labels of the runs it meets. */
  add(p: number, count: number, label: L): void {
    let lo = p;
    let hi = p + count;
    let joined = label;
    // A run ending exactly at p touches the new one, so it merges too.
    const i = this.firstEndingAfter(p - 1);
    let j = i;
    for (; j < this.starts.length && this.starts[j]! <= hi; j++) {
      lo = Math.min(lo, this.starts[j]!);
      hi = Math.max(hi, this.ends[j]!);
      joined = this.join(this.labels[j]!, joined);
    }
    this.starts.splice(i, j - i, lo);
    this.ends.splice(i, j - i, hi);
    this.labels.splice(i, j - i, joined);
  }

  /** Make [p, p+count) no member; runs straddling its edges keep their outside parts. */
  remove(p: number, count: number): void {
    const end = p + count;
    const i = this.firstEndingAfter(p);
    let j = i;
    while (j < this.starts.length && this.starts[j]! < end) j++;
    if (i === j) return;
    const starts: number[] = [];
    const ends: number[] = [];
    const labels: L[] = [];
    if (this.starts[i]! < p) {
      starts.push(this.starts[i]!);
      ends.push(p);
      labels.push(this.labels[i]!);
    }
    if (this.ends[j - 1]! > end) {
      starts.push(end);
      ends.push(this.ends[j - 1]!);
      labels.push(this.labels[j - 1]!);
    }
    this.starts.splice(i, j - i, ...starts);
    this.ends.splice(i, j - i, ...ends);
    this.labels.splice(i, j - i, ...labels);
  }

  clear(): void {
    this.starts = [];
    this.ends = [];
    this.labels = [];
  }

  /** `f` of each run, in order. */
  map<T>(f: (start: number, count: number, label: L) => T): T[] {
    return this.starts.map((s, k) => f(s, this.ends[k]! - s, this.labels[k]!));
  }

  /** A copy of the runs, for `restore` (an operation that fails puts them back). */
  save(): RunSet<L> {
    const copy = new RunSet<L>(this.join);
    copy.restore(this);
    return copy;
  }

  /** Hold the runs of `from` (an operation that failed puts them back; RadixSystem.fork copies them). */
  restore(from: RunSet<L>): void {
    this.starts = [...from.starts];
    this.ends = [...from.ends];
    this.labels = [...from.labels];
  }
}

/**
 * The first member of `a` in [p, p+count) that `b` does not hold, or -1: one binary search
 * per run of `b` skipped (D6 asks it of the frames off the direct map, less the pool's).
 */
export function firstOutside<L, M>(a: RunSet<L>, b: RunSet<M>, p: number, count: number): number {
  const end = p + count;
  for (let at = p; at < end; ) {
    const f = a.first(at, end - at);
    if (f < 0) return -1;
    const skip = b.endOf(f);
    if (skip === f) return f;
    at = skip;
  }
  return -1;
}

/** A plain set of frames or pages: every label is `true`. */
export type Members = RunSet<true>;

export function members(): Members {
  return new RunSet<true>(() => true);
}
