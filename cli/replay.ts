/**
 * `ptspec replay FILE [--steps failing|all]`: re-run a stored failure exactly (same
 * scenario, same mutant or module) and show it step by step, with what the failing step
 * (or every step, boot included) changed in the model and in the implementation. Exit 1 when it still fails, 0 when it no longer reproduces, 2
 * when the file cannot be read or decoded (each problem named by its field path).
 */
import { dirname, isAbsolute, join } from 'node:path';
import { Option, type Command } from 'commander';
import { PAGES, vpnToHex } from '../spec/address.ts';
import { protEquals, type Leaf } from '../spec/state.ts';
import { SCENARIOS, scenarioNamed } from '../spec/scenario.ts';
import { isMutantName } from '../impl/mutants.ts';
import { replay, type Delta, type Replay, type ReplaySteps, type StateChange } from '../fuzz/campaign-replay.ts';
import { implTarget, mutantTarget, traceSetupFor, withProfile, type TargetSpec } from '../fuzz/campaign-target.ts';
import { formatCommand, formatLeaf, formatLen } from '../fuzz/format.ts';
import { formatFailure, formatOutcome } from '../fuzz/report.ts';
import { headline, parseFailureFile, type FailureFile } from '../fuzz/failure-file.ts';
import { readRegularFile } from '../fuzz/failure-db.ts';
import { programTarget, usageError, userModuleTarget } from './fuzz.ts';
import { replayCommand } from './options.ts';
import { printable, type Cli } from './output.ts';
import { examples } from './help.ts';

const MAX_LISTED = 12;

/**
 * The target a failure file names, checked like the fuzz options are; a string is the
 * usage error. `impl` (replay --impl) replaces it with that module; a relative module
 * path in the file is relative to the file (`file`), else to the working directory.
 */
export async function targetOf(f: FailureFile, where: { readonly file?: string; readonly impl?: string } = {}): Promise<TargetSpec | string> {
  const t = await storedTarget(f, where);
  // The profile it was found under (strict when the file predates profiles): its key says so too.
  return typeof t === 'string' ? t : withProfile(t, f.profile ?? 'strict');
}

async function storedTarget(f: FailureFile, where: { readonly file?: string; readonly impl?: string }): Promise<TargetSpec | string> {
  const scenario = scenarioNamed(f.scenario);
  if (scenario === undefined) return `scenario: unknown scenario ${JSON.stringify(f.scenario)} (known: ${Object.keys(SCENARIOS).join(', ')})`;
  if (where.impl !== undefined) return userModuleTarget(where.impl, scenario());
  switch (f.target.kind) {
    case 'impl': return implTarget();
    case 'mutant':
      return isMutantName(f.target.mutant) ? mutantTarget(f.target.mutant) : `target.mutant: unknown mutant ${JSON.stringify(f.target.mutant)}`;
    case 'command': {
      const t = await programTarget(f.target.command, [scenario()], f.profile ?? 'strict');
      return typeof t === 'string' ? `target.command: ${t}` : t;
    }
    case 'module': {
      const stored = f.target.module;
      const t = await userModuleTarget(where.file === undefined || isAbsolute(stored) ? stored : join(dirname(where.file), stored), scenario());
      return typeof t === 'string' ? `target.module: ${t}` : t;
    }
  }
}

function listed<T>(items: readonly T[], show: (x: T) => string, sign: string): string[] {
  const out = items.slice(0, MAX_LISTED).map((x) => `      ${sign} ${show(x)}`);
  if (items.length > MAX_LISTED) out.push(`      … and ${items.length - MAX_LISTED} more`);
  return out;
}

/** Leaves that continue each other (same size and prot, contiguous VA and PA), as one run: a split's 512 pieces are one line. */
function leafRuns(leaves: readonly Leaf[]): string[] {
  const sorted = [...leaves].sort((a, b) => a.vpn - b.vpn);
  const out: string[] = [];
  for (let i = 0; i < sorted.length;) {
    const first = sorted[i]!;
    const step = PAGES[first.size];
    let j = i + 1;
    for (; j < sorted.length; j++) {
      const l = sorted[j]!;
      const k = j - i;
      if (l.size !== first.size || l.vpn !== first.vpn + k * step || l.pfn !== first.pfn + k * step || !protEquals(l.prot, first.prot)) break;
    }
    out.push(j - i === 1 ? formatLeaf(first) : `${j - i} × ${formatLeaf(first)} … (${formatLen((j - i) * step)} in all)`);
    i = j;
  }
  return out;
}

function deltaLines(who: string, d: Delta | string): string[] {
  if (typeof d === 'string') return [`  ${who}: ${d}`];
  const lines = [
    `  ${who}: ${d.removedLeaves.length} leaves removed, ${d.addedLeaves.length} added; `
      + `TLB entries ${d.removedTlb.length} dropped, ${d.addedTlb.length} filled; `
      + `flush obligations ${d.obligationsBefore} -> ${d.obligationsAfter}; page tables ${d.tablesBefore} -> ${d.tablesAfter}`,
  ];
  lines.push(...listed(leafRuns(d.removedLeaves), String, '-'), ...listed(leafRuns(d.addedLeaves), String, '+'));
  lines.push(...listed(d.removedTlb, (e) => `TLB cpu${e.cpu} ${formatLeaf(e.leaf)}`, '-'), ...listed(d.addedTlb, (e) => `TLB cpu${e.cpu} ${formatLeaf(e.leaf)}`, '+'));
  return lines;
}

/** A step's change on both systems, under its step line (`--steps all`). */
function stepChangeLines(c: StateChange): string[] {
  return [...deltaLines('model', c.model), ...deltaLines('impl ', c.impl)].map((l) => `    ${l}`);
}

function replayText(file: string, f: FailureFile, target: TargetSpec, r: Replay, steps: ReplaySteps): string {
  const lines = [
    `Replaying ${file}`,
    `  scenario ${f.scenario}, target ${target.kind === 'impl' ? 'built-in impl' : target.kind === 'mutant' ? `mutant ${target.mutant}` : target.kind === 'command' ? `program ${target.command}` : `module ${target.module}`}, `
      + `recorded by ptspec ${f.ptspecVersion}, seen ${f.count} time${f.count === 1 ? '' : 's'} (last ${f.lastSeen})`,
    `  recorded: ${headline(f.failure)}`,
    '',
  ];
  const boot = r.steps.filter((s) => s.phase === 'boot');
  const failStep = r.failure === null ? null : r.steps[r.steps.length - 1]!;
  const bootFailed = failStep !== null && failStep.phase === 'boot';
  lines.push(`Boot: ${boot.length} scenario command${boot.length === 1 ? '' : 's'}${bootFailed ? '' : ', all agreed'}`);
  const width = String(Math.max(0, f.commands.length - 1)).length;
  for (const s of r.steps) {
    // The boot is the scenario's and passed: shown only when it failed, or every step is asked for.
    if (s.phase === 'boot' && steps === 'failing' && !(bootFailed && s === failStep)) continue;
    const mark = s === failStep ? '  <-- FAILS HERE' : '';
    const agree = s.model.outcome === s.impl.outcome;
    const out = agree ? formatOutcome(s.model) : `model ${formatOutcome(s.model)} / impl ${formatOutcome(s.impl)}`;
    lines.push(`  ${s.phase === 'boot' ? 'boot ' : ''}${String(s.index).padStart(width)}  ${formatCommand(s.command)}  => ${out}${mark}`);
    if (steps === 'all' && s.change !== null) lines.push(...stepChangeLines(s.change));
  }
  if (r.change !== null && failStep !== null) {
    const ranges = r.change.scopes.map((s) => `${vpnToHex(s.vpn)}-${vpnToHex(s.vpn + s.pages)} (${formatLen(s.pages)})`).join(', ') || 'none';
    lines.push('', `State change at the failing step (${formatCommand(failStep.command)}), leaves compared in ${ranges}:`);
    lines.push(`  model outcome: ${formatOutcome(failStep.model)}`, `  impl outcome:  ${formatOutcome(failStep.impl)}`);
    lines.push(...deltaLines('model', r.change.model), ...deltaLines('impl ', r.change.impl));
  }
  lines.push('');
  if (r.failure === null) {
    lines.push('NO LONGER REPRODUCES: the trace passes every check now (the bug it recorded is fixed, or the checks changed).');
  } else {
    const reproduce = replayCommand(f, f);
    lines.push(formatFailure(r.failure, { seed: f.seed, path: f.path, commands: f.commands, scenario: f.scenario, impl: target.label, ...(reproduce === null ? {} : { reproduce }) }));
    if (r.failure.kind === 'finding') {
      // What the kernel permits is no failure of the implementation: the kernel still does it.
      lines.push('', r.key === f.key ? 'STILL PERMITTED by the kernel (linux profile), as recorded: a finding about the kernel, not a failure.'
        : `REPRODUCES differently: now ${r.key}, recorded ${f.key}.`);
    } else {
      lines.push('', r.key === f.key ? 'STILL FAILS, as recorded.' : `STILL FAILS, but differently: now ${r.key}, recorded ${f.key}.`);
    }
  }
  return lines.join('\n');
}

interface ReplayOptions {
  readonly json?: boolean;
  readonly steps: ReplaySteps;
  readonly impl?: string;
  readonly trustModule?: boolean;
}

async function replayFile(cli: Cli, file: string, opts: ReplayOptions): Promise<number> {
  const { steps, impl } = opts;
  let text: string;
  try {
    text = readRegularFile(file);
  } catch (e) {
    return usageError(cli, `cannot read ${file}: ${(e as Error).message}`);
  }
  const decoded = parseFailureFile(text);
  if (!decoded.ok) return usageError(cli, `${file} is not a valid ptspec failure file:\n${decoded.errors.map((e) => `  ${e}`).join('\n')}`);
  const f = decoded.value;
  // Loading a module runs its code: a file from elsewhere must not run what it names unasked.
  if (f.target.kind === 'command' && impl === undefined && opts.trustModule !== true) {
    return usageError(cli, `${file} names the program ${JSON.stringify(f.target.command)}, and replaying it runs that program. If you trust it: ptspec replay ${file} --trust-module`);
  }
  if (f.target.kind === 'module' && impl === undefined && opts.trustModule !== true) {
    return usageError(cli, `${file} names the module ${JSON.stringify(f.target.module)}, and replaying it runs that module's code. `
      + `If you trust it: ptspec replay ${file} --trust-module; or run your own: ptspec replay ${file} --impl MODULE`);
  }
  const target = await targetOf(f, { file, ...(impl === undefined ? {} : { impl }) });
  if (typeof target === 'string') return usageError(cli, `${file}: ${target}`);
  // Step by step means on this thread, where a hang cannot be stopped: a campaign replays
  // its stored failures first, in a worker under the watchdog.
  if (f.failure.kind === 'timeout') {
    return usageError(cli, `${file} is a timeout: replaying it hangs until fixed, which ptspec replay cannot stop. `
      + `ptspec fuzz --impl MODULE --runs 1 --out ${dirname(file)} replays it first, under --command-timeout.`);
  }
  const r = replay(await traceSetupFor(f.scenario, target, f.fullCheckEvery), target.label, f.commands, steps, f.key);
  if (opts.json === true) {
    cli.stdout.write(`${JSON.stringify({ file, key: f.key, reproduced: r.failure !== null, sameKey: r.key === f.key, nowKey: r.key, failure: r.failure, change: r.change, ...(steps === 'all' ? { steps: r.steps } : {}) }, null, 2)}\n`);
  } else {
    // The file's details, messages and paths are anyone's text.
    cli.stdout.write(`${printable(replayText(file, f, target, r, steps))}\n`);
  }
  return r.failure === null ? 0 : 1;
}

export function register(program: Command, cli: Cli): void {
  program
    .command('replay')
    .description('re-run a stored failure exactly and show it step by step (exit 1: still fails, 0: no longer reproduces)')
    .argument('<file>', 'a failure file written by `ptspec fuzz` (in .ptspec/failures/ by default)')
    .option('--json', 'machine-readable result')
    .addOption(new Option('--steps <which>', 'the steps whose state change is shown: the failing one, or all (how the state was built up)').choices(['failing', 'all']).default('failing'))
    .addHelpText('after', examples([
      ['ptspec replay .ptspec/failures/<file>.json', 'the failing trace step by step'],
      ['ptspec replay --json .ptspec/failures/<file>.json', 'the same, machine-readable'],
      ['ptspec replay FILE --impl ./my-adapter.ts', 'the stored trace against this module instead'],
      ['ptspec replay FILE --trust-module', 'run the module the file names'],
    ]))
    .option('--impl <module>', 'replay against this module instead of the target the file names (a moved adapter, a fixed build)')
    .option('--trust-module', 'run the module the file names (a file for a user module replays only with this or --impl)')
    .action(async (file: string, opts: ReplayOptions) => {
      cli.exitCode = await replayFile(cli, file, opts);
    });
}
