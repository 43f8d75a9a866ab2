/**
 * C family: the clients' bookkeeping against init_mm, the TLBs and the frames (vmalloc areas
 * live and lazily freed, kmap_local stacks, mermap allocations in use and stale, unmapped
 * pageblocks), each invariant's bad state built by hand around the booted kernel, what they
 * allow, and the exemptions the clients earn in P7, D5, D6 and the L family's owed flushes.
 */
import { describe, expect, it } from 'vitest';
import { checkAll, invariantById } from '../checker/index.ts';
import { PAGES } from '../spec/address.ts';
import {
  KM_MAX_IDX, MERMAP_CPU_PAGES, MERMAP_USABLE_PAGES, emptyClients, kmapSlotVpn, mermapSlice, vmallocRegion, type ClientState, type KmapSlot, type LazyArea, type MermapAlloc,
  type MermapCpu, type VmallocArea,
} from '../spec/clients.ts';
import { PAGEBLOCK_PAGES } from '../spec/contracts/isolation.ts';
import { STRICT_POLICY } from '../spec/contracts/outcome.ts';
import { PAGE_KERNEL, type AbstractState, type Leaf, type Prot, type TlbEntry } from '../spec/state.ts';
import { DM, bootedState, leaf, replaceLeafAt, withFrameFlags, withLeaves, withoutRange } from './states.ts';
import { familyIds, negativeSuite, type NegativeCase } from './invariants-suite.ts';

const booted = bootedState();
const { levels, cpus } = booted.config;
const V = vmallocRegion(levels).vpn;
/** Data frames only the direct map maps (between the image and the table pool). */
const LONE = 50 * 256;
const NON_GLOBAL: Prot = { ...PAGE_KERNEL, global: false };

/** A live 8-page area, a lazily freed one whose frames the purge still holds (strict). */
const AREA: VmallocArea = { vpn: V + 8192, pages: 8, pfn: LONE + 16, huge: false, resetPerms: false };
const LAZY: LazyArea = { vpn: V + 9000, pages: 4, pfn: LONE + 64 };
/** Cpu 1's stack of two kmap_local slots. */
const SLOTS: readonly KmapSlot[] = [0, 1].map((idx) => ({ cpu: 1, idx, vpn: kmapSlotVpn(1, idx), pfn: LONE + 100 + idx }));
/** The unmapped pageblock: its first two frames handed out (data), the rest the pool's (free), all out of the direct map. */
const POOL = 56 * 256;
const HANDED_OUT = 2;
/** Cpu 0's mermap: the two handed-out pages mapped in use, and a data page put without a flush since. */
const M0 = mermapSlice(levels, 0);
const IN_USE: MermapAlloc = { cpu: 0, vpn: M0, pages: 2, pfn: POOL };
const STALE: MermapAlloc = { cpu: 0, vpn: M0 + 2, pages: 1, pfn: LONE + 200 };

/** 4K leaves of a linear range of the bookkeeping. */
const leavesOf = (r: { vpn: number; pages: number; pfn: number }, prot: Prot = PAGE_KERNEL): Leaf[] =>
  Array.from({ length: r.pages }, (_, i) => leaf(r.vpn + i, r.pfn + i, '4K', prot));
const slotLeaf = (s: KmapSlot): Leaf => leaf(s.vpn, s.pfn);
const mermapOf = (cpu0: Partial<MermapCpu>): MermapCpu[] =>
  emptyClients(levels, cpus).mermap.map((m) => (m.cpu === 0 ? { ...m, next: M0 + 3, allocs: [IN_USE], stale: [STALE], ...cpu0 } : m));
const CLIENTS: ClientState = { ...emptyClients(levels, cpus), vmalloc: [AREA], lazy: [LAZY], kmap: SLOTS, mermap: mermapOf({}), unmapped: [POOL] };

/** The bookkeeping of the clean state with some parts replaced. */
const withClients = (s: AbstractState, c: Partial<ClientState> = {}): AbstractState => ({ ...s, clients: { ...CLIENTS, ...c } });
const withTlb = (s: AbstractState, ...tlb: TlbEntry[]): AbstractState => ({ ...s, tlb });
const owing = (s: AbstractState, vpn: number, pages: number): AbstractState => ({ ...s, pendingFlush: [{ vpn, pages, reason: 'vfree' }] });
const withoutClients = (s: AbstractState): AbstractState => {
  const { clients: _, ...rest } = s;
  return rest;
};

/** The booted kernel with every client's bookkeeping, consistent with the tables and the frames. */
function clean(): AbstractState {
  let s = withoutRange(booted, DM + POOL, PAGEBLOCK_PAGES);
  s = withFrameFlags(s, POOL, PAGEBLOCK_PAGES, { use: 'free', noDirectMap: true });
  s = withFrameFlags(s, POOL, HANDED_OUT, { use: 'data' });
  s = withLeaves(s, ...leavesOf(AREA), ...SLOTS.map(slotLeaf), ...leavesOf(IN_USE, NON_GLOBAL));
  return withClients(s);
}
const base = clean();

const about = (re: RegExp) => expect.stringMatching(re) as unknown as string;
/** Witness fields for pages [vpn, vpn + pages) of init_mm and the frames from pfn. */
const at = (vpn: number, pages: number, pfn: number, detail: RegExp) => ({ root: 0, vpn, pages, frames: [{ pfn, count: pages }], detail: about(detail) });

/** What invariant `id` finds, checked to be what its definition finds too. */
function found(id: string, s: AbstractState) {
  const inv = invariantById(id)!;
  const ws = inv.check(s);
  expect(inv.holds(s), `${id} holds`).toEqual(ws);
  return ws;
}
const none = (s: AbstractState, ...ids: string[]): void => {
  for (const id of ids) expect(found(id, s).map((w) => w.detail), id).toEqual([]);
};

const C: Record<string, NegativeCase[]> = {
  C1: [
    {
      name: 'a stale mermap allocation\'s frame freed (the caller skipped the full flush before the free)',
      state: () => withFrameFlags(base, STALE.pfn, 1, { use: 'free' }),
      want: at(STALE.vpn, 1, STALE.pfn, /cpu 0's stale mermap allocation .*freed while its CPU may still cache/),
    },
    {
      name: 'linux vfree: the pages go back while the lazy purge still owes the area its flush',
      state: () => owing(withFrameFlags(withClients(base, { lazy: [LAZY] }), LAZY.pfn, LAZY.pages, { use: 'free' }), LAZY.vpn, LAZY.pages),
      want: at(LAZY.vpn, LAZY.pages, LAZY.pfn, /lazily freed vmalloc area .*still waits for its flush/),
    },
    {
      // Only the freed frame is named, at the page that mapped it.
      name: 'one frame of a three-page stale allocation freed',
      state: () => withFrameFlags(withClients(base, { mermap: mermapOf({ next: M0 + 5, stale: [{ ...STALE, pages: 3 }] }) }), STALE.pfn + 2, 1, { use: 'free' }),
      want: at(STALE.vpn + 2, 1, STALE.pfn + 2, /stale mermap allocation/),
    },
  ],
  C2: [
    {
      name: 'a page of a live area unmapped behind vmalloc\'s back',
      state: () => withoutRange(base, AREA.vpn + 3, 1),
      want: at(AREA.vpn + 3, 1, AREA.pfn + 3, /live vmalloc area .*no entry of init_mm translates them/),
    },
    {
      // The witness names the frame the area's page should reach.
      name: 'a page of a live area mapped to another frame',
      state: () => replaceLeafAt(base, AREA.vpn + 5, (l) => ({ ...l, pfn: l.pfn + 1 })),
      want: at(AREA.vpn + 5, 1, AREA.pfn + 5, /no entry of init_mm/),
    },
    {
      name: 'frames of a live area freed (a __free_page of a vm->pages entry)',
      state: () => withFrameFlags(base, AREA.pfn + 2, 2, { use: 'free' }),
      want: at(AREA.vpn + 2, 2, AREA.pfn + 2, /frames of a live area are free/),
    },
    {
      name: 'a live area allocated over a lazily freed one (the VA reused before the purge)',
      state: () => withClients(base, { lazy: [{ ...LAZY, vpn: AREA.vpn + 6 }] }),
      want: { root: 0, vpn: AREA.vpn + 6, pages: 2, detail: about(/live vmalloc area .* and the lazily freed vmalloc area .* share pages/) },
    },
  ],
  C3: [
    {
      name: 'a slot pushed past a hole in the stack',
      state: () => {
        const skipped: KmapSlot = { ...SLOTS[1]!, idx: 2, vpn: kmapSlotVpn(1, 2) };
        return withClients(withLeaves(withoutRange(base, SLOTS[1]!.vpn, 1), slotLeaf(skipped)), { kmap: [SLOTS[0]!, skipped] });
      },
      // The bookkeeping says idx 2 where the stack's second slot must be idx 1.
      want: { root: 0, vpn: kmapSlotVpn(1, 2), pages: 1, detail: about(/slot 2 .*must be idx 1/) },
    },
    {
      // The kunmap-out-of-order mutant: it clears the slot asked for and pops the top.
      name: 'the bottom slot unmapped while the stack pops the top',
      state: () => withClients(withoutRange(base, SLOTS[0]!.vpn, 1), { kmap: [SLOTS[0]!] }),
      want: at(SLOTS[0]!.vpn, 1, SLOTS[0]!.pfn, /no present 4K leaf of init_mm maps it/),
    },
    {
      name: 'a page of a CPU\'s slots mapped with nothing on its stack (a stray set_fixmap of a FIX_KMAP index)',
      state: () => withLeaves(base, leaf(kmapSlotVpn(2, 0), LONE + 300)),
      want: at(kmapSlotVpn(2, 0), 1, LONE + 300, /maps kmap_local slot pages .* that its CPU does not hold/),
    },
    {
      name: 'a slot\'s page mapped by a 4K leaf to another frame',
      state: () => replaceLeafAt(base, SLOTS[1]!.vpn, (l) => ({ ...l, pfn: l.pfn + 7 })),
      want: at(SLOTS[1]!.vpn, 1, SLOTS[1]!.pfn, /kmap_local slot 1 .*no present 4K leaf/),
    },
  ],
  C4: [
    {
      name: 'cpu 0 caches cpu 1\'s kmap_local slot',
      state: () => withTlb(base, { cpu: 0, root: 0, leaf: slotLeaf(SLOTS[0]!) }),
      want: at(SLOTS[0]!.vpn, 1, SLOTS[0]!.pfn, /cpu 0 caches .*cpu 1's kmap_local slots/),
    },
    {
      name: 'cpu 2 caches a page of cpu 0\'s mermap allocation',
      state: () => withTlb(base, { cpu: 2, root: 0, leaf: leaf(M0 + 1, POOL + 1, '4K', NON_GLOBAL) }),
      want: at(M0 + 1, 1, POOL + 1, /cpu 2 caches .*cpu 0's mermap slice/),
    },
    {
      // Process roots share init_mm's kernel half: the witness is the root the entry names.
      name: 'a stale mermap translation of cpu 0 cached by cpu 3 through a process root',
      state: () => withTlb(base, { cpu: 3, root: 3, leaf: leaf(STALE.vpn, STALE.pfn, '4K', NON_GLOBAL) }),
      want: { root: 3, vpn: STALE.vpn, pages: 1, frames: [{ pfn: STALE.pfn, count: 1 }] },
    },
  ],
  C5: [
    {
      name: 'an allocation mapped global (arch_mermap_pgprot_allowed not asked)',
      state: () => withLeaves(withoutRange(base, M0, 2), ...leavesOf(IN_USE)),
      want: at(M0, 2, POOL, /in-use mermap allocation .*no present 4K non-global leaf/),
    },
    {
      name: 'a page of an allocation in use unmapped',
      state: () => withoutRange(base, M0 + 1, 1),
      want: at(M0 + 1, 1, POOL + 1, /non-global leaf/),
    },
    {
      name: 'mermap_put without clearing the PTEs: the stale allocation still mapped',
      state: () => withLeaves(base, ...leavesOf(STALE, NON_GLOBAL)),
      want: at(STALE.vpn, 1, STALE.pfn, /maps mermap slice pages .* that its CPU does not hold/),
    },
    {
      name: 'an allocation past the bump pointer',
      state: () => withClients(base, { mermap: mermapOf({ next: M0 + 1, stale: [] }) }),
      want: at(M0, 2, POOL, /reaches past the bump pointer/),
    },
    {
      name: 'an allocation in the slice\'s last page, which mermap_get_reserved keeps',
      state: () => {
        const last: MermapAlloc = { cpu: 0, vpn: M0 + MERMAP_USABLE_PAGES, pages: 1, pfn: LONE + 400 };
        return withLeaves(withClients(base, { mermap: mermapOf({ next: M0 + MERMAP_CPU_PAGES, allocs: [IN_USE, last] }) }), leaf(last.vpn, last.pfn, '4K', NON_GLOBAL));
      },
      want: at(M0 + MERMAP_USABLE_PAGES, 1, LONE + 400, /not inside the usable part of its slice/),
    },
    {
      name: 'a range reused before the flush: the allocation in use shares a page with a stale one',
      state: () => withClients(base, { mermap: mermapOf({ stale: [{ ...STALE, vpn: M0 + 1 }] }) }),
      want: { root: 0, vpn: M0 + 1, pages: 1, detail: about(/in-use mermap allocation .* and cpu 0's stale mermap allocation .* share pages/) },
    },
  ],
  C6: [
    {
      name: 'a handed-out page\'s direct-map page put back (set_direct_map_default_noflush by its caller)',
      state: () => withLeaves(base, leaf(DM + POOL + 1, POOL + 1)),
      want: at(DM + POOL + 1, 1, POOL + 1, /reachable through the direct map/),
    },
    {
      // Only the handed-out pages of the cached 2M entry are C6's.
      name: 'the pageblock\'s 2M direct-map translation survives on cpu 3 (the removal not flushed)',
      state: () => withTlb(base, { cpu: 3, root: 0, leaf: leaf(DM + POOL, POOL, '2M') }),
      want: at(DM + POOL, HANDED_OUT, POOL, /cpu 3 caches .*handed out by __GFP_UNMAPPED/),
    },
  ],
  C7: [
    {
      name: 'a pool frame back in the direct map by its facts (noDirectMap cleared)',
      state: () => withFrameFlags(base, POOL + 100, 1, { noDirectMap: false }),
      want: { frames: [{ pfn: POOL + 100, count: 1 }], detail: about(/not removed from the direct map/) },
    },
    {
      name: 'a page table allocated from an unmapped pageblock',
      state: () => withFrameFlags(base, POOL + 10, 1, { use: 'pagetable' }),
      want: { frames: [{ pfn: POOL + 10, count: 1 }], detail: about(/whose frames are free or data/) },
    },
    {
      name: 'set_memory_p on a free pool frame\'s direct-map page',
      state: () => withLeaves(base, leaf(DM + POOL + 300, POOL + 300)),
      want: at(DM + POOL + 300, 1, POOL + 300, /back in the direct map/),
    },
  ],
};

describe('C: each invariant catches its bad state with the right witness', () => {
  it('covers every C invariant', () => expect(Object.keys(C).sort()).toEqual(familyIds('C').sort()));
  negativeSuite(C);
});

describe('C: what is allowed', () => {
  it('the clean state holds the whole catalogue, the exemptions included', () => {
    // The subtle parts are really there: a mermap leaf of a frame out of the direct map, and free frames of the pool out of it.
    expect(base.roots[0]!.leaves).toContainEqual(leaf(M0, POOL, '4K', NON_GLOBAL));
    expect(base.frames.find((r) => r.pfn <= POOL + 9 && POOL + 9 < r.pfn + r.count)).toMatchObject({ use: 'free', noDirectMap: true });
    expect(checkAll(base)).toEqual([]);
  });

  it('a state without the clients capability has no C witness, however bad its bookkeeping would be', () => {
    for (const c of Object.values(C).flat()) {
      const s = withoutClients(c.state());
      for (const id of familyIds('C')) expect(invariantById(id)!.holds(s), `${c.name}: ${id}`).toEqual([]);
      none(s, ...familyIds('C'));
    }
  });

  it('C1: a freed frame is fine once no TLB can reach it: the purge flushed the lazy area, or the frames are still held', () => {
    const freedLazy = withFrameFlags(withClients(base, { lazy: [LAZY] }), LAZY.pfn, LAZY.pages, { use: 'free' });
    none(freedLazy, 'C1');
    // Strict's vfree: owed, but the frames wait for the purge.
    none(owing(base, LAZY.vpn, LAZY.pages), 'C1');
    // An obligation elsewhere, or one that only touches the area's end.
    none(owing(freedLazy, LAZY.vpn + LAZY.pages, 8), 'C1');
    expect(found('C1', owing(freedLazy, LAZY.vpn + LAZY.pages - 1, 8))).toHaveLength(1);
  });

  it('C2: a page set_memory_np left non-present still maps its frame; a huge area is mapped by its 2M leaf', () => {
    const np = withoutRange(base, AREA.vpn + 4, 1);
    const root = { ...np.roots[0]!, nonPresent: [leaf(AREA.vpn + 4, AREA.pfn + 4)] };
    none({ ...np, roots: [root, ...np.roots.slice(1)] }, 'C2');
    const huge: VmallocArea = { vpn: V + 64 * PAGES['2M'], pages: PAGES['2M'], pfn: 60 * 256, huge: true, resetPerms: false };
    none(withClients(withLeaves(base, leaf(huge.vpn, huge.pfn, '2M')), { vmalloc: [AREA, huge] }), 'C2');
    // Live and lazy areas side by side share no page.
    none(withClients(base, { lazy: [{ ...LAZY, vpn: AREA.vpn + AREA.pages }] }), 'C2');
  });

  it('C3: empty stacks, and a CPU holding every one of its KM_MAX_IDX slots beside another CPU\'s', () => {
    const full = Array.from({ length: KM_MAX_IDX }, (_, idx): KmapSlot => ({ cpu: 3, idx, vpn: kmapSlotVpn(3, idx), pfn: LONE + 500 + idx }));
    none(withClients(withLeaves(base, ...full.map(slotLeaf)), { kmap: [...SLOTS, ...full] }), 'C3');
    none(withClients(withoutRange(base, SLOTS[1]!.vpn, 2), { kmap: [] }), 'C3');
  });

  it('C4: a CPU caches its own slots and slice, and pages next to the regions', () => {
    none(withTlb(base, { cpu: 1, root: 0, leaf: slotLeaf(SLOTS[1]!) }, { cpu: 0, root: 0, leaf: leaf(M0, POOL, '4K', NON_GLOBAL) }), 'C4');
    none(withTlb(base, { cpu: 0, root: 0, leaf: leaf(kmapSlotVpn(0, 0) + 1, LONE) }, { cpu: 0, root: 0, leaf: leaf(mermapSlice(levels, cpus), LONE) }), 'C4');
  });

  it('C5: an allocation may fill the usable part of its slice exactly; a stale one has no leaves', () => {
    const whole: MermapAlloc = { cpu: 0, vpn: M0, pages: MERMAP_USABLE_PAGES, pfn: LONE + 600 };
    const s = withLeaves(withoutRange(base, M0, 2), ...leavesOf(whole, NON_GLOBAL));
    none(withClients(s, { mermap: mermapOf({ next: M0 + MERMAP_USABLE_PAGES, allocs: [whole], stale: [] }) }), 'C5');
  });

  it('C6 and C7: the pool\'s free frames are not C6\'s, and a TLB entry at their direct-map page is not C7\'s', () => {
    const cached = withTlb(base, { cpu: 0, root: 0, leaf: leaf(DM + POOL + 9, POOL + 9) });
    none(cached, 'C6', 'C7');
    // The pageblock taken back for a mapped allocation (flag cleared, frames back in the direct map): nothing to judge.
    none(withClients(withLeaves(withFrameFlags(base, POOL, PAGEBLOCK_PAGES, { noDirectMap: false }), leaf(DM + POOL, POOL, '2M')), { unmapped: [] }), 'C6', 'C7');
  });
});

describe('C: scoped checks', () => {
  it('a scope over the area finds its unmapped page; a scope elsewhere does not', () => {
    const s = withoutRange(base, AREA.vpn + 3, 1);
    expect(invariantById('C2')!.check(s, { vpn: AREA.vpn, pages: 1 })).toMatchObject([at(AREA.vpn + 3, 1, AREA.pfn + 3, /no entry/)]);
    expect(invariantById('C2')!.check(s, { vpn: DM, pages: 512 })).toEqual([]);
  });

  it('the frame facts of a pageblock, which have no address, are judged whatever the scope', () => {
    const s = withFrameFlags(base, POOL + 100, 1, { noDirectMap: false });
    expect(invariantById('C7')!.check(s, { vpn: V, pages: 1 })).toMatchObject([{ frames: [{ pfn: POOL + 100, count: 1 }] }]);
  });
});

describe('the exemptions and owed flushes the clients bring to other families', () => {
  it('P7: a mermap leaf of a frame out of the direct map passes; the same leaf elsewhere, or without the capability, does not', () => {
    none(base, 'P7');
    const vmap = withLeaves(base, leaf(V + 20000, POOL, '4K', NON_GLOBAL));
    expect(found('P7', vmap)).toMatchObject([at(V + 20000, 1, POOL, /removed from the direct map is mapped/)]);
    expect(found('P7', withoutClients(base))).toMatchObject([at(M0, 1, POOL, /removed from the direct map/), at(M0 + 1, 1, POOL + 1, /removed from the direct map/)]);
  });

  it('D6: a pool frame free with noDirectMap passes; a free one out of the direct map beside the pool does not', () => {
    none(base, 'D6');
    const beside = withFrameFlags(base, POOL + PAGEBLOCK_PAGES, 4, { use: 'free', noDirectMap: true });
    expect(found('D6', beside)).toMatchObject([{ frames: [{ pfn: POOL + PAGEBLOCK_PAGES, count: 4 }] }]);
    // A run that straddles the pageblock's end: only the part past it is D6's.
    const straddles = withFrameFlags(base, POOL + 500, 20, { use: 'free', noDirectMap: true });
    expect(found('D6', straddles).map((w) => w.frames)).toEqual([[{ pfn: POOL + PAGEBLOCK_PAGES, count: 8 }]]);
    expect(found('D6', withoutClients(base)).map((w) => w.frames)).toEqual([[{ pfn: POOL + HANDED_OUT, count: PAGEBLOCK_PAGES - HANDED_OUT }]]);
  });

  it('D5: a translation of a removed frame cached at its mermap page passes; at a vmalloc page it does not', () => {
    none(withTlb(base, { cpu: 0, root: 0, leaf: leaf(M0, POOL, '4K', NON_GLOBAL) }), 'D5');
    expect(found('D5', withTlb(base, { cpu: 0, root: 0, leaf: leaf(V + 20000, POOL, '4K', NON_GLOBAL) }))).toHaveLength(1);
  });

  it('a stale mermap translation on its own CPU is owed (L1, L2 pass), on another CPU it is not (L1, L2 and C4); a free frame behind it breaks C1', () => {
    const cachedStale = (cpu: number) => withTlb(base, { cpu, root: 0, leaf: leaf(STALE.vpn, STALE.pfn, '4K', NON_GLOBAL) });
    none(cachedStale(0), 'L1', 'L2', 'C1', 'C4');
    for (const id of ['L1', 'L2', 'C4']) expect(found(id, cachedStale(1)), id).toHaveLength(1);
    const freed = withFrameFlags(cachedStale(0), STALE.pfn, 1, { use: 'free' });
    none(freed, 'L1', 'L2');
    expect(found('C1', freed)).toMatchObject([at(STALE.vpn, 1, STALE.pfn, /stale mermap allocation/)]);
  });

  it('the strict policy ends with C1 then C7', () => {
    expect(STRICT_POLICY.slice(-3).map((p) => p.id)).toEqual(['A2', 'C1', 'C7']);
  });
});
