/**
 * map(root, vpn, pfn, pages, prot, {maxPage = '1G'}): vmap / ioremap / the direct-map
 * init of arch/x86/mm/init_64.c (phys_pud_init, phys_pmd_init).
 *
 * Preconditions, first failure wins:
 *   EINVAL root    root is not init_mm (0)
 *   EINVAL vpn     not an integer canonical page number in the kernel half
 *   EINVAL pages   not an integer ≥ 1, or the range leaves the kernel half
 *   EINVAL pfn     [pfn, pfn+pages) not inside memory [0, config.frames)
 *   EINVAL prot    unknown cache mode, or not x86-representable (execUser ≠ user && execKernel)
 *   EINVAL maxPage not one of 4K/2M/1G (a size the CPU lacks is NOT an error: it caps lower)
 *   EEXIST         some page of [vpn, vpn+pages) already has an entry (a leaf, or a
 *                  non-present entry of set_memory_np: it holds its slot)
 *   EPERM          the resulting state breaks a strict-policy invariant (outcome.ts STRICT_POLICY)
 *   ENOMEM         the resulting radix footprint exceeds config.tablePool.count (spec/footprint.ts)
 *
 * Postcondition: the leaves of root 0 are the old leaves plus, from vpn upward, one new
 * leaf at a time of the largest size S ≤ maxPage the CPU supports with its page and frame
 * both S-aligned and at least S pages left (greedy, as phys_*_init and vmap_try_huge_*
 * choose per entry), each with `prot`; frames are unchanged. A new mapping needs no flush
 * of its own (x86 does not cache not-present entries), but pages still owed a flush may be
 * cached stale (a lazy vunmap_range_noflush, set_direct_map_invalid_noflush), and a huge
 * leaf filled beside a stale small translation of one of its pages would be the TLB
 * application note's undefined behaviour (invariant L3): so every obligation that meets
 * [vpn, vpn+pages) is flushed whole first, as vmalloc reuses a lazily freed area only once
 * purge_vmap_area_lazy has flushed it (mm/vmalloc.c of gregkh/linux 04aa71da). That flush
 * is an ordinary range flush (flush.ts: merged, the 33-page ceiling); TLBs and obligations
 * are otherwise unchanged. The linux profile's vmap flushes nothing of the kind
 * (linux.ts): the allocator above it, which ptspec does not model, keeps it safe.
 */
import type { Pfn, Vpn } from '../address.ts';
import type { PtError } from '../errors.ts';
import type { Prot, RootId, SystemConfig } from '../state.ts';
import type { MapOptions } from '../system.ts';
import { checkKernelPages, checkKernelVpn, checkPfnRange, checkProt, checkRoot, isPageSize, ptError } from './args.ts';

/** map's preconditions that need no state (EINVAL), in the order of the header. Trusted: shared by model and impl, not checked by refinement. */
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
