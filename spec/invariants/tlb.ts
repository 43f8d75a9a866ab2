/**
 * L: TLBs and paging-structure caches against the tables (spec/contracts/flush.ts says
 * what each operation flushes; access.ts how a walk fills). A TLB entry may differ from
 * the tables only where a flush is owed: that is what an obligation is. Where none is
 * owed, a cached translation that grants more than the tables is a stale permission (the
 * missed flushes of CPA and vmalloc), one that differs at all is a stale translation, two
 * of different sizes that disagree are the TLB application note's undefined behaviour,
 * and a cached table entry that points to a freed table lets the CPU walk through memory
 * that is no longer a table (the 2018 pud_free_pmd_page fix, CVE-2025-71202's stale IOTLB).
 */
import { levelName, pagesPerEntry, vpnToHex, type Level, type PagingLevels } from '../address.ts';
import type { InvariantDefinition, Witness } from '../invariant.ts';
import { protEquals, protToString, type AbstractState, type Leaf, type Prot, type TlbEntry, type WalkCacheEntry } from '../state.ts';
import { rootView } from '../roots.ts';
import { leafMeets, leafText, pagesOf } from './terms.ts';

export const tlbEnd = (e: TlbEntry): number => e.leaf.vpn + pagesOf(e.leaf);

/**
 * Whether the entry's CPU still has a stale mermap allocation (spec/clients.ts MermapCpu:
 * put without a flush on that CPU since) that meets the cached leaf's pages: mermap_put
 * clears the PTEs and leaves the flush to the next arch_mermap_flush_tlb, so until then
 * the translation is owed a flush on that CPU, as an obligation is on every CPU.
 */
export function staleMermapAt(state: AbstractState, e: TlbEntry): boolean {
  return (state.clients?.mermap ?? []).some((m) => m.cpu === e.cpu && m.stale.some((a) => a.pages > 0 && a.vpn < tlbEnd(e) && e.leaf.vpn < a.vpn + a.pages));
}

/** Whether a flush is owed somewhere in the cached leaf's pages: an obligation, or a stale mermap allocation of the entry's CPU. */
export function owedAt(state: AbstractState, e: TlbEntry): boolean {
  // An empty (or negative) range owes nothing, wherever it starts.
  return state.pendingFlush.some((o) => o.pages > 0 && o.vpn < tlbEnd(e) && e.leaf.vpn < o.vpn + o.pages) || staleMermapAt(state, e);
}

/**
 * The leaves of the entry's root's view (spec/roots.ts rootView: what it translates, its
 * mirrored slots included) that meet its cached leaf, in vpn order.
 */
function tableLeaves(state: AbstractState, e: TlbEntry): readonly Leaf[] {
  const under = rootView(state, e.root).filter((l) => leafMeets(l, e.leaf.vpn, tlbEnd(e)));
  // A root's leaves may be out of order (S4 reports it): sort (stably), as grantsMoreThanTables needs.
  return [...under].sort((a, b) => a.vpn - b.vpn);
}

/** What `cached` allows that `table` does not: write, user, kernel or user execute. */
export function grantsBeyond(cached: Prot, table: Prot): string[] {
  const out: string[] = [];
  if (cached.write && !table.write) out.push('write');
  if (cached.user && !table.user) out.push('user');
  if (cached.execKernel && !table.execKernel) out.push('kernel execute');
  if (cached.execUser && !table.execUser) out.push('user execute');
  return out;
}

export const tlbText = (e: TlbEntry): string => `cpu ${e.cpu} caches ${leafText(e.leaf)}`;

export const tlbWitness = (e: TlbEntry, detail: string): Witness => ({ root: e.root, vpn: e.leaf.vpn, pages: pagesOf(e.leaf), frames: [{ pfn: e.leaf.pfn, count: pagesOf(e.leaf) }], detail: `${tlbText(e)}: ${detail}` });

/** Why a cached translation grants more than `under`, the leaves of its root that meet it in vpn order (presence, frame, permissions), or undefined. */
export function grantsMoreThanTables(e: TlbEntry, under: readonly Leaf[]): string | undefined {
  let next = e.leaf.vpn;
  for (const l of under) {
    if (l.vpn > next) break;
    if (l.vpn - l.pfn !== e.leaf.vpn - e.leaf.pfn) return `the tables map ${vpnToHex(Math.max(l.vpn, e.leaf.vpn))} to another frame (${leafText(l)})`;
    const more = grantsBeyond(e.leaf.prot, l.prot);
    if (more.length > 0) return `it grants ${more.join(', ')} that the tables do not (${protToString(l.prot)})`;
    // Overlapping leaves (S/T report them): a leaf inside one already seen must not move `next` back.
    next = Math.max(next, l.vpn + pagesOf(l));
  }
  return next >= tlbEnd(e) ? undefined : `the tables do not map ${vpnToHex(next)}`;
}

/** Why a cached translation is not the current one of `under` (its root's leaves that meet it: the same leaf, frame and attributes), or undefined. */
export function notCurrent(e: TlbEntry, under: readonly Leaf[]): string | undefined {
  const same = under.length === 1 && under[0]!.vpn === e.leaf.vpn && under[0]!.size === e.leaf.size && under[0]!.pfn === e.leaf.pfn;
  if (!same) return under.length === 0 ? 'the tables map none of its pages' : `the tables hold ${under.map(leafText).join(', ')}`;
  return protEquals(under[0]!.prot, e.leaf.prot) ? undefined : `the tables hold it with ${protToString(under[0]!.prot)}`;
}

/** Why two cached translations of one (cpu, root) conflict (different sizes, overlapping, differing in frame or attributes), or undefined. */
export function conflictingSizes(a: TlbEntry, b: TlbEntry): string | undefined {
  if (a.cpu !== b.cpu || a.root !== b.root || a.leaf.size === b.leaf.size || !leafMeets(a.leaf, b.leaf.vpn, tlbEnd(b))) return undefined;
  if (a.leaf.vpn - a.leaf.pfn !== b.leaf.vpn - b.leaf.pfn) return `it also caches ${leafText(b.leaf)}, which maps the shared pages to other frames`;
  return protEquals(a.leaf.prot, b.leaf.prot) ? undefined : `it also caches ${leafText(b.leaf)}, with other attributes`;
}

/** Every TLB entry no flush is owed for that `why` finds a reason against, a witness. */
function everyUnowedEntry(state: AbstractState, why: (e: TlbEntry, under: readonly Leaf[]) => string | undefined): Witness[] {
  return state.tlb.flatMap((e) => {
    if (owedAt(state, e)) return [];
    const reason = why(e, tableLeaves(state, e));
    return reason === undefined ? [] : [tlbWitness(e, reason)];
  });
}

export const walkCacheText = (w: WalkCacheEntry, levels: PagingLevels): string =>
  `cpu ${w.cpu} caches the ${levelName((w.level + 1) as Level, levels)} entry of root ${w.root} at ${vpnToHex(w.vpn)} (a level-${w.level} table)`;

export const TLB: readonly InvariantDefinition[] = [
  {
    id: 'L1',
    name: 'tlb_grants_no_more_than_the_tables',
    family: 'L',
    title: 'No cached translation grants more than the tables',
    statement:
      'Every TLB entry whose pages meet no owed flush (no obligation, and no stale mermap allocation of its CPU) translates ' +
      'each of its pages to a frame and with permissions the ' +
      'tables of its root give too: the page is mapped there, to the same frame, and the entry grants no write, user ' +
      'access or execute (kernel or user) that the tables do not.',
    rationale:
      'A stale TLB entry is a permission the tables no longer grant: set_memory_ro that leaves a writable translation ' +
      'cached keeps the page writable on that CPU, vfree that leaves one cached lets the CPU reach a frame that was given ' +
      'to someone else. Every page-table change that removes a right must be followed by a flush on every CPU before the ' +
      'right is relied on (cpa_flush, flush_tlb_kernel_range), and the only stale entries a correct system holds are those ' +
      'it still owes a flush for (the _noflush interfaces, whose callers flush later, and the mermap, whose mermap_put ' +
      'leaves its CPU\'s entries to the next arch_mermap_flush_tlb of that CPU).',
    references: [
      'arch/x86/mm/pat/set_memory.c (gregkh/linux 53c2f13c) change_page_attr_set_clr, cpa_flush, cpa_process_alias',
      'arch/x86/mm/tlb.c (gregkh/linux 399ec9ca) flush_tlb_kernel_range',
      'mm/mermap.c (linux-mm/linux-mm b7f5c72f) mermap_put, arch_mermap_flush_tlb',
      'Intel SDM vol. 3 §4.10.4 (invalidation of TLBs and paging-structure caches)',
    ],
    kernel: 'strict-only',
    kernelNote:
      'change_page_attr_set_clr flushes only when the primary walk changed an entry (CPA_FLUSHTLB is set on the primary ' +
      'cpa_data; the alias walk sets it on its own copy), so a set_memory_ro of a vmalloc page that is already read-only ' +
      'makes its direct-map alias read-only without any flush, and a CPU that cached the alias keeps writing through it.',
    holds: (state) => everyUnowedEntry(state, grantsMoreThanTables),
  },
  {
    id: 'L2',
    name: 'tlb_entries_are_current_translations_where_no_flush_is_owed',
    family: 'L',
    title: 'Cached translations are current where no flush is owed',
    statement:
      'Every TLB entry whose pages meet no owed flush (no obligation, and no stale mermap allocation of its CPU) is a leaf ' +
      'of its root\'s tables exactly: the same first page, size, ' +
      'frame and attributes. In particular, after flushAll every cached translation is a current one.',
    rationale:
      'L1 is the security half; this is coherence. A cached translation of the wrong size (a 2M entry kept after a split, ' +
      'a 4K one after a collapse) or with other attributes (a cache mode set_memory_wc changed) makes the CPU behave as ' +
      'the tables no longer say, and the kernel\'s own reasoning about a page (lookup_address, the CPA walk) no longer ' +
      'describes what the CPU does. A flush of everything must leave nothing but what a fresh walk would fill.',
    references: [
      'arch/x86/mm/pat/set_memory.c (gregkh/linux 53c2f13c) __split_large_page (flush_tlb_all after the split), cpa_collapse_large_pages',
      'arch/x86/mm/tlb.c (gregkh/linux 399ec9ca) flush_tlb_all',
    ],
    kernel: 'strict-only',
    kernelNote:
      'The same gap as L1: a change made only in a CPA alias is not flushed, so the alias keeps its old attributes cached ' +
      '(less permissive ones too: set_memory_rw of a page whose primary entry is already writable).',
    holds: (state) => everyUnowedEntry(state, notCurrent),
  },
  {
    id: 'L3',
    name: 'no_page_cached_twice_with_different_sizes_and_attributes',
    family: 'L',
    title: 'No page cached at two sizes that disagree',
    statement:
      'No two TLB entries of one CPU and root that overlap have different sizes and differ in the frame of a shared page ' +
      'or in attributes.',
    rationale:
      'Intel\'s TLB application note, quoted in __split_large_page: "The TLBs may contain both ordinary and large-page ' +
      'translations for a 4-KByte range of linear addresses ... If the two translations differ with respect to page frame ' +
      'or attributes (e.g., permissions), processor behavior is undefined." The kernel flushes every TLB after a split and ' +
      'before the new small entries are changed, and collapse_large_pages requires the flush before the new large entry is ' +
      'used, so that this never happens.',
    references: [
      'arch/x86/mm/pat/set_memory.c (gregkh/linux 53c2f13c) __split_large_page, collapse_large_pages',
      'Intel, TLBs, Paging-Structure Caches, and Their Invalidation (application note 317080)',
    ],
    kernel: 'guarantees',
    kernelNote:
      'Every split is followed by flush_tlb_all under pgd_lock before the split entries change (__split_large_page), and ' +
      'cpa_collapse_large_pages flushes every TLB before it frees the old tables; vmalloc reuses an address range only ' +
      'after the lazy purge has flushed it. That last guarantee is the allocator\'s, not vmap_pages_range\'s: the linux ' +
      'profile maps wherever it is asked, so a linux campaign that maps a huge leaf over a range vunmap_range_noflush left ' +
      'owed shows this break as a finding (the strict map flushes what is owed there first).',
    holds: (state) => {
      const out: Witness[] = [];
      for (const a of state.tlb) {
        for (const b of state.tlb) {
          if (tlbOrderBefore(a, b)) {
            const why = conflictingSizes(a, b);
            if (why !== undefined) out.push(tlbWitness(a, why));
          }
        }
      }
      return out;
    },
  },
  {
    id: 'L4',
    name: 'no_cached_table_entry_points_to_a_freed_table',
    family: 'L',
    title: 'No paging-structure cache holds a freed table',
    statement: 'No paging-structure-cache entry of any CPU refers to a table that was freed after the entry was cached.',
    rationale:
      'A CPU that caches a non-leaf entry walks through the table it points to without reading the entries above it, so a ' +
      'table freed while some CPU still caches a pointer to it is walked through after it has been reused: as another ' +
      'table (a translation nobody wrote), or as data (a translation an attacker writes). x86/mm: "Add TLB purge to free ' +
      'pmd/pte page interfaces" (2018) added the INVLPG to pud_free_pmd_page and pmd_free_pte_page for this; the IOMMU ' +
      'SVA stale kernel IOTLB (CVE-2025-71202) is the same bug in a device\'s walk cache. A table frame held by no walk is ' +
      'the table checker\'s concern (impl/check.ts: freed but linked).',
    references: [
      'arch/x86/mm/pgtable.c pud_free_pmd_page, pmd_free_pte_page ("INVLPG to clear all paging-structure caches")',
      'arch/x86/mm/pat/set_memory.c (gregkh/linux 53c2f13c) cpa_collapse_large_pages (flush_tlb_all, then free)',
      'Intel SDM vol. 3 §4.10.3 (paging-structure caches), §4.10.4.1 (INVLPG invalidates every paging-structure-cache entry)',
      'CVE-2025-71202',
    ],
    kernel: 'guarantees',
    kernelNote:
      'Every path that frees a kernel page table flushes first: pmd_free_pte_page and pud_free_pmd_page flush a page of ' +
      'the range (INVLPG, which empties the paging-structure caches), cpa_collapse_large_pages flushes every TLB, and ' +
      'vunmap frees no table at all.',
    holds: (state) =>
      (state.walkCache ?? [])
        .filter((w) => w.table === 'freed')
        .map((w) => ({ root: w.root, vpn: w.vpn, pages: pagesPerEntry((w.level + 1) as Level), detail: `${walkCacheText(w, state.config.levels)}, which was freed` })),
  },
];

/** Each unordered pair once: a before b in the canonical TLB order (cpu, root, vpn, size ascending). */
function tlbOrderBefore(a: TlbEntry, b: TlbEntry): boolean {
  return (a.cpu - b.cpu || a.root - b.root || a.leaf.vpn - b.leaf.vpn || pagesOf(a.leaf) - pagesOf(b.leaf)) < 0;
}
