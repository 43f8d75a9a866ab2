/**
 * The JSON Schemas of what ptspec writes for tools, each generated from the io-ts codec
 * that decodes (or types) that output, so the schema cannot say something the code does
 * not: failure files, `ptspec fuzz --json`, `ptspec check --json`, `ptspec bench --json FILE`, `ptspec zoo --json`, the spec document's examples.
 * `node --import tsx schemas/generate.ts` writes them; test/schemas.test.ts fails when a
 * committed file is stale and validates real outputs against them.
 */
import type * as t from 'io-ts';
import { jsonSchema } from '../io/schema.ts';
import { CheckReportJsonC } from '../io/ptdump/report.ts';
import { FailureFileC } from '../fuzz/failure-file.ts';
import { SummaryC } from '../cli/fuzz-summary.ts';
import { BenchReportC } from '../bench/json.ts';
import { MergeReportC } from '../cli/merge.ts';
import { ZooReportC } from '../fuzz/zoo-json.ts';
import { SpecExamplesC } from '../fuzz/spec-examples-json.ts';

export interface SchemaSource {
  /** File name in schemas/, also the schema's `$id`. */
  readonly file: string;
  readonly codec: t.Decoder<unknown, unknown>;
  readonly title: string;
  readonly description: string;
}

const PAGE_NUMBERS = 'Addresses are page numbers, as everywhere in ptspec: vpn is the virtual address >> 12, pfn the physical address >> 12 (the text output prints them as 0x… addresses).';

export const SCHEMAS: readonly SchemaSource[] = [
  {
    file: 'failure-file.schema.json',
    codec: FailureFileC,
    title: 'ptspec failure file',
    description: `One distinct failure of a fuzz campaign (.ptspec/failures/*.json), read back by the next campaign and by \`ptspec replay\`; \`ptspec fuzz --replay SEED:PATH\` reruns the run it came from. ${PAGE_NUMBERS}`,
  },
  {
    file: 'fuzz-summary.schema.json',
    codec: SummaryC,
    title: 'ptspec fuzz --json',
    description: `The closing summary of a fuzz campaign: what ran, the coverage, and each failure with its failure file and the command that reruns it. ${PAGE_NUMBERS}`,
  },
  {
    file: 'merge.schema.json',
    codec: MergeReportC,
    title: 'ptspec merge --json',
    description: 'Failure directories of campaign shards merged: per target and scenario the summed runs, commands and coverage with what was never exercised and the shards missing, and each distinct failure once with its counts summed and the trace of its earliest run.',
  },
  {
    file: 'check-report.schema.json',
    codec: CheckReportJsonC,
    title: 'ptspec check --json',
    description: 'The report on kernel ptdump text: per file, the kernel\'s own W+X checker lines, and per dump the W+X verdict (ranges as the hex addresses the kernel prints), the findings with their line numbers, and the mapped bytes by level, permission and section.',
  },
  {
    file: 'bench.schema.json',
    codec: BenchReportC,
    title: 'ptspec bench --json FILE',
    description: 'Every figure of `ptspec bench`: per-round values of interleaved ratios and rates, their min and median, each side\'s median cost, the target and whether the median meets it, and the booted machines.',
  },
  {
    file: 'zoo.schema.json',
    codec: ZooReportC,
    title: 'ptspec zoo --json',
    description: 'Every built-in mutant hunted with a fixed seed and a time budget: per mutant the time and commands to the first failing sequence, the shrinking and the shrunk trace, whether the unmutated impl passes it; and the verdict on each target with the mutants that miss it.',
  },
  {
    file: 'spec-examples.schema.json',
    codec: SpecExamplesC,
    title: 'ptspec spec examples',
    description: `The machine-found data of the specification document (\`ptspec docs\`), from a fixed seed: per invariant the built-in mutants found breaking it where the unmutated impl does not, and the shortest shrunk counterexample with its witnesses and the table entries before and after the breaking step as ptdump lines; and the findings of a linux-profile campaign (what today's kernel permits), each with its shrunk trace and the kernel function responsible. ${PAGE_NUMBERS}`,
  },
];

/** The text of each schema file, by file name. */
export function renderSchemas(): ReadonlyMap<string, string> {
  return new Map(SCHEMAS.map((s) => [s.file, `${JSON.stringify(jsonSchema(s.codec, { id: s.file, title: s.title, description: s.description }), null, 2)}\n`]));
}
