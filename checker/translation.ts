/** The fast checks of the T family (spec/invariants/translation.ts defines them). */
import { upperHalfStart } from '../spec/address.ts';
import { leafText } from '../spec/invariants/terms.ts';
import { CACHE_MODES, INIT_MM, x86Representable, type Leaf } from '../spec/state.ts';
import { Witnesses, leafCheck, leafPages, scopeRange, sortedLeaves, type CheckTable } from './common.ts';

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
};
