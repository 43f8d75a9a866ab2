/**
 * Reads the declarative definitions out of the spec's own source, so the document shows
 * each invariant's `holds` as it is written (its comments included) and the terms it is
 * written in, not a paraphrase. Only ptspec's sources are read, whose shape the tests pin
 * (test/docs-source.test.ts: every invariant's definition is found and ends where its
 * object does).
 */
import { readFileSync, readdirSync } from 'node:fs';

/** Where the catalogue's definitions live, relative to this file. */
const INVARIANTS_DIR = new URL('../spec/invariants/', import.meta.url);

/**
 * The index just past the expression or block starting at `from`: the first `,` or `;`
 * at bracket depth 0, or the closer that would take the depth below 0 (the end of the
 * enclosing object), skipping strings, template literals and comments. A `;` ends only
 * when `semicolon` (a top-level const), since a block body holds its own.
 */
export function expressionEnd(text: string, from: number, semicolon = false): number {
  let depth = 0;
  for (let i = from; i < text.length; i++) {
    const ch = text[i]!;
    if (ch === '/' && text[i + 1] === '/') i = lineEnd(text, i);
    else if (ch === '/' && text[i + 1] === '*') i = text.indexOf('*/', i + 2) + 1;
    else if (ch === "'" || ch === '"') i = quoteEnd(text, i, ch);
    else if (ch === '`') i = templateEnd(text, i);
    else if ('([{'.includes(ch)) depth++;
    else if (')]}'.includes(ch)) {
      if (depth === 0) return i;
      depth--;
      // A function declaration's body ends the declaration.
      if (depth === 0 && ch === '}' && semicolon && isBodyEnd(text, i)) return i + 1;
    } else if (depth === 0 && (ch === ',' || (semicolon && ch === ';'))) return i;
  }
  return text.length;
}

/** A `}` at depth 0 ends a top-level function declaration when a new line follows it. */
const isBodyEnd = (text: string, i: number): boolean => text[i + 1] === '\n' || i + 1 === text.length;

const lineEnd = (text: string, i: number): number => {
  const n = text.indexOf('\n', i);
  return n < 0 ? text.length : n - 1;
};

function quoteEnd(text: string, i: number, quote: string): number {
  for (let j = i + 1; j < text.length; j++) {
    if (text[j] === '\\') j++;
    else if (text[j] === quote) return j;
  }
  return text.length;
}

function templateEnd(text: string, i: number): number {
  for (let j = i + 1; j < text.length; j++) {
    if (text[j] === '\\') j++;
    else if (text[j] === '`') return j;
    else if (text[j] === '$' && text[j + 1] === '{') j = expressionEnd(text, j + 2);
  }
  return text.length;
}

/** The lines after the first without the `cut` columns of indentation the first line had in its file. */
function dedent(text: string, cut: number): string {
  const lines = text.split('\n');
  return [lines[0]!, ...lines.slice(1).map((l) => l.slice(Math.min(cut, l.length - l.trimStart().length)))].join('\n');
}

export interface SourceFile {
  readonly name: string;
  readonly text: string;
}

let cached: readonly SourceFile[] | undefined;

/** The catalogue's modules (spec/invariants/*.ts), read once. */
export function invariantSources(): readonly SourceFile[] {
  cached ??= readdirSync(INVARIANTS_DIR)
    .filter((f) => f.endsWith('.ts'))
    .sort()
    .map((name) => ({ name, text: readFileSync(new URL(name, INVARIANTS_DIR), 'utf8') }));
  return cached;
}

/**
 * The text of invariant `id`'s `holds`, as written in its object literal: from `holds` to
 * the end of the method or arrow, dedented. Undefined when no object with that id is found.
 */
export function holdsSource(id: string, files: readonly SourceFile[] = invariantSources()): string | undefined {
  for (const f of files) {
    const at = f.text.indexOf(`id: '${id}',`);
    if (at < 0) continue;
    // The property at the start of a line: the word may occur in the prose before it.
    const m = /\n\s*(holds\s*[(:])/g;
    m.lastIndex = at;
    const found = m.exec(f.text);
    if (found === null) return undefined;
    const start = found.index + found[0].length - found[1]!.length;
    return dedent(f.text.slice(start, expressionEnd(f.text, start)).trimEnd(), start - f.text.lastIndexOf('\n', start) - 1);
  }
  return undefined;
}

/** One top-level declaration of the catalogue's modules: a term a definition is written in. */
export interface Term {
  readonly name: string;
  /** `spec/invariants/<file>`. */
  readonly file: string;
  /** Its doc comment without the comment markers, or ''. */
  readonly doc: string;
  /** The declaration itself, without the doc comment. */
  readonly source: string;
}

const DECLARATION = /^(?:export )?(?:function|const) ([A-Za-z_$][\w$]*)/gm;

/** The top-level functions and constants of the catalogue's modules but the catalogue arrays themselves. */
export function invariantTerms(files: readonly SourceFile[] = invariantSources()): Map<string, Term> {
  const out = new Map<string, Term>();
  for (const f of files) {
    for (const m of f.text.matchAll(DECLARATION)) {
      const name = m[1]!;
      // The arrays of definitions (PERMISSIONS, DEFINITIONS, …) are the catalogue, not a term.
      if (/^[A-Z_]+$/.test(name) && /:\s*readonly InvariantDefinition\[\]/.test(f.text.slice(m.index, m.index + 200))) continue;
      const end = expressionEnd(f.text, m.index + m[0].length, true);
      out.set(name, { name, file: `spec/invariants/${f.name}`, doc: docComment(f.text, m.index), source: f.text.slice(m.index, end + 1).trimEnd() });
    }
  }
  return out;
}

/**
 * The declaration `export interface|type|function|const name` of a spec module (path
 * relative to the project root), with its doc comment: the abstract state's types as the
 * spec writes them.
 */
export function declarationOf(file: string, name: string): Term {
  const text = readFileSync(new URL(`../${file}`, import.meta.url), 'utf8');
  const m = new RegExp(`^export (?:interface|type|function|const) ${name}\\b`, 'm').exec(text);
  if (m === null) throw new Error(`docs: ${file} declares no ${name}`);
  const end = expressionEnd(text, m.index + m[0].length, true);
  return { name, file, doc: docComment(text, m.index), source: text.slice(m.index, end + 1).trimEnd() };
}

/** The doc comment ending just before `at`, as plain lines. */
function docComment(text: string, at: number): string {
  const before = text.slice(0, at).trimEnd();
  if (!before.endsWith('*/')) return '';
  const open = before.lastIndexOf('/**');
  if (open < 0) return '';
  return before
    .slice(open + 3, -2)
    .split('\n')
    .map((l) => l.replace(/^\s*\* ?/, '').trim())
    .filter((l) => l !== '')
    .join(' ');
}

/** The terms `text` names (whole identifiers), in order of first use, and the terms those name, once each. */
export function termsUsed(text: string, terms: ReadonlyMap<string, Term>, self?: string): string[] {
  const out: string[] = [];
  const visit = (t: string): void => {
    for (const m of t.matchAll(/[A-Za-z_$][\w$]*/g)) {
      const name = m[0];
      if (name === self || out.includes(name) || !terms.has(name)) continue;
      out.push(name);
      visit(terms.get(name)!.source);
    }
  };
  visit(text);
  return out;
}
