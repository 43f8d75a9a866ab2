/**
 * The address spaces of a system with the isolation capability (KPTI, the LDT remap, ASI),
 * and how to read one: which top-level slots a root takes from another root's tables.
 *
 * The kernel never copies its kernel half into a new page table; it copies top-level
 * entries, so every pgd's kernel half *is* init_mm's tables (pgd_ctor → clone_pgd_range,
 * arch/x86/mm/pgtable.c; new top-level entries reach every pgd through sync_global_pgds,
 * arch/x86/mm/init_64.c, gregkh/linux 6bf94737). A KPTI user copy takes its kernel half
 * the same way from the user half of swapper_pg_dir (clone_pgd_range copies
 * kernel_to_user_pgdp too), which is where pti_clone_pgtable writes (arch/x86/mm/pti.c,
 * gregkh/linux 53c2f13c); the LDT remap is the one per-process kernel slot (LDT_PGD_ENTRY,
 * map_ldt_struct and map_ldt_struct_to_user, arch/x86/kernel/ldt.c). An ASI restricted root
 * copies its kernel half from asi_global_nonsensitive_pgd, which shares everything from
 * VMALLOC_START up with init_mm (asi_clone_range), and its user half from the process's pgd
 * (asi_init, asi_clone_user_pgtbl, arch/x86/mm/asi.c of bjackman/linux 003868f6).
 *
 * So the abstract state lists, for each root, only the leaves in its *own* slots, and
 * MIRRORS says which slots it takes from which root. A slot that a root should mirror but
 * does not (its top-level entry differs from the source's: a missing pgd sync) is listed
 * in `AbstractRoot.diverged`, and the root's own leaves there are listed (invariant K4).
 *
 * Trusted: root numbering, slot geometry, the LDT slots and the PTI allowlist are shared
 * vocabulary of model and impl (address geometry of the isolation capability), not checked
 * by refinement. `rootView` is the definition of what a root translates; the impl does not
 * use it (it walks its tables).
 */
import { PAGES, kernelLayout, lowerHalfEnd, pagesPerEntry, upperHalfStart, VPN_LIMIT, type PagingLevels, type Vpn } from './address.ts';
import { INIT_MM, type AbstractRoot, type AbstractState, type Leaf, type Prot, type RootId, type RootKind, type SystemConfig } from './state.ts';

/** swapper_pg_dir's KPTI user half: the kernel half of every user copy. Trusted vocabulary. */
export const PTI_USER_ROOT: RootId = 1;
/** asi_global_nonsensitive_pgd: the kernel half of every ASI restricted root. Trusted vocabulary. */
export const ASI_GLOBAL_ROOT: RootId = 2;

/** The roots of process `pid` (pids count from 1): its pgd, its KPTI user copy, its ASI restricted root. Trusted vocabulary. */
export function processRootIds(pid: number): { readonly kernelRoot: RootId; readonly userRoot: RootId; readonly asiRoot: RootId } {
  return { kernelRoot: 3 * pid, userRoot: 3 * pid + 1, asiRoot: 3 * pid + 2 };
}

/** The process a root id belongs to, or undefined for roots 0..2. Trusted vocabulary. */
export function pidOfRoot(root: RootId): number | undefined {
  return root >= 3 ? Math.floor(root / 3) : undefined;
}

/** Pages one top-level entry covers: 512 GiB with 4-level paging, 256 TiB with 5-level. Trusted geometry. */
export function slotPages(levels: PagingLevels): number {
  return pagesPerEntry(levels);
}

/** A half-open page range. */
export interface PageRange {
  readonly vpn: Vpn;
  readonly pages: number;
}

/**
 * The LDT remap: one top-level slot of its own (LDT_PGD_ENTRY: 0xffff880000000000 with
 * 4-level paging, 0xff10000000000000 with 5-level), holding two LDT slots of
 * LDT_SLOT_STRIDE = LDT_ENTRIES * LDT_ENTRY_SIZE = 8192 * 8 bytes = 16 pages each
 * (ldt_slot_va). Trusted geometry.
 */
export const LDT_SLOT_PAGES = 16;
export function ldtRemap(levels: PagingLevels): PageRange {
  return { vpn: kernelLayout(levels).ldtRemap, pages: slotPages(levels) };
}
/** ldt_slot_va(slot): the first page of LDT slot 0 or 1. Trusted geometry. */
export function ldtSlotVpn(levels: PagingLevels, slot: 0 | 1): Vpn {
  return kernelLayout(levels).ldtRemap + slot * LDT_SLOT_PAGES;
}

/**
 * map_ldt_struct's PTE protection: __PAGE_KERNEL_RO & ~_PAGE_GLOBAL, filtered by
 * __supported_pte_mask (the LDT is per process, so never global). Trusted vocabulary.
 */
export const LDT_PROT: Prot = { write: false, user: false, execKernel: false, execUser: false, global: false, cache: 'WB' };

/**
 * Where a root takes its translation from another root's tables: the slots of
 * [vpn, vpn + pages), which is whole top-level slots, come from root `from`.
 */
export interface Mirror extends PageRange {
  readonly from: RootId;
}

/** The kernel half without the LDT slot, as slot-aligned ranges. */
function kernelHalfBesideLdt(levels: PagingLevels): PageRange[] {
  const ldt = ldtRemap(levels);
  const start = upperHalfStart(levels);
  return [
    { vpn: start, pages: ldt.vpn - start },
    { vpn: ldt.vpn + ldt.pages, pages: VPN_LIMIT - (ldt.vpn + ldt.pages) },
  ];
}

/**
 * What each kind of root mirrors (the module header says why):
 *   kernel          nothing (init_mm's tables are the source of every kernel half);
 *   process-kernel  the kernel half but the LDT slot, from init_mm;
 *   kernel-user     nothing (the PTI clones are its own);
 *   process-user    the kernel half but the LDT slot, from the PTI user root; the LDT slot
 *                   from its process's pgd (map_ldt_struct_to_user copies the entry);
 *   asi-global      VMALLOC_START to the top of the kernel half, from init_mm;
 *   asi             the user half from its process's pgd (NX-poisoned, as mm->pgd is), the
 *                   whole kernel half from the ASI global root.
 * Trusted geometry.
 */
export function mirrorsOf(levels: PagingLevels, kind: RootKind, pid: number | undefined): readonly Mirror[] {
  // The checks ask this of every root in every state: the answer depends on these three only.
  const key = `${levels}:${kind}:${pid ?? ''}`;
  let mirrors = mirrorsCache.get(key);
  if (mirrors === undefined) mirrorsCache.set(key, (mirrors = Object.freeze(mirrorsOfKind(levels, kind, pid))));
  return mirrors;
}
const mirrorsCache = new Map<string, readonly Mirror[]>();

function mirrorsOfKind(levels: PagingLevels, kind: RootKind, pid: number | undefined): Mirror[] {
  const kernelRoot = pid === undefined ? INIT_MM : processRootIds(pid).kernelRoot;
  const upper = upperHalfStart(levels);
  switch (kind) {
    case 'kernel':
    case 'kernel-user':
      return [];
    case 'process-kernel':
      return kernelHalfBesideLdt(levels).map((r) => ({ ...r, from: INIT_MM }));
    case 'process-user':
      return [...kernelHalfBesideLdt(levels).map((r) => ({ ...r, from: PTI_USER_ROOT })), { ...ldtRemap(levels), from: kernelRoot }].sort((a, b) => a.vpn - b.vpn);
    case 'asi-global': {
      const v = kernelLayout(levels).vmallocStart;
      return [{ vpn: v, pages: VPN_LIMIT - v, from: INIT_MM }];
    }
    case 'asi':
      return [{ vpn: 0, pages: lowerHalfEnd(levels), from: kernelRoot }, { vpn: upper, pages: VPN_LIMIT - upper, from: ASI_GLOBAL_ROOT }];
  }
}

/** The mirrors of a root that it actually holds: MIRRORS minus its diverged slots. */
export function heldMirrors(levels: PagingLevels, root: AbstractRoot): readonly Mirror[] {
  const all = mirrorsOf(levels, root.kind, root.pid);
  // A root with no diverged slot (nearly every one) holds them all: no copy.
  if (root.diverged === undefined || root.diverged.length === 0 || all.length === 0) return all;
  const slot = slotPages(levels);
  const diverged = [...root.diverged].sort((a, b) => a - b);
  const out: Mirror[] = [];
  for (const m of all) {
    let at = m.vpn;
    const end = m.vpn + m.pages;
    for (const d of diverged) {
      if (d < at || d >= end) continue;
      if (d > at) out.push({ vpn: at, pages: d - at, from: m.from });
      at = d + slot;
    }
    if (at < end) out.push({ vpn: at, pages: end - at, from: m.from });
  }
  return out;
}

function clipLeaves(leaves: readonly Leaf[], lo: Vpn, hi: Vpn): Leaf[] {
  return leaves.filter((l) => l.vpn < hi && l.vpn + PAGES[l.size] > lo);
}

/**
 * What root `id` translates: its own leaves outside the slots it mirrors, and in each
 * mirrored slot the view of the root it mirrors (recursively: an ASI root's vmalloc slots
 * are the ASI global root's, which are init_mm's). Sorted by vpn; empty for a root the
 * state does not have. Mirrors are whole top-level slots, so no leaf straddles one.
 */
export function rootView(state: AbstractState, id: RootId, seen: ReadonlySet<RootId> = new Set()): Leaf[] {
  const root = state.roots.find((r) => r.id === id);
  // A root that mirrors itself through others (a hand-built state) translates nothing there.
  if (root === undefined || seen.has(id)) return [];
  const mirrors = heldMirrors(state.config.levels, root);
  if (mirrors.length === 0) return [...root.leaves];
  const inMirror = (l: Leaf): boolean => mirrors.some((m) => l.vpn >= m.vpn && l.vpn < m.vpn + m.pages);
  const out = root.leaves.filter((l) => !inMirror(l));
  const path = new Set([...seen, id]);
  // One push per leaf: a spread of a mirrored view would pass every leaf as an argument (262,144 overflow the stack).
  for (const m of mirrors) for (const l of clipLeaves(rootView(state, m.from, path), m.vpn, m.vpn + m.pages)) out.push(l);
  return out.sort((a, b) => a.vpn - b.vpn);
}

/**
 * The root whose own tables a walk from root `id` goes through at `vpn`: `id` itself
 * where it holds the slot, else the owner for the root it mirrors the slot from (a
 * process pgd's vmalloc slots are init_mm's tables). Cycle-safe, like rootView. Trusted geometry.
 */
export function tableOwner(state: AbstractState, id: RootId, vpn: Vpn, seen?: ReadonlySet<RootId>): RootId {
  const root = rootOf(state, id);
  if (root === undefined || seen?.has(id) === true) return id;
  const m = mirrorHolding(heldMirrors(state.config.levels, root), vpn);
  if (m === undefined) return id;
  const path = new Set(seen);
  path.add(id);
  return tableOwner(state, m.from, vpn, path);
}

/**
 * The first root of the state with id `id`, as `state.roots.find` picks it: a loop, not
 * find() with an arrow (the postconditions ask this of every cached table entry and every
 * translated page).
 */
export function rootOf(state: AbstractState, id: RootId): AbstractRoot | undefined {
  for (const r of state.roots) if (r.id === id) return r;
  return undefined;
}

/** The mirror of `mirrors` that holds page `vpn`, if any. */
export function mirrorHolding(mirrors: readonly Mirror[], vpn: Vpn): Mirror | undefined {
  for (const m of mirrors) if (vpn >= m.vpn && vpn < m.vpn + m.pages) return m;
  return undefined;
}

/**
 * The kernel ranges a KPTI user copy may map (K2): the cpu_entry_area and espfix slots
 * (pti_clone_user_shared, pti_setup_espfix64 clone their p4d entry, 512 GiB), the LDT remap, and the
 * kernel image from _text to the end of rodata (pti_clone_entry_text, and
 * pti_clone_kernel_text: "do not clone the areas past rodata, they might contain
 * secrets"). `textStart` and `rodataEnd` are the image's high-map pages; absent when the
 * state has no kernel image. Trusted geometry.
 */
export function ptiAllowlist(config: SystemConfig, image?: { readonly textStart: Vpn; readonly rodataEnd: Vpn }): PageRange[] {
  const L = kernelLayout(config.levels);
  // pti_clone_p4d copies one p4d entry: 512 GiB in both paging modes.
  const p4d = pagesPerEntry(4);
  const out: PageRange[] = [ldtRemap(config.levels), { vpn: L.cpuEntryArea, pages: p4d }, { vpn: L.espfix, pages: p4d }];
  if (image !== undefined && image.rodataEnd > image.textStart) out.push({ vpn: image.textStart, pages: image.rodataEnd - image.textStart });
  return out.sort((a, b) => a.vpn - b.vpn);
}
