/**
 * A step that never returned, as a failure of kind 'timeout' (fuzz/watchdog.ts). The
 * worker it hung in is gone with its state, so the trace is rebuilt on the main thread:
 * a run's commands depend only on the campaign seed and its index (campaign-run.ts), a
 * stored trace's are on disk. The trace is cut after the command that never returned;
 * the trusted model runs it here for the step's model outcome, the impl's is the timeout.
 */
import { applyCommand, type Command } from '../spec/commands.ts';
import { emptyCoverage } from './coverage.ts';
import { failureKey, generatedCommands, runSeed, type RunContext, type RunResult, type TraceSetup } from './campaign-run.ts';
import { runCommand, type TraceFailure } from './check.ts';
import type { Stall } from './watchdog.ts';

/**
 * The path a timeout is filed with: not a shrink path, so no `fuzz --replay` line is
 * printed for it (that rerun runs on the main thread, where a hang is not stopped).
 */
export const TIMEOUT_PATH = 'timeout';

/**
 * The timeout at step `hungAt` of `commands` (cut there; -1: before the first). `setup` is a replay's, boot included,
 * as the stored trace replays; `detail` replaces the plain "did not return" sentence.
 */
export function timeoutFailure(setup: TraceSetup, commands: readonly Command[], hungAt: number, timeoutMs: number, detail?: string): TraceFailure {
  // Hung before the first command (building and booting the systems): filed at step 0,
  // whose trace hangs the same way when replayed.
  const step = Math.max(0, Math.min(hungAt, commands.length - 1));
  const model = setup.makeModel(setup.scenario);
  for (const c of [...setup.scenario.boot, ...commands.slice(0, step)]) applyCommand(model, c);
  // An empty trace hung in its factory: name the command runTrace names for that.
  const command = commands[step] ?? { op: 'flushAll' };
  const seconds = `${timeoutMs / 1000}s`;
  return {
    kind: 'timeout', cause: 'impl', phase: 'run', step, command, check: 'outcome', witnesses: [],
    detail: detail ?? (hungAt < 0
      ? `the impl did not return within ${seconds} (--command-timeout) while its systems were built and booted, before the first command; its worker was stopped`
      : `the impl did not return from ${command.op} within ${seconds} (--command-timeout); its worker was stopped`),
    model: runCommand(model, command),
    impl: { outcome: 'exception', message: `no return within ${seconds}` },
  };
}

/**
 * The failure of a run the watchdog stopped in its own sequence (one stopped while
 * shrinking is run again instead, skipping the trace that hung: campaign.ts).
 */
export function timeoutResult(setup: TraceSetup, ctx: Pick<RunContext, 'scenario' | 'target' | 'maxCommands' | 'swarm' | 'campaignSeed'>, stall: Stall, timeoutMs: number): RunResult {
  const seed = runSeed(ctx.campaignSeed, stall.runIndex);
  const commands = generatedCommands({ ...ctx, setup }, seed).slice(0, Math.max(0, stall.step) + 1);
  const failure = timeoutFailure(setup, commands, stall.step, timeoutMs);
  const key = failureKey(ctx.target, ctx.scenario.name, failure);
  return {
    runIndex: stall.runIndex, coverage: emptyCoverage(), failedKey: key,
    found: { key, scenario: ctx.scenario.name, maxCommands: ctx.maxCommands, runIndex: stall.runIndex, seed, path: TIMEOUT_PATH, commands, failure },
  };
}
