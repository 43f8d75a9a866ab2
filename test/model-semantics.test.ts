/**
 * The model's own semantics, piece by piece: the greedy page-size choice, ProtChange and
 * the direct-map alias, the split rule and collapse refusals, TLB and obligation
 * bookkeeping, the access check and frame runs in canonical form.
 */
import { describe, expect, it } from 'vitest';
import { PAGES, X86_64_LAYOUT_4LEVEL as L } from '../spec/address.ts';
import { directMapVpn } from '../spec/contracts/index.ts';
import {
  PAGE_KERNEL, PAGE_KERNEL_EXEC, PAGE_KERNEL_RO, PAGE_KERNEL_ROX, type FrameRun, type Leaf, type Prot, type SystemConfig,
  type TlbEntry,
} from '../spec/state.ts';
import { normalizeFrames, setNoDirectMap } from '../model/frames.ts';
import { collapseBlock, collapseRefusal, splitLeaf } from '../model/hugepage.ts';
import { placeLeaves } from '../model/placement.ts';
import { aliasChange, aliasRanges, applyProtChange, protChanges } from '../model/protect.ts';
import { accessAllowed, addFlushObligation, compareTlbEntries, dischargeFlushRange, flushTlbRange, tlbLookup } from '../model/tlb.ts';
import { KERNEL_CONFIG as config, NO_GB_CONFIG as noGb, NO_PSE_CONFIG as noPse, USER_RO } from './states.ts';

const V = L.vmallocStart; // 1G-aligned
const G = PAGES['1G'];
const M = PAGES['2M'];

describe('map page-size choice', () => {
  const sizes = (c: SystemConfig, vpn: number, pfn: number, pages: number, maxPage?: '4K' | '2M' | '1G') =>
    placeLeaves(c, vpn, pfn, pages, maxPage).map((p) => p.size);

  it('takes the largest size both addresses are aligned to, greedily', () => {
    const placed = placeLeaves(config, V, 0, G + M + 3);
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
      { vpn: directMapVpn(4, 50), pages: 1 },
      { vpn: directMapVpn(4, 100), pages: 2 },
      { vpn: directMapVpn(4, 4 * M), pages: 10 }, // clipped to the range
    ]);
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

describe('frame runs', () => {
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

});
