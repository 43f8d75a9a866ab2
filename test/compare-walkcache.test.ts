/**
 * The paging-structure caches are a global part of the state that refinement compares
 * like the TLB: absent is none, order does not matter, and a mismatch is filed under the
 * part `walkCache` with both sides' entry.
 */
import { describe, expect, it } from 'vitest';
import { X86_64_LAYOUT_4LEVEL as L } from '../spec/address.ts';
import { kernelScenario } from '../spec/scenario.ts';
import type { AbstractState, WalkCacheEntry } from '../spec/state.ts';
import { compareStates, compareWalkCache } from '../fuzz/compare.ts';

const scenario = kernelScenario();
const state: AbstractState = {
  config: scenario.config, frames: scenario.frames, roots: [{ id: 0, kind: 'kernel', leaves: [] }],
  tlb: [], pendingFlush: [], tablesInUse: 1, pendingTableFrees: 0,
};
const V = L.vmallocStart;
const pte: WalkCacheEntry = { cpu: 0, root: 0, level: 1, vpn: V, table: 'current' };
const pmd: WalkCacheEntry = { cpu: 0, root: 0, level: 2, vpn: V, table: 'current' };
const other: WalkCacheEntry = { cpu: 1, root: 0, level: 1, vpn: V, table: 'current' };

describe('compareWalkCache', () => {
  it('reads an absent cache as empty and ignores order', () => {
    expect(compareWalkCache(undefined, [])).toBeNull();
    expect(compareWalkCache([], undefined)).toBeNull();
    expect(compareWalkCache([pte, pmd, other], [other, pmd, pte])).toBeNull();
    expect(compareStates({ ...state, walkCache: [pmd, pte] }, { ...state, walkCache: [pte, pmd] }, null)).toBeNull();
    expect(compareStates(state, { ...state, walkCache: [] }, [])).toBeNull();
  });

  it('files a missing, extra or differently-stated entry under walkCache, naming both sides', () => {
    const missing = compareStates({ ...state, walkCache: [pte] }, state, []);
    expect(missing?.part).toBe('walkCache');
    expect(missing?.detail).toBe('paging-structure caches differ: entry #0: model caches cpu 0 root 0: the level-1 table at [0xffffc90000000000, +512 pages) (current); impl caches nothing');
    expect(missing?.witnesses[0]).toMatchObject({ root: 0, vpn: V, pages: 512 });
    const unlinked = compareWalkCache([pte], [{ ...pte, table: 'unlinked' }]);
    expect(unlinked?.part).toBe('walkCache');
    expect(unlinked?.detail).toMatch(/model caches .*\(current\); impl caches .*\(unlinked\)$/);
    expect(compareWalkCache([pte], [{ ...pte, cpu: 1 }])?.detail).toMatch(/model caches cpu 0 .*impl caches cpu 1 /);
    expect(compareWalkCache([pmd], [{ ...pmd, level: 3 }])?.witnesses[0]?.pages).toBe(262144);
  });

  it('compares the caches after the TLB and before the obligations', () => {
    const tlb = { cpu: 0, root: 0, leaf: { vpn: V, pfn: 1, size: '4K' as const, prot: { write: true, user: false, execKernel: false, execUser: false, global: true, cache: 'WB' as const } } };
    expect(compareStates({ ...state, walkCache: [pte] }, { ...state, tlb: [tlb] }, [])?.part).toBe('tlb');
    expect(compareStates({ ...state, walkCache: [pte], pendingFlush: [{ vpn: V, pages: 1, reason: 'unmap' }] }, state, [])?.part).toBe('walkCache');
  });
});
