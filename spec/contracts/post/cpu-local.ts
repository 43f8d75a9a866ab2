/**
 * The postconditions of the CPU-local mappings (spec/contracts/clients.ts): kmapLocal and
 * kunmapLocal (kmap_local: strict's fixmap slots; linux's page_address, which maps
 * nothing), mermapGet and mermapPut (the mermap, the same in both profiles).
 *
 * The relation is not told the profile. kmap_local refuses differently in the two, so
 * its refusals are given per reading (relation.ts StateRefusal) and its value says which
 * one a success followed: linux returns the frame's direct-map page, strict a slot. A
 * slot in use anywhere shows the strict profile (linux maps none on x86-64): then only
 * strict's reading holds.
 */
import { PTRS_PER_TABLE, VPN_LIMIT, vpnToHex, type Vpn } from '../../address.ts';
import { KM_MAX_IDX, MERMAP_ALLOCS, MERMAP_USABLE_PAGES, kmapSlotVpn, mermapSlice, type ClientState, type KmapSlot, type MermapAlloc, type MermapCpu } from '../../clients.ts';
import { PAGE_KERNEL, type AbstractState } from '../../state.ts';
import { validateCpuPage, validateKmapLocal, validateMermapGet } from '../clients.ts';
import { directMapVpn } from '../directmap.ts';
import { breach } from './clause.ts';
import { byVpn, clientsOf, fourK, inserted } from './clients.ts';
import { nothingBut, rootEntries, type Effect } from './effect.ts';
import { firstMapped, windowsOf } from './leaves.ts';
import { RangeSet, type Range } from './ranges.ts';
import { contractClauses, needsClients, type Contract, type Refusal, type StateRefusal } from './relation.ts';
import { removal } from './unmap.ts';

// ---- kmap_local ----

const slotsOf = (s: AbstractState, cpu: number): KmapSlot[] => clientsOf(s).kmap.filter((k) => k.cpu === cpu);
/** Whether the state shows the strict profile: a kmap_local slot in use (linux maps none on x86-64). */
const strictShown = (s: AbstractState): boolean => clientsOf(s).kmap.length > 0;
const slotOrder = (a: KmapSlot, b: KmapSlot): number => a.cpu - b.cpu || a.idx - b.idx;
const withKmap = (cs: ClientState, kmap: readonly KmapSlot[]): ClientState => ({ ...cs, kmap });

const kmapSay = contractClauses('kmapLocal', {
  ebusy: 'strict: EBUSY cpu the CPU holds KM_MAX_IDX slots (the kernel BUG_ONs)',
  eexist: 'strict: EEXIST vpn the next slot already has an entry',
  value: "linux returns the frame's direct-map page (page_address: x86-64 has no CONFIG_HIGHMEM); strict returns vpn = kmapSlotVpn(cpu, idx), idx the CPU's slots in use",
  leaves: 'linux: nothing changes; strict: vpn is mapped to pfn with PAGE_KERNEL, one 4K leaf',
  frames: 'kmapLocal: frames are unchanged',
  tlb: 'no flush: TLBs and paging-structure caches are unchanged',
  obligations: 'no flush: obligations are unchanged',
  tables: "strict: the footprint of the slot's leaf; ENOMEM tablePool",
  clients: 'strict: the slot {cpu, idx, vpn, pfn} is pushed on the CPU\'s stack; linux: nothing changes',
});

const kunmapSay = contractClauses('kunmapLocal', {
  enoent: 'strict: ENOENT vpn vpn is not a slot the CPU holds',
  top: 'strict: EINVAL vpn it is, but not the top one (the kernel WARNs and clears the top slot instead; strict refuses)',
  leaves: "linux: nothing (x86-64's __kunmap_local does nothing); strict: the slot's leaf is removed",
  frames: 'kunmapLocal: frames are unchanged',
  tlb: 'flush_tlb_one_kernel on that CPU only: its TLB entries at vpn and its paging-structure caches go, every other CPU\'s stay',
  obligations: 'obligations stay (the other CPUs are not flushed); when a PTE table empties, a flush of the slot is owed for it',
  tables: 'an emptied PTE table waits for a flush of every CPU (pending)',
  clients: 'the slot is popped',
});

/**
 * Whether clearing `range` (4K leaves of kmap_local or the mermap) empties a PTE table:
 * some 2M block it meets holds no entry of init_mm outside it. Strict frees such a table
 * only after a flush of every CPU, whose paging-structure caches may hold it (the slots
 * of every CPU share it), so the clear owes that flush over the range: a pending table's
 * span always holds an owed page, or repeated kmap/kunmap cycles would pile up pending
 * tables nothing ever releases.
 */
function emptiesATable(before: AbstractState, range: Range): boolean {
  const e = rootEntries(before);
  const end = range.vpn + range.pages;
  for (let block = range.vpn - (range.vpn % PTRS_PER_TABLE); block < end; block += PTRS_PER_TABLE) {
    const below = { vpn: block, pages: Math.max(0, range.vpn - block) };
    const from = Math.max(block, end);
    const above = { vpn: from, pages: block + PTRS_PER_TABLE - from };
    const empty = (r: Range): boolean => r.pages <= 0 || firstMapped(e, r) === undefined;
    if (empty(below) && empty(above)) return true;
  }
  return false;
}

/** The clear's debt: a flush of the range when it empties a table (emptiesATable), else none. */
const clearDebt = (before: AbstractState, range: Range, reason: string): Partial<Effect> =>
  emptiesATable(before, range) ? { owe: { range, reason } } : {};

/** Strict's refusal of kmapLocal, in the contract's order. */
function kmapRefusal(before: AbstractState, c: { readonly cpu: number }): Refusal | null {
  const n = slotsOf(before, c.cpu).length;
  if (n >= KM_MAX_IDX) return { error: { errno: 'EBUSY', arg: 'cpu' }, clause: kmapSay.ebusy };
  if (firstMapped(rootEntries(before), { vpn: kmapSlotVpn(c.cpu, n), pages: 1 }) !== undefined) return { error: { errno: 'EEXIST', arg: 'vpn' }, clause: kmapSay.eexist };
  return null;
}

/** linux's reading of a kmapLocal that returned `value`: page_address, possible only while no slot is in use. */
const linuxKmap = (before: AbstractState, c: { readonly pfn: number }, value: unknown): boolean =>
  !strictShown(before) && value === directMapVpn(before.config.levels, c.pfn);

/** The reading's refusals: strict's alone when the state shows it, else strict's or linux's (none). */
const perReading = (before: AbstractState, strict: Refusal | null): StateRefusal =>
  strict === null || strictShown(before) ? strict : [strict, null];

export const KMAP_LOCAL: Contract<'kmapLocal'> = {
  source: 'spec/contracts/clients.ts',
  capability: needsClients('kmapLocal'),
  say: kmapSay,
  args: (config, c) => validateKmapLocal(config, c.cpu, c.pfn),
  state: (before, c) => perReading(before, kmapRefusal(before, c)),
  scope: (before, c) => [{ vpn: kmapSlotVpn(c.cpu, Math.min(slotsOf(before, c.cpu).length, KM_MAX_IDX - 1)), pages: 1 }],
  // value: the direct-map page (linux), or the next slot, which strict maps only where it would not refuse.
  value: (before, c, value) => {
    if (linuxKmap(before, c, value)) return [];
    const slot = kmapSlotVpn(c.cpu, slotsOf(before, c.cpu).length);
    const linux = strictShown(before) ? '' : `${vpnToHex(directMapVpn(before.config.levels, c.pfn))} (linux) or `;
    if (value !== slot) return [breach(kmapSay.value, `expected ${linux}${vpnToHex(slot)} (strict), found ${typeof value === 'number' ? vpnToHex(value) : String(value)}`)];
    const refused = kmapRefusal(before, c);
    return refused === null ? [] : [breach(refused.clause, `it returned the slot ${vpnToHex(slot)} as strict does, which refuses here (${refused.error.errno} naming ${refused.error.arg})`)];
  },
  // leaves, clients: linux nothing; strict one 4K PAGE_KERNEL leaf at the next slot, pushed. No flush.
  effect: (before, c, value) => {
    if (linuxKmap(before, c, value)) return nothingBut(RangeSet.EMPTY);
    const cs = clientsOf(before);
    const idx = slotsOf(before, c.cpu).length;
    const slot: Range = { vpn: kmapSlotVpn(c.cpu, idx), pages: 1 };
    return nothingBut(windowsOf(rootEntries(before), [slot]), {
      expect: fourK(slot, c.pfn, PAGE_KERNEL),
      clients: withKmap(cs, inserted(cs.kmap, { cpu: c.cpu, idx, vpn: slot.vpn, pfn: c.pfn }, slotOrder)),
    });
  },
};

/** The slot the CPU holds at vpn, if any, and whether it is the top of its stack. */
function heldAt(before: AbstractState, c: { readonly cpu: number; readonly vpn: Vpn }): { readonly slot?: KmapSlot; readonly top: boolean } {
  const slots = slotsOf(before, c.cpu);
  const slot = slots.find((k) => k.vpn === c.vpn);
  return slot === undefined ? { top: false } : { slot, top: slot.idx === slots.length - 1 };
}

export const KUNMAP_LOCAL: Contract<'kunmapLocal'> = {
  source: 'spec/contracts/clients.ts',
  capability: needsClients('kunmapLocal'),
  say: kunmapSay,
  args: (config, c) => validateCpuPage(config, c.cpu, c.vpn),
  state: (before, c) => {
    const { slot, top } = heldAt(before, c);
    const strict: Refusal | null = slot === undefined ? { error: { errno: 'ENOENT', arg: 'vpn' }, clause: kunmapSay.enoent } : !top ? { error: { errno: 'EINVAL', arg: 'vpn' }, clause: kunmapSay.top } : null;
    return perReading(before, strict);
  },
  scope: (_, c) => [{ vpn: c.vpn, pages: 1 }],
  // linux (no slot held): nothing. strict: the top slot's leaf removed, a local flush of
  // vpn on its CPU, the emptied tables pending, the slot popped.
  effect: (before, c) => {
    const { slot } = heldAt(before, c);
    if (slot === undefined) return nothingBut(RangeSet.EMPTY);
    const page = { vpn: c.vpn, pages: 1 };
    const cs = clientsOf(before);
    return removal(before, page, {
      flushed: RangeSet.EMPTY,
      flushedLocal: { cpu: c.cpu, range: page },
      emptiedStayPending: true,
      ...clearDebt(before, page, 'kunmapLocal'),
      clients: withKmap(cs, cs.kmap.filter((k) => k !== slot)),
    });
  },
};

// ---- the mermap (mermap_get, mermap_put) ----

/** The mermap allocations are 4K leaves of PAGE_KERNEL without global (arch_mermap_pgprot_allowed refuses a global one). */
const MERMAP_PROT = { ...PAGE_KERNEL, global: false };

const mermapOf = (s: AbstractState, cpu: number): MermapCpu => clientsOf(s).mermap.find((m) => m.cpu === cpu)!;
const withMermap = (cs: ClientState, m: MermapCpu): ClientState => ({ ...cs, mermap: cs.mermap.map((x) => (x.cpu === m.cpu ? m : x)) });

const getSay = contractClauses('mermapGet', {
  ebusy: 'EBUSY cpu the CPU holds MERMAP_ALLOCS allocations, or next + pages > end and the room from the end of the highest allocation in use (the slice start if none) is too small too',
  eexist: 'EEXIST vpn a page of the range has an entry',
  value: 'returns the first page: next, or that room\'s start when next + pages > end',
  leaves: '[vpn, vpn+pages) maps [pfn, pfn+pages) with 4K leaves of PAGE_KERNEL without global',
  frames: 'mermapGet: frames are unchanged',
  tlb: 'when next + pages > end, arch_mermap_flush_tlb: every TLB and paging-structure-cache entry of this CPU goes (no other CPU\'s); otherwise no flush',
  obligations: 'obligations stay (the local flush discharges none)',
  tables: 'the footprint of the new leaves (linux fills the tables it kept); ENOMEM tablePool',
  clients: 'the allocation is held; next = its end',
  stale: "the local full flush empties this CPU's stale list; otherwise it is unchanged",
});

const putSay = contractClauses('mermapPut', {
  enoent: 'ENOENT vpn the CPU holds no allocation starting there',
  leaves: "the allocation's leaves are removed",
  frames: 'mermapPut: frames are unchanged',
  tlb: 'no flush: the TLB of that CPU alone may still hold them',
  obligations: 'strict: when a table empties, a flush of the allocation is owed for it; otherwise no obligation is added',
  tables: 'the tables it empties are pending (linux keeps them linked)',
  clients: 'the allocation is no longer held',
  stale: "the allocation moves to the CPU's stale list",
});

/** Where mermap_get puts `pages` on the CPU, whether it reuses the slice first, and whether it fails (EBUSY cpu). */
function placement(before: AbstractState, c: { readonly cpu: number; readonly pages: number }): { readonly start: Vpn; readonly reuse: boolean; readonly busy: boolean } {
  const m = mermapOf(before, c.cpu);
  const slice = mermapSlice(before.config.levels, c.cpu);
  const end = slice + MERMAP_USABLE_PAGES;
  const reuse = m.next + c.pages > end;
  const start = reuse ? Math.max(slice, ...m.allocs.map((a) => a.vpn + a.pages)) : m.next;
  return { start, reuse, busy: m.allocs.length >= MERMAP_ALLOCS || start + c.pages > end };
}

export const MERMAP_GET: Contract<'mermapGet'> = {
  source: 'spec/contracts/clients.ts',
  capability: needsClients('mermapGet'),
  say: getSay,
  args: (config, c) => validateMermapGet(config, c.cpu, c.pfn, c.pages),
  state: (before, c) => {
    const { start, busy } = placement(before, c);
    if (busy) return { error: { errno: 'EBUSY', arg: 'cpu' }, clause: getSay.ebusy };
    return firstMapped(rootEntries(before), { vpn: start, pages: c.pages }) === undefined ? null : { error: { errno: 'EEXIST', arg: 'vpn' }, clause: getSay.eexist };
  },
  scope: (before, c) => [{ vpn: mermapSlice(before.config.levels, c.cpu), pages: MERMAP_USABLE_PAGES }],
  value: (before, c, value) => {
    const { start } = placement(before, c);
    return value === start ? [] : [breach(getSay.value, `expected ${vpnToHex(start)}, found ${typeof value === 'number' ? vpnToHex(value) : String(value)}`)];
  },
  // tlb, stale: the local full flush when the slice is reused; leaves: 4K non-global leaves; clients: held, next moved on.
  effect: (before, c) => {
    const { start, reuse } = placement(before, c);
    const range: Range = { vpn: start, pages: c.pages };
    const m = mermapOf(before, c.cpu);
    const alloc: MermapAlloc = { cpu: c.cpu, vpn: start, pages: c.pages, pfn: c.pfn };
    const strict = nothingBut(windowsOf(rootEntries(before), [range]), {
      expect: fourK(range, c.pfn, MERMAP_PROT),
      ...(reuse ? { flushedLocal: { cpu: c.cpu, range: { vpn: 0, pages: VPN_LIMIT } } } : {}),
      clients: withMermap(clientsOf(before), { ...m, next: start + c.pages, allocs: inserted(m.allocs, alloc, byVpn) }),
    });
    return keptTables(strict);
  },
};

/**
 * The strict effect, and linux's, which keeps the tables an unmap empties linked and
 * fills them again (spec/contracts/linux.ts, "Page tables"), so owes nothing for them.
 */
const keptTables = (strict: Effect): Effect[] => {
  const { owe: _tablesOwe, ...linux } = strict;
  return [strict, { ...linux, emptiedStayPending: false, emptiedMayStay: true }];
};

const heldAlloc = (before: AbstractState, c: { readonly cpu: number; readonly vpn: Vpn }): MermapAlloc | undefined => mermapOf(before, c.cpu).allocs.find((a) => a.vpn === c.vpn);

export const MERMAP_PUT: Contract<'mermapPut'> = {
  source: 'spec/contracts/clients.ts',
  capability: needsClients('mermapPut'),
  say: putSay,
  args: (config, c) => validateCpuPage(config, c.cpu, c.vpn),
  state: (before, c) => (heldAlloc(before, c) !== undefined ? null : { error: { errno: 'ENOENT', arg: 'vpn' }, clause: putSay.enoent }),
  scope: (before, c) => [heldAlloc(before, c) ?? { vpn: c.vpn, pages: 1 }],
  // leaves: removed; tlb, obligations: nothing; tables: the emptied ones pending; stale: the allocation moves there.
  effect: (before, c) => {
    const a = heldAlloc(before, c)!;
    const m = mermapOf(before, c.cpu);
    const clients = withMermap(clientsOf(before), { ...m, allocs: m.allocs.filter((x) => x !== a), stale: inserted(m.stale, a, byVpn) });
    return keptTables(removal(before, a, { flushed: RangeSet.EMPTY, emptiedStayPending: true, clients, ...clearDebt(before, a, 'mermapPut') }));
  },
};
