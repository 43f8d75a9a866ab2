/**
 * The command arbitraries cover what the refinement check needs: every core operation,
 * addresses clustered on region edges and 2M/1G boundaries, the lengths where huge-page
 * handling changes, protections the system must refuse, frames of every use, and long
 * sequences; and they produce plain data that survives a JSON round trip.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PAGES } from '../spec/address.ts';
import { isIsolationOp, type Command } from '../spec/commands.ts';
import { OPS } from '../spec/operations.ts';
import { kernelScenario } from '../spec/scenario.ts';
import type { FrameUse } from '../spec/state.ts';
import { commandsArb, pfnPool, vpnPool } from '../fuzz/arbitraries.ts';
import { SEED } from './seed.ts';

const scenario = kernelScenario();
const sequences = fc.sample(commandsArb(scenario, { maxCommands: 200 }), { seed: SEED, numRuns: 150 });
const all: Command[] = sequences.flat();

const frameUse = (pfn: number): FrameUse | undefined => scenario.frames.find((r) => pfn >= r.pfn && pfn < r.pfn + r.count)?.use;

describe('commandsArb', () => {
  it('generates every core operation and no isolation operation unless asked', () => {
    const ops = new Set(all.map((c) => c.op));
    for (const op of OPS.filter((o) => !isIsolationOp(o))) expect(ops, op).toContain(op);
    expect([...ops].filter(isIsolationOp)).toEqual([]);
    const iso = fc.sample(commandsArb(scenario, { maxCommands: 200, isolation: true }), { seed: SEED, numRuns: 30 }).flat();
    expect(iso.some((c) => isIsolationOp(c.op))).toBe(true);
  });

  it('produces long sequences, up to maxCommands', () => {
    const lengths = sequences.map((s) => s.length);
    expect(Math.max(...lengths)).toBeLessThanOrEqual(200);
    expect(lengths.filter((n) => n >= 150).length).toBeGreaterThan(10);
  });

  it('clusters addresses on region edges and on 2M and 1G boundaries, with the page either side', () => {
    const vpns = all.flatMap((c) => ('vpn' in c ? [c.vpn] : []));
    const starts = new Set(scenario.regions.map((r) => r.vpn));
    const onBoundary = (size: '2M' | '1G', d: number): number => vpns.filter((v) => (v - d) % PAGES[size] === 0).length;
    expect(vpns.filter((v) => starts.has(v)).length).toBeGreaterThan(20);
    for (const d of [-1, 0, 1]) {
      expect(onBoundary('2M', d), `2M boundary ${d}`).toBeGreaterThan(50);
      expect(onBoundary('1G', d), `1G boundary ${d}`).toBeGreaterThan(20);
    }
    // Reuse: many commands return to an address a command of the last few used.
    let reused = 0;
    for (const s of sequences) {
      s.forEach((c, k) => {
        if ('vpn' in c && s.slice(Math.max(0, k - 8), k).some((p) => 'vpn' in p && Math.abs(p.vpn - c.vpn) <= 2)) reused++;
      });
    }
    expect(reused / vpns.length).toBeGreaterThan(0.2);
  });

  it('pairs commands that only matter together: collapse after split, the same access twice, restore after removal', () => {
    let collapseAfterSplit = 0;
    let accessTwice = 0;
    let restore = 0;
    for (const s of sequences) {
      s.forEach((c, k) => {
        const earlier = s.slice(0, k).reverse();
        if (c.op === 'collapse' && earlier.find((p) => p.op === 'split')?.vpn === c.vpn) collapseAfterSplit++;
        const a = earlier.find((p) => p.op === 'access');
        if (c.op === 'access' && a?.op === 'access' && a.vpn === c.vpn && a.cpu === c.cpu) accessTwice++;
        const inv = earlier.find((p) => p.op === 'setDirectMapInvalid');
        if (c.op === 'setDirectMapDefault' && inv?.op === 'setDirectMapInvalid' && inv.pfn === c.pfn && inv.count === c.count) restore++;
      });
    }
    expect(collapseAfterSplit).toBeGreaterThan(20);
    expect(accessTwice).toBeGreaterThan(20);
    expect(restore).toBeGreaterThan(20);
  });

  it('biases lengths to one page, 511/512/513, 1G and region sizes, and includes invalid ones', () => {
    const lens = new Set(all.flatMap((c) => ('pages' in c ? [c.pages] : [])));
    for (const n of [1, 511, 512, 513, PAGES['1G'], PAGES['1G'] + 1, 0]) expect(lens, String(n)).toContain(n);
    for (const r of scenario.regions) expect(lens, r.name).toContain(r.pages);
  });

  it('asks for W+X, user and unrepresentable protections, every maxPage, and frames of every use', () => {
    const maps = all.filter((c): c is Extract<Command, { op: 'map' }> => c.op === 'map');
    expect(maps.some((c) => c.prot.write && c.prot.execKernel)).toBe(true);
    expect(maps.some((c) => c.prot.user)).toBe(true);
    expect(maps.some((c) => c.prot.execUser !== (c.prot.user && c.prot.execKernel))).toBe(true);
    expect(new Set(maps.map((c) => c.maxPage))).toEqual(new Set([undefined, '4K', '2M', '1G']));
    const uses = new Set(maps.map((c) => frameUse(c.pfn)));
    for (const u of ['kernel-text', 'kernel-rodata', 'kernel-data', 'pagetable', 'data', 'user'] as const) expect(uses, u).toContain(u);
    const protects = all.filter((c): c is Extract<Command, { op: 'protect' }> => c.op === 'protect');
    expect(protects.some((c) => c.alias === true)).toBe(true);
    expect(all.some((c) => c.op === 'setDirectMapInvalid' && !c.flush)).toBe(true);
    expect(all.some((c) => c.op === 'setDirectMapDefault' && c.flush)).toBe(true);
    expect(new Set(all.flatMap((c) => (c.op === 'collapse' ? [c.size] : [])))).toEqual(new Set(['2M', '1G']));
    const accesses = all.filter((c): c is Extract<Command, { op: 'access' }> => c.op === 'access');
    expect(new Set(accesses.map((c) => `${c.kind}/${c.mode}/${c.cpu}`)).size).toBe(3 * 2 * (scenario.config.cpus + 1));
  });

  it('is deterministic plain data: same seed, same commands; JSON round trip is the identity', () => {
    const again = fc.sample(commandsArb(scenario, { maxCommands: 200 }), { seed: SEED, numRuns: 150 });
    expect(again).toEqual(sequences);
    expect(JSON.parse(JSON.stringify(sequences))).toEqual(sequences);
  });

  it('derives its address and frame pools from the scenario', () => {
    const vp = vpnPool(scenario);
    for (const r of scenario.regions) expect(vp).toContain(r.vpn);
    const fp = pfnPool(scenario);
    for (const r of scenario.frames) expect(fp).toContain(r.pfn);
    expect(fp).toContain(scenario.config.frames);
  });
});
