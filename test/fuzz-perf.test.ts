/**
 * What makes the checked loop cheaper must not change what it finds:
 * - checkAll runs the per-leaf and frame-use checks in one sweep each
 *   (checker/common.ts sweepChecks): on the states random model sequences of the x86-64
 *   scenario reach under both profiles (linux's break invariants), in full and on every
 *   range a command touched, it reports exactly what the checks report one by one;
 * - a campaign's trace setup boots the scenario once and forks the booted systems for
 *   each run (fuzz/campaign-target.ts): a run's result (failure, findings, coverage) is
 *   the same whichever runs the worker ran before it, and a replayed stored trace
 *   (booted afresh) agrees with it.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { CheckScope } from '../spec/invariant.ts';
import { ptiBoot, scenarioNamed } from '../spec/scenario.ts';
import type { AbstractState } from '../spec/state.ts';
import type { Profile } from '../spec/system.ts';
import { CATALOGUE, checkAll } from '../checker/index.ts';
import { commandsArb } from '../fuzz/arbitraries.ts';
import { runOne, type RunContext, type RunResult } from '../fuzz/campaign-run.ts';
import { implTarget, traceSetupFor, withProfile } from '../fuzz/campaign-target.ts';
import { initMmLeaves, runCommand } from '../fuzz/check.ts';
import { touchedScopes } from '../fuzz/scope.ts';
import { Model } from '../model/index.ts';
import { SEED } from './seed.ts';

const scenario = scenarioNamed('x86-64')!();

/** The violations of every invariant, each check run alone. */
const oneByOne = (state: AbstractState, scope: CheckScope | undefined): { id: string; witnesses: unknown[] }[] =>
  CATALOGUE.map((inv) => ({ id: inv.id, witnesses: inv.check(state, scope) })).filter((v) => v.witnesses.length > 0);

describe.each(['strict', 'linux'] as const)('checkAll with fused sweeps (%s)', (profile: Profile) => {
  it('reports what the checks report one by one, in full and on the touched ranges', () => {
    const model = new Model({ config: scenario.config, frames: scenario.frames, profile, isolation: true });
    for (const c of ptiBoot(scenario)) runCommand(model, c);
    const [commands] = fc.sample(commandsArb(scenario, { maxCommands: 80, swarm: false, isolation: true, clients: true, ...(profile === 'linux' ? { interior: true } : {}) }), { seed: SEED, numRuns: 1 });
    let violations = 0;
    let before = initMmLeaves(model.abstract());
    commands!.forEach((c, k) => {
      runCommand(model, c);
      const state = model.abstract();
      for (const scope of [undefined, ...touchedScopes(c, before, scenario.config.levels)]) {
        const want = oneByOne(state, scope);
        violations += want.length;
        expect(checkAll(state, scope).map((v) => ({ id: v.id, witnesses: v.witnesses })), `step ${k} (${c.op}) scope ${JSON.stringify(scope)}`).toEqual(want);
      }
      before = initMmLeaves(state);
    });
    // Linux's states break invariants: the sweeps are held to witnesses, not only to silence.
    if (profile === 'linux') expect(violations).toBeGreaterThan(0);
  });
});

describe('a campaign forks the booted systems per run', () => {
  it("a run's result does not depend on the runs the worker ran before it", async () => {
    const contextOf = async (profile: Profile): Promise<RunContext> => ({
      setup: await traceSetupFor('x86-64', withProfile(implTarget(), profile), 50, { bootOnce: true }),
      scenario, target: profile === 'linux' ? 'impl@linux' : 'impl', maxCommands: 40, swarm: true, campaignSeed: 7, shrinkBudget: 20,
    });
    const summary = (r: RunResult): { failedKey: string | null; findings: readonly string[]; coverage: RunResult['coverage'] } => ({ failedKey: r.failedKey, findings: r.findings?.keys ?? [], coverage: r.coverage });
    for (const profile of ['strict', 'linux'] as const) {
      const inOrder = await contextOf(profile);
      const results = [0, 1, 2, 3].map((i) => summary(runOne(inOrder, i, new Map())));
      // A fresh setup running the last run first, then the first one.
      const reversed = await contextOf(profile);
      expect(summary(runOne(reversed, 3, new Map()))).toEqual(results[3]);
      expect(summary(runOne(reversed, 0, new Map()))).toEqual(results[0]);
      expect(results.reduce((n, r) => n + r.coverage.commands, 0)).toBeGreaterThan(0);
    }
  }, 120_000);
});
