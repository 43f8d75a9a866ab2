/**
 * The __GFP_UNMAPPED pool (spec/contracts/clients.ts "allocUnmapped" and "The pool and
 * the core frame operations"), as __rmqueue_direct_map moves whole pageblocks between
 * the direct map and the pool: allocUnmapped takes free pageblocks out of the direct map
 * (set_direct_map_invalid_noflush, then one flush), allocFrames gives one back
 * (set_direct_map_default_noflush, no flush) when all its frames are free. Both run on a
 * draft, so a failed direct-map step leaves nothing changed.
 */
import { pfnSpan, pfnToHex, type Pfn } from '../spec/address.ts';
import { validateAllocUnmapped } from '../spec/contracts/clients.ts';
import { directMapVpn } from '../spec/contracts/directmap.ts';
import { PAGEBLOCK_PAGES } from '../spec/contracts/isolation.ts';
import { fail, OK, type Result } from '../spec/errors.ts';
import type { AbstractState } from '../spec/state.ts';
import { err, steps, type ClientsHost } from './clients-host.ts';
import { blockRuns, isUnmapped, pageblocksMeeting, withUnmapped } from './clients-state.ts';
import { firstFrameNot, setFrameUse } from './frames.ts';
import { mappedPages } from './leaves.ts';

/** The frames of pageblock `block` that memory has. */
const blockFrames = (frames: number, block: Pfn): number => Math.min(PAGEBLOCK_PAGES, frames - block);

/**
 * Why the pool cannot take pageblock `block` (one not unmapped), or undefined: all its
 * frames must be free and in the direct map, not removed from it and with a present
 * direct-map page, for set_direct_map_invalid_noflush to take every one out.
 */
function untakeable(s: AbstractState, block: Pfn): string | undefined {
  const n = blockFrames(s.config.frames, block);
  const busy = firstFrameNot(s.frames, block, n, 'free');
  if (busy !== undefined) return `frame ${pfnToHex(busy)} of it is not free`;
  const removed = s.frames.find((r) => r.noDirectMap && r.pfn < block + n && block < r.pfn + r.count);
  if (removed !== undefined) return `frame ${pfnToHex(Math.max(removed.pfn, block))} of it is removed from the direct map`;
  if (mappedPages(s.roots[0]!.leaves, directMapVpn(s.config.levels, block), n) < n) return 'part of its direct-map range has no present leaf';
  return undefined;
}

export function allocUnmapped(host: ClientsHost, pfn: Pfn, count: number): Result<void> {
  const bad = validateAllocUnmapped(host.config, pfn, count);
  if (bad) return err(bad);
  const now = host.current();
  const s = now.state();
  const take: Pfn[] = [];
  for (const block of pageblocksMeeting(pfn, count)) {
    const from = Math.max(block, pfn);
    const n = Math.min(block + PAGEBLOCK_PAGES, pfn + count) - from;
    if (isUnmapped(now.clients(), block)) {
      const busy = firstFrameNot(s.frames, from, n, 'free');
      if (busy !== undefined) return fail('EBUSY', 'pfn', `frame ${pfnToHex(busy)} of the unmapped pageblock ${pfnSpan(block, PAGEBLOCK_PAGES)} is not free`);
      continue;
    }
    const why = untakeable(s, block);
    if (why !== undefined) return fail('EBUSY', 'pfn', `the pool cannot take the pageblock ${pfnSpan(block, PAGEBLOCK_PAGES)}: ${why}`);
    take.push(block);
  }
  const d = host.draft();
  // Flagged first, so that the policy sees the pool's frames as the pool's (D6) while they leave the direct map.
  d.setClients(withUnmapped(d.clients(), take, true));
  const runs = blockRuns(take, host.config.frames);
  const r = steps(
    'allocUnmapped',
    ...runs.map((run) => () => d.sys.setDirectMapInvalid(run.pfn, run.count, { flush: false })),
    () => {
      if (runs.length === 0) return OK;
      // One flush_tlb_kernel_range of their direct-map range.
      const last = runs[runs.length - 1]!;
      const lo = directMapVpn(host.config.levels, runs[0]!.pfn);
      return d.sys.flush(lo, directMapVpn(host.config.levels, last.pfn + last.count) - lo);
    },
  );
  if (!r.ok) {
    // Linux: set_direct_map_valid_noflush is CPA, not atomic: what it changed before its
    // ENOMEM stays, and __rmqueue_direct_map returns before it flags any pageblock or flushes.
    if (host.profile !== 'linux') return r;
    d.setClients(withUnmapped(d.clients(), take, false));
    d.commit();
    return r;
  }
  d.setFrames(setFrameUse(d.state().frames, pfn, count, 'data'));
  d.commit();
  return OK;
}

/** Whether [pfn, pfn+count) meets a pageblock of the pool (allocFrames must then take it back). */
export function meetsPool(host: ClientsHost, pfn: Pfn, count: number): boolean {
  const c = host.current().clients();
  return c.unmapped.length > 0 && pageblocksMeeting(pfn, count).some((b) => isUnmapped(c, b));
}

/**
 * allocFrames of free frames [pfn, pfn+count) of which some lie in the pool: each
 * unmapped pageblock met goes back to the direct map whole, which needs every one of its
 * frames free (else EBUSY pfn); then the frames become data.
 */
export function allocFromPool(host: ClientsHost, pfn: Pfn, count: number): Result<void> {
  const now = host.current();
  const s = now.state();
  const back = pageblocksMeeting(pfn, count).filter((b) => isUnmapped(now.clients(), b));
  for (const block of back) {
    const busy = firstFrameNot(s.frames, block, blockFrames(host.config.frames, block), 'free');
    if (busy !== undefined) return fail('EBUSY', 'pfn', `frame ${pfnToHex(busy)} of the unmapped pageblock ${pfnSpan(block, PAGEBLOCK_PAGES)} is in use: the pageblock cannot go back to the direct map`);
  }
  const d = host.draft();
  // The flag cleared first: the pageblock is the direct map's again as its pages come back (C7).
  d.setClients(withUnmapped(d.clients(), back, false));
  for (const run of blockRuns(back, host.config.frames)) {
    const r = d.sys.setDirectMapDefault(run.pfn, run.count, { flush: false });
    if (!r.ok) return r;
  }
  d.setFrames(setFrameUse(d.state().frames, pfn, count, 'data'));
  d.commit();
  return OK;
}
