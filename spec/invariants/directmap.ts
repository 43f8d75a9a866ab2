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
import type { Vpn } from '../address.ts';
import type { InvariantDefinition, Witness } from '../invariant.ts';
import type { AbstractState, Leaf } from '../state.ts';
import { KERNEL_IMAGE_MAP, KERNEL_IMAGE_MAP_END, directMapRegion, everyLeaf, hasFrameFacts, mappedBesideDirectMap, isExecutable, leafMeets } from './terms.ts';

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
];
