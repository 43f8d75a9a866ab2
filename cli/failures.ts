/**
 * `ptspec failures [--out DIR] [--json] [--replay] [--prune]`: the failure database
 * (fuzz/failure-db.ts) for a person. One line per stored failure: its key, kind, what
 * failed, how often campaigns hit it and when first and last, and its file; files that do
 * not decode are listed as broken and never touched. `--replay` re-runs every stored trace
 * as `ptspec replay` does and says whether it still fails with its key, no longer
 * reproduces, or now fails differently. `--prune` (replays too) deletes the ones that no
 * longer reproduce, each under the database's lock and only if no campaign counted it
 * again in the meantime. Exit 0, except 1 when a replayed failure still fails (either
 * way), and 2 when the directory cannot be read.
 */
import type { Command } from 'commander';
import { replayTrace } from '../fuzz/campaign-run.ts';
import { storedVerdict, type StoredVerdict } from '../fuzz/campaign-replay.ts';
import { traceSetupFor } from '../fuzz/campaign-target.ts';
import { FailureDb, type BrokenFile, type StoredFailure } from '../fuzz/failure-db.ts';
import { formatFailureFile, parseFailureFile, type FailureFile } from '../fuzz/failure-file.ts';
import { table } from './fuzz-summary.ts';
import { usageError } from './fuzz.ts';
import { DEFAULT_FAILURE_DIR } from './options.ts';
import { examples } from './help.ts';
import { printable, type Cli } from './output.ts';
import { targetOf } from './replay.ts';

/** What a stored failure does now; `unreplayable`: its file names a scenario, mutant or module that is not there. */
type Status =
  | { readonly verdict: StoredVerdict; readonly nowKey: string | null; readonly removed: boolean }
  | { readonly verdict: 'unreplayable'; readonly problem: string };

interface Row {
  readonly file: string;
  readonly key: string;
  readonly kind: string;
  readonly cause: string;
  readonly count: number;
  readonly firstSeen: string;
  readonly lastSeen: string;
  readonly status?: Status;
}

interface Options {
  readonly out: string;
  readonly json?: boolean;
  readonly replay?: boolean;
  readonly prune?: boolean;
  /** Run the user modules the files name (else their failures are listed as not replayed). */
  readonly trustModule?: boolean;
}

async function statusOf(db: FailureDb<FailureFile>, s: StoredFailure<FailureFile>, prune: boolean, trustModule: boolean): Promise<Status> {
  const f = s.record;
  // It replays by hanging (until fixed) on this thread: a campaign replays it in a worker, under the watchdog.
  if (f.failure.kind === 'timeout') return { verdict: 'unreplayable', problem: 'a timeout: `ptspec fuzz` replays it first, under --command-timeout' };
  // A failure file may come from someone else: the module it names runs only when asked to.
  if (f.target.kind === 'command' && !trustModule) return { verdict: 'unreplayable', problem: `it names program ${f.target.command}; replay with --trust-module to run it` };
  if (f.target.kind === 'module' && !trustModule) return { verdict: 'unreplayable', problem: `it names module ${f.target.module}; replay with --trust-module to run it` };
  const target = await targetOf(f);
  if (typeof target === 'string') return { verdict: 'unreplayable', problem: target };
  const { key } = replayTrace(await traceSetupFor(f.scenario, target, f.fullCheckEvery), target.label, f.commands, f.key);
  const verdict = storedVerdict(f.key, key);
  // Unchanged since it was read: a campaign that hit it again meanwhile proved it still fails.
  const removed = prune && verdict === 'fixed' && db.removeIf(s.file, (now) => now.count === f.count && now.lastSeen === f.lastSeen);
  return { verdict, nowKey: key, removed };
}

function statusText(s: Status): string {
  switch (s.verdict) {
    case 'reproduces': return 'still fails';
    case 'differs': return `fails differently: now ${s.nowKey ?? ''}`;
    case 'fixed': return s.removed ? 'no longer reproduces: removed' : 'no longer reproduces';
    case 'unreplayable': return `cannot replay: ${s.problem}`;
  }
}

function listText(dir: string, rows: readonly Row[], broken: readonly BrokenFile[], opts: Options): string[] {
  const lines = [`Failure database ${dir}: ${rows.length} stored failure${rows.length === 1 ? '' : 's'}${broken.length === 0 ? '' : `, ${broken.length} broken file${broken.length === 1 ? '' : 's'}`}`];
  if (rows.length > 0) {
    const replayed = opts.replay === true || opts.prune === true;
    const head = ['  KEY', 'KIND', 'WHAT FAILED', 'COUNT', 'FIRST SEEN', 'LAST SEEN', ...(replayed ? ['NOW'] : []), 'FILE'];
    const body = rows.map((r) => [`  ${r.key}`, r.kind, r.cause, String(r.count), r.firstSeen, r.lastSeen, ...(r.status === undefined ? [] : [statusText(r.status)]), r.file]);
    lines.push(...table([head, ...body]));
  }
  // The first problem says what the file is (often: an older version); `ptspec replay FILE` lists them all.
  for (const b of broken) lines.push(`  BROKEN ${b.file}: ${b.errors[0] ?? ''}${b.errors.length > 1 ? ` (and ${b.errors.length - 1} more)` : ''}; left in place: fix it or delete it by hand`);
  const stale = rows.filter((r) => r.status?.verdict === 'fixed' && !r.status.removed).length;
  if (stale > 0 && opts.prune !== true) {
    const out = dir === DEFAULT_FAILURE_DIR ? '' : ` --out ${dir}`;
    lines.push(`${stale} no longer reproduce${stale === 1 ? 's' : ''}: \`ptspec failures --prune${out}\` removes ${stale === 1 ? 'it' : 'them'}.`);
  }
  if (rows.length > 0 && opts.replay !== true && opts.prune !== true) lines.push('See one step by step: ptspec replay FILE; check them all against the code now: ptspec failures --replay');
  return lines;
}

async function failures(cli: Cli, opts: Options): Promise<number> {
  const db = new FailureDb<FailureFile>(opts.out, { parse: parseFailureFile, format: formatFailureFile });
  let loaded: ReturnType<typeof db.load>;
  try {
    loaded = db.load();
  } catch (e) {
    return usageError(cli, `--out ${opts.out}: cannot read the failure directory: ${(e as Error).message}`);
  }
  const replaying = opts.replay === true || opts.prune === true;
  const rows: Row[] = [];
  for (const s of loaded.stored) {
    const f = s.record;
    const row: Row = { file: s.file, key: f.key, kind: f.failure.kind, cause: f.failure.cause, count: f.count, firstSeen: f.firstSeen, lastSeen: f.lastSeen };
    rows.push(replaying ? { ...row, status: await statusOf(db, s, opts.prune === true, opts.trustModule === true) } : row);
  }
  if (opts.json === true) cli.stdout.write(`${JSON.stringify({ dir: opts.out, failures: rows, broken: loaded.broken }, null, 2)}\n`);
  // Headlines and errors quote the files' own text.
  else cli.stdout.write(printable(listText(opts.out, rows, loaded.broken, opts).map((l) => `${l}\n`).join('')));
  const failing = rows.some((r) => r.status?.verdict === 'reproduces' || r.status?.verdict === 'differs');
  return failing ? 1 : 0;
}

export function register(program: Command, cli: Cli): void {
  program
    .command('failures')
    .description('list the stored failures (key, kind, what failed, count, first/last seen, file); --replay: do they still fail? --prune: remove the fixed ones')
    .option('--out <dir>', 'failure directory', DEFAULT_FAILURE_DIR)
    .option('--json', 'machine-readable list')
    .option('--replay', 'replay every stored failure: still fails, no longer reproduces, or fails differently (exit 1 when any still fails)')
    .option('--prune', 'replay, then remove the failures that no longer reproduce (broken files are never removed)')
    .option('--trust-module', 'also replay the failures of user modules, running the modules the files name')
    .addHelpText('after', examples([
      ['ptspec failures', 'what the campaigns found, one line per cause'],
      ['ptspec failures --replay', 'which of them still fail on the code as it is now'],
      ['ptspec failures --prune --out /tmp/ptf', 'drop the fixed ones from another directory'],
    ]))
    .action(async (opts: Options) => {
      cli.exitCode = await failures(cli, opts);
    });
}
