/**
 * The postconditions of the process operations (spec/contracts/isolation.ts):
 * createProcess, exitProcess, mapUser, unmapUser and setLdt, clause by clause. A process
 * p is its three roots (spec/roots.ts processRootIds): the process-kernel root 3p (its
 * pgd: the user half, NX-poisoned, and the LDT slot are its own leaves), the user copy
 * 3p+1 (its own leaves: the user half with the prot asked for) and the asi root 3p+2
 * (which mirrors everything, so owns nothing). Every other root keeps its own entries
 * (effect.ts, the frame condition); the views follow from the mirrors.
 */
import { PAGES, VPN_LIMIT, type Vpn } from '../../address.ts';
import { LDT_PROT, LDT_SLOT_PAGES, ldtRemap, ldtSlotVpn, processRootIds } from '../../roots.ts';
import type { AbstractState, Leaf, RootId } from '../../state.ts';
import type { ProcessRoots } from '../../system.ts';
import { validateExitProcess, validateMapUser, validateSetLdt, validateUnmapUser } from '../isolation.ts';
import { breach, type Clause } from './clause.ts';
import { entriesOf, nothingBut, type Effect, type RootEdit } from './effect.ts';
import { firstMapped, meeting, removedAt, windowsOf, type Expectation } from './leaves.ts';
import { placedFrom } from './map.ts';
import { RangeSet, type Range } from './ranges.ts';
import { contractClauses, needsIsolation, type Contract, type Refusal } from './relation.ts';

const createSay = contractClauses('createProcess', {
  roots: 'the three roots of processRootIds(pid) exist, kinds process-kernel, process-user and asi with that pid, with no own leaves; every other root as it was',
  value: 'pid = 1 + the largest pid this system ever gave (pids are never reused): above every pid a root has; kernelRoot, userRoot, asiRoot = processRootIds(pid)',
  leaves: 'createProcess: no root gains or loses an entry',
  frames: 'createProcess: frames are unchanged',
  tlb: 'createProcess: TLBs and paging-structure caches are unchanged',
  obligations: 'createProcess: obligations are unchanged',
  tables: 'tablesInUse grows by the three top-level tables; ENOMEM tablePool when they do not fit',
});

const exitSay = contractClauses('exitProcess', {
  enoent: 'ENOENT pid: no live process has it',
  roots: 'its three roots are gone; every other root as it was',
  leaves: 'exitProcess: no other root changes',
  frames: 'frames keep their use (the LDT\'s go back to their owner)',
  tlb: 'every TLB and paging-structure-cache entry of its roots on every CPU is gone; every other one stays',
  obligations: 'exitProcess: obligations are unchanged',
  tables: 'its tables are freed (user half, LDT slot, three top-level ones)',
});

const mapUserSay = contractClauses('mapUser', {
  enoent: 'ENOENT pid: no live process has it',
  eexist: 'EEXIST vpn: a page of the range is mapped in the user half',
  leaves: 'the range is mapped as map would place it (largest leaves alignment allows, no cap) in the user copy with prot',
  nx: 'and in the process-kernel root with the same leaves NX-poisoned (execKernel = execUser = false); the asi root mirrors the latter',
  frames: 'mapUser: frames are unchanged',
  tlb: 'mapUser: no flush (TLBs and paging-structure caches unchanged)',
  obligations: 'mapUser: obligations are unchanged',
  tables: "the process-kernel root's footprint grows by the tables the range needs; ENOMEM tablePool",
});

/** unmapUser's sentences; zapPageRange (gather.ts) does all of it first and judges that half by them, under its own name. */
export const unmapUserSay = contractClauses('unmapUser', {
  enoent: 'ENOENT pid: no live process has it; ENOENT vpn: nothing in the range is mapped',
  leaves: 'both copies lose every page of the range (a huge leaf straddling an end is split first, its pieces outside kept exactly)',
  frames: 'unmapUser: frames are unchanged',
  tlb: "a process flush of the range: on every CPU the TLB entries of the process's three roots meeting it go, with every paging-structure-cache entry of those roots; other roots' entries stay",
  obligations: 'a process flush pays no obligation',
  tables: 'the tables it emptied are freed after that flush (free_pgtables)',
});

const setLdtSay = contractClauses('setLdt', {
  enoent: 'ENOENT pid: no live process has it; ENOENT pfn: a frame of the range is not data',
  ebusy: 'EBUSY pfn: a frame of the range holds the current LDT of a process',
  leaves: 'the new LDT is mapped in the LDT slot the current one does not use (slot 0 for a first LDT), 4K leaves with LDT_PROT at ldtSlotVpn(slot) + i → pfn + i, and the old slot is empty; the user copy mirrors it',
  frames: "frames keep their use (the old LDT's go back to their owner)",
  tlb: "a process flush of the old slot's range",
  obligations: 'a process flush pays no obligation',
  tables: "the LDT slot's tables stay until exitProcess; a first LDT needs them (ENOMEM tablePool)",
});

/** The live process p: its process-kernel root is there. */
const live = (s: AbstractState, pid: number): boolean => s.roots.some((r) => r.id === processRootIds(pid).kernelRoot && r.kind === 'process-kernel');
const ownEntries = (s: AbstractState, id: RootId) => entriesOf(s.roots.find((r) => r.id === id));
const noProcess = (s: AbstractState, pid: number, clause: Refusal['clause']): Refusal | null => (live(s, pid) ? null : { error: { errno: 'ENOENT', arg: 'pid' }, clause });
const rootsOf = (pid: number): RootId[] => Object.values(processRootIds(pid));

/** The LDT remap's two LDT slots (ldt_slot_va), where setLdt and exitProcess look. */
const ldtSlots = (s: AbstractState): Range => ({ vpn: ldtSlotVpn(s.config.levels, 0), pages: 2 * LDT_SLOT_PAGES });

/** The leaves of p's LDT remap: its current LDT (and, mid-switch, none other: setLdt leaves one). */
function ldtLeaves(s: AbstractState, pid: number): readonly Leaf[] {
  const leaves = ownEntries(s, processRootIds(pid).kernelRoot).leaves;
  const [lo, hi] = meeting(leaves, ldtRemap(s.config.levels));
  return leaves.slice(lo, hi);
}


export const CREATE_PROCESS: Contract<'createProcess'> = {
  source: 'spec/contracts/isolation.ts',
  capability: needsIsolation('createProcess'),
  say: createSay,
  args: () => null,
  state: () => null,
  scope: () => [],
  // value: above every pid in the state (an exited process's pid is not visible, so only that bound is decidable), and its root ids.
  value: (before, _c, value) => {
    const v = value as ProcessRoots;
    const top = Math.max(0, ...before.roots.map((r) => r.pid ?? 0));
    const ids = processRootIds(v.pid);
    const ok = Number.isInteger(v.pid) && v.pid > top && v.kernelRoot === ids.kernelRoot && v.userRoot === ids.userRoot && v.asiRoot === ids.asiRoot;
    return ok ? [] : [breach(createSay.value, `the largest pid before was ${top}; returned pid ${v.pid} with roots ${v.kernelRoot}, ${v.userRoot}, ${v.asiRoot}`)];
  },
  // roots: the three new, empty roots; tables: their three top-level tables; nothing else.
  effect: (_before, _c, value) => {
    const { pid } = value as ProcessRoots;
    const ids = processRootIds(pid);
    return nothingBut(RangeSet.EMPTY, {
      added: [
        { id: ids.kernelRoot, kind: 'process-kernel', pid },
        { id: ids.userRoot, kind: 'process-user', pid },
        { id: ids.asiRoot, kind: 'asi', pid },
      ],
    });
  },
};

export const EXIT_PROCESS: Contract<'exitProcess'> = {
  source: 'spec/contracts/isolation.ts',
  capability: needsIsolation('exitProcess'),
  say: exitSay,
  args: (_config, c) => validateExitProcess(c.pid),
  state: (before, c) => noProcess(before, c.pid, exitSay.enoent),
  scope: () => [],
  // roots, tlb: its three roots and all their cached entries gone; frames: its LDT's freed; tables: all of its roots' freed.
  effect: (before, c) =>
    nothingBut(RangeSet.EMPTY, { removed: rootsOf(c.pid), processFlush: { roots: rootsOf(c.pid) }, }),
};

/** The user-half range of a command, `pages` pages from `vpn`. */
const userRange = (c: { readonly vpn: Vpn; readonly pages: number }): Range => ({ vpn: c.vpn, pages: c.pages });

export const MAP_USER: Contract<'mapUser'> = {
  source: 'spec/contracts/isolation.ts',
  capability: needsIsolation('mapUser'),
  say: mapUserSay,
  args: (config, c) => validateMapUser(config, c.pid, c.vpn, c.pfn, c.pages, c.prot),
  // EEXIST: the pgd's user half (the user copy is equal to it but for NX: K1).
  state: (before, c) =>
    noProcess(before, c.pid, mapUserSay.enoent) ??
    (firstMapped(ownEntries(before, processRootIds(c.pid).kernelRoot), userRange(c)) === undefined ? null : { error: { errno: 'EEXIST', arg: 'vpn' }, clause: mapUserSay.eexist }),
  scope: () => [],
  // leaves, nx: the empty range tiled as map tiles it, in both copies; no flush.
  effect: (before, c) => {
    const ids = processRootIds(c.pid);
    const windows = new RangeSet([userRange(c)]);
    const nx = { ...c.prot, execKernel: false, execUser: false };
    const placed = (prot: typeof c.prot): Expectation => (p) => placedFrom(before.config, c, '1G', prot, p);
    const edits = new Map<RootId, RootEdit>([
      [ids.userRoot, { windows, expect: placed(c.prot), clause: mapUserSay.leaves }],
      [ids.kernelRoot, { windows, expect: placed(nx), clause: mapUserSay.nx }],
    ]);
    return nothingBut(RangeSet.EMPTY, { edits });
  },
};

/** Both copies' own entries with the range removed (removedAt: the split rule at its ends), judged under `clause`. */
function removalEdit(before: AbstractState, id: RootId, range: Range, clause: Clause): RootEdit {
  const e = ownEntries(before, id);
  return { windows: windowsOf(e, [range]), expect: removedAt(e, new RangeSet([range])), clause };
}

/** A command on a range of a process's user half (unmapUser, zapPageRange). */
type UserRangeCommand = { readonly pid: number; readonly vpn: Vpn; readonly pages: number };

/** unmapUser's state refusals (ENOENT pid, then ENOENT vpn: the pgd's user half has nothing in the range), under `enoent`. */
export function unmapUserRefusal(before: AbstractState, c: UserRangeCommand, enoent: Clause = unmapUserSay.enoent): Refusal | null {
  return (
    noProcess(before, c.pid, enoent) ??
    (firstMapped(ownEntries(before, processRootIds(c.pid).kernelRoot), userRange(c)) !== undefined ? null : { error: { errno: 'ENOENT', arg: 'vpn' }, clause: enoent })
  );
}

/**
 * unmapUser's effect, the copies' entries judged under `leaves`: both copies lose the
 * range; tlb: a process flush of it; tables: the emptied ones freed (pending unchanged).
 */
export function unmapUserEffect(before: AbstractState, c: UserRangeCommand, leaves: Clause = unmapUserSay.leaves): Effect {
  const ids = processRootIds(c.pid);
  const edits = new Map<RootId, RootEdit>([ids.userRoot, ids.kernelRoot].map((id) => [id, removalEdit(before, id, userRange(c), leaves)]));
  return nothingBut(RangeSet.EMPTY, { edits, processFlush: { roots: rootsOf(c.pid), range: userRange(c) } });
}

export const UNMAP_USER: Contract<'unmapUser'> = {
  source: 'spec/contracts/isolation.ts',
  capability: needsIsolation('unmapUser'),
  say: unmapUserSay,
  args: (config, c) => validateUnmapUser(config, c.pid, c.vpn, c.pages),
  state: (before, c) => unmapUserRefusal(before, c),
  scope: () => [],
  effect: (before, c) => unmapUserEffect(before, c),
};

/** Whether a frame of [pfn, pfn+pages) is one the current LDT of some process maps. */
function holdsLdt(s: AbstractState, c: { readonly pfn: number; readonly pages: number }): boolean {
  return s.roots.some((r) => r.kind === 'process-kernel' && r.pid !== undefined && ldtLeaves(s, r.pid).some((l) => l.pfn < c.pfn + c.pages && c.pfn < l.pfn + PAGES[l.size]));
}

function notData(s: AbstractState, c: { readonly pfn: number; readonly pages: number }): boolean {
  return s.frames.some((r) => r.pfn < c.pfn + c.pages && c.pfn < r.pfn + r.count && r.use !== 'data');
}

export const SET_LDT: Contract<'setLdt'> = {
  source: 'spec/contracts/isolation.ts',
  capability: needsIsolation('setLdt'),
  say: setLdtSay,
  args: (config, c) => validateSetLdt(config, c.pid, c.pfn, c.pages),
  state: (before, c) =>
    noProcess(before, c.pid, setLdtSay.enoent) ??
    (notData(before, c) ? { error: { errno: 'ENOENT', arg: 'pfn' }, clause: setLdtSay.enoent } : null) ??
    (holdsLdt(before, c) ? { error: { errno: 'EBUSY', arg: 'pfn' }, clause: setLdtSay.ebusy } : null),
  scope: () => [],
  // leaves: the other slot holds exactly the new LDT, the old one nothing; frames: the old LDT's freed; tlb: a process flush of the old slot.
  effect: (before, c) => {
    const levels = before.config.levels;
    const ids = processRootIds(c.pid);
    const old = ldtLeaves(before, c.pid);
    const oldSlot = old.length === 0 ? undefined : old[0]!.vpn < ldtSlotVpn(levels, 1) ? 0 : 1;
    const base = ldtSlotVpn(levels, oldSlot === 0 ? 1 : 0);
    const end = base + c.pages;
    // In the two slots (and whatever a wrong leaf there widens them to): the run of new 4K leaves, nothing else.
    const expect: Expectation = (p) => (p < base ? { until: base } : p < end ? { leaf: { vpn: p, pfn: c.pfn + (p - base), size: '4K', prot: LDT_PROT }, until: end } : { until: VPN_LIMIT });
    const windows = windowsOf(ownEntries(before, ids.kernelRoot), [ldtSlots(before)]);
    const extra: Partial<Effect> = oldSlot === undefined ? {} : { processFlush: { roots: rootsOf(c.pid), range: { vpn: ldtSlotVpn(levels, oldSlot), pages: LDT_SLOT_PAGES } } };
    return nothingBut(RangeSet.EMPTY, { edits: new Map([[ids.kernelRoot, { windows, expect, clause: setLdtSay.leaves }]]), ...extra });
  },
};
