/**
 * The scenario matrix: `ptspec fuzz --scenario matrix` cycles through every built-in
 * scenario by run index, run g on MATRIX_SCENARIOS[g mod n], so one campaign exercises
 * every axis a scenario varies (4- and 5-level paging, with and without PSE and GB
 * pages, a table pool below and above 4 GiB, a small pool) and the summary can say
 * which it never did. Which scenario a run has, and how long it may be, depend on its
 * index alone: the same seed and options give the same runs on any machine, in any
 * worker, in any shard (campaign-run.ts globalRunIndex keeps every shard cycling).
 */
import { SCENARIOS, scenarioNamed, type Scenario } from '../spec/scenario.ts';

/** The `--scenario` name of the matrix. */
export const MATRIX = 'matrix';

/**
 * The scenarios a matrix run may have: every built-in one, in SCENARIOS' order (a new
 * scenario joins by being built in), but those too large for a run of the matrix: their
 * boot alone is ten thousand commands, checked step by step, so they get campaigns of
 * their own (`--scenario x86-64-64g`).
 */
export const LARGE_SCENARIOS: ReadonlySet<string> = new Set(['x86-64-64g']);
export const MATRIX_SCENARIOS: readonly string[] = Object.keys(SCENARIOS).filter((n) => !LARGE_SCENARIOS.has(n));

/** The scenarios a campaign's `--scenario` names, in run order; undefined when it names none. */
export function campaignScenarios(name: string): readonly string[] | undefined {
  if (name === MATRIX) return MATRIX_SCENARIOS;
  return scenarioNamed(name) === undefined ? undefined : [name];
}

/** The same, built (for what the summary may call never exercised). */
export function campaignScenarioList(name: string): readonly Scenario[] | undefined {
  return campaignScenarios(name)?.map((n) => scenarioNamed(n)!());
}

/**
 * One round of the matrix in LONG_ROUND_EVERY runs sequences of up to LONG_COMMANDS
 * commands (or --max-commands, when that is longer). Growing the table pool past the 64
 * tables the impl starts with (impl/tables.ts grow) takes some 55 tables more than the
 * boot's 11 to 14: with 100 commands no sequence of 200 got there (high-water 45); of the
 * long runs of seed 1's first 64 rounds, 1 in 64 got there with 400 commands and 12 in 32
 * with 1000. Whole rounds, so every scenario gets its long runs; they are some 60% of a
 * matrix campaign's commands.
 */
export const LONG_ROUND_EVERY = 8;
export const LONG_COMMANDS = 1000;

/** What run `runIndex` of a campaign over `scenarios` runs on, and its longest sequence. */
export function runPlan(scenarios: readonly string[], maxCommands: number, runIndex: number): { readonly scenario: string; readonly maxCommands: number } {
  const n = scenarios.length;
  const long = n > 1 && Math.floor(runIndex / n) % LONG_ROUND_EVERY === LONG_ROUND_EVERY - 1;
  return { scenario: scenarios[runIndex % n]!, maxCommands: long ? Math.max(maxCommands, LONG_COMMANDS) : maxCommands };
}
