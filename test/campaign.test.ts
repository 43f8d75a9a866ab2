import { mkdirSync, mkdtempSync, readdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Command, Op } from '../spec/commands.ts';
import { globalRunIndex, runSeed, shrinkFailure } from '../fuzz/campaign-run.ts';
import type { TraceFailure } from '../fuzz/check.ts';
import { FailureDb, fileNameOf } from '../fuzz/failure-db.ts';
import { coverageGaps } from '../fuzz/coverage-goals.ts';
import { POSSIBLE_OUTCOMES } from '../spec/contracts/outcome.ts';
import { OPERATIONS } from '../spec/operations.ts';
import { emptyCoverage } from '../fuzz/coverage.ts';
import { loadUserImpl, missingParts, REQUIRED_METHODS } from '../fuzz/user-impl.ts';
import { formatFailureFile, parseFailureFile, type FailureFile } from '../fuzz/failure-file.ts';
import { kernelScenario } from '../spec/scenario.ts';

const codec = { parse: parseFailureFile, format: formatFailureFile };

function record(key: string, commands: readonly Command[], lastSeen = '2026-11-26T10:00:00.000Z'): FailureFile {
  const command = commands[commands.length - 1] ?? { op: 'flushAll' };
  return {
    format: 'ptspec-failure', version: 3, ptspecVersion: '0.1.0', key, scenario: 'kernel', target: { kind: 'impl' },
    maxCommands: 100, fullCheckEvery: 50, campaignSeed: 1, runIndex: 0, seed: 1, path: '', commands,
    failure: { kind: 'outcome-mismatch', cause: 'errno', phase: 'run', step: commands.length - 1, check: 'outcome', command, detail: 'differs', witnesses: [], model: { outcome: 'ok' }, impl: { outcome: 'EINVAL', arg: 'vpn', message: 'EINVAL: vpn: bad' } },
    count: 1, firstSeen: lastSeen, lastSeen,
  };
}

const flushAll: Command = { op: 'flushAll' };
const flush: Command = { op: 'flush', vpn: 0xffffc9000000a, pages: 1 };

describe('failure database', () => {
  it('writes a new failure once and counts repeats without rewriting the trace', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ptspec-db-'));
    const db = new FailureDb<FailureFile>(join(dir, 'failures'), codec);
    const first = db.record(record('impl--kernel--outcome-mismatch--flush', [flush]));
    expect(first).toMatchObject({ isNew: true, count: 1 });
    const again = db.record(record('impl--kernel--outcome-mismatch--flush', [flushAll, flush], '2026-11-26T11:00:00.000Z'));
    expect(again).toMatchObject({ isNew: false, count: 2, file: first.file });
    expect(db.bump('impl--kernel--outcome-mismatch--flush', 3, '2026-11-26T12:00:00.000Z')).toBe(5);

    const stored = parseFailureFile(readFileSync(first.file, 'utf8'));
    expect(stored.ok && stored.value.count).toBe(5);
    expect(stored.ok && stored.value.commands).toEqual([flush]);
    expect(stored.ok && stored.value.lastSeen).toBe('2026-11-26T12:00:00.000Z');
    // Only the record itself: no temporary or lock file survives a write.
    expect(readdirSync(join(dir, 'failures'))).toEqual([fileNameOf('impl--kernel--outcome-mismatch--flush')]);
  });

  it('takes an earlier run\'s trace with replace, keeping and bumping the count', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ptspec-db-'));
    const db = new FailureDb<FailureFile>(dir, codec);
    db.record(record('k', [flushAll, flush]));
    expect(db.replace(record('k', [flush]))).toMatchObject({ count: 2 });
    const { stored, broken } = db.load();
    expect(broken).toEqual([]);
    expect(stored.map((s) => [s.record.count, s.record.commands])).toEqual([[2, [flush]]]);
  });

  it('keeps a file whole when a write fails midway, and reports files it cannot read', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ptspec-db-'));
    const db = new FailureDb<FailureFile>(dir, codec);
    db.record(record('k', [flush]));
    const throwing = new FailureDb<FailureFile>(dir, { parse: parseFailureFile, format: () => { throw new Error('disk full'); } });
    expect(() => throwing.record(record('k', [flush]))).toThrow('disk full');
    writeFileSync(join(dir, 'hand-edited.json'), '{"format": "ptspec-failure"}');
    const { stored, broken } = db.load();
    expect(stored.map((s) => s.record.count)).toEqual([1]);
    expect(broken).toHaveLength(1);
    expect(broken[0]!.errors).toContain('version: missing (expected 3)');
  });

  it('lists an unreadable entry as broken instead of stopping the campaign', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ptspec-db-'));
    const db = new FailureDb<FailureFile>(dir, codec);
    db.record(record('k', [flush]));
    mkdirSync(join(dir, 'not-a-file.json'));
    const { stored, broken } = db.load();
    expect(stored).toHaveLength(1);
    expect(broken.map((b) => b.file)).toEqual([join(dir, 'not-a-file.json')]);
    expect(broken[0]!.errors[0]).toMatch(/^cannot read: a directory, not a regular file$/);
  });

  it('breaks only a stale lock left by a dead process', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ptspec-db-'));
    const db = new FailureDb<FailureFile>(dir, codec);
    const lock = `${db.fileOf('k')}.lock`;
    writeFileSync(lock, '');
    const longAgo = new Date(Date.now() - 60_000);
    utimesSync(lock, longAgo, longAgo);
    expect(db.record(record('k', [flush]))).toMatchObject({ isNew: true, count: 1 });
    expect(readdirSync(dir)).toEqual([fileNameOf('k')]);
  });

  it('starts empty when the directory does not exist yet', () => {
    const db = new FailureDb<FailureFile>(join(tmpdir(), 'ptspec-db-none', String(process.pid)), codec);
    expect(db.load()).toEqual({ stored: [], broken: [] });
  });
});

describe('campaign seeds', () => {
  it('gives every run of a campaign its own seed, the same on every call', () => {
    const seeds = new Set(Array.from({ length: 5000 }, (_, i) => runSeed(42, i)));
    expect(seeds.size).toBe(5000);
    expect(runSeed(42, 17)).toBe(runSeed(42, 17));
    expect(runSeed(42, 17)).not.toBe(runSeed(43, 17));
  });

  it('gives shards disjoint run indexes, so they never repeat a seed', () => {
    const shards = 3;
    const all = Array.from({ length: shards }, (_, s) => Array.from({ length: 100 }, (_, k) => runSeed(9, globalRunIndex(k, s, shards))));
    const union = new Set(all.flat());
    expect(union.size).toBe(300);
  });
});

describe('shrinking', () => {
  const failure = (step: number, command: Command): TraceFailure => ({
    kind: 'outcome-mismatch', cause: 'errno', phase: 'run', step, command, check: 'outcome', witnesses: [], detail: 'x',
    model: { outcome: 'ok' }, impl: { outcome: 'EINVAL' },
  });

  it('deletes every command the failure does not need and cuts after the failing step', () => {
    // A synthetic bug: fails at the first flush that comes after a flushAll.
    const failsSame = (cs: readonly Command[]): TraceFailure | null => {
      const a = cs.findIndex((c) => c.op === 'flushAll');
      const b = cs.findIndex((c, i) => i > a && a >= 0 && c.op === 'flush');
      return b < 0 ? null : failure(b, cs[b]!);
    };
    const generated: Command[] = [flush, flush, flushAll, flush, flushAll, flush, flush, flushAll];
    const shrunk = shrinkFailure({ commands: generated, failure: failsSame(generated)! }, failsSame, 100);
    expect(shrunk.commands).toEqual([flushAll, flush]);
    expect(shrunk.failure.step).toBe(1);
    expect(shrunk.path).not.toBe('');
  });

  it('stops after the budget, with a sequence that still fails', () => {
    let calls = 0;
    const failsSame = (cs: readonly Command[]): TraceFailure | null => {
      calls++;
      return cs.length >= 1 ? failure(cs.length - 1, cs[cs.length - 1]!) : null;
    };
    const generated: Command[] = Array.from({ length: 64 }, () => flush);
    const shrunk = shrinkFailure({ commands: generated, failure: failure(63, flush) }, failsSame, 5);
    expect(calls).toBe(5);
    expect(failsSame(shrunk.commands)).not.toBeNull();
  });
});

describe('coverage gaps', () => {
  it('lists every possible outcome, access, size and region of an empty campaign', () => {
    const scenario = kernelScenario();
    const gaps = coverageGaps(emptyCoverage(), scenario, ['S1', 'P2']);
    // No isolation or client operation ran (a target without either capability): the core ones only.
    const core = Object.entries(POSSIBLE_OUTCOMES).filter(([op]) => OPERATIONS[op as Op].capability === 'core');
    expect(gaps.outcomes).toHaveLength(core.reduce((n, [, outs]) => n + outs.length, 0));
    expect(gaps.outcomes).toContain('map→ENOMEM');
    expect(gaps.outcomes).not.toContain('setLdt→ok');
    // One isolation command ran: every isolation outcome it could have is asked for too, and
    // no client one; one client command more, and every outcome of the table is.
    const iso = emptyCoverage();
    iso.outcomes['createProcess'] = { ok: 1 };
    const count = (cap: string): number => Object.entries(POSSIBLE_OUTCOMES).filter(([op]) => OPERATIONS[op as Op].capability === cap).reduce((n, [, outs]) => n + outs.length, 0);
    expect(coverageGaps(iso, scenario, []).outcomes).toHaveLength(count('core') + count('isolation') - 1);
    iso.outcomes['walkPageRange'] = { ok: 1 };
    const all = Object.values(POSSIBLE_OUTCOMES).reduce((n, outs) => n + outs.length, 0);
    // But memory hotplug's that need hotplug space, which the kernel scenario has none of.
    const every = coverageGaps(iso, scenario, []).outcomes;
    expect(every).not.toContain('addMemory→ok');
    expect(every).toContain('addMemory→EEXIST');
    expect(every).toHaveLength(all - 2 - 7);
    expect(gaps.pageSizes).toEqual(['4K', '2M', '1G']);
    expect(gaps.regions).toEqual(scenario.regions.map((r) => r.name));
    expect(gaps.invariants).toEqual(['S1', 'P2']);
  });

  it('drops what a campaign hit', () => {
    const cov = emptyCoverage();
    cov.outcomes['map'] = { ok: 3, ENOMEM: 1 };
    cov.invariants['S1'] = 10;
    cov.pageSizes['2M'] = 1;
    const gaps = coverageGaps(cov, kernelScenario(), ['S1', 'P2']);
    expect(gaps.outcomes).not.toContain('map→ok');
    expect(gaps.outcomes).not.toContain('map→ENOMEM');
    expect(gaps.pageSizes).toEqual(['4K', '1G']);
    expect(gaps.invariants).toEqual(['P2']);
  });
});

describe('user implementations (--impl)', () => {
  it('loads a module whose default export is a factory', async () => {
    const factory = await loadUserImpl('test/fixtures/user-impl.ts', kernelScenario());
    expect(missingParts(factory(kernelScenario()))).toEqual([]);
  });

  it('names every missing method and a missing config', () => {
    expect(missingParts({ map: () => undefined, unmap: 3 })).toEqual([
      'unmap is a number, not a method',
      ...REQUIRED_METHODS.filter((m) => m !== 'map' && m !== 'unmap').map((m) => `method ${m}() is missing`),
      'property config (the SystemConfig it was built with) is missing',
    ]);
    expect(missingParts(null)).toEqual(['the factory returned null, not a PageTableSystem object']);
  });

  it('refuses a module without a factory export, saying what it exports', async () => {
    await expect(loadUserImpl('test/seed.ts', kernelScenario())).rejects.toThrow(/default export is missing, named exports SEED, fcParams; expected a function \(setup\) => PageTableSystem as the default export, or a named export createSystem$/);
  });
});
