/**
 * The real x86-64 machine as a scenario: a PC's physical memory (e820 holes below 4 GiB,
 * hot-pluggable space above the RAM) and the boot that lays out init_mm as the kernel
 * does, at the addresses of Documentation/arch/x86/x86_64/mm.rst (no KASLR), in core
 * operations only, so any implementation can boot it. The geometry is spec/x86-64-layout.ts,
 * where everything lies in physical memory spec/x86-64-machine.ts.
 *
 * What the boot cannot say as the kernel does, and says instead:
 * - strict refuses a writable kernel-text or rodata frame (P3, P4) and W+X (P1, P2), so
 *   the image and the direct-map alias of text and rodata are mapped with the protections
 *   mark_rodata_ro leaves, not RWX first (head_64.S) and changed after;
 * - strict refuses a free frame mapped outside the direct map (D4), so every image page
 *   the kernel frees is made non-present in the high map first (set_memory_np_noalias,
 *   which free_kernel_image_pages does only with PTI), and the frames from _brk_end to
 *   the 2 MiB boundary, which the high map's last leaf maps but the kernel hands to the
 *   page allocator, stay allocated ('data');
 * - a table has one parent and none is empty (S11): espfix's PTE table is not shared by
 *   every PMD entry of its PMD table, so its 32 clones of the stack page are the ones of
 *   one PTE table; preallocate_vmalloc_pages' empty PUD tables are not made; the debug
 *   store buffers' PAGE_NONE entries are not made either.
 */
import { kernelLayout, type PageSize, type Pfn, type Vpn } from './address.ts';
import { FIXADDR_TOP } from './clients.ts';
import type { Command } from './commands.ts';
import { ldtRemap } from './roots.ts';
import type { Region, Scenario } from './scenario.ts';
import { PAGE_KERNEL, PAGE_KERNEL_RO, PAGE_KERNEL_ROX, type Prot } from './state.ts';
import { CEA, E820, ESPFIX, GiB, HIGHMAP_END, IMAGE, M2, MMIO, PERCPU, fixmapSlots } from './x86-64-layout.ts';
import { SECTION_MEMMAP, frames, machine, type Machine, type X86Options } from './x86-64-machine.ts';

export type { X86Options } from './x86-64-machine.ts';

const UC: Prot = { ...PAGE_KERNEL, cache: 'UC' };

const mapCmd = (vpn: Vpn, pfn: Pfn, pages: number, prot: Prot, maxPage?: PageSize): Command =>
  ({ op: 'map', root: 0, vpn, pfn, pages, prot, ...(maxPage === undefined ? {} : { maxPage }) });

/**
 * The direct map (arch/x86/mm/init.c, gregkh/linux 213b3407 init_mem_mapping): the ISA
 * range first, whole; then memory_map_top_down from the top of memory, whose chunks
 * init_range_memory_mapping clips to the memblock RAM ranges. Every chunk goes through
 * split_mem_range, whose adjust_range_page_size_mask lets a 2M or 1G range extend to the
 * whole block when that block is all memory, and phys_pmd_init and phys_pud_init
 * (arch/x86/mm/init_64.c, gregkh/linux 6bf94737) then map the block from its start
 * (pfn_pmd and pfn_pud mask the frame to the leaf size, arch/x86/include/asm/pgtable.h):
 * so however the chunks fall, each RAM range ends up mapped with the largest leaf its
 * alignment allows, which `map`'s greedy placement gives with one map per range. The RAM
 * below 4 GiB is cut where the image's text and rodata lie: their alias is read-only
 * (mark_rodata_ro's set_memory_ro reaches it through cpa_process_alias, and the gap after
 * rodata is writable again once free_init_pages' set_memory_rw went through it).
 */
function directMap(m: Machine): Command[] {
  const base = kernelLayout(m.config.levels).pageOffset;
  const dm = (from: Pfn, to: Pfn, prot = PAGE_KERNEL): Command => mapCmd(base + from, from, to - from, prot);
  return [
    dm(0, E820.isaEnd),
    dm(E820.fourG, m.ramTop),
    dm(E820.isaEnd, IMAGE.text),
    dm(IMAGE.text, IMAGE.endRodata, PAGE_KERNEL_RO),
    dm(IMAGE.endRodata, E820.ramBelow4gEnd),
  ];
}

/**
 * The high map (head_64.S's 2M PMDs over the image, trimmed by cleanup_highmap to
 * [_text, roundup(_brk_end, PMD_SIZE))) as mark_rodata_ro leaves it: text ROX, rodata RO,
 * the rest RW NX (arch/x86/mm/init_64.c, gregkh/linux 6bf94737 cleanup_highmap, mark_rodata_ro).
 */
function highMap(m: Machine): Command[] {
  const base = kernelLayout(m.config.levels).kernelText;
  const image = (from: Pfn, to: Pfn, prot: Prot): Command => mapCmd(base + from, from, to - from, prot, '2M');
  return [
    image(IMAGE.text, IMAGE.etext, PAGE_KERNEL_ROX),
    image(IMAGE.etext, IMAGE.endRodata, PAGE_KERNEL_RO),
    // The rodata/data gap as free_init_pages leaves it before it goes: set_memory_rw'd, NX.
    image(IMAGE.endRodata, IMAGE.sdata, PAGE_KERNEL),
    image(IMAGE.sdata, HIGHMAP_END, PAGE_KERNEL),
  ];
}

/**
 * Freeing the image's unused pages (arch/x86/mm/init.c, gregkh/linux 213b3407
 * free_kernel_image_pages, free_initmem; init_64.c mark_rodata_ro): free_initmem the init
 * sections, then mark_rodata_ro the rodata/data gap (no text/rodata gap: _etext is
 * 2 MiB-aligned); each non-present in the high map, without touching the direct-map alias
 * (set_memory_np_noalias), then the frames back to the page allocator.
 */
function freeImagePages(m: Machine): Command[] {
  const base = kernelLayout(m.config.levels).kernelText;
  const freed: readonly (readonly [Pfn, Pfn])[] = [[IMAGE.initBegin, IMAGE.initEnd], [IMAGE.endRodata, IMAGE.sdata]];
  return freed.flatMap(([from, to]): Command[] => [
    { op: 'protect', vpn: base + from, pages: to - from, change: { present: false }, alias: false },
    { op: 'freeFrames', pfn: from, count: to - from },
  ]);
}

/**
 * The vmemmap (arch/x86/mm/init_64.c, gregkh/linux 6bf94737 vmemmap_populate): each
 * present section's struct pages at vmemmapStart + pfn * 64 / PAGE_SIZE, with 2M leaves
 * (vmemmap_populate_hugepages, PAGE_KERNEL_LARGE) or 4K ones without PSE, backed by the
 * node's sparse buffer, which the sections take in order (mm/sparse.c sparse_init_nid,
 * sparse_buffer_init, sparse_buffer_alloc). Sections wholly in a hole get none.
 */
function vmemmap(m: Machine): Command[] {
  const base = kernelLayout(m.config.levels).vmemmapStart;
  let pfn = m.memmap.pfn;
  return m.sections.map((s) => {
    const pages = (s.end - s.first) * SECTION_MEMMAP;
    const c = mapCmd(base + s.first * SECTION_MEMMAP, pfn, pages, PAGE_KERNEL, m.config.features.pse ? '2M' : '4K');
    pfn += pages;
    return c;
  });
}

/**
 * cpu_entry_area (arch/x86/mm/cpu_entry_area.c, xinli-intel/linux-fred-public b70ab5c4
 * setup_cpu_entry_area, percpu_setup_exception_stacks, percpu_setup_debug_store; no KASLR,
 * so cea_offset(cpu) is cpu): the read-only IDT page first (arch/x86/kernel/idt.c,
 * gregkh/linux 2c142b63 idt_map_in_cea, idt_table being the first page of bss), then per
 * CPU the GDT and TSS read-only, the entry stack, the exception stacks between their guard
 * pages and the debug store RW; cea_set_pte sets _PAGE_GLOBAL on each. Then
 * idt_setup_apic_and_irq_gates' set_memory_ro of idt_table itself, alias included.
 */
function cpuEntryArea(m: Machine): Command[] {
  const L = kernelLayout(m.config.levels);
  const page = (vpn: Vpn, pfn: Pfn, pages: number, prot: Prot): Command => mapCmd(vpn, pfn, pages, prot, '4K');
  const out: Command[] = [page(L.cpuEntryArea, IMAGE.bssStart, 1, PAGE_KERNEL_RO)];
  for (let cpu = 0; cpu < m.config.cpus; cpu++) {
    const cea = L.cpuEntryArea + 1 + cpu * CEA.pages;
    const unit = m.percpu + cpu * PERCPU.unitPages;
    out.push(
      page(cea + CEA.gdt, unit + PERCPU.gdt, 1, PAGE_KERNEL_RO),
      page(cea + CEA.entryStack, unit + PERCPU.entryStack, 1, PAGE_KERNEL),
      page(cea + CEA.tss, unit + PERCPU.tss, CEA.tssPages, PAGE_KERNEL_RO),
      ...CEA.estacks.map((at, k) => page(cea + at, unit + PERCPU.estacks + k * CEA.estackPages, CEA.estackPages, PAGE_KERNEL)),
      page(cea + CEA.debugStore, unit + PERCPU.debugStore, 1, PAGE_KERNEL),
    );
  }
  out.push({ op: 'protect', vpn: L.kernelText + IMAGE.bssStart, pages: 1, change: { write: false }, alias: true });
  return out;
}

/**
 * espfix (arch/x86/kernel/espfix_64.c, torvalds/linux 0604aa87 init_espfix_ap): one
 * read-only stack page per 64 CPUs, its PTE set every 64 KiB of the PTE table at
 * ESPFIX_BASE_ADDR (page_random and slot_random taken as 0, as the image without KASLR).
 */
function espfix(m: Machine): Command[] {
  const base = kernelLayout(m.config.levels).espfix;
  return Array.from({ length: m.espfix.count }, (_, page) =>
    Array.from({ length: ESPFIX.pteClones }, (__, n) => mapCmd(base + page + n * ESPFIX.pteStride, m.espfix.pfn + page, 1, PAGE_KERNEL_RO, '4K'))).flat();
}

/** The fixmap's local APIC and IO-APIC pages, UC (spec/x86-64-layout.ts fixmapSlots). */
function fixmap(m: Machine): Command[] {
  const slot = fixmapSlots(m.config.cpus);
  return [mapCmd(FIXADDR_TOP - slot.apic, MMIO.localApic, 1, UC, '4K'), mapCmd(FIXADDR_TOP - slot.ioApic, MMIO.ioApic, 1, UC, '4K')];
}

/** The boot, in the kernel's order: setup_arch, mm init, trap_init, then kernel_init's frees. */
function boot(m: Machine): Command[] {
  return [
    ...directMap(m),
    ...highMap(m),
    ...fixmap(m),
    ...vmemmap(m),
    ...cpuEntryArea(m),
    ...espfix(m),
    ...m.areas.map((a) => mapCmd(a.vpn, a.pfn, a.pages, a.prot, a.maxPage)),
    ...freeImagePages(m),
  ];
}

/**
 * pti_init and pti_finalize (arch/x86/mm/pti.c, gregkh/linux 53c2f13c): the kernel clones
 * the cpu_entry_area and espfix as whole p4d entries (pti_clone_user_shared,
 * pti_setup_espfix64), which ptspec's clone levels do not have: their 2 MiB blocks are
 * cloned at PMD level instead, the same leaves. Then the entry text, the last 2 MiB of
 * text (pti_clone_entry_text, PTI_LEVEL_KERNEL_IMAGE). pti_clone_kernel_text clones
 * nothing on a CPU with PCID.
 */
function isolationBoot(m: Machine): Command[] {
  const L = kernelLayout(m.config.levels);
  const ceaPages = 1 + m.config.cpus * CEA.pages;
  return [
    { op: 'ptiClone', vpn: L.cpuEntryArea, pages: ceaPages, level: 'pmd' },
    { op: 'ptiClone', vpn: L.espfix, pages: M2, level: 'pmd' },
    { op: 'ptiClone', vpn: L.kernelText + IMAGE.etext - M2, pages: M2, level: 'pmd' },
  ];
}

function regions(m: Machine): Region[] {
  const L = kernelLayout(m.config.levels);
  const last = m.areas[m.areas.length - 1];
  const lastSection = m.sections[m.sections.length - 1]!;
  const slot = fixmapSlots(m.config.cpus);
  return [
    { name: 'LDT remap', ...ldtRemap(m.config.levels) },
    { name: 'direct map', vpn: L.pageOffset, pages: m.config.frames },
    { name: 'vmalloc', vpn: L.vmallocStart, pages: last === undefined ? M2 : last.vpn + last.pages + 1 - L.vmallocStart },
    { name: 'vmemmap', vpn: L.vmemmapStart, pages: lastSection.end * SECTION_MEMMAP },
    { name: 'cpu_entry_area', vpn: L.cpuEntryArea, pages: 1 + m.config.cpus * CEA.pages },
    { name: 'espfix', vpn: L.espfix, pages: M2 },
    { name: 'kernel text', vpn: L.kernelText + IMAGE.text, pages: IMAGE.etext - IMAGE.text },
    { name: 'kernel rodata', vpn: L.kernelText + IMAGE.etext, pages: IMAGE.sdata - IMAGE.etext },
    { name: 'kernel data', vpn: L.kernelText + IMAGE.sdata, pages: HIGHMAP_END - IMAGE.sdata },
    { name: 'modules', vpn: L.modules, pages: L.modulesEnd - L.modules },
    { name: 'fixmap', vpn: FIXADDR_TOP - slot.ioApic, pages: slot.ioApic + 1 },
  ];
}

/** The real x86-64 machine booted as the kernel boots it (the `x86-64` scenarios). */
export function x86Scenario(opts: X86Options = {}): Scenario {
  const m = machine(opts);
  return {
    name: 'x86-64',
    description:
      `x86-64 as Linux boots it: ${m.ramTop / GiB - 1} GiB of RAM (e820 holes below 4 GiB, ${(m.config.frames - m.ramTop) / GiB} GiB hot-pluggable), ` +
      `${m.config.levels}-level, ${m.config.cpus} CPUs; direct map, image, vmemmap, cpu_entry_area, espfix, fixmap, ${m.areas.length} vmalloc areas`,
    config: m.config,
    frames: frames(m),
    boot: boot(m),
    isolationBoot: isolationBoot(m),
    regions: regions(m),
  };
}

