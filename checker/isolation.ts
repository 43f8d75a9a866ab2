/**
 * The fast checks of the K and A families (spec/invariants/isolation.ts defines them).
 * Each starts from the roots the invariant is about (user copies, process roots,
 * restricted roots, roots that mirror) and finds their leaves, and the views they mirror,
 * by binary search (checker/common.ts `viewLeaves`), so a state with only init_mm costs a
 * pass over its roots and nothing more; the one exception, K5, looks up init_mm's LDT slot.
 * With a scope a check reports what meets the scope: the leaves in it, and for K3 and A2
 * the leaves of other roots over them, found by address.
 */
import { upperHalfStart, type Vpn } from '../spec/address.ts';
import type { CheckScope, Witness } from '../spec/invariant.ts';
import {
  LDT_LEAF_FREED, LDT_TLB_FREED, PER_PROCESS_GLOBAL, divergedWitness, globalConflict, globalConflictText, inRange, isRestricted, kernelCopyReasons, listedInMirrorText,
  perProcessGlobal, processPids, sensitiveWitness, stateAllowlist, unrestrictedDiffers, userCopyDiffers, userCopyKernelLeaf,
} from '../spec/invariants/isolation.ts';
import { leafFrames, leafText, leafWitness, sharedFrames } from '../spec/invariants/terms.ts';
import { tlbEnd, tlbWitness } from '../spec/invariants/tlb.ts';
import { heldMirrors, ldtRemap, processRootIds } from '../spec/roots.ts';
import { INIT_MM, type AbstractRoot, type AbstractState, type Leaf } from '../spec/state.ts';
import {
  Witnesses, inScope, leafIntersectsAny, leafPages, leavesMeeting, mergeIntervals, rootById, sortedLeaves, viewLeaves, type Check, type CheckTable,
} from './common.ts';

/** The pages a check looks at: the scope, or everything. */
const bounds = (scope: CheckScope | undefined): [number, number] => (scope === undefined ? [-Infinity, Infinity] : [scope.vpn, scope.vpn + scope.pages]);

/** A collector that keeps only the witnesses meeting the scope (a witness with no pages names no place and always does). */
class ScopedWitnesses extends Witnesses {
  constructor(private readonly scope: CheckScope | undefined) {
    super();
  }

  override add(w: Witness): void {
    if (w.vpn === undefined || inScope(w.vpn, w.pages ?? 0, this.scope)) super.add(w);
  }
}

/** The leaves of a list, sorted: the list itself when a scoped check trusts its order. */
const sortedFor = (leaves: readonly Leaf[], scope: CheckScope | undefined): readonly Leaf[] => (scope === undefined ? sortedLeaves(leaves) : leaves);

/** The last leaf of a sorted list that starts at `vpn`, as a Map built from the list in order keeps it. */
function lastAt(sorted: readonly Leaf[], vpn: Vpn): Leaf | undefined {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]!.vpn <= vpn) lo = mid + 1;
    else hi = mid;
  }
  const l = sorted[lo - 1];
  return l !== undefined && l.vpn === vpn ? l : undefined;
}

const ofKind = (r: AbstractRoot | undefined, k: AbstractRoot['kind']): AbstractRoot | undefined => (r?.kind === k ? r : undefined);

/** K1: each user copy's user-half leaves in the scope against its kernel copy's, and back, by binary search on both. */
const kptiPairs: Check = (state, scope) => {
  const w = new ScopedWitnesses(scope);
  const upper = upperHalfStart(state.config.levels);
  const [from, to] = bounds(scope);
  const trusted = scope !== undefined;
  for (const pid of processPids(state)) {
    const ids = processRootIds(pid);
    const user = ofKind(rootById(state, ids.userRoot), 'process-user');
    const kernelRoot = ofKind(rootById(state, ids.kernelRoot), 'process-kernel');
    const u = sortedFor(user?.leaves ?? [], scope);
    const k = sortedFor(kernelRoot?.leaves ?? [], scope);
    for (const l of user === undefined ? [] : leavesMeeting(user.leaves, from, to, trusted)) {
      if (l.vpn >= upper) continue;
      const why = userCopyDiffers(l, lastAt(k, l.vpn));
      if (why !== undefined) w.addLeaf(user!, l, why);
    }
    if (kernelRoot === undefined) continue;
    for (const l of leavesMeeting(kernelRoot.leaves, from, to, trusted)) {
      if (l.vpn < upper) for (const why of kernelCopyReasons(l, lastAt(u, l.vpn) !== undefined)) w.addLeaf(kernelRoot, l, why);
    }
  }
  return w.done();
};

/**
 * The kernel-half leaves of root `root`'s view that may meet the scope (and that `keep`
 * keeps): from the page before the kernel half, where a leaf of no size at its first page
 * still counts.
 */
const kernelHalfView = (state: AbstractState, root: AbstractRoot, scope: CheckScope | undefined, keep?: (l: Leaf) => boolean): Leaf[] => {
  const upper = upperHalfStart(state.config.levels);
  const [from, to] = bounds(scope);
  return viewLeaves(state, root.id, Math.max(from, upper - 1), to, scope !== undefined, (l) => l.vpn >= upper && (keep === undefined || keep(l)));
};

/** K2: the kernel half of every user copy's view, leaf by leaf against the allowlist. */
const ptiAllowlistCheck: Check = (state, scope) => {
  const copies = state.roots.filter((r) => r.kind === 'kernel-user' || r.kind === 'process-user');
  if (copies.length === 0) return [];
  const allow = stateAllowlist(state);
  const w = new ScopedWitnesses(scope);
  for (const root of copies) {
    for (const l of kernelHalfView(state, root, scope)) {
      const why = userCopyKernelLeaf(l, allow);
      if (why !== undefined) w.addLeaf(root, l, why);
    }
  }
  return w.done();
};

/**
 * K3. Per-process globals: the own leaves of process roots. Conflicts: for each pair of
 * roots with leaves, the leaves of one looked up in the other by address; a full check
 * goes through the shorter list (init_mm is long, the others short), a scoped one
 * through the leaves of both in the scope, since the witness is the global leaf of the
 * pair, in either root.
 */
const globalsCheck: Check = (state, scope) => {
  const w = new ScopedWitnesses(scope);
  const [from, to] = bounds(scope);
  const trusted = scope !== undefined;
  for (const root of state.roots) {
    if (root.pid === undefined) continue;
    for (const l of leavesMeeting(root.leaves, from, to, trusted)) if (perProcessGlobal(state, l)) w.addLeaf(root, l, `${leafText(l)}: ${PER_PROCESS_GLOBAL}`);
  }
  const roots = state.roots;
  for (let i = 0; i < roots.length; i++) {
    const a = roots[i]!;
    for (let j = i + 1; j < roots.length && a.leaves.length > 0; j++) {
      const b = roots[j]!;
      if (b.leaves.length === 0) continue;
      // x is a's leaf, y b's: the pair the definition forms, whichever list it was found from.
      const pair = (x: Leaf, y: Leaf): void => {
        if (globalConflict(x, y)) w.add(x.prot.global ? leafWitness(a, x, globalConflictText(x, b, y)) : leafWitness(b, y, globalConflictText(y, a, x)));
      };
      const fromA = scope !== undefined || a.leaves.length <= b.leaves.length;
      const fromB = scope !== undefined || !fromA;
      if (fromA) for (const x of leavesMeeting(a.leaves, from, to, trusted)) for (const y of leavesMeeting(b.leaves, x.vpn, x.vpn + leafPages(x), trusted)) pair(x, y);
      // A pair whose a-side leaf meets the range too was found from a already: once each.
      const seenFromA = (x: Leaf): boolean => fromA && x.vpn < to && from < x.vpn + leafPages(x);
      if (fromB) for (const y of leavesMeeting(b.leaves, from, to, trusted)) for (const x of leavesMeeting(a.leaves, y.vpn, y.vpn + leafPages(y), trusted)) if (!seenFromA(x)) pair(x, y);
    }
  }
  return w.done();
};

/** K4: every diverged slot, and every own leaf in a slot a root mirrors, found by address. */
const mirrorsCheck: Check = (state, scope) => {
  const w = new ScopedWitnesses(scope);
  for (const root of state.roots) {
    for (const d of root.diverged ?? []) w.add(divergedWitness(state, root, d));
    for (const m of heldMirrors(state.config.levels, root)) {
      for (const l of leavesMeeting(root.leaves, m.vpn, m.vpn + m.pages, scope !== undefined)) w.addLeaf(root, l, listedInMirrorText(l, root, m));
    }
  }
  return w.done();
};

/** K5: the leaves in the LDT slot of every root, by address, and the TLB entries there, against the free runs. */
const ldtCheck: Check = (state, scope) => {
  const free = state.frames.filter((r) => r.use === 'free');
  if (free.length === 0) return [];
  const ldt = ldtRemap(state.config.levels);
  const [from, to] = bounds(scope);
  const lo = Math.max(from, ldt.vpn);
  const hi = Math.min(to, ldt.vpn + ldt.pages);
  const w = new ScopedWitnesses(scope);
  // A leaf inside the slot meets the scope only inside the slot; a leaf of no size maps no frame.
  for (const root of lo < hi ? state.roots : []) {
    for (const l of leavesMeeting(root.leaves, lo, hi, scope !== undefined)) {
      if (!inRange(l, ldt)) continue;
      for (const run of free) if (sharedFrames(leafFrames(l), run) !== undefined) w.addLeaf(root, l, `${leafText(l)}: ${LDT_LEAF_FREED}`);
    }
  }
  for (const e of state.tlb) {
    if (e.leaf.vpn < ldt.vpn || tlbEnd(e) > ldt.vpn + ldt.pages) continue;
    for (const run of free) if (sharedFrames(leafFrames(e.leaf), run) !== undefined) w.add(tlbWitness(e, LDT_TLB_FREED));
  }
  return w.done();
};

/** A1: the kernel half of every restricted root's view, leaf by leaf against the sensitive runs (usually none). */
const sensitiveCheck: Check = (state, scope) => {
  const sensitive = state.frames.filter((r) => r.sensitive);
  const roots = state.roots.filter(isRestricted);
  if (sensitive.length === 0 || roots.length === 0) return [];
  const spans = mergeIntervals(sensitive.map((r) => ({ lo: r.pfn, hi: r.pfn + r.count })));
  const w = new ScopedWitnesses(scope);
  for (const root of roots) {
    // Only the leaves over a sensitive frame: a restricted root's view holds init_mm's whole vmalloc area.
    for (const l of kernelHalfView(state, root, scope, (x) => leafIntersectsAny(spans, x))) {
      for (const run of sensitive) {
        const shared = sharedFrames(leafFrames(l), run);
        if (shared !== undefined) w.add(sensitiveWitness(root, l, shared));
      }
    }
  }
  return w.done();
};

/** A2: every own kernel-half leaf of a restricted root in the scope against init_mm's view under it, by address. */
const restrictedCopiesCheck: Check = (state, scope) => {
  const roots = state.roots.filter(isRestricted);
  if (roots.length === 0) return [];
  const upper = upperHalfStart(state.config.levels);
  const [from, to] = bounds(scope);
  const trusted = scope !== undefined;
  const w = new ScopedWitnesses(scope);
  for (const root of roots) {
    for (const l of leavesMeeting(root.leaves, Math.max(from, upper - 1), to, trusted)) {
      if (l.vpn < upper) continue;
      const why = unrestrictedDiffers(l, viewLeaves(state, INIT_MM, l.vpn, l.vpn + leafPages(l), trusted));
      if (why !== undefined) w.addLeaf(root, l, why);
    }
  }
  return w.done();
};

export const ISOLATION_CHECKS: CheckTable = {
  user_copy_user_half_equals_the_kernel_copy_but_nx: kptiPairs,
  user_copies_map_only_the_pti_allowlist: ptiAllowlistCheck,
  global_translations_are_the_same_in_every_root: globalsCheck,
  top_level_entries_identical_across_roots: mirrorsCheck,
  ldt_pages_unmapped_and_flushed_before_freed: ldtCheck,
  restricted_roots_map_no_sensitive_frame: sensitiveCheck,
  restricted_mappings_identical_in_the_unrestricted_root: restrictedCopiesCheck,
};
