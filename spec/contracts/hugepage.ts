/**
 * split(root, vpn) and collapse(root, vpn, size): split_large_page and
 * collapse_large_pages (arch/x86/mm/pat/set_memory.c), and the split rule every
 * operation that touches part of a huge leaf follows.
 *
 * split preconditions, first failure wins:
 *   EINVAL root   root is not init_mm (0)
 *   EINVAL vpn    not an integer canonical page number in the kernel half
 *   ENOENT        vpn is not mapped
 *   EINVAL vpn    the leaf containing vpn is 4K (nothing to split)
 *   EPERM         policy (splitting preserves attributes, so never today)
 *   ENOMEM        the new table does not fit in the pool
 * split postcondition: the leaf L containing vpn is replaced by `splitLeaf(L)`; TLB
 * entries intersecting L's range are flushed on all CPUs, obligations there discharged.
 *
 * collapse preconditions, first failure wins:
 *   EINVAL root   root is not init_mm (0)
 *   EINVAL vpn    not an integer canonical page number in the kernel half
 *   EINVAL size   not 2M/1G, or the CPU lacks it (2M needs PSE, 1G GB pages)
 *   ENOENT        some page of B is unmapped, B = the size-aligned block containing vpn
 *   EINVAL vpn    B is not exactly 512 leaves of the next size down with identical prot
 *                 and contiguous frames from a size-aligned pfn (`collapseRefusal`)
 *   EPERM / ENOMEM  as for any operation (collapse frees a table, so never today)
 * collapse postcondition: those 512 leaves are replaced by one leaf of `size` with
 * their prot at their first pfn; B is flushed on all CPUs.
 */
import { PAGES, type PageSize, type Vpn } from '../address.ts';
import type { PtError } from '../errors.ts';
import { protEquals, type Leaf, type RootId, type SystemConfig } from '../state.ts';
import { checkKernelVpn, checkRoot, ptError, sizeSupported } from './args.ts';

export function validateSplit(config: SystemConfig, root: RootId, vpn: Vpn): PtError | null {
  return checkRoot(root) ?? checkKernelVpn(config, vpn);
}

export function validateCollapse(config: SystemConfig, root: RootId, vpn: Vpn, size: '2M' | '1G'): PtError | null {
  return (
    checkRoot(root) ??
    checkKernelVpn(config, vpn) ??
    (size !== '2M' && size !== '1G'
      ? ptError('EINVAL', 'size', `${String(size)} is not a huge page size (2M or 1G)`)
      : sizeSupported(config, size)
        ? null
        : ptError('EINVAL', 'size', `the CPU has no ${size} pages (${size === '2M' ? 'PSE' : 'GB pages'} missing)`))
  );
}

/** The size a leaf of `size` splits into, or null for 4K. */
export function nextSizeDown(size: PageSize): PageSize | null {
  return size === '1G' ? '2M' : size === '2M' ? '4K' : null;
}

/**
 * The split rule (split_large_page): 512 leaves of the next size down covering the same
 * range, frames contiguous, every attribute kept exactly (the kernel moves PAT from bit
 * 12 to bit 7 for 4K PTEs so the cache mode stays, and keeps NX, G and RW). A 4K leaf
 * yields itself.
 */
export function splitLeaf(leaf: Leaf): Leaf[] {
  const size = nextSizeDown(leaf.size);
  if (size === null) return [leaf];
  const n = PAGES[size];
  const out: Leaf[] = new Array<Leaf>(512);
  for (let i = 0; i < 512; i++) out[i] = { vpn: leaf.vpn + i * n, pfn: leaf.pfn + i * n, size, prot: leaf.prot };
  return out;
}

/** The size-aligned block that collapse(…, vpn, size) works on. */
export function collapseBlock(vpn: Vpn, size: '2M' | '1G'): { readonly vpn: Vpn; readonly pages: number } {
  const pages = PAGES[size];
  return { vpn: vpn - (vpn % pages), pages };
}

/**
 * Whether `leaves` (the leaves inside block B, in vpn order, B fully mapped) can become
 * one `size` leaf: exactly 512 leaves of the next size down, one prot, frames contiguous
 * from a size-aligned pfn. Returns the refusal reason, or null when collapsible.
 */
export function collapseRefusal(leaves: readonly Leaf[], size: '2M' | '1G'): string | null {
  const small = nextSizeDown(size)!;
  const first = leaves[0];
  if (first === undefined) return 'the block is not mapped';
  if (leaves.length !== 512 || leaves.some((l) => l.size !== small)) {
    return `the block is not mapped by exactly 512 ${small} leaves`;
  }
  if (first.pfn % PAGES[size] !== 0) return `the first frame ${first.pfn} is not ${size}-aligned`;
  for (let i = 1; i < 512; i++) {
    const l = leaves[i]!;
    if (!protEquals(l.prot, first.prot)) return `leaf ${i} has different attributes than leaf 0`;
    if (l.pfn !== first.pfn + i * PAGES[small]) return `leaf ${i} does not continue the frames of leaf 0`;
  }
  return null;
}
