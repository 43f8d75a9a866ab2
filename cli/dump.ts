/**
 * `ptspec dump [--scenario NAME] [--system model|impl | --impl MODULE]`: boot a scenario
 * on the model, the built-in impl or your own implementation (loaded as `fuzz --impl`
 * loads it) and print its page tables, as its abstract state, in the kernel's ptdump
 * format as the kernel's walker prints it (io/ptdump/print.ts: its markers for the paging
 * mode, nothing in the guard hole), so the result can be read like
 * /sys/kernel/debug/page_tables/kernel and fed back to `ptspec check`, which takes it for
 * init_mm (a whole walk with an empty user half).
 */
import { Option, type Command } from 'commander';
import { createImpl } from '../impl/index.ts';
import { printState } from '../io/ptdump/print.ts';
import { createModel } from '../model/index.ts';
import { applyCommand } from '../spec/commands.ts';
import { SCENARIOS, scenarioNamed } from '../spec/scenario.ts';
import type { AbstractState } from '../spec/state.ts';
import type { PageTableSystemFactory } from '../spec/system.ts';
import { loadUserImpl, UserImplError } from '../fuzz/user-impl.ts';
import type { Cli } from './output.ts';
import { examples } from './help.ts';

/** The state after booting `name` on the chosen system (or a user's factory), or the boot command that failed. */
export function bootScenario(name: string, system: 'model' | 'impl' | PageTableSystemFactory): AbstractState | string {
  const make = scenarioNamed(name);
  if (make === undefined) return `unknown scenario ${JSON.stringify(name)} (known: ${Object.keys(SCENARIOS).join(', ')})`;
  const scenario = make();
  const factory = system === 'model' ? createModel : system === 'impl' ? createImpl : system;
  let step = 'the factory';
  try {
    const sys = factory(scenario);
    for (const [i, c] of scenario.boot.entries()) {
      step = `boot command ${i} (${c.op})`;
      const r = applyCommand(sys, c);
      if (!r.ok) return `${step} failed: ${r.error.message}`;
    }
    step = 'abstract()';
    return sys.abstract();
  } catch (e) {
    // A user's implementation may throw anywhere: say where, without our stack.
    return `${step} threw: ${(e as Error).message}`;
  }
}

/** The booted state `ptspec dump` prints; a string is what is wrong (exit 2). */
async function dumpedState(opts: { readonly scenario: string; readonly system: 'model' | 'impl'; readonly impl?: string }): Promise<AbstractState | string> {
  const make = scenarioNamed(opts.scenario);
  if (opts.impl === undefined || make === undefined) return bootScenario(opts.scenario, opts.system);
  try {
    return bootScenario(opts.scenario, await loadUserImpl(opts.impl, make()));
  } catch (e) {
    if (e instanceof UserImplError) return e.message;
    throw e;
  }
}

export function register(program: Command, cli: Cli): void {
  program
    .command('dump')
    .description("boot a scenario and print its page tables as the kernel's ptdump does")
    .addOption(new Option('--scenario <name>', `built-in scenario: ${Object.keys(SCENARIOS).join(', ')} (\`ptspec scenarios\` describes them)`).default('kernel'))
    .addOption(new Option('--system <which>', 'system to boot').choices(['model', 'impl']).default('model'))
    .addOption(new Option('--impl <module>', 'boot your own implementation instead (a module as for `ptspec fuzz --impl`)').conflicts('system'))
    .addHelpText('after', examples([
      ['ptspec dump', "the kernel scenario's tables, booted by the model"],
      ['ptspec dump --scenario kernel-5level --system impl', 'the LA57 scenario as the impl builds it'],
      ['ptspec dump > k.txt && ptspec check k.txt', 'hold a scenario to the dump checks'],
    ]))
    .action(async (opts: { scenario: string; system: 'model' | 'impl'; impl?: string }) => {
      const state = await dumpedState(opts);
      if (typeof state === 'string') {
        cli.stderr.write(`ptspec dump: ${state}\n`);
        cli.exitCode = 2;
        return;
      }
      cli.stdout.write(printState(state));
    });
}
