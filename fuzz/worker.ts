/**
 * A campaign worker thread: runs the run indexes the campaign hands it, one at a time,
 * each on the scenario its index names (fuzz/matrix.ts), and posts each run's coverage
 * and any new failure back; or runs one task (fuzz/worker-task.ts) that would otherwise
 * run a user's module on the main thread. The systems of each scenario are built once,
 * when a run first needs them. Every message is handled to its end before the next run
 * is handed out, so runs never overlap.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { scenarioNamed } from '../spec/scenario.ts';
import { runOne, type HungTrace, type RunContext, type RunResult } from './campaign-run.ts';
import type { TargetSpec } from './campaign-target.ts';
import { errorText } from './check.ts';
import { runPlan } from './matrix.ts';
import { REPLAY_RUN, runEnds, runStarts, type Heartbeat } from './watchdog.ts';
import { imported, runTask, setupCache, type Task, type TaskResult } from './worker-task.ts';

export interface WorkerInit {
  /** The campaign's scenarios in run order (one, or the matrix's). */
  readonly scenarios: readonly string[];
  readonly target: TargetSpec;
  readonly maxCommands: number;
  readonly swarm: boolean;
  readonly fullCheckEvery: number;
  readonly shrinkBudget: number;
  readonly campaignSeed: number;
  /** Failure keys already known, with the run index that found them (-1: the failure database). */
  readonly known: readonly (readonly [string, number])[];
  /** --command-timeout in ms (0: none); a hung trace's failure says it. */
  readonly commandTimeoutMs: number;
  /** Shared with the main thread's watchdog (--command-timeout); absent when no timeout is set. */
  readonly heartbeat?: Heartbeat;
  /** Every scenario's boot was checked (and passed) before this worker started. */
  readonly bootsChecked?: boolean;
  /** --profile-cpu: the directory V8 writes this worker's CPU profile into when it exits (fuzz/profile.ts). */
  readonly profileCpuDir?: string;
}

export type ToWorker =
  /** `hung`: traces of this run's shrinking that hung when it ran before (campaign-run.ts HungTrace). */
  | { readonly type: 'run'; readonly runIndex: number; readonly hung?: readonly HungTrace[] }
  /** A failure another worker found first: do not shrink it again unless found by an earlier run. */
  | { readonly type: 'known'; readonly key: string; readonly runIndex: number }
  | { readonly type: 'task'; readonly task: Task };

export type FromWorker =
  | { readonly type: 'ready' }
  | { readonly type: 'result'; readonly result: RunResult }
  | { readonly type: 'done'; readonly result: TaskResult }
  | { readonly type: 'fatal'; readonly message: string };

const port = parentPort;
if (port === null) throw new Error('fuzz/worker.ts runs only as a worker thread');
const init = workerData as WorkerInit;
const heartbeat = init.heartbeat === undefined ? {} : { heartbeat: init.heartbeat };
const booted = setupCache(init);
const known = new Map(init.known);

async function contextFor(runIndex: number): Promise<RunContext> {
  const plan = runPlan(init.scenarios, init.maxCommands, runIndex);
  return {
    setup: await booted(plan.scenario),
    scenario: scenarioNamed(plan.scenario)!(),
    target: init.target.label,
    maxCommands: plan.maxCommands,
    swarm: init.swarm,
    campaignSeed: init.campaignSeed,
    shrinkBudget: init.shrinkBudget,
    matrix: init.scenarios.length,
    ...heartbeat,
  };
}

port.on('message', (m: ToWorker) => {
  if (m.type === 'known') {
    known.set(m.key, Math.min(m.runIndex, known.get(m.key) ?? Infinity));
    return;
  }
  void (async () => {
    try {
      // Watched from before the systems are built: building and booting a module's systems runs its code.
      if (init.heartbeat !== undefined) runStarts(init.heartbeat, m.type === 'run' ? m.runIndex : REPLAY_RUN);
      if (m.type === 'task') {
        const result = await runTask(m.task, { ...init, ...heartbeat }, booted);
        if (init.heartbeat !== undefined) runEnds(init.heartbeat);
        port.postMessage({ type: 'done', result } satisfies FromWorker);
        return;
      }
      if (init.target.kind === 'module') await imported(init.target.url, init.heartbeat);
      const hung = m.hung === undefined ? undefined : { traces: m.hung, timeoutMs: init.commandTimeoutMs };
      const result = runOne(await contextFor(m.runIndex), m.runIndex, known, hung);
      if (init.heartbeat !== undefined) runEnds(init.heartbeat);
      if (result.found !== null) known.set(result.found.key, result.runIndex);
      port.postMessage({ type: 'result', result } satisfies FromWorker);
    } catch (e) {
      port.postMessage({ type: 'fatal', message: errorText(e) } satisfies FromWorker);
    }
  })();
});
port.postMessage({ type: 'ready' } satisfies FromWorker);
