/**
 * D: direct map. The two linear maps of x86-64 as Documentation/arch/x86/x86_64/mm.rst
 * lays them out: the direct map of all memory at __PAGE_OFFSET (__va(pa) = pa +
 * PAGE_OFFSET) and the kernel image's high map at __START_KERNEL_map (__START_KERNEL_map
 * + pa - phys_base, phys_base 0 in ptspec's scenarios), and what the direct map must never
 * be: executable. Every rule about "the direct-map alias" or "the image mapping" of a
 * frame (P2, P5, S12, P7, cpa_process_alias) presumes the first two.
 *
 * The regions come from the memory size, which a parsed dump does not have (its frames
 * are synthetic): on a dump these hold vacuously.
 */
import { isKernelHalf, type Vpn } from '../address.ts';
import type { InvariantDefinition, Witness } from '../invariant.ts';
import type { AbstractState, FrameRun, Leaf, TlbEntry } from '../state.ts';
import { KERNEL_IMAGE_MAP, KERNEL_IMAGE_MAP_END, directMapBase, directMapRegion, everyLeaf, everyMappedRun, framesText, hasFrameFacts, mappedBesideDirectMap, isExecutable, leafFrames, leafMeets, runText, sharedFrames } from './terms.ts';
import { inMermapRegion, uncovered, unmappedPageblockSpans } from './clients.ts';
import { owedAt, tlbText } from './tlb.ts';

/** Why a leaf breaks the linearity of the map [base, end) whose page base + i maps frame i, or undefined. */
export function nonLinearLeaf(base: Vpn, end: Vpn, map: string): (leaf: Leaf) => string | undefined {
  return (leaf) => (leafMeets(leaf, base, end) && leaf.vpn - leaf.pfn !== base ? `a ${map} leaf maps pfn ${leaf.pfn}, not ${leaf.vpn - base}` : undefined);
}

/** Why a leaf makes the direct map [base, end) executable, or undefined. */
export function executableInDirectMap(base: Vpn, end: Vpn): (leaf: Leaf) => string | undefined {
  return (leaf) => (leafMeets(leaf, base, end) && isExecutable(leaf.prot) ? 'the direct map is executable here' : undefined);
}

/** Every leaf held to a test of the state's direct-map region [base, end); nothing on a dump, which has no region. */
function againstDirectMap(state: AbstractState, test: (base: Vpn, end: Vpn) => (leaf: Leaf) => string | undefined): Witness[] {
  const dm = directMapRegion(state);
  return dm === undefined ? [] : everyLeaf(state, test(dm.vpn, dm.end));
}

/**
 * Every TLB entry (of those `select` keeps) that caches a frame of a run `isRun` picks: one
 * witness per entry and run, naming the frames it caches there.
 */
export function cachedFramesOf(state: AbstractState, select: (e: TlbEntry) => boolean, isRun: (run: FrameRun) => boolean, why: string): Witness[] {
  const out: Witness[] = [];
  for (const e of state.tlb) {
    if (!select(e)) continue;
    for (const run of state.frames) {
      const shared = isRun(run) ? sharedFrames(leafFrames(e.leaf), run) : undefined;
      if (shared === undefined) continue;
      out.push({ root: e.root, vpn: e.leaf.vpn + (shared.pfn - e.leaf.pfn), pages: shared.count, frames: [shared], detail: `${tlbText(e)}, which reaches ${framesText(shared.pfn, shared.count)}: ${why}` });
    }
  }
  return out;
}

/** Whether a TLB entry caches its frames at their own direct-map pages. */
export const atDirectMapPage = (state: AbstractState, e: TlbEntry): boolean => e.leaf.vpn - e.leaf.pfn === directMapBase(state);

export const DIRECT_MAP: readonly InvariantDefinition[] = [
  {
    id: 'D1',
    name: 'direct_map_maps_each_page_to_its_own_frame',
    family: 'D',
    title: 'Direct map linear',
    statement: 'In a state with frame facts, every leaf that meets [__PAGE_OFFSET, __PAGE_OFFSET + frames) maps pfn = vpn - __PAGE_OFFSET.',
    rationale:
      'The kernel turns frames into addresses and back by arithmetic alone (__va, __pa, pfn_to_kaddr, page_address): the ' +
      'page allocator, the slab, every page-table walk (pte_offset_kernel reads tables at __va of their pfn) and CPA\'s own ' +
      'alias search (cpa_process_alias computes the direct-map alias as __va(pfn)) trust that the page at PAGE_OFFSET + pa ' +
      'maps pa. A direct-map leaf that maps another frame makes every such access land in the wrong memory, and makes the ' +
      'frame it should map reachable through no __va at all.',
    references: [
      'arch/x86/mm/init_64.c (gregkh/linux 6bf94737) phys_pud_init, phys_pmd_init, phys_pte_init, kernel_physical_mapping_change, kernel_physical_mapping_remove',
      'arch/x86/mm/init.c (gregkh/linux 213b3407) init_memory_mapping',
      'arch/x86/mm/pat/set_memory.c (gregkh/linux 53c2f13c) cpa_process_alias, __change_page_attr',
      'Documentation/arch/x86/x86_64/mm.rst',
    ],
    kernel: 'guarantees',
    kernelNote:
      'The direct map is built by kernel_physical_mapping_init and kernel_physical_mapping_change, whose phys_*_init ' +
      'functions map __va(paddr) to paddr, emptied by kernel_physical_mapping_remove, and changed by CPA, which keeps the ' +
      'frame of every entry it changes (__change_page_attr rebuilds the PTE from the old pfn; __split_large_page derives ' +
      'the small frames from the large one); vmap and ioremap take their addresses from the vmalloc area, not from here.',
    holds: (state) => againstDirectMap(state, (base, end) => nonLinearLeaf(base, end, 'direct-map')),
  },
  {
    id: 'D2',
    name: 'high_map_maps_each_page_to_its_own_frame',
    family: 'D',
    title: 'Kernel high map linear',
    statement:
      'In a state with frame facts, every leaf that meets [__START_KERNEL_map, MODULES_VADDR) maps pfn = vpn - __START_KERNEL_map ' +
      '(phys_base is 0 in ptspec\'s scenarios).',
    rationale:
      'The kernel executes from the high map and its symbols are high-map addresses, which __pa_symbol turns into physical ' +
      'ones by that offset (highmap_start_pfn); CPA finds the high-map alias of an image frame the same way ' +
      '(cpa_process_alias: __START_KERNEL_map + pa - phys_base). head_64.S builds level2_kernel_pgt as a run of 2M entries ' +
      'over the image, cleanup_highmap only clears entries outside [_text, _brk_end), and mark_rodata_ro only changes ' +
      'permissions. A high-map leaf that maps another frame would run or read the wrong bytes as kernel text and data.',
    references: [
      'arch/x86/kernel/head_64.S (torvalds/linux 015a2ea5) level2_kernel_pgt, phys_base',
      'arch/x86/mm/init_64.c (gregkh/linux 6bf94737) cleanup_highmap, mark_rodata_ro',
      'arch/x86/mm/pat/set_memory.c (gregkh/linux 53c2f13c) cpa_process_alias, __cpa_pfn_in_highmap',
    ],
    kernel: 'guarantees',
    kernelNote:
      'The high map is the linear run head_64.S builds (level2_kernel_pgt, offset by phys_base at boot); after boot it is ' +
      'only trimmed (cleanup_highmap, set_memory_np_noalias of freed image holes) and re-permissioned by CPA, which keeps ' +
      'every entry\'s frame.',
    holds(state) {
      if (!hasFrameFacts(state)) return [];
      return everyLeaf(state, nonLinearLeaf(KERNEL_IMAGE_MAP, KERNEL_IMAGE_MAP_END, 'high-map'));
    },
  },
  {
    id: 'D3',
    name: 'no_executable_leaf_in_direct_map',
    family: 'D',
    title: 'Direct map never executable',
    statement: 'In a state with frame facts, no leaf that meets [__PAGE_OFFSET, __PAGE_OFFSET + frames) is executable.',
    rationale:
      'The direct map maps every frame of memory: an executable page there turns any data the kernel or a user can place ' +
      'in memory (a page-cache page, a pipe buffer, a user page through its kernel alias) into code at a known address, ' +
      'without even needing a writable alias. The kernel builds it NX (init_memory_mapping with PAGE_KERNEL) and CPA keeps ' +
      'exec changes out of it when it follows an alias (cpa_process_alias drops _PAGE_NX from the alias masks, taking the ' +
      'direct map to be NX).',
    references: [
      'arch/x86/mm/init.c (gregkh/linux 213b3407) init_range_memory_mapping, init_mem_mapping (PAGE_KERNEL)',
      'arch/x86/mm/pat/set_memory.c (gregkh/linux 53c2f13c) cpa_process_alias, static_protections, set_memory_x',
      'arch/x86/realmode/init.c (torvalds/linux 04421fe2) set_real_mode_permissions',
    ],
    kernel: 'strict-only',
    kernelNote:
      'Nothing refuses set_memory_x on a direct-map address (static_protections forbids NX on text and the PCI BIOS, never X ' +
      'here), and the kernel does it itself: set_real_mode_permissions makes the real-mode trampoline text at ' +
      '__va(real_mode_header->text_start) executable through the direct map.',
    holds: (state) => againstDirectMap(state, executableInDirectMap),
  },
  {
    id: 'D4',
    name: 'free_frames_mapped_only_by_their_direct_map_page',
    family: 'D',
    title: 'Free frames mapped only by their direct-map page',
    statement: 'A frame with use free is mapped by no leaf except at its own direct-map page __PAGE_OFFSET + pfn.',
    rationale:
      'A free frame belongs to the page allocator, which hands it to the next caller: any mapping of it besides the direct ' +
      'map (which maps all memory) is a use after free the moment it is reallocated, letting the old mapping read or write ' +
      'the new owner\'s data, or a table the allocator gave to the page-table code. vunmap, vfree and the mm\'s teardown ' +
      'unmap before they free (vm_reset_perms, free_vmap_area_noflush, tlb_finish_mmu), and a freed frame must not be ' +
      'mapped again until it is allocated.',
    references: [
      'mm/vmalloc.c (gregkh/linux 04aa71da) vmap_pages_pte_range, vm_reset_perms',
      'mm/mmu_gather.c tlb_finish_mmu',
      'mm/page_alloc.c __free_pages_ok',
    ],
    kernel: 'strict-only',
    kernelNote:
      'Nothing checks it: vmap_pages_pte_range and ioremap map whatever frames they are handed, free or not; only ' +
      'debug aids notice afterwards (debug_pagealloc unmaps free pages from the direct map, KASAN poisons them). Only the ' +
      'strict profile refuses such a map.',
    holds: (state) => mappedBesideDirectMap(state, 'free', 'a free frame mapped outside its direct-map page'),
  },
  {
    id: 'D5',
    name: 'no_tlb_entry_caches_a_frame_removed_from_the_direct_map',
    family: 'D',
    title: 'Frames removed from the direct map cached nowhere once flushed',
    statement:
      'No kernel-half TLB entry whose pages meet no owed flush caches a frame with noDirectMap, on any CPU, but an entry ' +
      'inside the mermap region of a system with the clients capability.',
    rationale:
      'Removing a frame from the direct map (secretmem, guest_memfd) is meant to take it out of reach of the kernel\'s own ' +
      'loads, speculative ones included: a translation still cached on some CPU keeps it in reach. secretmem_fault removes ' +
      'the page with set_direct_map_invalid_noflush and then flushes it (flush_tlb_kernel_range of the page); guest_memfd\'s ' +
      'direct-map removal flushes the folio after set_direct_map_valid_noflush(false). Until that flush the removal is owed, ' +
      'not done. The user half is out of its scope: a process reading its own secretmem page through its own mapping is ' +
      'what secretmem is for; so is the mermap region, whose whole purpose is to map pages absent from the direct map for ' +
      'the CPU that asked (mermap_get), and whose stale entries C1 and C4 govern.',
    references: [
      'mm/secretmem.c (gregkh/linux bb1c1963) secretmem_fault',
      'KVM: guest_memfd direct-map removal series (Roy, Kalyazin; lkml 2025) kvm_gmem_folio_zap_direct_map',
      'arch/x86/mm/pat/set_memory.c (gregkh/linux 53c2f13c) set_direct_map_invalid_noflush',
      'mm/mermap.c (linux-mm/linux-mm b7f5c72f) mermap_get',
    ],
    kernel: 'strict-only',
    kernelNote:
      'set_direct_map_invalid_noflush removes only the direct-map page: any other mapping of the frame (a vmalloc alias) ' +
      'and its cached translations stay, which nothing in the kernel checks; the mermap\'s translations of such frames are ' +
      'its purpose, not a leak.',
    holds: (state) =>
      cachedFramesOf(
        state,
        (e) => isKernelHalf(e.leaf.vpn, state.config.levels) && !owedAt(state, e) && !inMermapRegion(state, e.leaf),
        (run) => run.noDirectMap,
        'the frame is removed from the direct map',
      ),
  },
  {
    id: 'D6',
    name: 'frames_restored_to_the_direct_map_before_freed',
    family: 'D',
    title: 'Frames restored to the direct map before they are freed',
    statement: 'No free frame has noDirectMap, but a frame of an unmapped pageblock (the __GFP_UNMAPPED pool keeps those out of the direct map).',
    rationale:
      'The page allocator hands a freed frame to the next caller, who reaches it through the direct map (page_address, ' +
      'clear_page, the slab): a frame still missing there faults at the first touch, or, with the entry left non-present ' +
      'but not cleared, reaches whatever the stale entry says. The users restore it first: secretmem_free_folio calls ' +
      'set_direct_map_default_noflush, guest_memfd\'s free_folio calls set_direct_map_valid_noflush(true), ' +
      'vm_reset_perms calls set_direct_map_default_noflush for every page of a VM_FLUSH_RESET_PERMS area before vfree ' +
      'frees them. The exception is the __GFP_UNMAPPED pool: a page freed in an unmapped pageblock goes back to the ' +
      'unmapped free list still out of the direct map, which is what that list promises its next caller.',
    references: [
      'mm/secretmem.c (gregkh/linux bb1c1963) secretmem_freepage',
      'mm/vmalloc.c (gregkh/linux 04aa71da) vm_reset_perms, set_area_direct_map',
      'KVM: guest_memfd direct-map removal series (lkml 2025) kvm_gmem_folio_restore_direct_map',
      'mm/page_alloc.c (bjackman/linux a3c87cc7) split_large_buddy, get_pfnblock_freetype (the unmapped free list)',
    ],
    kernel: 'strict-only',
    kernelNote:
      '__free_pages does not look at the direct map; only the callers\' discipline restores it (and debug_pagealloc, which ' +
      'unmaps free pages on purpose); a frame of an unmapped pageblock goes back unmapped by design.',
    holds(state) {
      const pool = unmappedPageblockSpans(state);
      return state.frames
        .filter((r) => r.use === 'free' && r.noDirectMap)
        .flatMap((r) => uncovered(r.pfn, r.pfn + r.count, pool).map(([lo, hi]) => ({ frames: [{ pfn: lo, count: hi - lo }], detail: `${runText(r)}: freed while removed from the direct map` })));
    },
  },
  {
    id: 'D7',
    name: 'free_frames_cached_only_at_their_direct_map_page',
    family: 'D',
    title: 'Free frames cached only at their direct-map page',
    statement: 'No TLB entry of any CPU caches a free frame at a page other than the frame\'s own direct-map page, owed flush or not.',
    rationale:
      'A translation cached after its frame was freed is a use after free waiting for the next owner: the CPU still reads ' +
      'and writes the frame through the old address. vunmap must flush before the pages go back; vfree of a ' +
      'VM_FLUSH_RESET_PERMS area flushes the area and the direct-map range (vm_reset_perms, _vm_unmap_aliases) before it ' +
      'frees the pages. An owed flush does not excuse it: the frame is already someone else\'s.',
    references: [
      'mm/vmalloc.c (gregkh/linux 04aa71da) vfree, vm_reset_perms, _vm_unmap_aliases, free_vmap_area_noflush',
      'arch/x86/mm/tlb.c (gregkh/linux 399ec9ca) flush_tlb_kernel_range',
    ],
    kernel: 'strict-only',
    kernelNote:
      'vfree of an ordinary area frees its pages at once and leaves the vmalloc range to the lazy purge (free_vmap_area_noflush): ' +
      'until purge_vmap_area_lazy flushes, a CPU may still cache a translation to the freed pages. The kernel accepts that ' +
      'window by design and closes it only for VM_FLUSH_RESET_PERMS areas.',
    holds: (state) => cachedFramesOf(state, (e) => !atDirectMapPage(state, e), (run) => run.use === 'free', 'a free frame cached outside its direct-map page'),
  },
  {
    id: 'D8',
    name: 'direct_map_maps_no_absent_frame',
    family: 'D',
    title: 'Direct map only over memory',
    statement: 'No leaf that meets [__PAGE_OFFSET, __PAGE_OFFSET + frames) maps a frame with use absent (an e820 hole, or hot-pluggable space not added).',
    rationale:
      'The direct map is where the kernel reaches memory by arithmetic: a direct-map page over a hole makes __va of a ' +
      'physical address without memory a valid kernel pointer, so a stray access reads the PCI window (MMIO, with WB ' +
      'caching the device never allowed) or machine-checks, and a speculative prefetch through it can touch device ' +
      'registers. Hot-removed memory must leave the direct map before it leaves the machine, or the next access to it ' +
      'faults the machine, not the page.',
    references: [
      'arch/x86/mm/init_64.c (gregkh/linux 6bf94737) phys_pte_init, phys_pmd_init, phys_pud_init (entries over no E820 RAM cleared at boot), kernel_physical_mapping_remove',
      'arch/x86/mm/init.c (gregkh/linux 213b3407) init_mem_mapping, init_range_memory_mapping (only memblock memory ranges)',
      'mm/memory_hotplug.c arch_remove_memory, try_remove_memory',
    ],
    kernel: 'guarantees',
    kernelNote:
      'init_range_memory_mapping maps only the memblock memory ranges (E820 RAM), and at boot phys_*_init clear every ' +
      'entry whose span meets no E820 RAM; the first megabyte is mapped whole (ISA_END_ADDRESS), its BIOS and VGA ' +
      'ranges being reserved memory, not holes. Memory removal unmaps the direct map (kernel_physical_mapping_remove) ' +
      'before the memory block is released.',
    holds(state) {
      const dm = directMapRegion(state);
      if (dm === undefined) return [];
      return everyMappedRun(state, (run) => run.use === 'absent', (leaf) => leafMeets(leaf, dm.vpn, dm.end), () => 'the direct map maps a frame with no memory');
    },
  },
];
