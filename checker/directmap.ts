/**
 * The fast checks of the D family (spec/invariants/directmap.ts defines them): each is a
 * per-leaf test of the definition's own predicate, run on the leaves of the scope only,
 * since a leaf breaks them by its own address, frame and permission.
 */
import { KERNEL_IMAGE_MAP, KERNEL_IMAGE_MAP_END, directMapRegion, hasFrameFacts } from '../spec/invariants/terms.ts';
import { executableInDirectMap, nonLinearLeaf } from '../spec/invariants/directmap.ts';
import { leafCheck, mappedBesideDirectMapCheck, type CheckTable } from './common.ts';

export const DIRECT_MAP_CHECKS: CheckTable = {
  direct_map_maps_each_page_to_its_own_frame: leafCheck((state) => {
    const dm = directMapRegion(state);
    return dm === undefined ? undefined : nonLinearLeaf(dm.vpn, dm.end, 'direct-map');
  }),
  high_map_maps_each_page_to_its_own_frame: leafCheck((state) => (hasFrameFacts(state) ? nonLinearLeaf(KERNEL_IMAGE_MAP, KERNEL_IMAGE_MAP_END, 'high-map') : undefined)),
  no_executable_leaf_in_direct_map: leafCheck((state) => {
    const dm = directMapRegion(state);
    return dm === undefined ? undefined : executableInDirectMap(dm.vpn, dm.end);
  }),
  free_frames_mapped_only_by_their_direct_map_page: mappedBesideDirectMapCheck('free', 'a free frame mapped outside its direct-map page'),
};
