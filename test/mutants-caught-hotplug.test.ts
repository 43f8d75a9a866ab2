/**
 * Every memory-hotplug mutant (impl/mutants.ts) is caught: a removal that keeps the direct
 * map of the memory it takes away, and one that forgets remove_pagetable's flush_tlb_all.
 * test/mutant-catch.ts says how, here on a machine with hotplug space (fuzz/hotplug-scenario.ts) and with the client
 * operations generated (the fuzzer's belief adds the scenario's absent blocks and removes
 * the ones it added); the shrunk sequence that caught each removes memory.
 */
import { describe, expect, it } from 'vitest';
import { HOTPLUG } from '../fuzz/mutant-setup.ts';
import { catchMutant } from './mutant-catch.ts';

describe('every memory-hotplug mutant is caught', () => {
  it('there are some', () => expect(HOTPLUG.size).toBeGreaterThan(0));
  it.each([...HOTPLUG].map((name) => [name] as const))('%s', (name) => {
    expect(catchMutant(name).some((c) => c.op === 'removeMemory')).toBe(true);
  });
});
