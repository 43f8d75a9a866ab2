/** The impl's raw x86-64 entries and the abstract entry at a page, for the tests that look at both. */
import { PAGES, tableIndex, type Level, type Vpn } from '../spec/address.ts';
import type { AbstractState, Leaf } from '../spec/state.ts';
import * as x86 from '../impl/arch/x86_64/entry.ts';
import type { RadixSystem } from '../impl/index.ts';

/** The raw entry that maps (or last held) vpn: the first entry on the walk that is not a table entry. */
export function rawEntry(sys: RadixSystem, vpn: Vpn): { level: number; lo: number; hi: number } {
  const pool = sys.tables();
  let slot = 0;
  for (let level = sys.config.levels; level >= 1; level--) {
    const off = slot * 1024 + tableIndex(vpn, level as Level) * 2;
    const lo = pool.words[off]!;
    const hi = pool.words[off + 1]!;
    const table = (lo & x86._PAGE_PRESENT) !== 0 && level > 1 && (lo & x86._PAGE_PSE) === 0;
    if (!table) return { level, lo, hi };
    slot = pool.childSlot(lo, hi);
  }
  throw new Error('unreachable');
}

const covers = (l: Leaf, at: Vpn): boolean => l.vpn <= at && at < l.vpn + PAGES[l.size];

/** The entry of init_mm containing `at`: a leaf (present) or a non-present entry, or undefined. */
export function entryAt(state: AbstractState, at: Vpn): (Leaf & { present: boolean }) | undefined {
  const root = state.roots[0]!;
  const leaf = root.leaves.find((l) => covers(l, at));
  if (leaf !== undefined) return { ...leaf, present: true };
  const np = root.nonPresent?.find((l) => covers(l, at));
  return np === undefined ? undefined : { ...np, present: false };
}
