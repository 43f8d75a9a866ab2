/**
 * The benchmark: the impl against the model on the same operations, and the impl against
 * the raw typed-array work it cannot avoid (writing the same number of 64-bit entries into
 * a Uint32Array), in one run. `runBench` returns the tinybench run and its report (each
 * task's mean, and the ratios); bench/run.ts prints them.
 */
import { Bench, type BenchOptions } from 'tinybench';
import { PAGES, X86_64_LAYOUT_4LEVEL as L } from '../spec/address.ts';
import { applyCommand, type Command } from '../spec/commands.ts';
import { kernelScenario } from '../spec/scenario.ts';
import { PAGE_KERNEL } from '../spec/state.ts';
import type { PageTableSystem } from '../spec/system.ts';
import { createModel } from '../model/index.ts';
import { createImpl } from '../impl/index.ts';
import type { BenchReport } from './json.ts';
import { addScaleTasks } from './scale.ts';

const scenario = kernelScenario();

function booted<S extends PageTableSystem>(make: () => S): S {
  const sys = make();
  for (const c of scenario.boot) applyCommand(sys, c);
  return sys;
}

/**
 * A mix of every core operation that ends where it started (so one system serves every
 * iteration): vmap areas of 4K and 2M pages, set_memory_ro/rw with the alias, splits and
 * collapses, accesses through the TLB, set_direct_map_invalid/default, vunmap, flushes.
 */
function opMix(): Command[] {
  const out: Command[] = [];
  const vm = L.vmallocStart + 8 * PAGES['1G'];
  for (let i = 0; i < 8; i++) {
    const vpn = vm + i * 2 * PAGES['2M'];
    const pfn = 200 * 256 + i * PAGES['2M'];
    out.push({ op: 'map', root: 0, vpn, pfn, pages: PAGES['2M'], prot: PAGE_KERNEL, maxPage: i % 2 === 0 ? '4K' : '2M' });
    out.push({ op: 'protect', vpn: vpn + 3, pages: 100, change: { write: false }, alias: true });
    out.push({ op: 'access', cpu: i % 2, root: 0, vpn: vpn + 7, kind: 'r', mode: 'kernel' });
    out.push({ op: 'protect', vpn: vpn + 3, pages: 100, change: { write: true }, alias: true });
    if (i % 2 === 1) out.push({ op: 'split', root: 0, vpn });
    out.push({ op: 'collapse', root: 0, vpn, size: '2M' });
    out.push({ op: 'translate', root: 0, vpn: vpn + 9 });
  }
  out.push({ op: 'setDirectMapInvalid', pfn: 300 * 256, count: 16, flush: false });
  out.push({ op: 'setDirectMapDefault', pfn: 300 * 256, count: 16, flush: true });
  out.push({ op: 'unmap', root: 0, vpn: vm, pages: 16 * PAGES['2M'] });
  out.push({ op: 'flushAll' });
  return out;
}

function runAll(sys: PageTableSystem, cs: readonly Command[]): void {
  for (const c of cs) applyCommand(sys, c);
}

/** How many entries the impl writes for `cs` (counted once, through the pool's writer). */
function entryWrites(cs: readonly Command[]): number {
  const impl = booted(() => createImpl(scenario));
  const before = impl.tables().writes;
  runAll(impl, cs);
  return impl.tables().writes - before;
}

/** The floor: `n` 64-bit entry writes (two words each) into one table-sized Uint32Array. */
function rawWrites(words: Uint32Array, n: number): void {
  for (let i = 0; i < n; i++) {
    const off = (i & 511) * 2;
    words[off] = (i << 12) | 0x63;
    words[off + 1] = 0x80000000;
  }
}

/** `options` are tinybench's (the default: 400 ms per task); tests pass a tiny budget. */
export async function runBench(options: BenchOptions = { time: 400 }): Promise<{ readonly bench: Bench; readonly report: BenchReport }> {
  const mix = opMix();
  const mixWrites = entryWrites(mix);
  const oneGiB = { vpn: L.pageOffset + PAGES['1G'], pages: PAGES['1G'] };
  const vmap4k: Command[] = [
    { op: 'map', root: 0, vpn: L.vmallocStart + 3 * PAGES['1G'], pfn: 400 * 256, pages: 512, prot: PAGE_KERNEL, maxPage: '4K' },
    { op: 'unmap', root: 0, vpn: L.vmallocStart + 3 * PAGES['1G'], pages: 512 },
  ];
  const vmapWrites = entryWrites(vmap4k);

  const systems = { impl: booted(() => createImpl(scenario)), model: booted(() => createModel(scenario)) };
  const words = new Uint32Array(1024);
  const task = {
    mix: (name: string) => `${name}: op mix (${mix.length} commands)`,
    mixRaw: `raw: ${mixWrites} entry writes (what the impl writes for the op mix)`,
    vmap: (name: string) => `${name}: vmap + vunmap 512 4K pages`,
    vmapRaw: `raw: ${vmapWrites} entry writes (what the impl writes for vmap + vunmap)`,
    protect: (name: string) => `${name}: set_memory_ro + rw of a 1G direct-map leaf`,
  };

  const bench = new Bench({ name: 'ptspec: impl vs model vs raw typed-array writes', ...options });
  for (const [name, sys] of Object.entries(systems)) bench.add(task.mix(name), () => runAll(sys, mix));
  bench.add(task.mixRaw, () => rawWrites(words, mixWrites));
  for (const [name, sys] of Object.entries(systems)) bench.add(task.vmap(name), () => runAll(sys, vmap4k));
  bench.add(task.vmapRaw, () => rawWrites(words, vmapWrites));
  for (const [name, sys] of Object.entries(systems)) {
    bench.add(task.protect(name), () => {
      sys.protect(oneGiB.vpn, oneGiB.pages, { write: false });
      sys.protect(oneGiB.vpn, oneGiB.pages, { write: true });
    });
  }
  // The impl walks its tables again only after an entry write; touch() forces that walk.
  const implTables = booted(() => createImpl(scenario));
  bench.add('impl: abstract() of the booted kernel, full table walk', () => {
    implTables.tables().touch();
    implTables.abstract();
  });
  bench.add('impl: abstract() with no entry written since the last call', () => implTables.abstract());
  bench.add('model: abstract() (the model is the abstract state)', () => systems.model.abstract());
  const scale = addScaleTasks(bench);

  await bench.run();

  const mean = (name: string): { readonly meanMs: number; readonly samples: number } => {
    const r = bench.getTask(name)?.result;
    if (r === undefined || !('latency' in r)) throw new Error(`benchmark task ${JSON.stringify(name)} has no result (${r?.state ?? 'not added'})`);
    return { meanMs: r.latency.mean, samples: r.latency.samplesCount };
  };
  const ratios: readonly (readonly [string, string, string])[] = [
    ['model / impl, op mix', task.mix('model'), task.mix('impl')],
    ['impl / raw writes, op mix', task.mix('impl'), task.mixRaw],
    ['model / impl, vmap 512 4K pages', task.vmap('model'), task.vmap('impl')],
    ['impl / raw writes, vmap', task.vmap('impl'), task.vmapRaw],
    ['model / impl, protect 1G leaf', task.protect('model'), task.protect('impl')],
    ...scale.ratios,
  ];
  const report: BenchReport = {
    name: bench.name ?? '',
    tasks: bench.tasks.map((x) => ({ name: x.name, ...mean(x.name) })),
    ratios: ratios.map(([name, numerator, denominator]) => ({ name, numerator, denominator, ratio: mean(numerator).meanMs / mean(denominator).meanMs })),
    machines: scale.machines,
  };
  return { bench, report };
}
