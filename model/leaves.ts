/**
 * The model's map of one root: a sorted array of disjoint leaves. These functions never
 * mutate their input (each builds a new array); init_mm's operations run them on the
 * window of entries they touch, which model/entry-store.ts splices back.
 */
import { PAGES, type PageSize, type Pfn, type Vpn } from '../spec/address.ts';
import { splitLeaf } from './hugepage.ts';
import type { Leaf, Prot } from '../spec/state.ts';

/**
 * Every leaf the model makes comes from here, so all have one hidden class: the policy
 * and footprint sweeps over thousands of leaves run several times faster monomorphic.
 */
export function makeLeaf(vpn: Vpn, pfn: Pfn, size: PageSize, prot: Prot): Leaf {
  return { vpn, pfn, size, prot };
}

export const leafEnd = (l: Leaf): Vpn => l.vpn + PAGES[l.size];

/** Index of the first leaf ending after vpn (binary search). */
function firstEndingAfter(leaves: readonly Leaf[], vpn: Vpn): number {
  let lo = 0;
  let hi = leaves.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (leafEnd(leaves[mid]!) <= vpn) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Index of the first leaf starting at or after vpn (binary search). */
function firstStartingFrom(leaves: readonly Leaf[], vpn: Vpn): number {
  let lo = 0;
  let hi = leaves.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (leaves[mid]!.vpn < vpn) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** [lo, hi): the indices of the leaves intersecting [vpn, vpn+pages), by two binary searches (a range may hold many). */
export function intersecting(leaves: readonly Leaf[], vpn: Vpn, pages: number): [number, number] {
  const lo = firstEndingAfter(leaves, vpn);
  return [lo, Math.max(lo, firstStartingFrom(leaves, vpn + pages))];
}

export function findLeaf(leaves: readonly Leaf[], vpn: Vpn): Leaf | undefined {
  const l = leaves[firstEndingAfter(leaves, vpn)];
  return l !== undefined && l.vpn <= vpn ? l : undefined;
}

/** How many pages of [vpn, vpn+pages) are mapped. */
export function mappedPages(leaves: readonly Leaf[], vpn: Vpn, pages: number): number {
  const [lo, hi] = intersecting(leaves, vpn, pages);
  let n = 0;
  for (let i = lo; i < hi; i++) {
    const l = leaves[i]!;
    n += Math.min(leafEnd(l), vpn + pages) - Math.max(l.vpn, vpn);
  }
  return n;
}

/** splitAtEdges's predicate that splits every straddling leaf (unmap, removals, force_split). */
export const always = (): boolean => true;

/**
 * The leaves with every leaf that straddles an edge of [vpn, vpn+pages) split (split
 * rule, recursively) where `shouldSplit` says so, until each piece lies wholly inside or
 * wholly outside the range. Leaves that should not split stay whole.
 */
export function splitAtEdges(leaves: readonly Leaf[], vpn: Vpn, pages: number, shouldSplit: (l: Leaf) => boolean): Leaf[] {
  const end = vpn + pages;
  const [lo, hi] = intersecting(leaves, vpn, pages);
  const pieces: Leaf[] = [];
  const visit = (l: Leaf): void => {
    const straddles = l.vpn < vpn || leafEnd(l) > end;
    const inRange = l.vpn < end && leafEnd(l) > vpn;
    if (inRange && straddles && l.size !== '4K' && shouldSplit(l)) splitLeaf(l).forEach(visit);
    else pieces.push(l);
  };
  for (let i = lo; i < hi; i++) visit(leaves[i]!);
  return replace(leaves, lo, hi, pieces);
}

/** The leaves with indices [lo, hi) replaced by `pieces` (sorted, within the same span). */
export function replace(leaves: readonly Leaf[], lo: number, hi: number, pieces: readonly Leaf[]): Leaf[] {
  // concat builds the result at its final size (spreading into a literal grows it step by step).
  return leaves.slice(0, lo).concat(pieces, leaves.slice(hi));
}

/** The leaves without those wholly inside [vpn, vpn+pages) (split the edges first). */
export function removeInside(leaves: readonly Leaf[], vpn: Vpn, pages: number): Leaf[] {
  const [lo, hi] = intersecting(leaves, vpn, pages);
  const kept = leaves.slice(lo, hi).filter((l) => l.vpn < vpn || leafEnd(l) > vpn + pages);
  return replace(leaves, lo, hi, kept);
}

/** The leaves with `f` applied to each leaf intersecting [vpn, vpn+pages). */
export function mapInside(leaves: readonly Leaf[], vpn: Vpn, pages: number, f: (l: Leaf) => Leaf): Leaf[] {
  const [lo, hi] = intersecting(leaves, vpn, pages);
  return replace(leaves, lo, hi, leaves.slice(lo, hi).map(f));
}

/** The leaves with `added` (sorted, disjoint from every leaf) inserted in place. */
export function insertLeaves(leaves: readonly Leaf[], added: readonly Leaf[]): Leaf[] {
  const first = added[0];
  if (first === undefined) return [...leaves];
  const at = firstEndingAfter(leaves, first.vpn);
  return replace(leaves, at, at, added);
}

/** The leaves lying wholly inside [vpn, vpn+pages), in order (split the edges first). */
export function takeInside(leaves: readonly Leaf[], vpn: Vpn, pages: number): Leaf[] {
  const [lo, hi] = intersecting(leaves, vpn, pages);
  return leaves.slice(lo, hi).filter((l) => l.vpn >= vpn && leafEnd(l) <= vpn + pages);
}

/** The leaves with `added` (sorted, disjoint from every leaf, possibly interleaved with them) merged in. */
export function mergeLeaves(leaves: readonly Leaf[], added: readonly Leaf[]): Leaf[] {
  const first = added[0];
  if (first === undefined) return [...leaves];
  const last = added[added.length - 1]!;
  const [lo, hi] = intersecting(leaves, first.vpn, leafEnd(last) - first.vpn);
  return replace(leaves, lo, hi, leaves.slice(lo, hi).concat(added).sort((a, b) => a.vpn - b.vpn));
}

/** The leaves with every leaf wholly inside [vpn, vpn+pages) split down to 4K (set_memory_4k's force_split). */
export function splitInsideTo4K(leaves: readonly Leaf[], vpn: Vpn, pages: number): Leaf[] {
  const [lo, hi] = intersecting(leaves, vpn, pages);
  const pieces: Leaf[] = [];
  const visit = (l: Leaf): void => {
    if (l.size !== '4K' && l.vpn >= vpn && leafEnd(l) <= vpn + pages) splitLeaf(l).forEach(visit);
    else pieces.push(l);
  };
  for (let i = lo; i < hi; i++) visit(leaves[i]!);
  return replace(leaves, lo, hi, pieces);
}
