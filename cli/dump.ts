/**
 * `ptspec dump [--scenario NAME] [--system model|impl | --impl MODULE] [--root kernel|user|asi [--pid N]]`:
 * boot a scenario on the model, the built-in impl or your own implementation (loaded as
 * `fuzz --impl` loads it) and print its page tables, as its abstract state, in the
 * kernel's ptdump format as the kernel's walker prints it (io/ptdump/print.ts: its markers
 * for the paging mode, nothing in the guard hole), so the result can be read like
 * /sys/kernel/debug/page_tables/kernel and fed back to `ptspec check`, which takes it for
 * init_mm (a whole walk with an empty user half).
 *
 * With `--root`, the built-in system boots with the isolation capability (and the
 * scenario's PTI clones) and prints one root as it translates (spec/roots.ts rootView):
 * `kernel` init_mm, `user` swapper_pg_dir's PTI user half, `asi` the ASI global root; with
 * `--pid N`, after creating processes 1..N, process N's pgd, KPTI user copy or ASI root:
 * what /sys/kernel/debug/page_tables/current_kernel and current_user show for a process,
 * so `ptspec dump --root kernel --pid 1 > k && ptspec dump --root user --pid 1 > u &&
 * ptspec check k --user u` compares the two copies as the kernel's dumps are compared.
 */
import { Option, type Command } from 'commander';
import type { Command as Cmd } from '../spec/commands.ts';
import { ASI_GLOBAL_ROOT, PTI_USER_ROOT, processRootIds, rootView } from '../spec/roots.ts';
import { createImpl } from '../impl/index.ts';
import { printState } from '../io/ptdump/print.ts';
import { createModel } from '../model/index.ts';
import { applyCommand } from '../spec/commands.ts';
import { DEFAULT_SCENARIO, SCENARIOS, ptiBoot, scenarioNamed } from '../spec/scenario.ts';
import { INIT_MM, type AbstractState, type RootId } from '../spec/state.ts';
import type { PageTableSystemFactory } from '../spec/system.ts';
import { loadUserImpl, UserImplError } from '../fuzz/user-impl.ts';
import type { Cli } from './output.ts';
import { examples } from './help.ts';
import { intParser } from './options.ts';

/** Which root `--root` prints. */
export type DumpRoot = 'kernel' | 'user' | 'asi';

/** The root id `--root which [--pid N]` names (spec/roots.ts). */
function rootId(which: DumpRoot, pid: number | undefined): RootId {
  if (pid === undefined) return which === 'kernel' ? INIT_MM : which === 'user' ? PTI_USER_ROOT : ASI_GLOBAL_ROOT;
  const r = processRootIds(pid);
  return which === 'kernel' ? r.kernelRoot : which === 'user' ? r.userRoot : r.asiRoot;
}

/**
 * The state after booting `name` on the chosen system (or a user's factory), or the boot
 * command that failed. With `processes`, the system has the isolation capability, boots
 * the scenario's isolation clones too, and creates that many processes.
 */
export function bootScenario(name: string, system: 'model' | 'impl' | PageTableSystemFactory, processes?: number): AbstractState | string {
  const make = scenarioNamed(name);
  if (make === undefined) return `unknown scenario ${JSON.stringify(name)} (known: ${Object.keys(SCENARIOS).join(', ')})`;
  const scenario = make();
  const factory = system === 'model' ? createModel : system === 'impl' ? createImpl : system;
  const isolated = processes !== undefined;
  const boot: readonly Cmd[] = isolated
    ? [...ptiBoot(scenario), ...Array.from({ length: processes }, (): Cmd => ({ op: 'createProcess' }))]
    : scenario.boot;
  let step = 'the factory';
  try {
    const sys = factory(isolated ? { ...scenario, isolation: true } : scenario);
    if (isolated && sys.isolation === undefined) return 'the implementation has no isolation capability: it cannot show a --root';
    for (const [i, c] of boot.entries()) {
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

interface DumpOptions {
  readonly scenario: string;
  readonly system: 'model' | 'impl';
  readonly impl?: string;
  readonly root?: DumpRoot;
  readonly pid?: number;
}

/** The booted state `ptspec dump` prints; a string is what is wrong (exit 2). */
async function dumpedState(opts: DumpOptions): Promise<AbstractState | string> {
  const make = scenarioNamed(opts.scenario);
  const processes = opts.root === undefined ? undefined : opts.pid ?? 0;
  if (opts.impl === undefined || make === undefined) return bootScenario(opts.scenario, opts.system, processes);
  try {
    return bootScenario(opts.scenario, await loadUserImpl(opts.impl, make()), processes);
  } catch (e) {
    if (e instanceof UserImplError) return e.message;
    throw e;
  }
}

/** The state reduced to one root, with every leaf it translates as its own (a dump shows no sharing). */
function oneRoot(state: AbstractState, id: RootId): AbstractState {
  const root = state.roots.find((r) => r.id === id)!;
  return { ...state, roots: [{ id: root.id, kind: root.kind, ...(root.pid === undefined ? {} : { pid: root.pid }), leaves: rootView(state, id) }] };
}

export function register(program: Command, cli: Cli): void {
  program
    .command('dump')
    .description("boot a scenario and print its page tables as the kernel's ptdump does")
    .addOption(new Option('--scenario <name>', `built-in scenario: ${Object.keys(SCENARIOS).join(', ')} (\`ptspec scenarios\` describes them)`).default(DEFAULT_SCENARIO))
    .addOption(new Option('--system <which>', 'system to boot').choices(['model', 'impl']).default('model'))
    .addOption(new Option('--impl <module>', 'boot your own implementation instead (a module as for `ptspec fuzz --impl`)').conflicts('system'))
    .addOption(new Option('--root <which>', 'print one root as it translates, with the isolation capability: kernel, user (the PTI user copy) or asi').choices(['kernel', 'user', 'asi']))
    .addOption(new Option('--pid <n>', 'with --root: the root of process N (processes 1..N are created after boot)').argParser(intParser('--pid', 1)))
    .addHelpText('after', examples([
      ['ptspec dump', "the kernel scenario's tables, booted by the model"],
      ['ptspec dump --scenario kernel-5level --system impl', 'the LA57 scenario as the impl builds it'],
      ['ptspec dump > k.txt && ptspec check k.txt', 'hold a scenario to the dump checks'],
      ['ptspec dump --root user --pid 1 > u.txt', "process 1's KPTI user copy, as current_user shows it"],
    ]))
    .action(async (opts: DumpOptions) => {
      if (opts.pid !== undefined && opts.root === undefined) {
        cli.stderr.write('ptspec dump: --pid needs --root (kernel, user or asi)\n');
        cli.exitCode = 2;
        return;
      }
      const state = await dumpedState(opts);
      if (typeof state === 'string') {
        cli.stderr.write(`ptspec dump: ${state}\n`);
        cli.exitCode = 2;
        return;
      }
      cli.stdout.write(printState(opts.root === undefined ? state : oneRoot(state, rootId(opts.root, opts.pid))));
    });
}
