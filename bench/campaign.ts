/**
 * --jobs 2 over --jobs 1: the wall time of one campaign (fuzz/campaign.ts runCampaign: the
 * default scenario, the built-in impl, a fixed seed and run count, every other option as
 * `ptspec fuzz` defaults it) run with one worker and with two, interleaved. With a run
 * budget a campaign's runs and results are the same for any number of workers, so the two
 * sides do the same work; the cost is wall ms per run, worker start and the boot check included.
 */
import { Worker } from 'node:worker_threads';
import { runCampaign } from '../fuzz/campaign.ts';
import { implTarget } from '../fuzz/campaign-target.ts';
import { defaultScenario } from './machine.ts';
import { BENCH_SEED } from './checked.ts';
import type { CampaignDefaults, Group, Side } from './runner.ts';

/**
 * Runs per campaign: about ten seconds on one core (a sequence starts from a fork of the
 * booted systems, so runs are short), so that what every worker pays once (importing the
 * project, building its setup, booting) is not most of the time, as it is not in a
 * campaign of minutes.
 */
const CAMPAIGN_RUNS = 120;

export const jobsLabel = (jobs: number): string => `campaign of ${CAMPAIGN_RUNS} runs, --jobs ${jobs}`;

function campaignSide(jobs: number, campaign: CampaignDefaults): Side {
  return {
    labels: [jobsLabel(jobs)],
    async measure() {
      const t0 = performance.now();
      // No failure directory: the hooks keep nothing, a failure only counts.
      let found = 0;
      const result = await runCampaign({
        scenario: defaultScenario().name, target: implTarget(), seed: BENCH_SEED, runs: CAMPAIGN_RUNS, timeMs: null, jobs,
        shard: { index: 0, count: 1 }, maxCommands: campaign.maxCommands, swarm: true, fullCheckEvery: campaign.fullCheckEvery,
        shrinkBudget: campaign.shrinkBudget, bail: null, commandTimeoutMs: campaign.commandTimeoutMs,
      }, [], { onFound: (_f, replaces) => { if (!replaces) found++; }, onRepeat: () => {} });
      // A failing run is shrunk, hundreds of traces: its time would not be the campaign's throughput.
      if (found > 0) throw new Error(`the campaign found ${found} failure(s) (ptspec fuzz --seed ${BENCH_SEED} --runs ${CAMPAIGN_RUNS} shows them): its time includes shrinking`);
      if (result.runs !== CAMPAIGN_RUNS) throw new Error(`the campaign stopped after ${result.runs} runs (${result.stoppedBy})`);
      return [(performance.now() - t0) / result.runs];
    },
  };
}

export const loopLabel = (workers: number): string => `a CPU loop in each of ${workers} worker${workers === 1 ? '' : 's'}`;

/** A loop of pure arithmetic, the same in every worker: nothing shared, nothing imported. */
const LOOP = `let x = 0; for (let i = 0; i < 1e8; i++) x = (x + i * 7) % 1000003; require('node:worker_threads').parentPort.postMessage(x);`;

/**
 * The machine's own ceiling for --jobs: the same loop in one worker and in each of
 * `workers`, wall ms per loop. On 2 idle cores two loops take the time of one; on cores
 * other work holds, they cannot, and neither can a campaign's two workers.
 */
function loopSide(workers: number): Side {
  return {
    labels: [loopLabel(workers)],
    async measure() {
      const t0 = performance.now();
      await Promise.all(Array.from({ length: workers }, () => new Promise<void>((resolve, reject) => {
        const w = new Worker(LOOP, { eval: true });
        w.once('message', () => void w.terminate().then(() => resolve()));
        w.once('error', reject);
      })));
      return [(performance.now() - t0) / workers];
    },
  };
}

export const JOBS: Group = {
  name: '--jobs 2 over --jobs 1',
  // Two campaigns a round, each seconds long: the costliest group, so the fewest rounds.
  rounds: 2,
  async setup(campaign) {
    return { sides: [1, 2].flatMap((jobs) => [campaignSide(jobs, campaign), loopSide(jobs)]) };
  },
};
