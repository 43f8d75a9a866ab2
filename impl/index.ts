/**
 * The optimized implementation: x86-64 radix page tables in typed arrays (see README.md).
 *
 *   createImpl(setup, { mutant? })  a PageTableSystem; with a mutant, one kernel bug injected
 *   checkTables(system, scope?)     what only the concrete tables show (check.ts)
 *   MUTANTS / MutantName            the mutant catalogue (mutants.ts)
 */
import type { SystemSetup } from '../spec/system.ts';
import type { MutantName } from './mutants.ts';
import { RadixSystem } from './system.ts';

export { checkTables, type TableCheck, type TableFinding } from './check.ts';
export { MUTANTS, MUTANT_NAMES, isMutantName, type Mutant, type MutantName } from './mutants.ts';
export { RadixSystem } from './system.ts';

export interface ImplOptions {
  readonly mutant?: MutantName;
}

export function createImpl(setup: SystemSetup, opts: ImplOptions = {}): RadixSystem {
  return new RadixSystem(setup, opts.mutant);
}
