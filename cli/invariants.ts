/**
 * `ptspec invariants [ID|NAME...]`: the catalogue, for people (ids, names and kernel
 * stances grouped by family, then the findings only `ptspec check` makes on dumps, or the
 * named entries in full) or tools (--json). Every id the command line prints resolves here.
 */
import type { Command } from 'commander';
import { CATALOGUE, invariantByKey } from '../checker/index.ts';
import type { InvariantDefinition } from '../spec/invariant.ts';
import { catalogueByFamily, invariantInfo } from '../spec/invariants/index.ts';
import { DUMP_FINDINGS, dumpFindingByKey, type DumpFindingDefinition } from '../io/ptdump/finding-catalogue.ts';
import { examples } from './help.ts';
import type { Cli } from './output.ts';

type Entry = { readonly kind: 'invariant'; readonly inv: InvariantDefinition } | { readonly kind: 'dump'; readonly finding: DumpFindingDefinition };

function entryByKey(key: string): Entry | undefined {
  const inv = invariantByKey(key);
  if (inv !== undefined) return { kind: 'invariant', inv };
  const finding = dumpFindingByKey(key);
  return finding === undefined ? undefined : { kind: 'dump', finding };
}

function catalogueLines(): string[] {
  const width = Math.max(...CATALOGUE.map((inv) => inv.name.length));
  const lines: string[] = [];
  for (const g of catalogueByFamily()) {
    lines.push(`${g.family}  ${g.name}`);
    for (const inv of g.invariants) lines.push(`  ${inv.id.padEnd(4)} ${inv.name.padEnd(width)}  kernel ${inv.kernel}`);
  }
  lines.push(`${CATALOGUE.length} invariants`, '', 'Dump findings: rules on ptdump text that only `ptspec check` holds (no abstract-state invariant says them)');
  const idWidth = Math.max(...DUMP_FINDINGS.map((f) => f.id.length));
  for (const f of DUMP_FINDINGS) lines.push(`  ${f.id.padEnd(idWidth)}  ${f.title}`);
  lines.push(`${DUMP_FINDINGS.length} dump findings`);
  return lines;
}

function fullLines(e: Entry): string[] {
  if (e.kind === 'dump') {
    const f = e.finding;
    return [
      `${f.id}: ${f.title} (a dump finding of ptspec check)`,
      `  statement: ${f.statement}`,
      `  rationale: ${f.rationale}`,
      ...f.references.map((r) => `  see: ${r}`),
    ];
  }
  const inv = e.inv;
  return [
    `${inv.id} ${inv.name}: ${inv.title}`,
    `  statement: ${inv.statement}`,
    `  kernel: ${inv.kernel}: ${inv.kernelNote}`,
    `  rationale: ${inv.rationale}`,
    ...inv.references.map((r) => `  see: ${r}`),
  ];
}

const json = (e: Entry): object => (e.kind === 'invariant' ? invariantInfo(e.inv) : { ...e.finding, checkedBy: 'ptspec check' });

export function register(program: Command, cli: Cli): void {
  program
    .command('invariants')
    .description('list the invariant catalogue (id, name, kernel stance, by family) and the dump findings of `ptspec check`, or the named ones in full; --json for tools')
    .argument('[ids...]', 'invariant ids or names, or dump finding ids (e.g. P2 page_table_frames_mapped_only_by_their_direct_map_page K-dump-usr): print these in full')
    .option('--json', 'id, name, family, title, statement, rationale, references and kernel stance of every invariant (or of the named invariants and dump findings)')
    .addHelpText('after', examples([
      ['ptspec invariants', 'the catalogue by family, then the dump findings'],
      ['ptspec invariants P2 K-dump-usr', 'one invariant and one dump finding in full'],
      ['ptspec invariants no_leaf_writable_and_executable', 'an invariant by its name'],
      ['ptspec invariants --json | jq ".[].id"', 'every invariant id, for tools'],
    ]))
    .action((ids: string[], opts: { json?: boolean }) => {
      const unknown = ids.filter((id) => entryByKey(id) === undefined);
      if (unknown.length > 0) {
        cli.stderr.write(`unknown invariant ${unknown.join(', ')}; give an id (${CATALOGUE.map((i) => i.id).join(' ')}), a name, or a dump finding id (${DUMP_FINDINGS.map((f) => f.id).join(' ')}); ptspec invariants lists them\n`);
        cli.exitCode = 2;
        return;
      }
      const chosen: Entry[] = ids.length === 0 ? CATALOGUE.map((inv) => ({ kind: 'invariant', inv })) : ids.map((id) => entryByKey(id)!);
      const lines = opts.json ? [JSON.stringify(chosen.map(json), null, 2)] : ids.length === 0 ? catalogueLines() : chosen.flatMap(fullLines);
      cli.stdout.write(lines.map((l) => `${l}\n`).join(''));
      cli.exitCode = 0;
    });
}
