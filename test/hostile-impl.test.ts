/**
 * User modules that misbehave in the ways a real adapter does (test/fixtures/hostile/):
 * each ends as a clear failure or a usage error, within bounded time, and shows the
 * module's own stack frames, never ptspec's. A map that never returns, stopped by the
 * command-timeout watchdog, is hostile-hangs.test.ts's (a slow suite: it waits out timeouts).
 */
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseFailureFile, type FailureFile } from '../fuzz/failure-file.ts';
import { frozenCopy } from '../fuzz/guard.ts';
import { ROOT, ptspec, type CliRun } from './cli.ts';

const fixture = (name: string): string => `test/fixtures/hostile/${name}.ts`;

async function fuzz(name: string, out: string, ...extra: string[]): Promise<CliRun> {
  return ptspec('fuzz', '--impl', fixture(name), '--seed', '1', '--jobs', '1', '--bail', '1', '--out', out, ...extra);
}

function stored(out: string): { readonly file: string; readonly record: FailureFile }[] {
  return readdirSync(out).filter((f) => f.endsWith('.json')).map((f) => {
    const decoded = parseFailureFile(readFileSync(join(out, f), 'utf8'));
    if (!decoded.ok) throw new Error(decoded.errors.join('\n'));
    return { file: join(out, f), record: decoded.value };
  });
}

/** A stored failure's messages carry none of ptspec's own frames, nor the machine's path to the repository. */
function expectNoPtspecStack(f: FailureFile): void {
  const text = `${f.failure.detail}\n${f.failure.impl.message ?? ''}`;
  for (const own of ['fuzz/check.ts', 'fuzz/guard.ts', 'spec/commands.ts', 'node:internal', ROOT]) expect(text).not.toContain(own);
}

const tmp = (): string => mkdtempSync(join(tmpdir(), 'ptspec-hostile-'));

describe('a module that returns something other than a Result', () => {
  for (const [name, what] of [['returns-promise', 'a Promise (operations are synchronous)'], ['returns-undefined', 'undefined']] as const) {
    it(`${name}: says what map returned`, async () => {
      const out = tmp();
      const r = await fuzz(name, out, '--runs', '1');
      expect(r.code).toBe(1);
      expect(r.stdout).toContain(`the impl returned ${what} from map, expected a Result {ok, …}`);
      expect(r.stdout).not.toContain('the impl threw');
      expectNoPtspecStack(stored(out)[0]!.record);
    });
  }
});

describe('a module that throws', () => {
  it('a string: the string is the message', async () => {
    const r = await fuzz('throws-string', tmp(), '--runs', '1');
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('the impl threw: map is not implemented yet');
  });

  it('at import: a usage error (exit 2), before any run', async () => {
    const r = await fuzz('throws-at-import', tmp(), '--runs', '1');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('this adapter is broken at import');
  });
});

describe('a module that mutates its inputs', () => {
  it('the command: a TypeError with the module\'s frames, which reproduces on replay', async () => {
    const out = tmp();
    const r = await fuzz('mutates-command', out, '--runs', '1');
    expect(r.code).toBe(1);
    const [f] = stored(out);
    expect(f!.record.failure.impl.message).toMatch(/^TypeError: Cannot assign to read only property 'global'/);
    // The module's frame, by its path in the repository (line numbers depend on source maps).
    expect(f!.record.failure.impl.message).toMatch(/\n {4}at Object\.map \(test\/fixtures\/hostile\/mutates-command\.ts:\d+:\d+\)$/);
    expectNoPtspecStack(f!.record);
    // The stored command is the generated one, not the module's edit of it.
    expect(f!.record.failure.command).toMatchObject({ op: 'map', prot: { global: true } });
    const replay = await ptspec('replay', f!.file, '--trust-module');
    expect(replay.code).toBe(1);
    expect(replay.stdout).toContain("Cannot assign to read only property 'global'");
  });

  it('the setup: refused before the campaign starts (exit 2)', async () => {
    const r = await fuzz('mutates-setup', tmp(), '--runs', '1');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/the factory threw while building a system: Cannot assign to read only property/);
  });

  it('frozenCopy leaves the original writable and freezes the copy all the way down', () => {
    const original = { prot: { write: true }, runs: [{ pfn: 1 }] };
    const copy = frozenCopy(original);
    expect(copy).toEqual(original);
    expect(Object.isFrozen(copy.prot) && Object.isFrozen(copy.runs) && Object.isFrozen(copy.runs[0])).toBe(true);
    expect(Object.isFrozen(original.prot)).toBe(false);
  });
});
