/**
 * The fast checks of the D family (spec/invariants/directmap.ts defines them): D1-D4 are a
 * per-leaf test of the definition's own predicate, run on the leaves of the scope only,
 * since a leaf breaks them by its own address, frame and permission; D5 and D7 look at the
 * TLBs, D6 at the frame runs.
 */
import { upperHalfStart } from '../spec/address.ts';
import { KERNEL_IMAGE_MAP, KERNEL_IMAGE_MAP_END, directMapRegion, framesText, hasFrameFacts, runText } from '../spec/invariants/terms.ts';
import { atDirectMapPage, executableInDirectMap, nonLinearLeaf } from '../spec/invariants/directmap.ts';
import { inMermapRegion, uncovered } from '../spec/invariants/clients.ts';
import { tlbText } from '../spec/invariants/tlb.ts';
import type { AbstractState, FrameRun, TlbEntry } from '../spec/state.ts';
import { forEachRun, frameUseCheck, leafCheck, leafPages, mappedBesideDirectMapCheck, Witnesses, type Check, type CheckTable } from './common.ts';
import { pageblocksMeeting } from './clients.ts';
import { isOwed } from './tlb.ts';

/** The TLB entries `select` keeps, each against the frame runs it caches, witnessing those `isRun` picks. */
function cachedFramesCheck(select: (state: AbstractState, e: TlbEntry) => boolean, isRun: (run: FrameRun) => boolean, why: string): Check {
  return (state) => {
    const w = new Witnesses();
    for (const e of state.tlb) {
      if (!select(state, e)) continue;
      forEachRun(state.frames, e.leaf.pfn, leafPages(e.leaf), (run, from, n) => {
        if (!isRun(run)) return;
        const frames = [{ pfn: from, count: n }];
        w.add({ root: e.root, vpn: e.leaf.vpn + (from - e.leaf.pfn), pages: n, frames, detail: `${tlbText(e)}, which reaches ${framesText(from, n)}: ${why}` });
      });
    }
    return w.done();
  };
}

/**
 * D6: one pass over the frame runs; a free noDirectMap run (few: frames are freed back into
 * the direct map) is cut by the unmapped pageblocks inside it, found by binary search.
 */
const freedOutOfTheDirectMap: Check = (state) => {
  const w = new Witnesses();
  for (const r of state.frames) {
    if (r.use !== 'free' || !r.noDirectMap) continue;
    const end = r.pfn + r.count;
    for (const [lo, hi] of uncovered(r.pfn, end, pageblocksMeeting(state, r.pfn, end))) {
      w.add({ frames: [{ pfn: lo, count: hi - lo }], detail: `${runText(r)}: freed while removed from the direct map` });
    }
  }
  return w.done();
};

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
  // The TLB-against-frames checks ignore the scope, as the L checks do (checker/tlb.ts).
  // The mermap's own entries are its purpose (the definition's exemption).
  no_tlb_entry_caches_a_frame_removed_from_the_direct_map: cachedFramesCheck(
    (state, e) => e.leaf.vpn >= upperHalfStart(state.config.levels) && !isOwed(state, e) && !inMermapRegion(state, e.leaf),
    (run) => run.noDirectMap,
    'the frame is removed from the direct map',
  ),
  frames_restored_to_the_direct_map_before_freed: freedOutOfTheDirectMap,
  free_frames_cached_only_at_their_direct_map_page: cachedFramesCheck(
    (state, e) => !atDirectMapPage(state, e), (run) => run.use === 'free', 'a free frame cached outside its direct-map page'),
  // Few absent runs (the e820 holes, the hotplug space): frameUseCheck skips the leaves that miss them all.
  direct_map_maps_no_absent_frame: frameUseCheck(
    (leaf, _root, state) => {
      const dm = directMapRegion(state);
      return dm !== undefined && leaf.vpn < dm.end && dm.vpn < leaf.vpn + leafPages(leaf);
    },
    (r) => r.use === 'absent',
    () => 'the direct map maps a frame with no memory',
  ),
};
