/**
 * vmalloc, vfree and vm_unmap_aliases (spec/contracts/clients.ts), composed from the
 * model's own operations on a draft (model/clients-host.ts): vmalloc allocates as
 * allocFrames and maps as map; vfree unmaps as unmap with {flush: false}, resets the
 * direct map as set_direct_map_*_noflush, frees as freeFrames, and purges the lazy list
 * with one range flush through the model's flush (the 33-page ceiling included).
 */
import { vpnSpan, type Pfn, type Vpn } from '../spec/address.ts';
import { lazyMaxPages, type VmallocArea } from '../spec/clients.ts';
import { directMapVpn, policyError, validateVfree, validateVmalloc, type MutatingOp } from '../spec/contracts/index.ts';
import { fail, OK, type Result } from '../spec/errors.ts';
import { directMapBase } from '../spec/invariants/terms.ts';
import { INIT_MM, PAGE_KERNEL, type AbstractState, type Leaf } from '../spec/state.ts';
import type { VmallocOptions } from '../spec/system.ts';
import { withLookupOf } from '../checker/common.ts';
import { err, steps, type ClientDraft, type ClientsHost } from './clients-host.ts';
import { areaMeeting, holdersOf, insertByVpn, lazyPages, liveAreaAt, purgeRange, retire, type Range } from './clients-state.ts';
import { pagesWithEntry, type Entries } from './entries.ts';
import { runsOfUse, setFrameUse, setNoDirectMap } from './frames.ts';
import { always, intersecting, leafEnd, removeInside, replace, splitAtEdges } from './leaves.ts';
import { firstPolicyBreak } from './policy.ts';
import { flushTlbRange } from './tlb.ts';

export function vmalloc(host: ClientsHost, vpn: Vpn, pfn: Pfn, pages: number, opts: VmallocOptions): Result<void> {
  const bad = validateVmalloc(host.config, vpn, pfn, pages, opts);
  if (bad) return err(bad);
  const now = host.current();
  const taken = areaMeeting(now.clients(), vpn, pages);
  if (taken !== undefined) return fail('EBUSY', 'vpn', `${vpnSpan(vpn, pages)} meets the vmalloc area ${vpnSpan(taken.vpn, taken.pages)}, live or waiting for the purge`);
  if (pagesWithEntry(now.entries(), vpn, pages) > 0) return fail('EEXIST', 'vpn', `part of ${vpnSpan(vpn, pages)} already has an entry`);
  const d = host.draft();
  const r = steps('vmalloc', () => d.sys.allocFrames(pfn, pages), () => d.sys.map(INIT_MM, vpn, pfn, pages, PAGE_KERNEL, { maxPage: opts.huge ? '2M' : '4K' }));
  if (!r.ok) return r;
  const area: VmallocArea = { vpn, pages, pfn, huge: opts.huge, resetPerms: opts.resetPerms };
  d.setClients({ ...d.clients(), vmalloc: insertByVpn(d.clients().vmalloc, area) });
  d.commit();
  return OK;
}

/** The invariants strict vfree judges before it changes anything, in STRICT_POLICY order. */
const FREE_RULES: ReadonlySet<string> = new Set(['D4', 'D6', 'D7', 'C1']);

/**
 * What strict vfree's refusal judges: the state before, as if the area's pages had no
 * entry and no TLB entry (its unmap and its flush) and its frames were free (restored
 * to the direct map with resetPerms), so that D4 and D7 see only the frames' other
 * mappings and caches, D6 a frame still removed, C1 a stale mermap allocation.
 */
function freedView(s: AbstractState, area: VmallocArea): AbstractState {
  const [root0, ...rest] = s.roots;
  // The entries meeting the area, cut there, put back in one copy of the list.
  const cut = (list: readonly Leaf[]): { list: Leaf[]; removed: Set<Leaf>; added: Leaf[] } => {
    const [lo, hi] = intersecting(list, area.vpn, area.pages);
    const met = list.slice(lo, hi);
    const left = removeInside(splitAtEdges(met, area.vpn, area.pages, always), area.vpn, area.pages);
    const before = new Set(met);
    const after = new Set(left);
    return { list: replace(list, lo, hi, left), removed: new Set(met.filter((l) => !after.has(l))), added: left.filter((l) => !before.has(l)) };
  };
  const leaves = cut(root0!.leaves);
  const nonPresent = cut(root0!.nonPresent ?? []).list;
  const freed = setFrameUse(s.frames, area.pfn, area.pages, 'free');
  const view = { ...root0!, leaves: leaves.list, ...(nonPresent.length > 0 ? { nonPresent } : {}) };
  return {
    ...s,
    roots: [withLookupOf(root0!, view, leaves.removed, leaves.added, directMapBase(s)), ...rest],
    frames: area.resetPerms ? setNoDirectMap(freed, area.pfn, area.pages, false) : freed,
    tlb: flushTlbRange(s.tlb, area.vpn, area.pages),
  };
}

export function vfree(host: ClientsHost, vpn: Vpn): Result<void> {
  const { config, profile } = host;
  const bad = validateVfree(config, vpn);
  if (bad) return err(bad);
  const now = host.current();
  const area = liveAreaAt(now.clients(), vpn);
  if (area === undefined) {
    if (profile === 'linux') now.print({ kind: 'vfree-nonexistent', vpn, pages: 1, pfn: 0 });
    return fail('ENOENT', 'vpn', `no live vmalloc area starts at ${vpnSpan(vpn, 1)}`);
  }
  if (profile === 'strict') {
    const dm = { vpn: directMapVpn(config.levels, area.pfn), pages: area.pages };
    const broken = firstPolicyBreak(freedView(now.state(), area), [dm, ...holdersOf(now.clients(), area.pfn, area.pages)], FREE_RULES);
    // vfree is an operation with a policyArg (vpn), as every mutating one in the table.
    if (broken !== null) return err(policyError('vfree' as MutatingOp, broken.id, broken.where));
  }
  const d = host.draft();
  /** The tables vm_reset_perms's purge releases, which still count against the pool (resetPerms). */
  const resetPurge = { released: 0 };
  // Judged above as a whole, on the state before (spec/contracts/clients.ts): its steps are not refused one by one.
  const r = d.unjudged(() => steps(
    'vfree',
    // vunmap_range_noflush (an area a client unmapped already has nothing left to clear).
    () => (pagesWithEntry(d.entries(), area.vpn, area.pages) > 0 ? d.sys.unmap(INIT_MM, area.vpn, area.pages, { flush: false }) : OK),
    () => {
      d.setClients(retire(d.clients(), area.vpn));
      return OK;
    },
    () => (area.resetPerms ? resetPerms(host, d, area, resetPurge) : OK),
    // What it rewrote is judged as any operation's result (the isolation rules included),
    // then the pool on what it produced (EPERM before ENOMEM, as for every operation; its
    // steps' own bounds are not judged one by one), before its own flush and the free.
    () => (profile === 'strict' ? judged(d, area) : OK),
    () => (profile === 'strict' ? poolBound(d, resetPurge.released) : OK),
    // Strict flushes the area before its pages go back, so no TLB still reaches them (C1);
    // linux leaves that to the purge.
    () => (!area.resetPerms && profile === 'strict' ? d.sys.flush(area.vpn, area.pages) : OK),
    () => freeFrames(d, area),
    // drain_vmap_work, which the kernel schedules and ptspec runs at once.
    () => (lazyPages(d.clients()) > lazyMaxPages(config.cpus) ? purge(d) : OK),
  ));
  if (!r.ok) return r;
  d.commit();
  return OK;
}

export function vmUnmapAliases(host: ClientsHost): Result<void> {
  return purge(host.current());
}

/**
 * __purge_vmap_area_lazy: one flush_tlb_kernel_range of [lowest start, highest end) of
 * the purge list and the `extra` ranges (vm_reset_perms's direct-map range), then the
 * list emptied. Nothing to flush, nothing done.
 */
function purge(d: ClientDraft, extra: readonly Range[] = []): Result<void> {
  const range = purgeRange(d.clients(), extra);
  if (range === undefined) return OK;
  const r = d.sys.flush(range.vpn, range.pages);
  d.setClients({ ...d.clients(), lazy: [] });
  return r;
}

/** The area's frames freed as freeFrames frees them: those still data (a client may have freed some already). */
/** Strict: the state after the unmap (and vm_reset_perms's rewrite of the direct map) against the policy, at the area and its frames' direct-map pages. */
function judged(d: ClientDraft, area: VmallocArea): Result<void> {
  const s = d.state();
  const dm = { vpn: directMapVpn(s.config.levels, area.pfn), pages: area.pages };
  const broken = firstPolicyBreak(s, area.resetPerms ? [{ vpn: area.vpn, pages: area.pages }, dm] : [{ vpn: area.vpn, pages: area.pages }]);
  return broken === null ? OK : err(policyError('vfree' as MutatingOp, broken.id, broken.where));
}

function freeFrames(d: ClientDraft, area: VmallocArea): Result<void> {
  for (const run of runsOfUse(d.state().frames, area.pfn, area.pages, 'data')) {
    const r = d.sys.freeFrames(run.pfn, run.count);
    if (!r.ok) return r;
  }
  return OK;
}

/**
 * vm_reset_perms: set_direct_map_invalid_noflush of the frames, the purge over the lazy
 * areas and the frames' direct-map range, set_direct_map_default_noflush of the frames.
 * Linux's set_area_direct_map returns nothing: what each step did stays, failed or not.
 */
function resetPerms(host: ClientsHost, d: ClientDraft, area: VmallocArea, purged: { released: number }): Result<void> {
  const dm = { vpn: directMapVpn(host.config.levels, area.pfn), pages: area.pages };
  if (host.profile === 'linux') {
    d.sys.setDirectMapInvalid(area.pfn, area.pages, { flush: false });
    const r = purge(d, [dm]);
    d.sys.setDirectMapDefault(area.pfn, area.pages, { flush: false });
    return r;
  }
  return steps(
    'vfree',
    () => invalidate(host, d, area.pfn, area.pages),
    () => {
      purged.released = d.state().pendingTableFrees;
      return purge(d, [dm]);
    },
    () => d.sys.setDirectMapDefault(area.pfn, area.pages, { flush: false }),
  );
}

/**
 * Strict vfree's pool bound, judged as for every operation before its own flush: the
 * tables vm_reset_perms's purge released (`released`) still count, as when
 * set_direct_map_default needed one.
 */
function poolBound(d: ClientDraft, released: number): Result<void> {
  const { tablesInUse, config } = d.state();
  return tablesInUse + released <= config.tablePool.count ? OK
    : fail('ENOMEM', 'tablePool', `vfree needs ${tablesInUse + released} page tables before its flushes release ${released}; the pool has ${config.tablePool.count}`);
}

/** The direct-map pages of a frame range in runs by what holds them: a present leaf, a non-present entry, or nothing. */
function directMapRuns(e: Entries, vpn: Vpn, pages: number): { vpn: Vpn; pages: number; kind: 'leaf' | 'nonpresent' }[] {
  const pick = (list: readonly Leaf[], kind: 'leaf' | 'nonpresent') => {
    const [lo, hi] = intersecting(list, vpn, pages);
    return list.slice(lo, hi).map((l) => {
      const from = Math.max(l.vpn, vpn);
      return { vpn: from, pages: Math.min(leafEnd(l), vpn + pages) - from, kind };
    });
  };
  const out: { vpn: Vpn; pages: number; kind: 'leaf' | 'nonpresent' }[] = [];
  for (const r of [...pick(e.leaves, 'leaf'), ...pick(e.nonPresent, 'nonpresent')].sort((a, b) => a.vpn - b.vpn)) {
    const last = out[out.length - 1];
    if (last !== undefined && last.kind === r.kind && last.vpn + last.pages === r.vpn) last.pages += r.pages;
    else out.push(r);
  }
  return out;
}

/**
 * Strict set_direct_map_invalid_noflush of frames whatever their direct-map pages hold,
 * so that set_direct_map_default_noflush can put every one back: a present page is
 * invalidated (setDirectMapInvalid), a non-present entry (set_memory_np) cleared as
 * unmap with {flush: false} clears it, a page with no entry is invalid already.
 */
function invalidate(host: ClientsHost, d: ClientDraft, pfn: Pfn, count: number): Result<void> {
  const base = directMapVpn(host.config.levels, pfn) - pfn;
  for (const run of directMapRuns(d.entries(), base + pfn, count)) {
    const r = run.kind === 'leaf' ? d.sys.setDirectMapInvalid(run.vpn - base, run.pages, { flush: false }) : d.sys.unmap(INIT_MM, run.vpn, run.pages, { flush: false });
    if (!r.ok) return r;
  }
  return OK;
}
