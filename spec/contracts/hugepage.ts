/**
 * split(root, vpn) and collapse(root, vpn, size): split_large_page and
 * collapse_large_pages of arch/x86/mm/pat/set_memory.c (gregkh/linux 53c2f13c), with their
 * argument validators, and the split rule every operation that touches part of a huge
 * leaf follows. The contracts: CONTRACTS.split and CONTRACTS.collapse
 * (HUGEPAGE_CONTRACTS below); the rule: HUGEPAGE_RULES.
 */
import type { Vpn } from '../address.ts';
import type { PtError } from '../errors.ts';
import type { RootId, SystemConfig } from '../state.ts';
import { KERNEL_VPN_ARG, ROOT_ARG, checkKernelVpn, checkRoot, einval, ptError, sizeSupported } from './args.ts';
import type { ContractRule, ContractsOf } from './contract.ts';

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

const SOURCES: readonly string[] = ['arch/x86/mm/pat/set_memory.c of gregkh/linux 53c2f13c: `split_large_page`, `__split_large_page`, `collapse_large_pages`, `collapse_pmd_page`, `collapse_pud_page`'];

export const HUGEPAGE_CONTRACTS: ContractsOf<'split' | 'collapse'> = {
  split: {
    signature: 'split(root, vpn)',
    summary: '`split_large_page` (arch/x86/mm/pat/set_memory.c): the huge leaf containing `vpn` becomes a table of 512 leaves of the next size down.',
    preconditions: [
      ROOT_ARG,
      KERNEL_VPN_ARG,
      { errno: 'ENOENT', arg: 'vpn', when: '`vpn` is not mapped (a non-present entry is not a mapping)' },
      einval('vpn', 'the leaf containing `vpn` is 4K (nothing to split)'),
      { errno: 'ENOMEM', arg: 'tablePool', when: 'the new table does not fit in the pool' },
    ],
    post: [
      'The leaf L containing `vpn` is split once by *The split rule*: 512 leaves of the next size down covering L\'s range, frames contiguous from L\'s pfn, every attribute kept exactly. TLB entries intersecting L\'s range are flushed on all CPUs, obligations there discharged (a range flush).',
      'The strict policy judges it as any operation, but splitting preserves attributes, so it never refuses a split today: no EPERM.',
    ],
    linux: [],
    sources: SOURCES,
  },
  collapse: {
    signature: 'collapse(root, vpn, size)',
    summary: '`collapse_large_pages` (arch/x86/mm/pat/set_memory.c): the `size`-aligned block B containing `vpn`, mapped by 512 leaves of the next size down that agree, becomes one leaf of `size`.',
    preconditions: [
      ROOT_ARG,
      KERNEL_VPN_ARG,
      einval('size', 'not 2M/1G, or the CPU lacks it (2M needs PSE, 1G GB pages)'),
      { errno: 'ENOENT', arg: 'vpn', when: 'some page of B is unmapped (a non-present entry is unmapped), B = the size-aligned block containing `vpn`' },
      einval('vpn', 'B is not exactly 512 leaves of the next size down with identical prot and contiguous frames from a size-aligned pfn, or they are kept 4K (`kernel4k`, set_memory_4k: `collapse_pmd_page` never collapses them)'),
    ],
    post: [
      'Those 512 leaves are replaced by one leaf of `size` with their prot at their first pfn; B is flushed on all CPUs.',
      'EPERM and ENOMEM are judged as for any operation, but collapse keeps attributes and only frees a table, so neither happens today.',
    ],
    linux: [],
    sources: SOURCES,
  },
};

export const HUGEPAGE_RULES: readonly ContractRule[] = [
  {
    id: 'split-rule',
    title: 'The split rule',
    paragraphs: [
      'A huge leaf splits into 512 leaves of the next size down covering its range, frames contiguous from its pfn, every attribute kept exactly (the kernel moves PAT between bit 12 and bit 7 so the cache mode stays, and keeps NX, G and RW).',
      'Split recursively (unmap, protect, set_direct_map_invalid at the edge of a range): pieces are split again while they straddle the range, so each page p of the leaf ends up in the largest size-aligned block of the leaf around p that lies wholly inside or wholly outside the range, with the leaf\'s frames and attributes.',
    ],
    sources: ['arch/x86/mm/pat/set_memory.c of gregkh/linux 53c2f13c: `__split_large_page`'],
  },
];
