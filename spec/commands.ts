/**
 * Operations as data: the unit of a fuzz trace, a failure file and a scenario's boot
 * sequence. Plain JSON values (page numbers are exact numbers), so a trace replays
 * exactly on any machine. Everything else about an operation is in its entry of the
 * operation table (operations.ts).
 */
import type { PageSize } from './address.ts';
import { fail, type Result } from './errors.ts';
import type { Prot, RootId } from './state.ts';
import { OPERATIONS } from './operations.ts';
import type { AccessKind, AccessMode, CloneLevel, PageTableSystem, ProtChange } from './system.ts';

export type Command =
  | { readonly op: 'map'; readonly root: RootId; readonly vpn: number; readonly pfn: number; readonly pages: number; readonly prot: Prot; readonly maxPage?: PageSize }
  | { readonly op: 'unmap'; readonly root: RootId; readonly vpn: number; readonly pages: number; readonly flush?: boolean }
  | { readonly op: 'protect'; readonly vpn: number; readonly pages: number; readonly change: ProtChange; readonly alias?: boolean; readonly collapse?: boolean }
  | { readonly op: 'setDirectMapInvalid'; readonly pfn: number; readonly count: number; readonly flush: boolean }
  | { readonly op: 'setDirectMapDefault'; readonly pfn: number; readonly count: number; readonly flush: boolean }
  | { readonly op: 'split'; readonly root: RootId; readonly vpn: number }
  | { readonly op: 'collapse'; readonly root: RootId; readonly vpn: number; readonly size: '2M' | '1G' }
  | { readonly op: 'ptiClone'; readonly vpn: number; readonly pages: number; readonly level: CloneLevel }
  | { readonly op: 'asiMap'; readonly vpn: number; readonly pages: number }
  | { readonly op: 'asiUnmap'; readonly vpn: number; readonly pages: number }
  | { readonly op: 'createProcess' }
  | { readonly op: 'exitProcess'; readonly pid: number }
  | { readonly op: 'mapUser'; readonly pid: number; readonly vpn: number; readonly pfn: number; readonly pages: number; readonly prot: Prot }
  | { readonly op: 'unmapUser'; readonly pid: number; readonly vpn: number; readonly pages: number }
  | { readonly op: 'setLdt'; readonly pid: number; readonly pfn: number; readonly pages: number }
  | { readonly op: 'vmalloc'; readonly vpn: number; readonly pfn: number; readonly pages: number; readonly huge: boolean; readonly resetPerms: boolean }
  | { readonly op: 'vfree'; readonly vpn: number }
  | { readonly op: 'vmUnmapAliases' }
  | { readonly op: 'kmapLocal'; readonly cpu: number; readonly pfn: number }
  | { readonly op: 'kunmapLocal'; readonly cpu: number; readonly vpn: number }
  | { readonly op: 'mermapGet'; readonly cpu: number; readonly pfn: number; readonly pages: number }
  | { readonly op: 'mermapPut'; readonly cpu: number; readonly vpn: number }
  | { readonly op: 'allocUnmapped'; readonly pfn: number; readonly count: number }
  | { readonly op: 'applyToPageRange'; readonly vpn: number; readonly pages: number; readonly pfn: number; readonly prot: Prot }
  | { readonly op: 'walkPageRange'; readonly vpn: number; readonly pages: number }
  | { readonly op: 'zapPageRange'; readonly pid: number; readonly vpn: number; readonly pages: number }
  | { readonly op: 'addMemory'; readonly pfn: number; readonly count: number }
  | { readonly op: 'removeMemory'; readonly pfn: number; readonly count: number }
  | { readonly op: 'translate'; readonly root: RootId; readonly vpn: number }
  | { readonly op: 'access'; readonly cpu: number; readonly root: RootId; readonly vpn: number; readonly kind: AccessKind; readonly mode: AccessMode }
  | { readonly op: 'flush'; readonly vpn: number; readonly pages: number }
  | { readonly op: 'flushAll' }
  | { readonly op: 'flushLocal'; readonly cpu: number; readonly vpn: number; readonly pages: number }
  | { readonly op: 'allocFrames'; readonly pfn: number; readonly count: number }
  | { readonly op: 'freeFrames'; readonly pfn: number; readonly count: number };

export type Op = Command['op'];

/** Operations that need the `isolation` capability (KPTI, ASI, processes). */
export function isIsolationOp(op: Op): boolean {
  return OPERATIONS[op].capability === 'isolation';
}

/** Operations that need the `clients` capability (spec/contracts/clients.ts). */
export function isClientOp(op: Op): boolean {
  return OPERATIONS[op].capability === 'clients';
}

/** Run one command on a system, as its entry in the operation table says. */
export function applyCommand(sys: PageTableSystem, c: Command): Result<unknown> {
  if (isIsolationOp(c.op) && sys.isolation === undefined) {
    return fail('EINVAL', 'op', `${c.op} needs KPTI/ASI support, which this system does not provide`);
  }
  if (isClientOp(c.op) && sys.clients === undefined) {
    return fail('EINVAL', 'op', `${c.op} needs the clients capability (vmalloc, kmap_local, the mermap, the unmapped pool), which this system does not provide`);
  }
  if (OPERATIONS[c.op].alsoIsolation === true && sys.isolation === undefined) {
    return fail('EINVAL', 'op', `${c.op} works on a process, which needs the isolation capability, which this system does not provide`);
  }
  return (OPERATIONS[c.op].apply as (sys: PageTableSystem, c: Command) => Result<unknown>)(sys, c);
}
