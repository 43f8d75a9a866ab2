/**
 * Failures filed by cause, and the commands that read the failure database: `ptspec
 * failures` (list, --replay, --prune), `ptspec replay --steps all` and `ptspec dump
 * --impl`. The traces are two shrunk failures of the split-drops-pat mutant that a
 * campaign (`fuzz --mutant split-drops-pat --runs 150 --seed 3`) used to file apart, under
 * protect and under unmap; the commands run in-process (test/cli.ts) on temp directories.
 */
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Command } from '../spec/commands.ts';
import { PAGE_KERNEL_RO } from '../spec/state.ts';
import { replayTrace, type FoundFailure } from '../fuzz/campaign-run.ts';
import { mutantTarget, traceSetupFor } from '../fuzz/campaign-target.ts';
import { FailureDb } from '../fuzz/failure-db.ts';
import { failureRecord, formatFailureFile, parseFailureFile, type FailureFile, type Target } from '../fuzz/failure-file.ts';
import { ptspec } from './cli.ts';

const WP_RO = { ...PAGE_KERNEL_RO, cache: 'WP' } as const;

/**
 * A WP 1G mapping of vmalloc space, then a protect that splits it: the pieces lose PAT.
 * The frames' direct-map alias goes first, as a WP map over the WB direct map is refused
 * (T5, one memory type per frame), and with no alias left the impl's WC pieces break no
 * policy rule, only the contract. The frames are ordinary data (1 GiB..2 GiB): user frames
 * are sensitive, and the ASI global root sees the vmalloc area (A1).
 */
const viaProtect: readonly Command[] = [
  { op: 'unmap', root: 0, vpn: 4503567549595648, pages: 262144 },
  { op: 'map', root: 0, vpn: 4503584863682560, pfn: 262144, pages: 262144, prot: WP_RO },
  { op: 'protect', vpn: 4503584863683074, pages: 1, change: { global: false }, alias: true },
];
/** A direct-map range made WP, then an unmap that splits the 1G leaf around it. */
const viaUnmap: readonly Command[] = [
  { op: 'protect', vpn: 4503567549857791, pages: 1351, change: { cache: 'WP' } },
  { op: 'unmap', root: 0, vpn: 4503567549596507, pages: 262144 },
];

const mutant = mutantTarget('split-drops-pat');
const tmp = (): string => mkdtempSync(join(tmpdir(), 'ptspec-failures-'));

async function found(commands: readonly Command[]): Promise<FoundFailure> {
  const { key, failure } = replayTrace(await traceSetupFor('kernel', mutant, 50), mutant.label, commands);
  if (key === null || failure === null) throw new Error('the trace no longer fails on split-drops-pat');
  return { key, runIndex: 0, seed: 1, path: '', commands, failure };
}

const origin = (target: Target): Parameters<typeof failureRecord>[1] => ({
  ptspecVersion: '0.1.0', scenario: 'kernel', target, maxCommands: 100, fullCheckEvery: 50, campaignSeed: 3, swarm: false,
});
const mutantOrigin = origin({ kind: 'mutant', mutant: 'split-drops-pat' });

function database(dir: string): FailureDb<FailureFile> {
  return new FailureDb<FailureFile>(dir, { parse: parseFailureFile, format: formatFailureFile });
}

/** A directory with a failure that still fails, one that no longer does (the trace on the real impl), one filed under another key, and a broken file. */
async function seededDir(): Promise<{ readonly dir: string; readonly key: string; readonly fixed: string; readonly moved: string; readonly broken: string }> {
  const dir = tmp();
  const db = database(dir);
  const f = await found(viaProtect);
  db.record(failureRecord(f, mutantOrigin, '2026-12-01T10:00:00.000Z'));
  const fixed = db.record(failureRecord({ ...f, key: 'impl--kernel--postcondition--leaves' }, origin({ kind: 'impl' }), '2026-12-01T11:00:00.000Z')).file;
  const moved = db.record(failureRecord({ ...f, key: 'mutant-split-drops-pat--kernel--refinement--tlb' }, mutantOrigin, '2026-12-01T12:00:00.000Z')).file;
  const broken = join(dir, 'hand-edited.json');
  writeFileSync(broken, '{"format": "ptspec-failure"}');
  return { dir, key: f.key, fixed, moved, broken };
}

describe('failure keys', () => {
  it('file one bug under one key, whichever operation showed it', async () => {
    const a = await found(viaProtect);
    const b = await found(viaUnmap);
    expect([a.failure.command.op, b.failure.command.op]).toEqual(['protect', 'unmap']);
    expect(a.key).toBe('mutant-split-drops-pat--kernel--postcondition--leaves');
    expect(b.key).toBe(a.key);
    expect(a.failure.cause).toBe('leaves');
  });
});

describe('ptspec failures', () => {
  it('lists every stored failure with what failed, and the broken files', async () => {
    const { dir, key, broken } = await seededDir();
    const r = await ptspec('failures', '--out', dir);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`Failure database ${dir}: 3 stored failures, 1 broken file`);
    expect(r.stdout).toMatch(new RegExp(`${key} +postcondition +leaves +1 +2026-12-01T10:00:00.000Z +2026-12-01T10:00:00.000Z +${join(dir, key)}\\.json`));
    expect(r.stdout).toContain(`BROKEN ${broken}: version: missing (expected 3)`);
    const json = JSON.parse((await ptspec('failures', '--out', dir, '--json')).stdout) as { failures: { key: string; cause: string }[]; broken: { file: string }[] };
    expect(json.failures.map((f) => f.cause)).toEqual(['leaves', 'leaves', 'leaves']);
    expect(json.broken.map((b) => b.file)).toEqual([broken]);
  }, 60_000);

  it('--replay says which still fail, which no longer reproduce and which fail differently', async () => {
    const { dir, key, fixed, moved } = await seededDir();
    const r = await ptspec('failures', '--out', dir, '--replay', '--json');
    expect(r.code).toBe(1);
    const rows = (JSON.parse(r.stdout) as { failures: { file: string; status: { verdict: string; nowKey?: string } }[] }).failures;
    const byFile = new Map(rows.map((row) => [row.file, row.status]));
    expect(byFile.get(join(dir, `${key}.json`))).toMatchObject({ verdict: 'reproduces' });
    expect(byFile.get(fixed)).toMatchObject({ verdict: 'fixed', removed: false });
    expect(byFile.get(moved)).toMatchObject({ verdict: 'differs', nowKey: key });
    const text = await ptspec('failures', '--out', dir, '--replay');
    expect(text.stdout).toContain(`1 no longer reproduces: \`ptspec failures --prune --out ${dir}\` removes it.`);
    expect(existsSync(fixed)).toBe(true);
  }, 60_000);

  it('--prune removes only what no longer reproduces, never a broken file', async () => {
    const { dir, fixed, broken } = await seededDir();
    const r = await ptspec('failures', '--out', dir, '--prune');
    expect(r.stdout).toContain('no longer reproduces: removed');
    expect(existsSync(fixed)).toBe(false);
    expect(existsSync(broken)).toBe(true);
    expect(readdirSync(dir)).toHaveLength(3);
  }, 60_000);

  it('keeps a failure a campaign counted again after the replay that found it fixed', async () => {
    const db = database(tmp());
    const { file } = db.record(failureRecord(await found(viaProtect), mutantOrigin, '2026-12-01T10:00:00.000Z'));
    const seen = db.load().stored[0]!.record;
    db.bump(seen.key, 1, '2026-12-01T13:00:00.000Z');
    const unchanged = (now: FailureFile): boolean => now.count === seen.count && now.lastSeen === seen.lastSeen;
    expect(db.removeIf(file, unchanged)).toBe(false);
    expect(existsSync(file)).toBe(true);
    expect(db.removeIf(file, () => true)).toBe(true);
    expect(existsSync(file)).toBe(false);
  });

  it('--replay runs a module a failure file names only with --trust-module', async () => {
    const dir = tmp();
    const marker = join(dir, 'module-ran');
    const module = join(dir, 'adapter.mjs');
    // The module leaves a mark when loaded: nothing may load it without the option.
    writeFileSync(module, `import { writeFileSync } from 'node:fs';\nwriteFileSync(${JSON.stringify(marker)}, 'ran');\nexport default () => ({});\n`);
    database(dir).record(failureRecord(await found(viaProtect), origin({ kind: 'module', module }), '2026-12-01T10:00:00.000Z'));
    const r = await ptspec('failures', '--out', dir, '--replay');
    expect(r.stdout).toContain(`cannot replay: it names module ${module}; replay with --trust-module to run it`);
    expect(existsSync(marker)).toBe(false);
    await ptspec('failures', '--out', dir, '--replay', '--trust-module');
    expect(existsSync(marker)).toBe(true);
  });

  it('refuses a failure directory it cannot read, exit 2', async () => {
    const file = join(tmp(), 'not-a-dir');
    writeFileSync(file, '');
    const r = await ptspec('failures', '--out', file);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^error: --out .*not-a-dir: cannot read the failure directory: ENOTDIR/);
  });

  it('a campaign that finds a stored failure fixed says how to prune it', async () => {
    const { dir, fixed } = await seededDir();
    const r = await ptspec('fuzz', '--scenario', 'kernel', '--runs', '1', '--jobs', '1', '--seed', '1', '--max-commands', '5', '--out', dir);
    expect(r.stdout).toContain('no longer reproduces: impl--kernel--postcondition--leaves');
    expect(r.stdout).toContain(`Remove the ones that no longer reproduce: ptspec failures --prune --out ${dir}`);
    expect(existsSync(fixed)).toBe(true);
  }, 60_000);
});

describe('ptspec replay --steps all', () => {
  it('shows what every step, boot included, changed on both systems', async () => {
    const { dir, key } = await seededDir();
    const file = join(dir, `${key}.json`);
    const all = await ptspec('replay', file, '--steps', 'all');
    expect(all.code).toBe(1);
    // Boot step 0 maps the direct map; run step 0 unmaps the gigabyte's direct-map alias, step 1 maps it WP.
    expect(all.stdout).toMatch(/ boot 0  map .*\n +model: 0 leaves removed, \d+ added;.*\n(.*\n)*? +impl : 0 leaves removed/);
    expect(all.stdout).toMatch(/\n +1  map root=0 .*=> ok\n +model: 0 leaves removed, 1 added;/);
    const failing = await ptspec('replay', file);
    expect(failing.stdout).not.toMatch(/ boot 0 /);
    expect(failing.stdout).not.toMatch(/=> ok\n +model: /);
    const bad = await ptspec('replay', file, '--steps', 'some');
    expect(bad.code).toBe(2);
  }, 60_000);
});

describe('ptspec dump --impl', () => {
  it('prints a user implementation\'s booted tables as dump does for the built-in ones', async () => {
    const user = await ptspec('dump', '--impl', 'test/fixtures/user-impl.ts');
    expect(user.code).toBe(0);
    expect(user.stdout).toBe((await ptspec('dump', '--system', 'impl')).stdout);
    expect((await ptspec('dump', '--impl', 'test/fixtures/user-impl.ts', '--scenario', 'kernel-5level')).stdout).toBe((await ptspec('dump', '--system', 'impl', '--scenario', 'kernel-5level')).stdout);
  });

  it('refuses a module that is missing or incomplete, exit 2', async () => {
    const missing = await ptspec('dump', '--impl', 'no-such-module.ts');
    expect([missing.code, missing.stderr]).toEqual([2, 'ptspec dump: --impl no-such-module.ts: no such file\n']);
    const incomplete = await ptspec('dump', '--impl', 'test/fixtures/user-impl-incomplete.ts');
    expect(incomplete.code).toBe(2);
    expect(incomplete.stderr).toContain('does not implement PageTableSystem: method collapse() is missing');
  });
});
