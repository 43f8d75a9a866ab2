/**
 * A watchdog for operations that never return. A synchronous loop in a user's module
 * cannot be interrupted from its own thread, so campaign workers publish the step they
 * are on in shared memory (one Atomics.store and one Atomics.add a command) and the main
 * thread checks it periodically: a run whose step has not advanced within the timeout
 * is hung, and its worker is terminated from outside.
 */

/** A worker's published position: an Int32Array over a SharedArrayBuffer (slots below). */
export type Heartbeat = Int32Array;

/** The run index (-1: idle between runs), 1 while shrinking, the step about to run, and a count of steps started. */
const RUN = 0;
const SHRINKING = 1;
const STEP = 2;
const BEATS = 3;

/** The run index a worker publishes while it replays a stored trace (runs are never negative, idle is -1). */
export const REPLAY_RUN = -2;

export function newHeartbeat(): Heartbeat {
  const h = new Int32Array(new SharedArrayBuffer(4 * Int32Array.BYTES_PER_ELEMENT));
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
  Atomics.store(h, STEP, -1);
  Atomics.store(h, RUN, runIndex);
  Atomics.add(h, BEATS, 1);
}

export function shrinkStarts(h: Heartbeat): void {
  Atomics.store(h, SHRINKING, 1);
}

export function runEnds(h: Heartbeat): void {
  Atomics.store(h, RUN, -1);
}

/** Where a worker hung. */
export interface Stall {
  readonly runIndex: number;
  /** Hung in a trace the shrinker ran, not in the run's own sequence. */
  readonly shrinking: boolean;
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
    if (now - since < timeoutMs) return;
    clearInterval(timer);
    onStall({ runIndex, shrinking: Atomics.load(h, SHRINKING) === 1, step: Atomics.load(h, STEP) });
  }, Math.max(10, Math.min(250, timeoutMs / 4)));
  return () => clearInterval(timer);
}
