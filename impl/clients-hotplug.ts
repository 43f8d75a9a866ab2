/**
 * Memory hotplug on the real tables (spec/contracts/hotplug.ts; mm/memory_hotplug.c of
 * gregkh/linux 1bab7eea, arch/x86/mm/init_64.c of gregkh/linux 6bf94737): add_memory and
 * offline_and_remove_memory of whole 128 MiB memory blocks, each with its memmap on its
 * own first frames (the altmap of create_altmaps_and_memory_blocks).
 *
 * addMemory, block by block: the direct map as init_memory_mapping fills it after boot
 * (a 2M leaf per empty 2M slot, 4K leaves around entries already there, which stay), then
 * the block's struct pages in the vmemmap (one 2M leaf; strict 4K leaves without PSE,
 * where linux's vmemmap_populate fails). The frames are data while the leaves go in, and
 * the onlining past the memmap is a free: strict judges the leaves first (policy.ts
 * firstBroken, as finish will), then each block's onlining as freeFrames is judged (D4, D6,
 * D7, C1). Linux commits block by block: a block that fails keeps its direct map, and the
 * blocks before it are removed again.
 *
 * removeMemory: vmemmap_free and kernel_physical_mapping_remove of each block (strict:
 * unmap's range walk, split at the edges, emptied tables freed; linux: remove_pagetable's,
 * the present leaves wholly inside the ranges cleared, then the tables below the top-level
 * entries' ones that the walk meets and finds empty freed), one flush_tlb_all, then the
 * frames absent. The blocks added are kept in a sorted list (abstract().clients.memory).
 */
import { kernelLayout, pfnSpan, pfnToHex, tableIndex, vpnSpan, type Level, type Pfn, type Vpn } from '../spec/address.ts';
import { MEMMAP_PAGES, MEMORY_BLOCK_PAGES, vmemmapVpn } from '../spec/clients.ts';
import { ptError } from '../spec/contracts/args.ts';
import { validateHotplug } from '../spec/contracts/hotplug.ts';
import { policyError, type MutatingOp } from '../spec/contracts/outcome.ts';
import { OK, fail, type PtError, type Result } from '../spec/errors.ts';
import { PAGE_KERNEL } from '../spec/state.ts';
import { _PAGE_PRESENT } from './arch/x86_64/entry.ts';
import type { ClientsHost } from './clients.ts';
import { firstBroken, freeingBreaks } from './policy.ts';
import { protCode } from './prot.ts';
import type { Range } from './system.ts';
import * as tables from './tables.ts';

const { SPAN, isLeafAt } = tables;
const err = (e: PtError): Result<never> => ({ ok: false, error: e });
const KERNEL_CODE = protCode(PAGE_KERNEL);
const SLOT = 512;

/** The first frames of the blocks of [pfn, pfn + count), in order. */
function blocksOf(pfn: Pfn, count: number): Pfn[] {
  return Array.from({ length: count / MEMORY_BLOCK_PAGES }, (_, k) => pfn + k * MEMORY_BLOCK_PAGES);
}

export class Hotplug {
  /** The first frames of the blocks added, sorted. */
  private readonly blocks: Pfn[] = [];
  private snapshot: readonly Pfn[] | null = null;
  private readonly pageOffset: Vpn;

  constructor(
    private readonly host: ClientsHost,
    /** C1's frames (clients.ts stillTranslated): onlining frees them. */
    private readonly stillTranslated: (pfn: Pfn, count: number) => number,
  ) {
    this.pageOffset = kernelLayout(host.config.levels).pageOffset;
  }

  /** Become a copy of `src` (RadixSystem.fork). */
  copyFrom(src: Hotplug): void {
    this.blocks.length = 0;
    this.blocks.push(...src.blocks);
    this.snapshot = src.snapshot;
  }

  /** The vmemmap pages of block `b`'s struct pages, then its direct-map range (arch_remove_memory's order). */
  private ranges(b: Pfn): readonly [Range, Range] {
    return [{ vpn: vmemmapVpn(this.host.config.levels, b), pages: MEMMAP_PAGES }, { vpn: this.pageOffset + b, pages: MEMORY_BLOCK_PAGES }];
  }

  addMemory(pfn: Pfn, count: number): Result<void> {
    const { config, facts, radix: r } = this.host;
    const bad = validateHotplug(config, pfn, count);
    if (bad) return err(bad);
    if (!facts.absent.covers(pfn, count)) return fail('EEXIST', 'pfn', `a frame of ${pfnSpan(pfn, count)} is memory already (register_memory_resource: the range is busy)`);
    const blocks = blocksOf(pfn, count);
    for (const b of blocks) {
      const [memmap] = this.ranges(b);
      if (r.anyMapped(memmap.vpn, memmap.vpn + memmap.pages)) return fail('EEXIST', 'pfn', `the struct pages of the block at ${pfnToHex(b)} are mapped already at ${vpnSpan(memmap.vpn, memmap.pages)}`);
    }
    // Memory before anything maps it (D8), in use until it is onlined (D4 sees free frames only).
    facts.absent.remove(pfn, count);
    facts.data.add(pfn, count, true);
    const unplugged = (): void => {
      facts.data.remove(pfn, count);
      facts.absent.add(pfn, count, true);
    };
    const added = this.host.profile === 'linux' ? this.addLinux(blocks, unplugged) : this.addStrict(blocks, unplugged);
    if (!added.ok) return added;
    // online_pages: every block's frames past its memmap go to the page allocator.
    for (const b of blocks) {
      facts.data.remove(b + MEMMAP_PAGES, MEMORY_BLOCK_PAGES - MEMMAP_PAGES);
      facts.free.add(b + MEMMAP_PAGES, MEMORY_BLOCK_PAGES - MEMMAP_PAGES, true);
    }
    this.host.framesChanged();
    this.blocks.push(...blocks);
    this.blocks.sort((x, y) => x - y);
    this.snapshot = null;
    return OK;
  }

  /** Every block in one journaled operation: the leaves' rules, then each block's onlining judged as a free, then finish (isolation, pool). */
  private addStrict(blocks: readonly Pfn[], unplugged: () => void): Result<void> {
    const { radix: r, facts, tlbs } = this.host;
    r.begin();
    for (const b of blocks) {
      this.fillDirectMap(b);
      this.populateMemmap(b);
    }
    // The rules a leaf can break come before those a free can (STRICT_POLICY: D4 on), and
    // no isolation root maps what an absent frame's pages map, so this order is the policy's.
    if (firstBroken(r, facts) === null) {
      for (const b of blocks) {
        const freed = freeingBreaks(r, facts, tlbs, b + MEMMAP_PAGES, MEMORY_BLOCK_PAGES - MEMMAP_PAGES, { stillTranslated: this.stillTranslated });
        if (freed === null) continue;
        r.pool.rollback();
        unplugged();
        return err(policyError('addMemory' as MutatingOp, freed.id, freed.where));
      }
    }
    return this.host.finish('addMemory', { flushed: [], touched: blocks.flatMap((b) => this.ranges(b)), undo: unplugged });
  }

  /**
   * Block by block, each step committed: a direct map that runs out of tables is undone
   * (the kernel's alloc_low_page has no failure path), a vmemmap that fails leaves the
   * block's direct map (arch_add_memory does not undo init_memory_mapping); then the
   * blocks before it are removed again (remove_memory_blocks_and_altmaps).
   */
  private addLinux(blocks: readonly Pfn[], unplugged: () => void): Result<void> {
    const { radix: r, config, log } = this.host;
    for (const [k, b] of blocks.entries()) {
      const direct = this.linuxStep(() => this.fillDirectMap(b));
      const [memmap] = this.ranges(b);
      if (direct === null && !config.features.pse) log.printOnce({ kind: 'vmemmap-no-altmap', vpn: memmap.vpn, pages: memmap.pages, pfn: b });
      const vmemmap = direct !== null ? null : config.features.pse ? this.linuxStep(() => this.populateMemmap(b))
        : ptError('ENOMEM', 'tablePool', `vmemmap_populate: no cpu support for altmap allocations (no PSE) for the block at ${pfnToHex(b)}`);
      // __add_pages failed after init_memory_mapping: add_pages warns, and the block's direct map stays.
      if (vmemmap !== null) log.printOnce({ kind: 'add-pages-failed', vpn: this.pageOffset + b, pages: MEMORY_BLOCK_PAGES, pfn: b });
      const failed = direct ?? vmemmap;
      if (failed === null) continue;
      unplugged();
      if (k > 0) {
        const before = blocks.slice(0, k).flatMap((e) => this.ranges(e));
        r.begin();
        this.removePagetable(before);
        this.host.flushRanges(before);
      }
      return err(failed);
    }
    return OK;
  }

  /** One journaled linux step: committed, or undone when the pool ran out. */
  private linuxStep(step: () => void): PtError | null {
    const r = this.host.radix;
    r.begin();
    step();
    const full = this.host.poolError();
    if (full !== null) {
      r.pool.rollback();
      return full;
    }
    r.pool.commit();
    return null;
  }

  /**
   * init_memory_mapping of block `b` after boot: a 2M PAGE_KERNEL leaf in each 2M slot whose
   * pmd is none (with PSE), 4K leaves on the other pages without an entry; entries stay.
   */
  private fillDirectMap(b: Pfn): void {
    const r = this.host.radix;
    const dm = this.pageOffset + b;
    for (let slot = 0; slot < MEMORY_BLOCK_PAGES; slot += SLOT) {
      const vpn = dm + slot;
      if (this.slotIsNone(vpn)) {
        this.host.install(vpn, b + slot, SLOT, KERNEL_CODE, '2M');
        continue;
      }
      // The gaps between the entries of the slot, each page a 4K leaf.
      let at = vpn;
      const gap = (to: Vpn): void => {
        if (to > at) this.host.install(at, b + (at - dm), to - at, KERNEL_CODE, '4K');
      };
      r.forEachEntry(vpn, vpn + SLOT, (ev, _pfn, level) => {
        gap(ev);
        at = Math.max(at, ev + SPAN[level as 1]!);
      }, true);
      gap(vpn + SLOT);
    }
  }

  /**
   * vmemmap_populate with block `b`'s altmap: its struct pages on its first frames, a 2M
   * leaf where the pmd is none (with PSE), else 4K leaves (strict without PSE; linux into
   * a PTE table it kept there, vmemmap_populate_basepages from the altmap).
   */
  private populateMemmap(b: Pfn): void {
    const [memmap] = this.ranges(b);
    this.host.install(memmap.vpn, b, MEMMAP_PAGES, KERNEL_CODE, this.slotIsNone(memmap.vpn) ? '2M' : '4K');
  }

  /** Whether the 2M slot at vpn takes a 2M leaf: PSE, and a none pmd entry (no entry there, no PTE table linux kept). */
  private slotIsNone(vpn: Vpn): boolean {
    const r = this.host.radix;
    return this.host.config.features.pse && !r.anyMapped(vpn, vpn + SLOT) && r.tableAt(vpn, 1) < 0;
  }

  removeMemory(pfn: Pfn, count: number): Result<void> {
    const { config, facts, radix: r } = this.host;
    const bad = validateHotplug(config, pfn, count);
    if (bad) return err(bad);
    const blocks = blocksOf(pfn, count);
    const missing = blocks.find((b) => !this.blocks.includes(b));
    if (missing !== undefined) return fail('ENOENT', 'pfn', `the memory block at ${pfnToHex(missing)} was not hot-added`);
    for (const b of blocks) {
      if (!facts.free.covers(b + MEMMAP_PAGES, MEMORY_BLOCK_PAGES - MEMMAP_PAGES)) return fail('EBUSY', 'pfn', `a frame of the block at ${pfnToHex(b)} is in use: offline_pages cannot offline it`);
    }
    const pooled = facts.unmapped.first(pfn, count);
    if (pooled >= 0) return fail('EBUSY', 'pfn', `frame ${pfnToHex(pooled)} is in a pageblock of the __GFP_UNMAPPED pool`);
    // The hot-remove-keeps-direct-map mutant skips kernel_physical_mapping_remove.
    const ranges = blocks.flatMap((b) => (this.host.mutant === 'hot-remove-keeps-direct-map' ? this.ranges(b).slice(0, 1) : this.ranges(b)));
    // remove_pagetable's flush_tlb_all (a block's ranges are far above the ceiling), which the hot-remove-no-flush mutant forgets.
    const flushed = this.host.mutant === 'hot-remove-no-flush' ? [] : ranges;
    r.begin();
    if (this.host.profile === 'linux') {
      this.removePagetable(ranges);
      facts.noDirectMap.remove(pfn, count);
      this.host.flushRanges(flushed);
    } else {
      for (const m of ranges) if (r.anyMapped(m.vpn, m.vpn + m.pages)) r.unmapRange(m.vpn, m.vpn + m.pages);
      // Without a flush the emptied tables would wait pending: the mutant frees them at once, as remove_pagetable does.
      if (flushed.length === 0) r.releaseEmptied(false);
      const done = this.host.finish('removeMemory', { flushed, touched: ranges, frames: [{ pfn, count, noDirectMap: false }] });
      if (!done.ok) return done;
    }
    facts.free.remove(pfn, count);
    facts.data.remove(pfn, count);
    facts.absent.add(pfn, count, true);
    this.host.framesChanged();
    const gone = new Set(blocks);
    this.blocks.splice(0, this.blocks.length, ...this.blocks.filter((b) => !gone.has(b)));
    this.snapshot = null;
    return OK;
  }

  /**
   * remove_pagetable under linux over range `m` (a block's struct pages or direct map): the
   * present leaves wholly inside cleared; non-present entries and leaves it cuts stay.
   */
  private clearLinux(m: Range): void {
    const r = this.host.radix;
    const inside: Vpn[] = [];
    r.forEachEntry(m.vpn, m.vpn + m.pages, (vpn, _pfn, level) => {
      if (vpn >= m.vpn && vpn + SPAN[level as 1]! <= m.vpn + m.pages) inside.push(vpn);
    });
    for (const vpn of inside) {
      r.lookup(vpn);
      r.pool.set(r.hitSlot, r.hitIdx, 0, 0);
    }
  }

  /**
   * remove_pagetable under linux over each range, committed (it cannot fail): the clear,
   * then the frees; the flush is the caller's.
   */
  private removePagetable(ranges: readonly Range[]): void {
    const pool = this.host.radix.pool;
    for (const m of ranges) {
      this.clearLinux(m);
      this.freeEmpty(m.vpn, m.vpn + m.pages, this.host.radix.root, this.host.config.levels);
    }
    // The tables to free were freed above; the others the clear emptied stay.
    pool.emptied.length = 0;
    pool.commit();
  }

  /**
   * remove_pagetable's free_pte_table, free_pmd_table and (5-level) free_pud_table after
   * its clear of [lo, hi): below the tables the top-level entries point to, each table
   * whose parent entry the walk meets and whose entries are all none (the clear emptied it,
   * or a vunmap kept it empty before) is unlinked and freed, from the bottom up.
   */
  private freeEmpty(lo: Vpn, hi: Vpn, slot: number, level: number): void {
    const pool = this.host.radix.pool;
    const span = SPAN[level as 1]!;
    for (let at = lo - (lo % span); at < hi; at += span) {
      const idx = tableIndex(at, level as Level);
      const off = slot * 1024 + idx * 2;
      const e = pool.words[off]!;
      if ((e & _PAGE_PRESENT) === 0 || isLeafAt(e, level)) continue;
      const child = pool.childSlot(e, pool.words[off + 1]!);
      if (level > 2) this.freeEmpty(Math.max(lo, at), Math.min(hi, at + span), child, level - 1);
      if (level - 1 <= this.host.config.levels - 2 && pool.live[child] === 0) {
        pool.set(slot, idx, 0, 0);
        pool.free(child);
      }
    }
  }

  /** abstract().clients.memory: the same array while nothing changed. */
  list(): readonly Pfn[] {
    this.snapshot ??= Object.freeze([...this.blocks]);
    return this.snapshot;
  }
}
