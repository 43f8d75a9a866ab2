/**
 * translate(root, vpn), access(cpu, root, vpn, kind, mode), flush(vpn, pages), flushAll():
 * the page walk, the MMU with its TLBs, flush_tlb_kernel_range and flush_tlb_all.
 *
 * translate, first failure wins:
 *   EINVAL root / EINVAL vpn (kernel half) as for map;  ENOENT  vpn is not mapped.
 *   Postcondition: `{leaf, pfn: leaf.pfn + (vpn - leaf.vpn)}`; nothing changes.
 *
 * access, first failure wins:
 *   EINVAL cpu   not an integer in [0, config.cpus)
 *   EINVAL root / EINVAL vpn as above;  EINVAL kind (r/w/x), EINVAL mode (kernel/user)
 *   Postcondition: the TLB entry of (cpu, root) covering vpn (`tlbLookup`) is used if
 *   present (fromTlb: true, even when stale: that is what a missed flush means); else the
 *   walk: not mapped → {fault: 'not-present'} and no fill; mapped → the leaf is inserted
 *   into that CPU's TLB. Then `accessAllowed(prot, kind, mode)` or {fault: 'protection'}
 *   (a fill made by the walk stays). No other part of the state changes.
 *
 * flush, first failure wins:  EINVAL vpn / EINVAL pages as for unmap.
 *   Postcondition: `flushTlbRange` on every CPU, `dischargeFlushRange` on the obligations.
 * flushAll: never fails; every TLB and every obligation emptied.
 */
import type { Vpn } from '../address.ts';
import type { PtError } from '../errors.ts';
import type { Leaf, Prot, RootId, SystemConfig } from '../state.ts';
import type { AccessKind, AccessMode, Translation } from '../system.ts';
import { checkKernelPages, checkKernelVpn, checkRoot, ptError } from './args.ts';

export function validateTranslate(config: SystemConfig, root: RootId, vpn: Vpn): PtError | null {
  return checkRoot(root) ?? checkKernelVpn(config, vpn);
}

export function validateAccess(config: SystemConfig, cpu: number, root: RootId, vpn: Vpn, kind: AccessKind, mode: AccessMode): PtError | null {
  if (!Number.isInteger(cpu) || cpu < 0 || cpu >= config.cpus) return ptError('EINVAL', 'cpu', `cpu ${cpu} is not in [0, ${config.cpus})`);
  return (
    checkRoot(root) ??
    checkKernelVpn(config, vpn) ??
    (kind === 'r' || kind === 'w' || kind === 'x' ? null : ptError('EINVAL', 'kind', `${String(kind)} is not r, w or x`)) ??
    (mode === 'kernel' || mode === 'user' ? null : ptError('EINVAL', 'mode', `${String(mode)} is not kernel or user`))
  );
}

/** translate's postcondition (and a permitted access's): the frame vpn reaches through `leaf`. */
export function translation(leaf: Leaf, vpn: Vpn): Translation {
  return { leaf, pfn: leaf.pfn + (vpn - leaf.vpn) };
}

export function validateFlush(config: SystemConfig, vpn: Vpn, pages: number): PtError | null {
  return checkKernelVpn(config, vpn) ?? checkKernelPages(vpn, pages);
}

/**
 * The permission check of one access with effective prot `prot` (Intel SDM §4.6, CR0.WP
 * and CR4.SMEP set, as Linux runs): a read needs kernel mode or a user page; a write
 * additionally needs write; an instruction fetch in kernel mode needs execKernel on a
 * supervisor page (SMEP forbids executing user pages), in user mode execUser.
 */
export function accessAllowed(prot: Prot, kind: AccessKind, mode: AccessMode): boolean {
  const reach = mode === 'kernel' || prot.user;
  if (kind === 'r') return reach;
  if (kind === 'w') return reach && prot.write;
  return mode === 'kernel' ? prot.execKernel && !prot.user : prot.execUser;
}
