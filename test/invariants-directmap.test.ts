/**
 * D family: the direct map and the high map are linear, the direct map is never executable, only it maps free frames,
 * and frames removed from it or freed are cached nowhere else (D5, D7) and go back to it before they are freed (D6).
 */
import { describe, expect, it } from 'vitest';
import { PAGES, X86_64_LAYOUT_4LEVEL as L } from '../spec/address.ts';
import { checkAll, invariantById } from '../checker/index.ts';
import { KERNEL_IMAGE as K, kernelScenario } from '../spec/scenario.ts';
import { PAGE_KERNEL_RO, PAGE_KERNEL_ROX, type AbstractState, type Leaf, type Prot, type TlbEntry } from '../spec/state.ts';
import { DM, IMAGE, USER_RO, bootedState, dumpLike, leaf, leafAt, modelBootedState, replaceLeafAt, withFrameFlags, withLeaves, withoutRange } from './states.ts';
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

const DM2M = leafAt(booted, DM + LONE);
const tlb = (cpu: number, l: Leaf, root = 0): TlbEntry => ({ cpu, root, leaf: l });
const withTlb = (s: AbstractState, ...entries: TlbEntry[]): AbstractState => ({ ...s, tlb: entries });
const owing = (s: AbstractState, vpn: number, pages: number): AbstractState => ({ ...s, pendingFlush: [{ vpn, pages, reason: 'unmap' }] });
/** The direct map with the 2M leaf of LONE split to 4K, the pieces `keep` picks left (set_direct_map_invalid_noflush of the others). */
function dmSplit(keep: (i: number) => boolean): AbstractState {
  return withLeaves(withoutRange(booted, DM2M.vpn, 512), ...Array.from({ length: 512 }, (_, i) => leaf(DM2M.vpn + i, DM2M.pfn + i, '4K', DM2M.prot)).filter((_, i) => keep(i)));
}
const about = (re: RegExp) => expect.stringMatching(re) as unknown as string;

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
  D5: [
    {
      name: 'set_direct_map_invalid of two pages, then the obligation flushed elsewhere: the 2M translation is still cached',
      state: () => withTlb(withFrameFlags(dmSplit((i) => i !== 3 && i !== 4), LONE + 3, 2, { noDirectMap: true }), tlb(1, DM2M)),
      want: { root: 0, vpn: DM + LONE + 3, pages: 2, frames: [{ pfn: LONE + 3, count: 2 }], detail: about(/cpu 1 caches .*frames 0x.*removed from the direct map/) },
    },
    {
      name: 'a secretmem page still cached through a vmalloc alias in another root',
      state: () => withTlb(withFrameFlags(booted, LONE + 9, 1, { noDirectMap: true }), tlb(0, leaf(L.vmallocStart + 7000, LONE + 9), 2)),
      want: { root: 2, vpn: L.vmallocStart + 7000, pages: 1, frames: [{ pfn: LONE + 9, count: 1 }] },
    },
  ],
  D6: [{
    name: 'secretmem frees its pages without set_direct_map_default_noflush',
    state: () => withFrameFlags(dmSplit((i) => i >= 4), LONE, 4, { use: 'free', noDirectMap: true }),
    want: { frames: [{ pfn: LONE, count: 4 }], detail: about(/free noDirectMap: freed while removed from the direct map/) },
  }],
  D7: [
    {
      name: 'vfree frees the pages before the lazy purge flushed the vmalloc range',
      state: () => owing(withTlb(withFrameFlags(booted, LONE + 10, 2, { use: 'free' }), tlb(0, leaf(L.vmallocStart + 7000, LONE + 10))), L.vmallocStart + 7000, 1),
      want: { root: 0, vpn: L.vmallocStart + 7000, pages: 1, frames: [{ pfn: LONE + 10, count: 1 }], detail: about(/a free frame cached outside its direct-map page/) },
    },
    {
      name: 'a 2M vmalloc translation of which some frames are free',
      state: () => withTlb(withFrameFlags(booted, 60 * 512 + 500, 100, { use: 'free' }), tlb(1, leaf(L.vmallocStart + 20 * 512, 60 * 512, '2M'))),
      want: { root: 0, vpn: L.vmallocStart + 20 * 512 + 500, pages: 12, frames: [{ pfn: 60 * 512 + 500, count: 12 }] },
    },
  ],
  D8: [
    {
      name: 'hot-removed memory still in the direct map (remove_memory before kernel_physical_mapping_remove)',
      state: () => withFrameFlags(booted, LONE, 3, { use: 'absent' }),
      want: { root: 0, vpn: DM + LONE, pages: 3, frames: [{ pfn: LONE, count: 3 }], detail: about(/the direct map maps a frame with no memory/) },
    },
    {
      name: 'a 1G direct-map leaf over part of a PCI hole',
      state: () => withFrameFlags(booted, 3 * 262144 + 7, 1000, { use: 'absent' }),
      want: { root: 0, vpn: DM + 3 * 262144 + 7, pages: 1000, frames: [{ pfn: 3 * 262144 + 7, count: 1000 }] },
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

  it('absent frames may be mapped outside the direct map (ioremap of a PCI BAR in the hole), and a hole the direct map skips is no D8', () => {
    const holed = withFrameFlags(withoutRange(booted, DM + LONE, 512), LONE, 512, { use: 'absent' });
    const s = withLeaves(holed, leaf(L.vmallocStart + 5000, LONE + 1, '4K', { ...PAGE_KERNEL_RO, cache: 'UC' }));
    expect(invariantById('D8')!.check(s)).toEqual([]);
    expect(invariantById('D8')!.holds(s)).toEqual([]);
  });

  it('free frames may stay in the direct map: the page allocator keeps them there (debug_pagealloc aside)', () => {
    const free = withFrameFlags(booted, LONE, 4096, { use: 'free' });
    expect(invariantById('D4')!.check(free)).toEqual([]);
    expect(invariantById('D4')!.holds(free)).toEqual([]);
  });

  const none = (s: AbstractState, ...ids: string[]): void => {
    for (const id of ids) {
      expect(invariantById(id)!.check(s), `${id} check`).toEqual([]);
      expect(invariantById(id)!.holds(s), `${id} holds`).toEqual([]);
    }
  };

  it('D5: a flush owed over the removed pages excuses the cached translation until it is done', () => {
    const removed = withFrameFlags(dmSplit((i) => i !== 3 && i !== 4), LONE + 3, 2, { noDirectMap: true });
    none(owing(withTlb(removed, tlb(1, DM2M)), DM + LONE + 3, 2), 'D5');
    none(owing(withTlb(removed, tlb(1, DM2M)), DM + LONE + 500, 1), 'D5');
    // Cached nowhere: nothing owed either way.
    none(withTlb(removed, tlb(1, leafAt(removed, DM + LONE + 2))), 'D5');
    expect(invariantById('D5')!.check(owing(withTlb(removed, tlb(1, DM2M)), DM + LONE + 512, 1))).toHaveLength(1);
  });

  it("D5: a process reading its own secretmem page through its user mapping is secretmem's point, not a leak", () => {
    none(withTlb(withFrameFlags(booted, LONE + 9, 1, { noDirectMap: true }), tlb(0, leaf(0x400, LONE + 9, '4K', USER_RO), 4)), 'D5');
  });

  it('D6: a free frame in the direct map, or a removed one still in use, is fine', () => {
    none(withFrameFlags(booted, LONE, 4, { use: 'free' }), 'D6');
    none(withFrameFlags(dmSplit((i) => i >= 4), LONE, 4, { noDirectMap: true }), 'D6');
  });

  it('D7: a free frame may stay cached at its own direct-map page, owed flush or not; elsewhere not even with one', () => {
    const free = withFrameFlags(booted, LONE + 10, 2, { use: 'free' });
    none(withTlb(free, tlb(0, DM2M), tlb(1, leafAt(free, DM + LONE + 10))), 'D7');
    none(withTlb(free, tlb(0, leaf(L.vmallocStart + 7000, LONE + 12))), 'D7');
    expect(invariantById('D7')!.check(owing(withTlb(free, tlb(0, leaf(L.vmallocStart + 7000, LONE + 11))), L.vmallocStart, 8192))).toHaveLength(1);
  });

  it('the TLB checks look at every cached entry, whatever the scope', () => {
    const free = withTlb(withFrameFlags(booted, LONE + 10, 2, { use: 'free' }), tlb(0, leaf(L.vmallocStart + 7000, LONE + 10)));
    expect(invariantById('D7')!.check(free, { vpn: DM, pages: 1 })).toHaveLength(1);
  });

  it('a scoped check looks only at the leaves of its scope', () => {
    const bad = remapPage(booted, DM + LONE, LONE + 1);
    expect(invariantById('D1')!.check(bad, { vpn: DM + LONE, pages: 1 })).toHaveLength(1);
    expect(invariantById('D1')!.check(bad, { vpn: DM + LONE + 1, pages: 8 })).toEqual([]);
  });
});
