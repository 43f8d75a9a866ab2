/**
 * The impl's memory hotplug (impl/clients-hotplug.ts) on a kernel machine with hotplug space
 * above its RAM: the entries it writes and the frames it moves, and every sequence of the
 * model's suite run through the fuzzer's checks (outcomes and refinement against the model,
 * postconditions, invariants, the concrete tables) under both profiles. Fixed frames and
 * addresses: no randomness.
 */
import { describe, expect, it } from 'vitest';
import { PAGES, kernelLayout, type Pfn } from '../spec/address.ts';
import { MEMORY_BLOCK_PAGES, vmallocRegion, vmemmapVpn } from '../spec/clients.ts';
import { applyCommand, type Command } from '../spec/commands.ts';
import { outcome } from '../spec/errors.ts';
import { ptiBoot, type Scenario } from '../spec/scenario.ts';
import { PAGE_KERNEL } from '../spec/state.ts';
import type { Profile } from '../spec/system.ts';
import { runCommand, runTrace } from '../fuzz/check.ts';
import { compareStates } from '../fuzz/compare.ts';
import { builtinTarget } from '../fuzz/defaults.ts';
import { runFuzz } from '../fuzz/property.ts';
import { formatFailure } from '../fuzz/report.ts';
import { checkTables, createImpl } from '../impl/index.ts';
import { createModel } from '../model/index.ts';
import { hotplugBase, hotplugScenario } from './hotplug-scenario.ts';
import { fcParams } from './seed.ts';

const BLOCK = MEMORY_BLOCK_PAGES;
const G = PAGES['1G'];
const PO = kernelLayout(4).pageOffset;
const VM = vmallocRegion(4).vpn;
const S = hotplugScenario();
const B = hotplugBase(S);
const B2 = B + BLOCK;

const add = (pfn: Pfn, count = BLOCK): Command => ({ op: 'addMemory', pfn, count });
const remove = (pfn: Pfn, count = BLOCK): Command => ({ op: 'removeMemory', pfn, count });
const access = (vpn: number, cpu = 1): Command => ({ op: 'access', cpu, root: 0, vpn, kind: 'w', mode: 'kernel' });
const map = (vpn: number, pfn: Pfn, pages: number, cache: 'WB' | 'UC-' = 'WB'): Command => ({ op: 'map', root: 0, vpn, pfn, pages, prot: { ...PAGE_KERNEL, cache } });
const collapse1G = (pfn: Pfn): Command => ({ op: 'collapse', root: 0, vpn: PO + pfn, size: '1G' });

function booted(profile: Profile = 'strict', scenario: Scenario = S) {
  const sys = createImpl({ config: scenario.config, frames: scenario.frames, profile });
  for (const c of scenario.boot) expect(outcome(applyCommand(sys, c)), JSON.stringify(c)).toBe('ok');
  return sys;
}

/** The trace passes every check of the fuzzer, model against impl; the commands' outcomes, in order. */
function passes(commands: readonly Command[], profile: Profile = 'strict', scenario: Scenario = S, isolation = false): string[] {
  const target = { ...builtinTarget(isolation ? { ...scenario, boot: ptiBoot(scenario) } : scenario), clients: true, profile, ...(isolation ? { isolation } : {}) };
  const r = runTrace({ ...target, commands, fullCheckEvery: 1 });
  if (r.failure !== null) expect.fail(formatFailure(r.failure, { seed: 0, commands, scenario: scenario.name, impl: 'built-in' }));
  return r.outcomes.slice(-commands.length).map((o) => o.outcome);
}

/**
 * Linux's failed addMemory changes the state (its contract is prose there, held by
 * refinement alone): model and impl step by step, the same outcome and the same state
 * after every command, and sound tables.
 */
function agree(commands: readonly Command[], profile: Profile, scenario: Scenario): string[] {
  const setup = { config: scenario.config, frames: scenario.frames, profile };
  const model = createModel(setup);
  const impl = createImpl(setup);
  for (const c of scenario.boot) for (const sys of [model, impl]) expect(outcome(applyCommand(sys, c))).toBe('ok');
  return commands.map((c) => {
    const m = runCommand(model, c);
    const x = runCommand(impl, c);
    expect(x.outcome, JSON.stringify(c)).toBe(m.outcome);
    expect(compareStates(model.abstract(), impl.abstract(), null), JSON.stringify(c)).toBeNull();
    expect(checkTables(impl)).toEqual([]);
    return m.outcome;
  });
}

describe('impl addMemory and removeMemory on the tables', () => {
  it('writes 2M direct-map leaves and one 2M vmemmap leaf, then clears them and frees the tables', () => {
    const sys = booted();
    const tables = sys.abstract().tablesInUse;
    expect(sys.clients.addMemory(B, BLOCK)).toEqual({ ok: true, value: undefined });
    const s = sys.abstract();
    expect(s.roots[0]!.leaves.filter((l) => l.vpn >= PO + B && l.vpn < PO + B + BLOCK).map((l) => l.size)).toEqual(Array(64).fill('2M'));
    expect(sys.translate(0, vmemmapVpn(4, B) + 3)).toMatchObject({ ok: true, value: { pfn: B + 3, leaf: { size: '2M' } } });
    expect(s.clients!.memory).toEqual([B]);
    expect(s.tablesInUse).toBe(tables + 3);
    expect(checkTables(sys)).toEqual([]);
    expect(sys.clients.removeMemory(B, BLOCK).ok).toBe(true);
    expect(sys.abstract().tablesInUse).toBe(tables);
    expect(sys.translate(0, PO + B).ok).toBe(false);
    expect(checkTables(sys)).toEqual([]);
  });

  it('linux frees the emptied tables below the top-level entries\' ones, and the tables stay sound', () => {
    const sys = booted('linux');
    const tables = sys.abstract().tablesInUse;
    expect(sys.clients.addMemory(B, BLOCK).ok).toBe(true);
    expect(sys.clients.removeMemory(B, BLOCK).ok).toBe(true);
    // The vmemmap's new PUD table stays linked from its pgd entry, empty.
    expect(sys.abstract().tablesInUse).toBe(tables + 1);
    expect(checkTables(sys)).toEqual([]);
  });
});

describe('impl hotplug held to the model, the postconditions, the invariants and the tables', () => {
  it.each(['strict', 'linux'] as const)('a block added, used, removed and added again (%s)', (profile) => {
    expect(passes([add(B), access(PO + B + 700), access(vmemmapVpn(4, B)), remove(B), add(B), add(B2, 2 * BLOCK), remove(B, 2 * BLOCK), remove(B + 2 * BLOCK)], profile)).toEqual(
      ['ok', 'ok', 'ok', 'ok', 'ok', 'ok', 'ok', 'ok'],
    );
  });

  it.each(['strict', 'linux'] as const)('every refusal (%s)', (profile) => {
    expect(passes([
      add(B + 512), add(B, BLOCK / 2), add(0), remove(B), add(B), add(B),
      map(vmemmapVpn(4, B2) + 7, 100, 1), add(B2),
      { op: 'allocFrames', pfn: B + 4096, count: 1 }, remove(B), { op: 'freeFrames', pfn: B + 4096, count: 1 },
      add(B + 2 * BLOCK), { op: 'allocUnmapped', pfn: B + 2 * BLOCK + 4096, count: 1 }, remove(B + 2 * BLOCK),
    ], profile)).toEqual(['EINVAL', 'EINVAL', 'EEXIST', 'ENOENT', 'ok', 'EEXIST', 'ok', 'EEXIST', 'ok', 'EBUSY', 'ok', 'ok', 'ok', 'EBUSY']);
  });

  it('strict refuses T5 and D4 from another mapping of the absent frames; linux permits them', () => {
    const cmds = [map(VM + 4 * G, B + 1000, 1, 'UC-'), add(B), map(VM + 5 * G, B2 + 1000, 1), add(B2)];
    expect(passes(cmds, 'strict')).toEqual(['ok', 'EPERM', 'ok', 'EPERM']);
    expect(passes(cmds, 'linux')).toEqual(['ok', 'ok', 'ok', 'ok']);
  });

  it('strict refuses by the policy before the pool: EPERM D4 where the leaves would not fit either', () => {
    const boot = booted().abstract().tablesInUse;
    // Room for the stray mapping's two tables, none for the block's three.
    const tight = hotplugScenario({ tablePool: { pfn: S.config.tablePool.pfn, count: boot + 2 } });
    expect(passes([map(VM + 5 * G, B + 1000, 1), add(B), { op: 'unmap', root: 0, vpn: VM + 5 * G, pages: 1 }, add(B)], 'strict', tight)).toEqual(['ok', 'EPERM', 'ok', 'ENOMEM']);
  });

  it.each(['strict', 'linux'] as const)('a removal that cuts a 1G leaf (%s)', (profile) => {
    expect(passes([add(B, 8 * BLOCK), collapse1G(B), access(PO + B2 + 9), remove(B2), remove(B)], profile)).toEqual(['ok', 'ok', 'ok', 'ok', 'ok']);
  });

  it('strict ENOMEM at a removal split and at an add; linux removing the blocks before the one that fails', () => {
    const probe = booted();
    expect(probe.clients.addMemory(B, 8 * BLOCK).ok).toBe(true);
    const tight = hotplugScenario({ tablePool: { pfn: S.config.tablePool.pfn, count: probe.abstract().tablesInUse } });
    expect(passes([add(B, 8 * BLOCK), collapse1G(B), map(VM + 4 * G, 100 * 256, PAGES['2M']), remove(B2)], 'strict', tight)).toEqual(['ok', 'ok', 'ok', 'ENOMEM']);
    const small = hotplugScenario({ tablePool: { pfn: S.config.tablePool.pfn, count: probe.abstract().tablesInUse - 3 } });
    expect(passes([add(B)], 'strict', small)).toEqual(['ENOMEM']);
    const two = hotplugScenario({}, 16);
    const base = booted('linux', two).abstract().tablesInUse;
    const across = hotplugScenario({ tablePool: { pfn: S.config.tablePool.pfn, count: base + 3 } }, 16);
    expect(agree([access(PO + 5), add(B + 7 * BLOCK, 2 * BLOCK), add(B + 7 * BLOCK), remove(B + 7 * BLOCK)], 'linux', across)).toEqual(['ok', 'ENOMEM', 'ok', 'ok']);
  });

  it('without PSE: strict maps the memmap 4K; linux fails and leaves the direct map over absent frames', () => {
    const scenario = hotplugScenario({ features: { pse: false, gbpages: false }, frames: 128 * 256 }, 1);
    const base = hotplugBase(scenario);
    expect(passes([add(base), access(vmemmapVpn(4, base) + 100), remove(base)], 'strict', scenario)).toEqual(['ok', 'ok', 'ok']);
    expect(agree([add(base), add(base), remove(base)], 'linux', scenario)).toEqual(['ENOMEM', 'ENOMEM', 'ENOENT']);
    // vmemmap_populate's pr_err_once and add_pages' WARN_ON_ONCE, the first time only.
    const sys = booted('linux', scenario);
    sys.clients.addMemory(base, BLOCK);
    expect(sys.takeEvents().map((e) => e.kind)).toEqual(['vmemmap-no-altmap', 'add-pages-failed']);
    sys.clients.addMemory(base, BLOCK);
    expect(sys.takeEvents()).toEqual([]);
  });

  it('linux frees the empty PTE tables a vunmap kept in a removed range, and keeps the others', () => {
    const k4 = (b: Pfn): Command => ({ op: 'protect', vpn: PO + b + 2048, pages: 512, change: { kernel4k: true }, alias: false });
    const vunmap = (b: Pfn): Command => ({ op: 'unmap', root: 0, vpn: PO + b + 2048, pages: 512 });
    expect(passes([add(B, 2 * BLOCK), k4(B), vunmap(B), k4(B2), vunmap(B2), remove(B2), add(B2), remove(B, 2 * BLOCK)], 'linux')).toEqual(Array(8).fill('ok'));
  });

  it.each(['strict', 'linux'] as const)('with processes: their pgds follow the new top-level entries (%s)', (profile) => {
    expect(passes([{ op: 'createProcess' }, add(B), { op: 'access', cpu: 2, root: 3, vpn: PO + B + 12, kind: 'r', mode: 'kernel' }, remove(B), { op: 'access', cpu: 2, root: 3, vpn: PO + B + 12, kind: 'r', mode: 'kernel' }], profile, S, true))
      .toEqual(['ok', 'ok', 'ok', 'ok', 'ok']);
  });
});

describe('hotplug campaigns', () => {
  it.each(['strict', 'linux'] as const)('the fuzzer\'s client sequences pass and add and remove memory (%s)', (profile) => {
    const r = runFuzz({ ...builtinTarget(S), clients: true, profile, maxCommands: 80, shortFraction: 0.5 }, fcParams({ numRuns: 20 }));
    if (r.failed) expect.fail(formatFailure(r.failure!, { seed: r.seed, ...(r.path === undefined ? {} : { path: r.path }), commands: r.commands!, scenario: S.name, impl: 'built-in' }));
    for (const op of ['addMemory', 'removeMemory'] as const) expect(r.coverage.outcomes[op]?.['ok'] ?? 0, op).toBeGreaterThan(0);
  });

  it.each(['strict', 'linux'] as const)('5-level paging: the vmemmap at its LA57 address, PUD tables under the p4d (%s)', (profile) => {
    const five = hotplugScenario({ levels: 5 });
    const base = hotplugBase(five);
    expect(passes([add(base), access(kernelLayout(5).pageOffset + base + 700), remove(base), add(base, 2 * BLOCK)], profile, five)).toEqual(['ok', 'ok', 'ok', 'ok']);
  });
});
