/**
 * Cost against the size of the state: the same small commands on booted machines from
 * the 4 GiB toy to 64 GiB with 10,000 vmalloc areas, model and impl, in one run (tinybench
 * interleaves nothing by itself: every task runs in the same process, one after another,
 * the ratios compare tasks of one run). A command that touches one page must cost the
 * same whatever else is mapped: the ratios against the smallest machine say whether it
 * does. Beside them, what each boot costs and what the impl's memory is per table page.
 */
import type { Bench } from 'tinybench';
import { PAGES, kernelLayout } from '../spec/address.ts';
import { applyCommand, type Command } from '../spec/commands.ts';
import { scenarioNamed, type Scenario } from '../spec/scenario.ts';
import { PAGE_KERNEL } from '../spec/state.ts';
import type { PageTableSystem } from '../spec/system.ts';
import { createModel } from '../model/index.ts';
import { createImpl } from '../impl/index.ts';

/** The machines, smallest first: the ratios are against the first. */
export const SCALE_SCENARIOS = ['kernel', 'x86-64', 'x86-64-64g'] as const;

export interface Machine {
  readonly scenario: string;
  readonly leaves: number;
  readonly tablePages: number;
  readonly bootMs: { readonly model: number; readonly impl: number };
  /** Heap and typed-array bytes a booted impl holds (with --expose-gc; else null). */
  readonly implBytes: number | null;
  readonly implBytesPerTablePage: number | null;
}

const gc = (globalThis as { gc?: () => void }).gc;

function retainedBytes(): number {
  gc!();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

function boot<S extends PageTableSystem>(scenario: Scenario, make: () => S): { sys: S; ms: number } {
  const t0 = performance.now();
  const sys = make();
  for (const c of scenario.boot) {
    const r = applyCommand(sys, c);
    if (!r.ok) throw new Error(`${scenario.name}: boot step ${JSON.stringify(c)} failed: ${r.error.message}`);
  }
  return { sys, ms: performance.now() - t0 };
}

/** One page in a part of the vmalloc area no scenario maps: mapped, made read-only and back, unmapped. */
function onePage(scenario: Scenario): { map: Command; protect: readonly Command[]; unmap: Command } {
  const vpn = kernelLayout(scenario.config.levels).vmallocStart + 12 * PAGES['1G'] + 7;
  const free = scenario.frames.find((r) => r.use === 'free' || r.use === 'data');
  const pfn = free!.pfn + 1;
  return {
    map: { op: 'map', root: 0, vpn, pfn, pages: 1, prot: PAGE_KERNEL, maxPage: '4K' },
    protect: [
      { op: 'protect', vpn, pages: 1, change: { write: false }, alias: false },
      { op: 'protect', vpn, pages: 1, change: { write: true }, alias: false },
    ],
    unmap: { op: 'unmap', root: 0, vpn, pages: 1 },
  };
}

/** Adds the tasks of every machine to `bench`; returns the machines' facts and the ratios to report. */
export function addScaleTasks(bench: Bench): { machines: Machine[]; ratios: (readonly [string, string, string])[] } {
  const machines: Machine[] = [];
  const task = (name: string, sys: string, what: string): string => `${sys} on ${name}: ${what}`;
  for (const name of SCALE_SCENARIOS) {
    const scenario = scenarioNamed(name)!();
    const before = gc === undefined ? 0 : retainedBytes();
    const impl = boot(scenario, () => createImpl(scenario));
    const implBytes = gc === undefined ? null : retainedBytes() - before;
    const model = boot(scenario, () => createModel(scenario));
    const state = impl.sys.abstract();
    machines.push({
      scenario: name,
      leaves: state.roots[0]!.leaves.length,
      tablePages: state.tablesInUse,
      bootMs: { model: model.ms, impl: impl.ms },
      implBytes,
      implBytesPerTablePage: implBytes === null ? null : implBytes / state.tablesInUse,
    });
    const page = onePage(scenario);
    for (const [sysName, sys] of [['impl', impl.sys], ['model', model.sys]] as const) {
      applyCommand(sys, page.map);
      bench.add(task(name, sysName, 'set_memory_ro + rw of one 4K page'), () => {
        for (const c of page.protect) applyCommand(sys, c);
      });
      bench.add(task(name, sysName, 'vunmap + vmap of one 4K page'), () => {
        applyCommand(sys, page.unmap);
        applyCommand(sys, page.map);
      });
    }
  }
  const ratios: (readonly [string, string, string])[] = [];
  const [smallest, ...larger] = SCALE_SCENARIOS;
  for (const name of larger) {
    for (const sys of ['impl', 'model']) {
      for (const what of ['set_memory_ro + rw of one 4K page', 'vunmap + vmap of one 4K page']) {
        ratios.push([`${sys}, ${what}: ${name} / ${smallest}`, task(name, sys, what), task(smallest, sys, what)]);
      }
    }
  }
  return { machines, ratios };
}
