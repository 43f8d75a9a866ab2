/**
 * RadixSystem.fork: the fuzzer boots once and forks the booted system for every sequence,
 * so a fork must be the booted system itself, independent of it. On the x86-64 machine
 * with the isolation capability (as campaigns run it), under both profiles: random
 * command sequences run on a fork and on a freshly booted impl give the same results,
 * kernel events and abstract states at every step; a fork taken mid-sequence (TLBs,
 * obligations, processes, client state in play) continues as its parent did; and the
 * system forked from stays as booted throughout.
 */
import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { applyCommand, type Command } from '../spec/commands.ts';
import { ptiBoot, type Scenario } from '../spec/scenario.ts';
import type { AbstractState } from '../spec/state.ts';
import type { Profile } from '../spec/system.ts';
import { x86Scenario } from '../spec/x86-64.ts';
import { commandsArb } from '../fuzz/arbitraries.ts';
import { checkTables, createImpl, type RadixSystem } from '../impl/index.ts';
import { fcParams } from './seed.ts';

const x86 = x86Scenario();
const scenario: Scenario = { ...x86, isolation: true, boot: ptiBoot(x86) };

function boot(profile: Profile): RadixSystem {
  const sys = createImpl({ ...scenario, profile });
  for (const c of scenario.boot) applyCommand(sys, c);
  sys.takeEvents();
  return sys;
}

/** One step on a system: what the command returned and what the kernel printed. */
function step(sys: RadixSystem, c: Command): unknown {
  return { result: applyCommand(sys, c), events: sys.takeEvents() };
}

function expectSame(a: AbstractState, b: AbstractState, what: string): void {
  if (!isDeepStrictEqual(a, b)) expect(a, what).toEqual(b);
}

describe('RadixSystem.fork', () => {
  for (const profile of ['strict', 'linux'] as const) {
    it(`a fork of the booted x86-64 impl runs as a fresh boot, and the original stays booted (${profile})`, () => {
      const original = boot(profile);
      const booted = boot(profile).abstract();
      const commands = commandsArb(scenario, { maxCommands: 60, isolation: true, clients: true, swarm: true });
      fc.assert(
        fc.property(commands, (cs) => {
          const fork = original.fork();
          const fresh = boot(profile);
          const half = cs.length >> 1;
          for (const c of cs.slice(0, half)) {
            expect(step(fork, c), JSON.stringify(c)).toEqual(step(fresh, c));
            expectSame(fork.abstract(), fresh.abstract(), JSON.stringify(c));
          }
          // A fork of a system in mid-sequence continues as the system it was forked from.
          const mid = fork.fork();
          const atMid = mid.abstract();
          const rest = cs.slice(half).map((c) => ({ c, out: step(fork, c), state: fork.abstract() }));
          expectSame(mid.abstract(), atMid, 'the mid-sequence fork while its parent ran on');
          for (const { c, out, state } of rest) {
            expect(step(mid, c), JSON.stringify(c)).toEqual(out);
            expectSame(mid.abstract(), state, JSON.stringify(c));
            expect(step(fresh, c)).toEqual(out);
          }
          expect(checkTables(mid)).toEqual([]);
          expectSame(original.abstract(), booted, 'the original after its fork ran');
        }),
        fcParams({ numRuns: 6 }),
      );
      expect(checkTables(original)).toEqual([]);
    });
  }

  it('costs far less than the boot it replaces (printed: interleaved timings)', () => {
    const original = boot('strict');
    const ms = { boot: 0, fork: 0 };
    const reps = 5;
    for (let i = 0; i < reps; i++) {
      let t = performance.now();
      boot('strict');
      ms.boot += performance.now() - t;
      t = performance.now();
      original.fork();
      ms.fork += performance.now() - t;
    }
    console.log(`x86-64 impl: boot ${(ms.boot / reps).toFixed(2)} ms, fork ${(ms.fork / reps).toFixed(3)} ms (mean of ${reps}, interleaved)`);
    // What makes it cheap: the fork shares the booted leaves (immutable) instead of walking again.
    const leaves = original.abstract().roots[0]!.leaves;
    expect(original.fork().abstract().roots[0]!.leaves).toBe(leaves);
  });
});
