/**
 * unmap's postcondition (spec/contracts/unmap.ts), clause by clause.
 */
import type { AbstractState } from '../../state.ts';
import { validateUnmap } from '../unmap.ts';
import { nothingBut, rangeFlush, rootEntries, type Effect } from './effect.ts';
import { firstMapped, removedAt, windowsOf } from './leaves.ts';
import { RangeSet, type Range } from './ranges.ts';
import { contractClauses, type Contract } from './relation.ts';

const say = contractClauses('unmap', {
  enoent: 'ENOENT no page of [vpn, vpn+pages) is mapped (a partly mapped range is fine; an entry of either kind, leaf or non-present, counts)',
  leaves: 'every leaf partly inside the range is split (split rule, hugepage.ts) recursively until each piece is wholly inside or wholly outside; the pieces inside are removed, the rest keep their attributes exactly',
  frames: 'frames are unchanged',
  tlb: 'TLB entries of every CPU whose leaf intersects the range are removed (with flush: false, no TLB is touched)',
  obligations: "obligations inside it discharged (flush.ts); with flush: false the range is owed a flush (reason 'unmap')",
  tables: "emptied tables are freed after that flush, so the footprint is the new leaves' one; with flush: false they stay pending free until a flush releases them",
});

/**
 * The range removed from init_mm: its pages unmapped (leaves and non-present entries
 * alike), the entries it cuts split by the split rule (their pieces outside kept exactly), the rest as it was. Also
 * setDirectMapInvalid's removal of direct-map pages.
 */
export function removal(before: AbstractState, range: Range, extra: Partial<Effect>): Effect {
  const entries = rootEntries(before);
  // Entries of both kinds go: the windows reach over every entry the edges split, and
  // the pieces outside keep their presence.
  return nothingBut(windowsOf(entries, [range]), { expect: removedAt(entries, new RangeSet([range])), ...extra });
}

export const UNMAP: Contract<'unmap'> = {
  source: 'spec/contracts/unmap.ts',
  say,
  args: (config, c) => validateUnmap(config, c.root, c.vpn, c.pages),
  state: (before, c) => (firstMapped(rootEntries(before), c) !== undefined ? null : { error: { errno: 'ENOENT', arg: 'vpn' }, clause: say.enoent }),
  scope: (_, c) => [c],
  // leaves: removal with the split rule; tlb, obligations, tables: the range is flushed
  // (entries meeting it dropped, debts there paid, pending tables there released), or
  // with flush: false owed, the emptied tables pending (noflush).
  effect: (before, c) =>
    removal(before, c, c.flush === false ? { flushed: RangeSet.EMPTY, owe: { range: c, reason: 'unmap' }, emptiedStayPending: true } : { flushed: rangeFlush([c]) }),
};
