/**
 * The impl's isolation capability (spec/contracts/isolation.ts) on the kernel scenario:
 * processes and their three real top-level tables, mirroring through shared tables,
 * KPTI clones, ASI, the LDT remap, the strict refusals and the linux differences.
 */
import { describe, expect, it } from 'vitest';
import { PAGES, kernelLayout } from '../spec/address.ts';
import { applyCommand } from '../spec/commands.ts';
import { LDT_SLOT_PAGES, ldtSlotVpn, processRootIds } from '../spec/roots.ts';
import { KERNEL_IMAGE, kernelScenario } from '../spec/scenario.ts';
import type { Prot } from '../spec/state.ts';
import type { Profile } from '../spec/system.ts';
import { createImpl, type RadixSystem } from '../impl/index.ts';

const USER_RW: Prot = { write: true, user: true, execKernel: false, execUser: false, global: false, cache: 'WB' };
const USER_RX: Prot = { write: false, user: true, execKernel: true, execUser: true, global: false, cache: 'WB' };
const MiB = 256;

function boot(profile: Profile = 'strict', pti = true): RadixSystem {
  const sc = kernelScenario();
  const sys = createImpl({ config: sc.config, frames: sc.frames, profile, isolation: true });
  for (const c of [...sc.boot, ...(pti ? sc.isolationBoot ?? [] : [])]) expect(applyCommand(sys, c).ok).toBe(true);
  return sys;
}

const L = kernelLayout(4);
const rootOf = (sys: RadixSystem, id: number) => sys.abstract().roots.find((r) => r.id === id);

describe('impl isolation', () => {
  it('is absent without the flag, and boots roots 1 and 2 outside tablesInUse with it', () => {
    const sc = kernelScenario();
    const plain = createImpl({ config: sc.config, frames: sc.frames });
    expect(plain.isolation).toBeUndefined();
    const sys = createImpl({ config: sc.config, frames: sc.frames, isolation: true });
    expect(sys.abstract().roots.map((r) => [r.id, r.kind])).toEqual([[0, 'kernel'], [1, 'kernel-user'], [2, 'asi-global']]);
    expect(sys.abstract().tablesInUse).toBe(plain.abstract().tablesInUse);
  });

  it('gives a process three counted tables that mirror init_mm, root 1 and root 2', () => {
    const sys = boot();
    const before = sys.abstract().tablesInUse;
    const p = sys.isolation!.createProcess();
    expect(p).toEqual({ ok: true, value: { pid: 1, ...processRootIds(1) } });
    const s = sys.abstract();
    expect(s.tablesInUse).toBe(before + 3);
    for (const id of [3, 4, 5]) expect(s.roots.find((r) => r.id === id)).toMatchObject({ leaves: [] });
    // The direct map through the process pgd; the cloned text through its user copy.
    expect(sys.translate(3, L.pageOffset + 5)).toMatchObject({ ok: true, value: { pfn: 5 } });
    expect(sys.translate(4, L.pageOffset + 5).ok).toBe(false);
    const text = sc().isolationBoot![0]! as { vpn: number };
    expect(sys.translate(4, text.vpn).ok).toBe(true);
    // asi root: the ASI global root's kernel half (nothing mapped yet).
    expect(sys.translate(5, L.pageOffset + 5).ok).toBe(false);
    expect(sys.translate(9, L.pageOffset).ok).toBe(false);
  });

  it('syncs a new init_mm top-level slot into existing processes (sync_global_pgds)', () => {
    const sys = boot();
    sys.isolation!.createProcess();
    const vpn = L.vmallocStart + 700 * PAGES['1G'];
    expect(sys.map(0, vpn, 100 * MiB, 1, { write: true, user: false, execKernel: false, execUser: false, global: true, cache: 'WB' }).ok).toBe(true);
    expect(sys.translate(3, vpn)).toMatchObject({ ok: true, value: { pfn: 100 * MiB } });
    expect(rootOf(sys, 3)!.diverged).toBeUndefined();
  });

  it('maps user pages in both copies, NX-poisoned in the kernel copy, and unmaps with a process flush', () => {
    const sys = boot();
    const iso = sys.isolation!;
    iso.createProcess();
    const pfn = 2048 * MiB;
    // Writable user pages of kernel text, which the image mapping executes: P2.
    expect(iso.mapUser(1, 0x400, KERNEL_IMAGE.textPfn, 4, USER_RW)).toMatchObject({ ok: false, error: { errno: 'EPERM', invariant: 'P2' } });
    expect(iso.mapUser(1, 0x400, pfn, 4, USER_RW).ok).toBe(true);
    expect(iso.mapUser(1, 0x401, pfn, 1, USER_RW)).toMatchObject({ ok: false, error: { errno: 'EEXIST' } });
    expect(iso.mapUser(2, 0x400, pfn, 1, USER_RX)).toMatchObject({ ok: false, error: { errno: 'ENOENT', arg: 'pid' } });
    expect(iso.mapUser(1, 0x800, pfn, 1, { ...USER_RW, global: true })).toMatchObject({ ok: false, error: { errno: 'EINVAL', arg: 'prot' } });
    const s = sys.abstract();
    expect(rootOf(sys, 4)!.leaves[0]).toMatchObject({ vpn: 0x400, pfn, prot: USER_RW });
    expect(rootOf(sys, 3)!.leaves[0]).toMatchObject({ vpn: 0x400, pfn, prot: { execUser: false, execKernel: false } });
    expect(rootOf(sys, 3)!.leaves).toHaveLength(4);
    expect(s.roots.find((r) => r.id === 5)!.diverged).toBeUndefined();
    expect(sys.access(0, 4, 0x400, 'w', 'user')).toMatchObject({ ok: true, value: { fault: false } });
    expect(sys.access(0, 3, 0x400, 'x', 'kernel')).toMatchObject({ ok: true, value: { fault: 'protection' } });
    expect(sys.access(1, 4, 0x401, 'r', 'user').ok).toBe(true);
    expect(sys.abstract().tlb.filter((e) => e.root === 4)).toHaveLength(2);
    const used = sys.abstract().tablesInUse;
    expect(iso.unmapUser(1, 0x400, 4).ok).toBe(true);
    expect(sys.abstract().tlb.filter((e) => e.root >= 3)).toEqual([]);
    // The user half's pud, pmd and pte tables are freed with it.
    expect(sys.abstract().tablesInUse).toBe(used - 3);
    expect(iso.unmapUser(1, 0x400, 4)).toMatchObject({ ok: false, error: { errno: 'ENOENT', arg: 'vpn' } });
  });

  it('exitProcess frees its tables, TLB entries and LDT frames', () => {
    const sys = boot();
    const iso = sys.isolation!;
    const base = sys.abstract().tablesInUse;
    iso.createProcess();
    expect(iso.mapUser(1, 0x400, 2048 * MiB, 1, USER_RW).ok).toBe(true);
    expect(sys.allocFrames(0, 0).ok).toBe(false);
    expect(iso.setLdt(1, 16 * MiB - 16, 16)).toMatchObject({ ok: true });
    expect(sys.access(0, 3, ldtSlotVpn(4, 0), 'r', 'kernel')).toMatchObject({ ok: true, value: { fault: false } });
    expect(iso.exitProcess(1).ok).toBe(true);
    const s = sys.abstract();
    expect(s.tablesInUse).toBe(base);
    expect(s.roots.map((r) => r.id)).toEqual([0, 1, 2]);
    expect(s.tlb.filter((e) => e.root >= 3)).toEqual([]);
    expect(s.frames.find((r) => r.pfn <= 16 * MiB - 16 && r.pfn + r.count > 16 * MiB - 16)!.use).toBe('data');
    expect(iso.exitProcess(1)).toMatchObject({ ok: false, error: { errno: 'ENOENT' } });
    expect(iso.exitProcess(0)).toMatchObject({ ok: false, error: { errno: 'EINVAL' } });
    expect(iso.createProcess()).toMatchObject({ ok: true, value: { pid: 2 } });
  });

  it('setLdt alternates slots, frees the old LDT and refuses a busy or non-data frame', () => {
    const sys = boot();
    const iso = sys.isolation!;
    iso.createProcess();
    const a = 16 * MiB - 32;
    expect(iso.setLdt(1, a, 2).ok).toBe(true);
    expect(iso.setLdt(1, a + 1, 1)).toMatchObject({ ok: false, error: { errno: 'EBUSY' } });
    expect(iso.setLdt(1, 20 * MiB, 1)).toMatchObject({ ok: false, error: { errno: 'ENOENT', arg: 'pfn' } });
    expect(iso.setLdt(1, a + 4, 1).ok).toBe(true);
    const own = rootOf(sys, 3)!.leaves;
    expect(own.map((l) => l.vpn)).toEqual([ldtSlotVpn(4, 1)]);
    // The user copy mirrors the LDT slot.
    expect(sys.translate(4, ldtSlotVpn(4, 1))).toMatchObject({ ok: true, value: { pfn: a + 4 } });
    expect(sys.abstract().frames.find((r) => r.pfn <= a && r.pfn + r.count > a)!.use).toBe('data');
    expect(iso.setLdt(1, a, LDT_SLOT_PAGES + 1)).toMatchObject({ ok: false, error: { errno: 'EINVAL', arg: 'pages' } });
  });

  it('ptiClone: strict refuses outside the allowlist; linux clones and leaves a later slot diverged', () => {
    const strict = boot();
    strict.isolation!.createProcess();
    expect(strict.isolation!.ptiClone(L.pageOffset, 512, 'pmd')).toMatchObject({ ok: false, error: { errno: 'EPERM', invariant: 'K2' } });
    expect(strict.isolation!.ptiClone(L.cpuEntryArea, 16, 'pte').ok).toBe(true);
    expect(strict.translate(4, L.cpuEntryArea + 1).ok).toBe(true);
    expect(rootOf(strict, 4)!.diverged).toBeUndefined();

    const linux = boot('linux');
    linux.isolation!.createProcess();
    expect(linux.isolation!.ptiClone(L.cpuEntryArea, 16, 'pte').ok).toBe(true);
    expect(linux.translate(1, L.cpuEntryArea + 1)).toMatchObject({ ok: true, value: { leaf: { prot: { global: true } } } });
    expect(linux.translate(0, L.cpuEntryArea + 1)).toMatchObject({ ok: true, value: { leaf: { prot: { global: true } } } });
    expect(linux.translate(4, L.cpuEntryArea + 1).ok).toBe(false);
    expect(rootOf(linux, 4)!.diverged).toEqual([L.cpuEntryArea - (L.cpuEntryArea % (512 * PAGES['1G']))]);
  });

  it('K3: strict refuses changing a cloned global page', () => {
    const sys = boot();
    expect(sys.isolation!.ptiClone(L.cpuEntryArea, 16, 'pte').ok).toBe(true);
    expect(sys.protect(L.cpuEntryArea + 1, 1, { global: false })).toMatchObject({ ok: false, error: { errno: 'EPERM', invariant: 'K3' } });
  });

  it('K3: strict refuses a global init_mm page over a process\'s LDT (the LDT slot is each process\'s own); a non-global one is no K3', () => {
    const sys = boot();
    sys.isolation!.createProcess();
    expect(sys.isolation!.setLdt(1, 16 * MiB - 32, 1).ok).toBe(true);
    const global: Prot = { write: false, user: false, execKernel: false, execUser: false, global: true, cache: 'WB' };
    expect(sys.map(0, ldtSlotVpn(4, 0), 40 * MiB, 1, global, { maxPage: '4K' })).toMatchObject({ ok: false, error: { errno: 'EPERM', invariant: 'K3' } });
    expect(sys.map(0, ldtSlotVpn(4, 0), 40 * MiB, 1, { ...global, global: false }, { maxPage: '4K' }).ok).toBe(true);
    // And the other way round: a process's new LDT under a global init_mm page.
    expect(sys.map(0, ldtSlotVpn(4, 1), 40 * MiB + 1, 1, global, { maxPage: '4K' }).ok).toBe(true);
    sys.isolation!.createProcess();
    expect(sys.isolation!.setLdt(2, 16 * MiB - 16, 1)).toMatchObject({ ok: true });
    expect(sys.isolation!.setLdt(2, 16 * MiB - 15, 1)).toMatchObject({ ok: false, error: { errno: 'EPERM', invariant: 'K3' } });
  });

  it('asiMap: strict refuses sensitive frames, maps nonsensitive ones; A2 guards them; asiUnmap flushes', () => {
    const sys = boot();
    const iso = sys.isolation!;
    iso.createProcess();
    expect(iso.asiMap(L.pageOffset + 2048 * MiB, 512)).toMatchObject({ ok: false, error: { errno: 'EPERM', invariant: 'A1' } });
    expect(iso.asiMap(L.pageOffset + 1, 512)).toMatchObject({ ok: false, error: { errno: 'EINVAL', arg: 'vpn' } });
    const v = L.pageOffset + 96 * MiB;
    expect(iso.asiMap(v, 512).ok).toBe(true);
    expect(sys.translate(2, v + 3)).toMatchObject({ ok: true, value: { pfn: 96 * MiB + 3, leaf: { size: '2M' } } });
    expect(sys.translate(5, v + 3)).toMatchObject({ ok: true, value: { pfn: 96 * MiB + 3 } });
    // A global direct-map page root 2 maps: changing it breaks K3 before A2.
    expect(sys.protect(v, 1, { write: false })).toMatchObject({ ok: false, error: { errno: 'EPERM', invariant: 'K3' } });
    expect(sys.access(0, 5, v, 'r', 'kernel').ok).toBe(true);
    expect(iso.asiUnmap(v, 512).ok).toBe(true);
    expect(sys.abstract().tlb.filter((e) => e.root === 5)).toEqual([]);
    expect(sys.translate(5, v).ok).toBe(false);
  });

  it('linux asiMap skips a 4K-mapped block with an asi-level event', () => {
    const sys = boot('linux');
    const v = L.pageOffset + 96 * MiB;
    expect(sys.split(0, v).ok).toBe(true);
    sys.takeEvents();
    expect(sys.isolation!.asiMap(v, 512).ok).toBe(true);
    expect(sys.takeEvents()).toEqual([{ kind: 'asi-level', vpn: v, pages: 512, pfn: 96 * MiB }]);
    expect(sys.translate(2, v).ok).toBe(false);
  });

  it('createProcess is ENOMEM when three tables do not fit', () => {
    const sc = kernelScenario({ tablePool: { pfn: kernelScenario().config.tablePool.pfn, count: 14 } });
    const sys = createImpl({ config: sc.config, frames: sc.frames, isolation: true });
    for (const c of sc.boot) applyCommand(sys, c);
    let last;
    for (let i = 0; i < 5; i++) last = sys.isolation!.createProcess();
    expect(last).toMatchObject({ ok: false, error: { errno: 'ENOMEM', arg: 'tablePool' } });
    expect(sys.abstract().tablesInUse).toBeLessThanOrEqual(14);
  });
});

function sc() {
  return kernelScenario();
}
