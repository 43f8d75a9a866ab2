/**
 * The few SVG pieces the specification's figures are drawn with: XML escaping, the
 * document (viewBox, <title>, light background), boxes, text, lines, paths and
 * arrowheads. The output is self-contained and the same on every machine: presentation
 * attributes rather than a <style> sheet (which would leak into an HTML page the SVG is
 * inlined in), generic font families only, coordinates rounded to two decimals.
 */

const MONO = "ui-monospace, 'DejaVu Sans Mono', Menlo, Consolas, monospace";
const SANS = "system-ui, 'DejaVu Sans', 'Helvetica Neue', Arial, sans-serif";

/** Colours shared by the figures: ink, muted text; and this module's lines and page. */
export const INK = '#1f2937';
export const MUTED = '#6b7280';
const LINE = '#9ca3af';
const PAGE = '#ffffff';

/** Text for an XML text node or a double-quoted attribute. */
export function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** A coordinate or length as written: at most two decimals, no `-0`. */
export function num(n: number): string {
  const r = Math.round(n * 100) / 100;
  return Object.is(r, -0) ? '0' : String(r);
}

export type Attrs = Readonly<Record<string, string | number | undefined>>;

function attrText(a: Attrs): string {
  return Object.entries(a)
    .filter((e): e is [string, string | number] => e[1] !== undefined)
    .map(([k, v]) => ` ${k}="${typeof v === 'number' ? num(v) : escapeXml(v)}"`)
    .join('');
}

/** An element; `children` is markup already (escape text with escapeXml or use `text`). */
function el(name: string, a: Attrs, children?: string): string {
  return children === undefined ? `<${name}${attrText(a)}/>` : `<${name}${attrText(a)}>${children}</${name}>`;
}

export function group(a: Attrs, children: readonly string[]): string {
  return el('g', a, children.join(''));
}

export interface TextStyle {
  readonly size?: number;
  readonly mono?: boolean;
  readonly anchor?: 'start' | 'middle' | 'end';
  readonly weight?: 'bold';
  readonly fill?: string;
  readonly italic?: boolean;
}

/** One line of text with its baseline at y. */
export function text(x: number, y: number, content: string, s: TextStyle = {}): string {
  return el('text', {
    x, y,
    'font-family': s.mono === true ? MONO : SANS,
    'font-size': s.size ?? 13,
    'text-anchor': s.anchor === undefined || s.anchor === 'start' ? undefined : s.anchor,
    'font-weight': s.weight,
    'font-style': s.italic === true ? 'italic' : undefined,
    fill: s.fill ?? INK,
  }, escapeXml(content));
}

/** The width a line of monospace text takes (its advance is 0.6 em in the usual monospace fonts). */
export function monoWidth(content: string, size: number): number {
  return content.length * size * 0.6;
}

export interface BoxStyle {
  readonly fill?: string;
  readonly stroke?: string;
  readonly strokeWidth?: number;
  readonly radius?: number;
  readonly dash?: string;
}

export function box(x: number, y: number, w: number, h: number, s: BoxStyle = {}): string {
  return el('rect', {
    x, y, width: w, height: h, rx: s.radius ?? 0,
    fill: s.fill ?? PAGE, stroke: s.stroke ?? LINE, 'stroke-width': s.strokeWidth ?? 1, 'stroke-dasharray': s.dash,
  });
}

export function line(x1: number, y1: number, x2: number, y2: number, stroke = LINE, width = 1, dash?: string): string {
  return el('line', { x1, y1, x2, y2, stroke, 'stroke-width': width, 'stroke-dasharray': dash });
}

export function path(d: string, stroke: string, width = 1, a: Attrs = {}): string {
  return el('path', { d, fill: 'none', stroke, 'stroke-width': width, ...a });
}

/** A filled arrowhead whose tip is at (x, y), pointing along `angle` (radians; 0 is to the right). */
export function arrowHead(x: number, y: number, angle: number, fill: string, size = 7): string {
  const back = (da: number): string => `${num(x - size * Math.cos(angle + da))},${num(y - size * Math.sin(angle + da))}`;
  return el('polygon', { points: `${num(x)},${num(y)} ${back(0.45)} ${back(-0.45)}`, fill });
}

/** A straight arrow from (x1, y1) to the tip at (x2, y2). */
export function arrow(x1: number, y1: number, x2: number, y2: number, stroke = INK, width = 1.2): string {
  return line(x1, y1, x2, y2, stroke, width) + arrowHead(x2, y2, Math.atan2(y2 - y1, x2 - x1), stroke);
}

export interface Figure {
  /** The figure's anchor id: also the prefix of the ids inside the SVG, unique in a page that inlines several. */
  readonly id: string;
  readonly width: number;
  readonly height: number;
  /** The accessible name (<title>) and a longer description (<desc>). */
  readonly title: string;
  readonly description: string;
}

/** A whole <svg> element: viewBox and size, <title> and <desc>, a light background, then `body`. */
export function svgDocument(f: Figure, body: readonly string[]): string {
  const titleId = `${f.id}-title`;
  const descId = `${f.id}-desc`;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${num(f.width)} ${num(f.height)}" width="${num(f.width)}" height="${num(f.height)}" role="img" aria-labelledby="${titleId} ${descId}">`,
    el('title', { id: titleId }, escapeXml(f.title)),
    el('desc', { id: descId }, escapeXml(f.description)),
    box(0, 0, f.width, f.height, { fill: PAGE, stroke: 'none' }),
    ...body,
    '</svg>',
  ].join('\n');
}
