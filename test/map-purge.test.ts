/**
 * A map over pages still owed a flush (spec/contracts/map.ts): strict flushes what is owed
 * there first, as vmalloc reuses a lazily freed area only after purge_vmap_area_lazy, so a
 * huge leaf is never filled beside a stale small translation of one of its pages (L3, the
 * TLB application note); linux's vmap flushes nothing, and the same sequence is an L3
 * finding there. Both systems, postconditions and invariants, through runTrace.
 */
import { describe, expect, it } from 'vitest';
import { runTrace } from '../fuzz/check.ts';
import { builtinTarget } from '../fuzz/defaults.ts';
import { X86_64_LAYOUT_4LEVEL as L, PAGES } from '../spec/address.ts';
import { applyCommand, type Command } from '../spec/commands.ts';
import { kernelScenario } from '../spec/scenario.ts';
import { PAGE_KERNEL } from '../spec/state.ts';

const VM = L.vmallocStart + 4 * PAGES['1G'];
const read = (vpn: number): Command => ({ op: 'access', cpu: 0, root: 0, vpn, kind: 'r', mode: 'kernel' });
/** A 4K page cached on cpu 0, lazily unmapped, the caches emptied elsewhere, then a 2M leaf over its block and two reads. */
const COMMANDS: readonly Command[] = [
  { op: 'map', root: 0, vpn: VM + 7, pfn: 30000, pages: 1, prot: PAGE_KERNEL, maxPage: '4K' },
  read(VM + 7),
  { op: 'unmap', root: 0, vpn: VM + 7, pages: 1, flush: false },
  { op: 'flush', vpn: L.pageOffset + 5, pages: 1 },
  { op: 'map', root: 0, vpn: VM, pfn: 59 * 512, pages: 512, prot: PAGE_KERNEL },
  read(VM + 9),
  read(VM + 7),
];

describe('a map over pages owed a flush', () => {
  it('strict: flushes the owed range first; no stale 4K entry beside the 2M fill, the last read walks', () => {
    const target = builtinTarget(kernelScenario());
    expect(runTrace({ ...target, commands: COMMANDS }).failure).toBeNull();
    const sys = target.makeImpl(kernelScenario());
    for (const c of kernelScenario().boot) applyCommand(sys, c);
    const results = COMMANDS.map((c) => applyCommand(sys, c));
    expect(sys.abstract().pendingFlush).toEqual([]);
    expect(results.at(-1)).toMatchObject({ ok: true, value: { fault: false, fromTlb: true, translation: { leaf: { vpn: VM, size: '2M' } } } });
  });

  it('linux: vmap flushes nothing of it, and the 4K and 2M translations of one page disagree: an L3 finding', () => {
    const r = runTrace({ ...builtinTarget(kernelScenario()), profile: 'linux', commands: COMMANDS });
    expect(r.failure).toBeNull();
    expect(r.findings?.map((f) => f.cause)).toEqual(['L3 access in vmalloc']);
  });
});
