/**
 * PageTableSystem.fork on the model (model/model.ts): a campaign boots the x86-64 scenario
 * once and forks the booted model for every sequence (fuzz/campaign-target.ts), so a fork
 * must behave exactly as a model booted afresh, and nothing done on it may reach the model
 * it was forked from. On fixed-seed random sequences of every operation (isolation and
 * clients included), under both profiles:
 * - a fork and a freshly booted model give the same result, print the same and have the
 *   same abstract() after every command;
 * - the forked model's abstract() and what it prints next are what they were before;
 * - a fork of a fork taken mid-sequence continues as the sequence does (the forked-from
 *   model goes on with the rest of it).
 */
import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { applyCommand, type Command } from '../spec/commands.ts';
import { ptiBoot, scenarioNamed, type Scenario } from '../spec/scenario.ts';
import type { PageTableSystem, Profile } from '../spec/system.ts';
import { commandsArb } from '../fuzz/arbitraries.ts';
import { runCommand } from '../fuzz/check.ts';
import { Model } from '../model/index.ts';
import { SEED } from './seed.ts';

const scenario: Scenario = scenarioNamed('x86-64')!();

function booted(profile: Profile): Model {
  const m = new Model({ config: scenario.config, frames: scenario.frames, profile, isolation: true });
  for (const c of ptiBoot(scenario)) {
    const r = applyCommand(m, c);
    if (!r.ok) throw new Error(`boot step ${JSON.stringify(c)} failed: ${r.error.message}`);
  }
  return m;
}

const sequences = (profile: Profile): Command[][] =>
  fc.sample(commandsArb(scenario, { maxCommands: 60, swarm: true, isolation: true, clients: true, ...(profile === 'linux' ? { interior: true } : {}) }), { seed: SEED, numRuns: 3 });

/** One step on both systems: the same outcome, the same events, the same state. */
function stepBoth(c: Command, a: PageTableSystem, b: PageTableSystem, where: string): void {
  expect(runCommand(a, c), where).toEqual(runCommand(b, c));
  expect(a.takeEvents?.(), where).toEqual(b.takeEvents?.());
  expect(isDeepStrictEqual(a.abstract(), b.abstract()), `${where}: abstract() differs`).toBe(true);
}

describe.each(['strict', 'linux'] as const)('Model.fork (%s)', (profile) => {
  const original = booted(profile);
  const before = original.abstract();

  it('a fork runs every sequence as a freshly booted model does, and leaves the original as it was', () => {
    sequences(profile).forEach((commands, s) => {
      const fork = original.fork();
      const fresh = booted(profile);
      commands.forEach((c, k) => stepBoth(c, fork, fresh, `sequence ${s} step ${k} (${c.op})`));
      expect(commands.length).toBeGreaterThan(0);
    });
    expect(isDeepStrictEqual(original.abstract(), before)).toBe(true);
    expect(original.takeEvents()).toEqual([]);
  });

  it('a fork taken mid-sequence goes on as the model it was forked from does', () => {
    const [commands] = sequences(profile);
    const half = Math.floor(commands!.length / 2);
    const sys = original.fork();
    for (const c of commands!.slice(0, half)) runCommand(sys, c);
    const fork = sys.fork();
    commands!.slice(half).forEach((c, k) => stepBoth(c, fork, sys, `step ${half + k} (${c.op})`));
    expect(isDeepStrictEqual(original.abstract(), before)).toBe(true);
  });
});
