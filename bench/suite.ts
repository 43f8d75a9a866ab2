/**
 * The bench: the figures of figures.ts (all, or those `only` names), each group set up
 * once and its sides measured in interleaved rounds (runner.ts), every figure computed
 * within those rounds. `runBench` returns the report of json.ts; `ptspec bench`
 * (cli/bench.ts) prints it and writes it.
 */
import { DEFAULT_SCENARIO } from '../spec/scenario.ts';
import { FIGURES, type FigureSpec } from './figures.ts';
import type { BenchReport, Figure, Machine } from './json.ts';
import { interleave, roundRatios, stats, type CampaignDefaults, type Group, type GroupSetup, type Rounds } from './runner.ts';
import { median } from '../fuzz/stats.ts';

/** tinybench's budget per task side and round: short, so that many rounds fit in the default bench's few minutes. */
export const DEFAULT_TASK_MS = 40;

export interface BenchOptions {
  /** Substrings (any case) of figure or group names: only the figures one matches (all when absent or empty). */
  readonly only?: readonly string[];
  /** Rounds of every group (absent: each group's own). */
  readonly rounds?: number;
  readonly taskMs?: number;
  readonly campaign: CampaignDefaults;
  /** Called as each group's figures are done (progress for a long bench). */
  readonly onGroup?: (group: string, figures: readonly Figure[], ms: number) => void;
}

const matches = (needle: string, f: FigureSpec): boolean => [f.name, f.group.name].some((s) => s.toLowerCase().includes(needle.toLowerCase()));

/** The figures `only` selects, and the substrings that select none (bad usage). */
export function selectFigures(only: readonly string[] = []): { readonly figures: readonly FigureSpec[]; readonly unmatched: readonly string[] } {
  if (only.length === 0) return { figures: FIGURES, unmatched: [] };
  return { figures: FIGURES.filter((f) => only.some((s) => matches(s, f))), unmatched: only.filter((s) => !FIGURES.some((f) => matches(s, f))) };
}

/** What the rounds measured of one side: its costs per round, or why it has none. */
interface Measured {
  readonly costs: readonly number[];
  readonly error: string | null;
}

/** A figure with nothing measured, `error` saying why (or null, to be filled in). */
function unmeasured(spec: FigureSpec, error: string | null): Figure {
  return {
    name: spec.name, group: spec.group.name, kind: spec.kind, unit: spec.unit, numerator: spec.numerator, denominator: spec.denominator ?? null,
    target: spec.target, note: spec.note ?? null, values: [], min: null, median: null, numeratorMs: null, denominatorMs: null, met: null, error,
  };
}

function figureOf(spec: FigureSpec, setup: GroupSetup, sides: ReadonlyMap<string, Measured>): Figure {
  const base = unmeasured(spec, null);
  if (spec.kind === 'value') {
    const v = setup.values?.[spec.numerator];
    if (v === undefined) throw new Error(`figure ${JSON.stringify(spec.name)}: its group measures no value ${JSON.stringify(spec.numerator)}`);
    if (v === null) return { ...base, error: 'measured only with node --expose-gc (npm run bench runs it so)' };
    return { ...base, values: [v], min: v, median: v, met: metOf(spec.target, v) };
  }
  const num = sides.get(spec.numerator)!;
  const den = spec.denominator === undefined ? null : sides.get(spec.denominator)!;
  const error = [num, den].flatMap((m) => (m === null || m.error === null ? [] : [m.error])).join('; ');
  const perRound = den === null ? num.costs.map((c) => 1000 / c) : roundRatios(num.costs, den.costs);
  const s = stats(perRound);
  const costMedian = (m: Measured | null): number | null => {
    const finite = m?.costs.filter((c) => Number.isFinite(c)) ?? [];
    return finite.length === 0 ? null : median(finite);
  };
  return {
    ...base,
    values: s?.values ?? [],
    min: s?.min ?? null,
    median: s?.median ?? null,
    numeratorMs: costMedian(num),
    denominatorMs: costMedian(den),
    met: s === null ? null : metOf(spec.target, s.median),
    error: error === '' ? null : error,
  };
}

function metOf(target: FigureSpec['target'], value: number): boolean | null {
  if (target === null) return null;
  return target.direction === 'at most' ? value <= target.value : value >= target.value;
}

/** One group: set up, its needed sides measured in rounds, its figures computed. A setup that throws fails every figure of the group. */
async function runGroup(group: Group, specs: readonly FigureSpec[], opts: BenchOptions, machines: Machine[]): Promise<Figure[]> {
  let setup: GroupSetup;
  try {
    setup = await group.setup(opts.campaign);
  } catch (e) {
    const error = `the group could not be set up: ${e instanceof Error ? e.message : String(e)}`;
    return specs.map((s) => unmeasured(s, error));
  }
  machines.push(...(setup.machines ?? []));
  const need = new Set(specs.filter((s) => s.kind !== 'value').flatMap((s) => [s.numerator, ...(s.denominator === undefined ? [] : [s.denominator])]));
  const sides = setup.sides.filter((s) => s.labels.some((l) => need.has(l)));
  for (const label of need) if (!sides.some((s) => s.labels.includes(label))) throw new Error(`group ${JSON.stringify(group.name)} has no side ${JSON.stringify(label)}`);
  const rounds: Rounds = await interleave(sides, opts.rounds ?? group.rounds, { taskMs: opts.taskMs ?? DEFAULT_TASK_MS }, group.warmup === true);
  const measured = new Map([...rounds.costs].map(([label, costs]) => [label, { costs, error: rounds.errors.get(label) ?? null }]));
  return specs.map((s) => figureOf(s, setup, measured));
}

/** Runs the selected figures, group by group in the order of figures.ts. */
export async function runBench(opts: BenchOptions): Promise<BenchReport> {
  const { figures } = selectFigures(opts.only);
  const groups = [...new Set(figures.map((f) => f.group))];
  const machines: Machine[] = [];
  const byName = new Map<string, Figure>();
  for (const group of groups) {
    const t0 = performance.now();
    const done = await runGroup(group, figures.filter((f) => f.group === group), opts, machines);
    for (const f of done) byName.set(f.name, f);
    opts.onGroup?.(group.name, done, performance.now() - t0);
  }
  return {
    name: 'ptspec bench',
    scenario: DEFAULT_SCENARIO,
    taskMs: opts.taskMs ?? DEFAULT_TASK_MS,
    figures: figures.map((f) => byName.get(f.name)!),
    machines,
  };
}
