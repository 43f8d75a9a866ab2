/**
 * The fast checks of the L family (spec/invariants/tlb.ts defines them). The TLBs and the
 * paging-structure caches are small next to the tables (a run fills at most one entry per
 * access), and an entry goes stale by what happens anywhere (a flush that discharged an
 * obligation, a table change under it), so these checks ignore the scope and look at every
 * cached entry, each against the leaves of its root's view under it, found by binary search.
 */
import type { ClientState, MermapAlloc } from '../spec/clients.ts';
import type { AbstractState, FlushObligation, Leaf, TlbEntry } from '../spec/state.ts';
import { conflictingSizes, grantsMoreThanTables, notCurrent, tlbEnd, tlbWitness } from '../spec/invariants/tlb.ts';
import { firstEndingAfter, isSortedDisjoint, leafPages, viewLeaves, Witnesses, type Check, type CheckTable } from './common.ts';

/** The leaves of the entry's root's view (spec/roots.ts rootView) that meet its cached leaf, in vpn order, by binary search. */
export function leavesUnder(state: AbstractState, e: TlbEntry): Leaf[] {
  return viewLeaves(state, e.root, e.leaf.vpn, tlbEnd(e), false);
}


/** Whether an obligation meets [vpn, end): by binary search on canonical obligations, else (S14 reports them) one by one. */
export function owedIn(owed: readonly FlushObligation[], vpn: number, end: number): boolean {
  // S14's canonical form (S14 reports any other) allows the binary search.
  if (!isSortedDisjoint(owed, (o) => o.vpn, (o) => o.pages)) return owed.some((o) => o.pages > 0 && o.vpn < end && vpn < o.vpn + o.pages);
  // The first obligation that ends after the range's first page.
  const o = owed[firstEndingAfter(owed, (x) => x.vpn + x.pages, vpn)];
  return o !== undefined && o.vpn < end;
}

/** Whether an obligation meets the entry's pages. */
export const owedFor = (owed: readonly FlushObligation[], e: TlbEntry): boolean => owedIn(owed, e.leaf.vpn, tlbEnd(e));

/** Each CPU's stale mermap allocations, by cpu (a CPU listed twice has both lists), built once per bookkeeping. */
const staleByCpu = new WeakMap<ClientState, ReadonlyMap<number, readonly MermapAlloc[]>>();
function staleOf(c: ClientState, cpu: number): readonly MermapAlloc[] {
  let byCpu = staleByCpu.get(c);
  if (byCpu === undefined) {
    const map = new Map<number, MermapAlloc[]>();
    for (const m of c.mermap) map.set(m.cpu, [...(map.get(m.cpu) ?? []), ...m.stale]);
    staleByCpu.set(c, map);
    byCpu = map;
  }
  return byCpu.get(cpu) ?? [];
}

/**
 * Whether a flush is owed for the entry (spec/invariants/tlb.ts owedAt): an obligation, or
 * a stale mermap allocation of its CPU, which holds at most a slice's worth of them.
 */
export function isOwed(state: AbstractState, e: TlbEntry): boolean {
  if (owedFor(state.pendingFlush, e)) return true;
  if (state.clients === undefined) return false;
  const end = tlbEnd(e);
  return staleOf(state.clients, e.cpu).some((a) => a.pages > 0 && a.vpn < end && e.leaf.vpn < a.vpn + a.pages);
}

/** Every cached translation no flush is owed for, held to `why` against the leaves under it. */
function unowedEntries(why: (e: TlbEntry, under: readonly Leaf[]) => string | undefined): Check {
  return (state) => {
    const w = new Witnesses();
    for (const e of state.tlb) {
      if (isOwed(state, e)) continue;
      const reason = why(e, leavesUnder(state, e));
      if (reason !== undefined) w.add(tlbWitness(e, reason));
    }
    return w.done();
  };
}

/** The canonical TLB order (cpu, root, vpn, size ascending), as the definition pairs entries. */
const tlbOrder = (a: TlbEntry, b: TlbEntry): number => a.cpu - b.cpu || a.root - b.root || a.leaf.vpn - b.leaf.vpn || leafPages(a.leaf) - leafPages(b.leaf);

/** Overlapping entries of one (cpu, root): in canonical order, each against those after it that start inside it. */
const sizeConflicts: Check = (state) => {
  const w = new Witnesses();
  // Systems report the canonical order (flush.ts); sort a copy when a state does not.
  const tlb = state.tlb.every((e, i) => i === 0 || tlbOrder(state.tlb[i - 1]!, e) <= 0) ? state.tlb : [...state.tlb].sort(tlbOrder);
  for (let i = 0; i < tlb.length; i++) {
    const a = tlb[i]!;
    for (let j = i + 1; j < tlb.length; j++) {
      const b = tlb[j]!;
      if (b.cpu !== a.cpu || b.root !== a.root || b.leaf.vpn >= tlbEnd(a)) break;
      const reason = conflictingSizes(a, b);
      if (reason !== undefined) w.add(tlbWitness(a, reason));
    }
  }
  return w.done();
};

export const TLB_CHECKS: CheckTable = {
  tlb_grants_no_more_than_the_tables: unowedEntries(grantsMoreThanTables),
  tlb_entries_are_current_translations_where_no_flush_is_owed: unowedEntries(notCurrent),
  no_page_cached_twice_with_different_sizes_and_attributes: sizeConflicts,
  // One pass over the paging-structure caches, which hold a few entries per access.
  no_cached_table_entry_points_to_a_freed_table: 'definition',
};
