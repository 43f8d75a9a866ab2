/**
 * The operations of the specification document: per operation its place in the operation
 * table (the kernel functions it stands for, its fields, capability and outcomes), its
 * contract (preconditions in check order, postcondition, what the linux profile does
 * otherwise, the sources read) and the clauses of its executable postcondition, then the
 * rules every contract shares. The contracts' texts are written in the document's inline
 * subset (docs/doc.ts) and go in as they are; the table's and the relation's are escaped.
 */
import type { Op } from '../spec/commands.ts';
import { CONTRACTS, CONTRACT_RULES } from '../spec/contracts/index.ts';
import { POLICY_ARG, STRICT_POLICY } from '../spec/contracts/outcome.ts';
import { POSTCONDITIONS } from '../spec/contracts/post/index.ts';
import { OPERATIONS, OPS } from '../spec/operations.ts';
import { code, plain, type Block, type Section } from './doc.ts';
import { invariantLink } from './spec-invariants.ts';
import { DEFINITIONS } from '../spec/invariants/index.ts';
import { operationAnchor, operationLink } from './spec-links.ts';

const CAPABILITY_TEXT = {
  core: 'core (every system)',
  isolation: 'isolation (KPTI, the LDT remap, ASI, processes)',
  clients: 'clients (vmalloc, kmap_local, the mermap, the unmapped pool, the walkers, hotplug)',
} as const;

/** The clauses every relation shares (relation.ts contractClauses): listed once, in the rules, not per operation. */
const SHARED_CLAUSES = new Set(['einval', 'outcome', 'eperm', 'enomem', 'refusal', 'frame']);
const aspectOf = (clauseId: string): string => clauseId.slice(clauseId.indexOf('.') + 1);

function operationSection(op: Op): Section {
  const entry = OPERATIONS[op];
  const contract = CONTRACTS[op];
  const post = POSTCONDITIONS[op];
  const fields = Object.entries(entry.fields).map(([f, kind]) => `${code(f)} (${kind})`);
  const facts: Block = {
    kind: 'list',
    items: [
      `**Kernel:** ${plain(entry.kernel)}.`,
      `**Capability:** ${CAPABILITY_TEXT[entry.capability]}${entry.alsoIsolation === true ? ', on processes (isolation too)' : ''}; ${entry.mutating ? 'can change leaves or frames' : 'changes only TLBs, paging-structure caches, obligations and pending tables'}.`,
      `**Fields:** ${fields.length === 0 ? 'none' : fields.join(', ')}.`,
      `**Outcomes:** ${entry.outcomes.map(code).join(', ')}${op in POLICY_ARG ? `; an EPERM names ${code(POLICY_ARG[op as keyof typeof POLICY_ARG])}` : ''}.`,
    ],
  };
  const own = post.clauses.filter((c) => !SHARED_CLAUSES.has(aspectOf(c.id)));
  const blocks: Block[] = [
    { kind: 'code', lang: 'text', text: contract.signature },
    { kind: 'para', text: contract.summary },
    facts,
    { kind: 'para', text: '**Preconditions**, in the order they are checked (the first that fails is the result):' },
    {
      kind: 'table',
      head: ['errno', 'names', 'when', 'profile'],
      rows: contract.preconditions.map((p) => [code(p.errno), p.arg === undefined ? '' : code(p.arg), p.when, p.profile ?? 'both']),
    },
    { kind: 'para', text: '**Postcondition:**' },
    ...contract.post.map((p): Block => ({ kind: 'para', text: p })),
    { kind: 'para', text: '**The linux profile** (today\'s kernel):' },
    ...(contract.linux.length === 0
      ? [{ kind: 'para', text: 'The same as strict.' } as const]
      : contract.linux.map((p): Block => ({ kind: 'para', text: p }))),
    {
      kind: 'para',
      text: `**The relation** (${code(`spec/contracts/post`)}, checked after every step of every campaign) holds the step to these clauses besides the [shared ones](#contract-rules):`,
    },
    { kind: 'table', head: ['clause', 'sentence'], rows: own.map((c) => [code(c.id), plain(c.sentence)]) },
  ];
  // The relation's own note on what it leaves to the prose (an effect it cannot compute).
  const note = post.contract.indexOf(' (');
  if (note > 0) blocks.push({ kind: 'para', text: `Not checked by the relation: ${plain(post.contract.slice(note + 2, -1))}.` });
  blocks.push({ kind: 'para', text: 'Read from:' }, { kind: 'list', items: contract.sources });
  return { kind: 'section', id: operationAnchor(op), title: op, blocks };
}

/** The strict policy: which invariants the strict profile refuses to break, in the order they are judged. */
function strictPolicySection(): Section {
  const byId = new Map(DEFINITIONS.map((d) => [d.id, d]));
  return {
    kind: 'section',
    id: 'strict-policy',
    title: 'The strict policy',
    blocks: [
      {
        kind: 'para',
        text: 'A mutating operation whose result would break one of these fails with EPERM naming the first of them, in this order, that the result breaks, and changes nothing. Every other invariant holds in every reachable state by construction, not by refusal.',
      },
      { kind: 'list', ordered: true, items: STRICT_POLICY.map((p) => invariantLink(byId.get(p.id)!)) },
    ],
  };
}

export function operationsSection(): Section {
  return {
    kind: 'section',
    id: 'operations',
    title: 'Operations',
    blocks: [
      {
        kind: 'para',
        text: `The ${OPS.length} operations of the operation table (${code('spec/operations.ts')}), each with its contract (${code('spec/contracts')}). Model and impl share only the argument validators; every other decision each makes on its own, and the fuzzer holds both to the relation after every step.`,
      },
      { kind: 'table', head: ['operation', 'kernel', 'outcomes'], rows: OPS.map((op) => [operationLink(op), plain(OPERATIONS[op].kernel), OPERATIONS[op].outcomes.join(' ')]) },
      {
        kind: 'section',
        id: 'contract-rules',
        title: 'Rules every contract shares',
        blocks: CONTRACT_RULES.map((r): Section => ({
          kind: 'section', id: `rule-${r.id}`, title: r.title, blocks: r.paragraphs.map((p): Block => ({ kind: 'para', text: p })),
        })),
      },
      strictPolicySection(),
      ...OPS.map(operationSection),
    ],
  };
}
