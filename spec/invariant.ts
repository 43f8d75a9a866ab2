/**
 * The shape of one invariant of the catalogue, as the specification defines it: a stable
 * id and a name that reads as the statement, the statement in one sentence, the reason
 * the kernel needs it (with the kernel function, commit or verified-kernel lemma it comes
 * from), what today's Linux does about it, and `holds`: the definition as a plain
 * quantification over the abstract state, returning witnesses (empty when it holds).
 *
 * The fast, scoped check of each invariant lives in checker/, which pairs every
 * definition here with its check and is held to `holds` by test/invariants-holds.test.ts.
 */
import type { Pfn, Vpn } from './address.ts';
import type { AbstractState, RootId } from './state.ts';

/**
 * Families (docs/SPEC.md lists each with its invariants): S structure, T translation,
 * P permissions, H huge pages, L TLB, K KPTI, A ASI, D direct map (the linear maps: the
 * direct map and the kernel image's high map), C clients (the kernel's page-table users:
 * vmalloc, kmap_local, the mermap, the __GFP_UNMAPPED pool).
 */
export type Family = 'S' | 'T' | 'P' | 'H' | 'L' | 'K' | 'A' | 'D' | 'C';

export const FAMILY_NAMES: Readonly<Record<Family, string>> = {
  S: 'structure', T: 'translation', P: 'permissions', H: 'huge pages',
  L: 'TLB', K: 'KPTI', A: 'ASI', D: 'direct map', C: 'clients',
};

/**
 * What today's Linux does about an invariant:
 *   guarantees   it holds by construction of the kernel's code (or of the hardware format);
 *   enforces     the kernel refuses or silently fixes up requests that would break it
 *                (CPA's static_protections masks forbidden bits);
 *   warns        the kernel only reports a break (a WARN, or a boot-time scan such as
 *                CONFIG_DEBUG_WX);
 *   strict-only  the kernel does not hold it; only ptspec's strict profile does.
 */
export type KernelStance = 'guarantees' | 'enforces' | 'warns' | 'strict-only';
export const KERNEL_STANCES: readonly KernelStance[] = ['guarantees', 'enforces', 'warns', 'strict-only'];

/** One place where an invariant fails: which root, which VA range, which frames. */
export interface Witness {
  readonly root?: RootId;
  readonly vpn?: Vpn;
  readonly pages?: number;
  readonly frames?: readonly { readonly pfn: Pfn; readonly count: number }[];
  /** What is wrong there, in a sentence. */
  readonly detail: string;
}

/**
 * A region of the state an incremental check may restrict itself to. The definitions
 * never take one; the scoped checks of checker/ and the fuzzer do.
 */
export interface CheckScope {
  readonly vpn: Vpn;
  readonly pages: number;
}

export interface InvariantDefinition {
  /** Stable id: family letter and number, e.g. `P2`. Never reused. */
  readonly id: string;
  /** The statement as a snake_case name, e.g. `no_frame_writable_and_executable_through_two_aliases`. */
  readonly name: string;
  readonly family: Family;
  readonly title: string;
  /** One precise sentence. */
  readonly statement: string;
  /** Why the kernel needs it, and the bug that broke it. */
  readonly rationale: string;
  /** Kernel files/functions/commits, papers or verified lemmas it comes from. */
  readonly references: readonly string[];
  readonly kernel: KernelStance;
  /** Why that stance, from the kernel facts the rationale and references cite. */
  readonly kernelNote: string;
  /**
   * The definition: every place the state breaks the invariant, in the order of the
   * quantification, none left out (no cap). Written to be obviously right, not fast.
   */
  holds(state: AbstractState): Witness[];
}
