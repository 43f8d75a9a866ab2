/**
 * One operation's contract as a relation between the state before, the command, its
 * result and the state after, and the driver every operation shares:
 *
 *   1. the result against the preconditions, in the contract's order: the EINVAL of the
 *      argument validators, then the state's EEXIST / ENOENT (and split's and collapse's
 *      EINVAL); when none fails, only ok or a policy EPERM / ENOMEM may come back
 *      (those two the relation cannot decide on its own), naming what outcome.ts says;
 *      where strict and linux refuse differently (kmapLocal, kunmapLocal), against the
 *      reading the result matches;
 *   2. a refused operation changed nothing at all (spec/errors.ts);
 *   3. a successful one did exactly its effect (effect.ts), and translate/access
 *      returned what the contract says.
 */
import type { Op } from '../../commands.ts';
import type { PtError, Result } from '../../errors.ts';
import { OPERATIONS, type CommandOf } from '../../operations.ts';
import type { AbstractState, SystemConfig } from '../../state.ts';
import { STRICT_POLICY } from '../outcome.ts';
import { breach, clauses, type Clause, type PostMode, type PostViolation } from './clause.ts';
import { checkEffect, rootEntries, unchanged, type AspectClauses, type Effect } from './effect.ts';
import { windowsOf } from './leaves.ts';
import { RangeSet, type Range } from './ranges.ts';

/** A precondition that fails: the error it demands and the sentence that says so. */
export interface Refusal {
  readonly error: Pick<PtError, 'errno' | 'arg'>;
  readonly clause: Clause;
}

/**
 * A capability an operation needs (spec/commands.ts): the refusal, EINVAL naming op, of a
 * system whose state shows it lacks it.
 */
export interface Capability extends Refusal {
  readonly has: (s: AbstractState) => boolean;
}

/**
 * The first state precondition that fails: one refusal (or null), or, where the profiles
 * refuse differently and the state does not tell which one the system follows, each
 * reading's; the result must match one of them, the first when it matches none.
 */
export type StateRefusal = Refusal | null | readonly (Refusal | null)[];

/** The sentences every core contract has besides its own. */
export interface CommonClauses extends AspectClauses {
  /** The isolation operations: how the set of roots changes (absent: under `frame`). */
  readonly roots?: Clause;
  /** The client operations: how the clients' bookkeeping changes (absent: under `frame`). */
  readonly clients?: Clause;
  /** The client operations: how the mermap's stale lists change (absent: under `tlb`, a flush's sentence). */
  readonly stale?: Clause;
  /** The argument validators (EINVAL, first failure wins). */
  readonly einval: Clause;
  /** No precondition fails: only ok, EPERM or ENOMEM. */
  readonly outcome: Clause;
  readonly eperm: Clause;
  readonly enomem: Clause;
  readonly refusal: Clause;
}

export interface Contract<K extends Op> {
  /** The contract's module, where the sentences come from. */
  readonly source: string;
  readonly say: CommonClauses;
  /** The isolation and client operations: on a system without the capability, EINVAL naming op before anything else (spec/commands.ts). */
  readonly capability?: Capability;
  /** The argument validator of the contract (shared with model and impl: the EINVAL order is the contract). */
  /** The argument checks; `before` for those that depend on the state (the roots translate and access may name). */
  args(config: SystemConfig, c: CommandOf<K>, before: AbstractState): PtError | null;
  /** The first state precondition that fails (arguments valid), or null; per reading where the profiles differ. */
  state(before: AbstractState, c: CommandOf<K>): StateRefusal;
  /** The init_mm ranges the command names (arguments valid): where a refusal is checked in local mode. */
  scope(before: AbstractState, c: CommandOf<K>): readonly Range[];
  /**
   * What success does (every precondition holds), given the value it returned. Several
   * effects: the contract allows each (the strict and the linux reading of one operation,
   * where the relation is not told the profile); the step must do one of them wholly.
   */
  effect(before: AbstractState, c: CommandOf<K>, value: unknown): Effect | readonly Effect[];
  /** translate / access: violations of the value returned. */
  value?(before: AbstractState, c: CommandOf<K>, value: unknown): PostViolation[];
}

/** spec/contracts/README.md on errors, for every operation (the isolation ones too). */
export const REFUSAL = 'a failed operation changes nothing: not a leaf, frame, TLB entry, obligation or table';

/**
 * The sentences shared by every core contract: the README's order of the argument
 * checks, outcome.ts's naming of EPERM and ENOMEM, "a failed operation changes
 * nothing", and the frame condition (README: what a postcondition does not name
 * stays as it was); `own` adds the operation's own sentences.
 */
export function contractClauses<A extends string>(op: Op, own: Readonly<Record<Exclude<keyof AspectClauses, 'frame'> | A, string>>): CommonClauses & Readonly<Record<A, Clause>> {
  return clauses(op, {
    einval: 'EINVAL, naming the first argument whose validator fails, in the order root → vpn → pages → pfn/count → prot/change → maxPage/size (and cpu, kind, mode for access)',
    outcome: 'first failure wins: EINVAL, EEXIST / ENOENT, EPERM, ENOMEM; when none fails, the operation succeeds',
    eperm: 'EPERM, naming the argument that carries the refused intent (POLICY_ARG) and the first invariant of STRICT_POLICY the result would break',
    enomem: 'ENOMEM, naming tablePool',
    refusal: REFUSAL,
    frame: 'what a postcondition does not name stays as it was (the frame condition): the leaves outside the ranges it names, and the roots',
    ...own,
  } as Readonly<Record<keyof CommonClauses | A, string>>);
}

/** The relation of one core operation. */
export function relate<K extends Op>(k: Contract<K>, before: AbstractState, c: CommandOf<K>, result: Result<unknown>, after: AbstractState, mode: PostMode): PostViolation[] {
  const incapable = k.capability !== undefined && !k.capability.has(before);
  const bad = incapable ? k.capability!.error : k.args(before.config, c, before);
  const refusal: Refusal | null = incapable ? k.capability! : bad !== null ? { error: bad, clause: k.say.einval } : readingOf(k.state(before, c), result);
  const out = checkResult(c.op, k.say, refusal, result);
  if (!result.ok) {
    // With valid arguments the named ranges exist, and a local check looks there first.
    const windows = bad !== null ? RangeSet.EMPTY : windowsOf(rootEntries(before), k.scope(before, c));
    return [...out, ...unchanged(before, after, windows, mode, k.say.refusal)];
  }
  if (refusal !== null) return out;
  return [...out, ...(k.value?.(before, c, result.value) ?? []), ...checkEffects(before, after, k.effect(before, c, result.value), mode, k.say)];
}

/** The step against one effect, or against the one of several it comes closest to (no violation if it does one wholly; ties: the first). */
function checkEffects(before: AbstractState, after: AbstractState, effects: Effect | readonly Effect[], mode: PostMode, say: CommonClauses): PostViolation[] {
  if (!Array.isArray(effects)) return checkEffect(before, after, effects as Effect, mode, say, true);
  let best: PostViolation[] | null = null;
  for (const e of effects as readonly Effect[]) {
    const v = checkEffect(before, after, e, mode, say, true);
    if (v.length === 0) return v;
    if (best === null || v.length < best.length) best = v;
  }
  return best ?? [];
}

/** The reading the result matches: a refusal with its errno and argument, or none when the result is ok (or a policy EPERM / ENOMEM, judged later). */
function readingOf(readings: StateRefusal, result: Result<unknown>): Refusal | null {
  if (!Array.isArray(readings)) return readings as Refusal | null;
  const all = readings as readonly (Refusal | null)[];
  const matches = (r: Refusal | null): boolean =>
    r === null ? result.ok || result.error.errno === 'EPERM' || result.error.errno === 'ENOMEM' : !result.ok && result.error.errno === r.error.errno && result.error.arg === r.error.arg;
  const k = all.findIndex(matches);
  return all[k < 0 ? 0 : k] ?? null;
}

const outcomeText = (r: Result<unknown>): string => (r.ok ? 'ok' : `${r.error.errno} naming ${r.error.arg}${r.error.invariant === undefined ? '' : ` (${r.error.invariant})`}`);

function checkResult(op: Op, say: CommonClauses, refusal: Refusal | null, result: Result<unknown>): PostViolation[] {
  if (refusal !== null) {
    const { errno, arg } = refusal.error;
    if (!result.ok && result.error.errno === errno && result.error.arg === arg) return [];
    return [breach(refusal.clause, `expected ${errno} naming ${arg}, found ${outcomeText(result)}`)];
  }
  if (result.ok) return [];
  const e = result.error;
  const allowed = OPERATIONS[op].outcomes.filter((o) => o === 'EPERM' || o === 'ENOMEM');
  if (!(allowed as readonly string[]).includes(e.errno)) {
    return [breach(say.outcome, `every precondition holds, so the result must be ok${allowed.map((o) => ` or ${o}`).join('')}, found ${outcomeText(result)}`)];
  }
  if (e.errno === 'ENOMEM') return e.arg === 'tablePool' ? [] : [breach(say.enomem, `found ENOMEM naming ${e.arg}`)];
  const arg = OPERATIONS[op].policyArg;
  if (e.arg === arg && STRICT_POLICY.some((p) => p.id === e.invariant)) return [];
  return [breach(say.eperm, `expected EPERM naming ${arg ?? '?'} and a strict-policy invariant, found ${outcomeText(result)}`)];
}

/** An isolation operation's first refusal: the system lacks the capability (its state has no root 1). */
export function needsIsolation(op: Op): Capability {
  const clause = clauses(op, { capability: 'EINVAL op: the system does not provide KPTI/ASI (PageTableSystem.isolation)' }).capability;
  return { error: { errno: 'EINVAL', arg: 'op' }, clause, has: (s) => s.roots.some((r) => r.kind === 'kernel-user') };
}

/** A client operation's first refusal: the system lacks the capability (its state has no `clients`). */
export function needsClients(op: Op): Capability {
  const clause = clauses(op, { capability: 'EINVAL op: the system does not provide the clients capability (PageTableSystem.clients)' }).capability;
  return { error: { errno: 'EINVAL', arg: 'op' }, clause, has: (s) => s.clients !== undefined };
}
