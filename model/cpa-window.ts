/**
 * The part of the state one CPA request can touch, cut out for the walk and put back
 * after it, so that set_memory_* costs what it touches and not the whole map: the range,
 * and with cpa_process_alias the direct-map and high-map pages of every frame the range
 * holds (__va(pfn) and __START_KERNEL_map + pfn), widened to the whole entries that meet
 * them. Nothing outside reaches the walk: its lookups are all at pages of these ranges.
 */
import { PAGES, kernelLayout, type Vpn } from '../spec/address.ts';
import type { Leaf, SystemConfig } from '../spec/state.ts';
import type { Entry } from './cpa.ts';
import { intersecting, makeLeaf } from './leaves.ts';

interface Range {
  readonly vpn: Vpn;
  readonly pages: number;
}

/** Index intervals [lo, hi) of a sorted entry list, disjoint and in order. */
type Picks = readonly (readonly [number, number])[];

/** The request's own range, and with aliases the two alias pages of each frame it holds (merged). */
function windows(config: SystemConfig, lists: readonly (readonly Leaf[])[], vpn: Vpn, pages: number, checkAlias: boolean): Range[] {
  const out: Range[] = [{ vpn, pages }];
  if (checkAlias) {
    const L = kernelLayout(config.levels);
    const frames: Range[] = [];
    for (const list of lists) {
      const [lo, hi] = intersecting(list, vpn, pages);
      for (let i = lo; i < hi; i++) {
        const e = list[i]!;
        const a = Math.max(vpn, e.vpn);
        frames.push({ vpn: e.pfn + (a - e.vpn), pages: Math.min(vpn + pages, e.vpn + PAGES[e.size]) - a });
      }
    }
    // A hole in the direct map still steps with its own frame (__cpa_process_fault).
    const dmLo = Math.max(vpn, L.pageOffset);
    const dmHi = Math.min(vpn + pages, L.pageOffset + config.frames);
    if (dmLo < dmHi) frames.push({ vpn: dmLo - L.pageOffset, pages: dmHi - dmLo });
    for (const f of frames) out.push({ vpn: L.pageOffset + f.vpn, pages: f.pages }, { vpn: L.kernelText + f.vpn, pages: f.pages });
  }
  out.sort((x, y) => x.vpn - y.vpn);
  const merged: Range[] = [];
  for (const r of out) {
    const last = merged[merged.length - 1];
    if (last !== undefined && last.vpn + last.pages >= r.vpn) merged[merged.length - 1] = { vpn: last.vpn, pages: Math.max(last.vpn + last.pages, r.vpn + r.pages) - last.vpn };
    else merged.push(r);
  }
  return merged;
}

/** The entries of `list` meeting the ranges, as index intervals. */
function pick(list: readonly Leaf[], ranges: readonly Range[]): Picks {
  const out: [number, number][] = [];
  for (const r of ranges) {
    const [lo, hi] = intersecting(list, r.vpn, r.pages);
    if (lo === hi) continue;
    const last = out[out.length - 1];
    // A large entry can meet two ranges.
    if (last !== undefined && lo <= last[1]) last[1] = Math.max(last[1], hi);
    else out.push([lo, hi]);
  }
  return out;
}

/** `list` without the picked entries, and `added` (sorted) in their place: a linear merge. */
function putBack(list: readonly Leaf[], picks: Picks, added: readonly Leaf[]): Leaf[] {
  const out: Leaf[] = [];
  let from = 0;
  let k = 0;
  const upTo = (end: number): void => {
    for (let i = from; i < end; i++) {
      while (k < added.length && added[k]!.vpn < list[i]!.vpn) out.push(added[k++]!);
      out.push(list[i]!);
    }
  };
  for (const [lo, hi] of picks) {
    upTo(lo);
    from = hi;
  }
  upTo(list.length);
  while (k < added.length) out.push(added[k++]!);
  return out;
}

/** What a CPA request works on: the entries it can reach, merged in vpn order, with a way to write them back. */
export interface CpaWindow {
  readonly entries: Entry[];
  /** The leaves and non-present entries after the walk changed `entries`. */
  commit(): { leaves: Leaf[]; nonPresent: Leaf[] };
}

export function cpaWindow(config: SystemConfig, leaves: readonly Leaf[], nonPresent: readonly Leaf[], vpn: Vpn, pages: number, checkAlias: boolean): CpaWindow {
  const ranges = windows(config, [leaves, nonPresent], vpn, pages, checkAlias);
  const pl = pick(leaves, ranges);
  const pn = pick(nonPresent, ranges);
  const taken = (list: readonly Leaf[], picks: Picks, present: boolean): Entry[] =>
    picks.flatMap(([lo, hi]) => list.slice(lo, hi).map((l): Entry => ({ ...l, present })));
  const entries = [...taken(leaves, pl, true), ...taken(nonPresent, pn, false)].sort((a, b) => a.vpn - b.vpn);
  return {
    entries,
    commit: () => {
      const own = (present: boolean): Leaf[] => entries.filter((e) => e.present === present).map((e) => makeLeaf(e.vpn, e.pfn, e.size, e.prot));
      return { leaves: putBack(leaves, pl, own(true)), nonPresent: putBack(nonPresent, pn, own(false)) };
    },
  };
}
