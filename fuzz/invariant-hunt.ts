/**
 * The invariant hunt of the spec document: which built-in mutant breaks which invariant,
 * each break a machine-found, shrunk counterexample. `ptspec zoo` cannot say: runTrace
 * stops at the first failure, and a mutant is mostly caught by a result, postcondition or
 * refinement mismatch before the invariant it breaks is in the state. So here the mutated
 * impl runs alone on its mutant's generated sequences (fuzz/mutant-setup.ts: its scenario,
 * profile and capabilities), the unmutated impl of the same setup (the control) beside it
 * on the same commands, and after every command the whole catalogue is checked on the
 * mutated impl's abstract state. A break of invariant X at step s is the mutant's when
 * step s had the same result on both (the step did the same thing, not something one
 * refused and the other ran: a W+X map that the control refused with EEXIST is no
 * counterexample of W^X) and the control's state after step s does not break X: under the
 * linux profile the control itself breaks what only strict holds, and that is not the
 * mutant's doing. Earlier results may differ: that is often the mutant's bug showing.
 *
 * Every mutant is hunted under both profiles. Under strict the mutated impl still refuses
 * (EPERM) what its own result would break of STRICT_POLICY (impl/policy.ts), so a mutant
 * that corrupts a permission is caught there by a result mismatch and never holds the
 * broken state; under linux nothing is refused for security and the corruption stays in
 * the tables, where the catalogue sees it. What no mutant breaks is listed so, not left out.
 *
 * Deterministic: every budget is a count, and mutant M's sequence i has the seed
 * runSeed(mutantSeed(seed, M), i), whatever else is hunted.
 */
import fc from 'fast-check';
import { isDeepStrictEqual } from 'node:util';
import { CATALOGUE, checkAll, invariantById, type Invariant, type Violation } from '../checker/index.ts';
import { MUTANT_NAMES, type MutantName } from '../impl/mutants.ts';
import type { Command } from '../spec/commands.ts';
import type { AbstractState } from '../spec/state.ts';
import type { PageTableSystem, Profile } from '../spec/system.ts';
import { commandsArb } from './arbitraries.ts';
import { runSeed, shrinkFailure, upToFailure } from './campaign-run.ts';
import { abstractOf, plainWitness, runCommand, type StepOutcome, type TraceFailure } from './check.ts';
import { outcomesAgree } from './compare.ts';
import { bootedImpl, shownBreak } from './example-break.ts';
import { mutantSetup, type MutantSetup } from './mutant-setup.ts';
import type { Counterexample, InvariantExamples, InvariantHunt } from './spec-examples-json.ts';
import { mutantSeed } from './zoo.ts';

export interface HuntBudget {
  /** Sequences generated per mutant. */
  readonly sequences: number;
  /** Traces the shrinker may run per (mutant, invariant) pair. */
  readonly shrinkTraces: number;
}

interface Systems {
  readonly mutated: PageTableSystem;
  readonly control: PageTableSystem;
}

/** The profiles every mutant is hunted under, in this order. */
export const HUNT_PROFILES: readonly Profile[] = ['strict', 'linux'];

/** Mutant `name`'s setup (fuzz/mutant-setup.ts) under `profile`: its scenario, capabilities and sequences, whatever profile its tests use. */
export function huntSetup(name: MutantName, profile: Profile): MutantSetup {
  const setup = mutantSetup(name);
  return { ...setup, mutated: { ...setup.mutated, profile }, control: { ...setup.control, profile } };
}

/** The mutated and the control impl of a mutant's setup, booted once: each call hands out a fresh fork of both. */
function bootedPair(setup: MutantSetup): () => Systems {
  const mutated = bootedImpl(setup.mutated);
  const control = bootedImpl(setup.control);
  return () => ({ mutated: mutated.fork!(), control: control.fork!() });
}

/** One command run on both systems, with the mutated impl's states around it; the control's state only when asked. */
interface Step {
  readonly step: number;
  readonly command: Command;
  readonly mutated: StepOutcome;
  readonly control: StepOutcome;
  readonly before: AbstractState;
  readonly after: AbstractState;
  readonly controlAfter: () => AbstractState | null;
}

/** The commands run on both systems in turn; it ends early where the mutated impl's abstract() throws: no state to check. */
function* lockstep(systems: Systems, commands: readonly Command[]): Generator<Step> {
  let before = abstractOf(systems.mutated);
  for (let k = 0; k < commands.length && typeof before !== 'string'; k++) {
    const command = commands[k]!;
    const mutated = runCommand(systems.mutated, command);
    const control = runCommand(systems.control, command);
    const after = abstractOf(systems.mutated);
    if (typeof after === 'string') return;
    const controlAfter = (): AbstractState | null => {
      const s = abstractOf(systems.control);
      return typeof s === 'string' ? null : s;
    };
    yield { step: k, command, mutated, control, before, after, controlAfter };
    before = after;
  }
}

/**
 * The invariants of `among` that the mutated state breaks and the control's does not,
 * after a step both gave the same result (a control whose state cannot be read shares every break).
 */
function mutantBreaks(s: Step, among: readonly Invariant[]): Violation[] {
  if (!outcomesAgree(s.command, s.control, s.mutated)) return [];
  const broken = checkAll(s.after, undefined, among);
  if (broken.length === 0) return [];
  const control = s.controlAfter();
  if (control === null) return [];
  const also = new Set(checkAll(control, undefined, among.filter((inv) => broken.some((v) => v.id === inv.id))).map((v) => v.id));
  return broken.filter((v) => !also.has(v.id));
}

/**
 * A break as a trace failure, so the campaign's shrinker (campaign-run.ts shrinkFailure)
 * can cut the trace at it: the control stands where a trace's model does, the reference.
 */
function breakFailure(s: Step, v: Violation): TraceFailure {
  const inv = invariantById(v.id)!;
  return {
    kind: 'invariant', cause: v.id, phase: 'run', step: s.step, command: s.command, check: 'full', invariantId: v.id, invariantStatement: inv.statement,
    witnesses: v.witnesses.map(plainWitness), detail: `the mutant breaks ${v.id} where the unmutated impl does not: ${inv.statement}`,
    model: s.control, impl: s.mutated,
  };
}

interface Break {
  readonly failure: TraceFailure;
  readonly before: AbstractState;
  readonly after: AbstractState;
}

/** The first step of `commands` at which the mutated impl breaks `inv` and the control does not, or null. */
function firstBreak(systems: Systems, commands: readonly Command[], inv: Invariant): Break | null {
  for (const s of lockstep(systems, commands)) {
    const v = mutantBreaks(s, [inv])[0];
    if (v !== undefined) return { failure: breakFailure(s, v), before: s.before, after: s.after };
  }
  return null;
}

/** The hunt's first break of `inv` in sequence `run`, shrunk keeping it the mutant's, as the document shows it. */
function counterexample(name: MutantName, setup: MutantSetup, fresh: () => Systems, seed: number, run: number, commands: readonly Command[], first: TraceFailure, inv: Invariant, shrinkTraces: number): Counterexample {
  const shrunk = shrinkFailure({ commands, failure: first }, (candidate) => firstBreak(fresh(), candidate, inv)?.failure ?? null, shrinkTraces);
  // Run once more for the states around the step (the shrinker keeps only failures).
  const end = firstBreak(fresh(), shrunk.commands, inv)!;
  return {
    invariant: inv.id, name: inv.name, scenario: setup.scenario.name, profile: setup.mutated.profile ?? 'strict', seed, run,
    trace: shrunk.commands, step: end.failure.step, ...shownBreak(end.failure.witnesses, end.before, end.after),
    mutant: name, unshrunkLength: upToFailure(commands, first).length,
  };
}

/**
 * Every invariant mutant `name` breaks within the budget, each with the counterexample of
 * its first break, shrunk, in the order found. An invariant is hunted until its first
 * break; one that the mutant's booted state already breaks (and the control's does not)
 * is not hunted at all, since a trace would blame it on a command (none does today).
 */
export function huntMutantInvariants(name: MutantName, profile: Profile, seed: number, budget: HuntBudget): Counterexample[] {
  const setup = huntSetup(name, profile);
  // Each profile's sequences from a seed of their own: the linux hunt is not the strict one again.
  const own = runSeed(mutantSeed(seed, name), HUNT_PROFILES.indexOf(profile));
  const fresh = bootedPair(setup);
  const booted = fresh();
  const [mutatedBoot, controlBoot] = [abstractOf(booted.mutated), abstractOf(booted.control)];
  const bootBroken = new Set(typeof mutatedBoot === 'string' ? [] : checkAll(mutatedBoot).map((v) => v.id));
  if (typeof controlBoot !== 'string') for (const v of checkAll(controlBoot)) bootBroken.delete(v.id);
  let pending = CATALOGUE.filter((inv) => !bootBroken.has(inv.id));
  const arb = commandsArb(setup.scenario, setup.generate);
  const found: Counterexample[] = [];
  for (let run = 0; run < budget.sequences && pending.length > 0; run++) {
    const commands = fc.sample(arb, { seed: runSeed(own, run), numRuns: 1 })[0]!;
    for (const s of lockstep(fresh(), commands)) {
      const breaks = mutantBreaks(s, pending);
      for (const v of breaks) found.push(counterexample(name, setup, fresh, own, run, commands, breakFailure(s, v), invariantById(v.id)!, budget.shrinkTraces));
      if (breaks.length > 0) pending = pending.filter((inv) => !breaks.some((v) => v.id === inv.id));
      if (pending.length === 0) break;
    }
  }
  return found;
}

/** Per invariant of the catalogue, the mutants that break it and the shortest counterexample (ties: the mutant first by name). */
export function invariantExamples(found: readonly Counterexample[]): InvariantExamples[] {
  const order = (m: MutantName): number => MUTANT_NAMES.indexOf(m);
  return CATALOGUE.map((inv) => {
    const mine = found.filter((e) => e.invariant === inv.id);
    // A mutant that breaks it under both profiles is listed once; its shorter trace may be shown.
    const shortest = [...mine].sort((a, b) => a.trace.length - b.trace.length || (a.mutant < b.mutant ? -1 : a.mutant > b.mutant ? 1 : 0) || HUNT_PROFILES.indexOf(a.profile) - HUNT_PROFILES.indexOf(b.profile))[0];
    return { invariant: inv.id, name: inv.name, mutants: [...new Set(mine.map((e) => e.mutant))].sort((a, b) => order(a) - order(b)), ...(shortest === undefined ? {} : { counterexample: shortest }) };
  });
}

export interface HuntOptions {
  readonly seed: number;
  readonly budget: HuntBudget;
  readonly mutants: readonly MutantName[];
  /** After each mutant under each profile: how many of those hunts are done. */
  readonly onMutant?: (name: MutantName, profile: Profile, done: number, total: number) => void;
}

/** Lets a signal handler or a progress line run between two mutants: each mutant's hunt is synchronous. */
const eventLoopTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** The hunt over `mutants`, each in turn. */
export async function huntInvariants(opts: HuntOptions): Promise<InvariantHunt> {
  const found: Counterexample[] = [];
  const hunts = opts.mutants.flatMap((name) => HUNT_PROFILES.map((profile) => ({ name, profile })));
  for (const [i, { name, profile }] of hunts.entries()) {
    await eventLoopTurn();
    found.push(...huntMutantInvariants(name, profile, opts.seed, opts.budget));
    opts.onMutant?.(name, profile, i + 1, hunts.length);
  }
  const invariants = invariantExamples(found);
  return {
    seed: opts.seed, sequencesPerMutant: opts.budget.sequences, shrinkTraces: opts.budget.shrinkTraces,
    invariants, unbroken: invariants.filter((e) => e.counterexample === undefined).map((e) => e.invariant),
  };
}

/**
 * Whether a stored counterexample still is one: its trace, run on its mutant's mutated
 * and control impls, first breaks its invariant on the mutated one alone at its step,
 * with the same first witness. Null, or what differs.
 */
export function recheckCounterexample(e: Counterexample): string | null {
  const inv = invariantById(e.invariant);
  if (inv === undefined) return `${e.invariant} is not an invariant of the catalogue`;
  const setup = huntSetup(e.mutant, e.profile);
  const where = `${e.invariant} by ${e.mutant} (${e.profile})`;
  if (setup.scenario.name !== e.scenario) return `${where}: the mutant is now fuzzed on ${setup.scenario.name}, not ${e.scenario}`;
  const b = firstBreak(bootedPair(setup)(), e.trace, inv);
  if (b === null) return `${where}: its trace no longer breaks ${e.invariant} on the mutated impl alone`;
  if (b.failure.step !== e.step) return `${where}: its trace first breaks ${e.invariant} at step ${b.failure.step}, not ${e.step}`;
  const now = b.failure.witnesses[0];
  if (!isDeepStrictEqual(now, e.witnesses[0])) return `${where}: the first witness at step ${e.step} is now ${JSON.stringify(now)}, not ${JSON.stringify(e.witnesses[0])}`;
  return null;
}
