/**
 * Which page table a dump shows, and whether the kernel's W+X checker (CONFIG_DEBUG_WX)
 * ever walks it.
 *
 * The kernel checks exactly two tables, once each per boot (arch/x86/mm/dump_pagetables.c):
 * init_mm's own (ptdump_walk_pgd_level_checkwx on INIT_PGD, from debug_checkwx in
 * init/main.c mark_readonly, after mark_rodata_ro) and, with PTI, init_mm's user copy
 * (ptdump_walk_user_pgd_level_checkwx on kernel_to_user_pgdp(INIT_PGD), from
 * debug_checkwx_user in arch/x86/mm/pti.c pti_finalize). Every other table is only
 * dumped: the EFI table (arch/x86/platform/efi/efi_64.c efi_dump_pagetable at boot with
 * CONFIG_EFI_PGT_DUMP, debugfs page_tables/efi; both call ptdump_walk_pgd_level* with
 * checkwx false) and a process's (page_tables/current_kernel, current_user;
 * arch/x86/mm/debug_pagetables.c). So only a dump of one of the two checked tables gets
 * the kernel's verdict; on every other dump ptspec counts W+X by the same rule, but that
 * count is ptspec's, not something the kernel would ever print.
 *
 * How the text tells them apart, first match wins:
 * 1. The name, when it is one debugfs gives (the grep prefix, else the file's base name):
 *    `kernel` / `kernel_page_tables` is init_mm, `efi` the EFI table, `current_kernel` and
 *    `current_user` a process's tables.
 * 2. A present entry in the EFI window [EFI_VA_END, EFI_VA_START) = -68G..-4G: the EFI
 *    runtime mappings live only in efi_pgd (mm.rst: "not part of any other kernel PGD").
 * 3. A present entry in the User Space section: init_mm's user half is empty, and so is
 *    its user copy's, so this is a process's table (or the EFI table's 1:1 maps).
 * 4. A whole walk with neither is init_mm's table, or its PTI user copy when it is the
 *    user view; an excerpt without markers says nothing of which table it is.
 * Even a checked table's excerpt (no markers, or lines elided with `...` or grep's `--`)
 * gets no kernel verdict: the kernel counts every entry, so part of them cannot give its
 * count. The `... N entries skipped ...` of the ESPfix marker's max_lines is the kernel's
 * own text and does not make an excerpt (the checker prints nothing and counts all; the
 * espfix stacks it hides are mapped read-only and NX, init_espfix_ap).
 * arm64 has one table, kernel_page_tables (init_mm's TTBR1 half), which its
 * ptdump_check_wx walks.
 */
import { hexToVpn } from '../../spec/address.ts';
import { dumpRanges, type Dump } from './types.ts';

export type TableKind = 'init_mm' | 'init_mm-user' | 'efi_pgd' | 'process' | 'excerpt';

/** The kernel function that checks a table for W+X, by the name the kernel gives it. */
export type KernelChecker = 'ptdump_walk_pgd_level_checkwx' | 'ptdump_walk_user_pgd_level_checkwx' | 'ptdump_check_wx';

export interface DumpTable {
  readonly kind: TableKind;
  /** null: the kernel never checks this table, so it has no kernel verdict. */
  readonly checkedBy: KernelChecker | null;
  /** Why the dump is taken for this table, in a sentence. */
  readonly why: string;
}

const EFI_VA_END = hexToVpn('0xffffffef00000000');
const EFI_VA_START = hexToVpn('0xffffffff00000000');

const NOT_CHECKED = 'the kernel checks only init_mm and its PTI user copy';

const NAMED: Readonly<Record<string, Omit<DumpTable, 'why'> & { readonly what: string }>> = {
  kernel: { kind: 'init_mm', checkedBy: 'ptdump_walk_pgd_level_checkwx', what: "init_mm's table" },
  kernel_page_tables: { kind: 'init_mm', checkedBy: 'ptdump_walk_pgd_level_checkwx', what: "init_mm's table" },
  efi: { kind: 'efi_pgd', checkedBy: null, what: `the EFI table, dumped but never checked (${NOT_CHECKED})` },
  current_kernel: { kind: 'process', checkedBy: null, what: `a process's kernel copy (${NOT_CHECKED})` },
  current_user: { kind: 'process', checkedBy: null, what: `a process's PTI user copy (${NOT_CHECKED})` },
};

/** The debugfs name of a dump: its grep view, else the file's base name. */
function debugfsName(d: Dump, file: string): string {
  return d.view !== '' ? d.view : (file.split('/').pop() ?? '');
}

/** `user`: the dump is a PTI user copy (`--user FILE` or a `*user*` view). */
export function identifyTable(d: Dump, file: string, user: boolean): DumpTable {
  const table = tableOf(d, file, user);
  if (table.checkedBy === null || !isExcerpt(d)) return table;
  return { kind: table.kind, checkedBy: null, why: `${table.why}; but an excerpt (no markers, or elided lines), and the kernel's count covers the whole walk` };
}

/** Part of a walk: no markers, or lines left out by an author or grep (the kernel's own skipped lines do not count). */
function isExcerpt(d: Dump): boolean {
  return d.fragment || d.gaps.some((g) => g.kind !== 'skipped');
}

function tableOf(d: Dump, file: string, user: boolean): DumpTable {
  if (d.arch === 'arm64') return { kind: 'init_mm', checkedBy: 'ptdump_check_wx', why: "arm64's kernel_page_tables: init_mm's kernel half" };
  const name = debugfsName(d, file);
  const named = NAMED[name];
  if (named !== undefined) return { kind: named.kind, checkedBy: named.checkedBy, why: `named ${name}: ${named.what}` };
  const present = dumpRanges(d).filter((r) => r.flags !== null);
  const efi = d.paging !== '32-bit' && present.find((r) => r.start < EFI_VA_START && EFI_VA_END < r.end);
  if (efi) return { kind: 'efi_pgd', checkedBy: null, why: `line ${efi.line} maps the EFI runtime window (-68G..-4G), which only efi_pgd maps: dumped but never checked` };
  const userSpace = d.sections.find((s) => s.name === 'User Space')?.ranges.find((r) => r.flags !== null);
  if (userSpace) return { kind: 'process', checkedBy: null, why: `line ${userSpace.line} maps user space, which init_mm and its user copy leave empty: ${NOT_CHECKED}` };
  if (isExcerpt(d)) return { kind: 'excerpt', checkedBy: null, why: 'an excerpt (no markers, or elided lines): which table it shows is not in the text' };
  return user
    ? { kind: 'init_mm-user', checkedBy: 'ptdump_walk_user_pgd_level_checkwx', why: "an empty user half and the user view: init_mm's PTI user copy" }
    : { kind: 'init_mm', checkedBy: 'ptdump_walk_pgd_level_checkwx', why: "an empty user half: init_mm's table" };
}

/**
 * Whether the machine has NX, as the dumps show it. Both checks return before printing
 * anything when `__supported_pte_mask` lacks _PAGE_NX (ptdump_walk_pgd_level_checkwx,
 * ptdump_walk_user_pgd_level_checkwx): no CPU NX, `noexec=off`, or 32-bit without PAE.
 * Every pgprot the kernel builds goes through that mask, so without NX no entry prints
 * `NX`; with it, init_mm's direct map (PAGE_KERNEL) always does. One NX anywhere: NX;
 * a whole dump with present entries and none: no NX; otherwise the text does not say.
 */
export function nxShown(dumps: readonly Dump[]): boolean | undefined {
  const x86 = dumps.filter((d) => d.arch === 'x86');
  if (x86.some((d) => dumpRanges(d).some((r) => r.flags?.nx === true))) return true;
  if (x86.some((d) => !d.fragment && dumpRanges(d).some((r) => r.flags !== null))) return false;
  return undefined;
}
