/**
 * `ptspec fuzz`: a campaign holding an implementation (the built-in impl, a mutant of it,
 * or the user's `--impl` module) to the reference model. Everything that can be wrong
 * with the command line is found before any work starts (exit 2); then stored failures
 * are replayed, new ones are written as they are found, and the summary says what ran,
 * what it covered and what failed (exit 1 when anything did).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import type { Scenario } from '../spec/scenario.ts';
import type { Profile } from '../spec/system.ts';
import { runCampaign, type CampaignConfig, type CampaignHooks, type CampaignResult, type StoredTrace } from '../fuzz/campaign.ts';
import { isFindingKey } from '../fuzz/campaign-run.ts';
import type { Scenarios } from '../fuzz/coverage-goals.ts';
import { MATRIX, campaignScenarioList } from '../fuzz/matrix.ts';
import { rerunCampaign } from '../fuzz/campaign-rerun.ts';
import { cImplRefusal, commandTarget, implTarget, moduleTarget, mutantTarget, processOf, wasmModuleOf, wasmRefusal, withProfile, type TargetSpec } from '../fuzz/campaign-target.ts';
import { ProcessImplError } from '../fuzz/process-impl.ts';
import { errorText } from '../fuzz/check.ts';
import { catalogueSuite } from '../fuzz/defaults.ts';
import { FailureDb } from '../fuzz/failure-db.ts';
import { profilesOf, profileText, summariseProfiles } from '../fuzz/profile.ts';
import { loadUserImpl, moduleUrl, UserImplError } from '../fuzz/user-impl.ts';
import { isWasmPath } from '../fuzz/wasm-impl.ts';
import { failureRecord, formatFailureFile, headline, parseFailureFile, type FailureFile, type Target } from '../fuzz/failure-file.ts';
import { buildSummary, progressLine, summaryText, type FailureLine } from './fuzz-summary.ts';
import { addFuzzOptions, DEFAULT_TIME_MS, fuzzOptions, replayCommand, type FuzzOptions } from './options.ts';
import { printable, type Cli, type Output } from './output.ts';
import { onInterrupt, signalExitCode } from './interrupt.ts';
import { examples } from './help.ts';
import { writeSummaryFile } from './summary-file.ts';

function ptspecVersion(): string {
  return (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

/**
 * `mkdir -p` one level at a time: Node's recursive mkdirSync retries forever where the
 * parent exists but refuses the entry with ENOENT (`--out /proc/x`).
 */
function makeDir(dir: string): void {
  if (existsSync(dir)) return;
  if (dirname(dir) !== dir) makeDir(dirname(dir));
  mkdirSync(dir);
}

/** Bad usage found after commander's own checks: say so like commander does, exit 2. */
export function usageError(cli: Cli, message: string): number {
  // Messages quote file contents and user modules' errors.
  cli.stderr.write(`error: ${printable(message)}\n`);
  return 2;
}

function fileTarget(t: TargetSpec): Target {
  switch (t.kind) {
    case 'impl': return { kind: 'impl' };
    case 'mutant': return { kind: 'mutant', mutant: t.mutant };
    // Absolute, so the file replays from any working directory.
    case 'module': return { kind: 'module', module: fileURLToPath(t.url) };
    case 'command': return { kind: 'command', command: t.command };
  }
}

/**
 * A user module's target, loaded and checked once before anything runs; a string is what
 * is wrong with it. A `.wasm` file is a C implementation (fuzz/wasm-impl.ts): compiled and
 * its interface checked.
 */
export async function userModuleTarget(module: string, scenario: Scenario): Promise<TargetSpec | string> {
  const target = moduleTarget(module, moduleUrl(module));
  try {
    if (!isWasmPath(module)) await loadUserImpl(module, scenario);
    else if (!existsSync(module)) return `--impl ${module}: no such file`;
    else await wasmModuleOf(moduleUrl(module));
  } catch (e) {
    if (e instanceof UserImplError) return e.message;
    throw e;
  }
  return target;
}

/** A native program's target, after it answered hello and can run every scenario's boot under the profile; a string is what is wrong. */
export async function programTarget(command: string, scenarios: readonly Scenario[], profile: Profile): Promise<TargetSpec | string> {
  try {
    const p = await processOf(command);
    return scenarios.map((s) => cImplRefusal(`--impl-cmd ${JSON.stringify(command)}`, p, s, profile)).find((r) => r !== null) ?? commandTarget(command);
  } catch (e) {
    if (e instanceof ProcessImplError || e instanceof UserImplError) return e.message;
    throw e;
  }
}

/**
 * The campaign target; a string is a usage error. With a command timeout, a module's
 * trial is left to the campaign (CampaignConfig.trial): it runs in a worker under the
 * watchdog, so a module that hangs at import or in its factory is a usage error after
 * that long, not a hung ptspec.
 */
async function resolveTarget(opts: FuzzOptions, scenarios: readonly Scenario[]): Promise<TargetSpec | string> {
  const scenario = scenarios[0]!;
  // A wasm module's check runs no C but ptspec_abi_version and ptspec_supported_ops: it
  // needs no worker trial, and it refuses a profile or a boot the module cannot run.
  if (opts.impl !== undefined && isWasmPath(opts.impl)) {
    const t = await userModuleTarget(opts.impl, scenario);
    if (typeof t === 'string') return t;
    const m = await wasmModuleOf(moduleUrl(opts.impl));
    return scenarios.map((s) => wasmRefusal(m, s, opts.profile)).find((r) => r !== null) ?? t;
  }
  if (opts.implCmd !== undefined) return programTarget(opts.implCmd, scenarios, opts.profile);
  if (opts.impl !== undefined && opts.commandTimeout > 0) {
    return existsSync(opts.impl) ? moduleTarget(opts.impl, moduleUrl(opts.impl)) : `--impl ${opts.impl}: no such file`;
  }
  if (opts.impl !== undefined) return userModuleTarget(opts.impl, scenario);
  return opts.mutant !== undefined ? mutantTarget(opts.mutant) : implTarget();
}

/** Progress on stderr: one line rewritten in place on a terminal, a plain line every 10 s otherwise. */
function progressWriter(err: Output): { readonly everyMs: number; write(line: string): void; end(): void } {
  const tty = err.isTTY === true;
  return {
    everyMs: tty ? 250 : 10_000,
    write: (line) => err.write(tty ? `\r\x1b[2K${line.slice(0, (err.columns ?? 200) - 1)}` : `${line}\n`),
    end: () => {
      if (tty) err.write('\r\x1b[2K');
    },
  };
}

async function fuzz(cli: Cli, opts: FuzzOptions): Promise<number> {
  // Commander's choices admit only SCENARIOS' own names and the matrix.
  const scenarios = campaignScenarioList(opts.scenario)!;
  const scenario: Scenarios = opts.scenario === MATRIX ? scenarios : scenarios[0]!;
  if (opts.replay !== undefined && opts.scenario === MATRIX) {
    return usageError(cli, '--replay reruns one run on one scenario: give the --scenario its Reproduce line names, not matrix');
  }
  const resolved = await resolveTarget(opts, scenarios);
  if (typeof resolved === 'string') return usageError(cli, resolved);
  const target = withProfile(resolved, opts.profile);
  try {
    makeDir(opts.out);
  } catch (e) {
    return usageError(cli, `--out ${opts.out}: cannot create the failure directory: ${(e as Error).message}`);
  }
  // The profiles already there are not this campaign's (V8 names each by process, thread and sequence).
  let profilesBefore: ReadonlySet<string> = new Set();
  if (opts.profileCpu !== undefined) {
    try {
      makeDir(opts.profileCpu);
      profilesBefore = new Set(readdirSync(opts.profileCpu));
    } catch (e) {
      return usageError(cli, `--profile-cpu ${opts.profileCpu}: cannot create or read the directory: ${(e as Error).message}`);
    }
  }
  const version = ptspecVersion();
  // --replay is one run, and conflicts with the budget options.
  const budget = opts.replay !== undefined ? { runs: 1, timeMs: null } : { runs: opts.runs ?? null, timeMs: opts.time ?? (opts.runs === undefined ? DEFAULT_TIME_MS : null) };

  const db = new FailureDb<FailureFile>(opts.out, { parse: parseFailureFile, format: formatFailureFile });
  const loaded = db.load();
  const prefixes = scenarios.map((s) => `${target.label}--${s.name}--`);
  const mine = loaded.stored.filter((s) => prefixes.some((p) => s.record.key.startsWith(p)));
  const storedTraces: StoredTrace[] = mine.map((s) => ({
    key: s.record.key, scenario: s.record.scenario, commands: s.record.commands, fullCheckEvery: s.record.fullCheckEvery, seed: s.record.seed,
  }));
  const storedByKey = new Map(mine.map((s) => [s.record.key, s.record]));

  const lines = new Map<string, FailureLine>();
  const pendingHits = new Map<string, number>();
  const now = (): string => new Date().toISOString();
  const flushHits = (): void => {
    for (const [key, hits] of pendingHits) {
      const total = saved(`the count of ${db.fileOf(key)}`, null, () => db.bump(key, hits, now()));
      const l = lines.get(key);
      if (total !== undefined && l !== undefined) lines.set(key, { ...l, total });
    }
    pendingHits.clear();
  };
  const progress = progressWriter(cli.stderr);
  // Ctrl-C or a kill stops the campaign at once: runs in flight are abandoned with their
  // workers (a hung one would never end), every failure already found is on disk
  // and the summary says INTERRUPTED. A second signal gets the default: the process dies.
  const interrupt = onInterrupt();
  // A failure directory that refuses writes (read-only, full) must not lose what was found:
  // the record goes to stderr instead, and the campaign fails.
  let unsaved = 0;
  const saved = <T>(what: string, record: FailureFile | null, write: () => T): T | undefined => {
    try {
      return write();
    } catch (e) {
      unsaved++;
      const content = record === null ? '' : `; the failure, so that it is not lost:\n${formatFailureFile(record)}`;
      cli.stderr.write(`\nptspec fuzz: cannot write ${what}: ${(e as Error).message}${content}\n`);
      return undefined;
    }
  };
  cli.stderr.write(`ptspec fuzz: ${target.label} on scenario ${opts.scenario}, ${opts.replay === undefined ? `seed ${opts.seed}` : `rerunning the run of seed ${opts.replay.seed}`}, ${opts.jobs} worker${opts.jobs === 1 ? '' : 's'}, `
    + `budget ${[budget.runs === null ? '' : `${budget.runs} runs`, budget.timeMs === null ? '' : `${budget.timeMs / 1000}s`].filter(Boolean).join(' or ')}, failures go to ${opts.out}\n`);

  let staleKeys: ReadonlySet<string> = new Set();
  let result: CampaignResult;
  try {
    const config: CampaignConfig = {
      scenario: opts.scenario,
      target,
      seed: opts.seed,
      runs: budget.runs,
      timeMs: budget.timeMs,
      jobs: opts.jobs,
      shard: opts.shard,
      maxCommands: opts.maxCommands,
      fullCheckEvery: opts.fullCheckEvery,
      swarm: opts.swarm,
      shrinkBudget: opts.shrinkBudget,
      bail: opts.bail ?? null,
      signal: interrupt.signal,
      commandTimeoutMs: opts.commandTimeout,
      // A wasm module was checked in resolveTarget.
      trial: opts.impl === undefined || !isWasmPath(opts.impl),
      ...(opts.profileCpu === undefined ? {} : { profileCpuDir: resolve(opts.profileCpu) }),
    };
    const hooks: CampaignHooks = {
      onStored: (outcomes) => {
        staleKeys = new Set(outcomes.filter((o) => !o.reproduced).map((o) => o.key));
        for (const o of outcomes) {
          if (!o.reproduced) continue;
          const rec = storedByKey.get(o.key)!;
          const total = saved(`the count of ${db.fileOf(o.key)}`, null, () => db.bump(o.key, 1, now())) ?? rec.count + 1;
          lines.set(o.key, { key: o.key, file: db.fileOf(o.key), hits: 1, isNew: false, total, headline: headline(rec.failure), reproduce: replayCommand(rec, rec), foundAtMs: null, commandsBefore: null });
        }
      },
      onFound: (found, replaces) => {
        // A matrix run's own scenario and length, so the file replays and reruns on its machine.
        const origin = {
          ptspecVersion: version, scenario: found.scenario ?? opts.scenario, target: fileTarget(target), maxCommands: found.maxCommands ?? opts.maxCommands,
          fullCheckEvery: opts.fullCheckEvery, campaignSeed: opts.seed, swarm: opts.swarm,
          ...(opts.profile === 'linux' ? { profile: opts.profile } : {}),
        };
        const rec = failureRecord(found, origin, now());
        const isNew = !storedByKey.has(found.key);
        const w = saved(db.fileOf(found.key), rec, () => (replaces || staleKeys.has(found.key) ? db.replace(rec) : db.record(rec)))
          ?? { file: `${db.fileOf(found.key)} (NOT WRITTEN: see above)`, count: 1 };
        lines.set(found.key, {
          key: found.key, file: w.file, hits: 1, isNew, total: w.count, headline: headline(rec.failure), reproduce: replayCommand(rec, rec),
          foundAtMs: found.foundAtMs ?? null, commandsBefore: found.commandsBefore ?? null,
        });
      },
      onRepeat: (key) => pendingHits.set(key, (pendingHits.get(key) ?? 0) + 1),
      onProgress: (p) => {
        flushHits();
        progress.write(progressLine(p, opts.profile));
      },
      progressEveryMs: progress.everyMs,
    };
    result = opts.replay === undefined ? await runCampaign(config, storedTraces, hooks) : await rerunCampaign(config, opts.replay, hooks);
  } catch (e) {
    // The module failed its trial (CampaignConfig.trial): bad usage, as when it is checked here.
    if (e instanceof UserImplError) return usageError(cli, e.message);
    // Failures found before the crash are already on disk: say where, and fail.
    cli.stderr.write(`\nptspec fuzz stopped on an internal error; failures found so far are in ${opts.out}:\n${errorText(e)}\n`);
    return 1;
  } finally {
    progress.end();
    interrupt.release();
    flushHits();
  }

  const tallied = result.failures.map((t) => ({ ...lines.get(t.key)!, hits: t.hits }));
  const failures = tallied.filter((l) => !isFindingKey(l.key));
  const findings = tallied.filter((l) => isFindingKey(l.key));
  const signal = interrupt.received();
  // A signal after the last run was handed out still cut the campaign short.
  const ran: CampaignResult = signal === null ? result : { ...result, stoppedBy: 'interrupt' };
  const summary = buildSummary({
    version, opts, target, scenario, invariantIds: catalogueSuite.ids, result: ran, failures, findings, budget,
    brokenFiles: loaded.broken,
  });
  // For `ptspec merge`: a rerun of one run is no campaign, and its coverage would count that run twice.
  if (opts.replay === undefined) saved(`the campaign summary in ${opts.out}`, null, () => writeSummaryFile(opts.out, summary));
  cli.stdout.write(`${opts.json ? JSON.stringify(summary, null, 2) : printable(summaryText(summary, opts, target, scenario))}\n`);
  if (opts.profileCpu !== undefined) reportProfiles(cli, opts.profileCpu, profilesBefore);
  if (signal !== null) return signalExitCode(signal);
  return summary.passed && unsaved === 0 ? 0 : 1;
}

/** After the summary (on stderr, so --json stays one document): the workers' profiles and where their time went. */
function reportProfiles(cli: Cli, dir: string, before: ReadonlySet<string>): void {
  const files = profilesOf(dir, process.pid, before);
  if (files.length === 0) {
    cli.stderr.write(`ptspec fuzz: --profile-cpu ${dir}: no worker wrote a profile (no run started?)\n`);
    return;
  }
  try {
    cli.stderr.write(`${profileText(summariseProfiles(files))}\n`);
  } catch (e) {
    cli.stderr.write(`ptspec fuzz: --profile-cpu: the profiles are written but cannot be summarised: ${(e as Error).message}\n`);
  }
}

export function register(program: Command, cli: Cli): void {
  addFuzzOptions(
    program
      .command('fuzz')
      .description('fuzz campaign: random operation sequences on an implementation and the reference model, checked step by step')
      .addHelpText('after', examples([
        ['ptspec fuzz', 'one minute on the built-in impl and kernel scenario'],
        ['ptspec fuzz --runs 200 --seed 42', 'exact and reproducible'],
        ['ptspec fuzz --mutant protect-no-flush --runs 100', 'a historical kernel bug, caught'],
        ['ptspec fuzz --impl ./my-adapter.ts --time 5m', 'your own implementation against the model'],
        ['ptspec fuzz --impl ./lib.wasm --profile linux', 'a C implementation of c/ptspec.h compiled to WebAssembly'],
        ['ptspec fuzz --scenario kernel-small-pool', 'a small table pool: ENOMEM and rollback'],
        ['ptspec fuzz --scenario matrix --runs 600', 'every scenario in turn: 4/5-level, no PSE, no GB pages, small and high pools'],
        ['ptspec fuzz --jobs 1 --runs 200 --profile-cpu prof', "where the workers' time goes: a .cpuprofile per worker and a summary"],
      ])),
  ).action(async (raw: Record<string, unknown>) => {
    cli.exitCode = await fuzz(cli, fuzzOptions(raw));
  });
}
