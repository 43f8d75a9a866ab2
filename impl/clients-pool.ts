/**
 * The __GFP_UNMAPPED pool (spec/contracts/clients.ts; mm/page_alloc.c of the series,
 * bjackman/linux a3c87cc7 __rmqueue_direct_map): whole pageblocks flagged
 * FREETYPE_UNMAPPED, kept as runs of frames (FrameFacts.unmapped, which the policy reads
 * for C7 and D6's exemption), so a question about a range costs a binary search per
 * pageblock it meets.
 *
 * allocUnmapped takes every pageblock the range meets that is not unmapped yet, all
 * together: the direct-map removal is the impl's own set_direct_map_invalid_noflush
 * (strict: the pages removed in the running operation; linux: cpa.ts __set_pages_np),
 * then one flush_tlb_kernel_range of their direct-map range, then the flag. The frames
 * handed out become data; a freed one returns to the pool as it is (system.ts freeFrames).
 * An allocation of a frame of an unmapped pageblock (allocFrames, vmalloc) takes the whole
 * block back when all its frames are free: set_direct_map_default_noflush (4K PAGE_KERNEL
 * leaves under strict, __set_pages_p under linux), no flush, the flag cleared.
 */
import { kernelLayout, pfnSpan, pfnToHex, type Pfn } from '../spec/address.ts';
import { pageblockOf } from '../spec/clients.ts';
import { ptError } from '../spec/contracts/args.ts';
import { validateAllocUnmapped } from '../spec/contracts/clients.ts';
import { PAGEBLOCK_PAGES } from '../spec/contracts/isolation.ts';
import { OK, fail, type PtError, type Result } from '../spec/errors.ts';
import { PAGE_KERNEL } from '../spec/state.ts';
import type { ClientsHost, PolicyOp } from './clients.ts';
import { protCode } from './prot.ts';
import type { Members } from './runs.ts';
import type { FrameChange, Owed, Range } from './system.ts';

const err = (e: PtError): Result<never> => ({ ok: false, error: e });
const KERNEL_CODE = protCode(PAGE_KERNEL);

/** A pageblock's frames (the last one of memory may be cut short). */
interface Block {
  readonly pfn: Pfn;
  readonly count: number;
}

/** What taking pageblocks back stages in the running operation, for finish. */
export interface TakeBack {
  readonly frames: readonly FrameChange[];
  readonly owe: readonly Owed[];
  readonly touched: readonly Range[];
  readonly undo: () => void;
}

export class UnmappedPool {
  /** The frames of the unmapped pageblocks (FrameFacts.unmapped): whole blocks. */
  private readonly blocks: Members;
  private snapshot: readonly Pfn[] | null = null;
  private readonly pageOffset: number;

  constructor(private readonly host: ClientsHost) {
    this.blocks = host.facts.unmapped;
    this.pageOffset = kernelLayout(host.config.levels).pageOffset;
  }

  /** Become a copy of `src` (RadixSystem.fork): the blocks are the frame facts' `unmapped`, which the system copies. */
  copyFrom(src: UnmappedPool): void {
    this.snapshot = src.snapshot;
  }

  private block(pb: Pfn): Block {
    return { pfn: pb, count: Math.min(PAGEBLOCK_PAGES, this.host.config.frames - pb) };
  }

  private directMap(b: Block): Range {
    return { vpn: this.pageOffset + b.pfn, pages: b.count };
  }

  /** The unmapped pageblocks [pfn, pfn + count) meets, in order. */
  meeting(pfn: Pfn, count: number): Block[] {
    const out: Block[] = [];
    const end = pfn + count;
    for (let f = this.blocks.first(pfn, count); f >= 0; ) {
      const pb = pageblockOf(f);
      out.push(this.block(pb));
      const next = pb + PAGEBLOCK_PAGES;
      f = next < end ? this.blocks.first(next, end - next) : -1;
    }
    return out;
  }

  /**
   * The EBUSY of an allocation of [pfn, pfn + count) (allocFrames, vmalloc's pages), or
   * null: every frame free, and every unmapped pageblock it meets wholly free, since only
   * a whole free block is mapped back (__rmqueue_direct_map with want_mapped).
   */
  refusal(pfn: Pfn, count: number): PtError | null {
    const free = this.host.facts.free;
    if (!free.covers(pfn, count)) return ptError('EBUSY', 'pfn', `a frame of ${pfnSpan(pfn, count)} is not free`);
    for (const b of this.meeting(pfn, count)) {
      if (!free.covers(b.pfn, b.count)) {
        return ptError('EBUSY', 'pfn', `the unmapped pageblock at frame ${pfnToHex(b.pfn)} has frames handed out: only a whole free block goes back to the direct map`);
      }
    }
    return null;
  }

  /**
   * allocFrames' pool rule: the EBUSY above, then the unmapped pageblocks the frames are in
   * taken back (op `op` names an EPERM). The frames themselves the caller makes data.
   */
  allocate(pfn: Pfn, count: number, op: PolicyOp): Result<void> {
    const refused = this.refusal(pfn, count);
    if (refused !== null) return err(refused);
    const back = this.meeting(pfn, count);
    if (back.length === 0) return OK;
    if (this.host.profile === 'linux') return this.takeBackLinux(back);
    this.host.radix.begin();
    const staged = this.stageTakeBack(back);
    return this.host.finish(op, { flushed: [], ...staged });
  }

  /**
   * Strict set_direct_map_default_noflush of each block, in the running operation: each
   * page a 4K PAGE_KERNEL leaf again (the removal left none), the flag cleared, each
   * block's direct-map range owed (no flush: mapping needs none).
   */
  stageTakeBack(back: readonly Block[]): TakeBack {
    for (const b of back) {
      const dm = this.directMap(b);
      this.host.install(dm.vpn, b.pfn, b.count, KERNEL_CODE, '4K');
      this.blocks.remove(b.pfn, b.count);
    }
    this.snapshot = null;
    return {
      frames: back.map((b) => ({ pfn: b.pfn, count: b.count, noDirectMap: false })),
      owe: back.map((b) => ({ ...this.directMap(b), reason: 'setDirectMapDefault' })),
      touched: back.map((b) => this.directMap(b)),
      undo: () => {
        for (const b of back) this.blocks.add(b.pfn, b.count, true);
        this.snapshot = null;
      },
    };
  }

  /** Linux set_direct_map_default_noflush of each block (cpa.ts __set_pages_p: its record and its debt), then the flag. */
  takeBackLinux(back: readonly Block[]): Result<void> {
    for (const b of back) {
      const done = this.host.setDirectMapLinux(b.pfn, b.count, true);
      if (!done.ok) return done;
      this.blocks.remove(b.pfn, b.count);
      this.snapshot = null;
    }
    return OK;
  }

  allocUnmapped(pfn: Pfn, count: number): Result<void> {
    const { config, facts, radix: r } = this.host;
    const bad = validateAllocUnmapped(config, pfn, count);
    if (bad) return err(bad);
    // Each pageblock met: in the pool, with the frames asked for free in it; or one the pool
    // can take, every frame free and in the direct map (noDirectMap clear, a present leaf at each page).
    const take: Block[] = [];
    const end = pfn + count;
    for (let pb = pageblockOf(pfn); pb < end; pb += PAGEBLOCK_PAGES) {
      const b = this.block(pb);
      if (this.blocks.first(pb, 1) >= 0) {
        const lo = Math.max(pfn, pb);
        const n = Math.min(end, pb + b.count) - lo;
        if (!facts.free.covers(lo, n)) return fail('EBUSY', 'pfn', `a frame of ${pfnSpan(lo, n)} in the unmapped pageblock at ${pfnToHex(pb)} is not free`);
        continue;
      }
      const dm = this.directMap(b);
      if (!facts.free.covers(b.pfn, b.count) || facts.noDirectMap.first(b.pfn, b.count) >= 0 || !r.allMapped(dm.vpn, dm.vpn + dm.pages)) {
        return fail('EBUSY', 'pfn', `the pageblock at frame ${pfnToHex(pb)} is neither unmapped nor wholly free and in the direct map, so the pool cannot take it`);
      }
      take.push(b);
    }
    if (take.length > 0) {
      const done = this.host.profile === 'linux' ? this.takeLinux(take) : this.takeStrict(take);
      if (!done.ok) return done;
    }
    facts.free.remove(pfn, count);
    facts.data.add(pfn, count, true);
    this.host.framesChanged();
    return OK;
  }

  /**
   * __rmqueue_direct_map's unmapping, strict: the blocks' direct-map pages removed in one
   * operation, flagged, then one flush of their direct-map range (the ceiling makes it a
   * flush_tlb_all: a block is 512 pages). The unmapped-pool-no-flush mutant leaves that
   * flush owed instead, so the handed-out page's direct-map translation may stay cached.
   */
  private takeStrict(take: readonly Block[]): Result<void> {
    const r = this.host.radix;
    r.begin();
    for (const b of take) {
      const dm = this.directMap(b);
      r.unmapRange(dm.vpn, dm.vpn + dm.pages);
      this.blocks.add(b.pfn, b.count, true);
    }
    this.snapshot = null;
    const span = this.span(take);
    const noFlush = this.host.mutant === 'unmapped-pool-no-flush';
    return this.host.finish('allocUnmapped', {
      flushed: noFlush ? [] : [span],
      frames: take.map((b) => ({ pfn: b.pfn, count: b.count, noDirectMap: true })),
      ...(noFlush ? { owe: take.flatMap((b) => this.host.debt({ ...this.directMap(b), reason: 'setDirectMapInvalid' })) } : {}),
      touched: take.map((b) => this.directMap(b)),
      undo: () => {
        for (const b of take) this.blocks.remove(b.pfn, b.count);
        this.snapshot = null;
      },
    });
  }

  /**
   * The same under linux: cpa.ts __set_pages_np of each run of adjacent blocks (its
   * record and its debt), then the flag, then the one flush; an ENOMEM stops it, what the
   * CPA did staying, unflushed, and no block flagged.
   */
  private takeLinux(take: readonly Block[]): Result<void> {
    for (let i = 0; i < take.length; ) {
      let j = i + 1;
      while (j < take.length && take[j]!.pfn === take[j - 1]!.pfn + take[j - 1]!.count) j++;
      const first = take[i]!;
      const last = take[j - 1]!;
      const done = this.host.setDirectMapLinux(first.pfn, last.pfn + last.count - first.pfn, false);
      if (!done.ok) {
        // __rmqueue_direct_map flags nothing when set_direct_map_valid_noflush fails: what the CPA did stays.
        for (let k = 0; k < i; k++) this.blocks.remove(take[k]!.pfn, take[k]!.count);
        this.snapshot = null;
        return done;
      }
      for (let k = i; k < j; k++) this.blocks.add(take[k]!.pfn, take[k]!.count, true);
      this.snapshot = null;
      i = j;
    }
    if (this.host.mutant !== 'unmapped-pool-no-flush') this.host.flushRanges([this.span(take)]);
    return OK;
  }

  /** The direct-map range from the first block's page to the last one's end: one flush_tlb_kernel_range. */
  private span(take: readonly Block[]): Range {
    const first = this.directMap(take[0]!);
    const last = this.directMap(take[take.length - 1]!);
    return { vpn: first.vpn, pages: last.vpn + last.pages - first.vpn };
  }

  /** The first frames of the unmapped pageblocks, sorted. */
  list(): readonly Pfn[] {
    this.snapshot ??= Object.freeze(this.blocks.map((start, count) => Array.from({ length: Math.ceil(count / PAGEBLOCK_PAGES) }, (_, k) => start + k * PAGEBLOCK_PAGES)).flat());
    return this.snapshot;
  }
}
