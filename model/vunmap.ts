/**
 * The linux profile's unmap: vunmap_range of mm/vmalloc.c (spec/contracts/linux.ts,
 * "## map, unmap, split, collapse"). No split: every entry that meets the range goes
 * whole, and the kernel says so where it is not a plain clear of a present entry.
 */
import { PAGES, type Vpn } from '../spec/address.ts';
import type { Leaf } from '../spec/state.ts';
import type { KernelEvent } from '../spec/system.ts';
import { intersecting, replace } from './leaves.ts';

export interface Vunmapped {
  /** Both lists with every entry meeting the range removed. */
  readonly leaves: readonly Leaf[];
  readonly nonPresent: readonly Leaf[];
  /** The entries removed, of both kinds. */
  readonly removed: readonly Leaf[];
  /** What the kernel printed, in address order. */
  readonly events: readonly KernelEvent[];
}

/**
 * The event clearing `e` prints, or null:
 * - a present 1G/2M leaf (pud/pmd_clear_huge) that the range does not cover:
 *   WARN_ON(next - addr < PUD/PMD_SIZE), `vunmap-huge` with the leaf's range;
 * - a non-present 1G/2M entry, bad to pud/pmd_none_or_clear_bad (no PSE, not a table):
 *   "bad pud/pmd", `bad-entry` with its range, covered or not;
 * - a non-present 4K entry (ptep_get_and_clear, WARN_ON(!pte_none && !pte_present)):
 *   `vunmap-nonpresent` with its page.
 */
function eventFor(e: Leaf, present: boolean, vpn: Vpn, pages: number): KernelEvent | null {
  const n = PAGES[e.size];
  const at = { vpn: e.vpn, pages: n, pfn: e.pfn };
  if (!present) return { kind: e.size === '4K' ? 'vunmap-nonpresent' : 'bad-entry', ...at };
  if (e.size !== '4K' && (e.vpn < vpn || e.vpn + n > vpn + pages)) return { kind: 'vunmap-huge', ...at };
  return null;
}

/** __vunmap_range_noflush over [vpn, vpn+pages) of the two entry lists. */
export function vunmap(leaves: readonly Leaf[], nonPresent: readonly Leaf[], vpn: Vpn, pages: number): Vunmapped {
  const [lo, hi] = intersecting(leaves, vpn, pages);
  const [nlo, nhi] = intersecting(nonPresent, vpn, pages);
  const met = [
    ...leaves.slice(lo, hi).map((e) => ({ e, present: true })),
    ...nonPresent.slice(nlo, nhi).map((e) => ({ e, present: false })),
  ].sort((a, b) => a.e.vpn - b.e.vpn);
  // The walk meets the entries in address order: a huge entry before the pages after it.
  const events: KernelEvent[] = [];
  for (const { e, present } of met) {
    const ev = eventFor(e, present, vpn, pages);
    if (ev !== null) events.push(ev);
  }
  return {
    leaves: replace(leaves, lo, hi, []),
    nonPresent: replace(nonPresent, nlo, nhi, []),
    removed: met.map((m) => m.e),
    events,
  };
}
