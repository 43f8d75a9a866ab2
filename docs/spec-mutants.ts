/**
 * The mutants of the specification document: every historical bug class the impl can
 * have injected (impl/mutants.ts), the kernel code it models, the setup it is hunted on,
 * and the invariants the counterexample hunt found it breaking.
 */
import { MUTANTS } from '../impl/mutants.ts';
import { mutantSetup } from '../fuzz/mutant-setup.ts';
import { DEFINITIONS } from '../spec/invariants/index.ts';
import { code, plain, type Section } from './doc.ts';
import type { SpecExamplesView } from './spec-examples.ts';
import { invariantLink } from './spec-invariants.ts';
import { mutantAnchor } from './spec-links.ts';

export function mutantsSection(ex: SpecExamplesView): Section {
  const byId = new Map(DEFINITIONS.map((d) => [d.id, d]));
  return {
    kind: 'section',
    id: 'mutants',
    title: 'Mutants',
    blocks: [
      {
        kind: 'para',
        text: `The ${MUTANTS.length} bugs the impl can have injected (${code('ptspec fuzz --mutant NAME')}), each a class of bug the kernel had. The fuzzer must catch every one (${code('ptspec zoo')} hunts them all in CI); the counterexamples of the invariant sections come from hunting them.`,
      },
      ...MUTANTS.map((m): Section => {
        const setup = mutantSetup(m.name);
        const broken = ex.invariantsBrokenBy(m.name);
        return {
          kind: 'section',
          id: mutantAnchor(m.name),
          title: m.name,
          blocks: [
            { kind: 'para', text: plain(m.description) },
            {
              kind: 'list',
              items: [
                `**Models:** ${plain(m.reference)}.`,
                `**Caught by:** ${plain(m.caughtBy)}.`,
                `**Hunted on:** scenario ${code(setup.scenario.name)}, profile ${setup.mutated.profile ?? 'strict'}.`,
                broken.length === 0
                  ? '**Invariants broken in the hunt:** none (it is caught by a result, postcondition or refinement check first, and its states keep the catalogue).'
                  : `**Invariants broken in the hunt:** ${broken.map((id) => invariantLink(byId.get(id)!)).join(', ')}.`,
              ],
            },
          ],
        };
      }),
    ],
  };
}
