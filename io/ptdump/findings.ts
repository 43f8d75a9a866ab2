/**
 * What a dump alone can show about the catalogue's structure and KPTI families, as
 * findings that name the offending lines (each kind catalogued in finding-catalogue.ts,
 * which `ptspec invariants` lists).
 *
 * Structure (ids `S-dump-*`): ptdump prints a present entry only where the walk stops
 * at a leaf (pgd_large/p4d_large are 0 on x86; pud_large/pmd_large test PSE), so a
 * present pgd/p4d line or a present pud/pmd line without PSE means the text is not a
 * faithful walk or the tables are broken. Alignment and size are checked by the parser.
 *
 * KPTI (family K of spec/invariant.ts, arch/x86/mm/pti.c), with ids `K-dump-*`:
 * - no user-accessible (USR) mapping in the kernel half of any table, except the legacy
 *   vsyscall page the kernel maps for user space on purpose (map_vsyscall, 4K USR ro at
 *   VSYSCALL_ADDR 0xffffffffff600000) — the "Total Meltdown" rule;
 * - the PTI user copy maps in the kernel half only the cpu_entry_area, the espfix stacks,
 *   the LDT remap, the vsyscall page and the kernel image's text up to the end of rodata
 *   (pti_clone_user_shared, pti_clone_entry_text, pti_clone_kernel_text);
 * - inside the image, the user copy maps nothing writable: text and rodata are read-only
 *   after mark_rodata_ro, so a writable run there is data or a freed image hole — the
 *   Meltdown leak fixed by c40a56a7818c ("x86/mm/init: Remove freed kernel image areas
 *   from alias mapping");
 * - with both copies of one process: GLB pages are mapped identically in both (a global
 *   TLB entry survives the CR3 switch, so it must mean the same in both), and the user
 *   half is identical (leaf flags; the kernel copy's NX poison sits in the pgd, which
 *   ptdump does not print).
 */
import { hexToVpn, upperHalfStart, type Vpn } from '../../spec/address.ts';
import type { Family } from '../../spec/invariant.ts';
import { dumpFinding } from './finding-catalogue.ts';
import { flagsEqual, flagsText } from './flags.ts';
import { addressText } from './geometry.ts';
import { dumpRanges, type Dump, type DumpRange } from './types.ts';

export interface DumpFinding {
  readonly id: string;
  readonly family: Family;
  readonly title: string;
  /** The view the finding is about (for pair checks: the user copy's). */
  readonly view: string;
  /** Offending line numbers, in the file of that view. */
  readonly lines: readonly number[];
  readonly detail: string;
}

export function rangeText(r: DumpRange, d: Dump): string {
  const printed = r.arm64 !== undefined ? r.arm64.tokens.join(' ') : flagsText(r.flags).replace(/\s+/g, ' ').trim();
  const flags = r.flags !== null ? printed : printed === '' ? 'not present' : `not present (${printed})`;
  return `${addressText(r.start, d.paging)}-${addressText(r.end, d.paging)} ${flags} ${r.level}`;
}

/** x86-64: the upper canonical half; arm64: the TTBR1 half (bit 63 set). */
function isKernelHalf(r: DumpRange, d: Dump): boolean {
  if (d.arch === 'arm64') return r.start >= 2 ** 51;
  return d.paging !== '32-bit' && r.start >= upperHalfStart(d.paging === '5-level' ? 5 : 4);
}

export function structureFindings(d: Dump): DumpFinding[] {
  const out: DumpFinding[] = [];
  for (const r of dumpRanges(d)) {
    if (r.flags === null) continue;
    if (r.level === 'pgd' || r.level === 'p4d') {
      out.push({ ...dumpFinding('S-dump-leaf-level'), view: d.view, lines: [r.line], detail: `present ${r.level} entry printed as a leaf: ${rangeText(r, d)} (x86 has no ${r.level} leaves)` });
    } else if (r.level !== 'pte' && !r.flags.pse) {
      out.push({ ...dumpFinding('S-dump-pse'), view: d.view, lines: [r.line], detail: `present ${r.level} entry without PSE printed as a leaf: ${rangeText(r, d)} (without PSE the entry points to a table)` });
    }
  }
  return out;
}

const VSYSCALL = hexToVpn('0xffffffffff600000');

function isVsyscallPage(r: DumpRange): boolean {
  return r.start === VSYSCALL && r.end === VSYSCALL + 1 && r.flags !== null && !r.flags.rw;
}

export function userBitFindings(d: Dump): DumpFinding[] {
  return dumpRanges(d)
    .filter((r) => r.flags?.user === true && isKernelHalf(r, d) && !isVsyscallPage(r))
    .map((r) => ({
      ...dumpFinding('K-dump-usr'), view: d.view, lines: [r.line],
      detail: `user-accessible kernel-half mapping ${rangeText(r, d)} (Meltdown "Total Meltdown", CVE-2018-1038)`,
    }));
}

interface Region {
  readonly name: string;
  readonly start: Vpn;
  readonly end: Vpn;
}

const region = (name: string, start: string, end: string): Region => ({ name, start: hexToVpn(start), end: hexToVpn(end) });

/** __START_KERNEL_map .. + KERNEL_IMAGE_SIZE (1G with KASLR). */
const KERNEL_IMAGE = region('kernel image', '0xffffffff80000000', '0xffffffffc0000000');

/** What the PTI user copy may map in the kernel half (Documentation/arch/x86/x86_64/mm.rst). */
function userCopyAllowlist(d: Dump): Region[] {
  return [
    d.paging === '5-level' ? region('LDT remap', '0xff10000000000000', '0xff11000000000000') : region('LDT remap', '0xffff880000000000', '0xffff888000000000'),
    region('cpu_entry_area', '0xfffffe0000000000', '0xfffffe8000000000'),
    region('espfix', '0xffffff0000000000', '0xffffff8000000000'),
    KERNEL_IMAGE,
    region('vsyscall page', '0xffffffffff600000', '0xffffffffff601000'),
  ];
}

/** Findings on a PTI user copy on its own. */
export function userCopyFindings(d: Dump): DumpFinding[] {
  if (d.paging === '32-bit' || d.arch === 'arm64') return [];
  const allowed = userCopyAllowlist(d);
  const out: DumpFinding[] = [];
  for (const r of dumpRanges(d)) {
    if (r.flags === null || !isKernelHalf(r, d)) continue;
    let outside = r.end - r.start;
    for (const a of allowed) outside -= Math.max(0, Math.min(r.end, a.end) - Math.max(r.start, a.start));
    if (outside > 0) {
      out.push({
        ...dumpFinding('K-dump-user-allowlist'), view: d.view, lines: [r.line],
        detail: `user copy maps ${outside} kernel-half pages outside ${allowed.map((a) => a.name).join(', ')}: ${rangeText(r, d)}`,
      });
    }
    if (r.flags.rw && r.start < KERNEL_IMAGE.end && KERNEL_IMAGE.start < r.end) {
      out.push({
        ...dumpFinding('K-dump-user-image-rw'), view: d.view, lines: [r.line],
        detail: `user copy maps writable kernel-image memory ${rangeText(r, d)}: text and rodata are read-only, so this is data or a freed image hole (the Meltdown leak fixed by c40a56a7818c)`,
      });
    }
  }
  return out;
}

/**
 * Pages of `a`'s ranges chosen by `pick` that `b` prints differently (another level or
 * other flags, or not present). Pages `b` does not print at all (outside its excerpt)
 * are not judged.
 */
function mismatches(a: Dump, b: Dump, pick: (r: DumpRange) => boolean): [DumpRange, DumpRange][] {
  const out: [DumpRange, DumpRange][] = [];
  const bs = dumpRanges(b);
  let j = 0;
  for (const r of dumpRanges(a)) {
    if (!pick(r)) continue;
    while (j < bs.length && bs[j]!.end <= r.start) j++;
    for (let k = j; k < bs.length && bs[k]!.start < r.end; k++) {
      const s = bs[k]!;
      if (!flagsEqual(r.flags, s.flags) || (r.flags !== null && r.level !== s.level)) out.push([r, s]);
    }
  }
  return out;
}

/** Whether the pair is one the K checks read: both 64-bit x86 dumps of one paging mode. */
export const comparablePair = (kernel: Dump, user: Dump): boolean =>
  kernel.paging === user.paging && user.paging !== '32-bit' && user.arch !== 'arm64' && kernel.arch !== 'arm64';

/**
 * K-dump-glb on the kernel copy and the user copy of one process (current_kernel,
 * current_user): a global mapping one copy prints where the other prints nothing present.
 * Where both map, the catalogue's K3 judges (analyse.ts, pair.ts); K3 compares only
 * leaves both roots map, while a PTI kernel masks _PAGE_GLOBAL off all but the ranges it
 * clones, so this half of the rule is the dump check's alone.
 */
export function pairFindings(kernel: Dump, user: Dump): DumpFinding[] {
  if (!comparablePair(kernel, user)) return [];
  const out: DumpFinding[] = [];
  const seen = new Set<string>();
  const report = (id: 'K-dump-glb', pairs: [DumpRange, DumpRange][], kernelFirst: boolean, why: string): void => {
    for (const [x, y] of pairs) {
      const [k, u] = kernelFirst ? [x, y] : [y, x];
      const key = `${id}:${k.line}:${u.line}`;
      if (seen.has(key)) continue;
      seen.add(key);
      out.push({
        ...dumpFinding(id), view: user.view, lines: [u.line],
        detail: `${why}: ${kernel.view || 'kernel'} line ${k.line} ${rangeText(k, kernel)} vs ${user.view || 'user'} line ${u.line} ${rangeText(u, user)}`,
      });
    }
  };
  const glb = (r: DumpRange): boolean => r.flags?.global === true;
  const unmapped = (pairs: [DumpRange, DumpRange][]): [DumpRange, DumpRange][] => pairs.filter(([, s]) => s.flags === null);
  report('K-dump-glb', unmapped(mismatches(kernel, user, glb)), true, 'global kernel mapping missing in the user copy');
  report('K-dump-glb', unmapped(mismatches(user, kernel, glb)), false, 'global user-copy mapping missing in the kernel copy');
  return out;
}
