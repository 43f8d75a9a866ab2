/**
 * The JSON Schemas in schemas/: generated from the codecs (io/schema.ts), committed
 * current, and true of real output: a campaign's failure file and `fuzz --json` summary,
 * `check --json` on the kernel fixtures, the bench report. Validation is ajv's (draft-07),
 * which also checks each schema against the draft-07 meta-schema; the same outputs are
 * decoded with their codecs too, so schema and codec agree on them.
 */
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv, type ValidateFunction } from 'ajv';
import * as t from 'io-ts';
import { beforeAll, describe, expect, it } from 'vitest';
import { jsonSchema } from '../io/schema.ts';
import { decode, described, int, oneOf, strictObject } from '../io/trace.ts';
import { SCHEMAS, renderSchemas } from '../schemas/render.ts';
import { ptspec } from './cli.ts';

const SCHEMA_DIR = new URL('../schemas/', import.meta.url);
const ajv = new Ajv({ strict: true, allErrors: true });
const validators = new Map<string, ValidateFunction>(
  SCHEMAS.map((s) => [s.file, ajv.compile(JSON.parse(readFileSync(new URL(s.file, SCHEMA_DIR), 'utf8')) as object)]),
);

/** Ajv's verdict and the codec's on one output: both must accept it. */
function expectValid(file: string, value: unknown): void {
  const validate = validators.get(file)!;
  expect(validate(value) ? [] : validate.errors).toEqual([]);
  const r = decode(SCHEMAS.find((s) => s.file === file)!.codec, value);
  expect(r.ok ? [] : r.errors).toEqual([]);
}

describe('schemas/ is current', () => {
  it('every committed schema is what the codecs generate (regenerate: node --import tsx schemas/generate.ts)', () => {
    for (const [file, text] of renderSchemas()) expect(readFileSync(new URL(file, SCHEMA_DIR), 'utf8'), file).toBe(text);
  });

  it('holds no schema the generator does not write', () => {
    expect(readdirSync(SCHEMA_DIR).filter((f) => f.endsWith('.json')).sort()).toEqual([...renderSchemas().keys()].sort());
  });
});

describe('real output validates against the committed schemas', () => {
  const out = mkdtempSync(join(tmpdir(), 'ptspec-schemas-'));
  let summary: unknown;

  beforeAll(async () => {
    const r = await ptspec('fuzz', '--mutant', 'unmap-no-split', '--runs', '30', '--bail', '1', '--jobs', '1', '--seed', '1', '--max-commands', '40', '--out', out, '--json');
    summary = JSON.parse(r.stdout);
  }, 90_000);

  it('a failure file of a mutant campaign', () => {
    // The campaign's summary (summaries/) sits beside the failure file.
    const files = readdirSync(out).filter((f) => f.endsWith('.json'));
    expect(files).toHaveLength(1);
    expectValid('failure-file.schema.json', JSON.parse(readFileSync(join(out, files[0]!), 'utf8')));
  });

  it('the campaign summary of fuzz --json', () => {
    expectValid('fuzz-summary.schema.json', summary);
  });

  it.each(['x86-ptdump-01.txt', 'x86-ptdump-04.txt', 'x86-wx-dmesg.txt', 'arm64-ptdump-01.txt'])('check --json of the kernel fixture %s', async (fixture) => {
    const r = await ptspec('check', '--json', `test/fixtures/kernel/${fixture}`);
    expectValid('check-report.schema.json', JSON.parse(r.stdout));
  });

  it('check --json of a KPTI pair, a 32-bit dump and an arm64 W+X dump', async () => {
    for (const args of [['test/fixtures/ptdump/kpti-pair.txt'], ['test/fixtures/ptdump/ok-32bit.txt'], ['test/fixtures/ptdump/arm64-wx.txt']]) {
      const r = await ptspec('check', '--json', ...args);
      expectValid('check-report.schema.json', JSON.parse(r.stdout));
    }
  });

  it('the bench report of ptspec bench --json (one cheap figure: the shape, not the timings)', async () => {
    const file = join(out, 'bench.json');
    expect((await ptspec('bench', '--only', 'translate /', '--rounds', '1', '--json', file)).code).toBe(0);
    expectValid('bench.schema.json', JSON.parse(readFileSync(file, 'utf8')));
  }, 60_000);

  it('a failure file with a misspelt field or a fractional step is refused by the schema', () => {
    const file = readdirSync(out).filter((f) => f.endsWith('.json'))[0]!;
    const good = JSON.parse(readFileSync(join(out, file), 'utf8')) as Record<string, unknown> & { failure: Record<string, unknown> };
    const validate = validators.get('failure-file.schema.json')!;
    expect(validate({ ...good, maxcommands: 3 })).toBe(false);
    expect(validate({ ...good, failure: { ...good.failure, step: 1.5 } })).toBe(false);
  });
});

describe('the schemas say what the numbers are', () => {
  it('vpn and pfn are page numbers (VA >> 12) in the failure file', () => {
    const text = readFileSync(new URL('failure-file.schema.json', SCHEMA_DIR), 'utf8');
    expect(text).toContain('a virtual page number: the virtual address >> 12');
    expect(text).toContain('a physical page frame number: the physical address >> 12');
  });
});

describe('io/schema.ts on io-ts types and the strict combinators', () => {
  const header = { id: 'x.schema.json', title: 'x', description: 'd' };
  const body = (codec: t.Decoder<unknown, unknown>): unknown => {
    const { $schema: _s, $id: _i, title: _t, description: _d, ...rest } = jsonSchema(codec, header);
    return rest;
  };

  it('a strict object: required and optional fields, nothing else; integers bounded to the safe ones', () => {
    expect(body(strictObject('p', { a: int }, { b: oneOf('b', ['x', 'y']) }))).toEqual({
      type: 'object',
      properties: {
        a: { description: 'an integer', type: 'integer', minimum: -Number.MAX_SAFE_INTEGER, maximum: Number.MAX_SAFE_INTEGER },
        b: { description: 'b', type: 'string', enum: ['x', 'y'] },
      },
      required: ['a'],
      additionalProperties: false,
    });
  });

  it("io-ts's own types: interface, partial, exact, keyof, record, intersection, literal, null", () => {
    expect(body(t.intersection([t.type({ a: t.string }), t.partial({ b: t.number })]))).toEqual({
      allOf: [{ type: 'object', properties: { a: { type: 'string' } }, required: ['a'] }, { type: 'object', properties: { b: { type: 'number' } } }],
    });
    expect(body(t.exact(t.type({ a: t.literal(3) })))).toEqual({ type: 'object', properties: { a: { type: 'number', const: 3 } }, required: ['a'], additionalProperties: false });
    expect(body(t.record(t.keyof({ p: null, q: null }), t.null))).toEqual({ type: 'object', propertyNames: { type: 'string', enum: ['p', 'q'] }, additionalProperties: { type: 'null' } });
  });

  it('a codec used twice is one definition, and a description on a reference survives', () => {
    const shared = strictObject('a thing', { n: int });
    const schema = jsonSchema(strictObject('pair', { a: shared, b: described(shared, 'the second') }), header);
    expect(schema.definitions).toEqual({ thing: { description: 'a thing', ...(body(shared) as object) } });
    expect(schema.properties).toEqual({ a: { $ref: '#/definitions/thing' }, b: { description: 'the second', allOf: [{ $ref: '#/definitions/thing' }] } });
  });

  it('refuses what JSON Schema cannot say, naming the codec', () => {
    const even = t.refinement(t.number, (n) => n % 2 === 0, 'an even number');
    expect(() => jsonSchema(strictObject('p', { a: even }), header)).toThrow('no JSON Schema for codec "an even number" (RefinementType)');
  });
});
