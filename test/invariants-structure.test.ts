/** S family: every structure invariant holds on good states and catches its bad state. */
import { describe, expect, it } from 'vitest';
import { PAGES, lowerHalfEnd, upperHalfStart, X86_64_LAYOUT_4LEVEL as L, type PageSize } from '../spec/address.ts';
import { CATALOGUE, checkAll } from '../checker/index.ts';
import { KERNEL_IMAGE as K, TABLE_POOL } from '../spec/scenario.ts';
import { PAGE_KERNEL_RO } from '../spec/state.ts';
import { tableFootprint } from '../spec/footprint.ts';
import { DM, bootedState, dumpLike, editLeaves, leaf, leafAt, modelBootedState, withFrameFlags, withLeaves } from './states.ts';
import { familyIds, negativeSuite, type NegativeCase } from './invariants-suite.ts';

const VMALLOC = L.vmallocStart;
const booted = bootedState();
const FRAMES = booted.config.frames;

describe('good states satisfy the whole catalogue', () => {
  it('the booted kernel scenario (hand-built and model-built agree)', () => {
    const model = modelBootedState();
    expect(model).toEqual(booted);
    expect(checkAll(booted)).toEqual([]);
    expect(checkAll(model)).toEqual([]);
  });

  it('a dump-like state (leaves only, no frame facts) holds vacuously where inputs are absent', () => {
    expect(checkAll(dumpLike(booted))).toEqual([]);
  });

  it('an empty init_mm on the scenario memory', () => {
    expect(checkAll({ ...booted, roots: [{ id: 0, kind: 'kernel', leaves: [] }], tablesInUse: 1 })).toEqual([]);
  });

  it('every check honours a scope that touches nothing', () => {
    const bad = withLeaves(booted, leaf(VMALLOC + 5000, 0x7fff_ffff, '4K'));
    expect(checkAll(bad).map((v) => v.id)).toContain('S6');
    for (const inv of CATALOGUE) expect(inv.check(bad, { vpn: VMALLOC + 6000, pages: 1 }), inv.id).toEqual([]);
  });
});

const S: Record<string, NegativeCase[]> = {
  S1: [{
    name: 'a 512G leaf at P4D level',
    state: () => withLeaves(booted, leaf(VMALLOC + 2 * PAGES['1G'], 0, '512G' as PageSize)),
    want: { root: 0, vpn: VMALLOC + 2 * PAGES['1G'], pages: 0 },
  }],
  S2: [{
    name: 'a 2M leaf at an unaligned vpn',
    state: () => withLeaves(booted, leaf(VMALLOC + 5 * PAGES['2M'] + 1, 50 * 512, '2M')),
    want: { root: 0, vpn: VMALLOC + 5 * PAGES['2M'] + 1, pages: 512, frames: [{ pfn: 50 * 512, count: 512 }] },
  }],
  S3: [
    {
      name: 'a leaf in the non-canonical hole',
      state: () => withLeaves(booted, leaf(upperHalfStart(4) - 1, 0)),
      want: { root: 0, vpn: upperHalfStart(4) - 1, pages: 1 },
    },
    {
      name: 'a 2M leaf running off the end of the lower half',
      state: () => withLeaves(booted, leaf(lowerHalfEnd(4) - 256, 0, '2M')),
      want: { root: 0, vpn: lowerHalfEnd(4) - 256 },
    },
  ],
  S4: [{
    name: 'two leaves swapped',
    state: () => editLeaves(booted, (ls) => { const t = ls[0]!; ls[0] = ls[1]!; ls[1] = t; return ls; }, true),
    want: { root: 0, vpn: DM },
  }],
  S5: [
    {
      name: 'a frame at 2^(maxPhysBits-12)',
      state: () => withLeaves(booted, leaf(VMALLOC + 9000, 2 ** 34)),
      want: { root: 0, vpn: VMALLOC + 9000, frames: [{ pfn: 2 ** 34, count: 1 }] },
    },
    {
      name: 'a negative pfn',
      state: () => withLeaves(booted, leaf(VMALLOC + 9000, -1)),
      want: { root: 0, vpn: VMALLOC + 9000 },
    },
  ],
  S6: [{
    name: 'a frame just past the end of memory',
    state: () => withLeaves(booted, leaf(VMALLOC + 9000, FRAMES)),
    want: { root: 0, vpn: VMALLOC + 9000, pages: 1, frames: [{ pfn: FRAMES, count: 1 }] },
  }],
  S7: [
    {
      name: 'a run missing (gap)',
      state: () => ({ ...booted, frames: booted.frames.filter((r) => r.use !== 'kernel-rodata') }),
      want: { frames: [{ pfn: K.rodataPfn, count: K.rodataPages }] },
    },
    {
      name: 'memory not covered to the end',
      state: () => ({ ...booted, frames: booted.frames.slice(0, -1) }),
      want: { frames: [{ pfn: FRAMES / 2, count: FRAMES / 2 }] },
    },
  ],
  S8: [{
    name: 'a run split in two identical halves',
    state: () => withFrameFlags(booted, K.dataPfn, 16, { sensitive: false }),
    want: { frames: [{ pfn: K.dataPfn, count: K.dataPages }] },
  }],
  S9: [
    {
      name: 'pool frames used as data',
      state: () => withFrameFlags(booted, TABLE_POOL.pfn + 8, 8, { use: 'data' }),
      want: { frames: [{ pfn: TABLE_POOL.pfn + 8, count: 8 }] },
    },
    {
      name: 'pagetable frames outside the pool',
      state: () => withFrameFlags(booted, 100, 4, { use: 'pagetable' }),
      want: { frames: [{ pfn: 100, count: 4 }] },
    },
  ],
  S10: [{
    name: 'more tables than the pool',
    state: () => ({ ...booted, tablesInUse: TABLE_POOL.count + 1 }),
    want: { frames: [{ pfn: TABLE_POOL.pfn, count: TABLE_POOL.count }] },
  }],
  S11: [
    { name: 'a leaked table', state: () => ({ ...booted, tablesInUse: booted.tablesInUse + 1 }), want: { root: 0 } },
    { name: 'a table too few (freed while reachable)', state: () => ({ ...booted, tablesInUse: booted.tablesInUse - 1 }), want: { root: 0 } },
  ],
  S12: [{
    name: 'a page-table frame mapped in vmalloc',
    state: () => withLeaves(booted, leaf(VMALLOC + 9000, TABLE_POOL.pfn + 3, '4K', PAGE_KERNEL_RO)),
    want: { root: 0, vpn: VMALLOC + 9000, pages: 1, frames: [{ pfn: TABLE_POOL.pfn + 3, count: 1 }] },
  }],
  S13: [
    { name: 'no root 0', state: () => ({ ...booted, roots: [{ ...booted.roots[0]!, id: 1 }] }), want: { root: 0 } },
    { name: 'root 0 twice', state: () => ({ ...booted, roots: [booted.roots[0]!, booted.roots[0]!] }), want: { root: 0 } },
    { name: 'root 0 not the kernel', state: () => ({ ...booted, roots: [{ ...booted.roots[0]!, kind: 'asi' }] }), want: { root: 0 } },
  ],
  S14: [
    {
      name: 'overlapping obligations',
      state: () => ({ ...booted, pendingFlush: [{ vpn: DM, pages: 8, reason: 'a' }, { vpn: DM + 4, pages: 8, reason: 'b' }] }),
      want: { vpn: DM + 4, pages: 8 },
    },
    {
      name: 'a user-half obligation',
      state: () => ({ ...booted, pendingFlush: [{ vpn: 16, pages: 1, reason: 'a' }] }),
      want: { vpn: 16, pages: 1 },
    },
  ],
  S15: [
    {
      name: 'a non-present entry over a mapped leaf (the direct map of frame 0)',
      state: () => withNonPresent(booted, leaf(DM, 0, '4K')),
      want: { root: 0, vpn: DM, pages: 1 },
    },
    {
      name: 'a non-present 2M entry at an unaligned vpn',
      state: () => withNonPresent(booted, leaf(VMALLOC + 7 * PAGES['2M'] + 3, 7 * 512, '2M')),
      want: { root: 0, vpn: VMALLOC + 7 * PAGES['2M'] + 3, pages: 512 },
    },
    {
      name: 'two non-present entries over one page',
      state: () => withNonPresent(booted, leaf(VMALLOC + 9 * PAGES['2M'], 9 * 512, '2M'), leaf(VMALLOC + 9 * PAGES['2M'] + 4, 99, '4K')),
      want: { root: 0, vpn: VMALLOC + 9 * PAGES['2M'], pages: 512 },
    },
  ],
};

/** The state with these non-present entries in init_mm, its table count their footprint too (S11 stays true). */
function withNonPresent(state: typeof booted, ...entries: ReturnType<typeof leaf>[]) {
  const [root0, ...rest] = state.roots;
  const nonPresent = [...entries].sort((a, b) => a.vpn - b.vpn);
  const tablesInUse = tableFootprint(state.config.levels, [...root0!.leaves, ...nonPresent].sort((a, b) => a.vpn - b.vpn));
  return { ...state, roots: [{ ...root0!, nonPresent }, ...rest], tablesInUse };
}

describe('non-present entries (linux profile)', () => {
  it('a non-present entry in a free slot breaks nothing: it maps nothing and its tables are counted', () => {
    const s = withNonPresent(booted, leaf(VMALLOC + 9000, 9000, '4K'));
    expect(checkAll(s)).toEqual([]);
  });
  it('S11 counts the tables of non-present entries', () => {
    const s = { ...withNonPresent(booted, leaf(VMALLOC + 11 * PAGES['1G'], 9000, '4K')), tablesInUse: booted.tablesInUse };
    expect(checkAll(s).map((v) => v.id)).toContain('S11');
  });
});

describe('S: each invariant catches its bad state with the right witness', () => {
  it('covers every S invariant', () => expect(Object.keys(S).sort()).toEqual(familyIds('S').sort()));
  negativeSuite(S);
});

describe('S: scope and edge cases', () => {
  it('S2 with a scope finds the unaligned leaf only when the scope reaches it', () => {
    const inv = CATALOGUE.find((i) => i.id === 'S2')!;
    const bad = S.S2![0]!.state();
    expect(inv.check(bad, { vpn: VMALLOC + 5 * PAGES['2M'] + 100, pages: 1 })).toHaveLength(1);
    expect(inv.check(bad, { vpn: VMALLOC + 7 * PAGES['2M'] + 1, pages: 1 })).toEqual([]);
  });

  it('S11 waits for a full check: a scoped check does not judge the global table count', () => {
    const inv = CATALOGUE.find((i) => i.id === 'S11')!;
    expect(inv.check({ ...booted, tablesInUse: 3 }, { vpn: DM, pages: 1 })).toEqual([]);
  });

  it('S14 accepts adjacent obligations and S12 accepts the direct-map page of a table frame', () => {
    const s = { ...booted, pendingFlush: [{ vpn: DM, pages: 8, reason: 'a' }, { vpn: DM + 8, pages: 8, reason: 'b' }] };
    expect(checkAll(s)).toEqual([]);
    expect(leafAt(booted, DM + TABLE_POOL.pfn).vpn - leafAt(booted, DM + TABLE_POOL.pfn).pfn).toBe(DM);
  });

  it('caps witnesses and says how many more there are', () => {
    const many = Array.from({ length: 100 }, (_, i) => leaf(VMALLOC + 9000 + i, FRAMES + i));
    const ws = CATALOGUE.find((i) => i.id === 'S6')!.check(withLeaves(booted, ...many));
    expect(ws).toHaveLength(65);
    expect(ws[64]!.detail).toMatch(/36 more/);
  });
});
