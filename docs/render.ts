/**
 * Markdown rendering of the invariant catalogue. Pure: the text depends only on the
 * catalogue, so a test can compare it with the committed docs/invariants.md.
 */
import { CATALOGUE, catalogueByFamily } from '../spec/invariants/index.ts';

const GENERATE_COMMAND = 'node --import tsx docs/generate.ts';

export function renderInvariantsMarkdown(): string {
  const out: string[] = [
    '# ptspec invariant catalogue',
    '',
    `<!-- Generated from spec/invariants by \`${GENERATE_COMMAND}\`; do not edit by hand. -->`,
    '',
    `${CATALOGUE.length} invariants over the abstract state (spec/state.ts). Each one is checked by`,
    '`checkAll` from `spec/invariants/index.ts` on the model, on the implementation through its abstraction',
    'function and on parsed kernel dumps; `ptspec invariants --json` prints the same catalogue for tools.',
    'A state without frame facts (a dump) satisfies vacuously every invariant that needs them.',
    '',
  ];
  const groups = catalogueByFamily();
  for (const g of groups) {
    out.push(`- **${g.family}** ${g.name}: ${g.invariants.map((i) => `[${i.id}](#${i.id.toLowerCase()})`).join(', ')}`);
  }
  for (const g of groups) {
    out.push('', `## ${g.family}: ${g.name}`);
    for (const inv of g.invariants) {
      out.push('', `### ${inv.id}`, '', `**${inv.title}.** ${inv.statement}`, '', inv.rationale, '', 'References:', '');
      for (const r of inv.references) out.push(`- ${r}`);
    }
  }
  out.push('');
  return out.join('\n');
}
