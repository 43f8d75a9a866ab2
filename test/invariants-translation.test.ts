/** T family: translation invariants catch overlapping and unrepresentable leaves, and frames mapped with two memory types. */
import { describe, expect, it } from 'vitest';
import { X86_64_LAYOUT_4LEVEL as L } from '../spec/address.ts';
import { invariantById } from '../checker/index.ts';
import { KERNEL_IMAGE as K } from '../spec/scenario.ts';
import { PAGE_KERNEL, type AbstractState, type CacheMode } from '../spec/state.ts';
import { DM, IMAGE, bootedState, dumpLike, editLeaves, leaf, replaceLeafAt, withLeaves, withoutRange } from './states.ts';
import { familyIds, negativeSuite, type NegativeCase } from './invariants-suite.ts';

const VMALLOC = L.vmallocStart;
const HUGE_VMALLOC = VMALLOC + 1024;
const HUGE_VMALLOC_PFN = 104 * 256;
const booted = bootedState();
/** The 4K vmalloc area of the scenario: VMALLOC + 1 + i maps frame VPFN + i, PAGE_KERNEL. */
const VPFN = 100 * 256;
const setCache = (s: AbstractState, vpn: number, cache: CacheMode) => replaceLeafAt(s, vpn, (l) => ({ ...l, prot: { ...l.prot, cache } }));

const T: Record<string, NegativeCase[]> = {
  T1: [
    {
      name: 'a 4K leaf inside a 2M leaf',
      state: () => withLeaves(booted, leaf(HUGE_VMALLOC + 3, 7)),
      want: { root: 0, vpn: HUGE_VMALLOC + 3, pages: 1, frames: [{ pfn: HUGE_VMALLOC_PFN + 3, count: 1 }, { pfn: 7, count: 1 }] },
    },
    {
      name: 'an overlap in an unsorted root is still found',
      state: () => editLeaves(booted, (ls) => [leaf(HUGE_VMALLOC + 3, 7), ...ls], true),
      want: { root: 0, vpn: HUGE_VMALLOC + 3, pages: 1 },
    },
  ],
  T2: [{
    name: 'user-executable without user access',
    state: () => replaceLeafAt(booted, VMALLOC + 1, (l) => ({ ...l, prot: { ...l.prot, write: false, execUser: true } })),
    want: { root: 0, vpn: VMALLOC + 1, pages: 1, frames: [{ pfn: 100 * 256, count: 1 }] },
  }],
  T3: [{
    name: 'a cache mode the PAT does not have',
    state: () => replaceLeafAt(booted, VMALLOC + 2, (l) => ({ ...l, prot: { ...l.prot, cache: 'WA' as CacheMode } })),
    want: { root: 0, vpn: VMALLOC + 2, pages: 1, frames: [{ pfn: 100 * 256 + 1, count: 1 }] },
  }],
  T4: [{
    name: 'a user-half page in init_mm',
    state: () => withLeaves(booted, leaf(16, 100)),
    want: { root: 0, vpn: 16, pages: 1, frames: [{ pfn: 100, count: 1 }] },
  }],
  T5: [
    {
      // The first witness is on the 2M direct-map leaf, over the one frame it shares.
      name: 'a UC- vmalloc alias over the WB direct map (vmap with pgprot_noncached)',
      state: () => setCache(booted, VMALLOC + 1, 'UC-'),
      want: { root: 0, vpn: DM + VPFN, pages: 1, frames: [{ pfn: VPFN, count: 1 }] },
    },
    {
      name: 'the direct map set to WC under a WB vmalloc alias (set_memory_wc, which never finds vmalloc aliases)',
      state: () => setCache(booted, DM + VPFN, 'WC'),
      want: { root: 0, vpn: DM + VPFN, pages: 1, frames: [{ pfn: VPFN, count: 1 }] },
    },
    {
      name: 'the direct-map alias of rodata made WT while the high map keeps WB',
      state: () => setCache(booted, DM + K.rodataPfn, 'WT'),
      want: { root: 0, vpn: DM + K.rodataPfn, pages: 512, frames: [{ pfn: K.rodataPfn, count: 512 }] },
    },
    {
      name: 'a WC mapping of the frame in another root',
      state: () => ({ ...booted, roots: [...booted.roots, { id: 1, kind: 'process-kernel' as const, pid: 1, leaves: [leaf(VMALLOC + 9000, VPFN + 70, '4K', { ...PAGE_KERNEL, cache: 'WC' })] }] }),
      want: { root: 0, vpn: DM + VPFN + 70, pages: 1, frames: [{ pfn: VPFN + 70, count: 1 }] },
    },
  ],
};

describe('T: each invariant catches its bad state with the right witness', () => {
  it('covers every T invariant', () => expect(Object.keys(T).sort()).toEqual(familyIds('T').sort()));
  negativeSuite(T);
});

describe('T: edge cases', () => {
  it('T1 accepts leaves that only touch, and T4 allows user-half leaves in other roots', () => {
    const touching = withLeaves(booted, leaf(HUGE_VMALLOC - 1, 7), leaf(HUGE_VMALLOC + 4 * 512, 8));
    expect(invariantById('T1')!.check(touching)).toEqual([]);
    const process = { ...booted, roots: [...booted.roots, { id: 1, kind: 'process-user' as const, pid: 1, leaves: [leaf(16, 100)] }] };
    expect(invariantById('T4')!.check(process)).toEqual([]);
  });

  it('T5 allows aliases that agree on a type other than WB, and holds vacuously on a dump', () => {
    const t5 = invariantById('T5')!;
    // set_memory_uc through the vmalloc alias with the direct map following it (cpa_process_alias).
    const ucVmalloc = setCache(withoutRange(booted, DM + VPFN, 512), VMALLOC + 1, 'UC-');
    const agreeing = withLeaves(ucVmalloc, leaf(DM + VPFN, VPFN, '4K', { ...PAGE_KERNEL, cache: 'UC-' }));
    expect(t5.check(agreeing)).toEqual([]);
    expect(t5.holds(agreeing)).toEqual([]);
    expect(t5.check(dumpLike(setCache(booted, VMALLOC + 1, 'UC-')))).toEqual([]);
    // Two WB aliases of one frame, the image and the direct map of text, are one type.
    expect(t5.check(booted)).toEqual([]);
    expect(t5.check(withLeaves(booted, leaf(IMAGE + 2 ** 16, K.textPfn)))).toEqual([]);
  });

  it('T5 with a scope follows the aliases: a scope on the vmalloc page names the direct-map alias outside it', () => {
    const bad = setCache(booted, VMALLOC + 1, 'UC-');
    const t5 = invariantById('T5')!;
    expect(t5.check(bad, { vpn: VMALLOC + 1, pages: 1 })).toContainEqual(expect.objectContaining({ vpn: DM + VPFN, pages: 1 }));
    expect(t5.check(bad, { vpn: DM + VPFN, pages: 1 })).toContainEqual(expect.objectContaining({ vpn: VMALLOC + 1, pages: 1 }));
    expect(t5.check(bad, { vpn: VMALLOC + 10, pages: 4 })).toEqual([]);
  });

  it('T1 with a scope looks only at the neighbours inside it', () => {
    const bad = T.T1![0]!.state();
    expect(invariantById('T1')!.check(bad, { vpn: HUGE_VMALLOC + 3, pages: 1 })).toHaveLength(1);
    expect(invariantById('T1')!.check(bad, { vpn: VMALLOC + 1, pages: 8 })).toEqual([]);
  });
});
