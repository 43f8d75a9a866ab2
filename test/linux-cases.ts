/**
 * Kernel-derived cases of the linux profile (spec/contracts/linux.ts; issue 11, item 7):
 * each is a command list run on a scenario booted under linux, the kernel function that
 * decides the outcome, and what the kernel's code says must follow: every command's
 * result, the leaf size and permissions of every page touched and of every alias touched
 * (direct map, high map), what the kernel printed, and what was flushed where a TLB entry
 * shows it. Addresses are the 4-level layout of the built-in `kernel` scenario:
 * text frames 0x1000.., rodata 0x1a00.., data 0x2000.., the first vmalloc area (64 4K
 * pages at vmallocStart + 1 mapping the frames from 100 MiB) inside 2M direct-map
 * leaves, 1G direct-map leaves from 1 GiB. No vitest here: the table is data.
 */
import { PAGES, X86_64_LAYOUT_4LEVEL as L, type PageSize, type Pfn, type Vpn } from '../spec/address.ts';
import type { Command } from '../spec/commands.ts';
import type { Errno } from '../spec/errors.ts';
import { KERNEL_IMAGE } from '../spec/scenario.ts';
import { PAGE_KERNEL, PAGE_KERNEL_RO, PAGE_KERNEL_ROX, type CacheMode } from '../spec/state.ts';
import type { KernelEvent, ProtChange } from '../spec/system.ts';

const DM = L.pageOffset;
const IMAGE = L.kernelText;
const VMALLOC = L.vmallocStart;
const TEXT = KERNEL_IMAGE.textPfn;
const RODATA = KERNEL_IMAGE.rodataPfn;
const DATA = KERNEL_IMAGE.dataPfn;
/** The boot's 4K vmalloc area: 64 pages from here map the frames from VM_PFN. */
const VM4K = VMALLOC + 1;
const VM_PFN = 100 * 256;
/** The first frame of the first 1G direct-map leaf. */
const GPFN = PAGES['1G'];
/** A 1G-aligned vmalloc address, free after boot. */
const VMALLOC_1G = VMALLOC + 4 * PAGES['1G'];
/** A data frame in a 2M direct-map leaf, and a 2M-aligned one. */
const FRAME = 30000;
const FRAME_2M = 59 * 512;

/** What one page must look like afterwards: the entry containing it (size null: no entry at all). */
export interface PageExpect {
  readonly at: Vpn;
  /** What the page is, for the failure message: "high-map text", "direct-map alias", … */
  readonly what: string;
  readonly size: PageSize | null;
  /** false: a non-present entry that keeps its frame (AbstractRoot.nonPresent). */
  readonly present?: boolean;
  readonly write?: boolean;
  readonly exec?: boolean;
  readonly global?: boolean;
  readonly cache?: CacheMode;
  /** _PAGE_KERNEL_4K (set_memory_4k). */
  readonly kernel4k?: boolean;
}

/** Whether `cpu` still caches a translation of `at` (and, if given, whether that entry is writable). */
export interface TlbExpect {
  readonly cpu: number;
  readonly at: Vpn;
  readonly cached: boolean;
  readonly write?: boolean;
}

export interface LinuxCase {
  readonly name: string;
  /** The kernel function whose code decides the outcome (arch/x86/mm/pat/set_memory.c unless named). */
  readonly kernelFunction: string;
  readonly scenario: 'kernel' | 'kernel-small-pool';
  /** Run after the scenario's boot. */
  readonly commands: readonly Command[];
  readonly expect: {
    /** The outcome of each command, in order. */
    readonly results: readonly ('ok' | Errno)[];
    readonly pages: readonly PageExpect[];
    /** Everything printed by the commands (the boot prints nothing), in order. */
    readonly events: readonly KernelEvent[];
    readonly tlb?: readonly TlbExpect[];
    /** Frames whose noDirectMap flag is checked. */
    readonly noDirectMap?: readonly { readonly pfn: Pfn; readonly value: boolean }[];
    /** tablesInUse afterwards minus tablesInUse after the boot. */
    readonly tablesAdded?: number;
    /** Frames whose reserved memory type is checked (null: none, i.e. WB). */
    readonly memtype?: readonly { readonly pfn: Pfn; readonly value: 'WC' | 'UC-' | null }[];
    /** The flush obligations afterwards, exactly. */
    readonly pendingFlush?: readonly { readonly vpn: Vpn; readonly pages: number; readonly reason: string }[];
  };
}

const protect = (vpn: Vpn, pages: number, change: ProtChange, alias = true): Command => ({ op: 'protect', vpn, pages, change, alias });
const unmap = (vpn: Vpn, pages: number): Command => ({ op: 'unmap', root: 0, vpn, pages });
/** vunmap_range_noflush: the entries go, the flush is owed. */
const unmapNoflush = (vpn: Vpn, pages: number): Command => ({ op: 'unmap', root: 0, vpn, pages, flush: false });
const map2m = (vpn: Vpn, pfn: Pfn): Command => ({ op: 'map', root: 0, vpn, pfn, pages: 512, prot: PAGE_KERNEL, maxPage: '2M' });
/** set_memory_rox: RW and NX cleared, CPA_COLLAPSE. */
const rox = (vpn: Vpn, pages: number): Command => ({ op: 'protect', vpn, pages, change: { write: false, exec: true }, alias: true, collapse: true });
/** 512 4K vmalloc pages from a 1G-aligned address, over the 2M-aligned frames from FRAME_2M. */
const map512 = (prot = PAGE_KERNEL): Command => ({ op: 'map', root: 0, vpn: VMALLOC_1G, pfn: FRAME_2M, pages: 512, prot, maxPage: '4K' });
const read = (cpu: number, vpn: Vpn, kind: 'r' | 'x' = 'r'): Command => ({ op: 'access', cpu, root: 0, vpn, kind, mode: 'kernel' });
const map4k = (vpn: Vpn, pfn: Pfn, prot = PAGE_KERNEL): Command => ({ op: 'map', root: 0, vpn, pfn, pages: 1, prot, maxPage: '4K' });
const invalid = (pfn: Pfn, count = 1, flush = true): Command => ({ op: 'setDirectMapInvalid', pfn, count, flush });
const valid = (pfn: Pfn, count = 1, flush = true): Command => ({ op: 'setDirectMapDefault', pfn, count, flush });

const page = (at: Vpn, what: string, size: PageSize | null, attrs: Omit<PageExpect, 'at' | 'what' | 'size'> = {}): PageExpect => ({ at, what, size, ...attrs });
const rule = (r: NonNullable<KernelEvent['rule']>, vpn: Vpn, pfn: Pfn, pages = 1): KernelEvent => ({ kind: 'static-protection', rule: r, vpn, pages, pfn });
const wx = (vpn: Vpn, pfn: Pfn, pages = 1): KernelEvent => ({ kind: 'wx', vpn, pages, pfn });

/** The small pool's free tables after boot (24 - 11): one 2M split each. */
const SMALL_POOL_FREE = 13;

export const LINUX_CASES: readonly LinuxCase[] = [
  {
    name: 'set_memory_rw on one 4K page of kernel text: allowed, RW+X, the text 2M page split, W^X warned once',
    kernelFunction: 'static_protections (protect_kernel_text_ro skips a 4K text mapping), verify_rwx (WARN_ONCE only)',
    scenario: 'kernel',
    commands: [read(1, VM4K + 9), protect(IMAGE + TEXT + 1, 1, { write: true }), protect(IMAGE + TEXT + 2, 1, { write: true })],
    expect: {
      results: ['ok', 'ok', 'ok'],
      pages: [
        page(IMAGE + TEXT + 1, 'high-map text page made writable', '4K', { write: true, exec: true, global: true }),
        page(IMAGE + TEXT + 2, 'second high-map text page made writable', '4K', { write: true, exec: true }),
        page(IMAGE + TEXT, 'its neighbour in the split text 2M page', '4K', { write: false, exec: true }),
        page(DM + TEXT + 1, 'its direct-map alias (RW propagates, NX stays)', '4K', { write: true, exec: false }),
        page(DM + TEXT + 2, 'the second one\'s direct-map alias', '4K', { write: true, exec: false }),
        page(DM + TEXT, 'the neighbour in the split direct-map 2M page', '4K', { write: false, exec: false }),
      ],
      events: [wx(IMAGE + TEXT + 1, TEXT + 1)],
      // An alias was processed: force_flush_all, so every TLB is flushed.
      tlb: [{ cpu: 1, at: VM4K + 9, cached: false }],
    },
  },
  {
    name: 'set_memory_rw on a whole 2M text page: RW+X and the large page kept',
    kernelFunction: 'static_protections (Text RO exempts exactly one aligned large page), __should_split_large_page',
    scenario: 'kernel',
    commands: [protect(IMAGE + TEXT, 512, { write: true })],
    expect: {
      results: ['ok'],
      pages: [
        page(IMAGE + TEXT, 'high-map text 2M page', '2M', { write: true, exec: true }),
        page(IMAGE + TEXT + 512, 'the next text 2M page', '2M', { write: false, exec: true }),
        page(DM + TEXT, 'its direct-map alias, changed whole', '2M', { write: true, exec: false }),
      ],
      events: [wx(IMAGE + TEXT, TEXT, 512)],
    },
  },
  {
    name: 'set_memory_nx on high-map text: the split happens, the page stays executable',
    kernelFunction: 'static_protections (protect_kernel_text: Text NX)',
    scenario: 'kernel',
    commands: [read(0, IMAGE + TEXT + 1, 'x'), protect(IMAGE + TEXT + 1, 1, { exec: false })],
    expect: {
      results: ['ok', 'ok'],
      pages: [
        page(IMAGE + TEXT + 1, 'high-map text page', '4K', { write: false, exec: true }),
        page(IMAGE + TEXT, 'its neighbour', '4K', { write: false, exec: true }),
        // NX is taken out of the alias masks, which leaves them empty: the alias walk does nothing.
        page(DM + TEXT + 1, 'its direct-map alias, untouched', '2M', { write: false, exec: false }),
      ],
      events: [rule('Text NX', IMAGE + TEXT + 1, TEXT + 1)],
      // Nothing changed, so no final flush; the split's flush_tlb_all dropped the entry.
      tlb: [{ cpu: 0, at: IMAGE + TEXT + 1, cached: false }],
    },
  },
  {
    name: 'an existing NX large page over kernel text: WARN once, split with fix-ups, every 4K page executable again',
    kernelFunction: '__should_split_large_page (WARN_ON_ONCE on a static-protection conflict), split_set_pte (static_protections at CPA_PROTECT)',
    scenario: 'kernel',
    commands: [
      { op: 'unmap', root: 0, vpn: IMAGE + TEXT, pages: 512 },
      { op: 'map', root: 0, vpn: IMAGE + TEXT, pfn: TEXT, pages: 512, prot: PAGE_KERNEL_RO, maxPage: '2M' },
      protect(IMAGE + TEXT + 5, 1, { write: false }),
    ],
    expect: {
      results: ['ok', 'ok', 'ok'],
      pages: [
        page(IMAGE + TEXT + 5, 'the requested page', '4K', { write: false, exec: true }),
        page(IMAGE + TEXT, 'first page of the split text page', '4K', { write: false, exec: true }),
        page(IMAGE + TEXT + 511, 'last page of the split text page', '4K', { write: false, exec: true }),
        page(DM + TEXT + 5, 'its direct-map alias, already read-only: kept whole', '2M', { write: false, exec: false }),
      ],
      events: [
        rule('Text NX', IMAGE + TEXT, TEXT, 512),
        { kind: 'conflict', vpn: IMAGE + TEXT, pages: 512, pfn: TEXT },
        ...Array.from({ length: 512 }, (_, i) => rule('Text NX', IMAGE + TEXT + i, TEXT + i)),
      ],
    },
  },
  {
    name: 'an existing RW 1G leaf over rodata frames: WARN, split, and the 2M entries keep RW (no PUD fix-up)',
    kernelFunction: 'split_set_pte ("CPA: Cannot fixup static protections for PUD split", pr_warn_once)',
    scenario: 'kernel',
    commands: [
      { op: 'map', root: 0, vpn: VMALLOC_1G, pfn: 0, pages: PAGES['1G'], prot: PAGE_KERNEL, maxPage: '1G' },
      protect(VMALLOC_1G + 5, 1, { write: false }, false),
    ],
    expect: {
      results: ['ok', 'ok'],
      pages: [
        page(VMALLOC_1G + 5, 'the requested page', '4K', { write: false }),
        page(VMALLOC_1G, 'its neighbour in the split 2M entry', '4K', { write: true }),
        page(VMALLOC_1G + RODATA, 'the 2M entry over rodata frames, still writable', '2M', { write: true }),
        page(VMALLOC_1G + 512, 'another 2M entry of the split 1G leaf', '2M', { write: true }),
      ],
      events: [
        rule('Rodata RO', VMALLOC_1G, 0, PAGES['1G']),
        { kind: 'conflict', vpn: VMALLOC_1G, pages: PAGES['1G'], pfn: 0 },
        // The rodata frames 0x1a00..0x2000 are three 2M entries; the warning comes after the first one's line.
        rule('Rodata RO', VMALLOC_1G + RODATA, RODATA, 512),
        { kind: 'pud-fixup', vpn: VMALLOC_1G, pages: PAGES['1G'], pfn: 0 },
        rule('Rodata RO', VMALLOC_1G + RODATA + 512, RODATA + 512, 512),
        rule('Rodata RO', VMALLOC_1G + RODATA + 1024, RODATA + 1024, 512),
      ],
    },
  },
  {
    name: 'set_memory_rw on rodata through the high map: stays read-only, both mappings split',
    kernelFunction: 'static_protections (protect_rodata: Rodata RO, by frame)',
    scenario: 'kernel',
    commands: [protect(IMAGE + RODATA + 1, 1, { write: true })],
    expect: {
      results: ['ok'],
      pages: [
        page(IMAGE + RODATA + 1, 'high-map rodata page', '4K', { write: false, exec: false }),
        page(DM + RODATA + 1, 'its direct-map alias', '4K', { write: false, exec: false }),
      ],
      events: [rule('Rodata RO', IMAGE + RODATA + 1, RODATA + 1), rule('Rodata RO', DM + RODATA + 1, RODATA + 1)],
    },
  },
  {
    name: 'set_memory_rw on a vmalloc alias of rodata frames: every alias stays read-only',
    kernelFunction: 'static_protections (protect_rodata), cpa_process_alias (direct map and high map)',
    scenario: 'kernel',
    commands: [map4k(VMALLOC + 200, RODATA + 3, PAGE_KERNEL_RO), protect(VMALLOC + 200, 1, { write: true })],
    expect: {
      results: ['ok', 'ok'],
      pages: [
        page(VMALLOC + 200, 'vmalloc alias of a rodata frame', '4K', { write: false }),
        page(DM + RODATA + 3, 'its direct-map alias', '4K', { write: false }),
        page(IMAGE + RODATA + 3, 'its high-map alias', '4K', { write: false }),
      ],
      events: [
        rule('Rodata RO', VMALLOC + 200, RODATA + 3),
        rule('Rodata RO', DM + RODATA + 3, RODATA + 3),
        rule('Rodata RO', IMAGE + RODATA + 3, RODATA + 3),
      ],
    },
  },
  {
    name: 'set_memory_rw on a vmalloc alias of a text frame: the high-map text page becomes writable and executable',
    kernelFunction: 'cpa_process_alias (the high-map alias keeps its NX), static_protections (Text RO skips the 4K page), verify_rwx',
    scenario: 'kernel',
    commands: [map4k(VMALLOC + 500, TEXT + 9, PAGE_KERNEL_RO), protect(VMALLOC + 500, 1, { write: true })],
    expect: {
      results: ['ok', 'ok'],
      pages: [
        page(VMALLOC + 500, 'vmalloc alias of a text frame', '4K', { write: true, exec: false }),
        page(DM + TEXT + 9, 'its direct-map alias', '4K', { write: true, exec: false }),
        page(IMAGE + TEXT + 9, 'its high-map alias, the kernel text itself', '4K', { write: true, exec: true }),
      ],
      events: [wx(IMAGE + TEXT + 9, TEXT + 9)],
    },
  },
  {
    name: 'set_memory_ro on a vmalloc 4K page: its 2M direct-map alias split, RO propagated',
    kernelFunction: 'cpa_process_alias',
    scenario: 'kernel',
    commands: [protect(VM4K, 1, { write: false })],
    expect: {
      results: ['ok'],
      pages: [
        page(VM4K, 'vmalloc page', '4K', { write: false, exec: false }),
        page(DM + VM_PFN, 'its direct-map alias', '4K', { write: false, exec: false }),
        page(DM + VM_PFN + 1, 'the next page of the split direct-map 2M page', '4K', { write: true, exec: false }),
      ],
      events: [],
    },
  },
  {
    name: 'read-only and executable on a vmalloc page over a 1G direct-map leaf: 1G and 2M split, RO propagated, exec not',
    kernelFunction: 'cpa_process_alias ("Directmap always has NX set"), __split_large_page',
    scenario: 'kernel',
    commands: [map4k(VMALLOC + 300, GPFN + 5), protect(VMALLOC + 300, 1, { write: false, exec: true })],
    expect: {
      results: ['ok', 'ok'],
      pages: [
        page(VMALLOC + 300, 'vmalloc page', '4K', { write: false, exec: true }),
        page(DM + GPFN + 5, 'its direct-map alias', '4K', { write: false, exec: false }),
        page(DM + GPFN + 4, 'its neighbour', '4K', { write: true, exec: false }),
        page(DM + GPFN + 512, 'the next 2M of the split 1G leaf', '2M', { write: true, exec: false }),
        page(DM + 2 * GPFN, 'the next 1G leaf', '1G', { write: true, exec: false }),
      ],
      events: [],
    },
  },
  {
    name: 'set_memory_uc on a vmalloc page: the memory type propagates to the direct map',
    kernelFunction: 'cpa_process_alias',
    scenario: 'kernel',
    commands: [protect(VM4K + 1, 1, { cache: 'UC-' })],
    expect: {
      results: ['ok'],
      pages: [
        page(VM4K + 1, 'vmalloc page', '4K', { write: true, cache: 'UC-' }),
        page(DM + VM_PFN + 1, 'its direct-map alias', '4K', { write: true, exec: false, cache: 'UC-' }),
        page(DM + VM_PFN, 'its neighbour', '4K', { cache: 'WB' }),
      ],
      events: [],
    },
  },
  {
    name: 'set_memory_x on a vmalloc page: executable and W^X warned, the direct map stays NX and whole',
    kernelFunction: 'cpa_process_alias (NX out of the alias masks), verify_rwx',
    scenario: 'kernel',
    commands: [protect(VM4K + 2, 1, { exec: true })],
    expect: {
      results: ['ok'],
      pages: [
        page(VM4K + 2, 'vmalloc page', '4K', { write: true, exec: true }),
        page(DM + VM_PFN + 2, 'its direct-map alias', '2M', { write: true, exec: false }),
      ],
      events: [wx(VM4K + 2, VM_PFN + 2)],
    },
  },
  {
    name: 'protect over an unmapped page outside the direct map: EFAULT, the pages before it changed',
    kernelFunction: '__cpa_process_fault ("CPA: called for zero pte"), change_page_attr_set_clr (cpa_flush_all on error)',
    scenario: 'kernel',
    commands: [read(1, VM4K + 9), protect(VM4K + 62, 4, { write: false })],
    expect: {
      results: ['ok', 'EFAULT'],
      pages: [
        page(VM4K + 62, 'vmalloc page before the hole', '4K', { write: false }),
        page(VM4K + 63, 'last vmalloc page before the hole', '4K', { write: false }),
        page(DM + VM_PFN + 62, 'direct-map alias of the first', '4K', { write: false }),
        page(DM + VM_PFN + 63, 'direct-map alias of the second', '4K', { write: false }),
        page(VM4K + 64, 'the unmapped page', null),
      ],
      // The warning names the page and the frame of the step before it.
      events: [{ kind: 'zero-pte', vpn: VM4K + 64, pages: 1, pfn: VM_PFN + 63 }],
      tlb: [{ cpu: 1, at: VM4K + 9, cached: false }],
    },
  },
  {
    name: 'protect over a hole in the direct map: skipped, ok, only the range flushed',
    kernelFunction: '__cpa_process_fault (holes in the direct map are expected), cpa_flush',
    scenario: 'kernel',
    commands: [
      // vunmap would clear the whole 2M leaf: split it first (split_large_page).
      { op: 'split', root: 0, vpn: DM + 50001 },
      unmap(DM + 50001, 1),
      read(0, DM + 50000), read(0, VM4K + 9),
      protect(DM + 50000, 3, { write: false }),
    ],
    expect: {
      results: ['ok', 'ok', 'ok', 'ok', 'ok'],
      pages: [
        page(DM + 50000, 'direct-map page before the hole', '4K', { write: false }),
        page(DM + 50001, 'the hole', null),
        page(DM + 50002, 'direct-map page after the hole', '4K', { write: false }),
        page(DM + 50003, 'the page after the range', '4K', { write: true }),
      ],
      events: [],
      // No alias of a direct-map page outside the image: 3 pages, flushed one by one.
      tlb: [{ cpu: 0, at: DM + 50000, cached: false }, { cpu: 0, at: VM4K + 9, cached: true }],
    },
  },
  {
    name: 'a change only an alias needs is not flushed: the stale TLB entry stays',
    kernelFunction: 'change_page_attr_set_clr (no flush unless the primary walk set CPA_FLUSHTLB)',
    scenario: 'kernel',
    commands: [protect(DM + VM_PFN + 10, 1, { write: false }, false), read(0, DM + VM_PFN + 10), protect(VM4K + 10, 1, { write: true })],
    expect: {
      results: ['ok', 'ok', 'ok'],
      pages: [
        page(VM4K + 10, 'vmalloc page, already writable', '4K', { write: true }),
        page(DM + VM_PFN + 10, 'its direct-map alias, made writable again', '4K', { write: true }),
      ],
      events: [],
      tlb: [{ cpu: 0, at: DM + VM_PFN + 10, cached: true, write: false }],
    },
  },
  {
    name: 'protect of 33 pages: flushed page by page',
    kernelFunction: 'cpa_flush (tlb_single_page_flush_ceiling)',
    scenario: 'kernel',
    commands: [read(1, VM4K + 49), protect(VM4K, 33, { write: false }, false)],
    expect: {
      results: ['ok', 'ok'],
      pages: [page(VM4K + 32, 'last page of the range', '4K', { write: false }), page(VM4K + 33, 'first page after it', '4K', { write: true })],
      events: [],
      tlb: [{ cpu: 1, at: VM4K + 49, cached: true }],
    },
  },
  {
    name: 'protect of 34 pages: more than 33, every TLB flushed',
    kernelFunction: 'cpa_flush (tlb_single_page_flush_ceiling)',
    scenario: 'kernel',
    commands: [read(1, VM4K + 49), protect(VM4K, 34, { write: false }, false)],
    expect: {
      results: ['ok', 'ok'],
      pages: [page(VM4K + 33, 'last page of the range', '4K', { write: false }), page(VM4K + 34, 'first page after it', '4K', { write: true })],
      events: [],
      tlb: [{ cpu: 1, at: VM4K + 49, cached: false }],
    },
  },
  {
    name: 'set_direct_map_invalid on a frame: a non-present entry keeps frame, NX and cache; RW and G go',
    kernelFunction: '__set_pages_np, pgprot_clear_protnone_bits',
    scenario: 'kernel',
    commands: [read(0, DM + FRAME), invalid(FRAME)],
    expect: {
      results: ['ok', 'ok'],
      pages: [
        page(DM + FRAME, 'the direct-map page', '4K', { present: false, write: false, exec: false, global: false, cache: 'WB' }),
        page(DM + FRAME + 1, 'its neighbour in the split 2M page', '4K', { present: true, write: true, global: true }),
      ],
      events: [],
      tlb: [{ cpu: 0, at: DM + FRAME, cached: false }],
      noDirectMap: [{ pfn: FRAME, value: true }, { pfn: FRAME + 1, value: false }],
    },
  },
  {
    name: 'set_direct_map_invalid then set_direct_map_default: present and writable again, G lost for good',
    kernelFunction: '__set_pages_p',
    scenario: 'kernel',
    commands: [invalid(FRAME), valid(FRAME)],
    expect: {
      results: ['ok', 'ok'],
      pages: [page(DM + FRAME, 'the direct-map page', '4K', { present: true, write: true, exec: false, global: false, cache: 'WB' })],
      events: [],
      noDirectMap: [{ pfn: FRAME, value: false }],
    },
  },
  {
    name: 'set_direct_map_invalid_noflush twice: idempotent, ok, one obligation',
    kernelFunction: '__set_pages_np (__change_page_attr writes nothing when the entry is already so)',
    scenario: 'kernel',
    commands: [invalid(FRAME, 1, false), invalid(FRAME, 1, false)],
    expect: {
      results: ['ok', 'ok'],
      pages: [page(DM + FRAME, 'the direct-map page', '4K', { present: false, write: false, global: false })],
      events: [],
      pendingFlush: [{ vpn: DM + FRAME, pages: 1, reason: 'setDirectMapInvalid' }],
      noDirectMap: [{ pfn: FRAME, value: true }],
    },
  },
  {
    name: 'set_direct_map_default on a rodata frame: present again but read-only',
    kernelFunction: '__set_pages_p, static_protections (protect_rodata)',
    scenario: 'kernel',
    commands: [invalid(RODATA + 44), valid(RODATA + 44)],
    expect: {
      results: ['ok', 'ok'],
      pages: [page(DM + RODATA + 44, 'direct-map page of a rodata frame', '4K', { present: true, write: false, exec: false, global: false })],
      events: [rule('Rodata RO', DM + RODATA + 44, RODATA + 44)],
    },
  },
  {
    name: 'set_direct_map_invalid over a whole 2M page: one non-present 2M entry, no split',
    kernelFunction: '__should_split_large_page (the large entry is written whole)',
    scenario: 'kernel',
    commands: [invalid(FRAME_2M, 512)],
    expect: {
      results: ['ok'],
      pages: [page(DM + FRAME_2M + 7, 'a page of the 2M entry', '2M', { present: false, write: false, global: false, exec: false })],
      events: [],
    },
  },
  {
    name: 'set_direct_map_default over that 2M entry: present 2M, writable, without G',
    kernelFunction: '__set_pages_p, __should_split_large_page',
    scenario: 'kernel',
    commands: [invalid(FRAME_2M, 512), valid(FRAME_2M, 512)],
    expect: {
      results: ['ok', 'ok'],
      pages: [page(DM + FRAME_2M, 'the 2M entry', '2M', { present: true, write: true, global: false, exec: false })],
      events: [],
    },
  },
  {
    name: 'map over a non-present entry: EEXIST, the entry occupies its slot',
    kernelFunction: 'vmap_pages_pte_range (mm/vmalloc.c: an entry that is not pte_none refuses the mapping)',
    scenario: 'kernel',
    commands: [invalid(FRAME), map4k(DM + FRAME, FRAME)],
    expect: {
      results: ['ok', 'EEXIST'],
      pages: [page(DM + FRAME, 'the non-present direct-map entry', '4K', { present: false })],
      events: [],
    },
  },
  {
    name: 'unmap over a non-present entry: removed, with a WARN',
    kernelFunction: 'vunmap_pte_range (mm/vmalloc.c: ptep_get_and_clear on every entry, WARN_ON(!pte_none && !pte_present))',
    scenario: 'kernel',
    commands: [invalid(FRAME), unmap(DM + FRAME, 1)],
    expect: {
      results: ['ok', 'ok'],
      pages: [page(DM + FRAME, 'the removed entry', null), page(DM + FRAME + 1, 'its neighbour', '4K', { present: true, write: true })],
      events: [{ kind: 'vunmap-nonpresent', vpn: DM + FRAME, pages: 1, pfn: FRAME }],
    },
  },
  {
    name: 'set_memory_ro on a vmalloc alias of a kernel data frame: the high-map alias changes too',
    kernelFunction: 'cpa_process_alias (__cpa_pfn_in_highmap)',
    scenario: 'kernel',
    commands: [map4k(VMALLOC + 400, DATA + 7), protect(VMALLOC + 400, 1, { write: false })],
    expect: {
      results: ['ok', 'ok'],
      pages: [
        page(VMALLOC + 400, 'vmalloc alias of a data frame', '4K', { write: false }),
        page(DM + DATA + 7, 'its direct-map alias', '4K', { write: false, exec: false }),
        page(IMAGE + DATA + 7, 'its high-map alias', '4K', { write: false, exec: false }),
        page(IMAGE + DATA + 8, 'the high-map neighbour', '4K', { write: true }),
      ],
      events: [],
    },
  },
  {
    name: 'ENOMEM in the middle of a walk: the pages before it stay changed, every TLB flushed',
    kernelFunction: 'split_large_page (alloc_pages fails: -ENOMEM), __change_page_attr_set_clr (stops at the first error)',
    scenario: 'kernel-small-pool',
    commands: [
      // Each uses the last free table of one split, until none is left.
      ...Array.from({ length: SMALL_POOL_FREE }, (_, i) => protect(DM + (80 + i) * 512 + 511, 1, { write: false }, false)),
      read(1, VM4K + 9),
      // The first page changes in place, the third needs a split.
      protect(DM + 92 * 512 + 510, 3, { write: false }, false),
    ],
    expect: {
      results: [...Array.from({ length: SMALL_POOL_FREE + 1 }, () => 'ok' as const), 'ENOMEM'],
      pages: [
        page(DM + 92 * 512 + 510, 'first page, changed', '4K', { write: false }),
        page(DM + 92 * 512 + 511, 'second page, already read-only', '4K', { write: false }),
        page(DM + 93 * 512, 'third page, in the 2M leaf that could not split', '2M', { write: true }),
      ],
      events: [],
      tlb: [{ cpu: 1, at: VM4K + 9, cached: false }],
    },
  },
  {
    name: 'set_memory_np on a vmalloc page: it and its direct-map alias become non-present, G lost; set_memory_p restores both without G',
    kernelFunction: 'set_memory_np, set_memory_p (cpa_process_alias propagates P; pgprot_clear_protnone_bits)',
    scenario: 'kernel',
    commands: [protect(VM4K + 3, 1, { present: false })],
    expect: {
      results: ['ok'],
      pages: [
        page(VM4K + 3, 'the vmalloc page', '4K', { present: false, global: false, write: true }),
        page(DM + VM_PFN + 3, 'its direct-map alias, split out of its 2M leaf', '4K', { present: false, global: false }),
        page(DM + VM_PFN + 4, 'the alias neighbour, present', '4K', { present: true, global: true }),
      ],
      events: [],
    },
  },
  {
    name: 'set_memory_np then set_memory_p: present again on both mappings, G lost for good',
    kernelFunction: 'set_memory_p (change_page_attr_set of _PAGE_PRESENT only)',
    scenario: 'kernel',
    commands: [protect(VM4K + 3, 1, { present: false }), protect(VM4K + 3, 1, { present: true })],
    expect: {
      results: ['ok', 'ok'],
      pages: [
        page(VM4K + 3, 'the vmalloc page', '4K', { present: true, global: false, write: true, exec: false }),
        page(DM + VM_PFN + 3, 'its direct-map alias', '4K', { present: true, global: false, write: true }),
      ],
      events: [],
    },
  },
  {
    name: 'set_memory_np_noalias on a vmalloc page: the direct map is left alone',
    kernelFunction: 'set_memory_np_noalias (CPA_NO_CHECK_ALIAS)',
    scenario: 'kernel',
    commands: [protect(VM4K + 3, 1, { present: false }, false)],
    expect: {
      results: ['ok'],
      pages: [
        page(VM4K + 3, 'the vmalloc page', '4K', { present: false }),
        page(DM + VM_PFN + 3, 'its direct-map alias, whole and present', '2M', { present: true }),
      ],
      events: [],
    },
  },
  {
    name: 'set_memory_4k on a direct-map page of a 1G leaf: the 1G and its 2M split, the page marked kept-4K',
    kernelFunction: 'set_memory_4k (force_split: should_split_large_page returns 1 at once)',
    scenario: 'kernel',
    commands: [protect(DM + GPFN + 1000, 1, { kernel4k: true })],
    expect: {
      results: ['ok'],
      pages: [
        page(DM + GPFN + 1000, 'the page', '4K', { kernel4k: true, write: true }),
        page(DM + GPFN + 1001, 'its neighbour in the split 2M piece, not marked', '4K', { kernel4k: false }),
        page(DM + GPFN + 2048, 'another 2M piece of the split 1G leaf', '2M', { kernel4k: false }),
      ],
      events: [],
    },
  },
  {
    name: 'set_memory_4k on a vmalloc page: its direct-map alias is split to 4K and marked too',
    kernelFunction: 'cpa_process_alias (alias_cpa = *cpa copies force_split and _PAGE_KERNEL_4K)',
    scenario: 'kernel',
    commands: [protect(VM4K + 5, 1, { kernel4k: true })],
    expect: {
      results: ['ok'],
      pages: [
        page(VM4K + 5, 'the vmalloc page', '4K', { kernel4k: true }),
        page(DM + VM_PFN + 5, 'its direct-map alias', '4K', { kernel4k: true }),
        page(DM + VM_PFN + 6, 'the alias neighbour', '4K', { kernel4k: false }),
      ],
      events: [],
    },
  },
  {
    name: 'set_memory_rox over 512 uniform 4K pages: collapsed into one 2M leaf; the alias split, never collapsed',
    kernelFunction: 'cpa_collapse_large_pages, collapse_pmd_page (after cpa_flush)',
    scenario: 'kernel',
    commands: [map512(), rox(VMALLOC_1G, 512)],
    expect: {
      results: ['ok', 'ok'],
      pages: [
        page(VMALLOC_1G, 'the block, collapsed', '2M', { write: false, exec: true }),
        page(DM + FRAME_2M + 7, 'the direct-map alias, read-only in 4K pieces', '4K', { write: false, exec: false }),
      ],
      events: [],
    },
  },
  {
    name: 'set_memory_rox with one page kept 4K: no collapse',
    kernelFunction: 'collapse_pmd_page (pte_flags of every PTE must equal the first\'s; _PAGE_KERNEL_4K)',
    scenario: 'kernel',
    commands: [map512(), protect(VMALLOC_1G + 7, 1, { kernel4k: true }), rox(VMALLOC_1G, 512)],
    expect: {
      results: ['ok', 'ok', 'ok'],
      pages: [
        page(VMALLOC_1G, 'the first page, still 4K', '4K', { write: false, exec: true }),
        page(VMALLOC_1G + 7, 'the kept page', '4K', { write: false, exec: true, kernel4k: true }),
      ],
      events: [],
    },
  },
  {
    name: 'set_memory_rox on pages already read-only and executable: nothing written, so nothing collapsed',
    kernelFunction: 'change_page_attr_set_clr (cpa_flush, and with it the collapse, runs only with CPA_FLUSHTLB)',
    scenario: 'kernel',
    commands: [map512(PAGE_KERNEL_ROX), rox(VMALLOC_1G, 512)],
    expect: {
      results: ['ok', 'ok'],
      pages: [
        page(VMALLOC_1G, 'the first page, still 4K', '4K', { write: false, exec: true }),
        // The alias walk still clears RW on the direct map: a change the primary walk does not see.
        page(DM + FRAME_2M, 'the direct-map alias, made read-only', '4K', { write: false, exec: false }),
      ],
      events: [],
    },
  },
  {
    name: 'set_memory_uc twice on a direct-map frame: the second is EBUSY and changes nothing; set_memory_wb frees it',
    kernelFunction: 'set_memory_uc, memtype_reserve (arch/x86/mm/pat/memtype.c reserve_ram_pages_type: -EBUSY on a page not WB)',
    scenario: 'kernel',
    commands: [protect(DM + FRAME, 1, { cache: 'UC-' }), protect(DM + FRAME, 2, { cache: 'UC-' })],
    expect: {
      results: ['ok', 'EBUSY'],
      pages: [
        page(DM + FRAME, 'the frame\'s direct-map page', '4K', { cache: 'UC-' }),
        page(DM + FRAME + 1, 'the next page, not changed by the refused call', '4K', { cache: 'WB' }),
      ],
      events: [],
      memtype: [{ pfn: FRAME, value: 'UC-' }, { pfn: FRAME + 1, value: null }],
    },
  },
  {
    name: 'set_memory_uc, set_memory_wb, set_memory_uc: the reservation is freed and taken again',
    kernelFunction: 'set_memory_wb (memtype_free after _set_memory_wb)',
    scenario: 'kernel',
    commands: [protect(DM + FRAME, 1, { cache: 'UC-' }), protect(DM + FRAME, 1, { cache: 'WB' }), protect(DM + FRAME, 1, { cache: 'UC-' })],
    expect: {
      results: ['ok', 'ok', 'ok'],
      pages: [page(DM + FRAME, 'the frame\'s direct-map page', '4K', { cache: 'UC-' })],
      events: [],
      memtype: [{ pfn: FRAME, value: 'UC-' }],
    },
  },
  {
    name: 'set_memory_wc on a direct-map frame: UC- first, then WC, the frame reserved WC',
    kernelFunction: 'set_memory_wc, _set_memory_wc (two change_page_attr calls)',
    scenario: 'kernel',
    commands: [protect(DM + FRAME, 1, { cache: 'WC' })],
    expect: {
      results: ['ok'],
      pages: [page(DM + FRAME, 'the frame\'s direct-map page', '4K', { cache: 'WC' })],
      events: [],
      memtype: [{ pfn: FRAME, value: 'WC' }],
    },
  },
  {
    name: 'set_memory_uc twice on a vmalloc page: both ok (its __pa is no RAM frame; same-type reservations do not conflict)',
    kernelFunction: 'memtype_reserve (non-RAM ranges go to the memtype tree, memtype_check_conflict accepts the same type)',
    scenario: 'kernel',
    commands: [protect(VM4K + 2, 1, { cache: 'UC-' }), protect(VM4K + 2, 1, { cache: 'UC-' })],
    expect: {
      results: ['ok', 'ok'],
      pages: [page(VM4K + 2, 'the vmalloc page', '4K', { cache: 'UC-' }), page(DM + VM_PFN + 2, 'its direct-map alias', '4K', { cache: 'UC-' })],
      events: [],
      memtype: [{ pfn: VM_PFN + 2, value: null }],
    },
  },
  {
    name: 'set_memory_uc twice on a module page: __pa of a module address is some RAM frame, not the one mapped, and the second is EBUSY',
    kernelFunction: 'set_memory_uc (__pa: __phys_addr subtracts __START_KERNEL_map from any address above it), reserve_ram_pages_type',
    scenario: 'kernel',
    commands: [map4k(L.modules + 9, FRAME + 100), protect(L.modules + 9, 1, { cache: 'UC-' }), protect(L.modules + 9, 1, { cache: 'UC-' })],
    expect: {
      results: ['ok', 'ok', 'EBUSY'],
      pages: [page(L.modules + 9, 'the module page', '4K', { cache: 'UC-' }), page(DM + FRAME + 100, 'its direct-map alias', '4K', { cache: 'UC-' })],
      events: [],
      // The frame reserved is the one __pa computes from the address, not the one the page maps.
      memtype: [{ pfn: L.modules + 9 - IMAGE, value: 'UC-' }, { pfn: FRAME + 100, value: null }],
    },
  },
  {
    name: 'vunmap of one page of a 2M vmalloc leaf: the whole leaf goes, with a WARN',
    kernelFunction: 'vunmap_pmd_range (mm/vmalloc.c: pmd_clear_huge, WARN_ON(next - addr < PMD_SIZE))',
    scenario: 'kernel',
    commands: [{ op: 'map', root: 0, vpn: VMALLOC_1G, pfn: FRAME_2M, pages: 512, prot: PAGE_KERNEL, maxPage: '2M' }, unmap(VMALLOC_1G + 5, 1)],
    expect: {
      results: ['ok', 'ok'],
      pages: [page(VMALLOC_1G + 5, 'the page asked for', null), page(VMALLOC_1G + 6, 'the rest of the leaf, gone too', null)],
      events: [{ kind: 'vunmap-huge', vpn: VMALLOC_1G, pages: 512, pfn: FRAME_2M }],
    },
  },
  {
    name: 'vunmap frees no page table: the emptied PTE and PMD tables stay, and a 4K map reuses them',
    kernelFunction: 'vunmap_range (mm/vmalloc.c: no table is freed), vmap_pages_pte_range (pte_alloc_kernel finds the table)',
    scenario: 'kernel',
    commands: [map4k(VMALLOC_1G, FRAME), unmap(VMALLOC_1G, 1), map4k(VMALLOC_1G + 1, FRAME + 1)],
    expect: {
      results: ['ok', 'ok', 'ok'],
      pages: [page(VMALLOC_1G, 'the unmapped page', null), page(VMALLOC_1G + 1, 'the page mapped again', '4K')],
      events: [],
      tablesAdded: 2,
    },
  },
  {
    name: 'a 2M vmap over a kept empty PTE table frees it first',
    kernelFunction: 'vmap_try_huge_pmd (mm/vmalloc.c), pmd_free_pte_page (arch/x86/mm/pgtable.c)',
    scenario: 'kernel',
    commands: [map4k(VMALLOC_1G, FRAME_2M), unmap(VMALLOC_1G, 1), { op: 'map', root: 0, vpn: VMALLOC_1G, pfn: FRAME_2M, pages: 512, prot: PAGE_KERNEL, maxPage: '2M' }],
    expect: {
      results: ['ok', 'ok', 'ok'],
      pages: [page(VMALLOC_1G, 'the 2M leaf', '2M')],
      events: [],
      tablesAdded: 1,
    },
  },
  {
    name: 'vunmap_range_noflush: the page goes, its stale translation stays cached and the flush is owed',
    kernelFunction: 'vunmap_range_noflush (mm/vmalloc.c: __vunmap_range_noflush without flush_tlb_kernel_range)',
    scenario: 'kernel',
    commands: [map4k(VMALLOC_1G, FRAME), read(1, VMALLOC_1G), unmapNoflush(VMALLOC_1G, 1)],
    expect: {
      results: ['ok', 'ok', 'ok'],
      pages: [page(VMALLOC_1G, 'the unmapped page', null)],
      events: [],
      tlb: [{ cpu: 1, at: VMALLOC_1G, cached: true }],
      pendingFlush: [{ vpn: VMALLOC_1G, pages: 1, reason: 'unmap' }],
      // vunmap frees no table, flush or not.
      tablesAdded: 2,
    },
  },
  {
    name: 'a 2M vmap over a kept PTE table: pmd_free_pte_page flushes its first page before the free, paying what was owed there',
    kernelFunction: 'vmap_try_huge_pmd (mm/vmalloc.c), pmd_free_pte_page (arch/x86/mm/pgtable.c: flush_tlb_kernel_range of one page, "INVLPG to clear all paging-structure caches")',
    scenario: 'kernel',
    commands: [read(0, VM4K + 9), map4k(VMALLOC_1G, FRAME_2M), read(1, VMALLOC_1G), unmapNoflush(VMALLOC_1G, 1), map2m(VMALLOC_1G, FRAME_2M)],
    expect: {
      results: ['ok', 'ok', 'ok', 'ok', 'ok'],
      pages: [page(VMALLOC_1G, 'the 2M leaf', '2M')],
      events: [],
      // The one-page flush drops the stale 4K translation and nothing elsewhere.
      tlb: [{ cpu: 1, at: VMALLOC_1G, cached: false }, { cpu: 0, at: VM4K + 9, cached: true }],
      pendingFlush: [],
      tablesAdded: 1,
    },
  },
  {
    name: 'flush_tlb_kernel_range over more than 33 pages flushes everything',
    kernelFunction: 'flush_tlb_kernel_range (arch/x86/mm/tlb.c: above tlb_single_page_flush_ceiling, do_flush_tlb_all on each CPU)',
    scenario: 'kernel',
    // The removal splits its 2M direct-map leaf (a flush_tlb_all) before the reads fill.
    commands: [invalid(FRAME, 1, false), read(0, VM4K + 9), read(1, DM + 50000), { op: 'flush', vpn: VMALLOC_1G, pages: 34 }],
    expect: {
      results: ['ok', 'ok', 'ok', 'ok'],
      pages: [page(VM4K + 9, 'a vmalloc page far from the range', '4K')],
      events: [],
      tlb: [{ cpu: 0, at: VM4K + 9, cached: false }, { cpu: 1, at: DM + 50000, cached: false }],
      // The owed direct-map page is paid too, though outside the range.
      pendingFlush: [],
    },
  },
  {
    name: 'a CPU-local flush drops only that CPU\'s translations and pays nothing owed',
    kernelFunction: 'flush_tlb_one_kernel (arch/x86/mm/tlb.c), as kmap_local\'s unmap flushes',
    scenario: 'kernel',
    commands: [invalid(FRAME, 1, false), read(0, VM4K + 9), read(1, VM4K + 9), { op: 'flushLocal', cpu: 0, vpn: VM4K + 9, pages: 1 }, { op: 'flushLocal', cpu: 1, vpn: DM + FRAME, pages: 1 }],
    expect: {
      results: ['ok', 'ok', 'ok', 'ok', 'ok'],
      pages: [page(VM4K + 9, 'the vmalloc page', '4K')],
      events: [],
      tlb: [{ cpu: 0, at: VM4K + 9, cached: false }, { cpu: 1, at: VM4K + 9, cached: true }],
      pendingFlush: [{ vpn: DM + FRAME, pages: 1, reason: 'setDirectMapInvalid' }],
    },
  },
  {
    name: 'vunmap of one page of a non-present 2M direct-map entry: a bad pmd, cleared whole',
    kernelFunction: 'vunmap_pmd_range (pmd_none_or_clear_bad: a non-present large entry has no PSE and is not a table)',
    scenario: 'kernel',
    commands: [invalid(FRAME_2M, 512), unmap(DM + FRAME_2M + 3, 1)],
    expect: {
      results: ['ok', 'ok'],
      pages: [page(DM + FRAME_2M + 3, 'the page asked for', null), page(DM + FRAME_2M + 4, 'the rest of the entry', null), page(DM + FRAME_2M + 512, 'the next 2M leaf', '2M')],
      events: [{ kind: 'bad-entry', vpn: DM + FRAME_2M, pages: 512, pfn: FRAME_2M }],
    },
  },
];
