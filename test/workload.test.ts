/**
 * The running kernel's workload (fuzz/workload.ts): alone, on the clean built-in systems,
 * every step of every block succeeds and no invariant breaks under strict; under linux
 * the same blocks run and what they leave is reported as findings, not failures. Mixed
 * into campaigns, the blocks appear as the generator draws them.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Command } from '../spec/commands.ts';
import { kernelScenario, ptiBoot, type Scenario } from '../spec/scenario.ts';
import { commandsArb } from '../fuzz/arbitraries.ts';
import { runTrace } from '../fuzz/check.ts';
import { builtinTarget } from '../fuzz/defaults.ts';
import { LifecycleResolver, type BlockSketch } from '../fuzz/lifecycles.ts';
import { WORKLOAD_KINDS, type WorkloadKind } from '../fuzz/workload.ts';

const base = kernelScenario();
const scenario: Scenario = { ...base, boot: ptiBoot(base) };

/** Rounds of every workload block started, then every one ended, pids as the sequence makes them. */
function workloadOnly(rounds: number): Command[] {
  let pid = 1;
  const r = new LifecycleResolver(scenario, { isolation: true, clients: true, nextPid: () => pid });
  const out: Command[] = [];
  const sketch = (kind: WorkloadKind, end: boolean, k: number): BlockSketch => ({ kind, end, at: k * 7, size: k, rox: false });
  for (let round = 0; round < rounds; round++) {
    for (const [i, kind] of WORKLOAD_KINDS.entries()) {
      const block = r.block(sketch(kind, false, round * WORKLOAD_KINDS.length + i));
      pid += block.filter((c) => c.op === 'createProcess').length;
      out.push(...block);
    }
    for (const kind of WORKLOAD_KINDS) out.push(...r.block(sketch(kind, true, round)));
  }
  return out;
}

const target = (profile: 'strict' | 'linux') => ({ ...builtinTarget(scenario), isolation: true, clients: true, ...(profile === 'linux' ? { profile } : {}) });

describe('the workload alone', () => {
  const commands = workloadOnly(3);

  it('has every kind of block, each start and end', () => {
    for (const op of ['createProcess', 'setLdt', 'exitProcess', 'vmalloc', 'vfree', 'vmUnmapAliases', 'protect', 'unmap', 'freeFrames'] as const) {
      expect(commands.some((c) => c.op === op), op).toBe(true);
    }
  });

  it('succeeds at every step and breaks nothing under strict', () => {
    const r = runTrace({ ...target('strict'), commands });
    expect(r.failure).toBeNull();
    expect(r.findings).toEqual([]);
    const failed = r.outcomes.flatMap((o, i) => (o.outcome === 'ok' ? [] : [`${i} ${commands[i]!.op}: ${o.message ?? o.outcome}`]));
    expect(failed).toEqual([]);
  });

  it('runs under linux with model and impl agreeing; what it leaves is findings, never a failure', () => {
    const r = runTrace({ ...target('linux'), commands });
    expect(r.failure).toBeNull();
    // Only a driver's second memory type for its buffer is refused (reserve_ram_pages_type: EBUSY).
    const refused = r.outcomes.flatMap((o, i) => (o.outcome === 'ok' ? [] : [i]));
    expect(refused.length).toBeGreaterThan(0);
    for (const i of refused) {
      const c = commands[i]!;
      expect(c.op === 'protect' && c.change.cache !== undefined && commands[i - 1]?.op === 'protect', `step ${i}`).toBe(true);
      expect(r.outcomes[i]!.outcome).toBe('EBUSY');
    }
  });
});

describe('the workload in campaigns', () => {
  it('is drawn among the random operations: a module load, a BPF pack and a process with an LDT appear', () => {
    const arb = commandsArb(scenario, { maxCommands: 200, isolation: true, clients: true });
    const seen = new Set<string>();
    for (const cs of fc.sample(arb, { numRuns: 40, seed: 1414 })) {
      for (const [i, c] of cs.entries()) {
        if (c.op === 'protect' && c.change.exec === true && c.pages === 512) seen.add('bpf pack');
        if (c.op === 'protect' && c.change.exec === true && c.pages !== 512 && c.vpn >= 0xffffffffa0000000 / 4096) seen.add('module text');
        if (c.op === 'setLdt' && cs.slice(Math.max(0, i - 3), i).some((p) => p.op === 'createProcess')) seen.add('ldt process');
      }
    }
    expect([...seen].sort()).toEqual(['bpf pack', 'ldt process', 'module text']);
  });
});
