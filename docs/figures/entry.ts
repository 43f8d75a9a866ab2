/**
 * One x86-64 page-table entry drawn as its bit fields (Intel SDM vol. 3 §4.5, tables 4-15
 * to 4-20): NX, the ignored and protection-key bits, the frame, the software bits, G, PS
 * or PAT, D, A, PCD, PWT, US, RW, P, each with its bit number(s) and value. Every bit
 * position comes from the impl's encoding module (impl/arch/x86_64/entry.ts), whose masks
 * are the ones it writes its tables with, so the picture names the bits the tables hold.
 */
import { levelName, type PagingLevels } from '../../spec/address.ts';
import * as x86 from '../../impl/arch/x86_64/entry.ts';
import { INK, MUTED, box, group, text } from './svg.ts';
import type { TableEntry } from './tables.ts';

/** A table entry (PS clear), a 4K leaf (bit 7 is PAT) or a 2M/1G leaf (PS set, PAT at bit 12). */
export type EntryKind = 'table' | 'pte' | 'large';

export interface Field {
  /** What the field is, the same wherever it lives: `pat` is bit 7 of a PTE and bit 12 of a large leaf. */
  readonly key: string;
  readonly name: string;
  /** `63`, or `51:12` for a run of bits. */
  readonly bits: string;
  readonly value: string;
  /** A one-bit field's value; null for a wider one. */
  readonly set: boolean | null;
  /** The hardware ignores the field in this kind of entry (G and D of a table entry). */
  readonly ignored: boolean;
}

/** The lowest and highest bit of a mask of one 32-bit word; `word` 1 is the hi word (entry bits 32..63). */
function bitsOf(mask: number, word: 0 | 1): { readonly low: number; readonly high: number } {
  const m = mask >>> 0;
  return { low: 32 * word + 31 - Math.clz32(m & -m), high: 32 * word + 31 - Math.clz32(m) };
}

const bitsText = (b: { low: number; high: number }): string => (b.low === b.high ? String(b.low) : `${b.high}:${b.low}`);

/** The kind of an entry at `level` (1 = PTE table) with these words. */
export function entryKind(level: number, lo: number): EntryKind {
  if (level === 1) return 'pte';
  return (lo & x86._PAGE_PRESENT) !== 0 && (lo & x86._PAGE_PSE) !== 0 ? 'large' : 'table';
}

/** The frame an entry names: a large leaf's starts above its PAT bit. */
export function entryFrame(kind: EntryKind, lo: number, hi: number): number {
  return x86.entryPfn(kind === 'large' ? lo & ~x86._PAGE_PAT_LARGE : lo, hi);
}

/** The fields of an entry, from bit 63 down. */
export function entryFields(kind: EntryKind, lo: number, hi: number): Field[] {
  const flag = (key: string, name: string, mask: number, word: 0 | 1, ignored = false): Field => {
    const set = ((word === 0 ? lo : hi) & mask) !== 0;
    return { key, name, bits: bitsText(bitsOf(mask, word)), value: set ? '1' : '0', set, ignored };
  };
  const high = x86.HI_PKEY_MASK | x86.HI_SOFTW_MASK | x86.HI_IGNORED_MASK;
  const highBits = bitsOf(high, 1);
  const frameLo = kind === 'large' ? x86.LO_PFN_MASK & ~x86._PAGE_PAT_LARGE : x86.LO_PFN_MASK;
  const frameBits = { low: bitsOf(frameLo, 0).low, high: bitsOf(x86.HI_PFN_MASK, 1).high };
  const softw = bitsOf(x86._PAGE_SOFTW_MASK, 0);
  const table = kind === 'table';
  return [
    flag('nx', 'NX', x86.HI_NX, 1),
    { key: 'high', name: 'ign/PK', bits: bitsText(highBits), value: `0x${((hi & high) >>> (highBits.low - 32)).toString(16)}`, set: null, ignored: false },
    { key: 'pfn', name: 'PFN', bits: bitsText(frameBits), value: `0x${entryFrame(kind, lo, hi).toString(16)}`, set: null, ignored: false },
    ...(kind === 'large' ? [flag('pat', 'PAT', x86._PAGE_PAT_LARGE, 0)] : []),
    { key: 'sw', name: 'SW', bits: bitsText(softw), value: ((lo & x86._PAGE_SOFTW_MASK) >>> softw.low).toString(2).padStart(softw.high - softw.low + 1, '0'), set: null, ignored: false },
    flag('g', 'G', x86._PAGE_GLOBAL, 0, table),
    kind === 'pte' ? flag('pat', 'PAT', x86._PAGE_PAT, 0) : flag('ps', 'PS', x86._PAGE_PSE, 0),
    flag('d', 'D', x86._PAGE_DIRTY, 0, table),
    flag('a', 'A', x86._PAGE_ACCESSED, 0),
    flag('pcd', 'PCD', x86._PAGE_PCD, 0),
    flag('pwt', 'PWT', x86._PAGE_PWT, 0),
    flag('us', 'US', x86._PAGE_USER, 0),
    flag('rw', 'RW', x86._PAGE_RW, 0),
    flag('p', 'P', x86._PAGE_PRESENT, 0),
  ];
}

/** The entry as the kernel prints it: `0x` and 16 hex digits. */
export function entryHex(lo: number, hi: number): string {
  return x86.entryToHex({ lo, hi });
}

/** The width of a drawn entry (entryCells), whatever its kind. */
export const ENTRY_WIDTH = 640;
export const ENTRY_HEIGHT = 40;
const FLAG_WIDTH = 36;
const WIDE: Readonly<Record<string, number>> = { high: 54, sw: 44 };

const HIGHLIGHT = '#ea580c';
const SET_FILL = '#dbeafe';
const FRAME_FILL = '#ecfdf5';
const IGNORED_FILL = '#f3f4f6';

/** Where each field's cell lies, as offsets from the row's left edge: the frame takes what the fixed-width fields leave. */
function cellLayout(fields: readonly Field[]): { readonly field: Field; readonly x: number; readonly w: number }[] {
  const widthOf = (f: Field): number => WIDE[f.key] ?? FLAG_WIDTH;
  const frameWidth = ENTRY_WIDTH - fields.filter((f) => f.key !== 'pfn').reduce((w, f) => w + widthOf(f), 0);
  let at = 0;
  return fields.map((field) => {
    const w = field.key === 'pfn' ? frameWidth : widthOf(field);
    at += w;
    return { field, x: at - w, w };
  });
}

/** The middle of the cell of field `key`, as an offset from the row's left edge. */
export function cellMiddle(fields: readonly Field[], key: string): number {
  const c = cellLayout(fields).find((l) => l.field.key === key);
  if (c === undefined) throw new Error(`no field ${key}`);
  return c.x + c.w / 2;
}

/** The fields as a row of cells at (x, y), ENTRY_WIDTH wide. Fields whose key is in `highlight` get an orange frame. */
function entryCells(x: number, y: number, fields: readonly Field[], highlight: ReadonlySet<string> = new Set()): string {
  return cellLayout(fields).map(({ field: f, x: dx, w }) => {
    const fill = f.ignored ? IGNORED_FILL : f.key === 'pfn' ? FRAME_FILL : f.set === true ? SET_FILL : '#ffffff';
    const lit = highlight.has(f.key);
    const ink = f.ignored ? MUTED : INK;
    const at = x + dx;
    return group({ 'data-field': f.key, 'data-value': f.value }, [
      box(at, y, w, ENTRY_HEIGHT, { fill, stroke: lit ? HIGHLIGHT : '#94a3b8', strokeWidth: lit ? 2.2 : 1 }),
      text(at + w / 2, y + 11, f.name, { size: 10, anchor: 'middle', fill: ink, weight: 'bold' }),
      text(at + w / 2, y + 21, f.bits, { size: 8.5, anchor: 'middle', mono: true, fill: MUTED }),
      text(at + w / 2, y + 34, f.value, { size: f.key === 'pfn' ? 12.5 : 12, anchor: 'middle', mono: true, fill: ink, weight: 'bold' }),
    ]);
  }).join('');
}

/** A colour per level name, the same wherever a figure names the level. */
const LEVEL_COLOUR: Readonly<Record<string, string>> = { pgd: '#7c3aed', p4d: '#a21caf', pud: '#2563eb', pmd: '#0f766e', pte: '#c2410c' };

export function levelColour(name: string): string {
  return LEVEL_COLOUR[name] ?? INK;
}

/** The figures that draw entries are this wide: a label column on the left, the cells on the right. */
export const ROW_WIDTH = 900;
export const ROW_LEFT = 20;
export const CELLS_X = ROW_WIDTH - ROW_LEFT - ENTRY_WIDTH;

const KIND_TEXT: Readonly<Record<EntryKind, string>> = { table: 'table entry', pte: '4K leaf', large: 'large leaf' };

/**
 * One table entry as a row at y: `pmd[27]`, its kind and the table holding it (with
 * `where` after), its 64-bit word, then its cells. The group carries the entry's level,
 * index, table frame and word as data attributes, and `row` as data-row, for the tests.
 */
export function entryRow(y: number, row: string, e: TableEntry, levels: PagingLevels, where = '', highlight: ReadonlySet<string> = new Set()): string {
  const name = levelName(e.level, levels);
  const kind = entryKind(e.level, e.lo);
  return group({ 'data-row': row, 'data-level': e.level, 'data-index': e.index, 'data-table': `0x${e.tablePfn.toString(16)}`, 'data-entry': entryHex(e.lo, e.hi) }, [
    text(ROW_LEFT, y + 12, `${name}[${e.index}]`, { size: 14, weight: 'bold', fill: levelColour(name) }),
    text(ROW_LEFT + 92, y + 12, KIND_TEXT[kind], { size: 11.5 }),
    text(ROW_LEFT, y + 26, `in the table at pfn 0x${e.tablePfn.toString(16)}${where}`, { size: 10.5, fill: MUTED }),
    text(ROW_LEFT, y + 40, entryHex(e.lo, e.hi), { size: 12, mono: true, weight: 'bold' }),
    entryCells(CELLS_X, y, entryFields(kind, e.lo, e.hi), highlight),
  ]);
}

/** The key to the cells' colours, at baseline y: set bits, ignored fields, highlighted ones when the figure has any. */
export function entryLegend(y: number, highlighted?: string): string {
  const swatch = (x: number, fill: string, stroke: string, label: string): string =>
    box(x, y - 10, 12, 12, { fill, stroke, strokeWidth: stroke === HIGHLIGHT ? 2 : 1 }) + text(x + 18, y, label, { size: 11, fill: MUTED });
  return [
    swatch(ROW_LEFT, SET_FILL, '#94a3b8', 'bit set'),
    swatch(ROW_LEFT + 80, IGNORED_FILL, '#94a3b8', 'ignored in a table entry (G, D)'),
    highlighted === undefined ? '' : swatch(ROW_LEFT + 300, '#ffffff', HIGHLIGHT, highlighted),
    text(ROW_WIDTH - ROW_LEFT, y, 'bit positions: impl/arch/x86_64/entry.ts', { size: 11, fill: MUTED, anchor: 'end' }),
  ].join('');
}
