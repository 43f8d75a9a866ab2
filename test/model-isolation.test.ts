/**
 * The model's isolation capability (spec/contracts/isolation.ts, spec/roots.ts): roots 1
 * and 2 from boot, processes with their three roots, mapUser/unmapUser, ptiClone, asiMap,
 * asiUnmap, setLdt, exitProcess, under both profiles; each errno, the table counts, the
 * TLB effects and what translate/access see through a process's roots. Fixed addresses
 * and frames: no randomness.
 */
import { describe, expect, it } from 'vitest';
import { PAGES, kernelLayout } from '../spec/address.ts';
import { applyCommand, type Command } from '../spec/commands.ts';
import { outcome, type Errno, type Result } from '../spec/errors.ts';
import { LDT_PROT, ldtSlotVpn, slotPages } from '../spec/roots.ts';
import { KERNEL_IMAGE, scenarioNamed } from '../spec/scenario.ts';
import type { AbstractState, Prot } from '../spec/state.ts';
import type { Profile } from '../spec/system.ts';
import { invariantById } from '../checker/index.ts';
import { Model } from '../model/index.ts';

const M = PAGES['2M'];
const L = kernelLayout(4);
const PO = L.pageOffset;
const CEA = L.cpuEntryArea + 1;
/** A 2M-aligned user page and a 2M-aligned data frame (512 MiB) for it. */
const U = 4 * M;
const D = 0x20000;
/** Kernel text frames: read-only in every alias, so a user may execute them. */
const T = KERNEL_IMAGE.textPfn;
/** Data frames for LDTs (768 MiB). */
const LDT_PFN = 0x30000;
const USER_RX: Prot = { write: false, user: true, execKernel: true, execUser: true, global: false, cache: 'WB' };
const USER_RW: Prot = { write: true, user: true, execKernel: false, execUser: false, global: false, cache: 'WB' };

function boot(profile: Profile = 'strict', scenario = 'kernel', isolation = true): Model {
  const s = scenarioNamed(scenario)!();
  const m = new Model({ config: s.config, frames: s.frames, profile, isolation });
  for (const cmd of s.boot) expect(outcome(applyCommand(m, cmd)), JSON.stringify(cmd)).toBe('ok');
  m.takeEvents();
  return m;
}

function run(m: Model, c: Command): Result<unknown> {
  return applyCommand(m, c);
}

function ok(m: Model, c: Command): void {
  const r = run(m, c);
  expect(r.ok ? 'ok' : r.error.message, JSON.stringify(c)).toBe('ok');
}

/** Expects the command refused with errno on arg (and the invariant), the state exactly as before. */
function refused(m: Model, c: Command, errno: Errno, arg: string, invariant?: string): void {
  const before = structuredClone(m.abstract());
  const r = run(m, c);
  if (r.ok) throw new Error(`expected ${errno}, got ok: ${JSON.stringify(c)}`);
  expect([r.error.errno, r.error.arg], r.error.message).toEqual([errno, arg]);
  if (invariant !== undefined) expect(r.error.invariant).toBe(invariant);
  expect(m.abstract()).toEqual(before);
}

const root = (s: AbstractState, id: number) => s.roots.find((r) => r.id === id)!;
const holds = (s: AbstractState, ...ids: string[]): void => {
  for (const id of ids) expect(invariantById(id)!.check(s).map((w) => w.detail), id).toEqual([]);
};
const translated = (m: Model, r: number, vpn: number): number | string => {
  const t = m.translate(r, vpn);
  return t.ok ? t.value.pfn : t.error.errno;
};

describe('roots', () => {
  it('without the flag nothing changes: no capability, init_mm alone', () => {
    const m = boot('strict', 'kernel', false);
    expect(m.isolation).toBeUndefined();
    expect(m.abstract().roots.map((r) => r.id)).toEqual([0]);
  });

  it('with it, roots 0, 1 and 2 from boot, empty, counting no tables', () => {
    const plain = boot('strict', 'kernel', false).abstract();
    const s = boot().abstract();
    expect(s.roots.map((r) => [r.id, r.kind, r.leaves.length])).toEqual([[0, 'kernel', plain.roots[0]!.leaves.length], [1, 'kernel-user', 0], [2, 'asi-global', 0]]);
    expect(s.tablesInUse).toBe(plain.tablesInUse);
    expect(run(boot(), { op: 'translate', root: 3, vpn: PO })).toMatchObject({ ok: false, error: { errno: 'EINVAL', arg: 'root' } });
  });

  it('createProcess gives pids from 1, never reused, three roots and three tables each', () => {
    const m = boot();
    const t0 = m.abstract().tablesInUse;
    expect(m.isolation!.createProcess()).toEqual({ ok: true, value: { pid: 1, kernelRoot: 3, userRoot: 4, asiRoot: 5 } });
    expect(m.isolation!.createProcess()).toMatchObject({ ok: true, value: { pid: 2 } });
    const s = m.abstract();
    expect(s.roots.map((r) => [r.id, r.kind, r.pid])).toEqual([
      [0, 'kernel', undefined], [1, 'kernel-user', undefined], [2, 'asi-global', undefined],
      [3, 'process-kernel', 1], [4, 'process-user', 1], [5, 'asi', 1], [6, 'process-kernel', 2], [7, 'process-user', 2], [8, 'asi', 2],
    ]);
    expect(s.roots.every((r) => !('diverged' in r) && !('nonPresent' in r) || r.id === 0)).toBe(true);
    expect(s.tablesInUse).toBe(t0 + 6);
    ok(m, { op: 'exitProcess', pid: 2 });
    expect(m.abstract().tablesInUse).toBe(t0 + 3);
    expect(m.isolation!.createProcess()).toMatchObject({ ok: true, value: { pid: 3 } });
    // The process-kernel root sees init_mm's kernel half.
    expect(translated(m, 3, PO + 5)).toBe(5);
    expect(translated(m, 5, PO + 5)).toBe('ENOENT');
  });

  it('exitProcess: EINVAL pid, ENOENT pid', () => {
    const m = boot();
    refused(m, { op: 'exitProcess', pid: 0 }, 'EINVAL', 'pid');
    refused(m, { op: 'exitProcess', pid: 1 }, 'ENOENT', 'pid');
  });

  it('createProcess: ENOMEM when the three top-level tables do not fit', () => {
    const m = boot('strict', 'kernel-small-pool');
    const t0 = m.abstract().tablesInUse;
    const fit = Math.floor((24 - t0) / 3);
    for (let i = 0; i < fit; i++) expect(outcome(m.isolation!.createProcess())).toBe('ok');
    refused(m, { op: 'createProcess' }, 'ENOMEM', 'tablePool');
  });
});

describe('mapUser and unmapUser', () => {
  it('maps both copies, the kernel copy NX-poisoned, with their tables counted once; the asi root mirrors it', () => {
    for (const profile of ['strict', 'linux'] as const) {
      const m = boot(profile);
      m.isolation!.createProcess();
      const t0 = m.abstract().tablesInUse;
      ok(m, { op: 'mapUser', pid: 1, vpn: U, pfn: T, pages: M + 1, prot: USER_RX });
      const s = m.abstract();
      expect(root(s, 4).leaves.map((l) => [l.vpn, l.pfn, l.size, l.prot.execUser])).toEqual([[U, T, '2M', true], [U + M, T + M, '4K', true]]);
      expect(root(s, 3).leaves.map((l) => [l.vpn, l.size, l.prot.execKernel, l.prot.execUser])).toEqual([[U, '2M', false, false], [U + M, '4K', false, false]]);
      expect(root(s, 5).leaves).toEqual([]);
      // PTE, PMD and PUD tables of the user half, shared by the pair.
      expect(s.tablesInUse).toBe(t0 + 3);
      expect(translated(m, 5, U + 7)).toBe(T + 7);
      expect(m.access(0, 4, U + 1, 'x', 'user')).toMatchObject({ ok: true, value: { fault: false } });
      expect(m.access(0, 3, U + 1, 'x', 'user')).toEqual({ ok: true, value: { fault: 'protection' } });
      // Roots 0-2 have no user half.
      expect(run(m, { op: 'translate', root: 0, vpn: U })).toMatchObject({ ok: false, error: { errno: 'EINVAL', arg: 'vpn' } });
      holds(s, 'K1', 'K3', 'K4');
    }
  });

  it('mapUser errors in order; EPERM under strict only', () => {
    const m = boot();
    m.isolation!.createProcess();
    refused(m, { op: 'mapUser', pid: 0, vpn: U, pfn: D, pages: 1, prot: USER_RW }, 'EINVAL', 'pid');
    refused(m, { op: 'mapUser', pid: 1, vpn: PO, pfn: D, pages: 1, prot: USER_RW }, 'EINVAL', 'vpn');
    refused(m, { op: 'mapUser', pid: 1, vpn: U, pfn: D, pages: 0, prot: USER_RW }, 'EINVAL', 'pages');
    refused(m, { op: 'mapUser', pid: 1, vpn: U, pfn: D, pages: 1, prot: { ...USER_RW, user: false } }, 'EINVAL', 'prot');
    refused(m, { op: 'mapUser', pid: 1, vpn: U, pfn: D, pages: 1, prot: { ...USER_RW, global: true } }, 'EINVAL', 'prot');
    refused(m, { op: 'mapUser', pid: 2, vpn: U, pfn: D, pages: 1, prot: USER_RW }, 'ENOENT', 'pid');
    ok(m, { op: 'mapUser', pid: 1, vpn: U, pfn: D, pages: 1, prot: USER_RW });
    refused(m, { op: 'mapUser', pid: 1, vpn: U - 1, pfn: D, pages: 2, prot: USER_RW }, 'EEXIST', 'vpn');
    // A writable user mapping of kernel rodata, then of kernel text (executable through the
    // image mapping, so P2 comes first); an executable one of a data frame the direct map
    // writes is the page cache's everyday case, no executing side of P2.
    refused(m, { op: 'mapUser', pid: 1, vpn: U + 8, pfn: KERNEL_IMAGE.rodataPfn, pages: 1, prot: USER_RW }, 'EPERM', 'prot', 'P4');
    refused(m, { op: 'mapUser', pid: 1, vpn: U + 8, pfn: KERNEL_IMAGE.textPfn, pages: 1, prot: USER_RW }, 'EPERM', 'prot', 'P2');
    ok(m, { op: 'mapUser', pid: 1, vpn: U + 8, pfn: D, pages: 1, prot: USER_RX });
    const lx = boot('linux');
    lx.isolation!.createProcess();
    ok(lx, { op: 'mapUser', pid: 1, vpn: U + 8, pfn: KERNEL_IMAGE.rodataPfn, pages: 1, prot: USER_RW });
  });

  it('mapUser: ENOMEM when the user half needs tables the pool lacks', () => {
    const m = boot('strict', 'kernel-small-pool');
    while (m.abstract().tablesInUse + 3 <= 24) m.isolation!.createProcess();
    const free = 24 - m.abstract().tablesInUse;
    expect(free).toBeLessThan(3);
    refused(m, { op: 'mapUser', pid: 1, vpn: U, pfn: D, pages: 1, prot: USER_RW }, 'ENOMEM', 'tablePool');
  });

  it('unmapUser splits a straddling huge leaf, flushes the process roots only, and frees the tables it emptied', () => {
    const m = boot();
    m.isolation!.createProcess();
    m.isolation!.createProcess();
    const t0 = m.abstract().tablesInUse;
    ok(m, { op: 'mapUser', pid: 1, vpn: U, pfn: D, pages: M, prot: USER_RW });
    ok(m, { op: 'mapUser', pid: 2, vpn: U, pfn: D, pages: M, prot: USER_RW });
    refused(m, { op: 'unmapUser', pid: 1, vpn: U + M, pages: 4 }, 'ENOENT', 'vpn');
    refused(m, { op: 'unmapUser', pid: 3, vpn: U, pages: 4 }, 'ENOENT', 'pid');
    for (const r of [3, 4, 7]) m.access(1, r, U + 3, 'r', 'user');
    m.access(1, 0, PO, 'r', 'kernel');
    ok(m, { op: 'unmapUser', pid: 1, vpn: U + 3, pages: 1 });
    let s = m.abstract();
    expect(root(s, 4).leaves).toHaveLength(M - 1);
    expect(root(s, 4).leaves.some((l) => l.vpn === U + 3)).toBe(false);
    expect(s.tlb.map((e) => e.root)).toEqual([0, 7]);
    expect((s.walkCache ?? []).some((w) => w.root === 3 || w.root === 4)).toBe(false);
    // Process 1 now has a PTE table too.
    expect(s.tablesInUse).toBe(t0 + 2 + 2 + 1);
    ok(m, { op: 'unmapUser', pid: 1, vpn: U, pages: M });
    s = m.abstract();
    expect(root(s, 3).leaves).toEqual([]);
    expect(s.tablesInUse).toBe(t0 + 2);
  });
});

describe('ptiClone', () => {
  it('strict: clones the cpu_entry_area PTEs into root 1, seen by every user copy, and flushes them', () => {
    const m = boot();
    m.isolation!.createProcess();
    const t0 = m.abstract().tablesInUse;
    m.access(0, 0, CEA, 'r', 'kernel');
    ok(m, { op: 'ptiClone', vpn: CEA, pages: 3, level: 'pte' });
    const s = m.abstract();
    expect(root(s, 1).leaves.map((l) => l.vpn)).toEqual([CEA, CEA + 1, CEA + 2]);
    expect(root(s, 1).leaves[0]!.prot).toEqual(root(s, 0).leaves.find((l) => l.vpn === CEA)!.prot);
    expect(s.tablesInUse).toBe(t0 + 3);
    expect(s.tlb).toEqual([]);
    expect(translated(m, 4, CEA + 1)).toBe(translated(m, 0, CEA + 1));
    expect(translated(m, 4, CEA + 3)).toBe('ENOENT');
    holds(s, 'K2', 'K3', 'K4');
  });

  it('pmd level clones the whole 4K-mapped block', () => {
    const m = boot();
    ok(m, { op: 'ptiClone', vpn: CEA, pages: 1, level: 'pmd' });
    expect(root(m.abstract(), 1).leaves.map((l) => l.vpn)).toEqual(Array.from({ length: 8 }, (_, i) => CEA + i));
  });

  it('errors: EINVAL level, EPERM K2 outside the allowlist (strict), ENOMEM', () => {
    const m = boot();
    refused(m, { op: 'ptiClone', vpn: CEA, pages: 1, level: 'pud' as 'pmd' }, 'EINVAL', 'level');
    refused(m, { op: 'ptiClone', vpn: PO, pages: 1, level: 'pte' }, 'EPERM', 'vpn', 'K2');
    const lx = boot('linux');
    ok(lx, { op: 'ptiClone', vpn: PO, pages: 1, level: 'pte' });
    // A 1G leaf's block goes in as a 2M leaf, whatever the level.
    expect(root(lx.abstract(), 1).leaves.map((l) => [l.vpn, l.size])).toEqual([[PO, '2M']]);
    const small = boot('strict', 'kernel-small-pool');
    while (small.abstract().tablesInUse + 3 <= 24) small.isolation!.createProcess();
    refused(small, { op: 'ptiClone', vpn: CEA, pages: 1, level: 'pte' }, 'ENOMEM', 'tablePool');
  });

  it('linux: sets G on the kernel leaves and the copies, flushes nothing', () => {
    const m = boot('linux');
    ok(m, { op: 'protect', vpn: CEA, pages: 8, change: { global: false } });
    m.access(0, 0, CEA, 'r', 'kernel');
    ok(m, { op: 'ptiClone', vpn: CEA, pages: 2, level: 'pte' });
    const s = m.abstract();
    expect(root(s, 0).leaves.filter((l) => l.vpn >= CEA && l.vpn < CEA + 8).map((l) => l.prot.global)).toEqual([true, true, false, false, false, false, false, false]);
    expect(root(s, 1).leaves.map((l) => l.prot.global)).toEqual([true, true]);
    expect(s.tlb).toHaveLength(1);
  });

  it('linux: a slot root 1 fills after a process was created is diverged in its user copy; strict mirrors every slot', () => {
    const lx = boot('linux');
    lx.isolation!.createProcess();
    ok(lx, { op: 'ptiClone', vpn: CEA, pages: 1, level: 'pte' });
    lx.isolation!.createProcess();
    const s = lx.abstract();
    const slot = Math.floor(CEA / slotPages(4)) * slotPages(4);
    expect(root(s, 4).diverged).toEqual([slot]);
    expect(root(s, 7).diverged).toBeUndefined();
    expect(translated(lx, 4, CEA)).toBe('ENOENT');
    expect(translated(lx, 7, CEA)).toBe(translated(lx, 0, CEA));
    const st = boot();
    st.isolation!.createProcess();
    ok(st, { op: 'ptiClone', vpn: CEA, pages: 1, level: 'pte' });
    expect(root(st.abstract(), 4).diverged).toBeUndefined();
    expect(translated(st, 4, CEA)).toBe(translated(st, 0, CEA));
  });

  it('strict: a core operation that changes a global page root 1 maps is EPERM K3', () => {
    const m = boot();
    ok(m, { op: 'ptiClone', vpn: CEA, pages: 1, level: 'pte' });
    refused(m, { op: 'protect', vpn: CEA, pages: 1, change: { global: false } }, 'EPERM', 'change', 'K3');
    ok(m, { op: 'protect', vpn: CEA + 1, pages: 1, change: { global: false } });
  });
});

describe('asiMap and asiUnmap', () => {
  it('strict: copies the direct map into root 2 (seen by the asi roots), and asiUnmap flushes it and frees its tables', () => {
    const m = boot();
    m.isolation!.createProcess();
    const t0 = m.abstract().tablesInUse;
    ok(m, { op: 'asiMap', vpn: PO, pages: 2 * M });
    let s = m.abstract();
    expect(root(s, 2).leaves.map((l) => [l.vpn, l.pfn, l.size])).toEqual([[PO, 0, '2M'], [PO + M, M, '2M']]);
    expect(s.tablesInUse).toBe(t0 + 2);
    expect(translated(m, 5, PO + 3)).toBe(3);
    expect(translated(m, 5, PO + 2 * M)).toBe('ENOENT');
    m.access(2, 5, PO + 3, 'r', 'kernel');
    ok(m, { op: 'asiUnmap', vpn: PO, pages: M });
    s = m.abstract();
    expect(root(s, 2).leaves.map((l) => l.vpn)).toEqual([PO + M]);
    expect(s.tlb).toEqual([]);
    ok(m, { op: 'asiUnmap', vpn: PO, pages: 2 * M });
    expect(m.abstract().tablesInUse).toBe(t0);
    holds(m.abstract(), 'A1', 'A2');
  });

  it('errors: EINVAL vpn and pages; EPERM A1 on sensitive frames (strict); EPERM A2 for a core op on a copied page', () => {
    const m = boot();
    refused(m, { op: 'asiMap', vpn: PO + 1, pages: M }, 'EINVAL', 'vpn');
    refused(m, { op: 'asiMap', vpn: PO, pages: 100 }, 'EINVAL', 'pages');
    refused(m, { op: 'asiUnmap', vpn: L.vmallocStart, pages: M }, 'EINVAL', 'vpn');
    const user = PO + 0x80000;
    refused(m, { op: 'asiMap', vpn: user, pages: M }, 'EPERM', 'vpn', 'A1');
    ok(boot('linux'), { op: 'asiMap', vpn: user, pages: M });
    ok(m, { op: 'asiMap', vpn: PO, pages: M });
    refused(m, { op: 'unmap', root: 0, vpn: PO + 1, pages: 1 }, 'EPERM', 'vpn', 'A2');
    // Removing the frame from the direct map breaks an older rule first: root 2 still maps it.
    refused(m, { op: 'setDirectMapInvalid', pfn: 1, count: 1, flush: true }, 'EPERM', 'pfn', 'P7');
  });

  it('linux: skips a 4K-mapped block with an asi-level event, and asiUnmap keeps the tables', () => {
    const m = boot('linux');
    ok(m, { op: 'split', root: 0, vpn: PO });
    m.takeEvents();
    const t0 = m.abstract().tablesInUse;
    ok(m, { op: 'asiMap', vpn: PO, pages: 2 * M });
    expect(root(m.abstract(), 2).leaves.map((l) => [l.vpn, l.size])).toEqual([[PO + M, '2M']]);
    expect(m.takeEvents()).toEqual([{ kind: 'asi-level', vpn: PO, pages: M, pfn: 0 }]);
    ok(m, { op: 'asiUnmap', vpn: PO, pages: 2 * M });
    expect(root(m.abstract(), 2).leaves).toEqual([]);
    expect(m.abstract().tablesInUse).toBe(t0 + 2);
    const st = boot();
    ok(st, { op: 'split', root: 0, vpn: PO });
    ok(st, { op: 'asiMap', vpn: PO, pages: M });
    expect(root(st.abstract(), 2).leaves).toHaveLength(M);
  });
});

describe('setLdt', () => {
  it('maps the first LDT in slot 0, the next in slot 1, unmaps and flushes the old one, whose frames go back to their owner', () => {
    for (const profile of ['strict', 'linux'] as const) {
      const m = boot(profile);
      m.isolation!.createProcess();
      m.isolation!.createProcess();
      const t0 = m.abstract().tablesInUse;
      ok(m, { op: 'setLdt', pid: 1, pfn: LDT_PFN, pages: 2 });
      let s = m.abstract();
      const slot0 = ldtSlotVpn(4, 0);
      expect(root(s, 3).leaves).toEqual([{ vpn: slot0, pfn: LDT_PFN, size: '4K', prot: LDT_PROT }, { vpn: slot0 + 1, pfn: LDT_PFN + 1, size: '4K', prot: LDT_PROT }]);
      expect(root(s, 4).leaves).toEqual([]);
      expect(translated(m, 4, slot0 + 1)).toBe(LDT_PFN + 1);
      expect(translated(m, 7, slot0)).toBe('ENOENT');
      expect(s.tablesInUse).toBe(t0 + 3);
      m.access(0, 4, slot0, 'r', 'kernel');
      m.access(0, 7, U, 'r', 'kernel');
      ok(m, { op: 'setLdt', pid: 1, pfn: LDT_PFN + 16, pages: 1 });
      s = m.abstract();
      expect(root(s, 3).leaves.map((l) => [l.vpn, l.pfn])).toEqual([[ldtSlotVpn(4, 1), LDT_PFN + 16]]);
      expect(s.frames.find((r) => r.pfn <= LDT_PFN && LDT_PFN < r.pfn + r.count)!.use).toBe('data');
      expect(s.tlb).toEqual([]);
      expect(s.tablesInUse).toBe(t0 + 3);
      holds(s, 'K5', 'K1', 'K4');
      // The old LDT's frame went back to its owner (still data): another process may take it.
      refused(m, { op: 'setLdt', pid: 2, pfn: LDT_PFN + 16, pages: 1 }, 'EBUSY', 'pfn');
      m.access(3, 3, ldtSlotVpn(4, 1), 'r', 'kernel');
      m.access(3, 0, PO, 'r', 'kernel');
      ok(m, { op: 'exitProcess', pid: 1 });
      s = m.abstract();
      expect(s.frames.find((r) => r.pfn <= LDT_PFN + 16 && LDT_PFN + 16 < r.pfn + r.count)!.use).toBe('data');
      expect(s.tlb.map((e) => e.root)).toEqual([0]);
      expect(s.tablesInUse).toBe(t0 - 3);
    }
  });

  it('errors: EINVAL pid and pages, ENOENT pid, ENOMEM for the first LDT', () => {
    const m = boot();
    m.isolation!.createProcess();
    refused(m, { op: 'setLdt', pid: 0, pfn: LDT_PFN, pages: 1 }, 'EINVAL', 'pid');
    refused(m, { op: 'setLdt', pid: 1, pfn: LDT_PFN, pages: 17 }, 'EINVAL', 'pages');
    refused(m, { op: 'setLdt', pid: 2, pfn: LDT_PFN, pages: 1 }, 'ENOENT', 'pid');
    const small = boot('strict', 'kernel-small-pool');
    while (small.abstract().tablesInUse + 3 <= 24) small.isolation!.createProcess();
    refused(small, { op: 'setLdt', pid: 1, pfn: LDT_PFN, pages: 1 }, 'ENOMEM', 'tablePool');
  });
});
