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
import type { Coverage } from './coverage.ts';

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
}

export const GapsC = strictObject('what the campaign never exercised', {
  outcomes: t.readonlyArray(t.string), access: t.readonlyArray(t.string), pageSizes: t.readonlyArray(PageSizeC),
  regions: t.readonlyArray(t.string), invariants: t.readonlyArray(t.string),
}) satisfies t.Type<Gaps, unknown, unknown>;

export function supportedSizes(scenario: Scenario): PageSize[] {
  const f = scenario.config.features;
  return ['4K', ...(f.pse ? ['2M' as const] : []), ...(f.gbpages ? ['1G' as const] : [])];
}

/** What the campaign never exercised of what it could have. */
export function coverageGaps(cov: Coverage, scenario: Scenario, invariantIds: readonly string[]): Gaps {
  const outcomes: string[] = [];
  for (const [op, possible] of Object.entries(POSSIBLE_OUTCOMES)) {
    for (const o of possible) if ((cov.outcomes[op]?.[o] ?? 0) === 0) outcomes.push(`${op}→${o}`);
  }
  return {
    outcomes,
    access: ACCESS_RESULTS.filter((a) => (cov.access[a] ?? 0) === 0),
    pageSizes: supportedSizes(scenario).filter((s) => cov.pageSizes[s] === 0),
    regions: scenario.regions.map((r) => r.name).filter((n) => (cov.regions[n] ?? 0) === 0),
    invariants: invariantIds.filter((id) => (cov.invariants[id] ?? 0) === 0),
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
