/**
 * A root's entries as the model keeps them: the leaves (present) and the non-present
 * entries, two sorted, disjoint lists that between them never overlap. A strict
 * `ProtChange` applies to both kinds (spec/contracts/protect.ts); `present` moves
 * entries from one list to the other, frame and prot kept.
 */
import type { Vpn } from '../spec/address.ts';
import type { Leaf } from '../spec/state.ts';
import type { ProtChange } from '../spec/system.ts';
import { always, intersecting, makeLeaf, mappedPages, mapInside, mergeLeaves, removeInside, splitAtEdges, splitInsideTo4K, takeInside } from './leaves.ts';
import { applyProtChange, entryChanges, protChanges } from './protect.ts';

export interface Entries {
  readonly leaves: readonly Leaf[];
  readonly nonPresent: readonly Leaf[];
}

/**
 * `change` on the entries of one list (`present` says which): edge entries split only
 * where the entry changes (split rule), or always with kernel4k, which also splits every
 * entry inside down to 4K (force_split); then the new prot inside. Entries left whole at
 * an edge do not change, so they stay as they are.
 */
function changeList(list: readonly Leaf[], present: boolean, vpn: Vpn, pages: number, change: ProtChange): readonly Leaf[] {
  if (list.length === 0) return list;
  const force = change.kernel4k === true;
  const split = splitAtEdges(list, vpn, pages, force ? always : (l) => entryChanges(l.prot, present, change));
  const small = force ? splitInsideTo4K(split, vpn, pages) : split;
  return mapInside(small, vpn, pages, (l) => (protChanges(l.prot, change) ? makeLeaf(l.vpn, l.pfn, l.size, applyProtChange(l.prot, change)) : l));
}

/** `change` applied to every entry of [vpn, vpn+pages), of either kind; pages without an entry are skipped. */
export function changeEntries(e: Entries, vpn: Vpn, pages: number, change: ProtChange): Entries {
  const leaves = changeList(e.leaves, true, vpn, pages, change);
  const nonPresent = changeList(e.nonPresent, false, vpn, pages, change);
  // Every entry whose presence flips was split at the edges above, so it lies wholly inside.
  if (change.present === false) return { leaves: removeInside(leaves, vpn, pages), nonPresent: mergeLeaves(nonPresent, takeInside(leaves, vpn, pages)) };
  if (change.present === true) return { leaves: mergeLeaves(leaves, takeInside(nonPresent, vpn, pages)), nonPresent: removeInside(nonPresent, vpn, pages) };
  return { leaves, nonPresent };
}

/** The entries of both kinds that intersect [vpn, vpn+pages) (leaves first, then non-present ones). */
export function entriesMeeting(e: Entries, vpn: Vpn, pages: number): Leaf[] {
  const meeting = (list: readonly Leaf[]): readonly Leaf[] => {
    const [lo, hi] = intersecting(list, vpn, pages);
    return list.slice(lo, hi);
  };
  return meeting(e.leaves).concat(meeting(e.nonPresent));
}

/** How many pages of [vpn, vpn+pages) have an entry of either kind. */
export function pagesWithEntry(e: Entries, vpn: Vpn, pages: number): number {
  return mappedPages(e.leaves, vpn, pages) + mappedPages(e.nonPresent, vpn, pages);
}
