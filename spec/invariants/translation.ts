/**
 * T: translation. The abstract map is a function from pages to frames with an
 * effective permission the x86 walk can produce: leaves never overlap, permissions are
 * representable with one NX bit and the kernel's PAT, a frame has one memory type however
 * many leaves map it, and init_mm has no user half.
 */
import { upperHalfStart, vpnToHex } from '../address.ts';
import type { InvariantDefinition, Witness } from '../invariant.ts';
import { CACHE_MODES, INIT_MM, x86Representable, type AbstractRoot, type Leaf } from '../state.ts';
import { everyLeaf, framesText, framesWitness, hasFrameFacts, leafFrames, leafText, pageOfFrame, pagesOf, sharedFrames, type FrameRange } from './terms.ts';

/** How a T5 witness on leaf `a` of `aRoot` says that it and `b` of `bRoot` map `shared` with two cache modes. */
export function twoMemoryTypesText(aRoot: AbstractRoot, a: Leaf, bRoot: AbstractRoot, b: Leaf, shared: FrameRange): string {
  const at = (root: AbstractRoot, leaf: Leaf) => `root ${root.id} at ${vpnToHex(pageOfFrame(leaf, shared.pfn))}`;
  return `${framesText(shared.pfn, shared.count)} mapped ${a.prot.cache} through ${at(aRoot, a)} and ${b.prot.cache} through ${at(bRoot, b)}`;
}

export const TRANSLATION: readonly InvariantDefinition[] = [
  {
    id: 'T1',
    name: 'no_two_leaves_of_a_root_share_a_page',
    family: 'T',
    title: 'Mappings VA-disjoint',
    statement: 'No two leaves of one root share a page: each page translates through at most one leaf.',
    rationale:
      'Hardware walks reach exactly one entry per address; two leaves over one page mean the tables hold a huge leaf ' +
      'and a table under it at once, or the abstraction function invented a mapping. This is verified-nrkernel\'s ' +
      'pt_mappings_dont_overlap_in_vmem; unlike its pt_mappings_dont_overlap_in_pmem, Linux allows physical aliases, ' +
      'which the P family constrains instead.',
    references: ['verified-nrkernel spec_t/os.rs pt_mappings_dont_overlap_in_vmem', 'arch/x86/mm/pat/set_memory.c lookup_address_in_pgd'],
    kernel: 'guarantees',
    kernelNote: 'A radix table has one entry per address at each level, so real tables cannot translate a page through two leaves.',
    holds(state) {
      const out: Witness[] = [];
      // Every unordered pair of leaves of a root.
      for (const root of state.roots) {
        const leaves = root.leaves;
        for (let i = 0; i < leaves.length; i++) {
          for (let j = i + 1; j < leaves.length; j++) {
            const a = leaves[i]!;
            const b = leaves[j]!;
            const lo = Math.max(a.vpn, b.vpn);
            const pages = Math.min(a.vpn + pagesOf(a), b.vpn + pagesOf(b)) - lo;
            if (pages <= 0) continue;
            out.push({
              root: root.id,
              vpn: lo,
              pages,
              frames: [{ pfn: a.pfn + (lo - a.vpn), count: pages }, { pfn: b.pfn + (lo - b.vpn), count: pages }],
              detail: `${leafText(a)} and ${leafText(b)} share ${pages} pages`,
            });
          }
        }
      }
      return out;
    },
  },
  {
    id: 'T2',
    name: 'exec_rights_follow_one_nx_bit',
    family: 'T',
    title: 'Execute rights follow one NX bit',
    statement: 'Every leaf has execUser equal to (user and execKernel), the only combinations x86 paging can express.',
    rationale:
      'x86 has a single NX bit ORed over the walk: a page executable by the kernel is executable by user mode exactly ' +
      'when it is user-accessible (SMEP then stops the kernel from executing user pages, but the entry still says X). ' +
      'A separate user-exec right is arm64 UXN/PXN vocabulary that an x86 implementation cannot honour.',
    references: ['Intel SDM vol. 3 §4.6 (access rights, NX, SMEP)', 'arch/x86/include/asm/pgtable_types.h _PAGE_NX', 'spec/state.ts x86Representable'],
    kernel: 'guarantees',
    kernelNote: 'The x86 entry format has one NX bit, so no x86 kernel table can express anything else.',
    holds: (state) => everyLeaf(state, (leaf) => (x86Representable(leaf.prot) ? undefined : 'execUser differs from user && execKernel')),
  },
  {
    id: 'T3',
    name: 'cache_mode_is_a_kernel_pat_mode',
    family: 'T',
    title: 'Cache mode is one of the kernel PAT modes',
    statement: 'Every leaf has a cache mode among WB, WC, UC-, UC, WT and WP.',
    rationale:
      'The effective memory type of an x86 leaf is the PAT entry selected by PAT/PCD/PWT (bit 7 on 4K, bit 12 on 2M/1G) ' +
      'under the MSR the kernel programs in pat_bp_init; anything else is not a translation the walk can produce.',
    references: ['arch/x86/mm/pat/memtype.c pat_bp_init', 'arch/x86/mm/init.c __cachemode2pte_tbl', 'Intel SDM vol. 3 §11.12'],
    kernel: 'guarantees',
    kernelNote: 'Every PAT/PCD/PWT combination selects one entry of the PAT the kernel programs in pat_bp_init.',
    holds: (state) => everyLeaf(state, (leaf) => (CACHE_MODES.includes(leaf.prot.cache) ? undefined : `cache mode ${String(leaf.prot.cache)} is not a PAT mode`)),
  },
  {
    id: 'T4',
    name: 'init_mm_maps_no_user_half',
    family: 'T',
    title: 'init_mm maps no user half',
    statement: 'Root 0 (init_mm) has no leaf in the lower canonical half.',
    rationale:
      'init_mm is the address space of kernel threads and the source of every kernel-half copy; user mappings live in ' +
      'process mms (and the EFI runtime and text_poke use their own efi_mm and poking_mm precisely so init_mm\'s user ' +
      'half stays empty). A user-half mapping in init_mm would be visible to every kernel thread at a user address.',
    references: ['mm/init-mm.c init_mm', 'arch/x86/mm/init.c poking_init', 'drivers/firmware/efi/efi.c efi_mm'],
    kernel: 'guarantees',
    kernelNote: 'User mappings live in process mms, and efi_mm and poking_mm exist so that EFI runtime and text_poke mappings stay out of init_mm.',
    holds: (state) =>
      everyLeaf(state, (leaf, root) => (root.id === INIT_MM && leaf.vpn < upperHalfStart(state.config.levels) ? 'init_mm maps a user-half page' : undefined)),
  },
  {
    id: 'T5',
    name: 'no_frame_mapped_with_two_memory_types',
    family: 'T',
    title: 'One memory type per frame across its aliases',
    statement: 'In a state with frame facts, no two different leaves, in any roots, map a frame with different cache modes.',
    rationale:
      'Intel does not support one physical page mapped with two memory types (SDM vol. 3 §11.12.4, programming the PAT: ' +
      'the result is undefined): a WB alias lets the CPU cache and speculatively fetch lines that a UC or WC user of the ' +
      'same page bypasses, so device-visible data goes stale, and the conflict can end in a machine check. The ' +
      'kernel\'s PAT code keeps one type per RAM page for that reason: memtype_reserve records it in the page flags ' +
      '(reserve_ram_pages_type, set_page_memtype) and memtype_kernel_map_sync moves the direct-map alias to the reserved ' +
      'type (ioremap_change_attr), and set_memory_uc/wc reserve before they change the direct map.',
    references: [
      'arch/x86/mm/pat/memtype.c (torvalds/linux 03efec2e) memtype_reserve, reserve_ram_pages_type, reserve_pfn_range, memtype_kernel_map_sync',
      'arch/x86/mm/pat/set_memory.c (gregkh/linux 53c2f13c) set_memory_uc, set_memory_wc, cpa_process_alias',
      'mm/vmalloc.c (gregkh/linux 04aa71da) vmap_pages_pte_range',
      'Intel SDM vol. 3 §11.12.4 (programming the PAT; memory type aliasing)',
    ],
    kernel: 'strict-only',
    kernelNote:
      'memtype.c holds it only for the callers that go through memtype_reserve: reserve_ram_pages_type refuses a second ' +
      'type for a RAM page that already has a non-WB one (-EBUSY; WP is -EINVAL), reserve_pfn_range overrides a pfnmap\'s ' +
      'requested type with the tracked one, and memtype_kernel_map_sync changes the direct-map alias. Other mappings never ' +
      'consult it: vmap_pages_pte_range installs whatever pgprot its caller passes, and cpa_process_alias reaches only the ' +
      'direct map and the high map, never a vmalloc alias, so a WC vmap of a WB page, or set_memory_uc on a page that is ' +
      'also vmapped WB, leaves two types.',
    holds(state) {
      if (!hasFrameFacts(state)) return [];
      // Every ordered pair of different places (a leaf of a root at an index) that share
      // frames with different cache modes: a witness on the first, over the shared frames.
      const out: Witness[] = [];
      state.roots.forEach((aRoot, ar) => {
        aRoot.leaves.forEach((a, ai) => {
          state.roots.forEach((bRoot, br) => {
            bRoot.leaves.forEach((b, bi) => {
              const shared = a.prot.cache !== b.prot.cache && !(ar === br && ai === bi) ? sharedFrames(leafFrames(a), leafFrames(b)) : undefined;
              if (shared === undefined) return;
              out.push(framesWitness(aRoot, a, shared, twoMemoryTypesText(aRoot, a, bRoot, b, shared)));
            });
          });
        });
      });
      return out;
    },
  },
];
