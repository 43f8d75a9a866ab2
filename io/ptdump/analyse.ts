/**
 * `ptspec check` without the command line: for every dump of every input, which table it
 * is (table.ts), the W+X count by the kernel's rule, the kernel's verdict lines where the
 * kernel checks that table, the structure and KPTI findings (findings.ts), the catalogue
 * invariants a dump can show, and a summary; plus the kernel's own verdict lines found in
 * the input.
 *
 * One run is one boot. The inputs of one `ptspec check` are taken as tables of one
 * running kernel: the checks run in the kernel's order (every init_mm dump by
 * ptdump_walk_pgd_level_checkwx, then every user copy by
 * ptdump_walk_user_pgd_level_checkwx, each in input order), so the once-per-boot warning
 * goes to the first check that finds W+X; and whether the machine has NX is one fact
 * for all of them (`CheckOptions.nx`, else what the dumps show: nxShown).
 *
 * Roles and pairs. A dump is a PTI user copy when its input was given as the user view
 * (`--user FILE`) or its grep view is named like `current_user`; otherwise it is a kernel
 * view. A user copy is paired with the kernel view of the same segment of its file
 * (fixture x86-ptdump-04: `current_kernel` then `current_user`), else with the unpaired
 * kernel views of the other inputs in order.
 */
import { PAGES } from '../../spec/address.ts';
import { CATALOGUE, checkAll, type Invariant } from '../../checker/index.ts';
import type { RootKind } from '../../spec/state.ts';
import { comparablePair, pairFindings, structureFindings, userBitFindings, userCopyFindings, type DumpFinding } from './findings.ts';
import { PAIR_INVARIANT_IDS, pairCatalogueFindings } from './pair.ts';
import { dumpToAbstractState, levelLeafSize } from './leaves.ts';
import { summarize, type DumpSummary } from './summary.ts';
import { dumpRanges, type Dump, type KernelVerdict, type ParsedText } from './types.ts';
import { identifyTable, nxShown, type DumpTable } from './table.ts';
import { BOOT_START, checkerLines, kernelWx, type BootOnce, type WxVerdict } from './wx.ts';

/**
 * Catalogue invariants that mean the same on a dump as on our states and need neither
 * frames nor CPU features nor knowing which mm the table belongs to: leaf level and
 * alignment (S1, S2), canonical halves (S3), order and disjointness (S4, T1), one NX bit
 * (T2), PAT modes (T3), W+X (P1). Left out: P6 (the dump may show the vsyscall page, which
 * the kernel maps USR on purpose; K-dump-usr checks the rule with that exception), T4
 * (a dump need not be init_mm: EFI and process tables map the user half), H2/H3 (the
 * CPU's PSE/GB-page support is not in the text), and everything about frames and tables.
 */
export const DUMP_INVARIANT_IDS: readonly string[] = ['S1', 'S2', 'S3', 'S4', 'T1', 'T2', 'T3', 'P1'];

/** Above this many leaves the catalogue is skipped (a 4K-mapped direct map of a large machine). */
const MAX_CATALOGUE_LEAVES = 2_000_000;

export type ViewRole = 'kernel' | 'user';

export interface DumpReport {
  readonly file: string;
  readonly dump: Dump;
  readonly role: ViewRole;
  /** The user copy this kernel view was compared with, or the kernel view of this user copy. */
  readonly pairedWith: { readonly file: string; readonly view: string; readonly firstLine: number } | null;
  readonly table: DumpTable;
  /** The W+X count by the kernel's rule: ptspec's count, the kernel's only when it checks the table. */
  readonly wx: WxVerdict;
  /** What the kernel's checker prints for this table this boot; [] when it prints nothing. */
  readonly wxLines: readonly string[];
  /** Why the kernel gives this dump no verdict (a table it never checks, a machine without NX); null when it does. */
  readonly noKernelVerdict: string | null;
  readonly findings: readonly DumpFinding[];
  readonly summary: DumpSummary;
  /** Why the catalogue did not run on this dump, when it did not. */
  readonly catalogueSkipped: string | null;
}

export interface FileReport {
  readonly file: string;
  readonly dumps: readonly DumpReport[];
  /** The W+X checker's own lines found in the input (dmesg). */
  readonly kernelVerdicts: readonly { readonly line: number; readonly verdict: KernelVerdict }[];
  /** Lines kept as non-ptdump text (log noise, prose, prompts). */
  readonly textLines: readonly number[];
}

export interface CheckReport {
  readonly files: readonly FileReport[];
  /** A W+X page, a finding, or the kernel's own W+X warning or FAILED verdict in the input. */
  readonly failed: boolean;
}

export interface CheckInput {
  readonly file: string;
  readonly parsed: ParsedText;
  /** Every dump of this input is a PTI user copy (`--user FILE`). */
  readonly user: boolean;
}

export interface CheckOptions {
  /** 32-bit: the PCI BIOS is in use, so its W+X area is exempt (note_wx). */
  readonly pciBios?: boolean;
  /** Whether the machine has NX (without it the kernel checks nothing); default: what the dumps show. */
  readonly nx?: boolean;
}

interface Placed {
  /** Index of the input it comes from (a file may be given twice: as DUMP and as --user). */
  readonly input: number;
  readonly file: string;
  readonly dump: Dump;
  readonly role: ViewRole;
  readonly table: DumpTable;
}

function leafCount(d: Dump): number {
  let n = 0;
  for (const r of dumpRanges(d)) {
    const size = levelLeafSize(r.level);
    if (r.flags !== null && size !== null) n += (r.end - r.start) / PAGES[size];
  }
  return n;
}

function catalogueFindings(d: Dump, kind: RootKind, only: readonly Invariant[]): DumpFinding[] | string {
  if (d.paging === '32-bit' || d.arch === 'arm64') return 'the dump-to-state conversion reads x86-64 flags only';
  if (leafCount(d) > MAX_CATALOGUE_LEAVES) return `more than ${MAX_CATALOGUE_LEAVES} leaves`;
  const ranges = dumpRanges(d);
  const linesOf = (vpn: number | undefined, pages: number | undefined): number[] => {
    if (vpn === undefined) return [];
    const end = vpn + (pages ?? 1);
    return ranges.filter((r) => r.start < end && vpn < r.end).map((r) => r.line);
  };
  // One finding per violated invariant, naming the lines of its witnesses; a dump's pfns
  // are synthetic, so witness texts lose their "-> pfn …" part. The catalogue lists at
  // most MAX_WITNESSES witnesses and then one without an address that counts the rest.
  return checkAll(dumpToAbstractState([{ dump: d, kind }]), undefined, only).map((v) => {
    const listed = v.witnesses.filter((w) => w.vpn !== undefined);
    const unlisted = v.witnesses.filter((w) => w.vpn === undefined).map((w) => `; ${w.detail} (their lines are not named)`);
    const lines = [...new Set(listed.flatMap((w) => linesOf(w.vpn, w.pages)))];
    const first = (v.witnesses[0]?.detail ?? '').replace(/ -> pfn 0x[0-9a-f]+/g, '');
    const more = listed.length > 1 ? ` (and ${listed.length - 1} more)` : '';
    return { id: v.id, family: v.family, title: v.title, view: d.view, lines, detail: `${first}${more}${unlisted.join('')}` };
  });
}

/** user copy → its kernel view. */
function pairUp(placed: readonly Placed[], inputs: readonly CheckInput[]): Map<Placed, Placed> {
  const pairs = new Map<Placed, Placed>();
  const taken = new Set<Placed>();
  const kernels = placed.filter((p) => p.role === 'kernel');
  const users = placed.filter((p) => p.role === 'user');
  for (const u of users) {
    const k = kernels.find((k) => !taken.has(k) && k.input === u.input && k.dump.segment === u.dump.segment);
    if (k !== undefined) {
      pairs.set(u, k);
      taken.add(k);
    }
  }
  const forced = (p: Placed): boolean => inputs[p.input]!.user;
  const looseKernels = kernels.filter((k) => !taken.has(k) && !forced(k));
  for (const u of users.filter((u) => !pairs.has(u) && forced(u))) {
    const k = looseKernels.shift();
    if (k !== undefined) pairs.set(u, k);
  }
  return pairs;
}

const where = (p: Placed) => ({ file: p.file, view: p.dump.view, firstLine: p.dump.firstLine });

/** The kernel's own lines that mean its checker found something. */
const KERNEL_FAILURES: ReadonlySet<KernelVerdict['type']> = new Set(['failed', 'found', 'found-non-uxn']);

interface KernelVerdictOf {
  readonly wx: WxVerdict;
  readonly lines: readonly string[];
  readonly none: string | null;
}

const CHECK_ORDER = ['ptdump_check_wx', 'ptdump_walk_pgd_level_checkwx', 'ptdump_walk_user_pgd_level_checkwx'] as const;

/** Each dump's rule count, and the kernel's lines for the checked ones, run in the kernel's order through one boot's once-flags. */
function kernelVerdicts(placed: readonly Placed[], opts: CheckOptions): Map<Placed, KernelVerdictOf> {
  const nx = opts.nx ?? nxShown(placed.map((p) => p.dump));
  const out = new Map<Placed, KernelVerdictOf>();
  let once: BootOnce = BOOT_START;
  const rank = (p: Placed): number => (p.table.checkedBy === null ? CHECK_ORDER.length : CHECK_ORDER.indexOf(p.table.checkedBy));
  for (const p of [...placed].sort((a, b) => rank(a) - rank(b))) {
    const wx = kernelWx(p.dump, opts);
    const checker = p.table.checkedBy;
    if (checker === null) {
      out.set(p, { wx, lines: [], none: p.table.why });
    } else if (nx === false && checker !== 'ptdump_check_wx') {
      const how = opts.nx === false ? '--no-nx says so' : 'no present entry of a whole dump prints NX';
      out.set(p, { wx, lines: [], none: `the machine has no NX (${how}): ${checker} returns before checking or printing anything` });
    } else {
      const r = checkerLines(p.dump, wx, checker, once);
      once = r.once;
      out.set(p, { wx, lines: r.lines, none: null });
    }
  }
  return out;
}

export function checkDumps(inputs: readonly CheckInput[], opts: CheckOptions = {}): CheckReport {
  const only = CATALOGUE.filter((inv) => DUMP_INVARIANT_IDS.includes(inv.id));
  const placed: Placed[] = inputs.flatMap((i, input) =>
    i.parsed.dumps.map((dump): Placed => {
      const role = dump.arch === 'x86' && (i.user || /user/.test(dump.view)) ? 'user' : 'kernel';
      return { input, file: i.file, dump, role, table: identifyTable(dump, i.file, role === 'user') };
    }),
  );
  const verdicts = kernelVerdicts(placed, opts);
  const pairs = pairUp(placed, inputs);
  const partnerOf = new Map<Placed, Placed>();
  for (const [u, k] of pairs) {
    partnerOf.set(u, k);
    partnerOf.set(k, u);
  }
  // The catalogue's K invariants on each pair, each finding on the copy its witness is in.
  const pairK = CATALOGUE.filter((inv) => PAIR_INVARIANT_IDS.includes(inv.id));
  const kOf = new Map<Placed, DumpFinding[]>();
  for (const [u, k] of pairs) {
    if (!comparablePair(k.dump, u.dump)) continue;
    const f = pairCatalogueFindings(k.dump, u.dump, pairK);
    kOf.set(u, [...(kOf.get(u) ?? []), ...f.user]);
    kOf.set(k, [...(kOf.get(k) ?? []), ...f.kernel]);
  }
  const reports = new Map<Placed, DumpReport>();
  for (const p of placed) {
    const { dump, role } = p;
    const wx = verdicts.get(p)!.wx;
    const cat = catalogueFindings(dump, role === 'user' ? 'process-user' : 'kernel', only);
    const kernel = pairs.get(p);
    const findings = [
      ...structureFindings(dump),
      ...userBitFindings(dump),
      ...(role === 'user' ? userCopyFindings(dump) : []),
      ...(kernel !== undefined ? pairFindings(kernel.dump, dump) : []),
      ...(kOf.get(p) ?? []),
      ...(typeof cat === 'string' ? [] : cat),
    ];
    const partner = partnerOf.get(p);
    reports.set(p, {
      file: p.file, dump, role, table: p.table, pairedWith: partner === undefined ? null : where(partner),
      wx, wxLines: verdicts.get(p)!.lines, noKernelVerdict: verdicts.get(p)!.none, findings, summary: summarize(dump),
      catalogueSkipped: typeof cat === 'string' ? cat : null,
    });
  }
  const files = inputs.map((i, input): FileReport => ({
    file: i.file,
    dumps: placed.filter((p) => p.input === input).map((p) => reports.get(p)!),
    kernelVerdicts: i.parsed.other.flatMap((o) => (o.verdict === undefined ? [] : [{ line: o.line, verdict: o.verdict }])),
    textLines: i.parsed.other.filter((o) => o.kind === 'text').map((o) => o.line),
  }));
  const failed = files.some(
    (f) => f.dumps.some((d) => d.wx.pages > 0 || d.wx.nonUxnPages > 0 || d.findings.length > 0) || f.kernelVerdicts.some((v) => KERNEL_FAILURES.has(v.verdict.type)),
  );
  return { files, failed };
}
