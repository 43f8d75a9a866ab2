/**
 * FrameCounters (impl/frames.ts) against a plain count per frame: whole-block runs of 4K
 * leaves go into the 2M blocks' counters and must come out exactly however the frames
 * leave again (a page at a time, a whole block, a 2M leaf over the same frames), so
 * `first` answers as the per-frame counts would after every step, and `mayDiffer` never
 * says no where a frame counts MAPPED more often than another kind.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EXEC, FrameCounters, MAPPED, OUTSIDE_DIRECT_MAP, WRITABLE } from '../impl/frames.ts';
import { P_EXEC, P_WRITE, protCode } from '../impl/prot.ts';
import { PAGE_KERNEL, PAGE_KERNEL_EXEC, PAGE_KERNEL_RO } from '../spec/state.ts';
import { fcParams } from './seed.ts';

const FRAMES = 2 * 262144;
const KINDS = [MAPPED, WRITABLE, EXEC, OUTSIDE_DIRECT_MAP] as const;

/** A leaf run as FrameCounters.add takes it. */
interface Run {
  readonly level: 1 | 2;
  readonly pfn: number;
  readonly n: number;
  readonly code: number;
  readonly outside: boolean;
}

const CODES = [PAGE_KERNEL, PAGE_KERNEL_RO, PAGE_KERNEL_EXEC].map(protCode);

/** Runs near the 1G edge between the two blocks, so whole and partial 2M blocks and both tiers meet. */
const runArb: fc.Arbitrary<Run> = fc.oneof(
  fc.record({ level: fc.constant(1 as const), pfn: fc.integer({ min: 262144 - 1536, max: 262144 + 1024 }), n: fc.integer({ min: 1, max: 1600 }), code: fc.constantFrom(...CODES), outside: fc.boolean() }),
  fc.record({ level: fc.constant(1 as const), pfn: fc.integer({ min: 509, max: 511 }).map((b) => b * 512), n: fc.constantFrom(512, 1024, 1536), code: fc.constantFrom(...CODES), outside: fc.boolean() }),
  fc.record({ level: fc.constant(2 as const), pfn: fc.integer({ min: 509, max: 511 }).map((b) => b * 512), n: fc.integer({ min: 1, max: 3 }), code: fc.constantFrom(...CODES), outside: fc.boolean() }),
);

/** What each kind counts of a run, per frame. */
function kindsOf(run: Run): readonly number[] {
  return [1, (run.code & P_WRITE) !== 0 ? 1 : 0, (run.code & P_EXEC) !== 0 ? 1 : 0, run.outside ? 1 : 0];
}

/** The first frame of [pfn, pfn + count) with a count, from the plain counts. */
function firstCounted(counts: Int32Array, pfn: number, count: number): number {
  for (let p = pfn; p < pfn + count; p++) if (counts[p]! > 0) return p;
  return -1;
}

/** The first frame of [pfn, pfn + count) whose counts differ between `a` and `b`, or -1. */
function firstDiffering(a: Int32Array, b: Int32Array, pfn: number, count: number): number {
  for (let p = pfn; p < pfn + count; p++) if (a[p] !== b[p]) return p;
  return -1;
}

describe('impl: frame counters', () => {
  it('answer first() as the per-frame counts do, whatever splits the frames come and go in', () => {
    fc.assert(
      fc.property(fc.array(runArb, { minLength: 1, maxLength: 12 }), fc.array(fc.nat(), { minLength: 12, maxLength: 12 }), (runs, cuts) => {
        const counters = new FrameCounters(FRAMES);
        const plain = KINDS.map(() => new Int32Array(FRAMES));
        const account = (level: 1 | 2, pfn: number, n: number, run: Run, delta: number): void => {
          counters.add(level, pfn, n, run.code, delta, run.outside, false);
          const frames = level === 2 ? n * 512 : n;
          kindsOf(run).forEach((k, i) => {
            for (let p = pfn; p < pfn + frames; p++) plain[i]![p]! += k * delta;
          });
        };
        const check = (): void => {
          for (const [i, kind] of KINDS.entries()) {
            for (const [from, count] of [[262144 - 2048, 4096], [262144 - 1, 2], [261632 + 7, 1], [262144, 600]] as const) {
              expect(counters.first(kind, from, count)).toBe(firstCounted(plain[i]!, from, count));
              // mayDiffer false: no frame of the range counts MAPPED more often than this kind.
              // (One expect per range: one per frame made this file take 100 s.)
              if (!counters.mayDiffer(kind, from, count)) expect(firstDiffering(plain[i]!, plain[0]!, from, count), `kind ${kind} in [${from}, +${count})`).toBe(-1);
            }
          }
        };
        for (const run of runs) {
          account(run.level, run.pfn, run.n, run, 1);
          check();
        }
        // Each run taken out again, in reverse, a 4K run in two pieces cut where `cuts` says.
        for (let k = runs.length - 1; k >= 0; k--) {
          const r = runs[k]!;
          if (r.level === 2) account(2, r.pfn, r.n, r, -1);
          else {
            const cut = cuts[k]! % (r.n + 1);
            if (cut > 0) account(1, r.pfn, cut, r, -1);
            if (cut < r.n) account(1, r.pfn + cut, r.n - cut, r, -1);
          }
          check();
        }
        for (const kind of KINDS) expect(counters.first(kind, 0, FRAMES)).toBe(-1);
      }),
      fcParams({ numRuns: 150 }),
    );
  });
});
