/**
 * `ptspec zoo --json FILE`: each mutant's hunt and the targets' verdicts as plain data
 * (schemas/zoo.schema.json). The codec is the format's one definition: fuzz/zoo.ts builds
 * values of its type, and tools decode the file with it.
 */
import * as t from 'io-ts';
import { MUTANT_NAMES } from '../impl/mutants.ts';
import { PROFILES } from '../spec/system.ts';
import { CommandsC, described, int, nullable, num, oneOf, strictObject } from '../io/trace.ts';
import { FAILURE_KINDS } from './check.ts';

export const ZOO_STATUSES = ['caught', 'not-caught', 'crashed', 'control-fails'] as const;
export type ZooStatus = (typeof ZOO_STATUSES)[number];

const ms = (what: string) => described(nullable(num), `${what}, in milliseconds (null when nothing was caught)`);
const length = (what: string) => described(nullable(int), `${what} (null when nothing was caught)`);

export const ZooEntryC = strictObject('one mutant of the zoo', {
  mutant: oneOf(`a mutant (${MUTANT_NAMES.join(' | ')})`, MUTANT_NAMES),
  scenario: described(t.string, 'the scenario it was fuzzed on (fuzz/mutant-setup.ts: some mutants boot one of their own)'),
  profile: oneOf(`a profile (${PROFILES.join(' | ')})`, PROFILES),
  seed: described(int, "the mutant's own seed, derived from the zoo's seed and its name: run i has the seed runSeed(seed, i)"),
  status: described(oneOf(`a status (${ZOO_STATUSES.join(' | ')})`, ZOO_STATUSES),
    'caught: by a result, postcondition, refinement, invariant or table check, and the unmutated impl passes the shrunk trace; crashed: by an exception, hang or checker disagreement; control-fails: the unmutated impl fails the shrunk trace too'),
  detectMs: ms('wall time from the first sequence to the end of the first failing one, before shrinking'),
  commands: described(int, 'commands run: every sequence before the failing one, and the failing one up to its failing step (all that ran when nothing was caught)'),
  sequences: described(int, 'sequences run, the failing one included'),
  shrinkMs: ms('wall time the shrinking took'),
  shrinkTraces: length('traces the shrinker ran'),
  unshrunkLength: length('commands of the failing sequence up to its failing step'),
  shrunkLength: length('commands of the shrunk trace'),
  kind: nullable(oneOf(`a failure kind (${FAILURE_KINDS.join(' | ')})`, FAILURE_KINDS)),
  cause: described(nullable(t.string), 'what failed (the failure key\'s cause: invariant, clause aspect, state part, outcome field or table check)'),
  headline: described(nullable(t.string), 'the shrunk failure in one line'),
  controlFailure: described(nullable(t.string), 'the unmutated impl\'s failure on the shrunk trace, in one line (null: it passes, or nothing was caught)'),
  trace: described(nullable(CommandsC), 'the shrunk trace'),
});
export type ZooEntry = t.TypeOf<typeof ZooEntryC>;

export const ZooTargetC = strictObject('a target of the zoo', {
  target: t.string,
  met: t.boolean,
  value: described(nullable(num), 'what was measured against the target (the median in ms, the longest shrunk trace, the mutants not caught in time); null when it cannot be measured'),
  missing: described(t.readonlyArray(t.string), 'the mutants that miss it'),
});
export type ZooTarget = t.TypeOf<typeof ZooTargetC>;

export const ZooReportC = strictObject('a zoo report', {
  seed: int,
  budgetMs: described(num, 'time budget of each mutant: no sequence starts after it'),
  selected: described(t.readonlyArray(t.string), 'the mutants asked for, in the order they run'),
  finished: described(t.boolean, 'every selected mutant ran (false: interrupted, or the file was written while the zoo ran)'),
  mutants: t.readonlyArray(ZooEntryC),
  targets: t.readonlyArray(ZooTargetC),
});
export type ZooReport = t.TypeOf<typeof ZooReportC>;
