/** The fast checks of the H family (spec/invariants/hugepages.ts defines them). */
import { PAGES } from '../spec/address.ts';
import type { AbstractRoot, CpuFeatures, Leaf } from '../spec/state.ts';
import { alignmentCheck, inScope, leafCheck, leafPages, scopeRange, Witnesses, type Check, type CheckTable } from './common.ts';

/** Leaves of `size` on a CPU without the feature that page size needs. */
function needsFeature(size: '2M' | '1G', feature: keyof CpuFeatures, name: string): Check {
  return leafCheck((state) => (state.config.features[feature] ? undefined : (leaf) => (leaf.size === size ? `${size} leaf on a CPU without ${name}` : undefined)));
}

/** Large entries, present or not, with kernel4k: the leaves about the scope, and every (rare) non-present entry. */
const kernel4kOnLarge: Check = (state, scope) => {
  const w = new Witnesses();
  const test = (root: AbstractRoot, e: Leaf): void => {
    if (e.size !== '4K' && e.prot.kernel4k === true && inScope(e.vpn, leafPages(e), scope)) w.addLeaf(root, e, `a ${e.size} entry carries kernel4k`);
  };
  for (const root of state.roots) {
    const [lo, hi] = scopeRange(root.leaves, scope);
    for (let i = lo; i < hi; i++) test(root, root.leaves[i]!);
    for (const e of root.nonPresent ?? []) test(root, e);
  }
  return w.done();
};

export const HUGE_PAGES_CHECKS: CheckTable = {
  huge_leaf_frames_aligned_to_leaf_size: alignmentCheck('pfn', PAGES['2M']),
  no_2m_leaf_without_pse: needsFeature('2M', 'pse', 'PSE'),
  no_1g_leaf_without_gbpages: needsFeature('1G', 'gbpages', 'GB pages'),
  kernel_4k_pages_stay_4k: kernel4kOnLarge,
};
