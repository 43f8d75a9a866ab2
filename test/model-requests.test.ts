/**
 * The rest of the kernel's set_memory_* requests on the model, under both profiles:
 * set_memory_np / _p / _np_noalias (present), set_memory_4k (kernel4k, force_split),
 * set_memory_rox (collapse) and set_memory_uc / _wc / _wb (memtype). Each test names the
 * kernel function that decides it (arch/x86/mm/pat/set_memory.c unless another file is
 * named); under strict, spec/contracts/protect.ts decides and says where it follows it.
 */
import { describe, expect, it } from 'vitest';
import { PAGES, kernelLayout } from '../spec/address.ts';
import { applyCommand } from '../spec/commands.ts';
import { outcome, type Result } from '../spec/errors.ts';
import { scenarioNamed } from '../spec/scenario.ts';
import { PAGE_KERNEL, PAGE_KERNEL_RO, PAGE_KERNEL_ROX, type AbstractState, type FrameRun, type Prot } from '../spec/state.ts';
import type { Profile } from '../spec/system.ts';
import { Model } from '../model/index.ts';
import { entryAt } from './raw-entry.ts';

const G = PAGES['1G'];
const M = PAGES['2M'];
const L = kernelLayout(4);
const PO = L.pageOffset;
/** The boot's 4K vmalloc area: 64 pages from vmallocStart + 1, frames from 100 MiB. */
const VM = L.vmallocStart + 1;
const VM_PFN = 100 * 256;
/** Free vmalloc space, 1G-aligned, far from the boot mappings. */
const V = L.vmallocStart + 4 * G;
/** A data frame under one of the direct map's 1G leaves, and its 2M block. */
const F = G + 37 * M + 5;
const F_BLOCK = F - (F % M);
/** A 2M-aligned data frame under one of the direct map's 2M leaves (400 MiB). */
const P2M = 200 * M;

function boot(profile: Profile): Model {
  const s = scenarioNamed('kernel')!();
  const m = new Model({ config: s.config, frames: s.frames, profile });
  for (const cmd of s.boot) expect(outcome(applyCommand(m, cmd)), JSON.stringify(cmd)).toBe('ok');
  m.takeEvents();
  return m;
}



function frameRun(state: AbstractState, pfn: number): FrameRun {
  return state.frames.find((r) => r.pfn <= pfn && pfn < r.pfn + r.count)!;
}

function ok(r: Result<unknown>): void {
  expect(r.ok ? 'ok' : r.error.message).toBe('ok');
}

const BOTH: readonly Profile[] = ['strict', 'linux'];
const noGlobal = (p: Prot): Prot => ({ ...p, global: false });

describe('set_memory_np / set_memory_p', () => {
  for (const profile of BOTH) {
    it(`${profile}: np keeps frame and prot in a non-present entry, p makes it present again (__change_page_attr, pgprot_clear_protnone_bits)`, () => {
      const m = boot(profile);
      ok(m.protect(VM, 4, { present: false }, { alias: true }));
      // Linux: a non-present result loses G (pgprot_clear_protnone_bits); strict keeps the prot.
      const kept = profile === 'linux' ? noGlobal(PAGE_KERNEL) : PAGE_KERNEL;
      for (let i = 0; i < 4; i++) expect(entryAt(m.abstract(), VM + i)).toEqual({ vpn: VM + i, pfn: VM_PFN + i, size: '4K', prot: kept, present: false });
      expect(entryAt(m.abstract(), VM + 4)?.present, 'outside the range').toBe(true);
      expect(m.translate(0, VM).ok).toBe(false);
      expect(m.access(0, 0, VM, 'r', 'kernel')).toEqual({ ok: true, value: { fault: 'not-present' } });

      ok(m.protect(VM, 4, { present: true }, { alias: true }));
      // G is lost for good under linux: set_memory_p sets only _PAGE_PRESENT.
      for (let i = 0; i < 4; i++) expect(entryAt(m.abstract(), VM + i)).toEqual({ vpn: VM + i, pfn: VM_PFN + i, size: '4K', prot: kept, present: true });
      expect(m.abstract().roots[0]!.nonPresent).toBeUndefined();
    });
  }

  it('linux: np with alias makes the direct-map alias non-present too (cpa_process_alias: every mask but NX)', () => {
    const m = boot('linux');
    ok(m.protect(VM, 4, { present: false }, { alias: true }));
    expect(entryAt(m.abstract(), PO + VM_PFN)).toMatchObject({ size: '4K', pfn: VM_PFN, present: false });
    expect(entryAt(m.abstract(), PO + VM_PFN + 3)).toMatchObject({ size: '4K', present: false });
    expect(entryAt(m.abstract(), PO + VM_PFN + 4)).toMatchObject({ size: '4K', present: true, prot: PAGE_KERNEL });
  });

  it('strict: np with alias leaves the direct-map alias mapped, at its size (protect.ts: the alias gets write and cache only)', () => {
    const m = boot('strict');
    ok(m.protect(VM, 4, { present: false }, { alias: true }));
    expect(entryAt(m.abstract(), PO + VM_PFN)).toEqual({ vpn: PO + VM_PFN, pfn: VM_PFN, size: '2M', prot: PAGE_KERNEL, present: true });
  });

  for (const profile of BOTH) {
    it(`${profile}: set_memory_np_noalias leaves the direct map alone (CPA_NO_CHECK_ALIAS)`, () => {
      const m = boot(profile);
      ok(m.protect(VM, 4, { present: false }, { alias: false }));
      expect(entryAt(m.abstract(), VM)?.present).toBe(false);
      expect(entryAt(m.abstract(), PO + VM_PFN)).toEqual({ vpn: PO + VM_PFN, pfn: VM_PFN, size: '2M', prot: PAGE_KERNEL, present: true });
    });
  }

  it('strict: a page whose entry is non-present still has an entry: protect applies, unmapped pages are ENOENT', () => {
    const m = boot('strict');
    ok(m.protect(VM, 4, { present: false }));
    ok(m.protect(VM, 4, { write: false }));
    expect(entryAt(m.abstract(), VM)).toMatchObject({ present: false, prot: PAGE_KERNEL_RO });
    const r = m.protect(VM - 1, 2, { write: false });
    expect(r.ok ? 'ok' : r.error.errno).toBe('ENOENT');
  });

  it('strict: a non-present direct-map page holds its slot (default: EEXIST) but maps nothing to invalidate (invalid: ENOENT)', () => {
    const m = boot('strict');
    ok(m.protect(PO + F, 1, { present: false }));
    const d = m.setDirectMapDefault(F, 1, { flush: true });
    expect(d.ok ? 'ok' : `${d.error.errno} ${d.error.arg}`).toBe('EEXIST pfn');
    const i = m.setDirectMapInvalid(F - 1, 3, { flush: true });
    expect(i.ok ? 'ok' : `${i.error.errno} ${i.error.arg}`).toBe('ENOENT pfn');
    ok(m.protect(PO + F, 1, { present: true }));
    ok(m.setDirectMapInvalid(F - 1, 3, { flush: true }));
    expect(entryAt(m.abstract(), PO + F)).toBeUndefined();
  });
});

describe('set_memory_4k', () => {
  for (const profile of BOTH) {
    it(`${profile}: one page inside a 2M block under a 1G leaf: its 2M block all 4K, the page kernel4k, the rest 2M (should_split_large_page: force_split)`, () => {
      const m = boot(profile);
      ok(m.protect(PO + F, 1, { kernel4k: true }, { alias: true }));
      expect(entryAt(m.abstract(), PO + F)).toEqual({ vpn: PO + F, pfn: F, size: '4K', prot: { ...PAGE_KERNEL, kernel4k: true }, present: true });
      const block = m.abstract().roots[0]!.leaves.filter((l) => l.vpn >= PO + F_BLOCK && l.vpn < PO + F_BLOCK + M);
      expect(block).toHaveLength(512);
      expect(block.every((l) => l.size === '4K')).toBe(true);
      expect(block.filter((l) => l.prot.kernel4k === true).map((l) => l.vpn)).toEqual([PO + F]);
      expect(entryAt(m.abstract(), PO + F + 1)?.prot).toEqual(PAGE_KERNEL);
      // The rest of the 1G parent: split once, to 2M, and no further.
      expect(entryAt(m.abstract(), PO + F_BLOCK - 1)).toMatchObject({ size: '2M', prot: PAGE_KERNEL });
      expect(entryAt(m.abstract(), PO + G)).toMatchObject({ vpn: PO + G, size: '2M' });
      expect(entryAt(m.abstract(), PO + 2 * G - 1)).toMatchObject({ size: '2M' });
      expect(entryAt(m.abstract(), PO + 2 * G)).toMatchObject({ size: '1G' });
    });

    it(`${profile}: a whole 2M block set_memory_4k then collapse is EINVAL vpn (collapse_pmd_page: "The page is 4k intentionally")`, () => {
      const m = boot(profile);
      ok(m.protect(PO + F_BLOCK, M, { kernel4k: true }));
      expect(entryAt(m.abstract(), PO + F_BLOCK + 100)).toMatchObject({ size: '4K', prot: { ...PAGE_KERNEL, kernel4k: true } });
      const before = structuredClone(m.abstract());
      const r = m.collapse(0, PO + F_BLOCK, '2M');
      expect(r.ok ? 'ok' : `${r.error.errno} ${r.error.arg}`).toBe('EINVAL vpn');
      expect(r.ok ? '' : r.error.message).toMatch(/kernel4k/);
      expect(m.abstract()).toEqual(before);
    });
  }
});

describe('set_memory_4k through an alias', () => {
  it('linux: force_split and the kernel4k mask reach the direct-map alias (cpa_process_alias: alias_cpa = *cpa)', () => {
    const m = boot('linux');
    ok(m.protect(VM, 1, { kernel4k: true }, { alias: true }));
    expect(entryAt(m.abstract(), VM)?.prot).toEqual({ ...PAGE_KERNEL, kernel4k: true });
    expect(entryAt(m.abstract(), PO + VM_PFN)).toEqual({ vpn: PO + VM_PFN, pfn: VM_PFN, size: '4K', prot: { ...PAGE_KERNEL, kernel4k: true }, present: true });
    expect(entryAt(m.abstract(), PO + VM_PFN + 1)).toMatchObject({ size: '4K', prot: PAGE_KERNEL });
  });

  it('strict: the alias keeps its page size and gets no kernel4k (protect.ts: write and cache only)', () => {
    const m = boot('strict');
    ok(m.protect(VM, 1, { kernel4k: true }, { alias: true }));
    expect(entryAt(m.abstract(), VM)?.prot).toEqual({ ...PAGE_KERNEL, kernel4k: true });
    expect(entryAt(m.abstract(), PO + VM_PFN)).toEqual({ vpn: PO + VM_PFN, pfn: VM_PFN, size: '2M', prot: PAGE_KERNEL, present: true });
  });
});

describe('set_memory_rox with collapse', () => {
  for (const profile of BOTH) {
    it(`${profile}: a 2M-aligned block of 512 uniform 4K leaves from a 2M-aligned frame becomes one 2M leaf (collapse_pmd_page)`, () => {
      const m = boot(profile);
      ok(m.map(0, V, P2M, M, PAGE_KERNEL, { maxPage: '4K' }));
      const tables = m.abstract().tablesInUse;
      ok(m.protect(V, M, { write: false, exec: true }, { alias: true, collapse: true }));
      expect(entryAt(m.abstract(), V)).toEqual({ vpn: V, pfn: P2M, size: '2M', prot: PAGE_KERNEL_ROX, present: true });
      // The PTE table went back to the pool (under linux the alias walk's split of the direct map took one).
      expect(m.abstract().tablesInUse).toBe(profile === 'linux' ? tables : tables - 1);
      // Aliases are never collapsed: the direct-map alias got RO (and under linux was split to 4K by the alias walk).
      expect(entryAt(m.abstract(), PO + P2M)).toMatchObject({ size: profile === 'linux' ? '4K' : '2M', prot: PAGE_KERNEL_RO });
    });

    it(`${profile}: no collapse when a PTE carries kernel4k (collapse_pmd_page checks the first PTE's _PAGE_KERNEL_4K)`, () => {
      const m = boot(profile);
      ok(m.map(0, V, P2M, M, PAGE_KERNEL, { maxPage: '4K' }));
      ok(m.protect(V, 1, { kernel4k: true }));
      ok(m.protect(V, M, { write: false, exec: true }, { alias: true, collapse: true }));
      expect(entryAt(m.abstract(), V)).toMatchObject({ size: '4K', prot: { ...PAGE_KERNEL_ROX, kernel4k: true } });
      expect(entryAt(m.abstract(), V + 1)).toMatchObject({ size: '4K', prot: PAGE_KERNEL_ROX });
    });

    it(`${profile}: no collapse when a PTE is non-present (collapse_pmd_page: !pte_present)`, () => {
      const m = boot(profile);
      ok(m.map(0, V, P2M, M, PAGE_KERNEL, { maxPage: '4K' }));
      ok(m.protect(V + 9, 1, { present: false }, { alias: false }));
      ok(m.protect(V, M, { write: false, exec: true }, { alias: true, collapse: true }));
      expect(entryAt(m.abstract(), V)).toMatchObject({ size: '4K' });
      expect(entryAt(m.abstract(), V + 9)).toMatchObject({ size: '4K', present: false });
    });
  }

  /**
   * A 1G-aligned vmalloc range over frames [1G, 2G) (their direct-map 1G leaf made RO
   * first, so strict's policy allows the executable mapping), mapped ROX with 2M leaves,
   * its first 2M block split to 4K.
   */
  function gigabyteSetup(profile: Profile): Model {
    const m = boot(profile);
    ok(m.protect(PO + G, G, { write: false }));
    ok(m.map(0, V, G, G, PAGE_KERNEL_ROX, { maxPage: '2M' }));
    ok(m.split(0, V));
    expect(entryAt(m.abstract(), V)).toMatchObject({ size: '4K' });
    return m;
  }

  it('strict: collapses even when the change wrote nothing, 2M and then the 1G block around it (collapse_pud_page)', () => {
    const m = gigabyteSetup('strict');
    ok(m.protect(V, M, { write: false, exec: true }, { collapse: true }));
    expect(entryAt(m.abstract(), V)).toEqual({ vpn: V, pfn: G, size: '1G', prot: PAGE_KERNEL_ROX, present: true });
  });

  it('linux: no collapse when the change wrote nothing (cpa_flush, which calls cpa_collapse_large_pages, runs only with CPA_FLUSHTLB)', () => {
    const m = gigabyteSetup('linux');
    ok(m.protect(V, M, { write: false, exec: true }, { collapse: true }));
    expect(entryAt(m.abstract(), V)).toMatchObject({ size: '4K', prot: PAGE_KERNEL_ROX });
  });

  it('linux: after a change that writes, 2M and then 1G collapse (collapse_large_pages, collapse_pud_page), flushing every TLB', () => {
    const m = gigabyteSetup('linux');
    ok(m.protect(V, M, { exec: false }));
    expect(m.access(1, 0, V + G - 1, 'r', 'kernel')).toMatchObject({ ok: true, value: { fault: false } });
    ok(m.protect(V, M, { write: false, exec: true }, { collapse: true }));
    expect(entryAt(m.abstract(), V)).toEqual({ vpn: V, pfn: G, size: '1G', prot: PAGE_KERNEL_ROX, present: true });
    expect(m.abstract().tlb, 'flush_tlb_all after the collapse').toEqual([]);
  });

  it('linux: without GB pages only the 2M block collapses (collapse_pud_page: direct_gbpages)', () => {
    const s = scenarioNamed('kernel-no-gbpages')!();
    const m = new Model({ config: s.config, frames: s.frames, profile: 'linux' });
    for (const cmd of s.boot) ok(applyCommand(m, cmd));
    ok(m.map(0, V, P2M, M, PAGE_KERNEL, { maxPage: '4K' }));
    ok(m.protect(V, M, { write: false, exec: true }, { alias: false, collapse: true }));
    expect(entryAt(m.abstract(), V)).toMatchObject({ size: '2M', pfn: P2M, prot: PAGE_KERNEL_ROX });
  });
});

describe('set_memory_uc / set_memory_wc / set_memory_wb and memtype', () => {
  it('linux: set_memory_uc twice on one direct-map frame: the second is EBUSY and changes nothing (reserve_ram_pages_type, memtype.c)', () => {
    const m = boot('linux');
    ok(m.protect(PO + F, 1, { cache: 'UC-' }, { alias: true }));
    expect(frameRun(m.abstract(), F)).toMatchObject({ pfn: F, count: 1, memtype: 'UC-' });
    expect(entryAt(m.abstract(), PO + F)).toMatchObject({ size: '4K', prot: { ...PAGE_KERNEL, cache: 'UC-' } });
    const before = structuredClone(m.abstract());
    const r = m.protect(PO + F, 1, { cache: 'UC-' }, { alias: true });
    expect(r.ok ? 'ok' : `${r.error.errno} ${r.error.arg}`).toBe('EBUSY change');
    expect(m.abstract()).toEqual(before);
    expect(m.takeEvents()).toEqual([]);
  });

  it('linux: set_memory_wb frees the memtype, so set_memory_uc succeeds again (set_memory_wb: memtype_free after the walk)', () => {
    const m = boot('linux');
    ok(m.protect(PO + F, 1, { cache: 'UC-' }, { alias: true }));
    ok(m.protect(PO + F, 1, { cache: 'WB' }, { alias: true }));
    expect(frameRun(m.abstract(), F).memtype).toBeUndefined();
    expect(entryAt(m.abstract(), PO + F)?.prot.cache).toBe('WB');
    ok(m.protect(PO + F, 1, { cache: 'UC-' }, { alias: true }));
    expect(frameRun(m.abstract(), F).memtype).toBe('UC-');
  });

  it('linux: set_memory_wc leaves memtype WC and the page WC, after a UC- request first (_set_memory_wc)', () => {
    const m = boot('linux');
    ok(m.protect(PO + F, 2, { cache: 'WC' }, { alias: true }));
    expect(frameRun(m.abstract(), F)).toMatchObject({ pfn: F, count: 2, memtype: 'WC' });
    expect(entryAt(m.abstract(), PO + F + 1)?.prot.cache).toBe('WC');
    const r = m.protect(PO + F + 1, 1, { cache: 'UC-' }, { alias: true });
    expect(r.ok ? 'ok' : r.error.errno).toBe('EBUSY');
  });

  it('linux: a failed walk frees the reservation again (set_memory_uc: out_free → memtype_free)', () => {
    const m = boot('linux');
    // The high map at frame 0x200 has no entry: __cpa_process_fault's EFAULT.
    const at = L.kernelText + 0x200;
    expect(m.protect(at, 1, { cache: 'UC-' }, { alias: true })).toMatchObject({ ok: false, error: { errno: 'EFAULT' } });
    expect(frameRun(m.abstract(), 0x200).memtype).toBeUndefined();
    expect(m.protect(at, 1, { cache: 'UC-' }, { alias: true })).toMatchObject({ ok: false, error: { errno: 'EFAULT' } });
  });

  it('linux: outside the direct and high maps nothing is reserved (memtype_reserve keeps non-RAM ranges in its tree, not modelled)', () => {
    const m = boot('linux');
    ok(m.protect(VM, 1, { cache: 'UC-' }, { alias: true }));
    ok(m.protect(VM, 1, { cache: 'UC-' }, { alias: true }));
    expect(m.abstract().frames.some((r) => r.memtype !== undefined)).toBe(false);
  });

  it('strict never sets a memtype: set_memory_uc twice succeeds (protect.ts: no reservations, T5 instead)', () => {
    const m = boot('strict');
    ok(m.protect(PO + F, 1, { cache: 'UC-' }, { alias: true }));
    ok(m.protect(PO + F, 1, { cache: 'UC-' }, { alias: true }));
    ok(m.protect(PO + F, 1, { cache: 'WC' }, { alias: true }));
    expect(entryAt(m.abstract(), PO + F)?.prot.cache).toBe('WC');
    expect(m.abstract().frames.some((r) => r.memtype !== undefined)).toBe(false);
  });
});

describe('linux vunmap', () => {
  /** A booted model of a named scenario. */
  function bootIn(name: 'kernel' | 'kernel-small-pool', profile: Profile): Model {
    const s = scenarioNamed(name)!();
    const m = new Model({ config: s.config, frames: s.frames, profile });
    for (const cmd of s.boot) ok(applyCommand(m, cmd));
    m.takeEvents();
    return m;
  }
  const tables = (m: Model): number => m.abstract().tablesInUse;

  it('linux: one page of a 2M vmalloc leaf: the whole leaf goes, with the WARN (vunmap_pmd_range: pmd_clear_huge, WARN_ON(next - addr < PMD_SIZE))', () => {
    const m = boot('linux');
    ok(m.map(0, V, P2M, M, PAGE_KERNEL, { maxPage: '2M' }));
    ok(m.unmap(0, V + 5, 1));
    expect(m.takeEvents()).toEqual([{ kind: 'vunmap-huge', vpn: V, pages: M, pfn: P2M }]);
    for (const at of [V, V + 4, V + 5, V + 6, V + M - 1]) expect(entryAt(m.abstract(), at), `page ${at - V}`).toBeUndefined();
    // A range that covers the leaf clears it without a WARN.
    ok(m.map(0, V, P2M, M, PAGE_KERNEL, { maxPage: '2M' }));
    ok(m.unmap(0, V, M));
    expect(m.takeEvents()).toEqual([]);
  });

  it('linux: one page of a 1G leaf clears it whole (vunmap_pud_range: pud_clear_huge), no split, no table taken', () => {
    const m = boot('linux');
    const before = tables(m);
    ok(m.unmap(0, PO + F, 1));
    expect(m.takeEvents()).toEqual([{ kind: 'vunmap-huge', vpn: PO + G, pages: G, pfn: G }]);
    expect(entryAt(m.abstract(), PO + G)).toBeUndefined();
    expect(entryAt(m.abstract(), PO + 2 * G - 1)).toBeUndefined();
    expect(tables(m)).toBe(before);
  });

  it('strict: the same unmap splits the leaves and removes only the page', () => {
    const m = boot('strict');
    ok(m.map(0, V, P2M, M, PAGE_KERNEL, { maxPage: '2M' }));
    ok(m.unmap(0, V + 5, 1));
    expect(m.takeEvents()).toEqual([]);
    expect(entryAt(m.abstract(), V + 5)).toBeUndefined();
    expect(entryAt(m.abstract(), V + 4)).toMatchObject({ size: '4K', pfn: P2M + 4 });
    expect(entryAt(m.abstract(), V + 6)).toMatchObject({ size: '4K', pfn: P2M + 6 });
  });

  it('linux: a non-present 4K entry is cleared with a WARN (vunmap_pte_range: WARN_ON(!pte_none && !pte_present)), a present one silently', () => {
    const m = boot('linux');
    ok(m.protect(VM + 1, 1, { present: false }, { alias: false }));
    ok(m.unmap(0, VM, 3));
    expect(m.takeEvents()).toEqual([{ kind: 'vunmap-nonpresent', vpn: VM + 1, pages: 1, pfn: VM_PFN + 1 }]);
    for (const at of [VM, VM + 1, VM + 2]) expect(entryAt(m.abstract(), at)).toBeUndefined();
    expect(entryAt(m.abstract(), VM + 3)).toMatchObject({ size: '4K', present: true });
  });

  it('linux: a non-present 2M entry is a bad pmd, cleared whole, covered or not (pmd_none_or_clear_bad)', () => {
    const m = boot('linux');
    ok(m.setDirectMapInvalid(P2M, M, { flush: true }));
    expect(entryAt(m.abstract(), PO + P2M)).toMatchObject({ size: '2M', present: false });
    ok(m.unmap(0, PO + P2M + 3, 1));
    expect(m.takeEvents()).toEqual([{ kind: 'bad-entry', vpn: PO + P2M, pages: M, pfn: P2M }]);
    expect(entryAt(m.abstract(), PO + P2M)).toBeUndefined();
    expect(entryAt(m.abstract(), PO + P2M + M - 1)).toBeUndefined();
    expect(entryAt(m.abstract(), PO + P2M + M)).toMatchObject({ size: '2M', present: true });
    ok(m.setDirectMapInvalid(P2M + M, M, { flush: true }));
    ok(m.unmap(0, PO + P2M + M, M));
    expect(m.takeEvents()).toEqual([{ kind: 'bad-entry', vpn: PO + P2M + M, pages: M, pfn: P2M + M }]);
  });

  it('linux: events come in address order, a huge entry before the pages after it; the range is flushed on every CPU', () => {
    const m = boot('linux');
    ok(m.map(0, V, P2M, M + 4, PAGE_KERNEL, { maxPage: '2M' }));
    ok(m.protect(V + M + 2, 1, { present: false }, { alias: false }));
    expect(m.access(1, 0, V + 7, 'r', 'kernel')).toMatchObject({ ok: true, value: { fault: false } });
    // [V+100, V+M+3): part of the 2M leaf, then three 4K pages, the middle one non-present.
    ok(m.unmap(0, V + 100, M - 97));
    expect(m.takeEvents()).toEqual([
      { kind: 'vunmap-huge', vpn: V, pages: M, pfn: P2M },
      { kind: 'vunmap-nonpresent', vpn: V + M + 2, pages: 1, pfn: P2M + M + 2 },
    ]);
    expect(entryAt(m.abstract(), V + M + 3)).toMatchObject({ size: '4K', present: true });
    expect(m.abstract().tlb.filter((t) => t.leaf.vpn === V)).toEqual([]);
  });

  it('both: ENOENT as before when nothing in the range has an entry', () => {
    for (const profile of BOTH) {
      const m = boot(profile);
      expect(m.unmap(0, V, 4)).toMatchObject({ ok: false, error: { errno: 'ENOENT' } });
      expect(m.takeEvents()).toEqual([]);
    }
  });

  it('linux: a vunmap that empties a PTE table keeps it (tablesInUse unchanged), and a later 4K map reuses it', () => {
    const m = boot('linux');
    const boot0 = tables(m);
    ok(m.map(0, V, VM_PFN + 100, 1, PAGE_KERNEL, { maxPage: '4K' }));
    const one = tables(m);
    expect(one, 'a PMD and a PTE table for a fresh 1G region').toBe(boot0 + 2);
    ok(m.unmap(0, V, 1));
    expect(tables(m), 'vunmap frees no table').toBe(one);
    ok(m.map(0, V + 1, VM_PFN + 101, 1, PAGE_KERNEL, { maxPage: '4K' }));
    expect(tables(m), 'pte_alloc_kernel finds the kept table').toBe(one);
  });

  it('strict: the same vunmap frees the emptied tables, and the map allocates them again', () => {
    const m = boot('strict');
    const boot0 = tables(m);
    ok(m.map(0, V, VM_PFN + 100, 1, PAGE_KERNEL, { maxPage: '4K' }));
    ok(m.unmap(0, V, 1));
    expect(tables(m)).toBe(boot0);
    ok(m.map(0, V + 1, VM_PFN + 101, 1, PAGE_KERNEL, { maxPage: '4K' }));
    expect(tables(m)).toBe(boot0 + 2);
  });

  it('linux: a 2M map over a kept PTE table frees it (vmap_try_huge_pmd → pmd_free_pte_page): tablesInUse drops by one', () => {
    const m = boot('linux');
    ok(m.map(0, V, P2M, 1, PAGE_KERNEL, { maxPage: '4K' }));
    ok(m.unmap(0, V, 1));
    const kept = tables(m);
    ok(m.map(0, V, P2M, M, PAGE_KERNEL, { maxPage: '2M' }));
    expect(entryAt(m.abstract(), V)).toMatchObject({ size: '2M' });
    expect(tables(m)).toBe(kept - 1);
    // Unmapping the 2M leaf keeps the PMD table only.
    ok(m.unmap(0, V, M));
    expect(tables(m)).toBe(kept - 1);
  });

  it('linux: a 1G map over a kept PMD table frees it and every kept PTE table below it (vmap_try_huge_pud → pud_free_pmd_page)', () => {
    const m = boot('linux');
    const boot0 = tables(m);
    ok(m.map(0, V, VM_PFN + 100, 1, PAGE_KERNEL, { maxPage: '4K' }));
    ok(m.map(0, V + 7 * M, VM_PFN + 101, 1, PAGE_KERNEL, { maxPage: '4K' }));
    ok(m.unmap(0, V, 8 * M));
    expect(tables(m), 'one PMD and two PTE tables kept').toBe(boot0 + 3);
    ok(m.map(0, V, G, G, PAGE_KERNEL, { maxPage: '1G' }));
    expect(entryAt(m.abstract(), V)).toMatchObject({ size: '1G' });
    expect(tables(m)).toBe(boot0);
  });

  it('linux: explicit collapse frees the PTE table it unlinks; it is not kept', () => {
    const m = boot('linux');
    ok(m.map(0, V, P2M, M, PAGE_KERNEL, { maxPage: '4K' }));
    const before = tables(m);
    ok(m.collapse(0, V, '2M'));
    expect(tables(m)).toBe(before - 1);
    ok(m.unmap(0, V, M));
    expect(tables(m), 'the PMD table is kept').toBe(before - 1);
  });

  it('linux: kept tables count for ENOMEM: map, a CPA split and set_direct_map_invalid fail on a pool full of kept tables; a map that reuses one succeeds', () => {
    const run = (profile: Profile): { m: Model; n: number } => {
      const m = bootIn('kernel-small-pool', profile);
      const pool = m.config.tablePool.count;
      let n = 0;
      while (tables(m) < pool) ok(m.map(0, V + n * M, VM_PFN + 200 + n, 1, PAGE_KERNEL, { maxPage: '4K' })), n++;
      ok(m.unmap(0, V, n * M));
      return { m, n };
    };
    const { m, n } = run('linux');
    expect(n).toBeGreaterThan(1);
    expect(tables(m)).toBe(m.config.tablePool.count);
    expect(m.map(0, V + G, VM_PFN + 300, 1, PAGE_KERNEL, { maxPage: '4K' })).toMatchObject({ ok: false, error: { errno: 'ENOMEM' } });
    expect(m.protect(PO + P2M + 1, 1, { write: false }, { alias: false })).toMatchObject({ ok: false, error: { errno: 'ENOMEM' } });
    expect(m.setDirectMapInvalid(P2M + 1, 1, { flush: true })).toMatchObject({ ok: false, error: { errno: 'ENOMEM' } });
    ok(m.map(0, V + 5, VM_PFN + 301, 1, PAGE_KERNEL, { maxPage: '4K' }));
    // Strict freed them: the same requests succeed.
    const s = run('strict').m;
    ok(s.map(0, V + G, VM_PFN + 300, 1, PAGE_KERNEL, { maxPage: '4K' }));
    ok(s.protect(PO + P2M + 1, 1, { write: false }, { alias: false }));
  });

  it('clone copies the kept tables', () => {
    const m = boot('linux');
    ok(m.map(0, V, VM_PFN + 100, 1, PAGE_KERNEL, { maxPage: '4K' }));
    ok(m.unmap(0, V, 1));
    const c = m.clone();
    ok(c.map(0, V, P2M, M, PAGE_KERNEL, { maxPage: '2M' }));
    expect(tables(c)).toBe(tables(m) - 1);
    ok(m.map(0, V, VM_PFN + 100, 1, PAGE_KERNEL, { maxPage: '4K' }));
    expect(tables(m), 'the original still has its kept PTE table').toBe(tables(c) + 1);
  });
});
