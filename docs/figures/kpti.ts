/**
 * The KPTI figure: the page-table pair of one process on the booted `x86-64` scenario
 * with the isolation capability (ptiBoot: the PTI clones of pti_init and pti_finalize).
 * The run creates a process, maps one user page (an executable one, as a program's text)
 * and gives it an LDT (allocFrames, then setLdt: write_ldt's map_ldt_struct), so that all
 * three kinds of top-level slot show. For every slot either copy uses, the figure gives
 * the entry word each top-level table holds (the impl's tables) and where it comes from:
 * the root spec/roots.ts mirrorsOf says it mirrors, checked against that root's entry, or
 * its own. Under the table: what the user copy's kernel half holds (root 1's clones) and
 * the user page as each copy maps it (the abstract state), NX-poisoned in the kernel copy
 * as spec/contracts/isolation.ts (mapUser) and __pti_set_user_pgtbl have it.
 */
import { slotPages, mirrorHolding, mirrorsOf, PTI_USER_ROOT } from '../../spec/roots.ts';
import { PAGES, upperHalfStart, vpnToHex, type Level, type PagingLevels, type Vpn } from '../../spec/address.ts';
import type { Command } from '../../spec/commands.ts';
import { INIT_MM, protToString, type AbstractState, type Leaf, type RootId, type RootKind } from '../../spec/state.ts';
import type { ProcessRoots } from '../../spec/system.ts';
import { HI_NX } from '../../impl/arch/x86_64/entry.ts';
import { entryHex } from './entry.ts';
import { INK, MUTED, box, group, line, svgDocument, text } from './svg.ts';
import { bootScenario, once, runAll, type Booted } from './systems.ts';
import { tableEntry, type TableEntry } from './tables.ts';

export const KPTI_ID = 'figure-kpti';

/** The user page the process maps: 0x400000, where a non-PIE program's text starts. */
export const USER_PAGE: Vpn = 0x400;

/** The process's setup after the PTI boot, given its pid and the frames it uses. */
export function processCommands(pid: number, userPfn: number, ldtPfn: number): Command[] {
  return [
    { op: 'mapUser', pid, vpn: USER_PAGE, pfn: userPfn, pages: 1, prot: { write: false, user: true, execKernel: true, execUser: true, global: false, cache: 'WB' } },
    { op: 'allocFrames', pfn: ldtPfn, count: 1 },
    { op: 'setLdt', pid, pfn: ldtPfn, pages: 1 },
  ];
}

interface KptiRun extends Booted {
  readonly roots: ProcessRoots;
  readonly state: AbstractState;
}

const kptiRun = once((): KptiRun => {
  const booted = bootScenario('x86-64', true);
  const [roots] = runAll(booted.sys, [{ op: 'createProcess' }], 'createProcess') as [ProcessRoots];
  // The first frame of user memory for the page, the first free frame for the LDT (the page allocator's).
  const frame = (use: string): number => booted.scenario.frames.find((r) => r.use === use)!.pfn;
  runAll(booted.sys, processCommands(roots.pid, frame('user'), frame('free')), 'the process');
  return { ...booted, roots, state: booted.sys.abstract() };
});

const ROOT_NAME: Readonly<Record<number, string>> = { [INIT_MM]: "init_mm's", [PTI_USER_ROOT]: "root 1's" };
const SOURCE_COLOUR = { init: '#2563eb', pti: '#c2410c', pgd: '#15803d', own: MUTED, poisoned: '#b91c1c' } as const;

/** The first page of top-level slot `idx`: the lower half from 0, the kernel half from its sign-extended start. */
function slotVpn(levels: PagingLevels, idx: number): Vpn {
  return idx < 256 ? idx * slotPages(levels) : upperHalfStart(levels) + (idx - 256) * slotPages(levels);
}

interface Cell {
  readonly entry: TableEntry;
  readonly source: string;
  readonly colour: string;
}

/** Where entry `idx` of `root`'s top-level table comes from, by spec/roots.ts, checked against the real entries. */
function cellOf(run: KptiRun, root: RootId, kind: RootKind, idx: number): Cell {
  const { sys } = run;
  const levels = sys.config.levels;
  const top = (id: RootId): TableEntry => tableEntry(sys, sys.isolation!.slotOf(id), levels as Level, idx);
  const entry = top(root);
  const empty = (entry.lo | entry.hi) === 0;
  const m = mirrorHolding(mirrorsOf(levels, kind, run.roots.pid), slotVpn(levels, idx));
  if (m !== undefined) {
    const src = top(m.from);
    const same = src.lo === entry.lo && src.hi === entry.hi;
    const name = ROOT_NAME[m.from] ?? `the pgd's (root ${m.from})`;
    if (empty && same) return { entry, source: `empty, as ${name}`, colour: MUTED };
    const colour = m.from === INIT_MM ? SOURCE_COLOUR.init : m.from === PTI_USER_ROOT ? SOURCE_COLOUR.pti : SOURCE_COLOUR.pgd;
    return { entry, source: same ? `= ${name} entry` : `≠ ${name} entry: diverged`, colour: same ? colour : SOURCE_COLOUR.poisoned };
  }
  if (empty) return { entry, source: 'empty', colour: MUTED };
  if (idx < 256 && root === run.roots.userRoot) {
    // __pti_set_user_pgtbl writes a user-half entry to both copies, the kernel copy's with NX.
    const pgd = top(run.roots.kernelRoot);
    const same = pgd.lo === entry.lo && (pgd.hi & ~HI_NX) >>> 0 === entry.hi;
    return { entry, source: same ? "= the pgd's entry, NX clear" : "≠ the pgd's entry", colour: same ? SOURCE_COLOUR.pgd : SOURCE_COLOUR.poisoned };
  }
  if (idx < 256) return { entry, source: (entry.hi & HI_NX) !== 0 ? 'own, NX-poisoned' : 'own, not NX-poisoned', colour: SOURCE_COLOUR.poisoned };
  return { entry, source: "own: the process's own slot", colour: SOURCE_COLOUR.own };
}

/** Words of `s` in lines of at most `width` characters. */
function wrap(s: string, width: number): string[] {
  const out: string[] = [];
  for (const word of s.split(' ')) {
    const last = out[out.length - 1];
    if (last !== undefined && last.length + 1 + word.length <= width) out[out.length - 1] = `${last} ${word}`;
    else out.push(word);
  }
  return out;
}

const WIDTH = 900;
const COL = { slot: 20, addr: 64, holds: 214, kernel: 420, user: 658 } as const;
const ROW = 44;

function copyCell(x: number, y: number, c: Cell): string {
  const nx = (c.entry.hi & HI_NX) !== 0;
  return group({ 'data-entry': entryHex(c.entry.lo, c.entry.hi), 'data-source': c.source }, [
    (c.entry.lo | c.entry.hi) === 0 ? '' : text(x, y + 16, entryHex(c.entry.lo, c.entry.hi), { size: 11.5, mono: true, weight: 'bold' }),
    nx ? box(x + 132, y + 5, 24, 14, { fill: '#fee2e2', stroke: SOURCE_COLOUR.poisoned, radius: 3 }) + text(x + 144, y + 16, 'NX', { size: 9.5, anchor: 'middle', weight: 'bold', fill: SOURCE_COLOUR.poisoned }) : '',
    text(x, y + 32, c.source, { size: 11, fill: c.colour, weight: c.colour === MUTED ? undefined : 'bold' }),
  ]);
}

/** A leaf as a line: its first page, size, frame and protection. */
const leafText = (l: Leaf): string => `${vpnToHex(l.vpn)} ${l.size} → pfn 0x${l.pfn.toString(16)}  ${protToString(l.prot)}`;

export function kptiFigure(): string {
  const run = kptiRun();
  const { sys, scenario, roots, state } = run;
  const levels = sys.config.levels;
  const slots = Array.from({ length: 512 }, (_, idx) => idx).filter((idx) =>
    [roots.kernelRoot, roots.userRoot].some((id) => {
      const e = tableEntry(sys, sys.isolation!.slotOf(id), levels as Level, idx);
      return (e.lo | e.hi) !== 0;
    }));
  const regionsIn = (idx: number): string => {
    const lo = slotVpn(levels, idx);
    const hi = lo + slotPages(levels);
    const names = scenario.regions.filter((r) => r.vpn < hi && r.vpn + r.pages > lo).map((r) => r.name);
    return idx < 256 ? 'user half' : names.length === 0 ? '' : names.join(', ');
  };
  const tableY = 84;
  const body: string[] = [
    text(COL.slot, 26, `The KPTI pair of process ${roots.pid}: its pgd (the kernel copy) and the user copy, slot by slot`, { size: 16, weight: 'bold' }),
    text(COL.slot, 45, `the booted ${scenario.name} scenario with PTI, then createProcess, mapUser of one page, setLdt; top-level entries as the impl's tables hold them`, { size: 12, fill: MUTED }),
    text(COL.slot, tableY - 12, 'slot', { size: 11.5, weight: 'bold' }),
    text(COL.addr, tableY - 12, 'first address', { size: 11.5, weight: 'bold' }),
    text(COL.holds, tableY - 12, 'regions', { size: 11.5, weight: 'bold' }),
    text(COL.kernel, tableY - 12, `kernel copy: the pgd (root ${roots.kernelRoot})`, { size: 11.5, weight: 'bold' }),
    text(COL.user, tableY - 12, `user copy (root ${roots.userRoot})`, { size: 11.5, weight: 'bold' }),
    line(COL.slot, tableY - 4, WIDTH - 20, tableY - 4, INK),
  ];
  slots.forEach((idx, i) => {
    const y = tableY + i * ROW;
    const holds = wrap(regionsIn(idx), 32).slice(0, 2);
    body.push(group({ 'data-slot': idx }, [
      i % 2 === 1 ? box(COL.slot - 6, y - 2, WIDTH - 28, ROW, { fill: '#f8fafc', stroke: 'none' }) : '',
      text(COL.slot, y + 16, String(idx), { size: 12.5, mono: true, weight: 'bold' }),
      text(COL.addr, y + 16, vpnToHex(slotVpn(levels, idx)), { size: 11, mono: true }),
      ...holds.map((h, k) => text(COL.holds, y + 16 + k * 15, h, { size: 11.5 })),
      copyCell(COL.kernel, y, cellOf(run, roots.kernelRoot, 'process-kernel', idx)),
      copyCell(COL.user, y, cellOf(run, roots.userRoot, 'process-user', idx)),
    ]));
  });
  let y = tableY + slots.length * ROW + 4;
  body.push(line(COL.slot, y, WIDTH - 20, y, INK));
  body.push(text(COL.slot, y + 16, `The other ${512 - slots.length} slots are empty in both copies. The mirrors are spec/roots.ts mirrorsOf's, each checked against the source root's entry.`, { size: 11.5, fill: MUTED }));
  y += 44;
  const pti = state.roots.find((r) => r.id === PTI_USER_ROOT)!.leaves;
  body.push(text(COL.slot, y, "What the user copy maps in the kernel half: root 1's tables (swapper_pg_dir's user half), pti_clone_pgtable's clones", { size: 13, weight: 'bold' }));
  y += 20;
  for (const r of scenario.regions) {
    const inside = pti.filter((l) => l.vpn >= r.vpn && l.vpn < r.vpn + r.pages);
    if (inside.length === 0) continue;
    const sizes = [...new Set(inside.map((l) => l.size))].join('/');
    const pages = inside.reduce((n, l) => n + PAGES[l.size], 0);
    const prots = [...new Set(inside.map((l) => protToString(l.prot)))].join(', ');
    body.push(text(COL.slot + 10, y, `${r.name}`, { size: 12, weight: 'bold' }));
    body.push(text(COL.slot + 130, y, `${inside.length} ${sizes} ${inside.length === 1 ? 'leaf' : 'leaves'} (${pages} pages) from ${vpnToHex(inside[0]!.vpn)}: ${prots}`, { size: 12, mono: true }));
    y += 18;
  }
  y += 10;
  body.push(text(COL.slot, y, `The user page and the LDT in each copy (the abstract state: leaves of roots ${roots.kernelRoot} and ${roots.userRoot})`, { size: 13, weight: 'bold' }));
  y += 20;
  const own = (id: RootId): readonly Leaf[] => state.roots.find((r) => r.id === id)!.leaves;
  for (const [name, id] of [['pgd', roots.kernelRoot], ['user copy', roots.userRoot]] as const) {
    for (const l of own(id)) {
      body.push(text(COL.slot + 10, y, name, { size: 12, weight: 'bold' }));
      body.push(text(COL.slot + 130, y, leafText(l), { size: 12, mono: true }));
      y += 18;
    }
  }
  body.push(text(COL.slot + 10, y, `The user copy's LDT slot mirrors the pgd's (map_ldt_struct_to_user), so its LDT is the pgd's leaf; the pgd's user half is NX (K1).`, { size: 11.5, fill: MUTED }));
  const height = y + 22;
  return svgDocument({
    id: KPTI_ID,
    width: WIDTH,
    height,
    title: `The KPTI page-table pair of process ${roots.pid}`,
    description: `The top-level slots of process ${roots.pid}'s pgd (root ${roots.kernelRoot}) and user copy (root ${roots.userRoot}) in the booted ${scenario.name} scenario with PTI: ` +
      slots.map((idx) => `slot ${idx}: ${cellOf(run, roots.kernelRoot, 'process-kernel', idx).source} / ${cellOf(run, roots.userRoot, 'process-user', idx).source}`).join('; ') + '.',
  }, body);
}
