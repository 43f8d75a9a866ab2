/**
 * One run of a campaign: the run's seed is derived from the campaign seed and the run's
 * index alone, so run #n generates the same command sequence (fast-check's generator
 * with that seed) on any machine, in any worker, in any shard. A failing run is shrunk
 * keeping the failure's identity (its key): a shrink step that makes the trace fail
 * differently is rejected, so a distinct failure stays distinct and the stored trace
 * shows the failure it is filed under. A failure already known to the campaign is only
 * counted, not shrunk again.
 */
import fc from 'fast-check';
import type { Command } from '../spec/commands.ts';
import type { Scenario } from '../spec/scenario.ts';
import { commandsArb } from './arbitraries.ts';
import { runTrace, type TraceFailure, type TraceOptions } from './check.ts';
import { emptyCoverage, type Coverage } from './coverage.ts';
import { shrinkStarts, type Heartbeat } from './watchdog.ts';

/** murmur3's 32-bit finaliser: a bijection on 32-bit integers with good avalanche. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * Seed of run `runIndex` of a campaign: a bijection of the run index for a fixed campaign
 * seed, so different runs (and different shards, which own disjoint run indexes) never
 * share a seed. As a signed 32-bit integer, as fast-check takes it.
 */
export function runSeed(campaignSeed: number, runIndex: number): number {
  return fmix32((campaignSeed >>> 0) ^ fmix32(runIndex >>> 0)) | 0;
}

/** Global run index of the k-th run of shard `shard` (0-based) of `shards`: shards own disjoint residues. */
export function globalRunIndex(k: number, shard: number, shards: number): number {
  return shard + k * shards;
}

/** Everything a trace needs except its commands: scenario, factories, invariant suite, table checker. */
export type TraceSetup = Omit<TraceOptions, 'commands' | 'coverage'>;

/**
 * What a failure is filed under: target, scenario, its kind and its cause (TraceFailure's
 * `cause`: the invariant, clause aspect, state part, outcome field or table check). Not
 * the operation: one injected bug that breaks the TLB clause through protect, unmap and
 * split is one failure, not three.
 */
export function failureKey(target: string, scenario: string, f: TraceFailure): string {
  return [target, scenario, f.kind, f.cause, ...(f.phase === 'boot' ? ['boot'] : [])].join('--');
}

export interface FoundFailure {
  readonly key: string;
  readonly runIndex: number;
  readonly seed: number;
  /** Deletions that shrank the generated sequence (shrinkFailure), `start+count` joined by `:`. */
  readonly path: string;
  /** The shrunk sequence and its failure. */
  readonly commands: readonly Command[];
  readonly failure: TraceFailure;
  /**
   * When the campaign learnt of it: ms since the campaign started, and the commands the
   * campaign had run before (runs finished before this one's result arrived). Set by the
   * campaign, not the run, which knows neither; how fast a campaign finds a bug is what
   * tells a longer budget or a smaller scenario apart from a luckier seed.
   */
  readonly foundAtMs?: number;
  readonly commandsBefore?: number;
}

export interface RunResult {
  readonly runIndex: number;
  /** Coverage of the generated sequence (shrinking is not counted). */
  readonly coverage: Coverage;
  /** The key of the failure the run hit, if any. */
  readonly failedKey: string | null;
  /** Set when the failure's key was new to the caller: the shrunk failure. */
  readonly found: FoundFailure | null;
}

export interface RunContext {
  readonly setup: TraceSetup;
  /** The scenario commands are generated for (the setup's may have its boot folded into the factories). */
  readonly scenario: Scenario;
  /** Target label used in failure keys (`impl`, `mutant-NAME`, `module-NAME`). */
  readonly target: string;
  readonly maxCommands: number;
  /** Each run on its own subset of the operations (CommandsArbOptions.swarm). */
  readonly swarm: boolean;
  readonly campaignSeed: number;
  /**
   * Traces the shrinker may run for one failure. A count, not a time, so the shrunk trace
   * is the same on a fast and a slow machine.
   */
  readonly shrinkBudget: number;
  /** Where the traces publish their steps for a command-timeout watchdog (absent: none watches). */
  readonly heartbeat?: Heartbeat;
}

export const DEFAULT_SHRINK_BUDGET = 400;

/**
 * One run in this many also holds the fast checks to the invariants' definitions on its
 * final state (TraceOptions.checkDefinitions): by run index, so which runs do is the same
 * for any number of workers or shards.
 */
export const DEFINITIONS_EVERY = 16;

type Failing = { readonly commands: readonly Command[]; readonly failure: TraceFailure };

/** The commands up to the failing one: what follows a failure never matters to it. */
export function upToFailure(commands: readonly Command[], f: TraceFailure): readonly Command[] {
  return f.phase === 'boot' ? [] : commands.slice(0, f.step + 1);
}

/**
 * Shrinks a failing sequence by deleting commands (delta debugging: runs of half the
 * length, then a quarter, … down to single commands), keeping a candidate only when it
 * fails with the same key, and cutting every kept candidate at its failing step. Each
 * candidate is a trace no longer than the current failure, so this costs far less than
 * shrinking the generated values, and it is deterministic: at most `budget` traces.
 * Returns the shrunk failure and the path of deletions kept (`start+count`, in order).
 */
export function shrinkFailure(first: Failing, failsSame: (commands: readonly Command[]) => TraceFailure | null, budget: number): Failing & { readonly path: string } {
  let cur: Failing = { commands: upToFailure(first.commands, first.failure), failure: first.failure };
  const path: Deletion[] = [];
  let evaluations = 0;
  for (let chunk = Math.ceil(cur.commands.length / 2); chunk >= 1 && evaluations < budget; chunk = chunk > 1 ? Math.ceil(chunk / 2) : 0) {
    for (let i = 0; i < cur.commands.length && evaluations < budget;) {
      const candidate = [...cur.commands.slice(0, i), ...cur.commands.slice(i + chunk)];
      evaluations++;
      const f = failsSame(candidate);
      if (f === null) {
        i += chunk;
        continue;
      }
      path.push({ start: i, count: chunk });
      cur = { commands: upToFailure(candidate, f), failure: f };
    }
  }
  return { ...cur, path: shrinkPathText(path) };
}

/** The command sequence fast-check generates from a run's seed. */
export function generatedCommands(ctx: Pick<RunContext, 'scenario' | 'maxCommands' | 'swarm'>, seed: number): readonly Command[] {
  return fc.sample(commandsArb(ctx.scenario, { maxCommands: ctx.maxCommands, swarm: ctx.swarm }), { seed, numRuns: 1 })[0]!;
}

/** A deletion of a shrink path: `count` commands from index `start`. */
export interface Deletion {
  readonly start: number;
  readonly count: number;
}

/** The deletions of a shrink path (`start+count` joined by `:`, empty for none), or null when it is not one. */
export function parseShrinkPath(path: string): Deletion[] | null {
  if (path === '') return [];
  if (!/^\d+\+\d+(:\d+\+\d+)*$/.test(path)) return null;
  return path.split(':').map((d) => {
    const [start, count] = d.split('+').map(Number) as [number, number];
    return { start, count };
  });
}

export function shrinkPathText(path: readonly Deletion[]): string {
  return path.map((d) => `${d.start}+${d.count}`).join(':');
}

/**
 * Run a seed's sequence again and apply a shrink path to it as shrinkFailure did: each
 * deletion on the commands cut at the last failing step, then cut again at the step the
 * candidate fails at, so the result is the shrunk trace the campaign filed. A deletion
 * the trace no longer fails after (the code changed since) is kept uncut, and the result
 * says what the commands do now. Definitions are checked, as on every replay: a run
 * fails at its first failing check, so this changes nothing for a run that failed before
 * its end. The coverage is the generated sequence's, as in runOne.
 */
export function rerunPath(ctx: Omit<RunContext, 'campaignSeed' | 'shrinkBudget'>, seed: number, path: readonly Deletion[]): Omit<RunResult, 'runIndex'> {
  const coverage = emptyCoverage();
  const scratch = emptyCoverage();
  let commands = generatedCommands(ctx, seed);
  let failure = runTrace({ ...ctx.setup, commands, coverage, checkDefinitions: true }).failure;
  for (const d of path) {
    if (failure !== null) commands = upToFailure(commands, failure);
    commands = [...commands.slice(0, d.start), ...commands.slice(d.start + d.count)];
    failure = runTrace({ ...ctx.setup, commands, coverage: scratch, checkDefinitions: true }).failure;
  }
  if (failure === null) return { coverage, failedKey: null, found: null };
  const key = failureKey(ctx.target, ctx.scenario.name, failure);
  return { coverage, failedKey: key, found: { key, runIndex: -1, seed, path: shrinkPathText(path), commands: upToFailure(commands, failure), failure } };
}

/**
 * Runs run `runIndex`. `known` maps failure keys already found to the run index that found
 * them (-1 for the failure database): such a failure is counted without shrinking, unless
 * this run comes earlier, because the campaign files the trace of the earliest run so the
 * stored trace does not depend on which worker was faster.
 */
export function runOne(ctx: RunContext, runIndex: number, known: ReadonlyMap<string, number>): RunResult {
  const name = ctx.scenario.name;
  const seed = runSeed(ctx.campaignSeed, runIndex);
  const commands = generatedCommands(ctx, seed);
  const coverage = emptyCoverage();
  const checkDefinitions = runIndex % DEFINITIONS_EVERY === 0;
  const heartbeat = ctx.heartbeat === undefined ? {} : { heartbeat: ctx.heartbeat };
  const r = runTrace({ ...ctx.setup, commands, coverage, checkDefinitions, ...heartbeat });
  if (r.failure === null) return { runIndex, coverage, failedKey: null, found: null };
  const key = failureKey(ctx.target, name, r.failure);
  if (runIndex >= (known.get(key) ?? Infinity)) return { runIndex, coverage, failedKey: key, found: null };
  const scratch = emptyCoverage();
  if (ctx.heartbeat !== undefined) shrinkStarts(ctx.heartbeat);
  const shrunk = shrinkFailure({ commands, failure: r.failure }, (candidate) => {
    const f = runTrace({ ...ctx.setup, commands: candidate, coverage: scratch, checkDefinitions, ...heartbeat }).failure;
    return f !== null && failureKey(ctx.target, name, f) === key ? f : null;
  }, ctx.shrinkBudget);
  return {
    runIndex,
    coverage,
    failedKey: key,
    found: { key, runIndex, seed, path: shrunk.path, commands: shrunk.commands, failure: shrunk.failure },
  };
}

/** Re-run a stored trace, definitions checked too: the key it fails with now (null when it passes) and that failure. */
export function replayTrace(setup: TraceSetup, target: string, commands: readonly Command[]): { readonly key: string | null; readonly failure: TraceFailure | null } {
  const f = runTrace({ ...setup, commands, coverage: emptyCoverage(), checkDefinitions: true }).failure;
  return { key: f === null ? null : failureKey(target, setup.scenario.name, f), failure: f };
}
