/**
 * The layering of docs/ARCHITECTURE.md, enforced: each folder may import only the folders
 * below it. Reads the sources, so a forbidden import fails here before review.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve, sep } from 'node:path';
import { describe, expect, it } from 'vitest';
import { importViolations, LAYERS, TRUSTED, trustedImportViolations, type Layer } from './layering.ts';

const root = resolve(import.meta.dirname, '..');

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return sources(p);
    return p.endsWith('.ts') ? [p] : [];
  });
}

describe('import rules between layers', () => {
  it('every layer folder exists with a README', () => {
    for (const layer of Object.keys(LAYERS)) {
      expect(statSync(join(root, layer, 'README.md')).isFile()).toBe(true);
    }
  });

  for (const layer of Object.keys(LAYERS) as Layer[]) {
    it(`${layer}/ imports only ${LAYERS[layer].join(', ') || 'nothing of ours'}`, () => {
      const found = sources(join(root, layer)).flatMap((file) =>
        importViolations(relative(root, file).split(sep).join('/'), readFileSync(file, 'utf8')),
      );
      expect(found).toEqual([]);
    });
  }

  it('catches impl importing model', () => {
    const src = "import { ModelSystem } from '../model/system.ts';\n";
    expect(importViolations('impl/radix.ts', src)).toEqual(["impl/radix.ts:1 imports model/system.ts, but impl/ may import only spec"]);
  });

  it('catches spec importing anything of ours, and a non-cli reading argv', () => {
    expect(importViolations('spec/x.ts', "import type { A } from '../io/a.ts';")).toHaveLength(1);
    expect(importViolations('fuzz/x.ts', 'const a = process.argv;')).toEqual(['fuzz/x.ts:1 uses process.argv, which only cli/ may read']);
    expect(importViolations('io/x.ts', 'process.exit(1)')).toEqual(['io/x.ts:1 uses process.exit, which only cli/ may call']);
  });
});

describe('impl/ imports from spec/ only its trusted exports', () => {
  const rel = (file: string): string => relative(root, file).split(sep).join('/');

  it('every value impl/ imports from spec/ is a trusted export', () => {
    const found = sources(join(root, 'impl')).flatMap((file) => trustedImportViolations(rel(file), readFileSync(file, 'utf8')));
    expect(found).toEqual([]);
  });

  it('the allowlist names exports that exist, each documented as trusted (its doc comment, or its module header)', async () => {
    for (const [module, names] of Object.entries(TRUSTED)) {
      const exported: Record<string, unknown> = await import(join(root, module));
      const text = readFileSync(join(root, module), 'utf8');
      const header = /^\/\*\*[\s\S]*?\*\//.exec(text)?.[0] ?? '';
      for (const name of names) {
        expect(exported[name], `${module} ${name}`).toBeDefined();
        if (header.includes('Trusted:')) continue;
        const doc = new RegExp(`/\\*\\*((?:(?!\\*/)[\\s\\S])*)\\*/\\s*export (?:const|function) ${name}\\b`).exec(text);
        expect(doc?.[1], `${module} ${name}: its doc comment should say it is trusted`).toMatch(/Trusted/);
      }
    }
  });

  it('catches a shared decision imported through the contracts barrel', () => {
    const src = "import { aliasRanges } from '../spec/contracts/index.ts';\n";
    expect(trustedImportViolations('impl/system.ts', src)).toEqual([
      'impl/system.ts:1 imports aliasRanges from spec/contracts/index.ts, which is not a trusted export: the impl must decide that on its own',
    ]);
  });

  it('passes trusted names from a module or a barrel, renamed or not, and type imports', () => {
    const src = [
      "import { PAGES, vpnToHex as hex, type Vpn } from '../spec/address.ts';",
      "import {\n  policyError,\n  validateMap,\n} from '../spec/contracts/index.ts';",
      "import type { FlushObligation } from '../spec/state.ts';",
      "import { tlbLookup } from './tlb.ts';",
      '// import { aliasRanges } from \'../spec/contracts/index.ts\';',
    ].join('\n');
    expect(trustedImportViolations('impl/x.ts', src)).toEqual([]);
    // Deeper in impl/: the path is built so this file's own import check does not read it as an import.
    const deep = ['..', '..', '..', 'spec', 'state.ts'].join('/');
    expect(trustedImportViolations('impl/arch/x86_64/y.ts', `import { INIT_MM } from '${deep}';`)).toEqual([]);
  });

  it('catches untrusted names in multi-line, default, namespace and re-export forms', () => {
    const lines = (src: string) => trustedImportViolations('impl/x.ts', src).map((v) => v.split(' which')[0]);
    expect(lines("import {\n  ptError,\n  chooseLeafSize,\n} from '../spec/contracts/index.ts';")).toEqual(['impl/x.ts:1 imports chooseLeafSize from spec/contracts/index.ts,']);
    expect(lines("import spec from '../spec/index.ts';")).toEqual(['impl/x.ts:1 imports default from spec/index.ts,']);
    expect(lines("export { normalizeFrames } from '../spec/contracts/directmap.ts';")).toEqual(['impl/x.ts:1 imports normalizeFrames from spec/contracts/directmap.ts,']);
    // A name trusted in one module is not trusted from another.
    expect(lines("import { PAGES } from '../spec/state.ts';")).toEqual(['impl/x.ts:1 imports PAGES from spec/state.ts,']);
  });

  it('checks the members a namespace import reaches: `ns.name` and destructuring', () => {
    const src = [
      "import * as c from '../spec/contracts/index.ts';",
      "import * as a from '../spec/address.ts';",
      'const { PAGES, leafLevel: level } = a;',
      'const n = a.VPN_LIMIT + c.validateMap.length;',
      "const s = 'c.flushTlbRange in a string';",
      'const x = c.flushTlbRange(tlb, 0, 1);',
      'const { tlbLookup } = c;',
      'use(c);',
    ].join('\n');
    expect(trustedImportViolations('impl/x.ts', src).map((v) => v.split(',')[0])).toEqual([
      'impl/x.ts:6 imports flushTlbRange from spec/contracts/index.ts',
      'impl/x.ts:7 imports tlbLookup from spec/contracts/index.ts',
      'impl/x.ts:8 uses the namespace c of spec/contracts/index.ts as a value',
    ]);
  });

  it('applies to impl/ only', () => {
    expect(trustedImportViolations('model/model.ts', "import { aliasRanges } from '../spec/contracts/index.ts';")).toEqual([]);
  });
});
