/**
 * map's leaf placement, as the kernel's phys_*_init and vmap_try_huge_* choose per entry:
 * greedy from the start of the range, the largest size that the CPU supports, that both
 * the page and the frame are aligned to and that still fits (spec/contracts/map.ts).
 */
import { PAGES, type PageSize, type Pfn, type Vpn } from '../spec/address.ts';
import type { SystemConfig } from '../spec/state.ts';

export interface LeafPlacement {
  readonly vpn: Vpn;
  readonly pfn: Pfn;
  readonly size: PageSize;
}

const LARGEST_FIRST: readonly PageSize[] = ['1G', '2M', '4K'];

function supported(config: SystemConfig, size: PageSize): boolean {
  return size === '4K' || (size === '2M' ? config.features.pse : config.features.gbpages);
}

/** One greedy step: the largest size ≤ maxPage the CPU has, with vpn and pfn aligned to it and room for it. */
function leafSize(config: SystemConfig, vpn: Vpn, pfn: Pfn, remaining: number, maxPage: PageSize): PageSize {
  for (const size of LARGEST_FIRST) {
    const n = PAGES[size];
    if (n <= PAGES[maxPage] && n <= remaining && vpn % n === 0 && pfn % n === 0 && supported(config, size)) return size;
  }
  return '4K';
}

/** Every leaf map creates for [vpn, vpn+pages) → [pfn, pfn+pages), in vpn order. */
export function placeLeaves(config: SystemConfig, vpn: Vpn, pfn: Pfn, pages: number, maxPage: PageSize = '1G'): LeafPlacement[] {
  const out: LeafPlacement[] = [];
  for (let off = 0; off < pages; ) {
    const size = leafSize(config, vpn + off, pfn + off, pages - off, maxPage);
    out.push({ vpn: vpn + off, pfn: pfn + off, size });
    off += PAGES[size];
  }
  return out;
}
