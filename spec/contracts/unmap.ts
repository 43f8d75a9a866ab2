/**
 * unmap(root, vpn, pages, {flush}): vunmap / vunmap_range and the zap of a kernel range,
 * and unmap's argument validator. Read from mm/vmalloc.c of gregkh/linux 04aa71da
 * (vunmap_range, vunmap_range_noflush and their page-table walk) and mm/pgtable-generic.c.
 * The contract: CONTRACTS.unmap (UNMAP_CONTRACT below).
 */
import type { Vpn } from '../address.ts';
import type { PtError } from '../errors.ts';
import type { RootId, SystemConfig } from '../state.ts';
import { KERNEL_PAGES_ARG, KERNEL_VPN_ARG, ROOT_ARG, checkKernelPages, checkKernelVpn, checkRoot } from './args.ts';
import type { OperationContract } from './contract.ts';

/** unmap's preconditions that need no state (EINVAL), in the order of its contract. Trusted: shared by model and impl, not checked by refinement. */
export function validateUnmap(config: SystemConfig, root: RootId, vpn: Vpn, pages: number): PtError | null {
  return checkRoot(root) ?? checkKernelVpn(config, vpn) ?? checkKernelPages(vpn, pages);
}

export const UNMAP_CONTRACT: OperationContract = {
  signature: 'unmap(root, vpn, pages, {flush = true})',
  summary: 'vunmap / `vunmap_range`, and the zap of a kernel range: the entries of `[vpn, vpn+pages)` in init_mm removed; with `flush: false`, `vunmap_range_noflush`.',
  preconditions: [
    ROOT_ARG,
    KERNEL_VPN_ARG,
    KERNEL_PAGES_ARG,
    { errno: 'ENOENT', arg: 'vpn', when: 'no page of `[vpn, vpn+pages)` has an entry, leaf or non-present (a partly mapped range is fine)' },
    {
      errno: 'EPERM', arg: 'vpn', profile: 'strict',
      when: 'the resulting state breaks a strict-policy invariant: only with the isolation capability, removing a page that root 1 clones globally (K3) or that root 2 copies (A2); asiUnmap or a new ptiClone must come first',
    },
    {
      errno: 'ENOMEM', arg: 'tablePool', profile: 'strict',
      when: 'the resulting footprint exceeds the pool (splitting a 1G leaf at an unaligned edge adds a PMD and a PTE table, so unmap can need memory)',
    },
  ],
  post: [
    'Every leaf partly inside the range is split (*The split rule*) recursively until each piece is wholly inside or wholly outside; the pieces inside are removed (non-present entries alike), the rest keep their attributes exactly.',
    'TLB entries of every CPU whose leaf intersects the range are removed and obligations inside it discharged (a range flush); emptied tables are freed after that flush, so the footprint is the new leaves\' one.',
    'With `flush: false` (`vunmap_range_noflush`, what vfree\'s lazy `free_unmap_vmap_area` and `remove_vm_area` do before `vm_reset_perms` or the lazy purge): the same entries change, but no TLB is touched; the range is owed a flush (reason `unmap`), and the tables it empties stay pending free until a flush releases them (*Deferred table frees*), counting toward ENOMEM.',
  ],
  linux: [
    '`vunmap_range`: `__vunmap_range_noflush`, then `flush_tlb_kernel_range` of `[vpn, vpn+pages)` on all CPUs. No split and no ENOMEM:',
    'A 1G or 2M leaf that meets the range is cleared whole (`pud_clear_huge` / `pmd_clear_huge`), with a WARN (event `vunmap-huge`, the leaf\'s range) when the range does not cover it (`WARN_ON(next - addr < PMD_SIZE / PUD_SIZE)`): its pages outside the range go too.',
    'A 1G or 2M non-present entry that meets the range is not a leaf to `pud_leaf` / `pmd_leaf` (CPA writes it without PSE) but a bad entry: cleared whole by `pud_none_or_clear_bad` / `pmd_none_or_clear_bad`, which prints "bad pmd/pud" (event `bad-entry`, its range).',
    'Each 4K entry in the range is cleared (`ptep_get_and_clear`); a non-present one with a WARN (event `vunmap-nonpresent`, its page): `WARN_ON(!pte_none && !pte_present)`.',
    'Events come in address order. No table is freed (*Page tables (linux profile)*).',
    'With `flush: false` (`vunmap_range_noflush`): the same, without the flush; the range is owed one (reason `unmap`). Nothing goes pending: no table is freed.',
    'ptspec keeps the ENOENT of unmap, though the kernel\'s `vunmap_range` of nothing does nothing.',
  ],
  sources: [
    'mm/vmalloc.c of gregkh/linux 04aa71da: `vunmap_range`, `vunmap_range_noflush`, `__vunmap_range_noflush`, `vunmap_pud_range`, `vunmap_pmd_range`, `vunmap_pte_range`, `free_unmap_vmap_area`, `remove_vm_area`',
    'mm/pgtable-generic.c: `pmd_clear_bad`, `pud_clear_bad`',
    'arch/x86/mm/tlb.c of gregkh/linux 399ec9ca: `flush_tlb_kernel_range`',
  ],
};
