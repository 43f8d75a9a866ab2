/**
 * `npm run bench`: the impl against the model on the same operations, and the impl
 * against the raw typed-array work it cannot avoid (writing the same number of 64-bit
 * entries into a Uint32Array), in one run, printed as one table. Timings are compared
 * within the run, never asserted (bench/README.md).
 */
import { Bench } from 'tinybench';
import { PAGES, X86_64_LAYOUT_4LEVEL as L } from '../spec/address.ts';
import { applyCommand, type Command } from '../spec/commands.ts';
import { kernelScenario } from '../spec/scenario.ts';
import { PAGE_KERNEL } from '../spec/state.ts';
import type { PageTableSystem } from '../spec/system.ts';
import { createModel } from '../model/index.ts';
import { createImpl } from '../impl/index.ts';

const scenario = kernelScenario();

function booted(make: () => PageTableSystem): PageTableSystem {
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
  const impl = createImpl(scenario);
  for (const c of scenario.boot) applyCommand(impl, c);
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

const bench = new Bench({ name: 'ptspec: impl vs model vs raw typed-array writes', time: 400 });
for (const [name, sys] of Object.entries(systems)) {
  bench.add(`${name}: op mix (${mix.length} commands)`, () => runAll(sys, mix));
}
bench.add(`raw: ${mixWrites} entry writes (what the impl writes for the op mix)`, () => rawWrites(words, mixWrites));
for (const [name, sys] of Object.entries(systems)) {
  bench.add(`${name}: vmap + vunmap 512 4K pages`, () => runAll(sys, vmap4k));
}
bench.add(`raw: ${vmapWrites} entry writes (what the impl writes for vmap + vunmap)`, () => rawWrites(words, vmapWrites));
for (const [name, sys] of Object.entries(systems)) {
  bench.add(`${name}: set_memory_ro + rw of a 1G direct-map leaf`, () => {
    sys.protect(oneGiB.vpn, oneGiB.pages, { write: false });
    sys.protect(oneGiB.vpn, oneGiB.pages, { write: true });
  });
}
// The impl walks its tables again only after an entry write; touch() forces that walk.
const implTables = createImpl(scenario);
for (const c of scenario.boot) applyCommand(implTables, c);
bench.add('impl: abstract() of the booted kernel, full table walk', () => {
  implTables.tables().touch();
  implTables.abstract();
});
bench.add('impl: abstract() with no entry written since the last call', () => implTables.abstract());
bench.add('model: abstract() (the model is the abstract state)', () => systems.model.abstract());

await bench.run();
console.log(bench.name);
console.table(bench.table());

const mean = (name: string): number => {
  const r = bench.getTask(name)?.result;
  return r !== undefined && 'latency' in r ? r.latency.mean : NaN;
};
const ratio = (a: string, b: string): string => (mean(a) / mean(b)).toFixed(1);
console.log(`model / impl, op mix:            ${ratio(`model: op mix (${mix.length} commands)`, `impl: op mix (${mix.length} commands)`)}x`);
console.log(`impl / raw writes, op mix:       ${ratio(`impl: op mix (${mix.length} commands)`, `raw: ${mixWrites} entry writes (what the impl writes for the op mix)`)}x`);
console.log(`model / impl, vmap 512 4K pages: ${ratio('model: vmap + vunmap 512 4K pages', 'impl: vmap + vunmap 512 4K pages')}x`);
console.log(`impl / raw writes, vmap:         ${ratio('impl: vmap + vunmap 512 4K pages', `raw: ${vmapWrites} entry writes (what the impl writes for vmap + vunmap)`)}x`);
console.log(`model / impl, protect 1G leaf:   ${ratio('model: set_memory_ro + rw of a 1G direct-map leaf', 'impl: set_memory_ro + rw of a 1G direct-map leaf')}x`);
