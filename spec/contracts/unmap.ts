/**
 * unmap(root, vpn, pages): vunmap / vunmap_range, and the zap of a kernel range. This is
 * the strict profile; the linux profile (no split, huge entries cleared whole, no table
 * freed) is spec/contracts/linux.ts.
 *
 * Preconditions, first failure wins:
 *   EINVAL root   root is not init_mm (0)
 *   EINVAL vpn    not an integer canonical page number in the kernel half
 *   EINVAL pages  not an integer ≥ 1, or the range leaves the kernel half
 *   ENOENT        no page of [vpn, vpn+pages) has an entry, leaf or non-present (a
 *                 partly mapped range is fine)
 *   EPERM vpn     the resulting state breaks a strict-policy invariant: only with the
 *                 isolation capability, removing a page that root 1 clones globally (K3)
 *                 or that root 2 copies (A2); asiUnmap or a new ptiClone must come first
 *   ENOMEM        the resulting footprint exceeds the pool (splitting a 1G leaf at an
 *                 unaligned edge adds a PMD and a PTE table, so unmap can need memory)
 *
 * Postcondition: every leaf partly inside the range is split (split rule, hugepage.ts)
 * recursively until each piece is wholly inside or wholly outside; the pieces inside are
 * removed (non-present entries alike), the rest keep their attributes exactly. TLB entries of every CPU whose leaf
 * intersects the range are removed and obligations inside it discharged (flush.ts);
 * emptied tables are freed after that flush, so the footprint is the new leaves' one.
 *
 * With `flush: false` (vunmap_range_noflush, what vfree's lazy free_unmap_vmap_area and
 * remove_vm_area do before vm_reset_perms or the lazy purge: mm/vmalloc.c of gregkh/linux
 * 04aa71da): the same entries change, but no TLB is touched; the range is owed a flush
 * (reason 'unmap'), and the tables it empties stay pending free until a flush releases
 * them (flush.ts, "Deferred table frees"), counting toward ENOMEM.
 */
import type { Vpn } from '../address.ts';
import type { PtError } from '../errors.ts';
import type { RootId, SystemConfig } from '../state.ts';
import { checkKernelPages, checkKernelVpn, checkRoot } from './args.ts';

/** unmap's preconditions that need no state (EINVAL), in the order of the header. Trusted: shared by model and impl, not checked by refinement. */
export function validateUnmap(config: SystemConfig, root: RootId, vpn: Vpn, pages: number): PtError | null {
  return checkRoot(root) ?? checkKernelVpn(config, vpn) ?? checkKernelPages(vpn, pages);
}
