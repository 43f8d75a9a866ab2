/**
 * The invariant families of the specification document: per invariant its statement, the
 * kernel's stance, rationale and references, the definition as the spec writes it, what
 * was found breaking it (mutants, the kernel) and its machine-found counterexample.
 */
import { STRICT_POLICY } from '../spec/contracts/outcome.ts';
import { KERNEL_STANCES, type InvariantDefinition, type KernelStance } from '../spec/invariant.ts';
import { catalogueByFamily } from '../spec/invariants/index.ts';
import { OPERATIONS, OPS } from '../spec/operations.ts';
import { CACHE_INVARIANTS, CHANGES_CACHES } from '../fuzz/check.ts';
import { code, plain, type Block, type Inline, type Section } from './doc.ts';
import { exampleBlocks, findingLink, type SpecExamplesView } from './spec-examples.ts';
import { mutantLink, operationLink, termLink } from './spec-links.ts';
import { holdsSource, invariantTerms, termsUsed } from './source-text.ts';

export const STANCE_TEXT: Readonly<Record<KernelStance, string>> = {
  guarantees: 'holds by construction of the kernel\'s code (or of the hardware format)',
  enforces: 'the kernel refuses or silently fixes up requests that would break it',
  warns: 'the kernel only reports a break (a WARN or a boot-time scan)',
  'strict-only': 'the kernel does not hold it; only ptspec\'s strict profile does',
};

export const invariantAnchor = (id: string): string => id.toLowerCase();
export const familyAnchor = (family: string): string => `family-${family.toLowerCase()}`;
export const invariantLink = (inv: Pick<InvariantDefinition, 'id' | 'name'>): Inline => `[${inv.id} ${code(inv.name)}](#${invariantAnchor(inv.id)})`;

/** The stance legend, for the introduction. */
export function stanceLegend(): Block {
  return { kind: 'list', items: KERNEL_STANCES.map((s) => `**${s}**: ${plain(STANCE_TEXT[s])}.`) };
}

/** What the strict profile does about an invariant: refuse a breaking operation, or hold it by construction. */
function strictText(inv: InvariantDefinition): Inline {
  const at = STRICT_POLICY.findIndex((p) => p.id === inv.id);
  return at >= 0
    ? `**Strict profile:** refuses, with EPERM naming it and nothing changed, every operation whose result would break it (number ${at + 1} of the ${STRICT_POLICY.length} invariants of the strict policy, which are judged in order: see [the strict policy](#strict-policy)).`
    : '**Strict profile:** holds it by construction in every reachable state; no operation is refused for it.';
}

function definitionBlocks(inv: InvariantDefinition): Block[] {
  const source = holdsSource(inv.id);
  if (source === undefined) throw new Error(`docs: no holds found for invariant ${inv.id} in spec/invariants`);
  const used = termsUsed(source, invariantTerms());
  return [
    { kind: 'code', lang: 'ts', text: source },
    ...(used.length === 0 ? [] : [{ kind: 'para', text: `Written in: ${used.map(termLink).join(', ')}.` } as const]),
  ];
}

/** Who was seen breaking it: the mutants of the hunt, the operations their counterexamples and the kernel's findings end in. */
function breakerBlocks(inv: InvariantDefinition, ex: SpecExamplesView): Block[] {
  const mutants = ex.mutantsBreaking(inv.id);
  const findings = ex.findingsOf(inv.id);
  const ops = [...new Set([...ex.counterexamplesOf(inv.id).map((c) => c.op), ...findings.map((f) => f.op)])];
  const items: Inline[] = [
    mutants.length === 0
      ? 'No built-in mutant was found breaking it.'
      : `Mutants found breaking it: ${mutants.map(mutantLink).join(', ')}.`,
    findings.length === 0
      ? 'The kernel (linux profile) was not found breaking it.'
      : `Today's kernel permits breaking it: ${findings.map(findingLink).join(', ')}.`,
  ];
  if (ops.length > 0) items.push(`Operations whose step broke it: ${ops.map(operationLink).join(', ')}.`);
  const caching = OPS.filter((op) => CHANGES_CACHES.has(op)).map(operationLink).join(', ');
  const inert = OPS.filter((op) => !OPERATIONS[op].mutating && !CHANGES_CACHES.has(op)).map(operationLink).join(', ');
  items.push(CACHE_INVARIANTS.includes(inv.id)
    ? `Can be broken by any operation that changes leaves or frames, and by ${caching}, which change only TLBs, paging-structure caches and obligations: it reads those too. ${inert} change nothing.`
    : `Can be broken only by an operation that changes leaves or frames (the operation table's mutating ones); not by ${caching}, which change only what it does not read, nor by ${inert}, which change nothing.`);
  return [{ kind: 'list', items }];
}

function invariantSection(inv: InvariantDefinition, ex: SpecExamplesView): Section {
  const counterexample = ex.shownCounterexample(inv.id);
  return {
    kind: 'section',
    id: invariantAnchor(inv.id),
    title: `${inv.id} ${inv.name}`,
    blocks: [
      { kind: 'para', text: `**${plain(inv.title)}.** ${plain(inv.statement)}` },
      { kind: 'para', text: `**Kernel: ${inv.kernel}** (${plain(STANCE_TEXT[inv.kernel])}). ${plain(inv.kernelNote)}` },
      { kind: 'para', text: strictText(inv) },
      { kind: 'para', text: plain(inv.rationale) },
      { kind: 'para', text: 'References:' },
      { kind: 'list', items: inv.references.map(plain) },
      { kind: 'section', id: `${invariantAnchor(inv.id)}-definition`, title: `${inv.id} definition`, blocks: definitionBlocks(inv) },
      { kind: 'section', id: `${invariantAnchor(inv.id)}-breakers`, title: `${inv.id} what breaks it`, blocks: breakerBlocks(inv, ex) },
      {
        kind: 'section',
        id: `${invariantAnchor(inv.id)}-counterexample`,
        title: `${inv.id} counterexample`,
        blocks: counterexample === undefined
          ? [{ kind: 'para', text: 'None: no built-in mutant breaks it in the hunt (see [how counterexamples are found](#counterexamples)).' }]
          : exampleBlocks(counterexample),
      },
    ],
  };
}

/** One top-level section per family, each opening with its table of invariants. */
export function familySections(ex: SpecExamplesView): Section[] {
  return catalogueByFamily().map((g) => ({
    kind: 'section',
    id: familyAnchor(g.family),
    title: `${g.family}: ${g.name}`,
    blocks: [
      {
        kind: 'table',
        head: ['id', 'name', 'kernel', 'counterexample'],
        rows: g.invariants.map((inv) => [
          inv.id, `[${code(inv.name)}](#${invariantAnchor(inv.id)})`, inv.kernel,
          ex.shownCounterexample(inv.id) === undefined ? 'none' : `[yes](#${invariantAnchor(inv.id)}-counterexample)`,
        ]),
      },
      ...g.invariants.map((inv) => invariantSection(inv, ex)),
    ],
  }));
}
