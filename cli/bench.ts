/**
 * `ptspec bench [--json FILE] [--only SUBSTRING ...] [--rounds N]`: the figures of
 * bench/figures.ts measured in interleaved rounds (bench/runner.ts), printed as one table
 * (figure, min, median, target, met) with the booted machines beside it; `--json FILE`
 * also writes the report (bench/json.ts, schemas/bench.schema.json) atomically. A missed
 * target is a result, not an error: exit 0 whenever the bench ran, 2 for bad usage.
 */
import { statSync } from 'node:fs';
import { dirname } from 'node:path';
import { Option, type Command } from 'commander';
import { writeAtomic } from '../fuzz/failure-db.ts';
import { DEFAULT_SHRINK_BUDGET } from '../fuzz/campaign-run.ts';
import { FIGURES } from '../bench/figures.ts';
import type { BenchReport, Figure } from '../bench/json.ts';
import { runBench, selectFigures } from '../bench/suite.ts';
import { DEFAULT_COMMAND_TIMEOUT_MS, DEFAULT_FULL_CHECK_EVERY, DEFAULT_MAX_COMMANDS, intParser } from './options.ts';
import { printable, type Cli } from './output.ts';
import { examples } from './help.ts';

interface BenchOpts {
  readonly json?: string;
  readonly only?: readonly string[];
  readonly rounds?: number;
}

function usageError(cli: Cli, message: string): void {
  cli.stderr.write(`error: ${printable(message)}\n`);
  cli.exitCode = 2;
}

const grouped = (n: number, digits: number): string => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

/** A figure's number in its unit: ratios to two decimals (one past 100), rates and bytes whole. */
function valueText(v: number | null, unit: string): string {
  if (v === null) return '-';
  return unit === 'x' ? `${grouped(v, v >= 100 ? 1 : 2)}x` : grouped(v, 0);
}

function targetText(f: Figure): string {
  return f.target === null ? '-' : `${f.target.direction === 'at most' ? '<=' : '>='} ${valueText(f.target.value, f.unit)}`;
}

/** Columns padded to their widest cell; the first left-aligned, the rest right-aligned. */
function table(header: readonly string[], rows: readonly (readonly string[])[]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: readonly string[]): string => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)];
}

/** The report as the terminal shows it: the figures, what kept some from being measured, the machines. */
export function reportText(report: BenchReport): string[] {
  const rows = report.figures.map((f) => [
    f.name, valueText(f.min, f.unit), valueText(f.median, f.unit), targetText(f), f.met === null ? '-' : f.met ? 'yes' : 'NO', f.unit === 'x' ? '' : f.unit,
  ]);
  const lines = [`${report.name}: ${report.scenario} unless a figure names another machine; ratios and rates per round, sides interleaved`, '',
    ...table(['figure', 'min', 'median', 'target', 'met', 'unit'], rows)];
  const notes = report.figures.filter((f) => f.note !== null || f.error !== null);
  if (notes.length > 0) lines.push('', ...notes.flatMap((f) => [...(f.note === null ? [] : [`${f.name}: ${f.note}`]), ...(f.error === null ? [] : [`${f.name}: not measured: ${f.error}`])]));
  if (report.machines.length > 0) {
    lines.push('', ...table(['machine', 'leaves', 'table pages', 'mapped GiB', 'model boot ms', 'impl boot ms', 'impl MB', 'impl KB per table page'], report.machines.map((m) => [
      m.scenario, grouped(m.leaves, 0), grouped(m.tablePages, 0), grouped(m.mappedGiB, 1), grouped(m.bootMs.model, 0), grouped(m.bootMs.impl, 0),
      m.implBytes === null ? '-' : grouped(m.implBytes / 1e6, 1), m.implBytesPerTablePage === null ? '-' : grouped(m.implBytesPerTablePage / 1024, 1),
    ])));
  }
  const met = report.figures.filter((f) => f.met === true).length;
  const targets = report.figures.filter((f) => f.target !== null).length;
  lines.push('', `${met} of ${targets} targets met (the median against the target); ${report.figures.filter((f) => f.error !== null).length} figures not measured`);
  return lines;
}

/** Why `file` cannot take the report, or null: checked before a bench of minutes, not after. */
function jsonFileProblem(file: string): string | null {
  try {
    if (statSync(file, { throwIfNoEntry: false })?.isDirectory() === true) return `--json ${file} is a directory`;
    const dir = dirname(file);
    if (statSync(dir, { throwIfNoEntry: false })?.isDirectory() !== true) return `--json ${file}: the directory ${dir} does not exist`;
  } catch (e) {
    return `--json ${file}: ${(e as Error).message}`;
  }
  return null;
}

export function register(program: Command, cli: Cli): void {
  program
    .command('bench')
    .description('measure every figure of the performance targets (ratios of interleaved sides, min and median over rounds) and print them against their targets')
    .addOption(new Option('--json <file>', 'also write the report as JSON to this file (schemas/bench.schema.json)'))
    .addOption(new Option('--only <substring...>', 'only the figures whose name or group contains one of these (any case)'))
    .addOption(new Option('--rounds <n>', 'rounds of every group (default: each group its own, 2 to 5)').argParser(intParser('--rounds', 1, 1000)))
    .addHelpText('after', examples([
      ['npm run bench', 'every figure, with node --expose-gc for the memory figures'],
      ['ptspec bench --only "4K map" --rounds 9', 'two figures, more rounds'],
      ['ptspec bench --json bench.json', 'the report for tools, and the table'],
    ]))
    .action(async (opts: BenchOpts) => {
      const { unmatched } = selectFigures(opts.only);
      if (unmatched.length > 0) {
        const groups = [...new Set(FIGURES.map((f) => f.group.name))];
        return usageError(cli, `--only ${unmatched.map((s) => JSON.stringify(s)).join(', ')} matches no figure or group name (the groups: ${groups.join(', ')})`);
      }
      const problem = opts.json === undefined ? null : jsonFileProblem(opts.json);
      if (problem !== null) return usageError(cli, problem);
      const report = await runBench({
        ...(opts.only === undefined ? {} : { only: opts.only }),
        ...(opts.rounds === undefined ? {} : { rounds: opts.rounds }),
        campaign: { maxCommands: DEFAULT_MAX_COMMANDS, fullCheckEvery: DEFAULT_FULL_CHECK_EVERY, shrinkBudget: DEFAULT_SHRINK_BUDGET, commandTimeoutMs: DEFAULT_COMMAND_TIMEOUT_MS },
        onGroup: (group, figures, ms) => cli.stderr.write(`bench: ${group}: ${figures.length} figure${figures.length === 1 ? '' : 's'} in ${(ms / 1000).toFixed(1)} s\n`),
      });
      if (opts.json !== undefined) writeAtomic(opts.json, `${JSON.stringify(report, null, 2)}\n`);
      cli.stdout.write(`${reportText(report).join('\n')}\n`);
      cli.exitCode = 0;
    });
}
