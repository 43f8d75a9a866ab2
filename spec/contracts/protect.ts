/**
 * protect(vpn, pages, change, {alias = false}): change_page_attr_set_clr on init_mm,
 * i.e. set_memory_ro/rw/x/nx/wc/uc/wb (arch/x86/mm/pat/set_memory.c).
 *
 * Preconditions, first failure wins:
 *   EINVAL vpn     not an integer canonical page number in the kernel half
 *   EINVAL pages   not an integer ≥ 1, or the range leaves the kernel half
 *   EINVAL change  a field of the wrong type, or an unknown cache mode
 *   ENOENT         some page of [vpn, vpn+pages) is unmapped
 *   EPERM          the resulting state breaks a policy rule (spec/policy.ts)
 *   ENOMEM         the splits need more tables than the pool has
 *
 * Postcondition: every page p of the range gets `applyProtChange(old(p), change)`. A leaf
 * only partly inside the range is split (split rule, recursively) only where its prot
 * actually changes (`protChanges`); a leaf whose prot stays is left whole; nothing is
 * collapsed. With alias, for each frame f mapped by the range at a vpn outside the direct
 * map (isDirectMapVpn), the page directMapVpn(f) gets `aliasChange(change)` by the same
 * rule; alias pages that are unmapped are skipped (cpa_process_alias). Flushed on all
 * CPUs: [vpn, vpn+pages), and with alias each alias range (`aliasRanges`).
 */
import { PAGES, type Vpn } from '../address.ts';
import type { PtError } from '../errors.ts';
import { CACHE_MODES, protEquals, type Leaf, type Prot, type SystemConfig } from '../state.ts';
import type { ProtChange } from '../system.ts';
import { checkKernelPages, checkKernelVpn, ptError } from './args.ts';
import { directMapVpn } from './directmap.ts';

function checkChange(change: ProtChange): PtError | null {
  for (const field of ['write', 'exec', 'global'] as const) {
    const v = change[field];
    if (v !== undefined && typeof v !== 'boolean') return ptError('EINVAL', 'change', `${field} must be a boolean`);
  }
  if (change.cache !== undefined && !CACHE_MODES.includes(change.cache)) return ptError('EINVAL', 'change', `unknown cache mode ${String(change.cache)}`);
  return null;
}

export function validateProtect(config: SystemConfig, vpn: Vpn, pages: number, change: ProtChange): PtError | null {
  return checkKernelVpn(config, vpn) ?? checkKernelPages(vpn, pages) ?? checkChange(change);
}

/**
 * The prot of a page after a change: each field present replaces the old one; `exec: v`
 * sets execKernel = v and execUser = v && user (x86 NX covers every privilege that can
 * reach the page), so the result stays x86-representable.
 */
export function applyProtChange(prot: Prot, change: ProtChange): Prot {
  return {
    write: change.write ?? prot.write,
    user: prot.user,
    execKernel: change.exec ?? prot.execKernel,
    execUser: change.exec === undefined ? prot.execUser : change.exec && prot.user,
    global: change.global ?? prot.global,
    cache: change.cache ?? prot.cache,
  };
}

/** Whether the change alters this prot (if not, a partly covered leaf is not split). */
export function protChanges(prot: Prot, change: ProtChange): boolean {
  return !protEquals(prot, applyProtChange(prot, change));
}

/**
 * The part of a change cpa_process_alias carries to the direct-map alias: write and cache
 * only. Never exec (the direct map stays NX: the kernel clears _PAGE_NX from the alias
 * masks) and never global.
 */
export function aliasChange(change: ProtChange): ProtChange {
  return {
    ...(change.write === undefined ? {} : { write: change.write }),
    ...(change.cache === undefined ? {} : { cache: change.cache }),
  };
}

/**
 * The direct-map page ranges a protect with alias must also change: the frames of the
 * pages of [vpn, vpn+pages) that lie outside the direct map, as direct-map vpn ranges,
 * sorted and merged. `leaves` are the leaves intersecting the range, in vpn order (their
 * parts outside the range are clipped off).
 */
export function aliasRanges(config: SystemConfig, leaves: readonly Leaf[], vpn: Vpn, pages: number): { vpn: Vpn; pages: number }[] {
  const end = vpn + pages;
  const pieces: { vpn: Vpn; pages: number }[] = [];
  for (const l of leaves) {
    const lo = Math.max(l.vpn, vpn);
    const hi = Math.min(l.vpn + PAGES[l.size], end);
    if (lo >= hi) continue;
    // Clip to the part outside the direct map: a leaf may straddle its edges.
    for (const [a, b] of outsideDirectMap(config, lo, hi)) pieces.push({ vpn: directMapVpn(l.pfn + (a - l.vpn)), pages: b - a });
  }
  pieces.sort((x, y) => x.vpn - y.vpn);
  const merged: { vpn: Vpn; pages: number }[] = [];
  for (const p of pieces) {
    const last = merged[merged.length - 1];
    if (last !== undefined && last.vpn + last.pages >= p.vpn) last.pages = Math.max(last.pages, p.vpn + p.pages - last.vpn);
    else merged.push({ ...p });
  }
  return merged;
}

/** Sub-ranges of [lo, hi) outside the direct map. */
function outsideDirectMap(config: SystemConfig, lo: Vpn, hi: Vpn): [Vpn, Vpn][] {
  const dmLo = directMapVpn(0);
  const dmHi = dmLo + config.frames;
  if (hi <= dmLo || lo >= dmHi) return [[lo, hi]];
  const out: [Vpn, Vpn][] = [];
  if (lo < dmLo) out.push([lo, dmLo]);
  if (hi > dmHi) out.push([dmHi, hi]);
  return out;
}
