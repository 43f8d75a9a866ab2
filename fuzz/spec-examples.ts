/**
 * The machine-found data of the specification document (`ptspec docs`, issue 16): per
 * invariant the mutants that break it and its shortest counterexample
 * (fuzz/invariant-hunt.ts), and what today's kernel permits (fuzz/kernel-findings.ts),
 * from one fixed docs seed and budgets that are counts, so the same data comes out on any
 * machine. Pure apart from CPU time: the caller writes the file (its codec is
 * fuzz/spec-examples-json.ts), and the test suite replays every stored example with
 * `recheckExample`.
 */
import { MUTANT_NAMES } from '../impl/mutants.ts';
import { huntInvariants, recheckCounterexample, type HuntBudget } from './invariant-hunt.ts';
import { MUTANT_SHRINK_BUDGET } from './mutant-setup.ts';
import { kernelFindings, recheckFinding, type FindingsBudget } from './kernel-findings.ts';
import { SPEC_EXAMPLES_FORMAT, SPEC_EXAMPLES_VERSION, type Counterexample, type KernelFinding, type SpecExamples } from './spec-examples-json.ts';

/** The docs seed: every mutant's sequences derive from it (zoo.ts mutantSeed), and so does the kernel campaign's. */
export const DOCS_SEED = 0xd0c5;

/**
 * The budgets, as counts. Hunt: sequences per mutant and profile (each profile's first
 * 150; the strict hunt alone found every break of its first 300 within 200), and per
 * (mutant, invariant) pair the traces a mutant's failure may shrink with in the zoo.
 * Kernel: the campaign's runs, for a readable number of distinct findings (27 from the
 * docs seed's first three), and the traces of each finding's second shrink. The whole
 * takes about 5 minutes on one core (4 min 44 s measured, the kernel campaign 6 s of it).
 */
export const DOCS_HUNT_BUDGET: HuntBudget = { sequences: 150, shrinkTraces: MUTANT_SHRINK_BUDGET };
export const DOCS_FINDINGS_BUDGET: FindingsBudget = { runs: 3, shrinkTraces: 100 };

export interface SpecProgress {
  readonly phase: 'hunt' | 'kernel';
  readonly done: number;
  readonly total: number;
  /** The mutant just hunted (hunt). */
  readonly mutant?: string;
}

export async function generateSpecExamples(opts: { readonly onProgress?: (p: SpecProgress) => void } = {}): Promise<SpecExamples> {
  const hunt = await huntInvariants({
    seed: DOCS_SEED, budget: DOCS_HUNT_BUDGET, mutants: MUTANT_NAMES,
    onMutant: (mutant, profile, done, total) => opts.onProgress?.({ phase: 'hunt', done, total, mutant: `${mutant} (${profile})` }),
  });
  const kernel = await kernelFindings(DOCS_SEED, DOCS_FINDINGS_BUDGET, (done, total) => opts.onProgress?.({ phase: 'kernel', done, total }));
  return { format: SPEC_EXAMPLES_FORMAT, version: SPEC_EXAMPLES_VERSION, hunt, kernel };
}

/** Replays one stored counterexample or kernel finding: null when it still shows what it says, else what differs. */
export function recheckExample(e: Counterexample | KernelFinding): Promise<string | null> {
  return 'mutant' in e ? Promise.resolve(recheckCounterexample(e)) : recheckFinding(e);
}
