/**
 * The radix mechanics of the impl on small machines: the exact entries written for
 * map/split/collapse, table lifetime, 5-level paging, atomicity of failed operations,
 * and that range work is proportional to the entries touched.
 */
import { describe, expect, it } from 'vitest';
import { PAGES, VPN_LIMIT, pfnToHex, X86_64_LAYOUT_4LEVEL as L, upperHalfStart, type PagingLevels, type Vpn } from '../spec/address.ts';
import { PAGE_KERNEL, PAGE_KERNEL_RO, PAGE_KERNEL_ROX, type FrameRun, type Prot, type SystemConfig } from '../spec/state.ts';
import type { SystemSetup } from '../spec/system.ts';
import {
  __PAGE_KERNEL, __PAGE_KERNEL_LARGE, _KERNPG_TABLE, _PAGE_PAT, _PAGE_PAT_LARGE, _PAGE_PSE, HI_NX, lo4kToLarge, pfnHi, pfnLo,
} from '../impl/arch/x86_64/entry.ts';
import { checkTables, createImpl, type RadixSystem } from '../impl/index.ts';
import { tableIndex } from '../impl/radix.ts';

/** The table pool sits at 3 GiB, above every frame the tests map (mapping a pool frame is EPERM). */
const POOL = 3 * PAGES['1G'];

/** `text` kernel-text frames right after the pool, so one range can reach both. */
export function smallSetup(o: { levels?: PagingLevels; pse?: boolean; gbpages?: boolean; pool?: number; text?: number } = {}): SystemSetup {
  const frames = 4 * PAGES['1G'];
  const pool = o.pool ?? 64;
  const text = o.text ?? 0;
  const config: SystemConfig = {
    levels: o.levels ?? 4, features: { pse: o.pse ?? true, gbpages: o.gbpages ?? true }, cpus: 2, maxPhysBits: 46,
    frames, tablePool: { pfn: POOL, count: pool },
  };
  const run = (pfn: number, count: number, use: FrameRun['use']): FrameRun => ({ pfn, count, use, sensitive: false, noDirectMap: false });
  const rest = POOL + pool + text;
  const textRun = text === 0 ? [] : [run(POOL + pool, text, 'kernel-text')];
  return { config, frames: [run(0, POOL, 'data'), run(POOL, pool, 'pagetable'), ...textRun, run(rest, frames - rest, 'data')] };
}

/** The raw entry at `level` on the walk to vpn (undefined when the walk stops above it). */
function entryAt(sys: RadixSystem, vpn: Vpn, level: number): { lo: number; hi: number } | undefined {
  const pool = sys.tables();
  let slot = 0;
  for (let l = sys.config.levels; l >= level; l--) {
    const off = slot * 1024 + tableIndex(vpn, l) * 2;
    const lo = pool.words[off]!;
    const hi = pool.words[off + 1]!;
    if (l === level) return { lo, hi };
    if (!(lo & 1) || (l <= 3 && lo & _PAGE_PSE)) return undefined;
    slot = pool.childSlot(lo, hi);
  }
  return undefined;
}

const withPfn = (e: { lo: number; hi: number }, pfn: number) => ({ lo: (e.lo | pfnLo(pfn)) >>> 0, hi: (e.hi | pfnHi(pfn)) >>> 0 });
const VM = L.vmallocStart;
const WT: Prot = { ...PAGE_KERNEL, cache: 'WT' };

function words(sys: RadixSystem): Uint32Array {
  return sys.tables().words.slice();
}

describe('impl radix: map writes the kernel encoding', () => {
  it('a 2M leaf is __PAGE_KERNEL_LARGE | pfn << 12 under _KERNPG_TABLE table entries', () => {
    const sys = createImpl(smallSetup());
    expect(sys.map(0, VM, 512 * 3, 512, PAGE_KERNEL)).toEqual({ ok: true, value: undefined });
    expect(entryAt(sys, VM, 2)).toEqual(withPfn(__PAGE_KERNEL_LARGE, 512 * 3));
    const pud = entryAt(sys, VM, 3)!;
    expect(pud.lo & 0xfff).toBe(_KERNPG_TABLE.lo);
    expect(pud.hi & HI_NX).toBe(0);
    expect(sys.abstract().tablesInUse).toBe(3);
  });

  it('a 4K leaf is __PAGE_KERNEL | pfn << 12; maxPage and alignment choose the sizes greedily', () => {
    const sys = createImpl(smallSetup());
    // vpn and pfn 2M-aligned, 513 pages: one 2M leaf then one 4K leaf.
    expect(sys.map(0, VM, 4096, 513, PAGE_KERNEL).ok).toBe(true);
    expect(entryAt(sys, VM + 512, 1)).toEqual(withPfn(__PAGE_KERNEL, 4096 + 512));
    expect(sys.abstract().roots[0]!.leaves.map((l) => l.size)).toEqual(['2M', '4K']);
    expect(sys.map(0, VM + PAGES['1G'], 0, PAGES['1G'], PAGE_KERNEL, { maxPage: '2M' }).ok).toBe(true);
    expect(sys.abstract().roots[0]!.leaves.filter((l) => l.size === '2M')).toHaveLength(513);
  });

  it('a 1G leaf needs GB pages and a 2M leaf PSE; without them map caps lower', () => {
    const noGb = createImpl(smallSetup({ gbpages: false }));
    expect(noGb.map(0, VM, 0, PAGES['1G'], PAGE_KERNEL).ok).toBe(true);
    expect(new Set(noGb.abstract().roots[0]!.leaves.map((l) => l.size))).toEqual(new Set(['2M']));
    const noPse = createImpl(smallSetup({ pse: false, gbpages: false }));
    expect(noPse.map(0, VM, 0, 1024, PAGE_KERNEL).ok).toBe(true);
    expect(noPse.abstract().roots[0]!.leaves).toHaveLength(1024);
    expect(checkTables(noPse)).toEqual([]);
  });

  it('EEXIST on any overlap, and the failed map changes nothing', () => {
    const sys = createImpl(smallSetup());
    sys.map(0, VM + 700, 0, 1, PAGE_KERNEL);
    const before = words(sys);
    const r = sys.map(0, VM, 0, 1024, PAGE_KERNEL);
    expect(r.ok ? 'ok' : r.error.errno).toBe('EEXIST');
    expect(words(sys)).toEqual(before);
  });
});

describe('impl radix: split keeps every attribute', () => {
  it('a 2M WT leaf (PAT at bit 12) splits into 512 4K PTEs with PAT at bit 7, NX and G kept', () => {
    const sys = createImpl(smallSetup());
    sys.map(0, VM, 512, 512, WT);
    const large = entryAt(sys, VM, 2)!;
    expect(large.lo & _PAGE_PAT_LARGE).not.toBe(0);
    expect(sys.split(0, VM + 5).ok).toBe(true);
    for (const i of [0, 1, 511]) {
      const pte = entryAt(sys, VM + i, 1)!;
      expect(pte.lo & _PAGE_PAT).not.toBe(0);
      expect(pte.lo & 0x1ff).toBe((large.lo & 0x17f) | _PAGE_PAT); // P RW A D PWT PCD G kept, PS gone, PAT moved
      expect(pte.lo >>> 12).toBe(512 + i);
      expect(pte.hi & HI_NX).not.toBe(0);
    }
    expect(sys.abstract().roots[0]!.leaves.every((l) => l.size === '4K' && l.prot.cache === 'WT' && l.prot.global)).toBe(true);
    expect(checkTables(sys)).toEqual([]);
  });

  it('a 1G leaf splits into 512 2M leaves keeping PS and PAT at bit 12', () => {
    const sys = createImpl(smallSetup());
    sys.map(0, VM, PAGES['1G'], PAGES['1G'], { ...PAGE_KERNEL_ROX, cache: 'WP' });
    const big = entryAt(sys, VM, 3)!;
    expect(sys.split(0, VM).ok).toBe(true);
    const pmd = entryAt(sys, VM + 512 * 7, 2)!;
    expect(pmd.lo & 0x1fff).toBe(big.lo & 0x1fff);
    expect(pmd.lo & _PAGE_PSE).not.toBe(0);
    expect((pmd.lo >>> 13) & 0xff).toBe(0); // bits 13..20 of a 2M leaf are reserved
    expect(sys.translate(0, VM + 512 * 7 + 3)).toMatchObject({ ok: true, value: { pfn: PAGES['1G'] + 512 * 7 + 3 } });
  });

  it('split of a 4K leaf is EINVAL, of a hole ENOENT', () => {
    const sys = createImpl(smallSetup());
    sys.map(0, VM, 1, 1, PAGE_KERNEL);
    const out = (r: { ok: boolean; error?: { errno: string } }) => (r.ok ? 'ok' : r.error!.errno);
    expect(out(sys.split(0, VM))).toBe('EINVAL');
    expect(out(sys.split(0, VM + 1))).toBe('ENOENT');
  });
});

describe('impl radix: collapse and table lifetime', () => {
  it('512 uniform contiguous 4K leaves collapse into one PMD leaf (pgprot_4k_2_large) and the PTE table is freed', () => {
    const sys = createImpl(smallSetup());
    sys.map(0, VM, 512, 512, WT, { maxPage: '4K' });
    const pte = entryAt(sys, VM, 1)!;
    expect(sys.abstract().tablesInUse).toBe(4);
    expect(sys.collapse(0, VM + 100, '2M').ok).toBe(true);
    expect(entryAt(sys, VM, 2)).toEqual({ lo: (lo4kToLarge(pte.lo & 0xfff) | pfnLo(512)) >>> 0, hi: pte.hi });
    expect(sys.abstract().tablesInUse).toBe(3);
    expect(checkTables(sys)).toEqual([]);
  });

  it('collapse refuses a non-uniform block (EINVAL), a block with holes (ENOENT), and 2M without PSE (EINVAL size)', () => {
    const sys = createImpl(smallSetup());
    sys.map(0, VM, 512, 512, PAGE_KERNEL, { maxPage: '4K' });
    sys.protect(VM + 3, 1, { write: false });
    const r1 = sys.collapse(0, VM, '2M');
    expect(r1.ok ? 'ok' : r1.error.errno).toBe('EINVAL');
    sys.unmap(0, VM + 3, 1);
    const r2 = sys.collapse(0, VM, '2M');
    expect(r2.ok ? 'ok' : r2.error.errno).toBe('ENOENT');
    const noPse = createImpl(smallSetup({ pse: false, gbpages: false }));
    noPse.map(0, VM, 512, 512, PAGE_KERNEL);
    const r3 = noPse.collapse(0, VM, '2M');
    expect(r3.ok ? null : [r3.error.errno, r3.error.arg]).toEqual(['EINVAL', 'size']);
  });

  it('unmapping everything frees every table but the pgd', () => {
    const sys = createImpl(smallSetup());
    sys.map(0, VM + 3, 7, 2000, PAGE_KERNEL);
    sys.map(0, VM + PAGES['1G'], PAGES['1G'], PAGES['1G'] + 512, PAGE_KERNEL_RO);
    expect(sys.abstract().tablesInUse).toBeGreaterThan(4);
    expect(sys.unmap(0, VM + 5, 10).ok).toBe(true);
    expect(checkTables(sys)).toEqual([]);
    expect(sys.unmap(0, VM, 3 * PAGES['1G']).ok).toBe(true);
    expect(sys.abstract().tablesInUse).toBe(1);
    expect(sys.abstract().roots[0]!.leaves).toEqual([]);
    expect(checkTables(sys)).toEqual([]);
  });

  it('partial unmap of a 1G leaf splits down to 4K and keeps the rest exactly', () => {
    const sys = createImpl(smallSetup());
    sys.map(0, VM, 0, PAGES['1G'], PAGE_KERNEL);
    expect(sys.unmap(0, VM + 513, 2).ok).toBe(true);
    const leaves = sys.abstract().roots[0]!.leaves;
    expect(leaves.filter((l) => l.size === '2M')).toHaveLength(511);
    expect(leaves.filter((l) => l.size === '4K')).toHaveLength(510);
    expect(leaves.every((l) => l.pfn === l.vpn - VM)).toBe(true);
  });
});

describe('impl radix: ranges cost entries, not pages', () => {
  it('protecting a range mapped by one 1G leaf writes one entry', () => {
    const sys = createImpl(smallSetup());
    sys.map(0, VM, 0, PAGES['1G'], PAGE_KERNEL);
    const pool = sys.tables();
    let before = pool.writes;
    expect(sys.protect(VM, PAGES['1G'], { write: false }).ok).toBe(true);
    expect(pool.writes - before).toBe(1);
    before = pool.writes;
    expect(sys.unmap(0, VM, PAGES['1G']).ok).toBe(true);
    const writes = pool.writes - before;
    expect(writes).toBe(2); // the leaf, then the pgd entry of the emptied PUD table
  });

  it('protect splits a straddling leaf only where the prot changes', () => {
    const sys = createImpl(smallSetup());
    sys.map(0, VM, 0, 1024, PAGE_KERNEL_RO);
    expect(sys.protect(VM + 500, 100, { write: false }).ok).toBe(true);
    expect(sys.abstract().roots[0]!.leaves).toHaveLength(2);
    expect(sys.protect(VM + 500, 100, { cache: 'UC' }).ok).toBe(true);
    expect(sys.abstract().roots[0]!.leaves).toHaveLength(512 + 512);
  });
});

describe('impl radix: 5-level paging', () => {
  it('maps, translates and frees in a 57-bit address space', () => {
    const sys = createImpl(smallSetup({ levels: 5 }));
    const top = upperHalfStart(5);
    expect(top).toBe(VPN_LIMIT - 2 ** 44);
    expect(sys.map(0, top + 3, 9, 1, PAGE_KERNEL).ok).toBe(true);
    expect(sys.abstract().tablesInUse).toBe(5);
    expect(sys.translate(0, top + 3)).toMatchObject({ ok: true, value: { pfn: 9 } });
    expect(sys.map(0, VM, 0, PAGES['1G'], PAGE_KERNEL).ok).toBe(true);
    expect(sys.abstract().roots[0]!.leaves.map((l) => [l.vpn, l.size])).toEqual([[top + 3, '4K'], [VM, '1G']]);
    expect(checkTables(sys)).toEqual([]);
    expect(sys.unmap(0, top, VPN_LIMIT - top).ok).toBe(true);
    expect(sys.abstract().tablesInUse).toBe(1);
    const user = sys.map(0, 5, 5, 1, PAGE_KERNEL);
    expect(user.ok ? null : user.error.arg).toBe('vpn');
  });
});

describe('impl radix: failed operations change nothing', () => {
  it('ENOMEM: a map needing more tables than the pool has leaves the tables bit-for-bit', () => {
    const sys = createImpl(smallSetup({ pool: 4 }));
    expect(sys.map(0, VM, 0, 1, PAGE_KERNEL).ok).toBe(true); // pgd, pud, pmd, pte: the pool is full
    const before = words(sys);
    const abs = sys.abstract();
    const r = sys.map(0, VM + PAGES['1G'] + 1, 0, 1, PAGE_KERNEL);
    expect(r.ok ? null : [r.error.errno, r.error.arg]).toEqual(['ENOMEM', 'tablePool']);
    // The work may have grown the array past the pool before failing; the pool's frames are as they were.
    expect(words(sys).slice(0, before.length)).toEqual(before);
    expect(words(sys).slice(before.length).every((x) => x === 0)).toBe(true);
    expect(sys.abstract()).toEqual(abs);
    // Splitting a 2M leaf needs a PTE table: ENOMEM, and the leaf stays whole.
    expect(sys.map(0, VM + 512, 512, 512, PAGE_KERNEL).ok).toBe(true);
    const s = sys.split(0, VM + 512);
    expect(s.ok ? 'ok' : s.error.errno).toBe('ENOMEM');
    expect(checkTables(sys)).toEqual([]);
  });

  it('a full pool still runs an operation that frees a table as it allocates one (the table moves into the freed frame)', () => {
    const sys = createImpl(smallSetup({ pool: 5 }));
    sys.map(0, VM, 512, 512, PAGE_KERNEL); // pgd, pud, pmd
    sys.map(0, VM + 512 * 3, 0, 1, PAGE_KERNEL); // + pte: 4
    sys.map(0, VM + PAGES['1G'], 0, 512, PAGE_KERNEL); // + pmd: 5, full
    // Unmapping [VM+5, VM+512*3+1) splits the first 2M leaf (a new PTE table) and empties the other PTE table.
    expect(sys.unmap(0, VM + 5, 512 * 3 - 4).ok).toBe(true);
    const pool = sys.tables();
    expect(pool.inUse).toBe(5);
    expect(pool.highWater).toBeLessThanOrEqual(5);
    expect(checkTables(sys)).toEqual([]);
    expect(sys.translate(0, VM + 4)).toMatchObject({ ok: true, value: { pfn: 516 } });
  });

  it('EPERM found after the work (cross-alias W^X through the direct-map alias) rolls everything back', () => {
    const sys = createImpl(smallSetup());
    sys.map(0, L.pageOffset, 0, 2 * PAGES['1G'], PAGE_KERNEL, { maxPage: '2M' }); // no pool frame: EPERM otherwise
    sys.map(0, VM, 4096, 512, PAGE_KERNEL_RO, { maxPage: '4K' });
    const before = words(sys);
    const abs = sys.abstract();
    // set_memory_x on the vmalloc alias: the direct map keeps RW, so one frame would be W and X.
    const r = sys.protect(VM, 512, { exec: true }, { alias: true });
    expect(r.ok ? null : [r.error.errno, r.error.arg]).toEqual(['EPERM', 'change']);
    expect(words(sys)).toEqual(before);
    expect(sys.abstract()).toEqual(abs);
    // Made read-only through the alias first, the direct map no longer conflicts.
    expect(sys.protect(VM, 512, { write: false }, { alias: true }).ok).toBe(true);
    expect(sys.protect(VM, 512, { exec: true }).ok).toBe(true);
    // The alias range is one whole 2M direct-map leaf: changed in place, not split.
    expect(sys.translate(0, L.pageOffset + 4096 + 7)).toMatchObject({ ok: true, value: { leaf: { size: '2M', prot: { write: false } } } });
  });
});

describe('impl walk: effective permissions over the levels', () => {
  it('a table entry without RW or with NX restricts every leaf below it', () => {
    const sys = createImpl(smallSetup());
    sys.map(0, VM, 0, 2, PAGE_KERNEL_ROX);
    sys.protect(VM + 1, 1, { write: true, exec: false });
    const pool = sys.tables();
    // The PMD entry (level 2) of VM: clear RW, then set NX, by hand.
    let slot = 0;
    for (let l = 4; l > 2; l--) {
      const off = slot * 1024 + tableIndex(VM, l) * 2;
      slot = pool.childSlot(pool.words[off]!, pool.words[off + 1]!);
    }
    const off = slot * 1024 + tableIndex(VM, 2) * 2;
    pool.words[off] = (pool.words[off]! & ~2) >>> 0;
    pool.touch();
    expect(sys.abstract().roots[0]!.leaves.map((l) => [l.prot.write, l.prot.execKernel])).toEqual([[false, true], [false, false]]);
    pool.words[off + 1] = (pool.words[off + 1]! | HI_NX) >>> 0;
    pool.touch();
    expect(sys.abstract().roots[0]!.leaves.map((l) => l.prot.execKernel)).toEqual([false, false]);
    expect(checkTables(sys).map((f) => f.check)).toEqual(['table-flags']);
  });
});

describe('checkTables catches hand-corrupted tables', () => {
  const corrupt = (f: (sys: RadixSystem) => void): string[] => {
    const sys = createImpl(smallSetup());
    sys.map(0, VM, 0, 3, PAGE_KERNEL);
    sys.map(0, VM + 512, 512, 512, PAGE_KERNEL);
    expect(checkTables(sys)).toEqual([]);
    f(sys);
    return [...new Set(checkTables(sys).map((x) => x.check))];
  };
  const pteOff = (sys: RadixSystem, vpn: Vpn): number => {
    const pool = sys.tables();
    let slot = 0;
    for (let l = 4; l > 1; l--) {
      const off = slot * 1024 + tableIndex(vpn, l) * 2;
      slot = pool.childSlot(pool.words[off]!, pool.words[off + 1]!);
    }
    return slot * 1024 + tableIndex(vpn, 1) * 2;
  };

  it('a reserved bit above MAXPHYADDR', () => {
    expect(corrupt((sys) => { const w = sys.tables().words; const o = pteOff(sys, VM) + 1; w[o] = (w[o]! | (1 << 15)) >>> 0; })).toContain('reserved');
  });
  it('a present entry the live count does not know', () => {
    expect(corrupt((sys) => { sys.tables().words[pteOff(sys, VM + 9)] = __PAGE_KERNEL.lo | pfnLo(9); })).toEqual(['live-count']);
  });
  it('PS in a pgd entry', () => {
    expect(corrupt((sys) => { const w = sys.tables().words; const o = tableIndex(VM, 4) * 2; w[o] = (w[o]! | _PAGE_PSE) >>> 0; })).toContain('ps-level');
  });
  it('a table linked from two entries', () => {
    const found = corrupt((sys) => {
      const w = sys.tables().words;
      // Point the PMD entry of VM+512 (a 2M leaf) at the PTE table of VM: two parents.
      const pool = sys.tables();
      let slot = 0;
      for (let l = 4; l > 2; l--) {
        const off = slot * 1024 + tableIndex(VM, l) * 2;
        slot = pool.childSlot(w[off]!, w[off + 1]!);
      }
      w[slot * 1024 + 2] = w[slot * 1024]!;
      w[slot * 1024 + 3] = w[slot * 1024 + 1]!;
    });
    expect(found).toContain('one-parent');
  });
  it('a freed table still linked, and an allocated table nobody links', () => {
    expect(corrupt((sys) => { sys.tables().allocated[3] = 0; })).toEqual(expect.arrayContaining(['not-allocated', 'pool-count']));
    expect(corrupt((sys) => { sys.tables().words[tableIndex(VM, 4) * 2] = 0; })).toContain('leaked');
  });
});

describe('impl TLB and flush obligations', () => {
  it('access fills the CPU\'s TLB; protect flushes it; a _noflush removal leaves the stale entry and a debt', () => {
    const sys = createImpl(smallSetup());
    sys.map(0, L.pageOffset, 0, 1024, PAGE_KERNEL, { maxPage: '2M' });
    expect(sys.access(1, 0, L.pageOffset + 3, 'w', 'kernel')).toMatchObject({ ok: true, value: { fault: false, fromTlb: false } });
    expect(sys.access(1, 0, L.pageOffset + 4, 'r', 'kernel')).toMatchObject({ ok: true, value: { fault: false, fromTlb: true } });
    expect(sys.abstract().tlb).toEqual([{ cpu: 1, root: 0, leaf: { vpn: L.pageOffset, pfn: 0, size: '2M', prot: PAGE_KERNEL } }]);
    sys.protect(L.pageOffset + 3, 1, { write: false });
    expect(sys.abstract().tlb).toEqual([]);
    sys.access(0, 0, L.pageOffset + 600, 'r', 'kernel');
    expect(sys.setDirectMapInvalid(600, 2, { flush: false }).ok).toBe(true);
    const s = sys.abstract();
    expect(s.pendingFlush).toEqual([{ vpn: L.pageOffset + 600, pages: 2, reason: 'setDirectMapInvalid' }]);
    // The stale 2M translation still serves the removed page until the flush.
    expect(sys.access(0, 0, L.pageOffset + 600, 'r', 'kernel')).toMatchObject({ ok: true, value: { fault: false, fromTlb: true } });
    expect(s.frames.find((r) => r.pfn === 600)).toMatchObject({ count: 2, noDirectMap: true });
    sys.flush(L.pageOffset + 512, 512);
    expect(sys.abstract().pendingFlush).toEqual([]);
    expect(sys.access(0, 0, L.pageOffset + 600, 'r', 'kernel')).toEqual({ ok: true, value: { fault: 'not-present' } });
  });
});

describe('checkTables with a scope', () => {
  it('walks only the entries that intersect the scope', () => {
    const sys = createImpl(smallSetup());
    sys.map(0, VM, 0, 3, PAGE_KERNEL);
    sys.map(0, VM + PAGES['1G'], 0, 3, PAGE_KERNEL);
    const pool = sys.tables();
    let slot = 0;
    for (let l = 4; l > 1; l--) {
      const off = slot * 1024 + tableIndex(VM + PAGES['1G'], l) * 2;
      slot = pool.childSlot(pool.words[off]!, pool.words[off + 1]!);
    }
    pool.words[slot * 1024 + 1] = (pool.words[slot * 1024 + 1]! | (1 << 15)) >>> 0; // bit 47: above MAXPHYADDR 46
    expect(checkTables(sys, { vpn: VM, pages: 3 })).toEqual([]);
    // Bit 47 is a frame bit too: the leaf now also points past memory.
    expect(checkTables(sys, { vpn: VM + PAGES['1G'], pages: 1 }).map((f) => f.check)).toEqual(['reserved', 'leaf-frame']);
    expect(checkTables(sys).map((f) => f.vpn)).toEqual([VM + PAGES['1G'], VM + PAGES['1G']]);
  });
});

describe('impl EPERM names the first strict-policy invariant broken', () => {
  const refusal = (r: { ok: boolean; error?: { errno: string; arg: string; invariant?: string; message: string } }) =>
    r.ok ? null : [r.error!.errno, r.error!.arg, r.error!.invariant];

  it('a W+X map is P1, and the message says where', () => {
    const sys = createImpl(smallSetup());
    const r = sys.map(0, VM, 7, 1, { ...PAGE_KERNEL, execKernel: true });
    expect(refusal(r)).toEqual(['EPERM', 'prot', 'P1']);
    expect(r.ok ? '' : r.error.message).toContain('P1 no_leaf_writable_and_executable at frame 0x7000 through 0xffffc90000000000 in root 0');
  });

  it('the rule order is outer: a later leaf breaking P3 wins over an earlier one breaking S12', () => {
    const sys = createImpl(smallSetup({ text: 16 }));
    // Page 0 maps the last pool frame (S12), page 1 the first text frame writable (P3).
    const r = sys.map(0, VM, POOL + 63, 2, PAGE_KERNEL, { maxPage: '4K' });
    expect(refusal(r)).toEqual(['EPERM', 'prot', 'P3']);
    expect(r.ok ? '' : r.error.message).toContain(`through 0xffffc90000001000`);
    expect(refusal(sys.map(0, VM, POOL + 63, 1, PAGE_KERNEL_RO))).toEqual(['EPERM', 'prot', 'S12']);
  });

  it('removing a frame still mapped elsewhere in the kernel half is P7, and the deferred table is rolled back too', () => {
    const sys = createImpl(smallSetup());
    sys.map(0, L.pageOffset, 0, 512, PAGE_KERNEL, { maxPage: '4K' });
    sys.map(0, VM, 5, 1, PAGE_KERNEL_RO);
    const before = words(sys);
    const abs = sys.abstract();
    // The removal empties the PTE table (it would be left pending), but frame 5 stays mapped at VM.
    expect(refusal(sys.setDirectMapInvalid(0, 512, { flush: false }))).toEqual(['EPERM', 'pfn', 'P7']);
    expect(words(sys)).toEqual(before);
    expect(sys.abstract()).toEqual(abs);
    expect(sys.tables().pending).toEqual([]);
    expect(checkTables(sys)).toEqual([]);
  });
});

describe('impl deferred table frees (set_direct_map_invalid_noflush)', () => {
  const PO = L.pageOffset;
  const counts = (sys: RadixSystem) => {
    const s = sys.abstract();
    return [s.tablesInUse, s.pendingTableFrees];
  };
  /** The direct map of frames [0, 1024) in 4K pages: pgd, pud, pmd and two PTE tables. */
  const twoPteTables = (pool?: number) => {
    const sys = createImpl(smallSetup(pool === undefined ? {} : { pool }));
    expect(sys.map(0, PO, 0, 1024, PAGE_KERNEL, { maxPage: '4K' }).ok).toBe(true);
    return sys;
  };

  it('an emptied table stays allocated and pending, unlinked, until a flush meets its span', () => {
    const sys = twoPteTables();
    expect(sys.setDirectMapInvalid(0, 512, { flush: false }).ok).toBe(true);
    expect(counts(sys)).toEqual([5, 1]);
    expect(sys.abstract().roots[0]!.leaves).toHaveLength(512);
    expect(checkTables(sys)).toEqual([]);
    // The PTE table covered [PO, PO+512): a flush beside it releases nothing (33 pages: above, it would be a full flush).
    sys.flush(PO + 512, 33);
    expect(counts(sys)).toEqual([5, 1]);
    sys.flush(PO + 511, 1);
    expect(counts(sys)).toEqual([4, 0]);
    expect(checkTables(sys)).toEqual([]);
  });

  it('with flush: true the emptied table is freed at once, as for unmap', () => {
    const sys = twoPteTables();
    expect(sys.setDirectMapInvalid(0, 512, { flush: true }).ok).toBe(true);
    expect(counts(sys)).toEqual([4, 0]);
  });

  it('a cascade leaves each emptied level pending with its own span; flushAll releases all', () => {
    const sys = createImpl(smallSetup());
    sys.map(0, PO, 0, 512, PAGE_KERNEL, { maxPage: '4K' });
    expect(sys.setDirectMapInvalid(0, 512, { flush: false }).ok).toBe(true);
    // PTE [PO, +512), PMD [PO, +1G), PUD [PO, +512G): all pending, only the pgd linked.
    expect(counts(sys)).toEqual([4, 3]);
    expect(checkTables(sys)).toEqual([]);
    sys.flush(PO + PAGES['1G'], 1);
    expect(counts(sys)).toEqual([3, 2]);
    sys.flushAll();
    expect(counts(sys)).toEqual([1, 0]);
    expect(checkTables(sys)).toEqual([]);
  });

  it('an operation\'s own flush releases the pending tables its range meets, once it has succeeded', () => {
    const sys = twoPteTables();
    sys.setDirectMapInvalid(0, 512, { flush: false });
    expect(sys.unmap(0, PO + 500, 100).ok).toBe(true);
    expect(counts(sys)).toEqual([4, 0]);
  });

  it('pending tables count toward ENOMEM, decided before the operation\'s own flush', () => {
    const sys = twoPteTables(5);
    sys.setDirectMapInvalid(0, 512, { flush: false });
    // Re-mapping frame 0 needs a PTE table; the pending one is not reusable, so the pool (5) is short.
    const again = (flush: boolean) => sys.setDirectMapDefault(0, 1, { flush });
    const r = again(true);
    expect(r.ok ? null : [r.error.errno, r.error.arg]).toEqual(['ENOMEM', 'tablePool']);
    expect(r.ok ? '' : r.error.message).toContain('1 of them unlinked, awaiting a flush');
    expect(counts(sys)).toEqual([5, 1]);
    sys.flush(PO, 1);
    expect(again(true).ok).toBe(true);
    expect(counts(sys)).toEqual([5, 0]);
    expect(checkTables(sys)).toEqual([]);
  });

  it('checkTables accepts pending tables but flags a pending table still linked, and a leak', () => {
    const sys = twoPteTables();
    sys.setDirectMapInvalid(0, 512, { flush: false });
    const pool = sys.tables();
    const pending = pool.pending[0]!;
    pool.pending.length = 0;
    expect(checkTables(sys).map((f) => f.check)).toEqual(['leaked']);
    // The other PTE table, entry 1 of the PMD: still linked, and not empty.
    const pmd = pool.parentSlot[pending]!;
    pool.pending.push(pending, pool.childSlot(pool.words[pmd * 1024 + 2]!, pool.words[pmd * 1024 + 3]!));
    expect(checkTables(sys).map((f) => f.detail)).toEqual([expect.stringContaining('still points to it'), expect.stringContaining('has 512 live entries')]);
    pool.pending.push(0);
    expect(checkTables(sys).map((f) => f.detail)).toContain(`the top-level pgd table in frame ${pfnToHex(pool.slotPfn(0))} of a live root is listed as pending free`);
  });

  it('the free-before-flush mutant frees the table at once, and the pool reuses it before any flush', () => {
    const sys = createImpl(smallSetup({ pool: 5 }), { mutant: 'free-before-flush' });
    sys.map(0, PO, 0, 1024, PAGE_KERNEL, { maxPage: '4K' });
    sys.setDirectMapInvalid(0, 512, { flush: false });
    expect(counts(sys)).toEqual([4, 0]);
    expect(sys.setDirectMapDefault(0, 1, { flush: false }).ok).toBe(true);
  });
});
