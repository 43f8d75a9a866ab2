/**
 * The linux profile: what today's x86-64 kernel does, as its source reads
 * (arch/x86/mm/pat/set_memory.c of gregkh/linux 53c2f13c, a 2025 tree with CPA_COLLAPSE
 * and _PAGE_KERNEL_4K; function names below are that file's unless another is named).
 * The strict profile (the other contracts of this folder) is what ptspec proposes a
 * library guarantee; where the two differ, this header says how.
 *
 * In the linux profile no operation refuses with EPERM: nothing in CPA refuses a request
 * for a security reason. The argument checks (EINVAL) are ptspec's and stay; so do
 * EEXIST/ENOENT of map, unmap, split and collapse (the kernel's callers of those are
 * void or BUG; ptspec keeps its contract). A state that breaks an invariant is therefore
 * reachable, and is a finding about the kernel, not a failure of the system.
 *
 * Abstract terms. A page-table entry is a leaf (present) or a non-present entry
 * (`AbstractRoot.nonPresent`: P clear but frame and attributes kept, as set_memory_np and
 * set_direct_map_invalid_noflush leave it); a zero entry is neither. The bits CPA works
 * on map to Prot: RW = write, NX = !execKernel (execUser = user && execKernel as ever),
 * G = global, the cache bits = cache, P = leaf vs non-present entry, _PAGE_KERNEL_4K
 * (software bit 11) = kernel4k. ProtChange becomes CPA's masks: write true/false
 * sets/clears RW, exec true/false clears/sets NX, global sets/clears G, cache replaces the
 * memory type, present sets/clears P, kernel4k sets _PAGE_KERNEL_4K with force_split
 * (set_memory_4k). The A and D bits are not in the abstract state: set_memory_ro's
 * clearing of D, and D and A in collapse's flag comparison, are not modelled (an entry
 * that set_memory_ro then set_memory_rw left without D would not collapse in the kernel;
 * here it does).
 *
 * The kernel image (`kernelImage` below) comes from the frames: text, rodata and data
 * runs, mapped through the high map at __START_KERNEL_map + pa (phys_base 0).
 *
 * ## protect(vpn, pages, change, {alias}) — change_page_attr_set_clr
 *
 * `alias: true` is set_memory_*'s default (cpa_process_alias runs); `alias: false` is
 * CPA_NO_CHECK_ALIAS (set_memory_np_noalias). A request with no mask and no kernel4k
 * changes nothing and flushes nothing. The range is walked in steps from its first page
 * (__change_page_attr_set_clr), each step on the entry (leaf or non-present entry) at the
 * current page, with `rem` pages left:
 *
 * - No entry (a zero entry; __cpa_process_fault): for an alias walk, skip one page. For
 *   the primary walk inside the direct map [PAGE_OFFSET, PAGE_OFFSET + frames), skip
 *   one page (holes are expected there), and the step's pfn is that page's frame.
 *   Elsewhere the walk stops with EFAULT; unless the pfn of the previous step (0 before
 *   the first) lies in the high-map frame range, the kernel first warns
 *   "CPA: called for zero pte" (event `zero-pte`).
 * - A 4K entry: new = old with the masks applied; if new is present, static protections
 *   (below, at level `protect`) remove forbidden bits from it; verify_rwx may warn; a
 *   non-present result loses G (pgprot_clear_protnone_bits). If new differs, it is
 *   written and the walk marks "changed" (CPA_FLUSHTLB). One page.
 * - A large entry with kernel4k (force_split; should_split_large_page): split it (below)
 *   at once, without any of the tests that follow, and start the step again, so every
 *   entry the walk meets ends 4K and gets kernel4k by the 4K rule above.
 * - A large entry (__should_split_large_page), covering n = min(rem, pages to its end):
 *   1. if static protections (level `conflict`, over the whole large page, with the
 *      large-page exemption) would change its current prot, the kernel WARNs once
 *      (event `conflict`) and splits it with fix-ups (below);
 *   2. else if the masks leave its prot unchanged: keep it, step n pages;
 *   3. else if the step does not start at its first page or n is not all of it: split;
 *   4. else new = masked prot with static protections (level `detect`, prints nothing)
 *      and verify_rwx; if the protections changed anything: split; otherwise the large
 *      entry gets new, the walk marks "changed", step n pages.
 *   A split (__split_large_page) needs one table (ENOMEM when the pool has none: the
 *   walk stops there), makes 512 entries of the next size with the same prot (G cleared
 *   if not present), then flushes every TLB (flush_tlb_all) and the step starts again
 *   on the new entry. Once a walk has met a conflict (force_static_prot, which stays set
 *   for the rest of the walk and is copied into its alias walks), each split runs static
 *   protections (`protect`, lpsize 0) on each new entry — while the large entry is still
 *   installed, so Text RO applies there — and a new 4K entry gets the result; a new 2M
 *   entry cannot be fixed: after the static-protection lines of the first one that would
 *   change, the kernel prints "CPA: Cannot fixup static protections for PUD split" (once
 *   per boot) and keeps it as it was.
 *
 * After each primary step that succeeded, with `alias`, cpa_process_alias runs with the
 * step's first pfn p and its page count n, if p < frames (pfn_range_is_mapped):
 * - if the step's page is outside the direct map, the direct-map alias: the walk above
 *   on [PAGE_OFFSET + p, +n), as an alias walk, with NX taken out of both masks; its
 *   error (only ENOMEM can happen) stops the primary walk with that error;
 * - if the step's page is outside the image's VA range [_text, _brk_end) and p is in the
 *   high-map frame range, the high-map alias: the same on [__START_KERNEL_map + p, +n),
 *   its error ignored.
 * Either sets force_flush_all. An alias walk's "changed" is its own: it is not the
 * primary walk's.
 *
 * Static protections (static_protections), on a present prot for the pages [start,
 * start+npg) mapping frames from pfn, with large-page size lpsize (0 for a 4K entry):
 * - Text NX: if the pages meet [_text, _etext), NX is forbidden (kept clear);
 * - Text RO: unless the pages are exactly one aligned large page of size lpsize, if they
 *   meet [_text, __end_rodata_hpage_align) and the entry at start is not 4K, RW is
 *   forbidden (so a 4K text page can be made writable, and so can a whole 2M one);
 * - Rodata RO: if the frames meet the rodata frames, RW is forbidden (every alias);
 * - (PCIBIOS NX does not apply: no PCI BIOS.)
 * At levels `conflict` and `protect`, each rule that removes a bit the prot has is printed
 * (event `static-protection`, naming the rule). verify_rwx warns once per boot
 * ("CPA detected W^X violation", event `wx`) when RW or NX changed, and the new prot is
 * RW and not NX (the tables above a leaf never clear RW or set NX here).
 *
 * Event fields (the range the kernel prints): static-protection, the pages and first
 * frame static_protections was given (a 4K entry: its page, 1, its frame; the conflict
 * test: the large entry's first page, all its pages, its frame; a split's fix-up: the new
 * entry's first page, its pages, its frame); conflict and pud-fixup, the large entry being
 * split; wx, what verify_rwx was given (a 4K entry, or the whole large entry);
 * zero-pte, the page, 1, and the previous step's frame (0 before the first). (The kernel
 * prints no range for conflict, pud-fixup and zero-pte; these are ptspec's.) Events come
 * in the order the walk meets them; within static_protections Text NX, Text RO, Rodata RO.
 *
 * The result: the first error, or ok. Earlier steps and aliases stay changed (not
 * atomic). Flush (change_page_attr_set_clr): nothing more unless the primary walk marked
 * "changed" — so a change made only in an alias is not flushed (splits aside); on an
 * error every TLB is flushed (cpa_flush_all); otherwise every TLB if force_flush_all or
 * pages > 33 (tlb_single_page_flush_ceiling), else each page of [vpn, vpn+pages).
 * Flushing every TLB also meets every obligation and pending table (flushAll).
 *
 * With `collapse` (CPA_COLLAPSE, set_memory_rox), and only when the flush above ran
 * without an error (cpa_flush calls cpa_collapse_large_pages): for each 2M-aligned block
 * B from the one containing vpn while its start is below vpn+pages, in order
 * (collapse_large_pages): if the 1G entry above B is a table and B's 2M entry is a present
 * table (a PTE table), collapse_pmd_page collapses B when the CPU has PSE, the first PTE's
 * frame is 2M-aligned and it has no kernel4k, and the other 511 PTEs are present with the
 * first's prot and contiguous frames (the first PTE's P is not tested, but the flag
 * comparison makes it present too: all 512 are present leaves): B becomes one 2M leaf with that prot. Right after
 * such a collapse, collapse_pud_page collapses the 1G block around B when the CPU has GB
 * pages (direct_gbpages) and its 512 entries are present 2M leaves with one prot and
 * contiguous frames from a 1G-aligned pfn. Aliases are never collapsed. If anything
 * collapsed, every TLB is flushed (flush_tlb_all) and the freed tables go back to the
 * pool; collapse prints nothing and never fails.
 *
 * ## protect with a cache change — set_memory_uc / set_memory_wc / set_memory_wb and memtype
 *
 * set_memory_uc and set_memory_wc first reserve the frames' memory type
 * (memtype_reserve on __pa of the range; arch/x86/mm/pat/memtype.c,
 * reserve_ram_pages_type), set_memory_wb frees it after its walk. ptspec tracks the
 * reservation (FrameRun.memtype) for the frames [f, f+pages) that __pa gives when vpn lies
 * in the direct map (f = vpn - PAGE_OFFSET) or at or above __START_KERNEL_map (f = vpn -
 * __START_KERNEL_map, phys_base 0: __phys_addr treats the image, modules and fixmap
 * alike), and those frames lie in [0x100, frames): RAM above the
 * ISA range, as pat_pagerange_is_ram counts it. Elsewhere (vmalloc, ioremap, a range below
 * 1 MiB or past the end of RAM) __pa names no RAM frame and the kernel's reservation lives
 * in its tree of non-RAM ranges, which ptspec does not model: no reservation, no EBUSY.
 * - cache UC- (set_memory_uc): EBUSY if any tracked frame has a memtype (one not WB),
 *   and nothing changes; else the frames get memtype UC-, then the walk with cache UC-;
 *   if the walk fails, the memtype is freed (memtype_free) and its error returned.
 * - cache WC (set_memory_wc): the same reservation with WC; then _set_memory_wc: a whole
 *   request with cache UC- (walk and flush as above), and only if it succeeded a second
 *   whole request with cache WC; if either fails the memtype is freed.
 * - cache WB (set_memory_wb): the walk with cache WB; if it succeeded, the tracked
 *   frames' memtype is freed (reset to WB).
 * - cache WT, UC or WP: no set_memory_* takes them (only _set_memory_wt, with no
 *   reservation): the walk alone.
 * The other fields of the change go into the same walk(s). Strict has no reservations: its
 * policy keeps every alias of a frame on one memory type instead (T5).
 *
 * ## setDirectMapInvalid / setDirectMapDefault — __set_pages_np / __set_pages_p
 *
 * The walk above on [PAGE_OFFSET + pfn, +count) with CPA_NO_CHECK_ALIAS and no flush of
 * its own: invalid clears P and RW (and D); default sets P and RW. So invalid leaves
 * non-present entries (frame, NX and cache kept, RW and G lost); default makes them
 * present again with RW, without G (lost for good), with the NX and cache they kept, and
 * Rodata RO keeps a rodata frame read-only. Both are idempotent: a page already so, or
 * with no entry at all (a direct-map hole), is skipped; neither has ENOENT, EEXIST or
 * EPERM. Only a split can fail (ENOMEM), leaving earlier pages changed. The frames'
 * noDirectMap is set / cleared for the whole range, as the client's record (secretmem,
 * guest_memfd), on success. `flush: true` then flushes the range on all CPUs;
 * `flush: false` leaves the obligation. No table is emptied, so none waits.
 *
 * On ENOMEM neither flushes nor records an obligation: the kernel's callers return
 * before their flush.
 *
 * ## map, unmap, split, collapse
 *
 * Without the policy (no EPERM), and with non-present entries counted as occupying their
 * pages: map over one is EEXIST, split and collapse see them as not mapped (ENOENT). A
 * map with a user prot is accepted, but the leaf's effective prot is not user: the
 * kernel half's tables above it (_KERNPG_TABLE) have no _PAGE_USER, and the MMU ANDs U
 * over the walk. ptspec keeps the EEXIST of map and the ENOENT of unmap (the kernel's
 * vmap_pages_pte_range WARNs and returns -EBUSY over an entry, vmap_pte_range BUGs;
 * vunmap_range of nothing does nothing).
 *
 * Page tables (mm/vmalloc.c of gregkh/linux 04aa71da; arch/x86/mm/pgtable.c): the kernel
 * keeps every table it allocated for the kernel half; vunmap frees none. tablesInUse
 * counts the tables the entries need plus the kept empty ones (plus those pending a
 * flush). A map reuses a kept table where it needs one; a map that puts a huge leaf where
 * a kept table hangs frees it first (vmap_try_huge_pmd / vmap_try_huge_pud call
 * pmd_free_pte_page / pud_free_pmd_page, which frees the PMD table and every PTE table
 * under it), and only what a collapse unlinks is freed (cpa_collapse_large_pages,
 * collapse). So the linux profile breaks S11 after most unmaps: a finding, as the kernel
 * keeps empty tables on purpose. ENOMEM is judged on the count after the operation, the
 * tables a map frees included (the kernel allocates in address order and could fail
 * before a later free; ptspec does not model that order).
 *
 * unmap(root, vpn, pages) — vunmap_range: __vunmap_range_noflush, then
 * flush_tlb_kernel_range of [vpn, vpn+pages) on all CPUs. No split and no ENOMEM:
 * - a 1G or 2M leaf that meets the range is cleared whole (pud_clear_huge /
 *   pmd_clear_huge), with a WARN (event `vunmap-huge`, the leaf's range) when the
 *   range does not cover it (WARN_ON(next - addr < PMD_SIZE / PUD_SIZE)): its pages
 *   outside the range go too;
 * - a 1G or 2M non-present entry that meets the range is not a leaf to pud/pmd_leaf
 *   (CPA writes it without PSE) but a bad entry: cleared whole by
 *   pud/pmd_none_or_clear_bad, which prints "bad pmd/pud" (event `bad-entry`, its range);
 * - each 4K entry in the range is cleared (ptep_get_and_clear); a non-present one with a
 *   WARN (event `vunmap-nonpresent`, its page): WARN_ON(!pte_none && !pte_present).
 * Events come in address order. No table is freed.
 * With `flush: false` (vunmap_range_noflush): the same, without the flush; the range is
 * owed one (reason 'unmap'). Nothing goes pending: no table is freed.
 *
 * ## Flushes (arch/x86/mm/tlb.c of gregkh/linux 399ec9ca; set_memory.c as above)
 *
 * Every range flush is flush_tlb_kernel_range, so more than 33 pages is a full flush
 * (flush.ts). A split (__split_large_page) flushes every TLB (flush_tlb_all) before the
 * walk goes on, in the primary walk and in an alias walk alike, so a protect that split
 * anything leaves every TLB and paging-structure cache empty, every obligation discharged
 * and every pending table released, whatever its own flush then does. A huge map over a
 * kept table frees it through pmd_free_pte_page / pud_free_pmd_page, which flush one page
 * there first (flush_tlb_kernel_range(addr, addr + PAGE_SIZE - 1): "INVLPG to clear all
 * paging-structure caches"): that flush is a range flush of the leaf's first page, and the
 * freed tables are released by it.
 *
 * ## allocFrames / freeFrames
 *
 * As strict (frames.ts) without the EPERM: __free_pages frees a frame still mapped
 * elsewhere or still removed from the direct map (a finding: D4, D6).
 */
import { kernelLayout, vpnToHex, type Pfn, type Vpn } from '../address.ts';
import type { FrameRun, SystemConfig } from '../state.ts';
import type { KernelEvent } from '../system.ts';

/** tlb_single_page_flush_ceiling (arch/x86/mm/tlb.c): above this many pages a range flush is a full one. Trusted geometry. */
export const TLB_SINGLE_PAGE_FLUSH_CEILING = 33;

const PMD_PAGES = 512;

/**
 * The kernel image as CPA sees it, from the frame runs (section symbols become the
 * extents of the text, rodata and data runs; the high map is __START_KERNEL_map + pa):
 * page numbers for the VA bounds, frame numbers for the frame ranges, all half-open.
 * Undefined without kernel text. Trusted: geometry, shared by model and impl.
 */
export interface KernelImage {
  /** [_text, _etext) in the high map. */
  readonly textStart: Vpn;
  readonly textEnd: Vpn;
  /** __end_rodata_hpage_align: the end of rodata rounded up to 2 MiB, in the high map. */
  readonly rodataHpageEnd: Vpn;
  /** [_text, _brk_end): the image's VA range (text, rodata, data and bss). */
  readonly imageEnd: Vpn;
  /** Frames of rodata (__start_rodata .. __end_rodata), for Rodata RO. */
  readonly rodataPfn: Pfn;
  readonly rodataPfnEnd: Pfn;
  /** The high-map frame range of __cpa_pfn_in_highmap: from _text's frame to _brk_end rounded up to 2 MiB. */
  readonly highmapPfn: Pfn;
  readonly highmapPfnEnd: Pfn;
}

function extent(frames: readonly FrameRun[], use: FrameRun['use']): [Pfn, Pfn] | undefined {
  let lo = Infinity;
  let hi = -Infinity;
  for (const r of frames) {
    if (r.use !== use || r.count === 0) continue;
    lo = Math.min(lo, r.pfn);
    hi = Math.max(hi, r.pfn + r.count);
  }
  return lo < hi ? [lo, hi] : undefined;
}

const roundUp = (n: number, to: number): number => Math.ceil(n / to) * to;

/** The kernel image of a machine, or undefined when it has no kernel text. Trusted geometry. */
export function kernelImage(config: SystemConfig, frames: readonly FrameRun[]): KernelImage | undefined {
  const text = extent(frames, 'kernel-text');
  if (text === undefined) return undefined;
  const rodata = extent(frames, 'kernel-rodata') ?? [text[1], text[1]];
  const data = extent(frames, 'kernel-data') ?? [rodata[1], rodata[1]];
  const base = kernelLayout(config.levels).kernelText;
  const brkEnd = Math.max(text[1], rodata[1], data[1]);
  return {
    textStart: base + text[0],
    textEnd: base + text[1],
    rodataHpageEnd: base + roundUp(rodata[1], PMD_PAGES),
    imageEnd: base + brkEnd,
    rodataPfn: rodata[0],
    rodataPfnEnd: rodata[1],
    highmapPfn: text[0],
    highmapPfnEnd: roundUp(brkEnd, PMD_PAGES),
  };
}

/** The kernel function that prints each event. Trusted: vocabulary, it decides nothing. */
export const KERNEL_EVENT_SOURCE: Readonly<Record<KernelEvent['kind'], string>> = {
  'static-protection': 'static_protections (check_conflict)',
  conflict: '__should_split_large_page',
  'pud-fixup': 'split_set_pte',
  wx: 'verify_rwx',
  'zero-pte': '__cpa_process_fault',
  'vunmap-huge': 'vunmap_pmd_range / vunmap_pud_range (mm/vmalloc.c)',
  'vunmap-nonpresent': 'vunmap_pte_range (mm/vmalloc.c)',
  'bad-entry': 'pmd_clear_bad / pud_clear_bad (mm/pgtable-generic.c)',
  'asi-level': 'asi_map (arch/x86/mm/asi.c, ASI series)',
  'apply-huge': 'apply_to_pmd_range / apply_to_pud_range (mm/memory.c)',
  'vfree-nonexistent': 'vfree (mm/vmalloc.c)',
  'vmemmap-no-altmap': 'vmemmap_populate (arch/x86/mm/init_64.c)',
  'add-pages-failed': 'add_pages (arch/x86/mm/init_64.c)',
};

/**
 * An event as the kernel log would read it, in ptspec's words (the facts the kernel
 * prints, not its format string), and the kernel function that prints it. Trusted:
 * formatting only.
 */
export function kernelEventText(e: KernelEvent): string {
  return `${eventMessage(e)} [${KERNEL_EVENT_SOURCE[e.kind]}]`;
}

function eventMessage(e: KernelEvent): string {
  const range = `${vpnToHex(e.vpn)}+${e.pages} PFN 0x${e.pfn.toString(16)}`;
  switch (e.kind) {
    case 'static-protection': return `CPA static protection ${e.rule ?? '?'}: ${range} (the forbidden bit was removed)`;
    case 'conflict': return `WARNING: CPA: existing large page breaks a static protection: ${range} (split with fix-ups)`;
    case 'pud-fixup': return `CPA: Cannot fixup static protections for PUD split: ${range}`;
    case 'wx': return `WARNING: CPA detected W^X violation: ${range}`;
    case 'zero-pte': return `WARNING: CPA: called for zero pte: ${range}`;
    case 'vunmap-huge': return `WARNING: vunmap of part of a huge mapping clears it whole: ${range}`;
    case 'vunmap-nonpresent': return `WARNING: vunmap cleared a non-present pte: ${range}`;
    case 'bad-entry': return `bad pmd/pud (a non-present large entry), cleared: ${range}`;
    case 'asi-level': return `WARNING: ASI mapping at level 2, unrestricted at 1 (block skipped): ${range}`;
    case 'apply-huge': return `WARNING: apply_to_page_range met a huge leaf (-EINVAL): ${range}`;
    case 'vfree-nonexistent': return `WARNING: Trying to vfree() nonexistent vm area: ${vpnToHex(e.vpn)}`;
    case 'vmemmap-no-altmap': return `vmemmap_populate: no cpu support for altmap allocations (-ENOMEM): ${range}`;
    case 'add-pages-failed': return `WARNING: add_pages: __add_pages failed, the direct map of ${range} stays`;
  }
}
