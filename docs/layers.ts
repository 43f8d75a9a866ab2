/**
 * ptspec's folders and who may import whom (docs/ARCHITECTURE.md, "Layers": data flows
 * one way), as data. test/layering.ts checks every import against LAYERS; the layers
 * figure of the specification document (docs/figures/layers.ts) is drawn from it. It
 * lives here, not in test/, because docs/ may not import test/.
 */

/** For each folder, the folders its modules may import (its own is always allowed). */
export const LAYERS = {
  spec: [],
  checker: ['spec'],
  model: ['spec', 'checker'],
  impl: ['spec'],
  fuzz: ['spec', 'checker', 'model', 'impl', 'io'],
  io: ['spec', 'checker'],
  cli: ['spec', 'checker', 'model', 'impl', 'fuzz', 'io', 'docs', 'bench'],
  bench: ['spec', 'checker', 'model', 'impl', 'fuzz', 'io'],
  // The figures boot scenarios on the impl and read its tables (docs/figures/).
  docs: ['spec', 'checker', 'model', 'impl', 'fuzz', 'io'],
  schemas: ['spec', 'checker', 'model', 'impl', 'fuzz', 'io', 'cli', 'bench'],
  examples: ['spec', 'checker'],
  test: ['spec', 'checker', 'model', 'impl', 'fuzz', 'io', 'cli', 'docs', 'bench', 'examples', 'schemas', 'test'],
} as const satisfies Record<string, readonly string[]>;

export type Layer = keyof typeof LAYERS;

/**
 * What each folder holds, in a line: the title of its README.md (`# spec/ — the
 * specification`), which test/docs-figures.test.ts holds these to.
 */
export const LAYER_ROLES: Readonly<Record<Layer, string>> = {
  spec: 'the specification',
  checker: 'the fast checks of the invariant catalogue',
  model: 'the reference model',
  impl: 'the optimized implementation',
  fuzz: 'stateful fuzzing',
  io: 'formats',
  cli: 'the `ptspec` command',
  bench: 'benchmarks',
  docs: 'the specification document',
  schemas: "JSON Schemas of ptspec's machine-readable output",
  examples: 'implementations to copy',
  test: 'vitest suites',
};
