/**
 * The model's incremental structures (model/entry-store.ts: init_mm's lists edited in
 * place and copied on write, the table counts, the frame index of the leaves outside the
 * direct map, the checks' lookup through it) against what they stand for, on random
 * sequences of every operation (isolation and clients included) under both profiles and
 * with a small table pool (ENOMEM, and strict's refusals undone):
 * - after every command the table counts give tableFootprint of both entry lists and
 *   need exactly their tables, and the frame index holds exactly the leaves outside the
 *   direct map;
 * - every snapshot abstract() handed out stays as it was when handed out;
 * - the state a sequence ends in is the state a fresh model reaches replaying it without
 *   a snapshot in between (strict: only the commands that succeeded, since a refused one
 *   must leave nothing behind);
 * - the invariant checks give the same witnesses through the frame index as by a scan;
 * - the chunked list under the frame index (model/chunked-list.ts), and the index itself,
 *   under random inserts, removals and clones, against a plain sorted array: the same
 *   items in the same order, every chunk within its bounds, and a clone never changed by
 *   the edits of either side.
 */
import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PAGES, kernelLayout } from '../spec/address.ts';
import { applyCommand, type Command } from '../spec/commands.ts';
import { tableFootprint } from '../spec/footprint.ts';
import { ptiBoot, SCENARIOS, type Scenario } from '../spec/scenario.ts';
import { PAGE_KERNEL, PAGE_KERNEL_RO, type AbstractState, type Leaf } from '../spec/state.ts';
import type { Profile } from '../spec/system.ts';
import { leafIntersectsAny, leafPages, mergeIntervals } from '../checker/common.ts';
import { checkAll } from '../checker/index.ts';
import { commandsArb } from '../fuzz/arbitraries.ts';
import { Model } from '../model/index.ts';
import { ChunkedList } from '../model/chunked-list.ts';
import { EntryStore } from '../model/entry-store.ts';
import { FrameIndex } from '../model/frame-index.ts';
import { makeLeaf } from '../model/leaves.ts';
import { tableIds } from '../model/tables.ts';
import { SEED } from './seed.ts';

function booted(scenario: Scenario, profile: Profile): Model {
  const m = new Model({ config: scenario.config, frames: scenario.frames, profile, isolation: true });
  for (const c of ptiBoot(scenario)) {
    const r = applyCommand(m, c);
    if (!r.ok) throw new Error(`boot step ${JSON.stringify(c)} failed: ${r.error.message}`);
  }
  return m;
}

/** The model's entry store (private: the test reads what it keeps). */
const storeOf = (m: Model): EntryStore => m['store'];

/** What is wrong with the store's indexes against a recount of its lists, or undefined. */
function indexError(m: Model): string | undefined {
  return storeError(storeOf(m), m.config.levels);
}

function storeError(store: EntryStore, levels: 4 | 5): string | undefined {
  const { leaves, nonPresent } = store.entries;
  const both = [...leaves, ...nonPresent].sort((a, b) => a.vpn - b.vpn);
  const footprint = tableFootprint(levels, both);
  if (store.tables.footprint !== footprint) return `table counts give ${store.tables.footprint} tables, the footprint is ${footprint}`;
  const missing = [...tableIds(levels, both)].find((id) => !store.needs(id));
  if (missing !== undefined) return `table ${missing} is needed but not counted`;
  const base = kernelLayout(levels).pageOffset;
  const others = leaves.filter((l) => l.vpn - l.pfn !== base);
  const indexed = store.aliases.all();
  if (indexed.length !== others.length || indexed.some((l, i) => l !== others[i])) return `the frame index holds ${indexed.length} leaves, ${others.length} lie outside the direct map`;
  return undefined;
}

/** The scopes a command's checks would look at: its range and the direct-map pages of its frames. */
function scopesOf(c: Command, levels: 4 | 5): { vpn: number; pages: number }[] {
  const f = c as unknown as Record<string, unknown>;
  const pages = typeof f['pages'] === 'number' ? f['pages'] : typeof f['count'] === 'number' ? f['count'] : 1;
  const out: { vpn: number; pages: number }[] = [];
  if (typeof f['vpn'] === 'number') out.push({ vpn: f['vpn'], pages });
  if (typeof f['pfn'] === 'number') out.push({ vpn: kernelLayout(levels).pageOffset + f['pfn'], pages });
  return out;
}

interface Run {
  readonly model: Model;
  /** The commands that succeeded, in order. */
  readonly succeeded: Command[];
  /** Some snapshots handed out on the way, each with a deep copy made when it was. */
  readonly snapshots: { readonly state: AbstractState; readonly copy: AbstractState }[];
}

function run(scenario: Scenario, profile: Profile, commands: readonly Command[]): Run {
  const model = booted(scenario, profile);
  const succeeded: Command[] = [];
  const snapshots: Run['snapshots'] = [];
  commands.forEach((c, i) => {
    const r = applyCommand(model, c);
    if (r.ok) succeeded.push(c);
    const wrong = indexError(model);
    if (wrong !== undefined) throw new Error(`after step ${i} (${JSON.stringify(c)}): ${wrong}`);
    // Snapshots as the fuzzer takes them, after every command; a few are kept to look at later.
    const state = model.abstract();
    if (i % 7 === 0) snapshots.push({ state, copy: structuredClone(state) });
  });
  return { model, succeeded, snapshots };
}

const CASES: readonly { readonly scenario: string; readonly profile: Profile }[] = [
  { scenario: 'kernel', profile: 'strict' },
  { scenario: 'kernel-small-pool', profile: 'strict' },
  { scenario: 'kernel', profile: 'linux' },
  { scenario: 'kernel-small-pool', profile: 'linux' },
];

describe('the model\'s incremental structures', () => {
  for (const { scenario: name, profile } of CASES) {
    it(`match their recount, keep snapshots and equal a fresh replay (${name}, ${profile})`, () => {
      const scenario = SCENARIOS[name]!();
      const sequences = fc.sample(commandsArb(scenario, { maxCommands: 120, isolation: true, clients: true }), { seed: SEED, numRuns: 12 });
      let refused = 0;
      for (const commands of sequences) {
        const r = run(scenario, profile, commands);
        refused += commands.length - r.succeeded.length;
        for (const s of r.snapshots) expect(isDeepStrictEqual(s.state, s.copy)).toBe(true);
        // Strict: a failed command changes nothing, so the successful ones alone reach the same state.
        const replayed = booted(scenario, profile);
        for (const c of profile === 'strict' ? r.succeeded : commands) {
          const out = applyCommand(replayed, c);
          if (profile === 'strict') expect(out.ok, `${JSON.stringify(c)} succeeded the first time`).toBe(true);
        }
        expect(isDeepStrictEqual(replayed.abstract(), r.model.abstract())).toBe(true);
      }
      // The sequences do reach refusals and failures, which the store must undo.
      expect(refused).toBeGreaterThan(0);
    });
  }

  // Linux states break invariants (the kernel's findings), so the witnesses compared are not all empty.
  it('give the checks the same leaves and witnesses through the frame index as a scan of every leaf', () => {
    const scenario = SCENARIOS['kernel']!();
    const { levels } = scenario.config;
    const base = kernelLayout(levels).pageOffset;
    const sequences = fc.sample(commandsArb(scenario, { maxCommands: 80, isolation: true, clients: true }), { seed: SEED + 1, numRuns: 10 });
    let compared = 0;
    let witnesses = 0;
    for (const commands of sequences) {
      const model = booted(scenario, 'linux');
      for (const c of commands) {
        applyCommand(model, c);
        const indexed = model.abstract();
        // A deep copy has no lookup attached: its checks scan.
        const scanned = structuredClone(indexed);
        const leaves = indexed.roots[0]!.leaves;
        for (const scope of scopesOf(c, levels)) {
          // The frames of the leaves in the scope and those whose direct-map page it holds, as the alias closure asks.
          const touched = mergeIntervals([
            ...leaves.filter((l) => l.vpn < scope.vpn + scope.pages && scope.vpn < l.vpn + leafPages(l)).map((l) => ({ lo: l.pfn, hi: l.pfn + leafPages(l) })),
            { lo: scope.vpn - base, hi: scope.vpn - base + scope.pages },
          ]);
          const others = leaves.filter((l) => l.vpn - l.pfn !== base && leafIntersectsAny(touched, l));
          expect(storeOf(model).aliases.meeting(touched)).toEqual(others);
          const found = checkAll(indexed, scope);
          expect(found).toEqual(checkAll(scanned, scope));
          compared++;
          witnesses += found.length;
        }
      }
    }
    expect(compared).toBeGreaterThan(100);
    expect(witnesses).toBeGreaterThan(0);
  });
});

describe('the entry store', () => {
  const levels = 4;
  const base = kernelLayout(levels).pageOffset;
  // 6,000 4K leaves two pages apart, every third one a direct-map page of its frame.
  const start = (): { store: EntryStore; leaves: Leaf[] } => {
    const leaves = Array.from({ length: 6000 }, (_, i) => makeLeaf(base + 2 * i, i % 3 === 0 ? 2 * i : 7 * i, '4K', PAGE_KERNEL));
    const store = new EntryStore(levels);
    const w = store.window([{ vpn: base, pages: 12000 }]);
    store.apply(w, { leaves });
    return { store, leaves };
  };

  it('splices or rebuilds a window of many pieces as the plain list edit would, and undoes it', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ at: fc.nat(11999), pages: fc.integer({ min: 1, max: 9000 }) }), { minLength: 1, maxLength: 40 }),
        fc.array(fc.constantFrom('keep', 'drop', 'ro'), { minLength: 1, maxLength: 50 }),
        (ranges, fate) => {
          const { store, leaves } = start();
          const before = store.snapshot().leaves;
          const w = store.window(ranges.map((r) => ({ vpn: base + r.at, pages: r.pages })));
          const inWindow = new Set(w.entries.leaves);
          const change = (l: Leaf, i: number): Leaf | undefined => {
            const f = fate[i % fate.length];
            return f === 'keep' ? l : f === 'drop' ? undefined : makeLeaf(l.vpn, l.pfn, l.size, PAGE_KERNEL_RO);
          };
          const next = w.entries.leaves.flatMap((l, i) => change(l, i) ?? []);
          const applied = store.apply(w, { leaves: next });
          // The same edit on the whole list: every entry of the window changed in place, the rest untouched.
          let k = 0;
          const expected = leaves.flatMap((l) => (inWindow.has(l) ? change(l, k++) ?? [] : [l]));
          expect(store.entries.leaves).toEqual(expected);
          expect(storeError(store, levels)).toBeUndefined();
          // The snapshot taken before the edit did not change.
          expect(before).toEqual(leaves);
          store.undo(applied);
          expect(store.entries.leaves).toEqual(leaves);
          expect(storeError(store, levels)).toBeUndefined();
        },
      ),
      { seed: SEED, numRuns: 60 },
    );
  });

  it('refuses an entry outside the window and a stale window', () => {
    const { store } = start();
    const w = store.window([{ vpn: base, pages: 4 }]);
    expect(() => store.apply(w, { leaves: [makeLeaf(base + 100, 0, '4K', PAGE_KERNEL)] })).toThrow(/outside the window/);
    store.apply(w, { leaves: [] });
    expect(() => store.apply(w, { leaves: [] })).toThrow(/stale/);
  });
});

describe('the chunked list', () => {
  interface Item {
    readonly key: number;
  }
  const make = (): ChunkedList<Item, number> => new ChunkedList<Item, number>((item, key) => item.key < key, (item) => item.key);
  const chunkSizes = (list: ChunkedList<Item, number>): number[] => (list['chunks'] as { items: Item[] }[]).map((c) => c.items.length);
  /** The chunk bounds (model/chunked-list.ts MAX and MIN): none empty or past MAX, none under MIN unless alone. */
  const chunkError = (list: ChunkedList<Item, number>): string | undefined => {
    const sizes = chunkSizes(list);
    const bad = sizes.find((n) => n === 0 || n > 512 || (sizes.length > 1 && n < 64));
    return bad === undefined ? undefined : `a chunk of ${bad} items among ${sizes.length}`;
  };
  /** The reference's first index not before `key`. */
  const lowerBound = (ref: readonly Item[], key: number): number => {
    let lo = 0;
    let hi = ref.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (ref[mid]!.key < key) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
  const op = fc.oneof(
    { arbitrary: fc.constant('insert' as const), weight: 12 },
    { arbitrary: fc.constant('remove' as const), weight: 16 },
    { arbitrary: fc.constant('remove-stranger' as const), weight: 4 },
    { arbitrary: fc.constant('from' as const), weight: 4 },
    { arbitrary: fc.constant('clone' as const), weight: 1 },
  );
  const step = fc.record({ op, key: fc.nat(2999), take: fc.nat(40) });

  // A build-up (chunks split), then a mix leaning to removal (chunks merge, the list may empty and fill again).
  it('holds the items of a plain sorted array through inserts, removals and clones, each clone unchanged by either side', () => {
    const seen = { splits: 0, merges: 0, emptied: 0 };
    fc.assert(
      // Shrinking sequences this long is capped, so a failure is reported in seconds, still shrunk some.
      fc.property(fc.limitShrink(fc.array(fc.nat(2999), { maxLength: 1500, size: 'max' }), 200), fc.limitShrink(fc.array(step, { maxLength: 2500, size: 'max' }), 200), (build, mix) => {
        const list = make();
        const ref: Item[] = [];
        const clones: { list: ChunkedList<Item, number>; copy: Item[] }[] = [];
        const insert = (key: number): void => {
          const at = lowerBound(ref, key);
          if (ref[at]?.key === key) return;
          const item = { key };
          list.insert(item);
          ref.splice(at, 0, item);
        };
        for (const key of build) insert(key);
        let chunks = chunkSizes(list).length;
        for (const s of mix) {
          if (s.op === 'insert') insert(s.key);
          else if (s.op === 'remove') {
            // The item at or after the key (else the first), so removals find something most of the time.
            const at = lowerBound(ref, s.key) < ref.length ? lowerBound(ref, s.key) : 0;
            const item = ref[at];
            if (list.remove(item ?? { key: s.key }) !== (item !== undefined)) throw new Error(`remove at ${s.key}: the list and the array disagree on whether it holds an item there`);
            if (item !== undefined) ref.splice(at, 1);
            if (ref.length === 0) seen.emptied++;
          } else if (s.op === 'remove-stranger') {
            // An item with a key the list may hold but another identity is not in it.
            if (list.remove({ key: s.key })) throw new Error(`remove of a stranger at ${s.key} took something out`);
          } else if (s.op === 'clone') {
            clones.push({ list: list.clone(), copy: [...ref] });
          } else {
            const got: Item[] = [];
            list.forEachFrom(s.key, (it) => got.push(it) < s.take);
            const from = lowerBound(ref, s.key);
            if (!isDeepStrictEqual(got, ref.slice(from, from + Math.max(1, s.take)))) throw new Error(`forEachFrom(${s.key}) gave ${got.length} items, not the array's`);
          }
          const wrong = chunkError(list);
          if (wrong !== undefined) throw new Error(`after ${JSON.stringify(s)}: ${wrong}`);
          const now = chunkSizes(list).length;
          if (now > chunks) seen.splits++;
          if (now < chunks && ref.length > 0) seen.merges++;
          chunks = now;
        }
        expect(list.length).toBe(ref.length);
        expect(list.toArray()).toEqual(ref);
        const mine = list.toArray();
        const added = Array.from({ length: 600 }, (_, i) => ({ key: 3000 + i }));
        const unchanged = clones.map((c) => isDeepStrictEqual(c.list.toArray(), c.copy));
        // A clone's own edits reach neither the list nor the other clones.
        const edited = clones.map((c) => {
          const removed = c.copy.slice(0, 50).every((it) => c.list.remove(it));
          for (const item of added) c.list.insert({ ...item });
          return removed && chunkError(c.list) === undefined;
        });
        const theirs = clones.map((c) => isDeepStrictEqual(c.list.toArray(), [...c.copy.slice(50), ...added]));
        expect(list.toArray()).toEqual(mine);
        expect([...unchanged, ...edited, ...theirs].every(Boolean)).toBe(true);
      }),
      { seed: SEED, numRuns: 25 },
    );
    expect(seen.splits).toBeGreaterThan(0);
    expect(seen.merges).toBeGreaterThan(0);
    expect(seen.emptied).toBeGreaterThan(0);
  });
});

describe('the frame index', () => {
  const levels = 4;
  const base = kernelLayout(levels).pageOffset;
  const leaf = fc.record({ at: fc.nat(1 << 20), pfn: fc.nat(1 << 16), size: fc.constantFrom<'4K' | '2M' | '1G'>('4K', '4K', '4K', '2M', '1G'), direct: fc.boolean() });
  it('finds the leaves meeting some frames as a filter of a plain list does, through edits and clones', () => {
    fc.assert(
      fc.property(fc.array(leaf, { minLength: 1, maxLength: 1500, size: 'max' }), fc.array(fc.record({ lo: fc.nat(1 << 16), pages: fc.integer({ min: 1, max: 1 << 12 }) }), { minLength: 1, maxLength: 6 }), (drawn, frames) => {
        const index = FrameIndex.empty(levels);
        let live: Leaf[] = [];
        let vpn = base + (1 << 30);
        const clones: { index: FrameIndex; copy: Leaf[] }[] = [];
        drawn.forEach((d, i) => {
          // Leaves at distinct vpns; a direct-map page of its frame is never indexed.
          vpn += PAGES[d.size] + d.at;
          const l = d.direct ? makeLeaf(base + d.pfn, d.pfn, '4K', PAGE_KERNEL) : makeLeaf(vpn, d.pfn, d.size, PAGE_KERNEL);
          index.add(l);
          if (!d.direct) live.push(l);
          if (i % 3 === 2 && live.length > 0) {
            // Every third step takes out an earlier leaf again.
            const gone = live[d.at % live.length]!;
            index.remove(gone);
            live = live.filter((x) => x !== gone);
          }
          if (i % 200 === 0) clones.push({ index: index.clone(), copy: [...live] });
        });
        const byVpn = (ls: Leaf[]): Leaf[] => [...ls].sort((a, b) => a.vpn - b.vpn);
        expect(index.all()).toEqual(byVpn(live));
        const touched = mergeIntervals(frames.map((f) => ({ lo: f.lo, hi: f.lo + f.pages })));
        expect(index.meeting(touched)).toEqual(byVpn(live.filter((l) => leafIntersectsAny(touched, l))));
        for (const c of clones) expect(c.index.all()).toEqual(byVpn(c.copy));
        expect(() => index.remove(makeLeaf(vpn + (1 << 30), 0, '4K', PAGE_KERNEL))).toThrow(/not indexed/);
      }),
      { seed: SEED, numRuns: 40 },
    );
  });
});
