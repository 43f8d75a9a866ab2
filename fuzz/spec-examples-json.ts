/**
 * The machine-found examples of the specification document (`ptspec docs`) as plain data
 * (schemas/spec-examples.schema.json): per invariant of the catalogue the mutants found
 * breaking it and its shortest counterexample (fuzz/invariant-hunt.ts), and what today's
 * kernel permits, from a fixed-seed linux-profile campaign (fuzz/kernel-findings.ts). The
 * codec is the format's one definition: fuzz/spec-examples.ts builds values of its type,
 * the document and the replay test decode the committed file with it.
 */
import * as t from 'io-ts';
import { CATALOGUE } from '../checker/index.ts';
import { MUTANT_NAMES } from '../impl/mutants.ts';
import { PROFILES } from '../spec/system.ts';
import { CommandsC, WitnessC, decode, described, int, oneOf, parseJson, strictObject, type Decoded } from '../io/trace.ts';

export const SPEC_EXAMPLES_FORMAT = 'ptspec-spec-examples';
export const SPEC_EXAMPLES_VERSION = 1;

const INVARIANT_IDS = CATALOGUE.map((inv) => inv.id);
const invariantId = oneOf(`an invariant id (${INVARIANT_IDS.join(' | ')})`, INVARIANT_IDS);
const mutantName = oneOf(`a mutant (${MUTANT_NAMES.join(' | ')})`, MUTANT_NAMES);
const profile = oneOf(`a profile (${PROFILES.join(' | ')})`, PROFILES);
const lines = (when: string) => described(t.readonlyArray(t.string), `ptdump lines (io/ptdump/print.ts) of the leaves at the witness ${when}, each run under its section's marker, holes left out (empty: none there)`);

export const PictureC = strictObject('the table entries of one root around a witness', {
  root: described(int, 'the root (0 is init_mm)'),
  before: lines('before the breaking step'),
  after: lines('after the breaking step'),
});
export type Picture = t.TypeOf<typeof PictureC>;

/** What a counterexample and a kernel finding both show: the shrunk trace, the step that breaks the invariant, where, and the entries there. */
const breakFields = {
  invariant: invariantId,
  name: described(t.string, "the invariant's name"),
  scenario: described(t.string, 'the scenario the trace runs on (its boot first)'),
  profile,
  seed: described(int, 'the seed of the generated sequence the trace was shrunk from'),
  run: described(int, 'the index of that sequence among those generated from the seed of its hunt or campaign'),
  trace: described(CommandsC, 'the shrunk trace, as failure files store it'),
  step: described(int, 'the index in `trace` of the command after which the invariant is first broken'),
  witnesses: described(t.readonlyArray(WitnessC), 'the first few witnesses of the break at that step'),
  witnessCount: described(int, 'how many witnesses the check reported in all'),
  pictures: described(t.readonlyArray(PictureC), 'the table entries around the first witness, per root it concerns, before and after the step'),
};

export const CounterexampleC = strictObject('a counterexample of an invariant', {
  ...breakFields,
  mutant: mutantName,
  unshrunkLength: described(int, 'commands of the generated sequence up to its breaking step, before shrinking'),
});
export type Counterexample = t.TypeOf<typeof CounterexampleC>;

export const InvariantExamplesC = strictObject('the examples of one invariant', {
  invariant: invariantId,
  name: t.string,
  mutants: described(t.readonlyArray(mutantName), 'every mutant found breaking it where the unmutated impl does not, in MUTANT_NAMES order'),
}, {
  counterexample: described(CounterexampleC, "the shortest of those mutants' shrunk counterexamples (ties: the mutant first by name); absent when no mutant breaks it"),
});
export type InvariantExamples = t.TypeOf<typeof InvariantExamplesC>;

export const KernelFindingC = strictObject('something the kernel permits', {
  ...breakFields,
  cause: described(t.string, 'the invariant, the operation and the region of the breaking step (fuzz/check.ts Finding): what is deduplicated'),
  detail: described(t.string, 'what the kernel printed at that step, and the invariant broken'),
  operation: described(t.string, 'the breaking command as it prints: its label (spec/operations.ts), else its op'),
  kernelFunction: described(t.string, 'the kernel function responsible: the label when the operation table\'s `kernel` field names it (`vunmap_range_noflush`), else that field'),
  kernelFunctionFrom: described(oneOf('label | kernel', ['label', 'kernel'] as const), 'which of the two `kernelFunction` is'),
});
export type KernelFinding = t.TypeOf<typeof KernelFindingC>;

export const InvariantHuntC = strictObject('the invariant hunt', {
  seed: described(int, "the docs seed: mutant M's sequences have the seeds runSeed(mutantSeed(seed, M), i)"),
  sequencesPerMutant: described(int, 'sequences generated per mutant (fuzz/mutant-setup.ts: its scenario, profile and capabilities)'),
  shrinkTraces: described(int, 'traces the shrinker may run per (mutant, invariant) pair'),
  invariants: described(t.readonlyArray(InvariantExamplesC), 'every invariant of the catalogue, in catalogue order'),
  unbroken: described(t.readonlyArray(invariantId), 'the invariants no mutant was found breaking'),
});
export type InvariantHunt = t.TypeOf<typeof InvariantHuntC>;

export const KernelCampaignC = strictObject('the kernel-findings campaign', {
  scenario: t.string,
  profile,
  seed: described(int, "the campaign seed: run i's sequence has the seed runSeed(seed, i)"),
  runs: described(int, 'runs of the campaign'),
  maxCommands: described(int, 'the longest generated sequence'),
  fullCheckEvery: described(int, 'the full-check period of every trace'),
  shrinkTraces: described(int, 'traces the second shrink of each finding may run, after the campaign\'s own'),
  findings: described(t.readonlyArray(KernelFindingC), 'one per distinct cause, in the order the runs found them'),
});
export type KernelCampaign = t.TypeOf<typeof KernelCampaignC>;

export const SpecExamplesC = strictObject('the spec examples', {
  format: t.literal(SPEC_EXAMPLES_FORMAT),
  version: t.literal(SPEC_EXAMPLES_VERSION),
  hunt: InvariantHuntC,
  kernel: KernelCampaignC,
});
export type SpecExamples = t.TypeOf<typeof SpecExamplesC>;

/** Parse and decode the committed data (docs/data/spec-examples.json). */
export function parseSpecExamples(text: string): Decoded<SpecExamples> {
  return parseJson(SpecExamplesC, text);
}

/**
 * The data as the repo keeps it: in the codec's key order (a witness straight from a check
 * has its own), pretty-printed, but each command on one line of its own, so a new hunt's
 * diff reads command by command.
 */
export function formatSpecExamples(data: SpecExamples): string {
  const decoded = decode(SpecExamplesC, JSON.parse(JSON.stringify(data)));
  if (!decoded.ok) throw new Error(`spec examples do not fit their codec: ${decoded.errors.join('; ')}`);
  return `${JSON.stringify(decoded.value, (key, value: unknown) => (key === 'trace' ? (value as readonly unknown[]).map((c) => JSON.stringify(c)) : value), 2).replace(/"(\{(?:[^"\\]|\\.)*\})"/g, (_, c: string) => JSON.parse(`"${c}"`) as string)}\n`;
}
