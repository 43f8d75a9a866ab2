/**
 * L family: TLBs and paging-structure caches against the tables. A cached translation may
 * differ from the tables only where a flush is owed (L1, L2); no page is cached at two
 * sizes that disagree and no cached table entry points to a freed table, owed flush or not
 * (L3, L4).
 */
import { describe, expect, it } from 'vitest';
import { PAGES, X86_64_LAYOUT_4LEVEL as L, pagesPerEntry } from '../spec/address.ts';
import { checkAll, invariantById } from '../checker/index.ts';
import { KERNEL_IMAGE as K } from '../spec/scenario.ts';
import { PAGE_KERNEL, PAGE_KERNEL_RO, type AbstractState, type FlushObligation, type Leaf, type Prot, type TlbEntry, type WalkCacheEntry } from '../spec/state.ts';
import { DM, IMAGE, bootedState, leaf, leafAt, replaceLeafAt, withLeaves, withoutRange } from './states.ts';
import { familyIds, negativeSuite, type NegativeCase } from './invariants-suite.ts';

const booted = bootedState();
const V = L.vmallocStart;
/** A data frame only the direct map maps, 2M-aligned: its direct-map leaf is the 2M leaf at DM + LONE. */
const LONE = 50 * 256;
const DM2M = leafAt(booted, DM + LONE);
const TEXT = leafAt(booted, IMAGE + K.textPfn);

const tlb = (cpu: number, l: Leaf, root = 0): TlbEntry => ({ cpu, root, leaf: l });
const withTlb = (s: AbstractState, ...entries: TlbEntry[]): AbstractState => ({ ...s, tlb: entries });
const owing = (s: AbstractState, ...pendingFlush: FlushObligation[]): AbstractState => ({ ...s, pendingFlush });
const owed = (vpn: number, pages: number): FlushObligation => ({ vpn, pages, reason: 'setDirectMapInvalid' });
const withWalk = (s: AbstractState, ...walkCache: WalkCacheEntry[]): AbstractState => ({ ...s, walkCache });
const setProt = (s: AbstractState, vpn: number, p: Partial<Prot>) => replaceLeafAt(s, vpn, (l) => ({ ...l, prot: { ...l.prot, ...p } }));
/** The direct map with DM2M split into its 512 4K pieces (`keep` picks which stay), as a split or an unmap would leave it. */
const splitDm = (s: AbstractState, keep: (i: number) => boolean = () => true): AbstractState =>
  withLeaves(withoutRange(s, DM2M.vpn, 512), ...Array.from({ length: 512 }, (_, i) => leaf(DM2M.vpn + i, DM2M.pfn + i, '4K', DM2M.prot)).filter((_, i) => keep(i)));
const whole = (l: Leaf, root = 0) => ({ root, vpn: l.vpn, pages: PAGES[l.size], frames: [{ pfn: l.pfn, count: PAGES[l.size] }] });
const about = (re: RegExp) => expect.stringMatching(re) as unknown as string;

/** The RW 2M direct-map leaf cached while the tables hold it read-only (set_memory_ro of it, not flushed). */
const madeRo = withTlb(setProt(booted, DM + LONE, { write: false }), tlb(1, DM2M));
/** DM2M split to 4K in the tables, the 2M translation still cached on CPU 0. */
const splitStale = withTlb(splitDm(booted), tlb(0, DM2M));
const piece = (i: number, prot: Prot = DM2M.prot, pfn = DM2M.pfn + i): Leaf => leaf(DM2M.vpn + i, pfn, '4K', prot);

const CASES: Record<string, NegativeCase[]> = {
  L1: [
    {
      name: 'set_memory_ro without the flush: the cached translation still grants write',
      state: () => madeRo,
      want: { ...whole(DM2M), detail: about(/cpu 1 caches .*grants write that the tables do not/) },
    },
    {
      name: 'a cached translation with execute the tables do not give (set_memory_nx, not flushed)',
      state: () => withTlb(booted, tlb(0, { ...DM2M, prot: { ...DM2M.prot, execKernel: true } })),
      want: { ...whole(DM2M), detail: about(/grants kernel execute/) },
    },
    {
      name: 'vunmap without the flush: the translation of an unmapped vmalloc page is still cached',
      state: () => withTlb(booted, tlb(1, leaf(V + 7000, LONE + 3))),
      want: { root: 0, vpn: V + 7000, pages: 1, frames: [{ pfn: LONE + 3, count: 1 }], detail: about(/the tables do not map/) },
    },
    {
      name: 'a cached translation to another frame than the tables say',
      state: () => withTlb(withLeaves(booted, leaf(V + 7000, LONE + 3)), tlb(0, leaf(V + 7000, LONE + 4))),
      want: { root: 0, vpn: V + 7000, pages: 1, frames: [{ pfn: LONE + 4, count: 1 }], detail: about(/to another frame/) },
    },
    {
      name: 'a 2M cached translation over 4K tables of which one page is gone',
      state: () => withTlb(splitDm(booted, (i) => i !== 300), tlb(0, DM2M)),
      want: { ...whole(DM2M), detail: about(new RegExp(`do not map 0x${(DM2M.vpn + 300).toString(16)}`)) },
    },
    {
      name: 'an owed flush elsewhere does not excuse it',
      state: () => owing(madeRo, owed(DM2M.vpn + 512, 4)),
      want: whole(DM2M),
    },
  ],
  L2: [
    {
      name: 'a cached 2M translation over 4K tables (split without the flush): grants nothing more, but is not current',
      state: () => splitStale,
      want: { ...whole(DM2M), detail: about(/the tables hold 4K leaf/) },
    },
    {
      name: 'a cached 4K translation under a 2M leaf (collapse without the flush)',
      state: () => withTlb(booted, tlb(1, piece(7))),
      want: { root: 0, vpn: DM2M.vpn + 7, pages: 1, frames: [{ pfn: DM2M.pfn + 7, count: 1 }] },
    },
    {
      name: 'a cached translation with another memory type (set_memory_uc, not flushed)',
      state: () => withTlb(setProt(booted, DM + LONE, { cache: 'UC-' }), tlb(0, DM2M)),
      want: { ...whole(DM2M), detail: about(/the tables hold it with .*UC-/) },
    },
    {
      name: 'a cached translation with fewer rights than the tables (set_memory_rw of an alias, not flushed)',
      state: () => withTlb(booted, tlb(0, { ...DM2M, prot: PAGE_KERNEL_RO })),
      want: whole(DM2M),
    },
    {
      name: 'a cached translation of a root that has none of its pages',
      state: () => withTlb(booted, tlb(0, DM2M, 3)),
      want: { ...whole(DM2M, 3), detail: about(/map none of its pages/) },
    },
  ],
  L3: [
    {
      name: 'a 2M and a 4K translation of one page to different frames on one CPU',
      state: () => withTlb(booted, tlb(0, DM2M), tlb(0, piece(5, DM2M.prot, 999))),
      want: { ...whole(DM2M), detail: about(/maps the shared pages to other frames/) },
    },
    {
      name: 'a 4K and a 2M translation of one page with other attributes (the 4K one first in canonical order)',
      state: () => withTlb(booted, tlb(1, piece(0, PAGE_KERNEL_RO)), tlb(1, DM2M)),
      want: { root: 0, vpn: DM2M.vpn, pages: 1, frames: [{ pfn: DM2M.pfn, count: 1 }], detail: about(/with other attributes/) },
    },
    {
      name: 'an owed flush does not excuse it (the split\'s flush_tlb_all comes before the new entries change)',
      state: () => owing(withTlb(splitDm(booted), tlb(0, DM2M), tlb(0, piece(9, { ...PAGE_KERNEL, cache: 'WC' }))), owed(DM2M.vpn, 512)),
      want: whole(DM2M),
    },
  ],
  L4: [{
    name: 'a CPU caches the pmd entry of a PTE table that was freed (pmd_free_pte_page without the INVLPG)',
    state: () => withWalk(splitDm(booted), { cpu: 1, root: 0, level: 1, vpn: DM2M.vpn, table: 'freed' }),
    want: { root: 0, vpn: DM2M.vpn, pages: 512, detail: about(/cpu 1 caches the pmd entry of root 0 .*which was freed/) },
  }, {
    name: 'a freed PMD table cached through its pud entry, with an owed flush',
    state: () => owing(withWalk(booted, { cpu: 0, root: 0, level: 1, vpn: DM2M.vpn, table: 'current' }, { cpu: 0, root: 0, level: 2, vpn: DM, table: 'freed' }), owed(DM, 1)),
    want: { root: 0, vpn: DM, pages: PAGES['1G'], detail: about(/pud entry/) },
  }],
};

describe('L: each invariant catches its bad state with the right witness', () => {
  it('covers every L invariant', () => expect(Object.keys(CASES).sort()).toEqual(familyIds('L').sort()));
  negativeSuite(CASES);
});

describe('L: what is allowed', () => {
  const only = familyIds('L').map((id) => invariantById(id)!);
  const none = (s: AbstractState, ids: readonly string[] = familyIds('L')): void => {
    for (const id of ids) {
      expect(invariantById(id)!.check(s), `${id} check`).toEqual([]);
      expect(invariantById(id)!.holds(s), `${id} holds`).toEqual([]);
    }
  };

  it('current translations on every CPU, with current and unlinked paging-structure caches', () => {
    const s = withWalk(
      withTlb(booted, tlb(0, DM2M), tlb(0, TEXT), tlb(1, DM2M), tlb(1, leafAt(booted, DM + 7))),
      { cpu: 0, root: 0, level: 2, vpn: DM, table: 'current' },
      { cpu: 0, root: 0, level: 3, vpn: DM - (DM % pagesPerEntry(4)), table: 'current' },
      { cpu: 1, root: 0, level: 1, vpn: V, table: 'unlinked' },
    );
    none(s);
    expect(checkAll(s, undefined, only)).toEqual([]);
    // A dump has no TLB, no caches: nothing to hold.
    none({ ...booted, frames: [], tablesInUse: 0 });
  });

  it('an owed flush over the pages excuses a stale translation (L1, L2), however it overlaps it', () => {
    none(owing(madeRo, owed(DM2M.vpn + 511, 1)), ['L1', 'L2']);
    none(owing(splitStale, owed(DM2M.vpn - 3, 4)), ['L1', 'L2']);
    none(owing(withTlb(booted, tlb(1, leaf(V + 7000, LONE + 3))), owed(V + 6990, 20)), ['L1', 'L2']);
    // ... but not an empty range, nor one just past the entry.
    expect(invariantById('L1')!.check(owing(madeRo, owed(DM2M.vpn + 512, 1)))).toHaveLength(1);
    const empty = owing(madeRo, { vpn: DM2M.vpn + 5, pages: 0, reason: 'x' });
    expect(invariantById('L1')!.check(empty)).toHaveLength(1);
    expect(invariantById('L1')!.holds(empty)).toHaveLength(1);
  });

  it('a cached translation with fewer rights than the tables breaks L2 only; one with more breaks both', () => {
    const fewer = withTlb(booted, tlb(0, { ...DM2M, prot: PAGE_KERNEL_RO }));
    expect(checkAll(fewer, undefined, only).map((v) => v.id)).toEqual(['L2']);
    expect(checkAll(madeRo, undefined, only).map((v) => v.id)).toEqual(['L1', 'L2']);
    expect(checkAll(splitStale, undefined, only).map((v) => v.id)).toEqual(['L2']);
  });

  it('a 2M translation cached over 4K tables that give the same frames and rights grants nothing more (L1 holds)', () => {
    none(splitStale, ['L1', 'L3', 'L4']);
  });

  it('sizes that agree, or entries of different CPUs or roots, are no L3 conflict', () => {
    none(withTlb(booted, tlb(0, DM2M), tlb(0, piece(5))), ['L3']);
    none(withTlb(booted, tlb(0, DM2M), tlb(1, piece(5, PAGE_KERNEL_RO, 999))), ['L3']);
    none(withTlb(booted, tlb(0, DM2M), tlb(0, piece(5, PAGE_KERNEL_RO, 999), 1)), ['L3']);
    // Two 4K entries of one page that differ are the same size: L2's concern, not L3's.
    none(withTlb(booted, tlb(0, piece(5)), tlb(0, piece(5, PAGE_KERNEL_RO))), ['L3']);
  });

  it('L3 pairs each conflict once, whatever order the TLB is listed in', () => {
    const entries = [tlb(0, piece(5, DM2M.prot, 999)), tlb(0, DM2M), tlb(0, piece(9, PAGE_KERNEL_RO))];
    const inv = invariantById('L3')!;
    for (const order of [entries, [...entries].reverse()]) {
      const s = withTlb(booted, ...order);
      expect(inv.check(s)).toHaveLength(2);
      expect(inv.holds(s)).toHaveLength(2);
      expect(inv.check(s).every((w) => w.vpn === DM2M.vpn && w.pages === 512)).toBe(true);
    }
  });

  it('L1 and L2 read the tables under a cached entry right when the leaves are out of order or overlap', () => {
    // The 4K pieces listed backwards (S4 reports it), and a 4K leaf inside the 2M one (T1 reports it).
    const backwards: AbstractState = { ...splitStale, roots: [{ ...splitStale.roots[0]!, leaves: [...splitStale.roots[0]!.leaves].reverse() }] };
    const inside: AbstractState = { ...booted, roots: [{ ...booted.roots[0]!, leaves: [...booted.roots[0]!.leaves, piece(3)].sort((a, b) => a.vpn - b.vpn || PAGES[b.size] - PAGES[a.size]) }] };
    const cases: [AbstractState, readonly string[]][] = [[backwards, ['L2']], [withTlb(inside, tlb(0, DM2M)), ['L2']]];
    for (const [s, ids] of cases) {
      for (const id of ['L1', 'L2']) {
        const inv = invariantById(id)!;
        expect(inv.check(s).length > 0, `${id} check`).toBe(ids.includes(id));
        expect(inv.holds(s).length > 0, `${id} holds`).toBe(ids.includes(id));
      }
    }
  });

  it('a scoped check looks at every cached entry: a TLB goes stale by what happens anywhere', () => {
    expect(invariantById('L1')!.check(madeRo, { vpn: V, pages: 1 })).toHaveLength(1);
    expect(invariantById('L2')!.check(splitStale, { vpn: V, pages: 1 })).toHaveLength(1);
  });
});
