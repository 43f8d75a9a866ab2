/**
 * H: huge pages. What a 2M or 1G leaf needs beyond a 4K one: a frame aligned to its
 * size and a CPU that has that page size; and a page made 4K on purpose stays 4K.
 * (Split and collapse preserving translation
 * and attributes are properties of a step, not of a state; they are stated in the
 * operation contracts and checked by refinement.)
 */
import { PAGES } from '../address.ts';
import type { InvariantDefinition } from '../invariant.ts';
import { everyLeaf, leafWitness } from './terms.ts';

export const HUGE_PAGES: readonly InvariantDefinition[] = [
  {
    id: 'H1',
    name: 'huge_leaf_frames_aligned_to_leaf_size',
    family: 'H',
    title: 'Huge leaf frames aligned to their size',
    statement: 'Every 2M leaf maps a 512-frame-aligned pfn and every 1G leaf a 262144-frame-aligned pfn.',
    rationale:
      'In a 2M or 1G entry the frame bits below the page size are reserved (bits 13-20 or 13-29; bit 12 is the PAT ' +
      'bit there), so an unaligned frame either faults with PF_RSVD or, if masked, maps the wrong memory; ' +
      'split_large_page derives the 512 small frames from the aligned base (pfn + i * pfninc) and collapse_large_pages ' +
      'requires an aligned first frame. verified-nrkernel: pt_entries_aligned on the frame base.',
    references: ['Intel SDM vol. 3 §4.5 (PDE/PDPTE mapping 2M/1G pages)', 'arch/x86/mm/pat/set_memory.c __split_large_page, collapse_large_pages', 'verified-nrkernel spec_t/os.rs pt_entries_aligned'],
    kernel: 'guarantees',
    kernelNote: 'A 2M or 1G entry has no bits for an unaligned frame, and split_large_page and collapse_large_pages work from the aligned base.',
    holds: (state) =>
      everyLeaf(state, (leaf) => ((leaf.size === '2M' || leaf.size === '1G') && leaf.pfn % PAGES[leaf.size] !== 0 ? `pfn is not ${leaf.size}-aligned` : undefined)),
  },
  {
    id: 'H2',
    name: 'no_2m_leaf_without_pse',
    family: 'H',
    title: '2M leaves only with PSE',
    statement: 'If the CPU lacks PSE (features.pse false) no leaf is 2M.',
    rationale:
      'Without PSE the PS bit of a PMD entry is not honoured and the entry is walked as a table pointer, mapping ' +
      'garbage; the kernel builds 2M direct-map and image leaves only when boot_cpu_has(X86_FEATURE_PSE) ' +
      '(page_size_mask in init_memory_mapping), and collapse_large_pages must not create one either.',
    references: ['arch/x86/mm/init.c probe_page_size_mask, page_size_mask', 'arch/x86/mm/pat/set_memory.c collapse_large_pages', 'X86_FEATURE_PSE'],
    kernel: 'guarantees',
    kernelNote: 'probe_page_size_mask allows 2M pages only when boot_cpu_has(X86_FEATURE_PSE).',
    holds: (state) => everyLeaf(state, (leaf) => (!state.config.features.pse && leaf.size === '2M' ? '2M leaf on a CPU without PSE' : undefined)),
  },
  {
    id: 'H3',
    name: 'no_1g_leaf_without_gbpages',
    family: 'H',
    title: '1G leaves only with GB pages',
    statement: 'If the CPU lacks 1 GiB pages (features.gbpages false) no leaf is 1G.',
    rationale:
      'PS in a PUD entry is only valid with CPUID PDPE1GB; the kernel maps the direct map with 1G pages only when ' +
      'direct_gbpages is set (X86_FEATURE_GBPAGES, phys_pud_init), and split_large_page of a 1G leaf produces 2M ' +
      'leaves, never the reverse without the feature.',
    references: ['arch/x86/mm/init_64.c phys_pud_init', 'arch/x86/mm/init.c probe_page_size_mask (direct_gbpages)', 'X86_FEATURE_GBPAGES'],
    kernel: 'guarantees',
    kernelNote: '1G direct-map leaves are built only with direct_gbpages, which needs X86_FEATURE_GBPAGES.',
    holds: (state) => everyLeaf(state, (leaf) => (!state.config.features.gbpages && leaf.size === '1G' ? '1G leaf on a CPU without GB pages' : undefined)),
  },
  {
    id: 'H4',
    name: 'kernel_4k_pages_stay_4k',
    family: 'H',
    title: 'Pages kept 4K stay 4K',
    statement: 'No 2M or 1G leaf, and no 2M or 1G non-present entry, carries kernel4k (_PAGE_KERNEL_4K).',
    rationale:
      'set_memory_4k marks each PTE of its range _PAGE_KERNEL_4K because its caller needs 4K granularity there for as long ' +
      'as the mapping lives (a later set_memory_* of one page must not split again under it, a debug feature watches single ' +
      'pages); collapse_pmd_page refuses a block whose first PTE has the bit and compares every other PTE\'s flags with the ' +
      'first\'s, so no collapse takes in a kept page, and a large entry never gets the bit. A large leaf with it is a ' +
      'collapse that went over a kept page and kept the mark (a collapse that dropped the mark is a step, caught by ' +
      'refinement against the contract of collapse and set_memory_rox).',
    references: [
      'arch/x86/mm/pat/set_memory.c (gregkh/linux 53c2f13c) set_memory_4k, collapse_pmd_page, should_split_large_page (force_split)',
      'arch/x86/include/asm/pgtable_types.h _PAGE_BIT_KERNEL_4K (_PAGE_BIT_SOFTW3)',
    ],
    kernel: 'guarantees',
    kernelNote: 'collapse_pmd_page returns 0 when the first PTE has _PAGE_KERNEL_4K or any other PTE\'s flags differ from the first\'s, and no path sets the bit on a large entry.',
    holds: (state) =>
      state.roots.flatMap((root) =>
        [...root.leaves, ...(root.nonPresent ?? [])]
          .filter((e) => e.size !== '4K' && e.prot.kernel4k === true)
          .map((e) => leafWitness(root, e, `a ${e.size} entry carries kernel4k`)),
      ),
  },
];
