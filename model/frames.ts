/** Frame runs in the canonical form of the abstract state (spec/state.ts AbstractState.frames). */
import type { Pfn } from '../spec/address.ts';
import type { FrameRun } from '../spec/state.ts';
import { carveRange } from './ranges.ts';

/** Sorted, adjacent runs with identical (use, sensitive, noDirectMap) merged, empty runs dropped. */
export function normalizeFrames(runs: readonly FrameRun[]): FrameRun[] {
  const sorted = [...runs].filter((r) => r.count > 0).sort((a, b) => a.pfn - b.pfn);
  const out: FrameRun[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last !== undefined && last.pfn + last.count === r.pfn && last.use === r.use && last.sensitive === r.sensitive && last.noDirectMap === r.noDirectMap) {
      out[out.length - 1] = { ...last, count: last.count + r.count };
    } else {
      out.push(r);
    }
  }
  return out;
}

/** The runs with noDirectMap = value on [pfn, pfn+count), in canonical form. */
export function setNoDirectMap(runs: readonly FrameRun[], pfn: Pfn, count: number, value: boolean): FrameRun[] {
  const piece = (r: FrameRun, at: Pfn, n: number): FrameRun => ({ ...r, pfn: at, count: n });
  return normalizeFrames(carveRange(runs, (r) => [r.pfn, r.count], pfn, count, piece, (r, at, n) => ({ ...piece(r, at, n), noDirectMap: value })));
}
