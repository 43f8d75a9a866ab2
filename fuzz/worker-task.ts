/**
 * The jobs besides runs that run a user's module: its trial system before a campaign
 * (fuzz/user-impl.ts), a scenario's boot check, a stored trace's replay, and
 * `fuzz --replay`'s rerun of one run. Each is a plain-data task, so the same code runs
 * it in a worker under the command-timeout watchdog (fuzz/worker-start.ts runTasks: a
 * module that hangs there is stopped from outside) or, for the trusted built-in systems
 * and with no timeout, on the main thread.
 */
import type { Command } from '../spec/commands.ts';
import { scenarioNamed } from '../spec/scenario.ts';
import { emptyCoverage } from './coverage.ts';
import { failureKey, generatedCommands, rerunPath, replayTrace, type Deletion, type HungTrace, type RunResult, type TraceSetup } from './campaign-run.ts';
import { adapterOf, bootFailure, traceSetupFor, type TargetSpec } from './campaign-target.ts';
import { TIMEOUT_PATH, timeoutFailure } from './campaign-timeout.ts';
import type { TraceFailure } from './check.ts';
import { loadUserImpl, UserImplError, type UserAdapter } from './user-impl.ts';
import { loading, type Heartbeat, type Stall } from './watchdog.ts';

export type Task =
  /** Load the module at `module` and build one system on the scenario (what is wrong with it, or null). */
  | { readonly type: 'trial'; readonly module: string; readonly scenario: string }
  /** The scenario's boot, every step checked: its first failure, or null. */
  | { readonly type: 'boot'; readonly scenario: string }
  | { readonly type: 'replay'; readonly scenario: string; readonly commands: readonly Command[]; readonly fullCheckEvery: number; readonly key?: string }
  /** One run regenerated from its seed and its shrink path applied (campaign-run.ts rerunPath). */
  | { readonly type: 'rerun'; readonly scenario: string; readonly seed: number; readonly path: readonly Deletion[]; readonly maxCommands: number; readonly hung?: readonly HungTrace[] };

/** What a replayed trace does now: the key it fails with (null: passes) and the failure. */
export interface Replayed {
  readonly key: string | null;
  readonly failure: TraceFailure | null;
}

export interface TaskResults {
  readonly trial: string | null;
  readonly boot: TraceFailure | null;
  readonly replay: Replayed;
  readonly rerun: Omit<RunResult, 'runIndex'>;
}

export type TaskResult = TaskResults[keyof TaskResults];

/** What every task of a campaign shares (fuzz/worker.ts WorkerInit has it all). */
export interface TaskEnv {
  readonly target: TargetSpec;
  readonly swarm: boolean;
  readonly fullCheckEvery: number;
  readonly commandTimeoutMs: number;
  readonly heartbeat?: Heartbeat;
  /** The campaign checked every scenario's boot step by step and it passed: setups boot without checking it again. */
  readonly bootsChecked?: boolean;
}

/** A booted trace setup per scenario, built once (a module is imported once per setup). */
export type SetupCache = (scenario: string) => Promise<TraceSetup>;

export function setupCache(env: Pick<TaskEnv, 'target' | 'fullCheckEvery' | 'bootsChecked'>): SetupCache {
  const made = new Map<string, Promise<TraceSetup>>();
  return (scenario) => {
    let s = made.get(scenario);
    if (s === undefined) made.set(scenario, (s = traceSetupFor(scenario, env.target, env.fullCheckEvery, { bootOnce: true, bootChecked: env.bootsChecked === true })));
    return s;
  };
}

/** A module imported under the watchdog's longer import limit (watchdog.ts LOAD_TIMEOUT_MS). */
export async function imported(url: string, heartbeat: Heartbeat | undefined): Promise<UserAdapter> {
  if (heartbeat !== undefined) loading(heartbeat, true);
  try {
    return await adapterOf(url);
  } finally {
    if (heartbeat !== undefined) loading(heartbeat, false);
  }
}

/** The target's module imported first, so the setup's own import is the cached one. */
async function targetImported(env: TaskEnv): Promise<void> {
  if (env.target.kind === 'module') await imported(env.target.url, env.heartbeat);
}

export async function runTask(task: Task, env: TaskEnv, booted: SetupCache): Promise<TaskResult> {
  const heartbeat = env.heartbeat === undefined ? {} : { heartbeat: env.heartbeat };
  switch (task.type) {
    case 'trial':
      try {
        await loadUserImpl(task.module, scenarioNamed(task.scenario)!(), (url) => imported(url, env.heartbeat));
        return null;
      } catch (e) {
        if (e instanceof UserImplError) return e.message;
        throw e;
      }
    case 'boot':
      await targetImported(env);
      return bootFailure({ ...(await traceSetupFor(task.scenario, env.target, env.fullCheckEvery)), ...heartbeat });
    case 'replay':
      await targetImported(env);
      return replayTrace({ ...(await booted(task.scenario)), fullCheckEvery: task.fullCheckEvery, ...heartbeat }, env.target.label, task.commands, task.key);
    case 'rerun': {
      await targetImported(env);
      const ctx = { setup: await booted(task.scenario), scenario: scenarioNamed(task.scenario)!(), target: env.target.label, maxCommands: task.maxCommands, swarm: env.swarm, ...heartbeat };
      return rerunPath(ctx, task.seed, task.path, task.hung === undefined ? undefined : { traces: task.hung, timeoutMs: env.commandTimeoutMs });
    }
  }
}

/**
 * What a task that did not return within `timeoutMs` is taken for, or the task to run
 * again instead. `setup` is the task's scenario's, boot included and the model's side
 * trusted (the impl's is never run here); a trial or boot that hangs is a timeout at
 * boot, a replay one at the step that hung. A rerun that hung in a trace of its path is
 * run again telling it so, as a campaign's shrinking is (campaign-run.ts HungTrace).
 */
export function stalledTask(task: Task, stall: Stall, env: TaskEnv, setup: TraceSetup): { readonly result: TaskResult } | { readonly retry: Task } {
  const timeoutMs = env.commandTimeoutMs;
  const label = env.target.label;
  const seconds = `${timeoutMs / 1000}s`;
  switch (task.type) {
    case 'trial':
      return { result: `${task.module}: loading the module and building one system did not return within ${seconds} (--command-timeout); its worker was stopped` };
    case 'boot': {
      const f = timeoutFailure(setup, [], -1, timeoutMs, `the impl did not return within ${seconds} (--command-timeout) while its systems were built and the scenario booted; its worker was stopped`);
      return { result: { ...f, phase: 'boot', step: 0, command: setup.scenario.boot[0] ?? f.command } };
    }
    case 'replay': {
      const failure = timeoutFailure(setup, task.commands, stall.step, timeoutMs);
      return { result: { key: failureKey(label, task.scenario, failure), failure } };
    }
    case 'rerun': {
      if (stall.shrinking) return { retry: { ...task, hung: [...(task.hung ?? []), { evaluation: stall.evaluation, step: stall.step }] } };
      // Hung in the generated sequence itself: that is the run's failure, as a campaign files it.
      const generated = generatedCommands({ scenario: scenarioNamed(task.scenario)!(), maxCommands: task.maxCommands, swarm: env.swarm, setup }, task.seed);
      const commands = generated.slice(0, Math.max(0, stall.step) + 1);
      const failure = timeoutFailure(setup, commands, stall.step, timeoutMs);
      const key = failureKey(label, task.scenario, failure);
      return {
        result: {
          coverage: emptyCoverage(), failedKey: key,
          found: { key, scenario: task.scenario, maxCommands: task.maxCommands, runIndex: -1, seed: task.seed, path: TIMEOUT_PATH, commands, failure },
        },
      };
    }
  }
}
