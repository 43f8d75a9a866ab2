/**
 * fuzz/c-abi.ts against c/ptspec.h and c/ABSTRACT.md: the codes both ways, the setup
 * struct, translate's and access's results, the errors an errno stands for, and the
 * abstraction buffer: round trips through an encoder written here from ABSTRACT.md (so a
 * slip in the decoder's layout is not mirrored), canonical form from unordered records,
 * and every malformed buffer refused with its offset and field.
 */
import { describe, expect, it } from 'vitest';
import {
  AbiError, decodeAbstract, decodeAccessResult, decodeFrameRun, decodeProt, decodeSupported, decodeTranslation, encodeChange, encodeFrameFlags,
  encodeProt, encodeProtectOptions, encodeSetup, errorArg, errorOf,
} from '../fuzz/c-abi.ts';
import { kernelScenario } from '../spec/scenario.ts';
import { CACHE_MODES, PAGE_KERNEL, PAGE_KERNEL_ROX, type AbstractState, type Leaf, type Prot, type SystemConfig } from '../spec/state.ts';

const config: SystemConfig = kernelScenario().config;

// ---- an encoder of ABSTRACT.md, independent of the decoder ----

type Rec = readonly ['u32' | 'u64', number | bigint][];

function bytesOf(fields: Rec): Uint8Array {
  const size = fields.reduce((n, [t]) => n + (t === 'u32' ? 4 : 8), 0);
  const out = new Uint8Array(size);
  const v = new DataView(out.buffer);
  let at = 0;
  for (const [t, x] of fields) {
    if (t === 'u32') v.setUint32(at, Number(x), true);
    else v.setBigUint64(at, BigInt(x), true);
    at += t === 'u32' ? 4 : 8;
  }
  return out;
}

const concat = (parts: readonly Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
};

const SIZE = { '4K': 0, '2M': 1, '1G': 2 } as const;
const CACHE = { WB: 0, WC: 1, 'UC-': 2, UC: 3, WT: 4, WP: 5 } as const;
const USE = { free: 0, pagetable: 1, 'kernel-text': 2, 'kernel-rodata': 3, 'kernel-data': 4, data: 5, user: 6, absent: 7 } as const;

/** PTSPEC_PROT_* from the header's bit positions. */
const protBits = (p: Prot): number =>
  (p.write ? 1 : 0) | (p.user ? 2 : 0) | (p.execKernel ? 4 : 0) | (p.execUser ? 8 : 0) | (p.global ? 16 : 0) | (p.kernel4k === true ? 32 : 0) | (CACHE[p.cache] << 8);

const leafRec = (l: Leaf): Rec => [['u64', l.vpn], ['u64', l.pfn], ['u32', SIZE[l.size]], ['u32', protBits(l.prot)]];

interface RawRoot {
  readonly id: number;
  readonly kind: number;
  readonly pid: number;
  readonly leaves: readonly Leaf[];
  readonly nonPresent: readonly Leaf[];
  readonly diverged: readonly number[];
}
interface Raw {
  readonly runs: readonly { pfn: number; count: number; use: keyof typeof USE; flags: number }[];
  readonly roots: readonly RawRoot[];
  readonly tlb: readonly { cpu: number; root: number; leaf: Leaf }[];
  readonly walk: readonly { cpu: number; root: number; level: number; table: number; vpn: number }[];
  readonly owed: readonly { vpn: number; pages: number; reason: number }[];
  readonly tablesInUse: number;
  readonly pending: number;
}

function encode(s: Raw, header: Partial<Record<'magic' | 'version' | 'reserved', number>> = {}): Uint8Array {
  return concat([
    bytesOf([
      ['u32', header.magic ?? 0x53415450], ['u32', header.version ?? 1], ['u32', s.runs.length], ['u32', s.roots.length], ['u32', s.tlb.length],
      ['u32', s.walk.length], ['u32', s.owed.length], ['u32', header.reserved ?? 0], ['u64', s.tablesInUse], ['u64', s.pending],
    ]),
    ...s.runs.map((r) => bytesOf([['u64', r.pfn], ['u64', r.count], ['u32', USE[r.use]], ['u32', r.flags]])),
    ...s.roots.flatMap((r) => [
      bytesOf([['u32', r.id], ['u32', r.kind], ['u32', r.pid], ['u32', r.leaves.length], ['u32', r.nonPresent.length], ['u32', r.diverged.length]]),
      ...r.leaves.map((l) => bytesOf(leafRec(l))),
      ...r.nonPresent.map((l) => bytesOf(leafRec(l))),
      ...r.diverged.map((v) => bytesOf([['u64', v]])),
    ]),
    ...s.tlb.map((e) => bytesOf([['u32', e.cpu], ['u32', e.root], ...leafRec(e.leaf)])),
    ...s.walk.map((w) => bytesOf([['u32', w.cpu], ['u32', w.root], ['u32', w.level], ['u32', w.table], ['u64', w.vpn]])),
    ...s.owed.map((o) => bytesOf([['u64', o.vpn], ['u64', o.pages], ['u32', o.reason], ['u32', 0]])),
  ]);
}

const leaf = (vpn: number, size: Leaf['size'] = '4K', prot: Prot = PAGE_KERNEL): Leaf => ({ vpn, pfn: vpn % 100_000, size, prot });

/** A state as a C walk might list it: nothing in order, runs split, obligations per reason. */
const unordered: Raw = {
  runs: [
    { pfn: 300, count: 700, use: 'data', flags: 0 },
    { pfn: 0, count: 100, use: 'data', flags: 0 },
    { pfn: 100, count: 200, use: 'data', flags: 0 },
    { pfn: 250, count: 0, use: 'free', flags: 0 },
    { pfn: 1000, count: 24, use: 'user', flags: 1 | 2 | (1 << 4) },
  ],
  roots: [
    { id: 4, kind: 1, pid: 1, leaves: [leaf(0x900), leaf(0x400)], nonPresent: [], diverged: [0x200000, 0x100000] },
    { id: 0, kind: 0, pid: 0, leaves: [leaf(0x1000, '2M'), leaf(0x10, '4K', PAGE_KERNEL_ROX), leaf(0x800)], nonPresent: [leaf(0x5000), leaf(0x3000)], diverged: [] },
  ],
  tlb: [
    { cpu: 1, root: 0, leaf: leaf(0x10) },
    { cpu: 0, root: 0, leaf: leaf(0x1000, '2M') },
    { cpu: 0, root: 0, leaf: leaf(0x1000) },
  ],
  walk: [
    { cpu: 0, root: 0, level: 2, table: 0, vpn: 0 },
    { cpu: 0, root: 0, level: 1, table: 1, vpn: 0x1000 },
    { cpu: 0, root: 0, level: 1, table: 2, vpn: 0x200 },
  ],
  owed: [
    { vpn: 20, pages: 5, reason: 0 },
    { vpn: 10, pages: 10, reason: 1 },
    { vpn: 100, pages: 1, reason: 2 },
  ],
  tablesInUse: 12,
  pending: 2,
};

describe('the abstraction buffer', () => {
  it('decodes into the canonical form whatever order the records come in', () => {
    const s = decodeAbstract(encode(unordered), config);
    expect(s.config).toBe(config);
    expect(s.frames).toEqual([
      { pfn: 0, count: 1000, use: 'data', sensitive: false, noDirectMap: false },
      { pfn: 1000, count: 24, use: 'user', sensitive: true, noDirectMap: true, memtype: 'WC' },
    ]);
    expect(s.roots.map((r) => r.id)).toEqual([0, 4]);
    expect(s.roots[0]).toEqual({ id: 0, kind: 'kernel', leaves: [leaf(0x10, '4K', PAGE_KERNEL_ROX), leaf(0x800), leaf(0x1000, '2M')], nonPresent: [leaf(0x3000), leaf(0x5000)] });
    expect(s.roots[1]).toEqual({ id: 4, kind: 'process-kernel', pid: 1, leaves: [leaf(0x400), leaf(0x900)], diverged: [0x100000, 0x200000] });
    // (cpu, root, vpn, size ascending), as the model's compareTlbEntries.
    expect(s.tlb).toEqual([{ cpu: 0, root: 0, leaf: leaf(0x1000) }, { cpu: 0, root: 0, leaf: leaf(0x1000, '2M') }, { cpu: 1, root: 0, leaf: leaf(0x10) }]);
    expect(s.walkCache).toEqual([
      { cpu: 0, root: 0, level: 1, vpn: 0x200, table: 'freed' },
      { cpu: 0, root: 0, level: 1, vpn: 0x1000, table: 'unlinked' },
      { cpu: 0, root: 0, level: 2, vpn: 0, table: 'current' },
    ]);
    // Obligations that meet or touch are one, their reasons joined as spec/contracts/flush.ts says.
    expect(s.pendingFlush).toEqual([{ vpn: 10, pages: 15, reason: 'setDirectMapInvalid+unmap' }, { vpn: 100, pages: 1, reason: 'setDirectMapDefault' }]);
    expect([s.tablesInUse, s.pendingTableFrees]).toEqual([12, 2]);
  });

  it('leaves out what the spec leaves out when empty: walkCache, nonPresent, diverged, pid', () => {
    const s: AbstractState = decodeAbstract(encode({ ...unordered, roots: [{ ...unordered.roots[1]!, nonPresent: [] }], walk: [], owed: [] }), config);
    expect('walkCache' in s).toBe(false);
    expect(s.roots[0]).toEqual({ id: 0, kind: 'kernel', leaves: [leaf(0x10, '4K', PAGE_KERNEL_ROX), leaf(0x800), leaf(0x1000, '2M')] });
    expect(s.pendingFlush).toEqual([]);
  });

  const valid = encode(unordered);
  const patched = (offset: number, value: number, width: 4 | 8 = 4): Uint8Array => {
    const b = valid.slice();
    if (width === 4) new DataView(b.buffer).setUint32(offset, value, true);
    else new DataView(b.buffer).setBigUint64(offset, BigInt(value) * 2n ** 11n, true);
    return b;
  };
  /** Offsets in `unordered`'s buffer: the header, 5 runs, then root 4's head. */
  const RUNS = 48;
  const ROOT = RUNS + 5 * 24;
  const ROOT_LEAF = ROOT + 24;
  const malformed: readonly (readonly [string, Uint8Array, number, string])[] = [
    ['bad magic', patched(0, 0x12345678), 0, 'magic'],
    ['another layout version', patched(4, 2), 4, 'layout version'],
    ['a truncated header', valid.slice(0, 30), 28, 'reserved'],
    ['a reserved word not 0', patched(28, 1), 28, 'reserved'],
    ['a frame-run count past the end', patched(8, 1000), 8, 'frame runs'],
    ['a root count past the end', patched(12, 10_000), 12, 'roots'],
    ['a leaf count past the end', patched(ROOT + 12, 100), ROOT + 12, 'root 0 leaves'],
    // Root 4's head, two leaves and two diverged pages; then 10 bytes of root 0's head.
    ['a truncated record', valid.slice(0, ROOT + 88 + 10), ROOT + 96, 'root 1 pid'],
    ['a count of the last records past the end', valid.slice(0, valid.length - 4), 24, 'flush obligations'],
    ['bytes after the last record', concat([valid, new Uint8Array(8)]), valid.length, 'end'],
    ['an unknown frame use', patched(RUNS + 16, 8), RUNS + 16, 'frame run 0 use'],
    ['unknown frame flags', patched(RUNS + 20, 1 << 7), RUNS + 20, 'frame run 0 flags'],
    ['an unknown memtype', patched(RUNS + 20, 3 << 4), RUNS + 20, 'frame run 0 flags'],
    ['an unknown root kind', patched(ROOT + 4, 6), ROOT + 4, 'root 0 kind'],
    ['an unknown page size', patched(ROOT_LEAF + 16, 3), ROOT_LEAF + 16, 'root 0 leaf 0 size'],
    ['an unknown cache mode', patched(ROOT_LEAF + 20, 6 << 8), ROOT_LEAF + 20, 'root 0 leaf 0 prot'],
    ['unknown prot bits', patched(ROOT_LEAF + 20, 1 << 6), ROOT_LEAF + 20, 'root 0 leaf 0 prot'],
    ['a page number past 2^53', patched(ROOT_LEAF, 2 ** 43, 8), ROOT_LEAF, 'root 0 leaf 0 vpn'],
  ];
  it.each(malformed)('refuses %s, naming the offset and the field', (_what, bytes, offset, field) => {
    let error: unknown;
    try {
      decodeAbstract(bytes, config);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(AbiError);
    expect({ offset: (error as AbiError).offset, field: (error as AbiError).field }).toEqual({ offset, field });
    expect((error as AbiError).message).toContain(`offset ${offset}, ${field}: `);
  });

  it('refuses unknown cache entry and obligation codes', () => {
    const one = (raw: Partial<Raw>): Uint8Array => encode({ ...unordered, roots: [], ...raw });
    const walk = { cpu: 0, root: 0, level: 1, table: 0, vpn: 0 };
    const tail = (b: Uint8Array): number => b.length;
    const cases: readonly (readonly [Uint8Array, string, string])[] = [
      [one({ walk: [{ ...walk, level: 0 }], owed: [] }), 'walk-cache entry 0 level', 'unknown value 0'],
      [one({ walk: [{ ...walk, level: 6 }], owed: [] }), 'walk-cache entry 0 level', 'unknown value 6'],
      [one({ walk: [{ ...walk, table: 3 }], owed: [] }), 'walk-cache entry 0 table', 'unknown value 3'],
      [one({ walk: [], owed: [{ vpn: 0, pages: 1, reason: 3 }] }), 'flush obligation 0 reason', 'unknown value 3'],
    ];
    for (const [bytes, field, problem] of cases) expect(() => decodeAbstract(bytes, config)).toThrow(`${field}: ${problem}`);
    const padded = one({ walk: [], owed: [{ vpn: 0, pages: 1, reason: 0 }] });
    new DataView(padded.buffer).setUint32(tail(padded) - 4, 9, true);
    expect(() => decodeAbstract(padded, config)).toThrow('flush obligation 0 padding: 9, not 0');
  });
});

describe('the codes of c/ptspec.h', () => {
  it('packs every protection as PTSPEC_PROT_* and back', () => {
    for (let bits = 0; bits < 64; bits++) {
      for (const cache of CACHE_MODES) {
        const p: Prot = {
          write: (bits & 1) !== 0, user: (bits & 2) !== 0, execKernel: (bits & 4) !== 0, execUser: (bits & 8) !== 0, global: (bits & 16) !== 0, cache,
          ...((bits & 32) !== 0 ? { kernel4k: true } : {}),
        };
        expect(encodeProt(p)).toBe(protBits(p));
        expect(decodeProt(encodeProt(p))).toEqual(p);
      }
    }
    expect(encodeProt(PAGE_KERNEL)).toBe(0x11);
    expect(decodeProt(7 << 8)).toBe('unknown cache mode 7');
    expect(decodeProt(1 << 11)).toBe('unknown bits 0x800');
  });

  it('packs set_memory_* changes as PTSPEC_CHANGE_*', () => {
    expect(encodeChange({ write: false })).toBe(1);
    expect(encodeChange({ write: true })).toBe(3);
    expect(encodeChange({ write: false, exec: true })).toBe(1 | 4 | 8);
    expect(encodeChange({ global: false })).toBe(16);
    expect(encodeChange({ present: true })).toBe(64 | 128);
    expect(encodeChange({ kernel4k: true })).toBe(256);
    expect(encodeChange({ cache: 'UC-' })).toBe(512 | (2 << 12));
    expect(encodeChange({})).toBe(0);
    expect([encodeProtectOptions({}), encodeProtectOptions({ alias: true }), encodeProtectOptions({ alias: true, collapse: true })]).toEqual([0, 1, 3]);
  });

  it('packs frame runs both ways', () => {
    const run = { pfn: 5, count: 3, use: 'user', sensitive: true, noDirectMap: false, memtype: 'UC-' } as const;
    expect(encodeFrameFlags(run)).toBe(1 | (2 << 4));
    expect(decodeFrameRun(5, 3, 6, 1 | (2 << 4))).toEqual(run);
    expect(decodeFrameRun(5, 3, 0, 0)).toEqual({ pfn: 5, count: 3, use: 'free', sensitive: false, noDirectMap: false });
    expect(decodeFrameRun(5, 3, 9, 0)).toBe('use: unknown frame use 9');
  });

  it('encodes a SystemSetup as struct ptspec_setup with its runs after it', () => {
    const sc = kernelScenario();
    const bytes = encodeSetup({ ...sc, profile: 'linux' }, 4096);
    const v = new DataView(bytes.buffer);
    expect(bytes.length).toBe(56 + 24 * sc.frames.length);
    expect([v.getUint32(0, true), v.getUint32(4, true), v.getUint32(8, true), v.getUint32(12, true)]).toEqual([4, 4, 46, 3]);
    expect([v.getBigUint64(16, true), v.getBigUint64(24, true), v.getBigUint64(32, true)]).toEqual([BigInt(sc.config.frames), BigInt(sc.config.tablePool.pfn), BigInt(sc.config.tablePool.count)]);
    expect([v.getUint32(40, true), v.getUint32(44, true), v.getUint32(48, true)]).toEqual([1, sc.frames.length, 4096 + 56]);
    const runs = sc.frames.map((r, i) => decodeFrameRun(Number(v.getBigUint64(56 + 24 * i, true)), Number(v.getBigUint64(64 + 24 * i, true)), v.getUint32(72 + 24 * i, true), v.getUint32(76 + 24 * i, true)));
    expect(runs).toEqual(sc.frames);
    expect(new DataView(encodeSetup(sc, 0).buffer).getUint32(40, true)).toBe(0);
  });

  it('reads ptspec_supported_ops: the operations and the profiles', () => {
    const s = decodeSupported((1n << 0n) | (1n << 7n) | (1n << 13n) | (1n << 49n));
    expect([...s.ops]).toEqual(['map', 'translate', 'freeFrames']);
    expect([...s.profiles]).toEqual(['linux']);
    expect([...decodeSupported(1n << 48n).profiles]).toEqual(['strict']);
  });

  it('reads struct ptspec_translation and struct ptspec_access_result', () => {
    const t = bytesOf([['u64', 0x1000], ['u64', 0x200], ['u32', 1], ['u32', 0x11], ['u64', 0x205]]);
    const translation = { leaf: { vpn: 0x1000, pfn: 0x200, size: '2M', prot: PAGE_KERNEL }, pfn: 0x205 };
    expect(decodeTranslation(t)).toEqual(translation);
    expect(decodeAccessResult(concat([bytesOf([['u32', 0], ['u32', 1]]), t]))).toEqual({ fault: false, translation, fromTlb: true });
    expect(decodeAccessResult(concat([bytesOf([['u32', 1], ['u32', 0]]), new Uint8Array(32)]))).toEqual({ fault: 'not-present' });
    expect(decodeAccessResult(concat([bytesOf([['u32', 2], ['u32', 0]]), new Uint8Array(32)]))).toEqual({ fault: 'protection' });
    expect(() => decodeAccessResult(concat([bytesOf([['u32', 3], ['u32', 0]]), new Uint8Array(32)]))).toThrow('access result: offset 0, access fault: unknown value 3');
    expect(() => decodeTranslation(t.slice(0, 20))).toThrow('translation: offset 20, translation leaf prot: truncated: 4 bytes needed, 0 left');
  });
});

describe('errors from op and errno', () => {
  it('names the argument the contracts name', () => {
    expect(errorArg('map', 'EEXIST')).toBe('vpn');
    expect(errorArg('unmap', 'ENOENT')).toBe('vpn');
    expect(errorArg('split', 'EINVAL')).toBe('vpn');
    expect(errorArg('collapse', 'EINVAL')).toBe('vpn');
    expect(errorArg('setDirectMapInvalid', 'ENOENT')).toBe('pfn');
    expect(errorArg('allocFrames', 'EBUSY')).toBe('pfn');
    expect(errorArg('freeFrames', 'ENOENT')).toBe('pfn');
    expect(errorArg('protect', 'EBUSY')).toBe('change');
    expect(errorArg('protect', 'EFAULT')).toBe('vpn');
    expect(errorArg('split', 'ENOMEM')).toBe('tablePool');
    expect(errorArg('map', 'EPERM')).toBe('prot');
    expect(errorArg('protect', 'EPERM')).toBe('change');
    expect(errorArg('setDirectMapDefault', 'EPERM')).toBe('pfn');
  });

  it('turns a negative result into the PtError, an EPERM with the invariant ptspec_last_refused names', () => {
    expect(errorOf('map', -17, () => 0)).toMatchObject({ errno: 'EEXIST', arg: 'vpn' });
    expect(errorOf('map', -12, () => 0)).toMatchObject({ errno: 'ENOMEM', arg: 'tablePool' });
    expect(errorOf('map', -1, () => 0)).toMatchObject({ errno: 'EPERM', arg: 'prot', invariant: 'P1' });
    expect(errorOf('freeFrames', -1, () => 14)).toMatchObject({ errno: 'EPERM', arg: 'pfn', invariant: 'D6' });
    expect(() => errorOf('map', -1, () => 99)).toThrow('ptspec_last_refused() gave 99, not an index of STRICT_POLICY');
    expect(() => errorOf('map', -5, () => 0)).toThrow('ptspec_map: returned -5, which is not 0 or a negative errno');
  });
});
