/**
 * A failure's detail names the part that differs, with both values: for an outcome, the
 * result, the error's argument, the EPERM's invariant or the returned value; for the
 * abstract state, leaves, TLB, obligations, frames, table counts or roots.
 */
import { describe, expect, it } from 'vitest';
import { PAGE_KERNEL } from '../spec/state.ts';
import { compareStates, outcomeDifference, type StepOutcome } from '../fuzz/compare.ts';
import { bootedState, DM, leaf, replaceLeafAt } from './states.ts';

const einval = (arg: string): StepOutcome => ({ outcome: 'EINVAL', arg, message: 'bad' });

describe('outcomeDifference', () => {
  it('names the errno, the argument, the invariant or the value, with both sides', () => {
    expect(outcomeDifference(einval('vpn'), einval('pages'))).toBe("the error's argument differs: model EINVAL naming vpn, impl EINVAL naming pages");
    expect(outcomeDifference({ outcome: 'ok' }, { outcome: 'ENOMEM', arg: 'pool' })).toBe('the result differs: model ok, impl ENOMEM naming pool');
    expect(outcomeDifference({ outcome: 'EPERM', arg: 'prot', invariant: 'P2' }, { outcome: 'EPERM', arg: 'prot', invariant: 'P1' }))
      .toBe("the EPERM's invariant differs: model EPERM naming prot refusing P2, impl EPERM naming prot refusing P1");
    const l = leaf(DM, 0, '4K', PAGE_KERNEL);
    const at = (pfn: number): StepOutcome => ({ outcome: 'ok', value: { pfn, leaf: l } });
    const via = 'via 4K 0xffff888000000000 -> 0x0 RW GLB NX WB';
    expect(outcomeDifference(at(0), at(1))).toBe(`the returned value differs: model ok -> 0x0 ${via}, impl ok -> 0x1000 ${via}`);
  });
});

describe('compareStates details start with the part of the state, then both values', () => {
  const s = bootedState();
  const cases: [string, typeof s, RegExp][] = [
    ['leaves', replaceLeafAt(s, DM, (l) => ({ ...l, prot: { ...l.prot, write: false } })), /^leaves differ in root 0: model has .*; impl has /],
    ['table counts', { ...s, tablesInUse: s.tablesInUse + 1 }, /^page-table counts differ: model: \d+ tables in use, 0 awaiting a flush; impl: \d+ in use/],
    ['frames', { ...s, frames: s.frames.map((f, k) => (k === 0 ? { ...f, sensitive: !f.sensitive } : f)) }, /^frame runs differ: run #0: model .*; impl /],
    ['TLB', { ...s, tlb: [{ cpu: 0, root: 0, leaf: s.roots[0]!.leaves[0]! }] }, /^TLB contents differ: entry #0: model caches nothing; impl caches cpu 0 root 0: /],
    ['obligations', { ...s, pendingFlush: [{ vpn: DM, pages: 1, reason: 'protect' }] }, /^pending flush obligations differ: obligation #0: model owes nothing; impl owes \S+/],
    ['roots', { ...s, roots: [] }, /^roots differ: model roots \[0:kernel\]; impl roots \[\]/],
  ];
  for (const [part, impl, detail] of cases) {
    it(part, () => expect(compareStates(s, impl, null)?.detail).toMatch(detail));
  }
});
