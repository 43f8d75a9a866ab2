/**
 * The abstract state: what a page-table system means, independent of how its tables are
 * laid out. Model and impl are related only through this (the impl's abstraction
 * function produces it; the model is kept in a form that maps to it directly), and
 * every invariant in the catalogue is a predicate over it, so the same check applies to
 * the model, the impl and a parsed kernel dump.
 */
import type { ClientState } from './clients.ts';
import type { Level, PageSize, PagingLevels, Pfn, Vpn } from './address.ts';

/** Memory types. x86 encodes them with PWT/PCD/PAT through the PAT MSR; arm64 with MAIR. */
export type CacheMode = 'WB' | 'WC' | 'UC-' | 'UC' | 'WT' | 'WP';
/** The memory types in their fixed order. Trusted: shared vocabulary of model and impl, not checked by refinement. */
export const CACHE_MODES: readonly CacheMode[] = ['WB', 'WC', 'UC-', 'UC', 'WT', 'WP'];

/**
 * The PAT MSR as the kernel programs it (arch/x86/mm/pat/memtype.c, pat_bp_init): PA0 WB,
 * PA1 WC, PA2 UC-, PA3 UC, PA4 WB, PA5 WP, PA6 UC-, PA7 WT; an entry's index is
 * PAT*4 + PCD*2 + PWT. The one copy of this table: the impl's entry encoding and the
 * ptdump reader both decode cache modes with it. Trusted vocabulary.
 */
export const X86_KERNEL_PAT: readonly CacheMode[] = ['WB', 'WC', 'UC-', 'UC', 'WB', 'WP', 'UC-', 'WT'];

/**
 * Effective permission of a leaf: the combination over the whole walk, not the leaf's
 * own bits (W and user are ANDed over levels; x86 NX is ORed). Execute rights are split
 * by privilege because arm64 has PXN and UXN separately; on x86, with a single NX bit,
 * `execUser` is `user && execKernel` (see `x86Representable`). Readability is implied by
 * presence on both architectures' kernel mappings, so it is not a field.
 */
export interface Prot {
  readonly write: boolean;
  readonly user: boolean;
  readonly execKernel: boolean;
  readonly execUser: boolean;
  readonly global: boolean;
  readonly cache: CacheMode;
  /**
   * _PAGE_KERNEL_4K (arch/x86/include/asm/pgtable_types.h, software bit 11): the page was
   * made 4K on purpose (set_memory_4k) and must never be collapsed into a large leaf
   * (collapse_pmd_page). Absent means clear. Not a permission: the MMU ignores it.
   */
  readonly kernel4k?: boolean;
}

/** x86 has one NX bit: user execute right follows from user access and kernel execute. */
export function x86Representable(p: Prot): boolean {
  return p.execUser === (p.user && p.execKernel);
}

export function protEquals(a: Prot, b: Prot): boolean {
  return (
    a.write === b.write &&
    a.user === b.user &&
    a.execKernel === b.execKernel &&
    a.execUser === b.execUser &&
    a.global === b.global &&
    a.cache === b.cache &&
    (a.kernel4k === true) === (b.kernel4k === true)
  );
}

/** ptdump-like text: `RW USR GLB x WB`. */
export function protToString(p: Prot): string {
  const x = p.execKernel ? (p.execUser ? 'x' : 'xk') : p.execUser ? 'xu' : 'NX';
  return [p.user ? 'USR' : '', p.write ? 'RW' : 'ro', p.global ? 'GLB' : '', x, p.cache, p.kernel4k === true ? 'keep4K' : ''].filter(Boolean).join(' ');
}

/** Kernel protections by their kernel names (arch/x86/include/asm/pgtable_types.h). */
const kernelProt = (write: boolean, exec: boolean): Prot => ({
  write, user: false, execKernel: exec, execUser: false, global: true, cache: 'WB',
});
/** RW, NX. Trusted: shared vocabulary of model and impl, not checked by refinement. */
export const PAGE_KERNEL: Prot = kernelProt(true, false);
/** RW, executable. Trusted: shared vocabulary of model and impl, not checked by refinement. */
export const PAGE_KERNEL_EXEC: Prot = kernelProt(true, true);
/** Read-only, NX. Trusted: shared vocabulary of model and impl, not checked by refinement. */
export const PAGE_KERNEL_RO: Prot = kernelProt(false, false);
/** Read-only, executable. Trusted: shared vocabulary of model and impl, not checked by refinement. */
export const PAGE_KERNEL_ROX: Prot = kernelProt(false, true);

/** One leaf of the abstract map: `pages(size)` 4 KiB pages at `vpn` translate to `pfn`. */
export interface Leaf {
  readonly vpn: Vpn;
  readonly pfn: Pfn;
  readonly size: PageSize;
  readonly prot: Prot;
}

/**
 * What a physical frame is used for. `absent`: no memory at this frame, an address-space
 * hole of the e820 map (the PCI hole below 4 GiB) or hot-pluggable space not added yet
 * (add_memory makes it free, remove_memory absent again); the allocator never hands it
 * out and the direct map never maps it (D8).
 */
export type FrameUse = 'free' | 'pagetable' | 'kernel-text' | 'kernel-rodata' | 'kernel-data' | 'data' | 'user' | 'absent';
export const FRAME_USES: readonly FrameUse[] = ['free', 'pagetable', 'kernel-text', 'kernel-rodata', 'kernel-data', 'data', 'user', 'absent'];

/** A run of frames with one use and one set of flags. */
export interface FrameRun {
  readonly pfn: Pfn;
  readonly count: number;
  readonly use: FrameUse;
  /** ASI: must never be mapped in a restricted root. */
  readonly sensitive: boolean;
  /** Removed from the direct map (secretmem, guest_memfd). */
  readonly noDirectMap: boolean;
  /**
   * The memory type reserved for these RAM frames (the linux profile's memtype_reserve
   * through set_memory_uc / set_memory_wc: reserve_ram_pages_type keeps it in the page
   * flags, arch/x86/mm/pat/memtype.c). Absent means WB, the default nothing reserved;
   * set_memory_wb frees it. Always absent under strict.
   */
  readonly memtype?: 'WC' | 'UC-';
}

/**
 * Whether two runs state the same facts (use and every flag), i.e. would merge when they
 * touch (invariant S8). Trusted: shared vocabulary of model and impl, not checked by refinement.
 */
export function sameFrameFacts(a: Omit<FrameRun, 'pfn' | 'count'>, b: Omit<FrameRun, 'pfn' | 'count'>): boolean {
  return a.use === b.use && a.sensitive === b.sensitive && a.noDirectMap === b.noDirectMap && a.memtype === b.memtype;
}

/**
 * Address spaces (spec/roots.ts). The kernel half of every process's pgd is init_mm's
 * tables, shared on purpose; a KPTI user copy takes its kernel half from swapper_pg_dir's
 * user half (`kernel-user`, root 1), which holds only the cloned, allowlisted ranges; an
 * ASI restricted root (`asi`) takes its kernel half from asi_global_nonsensitive_pgd
 * (`asi-global`, root 2), which maps only nonsensitive memory.
 */
export type RootKind = 'kernel' | 'process-kernel' | 'process-user' | 'asi' | 'kernel-user' | 'asi-global';

export type RootId = number;
/** init_mm's pgd: always root 0. Trusted: shared vocabulary of model and impl, not checked by refinement. */
export const INIT_MM: RootId = 0;

export interface AbstractRoot {
  readonly id: RootId;
  readonly kind: RootKind;
  /** Owning process, for process roots. */
  readonly pid?: number;
  /**
   * Leaves sorted by vpn, pairwise disjoint: the root's own, outside the top-level slots
   * it mirrors from another root (spec/roots.ts `mirrorsOf`; `rootView` is what it
   * translates). Roots 0 (init_mm), 1 and 2 mirror nothing.
   */
  readonly leaves: readonly Leaf[];
  /**
   * The first pages of the top-level slots this root should mirror but does not (its
   * entry there is not the source's: a missing pgd sync, invariant K4); its own leaves in
   * them are listed. Sorted; absent means none.
   */
  readonly diverged?: readonly Vpn[];
  /**
   * Non-present entries that keep a frame and attributes (set_memory_np in both
   * profiles, and the linux profile's set_direct_map_invalid_noflush): sorted by vpn,
   * disjoint from each other and from the leaves. They translate nothing and no TLB
   * caches them, but they occupy their table slots. Absent means none.
   */
  readonly nonPresent?: readonly Leaf[];
}

/** A cached translation in one CPU's TLB. */
export interface TlbEntry {
  readonly cpu: number;
  readonly root: RootId;
  readonly leaf: Leaf;
}

/**
 * What a paging-structure-cache entry's table is now (spec/contracts/flush.ts, "Paging-structure caches"):
 *   current   the table the walk through memory reaches at that position (the cache is harmless);
 *   unlinked  no longer linked there, but not yet freed: it waits on the deferred-free list
 *             for a flush, and a walk through it finds nothing (a table is unlinked only empty,
 *             or by an operation that flushes before it returns);
 *   freed     returned to the pool while this CPU still caches it: the frame may already hold
 *             another table or data (invariant L4 forbids the state).
 */
export type CachedTableState = 'current' | 'unlinked' | 'freed';
/** The cached-table states. Trusted: shared vocabulary of model and impl, not checked by refinement. */
export const CACHED_TABLE_STATES: readonly CachedTableState[] = ['current', 'unlinked', 'freed'];

/**
 * One entry of one CPU's paging-structure caches (Intel SDM vol. 3 §4.10.3: the PML4, PDPTE
 * and PDE caches): a non-leaf entry of `root`, cached by a walk, that points to the level-`level`
 * table covering [vpn, vpn + pagesPerEntry(level + 1)). level 1 is a PTE table (reached
 * through a pmd entry), 2 a PMD table (through a pud entry), up to levels - 1; the root table
 * itself is CR3, never cached. A later walk on that CPU starts from the deepest such entry,
 * so a freed table can still be walked through until a flush empties the caches.
 */
export interface WalkCacheEntry {
  readonly cpu: number;
  readonly root: RootId;
  readonly level: Level;
  /** The first page the table covers (aligned to its span). */
  readonly vpn: Vpn;
  readonly table: CachedTableState;
}

/** A TLB flush the system owes: set by `*_noflush` operations and deferred table frees. */
export interface FlushObligation {
  readonly vpn: Vpn;
  readonly pages: number;
  readonly reason: string;
}

export interface CpuFeatures {
  /** 2 MiB pages (CPUID PSE); without it no PMD leaves. */
  readonly pse: boolean;
  /** 1 GiB pages (CPUID PDPE1GB); without it no PUD leaves. */
  readonly gbpages: boolean;
}

export interface SystemConfig {
  readonly levels: PagingLevels;
  readonly features: CpuFeatures;
  readonly cpus: number;
  /** MAXPHYADDR: physical address bits; PFNs are below 2^(maxPhysBits-12). */
  readonly maxPhysBits: number;
  /** Frames of simulated physical memory (pfn 0 .. frames-1). */
  readonly frames: number;
  /** First frame of the pool that page tables are allocated from, and its size. */
  readonly tablePool: { readonly pfn: Pfn; readonly count: number };
}

export interface AbstractState {
  readonly config: SystemConfig;
  /** Sorted by pfn, covering 0 .. config.frames-1 without gaps. */
  readonly frames: readonly FrameRun[];
  readonly roots: readonly AbstractRoot[];
  readonly tlb: readonly TlbEntry[];
  /**
   * Every CPU's paging-structure caches, in canonical order (cpu, root, level, vpn). Absent
   * means none (a parsed dump; a system that has cached no walk).
   */
  readonly walkCache?: readonly WalkCacheEntry[];
  readonly pendingFlush: readonly FlushObligation[];
  /** Page tables in use (the radix footprint of the maps, plus tables awaiting a flush). */
  readonly tablesInUse: number;
  /** Tables unlinked but not yet reusable: they wait for a TLB flush. */
  readonly pendingTableFrees: number;
  /** The clients' bookkeeping (spec/clients.ts), with the clients capability; absent without it. */
  readonly clients?: ClientState;
}
