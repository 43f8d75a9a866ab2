/**
 * The specification document (docs/doc.ts) as GitHub Markdown, docs/SPEC.md. Also the
 * parser of the document's inline subset, which is Markdown's: docs/html.ts renders the
 * same parse, so both outputs read the same text the same way.
 *
 * Every heading and figure gets an explicit `<a id>` before it, so a link means the same
 * anchor here as on the site and never depends on GitHub's slugging. Inline text is
 * re-written from its parse with every character escaped that GitHub would otherwise
 * read as syntax (HTML, emphasis, table cell breaks, list or heading starts).
 */
import { anchors, type Block, type Inline, type Section, type SpecDocument } from './doc.ts';

export type InlineNode =
  | { readonly kind: 'text'; readonly text: string }
  | { readonly kind: 'code'; readonly text: string }
  | { readonly kind: 'strong' | 'em'; readonly children: readonly InlineNode[] }
  /** `href` as written: `#id` or an https URL. */
  | { readonly kind: 'link'; readonly href: string; readonly children: readonly InlineNode[] };

type Closer = '**' | '*' | ']';

const LINK_TARGET = /^\((#[^)\s]+|https:\/\/[^()\s]+)\)/;

/**
 * The parse of an inline text. Code spans follow CommonMark (a run of N backticks up to
 * the next run of exactly N, one padding space stripped from each side); `*` and `**`
 * open only before a non-space and close only after one, so `2 * 3` stays text; an
 * opener without its closer is text.
 */
export function parseInline(text: Inline): InlineNode[] {
  return parseRun(text, 0, null)!.nodes;
}

/** The characters a backslash makes plain text (docs/doc.ts). */
const ESCAPABLE = '\\`*_[]#|<>';

function parseRun(s: string, from: number, closer: Closer | null): { nodes: InlineNode[]; end: number } | null {
  const nodes: InlineNode[] = [];
  let text = '';
  const flush = (): void => {
    if (text !== '') nodes.push({ kind: 'text', text });
    text = '';
  };
  let i = from;
  while (i < s.length) {
    if (closer !== null && s.startsWith(closer, i) && (closer === ']' || !/\s/.test(s[i - 1]!))) {
      flush();
      return { nodes, end: i + closer.length };
    }
    const c = s[i]!;
    // A backslash makes the next interpreted character text (doc.ts plain).
    if (c === '\\' && ESCAPABLE.includes(s[i + 1] ?? '')) {
      text += s[i + 1];
      i += 2;
      continue;
    }
    if (c === '`') {
      const fence = /^`+/.exec(s.slice(i))![0];
      const close = codeSpanClose(s, i + fence.length, fence.length);
      if (close < 0) {
        text += fence;
        i += fence.length;
        continue;
      }
      flush();
      nodes.push({ kind: 'code', text: unpadCode(s.slice(i + fence.length, close)) });
      i = close + fence.length;
      continue;
    }
    if (c === '*') {
      const delim = s.startsWith('**', i) ? '**' : '*';
      const next = s[i + delim.length];
      const inner = next !== undefined && !/\s/.test(next) ? parseRun(s, i + delim.length, delim) : null;
      if (inner) {
        flush();
        nodes.push({ kind: delim === '**' ? 'strong' : 'em', children: inner.nodes });
        i = inner.end;
      } else {
        text += '*';
        i += 1;
      }
      continue;
    }
    if (c === '[') {
      const inner = parseRun(s, i + 1, ']');
      const target = inner ? LINK_TARGET.exec(s.slice(inner.end)) : null;
      if (inner && target) {
        flush();
        nodes.push({ kind: 'link', href: target[1]!, children: inner.nodes });
        i = inner.end + target[0].length;
        continue;
      }
    }
    text += c;
    i += 1;
  }
  if (closer !== null) return null;
  flush();
  return { nodes, end: i };
}

/** Where the run of exactly `n` backticks closing a code span starts, or -1. */
function codeSpanClose(s: string, from: number, n: number): number {
  for (const m of s.slice(from).matchAll(/`+/g)) if (m[0].length === n) return from + m.index;
  return -1;
}

function unpadCode(code: string): string {
  return code.length >= 2 && code.startsWith(' ') && code.endsWith(' ') && code.trim() !== '' ? code.slice(1, -1) : code;
}

/** The text a reader sees, without the formatting: for search and for image alt text. */
export function plainText(nodes: readonly InlineNode[]): string {
  return nodes.map((n) => (n.kind === 'text' || n.kind === 'code' ? n.text : plainText(n.children))).join('');
}

/** Every block of a list of blocks, depth first in document order (sections before their contents). */
export function allBlocks(blocks: readonly Block[]): Block[] {
  return blocks.flatMap((b) => (b.kind === 'section' ? [b, ...allBlocks(b.blocks)] : [b]));
}

/** The subsections directly inside a list of blocks. */
export function sectionsIn(blocks: readonly Block[]): Section[] {
  return blocks.filter((b): b is Section => b.kind === 'section');
}

const ANCHOR_ID = /^[a-z0-9]+(-[a-z0-9]+)*$/;
const FIGURE_FILE = /^[a-z0-9][a-z0-9._-]*\.svg$/;

/**
 * The document's anchors, after checking what both renderers rely on: ids well formed
 * and unique, figure files named safely and each name holding one picture, every link
 * `[t](#id)` naming an anchor. Throws on the first fault: a broken document is a bug in
 * its generator, better stopped than written.
 */
export function checkDocument(doc: SpecDocument): Set<string> {
  const ids = new Set<string>();
  for (const id of anchors(doc)) {
    if (!ANCHOR_ID.test(id)) throw new Error(`anchor id ${JSON.stringify(id)}: only lower case letters, digits and single inner '-'`);
    if (ids.has(id)) throw new Error(`anchor id ${id} is used twice`);
    ids.add(id);
  }
  const svgByFile = new Map<string, string>();
  const texts: Inline[] = [];
  for (const b of allBlocks([...doc.intro, ...doc.sections])) {
    if (b.kind === 'para') texts.push(b.text);
    else if (b.kind === 'list') texts.push(...b.items);
    else if (b.kind === 'table') texts.push(...b.head, ...b.rows.flat());
    else if (b.kind === 'figure') {
      texts.push(b.caption);
      if (!FIGURE_FILE.test(b.file)) throw new Error(`figure ${b.id}: file name ${JSON.stringify(b.file)} is not a plain lower-case .svg name`);
      if ((svgByFile.get(b.file) ?? b.svg) !== b.svg) throw new Error(`figure ${b.id}: ${b.file} already holds another picture`);
      svgByFile.set(b.file, b.svg);
    }
  }
  for (const text of texts) {
    for (const id of linksIn(parseInline(text))) {
      if (!ids.has(id)) throw new Error(`link to #${id} in ${JSON.stringify(text)}: no section or figure has that id`);
    }
  }
  return ids;
}

function linksIn(nodes: readonly InlineNode[]): string[] {
  return nodes.flatMap((n) => {
    if (n.kind === 'text' || n.kind === 'code') return [];
    const inner = linksIn(n.children);
    return n.kind === 'link' && n.href.startsWith('#') ? [n.href.slice(1), ...inner] : inner;
  });
}

const GENERATED = '<!-- Generated by `ptspec docs` from the specification; do not edit by hand. -->';

export function renderMarkdown(doc: SpecDocument): string {
  checkDocument(doc);
  const chunks = [heading(doc.title, 1), GENERATED, ...doc.intro.map((b) => block(b, 2))];
  const toc = tocLines([...sectionsIn(doc.intro), ...doc.sections], 0);
  chunks.push('## Contents', toc.join('\n'), ...doc.sections.map((s) => block(s, 2)));
  return `${chunks.join('\n\n')}\n`;
}

/** The table of contents lists two levels (a family and its invariants); deeper parts are found through their section. */
export const TOC_DEPTH = 2;

function tocLines(sections: readonly Section[], depth: number): string[] {
  if (depth >= TOC_DEPTH) return [];
  return sections.flatMap((s) => [`${'  '.repeat(depth)}- [${escapeText(s.title)}](#${s.id})`, ...tocLines(sectionsIn(s.blocks), depth + 1)]);
}

/** One block; `level` is the heading level a section here gets (deeper than 6 stays 6). */
function block(b: Block, level: number): string {
  switch (b.kind) {
    case 'para':
      return paragraph(b.text);
    case 'list':
      return b.items.map((item, i) => `${b.ordered ? `${i + 1}.` : '-'} ${paragraph(item)}`).join('\n');
    case 'table': {
      const row = (cells: readonly Inline[]): string => `| ${cells.map((c) => inline(c, true)).join(' | ')} |`;
      return [row(b.head), `|${b.head.map(() => ' --- |').join('')}`, ...b.rows.map(row)].join('\n');
    }
    case 'code': {
      const fence = '`'.repeat(Math.max(3, longestBacktickRun(b.text) + 1));
      return `${fence}${b.lang}\n${b.text.replace(/\n$/, '')}\n${fence}`;
    }
    case 'figure':
      return `<a id="${b.id}"></a>\n![${escapeText(plainText(parseInline(b.caption)))}](html/figures/${b.file})\n\n**Figure.** ${inline(b.caption, false)}`;
    case 'section': {
      return [`<a id="${b.id}"></a>\n${heading(b.title, level)}`, ...b.blocks.map((inner) => block(inner, level + 1))].join('\n\n');
    }
  }
}

/** An ATX heading; a `#` ending the title is escaped, or GitHub would take it for a closing sequence. */
function heading(title: string, level: number): string {
  return `${'#'.repeat(Math.min(level, 6))} ${escapeText(title).replace(/#$/, '\\#')}`;
}

/** Inline text as a paragraph or list item: also escapes what would start another block at the line's start. */
function paragraph(text: Inline): string {
  return inline(text, false).replace(/^(\d+)([.)])/, '$1\\$2').replace(/^([#>+=-])/, '\\$1');
}

/** Inline text re-written from its parse, on one line (a table cell cannot hold a line break). */
function inline(text: Inline, inTable: boolean): string {
  const render = (nodes: readonly InlineNode[]): string =>
    nodes
      .map((n) => {
        switch (n.kind) {
          case 'text':
            return escapeText(n.text);
          case 'code':
            return codeSpan(inTable ? n.text.replace(/\|/g, '\\|') : n.text);
          case 'strong':
            return `**${render(n.children)}**`;
          case 'em':
            return `*${render(n.children)}*`;
          case 'link':
            return `[${render(n.children)}](${n.href})`;
        }
      })
      .join('');
  return render(parseInline(text.replace(/\s*\n\s*/g, ' ').trim()));
}

/** Plain text for Markdown: Markdown's punctuation backslash-escaped, `<` and `&` as entities. */
function escapeText(text: string): string {
  return text
    .replace(/\s*\n\s*/g, ' ')
    .replace(/[\\`*_[\]|~]/g, '\\$&')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;');
}

/** A code span whose fence no backtick inside can close, padded where CommonMark would strip. */
function codeSpan(code: string): string {
  const fence = '`'.repeat(longestBacktickRun(code) + 1);
  const pad = code.startsWith('`') || code.endsWith('`') || (code.startsWith(' ') && code.endsWith(' ') && code.trim() !== '') ? ' ' : '';
  return `${fence}${pad}${code}${pad}${fence}`;
}

function longestBacktickRun(text: string): number {
  return Math.max(0, ...[...text.matchAll(/`+/g)].map((m) => m[0].length));
}
