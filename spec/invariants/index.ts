/**
 * The invariant catalogue: every invariant of the S, T, P and H families, in id order,
 * and `checkAll`, which the fuzzer, `ptspec check` and the tests run on abstract states.
 */
import { FAMILY_NAMES, type CheckScope, type Family, type Invariant, type Witness } from '../invariant.ts';
import type { AbstractState } from '../state.ts';
import { HUGE_PAGES } from './hugepages.ts';
import { PERMISSIONS } from './permissions.ts';
import { STRUCTURE } from './structure.ts';
import { TRANSLATION } from './translation.ts';

export { MAX_WITNESSES } from './common.ts';

export const CATALOGUE: readonly Invariant[] = [...STRUCTURE, ...TRANSLATION, ...PERMISSIONS, ...HUGE_PAGES];

const BY_ID: ReadonlyMap<string, Invariant> = new Map(CATALOGUE.map((inv) => [inv.id, inv]));

export function invariantById(id: string): Invariant | undefined {
  return BY_ID.get(id);
}

/** An invariant as data, without its check: what `ptspec invariants --json` and the docs print. */
export type InvariantInfo = Omit<Invariant, 'check'>;

export function invariantInfo(inv: Invariant): InvariantInfo {
  return { id: inv.id, family: inv.family, title: inv.title, statement: inv.statement, rationale: inv.rationale, references: inv.references };
}

/** The catalogue grouped by family, families in DESIGN.md order, empty families left out. */
export function catalogueByFamily(): { family: Family; name: string; invariants: Invariant[] }[] {
  return (Object.keys(FAMILY_NAMES) as Family[])
    .map((family) => ({ family, name: FAMILY_NAMES[family], invariants: CATALOGUE.filter((i) => i.family === family) }))
    .filter((g) => g.invariants.length > 0);
}

/** One violated invariant and where it fails. */
export interface Violation {
  readonly id: string;
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
  for (const inv of only) {
    const witnesses = inv.check(state, scope);
    if (witnesses.length > 0) out.push({ id: inv.id, family: inv.family, title: inv.title, witnesses });
  }
  return out;
}
