/**
 * What the impl keeps after an operation that needed much: a 1 GiB vmalloc range mapped as
 * 4K pages (513 tables, a journal of a million words for its unmap) and unmapped again
 * leaves the pool's arrays at their size before it (the free slots at the top given back,
 * the slots still in use keeping their numbers), and the same state as before.
 */
import { describe, expect, it } from 'vitest';
import { PAGES, X86_64_LAYOUT_4LEVEL as L } from '../spec/address.ts';
import { applyCommand } from '../spec/commands.ts';
import { kernelScenario } from '../spec/scenario.ts';
import { PAGE_KERNEL } from '../spec/state.ts';
import { checkTables, createImpl } from '../impl/index.ts';

describe('impl: memory that shrinks', () => {
  it('a 1 GiB 4K map and its unmap leave the pool as it was', () => {
    const scenario = kernelScenario();
    const sys = createImpl(scenario);
    for (const c of scenario.boot) applyCommand(sys, c);
    const pool = sys.tables();
    const before = { state: sys.abstract(), capacity: pool.capacity, highWater: pool.highWater };
    const vm = L.vmallocStart + 4 * PAGES['1G'];
    // Frames [1G, 2G) are data in this scenario.
    expect(sys.map(0, vm, PAGES['1G'], PAGES['1G'], PAGE_KERNEL, { maxPage: '4K' }).ok).toBe(true);
    expect(pool.capacity).toBeGreaterThan(512);
    expect(sys.abstract().roots[0]!.leaves.length).toBe(before.state.roots[0]!.leaves.length + PAGES['1G']);
    expect(sys.unmap(0, vm, PAGES['1G']).ok).toBe(true);
    expect(pool.highWater).toBe(before.highWater);
    expect(pool.capacity).toBe(before.capacity);
    expect(checkTables(sys)).toEqual([]);
    expect(sys.abstract()).toEqual(before.state);
  });
});
