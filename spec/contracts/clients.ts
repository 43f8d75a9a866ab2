/**
 * The kernel's page-table users as clients of the library (PageTableSystem.clients): what
 * each asks of it and what it keeps (spec/clients.ts), so a library design can be held to
 * all of them. Read from gregkh/linux 04aa71da mm/vmalloc.c (__vmalloc_node_range_noprof,
 * vfree, remove_vm_area, free_unmap_vmap_area, free_vmap_area_noflush, lazy_max_pages,
 * __purge_vmap_area_lazy, _vm_unmap_aliases, vm_reset_perms); mm/highmem.c
 * (__kmap_local_pfn_prot, kunmap_local_indexed) and include/linux/highmem-internal.h
 * (torvalds/linux 0bf13a84: without CONFIG_HIGHMEM kmap_local_page is page_address);
 * the __GFP_UNMAPPED series' mm/mermap.c (linux-mm/linux-mm b7f5c72f: mermap_get,
 * mermap_put, arch_mermap_flush_tlb) and mm/page_alloc.c (bjackman/linux a3c87cc7:
 * __rmqueue_direct_map); mm/memory.c (gregkh/linux bb1d93ee: __apply_to_page_range,
 * apply_to_pmd_range); mm/pagewalk.c (gregkh/linux 3c0391b9 and the newest stored copy:
 * walk_kernel_page_table_range, walk_pgd_range .. walk_pte_range); mm/mmu_gather.c
 * (torvalds/linux 06d07429: tlb_gather_mmu, tlb_flush_mmu, tlb_finish_mmu) and
 * include/asm-generic/tlb.h (torvalds/linux 0758cd83: the order unhook, invalidate, free).
 *
 * Every client edits init_mm. A CPU-local mapping (a kmap_local slot, a mermap slice) is
 * only ever touched by its own CPU: that is the clients' rule, not the hardware's, and
 * the fuzzer keeps it (an access by another CPU would be the client's bug, invariant C5).
 *
 * ## A flush on a CPU and the mermap's stale allocations
 * A mermap allocation put without a flush stays in its CPU's `stale` list until a flush
 * on that CPU covers it whole: flushLocal(cpu, range) on its CPU, any kernel range flush
 * of every CPU (flush, and the flushes operations make), flush_tlb_all, and the mermap's
 * own local full flush. A flush of part of it leaves it stale: its other pages may still
 * be cached. Until then the TLB entries of that CPU meeting it are owed a flush
 * (spec/invariants/tlb.ts owedAt), and its frames must not be freed (C1).
 *
 * ## vmalloc(vpn, pfn, pages, {huge, resetPerms})
 *   EINVAL vpn    not a page of the vmalloc area (spec/clients.ts vmallocRegion); with
 *                 huge, not 2M-aligned (the allocator aligns a huge area to PMD_SIZE)
 *   EINVAL pages  < 1, or running past VMALLOC_END; with huge, not a multiple of 512
 *                 (the size is rounded up to 1 << PMD_SHIFT)
 *   EINVAL pfn    [pfn, pfn+pages) not in memory; with huge, not 2M-aligned (order-9 pages)
 *   EBUSY  vpn    the range meets a live or a lazily freed vmalloc area (the vmap allocator
 *                 hands out neither until the purge)
 *   EEXIST vpn    a page of the range has an entry in init_mm (a plain map there)
 *   EBUSY  pfn    a frame could not be allocated as allocFrames would refuse it
 *   EPERM  prot   (strict) the result breaks a STRICT_POLICY invariant
 *   ENOMEM tablePool
 *   Post: the frames are allocated as allocFrames does (they become data); the range is
 *   mapped as map(0, vpn, pfn, pages, PAGE_KERNEL, {maxPage: huge ? '2M' : '4K'}) maps it
 *   (no flush); the area is live. Both profiles.
 *
 * ## vfree(vpn)
 *   EINVAL vpn    not a page of the vmalloc area
 *   ENOENT vpn    no live area starts at vpn (linux prints vfree-nonexistent)
 *   EPERM  vpn    (strict) freeing the frames would break, in STRICT_POLICY order: D4 (a
 *                 frame mapped by something but the area and its direct-map page), D6 (a
 *                 frame removed from the direct map, unless resetPerms, which restores it),
 *                 D7 (a frame cached at a page other than the area's and its direct-map
 *                 page), C1 (a frame of a stale mermap allocation); judged on the state
 *                 before, nothing changed; then what its unmap (and vm_reset_perms's
 *                 rewrite of the direct map) leaves, judged as any operation's result
 *                 (a K3 or A2 an isolation root's copy makes, say), before the free. Its
 *                 steps are not judged one by one: vm_reset_perms's removal of the direct
 *                 map is restored by the same vfree
 *   ENOMEM tablePool  (strict) a leaf straddles the area's edge (a collapse made it), or
 *                 resetPerms must split the direct map, and the pool has no table; judged
 *                 as every operation's, before its own flush: the tables its purge will
 *                 release still count
 *   Post, in this order:
 *   1. vunmap_range_noflush of the area: every entry in it goes (as unmap with
 *      {flush: false}: owed, strict's emptied tables pending, linux's kept); the area
 *      moves from live to the purge list (a LazyArea).
 *   2. resetPerms (vm_reset_perms, both profiles): set_direct_map_invalid_noflush of the
 *      frames; then the purge (6) over the lazy areas and the frames' direct-map range,
 *      one flush_tlb_kernel_range of [lowest start, highest end) of all of them; then
 *      set_direct_map_default_noflush of the frames. Linux ignores the result of the two
 *      direct-map steps (set_area_direct_map returns nothing): what they did stays.
 *   3. Not resetPerms: strict flushes the area's range (flush_tlb_kernel_range) so that
 *      no TLB may still reach the pages it frees next (C1); linux does not (the purge
 *      will, later: the pages go back with the range still owed, the window the kernel
 *      accepts, C1 and D7 findings).
 *   4. The frames are freed as freeFrames frees them (they become free).
 *   5. If the purge list's pages now exceed lazyMaxPages(cpus), the purge (6) runs
 *      (drain_vmap_work: the kernel schedules it; ptspec runs it at once).
 *   6. The purge (__purge_vmap_area_lazy): when the list is not empty, one
 *      flush_tlb_kernel_range of [lowest start, highest end) of its areas (the ceiling
 *      makes it flush_tlb_all when longer than 33 pages); the list is emptied.
 *
 * ## vmUnmapAliases()
 *   Always ok: the purge (6). ptspec has no vmap blocks (vm_map_ram), so their dirty
 *   ranges add nothing.
 *
 * ## kmapLocal(cpu, pfn) → vpn
 *   EINVAL cpu; EINVAL pfn  not a frame of memory.
 *   linux (x86-64 has no CONFIG_HIGHMEM: kmap_local_page is page_address): returns the
 *   frame's direct-map page; nothing changes (a page removed from the direct map is then
 *   not reachable there: the mermap exists for it).
 *   strict (the library's kmap_local for every page, as HIGHMEM's __kmap_local_pfn_prot):
 *   EBUSY cpu  the CPU holds KM_MAX_IDX slots (the kernel BUG_ONs);
 *   EEXIST vpn  the next slot already has an entry;  EPERM pfn  the 4K PAGE_KERNEL leaf
 *   breaks a STRICT_POLICY invariant (P7 for a frame out of the direct map);  ENOMEM.
 *   Post: slot idx = the CPU's slots in use; vpn = kmapSlotVpn(cpu, idx) is mapped to pfn
 *   with PAGE_KERNEL, one 4K leaf; the slot is pushed. No flush.
 *
 * ## kunmapLocal(cpu, vpn)
 *   EINVAL cpu; EINVAL vpn  not a kernel page.
 *   linux: nothing (x86-64's __kunmap_local does nothing).
 *   strict: ENOENT vpn  vpn is not a slot the CPU holds;  EINVAL vpn  it is, but not the
 *   top one (the kernel WARNs and clears the top slot instead; strict refuses).
 *   Post: the slot's leaf is removed and flush_tlb_one_kernel runs on that CPU only (its
 *   TLB entries at vpn and its paging-structure caches go; obligations stay); the slot is
 *   popped. An emptied PTE table waits for a flush of every CPU (pending), whose
 *   paging-structure caches may hold it (every CPU's slots share it): a flush of the slot
 *   is owed for it, so the next flush there frees it. (The kernel's kmap_local PTEs on
 *   32-bit are preallocated and never freed; a library that frees emptied tables must not
 *   let unlinked ones pile up, one pair a kmap/kunmap cycle, with nothing owed to release them.)
 *
 * ## mermapGet(cpu, pfn, pages) → vpn (both profiles: the series' code)
 *   EINVAL cpu; EINVAL pfn  [pfn, pfn+pages) not in memory;  EINVAL pages  < 1 or more
 *   than MERMAP_USABLE_PAGES.
 *   EBUSY cpu  the CPU holds MERMAP_ALLOCS allocations, or no room: with next the bump
 *   pointer and end = slice + MERMAP_USABLE_PAGES, when next + pages > end the room is
 *   from the end of the highest allocation in use (the slice start if none) and that is
 *   too small too. Decided before anything changes (the series flushes, then fails).
 *   EEXIST vpn  a page of the range has an entry;  EPERM pfn  the leaves break a
 *   STRICT_POLICY invariant (P7 exempts the mermap);  ENOMEM (the series pre-populates
 *   the tables; ptspec's library may have to allocate them).
 *   Post: if next + pages > end: next = that room's start and arch_mermap_flush_tlb runs,
 *   a full flush of this CPU only (every TLB and paging-structure-cache entry of it goes,
 *   its stale list empties; obligations stay). Then [next, next+pages) maps [pfn, +pages)
 *   with 4K leaves of PAGE_KERNEL without global (arch_mermap_pgprot_allowed refuses a
 *   global one); the allocation is held; next += pages; returns the first page.
 *
 * ## mermapPut(cpu, vpn)
 *   EINVAL cpu; EINVAL vpn;  ENOENT vpn  the CPU holds no allocation starting there.
 *   Post: its leaves are removed, no flush (the TLB of that CPU alone may still hold them);
 *   the allocation moves to the CPU's stale list; emptied tables pending (strict), a flush
 *   of the allocation owed for them as for kunmapLocal's, or kept linked (linux: the
 *   series pre-populates the mermap's tables, never freed, and owes nothing).
 *
 * ## allocUnmapped(pfn, count) (alloc_pages(__GFP_UNMAPPED), both profiles)
 *   EINVAL pfn / count as allocFrames.
 *   EBUSY pfn  a frame is neither a free frame of an unmapped pageblock nor in a pageblock
 *   the pool can take: one not unmapped whose frames are all free and in the direct map.
 *   EPERM pfn (strict) / ENOMEM: the direct-map removal of a pageblock taken. Linux's
 *   set_direct_map_valid_noflush is CPA, not atomic: on its ENOMEM what it changed stays,
 *   and no pageblock is flagged or flushed.
 *   Post: every pageblock the range meets that is not unmapped is taken, all together
 *   (__rmqueue_direct_map): set_direct_map_invalid_noflush of its frames, then one
 *   flush_tlb_kernel_range of their direct-map range, then it is flagged unmapped (its
 *   frames stay free, with noDirectMap: the pool's). Then the frames become data.
 *
 * ## The pool and the core frame operations (with the clients capability)
 *   freeFrames of frames in an unmapped pageblock returns them to the pool: they become
 *   free and keep noDirectMap (D6 exempts them). allocFrames of a frame in an unmapped
 *   pageblock takes the whole pageblock back when all its frames are free
 *   (__rmqueue_direct_map with want_mapped: set_direct_map_default_noflush, no flush, the
 *   flag cleared); otherwise EBUSY pfn. strict freeFrames refuses (EPERM pfn, C1) to free
 *   a frame of a stale mermap allocation; linux frees it (the lockdep check the list
 *   proposed is not in the kernel). setDirectMapDefault and a protect that makes a page
 *   of an unmapped pageblock present again break C7: strict refuses with EPERM.
 *
 * ## applyToPageRange(vpn, pages, pfn, prot) (apply_to_page_range with create, a populate callback)
 *   EINVAL vpn / pages / pfn / prot as map (the frames [pfn, pfn+pages)).
 *   EINVAL vpn  the range meets a huge leaf (or a non-present huge entry): the kernel's
 *   WARN_ON_ONCE(p?d_leaf) and -EINVAL. strict refuses first and changes nothing; linux
 *   prints apply-huge (the leaf's range; once per boot, as WARN_ON_ONCE) and keeps what it did before, in address order:
 *   the PTEs it set and the tables it allocated below the leaf's start.
 *   EPERM prot (strict);  ENOMEM tablePool (linux: keeps what it did before).
 *   Post: every page of the range without an entry gets a 4K leaf to pfn + (page - vpn)
 *   with prot (kasan_populate_vmalloc_pte's rule: a PTE already set is left alone); the
 *   tables down to PTE level exist for the whole range. No flush, no obligation.
 *
 * ## zapPageRange(pid, vpn, pages) (zap_page_range_single through an mmu_gather, both profiles)
 *   EINVAL op  the system has no isolation capability (no processes), before anything else.
 *   EINVAL pid / vpn / pages as unmapUser (spec/contracts/isolation.ts); ENOENT pid; ENOENT
 *   vpn  nothing in the range is mapped in the user half; ENOMEM tablePool  splitting a huge
 *   leaf the range covers in part needs a table.
 *   Post: first what unmapUser does (both KPTI copies lose every page of the range, a huge
 *   leaf straddling an end split first; one process flush of the range; the tables it
 *   emptied freed after that flush); then the gathered pages are freed (tlb_finish_mmu:
 *   tlb_flush_mmu_tlbonly, then tlb_flush_mmu_free: "1) unhook page 2) TLB invalidate page
 *   3) free page"): every frame a removed leaf mapped inside the range whose use is data,
 *   not noDirectMap, and that no leaf of any root maps after the unmap but at its own
 *   direct-map page (the last reference: folio_put) becomes free; any other frame keeps
 *   its use (another mapping still holds it, or it is no page-allocator page). Strict
 *   frees none that freeFrames would refuse after the process flush: a frame some TLB may
 *   still translate to outside its direct-map page (D7: cached there; C1: a stale mermap
 *   allocation's, or a lazily freed vmalloc area's still owed) keeps its use; linux frees
 *   it (the kernel's folio_put knows nothing of another CPU's TLB). ptspec's
 *   ranges stay far below MAX_GATHER_BATCH_COUNT (about 10,000 pages per flush), so one
 *   flush covers them all.
 *
 * ## walkPageRange(vpn, pages) → visits (walk_kernel_page_table_range on init_mm)
 *   EINVAL vpn / pages as unmap; EINVAL pages  more than 2^18 (a gigabyte: a walk's
 *   visits grow with what it meets).
 *   The visits (spec/system.ts WalkVisit), depth first in address order, each clipped to
 *   the range: at every level from the top, a none entry is a hole (pte_hole); a huge leaf
 *   or a non-present huge entry is visited and not descended; a table entry is visited
 *   (table, level = the table's level + 1) and descended; at PTE level every PTE of the
 *   range is visited: present ones as leaf, non-present ones that keep a frame as
 *   nonpresent, none ones as runs of `none`. With 4-level paging the folded p4d level is
 *   not visited. A table the walk meets is linked in init_mm: a table an unmap emptied
 *   and left pending (strict, owed a flush) is unlinked, so its range is a hole, never a
 *   visit into the table being freed; linux keeps emptied tables linked, so the walk
 *   descends and meets none PTEs. Nothing changes.
 */
import { isAligned, PAGES, pfnSpan, vpnToHex, type Pfn, type Vpn } from '../address.ts';
import { MERMAP_USABLE_PAGES, vmallocRegion } from '../clients.ts';
import type { PtError } from '../errors.ts';
import type { Prot, SystemConfig } from '../state.ts';
import type { VmallocOptions } from '../system.ts';
import { checkKernelPages, checkKernelVpn, checkPfnRange, ptError } from './args.ts';
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

/** vmalloc's preconditions that need no state (EINVAL), in the header's order. Trusted: shared by model and impl, not checked by refinement. */
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
