/** Every linux-profile mutant is caught (test/mutant-catch.ts says how); a slow suite (vitest.config.ts). */
import { describe, expect, it } from 'vitest';
import { MUTANTS } from '../impl/index.ts';
import { ISOLATION, PROFILE } from '../fuzz/mutant-setup.ts';
import { catchMutant } from './mutant-catch.ts';

const LINUX = MUTANTS.filter((m) => PROFILE[m.name] === 'linux' && !ISOLATION.has(m.name));

describe('every linux-profile mutant is caught', () => {
  it('there are some', () => expect(LINUX.length).toBeGreaterThan(0));
  it.each(LINUX.map((m) => [m.name] as const))('%s', (name) => {
    catchMutant(name);
  });
});
