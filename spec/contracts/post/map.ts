/**
 * map's postcondition (spec/contracts/map.ts), clause by clause.
 */
import { PAGES, type PageSize, type Pfn, type Vpn } from '../../address.ts';
import type { Prot, SystemConfig } from '../../state.ts';
import type { CommandOf } from '../../operations.ts';
import { sizeSupported } from '../args.ts';
import { validateMap } from '../map.ts';
import { nothingBut, rangeFlush, rootEntries } from './effect.ts';
import { firstMapped, sizeAbove, type Expected } from './leaves.ts';
import { RangeSet } from './ranges.ts';
import { contractClauses, type Contract } from './relation.ts';

const say = contractClauses('map', {
  eexist: 'EEXIST some page of [vpn, vpn+pages) is already mapped',
  leaves: 'the leaves of root 0 are the old leaves plus, from vpn upward, one new leaf at a time of the largest size S ≤ maxPage the CPU supports with its page and frame both S-aligned and at least S pages left, each with prot',
  frames: 'frames are unchanged',
  tlb: 'every obligation that meets [vpn, vpn+pages) is flushed whole first (flush.ts); TLBs are otherwise unchanged (a new mapping needs no flush: x86 does not cache not-present entries)',
  obligations: 'every obligation that meets [vpn, vpn+pages) is flushed whole first; the others are unchanged',
  tables: 'ENOMEM the resulting radix footprint exceeds config.tablePool.count',
});

/** Whether a leaf of size s may sit at page p mapping frame f with `left` pages to go. */
function fits(config: SystemConfig, s: PageSize, p: Vpn, f: Pfn, left: number, maxPage: PageSize): boolean {
  return PAGES[s] <= PAGES[maxPage] && PAGES[s] <= left && p % PAGES[s] === 0 && f % PAGES[s] === 0 && sizeSupported(config, s);
}

/**
 * map's leaves from page p of the range on, each with `prot`: the largest size ≤ maxPage
 * that fits at p (4K always does), and leaves of that size after it up to where a larger
 * one could start (its alignment) or fewer than its pages are left. mapUser places its
 * leaves the same way (no cap).
 */
export function placedFrom(config: SystemConfig, c: { readonly vpn: Vpn; readonly pfn: Pfn; readonly pages: number }, maxPage: PageSize, prot: Prot, p: Vpn): Expected {
  const f = c.pfn + (p - c.vpn);
  const left = c.vpn + c.pages - p;
  const size = fits(config, '1G', p, f, left, maxPage) ? '1G' : fits(config, '2M', p, f, left, maxPage) ? '2M' : '4K';
  const n = PAGES[size];
  const room = p + Math.floor(left / n) * n;
  const bigger = sizeAbove(size);
  const until = bigger === undefined ? room : Math.min(room, p - (p % PAGES[bigger]) + PAGES[bigger]);
  return { leaf: { vpn: p, pfn: f, size, prot }, until };
}

/** map's leaves: placed with the effective prot (the kernel half's tables carry no user bit, _KERNPG_TABLE: strict refuses a user prot, P6; linux maps it, not user). */
function leavesFrom(config: SystemConfig, c: CommandOf<'map'>, p: Vpn): Expected {
  const prot = c.prot.user ? { ...c.prot, user: false, execUser: false } : c.prot;
  return placedFrom(config, c, c.maxPage ?? '1G', prot, p);
}

export const MAP: Contract<'map'> = {
  source: 'spec/contracts/map.ts',
  say,
  args: (config, c) => validateMap(config, c.root, c.vpn, c.pfn, c.pages, c.prot, c.maxPage === undefined ? {} : { maxPage: c.maxPage }),
  // EEXIST: a leaf with a page in the range.
  state: (before, c) => (firstMapped(rootEntries(before), c) === undefined ? null : { error: { errno: 'EEXIST', arg: 'vpn' }, clause: say.eexist }),
  scope: (_, c) => [c],
  // leaves: the range, nothing there before, is tiled from vpn by leaves of the largest
  // size that fits at each; tlb, obligations: the owed ranges it meets flushed whole.
  effect: (before, c) =>
    nothingBut(new RangeSet([c]), {
      expect: (p) => leavesFrom(before.config, c, p),
      flushed: rangeFlush(before.pendingFlush.filter((o) => o.vpn < c.vpn + c.pages && c.vpn < o.vpn + o.pages)),
    }),
};
