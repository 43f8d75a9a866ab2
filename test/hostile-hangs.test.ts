/**
 * A user module that hangs wherever ptspec runs its code, not only inside a run: building
 * its trial system before the campaign, booting the scenario, `fuzz --replay`'s rerun,
 * and a shorter trace tried while shrinking. Each is bounded by --command-timeout (run in
 * a worker under fuzz/watchdog.ts) and ends as a clear error or a `timeout` failure.
 */
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runSeed } from '../fuzz/campaign-run.ts';
import { parseFailureFile, type FailureFile } from '../fuzz/failure-file.ts';
import { ptspec, type CliRun } from './cli.ts';

const tmp = (): string => mkdtempSync(join(tmpdir(), 'ptspec-hangs-'));
const STACK = /\n\s+at .*\.(ts|js):\d+/;

async function timed(...args: string[]): Promise<CliRun & { readonly ms: number }> {
  const start = Date.now();
  const r = await ptspec(...args);
  return { ...r, ms: Date.now() - start };
}

function stored(out: string): FailureFile[] {
  return readdirSync(out).filter((f) => f.endsWith('.json')).map((f) => {
    const r = parseFailureFile(readFileSync(join(out, f), 'utf8'));
    if (!r.ok) throw new Error(r.errors.join('\n'));
    return r.value;
  });
}

// The toy machine: its boot is nine commands, so the hangs fall where these tests expect them.
const impl = (name: string): string[] => ['--impl', `test/fixtures/hostile/${name}.ts`, '--scenario', 'kernel', '--jobs', '1', '--command-timeout', '1s'];

describe('a module that hangs outside a run', () => {
  it('in its factory: the trial system is a usage error after the timeout (exit 2)', async () => {
    const r = await timed('fuzz', ...impl('hangs-in-factory'), '--runs', '1', '--out', tmp());
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toContain('loading the module and building one system did not return within 1s (--command-timeout)');
    expect(r.stderr).not.toMatch(STACK);
    expect(r.ms).toBeLessThan(10_000);
  }, 20_000);

  it('in the boot: a timeout failure at boot, no run started (exit 1)', async () => {
    const out = tmp();
    const r = await timed('fuzz', ...impl('hangs-in-boot'), '--runs', '5', '--out', out);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stdout).toContain("the scenario's boot failed on the target, so no run was started");
    expect(r.ms).toBeLessThan(15_000);
    const [f, ...more] = stored(out);
    expect(more).toEqual([]);
    expect(f!.failure).toMatchObject({ kind: 'timeout', phase: 'boot' });
    expect(f!.failure.detail).toContain('did not return within 1s (--command-timeout) while its systems were built and the scenario booted');
  }, 30_000);

  it('in fuzz --replay: the rerun is stopped and filed as a timeout (exit 1)', async () => {
    const out = tmp();
    // Run 2 of seed 1 maps addresses the boot does not: never-returns hangs at the first.
    const r = await timed('fuzz', ...impl('never-returns'), '--replay', `${runSeed(1, 2)}:`, '--out', out);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stdout).toContain('the impl did not return from map within 1s');
    expect(r.ms).toBeLessThan(15_000);
    expect(stored(out).map((f) => f.failure.kind)).toEqual(['timeout']);
  }, 30_000);
});

describe('a module that hangs on a trace the shrinker tries', () => {
  it('its failure is still filed shrunk, and the hang as a timeout of its own', async () => {
    const out = tmp();
    // Run 0 of seed 6 (40 commands at most) has a translate after other commands, which
    // fails; the shrinker's candidate that starts with it hangs.
    const r = await timed('fuzz', ...impl('hangs-when-shrunk'), '--seed', '6', '--runs', '1', '--max-commands', '40', '--out', out);
    expect(r.code, r.stderr).toBe(1);
    const byKind = new Map(stored(out).map((f) => [f.failure.kind, f]));
    expect([...byKind.keys()].sort()).toEqual(['outcome-mismatch', 'timeout']);
    const mismatch = byKind.get('outcome-mismatch')!;
    expect(mismatch.commands.length).toBeLessThanOrEqual(3);
    expect(mismatch.commands.at(-1)!.op).toBe('translate');
    expect(mismatch.path).not.toBe('timeout');
    // The hang: a trace that starts with the translate.
    const hang = byKind.get('timeout')!;
    expect(hang.commands.map((c) => c.op)).toEqual(['translate']);
    expect(hang.failure.detail).toContain('did not return from translate within 1s');
    expect(r.ms).toBeLessThan(30_000);
  }, 45_000);
});

describe('a module whose operation never returns', () => {
  it('is stopped at the hung step, filed as a timeout, and its stored failure replays bounded', async () => {
    const out = tmp();
    const r = await timed('fuzz', ...impl('never-returns'), '--seed', '1', '--bail', '1', '--runs', '20', '--out', out);
    expect(r.code, r.stderr).toBe(1);
    // Two workers start (the trial system with the boot check, then the runs), seconds each on a busy machine.
    expect(r.ms).toBeLessThan(30_000);
    expect(r.stdout).toContain('the impl did not return from map within 1s');
    expect(r.stdout).toContain('replayed by the next campaign first');
    const [f] = stored(out);
    expect(f!.failure).toMatchObject({ kind: 'timeout', cause: 'impl', phase: 'run', command: { op: 'map' } });
    expect(f!.failure.step).toBe(f!.commands.length - 1);

    // The next campaign replays it first, in a worker under the watchdog.
    const again = await timed('fuzz', ...impl('never-returns'), '--seed', '1', '--bail', '1', '--runs', '1', '--out', out);
    expect(again.stdout).toContain('1 still fails');
    // ptspec replay runs on the main thread: it says why it will not, and where it is done.
    const file = join(out, readdirSync(out).find((n) => n.endsWith('.json'))!);
    const replay = await ptspec('replay', file, '--trust-module');
    expect(replay.code).toBe(2);
    expect(replay.stderr).toContain('is a timeout');
    const list = await ptspec('failures', '--out', out, '--replay');
    expect(list.stdout).toContain('cannot replay: a timeout');
  }, 60_000);
});
