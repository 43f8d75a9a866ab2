/**
 * The operation contracts as data: for each operation of the operation table its
 * signature, what it is in the kernel, its preconditions in the order the checks run
 * (the errno, the argument the error names, the profile when only one has it), its
 * postcondition, what the linux profile does otherwise and the kernel sources it was read
 * from; and the rules every contract shares. This is the statement the validators, the
 * model, the impl and the relations of post/ are written from, in a form the
 * specification document (docs/) renders as it is. Each contract lives beside its
 * validator in its family's module, each rule in the module it is about; this module
 * gathers them.
 *
 * Texts are inline Markdown of a small subset: `code`, **bold** and *emphasis*, nothing
 * else; a postcondition's numbered steps are paragraphs of their own. Rules are named in
 * a text by their title in emphasis.
 */
import type { Op } from '../commands.ts';
import type { Errno } from '../errors.ts';
import { ACCESS_CONTRACTS } from './access.ts';
import { CLIENT_CONTRACTS, CLIENT_RULES } from './clients.ts';
import { DIRECT_MAP_CONTRACTS } from './directmap.ts';
import { FLUSH_RULES } from './flush.ts';
import { FRAME_CONTRACTS, FRAME_RULES } from './frames.ts';
import { HOTPLUG_CONTRACTS, HOTPLUG_RULES } from './hotplug.ts';
import { HUGEPAGE_CONTRACTS, HUGEPAGE_RULES } from './hugepage.ts';
import { ISOLATION_CONTRACTS, ISOLATION_RULES } from './isolation.ts';
import { LINUX_RULES, PROFILE_RULES } from './linux.ts';
import { MAP_CONTRACT } from './map.ts';
import { OUTCOME_RULES } from './outcome.ts';
import { PROTECT_CONTRACT } from './protect.ts';
import { UNMAP_CONTRACT } from './unmap.ts';

/** One check of an operation: the error it fails with, and when. */
export interface Precondition {
  readonly errno: Errno;
  /** The argument the error names (`PtError.arg`), when it names one. */
  readonly arg?: string;
  /** When the check fails. */
  readonly when: string;
  /** The only profile that has the check; absent, both have it. */
  readonly profile?: 'strict' | 'linux';
}

export interface OperationContract {
  /** The call as the system takes it, options with their defaults, e.g. `map(root, vpn, pfn, pages, prot, {maxPage = '1G'})`. */
  readonly signature: string;
  /** What it is in the kernel, in a sentence or two. */
  readonly summary: string;
  /** In the order the checks run: the first that fails is the result. */
  readonly preconditions: readonly Precondition[];
  /** The postcondition of the strict profile, paragraph by paragraph. */
  readonly post: readonly string[];
  /** What the linux profile does differently, paragraph by paragraph; empty when nothing. */
  readonly linux: readonly string[];
  /** The kernel files and functions, with the tree and commit read, that it was read from. */
  readonly sources: readonly string[];
}

/** The contracts of some operations (a family's module exports its own). */
export type ContractsOf<K extends Op> = { readonly [P in K]: OperationContract };

/** A rule every contract (or every contract of a capability) follows. */
export interface ContractRule {
  /** Stable id: lower case letters, digits and `-`. */
  readonly id: string;
  readonly title: string;
  readonly paragraphs: readonly string[];
  readonly sources: readonly string[];
}

/** Every operation's contract, in the canonical order of operations. */
export const CONTRACTS: ContractsOf<Op> = {
  map: MAP_CONTRACT,
  unmap: UNMAP_CONTRACT,
  protect: PROTECT_CONTRACT,
  ...DIRECT_MAP_CONTRACTS,
  ...HUGEPAGE_CONTRACTS,
  ...ISOLATION_CONTRACTS,
  ...CLIENT_CONTRACTS,
  ...HOTPLUG_CONTRACTS,
  ...ACCESS_CONTRACTS,
  ...FRAME_CONTRACTS,
};

/** The shared rules: the profiles and the errors first, then the hardware's, then each capability's. */
export const CONTRACT_RULES: readonly ContractRule[] = [
  ...PROFILE_RULES,
  ...OUTCOME_RULES,
  ...FLUSH_RULES,
  ...HUGEPAGE_RULES,
  ...FRAME_RULES,
  ...LINUX_RULES,
  ...ISOLATION_RULES,
  ...CLIENT_RULES,
  ...HOTPLUG_RULES,
];
