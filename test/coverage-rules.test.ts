/**
 * The TLB, cache and obligation rules of the coverage table, each detected on a step
 * built by hand (state before, command, outcome, state after), and the goals a profile
 * can never reach left out of what the summary calls never exercised.
 */
import { describe, expect, it } from 'vitest';
import { X86_64_LAYOUT_4LEVEL as L } from '../spec/address.ts';
import type { Command } from '../spec/commands.ts';
import { kernelScenario } from '../spec/scenario.ts';
import { PAGE_KERNEL, PAGE_KERNEL_RO, type AbstractState, type FlushObligation, type Leaf, type TlbEntry, type WalkCacheEntry } from '../spec/state.ts';
import type { StepOutcome } from '../fuzz/compare.ts';
import { COVERAGE_RULES, RULE_IDS, emptyRuleHistory, reachableRules, stepRules, type RuleHistory } from '../fuzz/coverage-rules.ts';
import { coverageGaps, outcomePairs, possibleOutcomes } from '../fuzz/coverage-goals.ts';
import { emptyCoverage } from '../fuzz/coverage.ts';

const scenario = kernelScenario();
const V = L.vmallocStart + 0x10000;
const DM = L.pageOffset;
const leaf = (vpn: number, pfn: number, size: Leaf['size'] = '4K', prot = PAGE_KERNEL): Leaf => ({ vpn, pfn, size, prot });
const base: AbstractState = {
  config: scenario.config, frames: scenario.frames, roots: [{ id: 0, kind: 'kernel', leaves: [leaf(V, 7), leaf(V + 1, 8)] }],
  tlb: [], pendingFlush: [], tablesInUse: 4, pendingTableFrees: 0,
};
const tlb = (l: Leaf, cpu = 0): TlbEntry => ({ cpu, root: 0, leaf: l });
const cache = (table: WalkCacheEntry['table'], level: WalkCacheEntry['level'] = 1, cpu = 0): WalkCacheEntry => ({ cpu, root: 0, level, vpn: V - (V % 512), table });
const owe = (vpn: number, pages: number, reason = 'protect'): FlushObligation => ({ vpn, pages, reason });
const OK: StepOutcome = { outcome: 'ok' };
const hitOf = (l: Leaf, fromTlb: boolean): StepOutcome => ({ outcome: 'ok', value: { fault: false, fromTlb, translation: { pfn: l.pfn, leaf: l } } });
const access: Command = { op: 'access', cpu: 0, root: 0, vpn: V, kind: 'r', mode: 'kernel' };

function rules(before: Partial<AbstractState>, command: Command, outcome: StepOutcome, after: Partial<AbstractState>, history: RuleHistory = emptyRuleHistory()): string[] {
  return stepRules({ before: { ...base, ...before }, command, outcome, after: { ...base, ...after } }, history);
}

describe('coverage rules', () => {
  it('names every rule once, lifecycles included', () => {
    expect(new Set(RULE_IDS).size).toBe(RULE_IDS.length);
    for (const id of ['tlb-hit', 'tlb-fill', 'stale-tlb-hit', 'smallest-overlapping-tlb-entry-wins', 'walk-through-cached-table', 'walk-through-unlinked-table',
      'range-flush', 'range-flush-over-ceiling', 'local-flush', 'local-flush-keeps-obligation', 'flush-all', 'obligation-added', 'obligation-merged',
      'obligation-partly-discharged', 'pending-table-released', 'split-discharges-owed-flushes', 'noflush-unmap', 'freed-frame-restored',
      'lifecycle-secretmem', 'lifecycle-guest_memfd', 'lifecycle-vm_reset_perms']) expect(RULE_IDS, id).toContain(id);
  });

  it('tells a TLB hit from a fill, a stale hit from a current one, and sees the smallest of overlapping entries win', () => {
    const current = leaf(V, 7);
    expect(rules({ tlb: [tlb(current)] }, access, hitOf(current, true), { tlb: [tlb(current)] })).toEqual(['tlb-hit']);
    expect(rules({}, access, hitOf(current, false), { tlb: [tlb(current)] })).toEqual(['tlb-fill']);
    // The tables moved the page to frame 9; the CPU still caches frame 7 (a missed flush).
    const moved = { roots: [{ id: 0, kind: 'kernel' as const, leaves: [leaf(V, 9)] }] };
    expect(rules({ ...moved, tlb: [tlb(current)] }, access, hitOf(current, true), { ...moved, tlb: [tlb(current)] })).toEqual(['tlb-hit', 'stale-tlb-hit']);
    // A stale 4K entry under a later 2M fill: the 4K one is used.
    const huge = leaf(V - (V % 512), 0, '2M', PAGE_KERNEL_RO);
    const both = [tlb(huge), tlb(current)];
    expect(rules({ tlb: both }, access, hitOf(current, true), { tlb: both })).toEqual(['tlb-hit', 'smallest-overlapping-tlb-entry-wins']);
    // A protection fault on a hit is still a hit (the state before says so).
    expect(rules({ tlb: [tlb(current)] }, { ...access, kind: 'x' }, { outcome: 'ok', value: { fault: 'protection' } }, { tlb: [tlb(current)] })).toEqual(['tlb-hit']);
    // Another CPU's entry is no hit.
    expect(rules({ tlb: [tlb(current, 1)] }, access, hitOf(current, false), { tlb: [tlb(current, 1), tlb(current)] })).toEqual(['tlb-fill']);
  });

  it('sees where a walk starts: a current cached table, an unlinked one, and what it caches', () => {
    const current = leaf(V, 7);
    expect(rules({ walkCache: [cache('current', 2), cache('current', 1)] }, access, hitOf(current, false), { tlb: [tlb(current)], walkCache: [cache('current', 2), cache('current', 1)] }))
      .toEqual(['tlb-fill', 'walk-through-cached-table']);
    // The deepest entry decides: an unlinked PTE table under a current PMD one faults.
    expect(rules({ walkCache: [cache('current', 2), cache('unlinked', 1)] }, access, { outcome: 'ok', value: { fault: 'not-present' } }, { walkCache: [cache('current', 2), cache('unlinked', 1)] }))
      .toEqual(['walk-through-unlinked-table']);
    expect(rules({}, access, hitOf(current, false), { tlb: [tlb(current)], walkCache: [cache('current', 1)] })).toEqual(['tlb-fill', 'walk-cache-fill']);
    // A failed access exercised nothing.
    expect(rules({}, { ...access, cpu: 9 }, { outcome: 'EINVAL', arg: 'cpu' }, {})).toEqual([]);
  });

  it('tells a range flush from one past the ceiling that acts as a full flush, and names flushAll', () => {
    const far = tlb(leaf(V + 5000, 3));
    expect(rules({ tlb: [far] }, { op: 'flush', vpn: V, pages: 33 }, OK, { tlb: [far] })).toEqual(['range-flush']);
    expect(rules({ tlb: [far] }, { op: 'flush', vpn: V, pages: 34 }, OK, { tlb: [] })).toEqual(['range-flush-over-ceiling']);
    // Nothing outside the range to go: not told apart from a range flush.
    expect(rules({ tlb: [tlb(leaf(V, 7))] }, { op: 'flush', vpn: V, pages: 34 }, OK, { tlb: [] })).toEqual([]);
    expect(rules({}, { op: 'flushAll' }, OK, {})).toEqual(['flush-all']);
  });

  it('sees a local flush drop its CPU\'s entries and keep the obligation', () => {
    const mine = tlb(leaf(V, 7));
    const o = owe(V, 1);
    expect(rules({ tlb: [mine], pendingFlush: [o] }, { op: 'flushLocal', cpu: 0, vpn: V, pages: 1 }, OK, { pendingFlush: [o] }))
      .toEqual(['local-flush', 'local-flush-keeps-obligation']);
    expect(rules({ tlb: [tlb(leaf(V, 7), 1)] }, { op: 'flushLocal', cpu: 0, vpn: V, pages: 1 }, OK, { tlb: [tlb(leaf(V, 7), 1)] })).toEqual([]);
  });

  it('follows obligations: added, merged with reasons joined, cut by a flush, discharged by a split\'s flush', () => {
    const inv: Command = { op: 'setDirectMapInvalid', pfn: 5, count: 1, flush: false };
    expect(rules({}, inv, OK, { pendingFlush: [owe(DM + 5, 1, 'setDirectMapInvalid')] })).toEqual(['obligation-added']);
    expect(rules({ pendingFlush: [owe(DM + 5, 1, 'protect')] }, inv, OK, { pendingFlush: [owe(DM + 5, 1, 'protect+setDirectMapInvalid')] })).toEqual(['obligation-merged']);
    expect(rules({ pendingFlush: [owe(DM + 4, 1, 'setDirectMapInvalid')] }, inv, OK, { pendingFlush: [owe(DM + 4, 2, 'setDirectMapInvalid')] }))
      .toEqual(['obligation-added', 'obligation-merged']);
    expect(rules({ pendingFlush: [owe(V, 10)] }, { op: 'flush', vpn: V + 3, pages: 2 }, OK, { pendingFlush: [owe(V, 3), owe(V + 5, 5)] }))
      .toEqual(['range-flush', 'obligation-partly-discharged']);
    // A split of a block elsewhere whose full flush paid what was owed at V.
    expect(rules({ pendingFlush: [owe(V, 10)] }, { op: 'split', root: 0, vpn: DM }, OK, { pendingFlush: [] })).toEqual(['split-discharges-owed-flushes']);
    // Its own range discharged is its own flush, no more.
    expect(rules({ pendingFlush: [owe(DM, 1)] }, { op: 'split', root: 0, vpn: DM }, OK, { pendingFlush: [] })).toEqual([]);
    expect(rules({ pendingTableFrees: 2 }, { op: 'flush', vpn: V, pages: 1 }, OK, { pendingTableFrees: 1 })).toEqual(['range-flush', 'pending-table-released']);
  });

  it('names vunmap_range_noflush, and freeFrames of frames restored to the direct map', () => {
    expect(rules({}, { op: 'unmap', root: 0, vpn: V, pages: 2, flush: false }, OK, { pendingFlush: [owe(V, 2, 'unmap')] })).toEqual(['obligation-added', 'noflush-unmap']);
    expect(rules({}, { op: 'unmap', root: 0, vpn: V, pages: 2 }, OK, {})).toEqual([]);
    const h = emptyRuleHistory();
    const removed = scenario.frames.map((r) => (r.pfn === 0 ? { ...r, noDirectMap: true } : r));
    // Restored: frames 0..1 of the removed run come back; freeing frame 1 then counts, frame 3000 does not.
    rules({ frames: removed }, { op: 'setDirectMapDefault', pfn: 0, count: 2, flush: true }, OK, {}, h);
    expect(rules({}, { op: 'freeFrames', pfn: 3000, count: 1 }, OK, {}, h)).toEqual([]);
    expect(rules({}, { op: 'freeFrames', pfn: 1, count: 1 }, OK, {}, h)).toEqual(['freed-frame-restored']);
  });

  it('recognizes each lifecycle block when its last step succeeds', () => {
    const run = (cs: readonly Command[], ok = true): string[] => {
      const h = emptyRuleHistory();
      let last: string[] = [];
      for (const c of cs) last = rules({}, c, ok ? OK : { outcome: 'ENOMEM', arg: 'tablePool' }, {}, h);
      return last.filter((r) => r.startsWith('lifecycle-'));
    };
    const f = 4096;
    expect(run([{ op: 'allocFrames', pfn: f, count: 1 }, { op: 'setDirectMapInvalid', pfn: f, count: 1, flush: false }, { op: 'flush', vpn: DM + f, pages: 1 }])).toEqual(['lifecycle-secretmem']);
    expect(run([{ op: 'allocFrames', pfn: f, count: 4 }, { op: 'setDirectMapInvalid', pfn: f, count: 4, flush: false }, { op: 'flush', vpn: DM + f, pages: 4 }])).toEqual(['lifecycle-guest_memfd']);
    expect(run([{ op: 'setDirectMapDefault', pfn: f, count: 1, flush: false }, { op: 'freeFrames', pfn: f, count: 1 }])).toEqual(['lifecycle-secretmem-free']);
    expect(run([{ op: 'setDirectMapDefault', pfn: f, count: 4, flush: false }, { op: 'freeFrames', pfn: f, count: 4 }])).toEqual(['lifecycle-guest_memfd-restore']);
    const vfree: Command[] = [
      { op: 'unmap', root: 0, vpn: V, pages: 4, flush: false },
      { op: 'setDirectMapInvalid', pfn: f, count: 4, flush: false },
      { op: 'flush', vpn: DM + f, pages: V + 4 - (DM + f) },
      { op: 'setDirectMapDefault', pfn: f, count: 4, flush: false },
      { op: 'freeFrames', pfn: f, count: 4 },
    ];
    expect(run(vfree)).toEqual(['lifecycle-vm_reset_perms']);
    // A flush that misses the area is no vm_reset_perms.
    expect(run(vfree.map((c) => (c.op === 'flush' ? { ...c, pages: 4 } : c)))).toEqual(['lifecycle-guest_memfd-restore']);
    expect(run(vfree, false)).toEqual([]);
  });
});

describe('coverage goals by profile', () => {
  it('does not list what a profile can never reach as never exercised', () => {
    const strict = coverageGaps(emptyCoverage(), scenario, [], 'strict');
    const linux = coverageGaps(emptyCoverage(), scenario, [], 'linux');
    expect(strict.outcomes).not.toContain('protect→EFAULT');
    expect(strict.outcomes).not.toContain('protect→EBUSY');
    expect(strict.outcomes).toContain('protect→EPERM');
    expect(strict.outcomes).toContain('freeFrames→EPERM');
    expect(linux.outcomes).toContain('protect→EFAULT');
    for (const o of ['map→EPERM', 'protect→EPERM', 'protect→ENOENT', 'unmap→ENOMEM', 'setDirectMapDefault→EEXIST', 'freeFrames→EPERM']) expect(linux.outcomes).not.toContain(o);
    // No profile given: what any profile can reach.
    const any = coverageGaps(emptyCoverage(), scenario, []);
    expect(any.outcomes).toContain('protect→EFAULT');
    expect(any.outcomes).toContain('protect→EPERM');
    expect(strict.rules).toEqual(reachableRules('strict').map((r) => r.id));
    // Strict's map purges what is owed where it maps: no page is ever cached at two sizes.
    expect(strict.rules).not.toContain('smallest-overlapping-tlb-entry-wins');
    expect(linux.rules).toContain('smallest-overlapping-tlb-entry-wins');
    expect(linux.rules).toEqual(reachableRules('linux').map((r) => r.id));
    expect(linux.rules).not.toContain('pending-table-released');
    expect(outcomePairs(emptyCoverage(), 'linux').possible).toBeLessThan(outcomePairs(emptyCoverage(), 'strict').possible);
    expect(possibleOutcomes('strict').find(([op]) => op === 'protect')?.[1]).toEqual(['ok', 'EINVAL', 'ENOENT', 'EPERM', 'ENOMEM']);
  });

  it('lists a rule met as exercised', () => {
    const cov = emptyCoverage();
    for (const r of COVERAGE_RULES) cov.rules[r.id] = 1;
    expect(coverageGaps(cov, scenario, []).rules).toEqual([]);
  });
});
