/**
 * `ptspec check` output: readable text (which table the dump is, then the kernel's verdict
 * lines exactly as the kernel prints them where it checks that table, or why it gives
 * none; the W+X count labelled as ptspec's rule; findings with their lines; the summary)
 * and plain JSON for tools.
 */
import * as t from 'io-ts';
import { match } from 'ts-pattern';
import { FAMILY_NAMES, type Family } from '../../spec/invariant.ts';
import { described, int, nullable, num, oneOf, strictObject, tagged } from '../trace.ts';
import { addressText, humanBytes } from './geometry.ts';
import { rangeText, type DumpFinding } from './findings.ts';
import type { CheckReport, DumpReport, FileReport } from './analyse.ts';
import type { KernelChecker, TableKind } from './table.ts';
import type { KernelVerdict } from './types.ts';

const TABLE_KINDS: TableKind[] = ['init_mm', 'init_mm-user', 'efi_pgd', 'process', 'excerpt'];
const KERNEL_CHECKERS: KernelChecker[] = ['ptdump_walk_pgd_level_checkwx', 'ptdump_walk_user_pgd_level_checkwx', 'ptdump_check_wx'];

/** How many W+X ranges and findings to list per dump before summarising the rest. */
const LIST_LIMIT = 20;

function lineSpans(lines: readonly number[]): string {
  const sorted = [...new Set(lines)].sort((a, b) => a - b);
  const spans: string[] = [];
  for (let i = 0; i < sorted.length; i++) {
    const a = sorted[i]!;
    let b = a;
    while (sorted[i + 1] === b + 1) b = sorted[++i]!;
    spans.push(a === b ? `${a}` : `${a}-${b}`);
  }
  return spans.join(',');
}

function verdictText(v: KernelVerdict): string {
  return match(v)
    .with({ type: 'found' }, ({ address }) => `Found insecure W+X mapping at address ${address}`)
    .with({ type: 'passed' }, () => 'Checked W+X mappings: passed, no W+X pages found.')
    .with({ type: 'failed' }, ({ pages, nonUxn }) =>
      nonUxn === undefined ? `Checked W+X mappings: FAILED, ${pages} W+X pages found.` : `Checked W+X mappings: FAILED, ${pages} W+X pages found, ${nonUxn} non-UXN pages found`)
    .with({ type: 'found-non-uxn' }, ({ address }) => `Found non-UXN mapping at address ${address}`)
    .with({ type: 'checking-user' }, () => 'Checking user space page tables')
    .with({ type: 'pci-bios' }, ({ pages }) => `PCI BIOS W+X mapping ${pages} pages`)
    .exhaustive();
}

function dumpHeader(r: DumpReport): string {
  const d = r.dump;
  const view = d.view === '' ? '' : `, view ${d.view}`;
  const role = r.role === 'user' ? ' (PTI user copy)' : '';
  const frag = d.fragment ? ', fragment (gaps allowed; counts cover the lines shown)' : '';
  const pair = r.pairedWith === null ? '' : `; compared with ${r.pairedWith.view || 'the dump'} at ${r.pairedWith.file}:${r.pairedWith.firstLine}`;
  const mode = d.arch === 'arm64' ? 'arm64' : d.paging;
  return `== ${r.file}:${d.firstLine}-${d.lastLine}${view}${role}: ${mode}, ${r.summary.ranges} ranges${frag}${pair} ==`;
}

function mapText(m: ReadonlyMap<string, bigint>): string {
  return [...m].map(([k, v]) => `${k} ${humanBytes(v)}`).join(', ') || 'nothing';
}

function tableText(r: DumpReport): string {
  const t = r.table;
  const verdict = r.noKernelVerdict === null ? `the kernel's verdict (${t.checkedBy}):` : `no kernel verdict: ${r.noKernelVerdict}`;
  return r.noKernelVerdict === t.why ? `table ${t.kind}; ${verdict}` : `table ${t.kind} (${t.why}); ${verdict}`;
}

const RULE = "ptspec's rule (RW and not NX)";

function dumpText(r: DumpReport): string[] {
  const out = [dumpHeader(r), tableText(r), ...r.wxLines];
  for (const f of r.findings.slice(0, LIST_LIMIT)) out.push(`FAIL ${f.id} ${f.title}: ${f.lines.length === 1 ? 'line' : 'lines'} ${lineSpans(f.lines)}: ${f.detail}`);
  if (r.findings.length > LIST_LIMIT) out.push(`FAIL … and ${r.findings.length - LIST_LIMIT} more findings (--json lists all)`);
  if (r.catalogueSkipped !== null) out.push(`note: catalogue invariants not run: ${r.catalogueSkipped}`);
  const s = r.summary;
  out.push(`mapped ${humanBytes(s.mappedBytes)}; by level: ${mapText(s.byLevel)}; by permission: ${mapText(s.byPermission)}`);
  if (r.wx.ranges.length === 0) out.push(`W+X by ${RULE}: none`);
  else {
    out.push(`W+X by ${RULE}: ${r.wx.pages} pages in ${r.wx.ranges.length} ranges:`);
    for (const w of r.wx.ranges.slice(0, LIST_LIMIT)) out.push(`  line ${w.line}: ${rangeText(w, r.dump)}`);
    if (r.wx.ranges.length > LIST_LIMIT) out.push(`  … and ${r.wx.ranges.length - LIST_LIMIT} more`);
  }
  const named = s.sections.filter((x) => x.ranges > 0 || x.name !== null);
  if (named.length > 0) {
    const width = Math.max(8, ...named.map((x) => (x.name ?? '(before first marker)').length));
    out.push(`  ${'region'.padEnd(width)}  ${'lines'.padEnd(11)} ${'ranges'.padStart(6)} ${'mapped'.padStart(8)} ${'W+X pages'.padStart(10)}`);
    for (const x of named) {
      const lines = x.firstLine === null ? '' : `${x.firstLine}-${x.lastLine}`;
      out.push(`  ${(x.name ?? '(before first marker)').padEnd(width)}  ${lines.padEnd(11)} ${String(x.ranges).padStart(6)} ${humanBytes(x.mappedBytes).padStart(8)} ${String(x.wxPages).padStart(10)}`);
    }
  }
  return out;
}

function fileText(f: FileReport): string[] {
  const out = f.dumps.flatMap(dumpText);
  if (f.kernelVerdicts.length > 0) {
    out.push(`== ${f.file}: the kernel's own W+X checker lines in the input ==`);
    for (const v of f.kernelVerdicts) out.push(`  line ${v.line}: ${verdictText(v.verdict)}`);
  }
  if (f.textLines.length > 0) out.push(`note: ${f.file}: ${f.textLines.length} lines are not ptdump text and were kept aside: ${lineSpans(f.textLines)}`);
  return out;
}

export function checkReportText(r: CheckReport): string {
  const out = r.files.flatMap(fileText);
  out.push(r.failed ? 'ptspec check: FAILED' : 'ptspec check: passed');
  return `${out.join('\n')}\n`;
}

const lineNumbersC = t.readonlyArray(int);
// Byte counts of a 57-bit address space can pass 2^53: exact up to it, rounded beyond.
const bytesC = described(num, 'a byte count');
const bytesByName = t.record(t.string, bytesC);

const KernelVerdictC = tagged<KernelVerdict>("a line of the kernel's W+X checker", 'type', {
  found: strictObject('Found insecure W+X mapping', { type: t.literal('found'), address: t.string }),
  passed: strictObject('Checked W+X mappings: passed', { type: t.literal('passed') }),
  failed: strictObject('Checked W+X mappings: FAILED', { type: t.literal('failed'), pages: int }, { nonUxn: int }),
  'found-non-uxn': strictObject('Found non-UXN mapping', { type: t.literal('found-non-uxn'), address: t.string }),
  'checking-user': strictObject('Checking user space page tables', { type: t.literal('checking-user') }),
  'pci-bios': strictObject('PCI BIOS W+X mapping', { type: t.literal('pci-bios'), pages: int }),
});

const DumpFindingC = strictObject('a finding', {
  id: t.string,
  family: oneOf<Family>(`an invariant family (${Object.keys(FAMILY_NAMES).join(' | ')})`, Object.keys(FAMILY_NAMES) as Family[]),
  title: t.string,
  view: t.string,
  lines: lineNumbersC,
  detail: t.string,
}) satisfies t.Type<DumpFinding, unknown, unknown>;

const DumpJsonC = strictObject('a dump', {
  view: t.string,
  role: oneOf('a role (kernel | user)', ['kernel', 'user']),
  firstLine: int,
  lastLine: int,
  arch: oneOf('an architecture (x86 | arm64)', ['x86', 'arm64']),
  paging: oneOf('a paging mode (32-bit | 4-level | 5-level)', ['32-bit', '4-level', '5-level']),
  fragment: t.boolean,
  pairedWith: nullable(strictObject('the paired view', { file: t.string, view: t.string, firstLine: int })),
  table: strictObject('the table the dump shows (io/ptdump/table.ts)', {
    kind: oneOf<TableKind>(`a table (${TABLE_KINDS.join(' | ')})`, TABLE_KINDS),
    checkedBy: nullable(oneOf<KernelChecker>(`the kernel function that checks it (${KERNEL_CHECKERS.join(' | ')})`, KERNEL_CHECKERS)),
    why: t.string,
  }),
  kernelVerdict: strictObject("the kernel's W+X verdict", {
    lines: described(t.readonlyArray(t.string), 'what the kernel prints for this table this boot ([] when nothing)'),
    none: described(nullable(t.string), 'why the kernel gives no verdict (a table it never checks, no NX); null when it does'),
  }),
  wx: strictObject("the W+X count by ptspec's rule (RW and not NX)", {
    rulePages: described(int, "pages by ptspec's rule: the kernel's count only where kernelVerdict has lines"),
    ranges: t.readonlyArray(strictObject('a W+X range', { line: int, start: t.string, end: t.string, pages: int })),
    pciBiosExempt: t.readonlyArray(strictObject('a PCI BIOS range', { line: int, pages: int })),
  }, { nonUxnPages: int }),
  findings: t.readonlyArray(DumpFindingC),
  catalogueSkipped: nullable(t.string),
  summary: strictObject('a dump summary', {
    ranges: int,
    mappedBytes: bytesC,
    byLevel: bytesByName,
    byPermission: bytesByName,
    sections: t.readonlyArray(strictObject('a section', {
      name: nullable(t.string), firstLine: nullable(int), lastLine: nullable(int), ranges: int, mappedBytes: bytesC, wxPages: int,
    })),
  }),
});

/** What `ptspec check --json` prints (schemas/check-report.schema.json); checkReportJson is typed by it. */
export const CheckReportJsonC = strictObject('a check report', {
  failed: t.boolean,
  files: t.readonlyArray(strictObject('a file', {
    file: t.string,
    kernelVerdicts: t.readonlyArray(strictObject('a W+X checker line', { line: int, verdict: KernelVerdictC })),
    textLines: lineNumbersC,
    dumps: t.readonlyArray(DumpJsonC),
  })),
});
export type CheckReportJson = t.TypeOf<typeof CheckReportJsonC>;

/** JSON-safe form (bigints as byte counts in numbers, ranges as hex text with their lines). */
export function checkReportJson(r: CheckReport): CheckReportJson {
  const bytes = (b: bigint): number => Number(b);
  return {
    failed: r.failed,
    files: r.files.map((f) => ({
      file: f.file,
      kernelVerdicts: f.kernelVerdicts,
      textLines: f.textLines,
      dumps: f.dumps.map((d) => ({
        view: d.dump.view,
        role: d.role,
        firstLine: d.dump.firstLine,
        lastLine: d.dump.lastLine,
        arch: d.dump.arch,
        paging: d.dump.paging,
        fragment: d.dump.fragment,
        pairedWith: d.pairedWith,
        table: d.table,
        kernelVerdict: { lines: d.wxLines, none: d.noKernelVerdict },
        wx: {
          rulePages: d.wx.pages,
          ranges: d.wx.ranges.map((w) => ({ line: w.line, start: addressText(w.start, d.dump.paging), end: addressText(w.end, d.dump.paging), pages: w.end - w.start })),
          pciBiosExempt: d.wx.exempt.map((w) => ({ line: w.line, pages: w.end - w.start })),
          ...(d.dump.arch === 'arm64' ? { nonUxnPages: d.wx.nonUxnPages } : {}),
        },
        findings: d.findings,
        catalogueSkipped: d.catalogueSkipped,
        summary: {
          ranges: d.summary.ranges,
          mappedBytes: bytes(d.summary.mappedBytes),
          byLevel: Object.fromEntries([...d.summary.byLevel].map(([k, v]) => [k, bytes(v)])),
          byPermission: Object.fromEntries([...d.summary.byPermission].map(([k, v]) => [k, bytes(v)])),
          sections: d.summary.sections.map((s) => ({ ...s, mappedBytes: bytes(s.mappedBytes) })),
        },
      })),
    })),
  };
}
