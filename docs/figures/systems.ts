/**
 * The booted systems the figures read: the impl (real x86-64 entries in its tables)
 * booted from a built-in scenario through the same commands every campaign boots with,
 * each booted once on first use (`once`) and shared by the figures that read the same
 * one. A figure that changes its system (a split, a process) keeps its own run. A boot
 * step that fails is a broken scenario, and throws.
 */
import { createImpl, type RadixSystem } from '../../impl/index.ts';
import { applyCommand, type Command } from '../../spec/commands.ts';
import { SCENARIOS, ptiBoot, type Scenario } from '../../spec/scenario.ts';

/** Run `commands` on `sys`, throwing at the first that fails; returns what each returned. */
export function runAll(sys: RadixSystem, commands: readonly Command[], what: string): unknown[] {
  return commands.map((c, i) => {
    const r = applyCommand(sys, c);
    if (!r.ok) throw new Error(`${what}, step ${i} (${c.op}): ${r.error.errno} ${r.error.message}`);
    return r.value;
  });
}

/** The value of `make()`, computed on the first call only. */
export function once<T>(make: () => T): () => T {
  let value: { readonly v: T } | undefined;
  return () => (value ??= { v: make() }).v;
}

export interface Booted {
  readonly scenario: Scenario;
  readonly sys: RadixSystem;
}

/** Scenario `name` booted on the impl; with `isolation`, with PTI (ptiBoot: pti_init's and pti_finalize's clones). */
export function bootScenario(name: string, isolation = false): Booted {
  const scenario = SCENARIOS[name]!();
  const sys = createImpl(isolation ? { ...scenario, isolation: true } : scenario);
  runAll(sys, isolation ? ptiBoot(scenario) : scenario.boot, `booting ${name}`);
  return { scenario, sys };
}

/** The default scenario, `x86-64` (spec/x86-64.ts), booted as Linux boots it: read, never changed. */
export const bootedX86 = once(() => bootScenario('x86-64'));
