/**
 * protect's postcondition (spec/contracts/protect.ts), clause by clause.
 */
import { PAGES, type PageSize, type Vpn } from '../../address.ts';
import { protEquals, type Leaf, type SystemConfig } from '../../state.ts';
import type { ProtChange } from '../../system.ts';
import { directMapVpn } from '../directmap.ts';
import { validateProtect } from '../protect.ts';
import { rangeFlush, rootEntries } from './effect.ts';
import {
  changedAt, entryAt, firstEndingAfter, firstHole, kinds, leafEnd, meeting, sameLeaf, sizeBelow, unchangedAt, windowsOf,
  type Entries, type EntryChange, type Expectation, type Mismatch,
} from './leaves.ts';
import { RangeSet, rangeEnd, type Range } from './ranges.ts';
import type { Clause } from './clause.ts';
import { contractClauses, type Contract } from './relation.ts';

const flushSentence = 'Flushed on all CPUs (flush.ts): [vpn, vpn+pages), with alias the direct-map pages of all those frames, mapped or not, and with collapse every block collapsed';

const say = contractClauses('protect', {
  enoent: 'ENOENT some page of [vpn, vpn+pages) has no entry (neither a leaf nor a non-present entry)',
  leaves:
    'An entry is a leaf or a non-present entry (AbstractRoot.nonPresent): both carry a frame and a prot, and the change applies to both. ' +
    'Every page p of the range gets its old prot with the change applied: each field the change gives is set, every other kept, `exec: v` sets execKernel = v and execUser = v && user, `kernel4k` sets kernel4k; ' +
    "`present: false` makes p's entry non-present, `present: true` present (frame and prot kept either way). " +
    'An entry only partly inside the range is split (split rule, recursively: hugepage.ts) only where its prot or presence actually changes; one that stays is left whole',
  kernel4k: "With `kernel4k` every page of the range ends up in a 4K entry (the kernel's force_split), whatever it had, and the pieces outside the range follow the split rule",
  alias:
    "With alias, for each frame f mapped by the range at a vpn outside the direct map (isDirectMapVpn), the page directMapVpn(f) then, as a second step after the range's own change, gets the change's write and cache fields only " +
    '(never exec: the direct map stays NX; never global, present or kernel4k: strict keeps the alias mapped and its page size its own) by the same rule; alias pages without an entry are skipped (cpa_process_alias)',
  collapse:
    'With collapse (set_memory_rox), after the change: for each 2M-aligned block B meeting the range, in address order, if B is mapped by 512 present 4K leaves with one prot without kernel4k and contiguous frames from a 2M-aligned pfn, ' +
    'and the CPU has PSE, they become one 2M leaf with that prot (collapse_pmd_page); right after such a collapse, if the CPU has GB pages and the 1G block around B is then 512 present 2M leaves with one prot and contiguous frames from a 1G-aligned pfn, ' +
    'they become one 1G leaf (collapse_pud_page). A block that cannot collapse stays as it is: collapse never fails',
  frames: 'Frames are unchanged',
  tlb: flushSentence,
  obligations: flushSentence,
  tables: 'ENOMEM the splits need more tables than the pool has (judged before any collapse; the tables the collapses free are released by the flush)',
});

/**
 * An entry's prot and presence after a set_memory_* request (system.ts, ProtChange):
 * every field the change gives is set, every other kept; `exec` sets execute for each
 * privilege that can reach the page, so a supervisor page never gains user execute;
 * `kernel4k` is only ever set; `present` moves the entry between the two kinds.
 */
function changed(change: ProtChange): EntryChange {
  return (old, present) => ({
    prot: {
      ...old,
      ...(change.write === undefined ? {} : { write: change.write }),
      ...(change.exec === undefined ? {} : { execKernel: change.exec, execUser: change.exec && old.user }),
      ...(change.global === undefined ? {} : { global: change.global }),
      ...(change.cache === undefined ? {} : { cache: change.cache }),
      ...(change.kernel4k === true ? { kernel4k: true } : {}),
    },
    present: change.present ?? present,
  });
}

/**
 * The direct-map pages cpa_process_alias changes: those of the frames that the range's
 * entries (of either kind: cpa takes the frame from the entry whatever its P bit) hold at
 * pages outside the direct map ([directMapVpn(0), +frames), as isDirectMapVpn).
 */
function aliasPages(config: SystemConfig, entries: Entries, r: Range): Range[] {
  const directMap = new RangeSet([{ vpn: directMapVpn(config.levels, 0), pages: config.frames }]);
  return kinds(entries).flatMap(([list]) => {
    const [lo, hi] = meeting(list, r);
    return list.slice(lo, hi).flatMap((l) =>
      directMap.outside(Math.max(l.vpn, r.vpn), Math.min(leafEnd(l), rangeEnd(r))).map((part) => ({ vpn: directMapVpn(config.levels, l.pfn + (part.vpn - l.vpn)), pages: part.pages })),
    );
  });
}

const aliasOf = (config: SystemConfig, entries: Entries, c: { readonly vpn: number; readonly pages: number; readonly alias?: boolean }): Range[] =>
  c.alias === true ? aliasPages(config, entries, c) : [];

const alignDown = (n: number, size: PageSize): number => n - (n % PAGES[size]);
const blockAt = (vpn: Vpn, size: PageSize): Range => ({ vpn: alignDown(vpn, size), pages: PAGES[size] });

/**
 * The leaf `block` (of `size`) becomes if, under `at`, it is 512 present leaves of the next
 * size down with one prot without kernel4k and contiguous frames from a size-aligned pfn;
 * null otherwise. Walks the runs of `at`, so it stops at the first entry that fails.
 */
function collapsible(at: Expectation, block: Range, size: '2M' | '1G'): Leaf | null {
  const small = sizeBelow(size)!;
  const head = at(block.vpn).leaf;
  if (head === undefined || head.pfn % PAGES[size] !== 0 || head.prot.kernel4k === true) return null;
  for (let p = block.vpn; p < rangeEnd(block); ) {
    const e = at(p);
    const l = e.leaf;
    if (l === undefined || e.present === false || l.size !== small || l.vpn !== p || l.pfn !== head.pfn + (p - block.vpn) || !protEquals(l.prot, head.prot)) return null;
    // The run: leaves of l's size, its frames going on, its prot.
    p = e.until;
  }
  return { vpn: block.vpn, pfn: head.pfn, size, prot: head.prot };
}

/**
 * The collapses (collapse_pmd_page, collapse_pud_page) after the change `at`: the 2M
 * blocks meeting the range, in address order, and the 1G block around each one collapsed.
 * A 1G block collapses right after some 2M collapse in it or never; after it, no block
 * of it can collapse again, so testing it once after its last 2M collapse decides the
 * same. The leaves made, sorted (a 1G one replaces the 2M ones in it), and the tables the
 * collapses free (one PTE table per 2M collapse, one PMD table per 1G).
 */
function collapsesOf(config: SystemConfig, at: Expectation, range: Range): { leaves: Leaf[]; tables: number } {
  const out: Leaf[] = [];
  let tables = 0;
  if (!config.features.pse) return { leaves: out, tables };
  const now = collapsedAt(at, out);
  let giga: Vpn | undefined;
  const tryGiga = (): void => {
    if (giga === undefined || !config.features.gbpages) return;
    const one = collapsible(now, blockAt(giga, '1G'), '1G');
    if (one !== null) {
      while (out.length > 0 && out[out.length - 1]!.vpn >= one.vpn) out.pop();
      out.push(one);
      tables++;
    }
    giga = undefined;
  };
  for (let b = alignDown(range.vpn, '2M'); b < rangeEnd(range); b += PAGES['2M']) {
    if (giga !== undefined && alignDown(b, '1G') !== giga) tryGiga();
    const two = collapsible(now, blockAt(b, '2M'), '2M');
    if (two === null) continue;
    out.push(two);
    tables++;
    giga = alignDown(b, '1G');
  }
  tryGiga();
  return { leaves: out, tables };
}

/** `at` with the collapsed leaves (sorted) in place of what they cover; runs stop at them. */
function collapsedAt(at: Expectation, collapsed: readonly Leaf[]): Expectation {
  return (p) => {
    const next = collapsed[firstEndingAfter(collapsed, p)];
    if (next !== undefined && next.vpn <= p) return { leaf: next, until: leafEnd(next) };
    const e = at(p);
    return next === undefined || e.until <= next.vpn ? e : { ...e, until: next.vpn };
  };
}

/**
 * The clause a wrong entry breaks: collapse's where a block collapsed or a new larger
 * leaf stands where none was due (a collapse that should not have happened); kernel4k's
 * where a page of the range is held by an entry that is not 4K or not kernel4k; else the
 * range's own change, or the alias's outside the range's windows.
 */
function clauseFor(before: Entries, c: { readonly vpn: number; readonly pages: number; readonly change: ProtChange; readonly collapse?: boolean }, own: RangeSet, collapsed: RangeSet): (m: Mismatch) => Clause {
  return (m) => {
    const w = m.want?.leaf;
    const f = m.found?.leaf;
    const madeLarger = c.collapse === true && w !== undefined && f !== undefined && m.found!.present && PAGES[f.size] > PAGES[w.size] && !wasThere(before, f);
    if (collapsed.has(m.at) || madeLarger) return say.collapse;
    const notKept4K = f !== undefined && (f.size !== '4K' || f.prot.kernel4k !== true);
    if (c.change.kernel4k === true && m.at >= c.vpn && m.at < c.vpn + c.pages && notKept4K) return say.kernel4k;
    return own.has(m.at) ? say.leaves : say.alias;
  };
}

/** Whether the after-state's leaf `l` stood there before (an entry left as it was, not one a collapse made). */
function wasThere(before: Entries, l: Leaf): boolean {
  const e = entryAt(before, l.vpn);
  return e !== undefined && sameLeaf(e.leaf, l);
}

export const PROTECT: Contract<'protect'> = {
  source: 'spec/contracts/protect.ts',
  say,
  args: (config, c) => validateProtect(config, c.vpn, c.pages, c.change),
  // ENOENT: a page of the range with no entry of either kind.
  state: (before, c) => (firstHole(rootEntries(before), c) === undefined ? null : { error: { errno: 'ENOENT', arg: 'vpn' }, clause: say.enoent }),
  scope: (before, c) => [c, ...aliasOf(before.config, rootEntries(before), c)],
  effect: (before, c) => {
    const entries = rootEntries(before);
    const alias = aliasOf(before.config, entries, c);
    // leaves, kernel4k: the range's own change on entries of both kinds, splitting only
    // those whose prot or presence it alters (every one of the range to 4K with kernel4k).
    const own = changedAt(unchangedAt(entries), new RangeSet([c]), changed(c.change), c.change.kernel4k === true);
    // alias: then write and cache (never exec, global, present, kernel4k) on the alias pages, by the same rule.
    const changedAll = alias.length === 0 ? own : changedAt(own, new RangeSet(alias), changed({ write: c.change.write, cache: c.change.cache }));
    // collapse: after the change, the range's 2M blocks and the 1G blocks around them.
    const { leaves: collapsed, tables } = c.collapse === true ? collapsesOf(before.config, changedAll, c) : { leaves: [], tables: 0 };
    const blocks = collapsed.map((l) => ({ vpn: l.vpn, pages: PAGES[l.size] }));
    const everything = [c, ...alias, ...blocks];
    return {
      windows: new RangeSet([...windowsOf(entries, [c, ...alias]).ranges, ...blocks]),
      expect: collapsed.length === 0 ? changedAll : collapsedAt(changedAll, collapsed),
      clauseAt: clauseFor(entries, c, windowsOf(entries, [c]), new RangeSet(blocks)),
      // tlb, obligations, tables: the range, every alias range and every collapsed block
      // flushed; the tables the collapses free count toward ENOMEM (judged before them).
      flushed: rangeFlush(everything),
      collapsedTables: tables,
    };
  },
};
