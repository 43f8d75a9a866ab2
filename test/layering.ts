/** The import rules of DESIGN.md ("Data flows one way") as data, and their checker. */
import { dirname, join, normalize } from 'node:path/posix';

export const LAYERS = {
  spec: [],
  model: ['spec'],
  impl: ['spec'],
  fuzz: ['spec', 'model', 'impl'],
  io: ['spec'],
  cli: ['spec', 'model', 'impl', 'fuzz', 'io', 'docs'],
  bench: ['spec', 'model', 'impl', 'fuzz', 'io'],
  docs: ['spec'],
  test: ['spec', 'model', 'impl', 'fuzz', 'io', 'cli', 'docs', 'bench', 'test'],
} as const satisfies Record<string, readonly string[]>;

export type Layer = keyof typeof LAYERS;

// `from '…'` (also the closing line of a multi-line import), `import('…')` and a bare `import '…'`.
const IMPORT = /\bfrom\s*['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)|^\s*import\s*['"]([^'"]+)['"]/g;

/** Rule violations in one source file, `file` relative to the project root (posix). */
export function importViolations(file: string, text: string): string[] {
  const layer = file.split('/')[0] as Layer;
  const allowed: readonly string[] = LAYERS[layer] ?? [];
  const out: string[] = [];
  const lines = text.split('\n');
  lines.forEach((line, i) => {
    const where = `${file}:${i + 1}`;
    for (const m of line.matchAll(IMPORT)) {
      const spec = m[1] ?? m[2] ?? m[3]!;
      if (!spec.startsWith('.')) continue;
      const target = normalize(join(dirname(file), spec));
      const targetLayer = target.split('/')[0]!;
      if (targetLayer !== layer && !allowed.includes(targetLayer)) {
        out.push(`${where} imports ${target}, but ${layer}/ may import only ${allowed.join(', ') || 'nothing of ours'}`);
      }
    }
    if (layer !== 'cli' && layer !== 'test' && /\bprocess\.argv\b/.test(line)) out.push(`${where} uses process.argv, which only cli/ may read`);
    if (layer !== 'cli' && layer !== 'test' && /\bprocess\.exit\b/.test(line)) out.push(`${where} uses process.exit, which only cli/ may call`);
  });
  return out;
}
