/**
 * The specification document as data: sections of blocks, each section with an anchor
 * id. docs/markdown.ts writes it as docs/SPEC.md and docs/html.ts as the static site, so the
 * two say the same thing and a link means the same anchor in both.
 *
 * Inline text is a small subset of Markdown, the same for both renderers: `code`,
 * **bold**, *emphasis* and links [text](#anchor-id) to an anchor of the document (or to
 * an https URL), and a backslash before any of `\ ` * _ [ ] # | < >` makes it plain text
 * (`plain` escapes a spec text so). Nothing else is interpreted; `<`, `>` and `&` are text.
 */

/** Inline text in the subset above. */
export type Inline = string;

export type Block =
  | { readonly kind: 'para'; readonly text: Inline }
  | { readonly kind: 'list'; readonly items: readonly Inline[]; readonly ordered?: boolean }
  | { readonly kind: 'table'; readonly head: readonly Inline[]; readonly rows: readonly (readonly Inline[])[] }
  /** Verbatim text: source code (`ts`), a trace or a ptdump excerpt (`text`). */
  | { readonly kind: 'code'; readonly lang: 'ts' | 'text'; readonly text: string }
  /**
   * A picture: `svg` is a whole <svg> element; `file` the name it is written under in
   * docs/html/figures/ (SPEC.md shows it from there); `id` its anchor.
   */
  | { readonly kind: 'figure'; readonly id: string; readonly file: string; readonly svg: string; readonly caption: Inline }
  | Section;

export interface Section {
  readonly kind: 'section';
  /** Anchor id: lower case letters, digits and `-`, unique in the document. */
  readonly id: string;
  readonly title: string;
  readonly blocks: readonly Block[];
}

export interface SpecDocument {
  readonly title: string;
  /** Blocks before the first section. */
  readonly intro: readonly Block[];
  /**
   * The top-level sections. The site gives each its own page (its id + `.html`), with
   * the table of contents on index.html; SPEC.md has them in order.
   */
  readonly sections: readonly Section[];
}

/** Spec prose as inline text: every character the subset would interpret is escaped. */
export const plain = (text: string): Inline => text.replace(/[\\`*_[\]#|<>]/g, (c) => `\\${c}`);

/** Inline code: a backtick span, which the subset takes literally (a backtick inside ends it: none in ours). */
export const code = (text: string): Inline => `\`${text}\``;

/** An anchor id from any text: lower case, runs of other characters become one `-`. */
export function anchorId(text: string): string {
  return text.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
}

/** Every anchor of a document in order (sections and figures), for the renderers and the link check. */
export function anchors(doc: SpecDocument): string[] {
  const out: string[] = [];
  const walk = (blocks: readonly Block[]): void => {
    for (const b of blocks) {
      if (b.kind === 'section') {
        out.push(b.id);
        walk(b.blocks);
      } else if (b.kind === 'figure') out.push(b.id);
    }
  };
  walk(doc.intro);
  walk(doc.sections);
  return out;
}

/** The links `[text](#id)` of an inline text, by target id. */
export function linkTargets(text: Inline): string[] {
  return [...text.matchAll(/\]\(#([^)\s]+)\)/g)].map((m) => m[1]!);
}
