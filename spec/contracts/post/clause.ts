/**
 * The vocabulary of the executable postconditions: a clause is one sentence of an
 * operation's contract header, a violation names the clause it breaks, where, and what
 * was expected and found. Addresses in violations are hex (vpnToHex / pfnToHex), as the
 * kernel prints them, so a report reads against a ptdump.
 */
import { pfnToHex, vpnToHex, type Vpn } from '../../address.ts';
import type { Witness } from '../../invariant.ts';
import { protToString, type Leaf } from '../../state.ts';

/**
 * 'local' checks what the command touched (the ranges it names, widened to whole leaves,
 * and the small global parts) at a cost in proportion to that; 'full' also holds every
 * leaf outside those ranges to the frame condition.
 */
export type PostMode = 'local' | 'full';

/** One sentence of a contract: `id` is `op.aspect` (`unmap.leaves`), `sentence` its words. */
export interface Clause {
  readonly id: string;
  readonly sentence: string;
}

export interface PostViolation {
  /** The clause id, e.g. `protect.alias`. */
  readonly clause: string;
  /** The sentence, then where and what was expected and found. */
  readonly detail: string;
  readonly witnesses: readonly Witness[];
}

/** Clauses of `op` by aspect, each with its contract sentence. */
export function clauses<A extends string>(op: string, sentences: Readonly<Record<A, string>>): Readonly<Record<A, Clause>> {
  const out = {} as Record<A, Clause>;
  for (const aspect of Object.keys(sentences) as A[]) out[aspect] = { id: `${op}.${aspect}`, sentence: sentences[aspect] };
  return out;
}

export function breach(clause: Clause, what: string, witnesses: readonly Witness[] = []): PostViolation {
  return { clause: clause.id, detail: `${clause.id} ("${clause.sentence}"): ${what}`, witnesses };
}

export function leafText(l: Leaf): string {
  return entryText(l, true);
}

/** An entry: a leaf (present) or a non-present entry (AbstractRoot.nonPresent), which keeps its frame and prot. */
export function entryText(l: Leaf, present: boolean): string {
  return `${l.size} ${present ? 'leaf' : 'non-present entry'} ${vpnToHex(l.vpn)} -> ${pfnToHex(l.pfn)} ${protToString(l.prot)}`;
}

/** A witness at one leaf-sized place of a root. */
export function leafWitness(root: number, vpn: Vpn, pages: number, detail: string): Witness {
  return { root, vpn, pages, detail };
}
