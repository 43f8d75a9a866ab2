/**
 * JSON Schema (draft-07) of an io-ts codec, for the formats ptspec writes and tools read
 * (schemas/): the codec stays the one definition, the schema is generated from it and a
 * test keeps the committed files current. The walk goes by each type's `_tag`: io-ts's own
 * types, and the strict combinators of io/trace.ts, which keep their required and optional
 * fields, tags, enum values and number constraints for this. A type it cannot express
 * (a refinement's predicate, recursion) is an error naming the codec, never a schema that
 * says less than the codec checks.
 */
import * as t from 'io-ts';
import { DescribedType, NumberWhereType, OneOfType, StrictObjectType, TaggedType } from './trace.ts';

export type JsonSchema = { readonly [keyword: string]: unknown };

type Codec = t.Decoder<unknown, unknown>;

/** The types the walk knows; anything else is refused by name. */
type Walkable =
  | StrictObjectType<t.Props, t.Props>
  | TaggedType<unknown>
  | NumberWhereType
  | OneOfType<string>
  | DescribedType<unknown, unknown>
  | t.InterfaceType<t.Props>
  | t.PartialType<t.Props>
  | t.ExactType<t.Mixed>
  | t.ReadonlyType<t.Mixed>
  | t.IntersectionType<t.Mixed[]>
  | t.UnionType<t.Mixed[]>
  | t.LiteralType<string | number | boolean>
  | t.KeyofType<Record<string, unknown>>
  | t.ArrayType<t.Mixed>
  | t.ReadonlyArrayType<t.Mixed>
  | t.DictionaryType<t.Mixed, t.Mixed>
  | t.StringType
  | t.NumberType
  | t.BooleanType
  | t.NullType
  | t.UnknownType;

const WALKABLE: ReadonlySet<string> = new Set<Walkable['_tag']>([
  'StrictObjectType', 'TaggedType', 'NumberWhereType', 'OneOfType', 'DescribedType', 'InterfaceType', 'PartialType',
  'ExactType', 'ReadonlyType', 'IntersectionType', 'UnionType', 'LiteralType', 'KeyofType', 'ArrayType',
  'ReadonlyArrayType', 'DictionaryType', 'StringType', 'NumberType', 'BooleanType', 'NullType', 'UnknownType',
]);

function walkable(codec: Codec): Walkable {
  const tag = (codec as { readonly _tag?: unknown })._tag;
  if (typeof tag !== 'string' || !WALKABLE.has(tag)) {
    throw new Error(`no JSON Schema for codec ${JSON.stringify((codec as { readonly name?: unknown }).name)} (${typeof tag === 'string' ? tag : 'a plain t.Type'})`);
  }
  return codec as Walkable;
}

/** The codecs a codec is made of, in the order the schema lists them. */
function children(c: Walkable): readonly Codec[] {
  switch (c._tag) {
    case 'StrictObjectType': return [...Object.values(c.required), ...Object.values(c.optional)];
    case 'TaggedType': return Object.values(c.branches);
    case 'InterfaceType':
    case 'PartialType': return Object.values(c.props);
    case 'ExactType':
    case 'ReadonlyType':
    case 'ArrayType':
    case 'ReadonlyArrayType': return [c.type];
    case 'DescribedType': return [c.type];
    case 'IntersectionType':
    case 'UnionType': return c.types;
    case 'DictionaryType': return [c.domain, c.codomain];
    default: return [];
  }
}

/** Only compound types are worth a definition of their own when they recur. */
const SHARED: ReadonlySet<Walkable['_tag']> = new Set(['StrictObjectType', 'TaggedType', 'UnionType', 'InterfaceType', 'PartialType', 'ExactType']);

/** A definition's key from the codec's name: `a frame range` → `frame-range`. */
function keyOf(name: string, taken: ReadonlySet<string>): string {
  const base = name.replace(/^(an?|the) /, '').replace(/[^A-Za-z0-9]+/g, '-').replace(/^-|-$/g, '') || 'type';
  let key = base;
  for (let k = 2; taken.has(key); k++) key = `${base}-${k}`;
  return key;
}

/** How often each compound codec occurs; the ones that occur twice or more become definitions. */
function recurring(root: Codec): Map<Codec, string> {
  const seen = new Map<Codec, number>();
  const visiting = new Set<Codec>();
  const visit = (codec: Codec): void => {
    if (visiting.has(codec)) throw new Error(`no JSON Schema for the recursive codec ${JSON.stringify((codec as t.Mixed).name)}`);
    const count = (seen.get(codec) ?? 0) + 1;
    seen.set(codec, count);
    if (count > 1) return;
    visiting.add(codec);
    children(walkable(codec)).forEach(visit);
    visiting.delete(codec);
  };
  visit(root);
  const keys = new Map<Codec, string>();
  const taken = new Set<string>();
  for (const [codec, count] of seen) {
    const c = walkable(codec);
    if (count < 2 || codec === root || !SHARED.has(c._tag)) continue;
    const key = keyOf(c.name, taken);
    taken.add(key);
    keys.set(codec, key);
  }
  return keys;
}

function objectSchema(name: string | undefined, required: t.Props, optional: t.Props, closed: boolean, sub: (c: Codec) => JsonSchema): JsonSchema {
  const properties = Object.fromEntries([...Object.entries(required), ...Object.entries(optional)].map(([k, c]) => [k, sub(c)]));
  return {
    ...(name === undefined ? {} : { description: name }),
    type: 'object',
    properties,
    ...(Object.keys(required).length > 0 ? { required: Object.keys(required) } : {}),
    ...(closed ? { additionalProperties: false } : {}),
  };
}

function literalType(value: unknown): string {
  return value === null ? 'null' : typeof value;
}

/** The schema of one type, its parts through `sub` (which puts recurring ones in definitions). */
function schemaOfType(c: Walkable, sub: (c: Codec) => JsonSchema): JsonSchema {
  switch (c._tag) {
    case 'StrictObjectType': return objectSchema(c.name, c.required, c.optional, true, sub);
    case 'TaggedType': return { description: `${c.name}, told apart by ${c.tag}`, oneOf: Object.values(c.branches).map(sub) };
    case 'NumberWhereType': {
      const { integer, minimum } = c.constraint;
      // A decoded integer is a safe one: JSON Schema's integers are unbounded.
      const min = integer ? Math.max(minimum ?? -Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER) : minimum;
      return { description: c.name, type: integer ? 'integer' : 'number', ...(min === undefined ? {} : { minimum: min }), ...(integer ? { maximum: Number.MAX_SAFE_INTEGER } : {}) };
    }
    case 'OneOfType': return { description: c.name, type: 'string', enum: c.values };
    case 'DescribedType': {
      const inner = sub(c.type);
      // Keywords beside a $ref are ignored in draft-07: a described reference goes through allOf.
      return '$ref' in inner ? { description: c.description, allOf: [inner] } : { ...inner, description: c.description };
    }
    case 'InterfaceType': return objectSchema(undefined, c.props, {}, false, sub);
    case 'PartialType': return objectSchema(undefined, {}, c.props, false, sub);
    case 'ExactType': {
      const inner = walkable(c.type);
      if (inner._tag === 'InterfaceType') return objectSchema(undefined, inner.props, {}, true, sub);
      if (inner._tag === 'PartialType') return objectSchema(undefined, {}, inner.props, true, sub);
      throw new Error(`no JSON Schema for ${JSON.stringify(c.name)}: t.exact of a ${inner._tag}`);
    }
    case 'ReadonlyType': return sub(c.type);
    case 'IntersectionType': return { allOf: c.types.map(sub) };
    case 'UnionType': return { description: c.name, anyOf: c.types.map(sub) };
    case 'LiteralType': return { type: literalType(c.value), const: c.value };
    case 'KeyofType': return { type: 'string', enum: Object.keys(c.keys) };
    case 'ArrayType':
    case 'ReadonlyArrayType': return { type: 'array', items: sub(c.type) };
    case 'DictionaryType': {
      const domain = walkable(c.domain);
      if (domain._tag === 'StringType') return { type: 'object', additionalProperties: sub(c.codomain) };
      if (domain._tag === 'KeyofType') return { type: 'object', propertyNames: sub(c.domain), additionalProperties: sub(c.codomain) };
      throw new Error(`no JSON Schema for ${JSON.stringify(c.name)}: record keys of ${domain._tag}`);
    }
    case 'StringType': return { type: 'string' };
    case 'NumberType': return { type: 'number' };
    case 'BooleanType': return { type: 'boolean' };
    case 'NullType': return { type: 'null' };
    case 'UnknownType': return {};
  }
}

export interface SchemaHeader {
  /** The file's name in schemas/, also its `$id`. */
  readonly id: string;
  readonly title: string;
  readonly description: string;
}

/** The whole schema document of `codec`: header, the root type, and the recurring types under `definitions`. */
export function jsonSchema(codec: Codec, header: SchemaHeader): JsonSchema {
  const keys = recurring(codec);
  const definitions: Record<string, JsonSchema> = {};
  const sub = (child: Codec): JsonSchema => {
    const key = keys.get(child);
    if (key === undefined) return schemaOfType(walkable(child), sub);
    // Defined on first use (recurring() has refused recursion, so it is not in progress).
    if (!(key in definitions)) definitions[key] = schemaOfType(walkable(child), sub);
    return { $ref: `#/definitions/${key}` };
  };
  const root = schemaOfType(walkable(codec), sub);
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    $id: header.id,
    title: header.title,
    ...root,
    description: header.description,
    ...(Object.keys(definitions).length > 0 ? { definitions } : {}),
  };
}
