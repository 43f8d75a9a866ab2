/**
 * S: structure. The abstract state is well formed the way real x86-64 tables force it
 * to be: leaves only at the levels that can hold them, aligned, inside canonical
 * addresses and MAXPHYADDR; frames cover memory; tables come from the pool and are
 * exactly the radix footprint of the leaves; table frames are reachable only through
 * the direct map.
 */
import { PAGE_SIZES, isCanonicalRange, isKernelHalf, leafLevel, pagesPerEntry, type Level, type PagingLevels } from '../address.ts';
import type { InvariantDefinition, Witness } from '../invariant.ts';
import { ASI_GLOBAL_ROOT, PTI_USER_ROOT, pidOfRoot, processRootIds } from '../roots.ts';
import { FRAME_USES, INIT_MM, sameFrameFacts, type AbstractRoot, type AbstractState, type FrameRun, type Leaf, type RootId, type RootKind } from '../state.ts';
import {
  everyLeaf, framesText, mappedBesideDirectMap, hasFrameFacts, leafText, leafWitness, pagesOf, runText, sharedFrames, type FrameRange,
} from './terms.ts';

/** A run S7 can place at all: whole frames, at least one. */
const wellFormedRun = (r: FrameRun): boolean => Number.isInteger(r.pfn) && Number.isInteger(r.count) && r.count >= 1;

const framesOnly = (frames: FrameRange, detail: string): Witness => ({ frames: [frames], detail });

/** The frames of [0, frames) that no run covers, as maximal ranges: checked frame by frame. */
function uncoveredFrames(runs: readonly FrameRun[], frames: number): FrameRange[] {
  // Whether a frame is covered changes only where a run starts or ends, so it is decided
  // once per piece of memory between consecutive such points (by its first frame).
  const points = [...new Set([0, frames, ...runs.flatMap((r) => [r.pfn, r.pfn + r.count])])].filter((p) => p >= 0 && p <= frames).sort((a, b) => a - b);
  const out: FrameRange[] = [];
  for (let i = 0; i + 1 < points.length; i++) {
    const pfn = points[i]!;
    const count = points[i + 1]! - pfn;
    if (runs.some((r) => r.pfn <= pfn && pfn < r.pfn + r.count)) continue;
    const last = out[out.length - 1];
    if (last !== undefined && last.pfn + last.count === pfn) out[out.length - 1] = { pfn: last.pfn, count: last.count + count };
    else out.push({ pfn, count });
  }
  return out;
}

/**
 * The radix footprint of a leaf set as spec/footprint.ts defines it: the pgd, and at
 * each level L below it one table per region of a level-(L+1) entry that holds a leaf
 * at level L or below. Counted with a set, so the leaves may come in any order.
 */
function radixFootprint(levels: PagingLevels, leaves: readonly Leaf[]): number {
  let tables = 1;
  for (let level = 1; level < levels; level++) {
    const span = pagesPerEntry((level + 1) as Level);
    tables += new Set(leaves.filter((l) => leafLevel(l.size) <= level).map((l) => Math.floor(l.vpn / span))).size;
  }
  return tables;
}

/** The kind each root id has in a system with the isolation capability (spec/roots.ts), or undefined for an id no root has. */
function kindOfId(id: RootId): RootKind | undefined {
  if (id === INIT_MM) return 'kernel';
  if (id === PTI_USER_ROOT) return 'kernel-user';
  if (id === ASI_GLOBAL_ROOT) return 'asi-global';
  const pid = pidOfRoot(id);
  if (pid === undefined || !Number.isInteger(id)) return undefined;
  const ids = processRootIds(pid);
  return id === ids.kernelRoot ? 'process-kernel' : id === ids.userRoot ? 'process-user' : 'asi';
}

/** Whether a root is the one its id names: kind, and owning process for process roots. */
const atItsId = (r: AbstractRoot): boolean => kindOfId(r.id) === r.kind && r.pid === pidOfRoot(r.id);

/**
 * The tables a state's entries need (S11), counted with `footprint`: for a single root its
 * footprint (leaves and non-present entries); for init_mm with the isolation roots, the
 * "Tables" formula of spec/contracts/isolation.ts: init_mm's footprint, plus for roots 1, 2
 * and every process-kernel root the tables below the top level of its own leaves (its top
 * level is init_mm's, or counted with its process), plus three top-level tables per
 * process (a user copy shares its pgd's tables below the top level, an ASI root has none
 * of its own). Undefined where S11 does not apply: no frame facts, or roots that are not
 * each the one its id names, once (a dump with several roots).
 */
export function tablesNeeded(state: AbstractState, footprint: (levels: PagingLevels, leaves: readonly Leaf[]) => number): { readonly root: RootId; readonly needed: number } | undefined {
  const levels = state.config.levels;
  // A non-present entry holds its slot, so its tables stay.
  const entries = (r: AbstractRoot): readonly Leaf[] => (r.nonPresent === undefined || r.nonPresent.length === 0 ? r.leaves : [...r.leaves, ...r.nonPresent]);
  const [first] = state.roots;
  if (!hasFrameFacts(state) || first === undefined) return undefined;
  if (state.roots.length === 1) return { root: first.id, needed: footprint(levels, entries(first)) };
  const ids = new Set(state.roots.map((r) => r.id));
  const init = state.roots.find((r) => r.id === INIT_MM);
  if (ids.size !== state.roots.length || init === undefined || !state.roots.every(atItsId)) return undefined;
  let needed = footprint(levels, entries(init));
  const pids = new Set<number>();
  for (const r of state.roots) {
    if (r.pid !== undefined) pids.add(r.pid);
    if (r.kind === 'kernel-user' || r.kind === 'asi-global' || r.kind === 'process-kernel') needed += footprint(levels, r.leaves) - 1;
  }
  return { root: INIT_MM, needed: needed + 3 * pids.size };
}

/** S11's witness: the table count is not what the entries need. */
export const tableCountWitness = (state: AbstractState, acc: { readonly root: RootId; readonly needed: number }): Witness => ({
  root: acc.root,
  detail: `tablesInUse is ${state.tablesInUse}, the entries need ${acc.needed} tables and ${state.pendingTableFrees} await a flush`,
});

export const STRUCTURE: readonly InvariantDefinition[] = [
  {
    id: 'S1',
    name: 'leaves_only_at_pte_pmd_and_pud_level',
    family: 'S',
    title: 'Leaves only at PTE, PMD and PUD level',
    statement: 'Every leaf is a 4K (PTE), 2M (PMD) or 1G (PUD) leaf: no leaf at P4D or PGD level and no other size.',
    rationale:
      'The PS bit is reserved in PML4 and PML5 entries (Intel SDM vol. 3 §4.5), so a P4D/PGD "leaf" makes the walk fault ' +
      'with a reserved-bit page fault; the kernel only ever creates pte, pmd_leaf and pud_leaf entries (p4d_leaf is ' +
      'always false on x86-64). verified-nrkernel states the same as pt_entry_sizes_are_valid.',
    references: ['Intel SDM vol. 3 §4.5 (PS reserved in PML4E/PML5E)', 'include/linux/pgtable.h p4d_leaf', 'verified-nrkernel spec_t/os.rs pt_entry_sizes_are_valid'],
    kernel: 'guarantees',
    kernelNote: 'The kernel only creates pte, pmd and pud leaves, and p4d_leaf is always false on x86-64.',
    holds: (state) => everyLeaf(state, (leaf) => (PAGE_SIZES.includes(leaf.size) ? undefined : `size ${String(leaf.size)} is not a page size of any level`)),
  },
  {
    id: 'S2',
    name: 'leaf_vpn_aligned_to_leaf_size',
    family: 'S',
    title: 'Leaf VA aligned to its size',
    statement: 'The first page of every leaf is aligned to the leaf size (2M leaves to 512 pages, 1G leaves to 262144 pages).',
    rationale:
      'A leaf is one entry of its level and covers exactly the naturally aligned region that entry translates: an ' +
      'unaligned base means the abstract map claims pages the entry does not cover (pmd_index/pud_index drop the low ' +
      'bits). verified-nrkernel requires aligned(base, size) of every mapping (pt_entries_aligned).',
    references: ['arch/x86/include/asm/pgtable.h pmd_index, pud_index', 'verified-nrkernel spec_t/os.rs pt_entries_aligned'],
    kernel: 'guarantees',
    kernelNote: 'An entry can only translate the naturally aligned region it covers, so real tables cannot express an unaligned leaf.',
    holds: (state) => everyLeaf(state, (leaf) => (pagesOf(leaf) > 0 && leaf.vpn % pagesOf(leaf) !== 0 ? `vpn is not ${leaf.size}-aligned` : undefined)),
  },
  {
    id: 'S3',
    name: 'leaves_inside_one_canonical_half',
    family: 'S',
    title: 'Leaves inside one canonical half',
    statement: 'Every leaf lies entirely inside the lower or the upper canonical half of the configured paging mode (48- or 57-bit).',
    rationale:
      'A non-canonical address raises #GP before any walk, so a mapping there can never be used and means the address ' +
      'arithmetic is wrong; a range running off the end of the lower half would wrap into the non-canonical hole. The ' +
      'kernel rejects such ranges in its VA allocators (vmalloc, ioremap) and __is_canonical_address guards its users.',
    references: ['arch/x86/include/asm/page.h __is_canonical_address', 'Documentation/arch/x86/x86_64/mm.rst', 'Intel SDM vol. 3 §3.3.7.1'],
    kernel: 'guarantees',
    kernelNote: 'Real tables only translate canonical addresses, and the kernel\'s VA allocators hand out canonical ranges only.',
    holds: (state) =>
      everyLeaf(state, (leaf) =>
        pagesOf(leaf) > 0 && !isCanonicalRange(leaf.vpn, pagesOf(leaf), state.config.levels) ? `not inside one canonical half of ${state.config.levels}-level paging` : undefined,
      ),
  },
  {
    id: 'S4',
    name: 'leaves_sorted_by_address',
    family: 'S',
    title: 'Leaves sorted by address',
    statement: 'The leaves of every root are in strictly increasing vpn order.',
    rationale:
      'The abstract map is a canonical form: refinement is deep equality of abstract states, and every sweep of the ' +
      'checker (scope search, VA-disjointness, footprint) relies on the order a page walk in address order produces, as ' +
      'ptdump and walk_page_range visit entries.',
    references: ['mm/pagewalk.c walk_page_range', 'mm/ptdump.c ptdump_walk_pgd'],
    kernel: 'guarantees',
    kernelNote: 'A property of the abstract form: any walk of real tables in address order (walk_page_range, ptdump) yields its leaves sorted.',
    holds(state) {
      const out: Witness[] = [];
      for (const root of state.roots) {
        for (let i = 1; i < root.leaves.length; i++) {
          const prev = root.leaves[i - 1]!;
          const leaf = root.leaves[i]!;
          if (leaf.vpn <= prev.vpn) out.push(leafWitness(root, leaf, `${leafText(leaf)} comes after ${leafText(prev)}`));
        }
      }
      return out;
    },
  },
  {
    id: 'S5',
    name: 'leaf_frames_below_maxphyaddr',
    family: 'S',
    title: 'Frames below MAXPHYADDR',
    statement: 'Every leaf maps frames [pfn, pfn + pages) with pfn a non-negative integer and pfn + pages <= 2^(maxPhysBits - 12).',
    rationale:
      'Entry bits from MAXPHYADDR to 51 are reserved in every present entry (Intel SDM vol. 3 §4.5.4): a frame number at ' +
      'or above 2^(MAXPHYADDR-12) makes every access through the leaf fault with PF_RSVD. The kernel masks with ' +
      '__PHYSICAL_MASK and checks phys_addr_valid before building entries (ioremap, memremap).',
    references: ['arch/x86/include/asm/page_types.h __PHYSICAL_MASK', 'arch/x86/mm/physaddr.h phys_addr_valid', 'Intel SDM vol. 3 §4.5.4'],
    kernel: 'enforces',
    kernelNote: 'ioremap and memremap check phys_addr_valid before building entries, and entries are built through __PHYSICAL_MASK.',
    holds: (state) =>
      everyLeaf(state, (leaf) => {
        if (!Number.isInteger(leaf.pfn) || leaf.pfn < 0) return 'pfn is not a non-negative integer';
        return leaf.pfn + pagesOf(leaf) > 2 ** (state.config.maxPhysBits - 12) ? `frames reach past MAXPHYADDR (${state.config.maxPhysBits} bits)` : undefined;
      }),
  },
  {
    id: 'S6',
    name: 'leaf_frames_inside_physical_memory',
    family: 'S',
    title: 'Frames inside physical memory',
    statement: 'In a state with frame facts, every leaf maps only frames below config.frames.',
    rationale:
      'ptspec\'s machine has RAM and nothing else: a mapping of a frame past the end of memory maps no frame it has, so in ' +
      'its scenarios it can only come from a bad pfn computation, and the operations reject such ranges with EINVAL. The ' +
      'kernel confines only the direct map to RAM (init_range_memory_mapping runs init_memory_mapping over the memblock ' +
      'ranges). Its other mappings reach past RAM on purpose: ioremap maps device MMIO wherever it lies, above the end of ' +
      'RAM included (__ioremap_caller refuses RAM and accepts any other physical address phys_addr_valid allows), and the EFI ' +
      'runtime map maps the firmware\'s regions, EFI_MEMORY_MAPPED_IO ones included, into efi_mm (efi_map_region, ' +
      '__map_region).',
    references: [
      'arch/x86/mm/init.c (gregkh/linux 213b3407) init_range_memory_mapping, init_memory_mapping',
      'arch/x86/mm/ioremap.c (torvalds/linux 072f58c6) __ioremap_caller',
      'arch/x86/platform/efi/efi_64.c (torvalds/linux 0021e71c) efi_map_region, __map_region',
    ],
    kernel: 'strict-only',
    kernelNote:
      'The kernel maps frames outside RAM whenever a driver or the firmware asks: ioremap maps any valid physical range ' +
      'that is not RAM and efi_map_region maps MMIO regions into efi_mm; only the direct map is confined to RAM. ptspec ' +
      'models no device frames and refuses every frame past memory.',
    holds: (state) =>
      hasFrameFacts(state)
        ? everyLeaf(state, (leaf) => (leaf.pfn + pagesOf(leaf) > state.config.frames ? `frames reach past the ${state.config.frames} frames of memory` : undefined))
        : [],
  },
  {
    id: 'S7',
    name: 'frame_runs_cover_memory_exactly',
    family: 'S',
    title: 'Frame runs cover memory exactly',
    statement:
      'In a state with frame facts, every frame run has an integer pfn and a positive integer count, no run starts below the ' +
      'run before it, and together the runs cover [0, config.frames) without gap or overlap and nothing outside it.',
    rationale:
      'Every frame has exactly one use, as every struct page has one owner; a gap is memory no invariant protects ' +
      '(a rodata frame missing from the runs is writable unnoticed) and an overlap gives a frame two uses. This is the ' +
      'memblock/e820 view the kernel starts from (e820__memblock_setup).',
    references: ['arch/x86/kernel/e820.c e820__memblock_setup', 'mm/memblock.c'],
    kernel: 'guarantees',
    kernelNote: 'A property of ptspec\'s frame facts; the kernel gives every frame one struct page, starting from the memblock/e820 view.',
    holds(state) {
      if (!hasFrameFacts(state)) return [];
      const memory = state.config.frames;
      const out: Witness[] = [];
      for (const run of state.frames) {
        if (!wellFormedRun(run)) out.push(framesOnly(run, `${runText(run)}: pfn is not an integer or count not a positive integer`));
      }
      const runs = state.frames.filter(wellFormedRun);
      for (let i = 1; i < runs.length; i++) {
        if (runs[i]!.pfn < runs[i - 1]!.pfn) out.push(framesOnly(runs[i]!, `${runText(runs[i]!)} starts below ${runText(runs[i - 1]!)}`));
      }
      for (let i = 0; i < runs.length; i++) {
        for (let j = i + 1; j < runs.length; j++) {
          const both = sharedFrames(runs[i]!, runs[j]!);
          if (both !== undefined) out.push(framesOnly(both, `${runText(runs[i]!)} and ${runText(runs[j]!)} overlap`));
        }
      }
      for (const run of runs) {
        const end = run.pfn + run.count;
        if (run.pfn < 0) out.push(framesOnly({ pfn: run.pfn, count: Math.min(end, 0) - run.pfn }, `${runText(run)}: frames below pfn 0`));
        if (end > memory) {
          const from = Math.max(run.pfn, memory);
          out.push(framesOnly({ pfn: from, count: end - from }, `${runText(run)}: frames past the ${memory} frames of memory`));
        }
      }
      for (const gap of uncoveredFrames(runs, memory)) out.push(framesOnly(gap, `${framesText(gap.pfn, gap.count)} are in no run`));
      return out;
    },
  },
  {
    id: 'S8',
    name: 'touching_frame_runs_differ',
    family: 'S',
    title: 'Frame runs merged',
    statement: 'Consecutive frame runs where one ends and the next begins differ in use, sensitive, noDirectMap or memtype, and every use is a known frame use.',
    rationale:
      'Frame facts are a canonical form so that refinement is deep equality: set_direct_map_invalid_noflush and ' +
      'set_direct_map_default_noflush toggle noDirectMap on single pages, and a model and an impl that split runs ' +
      'differently must still compare equal.',
    references: ['arch/x86/mm/pat/set_memory.c set_direct_map_invalid_noflush, set_direct_map_default_noflush'],
    kernel: 'guarantees',
    kernelNote: 'A canonical form of ptspec\'s frame facts only: the kernel keeps these facts per page (struct page), with nothing to merge.',
    holds(state) {
      const out: Witness[] = [];
      for (const run of state.frames) if (!FRAME_USES.includes(run.use)) out.push(framesOnly(run, `${runText(run)}: unknown use`));
      for (let i = 1; i < state.frames.length; i++) {
        const prev = state.frames[i - 1]!;
        const run = state.frames[i]!;
        if (prev.pfn + prev.count === run.pfn && sameFrameFacts(prev, run)) {
          out.push(framesOnly({ pfn: prev.pfn, count: prev.count + run.count }, `${runText(prev)} and ${runText(run)} are not merged`));
        }
      }
      return out;
    },
  },
  {
    id: 'S9',
    name: 'page_tables_come_from_the_table_pool',
    family: 'S',
    title: 'Page tables come from the table pool',
    statement: 'In a state with frame facts, the table pool lies inside memory, every pool frame has use pagetable, and no frame outside the pool has use pagetable.',
    rationale:
      'Page-table pages are allocated by one allocator (alloc_low_page at boot, pte_alloc_one_kernel/__get_free_page ' +
      'later) and marked as such (PageTable, pagetable_alloc), which is what lets the kernel, and these invariants, ' +
      'tell table frames from data frames; a pool frame with another use would be handed out as a table while also ' +
      'being data.',
    references: ['arch/x86/mm/init.c alloc_low_page', 'include/linux/mm.h pagetable_alloc, PageTable', 'mm/page_table_check.c'],
    kernel: 'guarantees',
    kernelNote: 'Kernel tables come from the page allocator (alloc_low_page at boot, pagetable_alloc later) and are marked PageTable; ptspec\'s fixed pool stands for that marking.',
    holds(state) {
      if (!hasFrameFacts(state)) return [];
      const pool = state.config.tablePool;
      const poolEnd = pool.pfn + pool.count;
      const out: Witness[] = [];
      if (pool.pfn < 0 || pool.count < 1 || poolEnd > state.config.frames) out.push(framesOnly(pool, `table pool ${framesText(pool.pfn, pool.count)} is not inside memory`));
      for (const run of state.frames) {
        const inPool = sharedFrames(run, pool);
        if (run.use !== 'pagetable') {
          if (inPool !== undefined) out.push(framesOnly(inPool, `${framesText(inPool.pfn, inPool.count)} of the table pool have use ${run.use}`));
          continue;
        }
        const end = run.pfn + run.count;
        if (run.pfn < pool.pfn) out.push(framesOnly({ pfn: run.pfn, count: Math.min(end, pool.pfn) - run.pfn }, `${runText(run)}: pagetable frames below the pool`));
        if (end > poolEnd) {
          const from = Math.max(run.pfn, poolEnd);
          out.push(framesOnly({ pfn: from, count: end - from }, `${runText(run)}: pagetable frames above the pool`));
        }
      }
      return out;
    },
  },
  {
    id: 'S10',
    name: 'tables_in_use_fit_the_pool',
    family: 'S',
    title: 'Tables in use fit the pool',
    statement: 'In a state with frame facts, 1 <= tablesInUse <= tablePool.count and pendingTableFrees >= 0.',
    rationale:
      'Every table, the pgd included, is a frame of the pool: an operation that needs more tables than the pool has ' +
      'must fail with ENOMEM and change nothing (split_large_page returns -ENOMEM when alloc_pages fails, and ' +
      '__change_page_attr_set_clr propagates it).',
    references: ['arch/x86/mm/pat/set_memory.c split_large_page', 'mm/memory.c __pte_alloc_kernel'],
    kernel: 'enforces',
    kernelNote: 'A table allocation that fails makes the operation fail with -ENOMEM (split_large_page, __pte_alloc_kernel).',
    holds(state) {
      if (!hasFrameFacts(state)) return [];
      const pool = state.config.tablePool;
      const fits = 1 <= state.tablesInUse && state.tablesInUse <= pool.count && state.pendingTableFrees >= 0;
      return fits ? [] : [framesOnly(pool, `tablesInUse ${state.tablesInUse} and pendingTableFrees ${state.pendingTableFrees} do not fit a pool of ${pool.count}`)];
    },
  },
  {
    id: 'S11',
    name: 'no_leaked_and_no_empty_tables',
    family: 'S',
    title: 'No leaked and no empty tables',
    statement:
      'In a state with frame facts and the single root init_mm, tablesInUse equals the radix footprint of its entries (leaves and non-present entries) plus pendingTableFrees; ' +
      'with the isolation roots, the tables spec/contracts/isolation.ts counts for them ("Tables") plus pendingTableFrees.',
    rationale:
      'Every allocated table is reachable or waiting for a flush, and every reachable table maps something: an unmap ' +
      'that forgets to free an emptied table leaks the pool, and a table freed while reachable is a use-after-free. A ' +
      'library can promise it; the kernel keeps empty kernel tables on purpose and frees them only where a huge mapping ' +
      'must replace one (pmd_free_pte_page, pud_free_pmd_page) or a collapse makes one unreachable. It needs the whole ' +
      'map, so it runs in full checks only. With the isolation roots, shared tables count once: every kernel half is init_mm\'s ' +
      'tables, a KPTI user copy shares its pgd\'s tables below the top level, an ASI root has none of its own (whether the ' +
      'sharing itself holds is for the KPTI and ASI families to state).',
    references: [
      'mm/vmalloc.c (gregkh/linux 04aa71da) vunmap_pte_range, vunmap_pmd_range, vunmap_pud_range, vmap_try_huge_pmd, vmap_try_huge_pud',
      'arch/x86/mm/pgtable.c (gregkh/linux 35d40ad2) pmd_free_pte_page, pud_free_pmd_page',
      'arch/x86/mm/pat/set_memory.c (gregkh/linux 53c2f13c) cpa_collapse_large_pages, unmap_pte_range, populate_pgd',
      'spec/footprint.ts tableFootprint',
    ],
    kernel: 'strict-only',
    kernelNote:
      'vmalloc never frees a page table: vunmap_pte_range clears the PTEs and vunmap_pmd_range/vunmap_pud_range clear huge ' +
      'entries, and none of them frees the table left empty, which stays linked for the next vmap. Tables are freed only ' +
      'when a huge vmap or ioremap replaces one (vmap_try_huge_pmd and vmap_try_huge_pud call pmd_free_pte_page and ' +
      'pud_free_pmd_page), after a CPA collapse ' +
      '(cpa_collapse_large_pages), and by CPA\'s unmap_pte_range on populate_pgd\'s error path.',
    holds(state) {
      const acc = tablesNeeded(state, radixFootprint);
      return acc === undefined || state.tablesInUse === acc.needed + state.pendingTableFrees ? [] : [tableCountWitness(state, acc)];
    },
  },
  {
    id: 'S12',
    name: 'page_table_frames_mapped_only_by_their_direct_map_page',
    family: 'S',
    title: 'Page-table frames mapped only by their direct-map page',
    statement: 'A frame with use pagetable is mapped by no leaf except at its own direct-map page __PAGE_OFFSET + pfn.',
    rationale:
      'A mapping of a table frame is a way to rewrite translations: the direct-map page is the one the kernel uses for ' +
      'the tables it allocates at run time (it reaches them at __va of their pfn, pte_offset_kernel, pmd_page_vaddr), and ' +
      'any further writable mapping of one is a second, unprotected way in, the primitive behind "Dirty Pagetable" style ' +
      'exploits, bypassing every other invariant here. The kernel\'s own boot tables are the exception ptspec does not ' +
      'model: head_64.S defines init_top_pgt, level3_kernel_pgt, level2_kernel_pgt, level2_fixmap_pgt and ' +
      'level1_fixmap_pgt as data of the kernel image and links them by their image addresses minus __START_KERNEL_map, ' +
      'so those frames are mapped through the high map as well as the direct map. ptspec\'s scenarios take every table ' +
      'from a pool outside the image, where only the direct-map page is needed.',
    references: [
      'arch/x86/kernel/head_64.S (torvalds/linux 015a2ea5) init_top_pgt, level3_kernel_pgt, level2_kernel_pgt, level2_fixmap_pgt, level1_fixmap_pgt',
      'arch/x86/include/asm/pgtable.h pte_offset_kernel',
      'mm/vmalloc.c (gregkh/linux 04aa71da) vmap_pages_pte_range',
    ],
    kernel: 'strict-only',
    kernelNote:
      'The kernel does not hold it: its boot tables live in the kernel image and are mapped through the high map ' +
      '(head_64.S), and nothing refuses another kernel mapping of a table frame (vmap_pages_pte_range maps whatever pages ' +
      'it is given). Only the strict profile refuses one.',
    holds: (state) => mappedBesideDirectMap(state, 'pagetable', 'a page-table frame mapped outside its direct-map page'),
  },
  {
    id: 'S13',
    name: 'init_mm_is_root_zero',
    family: 'S',
    title: 'init_mm is root 0',
    statement: 'Root ids are unique and root 0 exists with kind kernel (init_mm).',
    rationale:
      'init_mm (swapper_pg_dir) is the page table every kernel-half mapping is made in and that kernel threads run ' +
      'on; every operation on kernel mappings names it, so it must exist and be unique.',
    references: ['mm/init-mm.c init_mm', 'arch/x86/kernel/head_64.S init_top_pgt'],
    kernel: 'guarantees',
    kernelNote: 'init_mm is a single static object (mm/init-mm.c) whose pgd is swapper_pg_dir, set up at boot.',
    holds(state) {
      const out: Witness[] = [];
      state.roots.forEach((root, i) => {
        if (state.roots.slice(0, i).some((r) => r.id === root.id)) out.push({ root: root.id, detail: `root id ${root.id} appears twice` });
        if (root.id === INIT_MM && root.kind !== 'kernel') out.push({ root: INIT_MM, detail: `root 0 has kind ${root.kind}, not kernel` });
      });
      if (!state.roots.some((r) => r.id === INIT_MM)) out.push({ root: INIT_MM, detail: 'no root 0 (init_mm)' });
      return out;
    },
  },
  {
    id: 'S14',
    name: 'flush_obligations_are_disjoint_kernel_ranges',
    family: 'S',
    title: 'Flush obligations are disjoint kernel ranges',
    statement: 'Pending flush obligations are sorted by vpn, pairwise disjoint, each of at least one page and inside the kernel half.',
    rationale:
      'Obligations record what *_noflush callers (set_direct_map_invalid_noflush, secretmem, guest_memfd) still owe ' +
      'flush_tlb_kernel_range; keeping them as a canonical set of kernel ranges makes "discharged by a flush of this ' +
      'range" exact and lets model and impl compare equal.',
    references: ['arch/x86/mm/tlb.c flush_tlb_kernel_range', 'mm/secretmem.c secretmem_fault', 'arch/x86/mm/pat/set_memory.c set_direct_map_invalid_noflush'],
    kernel: 'guarantees',
    kernelNote: 'The kernel keeps no list of owed flushes; what its *_noflush callers owe are flushes of direct-map pages, kernel ranges by construction.',
    holds(state) {
      const levels = state.config.levels;
      const out: Witness[] = [];
      state.pendingFlush.forEach((ob, i) => {
        const where = { vpn: ob.vpn, pages: ob.pages };
        if (!isCanonicalRange(ob.vpn, ob.pages, levels) || !isKernelHalf(ob.vpn, levels)) {
          out.push({ ...where, detail: `obligation (${ob.reason}) is not a kernel-half range of at least one page` });
        } else if (state.pendingFlush.slice(0, i).some((earlier) => ob.vpn < earlier.vpn + earlier.pages)) {
          out.push({ ...where, detail: `obligation (${ob.reason}) overlaps or precedes one before it` });
        }
      });
      return out;
    },
  },
  {
    id: 'S15',
    name: 'non_present_entries_are_aligned_and_occupy_free_slots',
    family: 'S',
    title: 'Non-present entries are aligned and overlap nothing',
    statement:
      'In every root, the non-present entries are sorted by vpn, each aligned in page and frame to its size, and none ' +
      'overlaps another non-present entry or a leaf.',
    rationale:
      'An entry with P clear but its frame kept (set_memory_np, set_direct_map_invalid_noflush) still occupies its slot: ' +
      'one slot holds one entry, so a non-present entry and a leaf over the same page would be two values of one entry. ' +
      'The kernel relies on the kept frame (set_direct_map_default_noflush and set_memory_p restore the entry from it, and ' +
      'lookup_address returns a non-present entry as the entry at its level).',
    references: ['arch/x86/mm/pat/set_memory.c (gregkh/linux 53c2f13c) __set_pages_np, __set_pages_p, lookup_address_in_pgd_attr'],
    kernel: 'guarantees',
    kernelNote: 'A page-table slot holds one entry; CPA rewrites an entry in place whether P is set or not, so the kept frame and size are those of the entry it cleared.',
    holds(state) {
      const out: Witness[] = [];
      for (const root of state.roots) {
        const np = root.nonPresent ?? [];
        np.forEach((e, i) => {
          const n = pagesOf(e);
          const where = { root: root.id, vpn: e.vpn, pages: n };
          const meets = (o: Leaf): boolean => o.vpn < e.vpn + n && e.vpn < o.vpn + pagesOf(o);
          if (e.vpn % n !== 0 || e.pfn % n !== 0) out.push({ ...where, detail: `a non-present ${e.size} entry not aligned to its size` });
          if (i > 0 && np[i - 1]!.vpn >= e.vpn) out.push({ ...where, detail: 'non-present entries out of vpn order' });
          if (np.some((o, j) => j !== i && meets(o))) out.push({ ...where, detail: 'a non-present entry overlaps another' });
          if (root.leaves.some(meets)) out.push({ ...where, detail: 'a non-present entry overlaps a leaf' });
        });
      }
      return out;
    },
  },
];
