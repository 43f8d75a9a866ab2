/**
 * The isolation capability on the real tables (spec/contracts/isolation.ts): roots 1 and
 * 2 are top-level tables of their own from boot; a process has three (its pgd, the KPTI
 * user copy, the ASI root). Mirroring is what the kernel does: top-level entries copied,
 * so the tables below are shared and a walk from any root sees its views by itself.
 *
 * The copies are kept by `sync` after every commit (sync_global_pgds, set_pgd on the KPTI
 * pair, asi_clone_range): the pool lists each top-level entry an operation wrote, and the
 * roots that mirror that slot get it. Only a changed top-level entry costs a pass over the
 * processes, as sync_global_pgds walks pgd_list.
 *   init_mm, kernel half but the LDT slot  → every process pgd; from VMALLOC_START → root 2;
 *   root 1 (strict only: linux never propagates a later PTI slot) → every user copy;
 *   root 2 → every ASI root's kernel half;
 *   a process pgd's user half → its user copy (NX cleared) and ASI root; its LDT slot → its user copy.
 */
import type { SystemParts } from './capability.ts';
import { kernelLayout, upperHalfStart, vpnSpan, type Pfn, type Vpn } from '../spec/address.ts';
import { kernelImage, policyError, ptError, validateAsiRange, validateExitProcess, validateMapUser, validatePtiClone, validateSetLdt, validateUnmapUser } from '../spec/contracts/index.ts';
import { OK, fail, ok, type PtError, type Result } from '../spec/errors.ts';
import { LDT_PROT, LDT_SLOT_PAGES, ldtRemap, ldtSlotVpn, processRootIds, ptiAllowlist } from '../spec/roots.ts';
import { INIT_MM, type AbstractRoot, type FrameRun, type Leaf, type Prot, type RootId } from '../spec/state.ts';
import type { CloneLevel, IsolationOps, KernelEvent, ProcessRoots } from '../spec/system.ts';
import * as x86 from './arch/x86_64/entry.ts';
import { rewalkEntries, rootEntryVpn, walkRoot } from './abstract.ts';
import { isolationBroken, type IsolationFacts } from './isolation-policy.ts';
import { P_GLOBAL, protCode } from './prot.ts';
import { tableIndex } from './radix.ts';
import { members } from './runs.ts';
import { SPAN } from './tables.ts';

const { HI_NX, _PAGE_PRESENT, _PAGE_USER } = x86;
const LDT_CODE = protCode(LDT_PROT);

interface Range {
  readonly vpn: Vpn;
  readonly pages: number;
}

/** What the capability needs of the system it is part of (system.ts). */
export interface IsolationHost extends SystemParts {
  /** map's leaf placement into the running operation's tables (the current root). */
  install(vpn: Vpn, pfn: Pfn, pages: number, code: number): void;
  /** The end of a mutating core-style operation: emptied tables, policy, pool, commit, flush. */
  finish(op: 'ptiClone' | 'asiMap' | 'mapUser' | 'setLdt', flushed: readonly Range[], touched: readonly Range[]): Result<void>;
  poolError(): PtError | null;
  flushRanges(ranges: readonly Range[]): void;
  framesChanged(): void;
  print(e: KernelEvent): void;
}

interface Process {
  readonly pid: number;
  /** Top-level slots of the pgd, the user copy and the ASI root. */
  readonly k: number;
  readonly u: number;
  readonly a: number;
  ldt: { slot: 0 | 1; pfn: Pfn; pages: number } | null;
}

/** A root's last walk (Isolation.root): where it started, the slots it took beyond its own, what it found. */
interface RootWalk {
  readonly slot: number;
  readonly diverged: readonly Vpn[];
  readonly leaves: readonly Leaf[];
  readonly nonPresent: readonly Leaf[];
}

/** Whether two sorted lists of vpns are the same. */
function sameVpns(a: readonly Vpn[], b: readonly Vpn[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

export class Isolation implements IsolationOps {
  readonly ptiSlot: number;
  readonly asiSlot: number;
  private readonly processes = new Map<number, Process>();
  /** Process by the slot of any of its three top-level tables, for the sync and checkTables. */
  private readonly bySlot = new Map<number, Process>();
  private lastPid = 0;
  /** The roots that exist, for translate's and access's EINVAL root. */
  readonly rootIds = new Set<RootId>([0, 1, 2]);
  private readonly levels: number;
  private readonly ldtIdx: number;
  private readonly vmallocIdx: number;
  private readonly pgdBase: Vpn;
  /** Frames holding some process's current LDT (setLdt's EBUSY). */
  private readonly ldtFrames = members();
  readonly policyFacts: IsolationFacts;
  /** abstractRoots' answer, and the pool's writes and the processes it was walked at. */
  private rootsNow: { readonly writes: number; readonly lastPid: number; readonly live: number; readonly roots: readonly AbstractRoot[] } | null = null;
  /** Each root's last walk, by id: its top-level slot, the slots it diverged at, what the walk found. */
  private walked = new Map<RootId, RootWalk>();
  /** The vpn ranges written since the roots were last walked (sorted, merged; null: anything), as init_mm's walk took them (`written`). */
  private dirty: readonly number[] | null = null;

  constructor(private readonly host: IsolationHost, bootFrames: readonly FrameRun[]) {
    const { radix, config } = host;
    const pool = radix.pool;
    this.levels = config.levels;
    this.pgdBase = pool.base[0]!;
    this.ptiSlot = pool.allocUncounted(this.levels, this.pgdBase);
    this.asiSlot = pool.allocUncounted(this.levels, this.pgdBase);
    this.ldtIdx = tableIndex(ldtRemap(config.levels).vpn, this.levels);
    const L = kernelLayout(config.levels);
    this.vmallocIdx = tableIndex(L.vmallocStart, this.levels);
    const image = kernelImage(config, bootFrames);
    this.policyFacts = {
      radix,
      ptiRoot: this.ptiSlot,
      asiRoot: this.asiSlot,
      allowlist: ptiAllowlist(config, image === undefined ? undefined : { textStart: image.textStart, rodataEnd: image.rodataHpageEnd }),
      vmallocStart: L.vmallocStart,
      kernelHalf: upperHalfStart(config.levels),
      sensitive: host.facts.sensitive,
      checksSensitive: host.mutant !== 'sensitive-frame-in-restricted-root',
      rootOfTop: (slot) => this.rootOfTop(slot),
      ldtSlot: { vpn: rootEntryVpn(this.levels, this.ldtIdx), pages: SPAN[this.levels as 4]! },
      ldtRoots: () => [...this.processes.values()].flatMap((p) => [p.k, p.u]),
    };
    pool.afterCommit = () => this.sync();
  }

  /**
   * Become a copy of `src` (RadixSystem.fork, after the tables were copied): its processes
   * as records of this copy's own (a process's LDT changes in place), the roots, the LDT
   * frames. Roots 1 and 2 took the same slots in both, allocated first at construction.
   */
  copyFrom(src: Isolation): void {
    this.processes.clear();
    this.bySlot.clear();
    for (const p of src.processes.values()) {
      const q: Process = { ...p };
      this.processes.set(q.pid, q);
      for (const s of [q.k, q.u, q.a]) this.bySlot.set(s, q);
    }
    this.lastPid = src.lastPid;
    this.rootIds.clear();
    for (const id of src.rootIds) this.rootIds.add(id);
    this.ldtFrames.restore(src.ldtFrames);
    this.rootsNow = src.rootsNow;
    this.walked = new Map(src.walked);
    this.dirty = src.dirty;
  }

  /**
   * The vpn ranges init_mm's abstraction took from the pool (TablePool.takeDirty): the
   * roots' walks since then re-walk those only. A second batch before the roots were
   * walked makes the next walk a full one (the batches are not merged).
   */
  written(dirty: readonly number[] | null): void {
    this.dirty = dirty !== null && this.dirty !== null && this.dirty.length === 0 ? dirty : null;
  }

  private rootOfTop(slot: number): RootId | undefined {
    if (slot === 0) return INIT_MM;
    if (slot === this.ptiSlot) return 1;
    if (slot === this.asiSlot) return 2;
    for (const p of this.processes.values()) {
      const ids = processRootIds(p.pid);
      if (slot === p.k) return ids.kernelRoot;
      if (slot === p.u) return ids.userRoot;
      if (slot === p.a) return ids.asiRoot;
    }
    return undefined;
  }

  /** The top-level slot of an existing root, or -1. */
  slotOf(root: RootId): number {
    if (root === 0) return 0;
    if (root === 1) return this.ptiSlot;
    if (root === 2) return this.asiSlot;
    const p = this.processes.get(Math.floor(root / 3));
    if (p === undefined) return -1;
    return [p.k, p.u, p.a][root % 3]!;
  }

  // ---- the pgd sync ----

  private sync(): void {
    const tw = this.host.radix.pool.topWrites;
    // Copies push their own writes: a chain (init_mm → root 2 → ASI roots) runs to its end.
    while (tw.length > 0) {
      const k = tw.pop()!;
      this.propagate(Math.floor(k / 512), k % 512);
    }
  }

  private propagate(slot: number, idx: number): void {
    const w = this.host.radix.pool.words;
    const lo = w[slot * 1024 + idx * 2]!;
    const hi = w[slot * 1024 + idx * 2 + 1]!;
    const kernel = idx >= 256;
    if (slot === 0) {
      // The missing-pgd-sync mutant: no sync_global_pgds, so a live process never sees the entry.
      if (kernel && idx !== this.ldtIdx && this.host.mutant !== 'missing-pgd-sync') for (const p of this.processes.values()) this.copy(p.k, idx, lo, hi);
      if (kernel && idx >= this.vmallocIdx) this.copy(this.asiSlot, idx, lo, hi);
    } else if (slot === this.ptiSlot) {
      if (this.host.profile === 'strict' && kernel && idx !== this.ldtIdx) for (const p of this.processes.values()) this.copy(p.u, idx, lo, hi);
    } else if (slot === this.asiSlot) {
      if (kernel) for (const p of this.processes.values()) this.copy(p.a, idx, lo, hi);
    } else {
      const p = this.bySlot.get(slot);
      // A user copy's or ASI root's own writes are copies, the source of nothing.
      if (p === undefined || slot !== p.k) return;
      if (!kernel) {
        // __pti_set_user_pgtbl: the user copy's entry without the kernel copy's NX.
        this.copy(p.u, idx, lo, (hi & ~HI_NX) >>> 0);
        this.copy(p.a, idx, lo, hi);
      } else if (idx === this.ldtIdx) this.copy(p.u, idx, lo, hi);
    }
  }

  private copy(slot: number, idx: number, lo: number, hi: number): void {
    const pool = this.host.radix.pool;
    const off = slot * 1024 + idx * 2;
    if (pool.words[off] !== lo || pool.words[off + 1] !== hi) pool.set(slot, idx, lo, hi);
  }

  private copyEntry(from: number, to: number, idx: number): void {
    const w = this.host.radix.pool.words;
    this.copy(to, idx, w[from * 1024 + idx * 2]!, w[from * 1024 + idx * 2 + 1]!);
  }

  // ---- what checkTables walks ----

  /**
   * The top-level tables beside init_mm's (root 1, root 2, each process's three), with
   * whether their user-half entries carry NX (the kernel copy of a KPTI pair, and the ASI
   * root that copies its user half).
   */
  topTables(): { slot: number; nxUser: boolean }[] {
    const out = [{ slot: this.ptiSlot, nxUser: false }, { slot: this.asiSlot, nxUser: false }];
    for (const p of this.processes.values()) out.push({ slot: p.k, nxUser: true }, { slot: p.u, nxUser: false }, { slot: p.a, nxUser: true });
    return out;
  }

  /** The top-level table whose entry `idx` table `slot` copies (the sync's sources, see the header), or -1 where the slot is its own. */
  private sourceOf(slot: number, idx: number): number {
    const kernel = idx >= 256;
    if (slot === this.asiSlot) return idx >= this.vmallocIdx ? 0 : -1;
    const p = this.bySlot.get(slot);
    if (p === undefined) return -1;
    if (slot === p.k) return kernel && idx !== this.ldtIdx ? 0 : -1;
    if (slot === p.u) return !kernel || idx === this.ldtIdx ? p.k : this.ptiSlot;
    return kernel ? this.asiSlot : p.k;
  }

  /**
   * Whether entry `idx` of top-level table `slot` is the copy of its source's entry there
   * (a user copy's user half without the NX of its pgd's): the tables below are the
   * source's, shared on purpose and reached from the source. False for an own slot or a
   * diverged copy, whose tables are this root's to account for.
   */
  mirrored(slot: number, idx: number): boolean {
    const src = this.sourceOf(slot, idx);
    if (src < 0) return false;
    const w = this.host.radix.pool.words;
    const p = this.bySlot.get(slot);
    const nx = p !== undefined && slot === p.u && idx < 256 ? HI_NX : 0;
    return w[slot * 1024 + idx * 2] === w[src * 1024 + idx * 2] && w[slot * 1024 + idx * 2 + 1] === (w[src * 1024 + idx * 2 + 1]! & ~nx) >>> 0;
  }

  // ---- processes ----

  createProcess(): Result<ProcessRoots> {
    const pool = this.host.radix.pool;
    if (pool.inUse + 3 > this.host.config.tablePool.count) {
      return fail('ENOMEM', 'tablePool', `a process needs 3 top-level tables, ${this.host.config.tablePool.count - pool.inUse} are left`);
    }
    pool.begin();
    const alloc = (): number => pool.alloc(this.levels, this.pgdBase, -1, 0);
    const p: Process = { pid: ++this.lastPid, k: alloc(), u: alloc(), a: alloc(), ldt: null };
    // pgd_ctor's clone_pgd_range, for each of the three (linux's user copy: root 1's entries now only).
    // The asi-clone-fixed-pgd-count mutant clones a fixed count of entries into the ASI root,
    // the 4-level layout's from VMALLOC_START to the cpu_entry_area (ending before the
    // espfix, EFI and image entries), whatever the tables hold.
    const asiEnd = this.host.mutant === 'asi-clone-fixed-pgd-count' ? tableIndex(kernelLayout(this.host.config.levels).cpuEntryArea, this.host.config.levels) + 1 : 512;
    for (let idx = 256; idx < 512; idx++) {
      if (idx !== this.ldtIdx) {
        this.copyEntry(0, p.k, idx);
        this.copyEntry(this.ptiSlot, p.u, idx);
      }
      if (idx < asiEnd) this.copyEntry(this.asiSlot, p.a, idx);
    }
    pool.commit();
    this.processes.set(p.pid, p);
    for (const s of [p.k, p.u, p.a]) this.bySlot.set(s, p);
    const ids = processRootIds(p.pid);
    this.rootIds.add(ids.kernelRoot).add(ids.userRoot).add(ids.asiRoot);
    return ok({ pid: p.pid, ...ids });
  }

  private rootsOf(p: Process): RootId[] {
    const ids = processRootIds(p.pid);
    return [ids.kernelRoot, ids.userRoot, ids.asiRoot];
  }

  exitProcess(pid: number): Result<void> {
    const p = this.live(pid, validateExitProcess(pid));
    if (!('pid' in p)) return p;
    const r = this.host.radix;
    const pool = r.pool;
    // Unregistered first: its own writes below are no source of any other root's.
    this.processes.delete(pid);
    for (const s of [p.k, p.u, p.a]) this.bySlot.delete(s);
    for (const id of this.rootsOf(p)) this.rootIds.delete(id);
    r.begin();
    const w = pool.words;
    // exit_mmap's free_pgtables and free_ldt_pgtables: the tables under the user half and the LDT slot.
    for (let idx = 0; idx < 512; idx++) {
      if (idx >= 256 && idx !== this.ldtIdx) continue;
      const lo = w[p.k * 1024 + idx * 2]!;
      if (lo & _PAGE_PRESENT) r.freeTableTree(pool.childSlot(lo, w[p.k * 1024 + idx * 2 + 1]!));
    }
    r.freeReplaced();
    // pgd_free: the three top-level tables, emptied so the pool hands out zeroed tables.
    for (const s of [p.k, p.u, p.a]) {
      for (let idx = 0; idx < 512; idx++) if ((w[s * 1024 + idx * 2]! | w[s * 1024 + idx * 2 + 1]!) !== 0) pool.set(s, idx, 0, 0);
      pool.free(s);
    }
    pool.emptied.length = 0;
    pool.commit();
    this.host.tlbs.flushRoots(this.rootsOf(p));
    if (p.ldt !== null) this.ldtFrames.remove(p.ldt.pfn, p.ldt.pages);
    return OK;
  }


  /** Whether a frame of [pfn, pfn + count) holds some process's current LDT (a free of it breaks D4: the LDT slot maps it). */
  holdsLdt(pfn: Pfn, count: number): boolean {
    return this.ldtFrames.first(pfn, count) >= 0;
  }

  /** The live process `pid` after its arguments passed (`bad`, the validator's answer): else the EINVAL, or ENOENT pid. */
  private live(pid: number, bad: PtError | null): Process | { ok: false; error: PtError } {
    if (bad) return { ok: false, error: bad };
    return this.processes.get(pid) ?? { ok: false, error: ptError('ENOENT', 'pid', `no live process has pid ${pid}`) };
  }

  /** flush_tlb_mm_range of one process. */
  private flushProcess(p: Process, vpn: Vpn, pages: number): void {
    this.host.tlbs.flushRoots(this.rootsOf(p), vpn, pages);
  }

  mapUser(pid: number, vpn: Vpn, pfn: Pfn, pages: number, prot: Prot): Result<void> {
    const p = this.live(pid, validateMapUser(this.host.config, pid, vpn, pfn, pages, prot));
    if (!('pid' in p)) return p;
    const r = this.host.radix;
    r.root = p.k;
    try {
      if (r.anyMapped(vpn, vpn + pages)) return fail('EEXIST', 'vpn', `part of ${vpnSpan(vpn, pages)} is already mapped in the user half`);
      r.begin();
      // Both copies share the tables below the pgd: one install, the kernel copy's top entries NX.
      r.poisonUserTop = true;
      this.host.install(vpn, pfn, pages, protCode(prot));
    } finally {
      r.poisonUserTop = false;
      r.root = 0;
    }
    return this.host.finish('mapUser', [], [{ vpn, pages }]);
  }

  /**
   * unmapUser; `flush` false leaves out the process flush (zapPageRange under the
   * gather-frees-without-flush mutant: an mmu_gather that never invalidates).
   */
  unmapUser(pid: number, vpn: Vpn, pages: number, flush = true): Result<void> {
    const p = this.live(pid, validateUnmapUser(this.host.config, pid, vpn, pages));
    if (!('pid' in p)) return p;
    const r = this.host.radix;
    r.root = p.k;
    try {
      if (!r.anyMapped(vpn, vpn + pages)) return fail('ENOENT', 'vpn', `nothing in ${vpnSpan(vpn, pages)} is mapped`);
      r.begin();
      r.unmapRange(vpn, vpn + pages);
      // free_pgtables runs after the flush below, which covers every walk through these roots.
      r.releaseEmptied(false);
    } finally {
      r.root = 0;
    }
    const error = this.host.poolError();
    if (error !== null) {
      r.pool.rollback();
      return { ok: false, error };
    }
    r.pool.commit();
    if (flush) this.flushProcess(p, vpn, pages);
    return OK;
  }

  /**
   * Each present leaf of process `pid`'s user half meeting [vpn, vpn + pages), as the
   * frames it maps inside the range (zapPageRange gathers them before the unmap); nothing
   * for a pid with no live process. Costs the entries the range meets.
   */
  userFrames(pid: number, vpn: Vpn, pages: number, each: (pfn: Pfn, count: number) => void): void {
    const p = this.processes.get(pid);
    if (p === undefined) return;
    const r = this.host.radix;
    const end = vpn + pages;
    r.root = p.k;
    try {
      r.forEachEntry(vpn, end, (v, pfn, level) => {
        const from = Math.max(v, vpn);
        each(pfn + (from - v), Math.min(v + SPAN[level as 1]!, end) - from);
      });
    } finally {
      r.root = 0;
    }
  }

  // ---- KPTI clones ----

  ptiClone(vpn: Vpn, pages: number, level: CloneLevel): Result<void> {
    const bad = validatePtiClone(this.host.config, vpn, pages, level);
    if (bad) return { ok: false, error: bad };
    const r = this.host.radix;
    const units = this.cloneUnits(vpn, vpn + pages, level);
    r.begin();
    const linux = this.host.profile === 'linux';
    if (linux) {
      // pmd_set_flags / pte_set_flags(_PAGE_GLOBAL) on init_mm's entry, whole.
      for (const u of units) {
        if ((u.code & P_GLOBAL) !== 0) continue;
        u.code |= P_GLOBAL;
        if (r.lookupEntry(u.vpn) && (r.leafCodeAt(r.hitSlot, r.hitIdx) & P_GLOBAL) === 0) {
          r.writeLeaf(r.hitSlot, r.hitIdx, r.hitLevel, r.leafPfnAt(r.hitSlot, r.hitIdx), r.leafCodeAt(r.hitSlot, r.hitIdx) | P_GLOBAL, true);
        }
      }
    }
    r.root = this.ptiSlot;
    try {
      // pti_user_pagetable_walk_*: what root 1 had there goes whole first; at PMD level the
      // whole block, since the kernel copies the pmd entry (pages init_mm no longer maps too).
      // The freed-image-hole-in-user-copy mutant clears only the units: a page of the block
      // that init_mm no longer maps (a freed image hole) stays in the user copy.
      const byUnit = level === 'pte' || this.host.mutant === 'freed-image-hole-in-user-copy';
      let cleared = -1;
      for (const u of units) {
        const block = u.vpn - (u.vpn % SPAN[2]);
        if (byUnit) r.vunmapRange(u.vpn, u.vpn + SPAN[u.level as 1]!, () => {});
        else if (block !== cleared) r.vunmapRange(block, block + SPAN[2], () => {});
        cleared = block;
        r.installLeaves(u.vpn, u.level, u.pfn, 1, u.code);
      }
      r.freeReplaced();
      if (this.host.mutant === 'kernel-half-user-bit') this.userBitOnTop(units);
    } finally {
      r.root = 0;
    }
    // At PMD level every unit is a whole 2M block, a 4K-mapped one too.
    const unitPages = (u: { vpn: Vpn; level: number }): Range =>
      level === 'pmd' ? { vpn: u.vpn - (u.vpn % SPAN[2]), pages: SPAN[2] } : { vpn: u.vpn, pages: SPAN[u.level as 1]! };
    const ranges = units.map(unitPages).filter((x, i, all) => i === 0 || x.vpn !== all[i - 1]!.vpn);
    return this.host.finish('ptiClone', linux ? [] : ranges, ranges);
  }

  /** The kernel-half-user-bit mutant: root 1's top-level entries over the units get _PAGE_USER, a kernel half user mode may walk. */
  private userBitOnTop(units: readonly { vpn: Vpn }[]): void {
    const pool = this.host.radix.pool;
    for (const u of units) {
      const idx = tableIndex(u.vpn, this.levels);
      const lo = pool.words[this.ptiSlot * 1024 + idx * 2]!;
      if ((lo & _PAGE_PRESENT) !== 0 && (lo & _PAGE_USER) === 0) pool.set(this.ptiSlot, idx, lo | _PAGE_USER, pool.words[this.ptiSlot * 1024 + idx * 2 + 1]!);
    }
  }

  /** The units pti_clone_pgtable copies from init_mm over [lo, hi) (the contract's "units cloned"). */
  private cloneUnits(lo: Vpn, hi: Vpn, level: CloneLevel): { vpn: Vpn; pfn: Pfn; level: number; code: number }[] {
    const r = this.host.radix;
    const out: { vpn: Vpn; pfn: Pfn; level: number; code: number }[] = [];
    const pmd = SPAN[2];
    let lastBlock = -1;
    // At PMD level a block is cloned when it meets the range and holds a present leaf
    // anywhere, not only inside the range: look at the whole blocks.
    if (level === 'pmd') {
      // The pti-clone-unaligned-advance mutant steps `addr += PMD_SIZE` from an unaligned
      // start, so its last step lands past the end when the end lies less far into its block.
      if (this.host.mutant === 'pti-clone-unaligned-advance') hi = lo + Math.ceil((hi - lo) / pmd - 1) * pmd + 1;
      lo -= lo % pmd;
      hi += (pmd - (hi % pmd)) % pmd;
    }
    r.forEachEntry(lo, hi, (v, p, l, code) => {
      if (l >= 2) {
        // A 2M leaf, or each 2M piece of a 1G leaf meeting the range, at PMD level whatever was asked.
        for (let b = Math.max(v, lo - (lo % pmd)); b < Math.min(v + SPAN[l as 1]!, hi); b += pmd) out.push({ vpn: b, pfn: p + (b - v), level: 2, code });
      } else if (level === 'pte') out.push({ vpn: v, pfn: p, level: 1, code });
      else {
        const b = v - (v % pmd);
        if (b === lastBlock) return;
        lastBlock = b;
        // The kernel copies the pmd entry: the whole block's PTEs, also those outside the range.
        r.forEachEntry(b, b + pmd, (v4, p4, _l, c4) => out.push({ vpn: v4, pfn: p4, level: 1, code: c4 }));
      }
    });
    return out;
  }

  // ---- ASI ----

  asiMap(vpn: Vpn, pages: number): Result<void> {
    const bad = validateAsiRange(this.host.config, vpn, pages);
    if (bad) return { ok: false, error: bad };
    const r = this.host.radix;
    const pmd = SPAN[2];
    const units: { vpn: Vpn; pfn: Pfn; level: number; code: number }[] = [];
    const skipped: Vpn[] = [];
    r.forEachEntry(vpn, vpn + pages, (v, p, l, code) => {
      if (l >= 2) {
        // The restricted physmap stops at PMD level: a 1G leaf as 2M leaves.
        for (let b = Math.max(v, vpn); b < Math.min(v + SPAN[l as 1]!, vpn + pages); b += pmd) units.push({ vpn: b, pfn: p + (b - v), level: 2, code });
        return;
      }
      if (this.host.profile === 'strict') return void units.push({ vpn: v, pfn: p, level: 1, code });
      const b = v - (v % pmd);
      if (skipped[skipped.length - 1] !== b) skipped.push(b);
    });
    r.begin();
    r.root = this.asiSlot;
    try {
      for (const u of units) {
        r.vunmapRange(u.vpn, u.vpn + SPAN[u.level as 1]!, () => {});
        r.installLeaves(u.vpn, u.level, u.pfn, 1, u.code);
      }
      r.freeReplaced();
    } finally {
      r.root = 0;
    }
    const done = this.host.finish('asiMap', [], [{ vpn, pages }]);
    // Printed once the copy stands: a failed asiMap changes nothing and prints nothing (contracts/isolation.ts).
    const pageOffset = kernelLayout(this.host.config.levels).pageOffset;
    // The frame the block's direct-map address names (page_to_virt's inverse), whatever the leaf maps.
    if (done.ok) for (const b of skipped) this.host.print({ kind: 'asi-level', vpn: b, pages: pmd, pfn: b - pageOffset });
    return done;
  }

  asiUnmap(vpn: Vpn, pages: number): Result<void> {
    const bad = validateAsiRange(this.host.config, vpn, pages);
    if (bad) return { ok: false, error: bad };
    const r = this.host.radix;
    r.begin();
    r.root = this.asiSlot;
    try {
      if (this.host.profile === 'linux') {
        r.vunmapRange(vpn, vpn + pages, () => {});
        // vunmap keeps the tables it empties.
        r.pool.emptied.length = 0;
      } else {
        r.unmapRange(vpn, vpn + pages);
        r.releaseEmptied(false);
      }
    } finally {
      r.root = 0;
    }
    r.pool.commit();
    this.host.flushRanges([{ vpn, pages }]);
    return OK;
  }

  // ---- the LDT remap ----

  setLdt(pid: number, pfn: Pfn, pages: number): Result<void> {
    const p = this.live(pid, validateSetLdt(this.host.config, pid, pfn, pages));
    if (!('pid' in p)) return p;
    const facts = this.host.facts;
    if (!facts.data.covers(pfn, pages)) return fail('ENOENT', 'pfn', `a frame of the LDT is not a data frame (the page allocator's)`);
    if (this.ldtFrames.first(pfn, pages) >= 0) return fail('EBUSY', 'pfn', `a frame of the LDT holds a process's current LDT`);
    const old = p.ldt;
    const slot: 0 | 1 = old === null ? 0 : old.slot === 0 ? 1 : 0;
    const at = ldtSlotVpn(this.host.config.levels, slot);
    const r = this.host.radix;
    r.begin();
    r.root = p.k;
    try {
      // map_ldt_struct: 4K PTEs, never global; the two slots share one PTE table.
      // The ldt-pte-global mutant keeps _PAGE_GLOBAL in the LDT PTEs (no support-mask filtering).
      r.installLeaves(at, 1, pfn, pages, this.host.mutant === 'ldt-pte-global' ? LDT_CODE | P_GLOBAL : LDT_CODE);
      // The ldt-old-slot-not-unmapped mutant hands the old LDT back still mapped in its slot.
      if (old !== null && this.host.mutant !== 'ldt-old-slot-not-unmapped') {
        const from = ldtSlotVpn(this.host.config.levels, old.slot);
        r.unmapRange(from, from + old.pages);
      }
      // The LDT slot's tables stay until exit (free_ldt_pgtables).
      r.pool.emptied.length = 0;
    } finally {
      r.root = 0;
    }
    // Policy on the new LDT's mapping (P7, T5), then the pool; both roll back on failure.
    const done = this.host.finish('setLdt', [], [{ vpn: at, pages }]);
    if (!done.ok) return done;
    p.ldt = { slot, pfn, pages };
    this.ldtFrames.add(pfn, pages, true);
    if (old !== null) {
      this.flushProcess(p, ldtSlotVpn(this.host.config.levels, old.slot), LDT_SLOT_PAGES);
      this.ldtFrames.remove(old.pfn, old.pages);
    }
    return OK;
  }

  // ---- the abstraction ----

  /**
   * The roots beside init_mm, by id, as spec/state.ts reads them: walked again only when an
   * entry was written or a process came or went since the last call (the fuzzer asks after
   * every command, and accesses, flushes and refused calls change neither).
   */
  abstractRoots(): readonly AbstractRoot[] {
    const writes = this.host.radix.pool.writes;
    const now = this.rootsNow;
    if (now !== null && now.writes === writes && now.lastPid === this.lastPid && now.live === this.processes.size) return now.roots;
    const roots = this.walkRoots();
    this.rootsNow = { writes, lastPid: this.lastPid, live: this.processes.size, roots };
    return roots;
  }

  private walkRoots(): AbstractRoot[] {
    const out: AbstractRoot[] = [];
    const before = this.walked;
    this.walked = new Map();
    const user = (idx: number): boolean => idx < 256;
    const besideLdt = (idx: number): boolean => idx >= 256 && idx !== this.ldtIdx;
    out.push(this.root(before, 1, 'kernel-user', undefined, this.ptiSlot, () => true, []));
    out.push(this.root(before, 2, 'asi-global', undefined, this.asiSlot, (idx) => idx < this.vmallocIdx, [[0, (idx) => idx >= this.vmallocIdx]]));
    for (const p of [...this.processes.values()].sort((a, b) => a.pid - b.pid)) {
      const ids = processRootIds(p.pid);
      out.push(this.root(before, ids.kernelRoot, 'process-kernel', p.pid, p.k, (idx) => user(idx) || idx === this.ldtIdx, [[0, besideLdt]]));
      out.push(this.root(before, ids.userRoot, 'process-user', p.pid, p.u, user, [[this.ptiSlot, besideLdt], [p.k, (idx) => idx === this.ldtIdx]]));
      out.push(this.root(before, ids.asiRoot, 'asi', p.pid, p.a, () => false, [[p.k, user], [this.asiSlot, (idx) => idx >= 256]]));
    }
    this.dirty = [];
    return out;
  }

  /**
   * One root: its own slots walked, each mirrored slot compared with its source's entry
   * (a user copy's user half is its pgd's without NX, so the ASI root's is compared as is).
   * The walk is its last one (`before`) with the ranges written since walked again, while
   * it starts from the same slot and takes the same slots (abstract.ts rewalkEntries).
   */
  private root(
    before: ReadonlyMap<RootId, RootWalk>, id: RootId, kind: AbstractRoot['kind'], pid: number | undefined, slot: number, own: (idx: number) => boolean,
    mirrors: readonly [number, (idx: number) => boolean][],
  ): AbstractRoot {
    const w = this.host.radix.pool.words;
    const diverged = new Set<number>();
    for (const [from, takes] of mirrors) {
      for (let idx = 0; idx < 512; idx++) {
        if (!takes(idx)) continue;
        if (w[slot * 1024 + idx * 2] !== w[from * 1024 + idx * 2] || w[slot * 1024 + idx * 2 + 1] !== w[from * 1024 + idx * 2 + 1]) diverged.add(idx);
      }
    }
    const divergedVpns = [...diverged].sort((a, b) => a - b).map((idx) => rootEntryVpn(this.levels, idx));
    const take = (idx: number): boolean => own(idx) || diverged.has(idx);
    const last = before.get(id);
    const same = last !== undefined && last.slot === slot && this.dirty !== null && sameVpns(last.diverged, divergedVpns);
    const walked = same ? rewalkEntries(this.host.radix, last.leaves, last.nonPresent, this.dirty!, slot, take) : walkRoot(this.host.radix, slot, take);
    this.walked.set(id, { slot, diverged: divergedVpns, leaves: walked.leaves, nonPresent: walked.nonPresent });
    return {
      id, kind, ...(pid === undefined ? {} : { pid }), leaves: walked.leaves,
      ...(divergedVpns.length > 0 ? { diverged: divergedVpns } : {}),
      ...(walked.nonPresent.length > 0 ? { nonPresent: walked.nonPresent } : {}),
    };
  }

  /** The strict refusal of the isolation rules for the running operation, or null. */
  broken(op: Parameters<typeof policyError>[0], touched: readonly Range[]): PtError | null {
    const b = isolationBroken(this.policyFacts, touched);
    return b === null ? null : policyError(op, b.id, b.where);
  }
}
