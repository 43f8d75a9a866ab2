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
 *   EEXIST         some page of [vpn, vpn+pages) is already mapped
 *   EPERM          the resulting state breaks a policy rule (spec/policy.ts)
 *   ENOMEM         the resulting radix footprint exceeds config.tablePool.count (spec/footprint.ts)
 *
 * Postcondition: the leaves of root 0 are the old leaves plus `chooseLeafSizes(...)`
 * for the range, each with `prot`; frames, TLBs and flush obligations are unchanged (a
 * new mapping needs no flush: x86 does not cache not-present entries).
 */
import { PAGES, type PageSize, type Pfn, type Vpn } from '../address.ts';
import type { PtError } from '../errors.ts';
import type { Prot, RootId, SystemConfig } from '../state.ts';
import type { MapOptions } from '../system.ts';
import { checkKernelPages, checkKernelVpn, checkPfnRange, checkProt, checkRoot, isPageSize, ptError, sizeSupported } from './args.ts';

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

const LARGEST_FIRST: readonly PageSize[] = ['1G', '2M', '4K'];

/**
 * One greedy step of map: the largest size S ≤ maxPage that the CPU supports with vpn and
 * pfn both S-aligned and at least S pages remaining. Always succeeds (4K fits anything).
 */
export function chooseLeafSize(config: SystemConfig, vpn: Vpn, pfn: Pfn, remaining: number, maxPage: PageSize = '1G'): PageSize {
  const cap = PAGES[maxPage];
  for (const size of LARGEST_FIRST) {
    const n = PAGES[size];
    if (n <= cap && n <= remaining && vpn % n === 0 && pfn % n === 0 && sizeSupported(config, size)) return size;
  }
  return '4K';
}

export interface LeafPlacement {
  readonly vpn: Vpn;
  readonly pfn: Pfn;
  readonly size: PageSize;
}

/**
 * Every leaf map creates for [vpn, vpn+pages) → [pfn, pfn+pages), in vpn order: greedy
 * from the start, as the kernel's phys_*_init and vmap_try_huge_* choose per entry.
 */
export function chooseLeafSizes(config: SystemConfig, vpn: Vpn, pfn: Pfn, pages: number, maxPage: PageSize = '1G'): LeafPlacement[] {
  const out: LeafPlacement[] = [];
  for (let off = 0; off < pages; ) {
    const size = chooseLeafSize(config, vpn + off, pfn + off, pages - off, maxPage);
    out.push({ vpn: vpn + off, pfn: pfn + off, size });
    off += PAGES[size];
  }
  return out;
}
