/**
 * The executable postconditions (spec/contracts/post): (a) the built-in model and impl
 * satisfy every relation on random command sequences from the booted kernel; (b) wrong
 * models, each breaking one sentence of a contract, are caught by that sentence's clause;
 * (c) each relation on tiny hand-built before/after pairs.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { commandsArb } from '../fuzz/arbitraries.ts';
import { runTrace } from '../fuzz/check.ts';
import { builtinTarget } from '../fuzz/defaults.ts';
import { createImpl } from '../impl/index.ts';
import { Model } from '../model/index.ts';
import { PAGES, X86_64_LAYOUT_4LEVEL as L, type Vpn } from '../spec/address.ts';
import { applyCommand, type Command } from '../spec/commands.ts';
import { postcondition, type PostMode } from '../spec/contracts/post/index.ts';
import { fail, OK, ok, type Result } from '../spec/errors.ts';
import { SCENARIOS } from '../spec/scenario.ts';
import { PAGE_KERNEL, PAGE_KERNEL_RO, type AbstractState, type FrameRun, type Leaf, type SystemConfig, type TlbEntry } from '../spec/state.ts';
import type { PageTableSystem, SystemSetup } from '../spec/system.ts';
import { fcParams } from './seed.ts';
import { leaf, stateOf } from './states.ts';

const kernel = SCENARIOS['kernel']!();
const V = L.vmallocStart;
const DM = L.pageOffset;
const MiB = 256;

/** The clauses the step breaks. */
function broken(before: AbstractState, c: Command, result: Result<unknown>, after: AbstractState, mode: PostMode = 'full'): string[] {
  return postcondition(before, c, result, after, mode).map((v) => v.clause);
}

/** Runs `commands` on `sys`, holding each step to its postcondition; the first step that breaks one, with its violations. */
function firstBroken(sys: PageTableSystem, commands: readonly Command[], mode: PostMode): string | null {
  let before = sys.abstract();
  for (const [k, c] of commands.entries()) {
    const r = applyCommand(sys, c);
    const after = sys.abstract();
    const v = postcondition(before, c, r, after, mode);
    if (v.length > 0) return `step ${k} ${JSON.stringify(c)}: ${v.map((x) => x.detail).join('; ')}`;
    before = after;
  }
  return null;
}

describe('(a) model and impl satisfy every relation', () => {
  const systems = { model: (s: SystemSetup) => new Model(s), impl: (s: SystemSetup) => createImpl(s) };
  // The small pool makes ENOMEM refusals common: each must leave the state as it was.
  it.each(['kernel', 'kernel-small-pool'])('on random sequences from the booted %s scenario, in full mode', (name) => {
    const scenario = SCENARIOS[name]!();
    fc.assert(
      fc.property(commandsArb(scenario, { maxCommands: 80 }), (commands) => {
        for (const [system, make] of Object.entries(systems)) {
          expect(firstBroken(make(scenario), [...scenario.boot, ...commands], 'full'), system).toBeNull();
        }
      }),
      fcParams({ numRuns: 30 }),
    );
  });
});

// ---- (b) wrong models ----

/** The booted model with some operations replaced by wrong ones (built from the model's own). */
function wrongModel(m: Model, ops: (m: Model) => Partial<PageTableSystem>): PageTableSystem {
  const wrong = ops(m);
  return new Proxy(m, {
    get: (target, key) => {
      const v: unknown = (wrong as Record<PropertyKey, unknown>)[key] ?? Reflect.get(target, key);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
}

function bootedModel(): Model {
  const m = new Model(kernel);
  for (const c of kernel.boot) applyCommand(m, c);
  return m;
}
const BOOTED = bootedModel();

/** The leaf range containing vpn in the model, or [vpn, +pages) when unmapped. */
function leafRange(m: Model, vpn: Vpn, pages = 1): { vpn: Vpn; pages: number } {
  const t = m.translate(0, vpn);
  return t.ok ? { vpn: t.value.leaf.vpn, pages: PAGES[t.value.leaf.size] } : { vpn, pages };
}

interface WrongCase {
  readonly name: string;
  /** The clause that must catch it. */
  readonly clause: string;
  /** Run on the correct model first. */
  readonly setup?: readonly Command[];
  readonly command: Command;
  readonly wrong: (m: Model) => Partial<PageTableSystem>;
}

const dmPage = (pfn: number): Vpn => DM + pfn;
const HUGE_VMALLOC = V + 2 * PAGES['2M'];
const FREE_FRAMES = 200 * MiB;

const WRONG: readonly WrongCase[] = [
  {
    name: 'map always maps 4K',
    clause: 'map.leaves',
    command: { op: 'map', root: 0, vpn: V + 16 * PAGES['2M'], pfn: FREE_FRAMES, pages: 2 * PAGES['2M'], prot: PAGE_KERNEL },
    wrong: (m) => ({ map: (root, vpn, pfn, pages, prot) => m.map(root, vpn, pfn, pages, prot, { maxPage: '4K' }) }),
  },
  {
    name: 'unmap removes a straddling huge leaf whole',
    clause: 'unmap.leaves',
    command: { op: 'unmap', root: 0, vpn: HUGE_VMALLOC + 100, pages: 10 },
    wrong: (m) => ({
      unmap: (root, vpn, pages) => {
        const first = leafRange(m, vpn);
        const last = leafRange(m, vpn + pages - 1);
        return m.unmap(root, first.vpn, last.vpn + last.pages - first.vpn);
      },
    }),
  },
  {
    name: 'protect forgets the direct-map alias',
    clause: 'protect.alias',
    command: { op: 'protect', vpn: V + 1, pages: 4, change: { write: false }, alias: true },
    wrong: (m) => ({ protect: (vpn, pages, change) => m.protect(vpn, pages, change, { alias: false }) }),
  },
  {
    name: 'protect splits a leaf whose prot does not change',
    clause: 'protect.leaves',
    // The direct-map alias of kernel text is read-only already.
    command: { op: 'protect', vpn: dmPage(16 * MiB) + 100, pages: 50, change: { write: false } },
    wrong: (m) => ({
      protect: (vpn, pages, change, opts) => {
        m.split(0, vpn);
        return m.protect(vpn, pages, change, opts);
      },
    }),
  },
  {
    name: 'set_direct_map_invalid_noflush owes no flush',
    clause: 'setDirectMapInvalid.obligations',
    command: { op: 'setDirectMapInvalid', pfn: FREE_FRAMES + 3, count: 1, flush: false },
    wrong: (m) => ({ setDirectMapInvalid: (pfn, count) => m.setDirectMapInvalid(pfn, count, { flush: true }) }),
  },
  {
    name: 'split drops global',
    clause: 'split.leaves',
    command: { op: 'split', root: 0, vpn: HUGE_VMALLOC },
    wrong: (m) => ({
      split: (root, vpn) => {
        const range = leafRange(m, vpn);
        const r = m.split(root, vpn);
        return r.ok ? m.protect(range.vpn, range.pages, { global: false }) : r;
      },
    }),
  },
  {
    name: 'collapse keeps the wrong frame',
    clause: 'collapse.leaves',
    setup: [{ op: 'split', root: 0, vpn: HUGE_VMALLOC }],
    command: { op: 'collapse', root: 0, vpn: HUGE_VMALLOC, size: '2M' },
    wrong: (m) => ({
      collapse: (root, vpn, size) => {
        const r = m.collapse(root, vpn, size);
        const t = m.translate(root, vpn);
        if (!r.ok || !t.ok) return r;
        const l = t.value.leaf;
        m.unmap(root, l.vpn, PAGES[size]);
        return m.map(root, l.vpn, l.pfn + PAGES[size], PAGES[size], l.prot);
      },
    }),
  },
  {
    name: 'access does not fill the TLB',
    clause: 'access.tlb',
    command: { op: 'access', cpu: 1, root: 0, vpn: dmPage(FREE_FRAMES), kind: 'r', mode: 'kernel' },
    wrong: (m) => ({
      access: (cpu, root, vpn, kind, mode) => {
        const r = m.access(cpu, root, vpn, kind, mode);
        const range = leafRange(m, vpn);
        m.flush(range.vpn, range.pages);
        return r;
      },
    }),
  },
  {
    name: 'access ignores a stale TLB entry',
    clause: 'access.hit',
    setup: [
      { op: 'access', cpu: 0, root: 0, vpn: dmPage(FREE_FRAMES), kind: 'r', mode: 'kernel' },
      { op: 'setDirectMapInvalid', pfn: FREE_FRAMES, count: 1, flush: false },
    ],
    command: { op: 'access', cpu: 0, root: 0, vpn: dmPage(FREE_FRAMES), kind: 'r', mode: 'kernel' },
    wrong: (m) => ({
      access: (cpu, root, vpn, kind, mode) => {
        m.flush(vpn, 1);
        return m.access(cpu, root, vpn, kind, mode);
      },
    }),
  },
  {
    name: 'flush does not discharge obligations',
    clause: 'flush.obligations',
    setup: [{ op: 'setDirectMapInvalid', pfn: FREE_FRAMES, count: 1, flush: false }],
    command: { op: 'flush', vpn: dmPage(FREE_FRAMES), pages: 1 },
    wrong: () => ({ flush: () => OK }),
  },
  {
    name: 'a refused map leaves a split behind',
    clause: 'map.refusal',
    command: { op: 'map', root: 0, vpn: HUGE_VMALLOC + 7, pfn: FREE_FRAMES, pages: 1, prot: PAGE_KERNEL },
    wrong: (m) => ({
      map: (root, vpn, pfn, pages, prot, opts) => {
        const r = m.map(root, vpn, pfn, pages, prot, opts);
        if (!r.ok) m.split(root, vpn);
        return r;
      },
    }),
  },
  {
    name: 'translate answers with the leaf\'s first frame',
    clause: 'translate.value',
    command: { op: 'translate', root: 0, vpn: HUGE_VMALLOC + 9 },
    wrong: (m) => ({
      translate: (root, vpn) => {
        const t = m.translate(root, vpn);
        return t.ok ? ok({ leaf: t.value.leaf, pfn: t.value.leaf.pfn }) : t;
      },
    }),
  },
];

describe('(b) wrong models are caught by the clause they break', () => {
  it.each(WRONG.map((w) => [w.name, w] as const))('%s', (_, w) => {
    for (const bug of [false, true]) {
      const m = BOOTED.clone();
      for (const c of w.setup ?? []) expect(applyCommand(m, c).ok, JSON.stringify(c)).toBe(true);
      const before = m.abstract();
      const sys = bug ? wrongModel(m, w.wrong) : m;
      const r = applyCommand(sys, w.command);
      const clauses = broken(before, w.command, r, sys.abstract());
      // The correct model passes the same step: it is the injected bug that breaks the clause.
      if (bug) expect(clauses).toContain(w.clause);
      else expect(clauses).toEqual([]);
    }
  });
});

describe('(b) the fuzzer holds both systems to the contracts', () => {
  it('reports a contract the model breaks (and the impl with it) as a postcondition failure naming system and clause', () => {
    const lazyFlush = (setup: SystemSetup): PageTableSystem => wrongModel(new Model(setup), () => ({ flush: () => OK }));
    const commands: Command[] = [
      { op: 'setDirectMapInvalid', pfn: FREE_FRAMES, count: 1, flush: false },
      { op: 'flush', vpn: dmPage(FREE_FRAMES), pages: 1 },
    ];
    const f = runTrace({ ...builtinTarget(kernel), makeModel: lazyFlush, makeImpl: lazyFlush, checkTables: null, commands }).failure;
    expect(f, f?.detail).toMatchObject({ kind: 'postcondition', phase: 'run', step: 1, check: 'full' });
    expect(f!.detail).toMatch(/^the model breaks flush's postcondition flush\.obligations/);
    expect(f!.witnesses[0]).toMatchObject({ vpn: dmPage(FREE_FRAMES), pages: 1 });
  });
});

// ---- (c) each relation on tiny hand-built states ----

const CONFIG: SystemConfig = { ...kernel.config, frames: 4096, tablePool: { pfn: 2048, count: 64 } };
const run = (pfn: number, count: number, noDirectMap = false): FrameRun => ({ pfn, count, use: pfn === 2048 ? 'pagetable' : 'data', sensitive: false, noDirectMap });
const FRAMES = [run(0, 2048), run(2048, 64), run(2112, 1984)];
/** Frames 0..2047 with noDirectMap on `pfn`. */
const framesWithout = (pfn: number): FrameRun[] => [run(0, pfn), run(pfn, 1, true), run(pfn + 1, 2047 - pfn), run(2048, 64), run(2112, 1984)];

/** The direct map of frames 0..511 in one 2M leaf, a lone direct-map page, a 4K and a 2M vmalloc leaf. */
const DM2M = leaf(DM, 0, '2M');
const DM4K = leaf(DM + 1000, 1000);
const V4K = leaf(V, 7);
const V2M = leaf(V + 512, 512, '2M');
const BASE = [DM2M, DM4K, V4K, V2M];

const tiny = (leaves: readonly Leaf[], more: Partial<AbstractState> = {}): AbstractState => {
  const s = stateOf(CONFIG, FRAMES, leaves);
  const pending = more.pendingTableFrees ?? 0;
  return { ...s, tablesInUse: s.tablesInUse + pending, ...more };
};
/** A 2M leaf as its 512 4K pieces, `edit` applied to piece i. */
const pieces = (l: Leaf, edit: (p: Leaf, i: number) => Leaf | null = (p) => p): Leaf[] =>
  Array.from({ length: 512 }, (_, i) => edit(leaf(l.vpn + i, l.pfn + i, '4K', l.prot), i)).filter((p): p is Leaf => p !== null);
const without = (...drop: Leaf[]): Leaf[] => BASE.filter((l) => !drop.includes(l));
const entry = (cpu: number, l: Leaf): TlbEntry => ({ cpu, root: 0, leaf: l });

describe('(c) map', () => {
  const c: Command = { op: 'map', root: 0, vpn: V + 1024, pfn: 1024, pages: 1024, prot: PAGE_KERNEL };
  const good = tiny([...BASE, leaf(V + 1024, 1024, '2M'), leaf(V + 1536, 1536, '2M')]);

  it('tiles the range with the largest leaves that fit', () => {
    expect(broken(tiny(BASE), c, OK, good)).toEqual([]);
    const small = Array.from({ length: 1024 }, (_, i) => leaf(V + 1024 + i, 1024 + i));
    expect(broken(tiny(BASE), c, OK, tiny([...BASE, ...small]))).toContain('map.leaves');
  });

  it('refuses an overlap with EEXIST, and a refusal changes nothing', () => {
    const overlap: Command = { ...c, vpn: V + 600, pages: 1 };
    expect(broken(tiny(BASE), overlap, fail('EEXIST', 'vpn', 'x'), tiny(BASE))).toEqual([]);
    expect(broken(tiny(BASE), overlap, OK, tiny(BASE))).toEqual(['map.eexist']);
    expect(broken(tiny(BASE), overlap, fail('EEXIST', 'vpn', 'x'), tiny(without(V4K)))).toContain('map.refusal');
  });

  it('names the first bad argument, and EPERM/ENOMEM as outcome.ts says', () => {
    const bad: Command = { ...c, pfn: 5000, prot: { ...PAGE_KERNEL, execUser: true } };
    expect(broken(tiny(BASE), bad, fail('EINVAL', 'prot', 'x'), tiny(BASE))).toEqual(['map.einval']);
    expect(broken(tiny(BASE), c, { ok: false, error: { errno: 'EPERM', arg: 'prot', invariant: 'P1', message: '' } }, tiny(BASE))).toEqual([]);
    expect(broken(tiny(BASE), c, fail('EPERM', 'prot', 'x'), tiny(BASE))).toEqual(['map.eperm']);
    expect(broken(tiny(BASE), c, fail('ENOENT', 'vpn', 'x'), tiny(BASE))).toEqual(['map.outcome']);
  });

  it('holds the rest to the frame condition: full everywhere, local by the count and the neighbours', () => {
    const moved = tiny([...BASE.map((l) => (l === DM4K ? { ...l, pfn: 1001 } : l)), leaf(V + 1024, 1024, '2M'), leaf(V + 1536, 1536, '2M')]);
    expect(broken(tiny(BASE), c, OK, moved, 'full')).toContain('map.frame');
    expect(broken(tiny(BASE), c, OK, moved, 'local')).toEqual([]);
    const extra = tiny([...good.roots[0]!.leaves, leaf(DM + 2000, 2000)]);
    expect(broken(tiny(BASE), c, OK, extra, 'local')).toContain('map.frame');
  });
});

describe('(c) unmap', () => {
  const c: Command = { op: 'unmap', root: 0, vpn: V + 522, pages: 2 };
  const tlb = [entry(0, V4K), entry(1, V2M)];
  const owed = [{ vpn: V + 520, pages: 8, reason: 'setDirectMapInvalid' }];
  const before = tiny(BASE, { tlb, pendingFlush: owed });
  const split = [...without(V2M), ...pieces(V2M, (p, i) => (i === 10 || i === 11 ? null : p))];
  const discharged = [{ vpn: V + 520, pages: 2, reason: 'setDirectMapInvalid' }, { vpn: V + 524, pages: 4, reason: 'setDirectMapInvalid' }];
  const good = tiny(split, { tlb: [entry(0, V4K)], pendingFlush: discharged });

  it('splits the straddled leaf, removes the pieces inside, flushes the range', () => {
    expect(broken(before, c, OK, good)).toEqual([]);
    expect(broken(before, c, OK, tiny(without(V2M), { tlb: [entry(0, V4K)], pendingFlush: discharged }))).toContain('unmap.leaves');
    expect(broken(before, c, OK, { ...good, tlb })).toEqual(['unmap.tlb']);
    expect(broken(before, c, OK, { ...good, pendingFlush: owed })).toEqual(['unmap.obligations']);
  });

  it('is ENOENT when nothing in the range is mapped', () => {
    expect(broken(before, { ...c, vpn: V + 4096 }, OK, before)).toEqual(['unmap.enoent']);
  });
});

describe('(c) protect', () => {
  it('splits only where the prot changes', () => {
    const same: Command = { op: 'protect', vpn: V + 522, pages: 2, change: { write: true } };
    expect(broken(tiny(BASE), same, OK, tiny(BASE))).toEqual([]);
    expect(broken(tiny(BASE), same, OK, tiny([...without(V2M), ...pieces(V2M)]))).toContain('protect.leaves');
    const ro: Command = { ...same, change: { write: false } };
    const changed = pieces(V2M, (p, i) => (i === 10 || i === 11 ? { ...p, prot: PAGE_KERNEL_RO } : p));
    expect(broken(tiny(BASE), ro, OK, tiny([...without(V2M), ...changed]))).toEqual([]);
  });

  it('carries write to the direct-map alias, by the same rule, and flushes it', () => {
    const c: Command = { op: 'protect', vpn: V, pages: 1, change: { write: false, exec: false }, alias: true };
    const alias = pieces(DM2M, (p, i) => (i === 7 ? { ...p, prot: PAGE_KERNEL_RO } : p));
    const v4k = { ...V4K, prot: PAGE_KERNEL_RO };
    const before = tiny(BASE, { tlb: [entry(0, DM2M)] });
    expect(broken(before, c, OK, tiny([...without(DM2M, V4K), ...alias, v4k]))).toEqual([]);
    expect(broken(before, c, OK, tiny([...without(V4K), v4k]))).toContain('protect.alias');
    expect(broken(before, c, OK, tiny([...without(DM2M, V4K), ...alias, v4k], { tlb: [entry(0, DM2M)] }))).toEqual(['protect.tlb']);
  });

  it('is ENOENT when a page of the range is unmapped', () => {
    expect(broken(tiny(BASE), { op: 'protect', vpn: V, pages: 2, change: { write: false } }, OK, tiny(BASE))).toEqual(['protect.enoent']);
  });
});

describe('(c) set_direct_map_*', () => {
  const invalid: Command = { op: 'setDirectMapInvalid', pfn: 5, count: 1, flush: false };
  const removed = [...without(DM2M), ...pieces(DM2M, (p, i) => (i === 5 ? null : p))];
  const owed = [{ vpn: DM + 5, pages: 1, reason: 'setDirectMapInvalid' }];
  const afterInvalid = tiny(removed, { frames: framesWithout(5), pendingFlush: owed });

  it('invalid: removes the page, sets noDirectMap, owes the flush', () => {
    expect(broken(tiny(BASE), invalid, OK, afterInvalid)).toEqual([]);
    expect(broken(tiny(BASE), invalid, OK, { ...afterInvalid, pendingFlush: [] })).toEqual(['setDirectMapInvalid.obligations']);
    expect(broken(tiny(BASE), invalid, OK, { ...afterInvalid, frames: FRAMES })).toEqual(['setDirectMapInvalid.frames']);
    expect(broken(tiny(BASE), { ...invalid, pfn: 600 }, OK, tiny(BASE))).toEqual(['setDirectMapInvalid.enoent']);
  });

  it('invalid without flush leaves the table it empties pending, until a flush there', () => {
    const lone: Command = { ...invalid, pfn: 1000 };
    const pendingOne = tiny(without(DM4K), { frames: framesWithout(1000), pendingFlush: [{ vpn: DM + 1000, pages: 1, reason: 'setDirectMapInvalid' }], pendingTableFrees: 1 });
    expect(broken(tiny(BASE), lone, OK, pendingOne)).toEqual([]);
    expect(broken(tiny(BASE), lone, OK, { ...pendingOne, pendingTableFrees: 0, tablesInUse: pendingOne.tablesInUse - 1 })).toEqual(['setDirectMapInvalid.tables']);
    const flush: Command = { op: 'flush', vpn: DM + 1000, pages: 1 };
    const released = { ...pendingOne, pendingFlush: [], pendingTableFrees: 0, tablesInUse: pendingOne.tablesInUse - 1 };
    expect(broken(pendingOne, flush, OK, released)).toEqual([]);
    expect(broken(pendingOne, flush, OK, { ...pendingOne, pendingFlush: [] })).toEqual(['flush.tables']);
  });

  it('default: maps the page 4K PAGE_KERNEL, clears noDirectMap, merges the debt with its neighbour', () => {
    const c: Command = { op: 'setDirectMapDefault', pfn: 5, count: 1, flush: false };
    const before = { ...afterInvalid, pendingFlush: [{ vpn: DM + 6, pages: 3, reason: 'setDirectMapInvalid' }] };
    const merged = [{ vpn: DM + 5, pages: 4, reason: 'setDirectMapDefault+setDirectMapInvalid' }];
    const good = tiny([...removed, leaf(DM + 5, 5)], { pendingFlush: merged });
    expect(broken(before, c, OK, good)).toEqual([]);
    expect(broken(before, c, OK, { ...good, frames: framesWithout(5) })).toEqual(['setDirectMapDefault.frames']);
    expect(broken(before, c, OK, { ...good, pendingFlush: [before.pendingFlush[0]!, ...owed].sort((a, b) => a.vpn - b.vpn) })).toEqual(['setDirectMapDefault.obligations']);
    expect(broken(before, { ...c, pfn: 6 }, OK, before)).toEqual(['setDirectMapDefault.eexist']);
  });
});

describe('(c) split and collapse', () => {
  const split: Command = { op: 'split', root: 0, vpn: V + 515 };
  const after = tiny([...without(V2M), ...pieces(V2M)]);

  it('split: 512 leaves of the next size down, attributes kept', () => {
    expect(broken(tiny(BASE), split, OK, after)).toEqual([]);
    expect(broken(tiny(BASE), split, OK, tiny([...without(V2M), ...pieces(V2M, (p) => ({ ...p, prot: { ...p.prot, global: false } }))]))).toEqual(['split.leaves']);
    expect(broken(tiny(BASE), { ...split, vpn: V }, OK, tiny(BASE))).toEqual(['split.small']);
  });

  it('collapse: one leaf at the first frame, or EINVAL when the block is not uniform', () => {
    const c: Command = { op: 'collapse', root: 0, vpn: V + 515, size: '2M' };
    expect(broken(after, c, OK, tiny(BASE))).toEqual([]);
    expect(broken(after, c, OK, tiny([...without(V2M), { ...V2M, pfn: 1024 }]))).toEqual(['collapse.leaves']);
    const mixed = tiny([...without(V2M), ...pieces(V2M, (p, i) => (i === 3 ? { ...p, prot: PAGE_KERNEL_RO } : p))]);
    expect(broken(mixed, c, fail('EINVAL', 'vpn', 'x'), mixed)).toEqual([]);
    expect(broken(mixed, c, OK, tiny(BASE))).toEqual(['collapse.uniform']);
  });
});

describe('(c) translate, access, flush, flushAll', () => {
  it('translate: the leaf and the frame of vpn in it', () => {
    const c: Command = { op: 'translate', root: 0, vpn: V + 515 };
    expect(broken(tiny(BASE), c, ok({ leaf: V2M, pfn: 515 }), tiny(BASE))).toEqual([]);
    expect(broken(tiny(BASE), c, ok({ leaf: V2M, pfn: 512 }), tiny(BASE))).toEqual(['translate.value']);
  });

  it('access: a miss walks and fills, a hit uses the entry even when stale, faults by permission', () => {
    const read: Command = { op: 'access', cpu: 1, root: 0, vpn: V + 515, kind: 'r', mode: 'kernel' };
    const reached = { fault: false, translation: { leaf: V2M, pfn: 515 }, fromTlb: false } as const;
    const walked = ok(reached);
    expect(broken(tiny(BASE), read, walked, tiny(BASE, { tlb: [entry(1, V2M)] }))).toEqual([]);
    expect(broken(tiny(BASE), read, walked, tiny(BASE))).toEqual(['access.tlb']);
    const stale = leaf(V + 4096, 9);
    const cached = tiny(BASE, { tlb: [entry(0, stale)] });
    const again: Command = { op: 'access', cpu: 0, root: 0, vpn: V + 4096, kind: 'r', mode: 'kernel' };
    expect(broken(cached, again, ok({ fault: false, translation: { leaf: stale, pfn: 9 }, fromTlb: true }), cached)).toEqual([]);
    expect(broken(cached, again, ok({ fault: 'not-present' }), cached)).toEqual(['access.hit']);
    const fetch: Command = { ...read, kind: 'x' };
    expect(broken(tiny(BASE), fetch, ok({ fault: 'protection' }), tiny(BASE, { tlb: [entry(1, V2M)] }))).toEqual([]);
    expect(broken(tiny(BASE), fetch, walked, tiny(BASE, { tlb: [entry(1, V2M)] }))).toEqual(['access.permission']);
  });

  it('flush: entries meeting the range go on every CPU, debts there are paid', () => {
    const c: Command = { op: 'flush', vpn: V + 520, pages: 8 };
    const before = tiny(BASE, { tlb: [entry(0, V4K), entry(1, V2M)], pendingFlush: [{ vpn: V + 500, pages: 100, reason: 'x' }] });
    const paid = [{ vpn: V + 500, pages: 20, reason: 'x' }, { vpn: V + 528, pages: 72, reason: 'x' }];
    expect(broken(before, c, OK, { ...before, tlb: [entry(0, V4K)], pendingFlush: paid })).toEqual([]);
    expect(broken(before, c, OK, { ...before, tlb: [entry(0, V4K)] })).toEqual(['flush.obligations']);
    expect(broken(before, c, OK, { ...before, pendingFlush: paid })).toEqual(['flush.tlb']);
  });

  it('flushAll: every TLB and obligation emptied', () => {
    const before = tiny(BASE, { tlb: [entry(0, V4K)], pendingFlush: [{ vpn: V, pages: 1, reason: 'x' }] });
    expect(broken(before, { op: 'flushAll' }, OK, tiny(BASE))).toEqual([]);
    expect(broken(before, { op: 'flushAll' }, OK, { ...before, pendingFlush: [] })).toEqual(['flushAll.tlb']);
  });
});

describe('(c) operations without a contract', () => {
  it('isolation operations: a refusal changes nothing', () => {
    const c: Command = { op: 'ptiClone', vpn: V, pages: 1, level: 'pte' };
    const refused = fail('EINVAL', 'op', 'no isolation');
    expect(broken(tiny(BASE), c, refused, tiny(BASE))).toEqual([]);
    expect(broken(tiny(BASE), c, refused, tiny(without(V4K)))).toContain('ptiClone.refusal');
  });
});
