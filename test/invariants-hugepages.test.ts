/** H family: huge leaves need aligned frames and a CPU with that page size, and pages kept 4K stay 4K. */
import { describe, expect, it } from 'vitest';
import { PAGES, X86_64_LAYOUT_4LEVEL as L } from '../spec/address.ts';
import { checkAll, invariantById } from '../checker/index.ts';
import { kernelScenario } from '../spec/scenario.ts';
import { PAGE_KERNEL, type AbstractState, type Leaf } from '../spec/state.ts';
import { DM, bootedState, leaf, withLeaves } from './states.ts';
import { familyIds, negativeSuite, type NegativeCase } from './invariants-suite.ts';

const booted = bootedState();
const VMALLOC = L.vmallocStart;
const KEPT = { ...PAGE_KERNEL, kernel4k: true };
const withNonPresent = (s: AbstractState, ...np: Leaf[]): AbstractState => ({ ...s, roots: [{ ...s.roots[0]!, nonPresent: np }, ...s.roots.slice(1)] });
const withFeatures = (pse: boolean, gbpages: boolean) => ({ ...booted, config: { ...booted.config, features: { pse, gbpages } } });

const H: Record<string, NegativeCase[]> = {
  H1: [
    {
      name: 'a 2M leaf on an unaligned frame',
      state: () => withLeaves(booted, leaf(VMALLOC + 20 * 512, 60 * 512 + 1, '2M')),
      want: { root: 0, vpn: VMALLOC + 20 * 512, pages: 512, frames: [{ pfn: 60 * 512 + 1, count: 512 }] },
    },
    {
      name: 'a 1G leaf on a 2M-aligned frame',
      state: () => withLeaves(booted, leaf(VMALLOC + 4 * PAGES['1G'], 512, '1G')),
      want: { root: 0, vpn: VMALLOC + 4 * PAGES['1G'], pages: PAGES['1G'], frames: [{ pfn: 512, count: PAGES['1G'] }] },
    },
  ],
  H2: [{
    name: 'the direct map keeps 2M leaves on a CPU without PSE',
    state: () => withFeatures(false, true),
    want: { root: 0, vpn: DM, pages: 512, frames: [{ pfn: 0, count: 512 }] },
  }],
  H3: [{
    name: 'the direct map keeps 1G leaves on a CPU without GB pages',
    state: () => withFeatures(true, false),
    want: { root: 0, vpn: DM + PAGES['1G'], pages: PAGES['1G'], frames: [{ pfn: PAGES['1G'], count: PAGES['1G'] }] },
  }],
  H4: [
    {
      name: 'a 2M leaf that kept _PAGE_KERNEL_4K from a collapse over kept pages',
      state: () => withLeaves(booted, leaf(VMALLOC + 20 * 512, 60 * 512, '2M', KEPT)),
      want: { root: 0, vpn: VMALLOC + 20 * 512, pages: 512, frames: [{ pfn: 60 * 512, count: 512 }] },
    },
    {
      name: 'a non-present 2M entry with _PAGE_KERNEL_4K',
      state: () => withNonPresent(booted, leaf(VMALLOC + 40 * 512, 61 * 512, '2M', KEPT)),
      want: { root: 0, vpn: VMALLOC + 40 * 512, pages: 512 },
    },
  ],
};

describe('H: each invariant catches its bad state with the right witness', () => {
  it('covers every H invariant', () => expect(Object.keys(H).sort()).toEqual(familyIds('H').sort()));
  negativeSuite(H);
});

describe('H: good states on CPUs without huge pages', () => {
  it('4K pages and entries kept 4K, present or not, break no H rule', () => {
    const s = withNonPresent(withLeaves(booted, leaf(VMALLOC + 9000, 70000, '4K', KEPT)), leaf(VMALLOC + 9001, 70001, '4K', KEPT));
    expect(invariantById('H4')!.check(s)).toEqual([]);
    expect(invariantById('H4')!.holds(s)).toEqual([]);
  });

  it('a machine without GB pages booted with 2M leaves only satisfies the whole catalogue', () => {
    const noGb = bootedState(kernelScenario({ features: { pse: true, gbpages: false } }));
    expect(noGb.roots[0]!.leaves.some((l) => l.size === '1G')).toBe(false);
    expect(checkAll(noGb)).toEqual([]);
  });

  it('a machine without PSE booted with 4K leaves only satisfies the whole catalogue', () => {
    const no2m = bootedState(kernelScenario({ features: { pse: false, gbpages: false }, frames: 64 * 1024 }));
    const small = { ...no2m, frames: [{ pfn: 0, count: 64 * 1024, use: 'data' as const, sensitive: false, noDirectMap: false }] };
    expect(no2m.roots[0]!.leaves.every((l) => l.size === '4K')).toBe(true);
    expect(invariantById('H2')!.check(small)).toEqual([]);
    expect(invariantById('H3')!.check(small)).toEqual([]);
  });
});
