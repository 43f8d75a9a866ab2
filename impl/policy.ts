/**
 * The strict policy (spec/contracts/outcome.ts STRICT_POLICY), decided incrementally.
 * The state before an operation breaks none of its invariants (the system refuses
 * whatever would), so the state after it can break one only at a leaf the operation
 * wrote, or, for P7, at a frame it just removed from the direct map. Each written leaf
 * costs O(1) counter and run-set queries (frames.ts, runs.ts) per block of frames it
 * covers, and the linear-map rules (D1-D3) only its own address; nothing scans all
 * leaves or all frames.
 *
 * A refusal names the first invariant in STRICT_POLICY order that the result breaks at
 * any written leaf: the rule order is the outer one. One pass gets it: each leaf is
 * tested only against the rules before the best found so far.
 *
 * The frame lifecycle (D4, D6, D7, C1) is judged where frames change hands: freeFrames
 * asks whether a frame going back to the allocator is still mapped outside its direct-map
 * page (a counter), still off the direct map (a run set) or still cached by a TLB at
 * another page (the cached leaves, a handful), or may still be translated by a TLB the
 * clients left stale (a stale mermap allocation, a lazily freed vmalloc area still owed a
 * flush: clients.ts); set_direct_map_invalid of a free frame breaks D6.
 *
 * The clients' exemptions (spec/contracts/clients.ts): a leaf wholly inside the mermap
 * region breaks no P7 (mapping pages the direct map lacks is what it is for), and a free
 * frame of an unmapped pageblock breaks no D6 (the __GFP_UNMAPPED pool keeps it off the
 * direct map). C7 is judged per written leaf: one at the direct-map page of a frame of an
 * unmapped pageblock puts it back in the direct map.
 */
import { X86_64_LAYOUT_4LEVEL, kernelLayout, pfnToHex, upperHalfStart, vpnToHex, type Pfn, type Vpn } from '../spec/address.ts';
import { mermapRegion } from '../spec/clients.ts';
import { STRICT_POLICY } from '../spec/contracts/outcome.ts';
import { CACHE_MODES, INIT_MM, type FrameRun, type SystemConfig } from '../spec/state.ts';
import * as frames from './frames.ts';
import * as prot from './prot.ts';
import { WRITTEN_RUN, type Radix } from './radix.ts';
import { RunSet, firstOutside, members, type Members } from './runs.ts';
import type { Tlbs } from './tlb.ts';
import * as tables from './tables.ts';

// Module-local copies: imported bindings are live (a getter per use once transpiled).
const { P_EXEC, P_USER, P_WRITE, leafCode } = prot;
const { SPAN } = tables;
const { CACHE, CACHE_OF_CODE, EXEC, KERNEL_HALF, OUTSIDE_DIRECT_MAP, WRITABLE } = frames;
/** __START_KERNEL_map and MODULES_VADDR: the high map's region, the same in both layouts. */
const KERNEL_TEXT = X86_64_LAYOUT_4LEVEL.kernelText;
const MODULES = X86_64_LAYOUT_4LEVEL.modules;
const CACHE_MODE_COUNT = CACHE_MODES.length;

/**
 * The frames the page allocator owns (use 'free'), and the frames with no memory beside
 * them (use 'absent': e820 holes, hotplug space not added), which memory hotplug moves into
 * the allocator and out of it again: abstract.ts frameRuns reads a frame's use from both.
 */
export class FreeFrames extends RunSet<true> {
  constructor(readonly absent: Members) {
    super(() => true);
  }
}

/**
 * Frames by what the policy cares about; `noDirectMap` changes, allocFrames / freeFrames
 * move frames between `free` and `data`, and memory hotplug between `absent` and those
 * two; the rest is fixed at boot.
 */
export class FrameFacts {
  readonly text = members();
  readonly rodata = members();
  readonly tables = members();
  /** Frames with no memory: D8. */
  readonly absent = members();
  /** Frames the page allocator owns: D4, D6, D7. */
  readonly free = new FreeFrames(this.absent);
  /** Frames handed out as data (use 'data'): what freeFrames may free. */
  readonly data = members();
  readonly noDirectMap = members();
  /** Frames no restricted (ASI) root may map: A1. */
  readonly sensitive = members();
  /** The frames of the pageblocks flagged FREETYPE_UNMAPPED (whole pageblocks): the pool clients-pool.ts keeps. */
  readonly unmapped = members();
  readonly kernelHalfStart: Vpn;
  /** __PAGE_OFFSET of the paging mode's layout: where a table frame may be mapped. */
  readonly pageOffset: Vpn;
  /** The end of the direct map: __PAGE_OFFSET + the frames of memory. */
  readonly directMapEnd: Vpn;
  /** The mermap region [mermapLo, mermapHi), every CPU's slices. */
  readonly mermapLo: Vpn;
  readonly mermapHi: Vpn;
  /** Where a per-leaf rule's answer changes with the leaf's address (firstBroken judges a run of leaves across one leaf by leaf). */
  readonly edges: readonly Vpn[];

  /** Become a copy of `src`, the facts of the same machine (RadixSystem.fork). */
  copyFrom(src: FrameFacts): void {
    for (const k of ['text', 'rodata', 'tables', 'absent', 'free', 'data', 'noDirectMap', 'sensitive', 'unmapped'] as const) this[k].restore(src[k]);
  }

  constructor(config: SystemConfig, runs: readonly FrameRun[]) {
    this.kernelHalfStart = upperHalfStart(config.levels);
    this.pageOffset = kernelLayout(config.levels).pageOffset;
    this.directMapEnd = this.pageOffset + config.frames;
    const mermap = mermapRegion(config.levels, config.cpus);
    this.mermapLo = mermap.vpn;
    this.mermapHi = mermap.vpn + mermap.pages;
    this.edges = [this.kernelHalfStart, this.pageOffset, this.directMapEnd, KERNEL_TEXT, MODULES, this.mermapLo, this.mermapHi];
    const byUse: Partial<Record<FrameRun['use'], Members>> = { 'kernel-text': this.text, 'kernel-rodata': this.rodata, pagetable: this.tables, free: this.free, data: this.data, absent: this.absent };
    for (const r of runs) {
      byUse[r.use]?.add(r.pfn, r.count, true);
      if (r.noDirectMap) this.noDirectMap.add(r.pfn, r.count, true);
      if (r.sensitive) this.sensitive.add(r.pfn, r.count, true);
    }
  }
}

// The rules the impl decides, as small numbers for the per-leaf switch.
const P1 = 0;
const P2 = 1;
const P3 = 2;
const P4 = 3;
const P5 = 4;
const S12 = 5;
const P6 = 6;
const P7 = 7;
const D1 = 8;
const D2 = 9;
const D3 = 10;
const T5 = 11;
const D4 = 12;
const D6 = 13;
const D7 = 14;
// The isolation rules are decided over the roots, after the others (isolation-policy.ts).
const ISOLATION_RULE = 15;
// The clients' rules, after the isolation ones: C1 where frames are freed or a flush is owed, C7 per written leaf.
const C1 = 16;
const C7 = 17;
const D8 = 18;
const RULE_OF_ID: Readonly<Record<string, number>> = {
  P1, P2, P3, P4, P5, S12, P6, P7, D1, D2, D3, D8, T5, D4, D6, D7, K2: ISOLATION_RULE, K3: ISOLATION_RULE, A1: ISOLATION_RULE, A2: ISOLATION_RULE, C1, C7,
};

/** The rules in STRICT_POLICY order; an invariant the impl cannot decide is a load-time error. */
const ORDER: readonly number[] = STRICT_POLICY.map(({ id }) => {
  const rule = RULE_OF_ID[id];
  if (rule === undefined) throw new Error(`impl/policy.ts does not decide strict-policy invariant ${id}`);
  return rule;
});
const P7_AT = ORDER.indexOf(P7);
const D6_AT = ORDER.indexOf(D6);
// P2 leaves W+X leaves to P1 (the frame counters cannot tell a leaf from its aliases), which is sound only if P1 is asked first.
if (ORDER.indexOf(P1) > ORDER.indexOf(P2)) throw new Error('impl/policy.ts assumes P1 comes before P2 in STRICT_POLICY');
// isolation-policy.ts asks its rules only when no earlier rule broke, which is sound only if
// they come after every per-leaf rule but the clients' (system.ts asks them before C1 and C7).
const FIRST_ISOLATION = ORDER.indexOf(ISOLATION_RULE);
const LATE: ReadonlySet<number> = new Set([C1, C7]);
if (
  ORDER.lastIndexOf(ISOLATION_RULE) !== FIRST_ISOLATION + 3 ||
  ORDER.some((rule, i) => (i > FIRST_ISOLATION + 3) !== LATE.has(rule))
) throw new Error('impl/policy.ts assumes K2, K3, A1 and A2 follow every other rule of STRICT_POLICY but C1 and C7, which end it');

/** The position of strict-policy invariant `id` in STRICT_POLICY (the first broken is named). */
const rankOf = (id: string): number => STRICT_POLICY.findIndex((p) => p.id === id);

/** Whether `id` comes after the isolation rules in STRICT_POLICY (system.ts asks those first). */
export function isLateRule(id: string): boolean {
  return LATE.has(RULE_OF_ID[id]!);
}

/** Of two findings, the one STRICT_POLICY names first. */
export function earliest(a: Broken | null, b: Broken | null): Broken | null {
  if (a === null) return b;
  if (b === null) return a;
  return rankOf(b.id) < rankOf(a.id) ? b : a;
}

/**
 * The first frame of the leaf (code, vpn → pfn, n pages) at which `rule` breaks in the
 * state the counters and facts describe, or -1.
 */
function breakAt(rule: number, radix: Radix, facts: FrameFacts, code: number, vpn: Vpn, pfn: Pfn, n: number): number {
  const write = (code & P_WRITE) !== 0;
  const exec = (code & P_EXEC) !== 0;
  switch (rule) {
    case P1:
      // Core operations write the kernel half only: a user-half leaf is a process's (mapUser), which P1 exempts.
      return write && exec && vpn >= facts.kernelHalfStart ? pfn : -1;
    case P2: {
      // This leaf is one side; the counters (which count no user-half leaf as executable,
      // radix.ts) say whether another leaf is the other. A kernel-half W+X leaf is P1's.
      const executes = exec && vpn >= facts.kernelHalfStart;
      if (write) return executes ? -1 : radix.counters.first(EXEC, pfn, n);
      return executes ? radix.counters.first(WRITABLE, pfn, n) : -1;
    }
    case P3:
      return write ? facts.text.first(pfn, n) : -1;
    case P4:
      return write ? facts.rodata.first(pfn, n) : -1;
    case P5:
      // __START_KERNEL_map + pfn: the image mapping, where the kernel executes its text.
      return !exec && vpn - pfn === KERNEL_TEXT ? facts.text.first(pfn, n) : -1;
    case S12:
      return mappedBesideDirectMap(facts.tables, facts, vpn, pfn, n);
    case D4:
      // A free frame belongs to the page allocator: only the direct map, which maps all memory, may map it.
      return mappedBesideDirectMap(facts.free, facts, vpn, pfn, n);
    case P6:
      return vpn >= facts.kernelHalfStart && (code & P_USER) !== 0 ? pfn : -1;
    case P7:
      // The mermap's leaves are exempt: mapping pages the direct map lacks is its purpose.
      return vpn >= facts.kernelHalfStart && !(vpn >= facts.mermapLo && vpn + n <= facts.mermapHi) ? facts.noDirectMap.first(pfn, n) : -1;
    case D1:
      // __va: inside the direct map, page __PAGE_OFFSET + pfn maps pfn and nothing else.
      return vpn < facts.directMapEnd && facts.pageOffset < vpn + n && vpn - pfn !== facts.pageOffset ? pfn : -1;
    case D2:
      return vpn < MODULES && KERNEL_TEXT < vpn + n && vpn - pfn !== KERNEL_TEXT ? pfn : -1;
    case D3:
      return exec && vpn < facts.directMapEnd && facts.pageOffset < vpn + n ? pfn : -1;
    case D8:
      // A direct-map leaf over a hole or unplugged memory: whatever frame it maps, one with no memory.
      return vpn < facts.directMapEnd && facts.pageOffset < vpn + n ? facts.absent.first(pfn, n) : -1;
    case ISOLATION_RULE:
      // Judged over the roots, not per frame (isolation-policy.ts).
      return -1;
    case D6:
    case D7:
    case C1:
      // Writing a leaf neither frees a frame nor fills a TLB: only freeFrames (and D6's set_direct_map_invalid, C1's owed flush) can break these.
      return -1;
    case C7:
      return directMapPageOfUnmapped(facts, vpn, n);
    default: // T5: the counters hold this leaf under its own mode, so any other mode on its frames is another leaf.
      return otherMemoryType(radix, CACHE_OF_CODE[code]!, pfn, n);
  }
}

/**
 * The first frame of an unmapped pageblock whose direct-map page the leaf [vpn, vpn + n)
 * covers, whatever frame it maps there, or -1.
 */
function directMapPageOfUnmapped(facts: FrameFacts, vpn: Vpn, n: number): number {
  const lo = Math.max(vpn, facts.pageOffset);
  const hi = Math.min(vpn + n, facts.directMapEnd);
  return lo < hi ? facts.unmapped.first(lo - facts.pageOffset, hi - lo) : -1;
}

/** The first frame of `set` among the leaf's frames [pfn, pfn + n), unless the leaf is the frames' own direct-map page; or -1. */
function mappedBesideDirectMap(set: Members, facts: FrameFacts, vpn: Vpn, pfn: Pfn, n: number): number {
  return vpn - pfn === facts.pageOffset ? -1 : set.first(pfn, n);
}

/** The first frame of [pfn, pfn + n) that some leaf maps with another cache mode than `mine`, or -1. */
function otherMemoryType(radix: Radix, mine: number, pfn: Pfn, n: number): number {
  // Usually every leaf on these frames' 1 GiB blocks has this mode: one comparison of sums, not a query per mode.
  if (!radix.counters.mayDiffer(CACHE + mine, pfn, n)) return -1;
  let first = -1;
  for (let m = 0; m < CACHE_MODE_COUNT; m++) {
    if (m === mine) continue;
    const f = radix.counters.first(CACHE + m, pfn, first < 0 ? n : first - pfn);
    if (f >= 0) first = f;
  }
  return first;
}

/** A strict-policy invariant the result would break, and where, as policyError wants them. */
export interface Broken {
  readonly id: string;
  readonly where: string;
}

const at = (pfn: Pfn, vpn: Vpn): string => `at frame ${pfnToHex(pfn)} through ${vpnToHex(vpn)} in root ${INIT_MM}`;

/** Whether one of `edges` lies strictly inside (lo, hi). */
function meetsEdge(edges: readonly Vpn[], lo: Vpn, hi: Vpn): boolean {
  for (const e of edges) if (lo < e && e < hi) return true;
  return false;
}

/** The first rule broken so far (its index in ORDER; ORDER.length for none) and where. */
interface Verdict {
  best: number;
  where: string;
}

/** firstBroken's verdict, reused (it is not reentrant): every strict operation asks, and an object per call is garbage. */
const verdict: Verdict = { best: 0, where: '' };

/** The rules before the best so far on `pages` pages of leaves of `code` from vpn → pfn: a rule broken there becomes the best. */
function judge(v: Verdict, radix: Radix, facts: FrameFacts, code: number, vpn: Vpn, pfn: Pfn, pages: number): void {
  for (let r = 0; r < v.best; r++) {
    const rule = ORDER[r]!;
    const f = breakAt(rule, radix, facts, code, vpn, pfn, pages);
    if (f < 0) continue;
    v.best = r;
    // C7's frame is the one whose direct-map page the leaf covers, not one it maps.
    v.where = rule === C7 ? `at ${vpnToHex(facts.pageOffset + f)}, the direct-map page of frame ${pfnToHex(f)} of an unmapped pageblock` : at(f, vpn + (f - pfn));
    return;
  }
}

/**
 * The first strict-policy invariant the running operation's result breaks, or null:
 * over the leaves it wrote and, for the frames it removed from the direct map (`removed`),
 * over every kernel-half mapping left of them (P7) and whether one is free (D6).
 */
export function firstBroken(radix: Radix, facts: FrameFacts, removed: readonly { readonly pfn: Pfn; readonly count: number }[] = []): Broken | null {
  const v = verdict;
  v.best = ORDER.length;
  v.where = '';
  // A run of leaves (one code, vpn and pfn moving together) is judged as one range: every
  // rule's answer over it is its first leaf's that breaks, unless a region edge a rule asks
  // about lies inside it, where the run is judged leaf by leaf. Written and later replaced
  // entries (split, cleared, table freed) in the same operation are not judged. The runs
  // right after it that continue it (the next tables' of a large map: the same level and
  // code, vpn and pfn going on together) are one range with it: judged in order, runs
  // that one range holds answer as the range does.
  const len = radix.writtenRuns();
  const runs = radix.writtenOut;
  for (let k = 0; k < len && v.best > 0; ) {
    const level = runs[k + 1]!;
    const vpn = runs[k + 3]!;
    const pfn = runs[k + 4]!;
    const code = leafCode(runs[k + 5]!, runs[k + 6]!, level > 1, true, true, false);
    const span = SPAN[level as 1]!;
    let pages = runs[k + 2]! * span;
    for (k += WRITTEN_RUN; k < len && runs[k + 1] === level && runs[k + 3] === vpn + pages && runs[k + 4] === pfn + pages; k += WRITTEN_RUN) {
      if (leafCode(runs[k + 5]!, runs[k + 6]!, level > 1, true, true, false) !== code) break;
      pages += runs[k + 2]! * span;
    }
    if (!meetsEdge(facts.edges, vpn, vpn + pages)) judge(v, radix, facts, code, vpn, pfn, pages);
    else for (let i = 0; i < pages && v.best > 0; i += span) judge(v, radix, facts, code, vpn + i, pfn + i, span);
  }
  let { best, where } = v;
  for (const gone of removed) {
    if (P7_AT < best) {
      // A process's user mapping of the frame stays (secretmem's very point), and so does the mermap's: KERNEL_HALF counts neither.
      const f = radix.counters.first(KERNEL_HALF, gone.pfn, gone.count);
      if (f >= 0) {
        best = P7_AT;
        where = `at frame ${pfnToHex(f)}, still mapped in the kernel half after its direct-map page ${vpnToHex(facts.pageOffset + f)} went`;
      }
    }
    if (D6_AT < best) {
      // A free frame taken off the direct map is one the allocator hands out unreachable, but the pool's (it hands them out as such).
      const f = firstOutside(facts.free, facts.unmapped, gone.pfn, gone.count);
      if (f >= 0) {
        best = D6_AT;
        where = `at frame ${pfnToHex(f)}, a free frame removed from the direct map`;
      }
    }
  }
  return best < ORDER.length ? { id: STRICT_POLICY[best]!.id, where } : null;
}

/** How a free is judged beside freeFrames' own rule (vfree's, clients-vmalloc.ts). */
export interface FreeingOptions {
  /** vm_reset_perms puts the frames back in the direct map before the free: no D6. */
  readonly restored?: boolean;
  /** Pages flushed before the free (the vfree'd area): a TLB entry meeting them is no D7. */
  readonly flushedFirst?: { readonly vpn: Vpn; readonly pages: number };
  /** C1: the first frame of a range a stale client translation may still reach (clients.ts), or -1; absent, no C1. */
  readonly stillTranslated?: (pfn: Pfn, count: number) => number;
}

/**
 * The first strict-policy invariant that freeing frames [pfn, pfn + count) would break,
 * in STRICT_POLICY order, or null: D4, a leaf maps one outside its direct-map page (the
 * OUTSIDE_DIRECT_MAP counter); D6, one is still off the direct map, but in the pool; D7,
 * some CPU's TLB caches one at another page than its direct-map page, owed flush or not;
 * C1, a TLB the clients left stale may still translate to one.
 */
export function freeingBreaks(radix: Radix, facts: FrameFacts, tlbs: Tlbs, pfn: Pfn, count: number, opts: FreeingOptions = {}): Broken | null {
  for (const rule of ORDER) {
    let f = -1;
    let why = '';
    if (rule === D4) {
      f = radix.counters.first(OUTSIDE_DIRECT_MAP, pfn, count);
      why = 'still mapped outside its direct-map page';
    } else if (rule === D6 && radix.mutant !== 'gmem-freed-without-restore' && opts.restored !== true) {
      // A frame of an unmapped pageblock goes back to the pool, which keeps it off the direct map.
      f = firstOutside(facts.noDirectMap, facts.unmapped, pfn, count);
      why = 'still removed from the direct map';
    } else if (rule === D7) {
      f = cachedOutsideDirectMap(tlbs, facts.pageOffset, pfn, count, opts.flushedFirst);
      why = 'still cached by a TLB outside its direct-map page';
    } else if (rule === C1 && opts.stillTranslated !== undefined) {
      f = opts.stillTranslated(pfn, count);
      why = 'a TLB may still translate to it (a stale mermap allocation, or a lazily freed vmalloc area still owed a flush)';
    }
    if (f >= 0) return { id: STRICT_POLICY[ORDER.indexOf(rule)]!.id, where: `at frame ${pfnToHex(f)}, ${why}` };
  }
  return null;
}

/**
 * The first frame of [pfn, pfn + count) a TLB entry of any CPU caches at a page other than
 * its direct-map page (and outside `flushed`, pages flushed before the free), or -1.
 */
function cachedOutsideDirectMap(tlbs: Tlbs, pageOffset: Vpn, pfn: Pfn, count: number, flushed?: { readonly vpn: Vpn; readonly pages: number }): number {
  let first = -1;
  const end = pfn + count;
  tlbs.forEachCached((c) => {
    const leaf = c.entry.leaf;
    if (leaf.vpn - leaf.pfn === pageOffset) return;
    const span = SPAN[c.level as 1]!;
    if (flushed !== undefined && leaf.vpn < flushed.vpn + flushed.pages && flushed.vpn < leaf.vpn + span) return;
    const from = Math.max(leaf.pfn, pfn);
    if (from < Math.min(leaf.pfn + span, end) && (first < 0 || from < first)) first = from;
  });
  return first;
}
