/**
 * What a fuzz run exercised: operation outcomes, access results, invariants checked, leaf
 * sizes and regions hit, and the TLB, cache and obligation rules met (fuzz/coverage-rules.ts).
 * Plain JSON-able counters so worker threads can post them and a campaign can merge them;
 * `cli` turns them into the summary ("never exercised: …").
 */
import * as t from 'io-ts';
import type { PageSize, Vpn } from '../spec/address.ts';
import type { Region } from '../spec/scenario.ts';
import type { SystemConfig } from '../spec/state.ts';
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
  /** Scenario axis (AXES) → sequences that exercised it. */
  axes: Record<string, number>;
  /** TLB, paging-structure-cache and obligation rule (COVERAGE_RULES of fuzz/coverage-rules.ts) → steps that met it. */
  rules: Record<string, number>;
}

/**
 * What a scenario varies, each counted by the sequences that ran with it: paging levels,
 * the CPU's huge pages, where the table pool lies (a pool frame at or above 4 GiB puts
 * PFN bits in a table entry's high 32-bit word), a pool small enough to run out, and,
 * measured on the abstract state rather than read off the scenario, a sequence that
 * held more tables than the impl starts with room for, so its pool grew.
 */
export const AXES = [
  'levels-4', 'levels-5', 'pse', 'no-pse', 'gbpages', 'no-gbpages', 'pool-below-4g', 'pool-above-4g', 'small-pool', 'pool-grew',
] as const;
export type Axis = (typeof AXES)[number];

/** First frame at 4 GiB: its PFN no longer fits an entry's low word (bits 12–31). */
export const FIRST_HIGH_PFN = 0x100000;
/** The impl's table pool starts with room for this many tables and doubles past it (impl/tables.ts, grow). */
export const INITIAL_TABLES = 64;
/** A pool this small runs out after a few splits beyond the boot's 11 to 14 tables: ENOMEM is reachable. */
export const SMALL_POOL_TABLES = 32;

/** The axes a scenario's machine has (every sequence on it exercises them). */
export function machineAxes(config: SystemConfig): Axis[] {
  const pool = config.tablePool;
  return [
    config.levels === 5 ? 'levels-5' : 'levels-4',
    config.features.pse ? 'pse' : 'no-pse',
    config.features.gbpages ? 'gbpages' : 'no-gbpages',
    ...(pool.pfn < FIRST_HIGH_PFN ? ['pool-below-4g' as const] : []),
    ...(pool.pfn + pool.count > FIRST_HIGH_PFN ? ['pool-above-4g' as const] : []),
    ...(pool.count <= SMALL_POOL_TABLES ? ['small-pool' as const] : []),
  ];
}

/** The axes a campaign on this machine can exercise: its own, and pool growth when the pool has room to grow. */
export function possibleAxes(config: SystemConfig): Axis[] {
  return [...machineAxes(config), ...(config.tablePool.count > INITIAL_TABLES ? ['pool-grew' as const] : [])];
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
  axes: countsC,
  rules: countsC,
}) satisfies t.Type<Coverage, unknown, unknown>;

export function emptyCoverage(): Coverage {
  return {
    sequences: 0, commands: 0, outcomes: {}, access: {}, invariants: {},
    pageSizes: { '4K': 0, '2M': 0, '1G': 0, unmapped: 0 }, regions: {}, fullChecks: 0, axes: {}, rules: {},
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
  addCounts(into.axes, from.axes);
  addCounts(into.rules, from.rules);
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
