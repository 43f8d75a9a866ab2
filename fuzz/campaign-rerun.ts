/**
 * `ptspec fuzz --replay SEED:PATH`: one run of a campaign again, exactly as the campaign
 * ran and shrank it (campaign-run.ts, rerunPath), reported through the same hooks and
 * result as a campaign of one run, so the summary, the failure file and the exit code
 * are those of any campaign. Stored failures are not replayed first: the point is this
 * one run. A user module's rerun runs in a worker under --command-timeout (a timeout
 * failure reruns by hanging again), the built-in systems' on this thread.
 */
import type { Deletion, RunResult } from './campaign-run.ts';
import { afterTrial, workerInit, type CampaignConfig, type CampaignHooks, type CampaignResult } from './campaign.ts';

/** A run to rerun: its seed (as the failure file and the summary print it) and its shrink path. */
export interface RerunSpec {
  readonly seed: number;
  readonly path: readonly Deletion[];
}

export async function rerunCampaign(config: CampaignConfig, run: RerunSpec, hooks: CampaignHooks): Promise<CampaignResult> {
  const start = Date.now();
  const [r] = (await afterTrial(config, workerInit(config, []), [
    { type: 'rerun', scenario: config.scenario, seed: run.seed, path: run.path, maxCommands: config.maxCommands },
  ])) as Omit<RunResult, 'runIndex'>[];
  hooks.onStored?.([]);
  // The one run of this campaign: nothing ran before it.
  if (r!.found !== null) hooks.onFound({ ...r!.found, foundAtMs: Date.now() - start, commandsBefore: 0 }, false);
  return {
    runs: 1,
    commands: r!.coverage.commands,
    elapsedMs: Date.now() - start,
    coverage: r!.coverage,
    stored: [],
    failures: r!.failedKey === null ? [] : [{ key: r!.failedKey, hits: 1, firstRun: -1 }],
    stoppedBy: 'runs',
  };
}
