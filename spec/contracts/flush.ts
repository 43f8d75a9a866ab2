/**
 * TLB entries and flush obligations (brief rule 10): the shared operations on them, so
 * every system keeps them in the same canonical form.
 *
 * - A TLB entry caches one leaf for one (cpu, root). Flushing a range removes, on every
 *   CPU and root, each entry whose leaf intersects the range (flush_tlb_kernel_range
 *   invalidates by address; a huge entry any part of which is in the range goes).
 * - Obligations are sorted, merged, disjoint page ranges; merging two ranges joins their
 *   reasons (sorted, de-duplicated, joined by '+'), and flushing a sub-range removes just
 *   that part, the pieces keeping their reason.
 * - Canonical TLB order: (cpu, root, leaf.vpn, leaf size ascending).
 */
import { PAGES, type Vpn } from '../address.ts';
import type { FlushObligation, RootId, TlbEntry } from '../state.ts';
import { carveRange } from './ranges.ts';

export function compareTlbEntries(a: TlbEntry, b: TlbEntry): number {
  return a.cpu - b.cpu || a.root - b.root || a.leaf.vpn - b.leaf.vpn || PAGES[a.leaf.size] - PAGES[b.leaf.size];
}

function intersects(vpn: Vpn, pages: number, lo: Vpn, count: number): boolean {
  return vpn < lo + count && lo < vpn + pages;
}

/** The TLB without the entries a flush of [vpn, vpn+pages) removes (all CPUs, all roots). */
export function flushTlbRange(tlb: readonly TlbEntry[], vpn: Vpn, pages: number): TlbEntry[] {
  return tlb.filter((e) => !intersects(e.leaf.vpn, PAGES[e.leaf.size], vpn, pages));
}

/**
 * The entry (cpu, root) uses for vpn, or undefined on a miss. Stale entries may overlap
 * (a 4K entry left by a `_noflush` operation under a later 2M fill); the smallest, most
 * specific one wins, so the choice depends on the abstract TLB only.
 */
export function tlbLookup(tlb: readonly TlbEntry[], cpu: number, root: RootId, vpn: Vpn): TlbEntry | undefined {
  let best: TlbEntry | undefined;
  for (const e of tlb) {
    if (e.cpu !== cpu || e.root !== root || vpn < e.leaf.vpn || vpn >= e.leaf.vpn + PAGES[e.leaf.size]) continue;
    if (best === undefined || PAGES[e.leaf.size] < PAGES[best.leaf.size]) best = e;
  }
  return best;
}

function joinReasons(a: string, b: string): string {
  return [...new Set([...a.split('+'), ...b.split('+')])].sort().join('+');
}

/** The obligations with [vpn, vpn+pages) owed for `reason` added, merged with overlapping or adjacent ranges. */
export function addFlushObligation(obligations: readonly FlushObligation[], vpn: Vpn, pages: number, reason: string): FlushObligation[] {
  let lo = vpn;
  let hi = vpn + pages;
  let why = reason;
  const out: FlushObligation[] = [];
  for (const o of obligations) {
    if (o.vpn + o.pages < lo || o.vpn > hi) {
      out.push(o);
    } else {
      lo = Math.min(lo, o.vpn);
      hi = Math.max(hi, o.vpn + o.pages);
      why = joinReasons(why, o.reason);
    }
  }
  out.push({ vpn: lo, pages: hi - lo, reason: why });
  return out.sort((a, b) => a.vpn - b.vpn);
}

/** The obligations left after flushing [vpn, vpn+pages): the parts outside the range. */
export function dischargeFlushRange(obligations: readonly FlushObligation[], vpn: Vpn, pages: number): FlushObligation[] {
  return carveRange(obligations, (o) => [o.vpn, o.pages], vpn, pages, (o, at, n) => ({ vpn: at, pages: n, reason: o.reason }));
}
