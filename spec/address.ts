/**
 * Addresses in ptspec.
 *
 * A 64-bit kernel virtual address such as 0xffff888000000000 is not exact as a JS number
 * (2^53 limit), and BigInt is far too slow for the page-table hot path. Every address in
 * ptspec is therefore a *page number*:
 *
 *   Vpn = (unsigned 64-bit VA) >> 12     a 52-bit integer, exact as a number
 *   Pfn = PA >> 12                        at most 40 bits (MAXPHYADDR <= 52)
 *
 * Using the unsigned VA keeps ordering: user space (low) sorts before the kernel half
 * (high), and a range [vpn, vpn + pages) never wraps inside one half. Lengths are page
 * counts. Conversion to and from 64-bit hex text happens only at the edges (parsing,
 * printing), where BigInt is allowed.
 *
 * Index bits (Intel SDM vol. 3 §4.5; PMD_SHIFT, PUD_SHIFT, P4D_SHIFT and PGDIR_SHIFT in
 * arch/x86/include/asm/pgtable_64_types.h): PTE 20:12, PMD 29:21, PUD 38:30,
 * P4D 47:39 (5-level), PGD 47:39 (4-level) or 56:48 (5-level).
 *
 * Trusted: every export here is address geometry shared by model and impl and not
 * checked by refinement (spec/README.md, "Trusted exports").
 */

export type Vpn = number;
export type Pfn = number;

/** 4-level (48-bit VA) or 5-level (LA57, 57-bit VA) paging. */
export type PagingLevels = 4 | 5;

export const PAGE_SHIFT = 12;
export const PAGE_SIZE = 4096;
export const PTRS_PER_TABLE = 512;
/** Number of page-number bits: 64 - PAGE_SHIFT. */
export const VPN_BITS = 52;
export const VPN_LIMIT = 2 ** VPN_BITS;

export type PageSize = '4K' | '2M' | '1G';
export const PAGE_SIZES: readonly PageSize[] = ['4K', '2M', '1G'];
/** 4 KiB pages per leaf of each size. */
export const PAGES: Readonly<Record<PageSize, number>> = { '4K': 1, '2M': 512, '1G': 262144 };

/**
 * Table levels numbered from the leaf up, as the hardware walks them: 1 = PTE table,
 * 2 = PMD, 3 = PUD, 4 = P4D (PGD when 4-level), 5 = PGD (5-level only).
 */
export type Level = 1 | 2 | 3 | 4 | 5;
export type LevelName = 'pte' | 'pmd' | 'pud' | 'p4d' | 'pgd';

/** Kernel name of a level; with 4-level paging the p4d is folded into the pgd. */
export function levelName(level: Level, levels: PagingLevels): LevelName {
  if (level === levels) return 'pgd';
  return (['pte', 'pmd', 'pud', 'p4d', 'pgd'] as const)[level - 1]!;
}

/** The level whose entries map a leaf of this size. */
export function leafLevel(size: PageSize): Level {
  return size === '4K' ? 1 : size === '2M' ? 2 : 3;
}

/** 2^(9·(level-1)) for levels 1 to 5, computed once: the footprint and the table walks ask per leaf. */
const PAGES_PER_ENTRY: readonly number[] = [1, 2, 3, 4, 5].map((level) => 2 ** (9 * (level - 1)));

/** 4 KiB pages covered by one entry of a table at `level`. */
export function pagesPerEntry(level: Level): number {
  return PAGES_PER_ENTRY[level - 1]!;
}

/** Index of `vpn` in a table at `level` (bits 12+9(level-1) .. +8 of the VA). */
export function tableIndex(vpn: Vpn, level: Level): number {
  return Math.floor(vpn / pagesPerEntry(level)) % PTRS_PER_TABLE;
}

/** Bits of virtual address the hardware translates. */
export function vaBits(levels: PagingLevels): number {
  return levels === 4 ? 48 : 57;
}

/** lowerHalfEnd of each paging mode, computed once: every address check asks for it. */
const LOWER_HALF_END_4LEVEL = 2 ** (vaBits(4) - 1 - PAGE_SHIFT);
const LOWER_HALF_END_5LEVEL = 2 ** (vaBits(5) - 1 - PAGE_SHIFT);

/** Page numbers below this are the lower (user) canonical half: 2^(vaBits - 1 - PAGE_SHIFT). */
export function lowerHalfEnd(levels: PagingLevels): Vpn {
  return levels === 4 ? LOWER_HALF_END_4LEVEL : LOWER_HALF_END_5LEVEL;
}

/** First page number of the upper (kernel) canonical half. */
export function upperHalfStart(levels: PagingLevels): Vpn {
  return VPN_LIMIT - lowerHalfEnd(levels);
}

/** Canonical: bits 63..(vaBits-1) all equal, i.e. the VA is a sign extension. */
export function isCanonical(vpn: Vpn, levels: PagingLevels): boolean {
  return Number.isInteger(vpn) && vpn >= 0 && (vpn < lowerHalfEnd(levels) || (vpn >= upperHalfStart(levels) && vpn < VPN_LIMIT));
}

/** A whole range [vpn, vpn + pages) inside one canonical half (it may end exactly at the half's end). */
export function isCanonicalRange(vpn: Vpn, pages: number, levels: PagingLevels): boolean {
  if (!isCanonical(vpn, levels) || !Number.isInteger(pages) || pages < 1) return false;
  const end = vpn + pages;
  return vpn < lowerHalfEnd(levels) ? end <= lowerHalfEnd(levels) : end <= VPN_LIMIT;
}

export function isKernelHalf(vpn: Vpn, levels: PagingLevels): boolean {
  return vpn >= upperHalfStart(levels);
}

export function isAligned(n: number, pages: number): boolean {
  return n % pages === 0;
}

// ---- edges: 64-bit hex text <-> page numbers (BigInt allowed here only) ----

const MASK64 = (1n << 64n) - 1n;

/** Parse `0x…` (or bare) hex text of a 64-bit value; throws with the text on error. */
export function parseHex64(text: string): bigint {
  const t = text.trim();
  if (!/^(0x)?[0-9a-fA-F]{1,16}$/.test(t)) throw new RangeError(`not a 64-bit hex number: ${JSON.stringify(text)}`);
  return BigInt(t.startsWith('0x') ? t : `0x${t}`);
}

/** Page number of a page-aligned 64-bit address. */
export function addrToPage(addr: bigint): number {
  if (addr < 0n || addr > MASK64) throw new RangeError(`address out of 64-bit range: ${addr}`);
  if (addr & 0xfffn) throw new RangeError(`address 0x${addr.toString(16)} is not 4 KiB aligned`);
  return Number(addr >> 12n);
}

export function hexToVpn(text: string): Vpn {
  return addrToPage(parseHex64(text));
}

export function pageToAddr(page: number): bigint {
  return BigInt(page) << 12n;
}

/** `0x` and 16 hex digits, as the kernel's ptdump prints addresses. */
export function vpnToHex(vpn: Vpn): string {
  return `0x${pageToAddr(vpn).toString(16).padStart(16, '0')}`;
}

/** Physical addresses print without padding, as the kernel's %pa does not here. */
export function pfnToHex(pfn: Pfn): string {
  return `0x${pageToAddr(pfn).toString(16)}`;
}

/** `[0xffff888000000000, +512 pages)`: virtual pages as a person reads them, in either system's messages. */
export function vpnSpan(vpn: Vpn, pages: number): string {
  return `[${vpnToHex(vpn)}, +${pages} pages)`;
}

/** `[0x100000, +16 frames)`: frames as a person reads them. */
export function pfnSpan(pfn: Pfn, count: number): string {
  return `[${pfnToHex(pfn)}, +${count} frames)`;
}

// ---- the x86-64 kernel layout (Documentation/arch/x86/x86_64/mm.rst) ----

/** The base pages of the kernel's regions, without KASLR (CONFIG_RANDOMIZE_MEMORY off). */
export interface KernelLayout {
  readonly ldtRemap: Vpn;
  /** __PAGE_OFFSET: the direct map of all physical memory (page_offset_base). */
  readonly pageOffset: Vpn;
  readonly vmallocStart: Vpn;
  readonly vmemmapStart: Vpn;
  readonly cpuEntryArea: Vpn;
  readonly espfix: Vpn;
  /** __START_KERNEL_map: the kernel image, mapped to physical address 0 (phys_base 0). */
  readonly kernelText: Vpn;
  readonly modules: Vpn;
  readonly modulesEnd: Vpn;
}

/** From cpu_entry_area up, both layouts are identical ("Identical layout to the 56-bit one from here on"). */
const TOP_OF_LAYOUT = {
  cpuEntryArea: hexToVpn('0xfffffe0000000000'),
  espfix: hexToVpn('0xffffff0000000000'),
  kernelText: hexToVpn('0xffffffff80000000'),
  modules: hexToVpn('0xffffffffa0000000'),
  modulesEnd: hexToVpn('0xffffffffff000000'),
};

/** 4-level paging: the kernel half starts at 0xffff800000000000. */
export const X86_64_LAYOUT_4LEVEL: KernelLayout = {
  ldtRemap: hexToVpn('0xffff880000000000'),
  pageOffset: hexToVpn('0xffff888000000000'),
  vmallocStart: hexToVpn('0xffffc90000000000'),
  vmemmapStart: hexToVpn('0xffffea0000000000'),
  ...TOP_OF_LAYOUT,
};

/** 5-level paging (LA57): the kernel regions below cpu_entry_area move down to the -64 PB half. */
export const X86_64_LAYOUT_5LEVEL: KernelLayout = {
  ldtRemap: hexToVpn('0xff10000000000000'),
  pageOffset: hexToVpn('0xff11000000000000'),
  vmallocStart: hexToVpn('0xffa0000000000000'),
  vmemmapStart: hexToVpn('0xffd4000000000000'),
  ...TOP_OF_LAYOUT,
};

/** The layout of a paging mode. */
export function kernelLayout(levels: PagingLevels): KernelLayout {
  return levels === 5 ? X86_64_LAYOUT_5LEVEL : X86_64_LAYOUT_4LEVEL;
}
