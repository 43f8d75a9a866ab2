/**
 * What today's kernel permits, for the spec document: a fixed-seed linux-profile campaign
 * of the built-in impl on the real x86-64 machine (its addresses are the kernel's), run as
 * `ptspec fuzz --profile linux` runs one (campaign-run.ts runOne), one run after another
 * on this thread so the same seed gives the same findings anywhere, its findings
 * (fuzz/check.ts Finding) one per cause. A campaign's own shrink of a finding is short (it
 * meets dozens); each is shrunk further here, keeping its cause, so the document shows
 * traces a reader can follow, with the kernel function its breaking command stands for.
 */
import { isDeepStrictEqual } from 'node:util';
import { invariantById } from '../checker/index.ts';
import type { Command } from '../spec/commands.ts';
import { OPERATIONS } from '../spec/operations.ts';
import { scenarioNamed } from '../spec/scenario.ts';
import { runOne, shrinkFailure, type FoundFailure, type TraceSetup } from './campaign-run.ts';
import { implTarget, traceSetupFor, withProfile } from './campaign-target.ts';
import { runCommand, runTrace, type Finding } from './check.ts';
import { bootedImpl, shownBreak } from './example-break.ts';
import { headline } from './failure-file.ts';
import type { KernelCampaign, KernelFinding } from './spec-examples-json.ts';

/** The real machine, as CI's linux-profile campaign of it runs (.ci/run: 200 commands, a full check every 50). */
export const FINDINGS_SCENARIO = 'x86-64';
export const FINDINGS_MAX_COMMANDS = 200;
export const FINDINGS_FULL_CHECK_EVERY = 50;
const TARGET = withProfile(implTarget(), 'linux');

export interface FindingsBudget {
  /** Runs of the campaign. */
  readonly runs: number;
  /** Traces the second shrink of each finding may run. */
  readonly shrinkTraces: number;
}

let booted: Promise<TraceSetup> | undefined;

/** The campaign's trace setup: its boot checked once, then forked for every trace, as a campaign's worker has it. */
function findingsSetup(): Promise<TraceSetup> {
  return (booted ??= traceSetupFor(FINDINGS_SCENARIO, TARGET, FINDINGS_FULL_CHECK_EVERY, { bootOnce: true }));
}

/** The finding of `cause` that `commands` show now, if any. */
const findingOf = (setup: TraceSetup, commands: readonly Command[], cause: string): Finding | undefined =>
  runTrace({ ...setup, commands }).findings.find((f) => f.cause === cause);

/**
 * The kernel function a command stands for: its label when the operation table's `kernel`
 * field names it (unmap with flush false is `vunmap_range_noflush`), else that field (a
 * label such as `set_direct_map_default` names no function of the kernel's).
 */
function kernelFunction(c: Command): Pick<KernelFinding, 'operation' | 'kernelFunction' | 'kernelFunctionFrom'> {
  const entry = OPERATIONS[c.op] as { readonly kernel: string; readonly label?: (c: Command) => string };
  const label = entry.label?.(c) ?? c.op;
  const named = new RegExp(`(?:^|[^\\w])${label}(?:$|[^\\w])`).test(entry.kernel);
  return { operation: label, ...(named ? { kernelFunction: label, kernelFunctionFrom: 'label' } : { kernelFunction: entry.kernel, kernelFunctionFrom: 'kernel' }) };
}

/** A campaign's finding shrunk further, with the impl's states around its step, as the document shows it. */
function kernelFinding(setup: TraceSetup, found: FoundFailure, shrinkTraces: number): KernelFinding {
  const cause = found.failure.cause;
  const { commands, failure: f } = shrinkFailure({ commands: found.commands, failure: found.failure }, (candidate) => findingOf(setup, candidate, cause) ?? null, shrinkTraces);
  const sys = bootedImpl(setup);
  for (const c of commands.slice(0, f.step)) runCommand(sys, c);
  const before = sys.abstract();
  runCommand(sys, f.command);
  const after = sys.abstract();
  const id = f.invariantId!;
  return {
    invariant: id, name: invariantById(id)?.name ?? id, scenario: FINDINGS_SCENARIO, profile: 'linux', seed: found.seed, run: found.runIndex,
    trace: commands, step: f.step, ...shownBreak(f.witnesses, before, after), cause, detail: f.detail, ...kernelFunction(f.command),
  };
}

/** Lets a signal handler or a progress line run between two runs: each run is synchronous. */
const eventLoopTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * The campaign: runs 0 … runs-1 of `seed`, each new cause's finding shrunk by the run that
 * first met it, then again here. A run that fails (not a finding: the built-in impl against
 * the model) is a bug of ptspec, and no document is made from it.
 */
export async function kernelFindings(seed: number, budget: FindingsBudget, onRun?: (done: number, total: number) => void): Promise<KernelCampaign> {
  const setup = await findingsSetup();
  const ctx = {
    setup, scenario: scenarioNamed(FINDINGS_SCENARIO)!(), target: TARGET.label, maxCommands: FINDINGS_MAX_COMMANDS, swarm: true, campaignSeed: seed,
    shrinkBudget: budget.shrinkTraces,
  };
  const known = new Map<string, number>();
  const found: FoundFailure[] = [];
  for (let run = 0; run < budget.runs; run++) {
    await eventLoopTurn();
    const r = runOne(ctx, run, known);
    if (r.failedKey !== null) throw new Error(`run ${run} of the kernel-findings campaign fails: ${r.found === null ? r.failedKey : headline(r.found.failure)}`);
    for (const f of r.findings?.found ?? []) {
      known.set(f.key, run);
      found.push(f);
    }
    onRun?.(run + 1, budget.runs);
  }
  return {
    scenario: FINDINGS_SCENARIO, profile: 'linux', seed, runs: budget.runs, maxCommands: FINDINGS_MAX_COMMANDS, fullCheckEvery: FINDINGS_FULL_CHECK_EVERY,
    shrinkTraces: budget.shrinkTraces, findings: found.map((f) => kernelFinding(setup, f, budget.shrinkTraces)),
  };
}

/**
 * Whether a stored finding still is one: its trace passes every check under the linux
 * profile and shows its cause at its step, with the same first witness. Null, or what differs.
 */
export async function recheckFinding(f: KernelFinding): Promise<string | null> {
  if (f.scenario !== FINDINGS_SCENARIO || f.profile !== 'linux') return `${f.cause}: found on ${f.scenario} (${f.profile}), not on the campaign's ${FINDINGS_SCENARIO} (linux)`;
  const r = runTrace({ ...(await findingsSetup()), commands: f.trace });
  if (r.failure !== null) return `${f.cause}: its trace fails: ${headline(r.failure)}`;
  const now = r.findings.find((x) => x.cause === f.cause);
  if (now === undefined) return `${f.cause}: its trace no longer shows it (the kernel permits ${r.findings.map((x) => x.cause).join(', ') || 'nothing'} there)`;
  if (now.step !== f.step) return `${f.cause}: its trace shows it at step ${now.step}, not ${f.step}`;
  if (!isDeepStrictEqual(now.witnesses[0], f.witnesses[0])) return `${f.cause}: the first witness is now ${JSON.stringify(now.witnesses[0])}, not ${JSON.stringify(f.witnesses[0])}`;
  return null;
}
