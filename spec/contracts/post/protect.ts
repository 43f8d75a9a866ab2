/**
 * protect's postcondition (spec/contracts/protect.ts), clause by clause.
 */
import type { Prot, SystemConfig, Leaf } from '../../state.ts';
import type { ProtChange } from '../../system.ts';
import { directMapVpn } from '../directmap.ts';
import { validateProtect } from '../protect.ts';
import { rootLeaves } from './effect.ts';
import { changedAt, firstHole, leafEnd, meeting, unchangedAt, windowsOf } from './leaves.ts';
import { RangeSet, rangeEnd, type Range } from './ranges.ts';
import { contractClauses, type Contract } from './relation.ts';

const flushSentence = 'flushed on all CPUs (flush.ts): [vpn, vpn+pages), and with alias the direct-map pages of all those frames, mapped or not';

const say = contractClauses('protect', {
  enoent: 'ENOENT some page of [vpn, vpn+pages) is unmapped',
  leaves: 'every page p of the range gets its old prot with the change applied; a leaf only partly inside the range is split (split rule, recursively) only where its prot actually changes; a leaf whose prot stays is left whole; nothing is collapsed',
  alias: "with alias, for each frame f mapped by the range at a vpn outside the direct map, the page directMapVpn(f) then, as a second step after the range's own change, gets the change's write and cache fields only by the same rule; alias pages that are unmapped are skipped",
  frames: 'Frames are unchanged',
  tlb: flushSentence,
  obligations: flushSentence,
  tables: 'ENOMEM the splits need more tables than the pool has (pending tables there are released by the flush)',
});

/**
 * A page's prot after a set_memory_* request (system.ts, ProtChange): every field the
 * change gives is set, every other kept; `exec` sets execute for each privilege that can
 * reach the page, so a supervisor page never gains user execute.
 */
function changed(change: ProtChange): (old: Prot) => Prot {
  return (old) => ({
    ...old,
    ...(change.write === undefined ? {} : { write: change.write }),
    ...(change.exec === undefined ? {} : { execKernel: change.exec, execUser: change.exec && old.user }),
    ...(change.global === undefined ? {} : { global: change.global }),
    ...(change.cache === undefined ? {} : { cache: change.cache }),
  });
}

/**
 * The direct-map pages cpa_process_alias changes: those of the frames that the range maps
 * at pages outside the direct map ([directMapVpn(0), +frames), as isDirectMapVpn).
 */
function aliasPages(config: SystemConfig, leaves: readonly Leaf[], r: Range): Range[] {
  const directMap = new RangeSet([{ vpn: directMapVpn(config.levels, 0), pages: config.frames }]);
  const [lo, hi] = meeting(leaves, r);
  return leaves.slice(lo, hi).flatMap((l) =>
    directMap.outside(Math.max(l.vpn, r.vpn), Math.min(leafEnd(l), rangeEnd(r))).map((part) => ({ vpn: directMapVpn(config.levels, l.pfn + (part.vpn - l.vpn)), pages: part.pages })),
  );
}

const aliasOf = (config: SystemConfig, leaves: readonly Leaf[], c: { readonly vpn: number; readonly pages: number; readonly alias?: boolean }): Range[] =>
  c.alias === true ? aliasPages(config, leaves, c) : [];

export const PROTECT: Contract<'protect'> = {
  source: 'spec/contracts/protect.ts',
  say,
  args: (config, c) => validateProtect(config, c.vpn, c.pages, c.change),
  state: (before, c) => (firstHole(rootLeaves(before), c) === undefined ? null : { error: { errno: 'ENOENT', arg: 'vpn' }, clause: say.enoent }),
  scope: (before, c) => [c, ...aliasOf(before.config, rootLeaves(before), c)],
  effect: (before, c) => {
    const leaves = rootLeaves(before);
    const alias = aliasOf(before.config, leaves, c);
    // leaves: the range's own change, splitting only the leaves whose prot it alters.
    const own = changedAt(unchangedAt(leaves), new RangeSet([c]), changed(c.change));
    // alias: then write and cache (never exec, never global) on the alias pages, by the same rule.
    const expect = alias.length === 0 ? own : changedAt(own, new RangeSet(alias), changed({ write: c.change.write, cache: c.change.cache }));
    const ownWindow = windowsOf(leaves, [c]);
    const everything = [c, ...alias];
    return {
      windows: windowsOf(leaves, everything),
      expect,
      clauseAt: (p) => (ownWindow.has(p) ? say.leaves : say.alias),
      // tlb, obligations, tables: the range and every alias range flushed.
      flushed: new RangeSet(everything),
    };
  },
};
