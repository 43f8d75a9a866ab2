/**
 * The specification document (`ptspec docs`): the committed docs/SPEC.md and docs/html are
 * what the generator gives from the committed hunt data, every machine-found example in
 * that data still breaks what it says when replayed, the document covers every invariant
 * and operation, and bad input is refused with exit 2. The hunt itself (minutes) runs in
 * .ci/run (`ptspec docs --check`), which also compares the data with a fresh hunt.
 */
import { cpSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { anchors } from '../docs/doc.ts';
import { EXAMPLES_FILE } from '../docs/site.ts';
import { specDocument } from '../docs/spec.ts';
import { examplesView } from '../docs/spec-examples.ts';
import { operationAnchor } from '../docs/spec-links.ts';
import { recheckExample } from '../fuzz/spec-examples.ts';
import { formatSpecExamples, parseSpecExamples, type SpecExamples } from '../fuzz/spec-examples-json.ts';
import { DEFINITIONS } from '../spec/invariants/index.ts';
import { OPS } from '../spec/operations.ts';
import { ptspec } from './cli.ts';

const DOCS = new URL('../docs/', import.meta.url);

function committed(): SpecExamples {
  const r = parseSpecExamples(readFileSync(new URL(EXAMPLES_FILE, DOCS), 'utf8'));
  if (!r.ok) throw new Error(r.errors.join('; '));
  return r.value;
}

describe('the committed specification document', () => {
  const data = committed();

  it('is what ptspec docs renders from the committed data (regenerate: ptspec docs --render-only)', async () => {
    const r = await ptspec('docs', '--render-only', '--check');
    expect(r.stdout + r.stderr).toMatch(/up to date/);
    expect(r.code).toBe(0);
  });

  it('keeps its data in the repo form: formatting it again changes nothing', () => {
    expect(formatSpecExamples(data)).toBe(readFileSync(new URL(EXAMPLES_FILE, DOCS), 'utf8'));
  });

  it('replays every counterexample and every kernel finding to the break it records', async () => {
    const examples = [...data.hunt.invariants.flatMap((i) => (i.counterexample === undefined ? [] : [i.counterexample])), ...data.kernel.findings];
    expect(examples.length).toBeGreaterThan(20);
    for (const e of examples) expect(await recheckExample(e), `${e.invariant} ${'mutant' in e ? e.mutant : e.cause}`).toBeNull();
  });

  it('covers every invariant (with its counterexample or listed as unbroken) and every operation', () => {
    const ids = new Set(anchors(specDocument(examplesView(data))));
    for (const d of DEFINITIONS) {
      expect(ids.has(d.id.toLowerCase()), d.id).toBe(true);
      const row = data.hunt.invariants.find((i) => i.invariant === d.id)!;
      expect(row.counterexample !== undefined || data.hunt.unbroken.includes(d.id), d.id).toBe(true);
    }
    for (const op of OPS) expect(ids.has(operationAnchor(op)), op).toBe(true);
    const md = readFileSync(new URL('SPEC.md', DOCS), 'utf8');
    expect(md).toContain('<a id="p1"></a>');
    expect(md).toContain('<a id="op-protect"></a>');
  });
});

describe('ptspec docs on bad input', () => {
  const dir = (): string => mkdtempSync(join(tmpdir(), 'ptspec-docs-'));

  it('names the file and the field of data it cannot read, exit 2, nothing written', async () => {
    const d = dir();
    mkdirSync(join(d, 'data'));
    writeFileSync(join(d, EXAMPLES_FILE), JSON.stringify({ ...committed(), format: 'nope' }));
    const r = await ptspec('docs', '--render-only', '--out', d);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(join(d, EXAMPLES_FILE));
    expect(r.stderr).toMatch(/format/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    const missing = await ptspec('docs', '--render-only', '--out', dir());
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/no such file/);
    expect((await ptspec('docs', '--out', join(d, 'nowhere'))).code).toBe(2);
  });

  it('--check names every file that differs, is missing or is left over, exit 1', async () => {
    const d = dir();
    cpSync(new URL('data', DOCS), join(d, 'data'), { recursive: true });
    expect((await ptspec('docs', '--render-only', '--out', d)).code).toBe(0);
    expect((await ptspec('docs', '--render-only', '--check', '--out', d)).code).toBe(0);
    writeFileSync(join(d, 'html', 'index.html'), 'edited');
    writeFileSync(join(d, 'html', 'stale.html'), 'old');
    const r = await ptspec('docs', '--render-only', '--check', '--out', d);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('html/index.html: differs');
    expect(r.stdout).toContain('html/stale.html: not generated (left over)');
    // Writing again removes what the site no longer has.
    expect((await ptspec('docs', '--render-only', '--out', d)).code).toBe(0);
    expect((await ptspec('docs', '--render-only', '--check', '--out', d)).code).toBe(0);
  });
});
