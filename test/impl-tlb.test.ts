/**
 * The impl's TLBs, paging-structure caches, flush promises, table lifetime and frame
 * lifecycle (spec/contracts/flush.ts, access.ts, unmap.ts, frames.ts, linux.ts "Flushes"):
 * hand-written sequences on a small machine, every step held to its postcondition
 * (spec/contracts/post) and to the concrete table check, and one sequence per TLB mutant
 * on which the mutant's impl differs from the correct one.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PAGES, X86_64_LAYOUT_4LEVEL as L, type Vpn } from '../spec/address.ts';
import { applyCommand, type Command } from '../spec/commands.ts';
import { postcondition } from '../spec/contracts/post/index.ts';
import type { Result } from '../spec/errors.ts';
import { INIT_MM, PAGE_KERNEL, PAGE_KERNEL_RO, type AbstractState, type FrameRun, type SystemConfig } from '../spec/state.ts';
import type { Profile, SystemSetup } from '../spec/system.ts';
import { checkTables, createImpl, type MutantName, type RadixSystem } from '../impl/index.ts';
import { fcParams } from './seed.ts';

const POOL = 3 * PAGES['1G'];
const FREE = 0x10000;
const FREE_COUNT = 0x1000;
const VM = L.vmallocStart;
const PO = L.pageOffset;
/** A data frame, and the 2M-aligned data frames a huge map uses. */
const F = 0x1000;
const HUGE_PFN = 0x200 * 8;

/** 4 GiB, two CPUs, a 64-table pool at 3 GiB, and FREE_COUNT free frames at FREE for the allocator. */
function setup(profile: Profile = 'strict', cpus = 2): SystemSetup {
  const frames = 4 * PAGES['1G'];
  const config: SystemConfig = {
    levels: 4, features: { pse: true, gbpages: true }, cpus, maxPhysBits: 46, frames, tablePool: { pfn: POOL, count: 64 },
  };
  const run = (pfn: number, count: number, use: FrameRun['use']): FrameRun => ({ pfn, count, use, sensitive: false, noDirectMap: false });
  return {
    config, profile,
    frames: [run(0, FREE, 'data'), run(FREE, FREE_COUNT, 'free'), run(FREE + FREE_COUNT, POOL - FREE - FREE_COUNT, 'data'), run(POOL, 64, 'pagetable'), run(POOL + 64, frames - POOL - 64, 'data')],
  };
}

/** Run `c`, holding the step to its postcondition (strict) and the tables to checkTables; the result. */
function step(sys: RadixSystem, c: Command): Result<unknown> {
  const before = sys.abstract();
  const result = applyCommand(sys, c);
  const after = sys.abstract();
  if (sys.profile === 'strict') expect(postcondition(before, c, result, after, 'full').map((v) => `${v.clause}: ${v.detail}`)).toEqual([]);
  expect(checkTables(sys).map((f) => `${f.check}: ${f.detail}`)).toEqual([]);
  return result;
}

/** Run every command; each must succeed. */
function run(sys: RadixSystem, cs: readonly Command[]): RadixSystem {
  for (const c of cs) expect(step(sys, c).ok, `${c.op} ${JSON.stringify(c)}`).toBe(true);
  return sys;
}

const map = (vpn: Vpn, pfn: number, pages: number, maxPage?: '4K' | '2M'): Command => ({ op: 'map', root: INIT_MM, vpn, pfn, pages, prot: PAGE_KERNEL, ...(maxPage ? { maxPage } : {}) });
const access = (cpu: number, vpn: Vpn, kind: 'r' | 'w' = 'r'): Command => ({ op: 'access', cpu, root: INIT_MM, vpn, kind, mode: 'kernel' });
const unmap = (vpn: Vpn, pages: number, flush?: boolean): Command => ({ op: 'unmap', root: INIT_MM, vpn, pages, ...(flush === false ? { flush } : {}) });

const walk = (s: AbstractState): string[] => (s.walkCache ?? []).map((w) => `cpu${w.cpu} L${w.level} ${(w.vpn - (w.vpn % 1)).toString(16)} ${w.table}`);
const tlb = (s: AbstractState): string[] => s.tlb.map((e) => `cpu${e.cpu} ${e.leaf.size} ${e.leaf.vpn.toString(16)}`);
const hex = (v: number): string => v.toString(16);
const align = (v: number, n: number): number => v - (v % n);

/** The paging-structure-cache entries a walk to a 4K leaf at vpn on `cpu` fills, as walk() prints them. */
function filled4k(cpu: number, vpn: Vpn, state: string): string[] {
  return [`cpu${cpu} L1 ${hex(align(vpn, 512))} ${state}`, `cpu${cpu} L2 ${hex(align(vpn, PAGES['1G']))} ${state}`, `cpu${cpu} L3 ${hex(align(vpn, 512 * PAGES['1G']))} ${state}`];
}

describe('impl: paging-structure caches', () => {
  it('a walk to a 4K leaf caches the PTE, PMD and PUD tables above it; to a 2M leaf the PMD and PUD tables only', () => {
    const sys = run(createImpl(setup()), [map(VM, F, 1), access(0, VM), map(VM + 512, HUGE_PFN, 512), access(1, VM + 512)]);
    const s = sys.abstract();
    expect(walk(s)).toEqual([...filled4k(0, VM, 'current'), `cpu1 L2 ${hex(VM)} current`, `cpu1 L3 ${hex(align(VM, 512 * PAGES['1G']))} current`]);
    expect(tlb(s)).toEqual([`cpu0 4K ${hex(VM)}`, `cpu1 2M ${hex(VM + 512)}`]);
  });

  it('a protection fault keeps the fill; a walk that finds nothing caches nothing', () => {
    const sys = run(createImpl(setup()), [{ op: 'map', root: INIT_MM, vpn: VM, pfn: F, pages: 1, prot: PAGE_KERNEL_RO }]);
    expect(step(sys, access(0, VM, 'w'))).toEqual({ ok: true, value: { fault: 'protection' } });
    expect(walk(sys.abstract())).toEqual(filled4k(0, VM, 'current'));
    expect(step(sys, access(1, VM + 1))).toEqual({ ok: true, value: { fault: 'not-present' } });
    expect((sys.abstract().walkCache ?? []).filter((w) => w.cpu === 1)).toEqual([]);
  });

  it('unmap with flush: false leaves TLB and caches alone, owes the range, and the emptied tables go pending (unlinked)', () => {
    const sys = run(createImpl(setup()), [map(VM, F, 2), access(0, VM), access(1, VM)]);
    expect(step(sys, unmap(VM, 2, false)).ok).toBe(true);
    const s = sys.abstract();
    expect(s.pendingFlush).toEqual([{ vpn: VM, pages: 2, reason: 'unmap' }]);
    expect(s.pendingTableFrees).toBe(3);
    expect(tlb(s)).toEqual([`cpu0 4K ${hex(VM)}`, `cpu1 4K ${hex(VM)}`]);
    expect(walk(s)).toEqual([...filled4k(0, VM, 'unlinked'), ...filled4k(1, VM, 'unlinked')]);
    // The stale TLB entry is still used; a miss walks from the unlinked PTE table and finds nothing.
    expect(step(sys, access(0, VM))).toMatchObject({ ok: true, value: { fault: false, fromTlb: true } });
    expect(step(sys, access(0, VM + 1))).toEqual({ ok: true, value: { fault: 'not-present' } });
    // A new mapping beside the owed pages (over them it would flush them first: map.ts)
    // has new tables; the cached walk still goes through the old one.
    expect(step(sys, map(VM + 2, F + 2, 1)).ok).toBe(true);
    expect(step(sys, access(0, VM + 2))).toEqual({ ok: true, value: { fault: 'not-present' } });
    expect(step(sys, { op: 'flush', vpn: VM, pages: 1 }).ok).toBe(true);
    const t = sys.abstract();
    expect([t.pendingFlush, t.pendingTableFrees, t.tlb, t.walkCache ?? []]).toEqual([[{ vpn: VM + 1, pages: 1, reason: 'unmap' }], 0, [], []]);
    expect(step(sys, access(0, VM + 2))).toMatchObject({ ok: true, value: { fault: false, fromTlb: false } });
  });

  it('flushLocal drops one CPU\'s entries meeting the range and empties its caches only; nothing is discharged', () => {
    const sys = run(createImpl(setup()), [map(VM, F, 40), access(0, VM), access(1, VM), access(1, VM + 39), unmap(VM, 1, false)]);
    expect(step(sys, { op: 'flushLocal', cpu: 1, vpn: VM, pages: 1 }).ok).toBe(true);
    const s = sys.abstract();
    expect(tlb(s)).toEqual([`cpu0 4K ${hex(VM)}`, `cpu1 4K ${hex(VM + 39)}`]);
    expect(walk(s)).toEqual(filled4k(0, VM, 'current'));
    expect(s.pendingFlush).toEqual([{ vpn: VM, pages: 1, reason: 'unmap' }]);
    expect(step(sys, { op: 'flushLocal', cpu: sys.config.cpus, vpn: VM, pages: 1 })).toMatchObject({ ok: false, error: { errno: 'EINVAL', arg: 'cpu' } });
  });

  it('a range flush of more than 33 pages is a full flush; of 33 or fewer it empties every cache but drops only what meets it', () => {
    const sys = run(createImpl(setup()), [map(VM, F, 1), map(VM + 1024, F + 1, 1), access(0, VM), access(1, VM + 1024)]);
    run(sys, [{ op: 'flush', vpn: VM + 100, pages: 33 }]);
    expect([tlb(sys.abstract()), walk(sys.abstract())]).toEqual([[`cpu0 4K ${hex(VM)}`, `cpu1 4K ${hex(VM + 1024)}`], []]);
    run(sys, [{ op: 'flush', vpn: VM + 100, pages: 34 }]);
    expect(sys.abstract().tlb).toEqual([]);
  });

  it('the ranges of one operation are merged before the ceiling: an unmap of 40 pages flushes everything', () => {
    const sys = run(createImpl(setup()), [map(VM, F, 40), map(VM + 4096, F + 100, 1), access(0, VM + 4096), unmap(VM, 40)]);
    expect(sys.abstract().tlb).toEqual([]);
  });

  it('a table the walk cached is freed only after the flush that empties the caches', () => {
    const sys = run(createImpl(setup()), [map(VM, F, 1), access(0, VM), access(1, VM), unmap(VM, 1)]);
    const s = sys.abstract();
    expect([s.walkCache ?? [], s.tlb, s.tablesInUse]).toEqual([[], [], 1]);
  });

  it('checkTables finds a cached table entry that names a table of another place', () => {
    const sys = run(createImpl(setup()), [map(VM, F, 1), access(0, VM)]);
    const pool = sys.tables();
    const pte = sys.tableAt(VM, 1);
    pool.base[pte] = VM + 512;
    expect(checkTables(sys).map((f) => f.check)).toEqual(['walk-cache']);
  });
});

describe('impl: the frame lifecycle', () => {
  it('allocFrames takes free frames (EBUSY otherwise), freeFrames gives data frames back (ENOENT otherwise)', () => {
    const sys = createImpl(setup());
    expect(step(sys, { op: 'allocFrames', pfn: FREE - 1, count: 2 })).toMatchObject({ ok: false, error: { errno: 'EBUSY', arg: 'pfn' } });
    expect(step(sys, { op: 'allocFrames', pfn: FREE, count: 16 }).ok).toBe(true);
    expect(sys.abstract().frames.slice(0, 3).map((r) => [hex(r.pfn), r.count, r.use])).toEqual([['0', FREE + 16, 'data'], [hex(FREE + 16), FREE_COUNT - 16, 'free'], [hex(FREE + FREE_COUNT), POOL - FREE - FREE_COUNT, 'data']]);
    expect(step(sys, { op: 'freeFrames', pfn: FREE + 8, count: 9 })).toMatchObject({ ok: false, error: { errno: 'ENOENT', arg: 'pfn' } });
    expect(step(sys, { op: 'freeFrames', pfn: POOL, count: 1 })).toMatchObject({ ok: false, error: { errno: 'ENOENT', arg: 'pfn' } });
    expect(step(sys, { op: 'freeFrames', pfn: FREE + 8, count: 8 }).ok).toBe(true);
    expect(step(sys, { op: 'freeFrames', pfn: 0, count: 1 }).ok).toBe(true);
    expect(sys.abstract().frames.slice(0, 4).map((r) => [hex(r.pfn), r.use])).toEqual([['0', 'free'], ['1', 'data'], [hex(FREE + 8), 'free'], [hex(FREE + FREE_COUNT), 'data']]);
    expect(step(sys, { op: 'allocFrames', pfn: 0, count: 0 })).toMatchObject({ ok: false, error: { errno: 'EINVAL', arg: 'count' } });
  });

  it('strict freeFrames refuses D4 (mapped beside the direct map), then D6 (off the direct map), then D7 (cached beside it)', () => {
    const eperm = (invariant: string) => ({ ok: false, error: { errno: 'EPERM', arg: 'pfn', invariant } });
    const sys = run(createImpl(setup()), [map(PO + F, F, 1), map(VM, F, 1), access(0, VM)]);
    expect(step(sys, { op: 'freeFrames', pfn: F, count: 1 })).toMatchObject(eperm('D4'));
    run(sys, [unmap(VM, 1, false), { op: 'setDirectMapInvalid', pfn: F, count: 1, flush: true }]);
    expect(step(sys, { op: 'freeFrames', pfn: F, count: 1 })).toMatchObject(eperm('D6'));
    run(sys, [{ op: 'setDirectMapDefault', pfn: F, count: 1, flush: true }]);
    // The flush of the direct-map page does not meet VM: CPU 0's stale entry there stays (owed).
    expect(tlb(sys.abstract())).toEqual([`cpu0 4K ${hex(VM)}`]);
    expect(step(sys, { op: 'freeFrames', pfn: F, count: 1 })).toMatchObject(eperm('D7'));
    run(sys, [{ op: 'flush', vpn: VM, pages: 1 }, { op: 'freeFrames', pfn: F, count: 1 }]);
    expect(sys.abstract().frames.find((r) => r.pfn === F)?.use).toBe('free');
  });

  it('strict setDirectMapInvalid of a free frame is EPERM D6', () => {
    const sys = run(createImpl(setup()), [map(PO + FREE, FREE, 1)]);
    expect(step(sys, { op: 'setDirectMapInvalid', pfn: FREE, count: 1, flush: false })).toMatchObject({ ok: false, error: { errno: 'EPERM', arg: 'pfn', invariant: 'D6' } });
  });

  it('linux frees whatever the direct map and the TLBs say', () => {
    const sys = run(createImpl(setup('linux')), [map(PO + F, F, 1), map(VM, F, 1), access(0, VM), { op: 'setDirectMapInvalid', pfn: F, count: 1, flush: true }]);
    expect(step(sys, { op: 'freeFrames', pfn: F, count: 1 }).ok).toBe(true);
  });
});

describe('impl: linux flushes', () => {
  it('vunmap_range_noflush owes the range and frees no table; a huge map over the kept table purges one page, then frees it', () => {
    const sys = run(createImpl(setup('linux')), [map(VM, F, 1), map(VM + 5000, F + 1, 1), access(0, VM), access(1, VM + 5000), unmap(VM, 1, false)]);
    let s = sys.abstract();
    expect([s.pendingFlush, s.pendingTableFrees, s.tablesInUse]).toEqual([[{ vpn: VM, pages: 1, reason: 'unmap' }], 0, 5]);
    expect(walk(s)).toEqual([...filled4k(0, VM, 'current'), ...filled4k(1, VM + 5000, 'current')]);
    run(sys, [map(VM, HUGE_PFN, 512)]);
    s = sys.abstract();
    // flush_tlb_kernel_range(VM, VM + PAGE_SIZE - 1): the page's entries and debt gone, every cache empty, the PTE table free.
    expect([tlb(s), s.pendingFlush, s.walkCache ?? [], s.tablesInUse]).toEqual([[`cpu1 4K ${hex(VM + 5000)}`], [], [], 4]);
  });

  it('a CPA split is a flush_tlb_all: every TLB and cache empty after a protect that split', () => {
    const sys = run(createImpl(setup('linux')), [map(VM, HUGE_PFN, 512), map(VM + 4096, F, 1), access(0, VM), access(1, VM + 4096)]);
    run(sys, [{ op: 'protect', vpn: VM + 1, pages: 1, change: { write: false } }]);
    const s = sys.abstract();
    expect([s.tlb, s.walkCache ?? []]).toEqual([[], []]);
  });
});

/** The abstract state and the last outcome after `cs`, on the impl with `mutant` or the correct one. */
function outcome(cs: readonly Command[], mutant: MutantName | undefined, profile: Profile = 'strict'): { state: AbstractState; last: Result<unknown> } {
  const sys = createImpl(setup(profile), mutant === undefined ? {} : { mutant });
  let last: Result<unknown> = { ok: true, value: undefined };
  for (const c of cs) last = applyCommand(sys, c);
  return { state: sys.abstract(), last };
}

describe('impl: the TLB mutants do what they say', () => {
  const cases: { mutant: MutantName; profile?: Profile; cs: Command[]; differs: (good: ReturnType<typeof outcome>, bad: ReturnType<typeof outcome>) => void }[] = [
    {
      mutant: 'alias-flush-missed',
      cs: [map(PO + F, F, 1), map(VM, F, 1), access(0, PO + F, 'w'), { op: 'protect', vpn: VM, pages: 1, change: { write: false }, alias: true }],
      differs: (good, bad) => {
        expect(tlb(good.state)).toEqual([]);
        // The direct-map alias is read-only in the tables, writable in CPU 0's TLB.
        expect(tlb(bad.state)).toEqual([`cpu0 4K ${hex(PO + F)}`]);
      },
    },
    {
      mutant: 'split-keeps-large-tlb',
      cs: [map(VM, HUGE_PFN, 512), access(0, VM), { op: 'split', root: INIT_MM, vpn: VM }],
      differs: (good, bad) => {
        expect(tlb(good.state)).toEqual([]);
        expect(tlb(bad.state)).toEqual([`cpu0 2M ${hex(VM)}`]);
      },
    },
    {
      mutant: 'split-keeps-large-tlb',
      profile: 'linux',
      // Only the alias changes (the vmalloc page is read-only already): the alias walk's split is the one flush.
      cs: [
        map(PO + HUGE_PFN, HUGE_PFN, 512), { op: 'map', root: INIT_MM, vpn: VM, pfn: HUGE_PFN, pages: 1, prot: PAGE_KERNEL_RO }, access(1, PO + HUGE_PFN),
        { op: 'protect', vpn: VM, pages: 1, change: { write: false }, alias: true },
      ],
      differs: (good, bad) => {
        expect(tlb(good.state)).toEqual([]);
        expect(tlb(bad.state)).toEqual([`cpu1 2M ${hex(PO + HUGE_PFN)}`]);
      },
    },
    {
      mutant: 'remote-cpu-not-flushed',
      cs: [map(VM, F, 1), access(0, VM), access(1, VM), unmap(VM, 1)],
      differs: (good, bad) => {
        expect([tlb(good.state), good.state.walkCache ?? []]).toEqual([[], []]);
        expect(tlb(bad.state)).toEqual([`cpu1 4K ${hex(VM)}`]);
        expect(walk(bad.state)).toEqual(filled4k(1, VM, 'freed'));
      },
    },
    {
      mutant: 'walk-cache-survives-flush',
      cs: [map(VM, F, 1), access(0, VM), unmap(VM, 1)],
      differs: (good, bad) => {
        expect(good.state.walkCache ?? []).toEqual([]);
        expect(tlb(bad.state)).toEqual([]);
        expect(walk(bad.state)).toEqual(filled4k(0, VM, 'freed'));
      },
    },
    {
      mutant: 'table-freed-before-purge',
      profile: 'linux',
      cs: [map(VM, F, 1), access(0, VM), unmap(VM, 1, false), map(VM, HUGE_PFN, 512)],
      differs: (good, bad) => {
        expect([tlb(good.state), good.state.walkCache ?? [], good.state.pendingFlush]).toEqual([[], [], []]);
        expect(walk(bad.state)).toEqual([`cpu0 L1 ${hex(VM)} freed`, ...filled4k(0, VM, 'current').slice(1)]);
        expect(tlb(bad.state)).toEqual([`cpu0 4K ${hex(VM)}`]);
        expect(bad.state.pendingFlush).toEqual([{ vpn: VM, pages: 1, reason: 'unmap' }]);
      },
    },
    {
      mutant: 'gmem-freed-without-restore',
      cs: [map(PO + F, F, 1), { op: 'setDirectMapInvalid', pfn: F, count: 1, flush: true }, { op: 'freeFrames', pfn: F, count: 1 }],
      differs: (good, bad) => {
        expect(good.last).toMatchObject({ ok: false, error: { errno: 'EPERM', invariant: 'D6' } });
        expect(bad.last.ok).toBe(true);
        expect(bad.state.frames.find((r) => r.pfn === F)).toMatchObject({ use: 'free', noDirectMap: true });
      },
    },
    {
      mutant: 'noflush-no-obligation',
      cs: [map(VM, F, 1), unmap(VM, 1, false)],
      differs: (good, bad) => {
        expect(good.state.pendingFlush).toEqual([{ vpn: VM, pages: 1, reason: 'unmap' }]);
        expect(bad.state.pendingFlush).toEqual([]);
      },
    },
    {
      mutant: 'free-before-flush',
      cs: [map(VM, F, 1), access(0, VM), unmap(VM, 1, false)],
      differs: (good, bad) => {
        expect([walk(good.state), good.state.pendingTableFrees]).toEqual([filled4k(0, VM, 'unlinked'), 3]);
        expect([walk(bad.state), bad.state.pendingTableFrees]).toEqual([filled4k(0, VM, 'freed'), 0]);
      },
    },
  ];
  for (const c of cases) {
    it(`${c.mutant}${c.profile === 'linux' ? ' (linux)' : ''}`, () => {
      const good = outcome(c.cs, undefined, c.profile);
      const bad = outcome(c.cs, c.mutant, c.profile);
      c.differs(good, bad);
    });
  }
});

describe('impl: random TLB sequences hold every step to its postcondition (fixed seed)', () => {
  /** Where to map what: vmalloc pages over data frames, and direct-map pages over their own frames (the policy refuses the rest). */
  const places: readonly [Vpn, number][] = [[VM, F], [VM + 512, HUGE_PFN], [VM + 1024, F + 4], [VM + PAGES['1G'], HUGE_PFN + 512], [PO + F, F], [PO + HUGE_PFN, HUGE_PFN]];
  const place = fc.constantFrom(...places);
  const vpn = fc.tuple(place, fc.constantFrom(0, 1, 3, 511, 512)).map(([[v], off]) => v + off);
  const pages = fc.constantFrom(1, 2, 33, 34, 512, 513);
  const pfn = fc.constantFrom(F, F + 1, HUGE_PFN, FREE, FREE + 1);
  const cpu = fc.constantFrom(0, 1);
  const command: fc.Arbitrary<Command> = fc.oneof(
    { weight: 4, arbitrary: fc.record({ place, pages, maxPage: fc.constantFrom('4K' as const, '2M' as const, undefined) }).map((c) => map(c.place[0], c.place[1], c.pages, c.maxPage)) },
    { weight: 2, arbitrary: fc.record({ vpn, pages, flush: fc.boolean() }).map((c) => unmap(c.vpn, c.pages, c.flush)) },
    { weight: 5, arbitrary: fc.record({ cpu, vpn, kind: fc.constantFrom('r' as const, 'w' as const) }).map((c) => access(c.cpu, c.vpn, c.kind)) },
    { weight: 1, arbitrary: fc.record({ vpn, pages }).map((c): Command => ({ op: 'flush', ...c })) },
    { weight: 1, arbitrary: fc.record({ cpu, vpn, pages }).map((c): Command => ({ op: 'flushLocal', ...c })) },
    { weight: 1, arbitrary: fc.constant<Command>({ op: 'flushAll' }) },
    { weight: 1, arbitrary: vpn.map((v): Command => ({ op: 'split', root: INIT_MM, vpn: v })) },
    { weight: 1, arbitrary: vpn.map((v): Command => ({ op: 'collapse', root: INIT_MM, vpn: v, size: '2M' })) },
    { weight: 2, arbitrary: fc.record({ vpn, pages, write: fc.boolean(), alias: fc.boolean() }).map((c): Command => ({ op: 'protect', vpn: c.vpn, pages: c.pages, change: { write: c.write }, alias: c.alias })) },
    { weight: 1, arbitrary: fc.record({ pfn, count: fc.constantFrom(1, 2), flush: fc.boolean() }).map((c): Command => ({ op: 'setDirectMapInvalid', ...c })) },
    { weight: 1, arbitrary: fc.record({ pfn, count: fc.constantFrom(1, 2), flush: fc.boolean() }).map((c): Command => ({ op: 'setDirectMapDefault', ...c })) },
    { weight: 1, arbitrary: fc.record({ pfn, count: fc.constantFrom(1, 2) }).map((c): Command => ({ op: 'allocFrames', ...c })) },
    { weight: 1, arbitrary: fc.record({ pfn, count: fc.constantFrom(1, 2) }).map((c): Command => ({ op: 'freeFrames', ...c })) },
  );
  const sequences = fc.array(command, { minLength: 1, maxLength: 40 });

  it('strict', () => {
    fc.assert(
      fc.property(sequences, (cs) => {
        const sys = createImpl(setup());
        for (const c of cs) step(sys, c);
      }),
      fcParams({ numRuns: 80 }),
    );
  });

  it('linux: the tables and caches stay consistent, and no cached table is ever freed', () => {
    fc.assert(
      fc.property(sequences, (cs) => {
        const sys = createImpl(setup('linux'));
        for (const c of cs) {
          step(sys, c);
          expect((sys.abstract().walkCache ?? []).filter((w) => w.table === 'freed')).toEqual([]);
        }
      }),
      fcParams({ numRuns: 80 }),
    );
  });
});
