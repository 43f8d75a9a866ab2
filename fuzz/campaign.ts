/**
 * A fuzz campaign: runs indexed sequences on worker threads until the budget (a number of
 * runs, or a time) is spent, merges their coverage, and reports every failure as it is
 * found so the caller can store it at once (a crash later never loses it).
 *
 * Determinism: run #n's sequence depends only on the campaign seed and n
 * (campaign-run.ts), a shard owns the run indexes ≡ shard (mod shards), and for each
 * failure key the trace of the earliest run is the one reported last as `onFound`. So
 * with a run budget the outcome (runs, coverage, failures and their traces) is the same
 * for any number of workers on any machine; with a time budget the set of runs done
 * depends on speed and is reported.
 */
import type { Worker } from 'node:worker_threads';
import type { Command } from '../spec/commands.ts';
import { failureKey, globalRunIndex, replayTrace, upToFailure, type FoundFailure, type RunResult, type TraceSetup } from './campaign-run.ts';
import { bootFailure, traceSetupFor, type TargetSpec } from './campaign-target.ts';
import { addCoverage, emptyCoverage, type Coverage } from './coverage.ts';
import { timeoutResult } from './campaign-timeout.ts';
import { newHeartbeat, watch } from './watchdog.ts';
import type { FromWorker, ToWorker, WorkerInit } from './worker.ts';
import { replayInWorkers, startWorker, type Replayed } from './worker-start.ts';

export interface CampaignConfig {
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
  /** Stops dispatching new runs (Ctrl-C); runs in flight finish. */
  readonly signal?: AbortSignal;
  /**
   * A step of a run that takes longer than this (ms) is hung: its worker is stopped and
   * the run filed as a 'timeout' failure (fuzz/watchdog.ts). Absent or 0: no watchdog.
   */
  readonly commandTimeoutMs?: number;
}

/** A trace from the failure database, replayed before any new run. */
export interface StoredTrace {
  readonly key: string;
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

/** Replays the stored traces on the main thread, before the workers start. */
async function replayStored(config: CampaignConfig, stored: readonly StoredTrace[], replaySetup: TraceSetup): Promise<StoredOutcome[]> {
  if (stored.length === 0) return [];
  const timeoutMs = config.commandTimeoutMs ?? 0;
  let results: readonly Replayed[];
  // A module's stored trace may hang (a timeout failure does, if not fixed): off the main
  // thread, under the watchdog. The built-in systems are trusted: no worker to start.
  if (config.target.kind === 'module' && timeoutMs > 0) results = await replayInWorkers(workerInit(config, []), stored, timeoutMs, replaySetup);
  else {
    const setup = await traceSetupFor(config.scenario, config.target, config.fullCheckEvery, { bootOnce: true });
    results = stored.map((s) => replayTrace({ ...setup, fullCheckEvery: s.fullCheckEvery }, config.target.label, s.commands));
  }
  return stored.map((s, i) => {
    const r = results[i]!;
    const moved = r.key !== null && r.key !== s.key && r.failure !== null;
    const now: FoundFailure | null = moved
      ? { key: r.key!, runIndex: -1, seed: s.seed, path: `stored ${s.key}`, commands: upToFailure(s.commands, r.failure!), failure: r.failure! }
      : null;
    return { key: s.key, reproduced: r.key === s.key, nowKey: r.key, now };
  });
}

function workerInit(config: CampaignConfig, known: WorkerInit['known']): WorkerInit {
  return {
    scenario: config.scenario,
    target: config.target,
    maxCommands: config.maxCommands,
    swarm: config.swarm,
    fullCheckEvery: config.fullCheckEvery,
    shrinkBudget: config.shrinkBudget,
    campaignSeed: config.seed,
    known,
  };
}

export async function runCampaign(config: CampaignConfig, stored: readonly StoredTrace[], hooks: CampaignHooks): Promise<CampaignResult> {
  const start = Date.now();
  // Every trace starts with the boot: when it fails, every run would only fail the same way.
  const replaySetup = await traceSetupFor(config.scenario, config.target, config.fullCheckEvery);
  const boot = bootFailure(replaySetup);
  if (boot !== null) {
    const key = failureKey(config.target.label, config.scenario, boot);
    hooks.onFound({ key, runIndex: -1, seed: config.seed, path: '', commands: [], failure: boot, foundAtMs: Date.now() - start, commandsBefore: 0 }, false);
    return {
      runs: 0, commands: 0, elapsedMs: Date.now() - start, coverage: emptyCoverage(), stored: [],
      failures: [{ key, hits: 1, firstRun: -1 }], stoppedBy: 'boot',
    };
  }
  const storedOutcomes = await replayStored(config, stored, replaySetup);
  hooks.onStored?.(storedOutcomes);
  const tallies = new Map<string, FailureTally>();
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
    if (config.bail !== null && tallies.size >= config.bail) return (stoppedBy = 'bail'), true;
    if (config.runs !== null && k >= config.runs) return (stoppedBy = 'runs'), true;
    if (config.timeMs !== null && Date.now() - start >= config.timeMs) return (stoppedBy = 'time'), true;
    return false;
  };
  const progress = (): Progress => ({ elapsedMs: Date.now() - start, runs: runsDone, commands: coverage.commands, failures: tallies.size, coverage });

  const init = workerInit(config, [...tallies.keys()].map((key) => [key, -1] as const));
  const jobs = config.runs === null ? config.jobs : Math.max(1, Math.min(config.jobs, config.runs));
  const timeoutMs = config.commandTimeoutMs ?? 0;
  /** Live workers; one the watchdog stopped leaves the set before it exits. */
  const workers = new Set<Worker>();
  const timer = hooks.onProgress === undefined ? undefined : setInterval(() => hooks.onProgress!(progress()), hooks.progressEveryMs ?? 1000);

  const onResult = (r: RunResult, from: Worker): void => {
    runsDone++;
    addCoverage(coverage, r.coverage);
    if (r.failedKey === null) return;
    const t = tallies.get(r.failedKey);
    // A worker may not yet know that another one found this failure in an earlier run.
    if (r.found !== null && (t === undefined || r.runIndex < t.firstRun)) {
      // This run's own commands are already in the total: "before" leaves them out.
      hooks.onFound({ ...r.found, foundAtMs: Date.now() - start, commandsBefore: coverage.commands - r.coverage.commands }, t !== undefined);
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
      const spawn = (): void => {
        // Its own, idle: a stopped worker's may still say it is in the run that hung.
        const heartbeat = timeoutMs > 0 ? newHeartbeat() : undefined;
        const w = startWorker({ ...init, known: [...tallies.values()].map((t) => [t.key, t.firstRun] as const), ...(heartbeat === undefined ? {} : { heartbeat }) });
        workers.add(w);
        const unwatch = heartbeat === undefined ? () => {} : watch(heartbeat, timeoutMs, (stall) => {
          workers.delete(w);
          void w.terminate();
          onResult(timeoutResult(replaySetup, { ...init, scenario: replaySetup.scenario, target: config.target.label }, stall, timeoutMs), w);
          spawn();
        });
        const fail = (e: Error): void => {
          unwatch();
          reject(e);
        };
        const dispatch = (): void => {
          if (outOfBudget()) {
            unwatch();
            resolve();
            return;
          }
          w.postMessage({ type: 'run', runIndex: globalRunIndex(k++, config.shard.index, config.shard.count) } satisfies ToWorker);
        };
        w.on('message', (m: FromWorker) => {
          if (m.type === 'fatal') fail(new Error(`fuzz worker failed: ${m.message}`));
          else if (m.type === 'ready') dispatch();
          else if (m.type === 'result') {
            onResult(m.result, w);
            dispatch();
          }
        });
        w.on('error', fail);
        w.on('exit', (code) => {
          if (workers.has(w)) fail(new Error(`fuzz worker exited early (code ${code})`));
        });
      };
      spawn();
    })));
  } finally {
    if (timer !== undefined) clearInterval(timer);
    const live = [...workers];
    workers.clear();
    await Promise.all(live.map((w) => w.terminate()));
  }
  const failures = [...tallies.values()].sort((a, b) => a.firstRun - b.firstRun);
  return { runs: runsDone, commands: coverage.commands, elapsedMs: Date.now() - start, coverage, stored: storedOutcomes, failures, stoppedBy };
}
