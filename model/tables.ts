/**
 * Page tables as the model sees them: it keeps no tables, only leaves, so a table is the
 * radix footprint's notion (spec/footprint.ts): the level-L table with key k exists while
 * some leaf of level ≤ L has floor(vpn / pagesPerEntry(L + 1)) = k, and it covers the span
 * [k·pagesPerEntry(L + 1), (k + 1)·pagesPerEntry(L + 1)). Tables an operation empties
 * without flushing stay pending free until a flush meets their span
 * (spec/contracts/flush.ts, "Deferred table frees").
 */
import { leafLevel, pagesPerEntry, type Level, type PagingLevels, type Vpn } from '../spec/address.ts';
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

/** The tables that `before` needs and `after` does not, among those whose span meets [vpn, vpn+pages). */
export function emptiedTables(levels: PagingLevels, before: readonly Leaf[], after: readonly Leaf[], vpn: Vpn, pages: number): PendingTable[] {
  const out: PendingTable[] = [];
  for (let L = 1; L < levels; L++) {
    const level = L as Level;
    const span = pagesPerEntry((L + 1) as Level);
    for (let k = Math.floor(vpn / span); k <= Math.floor((vpn + pages - 1) / span); k++) {
      if (tableExists(before, level, k * span, span) && !tableExists(after, level, k * span, span)) out.push({ level, vpn: k * span, pages: span });
    }
  }
  return out;
}

/** The pending tables a flush of [vpn, vpn+pages) leaves pending: those whose span it misses. */
export function releasePending(pending: readonly PendingTable[], vpn: Vpn, pages: number): readonly PendingTable[] {
  return pending.filter((t) => t.vpn + t.pages <= vpn || vpn + pages <= t.vpn);
}
