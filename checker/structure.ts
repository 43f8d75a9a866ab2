/** The fast checks of the S family (spec/invariants/structure.ts defines them). */
import { PAGE_SIZES, VPN_LIMIT, isCanonicalRange, isKernelHalf, lowerHalfEnd, upperHalfStart } from '../spec/address.ts';
import { tableFootprint } from '../spec/footprint.ts';
import { tableCountWitness, tablesNeeded } from '../spec/invariants/structure.ts';
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

/**
 * Overlap tests over a list of entries (leaves or non-present ones). A full check sorts a
 * copy of the order and keeps the running maximum of the ends, so it is exact in any
 * state, broken or not; a scoped check trusts the list sorted and disjoint (a full check
 * shows it), so the neighbours of a place are all it needs. set_memory_4k then
 * set_memory_np over a gigabyte leaves 262,144 entries: no pairs, no scan.
 */
class Overlaps {
  /** Exact mode: positions in vpn order, the entry at each, and the largest end up to it. Trusted mode: none (identity, own ends). */
  private readonly order?: readonly number[];
  private readonly posOf?: readonly number[];
  private readonly maxEnd?: readonly number[];

  constructor(private readonly list: readonly Leaf[], exact: boolean) {
    if (!exact) return;
    const order = list.map((_, i) => i);
    if (list.some((l, i) => i > 0 && l.vpn < list[i - 1]!.vpn)) order.sort((a, b) => list[a]!.vpn - list[b]!.vpn);
    const posOf: number[] = [];
    const maxEnd: number[] = [];
    order.forEach((idx, pos) => {
      posOf[idx] = pos;
      maxEnd.push(Math.max(pos > 0 ? maxEnd[pos - 1]! : -Infinity, this.endOf(idx)));
    });
    [this.order, this.posOf, this.maxEnd] = [order, posOf, maxEnd];
  }

  private endOf(idx: number): number {
    return this.list[idx]!.vpn + leafPages(this.list[idx]!);
  }

  private at(pos: number): number {
    return this.order === undefined ? pos : this.order[pos]!;
  }

  private reach(pos: number): number {
    return this.maxEnd === undefined ? this.endOf(pos) : this.maxEnd[pos]!;
  }

  /** Whether another entry than index `i` of the list meets it. */
  meetsOther(i: number): boolean {
    const pos = this.posOf === undefined ? i : this.posOf[i]!;
    const e = this.list[i]!;
    return (pos > 0 && this.reach(pos - 1) > e.vpn) || (pos + 1 < this.list.length && this.list[this.at(pos + 1)]!.vpn < e.vpn + leafPages(e));
  }

  /** Whether an entry meets [vpn, end): the last one starting before end, or any before it reaching further. */
  meets(vpn: number, end: number): boolean {
    let lo = 0;
    let hi = this.list.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.list[this.at(mid)]!.vpn < end) lo = mid + 1;
      else hi = mid;
    }
    return lo > 0 && this.reach(lo - 1) > vpn;
  }
}

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
    // It needs the whole map: a full check only.
    const acc = scope === undefined ? tablesNeeded(state, (levels, leaves) => tableFootprint(levels, sortedLeaves(leaves))) : undefined;
    return acc === undefined || state.tablesInUse === acc.needed + state.pendingTableFrees ? [] : [tableCountWitness(state, acc)];
  },
  page_table_frames_mapped_only_by_their_direct_map_page: mappedBesideDirectMapCheck('pagetable', 'a page-table frame mapped outside its direct-map page'),
  init_mm_is_root_zero: 'definition',
  non_present_entries_are_aligned_and_occupy_free_slots(state, scope) {
    const w = new Witnesses();
    for (const root of state.roots) {
      const np = root.nonPresent ?? [];
      if (np.length === 0) continue;
      const others = new Overlaps(np, scope === undefined);
      const leaves = new Overlaps(root.leaves, scope === undefined);
      const [lo, hi] = scope === undefined ? [0, np.length] : scopeRange(np, scope);
      for (let i = lo; i < hi; i++) {
        const e = np[i]!;
        const n = leafPages(e);
        if (!inScope(e.vpn, n, scope)) continue;
        const where = { root: root.id, vpn: e.vpn, pages: n };
        if (e.vpn % n !== 0 || e.pfn % n !== 0) w.add({ ...where, detail: `a non-present ${e.size} entry not aligned to its size` });
        if (i > 0 && np[i - 1]!.vpn >= e.vpn) w.add({ ...where, detail: 'non-present entries out of vpn order' });
        if (others.meetsOther(i)) w.add({ ...where, detail: 'a non-present entry overlaps another' });
        if (leaves.meets(e.vpn, e.vpn + n)) w.add({ ...where, detail: 'a non-present entry overlaps a leaf' });
      }
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
