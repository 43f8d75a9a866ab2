/**
 * The ptdump parser on the real kernel dumps in test/fixtures/kernel and on hand-made
 * corrupt dumps in test/fixtures/ptdump (each names its bad line in a `# BAD LINE` header).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { hexToVpn } from '../spec/address.ts';
import { classifyLine } from '../io/ptdump/lines.ts';
import { parsePtdump, type ParseOptions } from '../io/ptdump/parse.ts';
import { dumpRanges, type ParsedText } from '../io/ptdump/types.ts';

const KERNEL = new URL('./fixtures/kernel/', import.meta.url);
const OWN = new URL('./fixtures/ptdump/', import.meta.url);
const read = (dir: URL, name: string): string => readFileSync(new URL(name, dir), 'utf8');

function ok(text: string, opts: ParseOptions = {}): ParsedText {
  const r = parsePtdump(text, opts);
  if (!r.ok) throw new Error(r.errors.map((e) => `${e.line}: ${e.reason}`).join('\n'));
  return r.value;
}

describe('real kernel dumps', () => {
  it('accounts for every line of every fixture: in a dump or kept aside with its kind', () => {
    for (const name of readdirSync(KERNEL)) {
      const text = read(KERNEL, name);
      const p = ok(text);
      const used = new Set<number>(p.other.map((o) => o.line));
      for (const d of p.dumps) {
        for (const s of d.sections) {
          if (s.line !== null) used.add(s.line);
          for (const r of s.ranges) used.add(r.line);
        }
        for (const g of d.gaps) used.add(g.line);
      }
      expect(used.size, name).toBe(p.lineCount);
      expect(p.lineCount, name).toBe(text.split('\n').length - 1);
    }
  });

  it('x86-ptdump-01: one 4-level dmesg dump, the skipped-entries line as a gap, the wrapped last range', () => {
    const [d, ...rest] = ok(read(KERNEL, 'x86-ptdump-01.txt')).dumps;
    expect(rest).toHaveLength(0);
    expect(d!.paging).toBe('4-level');
    expect(d!.fragment).toBe(false);
    expect(d!.sections.map((s) => s.name)).toEqual([
      'User Space', 'Kernel Space', 'Low Kernel Mapping', 'vmalloc() Area', 'Vmemmap', 'CPU entry Area', 'LDT remap',
      'ESPfix Area', 'EFI Runtime Services', 'High Kernel Mapping', 'Modules', 'End Modules', 'Fixmap Area',
    ]);
    expect(d!.gaps).toEqual([{ line: 320, kind: 'skipped', count: 131059 }]);
    const ranges = dumpRanges(d!);
    expect(ranges[0]).toMatchObject({ line: 18, start: 0, end: 8, size: { value: 32, unit: 'K' }, level: 'pte' });
    expect(ranges[0]!.flags).toMatchObject({ rw: true, nx: false, user: false, global: false });
    // 0x0000008000000000-0xffff800000000000 17179737600G pgd: the hole across the non-canonical gap.
    expect(ranges.find((r) => r.line === 182)).toMatchObject({ start: hexToVpn('0x0000008000000000'), end: hexToVpn('0xffff800000000000'), size: { value: 17179737600, unit: 'G' }, flags: null });
    // 0xffffffffff800000-0x0000000000000000 8M pmd: the end wraps to 2^64.
    expect(ranges.at(-1)).toMatchObject({ line: 487, start: hexToVpn('0xffffffffff800000'), end: 2 ** 52, level: 'pmd' });
  });

  it('x86-ptdump-04: four views (before/after, current_kernel/current_user) in two segments', () => {
    const p = ok(read(KERNEL, 'x86-ptdump-04.txt'));
    expect(p.dumps.map((d) => [d.view, d.segment, d.firstLine, d.lastLine])).toEqual([
      ['current_kernel', 0, 17, 26], ['current_user', 0, 28, 34], ['current_kernel', 1, 39, 49], ['current_user', 1, 51, 59],
    ]);
    expect(p.other.filter((o) => o.kind === 'text').map((o) => o.text)).toEqual(['Before this patch:', 'After this patch:']);
  });

  it('x86-ptdump-05: grep GLB output is a fragment: gaps accepted, 11 GLB lines', () => {
    const [d] = ok(read(KERNEL, 'x86-ptdump-05.txt')).dumps;
    expect(d!.fragment).toBe(true);
    const ranges = dumpRanges(d!);
    expect(ranges).toHaveLength(11);
    expect(ranges.every((r) => r.flags?.global === true)).toBe(true);
    expect(ranges.at(-1)).toMatchObject({ level: 'pmd', flags: { pse: true, rw: false, nx: false } });
  });

  it('x86-ptdump-06: 5-level geometry (111104G p4d, 24P pgd, 255T p4d) between elisions', () => {
    const [d] = ok(read(KERNEL, 'x86-ptdump-06.txt')).dumps;
    expect(d!.paging).toBe('5-level');
    expect(d!.gaps.map((g) => g.kind)).toEqual(['elision', 'elision']);
    expect(dumpRanges(d!).slice(0, 3).map((r) => [`${r.size.value}${r.size.unit}`, r.level])).toEqual([['111104G', 'p4d'], ['24P', 'pgd'], ['255T', 'p4d']]);
    // Under 4-level geometry the 24P pgd line is impossible: 4-level pgd entries are 512G.
    const r = parsePtdump(read(KERNEL, 'x86-ptdump-06.txt'), { paging: '4-level' });
    expect(r.ok).toBe(false);
  });

  it('arm64-ptdump-01: the arm64 format (upper-case level after the size, pte_bits attributes)', () => {
    const [d, ...rest] = ok(read(KERNEL, 'arm64-ptdump-01.txt')).dumps;
    expect(rest).toHaveLength(0);
    expect(d!.arch).toBe('arm64');
    const ranges = dumpRanges(d!);
    expect(ranges).toHaveLength(262);
    expect(ranges[1]).toMatchObject({
      line: 18, level: 'pmd', size: { value: 32, unit: 'M' },
      flags: { rw: false, nx: true, global: false, pse: true, user: false },
      arm64: { uxn: true, contiguous: false, memType: 'MEM/NORMAL' },
    });
    expect(ranges.find((r) => r.line === 238)?.arm64).toMatchObject({ contiguous: true, uxn: true });
    // The fixmap's 12K ro x run is the only global (no NG) mapping.
    expect(ranges.filter((r) => r.flags?.global).map((r) => [r.line, r.end - r.start])).toEqual([[283, 3]]);
    expect(ranges.at(-1)).toMatchObject({ level: 'pmd', end: 2 ** 52, flags: null });
  });

  it('arm64: unknown attributes and mixed architectures are rejected', () => {
    const arm = '0xffff800080000000-0xffff800080004000          16K PTE       RW NX SHD AF NG  WAT     UXN    MEM/NORMAL';
    expect(parsePtdump(arm)).toEqual({ ok: false, errors: [{ line: 1, reason: 'unknown arm64 attribute "WAT"' }] });
    const mixed = '0xffff800080000000-0xffff800080001000           4K PTE\n0xffff800080001000-0xffff800080002000           4K                               pte';
    expect(parsePtdump(mixed)).toEqual({ ok: false, errors: [{ line: 2, reason: 'an x86 line in an arm64 dump' }] });
  });

  it('x86-wx-dmesg: no dump, the W+X checker lines kept as verdicts', () => {
    const p = ok(read(KERNEL, 'x86-wx-dmesg.txt'));
    expect(p.dumps).toHaveLength(0);
    const verdicts = p.other.filter((o) => o.kind === 'verdict').map((o) => [o.line, o.verdict]);
    expect(verdicts.slice(0, 3)).toEqual([
      [15, { type: 'found', address: '0xc0000000/0xc0000000' }],
      [16, { type: 'failed', pages: 252 }],
      [26, { type: 'found', address: 'ffffc90000014000/0xffffc90000014000' }],
    ]);
    expect(verdicts.filter(([, v]) => (v as { type: string }).type === 'passed')).toHaveLength(4);
    // The WARN banner is not a marker, and "Modules linked in:" is not a grep prefix.
    expect(p.other.find((o) => o.line === 24)?.kind).toBe('text');
  });
});

describe('line prefixes', () => {
  const range = '0xffffffff81000000-0xffffffff81e00000          14M     ro         PSE     GLB x  pmd';
  it.each([
    ['bare', range, ''],
    ['dmesg timestamp', `[    0.017089] ${range}`, ''],
    ['grep match', `current_kernel:${range}`, 'current_kernel'],
    ['grep context, indented', `  current_user-${range}`, 'current_user'],
    ['grep path with dashes', `/sys/kernel/debug/page-tables/kernel-copy:${range}`, 'kernel-copy'],
    ['syslog', `Nov 26 09:00:01 host kernel: [    1.0] ${range}`, ''],
    ['docker log fields', `[13:20:20.389][Moby           ][Info   ] ${range}`, ''],
    ['e-mail quote', `> ${range}`, ''],
  ])('%s', (_, line, view) => {
    expect(classifyLine(line)).toEqual({ kind: 'range', view, payload: range });
  });

  it('classifies the other kinds', () => {
    expect(classifyLine('[    4.3] x86/mm: Checked W+X mappings: FAILED, 252 W+X pages found.')).toMatchObject({ kind: 'verdict', verdict: { type: 'failed', pages: 252 } });
    expect(classifyLine('x86/mm: PCI BIOS W+X mapping 96 pages')).toMatchObject({ kind: 'verdict', verdict: { type: 'pci-bios', pages: 96 } });
    expect(classifyLine('[    0.015788] ... 131059 entries skipped ... ')).toEqual({ kind: 'skipped', view: '', count: 131059 });
    expect(classifyLine('... 1 entry skipped ...')).toEqual({ kind: 'skipped', view: '', count: 1 });
    expect(classifyLine('...')).toEqual({ kind: 'elision', view: '' });
    expect(classifyLine('current_user:---[ High Kernel Mapping ]---')).toEqual({ kind: 'marker', view: 'current_user', name: 'High Kernel Mapping' });
    expect(classifyLine('--')).toEqual({ kind: 'separator' });
    expect(classifyLine('# grep GLB current_user').kind).toBe('comment');
    expect(classifyLine('~ # cat /sys/kernel/debug/kernel_page_tables').kind).toBe('text');
  });
});

describe('corrupt dumps', () => {
  const cases = readdirSync(OWN).filter((f) => /^# BAD LINE/m.test(read(OWN, f)));
  it.each(cases)('%s is rejected at the line and for the reason its header names', (name) => {
    const text = read(OWN, name);
    const header = /^# BAD LINE (\d+): (.*)$/m.exec(text);
    const r = parsePtdump(text);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.errors.map((e) => e.line)).toEqual([Number(header![1])]);
    const want: Record<string, RegExp> = {
      'gap.txt': /not contiguous: line 5 ends at 0xffffffff81e00000 but this range starts at 0xffffffff81e11000/,
      'overlap.txt': /overlaps line 5/,
      'size.txt': /size 16M does not match the range \(14M\)/,
      'size-form.txt': /size 1024K is not how the kernel prints it \(1M\)/,
      'level.txt': /pmd range must start and end on 2M boundaries/,
      'wrap.txt': /wraps before the end of the address space/,
      'after-top.txt': /follows line 4, which ends at the top of the address space/,
      'flags.txt': /PSE printed on a pte/,
      'unaligned.txt': /0xffffffff80000800 is not 4 KiB aligned/,
      'truncated.txt': /missing level name/,
    };
    expect(want[name], `expected reason for ${name}`).toBeDefined();
    expect(r.errors[0]!.reason).toMatch(want[name]!);
  });

  it('a gap line makes a hole legal, --fragment too, but never an overlap', () => {
    const gap = read(OWN, 'gap.txt');
    const withSkip = gap.replace('0xffffffff81e11000', '... 3 entries skipped ...\n0xffffffff81e11000');
    expect(parsePtdump(withSkip).ok).toBe(true);
    expect(parsePtdump(gap, { fragment: true }).ok).toBe(true);
    expect(parsePtdump(read(OWN, 'overlap.txt'), { fragment: true }).ok).toBe(false);
  });

  it('a non-canonical address under forced 4-level paging', () => {
    const r = parsePtdump('0x0000900000000000-0x0000908000000000         512G                               pgd\n', { paging: '4-level' });
    expect(r).toEqual({ ok: false, errors: [{ line: 1, reason: expect.stringMatching(/not a canonical 4-level address/) }] });
  });

  it('unknown flags, levels and units, mixed address widths, strict mode', () => {
    const bad = (line: string, opts: ParseOptions = {}) => {
      const r = parsePtdump(`${line}\n`, opts);
      return r.ok ? 'ok' : r.errors[0]!.reason;
    };
    expect(bad('0xffffffff80000000-0xffffffff80001000           4K     RW     XYZ            NX pte')).toMatch(/unknown flag "XYZ"/);
    expect(bad('0xffffffff80000000-0xffffffff80001000           4K     NX RW pte')).toMatch(/out of order/);
    expect(bad('0xffffffff80000000-0xffffffff80001000           4K                               pxd')).toMatch(/unknown level "pxd"/);
    expect(bad('0xffffffff80000000-0xffffffff80001000           4Q                               pte')).toMatch(/unknown size unit/);
    expect(bad('0xffffffff80000000-0x80001000           4K                               pte')).toMatch(/16 \(x86-64\) or 8 \(32-bit\)/);
    expect(bad('0xc0000000-0xc0001000           4K                               pte\n0xffffffff80000000-0xffffffff80001000           4K                               pte')).toMatch(/mixed 32- and 64-bit/);
    expect(bad('hello', { strict: true })).toMatch(/not ptdump text/);
    expect(bad('hello')).toBe('ok');
  });

  it('32-bit dumps: 8-digit addresses, the top wraps to 0x00000000', () => {
    const [d] = ok(read(OWN, 'ok-32bit.txt')).dumps;
    expect(d!.paging).toBe('32-bit');
    expect(dumpRanges(d!).at(-1)).toMatchObject({ start: 0xf8000, end: 2 ** 20, size: { value: 128, unit: 'M' } });
  });
});
