/**
 * A page-table system written the most direct way, to copy as the start of your own
 * `--impl` adapter: `ptspec fuzz --impl examples/simple-page-tables.ts` holds it to the
 * reference model.
 *
 * It keeps no radix tree: its state is the abstract state itself (sorted arrays of
 * leaves and of non-present entries, the frame runs, the TLB entries, the paging-structure
 * caches, the flush obligations, the tables pending free), so `abstract()` only has to
 * hand it out in canonical form. A real adapter keeps its own tables and writes
 * `abstract()` as a walk over them; everything else here (the error order, the split
 * rule, TLBs and paging-structure caches, the flush ceiling, obligations, deferred table
 * frees, the frame lifecycle) it must do the same way, and this file shows where each
 * rule of spec/contracts/*.ts lands.
 *
 * Every array is built anew and never changed after it is built: the fuzzer keeps the
 * states `abstract()` returns to compare them with the next ones.
 *
 * With `SystemSetup.isolation` it also has the isolation capability (`isolation`,
 * examples/simple-isolation.ts): roots 1 and 2 from boot, processes with their KPTI pair
 * and ASI root, pti_clone_pgtable, the LDT remap and the ASI restricted direct map, all
 * written from spec/contracts/isolation.ts and spec/roots.ts. Then `abstract()` lists those
 * roots and counts their tables, translate and access walk any of them through what it
 * mirrors, a range flush drops the TLB entries of every root, and the strict policy of
 * the core operations sees every root (K3 and A2 refuse a change under a page root 1 or 2
 * copies). Without it the system is init_mm alone, as before.
 *
 * It uses only the spec's trusted exports (spec/README.md: the argument validators,
 * address geometry, vocabulary, error constructors, `policyError`), `tableFootprint` for
 * ENOMEM and the public checker for EPERM. Outside this repository, import them from 'ptspec/spec' and 'ptspec/checker'.
 *
 * It follows the strict profile in its core operations: under `profile: 'linux'` only the
 * isolation operations do what spec/contracts/isolation.ts says linux does (no EPERM, no
 * flush after a clone, _PAGE_GLOBAL on clones, diverged user copies, asi_map's skipped 4K
 * blocks and their warning, the ASI tables vunmap keeps).
 */
import {
  fail, INIT_MM, sameFrameFacts, kernelLayout, leafLevel, OK, ok, PAGE_KERNEL, PAGES, pagesPerEntry, pfnToHex, policyError, STRICT_POLICY,
  tableFootprint, TLB_SINGLE_PAGE_FLUSH_CEILING, validateAccess, validateCollapse, validateFlush, validateFlushLocal, validateFrames,
  validateMap, validateProtect, validateSetDirectMap, validateSplit, validateTranslate, validateUnmap, vpnToHex,
  type AbstractState, type AccessKind, type AccessMode, type AccessOutcome, type FlushObligation, type FlushOptions,
  type FrameRun, type FrameUse, type IsolationOps, type KernelEvent, type Leaf, type Level, type MapOptions, type MutatingOp, type PageSize,
  type PageTableSystem, type PageTableSystemFactory, type Pfn, type Prot, type ProtChange, type ProtectOptions, type PtError, type Result,
  type RootId, type SystemConfig, type SystemSetup, type TlbEntry, type Translation, type Vpn, type WalkCacheEntry,
} from '../spec/index.ts';
import { checkAll, invariantById, type Invariant } from '../checker/index.ts';
import { SimpleIsolation, mergeRanges, type Core, type Range } from './simple-isolation.ts';

/** A page table by its place in the tree: the level-`level` table covering the aligned span [vpn, vpn+pages). */
interface Table extends Range {
  readonly level: Level;
}

/** What a mutating operation would produce; `commit` decides EPERM and ENOMEM on it. */
interface Candidate {
  readonly leaves: readonly Leaf[];
  /** The non-present entries after it (set_memory_np); absent: unchanged. */
  readonly nonPresent?: readonly Leaf[];
  /** set_memory_rox: the leaves before its collapse, which decide ENOMEM (the splits come first). */
  readonly tablesBeforeCollapse?: readonly Leaf[];
  readonly frames?: readonly FrameRun[];
  /** Flushed on all CPUs once the operation has succeeded (flushRanges: merged, with the ceiling). */
  readonly flush: readonly Range[];
  /** A `flush: false` operation owes this flush instead. */
  readonly owe?: Range & { readonly reason: string };
  /** Where the result changed: the policy check looks there (and at every alias of those frames). */
  readonly touched: readonly Range[];
  /**
   * A removal without a flush (unmap and setDirectMapInvalid with `flush: false`): the
   * tables it empties here stay pending free, and the CPUs' cached walks through them
   * now lead to unlinked tables.
   */
  readonly deferFrees?: Range;
}

const end = (r: Range): number => r.vpn + r.pages;
const leafRange = (l: Leaf): Range => ({ vpn: l.vpn, pages: PAGES[l.size] });
const meets = (a: Range, b: Range): boolean => a.vpn < end(b) && b.vpn < end(a);
const inside = (a: Range, b: Range): boolean => a.vpn >= b.vpn && end(a) <= end(b);
const refuse = (e: PtError): Result<never> => ({ ok: false, error: e });

// ---- the leaves: sorted by vpn, disjoint ----

/** Index of the first leaf that ends after `vpn` (binary search: the direct map alone is hundreds of leaves). */
function firstEndingAfter(leaves: readonly Leaf[], vpn: Vpn): number {
  let lo = 0;
  let hi = leaves.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (end(leafRange(leaves[mid]!)) <= vpn) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** [lo, hi): the indexes of the leaves that meet `r`. */
function meeting(leaves: readonly Leaf[], r: Range): [number, number] {
  const lo = firstEndingAfter(leaves, r.vpn);
  let hi = lo;
  while (hi < leaves.length && leaves[hi]!.vpn < end(r)) hi++;
  return [lo, hi];
}

function mappedPages(leaves: readonly Leaf[], r: Range): number {
  const [lo, hi] = meeting(leaves, r);
  let n = 0;
  for (const l of leaves.slice(lo, hi)) n += Math.min(end(leafRange(l)), end(r)) - Math.max(l.vpn, r.vpn);
  return n;
}

function sortLeaves(leaves: readonly Leaf[]): Leaf[] {
  return [...leaves].sort((a, b) => a.vpn - b.vpn);
}

function leafAt(leaves: readonly Leaf[], vpn: Vpn): Leaf | undefined {
  const l = leaves[firstEndingAfter(leaves, vpn)];
  return l !== undefined && l.vpn <= vpn ? l : undefined;
}

const SMALLER: Readonly<Record<PageSize, PageSize | null>> = { '1G': '2M', '2M': '4K', '4K': null };

/** split_large_page: 512 leaves of the next size down, frames contiguous, prot kept exactly. */
function splitLeaf(l: Leaf, small: PageSize): Leaf[] {
  const n = PAGES[small];
  return Array.from({ length: 512 }, (_, i) => ({ vpn: l.vpn + i * n, pfn: l.pfn + i * n, size: small, prot: l.prot }));
}

/**
 * The split rule (spec/contracts/hugepage.ts): a leaf that straddles an edge of `r` and
 * `mustCut` is split, and its pieces again while they straddle, so each page ends up in
 * the largest aligned block wholly inside or wholly outside `r`.
 */
function cutAround(l: Leaf, r: Range, mustCut: (l: Leaf) => boolean): Leaf[] {
  const small = SMALLER[l.size];
  if (small === null || inside(leafRange(l), r) || !meets(leafRange(l), r) || !mustCut(l)) return [l];
  return splitLeaf(l, small).flatMap((piece) => cutAround(piece, r, mustCut));
}

/**
 * The leaves with every leaf meeting `r` cut by the split rule and each piece wholly
 * inside `r` replaced by `change(piece)` (null removes it). unmap, protect and
 * setDirectMapInvalid are all this one edit.
 */
function editRange(leaves: readonly Leaf[], r: Range, mustCut: (l: Leaf) => boolean, change: (l: Leaf) => Leaf | null): Leaf[] {
  const [lo, hi] = meeting(leaves, r);
  const middle: Leaf[] = [];
  for (const piece of leaves.slice(lo, hi).flatMap((l) => cutAround(l, r, mustCut))) {
    const next = inside(leafRange(piece), r) ? change(piece) : piece;
    if (next !== null) middle.push(next);
  }
  return [...leaves.slice(0, lo), ...middle, ...leaves.slice(hi)];
}

/** `added` (sorted, over an unmapped range) put in their place. */
function insertLeaves(leaves: readonly Leaf[], added: readonly Leaf[]): Leaf[] {
  const at = firstEndingAfter(leaves, added[0]!.vpn);
  return [...leaves.slice(0, at), ...added, ...leaves.slice(at)];
}

function supported(config: SystemConfig, size: PageSize): boolean {
  return size === '4K' || (size === '2M' ? config.features.pse : config.features.gbpages);
}

/** map's placement: greedy, the largest size ≤ maxPage the CPU has, with page and frame aligned to it, that still fits. */
function placeLeaves(config: SystemConfig, vpn: Vpn, pfn: Pfn, pages: number, prot: Prot, maxPage: PageSize): Leaf[] {
  const sizes = (['1G', '2M', '4K'] as const).filter((s) => PAGES[s] <= PAGES[maxPage] && supported(config, s));
  const out: Leaf[] = [];
  for (let off = 0; off < pages; ) {
    const fits = (s: PageSize): boolean => PAGES[s] <= pages - off && (vpn + off) % PAGES[s] === 0 && (pfn + off) % PAGES[s] === 0;
    const size = sizes.find(fits) ?? '4K';
    out.push({ vpn: vpn + off, pfn: pfn + off, size, prot });
    off += PAGES[size];
  }
  return out;
}

// ---- protections ----

/** set_memory_*: each field the change gives is set; `exec` covers every privilege that reaches the page (one NX bit). */
function changed(p: Prot, c: ProtChange): Prot {
  const prot: Prot = {
    write: c.write ?? p.write,
    user: p.user,
    execKernel: c.exec ?? p.execKernel,
    execUser: c.exec === undefined ? p.execUser : c.exec && p.user,
    global: c.global ?? p.global,
    cache: c.cache ?? p.cache,
  };
  // _PAGE_KERNEL_4K (set_memory_4k) only ever gets set; absent means clear.
  return c.kernel4k === true || p.kernel4k === true ? { ...prot, kernel4k: true } : prot;
}

function sameProt(a: Prot, b: Prot): boolean {
  return a.write === b.write && a.user === b.user && a.execKernel === b.execKernel && a.execUser === b.execUser && a.global === b.global &&
    a.cache === b.cache && (a.kernel4k === true) === (b.kernel4k === true);
}

/** Every piece of `leaves` wholly inside `r` split down to 4K (set_memory_4k's force_split). */
function fourKInside(leaves: readonly Leaf[], r: Range): Leaf[] {
  const down = (l: Leaf): Leaf[] => (l.size === '4K' || !inside(leafRange(l), r) ? [l] : splitLeaf(l, SMALLER[l.size]!).flatMap(down));
  return leaves.flatMap(down);
}

/**
 * collapse_pmd_page / collapse_pud_page's test: the leaves of `block` are 512 of the next
 * size down with one prot (without kernel4k), contiguous frames from a block-aligned pfn.
 */
function collapsible(leaves: readonly Leaf[], block: Range): boolean {
  const [lo, hi] = meeting(leaves, block);
  const parts = leaves.slice(lo, hi);
  const first = parts[0];
  if (first === undefined || first.pfn % block.pages !== 0 || first.prot.kernel4k === true) return false;
  const small = block.pages / 512;
  return parts.length === 512 && parts.every((l, i) => PAGES[l.size] === small && l.pfn === first.pfn + i * small && sameProt(l.prot, first.prot));
}

/** The MMU's check (Intel SDM §4.6, with CR0.WP and SMEP on, as Linux runs). */
function allowed(p: Prot, kind: AccessKind, mode: AccessMode): boolean {
  const reach = mode === 'kernel' || p.user;
  if (kind === 'r') return reach;
  if (kind === 'w') return reach && p.write;
  return mode === 'kernel' ? p.execKernel && !p.user : p.execUser;
}

// ---- ranges of frames and of obligations ----

/** [start, start+count) cut at the edges of [lo, hi): its non-empty pieces, each inside [lo, hi) or not. */
function cutAt(start: number, count: number, lo: number, hi: number): { start: number; count: number; inside: boolean }[] {
  const edges = [start, Math.min(Math.max(lo, start), start + count), Math.min(Math.max(hi, start), start + count), start + count];
  return [0, 1, 2]
    .map((i) => ({ start: edges[i]!, count: edges[i + 1]! - edges[i]!, inside: i === 1 }))
    .filter((p) => p.count > 0);
}

/** The canonical frame runs: sorted, no empty run, neighbours with the same use and flags merged. */
function canonicalFrames(runs: readonly FrameRun[]): FrameRun[] {
  const out: FrameRun[] = [];
  for (const r of [...runs].filter((r) => r.count > 0).sort((a, b) => a.pfn - b.pfn)) {
    const last = out[out.length - 1];
    const joins = last !== undefined && last.pfn + last.count === r.pfn && sameFrameFacts(last, r);
    if (joins) out[out.length - 1] = { ...last, count: last.count + r.count };
    else out.push(r);
  }
  return out;
}

/** The runs with the frames [pfn, pfn+count) given `facts` (their other facts kept), in canonical form again. */
function withFacts(runs: readonly FrameRun[], pfn: Pfn, count: number, facts: Partial<Pick<FrameRun, 'use' | 'noDirectMap'>>): FrameRun[] {
  return canonicalFrames(runs.flatMap((r) =>
    cutAt(r.pfn, r.count, pfn, pfn + count).map((p) => ({ ...r, pfn: p.start, count: p.count, ...(p.inside ? facts : {}) }))));
}

/** The first frame of [pfn, pfn+count) whose use is not `use`, or undefined. */
function firstFrameNot(runs: readonly FrameRun[], pfn: Pfn, count: number, use: FrameUse): Pfn | undefined {
  for (const r of runs) {
    const from = Math.max(r.pfn, pfn);
    if (from < Math.min(r.pfn + r.count, pfn + count) && r.use !== use) return from;
  }
  return undefined;
}

/** A new obligation joins every one it overlaps or touches; their reasons are joined sorted, once each. */
function owe(obligations: readonly FlushObligation[], r: Range, reason: string): FlushObligation[] {
  const joined = obligations.filter((o) => o.vpn <= end(r) && r.vpn <= end(o));
  const lo = Math.min(r.vpn, ...joined.map((o) => o.vpn));
  const hi = Math.max(end(r), ...joined.map(end));
  const reasons = [...new Set([reason, ...joined.flatMap((o) => o.reason.split('+'))])].sort().join('+');
  return [...obligations.filter((o) => !joined.includes(o)), { vpn: lo, pages: hi - lo, reason: reasons }].sort((a, b) => a.vpn - b.vpn);
}

// ---- tables: only counted, as the footprint defines them ----

/** The pages a level-`level` table covers: one entry of the table above it. */
const tableSpan = (level: Level): number => pagesPerEntry((level + 1) as Level);
/** A table's key, as the level and first page name it in the paging-structure caches. */
const tableKey = (t: { readonly level: Level; readonly vpn: Vpn }): string => `${t.level}:${t.vpn}`;

/**
 * The tables these leaves need (spec/footprint.ts), by key: the level-L table over
 * [k·span, (k+1)·span), span = pagesPerEntry(L+1), exists while a leaf of level ≤ L lies there.
 */
function tablesOf(levels: number, leaves: readonly Leaf[]): Map<string, Table> {
  const tables = new Map<string, Table>();
  for (let L = 1 as Level; L < levels; L = (L + 1) as Level) {
    const span = tableSpan(L);
    for (const l of leaves) {
      const t = { level: L, vpn: l.vpn - (l.vpn % span), pages: span };
      if (leafLevel(l.size) <= L) tables.set(tableKey(t), t);
    }
  }
  return tables;
}

const POLICY: readonly Invariant[] = STRICT_POLICY.map((p) => invariantById(p.id)!);

class SimplePageTables implements PageTableSystem {
  readonly config: SystemConfig;
  private leaves: readonly Leaf[] = [];
  /** Entries set_memory_np made non-present: frame and prot kept, disjoint from the leaves, holding their table slots. */
  private nonPresent: readonly Leaf[] = [];
  private frames: readonly FrameRun[];
  private tlb: readonly TlbEntry[] = [];
  /**
   * Every CPU's paging-structure caches: the table entries its walks went through, in the
   * canonical order (cpu, root, level, vpn). A later walk on that CPU starts from them.
   */
  private walkCache: readonly WalkCacheEntry[] = [];
  private obligations: readonly FlushObligation[] = [];
  /** Tables emptied by a removal without a flush, by their place: they wait for a flush that meets their span. */
  private pendingTables: readonly Table[] = [];
  /** tableFootprint of `leaves`, kept at commit: the fuzzer calls abstract() after every command. */
  private footprint: number;
  /**
   * KPTI, the LDT remap, ASI and processes (simple-isolation.ts), when the setup asks for
   * them: the roots beside init_mm live there; init_mm and every cache stay here.
   */
  readonly isolation?: IsolationOps;
  private readonly iso?: SimpleIsolation;
  /** With the capability only: what the isolation operations printed (linux asiMap; the core prints nothing). */
  readonly takeEvents?: () => readonly KernelEvent[];

  constructor(setup: SystemSetup) {
    this.config = setup.config;
    this.frames = canonicalFrames(setup.frames);
    this.footprint = tableFootprint(this.config.levels, this.leaves);
    if (setup.isolation === true) {
      const iso = new SimpleIsolation(this.core(setup));
      this.iso = iso;
      this.isolation = iso;
      this.takeEvents = () => iso.takeEvents();
    }
  }

  /**
   * What the isolation part may read and do here: init_mm's leaves, the frames and the
   * state, the leaf rules map and unmap follow, the policy check, and the two kinds of
   * flush (a kernel range flush of every root, a process flush of some roots).
   */
  private core(setup: SystemSetup): Core {
    return {
      config: this.config,
      profile: setup.profile ?? 'strict',
      leaves: {
        meeting,
        place: (vpn, pfn, pages, prot) => placeLeaves(this.config, vpn, pfn, pages, changed(prot, {}), '1G'),
        remove: (leaves, r) => editRange(leaves, r, () => true, () => null),
      },
      kernelLeaves: () => this.leaves,
      setKernelLeaves: (leaves) => {
        this.leaves = leaves;
      },
      frames: () => this.frames,
      state: () => this.abstract(),
      tables: () => this.footprint + this.pendingTables.length,
      refusal: (op, candidate, scopes) => refusal(op, candidate, scopes),
      flush: (ranges) => this.flushRanges(ranges),
      forget: (roots, range) => this.forget(roots, range),
    };
  }

  map(root: RootId, vpn: Vpn, pfn: Pfn, pages: number, prot: Prot, opts: MapOptions = {}): Result<void> {
    const bad = validateMap(this.config, root, vpn, pfn, pages, prot, opts);
    if (bad) return refuse(bad);
    const r = { vpn, pages };
    if (mappedPages(this.leaves, r) + mappedPages(this.nonPresent, r) > 0) return fail('EEXIST', 'vpn', `part of ${vpnToHex(vpn)} +${pages} has an entry`);
    // changed(prot, {}) keeps our own copy of exactly the six fields the caller gave.
    const added = placeLeaves(this.config, vpn, pfn, pages, changed(prot, {}), opts.maxPage ?? '1G');
    // Pages still owed a flush may be cached stale: flush what is owed there first (whole
    // ranges), so that a huge leaf is never filled beside a stale small translation (L3).
    const owed = this.obligations.filter((o) => o.vpn < vpn + pages && vpn < o.vpn + o.pages).map((o) => ({ vpn: o.vpn, pages: o.pages }));
    return this.commit('map', { leaves: insertLeaves(this.leaves, added), flush: owed, touched: [r] });
  }

  unmap(root: RootId, vpn: Vpn, pages: number, opts: FlushOptions = { flush: true }): Result<void> {
    const bad = validateUnmap(this.config, root, vpn, pages);
    if (bad) return refuse(bad);
    const r = { vpn, pages };
    if (mappedPages(this.leaves, r) + mappedPages(this.nonPresent, r) === 0) return fail('ENOENT', 'vpn', `nothing in ${vpnToHex(vpn)} +${pages} is mapped`);
    const gone = (list: readonly Leaf[]): Leaf[] => editRange(list, r, () => true, () => null);
    // vunmap_range_noflush: the same entries go, but the range is owed a flush and the tables it empties wait for that flush.
    const flushed = opts.flush ? { flush: [r] } : { flush: [], owe: { ...r, reason: 'unmap' }, deferFrees: r };
    return this.commit('unmap', { leaves: gone(this.leaves), nonPresent: gone(this.nonPresent), touched: [r], ...flushed });
  }

  protect(vpn: Vpn, pages: number, change: ProtChange, opts: ProtectOptions = {}): Result<void> {
    const bad = validateProtect(this.config, vpn, pages, change);
    if (bad) return refuse(bad);
    const r = { vpn, pages };
    if (mappedPages(this.leaves, r) + mappedPages(this.nonPresent, r) < pages) return fail('ENOENT', 'vpn', `part of ${vpnToHex(vpn)} +${pages} has no entry`);
    const ranges = [r, ...(opts.alias === true ? this.aliasRanges(r) : [])];
    // The alias gets write and cache only: the direct map stays NX, mapped, and keeps its global bit and page size.
    const aliasChange: ProtChange = { ...(change.write === undefined ? {} : { write: change.write }), ...(change.cache === undefined ? {} : { cache: change.cache }) };
    let leaves = this.leaves;
    let nonPresent = this.nonPresent;
    for (const [i, range] of ranges.entries()) {
      const c = i === 0 ? change : aliasChange;
      // Only an entry whose prot or presence changes is split; alias pages without an entry are simply not there.
      const cut = (present: boolean) => (l: Leaf): boolean => c.kernel4k === true || (c.present !== undefined && c.present !== present) || !sameProt(l.prot, changed(l.prot, c));
      const edit = (list: readonly Leaf[], present: boolean): Leaf[] => {
        const cutList = editRange(list, range, cut(present), (l) => ({ ...l, prot: changed(l.prot, c) }));
        return c.kernel4k === true ? fourKInside(cutList, range) : cutList;
      };
      const [p, np] = [edit(leaves, true), edit(nonPresent, false)];
      // set_memory_np / set_memory_p: the range's entries move to the other kind, frame and prot kept.
      const moving = (list: readonly Leaf[]): Leaf[] => list.filter((l) => inside(leafRange(l), range));
      const staying = (list: readonly Leaf[]): Leaf[] => list.filter((l) => !inside(leafRange(l), range));
      if (c.present === false) [leaves, nonPresent] = [staying(p), sortLeaves([...np, ...moving(p)])];
      else if (c.present === true) [leaves, nonPresent] = [sortLeaves([...p, ...moving(np)]), staying(np)];
      else [leaves, nonPresent] = [p, np];
    }
    const collapsed = opts.collapse === true ? this.collapseAround(leaves, r) : { leaves, blocks: [] };
    return this.commit('protect', { leaves: collapsed.leaves, nonPresent, flush: [...ranges, ...collapsed.blocks], touched: ranges, tablesBeforeCollapse: leaves });
  }

  /**
   * CPA_COLLAPSE (set_memory_rox): each 2M block meeting `r`, in order, collapses when it
   * is 512 uniform present 4K leaves; right after, its 1G block when that is 512 uniform 2M leaves.
   */
  private collapseAround(leaves: readonly Leaf[], r: Range): { leaves: Leaf[]; blocks: Range[] } {
    let out = [...leaves];
    const blocks: Range[] = [];
    const into = (block: Range, size: PageSize): void => {
      const [lo, hi] = meeting(out, block);
      out = [...out.slice(0, lo), { vpn: block.vpn, pfn: out[lo]!.pfn, size, prot: out[lo]!.prot }, ...out.slice(hi)];
      blocks.push(block);
    };
    for (let at = r.vpn - (r.vpn % PAGES['2M']); at < end(r); at += PAGES['2M']) {
      const block = { vpn: at, pages: PAGES['2M'] };
      if (!this.config.features.pse || !collapsible(out, block)) continue;
      into(block, '2M');
      const pud = { vpn: at - (at % PAGES['1G']), pages: PAGES['1G'] };
      if (this.config.features.gbpages && collapsible(out, pud)) into(pud, '1G');
    }
    return { leaves: out, blocks };
  }

  /**
   * cpa_process_alias: the direct-map pages of the frames that `r`'s entries hold from
   * outside the direct map. Entries of both kinds: CPA takes the frame from the entry
   * whatever its P bit, so a set_memory_np'd page still has its alias changed.
   */
  private aliasRanges(r: Range): Range[] {
    const dm = { vpn: this.directMapPage(0), pages: this.config.frames };
    const pieces: Range[] = [];
    for (const list of [this.leaves, this.nonPresent]) {
      const [lo, hi] = meeting(list, r);
      for (const l of list.slice(lo, hi)) {
        const a = Math.max(l.vpn, r.vpn);
        const b = Math.min(end(leafRange(l)), end(r));
        // The part of [a, b) outside the direct map: at most one piece below it and one above.
        for (const [x, y] of [[a, Math.min(b, dm.vpn)], [Math.max(a, end(dm)), b]] as const) {
          if (x < y) pieces.push({ vpn: this.directMapPage(l.pfn + (x - l.vpn)), pages: y - x });
        }
      }
    }
    // One range per run of pages, so the split rule sees the run's edges, not the pieces'.
    return mergeRanges(pieces);
  }

  /** __va(pfn): the frame's page in the direct map, at PAGE_OFFSET of this paging mode. */
  private directMapPage(pfn: Pfn): Vpn {
    return kernelLayout(this.config.levels).pageOffset + pfn;
  }

  setDirectMapInvalid(pfn: Pfn, count: number, opts: FlushOptions): Result<void> {
    const bad = validateSetDirectMap(this.config, pfn, count);
    if (bad) return refuse(bad);
    const dm = { vpn: this.directMapPage(pfn), pages: count };
    if (mappedPages(this.leaves, dm) < count) return fail('ENOENT', 'pfn', `a frame from ${pfn} has no direct-map page`);
    const leaves = editRange(this.leaves, dm, () => true, () => null);
    const frames = withFacts(this.frames, pfn, count, { noDirectMap: true });
    const flushed = opts.flush ? { flush: [dm] } : { flush: [], owe: { ...dm, reason: 'setDirectMapInvalid' }, deferFrees: dm };
    return this.commit('setDirectMapInvalid', { leaves, frames, touched: [dm], ...flushed });
  }

  setDirectMapDefault(pfn: Pfn, count: number, opts: FlushOptions): Result<void> {
    const bad = validateSetDirectMap(this.config, pfn, count);
    if (bad) return refuse(bad);
    const dm = { vpn: this.directMapPage(pfn), pages: count };
    if (mappedPages(this.leaves, dm) + mappedPages(this.nonPresent, dm) > 0) return fail('EEXIST', 'pfn', `a frame from ${pfn} still has its direct-map page`);
    const added = Array.from({ length: count }, (_, i): Leaf => ({ vpn: dm.vpn + i, pfn: pfn + i, size: '4K', prot: PAGE_KERNEL }));
    const frames = withFacts(this.frames, pfn, count, { noDirectMap: false });
    const flushed = opts.flush ? { flush: [dm] } : { flush: [], owe: { ...dm, reason: 'setDirectMapDefault' } };
    return this.commit('setDirectMapDefault', { leaves: insertLeaves(this.leaves, added), frames, touched: [dm], ...flushed });
  }

  split(root: RootId, vpn: Vpn): Result<void> {
    const bad = validateSplit(this.config, root, vpn);
    if (bad) return refuse(bad);
    const leaf = leafAt(this.leaves, vpn);
    if (leaf === undefined) return fail('ENOENT', 'vpn', `${vpnToHex(vpn)} is not mapped`);
    const small = SMALLER[leaf.size];
    if (small === null) return fail('EINVAL', 'vpn', `${vpnToHex(vpn)} is a 4K leaf`);
    const r = leafRange(leaf);
    return this.commit('split', { leaves: this.replace(r, splitLeaf(leaf, small)), flush: [r], touched: [r] });
  }

  collapse(root: RootId, vpn: Vpn, size: '2M' | '1G'): Result<void> {
    const bad = validateCollapse(this.config, root, vpn, size);
    if (bad) return refuse(bad);
    const block = { vpn: vpn - (vpn % PAGES[size]), pages: PAGES[size] };
    if (mappedPages(this.leaves, block) < block.pages) return fail('ENOENT', 'vpn', `part of the ${size} block at ${vpnToHex(block.vpn)} is not mapped`);
    if (!collapsible(this.leaves, block)) return fail('EINVAL', 'vpn', `the ${size} block at ${vpnToHex(block.vpn)} is not 512 uniform, contiguous ${SMALLER[size]!} leaves, or they are kept 4K`);
    const first = leafAt(this.leaves, block.vpn)!;
    return this.commit('collapse', { leaves: this.replace(block, [{ vpn: block.vpn, pfn: first.pfn, size, prot: first.prot }]), flush: [block], touched: [block] });
  }

  /** The leaves with those meeting `r` (wholly inside it) replaced by `by`. */
  private replace(r: Range, by: readonly Leaf[]): Leaf[] {
    const [lo, hi] = meeting(this.leaves, r);
    return [...this.leaves.slice(0, lo), ...by, ...this.leaves.slice(hi)];
  }

  translate(root: RootId, vpn: Vpn): Result<Translation> {
    const bad = validateTranslate(this.config, root, vpn, this.iso?.rootIds());
    if (bad) return refuse(bad);
    const leaf = this.viewLeafAt(root, vpn);
    if (leaf === undefined) return fail('ENOENT', 'vpn', `${vpnToHex(vpn)} is not mapped`);
    return ok({ leaf, pfn: leaf.pfn + (vpn - leaf.vpn) });
  }

  access(cpu: number, root: RootId, vpn: Vpn, kind: AccessKind, mode: AccessMode): Result<AccessOutcome> {
    const bad = validateAccess(this.config, cpu, root, vpn, kind, mode, this.iso?.rootIds());
    if (bad) return refuse(bad);
    // Of the entries covering vpn (a stale 4K one under a later 2M fill), the smallest is used.
    const cached = this.tlb
      .filter((e) => e.cpu === cpu && e.root === root && e.leaf.vpn <= vpn && vpn < end(leafRange(e.leaf)))
      .sort((a, b) => PAGES[a.leaf.size] - PAGES[b.leaf.size])[0];
    const leaf = cached?.leaf ?? this.walk(cpu, root, vpn);
    if (leaf === undefined) return ok({ fault: 'not-present' });
    // The fill happens before the permission check: a protection fault keeps it.
    if (cached === undefined) this.fill(cpu, root, leaf);
    if (!allowed(leaf.prot, kind, mode)) return ok({ fault: 'protection' });
    return ok({ fault: false, translation: { leaf, pfn: leaf.pfn + (vpn - leaf.vpn) }, fromTlb: cached !== undefined });
  }

  /**
   * The page walk of one CPU (access.ts): it starts from the deepest table entry that CPU
   * has cached for vpn, else from the root. Through a table that is no longer linked
   * (emptied, waiting on the deferred-free list for a flush) it finds nothing; through a
   * current one, or from the root, it finds what the tables hold.
   */
  private walk(cpu: number, root: RootId, vpn: Vpn): Leaf | undefined {
    const start = this.walkCache
      .filter((w) => w.cpu === cpu && w.root === root && w.vpn <= vpn && vpn < w.vpn + tableSpan(w.level))
      .sort((a, b) => a.level - b.level)[0];
    if (start !== undefined && start.table !== 'current') return undefined;
    return this.viewLeafAt(root, vpn);
  }

  /** What `root` maps at vpn: init_mm's own leaf, or (isolation) what the root's view holds there (spec/roots.ts mirrorsOf). */
  private viewLeafAt(root: RootId, vpn: Vpn): Leaf | undefined {
    return this.iso === undefined ? leafAt(this.leaves, vpn) : this.iso.leafAt(root, vpn);
  }

  /**
   * A walk that found `leaf` caches it in the CPU's TLB and every table entry it went
   * through (the tables of levels leafLevel(size) .. levels - 1; the root is CR3) in its
   * paging-structure caches as current, replacing what that CPU had cached there.
   */
  private fill(cpu: number, root: RootId, leaf: Leaf): void {
    this.tlb = sortTlb([...this.tlb, { cpu, root, leaf }]);
    const walked: WalkCacheEntry[] = [];
    for (let level = leafLevel(leaf.size); level < this.config.levels; level = (level + 1) as Level) {
      walked.push({ cpu, root, level, vpn: leaf.vpn - (leaf.vpn % tableSpan(level)), table: 'current' });
    }
    const key = (w: WalkCacheEntry): string => `${w.cpu}:${w.root}:${tableKey(w)}`;
    const replaced = new Set(walked.map(key));
    this.walkCache = sortWalkCache([...this.walkCache.filter((w) => !replaced.has(key(w))), ...walked]);
  }

  flush(vpn: Vpn, pages: number): Result<void> {
    const bad = validateFlush(this.config, vpn, pages);
    if (bad) return refuse(bad);
    this.flushRanges([{ vpn, pages }]);
    return OK;
  }

  flushAll(): Result<void> {
    this.flushEverything();
    return OK;
  }

  /**
   * flush_tlb_one_kernel of each page on one CPU: its TLB entries meeting the range go
   * (every root), and INVLPG empties its paging-structure caches whatever the address.
   * No ceiling (it flushes page by page), and nothing owed is paid: the other CPUs may
   * still cache the range, so the obligations and the pending tables stay.
   */
  flushLocal(cpu: number, vpn: Vpn, pages: number): Result<void> {
    const bad = validateFlushLocal(this.config, cpu, vpn, pages);
    if (bad) return refuse(bad);
    const r = { vpn, pages };
    this.tlb = this.tlb.filter((e) => e.cpu !== cpu || !meets(leafRange(e.leaf), r));
    this.walkCache = this.walkCache.filter((w) => w.cpu !== cpu);
    return OK;
  }

  /** alloc_pages: free frames become data. Their direct-map pages already map them; nothing else changes. */
  allocFrames(pfn: Pfn, count: number): Result<void> {
    const bad = validateFrames(this.config, pfn, count);
    if (bad) return refuse(bad);
    const busy = firstFrameNot(this.frames, pfn, count, 'free');
    if (busy !== undefined) return fail('EBUSY', 'pfn', `frame ${pfnToHex(busy)} is not free`);
    // Allocating only takes a frame away from the allocator: no strict-policy invariant forbids a data frame anything.
    this.frames = withFacts(this.frames, pfn, count, { use: 'data' });
    return OK;
  }

  /**
   * __free_pages of data frames. Strict refuses to hand back a frame that is still mapped
   * outside its direct-map page (D4), still removed from the direct map (D6) or still
   * cached elsewhere by some TLB (D7): the next owner would share it.
   */
  freeFrames(pfn: Pfn, count: number): Result<void> {
    const bad = validateFrames(this.config, pfn, count);
    if (bad) return refuse(bad);
    const notData = firstFrameNot(this.frames, pfn, count, 'data');
    if (notData !== undefined) return fail('ENOENT', 'pfn', `frame ${pfnToHex(notData)} is not an allocated data frame`);
    const frames = withFacts(this.frames, pfn, count, { use: 'free' });
    // A frame's use matters wherever the frame is mapped or cached, so no range to scope
    // the check to: the whole candidate state (nothing is flushed, so today's TLBs).
    const refused = refusal('freeFrames', { ...this.abstract(), frames }, 'everywhere');
    if (refused) return refuse(refused);
    this.frames = frames;
    return OK;
  }

  abstract(): AbstractState {
    const init = { id: INIT_MM, kind: 'kernel' as const, leaves: this.leaves, ...(this.nonPresent.length > 0 ? { nonPresent: this.nonPresent } : {}) };
    return {
      config: this.config,
      frames: this.frames,
      roots: [init, ...(this.iso?.abstractRoots() ?? [])],
      tlb: this.tlb,
      walkCache: this.walkCache,
      pendingFlush: this.obligations,
      tablesInUse: this.footprint + this.pendingTables.length + (this.iso?.tables() ?? 0),
      pendingTableFrees: this.pendingTables.length,
    };
  }

  /** The order every operation follows once its arguments and the state allow it: EPERM, then ENOMEM, then commit and flush. */
  private commit(op: MutatingOp, c: Candidate): Result<void> {
    const frames = c.frames ?? this.frames;
    // The other roots as they are: a change under a page root 1 or 2 copies is what K3 and A2 refuse.
    const candidate: AbstractState = { ...this.abstract(), frames, roots: [{ id: INIT_MM, kind: 'kernel', leaves: c.leaves }, ...(this.iso?.abstractRoots() ?? [])] };
    // Split and collapse keep every translation, so their contracts have no EPERM: a
    // break already there (a linux clone outside the allowlist) is none of theirs.
    const refused = op === 'split' || op === 'collapse' ? null : refusal(op, candidate, c.touched);
    if (refused) return refuse(refused);
    const nonPresent = c.nonPresent ?? this.nonPresent;
    // Non-present entries hold their table slots as leaves do.
    const entries = (leaves: readonly Leaf[]): Leaf[] => sortLeaves([...leaves, ...nonPresent]);
    const deferred = c.deferFrees === undefined ? [] : this.emptiedTables(entries(c.leaves), c.deferFrees);
    const footprint = tableFootprint(this.config.levels, entries(c.leaves));
    const needed = tableFootprint(this.config.levels, entries(c.tablesBeforeCollapse ?? c.leaves)) + this.pendingTables.length + deferred.length + (this.iso?.tables() ?? 0);
    if (needed > this.config.tablePool.count) return fail('ENOMEM', 'tablePool', `needs ${needed} tables, the pool has ${this.config.tablePool.count}`);
    this.leaves = c.leaves;
    this.nonPresent = nonPresent;
    this.footprint = footprint;
    this.frames = frames;
    this.pendingTables = [...this.pendingTables, ...deferred];
    if (deferred.length > 0) this.unlink(deferred);
    this.flushRanges(c.flush);
    if (c.owe) this.obligations = owe(this.obligations, c.owe, c.owe.reason);
    return OK;
  }

  /** The tables whose span meets `r` that our entries need and `after` does not. */
  private emptiedTables(after: readonly Leaf[], r: Range): Table[] {
    const needed = tablesOf(this.config.levels, after);
    return [...tablesOf(this.config.levels, sortLeaves([...this.leaves, ...this.nonPresent]))].filter(([key, t]) => !needed.has(key) && meets(t, r)).map(([, t]) => t);
  }

  /**
   * Tables emptied without a flush stay in every CPU's paging-structure caches that went
   * through them: those entries now point to an unlinked table (a walk through it finds
   * nothing), which is not freed until a flush empties the caches. Only init_mm's tables
   * are ours to unlink, and only init_mm's entries are marked: the postcondition
   * (spec/contracts/post/effect.ts, checkWalkCache) keeps a process or ASI root's cached
   * entry for the same shared table 'current'.
   */
  private unlink(tables: readonly Table[]): void {
    const gone = new Set(tables.map(tableKey));
    this.walkCache = this.walkCache.map((w) => (w.root === INIT_MM && w.table === 'current' && gone.has(tableKey(w)) ? { ...w, table: 'unlinked' as const } : w));
  }

  /**
   * The flush an operation (or `flush`) makes of `ranges` on every CPU (flush.ts): the
   * ranges merged where they overlap or touch, each merged range flushed on its own,
   * and one of more than tlb_single_page_flush_ceiling pages makes it all a full flush.
   */
  private flushRanges(ranges: readonly Range[]): void {
    const merged = mergeRanges(ranges);
    if (merged.some((r) => r.pages > TLB_SINGLE_PAGE_FLUSH_CEILING)) this.flushEverything();
    else for (const r of merged) this.flushRange(r);
  }

  /**
   * flush_tlb_kernel_range of `r` on every CPU: entries meeting `r` go, INVLPG empties the
   * paging-structure caches whatever the address, debts there are paid, pending tables
   * there are freed (no CPU caches a walk through them any more).
   */
  private flushRange(r: Range): void {
    this.tlb = this.tlb.filter((e) => !meets(leafRange(e.leaf), r));
    this.walkCache = [];
    this.obligations = this.obligations.flatMap((o) =>
      cutAt(o.vpn, o.pages, r.vpn, end(r)).filter((p) => !p.inside).map((p) => ({ vpn: p.start, pages: p.count, reason: o.reason })));
    this.pendingTables = this.pendingTables.filter((t) => !meets(t, r));
  }

  /**
   * flush_tlb_mm_range (isolation): on every CPU the TLB entries of these roots that meet
   * `range` (all of theirs without one: exit, whose PCIDs die) and every paging-structure-cache
   * entry of theirs. A process flush pays no kernel obligation and frees no pending table.
   */
  private forget(roots: ReadonlySet<RootId>, range?: Range): void {
    this.tlb = this.tlb.filter((e) => !roots.has(e.root) || (range !== undefined && !meets(leafRange(e.leaf), range)));
    this.walkCache = this.walkCache.filter((w) => !roots.has(w.root));
  }

  /** flush_tlb_all: every TLB and paging-structure cache emptied, every debt paid, every pending table freed. */
  private flushEverything(): void {
    this.tlb = [];
    this.walkCache = [];
    this.obligations = [];
    this.pendingTables = [];
  }
}

/**
 * The EPERM for a candidate state, or null: the first STRICT_POLICY invariant, in that
 * order, it breaks within `scopes` ('everywhere': unscoped). The state we committed broke
 * none of them, so only what an operation touched can.
 */
function refusal(op: MutatingOp, candidate: AbstractState, scopes: readonly Range[] | 'everywhere'): PtError | null {
  for (const inv of POLICY) {
    for (const scope of scopes === 'everywhere' ? [undefined] : scopes) {
      const broken = checkAll(candidate, scope, [inv])[0]?.witnesses[0];
      if (broken !== undefined) return policyError(op, inv.id, broken.detail);
    }
  }
  return null;
}

/** The canonical TLB order: cpu, root, leaf vpn, smaller leaf first. */
function sortTlb(tlb: readonly TlbEntry[]): TlbEntry[] {
  return [...tlb].sort((a, b) => a.cpu - b.cpu || a.root - b.root || a.leaf.vpn - b.leaf.vpn || PAGES[a.leaf.size] - PAGES[b.leaf.size]);
}

/** The canonical paging-structure-cache order: cpu, root, level, vpn. */
function sortWalkCache(cache: readonly WalkCacheEntry[]): WalkCacheEntry[] {
  return [...cache].sort((a, b) => a.cpu - b.cpu || a.root - b.root || a.level - b.level || a.vpn - b.vpn);
}

const createSystem: PageTableSystemFactory = (setup) => new SimplePageTables(setup);
export default createSystem;
