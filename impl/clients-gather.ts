/**
 * zapPageRange (CONTRACTS.zapPageRange, spec/contracts/clients.ts): zap_page_range_single
 * through an mmu_gather (mm/mmu_gather.c, include/asm-generic/tlb.h). unmap_single_vma
 * unhooks the range's PTEs from the process's page tables and gathers their pages; then
 * tlb_finish_mmu's tlb_flush_mmu invalidates the TLBs (tlb_flush_mmu_tlbonly) and only
 * then frees what it gathered (tlb_flush_mmu_free): "1) unhook page 2) TLB invalidate
 * page 3) free page". The unhook and the invalidate are isolation's unmapUser (both KPTI
 * copies share the user half's tables; one process flush; the emptied tables freed after
 * it); what is left here is the gather and the free.
 *
 * The gather reads the process's leaves before the unmap; a failed unmap (ENOMEM) changes
 * nothing, and nothing is freed. A gathered frame is freed (folio_put dropping the last
 * reference) when it is data, not noDirectMap, and no leaf of any root maps it after the
 * unmap but at its own direct-map page (the frame counters' OUTSIDE_DIRECT_MAP), and, under
 * strict, no TLB may still translate to it elsewhere (D7, C1); any other frame keeps its use. The cost is the entries the range meets and the gathered runs'
 * frames, never the state.
 */
import type { SystemParts } from './capability.ts';
import type { Pfn, Vpn } from '../spec/address.ts';
import { validateZap } from '../spec/contracts/clients.ts';
import { fail, type Result } from '../spec/errors.ts';
import { OUTSIDE_DIRECT_MAP } from './frames.ts';
import { freeingBreaks } from './policy.ts';
import { members } from './runs.ts';

/** What zap needs of the isolation capability (isolation.ts): the process's user half. */
export interface UserHalf {
  /** unmapUser: both copies lose the range, then the process flush unless `flush` is false. */
  unmapUser(pid: number, vpn: Vpn, pages: number, flush: boolean): Result<void>;
  /** The frames the process's present user-half leaves map inside the range, run by run. */
  userFrames(pid: number, vpn: Vpn, pages: number, each: (pfn: Pfn, count: number) => void): void;
}

export interface GatherHost extends SystemParts {
  /** The isolation capability, absent when the system has no processes. */
  readonly userHalf: UserHalf | undefined;
  /** The frames' facts changed: abstract()'s frame runs are rebuilt. */
  framesChanged(): void;
  /** C1's frames: the first of a range a TLB the clients left stale may still translate to, or -1. */
  stillTranslated(pfn: Pfn, count: number): number;
}

/** A set of frames as two questions: its first member in [p, p + n) or -1, and the end of the stretch of members from member p. */
interface FrameSet {
  first(p: Pfn, n: number): number;
  endOf(p: Pfn): number;
}

/** Each maximal piece [a, b) of [lo, hi) inside `set`. */
function inside(set: FrameSet, lo: Pfn, hi: Pfn, each: (a: Pfn, b: Pfn) => void): void {
  for (let at = lo; at < hi; ) {
    const f = set.first(at, hi - at);
    if (f < 0) return;
    at = Math.min(set.endOf(f), hi);
    each(f, at);
  }
}

/** Each maximal piece [a, b) of [lo, hi) outside `set`. */
function outside(set: FrameSet, lo: Pfn, hi: Pfn, each: (a: Pfn, b: Pfn) => void): void {
  for (let at = lo; at < hi; ) {
    const f = set.first(at, hi - at);
    const stop = f < 0 ? hi : f;
    if (stop > at) each(at, stop);
    if (f < 0) return;
    at = Math.min(set.endOf(f), hi);
  }
}

/**
 * Strict: the pieces of [lo, hi) that freeFrames would accept after the process flush,
 * frame by frame (the range is the zap's): none some TLB may still translate to outside
 * its direct-map page (D7, C1). Those keep their use, as a reference would keep them.
 */
function stillReachable(host: GatherHost, lo: Pfn, hi: Pfn): (readonly [Pfn, Pfn])[] {
  const out: [Pfn, Pfn][] = [];
  const opts = { stillTranslated: host.stillTranslated };
  for (let p = lo; p < hi; p++) {
    if (freeingBreaks(host.radix, host.facts, host.tlbs, p, 1, opts) !== null) continue;
    const last = out[out.length - 1];
    if (last !== undefined && last[1] === p) last[1] = p + 1;
    else out.push([p, p + 1]);
  }
  return out;
}

/** zap_page_range_single(pid's mm, vpn, pages): tlb_gather_mmu, unmap_single_vma, tlb_finish_mmu. */
export function zapPageRange(host: GatherHost, pid: number, vpn: Vpn, pages: number): Result<void> {
  const user = host.userHalf;
  if (user === undefined) return fail('EINVAL', 'op', 'zapPageRange works on a process, which needs the isolation capability, which this system does not provide');
  const bad = validateZap(host.config, pid, vpn, pages);
  if (bad) return { ok: false, error: bad };
  // The mmu_gather's batch: a frame two pages of the range map is gathered once.
  const gathered = members();
  user.userFrames(pid, vpn, pages, (pfn, count) => gathered.add(pfn, count, true));
  // tlb_flush_mmu's invalidate; the gather-frees-without-flush mutant leaves it out and frees all the same.
  const unmapped = user.unmapUser(pid, vpn, pages, host.mutant !== 'gather-frees-without-flush');
  if (!unmapped.ok) return unmapped;
  // tlb_flush_mmu_free: read after the unmap, so the range's own leaves no longer count.
  const { facts, radix } = host;
  // The counters hold no stretch: a frame mapped elsewhere is stepped over one at a time.
  const mappedElsewhere: FrameSet = { first: (p, n) => radix.counters.first(OUTSIDE_DIRECT_MAP, p, n), endOf: (p) => p + 1 };
  const freed: [Pfn, Pfn][] = [];
  for (const [from, count] of gathered.map((p, n) => [p, n] as const)) {
    inside(facts.data, from, from + count, (a, b) => outside(facts.noDirectMap, a, b, (c, d) => outside(mappedElsewhere, c, d, (e, f) => void freed.push([e, f]))));
  }
  if (freed.length === 0) return unmapped;
  for (const [a, b] of freed) {
    // The mutant believes it flushed: it frees without asking who may still translate to the pages.
    const guarded = host.profile === 'strict' && host.mutant !== 'gather-frees-without-flush';
    for (const [c, d] of guarded ? stillReachable(host, a, b) : [[a, b] as const]) {
      facts.data.remove(c, d - c);
      facts.free.add(c, d - c, true);
    }
  }
  host.framesChanged();
  return unmapped;
}
