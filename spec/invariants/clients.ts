/**
 * C: the kernel's page-table users (spec/contracts/clients.ts) against the bookkeeping
 * they keep (AbstractState.clients, spec/clients.ts): what vmalloc, kmap_local, the mermap
 * and the __GFP_UNMAPPED pool promise about init_mm's tables, the TLBs and the frames.
 * A state without the clients capability has no bookkeeping and no witness for any of them.
 *
 * Also the exemption the mermap earns in P7 and D5 (`inMermapRegion`): mapping pages
 * that are absent from the direct map is what it is for.
 */
import { vpnToHex, type Pfn, type Vpn } from '../address.ts';
import {
  KM_MAX_IDX, MERMAP_CPU_PAGES, MERMAP_USABLE_PAGES, kmapRegion, kmapSlotOf, kmapSlotVpn, mermapCpuOf, mermapRegion, mermapSlice,
  type ClientState, type KmapSlot, type LazyArea, type MermapAlloc, type MermapCpu, type VmallocArea,
} from '../clients.ts';
import { PAGEBLOCK_PAGES } from '../contracts/isolation.ts';
import type { InvariantDefinition, Witness } from '../invariant.ts';
import { INIT_MM, type AbstractRoot, type AbstractState, type FrameRun, type FrameUse, type Leaf, type TlbEntry } from '../state.ts';
import { directMapBase, framesText, leafText, pagesOf, runText, sharedFrames, type FrameRange } from './terms.ts';
import { tlbText } from './tlb.ts';

// ---- the terms ----

/** A half-open page (or frame) interval [lo, hi). */
export type Span = readonly [number, number];

/** init_mm's root, as the other definitions find a root by id: the first with id 0. */
export const initMm = (state: AbstractState): AbstractRoot | undefined => state.roots.find((r) => r.id === INIT_MM);

/**
 * Whether a leaf (or a cached one) lies wholly inside the mermap region of a system with
 * the clients capability: P7 and D5 leave those alone. Without the capability there is
 * no mermap, and the region is a hole like any other.
 */
export function inMermapRegion(state: AbstractState, leaf: Leaf): boolean {
  if (state.clients === undefined) return false;
  const r = mermapRegion(state.config.levels, state.config.cpus);
  const n = pagesOf(leaf);
  return n > 0 && leaf.vpn >= r.vpn && leaf.vpn + n <= r.vpn + r.pages;
}

/** The frames of the unmapped pageblocks (each entry the first of PAGEBLOCK_PAGES), none without the capability: D6 leaves them alone. */
export const unmappedPageblockSpans = (state: AbstractState): Span[] => (state.clients?.unmapped ?? []).map((b): Span => [b, b + PAGEBLOCK_PAGES]);

/** The maximal sub-intervals of [from, to) that none of `covered` covers, in order. */
export function uncovered(from: number, to: number, covered: readonly Span[]): Span[] {
  const out: Span[] = [];
  let at = from;
  for (const [lo, hi] of [...covered].sort((a, b) => a[0] - b[0])) {
    if (lo > at) out.push([at, Math.min(lo, to)]);
    at = Math.max(at, hi);
    if (at >= to) break;
  }
  if (at < to) out.push([at, to]);
  return out.filter(([lo, hi]) => lo < hi);
}

/** [lo, hi) of a leaf's pages that also lie in [from, to), or undefined. */
export function clip(leaf: Leaf, from: number, to: number): Span | undefined {
  const lo = Math.max(leaf.vpn, from);
  const hi = Math.min(leaf.vpn + pagesOf(leaf), to);
  return lo < hi ? [lo, hi] : undefined;
}

/**
 * Something of the bookkeeping that maps pages to frames linearly: the page `vpn + i`
 * stands for frame `pfn + i` (a vmalloc area, a mermap allocation, a kmap slot).
 */
export interface LinearRange {
  readonly vpn: Vpn;
  readonly pages: number;
  readonly pfn: Pfn;
}

/** A witness naming pages [vpn, vpn + pages) of init_mm and the frames a linear range puts there. */
export function rangeWitness(r: LinearRange, vpn: Vpn, pages: number, detail: string): Witness {
  return { root: INIT_MM, vpn, pages, frames: [{ pfn: r.pfn + (vpn - r.vpn), count: pages }], detail };
}

/** The witness of frames `shared` (a part of r's frames), at the pages r puts them. */
export function rangeFramesWitness(r: LinearRange, shared: FrameRange, detail: string): Witness {
  return rangeWitness(r, r.vpn + (shared.pfn - r.pfn), shared.count, detail);
}

/** Whether an entry translates its pages as the linear range does (the same offset page - frame). */
export const sameOffset = (e: Leaf, r: LinearRange): boolean => e.vpn - e.pfn === r.vpn - r.pfn;

/** A TLB entry's or a leaf's pages [lo, hi) (inside it) and the frames it reaches there, as a witness. */
export function pagesWitness(root: number, leaf: Leaf, lo: Vpn, hi: Vpn, detail: string): Witness {
  return { root, vpn: lo, pages: hi - lo, frames: [{ pfn: leaf.pfn + (lo - leaf.vpn), count: hi - lo }], detail };
}

/** A witness of the direct-map pages [lo, hi) of `root` and the frames __va puts there. */
export function directMapWitness(state: AbstractState, root: number, lo: Vpn, hi: Vpn, detail: string): Witness {
  return { root, vpn: lo, pages: hi - lo, frames: [{ pfn: lo - directMapBase(state), count: hi - lo }], detail };
}

export const vmallocText = (a: LinearRange, lazy: boolean): string =>
  `the ${lazy ? 'lazily freed' : 'live'} vmalloc area ${vpnToHex(a.vpn)} (+${a.pages} pages, ${framesText(a.pfn, a.pages)})`;
export const allocText = (a: MermapAlloc, stale: boolean): string =>
  `cpu ${a.cpu}'s ${stale ? 'stale' : 'in-use'} mermap allocation ${vpnToHex(a.vpn)} (+${a.pages} pages, ${framesText(a.pfn, a.pages)})`;
export const slotText = (s: KmapSlot): string => `cpu ${s.cpu}'s kmap_local slot ${s.idx} at ${vpnToHex(s.vpn)} (${framesText(s.pfn, 1)})`;

/** A slot as a linear range of one page. */
export const slotRange = (s: KmapSlot): LinearRange => ({ vpn: s.vpn, pages: 1, pfn: s.pfn });

/** A lazily freed area of the bookkeeping, or a live one, as one list: what C2's no-overlap rule is about. */
export interface TaggedArea {
  readonly area: VmallocArea | LazyArea;
  readonly lazy: boolean;
}
export const taggedAreas = (c: ClientState): TaggedArea[] => [...c.vmalloc.map((area) => ({ area, lazy: false })), ...c.lazy.map((area) => ({ area, lazy: true }))];

export const areasOverlapText = (a: TaggedArea, b: TaggedArea): string => `${vmallocText(a.area, a.lazy)} and ${vmallocText(b.area, b.lazy)} share pages`;
export const allocsOverlapText = (a: MermapAlloc, aStale: boolean, b: MermapAlloc, bStale: boolean): string =>
  `${allocText(a, aStale)} and ${allocText(b, bStale)} share pages`;

/** The pages two linear ranges share, or undefined. */
export function sharedPages(a: LinearRange, b: LinearRange): Span | undefined {
  const lo = Math.max(a.vpn, b.vpn);
  const hi = Math.min(a.vpn + a.pages, b.vpn + b.pages);
  return lo < hi ? [lo, hi] : undefined;
}

// ---- C1 ----

export const STALE_ALLOC_FREED = 'freed while its CPU may still cache the translation (mermap_put does not flush)';
export const LAZY_AREA_FREED = 'freed while the area still waits for its flush (the lazy purge has not run)';

/** Whether an obligation with pages meets [vpn, vpn + pages): the obligations of owedAt, for a range. */
export const owedOver = (state: AbstractState, vpn: Vpn, pages: number): boolean =>
  state.pendingFlush.some((o) => o.pages > 0 && o.vpn < vpn + pages && vpn < o.vpn + o.pages);

/** Every free frame of `r`'s frames, a witness at the pages r put it. */
function freeFramesOf(state: AbstractState, r: LinearRange, detail: string): Witness[] {
  return state.frames
    .filter((run) => run.use === 'free')
    .flatMap((run) => {
      const shared = sharedFrames({ pfn: r.pfn, count: r.pages }, run);
      return shared === undefined ? [] : [rangeFramesWitness(r, shared, `${framesText(shared.pfn, shared.count)} of ${detail}`)];
    });
}

function c1(state: AbstractState): Witness[] {
  const c = state.clients;
  if (c === undefined) return [];
  const out: Witness[] = [];
  for (const m of c.mermap) for (const a of m.stale) out.push(...freeFramesOf(state, a, `${allocText(a, true)} ${STALE_ALLOC_FREED}`));
  for (const z of c.lazy) if (owedOver(state, z.vpn, z.pages)) out.push(...freeFramesOf(state, z, `${vmallocText(z, true)} ${LAZY_AREA_FREED}`));
  return out;
}

// ---- C2 ----

export const AREA_UNMAPPED = 'no entry of init_mm translates them to the area\'s frames';
export const AREA_FRAMES_FREE = 'frames of a live area are free';

/** The pages of a live area no entry (leaf or non-present) among `entries` maps to the area's frames, as witnesses. */
export function unmappedAreaPages(area: VmallocArea, entries: readonly Leaf[]): Witness[] {
  const end = area.vpn + area.pages;
  const covered = entries.flatMap((e) => (sameOffset(e, area) ? [clip(e, area.vpn, end)].filter((s): s is Span => s !== undefined) : []));
  return uncovered(area.vpn, end, covered).map(([lo, hi]) => rangeWitness(area, lo, hi - lo, `pages of ${vmallocText(area, false)}: ${AREA_UNMAPPED}`));
}

/** The entries of a root: its leaves and its non-present entries. */
export const entriesOf = (root: AbstractRoot | undefined): Leaf[] => (root === undefined ? [] : [...root.leaves, ...(root.nonPresent ?? [])]);

function c2(state: AbstractState): Witness[] {
  const c = state.clients;
  if (c === undefined) return [];
  const entries = entriesOf(initMm(state));
  const out: Witness[] = [];
  for (const area of c.vmalloc) {
    out.push(...unmappedAreaPages(area, entries));
    out.push(...freeFramesOf(state, area, `${vmallocText(area, false)}: ${AREA_FRAMES_FREE}`));
  }
  const all = taggedAreas(c);
  all.forEach((a, i) => {
    for (const b of all.slice(i + 1)) {
      const s = sharedPages(a.area, b.area);
      if (s !== undefined) out.push({ root: INIT_MM, vpn: s[0], pages: s[1] - s[0], detail: areasOverlapText(a, b) });
    }
  });
  return out;
}

// ---- C3 ----

/** Why the k-th slot a CPU's list holds (k counted in list order) is not its stack's k-th, or undefined. */
export function slotOutOfPlace(state: AbstractState, s: KmapSlot, k: number): string | undefined {
  const cpus = state.config.cpus;
  if (!Number.isInteger(s.cpu) || s.cpu < 0 || s.cpu >= cpus) return `${slotText(s)}: ${s.cpu} is not a CPU`;
  if (s.idx !== k || s.vpn !== kmapSlotVpn(s.cpu, k)) return `${slotText(s)}: the CPU's slot ${k} of its stack must be idx ${k} at ${vpnToHex(kmapSlotVpn(s.cpu, k))}`;
  return undefined;
}

/** Whether a leaf is the slot's: a present 4K leaf at its page to its frame. */
export const isSlotLeaf = (l: Leaf, s: KmapSlot): boolean => l.vpn === s.vpn && l.size === '4K' && l.pfn === s.pfn;
export const SLOT_UNMAPPED = 'no present 4K leaf of init_mm maps it to its frame';

/** Whether CPU `cpu` holds a slot at page `vpn`. */
export const holdsSlotAt = (c: ClientState, cpu: number, vpn: Vpn): boolean => c.kmap.some((s) => s.cpu === cpu && s.vpn === vpn);
/** Whether the mermap of CPU `cpu` holds page `vpn` in an in-use allocation. */
export const holdsAllocAt = (c: ClientState, cpu: number, vpn: Vpn): boolean =>
  c.mermap.some((m) => m.cpu === cpu && m.allocs.some((a) => a.vpn <= vpn && vpn < a.vpn + a.pages));

/**
 * The pages of leaf `l` inside `region` that `owner` says nothing of (the CPU whose page
 * it is holds no slot or allocation there), in maximal runs, as witnesses.
 */
export function unheldPages(l: Leaf, region: { vpn: Vpn; pages: number }, held: (vpn: Vpn) => boolean, what: string): Witness[] {
  const s = clip(l, region.vpn, region.vpn + region.pages);
  if (s === undefined) return [];
  const out: Witness[] = [];
  let run: Vpn | undefined;
  for (let p = s[0]; p <= s[1]; p++) {
    const bad = p < s[1] && !held(p);
    if (bad && run === undefined) run = p;
    if (!bad && run !== undefined) {
      out.push(pagesWitness(INIT_MM, l, run, p, `${leafText(l)} maps ${what} ${vpnToHex(run)} (+${p - run} pages) that its CPU does not hold`));
      run = undefined;
    }
  }
  return out;
}

export const kmapOwner = (state: AbstractState, c: ClientState) => (vpn: Vpn): boolean => {
  const slot = kmapSlotOf(state.config.cpus, vpn);
  return slot !== undefined && holdsSlotAt(c, slot.cpu, vpn);
};

function c3(state: AbstractState): Witness[] {
  const c = state.clients;
  if (c === undefined) return [];
  const leaves = initMm(state)?.leaves ?? [];
  const out: Witness[] = [];
  const depth = new Map<number, number>();
  for (const s of c.kmap) {
    const k = depth.get(s.cpu) ?? 0;
    depth.set(s.cpu, k + 1);
    const why = slotOutOfPlace(state, s, k);
    if (why !== undefined) out.push(rangeWitness(slotRange(s), s.vpn, 1, why));
    if (!leaves.some((l) => isSlotLeaf(l, s))) out.push(rangeWitness(slotRange(s), s.vpn, 1, `${slotText(s)}: ${SLOT_UNMAPPED}`));
  }
  const region = kmapRegion(state.config.cpus);
  for (const l of leaves) out.push(...unheldPages(l, region, kmapOwner(state, c), 'kmap_local slot pages'));
  return out;
}

// ---- C4 ----

/** CPU `cpu`'s kmap_local slots, lowest page first (fixmap addresses grow down). */
export const kmapCpuPages = (cpu: number): Span => [kmapSlotVpn(cpu, KM_MAX_IDX - 1), kmapSlotVpn(cpu, 0) + 1];
/** CPU `cpu`'s mermap slice. */
export const mermapCpuPages = (state: AbstractState, cpu: number): Span => {
  const base = mermapSlice(state.config.levels, cpu);
  return [base, base + MERMAP_CPU_PAGES];
};

export const foreignText = (e: TlbEntry, cpu: number, what: 'kmap_local slots' | 'mermap slice'): string => `${tlbText(e)}: it reaches cpu ${cpu}'s ${what}, which only cpu ${cpu} may use`;

/** The witness of the pages of cached entry `e` in [lo, hi) of another CPU's kmap slots or mermap slice. */
export const foreignWitness = (e: TlbEntry, lo: Vpn, hi: Vpn, cpu: number, what: 'kmap_local slots' | 'mermap slice'): Witness =>
  pagesWitness(e.root, e.leaf, lo, hi, foreignText(e, cpu, what));

function c4(state: AbstractState): Witness[] {
  if (state.clients === undefined) return [];
  const out: Witness[] = [];
  for (const e of state.tlb) {
    for (let cpu = 0; cpu < state.config.cpus; cpu++) {
      if (cpu === e.cpu) continue;
      const k = clip(e.leaf, ...kmapCpuPages(cpu));
      if (k !== undefined) out.push(foreignWitness(e, k[0], k[1], cpu, 'kmap_local slots'));
      const m = clip(e.leaf, ...mermapCpuPages(state, cpu));
      if (m !== undefined) out.push(foreignWitness(e, m[0], m[1], cpu, 'mermap slice'));
    }
  }
  return out;
}

// ---- C5 ----

/** Why an in-use allocation of mermap `m` is out of place (another CPU's, outside the usable slice, at or past `next`), or undefined. */
export function allocOutOfPlace(state: AbstractState, m: MermapCpu, a: MermapAlloc): string | undefined {
  const slice = mermapSlice(state.config.levels, m.cpu);
  if (a.cpu !== m.cpu) return `${allocText(a, false)} is held by cpu ${m.cpu}'s mermap`;
  if (!(a.pages >= 1) || a.vpn < slice || a.vpn + a.pages > slice + MERMAP_USABLE_PAGES) return `${allocText(a, false)} is not inside the usable part of its slice ${vpnToHex(slice)} (+${MERMAP_USABLE_PAGES} pages)`;
  if (a.vpn + a.pages > m.next) return `${allocText(a, false)} reaches past the bump pointer ${vpnToHex(m.next)}`;
  return undefined;
}

/** Whether a leaf is one mermap_get makes for `a`: a present 4K non-global leaf translating as `a` does. */
export const isAllocLeaf = (l: Leaf, a: MermapAlloc): boolean => l.size === '4K' && !l.prot.global && sameOffset(l, a);
export const ALLOC_UNMAPPED = 'no present 4K non-global leaf of init_mm maps them to the allocation\'s frames';

/** The pages of `a` no leaf among `leaves` maps as mermap_get does, in maximal runs, as witnesses. */
export function unmappedAllocPages(a: MermapAlloc, leaves: readonly Leaf[]): Witness[] {
  const end = a.vpn + a.pages;
  const covered = leaves.flatMap((l) => (isAllocLeaf(l, a) ? [clip(l, a.vpn, end)].filter((s): s is Span => s !== undefined) : []));
  return uncovered(a.vpn, end, covered).map(([lo, hi]) => rangeWitness(a, lo, hi - lo, `pages of ${allocText(a, false)}: ${ALLOC_UNMAPPED}`));
}

export const mermapOwner = (state: AbstractState, c: ClientState) => (vpn: Vpn): boolean => {
  const cpu = mermapCpuOf(state.config.levels, state.config.cpus, vpn);
  return cpu !== undefined && holdsAllocAt(c, cpu, vpn);
};

/** A CPU's in-use and stale allocations, tagged, in that order: what its no-overlap rule is about. */
export const taggedAllocs = (m: MermapCpu): { readonly a: MermapAlloc; readonly stale: boolean }[] =>
  [...m.allocs.map((a) => ({ a, stale: false })), ...m.stale.map((a) => ({ a, stale: true }))];

function c5(state: AbstractState): Witness[] {
  const c = state.clients;
  if (c === undefined) return [];
  const leaves = initMm(state)?.leaves ?? [];
  const out: Witness[] = [];
  for (const m of c.mermap) {
    for (const a of m.allocs) {
      const why = allocOutOfPlace(state, m, a);
      if (why !== undefined) out.push(rangeWitness(a, a.vpn, a.pages, why));
      out.push(...unmappedAllocPages(a, leaves));
    }
    const all = taggedAllocs(m);
    all.forEach((x, i) => {
      for (const y of all.slice(i + 1)) {
        const s = sharedPages(x.a, y.a);
        if (s !== undefined) out.push({ root: INIT_MM, vpn: s[0], pages: s[1] - s[0], detail: allocsOverlapText(x.a, x.stale, y.a, y.stale) });
      }
    });
  }
  const region = mermapRegion(state.config.levels, state.config.cpus);
  for (const l of leaves) out.push(...unheldPages(l, region, mermapOwner(state, c), 'mermap slice pages'));
  return out;
}

// ---- C6, C7 ----

export const UNMAPPED_DATA_REACHABLE = 'a page handed out by __GFP_UNMAPPED is reachable through the direct map';
export const UNMAPPED_LEAF = 'a frame of an unmapped pageblock is back in the direct map';
/** What a frame of an unmapped pageblock may be: in the pool (free) or handed out by __GFP_UNMAPPED (data). */
export const PAGEBLOCK_UNMAPPED_USES: readonly FrameUse[] = ['free', 'data'];

/** The frames of the unmapped pageblocks that runs `isRun` picks, one range per block and run. */
export function unmappedFrames(state: AbstractState, c: ClientState, isRun: (r: FrameRun) => boolean): FrameRange[] {
  return c.unmapped.flatMap((b) => state.frames.filter(isRun).flatMap((run) => [sharedFrames({ pfn: b, count: PAGEBLOCK_PAGES }, run)].filter((s): s is FrameRange => s !== undefined)));
}

/** Every leaf of every root, and every TLB entry when `cached`, that meets the direct-map pages of `frames`: one witness per range met. */
function atDirectMapPages(state: AbstractState, frames: readonly FrameRange[], cached: boolean, why: string): Witness[] {
  const base = directMapBase(state);
  const out: Witness[] = [];
  for (const f of frames) {
    const [from, to] = [base + f.pfn, base + f.pfn + f.count];
    for (const root of state.roots) {
      for (const l of root.leaves) {
        const s = clip(l, from, to);
        if (s !== undefined) out.push(directMapWitness(state, root.id, s[0], s[1], `${leafText(l)}: ${why}`));
      }
    }
    if (!cached) continue;
    for (const e of state.tlb) {
      const s = clip(e.leaf, from, to);
      if (s !== undefined) out.push(directMapWitness(state, e.root, s[0], s[1], `${tlbText(e)}: ${why}`));
    }
  }
  return out;
}

function c6(state: AbstractState): Witness[] {
  const c = state.clients;
  if (c === undefined) return [];
  return atDirectMapPages(state, unmappedFrames(state, c, (r) => r.use === 'data'), true, UNMAPPED_DATA_REACHABLE);
}

/** Why frames of run `r` in an unmapped pageblock break C7 by their facts (one reason each). */
export function pageblockRunReasons(r: FrameRun): string[] {
  const out: string[] = [];
  if (!r.noDirectMap) out.push(`${runText(r)}: in an unmapped pageblock but not removed from the direct map (noDirectMap clear)`);
  if (!PAGEBLOCK_UNMAPPED_USES.includes(r.use)) out.push(`${runText(r)}: in an unmapped pageblock, whose frames are free or data`);
  return out;
}

function c7(state: AbstractState): Witness[] {
  const c = state.clients;
  if (c === undefined) return [];
  const out: Witness[] = [];
  for (const b of c.unmapped) {
    for (const run of state.frames) {
      const shared = sharedFrames({ pfn: b, count: PAGEBLOCK_PAGES }, run);
      if (shared === undefined) continue;
      for (const why of pageblockRunReasons(run)) out.push({ frames: [shared], detail: why });
    }
  }
  out.push(...atDirectMapPages(state, c.unmapped.map((b) => ({ pfn: b, count: PAGEBLOCK_PAGES })), false, UNMAPPED_LEAF));
  return out;
}

// ---- the catalogue ----

const VMALLOC = 'mm/vmalloc.c (gregkh/linux 04aa71da)';
const MERMAP = 'mm/mermap.c (linux-mm/linux-mm b7f5c72f, the __GFP_UNMAPPED series)';
const PAGE_ALLOC = 'mm/page_alloc.c (bjackman/linux a3c87cc7, the __GFP_UNMAPPED series)';
const HIGHMEM = 'mm/highmem.c (v5.11-era copy of the kmap_local code)';
const LSFMM = 'LWN, "Managing pages outside of the direct map" (LSF/MM/BPF 2026), https://lwn.net/Articles/1072367/';

export const CLIENTS: readonly InvariantDefinition[] = [
  {
    id: 'C1',
    name: 'no_frame_freed_while_a_tlb_may_still_translate_to_it',
    family: 'C',
    title: 'No frame freed while a TLB may still translate to it',
    statement:
      'No free frame is a frame of a stale mermap allocation (put without a flush on its CPU since), or of a lazily freed ' +
      'vmalloc area whose range still meets an owed flush.',
    rationale:
      'include/asm-generic/tlb.h gives the order every page-table user must keep: "1) unhook page 2) TLB invalidate page 3) ' +
      'free page", "we must never free a page before we have ensured there are no live translations left to it". mermap_put ' +
      'clears the PTEs without a flush, so its CPU\'s TLB may still translate the pages, and mermap.c tells the caller to do ' +
      '"a full TLB flush of the region before freeing the pages that were mapped there" (gfp_types.h says the same of the ' +
      'stale entries __GFP_UNMAPPED leaves). vfree clears the area\'s PTEs with vunmap_range_noflush, queues the area for the ' +
      'lazy purge (free_vmap_area_noflush) and frees the pages at once with __free_page: until __purge_vmap_area_lazy runs ' +
      'flush_tlb_kernel_range, any CPU may still read and write the next owner\'s page through the old vmalloc address.',
    references: [
      'include/asm-generic/tlb.h (torvalds/linux 0758cd83), the unhook / invalidate / free order',
      `${VMALLOC} vfree, free_unmap_vmap_area, free_vmap_area_noflush, __purge_vmap_area_lazy, vm_reset_perms`,
      `${MERMAP} mermap_put, the caller's flush before free`,
      'include/linux/gfp_types.h (bjackman/linux 09af0857) __GFP_UNMAPPED',
      LSFMM,
    ],
    kernel: 'strict-only',
    kernelNote:
      'Linux breaks it by design: vfree frees an ordinary area\'s pages before the lazy purge flushes its range (only a ' +
      'VM_FLUSH_RESET_PERMS area is flushed first, in vm_reset_perms), and the mermap leaves the flush before the free to its ' +
      'callers and checks nothing: the lockdep check (Liam Howlett) and the per-page "TLB flush needed on free" tracking ' +
      '(David Hildenbrand) were only proposed at LSF/MM/BPF 2026.',
    holds: c1,
  },
  {
    id: 'C2',
    name: 'vmalloc_areas_map_their_frames',
    family: 'C',
    title: 'Live vmalloc areas map their frames',
    statement:
      'Every page of a live vmalloc area has an entry in init_mm (a leaf or a non-present entry) that translates it to the ' +
      'area\'s pfn plus its offset, no frame of a live area is free, and no two of the live and lazily freed areas share a page.',
    rationale:
      'The address vmalloc returns is the only way its caller reaches the pages it allocated: __vmalloc_area_node allocates ' +
      'them (vm->pages) and vmap_pages_range maps page i of the area to the i-th of them, and they stay allocated until vfree, ' +
      'which unmaps the whole area before it frees them. A page of a live area that maps nothing faults, one that maps another ' +
      'frame reads someone else\'s memory, and a frame freed under a live area is a use after free (set_memory_np keeps the ' +
      'frame in a non-present entry, so that counts as mapped). The vmap allocator gives out no range that is busy or waits ' +
      'for the lazy purge (a lazily freed area rejoins the free tree only in purge_vmap_node, after the flush), so two areas ' +
      'never share a page.',
    references: [
      `${VMALLOC} __vmalloc_node_range_noprof, __vmalloc_area_node, vmap_pages_range, alloc_vmap_area, vfree, remove_vm_area, free_vmap_area_noflush, purge_vmap_node`,
    ],
    kernel: 'guarantees',
    kernelNote:
      '__vmalloc_area_node maps every page of the area or hands the area to defer_vm_area_cleanup, which vfree\'s it, vfree ' +
      'unmaps the whole area before it frees a page, and alloc_vmap_area takes ranges from the free tree only, which a lazily ' +
      'freed area rejoins after its purge.',
    holds: c2,
  },
  {
    id: 'C3',
    name: 'kmap_local_slots_form_a_stack_of_their_cpu',
    family: 'C',
    title: 'kmap_local slots form a stack per CPU',
    statement:
      'The slots each CPU holds are, in order, idx 0 to n-1 at kmapSlotVpn(cpu, idx), each mapped by a present 4K leaf of ' +
      'init_mm to its frame, and no other page of any CPU\'s slots has a present leaf.',
    rationale:
      'kmap_local is a per-CPU stack of fixmap slots: kmap_local_calc_idx gives the slot idx + KM_MAX_IDX * smp_processor_id(), ' +
      '__kmap_local_pfn_prot pushes the index (current->kmap_ctrl.idx), BUG_ONs unless the slot\'s PTE is none and sets it, ' +
      'and kunmap_local_indexed clears the top slot\'s PTE and pops. The stack is all the kernel knows of which slots are in ' +
      'use: a slot on the stack that does not map its page hands its user another page (or a fault), and a page mapped ' +
      'outside the stack is never unmapped, makes the next push onto it BUG_ON, and is not among the PTEs ' +
      '__kmap_local_sched_out and __kmap_local_sched_in clear and restore on a context switch.',
    references: [
      `${HIGHMEM} kmap_local_calc_idx, __kmap_local_pfn_prot, kunmap_local_indexed, __kmap_local_sched_out, __kmap_local_sched_in`,
      'include/asm-generic/kmap_size.h (torvalds/linux 313267e5) KM_MAX_IDX',
      'arch/x86/include/asm/fixmap.h FIX_KMAP_BEGIN, FIX_KMAP_END',
      'include/linux/highmem-internal.h (torvalds/linux 0bf13a84) kmap_local_page',
    ],
    kernel: 'guarantees',
    kernelNote:
      'Push and pop keep the stack and the PTEs in step, even for an out-of-order kunmap_local: kunmap_local_indexed ' +
      'WARNs, then clears and pops the top slot rather than the one asked for, which stays mapped and on the stack (the ' +
      'flush goes to the page asked for, so the top slot\'s translation stays cached: L1\'s concern); BUG_ONs stop a full ' +
      'stack and a slot already set. x86-64 has no HIGHMEM: its kmap_local_page is page_address, and no slot is ever used.',
    holds: c3,
  },
  {
    id: 'C4',
    name: 'cpu_local_mappings_cached_by_their_cpu_only',
    family: 'C',
    title: 'CPU-local mappings cached by their own CPU only',
    statement: 'No TLB entry of one CPU caches a page of another CPU\'s kmap_local slots or of another CPU\'s mermap slice.',
    rationale:
      'A kmap_local slot and a mermap slice belong to one CPU: the address comes from the current CPU (kmap_local_calc_idx ' +
      'with smp_processor_id(), mermap_get with raw_smp_processor_id()) and the holder keeps migration disabled until it ' +
      'unmaps. That is why their unmaps flush only the local TLB: flush_tlb_one_kernel after kunmap_local on HIGHMEM, nothing ' +
      'at all after mermap_put, and arch_mermap_flush_tlb is a local __flush_tlb_all, "safe" because "other CPUs are not ' +
      'allowed to access this CPU\'s slice". A translation another CPU cached survives every flush the owner makes and reaches ' +
      'whatever frame the slot or slice maps next; the mermap region is "only logically local to the CPU", the hardware does ' +
      'not enforce it.',
    references: [
      `${HIGHMEM} kmap_local_calc_idx, __kmap_local_pfn_prot`,
      'arch/x86/include/asm/highmem.h (torvalds/linux 07f29612) arch_kmap_local_post_unmap',
      'arch/x86/mm/tlb.c flush_tlb_one_kernel',
      `${MERMAP} mermap_get, mermap_put`,
      'arch/x86/include/asm/mermap.h (linux-mm/linux-mm b7f5c72f) arch_mermap_flush_tlb',
      LSFMM,
    ],
    kernel: 'guarantees',
    kernelNote:
      'Kernel code reaches a slot or a slice only from the CPU that owns it, with migration disabled from the map to the ' +
      'unmap; nothing stops another CPU\'s speculative walk from caching it (ptspec\'s TLBs fill only on accesses), which is ' +
      'why mermap.h notes that arm64 would need a broadcast flush.',
    holds: c4,
  },
  {
    id: 'C5',
    name: 'mermap_allocations_map_their_frames_non_global',
    family: 'C',
    title: 'Mermap allocations map their frames, non-global',
    statement:
      'Every in-use mermap allocation is its CPU\'s, lies inside the usable part of its CPU\'s slice below `next`, and has each ' +
      'page mapped by a present 4K non-global leaf of init_mm to its pfn plus the offset; no two of a CPU\'s in-use and stale ' +
      'allocations share a page; and no other page of any slice has a present leaf.',
    rationale:
      'mermap_get maps the physically contiguous pages at the CPU\'s bump pointer, one set_pte(pte, pfn_pte(next_pfn++, prot)) ' +
      'per 4K page, and arch_mermap_pgprot_allowed refuses _PAGE_GLOBAL on x86: the mermap is mm-local, and a global entry ' +
      'would survive the switch to another process. The bump allocator does not reuse a range until arch_mermap_flush_tlb has ' +
      'run ("a freed range is not reused until the TLB has been flushed"), so an allocation never shares pages with one whose ' +
      'translations may still be cached, and mermap_put rewrites the PTEs to unmapped, so a slice maps only what is in use.',
    references: [
      `${MERMAP} mermap_get, mermap_put, the bump allocator`,
      'arch/x86/include/asm/mermap.h (linux-mm/linux-mm b7f5c72f) arch_mermap_pgprot_allowed, arch_mermap_flush_tlb',
      'include/linux/mermap_types.h (linux-mm/linux-mm d7720e0f) struct mermap_alloc, struct mermap_cpu',
    ],
    kernel: 'enforces',
    kernelNote:
      'mermap_get refuses (NULL, with a WARN) a global pgprot, a size beyond the slice and a slice with no room even after its ' +
      'flush; the rest holds by construction of its bump allocator and of mermap_put.',
    holds: c5,
  },
  {
    id: 'C6',
    name: 'handed_out_unmapped_pages_are_unreachable_through_the_direct_map',
    family: 'C',
    title: 'Pages handed out by __GFP_UNMAPPED unreachable through the direct map',
    statement:
      'No data frame of an unmapped pageblock has a present leaf, in any root, at its direct-map page, and no TLB entry of ' +
      'any CPU caches that page, owed flush or not.',
    rationale:
      '__GFP_UNMAPPED exists to hand out pages that the direct map does not reach (guest_memfd\'s direct-map removal, ASI): ' +
      '__rmqueue_direct_map takes a whole pageblock, calls set_direct_map_valid_noflush(false) over it, flushes the block\'s ' +
      'range once with flush_tlb_kernel_range and only then hands pages out. A present direct-map leaf, or a translation a CPU ' +
      'still caches there, lets the kernel\'s own loads, speculative ones included, reach the page through __va.',
    references: [
      `${PAGE_ALLOC} __rmqueue_direct_map, rmqueue_buddy`,
      'include/linux/gfp_types.h (bjackman/linux 09af0857) __GFP_UNMAPPED',
      '"[PATCH RFC 00/19] mm: Add __GFP_UNMAPPED", https://lkml.iu.edu/hypermail/linux/kernel/2602.3/03398.html',
    ],
    kernel: 'strict-only',
    kernelNote:
      'The allocator keeps it for what it hands out (the block is unmapped and flushed first), but gfp_types.h lets the caller ' +
      'change a page\'s direct-map presence as long as it restores it before freeing, and nothing refuses putting the page ' +
      'back in the direct map meanwhile.',
    holds: c6,
  },
  {
    id: 'C7',
    name: 'unmapped_pageblocks_are_absent_from_the_direct_map',
    family: 'C',
    title: 'Unmapped pageblocks absent from the direct map',
    statement:
      'Every frame of an unmapped pageblock has noDirectMap, no present leaf in any root at its direct-map page, and use free ' +
      'or data.',
    rationale:
      'The pageblock\'s freetype flag (FREETYPE_UNMAPPED, in PB_freetype_flags) is the allocator\'s record that the block is ' +
      'out of the direct map: __rmqueue_direct_map sets it only after the removal and the flush, a page freed there goes back ' +
      'to the unmapped free list (split_large_buddy reads get_pfnblock_freetype), can_merge_freetypes refuses to merge it ' +
      'with mapped buddies ("changing those requires updating pagetables"), and only a mapped allocation that claims the ' +
      'whole block maps it back and clears the flag. A frame of a flagged block in the direct map would be handed out as ' +
      'unmapped while it is not; page tables and kernel memory never come from such a block (page tables are never ' +
      'allocated with __GFP_UNMAPPED).',
    references: [
      `${PAGE_ALLOC} __rmqueue_direct_map, set_pageblock_freetype_flags, get_pfnblock_freetype, split_large_buddy, can_merge_freetypes`,
      'include/linux/freetype.h (intel-lab-lkp/linux f8de7ea5) FREETYPE_UNMAPPED',
      'include/linux/gfp_types.h (bjackman/linux 09af0857) __GFP_UNMAPPED',
    ],
    kernel: 'strict-only',
    kernelNote:
      'As for C6: gfp_types.h lets the caller change a page\'s direct-map presence if it restores it before freeing, and ' +
      'nothing refuses set_direct_map_default_noflush or set_memory_p on a frame of a flagged block.',
    holds: c7,
  },
];
