/**
 * The invariant catalogue as the fuzzer, `ptspec check`, the model and the tests run it:
 * every definition of spec/invariants paired with its fast check, and `checkAll`.
 */
import type { CheckScope, Family, InvariantDefinition, Witness } from '../spec/invariant.ts';
import { DEFINITIONS } from '../spec/invariants/index.ts';
import type { AbstractState } from '../spec/state.ts';
import { CLIENTS_CHECKS } from './clients.ts';
import { sweepChecks, Witnesses, type Check, type CheckTable } from './common.ts';
import { DIRECT_MAP_CHECKS } from './directmap.ts';
import { HUGE_PAGES_CHECKS } from './hugepages.ts';
import { ISOLATION_CHECKS } from './isolation.ts';
import { PERMISSIONS_CHECKS } from './permissions.ts';
import { STRUCTURE_CHECKS } from './structure.ts';
import { TLB_CHECKS } from './tlb.ts';
import { TRANSLATION_CHECKS } from './translation.ts';

export { MAX_WITNESSES } from './common.ts';

/** One invariant: its definition (spec) and its fast check, which must find what `holds` finds. */
export interface Invariant extends InvariantDefinition {
  /**
   * Witnesses of violation, empty when it holds, at most MAX_WITNESSES and then one that
   * counts the rest. With a scope, a check may look only at what intersects the scope
   * (the fuzzer's incremental check); without, at everything.
   */
  check(state: AbstractState, scope?: CheckScope): Witness[];
}

const CHECKS: CheckTable = { ...STRUCTURE_CHECKS, ...TRANSLATION_CHECKS, ...PERMISSIONS_CHECKS, ...HUGE_PAGES_CHECKS, ...TLB_CHECKS, ...ISOLATION_CHECKS, ...DIRECT_MAP_CHECKS, ...CLIENTS_CHECKS };

/** The definition itself, capped like every check. */
function cappedDefinition(def: InvariantDefinition): Check {
  return (state) => {
    const w = new Witnesses();
    for (const witness of def.holds(state)) w.add(witness);
    return w.done();
  };
}

function pair(def: InvariantDefinition): Invariant {
  const check = CHECKS[def.name];
  if (check === undefined) throw new Error(`invariant ${def.id} ${def.name} has no check in checker/`);
  return { ...def, check: check === 'definition' ? cappedDefinition(def) : check };
}

/** Every invariant in id order, S, T, P, H, L, K, A, D, C. */
export const CATALOGUE: readonly Invariant[] = DEFINITIONS.map(pair);

for (const name of Object.keys(CHECKS)) {
  if (!DEFINITIONS.some((d) => d.name === name)) throw new Error(`checker/ has a check for ${name}, which spec/invariants does not define`);
}

const BY_ID: ReadonlyMap<string, Invariant> = new Map(CATALOGUE.map((inv) => [inv.id, inv]));
const BY_NAME: ReadonlyMap<string, Invariant> = new Map(CATALOGUE.map((inv) => [inv.name, inv]));

export function invariantById(id: string): Invariant | undefined {
  return BY_ID.get(id);
}

/** The invariant with this id (`P2`) or name (`no_frame_writable_and_executable_through_two_aliases`). */
export function invariantByKey(key: string): Invariant | undefined {
  return BY_ID.get(key) ?? BY_NAME.get(key);
}

/** One violated invariant and where it fails. */
export interface Violation {
  readonly id: string;
  readonly name: string;
  readonly family: Family;
  readonly title: string;
  readonly witnesses: readonly Witness[];
}

/**
 * Check every invariant (or those of `only`) on a state; empty when all hold. With a
 * scope, each check looks only at what intersects [scope.vpn, scope.vpn + scope.pages),
 * and the frame checks also at every other mapping of the frames touched there (the
 * fuzzer's incremental check). Checks without a VA (frame runs, roots, table counts:
 * S7-S10, S13) are cheap and always run; S11 needs the whole map and waits for a full
 * check. A scoped check trusts the leaf order and disjointness a full check establishes.
 */
export function checkAll(state: AbstractState, scope?: CheckScope, only: readonly Invariant[] = CATALOGUE): Violation[] {
  const out: Violation[] = [];
  // The per-leaf and frame-use checks in one sweep each, the others one by one.
  const swept = sweepChecks(state, scope, only.map((inv) => inv.check));
  for (const inv of only) {
    const witnesses = swept.get(inv.check) ?? inv.check(state, scope);
    if (witnesses.length > 0) out.push({ id: inv.id, name: inv.name, family: inv.family, title: inv.title, witnesses });
  }
  return out;
}
