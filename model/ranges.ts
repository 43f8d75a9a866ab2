/** Sorted lists of disjoint page or frame ranges (frame runs, flush obligations). */

/**
 * `items` with [start, start+count) carved out: every item meeting it is cut at the
 * range's edges; the parts outside are rebuilt by `remake(item, start, count)`, the part
 * inside by `inside(…)`, or dropped when `inside` is absent. Items apart stay as they are.
 */
export function carveRange<T>(
  items: readonly T[],
  span: (t: T) => readonly [number, number],
  start: number,
  count: number,
  remake: (t: T, start: number, count: number) => T,
  inside?: (t: T, start: number, count: number) => T,
): T[] {
  const end = start + count;
  const out: T[] = [];
  for (const t of items) {
    const [tStart, tCount] = span(t);
    const tEnd = tStart + tCount;
    if (tEnd <= start || tStart >= end) {
      out.push(t);
      continue;
    }
    const lo = Math.max(tStart, start);
    const hi = Math.min(tEnd, end);
    if (tStart < lo) out.push(remake(t, tStart, lo - tStart));
    if (inside !== undefined) out.push(inside(t, lo, hi - lo));
    if (hi < tEnd) out.push(remake(t, hi, tEnd - hi));
  }
  return out;
}
