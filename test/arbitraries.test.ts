/**
 * The command arbitraries cover what the refinement check needs: every core operation,
 * addresses clustered on region edges and 2M/1G boundaries, the lengths where huge-page
 * handling changes, protections the system must refuse, frames of every use, and long
 * sequences; and they produce plain data that survives a JSON round trip.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PAGES, kernelLayout } from '../spec/address.ts';
import { kmapRegion, kmapSlotOf, mermapCpuOf, mermapRegion } from '../spec/clients.ts';
import { isClientOp, isIsolationOp, type Command } from '../spec/commands.ts';
import { OPERATIONS, OPS } from '../spec/operations.ts';
import { kernelScenario } from '../spec/scenario.ts';
import { x86Scenario } from '../spec/x86-64.ts';
import type { FrameUse } from '../spec/state.ts';
import { TLB_SINGLE_PAGE_FLUSH_CEILING } from '../spec/contracts/linux.ts';
import { commandsArb, pfnPool, vpnPool } from '../fuzz/arbitraries.ts';
import { ClientBelief } from '../fuzz/clients.ts';
import { LifecycleResolver, blockFrameRuns, completedBlock, type RanStep } from '../fuzz/lifecycles.ts';
import { SEED } from './seed.ts';

const scenario = kernelScenario();
const sequences = fc.sample(commandsArb(scenario, { maxCommands: 200 }), { seed: SEED, numRuns: 150 });
const all: Command[] = sequences.flat();

const frameUse = (pfn: number): FrameUse | undefined => scenario.frames.find((r) => pfn >= r.pfn && pfn < r.pfn + r.count)?.use;

describe('commandsArb', () => {
  it('generates every core operation and no isolation or client operation unless asked', () => {
    const ops = new Set(all.map((c) => c.op));
    for (const op of OPS.filter((o) => !isIsolationOp(o) && !isClientOp(o))) expect(ops, op).toContain(op);
    expect([...ops].filter((o) => isIsolationOp(o) || isClientOp(o))).toEqual([]);
    const iso = fc.sample(commandsArb(scenario, { maxCommands: 200, isolation: true }), { seed: SEED, numRuns: 30 }).flat();
    expect(iso.some((c) => isIsolationOp(c.op))).toBe(true);
    const cl = new Set(fc.sample(commandsArb(scenario, { maxCommands: 200, clients: true }), { seed: SEED, numRuns: 30 }).flat().map((c) => c.op));
    // zapPageRange works on a process: generated only with isolation as well.
    for (const op of OPS.filter((o) => isClientOp(o) && OPERATIONS[o].alsoIsolation !== true)) expect(cl, op).toContain(op);
    expect(cl.has('zapPageRange')).toBe(false);
  });

  it('keeps the clients\' rule: no core command maps in a CPU-local region, an access there runs on its CPU', () => {
    const levels = scenario.config.levels;
    const local = [kmapRegion(scenario.config.cpus), mermapRegion(levels, scenario.config.cpus)];
    const cmds = fc.sample(commandsArb(scenario, { maxCommands: 200, clients: true }), { seed: SEED, numRuns: 30 }).flat();
    const mapping = new Set(['map', 'unmap', 'protect', 'split', 'collapse', 'applyToPageRange']);
    for (const c of cmds) {
      if (!mapping.has(c.op) || !('vpn' in c)) continue;
      const pages = 'pages' in c && typeof c.pages === 'number' ? Math.max(1, c.pages) : 1;
      for (const l of local) expect(c.vpn < l.vpn + l.pages && l.vpn < c.vpn + pages, JSON.stringify(c)).toBe(false);
    }
    // A command moved out of a client region keeps its offset in every 2M and 1G block, so
    // the leaves it makes stay those it was drawn for (moved by a few pages, a 1.5G map of
    // 2M leaves once became 389,120 4K leaves and a minute of checking).
    const mermap = mermapRegion(levels, scenario.config.cpus);
    const huge: Command = { op: 'map', root: 0, vpn: mermap.vpn, pfn: 0x200000, pages: 6 * 512, prot: { write: true, user: false, execKernel: false, execUser: false, global: true, cache: 'WB' } };
    const moved = new ClientBelief(scenario).discipline(huge);
    expect(moved.op === 'map' && moved.vpn >= mermap.vpn + mermap.pages && (moved.vpn - huge.vpn) % PAGES['1G'] === 0, JSON.stringify(moved)).toBe(true);
    const accesses = cmds.filter((c) => c.op === 'access' && c.root === 0);
    const owned = accesses.filter((c) => c.op === 'access' && (kmapSlotOf(scenario.config.cpus, c.vpn) ?? mermapCpuOf(levels, scenario.config.cpus, c.vpn)) !== undefined);
    expect(owned.length).toBeGreaterThan(0);
    for (const c of owned) {
      if (c.op !== 'access') continue;
      const owner = kmapSlotOf(scenario.config.cpus, c.vpn)?.cpu ?? mermapCpuOf(levels, scenario.config.cpus, c.vpn);
      expect(c.cpu, JSON.stringify(c)).toBe(owner);
    }
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

  it('generates local flushes on a valid CPU mostly, near recent addresses, and flushes on both sides of the ceiling', () => {
    const locals = all.filter((c): c is Extract<Command, { op: 'flushLocal' }> => c.op === 'flushLocal');
    expect(locals.length).toBeGreaterThan(50);
    expect(new Set(locals.map((c) => c.cpu))).toEqual(new Set([...Array(scenario.config.cpus + 1).keys()]));
    expect(locals.filter((c) => c.cpu < scenario.config.cpus).length).toBeGreaterThan(0.8 * locals.length);
    const flushes = all.filter((c): c is Extract<Command, { op: 'flush' | 'flushLocal' }> => c.op === 'flush' || c.op === 'flushLocal');
    const small = flushes.filter((c) => c.pages >= 1 && c.pages <= TLB_SINGLE_PAGE_FLUSH_CEILING).length;
    expect(small).toBeGreaterThan(0.5 * flushes.length);
    const ranges = all.filter((c): c is Extract<Command, { op: 'flush' }> => c.op === 'flush');
    expect(ranges.some((c) => c.pages === TLB_SINGLE_PAGE_FLUSH_CEILING)).toBe(true);
    expect(ranges.some((c) => c.pages === TLB_SINGLE_PAGE_FLUSH_CEILING + 1)).toBe(true);
    expect(ranges.filter((c) => c.pages > TLB_SINGLE_PAGE_FLUSH_CEILING).length).toBeGreaterThan(20);
    // Near what the sequence just touched: within 16 pages of one of the last eight addresses.
    let near = 0;
    for (const seq of sequences) {
      seq.forEach((c, k) => {
        if (c.op === 'flushLocal' && seq.slice(Math.max(0, k - 8), k).some((p) => 'vpn' in p && Math.abs(p.vpn - c.vpn) <= 16)) near++;
      });
    }
    expect(near).toBeGreaterThan(0.4 * locals.length);
  });

  it('generates vunmap_range_noflush, and unmaps that flush', () => {
    const unmaps = all.filter((c): c is Extract<Command, { op: 'unmap' }> => c.op === 'unmap');
    expect(unmaps.filter((c) => c.flush === false).length).toBeGreaterThan(10);
    expect(unmaps.filter((c) => c.flush === undefined).length).toBeGreaterThan(10);
    // Absent means flush: true is never written.
    expect(unmaps.some((c) => c.flush === true)).toBe(false);
  });

  it('allocates and frees frames: ones it freed or allocated before, takeable data frames, and wrong ones', () => {
    const frames = all.filter((c): c is Extract<Command, { op: 'allocFrames' | 'freeFrames' }> => c.op === 'allocFrames' || c.op === 'freeFrames');
    const allocs = frames.filter((c) => c.op === 'allocFrames');
    expect(allocs.length).toBeGreaterThan(50);
    expect(frames.length - allocs.length).toBeGreaterThan(50);
    const uses = new Set(frames.map((c) => frameUse(c.pfn)));
    // data (the lifecycle frames and takeable ones) and others (ENOENT, EBUSY), and past the end (EINVAL).
    for (const u of ['data', 'kernel-text', 'pagetable'] as const) expect(uses, u).toContain(u);
    expect(frames.some((c) => c.pfn >= scenario.config.frames || c.count === 0)).toBe(true);
    // An allocFrames of frames an earlier freeFrames of the sequence gave back (the allocator's round trip).
    let roundTrips = 0;
    for (const seq of sequences) {
      seq.forEach((c, k) => {
        if (c.op === 'allocFrames' && seq.slice(0, k).some((p) => p.op === 'freeFrames' && p.pfn === c.pfn)) roundTrips++;
      });
    }
    expect(roundTrips).toBeGreaterThan(30);
    // One frame, small folios, 2M ones, and the counts of the tracked runs.
    expect(new Set(frames.map((c) => c.count)).size).toBeGreaterThan(5);
  });

  it('inserts the secretmem, guest_memfd and vm_reset_perms lifecycles as consecutive commands', () => {
    const pageOffset = kernelLayout(scenario.config.levels).pageOffset;
    const seen = new Map<string, number>();
    for (const seq of sequences) {
      const recent: RanStep[] = [];
      for (const c of seq) {
        recent.push({ command: c, ok: true });
        if (recent.length > 5) recent.shift();
        const b = completedBlock(recent, pageOffset);
        if (b !== undefined) seen.set(b, (seen.get(b) ?? 0) + 1);
      }
    }
    for (const rule of ['lifecycle-secretmem', 'lifecycle-secretmem-free', 'lifecycle-guest_memfd', 'lifecycle-guest_memfd-restore', 'lifecycle-vm_reset_perms']) {
      expect(seen.get(rule) ?? 0, rule).toBeGreaterThan(5);
    }
    // vm_reset_perms flushes one range over the direct-map pages and the area: past the ceiling.
    const at = (k: number): Command | undefined => all[k];
    const resets = all.filter((c, k) => {
      const inv = at(k - 1);
      const unmap = at(k - 2);
      // The flush covers the area the unmap emptied: vm_reset_perms', not a block that merely follows an unmap.
      return c.op === 'flush' && inv?.op === 'setDirectMapInvalid' && !inv.flush && unmap?.op === 'unmap' && unmap.flush === false && at(k + 1)?.op === 'setDirectMapDefault'
        && c.vpn <= unmap.vpn && unmap.vpn + unmap.pages <= c.vpn + c.pages;
    });
    expect(resets.length).toBeGreaterThan(5);
    for (const f of resets) expect(f.op === 'flush' && f.pages > TLB_SINGLE_PAGE_FLUSH_CEILING, JSON.stringify(f)).toBe(true);
  });

  it('resolves a lifecycle from free frames, or frees data frames boot maps only through the direct map first', () => {
    const L = kernelLayout(scenario.config.levels);
    const r = new LifecycleResolver(scenario);
    const start = r.block({ kind: 'vm_reset_perms', end: false, at: 0, size: 3, rox: true });
    const [free, alloc, map, rox] = start;
    expect(start.map((c) => c.op)).toEqual(['freeFrames', 'allocFrames', 'map', 'protect']);
    if (free?.op !== 'freeFrames' || alloc?.op !== 'allocFrames' || map?.op !== 'map' || rox?.op !== 'protect') throw new Error('unreachable');
    expect([free.pfn, free.count]).toEqual([alloc.pfn, alloc.count]);
    expect(map.vpn).toBeGreaterThanOrEqual(L.vmallocStart);
    expect(rox).toMatchObject({ change: { write: false, exec: true }, alias: true });
    // Not a frame boot maps outside the direct map.
    for (const b of scenario.boot) if (b.op === 'map' && b.vpn - b.pfn !== L.pageOffset) expect(alloc.pfn + alloc.count <= b.pfn || alloc.pfn >= b.pfn + b.pages).toBe(true);
    const end = r.block({ kind: 'vm_reset_perms', end: true, at: 0, size: 0, rox: false });
    expect(end.map((c) => c.op)).toEqual(['unmap', 'setDirectMapInvalid', 'flush', 'setDirectMapDefault', 'freeFrames']);
    expect(end[0]).toEqual({ op: 'unmap', root: 0, vpn: map.vpn, pages: map.pages, flush: false });
    expect(end[2]).toEqual({ op: 'flush', vpn: L.pageOffset + alloc.pfn, pages: map.vpn + map.pages - (L.pageOffset + alloc.pfn) });
    expect(r.opened).toEqual([]);
    // A scenario with free frames takes them, with no freeFrames first.
    const withFree = { ...scenario, frames: [...scenario.frames.filter((f) => f.pfn !== 0), { pfn: 0, count: 16 * 256, use: 'free' as const, sensitive: false, noDirectMap: false }] };
    expect(blockFrameRuns(withFree)).toEqual([{ pfn: 0, count: 16 * 256 }]);
    const secret = new LifecycleResolver(withFree).block({ kind: 'secretmem', end: true, at: 0, size: 0, rox: false });
    expect(secret).toEqual([
      { op: 'allocFrames', pfn: 0, count: 1 },
      { op: 'setDirectMapInvalid', pfn: 0, count: 1, flush: false },
      { op: 'flush', vpn: L.pageOffset, pages: 1 },
    ]);
  });

  it('keeps swarm sequences deterministic with the lifecycles as members of the subset', () => {
    const swarm = (): Command[][] => fc.sample(commandsArb(scenario, { maxCommands: 100, swarm: true }), { seed: SEED + 1, numRuns: 40 });
    const a = swarm();
    expect(swarm()).toEqual(a);
    for (const s of a) expect(s.length).toBeLessThanOrEqual(100);
  });

  // The shapes `ptspec zoo` found too rare (each a share of what the generator makes, not
  // an outcome: a belief may be wrong, the shape is what the arbitrary guarantees).
  describe.each([['kernel', scenario], ['x86-64', x86Scenario()]] as const)('on %s, with isolation and clients', (_, sc) => {
    const seqs = fc.sample(commandsArb(sc, { maxCommands: 200, isolation: true, clients: true }), { seed: SEED, numRuns: 60 });
    const share = (hits: number, of: number): number => (of === 0 ? 0 : hits / of);
    const inData = (pfn: number, pages: number): boolean =>
      sc.frames.some((r) => r.use === 'data' && !r.noDirectMap && pfn >= r.pfn && pfn + Math.max(1, pages) <= r.pfn + r.count);

    it('frees, after a careless mermap_put, the frames of that CPU\'s newest allocation', () => {
      let puts = 0;
      let ofNewest = 0;
      for (const seq of seqs) {
        const newest = new Map<number, Command>();
        for (const [i, c] of seq.entries()) {
          if (c.op === 'mermapGet') newest.set(c.cpu, c);
          const free = seq[i + 1];
          if (c.op !== 'mermapPut' || free?.op !== 'freeFrames') continue;
          puts++;
          const got = newest.get(c.cpu);
          if (got?.op === 'mermapGet' && got.pfn === free.pfn && got.pages === free.count) ofNewest++;
        }
      }
      // A freeFrames drawn on its own may follow a put too: most, not all.
      expect(share(ofNewest, puts)).toBeGreaterThan(0.75);
    });

    it('zaps mostly a user mapping it made, of the page allocator\'s frames', () => {
      let zaps = 0;
      let named = 0;
      let maps = 0;
      let allocated = 0;
      for (const seq of seqs) {
        const made: Command[] = [];
        for (const c of seq) {
          if (c.op === 'mapUser') {
            made.push(c);
            maps++;
            if (inData(c.pfn, c.pages)) allocated++;
          }
          if (c.op !== 'zapPageRange') continue;
          zaps++;
          if (made.some((m) => m.op === 'mapUser' && m.pid === c.pid && m.vpn === c.vpn && m.pages === c.pages)) named++;
        }
      }
      expect(share(named, zaps)).toBeGreaterThan(0.6);
      expect(share(allocated, maps)).toBeGreaterThan(0.75);
    });

    it('walks after a kunmap_local, kmaps data pages, and clones the boot\'s PTI ranges again', () => {
      const all = seqs.flat();
      const kunmaps = seqs.flatMap((seq) => seq.flatMap((c, i) => (c.op === 'kunmapLocal' ? [{ c, next: seq[i + 1] }] : [])));
      const walked = kunmaps.filter(({ c, next }) => next?.op === 'walkPageRange' && next.vpn === Math.floor(c.vpn / PAGES['2M']) * PAGES['2M'] && next.pages === PAGES['2M']);
      expect(share(walked.length, kunmaps.length)).toBeGreaterThan(0.35);
      const kmaps = all.filter((c) => c.op === 'kmapLocal');
      expect(share(kmaps.filter((c) => c.op === 'kmapLocal' && inData(c.pfn, 1)).length, kmaps.length)).toBeGreaterThan(0.7);
      const boot = (sc.isolationBoot ?? []).filter((c) => c.op === 'ptiClone');
      const clones = all.filter((c) => c.op === 'ptiClone');
      const again = clones.filter((c) => c.op === 'ptiClone' && boot.some((b) => b.op === 'ptiClone' && b.vpn === c.vpn && b.pages === c.pages));
      expect(share(again.length, clones.length)).toBeGreaterThan(0.12);
    });
  });

  it('derives its address and frame pools from the scenario', () => {
    const vp = vpnPool(scenario);
    for (const r of scenario.regions) expect(vp).toContain(r.vpn);
    const fp = pfnPool(scenario);
    for (const r of scenario.frames) expect(fp).toContain(r.pfn);
    expect(fp).toContain(scenario.config.frames);
  });
});
