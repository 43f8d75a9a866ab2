/**
 * `ptspec fuzz` and `ptspec replay` as a user runs them: exit codes and what they print.
 * The command line runs in-process (test/cli.ts); one test spawns bin/ptspec.js to show
 * that a real process exits 2 on bad usage with the message and no stack trace.
 * Campaigns here are tiny (a few runs, one worker) to stay fast.
 */
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseFailureFile } from '../fuzz/failure-file.ts';
import { intParser, parseDuration, parseShard } from '../cli/options.ts';
import { ptspec, spawnPtspec, type CliRun } from './cli.ts';

const tmp = (): string => mkdtempSync(join(tmpdir(), 'ptspec-cli-'));

describe('option parsers', () => {
  it('read durations with units, seconds by default', () => {
    expect(parseDuration('90')).toBe(90_000);
    expect(parseDuration('60s')).toBe(60_000);
    expect(parseDuration('1.5m')).toBe(90_000);
    expect(parseDuration('2h')).toBe(7_200_000);
    expect(parseDuration('500ms')).toBe(500);
    for (const bad of ['0', '-1s', '5x', '', '8d', '1e3']) expect(() => parseDuration(bad), bad).toThrow(/a duration is a positive number/);
  });

  it('read shards as 1-based i/N and keep them 0-based', () => {
    expect(parseShard('1/1')).toEqual({ index: 0, count: 1 });
    expect(parseShard('3/4')).toEqual({ index: 2, count: 4 });
    for (const bad of ['0/2', '3/2', '1/0', '1', 'a/b', '1/2/3']) expect(() => parseShard(bad), bad).toThrow(/a shard is i\/N/);
  });

  it('read integers in range only', () => {
    const jobs = intParser('--jobs', 1, 256);
    expect(jobs('2')).toBe(2);
    for (const bad of ['0', '257', '1.5', '-1', 'two', '']) expect(() => jobs(bad), bad).toThrow('--jobs must be an integer from 1 to 256.');
  });
});

describe('ptspec fuzz option validation', () => {
  it('refuses bad usage with exit 2 and a message naming the option, before any work', async () => {
    const out = tmp();
    const cases: readonly [readonly string[], RegExp][] = [
      [['--bogus'], /unknown option '--bogus'/],
      [['--runs', '1.5'], /option '--runs <n>' argument '1\.5' is invalid/],
      [['--time', 'soon'], /option '--time <duration>' argument 'soon' is invalid/],
      [['--jobs', '0'], /option '--jobs <n>' argument '0' is invalid/],
      [['--shard', '3/2'], /option '--shard <i\/N>' argument '3\/2' is invalid/],
      [['--scenario', 'arm64'], /option '--scenario <name>' argument 'arm64' is invalid\. Allowed choices are kernel/],
      [['--mutant', 'no-such-bug'], /option '--mutant <name>' argument 'no-such-bug' is invalid/],
      [['--mutant', 'no-alias', '--impl', 'x.ts'], /'--mutant <name>' cannot be used with option '--impl <module>'/],
      [['--impl', 'test/fixtures/no-such-module.ts'], /--impl test\/fixtures\/no-such-module\.ts: no such file/],
    ];
    const runs = await Promise.all(cases.map(([args]) => ptspec('fuzz', '--runs', '1', '--out', out, ...args)));
    runs.forEach((r, i) => {
      expect(r.code, `exit code for ${cases[i]![0].join(' ')}`).toBe(2);
      expect(r.stderr).toMatch(cases[i]![1]);
      expect(r.stdout).toBe('');
    });
    // Nothing ran, so nothing was written.
    expect(readdirSync(out)).toEqual([]);
  });

  it('a real process exits 2 with the message and no stack trace', async () => {
    const r = await spawnPtspec('fuzz', '--runs', '0', '--out', tmp());
    expect(r).toEqual({ code: 2, stdout: '', stderr: `error: option '--runs <n>' argument '0' is invalid. --runs must be an integer from 1 to ${Number.MAX_SAFE_INTEGER}.\n` });
  });
});

describe('ptspec fuzz on a mutant, then ptspec replay', () => {
  const out = tmp();
  let campaign: CliRun;
  let file = '';

  beforeAll(async () => {
    campaign = await ptspec('fuzz', '--mutant', 'unmap-no-split', '--runs', '30', '--bail', '1', '--jobs', '1', '--seed', '1', '--max-commands', '40', '--out', out, '--json');
    // The campaign's summary (summaries/) sits beside the failure files.
    file = join(out, readdirSync(out).filter((f) => f.endsWith('.json'))[0] ?? 'missing');
  }, 90_000);

  it('finds the mutant, exits 1 and writes exactly one failure file', () => {
    expect(campaign.code).toBe(1);
    const files = readdirSync(out).filter((f) => f.endsWith('.json'));
    expect(files).toHaveLength(1);
    const summary = JSON.parse(campaign.stdout) as { passed: boolean; failures: { file: string; isNew: boolean }[]; stoppedBy: string };
    expect(summary.passed).toBe(false);
    expect(summary.stoppedBy).toBe('bail');
    expect(summary.failures).toHaveLength(1);
    expect(summary.failures[0]!.file).toBe(file);
    const stored = parseFailureFile(readFileSync(file, 'utf8'));
    expect(stored.ok && stored.value.target).toEqual({ kind: 'mutant', mutant: 'unmap-no-split' });
    expect(stored.ok && stored.value.count).toBe(1);
  });

  it('replay reproduces it step by step and exits 1', async () => {
    const r = await ptspec('replay', file);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('<-- FAILS HERE');
    expect(r.stdout).toMatch(/State change at the failing step/);
    expect(r.stdout).toMatch(/model: \d+ leaves removed, \d+ added/);
    expect(r.stdout).toContain('STILL FAILS, as recorded.');
  }, 60_000);

  it('a second campaign replays the stored failure first and counts it, not rewriting it', async () => {
    const before = readFileSync(file, 'utf8');
    const r = await ptspec('fuzz', '--mutant', 'unmap-no-split', '--runs', '1', '--bail', '1', '--jobs', '1', '--seed', '2', '--out', out);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/Replayed 1 stored failure .* 1 still fails/);
    expect(readdirSync(out).filter((f) => f.endsWith('.json'))).toHaveLength(1);
    const a = parseFailureFile(before);
    const b = parseFailureFile(readFileSync(file, 'utf8'));
    expect(b.ok && b.value.count).toBeGreaterThanOrEqual(2);
    expect(a.ok && b.ok && b.value.commands).toEqual(a.ok && a.value.commands);
  }, 60_000);

  it('replay says so and exits 0 when the trace no longer fails (run against the real impl)', async () => {
    const fixed = join(tmp(), 'fixed.json');
    const json = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    writeFileSync(fixed, JSON.stringify({ ...json, target: { kind: 'impl' } }));
    const r = await ptspec('replay', fixed);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('NO LONGER REPRODUCES');
  }, 60_000);

  it('replay of a hand-broken file names the field and exits 2', async () => {
    const broken = join(tmp(), 'broken.json');
    const json = JSON.parse(readFileSync(file, 'utf8')) as { failure: Record<string, unknown>; target: Record<string, unknown> };
    json.failure['step'] = 'three';
    json.target['mutant'] = 7;
    writeFileSync(broken, JSON.stringify(json));
    const r = await ptspec('replay', broken);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('target.mutant: expected string, got 7');
    expect(r.stderr).toContain('failure.step: expected an integer, got "three"');
  }, 60_000);
});

describe('ptspec fuzz --impl', () => {
  it('runs a campaign on a user module that wraps the built-in impl', async () => {
    const out = tmp();
    const r = await ptspec('fuzz', '--impl', 'test/fixtures/user-impl.ts', '--runs', '3', '--jobs', '1', '--seed', '5', '--max-commands', '30', '--out', out);
    expect(r.stderr).not.toMatch(/^error/m);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('your implementation test/fixtures/user-impl.ts');
    expect(r.stdout).toMatch(/Ran 3 random command sequences/);
    expect(r.stdout).toContain('PASSED');
  }, 60_000);

  it('rejects a module whose systems lack a method, naming each missing one', async () => {
    const r = await ptspec('fuzz', '--impl', 'test/fixtures/user-impl-incomplete.ts', '--runs', '1', '--out', tmp());
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('does not implement PageTableSystem: method collapse() is missing; method flushAll() is missing');
  }, 60_000);
});
