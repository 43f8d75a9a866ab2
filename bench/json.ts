/**
 * `ptspec bench --json FILE`: every figure with its per-round values, their min and
 * median, the target and whether the median meets it, and the booted machines' facts
 * (schemas/bench.schema.json). Times are compared within one run, never against a fixed
 * number of milliseconds (README.md).
 */
import * as t from 'io-ts';
import { described, int, nullable, num, oneOf, strictObject } from '../io/trace.ts';

export const FIGURE_KINDS = ['ratio', 'rate', 'value'] as const;
export const DIRECTIONS = ['at most', 'at least'] as const;

export const TargetC = strictObject('a target', {
  direction: oneOf<(typeof DIRECTIONS)[number]>('at most | at least', DIRECTIONS),
  value: num,
});
export type Target = t.TypeOf<typeof TargetC>;

export const MachineC = strictObject('a booted machine of the scale figures', {
  scenario: t.string,
  leaves: described(int, "init_mm's leaves after the boot"),
  tablePages: described(int, 'page tables in use after the boot'),
  mappedGiB: described(num, "what init_mm's leaves map, in GiB"),
  bootMs: strictObject('boot times', { model: num, impl: num }),
  implBytes: described(nullable(num), 'heap and typed-array bytes a booted impl holds (null without node --expose-gc)'),
  implBytesPerTablePage: described(nullable(num), 'implBytes over tablePages'),
});
export type Machine = t.TypeOf<typeof MachineC>;

export const FigureC = strictObject('a figure', {
  name: t.string,
  group: described(t.string, 'the sides measured together: every round measures each once, the order alternating'),
  kind: oneOf<(typeof FIGURE_KINDS)[number]>('ratio (numerator over denominator, per round) | rate (units per second of the numerator) | value (measured once)', FIGURE_KINDS),
  unit: t.string,
  numerator: t.string,
  denominator: nullable(t.string),
  values: described(t.readonlyArray(num), "the figure's value in each round that measured it"),
  min: nullable(num),
  median: nullable(num),
  numeratorMs: described(nullable(num), "the numerator's median cost of one unit (ms per call, CPU ms per command, wall ms per run)"),
  denominatorMs: described(nullable(num), "the denominator's median cost of one unit"),
  target: nullable(TargetC),
  met: described(t.union([t.boolean, t.null]), 'whether the median meets the target (null: no target, or nothing measured)'),
  note: described(nullable(t.string), 'where the target comes from, or what stands between the figure and it'),
  error: described(nullable(t.string), 'why a side could not be measured'),
});
export type Figure = t.TypeOf<typeof FigureC>;

export const BenchReportC = strictObject('a benchmark report', {
  name: t.string,
  scenario: described(t.string, 'the scenario the operation and checked figures run on'),
  taskMs: described(num, "tinybench's time budget per task side and round, in ms"),
  figures: t.readonlyArray(FigureC),
  machines: t.readonlyArray(MachineC),
});
export type BenchReport = t.TypeOf<typeof BenchReportC>;
