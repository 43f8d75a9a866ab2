/**
 * `ptspec check` logic (io/ptdump/analyse.ts) on the real dumps: the W+X verdict each
 * fixture header describes, checked against an independent count; the KPTI findings of
 * fixture 04 before/after c40a56a7818c; hand-made pairs for every K finding.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { checkDumps, type DumpReport } from '../io/ptdump/analyse.ts';
import { parsePtdump } from '../io/ptdump/parse.ts';
import { checkReportJson, checkReportText } from '../io/ptdump/report.ts';
import { KERNEL, OWN, check, dumps } from './ptdump-fixtures.ts';
const ids = (d: DumpReport): string[] => d.findings.map((f) => f.id);

/** W+X pages of a dump file counted straight from the text, without the parser. */
function independentWxCount(text: string): number {
  let pages = 0n;
  for (const line of text.split('\n')) {
    const m = /0x([0-9a-f]{16})-0x([0-9a-f]{16})\s+\S+\s+(.*)$/.exec(line);
    if (!m || !/\bRW\b/.test(m[3]!) || !/\bx\s+(pte|pmd|pud)\s*$/.test(m[3]!)) continue;
    const end = BigInt(`0x${m[2]}`) || 1n << 64n;
    pages += (end - BigInt(`0x${m[1]}`)) / 4096n;
  }
  return Number(pages);
}

describe('W+X verdict of the real dumps', () => {
  it('x86-ptdump-01 (EFI pgd before mark_rodata_ro): FAILED, pages as an independent count says', () => {
    const [d] = dumps(check([[KERNEL, 'x86-ptdump-01.txt']]));
    const text = readFileSync(new URL('x86-ptdump-01.txt', KERNEL), 'utf8');
    expect(d!.wx.pages).toBe(independentWxCount(text));
    expect(d!.wx.pages).toBe(205370);
    // efi_pgd: dumped at boot, never checked, so the count is the rule's and the kernel prints nothing.
    expect([d!.table.kind, d!.wxLines]).toEqual(['efi_pgd', []]);
    // By hand: line 18 is 32K (8 pages), line 20 256K (64), line 27 a 6M PSE run (1536).
    const byLine = new Map(d!.wx.ranges.map((r) => [r.line, r.end - r.start]));
    expect([byLine.get(18), byLine.get(20), byLine.get(27)]).toEqual([8, 64, 1536]);
    expect(byLine.has(19)).toBe(false); // 348K not present
    // High Kernel Mapping before rodata: 12M + 2M (GLB) + 38M RW x = 52M = 13312 pages.
    expect(d!.summary.sections.find((s) => s.name === 'High Kernel Mapping')?.wxPages).toBe(13312);
    expect(ids(d!)).toContain('P1');
    // The vsyscall page (USR ro NX at 0xffffffffff600000) is the kernel's sanctioned USR page.
    expect(ids(d!)).not.toContain('K-dump-usr');
  });

  it.each(['x86-ptdump-04.txt', 'x86-ptdump-05.txt', 'x86-ptdump-06.txt'])('%s: no W+X pages (process tables and excerpts: no kernel verdict)', (name) => {
    for (const d of dumps(check([[KERNEL, name]]))) {
      expect(d.wx.pages).toBe(0);
      expect(d.wxLines).toEqual([]);
    }
  });

  it('arm64-ptdump-01: passed, no W+X and no non-UXN pages (every x run is ro, every line UXN)', () => {
    const [d] = dumps(check([[KERNEL, 'arm64-ptdump-01.txt']]));
    expect([d!.wx.pages, d!.wx.nonUxnPages]).toEqual([0, 0]);
    expect(d!.wxLines).toEqual(['Checked W+X mappings: passed, no W+X pages found']);
    expect(d!.findings).toEqual([]);
    expect(d!.summary.byPermission.get('RW x')).toBeUndefined();
    // Executable: kernel text (1984K + 16M + 512K), the 2M vmalloc run, the 12K fixmap run.
    expect(d!.summary.byPermission.get('ro x')).toBe(BigInt((1984 + 16 * 1024 + 512 + 2048 + 12) * 1024));
  });

  it('arm64: W+X and non-UXN pages counted as ptdump_check_wx does, warnings in address order', () => {
    const [d] = dumps(check([[OWN, 'arm64-wx.txt']]));
    expect(d!.wxLines).toEqual([
      'arm64/mm: Found insecure W+X mapping at address 0xffff800080000000',
      'arm64/mm: Found non-UXN mapping at address 0xffff800080004000',
      'Checked W+X mappings: FAILED, 4 W+X pages found, 1 non-UXN pages found',
    ]);
  });

  it('x86-wx-dmesg: the kernel\'s own FAILED verdict in the input fails the check', () => {
    const r = check([[KERNEL, 'x86-wx-dmesg.txt']]);
    expect(r.failed).toBe(true);
    expect(r.files[0]!.kernelVerdicts.filter((v) => v.verdict.type === 'failed')).toEqual([{ line: 16, verdict: { type: 'failed', pages: 252 } }]);
    expect(checkReportText(r)).toContain('  line 16: Checked W+X mappings: FAILED, 252 W+X pages found.\n');
  });

  it('32-bit: PCI BIOS exemption only when the BIOS is in use', () => {
    const [plain] = dumps(check([[OWN, 'ok-32bit.txt']]));
    expect(plain!.wx.pages).toBe(96 + 3840);
    const [bios] = dumps(check([[OWN, 'ok-32bit.txt']], { pciBios: true }));
    expect(bios!.wx.pages).toBe(3840);
    expect(bios!.wxLines).toEqual([
      'x86/mm: PCI BIOS W+X mapping 96 pages',
      'x86/mm: Found insecure W+X mapping at address 0xc0100000',
      'x86/mm: Checked W+X mappings: FAILED, 3840 W+X pages found.',
    ]);
  });
});

describe('KPTI findings', () => {
  it('x86-ptdump-04 before c40a56a7818c: the freed image hole is still mapped in current_user; after: clean', () => {
    const [beforeK, beforeU, afterK, afterU] = dumps(check([[KERNEL, 'x86-ptdump-04.txt']]));
    expect(beforeU!.role).toBe('user');
    expect(beforeU!.pairedWith).toMatchObject({ view: 'current_kernel', firstLine: 17 });
    expect(beforeU!.findings).toEqual([expect.objectContaining({ id: 'K-dump-user-image-rw', lines: [32] })]);
    expect(beforeU!.findings[0]!.detail).toContain('0xffffffff81e11000-0xffffffff82000000 RW NX pte');
    expect(beforeU!.table.kind).toBe('process');
    for (const d of [beforeK, afterK, afterU]) expect(d!.findings).toEqual([]);
    expect(afterU!.pairedWith).toMatchObject({ view: 'current_kernel', firstLine: 39 });
  });

  it('x86-ptdump-05 as the user view (--user): GLB lines only in cpu_entry_area and entry text', () => {
    const r = check([[KERNEL, 'x86-ptdump-05.txt', true]]);
    expect(dumps(r)[0]!.role).toBe('user');
    expect(r.failed).toBe(false);
  });

  it('a hand-made pair shows each K finding at its line', () => {
    const [k, u] = dumps(check([[OWN, 'kpti-pair.txt']]));
    // The catalogue's K invariants judge the pair as ptspec's roots (io/ptdump/pair.ts): K3
    // on the global cpu_entry_area page both copies map differently, named on the kernel
    // copy's leaf; K1 on the user page whose copies differ.
    expect(k!.findings.map((f) => [f.id, f.lines])).toEqual([['K-dump-usr', [16]], ['K3', [10]]]);
    expect(k!.findings[1]!.detail).toContain('root 1 maps 4K leaf 0xfffffe0000000000 (RW GLB NX WB)');
    expect(u!.findings.map((f) => [f.id, f.lines])).toEqual([
      ['K-dump-user-allowlist', [23]],
      ['K-dump-glb', [31]],
      ['K1', [19]],
    ]);
    expect(u!.findings[1]!.detail).toContain('current_kernel line 15');
  });

  it('--user pairs a user file with the kernel file given first', () => {
    const r = check([[KERNEL, 'x86-ptdump-05.txt'], [KERNEL, 'x86-ptdump-05.txt', true]]);
    expect(dumps(r)).toHaveLength(2);
    const [k, u] = dumps(r);
    expect([k!.role, u!.role]).toEqual(['kernel', 'user']);
    expect(u!.pairedWith).toEqual({ file: 'x86-ptdump-05.txt', view: '', firstLine: k!.dump.firstLine });
    expect(r.failed).toBe(false); // identical GLB lines in both views
  });
});

describe('structure findings', () => {
  it('a present pgd line and a present pmd line without PSE are named by line', () => {
    const text = [
      '---[ Kernel Space ]---',
      '0xffff800000000000-0xffff808000000000         512G     RW                     NX pgd',
      '0xffff808000000000-0xffff808000200000           2M     RW                     NX pmd',
      '0xffff808000200000-0xffff808000400000           2M     RW         PSE         NX pmd',
    ].join('\n');
    const r = parsePtdump(text);
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    const [d] = dumps(checkDumps([{ file: 'inline', parsed: r.value, user: false }]));
    expect(d!.findings.map((f) => [f.id, f.lines])).toEqual([['S-dump-leaf-level', [2]], ['S-dump-pse', [3]]]);
  });
});

describe('report', () => {
  it('text: verdict first, findings with lines, per-region summary; JSON is plain data', () => {
    const r = check([[KERNEL, 'x86-ptdump-04.txt']]);
    const text = checkReportText(r);
    expect(text).toMatch(/FAIL K-dump-user-image-rw .*: line 32: /);
    expect(text).toMatch(/High Kernel Mapping\s+28-34\s+6\s+22M\s+0/);
    expect(text.trimEnd().split('\n').at(-1)).toBe('ptspec check: FAILED');
    const json = JSON.parse(JSON.stringify(checkReportJson(r))) as { failed: boolean; files: { dumps: { summary: { mappedBytes: number } }[] }[] };
    expect(json.failed).toBe(true);
    expect(json.files[0]!.dumps[1]!.summary.mappedBytes).toBe((14 + 6) * 2 ** 20 + (68 + 1980) * 1024);
  });
});
