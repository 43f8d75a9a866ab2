/**
 * Every file `ptspec docs` writes under docs/, from the hunt data: SPEC.md and the static
 * site under html/. Pure: the same data gives the same files, byte for byte, which is what
 * the staleness test compares with the committed ones.
 */
import type { SpecExamples } from '../fuzz/spec-examples-json.ts';
import { renderSite } from './html.ts';
import { renderMarkdown } from './markdown.ts';
import { specDocument } from './spec.ts';
import { examplesView } from './spec-examples.ts';

/** Where the hunt data lives, relative to docs/. */
export const EXAMPLES_FILE = 'data/spec-examples.json';
/** The folder the site is written to, relative to docs/: `ptspec docs` owns every file in it. */
export const SITE_DIR = 'html';

/** Path relative to docs/ → content. */
export function docsFiles(data: SpecExamples): Map<string, string> {
  const doc = specDocument(examplesView(data));
  const out = new Map<string, string>([['SPEC.md', renderMarkdown(doc)]]);
  for (const [path, text] of renderSite(doc)) out.set(`${SITE_DIR}/${path}`, text);
  return out;
}
