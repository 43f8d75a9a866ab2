/**
 * A fuzz campaign: runs indexed sequences on worker threads until the budget (a number of
 * runs, or a time) is spent, merges their coverage, and reports every failure as it is
 * found so the caller can store it at once (a crash later never loses it).
 *
 * Determinism: run #n's sequence, and with `--scenario matrix` its scenario, depend only
 * on the campaign seed and n (campaign-run.ts, matrix.ts), the shards own disjoint run
 * indexes (globalRunIndex), and for each
 * failure key the trace of the earliest run is the one reported last as `onFound`. So
 * with a run budget the outcome (runs, coverage, failures and their traces) is the same
 * for any number of workers on any machine; with a time budget the set of runs done
 * depends on speed and is reported.
 */
import type { Worker } from 'node:worker_threads';
import type { Command } from '../spec/commands.ts';
import { scenarioNamed } from '../spec/scenario.ts';
import { failureKey, globalRunIndex, isFindingKey, upToFailure, type FoundFailure, type HungTrace, type RunResult, type TraceSetup } from './campaign-run.ts';
import { type TargetSpec } from './campaign-target.ts';
import { addCoverage, emptyCoverage, type Coverage } from './coverage.ts';
import { timeoutResult } from './campaign-timeout.ts';
import { builtinTarget } from './defaults.ts';
import type { TraceFailure } from './check.ts';
import { campaignScenarios, runPlan } from './matrix.ts';
import { newHeartbeat, watch } from './watchdog.ts';
import type { FromWorker, ToWorker, WorkerInit } from './worker.ts';
import { runTasks, startWorker, type StopWhen } from './worker-start.ts';
import { runTask, setupCache, type Replayed, type Task, type TaskResult } from './worker-task.ts';
import { UserImplError } from './user-impl.ts';

export interface CampaignConfig {
  /** A built-in scenario's name, or `matrix` (fuzz/matrix.ts): every run on the scenario its index names. */
  readonly scenario: string;
  readonly target: TargetSpec;
  readonly seed: number;
  /** Run budget of this shard; null: until the time budget ends. */
  readonly runs: number | null;
  /** Time budget in ms; null: until the run budget ends. */
  readonly timeMs: number | null;
  readonly jobs: number;
  /** 0-based shard index and shard count. */
  readonly shard: { readonly index: number; readonly count: number };
  readonly maxCommands: number;
  /** Each run on its own subset of the operations (CommandsArbOptions.swarm). */
  readonly swarm: boolean;
  readonly fullCheckEvery: number;
  readonly shrinkBudget: number;
  /** Stop starting runs once this many distinct failures are known (null: never); runs in flight finish. */
  readonly bail: number | null;
  /** Stops the campaign (Ctrl-C): no new run starts, and runs in flight are abandoned, their workers stopped. */
  readonly signal?: AbortSignal;
  /**
   * A step of a run that takes longer than this (ms) is hung: its worker is stopped and
   * the run filed as a 'timeout' failure (fuzz/watchdog.ts). Absent or 0: no watchdog.
   */
  readonly commandTimeoutMs?: number;
  /** Each worker writes a V8 CPU profile into this directory when it exits (fuzz/profile.ts). */
  readonly profileCpuDir?: string;
  /**
   * Check the module target first (fuzz/user-impl.ts: it loads and builds a system that
   * has every method), in the worker that then checks the boots, so a campaign of a
   * module starts one worker less. A module that fails it throws UserImplError.
   */
  readonly trial?: boolean;
}

/** A trace from the failure database, replayed before any new run. */
export interface StoredTrace {
  readonly key: string;
  /** The scenario it was found on (of the campaign's: a matrix campaign replays each on its own). */
  readonly scenario: string;
  readonly commands: readonly Command[];
  /** The full-check period it was found with: it replays exactly only with the same checks. */
  readonly fullCheckEvery: number;
  /** The seed of the run that found it. */
  readonly seed: number;
}

export interface StoredOutcome {
  readonly key: string;
  /** Still fails, with the same key. */
  readonly reproduced: boolean;
  /** What it does now when it does not fail the same way: passes, or fails with another key. */
  readonly nowKey: string | null;
  /** When it now fails with another key: that failure, to be filed under its new key. */
  readonly now: FoundFailure | null;
}

export interface Progress {
  readonly elapsedMs: number;
  readonly runs: number;
  readonly commands: number;
  /** Distinct failures so far (stored ones that reproduced included). */
  readonly failures: number;
  readonly coverage: Coverage;
}

export interface FailureTally {
  readonly key: string;
  /** Runs of this campaign that hit it (plus 1 if a stored trace reproduced it). */
  hits: number;
  /** The earliest run that hit it, -1 for a stored trace. */
  firstRun: number;
}

export interface CampaignResult {
  readonly runs: number;
  readonly commands: number;
  readonly elapsedMs: number;
  readonly coverage: Coverage;
  readonly stored: readonly StoredOutcome[];
  /** By key, in order of first run index. */
  readonly failures: readonly FailureTally[];
  /** 'boot': the scenario's boot failed on the target, so no run started (the one failure says where). */
  readonly stoppedBy: 'runs' | 'time' | 'bail' | 'interrupt' | 'boot';
}

export interface CampaignHooks {
  /** The stored traces were replayed (before any new run). */
  onStored?(outcomes: readonly StoredOutcome[]): void;
  /**
   * A new failure (`replaces` false), or the trace of an earlier run for a failure this
   * campaign already reported (`replaces` true: keep the count, take this trace).
   */
  onFound(found: FoundFailure, replaces: boolean): void;
  /** A run hit a failure already reported (or stored). */
  onRepeat(key: string): void;
  onProgress?(p: Progress): void;
  /** How often onProgress is called. */
  readonly progressEveryMs?: number;
}

/**
 * Main-thread trace setups, boot included, of the built-in model and impl: what a hung
 * task's verdict runs (the model's outcome of the step that hung). Never a user module's:
 * importing it runs its code, which may hang the main thread.
 */
export function mainThreadSetup(scenario: string, fullCheckEvery: number): TraceSetup {
  return { ...builtinTarget(scenarioNamed(scenario)!()), fullCheckEvery };
}

/**
 * Tasks that run the target's code (fuzz/worker-task.ts): a user module's in workers under
 * the watchdog when a command timeout is set; the trusted built-in systems (or a module
 * with no limit, --command-timeout 0) on this thread.
 */
export async function runTargetTasks(init: WorkerInit, tasks: readonly Task[], stopWhen: StopWhen = () => false): Promise<TaskResult[]> {
  if (tasks.length === 0) return [];
  if (init.target.kind === 'module' && init.commandTimeoutMs > 0) {
    return runTasks(init, tasks, (scenario) => mainThreadSetup(scenario, init.fullCheckEvery), stopWhen);
  }
  const booted = setupCache(init);
  const out: TaskResult[] = [];
  for (const t of tasks) {
    out.push(await runTask(t, init, booted));
    if (stopWhen(out.at(-1)!, out.length - 1)) break;
  }
  return out;
}

/** `tasks`, after the module's trial when the config asks for one (CampaignConfig.trial): UserImplError when it fails. */
export async function afterTrial(config: CampaignConfig, init: WorkerInit, tasks: readonly Task[]): Promise<TaskResult[]> {
  const t = init.target;
  if (config.trial !== true || t.kind !== 'module') return runTargetTasks(init, tasks);
  // The other tasks run the module only when its trial passed.
  const [problem, ...rest] = await runTargetTasks(init, [{ type: 'trial', module: t.module, scenario: init.scenarios[0]! }, ...tasks], (r, i) => i === 0 && typeof r === 'string');
  if (typeof problem === 'string') throw new UserImplError(problem);
  return rest;
}

/** Replays the stored traces before the workers start, each on its own scenario. */
async function replayStored(config: CampaignConfig, stored: readonly StoredTrace[]): Promise<StoredOutcome[]> {
  // After the boot check passed: the replays start from booted systems without checking the boot again.
  const results = await runTargetTasks({ ...workerInit(config, []), bootsChecked: true }, stored.map((s) => ({ type: 'replay', scenario: s.scenario, commands: s.commands, fullCheckEvery: s.fullCheckEvery, key: s.key })));
  return stored.map((s, i) => {
    const r = results[i] as Replayed;
    const moved = r.key !== null && r.key !== s.key && r.failure !== null;
    const now: FoundFailure | null = moved
      ? { key: r.key!, scenario: s.scenario, runIndex: -1, seed: s.seed, path: `stored ${s.key}`, commands: upToFailure(s.commands, r.failure!), failure: r.failure! }
      : null;
    return { key: s.key, reproduced: r.key === s.key, nowKey: r.key, now };
  });
}

export function workerInit(config: CampaignConfig, known: WorkerInit['known']): WorkerInit {
  const scenarios = campaignScenarios(config.scenario);
  if (scenarios === undefined) throw new Error(`unknown scenario ${config.scenario}`);
  return {
    scenarios,
    target: config.target,
    maxCommands: config.maxCommands,
    swarm: config.swarm,
    fullCheckEvery: config.fullCheckEvery,
    shrinkBudget: config.shrinkBudget,
    campaignSeed: config.seed,
    known,
    commandTimeoutMs: config.commandTimeoutMs ?? 0,
    ...(config.profileCpuDir === undefined ? {} : { profileCpuDir: config.profileCpuDir }),
  };
}

export async function runCampaign(config: CampaignConfig, stored: readonly StoredTrace[], hooks: CampaignHooks): Promise<CampaignResult> {
  const start = Date.now();
  const init = workerInit(config, []);
  const { scenarios } = init;
  // Every trace starts with the boot: when it fails, every run would only fail the same
  // way. Each scenario's boot is checked, and every failing one filed.
  const boots = (await afterTrial(config, init, scenarios.map((scenario) => ({ type: 'boot', scenario })))) as (TraceFailure | null)[];
  const failedBoots = scenarios.flatMap((scenario, i) => (boots[i] === null ? [] : [{ scenario, failure: boots[i]! }]));
  if (failedBoots.length > 0) {
    const failures = failedBoots.map(({ scenario, failure }) => {
      const key = failureKey(config.target.label, scenario, failure);
      hooks.onFound({ key, scenario, runIndex: -1, seed: config.seed, path: '', commands: [], failure, foundAtMs: Date.now() - start, commandsBefore: 0 }, false);
      return { key, hits: 1, firstRun: -1 };
    });
    return { runs: 0, commands: 0, elapsedMs: Date.now() - start, coverage: emptyCoverage(), stored: [], failures, stoppedBy: 'boot' };
  }
  const storedOutcomes = await replayStored(config, stored);
  hooks.onStored?.(storedOutcomes);
  const tallies = new Map<string, FailureTally>();
  /** Distinct failures so far: findings (what the kernel permits) are tallied too, but do not count. */
  const failureCount = (): number => [...tallies.keys()].filter((k) => !isFindingKey(k)).length;
  for (const s of storedOutcomes) {
    if (s.reproduced) tallies.set(s.key, { key: s.key, hits: 1, firstRun: -1 });
    // A stored trace that now fails another way is a failure of this campaign too.
    if (s.now !== null && !tallies.has(s.now.key)) {
      tallies.set(s.now.key, { key: s.now.key, hits: 1, firstRun: -1 });
      hooks.onFound({ ...s.now, foundAtMs: Date.now() - start, commandsBefore: 0 }, false);
    }
  }

  const coverage = emptyCoverage();
  let runsDone = 0;
  let k = 0; // next shard-local run number to hand out
  let stoppedBy: CampaignResult['stoppedBy'] = 'runs';
  const outOfBudget = (): boolean => {
    if (config.signal?.aborted === true) return (stoppedBy = 'interrupt'), true;
    if (config.bail !== null && failureCount() >= config.bail) return (stoppedBy = 'bail'), true;
    if (config.runs !== null && k >= config.runs) return (stoppedBy = 'runs'), true;
    if (config.timeMs !== null && Date.now() - start >= config.timeMs) return (stoppedBy = 'time'), true;
    return false;
  };
  const progress = (): Progress => ({ elapsedMs: Date.now() - start, runs: runsDone, commands: coverage.commands, failures: failureCount(), coverage });

  const jobs = config.runs === null ? config.jobs : Math.max(1, Math.min(config.jobs, config.runs));
  const timeoutMs = init.commandTimeoutMs;
  /** Live workers; one the watchdog stopped leaves the set before it exits. */
  const workers = new Set<Worker>();
  const timer = hooks.onProgress === undefined ? undefined : setInterval(() => hooks.onProgress!(progress()), hooks.progressEveryMs ?? 1000);
  /** Each slot's way to end at once (an interrupt does not wait for runs in flight). */
  const stops = new Set<() => void>();
  const onAbort = (): void => {
    stoppedBy = 'interrupt';
    for (const stop of stops) stop();
  };
  config.signal?.addEventListener('abort', onAbort);
  /** Main-thread setups by scenario, for the model's side of a timeout. */
  const mainSetups = new Map<string, TraceSetup>();
  const mainSetup = (scenario: string): TraceSetup => {
    let s = mainSetups.get(scenario);
    if (s === undefined) mainSetups.set(scenario, (s = mainThreadSetup(scenario, config.fullCheckEvery)));
    return s;
  };

  const onResult = (r: RunResult, from: Worker): void => {
    runsDone++;
    addCoverage(coverage, r.coverage);
    // A shrink candidate that hung is a failure of its own, found by the same run.
    if (r.hang !== undefined) tally({ runIndex: r.runIndex, failedKey: r.hang.key, found: r.hang }, r.coverage.commands, from);
    // What the kernel permits (linux profile) is filed and counted like a failure; the
    // summary tells the two apart, and only failures fail the campaign or bail it.
    for (const key of r.findings?.keys ?? []) {
      const found = r.findings!.found.find((f) => f.key === key) ?? null;
      tally({ runIndex: r.runIndex, failedKey: key, found }, r.coverage.commands, from);
    }
    if (r.failedKey === null) return;
    tally(r, r.coverage.commands, from);
  };
  const tally = (r: Pick<RunResult, 'runIndex' | 'failedKey' | 'found'>, runCommands: number, from: Worker): void => {
    if (r.failedKey === null) return;
    const t = tallies.get(r.failedKey);
    // A worker may not yet know that another one found this failure in an earlier run.
    if (r.found !== null && (t === undefined || r.runIndex < t.firstRun)) {
      // This run's own commands are already in the total: "before" leaves them out.
      hooks.onFound({ ...r.found, foundAtMs: Date.now() - start, commandsBefore: coverage.commands - runCommands }, t !== undefined);
      for (const w of workers) if (w !== from) w.postMessage({ type: 'known', key: r.found.key, runIndex: r.runIndex } satisfies ToWorker);
    } else {
      hooks.onRepeat(r.failedKey);
    }
    if (t === undefined) tallies.set(r.failedKey, { key: r.failedKey, hits: 1, firstRun: r.runIndex });
    else {
      t.hits++;
      // A stored trace's -1 stays: run indexes are never negative.
      t.firstRun = Math.min(t.firstRun, r.runIndex);
    }
  };

  try {
    // One slot per job: a worker, replaced by a fresh one (knowing every failure found so
    // far) when the watchdog stops it.
    await Promise.all(Array.from({ length: jobs }, () => new Promise<void>((resolve, reject) => {
      let unwatch = (): void => {};
      const end = (): void => {
        unwatch();
        stops.delete(end);
        resolve();
      };
      stops.add(end);
      if (config.signal?.aborted === true) return end();
      /** `again`: a run whose shrinking hung, to run again in the fresh worker knowing which of its traces hung. */
      const spawn = (again?: { readonly runIndex: number; readonly hung: readonly HungTrace[] }): void => {
        // Its own, idle: a stopped worker's may still say it is in the run that hung.
        const heartbeat = timeoutMs > 0 ? newHeartbeat() : undefined;
        const w = startWorker({ ...init, bootsChecked: true, known: [...tallies.values()].map((t) => [t.key, t.firstRun] as const), ...(heartbeat === undefined ? {} : { heartbeat }) });
        workers.add(w);
        let current = again;
        unwatch = heartbeat === undefined ? () => {} : watch(heartbeat, timeoutMs, (stall) => {
          workers.delete(w);
          void w.terminate();
          if (stall.shrinking) {
            // The run failed and hung while shrinking: it is run again, the candidate that
            // hung skipped, so the failure is filed shrunk (campaign-run.ts runOne).
            const hung = [...(current?.runIndex === stall.runIndex ? current.hung : []), { evaluation: stall.evaluation, step: stall.step }];
            spawn({ runIndex: stall.runIndex, hung });
            return;
          }
          const plan = runPlan(scenarios, config.maxCommands, stall.runIndex);
          const ctx = { ...init, scenario: scenarioNamed(plan.scenario)!(), maxCommands: plan.maxCommands, target: config.target.label };
          onResult(timeoutResult(mainSetup(plan.scenario), ctx, stall, timeoutMs), w);
          spawn();
        });
        const fail = (e: Error): void => {
          unwatch();
          stops.delete(end);
          reject(e);
        };
        const dispatch = (): void => {
          if (current !== undefined) {
            w.postMessage({ type: 'run', runIndex: current.runIndex, hung: current.hung } satisfies ToWorker);
            return;
          }
          if (outOfBudget()) return end();
          w.postMessage({ type: 'run', runIndex: globalRunIndex(k++, config.shard.index, config.shard.count, scenarios.length) } satisfies ToWorker);
        };
        w.on('message', (m: FromWorker) => {
          if (!workers.has(w)) return;
          if (m.type === 'fatal') fail(new Error(`fuzz worker failed: ${m.message}`));
          else if (m.type === 'ready') dispatch();
          else if (m.type === 'result') {
            current = undefined;
            onResult(m.result, w);
            dispatch();
          }
        });
        w.on('error', (e) => {
          if (workers.has(w)) fail(e);
        });
        w.on('exit', (code) => {
          if (workers.has(w)) fail(new Error(`fuzz worker exited early (code ${code})`));
        });
      };
      spawn();
    })));
  } finally {
    config.signal?.removeEventListener('abort', onAbort);
    if (timer !== undefined) clearInterval(timer);
    const live = [...workers];
    workers.clear();
    await Promise.all(live.map((w) => w.terminate()));
  }
  const failures = [...tallies.values()].sort((a, b) => a.firstRun - b.firstRun);
  return { runs: runsDone, commands: coverage.commands, elapsedMs: Date.now() - start, coverage, stored: storedOutcomes, failures, stoppedBy };
}
