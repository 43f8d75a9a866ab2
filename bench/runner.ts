/**
 * The interleaved runner. A figure compares sides measured in the same process, and a
 * machine shared with other work drifts (another process takes a core, the heap grows,
 * the CPU clocks down): measured one after the other, the side that ran in the quiet
 * moment would win. So every side of a group is measured once per round, the rounds
 * alternate the order (forward, then reversed), and each ratio is taken within a round;
 * a figure reports the min and the median of its per-round values. tinybench does the
 * warm-up and the timing of a task side; this file does only the interleaving and the
 * statistics.
 */
import { Bench } from 'tinybench';
import { median } from '../fuzz/stats.ts';
import type { Machine } from './json.ts';

/**
 * One thing measured: each call of `measure` is one round's cost of one unit of it (ms
 * per call, CPU ms per command, wall ms per run…), one cost per label: a side may report
 * the same work counted two ways (a checked trace with and without its boot).
 */
export interface Side {
  readonly labels: readonly string[];
  measure(budget: Budget): Promise<readonly number[]>;
}

export interface Budget {
  /** tinybench's time budget per task side and round, in ms (at least one iteration runs). */
  readonly taskMs: number;
}

/** A tinybench task: `fn` is timed, the hooks run around each iteration outside the timing. */
export interface TaskSpec {
  readonly fn: () => void;
  readonly beforeEach?: () => void;
  readonly afterEach?: () => void;
  /** Calls of the measured thing one `fn` makes (a batch of cheap calls): the cost is per call. */
  readonly calls?: number;
}

/**
 * A side timed by tinybench: one short Bench of this one task per round, warm-up
 * included; its cost is the median iteration (robust to a stray GC pause) over `calls`.
 */
export function taskSide(label: string, spec: TaskSpec): Side {
  // async: false, or tinybench calls fn once outside the hooks to find out whether it returns a promise.
  const hooks = {
    async: false,
    ...(spec.beforeEach === undefined ? {} : { beforeEach: spec.beforeEach }),
    ...(spec.afterEach === undefined ? {} : { afterEach: spec.afterEach }),
  };
  return {
    labels: [label],
    async measure({ taskMs }) {
      const bench = new Bench({ time: taskMs, iterations: 1, warmupTime: taskMs / 4, warmupIterations: 1, throws: true });
      bench.add(label, spec.fn, hooks);
      await bench.run();
      const r = bench.getTask(label)!.result;
      if (r.state === 'errored') throw r.error;
      if (r.state !== 'completed') throw new Error(`${label}: tinybench left the task ${r.state}`);
      return [r.latency.p50 / (spec.calls ?? 1)];
    },
  };
}

/** What the rounds of one group measured. */
export interface Rounds {
  /** Each round's order of side indexes. */
  readonly orders: readonly (readonly number[])[];
  /** Each label's cost per round: NaN for a round its side did not complete. */
  readonly costs: ReadonlyMap<string, readonly number[]>;
  /** The error that stopped a side, by each of its labels (it is not measured again). */
  readonly errors: ReadonlyMap<string, string>;
}

/** Round `r`'s order of `n` sides: forward on even rounds, reversed on odd ones. */
export function roundOrder(n: number, r: number): number[] {
  const forward = Array.from({ length: n }, (_, i) => i);
  return r % 2 === 0 ? forward : forward.reverse();
}

/**
 * Measures every side once per round for `rounds` rounds, the order alternating; with
 * `warmup`, one round first whose costs are dropped (for sides that do not warm up on
 * their own, as tinybench's do). A side that throws is reported with its error and left
 * out of the later rounds; the others go on.
 */
export async function interleave(sides: readonly Side[], rounds: number, budget: Budget, warmup = false): Promise<Rounds> {
  const costs = new Map(sides.flatMap((s) => s.labels.map((l) => [l, new Array<number>(rounds).fill(NaN)] as const)));
  const failed = new Map<number, string>();
  const orders: number[][] = [];
  for (let r = warmup ? -1 : 0; r < rounds; r++) {
    const order = roundOrder(sides.length, Math.max(r, 0));
    if (r >= 0) orders.push(order);
    for (const i of order) {
      if (failed.has(i)) continue;
      const side = sides[i]!;
      try {
        const measured = await side.measure(budget);
        if (r >= 0) side.labels.forEach((l, k) => (costs.get(l)![r] = measured[k]!));
      } catch (e) {
        failed.set(i, e instanceof Error ? e.message : String(e));
      }
    }
  }
  const errors = new Map([...failed].flatMap(([i, e]) => sides[i]!.labels.map((l) => [l, e] as const)));
  return { orders, costs, errors };
}

export interface Stats {
  readonly min: number;
  readonly median: number;
  /** The per-round values the two are of. */
  readonly values: readonly number[];
}

/** Min and median of the finite values: a round a side missed gives no value. */
export function stats(values: readonly number[]): Stats | null {
  const finite = values.filter((v) => Number.isFinite(v));
  return finite.length === 0 ? null : { min: Math.min(...finite), median: median(finite), values: finite };
}

/** The per-round ratios numerator / denominator: each within its own round. */
export function roundRatios(numerator: readonly number[], denominator: readonly number[]): number[] {
  return numerator.map((n, r) => n / denominator[r]!);
}

/** What ptspec fuzz runs with by default (cli/options.ts passes them): the checked figures generate and check as a campaign does. */
export interface CampaignDefaults {
  readonly maxCommands: number;
  readonly fullCheckEvery: number;
  readonly shrinkBudget: number;
  readonly commandTimeoutMs: number;
}

/** A group's sides, built outside any timing (booted systems, generated sequences). */
export interface GroupSetup {
  readonly sides: readonly Side[];
  /** Figures measured once rather than per round (memory), by label; null when this process cannot measure it. */
  readonly values?: Readonly<Record<string, number | null>>;
  /** The booted machines' facts, for the report's table. */
  readonly machines?: readonly Machine[];
}

/**
 * Sides measured together: every round measures each of them once (those a selected
 * figure uses a label of), so any ratio between two of them is an interleaved one.
 */
export interface Group {
  readonly name: string;
  /** Rounds when --rounds does not say: the costly groups take fewer. */
  readonly rounds: number;
  /** Its sides need an untimed round first (interleave's `warmup`): they have no warm-up of their own. */
  readonly warmup?: boolean;
  setup(campaign: CampaignDefaults): Promise<GroupSetup>;
}
