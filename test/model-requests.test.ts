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
