/**
 * `ptspec check` and `ptspec dump` as a user runs them: exit codes (0 passed, 1 failed,
 * 2 unreadable or corrupt input) and the lines they print. In-process (test/cli.ts), and
 * once through bin/ptspec.js to show the process prints and exits the same.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ptspec, spawnPtspec } from './cli.ts';

const KERNEL = 'test/fixtures/kernel/';
const OWN = 'test/fixtures/ptdump/';

describe('ptspec check', () => {
  it('exit 1 for W+X: the kernel\'s lines for init_mm, only the rule\'s count for efi_pgd; exit 2 naming file:line for bad input', async () => {
    const [wx, efi, bad] = await Promise.all([
      ptspec('check', `${OWN}init-mm-wx.txt`),
      ptspec('check', `${KERNEL}x86-ptdump-01.txt`),
      ptspec('check', `${OWN}gap.txt`, `${OWN}size.txt`, 'no-such-file.txt'),
    ]);
    expect(wx.code).toBe(1);
    expect(wx.stdout).toContain("the kernel's verdict (ptdump_walk_pgd_level_checkwx):\nx86/mm: Found insecure W+X mapping at address 0xffffc90000001000\nx86/mm: Checked W+X mappings: FAILED, 513 W+X pages found.\n");
    // efi_dump_pagetable prints efi_pgd with checkwx false: ptspec's rule fails it, the kernel says nothing.
    expect(efi.code).toBe(1);
    expect(efi.stdout).not.toContain('x86/mm:');
    expect(efi.stdout).toContain("W+X by ptspec's rule (RW and not NX): 205370 pages in 165 ranges:\n");
    expect(bad).toMatchObject({ code: 2, stdout: '' });
    expect(bad.stderr.split('\n')).toEqual([
      expect.stringMatching(/^test\/fixtures\/ptdump\/gap\.txt:6: not contiguous/),
      'test/fixtures/ptdump/size.txt:5: size 16M does not match the range (14M)',
      expect.stringMatching(/^no-such-file\.txt: cannot read/),
      '',
    ]);
  });

  it('the bin prints what main prints and exits with its code (a W+X dump: 1)', async () => {
    const [spawned, inProcess] = await Promise.all([spawnPtspec('check', `${KERNEL}x86-ptdump-01.txt`), ptspec('check', `${KERNEL}x86-ptdump-01.txt`)]);
    expect(spawned).toEqual(inProcess);
    expect(spawned.code).toBe(1);
  });

  it('exit 0 for clean dumps (a kernel view and a --user view), exit 1 with --json for the fixture-04 KPTI leak', async () => {
    const [clean, json] = await Promise.all([
      ptspec('check', `${KERNEL}x86-ptdump-06.txt`, '--user', `${KERNEL}x86-ptdump-05.txt`),
      ptspec('check', '--json', `${KERNEL}x86-ptdump-04.txt`),
    ]);
    expect(clean.code).toBe(0);
    // Both are excerpts (elided lines, grep output): no kernel verdict, and no W+X by the rule.
    expect(clean.stdout).not.toContain('x86/mm:');
    expect(clean.stdout.match(/W\+X by ptspec's rule \(RW and not NX\): none/g)).toHaveLength(2);
    expect(clean.stdout.trimEnd().split('\n').at(-1)).toBe('ptspec check: passed');
    expect(json.code).toBe(1);
    const report = JSON.parse(json.stdout) as { failed: boolean; files: { dumps: { view: string; findings: { id: string; lines: number[] }[] }[] }[] };
    expect(report.failed).toBe(true);
    expect(report.files[0]!.dumps.map((d) => [d.view, d.findings.map((f) => [f.id, f.lines])])).toEqual([
      ['current_kernel', []], ['current_user', [['K-dump-user-image-rw', [32]]]], ['current_kernel', []], ['current_user', []],
    ]);
  });

  it('--no-nx: no kernel lines at all (the checks return without NX); --nx: the verdict of a dump that shows no NX', async () => {
    const [noNx, nx, shown] = await Promise.all([
      ptspec('check', '--no-nx', `${OWN}init-mm-wx.txt`, '--user', `${OWN}init-mm-user-wx.txt`),
      ptspec('check', '--nx', `${OWN}no-nx-32bit.txt`),
      ptspec('check', `${OWN}no-nx-32bit.txt`),
    ]);
    expect(noNx.code).toBe(1);
    expect(noNx.stdout).not.toContain('x86/mm:');
    expect(noNx.stdout.match(/no kernel verdict: the machine has no NX \(--no-nx says so\)/g)).toHaveLength(2);
    expect(nx.stdout).toContain('x86/mm: Checked W+X mappings: FAILED, 2048 W+X pages found.\n');
    expect(shown.stdout).toContain('no kernel verdict: the machine has no NX (no present entry of a whole dump prints NX)');
    expect(shown.stdout).not.toContain('x86/mm:');
  });
});

describe('ptspec dump', () => {
  it("prints a process's two KPTI copies as current_kernel and current_user, and check --user accepts the pair", async () => {
    const [k, u] = await Promise.all([ptspec('dump', '--scenario', 'kernel', '--root', 'kernel', '--pid', '1'), ptspec('dump', '--scenario', 'kernel', '--root', 'user', '--pid', '1')]);
    expect([k.code, u.code]).toEqual([0, 0]);
    // PTI: the kernel is mostly non-global (strict clones the entry text as it is, without G).
    expect(k.stdout).toContain('0xffffffff81000000-0xffffffff81a00000          10M     ro         PSE         x  pmd\n');
    expect(u.stdout).toContain('0xffffffff81000000-0xffffffff81200000           2M     ro         PSE         x  pmd\n');
    expect(u.stdout).not.toContain('Low Kernel Mapping ]---\n0xffff888000000000-0xffff888000200000');
    const dir = mkdtempSync(join(tmpdir(), 'ptspec-pair-'));
    writeFileSync(join(dir, 'k.txt'), k.stdout);
    writeFileSync(join(dir, 'u.txt'), u.stdout);
    const checked = await ptspec('check', join(dir, 'k.txt'), '--user', join(dir, 'u.txt'));
    rmSync(dir, { recursive: true });
    expect(checked.stdout).toContain('(PTI user copy)');
    expect(checked.stdout).not.toContain('FAIL');
    expect(checked.code, checked.stdout).toBe(0);
  });

  it('prints the booted kernel scenario, and check accepts it: no W+X, no findings', async () => {
    const dump = await ptspec('dump', '--scenario', 'kernel');
    expect(dump.code).toBe(0);
    expect(dump.stdout.split('\n')[0]).toBe('---[ User Space ]---');
    expect(dump.stdout).toContain('0xffffffff81000000-0xffffffff81a00000          10M     ro         PSE     GLB x  pmd\n');
    const dir = mkdtempSync(join(tmpdir(), 'ptspec-dump-'));
    const file = join(dir, 'kernel.txt');
    writeFileSync(file, dump.stdout);
    const [checked, bad] = await Promise.all([ptspec('check', file), ptspec('dump', '--scenario', 'nope')]);
    rmSync(dir, { recursive: true });
    expect(checked.code).toBe(0);
    // A whole walk with an empty user half: init_mm, so the kernel's checker would pass it.
    expect(checked.stdout).toContain("table init_mm (an empty user half: init_mm's table); the kernel's verdict (ptdump_walk_pgd_level_checkwx):\nx86/mm: Checked W+X mappings: passed, no W+X pages found.\n");
    // As the walk since v5.6 prints it: the lower half runs to GUARD_HOLE_END_ADDR, nothing starts in the guard hole.
    expect(dump.stdout.split('\n').slice(0, 4)).toEqual([
      '---[ User Space ]---', '0x0000000000000000-0xffff880000000000    16777096T                               pgd', '---[ Kernel Space ]---',
      '0xffff880000000000-0xffff888000000000         512G                               pgd',
    ]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('unknown scenario "nope"');
  });
});
