/**
 * The TLBs of every CPU and the flush obligations, held the impl's way and brought to
 * the canonical form of spec/contracts/flush.ts only when abstract() asks.
 *
 * A CPU's TLB is, per root, one map per leaf level from the (level-aligned) vpn to the
 * cached leaf, so the lookup is at most three map probes: the 4K entry covering vpn,
 * then the 2M one, then the 1G one. Probing small first is the contract's rule that
 * among overlapping stale entries the most specific wins. Each cached leaf keeps its
 * prot code, so a hit needs no decoding to check the access.
 *
 * Obligations are a RunSet labelled with their sorted, distinct reasons: adding merges
 * overlapping and adjacent ranges, a flush cuts its range out.
 */
import type { Vpn } from '../spec/address.ts';
import type { FlushObligation, Leaf, RootId, TlbEntry } from '../spec/state.ts';
import { RunSet } from './runs.ts';
import { SPAN } from './tables.ts';

/** One cached translation: the abstract entry, its leaf's level and prot code. */
export interface Cached {
  readonly entry: TlbEntry;
  readonly level: number;
  readonly code: number;
}

/** Index 0, 1, 2: the 4K, 2M and 1G entries of one (cpu, root), by vpn. */
type ByLevel = readonly [Map<Vpn, Cached>, Map<Vpn, Cached>, Map<Vpn, Cached>];

/** Two sorted lists of distinct reasons as one. */
function unionOfReasons(a: readonly string[], b: readonly string[]): readonly string[] {
  const out: string[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    const x = a[i];
    const y = b[j];
    if (y === undefined || (x !== undefined && x < y)) {
      out.push(x!);
      i++;
    } else {
      if (x === y) i++;
      out.push(y);
      j++;
    }
  }
  return out;
}

export class Tlbs {
  private readonly perCpu: Map<RootId, ByLevel>[];
  private readonly owed = new RunSet<readonly string[]>(unionOfReasons);
  /** entries() in canonical order, until the next fill or flush. */
  private sorted: TlbEntry[] | null = [];

  constructor(cpus: number) {
    this.perCpu = Array.from({ length: cpus }, () => new Map());
  }

  /** The entry `cpu` uses for vpn in `root`: the smallest cached leaf covering it. */
  lookup(cpu: number, root: RootId, vpn: Vpn): Cached | undefined {
    const maps = this.perCpu[cpu]!.get(root);
    if (maps === undefined) return undefined;
    for (let l = 0; l < 3; l++) {
      const span = SPAN[(l + 1) as 1];
      const hit = maps[l]!.get(vpn - (vpn % span));
      if (hit !== undefined) return hit;
    }
    return undefined;
  }

  /** Cache `leaf`, mapped by an entry at `level`, after a walk on `cpu` missed. */
  fill(cpu: number, root: RootId, leaf: Leaf, level: number, code: number): void {
    const tlb = this.perCpu[cpu]!;
    let maps = tlb.get(root);
    if (maps === undefined) tlb.set(root, (maps = [new Map(), new Map(), new Map()]));
    maps[level - 1]!.set(leaf.vpn, { entry: { cpu, root, leaf }, level, code });
    this.sorted = null;
  }

  /** flush_tlb_kernel_range on every CPU and root; discharges the obligations inside the range. */
  flushRange(vpn: Vpn, pages: number): void {
    const end = vpn + pages;
    for (const tlb of this.perCpu) {
      for (const maps of tlb.values()) {
        maps.forEach((m, l) => {
          const span = SPAN[(l + 1) as 1];
          for (const v of m.keys()) {
            if (v < end && vpn < v + span) {
              m.delete(v);
              this.sorted = null;
            }
          }
        });
      }
    }
    this.owed.remove(vpn, pages);
  }

  flushAll(): void {
    for (const tlb of this.perCpu) tlb.clear();
    this.sorted = [];
    this.owed.clear();
  }

  owe(vpn: Vpn, pages: number, reason: string): void {
    this.owed.add(vpn, pages, [reason]);
  }

  /** Every cached entry, by cpu, root, vpn, then size ascending. */
  entries(): readonly TlbEntry[] {
    if (this.sorted === null) {
      const out: TlbEntry[] = [];
      for (const tlb of this.perCpu) {
        const here: Cached[] = [];
        for (const maps of tlb.values()) for (const m of maps) here.push(...m.values());
        here.sort((a, b) => a.entry.root - b.entry.root || a.entry.leaf.vpn - b.entry.leaf.vpn || a.level - b.level);
        for (const c of here) out.push(c.entry);
      }
      this.sorted = out;
    }
    return this.sorted;
  }

  obligations(): FlushObligation[] {
    return this.owed.map((vpn, pages, reasons) => ({ vpn, pages, reason: reasons.join('+') }));
  }
}
