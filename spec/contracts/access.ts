/**
 * translate(root, vpn), access(cpu, root, vpn, kind, mode), flush(vpn, pages), flushAll()
 * and flushLocal(cpu, vpn, pages): the page walk, the MMU with its TLBs,
 * flush_tlb_kernel_range, flush_tlb_all and flush_tlb_one_kernel (arch/x86/mm/tlb.c of
 * gregkh/linux 399ec9ca; the permission check from the Intel SDM §4.6), with their
 * argument validators. The contracts: CONTRACTS.translate, .access, .flush, .flushAll and
 * .flushLocal (ACCESS_CONTRACTS below); the rules of TLBs and flushes are flush.ts's.
 */
import type { Vpn } from '../address.ts';
import type { PtError } from '../errors.ts';
import type { RootId, SystemConfig } from '../state.ts';
import type { AccessKind, AccessMode } from '../system.ts';
import { KERNEL_PAGES_ARG, KERNEL_VPN_ARG, checkKernelPages, checkKernelVpn, checkRootIn, checkVpnFor, einval, ptError } from './args.ts';
import type { ContractsOf } from './contract.ts';

/** The roots of a system without the isolation capability. */
const INIT_ONLY: ReadonlySet<RootId> = new Set([0]);

/** translate's preconditions (EINVAL). Trusted: shared by model and impl, not checked by refinement. */
export function validateTranslate(config: SystemConfig, root: RootId, vpn: Vpn, roots: ReadonlySet<RootId> = INIT_ONLY): PtError | null {
  return checkRootIn(root, roots) ?? checkVpnFor(config, root, vpn);
}

function checkCpu(config: SystemConfig, cpu: number): PtError | null {
  return Number.isInteger(cpu) && cpu >= 0 && cpu < config.cpus ? null : ptError('EINVAL', 'cpu', `cpu ${cpu} is not in [0, ${config.cpus})`);
}

/** access's preconditions (EINVAL), in the order of its contract. Trusted: shared by model and impl, not checked by refinement. */
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

/** checkRootIn, checkVpnFor and checkCpu, as translate's, access's and flushLocal's contracts state them. */
const ROOT_IN_ARG = einval('root', 'not a root the state has (init_mm alone without the isolation capability)');
const VPN_FOR_ARG = einval('vpn', 'not an integer canonical page number, or in the user half for roots 0-2 (a process\'s roots walk both halves)');
const CPU_ARG = einval('cpu', 'not an integer in `[0, config.cpus)`');

const TLB_SOURCE = 'arch/x86/mm/tlb.c of gregkh/linux 399ec9ca';

export const ACCESS_CONTRACTS: ContractsOf<'translate' | 'access' | 'flush' | 'flushAll' | 'flushLocal'> = {
  translate: {
    signature: 'translate(root, vpn)',
    summary: 'The page walk (`lookup_address`): what `root` maps at `vpn`, as its tables say.',
    preconditions: [ROOT_IN_ARG, VPN_FOR_ARG, { errno: 'ENOENT', arg: 'vpn', when: '`vpn` is not mapped in the root\'s view (spec/roots.ts `rootView`)' }],
    post: ['`{leaf, pfn: leaf.pfn + (vpn - leaf.vpn)}`; nothing changes.'],
    linux: [],
    sources: ['arch/x86/mm/pat/set_memory.c: `lookup_address`'],
  },
  access: {
    signature: 'access(cpu, root, vpn, kind, mode)',
    summary: 'The MMU: a load, store or fetch through one CPU\'s TLB, and the page walk when it misses.',
    preconditions: [CPU_ARG, ROOT_IN_ARG, VPN_FOR_ARG, einval('kind', 'not r, w or x'), einval('mode', 'not kernel or user')],
    post: [
      'The TLB entry of (cpu, root) covering `vpn` is used if present (of several, as a stale 4K entry under a later 2M fill, the smallest) (`fromTlb: true`, even when stale: that is what a missed flush means); else the walk.',
      'The walk starts at the deepest paging-structure-cache entry of (cpu, root) whose span holds `vpn` (*Paging-structure caches*), else at the root: through a `current` entry it finds what the tables hold; through an `unlinked` or `freed` one it finds nothing (an unlinked table is empty; a freed frame is not a table, and L4 forbids the state), so `{fault: \'not-present\'}` and no fill. Not mapped → `{fault: \'not-present\'}` and no fill; mapped → the leaf is inserted into that CPU\'s TLB and every table entry above it (the levels `leafLevel(size)` .. `levels - 1`) into its paging-structure caches as `current`, replacing what was cached there.',
      'Then the permission check on the leaf\'s prot (Intel SDM §4.6, CR0.WP and CR4.SMEP set, as Linux runs): a read needs kernel mode or a user page; a write needs that and write; a kernel-mode fetch needs execKernel on a supervisor page; a user-mode fetch needs execUser. Failing it: `{fault: \'protection\'}` (a fill made by the walk stays). No other part of the state changes.',
    ],
    linux: [],
    sources: ['Intel SDM §4.6: access rights (CR0.WP, CR4.SMEP)'],
  },
  flush: {
    signature: 'flush(vpn, pages)',
    summary: '`flush_tlb_kernel_range` of `[vpn, vpn+pages)` on every CPU.',
    preconditions: [KERNEL_VPN_ARG, KERNEL_PAGES_ARG],
    post: [
      'More than 33 pages → as flushAll. Else on every CPU and root each TLB entry whose leaf intersects the range goes, every paging-structure cache is emptied, the obligations lose their pages in the range (the pieces keep their reason), and every pending table whose span intersects it is released (*Range flushes and the 33-page ceiling*, *Deferred table frees*).',
    ],
    linux: [],
    sources: [`${TLB_SOURCE}: \`flush_tlb_kernel_range\`, \`tlb_single_page_flush_ceiling\``],
  },
  flushAll: {
    signature: 'flushAll()',
    summary: '`flush_tlb_all`: every CPU\'s TLB and paging-structure caches emptied.',
    preconditions: [],
    post: ['Never fails; every TLB, paging-structure cache and obligation emptied, every pending table released.'],
    linux: [],
    sources: [`${TLB_SOURCE}: \`flush_tlb_all\``],
  },
  flushLocal: {
    signature: 'flushLocal(cpu, vpn, pages)',
    summary: '`flush_tlb_one_kernel` of each page on one CPU only, as kmap_local and the mermap flush.',
    preconditions: [CPU_ARG, KERNEL_VPN_ARG, KERNEL_PAGES_ARG],
    post: [
      'That CPU\'s TLB entries (every root) whose leaf intersects the range go and its paging-structure caches are emptied; every other CPU, the obligations and the pending tables are unchanged. No ceiling: kmap_local and the mermap flush one page at a time; and no obligation is discharged nor any pending table released, since the other CPUs may still cache them.',
    ],
    linux: [],
    sources: [`${TLB_SOURCE}: \`flush_tlb_one_kernel\``],
  },
};
