/**
 * The clients that walk init_mm's tables themselves (spec/contracts/clients.ts):
 * apply_to_page_range with a populate callback (mm/memory.c, gregkh/linux bb1d93ee:
 * __apply_to_page_range with create, apply_to_pmd_range's WARN_ON_ONCE(pmd_leaf)) and
 * walk_kernel_page_table_range (mm/pagewalk.c: walk_pgd_range .. walk_pte_range, with its
 * pte_hole, p?d_entry and pte_entry callbacks), both on the real radix tables.
 *
 * apply goes one 2M block at a time in address order, down to the block's PTE table
 * (radix.ts applyTableFor allocates what is missing), and sets every none PTE of the block
 * (kasan_populate_vmalloc_pte leaves a set one alone). Strict refuses a range that meets
 * a large entry before anything changes; linux stops at it, keeping what it did before.
 *
 * The walk visits only what the range meets: a table the walk cannot reach is not walked,
 * so a table an unmap left pending (strict: unlinked) is a hole.
 */
import { vpnToHex, type Pfn, type Vpn } from '../spec/address.ts';
import { validateApply, validateWalk } from '../spec/contracts/clients.ts';
import { OK, fail, ok, type PtError, type Result } from '../spec/errors.ts';
import type { Prot } from '../spec/state.ts';
import type { WalkVisit } from '../spec/system.ts';
import * as x86 from './arch/x86_64/entry.ts';
import type { ClientsHost } from './clients.ts';
import { protCode } from './prot.ts';
import { leafPfn, tableIndex, type ApplyStop } from './radix.ts';
import { SPAN, isLeafAt } from './tables.ts';

const { _PAGE_PRESENT } = x86;
const err = (e: PtError): Result<never> => ({ ok: false, error: e });
const PMD_PAGES = SPAN[2];

export class PageWalk {
  constructor(private readonly host: ClientsHost) {}

  applyToPageRange(vpn: Vpn, pages: number, pfn: Pfn, prot: Prot): Result<void> {
    const { config, radix: r } = this.host;
    const bad = validateApply(config, vpn, pages, pfn, prot);
    if (bad) return err(bad);
    const code = protCode(prot);
    const end = vpn + pages;
    const pool = r.pool;
    if (this.host.profile === 'strict') {
      const large = this.firstLarge(vpn, end, r.root, config.levels);
      if (large >= 0) return fail('EINVAL', 'vpn', `${vpnToHex(vpn)} (+${pages} pages) meets a large entry at ${vpnToHex(large)}: apply_to_page_range does not support huge mappings`);
      r.begin();
      // The whole range is written, past the pool if it must be, as map does: the policy
      // judges every leaf (EPERM before ENOMEM), then finish's ENOMEM, and a refusal rolls it all back.
      this.populate(vpn, end, pfn, code, () => true);
      return this.host.finish('applyToPageRange', { flushed: [], touched: [{ vpn, pages }] });
    }
    // Linux: not atomic, the tables allocated and the PTEs set before an error stay.
    r.begin();
    const stop = this.populate(vpn, end, pfn, code, () => pool.inUse < config.tablePool.count);
    pool.emptied.length = 0;
    pool.commit();
    if (stop === 'huge') {
      const span = SPAN[r.hitLevel as 2]!;
      this.host.log.printOnce({ kind: 'apply-huge', vpn: r.entryVpn(r.hitSlot, r.hitIdx), pages: span, pfn: r.leafPfnAt(r.hitSlot, r.hitIdx) });
      return fail('EINVAL', 'vpn', `apply_to_page_range met a large entry in ${vpnToHex(vpn)} (+${pages} pages) (WARN_ON_ONCE(pmd_leaf)); the pages before it stay set`);
    }
    if (stop === 'nomem') return fail('ENOMEM', 'tablePool', `no page table left for ${vpnToHex(vpn)} (+${pages} pages); the pages before stay set`);
    return OK;
  }

  /**
   * The first page of a large entry (a 2M/1G leaf or a non-present large entry) meeting
   * [lo, hi) under table `slot` at `level`, or -1; the descent stops at the PMD tables.
   * The apply-writes-through-huge-leaf mutant does not see a present 2M leaf as one.
   */
  private firstLarge(lo: Vpn, hi: Vpn, slot: number, level: number): number {
    const { radix: r } = this.host;
    const w = r.pool.words;
    for (let i = tableIndex(lo, level), last = tableIndex(hi - 1, level); i <= last; i++) {
      const e = w[slot * 1024 + i * 2]!;
      const eh = w[slot * 1024 + i * 2 + 1]!;
      if ((e | eh) === 0) continue;
      const ev = r.entryVpn(slot, i);
      if (!(e & _PAGE_PRESENT) || isLeafAt(e, level)) {
        if (level === 2 && (e & _PAGE_PRESENT) !== 0 && this.host.mutant === 'apply-writes-through-huge-leaf') continue;
        return Math.max(ev, lo);
      }
      if (level > 2) {
        const found = this.firstLarge(Math.max(lo, ev), Math.min(hi, ev + SPAN[level as 2]!), r.pool.childSlot(e, eh), level - 1);
        if (found >= 0) return found;
      }
    }
    return -1;
  }

  /**
   * Every none PTE of [lo, hi) set to frame pfn + (page - lo) with `code`, one 2M block at a
   * time, the tables allocated as `mayAlloc` allows; why it stopped, or null.
   */
  private populate(lo: Vpn, hi: Vpn, pfn: Pfn, code: number, mayAlloc: () => boolean): ApplyStop | null {
    const r = this.host.radix;
    const w = r.pool.words;
    for (let a = lo; a < hi; ) {
      const b = Math.min(hi, a - (a % PMD_PAGES) + PMD_PAGES);
      const slot = r.applyTableFor(a, mayAlloc);
      if (slot === -1 && r.applyStop !== null) return r.applyStop;
      // The apply-writes-through-huge-leaf mutant's "table" is whatever frame the leaf maps:
      // only one the pool holds as a table is written (a data frame's contents are not simulated).
      const writable = slot >= 0 && slot < r.pool.capacity && r.pool.allocated[slot] === 1;
      for (let p = a; writable && p < b; p++) {
        const idx = p % 512;
        if ((w[slot * 1024 + idx * 2]! | w[slot * 1024 + idx * 2 + 1]!) === 0) r.writeLeaf(slot, idx, 1, pfn + (p - lo), code, true);
      }
      a = b;
    }
    return null;
  }

  walkPageRange(vpn: Vpn, pages: number): Result<readonly WalkVisit[]> {
    const { config, radix: r } = this.host;
    const bad = validateWalk(config, vpn, pages);
    if (bad) return err(bad);
    const out: WalkVisit[] = [];
    // The walker-follows-pending-table mutant walks the tables pending free as if still
    // linked from the (now none) entry that held them.
    let pending: Map<number, number> | null = null;
    if (this.host.mutant === 'walker-follows-pending-table' && this.host.profile === 'strict' && r.pool.pending.length > 0) {
      pending = new Map(r.pool.pending.map((s) => [r.pool.parentSlot[s]! * 512 + r.pool.parentIdx[s]!, s]));
    }
    this.visit(out, pending, r.root, config.levels, vpn, vpn + pages);
    return ok(out);
  }

  /**
   * walk_p?d_range over [lo, hi) of table `slot` at `level`: each entry clipped to the
   * range, a none one a hole (pte_hole) above PTE level and part of a run of none PTEs at
   * it, a large or non-present entry visited and not descended, a table entry visited and
   * descended.
   */
  private visit(out: WalkVisit[], pending: Map<number, number> | null, slot: number, level: number, lo: Vpn, hi: Vpn): void {
    const r = this.host.radix;
    const pool = r.pool;
    const w = pool.words;
    const span = SPAN[level as 1]!;
    const L = level as WalkVisit['level'];
    let none: { vpn: Vpn; pages: number } | null = null;
    const endRun = (): void => {
      if (none !== null) out.push({ kind: 'none', level: 1, vpn: none.vpn, pages: none.pages });
      none = null;
    };
    for (let i = tableIndex(lo, level), last = tableIndex(hi - 1, level); i <= last; i++) {
      const ev = r.entryVpn(slot, i);
      const a = Math.max(lo, ev);
      const b = Math.min(hi, ev + span);
      const e = w[slot * 1024 + i * 2]!;
      const eh = w[slot * 1024 + i * 2 + 1]!;
      if ((e | eh) === 0) {
        const followed = pending?.get(slot * 512 + i);
        if (followed !== undefined) {
          endRun();
          out.push({ kind: 'table', level: L, vpn: a, pages: b - a });
          this.visit(out, pending, followed, level - 1, a, b);
        } else if (level === 1) {
          if (none === null) none = { vpn: a, pages: 0 };
          none.pages += b - a;
        } else out.push({ kind: 'hole', level: L, vpn: a, pages: b - a });
        continue;
      }
      endRun();
      const present = (e & _PAGE_PRESENT) !== 0;
      if (level === 1 || !present || isLeafAt(e, level)) {
        out.push({ kind: present ? 'leaf' : 'nonpresent', level: L, vpn: a, pages: b - a, pfn: leafPfn(e, eh, level) + (a - ev) });
        continue;
      }
      out.push({ kind: 'table', level: L, vpn: a, pages: b - a });
      const child = pool.childSlot(e, eh);
      if (child >= 0 && child < pool.capacity) this.visit(out, pending, child, level - 1, a, b);
    }
    endRun();
  }
}
