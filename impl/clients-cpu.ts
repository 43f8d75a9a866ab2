/**
 * The CPU-local mappings (spec/contracts/clients.ts): kmap_local's per-CPU stack of fixmap
 * slots (mm/highmem.c __kmap_local_pfn_prot, kunmap_local_indexed; strict only: x86-64's
 * kmap_local_page is page_address) and the mermap's per-CPU slice with its bump pointer
 * (mm/mermap.c of the __GFP_UNMAPPED series: mermap_get, mermap_put, arch_mermap_flush_tlb).
 *
 * A stack is the frames of its slots 0..n-1; a CPU's mermap is an immutable record (its
 * bump pointer, at most MERMAP_ALLOCS allocations in use and the stale ones put without a
 * flush, both sorted by vpn), replaced when it changes. The stale allocations leave when a
 * flush on their CPU meets them (`flushed`, `flushedLocal`) or the mermap's own local
 * full flush runs; until then C1 asks for their frames (`staleFrame`).
 */
import { kernelLayout, vpnToHex, type Pfn, type Vpn } from '../spec/address.ts';
import { KM_MAX_IDX, MERMAP_ALLOCS, MERMAP_USABLE_PAGES, kmapSlotOf, kmapSlotVpn, mermapSlice, type KmapSlot, type MermapAlloc, type MermapCpu } from '../spec/clients.ts';
import { validateCpuPage, validateKmapLocal, validateMermapGet } from '../spec/contracts/clients.ts';
import { OK, fail, ok, type PtError, type Result } from '../spec/errors.ts';
import { PAGE_KERNEL } from '../spec/state.ts';
import type { ClientsHost } from './clients.ts';
import { P_GLOBAL, protCode } from './prot.ts';

const err = (e: PtError): Result<never> => ({ ok: false, error: e });

/** PAGE_KERNEL: what __kmap_local_pfn_prot maps a slot with (kmap_prot). */
const KMAP_CODE = protCode(PAGE_KERNEL);
/** PAGE_KERNEL without _PAGE_GLOBAL: arch_mermap_pgprot_allowed refuses a global mermap leaf (the region is mm-local). */
const MERMAP_CODE = KMAP_CODE & ~P_GLOBAL;

/** `list` with `a` added, in vpn order. */
function inserted(list: readonly MermapAlloc[], a: MermapAlloc): readonly MermapAlloc[] {
  const at = list.findIndex((x) => x.vpn > a.vpn);
  return Object.freeze(at < 0 ? [...list, a] : [...list.slice(0, at), a, ...list.slice(at)]);
}

const covers = (a: MermapAlloc, lo: Vpn, hi: Vpn): boolean => lo <= a.vpn && a.vpn + a.pages <= hi;

export class CpuLocal {
  /** Each CPU's kmap_local stack (strict): the frame of each slot in use, slot 0 first. */
  private readonly stacks: Pfn[][];
  private kmapSnapshot: readonly KmapSlot[] | null = null;
  /** Each CPU's mermap. */
  private readonly mermap: MermapCpu[];
  private mermapSnapshot: readonly MermapCpu[] | null = null;
  /** The stale allocations of every CPU: a flush looks at none while there are none. */
  private staleCount = 0;

  constructor(private readonly host: ClientsHost) {
    const { cpus, levels } = host.config;
    this.stacks = Array.from({ length: cpus }, () => []);
    this.mermap = Array.from({ length: cpus }, (_, cpu) => Object.freeze({ cpu, next: mermapSlice(levels, cpu), allocs: [], stale: [] }));
  }

  /** Become a copy of `src` (RadixSystem.fork): the stacks copied, the mermap records and the snapshots shared (immutable). */
  copyFrom(src: CpuLocal): void {
    src.stacks.forEach((stack, cpu) => {
      this.stacks[cpu] = [...stack];
    });
    src.mermap.forEach((m, cpu) => {
      this.mermap[cpu] = m;
    });
    this.kmapSnapshot = src.kmapSnapshot;
    this.mermapSnapshot = src.mermapSnapshot;
    this.staleCount = src.staleCount;
  }

  // ---- kmap_local ----

  kmapLocal(cpu: number, pfn: Pfn): Result<Vpn> {
    const bad = validateKmapLocal(this.host.config, cpu, pfn);
    if (bad) return err(bad);
    // x86-64 has no CONFIG_HIGHMEM: kmap_local_page is page_address, the frame's direct-map page.
    if (this.host.profile === 'linux') return ok(kernelLayout(this.host.config.levels).pageOffset + pfn);
    const stack = this.stacks[cpu]!;
    if (stack.length >= KM_MAX_IDX) return fail('EBUSY', 'cpu', `cpu ${cpu} holds all ${KM_MAX_IDX} of its kmap_local slots (the kernel BUG_ONs)`);
    const vpn = kmapSlotVpn(cpu, stack.length);
    const r = this.host.radix;
    // __kmap_local_pfn_prot's BUG_ON(!pte_none(*(kmap_pte - idx))).
    if (r.anyMapped(vpn, vpn + 1)) return fail('EEXIST', 'vpn', `cpu ${cpu}'s next kmap_local slot ${stack.length} at ${vpnToHex(vpn)} already has an entry`);
    r.begin();
    this.host.install(vpn, pfn, 1, KMAP_CODE, '4K');
    const done = this.host.finish('kmapLocal', { flushed: [], touched: [{ vpn, pages: 1 }] });
    if (!done.ok) return done;
    stack.push(pfn);
    this.kmapSnapshot = null;
    return ok(vpn);
  }

  kunmapLocal(cpu: number, vpn: Vpn): Result<void> {
    const bad = validateCpuPage(this.host.config, cpu, vpn);
    if (bad) return err(bad);
    // x86-64's __kunmap_local does nothing.
    if (this.host.profile === 'linux') return OK;
    const stack = this.stacks[cpu]!;
    const slot = kmapSlotOf(this.host.config.cpus, vpn);
    if (slot === undefined || slot.cpu !== cpu || slot.idx >= stack.length) return fail('ENOENT', 'vpn', `${vpnToHex(vpn)} is no kmap_local slot cpu ${cpu} holds`);
    // kunmap_local_indexed WARNs and clears the top slot instead; strict refuses. The
    // kunmap-out-of-order mutant clears the slot asked for, and pops the top as the kernel does.
    if (slot.idx !== stack.length - 1 && this.host.mutant !== 'kunmap-out-of-order') {
      return fail('EINVAL', 'vpn', `${vpnToHex(vpn)} is cpu ${cpu}'s kmap_local slot ${slot.idx}, not the top one (${stack.length - 1}): kmap_local unmaps in stack order`);
    }
    // Only this CPU is flushed (below): an emptied PTE table waits for a flush of every CPU.
    const cleared = this.clearLocal(vpn, 1, 'kunmapLocal');
    if (!cleared.ok) return cleared;
    // arch_kmap_local_post_unmap: flush_tlb_one_kernel on this CPU.
    this.host.flushLocal(cpu, vpn, 1);
    stack.pop();
    this.kmapSnapshot = null;
    return OK;
  }

  /**
   * kunmap_local's and mermap_put's clear of [vpn, vpn+pages), with no flush: strict's
   * emptied tables wait pending, and when one empties a flush of the range is owed for
   * `reason` (other CPUs' paging-structure caches may hold it); linux keeps them linked, as
   * the series' pre-populated mermap tables stay (a commit forgets the emptied list).
   */
  private clearLocal(vpn: Vpn, pages: number, reason: string): Result<void> {
    const r = this.host.radix;
    r.begin();
    r.unmapRange(vpn, vpn + pages);
    const pending = r.pool.pending.length;
    if (this.host.profile !== 'linux') r.releaseEmptied(true);
    const full = this.host.poolError();
    if (full !== null) {
      r.pool.rollback();
      return err(full);
    }
    r.pool.commit();
    if (r.pool.pending.length > pending) this.host.tlbs.owe(vpn, pages, reason);
    return OK;
  }

  /** The slots in use, by cpu then idx. */
  kmapList(): readonly KmapSlot[] {
    this.kmapSnapshot ??= Object.freeze(this.stacks.flatMap((stack, cpu) => stack.map((pfn, idx) => Object.freeze({ cpu, idx, vpn: kmapSlotVpn(cpu, idx), pfn }))));
    return this.kmapSnapshot;
  }

  // ---- the mermap ----

  mermapGet(cpu: number, pfn: Pfn, pages: number): Result<Vpn> {
    const { config, radix: r } = this.host;
    const bad = validateMermapGet(config, cpu, pfn, pages);
    if (bad) return err(bad);
    const m = this.mermap[cpu]!;
    const slice = mermapSlice(config.levels, cpu);
    const end = slice + MERMAP_USABLE_PAGES;
    if (m.allocs.length >= MERMAP_ALLOCS) return fail('EBUSY', 'cpu', `cpu ${cpu}'s mermap holds ${MERMAP_ALLOCS} allocations, all its tracking slots`);
    // The bump pointer; when the slice's end is in the way, the room above the highest
    // allocation in use, reused only after this CPU's full flush (decided before anything changes).
    let at = m.next;
    const reuse = at + pages > end;
    if (reuse) {
      const top = m.allocs[m.allocs.length - 1];
      at = top === undefined ? slice : top.vpn + top.pages;
      if (at + pages > end) return fail('EBUSY', 'cpu', `cpu ${cpu}'s mermap slice has no room for ${pages} pages, even after a flush`);
    }
    if (r.anyMapped(at, at + pages)) return fail('EEXIST', 'vpn', `a page of ${vpnToHex(at)} (+${pages} pages) in cpu ${cpu}'s mermap slice has an entry`);
    r.begin();
    this.host.install(at, pfn, pages, MERMAP_CODE, '4K');
    const done = this.host.finish('mermapGet', { flushed: [], touched: [{ vpn: at, pages }] });
    if (!done.ok) return done;
    // arch_mermap_flush_tlb: __flush_tlb_all on this CPU alone, before the space is reused.
    if (reuse) this.flushCpu(cpu);
    const now = this.mermap[cpu]!;
    this.setMermap(cpu, { cpu, next: at + pages, allocs: inserted(now.allocs, Object.freeze({ cpu, vpn: at, pages, pfn })), stale: now.stale });
    return ok(at);
  }

  mermapPut(cpu: number, vpn: Vpn): Result<void> {
    const bad = validateCpuPage(this.host.config, cpu, vpn);
    if (bad) return err(bad);
    const m = this.mermap[cpu]!;
    const a = m.allocs.find((x) => x.vpn === vpn);
    if (a === undefined) return fail('ENOENT', 'vpn', `cpu ${cpu}'s mermap holds no allocation at ${vpnToHex(vpn)}`);
    // No flush at all: strict's emptied tables wait for one of every CPU.
    const cleared = this.clearLocal(a.vpn, a.pages, 'mermapPut');
    if (!cleared.ok) return cleared;
    // mermap_put does not flush: this CPU's TLB may still translate the pages, until a flush on it meets them.
    this.setMermap(cpu, { cpu, next: m.next, allocs: Object.freeze(m.allocs.filter((x) => x !== a)), stale: inserted(m.stale, a) });
    return OK;
  }

  /** Every CPU's mermap, by cpu. */
  mermapList(): readonly MermapCpu[] {
    this.mermapSnapshot ??= Object.freeze([...this.mermap]);
    return this.mermapSnapshot;
  }

  private setMermap(cpu: number, m: MermapCpu): void {
    this.staleCount += m.stale.length - this.mermap[cpu]!.stale.length;
    this.mermap[cpu] = Object.freeze(m);
    this.mermapSnapshot = null;
  }

  /** arch_mermap_flush_tlb on `cpu`: its TLB and paging-structure caches, and so its stale allocations. */
  private flushCpu(cpu: number): void {
    this.host.tlbs.flushCpu(cpu, this.host.mutant !== 'walk-cache-survives-flush');
    this.dropStale(cpu, -Infinity, Infinity);
  }

  // ---- flushes and C1 ----

  /** A flush of [vpn, vpn + pages) on CPUs 0 .. cpus - 1: the stale allocations it covers whole there (one covered in part may still be cached elsewhere in it). */
  flushed(vpn: Vpn, pages: number, cpus: number): void {
    if (this.staleCount === 0) return;
    for (let cpu = 0; cpu < cpus; cpu++) this.dropStale(cpu, vpn, vpn + pages);
  }

  /** flush_tlb_one_kernel of [vpn, vpn + pages) on `cpu`. */
  flushedLocal(cpu: number, vpn: Vpn, pages: number): void {
    if (this.staleCount > 0) this.dropStale(cpu, vpn, vpn + pages);
  }

  private dropStale(cpu: number, lo: Vpn, hi: Vpn): void {
    const m = this.mermap[cpu]!;
    if (m.stale.length === 0 || !m.stale.some((a) => covers(a, lo, hi))) return;
    this.setMermap(cpu, { ...m, stale: Object.freeze(m.stale.filter((a) => !covers(a, lo, hi))) });
  }

  /** The first frame of [pfn, pfn + count) some CPU's stale allocation maps, or -1. */
  staleFrame(pfn: Pfn, count: number): number {
    if (this.staleCount === 0) return -1;
    const end = pfn + count;
    let first = -1;
    for (const m of this.mermap) {
      for (const a of m.stale) {
        const f = Math.max(a.pfn, pfn);
        if (f < Math.min(a.pfn + a.pages, end) && (first < 0 || f < first)) first = f;
      }
    }
    return first;
  }
}
