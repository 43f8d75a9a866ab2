/**
 * The linux profile's memory-type reservations for set_memory_uc / _wc / _wb
 * (CONTRACTS.protect.linux, "A cache change"; memtype_reserve and
 * reserve_ram_pages_type in arch/x86/mm/pat/memtype.c): which frames a request
 * reserves, and which whole CPA requests it runs.
 */
import { kernelLayout, type Pfn, type Vpn } from '../spec/address.ts';
import type { FrameRun, SystemConfig } from '../spec/state.ts';
import type { ProtChange } from '../spec/system.ts';

/** The first frame above the ISA range (1 MiB): pat_pagerange_is_ram counts RAM from there. */
const FIRST_RAM_PFN = 0x100;

/**
 * The frames __pa(vpn) names when they are RAM that reserve_ram_pages_type tracks: vpn in
 * the direct map or the high map (phys_base 0), and [f, f+pages) within [0x100, frames).
 * Null elsewhere (vmalloc, ioremap, low or missing memory): the kernel keeps those in its
 * tree of non-RAM ranges, which ptspec does not model.
 */
export function trackedFrames(config: SystemConfig, vpn: Vpn, pages: number): { pfn: Pfn; count: number } | null {
  const L = kernelLayout(config.levels);
  const inside = (base: Vpn): boolean => vpn >= base && vpn < base + config.frames;
  const f = inside(L.pageOffset) ? vpn - L.pageOffset : inside(L.kernelText) ? vpn - L.kernelText : null;
  if (f === null || f < FIRST_RAM_PFN || f + pages > config.frames) return null;
  return { pfn: f, count: pages };
}

/** What a protect request does around its walk(s). */
export interface MemtypePlan {
  /** memtype_reserve's type before any walk (EBUSY if a frame has one), or null. */
  readonly reserve: NonNullable<FrameRun['memtype']> | null;
  /** The whole change_page_attr_set_clr requests, in order; each runs only if the one before succeeded. */
  readonly requests: readonly ProtChange[];
  /** set_memory_wb: memtype_free once the walk succeeded. */
  readonly freeOnSuccess: boolean;
}

/**
 * set_memory_uc: reserve UC-, one walk. set_memory_wc: reserve WC, then _set_memory_wc's
 * two requests, UC- first and WC only after it succeeded. set_memory_wb: one walk, then
 * free. Anything else (WT, UC, WP through _set_memory_*, or no cache change): one walk,
 * no reservation. The change's other fields ride along in every request.
 */
export function memtypePlan(change: ProtChange): MemtypePlan {
  switch (change.cache) {
    case 'UC-': return { reserve: 'UC-', requests: [change], freeOnSuccess: false };
    case 'WC': return { reserve: 'WC', requests: [{ ...change, cache: 'UC-' }, change], freeOnSuccess: false };
    case 'WB': return { reserve: null, requests: [change], freeOnSuccess: true };
    default: return { reserve: null, requests: [change], freeOnSuccess: false };
  }
}
