/**
 * The TLBs of every CPU and the flush obligations, in the shared semantics of
 * spec/contracts/flush.ts (the same lookup, flush and merge functions the model uses, so
 * the two agree by construction). Each CPU has its own array of cached leaves; TLBs are
 * small (only `access` fills them), so lookups scan.
 */
import type { Vpn } from '../spec/address.ts';
import { addFlushObligation, compareTlbEntries, dischargeFlushRange, flushTlbRange, tlbLookup } from '../spec/contracts/index.ts';
import type { FlushObligation, Leaf, RootId, TlbEntry } from '../spec/state.ts';

export class Tlbs {
  private perCpu: TlbEntry[][];
  private owed: FlushObligation[] = [];

  constructor(cpus: number) {
    this.perCpu = Array.from({ length: cpus }, () => []);
  }

  lookup(cpu: number, root: RootId, vpn: Vpn): TlbEntry | undefined {
    return tlbLookup(this.perCpu[cpu]!, cpu, root, vpn);
  }

  fill(cpu: number, root: RootId, leaf: Leaf): void {
    this.perCpu[cpu]!.push({ cpu, root, leaf });
  }

  /** flush_tlb_kernel_range on every CPU; discharges the obligations inside the range. */
  flushRange(vpn: Vpn, pages: number): void {
    // Every mutating operation flushes, and most TLBs are empty: skip the copy for those.
    for (let c = 0; c < this.perCpu.length; c++) if (this.perCpu[c]!.length > 0) this.perCpu[c] = flushTlbRange(this.perCpu[c]!, vpn, pages);
    if (this.owed.length > 0) this.owed = dischargeFlushRange(this.owed, vpn, pages);
  }

  flushAll(): void {
    for (let c = 0; c < this.perCpu.length; c++) this.perCpu[c] = [];
    this.owed = [];
  }

  owe(vpn: Vpn, pages: number, reason: string): void {
    this.owed = addFlushObligation(this.owed, vpn, pages, reason);
  }

  entries(): TlbEntry[] {
    return this.perCpu.flat().sort(compareTlbEntries);
  }

  obligations(): FlushObligation[] {
    return [...this.owed];
  }
}
