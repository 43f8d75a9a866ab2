/**
 * zapPageRange (CONTRACTS.zapPageRange, spec/contracts/clients.ts): zap_page_range_single
 * through an mmu_gather, composed on a draft (model/clients-host.ts) from the isolation
 * capability's own unmapUser and the model's own freeFrames, in include/asm-generic/tlb.h's
 * order "1) unhook page 2) TLB invalidate page 3) free page". unmapUser unhooks the pages
 * from both KPTI copies and makes the one process flush (tlb_flush_mmu_tlbonly); then
 * tlb_flush_mmu_free puts the gathered pages, and those whose last reference went with
 * the unmap become free.
 */
import type { Pfn, Vpn } from '../spec/address.ts';
import { directMapVpn, validateZap } from '../spec/contracts/index.ts';
import { fail, OK, type Result } from '../spec/errors.ts';
import { processRootIds } from '../spec/roots.ts';
import type { AbstractState } from '../spec/state.ts';
import { err, type ClientDraft, type ClientsHost } from './clients-host.ts';
import { intersecting, leafEnd } from './leaves.ts';
import { carveRange } from './ranges.ts';

interface FrameSpan {
  readonly pfn: Pfn;
  readonly count: number;
}

export function zapPageRange(host: ClientsHost, pid: number, vpn: Vpn, pages: number): Result<void> {
  // The user half is a process's: without processes there is nothing to name.
  if (host.current().sys.isolation === undefined) {
    return fail('EINVAL', 'op', 'zapPageRange works on a process, which needs the isolation capability, which this system does not provide');
  }
  const bad = validateZap(host.config, pid, vpn, pages);
  if (bad) return err(bad);
  const d = host.draft();
  // The gather: what the removed leaves mapped inside the range, read before they go.
  const gathered = gather(d.state(), pid, vpn, pages);
  // unmap_single_vma and the flush, with unmapUser's own ENOENT (pid, vpn) and ENOMEM.
  const r = d.sys.isolation!.unmapUser(pid, vpn, pages);
  if (!r.ok) return r;
  // The choice itself keeps D4 (no other leaf) and D6 (not out of the direct map); strict
  // also keeps what some TLB may still reach (D7, C1): a frame freeFrames refuses is not
  // freed. Linux frees them all.
  const runs = lastReferences(d.state(), gathered);
  const freed = host.profile === 'strict' ? freeEachAllowed(d, runs) : freeAll(d, runs);
  if (!freed.ok) return freed;
  d.commit();
  return OK;
}

/** The frames the user copy of process pid maps inside [vpn, vpn+pages) (a huge leaf straddling an end clipped to it), merged. */
function gather(s: AbstractState, pid: number, vpn: Vpn, pages: number): FrameSpan[] {
  const user = s.roots.find((r) => r.id === processRootIds(pid).userRoot);
  if (user === undefined) return [];
  const [lo, hi] = intersecting(user.leaves, vpn, pages);
  const spans = user.leaves.slice(lo, hi).map((l) => {
    const from = Math.max(l.vpn, vpn);
    return { pfn: l.pfn + (from - l.vpn), count: Math.min(leafEnd(l), vpn + pages) - from };
  });
  return merged(spans);
}

/**
 * The gathered frames whose put is the last (folio_put): data (a page-allocator page),
 * not noDirectMap, and mapped by no leaf of any root after the unmap but at its own
 * direct-map page. A leaf maps every frame at its own direct-map page or none of them
 * (its vpn - pfn is one offset), so whole leaves are kept or ignored.
 */
function lastReferences(s: AbstractState, gathered: readonly FrameSpan[]): FrameSpan[] {
  if (gathered.length === 0) return [];
  const lo = gathered[0]!.pfn;
  const last = gathered[gathered.length - 1]!;
  const hi = last.pfn + last.count;
  const pageOffset = directMapVpn(s.config.levels, 0);
  const held: FrameSpan[] = [];
  for (const root of s.roots) {
    for (const l of root.leaves) {
      const count = leafEnd(l) - l.vpn;
      if (l.vpn - l.pfn !== pageOffset && l.pfn < hi && lo < l.pfn + count) held.push({ pfn: l.pfn, count });
    }
  }
  const notOurs = s.frames.filter((f) => f.use !== 'data' || f.noDirectMap);
  return [...held, ...notOurs].reduce(
    (left, k) => carveRange(left, (f) => [f.pfn, f.count], k.pfn, k.count, (_, pfn, count) => ({ pfn, count })),
    [...gathered],
  );
}

/** Strict: each frame freed unless freeFrames refuses it (EPERM: a TLB may still reach it), which then keeps its use. */
function freeEachAllowed(d: ClientDraft, runs: readonly FrameSpan[]): Result<void> {
  for (const run of runs) {
    const r = freeAllowed(d, run.pfn, run.count);
    if (!r.ok) return r;
  }
  return OK;
}

/**
 * The frames of [pfn, pfn+count) freeFrames allows, freed: the whole run at once, or when
 * it refuses one (EPERM), each half on its own, down to the frames it refuses. Frame by
 * frame would be the same (a frame's refusal, D4 D6 D7 C1, is its own, whatever the others'
 * use) but costs a call per frame: a zap of 1 GiB took the model 43 s.
 */
function freeAllowed(d: ClientDraft, pfn: Pfn, count: number): Result<void> {
  const r = d.sys.freeFrames(pfn, count);
  if (r.ok || r.error.errno !== 'EPERM') return r;
  if (count === 1) return OK;
  const half = count >> 1;
  const low = freeAllowed(d, pfn, half);
  return low.ok ? freeAllowed(d, pfn + half, count - half) : low;
}

/** tlb_flush_mmu_free: each run freed as freeFrames frees it. */
function freeAll(d: ClientDraft, runs: readonly FrameSpan[]): Result<void> {
  for (const run of runs) {
    const r = d.sys.freeFrames(run.pfn, run.count);
    if (!r.ok) return r;
  }
  return OK;
}

/** Frame spans sorted and merged where they overlap or touch (two leaves may map one frame). */
function merged(spans: readonly FrameSpan[]): FrameSpan[] {
  const out: { pfn: Pfn; count: number }[] = [];
  for (const f of [...spans].sort((a, b) => a.pfn - b.pfn)) {
    const prev = out[out.length - 1];
    if (prev !== undefined && f.pfn <= prev.pfn + prev.count) prev.count = Math.max(prev.count, f.pfn + f.count - prev.pfn);
    else out.push({ pfn: f.pfn, count: f.count });
  }
  return out;
}
