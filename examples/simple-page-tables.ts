/**
 * A page-table system written the most direct way, to copy as the start of your own
 * `--impl` adapter: `ptspec fuzz --impl examples/simple-page-tables.ts` holds it to the
 * reference model.
 *
 * It keeps no radix tree: its state is the abstract state itself (sorted arrays of
 * leaves and of non-present entries, the frame runs, the TLB entries, the flush obligations, the tables pending
 * free), so `abstract()` only has to hand it out in canonical form. A real adapter keeps
 * its own tables and writes `abstract()` as a walk over them; everything else here (the
 * error order, the split rule, TLBs, obligations, deferred table frees) it must do the
 * same way, and this file shows where each rule of spec/contracts/*.ts lands.
 *
 * Every array is built anew and never changed after it is built: the fuzzer keeps the
 * states `abstract()` returns to compare them with the next ones.
 *
 * It uses only the spec's trusted exports (spec/README.md: the argument validators,
 * address geometry, vocabulary, error constructors, `policyError`), `tableFootprint` for
 * ENOMEM and the public checker for EPERM. Outside this repository, import them from 'ptspec/spec' and 'ptspec/checker'.
 */
import {
  fail, INIT_MM, sameFrameFacts, kernelLayout, leafLevel, OK, ok, PAGE_KERNEL, PAGES, pagesPerEntry, policyError, STRICT_POLICY,
  tableFootprint, validateAccess, validateCollapse, validateFlush, validateMap, validateProtect, validateSetDirectMap,
  validateSplit, validateTranslate, validateUnmap, vpnToHex,
  type AbstractState, type AccessKind, type AccessMode, type AccessOutcome, type FlushObligation, type FlushOptions,
  type FrameRun, type Leaf, type Level, type MapOptions, type MutatingOp, type PageSize, type PageTableSystem,
  type PageTableSystemFactory, type Pfn, type Prot, type ProtChange, type ProtectOptions, type PtError, type Result,
  type RootId, type SystemConfig, type SystemSetup, type TlbEntry, type Translation, type Vpn,
} from '../spec/index.ts';
import { checkAll, invariantById, type Invariant } from '../checker/index.ts';

interface Range {
  readonly vpn: Vpn;
  readonly pages: number;
}

/** What a mutating operation would produce; `commit` decides EPERM and ENOMEM on it. */
interface Candidate {
  readonly leaves: readonly Leaf[];
  /** The non-present entries after it (set_memory_np); absent: unchanged. */
  readonly nonPresent?: readonly Leaf[];
  /** set_memory_rox: the leaves before its collapse, which decide ENOMEM (the splits come first). */
  readonly tablesBeforeCollapse?: readonly Leaf[];
  readonly frames?: readonly FrameRun[];
  /** Flushed on all CPUs once the operation has succeeded. */
  readonly flush: readonly Range[];
  /** A `flush: false` operation owes this flush instead. */
  readonly owe?: Range & { readonly reason: string };
  /** Where the result changed: the policy check looks there (and at every alias of those frames). */
  readonly touched: readonly Range[];
  /** setDirectMapInvalid without a flush: tables it empties here stay pending free. */
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

/** Sorted ranges with the overlapping and touching ones joined. */
function mergeRanges(ranges: readonly Range[]): Range[] {
  const out: Range[] = [];
  for (const r of [...ranges].sort((a, b) => a.vpn - b.vpn)) {
    const last = out[out.length - 1];
    if (last !== undefined && end(last) >= r.vpn) out[out.length - 1] = { vpn: last.vpn, pages: Math.max(end(last), end(r)) - last.vpn };
    else out.push(r);
  }
  return out;
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

function markNoDirectMap(runs: readonly FrameRun[], pfn: Pfn, count: number, value: boolean): FrameRun[] {
  return canonicalFrames(runs.flatMap((r) =>
    cutAt(r.pfn, r.count, pfn, pfn + count).map((p) => ({ ...r, pfn: p.start, count: p.count, noDirectMap: p.inside ? value : r.noDirectMap }))));
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

/**
 * The spans of the tables these leaves need (spec/footprint.ts): the level-L table with
 * key k exists while a leaf of level ≤ L lies in [k·span, (k+1)·span), span = pagesPerEntry(L+1).
 */
function tableSpans(levels: number, leaves: readonly Leaf[]): Map<string, Range> {
  const spans = new Map<string, Range>();
  for (let L = 1; L < levels; L++) {
    const span = pagesPerEntry((L + 1) as Level);
    for (const l of leaves) {
      if (leafLevel(l.size) <= L) spans.set(`${L}:${Math.floor(l.vpn / span)}`, { vpn: Math.floor(l.vpn / span) * span, pages: span });
    }
  }
  return spans;
}

const POLICY: readonly Invariant[] = STRICT_POLICY.map((p) => invariantById(p.id)!);

class SimplePageTables implements PageTableSystem {
  readonly config: SystemConfig;
  private leaves: readonly Leaf[] = [];
  /** Entries set_memory_np made non-present: frame and prot kept, disjoint from the leaves, holding their table slots. */
  private nonPresent: readonly Leaf[] = [];
  private frames: readonly FrameRun[];
  private tlb: readonly TlbEntry[] = [];
  private obligations: readonly FlushObligation[] = [];
  /** Tables unlinked by setDirectMapInvalid without a flush, by the span they covered. */
  private pendingTables: readonly Range[] = [];
  /** tableFootprint of `leaves`, kept at commit: the fuzzer calls abstract() after every command. */
  private footprint: number;

  constructor(setup: SystemSetup) {
    this.config = setup.config;
    this.frames = canonicalFrames(setup.frames);
    this.footprint = tableFootprint(this.config.levels, this.leaves);
  }

  map(root: RootId, vpn: Vpn, pfn: Pfn, pages: number, prot: Prot, opts: MapOptions = {}): Result<void> {
    const bad = validateMap(this.config, root, vpn, pfn, pages, prot, opts);
    if (bad) return refuse(bad);
    const r = { vpn, pages };
    if (mappedPages(this.leaves, r) + mappedPages(this.nonPresent, r) > 0) return fail('EEXIST', 'vpn', `part of ${vpnToHex(vpn)} +${pages} has an entry`);
    // changed(prot, {}) keeps our own copy of exactly the six fields the caller gave.
    const added = placeLeaves(this.config, vpn, pfn, pages, changed(prot, {}), opts.maxPage ?? '1G');
    return this.commit('map', { leaves: insertLeaves(this.leaves, added), flush: [], touched: [r] });
  }

  unmap(root: RootId, vpn: Vpn, pages: number): Result<void> {
    const bad = validateUnmap(this.config, root, vpn, pages);
    if (bad) return refuse(bad);
    const r = { vpn, pages };
    if (mappedPages(this.leaves, r) + mappedPages(this.nonPresent, r) === 0) return fail('ENOENT', 'vpn', `nothing in ${vpnToHex(vpn)} +${pages} is mapped`);
    const gone = (list: readonly Leaf[]): Leaf[] => editRange(list, r, () => true, () => null);
    return this.commit('unmap', { leaves: gone(this.leaves), nonPresent: gone(this.nonPresent), flush: [r], touched: [r] });
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

  /** cpa_process_alias: the direct-map pages of the frames that `r` maps from outside the direct map. */
  private aliasRanges(r: Range): Range[] {
    const dm = { vpn: this.directMapPage(0), pages: this.config.frames };
    const [lo, hi] = meeting(this.leaves, r);
    const pieces: Range[] = [];
    for (const l of this.leaves.slice(lo, hi)) {
      const a = Math.max(l.vpn, r.vpn);
      const b = Math.min(end(leafRange(l)), end(r));
      // The part of [a, b) outside the direct map: at most one piece below it and one above.
      for (const [x, y] of [[a, Math.min(b, dm.vpn)], [Math.max(a, end(dm)), b]] as const) {
        if (x < y) pieces.push({ vpn: this.directMapPage(l.pfn + (x - l.vpn)), pages: y - x });
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
    const frames = markNoDirectMap(this.frames, pfn, count, true);
    const flushed = opts.flush ? { flush: [dm] } : { flush: [], owe: { ...dm, reason: 'setDirectMapInvalid' }, deferFrees: dm };
    return this.commit('setDirectMapInvalid', { leaves, frames, touched: [dm], ...flushed });
  }

  setDirectMapDefault(pfn: Pfn, count: number, opts: FlushOptions): Result<void> {
    const bad = validateSetDirectMap(this.config, pfn, count);
    if (bad) return refuse(bad);
    const dm = { vpn: this.directMapPage(pfn), pages: count };
    if (mappedPages(this.leaves, dm) + mappedPages(this.nonPresent, dm) > 0) return fail('EEXIST', 'pfn', `a frame from ${pfn} still has its direct-map page`);
    const added = Array.from({ length: count }, (_, i): Leaf => ({ vpn: dm.vpn + i, pfn: pfn + i, size: '4K', prot: PAGE_KERNEL }));
    const frames = markNoDirectMap(this.frames, pfn, count, false);
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
    const bad = validateTranslate(this.config, root, vpn);
    if (bad) return refuse(bad);
    const leaf = leafAt(this.leaves, vpn);
    if (leaf === undefined) return fail('ENOENT', 'vpn', `${vpnToHex(vpn)} is not mapped`);
    return ok({ leaf, pfn: leaf.pfn + (vpn - leaf.vpn) });
  }

  access(cpu: number, root: RootId, vpn: Vpn, kind: AccessKind, mode: AccessMode): Result<AccessOutcome> {
    const bad = validateAccess(this.config, cpu, root, vpn, kind, mode);
    if (bad) return refuse(bad);
    // Of the entries covering vpn (a stale 4K one under a later 2M fill), the smallest is used.
    const cached = this.tlb
      .filter((e) => e.cpu === cpu && e.root === root && e.leaf.vpn <= vpn && vpn < end(leafRange(e.leaf)))
      .sort((a, b) => PAGES[a.leaf.size] - PAGES[b.leaf.size])[0];
    const leaf = cached?.leaf ?? leafAt(this.leaves, vpn);
    if (leaf === undefined) return ok({ fault: 'not-present' });
    if (cached === undefined) this.tlb = sortTlb([...this.tlb, { cpu, root, leaf }]);
    if (!allowed(leaf.prot, kind, mode)) return ok({ fault: 'protection' });
    return ok({ fault: false, translation: { leaf, pfn: leaf.pfn + (vpn - leaf.vpn) }, fromTlb: cached !== undefined });
  }

  flush(vpn: Vpn, pages: number): Result<void> {
    const bad = validateFlush(this.config, vpn, pages);
    if (bad) return refuse(bad);
    this.flushRange({ vpn, pages });
    return OK;
  }

  flushAll(): Result<void> {
    this.tlb = [];
    this.obligations = [];
    this.pendingTables = [];
    return OK;
  }

  abstract(): AbstractState {
    return {
      config: this.config,
      frames: this.frames,
      roots: [{ id: INIT_MM, kind: 'kernel', leaves: this.leaves, ...(this.nonPresent.length > 0 ? { nonPresent: this.nonPresent } : {}) }],
      tlb: this.tlb,
      pendingFlush: this.obligations,
      tablesInUse: this.footprint + this.pendingTables.length,
      pendingTableFrees: this.pendingTables.length,
    };
  }

  /** The order every operation follows once its arguments and the state allow it: EPERM, then ENOMEM, then commit and flush. */
  private commit(op: MutatingOp, c: Candidate): Result<void> {
    const frames = c.frames ?? this.frames;
    const candidate: AbstractState = { ...this.abstract(), frames, roots: [{ id: INIT_MM, kind: 'kernel', leaves: c.leaves }] };
    // What we committed broke none of them, so only what this operation touched can.
    for (const inv of POLICY) {
      for (const scope of c.touched) {
        const broken = checkAll(candidate, scope, [inv])[0]?.witnesses[0];
        if (broken !== undefined) return refuse(policyError(op, inv.id, broken.detail));
      }
    }
    const nonPresent = c.nonPresent ?? this.nonPresent;
    // Non-present entries hold their table slots as leaves do.
    const entries = (leaves: readonly Leaf[]): Leaf[] => sortLeaves([...leaves, ...nonPresent]);
    const deferred = c.deferFrees === undefined ? [] : this.emptiedTables(entries(c.leaves), c.deferFrees);
    const footprint = tableFootprint(this.config.levels, entries(c.leaves));
    const needed = tableFootprint(this.config.levels, entries(c.tablesBeforeCollapse ?? c.leaves)) + this.pendingTables.length + deferred.length;
    if (needed > this.config.tablePool.count) return fail('ENOMEM', 'tablePool', `needs ${needed} tables, the pool has ${this.config.tablePool.count}`);
    this.leaves = c.leaves;
    this.nonPresent = nonPresent;
    this.footprint = footprint;
    this.frames = frames;
    this.pendingTables = [...this.pendingTables, ...deferred];
    for (const r of c.flush) this.flushRange(r);
    if (c.owe) this.obligations = owe(this.obligations, c.owe, c.owe.reason);
    return OK;
  }

  /** The tables whose span meets `r` that our entries need and `after` does not. */
  private emptiedTables(after: readonly Leaf[], r: Range): Range[] {
    const needed = tableSpans(this.config.levels, after);
    return [...tableSpans(this.config.levels, sortLeaves([...this.leaves, ...this.nonPresent]))].filter(([key, span]) => !needed.has(key) && meets(span, r)).map(([, span]) => span);
  }

  /** flush_tlb_kernel_range on every CPU: entries meeting `r` go, debts there are paid, pending tables there are freed. */
  private flushRange(r: Range): void {
    this.tlb = this.tlb.filter((e) => !meets(leafRange(e.leaf), r));
    this.obligations = this.obligations.flatMap((o) =>
      cutAt(o.vpn, o.pages, r.vpn, end(r)).filter((p) => !p.inside).map((p) => ({ vpn: p.start, pages: p.count, reason: o.reason })));
    this.pendingTables = this.pendingTables.filter((t) => !meets(t, r));
  }
}

/** The canonical TLB order: cpu, root, leaf vpn, smaller leaf first. */
function sortTlb(tlb: readonly TlbEntry[]): TlbEntry[] {
  return [...tlb].sort((a, b) => a.cpu - b.cpu || a.root - b.root || a.leaf.vpn - b.leaf.vpn || PAGES[a.leaf.size] - PAGES[b.leaf.size]);
}

const createSystem: PageTableSystemFactory = (setup) => new SimplePageTables(setup);
export default createSystem;
