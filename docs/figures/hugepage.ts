/**
 * The split and collapse figures, from one real run on the impl: the `kernel` scenario
 * booted, the first 2 MiB of its direct map given the WT memory type (_set_memory_wt,
 * which leaves the 2M leaf whole and sets its PAT bit, bit 12 in a large leaf), then
 * `split` (split_large_page: 512 4K leaves, PAT at bit 7) and `collapse` back
 * (collapse_large_pages). Each figure shows the pmd entry and some PTEs before and after,
 * read from the impl's tables, and says what carried over, computed from all 512 PTEs.
 */
import { PAGES, kernelLayout, vpnToHex, type PagingLevels, type Vpn } from '../../spec/address.ts';
import type { Command } from '../../spec/commands.ts';
import { INIT_MM } from '../../spec/state.ts';
import * as x86 from '../../impl/arch/x86_64/entry.ts';
import { ROW_LEFT, ROW_WIDTH, CELLS_X, ENTRY_WIDTH, entryFields, entryFrame, entryKind, entryLegend, entryRow } from './entry.ts';
import { MUTED, svgDocument, text } from './svg.ts';
import { bootScenario, once, runAll, type Booted } from './systems.ts';
import { childSlot, isTableEntry, tableEntry, walkTables, type TableEntry } from './tables.ts';

export const SPLIT_ID = 'figure-split';
export const COLLAPSE_ID = 'figure-collapse';

/** The scenario the run boots. */
export const HUGEPAGE_SCENARIO = 'kernel';

/** The PTEs a figure draws, of the 512. */
const SHOWN = [0, 1, 511] as const;

/** The run's commands after boot on the 2M block at `vpn`: set_memory_wt, the split, the collapse. */
export function hugepageCommands(vpn: Vpn): { readonly setWt: Command; readonly split: Command; readonly collapse: Command } {
  return {
    setWt: { op: 'protect', vpn, pages: PAGES['2M'], change: { cache: 'WT' }, alias: false },
    split: { op: 'split', root: INIT_MM, vpn },
    collapse: { op: 'collapse', root: INIT_MM, vpn, size: '2M' },
  };
}

/** The pmd entry of the block and, when it points to a PTE table, that table and its 512 entries. */
interface BlockView {
  readonly pmd: TableEntry;
  readonly table: { readonly slot: number; readonly pfn: number } | null;
  readonly ptes: readonly TableEntry[];
}

interface HugepageRun {
  readonly vpn: Vpn;
  readonly levels: PagingLevels;
  readonly large: BlockView;
  readonly split: BlockView;
  readonly collapsed: BlockView;
  /** What became of the split's PTE table after the collapse. */
  readonly tableAfter: 'freed' | 'pending free' | 'still allocated';
}

function blockView(run: Booted, vpn: Vpn): BlockView {
  const pmd = walkTables(run.sys, vpn).find((e) => e.level === 2)!;
  if (!isTableEntry(pmd)) return { pmd, table: null, ptes: [] };
  const slot = childSlot(run.sys, pmd);
  return {
    pmd,
    table: { slot, pfn: run.sys.tables().slotPfn(slot) },
    ptes: Array.from({ length: PAGES['2M'] }, (_, i) => tableEntry(run.sys, slot, 1, i)),
  };
}

const hugepageRun = once((): HugepageRun => {
  const booted = bootScenario(HUGEPAGE_SCENARIO);
  const levels = booted.sys.config.levels;
  const vpn = kernelLayout(levels).pageOffset;
  const c = hugepageCommands(vpn);
  runAll(booted.sys, [c.setWt], 'set_memory_wt');
  const large = blockView(booted, vpn);
  runAll(booted.sys, [c.split], 'split');
  const split = blockView(booted, vpn);
  runAll(booted.sys, [c.collapse], 'collapse');
  const collapsed = blockView(booted, vpn);
  const pool = booted.sys.tables();
  const slot = split.table!.slot;
  const tableAfter = pool.allocated[slot] === 0 ? 'freed' : pool.pending.includes(slot) ? 'pending free' : 'still allocated';
  return { vpn, levels, large, split, collapsed, tableAfter };
});

/** The fields of the leaf that every PTE of the block has with the same value, and those it does not. */
function carried(leaf: TableEntry, ptes: readonly TableEntry[]): { same: string[]; differ: string[] } {
  const fieldsOf = (e: TableEntry): Map<string, { name: string; value: string }> =>
    new Map(entryFields(entryKind(e.level, e.lo), e.lo, e.hi).map((f) => [f.key, { name: f.name, value: f.value }]));
  const leafFields = fieldsOf(leaf);
  const pteFields = ptes.map(fieldsOf);
  const same: string[] = [];
  const differ: string[] = [];
  for (const [key, f] of leafFields) {
    if (key === 'pfn' || key === 'ps') continue;
    (pteFields.every((p) => p.get(key)?.value === f.value) ? same : differ).push(f.name);
  }
  return { same, differ };
}

/** How many PTEs map the leaf's frames in order (PTE i the leaf's first frame + i). */
function inOrder(leaf: TableEntry, ptes: readonly TableEntry[]): number {
  const base = entryFrame('large', leaf.lo, leaf.hi);
  return ptes.filter((p, i) => entryFrame('pte', p.lo, p.hi) === base + i).length;
}

const bit = (e: TableEntry, mask: number): string => ((e.lo & mask) !== 0 ? '1' : '0');
const hex = (n: number): string => `0x${n.toString(16)}`;
const ROW_PITCH = 62;
const LIT = new Set(['pat', 'nx', 'pfn', 'ps']);

/** The rows of a block: its pmd entry, alone or followed by the shown PTEs with an ellipsis before the last. */
function blockRows(y: number, stage: string, view: BlockView, levels: PagingLevels): { rows: string[]; end: number } {
  const rows = [entryRow(y, `${stage}-pmd`, view.pmd, levels, '', LIT)];
  let at = y + ROW_PITCH;
  for (const i of SHOWN) {
    if (i === SHOWN[SHOWN.length - 1] && i > SHOWN[SHOWN.length - 2]! + 1) {
      const skipped = i - SHOWN[SHOWN.length - 2]! - 1;
      rows.push(text(CELLS_X + ENTRY_WIDTH / 2, at + 6, `⋮  ${skipped} more PTEs, each mapping the next frame  ⋮`, { size: 11.5, anchor: 'middle', fill: MUTED, mono: true }));
      at += 22;
    }
    const pte = view.ptes[i];
    if (pte === undefined) break;
    rows.push(entryRow(at, `${stage}-pte-${i}`, pte, levels, '', LIT));
    at += ROW_PITCH;
  }
  return { rows, end: at };
}

interface Stage {
  readonly heading: string;
  readonly id: string;
  readonly view: BlockView;
}

function hugepageSvg(id: string, title: string, subtitle: string, stages: readonly [Stage, Stage], facts: readonly string[], description: string, levels: PagingLevels): string {
  const body = [text(ROW_LEFT, 26, title, { size: 16, weight: 'bold' }), text(ROW_LEFT, 45, subtitle, { size: 12, fill: MUTED })];
  let y = 74;
  for (const s of stages) {
    body.push(text(ROW_LEFT, y, s.heading, { size: 13, weight: 'bold' }));
    const { rows, end } = blockRows(y + 10, s.id, s.view, levels);
    body.push(...rows);
    y = end + 18;
  }
  facts.forEach((f, i) => body.push(text(ROW_LEFT, y + i * 18, f, { size: 12.5 })));
  const height = y + facts.length * 18 + 22;
  body.push(entryLegend(height - 14, 'PAT, NX, PS and the frame'));
  return svgDocument({ id, width: ROW_WIDTH, height, title, description }, body);
}

const cacheText = (e: TableEntry, patMask: number): string =>
  x86.bitsToCacheMode({ pat: (e.lo & patMask) !== 0, pcd: (e.lo & x86._PAGE_PCD) !== 0, pwt: (e.lo & x86._PAGE_PWT) !== 0 });

export function splitFigure(): string {
  const r = hugepageRun();
  const leaf = r.large.pmd;
  const ptes = r.split.ptes;
  const table = r.split.table!;
  const kept = carried(leaf, ptes);
  const pat7 = ptes.filter((p) => bit(p, x86._PAGE_PAT) === '1').length;
  const address = vpnToHex(r.vpn);
  return hugepageSvg(
    SPLIT_ID,
    `split_large_page: the 2M leaf at ${address} becomes 512 4K leaves`,
    `the ${HUGEPAGE_SCENARIO} scenario on the impl, its first 2 MiB of direct map set_memory_wt'd, then split; entries as the impl's tables hold them`,
    [
      { heading: `Before: one 2M leaf, memory type ${cacheText(leaf, x86._PAGE_PAT_LARGE)} (PAT is bit 12 in a large leaf)`, id: 'before', view: r.large },
      { heading: `After: the pmd entry points to a new PTE table at pfn ${hex(table.pfn)}; 3 of its 512 leaves`, id: 'after', view: r.split },
    ],
    [
      `PAT: bit 12 of the leaf = ${bit(leaf, x86._PAGE_PAT_LARGE)}; bit 7 = 1 in ${pat7} of the 512 PTEs (pgprot_large_2_4k); PS gives way to PAT at bit 7`,
      `the same in every PTE as in the leaf: ${kept.same.join(', ')}${kept.differ.length === 0 ? '' : `; not: ${kept.differ.join(', ')}`}`,
      `frames: ${inOrder(leaf, ptes)} of the 512 PTEs map the leaf's frame ${hex(entryFrame('large', leaf.lo, leaf.hi))} + their index`,
    ],
    `A 2M leaf at ${address} with PAT at bit 12, split into 512 PTEs with PAT at bit 7, NX and the frames carried over, in a new PTE table at pfn ${hex(table.pfn)}.`,
    r.levels,
  );
}

export function collapseFigure(): string {
  const r = hugepageRun();
  const ptes = r.split.ptes;
  const leaf = r.collapsed.pmd;
  const table = r.split.table!;
  const kept = carried(leaf, ptes);
  const pat7 = ptes.filter((p) => bit(p, x86._PAGE_PAT) === '1').length;
  const address = vpnToHex(r.vpn);
  return hugepageSvg(
    COLLAPSE_ID,
    `collapse_large_pages: 512 4K leaves at ${address} become one 2M leaf`,
    `the same run: the split's 512 PTEs, then collapse to 2M; entries as the impl's tables hold them`,
    [
      { heading: `Before: the pmd entry points to the PTE table at pfn ${hex(table.pfn)}; 3 of its 512 leaves`, id: 'before', view: r.split },
      { heading: `After: one 2M leaf, memory type ${cacheText(leaf, x86._PAGE_PAT_LARGE)}; the PTE table is ${r.tableAfter}`, id: 'after', view: r.collapsed },
    ],
    [
      `PAT: bit 7 = 1 in ${pat7} of the 512 PTEs; bit 12 of the leaf = ${bit(leaf, x86._PAGE_PAT_LARGE)} (pgprot_4k_2_large), and PS (bit 7) = ${bit(leaf, x86._PAGE_PSE)}`,
      `the same in the leaf as in every PTE: ${kept.same.join(', ')}${kept.differ.length === 0 ? '' : `; not: ${kept.differ.join(', ')}`}`,
      `frames: ${inOrder(leaf, ptes)} of the 512 PTEs mapped frame ${hex(entryFrame('large', leaf.lo, leaf.hi))} + their index, the leaf's frame; the PTE table at pfn ${hex(table.pfn)} is ${r.tableAfter}`,
    ],
    `512 PTEs at ${address} with PAT at bit 7 collapsed into one 2M leaf with PAT at bit 12; the PTE table at pfn ${hex(table.pfn)} is ${r.tableAfter}.`,
    r.levels,
  );
}
