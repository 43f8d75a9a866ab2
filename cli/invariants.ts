/**
 * `ptspec invariants [ID...]`: the catalogue, for people (ids and titles grouped by
 * family, or the named invariants in full) or tools (--json).
 */
import type { Command } from 'commander';
import type { Invariant } from '../spec/invariant.ts';
import { CATALOGUE, catalogueByFamily, invariantById, invariantInfo } from '../spec/invariants/index.ts';

function catalogueLines(): string[] {
  const lines: string[] = [];
  for (const g of catalogueByFamily()) {
    lines.push(`${g.family}  ${g.name}`);
    for (const inv of g.invariants) lines.push(`  ${inv.id.padEnd(4)} ${inv.title}`);
  }
  lines.push(`${CATALOGUE.length} invariants`);
  return lines;
}

function fullLines(inv: Invariant): string[] {
  return [`${inv.id} ${inv.title}`, `  statement: ${inv.statement}`, `  rationale: ${inv.rationale}`, ...inv.references.map((r) => `  see: ${r}`)];
}

export function register(program: Command): void {
  program
    .command('invariants')
    .description('list the invariant catalogue (id, family, title), or the named invariants in full; --json for tools')
    .argument('[ids...]', 'invariant ids (e.g. P2 S12): print these in full')
    .option('--json', 'id, family, title, statement, rationale and references of every (or every named) invariant')
    .action((ids: string[], opts: { json?: boolean }) => {
      const unknown = ids.filter((id) => invariantById(id) === undefined);
      if (unknown.length > 0) {
        console.error(`unknown invariant ${unknown.join(', ')}; ids are ${CATALOGUE.map((i) => i.id).join(' ')}`);
        process.exitCode = 2;
        return;
      }
      const chosen = ids.length === 0 ? CATALOGUE : ids.map((id) => invariantById(id)!);
      if (opts.json) console.log(JSON.stringify(chosen.map(invariantInfo), null, 2));
      else if (ids.length === 0) for (const line of catalogueLines()) console.log(line);
      else for (const inv of chosen) for (const line of fullLines(inv)) console.log(line);
      process.exitCode = 0;
    });
}
