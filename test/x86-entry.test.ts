import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PAGES, tableIndex, type Level } from '../spec/address.ts';
import { CACHE_MODES } from '../spec/state.ts';
import {
  __PAGE_KERNEL, __PAGE_KERNEL_EXEC, __PAGE_KERNEL_LARGE, __PAGE_KERNEL_RO, __PAGE_KERNEL_ROX,
  _KERNPG_TABLE, _PAGE_PAT, _PAGE_PAT_LARGE, _PAGE_PSE, _PAGE_TABLE, PAGE_SHARED,
  bitsToCacheMode, cacheModeToBits, decodeLeaf, decodeTable, encodeLeaf, encodeTable, entryFromBigInt,
  entryToBigInt, hasReservedBits, lo4kToLarge, loLargeTo4k, reservedMask, type X86Leaf,
} from '../impl/arch/x86_64/entry.ts';
import { fcParams } from './seed.ts';

describe('kernel protection values come out exactly', () => {
  const cases: [string, { lo: number; hi: number }, bigint][] = [
    ['__PAGE_KERNEL', __PAGE_KERNEL, 0x8000000000000163n],
    ['__PAGE_KERNEL_EXEC', __PAGE_KERNEL_EXEC, 0x163n],
    ['__PAGE_KERNEL_RO', __PAGE_KERNEL_RO, 0x8000000000000121n],
    ['__PAGE_KERNEL_ROX', __PAGE_KERNEL_ROX, 0x121n],
    ['__PAGE_KERNEL_LARGE', __PAGE_KERNEL_LARGE, 0x80000000000001e3n],
    ['_KERNPG_TABLE', _KERNPG_TABLE, 0x63n],
    ['_PAGE_TABLE', _PAGE_TABLE, 0x67n],
    ['PAGE_SHARED', PAGE_SHARED, 0x8000000000000027n],
  ];
  it.each(cases)('%s', (_name, entry, want) => {
    expect(entryToBigInt(entry).toString(16)).toBe(want.toString(16));
  });
});

const maxPhysBits = 52;
const leafArb = (level: 1 | 2 | 3) =>
  fc.record({
    // A large leaf's frame is aligned to its size; the PFN spans bits 12..51.
    pfn: fc.integer({ min: 0, max: 2 ** 40 / PAGES[level === 1 ? '4K' : level === 2 ? '2M' : '1G'] - 1 })
      .map((n) => n * PAGES[level === 1 ? '4K' : level === 2 ? '2M' : '1G']),
    rw: fc.boolean(), user: fc.boolean(), pwt: fc.boolean(), pcd: fc.boolean(), pat: fc.boolean(),
    accessed: fc.boolean(), dirty: fc.boolean(), global: fc.boolean(), nx: fc.boolean(),
    softw: fc.integer({ min: 0, max: 7 }), softwHigh: fc.integer({ min: 0, max: 3 }), pkey: fc.integer({ min: 0, max: 15 }),
  });

describe('leaf encoding', () => {
  for (const level of [1, 2, 3] as const) {
    it(`decode(encode(x)) == x at level ${level}, with no reserved bit set`, () => {
      fc.assert(
        fc.property(leafArb(level), (leaf: X86Leaf) => {
          const e = encodeLeaf(level, leaf);
          expect(decodeLeaf(level, e.lo, e.hi)).toEqual(leaf);
          expect(hasReservedBits(e.lo, e.hi, reservedMask(level, true, maxPhysBits))).toBe(false);
          // Bit 7 is PS on large leaves and PAT on 4K ones.
          expect((e.lo & _PAGE_PSE) !== 0).toBe(level === 1 ? leaf.pat : true);
        }),
        fcParams(),
      );
    });
  }

  it('puts PAT at bit 7 on 4K leaves and bit 12 on large leaves', () => {
    const leaf: X86Leaf = { pfn: 512, rw: false, user: false, pwt: false, pcd: false, pat: true, accessed: false, dirty: false, global: false, nx: false, softw: 0, softwHigh: 0, pkey: 0 };
    expect(entryToBigInt(encodeLeaf(1, leaf))).toBe((512n << 12n) | 0x81n);
    expect(entryToBigInt(encodeLeaf(2, leaf))).toBe((512n << 12n) | 0x1000n | 0x81n);
  });

  it('moves PAT between bit 12 and bit 7 exactly when splitting and collapsing', () => {
    fc.assert(
      fc.property(leafArb(2), (leaf) => {
        const large = encodeLeaf(2, leaf);
        const small = loLargeTo4k(large.lo);
        const as4k = decodeLeaf(1, small & 0xfff, large.hi);
        expect(as4k.pat).toBe(leaf.pat);
        expect(small & _PAGE_PAT_LARGE).toBe(0);
        expect(lo4kToLarge(small)).toBe(large.lo);
        expect(((small & _PAGE_PAT) !== 0)).toBe(leaf.pat);
      }),
      fcParams(),
    );
  });
});

describe('table entry encoding', () => {
  it('decode(encode(x)) == x at every table level', () => {
    fc.assert(
      fc.property(
        fc.record({
          pfn: fc.integer({ min: 0, max: 2 ** 40 - 1 }), rw: fc.boolean(), user: fc.boolean(), pwt: fc.boolean(),
          pcd: fc.boolean(), accessed: fc.boolean(), nx: fc.boolean(),
        }),
        fc.constantFrom<Level>(2, 3, 4, 5),
        (t, level) => {
          const e = encodeTable(t);
          expect(decodeTable(e.lo, e.hi)).toEqual(t);
          expect(hasReservedBits(e.lo, e.hi, reservedMask(level, false, maxPhysBits))).toBe(false);
        },
      ),
      fcParams(),
    );
  });
});

describe('reserved bits', () => {
  it('PS is reserved at the pgd/p4d levels', () => {
    const m = reservedMask(4, false, 46);
    expect(hasReservedBits(_PAGE_PSE, 0, m)).toBe(true);
    expect(hasReservedBits(_PAGE_PSE, 0, reservedMask(3, false, 46))).toBe(false);
  });
  it('frame bits at or above MAXPHYADDR are reserved', () => {
    const e = entryFromBigInt(1n << 46n);
    expect(hasReservedBits(e.lo, e.hi, reservedMask(1, true, 46))).toBe(true);
    expect(hasReservedBits(e.lo, e.hi, reservedMask(1, true, 47))).toBe(false);
  });
  it('frame bits below a large leaf alignment are reserved, but not the PAT bit', () => {
    expect(hasReservedBits(1 << 13, 0, reservedMask(2, true, 52))).toBe(true);
    expect(hasReservedBits(1 << 20, 0, reservedMask(2, true, 52))).toBe(true);
    expect(hasReservedBits(1 << 21, 0, reservedMask(2, true, 52))).toBe(false);
    expect(hasReservedBits(1 << 29, 0, reservedMask(3, true, 52))).toBe(true);
    expect(hasReservedBits(_PAGE_PAT_LARGE, 0, reservedMask(3, true, 52))).toBe(false);
    expect(hasReservedBits(1 << 13, 0, reservedMask(1, true, 52))).toBe(false);
  });
  it('rejects an impossible MAXPHYADDR', () => {
    expect(() => reservedMask(1, true, 60)).toThrow(/MAXPHYADDR 60/);
  });
});

describe('cache modes under the kernel PAT', () => {
  it.each(CACHE_MODES.map((m) => [m]))('%s round-trips through PWT/PCD/PAT', (mode) => {
    expect(bitsToCacheMode(cacheModeToBits(mode))).toBe(mode);
  });
  it('uses the kernel encodings: WC = PWT, UC- = PCD, UC = PCD|PWT, WT = PAT|PCD|PWT, WP = PAT|PWT', () => {
    expect(cacheModeToBits('WB')).toEqual({ pwt: false, pcd: false, pat: false });
    expect(cacheModeToBits('WC')).toEqual({ pwt: true, pcd: false, pat: false });
    expect(cacheModeToBits('UC-')).toEqual({ pwt: false, pcd: true, pat: false });
    expect(cacheModeToBits('UC')).toEqual({ pwt: true, pcd: true, pat: false });
    expect(cacheModeToBits('WT')).toEqual({ pwt: true, pcd: true, pat: true });
    expect(cacheModeToBits('WP')).toEqual({ pwt: true, pcd: false, pat: true });
    // The aliases the kernel never writes still decode as the PAT MSR says.
    expect(bitsToCacheMode({ pwt: false, pcd: false, pat: true })).toBe('WB');
    expect(bitsToCacheMode({ pwt: false, pcd: true, pat: true })).toBe('UC-');
  });
});

describe('walk index of a VA at each level matches the SDM bit ranges of spec/address.ts', () => {
  it('PTE 20:12, PMD 29:21, PUD 38:30, P4D/PGD 47:39, PGD(5-level) 56:48', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), (va) => {
        const vpn = Number(va >> 12n);
        const bits = (lo: bigint) => Number((va >> lo) & 511n);
        expect(tableIndex(vpn, 1)).toBe(bits(12n));
        expect(tableIndex(vpn, 2)).toBe(bits(21n));
        expect(tableIndex(vpn, 3)).toBe(bits(30n));
        expect(tableIndex(vpn, 4)).toBe(bits(39n));
        expect(tableIndex(vpn, 5)).toBe(bits(48n));
      }),
      fcParams(),
    );
  });
  it('indexes 0xffff888000000000 (direct map base) as pgd 273', () => {
    expect(tableIndex(Number(0xffff888000000000n >> 12n), 4)).toBe(273);
  });
});
