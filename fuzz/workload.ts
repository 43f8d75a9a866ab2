/**
 * What a running kernel does to its page tables, as blocks of commands (a workload): the
 * kernel paths of module loading, the BPF JIT, processes with an LDT, vmalloc churn and
 * memory hotplug, each a start half and an end half that fuzz/lifecycles.ts puts into a
 * sequence like its own frame lifecycles, so campaigns mix them with random operations.
 * Every block takes frames and addresses of its own (a stride apart, in a zone no other
 * generator uses), so on a clean system it succeeds step by step and trips no invariant
 * under strict; under linux what it leaves (the lazy vfree's window) is a kernel finding.
 *
 * The paths, from the source:
 *   module_load    kernel/module/main.c (load_module, move_module: each section type its
 *                  own execmem_alloc, a VM_FLUSH_RESET_PERMS vmalloc in the modules range
 *                  mapped PAGE_KERNEL: mm/execmem.c __execmem_alloc, torvalds/linux
 *                  0c133b1e), then kernel/module/strict_rwx.c (torvalds/linux 0b119045)
 *                  module_enable_text_rox (set_memory_rox on text), module_enable_rodata_ro
 *                  (set_memory_ro), module_enable_data_nx (set_memory_nx); the module runs.
 *                  Unload: free_module → module_memory_free → execmem_free → vfree of each
 *                  section with vm_reset_perms (see the vm_reset_perms lifecycle).
 *   bpf_jit        kernel/bpf/core.c alloc_new_pack: a 2M pack from bpf_jit_alloc_exec
 *                  (execmem_alloc, huge where it can be), made ROX by set_memory_rox before
 *                  any program goes in, a program run from it; bpf_prog_pack_free of the
 *                  last program frees the pack (execmem_free: vfree, vm_reset_perms).
 *   ldt_process    fork (createProcess), modify_ldt's write_ldt (setLdt: a page-allocator
 *                  LDT mapped in the process's LDT slot), exit (exitProcess), the LDT's
 *                  pages freed after it (free_ldt_struct once the mm is gone).
 *   vmalloc_churn  vmalloc/vfree of a few areas, one of them huge (VM_ALLOW_HUGE_VMAP),
 *                  then vm_unmap_aliases (the purge every set_memory_* user triggers).
 *   uc_buffer      a driver's DMA buffer made uncached or write-combining through the
 *                  direct map (set_memory_uc / set_memory_wc: memtype_reserve, then CPA,
 *                  arch/x86/mm/pat/set_memory.c), one in three asking twice with another
 *                  type, which linux refuses with EBUSY (reserve_ram_pages_type: the
 *                  frames already have a type); freed after set_memory_wb.
 */
import { PAGES, kernelLayout, type PagingLevels, type Pfn, type Vpn } from '../spec/address.ts';
import type { Command } from '../spec/commands.ts';
import { vmallocRegion } from '../spec/clients.ts';
import { LDT_SLOT_PAGES } from '../spec/roots.ts';
import type { Scenario } from '../spec/scenario.ts';
import { INIT_MM, PAGE_KERNEL } from '../spec/state.ts';

export const WORKLOAD_KINDS = ['module_load', 'bpf_jit', 'ldt_process', 'vmalloc_churn', 'uc_buffer'] as const;
export type WorkloadKind = (typeof WORKLOAD_KINDS)[number];

export const isWorkloadKind = (k: string): k is WorkloadKind => (WORKLOAD_KINDS as readonly string[]).includes(k);

/** What a workload block needs of the systems beyond the core operations. */
export const WORKLOAD_NEEDS: { readonly [K in WorkloadKind]: 'core' | 'isolation' | 'clients' } = {
  module_load: 'core',
  bpf_jit: 'core',
  ldt_process: 'isolation',
  vmalloc_churn: 'clients',
  uc_buffer: 'core',
};

/** One mapping a block made: its pages at vpn map the frames at pfn. */
export interface Area {
  readonly vpn: Vpn;
  readonly pfn: Pfn;
  readonly pages: number;
}

/** What a started block left open for its end half. */
export interface OpenWork {
  readonly areas: readonly Area[];
  /** ldt_process: the pid the start half's createProcess is believed to get. */
  readonly pid?: number;
}

/** Module sizes in pages: text, rodata, data (a small driver to a large filesystem). */
const MODULE_SECTIONS: readonly (readonly [number, number, number])[] = [[2, 1, 1], [6, 2, 3], [24, 6, 8], [96, 16, 24]];
/** Module slots are this far apart in the modules range (4M: the largest module and its guards). */
const MODULE_STRIDE = 1024;
/** Modules start 256M into the modules range, past any a scenario's boot loads. */
const MODULE_BASE_OFFSET = 65536;
/** The churn's areas: 4G into the vmalloc region, past the lifecycles' (1G) and the clients' (2G, 3G). */
const CHURN_BASE_OFFSET = 4 * PAGES['1G'];
const CHURN_STRIDE = 2048;
const CHURN_PAGES: readonly number[] = [1, 4, 16];
/** DMA buffers: a page to a 2M one. */
const UC_PAGES: readonly number[] = [1, 8, 512];
const M2 = PAGES['2M'];

/** A vfree of a VM_FLUSH_RESET_PERMS area (vm_reset_perms), the frames freed after it: the vm_reset_perms lifecycle's end. */
export type ResetPermsFree = (area: Area) => Command[];

/** Frames a block of `count` frames may take, 2M-aligned, by the lifecycles' allocator (undefined: none). */
export type TakeFrames = (count: number) => Pfn | undefined;

/** The commands that hand frames [pfn, +count) to the block: the scenario's allocator first gets them back when boot left none free. */
export type Allocate = (pfn: Pfn, count: number) => Command[];

export interface WorkloadContext {
  readonly scenario: Scenario;
  readonly isolation: boolean;
  readonly clients: boolean;
  /** The pid the next createProcess gets, as the sequence believes. */
  readonly nextPid: () => number;
  readonly take: TakeFrames;
  readonly allocate: Allocate;
  readonly resetPermsFree: ResetPermsFree;
}

/** Whether the systems can run a block of `kind`. */
export function workloadOffered(kind: WorkloadKind, ctx: Pick<WorkloadContext, 'isolation' | 'clients'>): boolean {
  const need = WORKLOAD_NEEDS[kind];
  return need === 'core' || (need === 'isolation' ? ctx.isolation : ctx.clients);
}

/** The start half of a block (block: how many blocks the sequence started, for its slot; size and cpu: the sketch's draws). */
export function startWork(kind: WorkloadKind, ctx: WorkloadContext, block: number, size: number, cpu: number): { commands: Command[]; open: OpenWork } | undefined {
  if (!workloadOffered(kind, ctx)) return undefined;
  const L = kernelLayout(ctx.scenario.config.levels);
  const run = (vpn: Vpn, kind2: 'r' | 'w' | 'x'): Command => ({ op: 'access', cpu, root: INIT_MM, vpn, kind: kind2, mode: 'kernel' });
  if (kind === 'module_load') {
    const [text, rodata, data] = MODULE_SECTIONS[size % MODULE_SECTIONS.length]!;
    const pfn = ctx.take(text + rodata + data);
    if (pfn === undefined) return undefined;
    const slots = Math.floor((L.modulesEnd - L.modules - MODULE_BASE_OFFSET) / MODULE_STRIDE);
    const base = L.modules + MODULE_BASE_OFFSET + (block % slots) * MODULE_STRIDE;
    // Each section its own vmalloc area, a guard page after it.
    const t: Area = { vpn: base, pfn, pages: text };
    const r: Area = { vpn: t.vpn + text + 1, pfn: pfn + text, pages: rodata };
    const d: Area = { vpn: r.vpn + rodata + 1, pfn: pfn + text + rodata, pages: data };
    const map = (a: Area): Command => ({ op: 'map', root: INIT_MM, vpn: a.vpn, pfn: a.pfn, pages: a.pages, prot: PAGE_KERNEL, maxPage: '4K' });
    return {
      open: { areas: [t, r, d] },
      commands: [
        ...ctx.allocate(pfn, text + rodata + data),
        map(t), map(r), map(d),
        { op: 'protect', vpn: t.vpn, pages: text, change: { write: false, exec: true }, alias: true, collapse: true },
        { op: 'protect', vpn: r.vpn, pages: rodata, change: { write: false }, alias: true },
        { op: 'protect', vpn: d.vpn, pages: data, change: { exec: false }, alias: true },
        run(t.vpn, 'x'), run(r.vpn, 'r'), run(d.vpn, 'w'),
      ],
    };
  }
  if (kind === 'bpf_jit') {
    const pfn = ctx.take(M2);
    if (pfn === undefined) return undefined;
    const slots = Math.floor((L.modulesEnd - L.modules - MODULE_BASE_OFFSET) / MODULE_STRIDE);
    // The packs take the upper half of each module slot's stride: 2M-aligned, one huge leaf.
    const vpn = L.modules + MODULE_BASE_OFFSET + (block % slots) * MODULE_STRIDE + M2;
    const pack: Area = { vpn, pfn, pages: M2 };
    return {
      open: { areas: [pack] },
      commands: [
        ...ctx.allocate(pfn, M2),
        { op: 'map', root: INIT_MM, vpn, pfn, pages: M2, prot: PAGE_KERNEL },
        { op: 'protect', vpn, pages: M2, change: { write: false, exec: true }, alias: true, collapse: true },
        run(vpn + (size % M2), 'x'),
      ],
    };
  }
  if (kind === 'ldt_process') {
    const pfn = ctx.take(LDT_SLOT_PAGES);
    if (pfn === undefined) return undefined;
    const pages = 1 + (size % LDT_SLOT_PAGES);
    const pid = ctx.nextPid();
    return {
      open: { areas: [{ vpn: 0, pfn, pages }], pid },
      commands: [{ op: 'createProcess' }, ...ctx.allocate(pfn, pages), { op: 'setLdt', pid, pfn, pages }],
    };
  }
  if (kind === 'uc_buffer') {
    const pages = UC_PAGES[size % UC_PAGES.length]!;
    const pfn = ctx.take(pages);
    if (pfn === undefined) return undefined;
    const vpn = L.pageOffset + pfn;
    const first = size % 2 === 0 ? 'UC-' : 'WC';
    return {
      open: { areas: [{ vpn, pfn, pages }] },
      commands: [
        ...ctx.allocate(pfn, pages),
        { op: 'protect', vpn, pages, change: { cache: first }, alias: true },
        ...(size % 3 === 0 ? [{ op: 'protect', vpn, pages, change: { cache: first === 'WC' ? 'UC-' : 'WC' }, alias: true } as const] : []),
        run(vpn, 'w'),
      ],
    };
  }
  // vmalloc_churn: small areas and a huge one, each at its own 2M-aligned slot.
  const zone = vmallocRegion(ctx.scenario.config.levels);
  const areas: Area[] = [];
  const commands: Command[] = [];
  const sizes = [...CHURN_PAGES, ...(size % 2 === 0 ? [M2] : [])];
  for (const [i, pages] of sizes.entries()) {
    const pfn = ctx.take(pages);
    if (pfn === undefined) break;
    const vpn = zone.vpn + CHURN_BASE_OFFSET + ((block * sizes.length + i) % 65536) * CHURN_STRIDE;
    if (vpn + pages > zone.vpn + zone.pages) break;
    areas.push({ vpn, pfn, pages });
    // vmalloc allocates the pages itself: they must be free first.
    commands.push(...ctx.allocate(pfn, pages).filter((c) => c.op === 'freeFrames'));
    commands.push({ op: 'vmalloc', vpn, pfn, pages, huge: pages === M2, resetPerms: false }, run(vpn, 'w'));
  }
  return areas.length === 0 ? undefined : { open: { areas }, commands };
}

/** The coverage rules of the workload, by the one step that completes what they name (`workloadRule`). */
export const WORKLOAD_RULES = [
  { id: 'workload-module-text-rox', says: 'module_enable_text_rox: set_memory_rox of a module\'s text in the modules range' },
  { id: 'workload-bpf-pack-rox', says: "alloc_new_pack: set_memory_rox of a 2M BPF program pack in the modules range" },
] as const;

/** The workload rule a successful step completes, or undefined: by its call alone, so a hand-written trace counts too. */
export function workloadRule(c: Command, ok: boolean, levels: PagingLevels): (typeof WORKLOAD_RULES)[number]['id'] | undefined {
  if (!ok || c.op !== 'protect' || c.change.write !== false || c.change.exec !== true) return undefined;
  const L = kernelLayout(levels);
  if (c.vpn < L.modules || c.vpn + c.pages > L.modulesEnd) return undefined;
  return c.pages === M2 && c.vpn % M2 === 0 ? 'workload-bpf-pack-rox' : 'workload-module-text-rox';
}

/** The end half of a block. */
export function endWork(kind: WorkloadKind, ctx: WorkloadContext, open: OpenWork): Command[] {
  if (kind === 'module_load' || kind === 'bpf_jit') return open.areas.flatMap(ctx.resetPermsFree);
  if (kind === 'uc_buffer') {
    const b = open.areas[0]!;
    return [{ op: 'protect', vpn: b.vpn, pages: b.pages, change: { cache: 'WB' }, alias: true }, { op: 'freeFrames', pfn: b.pfn, count: b.pages }];
  }
  if (kind === 'ldt_process') {
    const ldt = open.areas[0]!;
    return [{ op: 'exitProcess', pid: open.pid! }, { op: 'freeFrames', pfn: ldt.pfn, count: ldt.pages }];
  }
  return [...open.areas.map((a): Command => ({ op: 'vfree', vpn: a.vpn })), { op: 'vmUnmapAliases' }];
}
