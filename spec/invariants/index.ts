/**
 * The invariant catalogue as the specification defines it: every invariant of the S, T,
 * P, H, L, K, A, D and C families in id order, each with its definition `holds`. The fast checks that
 * the fuzzer, `ptspec check` and the model run are in checker/, one per definition here.
 */
import { FAMILY_NAMES, type Family, type InvariantDefinition } from '../invariant.ts';
import { CLIENTS } from './clients.ts';
import { DIRECT_MAP } from './directmap.ts';
import { HUGE_PAGES } from './hugepages.ts';
import { ISOLATION } from './isolation.ts';
import { PERMISSIONS } from './permissions.ts';
import { STRUCTURE } from './structure.ts';
import { TLB } from './tlb.ts';
import { TRANSLATION } from './translation.ts';

export const DEFINITIONS: readonly InvariantDefinition[] = [...STRUCTURE, ...TRANSLATION, ...PERMISSIONS, ...HUGE_PAGES, ...TLB, ...ISOLATION, ...DIRECT_MAP, ...CLIENTS];

/** An invariant as data, without its definition's code: what `ptspec invariants --json` and the docs print. */
export type InvariantInfo = Omit<InvariantDefinition, 'holds'>;

export function invariantInfo(inv: InvariantDefinition): InvariantInfo {
  const { id, name, family, title, statement, rationale, references, kernel, kernelNote } = inv;
  return { id, name, family, title, statement, rationale, references, kernel, kernelNote };
}

/** The catalogue grouped by family, families in FAMILY_NAMES order (spec/invariant.ts), empty families left out. */
export function catalogueByFamily(): { family: Family; name: string; invariants: InvariantDefinition[] }[] {
  return (Object.keys(FAMILY_NAMES) as Family[])
    .map((family) => ({ family, name: FAMILY_NAMES[family], invariants: DEFINITIONS.filter((i) => i.family === family) }))
    .filter((g) => g.invariants.length > 0);
}
