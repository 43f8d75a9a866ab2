/**
 * The reference model: the operations of spec/system.ts on the abstract state itself,
 * written the obvious way. Each operation runs the trusted argument validator of
 * spec/contracts, then the state checks, builds the candidate state functionally (on the
 * window of init_mm's entries it can change, model/entry-store.ts, so that it costs what
 * it touches), refuses it with EPERM if it breaks a strict-policy invariant
 * (model/policy.ts) or ENOMEM if it needs more tables than the pool holds, and only then
 * commits, so a failed operation changes nothing (the store takes its edit back). Every other decision (leaf sizes, the split rule, aliases, TLBs,
 * paging-structure caches, obligations, table lifetime, frame lifecycle) is the model's
 * own, in the modules beside this one. Under linux, unmap is vunmap_range
 * (model/vunmap.ts) and emptied tables are kept, not freed (model/tables.ts, `kept` below).
 * The clients capability (model/clients.ts) is always there: its bookkeeping is part of
 * the state, every flush drops the stale mermap allocations it covers whole, and allocFrames
 * takes a pageblock of the unmapped pool back first.
 */
import { PAGES, pfnSpan, pfnToHex, vpnSpan, vpnToHex, type Pfn, type Vpn } from '../spec/address.ts';
import { emptyClients, type ClientState } from '../spec/clients.ts';
import {
  directMapVpn, policyError, validateAccess, validateCollapse, validateFlush, validateFlushLocal, validateFrames, validateMap,
  validateProtect, validateSetDirectMap, validateSplit, validateTranslate, validateUnmap, type MutatingOp,
} from '../spec/contracts/index.ts';
import { kernelImage, TLB_SINGLE_PAGE_FLUSH_CEILING, type KernelImage } from '../spec/contracts/linux.ts';
import { fail, OK, ok, type Errno, type PtError, type Result } from '../spec/errors.ts';
import {
  INIT_MM, PAGE_KERNEL, type AbstractRoot, type AbstractState, type FlushObligation, type FrameRun, type Leaf, type Prot, type RootId,
  type SystemConfig, type TlbEntry, type WalkCacheEntry,
} from '../spec/state.ts';
import type {
  AccessKind, AccessMode, AccessOutcome, FlushOptions, IsolationOps, KernelEvent, MapOptions, PageTableSystem, Profile, ProtChange, ProtectOptions,
  SystemSetup, Translation,
} from '../spec/system.ts';
import { heldMirrors, mirrorHolding } from '../spec/roots.ts';
import { withOtherLeavesLookup, type OtherLeavesLookup } from '../checker/common.ts';
import { ClientsModel } from './clients.ts';
import type { ClientDraft, ClientPolicyOp, ClientsHost } from './clients-host.ts';
import { dropStale, holdersOf } from './clients-state.ts';
import { collapseRange, collapseSpan } from './collapse.ts';
import { Cpa, type Masks } from './cpa.ts';
import { cpaWindow } from './cpa-window.ts';
import { changeEntries, entriesMeeting, pagesWithEntry, type Entries } from './entries.ts';
import { EntryStore, type Applied, type Range, type Window, type WindowEdit } from './entry-store.ts';
import { EMPTY_ISOLATION, isolationRoots, isolationTables, tablesOwner, type IsolationState } from './isolation.ts';
import { IsolationModel, type IsolationHost } from './isolation-ops.ts';
import { firstFrameNot, hasMemtype, normalizeFrames, setFrameUse, setMemtype, setNoDirectMap } from './frames.ts';
import { collapseBlock, collapseRefusal, splitLeaf } from './hugepage.ts';
import { always, findLeaf, insertLeaves, leafEnd, makeLeaf, mappedPages, mergeLeaves, removeInside, splitAtEdges, takeInside } from './leaves.ts';
import { memtypePlan, trackedFrames } from './memtype.ts';
import { placeLeaves } from './placement.ts';
import { firstPolicyBreak } from './policy.ts';
import { aliasChange, aliasRanges, applyProtChange } from './protect.ts';
import { emptiedTables, keptLeavingByMap, newlyKept, releasePending, type PendingTable, type TableId } from './tables.ts';
import {
  accessAllowed, addFlushObligation, compareTlbEntries, dischargeFlushRange, flushTlbLocal, flushTlbRange, mergeFlushRanges, tlbLookup, translation,
} from './tlb.ts';
import { vunmap } from './vunmap.ts';
import { dropCpu, fillWalkCache, unlinkTables, walkStart } from './walkcache.ts';

/** What an operation would produce, before policy and memory decide. */
interface Candidate {
  /** The entries of init_mm the operation can change, cut out (model/entry-store.ts), and what they become. */
  readonly window: Window;
  readonly next: WindowEdit;
  /**
   * The window's entries ENOMEM is judged on when they are not the result's: a strict
   * protect's before its collapse (which only frees tables).
   */
  readonly peak?: WindowEdit;
  readonly frames?: readonly FrameRun[];
  /**
   * Ranges flushed on all CPUs before the operation returns: merged where they overlap
   * or touch, a full flush if a merged range passes the ceiling (flushRanges).
   */
  readonly flush: readonly Range[];
  /** A `_noflush` operation's debt instead of the flush. */
  readonly owe?: Range & { readonly reason: string };
  /**
   * Where the operation changed mappings or the direct-map pages of frames whose flags it
   * changed, for the policy check: the committed state is clean, so a violation in the
   * candidate involves one of these (the scoped checks add every alias of their frames).
   */
  readonly touched: readonly Range[];
  /**
   * The range a strict `_noflush` removal emptied tables in: they stay pending free until
   * a flush meets them, and every CPU's cached entry for one of them is 'unlinked'
   * (spec/contracts/flush.ts).
   */
  readonly deferFrees?: Range;
  /** The clients' clear: owed when deferFrees left a table pending (a flush of every CPU must come before its free). */
  readonly oweIfDeferred?: Range & { readonly reason: string };
  /**
   * Linux: the tables that become kept (empty but allocated) and those that stop being
   * kept (reused or freed by a map). Each `add` is not kept now, each `drop` is; the
   * tables of the `removed` entries (a vunmap's, a clear's) that no entry needs once the
   * result is in become kept too.
   */
  readonly kept?: { readonly add: readonly TableId[]; readonly drop: readonly TableId[]; readonly removed?: readonly Leaf[] };
  /** Linux vunmap: no ENOMEM (it allocates nothing, and frees nothing either). */
  readonly noEnomem?: true;
  /** What the kernel prints when the operation commits. */
  readonly events?: readonly KernelEvent[];
}

const err = (e: PtError): Result<never> => ({ ok: false, error: e });

export class Model implements PageTableSystem {
  readonly config: SystemConfig;
  readonly profile: Profile;
  /**
   * init_mm's entries: the leaves and the non-present entries that keep a frame
   * (set_memory_np; under linux also set_direct_map_invalid), disjoint from the leaves,
   * with their table counts (the radix footprint, without the pending tables) and the
   * frame index of the leaves outside the direct map (model/entry-store.ts).
   */
  private store: EntryStore;
  /** What the kernel printed since takeEvents, and the once-per-boot warnings already printed. */
  private events: KernelEvent[] = [];
  private printedOnce: ReadonlySet<KernelEvent['kind']> = new Set();
  private readonly image: KernelImage | undefined;
  private frames: readonly FrameRun[];
  private tlb: readonly TlbEntry[] = [];
  /** Every CPU's paging-structure caches, in canonical order (model/walkcache.ts). */
  private walkCache: readonly WalkCacheEntry[] = [];
  private pendingFlush: readonly FlushObligation[] = [];
  /** Tables unlinked by a `_noflush` removal, not reusable until a flush meets them. */
  private pendingTables: readonly PendingTable[] = [];
  /**
   * Linux: the tables that exist though no entry needs them (a vunmap emptied them and
   * the kernel keeps them), disjoint from the footprint's tables; always empty under
   * strict. Mutated in place by a commit, copied by clone.
   */
  private kept = new Set<TableId>();
  /**
   * While a client operation runs steps its contract judges as a whole, not one by one
   * (vfree: ClientDraft.unjudged): the strict policy asks nothing of them, and strict's
   * pool bound is the operation's own, judged on what it produces after its policy.
   */
  private unjudged = false;
  /** The isolation capability's roots and processes (model/isolation.ts); undefined without it. */
  private iso: IsolationState | undefined;
  /** The roots and tables of `iso`, computed once per isolation state (it is immutable). */
  private isoDerived: { readonly iso: IsolationState; readonly roots: AbstractRoot[]; readonly tables: number } | undefined;
  readonly isolation?: IsolationOps;
  /** The clients' bookkeeping (spec/clients.ts), in canonical order. */
  private clientState: ClientState;
  readonly clients: ClientsModel;

  constructor(setup: SystemSetup) {
    this.config = setup.config;
    this.profile = setup.profile ?? 'strict';
    this.frames = normalizeFrames(setup.frames);
    this.image = kernelImage(this.config, this.frames);
    this.store = new EntryStore(this.config.levels);
    if (setup.isolation === true) {
      this.iso = EMPTY_ISOLATION;
      this.isolation = new IsolationModel(this.isolationHost());
    }
    this.clientState = emptyClients(this.config.levels, this.config.cpus);
    this.clients = new ClientsModel(this.clientsHost());
  }

  /** An independent copy (the state is immutable arrays, so copying shares them; the entry store copies on write). */
  clone(): Model {
    const copy = new Model({ config: this.config, frames: this.frames, profile: this.profile, isolation: this.iso !== undefined });
    copy.iso = this.iso;
    copy.isoDerived = this.isoDerived;
    copy.store = this.store.clone();
    copy.events = [...this.events];
    copy.printedOnce = this.printedOnce;
    copy.tlb = this.tlb;
    copy.walkCache = this.walkCache;
    copy.pendingFlush = this.pendingFlush;
    copy.pendingTables = this.pendingTables;
    copy.kept = new Set(this.kept);
    copy.clientState = this.clientState;
    return copy;
  }

  /**
   * PageTableSystem.fork: a campaign forks the booted model for each sequence. The clone:
   * the table counts, linux's kept tables and the unread events are copied, the rest shared
   * (the entry lists and the frame index's chunks copy on write, every other part is immutable).
   */
  fork(): Model {
    return this.clone();
  }

  /** Every part of the state taken from `m`, a copy an operation's steps ran on (model/clients-host.ts). */
  private adopt(m: Model): void {
    this.iso = m.iso;
    this.store = m.store;
    this.events = m.events;
    this.printedOnce = m.printedOnce;
    this.frames = m.frames;
    this.tlb = m.tlb;
    this.walkCache = m.walkCache;
    this.pendingFlush = m.pendingFlush;
    this.pendingTables = m.pendingTables;
    this.kept = m.kept;
    this.clientState = m.clientState;
  }

  map(root: RootId, vpn: Vpn, pfn: Pfn, pages: number, prot: Prot, opts: MapOptions = {}): Result<void> {
    const bad = validateMap(this.config, root, vpn, pfn, pages, prot, opts);
    if (bad) return err(bad);
    if (pagesWithEntry(this.entries(), vpn, pages) > 0) return fail('EEXIST', 'vpn', `part of ${vpnSpan(vpn, pages)} is already mapped`);
    const own = this.leafProt(prot);
    const added = placeLeaves(this.config, vpn, pfn, pages, opts.maxPage).map((p) => makeLeaf(p.vpn, p.pfn, p.size, own));
    // Linux reuses the kept tables the new leaves need and frees those a huge leaf
    // replaces, each after a one-page flush at that leaf (pmd_free_pte_page / pud_free_pmd_page).
    const leaving = this.profile === 'linux' ? keptLeavingByMap(this.config.levels, added, this.kept) : { drop: [], flushAt: [] };
    // Strict purges first what is still owed where the leaves go (a lazily freed area is
    // reused only flushed: map.ts), so no stale small translation outlives a huge fill.
    const owed = this.profile === 'strict' ? this.pendingFlush.filter((o) => o.vpn < vpn + pages && vpn < o.vpn + o.pages) : [];
    const flush = [...leaving.flushAt.map((at) => ({ vpn: at, pages: 1 })), ...owed.map((o) => ({ vpn: o.vpn, pages: o.pages }))];
    const kept = this.profile === 'linux' ? { kept: { add: [], drop: leaving.drop } } : {};
    const w = this.store.window([{ vpn, pages }]);
    return this.commit('map', { window: w, next: { leaves: insertLeaves(w.entries.leaves, added) }, flush, touched: [{ vpn, pages }], ...kept });
  }

  unmap(root: RootId, vpn: Vpn, pages: number, opts: FlushOptions = { flush: true }): Result<void> {
    const bad = validateUnmap(this.config, root, vpn, pages);
    if (bad) return err(bad);
    if (pagesWithEntry(this.entries(), vpn, pages) === 0) return fail('ENOENT', 'vpn', `nothing in ${vpnSpan(vpn, pages)} is mapped`);
    const range = { vpn, pages };
    // vunmap_range flushes the range; vunmap_range_noflush leaves it owed instead.
    const flushed = opts.flush ? { flush: [range] } : { flush: [], owe: { ...range, reason: 'unmap' } };
    const w = this.store.window([range]);
    if (this.profile === 'linux') {
      // vunmap_range: every entry meeting the range goes whole; its emptied tables are
      // kept, still linked, so nothing goes pending and no cached table entry is unlinked.
      const v = vunmap(w.entries.leaves, w.entries.nonPresent, vpn, pages);
      const next = { leaves: v.leaves, nonPresent: v.nonPresent };
      return this.commit('unmap', { window: w, next, ...flushed, touched: [range], kept: { add: [], drop: [], removed: v.removed }, noEnomem: true, events: v.events });
    }
    const cut = (list: readonly Leaf[]): Leaf[] => removeInside(splitAtEdges(list, vpn, pages, always), vpn, pages);
    const next = { leaves: cut(w.entries.leaves), nonPresent: cut(w.entries.nonPresent) };
    // Without the flush, the tables it empties wait for one.
    return this.commit('unmap', { window: w, next, ...flushed, touched: [range], ...(opts.flush ? {} : { deferFrees: range }) });
  }

  protect(vpn: Vpn, pages: number, change: ProtChange, opts: ProtectOptions = {}): Result<void> {
    const bad = validateProtect(this.config, vpn, pages, change);
    if (bad) return err(bad);
    if (this.profile === 'linux') return this.setMemory(vpn, pages, change, opts);
    const before = this.entries();
    if (pagesWithEntry(before, vpn, pages) < pages) return fail('ENOENT', 'vpn', `part of ${vpnSpan(vpn, pages)} has no entry`);
    // Every entry carries a frame, present or not, so both kinds have aliases.
    const aliases = opts.alias === true ? aliasRanges(this.config, entriesMeeting(before, vpn, pages), vpn, pages) : [];
    const own = opts.collapse === true ? collapseSpan(this.config.features, vpn, pages) : { vpn, pages };
    const w = this.store.window([own, ...aliases]);
    let next = changeEntries(w.entries, vpn, pages, change);
    const flush: Range[] = [{ vpn, pages }];
    const alias = aliasChange(change);
    for (const r of aliases) {
      next = changeEntries(next, r.vpn, r.pages, alias);
      flush.push(r);
    }
    if (opts.collapse !== true) return this.commit('protect', { window: w, next, flush, touched: flush });
    // Strict collapses whether or not the change wrote anything (spec/contracts/protect.ts).
    const collapsed = collapseRange(this.config.features, next.leaves, vpn, pages);
    const all = flush.concat(collapsed.blocks);
    return this.commit('protect', { window: w, next: { leaves: collapsed.leaves, nonPresent: next.nonPresent }, peak: next, flush: all, touched: all });
  }

  setDirectMapInvalid(pfn: Pfn, count: number, opts: FlushOptions): Result<void> {
    const bad = validateSetDirectMap(this.config, pfn, count);
    if (bad) return err(bad);
    const dm = { vpn: directMapVpn(this.config.levels, pfn), pages: count };
    if (this.profile === 'linux') return this.setPagesPresent(pfn, count, false, opts);
    // Only a present leaf is a direct-map page to invalidate: a non-present entry
    // (set_memory_np) maps nothing, so it is ENOENT like a hole. Every page then has a
    // leaf, so no non-present entry lies in the range.
    if (mappedPages(this.entries().leaves, dm.vpn, count) < count) return fail('ENOENT', 'pfn', `a frame of ${pfnSpan(pfn, count)} has no present direct-map page`);
    const w = this.store.window([dm]);
    const leaves = removeInside(splitAtEdges(w.entries.leaves, dm.vpn, count, always), dm.vpn, count);
    const frames = setNoDirectMap(this.frames, pfn, count, true);
    // Marking the frames noDirectMap can make their other mappings illegal: the scope of
    // their direct-map pages brings every alias of them into the check.
    const next = { window: w, next: { leaves }, frames, touched: [dm], ...(opts.flush ? {} : { deferFrees: dm }) };
    return this.commit('setDirectMapInvalid', flushOrOwe(next, dm, opts, 'setDirectMapInvalid'));
  }

  setDirectMapDefault(pfn: Pfn, count: number, opts: FlushOptions): Result<void> {
    const bad = validateSetDirectMap(this.config, pfn, count);
    if (bad) return err(bad);
    const dm = { vpn: directMapVpn(this.config.levels, pfn), pages: count };
    if (this.profile === 'linux') return this.setPagesPresent(pfn, count, true, opts);
    // A non-present entry (set_memory_np) still holds the direct-map page's slot, as for map: EEXIST.
    if (pagesWithEntry(this.entries(), dm.vpn, count) > 0) return fail('EEXIST', 'pfn', `a frame of ${pfnSpan(pfn, count)} still has its direct-map page`);
    const added = Array.from({ length: count }, (_, i) => makeLeaf(dm.vpn + i, pfn + i, '4K', PAGE_KERNEL));
    const frames = setNoDirectMap(this.frames, pfn, count, false);
    // Clearing noDirectMap cannot make a mapping illegal: only the new pages need a look.
    const w = this.store.window([dm]);
    return this.commit('setDirectMapDefault', flushOrOwe({ window: w, next: { leaves: insertLeaves(w.entries.leaves, added) }, frames, touched: [dm] }, dm, opts, 'setDirectMapDefault'));
  }

  split(root: RootId, vpn: Vpn): Result<void> {
    const bad = validateSplit(this.config, root, vpn);
    if (bad) return err(bad);
    const leaf = findLeaf(this.entries().leaves, vpn);
    if (leaf === undefined) return fail('ENOENT', 'vpn', `${vpnToHex(vpn)} is not mapped`);
    if (leaf.size === '4K') return fail('EINVAL', 'vpn', `${vpnToHex(vpn)} is mapped by a 4K leaf, which cannot split`);
    const range = { vpn: leaf.vpn, pages: PAGES[leaf.size] };
    // The window's leaves are the leaf itself: no other entry meets its pages.
    return this.commit('split', { window: this.store.window([range]), next: { leaves: splitLeaf(leaf) }, flush: [range], touched: [range] });
  }

  collapse(root: RootId, vpn: Vpn, size: '2M' | '1G'): Result<void> {
    const bad = validateCollapse(this.config, root, vpn, size);
    if (bad) return err(bad);
    const block = collapseBlock(vpn, size);
    if (mappedPages(this.entries().leaves, block.vpn, block.pages) < block.pages) return fail('ENOENT', 'vpn', `part of the ${size} block at ${vpnToHex(block.vpn)} is not mapped`);
    const w = this.store.window([block]);
    const inside = w.entries.leaves;
    const refusal = collapseRefusal(inside, size);
    if (refusal !== null) return fail('EINVAL', 'vpn', `cannot collapse the ${size} block at ${vpnToHex(block.vpn)}: ${refusal}`);
    const one = makeLeaf(block.vpn, inside[0]!.pfn, size, inside[0]!.prot);
    return this.commit('collapse', { window: w, next: { leaves: [one] }, flush: [block], touched: [block] });
  }

  translate(root: RootId, vpn: Vpn): Result<Translation> {
    const bad = validateTranslate(this.config, root, vpn, this.rootIds());
    if (bad) return err(bad);
    const leaf = this.walk(root, vpn);
    if (leaf === undefined) return fail('ENOENT', 'vpn', `${vpnToHex(vpn)} is not mapped`);
    return ok(translation(leaf, vpn));
  }

  access(cpu: number, root: RootId, vpn: Vpn, kind: AccessKind, mode: AccessMode): Result<AccessOutcome> {
    const bad = validateAccess(this.config, cpu, root, vpn, kind, mode, this.rootIds());
    if (bad) return err(bad);
    const cached = tlbLookup(this.tlb, cpu, root, vpn);
    let leaf = cached?.leaf;
    if (leaf === undefined) {
      // The walk resumes at the deepest table this CPU has cached for vpn; one that left
      // its place (unlinked, empty) leads nowhere, whatever the tables hold now.
      const start = walkStart(this.walkCache, cpu, root, vpn);
      if (start !== undefined && start.table !== 'current') return ok({ fault: 'not-present' });
      leaf = this.walk(root, vpn);
      if (leaf === undefined) return ok({ fault: 'not-present' });
      this.tlb = [...this.tlb, { cpu, root, leaf }].sort(compareTlbEntries);
      this.walkCache = fillWalkCache(this.walkCache, this.config.levels, cpu, root, leaf);
    }
    if (!accessAllowed(leaf.prot, kind, mode)) return ok({ fault: 'protection' });
    return ok({ fault: false, translation: translation(leaf, vpn), fromTlb: cached !== undefined });
  }

  flush(vpn: Vpn, pages: number): Result<void> {
    const bad = validateFlush(this.config, vpn, pages);
    if (bad) return err(bad);
    this.flushRanges([{ vpn, pages }]);
    return OK;
  }

  flushAll(): Result<void> {
    this.tlb = [];
    this.walkCache = [];
    this.pendingFlush = [];
    this.pendingTables = [];
    this.clientState = dropStale(this.clientState);
    return OK;
  }

  flushLocal(cpu: number, vpn: Vpn, pages: number): Result<void> {
    const bad = validateFlushLocal(this.config, cpu, vpn, pages);
    if (bad) return err(bad);
    // flush_tlb_one_kernel page by page on this CPU alone: no ceiling, and nothing owed is
    // paid nor any pending table released, since the other CPUs may still cache them.
    this.tlb = flushTlbLocal(this.tlb, cpu, vpn, pages);
    this.walkCache = dropCpu(this.walkCache, cpu);
    this.clientState = dropStale(this.clientState, cpu, { vpn, pages });
    return OK;
  }

  allocFrames(pfn: Pfn, count: number): Result<void> {
    const bad = validateFrames(this.config, pfn, count);
    if (bad) return err(bad);
    const busy = firstFrameNot(this.frames, pfn, count, 'free');
    if (busy !== undefined) return fail('EBUSY', 'pfn', `frame ${pfnToHex(busy)} of ${pfnSpan(pfn, count)} is not free`);
    // A frame of the unmapped pool: its pageblock goes back to the direct map first (model/clients-pool.ts).
    const pooled = this.clients.allocFramesFromPool(pfn, count);
    if (pooled !== undefined) return pooled;
    // Handing frames out can break no policy rule: every frame rule restricts free frames.
    this.frames = setFrameUse(this.frames, pfn, count, 'data');
    return OK;
  }

  freeFrames(pfn: Pfn, count: number): Result<void> {
    const bad = validateFrames(this.config, pfn, count);
    if (bad) return err(bad);
    const notData = firstFrameNot(this.frames, pfn, count, 'data');
    if (notData !== undefined) return fail('ENOENT', 'pfn', `frame ${pfnToHex(notData)} of ${pfnSpan(pfn, count)} is not a data frame`);
    const frames = setFrameUse(this.frames, pfn, count, 'free');
    if (this.profile === 'strict' && !this.unjudged) {
      // Only the frames' use changes: their direct-map pages bring every mapping of them
      // into the scoped checks (D4); D6 looks at the frames and D7 at every TLB entry; the
      // stale mermap allocations and lazy areas holding them are where C1 looks.
      const scopes = [{ vpn: directMapVpn(this.config.levels, pfn), pages: count }, ...holdersOf(this.clientState, pfn, count)];
      const broken = firstPolicyBreak({ ...this.liveState(), frames }, scopes);
      if (broken !== null) return err(policyError('freeFrames', broken.id, broken.where));
    }
    // Linux: __free_pages looks at none of it.
    this.frames = frames;
    return OK;
  }

  abstract(): AbstractState {
    // The arrays are never mutated after they are handed out (the store copies its lists on the next edit).
    return this.stateOf(this.store.snapshot());
  }

  /** The state as it stands, over the store's own lists: for a check or a lookup right now, never to keep. */
  private liveState(): AbstractState {
    return this.stateOf(this.store.entries);
  }

  private stateOf(e: Entries): AbstractState {
    return {
      config: this.config,
      frames: this.frames,
      roots: this.withIsolationRoots(this.initRoot(e.leaves, e.nonPresent)),
      tlb: this.tlb,
      ...(this.walkCache.length > 0 ? { walkCache: this.walkCache } : {}),
      pendingFlush: this.pendingFlush,
      tablesInUse: this.tablesInUse(),
      pendingTableFrees: this.pendingTables.length,
      clients: this.clientState,
    };
  }

  /**
   * Root 0 with these entries, and the store's frame index as the checks' lookup of its
   * leaves outside the direct map (checker/common.ts), valid while the store is unchanged.
   */
  private initRoot(leaves: readonly Leaf[], nonPresent: readonly Leaf[] = []): AbstractRoot {
    const store = this.store;
    const version = store.version;
    const lookup: OtherLeavesLookup = (touched) => (store.version === version ? store.aliases.meeting(touched) : undefined);
    return withOtherLeavesLookup({ id: INIT_MM, kind: 'kernel', leaves, ...(nonPresent.length > 0 ? { nonPresent } : {}) }, lookup);
  }

  /** tablesInUse: the footprint, linux's kept tables, the pending ones and the isolation capability's. */
  private tablesInUse(): number {
    return this.store.tables.footprint + this.kept.size + this.pendingTables.length + this.isolationTables();
  }

  takeEvents(): readonly KernelEvent[] {
    const out = this.events;
    this.events = [];
    return out;
  }

  /** Both kinds of entry of root 0, as they stand (to read now, never to keep). */
  private entries(): Entries {
    return this.store.entries;
  }

  /** The isolation state's roots and tables, computed once for each (immutable) isolation state. */
  private isolationOf(iso: IsolationState): { readonly roots: AbstractRoot[]; readonly tables: number } {
    if (this.isoDerived?.iso !== iso) this.isoDerived = { iso, roots: isolationRoots(this.config.levels, iso), tables: isolationTables(this.config.levels, iso) };
    return this.isoDerived;
  }

  /** Root 0 followed by the isolation capability's roots, if it has them. */
  private withIsolationRoots(root0: AbstractRoot, iso = this.iso): AbstractState['roots'] {
    return iso === undefined ? [root0] : [root0, ...this.isolationOf(iso).roots];
  }

  /** The tables the isolation capability's roots hold beside init_mm's. */
  private isolationTables(): number {
    return this.iso === undefined ? 0 : this.isolationOf(this.iso).tables;
  }

  /** The roots translate and access take: undefined without isolation (init_mm alone). */
  private rootIds(): ReadonlySet<RootId> | undefined {
    return this.iso === undefined ? undefined : new Set([INIT_MM, ...this.isolationOf(this.iso).roots.map((r) => r.id)]);
  }

  /**
   * The leaf a walk of `root` finds at vpn: what the root's view holds there (spec/roots.ts
   * rootView), followed page-wise: through the mirror holding vpn to the root it mirrors,
   * until a root holds the slot itself (a mirror cycle translates nothing, as in rootView).
   * Mirrors are whole top-level slots, so that root's own leaf at vpn is the view's.
   */
  private walk(root: RootId, vpn: Vpn): Leaf | undefined {
    if (root === INIT_MM) return findLeaf(this.entries().leaves, vpn);
    const roots = this.withIsolationRoots(this.initRoot(this.entries().leaves));
    const seen = new Set<RootId>();
    for (let id = root; ;) {
      const r = roots.find((x) => x.id === id);
      if (r === undefined || seen.has(id)) return undefined;
      seen.add(id);
      const m = mirrorHolding(heldMirrors(this.config.levels, r), vpn);
      if (m === undefined) return findLeaf(r.leaves, vpn);
      id = m.from;
    }
  }

  /** Whether a root's walk at vpn goes through init_mm's tables (undefined without isolation: only init_mm's does). */
  private walksInit(): ((root: RootId, vpn: Vpn) => boolean) | undefined {
    if (this.iso === undefined) return undefined;
    const roots = this.liveState().roots;
    return (root, vpn) => tablesOwner(this.config.levels, roots, root, vpn) === INIT_MM;
  }

  /** What the isolation operations reach of this model (model/isolation-ops.ts). */
  private isolationHost(): IsolationHost {
    return {
      config: this.config,
      profile: this.profile,
      iso: () => this.iso!,
      initLeaves: () => this.entries().leaves,
      frames: () => this.frames,
      policyBreak: (n, scopes) => {
        // Judged with init_mm's changed leaves in place, then taken back.
        const applied = n.init === undefined ? undefined : this.replaceInit(n.init);
        try {
          const live = this.liveState();
          return firstPolicyBreak({ ...live, frames: n.frames ?? this.frames, roots: this.withIsolationRoots(live.roots[0]!, n.iso) }, scopes);
        } finally {
          if (applied !== undefined) this.store.undo(applied);
        }
      },
      initTables: () => this.store.tables.footprint + this.kept.size + this.pendingTables.length,
      apply: (n) => {
        this.iso = n.iso;
        if (n.init !== undefined) this.replaceInit(n.init);
        if (n.frames !== undefined) this.frames = n.frames;
        if (n.events !== undefined) this.events.push(...n.events);
      },
      flushKernel: (ranges) => this.flushRanges(ranges),
      flushRoots: (roots, range) => {
        const mine = (root: RootId): boolean => roots.includes(root);
        const hit = (e: TlbEntry): boolean => range === undefined || (e.leaf.vpn < range.vpn + range.pages && range.vpn < e.leaf.vpn + PAGES[e.leaf.size]);
        this.tlb = this.tlb.filter((e) => !(mine(e.root) && hit(e)));
        this.walkCache = this.walkCache.filter((w) => !mine(w.root));
      },
    };
  }

  /** init_mm's leaves at the vpns of `leaves` replaced by them (each over the same pages). */
  private replaceInit(leaves: readonly Leaf[]): Applied {
    const w = this.store.window(leaves.map((l) => ({ vpn: l.vpn, pages: PAGES[l.size] })));
    const byVpn = new Map(leaves.map((l) => [l.vpn, l]));
    return this.store.apply(w, { leaves: w.entries.leaves.map((l) => byVpn.get(l.vpn) ?? l) });
  }

  /** What the client operations reach of this model (model/clients-host.ts): itself, or a copy to commit. */
  private clientsHost(): ClientsHost {
    return {
      config: this.config,
      profile: this.profile,
      current: () => this.clientDraft(this),
      draft: () => {
        const copy = this.clone();
        return { ...this.clientDraft(copy), commit: () => this.adopt(copy) };
      },
    };
  }

  /** The client operations' view of model `m` (this one or a copy of it). */
  private clientDraft(m: Model): ClientDraft {
    return {
      sys: m,
      state: () => m.abstract(),
      clients: () => m.clientState,
      setClients: (next) => {
        m.clientState = next;
      },
      entries: () => m.entries(),
      setFrames: (next) => {
        m.frames = next;
      },
      install: (op, added, linux) => m.install(op, added, linux),
      clear: (vpn, pages, reason) => m.clear(vpn, pages, reason),
      unjudged: (steps) => {
        m.unjudged = true;
        try {
          return steps();
        } finally {
          m.unjudged = false;
        }
      },
      flushCpu: (cpu) => {
        m.tlb = m.tlb.filter((e) => e.cpu !== cpu);
        m.walkCache = dropCpu(m.walkCache, cpu);
        m.clientState = dropStale(m.clientState, cpu);
      },
      print: (e) => {
        m.events.push(e);
      },
      printOnce: (e) => m.printOnce(e),
      kept: () => m.kept,
      freeKept: (ids) => {
        for (const id of ids) m.kept.delete(id);
      },
      freeTables: () => m.config.tablePool.count - m.tablesInUse(),
      leafProt: (prot) => m.leafProt(prot),
    };
  }

  /** A WARN_ON_ONCE or pr_*_once: printed the first time its kind comes up after boot only. */
  private printOnce(e: KernelEvent): void {
    if (this.printedOnce.has(e.kind)) return;
    this.printedOnce = new Set([...this.printedOnce, e.kind]);
    this.events.push(e);
  }

  /**
   * The prot of a kernel leaf made with `prot`: a fresh copy, built one way
   * (applyProtChange with no change), which keeps prots monomorphic too. Under linux
   * nothing refuses a user prot, and the kernel's tables above the leaf (_KERNPG_TABLE)
   * have no _PAGE_USER: the effective prot has no user access. Strict keeps the bit so
   * that P6 refuses it.
   */
  private leafProt(prot: Prot): Prot {
    return this.profile === 'linux' && prot.user ? { ...applyProtChange(prot, {}), user: false, execUser: false } : applyProtChange(prot, {});
  }

  /**
   * Client leaves (sorted, on pages without an entry) put into init_mm with no flush and
   * no obligation; linux reuses the kept tables they need and keeps `keptAdd`.
   */
  private install(op: ClientPolicyOp, added: readonly Leaf[], linux?: { readonly keptAdd: readonly TableId[]; readonly events: readonly KernelEvent[] }): Result<void> {
    const first = added[0];
    const touched = first === undefined ? [] : [{ vpn: first.vpn, pages: leafEnd(added[added.length - 1]!) - first.vpn }];
    const kept = this.profile === 'linux' ? { kept: { add: linux?.keptAdd ?? [], drop: keptLeavingByMap(this.config.levels, added, this.kept).drop } } : {};
    // apply_to_pmd/pud_range's WARN_ON_ONCE prints once per boot.
    const events = linux?.events.filter((e) => e.kind !== 'apply-huge' || !this.printedOnce.has(e.kind));
    if (events?.some((e) => e.kind === 'apply-huge')) this.printedOnce = new Set([...this.printedOnce, 'apply-huge']);
    const w = this.store.window(touched);
    return this.commit(op, { window: w, next: { leaves: mergeLeaves(w.entries.leaves, added) }, flush: [], touched, ...kept, ...(events === undefined ? {} : { events }) });
  }

  /** mermap_put's and kunmap_local's clear (model/clients-host.ts ClientDraft.clear): the entries wholly inside the range go, nothing flushed; owed only where a table empties. */
  private clear(vpn: Vpn, pages: number, reason: string): void {
    const range = { vpn, pages };
    const w = this.store.window([range]);
    const { leaves, nonPresent } = w.entries;
    const removed = takeInside(leaves, vpn, pages).concat(takeInside(nonPresent, vpn, pages));
    if (removed.length === 0) return;
    const next = { leaves: removeInside(leaves, vpn, pages), nonPresent: removeInside(nonPresent, vpn, pages) };
    const tables = this.profile === 'linux' ? { kept: { add: [], drop: [], removed }, noEnomem: true as const } : { deferFrees: range, oweIfDeferred: { ...range, reason } };
    // Removing entries needs no table, and the contract refuses none of it: it cannot fail.
    this.commit(null, { window: w, next, flush: [], touched: [range], ...tables });
  }

  /**
   * Policy (strict only), then memory, then commit (spec/contracts/README.md: EPERM before
   * ENOMEM). `op` null: a step the contract cannot refuse (the clients' clear), not judged.
   */
  private commit(op: MutatingOp | ClientPolicyOp | null, c: Candidate): Result<void> {
    const frames = c.frames ?? this.frames;
    const judged = this.profile === 'strict' && op !== null && !this.unjudged;
    // The candidate's other parts are the state before (its table count too).
    const before = judged ? this.liveState() : undefined;
    // Non-present entries hold their table slots: the counts cover both kinds.
    const peak = c.peak === undefined ? undefined : this.store.footprintAfter(c.window, c.peak);
    // The result is judged in place, and taken back if it is refused.
    const applied = this.store.apply(c.window, c.next);
    if (before !== undefined) {
      // Root 0 with its leaves only: no strict-policy rule looks at non-present entries.
      const candidate: AbstractState = { ...before, frames, roots: this.withIsolationRoots(this.initRoot(this.entries().leaves)) };
      const broken = firstPolicyBreak(candidate, c.touched);
      if (broken !== null) {
        this.store.undo(applied);
        // MutatingOp names the core and isolation operations; POLICY_ARG holds every operation with a policyArg, the clients' too.
        return err(policyError(op as MutatingOp, broken.id, broken.where));
      }
    }
    const neededAfter = (id: TableId): boolean => this.store.needs(id);
    // The tables the removal emptied: those the entries it met (in the window) needed that no entry needs now.
    const deferred = c.deferFrees === undefined ? [] : emptiedTables(this.config.levels, entriesMeeting(c.window.entries, c.deferFrees.vpn, c.deferFrees.pages), neededAfter);
    const keptAdd = [...(c.kept?.add ?? []), ...(c.kept?.removed === undefined ? [] : newlyKept(this.config.levels, c.kept.removed, neededAfter))];
    // Pending tables are not reusable: they count until a flush releases them, after success.
    // Kept tables (linux) count as the operation leaves them.
    const kept = this.kept.size + keptAdd.length - (c.kept?.drop.length ?? 0);
    const needed = (peak ?? this.store.tables.footprint) + kept + this.pendingTables.length + deferred.length + this.isolationTables();
    const pool = this.config.tablePool.count;
    if (needed > pool && c.noEnomem !== true && !(this.unjudged && this.profile === 'strict')) {
      this.store.undo(applied);
      return fail('ENOMEM', 'tablePool', `the result needs ${needed} page tables, the pool has ${pool}`);
    }
    this.frames = frames;
    this.pendingTables = this.pendingTables.concat(deferred);
    for (const id of keptAdd) this.kept.add(id);
    for (const id of c.kept?.drop ?? []) this.kept.delete(id);
    if (c.events) this.events.push(...c.events);
    // The emptied tables left their places with no flush: a CPU that cached them walks into nothing.
    this.walkCache = unlinkTables(this.walkCache, deferred, this.walksInit());
    this.flushRanges(c.flush);
    if (c.owe) this.pendingFlush = addFlushObligation(this.pendingFlush, c.owe.vpn, c.owe.pages, c.owe.reason);
    const o = c.oweIfDeferred;
    if (o !== undefined && deferred.length > 0) this.pendingFlush = addFlushObligation(this.pendingFlush, o.vpn, o.pages, o.reason);
    return OK;
  }

  /**
   * Linux protect: set_memory_uc / _wc / _wb reserve and free the frames' memory type
   * around their whole requests (model/memtype.ts); every other request is one
   * change_page_attr_set_clr. A reservation that meets one already there is EBUSY before
   * anything changes; one whose requests fail is freed again.
   */
  private setMemory(vpn: Vpn, pages: number, change: ProtChange, opts: ProtectOptions): Result<void> {
    const plan = memtypePlan(change);
    const tracked = trackedFrames(this.config, vpn, pages);
    if (plan.reserve !== null && tracked !== null) {
      if (hasMemtype(this.frames, tracked.pfn, tracked.count)) {
        return fail('EBUSY', 'change', `a frame of ${pfnSpan(tracked.pfn, tracked.count)} already has a memory type reserved (reserve_ram_pages_type)`);
      }
      this.frames = setMemtype(this.frames, tracked.pfn, tracked.count, plan.reserve);
    }
    let r: Result<void> = OK;
    for (const request of plan.requests) {
      r = this.changePageAttr(vpn, pages, request, opts);
      if (!r.ok) break;
    }
    const free = r.ok ? plan.freeOnSuccess : plan.reserve !== null;
    if (free && tracked !== null) this.frames = setMemtype(this.frames, tracked.pfn, tracked.count, undefined);
    return r;
  }

  /**
   * One change_page_attr_set_clr (spec/contracts/linux.ts), then its flush: none unless
   * the primary walk wrote, everything on an error, after an alias or above the ceiling,
   * else the range; then, with collapse and only after a flush without error,
   * cpa_collapse_large_pages on the primary range.
   */
  private changePageAttr(vpn: Vpn, pages: number, change: ProtChange, opts: ProtectOptions): Result<void> {
    const r = this.runCpa(vpn, pages, cpaMasks(change), opts.alias === true);
    if (!r.changed) return r.error === null ? OK : cpaError(r.error, vpn, pages);
    if (r.error !== null) {
      this.flushAll();
      return cpaError(r.error, vpn, pages);
    }
    if (r.forceFlushAll || pages > TLB_SINGLE_PAGE_FLUSH_CEILING) this.flushAll();
    else this.flushRanges([{ vpn, pages }]);
    if (opts.collapse === true) this.collapseAfterCpa(vpn, pages);
    return OK;
  }

  /** cpa_collapse_large_pages: if any block collapsed, flush_tlb_all, and the freed tables go back to the pool. */
  private collapseAfterCpa(vpn: Vpn, pages: number): void {
    const w = this.store.window([collapseSpan(this.config.features, vpn, pages)]);
    const c = collapseRange(this.config.features, w.entries.leaves, vpn, pages);
    if (c.blocks.length === 0) return;
    this.store.apply(w, { leaves: c.leaves });
    this.flushAll();
  }

  /** Linux set_direct_map_invalid/default: __set_pages_np / __set_pages_p, then the flush or the debt. */
  private setPagesPresent(pfn: Pfn, count: number, present: boolean, opts: FlushOptions): Result<void> {
    const dm = { vpn: directMapVpn(this.config.levels, pfn), pages: count };
    const r = this.runCpa(dm.vpn, count, { present, write: present }, false);
    if (r.error !== null) return cpaError(r.error, dm.vpn, count);
    this.frames = setNoDirectMap(this.frames, pfn, count, !present);
    const reason = present ? 'setDirectMapDefault' : 'setDirectMapInvalid';
    if (opts.flush) this.flushRanges([dm]);
    else this.pendingFlush = addFlushObligation(this.pendingFlush, dm.vpn, count, reason);
    return OK;
  }

  /** The CPA walk on this model's entries; the entries, tables and events it leaves are kept (not atomic). */
  private runCpa(vpn: Vpn, pages: number, masks: Masks, checkAlias: boolean): ReturnType<Cpa['run']> {
    const window = cpaWindow(this.config, this.store, vpn, pages, checkAlias);
    const entries = window.entries;
    // The walk's own count, for ENOMEM as it goes: each split takes one table (the store counts them again when the walk's entries go back).
    let tables = this.store.tables.footprint;
    const others = this.isolationTables();
    const cpa = new Cpa({
      config: this.config,
      image: this.image,
      entries,
      takeTable: () => {
        if (tables + 1 + this.kept.size + this.pendingTables.length + others > this.config.tablePool.count) return false;
        tables++;
        return true;
      },
      flushAll: () => void this.flushAll(),
      emit: (e, once) => (once ? this.printOnce(e) : void this.events.push(e)),
    });
    const r = cpa.run(vpn, pages, masks, checkAlias);
    window.commit();
    return r;
  }

  /**
   * What one operation flushes (spec/contracts/flush.ts): its ranges merged where they
   * overlap or touch; a merged range past tlb_single_page_flush_ceiling makes
   * flush_tlb_kernel_range a full flush, else each is flushed on its own.
   */
  private flushRanges(ranges: readonly Range[]): void {
    if (ranges.length === 0) return;
    const merged = mergeFlushRanges(ranges);
    if (merged.some((r) => r.pages > TLB_SINGLE_PAGE_FLUSH_CEILING)) {
      this.flushAll();
      return;
    }
    for (const r of merged) this.flushRange(r);
  }

  /**
   * flush_tlb_kernel_range below the ceiling: every CPU drops entries meeting the range
   * and, INVLPG invalidating every paging-structure-cache entry whatever the address,
   * empties its caches; debts there are paid, and tables pending free whose span it meets
   * are released.
   */
  private flushRange(r: Range): void {
    this.tlb = flushTlbRange(this.tlb, r.vpn, r.pages);
    this.walkCache = [];
    this.pendingFlush = dischargeFlushRange(this.pendingFlush, r.vpn, r.pages);
    if (this.pendingTables.length > 0) this.pendingTables = releasePending(this.pendingTables, r.vpn, r.pages);
    this.clientState = dropStale(this.clientState, undefined, r);
  }
}

/** A ProtChange as CPA's masks: kernel4k (set_memory_4k) comes with force_split. */
function cpaMasks(change: ProtChange): Masks {
  const { kernel4k, ...rest } = change;
  return kernel4k === true ? { ...rest, kernel4k: true, forceSplit: true } : rest;
}

/** The error a CPA walk stopped with. */
function cpaError(errno: Errno, vpn: Vpn, pages: number): Result<void> {
  return errno === 'ENOMEM'
    ? fail('ENOMEM', 'tablePool', `a split in ${vpnSpan(vpn, pages)} found no free page table (earlier pages stay changed)`)
    : fail(errno, 'vpn', `a page of ${vpnSpan(vpn, pages)} has no page-table entry (CPA: called for zero pte; earlier pages stay changed)`);
}

/** A set_direct_map_* candidate: flushed now, or owing the flush. */
function flushOrOwe(next: Omit<Candidate, 'flush' | 'owe'>, dm: Range, opts: FlushOptions, reason: string): Candidate {
  return opts.flush ? { ...next, flush: [dm] } : { ...next, flush: [], owe: { ...dm, reason } };
}
