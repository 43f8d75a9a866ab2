/**
 * The spec document's machine-found examples (fuzz/spec-examples.ts) on tiny budgets: the
 * invariant hunt finds a mutant's break, shrunk, that the unmutated impl does not share
 * (and passes every check on), the replay check accepts it and rejects it tampered; the
 * same budget gives the same hunt twice; a two-run linux campaign's finding replays; and
 * the data round-trips through its codec and its schema, which reject bad input by field.
 */
import { readFileSync } from 'node:fs';
import { Ajv } from 'ajv';
import { beforeAll, describe, expect, it } from 'vitest';
import { CATALOGUE } from '../checker/index.ts';
import { decode } from '../io/trace.ts';
import { runTrace } from '../fuzz/check.ts';
import { huntMutantInvariants, huntSetup, invariantExamples } from '../fuzz/invariant-hunt.ts';
import { FINDINGS_SCENARIO, kernelFindings } from '../fuzz/kernel-findings.ts';
import { DOCS_SEED, recheckExample } from '../fuzz/spec-examples.ts';
import {
  SPEC_EXAMPLES_FORMAT, SPEC_EXAMPLES_VERSION, SpecExamplesC, type Counterexample, type KernelCampaign, type SpecExamples,
} from '../fuzz/spec-examples-json.ts';

/** A mutant whose third linux-profile sequence from the docs seed splits a writable NX huge page into executable pieces. */
const MUTANT = 'split-drops-nx';
const PROFILE = 'linux';
const BROKEN = 'P1';
const BUDGET = { sequences: 3, shrinkTraces: 100 };

describe('the invariant hunt on one mutant', () => {
  let found: Counterexample[];
  let broken: Counterexample;

  beforeAll(() => {
    found = huntMutantInvariants(MUTANT, PROFILE, DOCS_SEED, BUDGET);
    broken = found.find((e) => e.invariant === BROKEN)!;
  });

  it(`finds the break of ${BROKEN}, shrunk, at the last step of its trace`, () => {
    expect(broken, found.map((e) => e.invariant).join()).toBeDefined();
    expect(broken.mutant).toBe(MUTANT);
    expect(broken.trace.length).toBeLessThan(broken.unshrunkLength);
    expect(broken.step).toBe(broken.trace.length - 1);
    expect(broken.witnesses.length).toBeGreaterThan(0);
    expect(broken.witnessCount).toBeGreaterThanOrEqual(broken.witnesses.length);
  });

  it('pictures the entries at the first witness before and after the step, as ptdump lines', () => {
    expect(broken.pictures.length).toBeGreaterThan(0);
    const p = broken.pictures[0]!;
    expect(p.root).toBe(broken.witnesses[0]!.root);
    for (const line of [...p.before, ...p.after]) expect(line).toMatch(/^(---\[ .* \]---|0x[0-9a-f]{16}-0x[0-9a-f]{16} .*(pte|pmd|pud|p4d|pgd))$/);
    expect(p.after).not.toEqual(p.before);
  });

  it('is the mutant\'s: the unmutated impl passes every check on the trace, the mutated one does not', () => {
    const setup = huntSetup(MUTANT, PROFILE);
    expect(runTrace({ ...setup.control, commands: broken.trace }).failure).toBeNull();
    expect(runTrace({ ...setup.mutated, commands: broken.trace }).failure).not.toBeNull();
  });

  it('replays: the check accepts every example found, and rejects one with another step or first witness', async () => {
    for (const e of found) expect(await recheckExample(e), e.invariant).toBeNull();
    expect(await recheckExample({ ...broken, step: broken.step - 1 })).toMatch(new RegExp(`first breaks ${BROKEN} at step \\d+, not`));
    const edited = { ...broken.witnesses[0]!, detail: `${broken.witnesses[0]!.detail} (edited)` };
    expect(await recheckExample({ ...broken, witnesses: [edited, ...broken.witnesses.slice(1)] })).toContain('the first witness');
    expect(await recheckExample({ ...broken, trace: broken.trace.slice(0, -1) })).toContain(`no longer breaks ${BROKEN}`);
  });

  it('gives the same examples from the same seed and budget', () => {
    expect(huntMutantInvariants(MUTANT, PROFILE, DOCS_SEED, BUDGET)).toEqual(found);
  });

  it('lists per invariant the mutants that break it and the shortest counterexample, every invariant of the catalogue', () => {
    const table = invariantExamples(found);
    expect(table.map((e) => e.invariant)).toEqual(CATALOGUE.map((inv) => inv.id));
    const row = table.find((e) => e.invariant === BROKEN)!;
    expect(row.mutants).toEqual([MUTANT]);
    expect(row.counterexample).toEqual(broken);
    expect(table.filter((e) => e.counterexample === undefined).length).toBe(CATALOGUE.length - found.length);
  });
});

describe('the kernel findings of a short linux campaign', () => {
  /** Seed 12's first two runs on x86-64 (CI's linux campaign of the machine) meet one finding, quickly. */
  let campaign: KernelCampaign;

  beforeAll(async () => {
    campaign = await kernelFindings(12, { runs: 2, shrinkTraces: 20 });
  });

  it('finds what the kernel permits, one per cause, with the kernel function responsible', () => {
    expect(campaign.scenario).toBe(FINDINGS_SCENARIO);
    expect(campaign.findings.length).toBeGreaterThan(0);
    expect(new Set(campaign.findings.map((f) => f.cause)).size).toBe(campaign.findings.length);
    for (const f of campaign.findings) {
      expect(f.cause.startsWith(`${f.invariant} ${f.trace[f.step]!.op} in `)).toBe(true);
      expect(f.kernelFunction.length).toBeGreaterThan(0);
      expect(f.detail).toContain(`${f.invariant}:`);
    }
  });

  it('replays each finding, and rejects one moved to another step', async () => {
    for (const f of campaign.findings) expect(await recheckExample(f), f.cause).toBeNull();
    const f = campaign.findings[0]!;
    expect(await recheckExample({ ...f, step: f.step + 1 })).toMatch(/at step \d+, not/);
  });

  describe('the data', () => {
    let examples: SpecExamples;
    beforeAll(() => {
      const found = huntMutantInvariants(MUTANT, PROFILE, DOCS_SEED, BUDGET);
      const invariants = invariantExamples(found);
      examples = {
        format: SPEC_EXAMPLES_FORMAT, version: SPEC_EXAMPLES_VERSION,
        hunt: { seed: DOCS_SEED, sequencesPerMutant: BUDGET.sequences, shrinkTraces: BUDGET.shrinkTraces, invariants, unbroken: invariants.filter((e) => e.counterexample === undefined).map((e) => e.invariant) },
        kernel: campaign,
      };
    });

    it('round-trips through its codec, as JSON', () => {
      const r = decode(SpecExamplesC, JSON.parse(JSON.stringify(examples)));
      expect(r.ok ? r.value : r.errors).toEqual(examples);
    });

    it('is what the committed schema accepts', () => {
      const schema = JSON.parse(readFileSync(new URL('../schemas/spec-examples.schema.json', import.meta.url), 'utf8')) as object;
      const validate = new Ajv({ strict: true, allErrors: true }).compile(schema);
      expect(validate(JSON.parse(JSON.stringify(examples))) ? [] : validate.errors).toEqual([]);
    });

    it('rejects bad input with a message naming the field', () => {
      const json = JSON.parse(JSON.stringify(examples)) as { hunt: { invariants: { counterexample?: Record<string, unknown> }[] }; kernel: { findings: Record<string, unknown>[] } };
      const i = json.hunt.invariants.findIndex((e) => e.counterexample !== undefined);
      json.hunt.invariants[i]!.counterexample!['step'] = 'last';
      json.hunt.invariants[i]!.counterexample!['mutant'] = 'no-such-mutant';
      json.kernel.findings[0]!['kernelFunctionFrom'] = 'guess';
      const r = decode(SpecExamplesC, json);
      expect(r.ok).toBe(false);
      const errors = r.ok ? '' : r.errors.join('\n');
      expect(errors).toContain(`hunt.invariants[${i}].counterexample.step`);
      expect(errors).toContain(`hunt.invariants[${i}].counterexample.mutant`);
      expect(errors).toContain('kernel.findings[0].kernelFunctionFrom');
    });
  });
});
