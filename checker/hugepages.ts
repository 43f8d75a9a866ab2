/** The fast checks of the H family (spec/invariants/hugepages.ts defines them). */
import { PAGES } from '../spec/address.ts';
import type { CpuFeatures } from '../spec/state.ts';
import { alignmentCheck, leafCheck, type Check, type CheckTable } from './common.ts';

/** Leaves of `size` on a CPU without the feature that page size needs. */
function needsFeature(size: '2M' | '1G', feature: keyof CpuFeatures, name: string): Check {
  return leafCheck((state) => (state.config.features[feature] ? undefined : (leaf) => (leaf.size === size ? `${size} leaf on a CPU without ${name}` : undefined)));
}

export const HUGE_PAGES_CHECKS: CheckTable = {
  huge_leaf_frames_aligned_to_leaf_size: alignmentCheck('pfn', PAGES['2M']),
  no_2m_leaf_without_pse: needsFeature('2M', 'pse', 'PSE'),
  no_1g_leaf_without_gbpages: needsFeature('1G', 'gbpages', 'GB pages'),
};
