/**
 * What the spec document's examples (fuzz/invariant-hunt.ts, fuzz/kernel-findings.ts)
 * share: a trace setup's impl booted on its own, without the model beside it, and a break
 * shown as data: its first witnesses, how many there were, and the table entries around
 * the first one as ptdump prints them, before and after the breaking step, so a reader
 * sees what the step did to the entries there.
 */
import { PAGES } from '../spec/address.ts';
import type { Witness } from '../spec/invariant.ts';
import type { Scenario } from '../spec/scenario.ts';
import { INIT_MM, type AbstractState, type Leaf, type RootId } from '../spec/state.ts';
import type { PageTableSystem } from '../spec/system.ts';
import { printRoot } from '../io/ptdump/print.ts';
import type { TraceSetup } from './campaign-run.ts';
import { plainWitness, runCommand, systemSetup } from './check.ts';
import type { Picture } from './spec-examples-json.ts';

/** The setup's impl with the scenario's boot applied (a booted-once setup's factory boots it itself: its boot is empty). */
export function bootedImpl(setup: TraceSetup): PageTableSystem {
  const sys = setup.makeImpl(systemSetup(setup) as Scenario);
  for (const c of setup.scenario.boot) runCommand(sys, c);
  return sys;
}

/** Witnesses a document shows of one break: the first few say where; the count says how widespread. */
export const WITNESSES_SHOWN = 4;
/** Lines of one picture: a break over a whole 1G range split to 4K pages of mixed flags is not read line by line. */
export const PICTURE_LINES = 24;

/** The line a capped check ends its list with (checker/common.ts Witnesses): the count of the rest, at no place. */
const MORE = /^(\d+) more violations not listed$/;

/** A page range, as the witnesses and leaves give them. */
interface Span {
  readonly vpn: number;
  readonly pages: number;
}

const meets = (a: Span, b: Span): boolean => a.vpn < b.vpn + b.pages && b.vpn < a.vpn + a.pages;

/** A range line of an entry that is none: its flag column is blank (io/ptdump/flags.ts flagsText). */
const HOLE = /^0x[0-9a-f]+-0x[0-9a-f]+ +\d+[KMGTPE] +(?:pte|pmd|pud|p4d|pgd)$/;

/**
 * The ptdump lines of `leaves`, a part of root `id` in `state`, each under the marker of
 * its section. The holes are left out: around a part of a root they are the part's, not
 * the root's (a pgd-wide hole where the real tables map the rest of the slot). Empty when
 * the state has no such root or no such leaves.
 */
function pictureLines(state: AbstractState, id: RootId, leaves: readonly Leaf[]): string[] {
  const root = state.roots.find((r) => r.id === id);
  if (root === undefined || leaves.length === 0) return [];
  const out: string[] = [];
  let marker: string | null = null;
  for (const line of printRoot({ ...root, leaves }, state.config.levels)) {
    if (line.startsWith('---[')) marker = line;
    else if (!HOLE.test(line)) {
      if (marker !== null) out.push(marker);
      marker = null;
      out.push(line);
    }
  }
  return out.length <= PICTURE_LINES ? out : [...out.slice(0, PICTURE_LINES - 1), `… ${out.length - PICTURE_LINES + 1} more lines`];
}

/**
 * The entries around witness `w`, per root it concerns: the leaves meeting its pages (in
 * its root, init_mm when it names none), or for a witness with frames and no pages the
 * leaves mapping those frames in every root (its own when it names one), each whole, in
 * each state; a root with none in either is left out. A leaf the step made is in `after`
 * alone, one it removed in `before` alone.
 */
export function witnessPictures(w: Witness, before: AbstractState, after: AbstractState): Picture[] {
  const frames = (w.frames ?? []).map((f) => ({ vpn: f.pfn, pages: f.count }));
  const place: Span | null = w.vpn === undefined ? null : { vpn: w.vpn, pages: Math.max(1, w.pages ?? 1) };
  if (place === null && frames.length === 0) return [];
  const selected = (l: Leaf): boolean =>
    place !== null ? meets(place, { vpn: l.vpn, pages: PAGES[l.size] }) : frames.some((f) => meets(f, { vpn: l.pfn, pages: PAGES[l.size] }));
  const part = (s: AbstractState, id: RootId): readonly Leaf[] => (s.roots.find((r) => r.id === id)?.leaves ?? []).filter(selected);
  const ids = w.root !== undefined ? [w.root] : place !== null ? [INIT_MM] : [...new Set([...before.roots, ...after.roots].map((r) => r.id))].sort((a, b) => a - b);
  return ids.flatMap((id) => {
    const picture = { root: id, before: pictureLines(before, id, part(before, id)), after: pictureLines(after, id, part(after, id)) };
    return picture.before.length === 0 && picture.after.length === 0 ? [] : [picture];
  });
}

/** A break as the document shows it: its first witnesses, their count (a capped list's last line counts the rest), the pictures of the first. */
export function shownBreak(witnesses: readonly Witness[], before: AbstractState, after: AbstractState): { witnesses: Witness[]; witnessCount: number; pictures: Picture[] } {
  const last = witnesses.at(-1);
  const rest = last !== undefined && last.vpn === undefined && last.frames === undefined ? MORE.exec(last.detail) : null;
  const listed = rest === null ? witnesses : witnesses.slice(0, -1);
  const first = listed[0];
  return {
    witnesses: listed.slice(0, WITNESSES_SHOWN).map(plainWitness),
    witnessCount: listed.length + (rest === null ? 0 : Number(rest[1])),
    pictures: first === undefined ? [] : witnessPictures(first, before, after),
  };
}
