/**
 * The isolation capability of examples/simple-page-tables.ts (PageTableSystem.isolation):
 * processes with their KPTI pair and ASI root, pti_clone_pgtable, the LDT remap and the
 * ASI restricted direct map, written from spec/contracts/isolation.ts (the prose, with
 * its errno order), spec/contracts/post/process.ts and clone.ts (the postconditions) and
 * spec/roots.ts (which root mirrors which top-level slots of which other).
 *
 * As in the core example, the state is the abstract state itself: each root other than
 * init_mm is the sorted array of its *own* leaves (AbstractRoot.leaves), and what it
 * mirrors it looks up in the root it mirrors (`mirrorsOf`, the trusted geometry), so a
 * process's kernel half is init_mm's leaves and nothing is ever copied to keep it in sync
 * (sync_global_pgds for free). Only the linux profile lets a mirror go stale: a top-level
 * slot root 1 fills after a process was created is `diverged` in that process's user copy.
 *
 * The core system (simple-page-tables.ts) owns init_mm, the frames, the TLBs, the
 * paging-structure caches, the obligations and the pending tables; it hands this part a
 * `Core`: what it needs to read them, the leaf rules map and unmap already follow, its
 * strict-policy check and its flushes. Every operation here builds the roots it would
 * produce, then `commit` decides EPERM (strict: the first STRICT_POLICY invariant the
 * candidate breaks where it changed) and ENOMEM (every root's tables against the pool),
 * in that order, and only then installs them and flushes.
 *
 * Every array is built anew and never changed after it is built: the fuzzer keeps the
 * states `abstract()` returns.
 */
import {
  ASI_GLOBAL_ROOT, INIT_MM, LDT_PROT, LDT_SLOT_PAGES, OK, PAGEBLOCK_PAGES, PAGES, PTI_USER_ROOT, fail, kernelLayout, ldtRemap, ldtSlotVpn, leafLevel, mirrorsOf,
  ok, pagesPerEntry, pfnToHex, processRootIds, slotPages, tableFootprint, validateAsiRange, validateExitProcess, validateMapUser, validatePtiClone,
  validateSetLdt, validateUnmapUser, vpnToHex,
  type AbstractRoot, type AbstractState, type CloneLevel, type FrameRun, type IsolationOps, type KernelEvent, type Leaf, type Level, type MutatingOp,
  type PagingLevels, type Pfn, type ProcessRoots, type Profile, type Prot, type PtError, type Result, type RootId, type RootKind, type SystemConfig, type Vpn,
} from '../spec/index.ts';

export interface Range {
  readonly vpn: Vpn;
  readonly pages: number;
}

/** The rules of sorted, disjoint leaf arrays that the isolation operations share with map and unmap. */
export interface LeafRules {
  /** [lo, hi): the indexes of the leaves that meet `r`. */
  meeting(leaves: readonly Leaf[], r: Range): [number, number];
  /** map's placement with no cap: the largest leaves alignment and the CPU allow. */
  place(vpn: Vpn, pfn: Pfn, pages: number, prot: Prot): Leaf[];
  /** unmap's edit: every page of `r` removed, a huge leaf straddling an end split first (the split rule). */
  remove(leaves: readonly Leaf[], r: Range): Leaf[];
}

/** What the isolation part asks of the core system. */
export interface Core {
  readonly config: SystemConfig;
  readonly profile: Profile;
  readonly leaves: LeafRules;
  /** init_mm's present leaves, sorted. */
  kernelLeaves(): readonly Leaf[];
  /** Linux ptiClone only: init_mm's leaves with _PAGE_GLOBAL set on those it cloned (same places, so the same tables). */
  setKernelLeaves(leaves: readonly Leaf[]): void;
  frames(): readonly FrameRun[];
  /** The abstract state now: what a candidate is built on. */
  state(): AbstractState;
  /** The tables the core holds: init_mm's footprint and the tables pending free. */
  tables(): number;
  /** The EPERM a strict system gives for `candidate`, checked within `scopes`; null when it breaks no policy there. */
  refusal(op: MutatingOp, candidate: AbstractState, scopes: readonly Range[]): PtError | null;
  /** Kernel range flushes of `ranges` on every CPU, merged, past the ceiling a full flush (flush.ts). */
  flush(ranges: readonly Range[]): void;
  /** A process flush (flush_tlb_mm_range): these roots' TLB entries meeting `range` (all without one) and all their paging-structure-cache entries. */
  forget(roots: ReadonlySet<RootId>, range?: Range): void;
}

/** A process's current LDT: which of its two LDT slots holds it, and its frames. */
interface Ldt {
  readonly slot: 0 | 1;
  readonly pfn: Pfn;
  readonly pages: number;
}

/** One process: the own leaves of its pgd and of its KPTI user copy (its ASI root owns none: it mirrors everything). */
interface Process {
  readonly pid: number;
  /** The pgd (process-kernel root): the user half NX-poisoned, then the LDT in the LDT remap. */
  readonly kernel: readonly Leaf[];
  /** The KPTI user copy (process-user root): the user half with the prot mmap asked for. */
  readonly user: readonly Leaf[];
  readonly ldt?: Ldt;
  /** Linux: the first pages of the top-level slots root 1 filled after this process was created (pti.c does not propagate them). */
  readonly diverged: readonly Vpn[];
}

/** The roots of the capability beside init_mm, as one value: an operation builds the next one, `commit` installs it. */
interface Roots {
  /** Root 1, swapper_pg_dir's user half: the PTI clones. */
  readonly pti: readonly Leaf[];
  /** Root 2, asi_global_nonsensitive_pgd below VMALLOC_START: the restricted direct map. */
  readonly asi: readonly Leaf[];
  /** By pid, ascending. */
  readonly processes: readonly Process[];
  /** Linux: the tables root 2 still holds though its leaves no longer need them, by `level:first page` (vunmap frees none). */
  readonly keptAsi: ReadonlySet<string>;
}

/** What an operation does besides replacing the roots. */
interface Change {
  /** Strict: refused with EPERM when the candidate breaks a STRICT_POLICY invariant in these ranges. */
  readonly policy?: { readonly op: MutatingOp; readonly scopes: readonly Range[] };
  /** Linux ptiClone: init_mm's leaves after it. */
  readonly kernelLeaves?: readonly Leaf[];
  /** Kernel range flushes, made after the change. */
  readonly flush?: readonly Range[];
  /** A process flush of these roots, made after the change. */
  readonly forget?: { readonly roots: readonly RootId[]; readonly range?: Range };
  /** What the kernel prints (linux asiMap). */
  readonly events?: readonly KernelEvent[];
}

const NONE: readonly Leaf[] = Object.freeze([]);
const NO_TABLES: ReadonlySet<string> = new Set();
const BLOCK = PAGES['2M'];
const end = (r: Range): Vpn => r.vpn + r.pages;
const leafRange = (l: Leaf): Range => ({ vpn: l.vpn, pages: PAGES[l.size] });
const meets = (a: Range, b: Range): boolean => a.vpn < end(b) && b.vpn < end(a);
const alignDown = (v: number, n: number): number => v - (v % n);
const refuse = (e: PtError): Result<never> => ({ ok: false, error: e });
const sortLeaves = (leaves: readonly Leaf[]): Leaf[] => [...leaves].sort((a, b) => a.vpn - b.vpn);
/** The three roots of a process, as a process flush or exit names them. */
const rootsOf = (pid: number): RootId[] => Object.values(processRootIds(pid));

/** Sorted ranges with the overlapping and touching ones joined (the core's flushes merge them too). */
export function mergeRanges(ranges: readonly Range[]): Range[] {
  const out: Range[] = [];
  for (const r of [...ranges].sort((a, b) => a.vpn - b.vpn)) {
    const last = out[out.length - 1];
    if (last !== undefined && end(last) >= r.vpn) out[out.length - 1] = { vpn: last.vpn, pages: Math.max(end(last), end(r)) - last.vpn };
    else out.push(r);
  }
  return out;
}

/** Whether `r` meets one of `merged` (sorted, disjoint): a binary search for the first that ends after r starts. */
function meetsAny(merged: readonly Range[], r: Range): boolean {
  let lo = 0;
  let hi = merged.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (end(merged[mid]!) <= r.vpn) lo = mid + 1;
    else hi = mid;
  }
  return lo < merged.length && merged[lo]!.vpn < end(r);
}

/** The 2M pieces of a large leaf inside [lo, hi) (both 2M-aligned), as 2M leaves: root 1 and the restricted physmap stop at PMD level. */
function blocksOf(l: Leaf, lo: Vpn, hi: Vpn, prot: Prot): Leaf[] {
  const out: Leaf[] = [];
  for (let at = Math.max(l.vpn, lo); at < Math.min(end(leafRange(l)), hi); at += BLOCK) out.push({ vpn: at, pfn: l.pfn + (at - l.vpn), size: '2M', prot });
  return out;
}

// ---- tables ----

const footprints = new WeakMap<readonly Leaf[], number>();

/** tableFootprint of a root's own leaves, remembered per array (the arrays never change): abstract() asks after every command. */
function footprintOf(levels: PagingLevels, leaves: readonly Leaf[]): number {
  let n = footprints.get(leaves);
  if (n === undefined) footprints.set(leaves, (n = tableFootprint(levels, leaves)));
  return n;
}

/**
 * The tables of the capability's roots (isolation.ts, "Tables"): roots 1 and 2 and every
 * pgd their own footprint but the top-level table (roots 1 and 2 hang in init_mm's
 * order-1 pgd and static storage), each process its three top-level tables, and the
 * empty tables the linux profile keeps in root 2. A user copy shares every table below
 * its pgd with the pgd (the LDT slot and the user half are the same tables); an ASI root
 * owns none.
 */
function tablesHeld(levels: PagingLevels, r: Roots): number {
  let n = footprintOf(levels, r.pti) - 1 + footprintOf(levels, r.asi) - 1 + r.keptAsi.size;
  for (const p of r.processes) n += footprintOf(levels, p.kernel) - 1 + 3;
  return n;
}

/** The tables below the top level that these leaves need, by `level:first page` (spec/footprint.ts's count, as a set). */
function tableKeys(levels: PagingLevels, leaves: readonly Leaf[]): Set<string> {
  const keys = new Set<string>();
  for (let L = 1; L < levels; L++) {
    const span = pagesPerEntry((L + 1) as Level);
    for (const l of leaves) if (leafLevel(l.size) <= L) keys.add(`${L}:${alignDown(l.vpn, span)}`);
  }
  return keys;
}

// ---- the capability ----

export class SimpleIsolation implements IsolationOps {
  private roots: Roots = { pti: NONE, asi: NONE, processes: [], keptAsi: NO_TABLES };
  /** The largest pid this system ever gave: pids are never reused, so a dead process's roots never come back. */
  private lastPid = 0;
  /** What the kernel printed since the last takeEvents. */
  private printed: readonly KernelEvent[] = [];

  constructor(private readonly core: Core) {}

  private get levels(): PagingLevels {
    return this.core.config.levels;
  }

  private get linux(): boolean {
    return this.core.profile === 'linux';
  }

  /** mm_alloc + pgd_alloc: three empty roots; their kernel halves are what they mirror. */
  createProcess(): Result<ProcessRoots> {
    const pid = this.lastPid + 1;
    const fresh: Process = { pid, kernel: NONE, user: NONE, diverged: [] };
    const done = this.commit({ ...this.roots, processes: [...this.roots.processes, fresh] }, {});
    if (!done.ok) return done;
    this.lastPid = pid;
    return ok({ pid, ...processRootIds(pid) });
  }

  /** exit_mmap + pgd_free: the roots and every table under them go, and with the mm's PCIDs every cached entry of them. */
  exitProcess(pid: number): Result<void> {
    const bad = validateExitProcess(pid);
    if (bad) return refuse(bad);
    if (this.process(pid) === undefined) return fail('ENOENT', 'pid', `no live process has pid ${pid}`);
    const processes = this.roots.processes.filter((p) => p.pid !== pid);
    return this.commit({ ...this.roots, processes }, { forget: { roots: rootsOf(pid) } });
  }

  /**
   * mmap and the fault path: __pti_set_user_pgtbl writes both copies, the kernel copy's
   * with _PAGE_NX, so the pgd gets the leaves NX-poisoned and the user copy as asked
   * (the ASI root mirrors the pgd). Nothing was mapped there, so nothing is flushed.
   */
  mapUser(pid: number, vpn: Vpn, pfn: Pfn, pages: number, prot: Prot): Result<void> {
    const bad = validateMapUser(this.core.config, pid, vpn, pfn, pages, prot);
    if (bad) return refuse(bad);
    const p = this.process(pid);
    if (p === undefined) return fail('ENOENT', 'pid', `no live process has pid ${pid}`);
    const r = { vpn, pages };
    if (this.mapsAny(p.kernel, r)) return fail('EEXIST', 'vpn', `part of ${vpnToHex(vpn)} +${pages} is mapped in process ${pid}`);
    const user = this.core.leaves.place(vpn, pfn, pages, prot);
    const poisoned = user.map((l) => ({ ...l, prot: { ...l.prot, execKernel: false, execUser: false } }));
    const next = { ...p, kernel: sortLeaves([...p.kernel, ...poisoned]), user: sortLeaves([...p.user, ...user]) };
    return this.commit(this.withProcess(next), { policy: { op: 'mapUser', scopes: [r] } });
  }

  /** munmap: zap both copies (splitting a THP the range cuts), flush_tlb_mm_range, then free_pgtables frees what it emptied. */
  unmapUser(pid: number, vpn: Vpn, pages: number): Result<void> {
    const bad = validateUnmapUser(this.core.config, pid, vpn, pages);
    if (bad) return refuse(bad);
    const p = this.process(pid);
    if (p === undefined) return fail('ENOENT', 'pid', `no live process has pid ${pid}`);
    const r = { vpn, pages };
    if (!this.mapsAny(p.kernel, r)) return fail('ENOENT', 'vpn', `nothing in ${vpnToHex(vpn)} +${pages} is mapped in process ${pid}`);
    const next = { ...p, kernel: this.core.leaves.remove(p.kernel, r), user: this.core.leaves.remove(p.user, r) };
    return this.commit(this.withProcess(next), { forget: { roots: rootsOf(pid), range: r } });
  }

  /**
   * pti_clone_pgtable into root 1: each unit (clonedUnits) replaces whatever root 1
   * mapped on it, a root-1 leaf meeting a unit going whole. Strict flushes the units, so
   * no user copy keeps a stale translation; linux flushes nothing, sets _PAGE_GLOBAL on
   * init_mm's cloned leaves and their copies, and leaves each existing user copy without
   * the top-level slots root 1 fills for the first time.
   */
  ptiClone(vpn: Vpn, pages: number, level: CloneLevel): Result<void> {
    const bad = validatePtiClone(this.core.config, vpn, pages, level);
    if (bad) return refuse(bad);
    const init = this.core.kernelLeaves();
    const clone = clonedUnits(this.core.leaves, init, { vpn, pages }, level);
    const global = (p: Prot): Prot => (this.linux ? { ...p, global: true } : p);
    // Root 1's tables follow its leaves in both profiles: a PTE table a 2M clone replaces is freed.
    const next = { ...this.roots, pti: this.copiedInto(this.roots.pti, clone.units, clone.copies.map((l) => ({ ...l, prot: global(l.prot) }))) };
    if (!this.linux) return this.commit(next, { policy: { op: 'ptiClone', scopes: clone.units }, flush: clone.units });
    const [lo, hi] = clone.sources;
    const kernelLeaves = [...init.slice(0, lo), ...init.slice(lo, hi).map((l) => (clone.isSource(l) ? { ...l, prot: global(l.prot) } : l)), ...init.slice(hi)];
    return this.commit(this.divergedBy(next, clone.units), { kernelLeaves });
  }

  /**
   * asi_map: root 2 gets init_mm's translation where init_mm maps the range, in leaves of
   * at most 2M, replacing what it mapped there. It flushes nothing (the contract: it only
   * copies what the unrestricted tables hold). Linux skips (and warns once about) each 2M
   * block init_mm maps with 4K leaves: the restricted physmap stops at PMD level.
   */
  asiMap(vpn: Vpn, pages: number): Result<void> {
    const bad = validateAsiRange(this.core.config, vpn, pages);
    if (bad) return refuse(bad);
    const copy = asiCopies(this.core.leaves, this.core.kernelLeaves(), { vpn, pages }, this.linux);
    const asi = this.copiedInto(this.roots.asi, copy.units, copy.copies);
    const next = { ...this.roots, asi, keptAsi: this.kept(this.roots.keptAsi, this.roots.asi, asi) };
    const pageOffset = kernelLayout(this.levels).pageOffset;
    const events = copy.skipped.map((b): KernelEvent => ({ kind: 'asi-level', vpn: b, pages: PAGEBLOCK_PAGES, pfn: b - pageOffset }));
    return this.commit(next, { policy: { op: 'asiMap', scopes: [{ vpn, pages }] }, events });
  }

  /** asi_unmap: vunmap_pgd_range on the ASI pgd and flush_tlb_kernel_range; strict frees the emptied tables in that flush, linux keeps them. */
  asiUnmap(vpn: Vpn, pages: number): Result<void> {
    const bad = validateAsiRange(this.core.config, vpn, pages);
    if (bad) return refuse(bad);
    const r = { vpn, pages };
    const asi = this.core.leaves.remove(this.roots.asi, r);
    return this.commit({ ...this.roots, asi, keptAsi: this.kept(this.roots.keptAsi, this.roots.asi, asi) }, { flush: [r] });
  }

  /**
   * write_ldt with PTI: map_ldt_struct maps the new LDT in the slot the current one does
   * not use (slot 0 first), read-only and never global; install_ldt switches to it; then
   * unmap_ldt_struct clears the old slot and flushes it for the process. The frames are
   * the caller's: they stay data, and freeing them is the owner's freeFrames. The LDT
   * remap's tables stay until exit (free_ldt_pgtables), which the leaves say anyway: the
   * new LDT lies in the same PTE table as the old.
   */
  setLdt(pid: number, pfn: Pfn, pages: number): Result<void> {
    const bad = validateSetLdt(this.core.config, pid, pfn, pages);
    if (bad) return refuse(bad);
    const p = this.process(pid);
    if (p === undefined) return fail('ENOENT', 'pid', `no live process has pid ${pid}`);
    const notData = this.core.frames().find((f) => f.use !== 'data' && f.pfn < pfn + pages && pfn < f.pfn + f.count);
    if (notData !== undefined) return fail('ENOENT', 'pfn', `frame ${pfnToHex(Math.max(pfn, notData.pfn))} is ${notData.use}, not a page the allocator gave out`);
    const holder = this.roots.processes.find((q) => q.ldt !== undefined && q.ldt.pfn < pfn + pages && pfn < q.ldt.pfn + q.ldt.pages);
    if (holder !== undefined) return fail('EBUSY', 'pfn', `a frame of ${pfnToHex(pfn)} +${pages} holds the LDT of process ${holder.pid}`);
    const slot = p.ldt === undefined ? 0 : p.ldt.slot === 0 ? 1 : 0;
    const base = ldtSlotVpn(this.levels, slot);
    const ldt = Array.from({ length: pages }, (_, i): Leaf => ({ vpn: base + i, pfn: pfn + i, size: '4K', prot: { ...LDT_PROT } }));
    const remap = ldtRemap(this.levels);
    const kernel = sortLeaves([...p.kernel.filter((l) => !meets(leafRange(l), remap)), ...ldt]);
    const next = this.withProcess({ ...p, kernel, ldt: { slot, pfn, pages } });
    const old = p.ldt === undefined ? {} : { forget: { roots: rootsOf(pid), range: { vpn: ldtSlotVpn(this.levels, p.ldt.slot), pages: LDT_SLOT_PAGES } } };
    return this.commit(next, { policy: { op: 'setLdt', scopes: [{ vpn: base, pages }] }, ...old });
  }

  // ---- what the core asks ----

  /** The roots beside init_mm, in id order, as the abstract state lists them. */
  abstractRoots(r: Roots = this.roots): AbstractRoot[] {
    const out: AbstractRoot[] = [
      { id: PTI_USER_ROOT, kind: 'kernel-user', leaves: r.pti },
      { id: ASI_GLOBAL_ROOT, kind: 'asi-global', leaves: r.asi },
    ];
    for (const p of r.processes) {
      const ids = processRootIds(p.pid);
      out.push(
        { id: ids.kernelRoot, kind: 'process-kernel', pid: p.pid, leaves: p.kernel },
        { id: ids.userRoot, kind: 'process-user', pid: p.pid, leaves: p.user, ...(p.diverged.length > 0 ? { diverged: p.diverged } : {}) },
        { id: ids.asiRoot, kind: 'asi', pid: p.pid, leaves: NONE },
      );
    }
    return out;
  }

  /** The roots translate and access may name. */
  rootIds(): ReadonlySet<RootId> {
    return new Set([INIT_MM, PTI_USER_ROOT, ASI_GLOBAL_ROOT, ...this.roots.processes.flatMap((p) => rootsOf(p.pid))]);
  }

  /** The tables of every root beside init_mm. */
  tables(): number {
    return tablesHeld(this.levels, this.roots);
  }

  /**
   * The leaf root `id` translates vpn with: through the mirror that holds vpn (unless its
   * slot diverged), the source root's, recursively (an ASI root's vmalloc area is root
   * 2's, which is init_mm's); else its own.
   */
  leafAt(id: RootId, vpn: Vpn): Leaf | undefined {
    const root = this.ownRoot(id);
    if (root === undefined) return undefined;
    const slot = alignDown(vpn, slotPages(this.levels));
    const m = mirrorsOf(this.levels, root.kind, root.pid).find((x) => vpn >= x.vpn && vpn < end(x));
    if (m !== undefined && !root.diverged.includes(slot)) return this.leafAt(m.from, vpn);
    const [lo, hi] = this.core.leaves.meeting(root.leaves, { vpn, pages: 1 });
    return lo < hi ? root.leaves[lo] : undefined;
  }

  /** What the kernel printed since the last call, and forget it. */
  takeEvents(): readonly KernelEvent[] {
    const out = this.printed;
    this.printed = [];
    return out;
  }

  // ---- helpers ----

  /** The order every operation follows once its arguments and the state allow it: EPERM (strict), then ENOMEM, then install and flush. */
  private commit(next: Roots, change: Change): Result<void> {
    if (change.policy !== undefined && !this.linux) {
      const now = this.core.state();
      const candidate: AbstractState = { ...now, roots: [now.roots[0]!, ...this.abstractRoots(next)] };
      const refused = this.core.refusal(change.policy.op, candidate, change.policy.scopes);
      if (refused) return refuse(refused);
    }
    const needed = this.core.tables() + tablesHeld(this.levels, next);
    const pool = this.core.config.tablePool.count;
    if (needed > pool) return fail('ENOMEM', 'tablePool', `needs ${needed} tables, the pool has ${pool}`);
    this.roots = next;
    if (change.kernelLeaves !== undefined) this.core.setKernelLeaves(change.kernelLeaves);
    if (change.flush !== undefined && change.flush.length > 0) this.core.flush(change.flush);
    if (change.forget !== undefined) this.core.forget(new Set(change.forget.roots), change.forget.range);
    if (change.events !== undefined && change.events.length > 0) this.printed = [...this.printed, ...change.events];
    return OK;
  }

  private process(pid: number): Process | undefined {
    return this.roots.processes.find((p) => p.pid === pid);
  }

  /** The roots with process `p` replaced by its new self. */
  private withProcess(p: Process): Roots {
    return { ...this.roots, processes: this.roots.processes.map((q) => (q.pid === p.pid ? p : q)) };
  }

  private mapsAny(leaves: readonly Leaf[], r: Range): boolean {
    const [lo, hi] = this.core.leaves.meeting(leaves, r);
    return lo < hi;
  }

  /** A root beside init_mm by id, with what it owns and which slots of its mirrors diverged; init_mm by its leaves. */
  private ownRoot(id: RootId): { kind: RootKind; pid?: number; leaves: readonly Leaf[]; diverged: readonly Vpn[] } | undefined {
    if (id === INIT_MM) return { kind: 'kernel', leaves: this.core.kernelLeaves(), diverged: [] };
    if (id === PTI_USER_ROOT) return { kind: 'kernel-user', leaves: this.roots.pti, diverged: [] };
    if (id === ASI_GLOBAL_ROOT) return { kind: 'asi-global', leaves: this.roots.asi, diverged: [] };
    const p = this.roots.processes.find((q) => rootsOf(q.pid).includes(id));
    if (p === undefined) return undefined;
    const ids = processRootIds(p.pid);
    if (id === ids.kernelRoot) return { kind: 'process-kernel', pid: p.pid, leaves: p.kernel, diverged: [] };
    if (id === ids.userRoot) return { kind: 'process-user', pid: p.pid, leaves: p.user, diverged: p.diverged };
    return { kind: 'asi', pid: p.pid, leaves: NONE, diverged: [] };
  }

  /** `own` with every leaf that meets a unit gone whole and the copies put in: what a clone into root 1 or 2 leaves there. */
  private copiedInto(own: readonly Leaf[], units: readonly Range[], copies: readonly Leaf[]): readonly Leaf[] {
    if (units.length === 0) return own;
    return sortLeaves([...own.filter((l) => !meetsAny(units, leafRange(l))), ...copies]);
  }

  /**
   * Linux keeps every table root 2 ever had (vunmap_pgd_range frees none): the tables
   * `before` needed and `after` does not join the kept ones. Strict frees them (in the
   * flush that comes with the change).
   */
  private kept(kept: ReadonlySet<string>, before: readonly Leaf[], after: readonly Leaf[]): ReadonlySet<string> {
    if (!this.linux || before === after) return kept;
    const needed = tableKeys(this.levels, after);
    const out = new Set([...kept, ...tableKeys(this.levels, before)].filter((k) => !needed.has(k)));
    return out.size === 0 ? NO_TABLES : out;
  }

  /**
   * Linux: each top-level slot a unit lies in that root 1 held nothing in before is
   * diverged in every existing user copy (pti.c: "Top-level entries added to init_mm's
   * usermode pgd after boot will not be automatically propagated to other mms"). The LDT
   * slot is the process's own, never root 1's.
   */
  private divergedBy(next: Roots, units: readonly Range[]): Roots {
    const slot = slotPages(this.levels);
    const ldt = ldtRemap(this.levels).vpn;
    const fresh = new Set<Vpn>();
    for (const u of units) {
      for (let s = alignDown(u.vpn, slot); s < end(u); s += slot) if (s !== ldt && !this.mapsAny(this.roots.pti, { vpn: s, pages: slot })) fresh.add(s);
    }
    if (fresh.size === 0) return next;
    const processes = next.processes.map((p) => ({ ...p, diverged: [...new Set([...p.diverged, ...fresh])].sort((a, b) => a - b) }));
    return { ...next, processes };
  }
}

/**
 * ptiClone's units (isolation.ts) over init_mm's present leaves in the 2M blocks the range
 * meets: a 2M or 1G leaf gives each of its 2M blocks there, copied as a 2M leaf (pmd_leaf
 * is cloned at PMD level whatever the level asked); a 4K leaf gives its whole block at
 * level pmd (its present 4K leaves are copied, holes stay holes) and itself at level pte,
 * where only the 4K leaves inside the range count. Non-present entries are not cloned.
 * `sources` is the index range of the init_mm leaves read, `isSource` which of them.
 */
function clonedUnits(rules: LeafRules, init: readonly Leaf[], r: Range, level: CloneLevel) {
  const lo = alignDown(r.vpn, BLOCK);
  const hi = alignDown(end(r) + BLOCK - 1, BLOCK);
  const [a, b] = rules.meeting(init, { vpn: lo, pages: hi - lo });
  const units: Range[] = [];
  const copies: Leaf[] = [];
  const read = new Set<Leaf>();
  for (const l of init.slice(a, b)) {
    if (l.size === '4K') {
      if (level === 'pte' && (l.vpn < r.vpn || l.vpn >= end(r))) continue;
      units.push(level === 'pmd' ? { vpn: alignDown(l.vpn, BLOCK), pages: BLOCK } : leafRange(l));
      copies.push(l);
    } else {
      const pieces = blocksOf(l, lo, hi, l.prot);
      units.push(...pieces.map(leafRange));
      copies.push(...pieces);
    }
    read.add(l);
  }
  return { units: mergeRanges(units), copies, sources: [a, b] as const, isSource: (l: Leaf): boolean => read.has(l) };
}

/**
 * asiMap's copies: each present init_mm leaf meeting the range, clipped to it (the range
 * is pageblock-aligned, so only a 1G leaf is clipped, into 2M leaves). Linux skips the
 * blocks init_mm maps with 4K leaves, each named once in `skipped`.
 */
function asiCopies(rules: LeafRules, init: readonly Leaf[], r: Range, skip4K: boolean) {
  const [a, b] = rules.meeting(init, r);
  const units: Range[] = [];
  const copies: Leaf[] = [];
  const skipped: Vpn[] = [];
  for (const l of init.slice(a, b)) {
    if (l.size === '4K' && skip4K) {
      const block = alignDown(l.vpn, BLOCK);
      if (skipped[skipped.length - 1] !== block) skipped.push(block);
      continue;
    }
    const pieces = l.size === '1G' ? blocksOf(l, r.vpn, end(r), l.prot) : [l];
    units.push(...pieces.map(leafRange));
    copies.push(...pieces);
  }
  return { units: mergeRanges(units), copies, skipped };
}
