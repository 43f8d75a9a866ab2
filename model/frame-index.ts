/**
 * init_mm's present leaves outside the direct map (vmalloc, the image, modules, fixmap, …)
 * by the frames they map: the aliases a scoped check of a frame rule looks for
 * (checker/common.ts `withOtherLeavesLookup`). A direct-map leaf of a frame is found by
 * address, so only the others need an index; with it, the alias closure of a command
 * costs the aliases of the frames it touched instead of a pass over every leaf.
 *
 * One list per page size, sorted by (pfn, vpn): the leaves of size s meeting frames
 * [lo, hi) are exactly those whose pfn lies in [lo - s + 1, hi), a binary search away.
 * Each list is chunked (model/chunked-list.ts): a command's few leaves in and out move
 * one chunk each, however many vmalloc leaves a large machine has, and a clone shares
 * the chunks until it edits one.
 */
import { PAGES, kernelLayout, type PageSize, type PagingLevels, type Vpn } from '../spec/address.ts';
import type { FrameInterval } from '../checker/common.ts';
import type { Leaf } from '../spec/state.ts';
import { ChunkedList } from './chunked-list.ts';

const SIZES: readonly PageSize[] = ['4K', '2M', '1G'];

/** Where a leaf sorts: vpn is unique in a root, so the pair names one leaf. */
interface FrameKey {
  readonly pfn: number;
  readonly vpn: Vpn;
}

/** (pfn, vpn) order. */
const before = (a: Leaf, k: FrameKey): boolean => a.pfn < k.pfn || (a.pfn === k.pfn && a.vpn < k.vpn);
const keyOf = (l: Leaf): FrameKey => l;

type BySize = Record<PageSize, ChunkedList<Leaf, FrameKey>>;

const emptyList = (): ChunkedList<Leaf, FrameKey> => new ChunkedList(before, keyOf);

export class FrameIndex {
  private constructor(
    private readonly base: Vpn,
    private readonly bySize: BySize,
  ) {}

  static empty(levels: PagingLevels): FrameIndex {
    return new FrameIndex(kernelLayout(levels).pageOffset, { '4K': emptyList(), '2M': emptyList(), '1G': emptyList() });
  }

  /** Whether the index holds this kind of leaf: not the direct map's own page of its frame (checker/common.ts's test). */
  private holds(leaf: Leaf): boolean {
    return leaf.vpn - leaf.pfn !== this.base;
  }

  add(leaf: Leaf): void {
    if (this.holds(leaf)) this.bySize[leaf.size].insert(leaf);
  }

  remove(leaf: Leaf): void {
    if (!this.holds(leaf)) return;
    if (!this.bySize[leaf.size].remove(leaf)) throw new Error(`frame index: the ${leaf.size} leaf at vpn ${leaf.vpn} is not indexed`);
  }

  /** The indexed leaves mapping a frame of the sorted, disjoint intervals, in vpn order, each once. */
  meeting(touched: readonly FrameInterval[]): Leaf[] {
    const found = new Set<Leaf>();
    for (const size of SIZES) {
      const list = this.bySize[size];
      if (list.length === 0) continue;
      for (const iv of touched) {
        list.forEachFrom({ pfn: iv.lo - PAGES[size] + 1, vpn: -Infinity }, (l) => {
          if (l.pfn >= iv.hi) return false;
          found.add(l);
          return true;
        });
      }
    }
    return [...found].sort((a, b) => a.vpn - b.vpn);
  }

  /** Every indexed leaf, in vpn order (for the test against a recount). */
  all(): Leaf[] {
    return SIZES.flatMap((s) => this.bySize[s].toArray()).sort((a, b) => a.vpn - b.vpn);
  }

  /** An independent index: the lists' chunks shared until either side edits one (copy on write). */
  clone(): FrameIndex {
    return new FrameIndex(this.base, { '4K': this.bySize['4K'].clone(), '2M': this.bySize['2M'].clone(), '1G': this.bySize['1G'].clone() });
  }
}
