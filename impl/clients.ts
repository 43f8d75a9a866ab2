/**
 * The clients capability on the real tables (spec/contracts/clients.ts): the kernel's
 * page-table users, all editing init_mm through the same journaled stages as the core
 * operations (system.ts `finish`: validators, state checks, journaled work, policy EPERM,
 * pool ENOMEM, rollback or commit, then flush), so a failed strict operation changes
 * nothing, bookkeeping included (what an operation stages beside the tables it undoes on
 * failure).
 *
 *   clients-vmalloc.ts  vmalloc, vfree (vm_reset_perms), vm_unmap_aliases, the lazy purge
 *   clients-cpu.ts      kmap_local's per-CPU stacks, the mermap's per-CPU slices
 *   clients-pool.ts     the __GFP_UNMAPPED pool and the pool rules of allocFrames
 *   clients-walk.ts     apply_to_page_range, walk_kernel_page_table_range
 *   clients-state.ts    the vmalloc areas as sorted disjoint ranges
 *   clients-gather.ts   zap_page_range_single's mmu_gather on a process's user half
 *   clients-hotplug.ts  add_memory and remove_memory of whole memory blocks
 *
 * This module holds them together: the host interface (what RadixSystem lends them, as
 * isolation.ts's IsolationHost does), C1's question of which frames a TLB the clients left
 * stale may still translate to, and abstract().clients in canonical order (rebuilt only
 * when some part changed).
 */
import type { SystemParts } from './capability.ts';
import { VPN_LIMIT, pfnToHex, vpnToHex, type PageSize, type Pfn, type Vpn } from '../spec/address.ts';
import type { ClientState, LazyArea, VmallocArea } from '../spec/clients.ts';
import type { MutatingOp } from '../spec/contracts/outcome.ts';
import type { PtError, Result } from '../spec/errors.ts';
import type { Prot } from '../spec/state.ts';
import type { ClientOps, VmallocOptions, WalkVisit } from '../spec/system.ts';
import { CpuLocal } from './clients-cpu.ts';
import { zapPageRange, type UserHalf } from './clients-gather.ts';
import { Hotplug } from './clients-hotplug.ts';
import { UnmappedPool } from './clients-pool.ts';
import { AreaList } from './clients-state.ts';
import { Vmalloc } from './clients-vmalloc.ts';
import { PageWalk } from './clients-walk.ts';
import type { KernelLog } from './klog.ts';
import type { Broken } from './policy.ts';
import type { Ending, Owed, Range } from './system.ts';

/** The operations whose EPERM the strict policy decides in `finish`: the core ones and the clients' that map. */
export type PolicyOp = MutatingOp | 'vmalloc' | 'vfree' | 'kmapLocal' | 'mermapGet' | 'allocUnmapped' | 'applyToPageRange' | 'addMemory' | 'removeMemory';

/** What the capability needs of the system it is part of (system.ts). */
export interface ClientsHost extends SystemParts {
  /** What the kernel prints (linux: vfree-nonexistent, apply-huge, vunmap's warnings). */
  readonly log: KernelLog;
  /** map's leaf placement into the running operation's tables. */
  install(vpn: Vpn, pfn: Pfn, pages: number, code: number, maxPage: PageSize | undefined): void;
  /** The end of a mutating operation: emptied tables, policy, pool, commit or roll back (calling `undo`), flush, debts. */
  finish(op: PolicyOp, end: Ending): Result<void>;
  poolError(): PtError | null;
  /** An operation's flushes through tlb_single_page_flush_ceiling (each a flush_tlb_kernel_range of every CPU). */
  flushRanges(ranges: readonly Range[]): void;
  /** flush_tlb_one_kernel of each page on one CPU. */
  flushLocal(cpu: number, vpn: Vpn, pages: number): void;
  /** A `_noflush` step's debt (none under the noflush-no-obligation mutant). */
  debt(o: Owed): Owed[];
  /** The linux profile's set_direct_map_invalid_noflush (present false) / _default_noflush (cpa.ts), with the frames' record and the debt. */
  setDirectMapLinux(pfn: Pfn, count: number, present: boolean): Result<void>;
  /** The frames' facts (free, data, noDirectMap) changed: abstract()'s frame runs are rebuilt. */
  framesChanged(): void;
  /** Whether a frame of the range holds some process's current LDT (isolation). */
  holdsLdt(pfn: Pfn, count: number): boolean;
  /** The isolation capability's unmapUser and user-half leaves (zapPageRange), absent without processes. */
  readonly userHalf: UserHalf | undefined;
}

export class Clients implements ClientOps {
  /** The live vmalloc areas and the purge list (free_vmap_area_noflush's lazy areas). */
  private readonly live = new AreaList<VmallocArea>();
  private readonly lazy = new AreaList<LazyArea>();
  /** The __GFP_UNMAPPED pool: system.ts allocFrames asks its rule. */
  readonly pool: UnmappedPool;
  private readonly cpuLocal: CpuLocal;
  private readonly vm: Vmalloc;
  private readonly walker: PageWalk;
  private readonly hotplug: Hotplug;
  private stateNow: ClientState | null = null;

  constructor(private readonly host: ClientsHost) {
    this.pool = new UnmappedPool(host);
    this.cpuLocal = new CpuLocal(host);
    this.vm = new Vmalloc(host, this.live, this.lazy, this.pool, (pfn, count) => this.stillTranslated(pfn, count, true));
    this.walker = new PageWalk(host);
    this.hotplug = new Hotplug(host, (pfn, count) => this.stillTranslated(pfn, count, true));
  }

  /** Become a copy of `src` (RadixSystem.fork, after the tables, TLBs and frame facts were copied). */
  copyFrom(src: Clients): void {
    this.live.copyFrom(src.live);
    this.lazy.copyFrom(src.lazy);
    this.pool.copyFrom(src.pool);
    this.cpuLocal.copyFrom(src.cpuLocal);
    this.hotplug.copyFrom(src.hotplug);
    this.stateNow = src.stateNow;
  }

  vmalloc(vpn: Vpn, pfn: Pfn, pages: number, opts: VmallocOptions): Result<void> {
    return this.vm.vmalloc(vpn, pfn, pages, opts);
  }

  vfree(vpn: Vpn): Result<void> {
    return this.vm.vfree(vpn);
  }

  vmUnmapAliases(): Result<void> {
    return this.vm.vmUnmapAliases();
  }

  kmapLocal(cpu: number, pfn: Pfn): Result<Vpn> {
    return this.cpuLocal.kmapLocal(cpu, pfn);
  }

  kunmapLocal(cpu: number, vpn: Vpn): Result<void> {
    return this.cpuLocal.kunmapLocal(cpu, vpn);
  }

  mermapGet(cpu: number, pfn: Pfn, pages: number): Result<Vpn> {
    return this.cpuLocal.mermapGet(cpu, pfn, pages);
  }

  mermapPut(cpu: number, vpn: Vpn): Result<void> {
    return this.cpuLocal.mermapPut(cpu, vpn);
  }

  allocUnmapped(pfn: Pfn, count: number): Result<void> {
    return this.pool.allocUnmapped(pfn, count);
  }

  applyToPageRange(vpn: Vpn, pages: number, pfn: Pfn, prot: Prot): Result<void> {
    return this.walker.applyToPageRange(vpn, pages, pfn, prot);
  }

  walkPageRange(vpn: Vpn, pages: number): Result<readonly WalkVisit[]> {
    return this.walker.walkPageRange(vpn, pages);
  }

  zapPageRange(pid: number, vpn: Vpn, pages: number): Result<void> {
    return zapPageRange({ ...this.host, stillTranslated: (pfn, count) => this.stillTranslated(pfn, count, true) }, pid, vpn, pages);
  }

  addMemory(pfn: Pfn, count: number): Result<void> {
    return this.hotplug.addMemory(pfn, count);
  }

  removeMemory(pfn: Pfn, count: number): Result<void> {
    return this.hotplug.removeMemory(pfn, count);
  }

  // ---- the flushes the system makes ----

  /** A flush of [vpn, vpn + pages) on CPUs 0 .. cpus - 1 (flush_tlb_kernel_range, flush_tlb_all): the stale mermap allocations it covers whole there are flushed. */
  flushed(vpn: Vpn, pages: number, cpus: number): void {
    this.cpuLocal.flushed(vpn, pages, cpus);
  }

  /** flush_tlb_one_kernel of [vpn, vpn + pages) on one CPU. */
  flushedLocal(cpu: number, vpn: Vpn, pages: number): void {
    this.cpuLocal.flushedLocal(cpu, vpn, pages);
  }

  // ---- C1 ----

  /**
   * The first frame of [pfn, pfn + count) some TLB the clients left stale may still
   * translate to, or -1 (C1's frames): one of a stale mermap allocation (`stale`; the
   * mermap-free-without-flush mutant forgets them), or one of a lazily freed vmalloc area
   * whose range still meets an owed flush. Costs the stale allocations (a handful per
   * CPU) and, per obligation, a binary search of the purge list.
   */
  stillTranslated(pfn: Pfn, count: number, stale: boolean): number {
    let first = stale ? this.cpuLocal.staleFrame(pfn, count) : -1;
    if (this.lazy.length === 0) return first;
    const end = pfn + count;
    for (const o of this.host.tlbs.owedMeeting(0, VPN_LIMIT)) {
      for (const z of this.lazy.allMeeting(o.vpn, o.pages)) {
        const f = Math.max(z.pfn, pfn);
        if (f < Math.min(z.pfn + z.pages, end) && (first < 0 || f < first)) first = f;
      }
    }
    return first;
  }

  /**
   * C1 for an operation that leaves flushes owed (`owe`): a lazily freed vmalloc area whose
   * range they meet, with a frame already free (a plain map and a vunmap_range_noflush in
   * the purge list's range), or null.
   */
  owedOverFreed(owe: readonly Owed[]): Broken | null {
    if (this.lazy.length === 0) return null;
    const free = this.host.facts.free;
    for (const o of owe) {
      for (const z of this.lazy.allMeeting(o.vpn, o.pages)) {
        const f = free.first(z.pfn, z.pages);
        if (f >= 0) return { id: 'C1', where: `at frame ${pfnToHex(f)}, free, of the lazily freed vmalloc area ${vpnToHex(z.vpn)}, whose range would be owed a flush` };
      }
    }
    return null;
  }

  // ---- the abstraction ----

  /** abstract().clients: every part in canonical order, the same object while nothing changed. */
  state(): ClientState {
    const vmalloc = this.live.list();
    const lazy = this.lazy.list();
    const kmap = this.cpuLocal.kmapList();
    const mermap = this.cpuLocal.mermapList();
    const unmapped = this.pool.list();
    const memory = this.hotplug.list();
    const s = this.stateNow;
    if (s === null || s.vmalloc !== vmalloc || s.lazy !== lazy || s.kmap !== kmap || s.mermap !== mermap || s.unmapped !== unmapped || s.memory !== memory) {
      this.stateNow = { vmalloc, lazy, kmap, mermap, unmapped, memory };
    }
    return this.stateNow!;
  }
}
