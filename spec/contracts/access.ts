/**
 * translate(root, vpn), access(cpu, root, vpn, kind, mode), flush(vpn, pages), flushAll():
 * the page walk, the MMU with its TLBs, flush_tlb_kernel_range and flush_tlb_all.
 *
 * translate, first failure wins:
 *   EINVAL root  not a root the state has (init_mm alone without the isolation capability);
 *   EINVAL vpn   not canonical, or in the user half for roots 0-2 (isolation.ts: a
 *                process's roots walk both halves);  ENOENT  vpn is not mapped in the
 *                root's view (spec/roots.ts rootView).
 *   Postcondition: `{leaf, pfn: leaf.pfn + (vpn - leaf.vpn)}`; nothing changes.
 *
 * access, first failure wins:
 *   EINVAL cpu   not an integer in [0, config.cpus)
 *   EINVAL root / EINVAL vpn as above;  EINVAL kind (r/w/x), EINVAL mode (kernel/user)
 *   Postcondition: the TLB entry of (cpu, root) covering vpn is used if present (of
 *   several, as a stale 4K entry under a later 2M fill, the smallest) (fromTlb: true,
 *   even when stale: that is what a missed flush means); else the walk. The walk starts
 *   at the deepest paging-structure-cache entry of (cpu, root) whose span holds vpn
 *   (flush.ts), else at the root: through a 'current' entry it finds what the tables
 *   hold; through an 'unlinked' or 'freed' one it finds nothing (an unlinked table is
 *   empty; a freed frame is not a table, and L4 forbids the state), so {fault:
 *   'not-present'} and no fill. Not mapped → {fault: 'not-present'} and no fill; mapped →
 *   the leaf is inserted into that CPU's TLB and every table entry above it (the levels
 *   leafLevel(size) .. levels - 1) into its paging-structure caches as 'current',
 *   replacing what was cached there. Then the permission check on the leaf's prot (Intel SDM §4.6, CR0.WP and
 *   CR4.SMEP set, as Linux runs): a read needs kernel mode or a user page; a write needs
 *   that and write; a kernel-mode fetch needs execKernel on a supervisor page; a user-mode
 *   fetch needs execUser. Failing it: {fault: 'protection'} (a fill made by the walk
 *   stays). No other part of the state changes.
 *
 * flush, first failure wins:  EINVAL vpn / EINVAL pages as for unmap.
 *   Postcondition (flush.ts): more than 33 pages → as flushAll. Else on every CPU and
 *   root each TLB entry whose leaf intersects the range goes, every paging-structure
 *   cache is emptied, the obligations lose their pages in the range (the pieces keep
 *   their reason), and every pending table whose span intersects it is released.
 * flushAll: never fails; every TLB, paging-structure cache and obligation emptied, every
 *   pending table released.
 * flushLocal(cpu, vpn, pages), first failure wins: EINVAL cpu as for access; EINVAL vpn /
 *   EINVAL pages as for unmap. Postcondition: that CPU's TLB entries (every root) whose
 *   leaf intersects the range go and its paging-structure caches are emptied; every other
 *   CPU, the obligations and the pending tables are unchanged.
 */
import type { Vpn } from '../address.ts';
import type { PtError } from '../errors.ts';
import type { RootId, SystemConfig } from '../state.ts';
import type { AccessKind, AccessMode } from '../system.ts';
import { checkKernelPages, checkKernelVpn, checkRootIn, checkVpnFor, ptError } from './args.ts';

/** The roots of a system without the isolation capability. */
const INIT_ONLY: ReadonlySet<RootId> = new Set([0]);

/** translate's preconditions (EINVAL). Trusted: shared by model and impl, not checked by refinement. */
export function validateTranslate(config: SystemConfig, root: RootId, vpn: Vpn, roots: ReadonlySet<RootId> = INIT_ONLY): PtError | null {
  return checkRootIn(root, roots) ?? checkVpnFor(config, root, vpn);
}


function checkCpu(config: SystemConfig, cpu: number): PtError | null {
  return Number.isInteger(cpu) && cpu >= 0 && cpu < config.cpus ? null : ptError('EINVAL', 'cpu', `cpu ${cpu} is not in [0, ${config.cpus})`);
}

/** access's preconditions (EINVAL), in the order of the header. Trusted: shared by model and impl, not checked by refinement. */
export function validateAccess(
  config: SystemConfig, cpu: number, root: RootId, vpn: Vpn, kind: AccessKind, mode: AccessMode, roots: ReadonlySet<RootId> = INIT_ONLY,
): PtError | null {
  return (
    checkCpu(config, cpu) ??
    checkRootIn(root, roots) ??
    checkVpnFor(config, root, vpn) ??
    (kind === 'r' || kind === 'w' || kind === 'x' ? null : ptError('EINVAL', 'kind', `${String(kind)} is not r, w or x`)) ??
    (mode === 'kernel' || mode === 'user' ? null : ptError('EINVAL', 'mode', `${String(mode)} is not kernel or user`))
  );
}

/** flush's preconditions (EINVAL), as unmap's range. Trusted: shared by model and impl, not checked by refinement. */
export function validateFlush(config: SystemConfig, vpn: Vpn, pages: number): PtError | null {
  return checkKernelVpn(config, vpn) ?? checkKernelPages(vpn, pages);
}

/** flushLocal's preconditions (EINVAL): the cpu as for access, the range as for flush. Trusted: shared by model and impl, not checked by refinement. */
export function validateFlushLocal(config: SystemConfig, cpu: number, vpn: Vpn, pages: number): PtError | null {
  return checkCpu(config, cpu) ?? validateFlush(config, vpn, pages);
}
