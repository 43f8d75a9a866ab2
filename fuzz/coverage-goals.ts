/**
 * What a campaign could exercise, so its summary can say plainly what it never did: each
 * operation's possible outcomes by the shared semantics (argument errors, the state
 * errors of its contract, policy, table memory), the access results, the leaf sizes the
 * scenario's CPU supports, and the scenario's regions.
 */
import * as t from 'io-ts';
import type { PageSize } from '../spec/address.ts';
import { POSSIBLE_OUTCOMES } from '../spec/contracts/outcome.ts';
import { PageSizeC, strictObject } from '../io/trace.ts';
import type { Scenario } from '../spec/scenario.ts';
import { AXES, possibleAxes, type Axis, type Coverage } from './coverage.ts';

export const ACCESS_RESULTS = ['tlb', 'walk', 'not-present', 'protection'] as const;

/** The level whose entry maps a leaf of each size, for readers who think in levels. */
export const LEVEL_OF_SIZE: Readonly<Record<PageSize, string>> = { '4K': 'pte', '2M': 'pmd', '1G': 'pud' };

export interface Gaps {
  /** `op → outcome` pairs never seen. */
  readonly outcomes: readonly string[];
  readonly access: readonly string[];
  readonly pageSizes: readonly PageSize[];
  readonly regions: readonly string[];
  /** Invariants of the suite never checked. */
  readonly invariants: readonly string[];
  /** Scenario axes (AXES) the campaign's scenarios could exercise and no sequence did. */
  readonly axes: readonly string[];
}

export const GapsC = strictObject('what the campaign never exercised', {
  outcomes: t.readonlyArray(t.string), access: t.readonlyArray(t.string), pageSizes: t.readonlyArray(PageSizeC),
  regions: t.readonlyArray(t.string), invariants: t.readonlyArray(t.string), axes: t.readonlyArray(t.string),
}) satisfies t.Type<Gaps, unknown, unknown>;

/** A campaign's scenarios: one, or a matrix's (fuzz/matrix.ts). */
export type Scenarios = Scenario | readonly Scenario[];

const listOf = (s: Scenarios): readonly Scenario[] => ('config' in s ? [s as Scenario] : (s as readonly Scenario[]));

/** The leaf sizes some CPU of the scenarios supports. */
export function supportedSizes(scenarios: Scenarios): PageSize[] {
  const list = listOf(scenarios);
  return (['4K', '2M', '1G'] as const).filter((z) => z === '4K' || list.some((s) => (z === '2M' ? s.config.features.pse : s.config.features.gbpages)));
}

/** The names of the scenarios' regions, each once. */
export function regionNames(scenarios: Scenarios): string[] {
  return [...new Set(listOf(scenarios).flatMap((s) => s.regions.map((r) => r.name)))];
}

/** The axes the scenarios can exercise, in AXES' order. */
export function campaignAxes(scenarios: Scenarios): Axis[] {
  const possible = new Set(listOf(scenarios).flatMap((s) => possibleAxes(s.config)));
  return AXES.filter((a) => possible.has(a));
}

/** What the campaign never exercised of what it could have. */
export function coverageGaps(cov: Coverage, scenarios: Scenarios, invariantIds: readonly string[]): Gaps {
  const outcomes: string[] = [];
  for (const [op, possible] of Object.entries(POSSIBLE_OUTCOMES)) {
    for (const o of possible) if ((cov.outcomes[op]?.[o] ?? 0) === 0) outcomes.push(`${op}→${o}`);
  }
  return {
    outcomes,
    access: ACCESS_RESULTS.filter((a) => (cov.access[a] ?? 0) === 0),
    pageSizes: supportedSizes(scenarios).filter((s) => cov.pageSizes[s] === 0),
    regions: regionNames(scenarios).filter((n) => (cov.regions[n] ?? 0) === 0),
    invariants: invariantIds.filter((id) => (cov.invariants[id] ?? 0) === 0),
    axes: campaignAxes(scenarios).filter((a) => (cov.axes[a] ?? 0) === 0),
  };
}

/** Exercised / possible op→outcome pairs, for the progress line. */
export function outcomePairs(cov: Coverage): { readonly seen: number; readonly possible: number } {
  let seen = 0;
  let possible = 0;
  for (const [op, outs] of Object.entries(POSSIBLE_OUTCOMES)) {
    possible += outs.length;
    for (const o of outs) if ((cov.outcomes[op]?.[o] ?? 0) > 0) seen++;
  }
  return { seen, possible };
}
