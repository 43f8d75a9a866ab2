/** The fast checks of the P family (spec/invariants/permissions.ts defines them). */
import { isKernelHalf, upperHalfStart, vpnToHex } from '../spec/address.ts';
import { inMermapRegion } from '../spec/invariants/clients.ts';
import { KERNEL_IMAGE_MAP, framesText, isExecutable, isProcessUserLeaf, isWritable } from '../spec/invariants/terms.ts';
import {
  Witnesses, forEachAliasLeaf, frameUseCheck, leafCheck, leafIntersectsAny, leafPages, mergeIntervals, type Check, type CheckTable, type FrameInterval,
  type Mapping,
} from './common.ts';

/** Kinds of a mapping in the cross-alias sweep; a W+X leaf counts as both. */
const W = 0;
const X = 1;
const WX = 2;
/** Event = pfn * 8 + code; ends (0..2) sort before starts (3..5) at one pfn: intervals are half-open. */
const START = 3;

/**
 * The frame intervals where some mapping writes and a *different* one executes, by a
 * sweep over the candidates' frame intervals: between consecutive event points the
 * counts of writable and executable mappings are constant.
 */
function conflictIntervals(cands: readonly Candidate[]): FrameInterval[] {
  const events = new Float64Array(cands.length * 2);
  cands.forEach(({ leaf, executes }, i) => {
    const kind = isWritable(leaf.prot) ? (executes ? WX : W) : X;
    events[2 * i] = leaf.pfn * 8 + START + kind;
    events[2 * i + 1] = (leaf.pfn + leafPages(leaf)) * 8 + kind;
  });
  events.sort();

  const count = [0, 0, 0];
  const bad: { lo: number; hi: number }[] = [];
  let at = -Infinity;
  for (let i = 0; i < events.length; ) {
    const pfn = Math.floor(events[i]! / 8);
    const writers = count[W]! + count[WX]!;
    const execs = count[X]! + count[WX]!;
    // Only one writer and one executor that are the same W+X leaf is P1's business, not an alias.
    const conflict = writers > 0 && execs > 0 && !(writers === 1 && execs === 1 && count[WX] === 1);
    if (conflict && pfn > at) {
      const last = bad[bad.length - 1];
      if (last !== undefined && last.hi === at) last.hi = pfn;
      else bad.push({ lo: at, hi: pfn });
    }
    for (; i < events.length && Math.floor(events[i]! / 8) === pfn; i++) {
      // Not `% 8`: a negative pfn (S5 reports it) gives a negative remainder.
      const code = events[i]! - pfn * 8;
      if (code >= START) count[code - START]!++;
      else count[code]!--;
    }
    at = pfn;
  }
  return bad;
}

/** A mapping in the sweep, with whether it counts as executing (a process's user half does not). */
interface Candidate extends Mapping {
  readonly executes: boolean;
}

/**
 * Cross-alias W^X. Executing leaves are few (text, modules, BPF): the candidates are
 * those and the writable leaves over their frames, in the order the leaves come. The
 * sweep decides whether any frame is in conflict; only then are the pairs named, each
 * writable candidate over a conflict with every other candidate executing its frames.
 */
const crossAliasWx: Check = (state, scope) => {
  const levels = state.config.levels;
  const executes = (root: Mapping['root'], leaf: Mapping['leaf']): boolean => isExecutable(leaf.prot) && !isProcessUserLeaf(leaf, root, levels);
  const execSpans: FrameInterval[] = [];
  forEachAliasLeaf(state, scope, (root, leaf) => {
    if (executes(root, leaf)) execSpans.push({ lo: leaf.pfn, hi: leaf.pfn + leafPages(leaf) });
  });
  if (execSpans.length === 0) return [];
  const spans = mergeIntervals(execSpans);
  const cands: Candidate[] = [];
  forEachAliasLeaf(state, scope, (root, leaf) => {
    const x = executes(root, leaf);
    if (x || (isWritable(leaf.prot) && leafIntersectsAny(spans, leaf))) cands.push({ root, leaf, executes: x });
  });
  const bad = conflictIntervals(cands);
  if (bad.length === 0) return [];

  const out = new Witnesses();
  const at = (m: Mapping, pfn: number) => `root ${m.root.id} at ${vpnToHex(m.leaf.vpn + (pfn - m.leaf.pfn))}`;
  for (const writer of cands) {
    const wl = writer.leaf;
    if (!isWritable(wl.prot) || !leafIntersectsAny(bad, wl)) continue;
    for (const exec of cands) {
      if (exec === writer || !exec.executes) continue;
      const lo = Math.max(wl.pfn, exec.leaf.pfn);
      const hi = Math.min(wl.pfn + leafPages(wl), exec.leaf.pfn + leafPages(exec.leaf));
      if (lo < hi) out.addFrames(writer.root, wl, lo, hi - lo, `${framesText(lo, hi - lo)} writable through ${at(writer, lo)} and executable through ${at(exec, lo)}`);
    }
  }
  return out.done();
};

export const PERMISSIONS_CHECKS: CheckTable = {
  // A process's own user mappings may be W+X (a JIT); every other leaf, EFI's low 1:1 ones too, may not.
  no_leaf_writable_and_executable: leafCheck((state) => {
    const levels = state.config.levels;
    return (leaf, root) => (!isProcessUserLeaf(leaf, root, levels) && isWritable(leaf.prot) && isExecutable(leaf.prot) ? `W+X: ${leafPages(leaf)} pages writable and executable` : undefined);
  }),
  no_frame_writable_and_executable_through_two_aliases: crossAliasWx,
  no_kernel_text_frame_writable: frameUseCheck((leaf) => isWritable(leaf.prot), (r) => r.use === 'kernel-text', () => 'kernel text writable'),
  no_kernel_rodata_frame_writable: frameUseCheck((leaf) => isWritable(leaf.prot), (r) => r.use === 'kernel-rodata', () => 'kernel rodata writable'),
  kernel_text_executable_in_image_mapping: frameUseCheck(
    (leaf) => leaf.vpn - leaf.pfn === KERNEL_IMAGE_MAP && !leaf.prot.execKernel,
    (r) => r.use === 'kernel-text',
    () => 'kernel text not executable in the image mapping',
  ),
  no_user_accessible_kernel_half_leaf: leafCheck((state) => {
    const kernelHalf = upperHalfStart(state.config.levels);
    return (leaf) => (leaf.vpn >= kernelHalf && leaf.prot.user ? 'kernel-half page accessible to user mode' : undefined);
  }),
  // The mermap's leaves are its purpose (the definition's exemption).
  no_kernel_half_mapping_of_frames_removed_from_direct_map: frameUseCheck(
    (leaf, _root, state) => isKernelHalf(leaf.vpn, state.config.levels) && !inMermapRegion(state, leaf),
    (r) => r.noDirectMap,
    (r) => `${r.use} frame removed from the direct map is mapped in the kernel half`,
  ),
};
