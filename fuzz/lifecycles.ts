/**
 * Frame lifecycles as the kernel's users run them: short blocks of consecutive commands
 * the arbitrary inserts into a sequence (fuzz/arbitraries.ts), each the order of calls
 * one kernel path makes, so the rules that only matter together (a frame removed from the
 * direct map, its owed flush, its restoration before it is freed) are met in the order
 * that makes them matter. A block that starts a lifecycle leaves it open; a later block
 * ends it, with random commands in between. Shrinking deletes single commands of a block
 * like any other: a half block is still a sequence, and a failure that needs only part of
 * it shrinks to that part.
 *
 * The blocks, from gregkh/linux (mm/secretmem.c bb1c1963, mm/vmalloc.c 04aa71da) and the
 * guest_memfd direct-map removal series (lkml 2025):
 *   secretmem      secretmem_fault: the page is allocated, set_direct_map_invalid_noflush,
 *                  then flush_tlb_kernel_range of its direct-map page;
 *                  secretmem_free_folio: set_direct_map_default_noflush, then freed.
 *   guest_memfd    kvm_gmem_folio_zap_direct_map: the same for a folio of n pages;
 *                  kvm_gmem_folio_restore_direct_map, then the folio is freed.
 *   vm_reset_perms vmalloc of a VM_FLUSH_RESET_PERMS area (execmem, BPF): allocated pages
 *                  mapped in the vmalloc area (PAGE_KERNEL, or made ROX by set_memory_rox
 *                  with its alias); vfree: remove_vm_area (vunmap_range_noflush), then
 *                  vm_reset_perms: set_direct_map_invalid_noflush of every page,
 *                  _vm_unmap_aliases flushing one range from the lowest direct-map page to
 *                  the end of the area (more than 33 pages: a full flush by the ceiling),
 *                  set_direct_map_default_noflush of every page, then the pages are freed.
 *
 * Two probes are blocks of their own, one-shot: the orders of calls that make a stale
 * translation and a stale paging-structure cache meet the rules they test, which random
 * sequences almost never line up:
 *   lazy_vfree_reuse  a 4K vmalloc page used by a CPU, lazily vunmapped
 *                     (vunmap_range_noflush), then its 2M block mapped as one huge leaf
 *                     before any purge, and read beside and at the old page: strict's map
 *                     purges what is owed first (spec/contracts/map.ts); linux's vmap does
 *                     not, so the CPU caches the page at two sizes (smallest wins, L3);
 *   stale_walk        two 4K pages used by a CPU and lazily vunmapped, the page beside them
 *                     mapped, then read: under strict the CPU's cached pmd entry still points
 *                     to the unlinked PTE table (a walk that finds nothing), and the old page
 *                     is still served by its stale TLB entry;
 *   cpa_alias         a read-only vmalloc page whose frame a CPU writes through the direct
 *                     map, then set_memory_ro of the vmalloc page, then that write again: the
 *                     primary entry does not change, only cpa_process_alias's, so linux's
 *                     change_page_attr_set_clr flushes nothing (CPA_FLUSHTLB is the primary
 *                     walk's) and the write still goes through; strict flushes the alias.
 *
 * The built-in scenarios boot with every frame in use (no `free` run): a block that finds
 * no frame the sequence has freed takes data frames that boot maps only through the
 * direct map, and frees them first (the allocator had them), so its allocFrames succeeds.
 */
import { kernelLayout, type Pfn, type Vpn } from '../spec/address.ts';
import type { Command } from '../spec/commands.ts';
import type { Scenario } from '../spec/scenario.ts';
import { PAGE_KERNEL, PAGE_KERNEL_RO, INIT_MM } from '../spec/state.ts';
import { WORKLOAD_KINDS, endWork, isWorkloadKind, startWork, type Area, type OpenWork, type WorkloadContext } from './workload.ts';

/** The frame lifecycles and probes of this module, then the running kernel's workload (fuzz/workload.ts). */
export const LIFECYCLE_KINDS = ['secretmem', 'guest_memfd', 'vm_reset_perms', 'lazy_vfree_reuse', 'stale_walk', 'cpa_alias', ...WORKLOAD_KINDS] as const;
export type LifecycleKind = (typeof LIFECYCLE_KINDS)[number];

/**
 * Each lifecycle: the kernel path it follows, and its weight among the blocks and the
 * operations (the operation table's weights sum to about 90: a block in about thirty
 * commands, each of its halves in about sixty).
 */
export const LIFECYCLES: { readonly [K in LifecycleKind]: { readonly kernel: string; readonly weight: number } } = {
  secretmem: { kernel: 'mm/secretmem.c secretmem_fault, secretmem_free_folio', weight: 1 },
  guest_memfd: { kernel: 'kvm_gmem_folio_zap_direct_map, kvm_gmem_folio_restore_direct_map', weight: 1 },
  vm_reset_perms: { kernel: 'mm/vmalloc.c vmalloc (VM_FLUSH_RESET_PERMS), vfree → remove_vm_area, vm_reset_perms', weight: 1 },
  lazy_vfree_reuse: { kernel: 'mm/vmalloc.c vunmap_range_noflush, then vmap_try_huge_pmd over the lazily freed block', weight: 1 },
  stale_walk: { kernel: 'mm/vmalloc.c vunmap_range_noflush, then a vmap beside it (the paging-structure caches)', weight: 1 },
  cpa_alias: { kernel: 'arch/x86/mm/pat/set_memory.c set_memory_ro, cpa_process_alias, change_page_attr_set_clr (CPA_FLUSHTLB)', weight: 1 },
  module_load: { kernel: 'kernel/module/main.c load_module, kernel/module/strict_rwx.c module_enable_text_rox / _rodata_ro / _data_nx, free_module', weight: 1 },
  bpf_jit: { kernel: 'kernel/bpf/core.c alloc_new_pack (set_memory_rox), bpf_prog_pack_free', weight: 1 },
  ldt_process: { kernel: 'fork, arch/x86/kernel/ldt.c write_ldt (map_ldt_struct), exit (free_ldt_pgtables, free_ldt_struct)', weight: 1 },
  vmalloc_churn: { kernel: 'mm/vmalloc.c vmalloc, vfree, vm_unmap_aliases', weight: 1 },
  uc_buffer: { kernel: 'arch/x86/mm/pat/set_memory.c set_memory_uc / set_memory_wc, set_memory_wb (memtype_reserve, memtype_free)', weight: 1 },
};

/** The probes: blocks with no second half. */
const PROBES: ReadonlySet<LifecycleKind> = new Set<LifecycleKind>(['lazy_vfree_reuse', 'stale_walk', 'cpa_alias']);

/** A lifecycle a block started and no later block ended yet. */
export interface OpenLifecycle {
  readonly kind: LifecycleKind;
  readonly pfn: Pfn;
  readonly count: number;
  /** vm_reset_perms: the vmalloc area's first page. */
  readonly vpn?: Vpn;
  /** A workload block's own record (fuzz/workload.ts). */
  readonly work?: OpenWork;
}

/** What the arbitrary draws for one block: resolved by `LifecycleResolver.block`. */
export interface BlockSketch {
  readonly kind: LifecycleKind;
  /** End an open lifecycle of this kind (the oldest), if there is one; else start one. */
  readonly end: boolean;
  /** Which frame candidate, and the folio / area size. */
  readonly at: number;
  readonly size: number;
  /** vm_reset_perms: made ROX by set_memory_rox (with the direct-map alias made read-only). */
  readonly rox: boolean;
}

/** guest_memfd folios: small ones, and a 2M folio. */
const FOLIO_PAGES = [2, 4, 8, 16, 512] as const;
/** vmalloc areas of a few pages (a BPF program, a module section) to a 2M one. */
const AREA_PAGES = [1, 2, 3, 8, 16, 64, 512] as const;
/** Frames a block takes are this far apart, so open lifecycles never share a frame. */
const FRAME_STRIDE = 1024;
/** vmalloc areas of blocks start this far apart (4M: room for a 2M area and a guard). */
const AREA_STRIDE = 1024;
/** The blocks' vmalloc areas start 1G into the vmalloc region, past what boot maps there. */
const AREA_BASE_OFFSET = 262144;

/** The span of one flush covering both ranges (vm_reset_perms: _vm_unmap_aliases' start to end). */
export function coveringRange(a: { vpn: Vpn; pages: number }, b: { vpn: Vpn; pages: number }): { vpn: Vpn; pages: number } {
  const lo = Math.min(a.vpn, b.vpn);
  return { vpn: lo, pages: Math.max(a.vpn + a.pages, b.vpn + b.pages) - lo };
}

/**
 * The scenario's runs of `use` that the direct map maps, with the frames boot maps outside
 * it (vmalloc, cpu_entry_area) cut out, in pieces of at least 2048 frames: frames only the
 * direct map maps.
 */
export function directMapOnlyRuns(scenario: Scenario, use: 'free' | 'data'): { pfn: Pfn; count: number }[] {
  const pageOffset = kernelLayout(scenario.config.levels).pageOffset;
  const mappedElsewhere = scenario.boot.flatMap((c) =>
    c.op === 'map' && c.vpn - c.pfn !== pageOffset ? [{ pfn: c.pfn, end: c.pfn + c.pages }] : []);
  const cut = (r: { pfn: Pfn; count: number }): { pfn: Pfn; count: number }[] => {
    let pieces = [{ pfn: r.pfn, end: r.pfn + r.count }];
    for (const m of mappedElsewhere) {
      pieces = pieces.flatMap((p) => (m.end <= p.pfn || m.pfn >= p.end ? [p] : [
        ...(m.pfn > p.pfn ? [{ pfn: p.pfn, end: m.pfn }] : []),
        ...(m.end < p.end ? [{ pfn: m.end, end: p.end }] : []),
      ]));
    }
    return pieces.map((p) => ({ pfn: p.pfn, count: p.end - p.pfn })).filter((p) => p.count >= FRAME_STRIDE * 4);
  };
  return scenario.frames.filter((r) => r.use === use && !r.noDirectMap).flatMap(cut);
}

/**
 * Frame runs a block can take whole: the scenario's free runs first, then its data runs,
 * each without the frames boot maps outside the direct map, since freeing those is EPERM
 * (D4), which is not the lifecycle's point.
 */
export function blockFrameRuns(scenario: Scenario): { pfn: Pfn; count: number }[] {
  const free = directMapOnlyRuns(scenario, 'free');
  return free.length > 0 ? free : directMapOnlyRuns(scenario, 'data');
}

/**
 * Turns block sketches into commands. It keeps the lifecycles open in the sequence and
 * the frames its blocks took, so frames are not shared and an ending names what its start
 * took. Deterministic: the same sketches give the same commands.
 */
/** What the sequence offers the workload blocks: the capabilities, and the pid its next createProcess gets. */
export interface WorkloadOffer {
  readonly isolation: boolean;
  readonly clients: boolean;
  readonly nextPid: () => number;
}

const NO_WORKLOAD_CAPABILITIES: WorkloadOffer = { isolation: false, clients: false, nextPid: () => 1 };

export class LifecycleResolver {
  private readonly open: OpenLifecycle[] = [];
  private readonly runs: { pfn: Pfn; count: number }[];
  private readonly pageOffset: Vpn;
  private readonly vmallocStart: Vpn;
  private readonly startsFree: boolean;
  private readonly cpus: number;
  private readonly work: WorkloadContext;
  private blocks = 0;
  /**
   * The workload's frames: a bump pointer over the upper half of the largest takeable run,
   * 2M steps, so a block's areas never share a frame with another open block (the
   * lifecycles above take theirs from the runs' starts, the clients' from their ends).
   */
  private readonly workZone: { readonly pfn: Pfn; readonly end: Pfn } | undefined;
  private workNext = 0;

  constructor(scenario: Scenario, offer: WorkloadOffer = NO_WORKLOAD_CAPABILITIES) {
    ({ pageOffset: this.pageOffset, vmallocStart: this.vmallocStart } = kernelLayout(scenario.config.levels));
    this.cpus = scenario.config.cpus;
    this.runs = blockFrameRuns(scenario);
    this.startsFree = scenario.frames.some((r) => r.use === 'free');
    const largest = this.runs.reduce<{ pfn: Pfn; count: number } | undefined>((a, r) => (a === undefined || r.count > a.count ? r : a), undefined);
    this.workZone = largest === undefined ? undefined : { pfn: Math.ceil((largest.pfn + largest.count / 2) / 512) * 512, end: largest.pfn + largest.count };
    this.workNext = this.workZone?.pfn ?? 0;
    this.work = {
      scenario, ...offer,
      take: (count) => this.takeWorkFrames(count),
      allocate: (pfn, count) => this.allocate(pfn, count),
      resetPermsFree: (area) => this.resetPermsFree(area),
    };
  }

  /** The lifecycles open now (for tests and for the arbitrary's bookkeeping). */
  get opened(): readonly OpenLifecycle[] {
    return this.open;
  }

  /** The commands of one block (empty when the scenario has no frame a block can take). */
  block(s: BlockSketch): Command[] {
    const k = this.open.findIndex((o) => o.kind === s.kind);
    if (s.end && k >= 0) return this.end(this.open.splice(k, 1)[0]!);
    return this.start(s);
  }

  /** Frames for a block of `count` (2M-aligned: a 2M folio or pack can be a huge leaf), by the sketch's `at`. */
  private frames(at: number, count: number): Pfn | undefined {
    if (this.runs.length === 0) return undefined;
    const r = this.runs[at % this.runs.length]!;
    // 2M-aligned inside the run, one stride per block: a 2M folio can be a huge leaf elsewhere.
    const first = Math.ceil(r.pfn / 512) * 512;
    const slots = Math.max(1, Math.floor((r.pfn + r.count - first - count) / FRAME_STRIDE));
    return first + ((this.blocks + Math.floor(at / this.runs.length)) % slots) * FRAME_STRIDE;
  }

  /** The next 2M-aligned frames of the workload's zone for `count` frames; the zone wraps around when used up. */
  private takeWorkFrames(count: number): Pfn | undefined {
    const zone = this.workZone;
    if (zone === undefined || zone.pfn + count > zone.end) return undefined;
    if (this.workNext + count > zone.end) this.workNext = zone.pfn;
    const pfn = this.workNext;
    this.workNext += Math.ceil(count / 512) * 512;
    return pfn;
  }

  /** The commands that hand frames to a block: with no free frame in the scenario, the allocator gets them back first. */
  private allocate(pfn: Pfn, count: number): Command[] {
    return [...(this.startsFree ? [] : [{ op: 'freeFrames', pfn, count } as const]), { op: 'allocFrames', pfn, count }];
  }

  private start(s: BlockSketch): Command[] {
    if (PROBES.has(s.kind)) return this.probe(s);
    if (isWorkloadKind(s.kind)) {
      this.blocks++;
      const started = startWork(s.kind, this.work, this.blocks, s.size, s.at % this.cpus);
      if (started === undefined) return [];
      this.open.push({ kind: s.kind, pfn: started.open.areas[0]!.pfn, count: 0, work: started.open });
      return started.commands;
    }
    const count = s.kind === 'secretmem' ? 1 : s.kind === 'guest_memfd' ? FOLIO_PAGES[s.size % FOLIO_PAGES.length]! : AREA_PAGES[s.size % AREA_PAGES.length]!;
    const pfn = this.frames(s.at, count);
    if (pfn === undefined) return [];
    this.blocks++;
    const alloc = this.allocate(pfn, count);
    if (s.kind !== 'vm_reset_perms') {
      this.open.push({ kind: s.kind, pfn, count });
      return [
        ...alloc,
        { op: 'setDirectMapInvalid', pfn, count, flush: false },
        { op: 'flush', vpn: this.pageOffset + pfn, pages: count },
      ];
    }
    // The area congruent to its frames modulo 2M, so a 2M area of 2M-aligned frames is one leaf.
    const vpn = this.vmallocStart + AREA_BASE_OFFSET + this.blocks * AREA_STRIDE + (pfn % 512);
    this.open.push({ kind: s.kind, pfn, count, vpn });
    return [
      ...alloc,
      { op: 'map', root: INIT_MM, vpn, pfn, pages: count, prot: PAGE_KERNEL },
      // set_memory_rox: read-only and executable, the direct-map alias read-only (execmem).
      ...(s.rox ? [{ op: 'protect', vpn, pages: count, change: { write: false, exec: true }, alias: true, collapse: true } as const] : []),
    ];
  }

  /** A probe's commands, in a fresh 2M block of the vmalloc area over a fresh 2M of frames. */
  private probe(s: BlockSketch): Command[] {
    const pfn = this.frames(s.at, 512);
    if (pfn === undefined) return [];
    this.blocks++;
    const v = this.vmallocStart + AREA_BASE_OFFSET + this.blocks * AREA_STRIDE;
    const cpu = s.at % this.cpus;
    const read = (vpn: Vpn, kind: 'r' | 'w' = 'r'): Command => ({ op: 'access', cpu, root: INIT_MM, vpn, kind, mode: 'kernel' });
    const map4k = (vpn: Vpn, pages: number): Command => ({ op: 'map', root: INIT_MM, vpn, pfn: pfn + (vpn - v), pages, prot: PAGE_KERNEL, maxPage: '4K' });
    // A scenario with free frames: the probe's frames are allocated first (a free frame mapped is D4).
    const alloc: Command[] = this.startsFree ? [{ op: 'allocFrames', pfn, count: 512 }] : [];
    if (s.kind === 'cpa_alias') {
      const alias = this.pageOffset + pfn;
      return [
        ...alloc,
        { op: 'map', root: INIT_MM, vpn: v, pfn, pages: 1, prot: PAGE_KERNEL_RO, maxPage: '4K' },
        read(alias, 'w'),
        { op: 'protect', vpn: v, pages: 1, change: { write: false }, alias: true },
        read(alias, 'w'),
      ];
    }
    if (s.kind === 'lazy_vfree_reuse') {
      return [
        ...alloc, map4k(v + 7, 1), read(v + 7),
        { op: 'unmap', root: INIT_MM, vpn: v + 7, pages: 1, flush: false },
        { op: 'map', root: INIT_MM, vpn: v, pfn, pages: 512, prot: PAGE_KERNEL },
        read(v + 9), read(v + 7),
      ];
    }
    return [
      ...alloc, map4k(v, 2), read(v),
      { op: 'unmap', root: INIT_MM, vpn: v, pages: 2, flush: false },
      map4k(v + 2, 1), read(v + 2), read(v),
    ];
  }

  private end(o: OpenLifecycle): Command[] {
    if (isWorkloadKind(o.kind)) return endWork(o.kind, this.work, o.work!);
    if (o.kind === 'vm_reset_perms') return this.resetPermsFree({ vpn: o.vpn!, pfn: o.pfn, pages: o.count });
    return this.restore(o.pfn, o.count);
  }

  /** set_direct_map_default_noflush, then the frames freed. */
  private restore(pfn: Pfn, count: number): Command[] {
    return [
      { op: 'setDirectMapDefault', pfn, count, flush: false },
      { op: 'freeFrames', pfn, count },
    ];
  }

  /** vfree of a VM_FLUSH_RESET_PERMS area: vunmap without a flush, then vm_reset_perms and the free. */
  private resetPermsFree(a: Area): Command[] {
    const flush = coveringRange({ vpn: this.pageOffset + a.pfn, pages: a.pages }, a);
    return [
      { op: 'unmap', root: INIT_MM, vpn: a.vpn, pages: a.pages, flush: false },
      { op: 'setDirectMapInvalid', pfn: a.pfn, count: a.pages, flush: false },
      { op: 'flush', vpn: flush.vpn, pages: flush.pages },
      ...this.restore(a.pfn, a.pages),
    ];
  }
}

/** One step as the recognizer sees it: the command and whether it succeeded. */
export interface RanStep {
  readonly command: Command;
  readonly ok: boolean;
}

/** The coverage rule of each block half, by the steps it ends with (see `completedBlock`). */
export const LIFECYCLE_RULES = [
  'lifecycle-secretmem', 'lifecycle-secretmem-free', 'lifecycle-guest_memfd', 'lifecycle-guest_memfd-restore', 'lifecycle-vm_reset_perms',
] as const;
export type LifecycleRule = (typeof LIFECYCLE_RULES)[number];

/** How many steps back `completedBlock` looks. */
export const LIFECYCLE_WINDOW = 5;

/**
 * The block half that the last of `recent` (oldest first) completed, every step of it
 * successful, or undefined. Recognized by its calls alone, so a block met in a stored
 * trace, or written by hand, counts as well as a generated one.
 */
export function completedBlock(recent: readonly RanStep[], pageOffset: Vpn): LifecycleRule | undefined {
  const at = (back: number): Command | undefined => {
    const s = recent[recent.length - 1 - back];
    return s !== undefined && s.ok ? s.command : undefined;
  };
  const last = at(0);
  if (last === undefined) return undefined;
  if (last.op === 'flush') {
    // The fault half: allocFrames; setDirectMapInvalid noflush; flush of the direct-map pages.
    const inv = at(1);
    const alloc = at(2);
    if (inv?.op !== 'setDirectMapInvalid' || inv.flush || alloc?.op !== 'allocFrames') return undefined;
    if (alloc.pfn !== inv.pfn || alloc.count !== inv.count || last.vpn !== pageOffset + inv.pfn || last.pages !== inv.count) return undefined;
    return inv.count === 1 ? 'lifecycle-secretmem' : 'lifecycle-guest_memfd';
  }
  if (last.op !== 'freeFrames') return undefined;
  const def = at(1);
  if (def?.op !== 'setDirectMapDefault' || def.flush || def.pfn !== last.pfn || def.count !== last.count) return undefined;
  const flush = at(2);
  const inv = at(3);
  const unmap = at(4);
  if (flush?.op === 'flush' && inv?.op === 'setDirectMapInvalid' && !inv.flush && inv.pfn === last.pfn && inv.count === last.count
    && unmap?.op === 'unmap' && unmap.flush === false && unmap.pages === last.count) {
    const dm = pageOffset + last.pfn;
    const covers = (vpn: Vpn): boolean => flush.vpn <= vpn && vpn + last.count <= flush.vpn + flush.pages;
    if (covers(dm) && covers(unmap.vpn)) return 'lifecycle-vm_reset_perms';
  }
  return last.count === 1 ? 'lifecycle-secretmem-free' : 'lifecycle-guest_memfd-restore';
}
