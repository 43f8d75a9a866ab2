/**
 * The terms the definitions are stated in: the pages and frames of a leaf, which frames
 * two ranges share, the kernel's fixed offsets, writable and executable, and how a
 * witness names a leaf or some of its frames. checker/ words its witnesses with the same
 * helpers, so a definition and its fast check describe a violation alike.
 *
 * Every definition runs on any `AbstractState`: the model's, the impl's abstraction or a
 * parsed kernel dump. A dump carries leaves but no frame facts (`frames` is empty, no
 * table accounting), and what needs those facts holds vacuously on it.
 */
import { PAGES, PAGE_SIZES, X86_64_LAYOUT_4LEVEL, isKernelHalf, kernelLayout, pfnToHex, vpnToHex, type PagingLevels, type Pfn, type Vpn } from '../address.ts';
import type { Witness } from '../invariant.ts';
import { protToString, type AbstractRoot, type AbstractState, type FrameRun, type FrameUse, type Leaf, type Prot } from '../state.ts';

/** __PAGE_OFFSET of the state's paging mode: the direct map's base page. */
export function directMapBase(state: AbstractState): Vpn {
  return kernelLayout(state.config.levels).pageOffset;
}
/** __START_KERNEL_map: the kernel image mapping's base page (phys_base 0), the same in both layouts. */
export const KERNEL_IMAGE_MAP = X86_64_LAYOUT_4LEVEL.kernelText;
/** MODULES_VADDR: where the high map's region [__START_KERNEL_map, MODULES_VADDR) ends, the same in both layouts. */
export const KERNEL_IMAGE_MAP_END = X86_64_LAYOUT_4LEVEL.modules;

/**
 * The direct-map region of a state with frame facts: [__PAGE_OFFSET, __PAGE_OFFSET + frames),
 * where __va puts every frame of memory. Undefined for a dump, whose frames are synthetic.
 */
export function directMapRegion(state: AbstractState): { readonly vpn: Vpn; readonly end: Vpn } | undefined {
  if (!hasFrameFacts(state)) return undefined;
  const vpn = directMapBase(state);
  return { vpn, end: vpn + state.config.frames };
}

/** Does the leaf share a page with [vpn, end)? */
export const leafMeets = (leaf: Leaf, vpn: Vpn, end: Vpn): boolean => leaf.vpn < end && vpn < leaf.vpn + pagesOf(leaf);

/** 4 KiB pages of a leaf; 0 for a size the architecture does not have (S1 reports those). */
export function pagesOf(leaf: Leaf): number {
  return PAGE_SIZES.includes(leaf.size) ? PAGES[leaf.size] : 0;
}

/** A dump has leaves only: no frame uses, no table pool, no table accounting. */
export function hasFrameFacts(state: AbstractState): boolean {
  return state.frames.length > 0;
}

export const isWritable = (p: Prot): boolean => p.write;
export const isExecutable = (p: Prot): boolean => p.execKernel || p.execUser;

/**
 * A leaf in the user half of a process's roots: the process's own mapping (mapUser), which
 * W^X leaves to the process (P1 exempts it; P2 does not count it as the executing side).
 */
export const isProcessUserLeaf = (leaf: Leaf, root: AbstractRoot, levels: PagingLevels): boolean => root.pid !== undefined && !isKernelHalf(leaf.vpn, levels);

/** A half-open range of frames. */
export interface FrameRange {
  readonly pfn: Pfn;
  readonly count: number;
}

/** The frames [a.pfn, a.pfn + a.count) and [b.pfn, b.pfn + b.count) share, or undefined. */
export function sharedFrames(a: FrameRange, b: FrameRange): FrameRange | undefined {
  const lo = Math.max(a.pfn, b.pfn);
  const hi = Math.min(a.pfn + a.count, b.pfn + b.count);
  return lo < hi ? { pfn: lo, count: hi - lo } : undefined;
}

/** The frames a leaf maps. */
export const leafFrames = (leaf: Leaf): FrameRange => ({ pfn: leaf.pfn, count: pagesOf(leaf) });

/** The page of `leaf` that maps frame `pfn` (the leaf maps it). */
export const pageOfFrame = (leaf: Leaf, pfn: Pfn): Vpn => leaf.vpn + (pfn - leaf.pfn);

export function leafText(leaf: Leaf): string {
  return `${leaf.size} leaf ${vpnToHex(leaf.vpn)} -> pfn ${pfnToHex(leaf.pfn)} (${protToString(leaf.prot)})`;
}

export function framesText(pfn: Pfn, count: number): string {
  return count === 1 ? `frame ${pfnToHex(pfn)}` : `frames ${pfnToHex(pfn)}..${pfnToHex(pfn + count - 1)} (${count})`;
}

export function runText(r: FrameRun): string {
  return `${framesText(r.pfn, r.count)} ${r.use}${r.sensitive ? ' sensitive' : ''}${r.noDirectMap ? ' noDirectMap' : ''}${r.memtype === undefined ? '' : ` memtype ${r.memtype}`}`;
}

/** A witness naming a whole leaf: its pages and its frames. */
export function leafWitness(root: AbstractRoot, leaf: Leaf, detail: string): Witness {
  const pages = pagesOf(leaf);
  return { root: root.id, vpn: leaf.vpn, pages, frames: [{ pfn: leaf.pfn, count: pages }], detail };
}

/** A witness naming the pages of `leaf` that map `frames` (frames it maps). */
export function framesWitness(root: AbstractRoot, leaf: Leaf, frames: FrameRange, detail: string): Witness {
  return { root: root.id, vpn: pageOfFrame(leaf, frames.pfn), pages: frames.count, frames: [frames], detail };
}

/**
 * The common shape of the per-leaf definitions: every leaf of every root for which
 * `why` gives a reason is a witness, named whole.
 */
export function everyLeaf(state: AbstractState, why: (leaf: Leaf, root: AbstractRoot) => string | undefined): Witness[] {
  const out: Witness[] = [];
  for (const root of state.roots) {
    for (const leaf of root.leaves) {
      const reason = why(leaf, root);
      if (reason !== undefined) out.push(leafWitness(root, leaf, `${leafText(leaf)}: ${reason}`));
    }
  }
  return out;
}

/**
 * The common shape of the frame-use definitions: for every frame run `isRun` selects and
 * every leaf `maps` selects, the frames of the run the leaf maps are a witness.
 */
export function everyMappedRun(
  state: AbstractState,
  isRun: (run: FrameRun) => boolean,
  maps: (leaf: Leaf, root: AbstractRoot) => boolean,
  why: (run: FrameRun) => string,
): Witness[] {
  const out: Witness[] = [];
  for (const root of state.roots) {
    for (const leaf of root.leaves) {
      if (!maps(leaf, root)) continue;
      for (const run of state.frames) {
        const shared = isRun(run) ? sharedFrames(leafFrames(leaf), run) : undefined;
        if (shared !== undefined) {
          out.push(framesWitness(root, leaf, shared, `${leafText(leaf)} maps ${framesText(shared.pfn, shared.count)}: ${why(run)}`));
        }
      }
    }
  }
  return out;
}

/** Every leaf that maps a frame of `use` at another page than the frame's own direct-map page (S12, D4). */
export function mappedBesideDirectMap(state: AbstractState, use: FrameUse, why: string): Witness[] {
  // A leaf maps frame pfn at its direct-map page exactly when its vpn is __PAGE_OFFSET + its pfn.
  return everyMappedRun(state, (run) => run.use === use, (leaf) => leaf.vpn - leaf.pfn !== directMapBase(state), () => why);
}
