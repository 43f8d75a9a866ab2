/**
 * Parse x86 ptdump text (arch/x86/mm/dump_pagetables.c, note_page/printk_prot) into
 * typed dumps, or reject it with the line number and the reason. arm64 text
 * (arch/arm64/mm/ptdump.c) is read too, into the same shape (types.ts, Arm64Attrs).
 *
 * Every input line ends up somewhere: in a dump (range, marker, gap) or in `other` with
 * its kind (see lines.ts). A line whose payload starts like ptdump text must parse.
 *
 * Grouping. Non-ptdump `text` and `comment` lines split the input into segments; inside a
 * segment, each grep view (`current_kernel`, `current_user`, '' for none) is one dump, and
 * a `---[ User Space ]---` marker after ranges starts a new one (a second walk printed
 * right after the first).
 *
 * What a dump must satisfy, as note_page prints it (else: corrupt):
 * - start < end, except that the top of the address space prints as 0 (the unsigned
 *   long wraps), and nothing can follow that range;
 * - the size column equals end - start, in the kernel's form (divided by 1024 while exact);
 * - start and end are multiples of the printed level's entry size (geometry.ts), and
 *   x86-64 boundaries are canonical (4- or 5-level, detected from the addresses);
 * - ranges ascend without overlapping, and each starts where the previous one ended,
 *   unless a gap line (`... N entries skipped ...`, `...`, grep's `--`) stands between
 *   them or the dump is a fragment (no marker line at all: grep output such as
 *   `grep GLB current_user`), where gaps are allowed but overlaps are not.
 */
import { isCanonical, lowerHalfEnd, type Vpn } from '../../spec/address.ts';
import { parseFlagTokens } from './flags.ts';
import { addressText, addressTop, kernelSize, levelPages } from './geometry.ts';
import { classifyLine } from './lines.ts';
import {
  DUMP_LEVELS, SIZE_UNITS, type Arm64Attrs, type Dump, type DumpArch, type DumpGap, type DumpLevel, type DumpParseError, type DumpRange, type DumpSection,
  type OtherLine, type Paging, type ParseResult, type PtFlags, type SizeUnit,
} from './types.ts';

export interface ParseOptions {
  /** Force 4- or 5-level geometry for 64-bit dumps instead of detecting it. */
  readonly paging?: '4-level' | '5-level';
  /** Treat every dump as a fragment: allow gaps between ranges (never overlaps). */
  readonly fragment?: boolean;
  /** Reject `text` lines instead of keeping them (input must be pure ptdump output). */
  readonly strict?: boolean;
}

interface RawRange {
  readonly line: number;
  readonly arch: DumpArch;
  /** Address text without `0x`, 16 or 8 hex digits. */
  readonly startHex: string;
  readonly endHex: string;
  readonly size: { readonly value: number; readonly unit: SizeUnit };
  readonly level: DumpLevel;
  readonly flags: PtFlags | null;
  readonly arm64?: Arm64Attrs;
}

type Item =
  | { readonly kind: 'range'; readonly range: RawRange }
  | { readonly kind: 'marker'; readonly line: number; readonly name: string }
  | { readonly kind: 'gap'; readonly gap: DumpGap }
  /** A range line that did not parse: its error is recorded; later lines must not cascade. */
  | { readonly kind: 'broken'; readonly line: number };

interface Builder {
  readonly view: string;
  readonly segment: number;
  readonly items: Item[];
}

const ARM64_LEVELS = new Set(['PGD', 'P4D', 'PUD', 'PMD', 'PTE']);
const RANGE_LINE = /^0x([0-9a-fA-F]+)-0x([0-9a-fA-F]+)\s+(\d+)(\S)(?:\s+(.*))?$/;
const ARM64_MEM_TYPE = /^(?:MEM|DEVICE)\/[A-Za-z-]+$/;
const ARM64_TOKENS = new Set(['F', 'USR', 'RW', 'ro', 'RO', 'NX', 'x', 'X', 'SHD', 'AF', 'NG', 'CON', 'BLK', 'UXN', 'GP']);

/**
 * arm64 attributes (arch/arm64/mm/ptdump.c pte_bits: F USR RW|ro NX|x SHD AF NG CON BLK
 * UXN GP <memory type>; later kernels print RO and X). Nothing printed: not present. `F`
 * (valid bit clear) is not present to the MMU either, whatever else is printed.
 */
function parseArm64Attrs(tokens: readonly string[]): { flags: PtFlags | null; arm64: Arm64Attrs } | string {
  const unknown = tokens.find((t) => !ARM64_TOKENS.has(t) && !ARM64_MEM_TYPE.test(t));
  if (unknown !== undefined) return `unknown arm64 attribute ${JSON.stringify(unknown)}`;
  const has = (...ts: string[]): boolean => ts.some((t) => tokens.includes(t));
  const arm64: Arm64Attrs = {
    uxn: has('UXN'), contiguous: has('CON'), accessed: has('AF'), shared: has('SHD'), guarded: has('GP'),
    memType: tokens.find((t) => ARM64_MEM_TYPE.test(t)) ?? '', tokens,
  };
  if (tokens.length === 0 || has('F')) return { flags: null, arm64 };
  if (!has('RW', 'ro', 'RO')) return 'present arm64 entry without RW or ro';
  if (!has('NX', 'x', 'X')) return 'present arm64 entry without NX or x';
  const flags: PtFlags = { user: has('USR'), rw: has('RW'), pwt: false, pcd: false, pse: has('BLK'), pat: false, global: !has('NG'), nx: has('NX') };
  return { flags, arm64 };
}

function parseRangePayload(payload: string, line: number): RawRange | string {
  const m = RANGE_LINE.exec(payload);
  if (!m) return 'not a ptdump range line (expected 0x<start>-0x<end> <size><unit> <flags> <level>)';
  const [, startHex, endHex, sizeText, unitText, rest] = m as unknown as [string, string, string, string, string, string | undefined];
  // Splitting on ' ' is several times faster than on /\s+/; tabs only come from mangled copies.
  const tokens = rest === undefined ? [] : rest.split(rest.includes('\t') ? /\s+/ : ' ').filter((t) => t !== '');
  if (startHex.length !== endHex.length || (startHex.length !== 16 && startHex.length !== 8)) {
    return `addresses must both have 16 (x86-64) or 8 (32-bit) hex digits, got ${startHex.length} and ${endHex.length}`;
  }
  if (!SIZE_UNITS.includes(unitText as SizeUnit)) return `unknown size unit ${JSON.stringify(unitText)} (the kernel uses B K M G T P E)`;
  const size = { value: Number(sizeText), unit: unitText as SizeUnit };
  if (tokens.length > 0 && ARM64_LEVELS.has(tokens[0]!)) {
    const attrs = parseArm64Attrs(tokens.slice(1));
    if (typeof attrs === 'string') return attrs;
    return { line, arch: 'arm64', startHex, endHex, size, level: tokens[0]!.toLowerCase() as DumpLevel, flags: attrs.flags, arm64: attrs.arm64 };
  }
  const level = tokens.pop();
  if (level === undefined || /^(USR|RW|ro|PWT|PCD|PSE|PAT|GLB|NX|x)$/.test(level)) {
    return 'missing level name (pgd p4d pud pmd pte): is the line cut short?';
  }
  if (!DUMP_LEVELS.includes(level as DumpLevel)) return `unknown level ${JSON.stringify(level)} (the kernel prints pgd p4d pud pmd pte)`;
  const flags = parseFlagTokens(tokens, level as DumpLevel);
  if (typeof flags === 'string') return flags;
  return { line, arch: 'x86', startHex, endHex, size, level: level as DumpLevel, flags };
}

/**
 * 5-level when some boundary is not canonical with 48-bit addresses: 4-level dumps never
 * print one. arm64 has its own entry sizes (geometry.ts) and is labelled 4-level.
 */
function detectPaging(ranges: readonly RawRange[], opts: ParseOptions): Paging {
  if (ranges[0]?.startHex.length === 8) return '32-bit';
  if (ranges[0]?.arch === 'arm64') return '4-level';
  if (opts.paging !== undefined) return opts.paging;
  return ranges.some((r) => !isCanonical(pageOf(r.startHex), 4)) ? '5-level' : '4-level';
}

/**
 * The page number of an address's hex text: all digits but the last three (the page
 * offset), exact as a number (at most 13 hex digits = 52 bits), no BigInt per line.
 */
function pageOf(hexText: string): Vpn {
  return parseInt(hexText.slice(0, -3), 16);
}

/** Pages a size column denotes (value * 1024^unit / 4096; powers of two keep it exact). */
function sizePages(value: number, unit: SizeUnit): number {
  return value * 2 ** (10 * SIZE_UNITS.indexOf(unit) - 12);
}

/** Check one range in isolation; returns its page-number form or the reason it is corrupt. */
function checkRange(r: RawRange, paging: Paging): DumpRange | string {
  // arm64 splits the space by bit 63 (TTBR0/TTBR1), not by x86 canonical halves.
  const x86 = r.arch === 'x86';
  const startText = `0x${r.startHex}`;
  const endText = `0x${r.endHex}`;
  if (!r.startHex.endsWith('000')) return `address ${startText} is not 4 KiB aligned (every boundary is the start of a page-table entry)`;
  if (!r.endHex.endsWith('000')) return `address ${endText} is not 4 KiB aligned (every boundary is the start of a page-table entry)`;
  const top = addressTop(paging);
  const start: Vpn = pageOf(r.startHex);
  const end: Vpn = /^0+$/.test(r.endHex) ? top : pageOf(r.endHex);
  if (end <= start) return `end ${endText} is not above start ${startText}: the range wraps before the end of the address space`;
  if (x86 && paging !== '32-bit') {
    const levels = paging === '5-level' ? 5 : 4;
    if (!isCanonical(start, levels)) return `start ${startText} is not a canonical ${paging} address`;
    if (end !== top && end !== lowerHalfEnd(levels) && !isCanonical(end, levels)) return `end ${endText} is not a canonical ${paging} address`;
  }
  const pages = end - start;
  const want = kernelSize(pages);
  if (sizePages(r.size.value, r.size.unit) !== pages) {
    return `size ${r.size.value}${r.size.unit} does not match the range (${want.value}${want.unit})`;
  }
  if (want.value !== r.size.value || want.unit !== r.size.unit) {
    return `size ${r.size.value}${r.size.unit} is not how the kernel prints it (${want.value}${want.unit})`;
  }
  const g = levelPages(r.level, paging, r.arch);
  if (start % g !== 0 || end % g !== 0) {
    return `a ${r.level} range must start and end on ${kernelSize(g).value}${kernelSize(g).unit} boundaries (${r.arch === 'arm64' ? 'arm64' : paging}), this one is ${startText}-${endText}`;
  }
  const range: DumpRange = { line: r.line, start, end, size: r.size, level: r.level, flags: r.flags };
  return r.arm64 === undefined ? range : { ...range, arm64: r.arm64 };
}

function buildDump(b: Builder, opts: ParseOptions, errors: DumpParseError[]): Dump {
  const raws = b.items.flatMap((i) => (i.kind === 'range' ? [i.range] : []));
  const paging = detectPaging(raws, opts);
  const arch = raws[0]?.arch ?? 'x86';
  const fragment = opts.fragment === true || !b.items.some((i) => i.kind === 'marker');
  const sections: { name: string | null; line: number | null; ranges: DumpRange[] }[] = [];
  const gaps: DumpGap[] = [];
  let prev: DumpRange | null = null;
  let gapBefore = false;
  const lines = b.items.map((i) => (i.kind === 'range' ? i.range.line : i.kind === 'gap' ? i.gap.line : i.line));
  for (const item of b.items) {
    switch (item.kind) {
      case 'marker':
        sections.push({ name: item.name, line: item.line, ranges: [] });
        break;
      case 'gap':
        gaps.push(item.gap);
        gapBefore = true;
        break;
      case 'broken':
        gapBefore = true;
        break;
      case 'range': {
        const raw = item.range;
        if (raw.arch !== arch) {
          errors.push({ line: raw.line, reason: `an ${raw.arch} line in an ${arch} dump` });
          gapBefore = true;
          break;
        }
        if ((raw.startHex.length === 8) !== (paging === '32-bit')) {
          errors.push({ line: raw.line, reason: `${raw.startHex.length}-digit addresses in a ${paging} dump (mixed 32- and 64-bit lines)` });
          gapBefore = true;
          break;
        }
        const r = checkRange(raw, paging);
        if (typeof r === 'string') {
          errors.push({ line: raw.line, reason: r });
          gapBefore = true;
          break;
        }
        if (prev !== null && r.start !== prev.end) {
          const span = `${addressText(prev.start, paging)}-${addressText(prev.end, paging)}`;
          if (prev.end === addressTop(paging)) {
            errors.push({ line: r.line, reason: `follows line ${prev.line}, which ends at the top of the address space (printed as ${addressText(prev.end, paging)})` });
          } else if (r.start < prev.end) {
            errors.push({ line: r.line, reason: `overlaps line ${prev.line} (${span}): ranges must ascend without overlapping` });
          } else if (r.start > prev.end && !gapBefore && !fragment) {
            errors.push({
              line: r.line,
              reason: `not contiguous: line ${prev.line} ends at ${addressText(prev.end, paging)} but this range starts at ${addressText(r.start, paging)} (only a gap line or a fragment may leave a hole)`,
            });
          }
        }
        if (sections.length === 0) sections.push({ name: null, line: null, ranges: [] });
        sections[sections.length - 1]!.ranges.push(r);
        prev = r;
        gapBefore = false;
        break;
      }
    }
  }
  return {
    view: b.view,
    segment: b.segment,
    arch,
    firstLine: lines.reduce((a, b) => Math.min(a, b)),
    lastLine: lines.reduce((a, b) => Math.max(a, b)),
    paging,
    fragment,
    sections: sections as DumpSection[],
    gaps,
  };
}

export function parsePtdump(text: string, opts: ParseOptions = {}): ParseResult {
  const rawLines = text.split('\n');
  if (rawLines.length > 0 && rawLines[rawLines.length - 1] === '') rawLines.pop();
  const errors: DumpParseError[] = [];
  const other: OtherLine[] = [];
  const builders: Builder[] = [];
  let open = new Map<string, Builder>();
  let segment = 0;
  const builderFor = (view: string): Builder => {
    let b = open.get(view);
    if (b === undefined) {
      b = { view, segment, items: [] };
      open.set(view, b);
      builders.push(b);
    }
    return b;
  };
  const endSegment = (): void => {
    if (open.size > 0) segment++;
    open = new Map();
  };
  rawLines.forEach((raw, i) => {
    const line = i + 1;
    const c = classifyLine(raw);
    switch (c.kind) {
      case 'blank':
        other.push({ line, kind: 'blank', text: raw });
        break;
      case 'separator':
        other.push({ line, kind: 'separator', text: raw });
        for (const b of open.values()) b.items.push({ kind: 'gap', gap: { line, kind: 'separator' } });
        break;
      case 'comment':
      case 'text':
        if (c.kind === 'text' && opts.strict) errors.push({ line, reason: `not ptdump text: ${JSON.stringify(raw.slice(0, 80))}` });
        other.push({ line, kind: c.kind, text: raw });
        endSegment();
        break;
      case 'verdict':
        other.push({ line, kind: 'verdict', text: raw, verdict: c.verdict });
        break;
      case 'marker': {
        const cur = open.get(c.view);
        if (c.name === 'User Space' && cur !== undefined && cur.items.some((it) => it.kind === 'range')) open.delete(c.view);
        builderFor(c.view).items.push({ kind: 'marker', line, name: c.name });
        break;
      }
      case 'skipped':
        if (c.count === null) {
          errors.push({ line, reason: 'malformed "... N entries skipped ..." line' });
          builderFor(c.view).items.push({ kind: 'broken', line });
        } else {
          builderFor(c.view).items.push({ kind: 'gap', gap: { line, kind: 'skipped', count: c.count } });
        }
        break;
      case 'elision':
        builderFor(c.view).items.push({ kind: 'gap', gap: { line, kind: 'elision' } });
        break;
      case 'range': {
        const r = parseRangePayload(c.payload, line);
        if (typeof r === 'string') {
          errors.push({ line, reason: r });
          builderFor(c.view).items.push({ kind: 'broken', line });
        } else {
          builderFor(c.view).items.push({ kind: 'range', range: r });
        }
        break;
      }
    }
  });
  const dumps = builders.map((b) => buildDump(b, opts, errors));
  if (errors.length > 0) return { ok: false, errors: errors.sort((a, b) => a.line - b.line) };
  return { ok: true, value: { dumps, other, lineCount: rawLines.length } };
}
