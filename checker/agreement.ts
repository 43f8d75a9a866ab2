/**
 * Whether the fast checks agree with their definitions on a state: both find nothing or
 * both find something, and their witnesses cover the same (root, page) pairs and the same
 * frames. A check that hit MAX_WITNESSES is held only to what it listed. The property
 * test over random and adversarial states (test/invariants-holds.test.ts) and the
 * fuzzer's end-of-trace check on real reachable states both ask this.
 */
import { isDeepStrictEqual } from 'node:util';
import type { CheckScope, Witness } from '../spec/invariant.ts';
import type { AbstractState } from '../spec/state.ts';
import { MAX_WITNESSES } from './common.ts';
import { CATALOGUE, type Invariant } from './index.ts';

type Span = readonly [number, number];

/** Half-open spans sorted and merged, empty ones dropped: equal lists cover equal sets. */
function merged(spans: readonly Span[]): Span[] {
  const out: [number, number][] = [];
  for (const [lo, hi] of spans.filter(([lo, hi]) => lo < hi).sort((a, b) => a[0] - b[0])) {
    const last = out[out.length - 1];
    if (last !== undefined && lo <= last[1]) last[1] = Math.max(last[1], hi);
    else out.push([lo, hi]);
  }
  return out;
}

/** What a witness list covers: the roots it names, the pages per root, the frames. */
export interface Cover {
  readonly roots: readonly string[];
  readonly pages: Readonly<Record<string, readonly Span[]>>;
  readonly frames: readonly Span[];
}

/** The "N more violations not listed" witness a capped check ends with. */
export const isCapSummary = (w: Witness): boolean => w.root === undefined && w.vpn === undefined && w.frames === undefined;

export function cover(ws: readonly Witness[]): Cover {
  const pages = new Map<string, Span[]>();
  const frames: Span[] = [];
  for (const w of ws.filter((x) => !isCapSummary(x))) {
    const root = String(w.root ?? '-');
    const list = pages.get(root) ?? [];
    pages.set(root, list);
    if (w.vpn !== undefined) list.push([w.vpn, w.vpn + (w.pages ?? 0)]);
    for (const f of w.frames ?? []) frames.push([f.pfn, f.pfn + f.count]);
  }
  const roots = [...pages.keys()].sort();
  return { roots, pages: Object.fromEntries(roots.map((r) => [r, merged(pages.get(r)!)])), frames: merged(frames) };
}

const spansWithin = (a: readonly Span[], b: readonly Span[]): boolean => a.every(([lo, hi]) => b.some(([blo, bhi]) => blo <= lo && hi <= bhi));

/** Whether everything `a` covers, `b` covers too. */
export function coverWithin(a: Cover, b: Cover): boolean {
  return a.roots.every((r) => b.pages[r] !== undefined && spansWithin(a.pages[r]!, b.pages[r]!)) && spansWithin(a.frames, b.frames);
}

export interface Disagreement {
  readonly id: string;
  readonly name: string;
  readonly problem: string;
  readonly check: Cover;
  readonly holds: Cover;
}

/**
 * Where the full checks disagree with their definitions on `state`, one entry per
 * invariant; `onDefinition` sees each definition's witnesses (the test counts which
 * invariants its states broke).
 */
export function checkDisagreements(state: AbstractState, only: readonly Invariant[] = CATALOGUE, onDefinition?: (inv: Invariant, defined: readonly Witness[]) => void): Disagreement[] {
  const out: Disagreement[] = [];
  for (const inv of only) {
    const defined = inv.holds(state);
    const checked = inv.check(state);
    onDefinition?.(inv, defined);
    const c = cover(checked);
    const d = cover(defined);
    const say = (problem: string): void => void out.push({ id: inv.id, name: inv.name, problem, check: c, holds: d });
    if (checked.length > 0 !== defined.length > 0) say('only one finds something');
    else if (checked.some(isCapSummary)) {
      if (checked.length !== MAX_WITNESSES + 1 || !coverWithin(c, d)) say('the capped check lists other violations');
    } else if (!isDeepStrictEqual(c, d)) say('they cover different pages or frames');
  }
  return out;
}

/**
 * Where a scoped check disagrees with its definition: it reports nothing the definition
 * does not, and everything the definition reports that meets the scope. The state must
 * have sorted, disjoint leaves (what a scoped check trusts a full check to have shown).
 * S11 needs the whole map and waits for a full check, so it is left out.
 */
export function scopedCheckDisagreements(state: AbstractState, scope: CheckScope): Disagreement[] {
  const meets = (w: Witness): boolean => w.vpn === undefined || (w.vpn < scope.vpn + scope.pages && scope.vpn < w.vpn + (w.pages ?? 0));
  const out: Disagreement[] = [];
  for (const inv of CATALOGUE.filter((i) => i.name !== 'no_leaked_and_no_empty_tables')) {
    const defined = inv.holds(state);
    const checked = inv.check(state, scope);
    const c = cover(checked);
    const d = cover(defined);
    const say = (problem: string): void => void out.push({ id: inv.id, name: inv.name, problem, check: c, holds: d });
    if (!coverWithin(c, d)) say('the check reports more than the definition');
    if (!checked.some(isCapSummary) && !coverWithin(cover(defined.filter(meets)), c)) say('the check misses some in the scope');
  }
  return out;
}

/** One line per disagreement, for a failure detail or a test message. */
export function disagreementText(d: Disagreement): string {
  return `${d.id} ${d.name}: ${d.problem}: check covers ${JSON.stringify(d.check)}, holds covers ${JSON.stringify(d.holds)}`;
}
