/**
 * The process adapter (fuzz/process-impl.ts, `--impl-cmd`) against the C test programs of
 * c/test, built here with cc and c/ptspec-main.c: the stub answers like the model through
 * the protocol on a seeded random sequence of the operations it supports; a program whose
 * map hangs is killed at the command timeout, one that aborts is reported with its signal
 * and stderr, one that prints text is a protocol error at the offset where it broke; and
 * no program outlives the tests.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadProcessImpl, MAX_LIVE_PROCESSES, ProcessImplError, splitCommand, type ProcessImpl } from '../fuzz/process-impl.ts';
import { createModel } from '../model/index.ts';
import { kernelLayout, type Vpn } from '../spec/address.ts';
import { applyCommand, type Command } from '../spec/commands.ts';
import type { Result } from '../spec/errors.ts';
import { SCENARIOS } from '../spec/scenario.ts';
import { PAGE_KERNEL, PAGE_KERNEL_RO, type AbstractState } from '../spec/state.ts';
import type { PageTableSystem, SystemSetup } from '../spec/system.ts';
import { SEED } from './seed.ts';

const PROGRAMS = ['stub', 'hang', 'crash', 'garbage'] as const;
let dir = '';
const bin = (p: (typeof PROGRAMS)[number]): string => join(dir, p);

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ptspec-process-'));
  for (const p of PROGRAMS) {
    const sources = p === 'garbage' ? ['c/test/garbage.c'] : ['c/ptspec-main.c', `c/test/${p}.c`];
    execFileSync('cc', ['-O2', '-Wall', '-Werror', '-o', bin(p), ...sources]);
  }
}, 60_000);

const impls: ProcessImpl[] = [];
const load = (command: string, timeoutMs?: number): ProcessImpl => {
  const impl = loadProcessImpl(command, timeoutMs === undefined ? {} : { timeoutMs });
  impls.push(impl);
  return impl;
};

/** Pids of our live children running one of the test programs (from /proc: their parent is this process). */
function strayChildren(): number[] {
  return readdirSync('/proc').filter((d) => /^\d+$/.test(d)).flatMap((d) => {
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      return ppid === process.pid && (PROGRAMS as readonly string[]).includes(comm) ? [Number(d)] : [];
    } catch {
      return []; // exited while we read
    }
  });
}

/** Our children once at most `n` are left (they exit when they read the end of their input), or after 3 s. */
async function settled(n: number): Promise<number[]> {
  const deadline = Date.now() + 3000;
  while (strayChildren().length > n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  return strayChildren();
}

afterAll(async () => {
  for (const impl of impls) impl.closeAll();
  expect(await settled(0)).toEqual([]);
  rmSync(dir, { recursive: true, force: true });
});

/** The kernel scenario's machine and memory without its boot, under linux (the stub's profile). */
function setup(): SystemSetup {
  const s = SCENARIOS['kernel']!();
  return { config: s.config, frames: s.frames, profile: 'linux' };
}

/** What refinement compares of a result: ok and its value, or the errno, arg and invariant. */
function verdict(r: Result<unknown>): unknown {
  return r.ok ? { ok: r.value } : { errno: r.error.errno, arg: r.error.arg, invariant: r.error.invariant };
}

/** What the stub models of the abstract state: init_mm's leaves, frames, obligations, tables. */
function compared(a: AbstractState): unknown {
  return { leaves: a.roots[0]!.leaves, frames: a.frames, pendingFlush: a.pendingFlush, tablesInUse: a.tablesInUse, tlb: a.tlb };
}

/** A seeded sequence of the stub's operations over 64 pages of vmalloc space, 4K leaves only. */
function commands(seed: number, n: number): Command[] {
  let x = seed >>> 0;
  const next = (m: number): number => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return x % m;
  };
  const base: Vpn = kernelLayout(4).vmallocStart;
  const out: Command[] = [];
  for (let i = 0; i < n; i++) {
    const vpn = base + next(64);
    const pages = 1 + next(4);
    const k = next(10);
    if (k < 4) out.push({ op: 'map', root: 0, vpn, pfn: 0x2000 + next(512), pages, prot: next(2) === 0 ? PAGE_KERNEL : PAGE_KERNEL_RO, maxPage: '4K' });
    else if (k < 6) out.push({ op: 'unmap', root: 0, vpn, pages, flush: next(2) === 0 });
    else if (k < 9) out.push({ op: 'translate', root: i % 7 === 0 ? 1 : 0, vpn });
    else out.push({ op: 'flushAll' });
  }
  return out;
}

describe('the command line', () => {
  it('splits into argv as sh would, expanding nothing', () => {
    expect(splitCommand(`./prog  --x 'a b' "c \\"d\\"" e\\ f $HOME`)).toEqual(['./prog', '--x', 'a b', 'c "d"', 'e f', '$HOME']);
    expect(() => splitCommand('./prog "open')).toThrow(/never closed/);
    expect(() => splitCommand('   ')).toThrow(/empty/);
  });
});

describe('the stub through the protocol', () => {
  it('says what it supports', () => {
    const impl = load(bin('stub'));
    expect([...impl.ops].sort()).toEqual(['flush', 'flushAll', 'map', 'translate', 'unmap']);
    expect([...impl.profiles]).toEqual(['linux']);
    expect(() => impl.factory({ ...setup(), profile: 'strict' })).toThrow(/does not follow the strict profile/);
  });

  it('answers as the model does, step by step', () => {
    const impl = load(bin('stub'));
    const model = createModel(setup());
    const sys = impl.factory(setup());
    expect(compared(sys.abstract())).toEqual(compared(model.abstract()));
    const seen = new Set<string>();
    for (const [i, c] of commands(SEED, 300).entries()) {
      const where = `step ${i}: ${JSON.stringify(c)}`;
      const r = applyCommand(model, c);
      expect(verdict(applyCommand(sys, c)), where).toEqual(verdict(r));
      seen.add(`${c.op} ${r.ok ? 'ok' : r.error.errno}`);
      if (i % 25 === 0) expect(compared(sys.abstract()), where).toEqual(compared(model.abstract()));
    }
    expect(compared(sys.abstract())).toEqual(compared(model.abstract()));
    // The sequence met every answer the stub has: successes, each refusal, translations.
    for (const o of ['map ok', 'map EEXIST', 'unmap ok', 'unmap ENOENT', 'translate ok', 'translate ENOENT', 'translate EINVAL', 'flushAll ok']) expect(seen).toContain(o);
  });

  it('answers a command in well under a millisecond', () => {
    const sys = load(bin('stub')).factory(setup());
    const vpn = kernelLayout(4).vmallocStart;
    const n = 1000;
    const t0 = performance.now();
    for (let i = 0; i < n; i++) sys.translate(0, vpn + i);
    const perCommandUs = ((performance.now() - t0) / n) * 1000;
    console.log(`process adapter: ${perCommandUs.toFixed(0)} µs per command (translate, round trip through the I/O worker)`);
    expect(perCommandUs).toBeLessThan(2000);
  });
});

describe('the processes', () => {
  it('stay few: a factory ends its oldest when it would exceed its limit', async () => {
    for (const earlier of impls) earlier.closeAll();
    expect(await settled(0)).toEqual([]);
    const impl = load(bin('stub'));
    const systems = Array.from({ length: MAX_LIVE_PROCESSES + 1 }, () => impl.factory(setup()));
    expect((await settled(MAX_LIVE_PROCESSES)).length).toBe(MAX_LIVE_PROCESSES);
    expect(() => systems[0]!.flushAll()).toThrow(/flushAll on a system whose process was ended to make room: at most 32 processes/);
    expect(systems[1]!.flushAll().ok).toBe(true);
    impl.closeAll();
    expect(() => systems[1]!.flushAll()).toThrow(/whose process was closed/);
  });
});

describe('a broken program is a failure, never a hang', () => {
  const mapOne = (sys: PageTableSystem): unknown => sys.map(0, kernelLayout(4).vmallocStart, 0x2000, 1, PAGE_KERNEL, { maxPage: '4K' });

  it('a map that never returns is killed at the command timeout', () => {
    const sys = load(bin('hang'), 300).factory(setup());
    const t0 = performance.now();
    expect(() => mapOne(sys)).toThrow(ProcessImplError);
    expect(performance.now() - t0).toBeLessThan(300 + 1500);
    expect(() => mapOne(sys)).toThrow(/did not answer map within 0\.3 s: .*hang was killed/);
  });

  it('a map that aborts is reported with the signal and the last lines of stderr', () => {
    const sys = load(bin('crash')).factory(setup());
    expect(() => mapOne(sys)).toThrow(/crash was killed by SIGABRT during map, without answering; its stderr ended:\n {2}crash\.c: map of vpn 0xffffc90000000: giving up/);
  });

  it('text instead of the protocol is a protocol error naming the offset', () => {
    expect(() => load(bin('garbage'))).toThrow(/protocol error in the response to hello at byte 0 of .*garbage's output: a response of \d+ bytes .* \("usage: garbage \["\)/);
  });

  it('a program that does not exist, or exits at once, says so', () => {
    expect(() => load(join(dir, 'no-such-program'))).toThrow(/no-such-program could not be run \(spawn .* ENOENT\)/);
    expect(() => load('false')).toThrow(/false exited with code 1 during hello/);
  });
});
