/**
 * Codecs (io-ts) for what ptspec reads from files people write or edit: commands and
 * traces (a command list), witnesses, and the building blocks the failure file's codec
 * (fuzz/failure-file.ts) is made of. Decoding is strict: unknown fields, missing fields
 * and wrong values are errors that name the field path (`commands[3].prot.cache`) and say
 * what was expected.
 */
import * as t from 'io-ts';
import { PAGE_SIZES, type PageSize } from '../spec/address.ts';
import type { Command, Op } from '../spec/commands.ts';
import { OPS, OPTIONAL_KINDS, fieldsOf, type FieldKind, type FieldTypes } from '../spec/operations.ts';
import type { Witness } from '../spec/invariant.ts';
import { CACHE_MODES, type CacheMode, type Leaf, type Prot } from '../spec/state.ts';
import type { AccessKind, AccessMode, AccessOutcome, CloneLevel, ProcessRoots, ProtChange, Translation, WalkVisit } from '../spec/system.ts';

// ---- building blocks ----

type Obj<R extends t.Props, O extends t.Props> = { readonly [K in keyof R]: t.TypeOf<R[K]> } & { readonly [K in keyof O]?: t.TypeOf<O[K]> };

/*
 * Each combinator below returns a subclass of t.Type that keeps what it was built from,
 * under a `_tag` as io-ts's own types do, so io/schema.ts can write the JSON Schema of
 * any codec made of them: the codec is the one definition of a format.
 */

export class StrictObjectType<R extends t.Props, O extends t.Props> extends t.Type<Obj<R, O>, unknown, unknown> {
  readonly _tag = 'StrictObjectType' as const;
  constructor(name: string, readonly required: R, readonly optional: O, validate: t.Validate<unknown, Obj<R, O>>) {
    super(name, (u): u is Obj<R, O> => validate(u, [])._tag === 'Right', validate, (a) => a);
  }
}

/**
 * An object with required and optional fields that rejects fields it does not know: a
 * misspelt field in a hand-edited file (`maxpage`) must not be silently dropped.
 */
export function strictObject<R extends t.Props, O extends t.Props = Record<never, never>>(name: string, required: R, optional?: O): StrictObjectType<R, O> {
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
  return new StrictObjectType(name, required, optional ?? ({} as O), validate);
}

export class TaggedType<A> extends t.Type<A, unknown, unknown> {
  readonly _tag = 'TaggedType' as const;
  constructor(name: string, readonly tag: string, readonly branches: Readonly<Record<string, t.Decoder<unknown, A>>>, validate: t.Validate<unknown, A>) {
    super(name, (u): u is A => validate(u, [])._tag === 'Right', validate, (a) => a);
  }
}

/** A union told apart by one string field, with errors from the matching branch only. */
export function tagged<A>(name: string, tag: string, branches: Readonly<Record<string, t.Decoder<unknown, A>>>): TaggedType<A> {
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
  return new TaggedType(name, tag, branches, validate);
}

/** What a number must be: finite always, a safe integer when `integer`, at least `minimum` when given. */
export interface NumberConstraint {
  readonly integer: boolean;
  readonly minimum?: number;
}

export class NumberWhereType extends t.Type<number, number, unknown> {
  readonly _tag = 'NumberWhereType' as const;
  constructor(name: string, readonly constraint: NumberConstraint) {
    // The predicate is made from the constraint, so the schema cannot say something else.
    const ok = (n: number): boolean => (constraint.integer ? Number.isSafeInteger(n) : Number.isFinite(n)) && n >= (constraint.minimum ?? -Infinity);
    super(name, (u): u is number => typeof u === 'number' && ok(u), (u, c) => (typeof u === 'number' && ok(u) ? t.success(u) : t.failure(u, c)), (a) => a);
  }
}

export function numberWhere(name: string, constraint: NumberConstraint): NumberWhereType {
  return new NumberWhereType(name, constraint);
}

export class OneOfType<S extends string> extends t.Type<S, S, unknown> {
  readonly _tag = 'OneOfType' as const;
  constructor(name: string, readonly values: readonly S[]) {
    const set: ReadonlySet<string> = new Set(values);
    super(name, (u): u is S => typeof u === 'string' && set.has(u), (u, c) => (typeof u === 'string' && set.has(u) ? t.success(u as S) : t.failure(u, c)), (a) => a);
  }
}

export function oneOf<S extends string>(name: string, values: readonly S[]): OneOfType<S> {
  return new OneOfType(name, values);
}

export class DescribedType<A, O> extends t.Type<A, O, unknown> {
  readonly _tag = 'DescribedType' as const;
  constructor(readonly type: t.Type<A, O, unknown>, readonly description: string) {
    // The same name and the same validate: errors read exactly as the inner codec's do.
    super(type.name, type.is, type.validate, type.encode);
  }
}

/** `codec` with a sentence for its schema (what the value means, its unit), decoding exactly as `codec` does. */
export function described<A, O>(codec: t.Type<A, O, unknown>, description: string): DescribedType<A, O> {
  return new DescribedType(codec, description);
}

/** A value or null (JSON's "none"): a union io/schema.ts writes as anyOf. */
export function nullable<C extends t.Mixed>(codec: C): t.UnionC<[C, t.NullC]> {
  return t.union([codec, t.null], `${codec.name} or null`);
}

/** Command arguments may be any finite number: the fuzzer sends fractional and negative ones on purpose (EINVAL). */
export const num = numberWhere('a finite number', { integer: false });
export const int = numberWhere('an integer', { integer: true });
export const positiveInt = numberWhere('an integer ≥ 1', { integer: true, minimum: 1 });

/** Addresses in files are page numbers, as everywhere in ptspec (spec/address.ts). */
export const vpnC = described(num, 'a virtual page number: the virtual address >> 12 (ptspec prints it as the address, 0x… hex)');
export const pfnC = described(num, 'a physical page frame number: the physical address >> 12 (ptspec prints it as the address, 0x… hex)');

export const CacheC = oneOf<CacheMode>(`a cache mode (${CACHE_MODES.join(' | ')})`, CACHE_MODES);
export const PageSizeC = oneOf<PageSize>(`a page size (${PAGE_SIZES.join(' | ')})`, PAGE_SIZES);
const HugeSizeC = oneOf<'2M' | '1G'>('a huge page size (2M | 1G)', ['2M', '1G']);
const CloneLevelC = oneOf<CloneLevel>('a clone level (pmd | pte)', ['pmd', 'pte']);
const AccessKindC = oneOf<AccessKind>('an access kind (r | w | x)', ['r', 'w', 'x']);
const AccessModeC = oneOf<AccessMode>('an access mode (kernel | user)', ['kernel', 'user']);
export const OpC = oneOf<Op>(`an operation (${OPS.join(' | ')})`, OPS);

export const ProtC = strictObject('a prot', {
  write: t.boolean, user: t.boolean, execKernel: t.boolean, execUser: t.boolean, global: t.boolean, cache: CacheC,
}, { kernel4k: t.boolean }) satisfies t.Decoder<unknown, Prot>;

const ProtChangeC = strictObject('a prot change', {}, { write: t.boolean, exec: t.boolean, global: t.boolean, cache: CacheC, present: t.boolean, kernel4k: t.boolean }) satisfies t.Decoder<unknown, ProtChange>;

// ---- commands (spec/commands.ts, spec/operations.ts) ----

/** The codec of each field kind of the operation table. */
const FIELD_CODECS: { readonly [K in FieldKind]: t.Decoder<unknown, FieldTypes[K]> } = {
  root: num, vpn: vpnC, userVpn: vpnC, pfn: pfnC, pages: num, count: num, cpu: num, pid: num,
  prot: ProtC, change: ProtChangeC, maxPage: PageSizeC, hugeSize: HugeSizeC, cloneLevel: CloneLevelC,
  accessKind: AccessKindC, accessMode: AccessModeC, flush: t.boolean, alias: t.boolean, collapse: t.boolean, lazy: t.boolean,
  huge: t.boolean, resetPerms: t.boolean,
};

/** One strict codec per operation, built from its fields in the operation table. */
function commandCodec(op: Op): t.Decoder<unknown, Command> {
  const required: Record<string, t.Mixed> = { op: t.literal(op) };
  const optional: Record<string, t.Mixed> = {};
  for (const [name, kind] of fieldsOf(op)) (OPTIONAL_KINDS.has(kind) ? optional : required)[name] = FIELD_CODECS[kind] as t.Mixed;
  // The operation table's Fields type holds each kind to its command field's type.
  return strictObject(op, required, optional) as unknown as t.Decoder<unknown, Command>;
}

const COMMANDS: Readonly<Record<Op, t.Decoder<unknown, Command>>> = Object.fromEntries(OPS.map((op) => [op, commandCodec(op)])) as Record<Op, t.Decoder<unknown, Command>>;

export const CommandC = tagged<Command>('a command', 'op', COMMANDS);
export const CommandsC = t.readonlyArray(CommandC, 'a list of commands');

export const WitnessC = strictObject('a witness', { detail: t.string }, {
  root: int, vpn: vpnC, pages: num, frames: t.readonlyArray(strictObject('a frame range', { pfn: pfnC, count: num })),
}) satisfies t.Decoder<unknown, Witness>;

const LeafC = strictObject('a leaf', { vpn: vpnC, pfn: pfnC, size: PageSizeC, prot: ProtC }) satisfies t.Decoder<unknown, Leaf>;

/** translate's result, and the translation of a permitted access. */
export const TranslationC = strictObject('a translation', { leaf: LeafC, pfn: pfnC }) satisfies t.Decoder<unknown, Translation>;

export const AccessOutcomeC = t.union([
  strictObject('a permitted access', { fault: t.literal(false), translation: TranslationC, fromTlb: t.boolean }),
  strictObject('a faulting access', { fault: oneOf('a fault (not-present | protection)', ['not-present', 'protection']) }),
], 'an access outcome') satisfies t.Decoder<unknown, AccessOutcome>;

/** createProcess's result. */
export const ProcessRootsC = strictObject('the roots of a process', {
  pid: t.number, kernelRoot: t.number, userRoot: t.number, asiRoot: t.number,
}) satisfies t.Decoder<unknown, ProcessRoots>;

/** One callback of walkPageRange (spec/system.ts WalkVisit). */
export const WalkVisitC = strictObject('a walk visit', {
  kind: oneOf('a visit kind (table | leaf | nonpresent | hole | none)', ['table', 'leaf', 'nonpresent', 'hole', 'none']),
  level: t.union([t.literal(1), t.literal(2), t.literal(3), t.literal(4), t.literal(5)], 'a table level (1..5)'),
  vpn: vpnC, pages: t.number,
}, { pfn: pfnC }) satisfies t.Decoder<unknown, WalkVisit>;

// ---- decoding with readable errors ----

export type Decoded<A> = { readonly ok: true; readonly value: A } | { readonly ok: false; readonly errors: readonly string[] };

function show(u: unknown): string {
  if (u === undefined) return 'nothing';
  let s: string;
  try {
    s = JSON.stringify(u);
  } catch {
    // Nested too deep for the stack (a hand-made or corrupted file): its kind says enough.
    return Array.isArray(u) ? 'a deeply nested array' : 'a deeply nested object';
  }
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

/** More errors than this say nothing more: a file with thousands of wrong fields is rewritten, not fixed field by field. */
const MAX_ERRORS = 20;

export function reportErrors(errors: t.Errors): string[] {
  const more = errors.length > MAX_ERRORS ? [`… and ${errors.length - MAX_ERRORS} more errors`] : [];
  return [...errors.slice(0, MAX_ERRORS).map((e) => {
    const where = fieldPath(e.context);
    if (e.message !== undefined) return `${where}: ${e.message}`;
    const expected = e.context[e.context.length - 1]?.type.name ?? 'a valid value';
    return e.value === undefined ? `${where}: missing (expected ${expected})` : `${where}: expected ${expected}, got ${show(e.value)}`;
  }), ...more];
}

export function decode<A>(codec: t.Decoder<unknown, A>, u: unknown): Decoded<A> {
  const r = codec.decode(u);
  return r._tag === 'Right' ? { ok: true, value: r.right } : { ok: false, errors: reportErrors(r.left) };
}

/** One JSON string, number or literal, from the sticky regex's lastIndex. */
const JSON_SCALAR = /"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"|-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null/y;

/**
 * The offset of the first character that cannot continue valid JSON (the text's length
 * when it ends too early), for the messages in which V8 gives no position (`NaN`, a bad
 * token at the start). Iterative, so nesting of any depth is scanned.
 */
function syntaxErrorOffset(text: string): number {
  const open: ('[' | '{')[] = [];
  // What may come next: a value, an object key, the colon after it, a comma or the closer, the end.
  let want: 'value' | 'value-or-close' | 'key' | 'key-or-close' | 'colon' | 'next' | 'end' = 'value';
  const scalar = (at: number): number => {
    JSON_SCALAR.lastIndex = at;
    const m = JSON_SCALAR.exec(text);
    return m === null ? -1 : at + m[0].length;
  };
  for (let i = 0; ; i++) {
    while (i < text.length && ' \t\n\r'.includes(text[i]!)) i++;
    if (i >= text.length || want === 'end') return i;
    const c = text[i]!;
    const close = open.at(-1) === '[' ? ']' : '}';
    if (want === 'colon') {
      if (c !== ':') return i;
      want = 'value';
    } else if (c === close && (want === 'next' || want === (close === ']' ? 'value-or-close' : 'key-or-close'))) {
      open.pop();
      want = open.length === 0 ? 'end' : 'next';
    } else if (want === 'next') {
      if (c !== ',') return i;
      want = close === ']' ? 'value' : 'key';
    } else if (want === 'key' || want === 'key-or-close') {
      const end = c === '"' ? scalar(i) : -1;
      if (end < 0) return i;
      i = end - 1;
      want = 'colon';
    } else if (c === '[' || c === '{') {
      open.push(c);
      want = c === '[' ? 'value-or-close' : 'key-or-close';
    } else {
      const end = scalar(i);
      if (end < 0) return i;
      i = end - 1;
      want = open.length === 0 ? 'end' : 'next';
    }
  }
}

/** JSON.parse's message with where it stopped as a line and column (V8 gives at most "at position N"). */
function jsonError(text: string, message: string): string {
  const pos = /at position (\d+)/.exec(message);
  const before = text.slice(0, pos === null ? syntaxErrorOffset(text) : Number(pos[1]));
  // V8 quotes the text itself; the line and column say where, without a page of the file.
  const what = message.replace(/, ".*" is not valid JSON$/s, '');
  return `line ${before.split('\n').length}, column ${before.length - before.lastIndexOf('\n')}: ${what}`;
}

/** Why text is not UTF-8 JSON before any character of it is parsed, or null. */
function encodingError(text: string): string | null {
  if (text.startsWith('\uFEFF')) return 'line 1, column 1: the text starts with a byte-order mark (U+FEFF); save it as UTF-8 without one';
  // UTF-16 read as UTF-8: its BOM turns into two replacement characters, ASCII into NUL-separated bytes.
  if (text.startsWith('\uFFFD\uFFFD') || text.includes('\u0000')) {
    return 'line 1, column 1: the text looks like UTF-16 (a UTF-16 byte-order mark or NUL bytes); save it as UTF-8';
  }
  return null;
}

/** JSON text parsed and decoded, with JSON syntax errors located by line and column. */
export function parseJson<A>(codec: t.Decoder<unknown, A>, text: string): Decoded<A> {
  const encoding = encodingError(text);
  if (encoding !== null) return { ok: false, errors: [`not valid JSON: ${encoding}`] };
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    return { ok: false, errors: [`not valid JSON: ${jsonError(text, (e as Error).message)}`] };
  }
  return decode(codec, json);
}
