/**
 * What a successful operation does to the whole state, as data (`Effect`), and the check
 * of an after-state against it: the entries of init_mm (leaves and non-present entries,
 * leaves.ts) where it acts and the frame condition elsewhere, the frame runs, the TLBs, the flush obligations and the page-table
 * counts, and the clients' bookkeeping (spec/clients.ts) where the system has it. A
 * refused operation is the effect that changes nothing (`unchanged`).
 *
 * The TLB and obligation rules are flush.ts's, the table rules its "Deferred table frees"
 * and state.ts's `tablesInUse`, each restated here set-wise rather than by calling the
 * helpers model and impl use.
 */
import { PAGES, leafLevel, pagesPerEntry, pfnToHex, vpnToHex, type Level, type PageSize, type PagingLevels, type Pfn, type Vpn } from '../../address.ts';
import type { ClientState, MermapAlloc } from '../../clients.ts';
import { tableFootprint } from '../../footprint.ts';
import { heldMirrors, mirrorHolding, rootOf, tableOwner } from '../../roots.ts';
import { INIT_MM, type AbstractRoot, type AbstractState, type FlushObligation, type FrameRun, type FrameUse, type Leaf, type RootId, type RootKind, type TlbEntry, type WalkCacheEntry } from '../../state.ts';
import { breach, leafText, type Clause, type PostMode, type PostViolation } from './clause.ts';
import { checkOutside, checkTranslation, checkWindows, firstEndingAfter, kinds, leafAt, leafEnd, leavesOnly, meeting, sameLeaf, sameLists, unchangedAt, type Entries, type Expectation, type Mismatch } from './leaves.ts';
import { RangeSet, rangeEnd, type Range } from './ranges.ts';

/** The parts of the state an effect speaks of; each relation names a clause for each. */
export type Aspect = 'leaves' | 'frame' | 'frames' | 'tlb' | 'obligations' | 'tables';
export type AspectClauses = Readonly<Record<Aspect, Clause>>;
/**
 * The isolation operations also name the sentence that says how the set of roots changes;
 * the client operations those of their bookkeeping and of the mermap's stale lists.
 */
type EffectClauses = AspectClauses & { readonly roots?: Clause; readonly clients?: Clause; readonly stale?: Clause };

/** A root an operation creates: it must have no own leaves, non-present entries or diverged slots. */
export interface NewRoot {
  readonly id: RootId;
  readonly kind: RootKind;
  readonly pid?: number;
}

/**
 * What an isolation operation does to a root other than init_mm: its own entries in
 * `windows` are as `expect` says (`pagewise`: only the translation of each page is fixed,
 * in leaves of at most that size; else the entries exactly), under `clause`.
 */
export interface RootEdit {
  readonly windows: RangeSet;
  readonly expect: Expectation;
  readonly pagewise?: PageSize;
  readonly clause: Clause;
}

/** A flush the operation owes for `range`, with its reason. */
export interface Debt {
  readonly range: Range;
  readonly reason: string;
}

/** A frame range whose noDirectMap becomes `value`. */
export interface DirectMapFlag {
  readonly pfn: Pfn;
  readonly count: number;
  readonly value: boolean;
}

/** One frame range whose use becomes `value`. */
export interface FrameChange {
  readonly pfn: Pfn;
  readonly count: number;
  readonly value: FrameUse;
}

export interface Effect {
  /** Where init_mm's entries may change: the ranges the contract names, widened to whole entries. */
  readonly windows: RangeSet;
  /** What the after-state holds at each page of the windows; absent: the entries as they were. */
  readonly expect?: Expectation;
  /** The clause an entry found wrong breaks, from where and what (default: the `leaves` clause). */
  readonly clauseAt?: (m: Mismatch) => Clause;
  /**
   * Flushed on all CPUs: TLB entries meeting it dropped, every paging-structure cache
   * emptied, obligations there discharged, pending tables there released. Build it with
   * `rangeFlush`, which applies the ceiling.
   */
  readonly flushed: RangeSet | 'all';
  /** flushLocal: one CPU's TLB entries meeting the range dropped and its paging-structure caches emptied; nothing else. */
  readonly flushedLocal?: { readonly cpu: number; readonly range: Range };
  /** allocFrames / freeFrames, exitProcess and setLdt (LDT frames freed): the frames whose use changes. */
  readonly frameUse?: readonly FrameChange[];
  /** A `_noflush` operation's debt (several: added in order, after the flushes). */
  readonly owe?: Debt | readonly Debt[];
  /** set_direct_map_* (and the clients that call them): the frames whose noDirectMap becomes `value`. */
  readonly noDirectMap?: DirectMapFlag | readonly DirectMapFlag[];
  /** access: the entry a walk inserts into the TLB. */
  readonly fill?: TlbEntry;
  /** setDirectMapInvalid without flush: the tables it empties stay pending (flush.ts, the rule "Deferred table frees"). */
  readonly emptiedStayPending?: boolean;
  /**
   * protect with collapse: the tables its collapses free. The pool bound is judged before
   * any collapse (protect.ts), so they count toward ENOMEM though the after-state lacks them.
   */
  readonly collapsedTables?: number;
  /** createProcess: the roots it adds. */
  readonly added?: readonly NewRoot[];
  /** exitProcess: the roots it removes. */
  readonly removed?: readonly RootId[];
  /** The other roots whose own entries change, and how; every other root keeps its entries (the frame condition). */
  readonly edits?: ReadonlyMap<RootId, RootEdit>;
  /** The roots whose diverged slots change (linux ptiClone), and to what; every other keeps them. */
  readonly diverged?: ReadonlyMap<RootId, readonly Vpn[]>;
  /**
   * A process flush (flush_tlb_mm_range): on every CPU, the TLB entries of `roots` meeting
   * `range` (every one of theirs when absent: exit) and all their paging-structure-cache
   * entries go; it pays no obligation and releases no pending table.
   */
  readonly processFlush?: { readonly roots: readonly RootId[]; readonly range?: Range };
  /** The linux profile may keep the tables the change empties (vunmap, a pmd overwritten) rather than free them. */
  readonly emptiedMayStay?: boolean;
  /**
   * Tables kept empty from before may be freed too (linux's remove_pagetable frees the empty
   * tables its walk meets, whoever emptied them): as few tables as the entries need.
   */
  readonly keptMayGo?: boolean;
  /**
   * The client operations: the clients' bookkeeping after (spec/clients.ts), before the
   * effect's flushes meet the mermap's stale allocations; absent: as before. Either way
   * every stale allocation a flush of the effect covers is dropped (checkClients).
   */
  readonly clients?: ClientState;
}

/** tlb_single_page_flush_ceiling (arch/x86/mm/tlb.c), restated: a range flush of more pages is a full one (flush.ts). */
const FLUSH_CEILING = 33;

/**
 * What flushing `ranges` on all CPUs amounts to (flush.ts): the ranges merged where they
 * overlap or touch, and a full flush if any merged range has more than 33 pages.
 */
export function rangeFlush(ranges: readonly Range[]): RangeSet | 'all' {
  const set = new RangeSet(ranges);
  return set.ranges.some((r) => r.pages > FLUSH_CEILING) ? 'all' : set;
}

export const rootLeaves = (s: AbstractState, id: number = INIT_MM): readonly Leaf[] => s.roots.find((r) => r.id === id)?.leaves ?? [];

/**
 * The leaf that root `id`'s view (spec/roots.ts rootView) has at `vpn`: its own, or
 * through the mirror that holds vpn, the source root's (recursively; a mirror cycle, which
 * only a hand-built state has, translates nothing, as in rootView). A binary search per
 * root on the way, so a translate or access through a process root stays cheap.
 */
export function viewLeafAt(s: AbstractState, id: RootId, vpn: Vpn, seen?: ReadonlySet<RootId>): Leaf | undefined {
  const root = rootOf(s, id);
  if (root === undefined || seen?.has(id) === true) return undefined;
  const m = mirrorHolding(heldMirrors(s.config.levels, root), vpn);
  if (m === undefined) return leafAt(root.leaves, vpn);
  const path = new Set(seen);
  path.add(id);
  return viewLeafAt(s, m.from, vpn, path);
}

export const entriesOf = (root: AbstractRoot | undefined): Entries => (root === undefined ? leavesOnly([]) : root.nonPresent === undefined ? leavesOnly(root.leaves) : { leaves: root.leaves, nonPresent: root.nonPresent });

/**
 * Every entry of a root that holds its page-table slot: the leaves and the non-present
 * entries, as the root's two lists (no copy). What map finds occupied, unmap removes,
 * protect changes and the table footprint counts.
 */
export function rootEntries(s: AbstractState, id: number = INIT_MM): Entries {
  return entriesOf(s.roots.find((r) => r.id === id));
}

/** Both lists as one, in vpn order (the whole root: full mode only). */
const merged = (e: Entries): readonly Leaf[] => (e.nonPresent.length === 0 ? e.leaves : [...e.leaves, ...e.nonPresent].sort((a, b) => a.vpn - b.vpn));

/** The effect of an operation that changes nothing but what `extra` says. */
export function nothingBut(windows: RangeSet, extra: Partial<Effect> = {}): Effect {
  return { windows, flushed: RangeSet.EMPTY, ...extra };
}

/** The after-state against the effect: every aspect, under the clauses `say` names. `ok`: the operation succeeded (the pool bound applies). */
export function checkEffect(before: AbstractState, after: AbstractState, e: Effect, mode: PostMode, say: EffectClauses, ok: boolean): PostViolation[] {
  const b = rootEntries(before);
  const a = rootEntries(after);
  // Entries expected as they were, and the very same arrays: nothing to walk.
  const entriesKept = e.expect === undefined && sameLists(a, b);
  return [
    ...checkRootSet(before, after, e, say.roots ?? say.frame),
    ...(entriesKept ? [] : checkWindows(INIT_MM, a, e.windows, e.expect ?? unchangedAt(b), e.clauseAt ?? (() => say.leaves))),
    ...checkOutside(INIT_MM, b, a, e.windows, mode, say.frame),
    ...checkOtherRoots(before, after, e, mode, say.frame),
    ...checkFrames(before, after, e, say.frames),
    ...checkTlb(before.tlb, after.tlb, e, say.tlb),
    ...checkWalkCache(before, after, e, say.tlb),
    ...checkObligations(before.pendingFlush, after.pendingFlush, e, say.obligations),
    ...checkTables(before, after, e, mode, say.tables, ok),
    ...checkClients(before, after, e, say),
  ];
}

/** "A failed operation changes nothing" (spec/errors.ts): every root, frames, TLB, obligations, counts, the clients' bookkeeping. */
export function unchanged(before: AbstractState, after: AbstractState, windows: RangeSet, mode: PostMode, clause: Clause): PostViolation[] {
  const say = { leaves: clause, frame: clause, frames: clause, tlb: clause, obligations: clause, tables: clause, clients: clause, stale: clause };
  return checkEffect(before, after, nothingBut(windows), mode, say, false);
}

const sameVpns = (a: readonly Vpn[], b: readonly Vpn[]): boolean => a.length === b.length && a.every((v, k) => v === b[k]);

/**
 * The roots after: those before but the removed ones, plus the added ones (which own
 * nothing yet), in id order, each with its kind, pid and diverged slots (as before, or as
 * the effect says).
 */
function checkRootSet(before: AbstractState, after: AbstractState, e: Effect, clause: Clause): PostViolation[] {
  const removed = new Set(e.removed ?? []);
  const want: readonly NewRoot[] = e.added === undefined && removed.size === 0 ? before.roots : [...before.roots.filter((r) => !removed.has(r.id)), ...(e.added ?? [])].sort((x, y) => x.id - y.id);
  const is = after.roots;
  const ids = (rs: readonly NewRoot[]): string => rs.map((r) => `${r.id}:${r.kind}${r.pid === undefined ? '' : `:${r.pid}`}`).join(',');
  const same = want.length === is.length && want.every((r, k) => r.id === is[k]!.id && r.kind === is[k]!.kind && r.pid === is[k]!.pid);
  if (!same) return [breach(clause, `the roots should be [${ids(want)}], found [${ids(is)}]`)];
  const added = new Set((e.added ?? []).map((r) => r.id));
  for (const r of is) {
    const was = before.roots.find((x) => x.id === r.id);
    const diverged = e.diverged?.get(r.id) ?? was?.diverged ?? [];
    if (!sameVpns(r.diverged ?? [], diverged)) return [breach(clause, `root ${r.id}'s diverged slots should be [${diverged.map(vpnToHex).join(', ')}], found [${(r.diverged ?? []).map(vpnToHex).join(', ')}]`)];
    if (added.has(r.id) && (r.leaves.length > 0 || (r.nonPresent?.length ?? 0) > 0)) return [breach(clause, `the new root ${r.id} should own no entry, found ${r.leaves.length} leaves and ${r.nonPresent?.length ?? 0} non-present entries`)];
  }
  return [];
}

/**
 * Every root but init_mm that is there before and after: its own entries as the effect's
 * edit says in its windows, and as they were elsewhere (the frame condition: core
 * operations edit init_mm only). Unedited roots with the very same lists cost nothing.
 */
function checkOtherRoots(before: AbstractState, after: AbstractState, e: Effect, mode: PostMode, frame: Clause): PostViolation[] {
  const out: PostViolation[] = [];
  for (const r of after.roots) {
    const was = r.id === INIT_MM ? undefined : before.roots.find((x) => x.id === r.id);
    if (was === undefined) continue;
    const b = entriesOf(was);
    const a = entriesOf(r);
    const edit = e.edits?.get(r.id);
    if (edit !== undefined) {
      out.push(...(edit.pagewise === undefined ? checkWindows(r.id, a, edit.windows, edit.expect, () => edit.clause) : checkTranslation(r.id, a, edit.windows, edit.expect, edit.pagewise, edit.clause)));
    }
    out.push(...checkOutside(r.id, b, a, edit?.windows ?? RangeSet.EMPTY, mode, frame));
  }
  return out;
}

// ---- frames ----

/** An effect's field that may name one thing or several, as a list. */
function listOf<T>(x: T | readonly T[] | undefined): readonly T[] {
  return x === undefined ? [] : Array.isArray(x) ? (x as readonly T[]) : [x as T];
}

/** A run's facts: its use and every flag, the memtype too (state.ts sameFrameFacts, restated). */
type Facts = Omit<FrameRun, 'pfn' | 'count'>;
const sameFacts = (a: Facts, b: Facts): boolean => a.use === b.use && a.sensitive === b.sensitive && a.noDirectMap === b.noDirectMap && a.memtype === b.memtype;
const runText = (r: Facts): string => `${r.use}${r.sensitive ? ' sensitive' : ''}${r.noDirectMap ? ' noDirectMap' : ''}${r.memtype === undefined ? '' : ` memtype ${r.memtype}`}`;

/**
 * Frames, page by page: as before, except noDirectMap and the use of the frames the
 * effect names (every other fact kept: no operation held to these relations changes a memtype); and
 * in canonical form (state.ts, system.ts: sorted, covering memory, neighbours differ).
 */
function checkFrames(before: AbstractState, after: AbstractState, e: Effect, clause: Clause): PostViolation[] {
  const flags = listOf(e.noDirectMap);
  if (flags.length === 0 && (e.frameUse ?? []).length === 0 && after.frames === before.frames) return [];
  const bad = (pfn: Pfn, what: string): PostViolation[] => [breach(clause, what, [{ frames: [{ pfn, count: 1 }], detail: what }])];
  const runs = after.frames;
  for (let k = 0; k < runs.length; k++) {
    const r = runs[k]!;
    const prev = runs[k - 1];
    const start = prev === undefined ? 0 : prev.pfn + prev.count;
    if (r.pfn !== start || r.count < 1) return bad(start, `frame runs must cover memory in order: run #${k} is [${pfnToHex(r.pfn)}, +${r.count}) where ${pfnToHex(start)} was due`);
    if (prev !== undefined && sameFacts(prev, r)) return bad(r.pfn, `runs #${k - 1} and #${k} (${runText(r)}) should be one run`);
  }
  const last = runs[runs.length - 1];
  if (last === undefined || last.pfn + last.count !== before.config.frames) return bad(0, `frame runs must end at ${before.config.frames} frames`);
  const uses = e.frameUse ?? [];
  const edges = [...flags, ...uses].flatMap((u) => [u.pfn, u.pfn + u.count]);
  const inside = (r: { pfn: Pfn; count: number } | undefined, f: Pfn): boolean => r !== undefined && f >= r.pfn && f < r.pfn + r.count;
  let i = 0;
  let j = 0;
  for (let f = 0; f < before.config.frames; ) {
    const was = before.frames[i]!;
    const is = runs[j]!;
    const nd = flags.find((x) => inside(x, f));
    const withNd = nd !== undefined ? { ...was, noDirectMap: nd.value } : was;
    const fu = uses.find((u) => inside(u, f));
    const want = fu !== undefined ? { ...withNd, use: fu.value } : withNd;
    if (!sameFacts(is, want)) return bad(f, `frame ${pfnToHex(f)} should be ${runText(want)}, is ${runText(is)}`);
    const next = Math.min(was.pfn + was.count, is.pfn + is.count, ...edges.filter((x) => x > f));
    if (next === was.pfn + was.count) i++;
    if (next === is.pfn + is.count) j++;
    f = next;
  }
  return [];
}

// ---- TLB (flush.ts) ----

const tlbOrder = (a: TlbEntry, b: TlbEntry): number => a.cpu - b.cpu || a.root - b.root || a.leaf.vpn - b.leaf.vpn || PAGES[a.leaf.size] - PAGES[b.leaf.size];
const entryText = (e: TlbEntry): string => `cpu ${e.cpu} root ${e.root}: ${leafText(e.leaf)}`;

/**
 * The TLB after = the entries before that meet no flushed range (a flush drops, on every
 * CPU and root, each entry whose leaf meets the range; a local flush, on its CPU), plus a
 * walk's fill; in the canonical order (cpu, root, leaf.vpn, size ascending).
 */
function checkTlb(before: readonly TlbEntry[], after: readonly TlbEntry[], e: Effect, clause: Clause): PostViolation[] {
  const flushed = e.flushed;
  const local = e.flushedLocal;
  const mm = e.processFlush;
  const meets = (r: Range, t: TlbEntry): boolean => t.leaf.vpn < rangeEnd(r) && r.vpn < leafEnd(t.leaf);
  const dropped = (t: TlbEntry): boolean =>
    flushed === 'all' ||
    flushed.meets(t.leaf.vpn, leafEnd(t.leaf)) ||
    (local !== undefined && t.cpu === local.cpu && meets(local.range, t)) ||
    (mm !== undefined && mm.roots.includes(t.root) && (mm.range === undefined || meets(mm.range, t)));
  const kept = before.filter((t) => !dropped(t));
  if (e.fill !== undefined) {
    const fill = e.fill;
    const at = kept.findIndex((t) => tlbOrder(fill, t) < 0);
    kept.splice(at < 0 ? kept.length : at, 0, fill);
  }
  for (let k = 1; k < after.length; k++) {
    if (tlbOrder(after[k - 1]!, after[k]!) >= 0) return [breach(clause, `TLB entries #${k - 1} and #${k} are out of canonical order (or the same): ${entryText(after[k - 1]!)}; ${entryText(after[k]!)}`)];
  }
  for (let k = 0; k < Math.max(kept.length, after.length); k++) {
    const want = kept[k];
    const got = after[k];
    if (want !== undefined && got !== undefined && want.cpu === got.cpu && want.root === got.root && sameLeaf(want.leaf, got.leaf)) continue;
    const stale = got !== undefined && flushed !== 'all' && !kept.includes(got) && before.includes(got) ? ' (it should have been flushed)' : '';
    const what = `TLB entry #${k}: expected ${want === undefined ? 'none' : entryText(want)}, found ${got === undefined ? 'none' : entryText(got)}${stale}`;
    const at = (got ?? want)!;
    return [breach(clause, what, [{ root: at.root, vpn: at.leaf.vpn, pages: PAGES[at.leaf.size], detail: what }])];
  }
  return [];
}

// ---- paging-structure caches (flush.ts, access.ts) ----

const walkOrder = (a: WalkCacheEntry, b: WalkCacheEntry): number => a.cpu - b.cpu || a.root - b.root || a.level - b.level || a.vpn - b.vpn;
const walkText = (w: WalkCacheEntry): string => `cpu ${w.cpu} root ${w.root} level-${w.level} table at ${vpnToHex(w.vpn)} (${w.table})`;
const sameWalkKey = (a: WalkCacheEntry, b: WalkCacheEntry): boolean => walkOrder(a, b) === 0;

/**
 * The paging-structure caches after, under the TLB's clause (they are what a flush
 * empties with the TLB): a flush of anything on all CPUs empties every CPU's; a local
 * flush its CPU's; a walk's fill caches the table entries above the leaf it found as
 * 'current', replacing those of the same key; otherwise each entry stays, except that one
 * whose table the step removed from its place becomes 'unlinked' (no flush ran, so the
 * table is pending, not freed) unless the effect keeps emptied tables (linux: they stay
 * linked). No correct step makes an entry 'freed'.
 */
function checkWalkCache(before: AbstractState, after: AbstractState, e: Effect, clause: Clause): PostViolation[] {
  const was = before.walkCache ?? [];
  const is = after.walkCache ?? [];
  const flushedAll = e.flushed === 'all' || e.flushed.ranges.length > 0;
  const mm = e.processFlush;
  const quiet = !flushedAll && e.flushedLocal === undefined && e.fill === undefined && mm === undefined;
  if (quiet && was.length === 0 && is.length === 0) return [];
  // A table linux keeps (emptiedMayStay) stays linked, so the entries caching it stay current.
  const removed = flushedAll || e.fill !== undefined || e.emptiedMayStay === true ? new Set<string>() : removedTables(before, after, e.windows);
  // The very same list is right only if the step unlinked none of the tables it caches (a lazy unmap that
  // forgot to mark them must not pass by handing back the list it had).
  // The core operations unlink init_mm's tables, which every root mirroring the slot walks through too.
  const inInitMm = (w: WalkCacheEntry): boolean => tableOwner(before, w.root, w.vpn) === INIT_MM;
  if (quiet && is === was && !was.some((w) => inInitMm(w) && w.table === 'current' && removed.has(`${w.level}:${w.vpn}`))) return [];
  let want = flushedAll ? [] : was.filter((w) => (e.flushedLocal === undefined || w.cpu !== e.flushedLocal.cpu) && (mm === undefined || !mm.roots.includes(w.root)));
  want = want.map((w) => (w.table === 'current' && removed.has(`${w.level}:${w.vpn}`) && inInitMm(w) ? { ...w, table: 'unlinked' as const } : w));
  if (e.fill !== undefined) {
    const f = e.fill;
    const filled: WalkCacheEntry[] = [];
    for (let L = leafLevel(f.leaf.size); L < before.config.levels; L++) {
      const span = pagesPerEntry((L + 1) as Level);
      filled.push({ cpu: f.cpu, root: f.root, level: L as Level, vpn: Math.floor(f.leaf.vpn / span) * span, table: 'current' });
    }
    want = [...want.filter((w) => !filled.some((n) => sameWalkKey(n, w))), ...filled].sort(walkOrder);
  }
  for (let k = 1; k < is.length; k++) {
    if (walkOrder(is[k - 1]!, is[k]!) >= 0) return [breach(clause, `paging-structure-cache entries #${k - 1} and #${k} are out of canonical order (or the same): ${walkText(is[k - 1]!)}; ${walkText(is[k]!)}`)];
  }
  for (let k = 0; k < Math.max(want.length, is.length); k++) {
    const w = want[k];
    const g = is[k];
    if (w !== undefined && g !== undefined && sameWalkKey(w, g) && w.table === g.table) continue;
    const what = `paging-structure-cache entry #${k}: expected ${w === undefined ? 'none' : walkText(w)}, found ${g === undefined ? 'none' : walkText(g)}`;
    const at = (g ?? w)!;
    return [breach(clause, what, [{ root: at.root, vpn: at.vpn, pages: pagesPerEntry((at.level + 1) as Level), detail: what }])];
  }
  return [];
}

// ---- flush obligations (flush.ts) ----

const owedText = (o: FlushObligation): string => `[${vpnToHex(o.vpn)}, +${o.pages}) for ${o.reason}`;

/** Reason sets as flush.ts writes them: the parts sorted, de-duplicated, joined by '+'. */
const joinedReasons = (reasons: readonly string[]): string => [...new Set(reasons.flatMap((r) => r.split('+')))].sort().join('+');

/**
 * The obligations after: each obligation before without the flushed pages (the pieces
 * keep their reason), then each debt added in turn: it and every obligation it overlaps
 * or touches become one range owing all their reasons. Sorted, disjoint, never touching.
 */
function owedAfter(before: readonly FlushObligation[], e: Effect): FlushObligation[] {
  const flushed = e.flushed;
  let left = flushed === 'all' ? [] : before.flatMap((o) => flushed.outside(o.vpn, rangeEnd(o)).map((r) => ({ ...r, reason: o.reason })));
  for (const { range: debt, reason } of listOf(e.owe)) {
    const joins = (o: FlushObligation): boolean => o.vpn <= rangeEnd(debt) && rangeEnd(o) >= debt.vpn;
    const joined = left.filter(joins);
    const lo = Math.min(debt.vpn, ...joined.map((o) => o.vpn));
    const hi = Math.max(rangeEnd(debt), ...joined.map(rangeEnd));
    const merged = { vpn: lo, pages: hi - lo, reason: joinedReasons([reason, ...joined.map((o) => o.reason)]) };
    left = [...left.filter((o) => !joins(o)), merged].sort((x, y) => x.vpn - y.vpn);
  }
  return left;
}

function checkObligations(before: readonly FlushObligation[], after: readonly FlushObligation[], e: Effect, clause: Clause): PostViolation[] {
  const want = owedAfter(before, e);
  for (let k = 0; k < Math.max(want.length, after.length); k++) {
    const w = want[k];
    const g = after[k];
    if (w !== undefined && g !== undefined && w.vpn === g.vpn && w.pages === g.pages && w.reason === g.reason) continue;
    const what = `obligation #${k}: expected ${w === undefined ? 'none' : owedText(w)}, found ${g === undefined ? 'none' : owedText(g)}`;
    const at = (g ?? w)!;
    return [breach(clause, what, [{ vpn: at.vpn, pages: at.pages, detail: what }])];
  }
  return [];
}

// ---- page-table counts (state.ts, footprint.ts, flush.ts "Deferred table frees") ----

/**
 * Whether the radix tree of the entries has the level-L table named `key` (footprint.ts:
 * the one under entry `key` of level L+1, spanning pagesPerEntry(L+1) pages): some entry
 * of either kind of level ≤ L lies in that span. An entry of a higher level there would
 * cover the whole span alone, so in each list the first entry that ends inside the span
 * decides.
 */
function hasTable(entries: Entries, L: Level, key: number): boolean {
  const span = pagesPerEntry((L + 1) as Level);
  return kinds(entries).some(([list]) => {
    const l = list[firstEndingAfter(list, key * span)];
    return l !== undefined && l.vpn >= key * span && l.vpn < (key + 1) * span && leafLevel(l.size) <= L;
  });
}

/**
 * Tables the windows' change creates and empties: the table keys of the entries in the
 * windows, before and after, that only one side has. Entries elsewhere are the same on
 * both sides (the frame condition), so no other table changes.
 */
function tableChange(levels: number, before: Entries, after: Entries, windows: RangeSet): { created: number; emptied: number } {
  const { created, emptied } = changedTables(levels, before, after, windows);
  return { created: created.length, emptied: emptied.length };
}

/** The tables the step removed from their place in init_mm, as `level:first page` keys (paging-structure caches name them so). */
function removedTables(before: AbstractState, after: AbstractState, windows: RangeSet): Set<string> {
  return new Set(changedTables(before.config.levels, rootEntries(before), rootEntries(after), windows).emptied);
}

/** tableChange's tables themselves, as `level:first page` keys. */
function changedTables(levels: number, before: Entries, after: Entries, windows: RangeSet): { created: string[]; emptied: string[] } {
  const created: string[] = [];
  const emptied: string[] = [];
  if (sameLists(before, after)) return { created, emptied };
  for (let L = 1 as Level; L < levels; L = (L + 1) as Level) {
    const span = pagesPerEntry((L + 1) as Level);
    const keys = new Set<number>();
    for (const w of windows.ranges) {
      for (const [leaves] of [...kinds(before), ...kinds(after)]) {
        const [lo, hi] = meeting(leaves, w);
        // Sorted leaves give non-decreasing keys: add each run once.
        let last = -1;
        for (let i = lo; i < hi; i++) {
          const l = leaves[i]!;
          const key = Math.floor(l.vpn / span);
          if (key !== last && leafLevel(l.size) <= L) keys.add((last = key));
        }
      }
    }
    for (const k of keys) {
      const was = hasTable(before, L, k);
      const is = hasTable(after, L, k);
      if (is && !was) created.push(`${L}:${k * span}`);
      if (was && !is) emptied.push(`${L}:${k * span}`);
    }
  }
  return { created, emptied };
}

/**
 * The tables the roots' entries need (spec/contracts/isolation.ts, "Tables"): init_mm's
 * radix footprint, plus for roots 1, 2 and every process-kernel root its own footprint
 * but the top-level table (roots 1 and 2 hang in init_mm's order-1 pgd and static
 * storage; a process's three top-level tables count as 3 apiece). A process-user root's
 * tables are its process-kernel root's, an asi root owns none. Without isolation roots:
 * init_mm's footprint.
 */
function rootTables(levels: PagingLevels, r: AbstractRoot): number {
  if (r.id === INIT_MM) return footprintOf(levels, r);
  if (!countsTables(r)) return 0;
  return footprintOf(levels, r) - 1 + (r.kind === 'process-kernel' ? 3 : 0);
}

/**
 * The radix footprint of a root's entries, counted once per root object: states are
 * snapshots, and a step's state after is the next step's state before, so a full check
 * (and linux's kept-table bound) would otherwise recount init_mm's thousands of leaves twice.
 */
function footprintOf(levels: PagingLevels, r: AbstractRoot): number {
  let n = footprints.get(r);
  if (n === undefined || n.levels !== levels) footprints.set(r, (n = { levels, tables: tableFootprint(levels, merged(entriesOf(r))) }));
  return n.tables;
}
const footprints = new WeakMap<AbstractRoot, { readonly levels: PagingLevels; readonly tables: number }>();

/** Roots 1, 2 and the process-kernel roots own tables; the other isolation roots share them. */
const countsTables = (r: NewRoot): boolean => r.id === 1 || r.id === 2 || r.kind === 'process-kernel';

const allTables = (s: AbstractState): number => s.roots.reduce((n, r) => n + rootTables(s.config.levels, r), 0);

/**
 * The change of the tables the entries need, root by root where the effect acts: the
 * tables init_mm's windows and each edited root's windows create and empty, a new
 * process's three top-level tables, and all of a removed root's.
 */
function tablesChanged(before: AbstractState, after: AbstractState, e: Effect): { created: number; emptied: number } {
  const levels = before.config.levels;
  let { created, emptied } = tableChange(levels, rootEntries(before), rootEntries(after), e.windows);
  for (const [id, edit] of e.edits ?? []) {
    const was = before.roots.find((r) => r.id === id);
    const is = after.roots.find((r) => r.id === id);
    if (was === undefined || is === undefined || !countsTables(was)) continue;
    const c = tableChange(levels, entriesOf(was), entriesOf(is), edit.windows);
    created += c.created;
    emptied += c.emptied;
  }
  for (const r of e.added ?? []) if (r.kind === 'process-kernel') created += 3;
  for (const id of e.removed ?? []) {
    const was = before.roots.find((r) => r.id === id);
    if (was !== undefined) emptied += rootTables(levels, was);
  }
  return { created, emptied };
}

/**
 * How many tables may be pending with no flush owed for them: none. While a flush is owed
 * somewhere, any number (the state does not say which span holds which pending table).
 * Every path that leaves a table pending owes a flush over what it removed: the
 * `_noflush` operations, and the CPU-local clients' clears when they empty a table
 * (spec/contracts/clients.ts: kunmapLocal, mermapPut).
 */
function unowedPending(s: AbstractState): number {
  return s.pendingFlush.length > 0 ? Infinity : 0;
}

/**
 * tablesInUse = the tables the roots' entries need (allTables) + pendingTableFrees.
 * Pending tables:
 * an operation that flushes releases some (those whose span meets its ranges; the state
 * does not say which tables are pending, so only "no more than before" is decidable, and
 * that none can outlive the obligations: each pending table's span holds an owed page
 * until a flush there releases it); flushAll releases all; setDirectMapInvalid without
 * flush adds the tables it empties; any other operation keeps them (a process flush
 * included: unmapUser frees the tables it empties after it). On success the
 * tables needed (footprint + pending before + newly pending, and the tables a collapse
 * freed after the bound was judged) fit in the pool (ENOMEM).
 */
function checkTables(before: AbstractState, after: AbstractState, e: Effect, mode: PostMode, clause: Clause, ok: boolean): PostViolation[] {
  const change = tablesChanged(before, after, e);
  // Tables the entries did not need before stay: none under strict (S11 holds it), the
  // empty ones the linux profile keeps (spec/contracts/linux.ts, "Page tables"). Every
  // root's tables are in tablesInUse, so `kept` is what none of them needs.
  const kept = mode === 'full' ? before.tablesInUse - before.pendingTableFrees - allTables(before) : 0;
  const footprint = mode === 'full' ? allTables(after) + kept : before.tablesInUse - before.pendingTableFrees + change.created - change.emptied;
  const out: string[] = [];
  const pendingBefore = before.pendingTableFrees;
  const pending = after.pendingTableFrees;
  if (e.flushed === 'all') {
    if (pending !== 0) out.push(`flushAll releases every pending table, ${pending} still pending`);
  } else if (e.emptiedStayPending === true) {
    if (pending !== pendingBefore + change.emptied) out.push(`${pendingBefore} tables were pending and ${change.emptied} emptied without a flush, so ${pendingBefore + change.emptied} should be pending, found ${pending}`);
  } else if (e.flushed.ranges.length > 0) {
    if (pending > pendingBefore) out.push(`a flush releases pending tables, yet ${pendingBefore} were pending and ${pending} are`);
    else if (pending > unowedPending(after)) out.push(`${pending} tables are still pending though no flush is owed anywhere (a pending table's span holds an owed page until a flush releases it)`);
  } else if (pending !== pendingBefore) {
    out.push(`nothing was flushed or emptied, yet pending tables went from ${pendingBefore} to ${pending}`);
  }
  // The tables in use beyond the pending ones: the footprint, or (linux) up to every emptied table more.
  const used = after.tablesInUse - pending;
  const stay = e.emptiedMayStay === true ? change.emptied : 0;
  // Where emptied tables may stay, a new leaf may also land in one kept from before
  // (linux: vmap_range over what vunmap left), so the tables it needs are not all new.
  const reused = e.emptiedMayStay === true ? change.created : 0;
  // The tables no entry needed before, which such a step may free: none under strict (S11).
  const freedKept = e.keptMayGo === true ? before.tablesInUse - pendingBefore - allTables(before) : 0;
  if (used < footprint - reused - freedKept || used > footprint + stay) {
    out.push(`tablesInUse is ${after.tablesInUse}, but the footprint is ${footprint}${stay > 0 ? ` (up to ${footprint + stay} with the ${stay} emptied tables kept)` : ''} and ${pending} tables are pending`);
  }
  const needed = footprint - reused + (e.collapsedTables ?? 0) + pendingBefore + (e.emptiedStayPending === true ? change.emptied : 0);
  if (ok && needed > before.config.tablePool.count) out.push(`it succeeded needing ${needed} tables, but the pool has ${before.config.tablePool.count} (ENOMEM)`);
  return out.map((what) => breach(clause, what, [{ detail: what }]));
}

// ---- the clients' bookkeeping (spec/clients.ts, spec/contracts/clients.ts) ----

/**
 * Whether a flush of the effect covers the stale allocation whole: a range flush on all
 * CPUs, a full one, or a local flush on its CPU (one that covers it in part leaves it
 * stale: its other pages may still be cached).
 */
function flushMeets(e: Effect, a: MermapAlloc): boolean {
  const local = e.flushedLocal;
  return (
    e.flushed === 'all' ||
    e.flushed.outside(a.vpn, a.vpn + a.pages).length === 0 ||
    (local !== undefined && local.cpu === a.cpu && local.range.vpn <= a.vpn && a.vpn + a.pages <= rangeEnd(local.range))
  );
}

/**
 * The bookkeeping the effect leaves: its own (or the one before), less every stale mermap
 * allocation a flush of the effect covers (spec/contracts/clients.ts: the flush on its CPU
 * is what its TLB owed). A process flush meets none: the mermap lives in init_mm.
 */
function clientsAfter(before: ClientState, e: Effect): ClientState {
  const own = e.clients ?? before;
  if (!own.mermap.some((m) => m.stale.some((a) => flushMeets(e, a)))) return own;
  return { ...own, mermap: own.mermap.map((m) => (m.stale.some((a) => flushMeets(e, a)) ? { ...m, stale: m.stale.filter((a) => !flushMeets(e, a)) } : m)) };
}

/** One kind of record of the bookkeeping: how two are the same, and how one reads. */
interface RecordKind<T> {
  readonly same: (a: T, b: T) => boolean;
  readonly text: (a: T) => string;
}
const span = (vpn: Vpn, pages: number): string => `[${vpnToHex(vpn)}, +${pages})`;
const AREA: RecordKind<NonNullable<ClientState['vmalloc'][number]>> = {
  same: (a, b) => a.vpn === b.vpn && a.pages === b.pages && a.pfn === b.pfn && a.huge === b.huge && a.resetPerms === b.resetPerms,
  text: (a) => `area ${span(a.vpn, a.pages)} -> ${pfnToHex(a.pfn)}${a.huge ? ' huge' : ''}${a.resetPerms ? ' resetPerms' : ''}`,
};
const LAZY: RecordKind<NonNullable<ClientState['lazy'][number]>> = {
  same: (a, b) => a.vpn === b.vpn && a.pages === b.pages && a.pfn === b.pfn,
  text: (a) => `lazy area ${span(a.vpn, a.pages)} -> ${pfnToHex(a.pfn)}`,
};
const SLOT: RecordKind<NonNullable<ClientState['kmap'][number]>> = {
  same: (a, b) => a.cpu === b.cpu && a.idx === b.idx && a.vpn === b.vpn && a.pfn === b.pfn,
  text: (a) => `cpu ${a.cpu} kmap slot ${a.idx} at ${vpnToHex(a.vpn)} -> ${pfnToHex(a.pfn)}`,
};
const ALLOC: RecordKind<MermapAlloc> = {
  same: (a, b) => a.cpu === b.cpu && a.vpn === b.vpn && a.pages === b.pages && a.pfn === b.pfn,
  text: (a) => `cpu ${a.cpu} mermap allocation ${span(a.vpn, a.pages)} -> ${pfnToHex(a.pfn)}`,
};
const PAGEBLOCK: RecordKind<Pfn> = { same: (a, b) => a === b, text: (a) => `unmapped pageblock ${pfnToHex(a)}` };
const MEMORY_BLOCK: RecordKind<Pfn> = { same: (a, b) => a === b, text: (a) => `memory block ${pfnToHex(a)}` };

/** The first difference of two lists of records, as a sentence, or null. */
function listDifference<T>(name: string, kind: RecordKind<T>, want: readonly T[], is: readonly T[]): string | null {
  for (let k = 0; k < Math.max(want.length, is.length); k++) {
    const w = want[k];
    const g = is[k];
    if (w !== undefined && g !== undefined && kind.same(w, g)) continue;
    return `${name} #${k}: expected ${w === undefined ? 'none' : kind.text(w)}, found ${g === undefined ? 'none' : kind.text(g)}`;
  }
  return null;
}

/**
 * The clients' bookkeeping after against the effect's (clientsAfter), record by record
 * (both canonical: the lists sorted as spec/clients.ts says). A stale list found wrong
 * breaks the `stale` sentence (absent: the `tlb` one, whose flush drops them), anything
 * else the `clients` one (absent: the frame condition). A system without the capability
 * has none before and after.
 */
function checkClients(before: AbstractState, after: AbstractState, e: Effect, say: EffectClauses): PostViolation[] {
  const was = before.clients;
  const is = after.clients;
  if (was === undefined && is === undefined) return [];
  const clients = say.clients ?? say.frame;
  if (was === undefined || is === undefined) return [breach(clients, `the clients' bookkeeping ${was === undefined ? 'appeared' : 'vanished'}`)];
  const want = clientsAfter(was, e);
  if (want === is) return [];
  const bad = (clause: Clause, what: string | null): PostViolation[] => (what === null ? [] : [breach(clause, what, [{ detail: what }])]);
  const own =
    listDifference('vmalloc area', AREA, want.vmalloc, is.vmalloc) ??
    listDifference('lazily freed area', LAZY, want.lazy, is.lazy) ??
    listDifference('kmap_local slot', SLOT, want.kmap, is.kmap) ??
    listDifference('unmapped pageblock', PAGEBLOCK, want.unmapped, is.unmapped) ??
    listDifference('hot-added memory block', MEMORY_BLOCK, want.memory, is.memory);
  if (own !== null) return bad(clients, own);
  if (want.mermap.length !== is.mermap.length) return bad(clients, `the mermap should have ${want.mermap.length} CPUs, has ${is.mermap.length}`);
  for (const [k, w] of want.mermap.entries()) {
    const g = is.mermap[k]!;
    if (w.cpu !== g.cpu || w.next !== g.next) return bad(clients, `mermap #${k}: expected cpu ${w.cpu} next ${vpnToHex(w.next)}, found cpu ${g.cpu} next ${vpnToHex(g.next)}`);
    const v = bad(clients, listDifference(`cpu ${w.cpu}'s mermap allocation`, ALLOC, w.allocs, g.allocs));
    if (v.length > 0) return v;
    const s = bad(say.stale ?? say.tlb, listDifference(`cpu ${w.cpu}'s stale mermap allocation`, ALLOC, w.stale, g.stale));
    if (s.length > 0) return s;
  }
  return [];
}
