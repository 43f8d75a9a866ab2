/**
 * `ptspec invariants [ID|NAME...]`: the catalogue, for people (ids, names and kernel
 * stances grouped by family, or the named invariants in full) or tools (--json).
 */
import type { Command } from 'commander';
import { CATALOGUE, invariantByKey } from '../checker/index.ts';
import type { InvariantDefinition } from '../spec/invariant.ts';
import { catalogueByFamily, invariantInfo } from '../spec/invariants/index.ts';
import type { Cli } from './output.ts';

function catalogueLines(): string[] {
  const width = Math.max(...CATALOGUE.map((inv) => inv.name.length));
  const lines: string[] = [];
  for (const g of catalogueByFamily()) {
    lines.push(`${g.family}  ${g.name}`);
    for (const inv of g.invariants) lines.push(`  ${inv.id.padEnd(4)} ${inv.name.padEnd(width)}  kernel ${inv.kernel}`);
  }
  lines.push(`${CATALOGUE.length} invariants`);
  return lines;
}

function fullLines(inv: InvariantDefinition): string[] {
  return [
    `${inv.id} ${inv.name}: ${inv.title}`,
    `  statement: ${inv.statement}`,
    `  kernel: ${inv.kernel}: ${inv.kernelNote}`,
    `  rationale: ${inv.rationale}`,
    ...inv.references.map((r) => `  see: ${r}`),
  ];
}

export function register(program: Command, cli: Cli): void {
  program
    .command('invariants')
    .description('list the invariant catalogue (id, name, kernel stance, by family), or the named invariants in full; --json for tools')
    .argument('[ids...]', 'invariant ids or names (e.g. P2 page_table_frames_mapped_only_by_their_direct_map_page): print these in full')
    .option('--json', 'id, name, family, title, statement, rationale, references and kernel stance of every (or every named) invariant')
    .action((ids: string[], opts: { json?: boolean }) => {
      const unknown = ids.filter((id) => invariantByKey(id) === undefined);
      if (unknown.length > 0) {
        cli.stderr.write(`unknown invariant ${unknown.join(', ')}; give an id (${CATALOGUE.map((i) => i.id).join(' ')}) or a name (ptspec invariants lists them)\n`);
        cli.exitCode = 2;
        return;
      }
      const chosen = ids.length === 0 ? CATALOGUE : ids.map((id) => invariantByKey(id)!);
      const lines = opts.json ? [JSON.stringify(chosen.map(invariantInfo), null, 2)] : ids.length === 0 ? catalogueLines() : chosen.flatMap(fullLines);
      cli.stdout.write(lines.map((l) => `${l}\n`).join(''));
      cli.exitCode = 0;
    });
}
