/**
 * Starting campaign workers (fuzz/worker.ts), and running tasks (fuzz/worker-task.ts) in
 * one under the command-timeout watchdog: a user's module may hang anywhere it runs (a
 * stored timeout failure replays by hanging again, a factory or a boot step may never
 * return), and the main thread cannot be stopped from outside.
 */
import { Worker } from 'node:worker_threads';
import type { TraceSetup } from './campaign-run.ts';
import { cpuProfileArgv } from './profile.ts';
import { newHeartbeat, watch } from './watchdog.ts';
import type { FromWorker, WorkerInit } from './worker.ts';
import { stalledTask, type Task, type TaskResult } from './worker-task.ts';

export type { Replayed } from './worker-task.ts';

/** Whether the rest of the tasks is moot after the `index`-th gave `result` (a module that failed its trial). */
export type StopWhen = (result: TaskResult, index: number) => boolean;

export function startWorker(init: WorkerInit): Worker {
  // Worker threads do not inherit the tsx loader hooks on Node 20, and `--import tsx` in
  // execArgv does not apply to the worker's entry module there: register tsx first, then
  // import the TypeScript entry.
  const tsx = import.meta.resolve('tsx/esm/api');
  const entry = new URL('./worker.ts', import.meta.url).href;
  const code = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); })`;
  // Nothing of the main thread's flags: a worker profiles only when asked (--profile-cpu).
  const execArgv = init.profileCpuDir === undefined ? [] : cpuProfileArgv(init.profileCpuDir);
  // A larger young generation: a run allocates states and leaves by the thousand, nearly all
  // short-lived, and the default semi-space made scavenges 14% of a worker's time (242
  // scavenges and 2.0 s over 60 runs with the default, 84 and 1.3 s with 192 MB).
  return new Worker(code, { eval: true, workerData: init, execArgv, resourceLimits: { maxYoungGenerationSizeMb: 192 } });
}

/**
 * Runs `tasks` in order in a worker, each as runTask would on the main thread. A task
 * whose step does not move within init.commandTimeoutMs is stalledTask's verdict (a
 * timeout, or the task again knowing what hung); its worker is stopped and a fresh one
 * goes on. `setupOf` gives a task's scenario's trace setup for that verdict: boot
 * included, its model trusted (the impl's side is never run on the main thread).
 */
export async function runTasks(init: WorkerInit, tasks: readonly Task[], setupOf: (scenario: string) => TraceSetup, stopWhen: StopWhen = () => false): Promise<TaskResult[]> {
  const out: TaskResult[] = [];
  const queue = [...tasks];
  while (queue.length > 0 && !(out.length > 0 && stopWhen(out.at(-1)!, out.length - 1))) {
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
      const unwatch = watch(heartbeat, init.commandTimeoutMs, (stall) => {
        const task = queue[0]!;
        const v = stalledTask(task, stall, init, setupOf(task.scenario));
        if ('retry' in v) queue[0] = v.retry;
        else {
          queue.shift();
          out.push(v.result);
        }
        stop();
      });
      const next = (): void => {
        if (queue.length === 0 || (out.length > 0 && stopWhen(out.at(-1)!, out.length - 1))) {
          queue.length = 0;
          stop();
        }
        else w.postMessage({ type: 'task', task: queue[0]! });
      };
      w.on('message', (m: FromWorker) => {
        if (m.type === 'fatal') stop(new Error(`fuzz worker failed: ${m.message}`));
        else if (m.type === 'ready') next();
        else if (m.type === 'done') {
          queue.shift();
          out.push(m.result);
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
