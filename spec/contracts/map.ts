/**
 * map(root, vpn, pfn, pages, prot, {maxPage}): the kernel-half mappings of vmap, ioremap
 * and the direct-map init, and map's argument validator. Read from arch/x86/mm/init_64.c
 * (phys_pud_init, phys_pmd_init), mm/vmalloc.c of gregkh/linux 04aa71da (vmap_try_huge_*,
 * purge_vmap_area_lazy) and arch/x86/mm/pgtable.c. The contract: CONTRACTS.map
 * (MAP_CONTRACT below).
 */
import type { Pfn, Vpn } from '../address.ts';
import type { PtError } from '../errors.ts';
import type { Prot, RootId, SystemConfig } from '../state.ts';
import type { MapOptions } from '../system.ts';
import {
  FRAMES_ARG, KERNEL_PAGES_ARG, KERNEL_VPN_ARG, PROT_ARG, ROOT_ARG, checkKernelPages, checkKernelVpn, checkPfnRange, checkProt, checkRoot, einval, isPageSize,
  ptError,
} from './args.ts';
import type { OperationContract } from './contract.ts';

/** map's preconditions that need no state (EINVAL), in the order of its contract. Trusted: shared by model and impl, not checked by refinement. */
export function validateMap(config: SystemConfig, root: RootId, vpn: Vpn, pfn: Pfn, pages: number, prot: Prot, opts: MapOptions = {}): PtError | null {
  return (
    checkRoot(root) ??
    checkKernelVpn(config, vpn) ??
    checkKernelPages(vpn, pages) ??
    checkPfnRange(config, pfn, pages) ??
    checkProt(prot) ??
    (opts.maxPage === undefined || isPageSize(opts.maxPage) ? null : ptError('EINVAL', 'maxPage', `${String(opts.maxPage)} is not a page size`))
  );
}

export const MAP_CONTRACT: OperationContract = {
  signature: "map(root, vpn, pfn, pages, prot, {maxPage = '1G'})",
  summary: 'vmap / ioremap / the direct-map init of arch/x86/mm/init_64.c (`phys_pud_init`, `phys_pmd_init`): `pages` pages of init_mm\'s kernel half from `vpn`, mapped to the frames from `pfn` with `prot`.',
  preconditions: [
    ROOT_ARG,
    KERNEL_VPN_ARG,
    KERNEL_PAGES_ARG,
    FRAMES_ARG,
    PROT_ARG,
    einval('maxPage', 'not one of 4K/2M/1G (a size the CPU lacks is **not** an error: it caps lower)'),
    { errno: 'EEXIST', arg: 'vpn', when: 'some page of `[vpn, vpn+pages)` already has an entry (a leaf, or a non-present entry of set_memory_np: it holds its slot)' },
    { errno: 'EPERM', arg: 'prot', when: 'the resulting state breaks a strict-policy invariant (`STRICT_POLICY`)', profile: 'strict' },
    { errno: 'ENOMEM', arg: 'tablePool', when: 'the resulting radix footprint exceeds `config.tablePool.count` (spec/footprint.ts)' },
  ],
  post: [
    'The leaves of root 0 are the old leaves plus, from `vpn` upward, one new leaf at a time of the largest size S ≤ `maxPage` the CPU supports with its page and frame both S-aligned and at least S pages left (greedy, as `phys_*_init` and `vmap_try_huge_*` choose per entry), each with `prot`; frames are unchanged.',
    'A new mapping needs no flush of its own (x86 does not cache not-present entries), but pages still owed a flush may be cached stale (a lazy `vunmap_range_noflush`, `set_direct_map_invalid_noflush`), and a huge leaf filled beside a stale small translation of one of its pages would be the TLB application note\'s undefined behaviour (invariant L3): so every obligation that meets `[vpn, vpn+pages)` is flushed whole first, as vmalloc reuses a lazily freed area only once `purge_vmap_area_lazy` has flushed it. That flush is an ordinary range flush (*Range flushes and the 33-page ceiling*: merged, the ceiling); TLBs and obligations are otherwise unchanged.',
  ],
  linux: [
    'vmap flushes nothing of the kind: the allocator above it, which ptspec does not model, keeps it safe.',
    'A map with a user prot is accepted, but the leaf\'s effective prot is not user: the kernel half\'s tables above it (`_KERNPG_TABLE`) have no `_PAGE_USER`, and the MMU ANDs U over the walk.',
    'ptspec keeps the EEXIST of map: the kernel\'s `vmap_pages_pte_range` WARNs and returns -EBUSY over an entry, `vmap_pte_range` BUGs.',
    'A map reuses a table the kernel kept where it needs one, and a huge leaf where a kept table hangs frees that table first, after a one-page flush there (*Page tables (linux profile)*, *Flushes (linux profile)*). ENOMEM is judged on the count after the operation, the tables a map frees included (the kernel allocates in address order and could fail before a later free; ptspec does not model that order).',
  ],
  sources: [
    'arch/x86/mm/init_64.c: `phys_pud_init`, `phys_pmd_init`',
    'mm/vmalloc.c of gregkh/linux 04aa71da: `vmap_try_huge_pmd`, `vmap_try_huge_pud`, `vmap_pages_pte_range`, `vmap_pte_range`, `purge_vmap_area_lazy`',
    'arch/x86/mm/pgtable.c: `pmd_free_pte_page`, `pud_free_pmd_page`',
  ],
};
