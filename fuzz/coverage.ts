/**
 * What a fuzz run exercised: operation outcomes, access results, invariants checked, leaf
 * sizes and regions hit. Plain JSON-able counters so worker threads can post them and a
 * campaign can merge them; `cli` turns them into the summary ("never exercised: …").
 */
import * as t from 'io-ts';
import type { PageSize, Vpn } from '../spec/address.ts';
import type { Region } from '../spec/scenario.ts';
import { int, strictObject } from '../io/trace.ts';

export interface Coverage {
  /** Sequences run (each boots both systems once). */
  sequences: number;
  /** Commands run after boot. */
  commands: number;
  /** op → outcome ('ok' or the errno) → count. */
  outcomes: Record<string, Record<string, number>>;
  /** access results: 'tlb' (hit), 'walk' (filled), 'not-present', 'protection'. */
  access: Record<string, number>;
  /** invariant id → times checked (incremental and full). */
  invariants: Record<string, number>;
  /** Size of the leaf under a successful command's address after it ran, or 'unmapped'. */
  pageSizes: Record<PageSize | 'unmapped', number>;
  /** Region name (or 'elsewhere') → commands whose address fell in it. */
  regions: Record<string, number>;
  /** Full refinement + invariant checks run (periodic and at the end of each sequence). */
  fullChecks: number;
}

const countsC = t.record(t.string, int);

/** Coverage as `ptspec fuzz --json` prints it (schemas/fuzz-summary.schema.json). */
export const CoverageC = strictObject('coverage', {
  sequences: int,
  commands: int,
  outcomes: t.record(t.string, countsC),
  access: countsC,
  invariants: countsC,
  pageSizes: strictObject('counts by leaf size', { '4K': int, '2M': int, '1G': int, unmapped: int }),
  regions: countsC,
  fullChecks: int,
}) satisfies t.Type<Coverage, unknown, unknown>;

export function emptyCoverage(): Coverage {
  return {
    sequences: 0, commands: 0, outcomes: {}, access: {}, invariants: {},
    pageSizes: { '4K': 0, '2M': 0, '1G': 0, unmapped: 0 }, regions: {}, fullChecks: 0,
  };
}

export function bump(counts: Record<string, number>, key: string, n = 1): void {
  counts[key] = (counts[key] ?? 0) + n;
}

function addCounts(into: Record<string, number>, from: Readonly<Record<string, number>>): void {
  for (const [k, n] of Object.entries(from)) bump(into, k, n);
}

/** Adds `from` into `into` (mutating; the campaign's running total). */
export function addCoverage(into: Coverage, from: Coverage): void {
  into.sequences += from.sequences;
  into.commands += from.commands;
  into.fullChecks += from.fullChecks;
  for (const [op, counts] of Object.entries(from.outcomes)) addCounts((into.outcomes[op] ??= {}), counts);
  addCounts(into.access, from.access);
  addCounts(into.invariants, from.invariants);
  addCounts(into.pageSizes, from.pageSizes);
  addCounts(into.regions, from.regions);
}

/** A new coverage holding the sum of all given. */
export function mergeCoverage(...parts: readonly Coverage[]): Coverage {
  const total = emptyCoverage();
  for (const p of parts) addCoverage(total, p);
  return total;
}

/** Name of the scenario region containing vpn, or 'elsewhere'. */
export function regionOf(regions: readonly Region[], vpn: Vpn): string {
  for (const r of regions) if (vpn >= r.vpn && vpn < r.vpn + r.pages) return r.name;
  return 'elsewhere';
}
