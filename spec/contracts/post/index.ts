/**
 * The executable postconditions: for every operation, its contract (spec/contracts) as a
 * relation `postcondition(before, command, result, after, mode)` that returns the
 * violations, each naming the sentence of the contract it breaks (clause.ts), where, and
 * what was expected and found. Empty when the step did what the contract says.
 *
 * They are a second, declarative statement of the contracts: written page-wise and
 * set-wise from the prose (leaves.ts, effect.ts), sharing with the model and the impl
 * only the address geometry, the argument validators, the footprint and the error
 * vocabulary (outcome.ts, operations.ts), so that a bug in either (or in a user's
 * implementation) breaks a sentence here, whatever the other does.
 *
 * The isolation operations (spec/contracts/isolation.ts) are held by the same driver:
 * their effects name the roots they add, remove and edit (process.ts, clone.ts), and
 * where the strict and linux profiles differ the effect is given for both (relation.ts).
 * So are the clients' (spec/contracts/clients.ts: clients.ts, vmalloc.ts, cpu-local.ts,
 * pool.ts, walk.ts, gather.ts, hotplug.ts), whose effects also name the bookkeeping (AbstractState.clients).
 */
import type { Command, Op } from '../../commands.ts';
import type { Result } from '../../errors.ts';
import type { AbstractState } from '../../state.ts';
import type { CommandOf } from '../../operations.ts';
import type { PostMode, PostViolation } from './clause.ts';
import { ACCESS, FLUSH, FLUSH_ALL, FLUSH_LOCAL, TRANSLATE } from './access.ts';
import { SET_DIRECT_MAP_DEFAULT, SET_DIRECT_MAP_INVALID } from './directmap.ts';
import { ALLOC_FRAMES, FREE_FRAMES } from './frames.ts';
import { ASI_MAP, ASI_UNMAP, PTI_CLONE } from './clone.ts';
import { COLLAPSE, SPLIT } from './hugepage.ts';
import { MAP } from './map.ts';
import { CREATE_PROCESS, EXIT_PROCESS, MAP_USER, SET_LDT, UNMAP_USER } from './process.ts';
import { PROTECT } from './protect.ts';
import { relate, type Contract } from './relation.ts';
import { UNMAP } from './unmap.ts';
import { APPLY_TO_PAGE_RANGE } from './clients.ts';
import { KMAP_LOCAL, KUNMAP_LOCAL, MERMAP_GET, MERMAP_PUT } from './cpu-local.ts';
import { ALLOC_UNMAPPED } from './pool.ts';
import { VFREE, VMALLOC, VM_UNMAP_ALIASES } from './vmalloc.ts';
import { WALK_PAGE_RANGE } from './walk.ts';
import { ZAP_PAGE_RANGE } from './gather.ts';
import { ADD_MEMORY, REMOVE_MEMORY } from './hotplug.ts';

import type { Clause } from './clause.ts';
export type { Clause, PostMode, PostViolation } from './clause.ts';

export interface Postcondition<K extends Op> {
  /** Where the contract is written, or why there is none. */
  readonly contract: string;
  /** Its sentences, each a clause a violation names (`map.leaves`): the relation as the document lists it. */
  readonly clauses: readonly Clause[];
  check(before: AbstractState, c: CommandOf<K>, result: Result<unknown>, after: AbstractState, mode: PostMode): PostViolation[];
}

function contract<K extends Op>(k: Contract<K>): Postcondition<K> {
  return { contract: k.source, clauses: Object.values(k.say).filter((c): c is Clause => c !== undefined), check: (before, c, result, after, mode) => relate(k, before, c, result, after, mode) };
}

export const POSTCONDITIONS: { readonly [K in Op]: Postcondition<K> } = {
  map: contract(MAP),
  unmap: contract(UNMAP),
  protect: contract(PROTECT),
  setDirectMapInvalid: contract(SET_DIRECT_MAP_INVALID),
  setDirectMapDefault: contract(SET_DIRECT_MAP_DEFAULT),
  split: contract(SPLIT),
  collapse: contract(COLLAPSE),
  ptiClone: contract(PTI_CLONE),
  asiMap: contract(ASI_MAP),
  asiUnmap: contract(ASI_UNMAP),
  createProcess: contract(CREATE_PROCESS),
  exitProcess: contract(EXIT_PROCESS),
  mapUser: contract(MAP_USER),
  unmapUser: contract(UNMAP_USER),
  setLdt: contract(SET_LDT),
  vmalloc: contract(VMALLOC),
  vfree: contract(VFREE),
  vmUnmapAliases: contract(VM_UNMAP_ALIASES),
  kmapLocal: contract(KMAP_LOCAL),
  kunmapLocal: contract(KUNMAP_LOCAL),
  mermapGet: contract(MERMAP_GET),
  mermapPut: contract(MERMAP_PUT),
  allocUnmapped: contract(ALLOC_UNMAPPED),
  applyToPageRange: contract(APPLY_TO_PAGE_RANGE),
  walkPageRange: contract(WALK_PAGE_RANGE),
  zapPageRange: contract(ZAP_PAGE_RANGE),
  addMemory: contract(ADD_MEMORY),
  removeMemory: contract(REMOVE_MEMORY),
  translate: contract(TRANSLATE),
  access: contract(ACCESS),
  flush: contract(FLUSH),
  flushAll: contract(FLUSH_ALL),
  flushLocal: contract(FLUSH_LOCAL),
  allocFrames: contract(ALLOC_FRAMES),
  freeFrames: contract(FREE_FRAMES),
};

/** The violations of `c`'s contract by the step before → after that returned `result`. */
export function postcondition(before: AbstractState, c: Command, result: Result<unknown>, after: AbstractState, mode: PostMode): PostViolation[] {
  return (POSTCONDITIONS[c.op] as Postcondition<Op>).check(before, c, result, after, mode);
}
