/**
 * TLB entries, flush obligations and the lifetime of page tables (AbstractState.tlb,
 * pendingFlush, tablesInUse, pendingTableFrees): the rules every operation follows and
 * the canonical form every system reports them in. Prose only: the model (model/tlb.ts,
 * model/tables.ts) and the impl (impl/tlb.ts, impl/tables.ts) each implement it their own
 * way, and spec/contracts/post states it as relations.
 *
 * - A TLB entry caches one leaf for one (cpu, root). Flushing a range removes, on every
 *   CPU and root, each entry whose leaf intersects the range (flush_tlb_kernel_range
 *   invalidates by address; a huge entry any part of which is in the range goes).
 * - Obligations are sorted, merged, disjoint page ranges; merging two ranges joins their
 *   reasons (sorted, de-duplicated, joined by '+'), and flushing a sub-range removes just
 *   that part, the pieces keeping their reason.
 * - Canonical TLB order: (cpu, root, leaf.vpn, leaf size ascending).
 * - Deferred table frees. Only setDirectMapInvalid with flush: false leaves tables
 *   pending free (directmap.ts); every other operation that empties a table flushes
 *   before it returns and frees the table after that flush. A pending table covers the
 *   VA span of the entry that linked it: a level-l table with base page b covers
 *   [b, b + pagesPerEntry(l + 1)). Any flush of [vpn, vpn+pages) — flush(), or the
 *   flush an operation performs over the ranges it changed — releases every pending
 *   table whose span intersects that range; flushAll releases all of them. A released
 *   table is free and reusable at once. Pending tables count in tablesInUse and in the
 *   ENOMEM decision, which is made before the operation's own flush: the tables an
 *   operation needs are the radix footprint of its result's leaves plus every table
 *   pending before it plus those it leaves pending; its flush releases tables only
 *   after it has succeeded.
 */
// A module with no exports of its own, so that it is one under isolatedModules.
export {};
