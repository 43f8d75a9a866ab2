/**
 * The direct map (Documentation/arch/x86/x86_64/mm.rst: PAGE_OFFSET), and
 * setDirectMapInvalid/Default(pfn, count, {flush}): set_direct_map_invalid_noflush and
 * set_direct_map_default_noflush (arch/x86/mm/pat/set_memory.c), as used by secretmem
 * and guest_memfd, with `flush: true` for the forms that flush right away.
 *
 * Preconditions, first failure wins (both operations):
 *   EINVAL pfn     not an integer frame in [0, config.frames)
 *   EINVAL count   not an integer ≥ 1, or [pfn, pfn+count) runs past memory
 *   invalid: ENOENT  some frame of the range has no direct-map page (directMapVpn unmapped)
 *   default: EEXIST  some frame of the range has its direct-map page present
 *   invalid: EPERM   some frame is mapped anywhere else in the kernel half (policy rule
 *                    (f) on the resulting state: a noDirectMap frame is mapped nowhere)
 *   EPERM          any other policy rule on the resulting state (default re-maps RW NX:
 *                  a rodata or text frame, or one executable elsewhere, is refused)
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
 */
import { X86_64_LAYOUT_4LEVEL, type Pfn, type Vpn } from '../address.ts';
import type { PtError } from '../errors.ts';
import type { FrameRun, SystemConfig } from '../state.ts';
import { checkFrameCount, checkPfnRange } from './args.ts';
import { carveRange } from './ranges.ts';

export function validateSetDirectMap(config: SystemConfig, pfn: Pfn, count: number): PtError | null {
  return checkPfnRange(config, pfn, 1) ?? checkFrameCount(config, pfn, count);
}

/** The direct-map page of a frame (__va(PFN_PHYS(pfn)) >> PAGE_SHIFT). */
export function directMapVpn(pfn: Pfn): Vpn {
  return X86_64_LAYOUT_4LEVEL.pageOffset + pfn;
}

/** Whether vpn lies in the direct map of this machine's memory, [PAGE_OFFSET, PAGE_OFFSET + frames). */
export function isDirectMapVpn(config: SystemConfig, vpn: Vpn): boolean {
  const off = vpn - X86_64_LAYOUT_4LEVEL.pageOffset;
  return off >= 0 && off < config.frames;
}

/**
 * Frame runs in canonical form: sorted, adjacent runs with identical (use, sensitive,
 * noDirectMap) merged, empty runs dropped (brief rule 13).
 */
export function normalizeFrames(runs: readonly FrameRun[]): FrameRun[] {
  const sorted = [...runs].filter((r) => r.count > 0).sort((a, b) => a.pfn - b.pfn);
  const out: FrameRun[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last !== undefined && last.pfn + last.count === r.pfn && last.use === r.use && last.sensitive === r.sensitive && last.noDirectMap === r.noDirectMap) {
      out[out.length - 1] = { ...last, count: last.count + r.count };
    } else {
      out.push(r);
    }
  }
  return out;
}

/** The frame runs with noDirectMap = value on [pfn, pfn+count), in canonical form. */
export function setNoDirectMap(runs: readonly FrameRun[], pfn: Pfn, count: number, value: boolean): FrameRun[] {
  const piece = (r: FrameRun, at: Pfn, n: number): FrameRun => ({ ...r, pfn: at, count: n });
  const cut = carveRange(runs, (r) => [r.pfn, r.count], pfn, count, piece, (r, at, n) => ({ ...piece(r, at, n), noDirectMap: value }));
  return normalizeFrames(cut);
}
