/**
 * The linux profile's change_page_attr (spec/contracts/linux.ts) on the real tables:
 * __change_page_attr_set_clr's walk in steps, each on the entry (present leaf or
 * non-present entry) at the current page, with static_protections, verify_rwx,
 * __should_split_large_page's decision, __split_large_page and cpa_process_alias.
 *
 * It writes the tables as it goes and never rolls back, because the kernel does not:
 * an error leaves the steps before it done. Entries are handled as prot.ts entry codes
 * (prot code plus P_PRESENT; _PAGE_KERNEL_4K is P_KERNEL4K), so a mask is two bit
 * operations and "did the entry change" is one comparison. The A and D bits are not
 * modelled (linux.ts): entries keep the canonical encoding of their code, so a
 * comparison sees what the abstract state sees.
 *
 * Costs follow the entries a request meets: one lookup per step, one step per entry.
 */
import { kernelLayout, type Pfn, type Vpn } from '../spec/address.ts';
import type { KernelImage } from '../spec/contracts/linux.ts';
import type { SystemConfig } from '../spec/state.ts';
import type { KernelEvent } from '../spec/system.ts';
import * as x86 from './arch/x86_64/entry.ts';
import type { KernelLog } from './klog.ts';
import * as prot from './prot.ts';
import type { CodeChange } from './prot.ts';
import * as radixModule from './radix.ts';
import type { Radix } from './radix.ts';
import * as tables from './tables.ts';

// Module-local copies: imported bindings are live (a getter per use once transpiled).
const { _PAGE_PRESENT } = x86;
const { P_EXEC, P_GLOBAL, P_PRESENT, P_WRITE, leafCode } = prot;
const { leafPfn } = radixModule;
const { SPAN } = tables;

export type CpaError = 'EFAULT' | 'ENOMEM';

/** What the walk needs from the system around it. */
export interface CpaHost {
  /** Whether a split can have a page table (split_large_page's alloc_pages). */
  tableAvailable(): boolean;
  /** flush_tlb_all, as __split_large_page does after every split. */
  flushTlbAll(): void;
}

/** How a request ended: the first error, and what change_page_attr_set_clr's flush decision reads. */
export interface CpaOutcome {
  readonly error: CpaError | null;
  /** CPA_FLUSHTLB of the primary walk: it wrote an entry. */
  readonly flushTlb: boolean;
  /** force_flush_all: an alias was processed. */
  readonly forceFlushAll: boolean;
}

/** struct cpa_data. An alias walk runs on a copy, so what it marks stays in the copy. */
interface CpaData {
  readonly vpn: Vpn;
  readonly pages: number;
  readonly masks: CodeChange;
  /** cpa->pfn: the first frame of the last step (0 before the first). */
  pfn: Pfn;
  flushTlb: boolean;
  forceFlushAll: boolean;
  forceStaticProt: boolean;
}

/** static_protections' warning levels (enum cpa_warn); cpa_warn_level prints conflict and protect. */
const CPA_CONFLICT = 0;
const CPA_PROTECT = 1;
const CPA_DETECT = 2;

/** __should_split_large_page's "split it" answer; any other answer is the pages the step covered. */
const SPLIT = 0;

/** pgprot_clear_protnone_bits: a non-present entry has no G (it would read as _PAGE_PROTNONE). */
function clearProtnone(code: number): number {
  return code & P_PRESENT ? code : code & ~P_GLOBAL;
}

const overlaps = (start: number, n: number, lo: number, hi: number): boolean => start < hi && lo < start + n;

export class ChangePageAttr {
  private readonly pageOffset: Vpn;
  private readonly kernelText: Vpn;

  constructor(
    private readonly radix: Radix,
    private readonly config: SystemConfig,
    private readonly image: KernelImage | undefined,
    private readonly log: KernelLog,
    private readonly host: CpaHost,
  ) {
    const layout = kernelLayout(config.levels);
    this.pageOffset = layout.pageOffset;
    this.kernelText = layout.kernelText;
  }

  /** change_page_attr_set_clr's walk over [vpn, vpn+pages) (`checkAlias` false: CPA_NO_CHECK_ALIAS). */
  run(vpn: Vpn, pages: number, masks: CodeChange, checkAlias: boolean): CpaOutcome {
    // change_page_attr_set_clr's "No changes, easy!": no mask and no force_split. Only the
    // request is tested: an alias walk (__change_page_attr_set_clr) runs whatever its masks.
    if (masks.empty) return { error: null, flushTlb: false, forceFlushAll: false };
    const cpa: CpaData = { vpn, pages, masks, pfn: 0, flushTlb: false, forceFlushAll: false, forceStaticProt: false };
    const error = this.changePageAttrSetClr(cpa, true, checkAlias);
    return { error, flushTlb: cpa.flushTlb, forceFlushAll: cpa.forceFlushAll };
  }

  /** __change_page_attr_set_clr: step by step from the first page, the aliases after each primary step. */
  private changePageAttrSetClr(cpa: CpaData, primary: boolean, checkAlias: boolean): CpaError | null {
    let at = cpa.vpn;
    for (let rem = cpa.pages; rem > 0; ) {
      const step = this.changePageAttr(cpa, at, rem, primary);
      if (typeof step !== 'number') return step;
      if (primary && checkAlias) {
        const error = this.processAlias(cpa, at, step);
        if (error !== null) return error;
      }
      rem -= step;
      at += step;
    }
    return null;
  }

  /** __change_page_attr: one step at `at`; the pages it covered, or the error. Repeats after a split. */
  private changePageAttr(cpa: CpaData, at: Vpn, rem: number, primary: boolean): number | CpaError {
    const r = this.radix;
    for (;;) {
      if (!r.lookupEntry(at)) return this.processFault(cpa, at, primary);
      const { hitSlot: slot, hitIdx: idx, hitLevel: level } = r;
      if (level === 1) return this.changeSmall(cpa, slot, idx);
      // should_split_large_page: with force_split (set_memory_4k) every large entry splits,
      // without __should_split_large_page's conflict and keep tests, so the walk ends on 4K entries.
      if (!cpa.masks.forceSplit) {
        const step = this.shouldSplitLargePage(cpa, slot, idx, level, at, rem);
        if (step !== SPLIT) return step;
      }
      if (!this.host.tableAvailable()) return 'ENOMEM';
      this.splitLargePage(cpa, slot, idx, level);
    }
  }

  /** The CPA code and frame of the entry at (slot, idx). */
  private entry(slot: number, idx: number, level: number): { code: number; pfn: Pfn } {
    const w = this.radix.pool.words;
    const lo = w[slot * 1024 + idx * 2]!;
    const hi = w[slot * 1024 + idx * 2 + 1]!;
    return { code: leafCode(lo, hi, level > 1, true, true, false) | (lo & _PAGE_PRESENT ? P_PRESENT : 0), pfn: leafPfn(lo, hi, level) };
  }

  private write(slot: number, idx: number, level: number, pfn: Pfn, code: number): void {
    this.radix.writeLeaf(slot, idx, level, pfn, code & ~P_PRESENT, (code & P_PRESENT) !== 0);
  }

  /** The 4K path of __change_page_attr: masks, static protections, verify_rwx, write if it differs. */
  private changeSmall(cpa: CpaData, slot: number, idx: number): number {
    const vpn = this.radix.entryVpn(slot, idx);
    const old = this.entry(slot, idx, 1);
    let next = this.staticProtections(cpa.masks.apply(old.code), vpn, old.pfn, 1, 0, CPA_PROTECT, 1);
    this.verifyRwx(old.code, next, vpn, old.pfn, 1);
    next = clearProtnone(next);
    cpa.pfn = old.pfn;
    if (next !== old.code) {
      this.write(slot, idx, 1, old.pfn, next);
      cpa.flushTlb = true;
    }
    return 1;
  }

  /**
   * __should_split_large_page on the 2M/1G entry at (slot, idx): SPLIT, or the pages of
   * the step (min(rem, pages to its end)) after keeping it or writing it whole.
   */
  private shouldSplitLargePage(cpa: CpaData, slot: number, idx: number, level: number, at: Vpn, rem: number): number {
    const span = SPAN[level as 2]!;
    const base = this.radix.entryVpn(slot, idx);
    const n = Math.min(rem, base + span - at);
    const old = this.entry(slot, idx, level);
    cpa.pfn = old.pfn + (at - base);
    // An existing large page that breaks a static protection is split with fix-ups.
    if (this.staticProtections(old.code, base, old.pfn, span, span, CPA_CONFLICT, level) !== old.code) {
      this.log.printOnce({ kind: 'conflict', vpn: base, pages: span, pfn: old.pfn });
      cpa.forceStaticProt = true;
      return SPLIT;
    }
    const wanted = clearProtnone(cpa.masks.apply(old.code));
    if (wanted === old.code) return n;
    if (at !== base || n !== span) return SPLIT;
    const allowed = this.staticProtections(wanted, base, old.pfn, span, span, CPA_DETECT, level);
    this.verifyRwx(old.code, allowed, base, old.pfn, span);
    if (allowed !== wanted) return SPLIT;
    this.write(slot, idx, level, old.pfn, wanted);
    cpa.flushTlb = true;
    return n;
  }

  /**
   * split_large_page: 512 entries of the next size with the same prot (radix.ts
   * splitEntry), then, after a conflict, split_set_pte's fix-ups, then flush_tlb_all.
   */
  private splitLargePage(cpa: CpaData, slot: number, idx: number, level: number): void {
    const base = this.radix.entryVpn(slot, idx);
    const large = this.entry(slot, idx, level);
    const child = this.radix.splitEntry(slot, idx);
    if (cpa.forceStaticProt && large.code & P_PRESENT) {
      const step = SPAN[(level - 1) as 1]!;
      for (let i = 0; i < 512; i++) {
        const pfn = large.pfn + i * step;
        // The new table is not installed yet when split_set_pte runs: lookup_address still finds the large entry.
        const fixed = this.staticProtections(large.code, base + i * step, pfn, step, 0, CPA_PROTECT, level);
        if (fixed === large.code) continue;
        if (level === 2) this.write(child, i, 1, pfn, fixed);
        // A 2M entry keeps the forbidden bit; pr_warn_once prints at the first such entry, between its lines and the next.
        else this.log.printOnce({ kind: 'pud-fixup', vpn: base, pages: SPAN[level as 3]!, pfn: large.pfn });
      }
    }
    this.host.flushTlbAll();
  }

  /** __cpa_process_fault: a page with no entry. */
  private processFault(cpa: CpaData, at: Vpn, primary: boolean): number | CpaError {
    if (!primary) return 1;
    // The direct map is expected to have holes: skip the page, its frame is the step's.
    if (this.inDirectMap(at)) {
      cpa.pfn = at - this.pageOffset;
      return 1;
    }
    // Faults just after the high map's frames are expected (its range is imprecise): no warning.
    if (!this.inHighmapFrames(cpa.pfn)) this.log.print({ kind: 'zero-pte', vpn: at, pages: 1, pfn: cpa.pfn });
    return 'EFAULT';
  }

  /**
   * cpa_process_alias after a primary step of `pages` pages at `at` (cpa.pfn its first
   * frame): the direct-map alias (its error stops the primary walk) and the high-map
   * alias (its error ignored), each with NX taken out of the masks.
   */
  private processAlias(cpa: CpaData, at: Vpn, pages: number): CpaError | null {
    const pfn = cpa.pfn;
    if (pfn >= this.config.frames) return null;
    const masks = cpa.masks.withoutExec();
    if (!this.inDirectMap(at)) {
      cpa.forceFlushAll = true;
      const error = this.changePageAttrSetClr({ ...cpa, vpn: this.pageOffset + pfn, pages, masks }, false, false);
      if (error !== null) return error;
    }
    const img = this.image;
    if (img !== undefined && !(at >= img.textStart && at < img.imageEnd) && this.inHighmapFrames(pfn)) {
      cpa.forceFlushAll = true;
      this.changePageAttrSetClr({ ...cpa, vpn: this.kernelText + pfn, pages, masks }, false, false);
    }
    return null;
  }

  private inDirectMap(vpn: Vpn): boolean {
    return vpn >= this.pageOffset && vpn < this.pageOffset + this.config.frames;
  }

  /** __cpa_pfn_in_highmap. */
  private inHighmapFrames(pfn: Pfn): boolean {
    const img = this.image;
    return img !== undefined && pfn >= img.highmapPfn && pfn < img.highmapPfnEnd;
  }

  /**
   * static_protections on CPA code `code` for the pages [start, start+npg) mapping the
   * frames from pfn, large-page size lpsize (0: enforce on a 4K entry); `levelAtStart` is
   * the level of the entry lookup_address finds at start (protect_kernel_text_ro's test).
   * A non-present code passes unchanged. At CPA_CONFLICT and CPA_PROTECT, each rule that
   * removes a bit the code has is printed (check_conflict).
   */
  private staticProtections(code: number, start: Vpn, pfn: Pfn, npg: number, lpsize: number, level: number, levelAtStart: number): number {
    const img = this.image;
    if (!(code & P_PRESENT) || img === undefined) return code;
    let out = code;
    const print = (rule: NonNullable<KernelEvent['rule']>): void => {
      if (level <= CPA_PROTECT) this.log.print({ kind: 'static-protection', rule, vpn: start, pages: npg, pfn });
    };
    // Text NX: the high-map text is where the kernel executes.
    if (overlaps(start, npg, img.textStart, img.textEnd)) {
      if (!(code & P_EXEC)) print('Text NX');
      out |= P_EXEC;
    }
    // Text RO, except for exactly one aligned large page (ftrace) and over 4K entries.
    const wholeLargePage = lpsize !== 0 && lpsize === npg && start % lpsize === 0;
    if (!wholeLargePage && levelAtStart > 1 && overlaps(start, npg, img.textStart, img.rodataHpageEnd)) {
      if (code & P_WRITE) print('Text RO');
      out &= ~P_WRITE;
    }
    // Rodata RO, by frame: every alias.
    if (overlaps(pfn, npg, img.rodataPfn, img.rodataPfnEnd)) {
      if (code & P_WRITE) print('Rodata RO');
      out &= ~P_WRITE;
    }
    return out;
  }

  /** verify_rwx: warn once per boot when RW or NX changed into a writable, executable prot. */
  private verifyRwx(old: number, next: number, start: Vpn, pfn: Pfn, npg: number): void {
    const wx = P_WRITE | P_EXEC;
    if (((old ^ next) & wx) === 0 || (next & wx) !== wx) return;
    this.log.printOnce({ kind: 'wx', vpn: start, pages: npg, pfn });
  }
}
