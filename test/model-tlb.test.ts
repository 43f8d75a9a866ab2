/**
 * The model's TLBs, paging-structure caches, flush promises and frame lifecycle
 * (spec/contracts/flush.ts, access.ts, unmap.ts, frames.ts, linux.ts "Flushes"): each
 * rule with a case where it applies and one where it must not, every strict step (and the
 * linux steps whose contract is executable there) held to its postcondition
 * (spec/contracts/post) in full mode. Fixed addresses and frames: no randomness.
 */
import { describe, expect, it } from 'vitest';
import { PAGES, kernelLayout, type Vpn } from '../spec/address.ts';
import { applyCommand, type Command } from '../spec/commands.ts';
import { postcondition } from '../spec/contracts/post/index.ts';
import { outcome, type Errno, type Result } from '../spec/errors.ts';
import { scenarioNamed } from '../spec/scenario.ts';
import { PAGE_KERNEL, type AbstractState, type FrameRun, type WalkCacheEntry } from '../spec/state.ts';
import type { Profile } from '../spec/system.ts';
import { invariantById } from '../checker/index.ts';
import { Model } from '../model/index.ts';
import { mergeFlushRanges } from '../model/tlb.ts';

const G = PAGES['1G'];
const M = PAGES['2M'];
const L = kernelLayout(4);
const PO = L.pageOffset;
/** Free vmalloc space, 1G-aligned; the boot's vmalloc areas share its PUD table only. */
const V = L.vmallocStart + 4 * G;
/** A 2M-aligned data frame (512 MiB), its direct-map page under a 2M leaf. */
const D = 0x20000;
/** A second 1G of vmalloc, for what must stay untouched. */
const FAR = V + G;
/** A third, where an obligation is owed and two tables wait (a lazy unmap emptied them). */
const OWED = V + 3 * G;

function boot(profile: Profile = 'strict'): Model {
  const s = scenarioNamed('kernel')!();
  const m = new Model({ config: s.config, frames: s.frames, profile });
  for (const cmd of s.boot) expect(outcome(applyCommand(m, cmd)), JSON.stringify(cmd)).toBe('ok');
  m.takeEvents();
  return m;
}

/** Runs one command, holds the step to its postcondition (full mode) and returns the result. */
function step(m: Model, c: Command): Result<unknown> {
  const before = m.abstract();
  const r = applyCommand(m, c);
  const after = m.abstract();
  expect(postcondition(before, c, r, after, 'full').map((v) => `${v.clause}: ${v.detail}`), JSON.stringify(c)).toEqual([]);
  expect((after.walkCache ?? []).filter((w) => w.table === 'freed'), 'no correct step makes a freed entry').toEqual([]);
  return r;
}

function ok(m: Model, c: Command): void {
  const r = step(m, c);
  expect(r.ok ? 'ok' : r.error.message, JSON.stringify(c)).toBe('ok');
}

/** Expects the command refused with errno (and the invariant), the state exactly as before. */
function refused(m: Model, c: Command, errno: Errno, invariant?: string): void {
  const before = structuredClone(m.abstract());
  const r = step(m, c);
  if (r.ok) throw new Error(`expected ${errno}, got ok: ${JSON.stringify(c)}`);
  expect(r.error.errno, r.error.message).toBe(errno);
  if (invariant !== undefined) expect(r.error.invariant, r.error.message).toBe(invariant);
  expect(m.abstract()).toEqual(before);
}

const read = (cpu: number, vpn: Vpn): Command => ({ op: 'access', cpu, root: 0, vpn, kind: 'r', mode: 'kernel' });
const map = (vpn: Vpn, pfn: number, pages: number): Command => ({ op: 'map', root: 0, vpn, pfn, pages, prot: PAGE_KERNEL });

/**
 * A linux step whose contract is prose only there (map, unmap, protect, set_direct_map_*:
 * docs/ARCHITECTURE.md, "Two profiles"): applied without the postcondition, expected ok.
 */
function run(m: Model, c: Command): void {
  const r = applyCommand(m, c);
  expect(r.ok ? 'ok' : r.error.message, JSON.stringify(c)).toBe('ok');
}

function access(m: Model, cpu: number, vpn: Vpn): Result<unknown> {
  return step(m, read(cpu, vpn));
}

const cacheOf = (s: AbstractState): readonly WalkCacheEntry[] => s.walkCache ?? [];
const entry = (cpu: number, level: 1 | 2 | 3, vpn: Vpn, table: WalkCacheEntry['table'] = 'current'): WalkCacheEntry => ({ cpu, root: 0, level, vpn, table });
/** The first page of the level-L table holding vpn. */
const base = (level: 1 | 2 | 3, vpn: Vpn): Vpn => vpn - (vpn % 512 ** level);
const frameRun = (s: AbstractState, pfn: number): FrameRun => s.frames.find((r) => r.pfn <= pfn && pfn < r.pfn + r.count)!;

describe('paging-structure caches: the walk fills them', () => {
  it('a 4K walk caches the PTE, PMD and PUD tables above the leaf; a 2M walk from the PMD table up; a 1G walk the PUD table', () => {
    const m = boot();
    ok(m, map(V, D, 1));
    ok(m, map(FAR, D, M));
    expect(access(m, 0, V)).toEqual({ ok: true, value: expect.objectContaining({ fault: false, fromTlb: false }) });
    expect(cacheOf(m.abstract())).toEqual([entry(0, 1, V), entry(0, 2, V), entry(0, 3, base(3, V))]);
    access(m, 1, FAR + 7);
    access(m, 1, PO + G + 5); // the direct map's 1G leaf
    expect(cacheOf(m.abstract()).filter((w) => w.cpu === 1)).toEqual([entry(1, 2, FAR), entry(1, 3, base(3, PO + G)), entry(1, 3, base(3, FAR))]);
  });

  it('a TLB hit and a walk that finds nothing fill nothing', () => {
    const m = boot();
    ok(m, map(V, D, 1));
    access(m, 0, V);
    const after = m.abstract();
    expect(access(m, 0, V)).toEqual({ ok: true, value: expect.objectContaining({ fromTlb: true }) });
    expect(access(m, 0, V + 1)).toEqual({ ok: true, value: { fault: 'not-present' } });
    expect(access(m, 1, FAR)).toEqual({ ok: true, value: { fault: 'not-present' } });
    expect(m.abstract().tlb).toBe(after.tlb);
    expect(m.abstract().walkCache).toBe(after.walkCache);
  });

  it('a walk through an unlinked table finds nothing even where the tables map the page again; another CPU walks from the root', () => {
    const m = boot();
    ok(m, map(V, D, 2));
    access(m, 0, V);
    // vunmap_range_noflush: the PTE and PMD tables at V leave their places with no flush.
    ok(m, { op: 'unmap', root: 0, vpn: V, pages: 2, flush: false });
    expect(cacheOf(m.abstract())).toEqual([entry(0, 1, V, 'unlinked'), entry(0, 2, V, 'unlinked'), entry(0, 3, base(3, V))]);
    // A page beside the owed ones (a map over an owed page would flush it first: map.ts).
    ok(m, map(V + 2, D + 2, 1));
    // cpu 0 never cached V+2, but its cached PMD entry points to the old, empty PTE table.
    expect(access(m, 0, V + 2)).toEqual({ ok: true, value: { fault: 'not-present' } });
    // The stale TLB entry of V is still used: that is the owed flush.
    expect(access(m, 0, V)).toEqual({ ok: true, value: expect.objectContaining({ fault: false, fromTlb: true }) });
    expect(access(m, 1, V + 2)).toEqual({ ok: true, value: expect.objectContaining({ fault: false, fromTlb: false }) });
    expect(cacheOf(m.abstract()).filter((w) => w.cpu === 1)).toEqual([entry(1, 1, V), entry(1, 2, V), entry(1, 3, base(3, V))]);
  });
});

describe('flushLocal', () => {
  it("drops that CPU's entries meeting the range on every root and its caches; no obligation paid, no table released", () => {
    const m = boot();
    ok(m, map(V, D, 2));
    ok(m, map(FAR, D, 1));
    for (const cpu of [0, 1]) for (const vpn of [V, FAR]) access(m, cpu, vpn);
    ok(m, { op: 'unmap', root: 0, vpn: V, pages: 2, flush: false });
    ok(m, map(V + 2, D + 2, 1));
    const before = m.abstract();
    ok(m, { op: 'flushLocal', cpu: 0, vpn: V, pages: 2 });
    const after = m.abstract();
    expect(after.tlb).toEqual(before.tlb.filter((e) => !(e.cpu === 0 && e.leaf.vpn === V)));
    expect(cacheOf(after)).toEqual(cacheOf(before).filter((w) => w.cpu !== 0));
    expect(after.pendingFlush).toEqual(before.pendingFlush);
    expect(after.pendingTableFrees).toBe(2);
    // With its caches empty, cpu 0 walks from the root again and finds the new leaf.
    expect(access(m, 0, V + 2)).toEqual({ ok: true, value: expect.objectContaining({ fault: false, fromTlb: false }) });
  });

  it('has no ceiling: 100 pages on one CPU is not a full flush', () => {
    const m = boot();
    ok(m, map(V, D, 1));
    ok(m, map(FAR, D, 1));
    access(m, 0, FAR);
    access(m, 1, V);
    ok(m, { op: 'flushLocal', cpu: 1, vpn: V, pages: 100 });
    expect(m.abstract().tlb.map((e) => [e.cpu, e.leaf.vpn])).toEqual([[0, FAR]]);
    expect(cacheOf(m.abstract()).every((w) => w.cpu === 0)).toBe(true);
  });

  it('EINVAL cpu, vpn and pages in that order, changing nothing', () => {
    const m = boot();
    refused(m, { op: 'flushLocal', cpu: 4, vpn: 0x400, pages: 0 }, 'EINVAL');
    expect(m.flushLocal(4, V, 1)).toMatchObject({ ok: false, error: { arg: 'cpu' } });
    expect(m.flushLocal(0, 0x400, 1)).toMatchObject({ ok: false, error: { arg: 'vpn' } });
    expect(m.flushLocal(0, V, 0)).toMatchObject({ ok: false, error: { arg: 'pages' } });
  });
});

describe('the flush ceiling (tlb_single_page_flush_ceiling = 33)', () => {
  /** A model with a cached translation and an owed flush far from V, and both CPUs' caches filled. */
  function withFarState(profile: Profile = 'strict'): Model {
    const m = boot(profile);
    ok(m, map(V, D, 64));
    ok(m, map(FAR, D + 512, 1));
    for (const cpu of [0, 1]) access(m, cpu, V);
    access(m, 0, FAR);
    // An obligation far away: a lazily unmapped vmalloc page never touched by the flushes below.
    ok(m, map(OWED, D + 1024, 1));
    ok(m, { op: 'unmap', root: 0, vpn: OWED, pages: 1, flush: false });
    expect(m.abstract().pendingTableFrees).toBe(2);
    return m;
  }

  it('flush of 33 pages flushes the range: far entries and debts stay, every cache is emptied', () => {
    const m = withFarState();
    ok(m, { op: 'flush', vpn: V, pages: 33 });
    const a = m.abstract();
    expect(a.tlb.map((e) => e.leaf.vpn)).toEqual([FAR]);
    expect(a.walkCache).toBeUndefined();
    expect(a.pendingFlush).toEqual([{ vpn: OWED, pages: 1, reason: 'unmap' }]);
    expect(a.pendingTableFrees).toBe(2);
  });

  it('flush of 34 pages is flushAll: every TLB entry, obligation and pending table goes', () => {
    const m = withFarState();
    ok(m, { op: 'flush', vpn: V, pages: 34 });
    const a = m.abstract();
    expect([a.tlb, a.walkCache, a.pendingFlush, a.pendingTableFrees]).toEqual([[], undefined, [], 0]);
  });

  it("an operation's own flush: unmap of 34 pages is a full flush, of 33 is not", () => {
    const m = withFarState();
    ok(m, { op: 'unmap', root: 0, vpn: V + 31, pages: 33 });
    expect(m.abstract().pendingFlush).toHaveLength(1);
    expect(m.abstract().tlb.map((e) => [e.cpu, e.leaf.vpn])).toEqual([[0, V], [0, FAR], [1, V]]);
    ok(m, { op: 'unmap', root: 0, vpn: V, pages: 34 });
    expect(m.abstract().pendingFlush).toEqual([]);
    expect(m.abstract().tlb).toEqual([]);
  });

  it('protect flushes the request and its alias on their own: 2 × 20 pages apart stays below the ceiling', () => {
    const m = withFarState();
    ok(m, { op: 'protect', vpn: V, pages: 20, change: { write: false }, alias: true });
    expect(m.abstract().pendingFlush).toHaveLength(1);
    expect(m.abstract().tlb.map((e) => e.leaf.vpn)).toEqual([FAR]);
  });

  it('split and collapse flush their whole block: above the ceiling, so every debt is paid', () => {
    const m = withFarState();
    ok(m, map(V + 2 * G, D, M));
    ok(m, { op: 'split', root: 0, vpn: V + 2 * G });
    expect(m.abstract().pendingFlush).toEqual([]);
    ok(m, map(FAR + 16, D + 2048, 1));
    ok(m, { op: 'unmap', root: 0, vpn: FAR + 16, pages: 1, flush: false });
    ok(m, { op: 'collapse', root: 0, vpn: V + 2 * G, size: '2M' });
    expect(m.abstract().pendingFlush).toEqual([]);
  });

  it('merges the ranges one operation flushes where they overlap or touch, before the ceiling is judged', () => {
    expect(mergeFlushRanges([{ vpn: 40, pages: 20 }, { vpn: 20, pages: 20 }])).toEqual([{ vpn: 20, pages: 40 }]);
    expect(mergeFlushRanges([{ vpn: 20, pages: 20 }, { vpn: 30, pages: 5 }])).toEqual([{ vpn: 20, pages: 20 }]);
    expect(mergeFlushRanges([{ vpn: 20, pages: 20 }, { vpn: 41, pages: 20 }])).toEqual([{ vpn: 20, pages: 20 }, { vpn: 41, pages: 20 }]);
  });

  it('linux: a set_direct_map flush of more than 33 pages is a full flush, of fewer a range flush', () => {
    const m = boot('linux');
    // The first call splits the direct map's 2M page (flush_tlb_all): the later ones find 4K entries.
    expect(outcome(m.setDirectMapInvalid(D, 1, { flush: true }))).toBe('ok');
    const fill = (): void => {
      ok(m, read(0, PO + D + 100));
      ok(m, read(1, PO + D + 200));
    };
    fill();
    expect(outcome(m.setDirectMapInvalid(D + 100, 2, { flush: true }))).toBe('ok');
    expect(m.abstract().tlb.map((e) => e.leaf.vpn)).toEqual([PO + D + 200]);
    expect(m.abstract().walkCache).toBeUndefined();
    fill();
    expect(outcome(m.setDirectMapInvalid(D + 300, 34, { flush: true }))).toBe('ok');
    expect(m.abstract().tlb).toEqual([]);
  });
});

describe('unmap with flush: false (vunmap_range_noflush)', () => {
  it('strict: entries go, the TLB stays, the range is owed for unmap, the emptied tables wait and their cached entries are unlinked', () => {
    const m = boot();
    ok(m, map(V, D, 4));
    access(m, 0, V);
    access(m, 1, V + 3);
    const tables = m.abstract().tablesInUse;
    ok(m, { op: 'unmap', root: 0, vpn: V, pages: 4, flush: false });
    const a = m.abstract();
    expect(a.roots[0]!.leaves.some((l) => l.vpn >= V && l.vpn < V + 4)).toBe(false);
    expect(a.tlb.map((e) => [e.cpu, e.leaf.vpn])).toEqual([[0, V], [1, V + 3]]);
    expect(a.pendingFlush).toEqual([{ vpn: V, pages: 4, reason: 'unmap' }]);
    expect([a.pendingTableFrees, a.tablesInUse]).toEqual([2, tables]);
    expect(cacheOf(a).map((w) => w.table)).toEqual(['unlinked', 'unlinked', 'current', 'unlinked', 'unlinked', 'current']);
    // A flush meeting the tables' spans releases them and pays the debt.
    ok(m, { op: 'flush', vpn: V, pages: 4 });
    expect([m.abstract().pendingTableFrees, m.abstract().tablesInUse, m.abstract().pendingFlush]).toEqual([0, tables - 2, []]);
  });

  it('strict: a partial noflush unmap empties no table, so none waits and every cached table stays current', () => {
    const m = boot();
    ok(m, map(V, D, 4));
    access(m, 0, V);
    ok(m, { op: 'unmap', root: 0, vpn: V, pages: 2, flush: false });
    expect(m.abstract().pendingTableFrees).toBe(0);
    expect(cacheOf(m.abstract()).every((w) => w.table === 'current')).toBe(true);
  });

  it('strict: the flushing unmap leaves nothing owed, pending or cached', () => {
    const m = boot();
    ok(m, map(V, D, 4));
    access(m, 0, V);
    const tables = m.abstract().tablesInUse;
    ok(m, { op: 'unmap', root: 0, vpn: V, pages: 4 });
    const a = m.abstract();
    expect([a.tlb, a.walkCache, a.pendingFlush, a.pendingTableFrees, a.tablesInUse]).toEqual([[], undefined, [], 0, tables - 2]);
  });

  it('strict: the pending tables count toward ENOMEM', () => {
    const s = scenarioNamed('kernel-small-pool')!();
    const m = new Model({ config: s.config, frames: s.frames });
    for (const cmd of s.boot) expect(outcome(applyCommand(m, cmd))).toBe('ok');
    const pool = s.config.tablePool.count;
    // Fill the pool with PTE and PMD tables of 4K maps, one per 1G of vmalloc.
    let k = 0;
    while (m.abstract().tablesInUse + 2 <= pool) ok(m, map(V + k++ * G, D, 1));
    ok(m, { op: 'unmap', root: 0, vpn: V, pages: 1, flush: false });
    expect(m.abstract().pendingTableFrees).toBe(2);
    refused(m, map(V + k * G, D, 1), 'ENOMEM');
    ok(m, { op: 'flush', vpn: V, pages: 1 });
    ok(m, map(V + k * G, D, 1));
  });

  it('linux: only the obligation; the kept tables stay linked (no table pending, cached entries current), and a walk there finds nothing', () => {
    const m = boot('linux');
    run(m, map(V, D, 2));
    for (const cpu of [0, 1]) ok(m, read(cpu, V));
    const before = m.abstract();
    expect(outcome(m.unmap(0, V, 2, { flush: false }))).toBe('ok');
    const a = m.abstract();
    expect(a.pendingFlush).toEqual([{ vpn: V, pages: 2, reason: 'unmap' }]);
    expect([a.pendingTableFrees, a.tablesInUse]).toEqual([0, before.tablesInUse]);
    expect(a.tlb).toBe(before.tlb);
    expect(a.walkCache).toBe(before.walkCache);
    // Through the cached (current, now empty) PTE table: nothing.
    ok(m, read(0, V + 1));
    expect(m.access(0, 0, V + 1, 'r', 'kernel')).toEqual({ ok: true, value: { fault: 'not-present' } });
    // The flushing vunmap: the range flush empties every cache.
    run(m, map(V + 4, D, 1));
    expect(outcome(m.unmap(0, V + 4, 1))).toBe('ok');
    expect(m.abstract().walkCache).toBeUndefined();
  });
});

describe('linux flushes', () => {
  it('a huge map over a kept PTE table frees it after a one-page flush at the leaf (pmd_free_pte_page)', () => {
    const m = boot('linux');
    run(m, map(V, D, 2));
    run(m, map(FAR, D, 1));
    ok(m, read(0, V));
    ok(m, read(1, V + 1));
    ok(m, read(0, FAR));
    expect(outcome(m.unmap(0, V, 2, { flush: false }))).toBe('ok');
    const tables = m.abstract().tablesInUse;
    // The 2M leaf reuses the kept PMD table and frees the kept PTE table.
    expect(outcome(m.map(0, V, D, M, PAGE_KERNEL))).toBe('ok');
    const a = m.abstract();
    expect(a.tlb.map((e) => [e.cpu, e.leaf.vpn])).toEqual([[0, FAR], [1, V + 1]]);
    expect(a.walkCache).toBeUndefined();
    expect(a.pendingFlush).toEqual([{ vpn: V + 1, pages: 1, reason: 'unmap' }]);
    expect([a.tablesInUse, a.pendingTableFrees]).toEqual([tables - 1, 0]);
  });

  it('a 1G map over a kept PMD table flushes one page too (pud_free_pmd_page); a huge map with no kept table there flushes nothing', () => {
    const m = boot('linux');
    run(m, map(V, D, 1));
    run(m, map(FAR, D, 1));
    ok(m, read(0, FAR));
    // The flushing vunmap keeps the emptied PTE and PMD tables and empties every cache.
    expect(outcome(m.unmap(0, V, 1))).toBe('ok');
    ok(m, read(1, FAR));
    const before = m.abstract();
    expect(outcome(m.map(0, V + 2 * G, 0x40000, G, PAGE_KERNEL))).toBe('ok');
    expect([m.abstract().tlb, m.abstract().walkCache]).toEqual([before.tlb, before.walkCache]);
    expect(outcome(m.map(0, V, 0x40000, G, PAGE_KERNEL))).toBe('ok');
    expect([m.abstract().tlb.length, m.abstract().walkCache]).toEqual([2, undefined]);
    // Both kept tables freed; the 1G leaves need only the PUD table, already there.
    expect(m.abstract().tablesInUse).toBe(before.tablesInUse - 2);
  });

  it('every split is flush_tlb_all; an unsplit change_page_attr flushes its range, emptying every cache', () => {
    const m = boot('linux');
    run(m, map(V, D, 1));
    run(m, map(FAR, D + 512, 1));
    ok(m, read(0, V));
    ok(m, read(1, FAR));
    expect(outcome(m.protect(V, 1, { write: false }))).toBe('ok');
    expect(m.abstract().tlb.map((e) => e.leaf.vpn)).toEqual([FAR]);
    expect(m.abstract().walkCache).toBeUndefined();
    ok(m, read(1, V));
    // A 4K page of a direct-map 2M leaf: the split flushes everything.
    expect(outcome(m.protect(PO + D + 3, 1, { write: false }))).toBe('ok');
    expect([m.abstract().tlb, m.abstract().walkCache]).toEqual([[], undefined]);
  });
});

describe('allocFrames / freeFrames', () => {
  it('free then alloc: data → free → data, frames in canonical form; EBUSY, ENOENT and EINVAL change nothing', () => {
    const m = boot();
    ok(m, { op: 'freeFrames', pfn: D, count: 4 });
    expect(frameRun(m.abstract(), D)).toMatchObject({ pfn: D, count: 4, use: 'free' });
    refused(m, { op: 'freeFrames', pfn: D + 2, count: 4 }, 'ENOENT');
    refused(m, { op: 'allocFrames', pfn: D + 2, count: 4 }, 'EBUSY');
    refused(m, { op: 'freeFrames', pfn: 16 * 256, count: 1 }, 'ENOENT'); // kernel text
    refused(m, { op: 'allocFrames', pfn: D, count: 0 }, 'EINVAL');
    refused(m, { op: 'freeFrames', pfn: m.config.frames, count: 1 }, 'EINVAL');
    ok(m, { op: 'allocFrames', pfn: D, count: 4 });
    expect(m.abstract().frames).toEqual(boot().abstract().frames);
  });

  it('strict EPERM D4: a frame still mapped outside its direct-map page', () => {
    const m = boot();
    ok(m, map(V, D, 1));
    refused(m, { op: 'freeFrames', pfn: D, count: 1 }, 'EPERM', 'D4');
    ok(m, { op: 'unmap', root: 0, vpn: V, pages: 1 });
    ok(m, { op: 'freeFrames', pfn: D, count: 1 });
  });

  it('strict EPERM D6: a frame still removed from the direct map; and removing a free frame from it is D6 too', () => {
    const m = boot();
    ok(m, { op: 'setDirectMapInvalid', pfn: D, count: 1, flush: true });
    refused(m, { op: 'freeFrames', pfn: D, count: 1 }, 'EPERM', 'D6');
    ok(m, { op: 'setDirectMapDefault', pfn: D, count: 1, flush: true });
    ok(m, { op: 'freeFrames', pfn: D, count: 1 });
    refused(m, { op: 'setDirectMapInvalid', pfn: D, count: 1, flush: true }, 'EPERM', 'D6');
  });

  it('strict EPERM D7: a stale translation cached after a lazy unmap, owed flush or not; the flush lets it go', () => {
    const m = boot();
    ok(m, map(V, D, 1));
    access(m, 1, V);
    ok(m, { op: 'unmap', root: 0, vpn: V, pages: 1, flush: false });
    refused(m, { op: 'freeFrames', pfn: D, count: 1 }, 'EPERM', 'D7');
    // Another CPU flushing locally does not help; this one does.
    ok(m, { op: 'flushLocal', cpu: 0, vpn: V, pages: 1 });
    refused(m, { op: 'freeFrames', pfn: D, count: 1 }, 'EPERM', 'D7');
    ok(m, { op: 'flushLocal', cpu: 1, vpn: V, pages: 1 });
    ok(m, { op: 'freeFrames', pfn: D, count: 1 });
    // Its own direct-map page may stay cached.
    ok(m, read(0, PO + D));
    ok(m, { op: 'allocFrames', pfn: D, count: 1 });
    ok(m, { op: 'freeFrames', pfn: D, count: 1 });
  });

  it('linux: no EPERM; the broken invariants are findings', () => {
    const m = boot('linux');
    run(m, map(V, D, 1));
    // First, as its split flushes every TLB.
    run(m, { op: 'setDirectMapInvalid', pfn: D + 1, count: 1, flush: true });
    ok(m, read(0, V));
    ok(m, { op: 'freeFrames', pfn: D, count: 2 });
    const a = m.abstract();
    expect(frameRun(a, D)).toMatchObject({ pfn: D, use: 'free' });
    for (const id of ['D4', 'D6', 'D7']) expect(invariantById(id)!.check(a).length, id).toBeGreaterThan(0);
    ok(m, { op: 'allocFrames', pfn: D, count: 2 });
  });
});
