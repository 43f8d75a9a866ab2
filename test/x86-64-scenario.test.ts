/**
 * The real x86-64 scenarios (spec/x86-64.ts): model and impl boot them to the same state,
 * step by step, with and without PTI, every invariant holding; and the booted init_mm is
 * what the kernel's boot leaves, region by region (the direct map's page-size mix from
 * split_mem_range, the high map after mark_rodata_ro and the image frees, the vmemmap of
 * the present sections, the cpu_entry_area, espfix, the fixmap, the vmalloc areas).
 */
import { describe, expect, it } from 'vitest';
import { checkAll } from '../checker/index.ts';
import { compareStates } from '../fuzz/compare.ts';
import { createImpl } from '../impl/index.ts';
import { createModel } from '../model/index.ts';
import { PAGES, kernelLayout, type PageSize, type Pfn, type Vpn } from '../spec/address.ts';
import { FIXADDR_TOP, kmapRegion, mermapRegion } from '../spec/clients.ts';
import { applyCommand, type Command } from '../spec/commands.ts';
import { SCENARIOS, ptiBoot, type Scenario } from '../spec/scenario.ts';
import { PAGE_KERNEL, PAGE_KERNEL_RO, PAGE_KERNEL_ROX, type AbstractState, type FrameUse, type Leaf, type Prot } from '../spec/state.ts';
import type { PageTableSystemFactory } from '../spec/system.ts';
import { x86Scenario } from '../spec/x86-64.ts';
import { CEA, E820, GiB, HIGHMAP_END, IMAGE, MMIO, fixmapSlots } from '../spec/x86-64-layout.ts';

const NAMES = ['x86-64', 'x86-64-5level', 'x86-64-64g'] as const;
const M2 = PAGES['2M'];

/** Apply `commands` to a fresh system; every step must succeed. */
function booted(make: PageTableSystemFactory, scenario: Scenario, commands: readonly Command[], isolation = false): AbstractState {
  const sys = make(isolation ? { ...scenario, isolation: true } : scenario);
  for (const [i, c] of commands.entries()) {
    const r = applyCommand(sys, c);
    if (!r.ok) throw new Error(`${scenario.name} boot step ${i} (${c.op}): ${r.error.message}`);
  }
  return sys.abstract();
}

const memo = new Map<string, AbstractState>();
/** The model's booted x86-64 (booted once for the tests that only read it). */
function x86(): AbstractState {
  if (!memo.has('x86-64')) memo.set('x86-64', booted(createModel, SCENARIOS['x86-64']!(), SCENARIOS['x86-64']!().boot));
  return memo.get('x86-64')!;
}

const leavesIn = (s: AbstractState, vpn: Vpn, pages: number): Leaf[] => s.roots[0]!.leaves.filter((l) => l.vpn < vpn + pages && l.vpn + PAGES[l.size] > vpn);
const sizesIn = (s: AbstractState, vpn: Vpn, pages: number): Record<string, number> => {
  const out: Record<string, number> = {};
  for (const l of leavesIn(s, vpn, pages)) out[l.size] = (out[l.size] ?? 0) + 1;
  return out;
};
const useAt = (s: AbstractState, pfn: Pfn): FrameUse => s.frames.find((r) => pfn >= r.pfn && pfn < r.pfn + r.count)!.use;
const protAt = (s: AbstractState, vpn: Vpn): Prot | undefined => leavesIn(s, vpn, 1)[0]?.prot;

describe('the x86-64 scenarios', () => {
  it.each(NAMES)('%s boots on model and impl to the same state, and checkAll finds nothing', (name) => {
    const scenario = SCENARIOS[name]!();
    const model = booted(createModel, scenario, scenario.boot);
    const impl = booted(createImpl, scenario, scenario.boot);
    expect(compareStates(model, impl, null)).toBeNull();
    expect(checkAll(model)).toEqual([]);
    expect(checkAll(impl)).toEqual([]);
  });

  it.each(['x86-64', 'x86-64-5level'])('%s boots with PTI (pti_init and pti_finalize clones) on model and impl to the same state, every invariant holding', (name) => {
    const scenario = SCENARIOS[name]!();
    const model = booted(createModel, scenario, ptiBoot(scenario), true);
    const impl = booted(createImpl, scenario, ptiBoot(scenario), true);
    expect(compareStates(model, impl, null)).toBeNull();
    expect(checkAll(model)).toEqual([]);
    // The user half shows the cpu_entry_area, espfix and the entry text, the last 2 MiB of text.
    const L = kernelLayout(scenario.config.levels);
    const user = model.roots.find((r) => r.id === 1)!.leaves;
    expect(user.some((l) => l.vpn === L.cpuEntryArea)).toBe(true);
    expect(user.some((l) => l.vpn === L.espfix)).toBe(true);
    expect(user.filter((l) => l.vpn >= L.kernelText)).toEqual([{ vpn: L.kernelText + IMAGE.etext - M2, pfn: IMAGE.etext - M2, size: '2M', prot: { ...PAGE_KERNEL_ROX, global: false } }]);
  });

  it('are the machines their names say: 16 GiB and 8 GiB of hotplug space, 4 CPUs, 4- or 5-level; 64 GiB with 10,000 vmalloc areas', () => {
    const [x, five, big] = NAMES.map((n) => SCENARIOS[n]!());
    expect(x!.config).toMatchObject({ levels: 4, cpus: 4, frames: 25 * GiB, features: { pse: true, gbpages: true } });
    expect(five!.config).toMatchObject({ levels: 5, frames: 25 * GiB });
    expect(big!.config.frames).toBe(73 * GiB);
    const vmalloc = (s: Scenario): number => s.boot.filter((c) => c.op === 'map' && c.vpn >= kernelLayout(s.config.levels).vmallocStart && c.vpn < kernelLayout(s.config.levels).vmemmapStart).length;
    expect([vmalloc(x!), vmalloc(big!)]).toEqual([300, 10_000]);
  });

  it('boots at the edges of its options: 8 GiB, no hotplug space, 64 CPUs, no vmalloc area, 5-level', () => {
    const scenario = x86Scenario({ ramGiB: 8, hotplugGiB: 0, cpus: 64, vmallocAreas: 0, levels: 5 });
    const model = booted(createModel, scenario, scenario.boot);
    expect(compareStates(model, booted(createImpl, scenario, scenario.boot), null)).toBeNull();
    expect(checkAll(model)).toEqual([]);
    expect(model.config.frames).toBe(9 * GiB);
    // 64 CPUs share one espfix stack page (ESPFIX_STACKS_PER_PAGE).
    const espfix = leavesIn(model, kernelLayout(5).espfix, M2);
    expect(new Set(espfix.map((l) => l.pfn)).size).toBe(1);
  });

  it('rejects options it cannot lay out, naming the option', () => {
    expect(() => x86Scenario({ ramGiB: 4 })).toThrow('x86-64 scenario: ramGiB must be an integer from 8 to 1024, got 4');
    expect(() => x86Scenario({ cpus: 0 })).toThrow('cpus must be an integer from 1 to 64, got 0');
    expect(() => x86Scenario({ levels: 3 as 4 })).toThrow('levels must be 4 or 5, got 3');
    expect(() => x86Scenario({ vmallocAreas: 50_000 })).toThrow('50000 vmalloc areas do not fit the first GiB of the vmalloc area');
  });
});

describe('the booted x86-64, region by region', () => {
  it('physical memory: the e820 holes and the hotplug space are absent, the first MiB reserved, the image in place, the table pool at the top of RAM', () => {
    const s = x86();
    const ramTop = 17 * GiB;
    expect(s.frames.reduce((n, r) => n + r.count, 0)).toBe(s.config.frames);
    expect([0x9e, 0x9f, 0xff, 0x100].map((p) => useAt(s, p))).toEqual(['data', 'data', 'data', 'free']);
    expect([E820.ramBelow4gEnd - 1, E820.ramBelow4gEnd, 3 * GiB, E820.fourG - 1, E820.fourG].map((p) => useAt(s, p))).toEqual(['free', 'absent', 'absent', 'absent', 'user']);
    expect([ramTop - 1, ramTop, s.config.frames - 1].map((p) => useAt(s, p))).toEqual(['pagetable', 'absent', 'absent']);
    expect(s.config.tablePool).toEqual({ pfn: ramTop - 16384, count: 16384 });
    expect([IMAGE.text, IMAGE.etext, IMAGE.sdata, IMAGE.bssStart].map((p) => useAt(s, p))).toEqual(['kernel-text', 'kernel-rodata', 'kernel-data', 'kernel-data']);
    // What the boot freed: the rodata/data gap and the init sections.
    expect([IMAGE.endRodata, IMAGE.sdata - 1, IMAGE.initBegin, IMAGE.initEnd - 1].map((p) => useAt(s, p))).toEqual(['free', 'free', 'free', 'free']);
  });

  it("the direct map has split_mem_range's page-size mix: 4K in the first 2 MiB and at low RAM's ragged end, 2M up to 1 GiB and below 3 GiB, 1G where a whole GiB is RAM, nothing over a hole", () => {
    const s = x86();
    const dm = kernelLayout(4).pageOffset;
    const at = (from: Pfn, to: Pfn): Record<string, number> => sizesIn(s, dm + from, to - from);
    expect(at(0, M2)).toEqual({ '4K': 512 });
    expect(at(M2, IMAGE.text)).toEqual({ '2M': 7 });
    expect(at(GiB, 2 * GiB)).toEqual({ '1G': 1 });
    expect(at(2 * GiB, 0xbfe00)).toEqual({ '2M': 511 });
    expect(at(0xbfe00, E820.ramBelow4gEnd)).toEqual({ '4K': E820.ramBelow4gEnd - 0xbfe00 });
    expect(at(E820.ramBelow4gEnd, E820.fourG)).toEqual({});
    expect(at(E820.fourG, 17 * GiB)).toEqual({ '1G': 13 });
    expect(at(17 * GiB, s.config.frames)).toEqual({});
    // The alias of text and rodata is read-only, the gap after rodata writable again; idt_table's page read-only.
    expect([IMAGE.text, IMAGE.endRodata - 1, IMAGE.endRodata, IMAGE.bssStart, IMAGE.bssStart + 1].map((p) => protAt(s, dm + p)?.write)).toEqual([false, false, true, false, true]);
    // Without GB pages the same ranges are 2M leaves.
    const noGb = x86Scenario({ features: { pse: true, gbpages: false } });
    expect(sizesIn(booted(createModel, noGb, noGb.boot), dm + GiB, GiB)).toEqual({ '2M': 512 });
  });

  it('the high map is what cleanup_highmap and mark_rodata_ro leave: text ROX, rodata RO, the rest RW NX up to the 2 MiB after _brk_end, the freed pages non-present', () => {
    const s = x86();
    const k = kernelLayout(4).kernelText;
    expect(leavesIn(s, k, IMAGE.text)).toEqual([]);
    expect(leavesIn(s, k + IMAGE.text, IMAGE.etext - IMAGE.text)).toEqual(
      Array.from({ length: 9 }, (_, i) => ({ vpn: k + IMAGE.text + i * M2, pfn: IMAGE.text + i * M2, size: '2M', prot: PAGE_KERNEL_ROX })));
    expect(sizesIn(s, k + IMAGE.etext, IMAGE.endRodata - IMAGE.etext)).toEqual({ '2M': 5, '4K': 0x63 });
    expect(protAt(s, k + IMAGE.etext)).toEqual(PAGE_KERNEL_RO);
    const np = s.roots[0]!.nonPresent ?? [];
    const npPages = (from: Pfn, to: Pfn): number => np.filter((l) => l.vpn >= k + from && l.vpn < k + to).reduce((n, l) => n + PAGES[l.size], 0);
    expect([npPages(IMAGE.endRodata, IMAGE.sdata), npPages(IMAGE.initBegin, IMAGE.initEnd)]).toEqual([IMAGE.sdata - IMAGE.endRodata, IMAGE.initEnd - IMAGE.initBegin]);
    expect(leavesIn(s, k + IMAGE.endRodata, IMAGE.sdata - IMAGE.endRodata)).toEqual([]);
    expect(protAt(s, k + IMAGE.bssStart)?.write).toBe(false);
    const last = leavesIn(s, k + IMAGE.sdata, HIGHMAP_END).pop()!;
    expect(last).toEqual({ vpn: k + HIGHMAP_END - M2, pfn: HIGHMAP_END - M2, size: '2M', prot: PAGE_KERNEL });
    expect(leavesIn(s, k + HIGHMAP_END, kernelLayout(4).modules - k - HIGHMAP_END)).toEqual([]);
  });

  it('vmemmap: a 2M leaf per present section, none for the sections of the PCI hole or the hotplug space, backed in order by the sparse buffer', () => {
    const s = x86();
    const v = kernelLayout(4).vmemmapStart;
    const leaves = leavesIn(s, v, 200 * M2);
    expect(leaves.every((l) => l.size === '2M' && useAt(s, l.pfn) === 'data')).toBe(true);
    expect(leaves.map((l) => (l.vpn - v) / M2)).toEqual([...Array.from({ length: 24 }, (_, i) => i), ...Array.from({ length: 104 }, (_, i) => 32 + i)]);
    expect(leaves.every((l, i) => l.pfn === leaves[0]!.pfn + i * M2)).toBe(true);
    expect(leaves[leaves.length - 1]!.pfn + M2).toBeLessThanOrEqual(s.config.tablePool.pfn);
    // vmemmap_populate_basepages without PSE.
    const noPse = x86Scenario({ features: { pse: false, gbpages: false } });
    const vmemmapMaps = noPse.boot.filter((c): c is Extract<Command, { op: 'map' }> => c.op === 'map' && c.vpn >= v && c.vpn < v + 200 * M2);
    expect(vmemmapMaps.map((c) => c.maxPage)).toEqual(['4K', '4K']);
  });

  it('cpu_entry_area: the read-only IDT on idt_table, then per CPU the GDT and TSS read-only, the entry stack, four exception stacks between guard pages and the debug store RW, all global NX 4K', () => {
    const s = x86();
    const cea = kernelLayout(4).cpuEntryArea;
    expect(leavesIn(s, cea, 1)).toEqual([{ vpn: cea, pfn: IMAGE.bssStart, size: '4K', prot: PAGE_KERNEL_RO }]);
    for (let cpu = 0; cpu < 4; cpu++) {
      const base = cea + 1 + cpu * CEA.pages;
      const mapped = leavesIn(s, base, CEA.pages).map((l) => [l.vpn - base, l.prot.write]);
      expect(mapped).toEqual([[0, false], [1, true], [2, false], [3, false], [4, false], [5, false], [6, false], [8, true], [9, true], [11, true], [12, true], [14, true], [15, true], [17, true], [18, true], [26, true]]);
      expect(leavesIn(s, base, CEA.pages).every((l) => l.size === '4K' && l.prot.global && !l.prot.execKernel && useAt(s, l.pfn) === 'data')).toBe(true);
    }
  });

  it('espfix: one read-only stack page, its PTE set every 64 KiB of one PTE table', () => {
    const s = x86();
    const e = kernelLayout(4).espfix;
    const leaves = leavesIn(s, e, 1024 * M2);
    expect(leaves.map((l) => l.vpn - e)).toEqual(Array.from({ length: 32 }, (_, n) => n * 16));
    expect(new Set(leaves.map((l) => l.pfn)).size).toBe(1);
    for (const l of leaves) expect([l.size, l.prot]).toEqual(['4K', PAGE_KERNEL_RO]);
  });

  it('fixmap: the local APIC and the IO-APIC uncached, after the kmap_local slots; no vsyscall page (xonly)', () => {
    const s = x86();
    const slots = fixmapSlots(4);
    const uc = { ...PAGE_KERNEL, cache: 'UC' };
    expect(leavesIn(s, FIXADDR_TOP - 1023, 1024)).toEqual([
      { vpn: FIXADDR_TOP - slots.ioApic, pfn: MMIO.ioApic, size: '4K', prot: uc },
      { vpn: FIXADDR_TOP - slots.apic, pfn: MMIO.localApic, size: '4K', prot: uc },
    ]);
    const kmap = kmapRegion(4);
    expect(FIXADDR_TOP - slots.apic).toBeLessThan(kmap.vpn);
    expect(leavesIn(s, kmap.vpn, kmap.pages)).toEqual([]);
  });

  it("vmalloc: 300 areas in the first GiB, each before an unmapped guard page, every 100th a 2M leaf, the ioremaps UC- on MMIO; the clients' mermap left alone", () => {
    const s = x86();
    const scenario = SCENARIOS['x86-64']!();
    const L = kernelLayout(4);
    const areas = scenario.boot.filter((c): c is Extract<Command, { op: 'map' }> => c.op === 'map' && c.vpn >= L.vmallocStart && c.vpn < L.vmemmapStart);
    expect(areas).toHaveLength(300);
    for (const a of areas) {
      expect(leavesIn(s, a.vpn + a.pages, 1), `guard after ${a.vpn}`).toEqual([]);
      expect(a.vpn + a.pages + 1).toBeLessThanOrEqual(L.vmallocStart + GiB);
    }
    const sizes: Record<PageSize, number> = { '4K': 0, '2M': 0, '1G': 0 };
    for (const l of leavesIn(s, L.vmallocStart, GiB)) sizes[l.size]++;
    expect(sizes['2M']).toBe(3);
    expect(sizes['1G']).toBe(0);
    const ioremaps = areas.filter((a) => a.prot.cache !== 'WB');
    expect(ioremaps.map((a) => [a.pfn, a.pages, a.prot.cache, useAt(s, a.pfn)])).toEqual([[MMIO.hpet, 1, 'UC-', 'absent'], [MMIO.nicBar, MMIO.nicBarPages, 'UC-', 'absent']]);
    const mermap = mermapRegion(4, 4);
    expect(leavesIn(s, mermap.vpn, mermap.pages)).toEqual([]);
  });

  it("regions: every boot mapping lies in one of the scenario's named regions", () => {
    const scenario = SCENARIOS['x86-64']!();
    for (const c of scenario.boot) {
      if (c.op !== 'map') continue;
      expect(scenario.regions.some((r) => c.vpn >= r.vpn && c.vpn + c.pages <= r.vpn + r.pages), `map at ${c.vpn}`).toBe(true);
    }
    expect(scenario.regions.map((r) => r.name)).toEqual([
      'LDT remap', 'direct map', 'vmalloc', 'vmemmap', 'cpu_entry_area', 'espfix', 'kernel text', 'kernel rodata', 'kernel data', 'modules', 'fixmap',
    ]);
  });
});
