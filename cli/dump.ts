/**
 * `ptspec dump [--scenario NAME] [--system model|impl]`: boot a scenario and print its page
 * tables in the kernel's ptdump format (io/ptdump/print.ts), so the result can be read
 * like /sys/kernel/debug/kernel_page_tables and fed back to `ptspec check`.
 */
import { Option, type Command } from 'commander';
import { createImpl } from '../impl/index.ts';
import { printState } from '../io/ptdump/print.ts';
import { createModel } from '../model/index.ts';
import { applyCommand } from '../spec/commands.ts';
import { SCENARIOS } from '../spec/scenario.ts';
import type { AbstractState } from '../spec/state.ts';
import type { Cli } from './output.ts';

/** The state after booting `name` on the chosen system, or the boot command that failed. */
export function bootScenario(name: string, system: 'model' | 'impl'): AbstractState | string {
  const make = SCENARIOS[name];
  if (make === undefined) return `unknown scenario ${JSON.stringify(name)} (known: ${Object.keys(SCENARIOS).join(', ')})`;
  const scenario = make();
  const sys = system === 'model' ? createModel(scenario) : createImpl(scenario);
  for (const [i, c] of scenario.boot.entries()) {
    const r = applyCommand(sys, c);
    if (!r.ok) return `boot command ${i} (${c.op}) failed: ${r.error.message}`;
  }
  return sys.abstract();
}

export function register(program: Command, cli: Cli): void {
  program
    .command('dump')
    .description("boot a scenario and print its page tables as the kernel's ptdump does")
    .addOption(new Option('--scenario <name>', 'built-in scenario').default('kernel'))
    .addOption(new Option('--system <which>', 'system to boot').choices(['model', 'impl']).default('model'))
    .action((opts: { scenario: string; system: 'model' | 'impl' }) => {
      const state = bootScenario(opts.scenario, opts.system);
      if (typeof state === 'string') {
        cli.stderr.write(`ptspec dump: ${state}\n`);
        cli.exitCode = 2;
        return;
      }
      cli.stdout.write(printState(state));
    });
}
