/**
 * The machine-found parts of the specification document, from the committed hunt data
 * (docs/data/spec-examples.json, made by fuzz/spec-examples.ts): each invariant's
 * counterexample against a mutant, what today's kernel permits (the linux-profile
 * findings), and how both were found. Only reads the data; `ptspec docs` makes it.
 */
import type { Op } from '../spec/commands.ts';
import { DEFINITIONS } from '../spec/invariants/index.ts';
import { formatCommand } from '../fuzz/format.ts';
import type { Counterexample, KernelFinding, SpecExamples } from '../fuzz/spec-examples-json.ts';
import { code, plain, type Block, type Inline, type Section } from './doc.ts';
import { invariantAnchor, invariantLink } from './spec-invariants.ts';
import { mutantLink, operationLink } from './spec-links.ts';

/** What a trace broke, where, and the tables around it: a counterexample's or a finding's common part. */
type Broken = Counterexample | KernelFinding;

/** A counterexample with the operation of its breaking step. */
export type ShownCounterexample = Counterexample & { readonly op: Op };
export type ShownFinding = KernelFinding & { readonly op: Op };

/** The document's questions about the hunt data. */
export interface SpecExamplesView {
  counterexampleCount(): number;
  shownCounterexample(id: string): ShownCounterexample | undefined;
  counterexamplesOf(id: string): readonly ShownCounterexample[];
  mutantsBreaking(id: string): readonly string[];
  invariantsBrokenBy(mutant: string): readonly string[];
  findingsOf(id: string): readonly ShownFinding[];
  findings(): readonly ShownFinding[];
  /** How the data was made: seeds and budgets, as the data records them. */
  method(): readonly Inline[];
}

export const findingAnchor = (f: Pick<ShownFinding, 'cause'>): string => `finding-${f.cause.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '')}`;
export const findingLink = (f: ShownFinding): Inline => `[${plain(f.cause)}](#${findingAnchor(f)})`;

const byId = new Map(DEFINITIONS.map((d) => [d.id, d]));

/** The trace, numbered, the breaking step marked. */
function traceText(b: Broken): string {
  return b.trace.map((c, i) => `${String(i + 1).padStart(3)}  ${formatCommand(c)}${i === b.step ? '   <- breaks it' : ''}`).join('\n');
}

function witnessItems(b: Broken): Inline[] {
  const items = b.witnesses.map((w) => plain(w.detail));
  if (b.witnessCount > b.witnesses.length) items.push(`and ${b.witnessCount - b.witnesses.length} more.`);
  return items;
}

/** The trace, the witnesses and the tables before and after the step that broke it, per root they concern. */
function brokenBlocks(b: Broken): Block[] {
  const lines = (ls: readonly string[]): string => (ls.length === 0 ? '(no entry there)' : ls.join('\n'));
  return [
    { kind: 'code', lang: 'text', text: traceText(b) },
    { kind: 'para', text: `After step ${b.step + 1}, ${invariantLink(byId.get(b.invariant)!)} fails:` },
    { kind: 'list', items: witnessItems(b) },
    ...b.pictures.flatMap((p): Block[] => [
      { kind: 'para', text: `Root ${p.root}${p.root === 0 ? ' (init_mm)' : ''} there before the step:` },
      { kind: 'code', lang: 'text', text: lines(p.before) },
      { kind: 'para', text: 'and after it:' },
      { kind: 'code', lang: 'text', text: lines(p.after) },
    ]),
  ];
}

export function exampleBlocks(c: ShownCounterexample): Block[] {
  return [
    {
      kind: 'para',
      text: `Found against mutant ${mutantLink(c.mutant)} on scenario ${code(c.scenario)} (${c.profile} profile), seed ${c.seed >>> 0}, run ${c.run}, and shrunk to ${c.trace.length} command${c.trace.length === 1 ? '' : 's'} after the boot; the unmutated impl runs the same commands without breaking it. The breaking step is ${operationLink(c.op)}.`,
    },
    ...brokenBlocks(c),
  ];
}

function findingSection(f: ShownFinding): Section {
  return {
    kind: 'section',
    id: findingAnchor(f),
    title: f.cause,
    blocks: [
      {
        kind: 'para',
        text: `${invariantLink(byId.get(f.invariant)!)}, broken by ${operationLink(f.op)}${f.operation === f.op ? '' : ` (${code(f.operation)})`}: in the kernel, ${plain(f.kernelFunction)}. Scenario ${code(f.scenario)}, seed ${f.seed >>> 0}, shrunk to ${f.trace.length} command${f.trace.length === 1 ? '' : 's'} after the boot.`,
      },
      { kind: 'para', text: plain(f.detail) },
      ...brokenBlocks(f),
    ],
  };
}

export function kernelPermitsSection(ex: SpecExamplesView): Section {
  const findings = ex.findings();
  return {
    kind: 'section',
    id: 'kernel-permits',
    title: 'What today\'s kernel permits',
    blocks: [
      {
        kind: 'para',
        text: `A fixed-seed campaign under the linux profile, which does what today's kernel does as its source reads, found the kernel letting these ${findings.length} breaks happen: each a distinct invariant, operation and region, shrunk, with the kernel function responsible. None is refused by the kernel; under the strict profile each is refused with EPERM or cannot arise.`,
      },
      {
        kind: 'table',
        head: ['finding', 'invariant', 'kernel function'],
        rows: findings.map((f) => [findingLink(f), `[${f.invariant}](#${invariantAnchor(f.invariant)})`, plain(f.kernelFunction)]),
      },
      ...findings.map(findingSection),
    ],
  };
}

export function counterexampleMethodSection(ex: SpecExamplesView): Section {
  const none = DEFINITIONS.filter((d) => ex.shownCounterexample(d.id) === undefined);
  return {
    kind: 'section',
    id: 'counterexamples',
    title: 'How the counterexamples are found',
    blocks: [
      ...ex.method().map((text): Block => ({ kind: 'para', text })),
      { kind: 'para', text: `The ${none.length} invariants no mutant was found breaking:` },
      { kind: 'list', items: none.length === 0 ? ['none'] : none.map((d) => `${invariantLink(d)} (kernel: ${d.kernel})`) },
    ],
  };
}

/** The view over the committed data. */
export function examplesView(data: SpecExamples): SpecExamplesView {
  const withOp = <T extends Broken>(b: T): T & { readonly op: Op } => ({ ...b, op: b.trace[b.step]!.op });
  const perInvariant = new Map(data.hunt.invariants.map((i) => [i.invariant, i]));
  const shown = new Map(data.hunt.invariants.flatMap((i) => (i.counterexample === undefined ? [] : [[i.invariant, withOp(i.counterexample)] as const])));
  // In catalogue order, then by cause: the kernel's breaks of one invariant side by side.
  const order = new Map(DEFINITIONS.map((d, i) => [d.id, i]));
  const findings = data.kernel.findings.map(withOp).sort((a, b) => order.get(a.invariant)! - order.get(b.invariant)! || (a.cause < b.cause ? -1 : a.cause > b.cause ? 1 : 0));
  const h = data.hunt;
  const k = data.kernel;
  return {
    counterexampleCount: () => shown.size,
    shownCounterexample: (id) => shown.get(id),
    counterexamplesOf: (id) => (shown.has(id) ? [shown.get(id)!] : []),
    mutantsBreaking: (id) => perInvariant.get(id)?.mutants ?? [],
    invariantsBrokenBy: (mutant) => h.invariants.filter((i) => (i.mutants as readonly string[]).includes(mutant)).map((i) => i.invariant),
    findingsOf: (id) => findings.filter((f) => f.invariant === id),
    findings: () => findings,
    method: () => [
      `**Against the mutants.** Every built-in mutant is run on the setup its tests catch it with (${code('fuzz/mutant-setup.ts')}: its scenario, profile and capabilities), ${h.sequencesPerMutant} generated sequences each, from seeds derived from the docs seed ${h.seed} and the mutant's name. After every command past the boot the whole catalogue is checked on the mutated impl's abstract state. A break of an invariant counts for the mutant only when the unmutated impl, run on the same commands, does not break it at that step; such a pair (mutant, invariant) is shrunk, at most ${h.shrinkTraces} traces, keeping that property. Each invariant shows the shortest shrunk trace of the mutants that break it (ties: the first mutant by name), and lists every such mutant.`,
      `**Against the kernel.** A campaign under the linux profile on scenario ${code(k.scenario)}: ${k.runs} run${k.runs === 1 ? '' : 's'} from seed ${k.seed}, sequences of up to ${k.maxCommands} commands, a full check every ${k.fullCheckEvery}. Every invariant a state breaks is a finding, keyed by the invariant, the operation and the region of the step; each is shrunk by the campaign and again, at most ${k.shrinkTraces} traces.`,
      `Both budgets are counts, not times: the same data comes out on any machine, and a test replays every stored trace to confirm it still breaks what it says. ${code('ptspec docs')} hunts again and rewrites ${code('docs/data/spec-examples.json')}.`,
    ],
  };
}
