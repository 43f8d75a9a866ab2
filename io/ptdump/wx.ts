/**
 * The W+X count of a dump by the kernel's rule (CONFIG_DEBUG_WX), and the lines the
 * kernel's checker prints for the tables it checks (table.ts says which those are).
 *
 * note_page (arch/x86/mm/dump_pagetables.c) calls note_wx for every finished run whose
 * effective protection has RW set and NX clear, adding (end - start) / PAGE_SIZE pages;
 * the first such run of the boot WARN_ONCEs "Found insecure W+X mapping at address …".
 * A dump prints the leaf's own flags, not the effective ones; upper levels could only
 * take RW away or add NX, so counting on printed flags can over-count, never miss.
 *
 * Once per boot. WARN_ONCE and pr_warn_once keep one flag per call site for the life of
 * the kernel, so the warning is printed for the first W+X run the first check meets and
 * never again: not by the user-copy check that follows (pti_finalize runs after
 * mark_readonly), nor by a later run through debugfs check_wx_pages (mm/ptdump.c). Each
 * check still prints its own "Checked W+X mappings" line. `BootOnce` carries those flags
 * from one check to the next.
 *
 * 32-bit CONFIG_PCI_BIOS (note_wx, since v5.1): when the PCI BIOS is in use, a run inside
 * [PAGE_OFFSET + BIOS_BEGIN, PAGE_OFFSET + BIOS_END] = [0xc00a0000, 0xc0100000] (the
 * default 3G/1G split) is reported once per boot with "PCI BIOS W+X mapping N pages" and
 * not counted. Whether the PCI BIOS is in use is not in the dump: `pciBios` says so.
 *
 * arm64 (arch/arm64/mm/ptdump.c, ptdump_check_wx): only [PAGE_OFFSET, top] of init_mm is
 * walked — here, the TTBR1 half (bit 63 set); a run is W+X when neither PTE_RDONLY nor
 * PTE_PXN is set (rw and not nx in the shared flags), and every run without PTE_UXN is
 * counted separately as non-UXN. The verdict line then names both counts.
 */
import { pageToAddr } from '../../spec/address.ts';
import { addressText } from './geometry.ts';
import { isWx } from './flags.ts';
import type { KernelChecker } from './table.ts';
import { dumpRanges, type Dump, type DumpRange } from './types.ts';

export interface WxVerdict {
  /** 4 KiB pages counted by the rule, as the kernel's st->wx_pages would be if it walked this table. */
  readonly pages: number;
  /** The counted runs, in address order. */
  readonly ranges: readonly DumpRange[];
  /** Runs the 32-bit PCI BIOS exemption left out. */
  readonly exempt: readonly DumpRange[];
  /** arm64: kernel pages without UXN, and the first such run. */
  readonly nonUxnPages: number;
  readonly firstNonUxn: DumpRange | null;
}

const TTBR1_START = 2 ** 51;

const PCI_BIOS_START = 0xc00a0000 / 4096;
const PCI_BIOS_END = 0xc0100000 / 4096;

export function kernelWx(d: Dump, opts: { readonly pciBios?: boolean } = {}): WxVerdict {
  const ranges: DumpRange[] = [];
  const exempt: DumpRange[] = [];
  const nonUxn: DumpRange[] = [];
  for (const r of dumpRanges(d)) {
    if (d.arch === 'arm64') {
      if (r.start < TTBR1_START || r.flags === null) continue;
      if (r.arm64?.uxn === false) nonUxn.push(r);
    }
    if (!isWx(r.flags)) continue;
    const bios = opts.pciBios === true && d.paging === '32-bit' && r.start >= PCI_BIOS_START && r.end <= PCI_BIOS_END;
    (bios ? exempt : ranges).push(r);
  }
  const pages = (rs: readonly DumpRange[]): number => rs.reduce((n, r) => n + (r.end - r.start), 0);
  return { pages: pages(ranges), ranges, exempt, nonUxnPages: pages(nonUxn), firstNonUxn: nonUxn[0] ?? null };
}

/** The once-per-boot flags of note_wx: its WARN_ONCE and its pr_warn_once. */
export interface BootOnce {
  readonly wxWarned: boolean;
  readonly pciBiosWarned: boolean;
}

export const BOOT_START: BootOnce = { wxWarned: false, pciBiosWarned: false };

/**
 * %pS of an address no symbol covers: __sprint_symbol (kernel/kallsyms.c) falls back to
 * `0x%lx`, unpadded. (A real kernel names the symbol when the run starts inside one, as
 * in the kernel image; the dump does not say which.)
 */
function symbolText(r: DumpRange): string {
  return `0x${pageToAddr(r.start).toString(16)}`;
}

/**
 * The lines one check prints, in the order it prints them, and the flags after it.
 * x86: ptdump_walk_user_pgd_level_checkwx announces itself first; note_wx then warns at
 * the first exempt and the first counted run of the boot, in address order; the walk
 * ends with the verdict line of ptdump_walk_pgd_level_core.
 */
export function checkerLines(d: Dump, v: WxVerdict, checker: KernelChecker, once: BootOnce): { lines: string[]; once: BootOnce } {
  if (d.arch === 'arm64') return { lines: arm64VerdictLines(d, v), once };
  const out: string[] = [];
  if (checker === 'ptdump_walk_user_pgd_level_checkwx') out.push('x86/mm: Checking user space page tables');
  let { wxWarned, pciBiosWarned } = once;
  const runs = [...v.exempt.map((r) => ({ r, exempt: true })), ...v.ranges.map((r) => ({ r, exempt: false }))].sort((a, b) => a.r.start - b.r.start);
  for (const { r, exempt } of runs) {
    if (exempt && !pciBiosWarned) {
      out.push(`x86/mm: PCI BIOS W+X mapping ${r.end - r.start} pages`);
      pciBiosWarned = true;
    } else if (!exempt && !wxWarned) {
      out.push(`x86/mm: Found insecure W+X mapping at address ${symbolText(r)}`);
      wxWarned = true;
    }
  }
  out.push(v.pages === 0 ? 'x86/mm: Checked W+X mappings: passed, no W+X pages found.' : `x86/mm: Checked W+X mappings: FAILED, ${v.pages} W+X pages found.`);
  return { lines: out, once: { wxWarned, pciBiosWarned } };
}

/** arm64's lines: WARN_ONCE texts (with the raw address for %p/%pS) and the pr_warn/pr_info verdict. */
function arm64VerdictLines(d: Dump, v: WxVerdict): string[] {
  // note_page runs note_prot_uxn before note_prot_wx on each run: the earlier run warns first.
  const warnings: [DumpRange, string][] = [];
  if (v.firstNonUxn !== null) warnings.push([v.firstNonUxn, 'Found non-UXN mapping']);
  if (v.ranges[0] !== undefined) warnings.push([v.ranges[0], 'Found insecure W+X mapping']);
  warnings.sort((a, b) => a[0].start - b[0].start);
  const out = warnings.map(([r, what]) => `arm64/mm: ${what} at address ${addressText(r.start, d.paging)}`);
  out.push(
    v.pages > 0 || v.nonUxnPages > 0
      ? `Checked W+X mappings: FAILED, ${v.pages} W+X pages found, ${v.nonUxnPages} non-UXN pages found`
      : 'Checked W+X mappings: passed, no W+X pages found',
  );
  return out;
}
