/**
 * The kernel's page-table users as clients of the library (spec/contracts/clients.ts):
 * their address geometry and the bookkeeping each keeps, which is part of the abstract
 * state (AbstractState.clients) because their rules (spec/invariants/clients.ts) are
 * about it: which vmalloc areas are live or lazily freed, which kmap_local slots and
 * mermap allocations a CPU holds, which pageblocks the __GFP_UNMAPPED pool owns, which
 * memory blocks were hot-added.
 *
 * Trusted: every export here is geometry or vocabulary shared by model and impl and not
 * checked by refinement (spec/README.md, "Trusted exports").
 */
import { hexToVpn, kernelLayout, type PagingLevels, type Pfn, type Vpn } from './address.ts';
import { PAGEBLOCK_PAGES } from './contracts/isolation.ts';

// ---- vmalloc (mm/vmalloc.c, gregkh/linux 04aa71da) ----

/** VMALLOC_START .. VMALLOC_END (Documentation/arch/x86/x86_64/mm.rst: 32 TB with 4-level paging, 12.5 PB with 5-level). */
export function vmallocRegion(levels: PagingLevels): { readonly vpn: Vpn; readonly pages: number } {
  const start = hexToVpn(levels === 5 ? '0xffa0000000000000' : '0xffffc90000000000');
  const end = hexToVpn(levels === 5 ? '0xffd2000000000000' : '0xffffe90000000000');
  return { vpn: start, pages: end - start };
}

/**
 * lazy_max_pages(): fls(num_online_cpus()) * (32 MiB / PAGE_SIZE), the lazily freed
 * vmalloc pages free_vmap_area_noflush lets gather before it schedules the purge.
 */
export function lazyMaxPages(cpus: number): number {
  const fls = cpus <= 0 ? 0 : 32 - Math.clz32(cpus);
  return fls * 8192;
}

/** A live vmalloc area: [vpn, vpn+pages) maps the frames [pfn, pfn+pages) it allocated. */
export interface VmallocArea {
  readonly vpn: Vpn;
  readonly pages: number;
  readonly pfn: Pfn;
  /** VM_ALLOW_HUGE_VMAP: mapped with 2M leaves (vmap's max_page_shift = PMD_SHIFT). */
  readonly huge: boolean;
  /** VM_FLUSH_RESET_PERMS: vfree resets the direct map and flushes before the pages go back. */
  readonly resetPerms: boolean;
}

/**
 * A vfree'd area on the purge list (free_vmap_area_noflush): unmapped without a flush,
 * its VA not reusable until purge_vmap_area_lazy has flushed it. Its frames were freed at
 * vfree (linux before any flush, strict after flushing the area).
 */
export interface LazyArea {
  readonly vpn: Vpn;
  readonly pages: number;
  readonly pfn: Pfn;
}

// ---- kmap_local (mm/highmem.c __kmap_local_pfn_prot, kunmap_local_indexed) ----

/** KM_MAX_IDX without CONFIG_DEBUG_KMAP_LOCAL (include/asm-generic/kmap_size.h): slots per CPU. */
export const KM_MAX_IDX = 16;

/**
 * FIXADDR_TOP on x86-64: round_up(VSYSCALL_ADDR + PAGE_SIZE, PMD_SIZE) - PAGE_SIZE with
 * VSYSCALL_ADDR = -10 MiB (arch/x86/include/asm/fixmap.h), the same in both layouts.
 */
export const FIXADDR_TOP: Vpn = hexToVpn('0xffffffffff7ff000');

/**
 * FIX_KMAP_BEGIN: where the kmap_local slots start in the fixmap enum. Its value depends
 * on the configuration (the permanent fixmap entries before it); ptspec puts it at 512,
 * right below the vsyscall page's PMD, so that all slots of every CPU share one PTE table.
 */
export const FIX_KMAP_BEGIN = 512;

/** __fix_to_virt(FIX_KMAP_BEGIN + idx + KM_MAX_IDX * cpu): fixmap addresses grow down. */
export function kmapSlotVpn(cpu: number, idx: number): Vpn {
  return FIXADDR_TOP - (FIX_KMAP_BEGIN + idx + KM_MAX_IDX * cpu);
}

/** The fixmap pages every CPU's kmap_local slots occupy, lowest first. */
export function kmapRegion(cpus: number): { readonly vpn: Vpn; readonly pages: number } {
  const low = kmapSlotVpn(cpus - 1, KM_MAX_IDX - 1);
  return { vpn: low, pages: kmapSlotVpn(0, 0) - low + 1 };
}

/** The CPU whose kmap_local slot `vpn` is, and the slot's index, or undefined. */
export function kmapSlotOf(cpus: number, vpn: Vpn): { readonly cpu: number; readonly idx: number } | undefined {
  const n = FIXADDR_TOP - vpn - FIX_KMAP_BEGIN;
  if (!Number.isInteger(n) || n < 0 || n >= KM_MAX_IDX * cpus) return undefined;
  return { cpu: Math.floor(n / KM_MAX_IDX), idx: n % KM_MAX_IDX };
}

/** One CPU's kmap_local slot in use (strict): the idx-th of its stack, mapping `pfn`. */
export interface KmapSlot {
  readonly cpu: number;
  readonly idx: number;
  readonly vpn: Vpn;
  readonly pfn: Pfn;
}

// ---- the mermap (mm/mermap.c of the __GFP_UNMAPPED series: linux-mm/linux-mm b7f5c72f) ----

/**
 * MERMAP_BASE_ADDR: the series puts the mermap in a per-mm "mm-local" region whose x86
 * address the sources read do not give. ptspec models init_mm's mermap and places it in
 * the unused hole right after the direct map (mm.rst: ffffc88000000000 with 4-level
 * paging, ff91000000000000 with 5-level).
 */
export function mermapBase(levels: PagingLevels): Vpn {
  return hexToVpn(levels === 5 ? '0xff91000000000000' : '0xffffc88000000000');
}

/**
 * Pages of one CPU's slice (MERMAP_CPU_REGION_SIZE, not given in the sources read; an
 * older variant uses one largest folio). The last page is kept for mermap_get_reserved,
 * which ptspec does not model: an allocation fits in the others.
 */
export const MERMAP_CPU_PAGES = 16;
/** The pages of a slice mermap_get may hand out. */
export const MERMAP_USABLE_PAGES = MERMAP_CPU_PAGES - 1;
/** struct mermap_cpu's allocs[4]: the allocations one CPU may hold at once. */
export const MERMAP_ALLOCS = 4;

/** The first page of CPU `cpu`'s slice: MERMAP_BASE_ADDR + cpu * MERMAP_CPU_REGION_SIZE. */
export function mermapSlice(levels: PagingLevels, cpu: number): Vpn {
  return mermapBase(levels) + cpu * MERMAP_CPU_PAGES;
}

/** Every CPU's slices. */
export function mermapRegion(levels: PagingLevels, cpus: number): { readonly vpn: Vpn; readonly pages: number } {
  return { vpn: mermapBase(levels), pages: cpus * MERMAP_CPU_PAGES };
}

/** The CPU whose mermap slice holds `vpn`, or undefined. */
export function mermapCpuOf(levels: PagingLevels, cpus: number, vpn: Vpn): number | undefined {
  const n = vpn - mermapBase(levels);
  return Number.isInteger(n) && n >= 0 && n < cpus * MERMAP_CPU_PAGES ? Math.floor(n / MERMAP_CPU_PAGES) : undefined;
}

/** A mermap allocation: [vpn, vpn+pages) of its CPU's slice maps [pfn, pfn+pages). */
export interface MermapAlloc {
  readonly cpu: number;
  readonly vpn: Vpn;
  readonly pages: number;
  readonly pfn: Pfn;
}

/** One CPU's mermap: its bump pointer, the allocations it holds, and those put but not yet flushed. */
export interface MermapCpu {
  readonly cpu: number;
  /** next_addr: where the next allocation goes. */
  readonly next: Vpn;
  /** In use (mermap_get'd, not yet put), sorted by vpn. */
  readonly allocs: readonly MermapAlloc[];
  /**
   * Put but not flushed on this CPU since (mermap_put does not flush): its TLB may still
   * translate them, so their frames need a flush before they are freed. Sorted by vpn.
   */
  readonly stale: readonly MermapAlloc[];
}

// ---- memory hotplug (mm/memory_hotplug.c of gregkh/linux 1bab7eea, arch/x86/mm/init_64.c of gregkh/linux 6bf94737) ----

/** sizeof(struct page) on x86-64: the vmemmap holds 64 bytes per frame. */
const STRUCT_PAGE_BYTES = 64;
const PAGE_BYTES = 4096;

/**
 * PAGES_PER_SECTION: sparsemem's unit of memory, 2^SECTION_SIZE_BITS bytes with
 * SECTION_SIZE_BITS 27 on x86-64 (arch/x86/include/asm/sparsemem.h, torvalds/linux
 * 08229de4): 128 MiB of frames. Each present section has its own struct pages in the
 * vmemmap (the boot's, spec/x86-64-machine.ts, and a hot-added block's).
 */
export const PAGES_PER_SECTION = 32768;

/** The vmemmap pages of one section's struct pages: 512 (2 MiB, one PMD). */
export const SECTION_MEMMAP_PAGES = (PAGES_PER_SECTION * STRUCT_PAGE_BYTES) / PAGE_BYTES;

/**
 * memory_block_size_bytes() in frames: probe_memory_block_size gives MIN_MEMORY_BLOCK_SIZE,
 * one section (1 << SECTION_SIZE_BITS, include/linux/memory.h of torvalds/linux 4c4b7f9b),
 * when boot memory ends below MEM_SIZE_FOR_LARGE_BLOCK (64 GiB), as on the default 16 GiB
 * machine. From 64 GiB up it picks MAX_BLOCK_SIZE (2 GiB) on bare metal and the largest
 * size up to that dividing the end of boot memory in a guest; ptspec keeps one section for
 * every machine. add_memory and remove_memory take whole blocks (check_hotplug_memory_range).
 */
export const MEMORY_BLOCK_PAGES = PAGES_PER_SECTION;

/**
 * memory_block_memmap_on_memory_pages(): the frames a block's own struct pages fill, its
 * one section's (2 MiB, one PMD: mhp_supports_memmap_on_memory's condition). With
 * memmap_on_memory they are the block's first frames (its altmap starts at the block:
 * create_altmaps_and_memory_blocks).
 */
export const MEMMAP_PAGES = (MEMORY_BLOCK_PAGES / PAGES_PER_SECTION) * SECTION_MEMMAP_PAGES;

/**
 * The vmemmap page holding frame `pfn`'s struct page: vmemmapStart + pfn * 64 / 4096
 * (pfn_to_page under SPARSEMEM_VMEMMAP), for a pfn on a 64-frame boundary (a block's).
 */
export function vmemmapVpn(levels: PagingLevels, pfn: Pfn): Vpn {
  return kernelLayout(levels).vmemmapStart + (pfn * STRUCT_PAGE_BYTES) / PAGE_BYTES;
}

/** The first frames of the memory blocks [pfn, pfn + count) covers, in order. */
export function memoryBlocks(pfn: Pfn, count: number): Pfn[] {
  const out: Pfn[] = [];
  for (let b = pfn; b < pfn + count; b += MEMORY_BLOCK_PAGES) out.push(b);
  return out;
}

// ---- __GFP_UNMAPPED (mm/page_alloc.c __rmqueue_direct_map, bjackman/linux a3c87cc7) ----

/** The clients' bookkeeping (AbstractState.clients): everything in canonical order. */
export interface ClientState {
  /** Live vmalloc areas, sorted by vpn. */
  readonly vmalloc: readonly VmallocArea[];
  /** The purge list, sorted by vpn. */
  readonly lazy: readonly LazyArea[];
  /** The kmap_local slots in use (strict; linux maps none on x86-64), sorted by cpu then idx. */
  readonly kmap: readonly KmapSlot[];
  /** Every CPU's mermap, sorted by cpu (all CPUs, from boot). */
  readonly mermap: readonly MermapCpu[];
  /** The first frames of the pageblocks (PAGEBLOCK_PAGES frames each) flagged FREETYPE_UNMAPPED, sorted. */
  readonly unmapped: readonly Pfn[];
  /** The first frames of the memory blocks addMemory added and removeMemory did not remove yet, sorted. */
  readonly memory: readonly Pfn[];
}

/** The bookkeeping of a freshly booted system with `cpus` CPUs. */
export function emptyClients(levels: PagingLevels, cpus: number): ClientState {
  return {
    vmalloc: [], lazy: [], kmap: [], unmapped: [], memory: [],
    mermap: Array.from({ length: cpus }, (_, cpu) => ({ cpu, next: mermapSlice(levels, cpu), allocs: [], stale: [] })),
  };
}

/** The pageblock holding `pfn`. */
export const pageblockOf = (pfn: Pfn): Pfn => Math.floor(pfn / PAGEBLOCK_PAGES) * PAGEBLOCK_PAGES;
