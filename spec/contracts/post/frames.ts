/**
 * The postconditions of allocFrames and freeFrames (spec/contracts/frames.ts), clause by clause.
 */
import type { Pfn } from '../../address.ts';
import type { AbstractState, FrameUse, SystemConfig } from '../../state.ts';
import { validateFrames } from '../frames.ts';
import { nothingBut, rootEntries, type Effect } from './effect.ts';
import { unchangedAt, windowsOf } from './leaves.ts';
import { allocRefused, takeBack } from './pool.ts';
import { RangeSet } from './ranges.ts';
import { contractClauses, type Contract } from './relation.ts';

const allocSay = contractClauses('allocFrames', {
  ebusy: 'EBUSY some frame of the range is not free, or lies in an unmapped pageblock some frame of which is not free',
  leaves: "allocFrames: nothing else changes, but an unmapped pageblock met goes back to the direct map whole (set_direct_map_default_noflush)",
  frames: "the frames' use becomes data, every other fact kept (a pageblock taken back loses noDirectMap)",
  tlb: 'allocFrames: nothing else changes (linux: a CPA split taking a pageblock back flushes every TLB)',
  obligations: "allocFrames: nothing else changes, but a pageblock taken back owes its direct-map range",
  tables: 'allocFrames: nothing else changes, but the tables a pageblock taken back needs',
  clients: 'a pageblock taken back is no longer flagged unmapped',
});

const freeSay = contractClauses('freeFrames', {
  enoent: 'ENOENT some frame of the range is not a data frame',
  leaves: 'freeFrames: nothing else changes',
  frames: "the frames' use becomes free, every other fact kept",
  tlb: 'freeFrames: nothing else changes',
  obligations: 'freeFrames: nothing else changes',
  tables: 'freeFrames: nothing else changes',
});

type Frames = { readonly pfn: Pfn; readonly count: number };

/** The first frame of the range whose use is not `use`, or undefined. */
function firstNot(state: AbstractState, c: Frames, use: FrameUse): Pfn | undefined {
  for (const r of state.frames) {
    const from = Math.max(r.pfn, c.pfn);
    if (from < Math.min(r.pfn + r.count, c.pfn + c.count) && r.use !== use) return from;
  }
  return undefined;
}

const onFrames = {
  source: 'spec/contracts/frames.ts',
  args: (config: SystemConfig, c: Frames) => validateFrames(config, c.pfn, c.count),
  scope: () => [],
};

export const ALLOC_FRAMES: Contract<'allocFrames'> = {
  ...onFrames,
  say: allocSay,
  state: (before, c) => {
    const refused = before.clients === undefined ? firstNot(before, c, 'free') !== undefined : allocRefused(before, c);
    return refused ? { error: { errno: 'EBUSY', arg: 'pfn' }, clause: allocSay.ebusy } : null;
  },
  // frames: the range's use becomes data; with the clients' pool, every unmapped pageblock
  // it meets back in the direct map (spec/contracts/clients.ts), in either profile's reading.
  effect: (before, c) => {
    const frameUse = [{ pfn: c.pfn, count: c.count, value: 'data' as const }];
    if (before.clients === undefined) return nothingBut(RangeSet.EMPTY, { frameUse });
    const entries = rootEntries(before);
    return [false, true].map((linux): Effect => {
      const back = takeBack(before, c, linux);
      return {
        ...nothingBut(windowsOf(entries, back.ranges.ranges), { frameUse }),
        expect: back.expect(unchangedAt(entries)),
        flushed: back.splits ? 'all' : RangeSet.EMPTY,
        noDirectMap: back.noDirectMap,
        owe: back.owe,
        clients: { ...before.clients!, unmapped: back.unmapped },
        ...(linux ? { emptiedMayStay: true } : {}),
      };
    });
  },
};

export const FREE_FRAMES: Contract<'freeFrames'> = {
  ...onFrames,
  say: freeSay,
  state: (before, c) => (firstNot(before, c, 'data') === undefined ? null : { error: { errno: 'ENOENT', arg: 'pfn' }, clause: freeSay.enoent }),
  // frames: the range's use becomes free; nothing else.
  effect: (_, c) => nothingBut(RangeSet.EMPTY, { frameUse: [{ pfn: c.pfn, count: c.count, value: 'free' }] }),
};

