/**
 * The specification document's figures (docs/figures/): each a well-formed, self-contained
 * SVG, the same on every call, showing real facts. The facts are checked against what the
 * figure did not compute itself: the layer arcs against LAYERS, the walk's entries against
 * the words in the impl's pool and the spec's tableIndex, the split and collapse against a
 * fresh run read through test/raw-entry.ts, the KPTI pair against a fresh run's top-level
 * tables and abstract state.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FIGURES } from '../docs/figures/index.ts';
import { COLLAPSE_ID, HUGEPAGE_SCENARIO, SPLIT_ID, hugepageCommands } from '../docs/figures/hugepage.ts';
import { KPTI_ID, USER_PAGE, processCommands } from '../docs/figures/kpti.ts';
import { DRAWN, LAYERS_ID, layerEdges, layerRanks } from '../docs/figures/layers.ts';
import { bootScenario, bootedX86 } from '../docs/figures/systems.ts';
import { WALK_ID, walkedPage } from '../docs/figures/walk.ts';
import { LAYERS, LAYER_ROLES, type Layer } from '../docs/layers.ts';
import * as x86 from '../impl/arch/x86_64/entry.ts';
import { PAGES, kernelLayout, tableIndex, vpnToHex, type Level } from '../spec/address.ts';
import { applyCommand, type Command } from '../spec/commands.ts';
import type { ProcessRoots } from '../spec/system.ts';
import { IMAGE } from '../spec/x86-64-layout.ts';
import { rawEntry } from './raw-entry.ts';

interface XmlElement {
  readonly name: string;
  readonly attrs: Readonly<Record<string, string>>;
  readonly children: XmlElement[];
  text: string;
}

/**
 * A strict parse of the markup the figures write: one root element, every tag closed in
 * order, attributes double-quoted, text with only the five XML entities. Throws on
 * anything else, so a figure that parses is well-formed XML.
 */
function parseXml(src: string): XmlElement {
  const root: XmlElement = { name: '#document', attrs: {}, children: [], text: '' };
  const open: XmlElement[] = [root];
  for (const m of src.matchAll(/<[^>]*>|[^<]+/g)) {
    const token = m[0];
    const top = open[open.length - 1]!;
    if (!token.startsWith('<')) {
      if (/&(?!(?:amp|lt|gt|quot|apos);)/.test(token)) throw new Error(`bad entity in text ${JSON.stringify(token)}`);
      top.text += token.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&amp;/g, '&');
      continue;
    }
    const close = /^<\/([\w:-]+)\s*>$/.exec(token);
    if (close !== null) {
      if (top.name !== close[1]) throw new Error(`</${close[1]}> closes <${top.name}>`);
      open.pop();
      continue;
    }
    const tag = /^<([\w:-]+)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>$/.exec(token);
    if (tag === null) throw new Error(`malformed tag ${token}`);
    const attrs: Record<string, string> = {};
    for (const a of tag[2]!.matchAll(/([\w:-]+)="([^"]*)"/g)) {
      if (a[1]! in attrs) throw new Error(`attribute ${a[1]} twice in ${token}`);
      if (/&(?!(?:amp|lt|gt|quot|apos);)/.test(a[2]!)) throw new Error(`bad entity in ${token}`);
      attrs[a[1]!] = a[2]!.replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
    }
    const e: XmlElement = { name: tag[1]!, attrs, children: [], text: '' };
    if (open.length === 1 && root.children.length > 0) throw new Error('more than one root element');
    top.children.push(e);
    if (tag[3] !== '/') open.push(e);
  }
  if (open.length !== 1) throw new Error(`<${open[open.length - 1]!.name}> is never closed`);
  if (root.text.trim() !== '') throw new Error('text outside the root element');
  return root.children[0]!;
}

/** Every element below `e` (itself included) in document order. */
function all(e: XmlElement): XmlElement[] {
  return [e, ...e.children.flatMap(all)];
}

/** All the text below `e`. */
function textOf(e: XmlElement): string {
  return e.text + e.children.map(textOf).join(' ');
}

const byAttr = (e: XmlElement, name: string): XmlElement[] => all(e).filter((x) => name in x.attrs);
const svgOf = (id: string): XmlElement => parseXml(FIGURES.find((f) => f.id === id)!.svg());
const hexWord = (lo: number, hi: number): string => x86.entryToHex({ lo, hi });

describe('the figures', () => {
  it('are held to a parser that refuses what is not well-formed', () => {
    expect(parseXml('<svg a="1"><g><text>x &amp; y</text></g><rect/></svg>').children.map((c) => c.name)).toEqual(['g', 'rect']);
    for (const bad of ['<svg><g></svg>', '<svg>a & b</svg>', '<svg x=1/>', '<svg/><svg/>', '<svg><g>', '<svg a="1" a="2"/>']) expect(() => parseXml(bad), bad).toThrow();
  });

  it('are listed once each, with anchor ids and .svg files of their own', () => {
    expect(FIGURES.map((f) => f.id)).toEqual([LAYERS_ID, WALK_ID, SPLIT_ID, COLLAPSE_ID, KPTI_ID]);
    for (const f of FIGURES) {
      expect(f.id).toMatch(/^[a-z0-9-]+$/);
      expect(f.file).toMatch(/^[a-z0-9-]+\.svg$/);
      expect(f.caption.length).toBeGreaterThan(80);
    }
    expect(new Set(FIGURES.map((f) => f.file)).size).toBe(FIGURES.length);
  });

  it.each(FIGURES.map((f) => [f.id, f] as const))('%s is a well-formed, self-contained SVG with a viewBox and a title, the same on every call', (_, f) => {
    const text = f.svg();
    expect(f.svg()).toBe(text);
    const svg = parseXml(text);
    expect(svg.name).toBe('svg');
    expect(svg.attrs['xmlns']).toBe('http://www.w3.org/2000/svg');
    expect(svg.attrs['viewBox']).toMatch(/^0 0 \d+(\.\d+)? \d+(\.\d+)?$/);
    expect(Number(svg.attrs['viewBox']!.split(' ')[2])).toBeGreaterThanOrEqual(800);
    expect(svg.children[0]!.name).toBe('title');
    expect(svg.children[0]!.attrs['id']).toBe(`${f.id}-title`);
    expect(svg.children[0]!.text.length).toBeGreaterThan(10);
    // Nothing runs, nothing is fetched: no script, no style sheet, no link, no URL but the namespace.
    const names = new Set(all(svg).map((e) => e.name));
    for (const banned of ['script', 'style', 'image', 'use', 'foreignObject', 'a']) expect(names.has(banned)).toBe(false);
    expect(text.replace('http://www.w3.org/2000/svg', '')).not.toMatch(/https?:|url\(|href|@import|\bon[a-z]+=/);
    // Numbers are shown in monospace.
    expect(all(svg).some((e) => e.name === 'text' && (e.attrs['font-family'] ?? '').includes('monospace'))).toBe(true);
  });
});

describe('the layers figure', () => {
  const svg = svgOf(LAYERS_ID);

  it('has an arc for each rule of LAYERS between the drawn folders, and none other', () => {
    const arcs = byAttr(svg, 'data-from').map((e) => `${e.attrs['data-from']} → ${e.attrs['data-to']}`).sort();
    const rules = DRAWN.flatMap((from) => LAYERS[from].filter((to) => to !== from && to !== 'test').map((to) => `${from} → ${to}`)).sort();
    expect(arcs).toEqual(rules);
    expect(arcs).toHaveLength(layerEdges().length);
  });

  it('draws every folder but test/, each ranked above every folder it may import, spec/ at rank 0', () => {
    const ranks = new Map(byAttr(svg, 'data-layer').map((e) => [e.attrs['data-layer'] as Layer, Number(e.attrs['data-rank'])]));
    expect([...ranks.keys()].sort()).toEqual((Object.keys(LAYERS) as Layer[]).filter((l) => l !== 'test').sort());
    expect(ranks.get('spec')).toBe(0);
    for (const [from, to] of layerEdges()) expect(ranks.get(from)!).toBeGreaterThan(ranks.get(to)!);
    expect(Object.fromEntries(ranks)).toEqual(Object.fromEntries(layerRanks()));
  });

  it("describes each folder with its README's title", () => {
    const root = resolve(import.meta.dirname, '..');
    for (const layer of Object.keys(LAYERS) as Layer[]) {
      const title = readFileSync(join(root, layer, 'README.md'), 'utf8').split('\n')[0]!;
      expect(title).toBe(`# ${layer}/ — ${LAYER_ROLES[layer]}`);
    }
  });
});

describe('the walk figure', () => {
  const svg = svgOf(WALK_ID);
  const { sys } = bootedX86();
  const vpn = kernelLayout(sys.config.levels).kernelText + IMAGE.bssStart;
  const rows = byAttr(svg, 'data-level');

  it("walks idt_table's page, four levels from init_mm's pgd down to its PTE, at the spec's table indices", () => {
    expect(walkedPage(sys.config.levels)).toBe(vpn);
    expect(byAttr(svg, 'data-vpn')[0]!.attrs['data-vpn']).toBe(vpnToHex(vpn));
    expect(rows.map((r) => Number(r.attrs['data-level']))).toEqual([4, 3, 2, 1]);
    for (const r of rows) expect(Number(r.attrs['data-index'])).toBe(tableIndex(vpn, Number(r.attrs['data-level']) as Level));
    const indices = byAttr(svg, 'data-address-field').filter((e) => e.attrs['data-address-field']!.endsWith(' index'));
    expect(indices.map((e) => Number(e.attrs['data-value']))).toEqual([4, 3, 2, 1].map((l) => tableIndex(vpn, l as Level)));
  });

  it("shows at each level the entry word the impl's table holds, each table the frame of the entry above, the last the page's PTE", () => {
    const pool = sys.tables();
    expect(rows[0]!.attrs['data-table']).toBe(`0x${pool.slotPfn(0).toString(16)}`);
    rows.forEach((r, i) => {
      const slot = Number(r.attrs['data-table']) - pool.poolPfn;
      const off = slot * 1024 + Number(r.attrs['data-index']) * 2;
      const lo = pool.words[off]!;
      const hi = pool.words[off + 1]!;
      expect(r.attrs['data-entry']).toBe(hexWord(lo, hi));
      if (i + 1 < rows.length) expect(Number(rows[i + 1]!.attrs['data-table'])).toBe(x86.entryPfn(lo, hi));
    });
    const pte = rawEntry(sys, vpn);
    expect(pte.level).toBe(1);
    expect(rows[3]!.attrs['data-entry']).toBe(hexWord(pte.lo, pte.hi));
  });

  it("labels each entry's bits with their values: NX, the frame, PS in the table entries and PAT in the PTE, and the walk's outcome", () => {
    for (const r of rows) {
      const field = (key: string): string | undefined => byAttr(r, 'data-field').find((f) => f.attrs['data-field'] === key)?.attrs['data-value'];
      const word = BigInt(r.attrs['data-entry']!);
      expect(field('nx')).toBe(String(word >> 63n));
      expect(field('p')).toBe('1');
      expect(field(r.attrs['data-level'] === '1' ? 'pat' : 'ps')).toBe(String((word >> 7n) & 1n));
      expect(Number(field('pfn'))).toBe(Number((word >> 12n) & 0xffffffffffn));
    }
    const t = sys.translate(0, vpn);
    if (!t.ok) throw new Error('idt_table is not mapped');
    expect(textOf(svg)).toContain(`physical address 0x${(t.value.pfn * 4096).toString(16)}`);
    expect(textOf(svg)).toContain('read-only');
    expect(textOf(svg)).toContain('not executable');
  });
});

describe('the split and collapse figures', () => {
  // A run of its own, read through test/raw-entry.ts, to hold the figures to.
  const { sys } = bootScenario(HUGEPAGE_SCENARIO);
  const vpn = kernelLayout(sys.config.levels).pageOffset;
  const c = hugepageCommands(vpn);
  const run = (cmd: Command): void => expect(applyCommand(sys, cmd).ok).toBe(true);
  run(c.setWt);
  const large = rawEntry(sys, vpn);
  run(c.split);
  const pieces = Array.from({ length: PAGES['2M'] }, (_, i) => rawEntry(sys, vpn + i));
  run(c.collapse);
  const collapsed = rawEntry(sys, vpn);
  const entryOf = (svg: XmlElement, row: string): bigint => BigInt(byAttr(svg, 'data-row').find((e) => e.attrs['data-row'] === row)!.attrs['data-entry']!);
  const word = (e: { lo: number; hi: number }): bigint => x86.entryToBigInt(e);
  const PAT7 = BigInt(x86._PAGE_PAT);
  const PAT12 = BigInt(x86._PAGE_PAT_LARGE);
  const NX = 1n << 63n;

  it("split: the 2M leaf with PAT at bit 12 before, 4K pieces with PAT at bit 7 after, NX and the frames carried, as the tables hold them", () => {
    const svg = svgOf(SPLIT_ID);
    expect(large.level).toBe(2);
    expect(entryOf(svg, 'before-pmd')).toBe(word(large));
    expect(entryOf(svg, 'before-pmd') & PAT12).toBe(PAT12);
    expect(entryOf(svg, 'before-pmd') & BigInt(x86._PAGE_PSE)).toBe(BigInt(x86._PAGE_PSE));
    const base = x86.decodeLeaf(2, large.lo, large.hi).pfn;
    for (const i of [0, 1, 511]) {
      const piece = entryOf(svg, `after-pte-${i}`);
      expect(piece).toBe(word(pieces[i]!));
      expect(pieces[i]!.level).toBe(1);
      expect(piece & PAT7).toBe(PAT7);
      expect(piece & NX).toBe(entryOf(svg, 'before-pmd') & NX);
      expect(x86.decodeLeaf(1, pieces[i]!.lo, pieces[i]!.hi).pfn).toBe(base + i);
    }
    expect(pieces.every((p) => (p.lo & x86._PAGE_PAT) !== 0)).toBe(true);
    expect(textOf(svg)).toContain('bit 7 = 1 in 512 of the 512 PTEs');
    expect(textOf(svg)).toContain('frames: 512 of the 512 PTEs');
  });

  it('collapse: the 512 pieces before, one 2M leaf with PAT back at bit 12 after, the PTE table freed', () => {
    const svg = svgOf(COLLAPSE_ID);
    for (const i of [0, 1, 511]) expect(entryOf(svg, `before-pte-${i}`)).toBe(word(pieces[i]!));
    expect(collapsed.level).toBe(2);
    expect(entryOf(svg, 'after-pmd')).toBe(word(collapsed));
    expect(entryOf(svg, 'after-pmd') & PAT12).toBe(PAT12);
    expect(word(collapsed)).toBe(word(large));
    expect(textOf(svg)).toContain('the PTE table is freed');
  });
});

describe('the KPTI figure', () => {
  const svg = svgOf(KPTI_ID);
  // A run of its own: the same setup, its tables and abstract state read directly.
  const { sys, scenario } = bootScenario('x86-64', true);
  const made = applyCommand(sys, { op: 'createProcess' });
  if (!made.ok) throw new Error(made.error.message);
  const roots = made.value as ProcessRoots;
  const first = (use: string): number => scenario.frames.find((r) => r.use === use)!.pfn;
  for (const cmd of processCommands(roots.pid, first('user'), first('free'))) expect(applyCommand(sys, cmd).ok).toBe(true);
  const levels = sys.config.levels;
  const top = (root: number, idx: number): string => {
    const off = sys.isolation!.slotOf(root) * 1024 + idx * 2;
    return hexWord(sys.tables().words[off]!, sys.tables().words[off + 1]!);
  };
  const rows = byAttr(svg, 'data-slot').map((e) => {
    const [kernel, user] = byAttr(e, 'data-source');
    return { idx: Number(e.attrs['data-slot']), kernel: kernel!.attrs, user: user!.attrs };
  });

  it("lists every slot either copy uses, with the entry each copy's top-level table holds", () => {
    const used = Array.from({ length: 512 }, (_, i) => i).filter((i) => [roots.kernelRoot, roots.userRoot].some((r) => BigInt(top(r, i)) !== 0n));
    expect(rows.map((r) => r.idx)).toEqual(used);
    for (const r of rows) {
      expect(r.kernel['data-entry']).toBe(top(roots.kernelRoot, r.idx));
      expect(r.user['data-entry']).toBe(top(roots.userRoot, r.idx));
    }
  });

  it("names each slot's source as spec/roots.ts has it: init_mm's for the pgd's kernel half, root 1's for the user copy's, the pgd's for the LDT slot", () => {
    const ldt = tableIndex(kernelLayout(levels).ldtRemap, levels);
    const cea = tableIndex(kernelLayout(levels).cpuEntryArea, levels);
    const user = tableIndex(USER_PAGE, levels);
    const row = (idx: number) => rows.find((r) => r.idx === idx)!;
    for (const r of rows.filter((x) => x.idx >= 256 && x.idx !== ldt)) expect(r.kernel['data-source']).toBe("= init_mm's entry");
    expect(row(cea).user['data-source']).toBe("= root 1's entry");
    expect(row(ldt).user['data-source']).toBe(`= the pgd's (root ${roots.kernelRoot}) entry`);
    // The user half: the pgd's entry NX-poisoned, the user copy's the same without NX.
    const k = BigInt(row(user).kernel['data-entry']!);
    expect(k >> 63n).toBe(1n);
    expect(BigInt(row(user).user['data-entry']!)).toBe(k & ~(1n << 63n));
    expect(row(user).kernel['data-source']).toBe('own, NX-poisoned');
  });

  it("shows the user copy's PTI clones and the user page in both copies as the abstract state has them", () => {
    const state = sys.abstract();
    const text = textOf(svg);
    for (const region of ['cpu_entry_area', 'espfix', 'kernel text']) expect(text).toContain(region);
    const page = (root: number) => state.roots.find((r) => r.id === root)!.leaves.find((l) => l.vpn === USER_PAGE)!;
    expect(page(roots.kernelRoot).prot.execUser).toBe(false);
    expect(page(roots.userRoot).prot.execUser).toBe(true);
    expect(text).toContain(`${vpnToHex(USER_PAGE)} 4K → pfn 0x${page(roots.userRoot).pfn.toString(16)}  USR ro NX WB`);
    expect(text).toContain(`${vpnToHex(USER_PAGE)} 4K → pfn 0x${page(roots.userRoot).pfn.toString(16)}  USR ro x WB`);
  });
});
