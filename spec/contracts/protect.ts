/**
 * protect(vpn, pages, change, {alias = false}): change_page_attr_set_clr on init_mm,
 * i.e. set_memory_ro/rw/x/nx/wc/uc/wb (arch/x86/mm/pat/set_memory.c).
 *
 * Preconditions, first failure wins:
 *   EINVAL vpn     not an integer canonical page number in the kernel half
 *   EINVAL pages   not an integer ≥ 1, or the range leaves the kernel half
 *   EINVAL change  a field of the wrong type, or an unknown cache mode
 *   ENOENT         some page of [vpn, vpn+pages) is unmapped
 *   EPERM          the resulting state breaks a strict-policy invariant (outcome.ts STRICT_POLICY)
 *   ENOMEM         the splits need more tables than the pool has
 *
 * Postcondition: every page p of the range gets its old prot with the change applied:
 * each field the change gives is set, every other kept, and `exec: v` sets execKernel = v
 * and execUser = v && user (ProtChange, spec/system.ts). A leaf only partly inside the
 * range is split (split rule, recursively: hugepage.ts) only where its prot actually
 * changes; a leaf whose prot stays is left whole; nothing is collapsed. With alias, for
 * each frame f mapped by the range at a vpn outside the direct map (isDirectMapVpn), the
 * page directMapVpn(f) then, as a second step after the range's own change, gets the
 * change's write and cache fields only (never exec: the direct map stays NX; never
 * global) by the same rule; alias pages that are unmapped are skipped (cpa_process_alias).
 * Flushed on all CPUs (flush.ts): [vpn, vpn+pages), and with alias the direct-map pages
 * of all those frames, mapped or not. Frames are unchanged.
 */
import type { Vpn } from '../address.ts';
import type { PtError } from '../errors.ts';
import { CACHE_MODES, type SystemConfig } from '../state.ts';
import type { ProtChange } from '../system.ts';
import { checkKernelPages, checkKernelVpn, ptError } from './args.ts';

function checkChange(change: ProtChange): PtError | null {
  for (const field of ['write', 'exec', 'global'] as const) {
    const v = change[field];
    if (v !== undefined && typeof v !== 'boolean') return ptError('EINVAL', 'change', `${field} must be a boolean`);
  }
  if (change.cache !== undefined && !CACHE_MODES.includes(change.cache)) return ptError('EINVAL', 'change', `unknown cache mode ${String(change.cache)}`);
  return null;
}

/** protect's preconditions that need no state (EINVAL), in the order of the header. Trusted: shared by model and impl, not checked by refinement. */
export function validateProtect(config: SystemConfig, vpn: Vpn, pages: number, change: ProtChange): PtError | null {
  return checkKernelVpn(config, vpn) ?? checkKernelPages(vpn, pages) ?? checkChange(change);
}
