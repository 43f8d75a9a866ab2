/**
 * Replaying a stored trace for a person (`ptspec replay`): the checker's verdict, then
 * every step with both systems' outcomes, and what the failing step (or, asked for,
 * every step) changed: the leaves it added and removed inside the ranges it touched, TLB
 * entries and flush obligations, in the model and in the implementation, side by side.
 * Also what a stored failure does now (`ptspec failures --replay`).
 */
import { PAGES } from '../spec/address.ts';
import type { Command } from '../spec/commands.ts';
import type { CheckScope } from '../spec/invariant.ts';
import { protToString, type AbstractState, type Leaf, type TlbEntry } from '../spec/state.ts';
import type { PageTableSystem } from '../spec/system.ts';
import { replayTrace, type TraceSetup } from './campaign-run.ts';
import { abstractOf, initMmLeaves, runCommand, systemSetup, type StepOutcome, type TraceFailure } from './check.ts';
import { touchedScopes } from './scope.ts';

export interface ReplayStep {
  readonly phase: 'boot' | 'run';
  readonly index: number;
  readonly command: Command;
  readonly model: StepOutcome;
  readonly impl: StepOutcome;
  /** What the step changed on each system: on the failing step, and on every step with `steps: 'all'`. */
  readonly change: StateChange | null;
}

/** Which steps a replay computes the state change of. */
export type ReplaySteps = 'failing' | 'all';

/** What one system's state lost and gained in one step. */
export interface Delta {
  readonly removedLeaves: readonly Leaf[];
  readonly addedLeaves: readonly Leaf[];
  readonly removedTlb: readonly TlbEntry[];
  readonly addedTlb: readonly TlbEntry[];
  readonly obligationsBefore: number;
  readonly obligationsAfter: number;
  readonly tablesBefore: number;
  readonly tablesAfter: number;
}

export interface StateChange {
  /** The ranges the leaves were compared in (the command's touched ranges). */
  readonly scopes: readonly CheckScope[];
  readonly model: Delta | string;
  readonly impl: Delta | string;
}

export interface Replay {
  /** The checker's verdict on the whole trace. */
  readonly failure: TraceFailure | null;
  readonly key: string | null;
  /** Steps up to and including the failing one (all of them when it passes). */
  readonly steps: readonly ReplayStep[];
  /** The failing step's change (null when the trace passes). */
  readonly change: StateChange | null;
}

/** What a stored failure does when replayed now: fails with its key, passes, or fails with another key. */
export type StoredVerdict = 'reproduces' | 'fixed' | 'differs';

export function storedVerdict(recordedKey: string, nowKey: string | null): StoredVerdict {
  return nowKey === null ? 'fixed' : nowKey === recordedKey ? 'reproduces' : 'differs';
}

function snapshot(sys: PageTableSystem): AbstractState | string {
  const s = abstractOf(sys);
  return typeof s === 'string' ? `abstract() threw: ${s}` : s;
}

/** A split or collapse changes the leaves around the address too: compare whole 1G blocks. */
function wholeGigabytes(s: CheckScope): CheckScope {
  const G1 = PAGES['1G'];
  const start = Math.floor(s.vpn / G1) * G1;
  return { vpn: start, pages: Math.ceil((s.vpn + s.pages) / G1) * G1 - start };
}

const inScopes = (scopes: readonly CheckScope[], vpn: number, pages: number): boolean =>
  scopes.some((s) => vpn < s.vpn + s.pages && s.vpn < vpn + pages);

const leafId = (root: number, l: Leaf): string => `${root}:${l.vpn}:${l.size}:${l.pfn}:${protToString(l.prot)}`;

function leavesIn(s: AbstractState, scopes: readonly CheckScope[]): Map<string, Leaf> {
  const out = new Map<string, Leaf>();
  for (const r of s.roots) for (const l of r.leaves) if (inScopes(scopes, l.vpn, PAGES[l.size])) out.set(leafId(r.id, l), l);
  return out;
}

function minus<T>(a: ReadonlyMap<string, T>, b: ReadonlyMap<string, T>): T[] {
  return [...a].filter(([k]) => !b.has(k)).map(([, v]) => v);
}

function delta(before: AbstractState | string, after: AbstractState | string, scopes: readonly CheckScope[]): Delta | string {
  if (typeof before === 'string') return before;
  if (typeof after === 'string') return after;
  const lb = leavesIn(before, scopes);
  const la = leavesIn(after, scopes);
  const tlb = (s: AbstractState): Map<string, TlbEntry> => new Map(s.tlb.map((e) => [`${e.cpu}:${leafId(e.root, e.leaf)}`, e]));
  const tb = tlb(before);
  const ta = tlb(after);
  return {
    removedLeaves: minus(lb, la),
    addedLeaves: minus(la, lb),
    removedTlb: minus(tb, ta),
    addedTlb: minus(ta, tb),
    obligationsBefore: before.pendingFlush.length,
    obligationsAfter: after.pendingFlush.length,
    tablesBefore: before.tablesInUse,
    tablesAfter: after.tablesInUse,
  };
}

/** Runs the trace through the checker, then once more step by step to show it. */
export function replay(setup: TraceSetup, target: string, commands: readonly Command[], which: ReplaySteps = 'failing', want?: string): Replay {
  const { key, failure } = replayTrace(setup, target, commands, want);
  // Profile and isolation ride on the setup the systems are made from, as runTrace makes them.
  const made = systemSetup(setup);
  const model = setup.makeModel(made);
  const impl = setup.makeImpl(made);
  const steps: ReplayStep[] = [];
  const phases: readonly ['boot' | 'run', readonly Command[]][] = [['boot', setup.scenario.boot], ['run', commands]];
  for (const [phase, list] of phases) {
    for (let index = 0; index < list.length; index++) {
      const command = list[index]!;
      const failing = failure !== null && failure.phase === phase && failure.step === index;
      // Snapshots cost a walk of each system's tables: only for the steps that are shown.
      const before = failing || which === 'all' ? [snapshot(model), snapshot(impl)] as const : null;
      const outcomes = { model: runCommand(model, command), impl: runCommand(impl, command) };
      let change: StateChange | null = null;
      if (before !== null) {
        const [mb, ib] = before;
        // touchedScopes wants the leaves before the command, as the checker gives it.
        const leaves = typeof mb === 'string' ? [] : initMmLeaves(mb);
        const scopes = touchedScopes(command, leaves, setup.scenario.config.levels).map(wholeGigabytes);
        change = { scopes, model: delta(mb, snapshot(model), scopes), impl: delta(ib, snapshot(impl), scopes) };
      }
      steps.push({ phase, index, command, ...outcomes, change });
      if (failing) return { failure, key, steps, change };
    }
  }
  return { failure, key, steps, change: null };
}
