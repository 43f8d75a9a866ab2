/**
 * The summary file a campaign leaves in its failure directory: its `--json` summary
 * (coverage, runs, failures), so `ptspec merge` can add up the coverage of shards that
 * ran on different machines, as it adds up their failure files. One file per target,
 * scenario, seed and shard in `summaries/` (a subdirectory, so the failure database,
 * which reads the directory's own `*.json`, never takes it for a broken failure file);
 * written atomically like the failure files, so a merge never reads half of one.
 */
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseJson, type Decoded } from '../io/trace.ts';
import { fileNameOf, writeAtomic } from '../fuzz/failure-db.ts';
import { SummaryC, type Summary } from './fuzz-summary.ts';

export const SUMMARY_DIR = 'summaries';

/** Where the summary of this campaign goes: a rerun of the same seed and shard replaces its own file only. */
export function summaryFileOf(dir: string, s: Summary): string {
  const shard = s.shard.replace('/', '-of-');
  return join(dir, SUMMARY_DIR, fileNameOf(`${s.target}--${s.scenario}--seed-${s.seed}--shard-${shard}`));
}

export function writeSummaryFile(dir: string, s: Summary): string {
  const file = summaryFileOf(dir, s);
  mkdirSync(join(dir, SUMMARY_DIR), { recursive: true });
  writeAtomic(file, `${JSON.stringify(s, null, 2)}\n`);
  return file;
}

export interface SummaryFiles {
  readonly summaries: readonly { readonly file: string; readonly summary: Summary }[];
  readonly broken: readonly { readonly file: string; readonly errors: readonly string[] }[];
}

/** The summaries in a failure directory (none when it has no `summaries/`), and the files that do not decode. */
export function readSummaryFiles(dir: string): SummaryFiles {
  const sub = join(dir, SUMMARY_DIR);
  let names: string[];
  try {
    names = readdirSync(sub).filter((n) => n.endsWith('.json')).sort();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { summaries: [], broken: [] };
    throw e;
  }
  const summaries: { file: string; summary: Summary }[] = [];
  const broken: { file: string; errors: readonly string[] }[] = [];
  for (const name of names) {
    const file = join(sub, name);
    let r: Decoded<Summary>;
    try {
      r = parseJson(SummaryC, readFileSync(file, 'utf8'));
    } catch (e) {
      r = { ok: false, errors: [`cannot read: ${(e as Error).message}`] };
    }
    if (r.ok) summaries.push({ file, summary: r.value });
    else broken.push({ file, errors: r.errors });
  }
  return { summaries, broken };
}
