/**
 * Starting campaign workers (fuzz/worker.ts), and replaying stored traces in one under
 * the command-timeout watchdog: a stored trace of a user's module may hang (a timeout
 * failure replays by hanging again), and the main thread cannot be stopped from outside.
 */
import { Worker } from 'node:worker_threads';
import type { Command } from '../spec/commands.ts';
import { failureKey, type TraceSetup } from './campaign-run.ts';
import { timeoutFailure } from './campaign-timeout.ts';
import type { TraceFailure } from './check.ts';
import { newHeartbeat, watch } from './watchdog.ts';
import type { FromWorker, WorkerInit } from './worker.ts';

export function startWorker(init: WorkerInit): Worker {
  // Worker threads do not inherit the tsx loader hooks on Node 20, and `--import tsx` in
  // execArgv does not apply to the worker's entry module there: register tsx first, then
  // import the TypeScript entry.
  const tsx = import.meta.resolve('tsx/esm/api');
  const entry = new URL('./worker.ts', import.meta.url).href;
  const code = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); })`;
  return new Worker(code, { eval: true, workerData: init, execArgv: [] });
}

export interface TraceToReplay {
  readonly commands: readonly Command[];
  readonly fullCheckEvery: number;
}

/** What a replayed trace does now: the key it fails with (null: passes) and the failure. */
export interface Replayed {
  readonly key: string | null;
  readonly failure: TraceFailure | null;
}

/**
 * Replays `traces` in order in a worker, as replayTrace does on the main thread. A trace
 * whose step does not return within `timeoutMs` is a timeout failure at that step; its
 * worker is stopped and a fresh one goes on with the next trace. `setup` is a replay's
 * (boot included), for the model's side of a timeout.
 */
export async function replayInWorkers(init: WorkerInit, traces: readonly TraceToReplay[], timeoutMs: number, setup: TraceSetup): Promise<Replayed[]> {
  const out: Replayed[] = [];
  while (out.length < traces.length) {
    await new Promise<void>((resolve, reject) => {
      const heartbeat = newHeartbeat();
      const w = startWorker({ ...init, heartbeat });
      let live = true;
      const stop = (e?: Error): void => {
        live = false;
        unwatch();
        void w.terminate();
        if (e === undefined) resolve();
        else reject(e);
      };
      const unwatch = watch(heartbeat, timeoutMs, (stall) => {
        const t = traces[out.length]!;
        const failure = timeoutFailure(setup, t.commands, stall.step, timeoutMs);
        out.push({ key: failureKey(init.target.label, setup.scenario.name, failure), failure });
        stop();
      });
      const next = (): void => {
        if (out.length === traces.length) stop();
        else w.postMessage({ type: 'replay', ...traces[out.length]! });
      };
      w.on('message', (m: FromWorker) => {
        if (m.type === 'fatal') stop(new Error(`fuzz worker failed: ${m.message}`));
        else if (m.type === 'ready') next();
        else if (m.type === 'replayed') {
          out.push({ key: m.key, failure: m.failure });
          next();
        }
      });
      w.on('error', (e) => {
        if (live) stop(e);
      });
      w.on('exit', (code) => {
        if (live) stop(new Error(`fuzz worker exited early (code ${code})`));
      });
    });
  }
  return out;
}
