/**
 * The walk figure: the hardware's four-level walk of one kernel address in the booted
 * `x86-64` scenario, through the impl's concrete tables. The address is idt_table, the
 * first page of the image's .bss (spec/x86-64-layout.ts IMAGE.bssStart) in the high map,
 * a 4K page since idt_setup_apic_and_irq_gates' set_memory_ro split its 2M leaf, so the
 * walk reaches a PTE. The figure shows the address cut into its table indices (spec/
 * address.ts tableIndex) and, at each level, the entry word the impl's table holds with
 * its bits named and valued (docs/figures/entry.ts), then what the walk makes of them.
 */
import { kernelLayout, levelName, tableIndex, vaBits, vpnToHex, type Level, type PagingLevels, type Vpn } from '../../spec/address.ts';
import { IMAGE } from '../../spec/x86-64-layout.ts';
import * as x86 from '../../impl/arch/x86_64/entry.ts';
import { CELLS_X, ENTRY_HEIGHT, ROW_LEFT, ROW_WIDTH, cellMiddle, entryFields, entryFrame, entryHex, entryKind, entryLegend, entryRow, levelColour } from './entry.ts';
import { INK, MUTED, arrow, box, group, svgDocument, text } from './svg.ts';
import { bootedX86 } from './systems.ts';
import { walkTables, type TableEntry } from './tables.ts';

export const WALK_ID = 'figure-walk';

/** The page walked: idt_table in the high map (__START_KERNEL_map + its frame). */
export function walkedPage(levels: PagingLevels): Vpn {
  return kernelLayout(levels).kernelText + IMAGE.bssStart;
}

const ROW_PITCH = 66;

interface AddressField {
  readonly name: string;
  readonly colour: string;
  readonly high: number;
  readonly low: number;
  readonly value: string;
  readonly binary: string;
}

/** The 64 bits of the address as its fields: the sign extension, one index per level, the offset in the page. */
function addressFields(vpn: Vpn, levels: PagingLevels): AddressField[] {
  const top = vaBits(levels);
  const out: AddressField[] = [{ name: 'sign extension', colour: MUTED, high: 63, low: top, value: `0x${Math.floor(vpn / 2 ** (top - 12)).toString(16)}`, binary: '' }];
  for (let level = levels as Level; level >= 1; level--) {
    const name = levelName(level, levels);
    const index = tableIndex(vpn, level);
    const low = 12 + 9 * (level - 1);
    out.push({ name: `${name} index`, colour: levelColour(name), high: low + 8, low, value: String(index), binary: index.toString(2).padStart(9, '0') });
  }
  out.push({ name: 'offset', colour: MUTED, high: 11, low: 0, value: '0x000', binary: '' });
  return out;
}

function addressRow(y: number, vpn: Vpn, levels: PagingLevels): string {
  const perBit = (ROW_WIDTH - 2 * ROW_LEFT) / 64;
  let x = ROW_LEFT;
  return addressFields(vpn, levels).map((f) => {
    const w = (f.high - f.low + 1) * perBit;
    const cx = x + w / 2;
    x += w;
    return group({ 'data-address-field': f.name, 'data-value': f.value }, [
      box(x - w, y, w, 58, { stroke: f.colour, strokeWidth: 1.5 }),
      text(cx, y + 13, f.name, { size: 11, anchor: 'middle', weight: 'bold', fill: f.colour }),
      text(cx, y + 25, `bits ${f.high}:${f.low}`, { size: 9, anchor: 'middle', mono: true, fill: MUTED }),
      text(cx, y + 38, f.binary, { size: 9.5, anchor: 'middle', mono: true, fill: MUTED }),
      text(cx, y + 52, f.value, { size: 13, anchor: 'middle', mono: true, weight: 'bold', fill: INK }),
    ]);
  }).join('');
}

/** What the walk makes of the entries: the physical address, the rights combined over the levels, the leaf's memory type. */
function outcome(steps: readonly TableEntry[]): string[] {
  const leaf = steps[steps.length - 1]!;
  const kind = entryKind(leaf.level, leaf.lo);
  if (kind === 'table' || (leaf.lo & x86._PAGE_PRESENT) === 0) throw new Error(`the walked page is not mapped: ${entryHex(leaf.lo, leaf.hi)}`);
  const pfn = entryFrame(kind, leaf.lo, leaf.hi);
  const every = (mask: number): boolean => steps.every((e) => (e.lo & mask) !== 0);
  const nx = steps.some((e) => (e.hi & x86.HI_NX) !== 0);
  const pat = (leaf.lo & (kind === 'pte' ? x86._PAGE_PAT : x86._PAGE_PAT_LARGE)) !== 0;
  const pcd = (leaf.lo & x86._PAGE_PCD) !== 0;
  const pwt = (leaf.lo & x86._PAGE_PWT) !== 0;
  const index = (pat ? 4 : 0) + (pcd ? 2 : 0) + (pwt ? 1 : 0);
  const bit = (b: boolean): string => (b ? '1' : '0');
  return [
    `frame 0x${pfn.toString(16)} + offset 0x000 = physical address 0x${(pfn * 4096).toString(16)}`,
    `rights, RW and US ANDed over the ${steps.length} entries, NX ORed: ${every(x86._PAGE_RW) ? 'writable' : 'read-only'}, ` +
      `${every(x86._PAGE_USER) ? 'user' : 'supervisor only'}, ${nx ? 'not executable' : 'executable'}, ${(leaf.lo & x86._PAGE_GLOBAL) !== 0 ? 'global' : 'not global'}`,
    `memory type: PAT ${bit(pat)} PCD ${bit(pcd)} PWT ${bit(pwt)} = PAT index ${index} = ${x86.bitsToCacheMode({ pat, pcd, pwt })} under the kernel's PAT MSR`,
  ];
}

export function walkFigure(): string {
  const { sys, scenario } = bootedX86();
  const levels = sys.config.levels;
  const vpn = walkedPage(levels);
  const steps = walkTables(sys, vpn);
  const address = vpnToHex(vpn);
  const rowsY = 150;
  const outcomeY = rowsY + steps.length * ROW_PITCH + 6;
  const height = outcomeY + 96;
  const body = [
    text(ROW_LEFT, 26, `The walk of ${address}: idt_table, the first page of the kernel image's .bss`, { size: 16, weight: 'bold' }),
    text(ROW_LEFT, 45, `${levels}-level paging in the booted ${scenario.name} scenario, from init_mm's pgd; each entry as the impl's tables hold it`, { size: 12, fill: MUTED }),
    group({ 'data-vpn': address }, [addressRow(58, vpn, levels)]),
    ...steps.map((e, i) => entryRow(rowsY + i * ROW_PITCH, `walk-${i}`, e, levels, i === 0 ? ' (CR3)' : '')),
    // Each table entry's frame is the table the next row reads.
    ...steps.slice(0, -1).map((e, i) => {
      const x = CELLS_X + cellMiddle(entryFields(entryKind(e.level, e.lo), e.lo, e.hi), 'pfn');
      return arrow(x, rowsY + i * ROW_PITCH + ENTRY_HEIGHT + 1, x, rowsY + (i + 1) * ROW_PITCH - 1, MUTED, 1);
    }),
    ...outcome(steps).map((t, i) => text(ROW_LEFT, outcomeY + 14 + i * 18, t, { size: 12.5, mono: i === 0 })),
    entryLegend(height - 16),
  ];
  return svgDocument({
    id: WALK_ID,
    width: ROW_WIDTH,
    height,
    title: `x86-64 page walk of ${address} (idt_table)`,
    description: `The ${levels}-level walk of ${address} in the booted ${scenario.name} scenario: ` +
      steps.map((e) => `${levelName(e.level, levels)}[${e.index}] = ${entryHex(e.lo, e.hi)}`).join(', ') + '.',
  }, body);
}
