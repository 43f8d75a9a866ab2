/**
 * `ptspec merge DIR... [--out DIR] [--json]`: the failure directories of the shards of a
 * campaign (or of any campaigns) as one. Failure files are merged by key: the counts add
 * up, first and last seen span them all, and the trace kept is the one a single campaign
 * over all their runs would have filed (campaign.ts keeps the earliest run's). The
 * campaigns' summary files (cli/summary-file.ts) are added up per target and scenario:
 * runs, commands and coverage, with what the shards together never exercised, and the
 * shards of a seed that left no summary. `--out` writes the merged failure files and the
 * summaries there, a directory that merges again like its inputs.
 * Exit 0 when no failure is stored, 1 when one is, 2 on bad usage.
 */
import { mkdirSync, realpathSync, statSync } from 'node:fs';
import { join } from 'node:path';
import * as t from 'io-ts';
import type { Command } from 'commander';
import { int, nullable, strictObject } from '../io/trace.ts';
import { catalogueSuite } from '../fuzz/defaults.ts';
import { CoverageC, mergeCoverage, type Coverage } from '../fuzz/coverage.ts';
import { GapsC, coverageGaps, type Gaps, type Scenarios } from '../fuzz/coverage-goals.ts';
import { MATRIX, campaignScenarioList, campaignScenarios } from '../fuzz/matrix.ts';
import { FailureDb, fileNameOf, writeAtomic } from '../fuzz/failure-db.ts';
import { formatFailureFile, headline, parseFailureFile, type FailureFile } from '../fuzz/failure-file.ts';
import { coverageLines, table, type Summary } from './fuzz-summary.ts';
import { usageError } from './fuzz.ts';
import { replayCommand } from './options.ts';
import { readSummaryFiles, writeSummaryFile } from './summary-file.ts';
import { examples } from './help.ts';
import { printable, type Cli } from './output.ts';

/**
 * Of two records of one key, the one whose trace the merge keeps: of one campaign (one
 * seed, so run indexes are comparable across its shards), the earlier run's, as that
 * campaign run on one machine would have filed it; else the one seen first.
 */
export function earlierRecord(a: FailureFile, b: FailureFile): FailureFile {
  if (a.campaignSeed === b.campaignSeed && a.runIndex !== b.runIndex) return a.runIndex < b.runIndex ? a : b;
  return b.firstSeen < a.firstSeen ? b : a;
}

/** One record per key: the kept trace (earlierRecord), the counts summed, seen from the first to the last time. By key. */
export function mergeFailureRecords(records: readonly FailureFile[]): FailureFile[] {
  const byKey = new Map<string, FailureFile>();
  for (const r of records) {
    const m = byKey.get(r.key);
    byKey.set(r.key, m === undefined ? r : {
      ...earlierRecord(m, r),
      count: m.count + r.count,
      firstSeen: m.firstSeen < r.firstSeen ? m.firstSeen : r.firstSeen,
      lastSeen: m.lastSeen > r.lastSeen ? m.lastSeen : r.lastSeen,
    });
  }
  return [...byKey.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

export interface MergedCampaign {
  readonly target: string;
  readonly scenario: string;
  /** The summaries added up: `SHARD of seed SEED`. */
  readonly shards: readonly string[];
  /** Shards of a seed that left no summary (a job that failed or is still running), as `i/N of seed SEED`. */
  readonly missingShards: readonly string[];
  readonly runs: number;
  readonly commands: number;
  readonly coverage: Coverage;
  readonly neverExercised: Gaps;
}

/** The summaries of one target and scenario added up. `scenario` decides what could have been exercised. */
export function mergeSummaries(summaries: readonly Summary[], invariantIds: readonly string[]): MergedCampaign[] {
  const groups = new Map<string, Summary[]>();
  for (const s of summaries) {
    const k = `${s.target}--${s.scenario}`;
    groups.set(k, [...(groups.get(k) ?? []), s]);
  }
  return [...groups.values()].map((group) => {
    const first = group[0]!;
    const coverage = mergeCoverage(...group.map((s) => s.coverage));
    return {
      target: first.target,
      scenario: first.scenario,
      shards: group.map((s) => `${s.shard} of seed ${s.seed}`),
      missingShards: missingShards(group),
      runs: group.reduce((a, s) => a + s.runs, 0),
      commands: group.reduce((a, s) => a + s.commands, 0),
      coverage,
      neverExercised: coverageGaps(coverage, summaryScenarios(first.scenario), invariantIds, first.profile),
    };
  });
}

/** What a summary's scenario names: one, or the matrix's (checked known before any merge). */
function summaryScenarios(name: string): Scenarios {
  const list = campaignScenarioList(name)!;
  return name === MATRIX ? list : list[0]!;
}

function missingShards(group: readonly Summary[]): string[] {
  const seen = new Set(group.map((s) => `${s.shard} of seed ${s.seed}`));
  const missing = new Set<string>();
  for (const s of group) {
    const count = Number(s.shard.split('/')[1]);
    for (let i = 1; i <= count; i++) if (!seen.has(`${i}/${count} of seed ${s.seed}`)) missing.add(`${i}/${count} of seed ${s.seed}`);
  }
  return [...missing];
}

export interface MergedFailure {
  readonly key: string;
  readonly count: number;
  readonly firstSeen: string;
  readonly lastSeen: string;
  readonly headline: string;
  /** The file the kept trace came from, and the merged file in `--out` (null without it). */
  readonly from: string;
  readonly file: string | null;
  readonly reproduce: string | null;
}

export interface MergeReport {
  readonly dirs: readonly string[];
  readonly campaigns: readonly MergedCampaign[];
  readonly failures: readonly MergedFailure[];
  /** Failure and summary files that do not decode: left out of the merge. */
  readonly broken: readonly { readonly file: string; readonly errors: readonly string[] }[];
  readonly out: string | null;
  readonly passed: boolean;
}

/** `ptspec merge --json` (schemas/merge.schema.json). */
export const MergeReportC = strictObject('a merge of failure directories', {
  dirs: t.readonlyArray(t.string),
  campaigns: t.readonlyArray(strictObject('the merged summaries of one target and scenario', {
    target: t.string, scenario: t.string, shards: t.readonlyArray(t.string), missingShards: t.readonlyArray(t.string),
    runs: int, commands: int, coverage: CoverageC, neverExercised: GapsC,
  })),
  failures: t.readonlyArray(strictObject('a merged failure', {
    key: t.string, count: int, firstSeen: t.string, lastSeen: t.string, headline: t.string, from: t.string, file: nullable(t.string), reproduce: nullable(t.string),
  })),
  broken: t.readonlyArray(strictObject('a file left out', { file: t.string, errors: t.readonlyArray(t.string) })),
  out: nullable(t.string),
  passed: t.boolean,
}) satisfies t.Type<MergeReport, unknown, unknown>;

interface Options {
  readonly out?: string;
  readonly json?: boolean;
}

/** The directories, each once (by real path) and each a directory; a string is what is wrong. */
function inputDirs(dirs: readonly string[]): string[] | string {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const d of dirs) {
    if (statSync(d, { throwIfNoEntry: false })?.isDirectory() !== true) return `${d} is not a failure directory (no such directory)`;
    const real = realpathSync(d);
    if (!seen.has(real)) out.push(d);
    seen.add(real);
  }
  return out;
}

function reportText(r: MergeReport): string[] {
  const lines = [`ptspec merge: ${r.dirs.length} failure director${r.dirs.length === 1 ? 'y' : 'ies'} (${r.dirs.join(', ')})`];
  for (const b of r.broken) lines.push(`Skipped unreadable file ${b.file}: ${b.errors[0] ?? ''}`);
  if (r.campaigns.length === 0) lines.push('No campaign summaries (summaries/*.json) in them: coverage is not merged.');
  for (const c of r.campaigns) {
    lines.push('', `${c.target} on scenario ${c.scenario}: ${c.shards.length} campaign summar${c.shards.length === 1 ? 'y' : 'ies'} (${c.shards.join(', ')}), `
      + `${c.runs.toLocaleString('en-US')} runs, ${c.commands.toLocaleString('en-US')} commands in all`);
    if (c.missingShards.length > 0) lines.push(`Missing (no summary): ${c.missingShards.join(', ')}`);
    lines.push(...coverageLines(c, summaryScenarios(c.scenario)));
  }
  lines.push('');
  if (r.passed) lines.push('PASSED: no failure is stored in these directories.');
  else {
    lines.push(`FAILED: ${r.failures.length} distinct failure${r.failures.length === 1 ? '' : 's'}, each once with its counts summed:`);
    lines.push(...table([['  COUNT', 'FIRST SEEN', 'LAST SEEN', 'KEY'], ...r.failures.map((f) => [`  ${f.count}`, f.firstSeen, f.lastSeen, f.key])]));
    for (const f of r.failures) {
      lines.push(`  ${f.key}: ${f.headline}`, `    trace from ${f.from}${f.file === null ? '' : `, merged into ${f.file}`}`);
      if (f.reproduce !== null) lines.push(`    Reproduce: ${f.reproduce}`);
    }
  }
  if (r.out !== null) lines.push('', `Merged failure files written to ${r.out}.`);
  return lines;
}

async function merge(cli: Cli, dirArgs: readonly string[], opts: Options): Promise<number> {
  const dirs = inputDirs(dirArgs);
  if (typeof dirs === 'string') return usageError(cli, dirs);
  const broken: { file: string; errors: readonly string[] }[] = [];
  const records: { readonly file: string; readonly record: FailureFile }[] = [];
  const summaries: Summary[] = [];
  for (const dir of dirs) {
    try {
      const loaded = new FailureDb<FailureFile>(dir, { parse: parseFailureFile, format: formatFailureFile }).load();
      const s = readSummaryFiles(dir);
      records.push(...loaded.stored);
      broken.push(...loaded.broken, ...s.broken);
      summaries.push(...s.summaries.map((x) => x.summary));
    } catch (e) {
      return usageError(cli, `${dir}: cannot read the failure directory: ${(e as Error).message}`);
    }
  }
  const unknown = summaries.find((s) => campaignScenarios(s.scenario) === undefined);
  if (unknown !== undefined) return usageError(cli, `a summary names scenario ${JSON.stringify(unknown.scenario)}, which this ptspec does not have`);
  if (opts.out !== undefined) {
    try {
      mkdirSync(opts.out, { recursive: true });
    } catch (e) {
      return usageError(cli, `--out ${opts.out}: cannot create the directory: ${(e as Error).message}`);
    }
  }
  const merged = mergeFailureRecords(records.map((r) => r.record));
  const outFile = (key: string): string | null => (opts.out === undefined ? null : join(opts.out, fileNameOf(key)));
  try {
    for (const rec of merged) {
      const file = outFile(rec.key);
      if (file !== null) writeAtomic(file, formatFailureFile(rec));
    }
    // The summaries too, so the merged directory merges again like its inputs.
    if (opts.out !== undefined) for (const summary of summaries) writeSummaryFile(opts.out, summary);
  } catch (e) {
    cli.stderr.write(`error: --out ${opts.out ?? ''}: cannot write the merged files: ${(e as Error).message}\n`);
    return 1;
  }
  const failures = merged.map((rec): MergedFailure => ({
    key: rec.key, count: rec.count, firstSeen: rec.firstSeen, lastSeen: rec.lastSeen, headline: headline(rec.failure),
    // A merged record keeps its kept input's own commands array, which names that input's file.
    from: records.find((r) => r.record.commands === rec.commands)?.file ?? '',
    file: outFile(rec.key),
    reproduce: replayCommand(rec, rec),
  }));
  const report: MergeReport = {
    dirs, campaigns: mergeSummaries(summaries, catalogueSuite.ids), failures, broken, out: opts.out ?? null, passed: failures.length === 0,
  };
  cli.stdout.write(opts.json === true ? `${JSON.stringify(report, null, 2)}\n` : `${printable(reportText(report).join('\n'))}\n`);
  return report.passed ? 0 : 1;
}

export function register(program: Command, cli: Cli): void {
  program
    .command('merge')
    .description('merge the failure directories of campaign shards: failures by key with counts summed, and their summaries\' coverage')
    .argument('<dir...>', 'failure directories (each a campaign\'s --out)')
    .option('--out <dir>', 'write the merged failure files (and the summaries) to this directory')
    .option('--json', 'machine-readable report')
    .addHelpText('after', examples([
      ['ptspec merge shard-1 shard-2 shard-3', 'what three shards found and covered together'],
      ['ptspec merge results/* --out .ptspec/failures', 'collect a CI matrix\'s artifacts into the local database'],
    ]))
    .action(async (dirs: string[], opts: Options) => {
      cli.exitCode = await merge(cli, dirs, opts);
    });
}
