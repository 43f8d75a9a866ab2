/**
 * `ptspec check` output: readable text (kernel verdict lines first, exactly as the kernel
 * prints them, then findings with their lines, then the summary) and plain JSON for tools.
 */
import { match } from 'ts-pattern';
import { addressText, humanBytes } from './geometry.ts';
import { rangeText } from './findings.ts';
import type { CheckReport, DumpReport, FileReport } from './analyse.ts';
import type { KernelVerdict } from './types.ts';

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

function dumpText(r: DumpReport): string[] {
  const out = [dumpHeader(r), ...r.wxLines];
  for (const f of r.findings.slice(0, LIST_LIMIT)) out.push(`FAIL ${f.id} ${f.title}: ${f.lines.length === 1 ? 'line' : 'lines'} ${lineSpans(f.lines)}: ${f.detail}`);
  if (r.findings.length > LIST_LIMIT) out.push(`FAIL … and ${r.findings.length - LIST_LIMIT} more findings (--json lists all)`);
  if (r.catalogueSkipped !== null) out.push(`note: catalogue invariants not run: ${r.catalogueSkipped}`);
  const s = r.summary;
  out.push(`mapped ${humanBytes(s.mappedBytes)}; by level: ${mapText(s.byLevel)}; by permission: ${mapText(s.byPermission)}`);
  if (r.wx.ranges.length > 0) {
    out.push(`W+X ranges (${r.wx.ranges.length}, ${r.wx.pages} pages):`);
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

/** JSON-safe form (bigints as byte counts in numbers, ranges as hex text with their lines). */
export function checkReportJson(r: CheckReport): unknown {
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
        wx: {
          pages: d.wx.pages,
          verdict: d.wxLines,
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
