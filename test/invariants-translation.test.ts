/** T family: translation invariants catch overlapping and unrepresentable leaves. */
import { describe, expect, it } from 'vitest';
import { X86_64_LAYOUT_4LEVEL as L } from '../spec/address.ts';
import { invariantById } from '../checker/index.ts';
import type { CacheMode } from '../spec/state.ts';
import { bootedState, editLeaves, leaf, replaceLeafAt, withLeaves } from './states.ts';
import { familyIds, negativeSuite, type NegativeCase } from './invariants-suite.ts';

const VMALLOC = L.vmallocStart;
const HUGE_VMALLOC = VMALLOC + 1024;
const HUGE_VMALLOC_PFN = 104 * 256;
const booted = bootedState();

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

  it('T1 with a scope looks only at the neighbours inside it', () => {
    const bad = T.T1![0]!.state();
    expect(invariantById('T1')!.check(bad, { vpn: HUGE_VMALLOC + 3, pages: 1 })).toHaveLength(1);
    expect(invariantById('T1')!.check(bad, { vpn: VMALLOC + 1, pages: 8 })).toEqual([]);
  });
});
