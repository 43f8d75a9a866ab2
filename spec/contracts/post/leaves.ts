/**
 * The leaves a postcondition expects, stated page by page, and the checks that hold an
 * after-state to them.
 *
 * An operation's relation says, for any page p of the ranges it affects, what the state
 * after must hold there: the whole leaf that contains p, or no mapping up to some page
 * (`Expected`). That is the page-wise reading of the contract; the checker walks it leaf
 * by leaf (jumping from one expected leaf or hole to the next, and through a run of
 * like leaves without asking again), so its cost is the number of leaves there, not
 * pages. Everything here reads sorted leaf arrays by binary search.
 */
import { PAGES, VPN_LIMIT, vpnToHex, type PageSize, type Vpn } from '../../address.ts';
import { protEquals, type Leaf, type Prot, type RootId } from '../../state.ts';
import { breach, leafText, leafWitness, type Clause, type PostMode, type PostViolation } from './clause.ts';
import { RangeSet, rangeEnd, type Range } from './ranges.ts';

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

/** The first leaf with a page in the range. */
export function firstMapped(leaves: readonly Leaf[], r: Range): Leaf | undefined {
  const l = leaves[firstEndingAfter(leaves, r.vpn)];
  return l !== undefined && l.vpn < rangeEnd(r) ? l : undefined;
}

/** The first page of the range that no leaf maps. */
export function firstHole(leaves: readonly Leaf[], r: Range): Vpn | undefined {
  let at = r.vpn;
  for (let i = firstEndingAfter(leaves, at); at < rangeEnd(r); i++) {
    const l = leaves[i];
    if (l === undefined || l.vpn > at) return at;
    at = leafEnd(l);
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

/** The range widened to the whole leaves that contain its first and last page. */
function widen(leaves: readonly Leaf[], r: Range): Range {
  const first = leafAt(leaves, r.vpn);
  const last = leafAt(leaves, rangeEnd(r) - 1);
  const lo = first === undefined ? r.vpn : first.vpn;
  return { vpn: lo, pages: Math.max(rangeEnd(r), last === undefined ? 0 : leafEnd(last)) - lo };
}

export function windowsOf(leaves: readonly Leaf[], ranges: readonly Range[]): RangeSet {
  return new RangeSet(ranges.map((r) => widen(leaves, r)));
}

// ---- what the state after holds at a page ----

/**
 * What the state after holds from a page on: `leaf`, the whole leaf containing the page,
 * followed by leaves of its size that continue its frames with its prot up to `until`
 * (a run: the pieces of a split, map's leaves of one size); or, without `leaf`, no
 * mapping up to `until`. A run lets the check walk those leaves without asking again.
 */
export interface Expected {
  readonly leaf?: Leaf;
  readonly until: Vpn;
}
export type Expectation = (p: Vpn) => Expected;

/** The leaves as they are: the frame condition's expectation. */
export function unchangedAt(leaves: readonly Leaf[]): Expectation {
  // Pages are asked for in increasing order: the answer is the leaf of the last one or the next.
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

const alignDown = (n: number, size: PageSize): number => n - (n % PAGES[size]);

/**
 * The split rule (hugepage.ts, split_large_page applied recursively): of a leaf that
 * `ranges` cut, the piece containing p is the largest size-aligned block of the leaf
 * around p that lies wholly inside or wholly outside `ranges`, with the leaf's frames
 * (same offset) and its prot exactly. A leaf the ranges do not cut is its own piece.
 *
 * The run: pieces of that size follow up to the next edge of `ranges` (the block holding
 * it is split smaller) and, for a cut leaf, to the end of the block one size up.
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

/** `removal` unmapped, the leaves it cuts split by the split rule, the rest as `leaves`. */
export function removedAt(leaves: readonly Leaf[], removal: RangeSet): Expectation {
  const old = unchangedAt(leaves);
  return (p) => {
    const gone = removal.around(p);
    if (gone !== undefined) return { until: rangeEnd(gone) };
    const e = old(p);
    if (e.leaf === undefined) return e;
    const piece = pieceOf(e.leaf, p, removal);
    return { leaf: piece.leaf, until: Math.min(e.until, piece.until) };
  };
}

/**
 * `prot → newProt(prot)` on every page of `ranges`, over what `source` holds: a leaf whose
 * prot the change alters is split by the split rule at the ranges' edges; a leaf whose
 * prot stays is left whole (protect.ts: split only where the prot actually changes).
 */
export function changedAt(source: Expectation, ranges: RangeSet, newProt: (old: Prot) => Prot): Expectation {
  // Leaves share prot objects: each distinct old prot is changed once.
  const changes = new Map<Prot, Prot | null>();
  const change = (old: Prot): Prot | null => {
    let next = changes.get(old);
    if (next === undefined) {
      const prot = newProt(old);
      next = protEquals(prot, old) ? null : prot;
      changes.set(old, next);
    }
    return next;
  };
  return (p) => {
    const e = source(p);
    if (e.leaf === undefined) return e;
    const prot = change(e.leaf.prot);
    // A run of the source keeps one prot, so one answer holds for all of it.
    if (prot === null) return e;
    const { leaf, until } = pieceOf(e.leaf, p, ranges);
    const run = Math.min(e.until, until);
    return ranges.has(p) ? { leaf: { vpn: leaf.vpn, pfn: leaf.pfn, size: leaf.size, prot }, until: run } : { leaf, until: run };
  };
}

// ---- holding an after-state to an expectation ----

interface Mismatch {
  readonly at: Vpn;
  readonly pages: number;
  readonly what: string;
}

const found = (a: Leaf | undefined): string => (a === undefined ? 'no mapping' : leafText(a));

/** Whether `a` is the leaf at q of the run `first` starts: first's size and prot, its frames continued. */
function continues(a: Leaf, first: Leaf, q: Vpn): boolean {
  return a.vpn === q && a.size === first.size && a.pfn === first.pfn + (q - first.vpn) && (a.prot === first.prot || protEquals(a.prot, first.prot));
}

function firstMismatch(after: readonly Leaf[], w: Range, expect: Expectation): Mismatch | null {
  const end = rangeEnd(w);
  let p = w.vpn;
  for (let i = firstEndingAfter(after, p); p < end; ) {
    const e = expect(p);
    const stop = Math.min(e.until, end);
    const first = e.leaf;
    if (first === undefined) {
      // after[i] ends after p (binary search, then each step moves past the leaves it matched).
      const a = after[i];
      if (a !== undefined && a.vpn < stop) return { at: a.vpn, pages: PAGES[a.size], what: `expected no mapping in [${vpnToHex(p)}, ${vpnToHex(stop)}), found ${leafText(a)}` };
      p = stop;
      continue;
    }
    // The run: leaves of first's size, one after another, its frames going on, its prot.
    const n = PAGES[first.size];
    let q = first.vpn;
    do {
      const a = after[i];
      if (a === undefined || !continues(a, first, q)) {
        const want = { ...first, vpn: q, pfn: first.pfn + (q - first.vpn) };
        const here = a !== undefined && a.vpn <= q ? a : undefined;
        return { at: q, pages: n, what: `at ${vpnToHex(q)} expected ${leafText(want)}, found ${found(here)}` };
      }
      q += n;
      i++;
    } while (q < stop);
    p = q;
  }
  return null;
}

/** The first page of each window where `after` differs from `expect`, under the clause `clauseAt` names for it. */
export function checkWindows(root: RootId, after: readonly Leaf[], windows: RangeSet, expect: Expectation, clauseAt: (p: Vpn) => Clause): PostViolation[] {
  const out: PostViolation[] = [];
  for (const w of windows.ranges) {
    const m = firstMismatch(after, w, expect);
    if (m !== null) out.push(breach(clauseAt(m.at), m.what, [leafWitness(root, m.at, m.pages, m.what)]));
  }
  return out;
}

function neighbourMoved(before: Leaf | undefined, after: Leaf | undefined, windows: RangeSet): string | null {
  if (before === undefined || windows.meets(before.vpn, leafEnd(before))) return null;
  return after !== undefined && sameLeaf(before, after) ? null : `${leafText(before)} next to the changed ranges became ${after === undefined ? 'nothing' : leafText(after)}`;
}

/**
 * The frame condition on leaves: nothing outside `windows` changed. 'full' compares every
 * leaf outside them; 'local' only the leaf beside each window edge and the number of
 * leaves outside (an added or dropped leaf anywhere changes that number).
 */
export function checkOutside(root: RootId, before: readonly Leaf[], after: readonly Leaf[], windows: RangeSet, mode: PostMode, clause: Clause): PostViolation[] {
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
      const d = firstDifference(before, ib, bl, after, ia, al);
      if (d !== null) return bad(d.what, d.at);
    } else {
      const edge = neighbourMoved(before[bl - 1], after[al - 1], windows) ?? neighbourMoved(before[bh], after[ah], windows);
      if (edge !== null) return bad(edge, before[bl - 1]);
    }
    insideB += bh - bl;
    insideA += ah - al;
    ib = bh;
    ia = ah;
  }
  if (mode === 'full') {
    const d = firstDifference(before, ib, before.length, after, ia, after.length);
    return d === null ? [] : bad(d.what, d.at);
  }
  const outB = before.length - insideB;
  const outA = after.length - insideA;
  return outB === outA ? [] : bad(`${outB} leaves lay outside the changed ranges before, ${outA} after`);
}

function firstDifference(before: readonly Leaf[], b0: number, b1: number, after: readonly Leaf[], a0: number, a1: number): { at: Leaf; what: string } | null {
  for (let k = 0; k < Math.max(b1 - b0, a1 - a0); k++) {
    const b = b0 + k < b1 ? before[b0 + k] : undefined;
    const a = a0 + k < a1 ? after[a0 + k] : undefined;
    if (a !== undefined && b !== undefined && sameLeaf(a, b)) continue;
    const at = (b ?? a)!;
    return { at, what: `outside the changed ranges ${b === undefined ? 'nothing' : leafText(b)} became ${a === undefined ? 'nothing' : leafText(a)}` };
  }
  return null;
}
