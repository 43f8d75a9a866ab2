/**
 * Every built-in scenario boots on the model and on the impl to the same state, with leaf
 * sizes its CPU has and frame runs that cover its memory; `ptspec scenarios` and
 * `ptspec dump --help` list every one of them.
 */
import { describe, expect, it } from 'vitest';
import { bootScenario } from '../cli/dump.ts';
import type { ScenarioSummary } from '../cli/scenarios.ts';
import { sizeSupported } from '../spec/contracts/args.ts';
import { SCENARIOS } from '../spec/scenario.ts';
import { ptspec } from './cli.ts';

const NAMES = Object.keys(SCENARIOS);

describe('built-in scenarios', () => {
  for (const name of NAMES) {
    it(`${name} boots to the same state on model and impl`, () => {
      const model = bootScenario(name, 'model');
      const impl = bootScenario(name, 'impl');
      if (typeof model === 'string' || typeof impl === 'string') return expect.fail(`${model} / ${impl}`);
      expect(impl.roots).toEqual(model.roots);
      expect(impl.tablesInUse).toBe(model.tablesInUse);
      const leaves = model.roots[0]!.leaves;
      expect(leaves.every((l) => sizeSupported(model.config, l.size))).toBe(true);
      expect(model.frames.reduce((n, r) => n + r.count, 0)).toBe(model.config.frames);
    });
  }

  it('boots kernel-no-pse with 4K leaves only and few enough of them for a fast campaign', () => {
    const state = bootScenario('kernel-no-pse', 'model');
    if (typeof state === 'string') return expect.fail(state);
    const leaves = state.roots[0]!.leaves;
    expect(leaves.every((l) => l.size === '4K')).toBe(true);
    expect(leaves.length).toBeLessThan(50_000);
  });

  it('are listed by `ptspec scenarios --json` and in `ptspec dump --help`', async () => {
    const listed = await ptspec('scenarios', '--json');
    expect(listed.code).toBe(0);
    const all = JSON.parse(listed.stdout) as ScenarioSummary[];
    expect(all.map((s) => s.name)).toEqual(NAMES);
    expect(all.find((s) => s.name === 'kernel-no-gbpages')).toMatchObject({ levels: 4, features: { pse: true, gbpages: false }, cpus: 4 });
    expect(all.find((s) => s.name === 'kernel-no-pse')).toMatchObject({ features: { pse: false, gbpages: false }, memoryBytes: 128 * 2 ** 20 });
    const text = await ptspec('scenarios');
    for (const name of NAMES) expect(text.stdout).toContain(`${name}\n`);
    const help = await ptspec('dump', '--help');
    // commander wraps the option text, so compare without line breaks.
    for (const name of NAMES) expect(help.stdout.replace(/\s+/g, ' ')).toContain(name);
  });
});
