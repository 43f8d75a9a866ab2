/**
 * The TLB, paging-structure-cache and flush-obligation rules a campaign exercised
 * (spec/contracts/flush.ts, access.ts, unmap.ts, frames.ts): each rule is detected from
 * one step — the model's state before, the command, its outcome, the model's state after
 * — plus a little of the trace behind it (the last few steps, the frames restored to the
 * direct map), so the summary can say which rules a campaign met and which it never did.
 * A rule met is no proof the systems follow it (refinement and the postconditions check
 * that); a rule never met is a rule nothing checked.
 *
 * The model's states are the reference's: the rule is what the contract says happened.
 */
import { PAGES, kernelLayout, type PagingLevels, type Pfn, type Vpn } from '../spec/address.ts';
import type { Command } from '../spec/commands.ts';
import { TLB_SINGLE_PAGE_FLUSH_CEILING } from '../spec/contracts/linux.ts';
import { coveringTlbEntries, walkStart } from '../spec/contracts/post/access.ts';
import { RangeSet, type Range } from '../spec/contracts/post/ranges.ts';
import { notCurrent } from '../spec/invariants/tlb.ts';
import { OPERATIONS } from '../spec/operations.ts';
import type { AbstractState, FlushObligation, TlbEntry, WalkCacheEntry } from '../spec/state.ts';
import type { AccessOutcome, Profile } from '../spec/system.ts';
import { leavesUnder } from '../checker/tlb.ts';
import type { StepOutcome } from './compare.ts';
import { LIFECYCLE_RULES, LIFECYCLE_WINDOW, completedBlock, type RanStep } from './lifecycles.ts';
import { WORKLOAD_RULES, workloadRule } from './workload.ts';

/** One step as the detectors read it. */
export interface RuleStep {
  readonly before: AbstractState;
  readonly command: Command;
  readonly outcome: StepOutcome;
  readonly after: AbstractState;
}

/** What a trace remembers for the rules that need more than one step. */
export interface RuleHistory {
  /** The last LIFECYCLE_WINDOW steps, oldest first, this one last. */
  readonly recent: RanStep[];
  /** Frames removed from the direct map and put back since (setDirectMapDefault of a noDirectMap frame). */
  restored: RangeSet;
}

export function emptyRuleHistory(): RuleHistory {
  return { recent: [], restored: RangeSet.EMPTY };
}

export interface CoverageRule {
  readonly id: string;
  /** What the rule is, as the summary says it. */
  readonly says: string;
  /** The profiles that can reach it (both when absent). */
  readonly profiles?: readonly Profile[];
}

/**
 * Every rule, in the order the summary lists them. Strict-only ones need a table left
 * pending free: only strict's `_noflush` forms leave one (linux.ts: vunmap frees no table,
 * set_direct_map_* empties none, and every table linux frees is flushed first).
 */
export const COVERAGE_RULES: readonly CoverageRule[] = [
  { id: 'tlb-hit', says: 'an access served by a TLB entry of its CPU and root' },
  { id: 'tlb-fill', says: 'an access that missed the TLB, walked the tables and filled an entry' },
  { id: 'stale-tlb-hit', says: 'a TLB hit on an entry that is not a current translation (a flush still owed, or missed)' },
  // Strict's map purges what is owed where it maps (map.ts), so only linux caches a page at two sizes.
  { id: 'smallest-overlapping-tlb-entry-wins', says: 'a hit where two or more entries of the CPU and root cover the page (the smallest is used)', profiles: ['linux'] },
  { id: 'walk-cache-fill', says: 'a walk that cached the table entries above its leaf' },
  { id: 'walk-through-cached-table', says: 'a TLB miss whose walk starts at a current paging-structure-cache entry' },
  { id: 'walk-through-unlinked-table', says: 'a not-present fault because the deepest cached table entry is unlinked', profiles: ['strict'] },
  { id: 'range-flush', says: `a flush of at most ${TLB_SINGLE_PAGE_FLUSH_CEILING} pages (INVLPG page by page)` },
  { id: 'range-flush-over-ceiling', says: `a flush of more than ${TLB_SINGLE_PAGE_FLUSH_CEILING} pages acting as a full flush (tlb_single_page_flush_ceiling)` },
  { id: 'local-flush', says: 'a flushLocal that dropped entries of its CPU only' },
  { id: 'local-flush-keeps-obligation', says: 'a flushLocal over an owed flush that stays owed' },
  { id: 'flush-all', says: 'flushAll' },
  { id: 'obligation-added', says: 'a step that left a flush owed where none was' },
  { id: 'obligation-merged', says: 'an owed flush merged with another (reasons joined)' },
  { id: 'obligation-partly-discharged', says: 'a flush that cut an owed flush into pieces' },
  { id: 'pending-table-released', says: 'a flush that released a table pending free', profiles: ['strict'] },
  { id: 'split-discharges-owed-flushes', says: "an operation whose own flush discharged a flush owed outside its range (a split's full flush)" },
  { id: 'noflush-unmap', says: 'vunmap_range_noflush (unmap with flush: false)' },
  { id: 'freed-frame-restored', says: 'freeFrames of a frame that was removed from the direct map and restored' },
  { id: 'lifecycle-secretmem', says: 'secretmem_fault: allocFrames, set_direct_map_invalid_noflush, flush of the page' },
  { id: 'lifecycle-secretmem-free', says: 'secretmem_free_folio: set_direct_map_default_noflush, freeFrames of the page' },
  { id: 'lifecycle-guest_memfd', says: "guest_memfd's direct-map removal of a folio: allocFrames, invalid noflush, flush" },
  { id: 'lifecycle-guest_memfd-restore', says: "guest_memfd's restore of a folio: default noflush, freeFrames" },
  { id: 'lifecycle-vm_reset_perms', says: 'vfree of a VM_FLUSH_RESET_PERMS area: noflush unmap, invalid, one flush over both, default, free' },
  ...WORKLOAD_RULES,
];

export const RULE_IDS: readonly string[] = COVERAGE_RULES.map((r) => r.id);

/** The rules a profile can reach (with none given, every rule). */
export function reachableRules(profile?: Profile): CoverageRule[] {
  return COVERAGE_RULES.filter((r) => profile === undefined || r.profiles === undefined || r.profiles.includes(profile));
}

const tlbEnd = (e: TlbEntry): Vpn => e.leaf.vpn + PAGES[e.leaf.size];
const meets = (r: Range, lo: Vpn, hi: Vpn): boolean => r.vpn < hi && lo < r.vpn + r.pages;
const owedSet = (s: AbstractState): RangeSet => new RangeSet(s.pendingFlush);
const sameObligation = (a: FlushObligation, b: FlushObligation): boolean => a.vpn === b.vpn && a.pages === b.pages && a.reason === b.reason;


/** The access rules: hit or walk, and where the walk started. */
function accessRules(s: RuleStep, out: string[]): void {
  const c = s.command;
  if (c.op !== 'access' || s.outcome.outcome !== 'ok') return;
  const a = s.outcome.value as AccessOutcome | undefined;
  if (a === undefined) return;
  // The access's own rules (spec/contracts/post/access.ts): the entries it may hit, where its walk starts.
  const cached = coveringTlbEntries(s.before.tlb, c);
  // A hit: the outcome says so when it is no fault; a protection fault on a hit does not, the state before does.
  const hit = a.fault === false ? a.fromTlb : cached.length > 0;
  if (hit) {
    out.push('tlb-hit');
    const used = cached[0];
    if (used !== undefined && notCurrent(used, leavesUnder(s.before, used)) !== undefined) out.push('stale-tlb-hit');
    if (cached.length >= 2) out.push('smallest-overlapping-tlb-entry-wins');
    return;
  }
  if (a.fault === false) out.push('tlb-fill');
  const start = walkStart(s.before.walkCache ?? [], c);
  if (start?.table === 'current') out.push('walk-through-cached-table');
  if (start !== undefined && start.table !== 'current' && a.fault === 'not-present') out.push('walk-through-unlinked-table');
  const had = new Set((s.before.walkCache ?? []).map(walkKey));
  if ((s.after.walkCache ?? []).some((w) => !had.has(walkKey(w)))) out.push('walk-cache-fill');
}

const walkKey = (w: WalkCacheEntry): string => `${w.cpu}/${w.root}/${w.level}/${w.vpn}/${w.table}`;

/** The flush rules of flush, flushLocal and flushAll. */
function flushRules(s: RuleStep, out: string[]): void {
  const c = s.command;
  if (s.outcome.outcome !== 'ok') return;
  if (c.op === 'flushAll') out.push('flush-all');
  if (c.op === 'flush') {
    if (c.pages <= TLB_SINGLE_PAGE_FLUSH_CEILING) out.push('range-flush');
    else {
      // A full flush: something cached or owed outside the range went too.
      const hi = c.vpn + c.pages;
      const outside = s.before.tlb.some((e) => !meets({ vpn: e.leaf.vpn, pages: tlbEnd(e) - e.leaf.vpn }, c.vpn, hi))
        || s.before.pendingFlush.some((o) => !meets(o, c.vpn, hi));
      const emptied = s.after.tlb.length === 0 && s.after.pendingFlush.length === 0 && (s.after.walkCache ?? []).length === 0;
      if (outside && emptied) out.push('range-flush-over-ceiling');
    }
  }
  if (c.op === 'flushLocal') {
    const hi = c.vpn + c.pages;
    const mine = (e: { cpu: number }): boolean => e.cpu === c.cpu;
    const dropped = s.before.tlb.some((e) => mine(e) && e.leaf.vpn < hi && c.vpn < tlbEnd(e)) || (s.before.walkCache ?? []).some(mine);
    if (dropped) out.push('local-flush');
    if (s.before.pendingFlush.some((o) => meets(o, c.vpn, hi) && s.after.pendingFlush.some((p) => sameObligation(o, p)))) out.push('local-flush-keeps-obligation');
  }
}

/** The ranges an operation names, and the direct map when it changes direct-map aliases: what its own flush covers. */
function ownRanges(c: Command, levels: PagingLevels, frames: number): Range[] {
  const pageOffset = kernelLayout(levels).pageOffset;
  const touched = (OPERATIONS[c.op].touches as (c: Command, pageOffset: Vpn) => { ranges: readonly Range[]; directMapAliases: boolean })(c, pageOffset);
  return [...touched.ranges, ...(touched.directMapAliases ? [{ vpn: pageOffset, pages: frames }] : [])];
}

const FLUSH_OPS: ReadonlySet<Command['op']> = new Set(['flush', 'flushAll', 'flushLocal']);

/** The obligation rules: added, merged, cut, and discharged by another operation's flush. */
function obligationRules(s: RuleStep, out: string[]): void {
  if (s.outcome.outcome !== 'ok') return;
  const was = owedSet(s.before);
  const now = owedSet(s.after);
  const fresh = s.after.pendingFlush.filter((o) => !s.before.pendingFlush.some((b) => sameObligation(o, b)));
  if (fresh.some((o) => was.outside(o.vpn, o.vpn + o.pages).length > 0)) out.push('obligation-added');
  const merged = fresh.some((o) => {
    const grew = was.meets(o.vpn, o.vpn + o.pages) && was.outside(o.vpn, o.vpn + o.pages).length > 0;
    const joined = o.reason.includes('+') && !s.before.pendingFlush.some((b) => b.reason === o.reason && meets(b, o.vpn, o.vpn + o.pages));
    return grew || joined;
  });
  if (merged) out.push('obligation-merged');
  const cut = s.before.pendingFlush.some((b) => {
    const gone = now.outside(b.vpn, b.vpn + b.pages).reduce((n, r) => n + r.pages, 0);
    return gone > 0 && gone < b.pages;
  });
  if (cut) out.push('obligation-partly-discharged');
  if (s.after.pendingTableFrees < s.before.pendingTableFrees) out.push('pending-table-released');
  if (!FLUSH_OPS.has(s.command.op)) {
    const own = new RangeSet(ownRanges(s.command, s.before.config.levels, s.before.config.frames));
    // A page owed before, outside what the operation names, owed no more.
    const discharged = s.before.pendingFlush.some((b) =>
      own.outside(b.vpn, b.vpn + b.pages).some((r) => now.outside(r.vpn, r.vpn + r.pages).length > 0));
    if (discharged) out.push('split-discharges-owed-flushes');
  }
}

/** Frames whose direct-map page a successful setDirectMapDefault put back. */
function restoredFrames(s: RuleStep): Range[] {
  const c = s.command;
  if (c.op !== 'setDirectMapDefault' || s.outcome.outcome !== 'ok') return [];
  const out: Range[] = [];
  for (const r of s.before.frames) {
    if (!r.noDirectMap) continue;
    const lo = Math.max(r.pfn, c.pfn);
    const hi = Math.min(r.pfn + r.count, c.pfn + c.count);
    if (lo < hi) out.push({ vpn: lo, pages: hi - lo });
  }
  return out;
}

const framesMeet = (set: RangeSet, pfn: Pfn, count: number): boolean => set.meets(pfn, pfn + count);

/** The rules one step exercised, each once, in COVERAGE_RULES order; `history` moves on by the step. */
export function stepRules(s: RuleStep, history: RuleHistory): string[] {
  const out: string[] = [];
  const c = s.command;
  const ok = s.outcome.outcome === 'ok';
  accessRules(s, out);
  flushRules(s, out);
  obligationRules(s, out);
  if (c.op === 'unmap' && c.flush === false && ok) out.push('noflush-unmap');
  if (c.op === 'freeFrames' && ok && framesMeet(history.restored, c.pfn, c.count)) out.push('freed-frame-restored');
  const back = restoredFrames(s);
  if (back.length > 0) history.restored = new RangeSet([...history.restored.ranges, ...back]);
  history.recent.push({ command: c, ok });
  if (history.recent.length > LIFECYCLE_WINDOW) history.recent.shift();
  const block = completedBlock(history.recent, kernelLayout(s.before.config.levels).pageOffset);
  if (block !== undefined) out.push(block);
  const work = workloadRule(c, ok, s.before.config.levels);
  if (work !== undefined) out.push(work);
  const seen = new Set(out);
  return RULE_IDS.filter((id) => seen.has(id));
}

// The lifecycle rules are named by fuzz/lifecycles.ts; each must be a rule here.
for (const id of LIFECYCLE_RULES) if (!RULE_IDS.includes(id)) throw new Error(`lifecycle rule ${id} is not in COVERAGE_RULES`);
