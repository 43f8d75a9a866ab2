/**
 * The errors of the state stages every operation shares (brief rule 2: after the
 * argument checks come EEXIST/ENOENT, then policy EPERM, then ENOMEM), built one way so
 * model and impl name the same argument.
 *
 *   EEXIST / ENOENT name `vpn` (`pfn` for set_direct_map_*);
 *   EPERM names the argument that carries the refused intent (POLICY_ARG);
 *   ENOMEM names `tablePool` (the resource that ran out).
 */
import type { Op } from '../commands.ts';
import type { Errno, PtError } from '../errors.ts';
import type { PolicyViolation } from '../policy.ts';
import type { SystemConfig } from '../state.ts';
import { ptError } from './args.ts';

/**
 * The outcomes each core operation can have under these contracts, so a campaign can say
 * which ones it never exercised. Removing or splitting mappings keeps every attribute, so
 * unmap, split and collapse can break no policy rule (no EPERM); collapse only frees
 * tables (no ENOMEM); a partial unmap may need a table for the split (ENOMEM).
 */
export const POSSIBLE_OUTCOMES: Readonly<Partial<Record<Op, readonly ('ok' | Errno)[]>>> = {
  map: ['ok', 'EINVAL', 'EEXIST', 'EPERM', 'ENOMEM'],
  unmap: ['ok', 'EINVAL', 'ENOENT', 'ENOMEM'],
  protect: ['ok', 'EINVAL', 'ENOENT', 'EPERM', 'ENOMEM'],
  setDirectMapInvalid: ['ok', 'EINVAL', 'ENOENT', 'EPERM', 'ENOMEM'],
  setDirectMapDefault: ['ok', 'EINVAL', 'EEXIST', 'EPERM', 'ENOMEM'],
  split: ['ok', 'EINVAL', 'ENOENT', 'ENOMEM'],
  collapse: ['ok', 'EINVAL', 'ENOENT'],
  translate: ['ok', 'EINVAL', 'ENOENT'],
  access: ['ok', 'EINVAL'],
  flush: ['ok', 'EINVAL'],
  flushAll: ['ok'],
};

export type MutatingOp = 'map' | 'unmap' | 'protect' | 'setDirectMapInvalid' | 'setDirectMapDefault' | 'split' | 'collapse';

export const POLICY_ARG: Readonly<Record<MutatingOp, string>> = {
  map: 'prot',
  unmap: 'vpn',
  protect: 'change',
  setDirectMapInvalid: 'pfn',
  setDirectMapDefault: 'pfn',
  split: 'vpn',
  collapse: 'vpn',
};

export function policyError(op: MutatingOp, v: PolicyViolation): PtError {
  return ptError('EPERM', POLICY_ARG[op], `policy ${v.rule}: ${v.reason}`);
}

/** ENOMEM iff the resulting state needs more tables than the pool holds (spec/footprint.ts). */
export function checkTablePool(config: SystemConfig, tablesNeeded: number): PtError | null {
  const pool = config.tablePool.count;
  return tablesNeeded > pool ? ptError('ENOMEM', 'tablePool', `the result needs ${tablesNeeded} page tables, the pool has ${pool}`) : null;
}
