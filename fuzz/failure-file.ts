/**
 * Failure files: one per distinct failure in a campaign's failure directory (the store is
 * failure-db.ts), read back by the next campaign (stored failures are replayed first) and
 * by `ptspec replay`. People edit them by hand to cut a trace down, so decoding is strict
 * (io/trace.ts). The failure it stores is the checker's TraceFailure itself, so the codec
 * and the type cannot drift apart (`satisfies`).
 */
import * as t from 'io-ts';
import { ERRNOS } from '../spec/errors.ts';
import { PROFILES, type Profile } from '../spec/system.ts';
import {
  AccessOutcomeC, ProcessRootsC, WalkVisitC, CommandC, CommandsC, TranslationC, WitnessC, int, oneOf, parseJson, positiveInt, strictObject, tagged,
  type Decoded,
} from '../io/trace.ts';
import { FAILURE_KINDS, plainWitness, type StepOutcome, type TraceFailure } from './check.ts';
import type { FoundFailure } from './campaign-run.ts';
import { formatCommand } from './format.ts';

/** What a campaign ran against: the built-in impl, the impl with a mutant, or a user module (`--impl`). */
export type Target =
  | { readonly kind: 'impl' }
  | { readonly kind: 'mutant'; readonly mutant: string }
  | { readonly kind: 'module'; readonly module: string }
  /** `--impl-cmd`: the command line of a native program (c/PROTOCOL.md). */
  | { readonly kind: 'command'; readonly command: string };

export const TargetC = tagged<Target>('a target', 'kind', {
  impl: strictObject('impl target', { kind: t.literal('impl') }),
  mutant: strictObject('mutant target', { kind: t.literal('mutant'), mutant: t.string }),
  module: strictObject('module target', { kind: t.literal('module'), module: t.string }),
  command: strictObject('command target', { kind: t.literal('command'), command: t.string }),
});

const StepOutcomeC = strictObject('an outcome', {
  outcome: oneOf(`an outcome (ok | ${ERRNOS.join(' | ')} | exception)`, ['ok', ...ERRNOS, 'exception'] as const),
}, {
  value: t.union([TranslationC, AccessOutcomeC, ProcessRootsC, t.number, t.readonlyArray(WalkVisitC)], 'a translate, access, createProcess, kmapLocal, mermapGet or walkPageRange result'),
  arg: t.string,
  invariant: t.string,
  message: t.string,
}) satisfies t.Decoder<unknown, StepOutcome>;

/** The failing step exactly as fuzz/check.ts reports it. */
export const FailureC = strictObject('a failure', {
  kind: oneOf(`a failure kind (${FAILURE_KINDS.join(' | ')})`, FAILURE_KINDS),
  cause: t.string,
  phase: oneOf('a phase (boot | run)', ['boot', 'run'] as const),
  step: int,
  check: oneOf('a check (outcome | incremental | full)', ['outcome', 'incremental', 'full'] as const),
  command: CommandC,
  detail: t.string,
  witnesses: t.readonlyArray(WitnessC),
  model: StepOutcomeC,
  impl: StepOutcomeC,
}, {
  invariantId: t.string,
  invariantStatement: t.string,
}) satisfies t.Decoder<unknown, TraceFailure>;

export const FAILURE_FORMAT = 'ptspec-failure';
/**
 * 3: the failure names its cause and the key is the cause, not the operation (2 keyed by
 * operation; 1 stored the outcomes as text).
 */
export const FAILURE_VERSION = 3;

export const FailureFileC = strictObject('a failure file', {
  format: t.literal(FAILURE_FORMAT),
  version: t.literal(FAILURE_VERSION),
  ptspecVersion: t.string,
  /** Identity of the failure in the database: target, scenario, kind and cause (campaign-run.ts failureKey). */
  key: t.string,
  scenario: t.string,
  target: TargetC,
  maxCommands: positiveInt,
  /** The checker's full-check period: a replay must check exactly as the campaign did. */
  fullCheckEvery: int,
  campaignSeed: int,
  runIndex: int,
  /**
   * The run's seed (fast-check generates its sequence from it) and the shrink path: the
   * deletions (`start+count`, `:`-separated) that turned that sequence into `commands`.
   */
  seed: int,
  path: t.string,
  commands: CommandsC,
  failure: FailureC,
  /** How many times campaigns have hit this failure (the first time included). */
  count: positiveInt,
  firstSeen: t.string,
  lastSeen: t.string,
}, {
  /**
   * Written since these fields exist; optional so older version-3 files still decode.
   * When the finding campaign learnt of it: ms after it started, and the commands it had
   * run before that run (FoundFailure).
   */
  foundAtMs: int,
  commandsBefore: int,
  /** Whether the run drew its operations from a swarm subset (CommandsArbOptions.swarm); absent: no swarm, as before it existed. */
  swarm: t.boolean,
  /** The semantics it was found under (spec/system.ts Profile); absent: strict, as before profiles existed. */
  profile: oneOf('a profile (strict | linux)', PROFILES),
});
export type FailureFile = t.TypeOf<typeof FailureFileC>;

/** What a failure file records about the campaign that found it. */
export interface FailureOrigin {
  readonly ptspecVersion: string;
  readonly scenario: string;
  readonly target: Target;
  readonly maxCommands: number;
  readonly fullCheckEvery: number;
  readonly campaignSeed: number;
  readonly swarm: boolean;
  readonly profile?: Profile;
}

/** The record of a failure just found, seen once at `now`. */
export function failureRecord(found: FoundFailure, origin: FailureOrigin, now: string): FailureFile {
  return {
    format: FAILURE_FORMAT,
    version: FAILURE_VERSION,
    ...origin,
    key: found.key,
    runIndex: found.runIndex,
    seed: found.seed,
    path: found.path,
    commands: found.commands,
    ...(found.foundAtMs === undefined ? {} : { foundAtMs: found.foundAtMs }),
    ...(found.commandsBefore === undefined ? {} : { commandsBefore: found.commandsBefore }),
    // Witnesses with exactly the Witness fields: the file is decoded strictly.
    failure: { ...found.failure, witnesses: found.failure.witnesses.map(plainWitness) },
    count: 1,
    firstSeen: now,
    lastSeen: now,
  };
}

/** Parse and decode a failure file's text. */
export function parseFailureFile(text: string): Decoded<FailureFile> {
  const r = parseJson(FailureFileC, text);
  if (r.ok || !/^version\b/.test(r.errors[0] ?? '')) return r;
  return { ok: false, errors: [...r.errors, `this ptspec reads failure files of version ${FAILURE_VERSION}; re-run the campaign that wrote it to record the failure again`] };
}

/** Failure files are pretty-printed JSON with one command per line, so a diff or a hand edit stays readable. */
export function formatFailureFile(f: FailureFile): string {
  const { commands, ...rest } = f;
  const body = JSON.stringify({ ...rest, commands: [] }, null, 2);
  const lines = commands.map((c) => `    ${JSON.stringify(c)}`).join(',\n');
  return `${body.replace('"commands": []', commands.length === 0 ? '"commands": []' : `"commands": [\n${lines}\n  ]`)}\n`;
}

/**
 * One line naming a failure: what failed on which operation (on which boot step), and
 * the detail, which names the part that differs with both values.
 */
export function headline(f: TraceFailure): string {
  const what = f.kind === 'finding' ? `the kernel permits breaking ${f.invariantId ?? f.cause}` : f.invariantId !== undefined ? `invariant ${f.invariantId}` : f.kind;
  // A boot failure names the boot command: the boot is the scenario's, not the trace's.
  const on = f.phase === 'boot' ? `boot step ${f.step} (${formatCommand(f.command)})` : f.command.op;
  return `${what} on ${on}: ${f.detail.split('\n')[0]!.slice(0, 160)}`;
}
