/**
 * The optimized PageTableSystem: init_mm's radix tables in a typed-array pool (radix.ts,
 * tables.ts), per-CPU TLBs (tlb.ts) and the incremental policy (policy.ts).
 *
 * Every mutating operation runs in stages, in the error order of spec/contracts: the
 * shared argument validators, the state checks on the tables (EEXIST / ENOENT), then the
 * work, journaled; then the tables emptied by it are unlinked (freed, or left pending
 * when the operation flushes nothing); then the policy on the leaves it wrote (EPERM)
 * and the pool (ENOMEM). A failure rolls the journal back, so a failed operation changes
 * nothing; success commits, then flushes, which also releases the pending tables the
 * flush covers.
 *
 * What the impl shares with the model is the contract's vocabulary only (validators,
 * error constructors, STRICT_POLICY, address geometry; see spec/README.md "Trusted
 * exports"): every decision here (leaf sizes, alias ranges, permissions, the policy, the
 * pool, TLBs and obligations, frame runs) is the impl's own, so refinement can see a bug
 * in either side.
 *
 * TLBs and paging-structure caches (spec/contracts/flush.ts, access.ts): a walk on a TLB
 * miss starts at the deepest cached table entry and finds nothing through a table no
 * longer in place; a successful one fills the TLB and caches the tables above the leaf.
 * Every flush the impl makes goes through the ceiling (flushRanges): the ranges of one
 * operation merged, any merged range above tlb_single_page_flush_ceiling a flush_tlb_all;
 * every range flush empties every CPU's paging-structure caches (INVLPG does), flushLocal
 * only its CPU's. A table is freed only with (or after) the flush that purges them.
 *
 * allocFrames / freeFrames move frames between the allocator ('free') and 'data'; strict
 * refuses a free that would break D4, D6, D7 or C1 (policy.ts freeingBreaks). With the
 * __GFP_UNMAPPED pool (clients-pool.ts) a frame of an unmapped pageblock goes back to the
 * pool when freed, and allocating one takes its whole pageblock back into the direct map.
 *
 * The clients capability (clients.ts: vmalloc, kmap_local, the mermap, the pool,
 * apply_to_page_range, the pagewalk) is always there; its operations run through the same
 * stages (`finish`). Every flush also drops the stale mermap allocations it covers whole on the
 * CPUs it reaches (`flushKernelRange`, `flushAll`, `flushLocal`).
 *
 * In both profiles a non-present entry (set_memory_np: P clear, frame and attributes
 * kept) occupies its slot: map over it is EEXIST, unmap removes it, protect changes it
 * like a leaf, split and collapse see it as not mapped, and the policy judges present
 * leaves only.
 *
 * The linux profile (spec/contracts/linux.ts) is the kernel as its source reads: no
 * operation asks the policy, protect and set_direct_map_* are CPA's walk (cpa.ts), which
 * is not atomic and flushes as change_page_attr_set_clr does (a non-present entry loses
 * G there), set_memory_uc / _wc / _wb reserve and free RAM memory types (memtype.ts), and
 * unmap is vunmap_range: huge and bad entries cleared whole, no split, no table freed
 * (the emptied tables stay linked; map reuses them, and frees the ones a huge leaf
 * replaces, as vmap_try_huge_pmd / _pud do).
 */
import type { SystemParts } from './capability.ts';
import { VPN_LIMIT, kernelLayout, leafLevel, pfnSpan, vpnSpan, vpnToHex, type PageSize, type Pfn, type Vpn } from '../spec/address.ts';
import {
  TLB_SINGLE_PAGE_FLUSH_CEILING, kernelImage, policyError, ptError, validateAccess, validateCollapse, validateFlush, validateFlushLocal,
  validateFrames, validateMap, validateProtect, validateSetDirectMap, validateSplit, validateTranslate, validateUnmap, type MutatingOp,
} from '../spec/contracts/index.ts';
import { OK, fail, ok, type PtError, type Result } from '../spec/errors.ts';
import {
  INIT_MM, PAGE_KERNEL, type AbstractState, type CachedTableState, type FrameRun, type Leaf, type Prot, type RootId, type SystemConfig,
  type WalkCacheEntry,
} from '../spec/state.ts';
import type {
  AccessKind, AccessMode, AccessOutcome, FlushOptions, KernelEvent, MapOptions, PageTableSystem, Profile, ProtChange,
  ProtectOptions, SystemSetup, Translation,
} from '../spec/system.ts';
import { frameRuns, rewalkEntries, walkEntries } from './abstract.ts';
import { Clients, type ClientsHost, type PolicyOp } from './clients.ts';
import { Isolation, type IsolationHost } from './isolation.ts';
import { ChangePageAttr, type CpaError } from './cpa.ts';
import { KernelLog } from './klog.ts';
import { Memtypes, type RamMemtype } from './memtype.ts';
import type { MutantName } from './mutants.ts';
import { FrameFacts, earliest, firstBroken, freeingBreaks, isLateRule } from './policy.ts';
import { CodeChange, PROTS, P_PRESENT, P_WRITE, permits, protCode } from './prot.ts';
import { Radix, leafPfn } from './radix.ts';
import { RunSet } from './runs.ts';
import { LEVEL_SIZE, SPAN, modSpan, type TablePool } from './tables.ts';
import { SLOT_RANGE, Tlbs, type CachedTable } from './tlb.ts';

const err = (e: PtError): Result<never> => ({ ok: false, error: e });

/** The first frame above the ISA range (ISA_END_ADDRESS, 1 MiB): pat_pagerange_is_ram counts RAM from there. */
const ISA_END_PFN = 0x100;

export interface Range {
  readonly vpn: Vpn;
  readonly pages: number;
}

/** A flush owed instead of made: the range and the reason it is owed for. */
export type Owed = Range & { readonly reason: string };

/** Frames whose noDirectMap an operation sets (true) or clears. */
export interface FrameChange {
  readonly pfn: Pfn;
  readonly count: number;
  readonly noDirectMap: boolean;
}

/** How a mutating operation ends, besides its table writes. */
export interface Ending {
  /** Ranges flushed on every CPU once it has succeeded. */
  readonly flushed: readonly Range[];
  /** set_direct_map_* and the pool's pageblocks: the frames whose noDirectMap it sets or clears. */
  readonly frames?: readonly FrameChange[];
  /** A `_noflush` operation's debts instead of the flush. */
  readonly owe?: readonly Owed[];
  /** The ranges whose translation it may change, for the isolation rules (K3, A2); `flushed` when absent. */
  readonly touched?: readonly Range[];
  /** Puts back what the caller staged beside the tables (the clients' bookkeeping) when the operation fails. */
  readonly undo?: () => void;
}

/** The empty lists an operation's ending holds most often, shared rather than made per call. */
const NO_RANGES: readonly Range[] = [];
const NO_FRAMES: readonly FrameChange[] = [];

export class RadixSystem implements PageTableSystem {
  readonly config: SystemConfig;
  /** strict refuses by policy and is atomic; linux runs CPA as the kernel does (cpa.ts). */
  readonly profile: Profile;
  /** __PAGE_OFFSET of this paging mode's layout (spec/address.ts kernelLayout). */
  private readonly pageOffset: Vpn;
  readonly mutant: MutantName | undefined;
  private readonly radix: Radix;
  private readonly facts: FrameFacts;
  private readonly tlbs: Tlbs;
  private readonly bootFrames: readonly FrameRun[];
  /** Whether the CPU can map a leaf at level 1..3 (index = level): 4K always, 2M with PSE, 1G with GB pages. */
  private readonly leafLevelOk: readonly boolean[];
  /** The linux profile's memtype_reserve records (memtype.ts); empty under strict. */
  private readonly memtypes = new Memtypes();
  /** abstract()'s frame runs, rebuilt only when noDirectMap or a memtype changes. */
  private frameRunsNow: readonly FrameRun[] | null = null;
  /**
   * abstract()'s leaves and the pool's write count they were walked at: the fuzzer asks
   * after every command, and most commands (accesses, flushes, refused calls) write no
   * entry, so the walk reruns only when an entry was written, and then only over the
   * ranges written (the pool's dirty list).
   */
  private leaves: readonly Leaf[] = [];
  private nonPresent: readonly Leaf[] = [];
  private leavesAt = -1;
  /** abstract()'s paging-structure caches, and the cache version, pool writes and frees they were read at. */
  private walkCacheNow: readonly WalkCacheEntry[] = [];
  private walkCacheVersion = 0;
  private walkCacheWrites = -1;
  private walkCacheFrees = -1;
  /** What the kernel printed (linux profile). */
  private readonly log = new KernelLog();
  private readonly cpa: ChangePageAttr;
  /** The isolation capability (isolation.ts), with SystemSetup.isolation. */
  readonly isolation: Isolation | undefined;
  /** The kernel's page-table users (clients.ts): always there. */
  readonly clients: Clients;

  constructor(
    /** What it was built from: fork builds the copy from it. */
    private readonly setup: SystemSetup,
    mutant?: MutantName,
  ) {
    this.config = setup.config;
    this.profile = setup.profile ?? 'strict';
    this.pageOffset = kernelLayout(this.config.levels).pageOffset;
    this.mutant = mutant;
    this.bootFrames = [...setup.frames].sort((a, b) => a.pfn - b.pfn);
    this.radix = new Radix(this.config, mutant);
    this.facts = new FrameFacts(this.config, this.bootFrames);
    this.tlbs = new Tlbs(this.config.cpus, this.config.levels);
    if (this.config.tablePool.count >= SLOT_RANGE) throw new RangeError(`a pool of ${this.config.tablePool.count} tables does not fit the paging-structure caches' packing (< ${SLOT_RANGE})`);
    const { pse, gbpages } = this.config.features;
    this.leafLevelOk = [false, true, pse, gbpages];
    const pool = this.radix.pool;
    this.cpa = new ChangePageAttr(this.radix, this.config, kernelImage(this.config, this.bootFrames), this.log, {
      tableAvailable: () => pool.inUse < this.config.tablePool.count,
      // __split_large_page's flush_tlb_all: the mutant leaves the large entry cached.
      flushTlbAll: () => {
        if (this.mutant !== 'split-keeps-large-tlb') this.flushAll();
      },
    });
    this.isolation = setup.isolation === true ? new Isolation(this.isolationHost(), this.bootFrames) : undefined;
    this.clients = new Clients(this.clientsHost());
  }

  /**
   * An independent system in the same state (spec/system.ts PageTableSystem.fork): built
   * from the same setup and mutant, then every part made a copy of this one's. Between
   * operations only: the journal is empty then. Typed arrays are copied, immutable values
   * (leaves, prots, TLB entries, snapshots) shared, so a fork costs what the tables and
   * bookkeeping weigh, not a boot.
   */
  fork(): RadixSystem {
    const twin = new RadixSystem(this.setup, this.mutant);
    twin.radix.copyFrom(this.radix);
    twin.facts.copyFrom(this.facts);
    twin.tlbs.copyFrom(this.tlbs);
    twin.memtypes.copyFrom(this.memtypes);
    twin.log.copyFrom(this.log);
    twin.isolation?.copyFrom(this.isolation!);
    twin.clients.copyFrom(this.clients);
    twin.frameRunsNow = this.frameRunsNow;
    twin.leaves = this.leaves;
    twin.nonPresent = this.nonPresent;
    twin.leavesAt = this.leavesAt;
    twin.walkCacheNow = this.walkCacheNow;
    twin.walkCacheVersion = this.walkCacheVersion;
    twin.walkCacheWrites = this.walkCacheWrites;
    twin.walkCacheFrees = this.walkCacheFrees;
    return twin;
  }

  /** What every capability reads of this system (capability.ts). */
  private parts(): SystemParts {
    return { radix: this.radix, config: this.config, profile: this.profile, facts: this.facts, tlbs: this.tlbs, mutant: this.mutant };
  }

  private clientsHost(): ClientsHost {
    return {
      ...this.parts(),
      log: this.log,
      install: (vpn, pfn, pages, code, maxPage) => this.install(vpn, pfn, pages, code, maxPage),
      finish: (op, end) => this.finish(op, end),
      poolError: () => this.poolError(),
      flushRanges: (ranges) => this.flushRanges(ranges),
      flushLocal: (cpu, vpn, pages) => this.flushLocalNow(cpu, vpn, pages),
      debt: (o) => this.debt(o),
      setDirectMapLinux: (pfn, count, present) => this.setPagesPresent(pfn, count, present, false),
      framesChanged: () => {
        this.frameRunsNow = null;
      },
      holdsLdt: (pfn, count) => this.isolation?.holdsLdt(pfn, count) === true,
      userHalf: this.isolation,
    };
  }

  /** What the isolation capability uses of this system. */
  private isolationHost(): IsolationHost {
    return {
      ...this.parts(),
      install: (vpn, pfn, pages, code) => this.install(vpn, pfn, pages, code, undefined),
      finish: (op, flushed, touched) => this.finish(op, { flushed, touched }),
      poolError: () => this.poolError(),
      flushRanges: (ranges) => this.flushRanges(ranges),
      framesChanged: () => {
        this.frameRunsNow = null;
      },
      print: (e) => this.log.print(e),
    };
  }

  /** The top-level slot of root `id`, or -1 when the state has no such root. */
  private rootSlot(id: RootId): number {
    if (this.isolation === undefined) return id === INIT_MM ? 0 : -1;
    return this.isolation.slotOf(id);
  }

  /** The roots translate and access accept. */
  private get rootIds(): ReadonlySet<RootId> | undefined {
    return this.isolation?.rootIds;
  }

  /** The concrete tables (for checkTables, tests and dumps). */
  tables(): TablePool {
    return this.radix.pool;
  }

  map(root: RootId, vpn: Vpn, pfn: Pfn, pages: number, prot: Prot, opts: MapOptions = {}): Result<void> {
    const bad = validateMap(this.config, root, vpn, pfn, pages, prot, opts);
    if (bad) return err(bad);
    const r = this.radix;
    if (r.anyMapped(vpn, vpn + pages)) return fail('EEXIST', 'vpn', `part of ${vpnSpan(vpn, pages)} is already mapped`);
    r.begin();
    this.install(vpn, pfn, pages, protCode(prot), opts.maxPage);
    r.freeReplaced();
    // A huge leaf over a kept table (linux: vmap_try_huge_pmd / _pud): pmd_free_pte_page /
    // pud_free_pmd_page flush one page there ("INVLPG to clear all paging-structure caches")
    // before the table is freed; the mutant frees it without that purge. The one-page
    // ranges of distinct huge leaves never touch, so merging keeps them apart.
    const purged = this.mutant === 'table-freed-before-purge' || r.replacedAt.length === 0 ? NO_RANGES : r.replacedAt.map((v) => ({ vpn: v, pages: 1 }));
    // Strict reuses an area only once what is owed there is flushed (map.ts: vmalloc purges
    // a lazily freed area before it hands it out again).
    const owed = this.profile === 'strict' ? this.tlbs.owedMeeting(vpn, pages) : NO_RANGES;
    const flushed = owed.length === 0 ? purged : purged.length === 0 ? owed : [...purged, ...owed];
    return this.finish('map', { flushed, touched: [{ vpn, pages }] });
  }

  unmap(root: RootId, vpn: Vpn, pages: number, opts?: FlushOptions): Result<void> {
    const bad = validateUnmap(this.config, root, vpn, pages);
    if (bad) return err(bad);
    const r = this.radix;
    if (!r.anyMapped(vpn, vpn + pages)) return fail('ENOENT', 'vpn', `nothing in ${vpnSpan(vpn, pages)} is mapped`);
    const flush = opts?.flush !== false;
    if (this.profile === 'linux') return this.vunmap(vpn, pages, flush);
    r.begin();
    r.unmapRange(vpn, vpn + pages);
    if (flush) return this.finish('unmap', { flushed: [{ vpn, pages }] });
    // vunmap_range_noflush: the range is owed a flush, and the tables it emptied wait for it.
    return this.finish('unmap', { flushed: [], touched: [{ vpn, pages }], owe: this.debt({ vpn, pages, reason: 'unmap' }) });
  }

  /**
   * unmap under linux: vunmap_range (mm/vmalloc.c), __vunmap_range_noflush then
   * flush_tlb_kernel_range of the range (without `flush`, vunmap_range_noflush: the range
   * is owed). No split, so no table is needed and it cannot fail; huge and bad entries
   * meeting the range go whole, with the kernel's warnings (radix.ts vunmapRange); no
   * table is freed, so the emptied ones stay linked and counted in tablesInUse until a map
   * puts a huge leaf over them.
   */
  private vunmap(vpn: Vpn, pages: number, flush: boolean): Result<void> {
    const r = this.radix;
    r.begin();
    r.vunmapRange(vpn, vpn + pages, (kind, v, n, pfn) => this.log.print({ kind, vpn: v, pages: n, pfn }));
    // The tables it emptied are kept (vunmap frees none): nothing for releaseEmptied.
    r.pool.emptied.length = 0;
    r.pool.commit();
    if (flush) this.flushRanges([{ vpn, pages }]);
    else for (const o of this.debt({ vpn, pages, reason: 'unmap' })) this.tlbs.owe(o.vpn, o.pages, o.reason);
    return OK;
  }

  /** A `_noflush` operation's debt, which the noflush-no-obligation mutant never records. */
  private debt(owe: Owed): Owed[] {
    return this.mutant === 'noflush-no-obligation' ? [] : [owe];
  }

  protect(vpn: Vpn, pages: number, change: ProtChange, opts: ProtectOptions = {}): Result<void> {
    const bad = validateProtect(this.config, vpn, pages, change);
    if (bad) return err(bad);
    if (this.profile === 'linux') return this.setMemory(vpn, pages, change, opts);
    const r = this.radix;
    // Leaves and non-present entries alike carry a frame and a prot: only a page with neither is ENOENT.
    if (!r.allEntries(vpn, vpn + pages)) return fail('ENOENT', 'vpn', `part of ${vpnSpan(vpn, pages)} has no entry`);
    // cpa_process_alias: the direct-map ranges of the frames, from the entries before the change.
    const aliases = opts.alias === true ? this.aliasRanges(vpn, pages) : NO_RANGES;
    const codes = CodeChange.of(change);
    r.begin();
    r.protectRange(vpn, vpn + pages, codes);
    if (aliases.length > 0 && this.mutant !== 'no-alias') {
      const alias = codes.forAlias();
      for (const a of aliases) r.protectRange(a.vpn, a.vpn + a.pages, alias);
    }
    // set_memory_rox's CPA_COLLAPSE, after the change. ENOMEM is judged on the change before
    // it: collapsing only frees tables, so it runs only when that state fits the pool (and
    // when it does not, finish finds the same ENOMEM without it).
    const collapsed = opts.collapse === true && this.poolError() === null ? r.collapseRange(vpn, pages) : NO_RANGES;
    // cpa_flush of the request, every alias range changed and every collapsed block; the
    // alias-flush-missed mutant flushes the request (and the collapses) only. Lists are
    // joined only when there is something to join (most protects have one range).
    const own: readonly Range[] = [{ vpn, pages }];
    const touched = aliases.length === 0 ? own : [...own, ...aliases];
    const changed = this.mutant === 'alias-flush-missed' ? own : touched;
    const flushed = this.mutant === 'protect-no-flush' ? NO_RANGES : collapsed.length === 0 ? changed : [...changed, ...collapsed];
    return this.finish('protect', { flushed, touched });
  }

  setDirectMapInvalid(pfn: Pfn, count: number, opts: FlushOptions): Result<void> {
    const bad = validateSetDirectMap(this.config, pfn, count);
    if (bad) return err(bad);
    if (this.profile === 'linux') return this.setPagesPresent(pfn, count, false, opts.flush);
    const dm = { vpn: this.pageOffset + pfn, pages: count };
    const r = this.radix;
    if (!r.allMapped(dm.vpn, dm.vpn + count)) return fail('ENOENT', 'pfn', `a frame of ${pfnSpan(pfn, count)} has no direct-map page`);
    r.begin();
    r.unmapRange(dm.vpn, dm.vpn + count);
    return this.finishDirectMap('setDirectMapInvalid', pfn, dm, opts.flush);
  }

  setDirectMapDefault(pfn: Pfn, count: number, opts: FlushOptions): Result<void> {
    const bad = validateSetDirectMap(this.config, pfn, count);
    if (bad) return err(bad);
    if (this.profile === 'linux') return this.setPagesPresent(pfn, count, true, opts.flush);
    const dm = { vpn: this.pageOffset + pfn, pages: count };
    const r = this.radix;
    if (r.anyMapped(dm.vpn, dm.vpn + count)) return fail('EEXIST', 'pfn', `a frame of ${pfnSpan(pfn, count)} still has its direct-map page`);
    r.begin();
    // set_direct_map_default_noflush rewrites one PTE per page: 4K even where a large page would fit.
    this.install(dm.vpn, pfn, count, protCode(PAGE_KERNEL), '4K');
    return this.finishDirectMap('setDirectMapDefault', pfn, dm, opts.flush);
  }

  split(root: RootId, vpn: Vpn): Result<void> {
    const bad = validateSplit(this.config, root, vpn);
    if (bad) return err(bad);
    const r = this.radix;
    if (!r.lookup(vpn)) return fail('ENOENT', 'vpn', `${vpnToHex(vpn)} is not mapped`);
    if (r.hitLevel === 1) return fail('EINVAL', 'vpn', `${vpnToHex(vpn)} is mapped by a 4K leaf, which cannot split`);
    const span = SPAN[r.hitLevel as 1]!;
    const leafVpn = vpn - (vpn % span);
    r.begin();
    r.splitEntry(r.hitSlot, r.hitIdx);
    // The whole block is flushed (a flush_tlb_all at 512 pages and more); the mutant keeps the large entry cached.
    return this.finish('split', { flushed: this.mutant === 'split-keeps-large-tlb' ? [] : [{ vpn: leafVpn, pages: span }] });
  }

  collapse(root: RootId, vpn: Vpn, size: '2M' | '1G'): Result<void> {
    // collapse_pmd_page before 1dbf30fdb5e5 did not ask the CPU for PSE.
    const config = this.mutant === 'collapse-without-pse' ? { ...this.config, features: { pse: true, gbpages: true } } : this.config;
    const bad = validateCollapse(config, root, vpn, size);
    if (bad) return err(bad);
    const level = leafLevel(size);
    const pages = SPAN[level as 2]!;
    const block = { vpn: vpn - (vpn % pages), pages };
    const r = this.radix;
    if (!r.allMapped(block.vpn, block.vpn + pages)) return fail('ENOENT', 'vpn', `part of the ${size} block at ${vpnToHex(block.vpn)} is not mapped`);
    const refusal = r.collapseRefusal(block.vpn, level);
    if (refusal !== null) return fail('EINVAL', 'vpn', `cannot collapse the ${size} block at ${vpnToHex(block.vpn)}: ${refusal}`);
    r.begin();
    r.collapseAt(r.hitSlot, r.hitIdx);
    return this.finish('collapse', { flushed: [block] });
  }

  translate(root: RootId, vpn: Vpn): Result<Translation> {
    const bad = validateTranslate(this.config, root, vpn, this.rootIds);
    if (bad) return err(bad);
    if (!this.lookupIn(root, vpn)) return fail('ENOENT', 'vpn', `${vpnToHex(vpn)} is not mapped`);
    const leaf = this.hitLeaf(vpn);
    return ok({ leaf, pfn: leaf.pfn + (vpn - leaf.vpn) });
  }

  access(cpu: number, root: RootId, vpn: Vpn, kind: AccessKind, mode: AccessMode): Result<AccessOutcome> {
    const bad = validateAccess(this.config, cpu, root, vpn, kind, mode, this.rootIds);
    if (bad) return err(bad);
    const cached = this.tlbs.lookup(cpu, root, vpn);
    let leaf: Leaf;
    let code: number;
    if (cached !== undefined) {
      // A hit is used even when stale: that is what a missed flush means.
      leaf = cached.entry.leaf;
      code = cached.code;
    } else {
      const r = this.radix;
      if (!this.lookupIn(root, vpn)) return ok({ fault: 'not-present' });
      // The walk starts at the deepest paging-structure-cache entry covering vpn: through a
      // table no longer where the walk through memory finds it (unlinked, or freed and maybe
      // reused) it finds nothing, and caches nothing. Through one still in place it finds
      // what the walk from CR3 just found.
      const start = this.tlbs.walkStart(cpu, root, vpn);
      if (start >= 0 && !this.walkReaches(start, this.tlbs.startLevel)) return ok({ fault: 'not-present' });
      leaf = this.hitLeaf(vpn);
      code = r.hitCode;
      // The walk fills the TLB and the tables above the leaf before the permission check, so a faulting access still caches.
      this.tlbs.fill(cpu, root, leaf, r.hitLevel, code);
      this.tlbs.fillWalk(cpu, root, vpn, r.hitLevel, r.walkPath, r.pool.gen);
    }
    if (!permits(code, kind, mode)) return ok({ fault: 'protection' });
    return ok({ fault: false, translation: { leaf, pfn: leaf.pfn + (vpn - leaf.vpn) }, fromTlb: cached !== undefined });
  }

  /** The walk from root `root`'s top-level table (radix.lookup's hit registers and walk path). */
  private lookupIn(root: RootId, vpn: Vpn): boolean {
    const r = this.radix;
    r.root = this.rootSlot(root);
    const hit = r.lookup(vpn);
    r.root = 0;
    return hit;
  }

  flush(vpn: Vpn, pages: number): Result<void> {
    const bad = validateFlush(this.config, vpn, pages);
    if (bad) return err(bad);
    this.flushRanges([{ vpn, pages }]);
    return OK;
  }

  flushAll(): Result<void> {
    this.tlbs.flushAll();
    if (this.mutant !== 'walk-cache-survives-flush') this.tlbs.emptyWalkCaches();
    // Every address: every pending table's span meets it, and every stale mermap allocation.
    this.radix.pool.releasePending(0, VPN_LIMIT);
    this.clients.flushed(0, VPN_LIMIT, this.config.cpus);
    return OK;
  }

  flushLocal(cpu: number, vpn: Vpn, pages: number): Result<void> {
    const bad = validateFlushLocal(this.config, cpu, vpn, pages);
    if (bad) return err(bad);
    this.flushLocalNow(cpu, vpn, pages);
    return OK;
  }

  /**
   * flush_tlb_one_kernel of each page on one CPU: the others may still cache the range, so
   * nothing is discharged or released; that CPU's stale mermap allocations there are flushed.
   */
  private flushLocalNow(cpu: number, vpn: Vpn, pages: number): void {
    this.tlbs.flushLocal(cpu, vpn, pages, this.mutant !== 'walk-cache-survives-flush');
    this.clients.flushedLocal(cpu, vpn, pages);
  }

  allocFrames(pfn: Pfn, count: number): Result<void> {
    const bad = validateFrames(this.config, pfn, count);
    if (bad) return err(bad);
    // EBUSY, and the unmapped pageblocks the frames are in taken back into the direct map (clients-pool.ts).
    const taken = this.clients.pool.allocate(pfn, count, 'allocFrames');
    if (!taken.ok) return taken;
    const facts = this.facts;
    facts.free.remove(pfn, count);
    facts.data.add(pfn, count, true);
    this.frameRunsNow = null;
    return OK;
  }

  freeFrames(pfn: Pfn, count: number): Result<void> {
    const bad = validateFrames(this.config, pfn, count);
    if (bad) return err(bad);
    const facts = this.facts;
    if (!facts.data.covers(pfn, count)) return fail('ENOENT', 'pfn', `a frame of ${pfnSpan(pfn, count)} is not a data frame`);
    // __free_pages checks none of it (linux.ts): only strict refuses.
    if (this.profile === 'strict') {
      if (this.isolation?.holdsLdt(pfn, count) === true) return err(policyError('freeFrames', 'D4', `at ${pfnSpan(pfn, count)}: an LDT slot still maps a frame of it`));
      // The mermap-free-without-flush mutant forgets the stale mermap allocations (the lazy areas it still sees).
      const stale = this.mutant !== 'mermap-free-without-flush';
      const broken = freeingBreaks(this.radix, facts, this.tlbs, pfn, count, { stillTranslated: (p, n) => this.clients.stillTranslated(p, n, stale) });
      if (broken !== null) return err(policyError('freeFrames', broken.id, broken.where));
    }
    // A frame of an unmapped pageblock goes back to the pool as it is, off the direct map.
    facts.data.remove(pfn, count);
    facts.free.add(pfn, count, true);
    this.frameRunsNow = null;
    return OK;
  }

  abstract(): AbstractState {
    const pool = this.radix.pool;
    const walkCache = this.walkCache();
    return {
      config: this.config,
      frames: this.frames(),
      roots: [
        { id: INIT_MM, kind: 'kernel', leaves: this.currentLeaves(), ...(this.nonPresent.length > 0 ? { nonPresent: this.nonPresent } : {}) },
        ...(this.isolation?.abstractRoots() ?? []),
      ],
      tlb: this.tlbs.entries(),
      // Absent when empty, as nonPresent: the canonical form (state.ts) both systems report.
      ...(walkCache.length > 0 ? { walkCache } : {}),
      pendingFlush: this.tlbs.obligations(),
      tablesInUse: pool.inUse,
      pendingTableFrees: pool.pending.length,
      clients: this.clients.state(),
    };
  }

  /**
   * The paging-structure caches as the spec reads them: each entry 'freed' when its slot
   * was freed since it was cached, else 'current' when the walk through memory still
   * reaches that table there, else 'unlinked'. Reread only when the caches, the entries
   * or the pool's frees changed.
   */
  private walkCache(): readonly WalkCacheEntry[] {
    const pool = this.radix.pool;
    const version = this.tlbs.walkVersion;
    if (version !== this.walkCacheVersion || pool.writes !== this.walkCacheWrites || pool.frees !== this.walkCacheFrees) {
      const out: WalkCacheEntry[] = [];
      this.tlbs.forEachCachedTable((t) => out.push({ cpu: t.cpu, root: t.root, level: t.level as WalkCacheEntry['level'], vpn: t.vpn, table: this.cachedTableState(t) }));
      this.walkCacheNow = out;
      this.walkCacheVersion = version;
      this.walkCacheWrites = pool.writes;
      this.walkCacheFrees = pool.frees;
    }
    return this.walkCacheNow;
  }

  private cachedTableState(t: CachedTable): CachedTableState {
    const pool = this.radix.pool;
    if (t.slot >= pool.capacity || pool.gen[t.slot] !== t.gen) return 'freed';
    return this.radix.tableAt(t.vpn, t.level, this.rootSlot(t.root)) === t.slot ? 'current' : 'unlinked';
  }

  /**
   * Whether the walk lookup() just made reached, at `level`, the table a paging-structure-
   * cache entry (packed slot and generation, tlb.ts) holds, and that table was not freed since.
   */
  private walkReaches(packed: number, level: number): boolean {
    const r = this.radix;
    const slot = packed % SLOT_RANGE;
    return r.pool.gen[slot] === (packed - slot) / SLOT_RANGE && r.walkedTo <= level && r.walkPath[level] === slot;
  }

  /** The slot of the level-`level` table the walk from root `root` reaches for vpn, or -1 (also for a root that is gone: impl/check.ts). */
  tableAt(vpn: Vpn, level: number, root: RootId = INIT_MM): number {
    const slot = this.rootSlot(root);
    return slot < 0 ? -1 : this.radix.tableAt(vpn, level, slot);
  }

  /** Paging-structure-cache entries as the impl holds them (impl/check.ts compares them with the pool). */
  cachedTables(): CachedTable[] {
    const out: CachedTable[] = [];
    this.tlbs.forEachCachedTable((t) => out.push(t));
    return out;
  }

  /** init_mm's leaves: walked again only where entries were written since the last walk (abstract.ts rewalkEntries), all of them at first. */
  private currentLeaves(): readonly Leaf[] {
    const pool = this.radix.pool;
    const writes = pool.writes;
    if (writes !== this.leavesAt) {
      const dirty = pool.takeDirty();
      // The isolation roots' walks re-walk the same ranges (isolation.ts root).
      this.isolation?.written(dirty);
      const walked = dirty === null || this.leavesAt < 0 ? walkEntries(this.radix, this.leaves) : rewalkEntries(this.radix, this.leaves, this.nonPresent, dirty);
      this.leaves = walked.leaves;
      this.nonPresent = walked.nonPresent;
      this.leavesAt = writes;
    }
    return this.leaves;
  }

  takeEvents(): readonly KernelEvent[] {
    return this.log.take();
  }

  /**
   * protect under linux: the set_memory_* function the change stands for. A cache change
   * to UC- or WC first reserves the memory type of the frames __pa names (set_memory_uc /
   * set_memory_wc: memtype_reserve, EBUSY when a frame has one already, and nothing
   * changes), WC then runs _set_memory_wc's two requests (UC-, then WC), and the
   * reservation is freed if a request fails; WB frees it after a successful request
   * (set_memory_wb); every other change is one request.
   */
  private setMemory(vpn: Vpn, pages: number, change: ProtChange, opts: ProtectOptions): Result<void> {
    const masks = CodeChange.of(change);
    const request = (m: CodeChange): Result<void> => this.changePageAttrSetClr(vpn, pages, m, opts);
    const cache = change.cache;
    const tracked = cache === 'UC-' || cache === 'WC' || cache === 'WB' ? this.ramFrames(vpn, pages) : null;
    if (cache !== 'UC-' && cache !== 'WC') {
      const out = request(masks);
      if (out.ok && cache === 'WB' && tracked !== null) this.setMemtype(tracked, null);
      return out;
    }
    if (tracked !== null) {
      // reserve_ram_pages_type: a frame already reserved (not WB) refuses the whole request.
      if (this.mutant !== 'memtype-no-reserve' && this.memtypes.anyReserved(tracked.pfn, tracked.count)) {
        return fail('EBUSY', 'change', `a frame of ${pfnSpan(tracked.pfn, tracked.count)} already has a memory type reserved (reserve_ram_pages_type)`);
      }
      this.setMemtype(tracked, cache);
    }
    let out = request(cache === 'WC' ? masks.withCache('UC-') : masks);
    if (out.ok && cache === 'WC') out = request(masks);
    // memtype_free on the error path of set_memory_uc / set_memory_wc.
    if (!out.ok && tracked !== null) this.setMemtype(tracked, null);
    return out;
  }

  /**
   * The RAM frames whose memory type set_memory_uc / _wc / _wb track (linux.ts): those
   * __pa names for a range starting in the direct map (vpn - PAGE_OFFSET) or at or above
   * __START_KERNEL_map (vpn - __START_KERNEL_map, phys_base 0), if
   * they all lie in [ISA_END, frames) (pat_pagerange_is_ram); null otherwise (vmalloc,
   * ioremap, low or absent memory: the kernel's reservation of those is not modelled).
   */
  private ramFrames(vpn: Vpn, pages: number): { pfn: Pfn; count: number } | null {
    const L = kernelLayout(this.config.levels);
    const dm = vpn >= this.pageOffset && vpn < this.pageOffset + this.config.frames;
    // __phys_addr subtracts __START_KERNEL_map from any address above it: the image, modules and fixmap alike.
    const high = vpn >= L.kernelText && vpn < L.kernelText + this.config.frames;
    if (!dm && !high) return null;
    const pfn = vpn - (dm ? this.pageOffset : L.kernelText);
    return pfn >= ISA_END_PFN && pfn + pages <= this.config.frames ? { pfn, count: pages } : null;
  }

  /** Reserve `type` for the frames, or free their reservation (null). */
  private setMemtype(frames: { pfn: Pfn; count: number }, type: RamMemtype | null): void {
    if (type === null) this.memtypes.free(frames.pfn, frames.count);
    else this.memtypes.reserve(frames.pfn, frames.count, type);
    this.frameRunsNow = null;
  }

  /**
   * One change_page_attr_set_clr request under linux. Not atomic: the walk's writes stay
   * whatever it returns. Then its flush: nothing unless the primary walk wrote an entry
   * (so an alias-only change is not flushed), every TLB on an error, else every TLB when
   * an alias was processed or the range is above tlb_single_page_flush_ceiling, else the
   * range's pages. Then, with `collapse` (CPA_COLLAPSE) and only after a flush without an
   * error (cpa_flush calls cpa_collapse_large_pages), the range's blocks are collapsed;
   * if any was, flush_tlb_all and the freed tables go back to the pool.
   */
  private changePageAttrSetClr(vpn: Vpn, pages: number, masks: CodeChange, opts: ProtectOptions): Result<void> {
    const r = this.radix;
    r.begin();
    const out = this.cpa.run(vpn, pages, masks, opts.alias === true);
    if (out.flushTlb) {
      if (out.error !== null || out.forceFlushAll || pages > TLB_SINGLE_PAGE_FLUSH_CEILING) this.flushAll();
      else this.flushRanges([{ vpn, pages }]);
      if (out.error === null && opts.collapse === true && r.collapseRange(vpn, pages).length > 0) {
        this.flushAll();
        r.releaseEmptied(false);
      }
    }
    r.pool.commit();
    return out.error === null ? OK : this.cpaError(out.error, vpn, pages);
  }

  /**
   * setDirectMapInvalid / Default under linux: __set_pages_np (clear P and RW) /
   * __set_pages_p (set P and RW) on the direct-map pages, CPA_NO_CHECK_ALIAS, no flush of
   * their own; on success the frames' record, then the caller's flush or its debt.
   */
  private setPagesPresent(pfn: Pfn, count: number, present: boolean, flush: boolean): Result<void> {
    const dm = { vpn: this.pageOffset + pfn, pages: count };
    const bits = P_PRESENT | P_WRITE;
    const r = this.radix;
    r.begin();
    const out = this.cpa.run(dm.vpn, count, present ? CodeChange.masks(0, bits) : CodeChange.masks(bits, 0), false);
    r.pool.commit();
    if (out.error !== null) return this.cpaError(out.error, dm.vpn, count);
    const nd = this.facts.noDirectMap;
    if (present) nd.remove(pfn, count);
    else nd.add(pfn, count, true);
    this.frameRunsNow = null;
    if (flush) this.flushRanges([dm]);
    else this.tlbs.owe(dm.vpn, count, present ? 'setDirectMapDefault' : 'setDirectMapInvalid');
    return OK;
  }

  private cpaError(errno: CpaError, vpn: Vpn, pages: number): Result<void> {
    return errno === 'ENOMEM'
      ? fail('ENOMEM', 'tablePool', `no page table left for a split in ${vpnSpan(vpn, pages)} (the pages before it stay changed)`)
      : fail('EFAULT', 'vpn', `CPA met a page of ${vpnSpan(vpn, pages)} with no entry (the pages before it stay changed)`);
  }

  private frames(): readonly FrameRun[] {
    this.frameRunsNow ??= frameRuns(this.bootFrames, this.facts.noDirectMap, this.memtypes, this.facts.free);
    return this.frameRunsNow;
  }

  /** The leaf of the last successful radix lookup of vpn, as the abstraction function sees it. */
  private hitLeaf(vpn: Vpn): Leaf {
    const r = this.radix;
    const span = SPAN[r.hitLevel as 1]!;
    const off = r.hitSlot * 1024 + r.hitIdx * 2;
    const pfn = leafPfn(r.pool.words[off]!, r.pool.words[off + 1]!, r.hitLevel);
    return { vpn: vpn - modSpan(vpn, span), pfn, size: LEVEL_SIZE[r.hitLevel]!, prot: PROTS[r.hitCode]! };
  }

  /**
   * cpa_process_alias's targets: for the pages of [vpn, vpn+pages) outside the direct
   * map, the direct-map pages of their frames, as sorted, merged ranges. (Pages inside
   * the direct map are their own alias.)
   */
  private aliasRanges(vpn: Vpn, pages: number): Range[] {
    const end = vpn + pages;
    const dmEnd = this.pageOffset + this.config.frames;
    const pieces: { vpn: Vpn; pages: number }[] = [];
    const add = (pfn: Pfn, n: number): void => {
      if (n <= 0) return;
      const last = pieces[pieces.length - 1];
      // Leaves in vpn order usually map consecutive frames: extend instead of adding.
      if (last !== undefined && last.vpn + last.pages === this.pageOffset + pfn) last.pages += n;
      else pieces.push({ vpn: this.pageOffset + pfn, pages: n });
    };
    // Non-present entries keep their frame, and CPA processes the alias of every entry it meets.
    this.radix.forEachEntry(vpn, end, (lv, lp, level) => {
      const a = Math.max(lv, vpn);
      const b = Math.min(lv + SPAN[level as 1]!, end);
      if (a < this.pageOffset) add(lp + (a - lv), Math.min(b, this.pageOffset) - a);
      const c = Math.max(a, dmEnd);
      if (b > c) add(lp + (c - lv), b - c);
    }, true);
    pieces.sort((x, y) => x.vpn - y.vpn);
    const merged: { vpn: Vpn; pages: number }[] = [];
    for (const p of pieces) {
      const last = merged[merged.length - 1];
      if (last !== undefined && p.vpn <= last.vpn + last.pages) last.pages = Math.max(last.pages, p.vpn + p.pages - last.vpn);
      else merged.push(p);
    }
    return merged;
  }

  /**
   * map's leaf placement written into the tables of the running operation: at each
   * position the largest leaf the CPU has, at most maxPage, with vpn and pfn both aligned
   * to it and room for it in what is left (the kernel's phys_*_init and vmap_try_huge_*
   * choose per entry the same way).
   */
  private install(vpn: Vpn, pfn: Pfn, pages: number, code: number, maxPage: PageSize | undefined): void {
    const cap = maxPage === undefined ? 3 : leafLevel(maxPage);
    // A range beyond one 2M block may need hundreds of tables: the pool grows to them at once, not by doublings as they come.
    if (pages > SPAN[2]) this.radix.pool.reserve(this.installTables(vpn, pfn, pages, cap));
    for (let off = 0; off < pages; ) {
      const v = vpn + off;
      const p = pfn + off;
      const left = pages - off;
      let level = cap;
      for (; level > 1; level--) {
        const span = SPAN[level as 2]!;
        if (this.leafLevelOk[level] && span <= left && modSpan(v, span) === 0 && modSpan(p, span) === 0) break;
      }
      // The positions after v up to the next boundary of the level above are misaligned
      // for it but stay aligned for this one: all of them get this level, in one walk.
      const span = SPAN[level as 1]!;
      const above = SPAN[(level + 1) as 2]!;
      const n = Math.min(Math.floor(left / span), (above - modSpan(v, above)) / span);
      this.radix.installLeaves(v, level, p, n, code);
      off += n * span;
    }
  }

  /**
   * At most how many tables install may allocate for the range: per level below the top,
   * the tables of that level the range meets, or only the two at its ends where leaves of
   * the level above fit the aligned middle (vpn and pfn equally aligned, the CPU and cap
   * allowing them).
   */
  private installTables(vpn: Vpn, pfn: Pfn, pages: number, cap: number): number {
    let n = 0;
    for (let level = 1; level < this.config.levels; level++) {
      const cover = SPAN[(level + 1) as 2]!;
      const tables = Math.floor((vpn + pages - 1) / cover) - Math.floor(vpn / cover) + 1;
      const larger = level < 3 && level + 1 <= cap && this.leafLevelOk[level + 1] === true && modSpan(vpn, cover) === modSpan(pfn, cover);
      n += larger ? Math.min(tables, 2) : tables;
    }
    return n;
  }

  /** set_direct_map_* on frames [pfn, +dm.pages), direct-map range dm: flushed now, or (the `_noflush` variants) owed. */
  private finishDirectMap(op: 'setDirectMapInvalid' | 'setDirectMapDefault', pfn: Pfn, dm: Range, flush: boolean): Result<void> {
    const noDirectMap = op === 'setDirectMapInvalid';
    const frames = [{ pfn, count: dm.pages, noDirectMap }];
    if (flush) return this.finish(op, { flushed: [dm], frames });
    if (noDirectMap) return this.finish(op, { flushed: [], touched: [dm], frames, owe: this.debt({ ...dm, reason: op }) });
    return this.finish(op, { flushed: [], touched: [dm], frames, owe: [{ ...dm, reason: op }] });
  }

  /**
   * The end of every mutating operation: unlink the emptied tables (left pending when
   * nothing is flushed), then policy (EPERM), then the pool (ENOMEM); roll back on
   * failure; else commit, flush, record a debt.
   */
  private finish(op: PolicyOp, end: Ending): Result<void> {
    const r = this.radix;
    const pool = r.pool;
    const nd = this.facts.noDirectMap;
    // Without a flush another CPU may still walk an emptied table (flush.ts, "Deferred table frees").
    r.releaseEmptied(end.flushed.length === 0);
    const frames = end.frames ?? NO_FRAMES;
    const saved = frames.length === 0 ? null : nd.save();
    for (const f of frames) {
      if (f.noDirectMap) nd.add(f.pfn, f.count, true);
      else nd.remove(f.pfn, f.count);
    }
    // The kernel refuses nothing for a security reason (spec/contracts/linux.ts): no policy under linux.
    const error = (this.profile === 'linux' ? null : this.refusal(op, end, frames.length === 0 ? NO_FRAMES : frames.filter((f) => f.noDirectMap))) ?? this.poolError();
    if (error !== null) {
      pool.rollback();
      if (saved !== null) nd.restore(saved);
      end.undo?.();
      return err(error);
    }
    pool.commit();
    if (frames.length > 0) this.frameRunsNow = null;
    this.flushRanges(end.flushed);
    if (end.owe !== undefined) for (const o of end.owe) this.tlbs.owe(o.vpn, o.pages, o.reason);
    return OK;
  }

  /**
   * The strict policy's EPERM for the running operation, or null: the rules per written
   * leaf and removed frame (policy.ts), then the isolation rules, which come after all of
   * those but the clients' (C1, C7); C1 also where the operation leaves a flush owed over a
   * lazily freed vmalloc area whose frames are free.
   */
  private refusal(op: PolicyOp, end: Ending, removed: readonly FrameChange[]): PtError | null {
    let broken = firstBroken(this.radix, this.facts, removed);
    if (this.isolation !== undefined && (broken === null || isLateRule(broken.id))) {
      const isolated = this.isolation.broken(op as MutatingOp, end.touched ?? end.flushed);
      if (isolated !== null) return isolated;
    }
    if (end.owe !== undefined && end.owe.length > 0) broken = earliest(broken, this.clients.owedOverFreed(end.owe));
    // The clients' operations name their EPERM argument as the operation table says (POLICY_ARG).
    return broken === null ? null : policyError(op as MutatingOp, broken.id, broken.where);
  }

  /** ENOMEM when the tables in use, pending ones included, outgrow the pool: decided before the operation's own flush. */
  private poolError(): PtError | null {
    const { inUse, pending } = this.radix.pool;
    const count = this.config.tablePool.count;
    if (inUse <= count) return null;
    const waiting = pending.length === 0 ? '' : ` (${pending.length} of them unlinked, awaiting a flush)`;
    return ptError('ENOMEM', 'tablePool', `the result needs ${inUse} page tables${waiting}, the pool has ${count}`);
  }

  /**
   * The flushes of one operation (flush.ts): its ranges merged where they overlap or
   * touch, then each merged range flushed with flush_tlb_kernel_range, which is
   * flush_tlb_all once it has more than tlb_single_page_flush_ceiling pages (one such
   * range makes the whole operation's flush a full one).
   */
  private flushRanges(ranges: readonly Range[]): void {
    if (ranges.length === 0) return;
    if (ranges.length === 1) return this.flushKernelRange(ranges[0]!.vpn, ranges[0]!.pages);
    // A RunSet merges what overlaps or touches as it adds.
    const runs = new RunSet<null>(() => null);
    for (const r of ranges) runs.add(r.vpn, r.pages, null);
    const merged = runs.map((vpn, pages) => ({ vpn, pages }));
    if (merged.some((m) => m.pages > TLB_SINGLE_PAGE_FLUSH_CEILING)) return void this.flushAll();
    for (const m of merged) this.flushKernelRange(m.vpn, m.pages);
  }

  /**
   * flush_tlb_kernel_range: above the ceiling flush_tlb_all; else INVLPG of each page on
   * every CPU, which drops the TLB entries meeting the range and empties the CPU's
   * paging-structure caches whatever the address, then the obligations there are
   * discharged and the pending tables whose span it meets released.
   */
  private flushKernelRange(vpn: Vpn, pages: number): void {
    if (pages > TLB_SINGLE_PAGE_FLUSH_CEILING) return void this.flushAll();
    // The remote-cpu-not-flushed mutant's flush never leaves CPU 0 (no IPI to the others).
    const cpus = this.mutant === 'remote-cpu-not-flushed' ? 1 : this.config.cpus;
    this.tlbs.flushRange(vpn, pages, cpus);
    if (this.mutant !== 'walk-cache-survives-flush') this.tlbs.emptyWalkCaches(cpus);
    this.radix.pool.releasePending(vpn, vpn + pages);
    this.clients.flushed(vpn, pages, cpus);
  }
}
