/**
 * The optimized PageTableSystem: init_mm's radix tables in a typed-array pool (radix.ts,
 * tables.ts), per-CPU TLBs (tlb.ts) and the incremental policy (policy.ts).
 *
 * Every mutating operation runs in stages, as the brief's rule 2 orders the errors: the
 * shared argument validators (spec/contracts), the state checks on the tables (EEXIST /
 * ENOENT), then the work, journaled; then the tables emptied by it are freed; then the
 * policy on the leaves it wrote (EPERM) and the pool (ENOMEM). A failure rolls the
 * journal back, so a failed operation changes nothing; success commits, then flushes.
 */
import * as address from '../spec/address.ts';
import type { PageSize, Pfn, Vpn } from '../spec/address.ts';
import * as contracts from '../spec/contracts/index.ts';
import {
  accessAllowed, aliasChange, aliasRanges, checkTablePool, collapseBlock, directMapVpn,
  normalizeFrames, policyError, setNoDirectMap, translation, validateAccess, validateCollapse, validateFlush, validateMap,
  validateProtect, validateSetDirectMap, validateSplit, validateTranslate, validateUnmap, type MutatingOp,
} from '../spec/contracts/index.ts';
import { OK, fail, ok, type PtError, type Result } from '../spec/errors.ts';
import type { PolicyViolation } from '../spec/policy.ts';
import { INIT_MM, PAGE_KERNEL, type AbstractState, type FrameRun, type Leaf, type Prot, type RootId, type SystemConfig } from '../spec/state.ts';
import type {
  AccessKind, AccessMode, AccessOutcome, FlushOptions, MapOptions, PageTableSystem, ProtChange, ProtectOptions, SystemSetup,
  Translation,
} from '../spec/system.ts';
import { walkLeaves } from './abstract.ts';
import { MAPPED } from './frames.ts';
import type { MutantName } from './mutants.ts';
import { FrameFacts, LEVEL_SIZE, writtenLeafViolation } from './policy.ts';
import { CodeChange, PROTS, protCode } from './prot.ts';
import { Radix, leafPfn } from './radix.ts';
import { SPAN, type TablePool } from './tables.ts';
import { Tlbs } from './tlb.ts';

// Module-local copies of what map() calls per leaf: imported bindings are live (a getter per use once transpiled).
const { PAGES, leafLevel } = address;
const { chooseLeafSize } = contracts;

const err = (e: PtError): Result<never> => ({ ok: false, error: e });

interface Range {
  readonly vpn: Vpn;
  readonly pages: number;
}

export class RadixSystem implements PageTableSystem {
  readonly config: SystemConfig;
  readonly mutant: MutantName | undefined;
  private readonly radix: Radix;
  private readonly facts: FrameFacts;
  private readonly tlbs: Tlbs;
  private readonly bootFrames: readonly FrameRun[];
  /** abstract()'s frame runs, rebuilt only when noDirectMap changes. */
  private frameRuns: readonly FrameRun[] | null = null;
  /**
   * abstract()'s leaves and the pool's write count they were walked at: the fuzzer asks
   * after every command, and most commands (accesses, flushes, refused calls) write no
   * entry, so the walk reruns only when an entry was written.
   */
  private leaves: readonly Leaf[] = [];
  private leavesAt = -1;

  constructor(setup: SystemSetup, mutant?: MutantName) {
    this.config = setup.config;
    this.mutant = mutant;
    this.bootFrames = normalizeFrames(setup.frames);
    this.radix = new Radix(this.config, mutant);
    this.facts = new FrameFacts(this.config, this.bootFrames);
    this.tlbs = new Tlbs(this.config.cpus);
  }

  /** The concrete tables (for checkTables, tests and dumps). */
  tables(): TablePool {
    return this.radix.pool;
  }

  map(root: RootId, vpn: Vpn, pfn: Pfn, pages: number, prot: Prot, opts: MapOptions = {}): Result<void> {
    const bad = validateMap(this.config, root, vpn, pfn, pages, prot, opts);
    if (bad) return err(bad);
    const r = this.radix;
    if (r.anyMapped(vpn, vpn + pages)) return fail('EEXIST', 'vpn', `part of [${vpn}, +${pages}) is already mapped`);
    r.begin();
    this.install(vpn, pfn, pages, protCode(prot), opts.maxPage);
    return this.finish('map', []);
  }

  unmap(root: RootId, vpn: Vpn, pages: number): Result<void> {
    const bad = validateUnmap(this.config, root, vpn, pages);
    if (bad) return err(bad);
    const r = this.radix;
    if (!r.anyMapped(vpn, vpn + pages)) return fail('ENOENT', 'vpn', `nothing in [${vpn}, +${pages}) is mapped`);
    r.begin();
    r.unmapRange(vpn, vpn + pages);
    return this.finish('unmap', [{ vpn, pages }]);
  }

  protect(vpn: Vpn, pages: number, change: ProtChange, opts: ProtectOptions = {}): Result<void> {
    const bad = validateProtect(this.config, vpn, pages, change);
    if (bad) return err(bad);
    const r = this.radix;
    if (!r.allMapped(vpn, vpn + pages)) return fail('ENOENT', 'vpn', `part of [${vpn}, +${pages}) is not mapped`);
    // cpa_process_alias: the direct-map ranges of the frames, from the leaves before the change.
    const aliases = opts.alias === true ? aliasRanges(this.config, this.leavesIn(vpn, pages), vpn, pages) : [];
    r.begin();
    r.protectRange(vpn, vpn + pages, new CodeChange(change));
    if (aliases.length > 0 && this.mutant !== 'no-alias') {
      const alias = new CodeChange(aliasChange(change));
      for (const a of aliases) r.protectRange(a.vpn, a.vpn + a.pages, alias);
    }
    const flushed = this.mutant === 'protect-no-flush' ? [] : [{ vpn, pages }, ...aliases];
    return this.finish('protect', flushed);
  }

  setDirectMapInvalid(pfn: Pfn, count: number, opts: FlushOptions): Result<void> {
    const bad = validateSetDirectMap(this.config, pfn, count);
    if (bad) return err(bad);
    const dm = { vpn: directMapVpn(pfn), pages: count };
    const r = this.radix;
    if (!r.allMapped(dm.vpn, dm.vpn + count)) return fail('ENOENT', 'pfn', `a frame of [${pfn}, +${count}) has no direct-map page`);
    r.begin();
    r.unmapRange(dm.vpn, dm.vpn + count);
    return this.finishDirectMap('setDirectMapInvalid', pfn, dm, opts.flush);
  }

  setDirectMapDefault(pfn: Pfn, count: number, opts: FlushOptions): Result<void> {
    const bad = validateSetDirectMap(this.config, pfn, count);
    if (bad) return err(bad);
    const dm = { vpn: directMapVpn(pfn), pages: count };
    const r = this.radix;
    if (r.anyMapped(dm.vpn, dm.vpn + count)) return fail('EEXIST', 'pfn', `a frame of [${pfn}, +${count}) still has its direct-map page`);
    r.begin();
    // set_direct_map_default_noflush rewrites one PTE per page: 4K even where a large page would fit.
    this.install(dm.vpn, pfn, count, protCode(PAGE_KERNEL), '4K');
    return this.finishDirectMap('setDirectMapDefault', pfn, dm, opts.flush);
  }

  split(root: RootId, vpn: Vpn): Result<void> {
    const bad = validateSplit(this.config, root, vpn);
    if (bad) return err(bad);
    const r = this.radix;
    if (!r.lookup(vpn)) return fail('ENOENT', 'vpn', `${vpn} is not mapped`);
    if (r.hitLevel === 1) return fail('EINVAL', 'vpn', `${vpn} is mapped by a 4K leaf, which cannot split`);
    const span = SPAN[r.hitLevel as 1]!;
    const leafVpn = vpn - (vpn % span);
    r.begin();
    r.splitEntry(r.hitSlot, r.hitIdx);
    return this.finish('split', [{ vpn: leafVpn, pages: span }]);
  }

  collapse(root: RootId, vpn: Vpn, size: '2M' | '1G'): Result<void> {
    // collapse_pmd_page before 1dbf30fdb5e5 did not ask the CPU for PSE.
    const config = this.mutant === 'collapse-without-pse' ? { ...this.config, features: { pse: true, gbpages: true } } : this.config;
    const bad = validateCollapse(config, root, vpn, size);
    if (bad) return err(bad);
    const block = collapseBlock(vpn, size);
    const r = this.radix;
    if (!r.allMapped(block.vpn, block.vpn + block.pages)) return fail('ENOENT', 'vpn', `part of the ${size} block at ${block.vpn} is not mapped`);
    const refusal = r.collapseRefusal(block.vpn, leafLevel(size));
    if (refusal !== null) return fail('EINVAL', 'vpn', `cannot collapse the ${size} block at ${block.vpn}: ${refusal}`);
    r.begin();
    r.collapseAt(r.hitSlot, r.hitIdx);
    return this.finish('collapse', [block]);
  }

  translate(root: RootId, vpn: Vpn): Result<Translation> {
    const bad = validateTranslate(this.config, root, vpn);
    if (bad) return err(bad);
    const leaf = this.leafAt(vpn);
    if (leaf === undefined) return fail('ENOENT', 'vpn', `${vpn} is not mapped`);
    return ok(translation(leaf, vpn));
  }

  access(cpu: number, root: RootId, vpn: Vpn, kind: AccessKind, mode: AccessMode): Result<AccessOutcome> {
    const bad = validateAccess(this.config, cpu, root, vpn, kind, mode);
    if (bad) return err(bad);
    const cached = this.tlbs.lookup(cpu, root, vpn);
    const leaf = cached?.leaf ?? this.leafAt(vpn);
    if (leaf === undefined) return ok({ fault: 'not-present' });
    if (cached === undefined) this.tlbs.fill(cpu, root, leaf);
    if (!accessAllowed(leaf.prot, kind, mode)) return ok({ fault: 'protection' });
    return ok({ fault: false, translation: translation(leaf, vpn), fromTlb: cached !== undefined });
  }

  flush(vpn: Vpn, pages: number): Result<void> {
    const bad = validateFlush(this.config, vpn, pages);
    if (bad) return err(bad);
    this.tlbs.flushRange(vpn, pages);
    return OK;
  }

  flushAll(): Result<void> {
    this.tlbs.flushAll();
    return OK;
  }

  abstract(): AbstractState {
    return {
      config: this.config,
      frames: this.frames(),
      roots: [{ id: INIT_MM, kind: 'kernel', leaves: this.currentLeaves() }],
      tlb: this.tlbs.entries(),
      pendingFlush: this.tlbs.obligations(),
      tablesInUse: this.radix.pool.inUse,
      // Emptied tables are freed at the end of the operation that empties them, after its flush.
      pendingTableFrees: 0,
    };
  }

  private currentLeaves(): readonly Leaf[] {
    const writes = this.radix.pool.writes;
    if (writes !== this.leavesAt) {
      this.leaves = walkLeaves(this.radix, this.leaves);
      this.leavesAt = writes;
    }
    return this.leaves;
  }

  private frames(): readonly FrameRun[] {
    if (this.frameRuns === null) {
      let runs = this.bootFrames;
      for (const r of this.facts.noDirectMap.runs()) runs = setNoDirectMap(runs, r.pfn, r.count, true);
      this.frameRuns = runs;
    }
    return this.frameRuns;
  }

  /** The leaf mapping vpn, as the abstraction function sees it. */
  private leafAt(vpn: Vpn): Leaf | undefined {
    const r = this.radix;
    if (!r.lookup(vpn)) return undefined;
    const span = SPAN[r.hitLevel as 1]!;
    const off = r.hitSlot * 1024 + r.hitIdx * 2;
    const pfn = leafPfn(r.pool.words[off]!, r.pool.words[off + 1]!, r.hitLevel);
    return { vpn: vpn - (vpn % span), pfn, size: LEVEL_SIZE[r.hitLevel]!, prot: PROTS[r.hitCode]! };
  }

  /** The leaves intersecting [vpn, vpn+pages), in order (protect's alias ranges need them). */
  private leavesIn(vpn: Vpn, pages: number): Leaf[] {
    const out: Leaf[] = [];
    for (let v = vpn; v < vpn + pages; ) {
      const leaf = this.leafAt(v)!;
      out.push(leaf);
      v = leaf.vpn + PAGES[leaf.size];
    }
    return out;
  }

  /** map's leaf placement (brief rule 3) written into the tables of the running operation. */
  private install(vpn: Vpn, pfn: Pfn, pages: number, code: number, maxPage: PageSize | undefined): void {
    for (let off = 0; off < pages; ) {
      const v = vpn + off;
      const size = chooseLeafSize(this.config, v, pfn + off, pages - off, maxPage);
      // After a 4K choice every position up to the next 2M boundary is unaligned, so 4K
      // too: install that run with one walk instead of asking again per page.
      const n = size === '4K' ? Math.min(pages - off, 512 - (v % 512)) : 1;
      this.radix.installLeaves(v, leafLevel(size), pfn + off, n, code);
      off += n * PAGES[size];
    }
  }

  /** set_direct_map_* on frames [pfn, +dm.pages), direct-map range dm: flushed now, or (the `_noflush` variants) owed. */
  private finishDirectMap(op: 'setDirectMapInvalid' | 'setDirectMapDefault', pfn: Pfn, dm: Range, flush: boolean): Result<void> {
    const noDirectMap = op === 'setDirectMapInvalid';
    const owe = flush || (noDirectMap && this.mutant === 'noflush-no-obligation') ? undefined : { ...dm, reason: op };
    return this.finish(op, flush ? [dm] : [], { pfn, count: dm.pages, noDirectMap }, owe);
  }

  /**
   * The end of every mutating operation: free the emptied tables, then policy (EPERM),
   * then the pool (ENOMEM); roll back on failure; else commit, flush, record a debt.
   */
  private finish(op: MutatingOp, flushed: readonly Range[], frames?: { pfn: Pfn; count: number; noDirectMap: boolean }, owe?: Range & { reason: string }): Result<void> {
    const r = this.radix;
    const nd = this.facts.noDirectMap;
    r.releaseEmptied();
    const saved = frames ? nd.save() : null;
    if (frames) nd.set(frames.pfn, frames.count, frames.noDirectMap);
    const violation = writtenLeafViolation(r, this.facts) ?? (frames?.noDirectMap ? this.stillMapped(frames.pfn, frames.count) : null);
    const error = violation !== null ? policyError(op, violation) : checkTablePool(this.config, r.pool.inUse);
    if (error !== null) {
      r.pool.rollback();
      if (saved !== null) nd.restore(saved);
      return err(error);
    }
    r.pool.commit();
    if (frames) this.frameRuns = null;
    for (const f of flushed) this.tlbs.flushRange(f.vpn, f.pages);
    if (owe) this.tlbs.owe(owe.vpn, owe.pages, owe.reason);
    return OK;
  }

  /** Rule (f) for frames just removed from the direct map: no other kernel-half mapping left. */
  private stillMapped(pfn: Pfn, count: number): PolicyViolation | null {
    const counters = this.radix.counters;
    if (!counters.any(MAPPED, pfn, count)) return null;
    for (let p = pfn; p < pfn + count; p++) {
      if (!counters.any(MAPPED, p, 1)) continue;
      const leaf: Leaf = { vpn: directMapVpn(p), pfn: p, size: '4K', prot: PAGE_KERNEL };
      return { rule: 'no-direct-map', mapping: { root: INIT_MM, leaf }, pfn: p, count: 1, reason: `frame ${p} is removed from the direct map but still mapped elsewhere in the kernel half` };
    }
    return null;
  }
}
