/**
 * The security policy (brief rule 11): rules an operation may never break. The system
 * refuses with EPERM any operation whose resulting state breaks one, so they hold in
 * every reachable state, and the invariant catalogue states the same rules as
 * invariants over any state (a parsed kernel dump included). Each rule is a function
 * listing its violations with a witness (root, leaf, frames, reason); `limit` stops early.
 * The model runs them on every candidate state, so they are one sweep over the leaves
 * (frame runs are looked up only for the few leaves that touch a special run) plus a
 * sweep over the executable leaves' frames for (b). With a scope (the VA ranges an
 * operation touched) only violations involving a mapping that intersects the scope are
 * reported: on a state that was clean, those are all the new ones, as long as no frame
 * changed its use or noDirectMap (callers that change frames check without a scope).
 *
 *   (a) wx               no leaf is writable and executable (CONFIG_DEBUG_WX,
 *                        arch/x86/mm/dump_pagetables.c note_page → "W+X mapping").
 *   (b) cross-alias-wx   no frame is writable through one mapping and executable through
 *                        another (the alias handling of cpa_process_alias exists so that
 *                        set_memory_x on a vmalloc page cannot leave its direct map RW+X).
 *   (c) static           kernel-rodata and kernel-text frames are writable through no
 *                        mapping (mark_rodata_ro and its direct-map alias); the kernel-image
 *                        page of a text frame (__START_KERNEL_map + pfn) is never NX.
 *   (d) pagetable        a page-table frame is mapped only by its own direct-map page
 *                        (the kernel writes tables through __va(); any other mapping is a
 *                        way to forge translations).
 *   (e) user-kernel-half no kernel-half leaf has user set (the Windows 7 "Total Meltdown"
 *                        PML4 self-reference bug, 2018: user-accessible kernel tables).
 *   (f) no-direct-map    a noDirectMap frame is mapped nowhere in the kernel half
 *                        (secretmem / guest_memfd: mm/secretmem.c, set_direct_map_invalid_noflush).
 * Sanctioned exception, not modelled: text_poke writes kernel text through a temporary
 * mm (poking_mm, arch/x86/kernel/alternative.c), a user-half mapping of one CPU that is
 * never visible to the kernel half; it is the only writable alias of text the kernel has.
 */
import { PAGES, X86_64_LAYOUT_4LEVEL, pfnToHex, upperHalfStart, vpnToHex, type Pfn } from './address.ts';
import type { CheckScope } from './invariant.ts';
import type { AbstractState, FrameRun, FrameUse, Leaf, RootId } from './state.ts';

export type PolicyRule = 'wx' | 'cross-alias-wx' | 'static' | 'pagetable' | 'user-kernel-half' | 'no-direct-map';
export const POLICY_RULES: readonly PolicyRule[] = ['wx', 'cross-alias-wx', 'static', 'pagetable', 'user-kernel-half', 'no-direct-map'];

/** What a rule looks at: the frames and every root's leaves. An AbstractState is one. */
export type PolicyState = Pick<AbstractState, 'config' | 'frames' | 'roots'>;

export interface Mapping {
  readonly root: RootId;
  readonly leaf: Leaf;
}

export interface PolicyViolation {
  readonly rule: PolicyRule;
  /** The mapping at fault. */
  readonly mapping: Mapping;
  /** The other mapping of the same frames (cross-alias W^X only). */
  readonly other?: Mapping;
  /** The frames concerned. */
  readonly pfn: Pfn;
  readonly count: number;
  readonly reason: string;
}

const isExec = (l: Leaf): boolean => l.prot.execKernel || l.prot.execUser;

function where(m: Mapping): string {
  return `root ${m.root} ${vpnToHex(m.leaf.vpn)} (${m.leaf.size})`;
}

function frames(pfn: Pfn, count: number): string {
  return count === 1 ? `frame ${pfnToHex(pfn)}` : `frames ${pfnToHex(pfn)}+${count}`;
}

const STATIC_USES: ReadonlySet<FrameUse> = new Set<FrameUse>(['kernel-text', 'kernel-rodata']);

/** Runs some per-leaf rule cares about: text, rodata, page tables, frames off the direct map. */
function specialRuns(runs: readonly FrameRun[]): FrameRun[] {
  return runs.filter((r) => STATIC_USES.has(r.use) || r.use === 'pagetable' || r.noDirectMap);
}

/** Index of the first run or leaf ending after `at` (sorted, disjoint). */
function firstEndingAfter<T>(xs: readonly T[], at: number, start: (x: T) => number, length: (x: T) => number): number {
  let lo = 0;
  let hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    const x = xs[mid]!;
    if (start(x) + length(x) <= at) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

const runPfn = (r: FrameRun): number => r.pfn;
const runCount = (r: FrameRun): number => r.count;
const leafVpn = (l: Leaf): number => l.vpn;
const leafPages = (l: Leaf): number => PAGES[l.size];

/** Scope ranges sorted and merged, so a leaf spanning two of them is visited once. */
function mergeScope(scope: readonly CheckScope[]): CheckScope[] {
  const out: { vpn: number; pages: number }[] = [];
  for (const r of [...scope].sort((a, b) => a.vpn - b.vpn)) {
    const last = out[out.length - 1];
    if (last !== undefined && r.vpn <= last.vpn + last.pages) last.pages = Math.max(last.pages, r.vpn + r.pages - last.vpn);
    else out.push({ vpn: r.vpn, pages: r.pages });
  }
  return out;
}

/** Calls `f` on each leaf of `leaves` (sorted by vpn) inside the merged scope, or on all without one. */
function forEachLeaf(leaves: readonly Leaf[], scope: readonly CheckScope[] | undefined, f: (l: Leaf) => boolean | void): void {
  if (scope === undefined) {
    for (const l of leaves) if (f(l) === false) return;
    return;
  }
  let next = 0;
  for (const r of scope) {
    for (let i = Math.max(next, firstEndingAfter(leaves, r.vpn, leafVpn, leafPages)); i < leaves.length; i++) {
      const l = leaves[i]!;
      if (l.vpn >= r.vpn + r.pages) break;
      next = i + 1;
      if (f(l) === false) return;
    }
  }
}

/** Whether [vpn, vpn+pages) meets the merged scope (everything meets no scope). */
function inScope(scope: readonly CheckScope[] | undefined, vpn: number, pages: number): boolean {
  if (scope === undefined) return true;
  const r = scope[firstEndingAfter(scope, vpn, (s) => s.vpn, (s) => s.pages)];
  return r !== undefined && r.vpn < vpn + pages;
}

type LeafRule = Exclude<PolicyRule, 'cross-alias-wx'>;
type Buckets = Record<PolicyRule, PolicyViolation[]>;

/**
 * One sweep over the mappings for the per-leaf rules in `wanted`, each rule's bucket
 * capped at `limit`; stops once the first wanted rule (in rule order) is full, since
 * nothing after it would be reported.
 */
function scanLeaves(state: PolicyState, limit: number, wanted: ReadonlySet<PolicyRule>, scope: readonly CheckScope[] | undefined, out: Buckets): void {
  const special = specialRuns(state.frames);
  // Most leaves map plain data far from every special run: one comparison skips them.
  const specialLo = special[0]?.pfn ?? 0;
  const specialHi = special.length === 0 ? 0 : special[special.length - 1]!.pfn + special[special.length - 1]!.count;
  const kernelHalf = upperHalfStart(state.config.levels);
  const first = POLICY_RULES.find((r) => wanted.has(r) && r !== 'cross-alias-wx');
  const full = (): boolean => first !== undefined && out[first].length >= limit;
  for (const r of state.roots) {
    // Violations are rare: the witness (and its text) is built only when one is found.
    const add = (rule: LeafRule, leaf: Leaf, pfn: Pfn, count: number, reason: (at: string, what: string) => string): void => {
      if (!wanted.has(rule) || out[rule].length >= limit) return;
      const mapping: Mapping = { root: r.id, leaf };
      out[rule].push({ rule, mapping, pfn, count, reason: reason(where(mapping), frames(pfn, count)) });
    };
    forEachLeaf(r.leaves, scope, (leaf) => {
      if (full()) return false;
      const { prot } = leaf;
      const pages = PAGES[leaf.size];
      const inKernelHalf = leaf.vpn >= kernelHalf;
      if (prot.write && isExec(leaf)) add('wx', leaf, leaf.pfn, pages, (at) => `${at} is writable and executable`);
      if (prot.user && inKernelHalf) add('user-kernel-half', leaf, leaf.pfn, pages, (at) => `${at} is in the kernel half with user access`);
      const end = leaf.pfn + pages;
      if (end <= specialLo || leaf.pfn >= specialHi) return true;
      for (let i = firstEndingAfter(special, leaf.pfn, runPfn, runCount); i < special.length; i++) {
        const run = special[i]!;
        if (run.pfn >= end) break;
        const lo = Math.max(run.pfn, leaf.pfn);
        const count = Math.min(run.pfn + run.count, end) - lo;
        if (prot.write && STATIC_USES.has(run.use)) {
          add('static', leaf, lo, count, (at, what) => `${run.use} ${what} writable through ${at}`);
        } else if (run.use === 'kernel-text' && !prot.execKernel && leaf.vpn - leaf.pfn === X86_64_LAYOUT_4LEVEL.kernelText) {
          add('static', leaf, lo, count, (at, what) => `kernel text ${what} is not executable in the kernel image at ${at}`);
        }
        if (run.use === 'pagetable' && leaf.vpn - leaf.pfn !== X86_64_LAYOUT_4LEVEL.pageOffset) {
          add('pagetable', leaf, lo, count, (at, what) => `page-table ${what} mapped outside the direct map at ${at}`);
        }
        if (run.noDirectMap && inKernelHalf) {
          add('no-direct-map', leaf, lo, count, (at, what) => `${what} removed from the direct map but mapped at ${at}`);
        }
      }
      return true;
    });
    if (full()) return;
  }
}

interface Interval {
  readonly lo: Pfn;
  readonly hi: Pfn;
  readonly m: Mapping;
  readonly scoped: boolean;
}

/**
 * (b) for every writable mapping, the executable mappings of overlapping frames. The
 * executable leaves are few (kernel text, modules, BPF), so they are sorted by first
 * frame with a running maximum of their ends, and each writable leaf looks back from
 * its end by binary search until no earlier executable interval can reach it. With a
 * scope, a pair counts when either side is in it: the writable side is swept only inside
 * the scope unless some executable leaf in the scope needs every writable alias.
 */
function scanCrossAlias(state: PolicyState, limit: number, scope: readonly CheckScope[] | undefined, out: PolicyViolation[]): void {
  const xs: Interval[] = [];
  for (const r of state.roots) {
    for (const leaf of r.leaves) {
      if (isExec(leaf)) xs.push({ lo: leaf.pfn, hi: leaf.pfn + PAGES[leaf.size], m: { root: r.id, leaf }, scoped: inScope(scope, leaf.vpn, PAGES[leaf.size]) });
    }
  }
  if (xs.length === 0) return;
  xs.sort((a, b) => a.lo - b.lo);
  const reach: number[] = [];
  for (const x of xs) reach.push(Math.max(reach[reach.length - 1] ?? 0, x.hi));
  const maxHi = reach[reach.length - 1]!;
  const wScope = xs.some((x) => x.scoped) ? undefined : scope;
  for (const r of state.roots) {
    forEachLeaf(r.leaves, wScope, (leaf) => {
      if (!leaf.prot.write) return true;
      const lo = leaf.pfn;
      const hi = lo + PAGES[leaf.size];
      if (hi <= xs[0]!.lo || lo >= maxHi) return true;
      const wScoped = inScope(scope, leaf.vpn, PAGES[leaf.size]);
      // xs[0..a) start before hi.
      let a = 0;
      let b = xs.length;
      while (a < b) {
        const mid = (a + b) >> 1;
        if (xs[mid]!.lo < hi) a = mid + 1;
        else b = mid;
      }
      const hits: Interval[] = [];
      for (let j = a - 1; j >= 0 && reach[j]! > lo; j--) {
        const x = xs[j]!;
        if (x.hi > lo && (wScoped || x.scoped) && !(x.m.root === r.id && x.m.leaf === leaf)) hits.push(x);
      }
      const wm: Mapping = { root: r.id, leaf };
      for (const x of hits.reverse()) {
        const pfn = Math.max(lo, x.lo);
        const count = Math.min(hi, x.hi) - pfn;
        out.push({
          rule: 'cross-alias-wx', mapping: wm, other: x.m, pfn, count,
          reason: `${frames(pfn, count)} writable through ${where(wm)} and executable through ${where(x.m)}`,
        });
        if (out.length >= limit) return false;
      }
      return true;
    });
    if (out.length >= limit) return;
  }
}

const emptyBuckets = (): Buckets => ({ wx: [], 'cross-alias-wx': [], static: [], pagetable: [], 'user-kernel-half': [], 'no-direct-map': [] });

/** Violations of the rules in `wanted`, rule by rule in the order (a)..(f), at most `limit` in all. */
function violations(state: PolicyState, limit: number, wanted: ReadonlySet<PolicyRule>, scope?: readonly CheckScope[]): PolicyViolation[] {
  const merged = scope === undefined ? undefined : mergeScope(scope);
  const b = emptyBuckets();
  scanLeaves(state, limit, wanted, merged, b);
  // (b) comes second: skip its sweep when (a) already fills the answer.
  if (wanted.has('cross-alias-wx') && b.wx.length < limit) scanCrossAlias(state, limit - b.wx.length, merged, b['cross-alias-wx']);
  return POLICY_RULES.flatMap((r) => b[r]).slice(0, limit);
}

const ALL: ReadonlySet<PolicyRule> = new Set(POLICY_RULES);

/** The check of one rule: its violations (within `scope` if given), at most `limit`. */
export type RuleCheck = (state: PolicyState, limit?: number, scope?: readonly CheckScope[]) => PolicyViolation[];

const ruleCheck = (rule: PolicyRule): RuleCheck => {
  const wanted: ReadonlySet<PolicyRule> = new Set([rule]);
  return (state, limit = Infinity, scope) => violations(state, limit, wanted, scope);
};

/** (a) CONFIG_DEBUG_WX: no leaf writable and executable. */
export const wxViolations = ruleCheck('wx');
/** (b) cross-alias W^X: no frame writable through one mapping and executable through another. */
export const crossAliasWxViolations = ruleCheck('cross-alias-wx');
/** (c) rodata and text never writable; the kernel-image page of a text frame never NX. */
export const staticProtectionViolations = ruleCheck('static');
/** (d) a page-table frame is mapped only at its own direct-map page. */
export const pagetableMappingViolations = ruleCheck('pagetable');
/** (e) no user-accessible leaf in the kernel half. */
export const userKernelHalfViolations = ruleCheck('user-kernel-half');
/** (f) a frame removed from the direct map is mapped nowhere in the kernel half. */
export const noDirectMapViolations = ruleCheck('no-direct-map');

/** Every violation, rule by rule in the order (a)..(f), at most `limit` in all. */
export function policyViolations(state: PolicyState, limit = Infinity, scope?: readonly CheckScope[]): PolicyViolation[] {
  return violations(state, limit, ALL, scope);
}

/** The first violation in rule order (a)..(f), or null: what decides EPERM. */
export function firstPolicyViolation(state: PolicyState, scope?: readonly CheckScope[]): PolicyViolation | null {
  return violations(state, 1, ALL, scope)[0] ?? null;
}
