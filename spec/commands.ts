/**
 * Operations as data: the unit of a fuzz trace, a failure file and a scenario's boot
 * sequence. Plain JSON values (page numbers are exact numbers), so a trace replays
 * exactly on any machine.
 */
import type { PageSize } from './address.ts';
import { fail, type Result } from './errors.ts';
import type { Prot, RootId } from './state.ts';
import type { AccessKind, AccessMode, CloneLevel, PageTableSystem, ProtChange } from './system.ts';

export type Command =
  | { readonly op: 'map'; readonly root: RootId; readonly vpn: number; readonly pfn: number; readonly pages: number; readonly prot: Prot; readonly maxPage?: PageSize }
  | { readonly op: 'unmap'; readonly root: RootId; readonly vpn: number; readonly pages: number }
  | { readonly op: 'protect'; readonly vpn: number; readonly pages: number; readonly change: ProtChange; readonly alias?: boolean }
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
  | { readonly op: 'translate'; readonly root: RootId; readonly vpn: number }
  | { readonly op: 'access'; readonly cpu: number; readonly root: RootId; readonly vpn: number; readonly kind: AccessKind; readonly mode: AccessMode }
  | { readonly op: 'flush'; readonly vpn: number; readonly pages: number }
  | { readonly op: 'flushAll' };

export type Op = Command['op'];
export const OPS: readonly Op[] = [
  'map', 'unmap', 'protect', 'setDirectMapInvalid', 'setDirectMapDefault', 'split', 'collapse',
  'ptiClone', 'asiMap', 'asiUnmap', 'createProcess', 'exitProcess', 'mapUser', 'unmapUser',
  'translate', 'access', 'flush', 'flushAll',
];

const ISOLATION_OPS: ReadonlySet<Op> = new Set<Op>(['ptiClone', 'asiMap', 'asiUnmap', 'createProcess', 'exitProcess', 'mapUser', 'unmapUser']);

/** Operations that need the `isolation` capability (KPTI, ASI, processes). */
export function isIsolationOp(op: Op): boolean {
  return ISOLATION_OPS.has(op);
}

/** Run one command on a system. */
export function applyCommand(sys: PageTableSystem, c: Command): Result<unknown> {
  const iso = sys.isolation;
  if (isIsolationOp(c.op) && iso === undefined) {
    return fail('EINVAL', 'op', `${c.op} needs KPTI/ASI support, which this system does not provide`);
  }
  switch (c.op) {
    case 'map': return sys.map(c.root, c.vpn, c.pfn, c.pages, c.prot, c.maxPage === undefined ? {} : { maxPage: c.maxPage });
    case 'unmap': return sys.unmap(c.root, c.vpn, c.pages);
    case 'protect': return sys.protect(c.vpn, c.pages, c.change, { alias: c.alias ?? false });
    case 'setDirectMapInvalid': return sys.setDirectMapInvalid(c.pfn, c.count, { flush: c.flush });
    case 'setDirectMapDefault': return sys.setDirectMapDefault(c.pfn, c.count, { flush: c.flush });
    case 'split': return sys.split(c.root, c.vpn);
    case 'collapse': return sys.collapse(c.root, c.vpn, c.size);
    case 'ptiClone': return iso!.ptiClone(c.vpn, c.pages, c.level);
    case 'asiMap': return iso!.asiMap(c.vpn, c.pages);
    case 'asiUnmap': return iso!.asiUnmap(c.vpn, c.pages);
    case 'createProcess': return iso!.createProcess();
    case 'exitProcess': return iso!.exitProcess(c.pid);
    case 'mapUser': return iso!.mapUser(c.pid, c.vpn, c.pfn, c.pages, c.prot);
    case 'unmapUser': return iso!.unmapUser(c.pid, c.vpn, c.pages);
    case 'translate': return sys.translate(c.root, c.vpn);
    case 'access': return sys.access(c.cpu, c.root, c.vpn, c.kind, c.mode);
    case 'flush': return sys.flush(c.vpn, c.pages);
    case 'flushAll': return sys.flushAll();
  }
}
