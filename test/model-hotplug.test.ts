/**
 * The model's memory hotplug (spec/contracts/hotplug.ts): addMemory and removeMemory of
 * whole memory blocks on a kernel machine with hotplug space above its RAM, every errno
 * of their contract, both profiles where they differ (linux's vmemmap without PSE, its
 * non-atomic failure, the large leaf a removal cuts), each step held to its postcondition
 * (spec/contracts/post/hotplug.ts). Fixed frames and addresses: no randomness.
 */
import { describe, expect, it } from 'vitest';
import { PAGES, kernelLayout, type Pfn } from '../spec/address.ts';
import { MEMMAP_PAGES, MEMORY_BLOCK_PAGES, vmallocRegion, vmemmapVpn } from '../spec/clients.ts';
import { applyCommand, isClientOp, type Command } from '../spec/commands.ts';
import { validateHotplug } from '../spec/contracts/hotplug.ts';
import { postcondition } from '../spec/contracts/post/index.ts';
import { outcome, type Errno, type Result } from '../spec/errors.ts';
import { ptiBoot, type Scenario } from '../spec/scenario.ts';
import { PAGE_KERNEL, type AbstractState, type FrameRun, type Leaf } from '../spec/state.ts';
import type { Profile } from '../spec/system.ts';
import { invariantById } from '../checker/index.ts';
import { Model } from '../model/index.ts';
import { hotplugBase, hotplugScenario } from './hotplug-scenario.ts';

const BLOCK = MEMORY_BLOCK_PAGES;
const PO = kernelLayout(4).pageOffset;
const VM = vmallocRegion(4).vpn;
const S = hotplugScenario();
/** The first block of hotplug space (4 GiB: 1G-aligned) and the one after it. */
const B = hotplugBase(S);
const B2 = B + BLOCK;

function boot(profile: Profile = 'strict', scenario: Scenario = S, isolation = false): Model {
  const m = new Model({ config: scenario.config, frames: scenario.frames, profile, ...(isolation ? { isolation } : {}) });
  for (const cmd of isolation ? ptiBoot(scenario) : scenario.boot) expect(outcome(applyCommand(m, cmd)), JSON.stringify(cmd)).toBe('ok');
  return m;
}

/** One command, a client one held to its postcondition in full, but linux's failed addMemory (prose only). */
function run(m: Model, c: Command): Result<unknown> {
  const before = m.abstract();
  const r = applyCommand(m, c);
  const prose = m.profile === 'linux' && c.op === 'addMemory' && !r.ok;
  if (isClientOp(c.op) && !prose) expect(postcondition(before, c, r, m.abstract(), 'full').map((v) => `${v.clause}: ${v.detail}`), JSON.stringify(c)).toEqual([]);
  return r;
}

function ok(m: Model, c: Command): void {
  const r = run(m, c);
  expect(r.ok ? 'ok' : r.error.message, JSON.stringify(c)).toBe('ok');
}

/** The command fails with errno naming arg, and changes nothing. */
function refused(m: Model, c: Command, errno: Errno, arg: string, invariant?: string): void {
  const before = m.abstract();
  const r = run(m, c);
  expect(r.ok ? 'ok' : `${r.error.errno} ${r.error.arg} ${r.error.invariant ?? ''}`.trim(), JSON.stringify(c)).toBe(`${errno} ${arg}${invariant === undefined ? '' : ` ${invariant}`}`);
  expect(m.abstract()).toEqual(before);
}

const add = (pfn: Pfn, count = BLOCK): Command => ({ op: 'addMemory', pfn, count });
const remove = (pfn: Pfn, count = BLOCK): Command => ({ op: 'removeMemory', pfn, count });
const leavesIn = (s: AbstractState, vpn: number, pages: number): Leaf[] => s.roots[0]!.leaves.filter((l) => l.vpn < vpn + pages && vpn < l.vpn + PAGES[l.size]);
const useOf = (s: AbstractState, pfn: Pfn): FrameRun['use'] | undefined => s.frames.find((r) => pfn >= r.pfn && pfn < r.pfn + r.count)?.use;
const broken = (s: AbstractState, id: string): number => invariantById(id)!.check(s).length;

describe('validateHotplug', () => {
  it('names pfn, then count, for whatever is not whole memory blocks inside memory', () => {
    const arg = (pfn: number, count: number): string | undefined => validateHotplug(S.config, pfn, count)?.arg;
    expect([arg(B, BLOCK), arg(0, 2 * BLOCK), arg(B, 8 * BLOCK)]).toEqual([undefined, undefined, undefined]);
    expect([arg(-BLOCK, BLOCK), arg(0.5, BLOCK), arg(B + 1, BLOCK), arg(S.config.frames, BLOCK), arg(B + 1, 0)]).toEqual(['pfn', 'pfn', 'pfn', 'pfn', 'pfn']);
    expect([arg(B, 0), arg(B, 1.5), arg(B, BLOCK - 1), arg(B, 9 * BLOCK)]).toEqual(['count', 'count', 'count', 'count']);
  });
});

describe('model addMemory', () => {
  it('maps a block as init_memory_mapping and vmemmap_populate do, onlines it and records it', () => {
    const m = boot();
    const tables = m.abstract().tablesInUse;
    ok(m, add(B));
    const s = m.abstract();
    const dm = leavesIn(s, PO + B, BLOCK);
    expect(dm).toHaveLength(BLOCK / PAGES['2M']);
    expect(dm.every((l, i) => l.size === '2M' && l.pfn === B + i * PAGES['2M'] && l.vpn === PO + l.pfn && l.prot.write && !l.prot.execKernel)).toBe(true);
    expect(leavesIn(s, vmemmapVpn(4, B), MEMMAP_PAGES)).toEqual([{ vpn: vmemmapVpn(4, B), pfn: B, size: '2M', prot: PAGE_KERNEL }]);
    expect([useOf(s, B), useOf(s, B + MEMMAP_PAGES - 1), useOf(s, B + MEMMAP_PAGES), useOf(s, B + BLOCK - 1), useOf(s, B + BLOCK)]).toEqual(['data', 'data', 'free', 'free', 'absent']);
    expect(s.clients!.memory).toEqual([B]);
    // A PMD table for the block's gigabyte of direct map; a PUD and a PMD table for the new vmemmap slot.
    expect(s.tablesInUse).toBe(tables + 3);
    expect(s.tlb).toEqual(boot().abstract().tlb);
    expect(broken(s, 'D8')).toBe(0);
  });

  it('adds two blocks in one call, each with its memmap on its own first frames', () => {
    const m = boot();
    ok(m, add(B, 2 * BLOCK));
    const s = m.abstract();
    expect(s.clients!.memory).toEqual([B, B2]);
    expect(leavesIn(s, vmemmapVpn(4, B), 2 * MEMMAP_PAGES).map((l) => l.pfn)).toEqual([B, B2]);
    expect([useOf(s, B2), useOf(s, B2 + MEMMAP_PAGES)]).toEqual(['data', 'free']);
  });

  it('refuses misaligned or outside ranges (EINVAL), RAM or added blocks and a taken memmap (EEXIST)', () => {
    const m = boot();
    refused(m, add(B + 512), 'EINVAL', 'pfn');
    refused(m, add(S.config.frames), 'EINVAL', 'pfn');
    refused(m, add(B, BLOCK / 2), 'EINVAL', 'count');
    refused(m, add(B, 9 * BLOCK), 'EINVAL', 'count');
    refused(m, add(0), 'EEXIST', 'pfn');
    ok(m, add(B));
    refused(m, add(B), 'EEXIST', 'pfn');
    // The next block's struct pages are mapped already: another memory's memmap, or a stray map.
    ok(m, { op: 'map', root: 0, vpn: vmemmapVpn(4, B2) + 7, pfn: 100, pages: 1, prot: PAGE_KERNEL });
    refused(m, add(B2), 'EEXIST', 'pfn');
  });

  it('strict refuses what another mapping of the absent frames makes of the onlining: T5 by the direct map, D4 by the free', () => {
    const m = boot();
    ok(m, { op: 'map', root: 0, vpn: VM + 4 * PAGES['1G'], pfn: B + 1000, pages: 1, prot: { ...PAGE_KERNEL, cache: 'UC-' } });
    refused(m, add(B), 'EPERM', 'pfn', 'T5');
    const n = boot();
    ok(n, { op: 'map', root: 0, vpn: VM + 4 * PAGES['1G'], pfn: B2 + 1000, pages: 1, prot: PAGE_KERNEL });
    refused(n, add(B2), 'EPERM', 'pfn', 'D4');
    // A mapping of the memmap frames is no free frame's: they are data.
    ok(n, { op: 'map', root: 0, vpn: VM + 5 * PAGES['1G'], pfn: B + 3, pages: 1, prot: PAGE_KERNEL });
    ok(n, add(B));
  });

  it('strict fails with ENOMEM when the pool lacks the tables, changing nothing', () => {
    const probe = boot();
    const scenario = hotplugScenario({ tablePool: { pfn: S.config.tablePool.pfn, count: probe.abstract().tablesInUse + 2 } });
    refused(boot('strict', scenario), add(B), 'ENOMEM', 'tablePool');
  });

  it('strict maps the memmap with 4K leaves without PSE; linux fails there and keeps the block\'s direct map', () => {
    const scenario = hotplugScenario({ features: { pse: false, gbpages: false }, frames: 128 * 256 }, 1);
    const base = hotplugBase(scenario);
    const strict = boot('strict', scenario);
    ok(strict, add(base));
    const s = strict.abstract();
    expect(leavesIn(s, vmemmapVpn(4, base), MEMMAP_PAGES)).toHaveLength(MEMMAP_PAGES);
    expect(leavesIn(s, PO + base, BLOCK).every((l) => l.size === '4K')).toBe(true);
    const linux = boot('linux', scenario);
    const r = run(linux, add(base));
    expect(r.ok ? 'ok' : `${r.error.errno} ${r.error.arg}`).toBe('ENOMEM tablePool');
    const after = linux.abstract();
    expect(leavesIn(after, PO + base, BLOCK)).toHaveLength(BLOCK);
    expect(leavesIn(after, vmemmapVpn(4, base), MEMMAP_PAGES)).toEqual([]);
    expect(useOf(after, base)).toBe('absent');
    expect(after.clients!.memory).toEqual([]);
    expect(broken(after, 'D8')).toBeGreaterThan(0);
    // vmemmap_populate's pr_err_once and add_pages' WARN_ON_ONCE, each the first time only.
    const dm = { vpn: PO + base, pages: BLOCK, pfn: base };
    expect(linux.takeEvents()).toEqual([{ kind: 'vmemmap-no-altmap', vpn: vmemmapVpn(4, base), pages: MEMMAP_PAGES, pfn: base }, { kind: 'add-pages-failed', ...dm }]);
    run(linux, add(base));
    expect(linux.takeEvents()).toEqual([]);
  });

  it('linux, when a later block fails, removes the blocks before it again and keeps nothing of the failed one', () => {
    // Two gigabytes of hotplug space: the block across the boundary needs a PMD table of its own.
    const scenario = hotplugScenario({}, 16);
    const probe = boot('linux', scenario);
    const last = B + 7 * BLOCK;
    const tight = hotplugScenario({ tablePool: { pfn: S.config.tablePool.pfn, count: probe.abstract().tablesInUse + 3 } }, 16);
    const m = boot('linux', tight);
    const before = m.abstract();
    const r = run(m, add(last, 2 * BLOCK));
    expect(r.ok ? 'ok' : `${r.error.errno} ${r.error.arg}`).toBe('ENOMEM tablePool');
    const after = m.abstract();
    expect(leavesIn(after, PO + last, 2 * BLOCK)).toEqual([]);
    expect(leavesIn(after, vmemmapVpn(4, last), 2 * MEMMAP_PAGES)).toEqual([]);
    expect(after.frames).toEqual(before.frames);
    expect(after.clients!.memory).toEqual([]);
    // The removal flushed everything and freed the tables it emptied but the vmemmap's PUD
    // table a top-level entry points to.
    expect(after.tlb).toEqual([]);
    expect(after.tablesInUse).toBe(before.tablesInUse + 1);
  });
});

describe('model removeMemory', () => {
  it('strict unmaps the memmap and the direct map, flushes everything, frees the tables and makes the frames absent', () => {
    const m = boot();
    const booted = m.abstract();
    ok(m, add(B));
    ok(m, { op: 'access', cpu: 1, root: 0, vpn: PO + B + 600, kind: 'w', mode: 'kernel' });
    ok(m, remove(B));
    const s = m.abstract();
    expect(s.roots[0]!.leaves).toEqual(booted.roots[0]!.leaves);
    expect(s.frames).toEqual(booted.frames);
    expect(s.tlb).toEqual([]);
    expect(s.tablesInUse).toBe(booted.tablesInUse);
    expect(s.clients!.memory).toEqual([]);
  });

  it('linux clears the same leaves and frees the tables it empties, but those the top-level entries point to', () => {
    const m = boot('linux');
    const booted = m.abstract();
    ok(m, add(B));
    ok(m, remove(B));
    const s = m.abstract();
    expect(s.roots[0]!.leaves).toEqual(booted.roots[0]!.leaves);
    expect(s.frames).toEqual(booted.frames);
    // Both PMD tables go (free_pmd_table); the vmemmap's new PUD table stays (4-level: remove_p4d_table frees no PUD).
    expect(s.tablesInUse).toBe(booted.tablesInUse + 1);
  });

  it('linux with 5-level paging frees the PUD table too, and keeps the P4D table the pgd entry points to', () => {
    const scenario = hotplugScenario({ levels: 5 });
    const m = boot('linux', scenario);
    const booted = m.abstract();
    const base = hotplugBase(scenario);
    ok(m, add(base));
    ok(m, remove(base));
    expect(m.abstract().tablesInUse).toBe(booted.tablesInUse + 1);
  });

  it('linux frees the empty tables a vunmap kept in the range, and keeps those outside it', () => {
    const m = boot('linux');
    ok(m, add(B, 2 * BLOCK));
    const tables = m.abstract().tablesInUse;
    // set_memory_4k splits a 2M leaf of each block's direct map; vunmap of its pages keeps the PTE table.
    for (const b of [B, B2]) {
      ok(m, { op: 'protect', vpn: PO + b + 2048, pages: 512, change: { kernel4k: true }, alias: false });
      ok(m, { op: 'unmap', root: 0, vpn: PO + b + 2048, pages: 512 });
    }
    expect(m.abstract().tablesInUse).toBe(tables + 2);
    ok(m, remove(B2));
    expect(m.abstract().tablesInUse).toBe(tables + 1);
  });

  it('removes one block of two added together', () => {
    const m = boot();
    ok(m, add(B, 2 * BLOCK));
    ok(m, remove(B2));
    const s = m.abstract();
    expect(s.clients!.memory).toEqual([B]);
    expect(leavesIn(s, PO + B2, BLOCK)).toEqual([]);
    expect(leavesIn(s, PO + B, BLOCK)).toHaveLength(64);
    expect([useOf(s, B + MEMMAP_PAGES), useOf(s, B2)]).toEqual(['free', 'absent']);
  });

  it('refuses EINVAL, a block not added (ENOENT), memory in use or in the unmapped pool (EBUSY)', () => {
    const m = boot();
    refused(m, remove(B + 1), 'EINVAL', 'pfn');
    refused(m, remove(B, 5), 'EINVAL', 'count');
    refused(m, remove(B), 'ENOENT', 'pfn');
    refused(m, remove(0), 'ENOENT', 'pfn');
    ok(m, add(B, 2 * BLOCK));
    refused(m, remove(B, 3 * BLOCK), 'ENOENT', 'pfn');
    ok(m, { op: 'allocFrames', pfn: B + 4096, count: 2 });
    refused(m, remove(B), 'EBUSY', 'pfn');
    ok(m, { op: 'allocUnmapped', pfn: B2 + 4096, count: 1 });
    refused(m, remove(B2), 'EBUSY', 'pfn');
  });

  it('cuts a 1G leaf: strict splits it (ENOMEM without a table), linux leaves it over the absent frames', () => {
    for (const profile of ['strict', 'linux'] as const) {
      const m = boot(profile);
      ok(m, add(B, 8 * BLOCK));
      ok(m, { op: 'collapse', root: 0, vpn: PO + B, size: '1G' });
      expect(leavesIn(m.abstract(), PO + B, BLOCK)).toMatchObject([{ size: '1G' }]);
      ok(m, remove(B2));
      const s = m.abstract();
      if (profile === 'strict') {
        expect(leavesIn(s, PO + B2, BLOCK)).toEqual([]);
        expect(leavesIn(s, PO + B, BLOCK)).toHaveLength(64);
        expect(broken(s, 'D8')).toBe(0);
      } else {
        expect(leavesIn(s, PO + B2, BLOCK)).toMatchObject([{ size: '1G', vpn: PO + B }]);
        expect(broken(s, 'D8')).toBeGreaterThan(0);
      }
    }
    // A pool as large as the add needs: the collapse frees one table, a 2M vmalloc leaf takes it again.
    const probe = boot();
    ok(probe, add(B, 8 * BLOCK));
    const tight = hotplugScenario({ tablePool: { pfn: S.config.tablePool.pfn, count: probe.abstract().tablesInUse } });
    const m = boot('strict', tight);
    ok(m, add(B, 8 * BLOCK));
    ok(m, { op: 'collapse', root: 0, vpn: PO + B, size: '1G' });
    ok(m, { op: 'map', root: 0, vpn: VM + 4 * PAGES['1G'], pfn: 100 * 256, pages: PAGES['2M'], prot: PAGE_KERNEL });
    refused(m, remove(B2), 'ENOMEM', 'tablePool');
  });
});

describe('model hotplug with processes', () => {
  it('a process sees the hot-added memory through its pgd and stops seeing it after the removal', () => {
    for (const profile of ['strict', 'linux'] as const) {
      const m = boot(profile, S, true);
      const p = m.isolation!.createProcess();
      expect(p.ok).toBe(true);
      const root = p.ok ? p.value.kernelRoot : -1;
      ok(m, add(B));
      expect(m.translate(root, vmemmapVpn(4, B)).ok, profile).toBe(true);
      expect(m.translate(root, PO + B + 5).ok, profile).toBe(true);
      ok(m, remove(B));
      expect(m.translate(root, PO + B + 5).ok, profile).toBe(false);
      expect(broken(m.abstract(), 'K4'), profile).toBe(0);
    }
  });
});
