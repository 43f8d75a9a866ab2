/** Every strict-profile mutant is caught (test/mutant-catch.ts says how). */
import { describe, it } from 'vitest';
import { MUTANTS } from '../impl/index.ts';
import { CLIENTS, HOTPLUG, ISOLATION, PROFILE } from '../fuzz/mutant-setup.ts';
import { catchMutant } from './mutant-catch.ts';

describe('every strict-profile mutant is caught', () => {
  it.each(MUTANTS.filter((m) => PROFILE[m.name] === undefined && !ISOLATION.has(m.name) && !CLIENTS.has(m.name) && !HOTPLUG.has(m.name)).map((m) => [m.name] as const))('%s', (name) => {
    catchMutant(name);
  });
});
