/**
 * The fast checks of the C family (spec/invariants/clients.ts defines them). Each walks the
 * clients' bookkeeping (areas, slots, allocations, pageblocks: a few per client), finds the
 * leaves of init_mm under each item by binary search and the frame runs under it the same
 * way, so a check costs the bookkeeping times a logarithm, never a pass over the leaves.
 * With a scope, only the items meeting it are judged, each in full (a witness that meets
 * the scope is reported whole). C4 and C6's TLB half, like the L checks, look at every
 * cached entry: the caches are small.
 */
import type { Pfn, Vpn } from '../spec/address.ts';
import { kmapRegion, kmapSlotOf, mermapCpuOf, mermapRegion, type ClientState, type MermapAlloc } from '../spec/clients.ts';
import { PAGEBLOCK_PAGES } from '../spec/contracts/isolation.ts';
import type { CheckScope } from '../spec/invariant.ts';
import {
  AREA_FRAMES_FREE, LAZY_AREA_FREED, SLOT_UNMAPPED, STALE_ALLOC_FREED, UNMAPPED_DATA_REACHABLE, UNMAPPED_LEAF, allocOutOfPlace, allocsOverlapText, areasOverlapText,
  clip, directMapWitness, foreignWitness, isSlotLeaf, kmapCpuPages, kmapOwner, mermapCpuPages, mermapOwner, pageblockRunReasons, rangeFramesWitness, rangeWitness, slotOutOfPlace,
  slotRange, slotText, taggedAllocs, taggedAreas, unheldPages, unmappedAllocPages, unmappedAreaPages, allocText, vmallocText, type LinearRange, type Span,
} from '../spec/invariants/clients.ts';
import { directMapBase, framesText, leafText } from '../spec/invariants/terms.ts';
import { tlbText } from '../spec/invariants/tlb.ts';
import { INIT_MM, type AbstractState, type FrameRun, type Leaf } from '../spec/state.ts';
import { Witnesses, firstEndingAfter, forEachRun, inScope, isSortedDisjoint, leafPages, leavesMeeting, mergeIntervals, rootById, type Check, type CheckTable, type FrameInterval } from './common.ts';
import { owedIn } from './tlb.ts';

// ---- searches over the frame runs and the pageblocks ----

/**
 * The runs of the state meeting [pfn, pfn + count), each with the part met: by binary
 * search on canonical runs, else (S7 reports those) by the plain pass of forEachRun.
 */
export function forRunsMeeting(state: AbstractState, pfn: Pfn, count: number, fn: (run: FrameRun, from: Pfn, n: number) => void): void {
  const runs = state.frames;
  if (!isSortedDisjoint(runs, (r) => r.pfn, (r) => r.count)) {
    forEachRun(runs, pfn, count, fn);
    return;
  }
  const end = pfn + count;
  for (let i = firstEndingAfter(runs, (r) => r.pfn + r.count, pfn); i < runs.length && runs[i]!.pfn < end; i++) {
    const r = runs[i]!;
    const from = Math.max(r.pfn, pfn);
    const to = Math.min(r.pfn + r.count, end);
    if (from < to) fn(r, from, to - from);
  }
}

/** The unmapped pageblocks sorted (the canonical list is; a copy when not), once per bookkeeping. */
const sortedUnmapped = new WeakMap<ClientState, readonly Pfn[]>();
function unmappedSorted(c: ClientState): readonly Pfn[] {
  let list = sortedUnmapped.get(c);
  if (list === undefined) {
    list = c.unmapped.every((b, i) => i === 0 || c.unmapped[i - 1]! <= b) ? c.unmapped : [...c.unmapped].sort((a, b) => a - b);
    sortedUnmapped.set(c, list);
  }
  return list;
}

/** The frames of the unmapped pageblocks meeting [from, to), one span per block, by binary search (D6's exemption). */
export function pageblocksMeeting(state: AbstractState, from: Pfn, to: Pfn): Span[] {
  if (state.clients === undefined) return [];
  const blocks = unmappedSorted(state.clients);
  const out: Span[] = [];
  for (let i = firstEndingAfter(blocks, (b) => b + PAGEBLOCK_PAGES, from); i < blocks.length && blocks[i]! < to; i++) out.push([blocks[i]!, blocks[i]! + PAGEBLOCK_PAGES]);
  return out;
}

/** The frames of the unmapped pageblocks that runs `isRun` picks, sorted and merged. */
function unmappedFrameIntervals(state: AbstractState, c: ClientState, isRun: (r: FrameRun) => boolean): FrameInterval[] {
  const list: FrameInterval[] = [];
  for (const b of unmappedSorted(c)) forRunsMeeting(state, b, PAGEBLOCK_PAGES, (run, from, n) => {
    if (isRun(run)) list.push({ lo: from, hi: from + n });
  });
  return mergeIntervals(list);
}

// ---- shared pieces ----

/** [lo, hi) ∩ the scope (everything without one), or undefined. */
function inScopeSpan(lo: number, hi: number, scope: CheckScope | undefined): Span | undefined {
  const a = scope === undefined ? lo : Math.max(lo, scope.vpn);
  const b = scope === undefined ? hi : Math.min(hi, scope.vpn + scope.pages);
  return a < b ? [a, b] : undefined;
}

/** The leaves of init_mm (and its non-present entries with `nonPresent`) meeting [from, to), by binary search. */
function initMmMeeting(state: AbstractState, from: Vpn, to: Vpn, scope: CheckScope | undefined, nonPresent = false): Leaf[] {
  const root = rootById(state, INIT_MM);
  if (root === undefined) return [];
  const trusted = scope !== undefined;
  const leaves = leavesMeeting(root.leaves, from, to, trusted);
  return nonPresent ? [...leaves, ...leavesMeeting(root.nonPresent ?? [], from, to, trusted)] : leaves;
}

/** Every free frame of `r`'s frames, at the pages r puts it. */
function addFreeFrames(w: Witnesses, state: AbstractState, r: LinearRange, detail: string): void {
  forRunsMeeting(state, r.pfn, r.pages, (run, from, n) => {
    if (run.use === 'free') w.add(rangeFramesWitness(r, { pfn: from, count: n }, `${framesText(from, n)} of ${detail}`));
  });
}

/**
 * The pages that two or more of `ranges` share, by a sweep in vpn order: each range's
 * pages below the highest end before it. Each piece names the range and the earlier one
 * reaching furthest; together they are the union of the definition's pairwise overlaps.
 */
function overlapsSwept<T>(ranges: readonly T[], span: (x: T) => LinearRange, scope: CheckScope | undefined, add: (lo: Vpn, hi: Vpn, earlier: T, later: T) => void): void {
  const sorted = [...ranges].sort((x, y) => span(x).vpn - span(y).vpn);
  let reach = -Infinity;
  let owner: T | undefined;
  for (const x of sorted) {
    const r = span(x);
    const end = r.vpn + r.pages;
    const hi = Math.min(end, reach);
    if (owner !== undefined && r.vpn < hi && inScope(r.vpn, hi - r.vpn, scope)) add(r.vpn, hi, owner, x);
    if (end > reach) {
      reach = end;
      owner = x;
    }
  }
}

/** The leaves of init_mm in a CPU-local region that may meet the scope, each judged over the whole region by `unheldPages`. */
function unheldInRegion(w: Witnesses, state: AbstractState, region: { vpn: Vpn; pages: number }, held: (vpn: Vpn) => boolean, what: string, scope: CheckScope | undefined): void {
  const s = inScopeSpan(region.vpn, region.vpn + region.pages, scope);
  if (s === undefined) return;
  for (const l of initMmMeeting(state, s[0], s[1], scope)) for (const x of unheldPages(l, region, held, what)) w.add(x);
}

/**
 * Every leaf of every root meeting the direct-map pages of the frame intervals (those
 * meeting the scope), each piece reported whole; and every TLB entry there when `why`
 * for entries is given.
 */
function atDirectMapPages(w: Witnesses, state: AbstractState, frames: readonly FrameInterval[], scope: CheckScope | undefined, why: string, cached: boolean): void {
  const base = directMapBase(state);
  const trusted = scope !== undefined;
  for (const root of state.roots) {
    for (const iv of frames) {
      const [from, to] = [base + iv.lo, base + iv.hi];
      const s = inScopeSpan(from, to, scope);
      if (s === undefined) continue;
      for (const l of leavesMeeting(root.leaves, s[0], s[1], trusted)) {
        const piece = clip(l, from, to);
        if (piece !== undefined) w.add(directMapWitness(state, root.id, piece[0], piece[1], `${leafText(l)}: ${why}`));
      }
    }
  }
  if (!cached) return;
  for (const e of state.tlb) {
    const lo = e.leaf.vpn - base;
    const hi = lo + leafPages(e.leaf);
    // The first interval ending after the entry's first frame, then those starting before its end.
    for (let i = firstEndingAfter(frames, (f) => f.hi, lo); i < frames.length && frames[i]!.lo < hi; i++) {
      const piece = clip(e.leaf, base + frames[i]!.lo, base + frames[i]!.hi);
      if (piece !== undefined) w.add(directMapWitness(state, e.root, piece[0], piece[1], `${tlbText(e)}: ${why}`));
    }
  }
}

// ---- the checks ----

const c1: Check = (state, scope) => {
  const c = state.clients;
  if (c === undefined) return [];
  const w = new Witnesses();
  for (const m of c.mermap) {
    for (const a of m.stale) if (inScope(a.vpn, a.pages, scope)) addFreeFrames(w, state, a, `${allocText(a, true)} ${STALE_ALLOC_FREED}`);
  }
  for (const z of c.lazy) {
    if (inScope(z.vpn, z.pages, scope) && owedIn(state.pendingFlush, z.vpn, z.vpn + z.pages)) addFreeFrames(w, state, z, `${vmallocText(z, true)} ${LAZY_AREA_FREED}`);
  }
  return w.done();
};

const c2: Check = (state, scope) => {
  const c = state.clients;
  if (c === undefined) return [];
  const w = new Witnesses();
  for (const area of c.vmalloc) {
    if (!inScope(area.vpn, area.pages, scope)) continue;
    for (const x of unmappedAreaPages(area, initMmMeeting(state, area.vpn, area.vpn + area.pages, scope, true))) w.add(x);
    addFreeFrames(w, state, area, `${vmallocText(area, false)}: ${AREA_FRAMES_FREE}`);
  }
  overlapsSwept(taggedAreas(c), (t) => t.area, scope, (lo, hi, a, b) => w.add({ root: INIT_MM, vpn: lo, pages: hi - lo, detail: areasOverlapText(a, b) }));
  return w.done();
};

const c3: Check = (state, scope) => {
  const c = state.clients;
  if (c === undefined) return [];
  const w = new Witnesses();
  const depth = new Map<number, number>();
  for (const s of c.kmap) {
    const k = depth.get(s.cpu) ?? 0;
    depth.set(s.cpu, k + 1);
    if (!inScope(s.vpn, 1, scope)) continue;
    const why = slotOutOfPlace(state, s, k);
    if (why !== undefined) w.add(rangeWitness(slotRange(s), s.vpn, 1, why));
    if (!initMmMeeting(state, s.vpn, s.vpn + 1, scope).some((l) => isSlotLeaf(l, s))) w.add(rangeWitness(slotRange(s), s.vpn, 1, `${slotText(s)}: ${SLOT_UNMAPPED}`));
  }
  unheldInRegion(w, state, kmapRegion(state.config.cpus), kmapOwner(state, c), 'kmap_local slot pages', scope);
  return w.done();
};

/**
 * C4: each cached entry clipped to the kmap and mermap regions, and only the CPUs whose
 * slots or slice the clipped part reaches, found by address, judged against it.
 */
const c4: Check = (state) => {
  if (state.clients === undefined) return [];
  const { levels, cpus } = state.config;
  const w = new Witnesses();
  const kmap = kmapRegion(cpus);
  const mermap = mermapRegion(levels, cpus);
  for (const e of state.tlb) {
    const k = clip(e.leaf, kmap.vpn, kmap.vpn + kmap.pages);
    if (k !== undefined) {
      // Fixmap slots grow down: the entry's last page is the lowest CPU it reaches.
      const first = kmapSlotOf(cpus, k[1] - 1)!.cpu;
      const last = kmapSlotOf(cpus, k[0])!.cpu;
      for (let cpu = first; cpu <= last; cpu++) {
        const piece = cpu === e.cpu ? undefined : clip(e.leaf, ...kmapCpuPages(cpu));
        if (piece !== undefined) w.add(foreignWitness(e, piece[0], piece[1], cpu, 'kmap_local slots'));
      }
    }
    const m = clip(e.leaf, mermap.vpn, mermap.vpn + mermap.pages);
    if (m !== undefined) {
      const first = mermapCpuOf(levels, cpus, m[0])!;
      const last = mermapCpuOf(levels, cpus, m[1] - 1)!;
      for (let cpu = first; cpu <= last; cpu++) {
        const piece = cpu === e.cpu ? undefined : clip(e.leaf, ...mermapCpuPages(state, cpu));
        if (piece !== undefined) w.add(foreignWitness(e, piece[0], piece[1], cpu, 'mermap slice'));
      }
    }
  }
  return w.done();
};

const c5: Check = (state, scope) => {
  const c = state.clients;
  if (c === undefined) return [];
  const w = new Witnesses();
  for (const m of c.mermap) {
    for (const a of m.allocs) {
      if (!inScope(a.vpn, a.pages, scope)) continue;
      const why = allocOutOfPlace(state, m, a);
      if (why !== undefined) w.add(rangeWitness(a, a.vpn, a.pages, why));
      for (const x of unmappedAllocPages(a, initMmMeeting(state, a.vpn, a.vpn + a.pages, scope))) w.add(x);
    }
    overlapsSwept(taggedAllocs(m), (t): MermapAlloc => t.a, scope, (lo, hi, x, y) => w.add({ root: INIT_MM, vpn: lo, pages: hi - lo, detail: allocsOverlapText(x.a, x.stale, y.a, y.stale) }));
  }
  unheldInRegion(w, state, mermapRegion(state.config.levels, state.config.cpus), mermapOwner(state, c), 'mermap slice pages', scope);
  return w.done();
};

const c6: Check = (state, scope) => {
  const c = state.clients;
  if (c === undefined) return [];
  const w = new Witnesses();
  atDirectMapPages(w, state, unmappedFrameIntervals(state, c, (r) => r.use === 'data'), scope, UNMAPPED_DATA_REACHABLE, true);
  return w.done();
};

const c7: Check = (state, scope) => {
  const c = state.clients;
  if (c === undefined) return [];
  const w = new Witnesses();
  // The frame facts have no address: judged whatever the scope, one pass over the blocks.
  for (const b of c.unmapped) {
    forRunsMeeting(state, b, PAGEBLOCK_PAGES, (run, from, n) => {
      for (const why of pageblockRunReasons(run)) w.add({ frames: [{ pfn: from, count: n }], detail: why });
    });
  }
  const blocks = mergeIntervals(unmappedSorted(c).map((b) => ({ lo: b, hi: b + PAGEBLOCK_PAGES })));
  atDirectMapPages(w, state, blocks, scope, UNMAPPED_LEAF, false);
  return w.done();
};

export const CLIENTS_CHECKS: CheckTable = {
  no_frame_freed_while_a_tlb_may_still_translate_to_it: c1,
  vmalloc_areas_map_their_frames: c2,
  kmap_local_slots_form_a_stack_of_their_cpu: c3,
  cpu_local_mappings_cached_by_their_cpu_only: c4,
  mermap_allocations_map_their_frames_non_global: c5,
  handed_out_unmapped_pages_are_unreachable_through_the_direct_map: c6,
  unmapped_pageblocks_are_absent_from_the_direct_map: c7,
};
