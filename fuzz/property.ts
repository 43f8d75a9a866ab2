/**
 * The fast-check property: random command sequences (fuzz/arbitraries.ts), each run by
 * the refinement checker (fuzz/check.ts). Sequences are plain `Command[]` data, so the
 * shrunk counterexample is data too: it is written to a failure file and replayed with
 * `runTrace` exactly, with no fast-check involved.
 */
import fc from 'fast-check';
import type { Command } from '../spec/commands.ts';
import { commandsArb, type CommandsArbOptions } from './arbitraries.ts';
import { runTrace, type TraceFailure, type TraceOptions } from './check.ts';
import { emptyCoverage, type Coverage } from './coverage.ts';
import { formatCommand } from './format.ts';
import { DEFAULT_SHRINK_BUDGET, shrinkFailure } from './campaign-run.ts';

export interface FuzzOptions extends Omit<TraceOptions, 'commands' | 'coverage'>, CommandsArbOptions {
  /** Coverage of the generated sequences is added here (shrinking runs are not counted). */
  readonly coverage?: Coverage;
}

/** Thrown by the property so fast-check's own message says what failed. */
export class RefinementFailure extends Error {
  constructor(readonly failure: TraceFailure) {
    super(`${failure.kind} at ${failure.phase} step ${failure.step} (${formatCommand(failure.command)}): ${failure.detail}`);
    this.name = 'RefinementFailure';
  }
}

/** The property over `Command[]`: holds when the trace has no failure. */
export function fuzzProperty(opts: FuzzOptions): fc.IPropertyWithHooks<[Command[]]> {
  const total = opts.coverage;
  let failedOnce = false;
  return fc.property(commandsArb(opts.scenario, opts), (commands) => {
    // After the first failure every run is a shrinking step: keep it out of the coverage.
    const coverage = total !== undefined && !failedOnce ? total : emptyCoverage();
    const r = runTrace({ ...opts, commands, coverage });
    if (r.failure !== null) {
      failedOnce = true;
      throw new RefinementFailure(r.failure);
    }
  });
}

export interface FuzzResult {
  readonly failed: boolean;
  /** Sequences run, up to and including the first failing one. */
  readonly numRuns: number;
  readonly seed: number;
  /** fast-check's path of the failing run: with the seed it regenerates the sequence before shrinking. */
  readonly path?: string;
  /** The shrunk failing sequence, and its failure as `runTrace` reports it. */
  readonly commands?: readonly Command[];
  readonly failure?: TraceFailure;
  /** Length of the failing sequence before shrinking, and the traces shrinking ran. */
  readonly unshrunkLength?: number;
  readonly shrinkRuns?: number;
  readonly coverage: Coverage;
}

/**
 * Runs the property with fast-check (seed, numRuns, … from `params`) up to the first
 * failure, then shrinks that sequence with the campaigns' trace-aware shrinker
 * (fuzz/campaign-run.ts: deletes runs of commands, cuts at the failing step) rather than
 * fast-check's generic one: much faster on long sequences, and the result is plain
 * commands either way.
 */
export function runFuzz(opts: FuzzOptions, params: fc.Parameters<[Command[]]>, maxShrinkRuns = DEFAULT_SHRINK_BUDGET): FuzzResult {
  const coverage = opts.coverage ?? emptyCoverage();
  const details = fc.check(fuzzProperty({ ...opts, coverage }), { ...params, endOnFailure: true });
  const seed = details.seed;
  if (!details.failed) return { failed: false, numRuns: details.numRuns, seed, coverage };
  if (details.counterexample === null || !(details.errorInstance instanceof RefinementFailure)) {
    throw new Error(`fuzz run failed outside the refinement check: ${String(details.errorInstance)}`);
  }
  const [commands] = details.counterexample;
  const first = details.errorInstance.failure;
  let shrinkRuns = 0;
  // Keep a deletion only when the trace still fails the same way (kind, and invariant).
  const failsSame = (candidate: readonly Command[]): TraceFailure | null => {
    shrinkRuns++;
    const f = runTrace({ ...opts, commands: candidate, coverage: emptyCoverage() }).failure;
    return f !== null && f.kind === first.kind && f.invariantId === first.invariantId ? f : null;
  };
  const shrunk = shrinkFailure({ commands, failure: first }, failsSame, maxShrinkRuns);
  return {
    failed: true,
    numRuns: details.numRuns,
    seed,
    ...(details.counterexamplePath === null ? {} : { path: details.counterexamplePath }),
    commands: shrunk.commands,
    failure: shrunk.failure,
    unshrunkLength: commands.length,
    shrinkRuns,
    coverage,
  };
}
