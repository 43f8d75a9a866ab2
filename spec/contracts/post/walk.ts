/**
 * walkPageRange's postcondition (spec/contracts/clients.ts, walk_kernel_page_table_range):
 * nothing changes, and its value is the list of callbacks (spec/system.ts WalkVisit).
 *
 * The visits are read as the walk makes them: depth first, from the top level down, each
 * level's entries in address order over the part of the range its table covers, a table
 * entry followed by the visits of its table. What the abstract state decides is held
 * here: the order, the clipping, the shape of each visit at its level, and that every
 * leaf or nonpresent visit is the state's entry there and every hole or none visit covers
 * pages without one. How deep a hole is (which tables exist: a table linux kept, one
 * strict's unmap left pending and unlinked) the state does not say: refinement holds it.
 */
import { pagesPerEntry, pfnToHex, vpnToHex, type Level, type PageSize } from '../../address.ts';
import type { AbstractState } from '../../state.ts';
import type { WalkVisit } from '../../system.ts';
import type { CommandOf } from '../../operations.ts';
import { validateWalk } from '../clients.ts';
import { breach, type Clause, type PostViolation } from './clause.ts';
import { nothingBut, rootEntries } from './effect.ts';
import { entryAt, firstMapped, windowsOf, type Entries } from './leaves.ts';
import { contractClauses, needsClients, type Contract } from './relation.ts';

const nothing = 'walkPageRange: nothing changes';

const say = contractClauses('walkPageRange', {
  order: 'the visits, depth first in address order: at every level from the top each entry of the range is visited once, a table entry followed by the visits of its table (the folded p4d of 4-level paging is not visited)',
  clip: 'each visit is clipped to the range: vpn and pages are the part inside it of its entry, or of its run of none PTEs',
  kinds: 'a none entry above PTE level is a hole; a huge leaf or a non-present huge entry is visited and not descended; a table entry is visited and descended; at PTE level present PTEs are leaf, non-present ones nonpresent, and each run of none ones is one none visit',
  entry: "a leaf or nonpresent visit is the state's entry of that presence there, of the visit's level, its frame at the visit's first page; a hole or none visit covers pages no entry holds",
  leaves: nothing,
  frames: nothing,
  tlb: nothing,
  obligations: nothing,
  tables: nothing,
  clients: nothing,
});

/** The size of an entry that maps at each level. */
const SIZE_AT: Readonly<Partial<Record<Level, PageSize>>> = { 1: '4K', 2: '2M', 3: '1G' };

/** The kinds a visit at each level may have: PTE level has no holes or tables, and only pmd and pud entries can be huge. */
function kindAllowed(kind: WalkVisit['kind'], level: Level): boolean {
  if (level === 1) return kind === 'leaf' || kind === 'nonpresent' || kind === 'none';
  if (kind === 'leaf' || kind === 'nonpresent') return level <= 3;
  return kind === 'table' || kind === 'hole';
}

const visitText = (v: WalkVisit): string =>
  `${v.kind} level ${v.level} [${vpnToHex(v.vpn)}, +${v.pages})${v.pfn === undefined ? '' : ` -> ${pfnToHex(v.pfn)}`}`;

/** A visit against the state: a leaf or nonpresent one its entry, a hole or none one no entry. */
function entryMismatch(entries: Entries, v: WalkVisit): string | null {
  if (v.kind === 'table') return null;
  if (v.kind === 'hole' || v.kind === 'none') {
    const l = firstMapped(entries, v);
    return l === undefined ? null : `${visitText(v)} covers the entry at ${vpnToHex(l.vpn)}`;
  }
  const e = entryAt(entries, v.vpn);
  const present = v.kind === 'leaf';
  if (e === undefined || e.present !== present) return `${visitText(v)}: the state has ${e === undefined ? 'no entry' : e.present ? 'a leaf' : 'a non-present entry'} there`;
  const pfn = e.leaf.pfn + (v.vpn - e.leaf.vpn);
  if (e.leaf.size !== SIZE_AT[v.level] || v.pfn !== pfn) {
    return `${visitText(v)}: the state's entry there is ${e.leaf.size} at ${vpnToHex(e.leaf.vpn)} -> ${pfnToHex(e.leaf.pfn)} (frame ${pfnToHex(pfn)} at ${vpnToHex(v.vpn)})`;
  }
  return null;
}

/**
 * The visits against the walk's shape and the state: the first violation, or none.
 * `parse` reads the visits of one table's part [lo, hi) at `level`, descending into the
 * table of each table visit.
 */
function checkVisits(before: AbstractState, c: CommandOf<'walkPageRange'>, visits: readonly WalkVisit[]): PostViolation[] {
  const entries = rootEntries(before);
  let i = 0;
  const bad = (clause: Clause, what: string) => breach(clause, what, [{ root: 0, vpn: visits[i]?.vpn ?? c.vpn, pages: Math.max(1, visits[i]?.pages ?? 1), detail: what }]);
  const parse = (level: Level, lo: number, hi: number): PostViolation | null => {
    let previous: WalkVisit | undefined;
    for (let at = lo; at < hi; ) {
      const v = visits[i];
      if (v === undefined) return bad(say.order, `the visits end before [${vpnToHex(at)}, ${vpnToHex(hi)}) at level ${level}`);
      if (v.level !== level || v.vpn !== at) return bad(say.order, `visit #${i} is ${visitText(v)}, where the level-${level} visit at ${vpnToHex(at)} is due`);
      if (!kindAllowed(v.kind, level)) return bad(say.kinds, `visit #${i} is ${visitText(v)}: no ${v.kind} visit at level ${level}`);
      if (v.kind === 'none' && previous?.kind === 'none') return bad(say.kinds, `visits #${i - 1} and #${i} are none runs that follow each other in one PTE table`);
      const span = pagesPerEntry(level);
      const entryEnd = Math.min(hi, Math.floor(at / span) * span + span);
      const fits = v.kind === 'none' ? Number.isInteger(v.pages) && v.pages >= 1 && at + v.pages <= hi : v.pages === entryEnd - at;
      if (!fits) return bad(say.clip, `visit #${i} is ${visitText(v)}, where its entry's part of the range is [${vpnToHex(at)}, ${vpnToHex(v.kind === 'none' ? hi : entryEnd)})`);
      const wrong = entryMismatch(entries, v);
      if (wrong !== null) return bad(say.entry, `visit #${i}: ${wrong}`);
      i++;
      if (v.kind === 'table') {
        const below = parse((level - 1) as Level, at, at + v.pages);
        if (below !== null) return below;
      }
      previous = v;
      at += v.pages;
    }
    return null;
  };
  const first = parse(before.config.levels, c.vpn, c.vpn + c.pages);
  if (first !== null) return [first];
  return i < visits.length ? [bad(say.order, `visit #${i} (${visitText(visits[i]!)}) comes after the walk covered the range`)] : [];
}

export const WALK_PAGE_RANGE: Contract<'walkPageRange'> = {
  source: 'spec/contracts/clients.ts',
  capability: needsClients('walkPageRange'),
  say,
  args: (config, c) => validateWalk(config, c.vpn, c.pages),
  state: () => null,
  scope: (_, c) => [c],
  value: (before, c, value) => (Array.isArray(value) ? checkVisits(before, c, value as readonly WalkVisit[]) : [breach(say.order, `the value is not a list of visits: ${String(value)}`)]),
  // Nothing changes, in the range it walked least of all.
  effect: (before, c) => nothingBut(windowsOf(rootEntries(before), [c])),
};
