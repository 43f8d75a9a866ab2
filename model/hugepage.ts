/**
 * The split rule and collapse's requirements (spec/contracts/hugepage.ts), on leaves:
 * split_large_page turns one huge leaf into 512 of the next size down with every
 * attribute kept; collapse_large_pages turns 512 uniform, contiguous, aligned leaves back
 * into one.
 */
import { PAGES, pfnToHex, type PageSize, type Vpn } from '../spec/address.ts';
import { protEquals, type Leaf } from '../spec/state.ts';

/** The size a leaf of `size` splits into, or null for 4K. */
export function nextSizeDown(size: PageSize): PageSize | null {
  return size === '1G' ? '2M' : size === '2M' ? '4K' : null;
}

/**
 * 512 leaves of the next size down over the same range, frames contiguous, prot kept
 * exactly (the kernel moves PAT between bit 12 and bit 7 so the cache mode stays, and
 * keeps NX, G and RW). A 4K leaf yields itself.
 */
export function splitLeaf(leaf: Leaf): Leaf[] {
  const size = nextSizeDown(leaf.size);
  if (size === null) return [leaf];
  const n = PAGES[size];
  const out: Leaf[] = new Array<Leaf>(512);
  for (let i = 0; i < 512; i++) out[i] = { vpn: leaf.vpn + i * n, pfn: leaf.pfn + i * n, size, prot: leaf.prot };
  return out;
}

/** The size-aligned block collapse(…, vpn, size) works on. */
export function collapseBlock(vpn: Vpn, size: '2M' | '1G'): { readonly vpn: Vpn; readonly pages: number } {
  const pages = PAGES[size];
  return { vpn: vpn - (vpn % pages), pages };
}

/**
 * Why `leaves` (the leaves of a fully mapped block, in vpn order) cannot become one
 * `size` leaf, or null: it takes exactly 512 leaves of the next size down, one prot, and
 * frames contiguous from a size-aligned pfn.
 */
export function collapseRefusal(leaves: readonly Leaf[], size: '2M' | '1G'): string | null {
  const small = nextSizeDown(size)!;
  const first = leaves[0];
  if (first === undefined) return 'the block is not mapped';
  if (leaves.length !== 512 || leaves.some((l) => l.size !== small)) return `the block is not mapped by exactly 512 ${small} leaves`;
  if (first.pfn % PAGES[size] !== 0) return `the first frame ${pfnToHex(first.pfn)} is not ${size}-aligned`;
  // collapse_pmd_page: "The page is 4k intentionally" (set_memory_4k). The others must
  // match the first's prot, kernel4k included, so the first decides.
  if (first.prot.kernel4k === true) return 'the pages are kept 4K on purpose (kernel4k, set_memory_4k)';
  // A split hands every piece the huge leaf's prot: the same object is the same prot.
  const step = PAGES[small];
  for (let i = 1; i < 512; i++) {
    const l = leaves[i]!;
    if (l.prot !== first.prot && !protEquals(l.prot, first.prot)) return `leaf ${i} has different attributes than leaf 0`;
    if (l.pfn !== first.pfn + i * step) return `leaf ${i} does not continue the frames of leaf 0`;
  }
  return null;
}

