/**
 * The architecture in DESIGN.md, enforced: each folder may import only the folders
 * below it. Reads the sources, so a forbidden import fails here before review.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve, sep } from 'node:path';
import { describe, expect, it } from 'vitest';
import { importViolations, LAYERS, type Layer } from './layering.ts';

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
