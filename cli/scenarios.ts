/**
 * `ptspec scenarios [--json]`: the built-in machines `--scenario` accepts (spec/scenario.ts),
 * each with what a kernel developer picks one by: paging levels, CPU page sizes, memory,
 * table pool, CPUs and how long its boot is.
 */
import type { Command } from 'commander';
import { PAGE_SIZE } from '../spec/address.ts';
import { SCENARIOS, type Scenario } from '../spec/scenario.ts';
import type { Cli } from './output.ts';
import { examples } from './help.ts';

/** One scenario as `--json` prints it. */
export interface ScenarioSummary {
  readonly name: string;
  readonly description: string;
  readonly levels: number;
  readonly features: { readonly pse: boolean; readonly gbpages: boolean };
  /** Physical memory in bytes and in 4 KiB frames. */
  readonly memoryBytes: number;
  readonly frames: number;
  readonly tablePool: { readonly pfn: number; readonly count: number };
  readonly cpus: number;
  readonly bootCommands: number;
}

export function summarize(s: Scenario): ScenarioSummary {
  const c = s.config;
  return {
    name: s.name,
    description: s.description,
    levels: c.levels,
    features: { pse: c.features.pse, gbpages: c.features.gbpages },
    memoryBytes: c.frames * PAGE_SIZE,
    frames: c.frames,
    tablePool: { pfn: c.tablePool.pfn, count: c.tablePool.count },
    cpus: c.cpus,
    bootCommands: s.boot.length,
  };
}

/** 4 GiB, 128 MiB: the largest binary unit that divides the size. */
function bytesText(bytes: number): string {
  for (const [unit, size] of [['GiB', 2 ** 30], ['MiB', 2 ** 20], ['KiB', 2 ** 10]] as const) {
    if (bytes % size === 0) return `${bytes / size} ${unit}`;
  }
  return `${bytes} B`;
}

function scenarioLines(all: readonly ScenarioSummary[]): string[] {
  const lines: string[] = [];
  for (const s of all) {
    const sizes = ['4K', ...(s.features.pse ? ['2M'] : []), ...(s.features.gbpages ? ['1G'] : [])].join('/');
    lines.push(
      s.name,
      `  ${s.description}`,
      `  ${s.levels}-level paging, pages ${sizes} (PSE ${s.features.pse ? 'yes' : 'no'}, GB pages ${s.features.gbpages ? 'yes' : 'no'}), ${s.cpus} CPUs`,
      `  memory ${bytesText(s.memoryBytes)} (${s.frames} frames), table pool ${s.tablePool.count} tables at pfn 0x${s.tablePool.pfn.toString(16)}, boot ${s.bootCommands} commands`,
    );
  }
  lines.push(`${all.length} scenarios (use one with: ptspec fuzz --scenario NAME, ptspec dump --scenario NAME)`);
  return lines;
}

export function register(program: Command, cli: Cli): void {
  program
    .command('scenarios')
    .description('list the built-in scenarios (machines and their boot) that --scenario accepts; --json for tools')
    .option('--json', 'name, description, levels, features, memory, table pool, CPUs and boot length of every scenario')
    .addHelpText('after', examples([
      ['ptspec scenarios', 'each machine: paging levels, page sizes, memory, pool, CPUs'],
      ['ptspec fuzz --scenario kernel-no-pse --runs 100', 'a campaign on a CPU with 4K pages only'],
    ]))
    .action((opts: { json?: boolean }) => {
      const all = Object.values(SCENARIOS).map((make) => summarize(make()));
      const lines = opts.json ? [JSON.stringify(all, null, 2)] : scenarioLines(all);
      cli.stdout.write(lines.map((l) => `${l}\n`).join(''));
      cli.exitCode = 0;
    });
}
