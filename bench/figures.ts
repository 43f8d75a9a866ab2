/**
 * Every figure the bench reports, as data: its name, the group whose rounds measure it,
 * what it is of (a ratio of two sides, a rate of one, a value measured once), its unit
 * and its target with the target's direction. The targets are issue 15's; a figure with
 * none is there to be read beside the others (where a cost goes, how it grows).
 */
import { JOBS, jobsLabel, loopLabel } from './campaign.ts';
import { C_ADAPTERS, C_LABELS } from './c-adapters.ts';
import { CHECKED, CHECKED_LABELS, UNTOUCHED, UNTOUCHED_LEAVES, untouchedLabel, withBoot } from './checked.ts';
import type { Target } from './json.ts';
import { MAP_1G, MAP_4K, OP_LABELS, OP_MIX, PROTECT_1G, RANGE_COST, RANGE_SIZES, TRANSLATE, UNMAP_RECLAIM, leavesText, rangeLabel } from './ops.ts';
import type { Group } from './runner.ts';
import { MEMORY_LABELS, MEMORY_SCENARIO, SCALE, SCALE_COMMANDS, SCALE_SCENARIOS, scaleLabel } from './scale.ts';

export interface FigureSpec {
  readonly name: string;
  readonly group: Group;
  /** ratio: numerator over denominator within each round; rate: 1000 / the numerator's ms per unit; value: the group's `values` entry. */
  readonly kind: 'ratio' | 'rate' | 'value';
  readonly unit: string;
  readonly numerator: string;
  readonly denominator?: string;
  readonly target: Target | null;
  readonly note?: string;
}

const atMost = (value: number): Target => ({ direction: 'at most', value });
const atLeast = (value: number): Target => ({ direction: 'at least', value });

const ratio = (name: string, group: Group, numerator: string, denominator: string, target: Target | null, note?: string): FigureSpec => ({
  name, group, kind: 'ratio', unit: 'x', numerator, denominator, target, ...(note === undefined ? {} : { note }),
});

const rate = (name: string, group: Group, numerator: string, target: Target | null, note?: string): FigureSpec => ({
  name, group, kind: 'rate', unit: 'commands/CPU-s', numerator, target, ...(note === undefined ? {} : { note }),
});

/** Each op's cost on a range against its cost on one 4K page: how it grows with the leaves it changes. */
function rangeFigures(op: 'protect' | 'unmap'): FigureSpec[] {
  return RANGE_SIZES.flatMap(({ size, leaves }) => leaves.filter((n) => !(size === '4K' && n === 1)).map((n) =>
    ratio(`${op} cost: ${leavesText(n, size)} / one 4K page`, RANGE_COST, rangeLabel(op, size, n), rangeLabel(op, '4K', 1), null)));
}

/** Each one-page command on a larger machine against the smallest: 1x when the cost does not grow with what it does not touch. */
function scaleFigures(): FigureSpec[] {
  const [smallest, ...larger] = SCALE_SCENARIOS;
  return (['impl', 'model'] as const).flatMap((sys) => SCALE_COMMANDS.flatMap((what) => larger.map((name) =>
    ratio(`${sys}, ${what}: ${name} / ${smallest}`, SCALE, scaleLabel(name, sys, what), scaleLabel(smallest, sys, what), null))));
}

export const FIGURES: readonly FigureSpec[] = [
  ratio('1 GiB 4K map: impl / raw entry writes', MAP_1G, OP_LABELS.map1g, OP_LABELS.map1gRaw, atMost(4)),
  ratio('one 4K map: impl / raw entry write', MAP_4K, OP_LABELS.map4k, OP_LABELS.map4kRaw, atMost(50)),
  ratio('unmap 512 4K pages: with reclaim (strict) / without (linux)', UNMAP_RECLAIM, OP_LABELS.reclaim, OP_LABELS.noReclaim, atMost(2),
    'the Verus-verified NrOS page table measured 12x'),
  ratio('set_memory_ro: a 1G leaf / a 4K page', PROTECT_1G, OP_LABELS.protect1g, OP_LABELS.protect4k, atMost(2)),
  ...rangeFigures('protect'),
  ...rangeFigures('unmap'),
  ratio('translate / Map.get (as many entries)', TRANSLATE, OP_LABELS.translate, OP_LABELS.mapGet, null),
  ratio('op mix: model / impl', OP_MIX, OP_LABELS.mixModel, OP_LABELS.mixImpl, null),
  rate('checked commands per CPU-second, as a campaign runs (each trace\'s systems made)', CHECKED, withBoot(CHECKED_LABELS.checked), atLeast(20_000),
    "every sequence starts from a fork of the default scenario's booted model and impl (isolation included), booted once"),
  rate('checked commands per CPU-second, boot not counted', CHECKED, CHECKED_LABELS.checked, null),
  rate('unchecked commands per CPU-second (model and impl apply them), boot not counted', CHECKED, CHECKED_LABELS.unchecked, null),
  ratio('checking overhead: checked / unchecked, boot not counted', CHECKED, CHECKED_LABELS.checked, CHECKED_LABELS.unchecked, atMost(10)),
  ratio('checking overhead without invariants: checked / unchecked, boot not counted', CHECKED, CHECKED_LABELS.noInvariants, CHECKED_LABELS.unchecked, null),
  ...UNTOUCHED_LEAVES.slice(1).map((n) => ratio(`checked cost per command: ${n.toLocaleString('en-US')} untouched leaves / none, boot not counted`, UNTOUCHED, untouchedLabel(n), untouchedLabel(0), atMost(1.5))),
  ratio('--jobs 2 over --jobs 1: speed-up of a campaign', JOBS, jobsLabel(1), jobsLabel(2), atLeast(1.8),
    'wall time per run, worker start and boot check included; the ceiling below is what the machine allowed in the same rounds'),
  ratio('the ceiling: a CPU loop, 2 workers over 1', JOBS, loopLabel(1), loopLabel(2), null,
    'nothing shared: on 2 idle cores 2.00x; less when other processes hold the cores'),
  rate('checked commands per CPU-second: the reference C impl through the wasm adapter', C_ADAPTERS, C_LABELS.wasm, null,
    'linux profile, kernel scenario, the C library\'s operations; CPU time of this process (the native process\'s own is not counted)'),
  rate('checked commands per CPU-second: the reference C impl as a native process', C_ADAPTERS, C_LABELS.process, null),
  rate('checked commands per CPU-second: the built-in TypeScript impl on the same commands', C_ADAPTERS, C_LABELS.ts, null),
  ratio('checked cost per command: C through wasm / the TypeScript impl', C_ADAPTERS, C_LABELS.wasm, C_LABELS.ts, null),
  ratio('checked cost per command: C as a native process / the TypeScript impl', C_ADAPTERS, C_LABELS.process, C_LABELS.ts, null,
    'this process\'s CPU time only: the pipe round trips and the waiting, not the program\'s own work'),
  ...scaleFigures(),
  { name: `${MEMORY_LABELS.perTablePage} (${MEMORY_SCENARIO})`, group: SCALE, kind: 'value', unit: 'bytes', numerator: MEMORY_LABELS.perTablePage, target: null,
    note: 'a table page is 4,096 bytes of entries; the rest is what the impl keeps beside them' },
  { name: `${MEMORY_LABELS.perMappedGiB} (${MEMORY_SCENARIO})`, group: SCALE, kind: 'value', unit: 'bytes', numerator: MEMORY_LABELS.perMappedGiB, target: null },
];
