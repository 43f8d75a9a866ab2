/**
 * A campaign worker thread: builds the systems once, then runs the run indexes the
 * campaign hands it, one at a time, and posts each run's coverage and any new failure
 * back. Runs are synchronous, so messages are handled in order.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { SCENARIOS } from '../spec/scenario.ts';
import type { Command } from '../spec/commands.ts';
import { replayTrace, runOne, type RunContext, type RunResult } from './campaign-run.ts';
import { traceSetupFor, type TargetSpec } from './campaign-target.ts';
import { errorText, type TraceFailure } from './check.ts';
import { REPLAY_RUN, runEnds, runStarts, type Heartbeat } from './watchdog.ts';

export interface WorkerInit {
  readonly scenario: string;
  readonly target: TargetSpec;
  readonly maxCommands: number;
  readonly swarm: boolean;
  readonly fullCheckEvery: number;
  readonly shrinkBudget: number;
  readonly campaignSeed: number;
  /** Failure keys already known, with the run index that found them (-1: the failure database). */
  readonly known: readonly (readonly [string, number])[];
  /** Shared with the main thread's watchdog (--command-timeout); absent when no timeout is set. */
  readonly heartbeat?: Heartbeat;
}

export type ToWorker =
  | { readonly type: 'run'; readonly runIndex: number }
  /** A failure another worker found first: do not shrink it again unless found by an earlier run. */
  | { readonly type: 'known'; readonly key: string; readonly runIndex: number }
  /** Replay a stored trace (one that hung: the main thread must not run it). */
  | { readonly type: 'replay'; readonly commands: readonly Command[]; readonly fullCheckEvery: number };

export type FromWorker =
  | { readonly type: 'ready' }
  | { readonly type: 'result'; readonly result: RunResult }
  | { readonly type: 'replayed'; readonly key: string | null; readonly failure: TraceFailure | null }
  | { readonly type: 'fatal'; readonly message: string };

const port = parentPort;
if (port === null) throw new Error('fuzz/worker.ts runs only as a worker thread');
const init = workerData as WorkerInit;

try {
  const ctx: RunContext = {
    setup: await traceSetupFor(init.scenario, init.target, init.fullCheckEvery, { bootOnce: true }),
    scenario: SCENARIOS[init.scenario]!(),
    target: init.target.label,
    maxCommands: init.maxCommands,
    swarm: init.swarm,
    campaignSeed: init.campaignSeed,
    shrinkBudget: init.shrinkBudget,
    ...(init.heartbeat === undefined ? {} : { heartbeat: init.heartbeat }),
  };
  const known = new Map(init.known);
  port.on('message', (m: ToWorker) => {
    if (m.type === 'known') {
      known.set(m.key, Math.min(m.runIndex, known.get(m.key) ?? Infinity));
      return;
    }
    try {
      if (init.heartbeat !== undefined) runStarts(init.heartbeat, m.type === 'run' ? m.runIndex : REPLAY_RUN);
      if (m.type === 'replay') {
        const r = replayTrace({ ...ctx.setup, fullCheckEvery: m.fullCheckEvery, ...(init.heartbeat === undefined ? {} : { heartbeat: init.heartbeat }) }, ctx.target, m.commands);
        if (init.heartbeat !== undefined) runEnds(init.heartbeat);
        port.postMessage({ type: 'replayed', ...r } satisfies FromWorker);
        return;
      }
      const result = runOne(ctx, m.runIndex, known);
      if (init.heartbeat !== undefined) runEnds(init.heartbeat);
      if (result.found !== null) known.set(result.found.key, result.runIndex);
      port.postMessage({ type: 'result', result } satisfies FromWorker);
    } catch (e) {
      port.postMessage({ type: 'fatal', message: errorText(e) } satisfies FromWorker);
    }
  });
  port.postMessage({ type: 'ready' } satisfies FromWorker);
} catch (e) {
  port.postMessage({ type: 'fatal', message: errorText(e) } satisfies FromWorker);
}
