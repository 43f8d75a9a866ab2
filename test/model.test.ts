/**
 * The reference model, operation by operation: every precondition with its errno and
 * argument, every postcondition on the abstract state, and the policy and memory
 * refusals, each leaving the state exactly as it was.
 */
import { describe, expect, it } from 'vitest';
import { PAGES, X86_64_LAYOUT_4LEVEL as L, hexToVpn } from '../spec/address.ts';
import { applyCommand } from '../spec/commands.ts';
import type { Errno, PtError, Result } from '../spec/errors.ts';
import { tableFootprint } from '../spec/footprint.ts';
import { checkAll } from '../checker/index.ts';
import { KERNEL_IMAGE as K, TABLE_POOL, kernelScenario } from '../spec/scenario.ts';
import {
  PAGE_KERNEL, PAGE_KERNEL_EXEC, PAGE_KERNEL_RO, PAGE_KERNEL_ROX, protEquals, type Leaf, type Prot, type SystemConfig,
} from '../spec/state.ts';
import type { PageTableSystem } from '../spec/system.ts';
import { createModel } from '../model/index.ts';

const G = PAGES['1G'];
const M = PAGES['2M'];
const PO = L.pageOffset;
/** Free vmalloc space, 1G-aligned, far from the boot mappings. */
const V = L.vmallocStart + 4 * G;
/** A data frame under one of the direct map's 1G leaves. */
const F = G + 37 * M + 5;

function booted(overrides: Partial<SystemConfig> = {}): PageTableSystem {
  const s = kernelScenario(overrides);
  const m = createModel(s);
  for (const c of s.boot) expect(applyCommand(m, c), JSON.stringify(c)).toEqual({ ok: true, value: undefined });
  return m;
}

const leavesOf = (m: PageTableSystem): readonly Leaf[] => m.abstract().roots[0]!.leaves;
const leafAt = (m: PageTableSystem, vpn: number): Leaf | undefined => {
  const t = m.translate(0, vpn);
  return t.ok ? t.value.leaf : undefined;
};
const inRange = (m: PageTableSystem, vpn: number, pages: number): Leaf[] => leavesOf(m).filter((l) => l.vpn < vpn + pages && l.vpn + PAGES[l.size] > vpn);

/** Runs `op`, expects it to fail with errno (and arg), and the abstract state to be exactly as before. */
function refused(m: PageTableSystem, op: () => Result<unknown>, errno: Errno, arg?: string): PtError {
  const before = structuredClone(m.abstract());
  const r = op();
  if (r.ok) throw new Error(`expected ${errno}, got ok`);
  expect(r.error.errno, r.error.message).toBe(errno);
  if (arg !== undefined) expect(r.error.arg, r.error.message).toBe(arg);
  expect(m.abstract()).toEqual(before);
  return r.error;
}

function succeeds(r: Result<unknown>): void {
  expect(r.ok ? 'ok' : r.error.message).toBe('ok');
}

describe('boot', () => {
  it('runs every boot command of the kernel scenario and reaches a policy-clean state', () => {
    const m = booted();
    const a = m.abstract();
    const leaves = a.roots[0]!.leaves;
    expect(leaves.filter((l) => l.size === '1G')).toHaveLength(3);
    for (let i = 1; i < leaves.length; i++) expect(leaves[i]!.vpn).toBeGreaterThanOrEqual(leaves[i - 1]!.vpn + PAGES[leaves[i - 1]!.size]);
    expect(a.tablesInUse).toBe(tableFootprint(4, leaves));
    expect(a.tablesInUse).toBe(11); // pgd; pud ×4; pmd ×4 (direct map, image, vmalloc, cea); pte ×2
    expect(checkAll(a)).toEqual([]);
    expect(a.tlb).toEqual([]);
    expect(a.pendingFlush).toEqual([]);
    expect(a.pendingTableFrees).toBe(0);
    expect(leafAt(m, L.kernelText + K.textPfn)).toEqual({ vpn: L.kernelText + K.textPfn, pfn: K.textPfn, size: '2M', prot: PAGE_KERNEL_ROX });
  });

  it('boots with 5-level paging at the LA57 layout: a p4d table per used pgd entry', () => {
    const a = booted({ levels: 5 }).abstract();
    // The direct map (0xff11…), vmalloc (0xffa0…) and the top (cpu_entry_area, the image)
    // sit under three pgd entries: 3 p4d tables on top of the 4-level count of 11.
    expect(a.roots[0]!.leaves[0]!.vpn).toBe(hexToVpn('0xff11000000000000'));
    expect(a.tablesInUse).toBe(14);
    expect(checkAll(a)).toEqual([]);
  });

  it('merges adjacent identical frame runs in the abstract state', () => {
    const frames = createModel(kernelScenario()).abstract().frames;
    expect(frames.reduce((n, r) => n + r.count, 0)).toBe(kernelScenario().config.frames);
    expect(frames).toHaveLength(8);
  });
});

describe('map', () => {
  it('chooses 1G, 2M and 4K leaves by alignment and maxPage', () => {
    const m = booted();
    succeeds(m.map(0, V, G, G + M + 2, PAGE_KERNEL_RO));
    expect(inRange(m, V, G + M + 2).map((l) => l.size)).toEqual(['1G', '2M', '4K', '4K']);
    succeeds(m.map(0, V + 2 * G, G, M + 1, PAGE_KERNEL_RO, { maxPage: '4K' }));
    expect(inRange(m, V + 2 * G, M + 1).every((l) => l.size === '4K' && protEquals(l.prot, PAGE_KERNEL_RO))).toBe(true);
    expect(inRange(m, V + 2 * G, M + 1)).toHaveLength(M + 1);
    expect(leafAt(m, V + 2 * G + 7)).toEqual({ vpn: V + 2 * G + 7, pfn: G + 7, size: '4K', prot: PAGE_KERNEL_RO });
  });

  it('uses only 4K leaves without PSE, and 2M without GB pages', () => {
    const setup = (features: SystemConfig['features']) => createModel(kernelScenario({ features }));
    const noPse = setup({ pse: false, gbpages: false });
    succeeds(noPse.map(0, V, G, M, PAGE_KERNEL));
    expect(new Set(leavesOf(noPse).map((l) => l.size))).toEqual(new Set(['4K']));
    const noGb = setup({ pse: true, gbpages: false });
    succeeds(noGb.map(0, V, G, G, PAGE_KERNEL));
    expect(leavesOf(noGb)).toHaveLength(512);
  });

  it('EINVAL for bad arguments, EEXIST on any overlap; nothing changes', () => {
    const m = booted();
    refused(m, () => m.map(1, V, 0, 1, PAGE_KERNEL), 'EINVAL', 'root');
    refused(m, () => m.map(0, 0x400, 0, 1, PAGE_KERNEL), 'EINVAL', 'vpn');
    refused(m, () => m.map(0, V, 0, 0, PAGE_KERNEL), 'EINVAL', 'pages');
    refused(m, () => m.map(0, V, m.config.frames, 1, PAGE_KERNEL), 'EINVAL', 'pfn');
    refused(m, () => m.map(0, V, 0, 1, { ...PAGE_KERNEL, execUser: true }), 'EINVAL', 'prot');
    // The range's last page overlaps the 4K vmalloc area of the boot.
    refused(m, () => m.map(0, L.vmallocStart - 8, F, 10, PAGE_KERNEL), 'EEXIST', 'vpn');
    refused(m, () => m.map(0, PO + 5, 5, 1, PAGE_KERNEL), 'EEXIST', 'vpn');
  });
});

describe('unmap', () => {
  it('splits a 1G leaf to 2M and 4K at an unaligned edge, keeping attributes exactly', () => {
    const m = booted();
    const big = leafAt(m, PO + F)!;
    expect(big.size).toBe('1G');
    succeeds(m.unmap(0, PO + F, 3));
    const around = inRange(m, big.vpn, G);
    expect(around).toHaveLength(G / M - 1 + M - 3);
    for (const l of around) {
      expect(l.prot).toEqual(big.prot);
      expect(l.pfn - big.pfn).toBe(l.vpn - big.vpn);
      expect(l.size).toBe(l.vpn >= PO + F - 5 && l.vpn < PO + F - 5 + M ? '4K' : '2M');
    }
    expect(leafAt(m, PO + F + 2)).toBeUndefined();
    expect(leafAt(m, PO + F + 3)?.size).toBe('4K');
    expect(m.abstract().tablesInUse).toBe(11 + 2); // a pmd and a pte table
  });

  it('removes whatever is mapped in a partly mapped range; ENOENT only when nothing is', () => {
    const m = booted();
    succeeds(m.unmap(0, L.vmallocStart, 10));
    expect(inRange(m, L.vmallocStart, 66).map((l) => l.vpn)).toEqual(Array.from({ length: 55 }, (_, i) => L.vmallocStart + 10 + i));
    refused(m, () => m.unmap(0, L.vmallocStart, 10), 'ENOENT', 'vpn');
    refused(m, () => m.unmap(7, L.vmallocStart, 10), 'EINVAL', 'root');
    refused(m, () => m.unmap(0, L.vmallocStart, -1), 'EINVAL', 'pages');
  });

  it('frees emptied tables', () => {
    const m = booted();
    succeeds(m.unmap(0, L.vmallocStart, 65));
    expect(m.abstract().tablesInUse).toBe(10);
  });
});

describe('protect', () => {
  it('splits a 1G leaf only around the pages whose prot changes', () => {
    const m = booted();
    const big = leafAt(m, PO + F)!;
    succeeds(m.protect(PO + F, 1, { write: false, cache: 'WC' }));
    expect(leafAt(m, PO + F)).toEqual({ vpn: PO + F, pfn: F, size: '4K', prot: { ...PAGE_KERNEL_RO, cache: 'WC' } });
    const rest = inRange(m, big.vpn, G).filter((l) => l.vpn !== PO + F);
    expect(rest).toHaveLength(511 + 511);
    expect(rest.every((l) => protEquals(l.prot, big.prot) && l.pfn - big.pfn === l.vpn - big.vpn)).toBe(true);
  });

  it('leaves a partly covered leaf whole when its prot does not change', () => {
    const m = booted();
    const before = leavesOf(m);
    succeeds(m.protect(PO + F, 3, { write: true, exec: false, cache: 'WB' }));
    expect(leavesOf(m)).toEqual(before);
    succeeds(m.protect(PO + K.textPfn + 1, 1, { write: false }));
    expect(leavesOf(m)).toEqual(before);
  });

  it('changes whole leaves in place without splitting or collapsing', () => {
    const m = booted();
    succeeds(m.protect(PO, 2 * M, { global: false }));
    expect(inRange(m, PO, 2 * M)).toEqual([
      { vpn: PO, pfn: 0, size: '2M', prot: { ...PAGE_KERNEL, global: false } },
      { vpn: PO + M, pfn: M, size: '2M', prot: { ...PAGE_KERNEL, global: false } },
    ]);
  });

  it('ENOENT if any page is unmapped, EINVAL for a bad change', () => {
    const m = booted();
    refused(m, () => m.protect(L.vmallocStart, 2, { write: false }), 'ENOENT', 'vpn');
    refused(m, () => m.protect(PO, 1, { cache: 'XX' as 'WB' }), 'EINVAL', 'change');
    refused(m, () => m.protect(3, 1, {}), 'EINVAL', 'vpn');
  });

  it('with alias, write and cache propagate to the direct map; exec does not', () => {
    const m = booted();
    succeeds(m.map(0, V + 3, F, 2, PAGE_KERNEL));
    succeeds(m.protect(V + 3, 1, { write: false, cache: 'UC-' }, { alias: true }));
    expect(leafAt(m, PO + F)).toEqual({ vpn: PO + F, pfn: F, size: '4K', prot: { ...PAGE_KERNEL_RO, cache: 'UC-' } });
    expect(leafAt(m, PO + F + 1)?.prot).toEqual(PAGE_KERNEL); // the second frame was not in the range
    succeeds(m.protect(V + 3, 1, { exec: true }, { alias: true }));
    expect(leafAt(m, V + 3)?.prot).toEqual({ ...PAGE_KERNEL_ROX, cache: 'UC-' });
    expect(leafAt(m, PO + F)?.prot).toEqual({ ...PAGE_KERNEL_RO, cache: 'UC-' });
  });

  it('without alias, the direct map is left alone', () => {
    const m = booted();
    succeeds(m.map(0, V, F, 1, PAGE_KERNEL));
    succeeds(m.protect(V, 1, { write: false }));
    expect(leafAt(m, PO + F)?.size).toBe('1G');
  });

  it('with alias, skips frames whose direct-map page is gone', () => {
    const m = booted();
    succeeds(m.map(0, V, F, 2, PAGE_KERNEL));
    succeeds(m.unmap(0, PO + F, 1));
    succeeds(m.protect(V, 2, { write: false }, { alias: true }));
    expect(leafAt(m, PO + F)).toBeUndefined();
    expect(leafAt(m, PO + F + 1)?.prot).toEqual(PAGE_KERNEL_RO);
  });
});

describe('split and collapse', () => {
  it('split makes 512 leaves of the next size with the same attributes; collapse undoes it', () => {
    const m = booted();
    const before = leavesOf(m);
    succeeds(m.split(0, PO + F));
    const pieces = inRange(m, PO + G, G);
    expect(pieces).toHaveLength(512);
    expect(pieces.every((l, i) => l.size === '2M' && l.pfn === G + i * M && protEquals(l.prot, PAGE_KERNEL))).toBe(true);
    succeeds(m.split(0, PO + F));
    expect(inRange(m, PO + G, G)).toHaveLength(511 + 512);
    succeeds(m.collapse(0, PO + F, '2M'));
    succeeds(m.collapse(0, PO + G + 3, '1G'));
    expect(leavesOf(m)).toEqual(before);
  });

  it('split: ENOENT when not mapped, EINVAL on a 4K leaf', () => {
    const m = booted();
    refused(m, () => m.split(0, L.vmallocStart), 'ENOENT', 'vpn');
    refused(m, () => m.split(0, L.vmallocStart + 1), 'EINVAL', 'vpn');
    refused(m, () => m.split(1, PO), 'EINVAL', 'root');
  });

  it('collapse refuses each way the block is not collapsible', () => {
    const m = booted();
    refused(m, () => m.collapse(0, PO, '2M'), 'EINVAL', 'vpn'); // already one 2M leaf
    refused(m, () => m.collapse(0, PO, '1G'), 'EINVAL', 'vpn'); // 2M leaves with RW and RO prots
    refused(m, () => m.collapse(0, L.vmallocStart + 5, '2M'), 'ENOENT', 'vpn'); // page 0 unmapped
    refused(m, () => m.collapse(0, PO, '4K' as '2M'), 'EINVAL', 'size');
    // 512 4K leaves from an unaligned frame.
    succeeds(m.map(0, V, F - 4, M, PAGE_KERNEL, { maxPage: '4K' }));
    refused(m, () => m.collapse(0, V, '2M'), 'EINVAL', 'vpn');
    // Two halves whose frames do not continue.
    succeeds(m.map(0, V + M, G, 256, PAGE_KERNEL));
    succeeds(m.map(0, V + M + 256, G + M + 256, 256, PAGE_KERNEL));
    refused(m, () => m.collapse(0, V + M, '2M'), 'EINVAL', 'vpn');
    // One page with another prot (its direct-map alias follows, and no other vmap shares its frames: one memory type per frame, T5).
    succeeds(m.map(0, V + 2 * M, G + 2 * M, M, PAGE_KERNEL, { maxPage: '4K' }));
    succeeds(m.protect(V + 2 * M + 100, 1, { cache: 'WT' }, { alias: true }));
    refused(m, () => m.collapse(0, V + 2 * M, '2M'), 'EINVAL', 'vpn');
    succeeds(m.protect(V + 2 * M + 100, 1, { cache: 'WB' }, { alias: true }));
    succeeds(m.collapse(0, V + 2 * M + 511, '2M'));
  });

  it('collapse: EINVAL size when the CPU lacks it', () => {
    const m = createModel(kernelScenario({ features: { pse: true, gbpages: false } }));
    refused(m, () => m.collapse(0, PO, '1G'), 'EINVAL', 'size');
    succeeds(m.map(0, V, 0, M, PAGE_KERNEL, { maxPage: '4K' }));
    succeeds(m.collapse(0, V, '2M'));
    expect(leavesOf(m)).toEqual([{ vpn: V, pfn: 0, size: '2M', prot: PAGE_KERNEL }]);
  });
});

describe('set_direct_map', () => {
  it('invalid without flush leaves the obligation and the TLB entry; flush discharges both', () => {
    const m = booted();
    const big = leafAt(m, PO + F)!;
    expect(m.access(1, 0, PO + F, 'r', 'kernel')).toEqual({ ok: true, value: { fault: false, translation: { leaf: big, pfn: F }, fromTlb: false } });
    succeeds(m.setDirectMapInvalid(F, 2, { flush: false }));
    const a = m.abstract();
    expect(leafAt(m, PO + F)).toBeUndefined();
    expect(leafAt(m, PO + F + 2)).toEqual({ vpn: PO + F + 2, pfn: F + 2, size: '4K', prot: PAGE_KERNEL });
    expect(a.pendingFlush).toEqual([{ vpn: PO + F, pages: 2, reason: 'setDirectMapInvalid' }]);
    expect(a.tlb).toEqual([{ cpu: 1, root: 0, leaf: big }]);
    expect(a.frames.filter((r) => r.noDirectMap)).toEqual([{ pfn: F, count: 2, use: 'data', sensitive: false, noDirectMap: true }]);
    // The stale entry still translates: exactly what the missing flush means.
    expect(m.access(1, 0, PO + F, 'w', 'kernel')).toEqual({ ok: true, value: { fault: false, translation: { leaf: big, pfn: F }, fromTlb: true } });
    expect(m.access(0, 0, PO + F, 'r', 'kernel')).toEqual({ ok: true, value: { fault: 'not-present' } });
    succeeds(m.flush(PO + F + 1, 1));
    expect(m.abstract().pendingFlush).toEqual([{ vpn: PO + F, pages: 1, reason: 'setDirectMapInvalid' }]);
    expect(m.abstract().tlb).toEqual([]);
    refused(m, () => m.setDirectMapInvalid(F, 1, { flush: true }), 'ENOENT', 'pfn');
  });

  it('default re-maps 4K PAGE_KERNEL pages and clears noDirectMap; with flush no debt remains', () => {
    const m = booted();
    const frames = m.abstract().frames;
    succeeds(m.setDirectMapInvalid(F, 3, { flush: true }));
    expect(m.abstract().pendingFlush).toEqual([]);
    refused(m, () => m.setDirectMapDefault(F + 2, 2, { flush: true }), 'EEXIST', 'pfn');
    succeeds(m.setDirectMapDefault(F, 3, { flush: false }));
    expect(inRange(m, PO + F, 3)).toEqual([0, 1, 2].map((i) => ({ vpn: PO + F + i, pfn: F + i, size: '4K', prot: PAGE_KERNEL })));
    expect(m.abstract().frames).toEqual(frames);
    expect(m.abstract().pendingFlush).toEqual([{ vpn: PO + F, pages: 3, reason: 'setDirectMapDefault' }]);
    succeeds(m.flushAll());
    expect(m.abstract().pendingFlush).toEqual([]);
  });

  it('a _noflush removal leaves the tables it empties pending free until a flush meets them', () => {
    const m = booted({ tablePool: { pfn: TABLE_POOL.pfn, count: 13 } });
    const B = F - (F % M); // a 2M-aligned frame under a 1G direct-map leaf
    succeeds(m.setDirectMapInvalid(B, 1, { flush: true })); // splits 1G → 2M → 4K: a pmd and a pte table
    expect(m.abstract()).toMatchObject({ tablesInUse: 13, pendingTableFrees: 0 });
    succeeds(m.setDirectMapInvalid(B + 1, M - 1, { flush: false })); // empties the pte table
    expect(m.abstract()).toMatchObject({ tablesInUse: 13, pendingTableFrees: 1 });
    // The pending table is not reusable: the pool (13) is full until a flush releases it.
    refused(m, () => m.unmap(0, PO + B + M + 1, 1), 'ENOMEM', 'tablePool');
    succeeds(m.flush(PO + B + M - 1, 1)); // any flush meeting the table's 2M span
    expect(m.abstract()).toMatchObject({ tablesInUse: 12, pendingTableFrees: 0 });
    succeeds(m.unmap(0, PO + B + M + 1, 1));
    expect(m.abstract()).toMatchObject({ tablesInUse: 13, pendingTableFrees: 0 });
  });

  it('flushAll releases every pending table; a flushing removal leaves none', () => {
    const m = booted();
    const B = F - (F % M);
    succeeds(m.setDirectMapInvalid(B, 1, { flush: true }));
    succeeds(m.setDirectMapInvalid(B + 1, M - 1, { flush: false }));
    succeeds(m.flush(PO + B + 2 * M, 1)); // misses the span: still pending
    expect(m.abstract().pendingTableFrees).toBe(1);
    succeeds(m.flushAll());
    expect(m.abstract()).toMatchObject({ tablesInUse: 12, pendingTableFrees: 0 });
    succeeds(m.setDirectMapDefault(B, M, { flush: true }));
    succeeds(m.setDirectMapInvalid(B, M, { flush: true }));
    expect(m.abstract()).toMatchObject({ tablesInUse: 12, pendingTableFrees: 0 });
  });

  it('EINVAL for a bad range, EPERM while the frame is mapped elsewhere (P7)', () => {
    const m = booted();
    refused(m, () => m.setDirectMapInvalid(-1, 1, { flush: true }), 'EINVAL', 'pfn');
    refused(m, () => m.setDirectMapDefault(F, 0, { flush: true }), 'EINVAL', 'count');
    const e = refused(m, () => m.setDirectMapInvalid(K.textPfn, 1, { flush: true }), 'EPERM', 'pfn');
    expect(e.invariant).toBe('P7');
    succeeds(m.map(0, V, F, 1, PAGE_KERNEL));
    refused(m, () => m.setDirectMapInvalid(F, 1, { flush: false }), 'EPERM', 'pfn');
  });
});

describe('TLB', () => {
  it('access fills the TLB on a walk and hits it after; faults keep the fill', () => {
    const m = booted();
    const leaf = leafAt(m, PO + 3)!;
    expect(m.access(0, 0, PO + 3, 'x', 'kernel')).toEqual({ ok: true, value: { fault: 'protection' } });
    expect(m.abstract().tlb).toEqual([{ cpu: 0, root: 0, leaf }]);
    expect(m.access(0, 0, PO + 4, 'w', 'kernel')).toEqual({ ok: true, value: { fault: false, translation: { leaf, pfn: 4 }, fromTlb: true } });
    expect(m.access(0, 0, PO + 4, 'r', 'user')).toEqual({ ok: true, value: { fault: 'protection' } });
    expect(m.access(0, 0, L.vmallocStart, 'r', 'kernel')).toEqual({ ok: true, value: { fault: 'not-present' } });
    expect(m.abstract().tlb).toHaveLength(1);
    refused(m, () => m.access(4, 0, PO, 'r', 'kernel'), 'EINVAL', 'cpu');
  });

  it('operations that change translations flush them on every CPU; map and translate do not touch the TLB', () => {
    const m = booted();
    for (const cpu of [0, 1]) m.access(cpu, 0, PO + F, 'r', 'kernel');
    m.access(0, 0, PO + 5, 'r', 'kernel');
    expect(m.abstract().tlb).toHaveLength(3);
    succeeds(m.protect(PO + F + 9, 1, { cache: 'WC' }));
    expect(m.abstract().tlb.map((e) => e.leaf.vpn)).toEqual([PO]);
    succeeds(m.map(0, V, F, 1, PAGE_KERNEL_RO));
    m.translate(0, PO + 5);
    expect(m.abstract().tlb).toHaveLength(1);
    succeeds(m.split(0, PO + 5));
    expect(m.abstract().tlb).toEqual([]);
  });

  it('flush validates its range', () => {
    const m = booted();
    refused(m, () => m.flush(PO, 0), 'EINVAL', 'pages');
    refused(m, () => m.flush(0, 1), 'EINVAL', 'vpn');
  });
});

describe('translate', () => {
  it('gives the leaf and the frame of the page, or ENOENT', () => {
    const m = booted();
    expect(m.translate(0, PO + F)).toEqual({ ok: true, value: { leaf: leafAt(m, PO + F), pfn: F } });
    refused(m, () => m.translate(0, L.vmallocStart), 'ENOENT', 'vpn');
    refused(m, () => m.translate(0, 1), 'EINVAL', 'vpn');
    refused(m, () => m.translate(1, PO), 'EINVAL', 'root');
  });
});

describe('strict-policy refusals (EPERM naming the invariant, nothing changes)', () => {
  // An EPERM names the strict-policy invariant it refuses to break, and says so in its message.
  const rule = (e: PtError): string => {
    expect(e.message).toContain(`would break ${e.invariant ?? '?'} `);
    return e.invariant ?? e.message;
  };
  const userRo: Prot = { ...PAGE_KERNEL_RO, user: true };

  it('P1 no_leaf_writable_and_executable', () => {
    const m = booted();
    expect(rule(refused(m, () => m.map(0, V, F, 1, PAGE_KERNEL_EXEC), 'EPERM', 'prot'))).toBe('P1');
    expect(rule(refused(m, () => m.protect(PO + F, 1, { exec: true }), 'EPERM', 'change'))).toBe('P1');
    expect(rule(refused(m, () => m.protect(L.kernelText + K.textPfn, 1, { write: true }), 'EPERM', 'change'))).toBe('P1');
  });

  it('P2 no_frame_writable_and_executable_through_two_aliases', () => {
    const m = booted();
    expect(rule(refused(m, () => m.map(0, V, F, 1, PAGE_KERNEL_ROX), 'EPERM', 'prot'))).toBe('P2');
    succeeds(m.map(0, V, F, 1, PAGE_KERNEL_RO));
    // set_memory_x without first making the direct-map alias read-only.
    expect(rule(refused(m, () => m.protect(V, 1, { exec: true }), 'EPERM', 'change'))).toBe('P2');
    // Making the direct map of text writable again while the image maps it executable.
    expect(rule(refused(m, () => m.protect(PO + K.textPfn, 1, { write: true }), 'EPERM', 'change'))).toBe('P2');
  });

  it('P4 rodata never writable, P5 kernel-image text never NX', () => {
    const m = booted();
    expect(rule(refused(m, () => m.protect(L.kernelText + K.rodataPfn, 4, { write: true }), 'EPERM', 'change'))).toBe('P4');
    expect(rule(refused(m, () => m.protect(PO + K.rodataPfn, 1, { write: true }), 'EPERM', 'change'))).toBe('P4');
    expect(rule(refused(m, () => m.map(0, V, K.rodataPfn, 1, PAGE_KERNEL), 'EPERM', 'prot'))).toBe('P4');
    expect(rule(refused(m, () => m.protect(L.kernelText + K.textPfn + 7, 1, { exec: false }), 'EPERM', 'change'))).toBe('P5');
    // Another NX alias of text is fine; only the image page must stay executable.
    succeeds(m.map(0, V, K.textPfn, 1, PAGE_KERNEL_RO));
  });

  it('S12 page-table frames are mapped only by their direct-map page', () => {
    const m = booted();
    expect(rule(refused(m, () => m.map(0, V, TABLE_POOL.pfn + 3, 1, PAGE_KERNEL_RO), 'EPERM', 'prot'))).toBe('S12');
    succeeds(m.protect(PO + TABLE_POOL.pfn, 1, { write: false }));
  });

  it('P6 no user page in the kernel half', () => {
    const m = booted();
    expect(rule(refused(m, () => m.map(0, V, F, 1, userRo), 'EPERM', 'prot'))).toBe('P6');
  });

  it('P7 a frame removed from the direct map is mapped nowhere in the kernel half', () => {
    const m = booted();
    succeeds(m.setDirectMapInvalid(F, 1, { flush: true }));
    expect(rule(refused(m, () => m.map(0, V, F, 1, PAGE_KERNEL), 'EPERM', 'prot'))).toBe('P7');
    expect(rule(refused(m, () => m.map(0, PO + F, F, 1, PAGE_KERNEL), 'EPERM', 'prot'))).toBe('P7');
    // Default re-maps the rodata alias RW: refused by P4.
    succeeds(m.unmap(0, L.kernelText + K.rodataPfn, 1));
    succeeds(m.setDirectMapInvalid(K.rodataPfn, 1, { flush: true }));
    expect(rule(refused(m, () => m.setDirectMapDefault(K.rodataPfn, 1, { flush: true }), 'EPERM', 'pfn'))).toBe('P4');
  });

  it('EPERM is decided before ENOMEM', () => {
    const m = booted({ tablePool: { pfn: TABLE_POOL.pfn, count: 11 } });
    expect(rule(refused(m, () => m.map(0, V, F, 1, PAGE_KERNEL_EXEC), 'EPERM', 'prot'))).toBe('P1');
  });
});

describe('ENOMEM', () => {
  it('refuses what needs more tables than the pool, and frees tables on unmap', () => {
    const m = booted({ tablePool: { pfn: TABLE_POOL.pfn, count: 11 } });
    expect(m.abstract().tablesInUse).toBe(11);
    refused(m, () => m.split(0, PO + 5), 'ENOMEM', 'tablePool');
    refused(m, () => m.map(0, V, F, 1, PAGE_KERNEL), 'ENOMEM', 'tablePool');
    refused(m, () => m.unmap(0, PO + F, 1), 'ENOMEM', 'tablePool');
    refused(m, () => m.protect(PO + 5, 1, { write: false }), 'ENOMEM', 'tablePool');
    // A whole-leaf change needs no table.
    succeeds(m.protect(PO, M, { write: false }));
    succeeds(m.unmap(0, L.vmallocStart + 1, 64));
    expect(m.abstract().tablesInUse).toBe(10);
    succeeds(m.split(0, PO + 5));
    expect(m.abstract().tablesInUse).toBe(11);
  });
});
