/**
 * `ptspec zoo` (fuzz/zoo.ts, cli/zoo.ts) over three mutants that show within a few short
 * sequences: each caught, the --json file what its codec and schema accept, the shrunk
 * trace the one the hunt found (it fails the mutant the same way and passes the unmutated
 * impl, and hunting again from the same seed finds it again), bad usage exit 2 before any
 * work, and the targets naming the mutants that miss them.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { beforeAll, describe, expect, it } from 'vitest';
import type { MutantName } from '../impl/mutants.ts';
import { decode } from '../io/trace.ts';
import { runTrace } from '../fuzz/check.ts';
import { mutantSetup } from '../fuzz/mutant-setup.ts';
import { DEFAULT_ZOO_SEED, huntMutant, SHRUNK_TARGET_COMMANDS, zooTargets } from '../fuzz/zoo.ts';
import { ZooReportC, type ZooEntry, type ZooReport } from '../fuzz/zoo-json.ts';
import { ptspec, type CliRun } from './cli.ts';

const CHEAP: readonly MutantName[] = ['split-drops-nx', 'no-alias', 'protect-no-flush'];

describe('ptspec zoo over three cheap mutants', () => {
  const file = join(mkdtempSync(join(tmpdir(), 'ptspec-zoo-')), 'zoo.json');
  let run: CliRun;
  let report: ZooReport;

  beforeAll(async () => {
    run = await ptspec('zoo', '--mutant', ...CHEAP, '--budget', '20s', '--json', file);
    const decoded = decode(ZooReportC, JSON.parse(readFileSync(file, 'utf8')));
    if (!decoded.ok) throw new Error(decoded.errors.join('\n'));
    report = decoded.value;
  }, 60_000);

  it('catches each within its budget and exits 0', () => {
    expect(run.code, run.stderr).toBe(0);
    expect(report.finished).toBe(true);
    expect(report.seed).toBe(DEFAULT_ZOO_SEED);
    expect(report.mutants.map((e) => [e.mutant, e.status])).toEqual(CHEAP.map((m) => [m, 'caught']));
    for (const e of report.mutants) expect(e.detectMs!, e.mutant).toBeLessThanOrEqual(report.budgetMs);
  });

  it('prints a line per mutant as it finishes, then the table and every target', () => {
    CHEAP.forEach((m, i) => expect(run.stderr).toContain(`[${i + 1}/3] ${m}: caught in `));
    for (const e of report.mutants) expect(run.stdout).toMatch(new RegExp(`^${e.mutant} +caught .* ${e.shrunkLength}  ${e.kind} ${e.cause}$`, 'm'));
    expect(run.stdout.match(/^(MET|MISSED) /gm)).toHaveLength(report.targets.length);
  });

  it('writes a file the schema accepts', () => {
    const schema = JSON.parse(readFileSync(new URL('../schemas/zoo.schema.json', import.meta.url), 'utf8')) as object;
    const validate = new Ajv({ strict: true, allErrors: true }).compile(schema);
    expect(validate(JSON.parse(readFileSync(file, 'utf8'))) ? [] : validate.errors).toEqual([]);
  });

  it('reports the shrunk trace the hunt found: the mutant fails it the same way, the unmutated impl passes it', () => {
    for (const e of report.mutants) {
      const setup = mutantSetup(e.mutant);
      expect(e.shrunkLength).toBe(e.trace!.length);
      expect(e.shrunkLength!).toBeLessThanOrEqual(e.unshrunkLength!);
      expect(e.commands).toBeGreaterThanOrEqual(e.unshrunkLength!);
      const f = runTrace({ ...setup.mutated, commands: e.trace! }).failure;
      expect([f?.kind, f?.cause], e.mutant).toEqual([e.kind, e.cause]);
      expect(runTrace({ ...setup.control, commands: e.trace! }).failure, e.mutant).toBeNull();
    }
  });

  it('finds the same runs again from the same seed, alone: a mutant\'s seed is its own', async () => {
    const last = report.mutants.at(-1)!;
    const again = (await huntMutant(last.mutant, report.seed, report.budgetMs))!;
    const timeless = ({ detectMs: _d, shrinkMs: _s, ...rest }: ZooEntry): Omit<ZooEntry, 'detectMs' | 'shrinkMs'> => rest;
    expect(timeless(again)).toEqual(timeless(last));
  });
});

describe('ptspec zoo usage', () => {
  it('an unknown mutant exits 2 naming it and the valid ones', async () => {
    const r = await ptspec('zoo', '--mutant', 'no-alias', 'split-drops-everything');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('there is no mutant "split-drops-everything"');
    expect(r.stderr).toContain('split-drops-pat, split-drops-nx');
    expect(r.stdout).toBe('');
  });

  it('a --json file in no directory exits 2 before any work', async () => {
    const r = await ptspec('zoo', '--mutant', 'no-alias', '--json', '/nonexistent-dir/zoo.json');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('no such directory /nonexistent-dir');
    expect(r.stderr).not.toContain('ptspec zoo:');
  });

  it('a bad budget exits 2 naming the option', async () => {
    const r = await ptspec('zoo', '--budget', 'soon');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("'--budget <duration>'");
  });
});

describe('the targets', () => {
  const entry = (mutant: MutantName, detectMs: number | null, shrunkLength: number | null): ZooEntry => ({
    mutant, scenario: 'kernel', profile: 'strict', seed: 1, status: detectMs === null ? 'not-caught' : 'caught', detectMs, commands: 10, sequences: 1,
    shrinkMs: null, shrinkTraces: null, unshrunkLength: shrunkLength, shrunkLength, kind: null, cause: null, headline: null, controlFailure: null, trace: null,
  });

  it('name the mutants not caught in time, the slow ones and the long traces', () => {
    const [inTime, median, shrunk] = zooTargets([entry('no-alias', 100, 2), entry('split-drops-nx', 5_000, SHRUNK_TARGET_COMMANDS + 1), entry('unmap-no-split', null, null)], 60_000);
    expect([inTime!.met, inTime!.missing]).toEqual([false, ['unmap-no-split']]);
    // The median of 0.1 s, 5 s and never is 5 s.
    expect([median!.met, median!.value, median!.missing]).toEqual([false, 5_000, ['split-drops-nx', 'unmap-no-split']]);
    expect([shrunk!.met, shrunk!.value, shrunk!.missing]).toEqual([false, null, ['split-drops-nx', 'unmap-no-split']]);
  });

  it('are met by fast catches with short traces', () => {
    expect(zooTargets([entry('no-alias', 100, 2), entry('split-drops-nx', 3_000, 4), entry('protect-no-flush', 1_000, 10)], 60_000).map((t) => [t.met, t.value]))
      .toEqual([[true, 0], [true, 1_000], [true, 10]]);
  });
});
