/**
 * The postconditions of split and collapse (spec/contracts/hugepage.ts), clause by clause.
 */
import { PAGES, type Vpn } from '../../address.ts';
import { protEquals, type Leaf } from '../../state.ts';
import { validateCollapse, validateSplit } from '../hugepage.ts';
import { nothingBut, rangeFlush, rootLeaves } from './effect.ts';
import { firstHole, leafAt, leavesOnly, meeting, sizeBelow } from './leaves.ts';
import { RangeSet, rangeEnd, type Range } from './ranges.ts';
import { contractClauses, type Contract } from './relation.ts';

const splitSay = contractClauses('split', {
  enoent: 'ENOENT vpn is not mapped',
  small: 'EINVAL vpn the leaf containing vpn is 4K (nothing to split)',
  leaves: "the leaf L containing vpn is replaced by 512 leaves of the next size down covering L's range, frames contiguous from L's pfn, every attribute kept exactly",
  frames: 'frames are unchanged',
  tlb: "TLB entries intersecting L's range are flushed on all CPUs",
  obligations: 'obligations there discharged (flush.ts)',
  tables: 'ENOMEM the new table does not fit in the pool',
});

const collapseSay = contractClauses('collapse', {
  enoent: 'ENOENT some page of B is unmapped, B = the size-aligned block containing vpn',
  uniform: 'EINVAL vpn B is not exactly 512 leaves of the next size down with identical prot and contiguous frames from a size-aligned pfn',
  kernel4k: 'EINVAL vpn ... or they are kept 4K (kernel4k, set_memory_4k: collapse_pmd_page never collapses them)',
  leaves: 'those 512 leaves are replaced by one leaf of size with their prot at their first pfn',
  frames: 'frames are unchanged',
  tlb: 'B is flushed on all CPUs',
  obligations: 'B is flushed on all CPUs (obligations there discharged)',
  tables: 'collapse frees a table (tablesInUse follows the footprint)',
});

const leafRange = (l: Leaf): Range => ({ vpn: l.vpn, pages: PAGES[l.size] });

export const SPLIT: Contract<'split'> = {
  source: 'spec/contracts/hugepage.ts',
  say: splitSay,
  args: (config, c) => validateSplit(config, c.root, c.vpn),
  state: (before, c) => {
    const leaf = leafAt(rootLeaves(before), c.vpn);
    if (leaf === undefined) return { error: { errno: 'ENOENT', arg: 'vpn' }, clause: splitSay.enoent };
    return leaf.size === '4K' ? { error: { errno: 'EINVAL', arg: 'vpn' }, clause: splitSay.small } : null;
  },
  scope: (before, c) => {
    const leaf = leafAt(rootLeaves(before), c.vpn);
    return [leaf === undefined ? { vpn: c.vpn, pages: 1 } : leafRange(leaf)];
  },
  // leaves: each page of L in the block of the next size down around it, at L's frame
  // offset, with L's prot; tlb, obligations, tables: L's range flushed.
  effect: (before, c) => {
    const leaf = leafAt(rootLeaves(before), c.vpn)!;
    const size = sizeBelow(leaf.size)!;
    const range = new RangeSet([leafRange(leaf)]);
    return nothingBut(range, {
      expect: (p) => {
        const vpn = p - (p % PAGES[size]);
        return { leaf: { vpn, pfn: leaf.pfn + (vpn - leaf.vpn), size, prot: leaf.prot }, until: leaf.vpn + PAGES[leaf.size] };
      },
      flushed: rangeFlush(range.ranges),
    });
  },
};

/** B, the size-aligned block collapse works on. */
function blockOf(vpn: Vpn, size: '2M' | '1G'): Range {
  return { vpn: vpn - (vpn % PAGES[size]), pages: PAGES[size] };
}

/**
 * Whether the mapped block B is one leaf's worth: every leaf in it of the next size down,
 * with the first one's prot and frame offset (so frames run on contiguously), from a
 * size-aligned frame. B fully mapped by such leaves is exactly 512 of them.
 */
function uniform(leaves: readonly Leaf[], block: Range, size: '2M' | '1G'): boolean {
  const [lo, hi] = meeting(leaves, block);
  const first = leaves[lo]!;
  const small = sizeBelow(size);
  if (first.vpn !== block.vpn || first.pfn % PAGES[size] !== 0) return false;
  return leaves.slice(lo, hi).every((l) => l.size === small && protEquals(l.prot, first.prot) && l.pfn - l.vpn === first.pfn - first.vpn);
}

export const COLLAPSE: Contract<'collapse'> = {
  source: 'spec/contracts/hugepage.ts',
  say: collapseSay,
  args: (config, c) => validateCollapse(config, c.root, c.vpn, c.size),
  state: (before, c) => {
    const leaves = rootLeaves(before);
    const block = blockOf(c.vpn, c.size);
    // ENOENT: a page without a leaf (a non-present entry is unmapped too).
    if (firstHole(leavesOnly(leaves), block) !== undefined) return { error: { errno: 'ENOENT', arg: 'vpn' }, clause: collapseSay.enoent };
    if (!uniform(leaves, block, c.size)) return { error: { errno: 'EINVAL', arg: 'vpn' }, clause: collapseSay.uniform };
    const [lo, hi] = meeting(leaves, block);
    return leaves.slice(lo, hi).some((l) => l.prot.kernel4k === true) ? { error: { errno: 'EINVAL', arg: 'vpn' }, clause: collapseSay.kernel4k } : null;
  },
  scope: (_, c) => [blockOf(c.vpn, c.size)],
  // leaves: B is one leaf of `size` at its first leaf's frame, with that leaf's prot;
  // tlb, obligations, tables: B flushed.
  effect: (before, c) => {
    const block = blockOf(c.vpn, c.size);
    const first = leafAt(rootLeaves(before), block.vpn)!;
    const range = new RangeSet([block]);
    return nothingBut(range, { expect: () => ({ leaf: { vpn: block.vpn, pfn: first.pfn, size: c.size, prot: first.prot }, until: rangeEnd(block) }), flushed: rangeFlush([block]) });
  },
};
