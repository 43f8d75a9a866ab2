/**
 * The model's clients capability (spec/contracts/clients.ts): vmalloc, vfree and the lazy
 * purge, kmap_local, the mermap and its stale allocations, the __GFP_UNMAPPED pool with
 * allocFrames/freeFrames, apply_to_page_range, the pagewalk and zapPageRange's mmu_gather; for each its effect, every
 * errno of its contract, and both profiles where they differ; every client step held to
 * its postcondition (spec/contracts/post). Fixed addresses and frames: no randomness.
 */
import { describe, expect, it } from 'vitest';
import { PAGES, kernelLayout, type Pfn, type Vpn } from '../spec/address.ts';
import { KM_MAX_IDX, MERMAP_USABLE_PAGES, emptyClients, kmapSlotVpn, lazyMaxPages, mermapSlice, vmallocRegion } from '../spec/clients.ts';
import { applyCommand, isClientOp, type Command } from '../spec/commands.ts';
import { postcondition } from '../spec/contracts/post/index.ts';
import { outcome, type Errno, type Result } from '../spec/errors.ts';
import { ptiBoot, scenarioNamed } from '../spec/scenario.ts';
import { PAGE_KERNEL, PAGE_KERNEL_EXEC, type AbstractState, type FrameRun, type Leaf, type Prot } from '../spec/state.ts';
import type { Profile, WalkVisit } from '../spec/system.ts';
import { invariantById } from '../checker/index.ts';
import { Model } from '../model/index.ts';

const G = PAGES['1G'];
const M = PAGES['2M'];
const L = kernelLayout(4);
const PO = L.pageOffset;
const VM = vmallocRegion(4).vpn;
/** Free vmalloc space, 1G-aligned (the boot's areas are at VM + 1 and VM + 1024). */
const A = VM + 2 * G;
/** Data frames at 1 GiB (under a 1G direct-map leaf), freed for vmalloc, and a pageblock for the pool at 1.25 GiB. */
const F = 0x40000;
const P = 0x50000;
/** Another data frame, for the mermap and kmap_local. */
const D = 0x60000;
/** Where fillPool maps its pages: its own 1G of vmalloc. */
const R = VM + 8 * G;
const NOGLOBAL = { ...PAGE_KERNEL, global: false };

function boot(profile: Profile = 'strict', scenario = 'kernel'): Model {
  const s = scenarioNamed(scenario)!();
  const m = new Model({ config: s.config, frames: s.frames, profile });
  for (const cmd of s.boot) expect(outcome(applyCommand(m, cmd)), JSON.stringify(cmd)).toBe('ok');
  m.takeEvents();
  return m;
}

/**
 * Runs one command; a client command is held to its postcondition (full mode), but for
 * what the contract leaves to prose: linux's apply_to_page_range keeps what it did when it fails.
 */
function run(m: Model, c: Command): Result<unknown> {
  const before = m.abstract();
  const r = applyCommand(m, c);
  const prose = m.profile === 'linux' && c.op === 'applyToPageRange' && !r.ok;
  if (isClientOp(c.op) && !prose) expect(postcondition(before, c, r, m.abstract(), 'full').map((v) => `${v.clause}: ${v.detail}`), JSON.stringify(c)).toEqual([]);
  return r;
}

function ok(m: Model, c: Command): unknown {
  const r = run(m, c);
  expect(r.ok ? 'ok' : r.error.message, JSON.stringify(c)).toBe('ok');
  return r.ok ? r.value : undefined;
}

/** Expects the command refused with errno on arg (and the invariant), the state exactly as before. */
function refused(m: Model, c: Command, errno: Errno, arg: string, invariant?: string): void {
  const before = structuredClone(m.abstract());
  const r = run(m, c);
  if (r.ok) throw new Error(`expected ${errno}, got ok: ${JSON.stringify(c)}`);
  expect([r.error.errno, r.error.arg], r.error.message).toEqual([errno, arg]);
  if (invariant !== undefined) expect(r.error.invariant, r.error.message).toBe(invariant);
  expect(m.abstract()).toEqual(before);
}

const leavesIn = (s: AbstractState, vpn: Vpn, pages: number): Leaf[] => s.roots[0]!.leaves.filter((l) => l.vpn < vpn + pages && vpn < l.vpn + PAGES[l.size]);
const leafAt = (s: AbstractState, vpn: Vpn): Leaf | undefined => leavesIn(s, vpn, 1)[0];
const frameAt = (s: AbstractState, pfn: Pfn): FrameRun => s.frames.find((r) => r.pfn <= pfn && pfn < r.pfn + r.count)!;
const tlbAt = (s: AbstractState, vpn: Vpn): number[] => s.tlb.filter((e) => e.leaf.vpn <= vpn && vpn < e.leaf.vpn + PAGES[e.leaf.size]).map((e) => e.cpu);
const owed = (s: AbstractState, vpn: Vpn): boolean => s.pendingFlush.some((o) => o.vpn <= vpn && vpn < o.vpn + o.pages);
const free = (m: Model): number => m.config.tablePool.count - m.abstract().tablesInUse;
const read = (m: Model, cpu: number, vpn: Vpn): void => void ok(m, { op: 'access', cpu, root: 0, vpn, kind: 'r', mode: 'kernel' });
const vmalloc = (vpn: Vpn, pfn: Pfn, pages: number, huge = false, resetPerms = false): Command => ({ op: 'vmalloc', vpn, pfn, pages, huge, resetPerms });

/** A booted model with `count` frames from `pfn` given back to the allocator (they are data at boot). */
function withFree(profile: Profile, pfn: Pfn, count: number, scenario = 'kernel'): Model {
  const m = boot(profile, scenario);
  ok(m, { op: 'freeFrames', pfn, count });
  return m;
}

/** Maps single pages in R until the pool has exactly `left` tables (each map past the first takes one PTE table). */
function fillPool(m: Model, left = 0): void {
  for (let k = 0; free(m) > left; k++) ok(m, { op: 'map', root: 0, vpn: R + k * M, pfn: D, pages: 1, prot: PAGE_KERNEL });
  expect(free(m)).toBe(left);
}

describe('the capability', () => {
  it('is always there, its bookkeeping empty after boot, one mermap per CPU', () => {
    for (const profile of ['strict', 'linux'] as const) {
      const m = boot(profile);
      expect(m.clients).toBeDefined();
      expect(m.abstract().clients).toEqual(emptyClients(4, 4));
    }
  });

  it('reports the bookkeeping in canonical order', () => {
    const m = withFree('strict', F, 64);
    ok(m, vmalloc(A + 100, F + 32, 4));
    ok(m, vmalloc(A, F, 4));
    ok(m, { op: 'kmapLocal', cpu: 2, pfn: D });
    ok(m, { op: 'kmapLocal', cpu: 0, pfn: D });
    ok(m, { op: 'kmapLocal', cpu: 0, pfn: D + 1 });
    const c = m.abstract().clients!;
    expect(c.vmalloc.map((a) => a.vpn)).toEqual([A, A + 100]);
    expect(c.kmap.map((k) => [k.cpu, k.idx])).toEqual([[0, 0], [0, 1], [2, 0]]);
    expect(c.mermap.map((x) => x.cpu)).toEqual([0, 1, 2, 3]);
  });
});

describe('vmalloc', () => {
  it('allocates the frames and maps them with 4K PAGE_KERNEL leaves, no flush (both profiles)', () => {
    for (const profile of ['strict', 'linux'] as const) {
      const m = withFree(profile, F, 8);
      read(m, 0, PO + F);
      const tlb = m.abstract().tlb;
      ok(m, vmalloc(A, F, 8));
      const s = m.abstract();
      expect(leavesIn(s, A, 8)).toEqual(Array.from({ length: 8 }, (_, i) => ({ vpn: A + i, pfn: F + i, size: '4K', prot: PAGE_KERNEL })));
      expect(frameAt(s, F).use).toBe('data');
      expect(s.clients!.vmalloc).toEqual([{ vpn: A, pages: 8, pfn: F, huge: false, resetPerms: false }]);
      expect(s.tlb).toEqual(tlb);
    }
  });

  it('huge: 2M leaves', () => {
    const m = withFree('strict', F, 2 * M);
    ok(m, vmalloc(A, F, 2 * M, true));
    expect(leavesIn(m.abstract(), A, 2 * M).map((l) => [l.vpn, l.size])).toEqual([[A, '2M'], [A + M, '2M']]);
  });

  it('EINVAL vpn, pages and pfn, in that order', () => {
    const m = withFree('strict', F, 2 * M);
    refused(m, vmalloc(PO, F, 1), 'EINVAL', 'vpn');
    refused(m, vmalloc(A + 1, F, M, true), 'EINVAL', 'vpn');
    refused(m, vmalloc(A, F, 0), 'EINVAL', 'pages');
    refused(m, vmalloc(A, F, 100, true), 'EINVAL', 'pages');
    refused(m, vmalloc(A, F + 1, M, true), 'EINVAL', 'pfn');
    refused(m, vmalloc(A, m.config.frames, 1), 'EINVAL', 'pfn');
  });

  it('EBUSY vpn on a live or a lazily freed area, EEXIST vpn on an entry, EBUSY pfn on a frame not free', () => {
    const m = withFree('strict', F, 16);
    ok(m, vmalloc(A, F, 4));
    refused(m, vmalloc(A + 3, F + 8, 4), 'EBUSY', 'vpn');
    ok(m, { op: 'vfree', vpn: A });
    // The area waits on the purge list: its VA is not handed out again until the purge.
    refused(m, vmalloc(A, F, 4), 'EBUSY', 'vpn');
    ok(m, { op: 'vmUnmapAliases' });
    ok(m, vmalloc(A, F, 4));
    refused(m, vmalloc(VM, F + 8, 4), 'EEXIST', 'vpn');
    refused(m, vmalloc(A + 8, F + 2, 4), 'EBUSY', 'pfn');
    refused(m, vmalloc(A + 8, D, 4), 'EBUSY', 'pfn');
  });

  it('EPERM prot: strict refuses a second memory type for a frame (T5); linux maps it', () => {
    for (const profile of ['strict', 'linux'] as const) {
      const m = withFree(profile, F, 8);
      // set_memory_uc on the direct-map page of a free frame: the area would map it WB.
      ok(m, { op: 'protect', vpn: PO + F, pages: 1, change: { cache: 'UC-' } });
      if (profile === 'strict') refused(m, vmalloc(A, F, 1), 'EPERM', 'prot', 'T5');
      else ok(m, vmalloc(A, F, 1));
    }
  });

  it('ENOMEM tablePool, the frames left free', () => {
    const m = withFree('strict', F, 8, 'kernel-small-pool');
    fillPool(m);
    refused(m, vmalloc(A, F, 8), 'ENOMEM', 'tablePool');
    expect(frameAt(m.abstract(), F).use).toBe('free');
  });
});

describe('vfree', () => {
  it('strict: unmaps, flushes the area, then frees the frames; the area waits on the purge list', () => {
    const m = withFree('strict', F, 8);
    ok(m, vmalloc(A, F, 8));
    read(m, 1, A + 2);
    ok(m, { op: 'vfree', vpn: A });
    const s = m.abstract();
    expect(leavesIn(s, A, 8)).toEqual([]);
    expect(tlbAt(s, A + 2)).toEqual([]);
    expect(owed(s, A)).toBe(false);
    expect(s.pendingTableFrees).toBe(0);
    expect(frameAt(s, F).use).toBe('free');
    expect(s.clients!.vmalloc).toEqual([]);
    expect(s.clients!.lazy).toEqual([{ vpn: A, pages: 8, pfn: F }]);
  });

  it('linux: frees the frames at once, the range still owed and cached, until the purge flushes it', () => {
    const m = withFree('linux', F, 8);
    ok(m, vmalloc(A, F, 8));
    read(m, 1, A + 2);
    ok(m, { op: 'vfree', vpn: A });
    let s = m.abstract();
    expect(leavesIn(s, A, 8)).toEqual([]);
    expect(frameAt(s, F).use).toBe('free');
    expect(owed(s, A)).toBe(true);
    expect(tlbAt(s, A + 2)).toEqual([1]);
    expect(s.clients!.lazy).toEqual([{ vpn: A, pages: 8, pfn: F }]);
    ok(m, { op: 'vmUnmapAliases' });
    s = m.abstract();
    expect(owed(s, A)).toBe(false);
    expect(tlbAt(s, A + 2)).toEqual([]);
    expect(s.clients!.lazy).toEqual([]);
  });

  it('ENOENT vpn where no live area starts: linux prints vfree-nonexistent, strict prints nothing', () => {
    for (const profile of ['strict', 'linux'] as const) {
      const m = withFree(profile, F, 8);
      ok(m, vmalloc(A, F, 8));
      refused(m, { op: 'vfree', vpn: A + 1 }, 'ENOENT', 'vpn');
      expect(m.takeEvents()).toEqual(profile === 'linux' ? [{ kind: 'vfree-nonexistent', vpn: A + 1, pages: 1, pfn: 0 }] : []);
      refused(m, { op: 'vfree', vpn: PO }, 'EINVAL', 'vpn');
    }
  });

  it('EPERM vpn (strict), judged before anything changes: D4, D6 unless resetPerms, D7, C1; linux frees', () => {
    // D4: a frame mapped by another page than the area's and its direct-map page.
    let m = withFree('strict', F, 8);
    ok(m, vmalloc(A, F, 8));
    ok(m, { op: 'map', root: 0, vpn: R, pfn: F, pages: 1, prot: PAGE_KERNEL });
    refused(m, { op: 'vfree', vpn: A }, 'EPERM', 'vpn', 'D4');
    // D7: that alias gone without a flush, still cached.
    read(m, 2, R);
    ok(m, { op: 'unmap', root: 0, vpn: R, pages: 1, flush: false });
    refused(m, { op: 'vfree', vpn: A }, 'EPERM', 'vpn', 'D7');
    // C1: a frame of a stale mermap allocation.
    m = withFree('strict', F, 8);
    ok(m, vmalloc(A, F, 8));
    const at = ok(m, { op: 'mermapGet', cpu: 0, pfn: F, pages: 2 }) as Vpn;
    ok(m, { op: 'mermapPut', cpu: 0, vpn: at });
    refused(m, { op: 'vfree', vpn: A }, 'EPERM', 'vpn', 'C1');
    // D6: a frame out of the direct map (the area's pages unmapped first, so P7 allows it) ...
    for (const resetPerms of [false, true]) {
      m = withFree('strict', F, 8);
      ok(m, vmalloc(A, F, 8, false, resetPerms));
      ok(m, { op: 'unmap', root: 0, vpn: A, pages: 8 });
      ok(m, { op: 'setDirectMapInvalid', pfn: F + 1, count: 1, flush: true });
      // ... unless resetPerms, which puts it back first.
      if (resetPerms) ok(m, { op: 'vfree', vpn: A });
      else refused(m, { op: 'vfree', vpn: A }, 'EPERM', 'vpn', 'D6');
    }
    expect(frameAt(m.abstract(), F + 1)).toMatchObject({ use: 'free', noDirectMap: false });
    expect(leafAt(m.abstract(), PO + F + 1)).toEqual({ vpn: PO + F + 1, pfn: F + 1, size: '4K', prot: PAGE_KERNEL });
    // Linux frees regardless.
    m = withFree('linux', F, 8);
    ok(m, vmalloc(A, F, 8));
    ok(m, { op: 'map', root: 0, vpn: R, pfn: F, pages: 1, prot: PAGE_KERNEL });
    ok(m, { op: 'vfree', vpn: A });
    expect(frameAt(m.abstract(), F).use).toBe('free');
  });

  it('ENOMEM tablePool (strict) when a collapsed leaf straddles the area and the pool has no table for its split', () => {
    const m = withFree('strict', F, M, 'kernel-small-pool');
    ok(m, vmalloc(A, F, M / 2));
    ok(m, vmalloc(A + M / 2, F + M / 2, M / 2));
    ok(m, { op: 'collapse', root: 0, vpn: A, size: '2M' });
    fillPool(m);
    refused(m, { op: 'vfree', vpn: A }, 'ENOMEM', 'tablePool');
  });

  it('resetPerms: the direct map reset, one purge of the lazy areas and the direct-map range, then the frames freed', () => {
    for (const profile of ['strict', 'linux'] as const) {
      const m = withFree(profile, F, 8);
      ok(m, vmalloc(A, F, 8, false, true));
      read(m, 3, PO + 0x1000);
      ok(m, { op: 'vfree', vpn: A });
      const s = m.abstract();
      // The purge range runs from the direct map to the vmalloc area: past the ceiling, a full flush.
      expect(s.tlb).toEqual([]);
      expect(s.clients!.lazy).toEqual([]);
      expect(frameAt(s, F)).toMatchObject({ use: 'free', noDirectMap: false });
      const dm = leafAt(s, PO + F + 3)!;
      expect(dm.pfn + (PO + F + 3 - dm.vpn)).toBe(F + 3);
      expect(dm.prot.write).toBe(true);
      // Strict makes 4K PAGE_KERNEL pages there, linux sets the split pages present again.
      if (profile === 'strict') expect(dm).toEqual({ vpn: PO + F + 3, pfn: F + 3, size: '4K', prot: PAGE_KERNEL });
    }
  });

  it('purges at once when the purge list passes lazyMaxPages', () => {
    const n = lazyMaxPages(4) / 3;
    const m = withFree('strict', F, 4 * n);
    for (let i = 0; i < 4; i++) ok(m, vmalloc(A + i * n, F + i * n, n, true));
    for (let i = 0; i < 3; i++) ok(m, { op: 'vfree', vpn: A + i * n });
    expect(m.abstract().clients!.lazy.length).toBe(3);
    ok(m, { op: 'vfree', vpn: A + 3 * n });
    expect(m.abstract().clients!.lazy).toEqual([]);
  });

  it('vmUnmapAliases: one flush of [lowest start, highest end) of the list, the 33-page ceiling included', () => {
    const m = withFree('linux', F, 16);
    ok(m, vmalloc(A, F, 4));
    ok(m, vmalloc(A + 20, F + 4, 4));
    read(m, 0, A + 10);
    ok(m, { op: 'map', root: 0, vpn: A + 10, pfn: D, pages: 1, prot: PAGE_KERNEL });
    read(m, 0, A + 10);
    read(m, 0, A + 40);
    ok(m, { op: 'vfree', vpn: A });
    ok(m, { op: 'vfree', vpn: A + 20 });
    ok(m, { op: 'vmUnmapAliases' });
    // [A, A+24) is one range under the ceiling: the live page between goes, one outside stays.
    expect(tlbAt(m.abstract(), A + 10)).toEqual([]);
    expect(tlbAt(m.abstract(), A + 40)).toEqual([]);
    const before = m.abstract();
    ok(m, { op: 'vmUnmapAliases' });
    expect(m.abstract()).toEqual(before);
  });
});

describe('kmap_local', () => {
  it('linux: page_address, nothing changes; kunmapLocal does nothing', () => {
    const m = boot('linux');
    const before = m.abstract();
    expect(ok(m, { op: 'kmapLocal', cpu: 1, pfn: D })).toBe(PO + D);
    ok(m, { op: 'kunmapLocal', cpu: 1, vpn: PO + D });
    expect(m.abstract()).toEqual(before);
  });

  it('strict: the CPU\'s next slot, one 4K PAGE_KERNEL leaf, no flush', () => {
    const m = boot('strict');
    expect(ok(m, { op: 'kmapLocal', cpu: 1, pfn: D })).toBe(kmapSlotVpn(1, 0));
    expect(ok(m, { op: 'kmapLocal', cpu: 1, pfn: D + 5 })).toBe(kmapSlotVpn(1, 1));
    const s = m.abstract();
    expect(leafAt(s, kmapSlotVpn(1, 1))).toEqual({ vpn: kmapSlotVpn(1, 1), pfn: D + 5, size: '4K', prot: PAGE_KERNEL });
    expect(s.clients!.kmap).toEqual([{ cpu: 1, idx: 0, vpn: kmapSlotVpn(1, 0), pfn: D }, { cpu: 1, idx: 1, vpn: kmapSlotVpn(1, 1), pfn: D + 5 }]);
    expect(s.pendingFlush).toEqual([]);
  });

  it('EINVAL cpu and pfn, EBUSY cpu with every slot held, EEXIST vpn, EPERM pfn (P7), ENOMEM', () => {
    const m = boot('strict');
    refused(m, { op: 'kmapLocal', cpu: 4, pfn: D }, 'EINVAL', 'cpu');
    refused(m, { op: 'kmapLocal', cpu: 0, pfn: m.config.frames }, 'EINVAL', 'pfn');
    for (let i = 0; i < KM_MAX_IDX; i++) ok(m, { op: 'kmapLocal', cpu: 0, pfn: D + i });
    refused(m, { op: 'kmapLocal', cpu: 0, pfn: D }, 'EBUSY', 'cpu');
    ok(m, { op: 'map', root: 0, vpn: kmapSlotVpn(1, 0), pfn: D, pages: 1, prot: PAGE_KERNEL });
    refused(m, { op: 'kmapLocal', cpu: 1, pfn: D }, 'EEXIST', 'vpn');
    ok(m, { op: 'setDirectMapInvalid', pfn: D + 100, count: 1, flush: true });
    refused(m, { op: 'kmapLocal', cpu: 2, pfn: D + 100 }, 'EPERM', 'pfn', 'P7');
    const small = boot('strict', 'kernel-small-pool');
    fillPool(small);
    refused(small, { op: 'kmapLocal', cpu: 2, pfn: D }, 'ENOMEM', 'tablePool');
  });

  it('kunmapLocal: the top slot\'s leaf goes, flushed on its CPU only; ENOENT, EINVAL out of order', () => {
    const m = boot('strict');
    const s0 = ok(m, { op: 'kmapLocal', cpu: 1, pfn: D }) as Vpn;
    const s1 = ok(m, { op: 'kmapLocal', cpu: 1, pfn: D + 1 }) as Vpn;
    read(m, 1, s1);
    // Against the clients' rule, for the test: another CPU caches the slot too.
    read(m, 2, s1);
    refused(m, { op: 'kunmapLocal', cpu: 1, vpn: s0 }, 'EINVAL', 'vpn');
    refused(m, { op: 'kunmapLocal', cpu: 0, vpn: s1 }, 'ENOENT', 'vpn');
    refused(m, { op: 'kunmapLocal', cpu: 1, vpn: PO }, 'ENOENT', 'vpn');
    refused(m, { op: 'kunmapLocal', cpu: 9, vpn: s1 }, 'EINVAL', 'cpu');
    ok(m, { op: 'kunmapLocal', cpu: 1, vpn: s1 });
    const s = m.abstract();
    expect(leafAt(s, s1)).toBeUndefined();
    expect(tlbAt(s, s1)).toEqual([2]);
    expect(s.clients!.kmap.map((k) => k.vpn)).toEqual([s0]);
    // Obligations stay as they were: no other CPU is flushed, none is owed.
    expect(s.pendingFlush).toEqual([]);
    ok(m, { op: 'kunmapLocal', cpu: 1, vpn: s0 });
    // Its emptied PTE table waits for a flush of every CPU, owed over the slot.
    expect(m.abstract().pendingTableFrees).toBeGreaterThan(0);
    expect(m.abstract().pendingFlush).toEqual([{ vpn: s0, pages: 1, reason: 'kunmapLocal' }]);
    ok(m, { op: 'flush', vpn: s0, pages: 1 });
    expect(m.abstract().pendingTableFrees).toBe(0);
  });

  it('kmap/kunmap cycles with no flush leave every emptied table owed, and one flush of the slot frees them all', () => {
    const m = boot('strict');
    const tables = m.abstract().tablesInUse;
    for (let i = 0; i < 4; i++) {
      const slot = ok(m, { op: 'kmapLocal', cpu: 0, pfn: D + i }) as Vpn;
      ok(m, { op: 'kunmapLocal', cpu: 0, vpn: slot });
    }
    const s = m.abstract();
    // Each cycle unlinked the tables its kmap allocated; none is freed before every CPU is flushed.
    expect(s.pendingTableFrees).toBeGreaterThan(4);
    expect(s.pendingFlush).toEqual([{ vpn: kmapSlotVpn(0, 0), pages: 1, reason: 'kunmapLocal' }]);
    ok(m, { op: 'flush', vpn: kmapSlotVpn(0, 0), pages: 1 });
    expect(m.abstract()).toMatchObject({ pendingTableFrees: 0, pendingFlush: [], tablesInUse: tables });
  });
});

describe('the mermap', () => {
  const slice = mermapSlice(4, 1);

  it('mermapGet: the bump pointer, 4K non-global PAGE_KERNEL leaves (both profiles)', () => {
    for (const profile of ['strict', 'linux'] as const) {
      const m = boot(profile);
      expect(ok(m, { op: 'mermapGet', cpu: 1, pfn: D, pages: 3 })).toBe(slice);
      expect(ok(m, { op: 'mermapGet', cpu: 1, pfn: D + 8, pages: 2 })).toBe(slice + 3);
      const s = m.abstract();
      expect(leavesIn(s, slice, 16)).toEqual([0, 1, 2].map((i) => ({ vpn: slice + i, pfn: D + i, size: '4K', prot: NOGLOBAL }))
        .concat([0, 1].map((i) => ({ vpn: slice + 3 + i, pfn: D + 8 + i, size: '4K', prot: NOGLOBAL }))));
      expect(s.clients!.mermap[1]).toEqual({ cpu: 1, next: slice + 5, allocs: [{ cpu: 1, vpn: slice, pages: 3, pfn: D }, { cpu: 1, vpn: slice + 3, pages: 2, pfn: D + 8 }], stale: [] });
    }
  });

  it('maps a frame out of the direct map (P7 exempts the mermap), refuses a free one (D4)', () => {
    const m = withFree('strict', F, 8);
    ok(m, { op: 'setDirectMapInvalid', pfn: D, count: 1, flush: true });
    ok(m, { op: 'mermapGet', cpu: 0, pfn: D, pages: 1 });
    refused(m, { op: 'mermapGet', cpu: 0, pfn: F, pages: 1 }, 'EPERM', 'pfn', 'D4');
  });

  it('mermapPut: the leaves go, no flush, a flush owed for the tables it empties; the allocation is stale until a flush on its CPU covers it', () => {
    const m = boot('strict');
    const at = ok(m, { op: 'mermapGet', cpu: 1, pfn: D, pages: 2 }) as Vpn;
    read(m, 1, at);
    ok(m, { op: 'mermapPut', cpu: 1, vpn: at });
    let s = m.abstract();
    expect(leavesIn(s, at, 2)).toEqual([]);
    expect(tlbAt(s, at)).toEqual([1]);
    expect(s.clients!.mermap[1]!.stale).toEqual([{ cpu: 1, vpn: at, pages: 2, pfn: D }]);
    // Its emptied tables (the slice's PTE, PMD and PUD tables) wait for a flush of every CPU, owed over the allocation.
    expect(s.pendingTableFrees).toBe(3);
    expect(s.pendingFlush).toEqual([{ vpn: at, pages: 2, reason: 'mermapPut' }]);
    refused(m, { op: 'mermapPut', cpu: 1, vpn: at }, 'ENOENT', 'vpn');
    // Another CPU's local flush, a flush elsewhere, or one of part of it (its other page may still be cached) leaves it stale.
    ok(m, { op: 'flushLocal', cpu: 0, vpn: at, pages: 2 });
    ok(m, { op: 'flush', vpn: at + 2, pages: 1 });
    ok(m, { op: 'flushLocal', cpu: 1, vpn: at + 1, pages: 1 });
    expect(m.abstract().clients!.mermap[1]!.stale.length).toBe(1);
    ok(m, { op: 'flushLocal', cpu: 1, vpn: at, pages: 2 });
    s = m.abstract();
    expect(s.clients!.mermap[1]!.stale).toEqual([]);
  });

  it('linux: mermapPut keeps the emptied tables', () => {
    const m = boot('linux');
    const t0 = m.abstract().tablesInUse;
    const at = ok(m, { op: 'mermapGet', cpu: 1, pfn: D, pages: 2 }) as Vpn;
    expect(m.abstract().tablesInUse).toBe(t0 + 3);
    ok(m, { op: 'mermapPut', cpu: 1, vpn: at });
    const s = m.abstract();
    expect([s.tablesInUse, s.pendingTableFrees, s.pendingFlush]).toEqual([t0 + 3, 0, []]);
    expect(ok(m, { op: 'walkPageRange', vpn: at, pages: 2 })).toEqual([
      { kind: 'table', level: 4, vpn: at, pages: 2 }, { kind: 'table', level: 3, vpn: at, pages: 2 }, { kind: 'table', level: 2, vpn: at, pages: 2 },
      { kind: 'none', level: 1, vpn: at, pages: 2 },
    ]);
  });

  it('a kernel range flush and flushAll drop the stale allocations they meet on every CPU', () => {
    const m = boot('strict');
    const a = ok(m, { op: 'mermapGet', cpu: 0, pfn: D, pages: 1 }) as Vpn;
    const b = ok(m, { op: 'mermapGet', cpu: 2, pfn: D, pages: 1 }) as Vpn;
    ok(m, { op: 'mermapPut', cpu: 0, vpn: a });
    ok(m, { op: 'mermapPut', cpu: 2, vpn: b });
    ok(m, { op: 'flush', vpn: a, pages: 1 });
    expect(m.abstract().clients!.mermap.map((x) => x.stale.length)).toEqual([0, 0, 1, 0]);
    ok(m, { op: 'flushAll' });
    expect(m.abstract().clients!.mermap.map((x) => x.stale.length)).toEqual([0, 0, 0, 0]);
  });

  it('reuse: past the usable end, from the end of the highest allocation in use, after a local full flush', () => {
    const m = boot('strict');
    const first = ok(m, { op: 'mermapGet', cpu: 1, pfn: D, pages: 8 }) as Vpn;
    read(m, 1, first);
    read(m, 1, PO + D);
    read(m, 2, PO + D);
    ok(m, { op: 'mermapPut', cpu: 1, vpn: first });
    // 8 + 8 pages pass the 15 usable ones: none in use, so back to the slice start.
    expect(ok(m, { op: 'mermapGet', cpu: 1, pfn: D + 16, pages: 8 })).toBe(slice);
    const s = m.abstract();
    expect(s.tlb.map((e) => e.cpu)).toEqual([2]);
    expect((s.walkCache ?? []).some((w) => w.cpu === 1)).toBe(false);
    expect(s.clients!.mermap[1]).toMatchObject({ next: slice + 8, stale: [] });
    // 8 in use, 8 more: the room after the highest in use is 7 pages.
    refused(m, { op: 'mermapGet', cpu: 1, pfn: D, pages: 8 }, 'EBUSY', 'cpu');
    expect(ok(m, { op: 'mermapGet', cpu: 1, pfn: D, pages: MERMAP_USABLE_PAGES - 8 })).toBe(slice + 8);
  });

  it('EINVAL cpu, pfn, pages; EBUSY cpu with four allocations; EEXIST vpn; ENOMEM', () => {
    const m = boot('strict');
    refused(m, { op: 'mermapGet', cpu: 4, pfn: D, pages: 1 }, 'EINVAL', 'cpu');
    refused(m, { op: 'mermapGet', cpu: 0, pfn: m.config.frames - 1, pages: 2 }, 'EINVAL', 'pfn');
    refused(m, { op: 'mermapGet', cpu: 0, pfn: D, pages: 0 }, 'EINVAL', 'pages');
    refused(m, { op: 'mermapGet', cpu: 0, pfn: D, pages: MERMAP_USABLE_PAGES + 1 }, 'EINVAL', 'pages');
    for (let i = 0; i < 4; i++) ok(m, { op: 'mermapGet', cpu: 0, pfn: D, pages: 1 });
    refused(m, { op: 'mermapGet', cpu: 0, pfn: D, pages: 1 }, 'EBUSY', 'cpu');
    ok(m, { op: 'map', root: 0, vpn: slice, pfn: D, pages: 1, prot: NOGLOBAL });
    refused(m, { op: 'mermapGet', cpu: 1, pfn: D, pages: 1 }, 'EEXIST', 'vpn');
    refused(m, { op: 'mermapPut', cpu: 1, vpn: slice }, 'ENOENT', 'vpn');
    const small = boot('strict', 'kernel-small-pool');
    fillPool(small);
    refused(small, { op: 'mermapGet', cpu: 0, pfn: D, pages: 1 }, 'ENOMEM', 'tablePool');
  });
});

describe('the unmapped pool', () => {
  it('allocUnmapped takes the pageblock out of the direct map with one flush, then hands the frames out (both profiles)', () => {
    for (const profile of ['strict', 'linux'] as const) {
      const m = withFree(profile, P, M);
      read(m, 0, PO + P + 7);
      ok(m, { op: 'allocUnmapped', pfn: P + 2, count: 2 });
      const s = m.abstract();
      expect(s.clients!.unmapped).toEqual([P]);
      expect(frameAt(s, P)).toMatchObject({ use: 'free', noDirectMap: true });
      expect(frameAt(s, P + 2)).toMatchObject({ use: 'data', noDirectMap: true });
      expect(frameAt(s, P + 4)).toMatchObject({ use: 'free', noDirectMap: true });
      expect(leavesIn(s, PO + P, M)).toEqual([]);
      expect(tlbAt(s, PO + P + 7)).toEqual([]);
      if (profile === 'linux') expect(s.roots[0]!.nonPresent!.some((l) => l.vpn <= PO + P && PO + P < l.vpn + PAGES[l.size])).toBe(true);
      // From the pool, no flush.
      read(m, 0, PO + D);
      ok(m, { op: 'allocUnmapped', pfn: P + 4, count: 1 });
      expect(tlbAt(m.abstract(), PO + D)).toEqual([0]);
    }
  });

  it('EINVAL as allocFrames; EBUSY pfn when a frame is neither a free pool frame nor in a pageblock the pool can take', () => {
    const m = withFree('strict', P, M);
    refused(m, { op: 'allocUnmapped', pfn: m.config.frames, count: 1 }, 'EINVAL', 'pfn');
    refused(m, { op: 'allocUnmapped', pfn: P, count: 0 }, 'EINVAL', 'count');
    // A pageblock with a frame in use.
    refused(m, { op: 'allocUnmapped', pfn: P + M, count: 1 }, 'EBUSY', 'pfn');
    ok(m, { op: 'allocFrames', pfn: P + 100, count: 1 });
    refused(m, { op: 'allocUnmapped', pfn: P, count: 1 }, 'EBUSY', 'pfn');
    ok(m, { op: 'freeFrames', pfn: P + 100, count: 1 });
    ok(m, { op: 'allocUnmapped', pfn: P, count: 1 });
    refused(m, { op: 'allocUnmapped', pfn: P, count: 1 }, 'EBUSY', 'pfn');
  });

  it('ENOMEM when the removal must split the direct map and the pool has no table', () => {
    const m = withFree('strict', P, M, 'kernel-small-pool');
    fillPool(m);
    refused(m, { op: 'allocUnmapped', pfn: P, count: 1 }, 'ENOMEM', 'tablePool');
  });

  it('freeFrames gives a frame back to the pool (D6 exempts it); allocFrames takes the whole pageblock back', () => {
    const m = withFree('strict', P, M);
    ok(m, { op: 'allocUnmapped', pfn: P, count: 1 });
    ok(m, { op: 'allocUnmapped', pfn: P + 1, count: 1 });
    ok(m, { op: 'freeFrames', pfn: P, count: 1 });
    expect(frameAt(m.abstract(), P)).toMatchObject({ use: 'free', noDirectMap: true });
    // A frame of the pageblock is still in use: it cannot go back.
    refused(m, { op: 'allocFrames', pfn: P, count: 1 }, 'EBUSY', 'pfn');
    ok(m, { op: 'freeFrames', pfn: P + 1, count: 1 });
    ok(m, { op: 'allocFrames', pfn: P + 3, count: 1 });
    const s = m.abstract();
    expect(s.clients!.unmapped).toEqual([]);
    expect(frameAt(s, P)).toMatchObject({ use: 'free', noDirectMap: false });
    expect(frameAt(s, P + 3)).toMatchObject({ use: 'data', noDirectMap: false });
    expect(leafAt(s, PO + P + 5)).toEqual({ vpn: PO + P + 5, pfn: P + 5, size: '4K', prot: PAGE_KERNEL });
    // set_direct_map_default_noflush: no flush, the range owed.
    expect(owed(s, PO + P)).toBe(true);
  });

  it('strict refuses a page of an unmapped pageblock back in the direct map (C7) and the free of a stale mermap frame (C1); linux does both', () => {
    for (const profile of ['strict', 'linux'] as const) {
      const m = withFree(profile, P, M);
      ok(m, { op: 'allocUnmapped', pfn: P, count: 2 });
      const at = ok(m, { op: 'mermapGet', cpu: 3, pfn: P, pages: 2 }) as Vpn;
      ok(m, { op: 'mermapPut', cpu: 3, vpn: at });
      if (profile === 'strict') {
        refused(m, { op: 'setDirectMapDefault', pfn: P + 1, count: 1, flush: true }, 'EPERM', 'pfn', 'C7');
        refused(m, { op: 'freeFrames', pfn: P, count: 1 }, 'EPERM', 'pfn', 'C1');
        // A flush on its CPU meeting it ends the danger.
        ok(m, { op: 'flushLocal', cpu: 3, vpn: at, pages: 2 });
        ok(m, { op: 'freeFrames', pfn: P, count: 1 });
      } else {
        ok(m, { op: 'setDirectMapDefault', pfn: P + 1, count: 1, flush: true });
        ok(m, { op: 'freeFrames', pfn: P, count: 1 });
      }
    }
  });
});

describe('applyToPageRange', () => {
  const HUGE = VM + 2 * M;

  it('strict: a 4K leaf on every page without an entry, the others left alone, no flush', () => {
    const m = boot('strict');
    const before = leavesIn(m.abstract(), VM + 1, 64);
    ok(m, { op: 'applyToPageRange', vpn: VM, pages: 70, pfn: D, prot: PAGE_KERNEL });
    const s = m.abstract();
    expect(leafAt(s, VM)).toEqual({ vpn: VM, pfn: D, size: '4K', prot: PAGE_KERNEL });
    expect(leavesIn(s, VM + 1, 64)).toEqual(before);
    expect(leavesIn(s, VM + 65, 5).map((l) => l.pfn)).toEqual([65, 66, 67, 68, 69].map((i) => D + i));
    expect(s.pendingFlush).toEqual([]);
  });

  it('EINVAL vpn on a huge leaf: strict changes nothing; linux keeps the pages before it and prints apply-huge once', () => {
    const s = boot('strict');
    refused(s, { op: 'applyToPageRange', vpn: HUGE - 10, pages: 20, pfn: D, prot: PAGE_KERNEL }, 'EINVAL', 'vpn');
    expect(s.takeEvents()).toEqual([]);
    const m = boot('linux');
    const r = run(m, { op: 'applyToPageRange', vpn: HUGE - 10, pages: 20, pfn: D, prot: PAGE_KERNEL });
    expect(r.ok ? 'ok' : [r.error.errno, r.error.arg]).toEqual(['EINVAL', 'vpn']);
    expect(leavesIn(m.abstract(), HUGE - 10, 10).map((l) => [l.vpn, l.pfn])).toEqual(Array.from({ length: 10 }, (_, i) => [HUGE - 10 + i, D + i]));
    expect(m.takeEvents()).toEqual([{ kind: 'apply-huge', vpn: HUGE, pages: M, pfn: 104 * 256 }]);
    // Starting inside it: nothing done, and no second print (WARN_ON_ONCE).
    const before = m.abstract();
    expect(outcome(run(m, { op: 'applyToPageRange', vpn: HUGE + 5, pages: 2, pfn: D, prot: PAGE_KERNEL }))).toBe('EINVAL');
    expect(m.abstract()).toEqual(before);
    expect(m.takeEvents()).toEqual([]);
  });

  it('EINVAL as map; EPERM prot (strict, P1)', () => {
    const m = boot('strict');
    refused(m, { op: 'applyToPageRange', vpn: 5, pages: 1, pfn: D, prot: PAGE_KERNEL }, 'EINVAL', 'vpn');
    refused(m, { op: 'applyToPageRange', vpn: A, pages: 0, pfn: D, prot: PAGE_KERNEL }, 'EINVAL', 'pages');
    refused(m, { op: 'applyToPageRange', vpn: A, pages: 1, pfn: D, prot: { ...PAGE_KERNEL, execUser: true } }, 'EINVAL', 'prot');
    refused(m, { op: 'applyToPageRange', vpn: A, pages: 1, pfn: D, prot: PAGE_KERNEL_EXEC }, 'EPERM', 'prot', 'P1');
  });

  it('ENOMEM: strict changes nothing; linux keeps the PTEs set and the tables allocated before the pool ran out', () => {
    const s = boot('strict', 'kernel-small-pool');
    fillPool(s, 1);
    refused(s, { op: 'applyToPageRange', vpn: A, pages: 2, pfn: D, prot: PAGE_KERNEL }, 'ENOMEM', 'tablePool');
    // Linux, one table left: the second 2M block takes it, the third finds none.
    let m = boot('linux', 'kernel-small-pool');
    ok(m, { op: 'map', root: 0, vpn: A, pfn: D, pages: 1, prot: PAGE_KERNEL });
    fillPool(m, 1);
    expect(outcome(run(m, { op: 'applyToPageRange', vpn: A + M - 2, pages: 2 * M + 2, pfn: D, prot: PAGE_KERNEL }))).toBe('ENOMEM');
    const after = m.abstract();
    expect(leavesIn(after, A + M - 2, M + 2).map((l) => l.pfn)).toEqual(Array.from({ length: M + 2 }, (_, i) => D + i));
    expect(leafAt(after, A + 2 * M)).toBeUndefined();
    expect(free(m)).toBe(0);
    expect(m.takeEvents()).toEqual([]);
    // In a fresh 1G the PMD table is allocated, and kept, before the PTE table fails.
    m = boot('linux', 'kernel-small-pool');
    fillPool(m, 1);
    expect(outcome(run(m, { op: 'applyToPageRange', vpn: A + 4 * G, pages: 1, pfn: D, prot: PAGE_KERNEL }))).toBe('ENOMEM');
    expect(free(m)).toBe(0);
    expect(leafAt(m.abstract(), A + 4 * G)).toBeUndefined();
    const walk = ok(m, { op: 'walkPageRange', vpn: A + 4 * G, pages: 1 }) as WalkVisit[];
    expect(walk.map((v) => [v.kind, v.level])).toEqual([['table', 4], ['table', 3], ['hole', 2]]);
  });
});

describe('walkPageRange', () => {
  const visits = (m: Model, vpn: Vpn, pages: number): WalkVisit[] => ok(m, { op: 'walkPageRange', vpn, pages }) as WalkVisit[];
  const tables = (vpn: Vpn, pages: number): WalkVisit[] => [4, 3, 2].map((level) => ({ kind: 'table' as const, level: level as 4 | 3 | 2, vpn, pages }));

  it('visits depth first in address order, clipped: tables, PTE leaves, runs of none PTEs', () => {
    const m = boot('strict');
    expect(visits(m, VM, 70)).toEqual([
      ...tables(VM, 70),
      { kind: 'none', level: 1, vpn: VM, pages: 1 },
      ...Array.from({ length: 64 }, (_, i) => ({ kind: 'leaf', level: 1, vpn: VM + 1 + i, pages: 1, pfn: 100 * 256 + i })),
      { kind: 'none', level: 1, vpn: VM + 65, pages: 5 },
    ]);
  });

  it('a huge leaf is visited at its level and not descended; a none entry is a hole', () => {
    const m = boot('strict');
    expect(visits(m, VM + 2 * M + 500, 20)).toEqual([
      { kind: 'table', level: 4, vpn: VM + 2 * M + 500, pages: 20 },
      { kind: 'table', level: 3, vpn: VM + 2 * M + 500, pages: 20 },
      { kind: 'leaf', level: 2, vpn: VM + 2 * M + 500, pages: 12, pfn: 104 * 256 + 500 },
      { kind: 'leaf', level: 2, vpn: VM + 3 * M, pages: 8, pfn: 104 * 256 + M },
    ]);
    expect(visits(m, A, 3)).toEqual([{ kind: 'table', level: 4, vpn: A, pages: 3 }, { kind: 'hole', level: 3, vpn: A, pages: 3 }]);
  });

  it('a non-present entry that keeps its frame is visited as such', () => {
    const m = boot('strict');
    ok(m, { op: 'protect', vpn: VM + 2, pages: 1, change: { present: false } });
    expect(visits(m, VM + 2, 1)).toEqual([...tables(VM + 2, 1), { kind: 'nonpresent', level: 1, vpn: VM + 2, pages: 1, pfn: 100 * 256 + 1 }]);
  });

  it('a table strict left pending is unlinked, a hole; linux keeps it linked and the walk meets none PTEs', () => {
    for (const profile of ['strict', 'linux'] as const) {
      const m = boot(profile);
      ok(m, { op: 'unmap', root: 0, vpn: VM + 1, pages: 64, flush: false });
      const pmd = { kind: 'table' as const, level: 3 as const, vpn: VM, pages: 70 };
      expect(visits(m, VM, 70)).toEqual(profile === 'strict'
        ? [{ kind: 'table', level: 4, vpn: VM, pages: 70 }, pmd, { kind: 'hole', level: 2, vpn: VM, pages: 70 }]
        : [...tables(VM, 70), { kind: 'none', level: 1, vpn: VM, pages: 70 }]);
    }
  });

  it('EINVAL vpn and pages (more than a gigabyte); nothing changes', () => {
    const m = boot('strict');
    const before = m.abstract();
    refused(m, { op: 'walkPageRange', vpn: 5, pages: 1 }, 'EINVAL', 'vpn');
    refused(m, { op: 'walkPageRange', vpn: VM, pages: G + 1 }, 'EINVAL', 'pages');
    visits(m, VM, G);
    expect(m.abstract()).toEqual(before);
  });

  it('with 5-level paging the pgd and the p4d are both visited', () => {
    const m = boot('strict', 'kernel-5level');
    const vm = vmallocRegion(5).vpn;
    expect(visits(m, vm + 1, 1).map((v) => [v.kind, v.level])).toEqual([['table', 5], ['table', 4], ['table', 3], ['table', 2], ['leaf', 1]]);
  });
});

describe('zapPageRange', () => {
  /** User pages (2M-aligned) and data frames for them at 1.75 GiB (2M-aligned), far from the frames above. */
  const U = 4 * M;
  const Z = 0x70000;
  /** A data frame the boot's 4K vmalloc area maps, and a frame of user memory (use 'user', no page-allocator page). */
  const VMF = 100 * 256;
  const USER = 0x80000;
  const RW: Prot = { write: true, user: true, execKernel: false, execUser: false, global: false, cache: 'WB' };
  /** Process 1's kernel and user copies, process 2's user copy. */
  const [K1, U1, U2] = [3, 4, 7];

  /** The kernel scenario booted as with PTI (ptiBoot), with `procs` processes. */
  function isoBoot(profile: Profile, scenario = 'kernel', procs = 1): Model {
    const s = scenarioNamed(scenario)!();
    const m = new Model({ config: s.config, frames: s.frames, profile, isolation: true });
    for (const cmd of ptiBoot(s)) expect(outcome(applyCommand(m, cmd)), JSON.stringify(cmd)).toBe('ok');
    for (let i = 0; i < procs; i++) expect(outcome(m.isolation!.createProcess())).toBe('ok');
    m.takeEvents();
    return m;
  }
  const mapUser = (pid: number, vpn: Vpn, pfn: Pfn, pages: number): Command => ({ op: 'mapUser', pid, vpn, pfn, pages, prot: RW });
  const zap = (pid: number, vpn: Vpn, pages: number): Command => ({ op: 'zapPageRange', pid, vpn, pages });
  const does = (m: Model, ...cs: Command[]): void => cs.forEach((c) => void ok(m, c));
  const userLeaves = (s: AbstractState, id: number): [Vpn, Pfn, string][] =>
    s.roots.find((r) => r.id === id)!.leaves.map((l): [Vpn, Pfn, string] => [l.vpn, l.pfn, l.size]);
  const rangeTlbRoots = (m: Model): number[] => m.abstract().tlb.filter((e) => e.leaf.vpn < U + 16).map((e) => e.root);
  const use = (s: AbstractState, pfn: Pfn): [string, boolean] => [frameAt(s, pfn).use, frameAt(s, pfn).noDirectMap];

  it('unmaps both copies with one process flush, then frees exactly the frames whose last mapping went (both profiles)', () => {
    for (const profile of ['strict', 'linux'] as const) {
      const m = isoBoot(profile, 'kernel', 2);
      // Out of the direct map first (secretmem's order): a user mapping keeps it, the zap must not free it.
      does(m, { op: 'setDirectMapInvalid', pfn: Z + 0x100, count: 1, flush: true });
      does(
        m,
        mapUser(1, U, Z, 8),
        // Z + 4 twice in the range: gathered twice, freed once.
        mapUser(1, U + 8, Z + 4, 1),
        mapUser(1, U + 9, VMF, 1),
        mapUser(1, U + 10, USER, 1),
        mapUser(1, U + 11, Z + 0x100, 1),
        // Still mapped after the zap: by process 1 outside the range, by process 2.
        mapUser(1, U + M, Z + 3, 1),
        mapUser(2, U, Z + 2, 1),
      );
      for (const root of [K1, U1, U2]) m.access(1, root, U, 'r', 'user');
      expect(rangeTlbRoots(m)).toEqual([K1, U1, U2]);
      does(m, zap(1, U, 16));
      const s = m.abstract();
      expect(userLeaves(s, U1)).toEqual([[U + M, Z + 3, '4K']]);
      expect(userLeaves(s, K1)).toEqual([[U + M, Z + 3, '4K']]);
      expect(userLeaves(s, U2)).toEqual([[U, Z + 2, '4K']]);
      // The process flush: process 1's copies lose the range, process 2 keeps its entry.
      expect(rangeTlbRoots(m)).toEqual([U2]);
      for (const pfn of [Z, Z + 1, Z + 4, Z + 5, Z + 6, Z + 7]) expect(use(s, pfn), `frame ${pfn}`).toEqual(['free', false]);
      for (const pfn of [Z + 2, Z + 3, VMF]) expect(use(s, pfn), `frame ${pfn}`).toEqual(['data', false]);
      expect(use(s, USER)).toEqual(['user', false]);
      expect(use(s, Z + 0x100)).toEqual(['data', true]);
      // The free is the last step: nothing else of the model moved (init_mm, the clients' bookkeeping).
      const setup = isoBootAfter(profile);
      expect([s.roots[0], s.clients]).toEqual([setup.roots[0], setup.clients]);
      if (profile === 'strict') for (const id of ['D4', 'D6', 'D7', 'C1']) expect(invariantById(id)!.check(s).map((w) => w.detail), id).toEqual([]);
      expect(m.takeEvents()).toEqual([]);
    }
  });

  /** What init_mm holds after the first test's setup: the boot's, with the one direct-map page invalidated. */
  function isoBootAfter(profile: Profile): AbstractState {
    const m = isoBoot(profile, 'kernel', 2);
    does(m, { op: 'setDirectMapInvalid', pfn: Z + 0x100, count: 1, flush: true });
    return m.abstract();
  }

  it('a huge user leaf straddling an end is split; only the frames inside the range are freed', () => {
    for (const profile of ['strict', 'linux'] as const) {
      const m = isoBoot(profile);
      does(m, mapUser(1, U, Z, M));
      expect(userLeaves(m.abstract(), U1)).toEqual([[U, Z, '2M']]);
      does(m, zap(1, U + 1, 2));
      const s = m.abstract();
      const left = userLeaves(s, U1);
      expect(left).toHaveLength(M - 2);
      expect(left.filter(([vpn]) => vpn === U + 1 || vpn === U + 2)).toEqual([]);
      expect(left.every(([vpn, pfn, size]) => pfn === Z + (vpn - U) && size === '4K')).toBe(true);
      expect([Z, Z + 1, Z + 2, Z + 3].map((pfn) => use(s, pfn)[0])).toEqual(['data', 'free', 'free', 'data']);
    }
  });

  it('EINVAL op without the isolation capability, before anything else; the others as unmapUser; a failure changes nothing', () => {
    for (const profile of ['strict', 'linux'] as const) {
      const plain = boot(profile);
      refused(plain, zap(1, U, 1), 'EINVAL', 'op');
      // The model's own check, not only applyCommand's, and before the arguments'.
      expect(plain.clients.zapPageRange(0, -1, 0)).toMatchObject({ ok: false, error: { errno: 'EINVAL', arg: 'op' } });
      const m = isoBoot(profile);
      does(m, mapUser(1, U, Z, 4));
      refused(m, zap(0, U, 1), 'EINVAL', 'pid');
      refused(m, zap(1, PO, 1), 'EINVAL', 'vpn');
      refused(m, zap(1, U, 0), 'EINVAL', 'pages');
      refused(m, zap(2, U, 1), 'ENOENT', 'pid');
      refused(m, zap(1, U + 4, 4), 'ENOENT', 'vpn');
      expect(use(m.abstract(), Z)).toEqual(['data', false]);
    }
  });

  it('ENOMEM when splitting a huge leaf needs a table the pool lacks: the leaf and its frames stay', () => {
    const m = isoBoot('strict', 'kernel-small-pool');
    does(m, mapUser(1, U, Z, M));
    fillPool(m);
    refused(m, zap(1, U + 1, 1), 'ENOMEM', 'tablePool');
    // A whole leaf needs no split.
    does(m, zap(1, U, M));
    expect(frameAt(m.abstract(), Z)).toMatchObject({ pfn: Z, count: M, use: 'free' });
  });
});
