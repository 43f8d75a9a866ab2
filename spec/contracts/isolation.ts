/**
 * The isolation capability: processes with KPTI page-table pairs, pti_clone_pgtable, the
 * LDT remap and ASI restricted roots (PageTableSystem.isolation), with the argument
 * validators of its operations. Read from gregkh/linux 53c2f13c arch/x86/mm/pti.c
 * (__pti_set_user_pgtbl, pti_user_pagetable_walk_*, pti_clone_pgtable,
 * pti_clone_user_shared, pti_clone_kernel_text), 6bf94737 arch/x86/mm/init_64.c
 * (sync_global_pgds), arch/x86/kernel/ldt.c (write_ldt, map_ldt_struct,
 * map_ldt_struct_to_user, unmap_ldt_struct, free_ldt_struct), and for ASI bjackman/linux
 * 003868f6 arch/x86/mm/asi.c (asi_init, asi_map, asi_unmap, asi_clone_range,
 * asi_global_init). spec/roots.ts says which root mirrors which slots. The contracts:
 * CONTRACTS.ptiClone … CONTRACTS.setLdt (ISOLATION_CONTRACTS below); the roots, their
 * tables and TLBs, and what the profiles share: ISOLATION_RULES.
 */
import { PAGES, isCanonical, isKernelHalf, kernelLayout, lowerHalfEnd, vpnToHex, type Pfn, type Vpn } from '../address.ts';
import type { PtError } from '../errors.ts';
import type { Prot, SystemConfig } from '../state.ts';
import type { CloneLevel } from '../system.ts';
import { LDT_SLOT_PAGES } from '../roots.ts';
import { FRAMES_ARG, KERNEL_PAGES_ARG, KERNEL_VPN_ARG, checkKernelPages, checkKernelVpn, checkPfnRange, checkProt, einval, ptError } from './args.ts';
import type { ContractRule, ContractsOf, Precondition } from './contract.ts';

/** pid: an integer ≥ 1. Trusted: shared by model and impl, not checked by refinement. */
export function checkPid(pid: number): PtError | null {
  return Number.isInteger(pid) && pid >= 1 ? null : ptError('EINVAL', 'pid', `${pid} is not a process id (an integer ≥ 1)`);
}

/** vpn, pages of the user half. Trusted: shared by model and impl, not checked by refinement. */
export function checkUserRange(config: SystemConfig, vpn: Vpn, pages: number): PtError | null {
  if (!Number.isInteger(vpn) || vpn < 0 || !isCanonical(vpn, config.levels) || isKernelHalf(vpn, config.levels)) {
    return ptError('EINVAL', 'vpn', `${vpn} is not a page of the user half (below ${vpnToHex(lowerHalfEnd(config.levels))})`);
  }
  if (!Number.isInteger(pages) || pages < 1) return ptError('EINVAL', 'pages', `${pages} is not a page count ≥ 1`);
  if (vpn + pages > lowerHalfEnd(config.levels)) return ptError('EINVAL', 'pages', `range of ${pages} pages from ${vpnToHex(vpn)} runs past the end of the user half`);
  return null;
}

/** exitProcess's preconditions (EINVAL). Trusted: shared by model and impl, not checked by refinement. */
export function validateExitProcess(pid: number): PtError | null {
  return checkPid(pid);
}

/** mapUser's preconditions (EINVAL), in the order of its contract. Trusted: shared by model and impl, not checked by refinement. */
export function validateMapUser(config: SystemConfig, pid: number, vpn: Vpn, pfn: Pfn, pages: number, prot: Prot): PtError | null {
  return (
    checkPid(pid) ??
    checkUserRange(config, vpn, pages) ??
    checkPfnRange(config, pfn, pages) ??
    checkProt(prot) ??
    (prot.user ? null : ptError('EINVAL', 'prot', 'a user mapping must be user-accessible')) ??
    (prot.global ? ptError('EINVAL', 'prot', 'a user mapping is never global (user PTEs never carry _PAGE_GLOBAL)') : null)
  );
}

/** unmapUser's preconditions (EINVAL). Trusted: shared by model and impl, not checked by refinement. */
export function validateUnmapUser(config: SystemConfig, pid: number, vpn: Vpn, pages: number): PtError | null {
  return checkPid(pid) ?? checkUserRange(config, vpn, pages);
}

/** ptiClone's preconditions (EINVAL). Trusted: shared by model and impl, not checked by refinement. */
export function validatePtiClone(config: SystemConfig, vpn: Vpn, pages: number, level: CloneLevel): PtError | null {
  return (
    checkKernelVpn(config, vpn) ??
    checkKernelPages(vpn, pages) ??
    (level === 'pmd' || level === 'pte' ? null : ptError('EINVAL', 'level', `${String(level)} is not pmd or pte`))
  );
}

/** pageblock_nr_pages on x86-64 with 4K pages (pageblock_order = HPAGE_PMD_ORDER = 9). Trusted geometry. */
export const PAGEBLOCK_PAGES = PAGES['2M'];

/** asiMap's and asiUnmap's preconditions (EINVAL): a pageblock-aligned range of the direct map. Trusted: shared by model and impl, not checked by refinement. */
export function validateAsiRange(config: SystemConfig, vpn: Vpn, pages: number): PtError | null {
  const pageOffset = kernelLayout(config.levels).pageOffset;
  const end = pageOffset + config.frames;
  if (!Number.isInteger(vpn) || vpn < pageOffset || vpn >= end) return ptError('EINVAL', 'vpn', `${vpn} is not a page of the direct map [${vpnToHex(pageOffset)}, ${vpnToHex(end)})`);
  if ((vpn - pageOffset) % PAGEBLOCK_PAGES !== 0) return ptError('EINVAL', 'vpn', `${vpnToHex(vpn)} is not pageblock-aligned (${PAGEBLOCK_PAGES} pages)`);
  if (!Number.isInteger(pages) || pages < 1 || pages % PAGEBLOCK_PAGES !== 0) return ptError('EINVAL', 'pages', `${pages} is not a whole number of pageblocks (${PAGEBLOCK_PAGES} pages)`);
  if (vpn + pages > end) return ptError('EINVAL', 'pages', `range of ${pages} pages from ${vpnToHex(vpn)} runs past the direct map`);
  return null;
}

/** setLdt's preconditions (EINVAL). Trusted: shared by model and impl, not checked by refinement. */
export function validateSetLdt(config: SystemConfig, pid: number, pfn: Pfn, pages: number): PtError | null {
  return (
    checkPid(pid) ??
    checkPfnRange(config, pfn, Number.isInteger(pages) && pages >= 1 ? pages : 1) ??
    (Number.isInteger(pages) && pages >= 1 && pages <= LDT_SLOT_PAGES ? null : ptError('EINVAL', 'pages', `${pages} is not an LDT size in pages (1..${LDT_SLOT_PAGES})`))
  );
}

/** checkPid and checkUserRange, and the state's refusal of a pid, as the contracts state them. */
const PID_ARG = einval('pid', 'not an integer ≥ 1');
const NO_PROCESS: Precondition = { errno: 'ENOENT', arg: 'pid', when: 'no live process has it' };
const USER_RANGE_ARGS: readonly Precondition[] = [
  einval('vpn', 'not an integer page of the user half'),
  einval('pages', '< 1, or running past the user half'),
];
const ASI_RANGE_ARGS: readonly Precondition[] = [
  einval('vpn', 'not in the direct map `[__PAGE_OFFSET, __PAGE_OFFSET + frames)`, or not pageblock-aligned (512 pages: `VM_BUG_ON(!IS_ALIGNED(page_to_pfn(page), pageblock_nr_pages))`)'),
  einval('pages', '< 1, not a multiple of 512, or past the direct map'),
];
const ENOMEM: Precondition = { errno: 'ENOMEM', arg: 'tablePool', when: 'the tables the result needs exceed the pool' };
const STRICT_ONLY_EPERM = 'The same, without EPERM.';

const PTI = 'arch/x86/mm/pti.c of gregkh/linux 53c2f13c';
const ASI = 'arch/x86/mm/asi.c of bjackman/linux 003868f6';
const LDT = 'arch/x86/kernel/ldt.c';
const SYNC = 'arch/x86/mm/init_64.c of gregkh/linux 6bf94737: `sync_global_pgds`';

export const ISOLATION_CONTRACTS: ContractsOf<'ptiClone' | 'asiMap' | 'asiUnmap' | 'createProcess' | 'exitProcess' | 'mapUser' | 'unmapUser' | 'setLdt'> = {
  ptiClone: {
    signature: 'ptiClone(vpn, pages, level)',
    summary: '`pti_clone_pgtable`: init_mm\'s kernel mappings of a range copied into root 1, the kernel part every KPTI user copy shares.',
    preconditions: [
      KERNEL_VPN_ARG,
      KERNEL_PAGES_ARG,
      einval('level', 'not pmd or pte'),
      { errno: 'EPERM', arg: 'vpn', profile: 'strict', when: 'a cloned page would lie outside `ptiAllowlist` (K2), or another `STRICT_POLICY` invariant breaks' },
      ENOMEM,
    ],
    post: [
      'The units cloned, over init_mm\'s present leaves (holes are skipped, as `pud_none` and `pmd_none` are; non-present entries are not cloned):',
      '*Level pmd*: every 2M block that meets the range and holds a present leaf: the whole block (a 2M leaf as it is, a 1G leaf\'s 2M piece as a 2M leaf, 4K leaves as they are; the kernel copies the pmd entry, which for a PTE table shares it: ptspec copies its entries, see the linux profile).',
      '*Level pte*: every 2M block met whose init_mm entry is a 2M or 1G leaf, whole as above (`pmd_leaf` is cloned at PMD level whatever the level asked); else each present 4K leaf inside the range.',
      'In root 1, each unit replaces what root 1 mapped on its pages (a root-1 leaf that meets a unit is removed whole first: `pti_user_pagetable_walk_pte` clears a large PMD on the late_text path); strict then flushes the units\' pages (a kernel range flush), so no user copy keeps a stale translation. Root 1 never holds a 1G leaf.',
    ],
    linux: [
      'No EPERM, no flush; and, with X86_FEATURE_PGE, `_PAGE_GLOBAL` is set on every init_mm leaf a unit copies (`pmd_set_flags` / `pte_set_flags` on the kernel\'s entry; the whole leaf, a 1G one too) and on the copy.',
      'Where the kernel shares a PTE table (a PMD-level clone of a 4K-mapped block), later changes to that block\'s PTEs reach every user copy in the kernel; ptspec copies the PTEs, so under linux such a block keeps the translation it had when cloned (a stated difference: ptspec\'s linux K3 findings in a block cloned while 4K-mapped are about the copy, not the kernel).',
    ],
    sources: [`${PTI}: \`pti_clone_pgtable\`, \`pti_user_pagetable_walk_pte\`, \`pti_user_pagetable_walk_pmd\`, \`pti_clone_user_shared\`, \`pti_clone_kernel_text\``],
  },
  asiMap: {
    signature: 'asiMap(vpn, pages)',
    summary: '`asi_map` (the ASI series): init_mm\'s direct map of a range copied into root 2, the restricted direct map.',
    preconditions: [
      ...ASI_RANGE_ARGS,
      { errno: 'EPERM', arg: 'vpn', profile: 'strict', when: 'the range\'s init_mm leaves map a `sensitive` frame (A1), or another `STRICT_POLICY` invariant breaks' },
      ENOMEM,
    ],
    post: [
      'For each present init_mm leaf meeting the range, root 2 maps the same pages to the same frames with the same prot, replacing what it mapped there, in leaves of at most 2M (a 1G leaf as 2M leaves: the restricted physmap stops at PMD level). No flush.',
    ],
    linux: [
      'A 2M block init_mm maps with 4K leaves is skipped (`asi_map`\'s WARN_ONCE "ASI mapping at level %d, unrestricted at %d"; KernelEvent `asi-level`, once per block, with the block\'s vpn, 512 pages and pfn = vpn - `__PAGE_OFFSET`, printed only when the copy succeeds: a failed asiMap changes and prints nothing); no EPERM.',
    ],
    sources: [`${ASI}: \`asi_map\`, \`asi_clone_range\`, \`asi_global_init\``],
  },
  asiUnmap: {
    signature: 'asiUnmap(vpn, pages)',
    summary: '`asi_unmap` (the ASI series): a range taken out of root 2, the restricted direct map.',
    preconditions: ASI_RANGE_ARGS,
    post: [
      'Root 2 loses every page of the range (`vunmap_pgd_range` on the ASI pgd; its leaves never straddle a pageblock); a kernel range flush of the range (`flush_tlb_kernel_range`); strict frees the tables it emptied in that flush. Never ENOENT: an empty range is a flush.',
    ],
    linux: ['The tables it emptied stay (vunmap keeps tables).'],
    sources: [`${ASI}: \`asi_unmap\``],
  },
  createProcess: {
    signature: 'createProcess() → {pid, kernelRoot, userRoot, asiRoot}',
    summary: '`mm_alloc` and `pgd_alloc`, with the KPTI user copy and the ASI root: a new process and its three roots.',
    preconditions: [{ errno: 'ENOMEM', arg: 'tablePool', when: 'the three top-level tables do not fit' }],
    post: [
      'pid = 1 + the largest pid this system ever gave (pids are never reused); the three roots of `processRootIds(pid)` exist, with no own leaves: the process-kernel root mirrors init_mm, the user copy root 1, the asi root the ASI global root (and its process\'s empty user half). Strict mirrors every slot.',
      'Both profiles sync new init_mm and ASI global slots into every process (`sync_global_pgds`; ASI preallocates them).',
    ],
    linux: [
      'The user copy mirrors only the slots of root 1 that hold an entry now; a slot root 1 fills later is `diverged` in it (pti.c: "Top-level entries added to init_mm\'s usermode pgd after boot will not be automatically propagated to other mms").',
    ],
    sources: ['arch/x86/mm/pgtable.c: `pgd_alloc`', `${PTI}: \`__pti_set_user_pgtbl\``, SYNC, `${ASI}: \`asi_init\``],
  },
  exitProcess: {
    signature: 'exitProcess(pid)',
    summary: '`exit_mmap`, `pgd_free` and `destroy_context_ldt`: a process and its three roots gone.',
    preconditions: [PID_ARG, NO_PROCESS],
    post: [
      'Its three roots are gone; every TLB and paging-structure-cache entry of them on every CPU is gone (`exit_mmap`\'s flush; the mm\'s PCIDs die with it); its tables are freed (user half, LDT slot, three top-level ones). Frames keep their use: the LDT\'s go back to their owner (see setLdt).',
    ],
    linux: [],
    sources: ['mm/mmap.c: `exit_mmap`', 'arch/x86/mm/pgtable.c: `pgd_free`', `${LDT}: \`free_ldt_pgtables\``],
  },
  mapUser: {
    signature: 'mapUser(pid, vpn, pfn, pages, prot)',
    summary: 'mmap and the fault path: user-half pages of a process, mirrored into its KPTI copies.',
    preconditions: [
      PID_ARG,
      ...USER_RANGE_ARGS,
      { ...FRAMES_ARG, when: `as for map: ${FRAMES_ARG.when}` },
      einval('prot', 'as for map, and not user (`user = false`) or global (user PTEs are never `_PAGE_GLOBAL`)'),
      NO_PROCESS,
      { errno: 'EEXIST', arg: 'vpn', when: 'a page of the range is mapped in the user half' },
      {
        errno: 'EPERM', arg: 'prot', profile: 'strict',
        when: 'the first `STRICT_POLICY` invariant the result breaks (S12, P3, P4, P2 as a writing side of a frame the kernel executes, T5, D4 for a free frame, P7 for none: the user half is not P7\'s; P1 exempts it)',
      },
      ENOMEM,
    ],
    post: [
      'The range is mapped as map would place it (largest leaves alignment allows, no cap) in the user copy with `prot`, and in the process-kernel root with the same leaves NX-poisoned (`execKernel = execUser = false`: `__pti_set_user_pgtbl` sets `_PAGE_NX` on the kernel copy\'s user pgd entries); the asi root mirrors the latter. No flush.',
    ],
    linux: [STRICT_ONLY_EPERM],
    sources: [`${PTI}: \`__pti_set_user_pgtbl\``],
  },
  unmapUser: {
    signature: 'unmapUser(pid, vpn, pages)',
    summary: 'munmap (`zap_page_range`, `flush_tlb_mm_range`, `free_pgtables`): user-half pages of a process unmapped from both KPTI copies.',
    preconditions: [
      PID_ARG,
      ...USER_RANGE_ARGS,
      NO_PROCESS,
      { errno: 'ENOENT', arg: 'vpn', when: 'nothing in the range is mapped' },
      { errno: 'ENOMEM', arg: 'tablePool', when: 'splitting a huge leaf the range covers in part needs a table' },
    ],
    post: [
      'Both copies lose every page of the range (a huge leaf straddling an end is split first, as zap splits a THP); a process flush of the range; the tables it emptied are freed after that flush (`free_pgtables`). Both profiles.',
    ],
    linux: [],
    sources: ['mm/memory.c: `zap_page_range`, `free_pgtables`', 'arch/x86/mm/tlb.c: `flush_tlb_mm_range`'],
  },
  setLdt: {
    signature: 'setLdt(pid, pfn, pages)',
    summary: '`modify_ldt`\'s `write_ldt` with PTI (`map_ldt_struct`, `install_ldt`, `unmap_ldt_struct`, `free_ldt_struct`): a process\'s new LDT mapped in its LDT remap slot, the old one unmapped.',
    preconditions: [
      PID_ARG,
      { ...FRAMES_ARG, when: `as for map: ${FRAMES_ARG.when}` },
      einval('pages', 'not an integer in `[1, 16]`'),
      NO_PROCESS,
      { errno: 'ENOENT', arg: 'pfn', when: 'a frame of the range is not `data` (the LDT\'s pages come from the page allocator)' },
      { errno: 'EBUSY', arg: 'pfn', when: 'a frame of the range holds the current LDT of a process' },
      {
        errno: 'EPERM', arg: 'pfn', profile: 'strict',
        when: 'the first `STRICT_POLICY` invariant the new mapping breaks (a frame removed from the direct map, P7; one the direct map maps with another memory type, T5: the kernel\'s `get_zeroed_page` never hands out either)',
      },
      { errno: 'ENOMEM', arg: 'tablePool', when: 'the process\'s first LDT needs the LDT slot\'s tables' },
    ],
    post: [
      'The new LDT is mapped in the LDT slot the current one does not use (slot 0 for a first LDT: `old_ldt ? !old_ldt->slot : 0`) of the process-kernel root, 4K leaves with `LDT_PROT`, at `ldtSlotVpn(slot) + i → pfn + i`; the user copy mirrors it.',
      'Then the old LDT\'s pages are unmapped from its slot, a process flush of that slot\'s range, and its frames go back to their owner (`unmap_ldt_struct`; the kernel\'s `free_ldt_struct` is the owner\'s freeFrames after setLdt returns: ptspec\'s LDT pages are allocated and freed by the caller, so strict refuses a freeFrames of a frame an LDT slot still maps, D4, and linux frees it, a K5 finding).',
      'The LDT slot\'s tables stay until exitProcess (`free_ldt_pgtables` runs at exit). Both profiles.',
    ],
    linux: [STRICT_ONLY_EPERM],
    sources: [`${LDT}: \`write_ldt\`, \`map_ldt_struct\`, \`map_ldt_struct_to_user\`, \`install_ldt\`, \`unmap_ldt_struct\`, \`free_ldt_struct\`, \`free_ldt_pgtables\``],
  },
};

export const ISOLATION_RULES: readonly ContractRule[] = [
  {
    id: 'isolation-roots',
    title: 'Roots (isolation capability)',
    paragraphs: [
      'A system with the capability has from boot root 0 (init_mm), root 1 (`kernel-user`, swapper_pg_dir\'s user half: the PTI clones) and root 2 (`asi-global`: the restricted direct map), whose top-level tables are part of init_mm\'s (swapper_pg_dir is an order-1 pair; `asi_global_nonsensitive_pgd` is static) and count in no table total. Process p has roots 3p (`process-kernel`, its pgd), 3p+1 (`process-user`, the KPTI user copy) and 3p+2 (`asi`), each with `pid: p`. spec/roots.ts says which root mirrors which slots.',
    ],
    sources: [`${PTI}: \`pti_clone_user_shared\`, \`pti_clone_kernel_text\``, `${ASI}: \`asi_global_init\``],
  },
  {
    id: 'isolation-tables',
    title: 'Tables (isolation capability: ENOMEM, tablesInUse)',
    paragraphs: [
      '`tablesInUse` = `tableFootprint`(init_mm\'s leaves and non-present entries) + Σ over roots 1, 2 and every process-kernel root of (`tableFootprint`(its own leaves) - 1) + 3 per process (its three top-level tables) + the pending and (linux) kept tables.',
      'A process-user root\'s user half and LDT slot are its process-kernel root\'s tables (the KPTI pair shares every table below the pgd), so they count once; an asi root has no tables of its own.',
    ],
    sources: [],
  },
  {
    id: 'isolation-tlbs',
    title: 'TLBs (isolation capability)',
    paragraphs: [
      'A kernel range flush (flush, and every flush the contracts promise) drops the TLB entries of *every* root meeting the range and empties every paging-structure cache. A process flush (`flush_tlb_mm_range`) drops, on every CPU, the TLB entries of that process\'s three roots meeting the range and every paging-structure-cache entry of those roots; it pays no obligation.',
      'translate and access take any root the state has (EINVAL root otherwise) and walk its view (`rootView`); access in the user half needs no kernel vpn. Map, unmap, split, collapse and protect edit init_mm only (EINVAL root for any other).',
    ],
    sources: [],
  },
  {
    id: 'isolation-profiles',
    title: 'What the profiles share (isolation capability)',
    paragraphs: [
      'Both keep the KPTI pair\'s user halves equal but for NX (K1), never map a user page global, never let a mirrored slot diverge but for linux\'s root-1 slots (K4), and unmap and flush an old LDT before freeing it (K5).',
      'Strict adds the refusals: the allowlist (K2), global clones kept identical (K3: a core operation that would change a global page root 1 maps is EPERM), sensitive frames out of restricted roots (A1) and restricted mappings kept identical to init_mm\'s (A2: a core operation that would change a page root 2 maps is EPERM).',
    ],
    sources: [],
  },
];
