/**
 * The document shows each definition as the spec writes it (docs/source-text.ts): every
 * invariant's `holds` is found, is the whole method or arrow and nothing more, and the
 * terms it names are the catalogue's declarations.
 */
import { describe, expect, it } from 'vitest';
import { DEFINITIONS } from '../spec/invariants/index.ts';
import { declarationOf, expressionEnd, holdsSource, invariantSources, invariantTerms, termsUsed } from '../docs/source-text.ts';

/** Brackets balance once strings, templates and comments are skipped: the scanner's own view, checked from the outside by counting the raw text of a comment-free definition. */
const balanced = (text: string): boolean => expressionEnd(`${text}\n}`, 0) === text.length + 1;

describe('the definitions as written', () => {
  it('finds the holds of every invariant, whole: the object literal closes right after it', () => {
    const files = invariantSources();
    for (const d of DEFINITIONS) {
      const src = holdsSource(d.id);
      expect(src, d.id).toBeDefined();
      expect(src!.startsWith('holds'), d.id).toBe(true);
      expect(balanced(src!), d.id).toBe(true);
      // In its file, what follows the definition is the end of the invariant's object.
      const file = files.find((f) => f.text.includes(`id: '${d.id}',`))!;
      const at = file.text.indexOf(src!.split('\n')[0]!, file.text.indexOf(`id: '${d.id}',`));
      const end = expressionEnd(file.text, at);
      expect(file.text.slice(end).trimStart().startsWith(','), d.id).toBe(true);
      expect(file.text.slice(end + 1).trimStart().startsWith('}'), d.id).toBe(true);
    }
  });

  it('skips brackets inside strings, templates and comments', () => {
    const text = "holds: (s) => f(s, ')', `${g('}')}]`, /* ( */ x) // )\n, next";
    expect(text.slice(0, expressionEnd(text, 0))).toBe("holds: (s) => f(s, ')', `${g('}')}]`, /* ( */ x) // )\n");
    expect(holdsSource('X99')).toBeUndefined();
  });

  it('names the terms a definition uses, through the terms they use, once each', () => {
    const terms = invariantTerms();
    const used = termsUsed(holdsSource('P1')!, terms);
    expect(used).toContain('everyLeaf');
    expect(used).toContain('isWritable');
    // everyLeaf names its witnesses with leafWitness: a term reached through a term.
    expect(used).toContain('leafWitness');
    expect(new Set(used).size).toBe(used.length);
    expect(terms.get('pagesOf')!.doc).toMatch(/4 KiB pages of a leaf/);
    expect(terms.get('pagesOf')!.source).toMatch(/^export function pagesOf\(leaf: Leaf\): number \{[\s\S]*\n\}$/);
    // The catalogue arrays are not terms.
    expect(terms.has('PERMISSIONS')).toBe(false);
  });

  it('reads the abstract state types whole, with their doc comments', () => {
    const leaf = declarationOf('spec/state.ts', 'Leaf');
    expect(leaf.source).toMatch(/^export interface Leaf \{[\s\S]*readonly prot: Prot;\n\}$/);
    expect(leaf.doc).toMatch(/One leaf of the abstract map/);
    expect(declarationOf('spec/state.ts', 'FrameUse').source).toMatch(/^export type FrameUse = .*;$/);
    expect(() => declarationOf('spec/state.ts', 'NoSuchType')).toThrow(/declares no NoSuchType/);
  });
});
