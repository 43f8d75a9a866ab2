/**
 * The impl's concrete tables as the figures read them: one entry of a table (the two
 * 32-bit words impl/tables.ts stores it as), and the entries a hardware walk reads from a
 * top-level table down to the entry that ends it. Reading only: nothing here writes.
 */
import { tableIndex, type Level, type Pfn, type Vpn } from '../../spec/address.ts';
import type { RadixSystem } from '../../impl/index.ts';
import { _PAGE_PRESENT } from '../../impl/arch/x86_64/entry.ts';
import { isLeafAt } from '../../impl/tables.ts';

export interface TableEntry {
  /** The level of the table holding it (1 = PTE table … 4 = pgd with 4-level paging). */
  readonly level: Level;
  /** Its index in that table: spec/address.ts tableIndex of the address walked. */
  readonly index: number;
  /** The frame of the table holding it. */
  readonly tablePfn: Pfn;
  readonly lo: number;
  readonly hi: number;
}

/** Entry `index` of the table in pool slot `slot`, which is at `level`. */
export function tableEntry(sys: RadixSystem, slot: number, level: Level, index: number): TableEntry {
  const pool = sys.tables();
  const off = slot * 1024 + index * 2;
  return { level, index, tablePfn: pool.slotPfn(slot), lo: pool.words[off]!, hi: pool.words[off + 1]! };
}

/** Whether an entry points to a table of the next level down (present, and no leaf). */
export function isTableEntry(e: TableEntry): boolean {
  return e.level > 1 && (e.lo & _PAGE_PRESENT) !== 0 && !isLeafAt(e.lo, e.level);
}

/** The pool slot of the table a table entry points to. */
export function childSlot(sys: RadixSystem, e: TableEntry): number {
  return sys.tables().childSlot(e.lo, e.hi);
}

/**
 * The entries a walk of `vpn` reads, from the top-level table in slot `rootSlot` (CR3;
 * init_mm's pgd is slot 0) down to the first that is not a table entry: the leaf, or a
 * non-present or empty entry where the walk faults.
 */
export function walkTables(sys: RadixSystem, vpn: Vpn, rootSlot = 0): TableEntry[] {
  const out: TableEntry[] = [];
  let slot = rootSlot;
  for (let level = sys.config.levels as Level; ; level--) {
    const e = tableEntry(sys, slot, level, tableIndex(vpn, level));
    out.push(e);
    if (!isTableEntry(e)) return out;
    slot = childSlot(sys, e);
  }
}
