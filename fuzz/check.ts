/**
 * The refinement checker: one command sequence, run on the model and the impl side by
 * side from the same scenario.
 *
 * After every command: (1) the outcomes agree (ok or the same errno; the same
 * translate/access result); (2) the model's step and the impl's each satisfy the
 * command's postcondition (spec/contracts/post: state before, result, state after), boot
 * commands included; (3) abstract(impl) equals the model's state over the ranges the
 * command touched, and in its small global parts, boot commands included; (4) the
 * invariant catalogue holds there (after boot, not during it); (5) the concrete tables pass the impl's own checker. After a
 * successful access or flush, which change only TLBs, paging-structure caches,
 * obligations and pending tables, (4) is the invariants of those (CACHE_INVARIANTS), so a
 * missed flush is blamed on the step that missed it. Every `fullCheckEvery`
 * commands and at the end, (2)–(5) run over everything. The first failure stops the trace
 * and comes back as data, with the step, the command, both outcomes and witnesses.
 */
import { kernelLayout } from '../spec/address.ts';
import { applyCommand, type Command, type Op } from '../spec/commands.ts';
import { postcondition, type PostMode } from '../spec/contracts/post/index.ts';
import type { Errno, Result } from '../spec/errors.ts';
import { OPERATIONS, OPS } from '../spec/operations.ts';
import type { CheckScope, Witness } from '../spec/invariant.ts';
import type { Scenario } from '../spec/scenario.ts';
import { INIT_MM, type AbstractState, type Leaf } from '../spec/state.ts';
import type { AccessOutcome, KernelEvent, PageTableSystem, PageTableSystemFactory, Profile, SystemSetup } from '../spec/system.ts';
import { KERNEL_EVENT_SOURCE, kernelEventText } from '../spec/contracts/linux.ts';
import { RangeSet } from '../spec/contracts/post/ranges.ts';
import { VALUED_OPS, compareStates, differingField, outcomeDifference, outcomesAgree, type StepOutcome, type StepValue } from './compare.ts';
import { INITIAL_TABLES, bump, emptyCoverage, machineAxes, regionOf, type Coverage } from './coverage.ts';
import { emptyRuleHistory, stepRules, type RuleHistory, type RuleStep } from './coverage-rules.ts';
import { leafAt, touchedScopes } from './scope.ts';
import { beat, type Heartbeat } from './watchdog.ts';

export type { StepOutcome } from './compare.ts';

/** What went wrong, in the order the checks after a command run. */
export const FAILURE_KINDS = ['outcome-mismatch', 'postcondition', 'refinement', 'invariant', 'tables', 'checker', 'exception', 'timeout', 'finding'] as const;
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

/**
 * Under the linux profile, an invariant the state breaks is not a failure of the system
 * but something the kernel permits: a TraceFailure of kind 'finding' at the first step
 * that broke it, its detail saying what the kernel printed at that step
 * (spec/contracts/linux.ts). It is shrunk, filed and replayed like a failure, and
 * reported apart from the failures. Its cause is the invariant, the operation and the
 * region of the step (`P1 protect in kernel text`): what the kernel lets which path do
 * where. W+X through vmap of any prot is not the same finding as W+X through
 * set_memory_rw on kernel text, and shrinking must not trade one for the other.
 */
export type Finding = TraceFailure & { readonly kind: 'finding' };

export interface TraceResult {
  readonly failure: TraceFailure | null;
  /** Linux profile: each invariant broken, at the first step that broke it, in the order found. */
  readonly findings: readonly Finding[];
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
  /**
   * The violations on `state` (within `scope`, when given), of the invariants `only` names
   * when given (a suite may check more; the checker keeps only those).
   */
  check(state: AbstractState, scope?: CheckScope, only?: readonly string[]): readonly InvariantViolation[];
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
  /** The operations the impl implements (a C module's supported ops): the only ones generated. Absent: all. */
  readonly ops?: ReadonlySet<Op>;
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
  /** The semantics both systems follow (strict when absent); under linux invariants yield findings. */
  readonly profile?: Profile;
  /**
   * Build both systems with the isolation capability (SystemSetup.isolation): processes,
   * KPTI, the LDT remap and ASI, and generate their operations. For the built-in impl; a
   * module gets it when its systems have `isolation`.
   */
  readonly isolation?: boolean;
  /**
   * Generate the client operations (spec/contracts/clients.ts): the built-in systems
   * always have the capability, a module when its systems have `clients`.
   */
  readonly clients?: boolean;
}

/**
 * Operations whose linux-profile contract is prose only so far (spec/contracts/linux.ts):
 * their strict postcondition does not apply, and refinement alone holds the two systems
 * to each other there.
 */
// Of the clients: vmalloc as map; vfree, whose vm_reset_perms ignores the CPA's errors;
// applyToPageRange, which keeps what it did before a failure, in address order; addMemory,
// whose failed block keeps its direct map (spec/contracts/hotplug.ts).
const LINUX_PROSE_ONLY: ReadonlySet<Command['op']> = new Set(['map', 'unmap', 'protect', 'setDirectMapInvalid', 'setDirectMapDefault', 'vmalloc', 'vfree', 'applyToPageRange', 'addMemory']);

/**
 * Operations that can make an invariant break: they add mappings or change attributes or
 * frame facts, or (linux: vunmap frees no table) leave empty tables. The others keep
 * every translation (split, collapse) or only read or flush: a break first seen after
 * one of them was made earlier.
 */
// access: under linux a walk through a vmalloc alias of a frame removed from the direct map
// caches it (D5); freeFrames: __free_pages of a frame still mapped, cached or removed (D4, D6, D7).
// The isolation operations: every one of them writes some root (linux ptiClone skips the allowlist, asiMap the sensitive frames).
const CAN_BREAK: ReadonlySet<Command['op']> = new Set<Command['op']>([
  'map', 'unmap', 'protect', 'setDirectMapInvalid', 'setDirectMapDefault', 'freeFrames', 'access',
  'ptiClone', 'asiMap', 'asiUnmap', 'createProcess', 'exitProcess', 'mapUser', 'unmapUser', 'setLdt',
  // The clients (spec/contracts/clients.ts): each maps, unmaps or frees; allocFrames may map a pool pageblock back.
  'allocFrames', 'vmalloc', 'vfree', 'kmapLocal', 'kunmapLocal', 'mermapGet', 'mermapPut', 'allocUnmapped', 'applyToPageRange',
  // Memory hotplug: linux's failed addMemory keeps a direct map over absent frames, its removal large leaves the range cuts (D8).
  'addMemory', 'removeMemory',
]);

/**
 * The non-mutating operations that change what the CPUs cache or what is owed: TLB fills
 * and paging-structure-cache fills (access), flushes that drop entries, discharge
 * obligations and release pending tables. Each is followed by CACHE_INVARIANTS.
 */
export const CHANGES_CACHES: ReadonlySet<Command['op']> = new Set<Command['op']>(['access', 'flush', 'flushLocal', 'flushAll', 'vmUnmapAliases']);

/**
 * The invariants of cached translations against the tables and the frames (L1–L4, D5,
 * D7): their checks ignore the scope (checker/tlb.ts, checker/directmap.ts), so they run
 * whole after every step of CHANGES_CACHES at the cost of the TLBs' size.
 */
export const CACHE_INVARIANTS: readonly string[] = ['L1', 'L2', 'L3', 'L4', 'D5', 'D7'];

const EVENT_KINDS: ReadonlySet<unknown> = new Set(Object.keys(KERNEL_EVENT_SOURCE));

function isKernelEvent(e: unknown): e is KernelEvent {
  if (typeof e !== 'object' || e === null) return false;
  const v = e as Record<string, unknown>;
  return EVENT_KINDS.has(v.kind) && Number.isInteger(v.vpn) && Number.isInteger(v.pages) && Number.isInteger(v.pfn) && (v.rule === undefined || typeof v.rule === 'string');
}

/**
 * What a system printed during its last command (a system without takeEvents prints
 * nothing), or the text of what is wrong with what takeEvents gave (a user's module).
 */
function eventsOf(sys: PageTableSystem): readonly KernelEvent[] | string {
  let es: unknown;
  try {
    es = sys.takeEvents?.() ?? [];
  } catch (e) {
    return `takeEvents() threw: ${errorText(e)}`;
  }
  if (!Array.isArray(es)) return `takeEvents() returned ${typeof es}, not an array of events`;
  const bad = es.findIndex((e) => !isKernelEvent(e));
  return bad < 0 ? (es as KernelEvent[]) : `takeEvents() returned an array whose element ${bad} is not an event {kind, vpn, pages, pfn}`;
}

/**
 * The pages (per root) and frames a trace's violations of each invariant have covered so
 * far. A witness is fresh when it shows a page or frame not covered yet: a break that
 * was there before the step, or the same break cut into pieces by a split, is not.
 */
class BrokenSoFar {
  private readonly spans = new Map<string, RangeSet>();
  private readonly other = new Set<string>();

  private grows(key: string, lo: number, n: number): boolean {
    const set = this.spans.get(key) ?? RangeSet.EMPTY;
    if (n <= 0 || set.outside(lo, lo + n).length === 0) return false;
    this.spans.set(key, new RangeSet([...set.ranges, { vpn: lo, pages: n }]));
    return true;
  }

  /**
   * Whether `w` shows something of invariant `id` not covered yet; it is covered from now
   * on. A witness that names frames is judged by them (an alias break is one break
   * whichever alias a check reports it at); one that names only pages, by its pages.
   */
  fresh(id: string, w: Witness): boolean {
    const frames = w.frames ?? [];
    if (frames.length > 0) {
      let grew = false;
      for (const f of frames) grew = this.grows(`${id}|frames`, f.pfn, f.count) || grew;
      return grew;
    }
    if (w.vpn !== undefined) return this.grows(`${id}|root ${w.root ?? '-'}`, w.vpn, w.pages ?? 1);
    // A witness with no place (a table count, or a capped check's "N more" line) is news
    // only the first time the invariant has one: its text changes with the numbers.
    if (this.other.has(id)) return false;
    this.other.add(id);
    return true;
  }
}

const eventKey = (e: KernelEvent): string => `${e.kind}/${e.rule ?? ''}/${e.vpn}/${e.pages}/${e.pfn}`;

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
    if (VALUED_OPS.has(c.op)) return { outcome: 'ok', value: r.value as StepValue };
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

/** The page a command names: its vpn, or for set_direct_map_* the direct-map page of its first frame. */
function commandVpn(scenario: Scenario, c: Command): number | undefined {
  return 'vpn' in c ? c.vpn : 'count' in c ? kernelLayout(scenario.config.levels).pageOffset + c.pfn : undefined;
}

function recordCoverage(cov: Coverage, scenario: Scenario, c: Command, o: StepOutcome, after: AbstractState): void {
  cov.commands++;
  bump((cov.outcomes[c.op] ??= {}), o.outcome);
  const vpn = commandVpn(scenario, c);
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

/** The TLB, cache and obligation rules the step met (fuzz/coverage-rules.ts). */
function recordRules(cov: Coverage, step: RuleStep, history: RuleHistory): void {
  for (const id of stepRules(step, history)) bump(cov.rules, id);
}

/**
 * Runs one sequence on model and impl and returns the first failure (or null), the
 * model's outcome per command, and the coverage. Never throws for a system's fault:
 * exceptions inside model or impl become failures of kind 'exception'.
 */
/** What both systems of a trace are made from: the scenario with the trace's profile and isolation capability. */
export function systemSetup(opts: Pick<TraceOptions, 'scenario' | 'profile' | 'isolation'>): SystemSetup {
  const profile = opts.profile ?? 'strict';
  return { ...opts.scenario, ...(profile === 'strict' ? {} : { profile }), ...(opts.isolation === true ? { isolation: true } : {}) };
}

export function runTrace(opts: TraceOptions): TraceResult {
  const { scenario, commands, invariants, checkTables } = opts;
  const cov = opts.coverage ?? emptyCoverage();
  const fullEvery = opts.fullCheckEvery ?? 50;
  const outcomes: StepOutcome[] = [];
  const profile = opts.profile ?? 'strict';
  const setup = systemSetup(opts);
  const findings: Finding[] = [];
  const found = new Set<string>();
  /** What this trace already broke, by invariant. */
  const brokenSoFar = new BrokenSoFar();
  /** What the model printed at the current step. */
  let stepEvents: readonly KernelEvent[] = [];
  cov.sequences++;
  for (const axis of machineAxes(scenario.config)) bump(cov.axes, axis);
  /** What the coverage rules remember of the trace (fuzz/coverage-rules.ts). */
  const ruleHistory = emptyRuleHistory();
  /** The cache invariants this suite has. */
  const cacheIds = CACHE_INVARIANTS.filter((id) => invariants.ids.includes(id));
  const cacheIdSet: ReadonlySet<string> = new Set(cacheIds);
  /** Whether the impl has held more tables than its pool starts with (the pool-grew axis, counted once). */
  let grew = false;
  const tablesHeld = (s: AbstractState): void => {
    if (grew || s.tablesInUse <= INITIAL_TABLES) return;
    grew = true;
    bump(cov.axes, 'pool-grew');
  };

  let model: PageTableSystem;
  let impl: PageTableSystem;
  const first = scenario.boot[0] ?? commands[0] ?? { op: 'flushAll' };
  const none: StepOutcome = { outcome: 'ok' };
  try {
    model = opts.makeModel(setup as Scenario);
  } catch (e) {
    return { failure: exception('boot', 0, first, 'model', 'the model factory threw', e, none, none), findings, outcomes, coverage: cov };
  }
  try {
    impl = opts.makeImpl(setup as Scenario);
  } catch (e) {
    return { failure: exception('boot', 0, first, 'impl', 'the impl factory threw', e, none, none), findings, outcomes, coverage: cov };
  }

  /** init_mm's leaves in the model before the current command (abstract() states are snapshots). */
  let before: readonly Leaf[] = [];
  // Each system's state before the current command (the postconditions relate it to the
  // one after): the boot state, then the after-state of every command in turn.
  const booted = { model: abstractOf(model), impl: abstractOf(impl) };
  if (typeof booted.model === 'string' || typeof booted.impl === 'string') {
    const who = typeof booted.model === 'string' ? 'model' : 'impl';
    return { failure: exception('boot', 0, first, who, `abstract() of the new ${who} threw`, booted[who], none, none), findings, outcomes, coverage: cov };
  }
  let previous: Pair = { model: booted.model, impl: booted.impl };
  tablesHeld(booted.impl);

  /**
   * The step of this trace that first broke invariant `id` where `w` says, replayed on a
   * fresh model up to `upTo` with the invariant checked in full after each command, and
   * what the model printed there. For a break a full check found that the incremental
   * checks of the steps before it did not reach: the step to blame is the one that made it.
   */
  const placeOf = (w: Witness): CheckScope | undefined => {
    const f = w.frames?.[0];
    return w.vpn !== undefined ? { vpn: w.vpn, pages: Math.max(1, w.pages ?? 1) }
      : f !== undefined ? { vpn: kernelLayout(scenario.config.levels).pageOffset + f.pfn, pages: f.count } : undefined;
  };

  const locateBreak = (id: string, w: Witness, upTo: number): { readonly step: number; readonly events: readonly KernelEvent[] } => {
    const sys = opts.makeModel(setup as Scenario);
    for (const c of scenario.boot) runCommand(sys, c);
    // Checked where the witness is: at its pages (a scope brings in every alias of their
    // frames, checker/common.ts), or at its frames' direct-map pages. A scoped check lists
    // all of a small place, where a full one may cap its list before reaching it.
    const place = placeOf(w);
    for (let k = 0; k < upTo; k++) {
      // The replay is progress on this step: a watchdog must not take it for a hung command.
      if (opts.heartbeat !== undefined) beat(opts.heartbeat, upTo);
      runCommand(sys, commands[k]!);
      const printed = eventsOf(sys);
      if (!MUTATING.has(commands[k]!.op) && !CHANGES_CACHES.has(commands[k]!.op)) continue;
      if (invariants.check(sys.abstract(), place).some((x) => x.id === id)) return { step: k, events: typeof printed === 'string' ? [] : printed };
    }
    return { step: upTo, events: stepEvents };
  };

  /** Linux: each violation with a witness not seen before becomes a finding, once per cause. */
  const noteFindings = (
    violations: readonly InvariantViolation[], step: number, c: Command, base: Pick<TraceFailure, 'phase' | 'step' | 'command' | 'model' | 'impl'>,
    depth: TraceFailure['check'], before: AbstractState,
  ): void => {
    for (const v of violations) {
      // Breaks no finding of this trace has shown yet (a split piece of a known one is known).
      const fresh = v.witnesses.filter((w) => brokenSoFar.fresh(v.id, w));
      if (fresh.length === 0) continue;
      // Was it already broken there before this step? Then an earlier step made it where
      // no check looked (an alias outside the touched ranges, or past a capped witness
      // list): blame that one. A step that cannot make a break (CAN_BREAK) never gets it.
      const place = placeOf(fresh[0]!);
      const earlier = base.phase === 'run' && (!CAN_BREAK.has(c.op) || invariants.check(before, place).some((x) => x.id === v.id));
      const at = earlier ? locateBreak(v.id, fresh[0]!, step) : { step, events: stepEvents };
      const cmd = at.step === step ? c : commands[at.step]!;
      const vpn = commandVpn(scenario, cmd);
      const cause = `${v.id} ${cmd.op} in ${vpn === undefined ? 'no region' : regionOf(scenario.regions, vpn)}`;
      if (found.has(cause)) continue;
      found.add(cause);
      const printed = at.events.length === 0 ? 'the kernel printed nothing' : `the kernel printed: ${at.events.map(kernelEventText).join('; ')}`;
      const where = at.step === step ? base : { ...base, step: at.step, command: cmd, model: outcomes[at.step] ?? base.model, impl: outcomes[at.step] ?? base.impl };
      findings.push({
        ...where, kind: 'finding', cause, check: depth, invariantId: v.id, invariantStatement: v.statement,
        witnesses: fresh.map(plainWitness), detail: `${printed}; ${v.id}: ${v.statement}`,
      });
    }
  };

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
    const printed = { model: eventsOf(model), impl: eventsOf(impl) };
    if (typeof printed.model === 'string' || typeof printed.impl === 'string') {
      const who = typeof printed.model === 'string' ? 'model' : 'impl';
      return { ...base, kind: 'exception', cause: who, check: 'outcome', witnesses: [], detail: `the ${who}'s ${printed[who]}` };
    }
    stepEvents = printed.model;
    // What the kernel prints is part of its behaviour: the two systems must print the same.
    // A system without takeEvents (a user's module) is not held to it.
    if (impl.takeEvents !== undefined && printed.model.map(eventKey).join() !== printed.impl.map(eventKey).join()) {
      const text = (es: readonly KernelEvent[]): string => (es.length === 0 ? 'nothing' : es.map(kernelEventText).join('; '));
      return { ...base, kind: 'outcome-mismatch', cause: 'events', check: 'outcome', witnesses: [], detail: `the model printed ${text(printed.model)}, the impl ${text(printed.impl)}` };
    }
    const full = depth === 'full';
    const ms = abstractOf(model);
    const xs = abstractOf(impl);
    if (typeof ms === 'string' || typeof xs === 'string') {
      const who = typeof ms === 'string' ? 'model' : 'impl';
      return { ...base, kind: 'exception', cause: who, check: 'outcome', witnesses: [], detail: `abstract() of the ${who} threw: ${typeof ms === 'string' ? ms : xs}` };
    }
    tablesHeld(xs);
    // The contract of the command, on each system's own step (boot steps too): local unless
    // this is a full check.
    const after = { model: ms, impl: xs };
    const stateBefore = previous.impl;
    const modelBefore = previous.model;
    const broken = profile === 'linux' && LINUX_PROSE_ONLY.has(c.op) ? null : brokenPostcondition(c, { model: m, impl: x }, previous, after, full ? 'full' : 'local');
    previous = after;
    if (broken !== null) return { ...base, kind: 'postcondition', check: full ? 'full' : 'incremental', ...broken };
    if (depth === 'outcome') return null;
    const scopes = full ? null : touchedScopes(c, before, scenario.config.levels);
    before = initMmLeaves(ms);
    if (phase === 'run') {
      recordCoverage(cov, scenario, c, m, ms);
      recordRules(cov, { before: modelBefore, command: c, outcome: m, after: ms }, ruleHistory);
    }
    const diff = compareStates(ms, xs, scopes);
    if (diff !== null) return { ...base, kind: 'refinement', cause: diff.part, check: depth, witnesses: diff.witnesses, detail: diff.detail };
    if (full) cov.fullChecks++;
    // Invariants hold before the step; a failed or read-only command changed no leaf and
    // no frame (the comparison above just showed the impl agrees), so only a successful
    // mutating command needs them again before the next full check.
    // Boot builds the kernel's tables the way the kernel does, through states (text still
    // writable before mark_rodata_ro) the catalogue rightly rejects: only the booted state
    // is held to it.
    // Under linux a failed CPA request keeps what it changed before its error (not
    // atomic), so a failed mutating command is checked too.
    const changed = m.outcome === 'ok' || (profile === 'linux' && LINUX_PROSE_ONLY.has(c.op));
    const mutated = phase === 'run' && changed && MUTATING.has(c.op);
    // A successful access or flush changed only caches and obligations: their invariants, whole.
    const cachesOnly = !full && !mutated && phase === 'run' && m.outcome === 'ok' && CHANGES_CACHES.has(c.op) && cacheIds.length > 0;
    const invariantScopes = full ? [undefined] : mutated ? scopes! : cachesOnly ? [undefined] : [];
    for (const scope of invariantScopes) {
      for (const id of cachesOnly ? cacheIds : invariants.ids) bump(cov.invariants, id);
      const violations = cachesOnly ? invariants.check(xs, undefined, cacheIds).filter((v) => cacheIdSet.has(v.id)) : invariants.check(xs, scope);
      if (profile === 'linux') noteFindings(violations, step, c, base, depth, stateBefore);
      const bad = profile === 'linux' ? undefined : violations[0];
      if (bad !== undefined) {
        return { ...base, kind: 'invariant', cause: bad.id, check: depth, invariantId: bad.id, invariantStatement: bad.statement, witnesses: bad.witnesses.map(plainWitness), detail: `invariant ${bad.id} fails: ${bad.statement}` };
      }
      // The tables did not change but for pending ones a flush released: the next full check has them.
      if (checkTables !== null && !cachesOnly) {
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
    // A boot step that moves on is progress too: step -1 is "building and booting".
    if (opts.heartbeat !== undefined) beat(opts.heartbeat, -1);
    const f = checkAfter('boot', k, c, runCommand(model, c), runCommand(impl, c), k === scenario.boot.length - 1 ? 'full' : 'incremental');
    if (f !== null) return { failure: f, findings, outcomes, coverage: cov };
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
    if (f !== null) return { failure: f, findings, outcomes, coverage: cov };
  }
  // `previous` is the impl's state after the last command, already taken by its checks.
  const ending = opts.checkDefinitions === true ? definitionsFailure(invariants, previous.impl, commands, outcomes) : null;
  return { failure: ending, findings, outcomes, coverage: cov };
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
