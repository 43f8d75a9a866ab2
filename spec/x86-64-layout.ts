/**
 * The geometry of the real x86-64 machine (spec/x86-64.ts builds its scenario): the
 * physical memory map, the kernel image's sections, and the per-CPU and fixed pages the
 * kernel maps at boot, each as the kernel source lays it out. All numbers are frames or
 * pages (spec/address.ts); the comments give the byte addresses a kernel log prints.
 */
import { PAGES, type Pfn } from './address.ts';
import { FIX_KMAP_BEGIN, KM_MAX_IDX } from './clients.ts';

export const MiB = 256; // 4 KiB frames per MiB
export const GiB = 1024 * MiB;
export const M2 = PAGES['2M'];
export const G1 = PAGES['1G'];

export const alignDown = (n: number, to: number): number => Math.floor(n / to) * to;
export const alignUp = (n: number, to: number): number => Math.ceil(n / to) * to;

// ---- the e820 map: a PC with its firmware's holes below 4 GiB ----

/**
 * The low RAM and its holes, as a PC's BIOS reports them (a QEMU pc machine with SeaBIOS
 * gives exactly these numbers): RAM [0, 0x9f000), the EBDA, VGA and BIOS ROM up to 1 MiB
 * (reserved, yet mapped: init_mem_mapping maps [0, ISA_END_ADDRESS) whole), RAM from
 * 1 MiB up to just below 3 GiB, the firmware's reserved tail (ACPI tables, 132 KiB), then
 * the PCI hole to 4 GiB, and the rest of the RAM above 4 GiB.
 */
export const E820 = {
  /** 0x9f000: the end of the first RAM range. */
  lowRamEnd: 0x9f,
  /** ISA_END_ADDRESS, 1 MiB (arch/x86/include/asm/e820/types.h). */
  isaEnd: 0x100,
  /** 0xbffdf000: the end of the RAM below 4 GiB; [it, 3 GiB) is e820-reserved, not memory. */
  ramBelow4gEnd: 0xbffdf,
  /** The PCI hole: MMIO, the IO-APIC, HPET and local APIC, the flash. */
  pciHole: 3 * GiB,
  fourG: 4 * GiB,
} as const;

/** MMIO the boot maps (the PCI hole's devices, at their usual PC addresses). */
export const MMIO = {
  /** IO_APIC_DEFAULT_PHYS_BASE 0xfec00000 (arch/x86/include/asm/apicdef.h). */
  ioApic: 0xfec00,
  /** HPET_ADDRESS 0xfed00000, the HPET's registers (one page). */
  hpet: 0xfed00,
  /** APIC_DEFAULT_PHYS_BASE 0xfee00000 (arch/x86/include/asm/apicdef.h). */
  localApic: 0xfee00,
  /** A PCI device's 128 KiB register BAR (an e1000's BAR0 on a QEMU pc machine). */
  nicBar: 0xfebc0,
  nicBarPages: 32,
} as const;

// ---- the kernel image (arch/x86/kernel/vmlinux.lds.S, gregkh/linux 11747c52) ----

/**
 * The image's sections at physical 16 MiB (CONFIG_PHYSICAL_START, phys_base 0, so _text
 * is __START_KERNEL = 0xffffffff81000000), with a distro kernel's sizes and the alignment
 * the linker script gives on x86-64:
 *   _text .. _etext         text, 18 MiB; ALIGN_ENTRY_TEXT_END puts the entry text last and
 *                           ends .text on a PMD boundary, so _etext is 2 MiB-aligned and
 *                           X86_ALIGN_RODATA_BEGIN leaves no text/rodata gap;
 *   _etext .. __end_rodata  rodata, 10 MiB + 396 KiB;
 *   .. _sdata               X86_ALIGN_RODATA_END: __end_rodata_hpage_align, the 2 MiB
 *                           boundary after rodata, where .data starts; the pages between
 *                           are the "rodata/data gap" mark_rodata_ro frees;
 *   _sdata .. __init_begin  data, the bug and ORC tables, the vvar page;
 *   __init_begin .. __init_end  init text and data (page-aligned), freed by free_initmem;
 *   __init_end .. _brk_end  smp_locks, nosave data, bss (idt_table first: __page_aligned_bss)
 *                           and the brk pages used at boot.
 * No CONFIG_AMD_MEM_ENCRYPT: no bss..decrypted section to free.
 */
export const IMAGE = {
  text: 0x1000,
  etext: 0x2200,
  endRodata: 0x2c63,
  sdata: 0x2e00,
  initBegin: 0x3352,
  initEnd: 0x3796,
  bssStart: 0x3799,
  brkEnd: 0x3c1f,
} as const;

/**
 * roundup(_brk_end, PMD_SIZE): cleanup_highmap clears the high map's PMDs outside
 * [_text, this), and mark_rodata_ro's set_memory_nx runs to it (arch/x86/mm/init_64.c,
 * gregkh/linux 6bf94737 cleanup_highmap, mark_rodata_ro). The frames from _brk_end up to it
 * are no part of the image; the high map's last 2M leaf still maps them.
 */
export const HIGHMAP_END = alignUp(IMAGE.brkEnd, M2);

// ---- cpu_entry_area (arch/x86/include/asm/cpu_entry_area.h, xinli-intel/linux-fred-public 9ad3f58e) ----

/**
 * One CPU's struct cpu_entry_area, page by page (x86-64, Intel, no SEV-ES): the GDT; the
 * entry stack (struct entry_stack_page, one page); the TSS (struct tss_struct: the
 * hardware TSS and struct x86_io_bitmap's two 8 KiB bitmaps, page-aligned: 5 pages,
 * arch/x86/include/asm/processor.h, gregkh/linux 5ce1264b); struct cea_exception_stacks,
 * a guard page before each 8 KiB stack (EXCEPTION_STKSZ without KASAN) of DF, NMI, DB,
 * MCE, VC and VC2 and a top guard, 19 pages; the debug store (one page); the PEBS/BTS
 * buffers (64 KiB each, arch/x86/include/asm/intel_ds.h, torvalds/linux 10043e02), which
 * percpu_setup_debug_store fills with PAGE_NONE entries only.
 */
export const CEA = {
  gdt: 0,
  entryStack: 1,
  tss: 2,
  tssPages: 5,
  /** The exception stacks setup_cpu_entry_area maps (DF, NMI, DB, MCE), as page offsets; VC and VC2 only with SEV-ES. */
  estacks: [8, 11, 14, 17],
  estackPages: 2,
  debugStore: 26,
  /** sizeof(struct cpu_entry_area) / PAGE_SIZE. */
  pages: 59,
} as const;

/**
 * One CPU's unit of the first percpu chunk ("Embedded 64 pages/cpu",
 * pcpu_embed_first_chunk), where the pages the cpu_entry_area aliases live: gdt_page,
 * entry_stack_storage, cpu_tss_rw, exception_stacks (no guard pages in the storage),
 * cpu_debug_store, at these offsets.
 */
export const PERCPU = {
  unitPages: 64,
  gdt: 0,
  entryStack: 1,
  tss: 2,
  estacks: 7,
  debugStore: 15,
} as const;

// ---- espfix (arch/x86/kernel/espfix_64.c, torvalds/linux 0604aa87) ----

/**
 * ESPFIX_STACKS_PER_PAGE: 64-byte ministacks, so one page serves 64 CPUs; its PTE is set
 * every PTE_STRIDE (64 KiB / PAGE_SIZE) entries of one PTE table (ESPFIX_PTE_CLONES).
 */
export const ESPFIX = {
  stacksPerPage: 64,
  pteStride: 16,
  pteClones: 32,
} as const;

// ---- the fixmap (arch/x86/include/asm/fixmap.h, torvalds/linux 00ed905a) ----

/**
 * The permanent fixmap slots a booted machine in xAPIC mode has set: FIX_APIC_BASE (the
 * local APIC, register_lapic_address) and FIX_IO_APIC_BASE_0 (io_apic_init_mappings),
 * both set_fixmap_nocache: FIXMAP_PAGE_NOCACHE, UC. The kernel's enum puts them right
 * after FIX_DBGP_BASE and FIX_EARLYCON_MEM_BASE, below VSYSCALL_PAGE; ptspec's enum has the
 * kmap_local slots there (spec/clients.ts FIX_KMAP_BEGIN), so these follow the last CPU's
 * slots, in the kernel's order. The vsyscall page is not mapped: map_vsyscall sets
 * VSYSCALL_PAGE only in vsyscall=emulate, and the default (LEGACY_VSYSCALL_XONLY) leaves no
 * PTE at all (arch/x86/entry/vsyscall/vsyscall_64.c, gregkh/linux adaf98cf).
 */
export function fixmapSlots(cpus: number): { readonly apic: number; readonly ioApic: number } {
  const end = FIX_KMAP_BEGIN + KM_MAX_IDX * cpus;
  return { apic: end, ioApic: end + 1 };
}

// ---- boot-time vmalloc (mm/vmalloc.c, gregkh/linux 04aa71da) ----

/**
 * The boot-time vmalloc areas, a fixed pattern: mostly vmap'ed kernel stacks (THREAD_SIZE,
 * 4 pages, THREAD_ALIGN-aligned) and small vmalloc()s, every 100th a 2 MiB
 * VM_ALLOW_HUGE_VMAP area (PMD-aligned VA and frames), each followed by its guard page
 * (no VM_NO_GUARD), plus two ioremaps of MMIO (UC-, as ioremap() maps). They stay in
 * the first GiB of the vmalloc region: the fuzzer's own areas start 1 GiB in
 * (fuzz/lifecycles.ts, fuzz/clients.ts).
 */
export const VMALLOC = {
  sizes: [4, 1, 2, 4, 8, 4, 1, 16, 4, 3, 2, 4],
  stackPages: 4,
  hugeEvery: 100,
  hugePages: M2,
  /** Which areas are ioremaps (HPET, the NIC's BAR). */
  hpetArea: 2,
  nicArea: 5,
  limitPages: G1,
} as const;

/** A frame range. */
export interface FrameRange {
  readonly pfn: Pfn;
  readonly count: number;
}
