/** Writes the JSON Schemas of schemas/render.ts beside this file: `node --import tsx schemas/generate.ts`. */
import { writeFileSync } from 'node:fs';
import { renderSchemas } from './render.ts';

for (const [file, text] of renderSchemas()) {
  const target = new URL(`./${file}`, import.meta.url);
  writeFileSync(target, text);
  console.log(`wrote ${target.pathname}`);
}
