/**
 * Every fast check (checker/) against its definition (spec/invariants `holds`): on random
 * states and on adversarial ones (overlapping, unsorted and misaligned leaves, leaves at
 * the edges of frame runs, aliases of text, rodata and table frames, partly overlapping W
 * and X aliases, noDirectMap frames, damaged frame runs, dump-like states without frame
 * facts, several roots; TLB entries current, stale, of the wrong size or overlapping at two sizes, flush obligations over
 * some of them, paging-structure caches current, unlinked and freed; the clients' bookkeeping consistent with the leaves
 * and frames or not, and what a TLB may still hold of it), both find nothing or both find something, and their witnesses
 * cover the same (root, page) pairs and the same frames. Scoped checks, on states whose
 * leaves are sorted and disjoint as a scoped check trusts, report only what the
 * definition reports and everything it reports inside the scope.
 *
 * States are small (8192 frames, a few leaves per root) so that the definitions stay
 * quick and the checks rarely reach MAX_WITNESSES; when one does, only what it listed is
 * compared.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkDisagreements, disagreementText, scopedCheckDisagreements } from '../checker/agreement.ts';
import { CATALOGUE } from '../checker/index.ts';
import { PAGES, X86_64_LAYOUT_4LEVEL as L, kernelLayout, lowerHalfEnd, upperHalfStart, type Level, type PageSize, type PagingLevels, type Pfn } from '../spec/address.ts';
import { tableFootprint } from '../spec/footprint.ts';
import type { Witness } from '../spec/invariant.ts';
import { tablesNeeded } from '../spec/invariants/structure.ts';
import { ASI_GLOBAL_ROOT, LDT_PROT, PTI_USER_ROOT, ldtRemap, ldtSlotVpn, processRootIds, rootView, slotPages } from '../spec/roots.ts';
import { MERMAP_USABLE_PAGES, kmapSlotVpn, mermapSlice, vmallocRegion, type ClientState, type KmapSlot, type LazyArea, type MermapAlloc, type MermapCpu, type VmallocArea } from '../spec/clients.ts';
import { PAGEBLOCK_PAGES } from '../spec/contracts/isolation.ts';
import {
  CACHE_MODES, CACHED_TABLE_STATES, FRAME_USES, PAGE_KERNEL, type AbstractRoot, type AbstractState, type CacheMode, type CachedTableState, type FlushObligation, type FrameRun,
  type Leaf, type Prot, type RootKind, type TlbEntry, type WalkCacheEntry,
} from '../spec/state.ts';
import { fcParams } from './seed.ts';

const FRAMES = 16 * PAGES['2M'];
const DM = L.pageOffset;
const IMAGE = L.kernelText;
const VMALLOC = L.vmallocStart;

/** True with probability tenths / 10. */
const sometimes = (tenths: number): fc.Arbitrary<boolean> =>
  fc.oneof({ weight: 10 - tenths, arbitrary: fc.constant(false) }, { weight: tenths, arbitrary: fc.constant(true) });

const protArb: fc.Arbitrary<Prot> = fc
  .record({
    write: fc.boolean(),
    user: sometimes(2),
    execKernel: sometimes(4),
    global: fc.boolean(),
    cache: fc.oneof({ weight: 19, arbitrary: fc.constantFrom(...CACHE_MODES) }, { weight: 1, arbitrary: fc.constant('WA' as CacheMode) }),
    // x86 cannot express it (T2), but a broken abstraction function could.
    oddExecUser: sometimes(1),
    // _PAGE_KERNEL_4K: legal on 4K entries only (H4).
    kernel4k: sometimes(1),
  })
  .map(({ oddExecUser, kernel4k, ...p }) => ({ ...p, execUser: oddExecUser !== (p.user && p.execKernel), ...(kernel4k ? { kernel4k } : {}) }));

/** Frame runs over [0, FRAMES) cut at 2M boundaries, just after them, or anywhere. */
const runsArb: fc.Arbitrary<FrameRun[]> = fc
  .record({
    cuts: fc.uniqueArray(
      fc.oneof(fc.integer({ min: 1, max: FRAMES - 1 }), fc.integer({ min: 1, max: 15 }).map((k) => k * 512), fc.integer({ min: 1, max: 15 }).map((k) => k * 512 + 1)),
      { maxLength: 8 },
    ),
    facts: fc.array(
      fc.record({ use: fc.constantFrom(...FRAME_USES), sensitive: sometimes(2), noDirectMap: sometimes(2), memtype: fc.constantFrom<FrameRun['memtype']>(undefined, undefined, undefined, 'WC', 'UC-') })
        .map(({ memtype, ...f }) => (memtype === undefined ? f : { ...f, memtype })),
      { minLength: 9, maxLength: 9 },
    ),
  })
  .map(({ cuts, facts }) => {
    const edges = [0, ...[...cuts].sort((a, b) => a - b), FRAMES];
    return edges.slice(1).map((end, i) => ({ pfn: edges[i]!, count: end - edges[i]!, ...facts[i]! }));
  });

type FrameDamage = 'none' | 'dump' | 'swap' | 'drop' | 'extend' | 'zero' | 'split';

/** Break the runs the way S7 and S8 describe, or drop them as a parsed dump has none. */
function damage(runs: FrameRun[], how: FrameDamage, at: number): FrameRun[] {
  const i = at % runs.length;
  const r = runs[i]!;
  const out = [...runs];
  switch (how) {
    case 'none': return out;
    case 'dump': return [];
    case 'swap': if (i + 1 < out.length) [out[i], out[i + 1]] = [out[i + 1]!, r]; return out;
    case 'drop': out.splice(i, 1); return out;
    case 'extend': out[i] = { ...r, count: r.count + 300 }; return out;
    case 'zero': out[i] = { ...r, count: 0 }; return out;
    case 'split': if (r.count > 1) out.splice(i, 1, { ...r, count: 1 }, { ...r, pfn: r.pfn + 1, count: r.count - 1 }); return out;
  }
}

type Region = 'dm' | 'image' | 'vmalloc' | 'user' | 'hole' | 'lowEdge';

/**
 * One leaf. Adversarial frames sit at the edges of the state's runs (the first, last and
 * one-past-last frame, give or take two), so that leaves straddle runs and alias one
 * another; random frames are anywhere in memory, or past it.
 */
function leafArb(runs: readonly FrameRun[], adversarial: boolean): fc.Arbitrary<Leaf> {
  const edges = runs.flatMap((r) => [r.pfn, r.pfn + r.count - 1, r.pfn + r.count]);
  const near = edges.length === 0 ? fc.nat({ max: FRAMES }) : fc.tuple(fc.constantFrom(...edges), fc.integer({ min: -2, max: 2 })).map(([e, d]) => e + d);
  const pfnArb = fc.oneof(
    { weight: 16, arbitrary: adversarial ? near : fc.nat({ max: FRAMES + 1024 }) },
    { weight: 1, arbitrary: fc.nat({ max: 64 }).map((k) => 2 ** 24 + k * 512) },
    { weight: 1, arbitrary: fc.constant(-1) },
  );
  return fc
    .record({
      size: fc.oneof({ weight: 10, arbitrary: fc.constantFrom<PageSize>('4K', '4K', '2M', '2M', '1G') }, { weight: 1, arbitrary: fc.constant('512G' as PageSize) }),
      raw: pfnArb,
      alignPfn: sometimes(8),
      region: fc.constantFrom<Region>('dm', 'dm', 'dm', 'image', 'image', 'vmalloc', 'user', 'hole', 'lowEdge'),
      slot: fc.nat({ max: 64 }),
      vpnSkew: fc.oneof({ weight: 9, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.constantFrom(1, 256) }),
      prot: protArb,
    })
    .map(({ size, raw, alignPfn, region, slot, vpnSkew, prot }) => {
      // '512G' is no key of PAGES: a leaf one level too high.
      const n = PAGES[size] ?? PAGES['1G'] * 512;
      const pfn = alignPfn ? raw - (((raw % n) + n) % n) : raw;
      const base: Record<Region, number> = {
        dm: DM + pfn,
        image: IMAGE + pfn,
        vmalloc: VMALLOC + slot * n,
        user: (slot + 1) * n,
        hole: upperHalfStart(4) - 1,
        lowEdge: lowerHalfEnd(4) - Math.ceil(n / 2),
      };
      return { vpn: base[region] + vpnSkew, pfn, size, prot };
    });
}

/** Leaves sorted by vpn, each overlapping none kept before it: what a scoped check trusts. */
function disjoint(leaves: readonly Leaf[]): Leaf[] {
  const kept: Leaf[] = [];
  for (const l of [...leaves].sort((a, b) => a.vpn - b.vpn)) {
    const prev = kept[kept.length - 1];
    if (prev === undefined || prev.vpn + (PAGES[prev.size] ?? 0) <= l.vpn) kept.push(l);
  }
  return kept;
}

/** How a copy of a leaf in another root relates to it: the same translation, other rights, another frame. */
type CopyHow = 'same' | 'prot' | 'frame';
const copyHowArb = fc.constantFrom<CopyHow>('same', 'same', 'prot', 'frame');
const copyOf = (l: Leaf, how: CopyHow, prot: Prot): Leaf => (how === 'prot' ? { ...l, prot } : how === 'frame' ? { ...l, pfn: l.pfn + 1 } : l);

/** Kernel-half places of the isolation roots: the PTI allowlist's ranges and, outside it, the image past rodata, vmalloc and the direct map. */
type IsoRegion = 'cea' | 'espfix' | 'ldt' | 'image' | 'vmalloc' | 'dm';
const SLOTS = ['dm', 'vmalloc', 'ldt'] as const;

/** One process: its user mappings, how its user copy's user half differs, its LDT, diverged slots and stray own leaves. */
const processArb = (runs: readonly FrameRun[], adversarial: boolean) =>
  fc.record({
    user: fc.array(fc.record({ slot: fc.nat({ max: 64 }), size: fc.constantFrom<PageSize>('4K', '4K', '2M'), pfn: fc.nat({ max: FRAMES }), prot: protArb, global: sometimes(1) }), { maxLength: 3 }),
    userCopy: fc.constantFrom('same', 'same', 'same', 'drop', 'prot', 'frame', 'extra'),
    // __pti_set_user_pgtbl's NX on the kernel copy, mostly done.
    poison: sometimes(8),
    ldt: fc.option(fc.record({ slot: fc.constantFrom<0 | 1>(0, 1), pages: fc.integer({ min: 1, max: 3 }), pfn: leafArb(runs, adversarial).map((l) => l.pfn), global: sometimes(1) })),
    diverged: fc.oneof({ weight: 3, arbitrary: fc.constant<(typeof SLOTS)[number][]>([]) }, { weight: 1, arbitrary: fc.subarray([...SLOTS], { minLength: 1 }) }),
    divergedIn: fc.constantFrom(0, 1, 2),
    stray: fc.oneof({ weight: 3, arbitrary: fc.constant([]) }, { weight: 1, arbitrary: fc.array(leafArb(runs, adversarial), { maxLength: 1 }) }),
    strayIn: fc.constantFrom(0, 1, 2),
    missing: fc.oneof({ weight: 8, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.constantFrom(0, 1, 2) }),
  });

/** Roots 1 and 2 and a process or two: clones of init_mm's leaves, identical or not, and leaves in and out of the allowlist. */
const isolationArb = (runs: readonly FrameRun[], adversarial: boolean) =>
  fc.record({
    clones: fc.array(fc.record({ at: fc.nat(), how: copyHowArb, global: fc.boolean(), prot: protArb }), { maxLength: 3 }),
    shared: fc.array(fc.record({ region: fc.constantFrom<IsoRegion>('cea', 'espfix', 'ldt', 'image', 'vmalloc'), off: fc.nat({ max: 1023 }), size: fc.constantFrom<PageSize>('4K', '2M', '2M', '1G'), pfn: fc.nat({ max: FRAMES }), global: fc.boolean() }), { maxLength: 2 }),
    restricted: fc.array(fc.record({ at: fc.nat(), how: copyHowArb, prot: protArb }), { maxLength: 3 }),
    restrictedStray: fc.oneof({ weight: 3, arbitrary: fc.constant([]) }, { weight: 1, arbitrary: fc.array(leafArb(runs, adversarial), { maxLength: 1 }) }),
    processes: fc.array(processArb(runs, adversarial), { minLength: 1, maxLength: 2 }),
  });
type Isolation = ReturnType<typeof isolationArb> extends fc.Arbitrary<infer T> ? T : never;

/** The roots of a system with the isolation capability around `init` (root 0), as spec/roots.ts numbers them. */
function isolationRoots(levels: PagingLevels, init: AbstractRoot, iso: Isolation, order: (ls: Leaf[]) => Leaf[]): AbstractRoot[] {
  const K = kernelLayout(levels);
  const base: Record<IsoRegion, number> = { cea: K.cpuEntryArea, espfix: K.espfix, ldt: ldtRemap(levels).vpn, image: IMAGE, vmalloc: K.vmallocStart, dm: K.pageOffset };
  const slotOf = (vpn: number): number => Math.floor(vpn / slotPages(levels)) * slotPages(levels);
  const pick = (at: number): Leaf | undefined => init.leaves[at % Math.max(1, init.leaves.length)];
  const clones = iso.clones.flatMap(({ at, how, global, prot }) => {
    const l = pick(at);
    return l === undefined ? [] : [copyOf({ ...l, prot: { ...l.prot, global } }, how, prot)];
  });
  const shared = iso.shared.map(({ region, off, size, pfn, global }) => ({ vpn: base[region] + off * PAGES[size], pfn, size, prot: { ...LDT_PROT, global } }));
  const restricted = iso.restricted.flatMap(({ at, how, prot }) => {
    const l = pick(at);
    return l === undefined ? [] : [copyOf(l, how, prot)];
  });
  const roots: AbstractRoot[] = [
    init,
    { id: PTI_USER_ROOT, kind: 'kernel-user', leaves: order([...clones, ...shared]) },
    { id: ASI_GLOBAL_ROOT, kind: 'asi-global', leaves: order([...restricted, ...iso.restrictedStray]) },
  ];
  iso.processes.forEach((p, i) => {
    const pid = i + 1;
    const ids = processRootIds(pid);
    const user = p.user.map(({ slot, size, pfn, prot, global }) => ({ vpn: (slot + 1) * PAGES[size], pfn, size, prot: { ...prot, user: true, global } }));
    const kernelUser = user.map((l) => (p.poison ? { ...l, prot: { ...l.prot, execKernel: false, execUser: false } } : l));
    const first = user[0];
    const copy = first === undefined ? user : p.userCopy === 'drop' ? user.slice(1) : p.userCopy === 'prot' ? [{ ...first, prot: { ...first.prot, write: !first.prot.write } }, ...user.slice(1)]
      : p.userCopy === 'frame' ? [{ ...first, pfn: first.pfn + 1 }, ...user.slice(1)] : p.userCopy === 'extra' ? [...user, { ...first, vpn: 70 * PAGES['2M'] }] : user;
    const ldt = p.ldt === null ? [] : Array.from({ length: p.ldt.pages }, (_, k) => ({ vpn: ldtSlotVpn(levels, p.ldt!.slot) + k, pfn: p.ldt!.pfn + k, size: '4K' as PageSize, prot: { ...LDT_PROT, global: p.ldt!.global } }));
    const own = [[...kernelUser, ...ldt], copy, []];
    own[p.strayIn] = [...own[p.strayIn]!, ...p.stray];
    const kinds = ['process-kernel', 'process-user', 'asi'] as const;
    [ids.kernelRoot, ids.userRoot, ids.asiRoot].forEach((id, k) => {
      if (p.missing === k) return;
      const diverged = p.divergedIn === k ? [...new Set(p.diverged.map((s) => slotOf(base[s])))].sort((a, b) => a - b) : [];
      roots.push({ id, kind: kinds[k]!, pid, leaves: order(own[k]!), ...(diverged.length > 0 ? { diverged } : {}) });
    });
  });
  return roots;
}

/**
 * The clients' bookkeeping (spec/clients.ts), drawn as choices that `withClients` lays out
 * over a state: vmalloc areas live (mapped whole, in part, to another frame, or by
 * non-present entries) and lazily freed (owed a flush or not), kmap_local stacks (in order,
 * out of order, unmapped, with a stray page), mermap allocations in use and stale (by the
 * bump pointer, overlapping, past it, global, unmapped, left mapped), unmapped pageblocks
 * (with the pool's frame facts or as drawn, the direct map removed or kept). Absent in a
 * third of the states: no capability.
 */
const clientsArb = fc.option(
  fc.record({
    areas: fc.array(
      fc.record({
        at: fc.nat({ max: 12 }),
        pages: fc.integer({ min: 1, max: 24 }),
        huge: sometimes(2),
        pfn: fc.nat({ max: FRAMES - 1 }),
        lazy: sometimes(3),
        owed: sometimes(5),
        mapped: fc.constantFrom('all', 'all', 'all', 'part', 'frame', 'nonPresent'),
      }),
      { maxLength: 3 },
    ),
    slots: fc.array(fc.record({ cpu: fc.constantFrom(0, 1), pfn: fc.nat({ max: FRAMES - 1 }), fault: fc.constantFrom('none', 'none', 'none', 'none', 'idx', 'unmapped', 'stray') }), { maxLength: 3 }),
    allocs: fc.array(
      fc.record({
        cpu: fc.constantFrom(0, 1),
        pages: fc.integer({ min: 1, max: 5 }),
        pfn: fc.nat({ max: FRAMES - 1 }),
        // A frame of the first unmapped pageblock: the mermap maps pages absent from the direct map.
        inPool: sometimes(3),
        stale: sometimes(4),
        fault: fc.constantFrom('none', 'none', 'none', 'none', 'none', 'none', 'global', 'unmapped', 'overlap', 'pastNext', 'leftMapped'),
      }),
      { maxLength: 4 },
    ),
    blocks: fc.array(fc.record({ block: fc.nat({ max: 15 }), facts: fc.constantFrom('pool', 'pool', 'pool', 'as drawn'), data: fc.nat({ max: PAGEBLOCK_PAGES }), keepDm: sometimes(2) }), { maxLength: 2 }),
  }),
  { nil: undefined, freq: 3 },
);
type ClientDraw = NonNullable<ReturnType<typeof clientsArb.generate>['value']>;

/** Frame runs with [pfn, pfn + count) given other facts, runs split at the edges (not merged back). */
function withFacts(runs: readonly FrameRun[], pfn: Pfn, count: number, facts: Pick<FrameRun, 'use' | 'noDirectMap'>): FrameRun[] {
  const end = pfn + count;
  return runs.flatMap((r) => {
    const rEnd = r.pfn + r.count;
    if (count <= 0 || rEnd <= pfn || r.pfn >= end) return [r];
    const from = Math.max(r.pfn, pfn);
    const to = Math.min(rEnd, end);
    const { memtype: _, ...plain } = r;
    return [
      ...(r.pfn < from ? [{ ...r, count: from - r.pfn }] : []),
      { ...plain, ...facts, sensitive: false, pfn: from, count: to - from },
      ...(rEnd > to ? [{ ...r, pfn: to, count: rEnd - to }] : []),
    ];
  });
}

/** 4K leaves mapping [vpn, vpn + pages) to [pfn, pfn + pages). */
const leaves4k = (vpn: number, pfn: number, pages: number, prot: Prot = PAGE_KERNEL): Leaf[] =>
  Array.from({ length: pages }, (_, i) => ({ vpn: vpn + i, pfn: pfn + i, size: '4K', prot }));

/** The client bookkeeping a draw describes, with the leaves, entries, obligations and frame facts it puts in the state. */
function withClients(state: AbstractState, d: ClientDraw, order: (ls: Leaf[]) => Leaf[]): AbstractState {
  const { levels } = state.config;
  const dm = kernelLayout(levels).pageOffset;
  const add: Leaf[] = [];
  const nonPresent: Leaf[] = [];
  const owed: FlushObligation[] = [];
  let frames = [...state.frames];

  // Pageblocks first: allocations may take their frames.
  const blocks = d.blocks.filter((b, i) => d.blocks.findIndex((x) => x.block === b.block) === i).sort((a, b) => a.block - b.block);
  const unmapped = blocks.map((b) => b.block * PAGEBLOCK_PAGES);
  const dropDm: [number, number][] = [];
  for (const b of blocks) {
    const pfn = b.block * PAGEBLOCK_PAGES;
    if (b.facts === 'pool') frames = withFacts(withFacts(frames, pfn, b.data, { use: 'data', noDirectMap: true }), pfn + b.data, PAGEBLOCK_PAGES - b.data, { use: 'free', noDirectMap: true });
    if (!b.keepDm) dropDm.push([dm + pfn, dm + pfn + PAGEBLOCK_PAGES]);
  }

  const V = vmallocRegion(levels).vpn;
  const vmalloc: VmallocArea[] = [];
  const lazy: LazyArea[] = [];
  for (const a of d.areas) {
    const pages = a.huge ? PAGES['2M'] : a.pages;
    const vpn = a.huge ? V + PAGES['2M'] * (64 + a.at) : V + 4096 + 32 * a.at;
    const pfn = a.huge ? a.pfn - (a.pfn % PAGES['2M']) : a.pfn;
    if (a.lazy) {
      lazy.push({ vpn, pages, pfn });
      if (a.owed) owed.push({ vpn, pages, reason: 'vfree' });
      continue;
    }
    vmalloc.push({ vpn, pages, pfn, huge: a.huge, resetPerms: false });
    const mapping = a.huge ? [{ vpn, pfn, size: '2M' as PageSize, prot: PAGE_KERNEL }] : leaves4k(vpn, pfn, pages);
    if (a.mapped === 'nonPresent') nonPresent.push(...mapping);
    else if (a.mapped === 'part') add.push(...mapping.slice(0, -1));
    else if (a.mapped === 'frame') add.push(...mapping.map((l, i) => (i === 0 ? { ...l, pfn: l.pfn + 1 } : l)));
    else add.push(...mapping);
  }

  const kmap: KmapSlot[] = [];
  for (const cpu of [0, 1]) {
    d.slots.filter((s) => s.cpu === cpu).forEach((s, k) => {
      const idx = s.fault === 'idx' ? k + 1 : k;
      const vpn = kmapSlotVpn(cpu, idx);
      kmap.push({ cpu, idx, vpn, pfn: s.pfn });
      if (s.fault !== 'unmapped') add.push({ vpn, pfn: s.pfn, size: '4K', prot: PAGE_KERNEL });
      if (s.fault === 'stray') add.push({ vpn: kmapSlotVpn(cpu, k + 8), pfn: s.pfn, size: '4K', prot: PAGE_KERNEL });
    });
  }

  const nonGlobal: Prot = { ...PAGE_KERNEL, global: false };
  const mermap: MermapCpu[] = [0, 1].map((cpu) => {
    const slice = mermapSlice(levels, cpu);
    let next = slice;
    const allocs: MermapAlloc[] = [];
    const stale: MermapAlloc[] = [];
    for (const x of d.allocs.filter((y) => y.cpu === cpu)) {
      const at = x.fault === 'overlap' ? slice : next;
      if (at + x.pages > slice + MERMAP_USABLE_PAGES) continue;
      const pfn = x.inPool && unmapped.length > 0 ? unmapped[0]! + (x.pfn % (PAGEBLOCK_PAGES - x.pages)) : x.pfn;
      const a: MermapAlloc = { cpu, vpn: at, pages: x.pages, pfn };
      next = Math.max(next, at + x.pages);
      (x.stale ? stale : allocs).push(a);
      const mapped = x.stale ? x.fault === 'leftMapped' : x.fault !== 'unmapped';
      if (mapped) add.push(...leaves4k(at, pfn, x.pages, x.fault === 'global' ? PAGE_KERNEL : nonGlobal));
      if (x.fault === 'pastNext' && !x.stale) next = at;
    }
    const byVpn = (p: MermapAlloc, q: MermapAlloc): number => p.vpn - q.vpn;
    return { cpu, next, allocs: allocs.sort(byVpn), stale: stale.sort(byVpn) };
  });

  const clients: ClientState = { vmalloc: vmalloc.sort((a, b) => a.vpn - b.vpn), lazy: lazy.sort((a, b) => a.vpn - b.vpn), kmap, mermap, unmapped, memory: [] };
  const [root0, ...rest] = state.roots;
  const kept = root0!.leaves.filter((l) => !dropDm.some(([lo, hi]) => l.vpn < hi && lo < l.vpn + (PAGES[l.size] ?? 0)));
  const meets = (l: Leaf, list: readonly Leaf[]): boolean => list.some((e) => e.vpn < l.vpn + PAGES[l.size] && l.vpn < e.vpn + (PAGES[e.size] ?? 0));
  // Leaves and non-present entries stay disjoint, as a scoped check trusts: a drawn entry that meets one is left out.
  const np = order([...(root0!.nonPresent ?? []), ...nonPresent.filter((e) => !meets(e, kept))]);
  // An unsorted root (S4's case) stays unsorted: the client leaves go after its own.
  const sorted = kept.every((l, i) => i === 0 || kept[i - 1]!.vpn <= l.vpn);
  const drawn = add.filter((l) => !meets(l, np));
  const leaves = sorted ? order([...kept, ...drawn]) : [...kept, ...drawn];
  const root: AbstractRoot = { ...root0!, leaves, ...(np.length > 0 ? { nonPresent: np } : {}) };
  return { ...state, frames, roots: [root, ...rest], pendingFlush: [...state.pendingFlush, ...owed], clients };
}

type Shape = 'random' | 'adversarial' | 'disjoint';

function stateArb(shape: Shape): fc.Arbitrary<AbstractState> {
  return runsArb.chain((runs) =>
    fc
      .record({
        levels: fc.constantFrom<4 | 5>(4, 4, 4, 5),
        pse: sometimes(8),
        gbpages: sometimes(8),
        maxPhysBits: fc.constantFrom(46, 36),
        poolAt: fc.nat(),
        poolElsewhere: sometimes(1),
        frameDamage: fc.oneof({ weight: 12, arbitrary: fc.constant<FrameDamage>('none') }, { weight: 6, arbitrary: fc.constantFrom<FrameDamage>('dump', 'swap', 'drop', 'extend', 'zero', 'split') }),
        damageAt: fc.nat(),
        roots: fc.array(
          fc.record({
            kind: fc.constantFrom<RootKind>('kernel', 'process-kernel', 'process-user', 'asi'),
            leaves: fc.array(leafArb(runs, shape !== 'random'), { maxLength: 6 }),
            unsorted: sometimes(2),
            // Non-present entries (the linux profile's set_direct_map_invalid): mostly none.
            nonPresent: fc.oneof({ weight: 3, arbitrary: fc.constant([]) }, { weight: 1, arbitrary: fc.array(leafArb(runs, shape !== 'random'), { maxLength: 2 }) }),
          }),
          { minLength: 1, maxLength: 3 },
        ),
        rootShape: fc.constantFrom('ids in order', 'ids in order', 'ids in order', 'ids all 0', 'no id 0', 'root 0 not kernel', 'isolation', 'isolation', 'isolation'),
        isolation: isolationArb(runs, shape !== 'random'),
        pendingFlush: fc.array(
          fc.record({ vpn: fc.oneof(fc.nat({ max: 64 }).map((k) => DM + k * 4), fc.constant(16)), pages: fc.nat({ max: 16 }), reason: fc.constant('noflush') }),
          { maxLength: 3 },
        ),
        tableSkew: fc.constantFrom(0, 0, 0, 1, -1, 40),
        pendingTableFrees: fc.constantFrom(0, 0, 1, -1),
        clients: clientsArb,
      })
      .map((g): AbstractState => {
        const poolRun = runs[g.poolAt % runs.length]!;
        const tablePool = g.poolElsewhere ? { pfn: 100, count: 50 } : { pfn: poolRun.pfn, count: poolRun.count };
        const withPool = runs.map((r) => (r === poolRun ? { ...r, use: 'pagetable' as const } : r));
        const frames = damage(withPool, g.frameDamage, g.damageAt);
        const generic: AbstractRoot[] = g.roots.map((r, i) => {
          const leaves = shape === 'disjoint' ? disjoint(r.leaves) : r.unsorted ? r.leaves : [...r.leaves].sort((a, b) => a.vpn - b.vpn);
          const meetsLeaf = (e: Leaf): boolean => leaves.some((l) => l.vpn < e.vpn + PAGES[e.size] && e.vpn < l.vpn + PAGES[l.size]);
          const nonPresent = shape === 'disjoint' ? disjoint(r.nonPresent).filter((e) => !meetsLeaf(e)) : [...r.nonPresent].sort((a, b) => a.vpn - b.vpn);
          const id = g.rootShape === 'ids all 0' ? 0 : g.rootShape === 'no id 0' ? i + 1 : i;
          return { id, kind: i === 0 && g.rootShape !== 'root 0 not kernel' ? 'kernel' : r.kind, leaves, ...(nonPresent.length > 0 ? { nonPresent } : {}) };
        });
        const order = (ls: Leaf[]): Leaf[] => (shape === 'disjoint' ? disjoint(ls) : [...ls].sort((a, b) => a.vpn - b.vpn));
        const roots = g.rootShape === 'isolation' ? isolationRoots(g.levels, { ...generic[0]!, id: 0, kind: 'kernel' }, g.isolation, order) : generic;
        const config = { levels: g.levels, features: { pse: g.pse, gbpages: g.gbpages }, cpus: 2, maxPhysBits: g.maxPhysBits, frames: FRAMES, tablePool };
        const plain: AbstractState = { config, frames, roots, tlb: [], pendingFlush: g.pendingFlush, tablesInUse: 0, pendingTableFrees: g.pendingTableFrees };
        const base = g.clients === undefined ? plain : withClients(plain, g.clients, order);
        // The count S11 asks for (none where it does not apply), give or take the skew.
        const needed = tablesNeeded(base, (levels, ls) => tableFootprint(levels, [...ls].sort((a, b) => a.vpn - b.vpn)))?.needed ?? tableFootprint(g.levels, base.roots[0]!.leaves);
        return { ...base, tablesInUse: base.frames.length === 0 ? 0 : needed + g.pendingTableFrees + g.tableSkew };
      }),
  );
}

/** Obligations as S14 wants them: sorted, merged where they overlap or touch, each of at least one page. */
function canonicalOwed(list: readonly FlushObligation[]): FlushObligation[] {
  const out: FlushObligation[] = [];
  for (const o of [...list].filter((x) => x.pages > 0).sort((a, b) => a.vpn - b.vpn)) {
    const last = out[out.length - 1];
    if (last !== undefined && o.vpn <= last.vpn + last.pages) out[out.length - 1] = { ...last, pages: Math.max(last.vpn + last.pages, o.vpn + o.pages) - last.vpn };
    else out.push(o);
  }
  return out;
}

const tlbOrder = (a: TlbEntry, b: TlbEntry): number => a.cpu - b.cpu || a.root - b.root || a.leaf.vpn - b.leaf.vpn || (PAGES[a.leaf.size] ?? 0) - (PAGES[b.leaf.size] ?? 0);
const SMALLER: Partial<Record<PageSize, PageSize>> = { '2M': '4K', '1G': '2M' };
const LARGER: Partial<Record<PageSize, PageSize>> = { '4K': '2M', '2M': '1G' };

/** The aligned `size` piece of `l` at index `at` (a 4K page of a 2M leaf, a 2M one of a 1G leaf). */
const pieceOf = (l: Leaf, size: PageSize, at: number): Leaf => {
  const off = (at % 512) * PAGES[size];
  return { ...l, vpn: l.vpn + off, pfn: l.pfn + off, size };
};

/**
 * TLB entries, flush obligations and paging-structure caches for a state: translations of
 * its leaves cached as they are (current), with other rights or frames, one size up or
 * down (a 2M entry over 4K tables, a 4K one under a 2M leaf), a leaf and a piece of it
 * that disagree on one CPU (L3), entries of roots that do not exist and anywhere at all;
 * obligations over some of them (mostly canonical, sometimes raw: unsorted, empty); cached
 * table entries in all three states.
 */
function cachesArb(state: AbstractState): fc.Arbitrary<AbstractState> {
  // What each root translates, mirrored slots included: a process root caches init_mm's kernel half.
  // And what a TLB may still hold where the tables no longer map: a stale mermap allocation's
  // first page, an unmapped pageblock's first direct-map page.
  const ghosts = state.clients === undefined ? [] : [
    ...state.clients.mermap.flatMap((m) => m.stale.map((a): Leaf => ({ vpn: a.vpn, pfn: a.pfn, size: '4K', prot: { ...PAGE_KERNEL, global: false } }))),
    ...state.clients.unmapped.map((b): Leaf => ({ vpn: kernelLayout(state.config.levels).pageOffset + b, pfn: b, size: '4K', prot: PAGE_KERNEL })),
  ];
  const current = state.roots.flatMap((r) => rootView(state, r.id).map((leaf) => ({ root: r.id, leaf })));
  const mapped = [...current, ...ghosts.map((leaf) => ({ root: 0, leaf }))];
  const ids = [...new Set(state.roots.map((r) => r.id)), 7];
  // The ghosts are a few among many leaves: picked on their own one time in five.
  const pick = mapped.length === 0 ? fc.constant(undefined)
    : ghosts.length === 0 || current.length === 0 ? fc.constantFrom(...mapped)
    : fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...current) }, { weight: 1, arbitrary: fc.constantFrom(...mapped.slice(current.length)) });
  const entries = fc
    .record({
      from: pick,
      kind: fc.constantFrom('current', 'current', 'current', 'prot', 'frame', 'smaller', 'larger', 'pair', 'pair', 'random'),
      cpu: fc.constantFrom(0, 1),
      root: fc.constantFrom(...ids),
      prot: protArb,
      at: fc.nat({ max: 511 }),
      samePair: sometimes(3),
      random: leafArb(state.frames, true),
    })
    .map(({ from, kind, cpu, root, prot, at, samePair, random }): TlbEntry[] => {
      if (from === undefined || kind === 'random') return [{ cpu, root, leaf: random }];
      const l = from.leaf;
      const at0 = (leaf: Leaf): TlbEntry[] => [{ cpu, root: from.root, leaf }];
      const down = SMALLER[l.size];
      const up = LARGER[l.size];
      switch (kind) {
        case 'prot': return at0({ ...l, prot });
        case 'frame': return at0({ ...l, pfn: l.pfn + 1 });
        case 'smaller': return at0(down === undefined ? l : pieceOf(l, down, at));
        case 'larger': {
          if (up === undefined) return at0(l);
          const vpn = l.vpn - (((l.vpn % PAGES[up]) + PAGES[up]) % PAGES[up]);
          return at0({ ...l, vpn, pfn: l.pfn - (l.vpn - vpn), size: up });
        }
        case 'pair': {
          if (down === undefined) return at0(l);
          const p = pieceOf(l, down, at);
          return [...at0(l), ...at0(samePair ? p : { ...p, ...(at % 2 === 0 ? { prot } : { pfn: p.pfn + 3 }) })];
        }
        default: return at0(l);
      }
    });
  const walkArb = fc
    .record({
      from: pick,
      cpu: fc.constantFrom(0, 1),
      level: fc.integer({ min: 1, max: state.config.levels - 1 }),
      table: fc.oneof({ weight: 3, arbitrary: fc.constant<CachedTableState>('current') }, { weight: 2, arbitrary: fc.constantFrom(...CACHED_TABLE_STATES) }),
    })
    .map(({ from, cpu, level, table }): WalkCacheEntry => {
      const span = PAGES['4K'] * 512 ** level;
      const vpn = from === undefined ? DM : from.leaf.vpn - (((from.leaf.vpn % span) + span) % span);
      return { cpu, root: from?.root ?? 0, level: level as Level, vpn, table };
    });
  return fc
    .record({
      tlb: fc.array(entries, { maxLength: 5 }).map((ls) => ls.flat()),
      unsortedTlb: sometimes(1),
      owedAt: fc.array(fc.record({ k: fc.nat(), d: fc.integer({ min: -8, max: 520 }), pages: fc.integer({ min: 0, max: 600 }) }), { maxLength: 3 }),
      owedShape: fc.constantFrom('base', 'canonical', 'canonical', 'canonical', 'raw'),
      walkCache: fc.oneof({ weight: 1, arbitrary: fc.constant([]) }, { weight: 2, arbitrary: fc.array(walkArb, { maxLength: 4 }) }),
    })
    .map(({ tlb, unsortedTlb, owedAt, owedShape, walkCache }): AbstractState => {
      const sorted = unsortedTlb ? tlb : [...tlb].sort(tlbOrder);
      const derived = sorted.length === 0 ? [] : owedAt.map(({ k, d, pages }) => ({ vpn: sorted[k % sorted.length]!.leaf.vpn + d, pages, reason: 'noflush' }));
      const pendingFlush = owedShape === 'base' ? state.pendingFlush : owedShape === 'raw' ? [...state.pendingFlush, ...derived] : canonicalOwed([...state.pendingFlush, ...derived]);
      const walk = [...walkCache].sort((a, b) => a.cpu - b.cpu || a.root - b.root || a.level - b.level || a.vpn - b.vpn);
      return { ...state, tlb: sorted, pendingFlush, ...(walk.length > 0 ? { walkCache: walk } : {}) };
    });
}

/** How many generated states broke each invariant, and how many kept it. */
type Tally = Map<string, { broken: number; kept: number }>;

/** Where the checks disagree with their definitions on a state, one line each, counting what broke. */
function disagreements(state: AbstractState, tally: Tally): string[] {
  return checkDisagreements(state, CATALOGUE, (inv, defined) => {
    const t = tally.get(inv.id) ?? { broken: 0, kept: 0 };
    tally.set(inv.id, defined.length > 0 ? { ...t, broken: t.broken + 1 } : { ...t, kept: t.kept + 1 });
  }).map(disagreementText);
}

/** Run the agreement property; then every invariant must have been both broken and kept, or the agreement says little. */
function agreesOn(shape: Shape, numRuns: number): void {
  const tally: Tally = new Map();
  fc.assert(
    fc.property(stateArb(shape).chain(cachesArb), (state) => {
      expect(disagreements(state, tally)).toEqual([]);
    }),
    fcParams({ numRuns }),
  );
  const vacuous = CATALOGUE.filter((inv) => !(tally.get(inv.id)!.broken > 0 && tally.get(inv.id)!.kept > 0)).map((inv) => `${inv.id} ${JSON.stringify(tally.get(inv.id))}`);
  expect(vacuous).toEqual([]);
}

describe('every check finds what its definition finds', () => {
  it('on random states', () => agreesOn('random', 250));

  it('on adversarial states', () => agreesOn('adversarial', 300));

  it('a scoped check on sorted, disjoint leaves: nothing the definition does not find, all it finds in the scope', () => {
    const scoped = stateArb('disjoint').chain(cachesArb).chain((state) => {
      const starts = state.roots.flatMap((r) => r.leaves.map((l) => l.vpn));
      const near = fc.tuple(fc.constantFrom(DM, ...starts), fc.integer({ min: -600, max: 600 })).map(([b, d]) => b + d);
      return fc.record({ vpn: near, pages: fc.integer({ min: 1, max: 2048 }) }).map((scope) => ({ state, scope }));
    });
    fc.assert(fc.property(scoped, ({ state, scope }) => {
      expect(scopedCheckDisagreements(state, scope).map(disagreementText)).toEqual([]);
    }), fcParams({ numRuns: 250 }));
  });
});

describe('the definitions on hand-built states', () => {
  const run = (pfn: Pfn, count: number, use: FrameRun['use'], noDirectMap = false): FrameRun => ({ pfn, count, use, sensitive: false, noDirectMap });
  const state = (frames: FrameRun[], ...leaves: Leaf[]): AbstractState => ({
    config: { levels: 4, features: { pse: true, gbpages: true }, cpus: 2, maxPhysBits: 46, frames: FRAMES, tablePool: { pfn: 1024, count: 512 } },
    frames,
    roots: [{ id: 0, kind: 'kernel', leaves }],
    tlb: [],
    pendingFlush: [],
    tablesInUse: tableFootprint(4, leaves),
    pendingTableFrees: 0,
  });
  const rw: Prot = { write: true, user: false, execKernel: false, execUser: false, global: true, cache: 'WB' };
  const rox: Prot = { ...rw, write: false, execKernel: true };
  const runs = [run(0, 1024, 'data'), run(1024, 512, 'pagetable'), run(1536, FRAMES - 1536, 'data')];
  const byName = (name: string) => CATALOGUE.find((i) => i.name === name)!;

  it('a 2M writable leaf partly under a 4K executable alias: one witness, the shared frame only', () => {
    const s = state(runs, { vpn: DM, pfn: 0, size: '2M', prot: rw }, { vpn: VMALLOC, pfn: 300, size: '4K', prot: rox });
    expect(byName('no_frame_writable_and_executable_through_two_aliases').holds(s)).toMatchObject([{ root: 0, vpn: DM + 300, pages: 1, frames: [{ pfn: 300, count: 1 }] }]);
  });

  it('nested overlaps in one root: every shared page, not only between neighbours', () => {
    const s = state(runs, { vpn: VMALLOC, pfn: 0, size: '2M', prot: rw }, { vpn: VMALLOC + 10, pfn: 5000, size: '4K', prot: rw }, { vpn: VMALLOC + 30, pfn: 6000, size: '4K', prot: rw });
    const inv = byName('no_two_leaves_of_a_root_share_a_page');
    expect(inv.holds(s).map((w) => w.vpn)).toEqual([VMALLOC + 10, VMALLOC + 30]);
    expect(inv.check(s).map((w) => w.vpn)).toEqual([VMALLOC + 10, VMALLOC + 30]);
  });

  it('a run nested inside another: the overlap is the inner run, not up to the outer end', () => {
    const s = state([run(0, 4096, 'data'), run(100, 10, 'kernel-text'), run(4096, FRAMES - 4096, 'free')]);
    const inv = byName('frame_runs_cover_memory_exactly');
    const frames = (ws: Witness[]) => ws.flatMap((w) => w.frames ?? []);
    expect(frames(inv.holds(s))).toEqual([{ pfn: 100, count: 10 }]);
    expect(frames(inv.check(s))).toEqual([{ pfn: 100, count: 10 }]);
  });
});
