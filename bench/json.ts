/**
 * `npm run bench -- --json`: each task's mean time and the ratios the benchmark exists
 * for, as plain data (schemas/bench.schema.json). Times are compared within one run,
 * never against a fixed number (README.md).
 */
import * as t from 'io-ts';
import { described, int, num, strictObject } from '../io/trace.ts';

export const BenchReportC = strictObject('a benchmark report', {
  name: t.string,
  tasks: t.readonlyArray(strictObject('a benchmark task', {
    name: t.string,
    meanMs: described(num, 'mean time of one iteration, in milliseconds'),
    samples: int,
  })),
  ratios: t.readonlyArray(strictObject('a ratio of two tasks', {
    name: t.string,
    numerator: t.string,
    denominator: t.string,
    ratio: described(num, "the numerator's mean time over the denominator's"),
  })),
  machines: t.readonlyArray(strictObject('a booted machine of the scale tasks', {
    scenario: t.string,
    leaves: described(int, "init_mm's leaves after the boot"),
    tablePages: described(int, 'page tables in use after the boot'),
    bootMs: strictObject('boot times', { model: num, impl: num }),
    implBytes: described(t.union([num, t.null]), 'heap and typed-array bytes a booted impl holds (null without --expose-gc)'),
    implBytesPerTablePage: described(t.union([num, t.null]), 'implBytes over tablePages'),
  })),
});
export type BenchReport = t.TypeOf<typeof BenchReportC>;
