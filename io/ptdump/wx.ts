/**
 * The kernel's own W+X verdict (CONFIG_DEBUG_WX), recomputed from a dump.
 *
 * note_page (arch/x86/mm/dump_pagetables.c) calls note_wx for every finished run whose
 * effective protection has RW set and NX clear, adding (end - start) / PAGE_SIZE pages,
 * and WARN_ONCEs "Found insecure W+X mapping at address …" with the first such run's
 * start. A dump prints the leaf's own flags, not the effective ones; upper levels could
 * only take RW away or add NX, so counting on printed flags can over-count, never miss.
 *
 * 32-bit CONFIG_PCI_BIOS (note_wx, since v5.1): when the PCI BIOS is in use, a run inside
 * [PAGE_OFFSET + BIOS_BEGIN, PAGE_OFFSET + BIOS_END] = [0xc00a0000, 0xc0100000] (the
 * default 3G/1G split) is reported with "PCI BIOS W+X mapping N pages" and not counted.
 * Whether the PCI BIOS is in use is not in the dump: `pciBios` says so.
 *
 * arm64 (arch/arm64/mm/ptdump.c, ptdump_check_wx): only [PAGE_OFFSET, top] of init_mm is
 * walked — here, the TTBR1 half (bit 63 set); a run is W+X when neither PTE_RDONLY nor
 * PTE_PXN is set (rw and not nx in the shared flags), and every run without PTE_UXN is
 * counted separately as non-UXN. The verdict line then names both counts.
 */
import { addressText } from './geometry.ts';
import { isWx } from './flags.ts';
import { dumpRanges, type Dump, type DumpRange } from './types.ts';

export interface WxVerdict {
  /** 4 KiB pages counted, as the kernel's st->wx_pages. */
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

/**
 * The checker's lines as the kernel prints them. Modern kernels print the address with
 * %pS, which shows a raw address as 0x + 16 hex digits when no symbol covers it.
 */
export function wxVerdictLines(d: Dump, v: WxVerdict, userCopy: boolean): string[] {
  if (d.arch === 'arm64') return arm64VerdictLines(d, v);
  const out: string[] = [];
  if (userCopy) out.push('x86/mm: Checking user space page tables');
  const firstExempt = v.exempt[0];
  if (firstExempt !== undefined) out.push(`x86/mm: PCI BIOS W+X mapping ${firstExempt.end - firstExempt.start} pages`);
  const first = v.ranges[0];
  if (first === undefined) {
    out.push('x86/mm: Checked W+X mappings: passed, no W+X pages found.');
  } else {
    out.push(`x86/mm: Found insecure W+X mapping at address ${addressText(first.start, d.paging)}`);
    out.push(`x86/mm: Checked W+X mappings: FAILED, ${v.pages} W+X pages found.`);
  }
  return out;
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
