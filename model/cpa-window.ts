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
import type { EntryStore, Range } from './entry-store.ts';
import { intersecting, makeLeaf } from './leaves.ts';

/** The request's own range, and with aliases the two alias pages of each frame it holds (the store's window merges them). */
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
  return out;
}

/** What a CPA request works on: the entries it can reach, merged in vpn order, with a way to write them back. */
export interface CpaWindow {
  readonly entries: Entry[];
  /** Put the entries as the walk left them back into the store. */
  commit(): void;
}

export function cpaWindow(config: SystemConfig, store: EntryStore, vpn: Vpn, pages: number, checkAlias: boolean): CpaWindow {
  const { leaves, nonPresent } = store.entries;
  const w = store.window(windows(config, [leaves, nonPresent], vpn, pages, checkAlias));
  const tagged = (list: readonly Leaf[], present: boolean): Entry[] => list.map((l): Entry => ({ ...l, present }));
  const entries = [...tagged(w.entries.leaves, true), ...tagged(w.entries.nonPresent, false)].sort((a, b) => a.vpn - b.vpn);
  return {
    entries,
    commit: () => {
      const own = (present: boolean): Leaf[] => entries.filter((e) => e.present === present).map((e) => makeLeaf(e.vpn, e.pfn, e.size, e.prot));
      store.apply(w, { leaves: own(true), nonPresent: own(false) });
    },
  };
}
