/**
 * The scenario matrix (fuzz/matrix.ts) and the axes coverage counts: which scenario and
 * length each run index gets, that every shard cycles through every scenario, that the
 * matrix can exercise every axis, the high-tables machine, and what the summary says
 * was never exercised.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createImpl } from '../impl/index.ts';
import { HI_PFN_MASK, _PAGE_PRESENT } from '../impl/arch/x86_64/entry.ts';
import type { TablePool } from '../impl/tables.ts';
import { applyCommand } from '../spec/commands.ts';
import { SCENARIOS, scenarioNamed } from '../spec/scenario.ts';
import { globalRunIndex } from '../fuzz/campaign-run.ts';
import { AXES, FIRST_HIGH_PFN, emptyCoverage, machineAxes } from '../fuzz/coverage.ts';
import { campaignAxes, coverageGaps } from '../fuzz/coverage-goals.ts';
import { LARGE_SCENARIOS, LONG_COMMANDS, LONG_ROUND_EVERY, MATRIX_SCENARIOS, campaignScenarioList, campaignScenarios, runPlan } from '../fuzz/matrix.ts';
import { coverageLines } from '../cli/fuzz-summary.ts';
import { ptspec } from './cli.ts';

const n = MATRIX_SCENARIOS.length;

describe('the matrix plan', () => {
  it('runs run g on scenario g mod n, whole rounds of them long, and leaves a single scenario alone', () => {
    expect(MATRIX_SCENARIOS).toEqual(Object.keys(SCENARIOS).filter((n) => !LARGE_SCENARIOS.has(n)));
    expect(MATRIX_SCENARIOS).toContain('x86-64');
    expect(MATRIX_SCENARIOS).toContain('kernel-high-tables');
    const plans = Array.from({ length: n * LONG_ROUND_EVERY }, (_, g) => runPlan(MATRIX_SCENARIOS, 100, g));
    expect(plans.map((p) => p.scenario)).toEqual(Array.from({ length: n * LONG_ROUND_EVERY }, (_, g) => MATRIX_SCENARIOS[g % n]));
    // The last round of each LONG_ROUND_EVERY is long, for every scenario.
    expect(plans.filter((p) => p.maxCommands === LONG_COMMANDS).map((p) => p.scenario)).toEqual(MATRIX_SCENARIOS);
    expect(plans.slice(-n).every((p) => p.maxCommands === LONG_COMMANDS)).toBe(true);
    // A longer --max-commands is kept; one scenario is never lengthened.
    expect(runPlan(MATRIX_SCENARIOS, 5000, n * LONG_ROUND_EVERY - 1).maxCommands).toBe(5000);
    expect(Array.from({ length: 64 }, (_, g) => runPlan(['kernel'], 100, g).maxCommands)).toEqual(Array(64).fill(100));
    expect(campaignScenarios('matrix')).toBe(MATRIX_SCENARIOS);
    expect(campaignScenarios('kernel-5level')).toEqual(['kernel-5level']);
    expect(campaignScenarios('toString')).toBeUndefined();
  });

  it('gives every shard every scenario, and the shards together every run index once', () => {
    for (const shards of [1, 2, 3, 4]) {
      const owned = Array.from({ length: shards }, (_, s) => Array.from({ length: 4 * n }, (_, k) => globalRunIndex(k, s, shards, n)));
      for (const runs of owned) expect(new Set(runs.map((g) => g % n)).size).toBe(n);
      expect([...owned.flat()].sort((a, b) => a - b)).toEqual(Array.from({ length: 4 * n * shards }, (_, g) => g));
    }
    // One scenario: shards own residues, as before the matrix.
    expect(Array.from({ length: 5 }, (_, k) => globalRunIndex(k, 1, 3))).toEqual([1, 4, 7, 10, 13]);
  });
});

describe('scenario axes', () => {
  it('the matrix can exercise every axis; each scenario has its own', () => {
    expect(campaignAxes(campaignScenarioList('matrix')!)).toEqual([...AXES]);
    const axes = (name: string): string[] => machineAxes(scenarioNamed(name)!().config);
    expect(axes('kernel')).toEqual(['levels-4', 'pse', 'gbpages', 'pool-below-4g']);
    expect(axes('kernel-5level')).toContain('levels-5');
    expect(axes('kernel-no-pse')).toEqual(['levels-4', 'no-pse', 'no-gbpages', 'pool-below-4g']);
    expect(axes('kernel-small-pool')).toContain('small-pool');
    expect(axes('kernel-high-tables')).toEqual(['levels-4', 'pse', 'gbpages', 'pool-above-4g']);
    // A 24-table pool never grows: that is not a gap of its campaign.
    expect(campaignAxes(scenarioNamed('kernel-small-pool')!())).not.toContain('pool-grew');
  });

  it('the summary names the axes never exercised', () => {
    const kernel = scenarioNamed('kernel')!();
    const gaps = coverageGaps(emptyCoverage(), kernel, []);
    expect(gaps.axes).toEqual(['levels-4', 'pse', 'gbpages', 'pool-below-4g', 'pool-grew']);
    const lines = coverageLines({ coverage: emptyCoverage(), neverExercised: gaps }, kernel).join('\n');
    expect(lines).toContain('scenario axes 4-level paging, PSE (2M pages), GB pages, table pool below 4 GiB, table pool grew past its first 64 tables');
    expect(lines).toContain('--scenario matrix');
    const cov = { ...emptyCoverage(), axes: { 'levels-4': 3, pse: 3, gbpages: 3, 'pool-below-4g': 3, 'pool-grew': 1 } };
    expect(coverageGaps(cov, kernel, []).axes).toEqual([]);
  });
});

describe('kernel-high-tables', () => {
  it('puts the pool above 4 GiB, so the booted tables link through PFNs with high-word bits', () => {
    const s = scenarioNamed('kernel-high-tables')!();
    expect(s.config.tablePool.pfn).toBeGreaterThanOrEqual(FIRST_HIGH_PFN);
    // Frame runs sorted and without gaps, the pool the last of them.
    s.frames.forEach((r, i) => expect(r.pfn).toBe(i === 0 ? 0 : s.frames[i - 1]!.pfn + s.frames[i - 1]!.count));
    expect(s.frames.at(-1)).toMatchObject({ pfn: s.config.tablePool.pfn, count: s.config.tablePool.count, use: 'pagetable' });
    const impl = createImpl(s);
    for (const c of s.boot) expect(applyCommand(impl, c).ok).toBe(true);
    // init_mm's pgd is pool slot 0: its present entries point at tables above 4 GiB.
    const pool = (impl as unknown as { radix: { pool: TablePool } }).radix.pool;
    const present = Array.from({ length: 512 }, (_, i) => [pool.words[2 * i]!, pool.words[2 * i + 1]!] as const).filter(([lo]) => (lo & _PAGE_PRESENT) !== 0);
    expect(present.length).toBeGreaterThan(0);
    for (const [, hi] of present) expect(hi & HI_PFN_MASK).not.toBe(0);
  });

  it('passes a campaign and its summary counts the axis', async () => {
    const r = await ptspec('fuzz', '--scenario', 'kernel-high-tables', '--runs', '8', '--seed', '1', '--jobs', '1', '--max-commands', '30', '--json', '--out', mkdtempSync(join(tmpdir(), 'ptspec-high-')));
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).coverage.axes['pool-above-4g']).toBe(8);
  }, 60_000);
});
