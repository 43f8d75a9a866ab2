/**
 * The direct map (Documentation/arch/x86/x86_64/mm.rst: PAGE_OFFSET), and
 * setDirectMapInvalid/Default(pfn, count, {flush}): set_direct_map_invalid_noflush and
 * set_direct_map_default_noflush (arch/x86/mm/pat/set_memory.c), as used by secretmem
 * and guest_memfd, with `flush: true` for the forms that flush right away.
 *
 * Preconditions, first failure wins (both operations):
 *   EINVAL pfn     not an integer frame in [0, config.frames)
 *   EINVAL count   not an integer ≥ 1, or [pfn, pfn+count) runs past memory
 *   invalid: ENOENT  some frame of the range has no direct-map page (no leaf at
 *                    directMapVpn: a non-present entry there, set_memory_np's, is not one)
 *   default: EEXIST  some frame of the range has an entry at its direct-map page (a leaf,
 *                    or a non-present entry: set_memory_p, not this, brings that back)
 *   invalid: EPERM   some frame is mapped anywhere else in the kernel half (P7 on the
 *                    resulting state: a noDirectMap frame is mapped nowhere there)
 *   EPERM          any other strict-policy invariant on the resulting state (default
 *                  re-maps RW NX: a rodata or text frame, or one executable elsewhere,
 *                  is refused by P4, P3 or P2)
 *   ENOMEM         the resulting footprint exceeds the pool
 *
 * Postconditions:
 *   invalid: the direct-map pages of the frames are removed (huge leaves split as
 *            needed, split rule), the frames get noDirectMap = true.
 *   default: each frame's direct-map page is mapped 4K with PAGE_KERNEL (RW, NX, global,
 *            WB) and noDirectMap = false.
 *   flush: true  → the direct-map range is flushed on all CPUs (flush.ts);
 *   flush: false → TLBs are left alone and a flush obligation is added for the range
 *                  with reason 'setDirectMapInvalid' / 'setDirectMapDefault'.
 *   Table lifetime (flush.ts): with flush: true the tables the removal empties are freed
 *   after the flush, as for unmap. With flush: false (set_direct_map_invalid_noflush)
 *   no flush has run, so another CPU's paging-structure cache may still walk through
 *   an emptied table: each one is unlinked but *pending free* — still counted in
 *   tablesInUse and in pendingTableFrees, and toward ENOMEM — until a flush releases
 *   it. setDirectMapDefault adds mappings and never empties a table.
 */
import { kernelLayout, type PagingLevels, type Pfn, type Vpn } from '../address.ts';
import type { PtError } from '../errors.ts';
import type { SystemConfig } from '../state.ts';
import { checkFrameCount, checkPfnRange } from './args.ts';

/** set_direct_map_*'s preconditions that need no state (EINVAL), in the order of the header. Trusted: shared by model and impl, not checked by refinement. */
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
