/**
 * Cost against the size of the state: the same one-page commands on booted machines from
 * the 4 GiB toy to 64 GiB with 10,000 vmalloc areas, model and impl. A command that
 * touches one page must cost the same whatever else is mapped: the ratios against the
 * smallest machine say whether it does (1x: it does not grow). Beside them, what each
 * boot costs and what the impl holds in memory: per table page, and per mapped GiB at
 * 64 GiB of RAM.
 */
import { PAGES, PAGE_SIZE, kernelLayout } from '../spec/address.ts';
import { scenarioNamed, type Scenario } from '../spec/scenario.ts';
import { INIT_MM, PAGE_KERNEL } from '../spec/state.ts';
import type { PageTableSystem } from '../spec/system.ts';
import { createModel } from '../model/index.ts';
import { createImpl } from '../impl/index.ts';
import type { Machine } from './json.ts';
import { booted, must } from './machine.ts';
import { taskSide, type Group, type Side } from './runner.ts';

/** The machines, smallest first: the ratios are against the first. */
export const SCALE_SCENARIOS = ['kernel', 'x86-64', 'x86-64-64g'] as const;
/** The machine the memory figures are of. */
export const MEMORY_SCENARIO = 'x86-64-64g';

export const scaleLabel = (scenario: string, sys: 'impl' | 'model', what: ScaleCommand): string => `${sys} on ${scenario}: ${what}`;
export type ScaleCommand = 'set_memory_ro of one 4K page' | 'vunmap of one 4K page';
export const SCALE_COMMANDS: readonly ScaleCommand[] = ['set_memory_ro of one 4K page', 'vunmap of one 4K page'];

export const MEMORY_LABELS = { perTablePage: 'impl bytes per table page', perMappedGiB: 'impl bytes per mapped GiB' } as const;

const gc = (globalThis as { gc?: () => void }).gc;
/** Booted impls held at once for the memory figure. */
const KEPT_IMPLS = 4;

/** Heap and typed-array bytes still reachable, after a full GC (twice: the first may only free what the second collects). */
function retainedBytes(gcNow: () => void): number {
  gcNow();
  gcNow();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

function timedBoot<S extends PageTableSystem>(scenario: Scenario, make: () => S): { readonly sys: S; readonly ms: number } {
  const t0 = performance.now();
  const sys = booted(scenario, make);
  return { sys, ms: performance.now() - t0 };
}

/** One page in a part of the vmalloc area no scenario maps, onto the scenario's first data frame (strict maps no free frame there, D4). */
function onePageSides(scenario: Scenario, name: 'impl' | 'model', sys: PageTableSystem): Side[] {
  const vpn = kernelLayout(scenario.config.levels).vmallocStart + 12 * PAGES['1G'] + 7;
  const data = scenario.frames.find((r) => r.use === 'data' && r.count > 1);
  if (data === undefined) throw new Error(`${scenario.name} has no data frames to map`);
  const map = (): void => must(sys.map(INIT_MM, vpn, data.pfn + 1, 1, PAGE_KERNEL, { maxPage: '4K' }), `${name} on ${scenario.name}: vmap of one page`);
  map();
  const protect = (write: boolean) => (): void => must(sys.protect(vpn, 1, { write }, { alias: false }), `${name} on ${scenario.name}: set_memory_${write ? 'rw' : 'ro'}`);
  return [
    taskSide(scaleLabel(scenario.name, name, 'set_memory_ro of one 4K page'), { fn: protect(false), afterEach: protect(true) }),
    taskSide(scaleLabel(scenario.name, name, 'vunmap of one 4K page'), {
      fn: () => must(sys.unmap(INIT_MM, vpn, 1), `${name} on ${scenario.name}: vunmap of one page`),
      afterEach: map,
    }),
  ];
}

export const SCALE: Group = {
  name: 'machines',
  rounds: 5,
  async setup() {
    const machines: Machine[] = [];
    const sides: Side[] = [];
    let memory: { perTablePage: number | null; perMappedGiB: number | null } = { perTablePage: null, perMappedGiB: null };
    for (const name of SCALE_SCENARIOS) {
      const scenario = scenarioNamed(name)!();
      // The impl first, alone between two GCs: what it holds is the difference, over
      // KEPT_IMPLS booted impls held at once, so that what a GC frees of the code and the
      // bench's own garbage (bytecode flushing: a few hundred KB) is not read as the impl's.
      const before = gc === undefined ? 0 : retainedBytes(gc);
      const impl = timedBoot(scenario, () => createImpl(scenario));
      const kept = Array.from({ length: KEPT_IMPLS - 1 }, () => timedBoot(scenario, () => createImpl(scenario)).sys);
      const implBytes = gc === undefined ? null : (retainedBytes(gc) - before) / (kept.length + 1);
      const model = timedBoot(scenario, () => createModel(scenario));
      const state = impl.sys.abstract();
      const leaves = state.roots.find((r) => r.id === INIT_MM)!.leaves;
      const mappedGiB = leaves.reduce((n, l) => n + PAGES[l.size], 0) * PAGE_SIZE / 2 ** 30;
      machines.push({
        scenario: name,
        leaves: leaves.length,
        tablePages: state.tablesInUse,
        mappedGiB,
        bootMs: { model: model.ms, impl: impl.ms },
        implBytes,
        implBytesPerTablePage: implBytes === null ? null : implBytes / state.tablesInUse,
      });
      if (name === MEMORY_SCENARIO && implBytes !== null) memory = { perTablePage: implBytes / state.tablesInUse, perMappedGiB: implBytes / mappedGiB };
      sides.push(...onePageSides(scenario, 'impl', impl.sys), ...onePageSides(scenario, 'model', model.sys));
    }
    return { sides, machines, values: { [MEMORY_LABELS.perTablePage]: memory.perTablePage, [MEMORY_LABELS.perMappedGiB]: memory.perMappedGiB } };
  },
};
