/**
 * The bench's harness, not the code it times: the interleaved rounds (order alternating,
 * warm-up dropped, a failing side stopped while the others go on), the statistics, that a
 * side doing three times the work of another comes out near 3x, and `ptspec bench` on one
 * cheap figure: the table, a --json file that decodes with the codec, bad options exit 2.
 * No assertion on how fast anything of ours is (bench/README.md).
 */
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BenchReportC } from '../bench/json.ts';
import { interleave, roundOrder, roundRatios, stats, taskSide, type Side } from '../bench/runner.ts';
import { median } from '../fuzz/stats.ts';
import { FIGURES } from '../bench/figures.ts';
import { selectFigures } from '../bench/suite.ts';
import { parseJson } from '../io/trace.ts';
import { ptspec } from './cli.ts';

/** A side that logs its calls and costs what `costs` says in turn (throws where it says 'throw'). */
function scripted(label: string, log: string[], costs: readonly (number | 'throw')[]): Side {
  let call = 0;
  return {
    labels: [label, `${label} doubled`],
    async measure() {
      log.push(label);
      const c = costs[call++]!;
      if (c === 'throw') throw new Error(`${label} broke`);
      return [c, 2 * c];
    },
  };
}

/** Busy-waits `ms` of wall time: a side whose cost is known whatever the machine's load. */
function spin(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end);
}

describe('the interleaved rounds', () => {
  it('alternate the order of the sides, forward then reversed', async () => {
    const log: string[] = [];
    const sides = ['a', 'b', 'c'].map((l) => scripted(l, log, [1, 2, 3, 4]));
    const r = await interleave(sides, 4, { taskMs: 1 });
    expect(r.orders).toEqual([[0, 1, 2], [2, 1, 0], [0, 1, 2], [2, 1, 0]]);
    expect(log.join('')).toBe('abccbaabccba');
    expect(r.costs.get('b')).toEqual([1, 2, 3, 4]);
    expect(r.costs.get('b doubled')).toEqual([2, 4, 6, 8]);
    expect(roundOrder(2, 7)).toEqual([1, 0]);
  });

  it('drop a warm-up round when asked: one call more per side, no cost more', async () => {
    const log: string[] = [];
    const r = await interleave([scripted('a', log, [100, 1, 2]), scripted('b', log, [100, 3, 4])], 2, { taskMs: 1 }, true);
    expect(log).toEqual(['a', 'b', 'a', 'b', 'b', 'a']);
    expect(r.costs.get('a')).toEqual([1, 2]);
    expect(r.costs.get('b')).toEqual([3, 4]);
  });

  it('stop a side that throws, with its error on each of its labels, and go on with the others', async () => {
    const log: string[] = [];
    const r = await interleave([scripted('a', log, [1, 'throw', 3]), scripted('b', log, [5, 6, 7])], 3, { taskMs: 1 });
    expect(log).toEqual(['a', 'b', 'b', 'a', 'b']);
    expect(r.costs.get('a')).toEqual([1, NaN, NaN]);
    expect(r.costs.get('b')).toEqual([5, 6, 7]);
    expect(r.errors.get('a')).toBe('a broke');
    expect(r.errors.get('a doubled')).toBe('a broke');
    expect(r.errors.has('b')).toBe(false);
  });
});

describe('the statistics', () => {
  it('take ratios within each round, min and median over the finite ones', () => {
    const ratios = roundRatios([6, 9, 30, NaN], [2, 3, 5, 1]);
    expect(ratios.slice(0, 3)).toEqual([3, 3, 6]);
    const s = stats(ratios)!;
    expect(s.values).toEqual([3, 3, 6]);
    expect(s.min).toBe(3);
    expect(s.median).toBe(3);
    expect(s.min).toBeLessThanOrEqual(s.median);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(stats([NaN])).toBeNull();
  });

  it('put a side three times as costly near 3x (tinybench times, the runner divides)', async () => {
    const sides = [taskSide('slow', { fn: () => spin(0.6) }), taskSide('fast', { fn: () => spin(0.2) })];
    const r = await interleave(sides, 3, { taskMs: 15 });
    const s = stats(roundRatios(r.costs.get('slow')!, r.costs.get('fast')!))!;
    expect(s.values).toHaveLength(3);
    expect(s.median).toBeGreaterThan(1.5);
    expect(s.median).toBeLessThan(6);
  });

  it('divide a batch of calls: the cost is per call', async () => {
    const batch = taskSide('batch', { fn: () => spin(0.4), calls: 4 });
    const one = taskSide('one', { fn: () => spin(0.1) });
    const r = await interleave([batch, one], 3, { taskMs: 15 });
    const s = stats(roundRatios(r.costs.get('batch')!, r.costs.get('one')!))!;
    expect(s.median).toBeGreaterThan(0.5);
    expect(s.median).toBeLessThan(2);
  });
});

describe('the figures', () => {
  it('have distinct names, and --only selects by figure or group name in any case', () => {
    expect(new Set(FIGURES.map((f) => f.name)).size).toBe(FIGURES.length);
    const one = selectFigures(['TRANSLATE /']);
    expect(one.figures.map((f) => f.name)).toEqual(['translate / Map.get (as many entries)']);
    expect(selectFigures(['cost against range size']).figures.length).toBe(14);
    expect(selectFigures(['translate', 'no such figure']).unmatched).toEqual(['no such figure']);
  });

  it('say which way each target points, and every ratio has a denominator', () => {
    for (const f of FIGURES) {
      expect(f.kind === 'ratio').toBe(f.denominator !== undefined);
      if (f.target !== null) expect(['at most', 'at least']).toContain(f.target.direction);
    }
  });
});

describe('ptspec bench', () => {
  it('runs one cheap figure: the table on stdout, the report in --json FILE, exit 0', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ptspec-bench-'));
    const file = join(dir, 'bench.json');
    const r = await ptspec('bench', '--only', 'translate /', '--rounds', '2', '--json', file);
    expect(r.stderr).toMatch(/^bench: translate: 1 figure in [\d.]+ s\n$/);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^translate \/ Map\.get \(as many entries\) +[\d.,]+x +[\d.,]+x +- +-$/m);
    const decoded = parseJson(BenchReportC, readFileSync(file, 'utf8'));
    if (!decoded.ok) throw new Error(decoded.errors.join('; '));
    const [figure, ...rest] = decoded.value.figures;
    expect(rest).toEqual([]);
    expect(figure!.values).toHaveLength(2);
    expect(figure!.min).toBeLessThanOrEqual(figure!.median!);
    expect(figure!.error).toBeNull();
    expect(figure!.numeratorMs).toBeGreaterThan(0);
    // Written through a temporary sibling and renamed: none is left behind.
    expect(readdirSync(dir)).toEqual(['bench.json']);
  });

  it.each([
    [['--rounds', '0'], /--rounds must be an integer from 1 to 1000/],
    [['--only', 'no such figure'], /--only "no such figure" matches no figure or group name \(the groups: 1 GiB 4K map, /],
    [['--json', '/nonexistent-dir/bench.json'], /--json \/nonexistent-dir\/bench\.json: the directory \/nonexistent-dir does not exist/],
    [['--no-such-option'], /unknown option '--no-such-option'/],
  ])('refuses %j with a message and exit 2, before measuring anything', async (args, message) => {
    const r = await ptspec('bench', ...args);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).not.toMatch(/^bench: /m);
    expect(r.stdout).toBe('');
  });
});
