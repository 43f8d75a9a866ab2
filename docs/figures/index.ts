/**
 * The specification document's figures (docs/doc.ts `figure` blocks): each an SVG computed
 * from ptspec's own definitions and from systems booted from its scenarios, never drawn
 * by hand. `svg()` renders on demand (the walk and KPTI figures boot the x86-64 machine,
 * once, on first use); `caption` is inline text in the document's Markdown subset.
 */
import { COLLAPSE_ID, SPLIT_ID, collapseFigure, splitFigure } from './hugepage.ts';
import { KPTI_ID, kptiFigure } from './kpti.ts';
import { LAYERS_ID, layersFigure } from './layers.ts';
import { WALK_ID, walkFigure } from './walk.ts';

export interface FigureSpec {
  /** Its anchor id in the document. */
  readonly id: string;
  /** Its file name in docs/html/figures/. */
  readonly file: string;
  readonly caption: string;
  readonly svg: () => string;
}

export const FIGURES: readonly FigureSpec[] = [
  {
    id: LAYERS_ID,
    file: 'layers.svg',
    caption:
      "ptspec's folders and who may import whom, drawn from `LAYERS` in `docs/layers.ts`, the table `test/layering.ts` enforces. " +
      'Each folder is ranked by its longest import path (`spec/` at the bottom, rank 0) and each arc runs from a folder down to one it may import; ' +
      '`test/` may import everything and is left out.',
    svg: layersFigure,
  },
  {
    id: WALK_ID,
    file: 'walk.svg',
    caption:
      "The hardware's four-level walk of `idt_table` (the first page of the kernel image's `.bss`, 4K-mapped in the high map) in the booted `x86-64` scenario: " +
      'the address cut into its pgd, pud, pmd and pte indices and page offset, and at each level the 64-bit entry the impl\'s tables hold, ' +
      'every bit named (P, RW, US, PWT, PCD, A, D, PS or PAT, G, the frame, NX) with its value, the bit positions those of `impl/arch/x86_64/entry.ts`.',
    svg: walkFigure,
  },
  {
    id: SPLIT_ID,
    file: 'split.svg',
    caption:
      '`split_large_page` in a real run: the `kernel` scenario booted on the impl, its first 2 MiB of direct map made WT (`_set_memory_wt` sets the 2M leaf\'s PAT bit, bit 12), ' +
      'then `split`. The pmd entry before and after and three of the new PTE table\'s 512 entries: PAT moves to bit 7, NX and the frames carry over.',
    svg: splitFigure,
  },
  {
    id: COLLAPSE_ID,
    file: 'collapse.svg',
    caption:
      '`collapse_large_pages` in the same run: the split\'s 512 PTEs collapsed back into one 2M leaf (`collapse`): PAT moves from bit 7 back to bit 12, PS is set, ' +
      'the leaf maps the first PTE\'s frame, and the PTE table goes back to the pool.',
    svg: collapseFigure,
  },
  {
    id: KPTI_ID,
    file: 'kpti.svg',
    caption:
      'The KPTI pair of one process on the booted `x86-64` scenario with PTI (`ptiBoot`), after `createProcess`, a `mapUser` of one executable page and a `setLdt`: ' +
      'every top-level slot either copy uses, with the entry each copy\'s table holds and the root it mirrors it from (`mirrorsOf` in `spec/roots.ts`, checked against that root\'s entry). ' +
      "The user copy's kernel half is root 1's PTI clones (the cpu_entry_area, espfix, the entry text); the pgd's user-half entry carries NX, as `__pti_set_user_pgtbl` sets it (invariant K1).",
    svg: kptiFigure,
  },
];
