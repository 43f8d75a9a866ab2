/**
 * apply_to_page_range with a populate callback (mm/memory.c __apply_to_page_range, create
 * set; the callback as kasan_populate_vmalloc_pte: a PTE already set is left alone), on
 * the model's entries: which pages get a 4K leaf, which huge entry stops it, and, under
 * linux, how far it gets before the table pool runs out (the kernel keeps what it did).
 */
import { PAGES, type Level, type PagingLevels, type Pfn, type Vpn } from '../spec/address.ts';
import type { Leaf, Prot } from '../spec/state.ts';
import type { Entries } from './entries.ts';
import { intersecting, leafEnd, makeLeaf } from './leaves.ts';
import { tableAt, tableLinked, type TableId } from './tables.ts';

/** The first huge entry (leaf or non-present, 2M or 1G) meeting [vpn, vpn+pages), in address order: where the walk WARNs. */
export function firstHugeEntry(e: Entries, vpn: Vpn, pages: number): Leaf | undefined {
  const huge = (list: readonly Leaf[]): Leaf | undefined => {
    const [lo, hi] = intersecting(list, vpn, pages);
    return list.slice(lo, hi).find((l) => l.size !== '4K');
  };
  const a = huge(e.leaves);
  const b = huge(e.nonPresent);
  return a === undefined ? b : b === undefined || a.vpn < b.vpn ? a : b;
}

/** The pages of [vpn, end) without an entry of either kind, as ranges in address order. */
function gaps(e: Entries, vpn: Vpn, end: Vpn): { vpn: Vpn; end: Vpn }[] {
  const pick = (list: readonly Leaf[]): readonly Leaf[] => {
    const [lo, hi] = intersecting(list, vpn, end - vpn);
    return list.slice(lo, hi);
  };
  const met = [...pick(e.leaves), ...pick(e.nonPresent)].sort((x, y) => x.vpn - y.vpn);
  const out: { vpn: Vpn; end: Vpn }[] = [];
  let at = vpn;
  for (const l of met) {
    if (l.vpn > at) out.push({ vpn: at, end: l.vpn });
    at = Math.max(at, leafEnd(l));
  }
  if (at < end) out.push({ vpn: at, end });
  return out;
}

/** Every page of [vpn, end) without an entry, as 4K leaves to pfn + (page - first) with `prot`. */
export function populateLeaves(e: Entries, first: Vpn, end: Vpn, pfn: Pfn, prot: Prot): Leaf[] {
  const out: Leaf[] = [];
  for (const g of gaps(e, first, end)) for (let p = g.vpn; p < g.end; p++) out.push(makeLeaf(p, pfn + (p - first), '4K', prot));
  return out;
}

export interface LinuxApply {
  /** The PTEs set, in address order. */
  readonly added: readonly Leaf[];
  /** The tables allocated that no entry needs afterwards (an upper table allocated just before the pool ran out): kept. */
  readonly keptAdd: readonly TableId[];
  /** The pool ran out (-ENOMEM) before the walk got to `end`. */
  readonly enomem: boolean;
}

/**
 * The linux walk over [first, end) (end: the range's end, or the huge entry's start):
 * in address order, each page without an entry gets the tables it lacks, top down
 * (pud_alloc, pmd_alloc, pte_alloc_kernel, each one table from the pool while `free`
 * lasts), then its PTE. Pages of one 2M block share every table, so the walk takes them
 * a block at a time.
 */
export function linuxApply(levels: PagingLevels, e: Entries, kept: ReadonlySet<TableId>, free: number, first: Vpn, end: Vpn, pfn: Pfn, prot: Prot): LinuxApply {
  const lists = [e.leaves, e.nonPresent];
  const allocated = new Set<TableId>();
  const added: Leaf[] = [];
  for (const g of gaps(e, first, end)) {
    for (let at = g.vpn; at < g.end; ) {
      const to = Math.min(g.end, (Math.floor(at / PAGES['2M']) + 1) * PAGES['2M']);
      const fresh: TableId[] = [];
      for (let L = levels - 1; L >= 1; L--) {
        const id = tableAt(L as Level, at);
        if (allocated.has(id) || tableLinked(lists, kept, L as Level, at)) continue;
        if (allocated.size === free) return { added, keptAdd: fresh, enomem: true };
        allocated.add(id);
        fresh.push(id);
      }
      for (let p = at; p < to; p++) added.push(makeLeaf(p, pfn + (p - first), '4K', prot));
      at = to;
    }
  }
  return { added, keptAdd: [], enomem: false };
}
