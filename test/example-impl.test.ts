/**
 * examples/simple-page-tables.ts, the implementation README.md tells users to copy, is
 * held (1) to the model by seeded campaigns (test/example-campaign.test.ts, a slow suite of
 * .ci/run, beside its `--impl` campaigns there); (2) on its own, without the model, to every operation's executable
 * postcondition (spec/contracts/post) on random sequences and to the whole invariant
 * catalogue at their end; (3) step by step on hand-written sequences of the operations
 * that need a stale TLB or paging-structure cache to show what they do: unmap without a
 * flush, the walk through an unlinked table, flushLocal, the flush ceiling, allocFrames
 * and freeFrames with their strict refusals. The long runs are the .ci/run steps.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import createSystem from '../examples/simple-page-tables.ts';
import { checkAll } from '../checker/index.ts';
import { commandsArb } from '../fuzz/arbitraries.ts';
import { PAGES, kernelLayout } from '../spec/address.ts';
import { applyCommand, type Command } from '../spec/commands.ts';
import { postcondition } from '../spec/contracts/post/index.ts';
import type { Result } from '../spec/errors.ts';
import { OPERATIONS } from '../spec/operations.ts';
import { SCENARIOS, type Scenario } from '../spec/scenario.ts';
import { PAGE_KERNEL, type AbstractState } from '../spec/state.ts';
import type { PageTableSystem } from '../spec/system.ts';
import { fcParams } from './seed.ts';

/** The example booted on `scenario`, every boot step succeeding. */
function booted(scenario: Scenario): PageTableSystem {
  const sys = createSystem(scenario);
  for (const c of scenario.boot) expect(applyCommand(sys, c).ok, JSON.stringify(c)).toBe(true);
  return sys;
}

/** One step, held to its postcondition in full mode; the result and the states around it. */
function step(sys: PageTableSystem, c: Command): { result: Result<unknown>; before: AbstractState; after: AbstractState } {
  const before = sys.abstract();
  const result = applyCommand(sys, c);
  const after = sys.abstract();
  expect(postcondition(before, c, result, after, 'full').map((v) => v.detail), JSON.stringify(c)).toEqual([]);
  return { result, before, after };
}

const errnoOf = (r: Result<unknown>): string => (r.ok ? 'ok' : `${r.error.errno} ${r.error.arg}${r.error.invariant === undefined ? '' : ` ${r.error.invariant}`}`);

describe('the example on its own: every step meets its postcondition', () => {
  // What is new to the interface must be drawn, or this says nothing about it.
  const NEW_OPS = ['flushLocal', 'allocFrames', 'freeFrames'] as const;

  it.each(['kernel', 'kernel-small-pool'])('on random sequences from the booted %s scenario; the catalogue holds at the end', (name) => {
    const scenario = SCENARIOS[name]!();
    const seen = new Map<string, number>();
    fc.assert(
      fc.property(commandsArb(scenario, { maxCommands: 80, swarm: true }), (commands) => {
        const sys = booted(scenario);
        let before = sys.abstract();
        for (const [k, c] of commands.entries()) {
          const result = applyCommand(sys, c);
          const after = sys.abstract();
          const v = postcondition(before, c, result, after, 'local');
          if (v.length > 0) throw new Error(`step ${k} ${JSON.stringify(c)} => ${errnoOf(result)}: ${v.map((x) => x.detail).join('; ')}`);
          const key = `${c.op === 'unmap' && c.flush === false ? 'unmap noflush' : c.op} ${result.ok ? 'ok' : result.error.errno}`;
          seen.set(key, (seen.get(key) ?? 0) + 1);
          before = after;
        }
        const broken = checkAll(before).map((b) => `${b.id}: ${b.witnesses[0]!.detail}`);
        if (broken.length > 0) throw new Error(`after ${commands.length} commands: ${broken.join('; ')}`);
      }),
      fcParams({ numRuns: 30 }),
    );
    for (const op of NEW_OPS) expect(seen.get(`${op} ok`) ?? 0, `${op} succeeded`).toBeGreaterThan(0);
    expect(seen.get('unmap noflush ok') ?? 0, 'unmap with flush: false succeeded').toBeGreaterThan(0);
    expect(Object.keys(OPERATIONS)).toEqual(expect.arrayContaining([...NEW_OPS]));
  });
});

describe('the example step by step: stale caches, flushes and the frame lifecycle', () => {
  const scenario = SCENARIOS['kernel']!();
  const L = kernelLayout(scenario.config.levels);
  // Boot's 64 4K pages at vmallocStart + 1, frames 100 MiB up: alone in their PTE table.
  const VM = L.vmallocStart + 1;
  const PFN = 100 * 256;
  const read = (cpu: number, vpn: number): Command => ({ op: 'access', cpu, root: 0, vpn, kind: 'r', mode: 'kernel' });

  it('a walk caches its leaf and every table entry above it', () => {
    const sys = booted(scenario);
    const { after, result } = step(sys, read(0, VM + 3));
    expect(result).toMatchObject({ ok: true, value: { fault: false, fromTlb: false } });
    expect(after.tlb).toEqual([{ cpu: 0, root: 0, leaf: expect.objectContaining({ vpn: VM + 3, size: '4K' }) }]);
    // The PTE, PMD and PUD tables of 4-level paging; the PGD is CR3.
    expect(after.walkCache).toEqual([
      { cpu: 0, root: 0, level: 1, vpn: L.vmallocStart, table: 'current' },
      { cpu: 0, root: 0, level: 2, vpn: L.vmallocStart, table: 'current' },
      { cpu: 0, root: 0, level: 3, vpn: L.vmallocStart, table: 'current' },
    ]);
    // Any range flush, wherever it is, empties every paging-structure cache (INVLPG); the TLB entry elsewhere stays.
    const flushed = step(sys, { op: 'flush', vpn: L.cpuEntryArea + 1, pages: 1 }).after;
    expect(flushed.walkCache ?? []).toEqual([]);
    expect(flushed.tlb).toHaveLength(1);
  });

  it('unmap with flush: false owes the flush, keeps the tables pending and the walk through them finds nothing', () => {
    const sys = booted(scenario);
    step(sys, read(0, VM));
    const { result, before, after } = step(sys, { op: 'unmap', root: 0, vpn: VM, pages: 64, flush: false });
    expect(result.ok).toBe(true);
    // The stale TLB entry stays, owed; the emptied PTE table waits for a flush and is unlinked in cpu 0's cache.
    expect(after.tlb).toHaveLength(1);
    expect(after.pendingFlush).toEqual([{ vpn: VM, pages: 64, reason: 'unmap' }]);
    expect(after.pendingTableFrees).toBe(before.pendingTableFrees + 1);
    expect(after.walkCache?.find((w) => w.level === 1)?.table).toBe('unlinked');
    // cpu 0 still hits its stale entry; at another page its walk starts in the unlinked table.
    expect(step(sys, read(0, VM)).result).toMatchObject({ ok: true, value: { fault: false, fromTlb: true } });
    expect(step(sys, read(0, VM + 5)).result).toEqual({ ok: true, value: { fault: 'not-present' } });
    expect(step(sys, read(1, VM + 5)).result).toEqual({ ok: true, value: { fault: 'not-present' } });
    // A frame some TLB still caches outside the direct map cannot be freed (D7).
    expect(errnoOf(step(sys, { op: 'freeFrames', pfn: PFN, count: 64 }).result)).toBe('EPERM pfn D7');
    // flushLocal clears cpu 0 only: the debt and the pending table stay, as the other CPUs may cache them.
    const local = step(sys, { op: 'flushLocal', cpu: 0, vpn: VM, pages: 64 }).after;
    expect(local.tlb).toEqual([]);
    expect(local.walkCache ?? []).toEqual([]);
    expect(local.pendingFlush).toEqual(after.pendingFlush);
    expect(local.pendingTableFrees).toBe(after.pendingTableFrees);
    // Now nothing caches the frames: they can go back, and come out again.
    expect(step(sys, { op: 'freeFrames', pfn: PFN, count: 64 }).result.ok).toBe(true);
    expect(errnoOf(step(sys, { op: 'freeFrames', pfn: PFN, count: 1 }).result)).toBe('ENOENT pfn');
    expect(step(sys, { op: 'allocFrames', pfn: PFN, count: 64 }).result.ok).toBe(true);
    expect(errnoOf(step(sys, { op: 'allocFrames', pfn: PFN + 63, count: 2 }).result)).toBe('EBUSY pfn');
    // 64 pages is past the ceiling of 33: a full flush, which pays every debt and frees every pending table.
    const full = step(sys, { op: 'flush', vpn: VM, pages: 64 }).after;
    expect(full.pendingFlush).toEqual([]);
    expect(full.pendingTableFrees).toBe(0);
  });

  it('a flushing operation past the ceiling flushes everything, one within it only its ranges', () => {
    const sys = booted(scenario);
    const elsewhere = L.vmallocStart + 8 * PAGES['1G'];
    step(sys, { op: 'map', root: 0, vpn: elsewhere, pfn: PFN + 512, pages: 4, prot: PAGE_KERNEL, maxPage: '4K' });
    step(sys, { op: 'unmap', root: 0, vpn: elsewhere, pages: 4, flush: false });
    step(sys, read(1, L.pageOffset + PFN));
    // 33 pages: a range flush; the debt far away and cpu 1's direct-map entry stay.
    const within = step(sys, { op: 'unmap', root: 0, vpn: VM, pages: 33 }).after;
    expect(within.pendingFlush).toEqual([{ vpn: elsewhere, pages: 4, reason: 'unmap' }]);
    expect(within.tlb).toHaveLength(1);
    // The other 31 pages are a range flush too, though they empty the PTE table; 34 frames of
    // set_direct_map_invalid (frames at 200 MiB, mapped only by the direct map) are a full flush.
    expect(step(sys, { op: 'unmap', root: 0, vpn: VM + 33, pages: 31 }).after.pendingFlush).toHaveLength(1);
    const past = step(sys, { op: 'setDirectMapInvalid', pfn: 200 * 256, count: 34, flush: true }).after;
    expect(past.pendingFlush).toEqual([]);
    expect(past.pendingTableFrees).toBe(0);
    expect(past.tlb).toEqual([]);
  });

  it('strict refuses to free a frame still mapped elsewhere (D4) or removed from the direct map (D6)', () => {
    const sys = booted(scenario);
    const elsewhere = L.vmallocStart + 8 * PAGES['1G'];
    step(sys, { op: 'map', root: 0, vpn: elsewhere, pfn: PFN + 512, pages: 1, prot: PAGE_KERNEL });
    expect(errnoOf(step(sys, { op: 'freeFrames', pfn: PFN + 512, count: 1 }).result)).toBe('EPERM pfn D4');
    step(sys, { op: 'setDirectMapInvalid', pfn: PFN + 600, count: 1, flush: true });
    expect(errnoOf(step(sys, { op: 'freeFrames', pfn: PFN + 600, count: 1 }).result)).toBe('EPERM pfn D6');
    step(sys, { op: 'setDirectMapDefault', pfn: PFN + 600, count: 1, flush: true });
    expect(step(sys, { op: 'freeFrames', pfn: PFN + 600, count: 1 }).result.ok).toBe(true);
    // EINVAL before anything else, as for set_direct_map_*.
    expect(errnoOf(step(sys, { op: 'allocFrames', pfn: scenario.config.frames, count: 1 }).result)).toBe('EINVAL pfn');
    expect(errnoOf(step(sys, { op: 'freeFrames', pfn: 0, count: 0 }).result)).toBe('EINVAL count');
    expect(errnoOf(step(sys, { op: 'flushLocal', cpu: scenario.config.cpus, vpn: VM, pages: 1 }).result)).toBe('EINVAL cpu');
  });
});
