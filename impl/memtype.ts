/**
 * The linux profile's RAM memory types (spec/contracts/linux.ts, "protect with a cache
 * change"): what memtype_reserve / memtype_free (arch/x86/mm/pat/memtype.c,
 * reserve_ram_pages_type / free_ram_pages_type) keep in the page flags of RAM frames,
 * as one run set per reserved type. A frame has at most one type: a reservation over a
 * frame that has one is refused (EBUSY) before anything is recorded, so the two sets
 * stay disjoint. Frames in neither set are WB, the default nothing reserved. The strict
 * profile never reserves.
 */
import type { Pfn } from '../spec/address.ts';
import type { FrameRun } from '../spec/state.ts';
import { members, type Members } from './runs.ts';

export type RamMemtype = NonNullable<FrameRun['memtype']>;

export class Memtypes {
  readonly wc: Members = members();
  readonly ucMinus: Members = members();

  /** Become a copy of `src` (RadixSystem.fork). */
  copyFrom(src: Memtypes): void {
    this.wc.restore(src.wc);
    this.ucMinus.restore(src.ucMinus);
  }

  private set(type: RamMemtype): Members {
    return type === 'WC' ? this.wc : this.ucMinus;
  }

  /** reserve_ram_pages_type's refusal: whether some frame of [pfn, pfn+count) already has a type. */
  anyReserved(pfn: Pfn, count: number): boolean {
    return this.wc.first(pfn, count) >= 0 || this.ucMinus.first(pfn, count) >= 0;
  }

  /** Record `type` for the frames (any type they had goes, so the sets stay disjoint). */
  reserve(pfn: Pfn, count: number, type: RamMemtype): void {
    this.free(pfn, count);
    this.set(type).add(pfn, count, true);
  }

  /** free_ram_pages_type: the frames are WB again. */
  free(pfn: Pfn, count: number): void {
    this.wc.remove(pfn, count);
    this.ucMinus.remove(pfn, count);
  }

  /** The type of frame pfn, undefined for WB. */
  of(pfn: Pfn): RamMemtype | undefined {
    if (this.wc.first(pfn, 1) >= 0) return 'WC';
    return this.ucMinus.first(pfn, 1) >= 0 ? 'UC-' : undefined;
  }
}
