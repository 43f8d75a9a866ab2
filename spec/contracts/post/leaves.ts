/**
 * The entries a postcondition expects, stated page by page, and the checks that hold an
 * after-state to them.
 *
 * An entry is a leaf or a non-present entry (AbstractRoot.nonPresent: P clear, frame and
 * prot kept); a root holds them as two sorted lists, disjoint from each other (`Entries`).
 * An operation's relation says, for any page p of the ranges it affects, what the state
 * after must hold there: the whole entry that contains p with its presence, or no entry
 * up to some page (`Expected`). That is the page-wise reading of the contract; the
 * checker holds each of the two lists to it by the same walk (to one list the entries of
 * the other kind are holes), entry by entry (jumping from one expected entry or hole to
 * the next, and through a run of like entries without asking again), so its cost is the
 * number of entries there, not pages. Everything here reads sorted leaf arrays by binary
 * search.
 */
import { PAGES, VPN_LIMIT, pfnToHex, vpnToHex, type PageSize, type Vpn } from '../../address.ts';
import { protEquals, type Leaf, type Prot, type RootId } from '../../state.ts';
import { breach, entryText, leafWitness, type Clause, type PostMode, type PostViolation } from './clause.ts';
import { RangeSet, rangeEnd, type Range } from './ranges.ts';

/** A root's entries: its leaves and its non-present entries, each list sorted by vpn, all disjoint. */
export interface Entries {
  readonly leaves: readonly Leaf[];
  readonly nonPresent: readonly Leaf[];
}

/** One entry: a leaf (present) or a non-present entry, with its frame and prot either way. */
export interface Entry {
  readonly leaf: Leaf;
  readonly present: boolean;
}

const NONE: readonly Leaf[] = [];
/** Leaves and no non-present entry. */
export const leavesOnly = (leaves: readonly Leaf[]): Entries => ({ leaves, nonPresent: NONE });
/** The very same lists: nothing to walk. */
export const sameLists = (a: Entries, b: Entries): boolean => a.leaves === b.leaves && a.nonPresent === b.nonPresent;
/** The two lists with the presence of their entries, the leaves first. */
export const kinds = (e: Entries): readonly (readonly [readonly Leaf[], boolean])[] => [[e.leaves, true], [e.nonPresent, false]];
const kindName = (present: boolean): string => (present ? 'leaves' : 'non-present entries');

export const leafEnd = (l: Leaf): Vpn => l.vpn + PAGES[l.size];

/** Index of the first leaf that ends after `vpn`. */
export function firstEndingAfter(leaves: readonly Leaf[], vpn: Vpn): number {
  let lo = 0;
  let hi = leaves.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (leafEnd(leaves[mid]!) <= vpn) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export function leafAt(leaves: readonly Leaf[], vpn: Vpn): Leaf | undefined {
  const l = leaves[firstEndingAfter(leaves, vpn)];
  return l !== undefined && l.vpn <= vpn ? l : undefined;
}

/** [lo, hi): indices of the leaves that meet the range. */
export function meeting(leaves: readonly Leaf[], r: Range): [number, number] {
  const lo = firstEndingAfter(leaves, r.vpn);
  let a = lo;
  let b = leaves.length;
  while (a < b) {
    const mid = (a + b) >>> 1;
    if (leaves[mid]!.vpn < rangeEnd(r)) a = mid + 1;
    else b = mid;
  }
  return [lo, a];
}

/** The entry containing vpn, of either kind. */
export function entryAt(e: Entries, vpn: Vpn): Entry | undefined {
  const l = leafAt(e.leaves, vpn);
  if (l !== undefined) return { leaf: l, present: true };
  const n = leafAt(e.nonPresent, vpn);
  return n === undefined ? undefined : { leaf: n, present: false };
}

function firstIn(leaves: readonly Leaf[], r: Range): Leaf | undefined {
  const l = leaves[firstEndingAfter(leaves, r.vpn)];
  return l !== undefined && l.vpn < rangeEnd(r) ? l : undefined;
}

/** The first entry, of either kind, with a page in the range. */
export function firstMapped(e: Entries, r: Range): Leaf | undefined {
  const a = firstIn(e.leaves, r);
  const b = firstIn(e.nonPresent, r);
  return a === undefined ? b : b === undefined || a.vpn < b.vpn ? a : b;
}

/** The first page of the range that no entry (of either kind) holds. */
export function firstHole(e: Entries, r: Range): Vpn | undefined {
  for (let at = r.vpn; at < rangeEnd(r); ) {
    const x = entryAt(e, at);
    if (x === undefined) return at;
    at = leafEnd(x.leaf);
  }
  return undefined;
}

export function sameLeaf(a: Leaf, b: Leaf): boolean {
  return a === b || (a.vpn === b.vpn && a.pfn === b.pfn && a.size === b.size && (a.prot === b.prot || protEquals(a.prot, b.prot)));
}

/** The size a leaf splits into (512 of them), none for 4K; and the size 512 of them make, none for 1G. */
const BELOW: Readonly<Record<PageSize, PageSize | undefined>> = { '4K': undefined, '2M': '4K', '1G': '2M' };
const ABOVE: Readonly<Record<PageSize, PageSize | undefined>> = { '4K': '2M', '2M': '1G', '1G': undefined };
export const sizeBelow = (size: PageSize): PageSize | undefined => BELOW[size];
export const sizeAbove = (size: PageSize): PageSize | undefined => ABOVE[size];

/** The range widened to the whole entries that contain its first and last page. */
function widen(e: Entries, r: Range): Range {
  const first = entryAt(e, r.vpn);
  const last = entryAt(e, rangeEnd(r) - 1);
  const lo = first === undefined ? r.vpn : first.leaf.vpn;
  return { vpn: lo, pages: Math.max(rangeEnd(r), last === undefined ? 0 : leafEnd(last.leaf)) - lo };
}

export function windowsOf(e: Entries, ranges: readonly Range[]): RangeSet {
  return new RangeSet(ranges.map((r) => widen(e, r)));
}

// ---- what the state after holds at a page ----

/**
 * What the state after holds from a page on: `leaf`, the whole entry containing the
 * page, non-present when `present` is false (a leaf otherwise), followed by entries of its
 * size and presence that continue its frames with its prot up to `until` (a run: the
 * pieces of a split, map's leaves of one size); or, without `leaf`, no entry of either
 * kind up to `until`. A run lets the check walk those entries without asking again.
 */
export interface Expected {
  readonly leaf?: Leaf;
  /** false: a non-present entry (absent: a leaf). */
  readonly present?: boolean;
  readonly until: Vpn;
}
export type Expectation = (p: Vpn) => Expected;

const presentOf = (e: Expected): boolean => e.present !== false;

/** One sorted list as it is, asked for pages in increasing order (the answer is the leaf of the last one or the next). */
function listAt(leaves: readonly Leaf[]): (p: Vpn) => { readonly leaf?: Leaf; readonly until: Vpn } {
  const isFirstEndingAfter = (i: number, p: Vpn): boolean =>
    i <= leaves.length && (i === leaves.length || leafEnd(leaves[i]!) > p) && (i === 0 || leafEnd(leaves[i - 1]!) <= p);
  let at = 0;
  return (p) => {
    if (!isFirstEndingAfter(at, p)) at = isFirstEndingAfter(at + 1, p) ? at + 1 : firstEndingAfter(leaves, p);
    const l = leaves[at];
    if (l === undefined) return { until: VPN_LIMIT };
    return l.vpn <= p ? { leaf: l, until: leafEnd(l) } : { until: l.vpn };
  };
}

/** The entries as they are: the frame condition's expectation. */
export function unchangedAt(e: Entries): Expectation {
  const present = listAt(e.leaves);
  if (e.nonPresent.length === 0) return present;
  const absent = listAt(e.nonPresent);
  return (p) => {
    const a = present(p);
    if (a.leaf !== undefined) return a;
    const b = absent(p);
    if (b.leaf !== undefined) return { leaf: b.leaf, present: false, until: b.until };
    return { until: Math.min(a.until, b.until) };
  };
}

const alignDown = (n: number, size: PageSize): number => n - (n % PAGES[size]);

/**
 * The split rule (hugepage.ts, split_large_page applied recursively): of an entry that
 * `ranges` cut, the piece containing p is the largest size-aligned block of the entry
 * around p that lies wholly inside or wholly outside `ranges`, with the entry's frames
 * (same offset) and its prot exactly. An entry the ranges do not cut is its own piece.
 *
 * The run: pieces of that size follow up to the next edge of `ranges` (the block holding
 * it is split smaller) and, for a cut entry, to the end of the block one size up.
 */
function pieceOf(leaf: Leaf, p: Vpn, ranges: RangeSet): Expected & { readonly leaf: Leaf } {
  let size: PageSize = leaf.size;
  let above: PageSize | undefined;
  for (let below = sizeBelow(size); below !== undefined && ranges.straddles(alignDown(p, size), alignDown(p, size) + PAGES[size]); below = sizeBelow(size)) {
    above = size;
    size = below;
  }
  const edge = alignDown(ranges.nextEdge(p), size);
  if (above === undefined) return { leaf, until: edge };
  const vpn = alignDown(p, size);
  return { leaf: { vpn, pfn: leaf.pfn + (vpn - leaf.vpn), size, prot: leaf.prot }, until: Math.min(edge, alignDown(p, above) + PAGES[above]) };
}

/** `removal` unmapped (entries of both kinds), the entries it cuts split by the split rule, the rest as `entries`. */
export function removedAt(entries: Entries, removal: RangeSet): Expectation {
  const old = unchangedAt(entries);
  return (p) => {
    const gone = removal.around(p);
    if (gone !== undefined) return { until: rangeEnd(gone) };
    const e = old(p);
    if (e.leaf === undefined) return e;
    const piece = pieceOf(e.leaf, p, removal);
    return { ...e, leaf: piece.leaf, until: Math.min(e.until, piece.until) };
  };
}

/** What a change makes of an entry (its prot and its presence) on a page of its ranges. */
export type EntryChange = (prot: Prot, present: boolean) => EntryState;
type EntryState = { readonly prot: Prot; readonly present: boolean };

/**
 * `change` on every page of `ranges`, over what `source` holds: an entry whose prot or
 * presence the change alters is split by the split rule at the ranges' edges; one that
 * stays is left whole (protect.ts: split only where the prot or presence actually
 * changes). With `force4K` (set_memory_4k) every page of the ranges ends up in a 4K
 * entry whatever it had, and the pieces outside follow the split rule.
 */
export function changedAt(source: Expectation, ranges: RangeSet, change: EntryChange, force4K = false): Expectation {
  // Entries share prot objects: each distinct old prot is changed once per presence.
  const memo = [new Map<Prot, EntryState | null>(), new Map<Prot, EntryState | null>()] as const;
  const changed = (old: Prot, present: boolean): EntryState | null => {
    const seen = memo[present ? 0 : 1];
    let next = seen.get(old);
    if (next === undefined) {
      const e = change(old, present);
      next = e.present === present && protEquals(e.prot, old) ? null : e;
      seen.set(old, next);
    }
    return next;
  };
  return (p) => {
    const e = source(p);
    if (e.leaf === undefined) return e;
    const next = changed(e.leaf.prot, presentOf(e));
    // A run of the source keeps one prot and presence, so one answer holds for all of it.
    if (next === null && !(force4K && e.leaf.size !== '4K')) return e;
    const inside = ranges.has(p);
    if (force4K && inside) {
      const { prot, present } = next ?? { prot: e.leaf.prot, present: presentOf(e) };
      return { leaf: { vpn: p, pfn: e.leaf.pfn + (p - e.leaf.vpn), size: '4K', prot }, present, until: Math.min(e.until, ranges.nextEdge(p)) };
    }
    const { leaf, until } = pieceOf(e.leaf, p, ranges);
    const run = Math.min(e.until, until);
    if (!inside || next === null) return { ...e, leaf, until: run };
    return { leaf: { vpn: leaf.vpn, pfn: leaf.pfn, size: leaf.size, prot: next.prot }, present: next.present, until: run };
  };
}

// ---- holding an after-state to an expectation ----

/** Where an after-state first differs from the expectation, what was due there and what was found. */
export interface Mismatch {
  readonly at: Vpn;
  readonly pages: number;
  readonly what: string;
  readonly want?: Entry;
  readonly found?: Entry;
}

/** Whether `a` is the entry at q of the run `first` starts: first's size and prot, its frames continued. */
function continues(a: Leaf, first: Leaf, q: Vpn): boolean {
  return a.vpn === q && a.size === first.size && a.pfn === first.pfn + (q - first.vpn) && (a.prot === first.prot || protEquals(a.prot, first.prot));
}

/** The first place in w where `after`, the entries of one kind (`present`), differs from `expect`. */
function firstMismatch(after: readonly Leaf[], present: boolean, w: Range, expect: Expectation): Mismatch | null {
  const end = rangeEnd(w);
  let p = w.vpn;
  for (let i = firstEndingAfter(after, p); p < end; ) {
    const e = expect(p);
    const stop = Math.min(e.until, end);
    // To this list, an entry of the other kind is a hole.
    const first = e.leaf !== undefined && presentOf(e) === present ? e.leaf : undefined;
    if (first === undefined) {
      // after[i] ends after p (binary search, then each step moves past the entries it matched).
      const a = after[i];
      if (a !== undefined && a.vpn < stop) {
        const want = e.leaf === undefined ? undefined : { leaf: e.leaf, present: !present };
        const due = want === undefined ? 'no entry' : `no ${kindName(present)}, the run from ${entryText(want.leaf, want.present)}`;
        return { at: a.vpn, pages: PAGES[a.size], what: `expected ${due} in [${vpnToHex(p)}, ${vpnToHex(stop)}), found ${entryText(a, present)}`, ...(want === undefined ? {} : { want }), found: { leaf: a, present } };
      }
      p = stop;
      continue;
    }
    // The run: entries of first's size, one after another, its frames going on, its prot.
    const n = PAGES[first.size];
    let q = first.vpn;
    do {
      const a = after[i];
      if (a === undefined || !continues(a, first, q)) {
        const want = { leaf: { ...first, vpn: q, pfn: first.pfn + (q - first.vpn) }, present };
        const here = a !== undefined && a.vpn <= q ? { leaf: a, present } : undefined;
        const what = `at ${vpnToHex(q)} expected ${entryText(want.leaf, present)}, found ${here === undefined ? `no ${kindName(present)} there` : entryText(here.leaf, present)}`;
        return { at: q, pages: n, what, want, ...(here === undefined ? {} : { found: here }) };
      }
      q += n;
      i++;
    } while (q < stop);
    p = q;
  }
  return null;
}

/**
 * The first page of each window where `after` differs from `expect` (of the two lists,
 * the one that differs first), under the clause `clauseAt` names for it.
 */
export function checkWindows(root: RootId, after: Entries, windows: RangeSet, expect: Expectation, clauseAt: (m: Mismatch) => Clause): PostViolation[] {
  const out: PostViolation[] = [];
  for (const w of windows.ranges) {
    let m: Mismatch | null = null;
    for (const [list, present] of kinds(after)) {
      const k = firstMismatch(list, present, w, expect);
      if (k !== null && (m === null || k.at < m.at)) m = k;
    }
    if (m !== null) out.push(breach(clauseAt(m), m.what, [leafWitness(root, m.at, m.pages, m.what)]));
  }
  return out;
}

/**
 * The first entry of `list` from index i on, stepping by `step`, that lies outside every
 * window: the neighbour of a window edge may be inside the next window (an alias range
 * just past the request's own), and it is the one past that which must not have moved.
 */
function outsideFrom(list: readonly Leaf[], i: number, step: 1 | -1, windows: RangeSet): Leaf | undefined {
  let k = i;
  while (k >= 0 && k < list.length && windows.meets(list[k]!.vpn, leafEnd(list[k]!))) k += step;
  return list[k];
}

function neighbourMoved(before: Leaf | undefined, after: Leaf | undefined, windows: RangeSet, present: boolean): string | null {
  if (before === undefined || windows.meets(before.vpn, leafEnd(before))) return null;
  return after !== undefined && sameLeaf(before, after) ? null : `${entryText(before, present)} next to the changed ranges became ${after === undefined ? 'nothing' : entryText(after, present)}`;
}

/**
 * The frame condition on entries: nothing outside `windows` changed, in either list.
 * 'full' compares every entry outside them; 'local' only the entry beside each window
 * edge and the number of entries outside (an added or dropped entry anywhere changes that
 * number; one that changes kind changes both lists' numbers).
 */
export function checkOutside(root: RootId, before: Entries, after: Entries, windows: RangeSet, mode: PostMode, clause: Clause): PostViolation[] {
  for (const [k, [b, present]] of kinds(before).entries()) {
    const v = checkOutsideList(root, b, kinds(after)[k]![0], present, windows, mode, clause);
    if (v.length > 0) return v;
  }
  return [];
}

function checkOutsideList(root: RootId, before: readonly Leaf[], after: readonly Leaf[], present: boolean, windows: RangeSet, mode: PostMode, clause: Clause): PostViolation[] {
  if (before === after) return [];
  const bad = (what: string, at?: Leaf): PostViolation[] => [breach(clause, what, [at === undefined ? { root, detail: what } : leafWitness(root, at.vpn, PAGES[at.size], what)])];
  let ib = 0;
  let ia = 0;
  let insideB = 0;
  let insideA = 0;
  for (const w of windows.ranges) {
    const [bl, bh] = meeting(before, w);
    const [al, ah] = meeting(after, w);
    if (mode === 'full') {
      const d = firstDifference(before, ib, bl, after, ia, al, present);
      if (d !== null) return bad(d.what, d.at);
    } else {
      const edge =
        neighbourMoved(outsideFrom(before, bl - 1, -1, windows), outsideFrom(after, al - 1, -1, windows), windows, present) ??
        neighbourMoved(outsideFrom(before, bh, 1, windows), outsideFrom(after, ah, 1, windows), windows, present);
      if (edge !== null) return bad(edge, before[bl - 1]);
    }
    insideB += bh - bl;
    insideA += ah - al;
    ib = bh;
    ia = ah;
  }
  if (mode === 'full') {
    const d = firstDifference(before, ib, before.length, after, ia, after.length, present);
    return d === null ? [] : bad(d.what, d.at);
  }
  const outB = before.length - insideB;
  const outA = after.length - insideA;
  return outB === outA ? [] : bad(`${outB} ${kindName(present)} lay outside the changed ranges before, ${outA} after`);
}

function firstDifference(before: readonly Leaf[], b0: number, b1: number, after: readonly Leaf[], a0: number, a1: number, present: boolean): { at: Leaf; what: string } | null {
  for (let k = 0; k < Math.max(b1 - b0, a1 - a0); k++) {
    const b = b0 + k < b1 ? before[b0 + k] : undefined;
    const a = a0 + k < a1 ? after[a0 + k] : undefined;
    if (a !== undefined && b !== undefined && sameLeaf(a, b)) continue;
    const at = (b ?? a)!;
    return { at, what: `outside the changed ranges ${b === undefined ? 'nothing' : entryText(b, present)} became ${a === undefined ? 'nothing' : entryText(a, present)}` };
  }
  return null;
}

/**
 * The page-wise reading (where a contract fixes what each page translates to but not the
 * leaf sizes): in each window, every page of `after`'s leaves translates to the frame
 * and prot of `expect`'s leaf there, or is unmapped where `expect` has no leaf (to it a
 * non-present entry is a hole), and no leaf there is larger than `largest`. Both sides
 * translate linearly within a leaf or run, so one comparison per stretch where neither
 * changes leaf suffices.
 */
export function checkTranslation(root: RootId, after: Entries, windows: RangeSet, expect: Expectation, largest: PageSize, clause: Clause): PostViolation[] {
  const leaves = after.leaves;
  for (const w of windows.ranges) {
    const end = rangeEnd(w);
    for (let p = w.vpn; p < end; ) {
      const e = expect(p);
      const want = e.leaf !== undefined && presentOf(e) ? e.leaf : undefined;
      const i = firstEndingAfter(leaves, p);
      const next = leaves[i];
      const got = next !== undefined && next.vpn <= p ? next : undefined;
      const frame = (l: Leaf): number => l.pfn + (p - l.vpn);
      let what: string | null = null;
      if (got !== undefined && PAGES[got.size] > PAGES[largest]) what = `${entryText(got, true)} is larger than ${largest}`;
      else if (want === undefined && got !== undefined) what = `at ${vpnToHex(p)} expected nothing mapped, found ${entryText(got, true)}`;
      else if (want !== undefined && (got === undefined || frame(got) !== frame(want) || !protEquals(got.prot, want.prot))) {
        what = `at ${vpnToHex(p)} expected frame ${pfnToHex(frame(want))} through ${entryText(want, true)}, found ${got === undefined ? 'nothing mapped' : entryText(got, true)}`;
      }
      if (what !== null) return [breach(clause, what, [leafWitness(root, p, 1, what)])];
      p = Math.min(e.until, got !== undefined ? leafEnd(got) : next?.vpn ?? VPN_LIMIT, end);
    }
  }
  return [];
}
