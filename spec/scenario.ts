/**
 * Scenarios: a machine (config and physical memory) and the boot sequence that builds
 * its kernel page tables, as commands. Model and impl boot from the same scenario through
 * the same operations, so the boot itself is checked like any other sequence.
 *
 * The built-in `kernel` scenario is a small x86-64 machine laid out as the kernel lays
 * itself out (Documentation/arch/x86/x86_64/mm.rst, arch/x86/mm/init_64.c; with
 * `levels: 5`, at the 5-level layout's addresses):
 * the direct map of all RAM at PAGE_OFFSET with the largest pages alignment allows, the
 * kernel image at __START_KERNEL_map (text ROX, rodata RO, data RW NX) whose direct-map
 * alias is read-only for text and rodata (mark_rodata_ro through cpa_process_alias), a
 * few vmalloc mappings and the cpu_entry_area.
 */
import { PAGES, kernelLayout, type PageSize, type Pfn, type Vpn } from './address.ts';
import type { Command } from './commands.ts';
import { PAGE_KERNEL, PAGE_KERNEL_RO, PAGE_KERNEL_ROX, type FrameRun, type FrameUse, type SystemConfig } from './state.ts';
import type { SystemSetup } from './system.ts';
import { x86Scenario } from './x86-64.ts';

export interface Scenario extends SystemSetup {
  readonly name: string;
  readonly description: string;
  readonly boot: readonly Command[];
  /**
   * What boot does besides on a system with the isolation capability, after `boot`
   * (pti_init and pti_finalize: the clones every user copy starts from).
   */
  readonly isolationBoot?: readonly Command[];
  /** Named VA regions, for address arbitraries, coverage and reports. */
  readonly regions: readonly Region[];
}

export interface Region {
  readonly name: string;
  readonly vpn: Vpn;
  readonly pages: number;
}

const MiB = 256; // 4 KiB frames per MiB
const GiB = 1024 * MiB;

function run(pfn: Pfn, count: number, use: FrameUse, flags: { sensitive?: boolean } = {}): FrameRun {
  return { pfn, count, use, sensitive: flags.sensitive ?? false, noDirectMap: false };
}

/** Physical layout of the built-in machine: 4 GiB of RAM. */
export const KERNEL_IMAGE = {
  textPfn: 16 * MiB,
  textPages: 10 * MiB,
  rodataPfn: 26 * MiB,
  rodataPages: 6 * MiB,
  dataPfn: 32 * MiB,
  dataPages: 8 * MiB,
} as const;

export const TABLE_POOL = { pfn: 64 * MiB, count: 32 * MiB } as const;

function kernelConfig(overrides: Partial<SystemConfig> = {}): SystemConfig {
  return {
    levels: 4,
    features: { pse: true, gbpages: true },
    cpus: 4,
    maxPhysBits: 46,
    frames: 4 * GiB,
    tablePool: TABLE_POOL,
    ...overrides,
  };
}

/** The runs below `frames`: a machine with less memory keeps the low part of the layout. */
function clipRuns(runs: readonly FrameRun[], frames: number): FrameRun[] {
  return runs.filter((r) => r.pfn < frames).map((r) => (r.pfn + r.count <= frames ? r : { ...r, count: frames - r.pfn }));
}

function kernelFrames(config: SystemConfig): FrameRun[] {
  const k = KERNEL_IMAGE;
  const pool = config.tablePool;
  const poolEnd = pool.pfn + pool.count;
  const reservedEnd = TABLE_POOL.pfn + TABLE_POOL.count;
  // A pool elsewhere (above user memory) leaves the reserved area ordinary memory.
  const inReserved = pool.pfn >= TABLE_POOL.pfn && poolEnd <= reservedEnd;
  return clipRuns([
    run(0, 16 * MiB, 'data'),
    run(k.textPfn, k.textPages, 'kernel-text'),
    run(k.rodataPfn, k.rodataPages, 'kernel-rodata'),
    run(k.dataPfn, k.dataPages, 'kernel-data'),
    run(40 * MiB, 24 * MiB, 'data'),
    ...(inReserved ? [run(pool.pfn, pool.count, 'pagetable')] : [run(TABLE_POOL.pfn, TABLE_POOL.count, 'data')]),
    // A smaller pool leaves the rest of its reserved area as ordinary memory.
    ...(inReserved && poolEnd < reservedEnd ? [run(poolEnd, reservedEnd - poolEnd, 'data')] : []),
    run(96 * MiB, 2 * GiB - 96 * MiB, 'data'),
    // User memory is sensitive to ASI: a restricted root must never map it.
    run(2 * GiB, 2 * GiB, 'user', { sensitive: true }),
    ...(inReserved ? [] : [run(pool.pfn, pool.count, 'pagetable')]),
  ], config.frames);
}

/** The boot sequence: direct map, kernel image, vmalloc, cpu_entry_area. */
function kernelBoot(config: SystemConfig): Command[] {
  const k = KERNEL_IMAGE;
  const L = kernelLayout(config.levels);
  const dm = (pfn: Pfn, pages: number, prot = PAGE_KERNEL): Command => ({ op: 'map', root: 0, vpn: L.pageOffset + pfn, pfn, pages, prot });
  const image = (pfn: Pfn, pages: number, prot = PAGE_KERNEL, maxPage: PageSize = '2M'): Command => ({
    op: 'map', root: 0, vpn: L.kernelText + pfn, pfn, pages, prot, maxPage,
  });
  return [
    // phys_pud_init/phys_pmd_init: RAM below the image, the read-only image alias, the rest.
    dm(0, k.textPfn),
    dm(k.textPfn, k.textPages + k.rodataPages, PAGE_KERNEL_RO),
    dm(k.dataPfn, config.frames - k.dataPfn),
    // __START_KERNEL_map + phys: the image after mark_rodata_ro.
    image(k.textPfn, k.textPages, PAGE_KERNEL_ROX),
    image(k.rodataPfn, k.rodataPages, PAGE_KERNEL_RO),
    image(k.dataPfn, k.dataPages, PAGE_KERNEL),
    // vmalloc: a 4K-mapped area and a huge-mapped one (vmap with VM_ALLOW_HUGE_VMAP).
    { op: 'map', root: 0, vpn: L.vmallocStart + 1, pfn: 100 * MiB, pages: 64, prot: PAGE_KERNEL, maxPage: '4K' },
    { op: 'map', root: 0, vpn: L.vmallocStart + PAGES['2M'] * 2, pfn: 104 * MiB, pages: 4 * PAGES['2M'], prot: PAGE_KERNEL },
    // cpu_entry_area: read-only GDT/entry-stack pages per CPU.
    { op: 'map', root: 0, vpn: L.cpuEntryArea + 1, pfn: 41 * MiB, pages: 8, prot: PAGE_KERNEL_RO, maxPage: '4K' },
  ];
}

function kernelRegions(config: SystemConfig): Region[] {
  const k = KERNEL_IMAGE;
  const L = kernelLayout(config.levels);
  return [
    { name: 'direct map', vpn: L.pageOffset, pages: config.frames },
    { name: 'vmalloc', vpn: L.vmallocStart, pages: 16 * GiB },
    { name: 'cpu_entry_area', vpn: L.cpuEntryArea, pages: 2 * PAGES['2M'] },
    { name: 'kernel text', vpn: L.kernelText + k.textPfn, pages: k.textPages },
    { name: 'kernel rodata', vpn: L.kernelText + k.rodataPfn, pages: k.rodataPages },
    { name: 'kernel data', vpn: L.kernelText + k.dataPfn, pages: k.dataPages },
    { name: 'modules', vpn: L.modules, pages: L.modulesEnd - L.modules },
  ];
}

/**
 * The high-tables machine: the pool sits right above the 4 GiB of the others (pfn
 * 0x100000 and up, as on a machine whose memblock allocations come from the top of
 * memory), so every table entry pointing at a table holds a PFN with bits in its high
 * 32-bit word. The direct map grows by the pool's 32 MiB, sixteen 2M leaves: boot stays
 * as cheap as the kernel scenario's.
 */
const HIGH_TABLE_POOL = { pfn: 4 * GiB, count: TABLE_POOL.count } as const;

/** Memory of the no-PSE machine: the layout up to the vmalloc frames, rounded up. */
const NO_PSE_FRAMES = 128 * MiB;

export function kernelScenario(overrides: Partial<SystemConfig> = {}): Scenario {
  const config = kernelConfig(overrides);
  return {
    name: 'kernel',
    description: 'x86-64, 4-level, PSE and GB pages, 4 GiB: direct map, kernel image, vmalloc, cpu_entry_area',
    config,
    frames: kernelFrames(config),
    boot: kernelBoot(config),
    isolationBoot: kernelIsolationBoot(config),
    regions: kernelRegions(config),
  };
}

/**
 * pti_init's and pti_finalize's clones on x86-64 (arch/x86/mm/pti.c): the entry text at
 * PMD level (PTI_LEVEL_KERNEL_IMAGE), here the first 2M leaf of the image's text, whose
 * first page holds __entry_text_start. The cpu_entry_area and espfix are cloned as whole
 * p4d entries by the kernel (pti_clone_p4d), which ptspec's clone levels do not have, and
 * pti_clone_kernel_text runs only without PCID and with pti=auto: neither is cloned here.
 */
function kernelIsolationBoot(config: SystemConfig): Command[] {
  const L = kernelLayout(config.levels);
  return [{ op: 'ptiClone', vpn: L.kernelText + KERNEL_IMAGE.textPfn, pages: PAGES['2M'], level: 'pmd' }];
}

/**
 * The boot of a scenario on a system with the isolation capability: with PTI the kernel is
 * "mostly non-Global" (arch/x86/mm/init.c probe_page_size_mask: __default_kernel_pte_mask
 * loses _PAGE_GLOBAL, and PAGE_KERNEL and its kin are masked with it), so every boot
 * mapping is made without G, but the cpu_entry_area's and espfix's, which both page-table
 * copies share: cea_set_pte sets _PAGE_GLOBAL on every present entry itself
 * (arch/x86/mm/cpu_entry_area.c, gregkh/linux v6.18.38), and init_espfix_ap masks its
 * PTEs with __supported_pte_mask, which PTI leaves alone (arch/x86/kernel/espfix_64.c), where
 * the scenario clones them into the user copy (pti_clone_user_shared). Then the scenario's isolation clones (pti_clone_pgtable sets G on what it clones, in
 * both copies, under linux).
 */
export function ptiBoot(scenario: Scenario): Command[] {
  const L = kernelLayout(scenario.config.levels);
  // [cpu_entry_area, end of the espfix pgd slot), where the scenario clones it into the user
  // copy too (the toy layout clones only the entry text: its cpu_entry_area stays non-global).
  const sharedEnd = L.espfix + PAGES['1G'] * 512;
  const clones = (scenario.isolationBoot ?? []).flatMap((c) => (c.op === 'ptiClone' ? [c] : []));
  const shared = (c: Command): boolean => c.op === 'map' && c.vpn >= L.cpuEntryArea && c.vpn + c.pages <= sharedEnd
    && clones.some((k) => k.vpn <= c.vpn && c.vpn + c.pages <= k.vpn + k.pages);
  const masked = scenario.boot.map((c): Command => (c.op === 'map' && !shared(c) ? { ...c, prot: { ...c.prot, global: false } } : c));
  return [...masked, ...(scenario.isolationBoot ?? [])];
}

/** The scenario a command runs on when it names none: the real x86-64 machine (spec/x86-64.ts). */
export const DEFAULT_SCENARIO = 'x86-64';

/** Built-in scenarios by name (`--scenario NAME`). */
export const SCENARIOS: Readonly<Record<string, () => Scenario>> = {
  kernel: () => kernelScenario(),
  // Boot needs 11 tables; with 24 a few splits exhaust the pool, so ENOMEM and the
  // atomicity of a failed operation are exercised as often as success.
  'kernel-small-pool': () => ({
    ...kernelScenario({ tablePool: { pfn: TABLE_POOL.pfn, count: 24 } }),
    name: 'kernel-small-pool',
    description: 'the kernel scenario with a 24-table pool: ENOMEM is reachable',
  }),
  // LA57: the same machine at the 5-level layout's addresses (direct map at 0xff11000000000000).
  'kernel-5level': () => ({
    ...kernelScenario({ levels: 5 }),
    name: 'kernel-5level',
    description: 'the kernel scenario with 5-level paging, laid out as mm.rst says for LA57',
  }),
  // A CPU without PDPE1GB (many older and virtual CPUs): the direct map is 2M leaves, so
  // 1G requests cap at 2M and collapse to 1G is EINVAL size.
  'kernel-no-gbpages': () => ({
    ...kernelScenario({ features: { pse: true, gbpages: false } }),
    name: 'kernel-no-gbpages',
    description: 'the kernel scenario on a CPU with PSE but no 1G pages: the direct map is 2M leaves',
  }),
  // Without PSE every leaf is 4K, so booting 4 GiB would make a million leaves; 128 MiB
  // still holds the whole layout up to the vmalloc frames (which end at 112 MiB) and
  // boots with about 41,000 leaves, few enough for a campaign to stay fast.
  'kernel-no-pse': () => ({
    ...kernelScenario({ features: { pse: false, gbpages: false }, frames: NO_PSE_FRAMES }),
    name: 'kernel-no-pse',
    description: 'the kernel scenario on a CPU without 2M or 1G pages: every leaf is 4K, so memory is cut to 128 MiB (no user memory) to keep boot at ~41,000 leaves',
  }),
  'kernel-high-tables': () => ({
    ...kernelScenario({ frames: HIGH_TABLE_POOL.pfn + HIGH_TABLE_POOL.count, tablePool: HIGH_TABLE_POOL }),
    name: 'kernel-high-tables',
    description: 'the kernel scenario with its table pool above 4 GiB (pfn 0x100000 and up): table entries hold PFNs in their high word',
  }),
  // The real machine (spec/x86-64.ts): 16 GiB of a PC's memory booted as Linux boots it.
  'x86-64': () => x86Scenario(),
  'x86-64-5level': () => ({ ...x86Scenario({ levels: 5 }), name: 'x86-64-5level' }),
  // At scale: 64 GiB and 10,000 boot-time vmalloc areas.
  'x86-64-64g': () => ({ ...x86Scenario({ ramGiB: 64, vmallocAreas: 10_000 }), name: 'x86-64-64g' }),
};

/**
 * The scenario called `name`, or undefined. Names come from command lines and failure
 * files, so a plain lookup would find `constructor` or `toString` on the prototype.
 */
export function scenarioNamed(name: string): (() => Scenario) | undefined {
  return Object.hasOwn(SCENARIOS, name) ? SCENARIOS[name] : undefined;
}
