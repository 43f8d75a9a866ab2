/**
 * Print an abstract root the way the kernel prints a page table: walk the radix tree the
 * leaves imply, as mm/ptdump.c's ptdump_walk_pgd drives mm/pagewalk.c over the ranges
 * ptdump_walk_pgd_level_core (arch/x86/mm/dump_pagetables.c) gives it, and feed every
 * entry to a copy of note_page's run logic: a run continues while the level and the
 * printed flags stay equal and no address marker is crossed; a hole (an entry that is
 * none) is printed at the level of the missing entry (ptdump_hole; walk_p4d_range's
 * real_depth names a folded p4d's hole pgd), as the kernel does.
 *
 * The guard hole. On x86-64 ptdump_walk_pgd_level_core walks two ranges, [0, half of the
 * pgd) and [GUARD_HOLE_END_ADDR, top) (since v5.6, "x86/mm: fix dump_pagetables with Xen
 * PV"): the 16 pgd entries at the start of the upper half, reserved for a hypervisor
 * (Documentation/arch/x86/x86_64/mm.rst), are never visited. So no line starts in the
 * guard hole: the lower half's last run ends where the upper walk begins, and that one
 * break crosses two markers, Kernel Space and LDT remap (whose start is GUARD_HOLE_END_ADDR
 * in both paging modes), of which note_page prints one; the LDT remap marker then comes one
 * line late, after the run that starts at its address.
 *
 * Difference from the kernel, on purpose: no per-marker max_lines (the ESPfix limit of 16
 * lines truncates the kernel's text; ptspec prints every line, so parse(print(x)) = x).
 */
import { PAGES, PTRS_PER_TABLE, VPN_LIMIT, hexToVpn, pagesPerEntry, type Level, type PagingLevels, type Vpn } from '../../spec/address.ts';
import type { AbstractRoot, AbstractState, Leaf } from '../../spec/state.ts';
import { flagsEqual, flagsText, protToFlags } from './flags.ts';
import { addressText, addressTop, kernelSize } from './geometry.ts';
import type { DumpLevel, Paging, PtFlags } from './types.ts';

export interface AddressMarker {
  readonly vpn: Vpn;
  readonly name: string;
}

const marker = (addr: string, name: string): AddressMarker => ({ vpn: hexToVpn(addr), name });

/** Optional parts of the kernel's configuration that add markers (address_markers_idx). */
export interface MarkerConfig {
  /** CONFIG_KASAN: "KASAN shadow" and "KASAN shadow end" between Vmemmap and the CPU entry area. */
  readonly kasan?: boolean;
}

/**
 * The kernel's address_markers for x86-64 (dump_pagetables.c, with pt_dump_init's start
 * addresses) at their non-KASLR addresses (Documentation/arch/x86/x86_64/mm.rst), in
 * address order, which is the order note_page steps through them. Configuration assumed:
 * CONFIG_MODIFY_LDT_SYSCALL (LDT remap), CONFIG_X86_ESPFIX64, CONFIG_EFI, no
 * CONFIG_RANDOMIZE_BASE (KERNEL_IMAGE_SIZE 512M, so the modules start at -1.5G, not -1G).
 * The end of the address space (END_OF_SPACE_NR, -1) has no name and is never printed.
 */
export function kernelMarkers(levels: PagingLevels, config: MarkerConfig = {}): AddressMarker[] {
  const five = levels === 5;
  return [
    marker('0x0000000000000000', 'User Space'),
    marker('0x8000000000000000', 'Kernel Space'),
    // LDT_BASE_ADDR = GUARD_HOLE_END_ADDR: the first address the upper walk visits.
    marker(five ? '0xff10000000000000' : '0xffff880000000000', 'LDT remap'),
    marker(five ? '0xff11000000000000' : '0xffff888000000000', 'Low Kernel Mapping'),
    marker(five ? '0xffa0000000000000' : '0xffffc90000000000', 'vmalloc() Area'),
    marker(five ? '0xffd4000000000000' : '0xffffea0000000000', 'Vmemmap'),
    ...(config.kasan === true
      ? [marker(five ? '0xffdf000000000000' : '0xffffec0000000000', 'KASAN shadow'), marker('0xfffffc0000000000', 'KASAN shadow end')]
      : []),
    marker('0xfffffe0000000000', 'CPU entry Area'),
    marker('0xffffff0000000000', 'ESPfix Area'),
    // EFI_VA_END: the EFI window grows down from -4G to -68G; the marker names its bottom.
    marker('0xffffffef00000000', 'EFI Runtime Services'),
    marker('0xffffffff80000000', 'High Kernel Mapping'),
    marker('0xffffffffa0000000', 'Modules'),
    marker('0xffffffffff000000', 'End Modules'),
    // FIXADDR_START depends on the configuration; this is the 4.18 value of fixture x86-ptdump-01.
    marker('0xffffffffff576000', 'Fixmap Area'),
  ];
}

/**
 * The pgd entries the walk skips: GUARD_HOLE_SIZE is 16 << PGDIR_SHIFT from the start of
 * the upper half (GUARD_HOLE_BASE_ADDR), 8T with 4-level and 4P with 5-level paging.
 */
export const GUARD_HOLE_PGD_ENTRIES = 16;

function inGuardHole(pgdIndex: number): boolean {
  return pgdIndex >= PTRS_PER_TABLE / 2 && pgdIndex < PTRS_PER_TABLE / 2 + GUARD_HOLE_PGD_ENTRIES;
}

const LEVEL_NAMES: Readonly<Record<Level, DumpLevel>> = { 1: 'pte', 2: 'pmd', 3: 'pud', 4: 'p4d', 5: 'pgd' };

/** note_page's state: the run being collected and the marker it is in. */
class RunPrinter {
  private started = false;
  private start: Vpn = 0;
  private level: DumpLevel = 'pgd';
  private flags: PtFlags | null = null;
  private markerIndex = 0;
  readonly lines: string[] = [];

  constructor(private readonly markers: readonly AddressMarker[], private readonly paging: Paging) {}

  private nextMarker(): Vpn {
    return this.markers[this.markerIndex + 1]?.vpn ?? Infinity;
  }

  note(addr: Vpn, level: DumpLevel, flags: PtFlags | null): void {
    if (!this.started) {
      this.started = true;
      this.lines.push(`---[ ${this.markers[0]!.name} ]---`);
    } else if (!flagsEqual(flags, this.flags) || level !== this.level || addr >= this.nextMarker()) {
      this.lines.push(rangeLine(this.start, addr, this.level, this.flags, this.paging));
      // One marker per break, as the kernel advances st->marker once (fixture 01's LDT quirk).
      if (addr >= this.nextMarker()) {
        this.markerIndex++;
        this.lines.push(`---[ ${this.markers[this.markerIndex]!.name} ]---`);
      }
    } else {
      return;
    }
    this.start = addr;
    this.level = level;
    this.flags = flags;
  }

  finish(): string[] {
    if (this.started) this.lines.push(rangeLine(this.start, addressTop(this.paging), this.level, this.flags, this.paging));
    return this.lines;
  }
}

/** One range line exactly as note_page prints it: `0x%016lx-0x%016lx   %9lu%c <flags><level>`. */
export function rangeLine(start: Vpn, end: Vpn, level: DumpLevel, flags: PtFlags | null, paging: Paging): string {
  const size = kernelSize(end - start);
  return `${addressText(start, paging)}-${addressText(end, paging)}   ${String(size.value).padStart(9)}${size.unit} ${flagsText(flags)}${level}`;
}

/** First page number of pgd entry `i`: the upper half is sign-extended (normalize_addr). */
function pgdEntryVpn(i: number, levels: PagingLevels): Vpn {
  const span = pagesPerEntry(levels);
  const base = i * span;
  return i < PTRS_PER_TABLE / 2 ? base : base + (VPN_LIMIT - PTRS_PER_TABLE * span);
}

function walkTable(p: RunPrinter, level: Level, levels: PagingLevels, base: Vpn, leaves: readonly Leaf[], from: number, to: number): void {
  const span = pagesPerEntry(level);
  const name = level === levels ? 'pgd' : LEVEL_NAMES[level];
  let j = from;
  for (let i = 0; i < PTRS_PER_TABLE; i++) {
    const top = level === levels;
    const a = top ? pgdEntryVpn(i, levels) : base + i * span;
    let k = j;
    while (k < to && leaves[k]!.vpn < a + span) k++;
    const first = leaves[j];
    // Not walked, so not printed: whatever a root maps there, the kernel's text never shows it.
    if (top && inGuardHole(i)) {
      j = k;
      continue;
    }
    if (k === j) p.note(a, name, null);
    else if (k === j + 1 && first!.vpn === a && PAGES[first!.size] === span) p.note(a, name, protToFlags(first!.prot, name));
    else if (level === 1) throw new RangeError(`leaves overlap or are misaligned at page ${a}: not a page table`);
    else walkTable(p, (level - 1) as Level, levels, a, leaves, j, k);
    j = k;
  }
}

/** The ptdump lines of one root, markers included. */
export function printRoot(root: AbstractRoot, levels: PagingLevels, markers: readonly AddressMarker[] = kernelMarkers(levels)): string[] {
  const paging: Paging = levels === 5 ? '5-level' : '4-level';
  const p = new RunPrinter(markers, paging);
  walkTable(p, levels, levels, 0, root.leaves, 0, root.leaves.length);
  return p.finish();
}

/**
 * The whole state as ptdump text. One root prints as the kernel's debugfs file does; with
 * several, each root's lines carry a grep-style prefix `root<id>:` so the parser reads
 * them back as separate views.
 */
export function printState(state: AbstractState): string {
  const roots = state.roots;
  const texts = roots.map((root) => {
    const lines = printRoot(root, state.config.levels);
    return (roots.length === 1 ? lines : lines.map((l) => `root${root.id}:${l}`)).join('\n');
  });
  return `${texts.join('\n')}\n`;
}
