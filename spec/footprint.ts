/**
 * The radix footprint of a leaf set (the count ENOMEM is judged on, spec/contracts/README.md):
 * how many page tables a 4- or 5-level x86 radix tree needs to hold exactly these leaves,
 * with every emptied table freed.
 *
 * A leaf at level l (1 = PTE, 2 = PMD, 3 = PUD) lives in a level-l table, which hangs in
 * a level-(l+1) table, and so on up to the pgd. The level-L table holding vpn is named by
 * the region one level-(L+1) entry covers, floor(vpn / pagesPerEntry(L+1)); the pgd is
 * always there (init_mm's pgd is allocated at boot and never freed). So
 *
 *   tables = 1 + Σ over L in 1..levels-1 of |{ floor(v / pagesPerEntry(L+1)) :
 *                                             leaf (v, size) with leafLevel(size) ≤ L }|
 *
 * Both the model (which has no tables) and the impl's pool accounting must agree on it:
 * under strict an operation fails with ENOMEM iff the footprint of the state it would
 * produce (plus the tables pending a flush) exceeds config.tablePool.count. Under linux
 * the kernel also keeps empty tables (spec/contracts/linux.ts, "Page tables"): they
 * count too.
 */
import { leafLevel, pagesPerEntry, type Level, type PagingLevels } from './address.ts';
import type { Leaf } from './state.ts';

/** Tables needed for `leaves` (sorted by vpn, disjoint) under `levels`-level paging. */
export function tableFootprint(levels: PagingLevels, leaves: readonly Leaf[]): number {
  let tables = 1;
  for (let L = 1; L < levels; L++) {
    const span = pagesPerEntry((L + 1) as Level);
    let last = -1;
    for (const leaf of leaves) {
      if (leafLevel(leaf.size) > L) continue;
      // Sorted leaves give non-decreasing keys: count each key once.
      const key = Math.floor(leaf.vpn / span);
      if (key !== last) {
        tables++;
        last = key;
      }
    }
  }
  return tables;
}

/**
 * The tables below the pgd that one leaf makes tableFootprint count: for every level L
 * from the leaf's own up to levels-1, the level-L table with key floor(vpn /
 * pagesPerEntry(L+1)). tableFootprint(levels, leaves) is 1 + the number of distinct
 * (L, key) pairs over all the leaves, so a count of how many leaves need each pair keeps
 * the footprint up to date leaf by leaf.
 */
export function forEachTableOf(levels: PagingLevels, leaf: Leaf, fn: (level: Level, key: number) => void): void {
  for (let L = leafLevel(leaf.size); L < levels; L++) fn(L as Level, Math.floor(leaf.vpn / pagesPerEntry((L + 1) as Level)));
}
