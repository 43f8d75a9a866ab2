/**
 * The catching of a mutant of impl/mutants.ts (a historical kernel bug class injected into
 * the impl) under a fixed seed: the fuzzer finds a failing sequence, shrinks it, the
 * failure is one of the harness's checks (not a crash), and the same shrunk sequence
 * passes on the unmutated impl, so it is the injected bug that fails. How each mutant is
 * fuzzed (scenario, profile, capabilities) is fuzz/mutant-setup.ts, which `ptspec zoo`
 * shares. The strict-profile mutants run in mutants-caught.test.ts (npm test); the
 * linux-profile ones, whose campaigns are slower, in mutants-caught-linux.test.ts, and the
 * isolation ones, which need processes, clones and LDTs in a sequence before their bug
 * shows, in mutants-caught-isolation.test.ts (slow suites of .ci/run), the client ones in
 * mutants-caught-clients.test.ts and the memory-hotplug ones in
 * mutants-caught-hotplug.test.ts (npm test).
 */
import { expect } from 'vitest';
import type { MutantName } from '../impl/index.ts';
import type { Command } from '../spec/commands.ts';
import { runTrace } from '../fuzz/check.ts';
import { MUTANT_CATCHING_KINDS, MUTANT_SHRINK_BUDGET, mutantSetup } from '../fuzz/mutant-setup.ts';
import { runFuzz } from '../fuzz/property.ts';
import { formatFailure } from '../fuzz/report.ts';
import { fcParams } from './seed.ts';

/**
 * Fuzz the impl with mutant `name` until it fails, and check the failure is the mutant's
 * (vitest assertions); the shrunk sequence that caught it.
 */
export function catchMutant(name: MutantName): readonly Command[] {
  const { scenario, mutated, control, generate } = mutantSetup(name);
  const r = runFuzz({ ...mutated, ...generate }, fcParams({ numRuns: 300 }), MUTANT_SHRINK_BUDGET);
  expect(r.failed, `mutant ${name} survived 300 sequences`).toBe(true);
  const f = r.failure!;
  const report = formatFailure(f, { seed: r.seed, ...(r.path === undefined ? {} : { path: r.path }), commands: r.commands!, scenario: scenario.name, impl: `mutant ${name}` });
  // A sensible check caught it, not a crash.
  expect(MUTANT_CATCHING_KINDS, report).toContain(f.kind);
  expect(report).toContain(`mutant ${name}`);
  expect(r.commands!.length).toBeLessThanOrEqual(r.unshrunkLength!);
  // The shrunk sequence is the mutant's fault: the real impl passes it.
  const passes = runTrace({ ...control, commands: r.commands! });
  expect(passes.failure, `the unmutated impl fails the shrunk sequence too:\n${report}`).toBeNull();
  return r.commands!;
}
