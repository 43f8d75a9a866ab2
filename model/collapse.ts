/**
 * A protect's collapse afterwards (ProtectOptions.collapse, the kernel's CPA_COLLAPSE for
 * set_memory_rox): which 2M and 1G blocks around the range become one leaf again. Both
 * profiles state the same rule (spec/contracts/protect.ts, linux.ts); they differ only in
 * when it runs and how it is flushed, which model.ts decides.
 */
import { PAGES, type Vpn } from '../spec/address.ts';
import type { CpuFeatures, Leaf } from '../spec/state.ts';
import { collapseRefusal } from './hugepage.ts';
import { intersecting, makeLeaf, replace } from './leaves.ts';

/** The block one collapse made: a 2M block, or the 1G block around it when that collapsed too. */
export interface CollapsedBlock {
  readonly vpn: Vpn;
  readonly pages: number;
}

/** The leaves with the `size` block at `vpn` made one leaf, or null when collapseRefusal refuses it. */
function collapseAt(leaves: readonly Leaf[], vpn: Vpn, size: '2M' | '1G'): Leaf[] | null {
  const [lo, hi] = intersecting(leaves, vpn, PAGES[size]);
  const inside = leaves.slice(lo, hi);
  // 512 leaves of the next size down in an aligned block cover it, so no page is missing.
  if (collapseRefusal(inside, size) !== null) return null;
  return replace(leaves, lo, hi, [makeLeaf(vpn, inside[0]!.pfn, size, inside[0]!.prot)]);
}

/**
 * The pages collapseRange(features, leaves, vpn, pages) reads: the 2M blocks meeting the
 * range, and with GB pages the 1G blocks around them (none without PSE).
 */
export function collapseSpan(features: CpuFeatures, vpn: Vpn, pages: number): { readonly vpn: Vpn; readonly pages: number } {
  if (!features.pse) return { vpn, pages };
  const block = PAGES[features.gbpages ? '1G' : '2M'];
  const from = vpn - (vpn % block);
  return { vpn: from, pages: Math.ceil((vpn + pages) / block) * block - from };
}

/**
 * A protect's collapse (CPA_COLLAPSE, set_memory_rox; both profiles state the same rule):
 * cpa_collapse_large_pages over the 2M blocks from the one containing vpn while they
 * start below vpn+pages, in order. collapse_large_pages needs B's 2M entry to be a PTE
 * table under a PUD table, and collapse_pmd_page 512 present 4K leaves with the first's
 * prot, not kernel4k, contiguous from a 2M-aligned frame, and PSE; right after, the 1G
 * block around B (collapse_pud_page, GB pages) 512 present 2M leaves likewise. On
 * `leaves` (the present ones): a non-present entry in B makes it fail, as in the kernel.
 */
export function collapseRange(features: CpuFeatures, leaves: readonly Leaf[], vpn: Vpn, pages: number): { leaves: readonly Leaf[]; blocks: CollapsedBlock[] } {
  const M = PAGES['2M'];
  const G = PAGES['1G'];
  let out = leaves;
  const blocks: CollapsedBlock[] = [];
  if (!features.pse) return { leaves: out, blocks };
  for (let b = vpn - (vpn % M); b < vpn + pages; b += M) {
    const two = collapseAt(out, b, '2M');
    if (two === null) continue;
    out = two;
    const g = b - (b % G);
    const one = features.gbpages ? collapseAt(out, g, '1G') : null;
    if (one !== null) out = one;
    blocks.push(one === null ? { vpn: b, pages: M } : { vpn: g, pages: G });
  }
  return { leaves: out, blocks };
}
