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
 * The isolation operations (ptiClone, asiMap, asiUnmap, createProcess, exitProcess,
 * mapUser, unmapUser) have no contract yet: their relation checks only that a refusal
 * changed nothing.
 */
import type { Command, Op } from '../../commands.ts';
import type { Result } from '../../errors.ts';
import type { AbstractState } from '../../state.ts';
import type { CommandOf } from '../../operations.ts';
import { clauses, type PostMode, type PostViolation } from './clause.ts';
import { ACCESS, FLUSH, FLUSH_ALL, FLUSH_LOCAL, TRANSLATE } from './access.ts';
import { SET_DIRECT_MAP_DEFAULT, SET_DIRECT_MAP_INVALID } from './directmap.ts';
import { ALLOC_FRAMES, FREE_FRAMES } from './frames.ts';
import { unchanged } from './effect.ts';
import { COLLAPSE, SPLIT } from './hugepage.ts';
import { MAP } from './map.ts';
import { PROTECT } from './protect.ts';
import { RangeSet } from './ranges.ts';
import { REFUSAL, relate, type Contract } from './relation.ts';
import { UNMAP } from './unmap.ts';

export type { Clause, PostMode, PostViolation } from './clause.ts';

export interface Postcondition<K extends Op> {
  /** Where the contract is written, or why there is none. */
  readonly contract: string;
  check(before: AbstractState, c: CommandOf<K>, result: Result<unknown>, after: AbstractState, mode: PostMode): PostViolation[];
}

function core<K extends Op>(k: Contract<K>): Postcondition<K> {
  return { contract: k.source, check: (before, c, result, after, mode) => relate(k, before, c, result, after, mode) };
}

function isolation<K extends Op>(op: K): Postcondition<K> {
  const say = clauses(op, { refusal: REFUSAL });
  return {
    contract: `none yet: only "${REFUSAL}" (spec/contracts/README.md) is checked`,
    check: (before, _c, result, after, mode) => (result.ok ? [] : unchanged(before, after, RangeSet.EMPTY, mode, say.refusal)),
  };
}

export const POSTCONDITIONS: { readonly [K in Op]: Postcondition<K> } = {
  map: core(MAP),
  unmap: core(UNMAP),
  protect: core(PROTECT),
  setDirectMapInvalid: core(SET_DIRECT_MAP_INVALID),
  setDirectMapDefault: core(SET_DIRECT_MAP_DEFAULT),
  split: core(SPLIT),
  collapse: core(COLLAPSE),
  ptiClone: isolation('ptiClone'),
  asiMap: isolation('asiMap'),
  asiUnmap: isolation('asiUnmap'),
  createProcess: isolation('createProcess'),
  exitProcess: isolation('exitProcess'),
  mapUser: isolation('mapUser'),
  unmapUser: isolation('unmapUser'),
  translate: core(TRANSLATE),
  access: core(ACCESS),
  flush: core(FLUSH),
  flushAll: core(FLUSH_ALL),
  flushLocal: core(FLUSH_LOCAL),
  allocFrames: core(ALLOC_FRAMES),
  freeFrames: core(FREE_FRAMES),
};

/** The violations of `c`'s contract by the step before → after that returned `result`. */
export function postcondition(before: AbstractState, c: Command, result: Result<unknown>, after: AbstractState, mode: PostMode): PostViolation[] {
  return (POSTCONDITIONS[c.op] as Postcondition<Op>).check(before, c, result, after, mode);
}
