/**
 * Mutants: the impl with one historical kernel bug class injected, by name. The fuzzer
 * must catch each one (a result mismatch, a refinement mismatch, a violated invariant or
 * a finding of checkTables); a mutant nothing catches is a hole in the checks.
 *
 * Each mutant is one cheap branch in the impl, guarded by `mutant === name`.
 */

export const MUTANT_NAMES = [
  'split-drops-pat',
  'split-drops-nx',
  'unmap-no-split',
  'collapse-non-uniform',
  'collapse-without-pse',
  'leak-empty-table',
  'free-while-linked',
  'free-before-flush',
  'no-alias',
  'leaf-only-permission',
  'protect-no-flush',
  'noflush-no-obligation',
  'collapse-ignores-kernel4k',
  'memtype-no-reserve',
  'vunmap-keeps-huge-tail',
  'alias-flush-missed',
  'split-keeps-large-tlb',
  'remote-cpu-not-flushed',
  'walk-cache-survives-flush',
  'table-freed-before-purge',
  'gmem-freed-without-restore',
  'pti-clone-unaligned-advance',
  'freed-image-hole-in-user-copy',
  'kernel-half-user-bit',
  'ldt-old-slot-not-unmapped',
  'ldt-pte-global',
  'asi-clone-fixed-pgd-count',
  'sensitive-frame-in-restricted-root',
  'missing-pgd-sync',
  'walker-follows-pending-table',
  'apply-writes-through-huge-leaf',
  'kunmap-out-of-order',
  'mermap-free-without-flush',
  'unmapped-pool-no-flush',
  'vfree-frees-before-flush',
  'gather-frees-without-flush',
  'hot-remove-keeps-direct-map',
  'hot-remove-no-flush',
] as const;

export type MutantName = (typeof MUTANT_NAMES)[number];

export interface Mutant {
  readonly name: MutantName;
  /** What the injected bug does, in a sentence. */
  readonly description: string;
  /** The kernel code or commit whose bug class it models. */
  readonly reference: string;
  /** What should catch it (a hint for whoever reads a campaign report). */
  readonly caughtBy: string;
}

export const MUTANTS: readonly Mutant[] = [
  {
    name: 'split-drops-pat',
    description: 'split_large_page drops PAT instead of moving it (bit 12 on 2M/1G, bit 7 on 4K), so the pieces of a WT/WP leaf change cache mode.',
    reference: 'arch/x86/mm/pat/set_memory.c split_large_page: pgprot_large_2_4k (the 2020 rework "x86/mm: Cleanup pgprot_4k_2_large() and pgprot_large_2_4k()" broke boot on AMD, thread "AMD boot woe")',
    caughtBy: 'postcondition protect.leaves and unmap.leaves (cache mode of the split pieces), refinement',
  },
  {
    name: 'split-drops-nx',
    description: 'split_large_page builds the pieces without NX, so splitting a non-executable huge page makes every piece executable.',
    reference: 'arch/x86/mm/pat/set_memory.c __split_large_page: ref_prot must carry _PAGE_NX into each PTE (NX is in the high word, easy to drop when only the low flags are copied)',
    caughtBy: 'result mismatch, postcondition unmap.leaves (exec of the split pieces), P1 no_leaf_writable_and_executable',
  },
  {
    name: 'unmap-no-split',
    description: 'unmapping part of a huge leaf clears the whole leaf instead of splitting it first.',
    reference: 'arch/x86/mm/pat/set_memory.c unmap_pmd_range / unmap_pud_range: a range covering part of a large page must split it (__split_large_page) before clearing entries',
    caughtBy: 'postcondition unmap.leaves and setDirectMapInvalid.leaves (pages outside the range disappear), refinement',
  },
  {
    name: 'collapse-non-uniform',
    description: 'collapse_large_pages checks only that the frames are contiguous, not that the 512 entries have identical protections.',
    reference: 'arch/x86/mm/pat/set_memory.c collapse_pmd_page (41d88484c71c, "x86/mm/pat: restore large ROX pages after fragmentation"): every entry must equal the first',
    caughtBy: 'result mismatch (ok instead of EINVAL)',
  },
  {
    name: 'collapse-without-pse',
    description: 'collapse creates a 2M/1G leaf without checking that the CPU supports that size (PSE / GB pages).',
    reference: '1dbf30fdb5e5 "x86/mm/pat: dont collapse pages without PSE set" (fixes 41d88484c71c: collapse_pmd_page made PMD leaves on Xen PV guests without PSE)',
    caughtBy: 'result mismatch (ok instead of EINVAL), checkTables PS placement',
  },
  {
    name: 'leak-empty-table',
    description: 'a page table whose last entry goes stays allocated and linked instead of being freed.',
    reference: 'arch/x86/mm/pat/set_memory.c try_to_free_pte_page / try_to_free_pmd_page (unmap_pte_range frees the emptied PTE page)',
    caughtBy: 'postcondition unmap.tables and collapse.tables (tablesInUse), checkTables empty reachable table',
  },
  {
    name: 'free-while-linked',
    description: 'an emptied page table is returned to the pool while its parent entry still points to it, so it can be reused under the old parent.',
    reference: '5e0fb5df2ee8 "x86/mm: Add TLB purge to free pmd/pte page interfaces" (pmd_free_pte_page freed a table still reachable from the walk/paging-structure caches)',
    caughtBy: 'checkTables (reachable table not allocated), postcondition unmap.tables',
  },
  {
    name: 'free-before-flush',
    description: 'a page table emptied by set_direct_map_invalid_noflush is freed at once instead of waiting for the TLB flush, so it can be reused while another CPU\'s paging-structure cache still walks through it.',
    reference: '5e0fb5df2ee8 "x86/mm: Add TLB purge to free pmd/pte page interfaces" (pud_free_pmd_page / pmd_free_pte_page freed a table before the flush that purges the paging-structure caches)',
    caughtBy: 'postcondition setDirectMapInvalid.tables (pendingTableFrees), refinement, then ENOMEM outcomes on a small pool',
  },
  {
    name: 'no-alias',
    description: 'protect with alias does not update the direct-map alias of the frames (cpa_process_alias skipped).',
    reference: 'arch/x86/mm/pat/set_memory.c cpa_process_alias: set_memory_ro on vmalloc/module memory must also make the direct-map alias read-only',
    caughtBy: 'result mismatch, postcondition protect.alias (direct-map prot), refinement',
  },
  {
    name: 'leaf-only-permission',
    description: 'split writes the new table entry with the huge leaf\'s RW/NX instead of _KERNPG_TABLE, and the walk (abstraction, translate, access) reads permissions from the leaf alone, so restrictions at table level are hidden.',
    reference: '1494e0c38ee9 "x86: mm: ptdump: calculate effective permissions correctly" (fixes 2ae27137b2db: ptdump took W+X from the leaf entry alone)',
    caughtBy: 'checkTables (table entry flags, effective permission walk)',
  },
  {
    name: 'protect-no-flush',
    description: 'protect changes the entries but does not flush the TLBs (cpa_flush skipped), leaving stale, more permissive translations cached.',
    reference: 'arch/x86/mm/pat/set_memory.c change_page_attr_set_clr → cpa_flush (every attribute change is followed by a flush of the changed range on all CPUs)',
    caughtBy: 'postcondition protect.tlb (a stale TLB entry survives), refinement (TLB contents)',
  },
  {
    name: 'noflush-no-obligation',
    description: 'set_direct_map_invalid_noflush and vunmap_range_noflush (unmap with flush=false) record no flush obligation, so nobody owes the flush that removes the stale translation.',
    reference: 'arch/x86/mm/pat/set_memory.c set_direct_map_invalid_noflush (mm/secretmem.c secretmem_fault must flush_tlb_kernel_range after it); mm/vmalloc.c vunmap_range_noflush (free_vmap_area_noflush queues the range for the lazy purge, purge_vmap_area_lazy flushes it)',
    caughtBy: 'postcondition setDirectMapInvalid.obligations and unmap.obligations (pendingFlush), refinement',
  },
  {
    name: 'collapse-ignores-kernel4k',
    description: 'collapse (the collapse operation and set_memory_rox\'s CPA_COLLAPSE) never looks at _PAGE_KERNEL_4K: a block whose 4K entries set_memory_4k marked is collapsed anyway, and the 2M leaf keeps the first entry\'s bits, the mark included.',
    reference: 'arch/x86/mm/pat/set_memory.c collapse_pmd_page: "if (pte_flags(*pte) & _PAGE_KERNEL_4K) return 0" (41d88484c71c, "x86/mm/pat: restore large ROX pages after fragmentation", added it with _PAGE_KERNEL_4K so set_memory_4k pages stay 4K)',
    caughtBy: 'result mismatch (ok instead of EINVAL on collapse after set_memory_4k), refinement (a 2M leaf where the model keeps 4K ones), checkTables kernel4k on a large entry',
  },
  {
    name: 'memtype-no-reserve',
    description: 'linux set_memory_uc / set_memory_wc skip reserve_ram_pages_type\'s check, so a frame that already has a memory type reserved gets another one: a second set_memory_uc succeeds instead of EBUSY.',
    reference: 'arch/x86/mm/pat/memtype.c reserve_ram_pages_type: "if (type != _PAGE_CACHE_MODE_WB) ... return -EBUSY" for a page whose memtype is already set (set_memory_uc / set_memory_wc call memtype_reserve first)',
    caughtBy: 'result mismatch under the linux profile (ok instead of EBUSY); needs the fuzzer to run the linux profile',
  },
  {
    name: 'vunmap-keeps-huge-tail',
    description: 'linux vunmap of part of a 2M/1G leaf splits it and clears only the pages in the range, leaving the tail mapped, instead of clearing the huge entry whole (pmd_clear_huge / pud_clear_huge ignored, and no WARN).',
    reference: 'mm/vmalloc.c vunmap_pmd_range / vunmap_pud_range: "if (pmd_clear_huge(pmd)) { WARN_ON(next - addr < PMD_SIZE); continue; }" (since "mm: change vunmap to tear down huge KVA mappings", 2015: a huge ioremap/vmalloc mapping is torn down whole, never split)',
    caughtBy: 'result mismatch on the events under the linux profile (the model WARNs vunmap-huge, the mutant prints nothing), refinement (the tail\'s leaves, which the model has removed); needs the fuzzer to run the linux profile',
  },
  {
    name: 'alias-flush-missed',
    description: 'strict protect with alias flushes the requested range only, not the direct-map alias ranges cpa_process_alias changed, so a CPU keeps the alias cached with its old, more permissive attributes.',
    reference: 'arch/x86/mm/pat/set_memory.c cpa_process_alias / change_page_attr_set_clr: the alias walk runs on its own cpa_data, so its changes are flushed only because the primary one sets force_flush_all (the flush the alias needs is easy to lose: cpa_flush flushes nothing when only an alias changed)',
    caughtBy: 'postcondition protect.tlb (the stale alias entry survives), refinement (TLB contents), L1/L2',
  },
  {
    name: 'split-keeps-large-tlb',
    description: 'a split flushes nothing (the split operation, and __split_large_page\'s flush_tlb_all under the linux profile), so the stale 2M/1G TLB entry survives beside the new small entries.',
    reference: 'arch/x86/mm/pat/set_memory.c __split_large_page: "Do a global flush tlb after splitting the large page and before we do the actual change page attribute in the PTE" (Intel\'s TLB application note: a 4K and a large translation of one address that differ are undefined behaviour)',
    caughtBy: 'postcondition split.tlb (the large entry is still cached), refinement (TLB and paging-structure caches), L2/L3',
  },
  {
    name: 'remote-cpu-not-flushed',
    description: 'range flushes (flush_tlb_kernel_range, and every range flush an operation makes) reach only CPU 0, the initiating CPU: no IPI to the others, whose TLB entries and paging-structure caches survive, while the obligations are discharged and pending tables released as if they had been flushed.',
    reference: 'arch/x86/mm/tlb.c flush_tlb_kernel_range: on_each_cpu(do_kernel_range_flush, ...) must run on every CPU (a local __flush_tlb_one_kernel is flush_tlb_one_kernel, the kmap_local flush, which is for CPU-local mappings only)',
    caughtBy: 'postcondition unmap.tlb / protect.tlb / flush.tlb (an entry of another CPU survives), refinement, L1/L2/D7',
  },
  {
    name: 'walk-cache-survives-flush',
    description: 'flushes drop TLB entries but never empty the paging-structure caches, so a CPU keeps walking from a cached table entry after the table was unlinked, and a table freed after the flush is still cached (\'freed\').',
    reference: 'Intel SDM vol. 3 §4.10.4.1: INVLPG invalidates all paging-structure-cache entries whatever the address; 5e0fb5df2ee8 "x86/mm: Add TLB purge to free pmd/pte page interfaces" relies on it (a flush that purged only the TLB would leave the freed table walkable)',
    caughtBy: 'postcondition unmap.tlb (walk cache not emptied, entries \'freed\'), refinement (walkCache), L4',
  },
  {
    name: 'table-freed-before-purge',
    description: 'linux profile: a huge map over a kept page table (vmap_try_huge_pmd / _pud) frees the table without pmd_free_pte_page\'s one-page flush, so a CPU that cached the table entry still walks through the freed page.',
    reference: '5e0fb5df2ee8 "x86/mm: Add TLB purge to free pmd/pte page interfaces" (arch/x86/mm/pgtable.c pmd_free_pte_page / pud_free_pmd_page: flush_tlb_kernel_range of one page, "INVLPG to clear all paging-structure caches", before free_page)',
    caughtBy: 'refinement under the linux profile (walkCache \'freed\' against empty, the stale TLB entry and obligation at the leaf\'s page), L4 finding; needs the fuzzer to run the linux profile',
  },
  {
    name: 'gmem-freed-without-restore',
    description: 'strict freeFrames does not refuse a frame still removed from the direct map (D6), as guest_memfd freeing a folio without restoring its direct-map entry first.',
    reference: 'KVM guest_memfd direct-map removal (lkml 2025): kvm_gmem_free_folio must call set_direct_map_valid_noflush(true) before the folio goes back (mm/secretmem.c secretmem_free_folio: set_direct_map_default_noflush)',
    caughtBy: 'result mismatch (ok instead of EPERM D6 on freeFrames), refinement (frame runs), D6',
  },
  {
    name: 'pti-clone-unaligned-advance',
    description: 'ptiClone at PMD level advances addr by PMD_SIZE from an unaligned start, so when the end lies less far into its 2M block than the start the last block is never cloned into the user copy.',
    reference: 'arch/x86/mm/pti.c pti_clone_pgtable: 825d0b73cd75 (round_up over pud/pmd holes) and 41e71dbb0e0a "x86/mm: Fix pti_clone_pgtable() alignment assumption" (addr = round_up(addr + 1, PMD_SIZE) after a cloned pmd)',
    caughtBy: 'refinement (root 1\'s leaves: the model clones the last block), postcondition ptiClone',
  },
  {
    name: 'freed-image-hole-in-user-copy',
    description: 'ptiClone at PMD level overwrites only the units it copies, so a page of the block that init_mm no longer maps (a freed kernel-image hole) stays mapped, global, in the user copy.',
    reference: 'c40a56a7818c "x86/mm/init: Remove freed kernel image areas from alias mapping" (a stale alias of freed image memory escapes every rule); arch/x86/mm/pti.c pti_clone_kernel_text copies whole pmds',
    caughtBy: 'refinement (root 1 keeps a leaf the model dropped), K3 global_translations_are_the_same_in_every_root',
  },
  {
    name: 'kernel-half-user-bit',
    description: 'ptiClone writes root 1\'s kernel-half top-level entries with _PAGE_USER, as the "Total Meltdown" PML4 entry did: the table level no longer keeps user mode out of the kernel half.',
    reference: 'arch/x86/mm/pti.c pti_user_pagetable_walk_p4d (set_pgd with _KERNPG_TABLE, no _PAGE_USER, for kernel addresses); CVE-2018-1038 (a user-accessible top-level entry exposed every page table)',
    caughtBy: 'checkTables table-flags (a kernel-half table entry that is not _KERNPG_TABLE)',
  },
  {
    name: 'ldt-old-slot-not-unmapped',
    description: 'setLdt installs the new LDT but never unmaps the old one from its slot, so the frames go back to their owner still mapped in the process\'s roots.',
    reference: 'arch/x86/kernel/ldt.c unmap_ldt_struct, called by install_ldt\'s caller before free_ldt_struct (Kirill Shutemov,  "x86/ldt: Unmap PTEs for the slot before freeing LDT pages", linux-mm, October 2018)',
    caughtBy: 'refinement (the process roots keep the old slot\'s PTEs), K5 ldt_pages_unmapped_and_flushed_before_freed once the frames are freed',
  },
  {
    name: 'ldt-pte-global',
    description: 'setLdt maps the LDT PTEs with _PAGE_GLOBAL, as a prot ORed with __supported_pte_mask instead of ANDed does: a per-process mapping every CPU keeps across address-space switches.',
    reference: 'arch/x86/kernel/ldt.c map_ldt_struct: __PAGE_KERNEL_RO & ~_PAGE_GLOBAL, then filtered by __supported_pte_mask (e6f39e87b643 "x86/ldt: Fix support_pte_mask filtering in map_ldt_struct()": |= where &= was meant, an invalid PTE)',
    caughtBy: 'refinement (prot of the LDT leaves), postcondition setLdt, K3 global_translations_are_the_same_in_every_root',
  },
  {
    name: 'asi-clone-fixed-pgd-count',
    description: 'createProcess clones a fixed count of top-level entries into the ASI root (VMALLOC_START up to the cpu_entry_area), so the ASI root misses the espfix, EFI and kernel-image entries the global ASI root has.',
    reference: 'arch/x86/mm/asi.c asi_init / asi_clone_pgd of the ASI series (bjackman/linux 003868f6); arch/x86/mm/pgtable.c pgd_ctor clones KERNEL_PGD_PTRS entries, never a hard-coded count',
    caughtBy: 'refinement (the process\'s asi root lacks the image mapping), K4 top_level_entries_identical_across_roots',
  },
  {
    name: 'sensitive-frame-in-restricted-root',
    description: 'strict asiMap (and maps from VMALLOC_START up, which every ASI root shares) never asks A1, so a sensitive frame becomes visible in the restricted address space.',
    reference: 'arch/x86/mm/asi.c asi_map of the ASI series (bjackman/linux 003868f6): only __GFP_SENSITIVE-free memory may enter the restricted physmap',
    caughtBy: 'result mismatch (ok instead of EPERM A1), A1 restricted_roots_map_no_sensitive_frame',
  },
  {
    name: 'missing-pgd-sync',
    description: 'a new top-level kernel entry of init_mm never reaches the live processes\' pgds (no sync_global_pgds), so a process sees vmalloc or hotplugged memory unmapped.',
    reference: 'arch/x86/mm/init_64.c (gregkh/linux 6bf94737) sync_global_pgds; "x86/mm/64: define ARCH_PAGE_TABLE_SYNC_MASK and arch_sync_kernel_mappings()" (Harry Yoo, 2025: vmemmap populated after 8d400913c231 was reached before sync_global_pgds ran)',
    caughtBy: 'refinement (a process root\'s view of the new slot), K4 top_level_entries_identical_across_roots',
  },
  {
    name: 'walker-follows-pending-table',
    description: 'strict walkPageRange descends into a page table that an unmap emptied and left pending free, as if its parent entry still pointed to it, reporting none PTEs where the unlinked table\'s range is a hole.',
    reference: 'mm/pagewalk.c walk_kernel_page_table_range: "Kernel intermediate page tables are usually not freed ... E.g. memory hot-remove" (a walker reaching a table being freed; the ptdump walkers hold the init_mm lock "to account for concurrent kernel page table freeing")',
    caughtBy: 'result mismatch (walkPageRange\'s visits: table and none against hole), refinement',
  },
  {
    name: 'apply-writes-through-huge-leaf',
    description: 'applyToPageRange takes a 2M leaf\'s entry for a PTE table pointer and writes the PTEs into the frame it maps (only into one the pool holds as a table: data frames are not simulated) instead of failing with EINVAL.',
    reference: 'mm/memory.c (gregkh/linux bb1d93ee) apply_to_pmd_range: "if (WARN_ON_ONCE(pmd_leaf(*pmd))) return -EINVAL" (mm/vmalloc.c: apply_to_page_range does not support huge mappings)',
    caughtBy: 'result mismatch (ok instead of EINVAL), checkTables (a table written with PTEs) when the leaf maps a table frame',
  },
  {
    name: 'kunmap-out-of-order',
    description: 'strict kunmapLocal of a slot below the top of its CPU\'s stack clears that slot anyway and pops the stack, instead of refusing: the stack then holds a slot that maps nothing, and the top slot stays mapped outside it.',
    reference: 'mm/highmem.c kunmap_local_indexed: WARN_ON_ONCE(addr != __fix_to_virt(FIX_KMAP_BEGIN + idx)), then the top slot is cleared and popped (kmap_local unmaps in stack order)',
    caughtBy: 'result mismatch (ok instead of EINVAL), refinement (clients.kmap, the slots\' leaves), C3 kmap_local_slots_form_a_stack_of_their_cpu',
  },
  {
    name: 'mermap-free-without-flush',
    description: 'strict freeFrames ignores the stale mermap allocations (put without a flush), so it frees a frame that its CPU may still translate through the mermap.',
    reference: 'mm/mermap.c of the __GFP_UNMAPPED series (linux-mm/linux-mm b7f5c72f): "The caller must do a full TLB flush of the region before freeing the pages that were mapped there" (mermap_put does not flush)',
    caughtBy: 'result mismatch (ok instead of EPERM C1), C1 no_frame_freed_while_a_tlb_may_still_translate_to_it',
  },
  {
    name: 'unmapped-pool-no-flush',
    description: 'allocUnmapped takes a pageblock out of the direct map without the flush that follows (the removal owed instead), so the handed-out page\'s direct-map translation may still be cached.',
    reference: 'mm/page_alloc.c of the __GFP_UNMAPPED series (bjackman/linux a3c87cc7) __rmqueue_direct_map: set_direct_map_valid_noflush(false), then flush_tlb_kernel_range over the block before it is handed out',
    caughtBy: 'refinement (pendingFlush, TLB entries at the direct-map pages), C6 handed_out_unmapped_pages_are_unreachable_through_the_direct_map',
  },
  {
    name: 'vfree-frees-before-flush',
    description: 'strict vfree frees the area\'s pages before its range is flushed: the flush is left to the lazy purge, which comes after, as linux\'s vfree does.',
    reference: 'mm/vmalloc.c (gregkh/linux 04aa71da) vfree: __free_page of every page after free_unmap_vmap_area (vunmap_range_noflush, free_vmap_area_noflush) and before __purge_vmap_area_lazy flushes; include/asm-generic/tlb.h: "we must never free a page before we have ensured there are no live translations left to it"',
    caughtBy: 'refinement (pendingFlush, TLB entries), C1 (a lazily freed area still owed a flush with its frames free), D7',
  },
  {
    name: 'gather-frees-without-flush',
    description: 'zapPageRange unhooks the range from the process and frees the pages it gathered but leaves out the TLB invalidate (the process flush), so a CPU may still translate a user page to a freed frame.',
    reference: 'include/asm-generic/tlb.h (torvalds/linux 0758cd83): "1) unhook page 2) TLB invalidate page 3) free page"; mm/mmu_gather.c (torvalds/linux 06d07429) tlb_flush_mmu: tlb_flush_mmu_tlbonly before tlb_flush_mmu_free',
    caughtBy: 'D7 free_frames_cached_only_at_their_direct_map_page (a process TLB entry of a freed frame), refinement (the process roots\' TLB entries), postcondition zapPageRange (the process flush)',
  },
  {
    name: 'hot-remove-keeps-direct-map',
    description: 'removeMemory frees the struct pages but leaves out kernel_physical_mapping_remove, so the direct map still maps the memory that left the machine.',
    reference: 'arch/x86/mm/init_64.c (gregkh/linux 6bf94737) arch_remove_memory: __remove_pages, then kernel_physical_mapping_remove of [start, start + size) (remove_pagetable with direct)',
    caughtBy: 'D8 direct_map_maps_no_absent_frame, postcondition removeMemory.leaves, refinement (the direct-map leaves)',
  },
  {
    name: 'hot-remove-no-flush',
    description: 'removeMemory clears the vmemmap and the direct map and frees the emptied tables without remove_pagetable\'s flush_tlb_all, so a CPU may still translate to memory that is gone, through a freed table too.',
    reference: 'arch/x86/mm/init_64.c (gregkh/linux 6bf94737) remove_pagetable: flush_tlb_all after the walk; remove_pte_table flushes before free_pte_table frees the table',
    caughtBy: 'postcondition removeMemory.tlb, refinement (TLB entries, paging-structure caches), L1 and L4 (a cached table freed)',
  },
];

export function isMutantName(name: string): name is MutantName {
  return (MUTANT_NAMES as readonly string[]).includes(name);
}
