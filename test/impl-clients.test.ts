/**
 * The impl's clients capability (spec/contracts/clients.ts) on the kernel scenario:
 * vmalloc and its lazy free, kmap_local, the mermap and its stale allocations, the
 * __GFP_UNMAPPED pool and the pool rules of allocFrames / freeFrames, apply_to_page_range
 * and the pagewalk. Each operation's effect on the real entries (translate, the walk, the
 * table check), its errnos, the profiles where they differ, and that a refused strict
 * operation leaves abstract() as it was.
 */
import { describe, expect, it } from 'vitest';
import { PAGES, kernelLayout, type Vpn } from '../spec/address.ts';
import { KM_MAX_IDX, MERMAP_ALLOCS, MERMAP_USABLE_PAGES, emptyClients, kmapSlotVpn, lazyMaxPages, mermapSlice } from '../spec/clients.ts';
import { applyCommand } from '../spec/commands.ts';
import { kernelScenario } from '../spec/scenario.ts';
import { PAGE_KERNEL, type Prot, type SystemConfig } from '../spec/state.ts';
import type { Profile } from '../spec/system.ts';
import { checkTables, createImpl, type RadixSystem } from '../impl/index.ts';

const MiB = 256;
const L = kernelLayout(4);
const VM = L.vmallocStart;
const PO = L.pageOffset;
/** Freed after boot for the allocator: [FREE, FREE + FREE_COUNT). */
const FREE = 200 * MiB;
const FREE_COUNT = 600 * MiB;
/** A data frame only the direct map maps. */
const DATA = 150 * MiB;
/** A free pageblock (the direct map holds it in a 2M leaf). */
const PB = 500 * MiB;
const NOGLOBAL: Prot = { ...PAGE_KERNEL, global: false };

function boot(profile: Profile = 'strict', config: Partial<SystemConfig> = {}): RadixSystem {
  const sc = kernelScenario(config);
  const sys = createImpl({ config: sc.config, frames: sc.frames, profile });
  for (const c of sc.boot) expect(applyCommand(sys, c).ok).toBe(true);
  expect(sys.freeFrames(FREE, FREE_COUNT).ok).toBe(true);
  return sys;
}

/** The frame vpn translates to in init_mm, or undefined. */
function frameAt(sys: RadixSystem, vpn: Vpn): number | undefined {
  const t = sys.translate(0, vpn);
  return t.ok ? t.value.pfn : undefined;
}

/** `op` fails with errno (and arg, and invariant for EPERM) and leaves abstract() as it was. */
function refused(sys: RadixSystem, op: () => { ok: boolean }, error: { errno: string; arg?: string; invariant?: string }): void {
  const before = JSON.stringify(sys.abstract());
  expect(op()).toMatchObject({ ok: false, error });
  expect(JSON.stringify(sys.abstract())).toBe(before);
}

const tablesSound = (sys: RadixSystem) => expect(checkTables(sys)).toEqual([]);
const frameRun = (sys: RadixSystem, pfn: number) => sys.abstract().frames.find((r) => r.pfn <= pfn && pfn < r.pfn + r.count)!;

describe('impl clients: the capability', () => {
  it('is always there, its bookkeeping empty after boot', () => {
    const sys = boot();
    expect(sys.clients).toBeDefined();
    expect(sys.abstract().clients).toEqual(emptyClients(4, 4));
    // The same object while nothing changed.
    expect(sys.abstract().clients).toBe(sys.abstract().clients);
  });
});

describe('impl clients: vmalloc and vfree', () => {
  const va = VM + 4096;

  it('maps the frames it allocates, 4K or 2M, and refuses in the contract order', () => {
    const sys = boot();
    const c = sys.clients;
    refused(sys, () => c.vmalloc(PO, FREE, 4, { huge: false, resetPerms: false }), { errno: 'EINVAL', arg: 'vpn' });
    // va is 2M-aligned: a huge area must be, in its pages, its frames.
    refused(sys, () => c.vmalloc(va + 1, FREE, 512, { huge: true, resetPerms: false }), { errno: 'EINVAL', arg: 'vpn' });
    refused(sys, () => c.vmalloc(va, FREE, 100, { huge: true, resetPerms: false }), { errno: 'EINVAL', arg: 'pages' });
    refused(sys, () => c.vmalloc(va, FREE + 1, 512, { huge: true, resetPerms: false }), { errno: 'EINVAL', arg: 'pfn' });
    // The boot's vmap at VMALLOC_START + 1, and a frame the allocator does not hold.
    refused(sys, () => c.vmalloc(VM, FREE, 4, { huge: false, resetPerms: false }), { errno: 'EEXIST', arg: 'vpn' });
    refused(sys, () => c.vmalloc(va, DATA, 4, { huge: false, resetPerms: false }), { errno: 'EBUSY', arg: 'pfn' });
    expect(c.vmalloc(va, FREE, 8, { huge: false, resetPerms: false }).ok).toBe(true);
    for (let i = 0; i < 8; i++) expect(sys.translate(0, va + i)).toMatchObject({ ok: true, value: { pfn: FREE + i, leaf: { size: '4K', prot: PAGE_KERNEL } } });
    expect(frameRun(sys, FREE).use).toBe('data');
    refused(sys, () => c.vmalloc(va + 4, FREE + 100, 8, { huge: false, resetPerms: false }), { errno: 'EBUSY', arg: 'vpn' });
    const hva = VM + 512 * 100;
    expect(c.vmalloc(hva, FREE + 512, 1024, { huge: true, resetPerms: false }).ok).toBe(true);
    expect(sys.translate(0, hva + 700)).toMatchObject({ ok: true, value: { pfn: FREE + 512 + 700, leaf: { size: '2M' } } });
    expect(sys.abstract().clients!.vmalloc).toEqual([
      { vpn: va, pages: 8, pfn: FREE, huge: false, resetPerms: false },
      { vpn: hva, pages: 1024, pfn: FREE + 512, huge: true, resetPerms: false },
    ]);
    // vmalloc flushes nothing and owes nothing.
    expect(sys.abstract().pendingFlush).toEqual([]);
    tablesSound(sys);
  });

  it('strict vfree unmaps, flushes the area and frees; the VA waits for the purge', () => {
    const sys = boot();
    const c = sys.clients;
    expect(c.vmalloc(va, FREE, 8, { huge: false, resetPerms: false }).ok).toBe(true);
    expect(sys.access(1, 0, va + 2, 'w', 'kernel')).toMatchObject({ ok: true, value: { fault: false } });
    refused(sys, () => c.vfree(PO), { errno: 'EINVAL', arg: 'vpn' });
    refused(sys, () => c.vfree(va + 1), { errno: 'ENOENT', arg: 'vpn' });
    expect(c.vfree(va).ok).toBe(true);
    expect(frameAt(sys, va)).toBeUndefined();
    const s = sys.abstract();
    expect(s.clients!.vmalloc).toEqual([]);
    expect(s.clients!.lazy).toEqual([{ vpn: va, pages: 8, pfn: FREE }]);
    expect(frameRun(sys, FREE).use).toBe('free');
    // The area's flush came before the free: no TLB entry, no obligation, no pending table.
    expect(s.tlb.filter((e) => e.leaf.vpn === va + 2)).toEqual([]);
    expect(s.pendingFlush).toEqual([]);
    expect(s.pendingTableFrees).toBe(0);
    refused(sys, () => c.vmalloc(va, FREE, 8, { huge: false, resetPerms: false }), { errno: 'EBUSY', arg: 'vpn' });
    expect(c.vmUnmapAliases().ok).toBe(true);
    expect(sys.abstract().clients!.lazy).toEqual([]);
    expect(c.vmalloc(va, FREE, 8, { huge: false, resetPerms: false }).ok).toBe(true);
    tablesSound(sys);
  });

  it('strict vfree refuses, judged on the state before, what freeing would break (D4, C1)', () => {
    const sys = boot();
    const c = sys.clients;
    expect(c.vmalloc(va, FREE, 8, { huge: false, resetPerms: false }).ok).toBe(true);
    // A second kernel mapping of one of its frames: D4 once the frame is free.
    expect(sys.map(0, VM + 9000, FREE + 3, 1, PAGE_KERNEL).ok).toBe(true);
    refused(sys, () => c.vfree(va), { errno: 'EPERM', arg: 'vpn', invariant: 'D4' });
    expect(sys.unmap(0, VM + 9000, 1).ok).toBe(true);
    // A stale mermap allocation of one of its frames: C1.
    const m = c.mermapGet(0, FREE + 5, 1);
    expect(m.ok).toBe(true);
    expect(c.mermapPut(0, (m as { value: Vpn }).value).ok).toBe(true);
    refused(sys, () => c.vfree(va), { errno: 'EPERM', arg: 'vpn', invariant: 'C1' });
    expect(sys.flushLocal(0, (m as { value: Vpn }).value, 1).ok).toBe(true);
    expect(c.vfree(va).ok).toBe(true);
  });

  it('VM_FLUSH_RESET_PERMS puts the direct map back as 4K PAGE_KERNEL pages and purges at once', () => {
    const sys = boot();
    const c = sys.clients;
    expect(c.vmalloc(va, FREE, 8, { huge: false, resetPerms: true }).ok).toBe(true);
    expect(sys.translate(0, PO + FREE)).toMatchObject({ ok: true, value: { leaf: { size: '2M' } } });
    expect(c.vfree(va).ok).toBe(true);
    expect(sys.translate(0, PO + FREE + 3)).toMatchObject({ ok: true, value: { pfn: FREE + 3, leaf: { size: '4K', prot: PAGE_KERNEL } } });
    const s = sys.abstract();
    expect(s.clients!.lazy).toEqual([]);
    expect(s.pendingFlush).toEqual([{ vpn: PO + FREE, pages: 8, reason: 'setDirectMapDefault' }]);
    expect(frameRun(sys, FREE)).toMatchObject({ use: 'free', noDirectMap: false });
    tablesSound(sys);
  });

  it('purges once the purge list passes lazy_max_pages', () => {
    const sys = boot();
    const c = sys.clients;
    const big = lazyMaxPages(4);
    expect(c.vmalloc(VM + 512 * 200, FREE, big, { huge: false, resetPerms: false }).ok).toBe(true);
    expect(c.vmalloc(va, FREE + big, 1, { huge: false, resetPerms: false }).ok).toBe(true);
    expect(c.vfree(VM + 512 * 200).ok).toBe(true);
    expect(sys.abstract().clients!.lazy).toHaveLength(1);
    expect(c.vfree(va).ok).toBe(true);
    expect(sys.abstract().clients!.lazy).toEqual([]);
  });

  it('linux vfree frees before any flush (the range owed, the TLB entry kept), and warns of a nonexistent area', () => {
    const sys = boot('linux');
    const c = sys.clients;
    expect(c.vmalloc(va, FREE, 8, { huge: false, resetPerms: false }).ok).toBe(true);
    expect(sys.access(1, 0, va + 2, 'r', 'kernel').ok).toBe(true);
    expect(c.vfree(va + 1)).toMatchObject({ ok: false, error: { errno: 'ENOENT', arg: 'vpn' } });
    expect(sys.takeEvents()).toEqual([{ kind: 'vfree-nonexistent', vpn: va + 1, pages: 1, pfn: 0 }]);
    expect(c.vfree(va).ok).toBe(true);
    const s = sys.abstract();
    expect(s.pendingFlush).toEqual([{ vpn: va, pages: 8, reason: 'unmap' }]);
    expect(s.tlb.some((e) => e.cpu === 1 && e.leaf.vpn === va + 2)).toBe(true);
    expect(frameRun(sys, FREE).use).toBe('free');
    // The purge flushes it (one range, the lazy area's).
    expect(c.vmUnmapAliases().ok).toBe(true);
    expect(sys.abstract().pendingFlush).toEqual([]);
    tablesSound(sys);
  });

  it('linux vfree with VM_FLUSH_RESET_PERMS runs CPA: the direct map present again without G', () => {
    const sys = boot('linux');
    expect(sys.clients.vmalloc(va, FREE, 8, { huge: false, resetPerms: true }).ok).toBe(true);
    expect(sys.clients.vfree(va).ok).toBe(true);
    expect(sys.translate(0, PO + FREE + 1)).toMatchObject({ ok: true, value: { pfn: FREE + 1, leaf: { prot: { global: false, write: true } } } });
    expect(frameRun(sys, FREE).noDirectMap).toBe(false);
  });
});

describe('impl clients: kmap_local', () => {
  it('strict maps slots as a per-CPU stack and unmaps the top only, flushing its CPU', () => {
    const sys = boot();
    const c = sys.clients;
    const s0 = kmapSlotVpn(1, 0);
    expect(c.kmapLocal(1, DATA)).toEqual({ ok: true, value: s0 });
    expect(c.kmapLocal(1, DATA + 1)).toEqual({ ok: true, value: kmapSlotVpn(1, 1) });
    expect(sys.translate(0, s0)).toMatchObject({ ok: true, value: { pfn: DATA, leaf: { size: '4K', prot: PAGE_KERNEL } } });
    expect(sys.abstract().clients!.kmap).toEqual([
      { cpu: 1, idx: 0, vpn: s0, pfn: DATA },
      { cpu: 1, idx: 1, vpn: kmapSlotVpn(1, 1), pfn: DATA + 1 },
    ]);
    refused(sys, () => c.kunmapLocal(1, s0), { errno: 'EINVAL', arg: 'vpn' });
    refused(sys, () => c.kunmapLocal(2, s0), { errno: 'ENOENT', arg: 'vpn' });
    refused(sys, () => c.kunmapLocal(7, s0), { errno: 'EINVAL', arg: 'cpu' });
    expect(sys.access(1, 0, kmapSlotVpn(1, 1), 'r', 'kernel').ok).toBe(true);
    expect(c.kunmapLocal(1, kmapSlotVpn(1, 1)).ok).toBe(true);
    expect(frameAt(sys, kmapSlotVpn(1, 1))).toBeUndefined();
    expect(sys.abstract().tlb.filter((e) => e.cpu === 1 && e.leaf.vpn === kmapSlotVpn(1, 1))).toEqual([]);
    expect(c.kunmapLocal(1, s0).ok).toBe(true);
    // The emptied PTE table, and the PMD table the first slot needed above it, wait for a flush of every CPU.
    expect(sys.abstract().pendingTableFrees).toBe(2);
    expect(sys.flush(s0, 1).ok).toBe(true);
    expect(sys.abstract().pendingTableFrees).toBe(0);
    tablesSound(sys);
  });

  it('strict refuses a full stack, an occupied slot, and a leaf the policy forbids', () => {
    const sys = boot();
    const c = sys.clients;
    for (let i = 0; i < KM_MAX_IDX; i++) expect(c.kmapLocal(0, DATA + i).ok).toBe(true);
    refused(sys, () => c.kmapLocal(0, DATA), { errno: 'EBUSY', arg: 'cpu' });
    expect(sys.map(0, kmapSlotVpn(2, 0), DATA, 1, PAGE_KERNEL).ok).toBe(true);
    refused(sys, () => c.kmapLocal(2, DATA), { errno: 'EEXIST', arg: 'vpn' });
    refused(sys, () => c.kmapLocal(3, FREE), { errno: 'EPERM', arg: 'pfn', invariant: 'D4' });
    // A frame off the direct map: P7 (the mermap alone is exempt).
    expect(c.allocUnmapped(PB, 1).ok).toBe(true);
    refused(sys, () => c.kmapLocal(3, PB), { errno: 'EPERM', arg: 'pfn', invariant: 'P7' });
    expect(c.mermapGet(3, PB, 1).ok).toBe(true);
  });

  it('linux kmap_local_page is page_address and kunmap_local does nothing', () => {
    const sys = boot('linux');
    const before = JSON.stringify(sys.abstract());
    expect(sys.clients.kmapLocal(1, DATA)).toEqual({ ok: true, value: PO + DATA });
    expect(sys.clients.kunmapLocal(1, PO + DATA).ok).toBe(true);
    expect(JSON.stringify(sys.abstract())).toBe(before);
  });
});

describe('impl clients: the mermap', () => {
  it('maps non-global 4K leaves at the bump pointer; put leaves a stale allocation, no flush, a flush owed for the tables it empties', () => {
    const sys = boot();
    const c = sys.clients;
    const slice = mermapSlice(4, 2);
    refused(sys, () => c.mermapGet(2, DATA, MERMAP_USABLE_PAGES + 1), { errno: 'EINVAL', arg: 'pages' });
    expect(c.mermapGet(2, DATA, 3)).toEqual({ ok: true, value: slice });
    expect(sys.translate(0, slice + 2)).toMatchObject({ ok: true, value: { pfn: DATA + 2, leaf: { size: '4K', prot: NOGLOBAL } } });
    expect(sys.access(2, 0, slice, 'r', 'kernel').ok).toBe(true);
    refused(sys, () => c.mermapPut(2, slice + 1), { errno: 'ENOENT', arg: 'vpn' });
    expect(c.mermapPut(2, slice).ok).toBe(true);
    expect(frameAt(sys, slice)).toBeUndefined();
    const s = sys.abstract();
    expect(s.clients!.mermap[2]).toEqual({ cpu: 2, next: slice + 3, allocs: [], stale: [{ cpu: 2, vpn: slice, pages: 3, pfn: DATA }] });
    expect(s.tlb.some((e) => e.cpu === 2 && e.leaf.vpn === slice)).toBe(true);
    expect(s.pendingFlush).toEqual([{ vpn: slice, pages: 3, reason: 'mermapPut' }]);
    tablesSound(sys);
  });

  it('strict freeFrames refuses a frame of a stale allocation (C1) until a flush on its CPU covers it', () => {
    const sys = boot();
    const c = sys.clients;
    const slice = mermapSlice(4, 1);
    expect(c.mermapGet(1, DATA, 2).ok).toBe(true);
    expect(c.mermapPut(1, slice).ok).toBe(true);
    refused(sys, () => sys.freeFrames(DATA + 1, 1), { errno: 'EPERM', arg: 'pfn', invariant: 'C1' });
    // Another CPU's local flush, this one's elsewhere, or of part of it, leaves it stale.
    expect(sys.flushLocal(0, slice, 2).ok).toBe(true);
    expect(sys.flushLocal(1, slice + 2, 1).ok).toBe(true);
    expect(sys.flushLocal(1, slice + 1, 1).ok).toBe(true);
    expect(sys.abstract().clients!.mermap[1]!.stale).toHaveLength(1);
    expect(sys.flushLocal(1, slice, 2).ok).toBe(true);
    expect(sys.abstract().clients!.mermap[1]!.stale).toEqual([]);
    expect(sys.freeFrames(DATA + 1, 1).ok).toBe(true);
    // A kernel range flush meeting one, and flush_tlb_all, drop them too.
    expect(c.mermapGet(1, DATA + 2, 1).ok).toBe(true);
    expect(c.mermapPut(1, slice + 2).ok).toBe(true);
    expect(sys.flush(slice + 2, 1).ok).toBe(true);
    expect(sys.abstract().clients!.mermap[1]!.stale).toEqual([]);
    expect(c.mermapGet(1, DATA + 2, 1).ok).toBe(true);
    expect(c.mermapPut(1, slice + 3).ok).toBe(true);
    expect(sys.flushAll().ok).toBe(true);
    expect(sys.abstract().clients!.mermap[1]!.stale).toEqual([]);
  });

  it('linux frees a frame of a stale allocation (the C1 finding is the kernel\'s)', () => {
    const sys = boot('linux');
    expect(sys.clients.mermapGet(1, DATA, 1).ok).toBe(true);
    expect(sys.clients.mermapPut(1, mermapSlice(4, 1)).ok).toBe(true);
    expect(sys.freeFrames(DATA, 1).ok).toBe(true);
  });

  it('reuses its slice after a full flush of its CPU only, and refuses when no room or slot is left', () => {
    const sys = boot();
    const c = sys.clients;
    const slice = mermapSlice(4, 3);
    expect(c.mermapGet(3, DATA, 8).ok).toBe(true);
    expect(c.mermapGet(3, DATA + 8, 6).ok).toBe(true);
    expect(c.mermapPut(3, slice).ok).toBe(true);
    expect(sys.access(3, 0, slice + 8, 'r', 'kernel').ok).toBe(true);
    expect(sys.access(0, 0, PO + DATA, 'r', 'kernel').ok).toBe(true);
    // next + 2 > the usable end: the room above the highest allocation in use (slice + 14) is too small.
    refused(sys, () => c.mermapGet(3, DATA, 2), { errno: 'EBUSY', arg: 'cpu' });
    expect(c.mermapPut(3, slice + 8).ok).toBe(true);
    // None in use now: the slice start, after arch_mermap_flush_tlb on CPU 3 alone.
    expect(c.mermapGet(3, DATA, 2)).toEqual({ ok: true, value: slice });
    const s = sys.abstract();
    expect(s.clients!.mermap[3]).toMatchObject({ next: slice + 2, stale: [] });
    expect(s.tlb.filter((e) => e.cpu === 3)).toEqual([]);
    expect(s.tlb.some((e) => e.cpu === 0)).toBe(true);
    for (let i = 1; i < MERMAP_ALLOCS; i++) expect(c.mermapGet(3, DATA, 1).ok).toBe(true);
    refused(sys, () => c.mermapGet(3, DATA, 1), { errno: 'EBUSY', arg: 'cpu' });
    tablesSound(sys);
  });
});

describe('impl clients: the unmapped pool', () => {
  it('takes free pageblocks out of the direct map, flushed, and hands their frames out', () => {
    const sys = boot();
    const c = sys.clients;
    expect(sys.access(2, 0, PO + PB + 1, 'r', 'kernel').ok).toBe(true);
    refused(sys, () => c.allocUnmapped(DATA, 1), { errno: 'EBUSY', arg: 'pfn' });
    expect(c.allocUnmapped(PB + 1, 2).ok).toBe(true);
    for (const p of [PB, PB + 1, PB + 511]) expect(frameAt(sys, PO + p)).toBeUndefined();
    const s = sys.abstract();
    expect(s.clients!.unmapped).toEqual([PB]);
    expect(s.tlb.filter((e) => e.leaf.vpn <= PO + PB + 1 && PO + PB < e.leaf.vpn + PAGES[e.leaf.size])).toEqual([]);
    expect(frameRun(sys, PB)).toMatchObject({ use: 'free', noDirectMap: true });
    expect(frameRun(sys, PB + 1)).toMatchObject({ use: 'data', noDirectMap: true });
    refused(sys, () => c.allocUnmapped(PB + 2, 1), { errno: 'EBUSY', arg: 'pfn' });
    expect(c.allocUnmapped(PB + 3, 1).ok).toBe(true);
    tablesSound(sys);
  });

  it('frees back into the pool (off the direct map), and maps a whole free block back on allocFrames', () => {
    const sys = boot();
    expect(sys.clients.allocUnmapped(PB, 2).ok).toBe(true);
    expect(sys.freeFrames(PB, 1).ok).toBe(true);
    expect(frameRun(sys, PB)).toMatchObject({ use: 'free', noDirectMap: true });
    refused(sys, () => sys.allocFrames(PB, 1), { errno: 'EBUSY', arg: 'pfn' });
    // C7: the direct map may not come back while the block is the pool's.
    refused(sys, () => sys.setDirectMapDefault(PB, 1, { flush: true }), { errno: 'EPERM', arg: 'pfn', invariant: 'C7' });
    expect(sys.freeFrames(PB + 1, 1).ok).toBe(true);
    expect(sys.allocFrames(PB + 7, 1).ok).toBe(true);
    const s = sys.abstract();
    expect(s.clients!.unmapped).toEqual([]);
    expect(sys.translate(0, PO + PB + 300)).toMatchObject({ ok: true, value: { pfn: PB + 300, leaf: { size: '4K', prot: PAGE_KERNEL } } });
    expect(frameRun(sys, PB)).toMatchObject({ use: 'free', noDirectMap: false });
    expect(s.pendingFlush).toEqual([{ vpn: PO + PB, pages: 512, reason: 'setDirectMapDefault' }]);
    tablesSound(sys);
  });

  it('strict refuses with ENOMEM when the removal must split a 1G leaf and the pool is full', () => {
    const sys = boot('strict', { tablePool: { pfn: 64 * MiB, count: 11 } });
    expect(sys.abstract().tablesInUse).toBe(11);
    // Above 1 GiB the direct map is 1G leaves.
    expect(sys.freeFrames(1200 * MiB, 512).ok).toBe(true);
    refused(sys, () => sys.clients.allocUnmapped(1200 * MiB, 1), { errno: 'ENOMEM', arg: 'tablePool' });
  });

  it('linux removes the block with CPA (non-present entries) and maps it back present without G', () => {
    const sys = boot('linux');
    expect(sys.clients.allocUnmapped(PB, 1).ok).toBe(true);
    expect(frameAt(sys, PO + PB)).toBeUndefined();
    expect(sys.abstract().roots[0]!.nonPresent).toContainEqual(expect.objectContaining({ vpn: PO + PB, pfn: PB, size: '2M' }));
    expect(sys.freeFrames(PB, 1).ok).toBe(true);
    expect(sys.allocFrames(PB, 1).ok).toBe(true);
    expect(sys.translate(0, PO + PB)).toMatchObject({ ok: true, value: { leaf: { size: '2M', prot: { global: false, write: true } } } });
    expect(sys.abstract().clients!.unmapped).toEqual([]);
  });
});

describe('impl clients: apply_to_page_range', () => {
  it('strict sets every none PTE and leaves set ones alone, refusing a large entry first', () => {
    const sys = boot();
    const c = sys.clients;
    // The boot maps [VM + 1, +64) 4K to 100 MiB; a 2M-leaf vmap from VM + 1024.
    expect(c.applyToPageRange(VM, 70, DATA, PAGE_KERNEL).ok).toBe(true);
    expect(frameAt(sys, VM)).toBe(DATA);
    expect(frameAt(sys, VM + 1)).toBe(100 * MiB);
    expect(frameAt(sys, VM + 69)).toBe(DATA + 69);
    refused(sys, () => c.applyToPageRange(VM + 1020, 10, DATA, PAGE_KERNEL), { errno: 'EINVAL', arg: 'vpn' });
    refused(sys, () => c.applyToPageRange(VM + 200, 4, FREE, PAGE_KERNEL), { errno: 'EPERM', arg: 'prot', invariant: 'D4' });
    expect(sys.abstract().pendingFlush).toEqual([]);
    tablesSound(sys);
  });

  it('linux keeps what it set before the huge leaf, and warns once', () => {
    const sys = boot('linux');
    const c = sys.clients;
    expect(c.applyToPageRange(VM + 1020, 10, DATA, PAGE_KERNEL)).toMatchObject({ ok: false, error: { errno: 'EINVAL', arg: 'vpn' } });
    expect(frameAt(sys, VM + 1023)).toBe(DATA + 3);
    expect(sys.takeEvents()).toEqual([{ kind: 'apply-huge', vpn: VM + 1024, pages: 512, pfn: 104 * MiB }]);
    expect(c.applyToPageRange(VM + 1030, 1, DATA, PAGE_KERNEL).ok).toBe(false);
    expect(sys.takeEvents()).toEqual([]);
  });

  it('linux keeps the blocks it populated before the pool ran out', () => {
    const sys = boot('linux', { tablePool: { pfn: 64 * MiB, count: 12 } });
    const at = VM + 512 * 10;
    expect(sys.clients.applyToPageRange(at, 1024, DATA, PAGE_KERNEL)).toMatchObject({ ok: false, error: { errno: 'ENOMEM', arg: 'tablePool' } });
    expect(frameAt(sys, at + 511)).toBe(DATA + 511);
    expect(frameAt(sys, at + 512)).toBeUndefined();
  });
});

describe('impl clients: the pagewalk', () => {
  it('visits tables, leaves, holes and runs of none PTEs in address order, clipped to the range', () => {
    const sys = boot();
    const w = sys.clients.walkPageRange(VM, 3);
    expect(w).toEqual({
      ok: true,
      value: [
        { kind: 'table', level: 4, vpn: VM, pages: 3 },
        { kind: 'table', level: 3, vpn: VM, pages: 3 },
        { kind: 'table', level: 2, vpn: VM, pages: 3 },
        { kind: 'none', level: 1, vpn: VM, pages: 1 },
        { kind: 'leaf', level: 1, vpn: VM + 1, pages: 1, pfn: 100 * MiB },
        { kind: 'leaf', level: 1, vpn: VM + 2, pages: 1, pfn: 100 * MiB + 1 },
      ],
    });
    expect(sys.clients.walkPageRange(VM + 1000, 30)).toMatchObject({
      ok: true,
      value: [
        { kind: 'table', level: 4 }, { kind: 'table', level: 3 }, { kind: 'hole', level: 2, vpn: VM + 1000, pages: 24 },
        { kind: 'leaf', level: 2, vpn: VM + 1024, pages: 6, pfn: 104 * MiB },
      ],
    });
    expect(sys.clients.walkPageRange(VM + 512 * 10, 2)).toMatchObject({ ok: true, value: [{ kind: 'table', level: 4 }, { kind: 'table', level: 3 }, { kind: 'hole', level: 2, vpn: VM + 512 * 10, pages: 2 }] });
    expect(sys.clients.walkPageRange(VM, PAGES['1G'] + 1)).toMatchObject({ ok: false, error: { errno: 'EINVAL', arg: 'pages' } });
  });

  it('reports a table an unmap left pending as a hole under strict; linux keeps it linked, with none PTEs', () => {
    for (const profile of ['strict', 'linux'] as const) {
      const sys = boot(profile);
      const at = VM + 4096;
      expect(sys.map(0, at, DATA, 8, PAGE_KERNEL).ok).toBe(true);
      expect(sys.unmap(0, at, 8, { flush: false }).ok).toBe(true);
      const visits = sys.clients.walkPageRange(at, 2);
      const below = profile === 'strict' ? [{ kind: 'hole', level: 2, vpn: at, pages: 2 }] : [{ kind: 'table', level: 2, vpn: at, pages: 2 }, { kind: 'none', level: 1, vpn: at, pages: 2 }];
      expect(visits, profile).toEqual({ ok: true, value: [{ kind: 'table', level: 4, vpn: at, pages: 2 }, { kind: 'table', level: 3, vpn: at, pages: 2 }, ...below] });
    }
  });
});

describe('impl clients: zapPageRange', () => {
  const USER_RW: Prot = { write: true, user: true, execKernel: false, execUser: false, global: false, cache: 'WB' };
  /** User pages of process 1; the zapped range is [U, U + 16). */
  const U = 0x400;
  /** Data frames only the direct map maps (DATA is boot()'s too, without isolation). */
  const D = DATA;
  /** A frame the boot's 4K vmalloc area at VMALLOC_START + 1 maps. */
  const VMAP = 100 * MiB;
  /** A frame of use 'user' (the scenario's user memory), no page-allocator page. */
  const USER = 2048 * MiB;

  /** The kernel scenario with isolation and PTI, as test/impl-isolation.test.ts boots it, and process 1. */
  function bootProcess(profile: Profile = 'strict', config: Partial<SystemConfig> = {}): RadixSystem {
    const sc = kernelScenario(config);
    const sys = createImpl({ config: sc.config, frames: sc.frames, profile, isolation: true });
    for (const c of [...sc.boot, ...(sc.isolationBoot ?? [])]) expect(applyCommand(sys, c).ok).toBe(true);
    expect(sys.isolation!.createProcess()).toMatchObject({ ok: true, value: { pid: 1 } });
    return sys;
  }

  const mapUser = (sys: RadixSystem, pid: number, vpn: Vpn, pfn: number, pages = 1) => expect(sys.isolation!.mapUser(pid, vpn, pfn, pages, USER_RW).ok).toBe(true);
  const use = (sys: RadixSystem, pfn: number) => frameRun(sys, pfn).use;

  it('removes the real entries from both KPTI copies and the ASI root, flushes the process, frees the emptied tables', () => {
    const sys = bootProcess();
    const before = sys.abstract().tablesInUse;
    mapUser(sys, 1, U, D, 4);
    expect(sys.abstract().tablesInUse).toBe(before + 3);
    // Cached through the user copy on CPU 1 and the kernel copy on CPU 2.
    expect(sys.access(1, 4, U + 1, 'r', 'user')).toMatchObject({ ok: true, value: { fault: false } });
    expect(sys.access(2, 3, U + 2, 'r', 'kernel')).toMatchObject({ ok: true, value: { fault: false } });
    expect(sys.clients.zapPageRange(1, U, 4)).toEqual({ ok: true, value: undefined });
    for (const root of [3, 4, 5]) for (let i = 0; i < 4; i++) expect(sys.translate(root, U + i)).toMatchObject({ ok: false, error: { errno: 'ENOENT' } });
    const s = sys.abstract();
    for (const id of [3, 4, 5]) expect(s.roots.find((r) => r.id === id)!.leaves).toEqual([]);
    expect(s.tlb.filter((e) => e.root >= 3)).toEqual([]);
    expect(s.walkCache?.filter((e) => e.root >= 3) ?? []).toEqual([]);
    // free_pgtables after the flush: the PUD, PMD and PTE tables of the user half are gone.
    expect(s.tablesInUse).toBe(before);
    expect(s.pendingTableFrees).toBe(0);
    tablesSound(sys);
  });

  it('frees the gathered data frames mapped nowhere else, once each, and keeps the rest', () => {
    const sys = bootProcess();
    expect(sys.isolation!.createProcess().ok).toBe(true);
    expect(sys.setDirectMapInvalid(D + 18, 1, { flush: true }).ok).toBe(true);
    mapUser(sys, 1, U, D, 4);
    // The same frame twice in the range: gathered once.
    mapUser(sys, 1, U + 4, D);
    mapUser(sys, 1, U + 5, VMAP);
    // D + 16 is mapped by process 1 outside the range too, D + 17 by process 2.
    mapUser(sys, 1, U + 6, D + 16);
    mapUser(sys, 1, 0x900, D + 16);
    mapUser(sys, 1, U + 7, D + 17);
    mapUser(sys, 2, U, D + 17);
    mapUser(sys, 1, U + 8, D + 18);
    mapUser(sys, 1, U + 9, USER);
    expect(sys.clients.zapPageRange(1, U, 16).ok).toBe(true);
    for (let i = 0; i < 4; i++) expect(use(sys, D + i)).toBe('free');
    // Never gathered, or still held by another mapping.
    expect(use(sys, D + 4)).toBe('data');
    expect(use(sys, VMAP)).toBe('data');
    expect(frameAt(sys, VM + 1)).toBe(VMAP);
    expect(use(sys, D + 16)).toBe('data');
    expect(sys.translate(4, 0x900)).toMatchObject({ ok: true, value: { pfn: D + 16 } });
    expect(use(sys, D + 17)).toBe('data');
    expect(sys.translate(7, U)).toMatchObject({ ok: true, value: { pfn: D + 17 } });
    // Off the direct map (a secretmem page), and no page-allocator page.
    expect(frameRun(sys, D + 18)).toMatchObject({ use: 'data', noDirectMap: true });
    expect(use(sys, USER)).toBe('user');
    // A free frame the allocator hands out again.
    expect(sys.allocFrames(D, 4).ok).toBe(true);
    tablesSound(sys);
  });

  it('splits a huge user leaf the range covers in part and frees only the frames inside', () => {
    for (const profile of ['strict', 'linux'] as const) {
      const sys = bootProcess(profile);
      const vpn = 0x40000;
      const pfn = 160 * MiB;
      mapUser(sys, 1, vpn, pfn, PAGES['2M']);
      expect(sys.translate(4, vpn)).toMatchObject({ ok: true, value: { leaf: { size: '2M' } } });
      expect(sys.clients.zapPageRange(1, vpn + 8, 4).ok).toBe(true);
      for (let i = 8; i < 12; i++) {
        expect(sys.translate(4, vpn + i).ok, profile).toBe(false);
        expect(use(sys, pfn + i), profile).toBe('free');
      }
      for (const i of [7, 12]) {
        expect(sys.translate(4, vpn + i), profile).toMatchObject({ ok: true, value: { pfn: pfn + i, leaf: { size: '4K' } } });
        expect(use(sys, pfn + i), profile).toBe('data');
      }
      tablesSound(sys);
    }
  });

  it('refuses in the contract order: EINVAL op without isolation first, then as unmapUser', () => {
    const plain = boot();
    refused(plain, () => plain.clients.zapPageRange(0, -1, 0), { errno: 'EINVAL', arg: 'op' });
    refused(plain, () => plain.clients.zapPageRange(1, U, 1), { errno: 'EINVAL', arg: 'op' });
    const sys = bootProcess();
    mapUser(sys, 1, U, D, 4);
    const z = sys.clients;
    refused(sys, () => z.zapPageRange(0, U, 1), { errno: 'EINVAL', arg: 'pid' });
    refused(sys, () => z.zapPageRange(1, PO, 1), { errno: 'EINVAL', arg: 'vpn' });
    refused(sys, () => z.zapPageRange(1, U, 0), { errno: 'EINVAL', arg: 'pages' });
    refused(sys, () => z.zapPageRange(9, U, 1), { errno: 'ENOENT', arg: 'pid' });
    refused(sys, () => z.zapPageRange(1, U + 4, 8), { errno: 'ENOENT', arg: 'vpn' });
    expect(use(sys, D)).toBe('data');
  });

  it('is ENOMEM when the split needs a table the pool lacks, and changes nothing, frames included', () => {
    const vpn = 0x40000;
    const pfn = 160 * MiB;
    // The pool sized to what the boot, the process and one 2M user leaf take.
    const probe = bootProcess();
    mapUser(probe, 1, vpn, pfn, PAGES['2M']);
    const sys = bootProcess('strict', { tablePool: { pfn: 64 * MiB, count: probe.abstract().tablesInUse } });
    mapUser(sys, 1, vpn, pfn, PAGES['2M']);
    refused(sys, () => sys.clients.zapPageRange(1, vpn + 8, 4), { errno: 'ENOMEM', arg: 'tablePool' });
    expect(use(sys, pfn + 8)).toBe('data');
    expect(sys.translate(4, vpn + 8)).toMatchObject({ ok: true, value: { leaf: { size: '2M' } } });
    // The whole leaf needs no split.
    expect(sys.clients.zapPageRange(1, vpn, PAGES['2M']).ok).toBe(true);
    expect(use(sys, pfn + 8)).toBe('free');
  });

  it('gather-frees-without-flush frees the frame while the user copy still caches it (D7)', () => {
    const sc = kernelScenario();
    const sys = createImpl({ config: sc.config, frames: sc.frames, isolation: true }, { mutant: 'gather-frees-without-flush' });
    for (const c of [...sc.boot, ...(sc.isolationBoot ?? [])]) expect(applyCommand(sys, c).ok).toBe(true);
    expect(sys.isolation!.createProcess().ok).toBe(true);
    mapUser(sys, 1, U, D);
    expect(sys.access(1, 4, U, 'r', 'user').ok).toBe(true);
    expect(sys.clients.zapPageRange(1, U, 1).ok).toBe(true);
    expect(use(sys, D)).toBe('free');
    expect(sys.abstract().tlb).toContainEqual(expect.objectContaining({ cpu: 1, root: 4, leaf: expect.objectContaining({ vpn: U, pfn: D }) }));
    // The stale translation still reaches the freed frame.
    expect(sys.access(1, 4, U, 'r', 'user')).toMatchObject({ ok: true, value: { fault: false, fromTlb: true, translation: { pfn: D } } });
  });
});
