/**
 * The mutant zoo (`ptspec zoo`): every built-in mutant (impl/mutants.ts), or the ones
 * named, hunted in turn on the setup the test suites catch it with (fuzz/mutant-setup.ts),
 * each with a seed of its own and a time budget, measuring how fast the harness finds it:
 * wall time and commands to the first failing sequence, the shrinking, the shrunk trace's
 * length, and whether the unmutated impl passes that trace (the control). Everything but
 * the times is decided by the zoo's seed and, for a mutant not caught, its budget.
 */
import fc from 'fast-check';
import { performance } from 'node:perf_hooks';
import type { MutantName } from '../impl/mutants.ts';
import { commandsArb } from './arbitraries.ts';
import { failureKey, runSeed, shrinkFailure, upToFailure } from './campaign-run.ts';
import { runTrace } from './check.ts';
import { emptyCoverage } from './coverage.ts';
import { headline } from './failure-file.ts';
import { MUTANT_CATCHING_KINDS, MUTANT_SHRINK_BUDGET, mutantSetup } from './mutant-setup.ts';
import { median } from './stats.ts';
import type { ZooEntry, ZooReport, ZooTarget } from './zoo-json.ts';

/** The zoo's seed when none is given: fixed, so two zoos without options measure the same runs. */
export const DEFAULT_ZOO_SEED = 0x5eed;
export const DEFAULT_ZOO_BUDGET_MS = 60_000;

/** The targets: a median time to detection, and the longest shrunk trace a person should have to read. */
export const MEDIAN_TARGET_MS = 2_000;
export const SHRUNK_TARGET_COMMANDS = 10;

/** FNV-1a of a mutant's name: its seed depends on its name alone, not on its place in MUTANT_NAMES. */
function nameHash(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** Mutant `name`'s seed in a zoo of seed `seed`: adding a mutant or picking a few changes no other's runs. */
export function mutantSeed(seed: number, name: MutantName): number {
  return runSeed(seed, nameHash(name));
}

export interface ZooOptions {
  readonly seed: number;
  readonly budgetMs: number;
  readonly mutants: readonly MutantName[];
  /** Aborted: the mutant being hunted is dropped and the zoo ends with the ones done. */
  readonly signal?: AbortSignal;
  /** Each mutant's result as soon as it has one (progress lines, the JSON file rewritten). */
  readonly onEntry?: (entry: ZooEntry, done: readonly ZooEntry[]) => void;
}

/** Milliseconds to the tenth: finer is noise in a wall time. */
const tenths = (ms: number): number => Math.round(ms * 10) / 10;

/** Lets a signal handler run between two sequences: each sequence is synchronous. */
const eventLoopTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * Hunts one mutant: sequences from its own seed until one fails or the budget is spent (no
 * sequence starts after it), then the failure shrunk keeping its key (kind and cause) and
 * the shrunk trace run on the unmutated impl. Null when `signal` aborted it.
 */
export async function huntMutant(name: MutantName, seed: number, budgetMs: number, signal?: AbortSignal): Promise<ZooEntry | null> {
  const setup = mutantSetup(name);
  const own = mutantSeed(seed, name);
  const arb = commandsArb(setup.scenario, setup.generate);
  const coverage = emptyCoverage();
  const base = { mutant: name, scenario: setup.scenario.name, profile: setup.mutated.profile ?? 'strict', seed: own } as const;
  const start = performance.now();
  for (let run = 0; performance.now() - start < budgetMs; run++) {
    await eventLoopTurn();
    if (signal?.aborted === true) return null;
    const before = coverage.commands;
    const commands = fc.sample(arb, { seed: runSeed(own, run), numRuns: 1 })[0]!;
    const first = runTrace({ ...setup.mutated, commands, coverage }).failure;
    if (first === null) continue;
    const detectMs = tenths(performance.now() - start);
    const failing = upToFailure(commands, first);
    const key = failureKey(`mutant-${name}`, setup.scenario.name, first);
    let shrinkTraces = 0;
    const shrinkStart = performance.now();
    const shrunk = shrinkFailure({ commands, failure: first }, (candidate) => {
      shrinkTraces++;
      const f = runTrace({ ...setup.mutated, commands: candidate }).failure;
      return f !== null && failureKey(`mutant-${name}`, setup.scenario.name, f) === key ? f : null;
    }, MUTANT_SHRINK_BUDGET);
    const shrinkMs = tenths(performance.now() - shrinkStart);
    const control = runTrace({ ...setup.control, commands: shrunk.commands }).failure;
    const f = shrunk.failure;
    return {
      ...base,
      status: control !== null ? 'control-fails' : MUTANT_CATCHING_KINDS.includes(f.kind) ? 'caught' : 'crashed',
      detectMs,
      commands: before + failing.length,
      sequences: run + 1,
      shrinkMs,
      shrinkTraces,
      unshrunkLength: failing.length,
      shrunkLength: shrunk.commands.length,
      kind: f.kind,
      cause: f.cause,
      headline: headline(f),
      controlFailure: control === null ? null : headline(control),
      trace: shrunk.commands,
    };
  }
  return {
    ...base, status: 'not-caught', detectMs: null, commands: coverage.commands, sequences: coverage.sequences, shrinkMs: null, shrinkTraces: null,
    unshrunkLength: null, shrunkLength: null, kind: null, cause: null, headline: null, controlFailure: null, trace: null,
  };
}

/** Caught, by a sensible check, the control passing, and within the budget. */
export const caughtInTime = (e: ZooEntry, budgetMs: number): boolean => e.status === 'caught' && e.detectMs! <= budgetMs;

/** The median of the detection times, a mutant not caught counting as slower than any (Infinity). */
const medianMs = (entries: readonly ZooEntry[]): number => median(entries.map((e) => (e.status === 'caught' ? e.detectMs! : Infinity)));

/** The three targets over the mutants that ran, each with the ones that miss it. */
export function zooTargets(entries: readonly ZooEntry[], budgetMs: number): ZooTarget[] {
  const late = entries.filter((e) => !caughtInTime(e, budgetMs)).map((e) => e.mutant);
  const median = entries.length === 0 ? NaN : medianMs(entries);
  const shrunk = entries.map((e) => e.shrunkLength ?? Infinity);
  const longest = Math.max(...shrunk);
  return [
    { target: `every mutant caught within ${budgetMs / 1000} s`, met: late.length === 0, value: late.length, missing: late },
    {
      target: `median time to first detection at most ${MEDIAN_TARGET_MS / 1000} s`,
      met: median <= MEDIAN_TARGET_MS,
      value: Number.isFinite(median) ? median : null,
      missing: entries.filter((e) => !(e.status === 'caught' && e.detectMs! <= MEDIAN_TARGET_MS)).map((e) => e.mutant),
    },
    {
      target: `every shrunk trace at most ${SHRUNK_TARGET_COMMANDS} commands`,
      met: entries.length > 0 && longest <= SHRUNK_TARGET_COMMANDS,
      value: Number.isFinite(longest) ? longest : null,
      missing: entries.filter((_, i) => shrunk[i]! > SHRUNK_TARGET_COMMANDS).map((e) => e.mutant),
    },
  ];
}

/** The report of the mutants done so far: `finished` when they are all that were selected. */
export function zooReport(opts: Pick<ZooOptions, 'seed' | 'budgetMs' | 'mutants'>, done: readonly ZooEntry[]): ZooReport {
  return {
    seed: opts.seed, budgetMs: opts.budgetMs, selected: opts.mutants, finished: done.length === opts.mutants.length, mutants: done, targets: zooTargets(done, opts.budgetMs),
  };
}

/** Hunts the mutants in turn; on an abort, the report of those done before it. */
export async function runZoo(opts: ZooOptions): Promise<ZooReport> {
  const done: ZooEntry[] = [];
  for (const name of opts.mutants) {
    const entry = await huntMutant(name, opts.seed, opts.budgetMs, opts.signal);
    if (entry === null) break;
    done.push(entry);
    opts.onEntry?.(entry, done);
  }
  return zooReport(opts, done);
}
