/**
 * init_mm's present leaves outside the direct map (vmalloc, the image, modules, fixmap, …)
 * by the frames they map: the aliases a scoped check of a frame rule looks for
 * (checker/common.ts `withOtherLeavesLookup`). A direct-map leaf of a frame is found by
 * address, so only the others need an index; with it, the alias closure of a command
 * costs the aliases of the frames it touched instead of a pass over every leaf.
 *
 * One list per page size, sorted by (pfn, vpn): the leaves of size s meeting frames
 * [lo, hi) are exactly those whose pfn lies in [lo - s + 1, hi), a binary search away.
 */
import { PAGES, kernelLayout, type PageSize, type PagingLevels, type Vpn } from '../spec/address.ts';
import type { FrameInterval } from '../checker/common.ts';
import type { Leaf } from '../spec/state.ts';

const SIZES: readonly PageSize[] = ['4K', '2M', '1G'];

/** (pfn, vpn) order; vpn is unique in a root, so the pair names one leaf. */
const before = (a: Leaf, pfn: number, vpn: Vpn): boolean => a.pfn < pfn || (a.pfn === pfn && a.vpn < vpn);

/** First index of `list` not before (pfn, vpn). */
function lowerBound(list: readonly Leaf[], pfn: number, vpn: Vpn): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (before(list[mid]!, pfn, vpn)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export class FrameIndex {
  /** Copied before the next change when shared with a clone (copy on write). */
  private shared = false;

  private constructor(
    private readonly base: Vpn,
    private bySize: Record<PageSize, Leaf[]>,
  ) {}

  static empty(levels: PagingLevels): FrameIndex {
    return new FrameIndex(kernelLayout(levels).pageOffset, { '4K': [], '2M': [], '1G': [] });
  }

  /** Whether the index holds this kind of leaf: not the direct map's own page of its frame (checker/common.ts's test). */
  private holds(leaf: Leaf): boolean {
    return leaf.vpn - leaf.pfn !== this.base;
  }

  private own(): void {
    if (!this.shared) return;
    this.bySize = { '4K': [...this.bySize['4K']], '2M': [...this.bySize['2M']], '1G': [...this.bySize['1G']] };
    this.shared = false;
  }

  add(leaf: Leaf): void {
    if (!this.holds(leaf)) return;
    this.own();
    const list = this.bySize[leaf.size];
    list.splice(lowerBound(list, leaf.pfn, leaf.vpn), 0, leaf);
  }

  remove(leaf: Leaf): void {
    if (!this.holds(leaf)) return;
    this.own();
    const list = this.bySize[leaf.size];
    const i = lowerBound(list, leaf.pfn, leaf.vpn);
    if (list[i] !== leaf) throw new Error(`frame index: the ${leaf.size} leaf at vpn ${leaf.vpn} is not indexed`);
    list.splice(i, 1);
  }

  /** The indexed leaves mapping a frame of the sorted, disjoint intervals, in vpn order, each once. */
  meeting(touched: readonly FrameInterval[]): Leaf[] {
    const found = new Set<Leaf>();
    for (const size of SIZES) {
      const list = this.bySize[size];
      if (list.length === 0) continue;
      for (const iv of touched) {
        for (let i = lowerBound(list, iv.lo - PAGES[size] + 1, -Infinity); i < list.length && list[i]!.pfn < iv.hi; i++) found.add(list[i]!);
      }
    }
    return [...found].sort((a, b) => a.vpn - b.vpn);
  }

  /** Every indexed leaf, in vpn order (for the test against a recount). */
  all(): Leaf[] {
    return SIZES.flatMap((s) => this.bySize[s]).sort((a, b) => a.vpn - b.vpn);
  }

  clone(): FrameIndex {
    this.shared = true;
    const copy = new FrameIndex(this.base, this.bySize);
    copy.shared = true;
    return copy;
  }
}
