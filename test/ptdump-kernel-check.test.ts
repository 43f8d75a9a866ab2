/**
 * Which dumps get the kernel's W+X verdict, and what it prints (io/ptdump/table.ts,
 * wx.ts, analyse.ts), each fact with the kernel function that decides it:
 * - only init_mm (ptdump_walk_pgd_level_checkwx) and its PTI user copy
 *   (ptdump_walk_user_pgd_level_checkwx) are checked; efi_pgd (efi_dump_pagetable,
 *   ptdump_efi_show) and process tables (ptdump_curknl_show, ptdump_curusr_show) are
 *   only dumped, so their W+X count is ptspec's rule's;
 * - note_wx's WARN_ONCE and pr_warn_once fire once per boot;
 * - without NX both checks return before printing anything.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { checkDumps } from '../io/ptdump/analyse.ts';
import { parsePtdump } from '../io/ptdump/parse.ts';
import { checkReportJson, checkReportText } from '../io/ptdump/report.ts';
import { nxShown } from '../io/ptdump/table.ts';
import { KERNEL, OWN, check, dumps } from './ptdump-fixtures.ts';

describe('the tables the kernel checks', () => {
  it('init_mm: ptdump_walk_pgd_level_checkwx; its user copy: ptdump_walk_user_pgd_level_checkwx', () => {
    const [k, u] = dumps(check([[OWN, 'init-mm-wx.txt'], [OWN, 'init-mm-user-wx.txt', true]]));
    expect([k!.table.kind, k!.table.checkedBy]).toEqual(['init_mm', 'ptdump_walk_pgd_level_checkwx']);
    expect([u!.table.kind, u!.table.checkedBy]).toEqual(['init_mm-user', 'ptdump_walk_user_pgd_level_checkwx']);
    expect([k!.noKernelVerdict, u!.noKernelVerdict]).toEqual([null, null]);
    expect(k!.wx.pages).toBe(1 + 512);
  });

  it('efi_pgd is dumped (efi_dump_pagetable, debugfs page_tables/efi) but never checked: the count is the rule\'s', () => {
    const [own] = dumps(check([[OWN, 'efi-pgd.txt']]));
    expect(own!.table).toMatchObject({ kind: 'efi_pgd', checkedBy: null });
    expect(own!.table.why).toContain('line 27');
    expect(own!.wxLines).toEqual([]);
    expect(own!.wx.ranges.map((r) => r.line)).toEqual([4, 27]);
    // The real CONFIG_EFI_PGT_DUMP boot dump: the rule finds 205370 pages, the kernel prints nothing about them.
    const [real] = dumps(check([[KERNEL, 'x86-ptdump-01.txt']]));
    expect([real!.table.kind, real!.wxLines, real!.wx.pages]).toEqual(['efi_pgd', [], 205370]);
    const text = checkReportText(check([[KERNEL, 'x86-ptdump-01.txt']]));
    expect(text).not.toContain('Checked W+X mappings');
    expect(text).toContain("table efi_pgd; no kernel verdict: line 324 maps the EFI runtime window");
    expect(text).toContain("W+X by ptspec's rule (RW and not NX): 205370 pages in 165 ranges:");
  });

  it('current_kernel and current_user are a process\'s tables (ptdump_curknl_show, ptdump_curusr_show): no verdict', () => {
    for (const d of dumps(check([[KERNEL, 'x86-ptdump-04.txt']]))) {
      expect(d.table).toMatchObject({ kind: 'process', checkedBy: null });
      expect(d.wxLines).toEqual([]);
    }
  });

  it('a whole walk whose user half is mapped is not init_mm (nor its user copy): no verdict', () => {
    const text = readFileSync(new URL('init-mm-wx.txt', OWN), 'utf8').replace(
      '0x0000000000000000-0xffff880000000000    16777096T                               pgd',
      '0x0000000000000000-0x0000000000001000           4K USR RW                     NX pte\n0x0000000000001000-0x0000000000200000        2044K                               pte\n0x0000000000200000-0x0000000040000000        1022M                               pmd\n0x0000000040000000-0x0000008000000000         511G                               pud\n0x0000008000000000-0xffff880000000000   17179745792G                               pgd',
    );
    const r = parsePtdump(text);
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    const [d] = dumps(checkDumps([{ file: 'a-process.txt', parsed: r.value, user: false }]));
    expect(d!.table).toMatchObject({ kind: 'process', checkedBy: null });
    expect(d!.wxLines).toEqual([]);
    expect(d!.wx.pages).toBe(513);
  });

  it('an excerpt of any table gets no verdict: the kernel counts the whole walk (grep output, elided lines)', () => {
    for (const [name, user] of [['x86-ptdump-05.txt', true], ['x86-ptdump-06.txt', false]] as const) {
      const [d] = dumps(check([[KERNEL, name, user]]));
      expect(d!.table.checkedBy).toBeNull();
      expect(d!.wxLines).toEqual([]);
    }
    // grep over page_tables/kernel (a bare `kernel:` would read as a syslog prefix): init_mm by name, only some lines.
    const r = parsePtdump('/sys/kernel/debug/page_tables/kernel:0xffffffff81200000-0xffffffff81400000           2M     RW         PSE         x  pmd\n');
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    const [grepped] = dumps(checkDumps([{ file: '-', parsed: r.value, user: false }]));
    expect(grepped!.table).toMatchObject({ kind: 'init_mm', checkedBy: null });
    expect([grepped!.wxLines, grepped!.wx.pages]).toEqual([[], 512]);
  });
});

describe('one warning per boot (note_wx: WARN_ONCE, pr_warn_once)', () => {
  it('the kernel check warns at its first W+X run; the user check after it only prints its verdict', () => {
    const [k, u] = dumps(check([[OWN, 'init-mm-wx.txt'], [OWN, 'init-mm-user-wx.txt', true]]));
    expect(k!.wxLines).toEqual([
      'x86/mm: Found insecure W+X mapping at address 0xffffc90000001000',
      'x86/mm: Checked W+X mappings: FAILED, 513 W+X pages found.',
    ]);
    expect(u!.wxLines).toEqual(['x86/mm: Checking user space page tables', 'x86/mm: Checked W+X mappings: FAILED, 1 W+X pages found.']);
  });

  it('in the kernel\'s order (mark_readonly before pti_finalize), whatever the input order', () => {
    const [u, k] = dumps(check([[OWN, 'init-mm-user-wx.txt', true], [OWN, 'init-mm-wx.txt']]));
    expect(k!.wxLines[0]).toBe('x86/mm: Found insecure W+X mapping at address 0xffffc90000001000');
    expect(u!.wxLines.some((l) => l.includes('Found insecure'))).toBe(false);
  });

  it('alone, the user copy warns itself; a second check of init_mm (debugfs check_wx_pages) does not', () => {
    const [u] = dumps(check([[OWN, 'init-mm-user-wx.txt', true]]));
    expect(u!.wxLines).toEqual([
      'x86/mm: Checking user space page tables',
      'x86/mm: Found insecure W+X mapping at address 0xfffffe0000001000',
      'x86/mm: Checked W+X mappings: FAILED, 1 W+X pages found.',
    ]);
    const [first, again] = dumps(check([[OWN, 'init-mm-wx.txt'], [OWN, 'init-mm-wx.txt']]));
    expect(first!.wxLines).toHaveLength(2);
    expect(again!.wxLines).toEqual(['x86/mm: Checked W+X mappings: FAILED, 513 W+X pages found.']);
  });

  it('32-bit: the PCI BIOS line (pr_warn_once) too is printed once per boot', () => {
    const [a, b] = dumps(check([[OWN, 'ok-32bit.txt'], [OWN, 'ok-32bit.txt']], { pciBios: true }));
    expect(a!.wxLines).toEqual([
      'x86/mm: PCI BIOS W+X mapping 96 pages',
      'x86/mm: Found insecure W+X mapping at address 0xc0100000',
      'x86/mm: Checked W+X mappings: FAILED, 3840 W+X pages found.',
    ]);
    expect(b!.wxLines).toEqual(['x86/mm: Checked W+X mappings: FAILED, 3840 W+X pages found.']);
  });
});

describe('no verdict without NX (ptdump_walk_pgd_level_checkwx returns when __supported_pte_mask lacks _PAGE_NX)', () => {
  it('a whole dump with present entries and no NX bit shows a machine without NX', () => {
    const parsed = (dir: URL, name: string) => {
      const r = parsePtdump(readFileSync(new URL(name, dir), 'utf8'));
      if (!r.ok) throw new Error(JSON.stringify(r.errors));
      return r.value.dumps;
    };
    expect(nxShown(parsed(OWN, 'no-nx-32bit.txt'))).toBe(false);
    expect(nxShown(parsed(OWN, 'init-mm-wx.txt'))).toBe(true);
    // grep output without an NX line does not say (x86-ptdump-05 does show NX lines, so take a GLB x line alone).
    const r = parsePtdump('0xffffffff81000000-0xffffffff81200000           2M     ro         PSE     GLB x  pmd\n');
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    expect(nxShown(r.value.dumps)).toBeUndefined();
  });

  it('no kernel lines at all, the rule\'s count kept; --nx / --no-nx override what the dump shows', () => {
    const [d] = dumps(check([[OWN, 'no-nx-32bit.txt']]));
    expect(d!.table.checkedBy).toBe('ptdump_walk_pgd_level_checkwx');
    expect(d!.wxLines).toEqual([]);
    expect(d!.noKernelVerdict).toContain('no NX');
    expect(d!.wx.pages).toBe(2048);
    const [forced] = dumps(check([[OWN, 'no-nx-32bit.txt']], { nx: true }));
    expect(forced!.wxLines.at(-1)).toBe('x86/mm: Checked W+X mappings: FAILED, 2048 W+X pages found.');
    const [k, u] = dumps(check([[OWN, 'init-mm-wx.txt'], [OWN, 'init-mm-user-wx.txt', true]], { nx: false }));
    expect([k!.wxLines, u!.wxLines]).toEqual([[], []]);
    expect(u!.noKernelVerdict).toContain('--no-nx');
  });
});

describe('JSON labels the count as the rule\'s', () => {
  it('table, kernelVerdict and wx.rulePages per dump', () => {
    const json = checkReportJson(check([[OWN, 'efi-pgd.txt'], [OWN, 'init-mm-wx.txt']]));
    const [efi, init] = json.files.flatMap((f) => f.dumps);
    expect(efi!.table).toMatchObject({ kind: 'efi_pgd', checkedBy: null });
    expect(efi!.kernelVerdict.lines).toEqual([]);
    expect(efi!.kernelVerdict.none).toContain('never checked');
    expect(efi!.wx.rulePages).toBe(2);
    expect(init!.kernelVerdict).toEqual({ lines: ['x86/mm: Found insecure W+X mapping at address 0xffffc90000001000', 'x86/mm: Checked W+X mappings: FAILED, 513 W+X pages found.'], none: null });
    expect(init!.wx.rulePages).toBe(513);
  });
});
