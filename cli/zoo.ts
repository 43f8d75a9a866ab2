/**
 * `ptspec zoo`: every built-in mutant (or the ones named) hunted with a fixed seed and a
 * time budget each (fuzz/zoo.ts): a line per mutant as it finishes, then the table of
 * times, commands and shrunk lengths and the verdict on each target, naming the mutants
 * that miss it. Exit 0 when every mutant was caught within its budget, 1 when one was not,
 * 2 for bad usage; Ctrl-C ends the hunt and reports the mutants done (130, or 143 for SIGTERM).
 */
import { existsSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { isMutantName, MUTANT_NAMES, type MutantName } from '../impl/mutants.ts';
import { writeAtomic } from '../fuzz/failure-db.ts';
import { caughtInTime, DEFAULT_ZOO_BUDGET_MS, DEFAULT_ZOO_SEED, runZoo, zooReport } from '../fuzz/zoo.ts';
import type { ZooEntry, ZooReport, ZooTarget } from '../fuzz/zoo-json.ts';
import { usageError } from './fuzz.ts';
import { examples } from './help.ts';
import { intParser, parseDuration } from './options.ts';
import { printable, type Cli } from './output.ts';
import { onInterrupt, signalExitCode } from './interrupt.ts';

interface ZooCliOptions {
  readonly seed: number;
  readonly budget: number;
  readonly mutant?: readonly MutantName[];
  readonly json?: string;
}

/** `--mutant A B --mutant C`: each name checked against the catalogue, repeats dropped. */
function mutantList(value: string, previous: readonly MutantName[] | undefined): readonly MutantName[] {
  if (!isMutantName(value)) throw new InvalidArgumentError(`there is no mutant ${JSON.stringify(value)}; the mutants are: ${MUTANT_NAMES.join(', ')}.`);
  return previous?.includes(value) === true ? previous : [...(previous ?? []), value];
}

const seconds = (ms: number | null): string => (ms === null ? '-' : `${(ms / 1000).toFixed(2)} s`);
const count = (n: number | null): string => (n === null ? '-' : n.toLocaleString('en-US'));
const plural = (n: number, what: string): string => `${count(n)} ${what}${n === 1 ? '' : 's'}`;

/** One mutant's result in a line: printed as each finishes. */
function entryLine(e: ZooEntry, index: number, total: number): string {
  const at = `[${String(index).padStart(String(total).length)}/${total}] ${e.mutant}`;
  if (e.status === 'not-caught') return `${at}: NOT CAUGHT in ${plural(e.sequences, 'sequence')}, ${plural(e.commands, 'command')}`;
  const found = `${e.status === 'caught' ? 'caught' : e.status.toUpperCase()} in ${seconds(e.detectMs)} (${plural(e.commands, 'command')}, ${plural(e.sequences, 'sequence')})`;
  const shrunk = `shrunk ${e.unshrunkLength} → ${e.shrunkLength} commands in ${seconds(e.shrinkMs)}`;
  const control = e.controlFailure === null ? '' : `; the unmutated impl fails it too: ${e.controlFailure}`;
  return `${at}: ${found}, ${shrunk}: ${e.headline}${control}`;
}

function table(r: ZooReport): string[] {
  const rows = r.mutants.map((e) => [
    e.mutant, e.status, seconds(e.detectMs), count(e.commands), count(e.sequences), seconds(e.shrinkMs), e.shrunkLength === null ? '-' : String(e.shrunkLength),
    e.kind === null ? '' : `${e.kind} ${e.cause}`,
  ]);
  const header = ['mutant', 'result', 'time', 'commands', 'sequences', 'shrink', 'shrunk', 'failure'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  // Names and words left, numbers right; the last column unpadded.
  const right = new Set([2, 3, 4, 5, 6]);
  const line = (cells: readonly string[]): string => cells.map((c, i) => (i === cells.length - 1 ? c : right.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ');
  return [line(header), ...rows.map(line)];
}

/** Each target met or missed, with what was measured and the mutants that miss it (for the median: the ones above it). */
function verdicts(r: ZooReport): string[] {
  const [inTime, median, shrunk] = r.targets as readonly [ZooTarget, ZooTarget, ZooTarget];
  const rows: readonly (readonly [ZooTarget, string, string])[] = [
    [inTime, `${inTime.value} not`, 'missed by'],
    [median, `measured ${seconds(median.value)}`, 'slower'],
    [shrunk, `longest ${shrunk.value ?? '-'}`, 'longer'],
  ];
  return rows.map(([t, value, who]) => `${t.met ? 'MET   ' : 'MISSED'} ${t.target} (${value}${t.missing.length === 0 ? '' : `; ${who}: ${t.missing.join(', ')}`})`);
}

/** The --json file: its directory must exist and the path must not be a directory, checked before any work. */
function jsonTargetProblem(file: string): string | null {
  if (existsSync(file) && statSync(file).isDirectory()) return `--json ${file}: is a directory`;
  const dir = dirname(resolve(file));
  return existsSync(dir) && statSync(dir).isDirectory() ? null : `--json ${file}: no such directory ${dir}`;
}

async function zoo(cli: Cli, opts: ZooCliOptions): Promise<number> {
  if (opts.json !== undefined) {
    const problem = jsonTargetProblem(opts.json);
    if (problem !== null) return usageError(cli, problem);
  }
  const mutants = opts.mutant ?? MUTANT_NAMES;
  const plan = { seed: opts.seed, budgetMs: opts.budget, mutants };
  // Written after every mutant too, so a zoo killed outright still leaves what it found.
  let unwritten: string | null = null;
  const writeJson = (r: ZooReport): void => {
    if (opts.json === undefined) return;
    try {
      writeAtomic(opts.json, `${JSON.stringify(r, null, 2)}\n`);
    } catch (e) {
      unwritten = (e as Error).message;
    }
  };
  const interrupt = onInterrupt();
  cli.stderr.write(`ptspec zoo: ${mutants.length} mutant${mutants.length === 1 ? '' : 's'}, seed ${opts.seed}, budget ${opts.budget / 1000} s each\n`);
  let report: ZooReport;
  try {
    report = await runZoo({
      ...plan,
      signal: interrupt.signal,
      onEntry: (e, done) => {
        cli.stderr.write(`${printable(entryLine(e, done.length, mutants.length))}\n`);
        writeJson(zooReport(plan, done));
      },
    });
  } finally {
    interrupt.release();
  }
  writeJson(report);
  const signal = interrupt.received();
  const interrupted = signal === null ? [] : [`INTERRUPTED: ${report.mutants.length} of ${mutants.length} mutants done`];
  const failed = unwritten === null ? [] : [`cannot write ${opts.json}: ${unwritten}`];
  cli.stdout.write(`${printable([...table(report), '', ...verdicts(report), ...interrupted, ...failed].join('\n'))}\n`);
  if (signal !== null) return signalExitCode(signal);
  return report.mutants.every((e) => caughtInTime(e, opts.budget)) && unwritten === null ? 0 : 1;
}

export function register(program: Command, cli: Cli): void {
  program
    .command('zoo')
    .description('hunt every built-in mutant with a fixed seed and a time budget each: time and commands to first detection, shrunk trace length, and the targets met')
    .addOption(new Option('--seed <n>', 'zoo seed (each mutant runs from a seed of its own derived from it and its name)').argParser(intParser('--seed', 0, 2 ** 32 - 1)).default(DEFAULT_ZOO_SEED))
    .addOption(new Option('--budget <duration>', 'time budget per mutant: no sequence starts after it (e.g. 60s, 2m)').argParser(parseDuration).default(DEFAULT_ZOO_BUDGET_MS, `${DEFAULT_ZOO_BUDGET_MS / 1000}s`))
    .addOption(new Option('--mutant <name...>', 'only these mutants (default: all of `ptspec mutants`)').argParser(mutantList))
    .addOption(new Option('--json <file>', 'also write the report to FILE as JSON (schemas/zoo.schema.json), rewritten after each mutant'))
    .addHelpText('after', examples([
      ['ptspec zoo', 'every mutant, one minute each at most'],
      ['ptspec zoo --mutant protect-no-flush split-drops-nx --budget 10s', 'two of them'],
      ['ptspec zoo --json zoo.json', 'the report for tools too'],
    ]))
    .action(async (opts: ZooCliOptions) => {
      cli.exitCode = await zoo(cli, opts);
    });
}
