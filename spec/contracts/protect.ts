/**
 * protect(vpn, pages, change, {alias, collapse}): change_page_attr_set_clr on init_mm, the
 * set_memory_* family, and protect's argument validator. Read from
 * arch/x86/mm/pat/set_memory.c and arch/x86/mm/pat/memtype.c of gregkh/linux 53c2f13c (a
 * 2025 tree with CPA_COLLAPSE and _PAGE_KERNEL_4K); which request is which ProtChange is
 * spec/system.ts. The contract: CONTRACTS.protect (PROTECT_CONTRACT below), whose linux
 * part is the CPA walk as the kernel runs it.
 */
import type { Vpn } from '../address.ts';
import type { PtError } from '../errors.ts';
import { CACHE_MODES, type SystemConfig } from '../state.ts';
import type { ProtChange } from '../system.ts';
import { KERNEL_PAGES_ARG, KERNEL_VPN_ARG, checkKernelPages, checkKernelVpn, einval, ptError } from './args.ts';
import type { OperationContract } from './contract.ts';

function checkChange(change: ProtChange): PtError | null {
  for (const field of ['write', 'exec', 'global'] as const) {
    const v = change[field];
    if (v !== undefined && typeof v !== 'boolean') return ptError('EINVAL', 'change', `${field} must be a boolean`);
  }
  if (change.cache !== undefined && !CACHE_MODES.includes(change.cache)) return ptError('EINVAL', 'change', `unknown cache mode ${String(change.cache)}`);
  if (change.present !== undefined && typeof change.present !== 'boolean') return ptError('EINVAL', 'change', 'present must be a boolean');
  // set_memory_4k only sets _PAGE_KERNEL_4K: no kernel request clears it.
  if (change.kernel4k !== undefined && change.kernel4k !== true) return ptError('EINVAL', 'change', 'kernel4k can only be set (true): set_memory_4k');
  return null;
}

/** protect's preconditions that need no state (EINVAL), in the order of its contract. Trusted: shared by model and impl, not checked by refinement. */
export function validateProtect(config: SystemConfig, vpn: Vpn, pages: number, change: ProtChange): PtError | null {
  return checkKernelVpn(config, vpn) ?? checkKernelPages(vpn, pages) ?? checkChange(change);
}

export const PROTECT_CONTRACT: OperationContract = {
  signature: 'protect(vpn, pages, change, {alias = false, collapse = false})',
  summary: '`change_page_attr_set_clr` on init_mm, i.e. the `set_memory_*` family (arch/x86/mm/pat/set_memory.c; which request is which `ProtChange`: spec/system.ts).',
  preconditions: [
    KERNEL_VPN_ARG,
    KERNEL_PAGES_ARG,
    einval('change', 'a field of the wrong type, an unknown cache mode, or `kernel4k` other than true'),
    { errno: 'ENOENT', arg: 'vpn', profile: 'strict', when: 'some page of `[vpn, vpn+pages)` has no entry (neither a leaf nor a non-present entry)' },
    {
      errno: 'EBUSY', arg: 'change', profile: 'linux',
      when: '`set_memory_uc` or `set_memory_wc` (cache UC- or WC) over tracked frames one of which already has a memory type (one not WB): `memtype_reserve` refuses before any walk, and nothing changes',
    },
    { errno: 'EPERM', arg: 'change', profile: 'strict', when: 'the resulting state breaks a strict-policy invariant (`STRICT_POLICY`); the policy judges the present leaves only' },
    {
      errno: 'EFAULT', arg: 'vpn', profile: 'linux',
      when: 'the primary walk meets a page with no entry outside the direct map (`__cpa_process_fault`) and stops there, earlier pages staying changed; of EFAULT and a split\'s ENOMEM, the one the walk meets first',
    },
    { errno: 'ENOMEM', arg: 'tablePool', when: 'the splits need more tables than the pool has (judged before any collapse); under linux a split that finds no table stops the walk there, earlier pages staying changed' },
  ],
  post: [
    'An entry is a leaf or a non-present entry (`AbstractRoot.nonPresent`): both carry a frame and a prot, and the change applies to both. Every page p of the range gets its old prot with the change applied: each field the change gives is set, every other kept, `exec: v` sets `execKernel = v` and `execUser = v && user`, `kernel4k` sets `kernel4k`; `present: false` makes p\'s entry non-present, `present: true` present (frame and prot kept either way).',
    'An entry only partly inside the range is split (*The split rule*, recursively) only where its prot or presence actually changes; one that stays is left whole. With `kernel4k` every page of the range ends up in a 4K entry (the kernel\'s `force_split`), whatever it had, and the pieces outside the range follow the split rule.',
    'With `alias`, for each frame f that an entry of the range (present or not: the kernel\'s `cpa->pfn` comes from either) holds at a vpn outside the direct map (`isDirectMapVpn`), the page `directMapVpn(f)` then, as a second step after the range\'s own change, gets the change\'s `write` and `cache` fields only (never `exec`: the direct map stays NX; never `global`, `present` or `kernel4k`: strict keeps the alias mapped and its page size its own) by the same rule; alias pages without an entry are skipped (`cpa_process_alias`).',
    'With `collapse` (`set_memory_rox`), after the change and its alias step: for each 2M-aligned block B meeting the range, in address order, if B is mapped by 512 present 4K leaves with one prot without `kernel4k` and contiguous frames from a 2M-aligned pfn, and the CPU has PSE, they become one 2M leaf with that prot (`collapse_pmd_page`); right after such a collapse, if the CPU has GB pages and the 1G block around B is then 512 present 2M leaves with one prot and contiguous frames from a 1G-aligned pfn, they become one 1G leaf (`collapse_pud_page`). Strict follows the kernel\'s rule here, except that the kernel collapses only when the change itself wrote an entry (`cpa_flush` runs the collapse). A block that cannot collapse stays as it is: collapse never fails.',
    'Flushed on all CPUs (*The flushes operations promise*): `[vpn, vpn+pages)`, with `alias` the direct-map pages of all those frames, mapped or not, and with `collapse` every block collapsed. Frames are unchanged.',
  ],
  linux: [
    '`alias: true` is `set_memory_*`\'s default (`cpa_process_alias` runs); `alias: false` is `CPA_NO_CHECK_ALIAS` (`set_memory_np_noalias`). The change is CPA\'s masks (*CPA\'s bits in abstract terms*); a request with no mask and no `kernel4k` changes nothing and flushes nothing. The range is walked in steps from its first page (`__change_page_attr_set_clr`), each step on the entry (leaf or non-present entry) at the current page, with `rem` pages left:',
    '**No entry** (a zero entry; `__cpa_process_fault`): for an alias walk, skip one page. For the primary walk inside the direct map `[PAGE_OFFSET, PAGE_OFFSET + frames)`, skip one page (holes are expected there), and the step\'s pfn is that page\'s frame. Elsewhere the walk stops with EFAULT; unless the pfn of the previous step (0 before the first) lies in the high-map frame range, the kernel first warns "CPA: called for zero pte" (event `zero-pte`).',
    '**A 4K entry**: new = old with the masks applied; if new is present, static protections (below, at level `protect`) remove forbidden bits from it; `verify_rwx` may warn; a non-present result loses G (`pgprot_clear_protnone_bits`). If new differs, it is written and the walk marks "changed" (`CPA_FLUSHTLB`). One page.',
    '**A large entry with `kernel4k`** (`force_split`; `should_split_large_page`): split it (below) at once, without any of the tests that follow, and start the step again, so every entry the walk meets ends 4K and gets `kernel4k` by the 4K rule above.',
    '**A large entry** (`__should_split_large_page`), covering n = min(rem, pages to its end): (1) if static protections (level `conflict`, over the whole large page, with the large-page exemption) would change its current prot, the kernel WARNs once (event `conflict`) and splits it with fix-ups (below); (2) else if the masks leave its prot unchanged: keep it, step n pages; (3) else if the step does not start at its first page or n is not all of it: split; (4) else new = masked prot with static protections (level `detect`, prints nothing) and `verify_rwx`; if the protections changed anything: split; otherwise the large entry gets new, the walk marks "changed", step n pages.',
    '**A split** (`__split_large_page`) needs one table (ENOMEM when the pool has none: the walk stops there), makes 512 entries of the next size with the same prot (G cleared if not present), then flushes every TLB (`flush_tlb_all`) and the step starts again on the new entry. Once a walk has met a conflict (`force_static_prot`, which stays set for the rest of the walk and is copied into its alias walks), each split runs static protections (`protect`, lpsize 0) on each new entry — while the large entry is still installed, so Text RO applies there — and a new 4K entry gets the result; a new 2M entry cannot be fixed: after the static-protection lines of the first one that would change, the kernel prints "CPA: Cannot fixup static protections for PUD split" (once per boot) and keeps it as it was.',
    '**Aliases.** After each primary step that succeeded, with `alias`, `cpa_process_alias` runs with the step\'s first pfn p and its page count n, if p < frames (`pfn_range_is_mapped`): if the step\'s page is outside the direct map, the direct-map alias: the walk above on `[PAGE_OFFSET + p, +n)`, as an alias walk, with NX taken out of both masks; its error (only ENOMEM can happen) stops the primary walk with that error. If the step\'s page is outside the image\'s VA range `[_text, _brk_end)` and p is in the high-map frame range, the high-map alias: the same on `[__START_KERNEL_map + p, +n)`, its error ignored. Either sets `force_flush_all`. An alias walk\'s "changed" is its own: it is not the primary walk\'s.',
    '**Static protections** (`static_protections`), on a present prot for the pages `[start, start+npg)` mapping frames from pfn, with large-page size lpsize (0 for a 4K entry), over the kernel image as the frames give it (`kernelImage`: the text, rodata and data runs, mapped through the high map at `__START_KERNEL_map` + pa, phys_base 0): *Text NX*: if the pages meet `[_text, _etext)`, NX is forbidden (kept clear); *Text RO*: unless the pages are exactly one aligned large page of size lpsize, if they meet `[_text, __end_rodata_hpage_align)` and the entry at start is not 4K, RW is forbidden (so a 4K text page can be made writable, and so can a whole 2M one); *Rodata RO*: if the frames meet the rodata frames, RW is forbidden (every alias). PCIBIOS NX does not apply: no PCI BIOS.',
    'At levels `conflict` and `protect`, each rule that removes a bit the prot has is printed (event `static-protection`, naming the rule). `verify_rwx` warns once per boot ("CPA detected W^X violation", event `wx`) when RW or NX changed, and the new prot is RW and not NX (the tables above a leaf never clear RW or set NX here).',
    '**Event fields** (the range the kernel prints): `static-protection`, the pages and first frame `static_protections` was given (a 4K entry: its page, 1, its frame; the conflict test: the large entry\'s first page, all its pages, its frame; a split\'s fix-up: the new entry\'s first page, its pages, its frame); `conflict` and `pud-fixup`, the large entry being split; `wx`, what `verify_rwx` was given (a 4K entry, or the whole large entry); `zero-pte`, the page, 1, and the previous step\'s frame (0 before the first). The kernel prints no range for conflict, pud-fixup and zero-pte; these are ptspec\'s. Events come in the order the walk meets them; within `static_protections` Text NX, Text RO, Rodata RO.',
    '**The result**: the first error, or ok. Earlier steps and aliases stay changed (not atomic). Flush (`change_page_attr_set_clr`): nothing more unless the primary walk marked "changed" — so a change made only in an alias is not flushed (splits aside); on an error every TLB is flushed (`cpa_flush_all`); otherwise every TLB if `force_flush_all` or pages > 33 (`tlb_single_page_flush_ceiling`), else each page of `[vpn, vpn+pages)`. Flushing every TLB also meets every obligation and pending table (flushAll), and so does every split (*Flushes (linux profile)*).',
    '**With `collapse`** (`CPA_COLLAPSE`, `set_memory_rox`), and only when the flush above ran without an error (`cpa_flush` calls `cpa_collapse_large_pages`): for each 2M-aligned block B from the one containing vpn while its start is below vpn+pages, in order (`collapse_large_pages`): if the 1G entry above B is a table and B\'s 2M entry is a present table (a PTE table), `collapse_pmd_page` collapses B when the CPU has PSE, the first PTE\'s frame is 2M-aligned and it has no `kernel4k`, and the other 511 PTEs are present with the first\'s prot and contiguous frames (the first PTE\'s P is not tested, but the flag comparison makes it present too: all 512 are present leaves): B becomes one 2M leaf with that prot. Right after such a collapse, `collapse_pud_page` collapses the 1G block around B when the CPU has GB pages (`direct_gbpages`) and its 512 entries are present 2M leaves with one prot and contiguous frames from a 1G-aligned pfn. Aliases are never collapsed. If anything collapsed, every TLB is flushed (`flush_tlb_all`) and the freed tables go back to the pool; collapse prints nothing and never fails.',
    '**A cache change** (`set_memory_uc` / `set_memory_wc` / `set_memory_wb` and memtype): `set_memory_uc` and `set_memory_wc` first reserve the frames\' memory type (`memtype_reserve` on `__pa` of the range; arch/x86/mm/pat/memtype.c, `reserve_ram_pages_type`), `set_memory_wb` frees it after its walk. ptspec tracks the reservation (`FrameRun.memtype`) for the frames `[f, f+pages)` that `__pa` gives when vpn lies in the direct map (f = vpn - PAGE_OFFSET) or at or above `__START_KERNEL_map` (f = vpn - `__START_KERNEL_map`, phys_base 0: `__phys_addr` treats the image, modules and fixmap alike), and those frames lie in `[0x100, frames)`: RAM above the ISA range, as `pat_pagerange_is_ram` counts it. Elsewhere (vmalloc, ioremap, a range below 1 MiB or past the end of RAM) `__pa` names no RAM frame and the kernel\'s reservation lives in its tree of non-RAM ranges, which ptspec does not model: no reservation, no EBUSY.',
    '*Cache UC-* (`set_memory_uc`): EBUSY if any tracked frame has a memtype (one not WB), and nothing changes; else the frames get memtype UC-, then the walk with cache UC-; if the walk fails, the memtype is freed (`memtype_free`) and its error returned.',
    '*Cache WC* (`set_memory_wc`): the same reservation with WC; then `_set_memory_wc`: a whole request with cache UC- (walk and flush as above), and only if it succeeded a second whole request with cache WC; if either fails the memtype is freed.',
    '*Cache WB* (`set_memory_wb`): the walk with cache WB; if it succeeded, the tracked frames\' memtype is freed (reset to WB).',
    '*Cache WT, UC or WP*: no `set_memory_*` takes them (only `_set_memory_wt`, with no reservation): the walk alone. The other fields of the change go into the same walk(s). Strict has no reservations: its policy keeps every alias of a frame on one memory type instead (T5).',
  ],
  sources: [
    'arch/x86/mm/pat/set_memory.c of gregkh/linux 53c2f13c: `change_page_attr_set_clr`, `__change_page_attr_set_clr`, `__cpa_process_fault`, `should_split_large_page`, `__should_split_large_page`, `__split_large_page`, `split_set_pte`, `static_protections`, `verify_rwx`, `pgprot_clear_protnone_bits`, `cpa_process_alias`, `cpa_flush`, `cpa_collapse_large_pages`, `collapse_large_pages`, `collapse_pmd_page`, `collapse_pud_page`, `_set_memory_wc`',
    'arch/x86/mm/pat/memtype.c: `memtype_reserve`, `memtype_free`, `reserve_ram_pages_type`, `pat_pagerange_is_ram`',
    'arch/x86/mm/tlb.c of gregkh/linux 399ec9ca: `tlb_single_page_flush_ceiling`',
  ],
};
