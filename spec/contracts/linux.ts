/**
 * The linux profile: what today's x86-64 kernel does, as its source reads
 * (arch/x86/mm/pat/set_memory.c of gregkh/linux 53c2f13c, a 2025 tree with CPA_COLLAPSE
 * and _PAGE_KERNEL_4K; mm/vmalloc.c of 04aa71da and arch/x86/mm/pgtable.c for page tables;
 * arch/x86/mm/tlb.c of 399ec9ca for flushes). What each operation does differently from
 * the strict profile is the `linux` part of its contract (CONTRACTS.protect.linux is CPA's
 * walk); here are the rules the two profiles share and the linux profile's own
 * (PROFILE_RULES, LINUX_RULES), the kernel image and the flush ceiling as CPA sees them,
 * and what the kernel prints (KERNEL_EVENT_SOURCE, kernelEventText).
 */
import { kernelLayout, vpnToHex, type Pfn, type Vpn } from '../address.ts';
import type { FrameRun, SystemConfig } from '../state.ts';
import type { KernelEvent } from '../system.ts';
import type { ContractRule } from './contract.ts';

/** tlb_single_page_flush_ceiling (arch/x86/mm/tlb.c): above this many pages a range flush is a full one. Trusted geometry. */
export const TLB_SINGLE_PAGE_FLUSH_CEILING = 33;

const PMD_PAGES = 512;

const SET_MEMORY = 'arch/x86/mm/pat/set_memory.c of gregkh/linux 53c2f13c';

export const PROFILE_RULES: readonly ContractRule[] = [
  {
    id: 'profiles',
    title: 'Two profiles',
    paragraphs: [
      'Every contract states the **strict** profile: the library ptspec proposes, which refuses with EPERM and is atomic. The **linux** profile is today\'s kernel as its source reads (cited by function): it never refuses for security, fixes some requests up silently (`static_protections`), only warns about others (`verify_rwx`), and is not atomic; the `linux` part of each contract says how it differs. A system follows the profile its `SystemSetup.profile` names (strict when absent).',
      'In the linux profile no operation refuses with EPERM: nothing in CPA refuses a request for a security reason. The argument checks (EINVAL) are ptspec\'s and stay; so do EEXIST/ENOENT of map, unmap, split and collapse (the kernel\'s callers of those are void or BUG; ptspec keeps its contract), with non-present entries counted as occupying their pages: map over one is EEXIST, split and collapse see them as not mapped (ENOENT). A state that breaks an invariant is therefore reachable, and is a finding about the kernel, not a failure of the system.',
      'What the kernel prints is part of its behaviour (`KernelEvent`, `PageTableSystem.takeEvents`), and refinement compares it.',
    ],
    sources: [`${SET_MEMORY}: \`static_protections\`, \`verify_rwx\``],
  },
];

export const LINUX_RULES: readonly ContractRule[] = [
  {
    id: 'cpa-terms',
    title: 'CPA\'s bits in abstract terms',
    paragraphs: [
      'A page-table entry is a leaf (present) or a non-present entry (`AbstractRoot.nonPresent`: P clear but frame and attributes kept, as set_memory_np and `set_direct_map_invalid_noflush` leave it); a zero entry is neither.',
      'The bits CPA works on map to `Prot`: RW = `write`, NX = `!execKernel` (`execUser = user && execKernel` as ever), G = `global`, the cache bits = `cache`, P = leaf vs non-present entry, `_PAGE_KERNEL_4K` (software bit 11) = `kernel4k`. `ProtChange` becomes CPA\'s masks: `write` true/false sets/clears RW, `exec` true/false clears/sets NX, `global` sets/clears G, `cache` replaces the memory type, `present` sets/clears P, `kernel4k` sets `_PAGE_KERNEL_4K` with `force_split` (set_memory_4k).',
      'The A and D bits are not in the abstract state: set_memory_ro\'s clearing of D, and D and A in collapse\'s flag comparison, are not modelled (an entry that set_memory_ro then set_memory_rw left without D would not collapse in the kernel; here it does).',
    ],
    sources: [SET_MEMORY],
  },
  {
    id: 'linux-page-tables',
    title: 'Page tables (linux profile)',
    paragraphs: [
      'The kernel keeps every table it allocated for the kernel half; vunmap frees none. `tablesInUse` counts the tables the entries need plus the kept empty ones (plus those pending a flush). A map reuses a kept table where it needs one; a map that puts a huge leaf where a kept table hangs frees it first (`vmap_try_huge_pmd` / `vmap_try_huge_pud` call `pmd_free_pte_page` / `pud_free_pmd_page`, which frees the PMD table and every PTE table under it), and only what a collapse unlinks is freed (`cpa_collapse_large_pages`, collapse).',
      'So the linux profile breaks S11 after most unmaps: a finding, as the kernel keeps empty tables on purpose.',
    ],
    sources: ['mm/vmalloc.c of gregkh/linux 04aa71da: `vmap_try_huge_pmd`, `vmap_try_huge_pud`', 'arch/x86/mm/pgtable.c: `pmd_free_pte_page`, `pud_free_pmd_page`', `${SET_MEMORY}: \`cpa_collapse_large_pages\``],
  },
  {
    id: 'linux-flushes',
    title: 'Flushes (linux profile)',
    paragraphs: [
      `Every range flush is \`flush_tlb_kernel_range\`, so more than ${TLB_SINGLE_PAGE_FLUSH_CEILING} pages is a full flush (*Range flushes and the ${TLB_SINGLE_PAGE_FLUSH_CEILING}-page ceiling*).`,
      'A split (`__split_large_page`) flushes every TLB (`flush_tlb_all`) before the walk goes on, in the primary walk and in an alias walk alike, so a protect that split anything leaves every TLB and paging-structure cache empty, every obligation discharged and every pending table released, whatever its own flush then does.',
      'A huge map over a kept table frees it through `pmd_free_pte_page` / `pud_free_pmd_page`, which flush one page there first (`flush_tlb_kernel_range(addr, addr + PAGE_SIZE - 1)`: "INVLPG to clear all paging-structure caches"): that flush is a range flush of the leaf\'s first page, and the freed tables are released by it.',
    ],
    sources: ['arch/x86/mm/tlb.c of gregkh/linux 399ec9ca: `flush_tlb_kernel_range`, `flush_tlb_all`', `${SET_MEMORY}: \`__split_large_page\``, 'arch/x86/mm/pgtable.c: `pmd_free_pte_page`, `pud_free_pmd_page`'],
  },
];

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
