/**
 * The clients' bookkeeping (spec/clients.ts ClientState) as the model keeps it: always in
 * canonical order, never mutated (each change builds the next value), so a refused
 * operation drops its candidate and abstract() hands the value out as it is. Pure
 * functions only; what the operations do with them is model/clients.ts.
 */
import type { PagingLevels, Pfn, Vpn } from '../spec/address.ts';
import { MERMAP_USABLE_PAGES, mermapSlice, pageblockOf, type ClientState, type KmapSlot, type LazyArea, type MermapAlloc, type MermapCpu } from '../spec/clients.ts';
import { PAGEBLOCK_PAGES } from '../spec/contracts/isolation.ts';

export interface Range {
  readonly vpn: Vpn;
  readonly pages: number;
}

const meets = (a: Range, vpn: Vpn, pages: number): boolean => a.vpn < vpn + pages && vpn < a.vpn + a.pages;

/** `list` with `item` put in its place by vpn (the lists are sorted by vpn). */
export function insertByVpn<T extends Range>(list: readonly T[], item: T): T[] {
  const at = list.findIndex((x) => x.vpn > item.vpn);
  return at < 0 ? [...list, item] : [...list.slice(0, at), item, ...list.slice(at)];
}

/** The live area that starts at vpn, if any (vfree names an area by its first page). */
export const liveAreaAt = (s: ClientState, vpn: Vpn) => s.vmalloc.find((a) => a.vpn === vpn);

/** A live or lazily freed area meeting [vpn, vpn+pages): the vmap allocator hands out neither. */
export function areaMeeting(s: ClientState, vpn: Vpn, pages: number): Range | undefined {
  return s.vmalloc.find((a) => meets(a, vpn, pages)) ?? s.lazy.find((a) => meets(a, vpn, pages));
}

/** The area at vpn moved from the live list to the purge list (free_vmap_area_noflush); its frames go with vfree, not the purge. */
export function retire(s: ClientState, vpn: Vpn): ClientState {
  const area = liveAreaAt(s, vpn)!;
  const lazy: LazyArea = { vpn: area.vpn, pages: area.pages, pfn: area.pfn };
  return { ...s, vmalloc: s.vmalloc.filter((a) => a !== area), lazy: insertByVpn(s.lazy, lazy) };
}

/** The pages on the purge list (vmap_lazy_nr). */
export const lazyPages = (s: ClientState): number => s.lazy.reduce((n, a) => n + a.pages, 0);

/** __purge_vmap_area_lazy's one range: [lowest start, highest end) of the purge list and `extra`, or undefined when there is nothing to flush. */
export function purgeRange(s: ClientState, extra: readonly Range[] = []): Range | undefined {
  const all = [...s.lazy, ...extra];
  if (s.lazy.length === 0 && extra.length === 0) return undefined;
  const lo = Math.min(...all.map((a) => a.vpn));
  const hi = Math.max(...all.map((a) => a.vpn + a.pages));
  return { vpn: lo, pages: hi - lo };
}

/**
 * The VA ranges of the stale mermap allocations and the lazily freed areas that hold
 * frames of [pfn, pfn+count): where C1 judges a free of those frames.
 */
export function holdersOf(s: ClientState, pfn: Pfn, count: number): Range[] {
  const holds = (a: { readonly pfn: Pfn; readonly pages: number }): boolean => a.pfn < pfn + count && pfn < a.pfn + a.pages;
  return [...s.mermap.flatMap((m) => m.stale), ...s.lazy].filter(holds).map((a) => ({ vpn: a.vpn, pages: a.pages }));
}

// ---- kmap_local ----

/** The slots `cpu` holds, idx 0 first (the list is sorted by cpu, then idx). */
export const kmapSlotsOf = (s: ClientState, cpu: number): KmapSlot[] => s.kmap.filter((k) => k.cpu === cpu);

/** The list with `slot` pushed (it is its CPU's next idx, so it sorts right after the CPU's others). */
export function pushSlot(s: ClientState, slot: KmapSlot): ClientState {
  const at = s.kmap.findIndex((k) => k.cpu > slot.cpu);
  const kmap = at < 0 ? [...s.kmap, slot] : [...s.kmap.slice(0, at), slot, ...s.kmap.slice(at)];
  return { ...s, kmap };
}

export const popSlot = (s: ClientState, slot: KmapSlot): ClientState => ({ ...s, kmap: s.kmap.filter((k) => k !== slot) });

// ---- the mermap ----

export const mermapOf = (s: ClientState, cpu: number): MermapCpu => s.mermap[cpu]!;

/** The state with CPU `cpu`'s mermap replaced. */
export function withMermap(s: ClientState, m: MermapCpu): ClientState {
  return { ...s, mermap: s.mermap.map((x) => (x.cpu === m.cpu ? m : x)) };
}

/**
 * Where mermap_get puts `pages` pages on this CPU: at `next` when they fit below the
 * slice's usable end; else, after a local full flush, from the end of the highest
 * allocation in use (the slice start if none), when they fit there; else nowhere.
 */
export function mermapPlace(levels: PagingLevels, m: MermapCpu, pages: number): { readonly vpn: Vpn; readonly reuse: boolean } | undefined {
  const start = mermapSlice(levels, m.cpu);
  const end = start + MERMAP_USABLE_PAGES;
  if (m.next + pages <= end) return { vpn: m.next, reuse: false };
  const room = m.allocs.reduce((hi, a) => Math.max(hi, a.vpn + a.pages), start);
  return room + pages <= end ? { vpn: room, reuse: true } : undefined;
}

/**
 * The state after a flush on `cpu` (every CPU when undefined) of `range` (everything
 * when undefined): the stale mermap allocations it covers whole are no longer stale (one
 * it covers in part may still be cached at its other pages). The same value when nothing
 * changes, so the common flush costs no copy.
 */
export function dropStale(s: ClientState, cpu?: number, range?: Range): ClientState {
  const covered = (a: MermapAlloc): boolean => range === undefined || (range.vpn <= a.vpn && a.vpn + a.pages <= range.vpn + range.pages);
  const hit = (m: MermapCpu, a: MermapAlloc): boolean => (cpu === undefined || m.cpu === cpu) && covered(a);
  if (!s.mermap.some((m) => m.stale.some((a) => hit(m, a)))) return s;
  return { ...s, mermap: s.mermap.map((m) => (m.stale.some((a) => hit(m, a)) ? { ...m, stale: m.stale.filter((a) => !hit(m, a)) } : m)) };
}

// ---- the __GFP_UNMAPPED pool ----

/** The pageblocks (first frames) that [pfn, pfn+count) meets, in order. */
export function pageblocksMeeting(pfn: Pfn, count: number): Pfn[] {
  const out: Pfn[] = [];
  for (let b = pageblockOf(pfn); b < pfn + count; b += PAGEBLOCK_PAGES) out.push(b);
  return out;
}

export const isUnmapped = (s: ClientState, block: Pfn): boolean => s.unmapped.includes(block);

/** The unmapped list with `blocks` flagged (on) or cleared (off), sorted. */
export function withUnmapped(s: ClientState, blocks: readonly Pfn[], on: boolean): ClientState {
  const set = new Set(s.unmapped);
  for (const b of blocks) {
    if (on) set.add(b);
    else set.delete(b);
  }
  return { ...s, unmapped: [...set].sort((a, b) => a - b) };
}

/** Adjacent pageblocks as frame runs (one set_direct_map call each). */
export function blockRuns(blocks: readonly Pfn[], frames: number): { pfn: Pfn; count: number }[] {
  const out: { pfn: Pfn; count: number }[] = [];
  for (const b of blocks) {
    const count = Math.min(PAGEBLOCK_PAGES, frames - b);
    const last = out[out.length - 1];
    if (last !== undefined && last.pfn + last.count === b) last.count += count;
    else out.push({ pfn: b, count });
  }
  return out;
}
