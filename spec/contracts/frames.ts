/**
 * allocFrames(pfn, count) and freeFrames(pfn, count): the page allocator as the page-table
 * library sees it (alloc_pages, __free_pages; mm/secretmem.c and guest_memfd for the
 * frames they take out of the direct map), with their argument validator. The contracts:
 * CONTRACTS.allocFrames and CONTRACTS.freeFrames (FRAME_CONTRACTS below); why frames
 * constrain mappings at all: FRAME_RULES.
 */
import type { Pfn } from '../address.ts';
import type { PtError } from '../errors.ts';
import type { SystemConfig } from '../state.ts';
import { FRAME_ARG, FRAME_COUNT_ARG, checkFrameCount, checkPfnRange } from './args.ts';
import type { ContractRule, ContractsOf } from './contract.ts';

/** allocFrames' and freeFrames' preconditions that need no state (EINVAL). Trusted: shared by model and impl, not checked by refinement. */
export function validateFrames(config: SystemConfig, pfn: Pfn, count: number): PtError | null {
  return checkPfnRange(config, pfn, 1) ?? checkFrameCount(config, pfn, count);
}

const POOL = 'With the clients capability, frames of an unmapped pageblock: *The pool and the core frame operations*.';

export const FRAME_CONTRACTS: ContractsOf<'allocFrames' | 'freeFrames'> = {
  allocFrames: {
    signature: 'allocFrames(pfn, count)',
    summary: '`alloc_pages` as the page-table library sees it: free frames handed out, as data.',
    preconditions: [
      FRAME_ARG,
      FRAME_COUNT_ARG,
      { errno: 'EBUSY', arg: 'pfn', when: 'some frame of the range is not free; with the clients capability also when it lies in an unmapped pageblock some frame of which is not free' },
      {
        errno: 'EPERM', arg: 'pfn', profile: 'strict',
        when: 'with the clients capability, taking an unmapped pageblock back into the direct map breaks a strict-policy invariant, as `set_direct_map_default_noflush` there would',
      },
      { errno: 'ENOMEM', arg: 'tablePool', when: 'with the clients capability, the direct map an unmapped pageblock gets back needs a table the pool does not have, as `set_direct_map_default_noflush` there would' },
    ],
    post: [
      'The frames\' use becomes `data`, every other fact kept; nothing else changes (a freshly allocated frame is mapped by its direct-map page already, when that page is there).',
      POOL,
    ],
    linux: ['As strict, without the EPERM.'],
    sources: ['the page allocator: `alloc_pages`'],
  },
  freeFrames: {
    signature: 'freeFrames(pfn, count)',
    summary: '`__free_pages` as the page-table library sees it: data frames handed back to the allocator.',
    preconditions: [
      FRAME_ARG,
      FRAME_COUNT_ARG,
      { errno: 'ENOENT', arg: 'pfn', when: 'some frame of the range is not a `data` frame (only what allocFrames or boot handed out as data can be freed)' },
      {
        errno: 'EPERM', arg: 'pfn', profile: 'strict',
        when: 'the result breaks D4 (a frame still mapped outside its direct-map page), D6 (still removed from the direct map) or D7 (still cached by some CPU outside its direct-map page, owed flush or not), or with the clients capability C1 (a frame a stale mermap allocation may still reach through some CPU\'s TLB), in `STRICT_POLICY` order',
      },
    ],
    post: ['The frames\' use becomes `free`, every other fact kept; nothing else changes.', POOL],
    linux: ['`__free_pages` checks none of this, so no EPERM: the kernel permits it, and D4, D6 and D7 findings follow; with the clients capability it frees a frame of a stale mermap allocation too (C1).'],
    sources: ['the page allocator: `__free_pages`', 'mm/secretmem.c: `secretmem_free_folio`; guest_memfd: `free_folio`'],
  },
};

export const FRAME_RULES: readonly ContractRule[] = [
  {
    id: 'frame-lifetime',
    title: 'Frames outlive what maps them',
    paragraphs: [
      'The library does not own frames, but what it maps and caches must follow their lifetime: a frame handed back to the allocator may be handed to anyone next, so no mapping but its direct-map page and no cached translation may survive (D4, D7), and a frame removed from the direct map (secretmem, guest_memfd) must be put back first (D6: `secretmem_free_folio` and guest_memfd\'s `free_folio` call `set_direct_map_default_noflush` before the page goes back).',
    ],
    sources: ['mm/secretmem.c: `secretmem_free_folio`', 'guest_memfd: `free_folio`'],
  },
];
