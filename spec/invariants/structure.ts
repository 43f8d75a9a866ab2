/**
 * S: structure. The abstract state is well formed the way real x86-64 tables force it
 * to be: leaves only at the levels that can hold them, aligned, inside canonical
 * addresses and MAXPHYADDR; frames cover memory; tables come from the pool and are
 * exactly the radix footprint of the leaves; table frames are reachable only through
 * the direct map.
 */
import { PAGE_SIZES, VPN_LIMIT, isCanonicalRange, isKernelHalf, lowerHalfEnd, upperHalfStart, type PageSize } from '../address.ts';
import type { CheckScope, Invariant, Witness } from '../invariant.ts';
import { FRAME_USES, INIT_MM, type AbstractState, type FrameRun } from '../state.ts';
import { tableFootprint } from '../footprint.ts';
import {
  DIRECT_MAP, Witnesses, alignmentCheck, forEachNeighbours, forEachRun, frameUseCheck, framesText, hasFrameFacts, inScope, leafCheck, leafPages,
  leafText,
} from './common.ts';

const runText = (r: FrameRun): string =>
  `${framesText(r.pfn, r.count)} ${r.use}${r.sensitive ? ' sensitive' : ''}${r.noDirectMap ? ' noDirectMap' : ''}`;

export const STRUCTURE: readonly Invariant[] = [
  {
    id: 'S1',
    family: 'S',
    title: 'Leaves only at PTE, PMD and PUD level',
    statement: 'Every leaf is a 4K (PTE), 2M (PMD) or 1G (PUD) leaf: no leaf at P4D or PGD level and no other size.',
    rationale:
      'The PS bit is reserved in PML4 and PML5 entries (Intel SDM vol. 3 §4.5), so a P4D/PGD "leaf" makes the walk fault ' +
      'with a reserved-bit page fault; the kernel only ever creates pte, pmd_leaf and pud_leaf entries (p4d_leaf is ' +
      'always false on x86-64). verified-nrkernel states the same as pt_entry_sizes_are_valid.',
    references: ['Intel SDM vol. 3 §4.5 (PS reserved in PML4E/PML5E)', 'include/linux/pgtable.h p4d_leaf', 'verified-nrkernel spec_t/os.rs pt_entry_sizes_are_valid'],
    check: leafCheck(() => (leaf) => (PAGE_SIZES.includes(leaf.size as PageSize) ? undefined : `size ${String(leaf.size)} is not a page size of any level`)),
  },
  {
    id: 'S2',
    family: 'S',
    title: 'Leaf VA aligned to its size',
    statement: 'The first page of every leaf is aligned to the leaf size (2M leaves to 512 pages, 1G leaves to 262144 pages).',
    rationale:
      'A leaf is one entry of its level and covers exactly the naturally aligned region that entry translates: an ' +
      'unaligned base means the abstract map claims pages the entry does not cover (pmd_index/pud_index drop the low ' +
      'bits). verified-nrkernel requires aligned(base, size) of every mapping (pt_entries_aligned).',
    references: ['arch/x86/include/asm/pgtable.h pmd_index, pud_index', 'verified-nrkernel spec_t/os.rs pt_entries_aligned'],
    check: alignmentCheck('vpn', 1),
  },
  {
    id: 'S3',
    family: 'S',
    title: 'Leaves inside one canonical half',
    statement: 'Every leaf lies entirely inside the lower or the upper canonical half of the configured paging mode (48- or 57-bit).',
    rationale:
      'A non-canonical address raises #GP before any walk, so a mapping there can never be used and means the address ' +
      'arithmetic is wrong; a range running off the end of the lower half would wrap into the non-canonical hole. The ' +
      'kernel rejects such ranges in its VA allocators (vmalloc, ioremap) and __is_canonical_address guards its users.',
    references: ['arch/x86/include/asm/page.h __is_canonical_address', 'Documentation/arch/x86/x86_64/mm.rst', 'Intel SDM vol. 3 §3.3.7.1'],
    check: leafCheck((state) => {
      const levels = state.config.levels;
      const lowEnd = lowerHalfEnd(levels);
      const highStart = upperHalfStart(levels);
      return (leaf) => {
        const n = leafPages(leaf);
        const end = leaf.vpn + n;
        const inside = Number.isInteger(leaf.vpn) && leaf.vpn >= 0 && (end <= lowEnd || (leaf.vpn >= highStart && end <= VPN_LIMIT));
        return n > 0 && !inside ? `not inside one canonical half of ${levels}-level paging` : undefined;
      };
    }),
  },
  {
    id: 'S4',
    family: 'S',
    title: 'Leaves sorted by address',
    statement: 'The leaves of every root are in strictly increasing vpn order.',
    rationale:
      'The abstract map is a canonical form: refinement is deep equality of abstract states, and every sweep of the ' +
      'checker (scope search, VA-disjointness, footprint) relies on the order a page walk in address order produces, as ' +
      'ptdump and walk_page_range visit entries.',
    references: ['mm/pagewalk.c walk_page_range', 'mm/ptdump.c ptdump_walk_pgd'],
    check(state: AbstractState, scope?: CheckScope): Witness[] {
      const w = new Witnesses();
      for (const root of state.roots) {
        forEachNeighbours(root.leaves, scope, (prev, leaf) => {
          if (leaf.vpn <= prev.vpn) w.addLeaf(root, leaf, `${leafText(leaf)} comes after ${leafText(prev)}`);
        });
      }
      return w.done();
    },
  },
  {
    id: 'S5',
    family: 'S',
    title: 'Frames below MAXPHYADDR',
    statement: 'Every leaf maps frames [pfn, pfn + pages) with pfn a non-negative integer and pfn + pages <= 2^(maxPhysBits - 12).',
    rationale:
      'Entry bits from MAXPHYADDR to 51 are reserved in every present entry (Intel SDM vol. 3 §4.5.4): a frame number at ' +
      'or above 2^(MAXPHYADDR-12) makes every access through the leaf fault with PF_RSVD. The kernel masks with ' +
      '__PHYSICAL_MASK and checks phys_addr_valid before building entries (ioremap, memremap).',
    references: ['arch/x86/include/asm/page_types.h __PHYSICAL_MASK', 'arch/x86/mm/physaddr.h phys_addr_valid', 'Intel SDM vol. 3 §4.5.4'],
    check: leafCheck((state) => {
      const limit = 2 ** (state.config.maxPhysBits - 12);
      return (leaf) => {
        if (!Number.isInteger(leaf.pfn) || leaf.pfn < 0) return 'pfn is not a non-negative integer';
        return leaf.pfn + leafPages(leaf) > limit ? `frames reach past MAXPHYADDR (${state.config.maxPhysBits} bits)` : undefined;
      };
    }),
  },
  {
    id: 'S6',
    family: 'S',
    title: 'Frames inside physical memory',
    statement: 'In a state with frame facts, every leaf maps only frames below config.frames.',
    rationale:
      'A mapping of a frame past the end of memory is a mapping of nothing the kernel owns: it must come from a bad ' +
      'pfn computation. The kernel builds the direct map only over memblock memory (init_memory_mapping) and pfn_valid ' +
      'guards pfn_to_page; the operations of ptspec reject such ranges with EINVAL.',
    references: ['arch/x86/mm/init.c init_memory_mapping', 'include/linux/mmzone.h pfn_valid'],
    check: leafCheck((state) => {
      const frames = state.config.frames;
      if (!hasFrameFacts(state)) return undefined;
      return (leaf) => (leaf.pfn + leafPages(leaf) > frames ? `frames reach past the ${frames} frames of memory` : undefined);
    }),
  },
  {
    id: 'S7',
    family: 'S',
    title: 'Frame runs cover memory exactly',
    statement: 'In a state with frame facts, the frame runs are sorted, each has a positive count, and together they cover [0, config.frames) without gap or overlap.',
    rationale:
      'Every frame has exactly one use, as every struct page has one owner; a gap is memory no invariant protects ' +
      '(a rodata frame missing from the runs is writable unnoticed) and an overlap gives a frame two uses. This is the ' +
      'memblock/e820 view the kernel starts from (e820__memblock_setup).',
    references: ['arch/x86/kernel/e820.c e820__memblock_setup', 'mm/memblock.c'],
    check(state: AbstractState): Witness[] {
      if (!hasFrameFacts(state)) return [];
      const w = new Witnesses();
      let next = 0;
      for (const run of state.frames) {
        if (!(run.count >= 1) || !Number.isInteger(run.count)) w.add({ frames: [{ pfn: run.pfn, count: run.count }], detail: `${runText(run)}: count is not a positive integer` });
        else if (run.pfn !== next) {
          const lo = Math.min(run.pfn, next);
          w.add({ frames: [{ pfn: lo, count: Math.abs(run.pfn - next) }], detail: `${runText(run)}: ${run.pfn > next ? 'gap' : 'overlap'} before it (expected pfn ${next})` });
        }
        next = Math.max(next, run.pfn + run.count);
      }
      if (next !== state.config.frames) w.add({ frames: [{ pfn: Math.min(next, state.config.frames), count: Math.abs(next - state.config.frames) }], detail: `runs end at pfn ${next}, memory at ${state.config.frames}` });
      return w.done();
    },
  },
  {
    id: 'S8',
    family: 'S',
    title: 'Frame runs merged',
    statement: 'Adjacent frame runs differ in use, sensitive or noDirectMap, and every use is a known frame use.',
    rationale:
      'Frame facts are a canonical form so that refinement is deep equality: set_direct_map_invalid_noflush and ' +
      'set_direct_map_default_noflush toggle noDirectMap on single pages, and a model and an impl that split runs ' +
      'differently must still compare equal.',
    references: ['arch/x86/mm/pat/set_memory.c set_direct_map_invalid_noflush, set_direct_map_default_noflush'],
    check(state: AbstractState): Witness[] {
      // Frame runs have no VA and are few: this always runs over all of them.
      const w = new Witnesses();
      let prev: FrameRun | undefined;
      for (const run of state.frames) {
        if (!FRAME_USES.includes(run.use)) w.add({ frames: [{ pfn: run.pfn, count: run.count }], detail: `${runText(run)}: unknown use` });
        else if (prev !== undefined && prev.pfn + prev.count === run.pfn && prev.use === run.use && prev.sensitive === run.sensitive && prev.noDirectMap === run.noDirectMap) {
          w.add({ frames: [{ pfn: prev.pfn, count: prev.count + run.count }], detail: `${runText(prev)} and ${runText(run)} are not merged` });
        }
        prev = run;
      }
      return w.done();
    },
  },
  {
    id: 'S9',
    family: 'S',
    title: 'Page tables come from the table pool',
    statement: 'In a state with frame facts, the table pool lies inside memory, every pool frame has use pagetable, and no frame outside the pool has use pagetable.',
    rationale:
      'Page-table pages are allocated by one allocator (alloc_low_page at boot, pte_alloc_one_kernel/__get_free_page ' +
      'later) and marked as such (PageTable, pagetable_alloc), which is what lets the kernel, and these invariants, ' +
      'tell table frames from data frames; a pool frame with another use would be handed out as a table while also ' +
      'being data.',
    references: ['arch/x86/mm/init.c alloc_low_page', 'include/linux/mm.h pagetable_alloc, PageTable', 'mm/page_table_check.c'],
    check(state: AbstractState): Witness[] {
      if (!hasFrameFacts(state)) return [];
      const w = new Witnesses();
      const pool = state.config.tablePool;
      if (pool.pfn < 0 || pool.count < 1 || pool.pfn + pool.count > state.config.frames) {
        w.add({ frames: [{ pfn: pool.pfn, count: pool.count }], detail: `table pool ${framesText(pool.pfn, pool.count)} is not inside memory` });
      }
      forEachRun(state.frames, pool.pfn, pool.count, (r, from, n) => {
        if (r.use !== 'pagetable') w.add({ frames: [{ pfn: from, count: n }], detail: `${framesText(from, n)} of the table pool have use ${r.use}` });
      });
      const poolEnd = pool.pfn + pool.count;
      for (const run of state.frames) {
        if (run.use !== 'pagetable') continue;
        const end = run.pfn + run.count;
        if (run.pfn < pool.pfn) w.add({ frames: [{ pfn: run.pfn, count: Math.min(end, pool.pfn) - run.pfn }], detail: `${runText(run)}: pagetable frames below the pool` });
        if (end > poolEnd) {
          const from = Math.max(run.pfn, poolEnd);
          w.add({ frames: [{ pfn: from, count: end - from }], detail: `${runText(run)}: pagetable frames above the pool` });
        }
      }
      return w.done();
    },
  },
  {
    id: 'S10',
    family: 'S',
    title: 'Tables in use fit the pool',
    statement: 'In a state with frame facts, 1 <= tablesInUse <= tablePool.count and pendingTableFrees >= 0.',
    rationale:
      'Every table, the pgd included, is a frame of the pool: an operation that needs more tables than the pool has ' +
      'must fail with ENOMEM and change nothing (split_large_page returns -ENOMEM when alloc_pages fails, and ' +
      '__change_page_attr_set_clr propagates it).',
    references: ['arch/x86/mm/pat/set_memory.c split_large_page', 'mm/memory.c __pte_alloc_kernel'],
    check(state: AbstractState): Witness[] {
      if (!hasFrameFacts(state)) return [];
      const pool = state.config.tablePool;
      const ok = state.tablesInUse >= 1 && state.tablesInUse <= pool.count && state.pendingTableFrees >= 0;
      return ok ? [] : [{ frames: [{ pfn: pool.pfn, count: pool.count }], detail: `tablesInUse ${state.tablesInUse}, pendingTableFrees ${state.pendingTableFrees}, pool of ${pool.count}` }];
    },
  },
  {
    id: 'S11',
    family: 'S',
    title: 'No leaked and no empty tables',
    statement: 'In a state with frame facts and the single root init_mm, tablesInUse equals the radix footprint of its leaves plus pendingTableFrees.',
    rationale:
      'Every allocated table is reachable or waiting for a flush, and every reachable table maps something: an unmap ' +
      'that forgets to free an emptied table leaks the pool (the reason for pmd_free_pte_page / pud_free_pmd_page when ' +
      'ioremap installs a huge page over an old table), and a table freed while reachable is a use-after-free. It needs ' +
      'the whole map, so it runs in full checks only; with several roots the sharing of kernel-half tables is for the ' +
      'KPTI and ASI families to state.',
    references: ['arch/x86/mm/pgtable.c pmd_free_pte_page, pud_free_pmd_page', 'arch/x86/mm/pat/set_memory.c try_to_free_pmd_page', 'DESIGN.md S family'],
    check(state: AbstractState, scope?: CheckScope): Witness[] {
      const root = state.roots[0];
      if (scope !== undefined || !hasFrameFacts(state) || state.roots.length !== 1 || root === undefined) return [];
      const expected = tableFootprint(state.config.levels, root.leaves) + state.pendingTableFrees;
      return state.tablesInUse === expected
        ? []
        : [{ root: root.id, detail: `tablesInUse is ${state.tablesInUse}, the leaves need ${expected - state.pendingTableFrees} tables and ${state.pendingTableFrees} await a flush` }];
    },
  },
  {
    id: 'S12',
    family: 'S',
    title: 'Page-table frames mapped only by their direct-map page',
    statement: 'A frame with use pagetable is mapped by no leaf except at its own direct-map page __PAGE_OFFSET + pfn.',
    rationale:
      'The kernel reads and writes page tables only through the direct map (__va of the table pfn, pte_offset_kernel); ' +
      'any other mapping of a table frame is a second, unprotected way to rewrite translations, the primitive behind ' +
      '"Dirty Pagetable" style exploits, and would bypass every other invariant here.',
    references: ['arch/x86/include/asm/pgtable.h pte_offset_kernel', 'mm/page_table_check.c', 'DESIGN.md S and P families'],
    check: frameUseCheck((leaf) => leaf.vpn - leaf.pfn !== DIRECT_MAP, (r) => r.use === 'pagetable', () => 'a page-table frame mapped outside its direct-map page'),
  },
  {
    id: 'S13',
    family: 'S',
    title: 'init_mm is root 0',
    statement: 'Root ids are unique and root 0 exists with kind kernel (init_mm).',
    rationale:
      'init_mm (swapper_pg_dir) is the page table every kernel-half mapping is made in and that kernel threads run ' +
      'on; every operation on kernel mappings names it, so it must exist and be unique.',
    references: ['mm/init-mm.c init_mm', 'arch/x86/kernel/head_64.S init_top_pgt'],
    check(state: AbstractState): Witness[] {
      const w = new Witnesses();
      const seen = new Set<number>();
      for (const root of state.roots) {
        if (seen.has(root.id)) w.add({ root: root.id, detail: `root id ${root.id} appears twice` });
        seen.add(root.id);
      }
      const init = state.roots.find((r) => r.id === INIT_MM);
      if (init === undefined) w.add({ root: INIT_MM, detail: 'no root 0 (init_mm)' });
      else if (init.kind !== 'kernel') w.add({ root: INIT_MM, detail: `root 0 has kind ${init.kind}, not kernel` });
      return w.done();
    },
  },
  {
    id: 'S14',
    family: 'S',
    title: 'Flush obligations are disjoint kernel ranges',
    statement: 'Pending flush obligations are sorted by vpn, pairwise disjoint, each of at least one page and inside the kernel half.',
    rationale:
      'Obligations record what *_noflush callers (set_direct_map_invalid_noflush, secretmem, guest_memfd) still owe ' +
      'flush_tlb_kernel_range; keeping them as a canonical set of kernel ranges makes "discharged by a flush of this ' +
      'range" exact and lets model and impl compare equal.',
    references: ['arch/x86/mm/tlb.c flush_tlb_kernel_range', 'mm/secretmem.c secretmem_fault', 'arch/x86/mm/pat/set_memory.c set_direct_map_invalid_noflush'],
    check(state: AbstractState, scope?: CheckScope): Witness[] {
      const w = new Witnesses();
      const levels = state.config.levels;
      let prevEnd = -1;
      for (const ob of state.pendingFlush) {
        if (inScope(ob.vpn, ob.pages, scope)) {
          const where = { vpn: ob.vpn, pages: ob.pages };
          if (!Number.isInteger(ob.pages) || ob.pages < 1 || !isCanonicalRange(ob.vpn, ob.pages, levels) || !isKernelHalf(ob.vpn, levels)) {
            w.add({ ...where, detail: `obligation (${ob.reason}) is not a kernel-half range of at least one page` });
          } else if (ob.vpn < prevEnd) {
            w.add({ ...where, detail: `obligation (${ob.reason}) overlaps or precedes the one before it` });
          }
        }
        prevEnd = Math.max(prevEnd, ob.vpn + ob.pages);
      }
      return w.done();
    },
  },
];
