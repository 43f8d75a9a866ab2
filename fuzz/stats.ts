/** The statistics the zoo and the bench summarise their measurements with. */

/** The median of `xs` (the mean of the middle two for an even count; Infinity sorts last); NaN for none. */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}
