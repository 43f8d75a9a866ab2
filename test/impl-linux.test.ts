/**
 * The impl's linux profile at the level of its entries: a non-present entry is a real
 * x86-64 entry with P clear that keeps its frame (and, at 2M/1G, has PS clear, as CPA
 * writes it), it occupies its table slot, the abstraction reports it in `nonPresent`;
 * CPA's cost follows the entries it meets; strict is untouched by all of it.
 */
import { describe, expect, it } from 'vitest';
import { PAGES, X86_64_LAYOUT_4LEVEL as L } from '../spec/address.ts';
import { applyCommand } from '../spec/commands.ts';
import { kernelScenario } from '../spec/scenario.ts';
import type { Profile } from '../spec/system.ts';
import * as x86 from '../impl/arch/x86_64/entry.ts';
import { checkTables, createImpl, type RadixSystem } from '../impl/index.ts';
import { rawEntry } from './raw-entry.ts';

function booted(profile: Profile): RadixSystem {
  const s = kernelScenario();
  const sys = createImpl({ ...s, profile });
  for (const c of s.boot) expect(applyCommand(sys, c).ok).toBe(true);
  return sys;
}


const FRAME = 30000;

describe('the impl under the linux profile', () => {
  it('set_direct_map_invalid leaves a real 4K entry with P, RW and G clear, frame and NX kept', () => {
    const sys = booted('linux');
    expect(sys.setDirectMapInvalid(FRAME, 1, { flush: true }).ok).toBe(true);
    const e = rawEntry(sys, L.pageOffset + FRAME);
    expect(e.level).toBe(1);
    expect(e.lo & (x86._PAGE_PRESENT | x86._PAGE_RW | x86._PAGE_GLOBAL)).toBe(0);
    expect(x86.entryPfn(e.lo, e.hi)).toBe(FRAME);
    expect((e.hi & x86.HI_NX) >>> 0).toBe(x86.HI_NX);
    const root = sys.abstract().roots[0]!;
    expect(root.nonPresent).toEqual([{ vpn: L.pageOffset + FRAME, pfn: FRAME, size: '4K', prot: expect.objectContaining({ write: false, global: false, execKernel: false, cache: 'WB' }) }]);
    expect(root.leaves.some((l) => l.vpn <= L.pageOffset + FRAME && L.pageOffset + FRAME < l.vpn + PAGES[l.size])).toBe(false);
    expect(checkTables(sys)).toEqual([]);
  });

  it('a whole 2M page made non-present is one entry with P and PS clear, and it keeps its table alive', () => {
    const sys = booted('linux');
    const pfn = 59 * 512;
    const before = sys.abstract().tablesInUse;
    expect(sys.setDirectMapInvalid(pfn, 512, { flush: true }).ok).toBe(true);
    const e = rawEntry(sys, L.pageOffset + pfn);
    expect(e.level).toBe(2);
    expect(e.lo & (x86._PAGE_PRESENT | x86._PAGE_PSE)).toBe(0);
    expect(x86.entryPfn(e.lo & ~x86._PAGE_PAT_LARGE, e.hi)).toBe(pfn);
    expect(sys.abstract().tablesInUse).toBe(before);
    // The entry occupies its slot: mapping over it is refused, unmapping removes it.
    expect(sys.map(0, L.pageOffset + pfn, pfn, 1, { write: true, user: false, execKernel: false, execUser: false, global: true, cache: 'WB' }).ok).toBe(false);
    expect(sys.unmap(0, L.pageOffset + pfn, 512).ok).toBe(true);
    expect(sys.abstract().roots[0]!.nonPresent).toBeUndefined();
    expect(checkTables(sys)).toEqual([]);
  });

  it('CPA over a whole 1G leaf writes one entry, and one page of it costs two splits', () => {
    const sys = booted('linux');
    const pool = sys.tables();
    let writes = pool.writes;
    expect(sys.protect(L.pageOffset + PAGES['1G'] * 2, PAGES['1G'], { write: false }, { alias: true }).ok).toBe(true);
    expect(pool.writes - writes).toBe(1);
    writes = pool.writes;
    expect(sys.protect(L.pageOffset + PAGES['1G'] * 3 + 5, 1, { write: false }, { alias: true }).ok).toBe(true);
    // 512 2M entries and their table entry, 512 4K entries and theirs, then the page itself.
    expect(pool.writes - writes).toBe(512 + 1 + 512 + 1 + 1);
  });

  it('strict prints nothing and reports no non-present entries', () => {
    const sys = booted('strict');
    expect(sys.profile).toBe('strict');
    expect(sys.protect(L.kernelText + 4096, 1, { write: true }, { alias: true }).ok).toBe(false);
    expect(sys.setDirectMapInvalid(FRAME, 1, { flush: true }).ok).toBe(true);
    expect(sys.takeEvents()).toEqual([]);
    expect(sys.abstract().roots[0]!.nonPresent).toBeUndefined();
  });
});
