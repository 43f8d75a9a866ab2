/**
 * Where the real x86-64 machine (spec/x86-64.ts) keeps everything in physical memory, and
 * its boot-time vmalloc areas: the e820 RAM and holes, the image, what memblock hands out
 * top-down at boot (the direct map's tables, the vmemmap's buffer, the percpu units) and
 * what the page allocator hands out after (espfix's stack page, the vmalloc areas' pages),
 * as frame runs. Geometry constants: spec/x86-64-layout.ts.
 */
import { kernelLayout, type PageSize, type PagingLevels, type Pfn, type Vpn } from './address.ts';
import { PAGES_PER_SECTION, SECTION_MEMMAP_PAGES } from './clients.ts';
import { PAGE_KERNEL, type CpuFeatures, type FrameRun, type FrameUse, type Prot, type SystemConfig } from './state.ts';
import { E820, ESPFIX, GiB, HIGHMAP_END, IMAGE, M2, MMIO, PERCPU, VMALLOC, alignDown, alignUp, type FrameRange } from './x86-64-layout.ts';

export interface X86Options {
  /** RAM in GiB (3 GiB of it below 4 GiB, the rest above): default 16. */
  readonly ramGiB?: number;
  /** Hot-pluggable physical space above the RAM, no memory in it yet: default 8 GiB. */
  readonly hotplugGiB?: number;
  readonly levels?: PagingLevels;
  readonly cpus?: number;
  /** Boot-time vmalloc areas: default 300. */
  readonly vmallocAreas?: number;
  readonly features?: CpuFeatures;
}

/** 2 GiB of process memory at 4 GiB, sensitive to ASI. */
const USER = { pfn: E820.fourG, count: 2 * GiB } as const;
/** The table pool: 16,384 tables, enough for 64 GiB, 10,000 vmalloc areas and a campaign's splits. */
const POOL_TABLES = 16384;
/** PAGES_PER_SECTION (128 MiB) and its struct pages (64 bytes each): 2 MiB of vmemmap (spec/clients.ts, which memory hotplug's blocks share). */
const SECTION_FRAMES = PAGES_PER_SECTION;
export const SECTION_MEMMAP = SECTION_MEMMAP_PAGES;

const UC_MINUS: Prot = { ...PAGE_KERNEL, cache: 'UC-' };

function integer(name: string, v: number, lo: number, hi: number): number {
  if (!Number.isInteger(v) || v < lo || v > hi) throw new RangeError(`x86-64 scenario: ${name} must be an integer from ${lo} to ${hi}, got ${v}`);
  return v;
}

/** A boot-time vmalloc area: [vpn, +pages) maps [pfn, +pages). */
export interface VmArea {
  readonly vpn: Vpn;
  readonly pfn: Pfn;
  readonly pages: number;
  readonly prot: Prot;
  readonly maxPage: PageSize;
}

/** The machine: where everything lives in physical memory and in the vmalloc area. */
export interface Machine {
  readonly config: SystemConfig;
  readonly ramTop: Pfn;
  /** Runs of present memory sections [first, end), in section numbers. */
  readonly sections: readonly { readonly first: number; readonly end: number }[];
  readonly memmap: FrameRange;
  readonly percpu: Pfn;
  readonly espfix: FrameRange;
  readonly vmallocFrames: FrameRange;
  readonly areas: readonly VmArea[];
}

/** The RAM ranges, as memblock.memory holds them: the e820 RAM (the first MiB's reserved part is not memory). */
function ramRanges(ramTop: Pfn): FrameRange[] {
  return [
    { pfn: 0, count: E820.lowRamEnd },
    { pfn: E820.isaEnd, count: E820.ramBelow4gEnd - E820.isaEnd },
    { pfn: E820.fourG, count: ramTop - E820.fourG },
  ];
}

/** memblocks_present: every 128 MiB section that holds memory, in runs. */
function presentSections(ramTop: Pfn): { first: number; end: number }[] {
  const runs: { first: number; end: number }[] = [];
  for (const r of ramRanges(ramTop)) {
    const first = Math.floor(r.pfn / SECTION_FRAMES);
    const end = Math.ceil((r.pfn + r.count) / SECTION_FRAMES);
    const last = runs[runs.length - 1];
    if (last !== undefined && last.end >= first) last.end = Math.max(last.end, end);
    else runs.push({ first, end });
  }
  return runs;
}

/** The ioremaps among the boot-time areas, by index: the MMIO they map. */
const IOREMAPS: ReadonlyMap<number, FrameRange> = new Map([
  [VMALLOC.hpetArea, { pfn: MMIO.hpet, count: 1 }],
  [VMALLOC.nicArea, { pfn: MMIO.nicBar, count: MMIO.nicBarPages }],
]);

/**
 * The boot-time areas: VA from VMALLOC_START upward, lowest fit (alloc_vmap_area), each
 * followed by its guard page; frames from `framesFrom` upward (the buddy allocator's).
 */
function vmallocAreas(levels: PagingLevels, count: number, framesFrom: Pfn): { areas: VmArea[]; frames: FrameRange } {
  const start = kernelLayout(levels).vmallocStart;
  const areas: VmArea[] = [];
  let va = start;
  let pfn = framesFrom;
  for (let i = 0; i < count; i++) {
    const mmio = IOREMAPS.get(i);
    const huge = mmio === undefined && i % VMALLOC.hugeEvery === VMALLOC.hugeEvery - 1;
    const pages = mmio?.count ?? (huge ? VMALLOC.hugePages : VMALLOC.sizes[i % VMALLOC.sizes.length]!);
    const align = huge ? M2 : pages === VMALLOC.stackPages ? VMALLOC.stackPages : 1;
    va = alignUp(va, align);
    let frame: Pfn;
    if (mmio === undefined) {
      pfn = alignUp(pfn, huge ? M2 : 1);
      frame = pfn;
      pfn += pages;
    } else {
      frame = mmio.pfn;
    }
    areas.push({ vpn: va, pfn: frame, pages, prot: mmio === undefined ? PAGE_KERNEL : UC_MINUS, maxPage: huge ? '2M' : '4K' });
    va += pages + 1;
  }
  if (va - start > VMALLOC.limitPages) throw new RangeError(`x86-64 scenario: ${count} vmalloc areas do not fit the first GiB of the vmalloc area`);
  return { areas, frames: { pfn: framesFrom, count: pfn - framesFrom } };
}

export function machine(opts: X86Options): Machine {
  const ramGiB = integer('ramGiB', opts.ramGiB ?? 16, 8, 1024);
  const hotplugGiB = integer('hotplugGiB', opts.hotplugGiB ?? 8, 0, 1024);
  const cpus = integer('cpus', opts.cpus ?? 4, 1, 64);
  const levels = opts.levels ?? 4;
  if (levels !== 4 && levels !== 5) throw new RangeError(`x86-64 scenario: levels must be 4 or 5, got ${String(levels)}`);
  const ramTop = (ramGiB + 1) * GiB;
  // memblock allocates top-down: the direct map's tables (alloc_low_page) first, then the
  // vmemmap's sparse buffer (PMD-aligned), then the first percpu chunk (2 MiB atoms).
  const pool = { pfn: ramTop - POOL_TABLES, count: POOL_TABLES };
  const sections = presentSections(ramTop);
  const memmapCount = sections.reduce((n, s) => n + (s.end - s.first) * SECTION_MEMMAP, 0);
  const memmap = { pfn: alignDown(pool.pfn - memmapCount, M2), count: memmapCount };
  const percpu = alignDown(memmap.pfn - cpus * PERCPU.unitPages, M2);
  // The buddy allocator's pages: espfix's stack pages, then the vmalloc areas' frames above the user memory.
  const espfix = { pfn: percpu - Math.ceil(cpus / ESPFIX.stacksPerPage), count: Math.ceil(cpus / ESPFIX.stacksPerPage) };
  const { areas, frames: areaFrames } = vmallocAreas(levels, integer('vmallocAreas', opts.vmallocAreas ?? 300, 0, 100_000), USER.pfn + USER.count);
  if (areaFrames.pfn + areaFrames.count > espfix.pfn) throw new RangeError(`x86-64 scenario: ${ramGiB} GiB of RAM cannot hold ${areas.length} vmalloc areas`);
  const config: SystemConfig = {
    levels,
    features: opts.features ?? { pse: true, gbpages: true },
    cpus,
    maxPhysBits: 46,
    frames: ramTop + hotplugGiB * GiB,
    tablePool: pool,
  };
  return { config, ramTop, sections, memmap, percpu, espfix, vmallocFrames: areaFrames, areas };
}

/** The frame runs: what is not named here is free RAM. */
export function frames(m: Machine): FrameRun[] {
  const run = (pfn: Pfn, count: number, use: FrameUse, sensitive = false): FrameRun => ({ pfn, count, use, sensitive, noDirectMap: false });
  const named: FrameRun[] = [
    // The first MiB is reserved whole (BIOS data, the real-mode trampoline, the EBDA, VGA, ROMs).
    run(0, E820.isaEnd, 'data'),
    run(IMAGE.text, IMAGE.etext - IMAGE.text, 'kernel-text'),
    run(IMAGE.etext, IMAGE.endRodata - IMAGE.etext, 'kernel-rodata'),
    // The image's pages the kernel frees at boot: allocated until the boot frees them.
    run(IMAGE.endRodata, IMAGE.sdata - IMAGE.endRodata, 'data'),
    run(IMAGE.sdata, IMAGE.initBegin - IMAGE.sdata, 'kernel-data'),
    run(IMAGE.initBegin, IMAGE.initEnd - IMAGE.initBegin, 'data'),
    run(IMAGE.initEnd, IMAGE.brkEnd - IMAGE.initEnd, 'kernel-data'),
    run(IMAGE.brkEnd, HIGHMAP_END - IMAGE.brkEnd, 'data'),
    run(E820.ramBelow4gEnd, E820.fourG - E820.ramBelow4gEnd, 'absent'),
    run(USER.pfn, USER.count, 'user', true),
    run(m.vmallocFrames.pfn, m.vmallocFrames.count, 'data'),
    run(m.espfix.pfn, m.espfix.count, 'data'),
    run(m.percpu, m.config.cpus * PERCPU.unitPages, 'data'),
    run(m.memmap.pfn, m.memmap.count, 'data'),
    run(m.config.tablePool.pfn, m.config.tablePool.count, 'pagetable'),
    run(m.ramTop, m.config.frames - m.ramTop, 'absent'),
  ].filter((r) => r.count > 0);
  const out: FrameRun[] = [];
  let at = 0;
  for (const r of named) {
    if (r.pfn < at) throw new RangeError(`x86-64 scenario: frame runs overlap at pfn ${r.pfn}`);
    if (r.pfn > at) out.push(run(at, r.pfn - at, 'free'));
    out.push(r);
    at = r.pfn + r.count;
  }
  return out;
}
