/**
 * The postconditions of memory hotplug (spec/contracts/hotplug.ts): addMemory and
 * removeMemory, block by block, over the direct map and the vmemmap of the blocks.
 *
 * Linux's addMemory is prose only where the state cannot tell the relation what it does:
 * when it fails part-way (a block's direct map stays when its vmemmap fails), and where
 * it fills a PTE table it kept (a vunmap's) with 4K leaves instead of placing a 2M one (the
 * state counts kept tables but does not say where they are). Elsewhere its success is
 * strict's, in the tables it kept or in new ones.
 */
import { PAGES, type Pfn } from '../../address.ts';
import { MEMMAP_PAGES, MEMORY_BLOCK_PAGES, memoryBlocks, vmemmapVpn } from '../../clients.ts';
import { PAGE_KERNEL, type AbstractState, type Leaf, type SystemConfig } from '../../state.ts';
import { directMapVpn } from '../directmap.ts';
import { validateHotplug } from '../hotplug.ts';
import { PAGEBLOCK_PAGES } from '../isolation.ts';
import { clientsOf, directMapOf, fourK, piecewise } from './clients.ts';
import { rootEntries, type Effect } from './effect.ts';
import { firstMapped, leafEnd, removedAt, unchangedAt, windowsOf, type Entries, type Expectation } from './leaves.ts';
import { RangeSet, rangeEnd, type Range } from './ranges.ts';
import { contractClauses, needsClients, type Contract } from './relation.ts';

type Frames = { readonly pfn: Pfn; readonly count: number };

/** A block's direct-map range and the vmemmap pages of its struct pages. */
const directMapOfBlock = (s: AbstractState, b: Pfn): Range => directMapOf(s, { pfn: b, count: MEMORY_BLOCK_PAGES });
const memmapOf = (s: AbstractState, b: Pfn): Range => ({ vpn: vmemmapVpn(s.config.levels, b), pages: MEMMAP_PAGES });

/** Every range the command acts on: each block's direct map and memmap. */
function rangesOf(s: AbstractState, c: Frames): Range[] {
  const blocks = memoryBlocks(c.pfn, c.count);
  return [...blocks.map((b) => directMapOfBlock(s, b)), ...blocks.map((b) => memmapOf(s, b))];
}

/** Whether some frame of the range has a use `bad` accepts. */
function someFrame(s: AbstractState, r: Frames, bad: (use: string) => boolean): boolean {
  return s.frames.some((run) => run.pfn < r.pfn + r.count && r.pfn < run.pfn + run.count && bad(run.use));
}

// ---- addMemory ----

const addSay = contractClauses('addMemory', {
  eexist: "EEXIST pfn a frame of the range is not absent, or a page of a block's struct pages in the vmemmap already has an entry",
  leaves:
    "each block's direct map: every 2M slot whose pmd is none gets a 2M PAGE_KERNEL leaf (with PSE), every other page without an entry a 4K one, the entries there stay; its struct pages [vmemmapVpn(block), +MEMMAP_PAGES) mapped to its first MEMMAP_PAGES frames with PAGE_KERNEL, one 2M leaf where the pmd is none (with PSE), else 4K leaves",
  frames: "each block's memmap frames become data, its other frames free, every other fact kept",
  tlb: 'no flush: TLBs and paging-structure caches are unchanged',
  obligations: 'nothing owed: obligations are unchanged',
  tables: 'the footprint of the new leaves (linux reuses the tables it kept); ENOMEM tablePool',
  clients: 'the blocks are recorded (ClientState.memory, sorted)',
});

/**
 * init_memory_mapping's fill of the direct-map range `r` (a block's, 2M-aligned) over the
 * entries there: an entry stays; a page of a 2M slot no entry meets is in that slot's 2M
 * leaf (with PSE: its pmd is none, as it always is under strict); any other page without an
 * entry is a 4K leaf. Every leaf maps the frame its address says, PAGE_KERNEL.
 */
function directMapFill(s: AbstractState, entries: Entries, r: Range): Expectation {
  const old = unchangedAt(entries);
  const offset = directMapVpn(s.config.levels, 0);
  const slotPages = PAGES['2M'];
  return (p) => {
    const e = old(p);
    if (e.leaf !== undefined) return e;
    const slot = p - (p % slotPages);
    const slotRange = { vpn: slot, pages: slotPages };
    if (s.config.features.pse && firstMapped(entries, slotRange) === undefined) {
      const leaf: Leaf = { vpn: slot, pfn: slot - offset, size: '2M', prot: PAGE_KERNEL };
      return { leaf, until: rangeEnd(slotRange) };
    }
    const until = Math.min(e.until, s.config.features.pse ? rangeEnd(slotRange) : rangeEnd(r));
    return { leaf: { vpn: p, pfn: p - offset, size: '4K', prot: PAGE_KERNEL }, until };
  };
}

/** vmemmap_populate with the block's altmap: its struct pages on its first frames, one 2M leaf with PSE, else 4K leaves. */
function memmapLeaves(s: AbstractState, b: Pfn): Expectation {
  const r = memmapOf(s, b);
  if (!s.config.features.pse) return fourK(r, b, PAGE_KERNEL);
  const leaf: Leaf = { vpn: r.vpn, pfn: b, size: '2M', prot: PAGE_KERNEL };
  return () => ({ leaf, until: rangeEnd(r) });
}

/** What both relations share: the capability, the argument checks, the ranges a refusal is checked over. */
const onBlocks = (op: 'addMemory' | 'removeMemory') => ({
  capability: needsClients(op),
  args: (config: SystemConfig, c: Frames) => validateHotplug(config, c.pfn, c.count),
  scope: (before: AbstractState, c: Frames) => rangesOf(before, c),
});

export const ADD_MEMORY: Contract<'addMemory'> = {
  ...onBlocks('addMemory'),
  source: "spec/contracts/hotplug.ts (linux is not atomic: a block whose vmemmap fails keeps its direct map, and the blocks before it are removed again; that failure, and the 4K leaves it puts into a PTE table it kept, are prose only)",
  say: addSay,
  state: (before, c) => {
    const entries = rootEntries(before);
    const busy = someFrame(before, c, (use) => use !== 'absent') || memoryBlocks(c.pfn, c.count).some((b) => firstMapped(entries, memmapOf(before, b)) !== undefined);
    return busy ? { error: { errno: 'EEXIST', arg: 'pfn' }, clause: addSay.eexist } : null;
  },
  // leaves: each block's direct map filled and its memmap mapped; frames: memmap data, the
  // rest free; clients: the blocks recorded. The same for both profiles when it succeeds.
  effect: (before, c) => {
    const entries = rootEntries(before);
    const blocks = memoryBlocks(c.pfn, c.count);
    const parts = blocks.flatMap((b) => [
      { range: directMapOfBlock(before, b), expect: directMapFill(before, entries, directMapOfBlock(before, b)) },
      { range: memmapOf(before, b), expect: memmapLeaves(before, b) },
    ]);
    const cs = clientsOf(before);
    const strict: Effect = {
      windows: windowsOf(entries, rangesOf(before, c)),
      expect: piecewise(parts, unchangedAt(entries)),
      flushed: RangeSet.EMPTY,
      frameUse: blocks.flatMap((b) => [
        { pfn: b, count: MEMMAP_PAGES, value: 'data' as const },
        { pfn: b + MEMMAP_PAGES, count: MEMORY_BLOCK_PAGES - MEMMAP_PAGES, value: 'free' as const },
      ]),
      clients: { ...cs, memory: [...cs.memory, ...blocks].sort((x, y) => x - y) },
    };
    // Linux's new leaves may land in tables it kept.
    return [strict, { ...strict, emptiedMayStay: true }];
  },
};

// ---- removeMemory ----

const removeSay = contractClauses('removeMemory', {
  enoent: 'ENOENT pfn a block of the range is not one addMemory added',
  ebusy: 'EBUSY pfn a frame of a block past its memmap is not free, or a pageblock of the range belongs to the __GFP_UNMAPPED pool',
  leaves:
    "each block's struct pages, then its direct map, removed as remove_pagetable removes them: strict as unmap (every entry, split at the edges); linux the present leaves wholly inside only (non-present entries and large leaves cut by the range stay)",
  frames: 'the frames of the range become absent, noDirectMap cleared, every other fact kept',
  tlb: 'flush_tlb_all: every TLB and paging-structure cache on every CPU emptied',
  obligations: 'flush_tlb_all discharges every obligation',
  tables: "the emptied tables are freed after the flush (strict); linux frees the empty tables its walk meets but those the top-level entries point to, kept ones too; ENOMEM tablePool (strict): a split at the range's edge",
  clients: 'the blocks are no longer recorded',
});

/** linux's remove_pagetable over the ranges: each present leaf wholly inside one of them goes, every other entry stays. */
function presentInsideRemoved(entries: Entries, ranges: RangeSet): Expectation {
  const old = unchangedAt(entries);
  return (p) => {
    const e = old(p);
    if (e.leaf === undefined || e.present === false) return e;
    const r = ranges.around(e.leaf.vpn);
    return r !== undefined && leafEnd(e.leaf) <= rangeEnd(r) ? { until: leafEnd(e.leaf) } : e;
  };
}

export const REMOVE_MEMORY: Contract<'removeMemory'> = {
  ...onBlocks('removeMemory'),
  source: 'spec/contracts/hotplug.ts',
  say: removeSay,
  state: (before, c) => {
    const cs = clientsOf(before);
    const blocks = memoryBlocks(c.pfn, c.count);
    if (blocks.some((b) => !cs.memory.includes(b))) return { error: { errno: 'ENOENT', arg: 'pfn' }, clause: removeSay.enoent };
    const inUse = blocks.some((b) => someFrame(before, { pfn: b + MEMMAP_PAGES, count: MEMORY_BLOCK_PAGES - MEMMAP_PAGES }, (use) => use !== 'free'));
    const pooled = cs.unmapped.some((pb) => pb + PAGEBLOCK_PAGES > c.pfn && pb < c.pfn + c.count);
    return inUse || pooled ? { error: { errno: 'EBUSY', arg: 'pfn' }, clause: removeSay.ebusy } : null;
  },
  // leaves: the ranges removed (strict: as unmap; linux: the present leaves inside them);
  // tlb, obligations, tables: flush_tlb_all; frames: absent, noDirectMap clear; clients:
  // the blocks no longer recorded.
  effect: (before, c) => {
    const entries = rootEntries(before);
    const ranges = new RangeSet(rangesOf(before, c));
    const cs = clientsOf(before);
    const gone = new Set(memoryBlocks(c.pfn, c.count));
    const common = {
      windows: windowsOf(entries, ranges.ranges),
      flushed: 'all' as const,
      frameUse: [{ pfn: c.pfn, count: c.count, value: 'absent' as const }],
      noDirectMap: { pfn: c.pfn, count: c.count, value: false },
      clients: { ...cs, memory: cs.memory.filter((b) => !gone.has(b)) },
    };
    return [
      { ...common, expect: removedAt(entries, ranges) },
      { ...common, expect: presentInsideRemoved(entries, ranges), emptiedMayStay: true, keptMayGo: true },
    ];
  },
};
