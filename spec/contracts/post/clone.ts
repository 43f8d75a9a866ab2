/**
 * The postconditions of the operations that copy init_mm's translation into a kernel
 * root of the isolation capability (spec/contracts/isolation.ts): ptiClone (into root 1,
 * the PTI user half), asiMap and asiUnmap (root 2, the ASI restricted direct map),
 * clause by clause.
 *
 * The relation is not told the profile, and the profiles differ here: where they do, the
 * effect is given twice (relation.ts: the step must do one of them wholly). The copies are
 * held page-wise (each page translates to init_mm's frame with the prot the profile
 * gives, in leaves of at most 2M), not leaf by leaf.
 */
import { PAGES, VPN_LIMIT, type Vpn } from '../../address.ts';
import { ASI_GLOBAL_ROOT, PTI_USER_ROOT, ldtRemap, slotPages } from '../../roots.ts';
import type { AbstractState, Leaf, Prot, RootId } from '../../state.ts';
import type { CommandOf } from '../../operations.ts';
import { validateAsiRange, validatePtiClone } from '../isolation.ts';
import { type Clause } from './clause.ts';
import { entriesOf, nothingBut, rangeFlush, rootEntries, rootLeaves, type Effect, type RootEdit } from './effect.ts';
import { changedAt, firstEndingAfter, leafAt, leafEnd, meeting, removedAt, unchangedAt, windowsOf } from './leaves.ts';
import { RangeSet, rangeEnd, type Range } from './ranges.ts';
import { contractClauses, needsIsolation, type Contract } from './relation.ts';

const cloneSay = contractClauses('ptiClone', {
  leaves: "in root 1 each unit (a 2M block whole where init_mm has a 2M or 1G leaf or, at level pmd, a present 4K leaf; else each present 4K leaf in the range) replaces what root 1 mapped there, a root-1 leaf meeting a unit removed whole; on the units root 1 translates as init_mm, never with a 1G leaf; linux: with _PAGE_GLOBAL set",
  frame: 'root 1 outside the units and the leaves it lost, and every other root, as before; init_mm unchanged under strict, and under linux but the global bit of every init_mm leaf a unit copies',
  frames: 'ptiClone: frames are unchanged',
  tlb: "strict flushes the units' pages (a kernel range flush: no TLB entry of any root meeting them stays, every paging-structure cache emptied); linux flushes nothing",
  obligations: "strict's flush discharges the obligations on the units' pages; linux: unchanged",
  tables: "root 1's footprint follows its leaves (linux may keep a table whose pmd entry a 2M unit overwrote); ENOMEM tablePool",
});

const asiMapSay = contractClauses('asiMap', {
  leaves: 'for each present init_mm leaf meeting the range, root 2 maps its pages in the range to the same frames with the same prot, in leaves of at most 2M, replacing what it mapped there; linux skips a 2M block init_mm maps with 4K leaves',
  frame: 'root 2 elsewhere, and every other root, as before',
  frames: 'asiMap: frames are unchanged',
  tlb: 'asiMap: no flush',
  obligations: 'asiMap: obligations are unchanged',
  tables: "root 2's footprint follows its leaves (linux keeps the tables it had); ENOMEM tablePool",
});

const asiUnmapSay = contractClauses('asiUnmap', {
  leaves: 'root 2 loses every page of the range (its leaves never straddle a pageblock)',
  frames: 'asiUnmap: frames are unchanged',
  tlb: 'a kernel range flush of the range (flush_tlb_kernel_range: every root, every paging-structure cache; more than 33 pages is a full flush)',
  obligations: 'that flush discharges the obligations in the range',
  tables: 'strict frees the tables it emptied in that flush, linux keeps them',
});

const BLOCK = PAGES['2M'];

/** What an operation copies from init_mm: the pages of the units, and the init_mm leaves read (whole). */
interface Copy {
  readonly units: RangeSet;
  readonly sources: RangeSet;
}

const extent = (l: Leaf): Range => ({ vpn: l.vpn, pages: PAGES[l.size] });
/** The part of a leaf inside [lo, hi). */
const clip = (l: Leaf, lo: Vpn, hi: Vpn): Range => ({ vpn: Math.max(l.vpn, lo), pages: Math.min(leafEnd(l), hi) - Math.max(l.vpn, lo) });

/** ptiClone's units (the contract's list), over init_mm's present leaves in the 2M blocks the range meets. */
function cloneUnits(before: AbstractState, c: CommandOf<'ptiClone'>): Copy {
  const lo = Math.floor(c.vpn / BLOCK) * BLOCK;
  const hi = Math.ceil((c.vpn + c.pages) / BLOCK) * BLOCK;
  const init = rootLeaves(before);
  const [a, b] = meeting(init, { vpn: lo, pages: hi - lo });
  const units: Range[] = [];
  const sources: Range[] = [];
  for (const l of init.slice(a, b)) {
    // A 4K leaf at pte level is its own unit only inside the range; every other leaf read is a unit's whole block.
    if (l.size === '4K' && c.level === 'pte' && (l.vpn < c.vpn || l.vpn >= c.vpn + c.pages)) continue;
    units.push(l.size === '4K' ? (c.level === 'pmd' ? { vpn: l.vpn - (l.vpn % BLOCK), pages: BLOCK } : extent(l)) : clip(l, lo, hi));
    sources.push(extent(l));
  }
  return { units: new RangeSet(units), sources: new RangeSet(sources) };
}

/** asiMap's copies: the present init_mm leaves meeting the range, clipped to it; linux skips the 4K-mapped blocks. */
function asiUnits(before: AbstractState, r: Range, skip4K: boolean): Copy {
  const init = rootLeaves(before);
  const [a, b] = meeting(init, r);
  const read = init.slice(a, b).filter((l) => !(skip4K && l.size === '4K'));
  return { units: new RangeSet(read.map((l) => clip(l, r.vpn, rangeEnd(r)))), sources: new RangeSet(read.map(extent)) };
}

/**
 * `target`'s own leaves after a copy: every leaf of it meeting a unit removed whole, and
 * on the units init_mm's translation (the prot as `prot` makes it), page-wise, in leaves
 * of at most 2M (root 1 never holds a 1G leaf; the restricted physmap stops at PMD level).
 */
function copyEdit(before: AbstractState, target: RootId, copy: Copy, prot: (p: Prot) => Prot, clause: Clause): RootEdit {
  const own = entriesOf(before.roots.find((r) => r.id === target)).leaves;
  const hit = copy.units.ranges.flatMap((u) => {
    const [lo, hi] = meeting(own, u);
    return own.slice(lo, hi).map(extent);
  });
  const init = rootLeaves(before);
  return {
    windows: new RangeSet([...copy.units.ranges, ...hit]),
    expect: (p) => {
      const u = copy.units.around(p);
      if (u === undefined) return { until: copy.units.nextEdge(p) };
      const l = leafAt(init, p);
      if (l === undefined) return { until: Math.min(rangeEnd(u), init[firstEndingAfter(init, p)]?.vpn ?? VPN_LIMIT) };
      return { leaf: { ...l, prot: prot(l.prot) }, until: Math.min(rangeEnd(u), leafEnd(l)) };
    },
    pagewise: '2M',
    clause,
  };
}

const asIs = (p: Prot): Prot => p;
const global = (p: Prot): Prot => ({ ...p, global: true });

/**
 * Linux: the top-level slots root 1 fills for the first time are diverged in every user
 * copy (pti.c: entries added after boot are not propagated); strict mirrors them.
 */
function newlyDiverged(before: AbstractState, units: RangeSet): Map<RootId, readonly Vpn[]> {
  const slot = slotPages(before.config.levels);
  const root1 = rootLeaves(before, PTI_USER_ROOT);
  const ldt = ldtRemap(before.config.levels).vpn;
  const fresh = new Set<Vpn>();
  for (const u of units.ranges) {
    for (let s = u.vpn - (u.vpn % slot); s < rangeEnd(u); s += slot) {
      const [lo, hi] = meeting(root1, { vpn: s, pages: slot });
      if (lo === hi && s !== ldt) fresh.add(s);
    }
  }
  const out = new Map<RootId, readonly Vpn[]>();
  if (fresh.size === 0) return out;
  for (const r of before.roots) {
    if (r.kind === 'process-user') out.set(r.id, [...new Set([...(r.diverged ?? []), ...fresh])].sort((x, y) => x - y));
  }
  return out;
}

export const PTI_CLONE: Contract<'ptiClone'> = {
  source: 'spec/contracts/isolation.ts',
  capability: needsIsolation('ptiClone'),
  say: cloneSay,
  args: (config, c) => validatePtiClone(config, c.vpn, c.pages, c.level),
  state: () => null,
  scope: () => [],
  // strict: root 1 gets the units as they are and they are flushed; linux: init_mm's copied leaves and their copies become global, nothing is flushed, new root-1 slots diverge in the user copies.
  effect: (before, c): Effect[] => {
    const copy = cloneUnits(before, c);
    const strict = nothingBut(RangeSet.EMPTY, {
      edits: new Map([[PTI_USER_ROOT, copyEdit(before, PTI_USER_ROOT, copy, asIs, cloneSay.leaves)]]),
      flushed: rangeFlush(copy.units.ranges),
    });
    const linux = nothingBut(copy.sources, {
      expect: changedAt(unchangedAt(rootEntries(before)), copy.sources, (prot, present) => ({ prot: global(prot), present })),
      clauseAt: () => cloneSay.frame,
      edits: new Map([[PTI_USER_ROOT, copyEdit(before, PTI_USER_ROOT, copy, global, cloneSay.leaves)]]),
      diverged: newlyDiverged(before, copy.units),
      emptiedMayStay: true,
    });
    return [strict, linux];
  },
};

export const ASI_MAP: Contract<'asiMap'> = {
  source: 'spec/contracts/isolation.ts',
  capability: needsIsolation('asiMap'),
  say: asiMapSay,
  args: (config, c) => validateAsiRange(config, c.vpn, c.pages),
  state: () => null,
  scope: () => [],
  // leaves: root 2 gets init_mm's translation where init_mm maps the range (linux: but its 4K-mapped blocks); no flush.
  effect: (before, c): Effect[] =>
    [false, true].map((linux) =>
      nothingBut(RangeSet.EMPTY, { edits: new Map([[ASI_GLOBAL_ROOT, copyEdit(before, ASI_GLOBAL_ROOT, asiUnits(before, c, linux), asIs, asiMapSay.leaves)]]), emptiedMayStay: linux }),
    ),
};

export const ASI_UNMAP: Contract<'asiUnmap'> = {
  source: 'spec/contracts/isolation.ts',
  capability: needsIsolation('asiUnmap'),
  say: asiUnmapSay,
  args: (config, c) => validateAsiRange(config, c.vpn, c.pages),
  state: () => null,
  scope: () => [],
  // leaves: root 2 loses the range; tlb, obligations: a kernel range flush of it; tables: emptied ones freed (strict) or kept (linux).
  effect: (before, c) => {
    const own = entriesOf(before.roots.find((r) => r.id === ASI_GLOBAL_ROOT));
    const edit = { windows: windowsOf(own, [c]), expect: removedAt(own, new RangeSet([c])), clause: asiUnmapSay.leaves };
    return nothingBut(RangeSet.EMPTY, { edits: new Map([[ASI_GLOBAL_ROOT, edit]]), flushed: rangeFlush([c]), emptiedMayStay: true });
  },
};
