/** P family: W^X per mapping and across aliases, static protections, user and direct-map rules. */
import { describe, expect, it } from 'vitest';
import { X86_64_LAYOUT_4LEVEL as L } from '../spec/address.ts';
import { checkAll, invariantById } from '../checker/index.ts';
import { KERNEL_IMAGE as K } from '../spec/scenario.ts';
import { PAGE_KERNEL_RO, PAGE_KERNEL_ROX, type AbstractState, type Prot } from '../spec/state.ts';
import { DM, IMAGE, bootedState, leaf, replaceLeafAt, withFrameFlags, withLeaves, withoutRange } from './states.ts';
import { familyIds, negativeSuite, type NegativeCase } from './invariants-suite.ts';

const booted = bootedState();
const VMALLOC = L.vmallocStart;
/** The 4K vmalloc area of the scenario: VMALLOC + 1 + i maps frame VPFN + i, PAGE_KERNEL. */
const VPFN = 100 * 256;
const setProt = (s: AbstractState, vpn: number, p: Partial<Prot>) => replaceLeafAt(s, vpn, (l) => ({ ...l, prot: { ...l.prot, ...p } }));
/** A process's user root mapping frame `pfn` at user page 0x400 with `prot`. */
const withUserLeaf = (pfn: number, prot: Prot): AbstractState => ({
  ...booted,
  roots: [...booted.roots, { id: 4, kind: 'process-user', pid: 1, leaves: [leaf(0x400, pfn, '4K', prot)] }],
});
const USER = { user: true, global: false, cache: 'WB' } as const;
/** A second kernel-side root mapping frame `pfn` executable at a vmalloc address. */
const withExecRoot = (pfn: number): AbstractState => ({
  ...booted,
  roots: [...booted.roots, { id: 1, kind: 'process-kernel', pid: 1, leaves: [leaf(VMALLOC + 9000, pfn, '4K', PAGE_KERNEL_ROX)] }],
});

const P: Record<string, NegativeCase[]> = {
  P1: [{
    name: 'a vmalloc page made RW and executable',
    state: () => setProt(booted, VMALLOC + 1, { execKernel: true }),
    want: { root: 0, vpn: VMALLOC + 1, pages: 1, frames: [{ pfn: VPFN, count: 1 }] },
  }],
  P2: [
    {
      name: 'set_memory_x on a vmalloc page whose direct-map alias stays RW',
      state: () => setProt(booted, VMALLOC + 1, { write: false, execKernel: true }),
      want: { root: 0, vpn: DM + VPFN, pages: 1, frames: [{ pfn: VPFN, count: 1 }] },
    },
    {
      name: 'the same frame executable in another root',
      state: () => withExecRoot(VPFN + 5),
      want: { root: 0, vpn: DM + VPFN + 5, pages: 1, frames: [{ pfn: VPFN + 5, count: 1 }] },
    },
    {
      name: 'a process maps kernel text writable in its user half (ret2dir the other way round)',
      state: () => withUserLeaf(K.textPfn + 3, { ...USER, write: true, execKernel: false, execUser: false }),
      want: { root: 4, vpn: 0x400, pages: 1, frames: [{ pfn: K.textPfn + 3, count: 1 }] },
    },
    {
      name: 'the direct-map alias of text made RW while text runs from the image',
      state: () => setProt(booted, DM + K.textPfn, { write: true }),
      want: { root: 0, vpn: DM + K.textPfn, pages: 512, frames: [{ pfn: K.textPfn, count: 512 }] },
    },
  ],
  P3: [{
    name: 'the direct-map alias of kernel text made writable',
    state: () => setProt(booted, DM + K.textPfn + 600, { write: true }),
    want: { root: 0, vpn: DM + K.textPfn + 512, pages: 512, frames: [{ pfn: K.textPfn + 512, count: 512 }] },
  }],
  P4: [
    {
      name: 'rodata writable through the image mapping',
      state: () => setProt(booted, IMAGE + K.rodataPfn, { write: true }),
      want: { root: 0, vpn: IMAGE + K.rodataPfn, pages: 512, frames: [{ pfn: K.rodataPfn, count: 512 }] },
    },
    {
      name: 'rodata writable through a vmalloc alias: only the rodata pages of the leaf are named',
      state: () => withLeaves(booted, leaf(VMALLOC + 20 * 512, K.rodataPfn + K.rodataPages - 8, '4K'), leaf(VMALLOC + 20 * 512 + 1, K.dataPfn, '4K')),
      want: { root: 0, vpn: VMALLOC + 20 * 512, pages: 1, frames: [{ pfn: K.rodataPfn + K.rodataPages - 8, count: 1 }] },
    },
  ],
  P5: [{
    name: 'set_memory_nx on kernel text in the image mapping',
    state: () => setProt(booted, IMAGE + K.textPfn + 1024, { execKernel: false }),
    want: { root: 0, vpn: IMAGE + K.textPfn + 1024, pages: 512, frames: [{ pfn: K.textPfn + 1024, count: 512 }] },
  }],
  P6: [{
    name: 'a user-accessible vmalloc page',
    state: () => setProt(booted, VMALLOC + 3, { user: true }),
    want: { root: 0, vpn: VMALLOC + 3, pages: 1, frames: [{ pfn: VPFN + 2, count: 1 }] },
  }],
  P7: [
    {
      name: 'frames marked noDirectMap while the direct map still maps them',
      state: () => withFrameFlags(booted, VPFN + 4, 2, { noDirectMap: true }),
      want: { root: 0, vpn: DM + VPFN + 4, pages: 2, frames: [{ pfn: VPFN + 4, count: 2 }] },
    },
    {
      name: 'a frame removed from the direct map but still vmapped',
      state: () => withFrameFlags(withoutRange(booted, DM + VPFN, 512), VPFN, 512, { noDirectMap: true }),
      want: { root: 0, vpn: VMALLOC + 1, pages: 1, frames: [{ pfn: VPFN, count: 1 }] },
    },
  ],
};

describe('P: each invariant catches its bad state with the right witness', () => {
  it('covers every P invariant', () => expect(Object.keys(P).sort()).toEqual(familyIds('P').sort()));
  negativeSuite(P);
});

describe('P: what is allowed', () => {
  const p2 = invariantById('P2')!;

  it('a lone W+X leaf is P1, not a cross-alias violation', () => {
    const s = setProt(booted, VMALLOC + 1, { execKernel: true });
    expect(p2.check(withoutRange(s, DM + VPFN, 512))).toEqual([]);
    expect(invariantById('P1')!.check(s)).toHaveLength(1);
  });

  it('a process executing a frame the direct map writes is no cross-alias violation (the page cache), nor a user W+X leaf (a JIT)', () => {
    for (const write of [false, true]) {
      const s = withUserLeaf(VPFN + 7, { ...USER, write, execKernel: true, execUser: true });
      expect(p2.holds(s)).toEqual([]);
      expect(p2.check(s)).toEqual([]);
      expect(invariantById('P1')!.check(s)).toEqual([]);
    }
  });

  it('read-only aliases of executable frames are fine (the booted text and its RO direct map)', () => {
    const s = withLeaves(booted, leaf(VMALLOC + 9000, K.textPfn, '4K', PAGE_KERNEL_RO), leaf(VMALLOC + 9001, K.textPfn + 1, '4K', PAGE_KERNEL_ROX));
    expect(checkAll(s)).toEqual([]);
  });

  it('removing a frame from the direct map and every other kernel mapping satisfies P7 and the catalogue', () => {
    const s = withFrameFlags(withoutRange(withoutRange(booted, DM + VPFN, 512), VMALLOC, 512), VPFN, 512, { noDirectMap: true });
    expect(checkAll(s)).toEqual([]);
  });

  it('P5 does not constrain text frames mapped NX elsewhere in the image region', () => {
    const s = withLeaves(booted, leaf(IMAGE + 100, K.textPfn, '4K', PAGE_KERNEL_RO));
    expect(invariantById('P5')!.check(s)).toEqual([]);
  });

  it('P2 names disjoint violating frame intervals once each (a sweep, not per page)', () => {
    const s = setProt(booted, DM + K.textPfn, { write: true });
    const ws = p2.check(s);
    expect(ws).toHaveLength(1);
    expect(ws[0]!.detail).toMatch(/executable through root 0 at 0xffffffff81000000/);
  });
});

describe('P: scoped checks follow the aliases of the touched frames', () => {
  const bad = setProt(booted, VMALLOC + 1, { write: false, execKernel: true });
  const p2 = invariantById('P2')!;

  it('a scope on the vmalloc page finds the writable direct-map alias outside it', () => {
    expect(p2.check(bad, { vpn: VMALLOC + 1, pages: 1 })).toMatchObject([{ vpn: DM + VPFN, frames: [{ pfn: VPFN, count: 1 }] }]);
  });

  it('a scope on the direct-map page finds the executable vmalloc alias', () => {
    expect(p2.check(bad, { vpn: DM + VPFN, pages: 1 })).toHaveLength(1);
  });

  it('a scope elsewhere sees nothing', () => {
    expect(p2.check(bad, { vpn: VMALLOC + 10, pages: 4 })).toEqual([]);
  });

  it('a scope on a removed direct-map range still covers the frames it stood for (P7)', () => {
    const removed = P.P7![1]!.state();
    expect(invariantById('P7')!.check(removed, { vpn: DM + VPFN, pages: 512 })).toHaveLength(64);
  });
});
