/**
 * allocFrames(pfn, count) and freeFrames(pfn, count): the page allocator as the page-table
 * library sees it (alloc_pages, __free_pages). The library does not own frames, but what
 * it maps and caches must follow their lifetime: a frame handed back to the allocator may
 * be handed to anyone next, so no mapping but its direct-map page and no cached
 * translation may survive (D4, D7), and a frame removed from the direct map (secretmem,
 * guest_memfd) must be put back first (D6: secretmem_free_folio and guest_memfd's
 * free_folio call set_direct_map_default_noflush before the page goes back).
 *
 * allocFrames, first failure wins:
 *   EINVAL pfn / EINVAL count  as for set_direct_map_* (directmap.ts)
 *   EBUSY   pfn                some frame of the range is not free
 *   Postcondition: the frames' use becomes `data`, every other fact kept; nothing else
 *   changes (a freshly allocated frame is mapped by its direct-map page already, when
 *   that page is there).
 *
 * freeFrames, first failure wins:
 *   EINVAL pfn / EINVAL count  as above
 *   ENOENT  pfn                some frame of the range is not a `data` frame (only what
 *                              allocFrames or boot handed out as data can be freed)
 *   EPERM   pfn                strict only: the result breaks D4 (a frame still mapped
 *                              outside its direct-map page), D6 (still removed from the
 *                              direct map) or D7 (still cached by some CPU outside its
 *                              direct-map page, owed flush or not), in STRICT_POLICY order
 *   Postcondition: the frames' use becomes `free`, every other fact kept; nothing else
 *   changes. Linux: __free_pages checks none of this, so no EPERM (the kernel permits it;
 *   D4, D6 and D7 findings follow).
 *
 * With the clients capability the page allocator also keeps the __GFP_UNMAPPED pool
 * (spec/contracts/clients.ts, "The pool and the core frame operations"): allocFrames of a
 * frame in an unmapped pageblock takes the whole pageblock back into the direct map when
 * all its frames are free (EPERM and ENOMEM as set_direct_map_default there), else EBUSY
 * pfn; freeFrames of frames in one returns them to the pool, still out of the direct map
 * (D6 exempts them); strict freeFrames also refuses a frame a stale mermap allocation may
 * still reach through some CPU's TLB (EPERM pfn, C1).
 */
import type { Pfn } from '../address.ts';
import type { PtError } from '../errors.ts';
import type { SystemConfig } from '../state.ts';
import { checkFrameCount, checkPfnRange } from './args.ts';

/** allocFrames' and freeFrames' preconditions that need no state (EINVAL). Trusted: shared by model and impl, not checked by refinement. */
export function validateFrames(config: SystemConfig, pfn: Pfn, count: number): PtError | null {
  return checkPfnRange(config, pfn, 1) ?? checkFrameCount(config, pfn, count);
}
