/**
 * vmalloc and its lazy free (spec/contracts/clients.ts; mm/vmalloc.c of gregkh/linux
 * 04aa71da: __vmalloc_node_range_noprof, vfree, free_unmap_vmap_area,
 * free_vmap_area_noflush, vm_reset_perms, __purge_vmap_area_lazy, _vm_unmap_aliases).
 *
 * vmalloc allocates its frames as allocFrames does (clients-pool.ts takes unmapped
 * pageblocks back) and maps them as map does, 4K or 2M leaves, without a flush. vfree
 * unmaps the area without a flush (the range owed, strict's emptied tables pending), moves
 * it to the purge list, resets the direct map for VM_FLUSH_RESET_PERMS (invalid, the purge
 * with the direct-map range, default), flushes the area first under strict, frees the
 * frames, and purges once the list holds more than lazy_max_pages. The purge is one
 * flush_tlb_kernel_range of [lowest start, highest end) of the list (and the range it is
 * given), after which the list is empty.
 *
 * Strict vfree judges its EPERM on the state before (D4, D6, D7, C1, policy.ts
 * freeingBreaks with the area's own mapping and flush set aside) and is atomic; linux's
 * vunmap_range_noflush clears huge and bad entries whole with its warnings, and the
 * direct-map steps' errors are ignored (set_area_direct_map returns nothing).
 */
import { kernelLayout, vpnToHex, type Pfn, type Vpn } from '../spec/address.ts';
import { lazyMaxPages, type LazyArea, type VmallocArea } from '../spec/clients.ts';
import { validateVfree, validateVmalloc } from '../spec/contracts/clients.ts';
import { policyError, type MutatingOp } from '../spec/contracts/outcome.ts';
import { OK, fail, type PtError, type Result } from '../spec/errors.ts';
import { PAGE_KERNEL } from '../spec/state.ts';
import type { VmallocOptions } from '../spec/system.ts';
import type { ClientsHost } from './clients.ts';
import type { UnmappedPool } from './clients-pool.ts';
import type { AreaList } from './clients-state.ts';
import { freeingBreaks } from './policy.ts';
import { protCode } from './prot.ts';
import type { Range } from './system.ts';

const err = (e: PtError): Result<never> => ({ ok: false, error: e });
const KERNEL_CODE = protCode(PAGE_KERNEL);

export class Vmalloc {
  private readonly pageOffset: Vpn;

  constructor(
    private readonly host: ClientsHost,
    private readonly live: AreaList<VmallocArea>,
    private readonly lazy: AreaList<LazyArea>,
    private readonly pool: UnmappedPool,
    /** C1's frames (clients.ts stillTranslated). */
    private readonly stillTranslated: (pfn: Pfn, count: number) => number,
  ) {
    this.pageOffset = kernelLayout(host.config.levels).pageOffset;
  }

  vmalloc(vpn: Vpn, pfn: Pfn, pages: number, opts: VmallocOptions): Result<void> {
    const { config, facts, radix: r } = this.host;
    const bad = validateVmalloc(config, vpn, pfn, pages, opts);
    if (bad) return err(bad);
    // The vmap allocator hands out no range that is busy or waits for the lazy purge.
    const busy = this.live.meeting(vpn, pages) ?? this.lazy.meeting(vpn, pages);
    if (busy !== undefined) return fail('EBUSY', 'vpn', `${vpnToHex(vpn)} (+${pages} pages) meets the ${this.live.meeting(vpn, pages) === undefined ? 'lazily freed' : 'live'} vmalloc area at ${vpnToHex(busy.vpn)}`);
    if (r.anyMapped(vpn, vpn + pages)) return fail('EEXIST', 'vpn', `a page of ${vpnToHex(vpn)} (+${pages} pages) is already mapped`);
    const refused = this.pool.refusal(pfn, pages);
    if (refused !== null) return err(refused);
    const back = this.pool.meeting(pfn, pages);
    // vmap_pages_range: map's placement, with max_page_shift PMD_SHIFT for VM_ALLOW_HUGE_VMAP.
    const maxPage = opts.huge ? '2M' : '4K';
    if (this.host.profile === 'linux') {
      r.begin();
      this.host.install(vpn, pfn, pages, KERNEL_CODE, maxPage);
      r.freeReplaced();
      const full = this.host.poolError();
      if (full !== null) {
        r.pool.rollback();
        return err(full);
      }
      r.pool.commit();
      // vmap_try_huge_pmd over a kept table: pmd_free_pte_page flushes one page first (as map does).
      if (this.host.mutant !== 'table-freed-before-purge') this.host.flushRanges(r.replacedAt.map((v) => ({ vpn: v, pages: 1 })));
      const mapped = this.pool.takeBackLinux(back);
      if (!mapped.ok) return mapped;
      facts.free.remove(pfn, pages);
      facts.data.add(pfn, pages, true);
    } else {
      r.begin();
      const staged = back.length > 0 ? this.pool.stageTakeBack(back) : undefined;
      // The frames are the area's before the policy looks: no free frame is mapped (D4).
      facts.free.remove(pfn, pages);
      facts.data.add(pfn, pages, true);
      this.host.install(vpn, pfn, pages, KERNEL_CODE, maxPage);
      r.freeReplaced();
      const done = this.host.finish('vmalloc', {
        flushed: [],
        touched: [{ vpn, pages }, ...(staged?.touched ?? [])],
        ...(staged === undefined ? {} : { frames: staged.frames, owe: staged.owe }),
        undo: () => {
          facts.data.remove(pfn, pages);
          facts.free.add(pfn, pages, true);
          staged?.undo();
        },
      });
      if (!done.ok) return done;
    }
    this.host.framesChanged();
    this.live.insert(Object.freeze({ vpn, pages, pfn, huge: opts.huge, resetPerms: opts.resetPerms }));
    return OK;
  }

  vfree(vpn: Vpn): Result<void> {
    const bad = validateVfree(this.host.config, vpn);
    if (bad) return err(bad);
    const area = this.live.startingAt(vpn);
    if (area === undefined) {
      // vfree's WARN(1, "Trying to vfree() nonexistent vm area"): the address it was given.
      if (this.host.profile === 'linux') this.host.log.print({ kind: 'vfree-nonexistent', vpn, pages: 1, pfn: 0 });
      return fail('ENOENT', 'vpn', `no live vmalloc area starts at ${vpnToHex(vpn)}`);
    }
    const done = this.host.profile === 'linux' ? this.unmapLinux(area) : this.unmapStrict(area);
    if (!done.ok) return done;
    // free_vmap_area_noflush: the VA waits on the purge list; the range is owed its flush.
    for (const o of this.host.debt({ vpn: area.vpn, pages: area.pages, reason: 'unmap' })) this.host.tlbs.owe(o.vpn, o.pages, o.reason);
    this.live.remove(area);
    this.lazy.insert(Object.freeze({ vpn: area.vpn, pages: area.pages, pfn: area.pfn }));
    if (area.resetPerms) this.resetPerms(area);
    // Strict flushes the area before its pages go (C1); linux leaves it to the purge. The
    // vfree-frees-before-flush mutant frees them first, its flush left to the purge too.
    else if (this.host.profile === 'strict' && this.host.mutant !== 'vfree-frees-before-flush') this.host.flushRanges([{ vpn: area.vpn, pages: area.pages }]);
    const facts = this.host.facts;
    facts.data.remove(area.pfn, area.pages);
    facts.free.add(area.pfn, area.pages, true);
    this.host.framesChanged();
    // free_vmap_area_noflush schedules drain_vmap_work past lazy_max_pages; ptspec runs it now.
    if (this.lazy.pages > lazyMaxPages(this.host.config.cpus)) this.purge();
    return OK;
  }

  vmUnmapAliases(): Result<void> {
    // _vm_unmap_aliases(ULONG_MAX, 0, 0): no vmap blocks, so the purge alone.
    this.purge();
    return OK;
  }

  /** The direct-map pages of the area's frames. */
  private directMap(area: VmallocArea): Range {
    return { vpn: this.pageOffset + area.pfn, pages: area.pages };
  }

  /**
   * Strict: the area's entries go (vunmap_range_noflush, its emptied tables pending), and
   * with VM_FLUSH_RESET_PERMS the frames' direct-map pages end as 4K PAGE_KERNEL leaves
   * (invalid, then default: written in the same operation, the flush between them is the
   * purge's after the commit), after the EPERM judged on the state before the free: D4 on
   * what maps the frames once the area no longer does, D6 unless the reset restores them,
   * D7 beside the area's pages and the direct map, C1; then the result of the rewrite is
   * judged as any operation's (finish).
   */
  private unmapStrict(area: VmallocArea): Result<void> {
    const { radix: r, facts, tlbs } = this.host;
    r.begin();
    r.unmapRange(area.vpn, area.vpn + area.pages);
    const broken = this.host.holdsLdt(area.pfn, area.pages)
      ? { id: 'D4', where: `at frames of ${vpnToHex(area.vpn)}: an LDT slot still maps one` }
      : freeingBreaks(r, facts, tlbs, area.pfn, area.pages, { restored: area.resetPerms, flushedFirst: area, stillTranslated: this.stillTranslated });
    if (broken !== null) {
      r.pool.rollback();
      return err(policyError('vfree' as MutatingOp, broken.id, broken.where));
    }
    const dm = this.directMap(area);
    if (area.resetPerms) {
      r.unmapRange(dm.vpn, dm.vpn + dm.pages);
      this.host.install(dm.vpn, area.pfn, area.pages, KERNEL_CODE, '4K');
    }
    // Its result is judged as any operation's (the isolation rules on what it rewrote), then the pool.
    return this.host.finish('vfree', { flushed: [], touched: area.resetPerms ? [area, dm] : [area] });
  }

  /** Linux's vunmap_range_noflush of the area: huge and bad entries whole, with the warnings; no table freed. */
  private unmapLinux(area: VmallocArea): Result<void> {
    const r = this.host.radix;
    r.begin();
    r.vunmapRange(area.vpn, area.vpn + area.pages, (kind, v, n, pfn) => this.host.log.print({ kind, vpn: v, pages: n, pfn }));
    r.pool.emptied.length = 0;
    r.pool.commit();
    return OK;
  }

  /**
   * vm_reset_perms after the area's unmap: set_direct_map_invalid_noflush of the frames,
   * the purge over the purge list and their direct-map range, then
   * set_direct_map_default_noflush. Strict wrote both steps' entries already (unmapStrict);
   * linux runs them through cpa.ts and ignores what they return.
   */
  private resetPerms(area: VmallocArea): void {
    const dm = this.directMap(area);
    const { facts, tlbs } = this.host;
    if (this.host.profile === 'linux') this.host.setDirectMapLinux(area.pfn, area.pages, false);
    else for (const o of this.host.debt({ ...dm, reason: 'setDirectMapInvalid' })) tlbs.owe(o.vpn, o.pages, o.reason);
    this.purge(dm);
    if (this.host.profile === 'linux') this.host.setDirectMapLinux(area.pfn, area.pages, true);
    else {
      facts.noDirectMap.remove(area.pfn, area.pages);
      tlbs.owe(dm.vpn, dm.pages, 'setDirectMapDefault');
    }
  }

  /**
   * __purge_vmap_area_lazy (with `extra`, _vm_unmap_aliases' range): when the purge list or
   * `extra` holds anything, one flush_tlb_kernel_range of [lowest start, highest end) of
   * them all (a flush_tlb_all above the ceiling), then the list is empty (purge_vmap_node
   * returns the VAs; the frames were freed at vfree).
   */
  private purge(extra?: Range): void {
    const first = this.lazy.first();
    const last = this.lazy.last();
    if (first === undefined && extra === undefined) return;
    const lo = Math.min(first?.vpn ?? Infinity, extra?.vpn ?? Infinity);
    const hi = Math.max(last === undefined ? -Infinity : last.vpn + last.pages, extra === undefined ? -Infinity : extra.vpn + extra.pages);
    this.host.flushRanges([{ vpn: lo, pages: hi - lo }]);
    this.lazy.clear();
  }
}
