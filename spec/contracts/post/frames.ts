/**
 * The postconditions of allocFrames and freeFrames (spec/contracts/frames.ts), clause by clause.
 */
import type { Pfn } from '../../address.ts';
import type { AbstractState, FrameUse, SystemConfig } from '../../state.ts';
import { validateFrames } from '../frames.ts';
import { nothingBut } from './effect.ts';
import { RangeSet } from './ranges.ts';
import { contractClauses, type Contract } from './relation.ts';

const allocSay = contractClauses('allocFrames', {
  ebusy: 'EBUSY some frame of the range is not free',
  leaves: 'allocFrames: nothing else changes',
  frames: "the frames' use becomes data, every other fact kept",
  tlb: 'allocFrames: nothing else changes',
  obligations: 'allocFrames: nothing else changes',
  tables: 'allocFrames: nothing else changes',
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
  state: (before, c) => (firstNot(before, c, 'free') === undefined ? null : { error: { errno: 'EBUSY', arg: 'pfn' }, clause: allocSay.ebusy }),
  // frames: the range's use becomes data; nothing else.
  effect: (_, c) => nothingBut(RangeSet.EMPTY, { frameUse: [{ pfn: c.pfn, count: c.count, value: 'data' }] }),
};

export const FREE_FRAMES: Contract<'freeFrames'> = {
  ...onFrames,
  say: freeSay,
  state: (before, c) => (firstNot(before, c, 'data') === undefined ? null : { error: { errno: 'ENOENT', arg: 'pfn' }, clause: freeSay.enoent }),
  // frames: the range's use becomes free; nothing else.
  effect: (_, c) => nothingBut(RangeSet.EMPTY, { frameUse: [{ pfn: c.pfn, count: c.count, value: 'free' }] }),
};

