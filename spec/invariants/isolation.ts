/**
 * K: KPTI and the LDT remap; A: ASI. What the roots of spec/roots.ts must say about each
 * other (spec/contracts/isolation.ts gives the operations that build them). A state
 * without those roots (no isolation capability, a single dump) holds all of them
 * vacuously.
 */
import { isKernelHalf, vpnToHex, type Vpn } from '../address.ts';
import { kernelImage } from '../contracts/linux.ts';
import type { InvariantDefinition, Witness } from '../invariant.ts';
import { heldMirrors, ldtRemap, mirrorsOf, processRootIds, ptiAllowlist, rootView, slotPages, type Mirror, type PageRange } from '../roots.ts';
import { INIT_MM, protEquals, type AbstractRoot, type AbstractState, type Leaf, type Prot } from '../state.ts';
import { leafFrames, leafMeets, leafText, leafWitness, pagesOf, sharedFrames, type FrameRange } from './terms.ts';
import { tlbEnd, tlbWitness } from './tlb.ts';

const userHalf = (state: AbstractState, leaf: Leaf): boolean => !isKernelHalf(leaf.vpn, state.config.levels);
export const inRange = (leaf: Leaf, r: { vpn: Vpn; pages: number }): boolean => leaf.vpn >= r.vpn && leaf.vpn + pagesOf(leaf) <= r.vpn + r.pages;
/** prot without the execute rights: what NX poisoning keeps. */
const sameButExec = (a: Prot, b: Prot): boolean => protEquals({ ...a, execKernel: false, execUser: false }, { ...b, execKernel: false, execUser: false });
export const sameTranslation = (a: Leaf, b: Leaf): boolean => a.vpn - a.pfn === b.vpn - b.pfn && protEquals(a.prot, b.prot);

/** Pairs (a, b) of a leaf of each list that share a page: every pair, in any order the lists come (S4 and T1 report the disorder). */
function overlaps(as: readonly Leaf[], bs: readonly Leaf[]): [Leaf, Leaf][] {
  return as.flatMap((a) => bs.filter((b) => leafMeets(b, a.vpn, a.vpn + pagesOf(a))).map((b): [Leaf, Leaf] => [a, b]));
}

/** The user-half leaves of a root, by vpn. */
const userLeaves = (state: AbstractState, root: AbstractRoot | undefined): Leaf[] => (root?.leaves ?? []).filter((l) => userHalf(state, l));

/** Why a user-half leaf of a user copy is not `m`, the leaf at its vpn in the kernel copy, but for execute rights; undefined when it is. */
export function userCopyDiffers(l: Leaf, m: Leaf | undefined): string | undefined {
  if (m !== undefined && m.size === l.size && m.pfn === l.pfn && sameButExec(m.prot, l.prot)) return undefined;
  return `${leafText(l)} in the user copy is ${m === undefined ? 'not in' : `${leafText(m)} in`} the kernel copy`;
}

/** Why a user-half leaf of a kernel copy breaks K1 (missing from the user copy, or not NX-poisoned), one reason each. */
export function kernelCopyReasons(l: Leaf, inUserCopy: boolean): string[] {
  const out: string[] = [];
  if (!inUserCopy) out.push(`${leafText(l)} in the kernel copy is not in the user copy`);
  if (l.prot.execKernel || l.prot.execUser) out.push(`${leafText(l)}: a user page executable in the kernel copy (not NX-poisoned)`);
  return out;
}

/** The pids of the processes the state has a root of (a KPTI pair, or what is left of one). */
export const processPids = (state: AbstractState): number[] =>
  [...new Set(state.roots.flatMap((r) => ((r.kind === 'process-kernel' || r.kind === 'process-user') && r.pid !== undefined ? [r.pid] : [])))];

function k1(state: AbstractState): Witness[] {
  const out: Witness[] = [];
  for (const pid of processPids(state)) {
    const ids = processRootIds(pid);
    const user = state.roots.find((r) => r.id === ids.userRoot && r.kind === 'process-user');
    const kernelRoot = state.roots.find((r) => r.id === ids.kernelRoot && r.kind === 'process-kernel');
    const u = userLeaves(state, user);
    const k = userLeaves(state, kernelRoot);
    const kAt = new Map(k.map((l) => [l.vpn, l]));
    const uAt = new Map(u.map((l) => [l.vpn, l]));
    for (const l of u) {
      const why = userCopyDiffers(l, kAt.get(l.vpn));
      if (why !== undefined) out.push(leafWitness(user!, l, why));
    }
    if (kernelRoot === undefined) continue;
    for (const l of k) for (const why of kernelCopyReasons(l, uAt.has(l.vpn))) out.push(leafWitness(kernelRoot, l, why));
  }
  return out;
}

/** The PTI allowlist of the state's machine (spec/roots.ts ptiAllowlist, with its kernel image). */
export function stateAllowlist(state: AbstractState): PageRange[] {
  const image = kernelImage(state.config, state.frames);
  return ptiAllowlist(state.config, image === undefined ? undefined : { textStart: image.textStart, rodataEnd: image.rodataHpageEnd });
}

/** Why a kernel-half leaf a user copy translates breaks K2, or undefined. */
export function userCopyKernelLeaf(l: Leaf, allow: readonly PageRange[]): string | undefined {
  if (l.size === '1G') return `${leafText(l)}: a 1G leaf in a user copy (the PTI walk has none: pti_user_pagetable_walk_pmd)`;
  return allow.some((r) => inRange(l, r)) ? undefined : `${leafText(l)}: outside the PTI allowlist (cpu_entry_area, espfix, LDT remap, _text.._end_rodata)`;
}

function k2(state: AbstractState): Witness[] {
  const allow = stateAllowlist(state);
  const out: Witness[] = [];
  for (const root of state.roots.filter((r) => r.kind === 'kernel-user' || r.kind === 'process-user')) {
    for (const l of rootView(state, root.id)) {
      const why = userHalf(state, l) ? undefined : userCopyKernelLeaf(l, allow);
      if (why !== undefined) out.push(leafWitness(root, l, why));
    }
  }
  return out;
}

/** A global leaf in the user half or the LDT slot: only a process root can break K3 this way. */
export const perProcessGlobal = (state: AbstractState, l: Leaf): boolean => l.prot.global && (userHalf(state, l) || inRange(l, ldtRemap(state.config.levels)));
export const PER_PROCESS_GLOBAL = 'a global translation in a per-process part of the address space';
/** Whether leaves `x` and `y` of two roots, sharing a page, break K3: one is global and they translate differently. */
export const globalConflict = (x: Leaf, y: Leaf): boolean => (x.prot.global || y.prot.global) && !sameTranslation(x, y);
export const globalConflictText = (global: Leaf, other: AbstractRoot, otherLeaf: Leaf): string => `${leafText(global)} is global, but root ${other.id} maps ${leafText(otherLeaf)} there`;

function k3(state: AbstractState): Witness[] {
  const out: Witness[] = [];
  for (const root of state.roots) {
    if (root.pid === undefined) continue;
    for (const l of root.leaves) if (perProcessGlobal(state, l)) out.push(leafWitness(root, l, `${leafText(l)}: ${PER_PROCESS_GLOBAL}`));
  }
  state.roots.forEach((a, i) => {
    for (const b of state.roots.slice(i + 1)) {
      for (const [x, y] of overlaps(a.leaves, b.leaves)) {
        if (!globalConflict(x, y)) continue;
        // The witness is the global leaf (the first root's when both are).
        out.push(x.prot.global ? leafWitness(a, x, globalConflictText(x, b, y)) : leafWitness(b, y, globalConflictText(y, a, x)));
      }
    }
  });
  return out;
}

/** K4's witness for a diverged slot: the whole slot, no frames. */
export function divergedWitness(state: AbstractState, root: AbstractRoot, d: Vpn): Witness {
  const m = mirrorsOf(state.config.levels, root.kind, root.pid).find((x) => d >= x.vpn && d < x.vpn + x.pages);
  return { root: root.id, vpn: d, pages: slotPages(state.config.levels), detail: `top-level slot ${vpnToHex(d)} of root ${root.id} does not hold root ${m?.from ?? '?'}'s entry` };
}
export const listedInMirrorText = (l: Leaf, root: AbstractRoot, m: Mirror): string => `${leafText(l)} is listed in a slot root ${root.id} takes from root ${m.from}`;

function k4(state: AbstractState): Witness[] {
  const out: Witness[] = [];
  for (const root of state.roots) {
    for (const d of root.diverged ?? []) out.push(divergedWitness(state, root, d));
    for (const m of heldMirrors(state.config.levels, root)) {
      for (const l of root.leaves) if (leafMeets(l, m.vpn, m.vpn + m.pages)) out.push(leafWitness(root, l, listedInMirrorText(l, root, m)));
    }
  }
  return out;
}

export const LDT_LEAF_FREED = 'the LDT slot still maps a freed frame';
export const LDT_TLB_FREED = 'a TLB entry of the LDT slot still reaches a freed frame';

function k5(state: AbstractState): Witness[] {
  const ldt = ldtRemap(state.config.levels);
  const free = state.frames.filter((r) => r.use === 'free');
  const out: Witness[] = [];
  for (const root of state.roots) {
    for (const l of root.leaves) {
      if (!inRange(l, ldt)) continue;
      for (const run of free) if (sharedFrames(leafFrames(l), run) !== undefined) out.push(leafWitness(root, l, `${leafText(l)}: ${LDT_LEAF_FREED}`));
    }
  }
  for (const e of state.tlb) {
    if (e.leaf.vpn < ldt.vpn || tlbEnd(e) > ldt.vpn + ldt.pages) continue;
    for (const run of free) if (sharedFrames(leafFrames(e.leaf), run) !== undefined) out.push(tlbWitness(e, LDT_TLB_FREED));
  }
  return out;
}

/** The restricted roots: the ASI global root and every process's ASI root. */
export const isRestricted = (r: AbstractRoot): boolean => r.kind === 'asi-global' || r.kind === 'asi';

/** A1's witness: the pages of `l` that map the sensitive frames `shared`. */
export const sensitiveWitness = (root: AbstractRoot, l: Leaf, shared: FrameRange): Witness =>
  ({ root: root.id, vpn: l.vpn + (shared.pfn - l.pfn), pages: shared.count, frames: [shared], detail: `${leafText(l)}: a restricted root maps a sensitive frame` });

function a1(state: AbstractState): Witness[] {
  const sensitive = state.frames.filter((r) => r.sensitive);
  const out: Witness[] = [];
  for (const root of state.roots.filter(isRestricted)) {
    for (const l of rootView(state, root.id)) {
      if (userHalf(state, l)) continue;
      for (const run of sensitive) {
        const shared = sharedFrames(leafFrames(l), run);
        if (shared !== undefined) out.push(sensitiveWitness(root, l, shared));
      }
    }
  }
  return out;
}

/** Why a restricted root's own kernel-half leaf `l` is not init_mm's translation, given `under`, init_mm's leaves that meet it; or undefined. */
export function unrestrictedDiffers(l: Leaf, under: readonly Leaf[]): string | undefined {
  const covered = under.reduce((n, u) => n + Math.min(u.vpn + pagesOf(u), l.vpn + pagesOf(l)) - Math.max(u.vpn, l.vpn), 0);
  const differs = under.find((u) => !sameTranslation(u, l));
  if (covered >= pagesOf(l) && differs === undefined) return undefined;
  return `${leafText(l)}: init_mm ${differs === undefined ? 'does not map all of it' : `maps ${leafText(differs)} there`}`;
}

function a2(state: AbstractState): Witness[] {
  const unrestricted = rootView(state, INIT_MM);
  const out: Witness[] = [];
  for (const root of state.roots.filter(isRestricted)) {
    for (const l of root.leaves.filter((x) => !userHalf(state, x))) {
      const why = unrestrictedDiffers(l, unrestricted.filter((u) => leafMeets(u, l.vpn, l.vpn + pagesOf(l))));
      if (why !== undefined) out.push(leafWitness(root, l, why));
    }
  }
  return out;
}

const PTI = 'arch/x86/mm/pti.c (gregkh/linux 53c2f13c)';
const LDT = 'arch/x86/kernel/ldt.c (bjackman/linux dbbd5825; upstream map_ldt_struct_to_user)';
const ASI = 'arch/x86/mm/asi.c (bjackman/linux 003868f6, the ASI series)';

export const ISOLATION: readonly InvariantDefinition[] = [
  {
    id: 'K1',
    name: 'user_copy_user_half_equals_the_kernel_copy_but_nx',
    family: 'K',
    title: 'KPTI pair agrees on the user half',
    statement: "For every process, the user half of its user copy and of its pgd hold the same leaves (vpn, size, frame, prot but execute), and the pgd's are not executable.",
    rationale:
      '__pti_set_user_pgtbl writes every user-half pgd entry to both copies and sets _PAGE_NX in the kernel copy\'s, "so that, if we ' +
      'somehow screw up and return to usermode with the kernel CR3 loaded, we\'ll get a page fault instead of allowing user code to ' +
      'execute with the wrong CR3". A user page mapped in one copy only is either unreachable from user mode or readable from the wrong CR3.',
    references: [`${PTI} __pti_set_user_pgtbl`, 'arch/x86/include/asm/pgtable_64.h native_set_pgd'],
    kernel: 'guarantees',
    kernelNote: 'Both copies share every table below the pgd and set_pgd writes both pgd entries, so the halves cannot differ but for NX.',
    holds: k1,
  },
  {
    id: 'K2',
    name: 'user_copies_map_only_the_pti_allowlist',
    family: 'K',
    title: 'User copies map only the PTI allowlist',
    statement: 'No kernel-half leaf of a user copy (root 1 or a process-user root) lies outside the cpu_entry_area, espfix and LDT-remap ranges and the kernel image from _text to __end_rodata_aligned, and none is a 1G leaf.',
    rationale:
      'The user copy is what a Meltdown-style read from user mode can reach. pti.c clones exactly the entry text, the cpu_entry_area, ' +
      'espfix and, where global kernel text is allowed, the image "up to rodata: do not clone the areas past rodata, they might contain ' +
      'secrets". A clone past it, or a freed image hole left mapped (c40a56a7818c, "x86/mm/init: Remove freed kernel image areas from ' +
      'alias mapping"), leaks kernel data to every process.',
    references: [`${PTI} pti_clone_user_shared, pti_setup_espfix64, pti_clone_entry_text, pti_clone_kernel_text`, 'c40a56a7818c'],
    kernel: 'strict-only',
    kernelNote: 'pti_clone_pgtable clones whatever range it is given; only its callers keep to the allowlist, and debug_checkwx_user checks W+X only.',
    holds: k2,
  },
  {
    id: 'K3',
    name: 'global_translations_are_the_same_in_every_root',
    family: 'K',
    title: 'Global translations identical in every address space',
    statement: 'Wherever two roots map one page and either leaf is global, both translate it to the same frame with the same prot; and no process root has a global leaf in its user half or its LDT slot.',
    rationale:
      'A global TLB entry survives the CR3 switch between the KPTI copies and between processes, so it must mean the same everywhere: ' +
      'pti_clone_pgtable sets _PAGE_GLOBAL only on entries it copies into both copies, and map_ldt_struct clears it ' +
      '(__PAGE_KERNEL_RO & ~_PAGE_GLOBAL, "filter out unsupported __PAGE_KERNEL* bits") because an LDT is per process. A stale clone ' +
      'left global serves the user copy a translation the kernel copy no longer has.',
    references: [`${PTI} pti_clone_pgtable`, `${LDT} map_ldt_struct`],
    kernel: 'strict-only',
    kernelNote: 'The clones are copies: a set_memory_* on a cloned global 2M leaf or PTE after pti_clone_pgtable is not propagated until pti_finalize clones again.',
    holds: k3,
  },
  {
    id: 'K4',
    name: 'top_level_entries_identical_across_roots',
    family: 'K',
    title: 'Top-level kernel entries shared by every root',
    statement: 'Every root holds, in each top-level slot spec/roots.ts says it mirrors, exactly the entry of the root it mirrors (no diverged slot, no own leaf there).',
    rationale:
      'Kernel mappings reach a process only through the top-level entries its pgd copied from init_mm (clone_pgd_range in pgd_ctor), so a ' +
      'new top-level kernel entry must be copied into every pgd: sync_global_pgds / arch_sync_kernel_mappings. Missing it faults on a ' +
      'vmalloc or hot-added address in some processes only (the 5-level vmemmap bug fixed by making ARCH_PAGE_TABLE_SYNC_MASK cover ' +
      'PGD modifications). pti.c notes that top-level entries added to the user half of swapper_pg_dir after boot are not propagated.',
    references: ['arch/x86/mm/init_64.c (gregkh/linux 6bf94737) sync_global_pgds, arch_sync_kernel_mappings', `${PTI} __pti_set_user_pgtbl`, 'arch/x86/mm/pgtable.c pgd_ctor'],
    kernel: 'guarantees',
    kernelNote: 'sync_global_pgds copies new init_mm entries into every pgd on pgd_list; the user copies rely on every clone being made at boot, before the first process.',
    holds: k4,
  },
  {
    id: 'K5',
    name: 'ldt_pages_unmapped_and_flushed_before_freed',
    family: 'K',
    title: 'LDT pages unmapped and flushed before they are freed',
    statement: 'No leaf in the LDT remap of any root maps a free frame, and no TLB entry there reaches one.',
    rationale:
      'The LDT remap is readable through the user copy (it is in the allowlist), so a freed LDT page still mapped there is a Meltdown ' +
      'read of whatever the page becomes: write_ldt installs the new LDT, then unmap_ldt_struct clears the old slot\'s PTEs and flushes ' +
      'before free_ldt_struct ("x86/ldt: Unmap PTEs for the slot before freeing LDT pages").',
    references: [`${LDT} write_ldt, unmap_ldt_struct, free_ldt_struct`],
    kernel: 'guarantees',
    kernelNote: 'Since the fix, write_ldt unmaps and flushes the old slot before freeing its pages, and exit frees the LDT after the mm is torn down.',
    holds: k5,
  },
  {
    id: 'A1',
    name: 'restricted_roots_map_no_sensitive_frame',
    family: 'A',
    title: 'No sensitive frame in a restricted root',
    statement: 'No kernel-half leaf of an ASI restricted root (root 2 or a process\'s asi root, through what they mirror) maps a sensitive frame.',
    rationale:
      'ASI runs untrusted contexts on the restricted tables and exits to the unrestricted ones on any access they lack; what the restricted ' +
      'tables map is what a speculative attack from that context can read. asi_map copies only the pages the allocator declared ' +
      'nonsensitive; the series shares the vmalloc area wholesale and says so ("obviously incomplete").',
    references: [`${ASI} asi_map, asi_global_init, asi_clone_range`],
    kernel: 'strict-only',
    kernelNote: 'asi_map trusts its caller, and everything from VMALLOC_START up is shared with init_mm, whatever it maps.',
    holds: a1,
  },
  {
    id: 'A2',
    name: 'restricted_mappings_identical_in_the_unrestricted_root',
    family: 'A',
    title: 'Restricted mappings are copies of the unrestricted ones',
    statement: "Every kernel-half page a restricted root maps of its own, init_mm maps to the same frame with the same prot.",
    rationale:
      'The restricted physmap is a copy of entries of the unrestricted one (asi_map: "the source of the mapping is the regular unrestricted ' +
      'page tables"), and "does no synchronization": a set_memory_* or set_direct_map_invalid on a page already copied leaves the restricted ' +
      'root with the old permission or with a page the direct map no longer has (secretmem).',
    references: [`${ASI} asi_map, asi_unmap`],
    kernel: 'strict-only',
    kernelNote: 'asi_map copies once and nothing updates the copy; only asi_unmap removes it.',
    holds: a2,
  },
];
