/**
 * The trusted parts of spec/contracts: each argument validator with its errno and
 * argument and the order in which they run, the direct-map geometry, and the radix
 * footprint that defines ENOMEM.
 */
import { describe, expect, it } from 'vitest';
import { PAGES, VPN_LIMIT, X86_64_LAYOUT_4LEVEL as L, hexToVpn, kernelLayout, lowerHalfEnd, upperHalfStart } from '../spec/address.ts';
import {
  directMapVpn, isDirectMapVpn, validateAccess, validateCollapse, validateFlush, validateFlushLocal, validateFrames, validateMap, validateProtect,
  validateSetDirectMap, validateSplit, validateTranslate, validateUnmap,
} from '../spec/contracts/index.ts';
import type { PtError } from '../spec/errors.ts';
import { tableFootprint } from '../spec/footprint.ts';
import { PAGE_KERNEL, PAGE_KERNEL_ROX, type Leaf, type Prot, type SystemConfig } from '../spec/state.ts';
import { KERNEL_CONFIG as config, NO_GB_CONFIG as noGb, NO_PSE_CONFIG as noPse, USER_RO } from './states.ts';

const V = L.vmallocStart; // 1G-aligned
const G = PAGES['1G'];
const M = PAGES['2M'];

const errnoArg = (e: PtError | null): string | null => (e === null ? null : `${e.errno} ${e.arg}`);

describe('argument validators', () => {
  it('map: each precondition names its argument', () => {
    const v = (root: number, vpn: number, pfn: number, pages: number, prot: Prot, maxPage?: string) =>
      errnoArg(validateMap(config, root, vpn, pfn, pages, prot, maxPage === undefined ? {} : { maxPage: maxPage as '4K' }));
    expect(v(0, V, 0, 1, PAGE_KERNEL)).toBeNull();
    expect(v(1, V, 0, 1, PAGE_KERNEL)).toBe('EINVAL root');
    expect(v(0, 0x400, 0, 1, PAGE_KERNEL)).toBe('EINVAL vpn'); // user half
    expect(v(0, lowerHalfEnd(4), 0, 1, PAGE_KERNEL)).toBe('EINVAL vpn'); // non-canonical hole
    expect(v(0, V + 0.5, 0, 1, PAGE_KERNEL)).toBe('EINVAL vpn');
    expect(v(0, V, 0, 0, PAGE_KERNEL)).toBe('EINVAL pages');
    expect(v(0, V, 0, 1.5, PAGE_KERNEL)).toBe('EINVAL pages');
    expect(v(0, VPN_LIMIT - 1, 0, 2, PAGE_KERNEL)).toBe('EINVAL pages');
    expect(v(0, VPN_LIMIT - 1, 0, 1, PAGE_KERNEL)).toBeNull(); // the last page of the kernel half
    expect(v(0, V, -1, 1, PAGE_KERNEL)).toBe('EINVAL pfn');
    expect(v(0, V, config.frames - 1, 2, PAGE_KERNEL)).toBe('EINVAL pfn');
    expect(v(0, V, config.frames - 1, 1, PAGE_KERNEL)).toBeNull();
    expect(v(0, V, 0, 1, { ...PAGE_KERNEL_ROX, user: true })).toBe('EINVAL prot'); // user && execKernel but not execUser
    expect(v(0, V, 0, 1, { ...PAGE_KERNEL, execUser: true })).toBe('EINVAL prot');
    expect(v(0, V, 0, 1, { ...PAGE_KERNEL, cache: 'XX' as 'WB' })).toBe('EINVAL prot');
    expect(v(0, V, 0, 1, USER_RO)).toBeNull(); // representable: refused later, by policy (e)
    expect(v(0, V, 0, 1, PAGE_KERNEL, '8K')).toBe('EINVAL maxPage');
    // An unsupported maxPage is not an error: it caps lower.
    expect(errnoArg(validateMap(noPse, 0, V, 0, 1, PAGE_KERNEL, { maxPage: '1G' }))).toBeNull();
  });

  it('check arguments in the order root, vpn, pages, pfn, prot, maxPage (first failure wins)', () => {
    const badProt = { ...PAGE_KERNEL, execUser: true };
    expect(errnoArg(validateMap(config, 1, 0x400, -1, 0, badProt, { maxPage: 'x' as '4K' }))).toBe('EINVAL root');
    expect(errnoArg(validateMap(config, 0, 0x400, -1, 0, badProt, { maxPage: 'x' as '4K' }))).toBe('EINVAL vpn');
    expect(errnoArg(validateMap(config, 0, V, -1, 0, badProt, { maxPage: 'x' as '4K' }))).toBe('EINVAL pages');
    expect(errnoArg(validateMap(config, 0, V, -1, 1, badProt, { maxPage: 'x' as '4K' }))).toBe('EINVAL pfn');
    expect(errnoArg(validateMap(config, 0, V, 0, 1, badProt, { maxPage: 'x' as '4K' }))).toBe('EINVAL prot');
    expect(errnoArg(validateCollapse(noPse, 1, 0x400, '2M'))).toBe('EINVAL root');
    expect(errnoArg(validateCollapse(noPse, 0, 0x400, '2M'))).toBe('EINVAL vpn');
    expect(errnoArg(validateAccess(config, 9, 1, 0x400, 'r', 'kernel'))).toBe('EINVAL cpu');
    expect(errnoArg(validateAccess(config, 0, 1, 0x400, 'r', 'kernel'))).toBe('EINVAL root');
  });

  it('unmap, split, translate, flush, protect', () => {
    expect(errnoArg(validateUnmap(config, 0, V, 1))).toBeNull();
    expect(errnoArg(validateUnmap(config, 2, V, 1))).toBe('EINVAL root');
    expect(errnoArg(validateUnmap(config, 0, 5, 1))).toBe('EINVAL vpn');
    expect(errnoArg(validateUnmap(config, 0, V, -3))).toBe('EINVAL pages');
    expect(errnoArg(validateSplit(config, 0, V))).toBeNull();
    expect(errnoArg(validateSplit(config, 3, V))).toBe('EINVAL root');
    expect(errnoArg(validateSplit(config, 0, upperHalfStart(4) - 1))).toBe('EINVAL vpn');
    expect(errnoArg(validateTranslate(config, 0, upperHalfStart(4)))).toBeNull();
    expect(errnoArg(validateTranslate(config, 0, VPN_LIMIT))).toBe('EINVAL vpn');
    expect(errnoArg(validateFlush(config, V, 0))).toBe('EINVAL pages');
    expect(errnoArg(validateFlush(config, 0, 1))).toBe('EINVAL vpn');
    expect(errnoArg(validateProtect(config, V, 1, { write: false, cache: 'UC' }))).toBeNull();
    expect(errnoArg(validateProtect(config, V, 1, {}))).toBeNull();
    expect(errnoArg(validateProtect(config, 1, 1, {}))).toBe('EINVAL vpn');
    expect(errnoArg(validateProtect(config, V, 0, {}))).toBe('EINVAL pages');
    expect(errnoArg(validateProtect(config, V, 1, { cache: 'nope' as 'WB' }))).toBe('EINVAL change');
    expect(errnoArg(validateProtect(config, V, 1, { write: 1 as unknown as boolean }))).toBe('EINVAL change');
  });

  it('set_direct_map: pfn then count', () => {
    expect(errnoArg(validateSetDirectMap(config, 0, 1))).toBeNull();
    expect(errnoArg(validateSetDirectMap(config, -1, 1))).toBe('EINVAL pfn');
    expect(errnoArg(validateSetDirectMap(config, config.frames, 1))).toBe('EINVAL pfn');
    expect(errnoArg(validateSetDirectMap(config, 0, 0))).toBe('EINVAL count');
    expect(errnoArg(validateSetDirectMap(config, config.frames - 1, 2))).toBe('EINVAL count');
  });

  it('flushLocal: cpu as for access, then the range as for flush', () => {
    expect(errnoArg(validateFlushLocal(config, 1, V, 400))).toBeNull(); // no ceiling, no limit but the kernel half
    expect(errnoArg(validateFlushLocal(config, config.cpus, 0, 0))).toBe('EINVAL cpu');
    expect(errnoArg(validateFlushLocal(config, 0.5, V, 1))).toBe('EINVAL cpu');
    expect(errnoArg(validateFlushLocal(config, 0, 0, 0))).toBe('EINVAL vpn');
    expect(errnoArg(validateFlushLocal(config, 0, V, 0))).toBe('EINVAL pages');
    expect(errnoArg(validateFlushLocal(config, 0, VPN_LIMIT - 1, 2))).toBe('EINVAL pages');
  });

  it('allocFrames and freeFrames: pfn then count, as set_direct_map_*', () => {
    expect(errnoArg(validateFrames(config, 0, 1))).toBeNull();
    expect(errnoArg(validateFrames(config, config.frames - 4, 4))).toBeNull();
    expect(errnoArg(validateFrames(config, -1, 0))).toBe('EINVAL pfn');
    expect(errnoArg(validateFrames(config, config.frames, 1))).toBe('EINVAL pfn');
    expect(errnoArg(validateFrames(config, 1.5, 1))).toBe('EINVAL pfn');
    expect(errnoArg(validateFrames(config, 0, 0))).toBe('EINVAL count');
    expect(errnoArg(validateFrames(config, config.frames - 1, 2))).toBe('EINVAL count');
    for (const [pfn, count] of [[0, 1], [-1, 1], [0, 0], [config.frames - 1, 2]] as const) {
      expect(errnoArg(validateFrames(config, pfn, count))).toBe(errnoArg(validateSetDirectMap(config, pfn, count)));
    }
  });

  it('collapse: size must exist and be supported by the CPU', () => {
    expect(errnoArg(validateCollapse(config, 0, V, '1G'))).toBeNull();
    expect(errnoArg(validateCollapse(noGb, 0, V, '1G'))).toBe('EINVAL size');
    expect(errnoArg(validateCollapse(noGb, 0, V, '2M'))).toBeNull();
    expect(errnoArg(validateCollapse(noPse, 0, V, '2M'))).toBe('EINVAL size');
    expect(errnoArg(validateCollapse(config, 0, V, '4K' as '2M'))).toBe('EINVAL size');
  });

  it('access: cpu, root, vpn, kind, mode', () => {
    expect(errnoArg(validateAccess(config, 1, 0, V, 'x', 'user'))).toBeNull();
    expect(errnoArg(validateAccess(config, config.cpus, 0, V, 'r', 'kernel'))).toBe('EINVAL cpu');
    expect(errnoArg(validateAccess(config, -1, 0, V, 'r', 'kernel'))).toBe('EINVAL cpu');
    expect(errnoArg(validateAccess(config, 0, 0, V, 'q' as 'r', 'kernel'))).toBe('EINVAL kind');
    expect(errnoArg(validateAccess(config, 0, 0, V, 'r', 'root' as 'user'))).toBe('EINVAL mode');
  });
});

describe('direct-map geometry', () => {
  it('directMapVpn and isDirectMapVpn bound the direct map by the machine\'s memory', () => {
    expect(directMapVpn(4, 7)).toBe(L.pageOffset + 7);
    expect(isDirectMapVpn(config, directMapVpn(4, config.frames - 1))).toBe(true);
    expect(isDirectMapVpn(config, directMapVpn(4, config.frames))).toBe(false);
  });

  it('follows the paging mode: __PAGE_OFFSET is 0xff11000000000000 with 5 levels (mm.rst)', () => {
    const five: SystemConfig = { ...config, levels: 5 };
    expect(directMapVpn(5, 7)).toBe(hexToVpn('0xff11000000000000') + 7);
    expect(isDirectMapVpn(five, directMapVpn(5, 7))).toBe(true);
    expect(isDirectMapVpn(five, directMapVpn(4, 7))).toBe(false);
    expect(kernelLayout(5).vmallocStart).toBe(hexToVpn('0xffa0000000000000'));
    expect(kernelLayout(5).kernelText).toBe(L.kernelText);
  });
});

describe('radix footprint (the ENOMEM definition)', () => {
  it('counts one table per distinct region at each level, plus the pgd', () => {
    const leaf = (vpn: number, size: '4K' | '2M' | '1G'): Leaf => ({ vpn, pfn: 0, size, prot: PAGE_KERNEL });
    expect(tableFootprint(4, [])).toBe(1);
    expect(tableFootprint(4, [leaf(V, '1G')])).toBe(2); // + pud
    expect(tableFootprint(4, [leaf(V, '2M'), leaf(V + M, '2M')])).toBe(3); // + pud, pmd
    expect(tableFootprint(4, [leaf(V, '4K'), leaf(V + 1, '4K'), leaf(V + M, '4K')])).toBe(5); // + pud, pmd, 2 pte
    expect(tableFootprint(5, [leaf(V, '4K')])).toBe(5); // + p4d, pud, pmd, pte
    expect(tableFootprint(4, [leaf(V, '4K'), leaf(V + 512 * G, '1G')])).toBe(5); // next pgd entry: pud, pmd, pte + a second pud
  });
});
