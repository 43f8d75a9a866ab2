/**
 * Swarm testing (CommandsArbOptions.swarm): each sequence runs on its own subset of the
 * operations, so long runs of a rare operation become common, while a campaign's
 * sequences together still exercise every operation; and a seed is still one sequence.
 * With the campaign options around it: `--no-swarm` and `--shrink-budget` on the command
 * line, and what a failure file records about when and how its run was found.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isClientOp, isIsolationOp } from '../spec/commands.ts';
import { OPS } from '../spec/operations.ts';
import { DEFAULT_SCENARIO, kernelScenario } from '../spec/scenario.ts';
import { commandsArb } from '../fuzz/arbitraries.ts';
import { runFlags } from '../cli/options.ts';
import { SEED } from './seed.ts';
import { ptspec } from './cli.ts';

const scenario = kernelScenario();
const CORE = OPS.filter((o) => !isIsolationOp(o) && !isClientOp(o));
const swarm = (seed: number, numRuns: number) => fc.sample(commandsArb(scenario, { maxCommands: 200, swarm: true }), { seed, numRuns });

describe('swarm testing', () => {
  const sequences = swarm(SEED, 120);

  it('runs long sequences on proper subsets of the operations, map always among them', () => {
    const long = sequences.filter((s) => s.length >= 100);
    expect(long.length).toBeGreaterThan(20);
    const subsets = long.map((s) => new Set(s.map((c) => c.op)));
    // With 10 more operations each kept with probability 1/2, a sequence with all of them is a 1-in-1024 event.
    expect(subsets.filter((ops) => ops.size < CORE.length).length).toBeGreaterThan(0.9 * long.length);
    for (const ops of subsets) expect(ops).toContain('map');
    // Different sequences leave different operations out.
    expect(new Set(subsets.map((ops) => [...ops].sort().join())).size).toBeGreaterThan(long.length / 2);
  });

  it('still exercises every core operation across a campaign\'s sequences', () => {
    const seen = new Set(sequences.flat().map((c) => c.op));
    for (const op of CORE) expect(seen, op).toContain(op);
  });

  it('makes rare combinations common: sequences where one operation takes a large share', () => {
    const share = (s: readonly { op: string }[], op: string): number => s.filter((c) => c.op === op).length / Math.max(1, s.length);
    const plain = fc.sample(commandsArb(scenario, { maxCommands: 200 }), { seed: SEED, numRuns: 120 });
    const heavy = (seqs: typeof sequences): number => seqs.filter((s) => s.length >= 50 && share(s, 'split') > 0.15).length;
    expect(heavy(sequences)).toBeGreaterThan(heavy(plain));
  });

  it('is deterministic: the same seed and options give the same sequences', () => {
    expect(swarm(SEED, 40)).toEqual(sequences.slice(0, 40));
  });
});

describe('campaign options', () => {
  it('prints --no-swarm in rerun commands when the run had no swarm, and for failure files from before it', () => {
    const base = { scenario: DEFAULT_SCENARIO, target: { kind: 'impl' } as const, maxCommands: 100, fullCheckEvery: 50 };
    expect(runFlags({ ...base, swarm: true })).toEqual([]);
    expect(runFlags({ ...base, swarm: false })).toEqual(['--no-swarm']);
    expect(runFlags(base)).toEqual(['--no-swarm']);
  });

  it('refuses a --shrink-budget that is not a count (exit 2)', async () => {
    for (const bad of ['-1', 'x', '1.5']) {
      const r = await ptspec('fuzz', '--shrink-budget', bad, '--runs', '1');
      expect(r.code, bad).toBe(2);
      expect(r.stderr).toMatch(/--shrink-budget must be an integer from 0/);
    }
  });
});
