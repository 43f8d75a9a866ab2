/**
 * The operations every page-table system offers, model and impl alike (docs/ARCHITECTURE.md,
 * "How to add an operation"). Addresses are page numbers and lengths page counts (spec/address.ts).
 * Every operation returns a `Result`; a failed operation changes nothing, and model and
 * impl must agree on the result and on the errno.
 *
 * The contracts (preconditions with their errno, postconditions on the abstract state)
 * live in spec/contracts/ beside the operation they pin down.
 */
import type { Level, PageSize, Pfn, Vpn } from './address.ts';
import type { Result } from './errors.ts';
import type { AbstractState, CacheMode, FrameRun, Leaf, Prot, RootId, SystemConfig } from './state.ts';

export interface MapOptions {
  /** Largest leaf size `map` may use (vmap's `max_page_shift`, ioremap's huge-page control). */
  readonly maxPage?: PageSize;
}

/**
 * A `set_memory_*` request: each field present is set, each absent field is kept.
 * `exec` sets execute for every privilege that can access the page (x86 NX semantics):
 * set_memory_x = { exec: true }, set_memory_nx = { exec: false },
 * set_memory_ro = { write: false }, set_memory_rw = { write: true },
 * set_memory_wc = { cache: 'WC' }, set_memory_uc = { cache: 'UC-' }, set_memory_wb = { cache: 'WB' },
 * set_memory_global = { global: true }, set_memory_nonglobal = { global: false },
 * set_memory_p = { present: true }, set_memory_np = { present: false } (with alias: false,
 * set_memory_np_noalias), set_memory_4k = { kernel4k: true },
 * set_memory_rox = { write: false, exec: true } with ProtectOptions.collapse.
 */
export interface ProtChange {
  readonly write?: boolean;
  readonly exec?: boolean;
  readonly global?: boolean;
  readonly cache?: CacheMode;
  /** The P bit: false turns entries into non-present ones that keep frame and attributes; true makes them present again. */
  readonly present?: boolean;
  /** set_memory_4k: only `true`; every entry of the range is split down to 4K and marked Prot.kernel4k. */
  readonly kernel4k?: boolean;
}

export interface ProtectOptions {
  /**
   * cpa_process_alias (the kernel's default; false is CPA_NO_CHECK_ALIAS). Strict
   * propagates only write and cache to the direct-map alias; linux propagates every
   * mask but NX to the direct-map and high-map aliases (spec/contracts/linux.ts).
   */
  readonly alias?: boolean;
  /** CPA_COLLAPSE (set_memory_rox): afterwards collapse the range's 2M blocks, and 1G blocks around them, where possible. */
  readonly collapse?: boolean;
}

export interface FlushOptions {
  /** false = the `_noflush` variant: the caller owes a flush (a pending obligation). */
  readonly flush: boolean;
}

/** PTI clones at PMD granularity (whole 2 MiB entries) or PTE granularity. */
export type CloneLevel = 'pmd' | 'pte';

export interface ProcessRoots {
  readonly pid: number;
  /** The kernel copy (the pgd the kernel runs on while in this process). */
  readonly kernelRoot: RootId;
  /** The KPTI user copy (what user mode runs on). */
  readonly userRoot: RootId;
  /** The ASI restricted root (spec/roots.ts processRootIds). */
  readonly asiRoot: RootId;
}

export interface Translation {
  readonly leaf: Leaf;
  /** The frame `vpn` itself maps to (leaf.pfn + offset in the leaf). */
  readonly pfn: Pfn;
}

export type AccessKind = 'r' | 'w' | 'x';
export type AccessMode = 'kernel' | 'user';
export type AccessOutcome =
  | { readonly fault: false; readonly translation: Translation; readonly fromTlb: boolean }
  | { readonly fault: 'not-present' | 'protection' };

export interface PageTableSystem {
  readonly config: SystemConfig;
  /** The semantics it follows (SystemSetup.profile; strict when absent). */
  readonly profile?: Profile;

  /** vmap / ioremap / direct-map init: map [vpn, vpn+pages) to [pfn, pfn+pages). */
  map(root: RootId, vpn: Vpn, pfn: Pfn, pages: number, prot: Prot, opts?: MapOptions): Result<void>;
  /**
   * vunmap / zap: remove every mapping in the range; strict frees emptied tables after the
   * flush, linux keeps them. `{flush: false}` is vunmap_range_noflush (the lazy vunmap of
   * vfree): the range is owed a flush and strict's emptied tables wait for it. Absent: flush.
   */
  unmap(root: RootId, vpn: Vpn, pages: number, opts?: FlushOptions): Result<void>;
  /** change_page_attr_set_clr on init_mm (set_memory_*). */
  protect(vpn: Vpn, pages: number, change: ProtChange, opts?: ProtectOptions): Result<void>;
  /** set_direct_map_invalid_noflush and its flushing form, for `count` frames. */
  setDirectMapInvalid(pfn: Pfn, count: number, opts: FlushOptions): Result<void>;
  /** set_direct_map_default_noflush and its flushing form. */
  setDirectMapDefault(pfn: Pfn, count: number, opts: FlushOptions): Result<void>;
  /** split_large_page: turn the leaf containing vpn into 512 leaves of the next size down. */
  split(root: RootId, vpn: Vpn): Result<void>;
  /** collapse_large_pages: turn the table covering vpn at `size` into one leaf of that size. */
  collapse(root: RootId, vpn: Vpn, size: '2M' | '1G'): Result<void>;
  /**
   * KPTI, ASI and per-process roots. A capability: a system that does not model process
   * address spaces leaves it undefined, and the fuzzer then generates none of these
   * operations for it.
   */
  readonly isolation?: IsolationOps;
  /**
   * The kernel's page-table users (spec/contracts/clients.ts): vmalloc with its lazy
   * purge, kmap_local, the mermap, the __GFP_UNMAPPED pool, apply_to_page_range and the
   * pagewalk. A capability like `isolation`: a system without it gets none of these
   * operations from the fuzzer.
   */
  readonly clients?: ClientOps;
  /** The page walk, without the TLB. ENOENT when not mapped. */
  translate(root: RootId, vpn: Vpn): Result<Translation>;
  /** One memory access by the MMU on `cpu`: uses and fills that CPU's TLB. */
  access(cpu: number, root: RootId, vpn: Vpn, kind: AccessKind, mode: AccessMode): Result<AccessOutcome>;
  /** flush_tlb_kernel_range: all CPUs, discharges obligations in the range. */
  flush(vpn: Vpn, pages: number): Result<void>;
  /** flush_tlb_all: empties every TLB, discharges every obligation, releases deferred table frees. */
  flushAll(): Result<void>;
  /**
   * flush_tlb_one_kernel on one CPU, page by page (kmap_local's and the mermap's CPU-local
   * flush): only that CPU's TLB entries meeting the range and its paging-structure caches
   * go; obligations and pending tables stay (the other CPUs still owe it).
   */
  flushLocal(cpu: number, vpn: Vpn, pages: number): Result<void>;
  /** The page allocator hands out `count` free frames (alloc_pages): they become `data`. */
  allocFrames(pfn: Pfn, count: number): Result<void>;
  /** __free_pages of `count` data frames: they become `free` (strict refuses what would break D4 or D6). */
  freeFrames(pfn: Pfn, count: number): Result<void>;

  /** The abstraction function: what this system's state means. */
  abstract(): AbstractState;

  /**
   * An independent system in the same state: what either does afterwards never changes
   * the other (abstract(), results, what takeEvents gives next). Optional: a campaign
   * boots the scenario once and forks the booted systems for each sequence; a system
   * without it is booted afresh for every sequence.
   */
  fork?(): PageTableSystem;

  /**
   * What the kernel printed during the operations since the last call (linux profile:
   * CPA's warnings and static-protection fix-ups, spec/contracts/linux.ts), in order,
   * and forgets them. Refinement compares them with the model's. A strict system, or one
   * without the method, prints nothing.
   */
  takeEvents?(): readonly KernelEvent[];
}

/**
 * The semantics a system follows: `strict` is the library ptspec proposes (refuse with
 * EPERM, atomic); `linux` is today's kernel as its source reads (spec/contracts/linux.ts).
 */
export type Profile = 'strict' | 'linux';
/** The profiles, strict first. Trusted: shared vocabulary of model and impl, not checked by refinement. */
export const PROFILES: readonly Profile[] = ['strict', 'linux'];

/**
 * One thing the kernel prints (spec/contracts/linux.ts names when):
 *   static-protection  check_conflict's "CPA protect/conflict <rule>" line: static_protections removed `rule`'s bit;
 *   conflict           __should_split_large_page's WARN_ON_ONCE: an existing large entry breaks a static protection;
 *   pud-fixup          split_set_pte's "Cannot fixup static protections for PUD split" (once);
 *   wx                 verify_rwx's WARN_ONCE "CPA detected W^X violation";
 *   zero-pte           __cpa_process_fault's WARN "CPA: called for zero pte";
 *   vunmap-huge        vunmap_pmd/pud_range's WARN_ON: a huge leaf cleared whole by a smaller range;
 *   vunmap-nonpresent  vunmap_pte_range's WARN_ON: it cleared a non-present PTE;
 *   bad-entry          pmd/pud_clear_bad's "bad pmd/pud" print: vunmap met a non-present large entry;
 *   asi-level          asi_map's WARN_ONCE "ASI mapping at level %d, unrestricted at %d": a block
 *                      init_mm maps finer than the restricted physmap, skipped;
 *   apply-huge         apply_to_pmd/pud_range's WARN_ON_ONCE(p?d_leaf): apply_to_page_range met a
 *                      huge leaf (its range) and failed with EINVAL;
 *   vfree-nonexistent  vfree's WARN "Trying to vfree() nonexistent vm area": no area starts there;
 *   vmemmap-no-altmap  vmemmap_populate's pr_err_once "no cpu support for altmap allocations": a
 *                      hot-added block's memmap on a CPU without PSE (its struct pages' range);
 *   add-pages-failed   add_pages' WARN_ON_ONCE(ret): __add_pages failed after init_memory_mapping
 *                      mapped the block, whose direct map stays (the block's range).
 * The range is the one the kernel prints (the step's pages and first frame).
 */
export interface KernelEvent {
  readonly kind:
    | 'static-protection' | 'conflict' | 'pud-fixup' | 'wx' | 'zero-pte' | 'vunmap-huge' | 'vunmap-nonpresent' | 'bad-entry' | 'asi-level'
    | 'apply-huge' | 'vfree-nonexistent' | 'vmemmap-no-altmap' | 'add-pages-failed';
  /** static-protection only: 'Text NX', 'Text RO' or 'Rodata RO'. */
  readonly rule?: 'Text NX' | 'Text RO' | 'Rodata RO';
  readonly vpn: Vpn;
  readonly pages: number;
  readonly pfn: Pfn;
}

/**
 * KPTI (arch/x86/mm/pti.c), the LDT remap (arch/x86/kernel/ldt.c), ASI and process address
 * spaces: the contracts are spec/contracts/isolation.ts, the roots spec/roots.ts.
 */
export interface IsolationOps {
  /** pti_clone_pgtable: clone [vpn, vpn+pages) of init_mm into swapper_pg_dir's user half, the kernel half of every user copy. */
  ptiClone(vpn: Vpn, pages: number, level: CloneLevel): Result<void>;
  /** asi_map: copy a pageblock-aligned direct-map range into the ASI global root (nonsensitive). */
  asiMap(vpn: Vpn, pages: number): Result<void>;
  /** asi_unmap: remove it again, with a kernel range flush. */
  asiUnmap(vpn: Vpn, pages: number): Result<void>;
  /** mm_alloc + pgd_alloc: a process with its KPTI pair and its ASI root. */
  createProcess(): Result<ProcessRoots>;
  /** exit_mmap + pgd_free + destroy_context_ldt. */
  exitProcess(pid: number): Result<void>;
  /** mmap and the fault path: user half of both KPTI copies (NX-poisoned in the kernel copy). */
  mapUser(pid: number, vpn: Vpn, pfn: Pfn, pages: number, prot: Prot): Result<void>;
  /** munmap: zap, flush_tlb_mm_range, free_pgtables. */
  unmapUser(pid: number, vpn: Vpn, pages: number): Result<void>;
  /** modify_ldt's write_ldt: map a new LDT of `pages` frames in the free LDT slot, install it, unmap, flush and free the old one. */
  setLdt(pid: number, pfn: Pfn, pages: number): Result<void>;
}

/** vmalloc's flags that change what its page tables go through (mm/vmalloc.c). */
export interface VmallocOptions {
  /** VM_ALLOW_HUGE_VMAP: 2M leaves (the area, its VA and its frames 2M-aligned). */
  readonly huge: boolean;
  /** VM_FLUSH_RESET_PERMS: vfree resets the direct map of the pages and flushes before freeing them. */
  readonly resetPerms: boolean;
}

/**
 * One callback of the page walk (mm/pagewalk.c walk_kernel_page_table_range), in walk order:
 *   table     p?d_entry of a non-leaf entry the walk descends through (level = the entry's table's level + 1);
 *   leaf      p?d_entry of a huge leaf, or pte_entry of a present PTE (level 1);
 *   nonpresent  the same for a non-present entry that keeps a frame (set_memory_np);
 *   hole      pte_hole of a none entry above PTE level, its part inside the walk's range;
 *   none      pte_entry of none PTEs: a run of consecutive ones in one PTE table.
 * `level` is the level of the table holding the entry (1 a PTE, 2 a pmd entry, 3 a pud entry, 4 the
 * pgd with 4-level paging or the p4d with 5-level, 5 the pgd). Entries are clipped to the walk's
 * range: `vpn` and `pages` are the part inside it. Holes are one visit per none entry; none
 * PTEs of one PTE table that follow each other are one `none` visit.
 */
export interface WalkVisit {
  readonly kind: 'table' | 'leaf' | 'nonpresent' | 'hole' | 'none';
  readonly level: Level;
  readonly vpn: Vpn;
  readonly pages: number;
  /** leaf and nonpresent: the frame of the entry's first page inside the range. */
  readonly pfn?: Pfn;
}

/**
 * The kernel's page-table users as clients of the library (spec/contracts/clients.ts,
 * the bookkeeping spec/clients.ts). All of them edit init_mm.
 */
export interface ClientOps {
  /** vmalloc (__vmalloc_node_range): allocate frames [pfn, +pages) and map them at [vpn, +pages) in the vmalloc area. */
  vmalloc(vpn: Vpn, pfn: Pfn, pages: number, opts: VmallocOptions): Result<void>;
  /** vfree of the area at vpn: unmap without a flush, lazily free the VA, free the pages (when, per profile). */
  vfree(vpn: Vpn): Result<void>;
  /** vm_unmap_aliases: purge every lazily freed area now, with one flush. */
  vmUnmapAliases(): Result<void>;
  /** kmap_local_page on `cpu`: the address the page is reachable at until kunmapLocal. */
  kmapLocal(cpu: number, pfn: Pfn): Result<Vpn>;
  /** kunmap_local on `cpu`. */
  kunmapLocal(cpu: number, vpn: Vpn): Result<void>;
  /** mermap_get on `cpu`: a CPU-local ephemeral mapping of [pfn, +pages); may fail. */
  mermapGet(cpu: number, pfn: Pfn, pages: number): Result<Vpn>;
  /** mermap_put: clear it, without a flush. */
  mermapPut(cpu: number, vpn: Vpn): Result<void>;
  /** alloc_pages(__GFP_UNMAPPED): hand out [pfn, +count) from the unmapped pool, taking free pageblocks out of the direct map as needed. */
  allocUnmapped(pfn: Pfn, count: number): Result<void>;
  /** apply_to_page_range with a populate callback: allocate the tables down to PTE level, set every none PTE of the range to its frame. */
  applyToPageRange(vpn: Vpn, pages: number, pfn: Pfn, prot: Prot): Result<void>;
  /** walk_kernel_page_table_range over init_mm: the callbacks it makes, in order. */
  walkPageRange(vpn: Vpn, pages: number): Result<readonly WalkVisit[]>;
  /**
   * zap_page_range_single through an mmu_gather: unmap [vpn, +pages) of process pid's user
   * half, gather the pages and tables, one flush, then free them. Needs the isolation
   * capability too (processes).
   */
  zapPageRange(pid: number, vpn: Vpn, pages: number): Result<void>;
  /**
   * add_memory of whole memory blocks of absent frames (spec/contracts/hotplug.ts): their
   * direct map, their struct pages in the vmemmap on their own first frames, then online.
   */
  addMemory(pfn: Pfn, count: number): Result<void>;
  /** offline_and_remove_memory of memory blocks addMemory added: vmemmap and direct map removed, one flush_tlb_all, the frames absent again. */
  removeMemory(pfn: Pfn, count: number): Result<void>;
}

/** What a system boots from: the machine and its physical memory. */
export interface SystemSetup {
  readonly config: SystemConfig;
  /**
   * Covering 0 .. config.frames-1; the table pool's frames have use `pagetable`. The runs
   * may come unsorted and unmerged (a scenario lists them as it lays memory out); a system
   * must report them in canonical form in `abstract().frames`: sorted by pfn, adjacent
   * runs with the same use and flags merged, no empty run (invariants S7-S9).
   */
  readonly frames: readonly FrameRun[];
  /** The semantics to follow; strict when absent. */
  readonly profile?: Profile;
  /**
   * Build the isolation capability (spec/contracts/isolation.ts: roots 1 and 2 from boot,
   * processes, KPTI, the LDT remap, ASI). A built-in system leaves `isolation` undefined
   * without it, and has init_mm alone.
   */
  readonly isolation?: boolean;
}

/** A factory, as `--impl MODULE` exports it. */
export type PageTableSystemFactory = (setup: SystemSetup) => PageTableSystem;
