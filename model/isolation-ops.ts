/**
 * The isolation operations of the reference model (spec/contracts/isolation.ts), on the
 * state of model/isolation.ts. Each runs its trusted validator, then the state checks,
 * builds the next state functionally and hands it to `commit`: strict policy (EPERM),
 * then the table pool (ENOMEM), then it replaces the model's state and flushes, so a
 * failed operation changes nothing. The model itself (init_mm, TLBs, frames) is reached
 * only through IsolationHost.
 */
import { kernelLayout, pfnSpan, vpnSpan, type Pfn, type Vpn } from '../spec/address.ts';
import { policyError, type MutatingOp } from '../spec/contracts/index.ts';
import {
  PAGEBLOCK_PAGES, validateAsiRange, validateExitProcess, validateMapUser, validatePtiClone, validateSetLdt, validateUnmapUser,
} from '../spec/contracts/isolation.ts';
import { fail, OK, ok, type PtError, type Result } from '../spec/errors.ts';
import { LDT_SLOT_PAGES, ldtSlotVpn, processRootIds } from '../spec/roots.ts';
import type { FrameRun, Leaf, Prot, RootId, SystemConfig } from '../spec/state.ts';
import type { CloneLevel, IsolationOps, KernelEvent, ProcessRoots, Profile } from '../spec/system.ts';
import { firstFrameNot } from './frames.ts';
import { asiCopies, cloneUnits, isolationTables, keptRoot2Tables, replaceUnits, slotsOf, type IsolationState, type Process } from './isolation.ts';
import { always, insertLeaves, makeLeaf, mappedPages, removeInside, splitAtEdges } from './leaves.ts';
import { placeLeaves } from './placement.ts';
import type { PolicyBreak } from './policy.ts';
import { applyProtChange } from './protect.ts';
import { mergeFlushRanges } from './tlb.ts';

interface Range {
  readonly vpn: Vpn;
  readonly pages: number;
}

/** What an isolation operation would leave: the capability's state, and init_mm's leaves and the frames where it changes them. */
export interface IsolationNext {
  readonly iso: IsolationState;
  /** init_mm leaves that replace the ones at their vpns, each over the same pages (linux's _PAGE_GLOBAL on what pti_clone_pgtable clones). */
  readonly init?: readonly Leaf[];
  readonly frames?: readonly FrameRun[];
  readonly events?: readonly KernelEvent[];
}

/** What the operations need of the model. */
export interface IsolationHost {
  readonly config: SystemConfig;
  readonly profile: Profile;
  iso(): IsolationState;
  initLeaves(): readonly Leaf[];
  frames(): readonly FrameRun[];
  /** The first strict-policy break (model/policy.ts firstPolicyBreak) of the state with the parts of `next` in place, within the scopes. */
  policyBreak(next: IsolationNext, scopes: readonly Range[]): PolicyBreak | null;
  /** The tables init_mm holds now (footprint, kept and pending). */
  initTables(): number;
  apply(next: IsolationNext): void;
  /** A kernel range flush of each range (every root, every paging-structure cache). */
  flushKernel(ranges: readonly Range[]): void;
  /** Every CPU's TLB entries of these roots meeting the range (all of them without one), and every cached walk of them. */
  flushRoots(roots: readonly RootId[], range?: Range): void;
}

const err = (e: PtError): Result<never> => ({ ok: false, error: e });

const rootsOf = (pid: number): RootId[] => {
  const r = processRootIds(pid);
  return [r.kernelRoot, r.userRoot, r.asiRoot];
};

export class IsolationModel implements IsolationOps {
  constructor(private readonly host: IsolationHost) {}

  ptiClone(vpn: Vpn, pages: number, level: CloneLevel): Result<void> {
    const { config, profile } = this.host;
    const bad = validatePtiClone(config, vpn, pages, level);
    if (bad) return err(bad);
    const iso = this.host.iso();
    const copy = cloneUnits(this.host.initLeaves(), vpn, pages, level);
    const units = mergeFlushRanges(copy.units);
    if (profile === 'strict') {
      // Strict copies as they are, and flushes the units so no user copy keeps a stale translation.
      const next = { iso: { ...iso, root1: replaceUnits(iso.root1, copy.units, copy.leaves) } };
      return this.commit('ptiClone', next, units, () => this.host.flushKernel(units));
    }
    // Linux sets _PAGE_GLOBAL on the kernel's leaf and on its copy, and flushes nothing.
    const global = (l: Leaf): Leaf => makeLeaf(l.vpn, l.pfn, l.size, { ...l.prot, global: true });
    return this.commit('ptiClone', { iso: { ...iso, root1: replaceUnits(iso.root1, copy.units, copy.leaves.map(global)) }, init: copy.sources.map(global) }, units);
  }

  asiMap(vpn: Vpn, pages: number): Result<void> {
    const { config, profile } = this.host;
    const bad = validateAsiRange(config, vpn, pages);
    if (bad) return err(bad);
    const iso = this.host.iso();
    const copy = asiCopies(this.host.initLeaves(), vpn, pages, profile);
    const pageOffset = kernelLayout(config.levels).pageOffset;
    // The block's first frame: the direct map maps each page to its own frame.
    const events = copy.skipped.map((b): KernelEvent => ({ kind: 'asi-level', vpn: b, pages: PAGEBLOCK_PAGES, pfn: b - pageOffset }));
    const root2 = replaceUnits(iso.root2, copy.units, copy.leaves);
    const next = { iso: { ...iso, root2, root2Tables: keptRoot2Tables(config.levels, profile, iso, iso.root2) }, events };
    return this.commit('asiMap', next, [{ vpn, pages }]);
  }

  asiUnmap(vpn: Vpn, pages: number): Result<void> {
    const { config, profile } = this.host;
    const bad = validateAsiRange(config, vpn, pages);
    if (bad) return err(bad);
    const iso = this.host.iso();
    // Root 2's leaves never straddle a pageblock, so the range removes whole leaves.
    const root2 = removeInside(iso.root2, vpn, pages);
    const next = { iso: { ...iso, root2, root2Tables: keptRoot2Tables(config.levels, profile, iso, iso.root2) } };
    return this.commit(null, next, [], () => this.host.flushKernel([{ vpn, pages }]));
  }

  createProcess(): Result<ProcessRoots> {
    const { config, profile } = this.host;
    const iso = this.host.iso();
    const pid = iso.lastPid + 1;
    // Linux: the user copy gets only the slots root 1 has an entry in now.
    const p: Process = { pid, user: [], ldtTables: false, ...(profile === 'linux' ? { root1Slots: slotsOf(config.levels, iso.root1) } : {}) };
    const r = this.commit(null, { iso: { ...iso, processes: [...iso.processes, p], lastPid: pid } }, []);
    return r.ok ? ok({ pid, ...processRootIds(pid) }) : r;
  }

  exitProcess(pid: number): Result<void> {
    const bad = validateExitProcess(pid);
    if (bad) return err(bad);
    const iso = this.host.iso();
    const p = this.process(pid);
    if (p === undefined) return noProcess(pid);
    // The LDT's frames go back to their owner, who frees them (isolation.ts, setLdt).
    const next = { iso: { ...iso, processes: iso.processes.filter((q) => q.pid !== pid) } };
    return this.commit(null, next, [], () => this.host.flushRoots(rootsOf(pid)));
  }

  mapUser(pid: number, vpn: Vpn, pfn: Pfn, pages: number, prot: Prot): Result<void> {
    const bad = validateMapUser(this.host.config, pid, vpn, pfn, pages, prot);
    if (bad) return err(bad);
    const p = this.process(pid);
    if (p === undefined) return noProcess(pid);
    if (mappedPages(p.user, vpn, pages) > 0) return fail('EEXIST', 'vpn', `part of ${vpnSpan(vpn, pages)} is already mapped in process ${pid}`);
    // A fresh copy of the caller's prot, as map makes one.
    const own = applyProtChange(prot, {});
    const added = placeLeaves(this.host.config, vpn, pfn, pages).map((l) => makeLeaf(l.vpn, l.pfn, l.size, own));
    return this.commit('mapUser', this.withProcess({ ...p, user: insertLeaves(p.user, added) }), [{ vpn, pages }]);
  }

  unmapUser(pid: number, vpn: Vpn, pages: number): Result<void> {
    const bad = validateUnmapUser(this.host.config, pid, vpn, pages);
    if (bad) return err(bad);
    const p = this.process(pid);
    if (p === undefined) return noProcess(pid);
    if (mappedPages(p.user, vpn, pages) === 0) return fail('ENOENT', 'vpn', `nothing in ${vpnSpan(vpn, pages)} is mapped in process ${pid}`);
    // zap splits a huge leaf straddling an end; the tables it empties go after the flush.
    const user = removeInside(splitAtEdges(p.user, vpn, pages, always), vpn, pages);
    return this.commit(null, this.withProcess({ ...p, user }), [], () => this.host.flushRoots(rootsOf(pid), { vpn, pages }));
  }

  setLdt(pid: number, pfn: Pfn, pages: number): Result<void> {
    const bad = validateSetLdt(this.host.config, pid, pfn, pages);
    if (bad) return err(bad);
    const p = this.process(pid);
    if (p === undefined) return noProcess(pid);
    const frames = this.host.frames();
    const notData = firstFrameNot(frames, pfn, pages, 'data');
    if (notData !== undefined) return fail('ENOENT', 'pfn', `frame ${notData} of ${pfnSpan(pfn, pages)} is not a data frame (an LDT comes from the page allocator)`);
    const holder = this.host.iso().processes.find((q) => q.ldt !== undefined && q.ldt.pfn < pfn + pages && pfn < q.ldt.pfn + q.ldt.pages);
    if (holder !== undefined) return fail('EBUSY', 'pfn', `a frame of ${pfnSpan(pfn, pages)} holds the LDT of process ${holder.pid}`);
    const old = p.ldt;
    const slot = old === undefined ? 0 : old.slot === 0 ? 1 : 0;
    const next = this.withProcess({ ...p, ldt: { slot, pfn, pages }, ldtTables: true });
    // The policy judges the new LDT's mapping (P7, T5); freeing the old one breaks nothing it checks.
    const mapped = [{ vpn: ldtSlotVpn(this.host.config.levels, slot), pages }];
    if (old === undefined) return this.commit('setLdt', next, mapped);
    // The old LDT is unmapped and flushed (the process flush of its slot); its frames stay with their owner.
    const oldSlot = { vpn: ldtSlotVpn(this.host.config.levels, old.slot), pages: LDT_SLOT_PAGES };
    return this.commit('setLdt', next, mapped, () => this.host.flushRoots(rootsOf(pid), oldSlot));
  }

  private process(pid: number): Process | undefined {
    return this.host.iso().processes.find((p) => p.pid === pid);
  }

  private withProcess(p: Process): IsolationNext {
    const iso = this.host.iso();
    return { iso: { ...iso, processes: iso.processes.map((q) => (q.pid === p.pid ? p : q)) } };
  }

  /**
   * Policy (strict, for the operations that can be refused), then memory, then the state
   * replaced and `after` (the operation's flush) run. `scopes` are where the operation
   * changed mappings; the isolation checks look everywhere anyway.
   */
  private commit(op: MutatingOp | null, next: IsolationNext, scopes: readonly Range[], after: () => void = () => {}): Result<void> {
    const { config, profile } = this.host;
    if (profile === 'strict' && op !== null && scopes.length > 0) {
      const broken = this.host.policyBreak(next, scopes);
      if (broken !== null) return { ok: false, error: policyError(op, broken.id, broken.where) };
    }
    const needed = this.host.initTables() + isolationTables(config.levels, next.iso);
    const pool = config.tablePool.count;
    if (needed > pool) return fail('ENOMEM', 'tablePool', `the result needs ${needed} page tables, the pool has ${pool}`);
    this.host.apply(next);
    after();
    return OK;
  }
}

function noProcess(pid: number): Result<never> {
  return fail('ENOENT', 'pid', `no live process has pid ${pid}`);
}
