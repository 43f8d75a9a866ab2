/**
 * What a campaign holds to the model: the built-in impl, the impl with a mutant injected,
 * or a user's module (`--impl`): a TypeScript or JavaScript adapter, or a C implementation
 * compiled to WebAssembly (a `.wasm` file: fuzz/wasm-impl.ts), which is fuzzed on the
 * operations and under the profiles it says it supports. Built the same way on the main
 * thread (stored traces, `ptspec replay`) and in every worker, from plain data that
 * crosses the thread boundary.
 */
import { applyCommand } from '../spec/commands.ts';
import { ptiBoot, scenarioNamed, type Scenario } from '../spec/scenario.ts';
import type { PageTableSystem, PageTableSystemFactory, Profile, SystemSetup } from '../spec/system.ts';
import type { MutantName } from '../impl/mutants.ts';
import { runTrace, type TraceFailure } from './check.ts';
import { builtinTarget } from './defaults.ts';
import type { TraceSetup } from './campaign-run.ts';
import { guardedFactory } from './guard.ts';
import { UserImplError, loadAdapter, type UserAdapter } from './user-impl.ts';
import { isWasmPath, loadWasm, wasmFactory, type WasmModule } from './wasm-impl.ts';
import { loadProcessImpl, splitCommand, type ProcessImpl } from './process-impl.ts';

export type TargetSpec = (
  | { readonly kind: 'impl'; readonly label: string }
  | { readonly kind: 'mutant'; readonly mutant: MutantName; readonly label: string }
  /** `module` as the user gave it, `url` the resolved file URL. */
  | { readonly kind: 'module'; readonly module: string; readonly url: string; readonly label: string }
  /** `--impl-cmd`: a native program speaking c/PROTOCOL.md (fuzz/process-impl.ts). */
  | { readonly kind: 'command'; readonly command: string; readonly label: string }
) & {
  /** The semantics model and target follow (strict when absent; spec/system.ts Profile). */
  readonly profile?: Profile;
};

/**
 * The target under a profile. Under linux its label says so (`impl@linux`): the label
 * starts every failure key, so what a target does under the two profiles is filed apart.
 */
export function withProfile(target: TargetSpec, profile: Profile): TargetSpec {
  const base = target.label.replace(/@linux$/, '');
  const { profile: _strict, ...rest } = target;
  return profile === 'linux' ? { ...target, profile, label: `${base}@linux` } : ({ ...rest, label: base } as TargetSpec);
}

export function implTarget(): TargetSpec {
  return { kind: 'impl', label: 'impl' };
}

export function mutantTarget(mutant: MutantName): TargetSpec {
  return { kind: 'mutant', mutant, label: `mutant-${mutant}` };
}

export function moduleTarget(module: string, url: string): TargetSpec {
  const base = module.replace(/^.*[\\/]/, '').replace(/\.[^.]*$/, '');
  return { kind: 'module', module, url, label: `module-${base}` };
}

/** Loads by URL, once per thread; a failed load is not kept: the next caller gets the error again, not a stale promise. */
function once<T>(load: (url: string) => Promise<T>): (url: string) => Promise<T> {
  const loaded = new Map<string, Promise<T>>();
  return (url) => {
    let a = loaded.get(url);
    if (a === undefined) {
      loaded.set(url, (a = load(url)));
      a.catch(() => loaded.delete(url));
    }
    return a;
  };
}

/** A wasm module, compiled and checked once per thread. */
export const wasmModuleOf = once(loadWasm);

/** A user module's adapter, imported once per thread (each setup of a matrix campaign's scenarios shares it); a wasm module's factory. */
export const adapterOf = once(async (url: string): Promise<UserAdapter> =>
  isWasmPath(url) ? { factory: wasmFactory(await wasmModuleOf(url)), checkTables: null } : loadAdapter(url));

/** cImplRefusal for a wasm module. */
export const wasmRefusal = (m: WasmModule, scenario: Scenario, profile: Profile): string | null => cImplRefusal(`--impl ${m.file}`, m.supported, scenario, profile);

/** A native program's target, labelled by the program's name. */
export function commandTarget(command: string): TargetSpec {
  const program = splitCommand(command)[0] ?? command;
  return { kind: 'command', command, label: `cmd-${program.replace(/^.*[\\/]/, '').replace(/\.[^.]*$/, '')}` };
}

/** A program's process factory, started and asked hello once per thread. */
export const processOf = once(async (command: string): Promise<ProcessImpl> => loadProcessImpl(command));

/**
 * What keeps a C implementation (a wasm module or a native program) from running a
 * campaign on `scenario` under `profile`: a profile it does not follow, or an operation
 * the boot needs that it lacks; null when nothing does.
 */
export function cImplRefusal(name: string, supported: { readonly ops: ReadonlySet<string>; readonly profiles: ReadonlySet<Profile> }, scenario: Scenario, profile: Profile): string | null {
  if (!supported.profiles.has(profile)) {
    return `${name} does not follow the ${profile} profile (ptspec_supported_ops lacks PTSPEC_SUPPORTS_${profile.toUpperCase()}); try --profile ${[...supported.profiles][0]}`;
  }
  const lacking = [...new Set(scenario.boot.map((c) => c.op))].filter((op) => !supported.ops.has(op));
  if (lacking.length > 0) return `${name} lacks ${lacking.join(', ')}, which the boot of scenario ${scenario.name} needs (ptspec_supported_ops)`;
  return null;
}

const isolationOffered = new WeakMap<UserAdapter, boolean>();

/**
 * Whether the module's systems have the isolation capability: one system built for the
 * scenario with `isolation: true` says so by its `isolation` field (asked once per
 * adapter; a factory that hangs or throws here was already caught by the module's trial).
 */
function offersIsolation(adapter: UserAdapter, scenario: Scenario): boolean {
  let offered = isolationOffered.get(adapter);
  if (offered === undefined) {
    // A module's factory may return anything: only an object with an `isolation` object offers it.
    const sys: unknown = adapter.factory({ config: scenario.config, frames: scenario.frames, isolation: true });
    const iso: unknown = typeof sys === 'object' && sys !== null ? (sys as { isolation?: unknown }).isolation : undefined;
    offered = typeof iso === 'object' && iso !== null;
    isolationOffered.set(adapter, offered);
  }
  return offered;
}

/** Whether the module's systems have the clients capability: a system built for the scenario has a `clients` object. */
function offersClients(adapter: UserAdapter, scenario: Scenario): boolean {
  let offered = clientsOffered.get(adapter);
  if (offered === undefined) {
    const sys: unknown = adapter.factory({ config: scenario.config, frames: scenario.frames });
    const cl: unknown = typeof sys === 'object' && sys !== null ? (sys as { clients?: unknown }).clients : undefined;
    offered = typeof cl === 'object' && cl !== null;
    clientsOffered.set(adapter, offered);
  }
  return offered;
}
const clientsOffered = new WeakMap<UserAdapter, boolean>();

/**
 * The trace setup of a target. `bootOnce` (campaigns) checks the boot once and then
 * starts every trace from booted systems; a replay checks the boot as part of its trace.
 */
export async function traceSetupFor(
  scenarioName: string, target: TargetSpec, fullCheckEvery: number, opts: { readonly bootOnce?: boolean; readonly bootChecked?: boolean } = {},
): Promise<TraceSetup> {
  const make = scenarioNamed(scenarioName);
  if (make === undefined) throw new Error(`unknown scenario ${scenarioName}`);
  const scenario = make();
  // The built-in systems have the isolation capability; a module's has it when a system
  // it builds for a setup asking for it (SystemSetup.isolation) exposes `isolation`.
  // Without it the module is fuzzed on the core operations, its reference model built
  // without the capability too.
  const proc = target.kind === 'command' ? await processOf(target.command) : null;
  if (proc !== null) {
    const refused = cImplRefusal(`--impl-cmd ${JSON.stringify(target.kind === 'command' ? target.command : '')}`, proc, scenario, target.profile ?? 'strict');
    if (refused !== null) throw new UserImplError(refused);
  }
  const adapter = target.kind === 'module' ? await adapterOf(target.url) : proc === null ? null : { factory: proc.factory, checkTables: null };
  const wasm = target.kind === 'module' && isWasmPath(target.url) ? await wasmModuleOf(target.url) : null;
  if (wasm !== null) {
    const refused = wasmRefusal(wasm, scenario, target.profile ?? 'strict');
    if (refused !== null) throw new UserImplError(refused);
  }
  // A C implementation has neither capability (c/ptspec.h has none yet), and the operations it says.
  const cImpl = wasm ?? proc;
  const isolation = adapter === null || (cImpl === null && offersIsolation(adapter, scenario));
  const clients = adapter === null || (cImpl === null && offersClients(adapter, scenario));
  const booted = isolation ? { ...scenario, boot: ptiBoot(scenario) } : scenario;
  const builtin = {
    ...builtinTarget(booted, target.kind === 'mutant' ? target.mutant : undefined), fullCheckEvery,
    ...(target.profile === 'linux' ? { profile: target.profile } : {}),
    ...(isolation ? { isolation: true } : {}),
    ...(clients ? { clients: true } : {}),
    ...(wasm === null ? {} : { ops: wasm.supported.ops }),
    ...(proc === null ? {} : { ops: proc.ops }),
  };
  // The built-in table checker knows only the built-in impl's tables: a module's tables
  // are checked only by the module's own checkTables, when it exports one.
  // A module's systems run fenced (frozen inputs, Results enforced); the built-in ones are trusted and run bare.
  const setup: TraceSetup = adapter === null ? builtin : { ...builtin, makeImpl: guardedFactory(adapter.factory), checkTables: adapter.checkTables };
  return opts.bootOnce === true ? bootedOnce(setup, opts.bootChecked === true, adapter === null) : setup;
}

/** The first boot step that fails its checks (outcome, postcondition, refinement; the booted state in full), or null. */
export function bootFailure(setup: TraceSetup): TraceFailure | null {
  return runTrace({ ...setup, commands: [] }).failure;
}

/**
 * The scenario's boot is the same in every trace, so its step-by-step checks need to run
 * only once: when they pass, traces start from systems the factories have already booted
 * (a third of the cost of a short trace, which is what shrinking runs by the thousand).
 * When the boot itself fails, traces keep checking it and report it (a campaign checks
 * the boot before it starts any run, and starts none when it fails). `checked`: the
 * campaign has checked it already and it passed, so a worker does not check it again (a
 * 64 GiB machine's boot is ten thousand checked steps). `forkImpl`: whether the impl's
 * `fork` may be used (a module's is not yet: its fence takes fork for an operation that
 * must return a Result).
 */
function bootedOnce(setup: TraceSetup, checked: boolean, forkImpl: boolean): TraceSetup {
  if (!checked && bootFailure(setup) !== null) return setup;
  const { boot } = setup.scenario;
  const boots = (make: PageTableSystemFactory): PageTableSystemFactory => (s) => {
    const sys = make(s);
    for (const c of boot) applyCommand(sys, c);
    return sys;
  };
  return {
    ...setup, scenario: { ...setup.scenario, boot: [] },
    makeModel: forkingBooted(boots(setup.makeModel)), makeImpl: forkImpl ? forkingBooted(boots(setup.makeImpl)) : boots(setup.makeImpl),
  };
}

/** What a booted snapshot was built from: a trace asking for another setup gets systems booted for it. */
const sameSetup = (a: SystemSetup, b: SystemSetup): boolean =>
  a.config === b.config && a.frames === b.frames && a.profile === b.profile && a.isolation === b.isolation;

/**
 * Boot once, then fork: the first call boots a system and keeps it as a snapshot no trace
 * ever runs on; every call hands out a fork of it (PageTableSystem.fork), so each trace
 * starts from the booted state whatever the traces before it did. A system without fork
 * is booted afresh for each trace, as is one built for a setup other than the snapshot's.
 */
function forkingBooted(boot: PageTableSystemFactory): PageTableSystemFactory {
  let snapshot: { readonly setup: SystemSetup; readonly sys: PageTableSystem } | undefined;
  return (s) => {
    if (snapshot === undefined || !sameSetup(snapshot.setup, s)) {
      const sys = boot(s);
      if (typeof sys.fork !== 'function') return sys;
      snapshot = { setup: s, sys };
    }
    return snapshot.sys.fork!();
  };
}
