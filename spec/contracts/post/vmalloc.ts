/**
 * The postconditions of vmalloc, vfree and vmUnmapAliases (spec/contracts/clients.ts),
 * clause by clause. Where strict and linux differ (vunmap's split rule against clearing
 * whole, strict's flush before the pages go back, the CPA walk of vm_reset_perms' direct-
 * map steps, linux keeping emptied tables) both effects are given.
 *
 * Left to refinement under linux: vmap_try_huge_pmd over a table linux kept frees it
 * after a flush of the leaf's first page (spec/contracts/linux.ts), which the abstract
 * state cannot place (which tables are kept it does not say), as for map; and a
 * vm_reset_perms split that fails (ENOMEM), which vfree ignores.
 */
import { type Vpn } from '../../address.ts';
import { lazyMaxPages, type LazyArea } from '../../clients.ts';
import { PAGE_KERNEL, type AbstractState } from '../../state.ts';
import { validateVfree, validateVmalloc } from '../clients.ts';
import { LINUX_INVALID, byVpn, clearedWhole, clientsOf, directMapOf, dmDefault, hull, inserted, piecewise } from './clients.ts';
import { nothingBut, rangeFlush, rootEntries, type Effect, type FrameChange } from './effect.ts';
import { changedAt, firstMapped, removedAt, unchangedAt, windowsOf } from './leaves.ts';
import { placedFrom } from './map.ts';
import { allocRefused, takeBack } from './pool.ts';
import { RangeSet, rangeEnd, type Range } from './ranges.ts';
import { contractClauses, needsClients, type Contract } from './relation.ts';

const meets = (a: Range, b: Range): boolean => a.vpn < rangeEnd(b) && b.vpn < rangeEnd(a);

// ---- the purge (__purge_vmap_area_lazy) ----

/**
 * The purge of `list` (with vm_reset_perms' direct-map range as `extra`): when the list is
 * not empty, one flush_tlb_kernel_range of [lowest start, highest end) of them all; the
 * list is emptied (its frames went back at vfree).
 */
function purge(list: readonly LazyArea[], extra: readonly Range[] = []): { readonly flushed: readonly Range[] } {
  return { flushed: list.length === 0 ? [] : [hull([...list, ...extra])] };
}

const purgeSay = contractClauses('vmUnmapAliases', {
  leaves: 'vmUnmapAliases: no entry changes',
  frames: 'vmUnmapAliases: frames are unchanged (a lazy area\'s went back at its vfree)',
  tlb: 'when the purge list is not empty, one flush_tlb_kernel_range of [lowest start, highest end) of its areas (more than 33 pages: flush_tlb_all)',
  obligations: 'that flush discharges the obligations it covers',
  tables: 'that flush releases the pending tables it meets',
  clients: 'the purge list is emptied',
});

export const VM_UNMAP_ALIASES: Contract<'vmUnmapAliases'> = {
  source: 'spec/contracts/clients.ts',
  capability: needsClients('vmUnmapAliases'),
  say: purgeSay,
  args: () => null,
  state: () => null,
  scope: () => [],
  // tlb, obligations, tables: the purge's flush; clients: the list emptied.
  effect: (before) => {
    const cs = clientsOf(before);
    const p = purge(cs.lazy);
    return nothingBut(RangeSet.EMPTY, { flushed: rangeFlush(p.flushed), clients: { ...cs, lazy: [] } });
  },
};

// ---- vmalloc (__vmalloc_node_range) ----

const vmallocSay = contractClauses('vmalloc', {
  ebusyVpn: 'EBUSY vpn the range meets a live or a lazily freed vmalloc area (the vmap allocator hands out neither until the purge)',
  eexist: 'EEXIST vpn a page of the range has an entry in init_mm (a plain map there)',
  ebusyPfn: 'EBUSY pfn a frame could not be allocated as allocFrames would refuse it',
  leaves:
    "the range is mapped as map(0, vpn, pfn, pages, PAGE_KERNEL, {maxPage: huge ? '2M' : '4K'}) maps it; a free pageblock of the unmapped pool the frames meet is taken back whole (set_direct_map_default_noflush of its frames)",
  frames: 'the frames are allocated as allocFrames does: they become data, and the pageblocks taken back lose noDirectMap',
  tlb: "no flush of its own: map's (strict: the obligations meeting the range, flushed whole; linux: none, but a CPA split of a pageblock taken back flushes every TLB)",
  obligations: "map's flush discharges what it covers; a pageblock taken back owes its direct-map range (set_direct_map_default_noflush)",
  tables: 'the footprint of the new leaves (linux reuses the tables it kept); ENOMEM tablePool',
  clients: 'the area is live, as {vpn, pages, pfn, huge, resetPerms}; the pageblocks taken back are no longer unmapped',
});

export const VMALLOC: Contract<'vmalloc'> = {
  source: 'spec/contracts/clients.ts (linux: a huge leaf over a table it kept frees it after a one-page flush, as map does: prose only)',
  capability: needsClients('vmalloc'),
  say: vmallocSay,
  args: (config, c) => validateVmalloc(config, c.vpn, c.pfn, c.pages, { huge: c.huge, resetPerms: c.resetPerms }),
  state: (before, c) => {
    const cs = clientsOf(before);
    if ([...cs.vmalloc, ...cs.lazy].some((a) => meets(a, c))) return { error: { errno: 'EBUSY', arg: 'vpn' }, clause: vmallocSay.ebusyVpn };
    if (firstMapped(rootEntries(before), c) !== undefined) return { error: { errno: 'EEXIST', arg: 'vpn' }, clause: vmallocSay.eexist };
    if (allocRefused(before, { pfn: c.pfn, count: c.pages })) return { error: { errno: 'EBUSY', arg: 'pfn' }, clause: vmallocSay.ebusyPfn };
    return null;
  },
  scope: (_, c) => [c],
  // leaves: map's placement of PAGE_KERNEL leaves (2M at most with huge), and each
  // pageblock taken back mapped again; frames: data; clients: the area live. Strict with
  // map's flush of owed ranges, linux without (but a split's).
  effect: (before, c) => {
    const cs = clientsOf(before);
    const entries = rootEntries(before);
    const range: Range = { vpn: c.vpn, pages: c.pages };
    const mapped = { range, expect: (p: Vpn) => placedFrom(before.config, c, c.huge ? '2M' : '4K', PAGE_KERNEL, p) };
    const area = { vpn: c.vpn, pages: c.pages, pfn: c.pfn, huge: c.huge, resetPerms: c.resetPerms };
    return [false, true].map((linux): Effect => {
      const back = takeBack(before, { pfn: c.pfn, count: c.pages }, linux);
      return {
        windows: windowsOf(entries, [range, ...back.ranges.ranges]),
        expect: piecewise([mapped], back.expect(unchangedAt(entries))),
        flushed: linux ? (back.splits ? 'all' : RangeSet.EMPTY) : rangeFlush(before.pendingFlush.filter((o) => meets(o, range))),
        frameUse: [{ pfn: c.pfn, count: c.pages, value: 'data' }],
        noDirectMap: back.noDirectMap,
        owe: back.owe,
        clients: { ...cs, vmalloc: inserted(cs.vmalloc, area, byVpn), unmapped: back.unmapped },
        ...(linux ? { emptiedMayStay: true } : {}),
      };
    });
  },
};

// ---- vfree ----

const vfreeSay = contractClauses('vfree', {
  enoent: 'ENOENT vpn no live area starts at vpn (linux prints vfree-nonexistent)',
  leaves:
    "vunmap_range_noflush of the area: every entry in it goes (strict: split at its edges; linux: an entry meeting it is cleared whole); resetPerms: the frames' direct-map pages set invalid then default (strict: 4K PAGE_KERNEL leaves; linux: present with RW, G lost)",
  frames: 'the frames are freed as freeFrames frees them (they become free); resetPerms restores their direct map (noDirectMap clear)',
  tlb: "strict flushes the area's range before the frames go back (no TLB entry of the area remains), linux does not; resetPerms: one flush of [lowest start, highest end) of the lazy areas and the direct-map range; the purge, when the list's pages exceed lazyMaxPages(cpus), one flush of [lowest start, highest end) of its areas",
  obligations: 'the area is owed a flush (reason unmap) until one of those meets it; resetPerms leaves its direct-map range owed (set_direct_map_default_noflush)',
  tables: "strict's emptied tables wait for that flush, linux keeps them; ENOMEM tablePool (strict): a split at the area's edge or in the direct map",
  clients: 'the area moves from live to the purge list, which the purge empties',
});

/** The live area at vpn (the contract's precondition holds). */
const areaAt = (s: AbstractState, vpn: Vpn) => clientsOf(s).vmalloc.find((a) => a.vpn === vpn);

export const VFREE: Contract<'vfree'> = {
  source: "spec/contracts/clients.ts (linux ignores the result of vm_reset_perms' direct-map steps: a split that fails keeps what it did, prose only)",
  capability: needsClients('vfree'),
  say: vfreeSay,
  args: (config, c) => validateVfree(config, c.vpn),
  state: (before, c) => (areaAt(before, c.vpn) !== undefined ? null : { error: { errno: 'ENOENT', arg: 'vpn' }, clause: vfreeSay.enoent }),
  scope: (before, c) => {
    const a = areaAt(before, c.vpn);
    return [a === undefined ? { vpn: c.vpn, pages: 1 } : a];
  },
  effect: (before, c) => {
    const cs = clientsOf(before);
    const area = areaAt(before, c.vpn)!;
    const range: Range = { vpn: area.vpn, pages: area.pages };
    const frames = { pfn: area.pfn, count: area.pages };
    const dm = directMapOf(before, frames);
    const entries = rootEntries(before);
    const lazy = inserted(cs.lazy, { vpn: area.vpn, pages: area.pages, pfn: area.pfn }, byVpn);
    const live = cs.vmalloc.filter((a) => a !== area);
    const freed: FrameChange = { ...frames, value: 'free' };
    const cleared = clearedWhole(entries, range);
    if (area.resetPerms) {
      // vm_reset_perms: invalid, the purge over the list and the direct map, default; the list
      // is empty after. The purge's range reaches from the direct map to the vmalloc area,
      // so it is a full flush, and a linux CPA split's flush_tlb_all adds nothing to it.
      const p = purge(lazy, [dm]);
      const dms = new RangeSet([dm]);
      const common = {
        windows: windowsOf(entries, [range, dm]),
        flushed: rangeFlush(p.flushed),
        owe: { range: dm, reason: 'setDirectMapDefault' },
        noDirectMap: { ...frames, value: false },
        frameUse: [freed],
        clients: { ...cs, vmalloc: live, lazy: [] },
      };
      const strict = nothingBut(common.windows, { ...common, expect: dmDefault(before, removedAt(entries, new RangeSet([range, dm])), dms, false) });
      const linux = nothingBut(common.windows, { ...common, expect: dmDefault(before, changedAt(cleared.expect, dms, LINUX_INVALID), dms, true), emptiedMayStay: true });
      return [strict, linux];
    }
    // The purge runs when the list's pages exceed lazy_max_pages (drain_vmap_work, at once here).
    const overflow = lazy.reduce((n, a) => n + a.pages, 0) > lazyMaxPages(before.config.cpus);
    const p = overflow ? purge(lazy) : purge([]);
    const clients = { ...cs, vmalloc: live, lazy: overflow ? [] : lazy };
    const frameUse = [freed];
    // strict: the split rule, and the area flushed before its frames are freed (with the purge's flush, merged).
    const strict = nothingBut(windowsOf(entries, [range]), { expect: removedAt(entries, new RangeSet([range])), flushed: rangeFlush([range, ...p.flushed]), frameUse, clients });
    // linux: cleared whole, kept tables, the area owed until the purge flushes it. An area a
    // plain unmap already emptied may be owed or not (vunmap_range_noflush clears nothing
    // there; unmap with {flush: false} would refuse): both are read.
    const linux = nothingBut(cleared.windows, { expect: cleared.expect, flushed: rangeFlush(p.flushed), emptiedMayStay: true, frameUse, clients });
    if (overflow) return [strict, linux];
    const owing = { ...linux, owe: { range, reason: 'unmap' } };
    return firstMapped(entries, range) !== undefined ? [strict, owing] : [strict, owing, linux];
  },
};
