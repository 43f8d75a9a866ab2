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
import { runTrace, type Finding, type TraceFailure, type TraceOptions } from './check.ts';
import { emptyCoverage, type Coverage } from './coverage.ts';
import { TIMEOUT_PATH, timeoutFailure } from './campaign-timeout.ts';
import { shrinkEvaluates, shrinkStarts, type Heartbeat } from './watchdog.ts';

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

/**
 * Global run index of the k-th run of shard `shard` (0-based) of `shards` of a campaign
 * over `matrix` scenarios (run g runs on scenario g mod matrix, fuzz/matrix.ts). With one
 * scenario, shards own disjoint residues mod `shards`. With a matrix of n, the shard is
 * n sub-campaigns, the j-th being shard shard·n+j of shards·n: every shard runs every
 * scenario in turn (a residue mod `shards` would give 2 shards of a 6-scenario matrix 3
 * scenarios each), and the shards still own disjoint indexes that together are all.
 */
export function globalRunIndex(k: number, shard: number, shards: number, matrix = 1): number {
  return shard * matrix + (k % matrix) + Math.floor(k / matrix) * shards * matrix;
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

/** Whether a key files a finding (what the kernel permits, linux profile) rather than a failure. */
export const isFindingKey = (key: string): boolean => key.split('--').includes('finding');

export interface FoundFailure {
  readonly key: string;
  /**
   * The scenario and longest sequence the run was generated with, when they are not the
   * campaign's own (a run of a matrix campaign, fuzz/matrix.ts): the failure file names
   * them, so `ptspec replay` and `fuzz --replay` rerun it on its real machine.
   */
  readonly scenario?: string;
  readonly maxCommands?: number;
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
  /** A shrink candidate of this run that hung (HungTraces): a timeout failure of its own. */
  readonly hang?: FoundFailure;
  /**
   * Linux profile: what the kernel permits in this run (fuzz/check.ts Finding), by key,
   * and those new to the caller or found earlier than it knew, shrunk. Absent: none.
   */
  readonly findings?: RunFindings;
}

export interface RunFindings {
  readonly keys: readonly string[];
  readonly found: readonly FoundFailure[];
}

/**
 * The findings of a run, each new one shrunk like a failure, keeping its identity (its
 * cause: invariant, operation, region) so the trace filed shows the finding it is filed
 * under. A finding already known from an earlier run is only counted.
 */
function findingsOf(
  ctx: RunContext, runIndex: number, seed: number, commands: readonly Command[], findings: readonly Finding[],
  known: ReadonlyMap<string, number>, checkDefinitions: boolean,
): RunFindings {
  const name = ctx.scenario.name;
  const keys = findings.map((f) => failureKey(ctx.target, name, f));
  const found: FoundFailure[] = [];
  const heartbeat = ctx.heartbeat === undefined ? {} : { heartbeat: ctx.heartbeat };
  findings.forEach((first, i) => {
    const key = keys[i]!;
    if (runIndex >= (known.get(key) ?? Infinity)) return;
    if (ctx.heartbeat !== undefined) shrinkStarts(ctx.heartbeat);
    let evaluation = 0;
    const shrunk = shrinkFailure({ commands, failure: first }, (candidate) => {
      if (ctx.heartbeat !== undefined) shrinkEvaluates(ctx.heartbeat, evaluation++);
      const t = runTrace({ ...ctx.setup, commands: candidate, coverage: emptyCoverage(), checkDefinitions, ...heartbeat });
      return t.findings.find((f) => f.cause === first.cause) ?? null;
    }, Math.min(ctx.shrinkBudget, FINDING_SHRINK_BUDGET));
    found.push({ key, scenario: name, maxCommands: ctx.maxCommands, runIndex, seed, path: shrunk.path, commands: shrunk.commands, failure: shrunk.failure });
  });
  return { keys, found };
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
  /** Scenarios the campaign cycles through (fuzz/matrix.ts); absent: 1. Decides which runs check definitions. */
  readonly matrix?: number;
}

/**
 * A trace that did not return when this run ran before: the `evaluation`-th trace of its
 * shrinking (or of a rerun's path), hung at `step`. The watchdog stopped that worker; the
 * run is run again in a fresh one, which does not run that trace again (fuzz/watchdog.ts).
 */
export interface HungTrace {
  readonly evaluation: number;
  readonly step: number;
}

/** What the trace that hung is taken for; the ms of --command-timeout, for its detail. */
export interface HungTraces {
  readonly traces: readonly HungTrace[];
  readonly timeoutMs: number;
}

export const DEFAULT_SHRINK_BUDGET = 400;

/**
 * Traces a finding's shrink may run: a linux campaign meets dozens of distinct findings,
 * each shrunk in the run that found it, so they get a tenth of a failure's budget (the
 * trace is cut at the breaking step first, which does most of the work).
 */
export const FINDING_SHRINK_BUDGET = 40;

/**
 * One run in this many also holds the fast checks to the invariants' definitions on its
 * final state (TraceOptions.checkDefinitions): by run index, so which runs do is the same
 * for any number of workers or shards.
 */
export const DEFINITIONS_EVERY = 16;

/**
 * Whether run `runIndex` checks the definitions: by round of the matrix (a round runs
 * each scenario once), so every scenario gets its share, whatever the matrix's size.
 */
export function checksDefinitions(runIndex: number, matrix = 1): boolean {
  return Math.floor(runIndex / matrix) % DEFINITIONS_EVERY === 0;
}

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
export function generatedCommands(ctx: Pick<RunContext, 'scenario' | 'maxCommands' | 'swarm'> & { readonly setup?: Pick<TraceSetup, 'profile' | 'isolation' | 'clients' | 'ops'> }, seed: number): readonly Command[] {
  // Under linux, addresses inside regions too (CommandsArbOptions.interior).
  const interior = ctx.setup?.profile === 'linux' ? { interior: true } : {};
  const isolation = ctx.setup?.isolation === true ? { isolation: true } : {};
  const clients = ctx.setup?.clients === true ? { clients: true } : {};
  const ops = ctx.setup?.ops === undefined ? {} : { ops: ctx.setup.ops };
  return fc.sample(commandsArb(ctx.scenario, { maxCommands: ctx.maxCommands, swarm: ctx.swarm, ...interior, ...isolation, ...clients, ...ops }), { seed, numRuns: 1 })[0]!;
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
export function rerunPath(ctx: Omit<RunContext, 'campaignSeed' | 'shrinkBudget'>, seed: number, path: readonly Deletion[], hung?: HungTraces): Omit<RunResult, 'runIndex'> {
  const coverage = emptyCoverage();
  const scratch = emptyCoverage();
  const heartbeat = ctx.heartbeat === undefined ? {} : { heartbeat: ctx.heartbeat };
  let commands = generatedCommands(ctx, seed);
  let failure = runTrace({ ...ctx.setup, commands, coverage, checkDefinitions: true, ...heartbeat }).failure;
  if (ctx.heartbeat !== undefined) shrinkStarts(ctx.heartbeat);
  path.forEach((d, evaluation) => {
    if (failure !== null) commands = upToFailure(commands, failure);
    commands = [...commands.slice(0, d.start), ...commands.slice(d.start + d.count)];
    if (ctx.heartbeat !== undefined) shrinkEvaluates(ctx.heartbeat, evaluation);
    // A trace of the path that hung before is its timeout: what this rerun is asked to show.
    const h = hung?.traces.find((t) => t.evaluation === evaluation);
    failure = h !== undefined ? timeoutFailure(ctx.setup, commands, h.step, hung!.timeoutMs)
      : runTrace({ ...ctx.setup, commands, coverage: scratch, checkDefinitions: true, ...heartbeat }).failure;
  });
  const found = { scenario: ctx.scenario.name, maxCommands: ctx.maxCommands };
  if (failure === null) return { coverage, failedKey: null, found: null };
  const key = failureKey(ctx.target, ctx.scenario.name, failure);
  return { coverage, failedKey: key, found: { key, ...found, runIndex: -1, seed, path: shrinkPathText(path), commands: upToFailure(commands, failure), failure } };
}

/**
 * Runs run `runIndex`. `known` maps failure keys already found to the run index that found
 * them (-1 for the failure database): such a failure is counted without shrinking, unless
 * this run comes earlier, because the campaign files the trace of the earliest run so the
 * stored trace does not depend on which worker was faster.
 */
export function runOne(ctx: RunContext, runIndex: number, known: ReadonlyMap<string, number>, hung?: HungTraces): RunResult {
  const name = ctx.scenario.name;
  const seed = runSeed(ctx.campaignSeed, runIndex);
  const commands = generatedCommands(ctx, seed);
  const coverage = emptyCoverage();
  const checkDefinitions = checksDefinitions(runIndex, ctx.matrix);
  const heartbeat = ctx.heartbeat === undefined ? {} : { heartbeat: ctx.heartbeat };
  const r = runTrace({ ...ctx.setup, commands, coverage, checkDefinitions, ...heartbeat });
  const findings = findingsOf(ctx, runIndex, seed, commands, r.findings, known, checkDefinitions);
  const withFindings = findings.keys.length === 0 ? {} : { findings };
  if (r.failure === null) return { runIndex, coverage, failedKey: null, found: null, ...withFindings };
  const key = failureKey(ctx.target, name, r.failure);
  if (runIndex >= (known.get(key) ?? Infinity)) return { runIndex, coverage, failedKey: key, found: null, ...withFindings };
  const scratch = emptyCoverage();
  const origin = { scenario: name, maxCommands: ctx.maxCommands, runIndex, seed };
  if (ctx.heartbeat !== undefined) shrinkStarts(ctx.heartbeat);
  let evaluation = 0;
  /** The hang of a candidate, filed as its own timeout failure (the first, if several hung). */
  let hangFound: FoundFailure | null = null;
  const shrunk = shrinkFailure({ commands, failure: r.failure }, (candidate) => {
    const e = evaluation++;
    if (ctx.heartbeat !== undefined) shrinkEvaluates(ctx.heartbeat, e);
    const h = hung?.traces.find((t) => t.evaluation === e);
    if (h !== undefined) {
      // A candidate that hung the last time this run was shrunk fails with another key
      // (timeout), so it is not this failure: skipped like any candidate that fails
      // differently, and shrinking goes on past it. Counted as failing, it would file
      // this key with a trace that shows a hang, not the failure it is filed under. The
      // hang itself is a failure of its own, filed with the candidate's trace.
      const f = timeoutFailure(ctx.setup, candidate, h.step, hung!.timeoutMs);
      const hangKey = failureKey(ctx.target, name, f);
      if (hangFound === null && runIndex < (known.get(hangKey) ?? Infinity)) {
        hangFound = { key: hangKey, ...origin, path: TIMEOUT_PATH, commands: upToFailure(candidate, f), failure: f };
      }
      return null;
    }
    const f = runTrace({ ...ctx.setup, commands: candidate, coverage: scratch, checkDefinitions, ...heartbeat }).failure;
    return f !== null && failureKey(ctx.target, name, f) === key ? f : null;
  }, ctx.shrinkBudget);
  return {
    runIndex,
    coverage,
    failedKey: key,
    found: { key, ...origin, path: shrunk.path, commands: shrunk.commands, failure: shrunk.failure },
    ...withFindings,
    ...(hangFound === null ? {} : { hang: hangFound }),
  };
}

/**
 * Re-run a stored trace, definitions checked too: the key it fails with now (null when it
 * passes) and that failure. A trace that does not fail but shows what the kernel permits
 * (linux profile) answers with that finding: the one keyed `want` when it is among them
 * (a stored finding reproduces), else the first.
 */
export function replayTrace(setup: TraceSetup, target: string, commands: readonly Command[], want?: string): { readonly key: string | null; readonly failure: TraceFailure | null } {
  const r = runTrace({ ...setup, commands, coverage: emptyCoverage(), checkDefinitions: true });
  const keyOf = (f: TraceFailure): string => failureKey(target, setup.scenario.name, f);
  const f = r.failure ?? r.findings.find((x) => keyOf(x) === want) ?? r.findings[0] ?? null;
  return { key: f === null ? null : keyOf(f), failure: f };
}
