/**
 * One process's PTI pair of dumps (current_kernel, current_user) as an abstract state, so
 * that the catalogue's K invariants judge the pair as they judge ptspec's own roots
 * (spec/roots.ts): the kernel copy's kernel half is init_mm's (root 0), the user copy's
 * kernel half is root 1's, and the user halves and the LDT slot are process 1's own
 * (roots 3 and 4; the user copy's LDT slot is the kernel copy's entry, so a user copy
 * printing another LDT slot has diverged there, K4).
 *
 * Two facts of the text shape it. An excerpt judges only what it shows: a leaf counts
 * only where both dumps print its pages. And the kernel copy's user half is NX-poisoned
 * at its pgd (__pti_set_user_pgtbl), which ptdump does not print (its pgd lines show the
 * leaf's flags): those leaves get the NX the walk applies.
 */
import { isKernelHalf, PAGES, type PagingLevels } from '../../spec/address.ts';
import { inRange } from '../../spec/invariants/isolation.ts';
import { ldtRemap, processRootIds } from '../../spec/roots.ts';
import type { AbstractRoot, AbstractState, Leaf } from '../../spec/state.ts';
import { checkAll, type Invariant } from '../../checker/index.ts';
import { mergeIntervals, type FrameInterval } from '../../checker/common.ts';
import type { DumpFinding } from './findings.ts';
import { dumpLeaves, dumpState, syntheticLeaf } from './leaves.ts';
import { dumpRanges, type Dump } from './types.ts';

/** The pages a dump prints, present or not, merged (intervals of pages, as checker/common.ts merges frames). */
const printed = (d: Dump): FrameInterval[] => mergeIntervals(dumpRanges(d).map((r) => ({ lo: r.start, hi: r.end })));

const within = (spans: readonly FrameInterval[], l: Leaf): boolean => spans.some((s) => l.vpn >= s.lo && l.vpn + PAGES[l.size] <= s.hi);

const sameLeaves = (a: readonly Leaf[], b: readonly Leaf[]): boolean =>
  a.length === b.length && a.every((l, i) => JSON.stringify(l) === JSON.stringify(b[i]));

export function ptiPairState(kernel: Dump, user: Dump): AbstractState {
  const levels: PagingLevels = kernel.paging === '5-level' ? 5 : 4;
  const spans = [printed(kernel), printed(user)];
  const shown = (d: Dump): Leaf[] => dumpLeaves(d).map(syntheticLeaf).filter((l) => spans.every((s) => within(s, l)));
  const ldt = ldtRemap(levels);
  const kernelHalf = (l: Leaf): boolean => isKernelHalf(l.vpn, levels) && !inRange(l, ldt);
  const inLdt = (l: Leaf): boolean => inRange(l, ldt);
  const k = shown(kernel);
  const u = shown(user);
  const poisoned = (l: Leaf): Leaf => ({ ...l, prot: { ...l.prot, execKernel: false, execUser: false } });
  const ids = processRootIds(1);
  const roots: AbstractRoot[] = [
    { id: 0, kind: 'kernel', leaves: k.filter(kernelHalf) },
    { id: 1, kind: 'kernel-user', leaves: u.filter(kernelHalf) },
    { id: ids.kernelRoot, kind: 'process-kernel', pid: 1, leaves: [...k.filter((l) => !isKernelHalf(l.vpn, levels)).map(poisoned), ...k.filter(inLdt)] },
    {
      id: ids.userRoot, kind: 'process-user', pid: 1, leaves: u.filter((l) => !isKernelHalf(l.vpn, levels)),
      ...(sameLeaves(k.filter(inLdt), u.filter(inLdt)) ? {} : { diverged: [ldt.vpn] }),
    },
  ];
  return dumpState(levels, roots);
}

/** Which dump of the pair root `id` of ptiPairState comes from. */
export const pairDumpOf = (id: number): 'kernel' | 'user' => (id === 0 || id === processRootIds(1).kernelRoot ? 'kernel' : 'user');

/** K invariants the pair state means what they mean on ptspec's roots (K2 needs the kernel image's frames, K5 free frames: neither is in a dump). */
export const PAIR_INVARIANT_IDS: readonly string[] = ['K1', 'K3', 'K4'];

/**
 * The catalogue's K findings on a pair, each on the dump its witness root comes from,
 * naming that dump's lines over the witness's pages.
 */
export function pairCatalogueFindings(kernel: Dump, user: Dump, only: readonly Invariant[]): { kernel: DumpFinding[]; user: DumpFinding[] } {
  const out = { kernel: [] as DumpFinding[], user: [] as DumpFinding[] };
  const dumps = { kernel, user };
  for (const v of checkAll(ptiPairState(kernel, user), undefined, only)) {
    for (const w of v.witnesses) {
      const side = pairDumpOf(w.root ?? 0);
      const d = dumps[side];
      const end = (w.vpn ?? 0) + (w.pages ?? 1);
      const lines = w.vpn === undefined ? [] : dumpRanges(d).filter((r) => r.start < end && w.vpn! < r.end).map((r) => r.line);
      // A dump's pfns are synthetic: the witness text loses its "-> pfn …" part.
      const legend = ` (roots 0 and 3 are ${kernel.view || 'the kernel copy'}, 1 and 4 ${user.view || 'the user copy'})`;
      out[side].push({ id: v.id, family: v.family, title: v.title, view: d.view, lines, detail: `${w.detail.replace(/ -> pfn 0x[0-9a-f]+/g, '')}${legend}` });
    }
  }
  return out;
}
