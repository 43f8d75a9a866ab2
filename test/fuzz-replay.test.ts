/**
 * `ptspec fuzz --replay SEED:PATH`: the Reproduce line a campaign prints for a failure
 * is a command that, typed as printed, reruns that run with its shrink path and files the
 * same failure with the same shrunk commands; bad input is refused before any work.
 */
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseFailureFile, type FailureFile } from '../fuzz/failure-file.ts';
import { parseReplay } from '../cli/options.ts';
import { ptspec, type CliRun } from './cli.ts';

const tmp = (): string => mkdtempSync(join(tmpdir(), 'ptspec-replay-'));

function onlyFailureFile(dir: string): FailureFile {
  // A campaign's summary (summaries/) sits beside its failure files.
  const files = readdirSync(dir).filter((f) => f.endsWith('.json'));
  expect(files).toHaveLength(1);
  const r = parseFailureFile(readFileSync(join(dir, files[0]!), 'utf8'));
  if (!r.ok) throw new Error(r.errors.join('\n'));
  return r.value;
}

interface SummaryJson {
  readonly runs: number;
  readonly failures: readonly { readonly key: string; readonly reproduce: string | null }[];
}

describe('ptspec fuzz --replay', () => {
  const found = tmp();
  let campaign: CliRun;
  let stored: FailureFile;
  let reproduce = '';

  beforeAll(async () => {
    campaign = await ptspec('fuzz', '--mutant', 'unmap-no-split', '--runs', '30', '--bail', '1', '--jobs', '1', '--seed', '1', '--max-commands', '40', '--out', found, '--json');
    stored = onlyFailureFile(found);
    reproduce = (JSON.parse(campaign.stdout) as SummaryJson).failures[0]?.reproduce ?? '';
  }, 90_000);

  it('the campaign prints the exact command, with the options that decide the run', () => {
    expect(campaign.code).toBe(1);
    expect(reproduce).toBe(`ptspec fuzz --replay ${stored.seed}:${stored.path} --mutant unmap-no-split --max-commands 40`);
  });

  it('typed as printed, reruns that one run: the same key and the same shrunk commands', async () => {
    const again = tmp();
    const args = reproduce.split(' ').slice(1);
    const r = await ptspec(...args, '--out', again, '--json');
    expect(r.code).toBe(1);
    const summary = JSON.parse(r.stdout) as SummaryJson;
    expect(summary.runs).toBe(1);
    expect(summary.failures.map((f) => f.key)).toEqual([stored.key]);
    const rerun = onlyFailureFile(again);
    expect(rerun.key).toBe(stored.key);
    expect(rerun.commands).toEqual(stored.commands);
    expect(rerun.failure).toEqual(stored.failure);
    expect(rerun.path).toBe(stored.path);
  }, 60_000);

  it('the text summary of a rerun says how to repeat it', async () => {
    const r = await ptspec(...reproduce.split(' ').slice(1), '--out', tmp());
    expect(r.stdout).toContain(`Repeat exactly this run: ${reproduce}`);
    expect(r.stdout).toContain(`Reproduce: ${reproduce}`);
  }, 60_000);

  it('ptspec replay of the stored file prints the same command', async () => {
    const r = await ptspec('replay', join(found, readdirSync(found).filter((f) => f.endsWith('.json'))[0]!));
    expect(r.stdout).toContain(`Reproduce: ${reproduce}`);
  }, 60_000);

  it('parses SEED:PATH, the path possibly empty', () => {
    expect(parseReplay('-5:0+10:3+1')).toEqual({ seed: -5, path: [{ start: 0, count: 10 }, { start: 3, count: 1 }] });
    expect(parseReplay('7:')).toEqual({ seed: 7, path: [] });
  });

  it.each([
    ['12', 'give SEED:PATH as a failure prints it'],
    ['x:0+1', 'give SEED:PATH as a failure prints it'],
    ['4294967296:0+1', 'give SEED:PATH as a failure prints it'],
    ['12:0+1:', 'the shrink path "0+1:" is not start+count deletions'],
    ['12:abc', 'the shrink path "abc" is not start+count deletions'],
  ])('refuses --replay %s with exit 2 and says what is wrong', async (value, message) => {
    const out = tmp();
    const r = await ptspec('fuzz', '--replay', value, '--out', out);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(`error: option '--replay <seed:path>' argument '${value}' is invalid. ${message}`);
    expect(readdirSync(out)).toEqual([]);
  });

  it('refuses --replay with a budget or a campaign seed: it is one run', async () => {
    for (const extra of [['--runs', '3'], ['--time', '5s'], ['--seed', '1'], ['--shard', '1/2'], ['--bail', '1']]) {
      const r = await ptspec('fuzz', '--replay', '1:0+1', ...extra, '--out', tmp());
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`error: option '--replay <seed:path>' cannot be used with option '${extra[0]}`);
    }
  });
});
