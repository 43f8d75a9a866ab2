/**
 * Sizes and alignment of ptdump ranges: how big one entry of each printed level is in
 * each paging mode, the kernel's size column (note_page: `%9lu%c`, dividing by 1024 while
 * the size stays an exact multiple), and the address text (`0x%0*lx`, 8 or 16 digits).
 */
import { VPN_LIMIT, type Vpn } from '../../spec/address.ts';
import { SIZE_UNITS, type DumpArch, type DumpLevel, type Paging, type SizeUnit } from './types.ts';

/** Exclusive page-number end of the whole address space. */
export function addressTop(paging: Paging): Vpn {
  return paging === '32-bit' ? 2 ** 20 : VPN_LIMIT;
}

/**
 * 4 KiB pages one entry of `level` covers. A run of level-L entries starts and ends on
 * entry boundaries, so both ends of a printed range are multiples of this.
 *
 * x86-64: pte 4K, pmd 2M, pud 1G, p4d 512G; pgd 512G with 4-level paging (p4d folded into
 * it) and 256T with 5-level. 32-bit: the pmd is 2M with PAE, and without PAE the folded
 * levels are the 4M pgd entry; the stricter of the two is not known from the text, so
 * pmd needs 2M and everything above 4M (true in both).
 *
 * arm64 (4K, 16K or 64K granule, 2 to 5 levels; not in the text): lower bounds that every
 * configuration's entries are multiples of. The kernel names the top level PGD whatever
 * its depth (pg_level names fold to "PGD"), so a PGD entry can be as small as 2M.
 */
export function levelPages(level: DumpLevel, paging: Paging, arch: DumpArch = 'x86'): number {
  if (arch === 'arm64') return { pte: 1, pmd: 512, pud: 512 ** 2, p4d: 512 ** 3, pgd: 512 }[level];
  switch (level) {
    case 'pte': return 1;
    case 'pmd': return 512;
    case 'pud': return paging === '32-bit' ? 1024 : 512 ** 2;
    case 'p4d': return paging === '32-bit' ? 1024 : 512 ** 3;
    case 'pgd': return paging === '32-bit' ? 1024 : paging === '4-level' ? 512 ** 3 : 512 ** 4;
  }
}

/**
 * The size column the kernel prints for `pages` 4 KiB pages. Counted in K from the start
 * (pages * 4 stays exact: at most 2^54 and a multiple of 4), so no BigInt per line.
 */
export function kernelSize(pages: number): { value: number; unit: SizeUnit } {
  let value = pages * 4;
  let unit = 1;
  while (value % 1024 === 0 && unit < SIZE_UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return { value, unit: SIZE_UNITS[unit]! };
}

/** `0x` and 16 (or 8) hex digits; the top of the space wraps to 0 as the kernel's unsigned long does. */
export function addressText(vpn: Vpn, paging: Paging): string {
  const page = vpn === addressTop(paging) ? 0 : vpn;
  return `0x${page.toString(16).padStart(paging === '32-bit' ? 5 : 13, '0')}000`;
}

/** Human-readable byte count for summaries: `1.5G`, `532K`. */
export function humanBytes(bytes: bigint): string {
  const units = ['B', 'K', 'M', 'G', 'T', 'P', 'E'];
  let u = 0;
  let scaled = Number(bytes);
  while (scaled >= 1024 && u < units.length - 1) {
    scaled /= 1024;
    u++;
  }
  const text = Number.isInteger(scaled) ? String(scaled) : scaled.toFixed(1);
  return `${text}${units[u]}`;
}
