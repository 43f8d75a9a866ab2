/**
 * A watchdog for operations that never return. A synchronous loop in a user's module
 * cannot be interrupted from its own thread, so campaign workers publish the step they
 * are on in shared memory (one Atomics.store and one Atomics.add a command) and the main
 * thread checks it periodically: a run whose step has not advanced within the timeout
 * is hung, and its worker is terminated from outside.
 */

/** A worker's published position: an Int32Array over a SharedArrayBuffer (slots below). */
export type Heartbeat = Int32Array;

/**
 * The run index (-1: idle between runs), 1 while shrinking, the step about to run, a
 * count of steps started, and which trace of the shrinking (0, 1, …) is running.
 */
const RUN = 0;
const SHRINKING = 1;
const STEP = 2;
const BEATS = 3;
const EVALUATION = 4;
/** 1 while a user's module is imported (tsx compiles it): watched with LOAD_TIMEOUT_MS at least. */
const LOADING = 5;

/**
 * The least time an import of a user's module may take before it is taken for a hang: tsx
 * compiles the module and what it imports, which in a fresh worker on a busy machine
 * takes seconds, where a command takes milliseconds. A module whose top level never
 * returns is still stopped, this much later.
 */
export const LOAD_TIMEOUT_MS = 15_000;

/**
 * The run index a worker publishes while it runs user code outside a run (runs are never
 * negative, idle is -1): replaying a stored trace, and the tasks of fuzz/worker-start.ts
 * (a module's trial system, a scenario's boot check, `fuzz --replay`).
 */
export const REPLAY_RUN = -2;

export function newHeartbeat(): Heartbeat {
  const h = new Int32Array(new SharedArrayBuffer(6 * Int32Array.BYTES_PER_ELEMENT));
  h[RUN] = -1;
  return h;
}

/** A step starts. The count, not the step, says it moved on: a new trace starts again at step 0. */
export function beat(h: Heartbeat, step: number): void {
  Atomics.store(h, STEP, step);
  Atomics.add(h, BEATS, 1);
}

/** A run (or replay) starts; its step is -1 until the systems are built and booted. */
export function runStarts(h: Heartbeat, runIndex: number): void {
  Atomics.store(h, SHRINKING, 0);
  Atomics.store(h, EVALUATION, 0);
  Atomics.store(h, STEP, -1);
  Atomics.store(h, RUN, runIndex);
  Atomics.add(h, BEATS, 1);
}

export function shrinkStarts(h: Heartbeat): void {
  Atomics.store(h, SHRINKING, 1);
}

/** The `evaluation`-th trace of the shrinking starts (a rerun of it can then skip the one that hung). */
export function shrinkEvaluates(h: Heartbeat, evaluation: number): void {
  Atomics.store(h, EVALUATION, evaluation);
  Atomics.store(h, STEP, -1);
  Atomics.add(h, BEATS, 1);
}

/** A user's module is being imported (true), or is imported (false). */
export function loading(h: Heartbeat, on: boolean): void {
  Atomics.store(h, LOADING, on ? 1 : 0);
  Atomics.add(h, BEATS, 1);
}

export function runEnds(h: Heartbeat): void {
  Atomics.store(h, RUN, -1);
}

/** Where a worker hung. */
export interface Stall {
  readonly runIndex: number;
  /** Hung in a trace the shrinker ran, not in the run's own sequence. */
  readonly shrinking: boolean;
  /** While shrinking: which of its traces (0, 1, …). */
  readonly evaluation: number;
  /** The step of the trace it hung in; -1: before the first, building the systems. */
  readonly step: number;
}

/**
 * Calls `onStall` once when a run's step has not moved for `timeoutMs`; an idle worker
 * (between runs, or not started yet) is never hung. Returns the function that stops watching.
 */
export function watch(h: Heartbeat, timeoutMs: number, onStall: (s: Stall) => void): () => void {
  let beats = Atomics.load(h, BEATS);
  let since = Date.now();
  const timer = setInterval(() => {
    const now = Date.now();
    const b = Atomics.load(h, BEATS);
    const runIndex = Atomics.load(h, RUN);
    if (runIndex === -1 || b !== beats) {
      beats = b;
      since = now;
      return;
    }
    if (now - since < (Atomics.load(h, LOADING) === 1 ? Math.max(timeoutMs, LOAD_TIMEOUT_MS) : timeoutMs)) return;
    clearInterval(timer);
    onStall({ runIndex, shrinking: Atomics.load(h, SHRINKING) === 1, evaluation: Atomics.load(h, EVALUATION), step: Atomics.load(h, STEP) });
  }, Math.max(10, Math.min(250, timeoutMs / 4)));
  return () => clearInterval(timer);
}
