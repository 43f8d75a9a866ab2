/**
 * The model keeps the policy in every reachable state, and a refused operation changes
 * nothing: 200 random sequences of core operations on the booted kernel
 * scenario, with addresses clustered where page-table code goes wrong (region edges,
 * 2M/1G boundaries, the page either side, addresses used a moment ago, the direct-map
 * alias of a frame just mapped elsewhere) and leaves of every size. Half the runs get a
 * table pool only a little larger than the boot needs, so ENOMEM paths run too. The state
 * shape and the whole invariant catalogue are checked on the state each sequence ends in.
 */
import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PAGES, X86_64_LAYOUT_4LEVEL as L, type PageSize } from '../spec/address.ts';
import { applyCommand, type Command } from '../spec/commands.ts';
import { STRICT_POLICY } from '../spec/contracts/index.ts';
import { outcome } from '../spec/errors.ts';
import { tableFootprint } from '../spec/footprint.ts';
import { checkAll, invariantById } from '../checker/index.ts';
import { TABLE_POOL, kernelScenario, type Scenario } from '../spec/scenario.ts';
import { CACHE_MODES, PAGE_KERNEL, PAGE_KERNEL_EXEC, PAGE_KERNEL_RO, PAGE_KERNEL_ROX, type AbstractState, type Prot } from '../spec/state.ts';
import type { ProtChange } from '../spec/system.ts';
import { Model } from '../model/index.ts';
import { normalizeFrames } from '../model/frames.ts';
import { compareTlbEntries } from '../model/tlb.ts';
import { fcParams } from './seed.ts';

const M = PAGES['2M'];
const G = PAGES['1G'];

// ---- addresses: anchors from the scenario, offsets that hit edges, recent reuse ----

function anchors(s: Scenario): { vpns: number[]; pfns: number[] } {
  const vpns = new Set<number>();
  for (const r of s.regions) for (const v of [r.vpn, r.vpn + r.pages, r.vpn + M, r.vpn + G]) vpns.add(v);
  for (const c of s.boot) if (c.op === 'map') [c.vpn, c.vpn + c.pages].forEach((v) => vpns.add(v));
  // Free vmalloc and module space at 1G and 2M boundaries, where new huge leaves go.
  for (let k = 1; k <= 3; k++) vpns.add(L.vmallocStart + k * G);
  vpns.add(L.modules + 3 * M);
  const pfns = new Set<number>();
  for (const r of s.frames) [r.pfn, r.pfn + r.count - 1, r.pfn + M + 3].forEach((p) => pfns.add(p));
  for (const p of [G, G + 37 * M]) pfns.add(p);
  return { vpns: [...vpns].sort((a, b) => a - b), pfns: [...pfns].sort((a, b) => a - b) };
}

const offsetArb = fc.oneof(
  { weight: 6, arbitrary: fc.constant(0) },
  { weight: 3, arbitrary: fc.integer({ min: -2, max: 2 }) },
  { weight: 2, arbitrary: fc.constantFrom(-M, -M + 1, M - 1, M, M + 1, 3 * M) },
  { weight: 2, arbitrary: fc.integer({ min: 0, max: 4 * M }) },
);

type Where =
  | { readonly from: 'anchor'; readonly i: number; readonly off: number }
  | { readonly from: 'recent'; readonly back: number; readonly off: number };
type Frame =
  | { readonly from: 'anchor'; readonly i: number; readonly off: number }
  /** The frame behind a recent address through the direct map or the kernel image. */
  | { readonly from: 'aliasOf'; readonly back: number }
  /** A frame congruent to the vpn modulo a huge size, so map can use huge leaves. */
  | { readonly from: 'congruent'; readonly i: number; readonly size: '2M' | '1G' };

interface Sketch {
  readonly op: Command['op'];
  readonly where: Where;
  readonly frame: Frame;
  readonly pages: number;
  readonly prot: Prot;
  readonly change: ProtChange;
  readonly flag: boolean;
  readonly maxPage: PageSize | undefined;
  readonly size: '2M' | '1G';
  readonly cpu: number;
  readonly kind: 'r' | 'w' | 'x';
}

const whereArb = (n: number): fc.Arbitrary<Where> =>
  fc.oneof(
    { weight: 3, arbitrary: fc.record({ from: fc.constant('anchor' as const), i: fc.nat(n - 1), off: offsetArb }) },
    { weight: 2, arbitrary: fc.record({ from: fc.constant('recent' as const), back: fc.nat(5), off: offsetArb }) },
  );
const frameArb = (n: number): fc.Arbitrary<Frame> =>
  fc.oneof(
    { weight: 3, arbitrary: fc.record({ from: fc.constant('anchor' as const), i: fc.nat(n - 1), off: fc.oneof(fc.constant(0), fc.nat(600)) }) },
    { weight: 2, arbitrary: fc.record({ from: fc.constant('aliasOf' as const), back: fc.nat(5) }) },
    { weight: 2, arbitrary: fc.record({ from: fc.constant('congruent' as const), i: fc.nat(n - 1), size: fc.constantFrom('2M' as const, '1G' as const) }) },
  );

/** Mostly the kernel's own protections; sometimes ones policy must refuse (W+X, user). */
const protArb: fc.Arbitrary<Prot> = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom(PAGE_KERNEL, PAGE_KERNEL_RO, PAGE_KERNEL_ROX, { ...PAGE_KERNEL, cache: 'WC' as const }) },
  { weight: 1, arbitrary: fc.constantFrom(PAGE_KERNEL_EXEC, { ...PAGE_KERNEL_RO, user: true }) },
);
const changeArb: fc.Arbitrary<ProtChange> = fc.oneof(
  { weight: 5, arbitrary: fc.constantFrom<ProtChange>({ write: false }, { write: true }, { exec: true }, { exec: false }, { cache: 'WC' }, { cache: 'WB' }, { global: false }) },
  { weight: 1, arbitrary: fc.record({ write: fc.boolean(), exec: fc.boolean(), cache: fc.constantFrom(...CACHE_MODES) }, { requiredKeys: [] }) },
);
const OPS: readonly (readonly [Command['op'], number])[] = [
  ['map', 14], ['unmap', 8], ['protect', 14], ['setDirectMapInvalid', 3], ['setDirectMapDefault', 5],
  ['split', 6], ['collapse', 6], ['translate', 2], ['access', 8], ['flush', 3], ['flushAll', 1],
];

function sketchArb(vpns: number, pfns: number): fc.Arbitrary<Sketch> {
  return fc.record({
    op: fc.oneof(...OPS.map(([op, weight]) => ({ weight, arbitrary: fc.constant(op) }))),
    where: whereArb(vpns),
    frame: frameArb(pfns),
    pages: fc.oneof(
      { weight: 6, arbitrary: fc.integer({ min: 1, max: 16 }) },
      { weight: 2, arbitrary: fc.constantFrom(M - 1, M, M + 1) },
      { weight: 1, arbitrary: fc.constantFrom(G, G + M + 1) },
      { weight: 1, arbitrary: fc.constantFrom(0, -1) },
    ),
    prot: protArb,
    change: changeArb,
    flag: fc.boolean(),
    maxPage: fc.constantFrom<PageSize | undefined>(undefined, '4K', '2M', '1G'),
    size: fc.constantFrom('2M' as const, '1G' as const),
    cpu: fc.oneof({ weight: 10, arbitrary: fc.nat(1) }, { weight: 1, arbitrary: fc.constant(2) }),
    kind: fc.constantFrom('r' as const, 'w' as const, 'x' as const),
  });
}

/** Sketches to commands, one pass, remembering recent addresses. */
function resolve(s: Scenario, a: { vpns: number[]; pfns: number[] }, sketches: readonly Sketch[]): Command[] {
  const recent: number[] = [];
  const at = <T>(xs: readonly T[], i: number): T => xs[i % xs.length]!;
  return sketches.map((k) => {
    const vpn = k.where.from === 'anchor' ? at(a.vpns, k.where.i) + k.where.off : (recent[k.where.back] ?? a.vpns[0]!) + k.where.off;
    const pfn = ((): number => {
      switch (k.frame.from) {
        case 'anchor': return at(a.pfns, k.frame.i) + k.frame.off;
        case 'aliasOf': {
          const v = recent[k.frame.back] ?? vpn;
          return v >= L.kernelText ? v - L.kernelText : v - L.pageOffset;
        }
        case 'congruent': {
          const n = PAGES[k.frame.size];
          return at(a.pfns, k.frame.i) - (at(a.pfns, k.frame.i) % n) + (vpn % n);
        }
      }
    })();
    recent.unshift(vpn);
    // map of a GiB range that cannot use 1G leaves would make 262144 leaves: cap it.
    const mapPages = k.pages >= G && (vpn % G !== 0 || pfn % G !== 0) ? 3 * M : k.pages;
    const count = Math.min(k.pages, 64);
    const dmPfn = vpn - L.pageOffset >= 0 && vpn - L.pageOffset < s.config.frames ? vpn - L.pageOffset : pfn;
    switch (k.op) {
      case 'map': return { op: 'map', root: 0, vpn, pfn, pages: mapPages, prot: k.prot, ...(k.maxPage === undefined ? {} : { maxPage: k.maxPage }) };
      case 'unmap': return { op: 'unmap', root: 0, vpn, pages: k.pages };
      case 'protect': return { op: 'protect', vpn, pages: k.pages, change: k.change, alias: k.flag };
      case 'setDirectMapInvalid': return { op: 'setDirectMapInvalid', pfn: dmPfn, count, flush: k.flag };
      case 'setDirectMapDefault': return { op: 'setDirectMapDefault', pfn: dmPfn, count, flush: k.flag };
      case 'split': return { op: 'split', root: 0, vpn };
      case 'collapse': return { op: 'collapse', root: 0, vpn, size: k.size };
      case 'translate': return { op: 'translate', root: 0, vpn };
      case 'access': return { op: 'access', cpu: k.cpu, root: 0, vpn, kind: k.kind, mode: 'kernel' };
      case 'flush': return { op: 'flush', vpn, pages: k.pages };
      default: return { op: 'flushAll' };
    }
  });
}

// ---- what must hold after every command ----

/**
 * Whether two abstract states are the same. The model's state is readonly arrays that it
 * replaces and never edits (TypeScript rejects in-place edits of `readonly` arrays and
 * fields), so an unchanged state hands out the very same arrays; anything else must be
 * deeply equal to count as unchanged.
 */
function sameState(a: AbstractState, b: AbstractState): boolean {
  const shallow =
    a.frames === b.frames && a.tlb === b.tlb && a.pendingFlush === b.pendingFlush && a.tablesInUse === b.tablesInUse &&
    a.pendingTableFrees === b.pendingTableFrees && a.roots.length === b.roots.length && a.roots.every((r, i) => r.leaves === b.roots[i]!.leaves);
  return shallow || isDeepStrictEqual(a, b);
}

const POLICY = STRICT_POLICY.map((p) => invariantById(p.id)!);
const policyBroken = (a: AbstractState) => checkAll(a, undefined, POLICY);

/** The structural facts of the abstract state (spec/state.ts, spec/footprint.ts), as one failure string or null. */
function shapeError(a: AbstractState): string | null {
  const leaves = a.roots[0]!.leaves;
  for (let i = 0; i < leaves.length; i++) {
    const l = leaves[i]!;
    const n = PAGES[l.size];
    // n is a power of two, so the quotient is exact (and cheaper than % on 52-bit numbers).
    if (!Number.isInteger(l.vpn / n) || !Number.isInteger(l.pfn / n)) return `leaf ${l.vpn} ${l.size} is not aligned`;
    const next = leaves[i + 1];
    if (next !== undefined && next.vpn < l.vpn + n) return `leaves ${l.vpn} and ${next.vpn} overlap or are unsorted`;
  }
  if (a.tablesInUse !== tableFootprint(a.config.levels, leaves) + a.pendingTableFrees) return 'tablesInUse is not the footprint of the leaves plus the pending tables';
  if (a.tablesInUse > a.config.tablePool.count) return 'more tables than the pool';
  if (JSON.stringify(normalizeFrames(a.frames)) !== JSON.stringify(a.frames)) return 'frame runs not canonical';
  for (let i = 1; i < a.pendingFlush.length; i++) {
    const p = a.pendingFlush[i - 1]!;
    if (p.vpn + p.pages >= a.pendingFlush[i]!.vpn) return 'obligations not sorted, disjoint and merged';
  }
  for (let i = 1; i < a.tlb.length; i++) if (compareTlbEntries(a.tlb[i - 1]!, a.tlb[i]!) >= 0) return 'TLB not in canonical order';
  return null;
}

/** The scenario with a table pool of `count` frames: the rest of the old pool becomes data. */
function withTablePool(s: Scenario, count: number): Scenario {
  const frames = s.frames.flatMap((r) =>
    r.use === 'pagetable' ? [{ ...r, count }, { ...r, pfn: r.pfn + count, count: r.count - count, use: 'data' as const }] : [r],
  );
  return { ...s, config: { ...s.config, tablePool: { pfn: TABLE_POOL.pfn, count } }, frames };
}

describe('model property', () => {
  it('keeps every strict-policy invariant in each reachable state and every invariant at the end; refusals change nothing', () => {
    const roomy = kernelScenario();
    const tight = withTablePool(roomy, 16);
    const pools = anchors(roomy);
    const seen = new Map<string, number>();
    const boot = (s: Scenario): Model => {
      const m = new Model(s);
      for (const c of s.boot) if (!applyCommand(m, c).ok) throw new Error(`boot failed at ${JSON.stringify(c)}`);
      return m;
    };
    const booted = { tight: boot(tight), roomy: boot(roomy) };
    for (const b of Object.values(booted)) {
      expect(policyBroken(b.abstract())).toEqual([]);
      expect(shapeError(b.abstract())).toBeNull();
    }
    fc.assert(
      fc.property(fc.boolean(), fc.array(sketchArb(pools.vpns.length, pools.pfns.length), { maxLength: 100, size: 'max' }), (small, sketches) => {
        const s = small ? tight : roomy;
        const m = (small ? booted.tight : booted.roomy).clone();
        let before = m.abstract();
        for (const c of resolve(s, pools, sketches)) {
          const r = applyCommand(m, c);
          const key = `${c.op} ${outcome(r)}`;
          seen.set(key, (seen.get(key) ?? 0) + 1);
          const a = m.abstract();
          if (sameState(a, before)) continue; // the state checked after the previous command
          if (!r.ok) throw new Error(`refused ${JSON.stringify(c)} (${r.error.message}) changed the state`);
          const bad = policyBroken(a)[0];
          if (bad !== undefined) throw new Error(`after ${JSON.stringify(c)}: strict policy ${bad.id} (${bad.title}): ${bad.witnesses[0]?.detail}`);
          before = a;
        }
        // The state's shape and the whole invariant catalogue (checker/) on the state the sequence reached.
        const shape = shapeError(before);
        if (shape !== null) throw new Error(shape);
        const broken = checkAll(before);
        if (broken.length > 0) throw new Error(`invariant ${broken[0]!.id} (${broken[0]!.title}): ${broken[0]!.witnesses[0]?.detail}`);
      }),
      // 120 reach every outcome asserted below in a few seconds; the seeded campaigns of
      // .ci/run run the model through thousands more sequences.
      fcParams({ numRuns: 120 }),
    );
    // The sequences reached every operation's success and its refusals.
    for (const op of OPS.map(([o]) => o)) expect(seen.get(`${op} ok`) ?? 0, `${op} ok`).toBeGreaterThan(0);
    for (const key of ['map EPERM', 'protect EPERM', 'setDirectMapInvalid EPERM', 'map EEXIST', 'unmap ENOENT', 'collapse EINVAL', 'split ENOMEM', 'map ENOMEM']) {
      expect(seen.get(key) ?? 0, key).toBeGreaterThan(0);
    }
  });
});
