/**
 * What the command line prints must be something a reader can look up: every catalogue
 * id it prints (check findings, mutants' caughtBy, fuzz summaries) resolves with
 * `ptspec invariants ID`, and every verb's --help ends with examples.
 */
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { STRICT_POLICY } from '../spec/contracts/outcome.ts';
import { catalogueSuite } from '../fuzz/defaults.ts';
import { DUMP_FINDINGS } from '../io/ptdump/finding-catalogue.ts';
import { ptspec } from './cli.ts';

/** Catalogue ids (P2, S12) and dump finding ids (K-dump-usr) in printed text. */
const ID = /(?<![\w-])(?:[STPHLKAD]\d{1,2}|[SK]-dump-[a-z]+(?:-[a-z]+)*)(?![\w-])/g;
const idsIn = (text: string): string[] => [...new Set(text.match(ID) ?? [])];

async function unresolved(ids: readonly string[]): Promise<string[]> {
  const bad: string[] = [];
  for (const id of ids) if ((await ptspec('invariants', id)).code !== 0) bad.push(id);
  return bad;
}

describe('every id the command line prints resolves with `ptspec invariants ID`', () => {
  it('the findings of ptspec check on every fixture dump, alone and as KPTI pairs', async () => {
    const files = ['kernel', 'ptdump'].flatMap((d) => readdirSync(`test/fixtures/${d}`).map((f) => `test/fixtures/${d}/${f}`));
    let printed = '';
    for (const f of files) printed += (await ptspec('check', '--fragment', f)).stdout;
    printed += (await ptspec('check', 'test/fixtures/ptdump/kpti-pair.txt', '--user', 'test/fixtures/kernel/x86-ptdump-05.txt')).stdout;
    const ids = idsIn(printed);
    expect(ids).toEqual(expect.arrayContaining(['K-dump-usr', 'K-dump-user-allowlist', 'K-dump-glb']));
    expect(await unresolved(ids)).toEqual([]);
  }, 60_000);

  it('every kind of dump finding, listed by `ptspec invariants` and printed in full by id', async () => {
    const list = (await ptspec('invariants')).stdout.split('\n');
    for (const f of DUMP_FINDINGS) {
      expect(list.some((l) => l.trim().startsWith(`${f.id} `) && l.endsWith(`  ${f.title}`)), f.id).toBe(true);
      const r = await ptspec('invariants', f.id);
      expect(r.stdout).toContain(`statement: ${f.statement}`);
    }
    const json = JSON.parse((await ptspec('invariants', '--json', 'K-dump-usr')).stdout) as { id: string; checkedBy: string }[];
    expect(json).toMatchObject([{ id: 'K-dump-usr', checkedBy: 'ptspec check' }]);
  });

  it("the mutants' caughtBy, by id and by name", async () => {
    const caughtBy = (await ptspec('mutants')).stdout.split('\n').filter((l) => l.startsWith('  caught by: ')).join('\n');
    const ids = idsIn(caughtBy);
    expect(ids).toContain('P1');
    // Invariant names are snake_case with three words or more; postcondition clauses are op.part.
    const names = [...new Set(caughtBy.match(/\b[a-z]+(?:_[a-z]+){2,}\b/g) ?? [])];
    expect(await unresolved([...ids, ...names])).toEqual([]);
  });

  it('a fuzz summary, the invariants it checks and the strict policy its EPERMs name', async () => {
    const out = mkdtempSync(join(tmpdir(), 'ptspec-ids-'));
    const r = await ptspec('fuzz', '--mutant', 'split-drops-nx', '--runs', '20', '--jobs', '1', '--seed', '5', '--max-commands', '30', '--out', out);
    expect(await unresolved([...idsIn(r.stdout), ...catalogueSuite.ids, ...STRICT_POLICY.map((p) => p.id)])).toEqual([]);
  }, 120_000);
});

describe('--help of every verb ends with examples', () => {
  it('lists them after the options', async () => {
    const top = (await ptspec('--help')).stdout;
    const verbs = [...top.slice(top.indexOf('Commands:')).matchAll(/^ {2}([a-z-]+) /gm)].map((m) => m[1]!).filter((v) => v !== 'help');
    expect(verbs).toEqual(expect.arrayContaining(['fuzz', 'replay', 'check', 'dump', 'invariants', 'mutants', 'selfcheck']));
    for (const v of verbs) {
      const help = (await ptspec(v, '--help')).stdout;
      expect(help, v).toMatch(/\nExamples:\n {2}\$ /);
      expect(help, v).toContain(`$ ptspec ${v}`);
    }
  });
});
