/**
 * Probes of what can go wrong around a campaign, each pinned so it stays fixed: names that
 * are Object.prototype's, budgets that run nothing, signals, leftovers of a killed
 * campaign, failure files that are corrupt, not files, or not writable, modules named by
 * a file, and text that could drive the terminal. Bad usage exits 2 with a message and
 * never a stack trace of ptspec.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { FailureDb } from '../fuzz/failure-db.ts';
import { formatFailureFile, parseFailureFile, type FailureFile } from '../fuzz/failure-file.ts';
import { jobsParser } from '../cli/options.ts';
import { ptspec, ROOT, type CliRun } from './cli.ts';

const tmp = (): string => mkdtempSync(join(tmpdir(), 'ptspec-robust-'));
/** A stack frame of ours in the output: what bad usage must never print. */
const STACK = /\n\s+at .*\.(ts|js):\d+/;
const CAMPAIGN = ['--mutant', 'unmap-no-split', '--runs', '30', '--bail', '1', '--jobs', '1', '--seed', '1', '--max-commands', '40'];

function expectUsage(r: CliRun, ...messages: string[]): void {
  expect(r.code, r.stderr).toBe(2);
  expect(r.stderr).not.toMatch(STACK);
  for (const m of messages) expect(r.stderr).toContain(m);
}

let found: string; // a failure file a real campaign wrote
let record: FailureFile;
beforeAll(async () => {
  const out = tmp();
  expect((await ptspec('fuzz', ...CAMPAIGN, '--out', out)).code).toBe(1);
  found = join(out, readdirSync(out).find((n) => n.endsWith('.json'))!);
  const r = parseFailureFile(readFileSync(found, 'utf8'));
  if (!r.ok) throw new Error(r.errors.join('\n'));
  record = r.value;
}, 60_000);

describe("names that are Object.prototype's", () => {
  it.each(['constructor', '__proto__', 'toString'])('scenario %s is unknown everywhere, exit 2', async (name) => {
    expectUsage(await ptspec('fuzz', '--scenario', name, '--out', tmp()), `argument '${name}' is invalid`);
    const dump = await ptspec('dump', '--scenario', name);
    expect(dump.code).toBe(2);
    expect(dump.stderr).toContain(`unknown scenario "${name}"`);
    const file = join(tmp(), 'f.json');
    writeFileSync(file, formatFailureFile({ ...record, scenario: name }));
    expectUsage(await ptspec('replay', file), `unknown scenario "${name}"`);
  });
});

describe('budgets and workers', () => {
  it('a time budget below 1 ms is refused; one spent before any run is NOTHING RAN, exit 1', async () => {
    expectUsage(await ptspec('fuzz', '--time', '0.4ms', '--out', tmp()), 'from 1ms to 7 days');
    const r = await ptspec('fuzz', '--time', '1ms', '--jobs', '1', '--out', tmp());
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('NOTHING RAN');
    expect(r.stdout).not.toContain('PASSED');
  }, 30_000);

  it('--jobs is bounded by the cores and the memory, and the message says so', () => {
    const jobs = jobsParser(2, 8 * 2 ** 30);
    expect(jobs('8')).toBe(8);
    expect(() => jobs('9')).toThrow('--jobs must be an integer from 1 to 8 on this machine (4 workers per core of 2 is 8; ~300 MB per worker of 8 GiB is 27).');
    expect(() => jobsParser(64, 2 ** 30)('4')).toThrow('from 1 to 3 on this machine');
  });
});

describe('signals', () => {
  /** A spawned campaign sent `signal` `afterMs` after it is running: its exit code, output, and how long it took to stop. */
  function interrupted(signal: NodeJS.Signals, args: readonly string[] = ['--time', '60s'], afterMs = 300): Promise<CliRun & { readonly stopMs: number }> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, ['bin/ptspec.js', 'fuzz', '--jobs', '1', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      let sentAt = 0;
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => {
        // The banner is printed once the handlers are installed.
        if (!stderr.includes('ptspec fuzz:') && (stderr += d.toString()).includes('ptspec fuzz:')) {
          setTimeout(() => {
            sentAt = Date.now();
            child.kill(signal);
          }, afterMs);
        } else stderr += d.toString();
      });
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stdout, stderr, stopMs: Date.now() - sentAt }));
    });
  }

  it('SIGINT and SIGTERM stop the campaign: INTERRUPTED, exit 130 and 143', async () => {
    const [int, term] = await Promise.all([interrupted('SIGINT', ['--time', '60s', '--out', tmp()]), interrupted('SIGTERM', ['--time', '60s', '--out', tmp()])]);
    expect(int.code, int.stderr).toBe(130);
    expect(int.stdout).toContain('INTERRUPTED');
    expect(int.stdout).not.toContain('PASSED');
    expect(term.code, term.stderr).toBe(143);
    expect(term.stdout).toContain('INTERRUPTED');
  }, 60_000);

  it('does not wait for a run in flight: a hung one is abandoned, and the failures found before are written', async () => {
    const out = tmp();
    // No command timeout: the run that hangs would never end by itself.
    const r = await interrupted('SIGINT', ['--impl', 'test/fixtures/hostile/fails-then-hangs.ts', '--command-timeout', '0', '--seed', '1', '--time', '5m', '--out', out], 8000);
    expect(r.code, r.stderr).toBe(130);
    expect(r.stopMs).toBeLessThan(5000);
    expect(r.stdout).toContain('INTERRUPTED');
    expect(r.stdout).toMatch(/FAILED: \d+ distinct failure/);
    const files = readdirSync(out).filter((n) => n.endsWith('.json'));
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) expect(parseFailureFile(readFileSync(join(out, f), 'utf8')).ok).toBe(true);
  }, 60_000);
});

describe('leftovers of a killed campaign', () => {
  const DEAD = 2 ** 30; // above any pid_max: no such process
  const db = (dir: string): FailureDb<FailureFile> => new FailureDb(dir, { parse: parseFailureFile, format: formatFailureFile });

  it('temporary files and locks of a dead pid are removed at load; a live pid keeps its temporary file', () => {
    const dir = tmp();
    const mine = `a.json.${process.pid}.0.k1.tmp`;
    writeFileSync(join(dir, `a.json.${DEAD}.0.k1.tmp`), '{');
    writeFileSync(join(dir, mine), '{');
    writeFileSync(join(dir, 'a.json.lock'), String(DEAD));
    expect(db(dir).load()).toEqual({ stored: [], broken: [] });
    expect(readdirSync(dir)).toEqual([mine]);
  });

  it('a lock held by a dead pid, or older than the stale age, is taken over at once', () => {
    const dir = tmp();
    const file = join(dir, basename(found));
    writeFileSync(`${file}.lock`, String(DEAD));
    const start = Date.now();
    expect(db(dir).record(record).isNew).toBe(true);
    // A lock with no pid (another machine, or torn) is stale only by its age.
    writeFileSync(`${file}.lock`, '');
    utimesSync(`${file}.lock`, new Date(0), new Date(0));
    expect(db(dir).record(record).count).toBe(2);
    expect(Date.now() - start).toBeLessThan(2000);
    expect(existsSync(`${file}.lock`)).toBe(false);
  });
});

describe('failure directories that are not plain', () => {
  it('a FIFO or a directory named *.json is reported as broken, never read', async () => {
    const dir = tmp();
    execFileSync('mkfifo', [join(dir, 'pipe.json')]);
    mkdirSync(join(dir, 'dir.json'));
    const r = await ptspec('failures', '--out', dir);
    expect(r.stdout).toContain('a FIFO, not a regular file');
    expect(r.stdout).toContain('a directory, not a regular file');
    expectUsage(await ptspec('replay', join(dir, 'pipe.json')), 'a FIFO, not a regular file');
  });

  it('--out where no directory can be made is bad usage, not a hang', async () => {
    expectUsage(await ptspec('fuzz', '--runs', '1', '--out', '/proc/ptspec-x'), '--out /proc/ptspec-x: cannot create');
  });

  it('a failure that cannot be written goes to stderr whole, and the campaign fails', async () => {
    const out = tmp();
    // The failure's own file cannot be written: a directory is in its place.
    mkdirSync(join(out, basename(found)));
    const r = await ptspec('fuzz', ...CAMPAIGN, '--out', out);
    expect(r.code).toBe(1);
    expect(r.stderr).not.toMatch(STACK);
    expect(r.stderr).toContain(`cannot write ${join(out, basename(found))}`);
    const lost = r.stderr.slice(r.stderr.indexOf('{\n'), r.stderr.indexOf('\n}\n') + 2);
    expect(parseFailureFile(lost).ok).toBe(true);
    expect(r.stdout).toContain('NOT WRITTEN');
  }, 60_000);
});

describe('what failure files name and say', () => {
  it('a file naming a module does not run it unless asked', async () => {
    const dir = tmp();
    const marker = join(dir, 'ran');
    const module = join(dir, 'adapter.mjs');
    writeFileSync(module, `import { writeFileSync } from 'node:fs'; writeFileSync(${JSON.stringify(marker)}, ''); export default () => { throw new Error('no'); };\n`);
    const file = join(dir, 'f.json');
    writeFileSync(file, formatFailureFile({ ...record, target: { kind: 'module', module } }));
    expectUsage(await ptspec('replay', file), `names the module ${JSON.stringify(module)}`, `ptspec replay ${file} --trust-module`);
    expect(existsSync(marker)).toBe(false);
  });

  it('control characters from a file reach the terminal as \\xNN', async () => {
    const file = join(tmp(), 'f.json');
    writeFileSync(file, formatFailureFile({ ...record, failure: { ...record.failure, detail: 'red \x1b[31m bell \x07 end' } }));
    const r = await ptspec('replay', file);
    expect(r.stdout).toContain('red \\x1b[31m bell \\x07 end');
    expect(r.stdout).not.toContain('\x1b');
  }, 30_000);
});

/** A deterministic stream of numbers in [0, 1) (mulberry32). */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 2 ** 32;
  };
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Every path to a value in `v`, the root excluded. */
function paths(v: Json, at: (string | number)[] = []): (string | number)[][] {
  if (v === null || typeof v !== 'object') return [];
  const keys: (string | number)[] = Array.isArray(v) ? v.map((_, i) => i) : Object.keys(v);
  return keys.flatMap((k) => [[...at, k], ...paths((v as Record<string | number, Json>)[k]!, [...at, k])]);
}

function replaced(v: Json, path: readonly (string | number)[], value: Json): Json {
  if (path.length === 0) return value;
  const copy = (Array.isArray(v) ? [...v] : { ...(v as object) }) as Record<string | number, Json>;
  copy[path[0]!] = replaced(copy[path[0]!]!, path.slice(1), value);
  return copy as Json;
}

/** A value of another JSON type than `v`'s. */
function wrongType(v: Json, pick: number): Json {
  const kinds: Json[] = [null, true, 7.5, 'text', [], { bogus: 1 }];
  const typeOf = (x: Json): string => (x === null ? 'null' : Array.isArray(x) ? 'array' : typeof x);
  const others = kinds.filter((k) => typeOf(k) !== typeOf(v));
  return others[Math.floor(pick * others.length)]!;
}

/** Corrupted versions of a failure file's text, each with a name saying how: a few hundred. */
function corruptions(text: string, seed: number): [string, Buffer][] {
  const rnd = random(seed);
  const json = JSON.parse(text) as Json;
  const all = paths(json);
  const nested = (depth: number): string => `${'['.repeat(depth)}${']'.repeat(depth)}`;
  const out: [string, Buffer][] = [];
  for (let i = 0; i < 100; i++) {
    const at = Math.floor(rnd() * (text.length - 1));
    out.push([`truncated at ${at}`, Buffer.from(text.slice(0, at))]);
  }
  for (let i = 0; i < 150; i++) {
    const p = all[Math.floor(rnd() * all.length)]!;
    const old = p.reduce<Json>((v, k) => (v as Record<string | number, Json>)[k]!, json);
    out.push([`wrong type at ${p.join('.')}`, Buffer.from(JSON.stringify(replaced(json, p, wrongType(old, rnd()))))]);
  }
  for (let i = 0; i < 20; i++) {
    const p = all[Math.floor(rnd() * all.length)]!;
    const depth = 1000 + Math.floor(rnd() * 50_000);
    // A marker string stands where the nesting goes: JSON.stringify itself could not nest that deep.
    const marked = JSON.stringify(replaced(json, p, '@deep@'));
    out.push([`nested ${depth} deep at ${p.join('.')}`, Buffer.from(marked.replace('"@deep@"', nested(depth)))]);
  }
  const at = text.indexOf('"count"');
  out.push(
    ['NaN', Buffer.from(`${text.slice(0, at)}"count": NaN, ${text.slice(at)}`)],
    ['UTF-8 byte-order mark', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(text)])],
    ['UTF-16LE with a byte-order mark', Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, 'utf16le')])],
    ['UTF-16LE', Buffer.from(text, 'utf16le')],
    ['UTF-16BE with a byte-order mark', Buffer.from(`\ufeff${text}`, 'utf16le').swap16()],
    ['trailing garbage', Buffer.from(`${text}x`)],
    // Thousands of errors: the report is capped.
    ['5000 wrong commands', Buffer.from(JSON.stringify(replaced(json, ['commands'], Array.from({ length: 5000 }, () => 5))))],
    ['empty', Buffer.alloc(0)],
  );
  return out;
}

describe('corrupted failure files', () => {
  it('every one exits 2 naming the file and where, with no stack trace', async () => {
    const dir = tmp();
    const cases = corruptions(readFileSync(found, 'utf8'), 20261201);
    expect(cases.length).toBeGreaterThan(250);
    for (const [i, [how, bytes]] of cases.entries()) {
      const file = join(dir, `case-${i}.json`);
      writeFileSync(file, bytes);
      const r = await ptspec('replay', file);
      expect(r.code, `${how}: ${r.stderr}${r.stdout.slice(0, 300)}`).toBe(2);
      expect(r.stderr, how).toContain(file);
      // Where: a line and column, or a field path before the message.
      expect(r.stderr, how).toMatch(/line \d+, column \d+|\n {2}[\w.[\]()]+: /);
      expect(r.stderr, how).not.toMatch(STACK);
      expect(r.stderr.split('\n').length, how).toBeLessThan(30);
    }
  }, 30_000);
});
