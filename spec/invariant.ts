/**
 * The shape of one invariant of the catalogue. One invariant is one object: a stable id,
 * a one-sentence statement, the reason the kernel needs it (with the kernel function,
 * commit or verified-kernel lemma it comes from), and an executable check over the
 * abstract state that returns witnesses: empty when the invariant holds.
 */
import type { Pfn, Vpn } from './address.ts';
import type { AbstractState, RootId } from './state.ts';

/**
 * Families (DESIGN.md): S structure, T translation, P permissions, H huge pages,
 * L TLB, K KPTI, A ASI, D direct map.
 */
export type Family = 'S' | 'T' | 'P' | 'H' | 'L' | 'K' | 'A' | 'D';

export const FAMILY_NAMES: Readonly<Record<Family, string>> = {
  S: 'structure', T: 'translation', P: 'permissions', H: 'huge pages',
  L: 'TLB', K: 'KPTI', A: 'ASI', D: 'direct map',
};

/** One place where an invariant fails: which root, which VA range, which frames. */
export interface Witness {
  readonly root?: RootId;
  readonly vpn?: Vpn;
  readonly pages?: number;
  readonly frames?: readonly { readonly pfn: Pfn; readonly count: number }[];
  /** What is wrong there, in a sentence. */
  readonly detail: string;
}

/** A region of the state a check may restrict itself to (incremental checking). */
export interface CheckScope {
  readonly vpn: Vpn;
  readonly pages: number;
}

export interface Invariant {
  /** Stable id: family letter and number, e.g. `P2`. Never reused. */
  readonly id: string;
  readonly family: Family;
  readonly title: string;
  /** One precise sentence. */
  readonly statement: string;
  /** Why the kernel needs it, and the bug that broke it. */
  readonly rationale: string;
  /** Kernel files/functions/commits, papers or verified lemmas it comes from. */
  readonly references: readonly string[];
  /**
   * Witnesses of violation, empty when it holds. With a scope, a check may look only at
   * what intersects the scope (the fuzzer's incremental check); without, at everything.
   */
  check(state: AbstractState, scope?: CheckScope): Witness[];
}
