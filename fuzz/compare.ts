/**
 * Equality of model and impl: the outcome of one command, and the abstract states.
 *
 * States are compared canonically and cheaply: leaves only inside the ranges a command
 * touched (binary search into the sorted leaf arrays, then a field-by-field walk), the
 * small global parts (frames, roots, TLB, paging-structure caches, obligations, table
 * counts) always. Nothing is
 * stringified; a difference comes back as the first differing item with a witness.
 */
import type { ClientState } from '../spec/clients.ts';
import { PAGES, pagesPerEntry, vpnSpan, vpnToHex, type Level, type Vpn } from '../spec/address.ts';
import type { Command } from '../spec/commands.ts';
import type { Errno } from '../spec/errors.ts';
import type { CheckScope, Witness } from '../spec/invariant.ts';
import { runText } from '../spec/invariants/terms.ts';
import { INIT_MM, protEquals, sameFrameFacts, type AbstractRoot, type AbstractState, type FlushObligation, type FrameRun, type Leaf, type TlbEntry, type WalkCacheEntry } from '../spec/state.ts';
import type { AccessOutcome, ProcessRoots, Translation, WalkVisit } from '../spec/system.ts';
import { formatLeaf } from './format.ts';
import { formatValue } from './report.ts';
import { firstLeafEndingAfter } from './scope.ts';

/** What one system did with one command. */
/** What an operation returns that the contract says (the others return nothing). */
export type StepValue = Translation | AccessOutcome | ProcessRoots | Vpn | readonly WalkVisit[];

/** The operations whose returned value is part of their outcome. */
export const VALUED_OPS: ReadonlySet<Command['op']> = new Set<Command['op']>(['translate', 'access', 'createProcess', 'kmapLocal', 'mermapGet', 'walkPageRange']);

export interface StepOutcome {
  readonly outcome: 'ok' | Errno | 'exception';
  /** The result when ok: translate's, access's, createProcess's, the address kmapLocal / mermapGet returned, walkPageRange's visits. */
  readonly value?: StepValue;
  /** The argument an error names (spec/errors.ts: part of the error's contract). */
  readonly arg?: string;
  /** EPERM: the strict-policy invariant the refused result would break. */
  readonly invariant?: string;
  /** The error or exception message. */
  readonly message?: string;
}

/** The part of the abstract state a comparison found different (what a refinement failure is filed under). */
export type StatePart = 'roots' | 'leaves' | 'tables' | 'frames' | 'tlb' | 'walkCache' | 'obligations' | 'clients';

export interface Mismatch {
  readonly part: StatePart;
  readonly detail: string;
  readonly witnesses: readonly Witness[];
}

export function leafEquals(a: Leaf, b: Leaf): boolean {
  return a.vpn === b.vpn && a.pfn === b.pfn && a.size === b.size && protEquals(a.prot, b.prot);
}

function translationEquals(a: Translation, b: Translation): boolean {
  return a.pfn === b.pfn && leafEquals(a.leaf, b.leaf);
}

function valueEquals(op: Command['op'], a: StepOutcome['value'], b: StepOutcome['value']): boolean {
  if (op === 'translate') return a !== undefined && b !== undefined && translationEquals(a as Translation, b as Translation);
  if (op === 'createProcess') {
    const p = a as ProcessRoots | undefined;
    const q = b as ProcessRoots | undefined;
    return p !== undefined && q !== undefined && p.pid === q.pid && p.kernelRoot === q.kernelRoot && p.userRoot === q.userRoot && p.asiRoot === q.asiRoot;
  }
  if (op === 'kmapLocal' || op === 'mermapGet') return a !== undefined && a === b;
  if (op === 'walkPageRange') return a !== undefined && b !== undefined && canonical(a) === canonical(b);
  if (op !== 'access') return true;
  const x = a as AccessOutcome | undefined;
  const y = b as AccessOutcome | undefined;
  if (x === undefined || y === undefined || x.fault !== y.fault) return false;
  if (x.fault !== false || y.fault !== false) return true;
  return x.fromTlb === y.fromTlb && translationEquals(x.translation, y.translation);
}

/** Same outcome: the same errno naming the same argument (and, for EPERM, the same invariant), or ok with the same translate/access result. */
export function outcomesAgree(c: Command, model: StepOutcome, impl: StepOutcome): boolean {
  if (model.outcome !== impl.outcome) return false;
  return model.outcome === 'ok' ? valueEquals(c.op, model.value, impl.value) : model.arg === impl.arg && model.invariant === impl.invariant;
}

/** An error as the contract knows it: errno, the argument it names, the invariant an EPERM refuses to break. */
function sayError(o: StepOutcome): string {
  return `${o.outcome}${o.arg === undefined ? '' : ` naming ${o.arg}`}${o.invariant === undefined ? '' : ` refusing ${o.invariant}`}`;
}

/** The field of two disagreeing outcomes that differs first (what an outcome mismatch is filed under). */
export function differingField(model: StepOutcome, impl: StepOutcome): 'errno' | 'value' | 'arg' | 'invariant' {
  if (model.outcome !== impl.outcome) return 'errno';
  if (model.outcome === 'ok') return 'value';
  return model.arg !== impl.arg ? 'arg' : 'invariant';
}

/**
 * Which part of two disagreeing outcomes differs, with both values, part first: the
 * result (ok, an errno or an exception), the error's argument, the EPERM's invariant, or
 * the returned translate/access value.
 */
export function outcomeDifference(model: StepOutcome, impl: StepOutcome): string {
  const both = (say: (o: StepOutcome) => string): string => `model ${say(model)}, impl ${say(impl)}`;
  switch (differingField(model, impl)) {
    case 'errno': return `the result differs: ${both((o) => (o.outcome === 'ok' ? 'ok' : sayError(o)))}`;
    case 'value': return `the returned value differs: ${both((o) => `ok${formatValue(o.value)}`)}`;
    case 'arg': return `the error's argument differs: ${both(sayError)}`;
    case 'invariant': return `the EPERM's invariant differs: ${both(sayError)}`;
  }
}

/** The part of the state that differs first, then both values (the witness's detail). */
function mismatch(part: StatePart, what: string, w: Witness): Mismatch {
  return { part, detail: `${what}: ${w.detail}`, witnesses: [w] };
}

const leafEnd = (l: Leaf): number => l.vpn + PAGES[l.size];

function leafWitness(root: number, m: Leaf | undefined, i: Leaf | undefined): Witness {
  const at = m ?? i!;
  const frames = [m, i].filter((l): l is Leaf => l !== undefined).map((l) => ({ pfn: l.pfn, count: PAGES[l.size] }));
  return {
    root,
    vpn: at.vpn,
    pages: PAGES[at.size],
    frames,
    detail: `model ${m === undefined ? 'has no leaf' : `has ${formatLeaf(m)}`}; impl ${i === undefined ? 'has no leaf' : `has ${formatLeaf(i)}`}`,
  };
}

/** First difference between two leaf arrays over [scope.vpn, scope.vpn+pages) (whole leaves that intersect it). */
function compareLeaves(root: number, model: readonly Leaf[], impl: readonly Leaf[], scope: CheckScope | null): Mismatch | null {
  const start = scope === null ? 0 : scope.vpn;
  const end = scope === null ? Infinity : scope.vpn + scope.pages;
  let i = scope === null ? 0 : firstLeafEndingAfter(model, start);
  let j = scope === null ? 0 : firstLeafEndingAfter(impl, start);
  for (;;) {
    const m = model[i];
    const x = impl[j];
    const mIn = m !== undefined && m.vpn < end;
    const xIn = x !== undefined && x.vpn < end;
    if (!mIn && !xIn) return null;
    if (mIn && xIn && leafEquals(m, x)) {
      i++;
      j++;
      continue;
    }
    // Report the leaf that comes first; its counterpart is the other side's leaf there, if it overlaps.
    const mFirst = mIn && (!xIn || m.vpn <= x.vpn);
    const ml = mFirst ? m : mIn && m.vpn < leafEnd(x!) ? m : undefined;
    const xl = !mFirst ? x : xIn && x.vpn < leafEnd(m!) ? x : undefined;
    return mismatch('leaves', `leaves differ in root ${root}`, leafWitness(root, ml, xl));
  }
}

const tlbOrder = (a: TlbEntry, b: TlbEntry): number => a.cpu - b.cpu || a.root - b.root || a.leaf.vpn - b.leaf.vpn;

function sortedTlb(t: readonly TlbEntry[]): readonly TlbEntry[] {
  for (let k = 1; k < t.length; k++) if (tlbOrder(t[k - 1]!, t[k]!) > 0) return [...t].sort(tlbOrder);
  return t;
}

function compareTlb(model: readonly TlbEntry[], impl: readonly TlbEntry[]): Mismatch | null {
  const a = sortedTlb(model);
  const b = sortedTlb(impl);
  for (let k = 0; k < Math.max(a.length, b.length); k++) {
    const m = a[k];
    const x = b[k];
    if (m !== undefined && x !== undefined && m.cpu === x.cpu && m.root === x.root && leafEquals(m.leaf, x.leaf)) continue;
    const at = (m ?? x)!;
    const say = (e: TlbEntry | undefined): string => (e === undefined ? 'nothing' : `cpu ${e.cpu} root ${e.root}: ${formatLeaf(e.leaf)}`);
    return mismatch('tlb', 'TLB contents differ', { root: at.root, vpn: at.leaf.vpn, pages: PAGES[at.leaf.size], detail: `entry #${k}: model caches ${say(m)}; impl caches ${say(x)}` });
  }
  return null;
}

/** Canonical order of paging-structure-cache entries (spec/contracts/flush.ts): cpu, root, level, vpn. */
const walkOrder = (a: WalkCacheEntry, b: WalkCacheEntry): number => a.cpu - b.cpu || a.root - b.root || a.level - b.level || a.vpn - b.vpn;

function sortedWalkCache(w: readonly WalkCacheEntry[]): readonly WalkCacheEntry[] {
  for (let k = 1; k < w.length; k++) if (walkOrder(w[k - 1]!, w[k]!) > 0) return [...w].sort(walkOrder);
  return w;
}

/**
 * The paging-structure caches, absent read as none (a system that caches no walk need not
 * report the field): the same entries, each naming the same table state, since a cache
 * entry the impl calls current and the model unlinked walks to different results.
 */
export function compareWalkCache(model: readonly WalkCacheEntry[] | undefined, impl: readonly WalkCacheEntry[] | undefined): Mismatch | null {
  const a = sortedWalkCache(model ?? []);
  const b = sortedWalkCache(impl ?? []);
  for (let k = 0; k < Math.max(a.length, b.length); k++) {
    const m = a[k];
    const x = b[k];
    if (m !== undefined && x !== undefined && walkOrder(m, x) === 0 && m.table === x.table) continue;
    const at = (m ?? x)!;
    const say = (e: WalkCacheEntry | undefined): string => (e === undefined ? 'nothing' : `cpu ${e.cpu} root ${e.root}: the level-${e.level} table at ${vpnSpan(e.vpn, pagesPerEntry((e.level + 1) as Level))} (${e.table})`);
    return mismatch('walkCache', 'paging-structure caches differ', {
      root: at.root, vpn: at.vpn, pages: pagesPerEntry((at.level + 1) as Level), detail: `entry #${k}: model caches ${say(m)}; impl caches ${say(x)}`,
    });
  }
  return null;
}

function frameRunEquals(a: FrameRun, b: FrameRun): boolean {
  return a.pfn === b.pfn && a.count === b.count && sameFrameFacts(a, b);
}

const sayRun = (r: FrameRun | undefined): string => (r === undefined ? 'nothing' : runText(r));

function compareFrames(model: readonly FrameRun[], impl: readonly FrameRun[]): Mismatch | null {
  for (let k = 0; k < Math.max(model.length, impl.length); k++) {
    const m = model[k];
    const x = impl[k];
    if (m !== undefined && x !== undefined && frameRunEquals(m, x)) continue;
    const at = (m ?? x)!;
    return mismatch('frames', 'frame runs differ', { frames: [{ pfn: at.pfn, count: at.count }], detail: `run #${k}: model ${sayRun(m)}; impl ${sayRun(x)}` });
  }
  return null;
}

function compareObligations(model: readonly FlushObligation[], impl: readonly FlushObligation[]): Mismatch | null {
  for (let k = 0; k < Math.max(model.length, impl.length); k++) {
    const m = model[k];
    const x = impl[k];
    if (m !== undefined && x !== undefined && m.vpn === x.vpn && m.pages === x.pages && m.reason === x.reason) continue;
    const at = (m ?? x)!;
    const say = (o: FlushObligation | undefined): string => (o === undefined ? 'nothing' : `${vpnSpan(o.vpn, o.pages)} (${o.reason})`);
    return mismatch('obligations', 'pending flush obligations differ', { vpn: at.vpn, pages: at.pages, detail: `obligation #${k}: model owes ${say(m)}; impl owes ${say(x)}` });
  }
  return null;
}

function compareRootSets(model: readonly AbstractRoot[], impl: readonly AbstractRoot[]): Mismatch | null {
  const ids = (rs: readonly AbstractRoot[]): string => rs.map((r) => `${r.id}:${r.kind}${r.pid === undefined ? '' : `/pid ${r.pid}`}`).join(',');
  if (ids(model) === ids(impl)) return null;
  return mismatch('roots', 'roots differ', { detail: `model roots [${ids(model)}]; impl roots [${ids(impl)}]` });
}

/** The first difference of the top-level slots two roots fail to mirror (spec/roots.ts). */
function compareDiverged(m: AbstractRoot, x: AbstractRoot): Mismatch | null {
  const text = (r: AbstractRoot): string => (r.diverged ?? []).map(vpnToHex).join(', ') || 'none';
  if (text(m) === text(x)) return null;
  return mismatch('roots', `diverged top-level slots differ in root ${m.id}`, { root: m.id, detail: `model: ${text(m)}; impl: ${text(x)}` });
}

/**
 * First difference between the model's state and abstract(impl). With `scopes`, init_mm's
 * leaves are compared only over those ranges; with null, everywhere. Every other root
 * (the isolation capability's) is compared whole: the operations that change them name
 * user-half ranges, LDT slots and processes rather than init_mm ranges, and they are
 * small beside init_mm.
 */
export function compareStates(model: AbstractState, impl: AbstractState, scopes: readonly CheckScope[] | null): Mismatch | null {
  const roots = compareRootSets(model.roots, impl.roots);
  if (roots !== null) return roots;
  for (let r = 0; r < model.roots.length; r++) {
    const m = model.roots[r]!;
    const x = impl.roots[r]!;
    const diverged = compareDiverged(m, x);
    if (diverged !== null) return diverged;
    for (const s of m.id === INIT_MM ? (scopes ?? [null]) : [null]) {
      const d = compareLeaves(m.id, m.leaves, x.leaves, s);
      if (d !== null) return d;
      // Non-present entries (linux profile) are part of the state too.
      const np = compareLeaves(m.id, m.nonPresent ?? [], x.nonPresent ?? [], s);
      if (np !== null) return { ...np, detail: `non-present entries: ${np.detail}` };
    }
  }
  if (model.tablesInUse !== impl.tablesInUse || model.pendingTableFrees !== impl.pendingTableFrees) {
    return mismatch('tables', 'page-table counts differ', {
      detail: `model: ${model.tablesInUse} tables in use, ${model.pendingTableFrees} awaiting a flush; impl: ${impl.tablesInUse} in use, ${impl.pendingTableFrees} awaiting a flush`,
    });
  }
  return compareFrames(model.frames, impl.frames) ?? compareTlb(model.tlb, impl.tlb) ?? compareWalkCache(model.walkCache, impl.walkCache)
    ?? compareObligations(model.pendingFlush, impl.pendingFlush) ?? compareClients(model.clients, impl.clients);
}

/**
 * The clients' bookkeeping (spec/clients.ts), list by list in canonical order: the first
 * entry that differs. Compared whole: it is small (areas, slots, allocations, pageblocks,
 * memory blocks).
 */
function compareClients(model: ClientState | undefined, impl: ClientState | undefined): Mismatch | null {
  // A module without the capability (it reports no bookkeeping) is fuzzed without the
  // client operations: the model's (empty, or unused) bookkeeping is nothing to hold it to.
  if (impl === undefined) return null;
  if (model === undefined) {
    return mismatch('clients', 'the clients capability differs', { detail: `the model ${model === undefined ? 'has no' : 'has'} client bookkeeping, the impl ${impl === undefined ? 'has none' : 'has it'}` });
  }
  for (const list of CLIENT_LISTS) {
    const m: readonly unknown[] = model[list];
    const x: readonly unknown[] = impl[list];
    for (let k = 0; k < Math.max(m.length, x.length); k++) {
      // Most items are the same: told so without building their text.
      if (m[k] !== undefined && x[k] !== undefined && sameData(m[k], x[k])) continue;
      const a = m[k] === undefined ? 'nothing' : canonical(m[k]);
      const b = x[k] === undefined ? 'nothing' : canonical(x[k]);
      if (a === b) continue;
      const at = (m[k] ?? x[k]) as { vpn?: number; pfn?: number };
      const where = typeof at === 'number' ? { frames: [{ pfn: at, count: 1 }] } : at.vpn !== undefined ? { vpn: at.vpn } : {};
      return mismatch('clients', `the clients' ${list} differ`, { ...where, detail: `${list} #${k}: model ${a}; impl ${b}` });
    }
  }
  return null;
}

/**
 * Whether two values are the same plain data: arrays element by element, records key by
 * key whatever their key order, anything else as JSON. Same data has the same canonical
 * text, so this only spares building it.
 */
function sameData(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) || Array.isArray(b)) return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((v, i) => sameData(v, b[i]));
  if (typeof a !== 'object' || a === null || typeof b !== 'object' || b === null) return JSON.stringify(a) === JSON.stringify(b);
  const ka = Object.keys(a).sort();
  const kb = Object.keys(b).sort();
  return ka.length === kb.length && ka.every((k, i) => k === kb[i] && sameData((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

/** A value as text with object keys sorted, so that two systems building the same record in another key order agree. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (typeof v === 'object' && v !== null) {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o).sort().map((k) => `${k}:${canonical(o[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

/** The lists of the clients' bookkeeping, in the order they are compared. */
const CLIENT_LISTS = ['vmalloc', 'lazy', 'kmap', 'mermap', 'unmapped', 'memory'] as const satisfies readonly (keyof ClientState)[];
