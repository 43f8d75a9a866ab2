/**
 * Every isolation mutant is caught (test/mutant-catch.ts says how), under the profile
 * PROFILE gives it: a slow suite (vitest.config.ts), since a process, a clone or an LDT
 * must come first in a sequence before the injected bug can show.
 */
import { describe, expect, it } from 'vitest';
import { ISOLATION } from '../fuzz/mutant-setup.ts';
import { catchMutant } from './mutant-catch.ts';

describe('every isolation mutant is caught', () => {
  it('there are some', () => expect(ISOLATION.size).toBeGreaterThan(0));
  it.each([...ISOLATION].map((name) => [name] as const))('%s', (name) => {
    catchMutant(name);
  });
});
