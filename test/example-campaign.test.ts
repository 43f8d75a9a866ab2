/**
 * examples/simple-page-tables.ts held to the model by a short seeded campaign, in process,
 * on the default machine and on the small pool (ENOMEM, deferred table frees counted
 * against it), with the checks a `--impl` module gets: outcomes, postconditions, abstract
 * state, invariants, no table checker. A slow suite (vitest.config.ts SLOW): its campaigns
 * took 16 s of npm test's two minutes; test/example-impl.test.ts holds the example to the
 * postconditions on its own in npm test.
 */
import { describe, expect, it } from 'vitest';
import createSystem from '../examples/simple-page-tables.ts';
import { builtinTarget } from '../fuzz/defaults.ts';
import { runFuzz } from '../fuzz/property.ts';
import { formatFailure } from '../fuzz/report.ts';
import { SCENARIOS } from '../spec/scenario.ts';
import { fcParams } from './seed.ts';

// The small pool needs more sequences to reach ENOMEM since the strict policy refuses a
// map of a non-WB memory type over the WB direct map (T5) before it can run out of tables.
const RUNS: Readonly<Record<string, number>> = { kernel: 25, 'kernel-small-pool': 80 };

describe('the example implementation', () => {
  for (const [name, runs] of Object.entries(RUNS)) {
    it(`refines the model on ${name} for ${runs} sequences`, () => {
      const scenario = SCENARIOS[name]!();
      const target = { ...builtinTarget(scenario), makeImpl: createSystem, checkTables: null };
      const r = runFuzz({ ...target, maxCommands: 100, shortFraction: 0.5, fullCheckEvery: 50 }, fcParams({ numRuns: runs }));
      if (r.failed) {
        expect.fail(formatFailure(r.failure!, { seed: r.seed, ...(r.path === undefined ? {} : { path: r.path }), commands: r.commands!, scenario: name }));
      }
      expect(r.numRuns).toBe(runs);
      // What the scenario is for was exercised: refusals by policy and, on the small pool, by memory.
      const refused = (errno: string): number => Object.values(r.coverage.outcomes).reduce((n, o) => n + (o?.[errno] ?? 0), 0);
      expect(refused('EPERM')).toBeGreaterThan(0);
      if (name === 'kernel-small-pool') expect(refused('ENOMEM')).toBeGreaterThan(0);
    });
  }
});

