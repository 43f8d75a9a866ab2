/**
 * The layers figure: ptspec's folders and who may import whom, drawn from docs/layers.ts
 * LAYERS (the table test/layering.ts enforces), so it cannot disagree with the rules. Each
 * folder is a row, ranked by the longest import path below it (a longest-path layering:
 * spec/ at the bottom), and each rule is an arc on the right from the importer's box down
 * to the box it may import, in the importer's colour. test/ may import everything and is
 * left out.
 */
import { LAYERS, LAYER_ROLES, type Layer } from '../layers.ts';
import { INK, MUTED, arrowHead, box, group, monoWidth, num, path, svgDocument, text } from './svg.ts';

export const LAYERS_ID = 'figure-layers';

/** The folders drawn: every layer but test/. */
export const DRAWN: readonly Layer[] = (Object.keys(LAYERS) as Layer[]).filter((l) => l !== 'test');

/** The rules between drawn folders, as [importer, imported] pairs in LAYERS order. */
export function layerEdges(): [Layer, Layer][] {
  return DRAWN.flatMap((from) => (LAYERS[from] as readonly Layer[]).filter((to) => to !== from && DRAWN.includes(to)).map((to): [Layer, Layer] => [from, to]));
}

/** Each folder's rank: 0 when it imports nothing of ours, else one more than the highest it may import. */
export function layerRanks(): ReadonlyMap<Layer, number> {
  const rank = new Map<Layer, number>();
  const edges = layerEdges();
  const visit = (l: Layer, path: readonly Layer[]): number => {
    const known = rank.get(l);
    if (known !== undefined) return known;
    if (path.includes(l)) throw new Error(`the layers import each other in a cycle: ${[...path, l].join(' → ')}`);
    const below = edges.filter(([from]) => from === l).map(([, to]) => visit(to, [...path, l]));
    const r = below.length === 0 ? 0 : 1 + Math.max(...below);
    rank.set(l, r);
    return r;
  };
  for (const l of DRAWN) visit(l, []);
  return rank;
}

/** One colour per drawn folder, in LAYERS order. */
const PALETTE = ['#475569', '#2563eb', '#7c3aed', '#c2410c', '#0f766e', '#b45309', '#be123c', '#4d7c0f', '#0369a1', '#a21caf', '#854d0e'];

const WIDTH = 900;
const ROW = 50;
const BOX_X = 96;
const BOX_W = 430;
const BOX_H = 40;
const TOP = 70;

/** The role text without its Markdown code marks (`ptspec`). */
const plain = (s: string): string => s.replace(/`/g, '');

export function layersFigure(): string {
  const ranks = layerRanks();
  const edges = layerEdges();
  // Bottom row first: by rank, then in LAYERS order.
  const order = [...DRAWN].sort((a, b) => ranks.get(a)! - ranks.get(b)! || DRAWN.indexOf(a) - DRAWN.indexOf(b));
  const rows = order.length;
  const boxY = (l: Layer): number => TOP + (rows - 1 - order.indexOf(l)) * ROW;
  const colour = (l: Layer): string => PALETTE[DRAWN.indexOf(l) % PALETTE.length]!;
  const edgeX = BOX_X + BOX_W;
  const inY = (l: Layer): number => boxY(l) + BOX_H * 0.3;
  const outY = (l: Layer): number => boxY(l) + BOX_H * 0.7;
  const height = TOP + rows * ROW + 34;
  const body: string[] = [
    text(20, 26, "ptspec's layers: who may import whom", { size: 16, weight: 'bold' }),
    text(20, 45, 'an arc from A down to B: A/ may import B/ (docs/layers.ts LAYERS, enforced by test/layering.ts); rows by longest import path', { size: 12, fill: MUTED }),
  ];
  // A band per rank, its number on the left.
  for (const r of new Set(order.map((l) => ranks.get(l)!))) {
    const members = order.filter((l) => ranks.get(l) === r);
    const top = Math.min(...members.map(boxY)) - (ROW - BOX_H) / 2;
    const bottom = Math.max(...members.map(boxY)) + BOX_H + (ROW - BOX_H) / 2;
    body.push(box(12, top, WIDTH - 24, bottom - top, { fill: r % 2 === 0 ? '#f8fafc' : '#ffffff', stroke: 'none' }));
    body.push(text(24, (top + bottom) / 2 + 4, `rank ${r}`, { size: 11, fill: MUTED, mono: true }));
  }
  for (const l of order) {
    const y = boxY(l);
    const imports = edges.filter(([from]) => from === l).map(([, to]) => to);
    body.push(group({ 'data-layer': l, 'data-rank': ranks.get(l)! }, [
      box(BOX_X, y, BOX_W, BOX_H, { fill: '#ffffff', stroke: colour(l), strokeWidth: 1.6, radius: 5 }),
      box(BOX_X, y, 6, BOX_H, { fill: colour(l), stroke: 'none' }),
      text(BOX_X + 14, y + 16, `${l}/`, { size: 13.5, mono: true, weight: 'bold', fill: colour(l) }),
      text(BOX_X + 14 + monoWidth(`${l}/ `, 13.5), y + 16, plain(LAYER_ROLES[l]), { size: 12.5 }),
      text(BOX_X + 14, y + 32, imports.length === 0 ? 'imports nothing of ours' : `imports ${imports.join(', ')}`, { size: 10.5, mono: true, fill: MUTED }),
    ]));
  }
  // Longer arcs bulge further, so arcs nested in one another never cross.
  for (const [from, to] of edges) {
    const y1 = outY(from);
    const y2 = inY(to);
    const bulge = 16 + (y2 - y1) * 0.72;
    const d = `M${num(edgeX)},${num(y1)} C${num(edgeX + bulge)},${num(y1)} ${num(edgeX + bulge)},${num(y2)} ${num(edgeX + 2)},${num(y2)}`;
    body.push(path(d, colour(from), 1.3, { 'data-from': from, 'data-to': to, opacity: 0.85 }));
  }
  for (const l of order) if (edges.some(([, to]) => to === l)) body.push(arrowHead(edgeX + 1, inY(l), Math.PI, INK, 8));
  return svgDocument({
    id: LAYERS_ID,
    width: WIDTH,
    height,
    title: "ptspec's layers and their import rules",
    description: order.slice().reverse().map((l) => `${l}/ (rank ${ranks.get(l)!}) may import ${LAYERS[l].filter((to) => to !== l).join(', ') || 'nothing of ours'}`).join('; ') + '.',
  }, body);
}
