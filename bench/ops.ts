/**
 * The operation groups: what one impl call costs against the typed-array work it cannot
 * avoid, against itself on larger ranges or another profile, and against the model. All
 * on the default scenario's booted impl, in the bench's own stretch (machine.ts), each
 * timed part undone outside the timing (tinybench's afterEach) so every iteration starts
 * from the same state.
 */
import { PAGES, type PageSize, type Vpn } from '../spec/address.ts';
import { applyCommand, type Command } from '../spec/commands.ts';
import { INIT_MM, PAGE_KERNEL, type Leaf } from '../spec/state.ts';
import type { PageTableSystem } from '../spec/system.ts';
import { createModel } from '../model/index.ts';
import { createImpl, type RadixSystem } from '../impl/index.ts';
import { benchArea, booted, defaultScenario, must, type Area } from './machine.ts';
import { taskSide, type Group, type Side } from './runner.ts';

const M2 = PAGES['2M'];
const G1 = PAGES['1G'];

/** The floor: `n` 64-bit entry writes (two words each) into one table-sized Uint32Array. */
export function rawWrites(words: Uint32Array, n: number): void {
  for (let i = 0; i < n; i++) {
    const off = (i & 511) * 2;
    words[off] = (i << 12) | 0x63;
    words[off + 1] = 0x80000000;
  }
}

/** The entries `impl` writes while `op` runs (its pool's counter: table entries, rollbacks included). */
function entriesWritten(impl: RadixSystem, op: () => void): number {
  const before = impl.tables().writes;
  op();
  return impl.tables().writes - before;
}

function bootedImpl(profile: 'strict' | 'linux' = 'strict'): { readonly impl: RadixSystem; readonly area: Area } {
  const scenario = defaultScenario();
  const impl = booted(scenario, () => createImpl(profile === 'strict' ? scenario : { ...scenario, profile }));
  return { impl, area: benchArea(scenario, impl) };
}

/** map and unmap of [vpn, vpn+pages) at `size` leaves onto the area's frames, each required to succeed. */
function mapping(sys: PageTableSystem, area: Area, offset: Vpn, pages: number, size: PageSize): { readonly map: () => void; readonly unmap: () => void; readonly vpn: Vpn } {
  const vpn = area.vpn + offset;
  return {
    vpn,
    map: () => must(sys.map(INIT_MM, vpn, area.pfn, pages, PAGE_KERNEL, { maxPage: size }), `map of ${pages} pages at ${size}`),
    unmap: () => must(sys.unmap(INIT_MM, vpn, pages), `unmap of ${pages} pages`),
  };
}

/** set_memory_ro of [vpn, vpn+pages) timed, set_memory_rw after it untimed; no alias (CPA_NO_CHECK_ALIAS): only the range's own leaves change. */
function protectSide(label: string, sys: PageTableSystem, vpn: Vpn, pages: number): Side {
  return taskSide(label, {
    fn: () => must(sys.protect(vpn, pages, { write: false }, { alias: false }), 'set_memory_ro'),
    afterEach: () => must(sys.protect(vpn, pages, { write: true }, { alias: false }), 'set_memory_rw'),
  });
}

/** The sides' labels, which the figures (figures.ts) name. */
export const OP_LABELS = {
  map1g: 'impl: map 262,144 4K pages (unmap untimed)',
  map1gRaw: 'raw: the entries it writes into a Uint32Array',
  map4k: 'impl: map of one 4K page (a batch of calls, unmap untimed)',
  map4kRaw: 'raw: the entries one map writes',
  reclaim: 'strict: unmap 512 4K pages, the emptied tables freed (map untimed)',
  noReclaim: 'linux: unmap 512 4K pages, the emptied tables kept (map untimed)',
  protect1g: 'impl: set_memory_ro of a 1G leaf (rw untimed)',
  protect4k: 'impl: set_memory_ro of a 4K page (rw untimed)',
  translate: 'impl: translate of a mapped page (a batch of calls)',
  mapGet: 'Map.get on a Map of as many entries as init_mm has leaves',
  mixImpl: 'impl: op mix',
  mixModel: 'model: op mix',
} as const;

export const MAP_1G: Group = {
  name: '1 GiB 4K map',
  rounds: 5,
  async setup() {
    const { impl, area } = bootedImpl();
    const m = mapping(impl, area, 0, G1, '4K');
    const entries = entriesWritten(impl, m.map);
    m.unmap();
    const words = new Uint32Array(1024);
    return {
      sides: [
        taskSide(OP_LABELS.map1g, { fn: m.map, afterEach: m.unmap }),
        taskSide(OP_LABELS.map1gRaw, { fn: () => rawWrites(words, entries) }),
      ],
    };
  },
};

/** One-page maps made in a batch: one call costs far less than the timer's resolution. */
const ONE_PAGE_CALLS = 256;

export const MAP_4K: Group = {
  name: 'one 4K map',
  rounds: 5,
  async setup() {
    const { impl, area } = bootedImpl();
    // A page kept at the end of the 2M block keeps its PTE table (strict frees an emptied
    // one): each map then writes its PTE, as vmap of one page into a live table does.
    const block = area.vpn + 4 * G1;
    must(impl.map(INIT_MM, block + M2 - 1, area.pfn, 1, PAGE_KERNEL, { maxPage: '4K' }), 'map of the resident page');
    const maps = (): void => {
      for (let i = 0; i < ONE_PAGE_CALLS; i++) must(impl.map(INIT_MM, block + i, area.pfn + i, 1, PAGE_KERNEL, { maxPage: '4K' }), 'map of one page');
    };
    const unmap = (): void => must(impl.unmap(INIT_MM, block, ONE_PAGE_CALLS), 'unmap');
    const entries = entriesWritten(impl, maps);
    unmap();
    const words = new Uint32Array(1024);
    return {
      sides: [
        taskSide(OP_LABELS.map4k, { fn: maps, afterEach: unmap, calls: ONE_PAGE_CALLS }),
        taskSide(OP_LABELS.map4kRaw, { fn: () => rawWrites(words, entries), calls: ONE_PAGE_CALLS }),
      ],
    };
  },
};

export const UNMAP_RECLAIM: Group = {
  name: 'unmap with reclaim',
  rounds: 5,
  async setup() {
    const sides = (['strict', 'linux'] as const).map((profile) => {
      const { impl, area } = bootedImpl(profile);
      // 512 pages: one whole PTE table, alone in its 1G: strict frees every table the unmap empties.
      const m = mapping(impl, area, 8 * G1, M2, '4K');
      m.map();
      const mapped = impl.abstract().tablesInUse;
      m.unmap();
      const freed = mapped - impl.abstract().tablesInUse;
      if ((profile === 'strict') !== (freed > 0)) throw new Error(`unmap under ${profile} freed ${freed} tables: the figure's sides are not reclaim and no reclaim`);
      return taskSide(profile === 'strict' ? OP_LABELS.reclaim : OP_LABELS.noReclaim, { beforeEach: m.map, fn: m.unmap });
    });
    return { sides };
  },
};

export const PROTECT_1G: Group = {
  name: 'protect 1G leaf',
  rounds: 5,
  async setup() {
    const { impl, area } = bootedImpl();
    const huge = mapping(impl, area, 16 * G1, G1, '1G');
    const small = mapping(impl, area, 20 * G1, 1, '4K');
    huge.map();
    small.map();
    must(impl.protect(huge.vpn, G1, { write: false }, { alias: false }), 'set_memory_ro of the 1G leaf');
    if (must(impl.translate(INIT_MM, huge.vpn), 'translate').leaf.size !== '1G') throw new Error('set_memory_ro of a whole 1G leaf split it: the figure would time a split');
    must(impl.protect(huge.vpn, G1, { write: true }, { alias: false }), 'set_memory_rw of the 1G leaf');
    return { sides: [protectSide(OP_LABELS.protect1g, impl, huge.vpn, G1), protectSide(OP_LABELS.protect4k, impl, small.vpn, 1)] };
  },
};

/** The range sizes of the protect and unmap tables: pages of each mapping's leaf size. */
export const RANGE_SIZES: readonly { readonly size: PageSize; readonly leaves: readonly number[] }[] = [
  { size: '4K', leaves: [1, 16, 512, 4096] },
  { size: '2M', leaves: [1, 8] },
  { size: '1G', leaves: [1, 2] },
];

/** `1 4K leaf`, `8 2M leaves`. */
export const leavesText = (n: number, size: PageSize): string => `${n} ${size} ${n === 1 ? 'leaf' : 'leaves'}`;

export const rangeLabel = (op: 'protect' | 'unmap', size: PageSize, leaves: number): string => `impl: ${op} of ${leavesText(leaves, size)}`;

export const RANGE_COST: Group = {
  name: 'cost against range size',
  rounds: 5,
  async setup() {
    const { impl, area } = bootedImpl();
    const sides: Side[] = [];
    for (const [k, { size, leaves }] of RANGE_SIZES.entries()) {
      const most = Math.max(...leaves);
      // Each size its own 4G, the largest range of it mapped once; a range is its first `n` leaves.
      const whole = mapping(impl, area, (32 + 4 * k) * G1, most * PAGES[size], size);
      whole.map();
      for (const n of leaves) {
        const part = mapping(impl, area, (32 + 4 * k) * G1, n * PAGES[size], size);
        sides.push(protectSide(rangeLabel('protect', size, n), impl, part.vpn, n * PAGES[size]));
        sides.push(taskSide(rangeLabel('unmap', size, n), { fn: part.unmap, afterEach: part.map }));
      }
    }
    return { sides };
  },
};

/** Lookups made in a batch, spread over the leaves. */
const LOOKUPS = 1024;

export const TRANSLATE: Group = {
  name: 'translate',
  rounds: 5,
  async setup() {
    const { impl } = bootedImpl();
    const leaves = impl.abstract().roots.find((r) => r.id === INIT_MM)!.leaves;
    const keys = Array.from({ length: LOOKUPS }, (_, i) => leaves[Math.floor((i * leaves.length) / LOOKUPS)]!.vpn);
    const map = new Map<number, Leaf>(leaves.map((l) => [l.vpn, l]));
    // Each lookup's result goes into the sum, so neither loop can be optimized away.
    let sink = 0;
    const sides = [
      taskSide(OP_LABELS.translate, {
        fn: () => {
          for (const vpn of keys) sink += must(impl.translate(INIT_MM, vpn), 'translate').pfn;
        },
        calls: LOOKUPS,
      }),
      taskSide(OP_LABELS.mapGet, {
        fn: () => {
          for (const vpn of keys) sink += map.get(vpn)!.pfn;
        },
        calls: LOOKUPS,
      }),
    ];
    return { sides };
  },
};

/**
 * A mix of every core operation that ends where it started (so one system serves every
 * iteration): vmap areas of 4K and 2M pages, set_memory_ro/rw with the alias, splits and
 * collapses, accesses through the TLB, set_direct_map_invalid/default, vunmap, flushes.
 */
export function opMix(area: Area): Command[] {
  const out: Command[] = [];
  const vm = area.vpn + 48 * G1;
  for (let i = 0; i < 8; i++) {
    const vpn = vm + i * 2 * M2;
    const pfn = area.pfn + i * M2;
    out.push({ op: 'map', root: INIT_MM, vpn, pfn, pages: M2, prot: PAGE_KERNEL, maxPage: i % 2 === 0 ? '4K' : '2M' });
    if (i % 2 === 1) out.push({ op: 'split', root: INIT_MM, vpn });
    out.push({ op: 'protect', vpn: vpn + 3, pages: 100, change: { write: false }, alias: true });
    out.push({ op: 'access', cpu: i % 2, root: INIT_MM, vpn: vpn + 7, kind: 'r', mode: 'kernel' });
    out.push({ op: 'protect', vpn: vpn + 3, pages: 100, change: { write: true }, alias: true });
    out.push({ op: 'collapse', root: INIT_MM, vpn, size: '2M' });
    out.push({ op: 'translate', root: INIT_MM, vpn: vpn + 9 });
  }
  out.push({ op: 'setDirectMapInvalid', pfn: area.pfn + G1, count: 16, flush: false });
  out.push({ op: 'setDirectMapDefault', pfn: area.pfn + G1, count: 16, flush: true });
  out.push({ op: 'unmap', root: INIT_MM, vpn: vm, pages: 16 * M2 });
  out.push({ op: 'flushAll' });
  return out;
}

export const OP_MIX: Group = {
  name: 'impl vs model',
  rounds: 5,
  async setup() {
    const scenario = defaultScenario();
    const systems = { impl: booted(scenario, () => createImpl(scenario)), model: booted(scenario, () => createModel(scenario)) };
    const sides = Object.entries(systems).map(([name, sys]) => {
      const mix = opMix(benchArea(scenario, sys));
      // Once untimed, every step required to succeed: the first run also splits the direct
      // map under the areas' frames (the alias of the protects), which later runs find done.
      for (const [i, c] of mix.entries()) must(applyCommand(sys, c), `${name}: op mix step ${i} (${c.op})`);
      return taskSide(name === 'impl' ? OP_LABELS.mixImpl : OP_LABELS.mixModel, { fn: () => mix.forEach((c) => applyCommand(sys, c)) });
    });
    return { sides };
  },
};
