/**
 * The terms the definitions are written in: every top-level function and constant of
 * spec/invariants that some invariant's `holds` uses (directly or through another term),
 * with its doc comment and its source, so a definition can be read to the bottom.
 */
import { DEFINITIONS } from '../spec/invariants/index.ts';
import { plain, type Block, type Section } from './doc.ts';
import { termAnchor } from './spec-links.ts';
import { holdsSource, invariantTerms, termsUsed } from './source-text.ts';

export function termsSection(): Section {
  const terms = invariantTerms();
  const used = new Set(DEFINITIONS.flatMap((d) => termsUsed(holdsSource(d.id) ?? '', terms)));
  // In the order the modules declare them: a term's helpers sit next to it.
  const shown = [...terms.values()].filter((t) => used.has(t.name));
  return {
    kind: 'section',
    id: 'terms',
    title: 'Terms of the definitions',
    blocks: [
      {
        kind: 'para',
        text: `The ${shown.length} functions and constants of ${'`spec/invariants`'} that the definitions use, in the order their modules declare them. Names from ${'`spec/address.ts`'}, ${'`spec/state.ts`'} and ${'`spec/roots.ts`'} (page numbers, hex printing, the abstract state and which root mirrors which) are the spec's vocabulary.`,
      },
      ...shown.map((t): Section => ({
        kind: 'section',
        id: termAnchor(t.name),
        title: t.name,
        blocks: [
          ...(t.doc === '' ? [] : [{ kind: 'para', text: plain(t.doc) } as Block]),
          { kind: 'code', lang: 'ts', text: t.source },
          { kind: 'para', text: `In ${plain(t.file)}.` },
        ],
      })),
    ],
  };
}
