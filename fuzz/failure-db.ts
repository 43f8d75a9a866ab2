/**
 * The failure database: one JSON file per distinct failure in a directory, as Hypothesis
 * keeps its example database. Every write goes to a temporary file in the same directory
 * that is fsynced and then renamed over the target, so a crash (or a kill mid-campaign)
 * leaves either the old file or the new one, never a torn one, and never loses a failure
 * found earlier. A failure seen again is counted: the stored file keeps its trace and
 * gets a higher count. A record is removed only under its lock and only while it still
 * decodes (`removeIf`, for `ptspec failures --prune`), so a broken file is never lost.
 *
 * The record format belongs to io/ (the codecs); this module only needs to read, write and
 * count records, so the caller passes the codec in.
 */
import { closeSync, constants, fstatSync, fsyncSync, linkSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, writeSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { threadId } from 'node:worker_threads';

export interface DbRecord {
  readonly key: string;
  readonly count: number;
  readonly lastSeen: string;
}

export interface RecordCodec<F extends DbRecord> {
  parse(text: string): { readonly ok: true; readonly value: F } | { readonly ok: false; readonly errors: readonly string[] };
  format(record: F): string;
}

export interface StoredFailure<F> {
  readonly file: string;
  readonly record: F;
}

export interface BrokenFile {
  readonly file: string;
  readonly errors: readonly string[];
}

/** File name of a key: the key with anything unsafe in a file name replaced. */
export function fileNameOf(key: string): string {
  return `${key.replace(/[^A-Za-z0-9._-]+/g, '_')}.json`;
}

function kindOf(s: Stats): string {
  if (s.isDirectory()) return 'a directory';
  if (s.isFIFO()) return 'a FIFO';
  if (s.isSocket()) return 'a socket';
  return s.isCharacterDevice() || s.isBlockDevice() ? 'a device' : 'not a plain file';
}

/**
 * A regular file's text; anything else is an error naming what it is. Opened without
 * blocking and checked on the open descriptor, so a FIFO named `x.json` (or one swapped
 * in after a check) can never hang the reader waiting for a writer.
 */
export function readRegularFile(file: string): string {
  const fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const s = fstatSync(fd);
    if (!s.isFile()) throw new Error(`${kindOf(s)}, not a regular file`);
    return readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
}

/** Write `text` to `file` atomically: a temporary sibling, fsync, rename. */
export function writeAtomic(file: string, text: string): void {
  const tmp = `${file}.${process.pid}.${threadId}.${Date.now().toString(36)}.tmp`;
  try {
    const fd = openSync(tmp, 'w');
    try {
      writeSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

const LOCK_STALE_MS = 30_000;

/** Whether process `pid` of this machine is gone (killed, crashed); false when unknown. */
function processGone(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (e) {
    // EPERM: it exists, under another user.
    return (e as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/**
 * Whether a lock file was left by a holder that cannot release it: its pid (the file's
 * content) is gone, or it is older than LOCK_STALE_MS (written on another machine
 * sharing the directory, or not yet holding a pid).
 */
function staleLock(lock: string): boolean {
  let pid: number;
  let mtimeMs: number;
  try {
    pid = Number(readFileSync(lock, 'utf8'));
    mtimeMs = statSync(lock).mtimeMs;
  } catch {
    // Released meanwhile: not stale, just free.
    return false;
  }
  return processGone(pid) || Date.now() - mtimeMs > LOCK_STALE_MS;
}

/** Takeovers of this process so far: with pid and thread, a name no other taker uses. */
let takeovers = 0;

/**
 * Removes a lock judged stale, atomically. Two processes that both judged it stale must
 * not both take over: with a plain remove, the slower one would remove the lock the
 * faster one has just created in its place, and both would hold it. So the lock is first
 * renamed to a name of this taker's own (a rename moves one file to one place, and only
 * one taker's rename of it succeeds; the others get ENOENT), and judged again there: if
 * what was moved is a live lock (another taker's, created after our first look), it is
 * linked back, which fails only if a third process has created a lock meanwhile. Returns
 * whether the lock path is now free of the stale lock.
 */
export function takeOverStaleLock(lock: string): boolean {
  const mine = `${lock}.${process.pid}.${threadId}.${takeovers++}.stale`;
  try {
    renameSync(lock, mine);
  } catch (e) {
    // Another taker moved it first (or its holder released it): nothing of ours to remove.
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
  if (!staleLock(mine)) {
    // A live lock, made between our look and our rename: put it back where its holder expects it.
    try {
      linkSync(mine, lock);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    rmSync(mine, { force: true });
    return false;
  }
  rmSync(mine, { force: true });
  return true;
}

/**
 * Exclusive access to one record across processes (two shards sharing a directory): a
 * lock file created with O_EXCL holding the holder's pid, so a campaign killed with
 * SIGKILL while holding it stalls nobody.
 */
function withLock<T>(file: string, fn: () => T): T {
  const lock = `${file}.lock`;
  for (;;) {
    try {
      writeFileSync(lock, String(process.pid), { flag: 'wx' });
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      // Only a dead holder's lock may be broken: a live one holds it for one small write,
      // and breaking it early would let two processes lose each other's count.
      if (!(staleLock(lock) && takeOverStaleLock(lock))) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
    }
  }
  try {
    return fn();
  } finally {
    rmSync(lock, { force: true });
  }
}

export class FailureDb<F extends DbRecord> {
  constructor(readonly dir: string, private readonly codec: RecordCodec<F>) {}

  fileOf(key: string): string {
    return join(this.dir, fileNameOf(key));
  }

  /**
   * Every readable record in the directory, and the files that do not decode. Leftovers of
   * a killed campaign go first: its temporary files (named by writeAtomic with its pid)
   * and the locks it held.
   */
  load(): { readonly stored: StoredFailure<F>[]; readonly broken: BrokenFile[] } {
    const stored: StoredFailure<F>[] = [];
    const broken: BrokenFile[] = [];
    let all: string[];
    try {
      all = readdirSync(this.dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { stored, broken };
      throw e;
    }
    for (const name of all) {
      const tmp = /\.json\.(\d+)\.\d+\.[0-9a-z]+\.tmp$/.exec(name);
      const path = join(this.dir, name);
      if (tmp !== null && processGone(Number(tmp[1]))) rmSync(path, { force: true });
      else if (name.endsWith('.json.lock') && staleLock(path)) takeOverStaleLock(path);
      // A takeover's own leftover, when its taker died between the rename and the remove.
      else if (/\.json\.lock\.(\d+)\.\d+\.\d+\.stale$/.test(name) && processGone(Number(/\.lock\.(\d+)\./.exec(name)![1]))) rmSync(path, { force: true });
    }
    const names = all.filter((n) => n.endsWith('.json')).sort();
    for (const name of names) {
      const file = join(this.dir, name);
      let text: string;
      try {
        text = readRegularFile(file);
      } catch (e) {
        // An unreadable entry (a directory, a FIFO, no permission) must not stop the campaign.
        broken.push({ file, errors: [`cannot read: ${(e as Error).message}`] });
        continue;
      }
      const r = this.codec.parse(text);
      if (r.ok) stored.push({ file, record: r.value });
      else broken.push({ file, errors: r.errors });
    }
    return { stored, broken };
  }

  /**
   * Record one sighting of a failure. A new key writes `record` (count 1); a key already
   * stored keeps its file's trace and gets count + 1 (a file that no longer decodes is
   * replaced). Returns the file and whether the key was new.
   */
  record(record: F): { readonly file: string; readonly isNew: boolean; readonly count: number } {
    mkdirSync(this.dir, { recursive: true });
    const file = this.fileOf(record.key);
    return withLock(file, () => {
      const old = this.read(file);
      if (old === undefined) {
        writeAtomic(file, this.codec.format(record));
        return { file, isNew: true, count: record.count };
      }
      const count = old.count + 1;
      writeAtomic(file, this.codec.format({ ...old, count, lastSeen: record.lastSeen }));
      return { file, isNew: false, count };
    });
  }

  /**
   * Count one more sighting of a key and take `record`'s trace: a trace from an earlier
   * run of the same campaign (so the file does not depend on which worker finished
   * first), or a fresh trace for a stored failure whose old trace no longer reproduces.
   */
  replace(record: F): { readonly file: string; readonly count: number } {
    mkdirSync(this.dir, { recursive: true });
    const file = this.fileOf(record.key);
    return withLock(file, () => {
      const count = (this.read(file)?.count ?? 0) + 1;
      writeAtomic(file, this.codec.format({ ...record, count }));
      return { file, count };
    });
  }

  /** Count `hits` more sightings of a stored key; the new count, or undefined when the file is gone. */
  bump(key: string, hits: number, lastSeen: string): number | undefined {
    const file = this.fileOf(key);
    return withLock(file, () => {
      const old = this.read(file);
      if (old === undefined) return undefined;
      writeAtomic(file, this.codec.format({ ...old, count: old.count + hits, lastSeen }));
      return old.count + hits;
    });
  }

  /**
   * Delete a stored record, under its lock, only if it still decodes and `stale` holds for
   * it as it is now: a campaign that counted the failure again between the caller's check
   * and this call (a shard sharing the directory) keeps it. A file that does not decode
   * is never deleted. Returns whether the file was removed.
   */
  removeIf(file: string, stale: (current: F) => boolean): boolean {
    return withLock(file, () => {
      const current = this.read(file);
      if (current === undefined || !stale(current)) return false;
      rmSync(file);
      return true;
    });
  }

  private read(file: string): F | undefined {
    let text: string;
    try {
      text = readRegularFile(file);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
    const r = this.codec.parse(text);
    return r.ok ? r.value : undefined;
  }
}
