/**
 * TLBs, flush obligations and the MMU's permission check (spec/contracts/access.ts and
 * flush.ts), on plain sorted arrays. The paging-structure caches are model/walkcache.ts.
 */
import { PAGES, type Vpn } from '../spec/address.ts';
import type { FlushObligation, Leaf, Prot, RootId, TlbEntry } from '../spec/state.ts';
import type { AccessKind, AccessMode, Translation } from '../spec/system.ts';
import { carveRange } from './ranges.ts';

/** The canonical TLB order: (cpu, root, leaf.vpn, leaf size ascending). */
export function compareTlbEntries(a: TlbEntry, b: TlbEntry): number {
  return a.cpu - b.cpu || a.root - b.root || a.leaf.vpn - b.leaf.vpn || PAGES[a.leaf.size] - PAGES[b.leaf.size];
}

const meets = (vpn: Vpn, pages: number, lo: Vpn, count: number): boolean => vpn < lo + count && lo < vpn + pages;

/** flush_tlb_kernel_range: every CPU and root drops each entry whose leaf meets the range. */
export function flushTlbRange(tlb: readonly TlbEntry[], vpn: Vpn, pages: number): TlbEntry[] {
  return tlb.filter((e) => !meets(e.leaf.vpn, PAGES[e.leaf.size], vpn, pages));
}

/** flush_tlb_one_kernel of each page of the range on one CPU only: its entries (every root) meeting the range go. */
export function flushTlbLocal(tlb: readonly TlbEntry[], cpu: number, vpn: Vpn, pages: number): TlbEntry[] {
  return tlb.filter((e) => e.cpu !== cpu || !meets(e.leaf.vpn, PAGES[e.leaf.size], vpn, pages));
}

/**
 * The ranges one operation flushes, as flush_tlb_kernel_range calls: sorted, and merged
 * where they overlap or touch (flush.ts), so the ceiling is judged on each merged range.
 */
export function mergeFlushRanges(ranges: readonly { readonly vpn: Vpn; readonly pages: number }[]): { vpn: Vpn; pages: number }[] {
  const sorted = [...ranges].sort((a, b) => a.vpn - b.vpn);
  const out: { vpn: Vpn; pages: number }[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last !== undefined && r.vpn <= last.vpn + last.pages) last.pages = Math.max(last.pages, r.vpn + r.pages - last.vpn);
    else out.push({ vpn: r.vpn, pages: r.pages });
  }
  return out;
}

/** The entry (cpu, root) uses for vpn: of the stale ones that may overlap, the smallest. */
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

/** The obligations with [vpn, vpn+pages) owed for `reason`, merged with every overlapping or adjacent one. */
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

/** The obligations left after flushing [vpn, vpn+pages): the parts outside it, each keeping its reason. */
export function dischargeFlushRange(obligations: readonly FlushObligation[], vpn: Vpn, pages: number): FlushObligation[] {
  return carveRange(obligations, (o) => [o.vpn, o.pages], vpn, pages, (o, at, n) => ({ vpn: at, pages: n, reason: o.reason }));
}

/**
 * One access with effective prot `prot` (Intel SDM §4.6, CR0.WP and SMEP on, as Linux
 * runs): a read needs kernel mode or a user page; a write also needs write; a kernel
 * fetch needs execKernel on a supervisor page, a user fetch execUser.
 */
export function accessAllowed(prot: Prot, kind: AccessKind, mode: AccessMode): boolean {
  const reach = mode === 'kernel' || prot.user;
  if (kind === 'r') return reach;
  if (kind === 'w') return reach && prot.write;
  return mode === 'kernel' ? prot.execKernel && !prot.user : prot.execUser;
}

/** The frame vpn reaches through `leaf`. */
export function translation(leaf: Leaf, vpn: Vpn): Translation {
  return { leaf, pfn: leaf.pfn + (vpn - leaf.vpn) };
}
