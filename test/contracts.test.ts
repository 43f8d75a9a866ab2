/**
 * The shared contract validators and helpers of spec/contracts: each precondition with
 * its errno and argument, the order in which they are checked, the greedy page-size
 * choice, ProtChange semantics, the split rule, collapse refusals, TLB and obligation
 * bookkeeping, and the radix footprint.
 */
import { describe, expect, it } from 'vitest';
import { PAGES, VPN_LIMIT, X86_64_LAYOUT_4LEVEL as L, lowerHalfEnd, upperHalfStart } from '../spec/address.ts';
import {
  accessAllowed, addFlushObligation, aliasChange, aliasRanges, applyProtChange, checkTablePool, chooseLeafSizes,
  collapseBlock, collapseRefusal, compareTlbEntries, directMapVpn, dischargeFlushRange, flushTlbRange, isDirectMapVpn,
  normalizeFrames, protChanges, setNoDirectMap, splitLeaf, tlbLookup, validateAccess, validateCollapse, validateFlush,
  validateMap, validateProtect, validateSetDirectMap, validateSplit, validateTranslate, validateUnmap,
} from '../spec/contracts/index.ts';
import type { PtError } from '../spec/errors.ts';
import { tableFootprint } from '../spec/footprint.ts';
import { kernelScenario } from '../spec/scenario.ts';
import {
  PAGE_KERNEL, PAGE_KERNEL_EXEC, PAGE_KERNEL_RO, PAGE_KERNEL_ROX, type FrameRun, type Leaf, type Prot, type SystemConfig,
  type TlbEntry,
} from '../spec/state.ts';

const config = kernelScenario().config;
const noPse: SystemConfig = { ...config, features: { pse: false, gbpages: false } };
const noGb: SystemConfig = { ...config, features: { pse: true, gbpages: false } };
const V = L.vmallocStart; // 1G-aligned
const G = PAGES['1G'];
const M = PAGES['2M'];

const errnoArg = (e: PtError | null): string | null => (e === null ? null : `${e.errno} ${e.arg}`);
const USER_RO: Prot = { ...PAGE_KERNEL_RO, user: true };

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

describe('map page-size choice', () => {
  const sizes = (c: SystemConfig, vpn: number, pfn: number, pages: number, maxPage?: '4K' | '2M' | '1G') =>
    chooseLeafSizes(c, vpn, pfn, pages, maxPage).map((p) => p.size);

  it('takes the largest size both addresses are aligned to, greedily', () => {
    const placed = chooseLeafSizes(config, V, 0, G + M + 3);
    expect(placed).toEqual([
      { vpn: V, pfn: 0, size: '1G' },
      { vpn: V + G, pfn: G, size: '2M' },
      { vpn: V + G + M, pfn: G + M, size: '4K' },
      { vpn: V + G + M + 1, pfn: G + M + 1, size: '4K' },
      { vpn: V + G + M + 2, pfn: G + M + 2, size: '4K' },
    ]);
  });

  it('starts small and grows at the first aligned position', () => {
    const s = sizes(config, V - 2, M - 2, 2 + M + 1);
    expect(s).toEqual(['4K', '4K', '2M', '4K']);
  });

  it('needs the pfn aligned as well as the vpn', () => {
    expect(new Set(sizes(config, V, 1, 2 * M))).toEqual(new Set(['4K']));
    expect(sizes(config, V, M, G)).toEqual(Array(512).fill('2M'));
  });

  it('is capped by maxPage and by the CPU features', () => {
    expect(sizes(config, V, 0, G, '2M')).toEqual(Array(512).fill('2M'));
    expect(sizes(config, V, 0, M, '4K')).toHaveLength(512);
    expect(sizes(noGb, V, 0, G)).toEqual(Array(512).fill('2M'));
    expect(new Set(sizes(noPse, V, 0, 2 * M))).toEqual(new Set(['4K']));
  });

  it('does not use a size larger than what remains', () => {
    expect(sizes(config, V, 0, M - 1)).toHaveLength(M - 1);
  });
});

describe('ProtChange', () => {
  it('replaces only the fields present', () => {
    expect(applyProtChange(PAGE_KERNEL, { write: false })).toEqual(PAGE_KERNEL_RO);
    expect(applyProtChange(PAGE_KERNEL_RO, { exec: true })).toEqual(PAGE_KERNEL_ROX);
    expect(applyProtChange(PAGE_KERNEL_ROX, {})).toEqual(PAGE_KERNEL_ROX);
    expect(applyProtChange(PAGE_KERNEL, { cache: 'WC', global: false })).toEqual({ ...PAGE_KERNEL, cache: 'WC', global: false });
  });

  it('exec sets execUser only where the page is user-accessible (one NX bit)', () => {
    expect(applyProtChange(USER_RO, { exec: true })).toEqual({ ...USER_RO, execKernel: true, execUser: true });
    expect(applyProtChange(PAGE_KERNEL_RO, { exec: true }).execUser).toBe(false);
    expect(applyProtChange({ ...USER_RO, execKernel: true, execUser: true }, { exec: false })).toEqual(USER_RO);
  });

  it('knows when nothing changes', () => {
    expect(protChanges(PAGE_KERNEL, { write: true, exec: false, cache: 'WB' })).toBe(false);
    expect(protChanges(PAGE_KERNEL, { global: false })).toBe(true);
  });

  it('the alias gets write and cache, never exec or global (cpa_process_alias)', () => {
    expect(aliasChange({ write: false, exec: true, global: false, cache: 'UC' })).toEqual({ write: false, cache: 'UC' });
    expect(aliasChange({ exec: true })).toEqual({});
  });

  it('alias ranges: the direct-map pages of the frames mapped outside the direct map, merged', () => {
    const leaves: Leaf[] = [
      { vpn: L.pageOffset + 7, pfn: 7, size: '4K', prot: PAGE_KERNEL }, // inside the direct map: no alias
      { vpn: V, pfn: 100, size: '4K', prot: PAGE_KERNEL },
      { vpn: V + 1, pfn: 101, size: '4K', prot: PAGE_KERNEL },
      { vpn: V + 2, pfn: 50, size: '4K', prot: PAGE_KERNEL },
      { vpn: V + M, pfn: 4 * M, size: '2M', prot: PAGE_KERNEL },
    ];
    expect(aliasRanges(config, leaves, L.pageOffset, V + M + 10 - L.pageOffset)).toEqual([
      { vpn: directMapVpn(50), pages: 1 },
      { vpn: directMapVpn(100), pages: 2 },
      { vpn: directMapVpn(4 * M), pages: 10 }, // clipped to the range
    ]);
    expect(isDirectMapVpn(config, directMapVpn(config.frames - 1))).toBe(true);
    expect(isDirectMapVpn(config, directMapVpn(config.frames))).toBe(false);
  });
});

describe('split and collapse rules', () => {
  const big: Leaf = { vpn: V, pfn: G, size: '1G', prot: { ...PAGE_KERNEL_RO, cache: 'WC', global: false } };

  it('split keeps every attribute and makes frames contiguous', () => {
    const pieces = splitLeaf(big);
    expect(pieces).toHaveLength(512);
    pieces.forEach((p, i) => expect(p).toEqual({ vpn: V + i * M, pfn: G + i * M, size: '2M', prot: big.prot }));
    expect(splitLeaf(pieces[3]!)[511]).toEqual({ vpn: V + 3 * M + 511, pfn: G + 3 * M + 511, size: '4K', prot: big.prot });
    const small: Leaf = { vpn: V, pfn: 0, size: '4K', prot: PAGE_KERNEL };
    expect(splitLeaf(small)).toEqual([small]);
  });

  it('collapse needs 512 uniform, contiguous leaves from an aligned frame', () => {
    const pieces = splitLeaf({ ...big, size: '2M', pfn: M });
    expect(collapseBlock(V + 17, '2M')).toEqual({ vpn: V, pages: M });
    expect(collapseRefusal(pieces, '2M')).toBeNull();
    expect(collapseRefusal(pieces.slice(1), '2M')).toMatch(/exactly 512/);
    expect(collapseRefusal([big], '1G')).toMatch(/exactly 512/);
    const changed = pieces.map((p, i) => (i === 9 ? { ...p, prot: PAGE_KERNEL_RO } : p));
    expect(collapseRefusal(changed, '2M')).toMatch(/leaf 9 has different attributes/);
    const gap = pieces.map((p, i) => (i === 300 ? { ...p, pfn: p.pfn + 1 } : p));
    expect(collapseRefusal(gap, '2M')).toMatch(/leaf 300 does not continue/);
    const shifted = pieces.map((p) => ({ ...p, pfn: p.pfn + 1 }));
    expect(collapseRefusal(shifted, '2M')).toMatch(/not 2M-aligned/);
  });
});

describe('TLB and flush obligations', () => {
  const leaf = (vpn: number, size: '4K' | '2M'): Leaf => ({ vpn, pfn: 0, size, prot: PAGE_KERNEL });
  const tlb: TlbEntry[] = [
    { cpu: 0, root: 0, leaf: leaf(V, '2M') },
    { cpu: 0, root: 0, leaf: leaf(V + 1, '4K') },
    { cpu: 1, root: 0, leaf: leaf(V + M, '4K') },
  ];

  it('a flush removes every entry whose leaf intersects the range, on every CPU', () => {
    expect(flushTlbRange(tlb, V + 1, 1)).toEqual([tlb[2]]);
    expect(flushTlbRange(tlb, V + M, 1)).toEqual([tlb[0], tlb[1]]);
    expect(flushTlbRange(tlb, V - 5, 5)).toEqual(tlb);
  });

  it('lookup takes the smallest entry covering the address on that CPU', () => {
    expect(tlbLookup(tlb, 0, 0, V + 1)).toBe(tlb[1]);
    expect(tlbLookup(tlb, 0, 0, V + 2)).toBe(tlb[0]);
    expect(tlbLookup(tlb, 1, 0, V + 2)).toBeUndefined();
    expect([...tlb].reverse().sort(compareTlbEntries)).toEqual(tlb);
  });

  it('obligations merge (joining reasons) and flushing a sub-range removes just that part', () => {
    let ob = addFlushObligation([], 100, 10, 'setDirectMapInvalid');
    ob = addFlushObligation(ob, 200, 5, 'setDirectMapInvalid');
    ob = addFlushObligation(ob, 110, 2, 'setDirectMapDefault'); // adjacent: merged
    expect(ob).toEqual([
      { vpn: 100, pages: 12, reason: 'setDirectMapDefault+setDirectMapInvalid' },
      { vpn: 200, pages: 5, reason: 'setDirectMapInvalid' },
    ]);
    expect(dischargeFlushRange(ob, 104, 100)).toEqual([
      { vpn: 100, pages: 4, reason: 'setDirectMapDefault+setDirectMapInvalid' },
      { vpn: 204, pages: 1, reason: 'setDirectMapInvalid' },
    ]);
    expect(dischargeFlushRange(ob, 0, 1000)).toEqual([]);
  });
});

describe('access permission (SMEP, CR0.WP)', () => {
  it('matches the x86 rules', () => {
    expect(accessAllowed(PAGE_KERNEL_RO, 'r', 'kernel')).toBe(true);
    expect(accessAllowed(PAGE_KERNEL_RO, 'w', 'kernel')).toBe(false);
    expect(accessAllowed(PAGE_KERNEL, 'w', 'kernel')).toBe(true);
    expect(accessAllowed(PAGE_KERNEL, 'r', 'user')).toBe(false);
    expect(accessAllowed(PAGE_KERNEL, 'x', 'kernel')).toBe(false);
    expect(accessAllowed(PAGE_KERNEL_EXEC, 'x', 'kernel')).toBe(true);
    const userX: Prot = { ...USER_RO, execKernel: true, execUser: true };
    expect(accessAllowed(userX, 'x', 'kernel')).toBe(false); // SMEP
    expect(accessAllowed(userX, 'x', 'user')).toBe(true);
    expect(accessAllowed(userX, 'w', 'user')).toBe(false);
    expect(accessAllowed({ ...userX, write: true }, 'w', 'user')).toBe(true);
  });
});

describe('frames and footprint', () => {
  const runs: FrameRun[] = [
    { pfn: 0, count: 10, use: 'data', sensitive: false, noDirectMap: false },
    { pfn: 10, count: 10, use: 'data', sensitive: false, noDirectMap: false },
    { pfn: 20, count: 5, use: 'user', sensitive: true, noDirectMap: false },
  ];

  it('frame runs are merged, and noDirectMap splits and re-merges them', () => {
    expect(normalizeFrames(runs)).toEqual([{ ...runs[0], count: 20 }, runs[2]]);
    const cut = setNoDirectMap(normalizeFrames(runs), 5, 17, true);
    expect(cut).toEqual([
      { ...runs[0], count: 5 },
      { ...runs[0], pfn: 5, count: 15, noDirectMap: true },
      { ...runs[2], count: 2, noDirectMap: true },
      { ...runs[2], pfn: 22, count: 3 },
    ]);
    expect(setNoDirectMap(cut, 0, 25, false)).toEqual(normalizeFrames(runs));
  });

  it('counts one table per distinct region at each level, plus the pgd', () => {
    const leaf = (vpn: number, size: '4K' | '2M' | '1G'): Leaf => ({ vpn, pfn: 0, size, prot: PAGE_KERNEL });
    expect(tableFootprint(4, [])).toBe(1);
    expect(tableFootprint(4, [leaf(V, '1G')])).toBe(2); // + pud
    expect(tableFootprint(4, [leaf(V, '2M'), leaf(V + M, '2M')])).toBe(3); // + pud, pmd
    expect(tableFootprint(4, [leaf(V, '4K'), leaf(V + 1, '4K'), leaf(V + M, '4K')])).toBe(5); // + pud, pmd, 2 pte
    expect(tableFootprint(5, [leaf(V, '4K')])).toBe(5); // + p4d, pud, pmd, pte
    expect(tableFootprint(4, [leaf(V, '4K'), leaf(V + 512 * G, '1G')])).toBe(5); // next pgd entry: pud, pmd, pte + a second pud
    expect(checkTablePool(config, config.tablePool.count)).toBeNull();
    expect(errnoArg(checkTablePool(config, config.tablePool.count + 1))).toBe('ENOMEM tablePool');
  });
});
