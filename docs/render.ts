/**
 * Markdown rendering of the invariant catalogue. Pure: the text depends only on the
 * definitions, so a test can compare it with the committed docs/invariants.md.
 */
import type { InvariantDefinition, KernelStance } from '../spec/invariant.ts';
import { DEFINITIONS, catalogueByFamily } from '../spec/invariants/index.ts';

const GENERATE_COMMAND = 'node --import tsx docs/generate.ts';

const STANCE_TEXT: Readonly<Record<KernelStance, string>> = {
  guarantees: 'holds by construction of the kernel\'s code (or of the hardware format)',
  enforces: 'the kernel refuses or silently fixes up requests that would break it',
  warns: 'the kernel only reports a break (a WARN or a boot-time scan)',
  'strict-only': 'the kernel does not hold it; only ptspec\'s strict profile does',
};

/** The heading of an invariant and the GitHub anchor it gets. */
const heading = (inv: InvariantDefinition): string => `${inv.id} ${inv.name}`;
const anchor = (inv: InvariantDefinition): string => heading(inv).toLowerCase().replace(/ /g, '-');

export function renderInvariantsMarkdown(): string {
  const out: string[] = [
    '# ptspec invariant catalogue',
    '',
    `<!-- Generated from spec/invariants by \`${GENERATE_COMMAND}\`; do not edit by hand. -->`,
    '',
    `${DEFINITIONS.length} invariants over the abstract state (spec/state.ts). Each one is defined by \`holds\` in`,
    'spec/invariants, a plain quantification over leaves, frame runs, roots and obligations, and checked fast by',
    '`checkAll` from `checker/index.ts` on the model, on the implementation through its abstraction function and',
    'on parsed kernel dumps; a property test holds every fast check to its definition. `ptspec invariants --json`',
    'prints the same catalogue for tools. A state without frame facts (a dump) satisfies vacuously every invariant',
    'that needs them.',
    '',
    'The kernel column says what today\'s Linux does about each one:',
    '',
  ];
  for (const [stance, text] of Object.entries(STANCE_TEXT)) out.push(`- **${stance}**: ${text}.`);
  const groups = catalogueByFamily();
  for (const g of groups) {
    out.push('', `**${g.family}** ${g.name}`, '', '| id | name | kernel |', '|---|---|---|');
    for (const inv of g.invariants) out.push(`| ${inv.id} | [\`${inv.name}\`](#${anchor(inv)}) | ${inv.kernel} |`);
  }
  for (const g of groups) {
    out.push('', `## ${g.family}: ${g.name}`);
    for (const inv of g.invariants) {
      out.push('', `### ${heading(inv)}`, '', `**${inv.title}.** ${inv.statement}`, '', inv.rationale, '');
      out.push(`**Kernel: ${inv.kernel}.** ${inv.kernelNote}`, '', 'References:', '');
      for (const r of inv.references) out.push(`- ${r}`);
    }
  }
  out.push('');
  return out.join('\n');
}
