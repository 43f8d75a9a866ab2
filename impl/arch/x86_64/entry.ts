/**
 * x86-64 page-table entry encoding (Intel SDM vol. 3 §4.5; arch/x86/include/asm/
 * pgtable_types.h). An entry is 64 bits held as two 32-bit words, `lo` (bits 31:0) and
 * `hi` (bits 63:32), the way the impl stores tables in a Uint32Array: no BigInt on the
 * hot path. Bit names follow the kernel's _PAGE_BIT_* names.
 */
import type { Level, Pfn } from '../../../spec/address.ts';
import { X86_KERNEL_PAT, type CacheMode } from '../../../spec/state.ts';

// ---- bits in lo (bits 0..31) ----
export const _PAGE_PRESENT = 1 << 0;
export const _PAGE_RW = 1 << 1;
export const _PAGE_USER = 1 << 2;
export const _PAGE_PWT = 1 << 3;
export const _PAGE_PCD = 1 << 4;
export const _PAGE_ACCESSED = 1 << 5;
export const _PAGE_DIRTY = 1 << 6;
/** Bit 7: PS (page size) in PUD/PMD entries, PAT in 4K PTEs. */
export const _PAGE_PSE = 1 << 7;
export const _PAGE_PAT = 1 << 7;
export const _PAGE_GLOBAL = 1 << 8;
/** Software bits 9..11 (the kernel uses bit 11 for "keep this 4K" on the direct map). */
export const _PAGE_SOFTW1 = 1 << 9;
export const _PAGE_SOFTW2 = 1 << 10;
export const _PAGE_SOFTW3 = 1 << 11;
export const _PAGE_SOFTW_MASK = _PAGE_SOFTW1 | _PAGE_SOFTW2 | _PAGE_SOFTW3;
/**
 * _PAGE_KERNEL_4K = _PAGE_SOFTW3 (pgtable_types.h: _PAGE_BIT_KERNEL_4K is
 * _PAGE_BIT_SOFTW3): set_memory_4k's mark that a page must stay 4K (collapse_pmd_page
 * skips a block whose first PTE has it). The MMU ignores it; it is kept on present and
 * non-present entries alike.
 */
export const _PAGE_KERNEL_4K = _PAGE_SOFTW3;
/** PAT on 2M/1G leaves (bit 12; the PFN of a large leaf starts above it). */
export const _PAGE_PAT_LARGE = 1 << 12;
/** Low 20 bits of the PFN, bits 12..31 of lo. */
export const LO_PFN_MASK = 0xfffff000 >>> 0;
/** Flags of lo (bits 0..11). */
export const LO_FLAGS_MASK = 0xfff;

// ---- bits in hi (bit n of the entry is bit n-32 of hi) ----
/** PFN bits 20..39 = entry bits 32..51 = hi bits 0..19. */
export const HI_PFN_MASK = 0x000fffff;
/** Ignored bits 52..56. */
export const HI_IGNORED_MASK = 0x01f00000;
/** Software bits 57..58 (the kernel's _PAGE_BIT_SOFTW4/5). */
export const HI_SOFTW_MASK = 0x06000000;
/** Protection key, bits 59..62. */
export const HI_PKEY_SHIFT = 27;
export const HI_PKEY_MASK = 0x78000000;
/** NX, bit 63. */
export const HI_NX = 0x80000000 >>> 0;

export interface Entry {
  readonly lo: number;
  readonly hi: number;
}

/** Entry from a 64-bit value (tests and edges only). */
export function entryFromBigInt(v: bigint): Entry {
  return { lo: Number(v & 0xffffffffn), hi: Number((v >> 32n) & 0xffffffffn) };
}

export function entryToBigInt(e: Entry): bigint {
  return (BigInt(e.hi >>> 0) << 32n) | BigInt(e.lo >>> 0);
}

export function entryToHex(e: Entry): string {
  return `0x${entryToBigInt(e).toString(16).padStart(16, '0')}`;
}

// ---- PFN ----

export function entryPfn(lo: number, hi: number): Pfn {
  return (hi & HI_PFN_MASK) * 0x100000 + (lo >>> 12);
}

/** lo word bits of a PFN. */
export function pfnLo(pfn: Pfn): number {
  return ((pfn % 0x100000) << 12) >>> 0;
}

/** hi word bits of a PFN. */
export function pfnHi(pfn: Pfn): number {
  return Math.floor(pfn / 0x100000) & HI_PFN_MASK;
}

// ---- structured encode/decode (abstraction function, tests, dumps) ----

/** The hardware attributes of a leaf. `pat` is the PAT bit wherever it lives at that level. */
export interface X86Leaf {
  readonly pfn: Pfn;
  readonly rw: boolean;
  readonly user: boolean;
  readonly pwt: boolean;
  readonly pcd: boolean;
  readonly pat: boolean;
  readonly accessed: boolean;
  readonly dirty: boolean;
  readonly global: boolean;
  readonly nx: boolean;
  /** Bits 9..11 as a 3-bit number. */
  readonly softw: number;
  /** Bits 57..58 as a 2-bit number. */
  readonly softwHigh: number;
  readonly pkey: number;
}

/** Attributes of a non-leaf (table) entry. PWT/PCD here control caching of the next table. */
export interface X86Table {
  readonly pfn: Pfn;
  readonly rw: boolean;
  readonly user: boolean;
  readonly pwt: boolean;
  readonly pcd: boolean;
  readonly accessed: boolean;
  readonly nx: boolean;
}

function flagBits(f: { rw: boolean; user: boolean; pwt: boolean; pcd: boolean; accessed: boolean }): number {
  return (
    _PAGE_PRESENT |
    (f.rw ? _PAGE_RW : 0) |
    (f.user ? _PAGE_USER : 0) |
    (f.pwt ? _PAGE_PWT : 0) |
    (f.pcd ? _PAGE_PCD : 0) |
    (f.accessed ? _PAGE_ACCESSED : 0)
  );
}

/** Encode a leaf at level 1 (4K), 2 (2M, PS) or 3 (1G, PS). */
export function encodeLeaf(level: 1 | 2 | 3, l: X86Leaf): Entry {
  const patBit = level === 1 ? _PAGE_PAT : _PAGE_PAT_LARGE;
  const lo =
    flagBits(l) |
    (l.dirty ? _PAGE_DIRTY : 0) |
    (level === 1 ? 0 : _PAGE_PSE) |
    (l.pat ? patBit : 0) |
    (l.global ? _PAGE_GLOBAL : 0) |
    ((l.softw & 7) << 9) |
    pfnLo(l.pfn);
  const hi = pfnHi(l.pfn) | ((l.softwHigh & 3) << 25) | ((l.pkey & 15) << HI_PKEY_SHIFT) | (l.nx ? HI_NX : 0);
  return { lo: lo >>> 0, hi: hi >>> 0 };
}

export function decodeLeaf(level: 1 | 2 | 3, lo: number, hi: number): X86Leaf {
  const pat = level === 1 ? (lo & _PAGE_PAT) !== 0 : (lo & _PAGE_PAT_LARGE) !== 0;
  // On a large leaf bit 12 is PAT, not part of the frame number.
  const pfn = level === 1 ? entryPfn(lo, hi) : entryPfn(lo & ~_PAGE_PAT_LARGE, hi);
  return {
    pfn,
    rw: (lo & _PAGE_RW) !== 0,
    user: (lo & _PAGE_USER) !== 0,
    pwt: (lo & _PAGE_PWT) !== 0,
    pcd: (lo & _PAGE_PCD) !== 0,
    pat,
    accessed: (lo & _PAGE_ACCESSED) !== 0,
    dirty: (lo & _PAGE_DIRTY) !== 0,
    global: (lo & _PAGE_GLOBAL) !== 0,
    nx: (hi & HI_NX) !== 0,
    softw: (lo >>> 9) & 7,
    softwHigh: (hi >>> 25) & 3,
    pkey: (hi >>> HI_PKEY_SHIFT) & 15,
  };
}

export function encodeTable(t: X86Table): Entry {
  const lo = flagBits(t) | pfnLo(t.pfn);
  const hi = pfnHi(t.pfn) | (t.nx ? HI_NX : 0);
  return { lo: lo >>> 0, hi: hi >>> 0 };
}

export function decodeTable(lo: number, hi: number): X86Table {
  return {
    pfn: entryPfn(lo, hi),
    rw: (lo & _PAGE_RW) !== 0,
    user: (lo & _PAGE_USER) !== 0,
    pwt: (lo & _PAGE_PWT) !== 0,
    pcd: (lo & _PAGE_PCD) !== 0,
    accessed: (lo & _PAGE_ACCESSED) !== 0,
    nx: (hi & HI_NX) !== 0,
  };
}

// ---- PAT bit position: 4K (bit 7) <-> 2M/1G (bit 12) ----

/**
 * The lo word of a 4K PTE carrying the attributes of a large leaf's lo word, as
 * split_large_page does with pgprot_large_2_4k: PAT moves from bit 12 to bit 7 and PS is
 * dropped. The PFN bits are not touched (the caller sets each small page's frame).
 */
export function loLargeTo4k(lo: number): number {
  const pat = (lo & _PAGE_PAT_LARGE) !== 0;
  return ((lo & ~(_PAGE_PSE | _PAGE_PAT_LARGE)) | (pat ? _PAGE_PAT : 0)) >>> 0;
}

/** The inverse (pgprot_4k_2_large): PAT from bit 7 to bit 12, PS set. */
export function lo4kToLarge(lo: number): number {
  const pat = (lo & _PAGE_PAT) !== 0;
  return ((lo & ~_PAGE_PAT) | _PAGE_PSE | (pat ? _PAGE_PAT_LARGE : 0)) >>> 0;
}

// ---- cache modes under the kernel's PAT MSR programming ----

/** The PAT MSR as the kernel programs it (spec/state.ts X86_KERNEL_PAT). */
export const KERNEL_PAT: readonly CacheMode[] = X86_KERNEL_PAT;

/** The PAT index the kernel uses for each mode (its __cachemode2pte_tbl). */
const CACHE_MODE_INDEX: Readonly<Record<CacheMode, number>> = { WB: 0, WC: 1, 'UC-': 2, UC: 3, WP: 5, WT: 7 };

export interface CacheBits {
  readonly pwt: boolean;
  readonly pcd: boolean;
  readonly pat: boolean;
}

export function cacheModeToBits(mode: CacheMode): CacheBits {
  const i = CACHE_MODE_INDEX[mode];
  return { pwt: (i & 1) !== 0, pcd: (i & 2) !== 0, pat: (i & 4) !== 0 };
}

export function bitsToCacheMode(b: CacheBits): CacheMode {
  return KERNEL_PAT[(b.pat ? 4 : 0) + (b.pcd ? 2 : 0) + (b.pwt ? 1 : 0)]!;
}

// ---- reserved bits (SDM §4.5.4: a set reserved bit makes the walk fault) ----

export interface ReservedMask {
  readonly lo: number;
  readonly hi: number;
}

/** Bits maxPhysBits..51 of the entry, which are reserved in every present entry. */
function physAddrReserved(maxPhysBits: number): ReservedMask {
  let lo = 0;
  let hi = 0;
  for (let bit = maxPhysBits; bit <= 51; bit++) {
    if (bit < 32) lo |= 1 << bit;
    else hi |= 1 << (bit - 32);
  }
  return { lo: lo >>> 0, hi: hi >>> 0 };
}

/**
 * Reserved bits of a present entry at `level` (leaf or table as `leaf` says) with
 * MAXPHYADDR = maxPhysBits, NX enabled (EFER.NXE). PS is reserved at the top levels,
 * and the frame bits below the leaf's alignment (above the PAT bit) are reserved in
 * large leaves.
 */
export function reservedMask(level: Level, leaf: boolean, maxPhysBits: number): ReservedMask {
  if (maxPhysBits < 36 || maxPhysBits > 52) throw new RangeError(`MAXPHYADDR ${maxPhysBits} outside 36..52`);
  const base = physAddrReserved(maxPhysBits);
  let lo = base.lo;
  if (level >= 4) lo |= _PAGE_PSE;
  if (leaf && level === 2) lo |= 0x001fe000; // bits 13..20
  if (leaf && level === 3) lo |= 0x3fffe000; // bits 13..29
  return { lo: lo >>> 0, hi: base.hi };
}

export function hasReservedBits(lo: number, hi: number, mask: ReservedMask): boolean {
  return ((lo & mask.lo) | (hi & mask.hi)) !== 0;
}

// ---- the kernel's protection values (pgtable_types.h), built from their bits ----

const kernelLeaf = (o: { rw: boolean; nx: boolean; user?: boolean; global?: boolean; dirty?: boolean }): X86Leaf => ({
  pfn: 0, rw: o.rw, user: o.user ?? false, pwt: false, pcd: false, pat: false, accessed: true,
  dirty: o.dirty ?? true, global: o.global ?? true, nx: o.nx, softw: 0, softwHigh: 0, pkey: 0,
});

/** __PP|__RW|_ENC|___A|___D|__NX|___G (with SME off: _ENC = 0). */
export const __PAGE_KERNEL = encodeLeaf(1, kernelLeaf({ rw: true, nx: true }));
export const __PAGE_KERNEL_EXEC = encodeLeaf(1, kernelLeaf({ rw: true, nx: false }));
/** Read-only kernel pages are not dirty: __PP|___A|__NX|___G. */
export const __PAGE_KERNEL_RO = encodeLeaf(1, kernelLeaf({ rw: false, nx: true, dirty: false }));
export const __PAGE_KERNEL_ROX = encodeLeaf(1, kernelLeaf({ rw: false, nx: false, dirty: false }));
/** __PAGE_KERNEL with PS: a 2M leaf. */
export const __PAGE_KERNEL_LARGE = encodeLeaf(2, kernelLeaf({ rw: true, nx: true }));
/** _KERNPG_TABLE: __PP|__RW|___A|___D; tables carry no G or NX so the leaf decides. */
export const _KERNPG_TABLE = { lo: (encodeTable({ pfn: 0, rw: true, user: false, pwt: false, pcd: false, accessed: true, nx: false }).lo | _PAGE_DIRTY) >>> 0, hi: 0 };
/** _PAGE_TABLE = _KERNPG_TABLE | _PAGE_USER. */
export const _PAGE_TABLE = { lo: (_KERNPG_TABLE.lo | _PAGE_USER) >>> 0, hi: 0 };
/** PAGE_SHARED: __PP|__RW|_USR|___A|__NX (a user mapping, not global, not dirty). */
export const PAGE_SHARED = encodeLeaf(1, kernelLeaf({ rw: true, nx: true, user: true, global: false, dirty: false }));
