/**
 * Scale-out: shards of a campaign, each with its own failure directory, merged by
 * `ptspec merge`, are the campaign run in one piece over the same run indexes: the same
 * failure keys with the counts summed, the same traces (the earliest run's), and the
 * same coverage. And `--shard auto` finds its shard in a Kubernetes Indexed Job's or a CI
 * matrix's environment, or says what is missing (exit 2).
 */
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseFailureFile, type FailureFile } from '../fuzz/failure-file.ts';
import type { Summary } from '../cli/fuzz-summary.ts';
import type { MergeReport } from '../cli/merge.ts';
import { shardFromEnv } from '../cli/options.ts';
import { MATRIX_SCENARIOS } from '../fuzz/matrix.ts';
import { machineAxes, type Axis } from '../fuzz/coverage.ts';
import { scenarioNamed } from '../spec/scenario.ts';
import { ptspec } from './cli.ts';

const SHARDS = 3;
const RUNS_PER_SHARD = 3;
// A mutant these few runs catch more than once, so counts are summed across shards.
const CAMPAIGN = ['fuzz', '--mutant', 'unmap-no-split', '--seed', '5', '--max-commands', '60', '--jobs', '1', '--json'];

function failureFiles(dir: string): Map<string, FailureFile> {
  const out = new Map<string, FailureFile>();
  for (const name of readdirSync(dir).filter((n) => n.endsWith('.json'))) {
    const r = parseFailureFile(readFileSync(join(dir, name), 'utf8'));
    if (!r.ok) throw new Error(`${name}: ${r.errors.join('; ')}`);
    out.set(r.value.key, r.value);
  }
  return out;
}

/**
 * `campaign` run whole over shards × runsPerShard runs, and as `shards` shards merged:
 * the same failure keys, counts, traces and coverage. Returns both, and the directories.
 */
async function mergedAndWhole(campaign: readonly string[], shards: number, runsPerShard: number) {
  const root = mkdtempSync(join(tmpdir(), 'ptspec-merge-'));
  const whole = await ptspec(...campaign, '--runs', String(shards * runsPerShard), '--out', join(root, 'whole'));
  const dirs: string[] = [];
  for (let i = 1; i <= shards; i++) {
    const dir = join(root, `shard-${i}`);
    dirs.push(dir);
    expect((await ptspec(...campaign, '--runs', String(runsPerShard), '--shard', `${i}/${shards}`, '--out', dir)).code).not.toBe(2);
  }
  const merged = await ptspec('merge', ...dirs, '--out', join(root, 'merged'), '--json');
  const one = JSON.parse(whole.stdout) as Summary;
  const report = JSON.parse(merged.stdout) as MergeReport;
  expect(one.failures.length).toBeGreaterThan(0);
  expect(merged.code).toBe(1);
  // Same keys, and each key's count is the runs of the whole campaign that hit it.
  expect(report.failures.map((f) => [f.key, f.count])).toEqual(one.failures.map((f) => [f.key, f.hits]).sort());
  // The same traces: the earliest run's, whichever shard ran it.
  const mergedFiles = failureFiles(join(root, 'merged'));
  for (const [key, f] of failureFiles(join(root, 'whole'))) {
    expect(mergedFiles.get(key), key).toMatchObject({ runIndex: f.runIndex, seed: f.seed, path: f.path, commands: f.commands, count: f.count, scenario: f.scenario });
  }
  // The same coverage totals.
  expect(report.campaigns).toHaveLength(1);
  expect(report.campaigns[0]!).toMatchObject({ runs: one.runs, commands: one.commands, missingShards: [] });
  expect(report.campaigns[0]!.coverage).toEqual(one.coverage);
  expect(report.campaigns[0]!.neverExercised).toEqual(one.neverExercised);
  return { root, dirs, one, report };
}

describe('ptspec merge', () => {
  it(`merges ${SHARDS} shards into what one campaign over the same runs found and covered`, async () => {
    const { root, dirs, one, report } = await mergedAndWhole(CAMPAIGN, SHARDS, RUNS_PER_SHARD);
    expect(report.failures.some((f) => f.count > 1)).toBe(true);
    for (const f of failureFiles(join(root, 'whole')).values()) {
      // A new record says how its run was generated and when the campaign found it.
      expect(f.swarm).toBe(true);
      expect(f.foundAtMs).toBeGreaterThanOrEqual(0);
      expect(f.commandsBefore).toBeGreaterThanOrEqual(0);
    }
    // A failure found by a campaign says when: after how long and how many commands.
    for (const f of one.failures) {
      expect(f.foundAtMs).toBeGreaterThanOrEqual(0);
      expect(f.commandsBefore).toBeGreaterThanOrEqual(0);
    }

    // The merged directory merges again to the same totals.
    const again = JSON.parse((await ptspec('merge', join(root, 'merged'), '--json')).stdout) as MergeReport;
    expect(again.failures.map((f) => [f.key, f.count])).toEqual(report.failures.map((f) => [f.key, f.count]));
    expect(again.campaigns[0]!.coverage).toEqual(one.coverage);

    // A shard left out is named, and its runs are not counted.
    const partial = JSON.parse((await ptspec('merge', dirs[0]!, dirs[2]!, '--json')).stdout) as MergeReport;
    expect(partial.campaigns[0]!.missingShards).toEqual(['2/3 of seed 5']);
    const text = (await ptspec('merge', ...dirs)).stdout;
    expect(text).toMatch(/3 campaign summaries \(1\/3 of seed 5, 2\/3 of seed 5, 3\/3 of seed 5\)/);
    expect(text).toMatch(/FAILED: \d+ distinct failure/);
  }, 120_000);

  it('merges the shards of a matrix campaign into the matrix campaign, every failure filed on its own scenario', async () => {
    // Two shards of two rounds each: every shard runs every scenario of the matrix.
    const campaign = ['fuzz', '--scenario', 'matrix', '--mutant', 'unmap-no-split', '--seed', '3', '--max-commands', '40', '--jobs', '2', '--json'];
    const { root, one, report } = await mergedAndWhole(campaign, 2, 2 * MATRIX_SCENARIOS.length);
    expect(report.campaigns[0]!.scenario).toBe('matrix');
    // Each scenario ran its share of the runs: four each.
    const having = (axis: Axis): number => MATRIX_SCENARIOS.filter((n) => machineAxes(scenarioNamed(n)!().config).includes(axis)).length;
    expect(one.coverage.axes['levels-5']).toBe(4 * having('levels-5'));
    expect(one.coverage.axes['pool-above-4g']).toBe(4 * having('pool-above-4g'));
    const files = [...failureFiles(join(root, 'whole')).values()];
    for (const f of files) {
      expect(MATRIX_SCENARIOS).toContain(f.scenario);
      expect(f.key.split('--')[1]).toBe(f.scenario);
    }
    // A failure file replays on the scenario its run had.
    const first = readdirSync(join(root, 'whole')).find((n) => n.endsWith('.json'))!;
    const replayed = await ptspec('replay', join(root, 'whole', first));
    expect(replayed.code, replayed.stderr).toBe(1);
    expect(replayed.stdout).toContain(`scenario ${files.find((f) => first.startsWith(f.key.replace(/[^A-Za-z0-9._-]+/g, '_')))!.scenario}`);
  }, 180_000);

  it('refuses a directory that does not exist (exit 2)', async () => {
    const r = await ptspec('merge', join(tmpdir(), 'ptspec-no-such-dir-for-merge'));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/is not a failure directory/);
  });
});

describe('--shard auto', () => {
  it('reads a CI matrix (1-based) or a Kubernetes Indexed Job (0-based, completions passed as PTSPEC_SHARDS)', () => {
    expect(shardFromEnv({ PTSPEC_SHARD_INDEX: '2', PTSPEC_SHARD_COUNT: '4' })).toEqual({ index: 1, count: 4 });
    expect(shardFromEnv({ JOB_COMPLETION_INDEX: '0', PTSPEC_SHARDS: '8' })).toEqual({ index: 0, count: 8 });
    expect(shardFromEnv({ JOB_COMPLETION_INDEX: '7', PTSPEC_SHARDS: '8' })).toEqual({ index: 7, count: 8 });
  });

  it.each([
    [{}, /needs PTSPEC_SHARD_INDEX and PTSPEC_SHARD_COUNT .* or JOB_COMPLETION_INDEX and PTSPEC_SHARDS/],
    [{ JOB_COMPLETION_INDEX: '3' }, /JOB_COMPLETION_INDEX is set but PTSPEC_SHARDS is not/],
    [{ PTSPEC_SHARD_INDEX: '1' }, /PTSPEC_SHARD_INDEX is set but PTSPEC_SHARD_COUNT is not/],
    [{ JOB_COMPLETION_INDEX: '8', PTSPEC_SHARDS: '8' }, /do not name a shard \(0 ≤ index < count\)/],
    [{ PTSPEC_SHARD_INDEX: '0', PTSPEC_SHARD_COUNT: '4' }, /do not name a shard \(1 ≤ index ≤ count\)/],
    [{ PTSPEC_SHARD_INDEX: 'two', PTSPEC_SHARD_COUNT: '4' }, /"two"/],
  ])('says what is wrong with %j', (env, message) => {
    expect(() => shardFromEnv(env)).toThrow(message);
  });

  it('is a usage error (exit 2) when the environment names no shard', async () => {
    const saved = { ...process.env };
    for (const k of ['PTSPEC_SHARD_INDEX', 'PTSPEC_SHARD_COUNT', 'JOB_COMPLETION_INDEX', 'PTSPEC_SHARDS']) delete process.env[k];
    try {
      const r = await ptspec('fuzz', '--shard', 'auto', '--runs', '1');
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/--shard auto needs/);
    } finally {
      process.env = saved;
    }
  });
});
