/**
 * `ptspec fuzz --replay SEED:PATH`: one run of a campaign again, exactly as the campaign
 * ran and shrank it (campaign-run.ts, rerunPath), reported through the same hooks and
 * result as a campaign of one run, so the summary, the failure file and the exit code
 * are those of any campaign. Stored failures are not replayed first: the point is this
 * one run.
 */
import { SCENARIOS } from '../spec/scenario.ts';
import { rerunPath, type Deletion } from './campaign-run.ts';
import type { CampaignConfig, CampaignHooks, CampaignResult } from './campaign.ts';
import { traceSetupFor } from './campaign-target.ts';

/** A run to rerun: its seed (as the failure file and the summary print it) and its shrink path. */
export interface RerunSpec {
  readonly seed: number;
  readonly path: readonly Deletion[];
}

export async function rerunCampaign(config: CampaignConfig, run: RerunSpec, hooks: CampaignHooks): Promise<CampaignResult> {
  const start = Date.now();
  // The campaign's own setup (boot checked once), so steps and checks are the campaign's.
  const setup = await traceSetupFor(config.scenario, config.target, config.fullCheckEvery, { bootOnce: true });
  const r = rerunPath({ setup, scenario: SCENARIOS[config.scenario]!(), target: config.target.label, maxCommands: config.maxCommands, swarm: config.swarm }, run.seed, run.path);
  hooks.onStored?.([]);
  // The one run of this campaign: nothing ran before it.
  if (r.found !== null) hooks.onFound({ ...r.found, foundAtMs: Date.now() - start, commandsBefore: 0 }, false);
  return {
    runs: 1,
    commands: r.coverage.commands,
    elapsedMs: Date.now() - start,
    coverage: r.coverage,
    stored: [],
    failures: r.failedKey === null ? [] : [{ key: r.failedKey, hits: 1, firstRun: -1 }],
    stoppedBy: 'runs',
  };
}
