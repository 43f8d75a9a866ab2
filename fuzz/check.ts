/**
 * The refinement checker: one command sequence, run on the model and the impl side by
 * side from the same scenario.
 *
 * After every command: (1) the outcomes agree (ok or the same errno; the same
 * translate/access result); (2) the model's step and the impl's each satisfy the
 * command's postcondition (spec/contracts/post: state before, result, state after), boot
 * commands included; (3) abstract(impl) equals the model's state over the ranges the
 * command touched, and in its small global parts, boot commands included; (4) the
 * invariant catalogue holds there (after boot, not during it); (5) the concrete tables pass the impl's own checker. Every `fullCheckEvery`
 * commands and at the end, (2)–(5) run over everything. The first failure stops the trace
 * and comes back as data, with the step, the command, both outcomes and witnesses.
 */
import { kernelLayout } from '../spec/address.ts';
import { applyCommand, type Command } from '../spec/commands.ts';
import { postcondition, type PostMode } from '../spec/contracts/post/index.ts';
import type { Errno, Result } from '../spec/errors.ts';
import { OPERATIONS, OPS } from '../spec/operations.ts';
import type { CheckScope, Witness } from '../spec/invariant.ts';
import type { Scenario } from '../spec/scenario.ts';
import { INIT_MM, type AbstractState, type Leaf } from '../spec/state.ts';
import type { AccessOutcome, PageTableSystem, PageTableSystemFactory, Translation } from '../spec/system.ts';
import { compareStates, differingField, outcomeDifference, outcomesAgree, type StepOutcome } from './compare.ts';
import { bump, emptyCoverage, regionOf, type Coverage } from './coverage.ts';
import { leafAt, touchedScopes } from './scope.ts';
import { beat, type Heartbeat } from './watchdog.ts';

export type { StepOutcome } from './compare.ts';

/** What went wrong, in the order the checks after a command run. */
export const FAILURE_KINDS = ['outcome-mismatch', 'postcondition', 'refinement', 'invariant', 'tables', 'checker', 'exception', 'timeout'] as const;
export type FailureKind = (typeof FAILURE_KINDS)[number];

/** The first thing that went wrong in a trace. Plain data (JSON-able). */
export interface TraceFailure {
  readonly kind: FailureKind;
  /** 'boot': while applying scenario.boot; 'run': while applying `commands`. */
  readonly phase: 'boot' | 'run';
  /** Index of the command in `commands` (or in scenario.boot for phase 'boot'). */
  readonly step: number;
  readonly command: Command;
  /** Which check caught it: the per-step outcome check, the incremental check over the touched ranges, or a full check. */
  readonly check: 'outcome' | 'incremental' | 'full';
  /**
   * What failed, in the terms of its kind, with the kind the failure's identity
   * (campaign-run.ts failureKey): the invariant id (invariant, checker), the postcondition
   * clause's aspect (`tlb` of `protect.tlb`), the part of the state that differs
   * (refinement), the outcome field that differs (outcome-mismatch), the table check
   * (tables), or who threw (exception). Never the operation: one bug breaks the same
   * thing through several operations.
   */
  readonly cause: string;
  readonly invariantId?: string;
  readonly invariantStatement?: string;
  readonly witnesses: readonly Witness[];
  /** One or two sentences saying what differs or what is violated. */
  readonly detail: string;
  readonly model: StepOutcome;
  readonly impl: StepOutcome;
}

export interface TraceResult {
  readonly failure: TraceFailure | null;
  /** Model outcome of each command run (up to and including the failing one). */
  readonly outcomes: readonly StepOutcome[];
  readonly coverage: Coverage;
}

/** An invariant that fails, with where. */
export interface InvariantViolation {
  readonly id: string;
  readonly statement: string;
  readonly witnesses: readonly Witness[];
}

/** The catalogue as the checker runs it. */
export interface InvariantSuite {
  /** Ids of every invariant run by `check` (for coverage). */
  readonly ids: readonly string[];
  check(state: AbstractState, scope?: CheckScope): readonly InvariantViolation[];
  /**
   * Where the fast checks disagree with the invariants' declarative definitions on this
   * state (a bug in the checker, not in a system). Run on the state each trace ends in, so
   * the agreement the property tests show on generated states is also held on reachable
   * ones; a suite may skip states too large for the definitions' plain loops.
   */
  definitions?(state: AbstractState): readonly { readonly id: string; readonly detail: string }[];
}

/** A checker of the concrete tables of one system; witnesses empty when they are sound. */
export type TableChecker = (system: PageTableSystem, scope?: CheckScope) => readonly Witness[];

export interface TraceOptions {
  readonly scenario: Scenario;
  readonly makeModel: PageTableSystemFactory;
  readonly makeImpl: PageTableSystemFactory;
  readonly commands: readonly Command[];
  /** A full check every this many commands (0: only at the end). Default 50. */
  readonly fullCheckEvery?: number;
  readonly invariants: InvariantSuite;
  /** The impl's concrete table checker; null when the impl has none (a user's --impl). */
  readonly checkTables: TableChecker | null;
  /**
   * Also hold the invariants' fast checks to their definitions on the state the trace
   * ends in (InvariantSuite.definitions). The definitions are plain loops, too slow for
   * every run: campaigns ask for it on a fixed share of their runs, replays always.
   */
  readonly checkDefinitions?: boolean;
  /** Counters to add this trace's coverage to (a fresh one otherwise). */
  readonly coverage?: Coverage;
  /** Where to publish the step about to run, for a watchdog on another thread (fuzz/watchdog.ts). */
  readonly heartbeat?: Heartbeat;
}

/** Operations that change leaves or frames (not just TLBs and obligations): the operation table's `mutating`. */
const MUTATING: ReadonlySet<Command['op']> = new Set(OPS.filter((op) => OPERATIONS[op].mutating));
/**
 * A witness with exactly the Witness fields (failure files are decoded strictly). A check
 * may add its own (impl/check.ts names the check: 'leaked', 'live-count', …); that
 * name goes into the detail.
 */
export function plainWitness(w: Witness & { readonly check?: unknown }): Witness {
  return {
    ...(w.root === undefined ? {} : { root: w.root }),
    ...(w.vpn === undefined ? {} : { vpn: w.vpn }),
    ...(w.pages === undefined ? {} : { pages: w.pages }),
    ...(w.frames === undefined ? {} : { frames: w.frames.map((f) => ({ pfn: f.pfn, count: f.count })) }),
    detail: typeof w.check === 'string' ? `(${w.check}) ${w.detail}` : w.detail,
  };
}

/** The check of impl/check.ts a table witness names (it adds the field to its witnesses). */
const tableCheckOf = (w: Witness & { readonly check?: unknown }): string => (typeof w.check === 'string' ? w.check : 'tables');

/** An exception as text: its stack when it has one (where in the system it was thrown). */
export const errorText = (e: unknown): string => (e instanceof Error ? (e.stack ?? e.message) : String(e));

/** Applies one command to one system; an exception becomes an outcome (with its stack). */
export function runCommand(sys: PageTableSystem, c: Command): StepOutcome {
  try {
    const r = applyCommand(sys, c);
    if (!r.ok) {
      const { errno, arg, invariant, message } = r.error;
      return { outcome: errno, arg, ...(invariant === undefined ? {} : { invariant }), message };
    }
    if (c.op === 'translate' || c.op === 'access') return { outcome: 'ok', value: r.value as Translation | AccessOutcome };
    return { outcome: 'ok' };
  } catch (e) {
    return { outcome: 'exception', message: errorText(e) };
  }
}

/** The system's abstract state, or the text of what abstract() threw. */
export function abstractOf(sys: PageTableSystem): AbstractState | string {
  try {
    return sys.abstract();
  } catch (e) {
    return errorText(e);
  }
}

export const initMmLeaves = (s: AbstractState): readonly Leaf[] => s.roots.find((r) => r.id === INIT_MM)?.leaves ?? [];

function recordCoverage(cov: Coverage, scenario: Scenario, c: Command, o: StepOutcome, after: AbstractState): void {
  cov.commands++;
  bump((cov.outcomes[c.op] ??= {}), o.outcome);
  const vpn = 'vpn' in c ? c.vpn : 'count' in c ? kernelLayout(scenario.config.levels).pageOffset + c.pfn : undefined;
  if (vpn === undefined) return;
  bump(cov.regions, regionOf(scenario.regions, vpn));
  if (o.outcome !== 'ok') return;
  if (c.op === 'access') {
    const a = o.value as AccessOutcome;
    bump(cov.access, a.fault === false ? (a.fromTlb ? 'tlb' : 'walk') : a.fault);
  }
  const leaf = leafAt(initMmLeaves(after), vpn);
  bump(cov.pageSizes, leaf === undefined ? 'unmapped' : leaf.size);
}

/**
 * Runs one sequence on model and impl and returns the first failure (or null), the
 * model's outcome per command, and the coverage. Never throws for a system's fault:
 * exceptions inside model or impl become failures of kind 'exception'.
 */
export function runTrace(opts: TraceOptions): TraceResult {
  const { scenario, commands, invariants, checkTables } = opts;
  const cov = opts.coverage ?? emptyCoverage();
  const fullEvery = opts.fullCheckEvery ?? 50;
  const outcomes: StepOutcome[] = [];
  cov.sequences++;

  let model: PageTableSystem;
  let impl: PageTableSystem;
  const first = scenario.boot[0] ?? commands[0] ?? { op: 'flushAll' };
  const none: StepOutcome = { outcome: 'ok' };
  try {
    model = opts.makeModel(scenario);
  } catch (e) {
    return { failure: exception('boot', 0, first, 'model', 'the model factory threw', e, none, none), outcomes, coverage: cov };
  }
  try {
    impl = opts.makeImpl(scenario);
  } catch (e) {
    return { failure: exception('boot', 0, first, 'impl', 'the impl factory threw', e, none, none), outcomes, coverage: cov };
  }

  /** init_mm's leaves in the model before the current command (abstract() states are snapshots). */
  let before: readonly Leaf[] = [];
  // Each system's state before the current command (the postconditions relate it to the
  // one after): the boot state, then the after-state of every command in turn.
  const booted = { model: abstractOf(model), impl: abstractOf(impl) };
  if (typeof booted.model === 'string' || typeof booted.impl === 'string') {
    const who = typeof booted.model === 'string' ? 'model' : 'impl';
    return { failure: exception('boot', 0, first, who, `abstract() of the new ${who} threw`, booted[who], none, none), outcomes, coverage: cov };
  }
  let previous: Pair = { model: booted.model, impl: booted.impl };

  /** The checks after one command, as deep as asked; null when all pass. */
  const checkAfter = (phase: 'boot' | 'run', step: number, c: Command, m: StepOutcome, x: StepOutcome, depth: TraceFailure['check']): TraceFailure | null => {
    const base = { phase, step, command: c, model: m, impl: x };
    if (m.outcome === 'exception' || x.outcome === 'exception') {
      const who = m.outcome === 'exception' ? 'model' : 'impl';
      const message = (who === 'model' ? m : x).message ?? '';
      // A fenced module's non-Result (fuzz/guard.ts) is not something it threw.
      const detail = message.startsWith(`the ${who} returned `) ? message : `the ${who} threw: ${message}`;
      return { ...base, kind: 'exception', cause: who, check: 'outcome', witnesses: [], detail };
    }
    if (!outcomesAgree(c, m, x)) {
      return { ...base, kind: 'outcome-mismatch', cause: differingField(m, x), check: 'outcome', witnesses: [], detail: outcomeDifference(m, x) };
    }
    const full = depth === 'full';
    const ms = abstractOf(model);
    const xs = abstractOf(impl);
    if (typeof ms === 'string' || typeof xs === 'string') {
      const who = typeof ms === 'string' ? 'model' : 'impl';
      return { ...base, kind: 'exception', cause: who, check: 'outcome', witnesses: [], detail: `abstract() of the ${who} threw: ${typeof ms === 'string' ? ms : xs}` };
    }
    // The contract of the command, on each system's own step (boot steps too): local unless
    // this is a full check.
    const after = { model: ms, impl: xs };
    const broken = brokenPostcondition(c, { model: m, impl: x }, previous, after, full ? 'full' : 'local');
    previous = after;
    if (broken !== null) return { ...base, kind: 'postcondition', check: full ? 'full' : 'incremental', ...broken };
    if (depth === 'outcome') return null;
    const scopes = full ? null : touchedScopes(c, before, scenario.config.levels);
    before = initMmLeaves(ms);
    if (phase === 'run') recordCoverage(cov, scenario, c, m, ms);
    const diff = compareStates(ms, xs, scopes);
    if (diff !== null) return { ...base, kind: 'refinement', cause: diff.part, check: depth, witnesses: diff.witnesses, detail: diff.detail };
    if (full) cov.fullChecks++;
    // Invariants hold before the step; a failed or read-only command changed no leaf and
    // no frame (the comparison above just showed the impl agrees), so only a successful
    // mutating command needs them again before the next full check.
    // Boot builds the kernel's tables the way the kernel does, through states (text still
    // writable before mark_rodata_ro) the catalogue rightly rejects: only the booted state
    // is held to it.
    const invariantScopes = full ? [undefined] : phase === 'run' && m.outcome === 'ok' && MUTATING.has(c.op) ? scopes! : [];
    for (const scope of invariantScopes) {
      for (const id of invariants.ids) bump(cov.invariants, id);
      const bad = invariants.check(xs, scope)[0];
      if (bad !== undefined) {
        return { ...base, kind: 'invariant', cause: bad.id, check: depth, invariantId: bad.id, invariantStatement: bad.statement, witnesses: bad.witnesses.map(plainWitness), detail: `invariant ${bad.id} fails: ${bad.statement}` };
      }
      if (checkTables !== null) {
        let w: readonly Witness[];
        try {
          w = checkTables(impl, scope);
        } catch (e) {
          return exception(phase, step, c, 'table-checker', 'the table checker threw', e, m, x);
        }
        if (w.length > 0) {
          const witnesses = w.map(plainWitness);
          return { ...base, kind: 'tables', cause: tableCheckOf(w[0]!), check: depth, witnesses, detail: `the concrete tables are broken: ${witnesses[0]!.detail}` };
        }
      }
    }
    return null;
  };

  // Boot: the scenario's own commands, each step's outcome, postcondition and refinement
  // checked so a broken boot is blamed on the command that broke it, and the state they
  // build checked in full at the end (a bug in building the direct map is a bug).
  for (let k = 0; k < scenario.boot.length; k++) {
    const c = scenario.boot[k]!;
    const f = checkAfter('boot', k, c, runCommand(model, c), runCommand(impl, c), k === scenario.boot.length - 1 ? 'full' : 'incremental');
    if (f !== null) return { failure: f, outcomes, coverage: cov };
  }

  for (let k = 0; k < commands.length; k++) {
    const c = commands[k]!;
    if (opts.heartbeat !== undefined) beat(opts.heartbeat, k);
    const m = runCommand(model, c);
    const x = runCommand(impl, c);
    outcomes.push(m);
    const full = k === commands.length - 1 || (fullEvery > 0 && (k + 1) % fullEvery === 0);
    // A full check subsumes the incremental one.
    const f = checkAfter('run', k, c, m, x, full ? 'full' : 'incremental');
    if (f !== null) return { failure: f, outcomes, coverage: cov };
  }
  // `previous` is the impl's state after the last command, already taken by its checks.
  const ending = opts.checkDefinitions === true ? definitionsFailure(invariants, previous.impl, commands, outcomes) : null;
  return { failure: ending, outcomes, coverage: cov };
}

interface Pair {
  readonly model: AbstractState;
  readonly impl: AbstractState;
}

/** A step's result as the postconditions read it (exceptions are reported before them). */
function resultOf(o: StepOutcome): Result<unknown> {
  if (o.outcome === 'ok') return { ok: true, value: o.value };
  const error = { errno: o.outcome as Errno, arg: o.arg ?? '', message: o.message ?? '' };
  return { ok: false, error: o.invariant === undefined ? error : { ...error, invariant: o.invariant } };
}

/** The first clause of the command's contract that the model's step, or else the impl's, breaks. */
function brokenPostcondition(c: Command, results: { readonly model: StepOutcome; readonly impl: StepOutcome }, before: Pair, after: Pair, mode: PostMode): Pick<TraceFailure, 'cause' | 'detail' | 'witnesses'> | null {
  for (const who of ['model', 'impl'] as const) {
    const v = postcondition(before[who], c, resultOf(results[who]), after[who], mode)[0];
    // The clause id is `op.aspect`: the aspect is what broke, whichever operation broke it.
    if (v !== undefined) return { cause: v.clause.slice(v.clause.indexOf('.') + 1), detail: `the ${who} breaks ${c.op}'s postcondition ${v.detail}`, witnesses: v.witnesses.map(plainWitness) };
  }
  return null;
}

/** The end of a trace: the fast checks against the invariants' definitions on the impl's final state `end`. */
function definitionsFailure(invariants: InvariantSuite, end: AbstractState, commands: readonly Command[], outcomes: readonly StepOutcome[]): TraceFailure | null {
  const last = commands[commands.length - 1];
  const outcome = outcomes[outcomes.length - 1];
  if (invariants.definitions === undefined || last === undefined || outcome === undefined) return null;
  const d = invariants.definitions(end)[0];
  if (d === undefined) return null;
  return {
    kind: 'checker', cause: d.id, phase: 'run', step: commands.length - 1, command: last, check: 'full', invariantId: d.id,
    witnesses: [], detail: `the fast check of ${d.detail}`, model: outcome, impl: outcome,
  };
}

function exception(phase: 'boot' | 'run', step: number, command: Command, who: string, what: string, e: unknown, model: StepOutcome, impl: StepOutcome): TraceFailure {
  return { kind: 'exception', cause: who, phase, step, command, check: 'outcome', witnesses: [], detail: `${what}: ${errorText(e)}`, model, impl };
}
