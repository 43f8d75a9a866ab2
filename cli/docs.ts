/**
 * `ptspec docs`: the specification document. It hunts the machine-found examples
 * (fuzz/spec-examples.ts: a counterexample per invariant against the mutants, the
 * kernel's findings under the linux profile), writes them to docs/data, and renders
 * docs/SPEC.md and the static site docs/html/ from the spec and that data.
 *
 *   --render-only  render from the committed data, no hunt (seconds, not minutes)
 *   --check        write nothing: compare what would be written with what is there;
 *                  exit 1 naming every file that differs, is missing or is left over
 *   --out DIR      the docs folder to write or check (default: this checkout's docs/)
 *
 * Exit 0 done (or up to date), 1 stale under --check, 2 bad usage or unreadable data.
 * Nothing is written before the hunt ends, so an interrupted run leaves the docs as they were.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { writeAtomic } from '../fuzz/failure-db.ts';
import { generateSpecExamples, type SpecProgress } from '../fuzz/spec-examples.ts';
import { formatSpecExamples, parseSpecExamples, type SpecExamples } from '../fuzz/spec-examples-json.ts';
import { docsFiles, EXAMPLES_FILE, SITE_DIR } from '../docs/site.ts';
import { usageError } from './fuzz.ts';
import { examples } from './help.ts';
import { printable, type Cli } from './output.ts';

interface DocsCliOptions {
  readonly renderOnly?: boolean;
  readonly check?: boolean;
  readonly out?: string;
}

const progressLine = (p: SpecProgress): string =>
  p.phase === 'hunt' ? `  hunt [${p.done}/${p.total}] ${p.mutant ?? ''}` : `  kernel campaign: run ${p.done} of ${p.total}`;

/** This checkout's docs/ folder. */
const DEFAULT_DOCS_DIR = fileURLToPath(new URL('../docs/', import.meta.url));

/** Every file under `dir`, relative to it (posix separators), or none when it does not exist. */
function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)).split('\\').join('/'))
    .sort();
}

/** The files that differ from `files` under `dir`: missing, changed, and left over in the site folder. */
function staleFiles(dir: string, files: ReadonlyMap<string, string>): string[] {
  const out: string[] = [];
  for (const [path, text] of files) {
    const at = join(dir, path);
    if (!existsSync(at)) out.push(`${path}: missing`);
    else if (readFileSync(at, 'utf8') !== text) out.push(`${path}: differs`);
  }
  for (const path of filesUnder(join(dir, SITE_DIR))) if (!files.has(`${SITE_DIR}/${path}`)) out.push(`${SITE_DIR}/${path}: not generated (left over)`);
  return out;
}

/** Writes every file atomically, then removes what the site folder holds beyond them. */
function writeFiles(dir: string, files: ReadonlyMap<string, string>): void {
  for (const [path, text] of files) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeAtomic(join(dir, path), text);
  }
  for (const path of filesUnder(join(dir, SITE_DIR))) if (!files.has(`${SITE_DIR}/${path}`)) rmSync(join(dir, SITE_DIR, path));
}

/** The committed data, or the problem with it in a sentence. */
function readExamples(dir: string): SpecExamples | string {
  const file = join(dir, EXAMPLES_FILE);
  if (!existsSync(file)) return `${file}: no such file (run ptspec docs without --render-only to hunt the examples)`;
  const r = parseSpecExamples(readFileSync(file, 'utf8'));
  return r.ok ? r.value : `${file}: ${r.errors.join('; ')}`;
}

async function docs(cli: Cli, opts: DocsCliOptions): Promise<number> {
  const dir = resolve(opts.out ?? DEFAULT_DOCS_DIR);
  if (opts.out !== undefined && !(existsSync(dir) && statSync(dir).isDirectory())) return usageError(cli, `--out ${opts.out}: no such directory`);
  let data: SpecExamples;
  if (opts.renderOnly === true) {
    const read = readExamples(dir);
    if (typeof read === 'string') return usageError(cli, read);
    data = read;
  } else {
    cli.stderr.write('ptspec docs: hunting the examples (a few minutes; Ctrl-C writes nothing)\n');
    const found = await generateSpecExamples({ onProgress: (p) => cli.stderr.write(`${printable(progressLine(p))}\n`) });
    // Rendered from the data as it will be read back, so a render-only run gives the same files.
    const read = parseSpecExamples(formatSpecExamples(found));
    if (!read.ok) throw new Error(`the hunt's data does not read back: ${read.errors.join('; ')}`);
    data = read.value;
  }
  const files = docsFiles(data);
  if (opts.renderOnly !== true) files.set(EXAMPLES_FILE, formatSpecExamples(data));
  if (opts.check === true) {
    const stale = staleFiles(dir, files);
    if (stale.length === 0) {
      cli.stdout.write(`docs: ${files.size} files up to date in ${dir}\n`);
      return 0;
    }
    cli.stdout.write(`${printable([`docs: ${stale.length} of the files in ${dir} are not what ptspec docs generates (run ptspec docs${opts.renderOnly === true ? ' --render-only' : ''}):`, ...stale.map((s) => `  ${s}`)].join('\n'))}\n`);
    return 1;
  }
  writeFiles(dir, files);
  cli.stdout.write(`docs: wrote ${files.size} files to ${dir}\n`);
  return 0;
}

export function register(program: Command, cli: Cli): void {
  program
    .command('docs')
    .description('generate the specification document (docs/SPEC.md and the static site docs/html) with machine-found counterexamples and what the kernel permits')
    .option('--render-only', 'render from the committed examples (docs/data/spec-examples.json) without hunting them again')
    .option('--check', 'write nothing; exit 1 naming every file that is not what would be written')
    .option('--out <dir>', 'the docs folder to write or check (default: this checkout\'s docs/)')
    .addHelpText('after', examples([
      ['ptspec docs', 'hunt the examples (a few minutes), then write everything'],
      ['ptspec docs --render-only', 'render again from the committed examples'],
      ['ptspec docs --check', 'is the committed document what the spec and a fresh hunt give?'],
    ]))
    .action(async (opts: DocsCliOptions) => {
      cli.exitCode = await docs(cli, opts);
    });
}
