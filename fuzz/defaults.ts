/**
 * The checks the harness runs by default: the whole invariant catalogue (checker/)
 * and, for the built-in impl, its concrete table checker (impl/check.ts). A user's own
 * implementation (`--impl`) has no concrete tables we know how to read: it gets the
 * catalogue only (`checkTables: null`).
 */
import { checkTables, createImpl, type MutantName } from '../impl/index.ts';
import { createModel } from '../model/index.ts';
import type { Scenario } from '../spec/scenario.ts';
import { checkDisagreements, disagreementText } from '../checker/agreement.ts';
import { CATALOGUE, checkAll, invariantById } from '../checker/index.ts';
import type { InvariantSuite, TableChecker, TraceOptions } from './check.ts';

/**
 * The definitions loop over pairs of leaves (T1, P2) and leaves × frame runs: a state of
 * this many leaves takes them about 0.1 s; larger ones (1G ranges split to 4K) are left to
 * the property tests' small states.
 */
const DEFINITION_LEAF_LIMIT = 1024;

export const catalogueSuite: InvariantSuite = {
  ids: CATALOGUE.map((inv) => inv.id),
  check: (state, scope, only) =>
    checkAll(state, scope, only === undefined ? CATALOGUE : CATALOGUE.filter((inv) => only.includes(inv.id))).map((v) => ({ id: v.id, statement: invariantById(v.id)?.statement ?? v.title, witnesses: v.witnesses })),
  definitions: (state) =>
    state.roots.reduce((n, r) => n + r.leaves.length, 0) > DEFINITION_LEAF_LIMIT
      ? []
      : checkDisagreements(state).map((d) => ({ id: d.id, detail: disagreementText(d) })),
};

/**
 * impl/check.ts: reserved bits, PS placement, one parent per table, leaks, live counts,
 * over init_mm's tree and, with the isolation capability, every other root's (a mirrored
 * top-level entry left to the root it copies).
 */
export const builtinTableChecker: TableChecker = checkTables;

/** Everything but the commands, for the built-in model against the built-in impl (optionally a mutant). */
export function builtinTarget(scenario: Scenario, mutant?: MutantName): Omit<TraceOptions, 'commands'> {
  return {
    scenario,
    makeModel: createModel,
    makeImpl: (setup) => createImpl(setup, mutant === undefined ? {} : { mutant }),
    invariants: catalogueSuite,
    checkTables: builtinTableChecker,
  };
}
