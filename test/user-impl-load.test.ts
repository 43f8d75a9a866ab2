/**
 * `--impl` adapters as users write them: .ts, .mts, .js and .mjs files in a folder outside
 * the repository with no package.json (CommonJS scope, where a plain import() of a .ts
 * file fails on Node 20), export mistakes named with what was found, the optional
 * checkTables hook, and failure files that replay from anywhere or against --impl.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ptspec, ROOT } from './cli.ts';

const TYPED = `import { createImpl } from 'ptspec/impl';
import type { PageTableSystemFactory } from 'ptspec/spec';
const createSystem: PageTableSystemFactory = (setup) => createImpl(setup);
export default createSystem;
`;
const PLAIN = `import { createImpl } from 'ptspec/impl';
export default (setup) => createImpl(setup);
`;
/** Sound systems whose own table checker always objects: every run fails at its first check. */
const OBJECTING = `import { createImpl } from 'ptspec/impl';
export const createSystem = (setup) => createImpl(setup);
export const checkTables = () => [{ detail: 'the adapter objects to its tables' }];
`;

let dir = '';
const write = (name: string, text: string): string => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};
const fuzzOn = (module: string, ...more: string[]) =>
  ptspec('fuzz', '--impl', module, '--runs', '1', '--jobs', '1', '--seed', '3', '--max-commands', '10', '--out', join(dir, 'failures'), ...more);

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ptspec-adapter-'));
  // How an installed ptspec is found from a user's folder.
  mkdirSync(join(dir, 'node_modules'));
  symlinkSync(ROOT, join(dir, 'node_modules', 'ptspec'), 'dir');
});

describe('adapters load from a folder outside any package', () => {
  for (const [ext, text] of [['ts', TYPED], ['mts', TYPED], ['js', PLAIN], ['mjs', PLAIN]] as const) {
    it(`.${ext}`, async () => {
      const r = await fuzzOn(write(`adapter.${ext}`, text));
      expect(r.stderr).not.toMatch(/^error/m);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain('PASSED');
    }, 60_000);
  }
});

describe('export mistakes say what was found and what is expected (exit 2)', () => {
  it('a default export that is an object', async () => {
    const r = await fuzzOn(write('object.ts', 'export default { map: 1, unmap: 2 };\n'));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/default export is an object with keys map, unmap; expected a function \(setup\) => PageTableSystem as the default export, or a named export createSystem\n$/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('a checkTables that is not a function', async () => {
    const r = await fuzzOn(write('bad-checker.mjs', `${PLAIN}export const checkTables = 'yes';\n`));
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('checkTables is a string; expected a function (system, scope?) => Witness[]');
  });
});

describe("a module's checkTables and its failure files", () => {
  let file = '';

  it('campaigns run the checkTables the module exports', async () => {
    const r = await fuzzOn(write('objecting.mjs', OBJECTING));
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('tables on');
    expect(r.stdout).toContain('the concrete tables are broken: the adapter objects to its tables');
    file = join(dir, 'failures', readdirSync(join(dir, 'failures')).find((f) => f.includes('objecting'))!);
  }, 60_000);

  it('the failure file stores the module path absolute', () => {
    const module = (JSON.parse(readFileSync(file, 'utf8')) as { target: { module: string } }).target.module;
    expect(isAbsolute(module)).toBe(true);
    expect(module).toBe(join(dir, 'objecting.mjs'));
  });

  it('a relative path in the file is relative to the file; --impl replaces the module', async () => {
    const json = JSON.parse(readFileSync(file, 'utf8')) as { target: { module: string } };
    const moved = join(dir, 'failures', 'relative.json');
    writeFileSync(moved, JSON.stringify({ ...json, target: { kind: 'module', module: '../objecting.mjs' } }));
    expect((await ptspec('replay', moved, '--trust-module')).code).toBe(1);

    writeFileSync(moved, JSON.stringify({ ...json, target: { kind: 'module', module: '/no/such/adapter.ts' } }));
    const gone = await ptspec('replay', moved, '--trust-module');
    expect(gone.code).toBe(2);
    expect(gone.stderr).toContain('no such file');
    // The same trace on a module without the objecting checker passes.
    const fixed = await ptspec('replay', moved, '--impl', write('fixed.mjs', PLAIN));
    expect(fixed.code).toBe(0);
    expect(fixed.stdout).toContain(`module ${join(dir, 'fixed.mjs')}`);
    expect(fixed.stdout).toContain('NO LONGER REPRODUCES');
  }, 60_000);
});
