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
import { PAGES, X86_64_LAYOUT_4LEVEL as L, leafLevel, pagesPerEntry, type Level, type Vpn } from '../spec/address.ts';
import { applyCommand, type Command } from '../spec/commands.ts';
import { rangeFlush } from '../spec/contracts/post/effect.ts';
import { postcondition, type PostMode } from '../spec/contracts/post/index.ts';
import { fail, OK, ok, type Result } from '../spec/errors.ts';
import { SCENARIOS } from '../spec/scenario.ts';
import { tableFootprint } from '../spec/footprint.ts';
import {
  PAGE_KERNEL, PAGE_KERNEL_RO, PAGE_KERNEL_ROX, type AbstractState, type CachedTableState, type FrameRun, type Leaf, type SystemConfig, type TlbEntry, type WalkCacheEntry,
} from '../spec/state.ts';
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

/**
 * The clause the fuzzer reports (the first violation): a wrong collapse also changes the
 * leaves beside the windows, so the frame clause follows it.
 */
function reported(before: AbstractState, c: Command, result: Result<unknown>, after: AbstractState, mode: PostMode = 'full'): string | undefined {
  return broken(before, c, result, after, mode)[0];
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

describe('(a) a local check sees past a window into the next', () => {
  it('set_memory_np with alias next to non-present image pages: the new entry is in the request\'s own window, not beside the alias one', () => {
    // Found by the seed-4 no-GB-pages campaign: the entry after the direct-map alias window
    // was the new one, inside the image window that follows it.
    const IMG = L.kernelText + 0x1394;
    const steps: Command[] = [
      { op: 'protect', vpn: IMG + 3, pages: 6, change: { present: false } },
      { op: 'protect', vpn: IMG, pages: 1, change: { present: false }, alias: true, collapse: true },
    ];
    for (const make of [(s: SystemSetup) => new Model(s), (s: SystemSetup) => createImpl(s)]) {
      expect(firstBroken(make(kernel), [...kernel.boot, ...steps], 'local')).toBeNull();
    }
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
    name: 'protect ignores present: false',
    clause: 'protect.leaves',
    command: { op: 'protect', vpn: HUGE_VMALLOC + 100, pages: 2, change: { present: false } },
    wrong: (m) => ({ protect: (vpn, pages, change, opts) => m.protect(vpn, pages, { ...change, present: true }, opts) }),
  },
  {
    name: 'protect with collapse collapses nothing',
    clause: 'protect.collapse',
    setup: [
      { op: 'protect', vpn: HUGE_VMALLOC, pages: PAGES['2M'], change: { write: false } },
      { op: 'split', root: 0, vpn: HUGE_VMALLOC },
    ],
    command: { op: 'protect', vpn: HUGE_VMALLOC + 7, pages: 3, change: { write: false }, collapse: true },
    wrong: (m) => ({ protect: (vpn, pages, change) => m.protect(vpn, pages, change, { collapse: false }) }),
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
const byVpn = (a: Leaf, b: Leaf): number => a.vpn - b.vpn;
/** A tiny state whose root 0 also holds the non-present entries `np`, tables counted over both kinds. */
const tinyNp = (leaves: readonly Leaf[], np: readonly Leaf[], more: Partial<AbstractState> = {}): AbstractState => {
  const s = tiny(leaves);
  const nonPresent = [...np].sort(byVpn);
  const tables = tableFootprint(CONFIG.levels, [...s.roots[0]!.leaves, ...nonPresent].sort(byVpn)) + (more.pendingTableFrees ?? 0);
  return { ...s, roots: [{ ...s.roots[0]!, nonPresent }], tablesInUse: tables, ...more };
};
/** The 4K pieces of a 2M leaf, split in two lists by `np(i)`: the present ones and the non-present ones, `edit` applied to each. */
const piecesNp = (l: Leaf, np: (i: number) => boolean, edit: (p: Leaf, i: number) => Leaf = (p) => p): [Leaf[], Leaf[]] => {
  const all = pieces(l, (p, i) => edit(p, i));
  return [all.filter((_, i) => !np(i)), all.filter((_, i) => np(i))];
};
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

describe('(c) protect on entries of both kinds', () => {
  const RO = PAGE_KERNEL_RO;
  const np: Command = { op: 'protect', vpn: V + 522, pages: 2, change: { present: false } };
  const [kept, gone] = piecesNp(V2M, (i) => i === 10 || i === 11);
  const hidden = tinyNp([...without(V2M), ...kept], gone);

  it('present: false makes the pages non-present, frame and prot kept, splitting only there', () => {
    expect(broken(tiny(BASE), np, OK, hidden)).toEqual([]);
    expect(broken(tiny(BASE), np, OK, hidden, 'local')).toEqual([]);
    // A non-present entry left present.
    expect(broken(tiny(BASE), np, OK, tiny([...without(V2M), ...pieces(V2M)]))).toEqual(['protect.leaves']);
    expect(broken(tiny(BASE), np, OK, tiny([...without(V2M), ...pieces(V2M)]), 'local')).toEqual(['protect.leaves']);
    // Its prot not kept.
    expect(broken(tiny(BASE), np, OK, tinyNp([...without(V2M), ...kept], gone.map((l) => ({ ...l, prot: RO }))))).toEqual(['protect.leaves']);
    // A whole leaf in the range goes non-present whole.
    const whole: Command = { ...np, vpn: V, pages: 1 };
    expect(broken(tiny(BASE), whole, OK, tinyNp(without(V4K), [V4K]))).toEqual([]);
    expect(broken(tiny(BASE), whole, OK, tinyNp(without(V4K), [{ ...V4K, pfn: 8 }]))).toEqual(['protect.leaves']);
  });

  it('present: true makes them present again; any other change applies to non-present entries and keeps them so', () => {
    const shown = tiny([...without(V2M), ...pieces(V2M)]);
    expect(broken(hidden, { ...np, change: { present: true } }, OK, shown)).toEqual([]);
    expect(broken(hidden, { ...np, change: { present: true } }, OK, hidden)).toEqual(['protect.leaves']);
    const ro: Command = { ...np, change: { write: false } };
    const roHidden = tinyNp([...without(V2M), ...kept], gone.map((l) => ({ ...l, prot: RO })));
    expect(broken(hidden, ro, OK, roHidden)).toEqual([]);
    expect(broken(hidden, ro, OK, tiny([...without(V2M), ...pieces(V2M, (p, i) => (i === 10 || i === 11 ? { ...p, prot: RO } : p))]))).toEqual(['protect.leaves']);
  });

  it('is ENOENT only where a page has no entry of either kind', () => {
    expect(broken(hidden, np, fail('ENOENT', 'vpn', 'x'), hidden)).toEqual(['protect.outcome']);
    expect(broken(hidden, { ...np, vpn: V + 1 }, fail('ENOENT', 'vpn', 'x'), hidden)).toEqual([]);
  });

  it('holds both lists outside the windows to the frame condition: a leaf there turned non-present is caught', () => {
    const c: Command = { op: 'protect', vpn: V, pages: 1, change: { write: false } };
    const good = tiny([...without(V4K), { ...V4K, prot: RO }]);
    expect(broken(tiny(BASE), c, OK, good)).toEqual([]);
    const moved = tinyNp([...without(V4K, DM4K), { ...V4K, prot: RO }], [DM4K]);
    expect(broken(tiny(BASE), c, OK, moved, 'full')).toEqual(['protect.frame']);
    expect(broken(tiny(BASE), c, OK, moved, 'local')).toEqual(['protect.frame']);
    // And a non-present entry outside them made present again.
    const before = tinyNp(without(DM4K), [DM4K]);
    expect(broken(before, c, OK, tinyNp([...without(V4K, DM4K), { ...V4K, prot: RO }], [DM4K]), 'local')).toEqual([]);
    expect(broken(before, c, OK, good, 'local')).toEqual(['protect.frame']);
  });

  it('kernel4k: every page of the range in a 4K kernel4k entry, the pieces outside by the split rule', () => {
    const K4 = { ...PAGE_KERNEL, kernel4k: true };
    const G = V + PAGES['1G'];
    const before = tiny([...BASE, leaf(G, 0, '1G')]);
    const c: Command = { op: 'protect', vpn: G + 512 + 5, pages: 1, change: { kernel4k: true } };
    const bigs = Array.from({ length: 512 }, (_, j) => leaf(G + 512 * j, 512 * j, '2M')).filter((_, j) => j !== 1);
    const block1 = leaf(G + 512, 512, '2M');
    expect(broken(before, c, OK, tiny([...BASE, ...bigs, ...pieces(block1, (p, i) => (i === 5 ? { ...p, prot: K4 } : p))]))).toEqual([]);
    // kernel4k missing on the page.
    expect(broken(before, c, OK, tiny([...BASE, ...bigs, ...pieces(block1)]))).toEqual(['protect.kernel4k']);
    // A piece outside split further than the split rule says.
    const over = [...bigs.filter((l) => l.vpn !== G + 1024), ...pieces(leaf(G + 1024, 1024, '2M')), ...pieces(block1, (p, i) => (i === 5 ? { ...p, prot: K4 } : p))];
    expect(broken(before, c, OK, tiny([...BASE, ...over]))).toEqual(['protect.leaves']);
    // A leaf wholly inside the range is split all the same.
    const all: Command = { op: 'protect', vpn: V2M.vpn, pages: 512, change: { kernel4k: true } };
    expect(broken(tiny(BASE), all, OK, tiny([...without(V2M), ...pieces(V2M, (p) => ({ ...p, prot: K4 }))]))).toEqual([]);
    expect(broken(tiny(BASE), all, OK, tiny([...without(V2M), { ...V2M, prot: K4 }]))).toEqual(['protect.kernel4k']);
    expect(broken(tiny(BASE), all, OK, tiny([...without(V2M), ...pieces(V2M, (p, i) => (i === 400 ? p : { ...p, prot: K4 }))]), 'local')).toEqual(['protect.kernel4k']);
  });

  it('alias: write and cache only, never present; the frames of non-present entries have aliases too', () => {
    const c: Command = { op: 'protect', vpn: V, pages: 1, change: { present: false, write: false }, alias: true };
    const aliasRo = pieces(DM2M, (p, i) => (i === 7 ? { ...p, prot: RO } : p));
    const good = tinyNp([...without(DM2M, V4K), ...aliasRo], [{ ...V4K, prot: RO }]);
    expect(broken(tiny(BASE), c, OK, good)).toEqual([]);
    const aliasGone = tinyNp([...without(DM2M, V4K), ...aliasRo.filter((_, i) => i !== 7)], [{ ...V4K, prot: RO }, aliasRo[7]!]);
    expect(broken(tiny(BASE), c, OK, aliasGone)).toEqual(['protect.alias']);
    // V4K is non-present now: its frame's direct-map page follows a write change still.
    const rw: Command = { op: 'protect', vpn: V, pages: 1, change: { write: true }, alias: true };
    expect(broken(good, rw, OK, tinyNp([...without(DM2M, V4K), ...pieces(DM2M)], [V4K]))).toEqual([]);
    expect(broken(good, rw, OK, tinyNp([...without(DM2M, V4K), ...aliasRo], [V4K]))).toEqual(['protect.alias']);
  });

  it('frames: a memtype changed is a change of the frames (strict never changes one)', () => {
    const c: Command = { op: 'protect', vpn: V, pages: 1, change: { cache: 'WC' } };
    const wc = tiny([...without(V4K), { ...V4K, prot: { ...PAGE_KERNEL, cache: 'WC' } }]);
    expect(broken(tiny(BASE), c, OK, wc)).toEqual([]);
    const reserved: FrameRun[] = [run(0, 7), { ...run(7, 1), memtype: 'WC' }, run(8, 2040), run(2048, 64), run(2112, 1984)];
    expect(broken(tiny(BASE), c, OK, { ...wc, frames: reserved })).toEqual(['protect.frames']);
    const before = { ...tiny(BASE), frames: reserved };
    expect(broken(before, { ...c, change: { cache: 'WB' } }, OK, tiny(BASE))).toEqual(['protect.frames']);
  });
});

describe('(c) protect with collapse (set_memory_rox)', () => {
  const ROX = PAGE_KERNEL_ROX;
  const rox: Command = { op: 'protect', vpn: V + 512, pages: 10, change: { write: false, exec: true }, collapse: true };
  // V2M as 4K leaves: the first ten RW NX, the rest ROX already.
  const split = tiny([...without(V2M), ...pieces(V2M, (p, i) => (i < 10 ? p : { ...p, prot: ROX }))]);
  const collapsed = tiny([...without(V2M), { ...V2M, prot: ROX }]);
  const allRox = tiny([...without(V2M), ...pieces(V2M, (p) => ({ ...p, prot: ROX }))]);

  it('a 2M block of 512 like 4K leaves after the change becomes one 2M leaf, its table freed', () => {
    for (const mode of ['full', 'local'] as const) {
      expect(broken(split, rox, OK, collapsed, mode)).toEqual([]);
      expect(broken(split, rox, OK, allRox, mode)).toEqual(['protect.collapse']);
      expect(broken(split, rox, OK, { ...collapsed, tablesInUse: split.tablesInUse }, mode)).toEqual(['protect.tables']);
    }
    // Without collapse, or without PSE, nothing collapses.
    expect(broken(split, { ...rox, collapse: false }, OK, allRox)).toEqual([]);
    const noPse = { ...split, config: { ...CONFIG, features: { pse: false, gbpages: false } } };
    expect(broken(noPse, rox, OK, { ...allRox, config: noPse.config })).toEqual([]);
    expect(reported(noPse, rox, OK, { ...collapsed, config: noPse.config })).toBe('protect.collapse');
  });

  it('flushes the collapsed block, and judges the pool before the collapse', () => {
    const piece = leaf(V + 612, 612, '4K', ROX);
    expect(broken({ ...split, tlb: [entry(0, piece)] }, rox, OK, collapsed)).toEqual([]);
    expect(broken({ ...split, tlb: [entry(0, piece)] }, rox, OK, { ...collapsed, tlb: [entry(0, piece)] })).toEqual(['protect.tlb']);
    const tight = { ...split, config: { ...CONFIG, tablePool: { pfn: 2048, count: collapsed.tablesInUse } } };
    expect(broken(tight, rox, OK, { ...collapsed, config: tight.config })).toEqual(['protect.tables']);
    expect(broken(tight, rox, fail('ENOMEM', 'tablePool', 'x'), tight)).toEqual([]);
  });

  it('never collapses over a kernel4k page', () => {
    // Page 300 was set_memory_4k'd: ROX and kernel4k, so its prot differs from the rest.
    const K4 = { ...ROX, kernel4k: true };
    const before = tiny([...without(V2M), ...pieces(V2M, (p, i) => (i === 300 ? { ...p, prot: K4 } : i < 10 ? p : { ...p, prot: ROX }))]);
    const after = tiny([...without(V2M), ...pieces(V2M, (p, i) => ({ ...p, prot: i === 300 ? K4 : ROX }))]);
    expect(broken(before, rox, OK, after)).toEqual([]);
    expect(reported(before, rox, OK, collapsed)).toBe('protect.collapse');
    expect(reported(before, rox, OK, collapsed, 'local')).toBe('protect.collapse');
    // Nor over a block all of whose pages are kept 4K.
    const k4 = (p: Leaf): Leaf => ({ ...p, prot: { ...ROX, kernel4k: true } });
    const allKept = tiny([...without(V2M), ...pieces(V2M, k4)]);
    expect(broken(allKept, rox, OK, allKept)).toEqual([]);
    expect(reported(allKept, rox, OK, tiny([...without(V2M), k4(V2M)]))).toBe('protect.collapse');
  });

  it('right after a 2M collapse, the 1G block around it collapses when it is 512 like 2M leaves', () => {
    const G = V + PAGES['1G'];
    const bigs = Array.from({ length: 512 }, (_, j) => leaf(G + 512 * j, 512 * j, '2M', ROX));
    const before = tiny([...BASE, ...bigs.filter((_, j) => j !== 3), ...pieces(leaf(G + 3 * 512, 3 * 512, '2M'))]);
    const c: Command = { op: 'protect', vpn: G + 3 * 512, pages: 512, change: { write: false, exec: true }, collapse: true };
    const giga = tiny([...BASE, leaf(G, 0, '1G', ROX)]);
    for (const mode of ['full', 'local'] as const) {
      expect(broken(before, c, OK, giga, mode)).toEqual([]);
      expect(broken(before, c, OK, tiny([...BASE, ...bigs]), mode)).toEqual(['protect.collapse']);
    }
    const noGb = { ...before, config: { ...CONFIG, features: { pse: true, gbpages: false } } };
    expect(broken(noGb, c, OK, { ...tiny([...BASE, ...bigs]), config: noGb.config })).toEqual([]);
    expect(reported(noGb, c, OK, { ...giga, config: noGb.config })).toBe('protect.collapse');
    // No 2M collapse, no 1G one: the block's leaves were 2M already.
    const already = tiny([...BASE, ...bigs.map((l, j) => (j === 3 ? { ...l, prot: PAGE_KERNEL } : l))]);
    expect(broken(already, c, OK, tiny([...BASE, ...bigs]))).toEqual([]);
    expect(reported(already, c, OK, giga)).toBe('protect.collapse');
  });
});

describe('(c) map, unmap and set_direct_map_* among non-present entries', () => {
  const [kept, gone] = piecesNp(V2M, (i) => i === 10 || i === 11);
  const hidden = tinyNp([...without(V2M), ...kept], gone);

  it('map over a non-present entry is EEXIST', () => {
    const c: Command = { op: 'map', root: 0, vpn: V + 522, pfn: 100, pages: 1, prot: PAGE_KERNEL };
    expect(broken(hidden, c, fail('EEXIST', 'vpn', 'x'), hidden)).toEqual([]);
    expect(broken(hidden, c, OK, hidden)).toEqual(['map.eexist']);
  });

  it('unmap removes entries of both kinds, and is ENOENT only where there is neither', () => {
    const c: Command = { op: 'unmap', root: 0, vpn: V + 522, pages: 2 };
    const removed = tiny([...without(V2M), ...kept]);
    expect(broken(hidden, c, OK, removed)).toEqual([]);
    expect(broken(hidden, c, OK, hidden)).toEqual(['unmap.leaves']);
    expect(broken(hidden, c, fail('ENOENT', 'vpn', 'x'), hidden)).toEqual(['unmap.outcome']);
    const wider: Command = { ...c, vpn: V + 520, pages: 8 };
    expect(broken(hidden, wider, OK, tiny([...without(V2M), ...kept.filter((l) => l.vpn < V + 520 || l.vpn >= V + 528)]))).toEqual([]);
  });

  it('set_direct_map_*: default is EEXIST on a non-present page, invalid ENOENT; entries beside them are held to the frame condition', () => {
    const [dmKept, dmGone] = piecesNp(DM2M, (i) => i === 5);
    const before = tinyNp([...without(DM2M), ...dmKept], dmGone);
    const dflt: Command = { op: 'setDirectMapDefault', pfn: 5, count: 1, flush: true };
    expect(broken(before, dflt, fail('EEXIST', 'pfn', 'x'), before)).toEqual([]);
    expect(broken(before, dflt, OK, { ...tiny([...without(DM2M), ...pieces(DM2M)]), frames: FRAMES })).toEqual(['setDirectMapDefault.eexist']);
    const invalid: Command = { op: 'setDirectMapInvalid', pfn: 5, count: 1, flush: true };
    expect(broken(before, invalid, fail('ENOENT', 'pfn', 'x'), before)).toEqual([]);
    const next: Command = { ...invalid, pfn: 6 };
    const good = { ...tinyNp([...without(DM2M), ...dmKept.filter((l) => l.vpn !== DM + 6)], dmGone), frames: framesWithout(6) };
    expect(broken(before, next, OK, good)).toEqual([]);
    const lost = { ...tiny([...without(DM2M), ...dmKept.filter((l) => l.vpn !== DM + 6)]), frames: framesWithout(6) };
    expect(broken(before, next, OK, lost, 'full')).toEqual(['setDirectMapInvalid.frame']);
    expect(broken(before, next, OK, lost, 'local')).toContain('setDirectMapInvalid.frame');
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

  it('collapse: EINVAL when the leaves are kept 4K (kernel4k), and ENOENT over a non-present entry', () => {
    const c: Command = { op: 'collapse', root: 0, vpn: V + 515, size: '2M' };
    const k4 = (p: Leaf): Leaf => ({ ...p, prot: { ...p.prot, kernel4k: true } });
    const kept = tiny([...without(V2M), ...pieces(V2M, k4)]);
    expect(broken(kept, c, fail('EINVAL', 'vpn', 'x'), kept)).toEqual([]);
    expect(broken(kept, c, OK, tiny([...without(V2M), k4(V2M)]))).toEqual(['collapse.kernel4k']);
    const [present, np] = piecesNp(V2M, (i) => i === 9);
    const hidden = tinyNp([...without(V2M), ...present], np);
    expect(broken(hidden, c, fail('ENOENT', 'vpn', 'x'), hidden)).toEqual([]);
    expect(broken(hidden, c, OK, tiny(BASE))).toEqual(['collapse.enoent']);
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
    // A walk also caches the table entries above the leaf (walkOf, below).
    expect(broken(tiny(BASE), read, walked, tiny(BASE, { tlb: [entry(1, V2M)], walkCache: walkOf(1, V2M) }))).toEqual([]);
    // Neither the TLB entry nor the cached table entries: both are the fill clause's.
    expect(broken(tiny(BASE), read, walked, tiny(BASE))).toEqual(['access.tlb', 'access.tlb']);
    const stale = leaf(V + 4096, 9);
    const cached = tiny(BASE, { tlb: [entry(0, stale)] });
    const again: Command = { op: 'access', cpu: 0, root: 0, vpn: V + 4096, kind: 'r', mode: 'kernel' };
    expect(broken(cached, again, ok({ fault: false, translation: { leaf: stale, pfn: 9 }, fromTlb: true }), cached)).toEqual([]);
    expect(broken(cached, again, ok({ fault: 'not-present' }), cached)).toEqual(['access.hit']);
    const fetch: Command = { ...read, kind: 'x' };
    expect(broken(tiny(BASE), fetch, ok({ fault: 'protection' }), tiny(BASE, { tlb: [entry(1, V2M)], walkCache: walkOf(1, V2M) }))).toEqual([]);
    expect(broken(tiny(BASE), fetch, walked, tiny(BASE, { tlb: [entry(1, V2M)], walkCache: walkOf(1, V2M) }))).toEqual(['access.permission']);
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

// ---- (c) the TLB-lifetime relations: the flush ceiling, paging-structure caches, flushLocal, lazy unmap, frames ----

/** A paging-structure-cache entry of root 0: the level-`level` table whose span holds `vpn`. */
const walkAt = (cpu: number, level: Level, vpn: Vpn, table: CachedTableState = 'current'): WalkCacheEntry => {
  const span = pagesPerEntry((level + 1) as Level);
  return { cpu, root: 0, level, vpn: vpn - (vpn % span), table };
};
const walkOrder = (a: WalkCacheEntry, b: WalkCacheEntry): number => a.cpu - b.cpu || a.root - b.root || a.level - b.level || a.vpn - b.vpn;
/** What a walk of `l` on `cpu` caches: every table entry above the leaf, current. */
const walkOf = (cpu: number, l: Leaf): WalkCacheEntry[] =>
  Array.from({ length: CONFIG.levels - leafLevel(l.size) }, (_, k) => walkAt(cpu, (leafLevel(l.size) + k) as Level, l.vpn));
const caches = (...ws: WalkCacheEntry[]): WalkCacheEntry[] => [...ws].sort(walkOrder);

describe('(c) flush: the 33-page ceiling, and every paging-structure cache emptied', () => {
  const tlb = [entry(0, V4K), entry(1, DM4K)];
  const owedDm = [{ vpn: DM + 1000, pages: 1, reason: 'setDirectMapInvalid' }];
  const walk = caches(...walkOf(0, V4K), ...walkOf(1, DM4K));
  const before = tiny(BASE, { tlb, pendingFlush: owedDm, walkCache: walk, pendingTableFrees: 1 });

  it('more than 33 pages is flushAll: every TLB, cache and obligation emptied, every pending table released', () => {
    const c: Command = { op: 'flush', vpn: V, pages: 34 };
    const all = tiny(BASE);
    expect(broken(before, c, OK, all)).toEqual([]);
    expect(broken(before, c, OK, { ...all, tlb: [entry(1, DM4K)] })).toEqual(['flush.tlb']);
    expect(broken(before, c, OK, { ...all, pendingFlush: owedDm })).toEqual(['flush.obligations']);
    expect(broken(before, c, OK, tiny(BASE, { pendingTableFrees: 1 }))).toEqual(['flush.tables']);
    expect(broken(before, c, OK, { ...all, walkCache: walkOf(1, DM4K) })).toEqual(['flush.tlb']);
  });

  it('33 pages is a range flush: only the entries meeting it go, the debt elsewhere stays, yet every cache is emptied', () => {
    const c: Command = { op: 'flush', vpn: V, pages: 33 };
    const ranged = tiny(BASE, { tlb: [entry(1, DM4K)], pendingFlush: owedDm, pendingTableFrees: 1 });
    expect(broken(before, c, OK, ranged)).toEqual([]);
    expect(broken(before, c, OK, tiny(BASE))).toEqual(['flush.tlb', 'flush.obligations']);
    // Paging-structure caches: INVLPG empties them whatever the address, on every CPU.
    expect(broken(before, c, OK, { ...ranged, walkCache: walkOf(1, DM4K) })).toEqual(['flush.tlb']);
    expect(broken(before, c, OK, { ...ranged, walkCache: walk })).toEqual(['flush.tlb']);
  });

  it('the ceiling counts merged ranges: ranges that overlap or touch are one flush, and more than 33 pages of it is flushAll', () => {
    expect(rangeFlush([{ vpn: V, pages: 33 }])).not.toBe('all');
    expect(rangeFlush([{ vpn: V, pages: 20 }, { vpn: V + 20, pages: 20 }])).toBe('all');
    expect(rangeFlush([{ vpn: V, pages: 20 }, { vpn: V + 15, pages: 20 }])).toBe('all');
    expect(rangeFlush([{ vpn: V, pages: 20 }, { vpn: V + 10, pages: 20 }])).not.toBe('all');
    const apart = rangeFlush([{ vpn: V, pages: 20 }, { vpn: V + 21, pages: 20 }]);
    expect(apart === 'all' ? 'all' : apart.ranges).toEqual([{ vpn: V, pages: 20 }, { vpn: V + 21, pages: 20 }]);
  });
});

describe('(c) flushLocal: one CPU\'s TLB and caches, nothing else', () => {
  const tlb = [entry(0, V4K), entry(1, DM4K), entry(1, V4K)];
  const owedV = [{ vpn: V, pages: 1, reason: 'unmap' }];
  const walk = caches(...walkOf(0, V4K), ...walkOf(1, V4K));
  const before = tiny(BASE, { tlb, pendingFlush: owedV, walkCache: walk, pendingTableFrees: 1 });
  const c: Command = { op: 'flushLocal', cpu: 1, vpn: V, pages: 1 };
  const good = tiny(BASE, { tlb: [entry(0, V4K), entry(1, DM4K)], pendingFlush: owedV, walkCache: walkOf(0, V4K), pendingTableFrees: 1 });

  it('drops that CPU\'s entries meeting the range and empties its caches; the obligations and pending tables stay', () => {
    expect(broken(before, c, OK, good)).toEqual([]);
    expect(broken(before, c, OK, { ...good, tlb: [entry(1, DM4K)] })).toEqual(['flushLocal.tlb']);
    expect(broken(before, c, OK, { ...good, walkCache: walk })).toEqual(['flushLocal.tlb']);
    expect(broken(before, c, OK, { ...good, walkCache: [] })).toEqual(['flushLocal.tlb']);
    expect(broken(before, c, OK, { ...good, pendingFlush: [] })).toEqual(['flushLocal.obligations']);
    expect(broken(before, c, OK, tiny(BASE, { ...good, pendingTableFrees: 0, tablesInUse: good.tablesInUse - 1 }))).toEqual(['flushLocal.tables']);
  });

  it('has no ceiling: a long range is still that CPU\'s entries meeting it', () => {
    const long: Command = { ...c, pages: 400 };
    expect(broken(before, long, OK, good)).toEqual([]);
    expect(broken(before, long, OK, { ...good, tlb: [entry(0, V4K)] })).toEqual(['flushLocal.tlb']);
  });

  it('EINVAL cpu first, as for access', () => {
    const past = before.config.cpus;
    expect(broken(before, { ...c, cpu: past }, fail('EINVAL', 'cpu', 'x'), before)).toEqual([]);
    expect(broken(before, { ...c, cpu: past }, OK, good)).toContain('flushLocal.einval');
    expect(broken(before, { ...c, pages: 0 }, fail('EINVAL', 'pages', 'x'), before)).toEqual([]);
  });
});

describe('(c) access through the paging-structure caches', () => {
  const read = (vpn: Vpn): Extract<Command, { op: 'access' }> => ({ op: 'access', cpu: 1, root: 0, vpn, kind: 'r', mode: 'kernel' });
  const walkedTo = (l: Leaf, vpn: Vpn) => ok({ fault: false, translation: { leaf: l, pfn: l.pfn + (vpn - l.vpn) }, fromTlb: false } as const);

  it('a walk fills the TLB and caches every table entry above the leaf, current', () => {
    expect(broken(tiny(BASE), read(V + 515), walkedTo(V2M, V + 515), tiny(BASE, { tlb: [entry(1, V2M)], walkCache: walkOf(1, V2M) }))).toEqual([]);
    expect(walkOf(1, V2M).map((w) => w.level)).toEqual([2, 3]);
    expect(broken(tiny(BASE), read(V + 515), walkedTo(V2M, V + 515), tiny(BASE, { tlb: [entry(1, V2M)] }))).toEqual(['access.tlb']);
    // A 2M leaf has no PTE table above it to cache.
    const tooDeep = caches(walkAt(1, 1, V + 515), ...walkOf(1, V2M));
    expect(broken(tiny(BASE), read(V + 515), walkedTo(V2M, V + 515), tiny(BASE, { tlb: [entry(1, V2M)], walkCache: tooDeep }))).toEqual(['access.tlb']);
    // On the CPU that walked, not another.
    expect(broken(tiny(BASE), read(V + 515), walkedTo(V2M, V + 515), tiny(BASE, { tlb: [entry(1, V2M)], walkCache: walkOf(0, V2M) }))).toEqual(['access.tlb']);
  });

  it('a protection fault keeps the walk\'s fills; a TLB hit fills nothing', () => {
    const fetch: Command = { ...read(V), kind: 'x' };
    expect(broken(tiny(BASE), fetch, ok({ fault: 'protection' }), tiny(BASE, { tlb: [entry(1, V4K)], walkCache: walkOf(1, V4K) }))).toEqual([]);
    const hit = tiny(BASE, { tlb: [entry(1, V4K)] });
    const fromTlb = ok({ fault: false, translation: { leaf: V4K, pfn: 7 }, fromTlb: true } as const);
    expect(broken(hit, read(V), fromTlb, hit)).toEqual([]);
    expect(broken(hit, read(V), fromTlb, { ...hit, walkCache: walkOf(1, V4K) })).toEqual(['access.tlb']);
  });

  it('the walk starts at the deepest cached entry: through an unlinked one it faults not-present and fills nothing', () => {
    // The PTE table of V4K's 2M span was unlinked (a lazy unmap emptied it); the tables map V again since, by another table.
    const stale = tiny(BASE, { walkCache: caches(walkAt(1, 1, V, 'unlinked'), walkAt(1, 2, V), walkAt(1, 3, V)) });
    expect(broken(stale, read(V), ok({ fault: 'not-present' }), stale)).toEqual([]);
    expect(broken(stale, read(V), walkedTo(V4K, V), stale)).toEqual(['access.walk']);
    expect(broken(stale, read(V), ok({ fault: 'not-present' }), { ...stale, tlb: [entry(1, V4K)] })).toEqual(['access.tlb']);
    // Another CPU, or another span, walks through memory as usual.
    const other = { ...read(V), cpu: 0 };
    expect(broken(stale, other, walkedTo(V4K, V), { ...stale, tlb: [entry(0, V4K)], walkCache: caches(...stale.walkCache!, ...walkOf(0, V4K)) })).toEqual([]);
    expect(broken(stale, read(V + 515), walkedTo(V2M, V + 515), { ...stale, tlb: [entry(1, V2M)], walkCache: caches(walkAt(1, 1, V, 'unlinked'), ...walkOf(1, V2M)) })).toEqual([]);
  });

  it('a current entry deeper than an unlinked one is where the walk starts; its fill replaces what was cached', () => {
    const mixed = tiny(BASE, { walkCache: caches(walkAt(1, 1, V), walkAt(1, 2, V, 'unlinked')) });
    expect(broken(mixed, read(V), walkedTo(V4K, V), tiny(BASE, { tlb: [entry(1, V4K)], walkCache: walkOf(1, V4K) }))).toEqual([]);
    expect(broken(mixed, read(V), walkedTo(V4K, V), tiny(BASE, { tlb: [entry(1, V4K)], walkCache: caches(walkAt(1, 1, V), walkAt(1, 2, V, 'unlinked'), walkAt(1, 3, V)) }))).toEqual(['access.tlb']);
  });
});

describe('(c) unmap with flush: false (vunmap_range_noflush)', () => {
  const c: Command = { op: 'unmap', root: 0, vpn: V, pages: 1, flush: false };
  const tlb = [entry(0, V4K), entry(1, V2M)];
  const walk = caches(...walkOf(0, V4K), ...walkOf(1, DM4K));
  const before = tiny(BASE, { tlb, walkCache: walk });
  // V4K's PTE table is emptied (V2M's PMD table keeps the PMD table alive): pending, and cached as unlinked.
  const unlinked = walk.map((w) => (w.cpu === 0 && w.level === 1 ? { ...w, table: 'unlinked' as const } : w));
  const good = tiny(without(V4K), { tlb, pendingFlush: [{ vpn: V, pages: 1, reason: 'unmap' }], walkCache: unlinked, pendingTableFrees: 1 });

  it('the entries go, no TLB is touched, the range is owed, the emptied table stays pending and its cached entry unlinked', () => {
    for (const mode of ['full', 'local'] as const) expect(broken(before, c, OK, good, mode)).toEqual([]);
    expect(broken(before, c, OK, { ...good, tlb: [entry(1, V2M)] })).toEqual(['unmap.tlb']);
    expect(broken(before, c, OK, { ...good, pendingFlush: [] })).toEqual(['unmap.obligations']);
    expect(broken(before, c, OK, { ...good, pendingFlush: [{ vpn: V, pages: 1, reason: 'setDirectMapInvalid' }] })).toEqual(['unmap.obligations']);
    expect(broken(before, c, OK, { ...good, pendingTableFrees: 0, tablesInUse: good.tablesInUse - 1 })).toEqual(['unmap.tables']);
    expect(broken(before, c, OK, { ...good, walkCache: walk })).toEqual(['unmap.tlb']);
  });

  it('a step that frees the table while a CPU caches it (the entry marked freed) is a violation', () => {
    const freed = walk.map((w) => (w.cpu === 0 && w.level === 1 ? { ...w, table: 'freed' as const } : w));
    expect(broken(before, c, OK, { ...good, walkCache: freed })).toEqual(['unmap.tlb']);
    // So is any other step that marks an entry freed.
    const marked = { ...before, walkCache: freed };
    expect(broken(before, { op: 'translate', root: 0, vpn: V }, ok({ leaf: V4K, pfn: 7 }), marked)).toEqual(['translate.tlb']);
    expect(broken(before, { op: 'flushLocal', cpu: 1, vpn: V, pages: 1 }, OK, { ...marked, walkCache: freed.filter((w) => w.cpu !== 1) })).toEqual(['flushLocal.tlb']);
    expect(broken(before, { op: 'flushLocal', cpu: 1, vpn: V, pages: 1 }, OK, { ...marked, walkCache: walk.filter((w) => w.cpu !== 1) })).toEqual([]);
  });

  it('the debt joins a touching one, and a later flush pays it and empties the caches', () => {
    const owing = { ...before, pendingFlush: [{ vpn: V + 1, pages: 4, reason: 'setDirectMapInvalid' }] };
    expect(broken(owing, c, OK, { ...good, pendingFlush: [{ vpn: V, pages: 5, reason: 'setDirectMapInvalid+unmap' }] })).toEqual([]);
    const flush: Command = { op: 'flush', vpn: V, pages: 1 };
    const paid = tiny(without(V4K), { tlb: [entry(1, V2M)] });
    expect(broken(good, flush, OK, paid)).toEqual([]);
    expect(broken(good, flush, OK, { ...paid, walkCache: unlinked })).toEqual(['flush.tlb']);
  });

  it('with flush (absent or true) it is the flushing unmap: entries meeting the range dropped, every cache emptied, nothing owed', () => {
    const flushed = tiny(without(V4K), { tlb: [entry(1, V2M)] });
    expect(broken(before, { ...c, flush: true }, OK, flushed)).toEqual([]);
    const { flush: _, ...plain } = c as Extract<Command, { op: 'unmap' }>;
    expect(broken(before, plain, OK, flushed)).toEqual([]);
    expect(broken(before, plain, OK, good)).toContain('unmap.tlb');
  });
});

describe('(c) allocFrames and freeFrames', () => {
  const fr = (pfn: number, count: number, use: FrameRun['use']): FrameRun => ({ pfn, count, use, sensitive: false, noDirectMap: false });
  const frames = [fr(0, 2048, 'data'), fr(2048, 64, 'pagetable'), fr(2112, 100, 'free'), fr(2212, 1884, 'data')];
  const before = { ...tiny(BASE), frames };

  it('allocFrames: free frames become data, nothing else changes; EBUSY where one is not free', () => {
    const c: Command = { op: 'allocFrames', pfn: 2112, count: 4 };
    const after = { ...before, frames: [fr(0, 2048, 'data'), fr(2048, 64, 'pagetable'), fr(2112, 4, 'data'), fr(2116, 96, 'free'), fr(2212, 1884, 'data')] };
    expect(broken(before, c, OK, after)).toEqual([]);
    expect(broken(before, c, OK, before)).toEqual(['allocFrames.frames']);
    expect(broken(before, c, OK, { ...after, tlb: [entry(0, V4K)] })).toEqual(['allocFrames.tlb']);
    const busy: Command = { op: 'allocFrames', pfn: 2110, count: 4 };
    expect(broken(before, busy, fail('EBUSY', 'pfn', 'x'), before)).toEqual([]);
    expect(broken(before, busy, OK, after)).toContain('allocFrames.ebusy');
    expect(broken(before, busy, fail('EBUSY', 'pfn', 'x'), after)).toContain('allocFrames.refusal');
    expect(broken(before, { op: 'allocFrames', pfn: 4096, count: 1 }, fail('EINVAL', 'pfn', 'x'), before)).toEqual([]);
  });

  it('freeFrames: data frames become free (merged with the free run beside them); ENOENT where one is not data', () => {
    const c: Command = { op: 'freeFrames', pfn: 2212, count: 4 };
    const after = { ...before, frames: [fr(0, 2048, 'data'), fr(2048, 64, 'pagetable'), fr(2112, 104, 'free'), fr(2216, 1880, 'data')] };
    expect(broken(before, c, OK, after)).toEqual([]);
    const unmerged = { ...before, frames: [fr(0, 2048, 'data'), fr(2048, 64, 'pagetable'), fr(2112, 100, 'free'), fr(2212, 4, 'free'), fr(2216, 1880, 'data')] };
    expect(broken(before, c, OK, unmerged)).toEqual(['freeFrames.frames']);
    expect(broken(before, c, OK, { ...after, frames: [...after.frames.slice(0, 2), { ...after.frames[2]!, noDirectMap: true }, after.frames[3]!] })).toEqual(['freeFrames.frames']);
    for (const pfn of [2112, 2100]) {
      const notData: Command = { op: 'freeFrames', pfn, count: 1 };
      expect(broken(before, notData, fail('ENOENT', 'pfn', 'x'), before)).toEqual([]);
      expect(broken(before, notData, OK, before)).toContain('freeFrames.enoent');
    }
    // Strict refuses a free that would break D4, D6 or D7 with EPERM naming the invariant: the relation accepts it, and the refusal changes nothing.
    const eperm = { ok: false as const, error: { errno: 'EPERM' as const, arg: 'pfn', invariant: 'D6', message: '' } };
    expect(broken(before, c, eperm, before)).toEqual([]);
    expect(broken(before, c, eperm, after)).toContain('freeFrames.refusal');
  });
});
