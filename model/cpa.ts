/**
 * The linux profile's change_page_attr (spec/contracts/linux.ts), on the model's entries:
 * the walk of __change_page_attr_set_clr, step by step, with static_protections,
 * verify_rwx, the large-page decision of __should_split_large_page, split_large_page and
 * cpa_process_alias. It mutates the host's entries as it goes, because the kernel does:
 * an error leaves the steps before it done.
 */
import { PAGES, kernelLayout, type Pfn, type Vpn } from '../spec/address.ts';
import { isDirectMapVpn } from '../spec/contracts/directmap.ts';
import type { KernelImage } from '../spec/contracts/linux.ts';
import type { Errno } from '../spec/errors.ts';
import { protEquals, type CacheMode, type Leaf, type Prot, type SystemConfig } from '../spec/state.ts';
import type { KernelEvent } from '../spec/system.ts';
import { nextSizeDown } from './hugepage.ts';
import { applyProtChange } from './protect.ts';

/** A page-table entry that is not zero: a leaf, or a non-present entry that keeps its frame. */
export interface Entry extends Leaf {
  readonly present: boolean;
}

/**
 * CPA's mask_set / mask_clr, as the abstract fields they set (absent: untouched), and
 * cpa->force_split. Both are struct cpa_data fields, so an alias walk copies them.
 */
export interface Masks {
  readonly write?: boolean;
  readonly exec?: boolean;
  readonly global?: boolean;
  readonly cache?: CacheMode;
  readonly present?: boolean;
  /** _PAGE_KERNEL_4K in mask_set: only ever set. */
  readonly kernel4k?: true;
  /** force_split (set_memory_4k): split every large entry met, without __should_split_large_page's tests. */
  readonly forceSplit?: true;
}

/** What the walk needs from the system it runs on. */
export interface CpaHost {
  readonly config: SystemConfig;
  readonly image: KernelImage | undefined;
  /** Sorted by vpn, disjoint; the walk replaces entries in place. */
  readonly entries: Entry[];
  /** Take one table for a split, or false when the pool has none left. */
  takeTable(): boolean;
  /** flush_tlb_all. */
  flushAll(): void;
  /** Print `e`; a WARN_ONCE / pr_warn_once kind prints only the first time per boot. */
  emit(e: KernelEvent, once: boolean): void;
}

/** One CPA request (struct cpa_data): copied for an alias walk, so flags set there stay there. */
interface Request {
  readonly vpn: Vpn;
  readonly pages: number;
  readonly masks: Masks;
  readonly checkAlias: boolean;
  /** cpa->pfn: the frame of the last step (0 before the first). */
  pfn: Pfn;
  /** CPA_FLUSHTLB: this walk wrote an entry. */
  changed: boolean;
  forceFlushAll: boolean;
  forceStaticProt: boolean;
}

type Step = { readonly pages: number } | { readonly error: Errno };

/** change_page_attr_set_clr's early return: no mask and no force_split (a forceSplit key counts). */
const masksEmpty = (m: Masks): boolean => Object.values(m).every((v) => v === undefined);

/** An alias walk's masks (alias_cpa = *cpa): NX out of both, everything else (kernel4k, force_split) copied. */
function withoutNx(m: Masks): Masks {
  const { exec: _exec, ...rest } = m;
  return rest;
}

const overlaps = (a: number, n: number, lo: number, hi: number): boolean => a < hi && lo < a + n;

/** The entry containing vpn, by binary search over the sorted entries. */
function entryIndex(entries: readonly Entry[], vpn: Vpn): number {
  let lo = 0;
  let hi = entries.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (entries[mid]!.vpn + PAGES[entries[mid]!.size] <= vpn) lo = mid + 1;
    else hi = mid;
  }
  const e = entries[lo];
  return e !== undefined && e.vpn <= vpn ? lo : -1;
}

interface Masked {
  readonly prot: Prot;
  readonly present: boolean;
}

function applyMasks(e: Entry, m: Masks): Masked {
  const change = {
    ...(m.write === undefined ? {} : { write: m.write }),
    ...(m.exec === undefined ? {} : { exec: m.exec }),
    ...(m.global === undefined ? {} : { global: m.global }),
    ...(m.cache === undefined ? {} : { cache: m.cache }),
    ...(m.kernel4k === undefined ? {} : { kernel4k: m.kernel4k }),
  };
  return { prot: applyProtChange(e.prot, change), present: m.present ?? e.present };
}

/** pgprot_clear_protnone_bits: a non-present entry has no G. */
const clearProtnone = (p: Masked): Masked => (p.present || !p.prot.global ? p : { present: false, prot: { ...p.prot, global: false } });

const sameMasked = (a: Masked, b: Masked): boolean => a.present === b.present && protEquals(a.prot, b.prot);

type Level = 'conflict' | 'protect' | 'detect';

export class Cpa {
  private readonly pageOffset: Vpn;
  private readonly kernelText: Vpn;

  constructor(private readonly host: CpaHost) {
    const L = kernelLayout(host.config.levels);
    this.pageOffset = L.pageOffset;
    this.kernelText = L.kernelText;
  }

  /**
   * change_page_attr_set_clr's walk over [vpn, vpn+pages): the first error or null, and
   * whether the primary walk wrote anything and whether an alias forces a full flush.
   */
  run(vpn: Vpn, pages: number, masks: Masks, checkAlias: boolean): { error: Errno | null; changed: boolean; forceFlushAll: boolean } {
    const req: Request = { vpn, pages, masks, checkAlias, pfn: 0, changed: false, forceFlushAll: false, forceStaticProt: false };
    const error = this.walk(req, true);
    return { error, changed: req.changed, forceFlushAll: req.forceFlushAll };
  }

  /** __change_page_attr_set_clr. */
  private walk(req: Request, primary: boolean): Errno | null {
    if (masksEmpty(req.masks)) return null;
    let at = req.vpn;
    let rem = req.pages;
    while (rem > 0) {
      const step = this.changeOne(req, at, rem, primary);
      if ('error' in step) return step.error;
      if (primary && req.checkAlias) {
        const error = this.processAlias(req, at, step.pages);
        if (error !== null) return error;
      }
      rem -= step.pages;
      at += step.pages;
    }
    return null;
  }

  /** __change_page_attr: one step at `at`, repeated after a split. */
  private changeOne(req: Request, at: Vpn, rem: number, primary: boolean): Step {
    for (;;) {
      const i = entryIndex(this.host.entries, at);
      if (i < 0) return this.fault(req, at, primary);
      const e = this.host.entries[i]!;
      if (e.size === '4K') return this.changeSmall(req, i, e);
      // should_split_large_page: force_split splits at once, then the step starts again.
      if (req.masks.forceSplit === true) {
        const error = this.splitLarge(req, i, e);
        if (error !== null) return { error };
        continue;
      }
      const n = Math.min(rem, e.vpn + PAGES[e.size] - at);
      req.pfn = e.pfn + (at - e.vpn);
      const decision = this.largeDecision(req, e, at, n);
      if (decision === 'keep') return { pages: n };
      if (decision !== 'split') {
        this.host.entries[i] = { ...e, prot: decision.prot, present: decision.present };
        req.changed = true;
        return { pages: n };
      }
      const error = this.splitLarge(req, i, e);
      if (error !== null) return { error };
    }
  }

  /** The 4K path of __change_page_attr. */
  private changeSmall(req: Request, i: number, e: Entry): Step {
    let next = applyMasks(e, req.masks);
    if (next.present) next = { ...next, prot: this.staticProtections(next.prot, e.vpn, 1, e.pfn, 0, 'protect') };
    this.verifyRwx(e, next, e.vpn, 1, e.pfn);
    next = clearProtnone(next);
    req.pfn = e.pfn;
    if (!sameMasked(next, e)) {
      this.host.entries[i] = { ...e, prot: next.prot, present: next.present };
      req.changed = true;
    }
    return { pages: 1 };
  }

  /** __should_split_large_page: keep it as is, write it whole, or split. */
  private largeDecision(req: Request, e: Entry, at: Vpn, n: number): 'keep' | 'split' | Masked {
    const size = PAGES[e.size];
    const wanted = clearProtnone(applyMasks(e, req.masks));
    if (e.present && !protEquals(this.staticProtections(e.prot, e.vpn, size, e.pfn, size, 'conflict'), e.prot)) {
      this.host.emit({ kind: 'conflict', vpn: e.vpn, pages: size, pfn: e.pfn }, true);
      req.forceStaticProt = true;
      return 'split';
    }
    if (sameMasked(wanted, e)) return 'keep';
    if (at !== e.vpn || n !== size) return 'split';
    const allowed = wanted.present ? { ...wanted, prot: this.staticProtections(wanted.prot, e.vpn, size, e.pfn, size, 'detect') } : wanted;
    this.verifyRwx(e, allowed, e.vpn, size, e.pfn);
    return sameMasked(allowed, wanted) ? wanted : 'split';
  }

  /** split_large_page / __split_large_page: 512 entries of the next size, then flush_tlb_all. */
  private splitLarge(req: Request, i: number, e: Entry): Errno | null {
    if (!this.host.takeTable()) return 'ENOMEM';
    const size = nextSizeDown(e.size)!;
    const n = PAGES[size];
    const ref = clearProtnone({ prot: e.prot, present: e.present });
    const children: Entry[] = [];
    for (let k = 0; k < 512; k++) {
      const vpn = e.vpn + k * n;
      const pfn = e.pfn + k * n;
      let prot = ref.prot;
      if (req.forceStaticProt && ref.present) {
        // split_set_pte: the table is not installed yet, so lookup_address still sees the large entry.
        const fixed = this.staticProtections(prot, vpn, n, pfn, 0, 'protect', e.size);
        if (!protEquals(fixed, prot)) {
          if (size === '4K') prot = fixed;
          else this.host.emit({ kind: 'pud-fixup', vpn: e.vpn, pages: PAGES[e.size], pfn: e.pfn }, true);
        }
      }
      children.push({ vpn, pfn, size, prot, present: ref.present });
    }
    this.host.entries.splice(i, 1, ...children);
    this.host.flushAll();
    return null;
  }

  /** __cpa_process_fault: a page with no entry. */
  private fault(req: Request, at: Vpn, primary: boolean): Step {
    if (!primary) return { pages: 1 };
    if (isDirectMapVpn(this.host.config, at)) {
      req.pfn = at - this.pageOffset;
      return { pages: 1 };
    }
    if (!this.inHighmapFrames(req.pfn)) this.host.emit({ kind: 'zero-pte', vpn: at, pages: 1, pfn: req.pfn }, false);
    return { error: 'EFAULT' };
  }

  /** cpa_process_alias, after a primary step of `pages` pages at `at` (req.pfn is its frame). */
  private processAlias(req: Request, at: Vpn, pages: number): Errno | null {
    const pfn = req.pfn;
    if (pfn >= this.host.config.frames) return null;
    if (!isDirectMapVpn(this.host.config, at)) {
      req.forceFlushAll = true;
      const error = this.walk({ ...req, vpn: this.pageOffset + pfn, pages, masks: withoutNx(req.masks) }, false);
      if (error !== null) return error;
    }
    const img = this.host.image;
    if (img !== undefined && !(at >= img.textStart && at < img.imageEnd) && this.inHighmapFrames(pfn)) {
      req.forceFlushAll = true;
      // The high-map range is imprecise, so the kernel ignores this walk's error.
      this.walk({ ...req, vpn: this.kernelText + pfn, pages, masks: withoutNx(req.masks) }, false);
    }
    return null;
  }

  private inHighmapFrames(pfn: Pfn): boolean {
    const img = this.host.image;
    return img !== undefined && pfn >= img.highmapPfn && pfn < img.highmapPfnEnd;
  }

  /**
   * static_protections on a present prot for [start, start+npg) from frame pfn, lpsize
   * pages (0 for a 4K entry). `entrySize` is the size of the entry lookup_address finds
   * at start now (protect_kernel_text_ro's test), when the caller knows it differs from
   * what the entries say.
   */
  private staticProtections(prot: Prot, start: Vpn, npg: number, pfn: Pfn, lpsize: number, level: Level, entrySize?: Leaf['size']): Prot {
    const img = this.host.image;
    if (img === undefined) return prot;
    let out = prot;
    const print = (rule: NonNullable<KernelEvent['rule']>): void => {
      if (level !== 'detect') this.host.emit({ kind: 'static-protection', rule, vpn: start, pages: npg, pfn }, false);
    };
    if (overlaps(start, npg, img.textStart, img.textEnd)) {
      if (!prot.execKernel) print('Text NX');
      out = applyProtChange(out, { exec: true });
    }
    const wholeLarge = lpsize === npg && start % lpsize === 0;
    const sizeNow = this.sizeAt(start, entrySize);
    if (!wholeLarge && overlaps(start, npg, img.textStart, img.rodataHpageEnd) && sizeNow !== undefined && sizeNow !== '4K') {
      if (prot.write) print('Text RO');
      out = applyProtChange(out, { write: false });
    }
    if (overlaps(pfn, npg, img.rodataPfn, img.rodataPfnEnd)) {
      if (prot.write) print('Rodata RO');
      out = applyProtChange(out, { write: false });
    }
    return out;
  }

  private sizeAt(vpn: Vpn, known: Leaf['size'] | undefined): Leaf['size'] | undefined {
    if (known !== undefined) return known;
    const i = entryIndex(this.host.entries, vpn);
    return i < 0 ? undefined : this.host.entries[i]!.size;
  }

  /** verify_rwx: warn (once per boot) when RW or NX changed into a writable, executable prot. */
  private verifyRwx(old: Entry, next: Masked, start: Vpn, npg: number, pfn: Pfn): void {
    const changed = old.prot.write !== next.prot.write || old.prot.execKernel !== next.prot.execKernel;
    if (changed && next.prot.write && next.prot.execKernel) this.host.emit({ kind: 'wx', vpn: start, pages: npg, pfn }, true);
  }
}
