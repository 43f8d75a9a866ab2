/**
 * Two processes that find the same stale lock (its holder was killed) must not both take
 * it over (fuzz/failure-db.ts takeOverStaleLock): each would then count its sighting on
 * a record the other is rewriting, and one count would be lost.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { FailureDb, fileNameOf, takeOverStaleLock } from '../fuzz/failure-db.ts';
import { ROOT } from './cli.ts';

const KEYS = 60;
const DEAD = 2 ** 30; // above any pid_max: no such process

function racer(dir: string, start: number): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/lock-race.ts', dir, String(KEYS), String(start)], { cwd: ROOT, stdio: 'inherit' });
    child.on('error', reject);
    child.on('close', resolve);
  });
}

it(`two processes racing for ${KEYS} stale locks lose no count and leave no lock behind`, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ptspec-lock-race-'));
  for (let k = 0; k < KEYS; k++) writeFileSync(join(dir, `${fileNameOf(`key-${k}`)}.lock`), String(DEAD));
  // Far enough ahead for both to have loaded tsx and the database module.
  const start = Date.now() + 4000;
  expect(await Promise.all([racer(dir, start), racer(dir, start)])).toEqual([0, 0]);
  const counts = Array.from({ length: KEYS }, (_, k) => (JSON.parse(readFileSync(join(dir, fileNameOf(`key-${k}`)), 'utf8')) as { count: number }).count);
  // Each key was recorded once by each process: 2, whichever took over its stale lock.
  expect(counts).toEqual(Array.from({ length: KEYS }, () => 2));
  expect(readdirSync(dir).filter((n) => !n.endsWith('.json'))).toEqual([]);
}, 30_000);

it('a taker that judged a lock stale leaves alone the live lock another process took it over with', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ptspec-lock-race-'));
  const lock = join(dir, `${fileNameOf('key-0')}.lock`);
  // The other process has already taken the stale lock over: it holds its own for 800 ms.
  const holder = spawn(process.execPath, ['-e', `
    const fs = require('node:fs');
    fs.writeFileSync(${JSON.stringify(lock)}, String(process.pid), { flag: 'wx' });
    console.log('held');
    setTimeout(() => fs.rmSync(${JSON.stringify(lock)}), 800);`], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve) => holder.stdout.once('data', () => resolve()));
  // This process judged the dead holder's lock stale before that, and now acts on it.
  expect(takeOverStaleLock(lock)).toBe(false);
  expect(readFileSync(lock, 'utf8')).toBe(String(holder.pid));
  // So its own write waits for the live holder to let go.
  const db = new FailureDb<{ key: string; count: number; lastSeen: string }>(dir, { parse: (t) => ({ ok: true, value: JSON.parse(t) }), format: (r) => JSON.stringify(r) });
  const started = Date.now();
  db.record({ key: 'key-0', count: 1, lastSeen: '' });
  expect(Date.now() - started).toBeGreaterThan(300);
  expect(existsSync(lock)).toBe(false);
  expect(readdirSync(dir)).toEqual([fileNameOf('key-0')]);
  await new Promise((resolve) => holder.on('close', resolve));
});
