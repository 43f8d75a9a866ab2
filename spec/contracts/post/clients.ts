/**
 * The postconditions of the kernel's page-table users (spec/contracts/clients.ts): what
 * their relations share, and applyToPageRange's. The others are in vmalloc.ts (vmalloc,
 * vfree, vmUnmapAliases), cpu-local.ts (kmap_local and the mermap), pool.ts
 * (allocUnmapped) and walk.ts (walkPageRange).
 *
 * Every client edits init_mm. Its bookkeeping (AbstractState.clients) is part of the
 * effect (effect.ts `clients`): the relation states the records the contract says and
 * checkClients drops the stale mermap allocations the effect's flushes meet.
 *
 * The direct-map steps some clients take (vfree's vm_reset_perms, the pool's
 * __rmqueue_direct_map) are set_direct_map_invalid_noflush / _default_noflush, restated
 * here for both readings: strict's (spec/contracts/directmap.ts: the pages removed, then
 * mapped 4K PAGE_KERNEL) and linux's CPA walk (spec/contracts/linux.ts: invalid makes the
 * entries non-present, RW and G lost; default makes them present with RW; a hole is
 * skipped; an entry cut by the range is split, which flushes every TLB). A linux split
 * that fails (ENOMEM) keeps what it did and the client ignores it: that case is not
 * stated here (prose only, held by refinement).
 */
import { PAGES, VPN_LIMIT, type Pfn, type Vpn } from '../../address.ts';
import type { ClientState } from '../../clients.ts';
import { PAGE_KERNEL, type AbstractState, type Leaf, type Prot } from '../../state.ts';
import { validateApply } from '../clients.ts';
import { directMapVpn } from '../directmap.ts';
import { nothingBut, rootEntries } from './effect.ts';
import { changedAt, kinds, leafEnd, meeting, removedAt, unchangedAt, windowsOf, type Entries, type EntryChange, type Expectation } from './leaves.ts';
import { RangeSet, rangeEnd, type Range } from './ranges.ts';
import { contractClauses, needsClients, type Contract } from './relation.ts';

// ---- shared by the client relations ----

/** The bookkeeping of a state with the capability (relate checks it first). */
export const clientsOf = (s: AbstractState): ClientState => s.clients!;

/** `list` with `x` put in its place by `order` (the bookkeeping's canonical order). */
export function inserted<T>(list: readonly T[], x: T, order: (a: T, b: T) => number): T[] {
  return [...list, x].sort(order);
}

export const byVpn = (a: { readonly vpn: Vpn }, b: { readonly vpn: Vpn }): number => a.vpn - b.vpn;

/** The frames' direct-map pages (they are consecutive: __va is linear). */
export const directMapOf = (s: AbstractState, frames: { readonly pfn: Pfn; readonly count: number }): Range => ({
  vpn: directMapVpn(s.config.levels, frames.pfn),
  pages: frames.count,
});

/** [lowest start, highest end) of the ranges: what one flush_tlb_kernel_range of them all covers (the purge's, the pool's). */
export function hull(ranges: readonly Range[]): Range {
  const lo = Math.min(...ranges.map((r) => r.vpn));
  return { vpn: lo, pages: Math.max(...ranges.map(rangeEnd)) - lo };
}

/** 4K leaves with `prot` from the range's first page on, each to `pfn` + its offset. */
export function fourK(range: Range, pfn: Pfn, prot: Prot): Expectation {
  return (p) => ({ leaf: { vpn: p, pfn: pfn + (p - range.vpn), size: '4K', prot }, until: rangeEnd(range) });
}

/** `parts` on their ranges (disjoint), `rest` elsewhere: an expectation pieced together. */
export function piecewise(parts: readonly { readonly range: Range; readonly expect: Expectation }[], rest: Expectation): Expectation {
  const sorted = [...parts].sort((a, b) => a.range.vpn - b.range.vpn);
  return (p) => {
    const part = sorted.find((x) => p >= x.range.vpn && p < rangeEnd(x.range));
    if (part !== undefined) {
      const e = part.expect(p);
      return { ...e, until: Math.min(e.until, rangeEnd(part.range)) };
    }
    const e = rest(p);
    const next = sorted.find((x) => x.range.vpn > p)?.range.vpn ?? VPN_LIMIT;
    return { ...e, until: Math.min(e.until, next) };
  };
}

/** linux's vunmap: every entry meeting the range cleared whole (a huge one with vunmap-huge, a non-present huge one as a bad entry), the rest as it was. */
export function clearedWhole(entries: Entries, range: Range): { readonly windows: RangeSet; readonly expect: Expectation } {
  const windows = windowsOf(entries, [range]);
  const old = unchangedAt(entries);
  return { windows, expect: piecewise(windows.ranges.map((w) => ({ range: w, expect: () => ({ until: rangeEnd(w) }) })), old) };
}

/** linux's __set_pages_np on a page: P and RW cleared (G with them); a non-present one is skipped. */
export const LINUX_INVALID: EntryChange = (prot, present) => (present ? { prot: { ...prot, write: false, global: false }, present: false } : { prot, present });
/** linux's __set_pages_p on a page: P and RW set. */
export const LINUX_DEFAULT: EntryChange = (prot) => ({ prot: { ...prot, write: true }, present: true });

/**
 * set_direct_map_invalid_noflush of the direct-map ranges over `source` (whose entries are
 * `entries` there): strict removes them (the split rule at the edges), linux makes them
 * non-present.
 */
export function dmInvalid(entries: Entries, ranges: RangeSet, linux: boolean): Expectation {
  return linux ? changedAt(unchangedAt(entries), ranges, LINUX_INVALID) : removedAt(entries, ranges);
}

/** set_direct_map_default_noflush of the direct-map ranges over `source`: strict maps every page 4K PAGE_KERNEL to its frame, linux makes what is there present with RW. */
export function dmDefault(s: AbstractState, source: Expectation, ranges: RangeSet, linux: boolean): Expectation {
  if (linux) return changedAt(source, ranges, LINUX_DEFAULT);
  const offset = directMapVpn(s.config.levels, 0);
  return piecewise(ranges.ranges.map((r) => ({ range: r, expect: fourK(r, r.vpn - offset, PAGE_KERNEL) })), source);
}

/**
 * Whether linux's CPA walk with `change` splits an entry over the ranges (one that meets
 * them, reaches past them, and changes): __split_large_page flushes every TLB.
 */
export function linuxSplits(entries: Entries, ranges: RangeSet, change: EntryChange): boolean {
  return ranges.ranges.some((r) =>
    kinds(entries).some(([list, present]) => {
      const [lo, hi] = meeting(list, r);
      return [list[lo], list[hi - 1]].some((l) => l !== undefined && (l.vpn < r.vpn || leafEnd(l) > rangeEnd(r)) && changes(change, l, present));
    }),
  );
}

function changes(change: EntryChange, l: Leaf, present: boolean): boolean {
  const next = change(l.prot, present);
  const p = next.prot;
  return next.present !== present || p.write !== l.prot.write || p.global !== l.prot.global;
}

// ---- applyToPageRange (apply_to_page_range with a populate callback) ----

const applySay = contractClauses('applyToPageRange', {
  huge: 'EINVAL vpn the range meets a huge leaf (or a non-present huge entry): strict refuses first and changes nothing',
  leaves: 'every page of the range without an entry gets a 4K leaf to pfn + (page - vpn) with prot (a PTE already set is left alone)',
  frames: 'applyToPageRange: frames are unchanged',
  tlb: 'no flush: TLBs and paging-structure caches are unchanged',
  obligations: 'no obligation: obligations are unchanged',
  tables: 'the tables down to PTE level exist for the whole range (linux reuses the ones it kept); ENOMEM tablePool',
  clients: "applyToPageRange: the clients' bookkeeping is unchanged",
});

/** The first huge entry (either kind) meeting the range, if any. */
function hugeIn(entries: Entries, r: Range): Leaf | undefined {
  for (const [list] of kinds(entries)) {
    const [lo, hi] = meeting(list, r);
    const l = list.slice(lo, hi).find((x) => PAGES[x.size] > 1);
    if (l !== undefined) return l;
  }
  return undefined;
}

/** The populate callback's leaves: a 4K leaf where no entry is, the entry as it was where one is (4K: no huge one meets the range). */
function populated(entries: Entries, c: { readonly vpn: Vpn; readonly pages: number; readonly pfn: Pfn }, prot: Prot): Expectation {
  const old = unchangedAt(entries);
  return (p) => {
    const e = old(p);
    if (e.leaf !== undefined) return e;
    return { leaf: { vpn: p, pfn: c.pfn + (p - c.vpn), size: '4K', prot }, until: Math.min(e.until, c.vpn + c.pages) };
  };
}

export const APPLY_TO_PAGE_RANGE: Contract<'applyToPageRange'> = {
  source:
    'spec/contracts/clients.ts (linux is not atomic: on EINVAL at a huge leaf or ENOMEM it keeps the PTEs and tables it made before, which a refusal here may not; its failures are prose only)',
  capability: needsClients('applyToPageRange'),
  say: applySay,
  args: (config, c) => validateApply(config, c.vpn, c.pages, c.pfn, c.prot),
  state: (before, c) => (hugeIn(rootEntries(before), c) === undefined ? null : { error: { errno: 'EINVAL', arg: 'vpn' }, clause: applySay.huge }),
  scope: (_, c) => [c],
  // leaves: the holes of the range filled with 4K leaves (the effective prot: the kernel
  // half's tables have no user bit, as map's); no flush; tables: strict's footprint
  // exactly, linux may fill tables it kept.
  effect: (before, c) => {
    const prot = c.prot.user ? { ...c.prot, user: false, execUser: false } : c.prot;
    const entries = rootEntries(before);
    const strict = nothingBut(windowsOf(entries, [c]), { expect: populated(entries, c, prot) });
    return [strict, { ...strict, emptiedMayStay: true }];
  },
};
