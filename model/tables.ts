/**
 * Page tables as the model sees them: it keeps no tables, only leaves, so a table is the
 * radix footprint's notion (spec/footprint.ts): the level-L table with key k exists while
 * some leaf of level ≤ L has floor(vpn / pagesPerEntry(L + 1)) = k, and it covers the span
 * [k·pagesPerEntry(L + 1), (k + 1)·pagesPerEntry(L + 1)). Tables an operation empties
 * without flushing stay pending free until a flush meets their span
 * (spec/contracts/flush.ts, "Deferred table frees").
 */
import { leafLevel, pagesPerEntry, type Level, type PagingLevels, type Vpn } from '../spec/address.ts';
import { forEachTableOf } from '../spec/footprint.ts';
import type { Leaf } from '../spec/state.ts';
import { intersecting } from './leaves.ts';

export interface PendingTable {
  readonly level: Level;
  /** The span the table covered: a flush meeting it releases the table. */
  readonly vpn: Vpn;
  readonly pages: number;
}

function tableExists(leaves: readonly Leaf[], level: Level, base: Vpn, span: number): boolean {
  const [lo, hi] = intersecting(leaves, base, span);
  for (let i = lo; i < hi; i++) {
    const l = leaves[i]!;
    if (l.vpn >= base && leafLevel(l.size) <= level) return true;
  }
  return false;
}

/** The pending tables a flush of [vpn, vpn+pages) leaves pending: those whose span it misses. */
export function releasePending(pending: readonly PendingTable[], vpn: Vpn, pages: number): readonly PendingTable[] {
  return pending.filter((t) => t.vpn + t.pages <= vpn || vpn + pages <= t.vpn);
}

/**
 * The linux profile keeps every table it allocated for the kernel half: vunmap frees none
 * (spec/contracts/linux.ts, "Page tables"). The model names a table by its level and key,
 * packed in one number (key·8 + level: keys stay below 2^46, so it is exact), and remembers
 * the tables that exist though no entry needs them ("kept"). The kept set never holds a
 * table some entry needs, so tablesInUse = footprint + |kept| + pending.
 */
export type TableId = number;

const tableId = (level: Level, key: number): TableId => key * 8 + level;

/** The key of the level-L table holding vpn. */
const keyAt = (level: Level, vpn: Vpn): number => Math.floor(vpn / pagesPerEntry((level + 1) as Level));

/** Whether some entry of the lists needs the level-L table with this key. */
function needed(lists: readonly (readonly Leaf[])[], level: Level, key: number): boolean {
  const span = pagesPerEntry((level + 1) as Level);
  return lists.some((list) => tableExists(list, level, key * span, span));
}

/** Every table `entries` need (the entry's own level up to the one below the pgd), each once, in no particular order. */
function tablesNeededBy(levels: PagingLevels, entries: readonly Leaf[]): Map<TableId, { level: Level; key: number }> {
  const out = new Map<TableId, { level: Level; key: number }>();
  for (const e of entries) forEachTableOf(levels, e, (level, key) => out.set(tableId(level, key), { level, key }));
  return out;
}

/**
 * How many entries need each table (tableFootprint's (level, key) pairs, by id): the
 * footprint of an entry set that changes a few entries at a time, kept up to date entry
 * by entry instead of recounted over every leaf.
 */
export class TableCounts {
  constructor(
    private readonly levels: PagingLevels,
    private readonly counts = new Map<TableId, number>(),
  ) {}

  add(e: Leaf): void {
    forEachTableOf(this.levels, e, (level, key) => {
      const id = tableId(level, key);
      this.counts.set(id, (this.counts.get(id) ?? 0) + 1);
    });
  }

  remove(e: Leaf): void {
    forEachTableOf(this.levels, e, (level, key) => {
      const id = tableId(level, key);
      const n = this.counts.get(id) ?? 0;
      if (n <= 1) this.counts.delete(id);
      else this.counts.set(id, n - 1);
    });
  }

  /** tableFootprint of the entries counted: the pgd and every table some entry needs. */
  get footprint(): number {
    return 1 + this.counts.size;
  }

  /** Whether some counted entry needs the table. */
  needs(id: TableId): boolean {
    return this.counts.has(id);
  }

  /** The footprint once `removed` (counted now) are gone and `added` are in, the counts left as they are. */
  footprintAfter(removed: readonly Leaf[], added: readonly Leaf[]): number {
    const delta = new Map<TableId, number>();
    const step = (e: Leaf, by: number): void => forEachTableOf(this.levels, e, (level, key) => {
      const id = tableId(level, key);
      delta.set(id, (delta.get(id) ?? 0) + by);
    });
    for (const e of removed) step(e, -1);
    for (const e of added) step(e, 1);
    let footprint = this.footprint;
    for (const [id, d] of delta) {
      const before = this.counts.get(id) ?? 0;
      if (before === 0 && d > 0) footprint++;
      if (before > 0 && before + d === 0) footprint--;
    }
    return footprint;
  }

  clone(): TableCounts {
    return new TableCounts(this.levels, new Map(this.counts));
  }
}

/** The id of the level-L table holding vpn. */
export const tableAt = (level: Level, vpn: Vpn): TableId => tableId(level, keyAt(level, vpn));

/**
 * Whether the level-L table holding vpn is linked in its place (what a page walk meets):
 * some entry of the lists needs it (the footprint's notion), or, under linux, it is kept.
 * A table pending free is unlinked: no entry needs it, so it is neither.
 */
export function tableLinked(lists: readonly (readonly Leaf[])[], kept: ReadonlySet<TableId>, level: Level, vpn: Vpn): boolean {
  return kept.has(tableAt(level, vpn)) || needed(lists, level, keyAt(level, vpn));
}

/**
 * The tables below the pgd that `entries` need, by id: tableFootprint(entries) - 1 of
 * them. A root's table set, so tables of several states can be united (a kept set).
 */
export function tableIds(levels: PagingLevels, entries: readonly Leaf[]): Set<TableId> {
  return new Set(tablesNeededBy(levels, entries).keys());
}

/**
 * The tables a strict `_noflush` removal empties: of the tables the entries it met
 * (`met`, both kinds, as they were before) needed, those no entry needs after it
 * (`neededAfter`). Only those can empty (any other table keeps the entry that needed it),
 * so the work is proportional to what the removal touched. They go pending, their span
 * the entry's.
 */
export function emptiedTables(levels: PagingLevels, met: readonly Leaf[], neededAfter: (id: TableId) => boolean): PendingTable[] {
  const out: PendingTable[] = [];
  for (const [id, t] of tablesNeededBy(levels, met)) {
    const span = pagesPerEntry((t.level + 1) as Level);
    if (!neededAfter(id)) out.push({ level: t.level, vpn: t.key * span, pages: span });
  }
  return out;
}

/**
 * After a linux unmap removed `removed` (both kinds of entry): the tables the removed
 * entries needed that no entry needs now (`neededAfter`). They stay allocated (kept).
 * Only the removed entries' tables are looked at: no other table's need changed.
 */
export function newlyKept(levels: PagingLevels, removed: readonly Leaf[], neededAfter: (id: TableId) => boolean): TableId[] {
  return [...tablesNeededBy(levels, removed).keys()].filter((id) => !neededAfter(id));
}

/**
 * A linux map of `added`: the kept tables that stop being kept, and where the kernel
 * flushes to free some. A kept table the new entries need is reused
 * (pte/pmd_alloc_kernel finds it); a 2M leaf placed over a kept PTE table frees it first
 * (vmap_try_huge_pmd → pmd_free_pte_page), a 1G leaf over a kept PMD table frees it and
 * every kept PTE table below it (vmap_try_huge_pud → pud_free_pmd_page). The leaf itself
 * occupies the slot, so the freed tables are only those at its vpn. Each of those frees
 * clears the entry and flushes one page at the leaf's vpn first (flush_tlb_kernel_range
 * of one page: the INVLPG that empties the paging-structure caches), so the freed table
 * is released by that flush: `flushAt` lists those pages.
 */
export function keptLeavingByMap(levels: PagingLevels, added: readonly Leaf[], kept: ReadonlySet<TableId>): { drop: TableId[]; flushAt: Vpn[] } {
  if (kept.size === 0) return { drop: [], flushAt: [] };
  const out = new Set<TableId>();
  const flushAt: Vpn[] = [];
  for (const id of tablesNeededBy(levels, added).keys()) if (kept.has(id)) out.add(id);
  const free = (id: TableId): void => void (kept.has(id) && out.add(id));
  for (const l of added) {
    if (l.size === '2M') {
      const pte = tableId(1, keyAt(1, l.vpn));
      // pmd_free_pte_page runs only when a table hangs in the pmd slot.
      if (kept.has(pte)) flushAt.push(l.vpn);
      free(pte);
    }
    if (l.size === '1G') {
      const pmd = tableId(2, keyAt(2, l.vpn));
      if (kept.has(pmd)) flushAt.push(l.vpn);
      free(pmd);
      const first = keyAt(1, l.vpn);
      for (let k = 0; k < 512; k++) free(tableId(1, first + k));
    }
  }
  return { drop: [...out], flushAt };
}
