/**
 * walk_kernel_page_table_range over init_mm (spec/contracts/clients.ts "walkPageRange",
 * spec/system.ts WalkVisit), on the model's notion of tables (model/tables.ts): a table
 * is there when an entry needs it or, under linux, when it is kept; a table pending free
 * is unlinked, so the walk sees a hole where it was. Depth first in address order, every
 * visit clipped to the range, as walk_pgd_range .. walk_pte_range call their callbacks.
 */
import { leafLevel, pagesPerEntry, type Level, type PagingLevels, type Vpn } from '../spec/address.ts';
import type { Leaf } from '../spec/state.ts';
import type { WalkVisit } from '../spec/system.ts';
import type { Entries } from './entries.ts';
import { findLeaf, intersecting, leafEnd } from './leaves.ts';

/** Whether the level-L table holding vpn is linked (model/tables.ts tableLinked). */
export type Linked = (level: Level, vpn: Vpn) => boolean;

/** The entry of a level-L table (L ≥ 2) whose span starts at `at`, if it is a huge one: a leaf, or a non-present entry. */
function hugeEntryAt(e: Entries, level: Level, at: Vpn): { readonly entry: Leaf; readonly present: boolean } | undefined {
  for (const [list, present] of [[e.leaves, true], [e.nonPresent, false]] as const) {
    const l = findLeaf(list, at);
    if (l !== undefined && l.vpn === at && leafLevel(l.size) === level) return { entry: l, present };
  }
  return undefined;
}

/** Every visit of a walk of [vpn, vpn+pages) on a `levels`-level init_mm. */
export function walkVisits(levels: PagingLevels, e: Entries, linked: Linked, vpn: Vpn, pages: number): WalkVisit[] {
  const out: WalkVisit[] = [];

  // walk_pte_range: every PTE in [lo, hi) of one PTE table, none ones gathered into runs.
  const ptes = (lo: Vpn, hi: Vpn): void => {
    const [a, b] = intersecting(e.leaves, lo, hi - lo);
    const [c, d] = intersecting(e.nonPresent, lo, hi - lo);
    const set = [...e.leaves.slice(a, b).map((l) => ({ l, kind: 'leaf' as const })), ...e.nonPresent.slice(c, d).map((l) => ({ l, kind: 'nonpresent' as const }))]
      .sort((x, y) => x.l.vpn - y.l.vpn);
    let at = lo;
    for (const { l, kind } of set) {
      if (l.vpn > at) out.push({ kind: 'none', level: 1, vpn: at, pages: l.vpn - at });
      out.push({ kind, level: 1, vpn: l.vpn, pages: 1, pfn: l.pfn });
      at = leafEnd(l);
    }
    if (at < hi) out.push({ kind: 'none', level: 1, vpn: at, pages: hi - at });
  };

  // The entries of the level-L table in [lo, hi): a huge entry is visited and not descended,
  // a table entry visited and descended, a none entry is a hole (pte_hole).
  const table = (level: Level, lo: Vpn, hi: Vpn): void => {
    if (level === 1) return ptes(lo, hi);
    const span = pagesPerEntry(level);
    for (let at = Math.floor(lo / span) * span; at < hi; at += span) {
      const from = Math.max(lo, at);
      const clip = { level, vpn: from, pages: Math.min(hi, at + span) - from };
      const huge = hugeEntryAt(e, level, at);
      if (huge !== undefined) {
        out.push({ kind: huge.present ? 'leaf' : 'nonpresent', ...clip, pfn: huge.entry.pfn + (from - at) });
      } else if (linked((level - 1) as Level, at)) {
        out.push({ kind: 'table', ...clip });
        table((level - 1) as Level, from, from + clip.pages);
      } else {
        out.push({ kind: 'hole', ...clip });
      }
    }
  };

  table(levels, vpn, vpn + pages);
  return out;
}
