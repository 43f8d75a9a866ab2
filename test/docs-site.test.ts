/**
 * The two renderers of the specification document, docs/html.ts (the site) and
 * docs/markdown.ts (SPEC.md), on a small document built here: every link lands on an
 * anchor, text that looks like HTML or Markdown stays text, figures are written, the
 * search index covers every section. test/docs-browser.test.ts opens the real site in
 * Chromium; this suite needs no browser.
 */
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { anchors, plain, type Section, type SpecDocument } from '../docs/doc.ts';
import { renderSite } from '../docs/html.ts';
import { parseInline, renderMarkdown } from '../docs/markdown.ts';

const SVG = '<svg viewBox="0 0 40 20" width="40" height="20"><rect width="40" height="20" fill="#ccc"/></svg>';

const P1: Section = {
  kind: 'section',
  id: 'p1-no-leaf-writable-and-executable',
  title: 'P1 no_leaf_writable_and_executable',
  blocks: [
    { kind: 'para', text: 'No W+X mapping: a leaf is never both writable and executable; see [the walk](#fig-walk).' },
    { kind: 'figure', id: 'fig-walk', file: 'walk.svg', svg: SVG, caption: 'A walk of `pgd` <-> `pte` & co' },
    { kind: 'code', lang: 'ts', text: "// the check\nconst bad = w && x; const s = '<b>';\n" },
  ],
};

const DOC: SpecDocument = {
  title: 'Tiny <spec> & co',
  intro: [
    { kind: 'para', text: 'Start at [P1](#p1-no-leaf-writable-and-executable) or [escaping](#escaping); upstream is [here](https://www.kernel.org/).' },
  ],
  sections: [
    {
      kind: 'section',
      id: 'overview',
      title: 'Overview | <intro>',
      blocks: [
        { kind: 'para', text: '**Bold**, *emphasis* and `code`; 2 * 3 * 4 is not emphasis.' },
        {
          kind: 'section',
          id: 'escaping',
          title: 'Escaping',
          blocks: [
            { kind: 'para', text: '<script>alert(1)</script> & a lone ` backtick, a *star and # no heading' },
            { kind: 'para', text: '# not a heading either' },
            { kind: 'list', ordered: true, items: ['1999. was a year', '- not a sub-list'] },
            {
              kind: 'table',
              head: ['a | b', 'code'],
              rows: [['x < y & z', '``a`b|c``'], ['[back](#overview)', '`|`']],
            },
          ],
        },
      ],
    },
    { kind: 'section', id: 'permissions', title: 'Permissions', blocks: [{ kind: 'para', text: 'The P family.' }, P1] },
  ],
};

const site = renderSite(DOC);
const pages = [...site.keys()].filter((f) => f.endsWith('.html'));
const markdown = renderMarkdown(DOC);

const allIds = (html: string): string[] => [...html.matchAll(/\sid="([^"]+)"/g)].map((m) => m[1]!);
/** The document's ids on a page, without the frame's (search_box, search_results). */
const idsOf = (html: string): string[] => allIds(html).filter((id) => !id.includes('_'));
const attrs = (html: string, name: string): string[] => [...html.matchAll(new RegExp(`\\s${name}="([^"]*)"`, 'g'))].map((m) => m[1]!);

describe('docs/html.ts', () => {
  it('writes the index, a page per top-level section, the assets, the search index and each figure', () => {
    expect([...site.keys()].sort()).toEqual(
      ['figures/walk.svg', 'index.html', 'overview.html', 'permissions.html', 'search-index.js', 'search.js', 'style.css'].sort(),
    );
    // As a file of its own an SVG needs its namespace; the rest is the figure as given.
    expect(site.get('figures/walk.svg')).toBe(SVG.replace('<svg', '<svg xmlns="http://www.w3.org/2000/svg"'));
    expect(site.get('permissions.html')).toContain('<img src="figures/walk.svg" alt="A walk of pgd &lt;-&gt; pte &amp; co">');
  });

  it('gives every section and figure its id once, on the page that holds it', () => {
    for (const p of pages) expect(allIds(site.get(p)!).filter((id) => id.includes('_'))).toEqual(['search_box', 'search_results']);
    const all = pages.flatMap((p) => idsOf(site.get(p)!));
    expect(all.sort()).toEqual(anchors(DOC).sort());
    expect(idsOf(site.get('permissions.html')!)).toEqual(['permissions', 'p1-no-leaf-writable-and-executable', 'fig-walk']);
  });

  it('resolves every link and source: #id on its own page, page.html#id elsewhere, files that exist', () => {
    const ids = new Map(pages.map((p) => [p, new Set(allIds(site.get(p)!))]));
    let links = 0;
    for (const p of pages) {
      const html = site.get(p)!;
      for (const ref of attrs(html, 'href')) {
        if (ref.startsWith('https://') || ref.startsWith('data:')) continue;
        const [file, id] = ref.split('#') as [string, string | undefined];
        const target = file === '' ? p : file;
        expect(site.has(target), `${p}: ${ref}`).toBe(true);
        if (id !== undefined) expect(ids.get(target)?.has(id), `${p}: ${ref}`).toBe(true);
        links++;
      }
      for (const src of attrs(html, 'src')) expect(site.has(src), `${p}: ${src}`).toBe(true);
    }
    expect(links).toBeGreaterThan(20);
    expect(site.get('index.html')).toContain('<a href="permissions.html#p1-no-leaf-writable-and-executable">P1</a>');
    expect(site.get('index.html')).toContain('<a href="https://www.kernel.org/">here</a>');
    expect(site.get('permissions.html')).toContain('<a href="#fig-walk">the walk</a>');
  });

  it('escapes all text and renders the inline subset', () => {
    const overview = site.get('overview.html')!;
    expect(overview).toContain('<p>&lt;script&gt;alert(1)&lt;/script&gt; &amp; a lone ` backtick, a *star and # no heading</p>');
    expect(overview).not.toContain('<script>alert');
    expect(overview).toContain('<p><strong>Bold</strong>, <em>emphasis</em> and <code>code</code>; 2 * 3 * 4 is not emphasis.</p>');
    expect(overview).toContain('<td>x &lt; y &amp; z</td><td><code>a`b|c</code></td>');
    expect(overview).toContain('<th>a | b</th>');
    expect(overview).toContain('<title>Overview | &lt;intro&gt; — Tiny &lt;spec&gt; &amp; co</title>');
    // A ts block marks its comments and strings, escaped like the rest.
    expect(site.get('permissions.html')).toContain(
      '<span class="comment">// the check</span>\nconst bad = w &amp;&amp; x; const s = <span class="string">\'&lt;b&gt;\'</span>;',
    );
  });

  it('takes spec prose escaped by plain() as text in both renderers', () => {
    const prose = 'set_memory_* and set_direct_map_*: [vpn, vpn+pages) `x` <b> #1 | 2 a\\b';
    const nodes = parseInline(plain(prose));
    expect(nodes).toEqual([{ kind: 'text', text: prose }]);
    const one: SpecDocument = { title: 'T', intro: [], sections: [{ kind: 'section', id: 'prose', title: 'Prose', blocks: [{ kind: 'para', text: plain(prose) }] }] };
    expect(renderSite(one).get('prose.html')).toContain('<p>set_memory_* and set_direct_map_*: [vpn, vpn+pages) `x` &lt;b&gt; #1 | 2 a\\b</p>');
    // GitHub shows the escaped Markdown as the same text.
    expect(renderMarkdown(one)).toContain('set\\_memory\\_\\* and set\\_direct\\_map\\_\\*');
  });

  it('lists every section and subsection in the table of contents of index.html', () => {
    const index = site.get('index.html')!;
    const contents = index.slice(index.indexOf('<h2>Contents</h2>'));
    for (const id of ['overview', 'escaping', 'permissions', 'p1-no-leaf-writable-and-executable']) expect(contents).toContain(`#${id}"`);
  });

  it('indexes every section for search, with its page, title and own text', () => {
    const window: { PTSPEC_SEARCH_INDEX?: { id: string; href: string; title: string; where: string; text: string }[] } = {};
    runInNewContext(site.get('search-index.js')!, { window });
    const entries = window.PTSPEC_SEARCH_INDEX!;
    expect(entries.map((e) => e.id)).toEqual(['overview', 'escaping', 'permissions', 'p1-no-leaf-writable-and-executable']);
    const p1 = entries.find((e) => e.id === P1.id)!;
    expect(p1).toMatchObject({ href: `permissions.html#${P1.id}`, title: P1.title, where: 'Permissions' });
    expect(p1.text).toContain('No W+X mapping');
    expect(p1.text).toContain('A walk of pgd <-> pte & co');
    expect(entries.find((e) => e.id === 'permissions')!.text).toBe('The P family.');
  });

  it('refuses a link to no anchor, a repeated id and a section whose page would be index.html', () => {
    const withPara = (text: string): SpecDocument => ({ ...DOC, intro: [{ kind: 'para', text }] });
    expect(() => renderSite(withPara('[gone](#nowhere)'))).toThrow(/#nowhere/);
    expect(() => renderMarkdown(withPara('[gone](#nowhere)'))).toThrow(/#nowhere/);
    const twice: SpecDocument = { ...DOC, sections: [...DOC.sections, { kind: 'section', id: 'escaping', title: 'Again', blocks: [] }] };
    expect(() => renderSite(twice)).toThrow(/escaping is used twice/);
    const index: SpecDocument = { title: 't', intro: [], sections: [{ kind: 'section', id: 'index', title: 'Index', blocks: [] }] };
    expect(() => renderSite(index)).toThrow(/index\.html/);
  });
});

describe('docs/markdown.ts', () => {
  const lines = markdown.split('\n');

  it('puts an explicit anchor before every heading and figure, and every link lands on one', () => {
    const defined = [...markdown.matchAll(/^<a id="([^"]+)"><\/a>$/gm)].map((m) => m[1]!);
    expect(defined).toEqual(anchors(DOC));
    const targets = [...markdown.matchAll(/\]\(#([^)]+)\)/g)].map((m) => m[1]!);
    expect(targets.length).toBeGreaterThan(6);
    for (const t of targets) expect(defined).toContain(t);
    expect(lines[lines.indexOf('<a id="escaping"></a>') + 1]).toBe('### Escaping');
    expect(lines[lines.indexOf(`<a id="${P1.id}"></a>`) + 1]).toBe('### P1 no\\_leaf\\_writable\\_and\\_executable');
  });

  it('has a table of contents of every section and subsection', () => {
    const toc = lines.slice(lines.indexOf('## Contents') + 2, lines.indexOf('## Contents') + 6);
    expect(toc).toEqual([
      '- [Overview \\| &lt;intro>](#overview)',
      '  - [Escaping](#escaping)',
      '- [Permissions](#permissions)',
      `  - [P1 no\\_leaf\\_writable\\_and\\_executable](#${P1.id})`,
    ]);
  });

  it('escapes HTML, emphasis characters, backticks and block starts in text', () => {
    expect(markdown).toContain('# Tiny &lt;spec> &amp; co\n');
    expect(markdown).toContain('\n&lt;script>alert(1)&lt;/script> &amp; a lone \\` backtick, a \\*star and # no heading\n');
    expect(markdown).toContain('\n\\# not a heading either\n');
    expect(markdown).toContain('\n1. 1999\\. was a year\n2. \\- not a sub-list\n');
    expect(markdown).toContain('**Bold**, *emphasis* and `code`; 2 \\* 3 \\* 4 is not emphasis.');
  });

  it('writes tables whose cells keep their | and backticks', () => {
    const table = lines.slice(lines.indexOf('| a \\| b | code |'), lines.indexOf('| a \\| b | code |') + 4);
    expect(table).toEqual(['| a \\| b | code |', '| --- | --- |', '| x &lt; y &amp; z | ``a`b\\|c`` |', '| [back](#overview) | `\\|` |']);
    // Split on the | GitHub splits on (not backslash-escaped): every row has the head's two cells.
    for (const row of table) expect(row.split(/(?<!\\)\|/).length - 2).toBe(2);
  });

  it('fences code so no backtick inside closes it, and shows figures from html/figures/', () => {
    expect(markdown).toContain("```ts\n// the check\nconst bad = w && x; const s = '<b>';\n```");
    const fenced = renderMarkdown({ title: 't', intro: [{ kind: 'code', lang: 'text', text: '```\nin\n```' }], sections: [] });
    expect(fenced).toContain('````text\n```\nin\n```\n````');
    expect(markdown).toContain('<a id="fig-walk"></a>\n![A walk of pgd &lt;-> pte &amp; co](html/figures/walk.svg)\n\n**Figure.** A walk of `pgd` &lt;-> `pte` &amp; co');
  });

  it('re-reads as the inline text it was written from (code spans padded where CommonMark strips)', () => {
    const spans = renderMarkdown({ title: 't', intro: [{ kind: 'para', text: '`` `tick` `` and `` a`b ``' }], sections: [] });
    expect(spans).toContain('\n`` `tick` `` and ``a`b``\n');
    expect(parseInline('`` `tick` `` and ``a`b``')).toEqual([
      { kind: 'code', text: '`tick`' },
      { kind: 'text', text: ' and ' },
      { kind: 'code', text: 'a`b' },
    ]);
  });
});
