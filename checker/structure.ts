/** The fast checks of the S family (spec/invariants/structure.ts defines them). */
import { PAGE_SIZES, VPN_LIMIT, isCanonicalRange, isKernelHalf, lowerHalfEnd, upperHalfStart } from '../spec/address.ts';
import { tableFootprint } from '../spec/footprint.ts';
import { framesText, hasFrameFacts, leafText, runText } from '../spec/invariants/terms.ts';
import type { FrameRun, Leaf } from '../spec/state.ts';
import { Witnesses, alignmentCheck, forEachNeighbours, inScope, mappedBesideDirectMapCheck, leafCheck, leafPages, scopeRange, sortedLeaves, type Check, type CheckTable } from './common.ts';

/**
 * S7 in one sweep over the runs sorted by pfn: the frames a run shares with earlier runs
 * are those below the furthest end so far, and a gap is what lies between that end and
 * the next run's start.
 */
const frameRunsCoverMemory: Check = (state) => {
  if (!hasFrameFacts(state)) return [];
  const memory = state.config.frames;
  const w = new Witnesses();
  const runs: FrameRun[] = [];
  for (const run of state.frames) {
    if (Number.isInteger(run.pfn) && Number.isInteger(run.count) && run.count >= 1) runs.push(run);
    else w.add({ frames: [{ pfn: run.pfn, count: run.count }], detail: `${runText(run)}: pfn is not an integer or count not a positive integer` });
  }
  let sorted = true;
  for (let i = 1; i < runs.length; i++) {
    if (runs[i]!.pfn >= runs[i - 1]!.pfn) continue;
    sorted = false;
    w.add({ frames: [{ pfn: runs[i]!.pfn, count: runs[i]!.count }], detail: `${runText(runs[i]!)} starts below ${runText(runs[i - 1]!)}` });
  }
  for (const run of runs) {
    const end = run.pfn + run.count;
    if (run.pfn < 0) w.add({ frames: [{ pfn: run.pfn, count: Math.min(end, 0) - run.pfn }], detail: `${runText(run)}: frames below pfn 0` });
    if (end > memory) {
      const from = Math.max(run.pfn, memory);
      w.add({ frames: [{ pfn: from, count: end - from }], detail: `${runText(run)}: frames past the ${memory} frames of memory` });
    }
  }
  const gap = (from: number, to: number): void => {
    const lo = Math.max(from, 0);
    const hi = Math.min(to, memory);
    if (lo < hi) w.add({ frames: [{ pfn: lo, count: hi - lo }], detail: `${framesText(lo, hi - lo)} are in no run` });
  };
  let reach = -Infinity;
  let reacher: FrameRun | undefined;
  for (const run of sorted ? runs : [...runs].sort((a, b) => a.pfn - b.pfn)) {
    const end = run.pfn + run.count;
    if (reacher !== undefined && run.pfn < reach) {
      const count = Math.min(end, reach) - run.pfn;
      w.add({ frames: [{ pfn: run.pfn, count }], detail: `${runText(run)} and ${runText(reacher)} overlap` });
    } else {
      gap(reach, run.pfn);
    }
    if (end > reach) {
      reach = end;
      reacher = run;
    }
  }
  gap(reach, memory);
  return w.done();
};

export const STRUCTURE_CHECKS: CheckTable = {
  leaves_only_at_pte_pmd_and_pud_level: leafCheck(() => (leaf) => (PAGE_SIZES.includes(leaf.size) ? undefined : `size ${String(leaf.size)} is not a page size of any level`)),
  leaf_vpn_aligned_to_leaf_size: alignmentCheck('vpn', 1),
  leaves_inside_one_canonical_half: leafCheck((state) => {
    const levels = state.config.levels;
    const lowEnd = lowerHalfEnd(levels);
    const highStart = upperHalfStart(levels);
    return (leaf) => {
      const n = leafPages(leaf);
      const end = leaf.vpn + n;
      const inside = Number.isInteger(leaf.vpn) && leaf.vpn >= 0 && (end <= lowEnd || (leaf.vpn >= highStart && end <= VPN_LIMIT));
      return n > 0 && !inside ? `not inside one canonical half of ${levels}-level paging` : undefined;
    };
  }),
  leaves_sorted_by_address(state, scope) {
    const w = new Witnesses();
    for (const root of state.roots) {
      forEachNeighbours(root.leaves, scope, (prev, leaf) => {
        if (leaf.vpn <= prev.vpn) w.addLeaf(root, leaf, `${leafText(leaf)} comes after ${leafText(prev)}`);
      });
    }
    return w.done();
  },
  leaf_frames_below_maxphyaddr: leafCheck((state) => {
    const limit = 2 ** (state.config.maxPhysBits - 12);
    return (leaf) => {
      if (!Number.isInteger(leaf.pfn) || leaf.pfn < 0) return 'pfn is not a non-negative integer';
      return leaf.pfn + leafPages(leaf) > limit ? `frames reach past MAXPHYADDR (${state.config.maxPhysBits} bits)` : undefined;
    };
  }),
  leaf_frames_inside_physical_memory: leafCheck((state) => {
    const frames = state.config.frames;
    if (!hasFrameFacts(state)) return undefined;
    return (leaf) => (leaf.pfn + leafPages(leaf) > frames ? `frames reach past the ${frames} frames of memory` : undefined);
  }),
  frame_runs_cover_memory_exactly: frameRunsCoverMemory,
  // Frame runs, roots and counters have no VA and are few: their definitions are one cheap pass and run as they are.
  touching_frame_runs_differ: 'definition',
  page_tables_come_from_the_table_pool: 'definition',
  tables_in_use_fit_the_pool: 'definition',
  no_leaked_and_no_empty_tables(state, scope) {
    const root = state.roots[0];
    if (scope !== undefined || !hasFrameFacts(state) || state.roots.length !== 1 || root === undefined) return [];
    const np = root.nonPresent ?? [];
    const entries = np.length === 0 ? root.leaves : [...root.leaves, ...np];
    const needed = tableFootprint(state.config.levels, sortedLeaves(entries));
    return state.tablesInUse === needed + state.pendingTableFrees
      ? []
      : [{ root: root.id, detail: `tablesInUse is ${state.tablesInUse}, the entries need ${needed} tables and ${state.pendingTableFrees} await a flush` }];
  },
  page_table_frames_mapped_only_by_their_direct_map_page: mappedBesideDirectMapCheck('pagetable', 'a page-table frame mapped outside its direct-map page'),
  init_mm_is_root_zero: 'definition',
  non_present_entries_are_aligned_and_occupy_free_slots(state, scope) {
    const w = new Witnesses();
    for (const root of state.roots) {
      const np = root.nonPresent ?? [];
      np.forEach((e, i) => {
        const n = leafPages(e);
        if (!inScope(e.vpn, n, scope)) return;
        const meets = (o: Leaf): boolean => o.vpn < e.vpn + n && e.vpn < o.vpn + leafPages(o);
        const where = { root: root.id, vpn: e.vpn, pages: n };
        if (e.vpn % n !== 0 || e.pfn % n !== 0) w.add({ ...where, detail: `a non-present ${e.size} entry not aligned to its size` });
        if (i > 0 && np[i - 1]!.vpn >= e.vpn) w.add({ ...where, detail: 'non-present entries out of vpn order' });
        // Non-present entries are few (pages a client took out of the direct map): all pairs is cheap.
        if (np.some((o, j) => j !== i && meets(o))) w.add({ ...where, detail: 'a non-present entry overlaps another' });
        // A scoped check trusts sorted, disjoint leaves (a full check shows it): only the
        // leaves about the entry's span can meet it. A full check looks at them all.
        const [lo, hi] = scope === undefined ? [0, root.leaves.length] : scopeRange(root.leaves, { vpn: e.vpn, pages: n });
        for (let k = lo; k < hi; k++) {
          if (meets(root.leaves[k]!)) {
            w.add({ ...where, detail: 'a non-present entry overlaps a leaf' });
            break;
          }
        }
      });
    }
    return w.done();
  },
  flush_obligations_are_disjoint_kernel_ranges(state, scope) {
    const w = new Witnesses();
    const levels = state.config.levels;
    let prevEnd = -1;
    for (const ob of state.pendingFlush) {
      if (inScope(ob.vpn, ob.pages, scope)) {
        const where = { vpn: ob.vpn, pages: ob.pages };
        if (!isCanonicalRange(ob.vpn, ob.pages, levels) || !isKernelHalf(ob.vpn, levels)) {
          w.add({ ...where, detail: `obligation (${ob.reason}) is not a kernel-half range of at least one page` });
        } else if (ob.vpn < prevEnd) {
          w.add({ ...where, detail: `obligation (${ob.reason}) overlaps or precedes one before it` });
        }
      }
      prevEnd = Math.max(prevEnd, ob.vpn + ob.pages);
    }
    return w.done();
  },
};
