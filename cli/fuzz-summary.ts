/**
 * What `ptspec fuzz` prints: the live progress line, and the closing summary written for
 * someone who has never seen ptspec: what ran, whether the implementation agreed with the
 * model, what the campaign exercised and what it never did, and where each failure went.
 */
import * as t from 'io-ts';
import type { Scenario } from '../spec/scenario.ts';
import { int, nullable, oneOf, strictObject } from '../io/trace.ts';
import { CoverageC } from '../fuzz/coverage.ts';
import type { CampaignResult, Progress } from '../fuzz/campaign.ts';
import type { TargetSpec } from '../fuzz/campaign-target.ts';
import { ACCESS_RESULTS, GapsC, LEVEL_OF_SIZE, campaignAxes, capabilitiesFuzzed, coverageGaps, outcomePairs, possibleOutcomes, regionNames, supportedSizes, type Gaps, type Scenarios } from '../fuzz/coverage-goals.ts';
import { reachableRules } from '../fuzz/coverage-rules.ts';
import type { Axis } from '../fuzz/coverage.ts';
import { LONG_COMMANDS, LONG_ROUND_EVERY, MATRIX } from '../fuzz/matrix.ts';
import { DEFAULT_SHRINK_BUDGET, shrinkPathText } from '../fuzz/campaign-run.ts';
import { DEFAULT_FAILURE_DIR, replayCommand, runFlags, type FuzzOptions } from './options.ts';
import { CATALOGUE } from '../checker/index.ts';
import { OPERATIONS } from '../spec/operations.ts';
import { PROFILES, type Profile } from '../spec/system.ts';

/** Facts about one failure key for the summary. */
export interface FailureLine {
  readonly key: string;
  readonly file: string;
  readonly hits: number;
  /** Found by this campaign for the first time (not in the database before). */
  readonly isNew: boolean;
  /** Total count in the database after this campaign. */
  readonly total: number;
  readonly headline: string;
  /** The command that reruns the run that found it (`ptspec fuzz --replay …`); null for a trace with no run of its own. */
  readonly reproduce: string | null;
  /** When this campaign found it: ms after it started, and the commands run before; null for a stored failure. */
  readonly foundAtMs: number | null;
  readonly commandsBefore: number | null;
}

export interface Summary {
  readonly ptspecVersion: string;
  readonly scenario: string;
  readonly target: string;
  readonly seed: number;
  readonly shard: string;
  readonly jobs: number;
  readonly budget: { readonly runs: number | null; readonly timeMs: number | null };
  readonly stoppedBy: CampaignResult['stoppedBy'];
  readonly runs: number;
  readonly commands: number;
  readonly elapsedMs: number;
  readonly commandsPerSecond: number;
  readonly passed: boolean;
  readonly failures: readonly FailureLine[];
  readonly stored: readonly { readonly key: string; readonly reproduced: boolean; readonly nowKey: string | null }[];
  readonly brokenFiles: readonly { readonly file: string; readonly errors: readonly string[] }[];
  readonly coverage: CampaignResult['coverage'];
  readonly neverExercised: Gaps;
  readonly failureDir: string;
  /** The semantics of the campaign; absent in summaries from before profiles (strict). */
  readonly profile?: Profile;
  /** Linux profile: what the kernel permits (states it reaches that break an invariant), one line per cause; not failures. */
  readonly findings?: readonly FailureLine[];
}

const FailureLineC = strictObject('a failure of the campaign', {
  key: t.string, file: t.string, hits: int, isNew: t.boolean, total: int, headline: t.string, reproduce: nullable(t.string),
  foundAtMs: nullable(int), commandsBefore: nullable(int),
}) satisfies t.Type<FailureLine, unknown, unknown>;

/** The summary as `ptspec fuzz --json` prints it (schemas/fuzz-summary.schema.json); `satisfies` keeps it the Summary type. */
export const SummaryC = strictObject('a fuzz campaign summary', {
  ptspecVersion: t.string,
  scenario: t.string,
  target: t.string,
  seed: int,
  shard: t.string,
  jobs: int,
  budget: strictObject('a budget', { runs: nullable(int), timeMs: nullable(int) }),
  stoppedBy: oneOf('why the campaign stopped (runs | time | bail | interrupt | boot)', ['runs', 'time', 'bail', 'interrupt', 'boot']),
  runs: int,
  commands: int,
  elapsedMs: int,
  commandsPerSecond: int,
  passed: t.boolean,
  failures: t.readonlyArray(FailureLineC),
  stored: t.readonlyArray(strictObject('a stored failure replayed first', { key: t.string, reproduced: t.boolean, nowKey: nullable(t.string) })),
  brokenFiles: t.readonlyArray(strictObject('an unreadable failure file', { file: t.string, errors: t.readonlyArray(t.string) })),
  coverage: CoverageC,
  neverExercised: GapsC,
  failureDir: t.string,
}, {
  profile: oneOf('a profile (strict | linux)', PROFILES),
  findings: t.readonlyArray(FailureLineC),
}) satisfies t.Type<Summary, unknown, unknown>;

export function targetText(t: TargetSpec): string {
  switch (t.kind) {
    case 'impl': return 'the built-in impl';
    case 'mutant': return `the built-in impl with mutant ${t.mutant}`;
    case 'module': return `your implementation ${t.module}`;
    case 'command': return `your program ${t.command}`;
  }
}

const n = (x: number): string => x.toLocaleString('en-US');
const perSecond = (count: number, ms: number): number => (ms > 0 ? Math.round((count * 1000) / ms) : 0);

function elapsed(ms: number): string {
  const s = ms / 1000;
  return s < 120 ? `${s.toFixed(1)}s` : `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, '0')}s`;
}

/** One progress line: elapsed, sequences, commands/s, failures, coverage so far (outcomes the profile can reach). */
export function progressLine(p: Progress, profile?: Profile): string {
  const pairs = outcomePairs(p.coverage, profile);
  const sizes = (['4K', '2M', '1G'] as const).filter((s) => p.coverage.pageSizes[s] > 0).join('/') || 'none';
  return `[${elapsed(p.elapsedMs)}] ${n(p.runs)} sequences, ${n(p.commands)} commands (${n(perSecond(p.commands, p.elapsedMs))}/s), `
    + `${p.failures} failure${p.failures === 1 ? '' : 's'}, outcomes ${pairs.seen}/${pairs.possible}, leaf sizes ${sizes}`;
}

export function buildSummary(args: {
  readonly version: string;
  readonly opts: FuzzOptions;
  readonly target: TargetSpec;
  readonly scenario: Scenarios;
  readonly invariantIds: readonly string[];
  readonly result: CampaignResult;
  readonly failures: readonly FailureLine[];
  readonly findings: readonly FailureLine[];
  readonly brokenFiles: Summary['brokenFiles'];
  readonly budget: Summary['budget'];
}): Summary {
  const { opts, result } = args;
  return {
    ptspecVersion: args.version,
    scenario: opts.scenario,
    target: args.target.label,
    seed: opts.seed,
    shard: `${opts.shard.index + 1}/${opts.shard.count}`,
    jobs: opts.jobs,
    budget: args.budget,
    stoppedBy: result.stoppedBy,
    runs: result.runs,
    commands: result.commands,
    elapsedMs: result.elapsedMs,
    commandsPerSecond: perSecond(result.commands, result.elapsedMs),
    // A campaign that ran no sequence, or was cut short, checked too little to be a pass.
    passed: args.failures.length === 0 && result.runs > 0 && result.stoppedBy !== 'interrupt',
    failures: args.failures,
    stored: result.stored.map(({ key, reproduced, nowKey }) => ({ key, reproduced, nowKey })),
    brokenFiles: args.brokenFiles,
    coverage: result.coverage,
    neverExercised: coverageGaps(result.coverage, args.scenario, args.invariantIds, opts.profile),
    failureDir: opts.out,
    profile: opts.profile,
    findings: args.findings,
  };
}

/** Rows as aligned columns (the last one unpadded). */
export function table(rows: readonly (readonly string[])[]): string[] {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd());
}

/** The coverage table and what was never exercised (also `ptspec merge`'s, for merged coverage). */
/** Each scenario axis as the summary names it. */
export const AXIS_NAMES: Readonly<Record<Axis, string>> = {
  'levels-4': '4-level paging', 'levels-5': '5-level paging', pse: 'PSE (2M pages)', 'no-pse': 'no PSE (4K pages only)',
  gbpages: 'GB pages', 'no-gbpages': 'no GB pages', 'pool-below-4g': 'table pool below 4 GiB', 'pool-above-4g': 'table pool above 4 GiB',
  'small-pool': 'small table pool (ENOMEM reachable)', 'pool-grew': 'table pool grew past its first 64 tables',
};

const axisName = (a: string): string => AXIS_NAMES[a as Axis] ?? a;

export function coverageLines(s: Pick<Summary, 'coverage' | 'neverExercised' | 'profile'>, scenario: Scenarios): string[] {
  const cov = s.coverage;
  // A merged report may not say its profile: then every outcome of the table.
  const profile = s.profile;
  const lines = [`How often each operation ended each way (ok, or the error it returned${profile === undefined ? '' : `, of those the ${profile} profile allows`}):`];
  const rows: string[][] = [];
  for (const [op, possible] of possibleOutcomes(profile, capabilitiesFuzzed(cov))) {
    rows.push([`  ${op}`, ...possible.map((o) => `${o} ${n(cov.outcomes[op]?.[o] ?? 0)}`)]);
  }
  lines.push(...table(rows));
  const accessNames: Readonly<Record<(typeof ACCESS_RESULTS)[number], string>> = {
    tlb: 'TLB hit', walk: 'page walk', 'not-present': 'not-present fault', protection: 'protection fault',
  };
  lines.push(`Memory accesses: ${ACCESS_RESULTS.map((a) => `${accessNames[a]} ${n(cov.access[a] ?? 0)}`).join(', ')}`);
  const sizes = supportedSizes(scenario).map((z) => `${z} (${LEVEL_OF_SIZE[z]}) ${n(cov.pageSizes[z])}`);
  lines.push(`Leaf under the address after a successful command: ${sizes.join(', ')}, unmapped ${n(cov.pageSizes.unmapped)}`);
  const regions = [...regionNames(scenario), 'elsewhere'].map((r) => `${r} ${n(cov.regions[r] ?? 0)}`);
  lines.push(`Commands by address region: ${regions.join(', ')}`);
  const checks = Object.values(cov.invariants).reduce((a, b) => a + b, 0);
  lines.push(`Invariants: ${Object.keys(cov.invariants).length} checked, ${n(checks)} checks in all (${n(cov.fullChecks)} full-state checks)`);
  lines.push(`Sequences by scenario axis: ${campaignAxes(scenario).map((a) => `${axisName(a)} ${n(cov.axes[a] ?? 0)}`).join(', ')}`);
  lines.push('TLB, paging-structure-cache and flush-obligation rules (steps that met each):');
  lines.push(...table(reachableRules(profile).map((r) => [`  ${r.id}`, n(cov.rules[r.id] ?? 0), r.says])));
  const g = s.neverExercised;
  const gaps = [
    g.outcomes.length > 0 ? `outcomes ${g.outcomes.join(', ')}` : '',
    g.access.length > 0 ? `accesses ${g.access.map((a) => accessNames[a as keyof typeof accessNames]).join(', ')}` : '',
    g.pageSizes.length > 0 ? `leaf sizes ${g.pageSizes.join(', ')}` : '',
    g.regions.length > 0 ? `regions ${g.regions.join(', ')}` : '',
    g.invariants.length > 0 ? `invariants ${g.invariants.join(', ')}` : '',
    g.axes.length > 0 ? `scenario axes ${g.axes.map(axisName).join(', ')}` : '',
    g.rules.length > 0 ? `rules ${g.rules.join(', ')}` : '',
  ].filter(Boolean);
  lines.push(gaps.length === 0 ? 'Never exercised: nothing: every outcome, access result, leaf size, region, invariant, scenario axis and rule was hit.' : `Never exercised: ${gaps.join('; ')}.`);
  // The built-in pool holds thousands of tables, so random sequences rarely exhaust it.
  const single = 'config' in scenario ? (scenario as Scenario) : null;
  if (single !== null && single.name !== 'kernel-small-pool' && g.outcomes.some((o) => o.endsWith('ENOMEM'))) {
    lines.push('  (ENOMEM needs the table pool to run out: `ptspec fuzz --scenario kernel-small-pool` exercises it and the rollback it forces.)');
  }
  if (single !== null && g.axes.includes('pool-grew')) {
    lines.push(`  (Growing the pool takes sequences of several hundred commands: \`ptspec fuzz --scenario ${MATRIX}\` runs one round in ${LONG_ROUND_EVERY} with up to ${LONG_COMMANDS}.)`);
  }
  return lines;
}

/** `, first after 1.2s and 3,400 commands` for a failure this campaign found; nothing for a stored one. */
function foundWhen(f: FailureLine): string {
  return f.foundAtMs === null || f.commandsBefore === null ? '' : `, first after ${elapsed(f.foundAtMs)} and ${n(f.commandsBefore)} commands`;
}

/** The closing summary as text. */
/** What the summary's first line says the scenario is. */
export function scenariosText(name: string, scenario: Scenarios): string {
  if ('config' in scenario) return `scenario ${name} (${(scenario as Scenario).description})`;
  const list = scenario as readonly Scenario[];
  return `the scenario matrix (${list.map((x) => x.name).join(', ')}: run i on the (i mod ${list.length})-th, one round in ${LONG_ROUND_EVERY} with up to ${LONG_COMMANDS} commands)`;
}

/**
 * The linux profile's report: each state the kernel reaches that breaks an invariant, by
 * what broke it where, with what the kernel printed and the kernel function responsible.
 * Findings about the kernel, not failures of the implementation.
 */
function findingLines(s: Summary): string[] {
  const findings = s.findings ?? [];
  if (s.profile !== 'linux') return [];
  if (findings.length === 0) return ['', 'THE KERNEL PERMITS: nothing found (no state this campaign reached broke an invariant).'];
  const lines = ['', `THE KERNEL PERMITS (linux profile): ${findings.length} way${findings.length === 1 ? '' : 's'} the kernel as its source reads reaches a state that breaks an invariant.`,
    'These are findings about the kernel, not failures of the implementation (each stored once, shrunk):'];
  for (const f of findings) {
    const [, , , cause = ''] = f.key.split('--');
    const [id = '', op = ''] = cause.split(' ');
    const inv = CATALOGUE.find((i) => i.id === id);
    const entry = (OPERATIONS as Readonly<Record<string, { readonly kernel: string }>>)[op];
    lines.push(`  ${f.isNew ? 'NEW     ' : 'KNOWN   '}${id} ${inv?.name ?? ''} (${cause.slice(id.length + 1)}; the kernel ${inv?.kernel ?? '?'})`);
    lines.push(`          ${f.headline}`);
    if (entry !== undefined) lines.push(`          kernel function: ${entry.kernel}`);
    lines.push(`          hit by ${n(f.hits)} run${f.hits === 1 ? '' : 's'} here, ${n(f.total)} in all${foundWhen(f)}; ${f.file}`);
    lines.push(`          see it step by step: ptspec replay ${f.file}`);
  }
  return lines;
}

export function summaryText(s: Summary, opts: FuzzOptions, target: TargetSpec, scenario: Scenarios): string {
  const lines: string[] = [];
  lines.push(`ptspec ${s.ptspecVersion} fuzz: ${targetText(target)} against the reference model, ${scenariosText(s.scenario, scenario)}`);
  const stop = { time: 'time budget spent', runs: 'run budget done', bail: `stopped after ${opts.bail ?? 0} distinct failure${opts.bail === 1 ? '' : 's'} (--bail)`, interrupt: 'interrupted', boot: "the scenario's boot failed on the target, so no run was started" }[s.stoppedBy];
  lines.push(`Each sequence boots the scenario's kernel page tables on both systems, then runs up to ${opts.maxCommands} random operations`);
  lines.push('(map, unmap, set_memory_*, set_direct_map_*, split, collapse, translate, access, flushes, alloc/free of frames, and the');
  lines.push('secretmem, guest_memfd and vfree lifecycles) and checks both after every one.');
  lines.push(`Ran ${n(s.runs)} random command sequences (${n(s.commands)} commands) in ${elapsed(s.elapsedMs)} on ${s.jobs} worker${s.jobs === 1 ? '' : 's'}: ${n(s.commandsPerSecond)} commands/s (${stop}).`);
  if (s.stored.length > 0) {
    const again = s.stored.filter((x) => x.reproduced).length;
    const moved = s.stored.filter((x) => !x.reproduced && x.nowKey !== null).length;
    const gone = s.stored.length - again - moved;
    lines.push(`Replayed ${s.stored.length} stored failure${s.stored.length === 1 ? '' : 's'} from ${s.failureDir} first: ${again} still fail${again === 1 ? 's' : ''}, `
      + `${moved} fail${moved === 1 ? 's' : ''} differently now, ${gone} no longer reproduce${gone === 1 ? 's' : ''}.`);
    // A fixed failure's file stays (this campaign only reads it): say which, and how to clear them.
    for (const x of s.stored) if (x.nowKey === null) lines.push(`  no longer reproduces: ${x.key}`);
    if (gone > 0) lines.push(`  Remove the ones that no longer reproduce: ptspec failures --prune${s.failureDir === DEFAULT_FAILURE_DIR ? '' : ` --out ${s.failureDir}`}`);
  }
  for (const b of s.brokenFiles) lines.push(`Skipped unreadable failure file ${b.file}: ${b.errors[0] ?? ''}`);
  lines.push('');
  // No run started after a failed boot: a table of zeros would say nothing.
  if (s.stoppedBy === 'boot') lines.push('The boot failed: every sequence starts with it, so fix the boot step below first.');
  else lines.push(...coverageLines(s, scenario));
  lines.push('');
  if (s.stoppedBy === 'interrupt') {
    lines.push(`INTERRUPTED after ${n(s.runs)} run${s.runs === 1 ? '' : 's'}: not a pass, the budget was not spent.${s.failures.length === 0 ? ' No failure was found before the interrupt.' : ''}`);
  } else if (s.runs === 0 && s.failures.length === 0) {
    lines.push('NOTHING RAN: the budget ended before any sequence ran (the workers take a few seconds to start), so nothing was checked: give a larger --time or --runs.');
  }
  if (s.passed) {
    lines.push('PASSED: after every command the implementation returned what the model returned, its abstract state');
    lines.push('(mappings, TLBs, flush obligations, table count) equalled the model\'s, both kept every operation\'s');
    lines.push('postcondition (spec/contracts/post), and every invariant held.');
  } else if (s.failures.length > 0) {
    lines.push(`FAILED: ${s.failures.length} distinct failure${s.failures.length === 1 ? '' : 's'} (each stored once, with a shrunk command list):`);
    for (const f of s.failures) {
      lines.push(`  ${f.isNew ? 'NEW     ' : 'KNOWN   '}${f.headline}`);
      // A boot failure is found before any run: no run count, and no run to rerun.
      const boot = s.stoppedBy === 'boot';
      lines.push(boot ? `          found at boot, before any run; ${f.file}` : `          hit by ${n(f.hits)} run${f.hits === 1 ? '' : 's'} here, ${n(f.total)} in all${foundWhen(f)}; ${f.file}`);
      // A timeout replays by hanging, which ptspec replay (on its main thread) cannot stop.
      const timeout = f.key.split('--')[2] === 'timeout';
      lines.push(timeout ? '          replayed by the next campaign first, in a worker under --command-timeout' : `          see it step by step: ptspec replay ${f.file}`);
      if (f.reproduce !== null && !boot) lines.push(`          Reproduce: ${f.reproduce}`);
    }
  }
  lines.push(...findingLines(s));
  if (opts.replay !== undefined) {
    lines.push('', `Repeat exactly this run: ${replayCommand({ seed: opts.replay.seed, path: shrinkPathText(opts.replay.path) }, { ...opts, target })}`);
  } else if (s.stoppedBy !== 'boot') {
    // After a failed boot there are no runs to repeat: the failure's replay line says it all.
    // The shrink budget decides the stored traces, not the runs: only this line needs it.
    const shrink = opts.shrinkBudget === DEFAULT_SHRINK_BUDGET ? [] : [`--shrink-budget ${opts.shrinkBudget}`];
    const extra = [...runFlags({ ...opts, target }), ...shrink, ...(opts.shard.count > 1 ? [`--shard ${s.shard}`] : [])].join(' ');
    lines.push('', `Repeat exactly these runs: ptspec fuzz --seed ${s.seed} --runs ${s.runs}${extra === '' ? '' : ` ${extra}`}`);
  }
  return lines.join('\n');
}
