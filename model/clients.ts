/**
 * The reference model's clients capability (spec/contracts/clients.ts): the kernel's
 * page-table users on init_mm, through the host of model/clients-host.ts. Each operation
 * runs its trusted validator, then the contract's state checks in errno order, then its
 * steps: several on a draft of the model that is committed only when all succeeded, one
 * that is atomic by itself on the model (strict policy EPERM and ENOMEM come from the
 * steps, in their order), so a failed operation changes nothing; linux's
 * apply_to_page_range is the one that keeps what it did. vmalloc and
 * vfree are model/clients-vmalloc.ts, the unmapped pool model/clients-pool.ts, the
 * pagewalk model/clients-walk.ts, zapPageRange's mmu_gather model/clients-gather.ts, memory
 * hotplug model/clients-hotplug.ts.
 */
import { PAGES, vpnSpan, vpnToHex, type Pfn, type Vpn } from '../spec/address.ts';
import { KM_MAX_IDX, MERMAP_ALLOCS, kmapSlotVpn } from '../spec/clients.ts';
import { directMapVpn, validateApply, validateCpuPage, validateKmapLocal, validateMermapGet, validateWalk } from '../spec/contracts/index.ts';
import { fail, OK, ok, type Result } from '../spec/errors.ts';
import { PAGE_KERNEL, type Prot } from '../spec/state.ts';
import type { ClientOps, VmallocOptions, WalkVisit } from '../spec/system.ts';
import { firstHugeEntry, linuxApply, populateLeaves } from './clients-apply.ts';
import { zapPageRange } from './clients-gather.ts';
import { addMemory, removeMemory } from './clients-hotplug.ts';
import { err, type ClientsHost } from './clients-host.ts';
import { allocFromPool, allocUnmapped, meetsPool } from './clients-pool.ts';
import { insertByVpn, kmapSlotsOf, mermapOf, mermapPlace, popSlot, pushSlot, withMermap } from './clients-state.ts';
import { vfree, vmalloc, vmUnmapAliases } from './clients-vmalloc.ts';
import { walkVisits } from './clients-walk.ts';
import { pagesWithEntry } from './entries.ts';
import { makeLeaf } from './leaves.ts';
import { tableLinked } from './tables.ts';

/** The mermap's leaves: PAGE_KERNEL without global (arch_mermap_pgprot_allowed refuses a global one: the mermap is mm-local). */
const MERMAP_PROT: Prot = { ...PAGE_KERNEL, global: false };

export class ClientsModel implements ClientOps {
  constructor(private readonly host: ClientsHost) {}

  vmalloc(vpn: Vpn, pfn: Pfn, pages: number, opts: VmallocOptions): Result<void> {
    return vmalloc(this.host, vpn, pfn, pages, opts);
  }

  vfree(vpn: Vpn): Result<void> {
    return vfree(this.host, vpn);
  }

  vmUnmapAliases(): Result<void> {
    return vmUnmapAliases(this.host);
  }

  kmapLocal(cpu: number, pfn: Pfn): Result<Vpn> {
    const { config, profile } = this.host;
    const bad = validateKmapLocal(config, cpu, pfn);
    if (bad) return err(bad);
    // x86-64 has no CONFIG_HIGHMEM: kmap_local_page is page_address, and nothing changes.
    if (profile === 'linux') return ok(directMapVpn(config.levels, pfn));
    const now = this.host.current();
    const idx = kmapSlotsOf(now.clients(), cpu).length;
    if (idx >= KM_MAX_IDX) return fail('EBUSY', 'cpu', `CPU ${cpu} holds all its ${KM_MAX_IDX} kmap_local slots`);
    const vpn = kmapSlotVpn(cpu, idx);
    if (pagesWithEntry(now.entries(), vpn, 1) > 0) return fail('EEXIST', 'vpn', `kmap_local slot ${idx} of CPU ${cpu} at ${vpnToHex(vpn)} already has an entry`);
    const r = now.install('kmapLocal', [makeLeaf(vpn, pfn, '4K', PAGE_KERNEL)]);
    if (!r.ok) return r;
    now.setClients(pushSlot(now.clients(), { cpu, idx, vpn, pfn }));
    return ok(vpn);
  }

  kunmapLocal(cpu: number, vpn: Vpn): Result<void> {
    const { config, profile } = this.host;
    const bad = validateCpuPage(config, cpu, vpn);
    if (bad) return err(bad);
    // x86-64's __kunmap_local does nothing.
    if (profile === 'linux') return OK;
    const now = this.host.current();
    const slots = kmapSlotsOf(now.clients(), cpu);
    const slot = slots.find((k) => k.vpn === vpn);
    if (slot === undefined) return fail('ENOENT', 'vpn', `${vpnToHex(vpn)} is not a kmap_local slot CPU ${cpu} holds`);
    if (slot !== slots[slots.length - 1]) return fail('EINVAL', 'vpn', `${vpnToHex(vpn)} is slot ${slot.idx} of CPU ${cpu}, not its top one (${slots.length - 1})`);
    // The leaf needs no flush of other CPUs (none caches a slot: the clients' rule, C4),
    // but an emptied table may be in their paging-structure caches: it waits pending, a
    // flush of the slot owed for it; then flush_tlb_one_kernel on this CPU alone. None of
    // it can fail.
    now.clear(vpn, 1, 'kunmapLocal');
    now.sys.flushLocal(cpu, vpn, 1);
    now.setClients(popSlot(now.clients(), slot));
    return OK;
  }

  mermapGet(cpu: number, pfn: Pfn, pages: number): Result<Vpn> {
    const { config } = this.host;
    const bad = validateMermapGet(config, cpu, pfn, pages);
    if (bad) return err(bad);
    const now = this.host.current();
    const m = mermapOf(now.clients(), cpu);
    if (m.allocs.length >= MERMAP_ALLOCS) return fail('EBUSY', 'cpu', `CPU ${cpu} holds ${MERMAP_ALLOCS} mermap allocations, all it can`);
    // Decided before anything changes: the series flushes, then fails.
    const place = mermapPlace(config.levels, m, pages);
    if (place === undefined) return fail('EBUSY', 'cpu', `no room for ${pages} pages in CPU ${cpu}'s mermap slice, even after a flush`);
    if (pagesWithEntry(now.entries(), place.vpn, pages) > 0) return fail('EEXIST', 'vpn', `part of ${vpnSpan(place.vpn, pages)} already has an entry`);
    const d = this.host.draft();
    // arch_mermap_flush_tlb before the slice is reused.
    if (place.reuse) d.flushCpu(cpu);
    const added = Array.from({ length: pages }, (_, i) => makeLeaf(place.vpn + i, pfn + i, '4K', MERMAP_PROT));
    const r = d.install('mermapGet', added);
    if (!r.ok) return r;
    const mine = mermapOf(d.clients(), cpu);
    d.setClients(withMermap(d.clients(), { ...mine, next: place.vpn + pages, allocs: insertByVpn(mine.allocs, { cpu, vpn: place.vpn, pages, pfn }) }));
    d.commit();
    return ok(place.vpn);
  }

  mermapPut(cpu: number, vpn: Vpn): Result<void> {
    const bad = validateCpuPage(this.host.config, cpu, vpn);
    if (bad) return err(bad);
    const now = this.host.current();
    const m = mermapOf(now.clients(), cpu);
    const alloc = m.allocs.find((a) => a.vpn === vpn);
    if (alloc === undefined) return fail('ENOENT', 'vpn', `CPU ${cpu} holds no mermap allocation at ${vpnToHex(vpn)}`);
    // No flush: this CPU's TLB alone may still hold the pages until a flush meets them.
    now.clear(alloc.vpn, alloc.pages, 'mermapPut');
    now.setClients(withMermap(now.clients(), { ...m, allocs: m.allocs.filter((a) => a !== alloc), stale: insertByVpn(m.stale, alloc) }));
    return OK;
  }

  allocUnmapped(pfn: Pfn, count: number): Result<void> {
    return allocUnmapped(this.host, pfn, count);
  }

  /** allocFrames with the pool (model.ts calls it first): undefined when the frames meet no unmapped pageblock. */
  allocFramesFromPool(pfn: Pfn, count: number): Result<void> | undefined {
    return meetsPool(this.host, pfn, count) ? allocFromPool(this.host, pfn, count) : undefined;
  }

  applyToPageRange(vpn: Vpn, pages: number, pfn: Pfn, prot: Prot): Result<void> {
    const { config, profile } = this.host;
    const bad = validateApply(config, vpn, pages, pfn, prot);
    if (bad) return err(bad);
    const now = this.host.current();
    const e = now.entries();
    const huge = firstHugeEntry(e, vpn, pages);
    const own = now.leafProt(prot);
    const refused = (): Result<void> =>
      fail('EINVAL', 'vpn', `${vpnSpan(vpn, pages)} meets the ${huge!.size} entry at ${vpnToHex(huge!.vpn)} (apply_to_pmd/pud_range: WARN_ON_ONCE(p?d_leaf), -EINVAL)`);
    if (profile === 'strict') return huge !== undefined ? refused() : now.install('applyToPageRange', populateLeaves(e, vpn, vpn + pages, pfn, own));
    // Linux walks in address order and stops at the huge entry or the empty pool, keeping what it did.
    const stop = huge === undefined ? vpn + pages : Math.max(vpn, huge.vpn);
    const plan = linuxApply(config.levels, e, now.kept(), now.freeTables(), vpn, stop, pfn, own);
    const events = !plan.enomem && huge !== undefined ? [{ kind: 'apply-huge' as const, vpn: huge.vpn, pages: PAGES[huge.size], pfn: huge.pfn }] : [];
    const r = now.install('applyToPageRange', plan.added, { keptAdd: plan.keptAdd, events });
    if (!r.ok) return r;
    if (plan.enomem) return fail('ENOMEM', 'tablePool', `the pool ran out of page tables in ${vpnSpan(vpn, pages)} (the PTEs set before stay)`);
    return huge !== undefined ? refused() : OK;
  }

  zapPageRange(pid: number, vpn: Vpn, pages: number): Result<void> {
    return zapPageRange(this.host, pid, vpn, pages);
  }

  addMemory(pfn: Pfn, count: number): Result<void> {
    return addMemory(this.host, pfn, count);
  }

  removeMemory(pfn: Pfn, count: number): Result<void> {
    return removeMemory(this.host, pfn, count);
  }

  walkPageRange(vpn: Vpn, pages: number): Result<readonly WalkVisit[]> {
    const { config } = this.host;
    const bad = validateWalk(config, vpn, pages);
    if (bad) return err(bad);
    const now = this.host.current();
    const e = now.entries();
    const kept = now.kept();
    const lists = [e.leaves, e.nonPresent];
    return ok(walkVisits(config.levels, e, (level, at) => tableLinked(lists, kept, level, at), vpn, pages));
  }
}
