/**
 * Memory hotplug as a client of the page tables (PageTableSystem.clients): add_memory and
 * offline_and_remove_memory of whole memory blocks (spec/clients.ts MEMORY_BLOCK_PAGES),
 * with their argument validator. Read from gregkh/linux 1bab7eea mm/memory_hotplug.c and
 * gregkh/linux 6bf94737 arch/x86/mm/init_64.c. The contracts: CONTRACTS.addMemory and
 * CONTRACTS.removeMemory (HOTPLUG_CONTRACTS below); absent frames and the memmap on the
 * memory: HOTPLUG_RULES.
 */
import { isAligned, pfnToHex, type Pfn } from '../address.ts';
import { MEMORY_BLOCK_PAGES } from '../clients.ts';
import type { PtError } from '../errors.ts';
import type { SystemConfig } from '../state.ts';
import { checkFrameCount, checkPfnRange, einval, ptError } from './args.ts';
import type { ContractRule, ContractsOf, Precondition } from './contract.ts';

/**
 * addMemory's and removeMemory's preconditions that need no state (EINVAL): a frame of
 * memory on a block boundary, then whole blocks inside memory. Trusted: shared by model
 * and impl, not checked by refinement.
 */
export function validateHotplug(config: SystemConfig, pfn: Pfn, count: number): PtError | null {
  return (
    checkPfnRange(config, pfn, 1) ??
    (isAligned(pfn, MEMORY_BLOCK_PAGES) ? null : ptError('EINVAL', 'pfn', `frame ${pfnToHex(pfn)} is not on a memory-block boundary (${MEMORY_BLOCK_PAGES} frames)`)) ??
    checkFrameCount(config, pfn, count) ??
    (count % MEMORY_BLOCK_PAGES === 0 ? null : ptError('EINVAL', 'count', `${count} frames are not whole memory blocks of ${MEMORY_BLOCK_PAGES} frames`))
  );
}

/** validateHotplug as the contracts state it. */
const BLOCK_ARGS: readonly Precondition[] = [
  einval('pfn', 'not a frame of memory, or not on a memory-block boundary'),
  einval('count', '< 1, running past the end of memory, or not whole memory blocks (`check_hotplug_memory_range`)'),
];

const HOTPLUG = 'mm/memory_hotplug.c of gregkh/linux 1bab7eea';
const INIT_64 = 'arch/x86/mm/init_64.c of gregkh/linux 6bf94737';

export const HOTPLUG_CONTRACTS: ContractsOf<'addMemory' | 'removeMemory'> = {
  addMemory: {
    signature: 'addMemory(pfn, count)',
    summary: '`add_memory` of `[pfn, pfn+count)` with MHP_MEMMAP_ON_MEMORY (`arch_add_memory`: `init_memory_mapping`, `vmemmap_populate`, `sync_global_pgds`; `online_pages`): whole memory blocks of hot-plugged memory mapped, with their struct pages, and onlined.',
    preconditions: [
      ...BLOCK_ARGS,
      { errno: 'EEXIST', arg: 'pfn', when: 'a frame of the range is not absent (`register_memory_resource`: the range is System RAM already, `__request_region` fails)' },
      {
        errno: 'EEXIST', arg: 'pfn',
        when: 'a page of a block\'s struct pages in the vmemmap already has an entry (another memory\'s memmap, or a stray mapping: `vmemmap_populate_hugepages` would keep a 2M entry it finds and fill a table it finds; ptspec refuses both readings)',
      },
      { errno: 'EPERM', arg: 'pfn', profile: 'strict', when: 'the result breaks a `STRICT_POLICY` invariant (D4 or T5: another mapping of a frame of the range, made while it was absent)' },
      { errno: 'ENOMEM', arg: 'tablePool', when: 'the tables the result needs exceed the pool; under linux also a block\'s vmemmap without PSE' },
    ],
    post: [
      'Block by block in address order (one `arch_add_memory` per block, with its altmap):',
      '1. Its direct map (`init_memory_mapping` with PAGE_KERNEL, `kernel_physical_mapping_init` after boot): every 2M slot of the block\'s direct-map range whose pmd entry is none gets one 2M PAGE_KERNEL leaf (with PSE; without, each page a 4K one); in any other slot every page without an entry gets a 4K leaf and the entries there stay (`phys_pmd_init` and `phys_pte_init` reuse what they find). A pmd is none where no entry meets the slot and no PTE table hangs there: linux keeps the tables its vunmaps empty (and its removals those outside their range), and `phys_pmd_init` fills such a table with 4K entries. A block is 128 MiB, so never a 1G leaf; in practice, with nothing there (strict can put nothing there: D1, D8), 64 2M leaves. No flush: the entries are new.',
      '2. Its struct pages (`vmemmap_populate` with the altmap): `[vmemmapVpn(block), +MEMMAP_PAGES)` mapped to the block\'s first `MEMMAP_PAGES` frames with PAGE_KERNEL, one 2M leaf where the pmd is none and the CPU has PSE (`vmemmap_populate_hugepages`), 4K leaves in the PTE table linux kept there (`vmemmap_populate_basepages` from the altmap: the same frames in order); without PSE strict maps them with 4K leaves, linux fails (`vmemmap_populate`: "no cpu support for altmap allocations").',
      '3. `sync_global_pgds`: nothing more to do here, every root that mirrors a top-level slot of init_mm (spec/roots.ts `mirrorsOf`) sees its new entries.',
      'Then (`online_pages` of each block past its memmap): the memmap frames become data, the block\'s other frames free, every other fact kept; the blocks are recorded (`ClientState.memory`). Nothing is flushed and nothing owed. Strict is atomic.',
    ],
    linux: [
      'Not atomic: when block k\'s vmemmap fails (without PSE, or the pool running out), `arch_add_memory` does not undo `init_memory_mapping`, so block k\'s direct map stays (over absent frames: a D8 finding), and the blocks before it are removed again as removeMemory removes them (`remove_memory_blocks_and_altmaps`, its flush included); no frame changes and nothing is recorded; ENOMEM.',
      'Without PSE, `vmemmap_populate` prints `vmemmap-no-altmap` (pr_err_once: the first time after boot only, the block\'s struct pages\' range), and either failure makes `add_pages` print `add-pages-failed` (`WARN_ON_ONCE(ret)`, once too; the block\'s direct-map range).',
      'The kernel would oops where its direct map runs out of tables (`alloc_low_page` is unchecked): ptspec lets that step change nothing and print nothing instead, the blocks before it removed again all the same.',
    ],
    sources: [
      `${HOTPLUG}: \`add_memory_resource\`, \`register_memory_resource\`, \`check_hotplug_memory_range\`, \`mhp_supports_memmap_on_memory\`, \`create_altmaps_and_memory_blocks\`, \`remove_memory_blocks_and_altmaps\``,
      `${INIT_64}: \`arch_add_memory\`, \`add_pages\`, \`phys_pud_init\` / \`phys_pmd_init\` / \`phys_pte_init\` after boot, \`vmemmap_populate\`, \`sync_global_pgds\``,
    ],
  },
  removeMemory: {
    signature: 'removeMemory(pfn, count)',
    summary: '`offline_and_remove_memory` of `[pfn, pfn+count)` (`arch_remove_memory`: `vmemmap_free`, `kernel_physical_mapping_remove`, `flush_tlb_all`): hot-added memory blocks offlined, unmapped and taken out.',
    preconditions: [
      ...BLOCK_ARGS,
      { errno: 'ENOENT', arg: 'pfn', when: 'a block of the range is not one addMemory added (ptspec removes only hot-added memory, whose memmap is on it)' },
      {
        errno: 'EBUSY', arg: 'pfn',
        when: 'a frame of a block past its memmap is not free (`offline_pages` cannot isolate memory in use; ptspec migrates nothing); the offlining of every block is undone when one fails (`try_reonline_memory_block`)',
      },
      { errno: 'EBUSY', arg: 'pfn', when: 'a pageblock of the range belongs to the __GFP_UNMAPPED pool (its free pages are the pool\'s, held out of the direct map: ptspec does not offline them)' },
      { errno: 'EPERM', arg: 'pfn', profile: 'strict', when: 'the result breaks a `STRICT_POLICY` invariant (K3 or A2: an isolation root still copies a page removed from init_mm)' },
      { errno: 'ENOMEM', arg: 'tablePool', profile: 'strict', when: 'a large leaf the range covers in part must be split' },
    ],
    post: [
      'Block by block (`remove_memory_blocks_and_altmaps`: `arch_remove_memory` of each):',
      '1. `vmemmap_free` of its struct pages, then 2. `kernel_physical_mapping_remove` of its direct map, each `remove_pagetable`: the range unmapped as unmap unmaps it: every entry of either kind goes, an entry straddling an edge is split by *The split rule* and the emptied tables are freed after the flush.',
      '3. `flush_tlb_all` (`remove_pagetable` ends with it): every TLB and paging-structure cache emptied, every obligation discharged, every pending table released.',
      'Then the frames of the range become absent, `noDirectMap` cleared (the memory is gone, and with it what secretmem took from it), memtype and sensitivity kept; the blocks are no longer recorded.',
    ],
    linux: [
      'Steps 1 and 2: the present leaves wholly inside the range go; a non-present entry stays (`remove_pte_table` and `remove_pmd_table` skip what is not present, and a table holding one is not empty for `free_pte_table`); a 2M leaf only partly inside stays (its `vmemmap_pmd_is_unused` test needs the rest of the 2M unused, which a block boundary never gives), and so does a 1G leaf only partly inside (`remove_pud_table` would hand the leaf to `remove_pmd_table` as if it were a table: ptspec cannot follow it there); either way over absent frames, a D8 finding.',
      'Then, bottom-up, every table below the ones the top-level entries point to whose parent entry the walk met (its span meets the range) and whose entries are all none is freed and its parent entry cleared: `free_pte_table` after each `remove_pte_table`, `free_pmd_table` after each `remove_pmd_table` and, with 5-level paging, `free_pud_table` (`remove_p4d_table` frees PUD tables only when `pgtable_l5_enabled`: "For 4-level page tables we do not want to free PUDs"; no P4D table is ever freed). That takes the tables the clear emptied and those a vunmap kept empty before alike; a table holding a non-present entry, or a table below it that stays, is not none and stays.',
      '`remove_pte_table` flushes every TLB before `free_pte_table` frees a PTE table; the PMD and PUD tables go without a flush of their own, and the step is atomic here, its final `flush_tlb_all` taking every cached entry of them. `remove_pte_table`\'s guard for the first gigabyte compares `pte_val` plus the virtual address with 1 GiB, a sum no kernel address brings below it: it never stops a walk.',
      'Linux refuses nothing for the policy and allocates nothing, so it never fails past the state checks.',
    ],
    sources: [
      `${HOTPLUG}: \`try_remove_memory\`, \`offline_and_remove_memory\`, \`offline_pages\`, \`remove_memory_blocks_and_altmaps\``,
      `${INIT_64}: \`arch_remove_memory\`, \`remove_pagetable\`, \`remove_p4d_table\` .. \`remove_pte_table\`, \`free_pte_table\` .. \`free_pud_table\`, \`kernel_physical_mapping_remove\`, \`vmemmap_free\``,
    ],
  },
};

export const HOTPLUG_RULES: readonly ContractRule[] = [
  {
    id: 'hotplug-memmap',
    title: 'Memory hotplug: absent frames, and the memmap on the memory',
    paragraphs: [
      'Frames of hot-pluggable space not added are `absent` (spec/state.ts `FrameUse`): no memory, never in the direct map (D8). addMemory brings them in; removeMemory takes them out again.',
      'A block\'s struct pages (64 bytes per frame: 2 MiB, `MEMMAP_PAGES` frames, for a 128 MiB block) need memory of their own. Without memmap_on_memory the kernel takes them from whatever the page allocator hands out (`vmemmap_alloc_block`), a choice that would leave the frames to each system and make model and impl disagree for no fault of either. With it (`memory_hotplug.memmap_on_memory`, which the ACPI and virtio-mem drivers ask for with MHP_MEMMAP_ON_MEMORY) each block gets its own altmap starting at its first frame (`create_altmaps_and_memory_blocks`), so the memmap is the block\'s first `MEMMAP_PAGES` frames: one answer, the kernel\'s. ptspec fixes MHP_MEMMAP_ON_MEMORY. `mhp_supports_memmap_on_memory` holds for 128 MiB blocks (the memmap is a whole PMD and a whole number of pageblocks).',
      'Memory is onlined at once (an auto-online default: `online_pages` after the blocks are added).',
    ],
    sources: [`${HOTPLUG}: \`mhp_supports_memmap_on_memory\`, \`create_altmaps_and_memory_blocks\``, `${INIT_64}: \`probe_memory_block_size\`, \`vmemmap_populate\``],
  },
];
