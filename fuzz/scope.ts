/**
 * The part of the state a command can have changed, for incremental checking.
 *
 * A command changes leaves only inside the range it names and, for `protect` with
 * `alias`, inside the direct-map alias of the frames it covers (cpa_process_alias); the
 * set_direct_map_* calls touch the direct-map pages of their frames. A partly covered
 * huge leaf is split, so the pieces outside the range change too: every range is widened
 * to the leaves of the state before the command that contain its ends. Bugs that write
 * outside these ranges are caught by the periodic full check; test/refinement-report
 * checks on the model that no command changes a leaf outside them.
 */
import { PAGES, VPN_LIMIT, kernelLayout, type PagingLevels, type Vpn } from '../spec/address.ts';
import type { Command } from '../spec/commands.ts';
import { OPERATIONS, type Touched } from '../spec/operations.ts';
import type { CheckScope } from '../spec/invariant.ts';
import type { Leaf } from '../spec/state.ts';

/** Index of the first leaf that ends after `vpn` (leaves sorted by vpn, disjoint). */
export function firstLeafEndingAfter(leaves: readonly Leaf[], vpn: Vpn): number {
  let lo = 0;
  let hi = leaves.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const l = leaves[mid]!;
    if (l.vpn + PAGES[l.size] <= vpn) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The leaf containing vpn, if any. */
export function leafAt(leaves: readonly Leaf[], vpn: Vpn): Leaf | undefined {
  const l = leaves[firstLeafEndingAfter(leaves, vpn)];
  return l !== undefined && l.vpn <= vpn ? l : undefined;
}

/** [vpn, vpn+pages) clamped to valid page numbers (invalid requests still name a place to compare). */
function clamped(vpn: number, pages: number): CheckScope | null {
  if (!Number.isFinite(vpn) || !Number.isFinite(pages)) return null;
  const start = Math.max(0, Math.min(VPN_LIMIT - 1, Math.floor(vpn)));
  const end = Math.max(start + 1, Math.min(VPN_LIMIT, Math.floor(vpn) + Math.max(1, Math.floor(pages))));
  return { vpn: start, pages: end - start };
}

/**
 * The range widened to the whole leaves (of the state before the command) that contain
 * its first and last page: a partly covered leaf is split, and all its pieces change.
 */
function widened(r: CheckScope, before: readonly Leaf[]): CheckScope {
  const first = leafAt(before, r.vpn);
  const last = leafAt(before, r.vpn + r.pages - 1);
  const start = first === undefined ? r.vpn : first.vpn;
  const end = last === undefined ? r.vpn + r.pages : Math.max(r.vpn + r.pages, last.vpn + PAGES[last.size]);
  return { vpn: start, pages: end - start };
}

/** Sorted, merged ranges. */
function merged(ranges: CheckScope[]): CheckScope[] {
  ranges.sort((a, b) => a.vpn - b.vpn);
  const out: CheckScope[] = [];
  for (const r of ranges) {
    const last = out[out.length - 1];
    if (last !== undefined && r.vpn <= last.vpn + last.pages) {
      const end = Math.max(last.vpn + last.pages, r.vpn + r.pages);
      out[out.length - 1] = { vpn: last.vpn, pages: end - last.vpn };
    } else {
      out.push(r);
    }
  }
  return out;
}

/**
 * Ranges of init_mm the command may have changed, given the leaves before it ran: the
 * ranges its operation-table entry names (spec/operations.ts `touches`), and for a
 * `protect … alias` the direct-map and high-map pages of the frames it covers, each widened to the
 * leaves it splits. Empty for flushAll and the process operations, which change no kernel
 * leaf (TLBs and obligations are compared in full after every command anyway).
 */
export function touchedScopes(c: Command, before: readonly Leaf[], levels: PagingLevels): CheckScope[] {
  const { pageOffset, kernelText } = kernelLayout(levels);
  const touched = (OPERATIONS[c.op].touches as (c: Command, pageOffset: Vpn, levels: PagingLevels) => Touched)(c, pageOffset, levels);
  const out: CheckScope[] = [];
  const add = (vpn: number, pages: number): void => {
    const r = clamped(vpn, pages);
    if (r !== null) out.push(widened(r, before));
  };
  for (const r of touched.ranges) {
    add(r.vpn, r.pages);
    if (!touched.directMapAliases || !Number.isInteger(r.vpn) || !Number.isInteger(r.pages)) continue;
    const end = r.vpn + r.pages;
    for (let i = firstLeafEndingAfter(before, r.vpn); i < before.length; i++) {
      const l = before[i]!;
      if (l.vpn >= end) break;
      const from = Math.max(r.vpn, l.vpn);
      const pages = Math.min(end, l.vpn + PAGES[l.size]) - from;
      add(pageOffset + l.pfn + (from - l.vpn), pages);
      // The linux profile's cpa_process_alias also changes the high-map alias of image
      // frames (__START_KERNEL_map + pa); outside the image that range maps nothing.
      add(kernelText + l.pfn + (from - l.vpn), pages);
    }
  }
  return merged(out);
}
