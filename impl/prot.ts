/**
 * Protections as small integer codes, so the hot path compares and indexes numbers
 * instead of Prot objects: bit 0 write, bit 1 user, bit 2 execKernel, bit 3 global,
 * bit 4 kernel4k (_PAGE_KERNEL_4K), bits 5..7 the index of the cache mode in CACHE_MODES.
 * execUser is implied (user && execKernel) because x86 has a single NX bit
 * (x86Representable).
 *
 * Each code has its leaf flag bits precomputed in both encodings (4K: PAT at bit 7;
 * 2M/1G: PS at bit 7, PAT at bit 12), built the way pgtable_types.h builds
 * __PAGE_KERNEL: present, accessed, dirty only when writable (__PAGE_KERNEL_RO is clean),
 * and _PAGE_KERNEL_4K as software bit 11 (_PAGE_BIT_SOFTW3) at every level.
 *
 * An "entry code" is a prot code plus P_PRESENT: what a leaf or a non-present entry
 * (P clear, frame and attributes kept) holds, so a set_memory_* change, presence
 * included, is two bit operations on it.
 */
import { CACHE_MODES, type CacheMode, type Prot } from '../spec/state.ts';
import type { AccessKind, AccessMode, ProtChange } from '../spec/system.ts';
import * as x86 from './arch/x86_64/entry.ts';

// Module-local copies: imported bindings are live (a getter per use once transpiled).
const {
  _PAGE_ACCESSED, _PAGE_DIRTY, _PAGE_GLOBAL, _PAGE_PAT, _PAGE_PAT_LARGE, _PAGE_PCD, _PAGE_PRESENT, _PAGE_PWT,
  _PAGE_RW, _PAGE_USER, _PAGE_KERNEL_4K, HI_NX, KERNEL_PAT, cacheModeToBits, lo4kToLarge,
} = x86;

export const P_WRITE = 1;
export const P_USER = 2;
export const P_EXEC = 4;
export const P_GLOBAL = 8;
/** _PAGE_KERNEL_4K: set_memory_4k made the page 4K on purpose; collapse leaves it alone. */
export const P_KERNEL4K = 16;
const CACHE_SHIFT = 5;
const CACHE_MASK = 7 << CACHE_SHIFT;
export const PROT_CODES = CACHE_MODES.length << CACHE_SHIFT;
/** The P bit of an entry code, above every prot code. */
export const P_PRESENT = 256;

const CACHE_INDEX = new Map<CacheMode, number>(CACHE_MODES.map((m, i) => [m, i]));

export function protCode(p: Prot): number {
  return (
    (p.write ? P_WRITE : 0) | (p.user ? P_USER : 0) | (p.execKernel ? P_EXEC : 0) | (p.global ? P_GLOBAL : 0) |
    (p.kernel4k === true ? P_KERNEL4K : 0) | (CACHE_INDEX.get(p.cache)! << CACHE_SHIFT)
  );
}

function makeProt(code: number): Prot {
  const user = (code & P_USER) !== 0;
  const exec = (code & P_EXEC) !== 0;
  const p: Prot = {
    write: (code & P_WRITE) !== 0, user, execKernel: exec, execUser: user && exec,
    global: (code & P_GLOBAL) !== 0, cache: CACHE_MODES[code >>> CACHE_SHIFT]!,
  };
  // Absent when clear (spec/state.ts Prot.kernel4k), so a prot without it reads as before.
  return Object.freeze(code & P_KERNEL4K ? { ...p, kernel4k: true } : p);
}

/** One frozen Prot per code: the abstraction function shares them instead of allocating. */
export const PROTS: readonly Prot[] = Array.from({ length: PROT_CODES }, (_, c) => makeProt(c));

/** lo flag bits of a 4K PTE with this prot (PFN bits zero). */
export const LO_4K = new Uint32Array(PROT_CODES);
/** lo flag bits of a 2M/1G leaf (PS set, PAT at bit 12). */
export const LO_LARGE = new Uint32Array(PROT_CODES);
/** hi flag bits (NX). */
export const HI_FLAGS = new Uint32Array(PROT_CODES);

for (let c = 0; c < PROT_CODES; c++) {
  const cb = cacheModeToBits(PROTS[c]!.cache);
  const w = (c & P_WRITE) !== 0;
  const lo =
    _PAGE_PRESENT | _PAGE_ACCESSED | (w ? _PAGE_RW | _PAGE_DIRTY : 0) | (c & P_USER ? _PAGE_USER : 0) |
    (c & P_GLOBAL ? _PAGE_GLOBAL : 0) | (c & P_KERNEL4K ? _PAGE_KERNEL_4K : 0) | (cb.pwt ? _PAGE_PWT : 0) |
    (cb.pcd ? _PAGE_PCD : 0) | (cb.pat ? _PAGE_PAT : 0);
  LO_4K[c] = lo >>> 0;
  LO_LARGE[c] = lo4kToLarge(lo);
  HI_FLAGS[c] = c & P_EXEC ? 0 : HI_NX;
}

/** Cache-mode bits of a code for each PAT index (PAT*4 + PCD*2 + PWT) under the kernel's PAT MSR. */
const PAT_INDEX_CACHE_BITS = Uint8Array.from(KERNEL_PAT, (m) => CACHE_INDEX.get(m)! << CACHE_SHIFT);

/**
 * The code of a leaf from its own bits and the walk above it: write and user are ANDed
 * over the levels, NX is ORed (Intel SDM §4.6.1), so `tableRw`/`tableUs` are the AND of
 * the table entries' bits and `tableNx` their OR. G and the cache mode are the leaf's.
 */
export function leafCode(lo: number, hi: number, large: boolean, tableRw: boolean, tableUs: boolean, tableNx: boolean): number {
  const pat = large ? (lo & _PAGE_PAT_LARGE) !== 0 : (lo & _PAGE_PAT) !== 0;
  const patIndex = (pat ? 4 : 0) | (lo & (_PAGE_PCD | _PAGE_PWT)) >>> 3;
  const nx = tableNx || (hi & HI_NX) !== 0;
  return (
    (tableRw && (lo & _PAGE_RW) !== 0 ? P_WRITE : 0) | (tableUs && (lo & _PAGE_USER) !== 0 ? P_USER : 0) |
    (nx ? 0 : P_EXEC) | ((lo & _PAGE_GLOBAL) !== 0 ? P_GLOBAL : 0) | ((lo & _PAGE_KERNEL_4K) !== 0 ? P_KERNEL4K : 0) |
    PAT_INDEX_CACHE_BITS[patIndex]!
  );
}

/** `bit` when a ProtChange field is given (true or false), else 0. */
const given = (value: boolean | undefined, bit: number): number => (value === undefined ? 0 : bit);

/**
 * A set_memory_* change on entry codes: each field the change names is cleared and set
 * anew, the others kept, so applying it is two bit operations. `exec` sets the one
 * NX-derived bit, and execUser follows from it and user as on x86, so every result is
 * representable; `present` is P_PRESENT; `kernel4k` sets P_KERNEL4K and asks for
 * force_split (every large entry the range meets ends 4K).
 */
export class CodeChange {
  private constructor(
    /** The code bits the change clears, then */
    readonly clear: number,
    /** the ones it sets (CPA's mask_clr and mask_set). */
    readonly set: number,
    /** cpa->force_split (set_memory_4k). */
    readonly forceSplit = false,
  ) {}

  /** A change given as its two masks (CPA requests that are not a ProtChange: __set_pages_p / _np). */
  static masks(clear: number, set: number): CodeChange {
    return new CodeChange(clear, set);
  }

  /** Whether it changes nothing (change_page_attr_set_clr's "No changes, easy!": no mask and no force_split). */
  get empty(): boolean {
    return this.clear === 0 && this.set === 0 && !this.forceSplit;
  }

  /**
   * Both masks without the NX-derived bit: cpa_process_alias's alias request ("Directmap
   * always has NX set"). The alias cpa is a copy of the primary one, so force_split and
   * _PAGE_KERNEL_4K go along.
   */
  withoutExec(): CodeChange {
    return new CodeChange(this.clear & ~P_EXEC, this.set & ~P_EXEC, this.forceSplit);
  }

  /** The same request with another cache mode (_set_memory_wc's two requests, UC- then WC). */
  withCache(cache: CacheMode): CodeChange {
    return new CodeChange(this.clear | CACHE_MASK, (this.set & ~CACHE_MASK) | (CACHE_INDEX.get(cache)! << CACHE_SHIFT), this.forceSplit);
  }

  static of(change: ProtChange): CodeChange {
    // A field given is cleared, and set when true. (No closure: every protect makes one of these.)
    // Only true is valid for kernel4k (validateProtect): set_memory_4k sets the bit, nothing clears it.
    let clear = given(change.write, P_WRITE) | given(change.exec, P_EXEC) | given(change.global, P_GLOBAL) | given(change.present, P_PRESENT) | given(change.kernel4k, P_KERNEL4K);
    let set = (change.write === true ? P_WRITE : 0) | (change.exec === true ? P_EXEC : 0) | (change.global === true ? P_GLOBAL : 0) | (change.present === true ? P_PRESENT : 0) | (change.kernel4k === true ? P_KERNEL4K : 0);
    if (change.cache !== undefined) {
      clear |= CACHE_MASK;
      set |= CACHE_INDEX.get(change.cache)! << CACHE_SHIFT;
    }
    return new CodeChange(clear, set, change.kernel4k === true);
  }

  apply(old: number): number {
    return (old & ~this.clear) | this.set;
  }

  /**
   * The part strict's alias step carries to the direct-map alias: write and cache. Never
   * exec (the kernel drops _PAGE_NX from the alias masks, so the direct map stays NX),
   * never global, presence or kernel4k (strict keeps the alias mapped, at its own size).
   */
  forAlias(): CodeChange {
    const carried = P_WRITE | CACHE_MASK;
    return new CodeChange(this.clear & carried, this.set & carried);
  }
}

/**
 * Whether one access may use a leaf of this code, as the MMU decides with CR0.WP and
 * CR4.SMEP set (Linux runs so; Intel SDM §4.6): kernel mode reads everything, user mode
 * only user pages; a write also needs W; a fetch needs the page executable and, by SMEP
 * for kernel mode and by the U/S check for user mode, owned by the fetching mode.
 */
export function permits(code: number, kind: AccessKind, mode: AccessMode): boolean {
  const user = (code & P_USER) !== 0;
  if (kind === 'x') return (code & P_EXEC) !== 0 && user === (mode === 'user');
  const reach = mode === 'kernel' || user;
  return kind === 'r' ? reach : reach && (code & P_WRITE) !== 0;
}
