/**
 * The operation table: everything about one operation that is not its semantics, in one
 * entry. The `Command` union (commands.ts) says what its fields are; the entry says what
 * kind of value each field holds (which decides its codec in io/commands.ts, its
 * arbitrary in fuzz/arbitraries.ts and how it prints in fuzz/format.ts), how a command
 * runs on a system, which page ranges it names (the incremental checks of fuzz/scope.ts
 * widen them), whether it can change leaves or frames, the outcomes its contract allows
 * (campaign coverage), the argument its EPERM names, and how the fuzzer weighs it.
 * Adding an operation is one entry here plus its contract (spec/contracts), its
 * semantics in the model and the impl, and its postcondition.
 *
 * Trusted: shared vocabulary, it decides nothing about what an operation does.
 */
import type { PageSize, PagingLevels, Vpn } from './address.ts';
import { KM_MAX_IDX, MEMMAP_PAGES, MEMORY_BLOCK_PAGES, MERMAP_CPU_PAGES, kmapSlotVpn, mermapSlice, vmemmapVpn } from './clients.ts';
import type { Command, Op } from './commands.ts';
import type { Errno, Result } from './errors.ts';
import type { Prot } from './state.ts';
import type { AccessKind, AccessMode, ClientOps, CloneLevel, IsolationOps, PageTableSystem, ProtChange } from './system.ts';

/** The value each field kind holds. A kind, not a type, because two numbers can mean different things. */
export interface FieldTypes {
  root: number;
  /** A kernel-half page number (core operations edit init_mm's kernel half). */
  vpn: number;
  /** A user-half page number (mapUser, unmapUser). */
  userVpn: number;
  pfn: number;
  /** A page count from `vpn`. */
  pages: number;
  /** A frame count from `pfn` (set_direct_map_*). */
  count: number;
  cpu: number;
  pid: number;
  prot: Prot;
  change: ProtChange;
  /** Optional: absent means no cap. */
  maxPage: PageSize;
  hugeSize: '2M' | '1G';
  cloneLevel: CloneLevel;
  accessKind: AccessKind;
  accessMode: AccessMode;
  /** false selects the `_noflush` variant. */
  flush: boolean;
  /** Optional: present false selects the `_noflush` variant (unmap: vunmap_range_noflush); absent flushes. */
  lazy: boolean;
  /** Optional: present (true) asks for cpa_process_alias. */
  alias: boolean;
  /** Optional: present (true) asks for CPA_COLLAPSE (set_memory_rox). */
  collapse: boolean;
  /** vmalloc's VM_ALLOW_HUGE_VMAP. */
  huge: boolean;
  /** vmalloc's VM_FLUSH_RESET_PERMS. */
  resetPerms: boolean;
}
export type FieldKind = keyof FieldTypes;

/** Kinds whose field may be absent from a command. */
export const OPTIONAL_KINDS: ReadonlySet<FieldKind> = new Set<FieldKind>(['maxPage', 'alias', 'collapse', 'lazy']);

/** The kinds whose value type is exactly T. */
type KindOf<T> = { [K in FieldKind]: [FieldTypes[K]] extends [T] ? ([T] extends [FieldTypes[K]] ? K : never) : never }[FieldKind];

export type CommandOf<K extends Op> = Extract<Command, { op: K }>;

/** Each field of the command (but `op`) with a kind of exactly its type, in print order. */
export type Fields<K extends Op> = { readonly [F in Exclude<keyof CommandOf<K>, 'op'>]-?: KindOf<NonNullable<CommandOf<K>[F]>> };

export interface Operation<K extends Op> {
  /** The kernel function(s) the operation stands for. */
  readonly kernel: string;
  /** The name a command prints under; defaults to the op (the `_noflush` variants print the kernel's names). */
  readonly label?: (c: CommandOf<K>) => string;
  readonly fields: Fields<K>;
  /**
   * 'isolation' operations need the system's `isolation` capability (KPTI, ASI,
   * processes), 'clients' ones its `clients` capability (spec/contracts/clients.ts).
   */
  readonly capability: Capability;
  /** A client operation on processes: it needs the isolation capability as well (generated only with both). */
  readonly alsoIsolation?: true;
  /** Whether it can change leaves or frames, not only TLBs and obligations. */
  readonly mutating: boolean;
  /** Every outcome its contract allows (spec/contracts), for campaign coverage. */
  readonly outcomes: readonly ('ok' | Errno)[];
  /** The argument an EPERM of this operation names (spec/contracts/README.md). */
  readonly policyArg?: string;
  readonly apply: (sys: PageTableSystem, c: CommandOf<K>) => Result<unknown>;
  /**
   * The page ranges of init_mm the command names. The operation may change leaves only
   * there, at the leaves straddling their edges (splits), and, with `directMapAliases`,
   * at the direct-map pages of the frames the ranges map (cpa_process_alias).
   */
  readonly touches: (c: CommandOf<K>, pageOffset: Vpn, levels: PagingLevels) => Touched;
  /**
   * Fuzzing: the relative weight among the operations, and the partner whose last
   * command a repeat revisits, keeping those fields (a collapse of the block a split just
   * made, a second access to the same page, set_direct_map_default of the frames just
   * removed, an unmap of exactly what a map created).
   */
  readonly fuzz: { readonly weight: number; readonly revisit?: { readonly partner: Op; readonly keep: readonly string[] } };
}

export type Capability = 'core' | 'isolation' | 'clients';

export interface Touched {
  readonly ranges: readonly { readonly vpn: Vpn; readonly pages: number }[];
  readonly directMapAliases: boolean;
}

const named = (vpn: Vpn, pages: number): Touched => ({ ranges: [{ vpn, pages }], directMapAliases: false });
const nothing: Touched = { ranges: [], directMapAliases: false };

/** A KPTI/ASI/process operation on the system's isolation capability (applyCommand checks it is there). */
const iso = (sys: PageTableSystem): IsolationOps => sys.isolation!;

/** An isolation operation (spec/contracts/isolation.ts): it edits process, PTI or ASI roots. */
function isolationOp<K extends Op>(e: Omit<Operation<K>, 'capability' | 'mutating'>): Operation<K> {
  return { ...e, capability: 'isolation', mutating: true };
}
/** A client operation on the system's clients capability (applyCommand checks it is there). */
const cl = (sys: PageTableSystem): ClientOps => sys.clients!;

/** A client of the library (spec/contracts/clients.ts): vmalloc, kmap_local, the mermap, the unmapped pool, apply_to_page_range, the walker. */
function clientOp<K extends Op>(e: Omit<Operation<K>, 'capability'>): Operation<K> {
  return { ...e, capability: 'clients' };
}
const noflush = (kernel: string) => (c: { readonly flush: boolean }): string => `${kernel}${c.flush ? '' : '_noflush'}`;

const PUD_PAGES = 262144;
const PMD_PAGES = 512;
/** The direct-map pages of the pageblocks (2M of frames each) that [pfn, pfn+count) meets. */
const pageblocksAt = (pageOffset: Vpn, pfn: number, count: number): Touched => {
  const lo = alignDown(pfn, PMD_PAGES);
  return named(pageOffset + lo, alignDown(pfn + Math.max(1, count) - 1, PMD_PAGES) + PMD_PAGES - lo);
};
/** One CPU's kmap_local slots (they grow down from kmapSlotVpn(cpu, 0)). */
const kmapCpuRange = (cpu: number): { vpn: Vpn; pages: number } => ({ vpn: kmapSlotVpn(cpu, KM_MAX_IDX - 1), pages: KM_MAX_IDX });
const alignDown = (v: number, n: number): number => Math.floor(v / n) * n;
/**
 * What the memory-hotplug operations (spec/contracts/hotplug.ts) share: whole memory blocks
 * of frames, whose direct map and whose struct pages in the vmemmap they touch, and an
 * EPERM that names the frames.
 */
const HOTPLUG = {
  fields: { pfn: 'pfn', count: 'count' },
  mutating: true, policyArg: 'pfn',
  touches: (c: { readonly pfn: number; readonly count: number }, pageOffset: Vpn, levels: PagingLevels): Touched => ({
    ranges: [{ vpn: pageOffset + c.pfn, pages: c.count }, { vpn: vmemmapVpn(levels, c.pfn), pages: (c.count / MEMORY_BLOCK_PAGES) * MEMMAP_PAGES }],
    directMapAliases: false,
  }),
  fuzz: { weight: 2 },
} as const;

/** Every operation. Object key order is the canonical order of operations. */
export const OPERATIONS: { readonly [K in Op]: Operation<K> } = {
  map: {
    kernel: 'vmap_range, ioremap, kernel_physical_mapping_init',
    fields: { root: 'root', vpn: 'vpn', pfn: 'pfn', pages: 'pages', prot: 'prot', maxPage: 'maxPage' },
    capability: 'core', mutating: true, policyArg: 'prot',
    outcomes: ['ok', 'EINVAL', 'EEXIST', 'EPERM', 'ENOMEM'],
    apply: (sys, c) => sys.map(c.root, c.vpn, c.pfn, c.pages, c.prot, c.maxPage === undefined ? {} : { maxPage: c.maxPage }),
    touches: (c) => named(c.vpn, c.pages),
    // A repeat maps where the last unmap was, as vmalloc reuses a freed area: over the
    // tables the unmap left (kept or pending), with a huge leaf where alignment allows.
    fuzz: { weight: 14, revisit: { partner: 'unmap', keep: ['root'] } },
  },
  unmap: {
    kernel: 'vunmap_range, vunmap_range_noflush, zap of a kernel range',
    label: (c) => (c.flush === false ? 'vunmap_range_noflush' : 'unmap'),
    fields: { root: 'root', vpn: 'vpn', pages: 'pages', flush: 'lazy' },
    capability: 'core', mutating: true, policyArg: 'vpn',
    // A partial unmap of a 1G leaf needs tables for the split (ENOMEM); removal breaks a
    // policy only where an isolation root copies the page (K3, A2).
    outcomes: ['ok', 'EINVAL', 'ENOENT', 'EPERM', 'ENOMEM'],
    apply: (sys, c) => (c.flush === false ? sys.unmap(c.root, c.vpn, c.pages, { flush: false }) : sys.unmap(c.root, c.vpn, c.pages)),
    touches: (c) => named(c.vpn, c.pages),
    fuzz: { weight: 9, revisit: { partner: 'map', keep: ['root', 'vpn', 'pages'] } },
  },
  protect: {
    kernel: 'change_page_attr_set_clr (set_memory_ro/rw/x/nx/wc/uc/wb/global/nonglobal/np/p/4k/rox)',
    fields: { vpn: 'vpn', pages: 'pages', change: 'change', alias: 'alias', collapse: 'collapse' },
    capability: 'core', mutating: true, policyArg: 'change',
    outcomes: ['ok', 'EINVAL', 'ENOENT', 'EPERM', 'ENOMEM', 'EFAULT', 'EBUSY'],
    apply: (sys, c) => sys.protect(c.vpn, c.pages, c.change, { alias: c.alias ?? false, ...(c.collapse === true ? { collapse: true } : {}) }),
    touches: (c) => {
      if (c.collapse !== true) return { ranges: [{ vpn: c.vpn, pages: c.pages }], directMapAliases: c.alias === true };
      // CPA_COLLAPSE may rewrite every 2M block the range meets and the 1G blocks around them.
      const lo = alignDown(c.vpn, PUD_PAGES);
      const hi = alignDown(c.vpn + c.pages - 1, PUD_PAGES) + PUD_PAGES;
      return { ranges: [{ vpn: lo, pages: hi - lo }], directMapAliases: c.alias === true };
    },
    fuzz: { weight: 14 },
  },
  setDirectMapInvalid: {
    kernel: 'set_direct_map_invalid_noflush',
    label: noflush('set_direct_map_invalid'),
    fields: { pfn: 'pfn', count: 'count', flush: 'flush' },
    capability: 'core', mutating: true, policyArg: 'pfn',
    outcomes: ['ok', 'EINVAL', 'ENOENT', 'EPERM', 'ENOMEM'],
    apply: (sys, c) => sys.setDirectMapInvalid(c.pfn, c.count, { flush: c.flush }),
    touches: (c, pageOffset) => named(pageOffset + c.pfn, c.count),
    fuzz: { weight: 5 },
  },
  setDirectMapDefault: {
    kernel: 'set_direct_map_default_noflush',
    label: noflush('set_direct_map_default'),
    fields: { pfn: 'pfn', count: 'count', flush: 'flush' },
    capability: 'core', mutating: true, policyArg: 'pfn',
    outcomes: ['ok', 'EINVAL', 'EEXIST', 'EPERM', 'ENOMEM'],
    apply: (sys, c) => sys.setDirectMapDefault(c.pfn, c.count, { flush: c.flush }),
    touches: (c, pageOffset) => named(pageOffset + c.pfn, c.count),
    fuzz: { weight: 5, revisit: { partner: 'setDirectMapInvalid', keep: ['pfn', 'count'] } },
  },
  split: {
    kernel: 'split_large_page',
    fields: { root: 'root', vpn: 'vpn' },
    capability: 'core', mutating: true, policyArg: 'vpn',
    // Splitting keeps every attribute: no EPERM.
    outcomes: ['ok', 'EINVAL', 'ENOENT', 'ENOMEM'],
    apply: (sys, c) => sys.split(c.root, c.vpn),
    touches: (c) => named(c.vpn, 1),
    fuzz: { weight: 7 },
  },
  collapse: {
    kernel: 'collapse_large_pages',
    fields: { root: 'root', vpn: 'vpn', size: 'hugeSize' },
    capability: 'core', mutating: true, policyArg: 'vpn',
    // Collapsing keeps attributes and only frees tables: no EPERM, no ENOMEM.
    outcomes: ['ok', 'EINVAL', 'ENOENT'],
    apply: (sys, c) => sys.collapse(c.root, c.vpn, c.size),
    touches: (c) => {
      const pages = c.size === '1G' ? PUD_PAGES : 512;
      return named(Math.floor(c.vpn / pages) * pages, pages);
    },
    fuzz: { weight: 7, revisit: { partner: 'split', keep: ['root', 'vpn'] } },
  },
  ptiClone: isolationOp({
    kernel: 'pti_clone_pgtable',
    fields: { vpn: 'vpn', pages: 'pages', level: 'cloneLevel' },
    outcomes: ['ok', 'EINVAL', 'EPERM', 'ENOMEM'], policyArg: 'vpn',
    apply: (sys, c) => iso(sys).ptiClone(c.vpn, c.pages, c.level),
    // Linux sets _PAGE_GLOBAL on the init_mm leaves it clones, whole.
    touches: (c) => ({ ranges: [{ vpn: alignDown(c.vpn, PUD_PAGES), pages: alignDown(c.vpn + c.pages - 1, PUD_PAGES) + PUD_PAGES - alignDown(c.vpn, PUD_PAGES) }], directMapAliases: false }),
    fuzz: { weight: 3 },
  }),
  asiMap: isolationOp({
    kernel: 'asi_map',
    fields: { vpn: 'vpn', pages: 'pages' },
    outcomes: ['ok', 'EINVAL', 'EPERM', 'ENOMEM'], policyArg: 'vpn',
    apply: (sys, c) => iso(sys).asiMap(c.vpn, c.pages),
    touches: (c) => named(c.vpn, c.pages),
    fuzz: { weight: 3 },
  }),
  asiUnmap: isolationOp({
    kernel: 'asi_unmap',
    fields: { vpn: 'vpn', pages: 'pages' },
    outcomes: ['ok', 'EINVAL'],
    apply: (sys, c) => iso(sys).asiUnmap(c.vpn, c.pages),
    touches: (c) => named(c.vpn, c.pages),
    fuzz: { weight: 2, revisit: { partner: 'asiMap', keep: ['vpn', 'pages'] } },
  }),
  createProcess: isolationOp({
    kernel: 'mm_alloc, pgd_alloc (with the KPTI user copy and the ASI root)',
    fields: {},
    outcomes: ['ok', 'ENOMEM'],
    apply: (sys) => iso(sys).createProcess(),
    touches: () => nothing,
    fuzz: { weight: 2 },
  }),
  exitProcess: isolationOp({
    kernel: 'exit_mmap, pgd_free, destroy_context_ldt',
    fields: { pid: 'pid' },
    outcomes: ['ok', 'EINVAL', 'ENOENT'],
    apply: (sys, c) => iso(sys).exitProcess(c.pid),
    touches: () => nothing,
    fuzz: { weight: 1 },
  }),
  mapUser: isolationOp({
    kernel: 'mmap and the fault path (user half, mirrored into the KPTI copies)',
    fields: { pid: 'pid', vpn: 'userVpn', pfn: 'pfn', pages: 'pages', prot: 'prot' },
    outcomes: ['ok', 'EINVAL', 'ENOENT', 'EEXIST', 'EPERM', 'ENOMEM'], policyArg: 'prot',
    apply: (sys, c) => iso(sys).mapUser(c.pid, c.vpn, c.pfn, c.pages, c.prot),
    touches: () => nothing,
    fuzz: { weight: 4, revisit: { partner: 'unmapUser', keep: ['pid', 'vpn'] } },
  }),
  unmapUser: isolationOp({
    kernel: 'munmap (zap_page_range, flush_tlb_mm_range, free_pgtables)',
    fields: { pid: 'pid', vpn: 'userVpn', pages: 'pages' },
    outcomes: ['ok', 'EINVAL', 'ENOENT', 'ENOMEM'],
    apply: (sys, c) => iso(sys).unmapUser(c.pid, c.vpn, c.pages),
    touches: () => nothing,
    fuzz: { weight: 4, revisit: { partner: 'mapUser', keep: ['pid', 'vpn', 'pages'] } },
  }),
  setLdt: isolationOp({
    kernel: 'modify_ldt (write_ldt: map_ldt_struct, install_ldt, unmap_ldt_struct, free_ldt_struct)',
    fields: { pid: 'pid', pfn: 'pfn', pages: 'pages' },
    outcomes: ['ok', 'EINVAL', 'ENOENT', 'EBUSY', 'EPERM', 'ENOMEM'], policyArg: 'pfn',
    apply: (sys, c) => iso(sys).setLdt(c.pid, c.pfn, c.pages),
    touches: () => nothing,
    fuzz: { weight: 2 },
  }),
  vmalloc: clientOp({
    kernel: '__vmalloc_node_range (alloc_pages, vmap_pages_range; VM_ALLOW_HUGE_VMAP, VM_FLUSH_RESET_PERMS)',
    fields: { vpn: 'vpn', pfn: 'pfn', pages: 'pages', huge: 'huge', resetPerms: 'resetPerms' },
    mutating: true, policyArg: 'prot',
    outcomes: ['ok', 'EINVAL', 'EEXIST', 'EBUSY', 'EPERM', 'ENOMEM'],
    apply: (sys, c) => cl(sys).vmalloc(c.vpn, c.pfn, c.pages, { huge: c.huge, resetPerms: c.resetPerms }),
    touches: (c) => named(c.vpn, c.pages),
    fuzz: { weight: 4 },
  }),
  vfree: clientOp({
    kernel: 'vfree (vunmap_range_noflush, free_vmap_area_noflush, vm_reset_perms, __free_page, the lazy purge)',
    fields: { vpn: 'vpn' },
    mutating: true, policyArg: 'vpn',
    outcomes: ['ok', 'EINVAL', 'ENOENT', 'EPERM', 'ENOMEM'],
    apply: (sys, c) => cl(sys).vfree(c.vpn),
    // The area's pages (the command names its start only: the largest area the fuzzer makes
    // is 2M) and their frames' direct-map pages (a reset rewrites them); the purge flushes
    // ranges that change no leaf. The frame facts are global (freeFrames).
    touches: (c) => ({ ranges: [{ vpn: c.vpn, pages: 2 * PMD_PAGES }], directMapAliases: true }),
    fuzz: { weight: 3, revisit: { partner: 'vmalloc', keep: ['vpn'] } },
  }),
  vmUnmapAliases: clientOp({
    kernel: 'vm_unmap_aliases (__purge_vmap_area_lazy)',
    fields: {},
    mutating: false,
    outcomes: ['ok'],
    apply: (sys) => cl(sys).vmUnmapAliases(),
    touches: () => nothing,
    fuzz: { weight: 1 },
  }),
  kmapLocal: clientOp({
    kernel: 'kmap_local_page (__kmap_local_pfn_prot; page_address on x86-64)',
    fields: { cpu: 'cpu', pfn: 'pfn' },
    mutating: true, policyArg: 'pfn',
    outcomes: ['ok', 'EINVAL', 'EEXIST', 'EBUSY', 'EPERM', 'ENOMEM'],
    apply: (sys, c) => cl(sys).kmapLocal(c.cpu, c.pfn),
    touches: (c) => named(kmapCpuRange(c.cpu).vpn, kmapCpuRange(c.cpu).pages),
    fuzz: { weight: 3 },
  }),
  kunmapLocal: clientOp({
    kernel: 'kunmap_local (kunmap_local_indexed, flush_tlb_one_kernel)',
    fields: { cpu: 'cpu', vpn: 'vpn' },
    mutating: true,
    outcomes: ['ok', 'EINVAL', 'ENOENT'],
    apply: (sys, c) => cl(sys).kunmapLocal(c.cpu, c.vpn),
    touches: (c) => named(c.vpn, 1),
    fuzz: { weight: 3, revisit: { partner: 'kmapLocal', keep: ['cpu'] } },
  }),
  mermapGet: clientOp({
    kernel: 'mermap_get (arch_mermap_flush_tlb when a slice is reused)',
    fields: { cpu: 'cpu', pfn: 'pfn', pages: 'pages' },
    mutating: true, policyArg: 'pfn',
    outcomes: ['ok', 'EINVAL', 'EEXIST', 'EBUSY', 'EPERM', 'ENOMEM'],
    apply: (sys, c) => cl(sys).mermapGet(c.cpu, c.pfn, c.pages),
    // The CPU's slice (the allocation lands anywhere in it); its local flush changes caches only.
    touches: (c, _, levels) => named(mermapSlice(levels, c.cpu), MERMAP_CPU_PAGES),
    fuzz: { weight: 3 },
  }),
  mermapPut: clientOp({
    kernel: 'mermap_put',
    fields: { cpu: 'cpu', vpn: 'vpn' },
    mutating: true,
    outcomes: ['ok', 'EINVAL', 'ENOENT'],
    apply: (sys, c) => cl(sys).mermapPut(c.cpu, c.vpn),
    touches: (c) => named(c.vpn, MERMAP_CPU_PAGES),
    fuzz: { weight: 3, revisit: { partner: 'mermapGet', keep: ['cpu'] } },
  }),
  allocUnmapped: clientOp({
    kernel: 'alloc_pages(__GFP_UNMAPPED) (__rmqueue_direct_map)',
    fields: { pfn: 'pfn', count: 'count' },
    mutating: true, policyArg: 'pfn',
    outcomes: ['ok', 'EINVAL', 'EBUSY', 'EPERM', 'ENOMEM'],
    apply: (sys, c) => cl(sys).allocUnmapped(c.pfn, c.count),
    // The pageblocks it may take, at their direct-map pages.
    touches: (c, pageOffset) => pageblocksAt(pageOffset, c.pfn, c.count),
    fuzz: { weight: 3 },
  }),
  applyToPageRange: clientOp({
    kernel: 'apply_to_page_range (a populate callback, as kasan_populate_vmalloc_pte)',
    fields: { vpn: 'vpn', pages: 'pages', pfn: 'pfn', prot: 'prot' },
    mutating: true, policyArg: 'prot',
    outcomes: ['ok', 'EINVAL', 'EPERM', 'ENOMEM'],
    apply: (sys, c) => cl(sys).applyToPageRange(c.vpn, c.pages, c.pfn, c.prot),
    touches: (c) => named(c.vpn, c.pages),
    fuzz: { weight: 3 },
  }),
  walkPageRange: clientOp({
    kernel: 'walk_kernel_page_table_range (mm/pagewalk.c)',
    fields: { vpn: 'vpn', pages: 'pages' },
    mutating: false,
    outcomes: ['ok', 'EINVAL'],
    apply: (sys, c) => cl(sys).walkPageRange(c.vpn, c.pages),
    touches: (c) => named(c.vpn, c.pages),
    fuzz: { weight: 3 },
  }),
  zapPageRange: clientOp({
    kernel: 'zap_page_range_single (tlb_gather_mmu, unmap_single_vma, tlb_finish_mmu)',
    fields: { pid: 'pid', vpn: 'userVpn', pages: 'pages' },
    mutating: true, alsoIsolation: true,
    outcomes: ['ok', 'EINVAL', 'ENOENT', 'ENOMEM'],
    apply: (sys, c) => cl(sys).zapPageRange(c.pid, c.vpn, c.pages),
    // The user half is no kernel range; the frames it frees are global facts (freeFrames).
    touches: () => nothing,
    fuzz: { weight: 2, revisit: { partner: 'mapUser', keep: ['pid', 'vpn', 'pages'] } },
  }),
  addMemory: clientOp({
    ...HOTPLUG,
    kernel: 'add_memory with MHP_MEMMAP_ON_MEMORY (arch_add_memory: init_memory_mapping, vmemmap_populate, sync_global_pgds; online_pages)',
    outcomes: ['ok', 'EINVAL', 'EEXIST', 'EPERM', 'ENOMEM'],
    apply: (sys, c) => cl(sys).addMemory(c.pfn, c.count),
  }),
  removeMemory: clientOp({
    ...HOTPLUG,
    kernel: 'offline_and_remove_memory (arch_remove_memory: vmemmap_free, kernel_physical_mapping_remove, flush_tlb_all)',
    outcomes: ['ok', 'EINVAL', 'ENOENT', 'EBUSY', 'EPERM', 'ENOMEM'],
    apply: (sys, c) => cl(sys).removeMemory(c.pfn, c.count),
  }),
  translate: {
    kernel: 'the page walk (lookup_address)',
    fields: { root: 'root', vpn: 'vpn' },
    capability: 'core', mutating: false,
    outcomes: ['ok', 'EINVAL', 'ENOENT'],
    apply: (sys, c) => sys.translate(c.root, c.vpn),
    touches: (c) => named(c.vpn, 1),
    fuzz: { weight: 5 },
  },
  access: {
    kernel: 'the MMU: a load, store or fetch through one CPU\'s TLB',
    fields: { cpu: 'cpu', root: 'root', vpn: 'vpn', kind: 'accessKind', mode: 'accessMode' },
    capability: 'core', mutating: false,
    outcomes: ['ok', 'EINVAL'],
    apply: (sys, c) => sys.access(c.cpu, c.root, c.vpn, c.kind, c.mode),
    touches: (c) => named(c.vpn, 1),
    fuzz: { weight: 12, revisit: { partner: 'access', keep: ['cpu', 'root', 'vpn'] } },
  },
  flush: {
    kernel: 'flush_tlb_kernel_range',
    fields: { vpn: 'vpn', pages: 'pages' },
    capability: 'core', mutating: false,
    outcomes: ['ok', 'EINVAL'],
    apply: (sys, c) => sys.flush(c.vpn, c.pages),
    touches: (c) => named(c.vpn, c.pages),
    fuzz: { weight: 4 },
  },
  flushAll: {
    kernel: 'flush_tlb_all',
    fields: {},
    capability: 'core', mutating: false,
    outcomes: ['ok'],
    apply: (sys) => sys.flushAll(),
    touches: () => nothing,
    fuzz: { weight: 2 },
  },
  flushLocal: {
    kernel: 'flush_tlb_one_kernel on one CPU (kmap_local, the mermap)',
    fields: { cpu: 'cpu', vpn: 'vpn', pages: 'pages' },
    capability: 'core', mutating: false,
    outcomes: ['ok', 'EINVAL'],
    apply: (sys, c) => sys.flushLocal(c.cpu, c.vpn, c.pages),
    touches: (c) => named(c.vpn, c.pages),
    fuzz: { weight: 3 },
  },
  allocFrames: {
    kernel: 'alloc_pages',
    fields: { pfn: 'pfn', count: 'count' },
    capability: 'core', mutating: true, policyArg: 'pfn',
    // Taking an unmapped pageblock back into the direct map (the clients' pool) can need a
    // table for the restored leaves (strict), or break a policy there.
    outcomes: ['ok', 'EINVAL', 'EBUSY', 'EPERM', 'ENOMEM'],
    apply: (sys, c) => sys.allocFrames(c.pfn, c.count),
    // With the clients capability it may take an unmapped pageblock back into the direct map.
    touches: (c, pageOffset) => pageblocksAt(pageOffset, c.pfn, c.count),
    fuzz: { weight: 3 },
  },
  freeFrames: {
    kernel: '__free_pages',
    fields: { pfn: 'pfn', count: 'count' },
    capability: 'core', mutating: true, policyArg: 'pfn',
    outcomes: ['ok', 'EINVAL', 'ENOENT', 'EPERM'],
    apply: (sys, c) => sys.freeFrames(c.pfn, c.count),
    // D4 looks at every mapping of the frames, wherever it is: the frame facts are global.
    touches: () => nothing,
    fuzz: { weight: 3, revisit: { partner: 'allocFrames', keep: ['pfn', 'count'] } },
  },
};

/** The operations in canonical order. */
export const OPS = Object.keys(OPERATIONS) as Op[];

/** The entry of `op`, typed for its command. */
export function operation<K extends Op>(op: K): Operation<K> {
  return OPERATIONS[op] as Operation<K>;
}

/** The fields of a command with their kinds, in print order. */
export function fieldsOf(op: Op): readonly (readonly [string, FieldKind])[] {
  return Object.entries(OPERATIONS[op].fields) as [string, FieldKind][];
}
