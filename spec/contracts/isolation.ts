/**
 * The isolation capability: processes with KPTI page-table pairs, pti_clone_pgtable, the
 * LDT remap and ASI restricted roots (PageTableSystem.isolation). Read from gregkh/linux
 * 53c2f13c arch/x86/mm/pti.c (__pti_set_user_pgtbl, pti_user_pagetable_walk_*,
 * pti_clone_pgtable, pti_clone_user_shared, pti_clone_kernel_text), 6bf94737
 * arch/x86/mm/init_64.c (sync_global_pgds), arch/x86/kernel/ldt.c (write_ldt,
 * map_ldt_struct, map_ldt_struct_to_user, unmap_ldt_struct, free_ldt_struct), and for ASI
 * bjackman/linux 003868f6 arch/x86/mm/asi.c (asi_init, asi_map, asi_unmap,
 * asi_clone_range, asi_global_init). spec/roots.ts says which root mirrors which slots.
 *
 * ## Roots
 * A system with the capability has from boot root 0 (init_mm), root 1 (`kernel-user`,
 * swapper_pg_dir's user half: the PTI clones) and root 2 (`asi-global`: the restricted
 * direct map), whose top-level tables are part of init_mm's (swapper_pg_dir is an
 * order-1 pair; asi_global_nonsensitive_pgd is static) and count in no table total.
 * Process p has roots 3p (`process-kernel`, its pgd), 3p+1 (`process-user`, the KPTI user
 * copy) and 3p+2 (`asi`), each with `pid: p`.
 *
 * ## Tables (ENOMEM, tablesInUse)
 * tablesInUse = tableFootprint(init_mm's leaves and non-present entries) + Σ over roots 1,
 * 2 and every process-kernel root of (tableFootprint(its own leaves) - 1) + 3 per process
 * (its three top-level tables) + the pending and (linux) kept tables. A process-user root's
 * user half and LDT slot are its process-kernel root's tables (the KPTI pair shares every
 * table below the pgd), so they count once; an asi root has no tables of its own.
 *
 * ## TLBs
 * A kernel range flush (flush, and every flush the contracts promise) drops the TLB
 * entries of *every* root meeting the range and empties every paging-structure cache. A
 * process flush (flush_tlb_mm_range) drops, on every CPU, the TLB entries of that
 * process's three roots meeting the range and every paging-structure-cache entry of those
 * roots; it pays no obligation. translate and access take any root the state has (EINVAL
 * root otherwise) and walk its view (`rootView`); access in the user half needs no kernel
 * vpn. Map, unmap, split, collapse and protect edit init_mm only (EINVAL root for any
 * other).
 *
 * ## createProcess() → {pid, kernelRoot, userRoot, asiRoot}
 *   ENOMEM tablePool   the three top-level tables do not fit.
 *   Post: pid = 1 + the largest pid this system ever gave (pids are never reused); the
 *   three roots of processRootIds(pid) exist, with no own leaves: the process-kernel root
 *   mirrors init_mm, the user copy root 1, the asi root the ASI global root (and its
 *   process's empty user half). Linux: the user copy mirrors only the slots of root 1
 *   that hold an entry now; a slot root 1 fills later is `diverged` in it (pti.c: "Top-
 *   level entries added to init_mm's usermode pgd after boot will not be automatically
 *   propagated to other mms"). Strict mirrors every slot. Both profiles sync new init_mm
 *   and ASI global slots into every process (sync_global_pgds; ASI preallocates them).
 *
 * ## exitProcess(pid)
 *   EINVAL pid  not an integer ≥ 1;  ENOENT pid  no live process has it.
 *   Post: its three roots are gone; every TLB and paging-structure-cache entry of them on
 *   every CPU is gone (exit_mmap's flush; the mm's PCIDs die with it); its tables are
 *   freed (user half, LDT slot, three top-level ones). Frames keep their use: the LDT's
 *   go back to their owner (see setLdt).
 *
 * ## mapUser(pid, vpn, pfn, pages, prot)
 *   EINVAL pid; EINVAL vpn  not an integer page of the user half;  EINVAL pages  < 1 or
 *   running past the user half;  EINVAL pfn  as for map;  EINVAL prot  as for map, and
 *   not user (user=false) or global (user PTEs are never _PAGE_GLOBAL);
 *   ENOENT pid;  EEXIST vpn  a page of the range is mapped in the user half;
 *   EPERM prot (strict)  the first STRICT_POLICY invariant the result breaks (S12, P3, P4,
 *   P2 as a writing side of a frame the kernel executes, T5, D4 for a free frame, P7 for
 *   none: the user half is not P7's; P1 exempts it);  ENOMEM tablePool.
 *   Post: the range is mapped as map would place it (largest leaves alignment allows, no
 *   cap) in the user copy with `prot`, and in the process-kernel root with the same
 *   leaves NX-poisoned (execKernel = execUser = false: __pti_set_user_pgtbl sets _PAGE_NX
 *   on the kernel copy's user pgd entries); the asi root mirrors the latter. No flush.
 *   Linux: the same, without EPERM.
 *
 * ## unmapUser(pid, vpn, pages)
 *   EINVAL pid / vpn / pages as for mapUser;  ENOENT pid;  ENOENT vpn  nothing in the
 *   range is mapped;  ENOMEM tablePool  splitting a huge leaf the range covers in part
 *   needs a table.
 *   Post: both copies lose every page of the range (a huge leaf straddling an end is split
 *   first, as zap splits a THP); a process flush of the range; the tables it emptied are
 *   freed after that flush (free_pgtables). Both profiles.
 *
 * ## ptiClone(vpn, pages, level)
 *   EINVAL vpn / pages  as for unmap (kernel half);  EINVAL level  not pmd or pte;
 *   EPERM vpn (strict)  a cloned page would lie outside ptiAllowlist (K2), or another
 *   STRICT_POLICY invariant breaks;  ENOMEM tablePool.
 *   The units cloned, over init_mm's present leaves (holes are skipped, as pud_none and
 *   pmd_none are; non-present entries are not cloned):
 *     level pmd: every 2M block that meets the range and holds a present leaf: the whole
 *       block (a 2M leaf as it is, a 1G leaf's 2M piece as a 2M leaf, 4K leaves as they are;
 *       the kernel copies the pmd entry, which for a PTE table shares it: ptspec copies its
 *       entries, see Linux below);
 *     level pte: every 2M block met whose init_mm entry is a 2M or 1G leaf, whole as above
 *       (pmd_leaf is cloned at PMD level whatever the level asked); else each present 4K
 *       leaf inside the range.
 *   Post: in root 1, each unit replaces what root 1 mapped on its pages (a root-1 leaf
 *   that meets a unit is removed whole first: pti_user_pagetable_walk_pte clears a large
 *   PMD on the late_text path); strict then flushes the units' pages (a kernel range
 *   flush), so no user copy keeps a stale translation. Root 1 never holds a 1G leaf.
 *   Linux: no EPERM, no flush; and, with X86_FEATURE_PGE, _PAGE_GLOBAL is set on every
 *   init_mm leaf a unit copies (pmd_set_flags / pte_set_flags on the kernel's entry; the
 *   whole leaf, a 1G one too) and on the copy. Where the kernel shares a PTE table (a
 *   PMD-level clone of a 4K-mapped block), later changes to that block's PTEs reach every
 *   user copy in the kernel; ptspec copies the PTEs, so under linux such a block keeps the
 *   translation it had when cloned (a stated difference: ptspec's linux K3 findings in a
 *   block cloned while 4K-mapped are about the copy, not the kernel).
 *
 * ## asiMap(vpn, pages) / asiUnmap(vpn, pages)
 *   EINVAL vpn  not in the direct map [__PAGE_OFFSET, __PAGE_OFFSET + frames), or not
 *   pageblock-aligned (512 pages: VM_BUG_ON(!IS_ALIGNED(page_to_pfn(page),
 *   pageblock_nr_pages)));  EINVAL pages  < 1, not a multiple of 512, or past the direct map.
 *   asiMap: EPERM vpn (strict)  the range's init_mm leaves map a `sensitive` frame (A1),
 *   or another STRICT_POLICY invariant breaks;  ENOMEM tablePool.
 *   Post asiMap: for each present init_mm leaf meeting the range, root 2 maps the same
 *   pages to the same frames with the same prot, replacing what it mapped there, in
 *   leaves of at most 2M (a 1G leaf as 2M leaves: the restricted physmap stops at PMD
 *   level). No flush. Linux: a 2M block init_mm maps with 4K leaves is skipped
 *   (asi_map's WARN_ONCE "ASI mapping at level %d, unrestricted at %d"; KernelEvent
 *   `asi-level`, once per block, with the block's vpn, 512 pages and pfn = vpn -
 *   __PAGE_OFFSET, printed only when the copy succeeds: a failed asiMap changes and prints
 *   nothing); no EPERM.
 *   Post asiUnmap: root 2 loses every page of the range (vunmap_pgd_range on the ASI pgd;
 *   its leaves never straddle a pageblock); a kernel range flush of the range
 *   (flush_tlb_kernel_range); strict frees the tables it emptied in that flush, linux
 *   keeps them (vunmap keeps tables). Never ENOENT: an empty range is a flush.
 *
 * ## setLdt(pid, pfn, pages)  (modify_ldt's write_ldt with PTI)
 *   EINVAL pid;  EINVAL pfn  as for map;  EINVAL pages  not an integer in [1, 16];
 *   ENOENT pid;  ENOENT pfn  a frame of the range is not `data` (the LDT's pages come from
 *   the page allocator);  EBUSY pfn  a frame of the range holds the current LDT of a
 *   process;  EPERM pfn (strict)  the first STRICT_POLICY invariant the new mapping breaks
 *   (a frame removed from the direct map, P7; one the direct map maps with another memory
 *   type, T5: the kernel's get_zeroed_page never hands out either);  ENOMEM tablePool
 *   (the process's first LDT needs the LDT slot's tables). Linux: no EPERM.
 *   Post: the new LDT is mapped in the LDT slot the current one does not use (slot 0 for
 *   a first LDT: `old_ldt ? !old_ldt->slot : 0`) of the process-kernel root, 4K leaves
 *   with LDT_PROT, at ldtSlotVpn(slot) + i → pfn + i; the user copy mirrors it. Then the
 *   old LDT's pages are unmapped from its slot, a process flush of that slot's range, and
 *   its frames go back to their owner (unmap_ldt_struct; the kernel's free_ldt_struct is the
 *   owner's freeFrames after setLdt returns: ptspec's LDT pages are allocated and freed by
 *   the caller, so strict refuses a freeFrames of a frame an LDT slot still maps, D4, and
 *   linux frees it, a K5 finding). The LDT slot's tables stay until exitProcess
 *   (free_ldt_pgtables runs at exit). Both profiles.
 *
 * ## What the profiles share
 * Both keep the KPTI pair's user halves equal but for NX (K1), never map a user page
 * global, never let a mirrored slot diverge but for linux's root-1 slots (K4), and unmap
 * and flush an old LDT before freeing it (K5). Strict adds the refusals: the allowlist
 * (K2), global clones kept identical (K3: a core operation that would change a global
 * page root 1 maps is EPERM), sensitive frames out of restricted roots (A1) and restricted
 * mappings kept identical to init_mm's (A2: a core operation that would change a page
 * root 2 maps is EPERM).
 */
import { PAGES, isCanonical, isKernelHalf, kernelLayout, lowerHalfEnd, vpnToHex, type Pfn, type Vpn } from '../address.ts';
import type { PtError } from '../errors.ts';
import type { Prot, SystemConfig } from '../state.ts';
import type { CloneLevel } from '../system.ts';
import { LDT_SLOT_PAGES } from '../roots.ts';
import { checkKernelPages, checkKernelVpn, checkPfnRange, checkProt, ptError } from './args.ts';

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

/** mapUser's preconditions (EINVAL), in the header's order. Trusted: shared by model and impl, not checked by refinement. */
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
