/**
 * protect(vpn, pages, change, {alias = false, collapse = false}): change_page_attr_set_clr
 * on init_mm, i.e. the set_memory_* family (arch/x86/mm/pat/set_memory.c; which request is
 * which ProtChange: spec/system.ts). This is the strict profile; the linux profile's
 * semantics are spec/contracts/linux.ts.
 *
 * Preconditions, first failure wins:
 *   EINVAL vpn     not an integer canonical page number in the kernel half
 *   EINVAL pages   not an integer ≥ 1, or the range leaves the kernel half
 *   EINVAL change  a field of the wrong type, an unknown cache mode, or kernel4k other than true
 *   ENOENT         some page of [vpn, vpn+pages) has no entry (neither a leaf nor a
 *                  non-present entry)
 *   EPERM          the resulting state breaks a strict-policy invariant (outcome.ts STRICT_POLICY)
 *   ENOMEM         the splits need more tables than the pool has (judged before any collapse)
 *
 * Postcondition. An entry is a leaf or a non-present entry (AbstractRoot.nonPresent):
 * both carry a frame and a prot, and the change applies to both. Every page p of the
 * range gets its old prot with the change applied: each field the change gives is set,
 * every other kept, `exec: v` sets execKernel = v and execUser = v && user, `kernel4k`
 * sets kernel4k; `present: false` makes p's entry non-present, `present: true` present
 * (frame and prot kept either way). An entry only partly inside the range is split
 * (split rule, recursively: hugepage.ts) only where its prot or presence actually
 * changes; one that stays is left whole. With `kernel4k` every page of the range ends up
 * in a 4K entry (the kernel's force_split), whatever it had, and the pieces outside the
 * range follow the split rule. The policy judges the present leaves only.
 *
 * With alias, for each frame f that an entry of the range (present or not: the kernel's
 * cpa->pfn comes from either) holds at a vpn outside the direct map (isDirectMapVpn), the page directMapVpn(f) then, as a second step after the range's
 * own change, gets the change's write and cache fields only (never exec: the direct map
 * stays NX; never global, present or kernel4k: strict keeps the alias mapped and its
 * page size its own) by the same rule; alias pages without an entry are skipped
 * (cpa_process_alias). The linux profile propagates every mask but NX, to the high map
 * too (linux.ts).
 *
 * With collapse (set_memory_rox), after the change and its alias step: for each
 * 2M-aligned block B meeting the range, in address order, if B is mapped by 512 present 4K leaves with one prot
 * without kernel4k and contiguous frames from a 2M-aligned pfn, and the CPU has PSE,
 * they become one 2M leaf with that prot (collapse_pmd_page); right after such a
 * collapse, if the CPU has GB pages and the 1G block around B is then 512 present 2M
 * leaves with one prot and contiguous frames from a 1G-aligned pfn, they become one 1G
 * leaf (collapse_pud_page). Strict follows the kernel's rule here, except that the kernel
 * collapses only when the change itself wrote an entry (cpa_flush runs the collapse).
 * A block that cannot collapse stays as it is: collapse never fails.
 *
 * Flushed on all CPUs (flush.ts): [vpn, vpn+pages), with alias the direct-map pages of
 * all those frames, mapped or not, and with collapse every block collapsed. Frames are
 * unchanged.
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
  if (change.present !== undefined && typeof change.present !== 'boolean') return ptError('EINVAL', 'change', 'present must be a boolean');
  // set_memory_4k only sets _PAGE_KERNEL_4K: no kernel request clears it.
  if (change.kernel4k !== undefined && change.kernel4k !== true) return ptError('EINVAL', 'change', 'kernel4k can only be set (true): set_memory_4k');
  return null;
}

/** protect's preconditions that need no state (EINVAL), in the order of the header. Trusted: shared by model and impl, not checked by refinement. */
export function validateProtect(config: SystemConfig, vpn: Vpn, pages: number, change: ProtChange): PtError | null {
  return checkKernelVpn(config, vpn) ?? checkKernelPages(vpn, pages) ?? checkChange(change);
}
