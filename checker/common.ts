/**
 * Shared machinery of the fast checks: leaf geometry, scope filtering, frame-run
 * lookup, the alias closure of a scope and capped witness collection.
 *
 * Checks must stay fast on a 4 GiB direct map split down to 4K: everything here walks
 * sorted leaves and frame runs, never the pages of a leaf one by one, and a scoped check
 * finds the leaves of its scope by binary search. Each check is held to its definition
 * in spec/invariants (`holds`) by test/invariants-holds.test.ts.
 */
import { PAGES, type Pfn, type Vpn } from '../spec/address.ts';
import type { CheckScope, Witness } from '../spec/invariant.ts';
import { directMapBase, framesText, framesWitness, leafText, leafWitness } from '../spec/invariants/terms.ts';
import { heldMirrors, type Mirror } from '../spec/roots.ts';
import type { AbstractRoot, AbstractState, FrameRun, FrameUse, Leaf, RootId } from '../spec/state.ts';

/** Witnesses listed per invariant; the rest are counted in a final summary witness. */
export const MAX_WITNESSES = 64;

/** The fast check of one invariant: with a scope, only what intersects it (see checkAll). */
export type Check = (state: AbstractState, scope?: CheckScope) => Witness[];

/**
 * The checks of one family by invariant name. 'definition' marks an invariant whose
 * definition is already one cheap pass (over frame runs, roots or counters): its check
 * is the definition, with the witness cap.
 */
export type CheckTable = Readonly<Record<string, Check | 'definition'>>;

/**
 * 4 KiB pages of a leaf; 0 for a size the architecture does not have (S1 reports those).
 * A switch, not a lookup by the size string: every check calls this for every leaf, and
 * a keyed load by a varying string is the slowest part of a full sweep.
 */
export function leafPages(leaf: Leaf): number {
  switch (leaf.size) {
    case '4K': return PAGES['4K'];
    case '2M': return PAGES['2M'];
    case '1G': return PAGES['1G'];
    default: return 0;
  }
}

/** Does [vpn, vpn + pages) intersect the scope (everything intersects no scope)? */
export function inScope(vpn: Vpn, pages: number, scope: CheckScope | undefined): boolean {
  return scope === undefined || (vpn < scope.vpn + scope.pages && scope.vpn < vpn + pages);
}

/**
 * The first index of a sorted, disjoint list whose element ends after `at` (`end` gives an
 * element's end): where a search for what meets [at, ...) starts.
 */
export function firstEndingAfter<T>(list: readonly T[], end: (t: T) => number, at: number): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (end(list[mid]!) <= at) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

const sortedDisjointCache = new WeakMap<readonly unknown[], boolean>();

/**
 * Whether a list of ranges is sorted, disjoint and each at least one long (the canonical
 * form S7 asks of frame runs and S14 of obligations), decided once per list: a binary
 * search over it is right only then.
 */
export function isSortedDisjoint<T>(list: readonly T[], start: (t: T) => number, length: (t: T) => number): boolean {
  let ok = sortedDisjointCache.get(list);
  if (ok === undefined) {
    ok = true;
    // Each range at least one long and starting at or after the end of the one before.
    for (let i = 0, end = -Infinity; ok && i < list.length; i++) {
      const n = length(list[i]!);
      const at = start(list[i]!);
      ok = n >= 1 && at >= end;
      end = at + n;
    }
    sortedDisjointCache.set(list, ok);
  }
  return ok;
}

/** First index whose leaf starts at or after `vpn` (leaves sorted by vpn). */
function firstLeafFrom(leaves: readonly Leaf[], vpn: Vpn): number {
  let lo = 0;
  let hi = leaves.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (leaves[mid]!.vpn < vpn) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Index range [lo, hi) of sorted, disjoint leaves that may meet [from, to) (bounds may be
 * infinite): only the leaf just before the first one starting at `from` can reach into it.
 */
function trustedRange(leaves: readonly Leaf[], from: number, to: number): [number, number] {
  return [Math.max(0, firstLeafFrom(leaves, from) - 1), firstLeafFrom(leaves, to)];
}

/**
 * Index range [lo, hi) of a root's leaves that may intersect the scope (all of them
 * without one). With sorted, disjoint leaves (S4, T1) only the leaf just before the
 * scope's first page can reach into it; a full check judges states where that fails.
 * Callers still test each leaf with `inScope`.
 */
export function scopeRange(leaves: readonly Leaf[], scope: CheckScope | undefined): [number, number] {
  if (scope === undefined) return [0, leaves.length];
  return trustedRange(leaves, scope.vpn, scope.vpn + scope.pages);
}

/** Each pair of neighbouring leaves (prev, leaf) of `leaves` at least one of which may meet the scope. */
export function forEachNeighbours(leaves: readonly Leaf[], scope: CheckScope | undefined, fn: (prev: Leaf, leaf: Leaf) => void): void {
  const [lo, hi] = scopeRange(leaves, scope);
  for (let i = Math.max(lo, 1); i < Math.min(hi + 1, leaves.length); i++) fn(leaves[i - 1]!, leaves[i]!);
}

/** Leaves sorted by vpn: the input itself when already sorted (S4 reports an unsorted root). */
export function sortedLeaves(leaves: readonly Leaf[]): readonly Leaf[] {
  for (let i = 1; i < leaves.length; i++) {
    if (leaves[i]!.vpn < leaves[i - 1]!.vpn) return [...leaves].sort((a, b) => a.vpn - b.vpn);
  }
  return leaves;
}

/**
 * A leaf list sorted by vpn (stably: the definitions' order), with the running maximum of
 * the leaves' ends, so that the first leaf that may reach a page is found by binary search
 * even where leaves overlap (S/T report those; the other checks must still agree with
 * their definitions there). Built once per leaf list.
 */
interface LeafIndex {
  readonly leaves: readonly Leaf[];
  /** maxEnd[i]: the largest end among leaves[0..i]. */
  readonly maxEnd: readonly number[];
}
const leafIndexCache = new WeakMap<readonly Leaf[], LeafIndex>();

function leafIndex(list: readonly Leaf[]): LeafIndex {
  let index = leafIndexCache.get(list);
  if (index === undefined) {
    const leaves = sortedLeaves(list);
    const maxEnd: number[] = [];
    let end = -Infinity;
    for (const l of leaves) maxEnd.push((end = Math.max(end, l.vpn + leafPages(l))));
    index = { leaves, maxEnd };
    leafIndexCache.set(list, index);
  }
  return index;
}

/** Does the leaf share a page with [from, to) (a leaf of no size: does it start strictly inside)? The definitions' `leafMeets`. */
const meets = (l: Leaf, from: number, to: number): boolean => l.vpn < to && from < l.vpn + leafPages(l);

/**
 * The leaves of `list` that meet [from, to) (and that `keep` keeps), in vpn order
 * (stably). `trusted` (a scoped check, which trusts the sorted, disjoint leaves a full
 * check establishes) finds them by binary search on the list itself, in O(log n) however
 * long the list; so does a list found sorted and disjoint (one pass, once per list, where
 * the index would also sort and allocate); otherwise through the list's index, which is
 * exact on any list.
 */
export function leavesMeeting(list: readonly Leaf[], from: number, to: number, trusted: boolean, keep?: (l: Leaf) => boolean): Leaf[] {
  const out: Leaf[] = [];
  if (trusted || isSortedDisjoint(list, (l) => l.vpn, leafPages)) {
    const [lo, hi] = trustedRange(list, from, to);
    for (let i = lo; i < hi; i++) if (meets(list[i]!, from, to) && (keep === undefined || keep(list[i]!))) out.push(list[i]!);
    return out;
  }
  const { leaves, maxEnd } = leafIndex(list);
  // Every leaf before the first whose running end passes `from` ends at or before it.
  let lo = 0;
  let hi = leaves.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (maxEnd[mid]! <= from) lo = mid + 1;
    else hi = mid;
  }
  for (let i = lo; i < leaves.length && leaves[i]!.vpn < to; i++) if (meets(leaves[i]!, from, to) && (keep === undefined || keep(leaves[i]!))) out.push(leaves[i]!);
  return out;
}

/** The first root of each id, as the definitions' `state.roots.find` picks it. */
const rootsByIdCache = new WeakMap<AbstractState, ReadonlyMap<RootId, AbstractRoot>>();

export function rootById(state: AbstractState, id: RootId): AbstractRoot | undefined {
  let byId = rootsByIdCache.get(state);
  if (byId === undefined) {
    const map = new Map<RootId, AbstractRoot>();
    for (const r of state.roots) if (!map.has(r.id)) map.set(r.id, r);
    rootsByIdCache.set(state, map);
    byId = map;
  }
  return byId.get(id);
}

/** Does a leaf meet mirror `m` as rootView clips it (a leaf of no size never does)? */
function inMirror(l: Leaf, m: Mirror): boolean {
  const n = leafPages(l);
  return n > 0 && l.vpn < m.vpn + m.pages && m.vpn < l.vpn + n;
}

/**
 * Where in a mirror's source the leaves lie that meet both [from, to) and the mirror: the
 * two ranges' overlap, or when they are apart the gap between them (a leaf of at most
 * 1G can span a gap shorter than that); undefined when no leaf can meet both.
 */
function sourceRange(from: number, to: number, m: Mirror): [number, number] | undefined {
  const a = Math.max(from, m.vpn);
  const b = Math.min(to, m.vpn + m.pages);
  if (a < b) return [a, b];
  return a - b < PAGES['1G'] ? [b - 1, a + 1] : undefined;
}

/**
 * The leaves of root `id`'s view (spec/roots.ts rootView: its own leaves outside the
 * slots it mirrors, and there the view of the source) that meet [from, to), in vpn
 * order. Each mirror is looked up only where it meets the range, so the view of a process
 * root near a page costs a few binary searches, never a copy of init_mm's leaves. With a
 * `trusted` order as in `leavesMeeting`. `keep`: only the leaves it keeps, chosen where
 * each root's own leaves are found (a filter commutes with the view's stable sort), so a
 * full check that wants few leaves of a view of init_mm's vmalloc area never lists them all.
 */
export function viewLeaves(state: AbstractState, id: RootId, from: number, to: number, trusted: boolean, keep?: (l: Leaf) => boolean, seen: ReadonlySet<RootId> = new Set()): Leaf[] {
  const root = rootById(state, id);
  // rootView's guard against a root that mirrors itself through others.
  if (root === undefined || seen.has(id)) return [];
  const own = leavesMeeting(root.leaves, from, to, trusted, keep);
  const mirrors = heldMirrors(state.config.levels, root);
  if (mirrors.length === 0) return own;
  // rootView drops an own leaf by where it starts.
  const out = own.filter((l) => !mirrors.some((m) => l.vpn >= m.vpn && l.vpn < m.vpn + m.pages));
  const path = new Set([...seen, id]);
  for (const m of mirrors) {
    const range = sourceRange(from, to, m);
    if (range === undefined) continue;
    for (const l of viewLeaves(state, m.from, range[0], range[1], trusted, keep, path)) if (inMirror(l, m) && meets(l, from, to)) out.push(l);
  }
  return out.sort((a, b) => a.vpn - b.vpn);
}

/** Every leaf of every root that intersects the scope. */
function forEachLeaf(state: AbstractState, scope: CheckScope | undefined, fn: (root: AbstractRoot, leaf: Leaf) => void): void {
  for (const root of state.roots) {
    const [lo, hi] = scopeRange(root.leaves, scope);
    for (let i = lo; i < hi; i++) {
      const leaf = root.leaves[i]!;
      if (scope === undefined || inScope(leaf.vpn, leafPages(leaf), scope)) fn(root, leaf);
    }
  }
}

/**
 * The runs of `runs` intersecting [pfn, pfn + count), each with the intersected part.
 * Callers pass few runs (the text, rodata, pool or noDirectMap runs of a frame-use
 * check, or all runs once per check): a plain pass, which also stays right on the
 * unsorted or overlapping runs S7 reports.
 */
export function forEachRun(runs: readonly FrameRun[], pfn: Pfn, count: number, fn: (run: FrameRun, from: Pfn, n: number) => void): void {
  const end = pfn + count;
  for (const r of runs) {
    const from = Math.max(r.pfn, pfn);
    const to = Math.min(r.pfn + r.count, end);
    if (from < to) fn(r, from, to - from);
  }
}

/** A frame interval [lo, hi). */
export interface FrameInterval {
  readonly lo: Pfn;
  readonly hi: Pfn;
}

/** Sort and merge overlapping or adjacent intervals. */
export function mergeIntervals(list: FrameInterval[]): FrameInterval[] {
  list.sort((a, b) => a.lo - b.lo);
  const out: FrameInterval[] = [];
  for (const iv of list) {
    const last = out[out.length - 1];
    if (last !== undefined && iv.lo <= last.hi) out[out.length - 1] = { lo: last.lo, hi: Math.max(last.hi, iv.hi) };
    else out.push(iv);
  }
  return out;
}

/**
 * Does a leaf's frames intersect one of the sorted, disjoint intervals? It takes the
 * leaf itself: the sweeps call it for every leaf, and passing numbers computed from a
 * leaf's fields to a call V8 does not inline allocates a heap number for each.
 */
export function leafIntersectsAny(sorted: readonly FrameInterval[], leaf: Leaf): boolean {
  const lo = leaf.pfn;
  const hi = lo + leafPages(leaf);
  let a = 0;
  let b = sorted.length;
  while (a < b) {
    const mid = (a + b) >>> 1;
    if (sorted[mid]!.hi <= lo) a = mid + 1;
    else b = mid;
  }
  const iv = sorted[a];
  return iv !== undefined && iv.lo < hi;
}

export interface Mapping {
  readonly root: AbstractRoot;
  readonly leaf: Leaf;
}

/**
 * Frames a scope touches: those mapped by a leaf inside it, and those whose direct-map
 * page lies inside it (an operation on the direct map changes what those frames may be).
 */
function touchedFrames(state: AbstractState, scope: CheckScope): FrameInterval[] {
  const list: FrameInterval[] = [];
  forEachLeaf(state, scope, (_root, leaf) => {
    list.push({ lo: leaf.pfn, hi: leaf.pfn + leafPages(leaf) });
  });
  const base = directMapBase(state);
  const dmLo = Math.max(scope.vpn, base);
  const dmHi = scope.vpn + scope.pages;
  if (dmLo < dmHi) list.push({ lo: dmLo - base, hi: dmHi - base });
  return mergeIntervals(list);
}

const isDirectMapLeaf = (leaf: Leaf, base: Vpn): boolean => leaf.vpn - leaf.pfn === base;

/**
 * A root's leaves that are not direct-map pages (vpn - pfn is not the direct-map base)
 * and map a frame of the sorted, disjoint intervals, in vpn order, each once; undefined
 * when the lookup no longer describes the root (its system changed since), and the
 * checks then scan. A system that indexes its leaves by frame attaches one to a root it
 * hands out (the model does, model/frame-index.ts), so the alias closure of a scope costs
 * the aliases of its frames instead of a pass over every leaf.
 */
export type OtherLeavesLookup = (touched: readonly FrameInterval[]) => readonly Leaf[] | undefined;

const otherLeavesLookups = new WeakMap<AbstractRoot, OtherLeavesLookup>();

/** `root`, with `lookup` as the answer to which of its leaves outside the direct map meet some frames. */
export function withOtherLeavesLookup<R extends AbstractRoot>(root: R, lookup: OtherLeavesLookup): R {
  otherLeavesLookups.set(root, lookup);
  return root;
}

/**
 * `derived`, a root made from `root` by taking its leaves `removed` out and putting
 * `added` in, with root's lookup (when it has one) carried over to it.
 */
export function withLookupOf<R extends AbstractRoot>(root: AbstractRoot, derived: R, removed: ReadonlySet<Leaf>, added: readonly Leaf[], base: Vpn): R {
  const lookup = otherLeavesLookups.get(root);
  if (lookup === undefined) return derived;
  const others = added.filter((leaf) => !isDirectMapLeaf(leaf, base));
  return withOtherLeavesLookup(derived, (touched) => {
    const found = lookup(touched)?.filter((leaf) => !removed.has(leaf));
    return found?.concat(others.filter((leaf) => leafIntersectsAny(touched, leaf))).sort((a, b) => a.vpn - b.vpn);
  });
}

/**
 * Leaves that are not the linear direct map (image, vmalloc, fixmap, ...): usually a
 * small minority, found by one pass per state and root. A direct-map leaf of a frame is
 * found by address instead, so a scoped alias lookup never scans the whole map.
 */
const otherLeavesCache = new WeakMap<AbstractState, Map<AbstractRoot, readonly Leaf[]>>();

function otherLeavesOf(state: AbstractState, root: AbstractRoot): readonly Leaf[] {
  let byRoot = otherLeavesCache.get(state);
  if (byRoot === undefined) otherLeavesCache.set(state, (byRoot = new Map()));
  let list = byRoot.get(root);
  if (list === undefined) {
    const base = directMapBase(state);
    list = root.leaves.filter((leaf) => !isDirectMapLeaf(leaf, base));
    byRoot.set(root, list);
  }
  return list;
}

/** The leaves of `root` outside the direct map that map a frame of `touched`, in vpn order: by the root's lookup, else by a pass. */
function otherLeavesMeeting(state: AbstractState, root: AbstractRoot, touched: readonly FrameInterval[]): readonly Leaf[] {
  const found = otherLeavesLookups.get(root)?.(touched);
  return found ?? otherLeavesOf(state, root).filter((leaf) => leafIntersectsAny(touched, leaf));
}

function aliasClosure(state: AbstractState, scope: CheckScope): Mapping[] {
  const touched = touchedFrames(state, scope);
  const base = directMapBase(state);
  const out: Mapping[] = [];
  for (const root of state.roots) {
    let emitted: Leaf | undefined;
    for (const iv of touched) {
      const dm: CheckScope = { vpn: base + iv.lo, pages: iv.hi - iv.lo };
      const [lo, hi] = scopeRange(root.leaves, dm);
      for (let i = lo; i < hi; i++) {
        const leaf = root.leaves[i]!;
        // Touched intervals are disjoint and increasing: a huge leaf spanning two comes up again right away.
        if (leaf !== emitted && isDirectMapLeaf(leaf, base) && inScope(leaf.vpn, leafPages(leaf), dm)) {
          out.push({ root, leaf });
          emitted = leaf;
        }
      }
    }
  }
  for (const root of state.roots) for (const leaf of otherLeavesMeeting(state, root, touched)) out.push({ root, leaf });
  return out;
}

const aliasCache = new WeakMap<AbstractState, { vpn: Vpn; pages: number; mappings: readonly Mapping[] }>();

/**
 * Every leaf that maps a frame the scope touches, in any root and at any address: the
 * alias closure of the scope. Frame-based invariants (cross-alias W^X, rodata, page-table
 * frames) need it, because an operation inside the scope changes what is allowed through
 * the other aliases of the same frames (cpa_process_alias works exactly on those).
 * Without a scope: every leaf. Cached per state and scope, since several checks ask.
 */
export function forEachAliasLeaf(state: AbstractState, scope: CheckScope | undefined, fn: (root: AbstractRoot, leaf: Leaf) => void): void {
  if (scope === undefined) {
    forEachLeaf(state, undefined, fn);
    return;
  }
  let cached = aliasCache.get(state);
  if (cached === undefined || cached.vpn !== scope.vpn || cached.pages !== scope.pages) {
    cached = { vpn: scope.vpn, pages: scope.pages, mappings: aliasClosure(state, scope) };
    aliasCache.set(state, cached);
  }
  for (const m of cached.mappings) fn(m.root, m.leaf);
}

/** Collects witnesses up to MAX_WITNESSES and counts the rest. */
export class Witnesses {
  private readonly list: Witness[] = [];
  private dropped = 0;

  add(w: Witness): void {
    if (this.list.length < MAX_WITNESSES) this.list.push(w);
    else this.dropped++;
  }

  /**
   * The text of a witness about to be added: a function's only while witnesses are still
   * listed (the list only grows, so one added past the cap is only counted, its text unread).
   */
  private text(detail: string | (() => string)): string {
    return typeof detail === 'string' ? detail : this.list.length < MAX_WITNESSES ? detail() : '';
  }

  /** The pages of `leaf` that map frames [pfn, pfn + count). */
  addFrames(root: AbstractRoot, leaf: Leaf, pfn: Pfn, count: number, detail: string | (() => string)): void {
    this.add(framesWitness(root, leaf, { pfn, count }, this.text(detail)));
  }

  /** The whole leaf. */
  addLeaf(root: AbstractRoot, leaf: Leaf, detail: string | (() => string)): void {
    this.add(leafWitness(root, leaf, this.text(detail)));
  }

  done(): Witness[] {
    if (this.dropped > 0) this.list.push({ detail: `${this.dropped} more violations not listed` });
    return this.list;
  }
}

/** A per-leaf predicate: the reason a leaf breaks the invariant, or undefined. */
export type LeafTest = (leaf: Leaf, root: AbstractRoot) => string | undefined;

/** A frame-use check prepared for one state: the runs it selects (merged into `spans` too) and its tests. */
interface FrameUseTest {
  readonly runs: readonly FrameRun[];
  readonly spans: readonly FrameInterval[];
  readonly maps: (leaf: Leaf, root: AbstractRoot, state: AbstractState) => boolean;
  readonly why: (run: FrameRun) => string;
}

/**
 * The per-leaf and frame-use checks by their Check, each as it prepares for a state (its
 * test, or undefined when the state cannot break it): checkAll runs all of those it is
 * asked for in one sweep of the leaves each (sweepChecks) instead of one sweep per check.
 */
const leafTests = new WeakMap<Check, (state: AbstractState) => LeafTest | undefined>();
const frameUses = new WeakMap<Check, (state: AbstractState) => FrameUseTest | undefined>();

/** One pass over the leaves in scope, each prepared test's witnesses in a list of its own. */
function leafWitnesses(state: AbstractState, scope: CheckScope | undefined, tests: readonly LeafTest[]): Witnesses[] {
  const lists = tests.map(() => new Witnesses());
  forEachLeaf(state, scope, (root, leaf) => {
    for (let t = 0; t < tests.length; t++) {
      const why = tests[t]!(leaf, root);
      if (why !== undefined) lists[t]!.addLeaf(root, leaf, () => `${leafText(leaf)}: ${why}`);
    }
  });
  return lists;
}

/** One pass over the scope's alias closure, each prepared frame-use check's witnesses in a list of its own. */
function frameUseWitnesses(state: AbstractState, scope: CheckScope | undefined, uses: readonly FrameUseTest[]): Witnesses[] {
  const lists = uses.map(() => new Witnesses());
  forEachAliasLeaf(state, scope, (root, leaf) => {
    for (let u = 0; u < uses.length; u++) {
      const use = uses[u]!;
      if (!leafIntersectsAny(use.spans, leaf) || !use.maps(leaf, root, state)) continue;
      forEachRun(use.runs, leaf.pfn, leafPages(leaf), (run, from, count) => {
        lists[u]!.addFrames(root, leaf, from, count, () => `${leafText(leaf)} maps ${framesText(from, count)}: ${use.why(run)}`);
      });
    }
  });
  return lists;
}

/**
 * The witnesses of those `checks` that are per-leaf or frame-use checks, by check: all
 * the per-leaf ones in one pass over the leaves in scope, all the frame-use ones in one
 * pass over the scope's alias closure. What each finds, and in what order, is what it
 * finds alone: the same leaves in the same order, each check with its own witness list.
 */
export function sweepChecks(state: AbstractState, scope: CheckScope | undefined, checks: readonly Check[]): Map<Check, Witness[]> {
  const out = new Map<Check, Witness[]>();
  const tests: { check: Check; test: LeafTest }[] = [];
  const uses: { check: Check; use: FrameUseTest }[] = [];
  for (const check of checks) {
    const leaf = leafTests.get(check);
    const frame = frameUses.get(check);
    // A check the state cannot break finds nothing.
    if (leaf !== undefined) {
      const test = leaf(state);
      if (test === undefined) out.set(check, []);
      else tests.push({ check, test });
    } else if (frame !== undefined) {
      const use = frame(state);
      if (use === undefined) out.set(check, []);
      else uses.push({ check, use });
    }
  }
  if (tests.length > 0) leafWitnesses(state, scope, tests.map((t) => t.test)).forEach((w, i) => out.set(tests[i]!.check, w.done()));
  if (uses.length > 0) frameUseWitnesses(state, scope, uses.map((u) => u.use)).forEach((w, i) => out.set(uses[i]!.check, w.done()));
  return out;
}

/**
 * The common shape of the per-leaf checks: `prepare` hoists what depends on the state
 * only (bounds, features) and returns the per-leaf test, or undefined when the state
 * cannot break the invariant at all; every leaf in scope the test rejects is a witness.
 */
export function leafCheck(prepare: (state: AbstractState) => LeafTest | undefined): Check {
  const check: Check = (state, scope) => {
    const test = prepare(state);
    return test === undefined ? [] : leafWitnesses(state, scope, [test])[0]!.done();
  };
  leafTests.set(check, prepare);
  return check;
}

/**
 * The common shape of the frame-use checks: every leaf in the alias closure of the
 * scope that `maps` selects, intersected with the frame runs `isRun` selects, is a
 * witness, naming exactly the pages that map those frames.
 */
export function frameUseCheck(
  maps: (leaf: Leaf, root: AbstractRoot, state: AbstractState) => boolean,
  isRun: (run: FrameRun) => boolean,
  why: (run: FrameRun) => string,
): Check {
  const prepare = (state: AbstractState): FrameUseTest | undefined => {
    // The selected runs are few (text, rodata, the table pool): skip leaves that miss them all.
    const runs = state.frames.filter(isRun);
    return runs.length === 0 ? undefined : { runs, spans: mergeIntervals(runs.map((r) => ({ lo: r.pfn, hi: r.pfn + r.count }))), maps, why };
  };
  const check: Check = (state, scope) => {
    const use = prepare(state);
    return use === undefined ? [] : frameUseWitnesses(state, scope, [use])[0]!.done();
  };
  frameUses.set(check, prepare);
  return check;
}

/** Leaves mapping a frame of `use` at another page than its own direct-map page (S12, D4). */
export function mappedBesideDirectMapCheck(use: FrameUse, why: string): Check {
  return frameUseCheck((leaf, _root, state) => leaf.vpn - leaf.pfn !== directMapBase(state), (r) => r.use === use, () => why);
}

/** Leaves of at least `minPages` pages whose `field` (vpn or pfn) is not a multiple of their size. */
export function alignmentCheck(field: 'vpn' | 'pfn', minPages: number): Check {
  return leafCheck(() => (leaf) => {
    const n = leafPages(leaf);
    return n >= minPages && leaf[field] % n !== 0 ? `${field} is not ${leaf.size}-aligned` : undefined;
  });
}
