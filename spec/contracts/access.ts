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
 *   Postcondition: the TLB entry of (cpu, root) covering vpn is used if present (of
 *   several, as a stale 4K entry under a later 2M fill, the smallest) (fromTlb: true,
 *   even when stale: that is what a missed flush means); else the walk: not mapped →
 *   {fault: 'not-present'} and no fill; mapped → the leaf is inserted into that CPU's
 *   TLB. Then the permission check on the leaf's prot (Intel SDM §4.6, CR0.WP and
 *   CR4.SMEP set, as Linux runs): a read needs kernel mode or a user page; a write needs
 *   that and write; a kernel-mode fetch needs execKernel on a supervisor page; a user-mode
 *   fetch needs execUser. Failing it: {fault: 'protection'} (a fill made by the walk
 *   stays). No other part of the state changes.
 *
 * flush, first failure wins:  EINVAL vpn / EINVAL pages as for unmap.
 *   Postcondition: on every CPU and root each TLB entry whose leaf intersects the range
 *   goes, the obligations lose their pages in the range (the pieces keep their reason),
 *   and every pending table whose span intersects it is released (flush.ts).
 * flushAll: never fails; every TLB and every obligation emptied, every pending table released.
 */
import type { Vpn } from '../address.ts';
import type { PtError } from '../errors.ts';
import type { RootId, SystemConfig } from '../state.ts';
import type { AccessKind, AccessMode } from '../system.ts';
import { checkKernelPages, checkKernelVpn, checkRoot, ptError } from './args.ts';

/** translate's preconditions (EINVAL). Trusted: shared by model and impl, not checked by refinement. */
export function validateTranslate(config: SystemConfig, root: RootId, vpn: Vpn): PtError | null {
  return checkRoot(root) ?? checkKernelVpn(config, vpn);
}

/** access's preconditions (EINVAL), in the order of the header. Trusted: shared by model and impl, not checked by refinement. */
export function validateAccess(config: SystemConfig, cpu: number, root: RootId, vpn: Vpn, kind: AccessKind, mode: AccessMode): PtError | null {
  if (!Number.isInteger(cpu) || cpu < 0 || cpu >= config.cpus) return ptError('EINVAL', 'cpu', `cpu ${cpu} is not in [0, ${config.cpus})`);
  return (
    checkRoot(root) ??
    checkKernelVpn(config, vpn) ??
    (kind === 'r' || kind === 'w' || kind === 'x' ? null : ptError('EINVAL', 'kind', `${String(kind)} is not r, w or x`)) ??
    (mode === 'kernel' || mode === 'user' ? null : ptError('EINVAL', 'mode', `${String(mode)} is not kernel or user`))
  );
}

/** flush's preconditions (EINVAL), as unmap's range. Trusted: shared by model and impl, not checked by refinement. */
export function validateFlush(config: SystemConfig, vpn: Vpn, pages: number): PtError | null {
  return checkKernelVpn(config, vpn) ?? checkKernelPages(vpn, pages);
}
