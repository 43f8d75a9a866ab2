/**
 * Writes the generated documents from the specification (run: node --import tsx docs/generate.ts,
 * no npm script needed). test/invariants-catalogue.test.ts fails when the committed copy is stale.
 */
import { writeFileSync } from 'node:fs';
import { renderInvariantsMarkdown } from './render.ts';

const target = new URL('./invariants.md', import.meta.url);
writeFileSync(target, renderInvariantsMarkdown());
console.log(`wrote ${target.pathname}`);
