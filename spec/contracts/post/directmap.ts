/**
 * The postconditions of setDirectMapInvalid and setDirectMapDefault
 * (spec/contracts/directmap.ts), clause by clause.
 */
import { PAGE_KERNEL, type AbstractState, type SystemConfig } from '../../state.ts';
import { directMapVpn, validateSetDirectMap } from '../directmap.ts';
import { nothingBut, rangeFlush, rootEntries, rootLeaves, type Effect } from './effect.ts';
import { firstHole, firstMapped, leavesOnly } from './leaves.ts';
import { RangeSet, rangeEnd, type Range } from './ranges.ts';
import { contractClauses, type Contract } from './relation.ts';
import { removal } from './unmap.ts';

const tlb = 'flush: true → the direct-map range is flushed on all CPUs (flush.ts); flush: false → TLBs are left alone';
const owed = (op: string): string => `flush: false → a flush obligation is added for the range with reason '${op}' (flush: true discharges the range, flush.ts)`;

const invalidSay = contractClauses('setDirectMapInvalid', {
  enoent: 'invalid: ENOENT some frame of the range has no direct-map page (directMapVpn unmapped)',
  leaves: 'invalid: the direct-map pages of the frames are removed (huge leaves split as needed, split rule)',
  frames: 'the frames get noDirectMap = true',
  tlb,
  obligations: owed('setDirectMapInvalid'),
  tables: 'with flush: true the tables the removal empties are freed after the flush; with flush: false each one is unlinked but pending free, still counted in tablesInUse and in pendingTableFrees until a flush releases it',
});

const defaultSay = contractClauses('setDirectMapDefault', {
  eexist: 'default: EEXIST some frame of the range has its direct-map page present (or non-present: an entry holds the slot, as for map)',
  leaves: "default: each frame's direct-map page is mapped 4K with PAGE_KERNEL (RW, NX, global, WB)",
  frames: 'and noDirectMap = false',
  tlb,
  obligations: owed('setDirectMapDefault'),
  tables: 'setDirectMapDefault adds mappings and never empties a table',
});

/** The frames a set_direct_map_* command names, and their direct-map pages. */
type Frames = { readonly pfn: number; readonly count: number };
const pagesOf = (s: AbstractState, c: Frames): Range => ({ vpn: directMapVpn(s.config.levels, c.pfn), pages: c.count });

/** tlb, obligations: flushed now, or owed for the range. */
function flushOrOwe(c: { readonly flush: boolean }, range: Range, reason: string): Partial<Effect> {
  return c.flush ? { flushed: rangeFlush([range]) } : { flushed: RangeSet.EMPTY, owe: { range, reason } };
}

/** What both set_direct_map_* contracts share: their arguments and the pages they act on. */
const onFrames = {
  source: 'spec/contracts/directmap.ts',
  args: (config: SystemConfig, c: Frames) => validateSetDirectMap(config, c.pfn, c.count),
  scope: (before: AbstractState, c: Frames) => [pagesOf(before, c)],
};

export const SET_DIRECT_MAP_INVALID: Contract<'setDirectMapInvalid'> = {
  ...onFrames,
  say: invalidSay,
  // ENOENT: a page without a leaf (a non-present entry maps nothing to invalidate).
  state: (before, c) => (firstHole(leavesOnly(rootLeaves(before)), pagesOf(before, c)) === undefined ? null : { error: { errno: 'ENOENT', arg: 'pfn' }, clause: invalidSay.enoent }),
  // leaves: removed as unmap removes; frames: noDirectMap set; tables: without the flush
  // the tables the removal empties stay pending.
  effect: (before, c) =>
    removal(before, pagesOf(before, c), {
      ...flushOrOwe(c, pagesOf(before, c), 'setDirectMapInvalid'),
      noDirectMap: { pfn: c.pfn, count: c.count, value: true },
      emptiedStayPending: !c.flush,
    }),
};

export const SET_DIRECT_MAP_DEFAULT: Contract<'setDirectMapDefault'> = {
  ...onFrames,
  say: defaultSay,
  // EEXIST: an entry of either kind on a page (default adds leaves where there is none).
  state: (before, c) => (firstMapped(rootEntries(before), pagesOf(before, c)) === undefined ? null : { error: { errno: 'EEXIST', arg: 'pfn' }, clause: defaultSay.eexist }),
  // leaves: one 4K PAGE_KERNEL leaf per frame, on pages nothing mapped; frames: noDirectMap cleared.
  effect: (before, c) => {
    const range = pagesOf(before, c);
    return nothingBut(new RangeSet([range]), {
      expect: (p) => ({ leaf: { vpn: p, pfn: c.pfn + (p - range.vpn), size: '4K', prot: PAGE_KERNEL }, until: rangeEnd(range) }),
      ...flushOrOwe(c, range, 'setDirectMapDefault'),
      noDirectMap: { pfn: c.pfn, count: c.count, value: false },
    });
  },
};
