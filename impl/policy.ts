/**
 * The policy (spec/policy.ts, brief rule 11) checked incrementally: the state before an
 * operation satisfies every rule (the system refuses whatever would break one), so the
 * state after it can break a rule only at a leaf the operation wrote. Each written leaf
 * is checked in O(1) (or O(runs) for the frame-use rules) with the per-frame counters,
 * never by scanning all leaves or all frames.
 */
import { X86_64_LAYOUT_4LEVEL, upperHalfStart, type PageSize, type Pfn } from '../spec/address.ts';
import type { PolicyRule, PolicyViolation } from '../spec/policy.ts';
import { INIT_MM, type FrameRun, type SystemConfig } from '../spec/state.ts';
import * as frames from './frames.ts';
import { IntervalSet } from './frames.ts';
import * as prot from './prot.ts';
import * as radixModule from './radix.ts';
import type { Radix } from './radix.ts';
import * as tables from './tables.ts';

// Module-local copies: imported bindings are live (a getter per use once transpiled).
const { P_EXEC, P_USER, P_WRITE, PROTS, leafCode } = prot;
const { leafPfn } = radixModule;
const { SPAN, isLeafAt } = tables;
const { EXEC, WRITABLE } = frames;
const KERNEL_TEXT = X86_64_LAYOUT_4LEVEL.kernelText;
const PAGE_OFFSET = X86_64_LAYOUT_4LEVEL.pageOffset;

export const LEVEL_SIZE: readonly PageSize[] = ['4K', '4K', '2M', '1G'];

/** Frames by what the policy cares about; `noDirectMap` changes, the rest is fixed at boot. */
export class FrameFacts {
  /** kernel-text and kernel-rodata: never writable (rule c). */
  readonly staticFrames = new IntervalSet();
  readonly textFrames = new IntervalSet();
  readonly tableFrames = new IntervalSet();
  readonly noDirectMap = new IntervalSet();
  readonly kernelHalfStart: number;

  constructor(config: SystemConfig, runs: readonly FrameRun[]) {
    this.kernelHalfStart = upperHalfStart(config.levels);
    for (const r of runs) {
      if (r.use === 'kernel-text' || r.use === 'kernel-rodata') this.staticFrames.set(r.pfn, r.count, true);
      if (r.use === 'kernel-text') this.textFrames.set(r.pfn, r.count, true);
      if (r.use === 'pagetable') this.tableFrames.set(r.pfn, r.count, true);
      if (r.noDirectMap) this.noDirectMap.set(r.pfn, r.count, true);
    }
  }
}

/** Which rule the leaf (code, vpn → pfn, n pages) breaks in the state the counters describe, or null. */
function brokenRule(radix: Radix, facts: FrameFacts, code: number, vpn: number, pfn: Pfn, n: number): PolicyRule | null {
  const write = (code & P_WRITE) !== 0;
  const exec = (code & P_EXEC) !== 0;
  if (write && exec) return 'wx';
  if ((write && radix.counters.any(EXEC, pfn, n)) || (exec && radix.counters.any(WRITABLE, pfn, n))) return 'cross-alias-wx';
  if (write && facts.staticFrames.intersects(pfn, n)) return 'static';
  if (!exec && vpn - pfn === KERNEL_TEXT && facts.textFrames.intersects(pfn, n)) return 'static';
  if (vpn - pfn !== PAGE_OFFSET && facts.tableFrames.intersects(pfn, n)) return 'pagetable';
  const kernelHalf = vpn >= facts.kernelHalfStart;
  if (kernelHalf && (code & P_USER) !== 0) return 'user-kernel-half';
  if (kernelHalf && facts.noDirectMap.intersects(pfn, n)) return 'no-direct-map';
  return null;
}

const REASON: Readonly<Record<PolicyRule, string>> = {
  wx: 'is writable and executable',
  'cross-alias-wx': 'makes a frame writable through one mapping and executable through another',
  static: 'makes kernel text or rodata writable, or kernel text non-executable in the kernel image',
  pagetable: 'maps a page-table frame outside the direct map',
  'user-kernel-half': 'is in the kernel half with user access',
  'no-direct-map': 'maps a frame removed from the direct map',
};

/** The first policy violation among the leaves the running operation wrote, or null. */
export function writtenLeafViolation(radix: Radix, facts: FrameFacts): PolicyViolation | null {
  const pool = radix.pool;
  const written = radix.written;
  for (let k = 0; k < written.length; k += 2) {
    const slot = written[k]!;
    const idx = written[k + 1]!;
    const level = pool.level[slot]!;
    const lo = pool.words[slot * 1024 + idx * 2]!;
    const hi = pool.words[slot * 1024 + idx * 2 + 1]!;
    // Written and later replaced (split, cleared, table freed) in the same operation.
    if (!pool.allocated[slot] || !isLeafAt(lo, level)) continue;
    const code = leafCode(lo, hi, level > 1, true, true, false);
    const vpn = radix.entryVpn(slot, idx);
    const pfn = leafPfn(lo, hi, level);
    const n = SPAN[level as 1]!;
    const rule = brokenRule(radix, facts, code, vpn, pfn, n);
    if (rule === null) continue;
    const leaf = { vpn, pfn, size: LEVEL_SIZE[level]!, prot: PROTS[code]! };
    return { rule, mapping: { root: INIT_MM, leaf }, pfn, count: n, reason: `the leaf at vpn ${vpn} → pfn ${pfn} (${leaf.size}) ${REASON[rule]}` };
  }
  return null;
}
