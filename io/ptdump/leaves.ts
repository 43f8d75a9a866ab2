/**
 * From printed ranges to leaves. A present range of level L is a run of identical level-L
 * leaves (note_page merges entries while level and flags stay equal), so it splits back
 * into one leaf per entry. ptdump prints no physical address: a `DumpLeaf` has no frame.
 *
 * `dumpToAbstractState` builds the spec's `AbstractState` for the catalogue invariants
 * that need no frames (W+X per leaf, leaf alignment, disjointness, …). It has no frame
 * runs, and its pfns are synthetic (pfn = vpn mod 2^40, which keeps every leaf
 * size-aligned and distinct leaves apart) and mean nothing: never run frame invariants
 * (cross-alias W^X, rodata/text aliases, direct map) on it.
 */
import { PAGES, type PageSize, type PagingLevels, type Vpn } from '../../spec/address.ts';
import { tableFootprint } from '../../spec/footprint.ts';
import type { AbstractRoot, AbstractState, Leaf, Prot, RootKind } from '../../spec/state.ts';
import { flagsToProt } from './flags.ts';
import { dumpRanges, type Dump, type DumpLevel, type DumpRange } from './types.ts';

export interface DumpLeaf {
  readonly vpn: Vpn;
  readonly size: PageSize;
  readonly prot: Prot;
  /** The range line it comes from. */
  readonly line: number;
}

/** Leaf size of a printed level, or null where x86 has no leaves (pgd, p4d). */
export function levelLeafSize(level: DumpLevel): PageSize | null {
  return level === 'pte' ? '4K' : level === 'pmd' ? '2M' : level === 'pud' ? '1G' : null;
}

/** The leaves of one present range (none for a non-present range or a pgd/p4d line). */
export function rangeLeaves(r: DumpRange): DumpLeaf[] {
  const size = levelLeafSize(r.level);
  if (r.flags === null || size === null) return [];
  const prot = flagsToProt(r.flags);
  const out: DumpLeaf[] = [];
  for (let vpn = r.start; vpn < r.end; vpn += PAGES[size]) out.push({ vpn, size, prot, line: r.line });
  return out;
}

/** Every leaf a 64-bit dump shows, sorted by vpn. */
export function dumpLeaves(d: Dump): DumpLeaf[] {
  return dumpRanges(d).flatMap(rangeLeaves);
}

/** Synthetic frames: 2^40 frames (MAXPHYADDR 52) and pfn = vpn mod 2^40. */
const SYNTHETIC_FRAMES = 2 ** 40;

export interface DumpView {
  readonly dump: Dump;
  readonly kind: RootKind;
}

/**
 * The abstract state of one or more 64-bit dumps of the same machine, one root per view
 * (root i = views[i]). Throws for 32-bit dumps: the spec's state is x86-64.
 */
export function dumpToAbstractState(views: readonly DumpView[]): AbstractState {
  const paging = views[0]?.dump.paging ?? '4-level';
  if (views.some((v) => v.dump.paging === '32-bit')) throw new RangeError('32-bit dumps have no x86-64 abstract state');
  const levels: PagingLevels = paging === '5-level' ? 5 : 4;
  return dumpState(levels, views.map((v, id) => ({ id, kind: v.kind, leaves: dumpLeaves(v.dump).map(syntheticLeaf) })));
}

/** A dump leaf with its synthetic frame. */
export const syntheticLeaf = (l: DumpLeaf): Leaf => ({ vpn: l.vpn, pfn: l.vpn % SYNTHETIC_FRAMES, size: l.size, prot: l.prot });

/** The state around roots read from dumps: a synthetic machine, no frame facts, no TLBs. */
export function dumpState(levels: PagingLevels, roots: readonly AbstractRoot[]): AbstractState {
  // No table pool is visible in a dump: size it to the footprint so no ENOMEM-style check fires.
  const tablesInUse = roots.reduce((n, r) => n + tableFootprint(levels, r.leaves), 0);
  return {
    config: {
      levels,
      features: { pse: true, gbpages: true },
      cpus: 1,
      maxPhysBits: 52,
      frames: SYNTHETIC_FRAMES,
      tablePool: { pfn: 0, count: tablesInUse },
    },
    // No frame facts (spec/invariants/terms.ts hasFrameFacts): frame checks hold vacuously.
    frames: [],
    roots,
    tlb: [],
    pendingFlush: [],
    tablesInUse,
    pendingTableFrees: 0,
  };
}
