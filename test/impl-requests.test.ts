/**
 * The rest of the kernel's set_memory_* requests on the impl (spec/contracts/protect.ts
 * for strict, spec/contracts/linux.ts for linux): _PAGE_KERNEL_4K in the entries,
 * set_memory_np / set_memory_p / set_memory_np_noalias, set_memory_4k, set_memory_rox's
 * CPA_COLLAPSE, set_memory_uc / set_memory_wc / set_memory_wb with their memtype
 * reservation, and the strict policy's D4. Every case runs on the built-in `kernel`
 * scenario booted by the impl, and names the kernel function whose code decides it
 * (arch/x86/mm/pat/set_memory.c unless another file is named).
 */
import { describe, expect, it } from 'vitest';
import { PAGES, X86_64_LAYOUT_4LEVEL as L, tableIndex, type Level, type Pfn, type Vpn } from '../spec/address.ts';
import { applyCommand } from '../spec/commands.ts';
import { outcome } from '../spec/errors.ts';
import { scenarioNamed } from '../spec/scenario.ts';
import { PAGE_KERNEL, PAGE_KERNEL_RO, type AbstractState, type FrameRun } from '../spec/state.ts';
import type { Profile, SystemSetup } from '../spec/system.ts';
import * as x86 from '../impl/arch/x86_64/entry.ts';
import { checkTables, createImpl, type RadixSystem } from '../impl/index.ts';
import { entryAt, rawEntry } from './raw-entry.ts';

const entry = (sys: RadixSystem, at: Vpn) => entryAt(sys.abstract(), at);

const MiB = 256;
const DM = L.pageOffset;
/** The boot's 4K vmalloc area: 64 pages from VMALLOC + 1, frames from 100 MiB (inside 2M direct-map leaves). */
const VM4K = L.vmallocStart + 1;
const VM_PFN = 100 * MiB;
/** A 1G-aligned vmalloc address nothing maps after boot, and 2M-aligned data frames for it. */
const VM_FREE = L.vmallocStart + 4 * PAGES['1G'];
const BLOCK_PFN = 120 * MiB;
/** A data frame inside a 2M direct-map leaf, and a 2M-aligned one. */
const FRAME = 30000;
const FRAME_2M = 59 * 512;

function boot(profile: Profile, setup?: SystemSetup): RadixSystem {
  const s = scenarioNamed('kernel')!();
  const sys = createImpl({ config: s.config, frames: setup?.frames ?? s.frames, profile });
  for (const c of s.boot) expect(outcome(applyCommand(sys, c)), JSON.stringify(c)).toBe('ok');
  sys.takeEvents();
  return sys;
}




function frameRun(state: AbstractState, pfn: Pfn): FrameRun {
  return state.frames.find((r) => r.pfn <= pfn && pfn < r.pfn + r.count)!;
}

/** A 2M block of vmalloc mapped with 4K leaves to 2M-aligned data frames: what set_memory_rox's collapse restores. */
function map4kBlock(sys: RadixSystem, prot = PAGE_KERNEL): void {
  expect(outcome(sys.map(0, VM_FREE, BLOCK_PFN, 512, prot, { maxPage: '4K' }))).toBe('ok');
  expect(entry(sys, VM_FREE)!.size).toBe('4K');
}

const ROX = { write: false, exec: true } as const;

for (const profile of ['strict', 'linux'] as const) {
  describe(`set_memory_* requests on the impl (${profile})`, () => {
    it('set_memory_4k writes _PAGE_KERNEL_4K as software bit 11 and reads it back as kernel4k (change_page_attr_set_clr, force_split)', () => {
      const sys = boot(profile);
      expect(outcome(sys.protect(DM + FRAME, 1, { kernel4k: true }, { alias: true }))).toBe('ok');
      const e = rawEntry(sys, DM + FRAME);
      expect(e.level).toBe(1);
      expect(e.lo & x86._PAGE_KERNEL_4K).toBe(1 << 11);
      expect(x86.entryPfn(e.lo, e.hi)).toBe(FRAME);
      expect(entry(sys, DM + FRAME)).toMatchObject({ size: '4K', pfn: FRAME, present: true, prot: { ...PAGE_KERNEL, kernel4k: true } });
      // The rest of the old 2M leaf: 4K pieces (split rule / force_split), without the bit, so their prot is PAGE_KERNEL exactly.
      const next = entry(sys, DM + FRAME + 1)!;
      expect(next.size).toBe('4K');
      expect(next.prot).toEqual(PAGE_KERNEL);
      expect(rawEntry(sys, DM + FRAME + 1).lo & x86._PAGE_KERNEL_4K).toBe(0);
      expect(checkTables(sys)).toEqual([]);
    });

    it('set_memory_np then set_memory_p on vmalloc pages: P cleared and set, frame and prot kept (__change_page_attr; linux: pgprot_clear_protnone_bits drops G)', () => {
      const sys = boot(profile);
      expect(outcome(sys.protect(VM4K + 3, 2, { present: false }, { alias: true }))).toBe('ok');
      const np = entry(sys, VM4K + 3)!;
      expect(np).toMatchObject({ present: false, size: '4K', pfn: VM_PFN + 3 });
      expect(np.prot).toEqual(profile === 'strict' ? PAGE_KERNEL : { ...PAGE_KERNEL, global: false });
      expect(rawEntry(sys, VM4K + 3).lo & x86._PAGE_PRESENT).toBe(0);
      expect(outcome(sys.translate(0, VM4K + 3))).toBe('ENOENT');
      // A non-present entry holds its slot.
      expect(outcome(sys.map(0, VM4K + 3, VM_PFN + 3, 1, PAGE_KERNEL))).toBe('EEXIST');
      expect(outcome(sys.protect(VM4K + 3, 2, { present: true }, { alias: true }))).toBe('ok');
      const p = entry(sys, VM4K + 4)!;
      expect(p).toMatchObject({ present: true, size: '4K', pfn: VM_PFN + 4 });
      expect(p.prot).toEqual(profile === 'strict' ? PAGE_KERNEL : { ...PAGE_KERNEL, global: false });
      expect(sys.abstract().roots[0]!.nonPresent ?? []).toEqual([]);
      expect(checkTables(sys)).toEqual([]);
    });

    it(`set_memory_np with alias ${profile === 'linux' ? 'makes the direct-map alias non-present too (cpa_process_alias)' : 'leaves the direct-map alias mapped: strict carries only write and cache to it'}`, () => {
      const sys = boot(profile);
      expect(outcome(sys.protect(VM4K + 3, 1, { present: false }, { alias: true }))).toBe('ok');
      const alias = entry(sys, DM + VM_PFN + 3)!;
      if (profile === 'linux') {
        expect(alias).toMatchObject({ present: false, size: '4K', pfn: VM_PFN + 3 });
      } else {
        expect(alias).toMatchObject({ present: true, size: '2M', prot: PAGE_KERNEL });
      }
      expect(checkTables(sys)).toEqual([]);
    });

    it('set_memory_np_noalias (CPA_NO_CHECK_ALIAS) leaves the direct-map alias as it was (change_page_attr_set_clr without cpa_process_alias)', () => {
      const sys = boot(profile);
      expect(outcome(sys.protect(VM4K + 3, 1, { present: false }, { alias: false }))).toBe('ok');
      expect(entry(sys, VM4K + 3)).toMatchObject({ present: false });
      expect(entry(sys, DM + VM_PFN + 3)).toMatchObject({ present: true, size: '2M', prot: PAGE_KERNEL });
    });

    it('strict and linux: protect of a page with no entry at all fails (strict ENOENT; linux __cpa_process_fault EFAULT)', () => {
      const sys = boot(profile);
      expect(outcome(sys.protect(VM_FREE, 1, { present: false }))).toBe(profile === 'strict' ? 'ENOENT' : 'EFAULT');
    });

    it('set_memory_4k then collapse of that block is EINVAL: collapse_pmd_page returns early on _PAGE_KERNEL_4K', () => {
      const sys = boot(profile);
      expect(outcome(sys.protect(DM + FRAME_2M, 512, { kernel4k: true }, { alias: true }))).toBe('ok');
      expect(entry(sys, DM + FRAME_2M + 100)).toMatchObject({ size: '4K', prot: { ...PAGE_KERNEL, kernel4k: true } });
      const r = sys.collapse(0, DM + FRAME_2M, '2M');
      expect(r.ok ? 'ok' : [r.error.errno, r.error.arg]).toEqual(['EINVAL', 'vpn']);
      // Without the bit the same block collapses (the control).
      const sys2 = boot(profile);
      expect(outcome(sys2.split(0, DM + FRAME_2M))).toBe('ok');
      expect(outcome(sys2.collapse(0, DM + FRAME_2M, '2M'))).toBe('ok');
    });

    it('set_memory_rox with collapse on a uniform, fully 4K 2M block leaves one 2M leaf and gives its table back (cpa_collapse_large_pages, collapse_pmd_page)', () => {
      for (const alias of [true, false]) {
        const sys = boot(profile);
        map4kBlock(sys);
        const tables = sys.abstract().tablesInUse;
        const r = sys.protect(VM_FREE, 512, ROX, { alias, collapse: true });
        if (profile === 'strict' && !alias) {
          // Without the alias step the frames stay writable through the direct map: strict refuses it.
          expect(r.ok ? 'ok' : r.error.invariant).toBe('P2');
          continue;
        }
        expect(outcome(r)).toBe('ok');
        const leaf = entry(sys, VM_FREE + 7)!;
        expect(leaf).toMatchObject({ vpn: VM_FREE, size: '2M', pfn: BLOCK_PFN, present: true });
        expect(leaf.prot).toEqual({ ...PAGE_KERNEL, write: false, execKernel: true });
        expect(sys.abstract().pendingTableFrees).toBe(0);
        // The direct-map alias gets the RO, never exec, and is not collapsed. Strict changes
        // the whole 2M alias leaf at once; linux's cpa_process_alias runs after each 4K
        // primary step on that one page, which splits the alias leaf (one table more).
        const dm = entry(sys, DM + BLOCK_PFN);
        if (!alias) expect(dm).toMatchObject({ size: '2M', prot: PAGE_KERNEL });
        else expect(dm).toMatchObject({ size: profile === 'strict' ? '2M' : '4K', prot: PAGE_KERNEL_RO });
        const aliasSplit = alias && profile === 'linux' ? 1 : 0;
        expect(sys.abstract().tablesInUse).toBe(tables - 1 + aliasSplit);
        expect(checkTables(sys)).toEqual([]);
      }
    });

    it('set_memory_rox with collapse does not collapse a block whose first PTE has _PAGE_KERNEL_4K (collapse_pmd_page)', () => {
      const sys = boot(profile);
      map4kBlock(sys);
      expect(outcome(sys.protect(VM_FREE, 512, { kernel4k: true }, { alias: true }))).toBe('ok');
      expect(outcome(sys.protect(VM_FREE, 512, ROX, { alias: true, collapse: true }))).toBe('ok');
      const e = entry(sys, VM_FREE)!;
      expect(e.size).toBe('4K');
      expect(e.prot).toEqual({ ...PAGE_KERNEL, write: false, execKernel: true, kernel4k: true });
      expect(checkTables(sys)).toEqual([]);
    });

    it(`a collapse request whose change writes nothing ${profile === 'linux' ? 'collapses nothing: cpa_flush runs the collapse only after CPA_FLUSHTLB' : 'still collapses under strict (the contract drops the kernel\'s CPA_FLUSHTLB condition)'}`, () => {
      const sys = boot(profile);
      map4kBlock(sys, PAGE_KERNEL_RO);
      expect(outcome(sys.protect(VM_FREE, 512, { write: false }, { collapse: true }))).toBe('ok');
      expect(entry(sys, VM_FREE)!.size).toBe(profile === 'linux' ? '4K' : '2M');
    });

    it('the collapse operation refuses a non-present block as unmapped (ENOENT) and collapses a uniform one (collapse_large_pages)', () => {
      const sys = boot(profile);
      map4kBlock(sys);
      expect(outcome(sys.protect(VM_FREE + 5, 1, { present: false }))).toBe('ok');
      expect(outcome(sys.collapse(0, VM_FREE, '2M'))).toBe('ENOENT');
      expect(outcome(sys.protect(VM_FREE + 5, 1, { present: true }))).toBe('ok');
      // linux lost G on that page: the block is no longer uniform.
      expect(outcome(sys.collapse(0, VM_FREE, '2M'))).toBe(profile === 'linux' ? 'EINVAL' : 'ok');
    });
  });
}

describe('set_memory_uc / set_memory_wc / set_memory_wb and memtype (linux; arch/x86/mm/pat/memtype.c)', () => {
  it('set_memory_uc twice on one direct-map frame: the second is EBUSY and changes nothing (reserve_ram_pages_type)', () => {
    const sys = boot('linux');
    expect(outcome(sys.protect(DM + FRAME, 1, { cache: 'UC-' }, { alias: true }))).toBe('ok');
    expect(entry(sys, DM + FRAME)).toMatchObject({ size: '4K', prot: { cache: 'UC-' } });
    expect(frameRun(sys.abstract(), FRAME)).toEqual({ pfn: FRAME, count: 1, use: 'data', sensitive: false, noDirectMap: false, memtype: 'UC-' });
    const before = sys.abstract();
    const r = sys.protect(DM + FRAME, 1, { cache: 'UC-' }, { alias: true });
    expect(r.ok ? 'ok' : [r.error.errno, r.error.arg]).toEqual(['EBUSY', 'change']);
    expect(sys.abstract()).toEqual(before);
    expect(sys.takeEvents()).toEqual([]);
  });

  it('set_memory_wc leaves the page WC and the frame reserved WC (_set_memory_wc: UC- first, then WC)', () => {
    const sys = boot('linux');
    expect(outcome(sys.protect(DM + FRAME, 2, { cache: 'WC' }, { alias: true }))).toBe('ok');
    expect(entry(sys, DM + FRAME)!.prot.cache).toBe('WC');
    expect(frameRun(sys.abstract(), FRAME + 1)).toMatchObject({ pfn: FRAME, count: 2, memtype: 'WC' });
    // A set_memory_uc over a WC frame is EBUSY too; set_memory_wb frees the reservation.
    expect(outcome(sys.protect(DM + FRAME + 1, 1, { cache: 'UC-' }, { alias: true }))).toBe('EBUSY');
    expect(outcome(sys.protect(DM + FRAME, 2, { cache: 'WB' }, { alias: true }))).toBe('ok');
    expect(frameRun(sys.abstract(), FRAME).memtype).toBeUndefined();
    expect(outcome(sys.protect(DM + FRAME + 1, 1, { cache: 'UC-' }, { alias: true }))).toBe('ok');
  });

  it('a vmalloc range has no RAM frame for __pa: no reservation, so set_memory_uc twice succeeds (memtype_reserve, non-RAM tree not modelled)', () => {
    const sys = boot('linux');
    expect(outcome(sys.protect(VM4K, 1, { cache: 'UC-' }, { alias: true }))).toBe('ok');
    expect(outcome(sys.protect(VM4K, 1, { cache: 'UC-' }, { alias: true }))).toBe('ok');
    expect(sys.abstract().frames.some((r) => r.memtype !== undefined)).toBe(false);
  });

  it('strict never reserves a memory type', () => {
    const sys = boot('strict');
    expect(outcome(sys.protect(DM + FRAME, 1, { cache: 'UC-' }, { alias: true }))).toBe('ok');
    expect(outcome(sys.protect(DM + FRAME, 1, { cache: 'UC-' }, { alias: true }))).toBe('ok');
    expect(sys.abstract().frames.some((r) => 'memtype' in r)).toBe(false);
  });
});

describe('D4 free_frames_mapped_only_by_their_direct_map_page (strict policy; mm/vmalloc.c vmap_pages_pte_range maps whatever it is handed)', () => {
  const FREE = 48 * MiB;
  /** The kernel scenario with frames [48 MiB, 64 MiB) free: the direct map still maps them (it maps all memory). */
  function withFreeFrames(): SystemSetup {
    const s = scenarioNamed('kernel')!();
    const frames = s.frames.flatMap((r): FrameRun[] =>
      r.pfn <= FREE && FREE < r.pfn + r.count
        ? [{ ...r, count: FREE - r.pfn }, { ...r, pfn: FREE, count: r.pfn + r.count - FREE, use: 'free' }]
        : [r],
    );
    return { config: s.config, frames };
  }

  it('boots (the direct map of a free frame is its own page), and mapping a free frame in vmalloc is EPERM naming D4', () => {
    const sys = boot('strict', withFreeFrames());
    const r = sys.map(0, VM_FREE, FREE + 5, 1, PAGE_KERNEL);
    expect(r.ok ? 'ok' : [r.error.errno, r.error.arg, r.error.invariant]).toEqual(['EPERM', 'prot', 'D4']);
    // STRICT_POLICY order decides: a W+X mapping of the same free frame is refused as P1 first.
    const wx = sys.map(0, VM_FREE, FREE + 5, 1, { ...PAGE_KERNEL, execKernel: true });
    expect(wx.ok ? 'ok' : wx.error.invariant).toBe('P1');
    // A data frame is fine.
    expect(outcome(sys.map(0, VM_FREE, FREE - 1, 1, PAGE_KERNEL))).toBe('ok');
  });

  it('linux refuses nothing for a security reason: the same map succeeds', () => {
    const sys = boot('linux', withFreeFrames());
    expect(outcome(sys.map(0, VM_FREE, FREE + 5, 1, PAGE_KERNEL))).toBe('ok');
  });
});

describe('checkTables on the new bit and non-present entries (impl/check.ts)', () => {
  it('reports _PAGE_KERNEL_4K on a large leaf and a non-present large entry with PS set, and nothing on sound ones', () => {
    const sys = boot('linux');
    expect(outcome(sys.protect(DM + FRAME_2M, 512, { present: false }, { alias: true }))).toBe('ok');
    expect(outcome(sys.protect(DM + FRAME, 1, { kernel4k: true }, { alias: true }))).toBe('ok');
    expect(checkTables(sys)).toEqual([]);
    const pool = sys.tables();
    const offOf = (vpn: Vpn): number => {
      let slot = 0;
      for (let level = sys.config.levels; level >= 1; level--) {
        const off = slot * 1024 + tableIndex(vpn, level as Level) * 2;
        const lo = pool.words[off]!;
        if (!((lo & x86._PAGE_PRESENT) !== 0 && level > 1 && (lo & x86._PAGE_PSE) === 0)) return off;
        slot = pool.childSlot(lo, pool.words[off + 1]!);
      }
      throw new Error('unreachable');
    };
    // split_large_page never makes a large entry with the bit: a 2M direct-map leaf with it is corrupt.
    const leafOff = offOf(DM + 64 * 512);
    pool.words[leafOff] = (pool.words[leafOff]! | x86._PAGE_KERNEL_4K) >>> 0;
    // A non-present 2M entry with PS set would read as a PROTNONE huge page.
    const npOff = offOf(DM + FRAME_2M);
    pool.words[npOff] = (pool.words[npOff]! | x86._PAGE_PSE) >>> 0;
    pool.touch();
    expect(checkTables(sys).map((f) => f.check).sort()).toEqual(['kernel4k', 'non-present']);
  });
});

describe('linux vunmap (mm/vmalloc.c vunmap_range; map over kept tables: vmap_try_huge_pmd / _pud)', () => {
  const G = PAGES['1G'];
  /** The frame of the table that entry `level` (2 = PMD, 3 = PUD) of the walk to vpn points to, or undefined when it is no table entry. */
  function tableBelow(sys: RadixSystem, vpn: Vpn, level: number): Pfn | undefined {
    const pool = sys.tables();
    let slot = 0;
    for (let l = sys.config.levels; l >= level; l--) {
      const off = slot * 1024 + tableIndex(vpn, l as Level) * 2;
      const lo = pool.words[off]!;
      const hi = pool.words[off + 1]!;
      if (!((lo & x86._PAGE_PRESENT) !== 0 && (l > 3 || (lo & x86._PAGE_PSE) === 0))) return undefined;
      if (l === level) return x86.entryPfn(lo, hi);
      slot = pool.childSlot(lo, hi);
    }
    return undefined;
  }
  const clean = (sys: RadixSystem): void => expect(checkTables(sys)).toEqual([]);

  it('a partial vunmap of a 2M vmalloc leaf clears it whole and WARNs with the leaf (pmd_clear_huge, WARN_ON(next - addr < PMD_SIZE)); a whole one prints nothing', () => {
    const sys = boot('linux');
    expect(outcome(sys.map(0, VM_FREE, BLOCK_PFN, 1024, PAGE_KERNEL))).toBe('ok');
    expect(entry(sys, VM_FREE)!.size).toBe('2M');
    const tables = sys.abstract().tablesInUse;
    expect(outcome(sys.unmap(0, VM_FREE + 10, 3))).toBe('ok');
    expect(sys.takeEvents()).toEqual([{ kind: 'vunmap-huge', vpn: VM_FREE, pages: 512, pfn: BLOCK_PFN }]);
    // Its pages outside the range went too, the next leaf stays; no split, no table freed or allocated.
    expect(entry(sys, VM_FREE)).toBeUndefined();
    expect(entry(sys, VM_FREE + 511)).toBeUndefined();
    expect(entry(sys, VM_FREE + 512)).toMatchObject({ size: '2M', pfn: BLOCK_PFN + 512 });
    expect(sys.abstract().tablesInUse).toBe(tables);
    clean(sys);
    expect(outcome(sys.unmap(0, VM_FREE + 512, 512))).toBe('ok');
    expect(sys.takeEvents()).toEqual([]);
    // The PMD table is empty now and kept: the kernel's behaviour, not corruption.
    expect(sys.abstract().tablesInUse).toBe(tables);
    expect(sys.abstract().roots[0]!.leaves.some((l) => l.vpn >= VM_FREE && l.vpn < VM_FREE + G)).toBe(false);
    clean(sys);
    // Nothing left: ENOENT as ever.
    expect(outcome(sys.unmap(0, VM_FREE, 1024))).toBe('ENOENT');
  });

  it('a range across two 2M leaves WARNs for each, in address order', () => {
    const sys = boot('linux');
    expect(outcome(sys.map(0, VM_FREE, BLOCK_PFN, 1024, PAGE_KERNEL))).toBe('ok');
    expect(outcome(sys.unmap(0, VM_FREE + 500, 20))).toBe('ok');
    expect(sys.takeEvents()).toEqual([
      { kind: 'vunmap-huge', vpn: VM_FREE, pages: 512, pfn: BLOCK_PFN },
      { kind: 'vunmap-huge', vpn: VM_FREE + 512, pages: 512, pfn: BLOCK_PFN + 512 },
    ]);
    clean(sys);
  });

  it('vunmap of a non-present 4K entry clears it with a WARN (vunmap_pte_range: WARN_ON(!pte_none && !pte_present)); present ones are silent', () => {
    const sys = boot('linux');
    expect(outcome(sys.protect(VM4K + 3, 1, { present: false }, { alias: false }))).toBe('ok');
    expect(entry(sys, VM4K + 3)).toMatchObject({ present: false, size: '4K', pfn: VM_PFN + 3 });
    sys.takeEvents();
    expect(outcome(sys.unmap(0, VM4K + 2, 3))).toBe('ok');
    expect(sys.takeEvents()).toEqual([{ kind: 'vunmap-nonpresent', vpn: VM4K + 3, pages: 1, pfn: VM_PFN + 3 }]);
    for (const v of [VM4K + 2, VM4K + 3, VM4K + 4]) expect(entry(sys, v)).toBeUndefined();
    expect(entry(sys, VM4K + 5)).toMatchObject({ present: true, pfn: VM_PFN + 5 });
    clean(sys);
  });

  it('a non-present 2M entry is a bad pmd: cleared whole with bad-entry (pmd_none_or_clear_bad)', () => {
    const sys = boot('linux');
    expect(outcome(sys.map(0, VM_FREE, BLOCK_PFN, 512, PAGE_KERNEL))).toBe('ok');
    expect(outcome(sys.protect(VM_FREE, 512, { present: false }, { alias: false }))).toBe('ok');
    expect(entry(sys, VM_FREE)).toMatchObject({ present: false, size: '2M', pfn: BLOCK_PFN });
    sys.takeEvents();
    const tables = sys.abstract().tablesInUse;
    expect(outcome(sys.unmap(0, VM_FREE + 100, 1))).toBe('ok');
    expect(sys.takeEvents()).toEqual([{ kind: 'bad-entry', vpn: VM_FREE, pages: 512, pfn: BLOCK_PFN }]);
    expect(entry(sys, VM_FREE + 511)).toBeUndefined();
    expect(sys.abstract().roots[0]!.nonPresent ?? []).toEqual([]);
    expect(sys.abstract().tablesInUse).toBe(tables);
    clean(sys);
  });

  it('a vunmap that empties a PTE table keeps it (tablesInUse unchanged), and a later 4K map reuses it', () => {
    const sys = boot('linux');
    expect(outcome(sys.map(0, VM_FREE, BLOCK_PFN, 8, PAGE_KERNEL))).toBe('ok');
    const pte = tableBelow(sys, VM_FREE, 2)!;
    const tables = sys.abstract().tablesInUse;
    expect(outcome(sys.unmap(0, VM_FREE, 8))).toBe('ok');
    expect(sys.takeEvents()).toEqual([]);
    expect(sys.abstract().tablesInUse).toBe(tables);
    expect(sys.abstract().pendingTableFrees).toBe(0);
    expect(tableBelow(sys, VM_FREE, 2)).toBe(pte);
    clean(sys);
    expect(outcome(sys.map(0, VM_FREE + 100, BLOCK_PFN + 100, 1, PAGE_KERNEL))).toBe('ok');
    expect(sys.abstract().tablesInUse).toBe(tables);
    expect(tableBelow(sys, VM_FREE, 2)).toBe(pte);
    expect(entry(sys, VM_FREE + 100)).toMatchObject({ size: '4K', pfn: BLOCK_PFN + 100 });
    clean(sys);
  });

  it('a 2M map over a kept PTE table frees it (pmd_free_pte_page); a 1G map over a kept PMD table frees it and the PTE tables under it (pud_free_pmd_page)', () => {
    const sys = boot('linux');
    const PFN_1G = 2 * G;
    // A PMD table with two PTE tables under it, all emptied by vunmap and kept.
    expect(outcome(sys.map(0, VM_FREE, PFN_1G, 4, PAGE_KERNEL))).toBe('ok');
    expect(outcome(sys.map(0, VM_FREE + 512, PFN_1G + 512, 4, PAGE_KERNEL))).toBe('ok');
    const full = sys.abstract().tablesInUse;
    expect(outcome(sys.unmap(0, VM_FREE, 1024))).toBe('ok');
    expect(sys.abstract().tablesInUse).toBe(full);
    clean(sys);
    expect(outcome(sys.map(0, VM_FREE, PFN_1G, 512, PAGE_KERNEL))).toBe('ok');
    expect(entry(sys, VM_FREE)).toMatchObject({ size: '2M', pfn: PFN_1G });
    expect(sys.abstract().tablesInUse).toBe(full - 1);
    clean(sys);
    expect(outcome(sys.unmap(0, VM_FREE, 512))).toBe('ok');
    expect(tableBelow(sys, VM_FREE, 3)).toBeDefined();
    // The 1G leaf replaces the PMD table and the PTE table still hanging from it.
    expect(outcome(sys.map(0, VM_FREE, PFN_1G, G, PAGE_KERNEL))).toBe('ok');
    expect(entry(sys, VM_FREE)).toMatchObject({ size: '1G', pfn: PFN_1G });
    expect(sys.abstract().tablesInUse).toBe(full - 3);
    clean(sys);
    expect(sys.takeEvents()).toEqual([]);
  });

  it('ENOMEM as the pool says, and a map that fails after freeing a kept table restores it (kernel-small-pool)', () => {
    const s = scenarioNamed('kernel-small-pool')!();
    const sys = createImpl({ config: s.config, frames: s.frames, profile: 'linux' });
    for (const c of s.boot) expect(outcome(applyCommand(sys, c))).toBe('ok');
    const count = s.config.tablePool.count;
    // Fill the pool with PTE tables for single 4K pages, one per 2M block, from the last block of a free 1G region down.
    const top = VM_FREE + G - 512;
    for (let b = top; sys.abstract().tablesInUse < count; b -= 512) {
      expect(outcome(sys.map(0, b, BLOCK_PFN, 1, PAGE_KERNEL))).toBe('ok');
    }
    expect(outcome(sys.unmap(0, top, 1))).toBe('ok');
    expect(sys.abstract().tablesInUse).toBe(count);
    // A 2M leaf at top frees its kept PTE table; the 4K page after it, in the next 1G, needs a PMD and a PTE table: one too many.
    const before = sys.abstract();
    const r = sys.map(0, top, BLOCK_PFN, 513, PAGE_KERNEL);
    expect(r.ok ? 'ok' : [r.error.errno, r.error.arg]).toEqual(['ENOMEM', 'tablePool']);
    expect(sys.abstract()).toEqual(before);
    expect(tableBelow(sys, top, 2)).toBeDefined();
    clean(sys);
    // The 2M leaf alone fits, and frees the table.
    expect(outcome(sys.map(0, top, BLOCK_PFN, 512, PAGE_KERNEL))).toBe('ok');
    expect(sys.abstract().tablesInUse).toBe(count - 1);
    clean(sys);
  });

  it('strict is unchanged: a partial unmap splits the 2M leaf and keeps its tail, prints nothing, and the emptied tables are freed', () => {
    const sys = boot('strict');
    const tables = sys.abstract().tablesInUse;
    expect(outcome(sys.map(0, VM_FREE, BLOCK_PFN, 512, PAGE_KERNEL))).toBe('ok');
    expect(outcome(sys.unmap(0, VM_FREE + 10, 3))).toBe('ok');
    expect(sys.takeEvents()).toEqual([]);
    expect(entry(sys, VM_FREE)).toMatchObject({ size: '4K', pfn: BLOCK_PFN });
    expect(entry(sys, VM_FREE + 11)).toBeUndefined();
    expect(entry(sys, VM_FREE + 511)).toMatchObject({ size: '4K', pfn: BLOCK_PFN + 511 });
    clean(sys);
    expect(outcome(sys.unmap(0, VM_FREE, 512))).toBe('ok');
    expect(sys.abstract().tablesInUse).toBe(tables);
    clean(sys);
  });
});
