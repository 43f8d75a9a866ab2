/** The fast checks of the T family (spec/invariants/translation.ts defines them). */
import { upperHalfStart } from '../spec/address.ts';
import { hasFrameFacts, leafText } from '../spec/invariants/terms.ts';
import { twoMemoryTypesText } from '../spec/invariants/translation.ts';
import { CACHE_MODES, INIT_MM, x86Representable, type Leaf } from '../spec/state.ts';
import {
  Witnesses, forEachAliasLeaf, leafCheck, leafIntersectsAny, leafPages, mergeIntervals, scopeRange, sortedLeaves, type Check, type CheckTable, type FrameInterval,
  type Mapping,
} from './common.ts';

/**
 * T5 over the alias closure of the scope. Leaves of a type other than WB are few (UC/WC
 * users of set_memory_*): the candidates are those and every leaf over their frames, and
 * a state with none has no conflict. Sorted by first frame, each candidate shares frames
 * exactly with the earlier ones still open at its first frame, so one sweep meets every
 * sharing pair once; a pair of two types is named from both sides, as the definition
 * quantifies over ordered pairs.
 */
const oneMemoryTypePerFrame: Check = (state, scope) => {
  if (!hasFrameFacts(state)) return [];
  const odd: FrameInterval[] = [];
  forEachAliasLeaf(state, scope, (_root, leaf) => {
    if (leaf.prot.cache !== 'WB') odd.push({ lo: leaf.pfn, hi: leaf.pfn + leafPages(leaf) });
  });
  if (odd.length === 0) return [];
  const spans = mergeIntervals(odd);
  const cands: Mapping[] = [];
  forEachAliasLeaf(state, scope, (root, leaf) => {
    if (leafIntersectsAny(spans, leaf)) cands.push({ root, leaf });
  });
  cands.sort((a, b) => a.leaf.pfn - b.leaf.pfn);
  const out = new Witnesses();
  let open: Mapping[] = [];
  for (const c of cands) {
    const lo = c.leaf.pfn;
    const hi = lo + leafPages(c.leaf);
    open = open.filter((o) => o.leaf.pfn + leafPages(o.leaf) > lo);
    for (const o of open) {
      const end = Math.min(hi, o.leaf.pfn + leafPages(o.leaf));
      if (o.leaf.prot.cache === c.leaf.prot.cache || end <= lo) continue;
      const shared = { pfn: lo, count: end - lo };
      out.addFrames(o.root, o.leaf, lo, shared.count, () => twoMemoryTypesText(o.root, o.leaf, c.root, c.leaf, shared));
      out.addFrames(c.root, c.leaf, lo, shared.count, () => twoMemoryTypesText(c.root, c.leaf, o.root, o.leaf, shared));
    }
    if (hi > lo) open.push(c);
  }
  return out.done();
};

export const TRANSLATION_CHECKS: CheckTable = {
  no_two_leaves_of_a_root_share_a_page(state, scope) {
    const w = new Witnesses();
    for (const root of state.roots) {
      // A scoped check trusts the order (S4 checks it); a full one judges an unsorted root too.
      const leaves = scope === undefined ? sortedLeaves(root.leaves) : root.leaves;
      // Sorted by vpn, the pages a leaf shares with earlier leaves are those below the
      // furthest end so far, and the leaf reaching it maps them too.
      const [lo, hi] = scopeRange(leaves, scope);
      let reacher: Leaf | undefined;
      for (let i = lo; i < hi; i++) {
        const leaf = leaves[i]!;
        const end = leaf.vpn + leafPages(leaf);
        if (reacher !== undefined) {
          const overlap = Math.min(reacher.vpn + leafPages(reacher), end) - leaf.vpn;
          if (overlap > 0) {
            w.add({
              root: root.id,
              vpn: leaf.vpn,
              pages: overlap,
              frames: [{ pfn: reacher.pfn + (leaf.vpn - reacher.vpn), count: overlap }, { pfn: leaf.pfn, count: overlap }],
              detail: `${leafText(leaf)} and ${leafText(reacher)} share ${overlap} pages`,
            });
          }
        }
        if (reacher === undefined || end > reacher.vpn + leafPages(reacher)) reacher = leaf;
      }
    }
    return w.done();
  },
  exec_rights_follow_one_nx_bit: leafCheck(() => (leaf) => (x86Representable(leaf.prot) ? undefined : 'execUser differs from user && execKernel')),
  cache_mode_is_a_kernel_pat_mode: leafCheck(() => (leaf) => (CACHE_MODES.includes(leaf.prot.cache) ? undefined : `cache mode ${String(leaf.prot.cache)} is not a PAT mode`)),
  init_mm_maps_no_user_half: leafCheck((state) => {
    const kernelHalf = upperHalfStart(state.config.levels);
    return (leaf, root) => (root.id === INIT_MM && leaf.vpn < kernelHalf ? 'init_mm maps a user-half page' : undefined);
  }),
  no_frame_mapped_with_two_memory_types: oneMemoryTypePerFrame,
};
