/**
 * The typed form of x86 ptdump text (arch/x86/mm/dump_pagetables.c): what a parsed
 * `/sys/kernel/debug/page_tables/*` file, a CONFIG_EFI_PGT_DUMP / CONFIG_PTDUMP dmesg
 * dump, or grep output of either, says — and nothing it does not say (ptdump prints no
 * physical addresses, so nothing here has a frame).
 *
 * Addresses are page numbers (spec/address.ts): every printed boundary is the start of a
 * page-table entry, so it is 4 KiB aligned; a boundary that is not is corrupt text and
 * the parser rejects it. `end` is exclusive; the top of the address space (printed by
 * the kernel as the wrapped address 0x0000000000000000) is `2^52` (64-bit) or `2^20`
 * (32-bit), see `addressTop`.
 */
import type { Vpn } from '../../spec/address.ts';

/** Level names as the kernel prints them (printk_prot's level_name). */
export type DumpLevel = 'pgd' | 'p4d' | 'pud' | 'pmd' | 'pte';
export const DUMP_LEVELS: readonly DumpLevel[] = ['pgd', 'p4d', 'pud', 'pmd', 'pte'];

/** Units of the size column: the kernel divides by 1024 while the size stays exact. */
export type SizeUnit = 'B' | 'K' | 'M' | 'G' | 'T' | 'P' | 'E';
export const SIZE_UNITS: readonly SizeUnit[] = ['B', 'K', 'M', 'G', 'T', 'P', 'E'];

/**
 * The printed flag column of a present entry: the entry's *own* bits, not the effective
 * protection of the walk (printk_prot prints the leaf's pgprot). `pat` is bit 7 on a pte
 * and bit 12 on a pmd/pud leaf, as the kernel prints it; `pse` is bit 7 above the pte.
 */
export interface PtFlags {
  readonly user: boolean;
  readonly rw: boolean;
  readonly pwt: boolean;
  readonly pcd: boolean;
  readonly pse: boolean;
  readonly pat: boolean;
  readonly global: boolean;
  readonly nx: boolean;
}

/** Paging mode of one dump: 32-bit (8 hex digits) or x86-64 4-/5-level (16 hex digits). */
export type Paging = '32-bit' | '4-level' | '5-level';

/**
 * Which kernel printed it: x86 (arch/x86/mm/dump_pagetables.c: lower-case level last) or
 * arm64 (arch/arm64/mm/ptdump.c: upper-case level right after the size, then pte_bits).
 */
export type DumpArch = 'x86' | 'arm64';

/**
 * The arm64 attributes with no x86 counterpart, as pte_bits prints them. An arm64 range's
 * `flags` holds the shared vocabulary: USR → user, RW/ro → rw, NX (PXN) → nx, NG → not
 * global, BLK (a block, i.e. a huge leaf) → pse; PWT/PCD/PAT stay false (arm64 names
 * memory types instead, in `memType`).
 */
export interface Arm64Attrs {
  readonly uxn: boolean;
  readonly contiguous: boolean;
  readonly accessed: boolean;
  readonly shared: boolean;
  readonly guarded: boolean;
  /** `MEM/NORMAL`, `MEM/NORMAL-TAGGED`, `DEVICE/nGnRE`, … ('' when not printed). */
  readonly memType: string;
  /** The attribute tokens as printed, for reports. */
  readonly tokens: readonly string[];
}

/** One range line `0x…-0x…   size flags level`. */
export interface DumpRange {
  /** 1-based line number in the input. */
  readonly line: number;
  readonly start: Vpn;
  /** Exclusive; `addressTop(paging)` for the range that ends at the top of the space. */
  readonly end: Vpn;
  readonly size: { readonly value: number; readonly unit: SizeUnit };
  readonly level: DumpLevel;
  /** null: not present (x86 prints 30 spaces; arm64 prints nothing, or F for an invalid entry). */
  readonly flags: PtFlags | null;
  /** arm64 dumps only. */
  readonly arm64?: Arm64Attrs;
}

/** A `---[ Name ]---` marker and the ranges printed after it (until the next marker). */
export interface DumpSection {
  /** null for ranges before the first marker (an excerpt that starts mid-dump). */
  readonly name: string | null;
  readonly line: number | null;
  readonly ranges: readonly DumpRange[];
}

/**
 * A place where the text does not show every entry: `... N entries skipped ...` (the
 * kernel's per-marker max_lines limit, ESPfix), an author's `...` elision, or a grep
 * group separator `--`. Ranges on either side must not overlap, but need not touch.
 */
export interface DumpGap {
  readonly line: number;
  readonly kind: 'skipped' | 'elision' | 'separator';
  /** Entries the kernel says it skipped (`skipped` only). */
  readonly count?: number;
}

/**
 * One printed table walk: consecutive ptdump lines of one view. A view is the grep file
 * prefix (`current_kernel`, `current_user`; '' when there is none).
 */
export interface Dump {
  readonly view: string;
  /** Index of the text segment (parts of the input separated by non-ptdump text lines). */
  readonly segment: number;
  readonly arch: DumpArch;
  readonly firstLine: number;
  readonly lastLine: number;
  readonly paging: Paging;
  /**
   * An excerpt rather than a whole walk: the text has no marker line (note_page prints
   * `---[ User Space ]---` before anything else, so whole dumps always have markers), as
   * grep output has. Ranges of a fragment must ascend without overlapping; gaps are fine.
   */
  readonly fragment: boolean;
  readonly sections: readonly DumpSection[];
  readonly gaps: readonly DumpGap[];
}

/** What the kernel's W+X checker printed (CONFIG_DEBUG_WX), kept when it is in the input. */
export type KernelVerdict =
  | { readonly type: 'found'; readonly address: string }
  | { readonly type: 'passed' }
  /** arm64 also counts non-UXN kernel pages. */
  | { readonly type: 'failed'; readonly pages: number; readonly nonUxn?: number }
  | { readonly type: 'found-non-uxn'; readonly address: string }
  | { readonly type: 'checking-user' }
  | { readonly type: 'pci-bios'; readonly pages: number };

/**
 * A line that is not part of a dump, kept with its number so nothing is dropped silently:
 * `blank`, `comment` (`#` lines: fixture headers, root shell prompts), `verdict` (the W+X
 * checker's own lines), `separator` (grep's `--`), `text` (anything else: log noise,
 * prose, prompts). `text` and `comment` lines end the current segment.
 */
export interface OtherLine {
  readonly line: number;
  readonly kind: 'blank' | 'comment' | 'verdict' | 'separator' | 'text';
  readonly text: string;
  readonly verdict?: KernelVerdict;
}

export interface ParsedText {
  readonly dumps: readonly Dump[];
  readonly other: readonly OtherLine[];
  readonly lineCount: number;
}

export interface DumpParseError {
  readonly line: number;
  readonly reason: string;
}

export type ParseResult = { readonly ok: true; readonly value: ParsedText } | { readonly ok: false; readonly errors: readonly DumpParseError[] };

/** All ranges of a dump in address order. */
export function dumpRanges(d: Dump): DumpRange[] {
  return d.sections.flatMap((s) => s.ranges);
}
