/**
 * The clients' bookkeeping as the impl keeps it (spec/clients.ts ClientState is what
 * abstract() reports): the live vmalloc areas and the purge list as disjoint page ranges
 * sorted by vpn (binary searches: an operation costs what it meets, not how many areas
 * there are), and snapshots of them that abstract() hands out and that later operations
 * never change (a caller may keep the state before a command beside the one after it).
 */
import type { Vpn } from '../spec/address.ts';

/** A range of pages an area occupies. */
export interface Area {
  readonly vpn: Vpn;
  readonly pages: number;
}

/** Disjoint areas sorted by vpn, each an immutable record: the live vmalloc areas, the purge list. */
export class AreaList<T extends Area> {
  private items: T[] = [];
  /** What list() last handed out, until the next change. */
  private snapshot: readonly T[] | null = [];
  /** The pages of every area listed (the purge list's vmap_lazy_nr). */
  pages = 0;

  get length(): number {
    return this.items.length;
  }

  /** Become a copy of `src` (RadixSystem.fork): the areas are immutable records, and so is the snapshot. */
  copyFrom(src: AreaList<T>): void {
    this.items = [...src.items];
    this.snapshot = src.snapshot;
    this.pages = src.pages;
  }

  /** Index of the first area ending after page `vpn`. */
  private firstEndingAfter(vpn: Vpn): number {
    let lo = 0;
    let hi = this.items.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const a = this.items[mid]!;
      if (a.vpn + a.pages <= vpn) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** The first area meeting [vpn, vpn + pages), or undefined. */
  meeting(vpn: Vpn, pages: number): T | undefined {
    const a = this.items[this.firstEndingAfter(vpn)];
    return a !== undefined && a.vpn < vpn + pages ? a : undefined;
  }

  /** Every area meeting [vpn, vpn + pages), in vpn order. */
  allMeeting(vpn: Vpn, pages: number): T[] {
    const out: T[] = [];
    for (let i = this.firstEndingAfter(vpn); i < this.items.length && this.items[i]!.vpn < vpn + pages; i++) out.push(this.items[i]!);
    return out;
  }

  /** The area that starts at `vpn`, or undefined. */
  startingAt(vpn: Vpn): T | undefined {
    const a = this.items[this.firstEndingAfter(vpn)];
    return a !== undefined && a.vpn === vpn ? a : undefined;
  }

  /** The lowest and the highest area, or undefined when there is none. */
  first(): T | undefined {
    return this.items[0];
  }

  last(): T | undefined {
    return this.items[this.items.length - 1];
  }

  /** Add `a`, which meets no area listed (the callers' EBUSY keeps them apart). */
  insert(a: T): void {
    this.items.splice(this.firstEndingAfter(a.vpn), 0, a);
    this.pages += a.pages;
    this.snapshot = null;
  }

  /** Take out `a`, which is listed. */
  remove(a: T): void {
    const i = this.firstEndingAfter(a.vpn);
    if (this.items[i] !== a) throw new Error(`area at ${a.vpn} is not listed`);
    this.items.splice(i, 1);
    this.pages -= a.pages;
    this.snapshot = null;
  }

  clear(): void {
    if (this.items.length === 0) return;
    this.items = [];
    this.pages = 0;
    this.snapshot = null;
  }

  /** The areas in vpn order, as a snapshot no later change touches. */
  list(): readonly T[] {
    this.snapshot ??= Object.freeze([...this.items]);
    return this.snapshot;
  }
}
