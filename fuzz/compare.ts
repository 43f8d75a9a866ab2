/**
 * Equality of model and impl: the outcome of one command, and the abstract states.
 *
 * States are compared canonically and cheaply: leaves only inside the ranges a command
 * touched (binary search into the sorted leaf arrays, then a field-by-field walk), the
 * small global parts (frames, roots, TLB, obligations, table counts) always. Nothing is
 * stringified; a difference comes back as the first differing item with a witness.
 */
import { PAGES } from '../spec/address.ts';
import type { Command } from '../spec/commands.ts';
import type { Errno } from '../spec/errors.ts';
import type { CheckScope, Witness } from '../spec/invariant.ts';
import { protEquals, type AbstractRoot, type AbstractState, type FlushObligation, type FrameRun, type Leaf, type TlbEntry } from '../spec/state.ts';
import type { AccessOutcome, Translation } from '../spec/system.ts';
import { formatLeaf } from './format.ts';
import { firstLeafEndingAfter } from './scope.ts';

/** What one system did with one command. */
export interface StepOutcome {
  readonly outcome: 'ok' | Errno | 'exception';
  /** translate / access result when ok. */
  readonly value?: Translation | AccessOutcome;
  /** The argument an error names (spec/errors.ts: part of the error's contract). */
  readonly arg?: string;
  /** EPERM: the strict-policy invariant the refused result would break. */
  readonly invariant?: string;
  /** The error or exception message. */
  readonly message?: string;
}

export interface Mismatch {
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
    return { detail: `abstract(impl) differs from the model in root ${root}`, witnesses: [leafWitness(root, ml, xl)] };
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
    return {
      detail: 'TLB contents differ',
      witnesses: [{ root: at.root, vpn: at.leaf.vpn, pages: PAGES[at.leaf.size], detail: `TLB entry #${k}: model caches ${say(m)}; impl caches ${say(x)}` }],
    };
  }
  return null;
}

function frameRunEquals(a: FrameRun, b: FrameRun): boolean {
  return a.pfn === b.pfn && a.count === b.count && a.use === b.use && a.sensitive === b.sensitive && a.noDirectMap === b.noDirectMap;
}

const sayRun = (r: FrameRun | undefined): string =>
  r === undefined ? 'nothing' : `[${r.pfn}, +${r.count}) ${r.use}${r.sensitive ? ' sensitive' : ''}${r.noDirectMap ? ' noDirectMap' : ''}`;

function compareFrames(model: readonly FrameRun[], impl: readonly FrameRun[]): Mismatch | null {
  for (let k = 0; k < Math.max(model.length, impl.length); k++) {
    const m = model[k];
    const x = impl[k];
    if (m !== undefined && x !== undefined && frameRunEquals(m, x)) continue;
    const at = (m ?? x)!;
    return { detail: 'frame runs differ', witnesses: [{ frames: [{ pfn: at.pfn, count: at.count }], detail: `frame run #${k}: model ${sayRun(m)}; impl ${sayRun(x)}` }] };
  }
  return null;
}

function compareObligations(model: readonly FlushObligation[], impl: readonly FlushObligation[]): Mismatch | null {
  for (let k = 0; k < Math.max(model.length, impl.length); k++) {
    const m = model[k];
    const x = impl[k];
    if (m !== undefined && x !== undefined && m.vpn === x.vpn && m.pages === x.pages && m.reason === x.reason) continue;
    const at = (m ?? x)!;
    const say = (o: FlushObligation | undefined): string => (o === undefined ? 'nothing' : `${o.pages} pages at ${o.vpn} (${o.reason})`);
    return { detail: 'pending flush obligations differ', witnesses: [{ vpn: at.vpn, pages: at.pages, detail: `obligation #${k}: model owes ${say(m)}; impl owes ${say(x)}` }] };
  }
  return null;
}

function compareRootSets(model: readonly AbstractRoot[], impl: readonly AbstractRoot[]): Mismatch | null {
  const ids = (rs: readonly AbstractRoot[]): string => rs.map((r) => `${r.id}:${r.kind}`).join(',');
  if (ids(model) === ids(impl)) return null;
  return { detail: 'roots differ', witnesses: [{ detail: `model roots [${ids(model)}]; impl roots [${ids(impl)}]` }] };
}

/**
 * First difference between the model's state and abstract(impl). With `scopes`, leaves
 * are compared only over those ranges (of every root); with null, everywhere.
 */
export function compareStates(model: AbstractState, impl: AbstractState, scopes: readonly CheckScope[] | null): Mismatch | null {
  const roots = compareRootSets(model.roots, impl.roots);
  if (roots !== null) return roots;
  for (let r = 0; r < model.roots.length; r++) {
    const m = model.roots[r]!;
    const x = impl.roots[r]!;
    for (const s of scopes ?? [null]) {
      const d = compareLeaves(m.id, m.leaves, x.leaves, s);
      if (d !== null) return d;
    }
  }
  if (model.tablesInUse !== impl.tablesInUse || model.pendingTableFrees !== impl.pendingTableFrees) {
    return {
      detail: 'page-table counts differ',
      witnesses: [{ detail: `model: ${model.tablesInUse} tables in use, ${model.pendingTableFrees} awaiting a flush; impl: ${impl.tablesInUse} in use, ${impl.pendingTableFrees} awaiting a flush` }],
    };
  }
  return compareFrames(model.frames, impl.frames) ?? compareTlb(model.tlb, impl.tlb) ?? compareObligations(model.pendingFlush, impl.pendingFlush);
}
