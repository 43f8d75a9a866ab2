import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  X86_64_LAYOUT_4LEVEL, hexToVpn, isCanonical, isCanonicalRange, levelName, lowerHalfEnd, parseHex64,
  upperHalfStart, vpnToHex,
} from '../spec/address.ts';
import { fcParams } from './seed.ts';

describe('page-number addresses', () => {
  it('represent 64-bit kernel addresses exactly', () => {
    const vpn = hexToVpn('0xffff888000000000');
    expect(vpn).toBe(0xffff888000000);
    expect(Number.isSafeInteger(vpn)).toBe(true);
    expect(vpnToHex(vpn)).toBe('0xffff888000000000');
  });

  it('round-trip every page-aligned 64-bit address through text', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: (1n << 52n) - 1n }), (page) => {
        const text = `0x${(page << 12n).toString(16).padStart(16, '0')}`;
        expect(vpnToHex(hexToVpn(text))).toBe(text);
      }),
      fcParams(),
    );
  });

  it('keep user space below the kernel half in numeric order', () => {
    expect(hexToVpn('0x00007ffffffff000')).toBeLessThan(X86_64_LAYOUT_4LEVEL.pageOffset);
    expect(X86_64_LAYOUT_4LEVEL.pageOffset).toBeLessThan(X86_64_LAYOUT_4LEVEL.kernelText);
  });

  it('reject malformed and unaligned text with the offending text in the message', () => {
    expect(() => parseHex64('0xfffg')).toThrow(/0xfffg/);
    expect(() => parseHex64('0x10000000000000000')).toThrow(/not a 64-bit hex/);
    expect(() => hexToVpn('0xffff888000000010')).toThrow(/not 4 KiB aligned/);
  });
});

describe('canonical addresses', () => {
  const cases: [string, 4 | 5, boolean][] = [
    ['0x0000000000000000', 4, true],
    ['0x00007ffffffff000', 4, true],
    ['0x0000800000000000', 4, false],
    ['0xffff7ffffffff000', 4, false],
    ['0xffff800000000000', 4, true],
    ['0xfffffffffffff000', 4, true],
    ['0x0000800000000000', 5, true],
    ['0x00fffffffffff000', 5, true],
    ['0x0100000000000000', 5, false],
    ['0xff00000000000000', 5, true],
    ['0xfeff000000000000', 5, false],
  ];
  it.each(cases)('%s with %i-level paging: %s', (hex, levels, want) => {
    expect(isCanonical(hexToVpn(hex), levels)).toBe(want);
  });

  it('agree with sign extension of bit 47 / 56', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: (1n << 52n) - 1n }), fc.constantFrom<4 | 5>(4, 5), (page, levels) => {
        const va = page << 12n;
        const bits = levels === 4 ? 48n : 57n;
        const top = va >> (bits - 1n);
        const want = top === 0n || top === (1n << (64n - bits + 1n)) - 1n;
        expect(isCanonical(Number(page), levels)).toBe(want);
      }),
      fcParams(),
    );
  });

  it('ranges may not cross out of their half', () => {
    expect(isCanonicalRange(lowerHalfEnd(4) - 1, 1, 4)).toBe(true);
    expect(isCanonicalRange(lowerHalfEnd(4) - 1, 2, 4)).toBe(false);
    expect(isCanonicalRange(upperHalfStart(4), 2 ** 35, 4)).toBe(true);
    expect(isCanonicalRange(upperHalfStart(4), 2 ** 35 + 1, 4)).toBe(false);
    expect(isCanonicalRange(0, 0, 4)).toBe(false);
  });

  it('name the levels as the kernel does, folding p4d with 4-level paging', () => {
    expect([1, 2, 3, 4].map((l) => levelName(l as 1, 4))).toEqual(['pte', 'pmd', 'pud', 'pgd']);
    expect([1, 2, 3, 4, 5].map((l) => levelName(l as 1, 5))).toEqual(['pte', 'pmd', 'pud', 'p4d', 'pgd']);
  });
});
