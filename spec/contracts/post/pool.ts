/**
 * The __GFP_UNMAPPED pool (spec/contracts/clients.ts, "allocUnmapped" and "The pool and
 * the core frame operations"): allocUnmapped's postcondition, and the pool's rule for
 * an allocation made as allocFrames makes it (vmalloc's frames): a free pageblock of the
 * pool it meets is taken back whole.
 */
import type { Pfn } from '../../address.ts';
import { pageblockOf } from '../../clients.ts';
import { PAGEBLOCK_PAGES } from '../isolation.ts';
import type { AbstractState, FrameRun } from '../../state.ts';
import { validateAllocUnmapped } from '../clients.ts';
import { LINUX_DEFAULT, clientsOf, directMapOf, dmDefault, dmInvalid, hull, linuxSplits } from './clients.ts';
import { nothingBut, rangeFlush, rootEntries, rootLeaves, type Debt, type DirectMapFlag } from './effect.ts';
import { firstHole, leavesOnly, windowsOf, type Expectation } from './leaves.ts';
import { RangeSet } from './ranges.ts';
import { contractClauses, needsClients, type Contract } from './relation.ts';

type Frames = { readonly pfn: Pfn; readonly count: number };

/** The first frames of the pageblocks (PAGEBLOCK_PAGES frames each) that [pfn, +count) meets. */
export function pageblocksMet(c: Frames): Pfn[] {
  const out: Pfn[] = [];
  for (let pb = pageblockOf(c.pfn); pb < c.pfn + c.count; pb += PAGEBLOCK_PAGES) out.push(pb);
  return out;
}

/** A pageblock's frames that memory has (the last one may be cut short). */
export const blockFrames = (s: AbstractState, pb: Pfn): Frames => ({ pfn: pb, count: Math.min(PAGEBLOCK_PAGES, s.config.frames - pb) });

/** Whether every frame of the range has facts `ok` accepts. */
function everyFrame(s: AbstractState, r: Frames, ok: (run: FrameRun) => boolean): boolean {
  return s.frames.every((run) => run.pfn + run.count <= r.pfn || run.pfn >= r.pfn + r.count || ok(run));
}

const isFree = (run: FrameRun): boolean => run.use === 'free';
const isUnmapped = (s: AbstractState, pb: Pfn): boolean => clientsOf(s).unmapped.includes(pb);

/**
 * allocFrames' refusal with the pool (EBUSY pfn): a frame of the range is not free, or
 * lies in an unmapped pageblock some frame of which is not free (the pool gives a
 * pageblock back only whole).
 */
export function allocRefused(s: AbstractState, c: Frames): boolean {
  if (!everyFrame(s, c, isFree)) return true;
  return pageblocksMet(c).some((pb) => isUnmapped(s, pb) && !everyFrame(s, blockFrames(s, pb), isFree));
}

/**
 * What an allocation of the range does to the pool (__rmqueue_direct_map with
 * want_mapped): every unmapped pageblock it meets goes back to the direct map whole,
 * set_direct_map_default_noflush of its frames (strict: 4K PAGE_KERNEL leaves; linux:
 * its entries present with RW; a CPA split there flushes every TLB), which owes its
 * direct-map range, and its flag is cleared. Nothing when it meets none. allocFrames'
 * relation can take it as vmalloc's does.
 */
export function takeBack(s: AbstractState, c: Frames, linux: boolean): {
  readonly ranges: RangeSet;
  readonly expect: (source: Expectation) => Expectation;
  readonly splits: boolean;
  readonly noDirectMap: readonly DirectMapFlag[];
  readonly owe: readonly Debt[];
  readonly unmapped: readonly Pfn[];
} {
  const back = pageblocksMet(c).filter((pb) => isUnmapped(s, pb));
  const blocks = back.map((pb) => blockFrames(s, pb));
  const ranges = new RangeSet(blocks.map((b) => directMapOf(s, b)));
  return {
    ranges,
    expect: (source) => dmDefault(s, source, ranges, linux),
    splits: linux && linuxSplits(rootEntries(s), ranges, LINUX_DEFAULT),
    noDirectMap: blocks.map((b) => ({ ...b, value: false })),
    owe: ranges.ranges.map((r) => ({ range: r, reason: 'setDirectMapDefault' })),
    unmapped: clientsOf(s).unmapped.filter((pb) => !back.includes(pb)),
  };
}

/**
 * A pageblock the pool can take: not unmapped, its frames all free and in the direct map
 * (noDirectMap clear and a present leaf at each direct-map page: there is something for
 * set_direct_map_invalid_noflush to remove).
 */
function takeable(s: AbstractState, pb: Pfn): boolean {
  const f = blockFrames(s, pb);
  return everyFrame(s, f, (r) => isFree(r) && !r.noDirectMap) && firstHole(leavesOnly(rootLeaves(s)), directMapOf(s, f)) === undefined;
}

/** allocUnmapped's EBUSY: a frame neither a free frame of an unmapped pageblock nor in a pageblock the pool can take. */
function poolRefused(s: AbstractState, c: Frames): boolean {
  return pageblocksMet(c).some((pb) => {
    if (!isUnmapped(s, pb)) return !takeable(s, pb);
    const lo = Math.max(pb, c.pfn);
    return !everyFrame(s, { pfn: lo, count: Math.min(pb + PAGEBLOCK_PAGES, c.pfn + c.count) - lo }, isFree);
  });
}

const say = contractClauses('allocUnmapped', {
  ebusy: 'EBUSY pfn a frame is neither a free frame of an unmapped pageblock nor in a pageblock the pool can take: one not unmapped whose frames are all free and in the direct map',
  leaves: "every pageblock the range meets that is not unmapped is taken, all together: set_direct_map_invalid_noflush of its frames (strict: their direct-map pages removed, the split rule at the edges; linux: made non-present, RW and G lost)",
  frames: "the taken pageblocks' frames get noDirectMap (they stay free: the pool's); then the frames of the range become data",
  tlb: 'then one flush_tlb_kernel_range of their direct-map range (more than 33 pages: every TLB and paging-structure cache on every CPU emptied)',
  obligations: "that flush discharges every obligation, set_direct_map_invalid_noflush's with them",
  tables: 'the tables the removal empties are released by that flush; ENOMEM tablePool (and strict EPERM pfn): the direct-map removal of a pageblock taken',
  clients: 'the taken pageblocks are flagged unmapped',
});

export const ALLOC_UNMAPPED: Contract<'allocUnmapped'> = {
  source: "spec/contracts/clients.ts (linux's direct-map removal is not atomic: a split that fails keeps what the walk did before; that failure is prose only)",
  capability: needsClients('allocUnmapped'),
  say,
  args: (config, c) => validateAllocUnmapped(config, c.pfn, c.count),
  state: (before, c) => (poolRefused(before, c) ? { error: { errno: 'EBUSY', arg: 'pfn' }, clause: say.ebusy } : null),
  scope: (before, c) => pageblocksMet(c).map((pb) => directMapOf(before, blockFrames(before, pb))),
  // leaves: the taken pageblocks' direct-map pages removed (strict) or non-present
  // (linux); tlb, obligations, tables: one flush of their direct-map range; frames:
  // noDirectMap on the pageblocks, then the range data; clients: the pageblocks flagged.
  effect: (before, c) => {
    const taken = pageblocksMet(c).filter((pb) => !isUnmapped(before, pb));
    const data = { frameUse: [{ pfn: c.pfn, count: c.count, value: 'data' as const }] };
    if (taken.length === 0) return nothingBut(RangeSet.EMPTY, data);
    const blocks = taken.map((pb) => blockFrames(before, pb));
    const dm = new RangeSet(blocks.map((b) => directMapOf(before, b)));
    const entries = rootEntries(before);
    const cs = clientsOf(before);
    const common = {
      ...data,
      flushed: rangeFlush([hull(dm.ranges)]),
      noDirectMap: blocks.map((b) => ({ ...b, value: true })),
      clients: { ...cs, unmapped: [...cs.unmapped, ...taken].sort((a, b) => a - b) },
    };
    return [false, true].map((linux) => nothingBut(windowsOf(entries, dm.ranges), { ...common, expect: dmInvalid(entries, dm, linux) }));
  },
};
