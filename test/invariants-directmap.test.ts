/** D family: the direct map and the high map are linear, the direct map is never executable, and only it maps free frames. */
import { describe, expect, it } from 'vitest';
import { PAGES, X86_64_LAYOUT_4LEVEL as L } from '../spec/address.ts';
import { checkAll, invariantById } from '../checker/index.ts';
import { KERNEL_IMAGE as K, kernelScenario } from '../spec/scenario.ts';
import { PAGE_KERNEL_RO, PAGE_KERNEL_ROX, type AbstractState, type Prot } from '../spec/state.ts';
import { DM, IMAGE, bootedState, dumpLike, leaf, modelBootedState, replaceLeafAt, withFrameFlags, withLeaves, withoutRange } from './states.ts';
import { familyIds, negativeSuite, type NegativeCase } from './invariants-suite.ts';

const booted = bootedState();
/** A data frame only the direct map maps (between the image and the table pool). */
const LONE = 50 * 256;
const setProt = (s: AbstractState, vpn: number, p: Partial<Prot>) => replaceLeafAt(s, vpn, (l) => ({ ...l, prot: { ...l.prot, ...p } }));
/** Replace the direct-map or image page at `vpn` by a 4K leaf mapping `pfn`. */
const remapPage = (s: AbstractState, vpn: number, pfn: number): AbstractState => {
  const old = s.roots[0]!.leaves.find((l) => l.vpn <= vpn && vpn < l.vpn + PAGES[l.size])!;
  // Keep the rest of the large leaf as 4K leaves, as an unmap that splits it would.
  const rest = Array.from({ length: PAGES[old.size] }, (_, i) => leaf(old.vpn + i, old.pfn + i, '4K', old.prot)).filter((l) => l.vpn !== vpn);
  return withLeaves(withoutRange(s, old.vpn, PAGES[old.size]), ...rest, leaf(vpn, pfn, '4K', old.prot));
};

const D: Record<string, NegativeCase[]> = {
  D1: [
    {
      name: 'a direct-map page that maps the next frame (a vmap-style map at a __va address)',
      state: () => remapPage(booted, DM + LONE, LONE + 1),
      want: { root: 0, vpn: DM + LONE, pages: 1, frames: [{ pfn: LONE + 1, count: 1 }] },
    },
    {
      name: 'a 2M leaf that starts before __PAGE_OFFSET and reaches into the direct map',
      state: () => withLeaves(withoutRange(booted, DM, 512), leaf(DM - 256, 0, '2M')),
      want: { root: 0, vpn: DM - 256, pages: 512 },
    },
  ],
  D2: [{
    name: 'a high-map page of kernel data that maps another data frame',
    state: () => remapPage(booted, IMAGE + K.dataPfn + 3, K.dataPfn + 700),
    want: { root: 0, vpn: IMAGE + K.dataPfn + 3, pages: 1, frames: [{ pfn: K.dataPfn + 700, count: 1 }] },
  }],
  D3: [
    {
      name: 'set_memory_x on a read-only direct-map page (set_real_mode_permissions does it to the trampoline)',
      state: () => setProt(booted, DM + LONE, { write: false, execKernel: true }),
      want: { root: 0, vpn: DM + LONE - (LONE % 512), pages: 512, frames: [{ pfn: LONE - (LONE % 512), count: 512 }] },
    },
    {
      name: 'the direct-map alias of kernel text made executable like the image mapping',
      state: () => setProt(booted, DM + K.textPfn, { execKernel: true }),
      want: { root: 0, vpn: DM + K.textPfn, pages: 512, frames: [{ pfn: K.textPfn, count: 512 }] },
    },
  ],
  D4: [
    {
      name: 'a vmalloc page mapping a frame the allocator holds free (a vmap after the page was freed)',
      state: () => withLeaves(withFrameFlags(booted, LONE, 16, { use: 'free' }), leaf(L.vmallocStart + 7000, LONE + 3)),
      want: { root: 0, vpn: L.vmallocStart + 7000, pages: 1, frames: [{ pfn: LONE + 3, count: 1 }] },
    },
    {
      name: 'a 2M vmalloc leaf of which only the tail frames are free',
      state: () => withLeaves(withFrameFlags(booted, 60 * 512 + 500, 100, { use: 'free' }), leaf(L.vmallocStart + 20 * 512, 60 * 512, '2M')),
      want: { root: 0, vpn: L.vmallocStart + 20 * 512 + 500, pages: 12, frames: [{ pfn: 60 * 512 + 500, count: 12 }] },
    },
  ],
};

describe('D: each invariant catches its bad state with the right witness', () => {
  it('covers every D invariant', () => expect(Object.keys(D).sort()).toEqual(familyIds('D').sort()));
  negativeSuite(D);
});

describe('D: what is allowed', () => {
  const only = ['D1', 'D2', 'D3'].map((id) => invariantById(id)!);

  it('the booted scenarios keep the linear maps linear and the direct map NX, at both paging depths', () => {
    expect(checkAll(booted, undefined, only)).toEqual([]);
    expect(checkAll(modelBootedState(kernelScenario({ levels: 5 })), undefined, only)).toEqual([]);
  });

  it('other regions may map any frame with any permission: vmalloc, modules, the LDT remap below __PAGE_OFFSET, past the end of memory', () => {
    const s = withLeaves(
      booted,
      leaf(L.vmallocStart + 5000, LONE, '4K', PAGE_KERNEL_RO),
      leaf(L.modules, K.textPfn + 1, '4K', PAGE_KERNEL_ROX),
      leaf(L.ldtRemap, LONE + 2, '4K', PAGE_KERNEL_ROX),
      leaf(DM + booted.config.frames, 7, '2M', PAGE_KERNEL_ROX),
    );
    expect(checkAll(s, undefined, only)).toEqual([]);
  });

  it('a dump has no memory size, so its direct-map region is unknown and D holds vacuously', () => {
    const bad = setProt(remapPage(booted, DM + LONE, LONE + 1), DM + LONE + 600, { write: false, execKernel: true });
    expect(checkAll(bad, undefined, only).map((v) => v.id)).toEqual(['D1', 'D3']);
    expect(checkAll(dumpLike(bad), undefined, only)).toEqual([]);
  });

  it('free frames may stay in the direct map: the page allocator keeps them there (debug_pagealloc aside)', () => {
    const free = withFrameFlags(booted, LONE, 4096, { use: 'free' });
    expect(invariantById('D4')!.check(free)).toEqual([]);
    expect(invariantById('D4')!.holds(free)).toEqual([]);
  });

  it('a scoped check looks only at the leaves of its scope', () => {
    const bad = remapPage(booted, DM + LONE, LONE + 1);
    expect(invariantById('D1')!.check(bad, { vpn: DM + LONE, pages: 1 })).toHaveLength(1);
    expect(invariantById('D1')!.check(bad, { vpn: DM + LONE + 1, pages: 8 })).toEqual([]);
  });
});
