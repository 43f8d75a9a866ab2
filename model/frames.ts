/** Frame runs in the canonical form of the abstract state (spec/state.ts AbstractState.frames). */
import type { Pfn } from '../spec/address.ts';
import { sameFrameFacts, type FrameRun, type FrameUse } from '../spec/state.ts';
import { carveRange } from './ranges.ts';

/** Sorted, adjacent runs stating the same facts (sameFrameFacts) merged, empty runs dropped. */
export function normalizeFrames(runs: readonly FrameRun[]): FrameRun[] {
  const sorted = [...runs].filter((r) => r.count > 0).sort((a, b) => a.pfn - b.pfn);
  const out: FrameRun[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last !== undefined && last.pfn + last.count === r.pfn && sameFrameFacts(last, r)) {
      out[out.length - 1] = { ...last, count: last.count + r.count };
    } else {
      out.push(r);
    }
  }
  return out;
}

/** The runs with `set` applied to the part of each run inside [pfn, pfn+count), in canonical form. */
export function setFacts(runs: readonly FrameRun[], pfn: Pfn, count: number, set: (r: FrameRun) => FrameRun): FrameRun[] {
  const piece = (r: FrameRun, at: Pfn, n: number): FrameRun => ({ ...r, pfn: at, count: n });
  return normalizeFrames(carveRange(runs, (r) => [r.pfn, r.count], pfn, count, piece, (r, at, n) => set(piece(r, at, n))));
}

/** The runs with noDirectMap = value on [pfn, pfn+count), in canonical form. */
export function setNoDirectMap(runs: readonly FrameRun[], pfn: Pfn, count: number, value: boolean): FrameRun[] {
  return setFacts(runs, pfn, count, (r) => ({ ...r, noDirectMap: value }));
}

/**
 * The runs with memtype `value` on [pfn, pfn+count) (reserve_ram_pages_type), or with
 * none (free_ram_pages_type: back to WB). No memtype is no key at all, so a freed run is
 * deep-equal to one never reserved and merges with it.
 */
export function setMemtype(runs: readonly FrameRun[], pfn: Pfn, count: number, value: FrameRun['memtype']): FrameRun[] {
  return setFacts(runs, pfn, count, (r) => {
    const { memtype: _old, ...rest } = r;
    return value === undefined ? rest : { ...rest, memtype: value };
  });
}

/** Whether some frame of [pfn, pfn+count) has a memtype reserved (one not WB). */
export function hasMemtype(runs: readonly FrameRun[], pfn: Pfn, count: number): boolean {
  return runs.some((r) => r.memtype !== undefined && r.pfn < pfn + count && pfn < r.pfn + r.count);
}

/** The runs with use `value` on [pfn, pfn+count) (alloc_pages, __free_pages), every other fact kept, in canonical form. */
export function setFrameUse(runs: readonly FrameRun[], pfn: Pfn, count: number, value: FrameUse): FrameRun[] {
  return setFacts(runs, pfn, count, (r) => ({ ...r, use: value }));
}

/** The first frame of [pfn, pfn+count) whose use is not `use`, or undefined. */
export function firstFrameNot(runs: readonly FrameRun[], pfn: Pfn, count: number, use: FrameUse): Pfn | undefined {
  for (const r of runs) {
    if (r.pfn + r.count <= pfn) continue;
    if (r.pfn >= pfn + count) break;
    if (r.use !== use) return Math.max(r.pfn, pfn);
  }
  return undefined;
}

/** The runs of frames of `use` inside [pfn, pfn+count), clipped to it, in order. */
export function runsOfUse(runs: readonly FrameRun[], pfn: Pfn, count: number, use: FrameUse): { pfn: Pfn; count: number }[] {
  const out: { pfn: Pfn; count: number }[] = [];
  for (const r of runs) {
    const from = Math.max(r.pfn, pfn);
    const to = Math.min(r.pfn + r.count, pfn + count);
    if (from >= to || r.use !== use) continue;
    const last = out[out.length - 1];
    if (last !== undefined && last.pfn + last.count === from) last.count += to - from;
    else out.push({ pfn: from, count: to - from });
  }
  return out;
}
