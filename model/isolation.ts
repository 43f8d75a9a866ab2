/**
 * The isolation capability's state (spec/contracts/isolation.ts, spec/roots.ts) and the
 * pure functions over it: the roots it reports, the tables it holds, what ptiClone and
 * asiMap copy. Every root keeps only its own leaves; what it mirrors is spec/roots.ts
 * rootView's business, so a change to init_mm reaches every process without a copy.
 */
import { PAGES, type PagingLevels, type Pfn, type Vpn } from '../spec/address.ts';
import { ASI_GLOBAL_ROOT, LDT_PROT, PTI_USER_ROOT, heldMirrors, ldtRemap, ldtSlotVpn, processRootIds, slotPages } from '../spec/roots.ts';
import type { AbstractRoot, Leaf, RootId } from '../spec/state.ts';
import type { CloneLevel, Profile } from '../spec/system.ts';
import { intersecting, leafEnd, makeLeaf, replace } from './leaves.ts';
import { tableIds, type TableId } from './tables.ts';

const BLOCK = PAGES['2M'];

export interface Ldt {
  readonly slot: 0 | 1;
  readonly pfn: Pfn;
  readonly pages: number;
}

export interface Process {
  readonly pid: number;
  /** The user half as the user copy maps it (the prot mapUser was given); the kernel copy's is these NX-poisoned. */
  readonly user: readonly Leaf[];
  readonly ldt?: Ldt;
  /** The LDT slot's tables exist (the first setLdt allocated them; they stay until exit). */
  readonly ldtTables: boolean;
  /** Linux: the top-level slots root 1 had an entry in when the process was created (the only ones its user copy got). */
  readonly root1Slots?: ReadonlySet<Vpn>;
}

export interface IsolationState {
  /** Root 1's own leaves: the PTI clones (never 1G). */
  readonly root1: readonly Leaf[];
  /** Root 2's own leaves: asiMap's copies (at most 2M). */
  readonly root2: readonly Leaf[];
  /** Linux: every table root 2 ever had (asi_unmap is vunmap: it keeps them). Empty under strict. */
  readonly root2Tables: ReadonlySet<TableId>;
  /** Live processes, by pid. */
  readonly processes: readonly Process[];
  /** The largest pid ever given (pids are never reused). */
  readonly lastPid: number;
}

export const EMPTY_ISOLATION: IsolationState = { root1: [], root2: [], root2Tables: new Set(), processes: [], lastPid: 0 };

/** The first page of the top-level slot holding vpn. */
export const slotOf = (levels: PagingLevels, vpn: Vpn): Vpn => Math.floor(vpn / slotPages(levels)) * slotPages(levels);

/** The top-level slots a leaf list has entries in. */
export function slotsOf(levels: PagingLevels, leaves: readonly Leaf[]): Set<Vpn> {
  return new Set(leaves.map((l) => slotOf(levels, l.vpn)));
}

/** __pti_set_user_pgtbl's _PAGE_NX on the kernel copy's user entries. */
export const poisoned = (l: Leaf): Leaf => makeLeaf(l.vpn, l.pfn, l.size, { ...l.prot, execKernel: false, execUser: false });

export function ldtLeaves(levels: PagingLevels, ldt: Ldt | undefined): Leaf[] {
  if (ldt === undefined) return [];
  const at = ldtSlotVpn(levels, ldt.slot);
  return Array.from({ length: ldt.pages }, (_, i) => makeLeaf(at + i, ldt.pfn + i, '4K', LDT_PROT));
}

/** The process-kernel root's own leaves: its NX-poisoned user half, then its LDT. */
export function kernelCopyLeaves(levels: PagingLevels, p: Process): Leaf[] {
  return p.user.map(poisoned).concat(ldtLeaves(levels, p.ldt));
}

/**
 * Linux's user copy: the slots root 1 filled after the process was created hold nothing
 * there (pti.c: late top-level entries are not propagated). The LDT slot is its pgd's, not root 1's.
 */
function divergedSlots(levels: PagingLevels, p: Process, root1: readonly Leaf[]): Vpn[] {
  if (p.root1Slots === undefined) return [];
  const ldt = ldtRemap(levels).vpn;
  return [...slotsOf(levels, root1)].filter((s) => s !== ldt && !p.root1Slots!.has(s)).sort((a, b) => a - b);
}

/** Roots 1, 2 and every process's three, in id order, each with its own leaves only. */
export function isolationRoots(levels: PagingLevels, iso: IsolationState): AbstractRoot[] {
  const out: AbstractRoot[] = [
    { id: PTI_USER_ROOT, kind: 'kernel-user', leaves: iso.root1 },
    { id: ASI_GLOBAL_ROOT, kind: 'asi-global', leaves: iso.root2 },
  ];
  for (const p of iso.processes) {
    const ids = processRootIds(p.pid);
    const diverged = divergedSlots(levels, p, iso.root1);
    out.push(
      { id: ids.kernelRoot, kind: 'process-kernel', pid: p.pid, leaves: kernelCopyLeaves(levels, p) },
      { id: ids.userRoot, kind: 'process-user', pid: p.pid, leaves: p.user, ...(diverged.length > 0 ? { diverged } : {}) },
      { id: ids.asiRoot, kind: 'asi', pid: p.pid, leaves: [] },
    );
  }
  return out;
}

/** The tables of process p's pgd below the top level: its user half, and the LDT slot's once allocated. */
function processTables(levels: PagingLevels, p: Process): number {
  const ldt = p.ldtTables ? [makeLeaf(ldtSlotVpn(levels, 0), 0, '4K', LDT_PROT)] : [];
  return tableIds(levels, p.user.concat(ldt)).size;
}

/**
 * The tables the capability adds to init_mm's (the contract's "Tables"): roots 1 and 2
 * below their top level (their pgds are part of init_mm's), and per process its three
 * top-level tables and its pgd's tables below them (the user copy shares them, the asi
 * root has none).
 */
export function isolationTables(levels: PagingLevels, iso: IsolationState): number {
  const root2 = iso.root2Tables.size > 0 ? new Set([...iso.root2Tables, ...tableIds(levels, iso.root2)]).size : tableIds(levels, iso.root2).size;
  return tableIds(levels, iso.root1).size + root2 + iso.processes.reduce((n, p) => n + 3 + processTables(levels, p), 0);
}

/** Root 2's kept tables after it holds `leaves`: under linux it keeps every table it had. */
export function keptRoot2Tables(levels: PagingLevels, profile: Profile, iso: IsolationState, before: readonly Leaf[]): ReadonlySet<TableId> {
  return profile === 'linux' ? new Set([...iso.root2Tables, ...tableIds(levels, before)]) : iso.root2Tables;
}

/** The 2M block of a leaf of at most 2M, or the 2M piece of a 1G leaf at `block`, as a 2M leaf. */
const blockPiece = (l: Leaf, block: Vpn): Leaf => (l.size === '2M' ? l : makeLeaf(block, l.pfn + (block - l.vpn), '2M', l.prot));

/** The 2M blocks of a 1G leaf inside [lo, hi). */
function piecesInside(l: Leaf, lo: Vpn, hi: Vpn): Leaf[] {
  const out: Leaf[] = [];
  for (let b = Math.max(l.vpn, lo); b < Math.min(leafEnd(l), hi); b += BLOCK) out.push(blockPiece(l, b));
  return out;
}

/** What one ptiClone or asiMap copies: the new leaves, the pages each replaces, the source leaves read. */
export interface Copy {
  readonly leaves: readonly Leaf[];
  readonly units: readonly { readonly vpn: Vpn; readonly pages: number }[];
  readonly sources: readonly Leaf[];
}

/**
 * pti_clone_pgtable's units over init_mm's present leaves meeting [vpn, vpn+pages): a 2M
 * or 1G entry is cloned as whole 2M blocks whatever the level; a 4K-mapped block is cloned
 * whole at pmd level, and at pte level only its 4K leaves inside the range.
 */
export function cloneUnits(init: readonly Leaf[], vpn: Vpn, pages: number, level: CloneLevel): Copy {
  const lo = Math.floor(vpn / BLOCK) * BLOCK;
  const hi = Math.ceil((vpn + pages) / BLOCK) * BLOCK;
  const [a, b] = intersecting(init, lo, hi - lo);
  const leaves: Leaf[] = [];
  const units: { vpn: Vpn; pages: number }[] = [];
  const sources: Leaf[] = [];
  for (const l of init.slice(a, b)) {
    if (l.size === '4K') {
      const block = Math.floor(l.vpn / BLOCK) * BLOCK;
      if (level === 'pte' && (l.vpn < vpn || l.vpn >= vpn + pages)) continue;
      leaves.push(l);
      // A pmd-level unit is the whole block (its pmd entry), a pte-level one the page.
      const unit = level === 'pmd' ? { vpn: block, pages: BLOCK } : { vpn: l.vpn, pages: 1 };
      if (units[units.length - 1]?.vpn !== unit.vpn) units.push(unit);
    } else {
      const pieces = piecesInside(l, lo, hi);
      leaves.push(...pieces);
      units.push(...pieces.map((p) => ({ vpn: p.vpn, pages: BLOCK })));
    }
    sources.push(l);
  }
  return { leaves, units, sources };
}

/**
 * asi_map's copies of init_mm's present leaves in the pageblock-aligned [vpn, vpn+pages):
 * leaves of at most 2M (a 1G leaf as its 2M pieces). Linux skips a block init_mm maps
 * with 4K leaves (`skipped`, each block once); strict copies its 4K leaves.
 */
export function asiCopies(init: readonly Leaf[], vpn: Vpn, pages: number, profile: Profile): Copy & { readonly skipped: readonly Vpn[] } {
  const [a, b] = intersecting(init, vpn, pages);
  const leaves: Leaf[] = [];
  const units: { vpn: Vpn; pages: number }[] = [];
  const skipped: Vpn[] = [];
  for (const l of init.slice(a, b)) {
    if (l.size !== '4K') {
      const pieces = piecesInside(l, vpn, vpn + pages);
      leaves.push(...pieces);
      units.push(...pieces.map((p) => ({ vpn: p.vpn, pages: BLOCK })));
    } else if (profile === 'linux') {
      const block = Math.floor(l.vpn / BLOCK) * BLOCK;
      if (skipped[skipped.length - 1] !== block) skipped.push(block);
    } else {
      leaves.push(l);
      units.push({ vpn: l.vpn, pages: 1 });
    }
  }
  return { leaves, units, sources: init.slice(a, b), skipped };
}

/** `target` with every leaf meeting a unit removed whole, then `added` (sorted, inside the units) put in. */
export function replaceUnits(target: readonly Leaf[], units: Copy['units'], added: readonly Leaf[]): Leaf[] {
  let out: readonly Leaf[] = target;
  for (const u of units) {
    const [lo, hi] = intersecting(out, u.vpn, u.pages);
    out = replace(out, lo, hi, []);
  }
  return [...out, ...added].sort((x, y) => x.vpn - y.vpn);
}

/** The root whose tables a walk of root `id` at vpn goes through: it follows the mirrors (spec/roots.ts) to a root that holds vpn itself. */
export function tablesOwner(levels: PagingLevels, roots: readonly AbstractRoot[], id: RootId, vpn: Vpn): RootId {
  const seen = new Set<RootId>();
  let at = id;
  while (!seen.has(at)) {
    seen.add(at);
    const root = roots.find((r) => r.id === at);
    const m = root === undefined ? undefined : heldMirrors(levels, root).find((x) => vpn >= x.vpn && vpn < x.vpn + x.pages);
    if (m === undefined) return at;
    at = m.from;
  }
  return at;
}
