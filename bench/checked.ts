/**
 * The checked groups: commands per CPU-second as a campaign runs them on the default
 * scenario. The sequences are the campaign's own (its generator, fuzz/campaign-run.ts
 * generatedCommands, with the run seeds of one fixed campaign seed), made once before any
 * timing; each side runs all of them per round and costs CPU ms per command (the command
 * count the coverage counter keeps, which is what `ptspec fuzz` reports).
 */
import { PAGES, kernelLayout } from '../spec/address.ts';
import { applyCommand, type Command } from '../spec/commands.ts';
import type { Scenario } from '../spec/scenario.ts';
import { INIT_MM, PAGE_KERNEL } from '../spec/state.ts';
import type { PageTableSystemFactory } from '../spec/system.ts';
import { checksDefinitions, generatedCommands, runSeed, type TraceSetup } from '../fuzz/campaign-run.ts';
import { implTarget, traceSetupFor } from '../fuzz/campaign-target.ts';
import { runTrace, systemSetup, type InvariantSuite } from '../fuzz/check.ts';
import { emptyCoverage } from '../fuzz/coverage.ts';
import { defaultScenario, must } from './machine.ts';
import type { CampaignDefaults, Group, Side } from './runner.ts';

/** The campaign seed the sequences come from. */
export const BENCH_SEED = 42;
/** Sequences are taken in run order until they hold this many commands: a round of the slowest side stays a few seconds. */
const COMMANDS_PER_ROUND = 400;

/** CPU time of this process so far, ms (all its threads: the checks run on this one). */
function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** The first runs of the campaign seeded BENCH_SEED, as `ptspec fuzz` would generate them, up to COMMANDS_PER_ROUND commands. */
function campaignSequences(scenario: Scenario, setup: TraceSetup, campaign: CampaignDefaults): (readonly Command[])[] {
  const out: (readonly Command[])[] = [];
  // swarm: as `ptspec fuzz` runs without --no-swarm.
  for (let i = 0, total = 0; total < COMMANDS_PER_ROUND; i++) {
    const commands = generatedCommands({ scenario, maxCommands: campaign.maxCommands, swarm: true, setup }, runSeed(BENCH_SEED, i));
    out.push(commands);
    total += commands.length;
  }
  return out;
}

/** Counts the CPU time `setup`'s factories spend (building and booting each trace's systems) into `spent.ms`. */
function timedFactories(setup: TraceSetup, spent: { ms: number }): TraceSetup {
  const timed = (make: PageTableSystemFactory): PageTableSystemFactory => (s) => {
    const t0 = cpuMs();
    const sys = make(s);
    spent.ms += cpuMs() - t0;
    return sys;
  };
  return { ...setup, makeModel: timed(setup.makeModel), makeImpl: timed(setup.makeImpl) };
}

/** A side's two labels: its cost without the factories' time (each trace's boot), and with it. */
export const withBoot = (label: string): string => `${label}, each trace's boot included`;

/**
 * A side that checks every sequence with runTrace under `setup`, costing CPU ms per
 * command without and with each trace's boot. A failing trace stops the side: the
 * throughput of traces that fail early would not be the campaign's.
 */
export function checkedSide(label: string, setup: TraceSetup, sequences: readonly (readonly Command[])[]): Side {
  const boot = { ms: 0 };
  const timed = timedFactories(setup, boot);
  return {
    labels: [label, withBoot(label)],
    async measure() {
      const coverage = emptyCoverage();
      boot.ms = 0;
      const t0 = cpuMs();
      for (const [i, commands] of sequences.entries()) {
        const r = runTrace({ ...timed, commands, coverage, checkDefinitions: checksDefinitions(i) });
        if (r.failure !== null) throw new Error(`sequence ${i} (run seed ${runSeed(BENCH_SEED, i)}) failed at step ${r.failure.step} (${r.failure.command.op}): ${r.failure.kind} ${r.failure.cause}: ${r.failure.detail.split('\n')[0]}`);
      }
      const ms = cpuMs() - t0;
      return [(ms - boot.ms) / coverage.commands, ms / coverage.commands];
    },
  };
}

/** The same sequences applied to both systems the setup builds, with no check at all: what the checks cost is measured against this. */
function uncheckedSide(label: string, setup: TraceSetup, sequences: readonly (readonly Command[])[]): Side {
  const s = systemSetup(setup);
  const boot = { ms: 0 };
  const timed = timedFactories(setup, boot);
  return {
    labels: [label, withBoot(label)],
    async measure() {
      let commands = 0;
      boot.ms = 0;
      const t0 = cpuMs();
      for (const seq of sequences) {
        const model = timed.makeModel(s);
        const impl = timed.makeImpl(s);
        for (const c of seq) {
          applyCommand(model, c);
          applyCommand(impl, c);
        }
        commands += seq.length;
      }
      const ms = cpuMs() - t0;
      return [(ms - boot.ms) / commands, ms / commands];
    },
  };
}

/** An invariant suite that checks nothing: the checker's cost without the catalogue. */
const NO_INVARIANTS: InvariantSuite = { ids: [], check: () => [] };

async function defaultSetup(campaign: CampaignDefaults): Promise<{ readonly scenario: Scenario; readonly setup: TraceSetup; readonly sequences: (readonly Command[])[] }> {
  const scenario = defaultScenario();
  // As a campaign's workers build it: the boot checked once, then folded into the factories.
  const setup = await traceSetupFor(scenario.name, implTarget(), campaign.fullCheckEvery, { bootOnce: true });
  return { scenario, setup, sequences: campaignSequences(scenario, setup, campaign) };
}

/** The sides' labels (without each trace's boot; withBoot(label) with it). */
export const CHECKED_LABELS = {
  unchecked: 'systems only: model and impl apply the commands, no checks',
  noInvariants: 'checked without invariants (outcomes, postconditions, refinement, tables)',
  checked: 'checked as a campaign checks (everything)',
} as const;

export const CHECKED: Group = {
  name: 'checked commands',
  rounds: 3,
  warmup: true,
  async setup(campaign) {
    const { setup, sequences } = await defaultSetup(campaign);
    return {
      sides: [
        uncheckedSide(CHECKED_LABELS.unchecked, setup, sequences),
        checkedSide(CHECKED_LABELS.noInvariants, { ...setup, invariants: NO_INVARIANTS }, sequences),
        checkedSide(CHECKED_LABELS.checked, setup, sequences),
      ],
    };
  },
};

/** The untouched leaves the second group adds to the boot: none, 64 MiB and 1 GiB of 4K pages. */
export const UNTOUCHED_LEAVES = [0, 16_384, 262_144] as const;

export const untouchedLabel = (n: number): string => `checked, ${n.toLocaleString('en-US')} untouched 4K leaves`;

/**
 * The default scenario's boot followed by a vmap of `leaves` 4K pages 1 TiB into the
 * vmalloc area onto frames from 12 GiB, where no generated command reaches: the generator
 * draws addresses near the boot's regions and mappings and the sequence's own (the
 * sequences are generated for the unextended scenario, so its address pool does not
 * include the new range), at most 2 GiB away, and frames near the frame runs' edges.
 */
function withUntouched(setup: TraceSetup, scenario: Scenario, leaves: number): TraceSetup {
  if (leaves === 0) return setup;
  const vpn = kernelLayout(scenario.config.levels).vmallocStart + 1024 * PAGES['1G'];
  const pfn = 12 * PAGES['1G'];
  const extended = (make: PageTableSystemFactory): PageTableSystemFactory => (s) => {
    const sys = make(s);
    must(sys.allocFrames(pfn, leaves), `alloc_pages of the ${leaves} untouched frames`);
    must(sys.map(INIT_MM, vpn, pfn, leaves, PAGE_KERNEL, { maxPage: '4K' }), `vmap of the ${leaves} untouched pages`);
    return sys;
  };
  return { ...setup, makeModel: extended(setup.makeModel), makeImpl: extended(setup.makeImpl) };
}

export const UNTOUCHED: Group = {
  name: 'untouched leaves',
  rounds: 3,
  warmup: true,
  async setup(campaign) {
    const { scenario, setup, sequences } = await defaultSetup(campaign);
    return { sides: UNTOUCHED_LEAVES.map((n) => checkedSide(untouchedLabel(n), withUntouched(setup, scenario, n), sequences)) };
  },
};
