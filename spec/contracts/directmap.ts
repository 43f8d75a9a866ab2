/**
 * The direct map (Documentation/arch/x86/x86_64/mm.rst: PAGE_OFFSET) and
 * setDirectMapInvalid/Default(pfn, count, {flush}): set_direct_map_invalid_noflush and
 * set_direct_map_default_noflush of arch/x86/mm/pat/set_memory.c (gregkh/linux 53c2f13c),
 * as secretmem and guest_memfd use them, with their argument validator and the direct
 * map's geometry. The contracts: CONTRACTS.setDirectMapInvalid and
 * CONTRACTS.setDirectMapDefault (DIRECT_MAP_CONTRACTS below).
 */
import { kernelLayout, type PagingLevels, type Pfn, type Vpn } from '../address.ts';
import type { PtError } from '../errors.ts';
import type { SystemConfig } from '../state.ts';
import { FRAME_ARG, FRAME_COUNT_ARG, checkFrameCount, checkPfnRange } from './args.ts';
import type { ContractsOf } from './contract.ts';

/** set_direct_map_*'s preconditions that need no state (EINVAL), in the order of their contracts. Trusted: shared by model and impl, not checked by refinement. */
export function validateSetDirectMap(config: SystemConfig, pfn: Pfn, count: number): PtError | null {
  return checkPfnRange(config, pfn, 1) ?? checkFrameCount(config, pfn, count);
}

/**
 * The direct-map page of a frame (__va(PFN_PHYS(pfn)) >> PAGE_SHIFT) under the paging
 * mode's layout: __PAGE_OFFSET is 0xffff888000000000 with 4 levels, 0xff11000000000000
 * with 5 (Documentation/arch/x86/x86_64/mm.rst).
 */
export function directMapVpn(levels: PagingLevels, pfn: Pfn): Vpn {
  return kernelLayout(levels).pageOffset + pfn;
}

/** Whether vpn lies in the direct map of this machine's memory, [PAGE_OFFSET, PAGE_OFFSET + frames). */
export function isDirectMapVpn(config: SystemConfig, vpn: Vpn): boolean {
  const off = vpn - kernelLayout(config.levels).pageOffset;
  return off >= 0 && off < config.frames;
}

/** What linux's set_direct_map_* do instead, both of them: one text for the two contracts. */
const LINUX_SET_PAGES: readonly string[] = [
  '`__set_pages_np` / `__set_pages_p`: the walk of protect\'s linux contract on `[PAGE_OFFSET + pfn, +count)` with `CPA_NO_CHECK_ALIAS` and no flush of its own: invalid clears P and RW (and D); default sets P and RW. So invalid leaves non-present entries (frame, NX and cache kept, RW and G lost); default makes them present again with RW, without G (lost for good), with the NX and cache they kept, and Rodata RO keeps a rodata frame read-only.',
  'Both are idempotent: a page already so, or with no entry at all (a direct-map hole), is skipped; neither has ENOENT, EEXIST or EPERM. Only a split can fail (ENOMEM), leaving earlier pages changed. The frames\' `noDirectMap` is set / cleared for the whole range, as the client\'s record (secretmem, guest_memfd), on success. `flush: true` then flushes the range on all CPUs; `flush: false` leaves the obligation. No table is emptied, so none waits.',
  'On ENOMEM neither flushes nor records an obligation: the kernel\'s callers return before their flush.',
];

const SOURCES: readonly string[] = [
  'arch/x86/mm/pat/set_memory.c of gregkh/linux 53c2f13c: `set_direct_map_invalid_noflush`, `set_direct_map_default_noflush`, `__set_pages_np`, `__set_pages_p`',
  'Documentation/arch/x86/x86_64/mm.rst: `PAGE_OFFSET`',
];

export const DIRECT_MAP_CONTRACTS: ContractsOf<'setDirectMapInvalid' | 'setDirectMapDefault'> = {
  setDirectMapInvalid: {
    signature: 'setDirectMapInvalid(pfn, count, {flush})',
    summary: '`set_direct_map_invalid_noflush` (arch/x86/mm/pat/set_memory.c), as secretmem and guest_memfd use it: frames taken out of the direct map; `flush: true` is the form that flushes right away.',
    preconditions: [
      FRAME_ARG,
      FRAME_COUNT_ARG,
      { errno: 'ENOENT', arg: 'pfn', profile: 'strict', when: 'some frame of the range has no direct-map page (no leaf at `directMapVpn`: a non-present entry there, set_memory_np\'s, is not one)' },
      {
        errno: 'EPERM', arg: 'pfn', profile: 'strict',
        when: 'the resulting state breaks a strict-policy invariant: P7 when some frame is mapped anywhere else in the kernel half (a `noDirectMap` frame is mapped nowhere there), or any other',
      },
      { errno: 'ENOMEM', arg: 'tablePool', when: 'the resulting footprint exceeds the pool' },
    ],
    post: [
      'The direct-map pages of the frames are removed (huge leaves split as needed, *The split rule*), the frames get `noDirectMap = true`.',
      '`flush: true`: the direct-map range is flushed on all CPUs (a range flush), and the tables the removal empties are freed after the flush, as for unmap.',
      '`flush: false` (`set_direct_map_invalid_noflush`): TLBs are left alone and a flush obligation is added for the range with reason `setDirectMapInvalid`. No flush has run, so another CPU\'s paging-structure cache may still walk through an emptied table: each one is unlinked but *pending free* — still counted in `tablesInUse` and in `pendingTableFrees`, and toward ENOMEM — until a flush releases it (*Deferred table frees*).',
    ],
    linux: LINUX_SET_PAGES,
    sources: SOURCES,
  },
  setDirectMapDefault: {
    signature: 'setDirectMapDefault(pfn, count, {flush})',
    summary: '`set_direct_map_default_noflush` (arch/x86/mm/pat/set_memory.c), as secretmem and guest_memfd use it: frames put back in the direct map; `flush: true` is the form that flushes right away.',
    preconditions: [
      FRAME_ARG,
      FRAME_COUNT_ARG,
      {
        errno: 'EEXIST', arg: 'pfn', profile: 'strict',
        when: 'some frame of the range has an entry at its direct-map page (a leaf, or a non-present entry: set_memory_p, not this, brings that back)',
      },
      {
        errno: 'EPERM', arg: 'pfn', profile: 'strict',
        when: 'the resulting state breaks a strict-policy invariant (default re-maps RW NX: a rodata or text frame, or one executable elsewhere, is refused by P4, P3 or P2)',
      },
      { errno: 'ENOMEM', arg: 'tablePool', when: 'the resulting footprint exceeds the pool' },
    ],
    post: [
      'Each frame\'s direct-map page is mapped 4K with PAGE_KERNEL (RW, NX, global, WB), and the frames get `noDirectMap = false`.',
      '`flush: true`: the direct-map range is flushed on all CPUs (a range flush). `flush: false`: TLBs are left alone and a flush obligation is added for the range with reason `setDirectMapDefault`. It adds mappings and never empties a table.',
    ],
    linux: LINUX_SET_PAGES,
    sources: SOURCES,
  },
};
