/**
 * `ptspec dump --scenario x86-64` reads like a real kernel's ptdump: region by region, the
 * same page-size mix (which of pte/pmd/pud carry leaves) and the same flag columns as the
 * real dumps of test/fixtures/kernel, where those are comparable, and `ptspec check`
 * passes it. Everything is read through io/ptdump's parser.
 *
 * Where each region is in each dump. Ours are at mm.rst's addresses (no KASLR). The real
 * ones are found by what the addresses hold, since their markers mislead:
 *   fixture 01 (4.18, efi_pgd at boot, KASLR, PTI, before mark_rodata_ro): the EFI dump runs
 *     before pt_dump_init (an initcall) has set the markers of the randomized regions, so
 *     they advance one per pgd-level line and the direct map (page_offset_base
 *     0xffff8dc300000000, 32 GiB of RAM), the vmalloc area (0xffffb51ac0000000) and the
 *     vmemmap (0xffffe68f80000000) all print after the "Vmemmap" marker; the cpu_entry_area's
 *     lines straddle the "LDT remap" marker (its QUIRK header); the image is at
 *     0xffffffffa0000000 and the modules from 0xffffffffc0000000 (KERNEL_IMAGE_SIZE 1G with
 *     KASLR); the fixmap is where ours is.
 *   fixture 04 (4.17/4.18, PTI, no KASLR, non-PCID): the High Kernel Mapping of
 *     current_kernel, before and after c40a56a7818c; the image where ours is.
 *   fixture 05 (4.16/4.17, PTI): `grep GLB current_user`: the cpu_entry_area and the entry text.
 *   fixture 06 (4.12/4.13 la57): a 5-level fragment, ESPfix at its fixed address.
 * Which columns compare, per region, and why, is said at each test. GLB: the real dumps all
 * run with PTI, which makes the kernel "mostly non-Global" (probe_page_size_mask), so GLB
 * is compared against our PTI boot (`--root kernel`), except for the cpu_entry_area and
 * espfix, which cea_set_pte and init_espfix_ap map global whatever PTI says: those against
 * our plain boot.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parsePtdump } from '../io/ptdump/parse.ts';
import { dumpRanges, type Dump, type DumpLevel, type DumpRange, type PtFlags } from '../io/ptdump/types.ts';
import { VPN_LIMIT, hexToVpn, vpnToHex } from '../spec/address.ts';
import { ptspec } from './cli.ts';

function dumpsOf(text: string): readonly Dump[] {
  const r = parsePtdump(text);
  if (!r.ok) throw new Error(JSON.stringify(r.errors.slice(0, 3)));
  return r.value.dumps;
}
const fixture = (name: string): readonly Dump[] => dumpsOf(readFileSync(new URL(`./fixtures/kernel/${name}`, import.meta.url), 'utf8'));

/** The ranges of a dump that start in [lo, hi) (hi absent: the top of the address space). */
const within = (d: Dump, lo: string, hi?: string): DumpRange[] =>
  dumpRanges(d).filter((r) => r.start >= hexToVpn(lo) && r.start < (hi === undefined ? VPN_LIMIT : hexToVpn(hi)));
const present = (rs: readonly DumpRange[]): DumpRange[] => rs.filter((r) => r.flags !== null);
/** Which levels carry leaves. */
const mix = (rs: readonly DumpRange[]): DumpLevel[] => [...new Set(present(rs).map((r) => r.level))].sort();
/** Every present range's value of one flag column. */
const column = (rs: readonly DumpRange[], flag: keyof PtFlags): boolean[] => [...new Set(present(rs).map((r) => r.flags![flag]))].sort();
/** Not-present ranges between the first and the last present one: holes inside the region. */
const holes = (rs: readonly DumpRange[]): DumpRange[] => {
  const first = rs.findIndex((r) => r.flags !== null);
  const last = rs.length - 1 - [...rs].reverse().findIndex((r) => r.flags !== null);
  return rs.slice(first, last + 1).filter((r) => r.flags === null);
};
/** PSE exactly on the pmd and pud leaves. */
const pseOnLargeLeaves = (rs: readonly DumpRange[]): boolean => present(rs).every((r) => r.flags!.pse === (r.level !== 'pte'));

/**
 * Each region as [start, end) in fixture 01 (found by role, see the header) and in ours
 * (mm.rst, no KASLR); the end absent: the top of the address space.
 */
type Span = readonly [start: string, end?: string];
type RegionName = 'direct map' | 'vmalloc' | 'vmemmap' | 'cpu_entry_area' | 'espfix' | 'high map' | 'modules' | 'fixmap';
const REGIONS: Readonly<Record<RegionName, { readonly real: Span; readonly ours: Span }>> = {
  'direct map': { real: ['0xffff8dc300000000', '0xffff8dcc00000000'], ours: ['0xffff888000000000', '0xffff890000000000'] },
  vmalloc: { real: ['0xffffb51ac0000000', '0xffffb51b00000000'], ours: ['0xffffc90000000000', '0xffffc90040000000'] },
  vmemmap: { real: ['0xffffe68f80000000', '0xffffe69000000000'], ours: ['0xffffea0000000000', '0xffffea0040000000'] },
  cpu_entry_area: { real: ['0xfffffe0000000000', '0xffffff0000000000'], ours: ['0xfffffe0000000000', '0xffffff0000000000'] },
  espfix: { real: ['0xffffff0000000000', '0xffffff8000000000'], ours: ['0xffffff0000000000', '0xffffff8000000000'] },
  'high map': { real: ['0xffffffffa0000000', '0xffffffffc0000000'], ours: ['0xffffffff80000000', '0xffffffffa0000000'] },
  modules: { real: ['0xffffffffc0000000', '0xffffffffff000000'], ours: ['0xffffffffa0000000', '0xffffffffff000000'] },
  fixmap: { real: ['0xffffffffff576000'], ours: ['0xffffffffff576000'] },
};

/** A region's ranges in fixture 01, in our dump and in our PTI dump. */
function region(name: RegionName): { real: DumpRange[]; mine: DumpRange[]; pti: DumpRange[] } {
  const { real, ours: at } = REGIONS[name];
  return { real: within(real01, ...real), mine: within(ours, ...at), pti: within(oursPti, ...at) };
}

let ours: Dump;
let oursPti: Dump;
let ours5: Dump;
let oursText: string;
const real01 = fixture('x86-ptdump-01.txt')[0]!;
const real04 = fixture('x86-ptdump-04.txt');
const real05 = fixture('x86-ptdump-05.txt')[0]!;
const real06 = fixture('x86-ptdump-06.txt')[0]!;

beforeAll(async () => {
  const [plain, pti, five] = await Promise.all([
    ptspec('dump', '--scenario', 'x86-64'),
    ptspec('dump', '--scenario', 'x86-64', '--root', 'kernel'),
    ptspec('dump', '--scenario', 'x86-64-5level'),
  ]);
  expect([plain.code, pti.code, five.code]).toEqual([0, 0, 0]);
  oursText = plain.stdout;
  [ours, oursPti, ours5] = [plain, pti, five].map((r) => dumpsOf(r.stdout)[0]!) as [Dump, Dump, Dump];
});

describe('the x86-64 dump against real kernels, region by region', () => {
  it('prints the kernel markers in a modern kernel\'s order, each once, from one walk', () => {
    expect(ours.sections.map((s) => s.name)).toEqual([
      'User Space', 'Kernel Space', 'LDT remap', 'Low Kernel Mapping', 'vmalloc() Area', 'Vmemmap', 'CPU entry Area', 'ESPfix Area',
      'EFI Runtime Services', 'High Kernel Mapping', 'Modules', 'End Modules', 'Fixmap Area',
    ]);
    // init_mm maps no user half (01, efi_pgd, has the EFI 1:1 maps there).
    expect(present(within(ours, '0x0000000000000000', '0x8000000000000000'))).toEqual([]);
  });

  it('direct map (01): pte, pmd and pud leaves, PSE on the large ones, RW NX, no PCD/PWT, no GLB with PTI; holes where the e820 has none', () => {
    const { real, mine, pti } = region('direct map');
    expect(mix(mine)).toEqual(mix(real));
    expect(mix(mine)).toEqual(['pmd', 'pte', 'pud']);
    for (const rs of [real, mine]) {
      expect(pseOnLargeLeaves(rs)).toBe(true);
      expect([column(rs, 'nx'), column(rs, 'pcd'), column(rs, 'pwt'), column(rs, 'user')]).toEqual([[true], [false], [false], [false]]);
      expect(holes(rs).length).toBeGreaterThan(0);
    }
    expect(column(pti, 'global')).toEqual(column(real, 'global'));
    // RW/ro not compared: 01 is before mark_rodata_ro (all RW); ours has the read-only alias of text and rodata.
    expect(column(real, 'rw')).toEqual([true]);
    expect(column(mine, 'rw')).toEqual([false, true]);
  });

  it('vmalloc (01): 4K leaves between unmapped guard pages, RW NX, ioremaps UC- (PCD), no GLB with PTI; ours also has 2M leaves (VM_ALLOW_HUGE_VMAP, v5.13)', () => {
    const { real, mine, pti } = region('vmalloc');
    expect(mix(real)).toEqual(['pte']);
    expect(mix(mine)).toEqual(['pmd', 'pte']);
    for (const rs of [real, mine]) {
      expect([column(rs, 'rw'), column(rs, 'nx')]).toEqual([[true], [true]]);
      expect(present(rs).some((r) => r.flags!.pcd && !r.flags!.pwt && r.level === 'pte')).toBe(true);
      expect(holes(rs).filter((r) => r.level === 'pte').length).toBeGreaterThan(0);
    }
    expect(column(pti, 'global')).toEqual(column(real, 'global'));
  });

  it('vmemmap (01): 2M leaves only, RW PSE NX, no GLB with PTI, a hole for the sections of the PCI hole', () => {
    const { real, mine, pti } = region('vmemmap');
    expect(mix(mine)).toEqual(mix(real));
    expect(mix(real)).toEqual(['pmd']);
    for (const rs of [real, mine]) {
      expect([column(rs, 'rw'), column(rs, 'pse'), column(rs, 'nx')]).toEqual([[true], [true], [true]]);
      expect(holes(rs).map((r) => r.level)).toEqual(['pmd']);
    }
    expect(column(pti, 'global')).toEqual(column(real, 'global'));
  });

  it('cpu_entry_area (01, 05): 4K leaves, all GLB, the read-only IDT first, then a CPU\'s GDT ro, entry stack RW, TSS ro; no W+X', () => {
    const { real, mine } = region('cpu_entry_area');
    const grep = within(real05, '0xfffffe0000000000', '0xffffff0000000000');
    for (const rs of [real, mine, grep]) {
      expect(mix(rs)).toEqual(['pte']);
      expect(column(rs, 'global')).toEqual([true]);
      expect(present(rs).every((r) => !r.flags!.rw || r.flags!.nx)).toBe(true);
    }
    // Page by page (01 prints the IDT and the GDT as two lines only because its LDT remap marker falls between them).
    const pages = (rs: readonly DumpRange[], n: number): string[] => Array.from({ length: n }, (_, k) => {
      const r = present(rs).find((x) => x.start <= rs[0]!.start + k && x.end > rs[0]!.start + k);
      return r === undefined ? '-' : `${r.flags!.rw ? 'RW' : 'ro'} ${r.flags!.nx ? 'NX' : 'x'}`;
    });
    // IDT, then CPU 0's GDT, entry stack and the TSS's first three pages.
    expect(pages(mine, 6)).toEqual(pages(real, 6));
    expect(pages(real, 6)).toEqual(['ro NX', 'ro NX', 'RW NX', 'ro NX', 'ro NX', 'ro NX']);
    // 4.18's TSS is 3 pages, ours 5 (struct x86_io_bitmap's second bitmap, v5.5); 4.18 maps an
    // executable entry trampoline per CPU (ro x), which v4.19 removed: ours has none.
    expect(present(real).filter((r) => !r.flags!.nx).every((r) => !r.flags!.rw && r.level === 'pte')).toBe(true);
    expect(present(mine).filter((r) => !r.flags!.nx)).toEqual([]);
  });

  it('espfix (01, 06): a read-only global 4K page every 64 KiB of one PTE table, at the fixed ESPfix address in both paging modes', () => {
    const { real, mine } = region('espfix');
    for (const rs of [present(real), present(mine)]) {
      expect(rs.length).toBeGreaterThan(4);
      expect(rs.every((r) => r.level === 'pte' && r.end - r.start === 1 && !r.flags!.rw && r.flags!.global && r.flags!.nx)).toBe(true);
      expect(rs.slice(1).every((r, i) => r.start - rs[i]!.start === 16)).toBe(true);
    }
    const marker = (d: Dump): string => vpnToHex(d.sections.find((sec) => sec.name === 'ESPfix Area')!.ranges[0]!.start);
    expect(marker(ours5)).toBe(marker(real06));
    expect(marker(real06)).toBe('0xffffff0000000000');
    // A 5-level walk prints p4d lines and petabyte sizes, as 06 does.
    for (const d of [real06, ours5]) {
      expect(dumpRanges(d).some((r) => r.level === 'p4d')).toBe(true);
      expect(dumpRanges(d).some((r) => r.size.unit === 'P')).toBe(true);
    }
  });

  it('high kernel mapping (04 after c40a56a7818c): nothing below _text, text ro x, rodata ro NX, data RW NX, the freed pages not present, not present to MODULES_VADDR', () => {
    const after = real04.find((d) => d.view === 'current_kernel' && d.segment > 0)!;
    const before = real04.find((d) => d.view === 'current_kernel' && d.segment === 0)!;
    const real = within(after, '0xffffffff80000000', '0xffffffffa0000000');
    const mine = within(ours, '0xffffffff80000000', '0xffffffffa0000000');
    const cls = (rs: readonly DumpRange[], rw: boolean, nx: boolean): DumpRange[] => present(rs).filter((r) => r.flags!.rw === rw && r.flags!.nx === nx);
    for (const rs of [real, mine]) {
      expect(rs[0]).toMatchObject({ start: hexToVpn('0xffffffff80000000'), end: hexToVpn('0xffffffff81000000'), level: 'pmd', flags: null });
      expect(cls(rs, true, false)).toEqual([]);
      expect(pseOnLargeLeaves(rs)).toBe(true);
      expect(holes(rs).every((r) => r.level === 'pte' || r.level === 'pmd')).toBe(true);
      expect(holes(rs).some((r) => r.level === 'pte')).toBe(true);
    }
    // Text: 4.18's _etext is not 2 MiB-aligned (a 68K pte tail); ALIGN_ENTRY_TEXT_END makes ours so: pmd only.
    expect(mix(cls(real, false, false))).toEqual(['pmd', 'pte']);
    expect(mix(cls(mine, false, false))).toEqual(['pmd']);
    expect(mix(cls(mine, false, true))).toEqual(mix(cls(real, false, true)));
    expect(mix(cls(mine, true, true))).toEqual(mix(cls(real, true, true)));
    // Data is never global with PTI (text is in 04: a non-PCID machine clones it, pti_clone_kernel_text).
    expect(column(cls(within(oursPti, '0xffffffff80000000', '0xffffffffa0000000'), true, true), 'global')).toEqual(column(cls(real, true, true), 'global'));
    // The image ends with whole 2M leaves and nothing is mapped from there to MODULES_VADDR (04 before the patch shows the end).
    for (const d of [before, ours]) {
      const rs = within(d, '0xffffffff80000000', '0xffffffffa0000000');
      expect(rs[rs.length - 1]).toMatchObject({ end: hexToVpn('0xffffffffa0000000'), level: 'pmd', flags: null });
      expect(present(rs).pop()!.level).toBe('pmd');
    }
    // 01 is before mark_rodata_ro: its image is all 2M leaves, nothing split yet.
    expect(mix(region('high map').real)).toEqual(['pmd']);
  });

  it('modules (01): nothing mapped at boot', () => {
    const { real, mine } = region('modules');
    expect([present(real), present(mine)]).toEqual([[], []]);
  });

  it('fixmap (01): the IO-APIC and local APIC pages, UC (RW PWT PCD NX), 4K, no GLB with PTI; no vsyscall page (01 has vsyscall=emulate, 4.18\'s default)', () => {
    const { real, mine, pti } = region('fixmap');
    const uc = (rs: readonly DumpRange[]): DumpRange[] => present(rs).filter((r) => r.flags!.pcd && r.flags!.pwt);
    expect(uc(real).map((r) => [r.level, r.end - r.start])).toEqual([['pte', 2]]);
    expect(uc(mine).map((r) => [r.level, r.end - r.start])).toEqual([['pte', 2]]);
    expect(uc(pti)[0]!.flags).toEqual(uc(real)[0]!.flags);
    expect(present(real).filter((r) => r.flags!.user).map((r) => vpnToHex(r.start))).toEqual(['0xffffffffff600000']);
    expect(dumpRanges(ours).filter((r) => r.flags?.user === true)).toEqual([]);
  });
});

describe('ptspec check of the x86-64 dump', () => {
  it('passes: init_mm by its shape, no W+X by the kernel\'s rule, no finding', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ptspec-x86-'));
    const file = join(dir, 'x86-64.txt');
    writeFileSync(file, oursText);
    const [text, json] = await Promise.all([ptspec('check', file), ptspec('check', '--json', file)]);
    rmSync(dir, { recursive: true });
    expect(text.code, text.stdout).toBe(0);
    expect(text.stdout).toContain('x86/mm: Checked W+X mappings: passed, no W+X pages found.\n');
    const report = JSON.parse(json.stdout) as { failed: boolean; files: { dumps: { table: { kind: string }; wx: { rulePages: number }; findings: unknown[] }[] }[] };
    expect(report.failed).toBe(false);
    expect(report.files[0]!.dumps.map((d) => [d.table.kind, d.wx.rulePages, d.findings])).toEqual([['init_mm', 0, []]]);
  });
});
