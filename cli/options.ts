/**
 * Options of `ptspec fuzz`, each parsed and checked by commander before any work starts:
 * a bad value makes commander print `error: option '--jobs <n>' argument '0' is invalid.
 * …` naming the option, and the command exits 2 (cli/main.ts).
 */
import { availableParallelism, totalmem } from 'node:os';
import { randomInt } from 'node:crypto';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { DEFAULT_SCENARIO, SCENARIOS } from '../spec/scenario.ts';
import { MUTANT_NAMES, type MutantName } from '../impl/mutants.ts';
import { DEFAULT_SHRINK_BUDGET, parseShrinkPath } from '../fuzz/campaign-run.ts';
import type { RerunSpec } from '../fuzz/campaign-rerun.ts';
import { LONG_COMMANDS, LONG_ROUND_EVERY, MATRIX, MATRIX_SCENARIOS } from '../fuzz/matrix.ts';
import type { Target } from '../fuzz/failure-file.ts';
import { PROFILES, type Profile } from '../spec/system.ts';

export interface FuzzOptions {
  readonly time?: number;
  readonly runs?: number;
  readonly seed: number;
  readonly jobs: number;
  readonly shard: Shard;
  readonly scenario: string;
  readonly mutant?: MutantName;
  readonly impl?: string;
  readonly implCmd?: string;
  readonly maxCommands: number;
  readonly fullCheckEvery: number;
  /** `--no-swarm` turns it off (CommandsArbOptions.swarm). */
  readonly swarm: boolean;
  readonly shrinkBudget: number;
  readonly bail?: number;
  /** ms a step may take before its run is filed as a timeout (0: no watchdog). */
  readonly commandTimeout: number;
  readonly out: string;
  readonly json: boolean;
  /** `--replay SEED:PATH`: rerun that one run instead of a campaign. */
  readonly replay?: RerunSpec;
  /** `--profile`: the semantics model and target follow (spec/contracts/linux.ts for linux). */
  readonly profile: Profile;
  /** `--profile-cpu DIR`: each worker writes a V8 CPU profile there (fuzz/profile.ts). */
  readonly profileCpu?: string;
}

/** 0-based index and count (the command line says 1-based `i/N`, as vitest's --shard does). */
export interface Shard {
  readonly index: number;
  readonly count: number;
}

export const DEFAULT_TIME_MS = 60_000;
export const DEFAULT_MAX_COMMANDS = 100;
export const DEFAULT_FULL_CHECK_EVERY = 50;
export const DEFAULT_FAILURE_DIR = '.ptspec/failures';
export const DEFAULT_COMMAND_TIMEOUT_MS = 5_000;

/** An integer in [min, max]. */
export function intParser(what: string, min: number, max = Number.MAX_SAFE_INTEGER): (value: string) => number {
  return (value) => {
    const n = /^\d+$/.test(value.trim()) ? Number(value) : NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`${what} must be an integer from ${min} to ${max}.`);
    }
    return n;
  };
}

const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const MAX_TIME_MS = 7 * 24 * 3_600_000;

/** `90` (seconds), `90s`, `1.5m`, `2h`, `500ms` → milliseconds. */
export function parseDuration(value: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(value.trim());
  // Rounded first: `0.4ms` would otherwise pass as positive and become a budget of 0 ms.
  const ms = Math.round(m === null ? NaN : Number(m[1]) * UNIT_MS[m[2] ?? 's']!);
  if (!Number.isFinite(ms) || ms < 1 || ms > MAX_TIME_MS) {
    throw new InvalidArgumentError('a duration is a positive number with an optional unit ms, s, m or h (e.g. 60s, 5m), from 1ms to 7 days.');
  }
  return ms;
}

/**
 * Where `--shard auto` finds its shard. A CI matrix sets the pair (1-based, as
 * `--shard i/N`); a Kubernetes Indexed Job sets JOB_COMPLETION_INDEX (0-based) on each
 * pod itself, and its manifest passes the Job's `completions` as PTSPEC_SHARDS (a pod
 * cannot see its Job's spec). examples/ has both.
 */
export const SHARD_ENV = {
  index: 'PTSPEC_SHARD_INDEX', count: 'PTSPEC_SHARD_COUNT', k8sIndex: 'JOB_COMPLETION_INDEX', k8sCount: 'PTSPEC_SHARDS',
} as const;

/** The shard `--shard auto` names, from the environment; an error names what is missing or wrong. */
export function shardFromEnv(env: Readonly<Record<string, string | undefined>>): Shard {
  const e = SHARD_ENV;
  const [index, count, base] = env[e.index] !== undefined || env[e.count] !== undefined
    ? [e.index, e.count, 1] as const
    : env[e.k8sIndex] !== undefined ? [e.k8sIndex, e.k8sCount, 0] as const : [null, null, 0] as const;
  if (index === null) {
    throw new InvalidArgumentError(`--shard auto needs ${e.index} and ${e.count} (a CI matrix, 1-based) or ${e.k8sIndex} and ${e.k8sCount} `
      + '(a Kubernetes Indexed Job, 0-based, PTSPEC_SHARDS set to its completions); none is set.');
  }
  const raw = { i: env[index], n: env[count] };
  if (raw.n === undefined) throw new InvalidArgumentError(`--shard auto: ${index} is set but ${count} is not.`);
  const i = /^\d+$/.test(raw.i ?? '') ? Number(raw.i) - base + 1 : NaN;
  const n = /^\d+$/.test(raw.n) ? Number(raw.n) : NaN;
  try {
    return parseShard(`${i}/${n}`);
  } catch {
    throw new InvalidArgumentError(`--shard auto: ${index}=${JSON.stringify(raw.i)} and ${count}=${JSON.stringify(raw.n)} do not name a shard `
      + `(${base === 1 ? '1 ≤ index ≤ count' : '0 ≤ index < count'}).`);
  }
}

/** `i/N`, 1 ≤ i ≤ N, or `auto` (shardFromEnv, on this process's environment). */
export function parseShard(value: string): Shard {
  if (value.trim() === 'auto') return shardFromEnv(process.env);
  const m = /^(\d+)\/(\d+)$/.exec(value.trim());
  const i = m === null ? NaN : Number(m[1]);
  const n = m === null ? NaN : Number(m[2]);
  if (!(Number.isSafeInteger(i) && Number.isSafeInteger(n) && n >= 1 && i >= 1 && i <= n && n <= 1_000_000)) {
    throw new InvalidArgumentError('a shard is i/N with 1 ≤ i ≤ N (e.g. 2/4: the second of four machines).');
  }
  return { index: i - 1, count: n };
}

/** Leave a core to the main thread, the shell and the editor, unless that would halve a small machine. */
export function defaultJobs(cores = availableParallelism()): number {
  return cores > 2 ? cores - 1 : cores;
}

/** What one worker thread needs at most: its own booted model and impl, and the shrinker's copies. */
const WORKER_BYTES = 300 * 2 ** 20;

/**
 * `--jobs N`, at most 4 workers a core (more only queue for the cores) and as many as the
 * machine's memory holds: past either, a campaign would thrash or be killed, not go faster.
 */
export function jobsParser(cores = availableParallelism(), memory = totalmem()): (value: string) => number {
  const byCores = 4 * cores;
  const byMemory = Math.max(1, Math.floor(memory / WORKER_BYTES));
  const max = Math.min(byCores, byMemory);
  const parse = intParser('--jobs', 1, max);
  return (value) => {
    try {
      return parse(value);
    } catch (e) {
      // The bound depends on the machine: say where it comes from.
      throw new InvalidArgumentError(`${(e as Error).message.replace(/\.$/, '')} on this machine (4 workers per core of ${cores} is ${byCores}; `
        + `~300 MB per worker of ${Math.round(memory / 2 ** 30)} GiB is ${byMemory}).`);
    }
  };
}

/**
 * `SEED:PATH` as a failure prints it: a run's seed (a signed 32-bit integer, as runSeed
 * makes it) and its shrink path (`start+count` deletions joined by `:`, possibly empty).
 */
export function parseReplay(value: string): RerunSpec {
  const m = /^(-?\d+):(.*)$/.exec(value.trim());
  const seed = m === null ? NaN : Number(m[1]);
  if (!Number.isSafeInteger(seed) || seed < -(2 ** 31) || seed >= 2 ** 31) {
    throw new InvalidArgumentError('give SEED:PATH as a failure prints it, e.g. 1234:0+20:3+1 (SEED a 32-bit integer, PATH the shrink path, possibly empty).');
  }
  const path = parseShrinkPath(m![2]!);
  if (path === null) throw new InvalidArgumentError(`the shrink path ${JSON.stringify(m![2])} is not start+count deletions joined by ':' (e.g. 0+20:3+1).`);
  return { seed, path };
}

/** What decides a run's commands and checks besides its seed, as options (defaults left out). */
export interface RunOptions {
  readonly scenario: string;
  readonly target: Target;
  readonly maxCommands: number;
  readonly fullCheckEvery: number;
  /** Absent: a failure file from before swarm testing, whose runs had every operation. */
  readonly swarm?: boolean;
  /** Absent: strict. */
  readonly profile?: Profile;
}

/** A word as sh reads it back: single-quoted, its own quotes escaped. */
const shellQuote = (s: string): string => `'${s.replace(/'/g, "'\\''")}'`;

/** Those options as flags, for the commands the summary and the reports print. */
export function runFlags(o: RunOptions): string[] {
  return [
    o.scenario !== DEFAULT_SCENARIO ? `--scenario ${o.scenario}` : '',
    o.target.kind === 'mutant' ? `--mutant ${o.target.mutant}` : o.target.kind === 'module' ? `--impl ${o.target.module}` : o.target.kind === 'command' ? `--impl-cmd ${shellQuote(o.target.command)}` : '',
    o.maxCommands !== DEFAULT_MAX_COMMANDS ? `--max-commands ${o.maxCommands}` : '',
    o.fullCheckEvery !== DEFAULT_FULL_CHECK_EVERY ? `--full-check-every ${o.fullCheckEvery}` : '',
    o.swarm === true ? '' : '--no-swarm',
    o.profile === 'linux' ? '--profile linux' : '',
  ].filter(Boolean);
}

/**
 * The command that reruns one failing run exactly, or null when its path is not a shrink
 * path (a stored trace that now fails another way has no run of its own).
 */
export function replayCommand(run: { readonly seed: number; readonly path: string }, o: RunOptions): string | null {
  if (parseShrinkPath(run.path) === null) return null;
  return ['ptspec fuzz --replay', `${run.seed}:${run.path}`, ...runFlags(o)].join(' ');
}

/** Declares the options on the `fuzz` command. */
export function addFuzzOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--time <duration>', `time budget, e.g. 60s, 5m, 1h (default ${DEFAULT_TIME_MS / 1000}s when --runs is not given)`).argParser(parseDuration))
    .addOption(new Option('--runs <n>', 'run budget: number of sequences this shard runs (exact and reproducible)').argParser(intParser('--runs', 1)))
    .addOption(new Option('--seed <n>', 'campaign seed (default: random, printed in the summary)').argParser(intParser('--seed', 0, 2 ** 32 - 1)))
    .addOption(new Option('--jobs <n>', 'worker threads').argParser(jobsParser()).default(defaultJobs(), 'the cores minus one when there are more than two, else the cores'))
    .addOption(new Option('--shard <i/N>', 'run shard i of N: shards never repeat a seed; `auto`: from a CI matrix or Kubernetes Indexed Job (see examples/README.md)').argParser(parseShard).default({ index: 0, count: 1 }, '1/1'))
    .addOption(new Option('--scenario <name>', `built-in scenario (\`ptspec scenarios\`), or ${MATRIX}: run i on the (i mod ${MATRIX_SCENARIOS.length})-th of them, one round in ${LONG_ROUND_EVERY} with up to ${LONG_COMMANDS} commands`)
      .choices([...Object.keys(SCENARIOS), MATRIX]).default(DEFAULT_SCENARIO))
    .addOption(new Option('--profile <name>', 'semantics: strict (the library ptspec proposes: refuse with EPERM, atomic) or linux (the kernel as its source reads: what it permits is reported as findings)')
      .choices(PROFILES).default('strict'))
    .addOption(new Option('--mutant <name>', 'hold the impl with this injected bug to the model (see `ptspec mutants`)').choices(MUTANT_NAMES).conflicts('impl'))
    .addOption(new Option('--impl <module>', 'your own implementation: a .ts/.js module whose default export (or `createSystem`) is a PageTableSystemFactory, or a .wasm C implementation of c/ptspec.h'))
    .addOption(new Option('--impl-cmd <command>', 'your own implementation as a native program speaking c/PROTOCOL.md on stdin/stdout (e.g. c/ptspec-main.c linked with your C code); split into words as sh does, nothing expanded').conflicts(['impl', 'mutant']))
    .addOption(new Option('--max-commands <n>', 'longest command sequence').argParser(intParser('--max-commands', 1, 10_000)).default(DEFAULT_MAX_COMMANDS))
    .addOption(new Option('--full-check-every <n>', 'full refinement and invariant check every n commands (0: only at the end)').argParser(intParser('--full-check-every', 0)).default(DEFAULT_FULL_CHECK_EVERY))
    .addOption(new Option('--no-swarm', 'every run draws from all operations (default: each run from its own random subset, swarm testing)'))
    .addOption(new Option('--shrink-budget <n>', 'traces the shrinker may run per failure (a count, so the shrunk trace is the same on any machine)')
      .argParser(intParser('--shrink-budget', 0, 1_000_000)).default(DEFAULT_SHRINK_BUDGET))
    .addOption(new Option('--bail <n>', 'stop starting new runs after n distinct failures').argParser(intParser('--bail', 1)))
    .addOption(new Option('--command-timeout <duration>', 'a step that takes longer is hung: its run is filed as a timeout failure and the campaign goes on (0: no limit)')
      .argParser((v) => (v.trim() === '0' ? 0 : parseDuration(v))).default(DEFAULT_COMMAND_TIMEOUT_MS, `${DEFAULT_COMMAND_TIMEOUT_MS / 1000}s`))
    .addOption(new Option('--out <dir>', 'failure directory').default(DEFAULT_FAILURE_DIR))
    .addOption(new Option('--json', 'print the summary as JSON').default(false))
    .addOption(new Option('--profile-cpu <dir>', "write each worker's V8 CPU profile into dir and print where their time went"))
    .addOption(new Option('--replay <seed:path>', 'rerun exactly the one run a failure names (its Reproduce line), shrink path applied')
      .argParser(parseReplay).conflicts(['runs', 'time', 'seed', 'shard', 'bail']));
}

/** Commander's parsed values, completed: the seed is drawn here when not given. */
export function fuzzOptions(raw: Record<string, unknown>): FuzzOptions {
  const o = raw as Omit<FuzzOptions, 'seed'> & { seed?: number };
  return { ...o, seed: o.seed ?? randomInt(0, 2 ** 31) };
}
