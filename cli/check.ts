/**
 * `ptspec check DUMP... [--user FILE]`: read kernel ptdump text (debugfs page_tables
 * files, dmesg dumps, grep output of either) and report, per dump, which table it is, the
 * kernel's own W+X verdict where the kernel checks that table (init_mm and its PTI user
 * copy, once per boot; none without NX), the W+X count by ptspec's rule, the structure
 * and KPTI findings and a summary (io/ptdump/analyse.ts). All inputs are one boot.
 * Exit 0 all passed, 1 something failed, 2 unreadable or corrupt input (file:line: reason).
 */
import { readFileSync } from 'node:fs';
import { Option, type Command } from 'commander';
import { checkDumps, type CheckInput } from '../io/ptdump/analyse.ts';
import { parsePtdump, type ParseOptions } from '../io/ptdump/parse.ts';
import { checkReportJson, checkReportText } from '../io/ptdump/report.ts';
import type { Cli } from './output.ts';
import { examples } from './help.ts';

interface CheckCliOptions {
  readonly user?: string;
  readonly json?: boolean;
  readonly fragment?: boolean;
  readonly strict?: boolean;
  readonly paging?: '4-level' | '5-level';
  readonly pciBios?: boolean;
  readonly nx?: boolean;
}

/** Parse one file; on failure, the `file:line: reason` lines to print. */
function load(file: string, user: boolean, opts: ParseOptions): CheckInput | string[] {
  let text: string;
  try {
    // `-` is standard input: `dmesg | ptspec check -`.
    text = readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (e) {
    return [`${file}: cannot read: ${(e as Error).message}`];
  }
  // ptdump is text: a NUL byte means a binary file was given (say so, not "no ptdump lines").
  const nul = text.indexOf('\0');
  if (nul >= 0) return [`${file}:${text.slice(0, nul).split('\n').length}: binary data (a NUL byte), not ptdump text`];
  const r = parsePtdump(text, opts);
  if (!r.ok) return r.errors.map((e) => `${file}:${e.line}: ${e.reason}`);
  if (r.value.dumps.length === 0 && !r.value.other.some((o) => o.kind === 'verdict')) {
    return [`${file}: no ptdump lines and no W+X checker lines found`];
  }
  return { file, parsed: r.value, user };
}

export function register(program: Command, cli: Cli): void {
  program
    .command('check')
    .description("check kernel page-table dumps (ptdump text): the kernel's W+X verdict where it checks the table, ptspec's W+X rule, structure and KPTI findings, a summary")
    .argument('[dumps...]', 'ptdump text files (kernel_page_tables, page_tables/*, dmesg, grep output); - reads standard input')
    .option('--user <file>', 'the PTI user copy (current_user) of the process whose kernel copy is given as DUMP')
    .option('--json', 'machine-readable report')
    .option('--fragment', 'the input is an excerpt: allow gaps between ranges (never overlaps)')
    .option('--strict', 'reject lines that are not ptdump text instead of keeping them aside')
    .addOption(new Option('--paging <mode>', '64-bit paging mode instead of detecting it from the addresses').choices(['4-level', '5-level']))
    .option('--pci-bios', '32-bit: the PCI BIOS is in use, so its W+X area is exempt as in the kernel')
    .option('--nx', 'the machine has NX (default: what the dumps show; an NX bit anywhere says so)')
    .option('--no-nx', 'the machine has no NX, so the kernel checks nothing and prints no verdict (default: a whole dump that prints no NX)')
    .addHelpText('after', examples([
      ['ptspec check /sys/kernel/debug/page_tables/kernel', "this machine's kernel tables (as root)"],
      ['ptspec check current_kernel --user current_user', 'KPTI: both copies of one process'],
      ['dmesg | ptspec check -', 'dumps and W+X verdicts in the kernel log (CONFIG_EFI_PGT_DUMP, CONFIG_DEBUG_WX)'],
      ['ptspec check --fragment --json excerpt.txt', 'a grep excerpt, machine-readable'],
      ['ptspec invariants K-dump-usr', 'what a finding id means'],
    ]))
    .action((dumps: string[], opts: CheckCliOptions) => {
      const files = [...dumps.map((file) => ({ file, user: false })), ...(opts.user === undefined ? [] : [{ file: opts.user, user: true }])];
      if (files.length === 0) {
        cli.stderr.write('ptspec check: give at least one dump file (or --user FILE)\n');
        cli.exitCode = 2;
        return;
      }
      const parseOpts: ParseOptions = {
        ...(opts.fragment ? { fragment: true } : {}),
        ...(opts.strict ? { strict: true } : {}),
        ...(opts.paging ? { paging: opts.paging } : {}),
      };
      const inputs: CheckInput[] = [];
      const errors: string[] = [];
      for (const { file, user } of files) {
        const r = load(file, user, parseOpts);
        if (Array.isArray(r)) errors.push(...r);
        else inputs.push(r);
      }
      if (errors.length > 0) {
        cli.stderr.write(`${errors.join('\n')}\n`);
        cli.exitCode = 2;
        return;
      }
      const report = checkDumps(inputs, { pciBios: opts.pciBios === true, ...(opts.nx === undefined ? {} : { nx: opts.nx }) });
      cli.stdout.write(opts.json ? `${JSON.stringify(checkReportJson(report), null, 2)}\n` : checkReportText(report));
      cli.exitCode = report.failed ? 1 : 0;
    });
}
