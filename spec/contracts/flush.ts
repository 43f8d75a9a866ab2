/**
 * TLB entries, paging-structure caches, flush obligations and the lifetime of page tables
 * (AbstractState.tlb, walkCache, pendingFlush, tablesInUse, pendingTableFrees): the rules
 * every operation follows, in both profiles, and the canonical form every system reports
 * them in. Data only: the model (model/tlb.ts, model/tables.ts) and the impl (impl/tlb.ts,
 * impl/tables.ts) each implement the rules their own way, and spec/contracts/post states
 * them as relations. Kernel facts from gregkh/linux: arch/x86/mm/tlb.c (399ec9ca),
 * arch/x86/mm/pgtable.c and arch/x86/mm/pat/set_memory.c (53c2f13c). The rules:
 * FLUSH_RULES (CONTRACT_RULES in contract.ts).
 */
import type { ContractRule } from './contract.ts';
import { TLB_SINGLE_PAGE_FLUSH_CEILING as CEILING } from './linux.ts';

const TLB_SOURCE = 'arch/x86/mm/tlb.c of gregkh/linux 399ec9ca';

export const FLUSH_RULES: readonly ContractRule[] = [
  {
    id: 'tlb-entries',
    title: 'TLB entries',
    paragraphs: ['A TLB entry caches one leaf for one (cpu, root). Canonical order: (cpu, root, `leaf.vpn`, leaf size ascending).'],
    sources: [],
  },
  {
    id: 'paging-structure-caches',
    title: 'Paging-structure caches',
    paragraphs: [
      'A paging-structure-cache entry (state.ts `WalkCacheEntry`) caches one non-leaf entry for one (cpu, root): the level-L table covering an aligned span. Canonical order: (cpu, root, level, vpn). A walk that reaches a leaf caches the leaf (TLB) and every table entry above it (`current`); access\'s contract says how a walk uses them.',
    ],
    sources: ['arch/x86/mm/pgtable.c: `pud_free_pmd_page`, `pmd_free_pte_page` ("INVLPG to clear all paging-structure caches")'],
  },
  {
    id: 'range-flushes',
    title: `Range flushes and the ${CEILING}-page ceiling`,
    paragraphs: [
      `A range flush is \`flush_tlb_kernel_range\` of \`[vpn, vpn+pages)\` on every CPU: INVLPG of each page, which drops every TLB entry (any root) whose leaf meets the range, and empties every paging-structure cache of that CPU whatever the address. A range of more than ${CEILING} pages (\`tlb_single_page_flush_ceiling\`) is a full flush instead: flushAll.`,
      'This holds for the `flush` operation and for the flushes operations make themselves: the ranges an operation flushes, merged where they overlap or touch, each merged range on its own.',
    ],
    sources: [`${TLB_SOURCE}: \`flush_tlb_kernel_range\`, \`flush_tlb_one_kernel\`, \`tlb_single_page_flush_ceiling\``],
  },
  {
    id: 'obligations',
    title: 'Flush obligations',
    paragraphs: [
      'Obligations are sorted, merged, disjoint page ranges; merging two ranges joins their reasons (sorted, de-duplicated, joined by `+`); a range flush removes just the part it covers, the pieces keeping their reason; a full flush removes all.',
    ],
    sources: [],
  },
  {
    id: 'promised-flushes',
    title: 'The flushes operations promise',
    paragraphs: [
      '**Strict**: every operation that changes a present entry flushes, before it returns, every range it changed (protect: the request and every alias range it changed; split and collapse: the whole block), except the `_noflush` forms (setDirectMapInvalid/Default and unmap with `flush: false`), which leave an obligation for the range instead.',
      '**Linux**: what the kernel\'s code flushes, including what it misses (protect\'s linux contract: `cpa_flush` flushes nothing when only an alias changed; every split is a `flush_tlb_all`).',
    ],
    sources: ['arch/x86/mm/pat/set_memory.c of gregkh/linux 53c2f13c: `__split_large_page`, `cpa_flush`, `cpa_collapse_large_pages`'],
  },
  {
    id: 'deferred-table-frees',
    title: 'Deferred table frees',
    paragraphs: [
      'A table that an operation empties, unlinks or replaces by a huge leaf goes on the deferred-free list: it is *pending*, counted in `tablesInUse` and `pendingTableFrees` and toward ENOMEM, until a flush releases it; then it is free and reusable at once. A pending table covers the VA span of the entry that linked it: a level-l table with base page b covers `[b, b + pagesPerEntry(l + 1))`. Any range flush meeting that span releases it (every paging-structure cache is empty after it, so no CPU can still walk through it), a full flush releases all.',
      'An operation that flushes releases what it made pending in that same flush, after it succeeded. So only the `_noflush` forms (`setDirectMapInvalid` and `unmap` with `flush: false`) and the clients\' CPU-local clears (kunmapLocal, mermapPut) leave tables pending: a CPU that cached a pointer to one sees it `unlinked` (a walk through it finds nothing). The ENOMEM decision is made before the operation\'s own flush: the tables it needs are the radix footprint of its result\'s entries plus every table pending before it plus those it makes pending.',
      'A table is freed only by the flush that releases it. A system that frees it any earlier leaves a `freed` paging-structure-cache entry: invariant L4.',
    ],
    sources: ['arch/x86/mm/pgtable.c: `pud_free_pmd_page`, `pmd_free_pte_page`', 'arch/x86/mm/pat/set_memory.c of gregkh/linux 53c2f13c: `cpa_collapse_large_pages`'],
  },
];
