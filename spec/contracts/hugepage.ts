/**
 * split(root, vpn) and collapse(root, vpn, size): split_large_page and
 * collapse_large_pages (arch/x86/mm/pat/set_memory.c), and the split rule every
 * operation that touches part of a huge leaf follows.
 *
 * split preconditions, first failure wins:
 *   EINVAL root   root is not init_mm (0)
 *   EINVAL vpn    not an integer canonical page number in the kernel half
 *   ENOENT        vpn is not mapped (a non-present entry is not a mapping)
 *   EINVAL vpn    the leaf containing vpn is 4K (nothing to split)
 *   EPERM         strict policy (splitting preserves attributes, so never today)
 *   ENOMEM        the new table does not fit in the pool
 * split postcondition: the leaf L containing vpn is replaced by 512 leaves of the next
 * size down covering L's range, frames contiguous from L's pfn, every attribute kept
 * exactly (the split rule: the kernel moves PAT between bit 12 and bit 7 so the cache
 * mode stays, and keeps NX, G and RW); TLB entries intersecting L's range are flushed on
 * all CPUs, obligations there discharged (flush.ts).
 *
 * Split recursively (unmap, protect, set_direct_map_invalid at the edge of a range):
 * pieces are split again while they straddle the range, so each page p of the leaf ends
 * up in the largest size-aligned block of the leaf around p that lies wholly inside or
 * wholly outside the range, with the leaf's frames and attributes.
 *
 * collapse preconditions, first failure wins:
 *   EINVAL root   root is not init_mm (0)
 *   EINVAL vpn    not an integer canonical page number in the kernel half
 *   EINVAL size   not 2M/1G, or the CPU lacks it (2M needs PSE, 1G GB pages)
 *   ENOENT        some page of B is unmapped (a non-present entry is unmapped), B = the
 *                 size-aligned block containing vpn
 *   EINVAL vpn    B is not exactly 512 leaves of the next size down with identical prot
 *                 and contiguous frames from a size-aligned pfn, or they are kept 4K
 *                 (kernel4k, set_memory_4k: collapse_pmd_page never collapses them)
 *   EPERM / ENOMEM  as for any operation (collapse frees a table, so never today)
 * collapse postcondition: those 512 leaves are replaced by one leaf of `size` with
 * their prot at their first pfn; B is flushed on all CPUs.
 */
import type { Vpn } from '../address.ts';
import type { PtError } from '../errors.ts';
import type { RootId, SystemConfig } from '../state.ts';
import { checkKernelVpn, checkRoot, ptError, sizeSupported } from './args.ts';

/** split's preconditions that need no state (EINVAL). Trusted: shared by model and impl, not checked by refinement. */
export function validateSplit(config: SystemConfig, root: RootId, vpn: Vpn): PtError | null {
  return checkRoot(root) ?? checkKernelVpn(config, vpn);
}

/** collapse's preconditions that need no state (EINVAL), the CPU's page sizes included. Trusted: shared by model and impl, not checked by refinement. */
export function validateCollapse(config: SystemConfig, root: RootId, vpn: Vpn, size: '2M' | '1G'): PtError | null {
  return (
    checkRoot(root) ??
    checkKernelVpn(config, vpn) ??
    (size !== '2M' && size !== '1G'
      ? ptError('EINVAL', 'size', `${String(size)} is not a huge page size (2M or 1G)`)
      : sizeSupported(config, size)
        ? null
        : ptError('EINVAL', 'size', `the CPU has no ${size} pages (${size === '2M' ? 'PSE' : 'GB pages'} missing)`))
  );
}
