/**
 * K family: KPTI copies, the allowlist, global translations, mirrored top-level slots, the LDT
 * remap; A family: ASI restricted roots. Each invariant's bad state, built by hand around the
 * booted kernel with roots 1 and 2 and one process (roots 3, 4, 5), and what they allow.
 */
import { describe, expect, it } from 'vitest';
import { PAGES, X86_64_LAYOUT_4LEVEL as L, pagesPerEntry } from '../spec/address.ts';
import { invariantById } from '../checker/index.ts';
import { LDT_PROT, ldtRemap, ldtSlotVpn, processRootIds, rootView, slotPages } from '../spec/roots.ts';
import { KERNEL_IMAGE as K } from '../spec/scenario.ts';
import { PAGE_KERNEL_RO, PAGE_KERNEL_ROX, type AbstractRoot, type AbstractState, type Leaf, type Prot, type RootKind, type TlbEntry } from '../spec/state.ts';
import { DM, IMAGE, bootedState, leaf, leafAt, replaceLeafAt, withFrameFlags, withLeaves, withoutRange } from './states.ts';
import { familyIds, negativeSuite, type NegativeCase } from './invariants-suite.ts';

const booted = bootedState();
const M2 = PAGES['2M'];
const G1 = PAGES['1G'];
const SLOT = slotPages(4);
const slotOf = (vpn: number): number => Math.floor(vpn / SLOT) * SLOT;
const V = L.vmallocStart;
/** The huge vmalloc area: 2M leaves from V + 1024 mapping frames HUGE_PFN on. */
const HUGE_PFN = 104 * 256;
/** A data frame only the direct map maps, 2M-aligned: its direct-map leaf is the 2M leaf at DM + LONE. */
const LONE = 50 * 256;
/** The first cpu_entry_area page (frame CEA_PFN) and the entry text, as init_mm maps them and pti clones them. */
const CEA = L.cpuEntryArea + 1;
const CEA_PFN = 41 * 256;
const TEXT = leafAt(booted, IMAGE + K.textPfn);
const CEA_LEAF = leafAt(booted, CEA);
/** A user page at U on a frame of user memory (sensitive in the kernel scenario), and the process's LDT. */
const U = 4 * M2;
const UF = 0x80000;
const GB = 0x40000;
const USER_RX: Prot = { write: false, user: true, execKernel: true, execUser: true, global: false, cache: 'WB' };
const USER_LEAF = leaf(U, UF, '4K', USER_RX);
/** The pgd's copy of it, NX-poisoned by __pti_set_user_pgtbl. */
const POISONED = leaf(U, UF, '4K', { ...USER_RX, execKernel: false, execUser: false });
const LDT_VPN = ldtSlotVpn(4, 0);
const LDT_PFN = 0x30000;
const LDT_LEAF = leaf(LDT_VPN, LDT_PFN, '4K', LDT_PROT);

const about = (re: RegExp) => expect.stringMatching(re) as unknown as string;
const whole = (root: number, l: Leaf) => ({ root, vpn: l.vpn, pages: PAGES[l.size], frames: [{ pfn: l.pfn, count: PAGES[l.size] }] });
const setProt = (s: AbstractState, vpn: number, p: Partial<Prot>) => replaceLeafAt(s, vpn, (l) => ({ ...l, prot: { ...l.prot, ...p } }));
const withTlb = (s: AbstractState, ...tlb: TlbEntry[]): AbstractState => ({ ...s, tlb });
const freed = (s: AbstractState): AbstractState => withFrameFlags(s, LDT_PFN, 1, { use: 'free' });
const mkRoot = (id: number, kind: RootKind, leaves: readonly Leaf[], pid?: number): AbstractRoot =>
  ({ id, kind, ...(pid === undefined ? {} : { pid }), leaves: [...leaves].sort((a, b) => a.vpn - b.vpn) });
const editRoot = (s: AbstractState, id: number, f: (r: AbstractRoot) => AbstractRoot): AbstractState => ({ ...s, roots: s.roots.map((r) => (r.id === id ? f(r) : r)) });
const diverge = (s: AbstractState, id: number, ...slots: number[]): AbstractState => editRoot(s, id, (r) => ({ ...r, diverged: slots.map(slotOf) }));

/** Own leaves of root 1 (pti), root 2 (asiGlobal) and the process's pgd, user copy and ASI root. */
type Own = Partial<Record<'pti' | 'asiGlobal' | 'kernel' | 'user' | 'asi', readonly Leaf[]>>;
/** A process's three roots with their own leaves: by default the user page in both KPTI copies (the pgd's NX) and the LDT in the pgd only. */
function processRoots(pid: number, own: Own = {}): AbstractRoot[] {
  const ids = processRootIds(pid);
  return [
    mkRoot(ids.kernelRoot, 'process-kernel', own.kernel ?? [POISONED, LDT_LEAF], pid),
    mkRoot(ids.userRoot, 'process-user', own.user ?? [USER_LEAF], pid),
    mkRoot(ids.asiRoot, 'asi', own.asi ?? [], pid),
  ];
}
/** The booted kernel with roots 1 (the entry text and a cpu_entry_area page cloned) and 2 (empty), and process 1. */
const isolated = (own: Own = {}, base: AbstractState = booted): AbstractState => ({
  ...base,
  roots: [base.roots[0]!, mkRoot(1, 'kernel-user', own.pti ?? [TEXT, CEA_LEAF]), mkRoot(2, 'asi-global', own.asiGlobal ?? []), ...processRoots(1, own)],
});

const KA = [...familyIds('K'), ...familyIds('A')];
/** Every K and A invariant, fast check and definition, finds nothing. */
function holdsAll(s: AbstractState): void {
  for (const id of KA) {
    const inv = invariantById(id)!;
    expect(inv.check(s).map((w) => w.detail), id).toEqual([]);
    expect(inv.holds(s).map((w) => w.detail), `${id} holds`).toEqual([]);
  }
}
/** What invariant `id` finds, checked to be what its definition finds too. */
function found(id: string, s: AbstractState) {
  const inv = invariantById(id)!;
  const ws = inv.check(s);
  expect(inv.holds(s)).toEqual(ws);
  return ws;
}

const KC: Record<string, NegativeCase[]> = {
  K1: [
    { name: 'a user page mapped in the user copy only', state: () => isolated({ kernel: [LDT_LEAF] }), want: { ...whole(4, USER_LEAF), detail: about(/in the user copy is not in the kernel copy/) } },
    { name: 'a user page mapped in the pgd only', state: () => isolated({ user: [] }), want: { ...whole(3, POISONED), detail: about(/in the kernel copy is not in the user copy/) } },
    { name: 'the pgd copy left executable (no NX poisoning)', state: () => isolated({ kernel: [USER_LEAF, LDT_LEAF] }), want: { ...whole(3, USER_LEAF), detail: about(/not NX-poisoned/) } },
    {
      name: 'the copies translate the page to different frames',
      state: () => isolated({ user: [{ ...USER_LEAF, pfn: UF + 1 }] }),
      want: { root: 4, vpn: U, pages: 1, frames: [{ pfn: UF + 1, count: 1 }], detail: about(/in the user copy is 4K leaf .* in the kernel copy/) },
    },
    {
      // No operation builds it, but the statement is for every process: a lone pgd still has its user half judged.
      name: 'a kernel copy with no user copy left, its user page executable',
      state: () => {
        const s = isolated({ kernel: [{ ...POISONED, prot: USER_RX }, LDT_LEAF] });
        return { ...s, roots: s.roots.filter((r) => r.id !== 4) };
      },
      want: { ...whole(3, POISONED), detail: about(/not in the user copy/) },
    },
    {
      name: 'writable in the user copy only (a permission change made to one copy)',
      state: () => isolated({ user: [{ ...USER_LEAF, prot: { ...USER_RX, write: true } }] }),
      want: { ...whole(4, USER_LEAF), detail: about(/in the kernel copy/) },
    },
  ],
  K2: [
    {
      name: 'kernel data cloned past __end_rodata',
      state: () => isolated({ pti: [TEXT, leafAt(booted, IMAGE + K.dataPfn)] }),
      want: { root: 1, vpn: IMAGE + K.dataPfn, pages: M2, frames: [{ pfn: K.dataPfn, count: M2 }], detail: about(/outside the PTI allowlist/) },
    },
    {
      name: 'a 1G leaf in the cpu_entry_area range, inside the allowlist',
      state: () => isolated({ pti: [TEXT, leaf(L.cpuEntryArea, GB, '1G', PAGE_KERNEL_RO)] }),
      want: { root: 1, vpn: L.cpuEntryArea, pages: G1, frames: [{ pfn: GB, count: G1 }], detail: about(/a 1G leaf in a user copy/) },
    },
    {
      // The leaf is the pgd's own; the user copy translates it through its mirrored LDT slot.
      name: "a 1G leaf in the pgd's LDT slot, seen by the user copy",
      state: () => isolated({ kernel: [POISONED, leaf(ldtRemap(4).vpn, GB, '1G', LDT_PROT)] }),
      want: { root: 4, vpn: ldtRemap(4).vpn, pages: G1, frames: [{ pfn: GB, count: G1 }], detail: about(/a 1G leaf/) },
    },
  ],
  K3: [
    {
      name: 'a global user page',
      state: () => isolated({ kernel: [{ ...POISONED, prot: { ...POISONED.prot, global: true } }, LDT_LEAF], user: [{ ...USER_LEAF, prot: { ...USER_RX, global: true } }] }),
      want: { ...whole(3, POISONED), detail: about(/a global translation in a per-process part/) },
    },
    {
      name: 'an LDT mapped global (map_ldt_struct keeping _PAGE_GLOBAL)',
      state: () => isolated({ kernel: [POISONED, { ...LDT_LEAF, prot: { ...LDT_PROT, global: true } }] }),
      want: { ...whole(3, LDT_LEAF), detail: about(/a global translation in a per-process part/) },
    },
    {
      // Both leaves are global: the witness is the first root's.
      name: 'a stale global clone: init_mm remaps the cpu_entry_area page after pti cloned it',
      state: () => replaceLeafAt(isolated(), CEA, (l) => ({ ...l, pfn: CEA_PFN + 100 })),
      want: { root: 0, vpn: CEA, pages: 1, frames: [{ pfn: CEA_PFN + 100, count: 1 }], detail: about(/is global, but root 1 maps/) },
    },
    {
      name: "init_mm's entry made non-global while the clone stays global: the witness is the clone",
      state: () => setProt(isolated(), CEA, { global: false }),
      want: { ...whole(1, CEA_LEAF), detail: about(/is global, but root 0 maps/) },
    },
  ],
  K4: [
    {
      name: 'a missing pgd sync: the vmalloc slot of the pgd diverged',
      state: () => diverge(isolated(), 3, V),
      want: { root: 3, vpn: slotOf(V), pages: SLOT, detail: about(/does not hold root 0's entry/) },
    },
    {
      name: 'the pgd lists a vmalloc leaf of its own',
      state: () => isolated({ kernel: [POISONED, LDT_LEAF, leaf(V + 9000, LONE)] }),
      want: { ...whole(3, leaf(V + 9000, LONE)), detail: about(/a slot root 3 takes from root 0/) },
    },
    {
      name: 'the user copy lists its own LDT leaf (the slot is its pgd\'s)',
      state: () => isolated({ user: [USER_LEAF, LDT_LEAF] }),
      want: { ...whole(4, LDT_LEAF), detail: about(/a slot root 4 takes from root 3/) },
    },
    {
      name: 'the ASI root lists a user page of its own (its user half is the pgd\'s)',
      state: () => isolated({ asi: [POISONED] }),
      want: { ...whole(5, POISONED), detail: about(/a slot root 5 takes from root 3/) },
    },
  ],
  K5: [
    {
      name: 'write_ldt frees the old LDT without unmapping it',
      state: () => freed(isolated()),
      want: { ...whole(3, LDT_LEAF), detail: about(/the LDT slot still maps a freed frame/) },
    },
    {
      name: 'unmapped but not flushed: the user copy\'s TLB still reaches the freed LDT page',
      state: () => withTlb(freed(isolated({ kernel: [POISONED] })), { cpu: 1, root: 4, leaf: LDT_LEAF }),
      want: { ...whole(4, LDT_LEAF), detail: about(/cpu 1 .*a TLB entry of the LDT slot still reaches a freed frame/) },
    },
  ],
};

const AC: Record<string, NegativeCase[]> = {
  A1: [
    {
      // Only the sensitive pages of the 2M leaf are named.
      name: 'sensitive frames in the vmalloc area the restricted roots share with init_mm',
      state: () => withFrameFlags(isolated(), HUGE_PFN + 600, 4, { sensitive: true }),
      want: { root: 2, vpn: V + 1024 + 600, pages: 4, frames: [{ pfn: HUGE_PFN + 600, count: 4 }], detail: about(/a restricted root maps a sensitive frame/) },
    },
    {
      name: "asi_map of a user page's direct-map alias (user memory is sensitive)",
      state: () => isolated({ asiGlobal: [leaf(DM + UF, UF)] }),
      want: { root: 2, vpn: DM + UF, pages: 1, frames: [{ pfn: UF, count: 1 }] },
    },
    {
      name: "a diverged kernel slot of a process's ASI root maps a sensitive frame itself",
      state: () => diverge(isolated({ asi: [leaf(DM + UF + 1, UF + 1)] }), 5, DM),
      want: { root: 5, vpn: DM + UF + 1, pages: 1, frames: [{ pfn: UF + 1, count: 1 }] },
    },
  ],
  A2: [
    {
      name: 'set_memory_ro in init_mm not propagated to the restricted copy',
      state: () => setProt(isolated({ asiGlobal: [leaf(DM + LONE + 3, LONE + 3)] }), DM + LONE, { write: false }),
      want: { ...whole(2, leaf(DM + LONE + 3, LONE + 3)), detail: about(/init_mm maps 2M leaf .* there/) },
    },
    {
      name: 'a page removed from the direct map (secretmem) still in the restricted copy',
      state: () => withoutRange(isolated({ asiGlobal: [leaf(DM + LONE + 3, LONE + 3)] }), DM + LONE, M2),
      want: { ...whole(2, leaf(DM + LONE + 3, LONE + 3)), detail: about(/init_mm does not map all of it/) },
    },
    {
      name: "a restricted 2M copy over init_mm's split leaf with one piece gone",
      state: () => isolated({ asiGlobal: [leaf(DM + LONE, LONE, '2M')] }, splitDm((i) => i !== 7)),
      want: { ...whole(2, leaf(DM + LONE, LONE, '2M')), detail: about(/does not map all of it/) },
    },
  ],
};

/** init_mm with the 2M direct-map leaf at DM + LONE split into 4K pieces (`keep` picks which stay). */
function splitDm(keep: (i: number) => boolean = () => true): AbstractState {
  const pieces = Array.from({ length: M2 }, (_, i) => leaf(DM + LONE + i, LONE + i)).filter((_, i) => keep(i));
  return withLeaves(withoutRange(booted, DM + LONE, M2), ...pieces);
}

describe('K and A: each invariant catches its bad state with the right witness', () => {
  it('covers every K invariant', () => expect(Object.keys(KC).sort()).toEqual(familyIds('K').sort()));
  it('covers every A invariant', () => expect(Object.keys(AC).sort()).toEqual(familyIds('A').sort()));
  negativeSuite(KC);
  negativeSuite(AC);
});

describe('K and A: what is allowed', () => {
  it('a state without isolation roots holds them all vacuously, frees and sensitive frames included', () => {
    holdsAll(withFrameFlags(freed(booted), HUGE_PFN, 8, { sensitive: true }));
  });

  it('the base state holds: NX-poisoned pgd copy, LDT only in the pgd, global clones identical to init_mm, sensitive user memory in the user half', () => {
    const s = isolated();
    holdsAll(s);
    // The subtle parts are really there: the copies differ in execute, the user copy and the ASI root see the pgd's leaves.
    expect([s.roots[3]!.leaves[0]!.prot.execUser, s.roots[4]!.leaves[0]!.prot.execUser]).toEqual([false, true]);
    expect(rootView(s, 4)).toContainEqual(LDT_LEAF);
    expect(rootView(s, 5)).toContainEqual(POISONED);
    expect(s.frames.find((r) => r.pfn <= UF && UF < r.pfn + r.count)?.sensitive).toBe(true);
  });

  it('K1: a non-executable user page identical in both copies is fine', () => {
    const rw = leaf(U + 1, UF + 1, '4K', { ...USER_RX, write: true, execKernel: false, execUser: false });
    holdsAll(isolated({ kernel: [POISONED, rw, LDT_LEAF], user: [USER_LEAF, rw] }));
  });

  it('K2: the allowlist edges, just inside and just outside', () => {
    const p4d = pagesPerEntry(4);
    const inside = [
      leaf(IMAGE + K.textPfn, K.textPfn, '4K', PAGE_KERNEL_ROX),
      leaf(IMAGE + K.dataPfn - 1, K.dataPfn - 1, '4K', PAGE_KERNEL_RO),
      leaf(L.cpuEntryArea + p4d - 1, CEA_PFN + 50, '4K', PAGE_KERNEL_RO),
      leaf(L.espfix + p4d - M2, GB, '2M', PAGE_KERNEL_RO),
    ];
    holdsAll(isolated({ pti: inside }));
    for (const vpn of [IMAGE + K.textPfn - 1, IMAGE + K.dataPfn, L.espfix + p4d]) {
      const out = leaf(vpn, CEA_PFN + 60, '4K', PAGE_KERNEL_RO);
      // Root 1's leaf, and the process's user copy translating it through its mirror.
      expect(found('K2', isolated({ pti: [...inside, out] }))).toMatchObject([whole(1, out), whole(4, out)]);
    }
  });

  it("K2 does not look at the pgd's kernel half: init_mm's direct map seen through root 3", () => {
    const s = isolated();
    expect(rootView(s, 3).some((l) => l.vpn === DM + LONE)).toBe(true);
    expect(found('K2', s)).toEqual([]);
  });

  it('K3: non-global translations may differ between processes (their LDTs and user pages), and global ones may differ in size', () => {
    const other = processRoots(2, { kernel: [{ ...POISONED, pfn: UF + 9 }, { ...LDT_LEAF, pfn: LDT_PFN + 16 }], user: [{ ...USER_LEAF, pfn: UF + 9 }] });
    const piece = leaf(IMAGE + K.textPfn + 5, K.textPfn + 5, '4K', PAGE_KERNEL_ROX);
    const s = isolated({ pti: [piece, CEA_LEAF] });
    holdsAll({ ...s, roots: [...s.roots, ...other] });
  });

  it('K3 scoped to a conflict both leaves meet reports it once, as the full check and the definition do', () => {
    const s = replaceLeafAt(isolated(), CEA, (l) => ({ ...l, pfn: CEA_PFN + 100 }));
    const k3 = invariantById('K3')!;
    expect(k3.holds(s)).toHaveLength(1);
    expect(k3.check(s)).toHaveLength(1);
    expect(k3.check(s, { vpn: CEA, pages: 1 })).toHaveLength(1);
  });

  it('K4: a diverged slot is reported once, naming no frames, and its own leaves there are not reported again', () => {
    const ws = found('K4', diverge(isolated({ kernel: [POISONED, LDT_LEAF, leaf(V + 9000, LONE)] }), 3, V));
    expect(ws).toHaveLength(1);
    expect(ws[0]).not.toHaveProperty('frames');
  });

  it("K5: a freed frame mapped or cached outside the LDT slot is not K5's, nor a live frame cached in it", () => {
    const s = freed(isolated({ kernel: [POISONED] }));
    expect(found('K5', withTlb(s, { cpu: 0, root: 0, leaf: leafAt(s, DM + LDT_PFN) }))).toEqual([]);
    expect(found('K5', withTlb(isolated(), { cpu: 0, root: 4, leaf: LDT_LEAF }))).toEqual([]);
  });

  it('A1: sensitive frames only init_mm and process roots map are fine; restricted roots mapping non-sensitive ones too', () => {
    const s = withFrameFlags(isolated({ asiGlobal: [leaf(DM + LONE, LONE)] }), LONE + 1, 8, { sensitive: true });
    expect(rootView(s, 5)).toContainEqual(leaf(V + 1, 100 * 256));
    holdsAll(s);
  });

  it('A2: identical copies, a 4K piece of a 2M leaf or a 2M leaf over all its 4K pieces', () => {
    holdsAll(isolated({ asiGlobal: [leaf(DM + LONE + 3, LONE + 3)] }));
    holdsAll(isolated({ asiGlobal: [leaf(DM + LONE, LONE, '2M')] }, splitDm()));
  });
});
