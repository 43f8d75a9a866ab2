/**
 * The kernel's page-table users as clients of the library (PageTableSystem.clients): what
 * each asks of it and what it keeps (spec/clients.ts), so a library design can be held to
 * all of them, with the argument validators of their operations. Read from gregkh/linux
 * 04aa71da mm/vmalloc.c; mm/highmem.c and include/linux/highmem-internal.h (torvalds/linux
 * 0bf13a84); the __GFP_UNMAPPED series' mm/mermap.c (linux-mm/linux-mm b7f5c72f) and
 * mm/page_alloc.c (bjackman/linux a3c87cc7); mm/memory.c (gregkh/linux bb1d93ee);
 * mm/pagewalk.c (gregkh/linux 3c0391b9 and the newest stored copy); mm/mmu_gather.c
 * (torvalds/linux 06d07429) and include/asm-generic/tlb.h (torvalds/linux 0758cd83). The
 * contracts: CONTRACTS.vmalloc … CONTRACTS.zapPageRange (CLIENT_CONTRACTS below; memory
 * hotplug is hotplug.ts); the rules every client keeps: CLIENT_RULES.
 */
import { isAligned, PAGES, pfnSpan, vpnToHex, type Pfn, type Vpn } from '../address.ts';
import { MERMAP_USABLE_PAGES, vmallocRegion } from '../clients.ts';
import type { PtError } from '../errors.ts';
import type { Prot, SystemConfig } from '../state.ts';
import type { VmallocOptions } from '../system.ts';
import { FRAMES_ARG, FRAME_ARG, FRAME_COUNT_ARG, KERNEL_PAGES_ARG, KERNEL_VPN_ARG, PROT_ARG, checkKernelPages, checkKernelVpn, checkPfnRange, einval, ptError } from './args.ts';
import type { ContractRule, ContractsOf, Precondition } from './contract.ts';
import { validateFrames } from './frames.ts';
import { validateUnmapUser } from './isolation.ts';
import { validateMap } from './map.ts';

/** The largest walk: a gigabyte of pages. Trusted: shared by model and impl, not checked by refinement. */
export const WALK_MAX_PAGES = PAGES['1G'];

/** cpu: one of the machine's CPUs. Trusted: shared by model and impl, not checked by refinement. */
export function checkCpu(config: SystemConfig, cpu: number): PtError | null {
  return Number.isInteger(cpu) && cpu >= 0 && cpu < config.cpus ? null : ptError('EINVAL', 'cpu', `${cpu} is not a CPU (0..${config.cpus - 1})`);
}

/** vpn: a page of the vmalloc area. Trusted: shared by model and impl, not checked by refinement. */
function checkVmallocVpn(config: SystemConfig, vpn: Vpn): PtError | null {
  const r = vmallocRegion(config.levels);
  if (!Number.isInteger(vpn) || vpn < r.vpn || vpn >= r.vpn + r.pages) return ptError('EINVAL', 'vpn', `${vpn} is not a page of the vmalloc area [${vpnToHex(r.vpn)}, ${vpnToHex(r.vpn + r.pages)})`);
  return null;
}

/** vmalloc's preconditions that need no state (EINVAL), in the order of its contract. Trusted: shared by model and impl, not checked by refinement. */
export function validateVmalloc(config: SystemConfig, vpn: Vpn, pfn: Pfn, pages: number, opts: VmallocOptions): PtError | null {
  const r = vmallocRegion(config.levels);
  const huge = opts.huge;
  return (
    checkVmallocVpn(config, vpn) ??
    (huge && !isAligned(vpn, PAGES['2M']) ? ptError('EINVAL', 'vpn', `${vpnToHex(vpn)} is not 2M-aligned, as a huge vmalloc area is`) : null) ??
    (!Number.isInteger(pages) || pages < 1 ? ptError('EINVAL', 'pages', `${pages} is not a page count ≥ 1`) : null) ??
    (vpn + pages > r.vpn + r.pages ? ptError('EINVAL', 'pages', `${pages} pages from ${vpnToHex(vpn)} run past VMALLOC_END`) : null) ??
    (huge && pages % PAGES['2M'] !== 0 ? ptError('EINVAL', 'pages', `${pages} is not a whole number of 2M pages, as a huge vmalloc area is`) : null) ??
    checkPfnRange(config, pfn, pages) ??
    (huge && !isAligned(pfn, PAGES['2M']) ? ptError('EINVAL', 'pfn', `frames ${pfnSpan(pfn, pages)} are not 2M-aligned, as a huge area's order-9 pages are`) : null)
  );
}

/** vfree's preconditions that need no state (EINVAL). Trusted: shared by model and impl, not checked by refinement. */
export function validateVfree(config: SystemConfig, vpn: Vpn): PtError | null {
  return checkVmallocVpn(config, vpn);
}

/** kmapLocal's preconditions (EINVAL). Trusted: shared by model and impl, not checked by refinement. */
export function validateKmapLocal(config: SystemConfig, cpu: number, pfn: Pfn): PtError | null {
  return checkCpu(config, cpu) ?? checkPfnRange(config, pfn, 1);
}

/** kunmapLocal's and mermapPut's preconditions (EINVAL). Trusted: shared by model and impl, not checked by refinement. */
export function validateCpuPage(config: SystemConfig, cpu: number, vpn: Vpn): PtError | null {
  return checkCpu(config, cpu) ?? checkKernelVpn(config, vpn);
}

/** mermapGet's preconditions (EINVAL). Trusted: shared by model and impl, not checked by refinement. */
export function validateMermapGet(config: SystemConfig, cpu: number, pfn: Pfn, pages: number): PtError | null {
  const count = Number.isInteger(pages) && pages >= 1 ? pages : 1;
  return (
    checkCpu(config, cpu) ??
    checkPfnRange(config, pfn, count) ??
    (Number.isInteger(pages) && pages >= 1 && pages <= MERMAP_USABLE_PAGES ? null : ptError('EINVAL', 'pages', `${pages} is not a mermap size (1..${MERMAP_USABLE_PAGES} pages)`))
  );
}

/** allocUnmapped's preconditions (EINVAL), as allocFrames'. Trusted: shared by model and impl, not checked by refinement. */
export const validateAllocUnmapped = validateFrames;

/** applyToPageRange's preconditions that need no state (EINVAL), as map's. Trusted: shared by model and impl, not checked by refinement. */
export function validateApply(config: SystemConfig, vpn: Vpn, pages: number, pfn: Pfn, prot: Prot): PtError | null {
  return validateMap(config, 0, vpn, pfn, pages, prot);
}

/** zapPageRange's preconditions (EINVAL), as unmapUser's. Trusted: shared by model and impl, not checked by refinement. */
export const validateZap = validateUnmapUser;

/** walkPageRange's preconditions (EINVAL). Trusted: shared by model and impl, not checked by refinement. */
export function validateWalk(config: SystemConfig, vpn: Vpn, pages: number): PtError | null {
  return (
    checkKernelVpn(config, vpn) ??
    checkKernelPages(vpn, pages) ??
    (pages > WALK_MAX_PAGES ? ptError('EINVAL', 'pages', `${pages} pages: a walk covers at most ${WALK_MAX_PAGES}`) : null)
  );
}

/** checkCpu and checkVmallocVpn, as the contracts state them. */
const CPU_ARG = einval('cpu', 'not one of the machine\'s CPUs (an integer in `[0, config.cpus)`)');
const VMALLOC_VPN = 'not a page of the vmalloc area (spec/clients.ts `vmallocRegion`)';
const ENOMEM: Precondition = { errno: 'ENOMEM', arg: 'tablePool', when: 'the tables the result needs exceed the pool' };

const VMALLOC = 'mm/vmalloc.c of gregkh/linux 04aa71da';
const HIGHMEM = 'mm/highmem.c, and include/linux/highmem-internal.h of torvalds/linux 0bf13a84 (without CONFIG_HIGHMEM `kmap_local_page` is `page_address`)';
const MERMAP = 'mm/mermap.c of the __GFP_UNMAPPED series (linux-mm/linux-mm b7f5c72f)';

export const CLIENT_CONTRACTS: ContractsOf<
  'vmalloc' | 'vfree' | 'vmUnmapAliases' | 'kmapLocal' | 'kunmapLocal' | 'mermapGet' | 'mermapPut' | 'allocUnmapped' | 'applyToPageRange' | 'walkPageRange' | 'zapPageRange'
> = {
  vmalloc: {
    signature: 'vmalloc(vpn, pfn, pages, {huge, resetPerms})',
    summary: '`__vmalloc_node_range` (`alloc_pages`, `vmap_pages_range`; `VM_ALLOW_HUGE_VMAP`, `VM_FLUSH_RESET_PERMS`): frames allocated and mapped in the vmalloc area.',
    preconditions: [
      einval('vpn', `${VMALLOC_VPN}; with \`huge\`, not 2M-aligned (the allocator aligns a huge area to PMD_SIZE)`),
      einval('pages', '< 1, or running past VMALLOC_END; with `huge`, not a multiple of 512 (the size is rounded up to `1 << PMD_SHIFT`)'),
      einval('pfn', '`[pfn, pfn+pages)` not in memory; with `huge`, not 2M-aligned (order-9 pages)'),
      { errno: 'EBUSY', arg: 'vpn', when: 'the range meets a live or a lazily freed vmalloc area (the vmap allocator hands out neither until the purge)' },
      { errno: 'EEXIST', arg: 'vpn', when: 'a page of the range has an entry in init_mm (a plain map there)' },
      { errno: 'EBUSY', arg: 'pfn', when: 'a frame could not be allocated as allocFrames would refuse it' },
      { errno: 'EPERM', arg: 'prot', profile: 'strict', when: 'the result breaks a `STRICT_POLICY` invariant' },
      ENOMEM,
    ],
    post: [
      'The frames are allocated as allocFrames does (they become data); the range is mapped as `map(0, vpn, pfn, pages, PAGE_KERNEL, {maxPage: huge ? \'2M\' : \'4K\'})` maps it (no flush); the area is live. Both profiles.',
    ],
    linux: [],
    sources: [`${VMALLOC}: \`__vmalloc_node_range_noprof\``],
  },
  vfree: {
    signature: 'vfree(vpn)',
    summary: '`vfree` (`vunmap_range_noflush`, `free_vmap_area_noflush`, `vm_reset_perms`, `__free_page`, the lazy purge): a vmalloc area unmapped and its frames freed.',
    preconditions: [
      einval('vpn', VMALLOC_VPN),
      { errno: 'ENOENT', arg: 'vpn', when: 'no live area starts at `vpn` (linux prints `vfree-nonexistent`)' },
      {
        errno: 'EPERM', arg: 'vpn', profile: 'strict',
        when: 'freeing the frames would break, in `STRICT_POLICY` order: D4 (a frame mapped by something but the area and its direct-map page), D6 (a frame removed from the direct map, unless `resetPerms`, which restores it), D7 (a frame cached at a page other than the area\'s and its direct-map page), C1 (a frame of a stale mermap allocation); judged on the state before, nothing changed; then what its unmap (and `vm_reset_perms`\'s rewrite of the direct map) leaves, judged as any operation\'s result (a K3 or A2 an isolation root\'s copy makes, say), before the free. Its steps are not judged one by one: `vm_reset_perms`\'s removal of the direct map is restored by the same vfree',
      },
      {
        errno: 'ENOMEM', arg: 'tablePool', profile: 'strict',
        when: 'a leaf straddles the area\'s edge (a collapse made it), or `resetPerms` must split the direct map, and the pool has no table; judged as every operation\'s, before its own flush: the tables its purge will release still count',
      },
    ],
    post: [
      'In this order:',
      '1. `vunmap_range_noflush` of the area: every entry in it goes (as unmap with `{flush: false}`: owed, the emptied tables pending); the area moves from live to the purge list (a `LazyArea`).',
      '2. `resetPerms` (`vm_reset_perms`, both profiles): `set_direct_map_invalid_noflush` of the frames; then the purge (6) over the lazy areas and the frames\' direct-map range, one `flush_tlb_kernel_range` of `[lowest start, highest end)` of all of them; then `set_direct_map_default_noflush` of the frames.',
      '3. Not `resetPerms`: strict flushes the area\'s range (`flush_tlb_kernel_range`) so that no TLB may still reach the pages it frees next (C1).',
      '4. The frames are freed as freeFrames frees them (they become free).',
      '5. If the purge list\'s pages now exceed `lazyMaxPages(cpus)`, the purge (6) runs (`drain_vmap_work`: the kernel schedules it; ptspec runs it at once).',
      '6. The purge (`__purge_vmap_area_lazy`): when the list is not empty, one `flush_tlb_kernel_range` of `[lowest start, highest end)` of its areas (the ceiling makes it `flush_tlb_all` when longer than 33 pages); the list is emptied.',
    ],
    linux: [
      'Step 1 keeps the tables it empties (the linux profile keeps tables).',
      'Step 2: linux ignores the result of the two direct-map steps (`set_area_direct_map` returns nothing): what they did stays.',
      'Step 3: linux does not flush the area (the purge will, later: the pages go back with the range still owed, the window the kernel accepts, C1 and D7 findings).',
    ],
    sources: [`${VMALLOC}: \`vfree\`, \`remove_vm_area\`, \`free_unmap_vmap_area\`, \`free_vmap_area_noflush\`, \`lazy_max_pages\`, \`__purge_vmap_area_lazy\`, \`vm_reset_perms\`, \`set_area_direct_map\``],
  },
  vmUnmapAliases: {
    signature: 'vmUnmapAliases()',
    summary: '`vm_unmap_aliases` (`__purge_vmap_area_lazy`): the lazily freed vmalloc areas purged.',
    preconditions: [],
    post: ['Always ok: the purge (vfree\'s step 6). ptspec has no vmap blocks (`vm_map_ram`), so their dirty ranges add nothing.'],
    linux: [],
    sources: [`${VMALLOC}: \`_vm_unmap_aliases\`, \`__purge_vmap_area_lazy\``],
  },
  kmapLocal: {
    signature: 'kmapLocal(cpu, pfn) → vpn',
    summary: '`kmap_local_page` (`__kmap_local_pfn_prot`; `page_address` on x86-64): one frame mapped for its CPU alone, in its next kmap_local slot.',
    preconditions: [
      CPU_ARG,
      { ...FRAME_ARG, when: 'not a frame of memory' },
      { errno: 'EBUSY', arg: 'cpu', profile: 'strict', when: 'the CPU holds `KM_MAX_IDX` slots (the kernel BUG_ONs)' },
      { errno: 'EEXIST', arg: 'vpn', profile: 'strict', when: 'the next slot already has an entry' },
      { errno: 'EPERM', arg: 'pfn', profile: 'strict', when: 'the 4K PAGE_KERNEL leaf breaks a `STRICT_POLICY` invariant (P7 for a frame out of the direct map)' },
      { ...ENOMEM, profile: 'strict' },
    ],
    post: [
      'The library\'s kmap_local for every page, as HIGHMEM\'s `__kmap_local_pfn_prot`: slot idx = the CPU\'s slots in use; vpn = `kmapSlotVpn(cpu, idx)` is mapped to pfn with PAGE_KERNEL, one 4K leaf; the slot is pushed. No flush.',
    ],
    linux: [
      'x86-64 has no CONFIG_HIGHMEM: `kmap_local_page` is `page_address`. It returns the frame\'s direct-map page, and nothing changes (a page removed from the direct map is then not reachable there: the mermap exists for it).',
    ],
    sources: [`${HIGHMEM}: \`__kmap_local_pfn_prot\``],
  },
  kunmapLocal: {
    signature: 'kunmapLocal(cpu, vpn)',
    summary: '`kunmap_local` (`kunmap_local_indexed`, `flush_tlb_one_kernel`): a CPU\'s top kmap_local slot released.',
    preconditions: [
      CPU_ARG,
      einval('vpn', 'not a kernel page'),
      { errno: 'ENOENT', arg: 'vpn', profile: 'strict', when: '`vpn` is not a slot the CPU holds' },
      { errno: 'EINVAL', arg: 'vpn', profile: 'strict', when: 'it is, but not the top one (the kernel WARNs and clears the top slot instead; strict refuses)' },
    ],
    post: [
      'The slot\'s leaf is removed and `flush_tlb_one_kernel` runs on that CPU only (its TLB entries at vpn and its paging-structure caches go; obligations stay); the slot is popped.',
      'An emptied PTE table waits for a flush of every CPU (pending), whose paging-structure caches may hold it (every CPU\'s slots share it): a flush of the slot is owed for it, so the next flush there frees it. (The kernel\'s kmap_local PTEs on 32-bit are preallocated and never freed; a library that frees emptied tables must not let unlinked ones pile up, one pair a kmap/kunmap cycle, with nothing owed to release them.)',
    ],
    linux: ['Nothing: x86-64\'s `__kunmap_local` does nothing.'],
    sources: [`${HIGHMEM}: \`kunmap_local_indexed\``, 'arch/x86/mm/tlb.c: `flush_tlb_one_kernel`'],
  },
  mermapGet: {
    signature: 'mermapGet(cpu, pfn, pages) → vpn',
    summary: '`mermap_get` of the __GFP_UNMAPPED series (`arch_mermap_flush_tlb` when a slice is reused): frames, possibly out of the direct map, mapped for one CPU alone. Both profiles run the series\' code.',
    preconditions: [
      CPU_ARG,
      { ...FRAMES_ARG, when: '`[pfn, pfn+pages)` not in memory' },
      einval('pages', '< 1 or more than `MERMAP_USABLE_PAGES`'),
      { errno: 'EBUSY', arg: 'cpu', when: 'the CPU holds `MERMAP_ALLOCS` allocations' },
      {
        errno: 'EBUSY', arg: 'cpu',
        when: 'no room: with next the bump pointer and end = slice + `MERMAP_USABLE_PAGES`, when next + pages > end the room is from the end of the highest allocation in use (the slice start if none), and that is too small too. Decided before anything changes (the series flushes, then fails)',
      },
      { errno: 'EEXIST', arg: 'vpn', when: 'a page of the range has an entry' },
      { errno: 'EPERM', arg: 'pfn', profile: 'strict', when: 'the leaves break a `STRICT_POLICY` invariant (P7 exempts the mermap)' },
      { ...ENOMEM, when: 'the tables the leaves need exceed the pool (the series pre-populates the tables; ptspec\'s library may have to allocate them)' },
    ],
    post: [
      'If next + pages > end: next = that room\'s start and `arch_mermap_flush_tlb` runs, a full flush of this CPU only (every TLB and paging-structure-cache entry of it goes, its stale list empties; obligations stay).',
      'Then `[next, next+pages)` maps `[pfn, +pages)` with 4K leaves of PAGE_KERNEL without global (`arch_mermap_pgprot_allowed` refuses a global one); the allocation is held; next += pages; returns the first page.',
    ],
    linux: [],
    sources: [`${MERMAP}: \`mermap_get\`, \`arch_mermap_flush_tlb\`, \`arch_mermap_pgprot_allowed\``],
  },
  mermapPut: {
    signature: 'mermapPut(cpu, vpn)',
    summary: '`mermap_put` of the __GFP_UNMAPPED series: a CPU\'s mermap allocation released, without a flush.',
    preconditions: [CPU_ARG, einval('vpn', 'not a kernel page'), { errno: 'ENOENT', arg: 'vpn', when: 'the CPU holds no allocation starting there' }],
    post: [
      'Its leaves are removed, no flush (the TLB of that CPU alone may still hold them); the allocation moves to the CPU\'s stale list; emptied tables pending, a flush of the allocation owed for them as for kunmapLocal\'s.',
    ],
    linux: ['Emptied tables stay linked and nothing is owed: the series pre-populates the mermap\'s tables, never freed.'],
    sources: [`${MERMAP}: \`mermap_put\``],
  },
  allocUnmapped: {
    signature: 'allocUnmapped(pfn, count)',
    summary: '`alloc_pages(__GFP_UNMAPPED)` (`__rmqueue_direct_map`): frames from pageblocks held out of the direct map. Both profiles.',
    preconditions: [
      FRAME_ARG,
      FRAME_COUNT_ARG,
      {
        errno: 'EBUSY', arg: 'pfn',
        when: 'a frame is neither a free frame of an unmapped pageblock nor in a pageblock the pool can take: one not unmapped whose frames are all free and in the direct map',
      },
      { errno: 'EPERM', arg: 'pfn', profile: 'strict', when: 'the direct-map removal of a pageblock taken breaks a `STRICT_POLICY` invariant' },
      { errno: 'ENOMEM', arg: 'tablePool', when: 'the direct-map removal of a pageblock taken needs a table the pool does not have' },
    ],
    post: [
      'Every pageblock the range meets that is not unmapped is taken, all together (`__rmqueue_direct_map`): `set_direct_map_invalid_noflush` of its frames, then one `flush_tlb_kernel_range` of their direct-map range, then it is flagged unmapped (its frames stay free, with `noDirectMap`: the pool\'s). Then the frames become data.',
    ],
    linux: ['`set_direct_map_valid_noflush` is CPA, not atomic: on its ENOMEM what it changed stays, and no pageblock is flagged or flushed.'],
    sources: ['mm/page_alloc.c of the __GFP_UNMAPPED series (bjackman/linux a3c87cc7): `__rmqueue_direct_map`'],
  },
  applyToPageRange: {
    signature: 'applyToPageRange(vpn, pages, pfn, prot)',
    summary: '`apply_to_page_range` with create and a populate callback (as `kasan_populate_vmalloc_pte`): the pages of a range without an entry filled with 4K leaves.',
    preconditions: [
      KERNEL_VPN_ARG,
      KERNEL_PAGES_ARG,
      FRAMES_ARG,
      PROT_ARG,
      {
        errno: 'EINVAL', arg: 'vpn',
        when: 'the range meets a huge leaf (or a non-present huge entry): the kernel\'s `WARN_ON_ONCE(p?d_leaf)` and -EINVAL; strict refuses before any change',
      },
      { errno: 'EPERM', arg: 'prot', profile: 'strict', when: 'the result breaks a `STRICT_POLICY` invariant' },
      ENOMEM,
    ],
    post: [
      'Every page of the range without an entry gets a 4K leaf to pfn + (page - vpn) with prot (`kasan_populate_vmalloc_pte`\'s rule: a PTE already set is left alone); the tables down to PTE level exist for the whole range. No flush, no obligation.',
    ],
    linux: [
      'Not atomic: it walks in address order and stops at the first huge entry or the first table the pool does not have, whichever comes first, keeping what it did before (the PTEs it set and the tables it allocated below where it stopped). At a huge entry it prints `apply-huge` (the leaf\'s range; once per boot, as WARN_ON_ONCE) and fails with EINVAL; where the pool runs out, with ENOMEM.',
    ],
    sources: ['mm/memory.c of gregkh/linux bb1d93ee: `__apply_to_page_range`, `apply_to_pmd_range`, `apply_to_pud_range`'],
  },
  walkPageRange: {
    signature: 'walkPageRange(vpn, pages) → visits',
    summary: '`walk_kernel_page_table_range` on init_mm (mm/pagewalk.c): the entries of a range as the kernel\'s page walkers see them.',
    preconditions: [KERNEL_VPN_ARG, KERNEL_PAGES_ARG, einval('pages', 'more than 2^18 (a gigabyte: a walk\'s visits grow with what it meets)')],
    post: [
      'The visits (spec/system.ts `WalkVisit`), depth first in address order, each clipped to the range: at every level from the top, a none entry is a hole (`pte_hole`); a huge leaf or a non-present huge entry is visited and not descended; a table entry is visited (table, level = the table\'s level + 1) and descended; at PTE level every PTE of the range is visited: present ones as leaf, non-present ones that keep a frame as nonpresent, none ones as runs of `none`. With 4-level paging the folded p4d level is not visited.',
      'A table the walk meets is linked in init_mm: a table an unmap emptied and left pending (strict, owed a flush) is unlinked, so its range is a hole, never a visit into the table being freed. Nothing changes.',
    ],
    linux: ['Emptied tables stay linked, so the walk descends into them and meets none PTEs.'],
    sources: ['mm/pagewalk.c of gregkh/linux 3c0391b9 and the newest stored copy: `walk_kernel_page_table_range`, `walk_pgd_range` .. `walk_pte_range`'],
  },
  zapPageRange: {
    signature: 'zapPageRange(pid, vpn, pages)',
    summary: '`zap_page_range_single` through an mmu_gather (`tlb_gather_mmu`, `unmap_single_vma`, `tlb_finish_mmu`): a process\'s user pages unmapped, and each page freed whose last reference that was. Both profiles.',
    preconditions: [
      einval('op', 'the system has no isolation capability (no processes), before anything else'),
      einval('pid', 'as unmapUser (spec/contracts/isolation.ts)'),
      einval('vpn', 'as unmapUser'),
      einval('pages', 'as unmapUser'),
      { errno: 'ENOENT', arg: 'pid', when: 'no live process has it' },
      { errno: 'ENOENT', arg: 'vpn', when: 'nothing in the range is mapped in the user half' },
      { errno: 'ENOMEM', arg: 'tablePool', when: 'splitting a huge leaf the range covers in part needs a table' },
    ],
    post: [
      'First what unmapUser does (both KPTI copies lose every page of the range, a huge leaf straddling an end split first; one process flush of the range; the tables it emptied freed after that flush).',
      'Then the gathered pages are freed (`tlb_finish_mmu`: `tlb_flush_mmu_tlbonly`, then `tlb_flush_mmu_free`: "1) unhook page 2) TLB invalidate page 3) free page"): every frame a removed leaf mapped inside the range whose use is data, not `noDirectMap`, and that no leaf of any root maps after the unmap but at its own direct-map page (the last reference: `folio_put`) becomes free; any other frame keeps its use (another mapping still holds it, or it is no page-allocator page).',
      'Strict frees none that freeFrames would refuse after the process flush: a frame some TLB may still translate to outside its direct-map page (D7: cached there; C1: a stale mermap allocation\'s, or a lazily freed vmalloc area\'s still owed) keeps its use.',
      'ptspec\'s ranges stay far below `MAX_GATHER_BATCH_COUNT` (about 10,000 pages per flush), so one flush covers them all.',
    ],
    linux: ['It frees those frames too: the kernel\'s `folio_put` knows nothing of another CPU\'s TLB.'],
    sources: ['mm/mmu_gather.c of torvalds/linux 06d07429: `tlb_gather_mmu`, `tlb_flush_mmu`, `tlb_finish_mmu`', 'include/asm-generic/tlb.h of torvalds/linux 0758cd83: the order unhook, invalidate, free'],
  },
};

export const CLIENT_RULES: readonly ContractRule[] = [
  {
    id: 'cpu-local',
    title: 'The clients\' CPU-local rule',
    paragraphs: [
      'Every client edits init_mm. A CPU-local mapping (a kmap_local slot, a mermap slice) is only ever touched by its own CPU: that is the clients\' rule, not the hardware\'s, and the fuzzer keeps it (an access by another CPU would be the client\'s bug, invariant C5).',
    ],
    sources: [],
  },
  {
    id: 'mermap-stale',
    title: 'A flush on a CPU and the mermap\'s stale allocations',
    paragraphs: [
      'A mermap allocation put without a flush stays in its CPU\'s `stale` list until a flush on that CPU covers it whole: flushLocal(cpu, range) on its CPU, any kernel range flush of every CPU (flush, and the flushes operations make), `flush_tlb_all`, and the mermap\'s own local full flush. A flush of part of it leaves it stale: its other pages may still be cached.',
      'Until then the TLB entries of that CPU meeting it are owed a flush (spec/invariants/tlb.ts `owedAt`), and its frames must not be freed (C1).',
    ],
    sources: [`${MERMAP}: \`mermap_put\`, \`arch_mermap_flush_tlb\``],
  },
  {
    id: 'unmapped-pool',
    title: 'The pool and the core frame operations',
    paragraphs: [
      'With the clients capability the page allocator also keeps the __GFP_UNMAPPED pool. freeFrames of frames in an unmapped pageblock returns them to the pool: they become free and keep `noDirectMap` (D6 exempts them). allocFrames of a frame in an unmapped pageblock takes the whole pageblock back when all its frames are free (`__rmqueue_direct_map` with want_mapped: `set_direct_map_default_noflush`, no flush, the flag cleared); otherwise EBUSY pfn.',
      'Strict freeFrames refuses (EPERM pfn, C1) to free a frame of a stale mermap allocation; linux frees it (the lockdep check the list proposed is not in the kernel). setDirectMapDefault and a protect that makes a page of an unmapped pageblock present again break C7: strict refuses with EPERM.',
    ],
    sources: ['mm/page_alloc.c of the __GFP_UNMAPPED series (bjackman/linux a3c87cc7): `__rmqueue_direct_map`'],
  },
];
