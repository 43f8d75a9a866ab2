/**
 * Trace and failure files (io-ts codecs). A failure file is written by a fuzz campaign and
 * read back by the next campaign (stored failures are replayed first) and by
 * `ptspec replay`; people edit them by hand to cut a trace down, so decoding is strict:
 * unknown fields, missing fields and wrong values are errors that name the field path
 * (`commands[3].prot.cache`) and say what was expected.
 */
import * as t from 'io-ts';
import { PAGE_SIZES, type PageSize } from '../spec/address.ts';
import { OPS, type Command, type Op } from '../spec/commands.ts';
import type { Witness } from '../spec/invariant.ts';
import { CACHE_MODES, type CacheMode, type Prot } from '../spec/state.ts';
import type { AccessKind, AccessMode, CloneLevel, ProtChange } from '../spec/system.ts';

// ---- building blocks ----

type Obj<R extends t.Props, O extends t.Props> = { readonly [K in keyof R]: t.TypeOf<R[K]> } & { readonly [K in keyof O]?: t.TypeOf<O[K]> };

/**
 * An object with required and optional fields that rejects fields it does not know: a
 * misspelt field in a hand-edited file (`maxpage`) must not be silently dropped.
 */
function strictObject<R extends t.Props, O extends t.Props = Record<never, never>>(name: string, required: R, optional?: O): t.Type<Obj<R, O>, unknown, unknown> {
  const known = new Set([...Object.keys(required), ...Object.keys(optional ?? {})]);
  const validate = (u: unknown, c: t.Context): t.Validation<Obj<R, O>> => {
    if (u === undefined) return t.failure(u, c);
    if (typeof u !== 'object' || u === null || Array.isArray(u)) return t.failure(u, c, `expected ${name} (an object), got ${show(u)}`);
    const input = u as Record<string, unknown>;
    const errors: t.ValidationError[] = [];
    const out: Record<string, unknown> = {};
    const field = (key: string, codec: t.Mixed): void => {
      const r = codec.validate(input[key], t.appendContext(c, key, codec, input[key]));
      if (r._tag === 'Left') errors.push(...r.left);
      else out[key] = r.right;
    };
    for (const key of Object.keys(required)) field(key, required[key]!);
    for (const key of Object.keys(optional ?? {})) if (input[key] !== undefined) field(key, optional![key]!);
    for (const key of Object.keys(input)) {
      if (!known.has(key)) errors.push({ value: input[key], context: t.appendContext(c, key, t.unknown, input[key]), message: `unknown field (${name} has ${[...known].join(', ')})` });
    }
    return errors.length > 0 ? t.failures(errors) : t.success(out as Obj<R, O>);
  };
  return new t.Type(name, (u): u is Obj<R, O> => validate(u, [])._tag === 'Right', validate, (a) => a);
}

/** A union told apart by one string field, with errors from the matching branch only. */
function tagged<A>(name: string, tag: string, branches: Readonly<Record<string, t.Decoder<unknown, A>>>): t.Type<A, unknown, unknown> {
  const validate = (u: unknown, c: t.Context): t.Validation<A> => {
    const value = typeof u === 'object' && u !== null ? (u as Record<string, unknown>)[tag] : undefined;
    const branch = typeof value === 'string' && Object.hasOwn(branches, value) ? branches[value] : undefined;
    if (u === undefined) return t.failure(u, c);
    if (branch === undefined) {
      const ctx = typeof u === 'object' && u !== null ? t.appendContext(c, tag, t.string, value) : c;
      return t.failure(value, ctx, `expected ${name} with ${tag} one of ${Object.keys(branches).join(', ')}, got ${show(value)}`);
    }
    return branch.validate(u, c);
  };
  return new t.Type(name, (u): u is A => validate(u, [])._tag === 'Right', validate, (a) => a);
}

function numberWhere(name: string, ok: (n: number) => boolean): t.Type<number, number, unknown> {
  return new t.Type(name, (u): u is number => typeof u === 'number' && ok(u), (u, c) => (typeof u === 'number' && ok(u) ? t.success(u) : t.failure(u, c)), (a) => a);
}

function oneOf<S extends string>(name: string, values: readonly S[]): t.Type<S, S, unknown> {
  const set: ReadonlySet<string> = new Set(values);
  return new t.Type(name, (u): u is S => typeof u === 'string' && set.has(u), (u, c) => (typeof u === 'string' && set.has(u) ? t.success(u as S) : t.failure(u, c)), (a) => a);
}

/** Command arguments may be any finite number: the fuzzer sends fractional and negative ones on purpose (EINVAL). */
const num = numberWhere('a finite number', Number.isFinite);
const int = numberWhere('an integer', Number.isSafeInteger);
const positiveInt = numberWhere('an integer ≥ 1', (n) => Number.isSafeInteger(n) && n >= 1);

const CacheC = oneOf<CacheMode>(`a cache mode (${CACHE_MODES.join(' | ')})`, CACHE_MODES);
const PageSizeC = oneOf<PageSize>(`a page size (${PAGE_SIZES.join(' | ')})`, PAGE_SIZES);
const HugeSizeC = oneOf<'2M' | '1G'>('a huge page size (2M | 1G)', ['2M', '1G']);
const CloneLevelC = oneOf<CloneLevel>('a clone level (pmd | pte)', ['pmd', 'pte']);
const AccessKindC = oneOf<AccessKind>('an access kind (r | w | x)', ['r', 'w', 'x']);
const AccessModeC = oneOf<AccessMode>('an access mode (kernel | user)', ['kernel', 'user']);
export const OpC = oneOf<Op>(`an operation (${OPS.join(' | ')})`, OPS);

export const ProtC = strictObject('a prot', {
  write: t.boolean, user: t.boolean, execKernel: t.boolean, execUser: t.boolean, global: t.boolean, cache: CacheC,
}) satisfies t.Decoder<unknown, Prot>;

const ProtChangeC = strictObject('a prot change', {}, { write: t.boolean, exec: t.boolean, global: t.boolean, cache: CacheC }) satisfies t.Decoder<unknown, ProtChange>;

// ---- commands (spec/commands.ts) ----

const op = <K extends Op>(k: K) => t.literal(k);
const range = { vpn: num, pages: num };

/** One codec per operation; the mapped type makes the compiler hold each to spec's Command. */
const COMMANDS: { readonly [K in Op]: t.Decoder<unknown, Extract<Command, { op: K }>> } = {
  map: strictObject('map', { op: op('map'), root: num, vpn: num, pfn: num, pages: num, prot: ProtC }, { maxPage: PageSizeC }),
  unmap: strictObject('unmap', { op: op('unmap'), root: num, ...range }),
  protect: strictObject('protect', { op: op('protect'), ...range, change: ProtChangeC }, { alias: t.boolean }),
  setDirectMapInvalid: strictObject('setDirectMapInvalid', { op: op('setDirectMapInvalid'), pfn: num, count: num, flush: t.boolean }),
  setDirectMapDefault: strictObject('setDirectMapDefault', { op: op('setDirectMapDefault'), pfn: num, count: num, flush: t.boolean }),
  split: strictObject('split', { op: op('split'), root: num, vpn: num }),
  collapse: strictObject('collapse', { op: op('collapse'), root: num, vpn: num, size: HugeSizeC }),
  ptiClone: strictObject('ptiClone', { op: op('ptiClone'), ...range, level: CloneLevelC }),
  asiMap: strictObject('asiMap', { op: op('asiMap'), ...range }),
  asiUnmap: strictObject('asiUnmap', { op: op('asiUnmap'), ...range }),
  createProcess: strictObject('createProcess', { op: op('createProcess') }),
  exitProcess: strictObject('exitProcess', { op: op('exitProcess'), pid: num }),
  mapUser: strictObject('mapUser', { op: op('mapUser'), pid: num, vpn: num, pfn: num, pages: num, prot: ProtC }),
  unmapUser: strictObject('unmapUser', { op: op('unmapUser'), pid: num, ...range }),
  translate: strictObject('translate', { op: op('translate'), root: num, vpn: num }),
  access: strictObject('access', { op: op('access'), cpu: num, root: num, vpn: num, kind: AccessKindC, mode: AccessModeC }),
  flush: strictObject('flush', { op: op('flush'), ...range }),
  flushAll: strictObject('flushAll', { op: op('flushAll') }),
};

export const CommandC = tagged<Command>('a command', 'op', COMMANDS);
export const CommandsC = t.readonlyArray(CommandC, 'a list of commands');

// ---- failure files ----

/** What a campaign ran against: the built-in impl, the impl with a mutant, or a user module (`--impl`). */
export type Target =
  | { readonly kind: 'impl' }
  | { readonly kind: 'mutant'; readonly mutant: string }
  | { readonly kind: 'module'; readonly module: string };

export const TargetC = tagged<Target>('a target', 'kind', {
  impl: strictObject('impl target', { kind: t.literal('impl') }),
  mutant: strictObject('mutant target', { kind: t.literal('mutant'), mutant: t.string }),
  module: strictObject('module target', { kind: t.literal('module'), module: t.string }),
});

export const WitnessC = strictObject('a witness', { detail: t.string }, {
  root: int, vpn: num, pages: num, frames: t.readonlyArray(strictObject('a frame range', { pfn: num, count: num })),
}) satisfies t.Decoder<unknown, Witness>;

/** The failing step, as fuzz/check.ts reports it: what failed, which check caught it, where, and both outcomes. */
export const FailureC = strictObject('a failure', {
  kind: oneOf('a failure kind (outcome-mismatch | refinement | invariant | tables | exception)', ['outcome-mismatch', 'refinement', 'invariant', 'tables', 'exception']),
  phase: oneOf('a phase (boot | run)', ['boot', 'run']),
  step: int,
  check: oneOf('a check (outcome | incremental | full)', ['outcome', 'incremental', 'full']),
  command: CommandC,
  detail: t.string,
  witnesses: t.readonlyArray(WitnessC),
  modelOutcome: t.string,
  implOutcome: t.string,
}, {
  invariant: t.string,
  statement: t.string,
});
export type Failure = t.TypeOf<typeof FailureC>;

export const FAILURE_FORMAT = 'ptspec-failure';
export const FAILURE_VERSION = 1;

export const FailureFileC = strictObject('a failure file', {
  format: t.literal(FAILURE_FORMAT),
  version: t.literal(FAILURE_VERSION),
  ptspecVersion: t.string,
  /** Identity of the failure in the database: target, check and operation. */
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
});
export type FailureFile = t.TypeOf<typeof FailureFileC>;

// ---- decoding with readable errors ----

export type Decoded<A> = { readonly ok: true; readonly value: A } | { readonly ok: false; readonly errors: readonly string[] };

function show(u: unknown): string {
  if (u === undefined) return 'nothing';
  const s = JSON.stringify(u);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/** `commands[3].prot.cache`: object keys joined with dots, array indexes in brackets. */
function fieldPath(context: t.Context): string {
  let path = '';
  for (let i = 1; i < context.length; i++) {
    const key = context[i]!.key;
    path += /^\d+$/.test(key) ? `[${key}]` : path === '' ? key : `.${key}`;
  }
  return path === '' ? '(top level)' : path;
}

export function reportErrors(errors: t.Errors): string[] {
  return errors.map((e) => {
    const where = fieldPath(e.context);
    if (e.message !== undefined) return `${where}: ${e.message}`;
    const expected = e.context[e.context.length - 1]?.type.name ?? 'a valid value';
    return e.value === undefined ? `${where}: missing (expected ${expected})` : `${where}: expected ${expected}, got ${show(e.value)}`;
  });
}

export function decode<A>(codec: t.Decoder<unknown, A>, u: unknown): Decoded<A> {
  const r = codec.decode(u);
  return r._tag === 'Right' ? { ok: true, value: r.right } : { ok: false, errors: reportErrors(r.left) };
}

/** JSON.parse's message with where it stopped as a line and column (V8 gives only "at position N"). */
function jsonError(text: string, message: string): string {
  const pos = /at position (\d+)/.exec(message);
  if (pos === null) return message;
  const before = text.slice(0, Number(pos[1]));
  return `line ${before.split('\n').length}, column ${before.length - before.lastIndexOf('\n')}: ${message}`;
}

/** Parse and decode a failure file's text. */
export function parseFailureFile(text: string): Decoded<FailureFile> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    return { ok: false, errors: [`not valid JSON: ${jsonError(text, (e as Error).message)}`] };
  }
  return decode(FailureFileC, json);
}

/** Failure files are pretty-printed JSON with one command per line, so a diff or a hand edit stays readable. */
export function formatFailureFile(f: FailureFile): string {
  const { commands, ...rest } = f;
  const body = JSON.stringify({ ...rest, commands: [] }, null, 2);
  const lines = commands.map((c) => `    ${JSON.stringify(c)}`).join(',\n');
  return `${body.replace('"commands": []', commands.length === 0 ? '"commands": []' : `"commands": [\n${lines}\n  ]`)}\n`;
}
