/**
 * The wasm adapter (fuzz/wasm-impl.ts) on the toy C implementation (c/test/toy.c, its
 * committed toy.wasm rebuilt and compared where clang is), and on modules assembled here
 * byte by byte: one of another ABI version, one missing an export, one whose map traps.
 * A fixed-seed campaign of the toy against the model passes; generation keeps to the
 * operations a module supports; a bad module, a profile or a boot it cannot run is
 * refused with exit 2 naming the file and the problem.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { commandsArb } from '../fuzz/arbitraries.ts';
import { bootFailure, moduleTarget, traceSetupFor, withProfile } from '../fuzz/campaign-target.ts';
import { runTrace } from '../fuzz/check.ts';
import { catalogueSuite } from '../fuzz/defaults.ts';
import { guardedFactory } from '../fuzz/guard.ts';
import { runFuzz } from '../fuzz/property.ts';
import { moduleUrl } from '../fuzz/user-impl.ts';
import { WasmModuleError, checkWasm, loadWasm, wasmFactory, type WasmModule } from '../fuzz/wasm-impl.ts';
import { createModel } from '../model/index.ts';
import { kernelLayout } from '../spec/address.ts';
import { applyCommand, type Op } from '../spec/commands.ts';
import { kernelScenario } from '../spec/scenario.ts';
import { PAGE_KERNEL } from '../spec/state.ts';
import type { PageTableSystem, SystemSetup } from '../spec/system.ts';
import { ROOT, ptspec } from './cli.ts';

const TOY = 'c/test/toy.wasm';
const scenario = kernelScenario();
const linux: SystemSetup = { config: scenario.config, frames: scenario.frames, profile: 'linux' };
const dm = kernelLayout(scenario.config.levels).pageOffset;

let toy: WasmModule;
beforeAll(async () => {
  toy = await loadWasm(TOY);
});

// ---- modules assembled here (the binary format, WebAssembly core spec §5) ----

const uleb = (n: number): number[] => {
  const out: number[] = [];
  do {
    const b = n & 0x7f;
    n >>>= 7;
    out.push(n === 0 ? b : b | 0x80);
  } while (n !== 0);
  return out;
};
const sleb = (v: bigint): number[] => {
  const out: number[] = [];
  for (;;) {
    const b = Number(v & 0x7fn);
    v >>= 7n;
    if ((v === 0n && (b & 0x40) === 0) || (v === -1n && (b & 0x40) !== 0)) return [...out, b];
    out.push(b | 0x80);
  }
};
const vec = (items: readonly number[][]): number[] => [...uleb(items.length), ...items.flat()];
const section = (id: number, body: number[]): number[] => [id, ...uleb(body.length), ...body];
const name = (s: string): number[] => vec([...Buffer.from(s)].map((b) => [b]));

const I32 = 0x7f;
const I64 = 0x7e;
interface Func {
  readonly params: readonly number[];
  readonly results: readonly number[];
  readonly body: readonly number[];
}
const i32 = (k: number): number[] => [0x41, ...sleb(BigInt(k))];
const i64 = (k: bigint): number[] => [0x42, ...sleb(k)];

/** A module exporting memory and `funcs`, with one mutable i32 global (a bump pointer at 1024). */
function assemble(funcs: Readonly<Record<string, Func>>): Uint8Array {
  const entries = Object.entries(funcs);
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vec(entries.map(([, f]) => [0x60, ...vec(f.params.map((p) => [p])), ...vec(f.results.map((r) => [r]))]))),
    ...section(3, vec(entries.map((_, i) => uleb(i)))),
    ...section(5, vec([[0x00, 0x01]])),
    ...section(6, vec([[I32, 0x01, ...i32(1024), 0x0b]])),
    ...section(7, vec([[...name('memory'), 0x02, 0x00], ...entries.map(([n], i) => [...name(n), 0x00, ...uleb(i)])])),
    ...section(10, vec(entries.map(([, f]) => {
      const body = [0x00, ...f.body, 0x0b];
      return [...uleb(body.length), ...body];
    }))),
  ]);
}

const returns = (params: readonly number[], result: number, value: number[]): Func => ({ params, results: [result], body: value });
const none = (params: readonly number[]): Func => ({ params, results: [], body: [] });
/** ptspec_alloc: round up to 8 and bump the global. */
const bump: Func = {
  params: [I32], results: [I32],
  body: [0x23, 0, 0x23, 0, 0x20, 0, ...i32(7), 0x6a, ...i32(-8), 0x71, 0x6a, 0x24, 0],
};
/** ptspec_abstract of a system with nothing: the header alone (magic, version 1, all counts 0). */
const emptyAbstract: Func = {
  params: [I32, I32, I64], results: [I64],
  body: [
    0x20, 1, ...i32(0x53415450), 0x36, 2, 0,
    0x20, 1, ...i32(1), 0x36, 2, 4,
    ...[8, 16, 24, 32, 40].flatMap((o) => [0x20, 1, ...i64(0n), 0x37, 3, o]),
    ...i64(48n),
  ],
};
const MAP_TRANSLATE_LINUX = (1n << 0n) | (1n << 7n) | (1n << 49n);

/** The least module of c/ptspec.h: map and translate under linux; map traps (`unreachable`). */
const trapping: Readonly<Record<string, Func>> = {
  ptspec_abi_version: returns([], I32, i32(1)),
  ptspec_supported_ops: returns([], I64, i64(MAP_TRANSLATE_LINUX)),
  ptspec_create: returns([I32], I32, i32(8)),
  ptspec_destroy: none([I32]),
  ptspec_fork: returns([I32], I32, i32(0)),
  ptspec_last_refused: returns([I32], I32, i32(0)),
  ptspec_abstract: emptyAbstract,
  ptspec_alloc: bump,
  ptspec_free: none([I32]),
  ptspec_map: { params: [I32, I32, I64, I64, I64, I32, I32], results: [I32], body: [0x00] },
  ptspec_translate: returns([I32, I32, I64, I32], I32, i32(-2)),
};

const refusal = async (bytes: Uint8Array): Promise<string> => {
  try {
    await checkWasm('mod.wasm', bytes);
  } catch (e) {
    expect(e).toBeInstanceOf(WasmModuleError);
    return (e as Error).message;
  }
  throw new Error('the module was accepted');
};

// ---- the tests ----

describe('c/test/toy.wasm', () => {
  it('is what c/test/toy.c builds to, with the command its header gives', () => {
    const source = readFileSync(join(ROOT, 'c/test/toy.c'), 'utf8');
    const command = /\* {3}(clang --target=wasm32[^\n]*)\n \* {5}([^\n]*)/.exec(source);
    expect(command).not.toBeNull();
    const args = `${command![1]!} ${command![2]!}`.split(/\s+/).slice(1);
    let hasClang = true;
    try {
      execFileSync('clang', ['--version'], { stdio: 'ignore' });
    } catch {
      hasClang = false;
    }
    if (!hasClang) {
      // Without clang the committed module is at least one ptspec accepts.
      expect(toy.supported.ops.size).toBeGreaterThan(0);
      return;
    }
    const out = join(mkdtempSync(join(tmpdir(), 'ptspec-toy-')), 'toy.wasm');
    execFileSync('clang', args.map((a) => (a === TOY ? out : a)), { cwd: ROOT });
    expect(Buffer.compare(readFileSync(out), readFileSync(join(ROOT, TOY)))).toBe(0);
  });

  it('says it supports map, unmap, translate, flush and flushAll, under linux only', () => {
    expect([...toy.supported.ops]).toEqual(['map', 'unmap', 'translate', 'flush', 'flushAll']);
    expect([...toy.supported.profiles]).toEqual(['linux']);
  });
});

describe('the adapter on the toy', () => {
  const booted = (): PageTableSystem => {
    const sys = wasmFactory(toy)(linux);
    for (const c of scenario.boot) expect(applyCommand(sys, c).ok).toBe(true);
    return sys;
  };

  it('boots the kernel scenario to the model\'s state (a buffer larger than the first one: grown)', () => {
    const model = createModel(linux);
    for (const c of scenario.boot) applyCommand(model, c);
    const [a, b] = [booted().abstract(), model.abstract()];
    expect(a.roots).toEqual(b.roots);
    expect(a.frames).toEqual(b.frames);
    expect([a.tlb, a.pendingFlush, a.tablesInUse, a.pendingTableFrees]).toEqual([b.tlb, b.pendingFlush, b.tablesInUse, b.pendingTableFrees]);
    expect(a.roots[0]!.leaves.length * 24).toBeGreaterThan(4096);
  });

  it('returns the errors the contracts name, the validators first', () => {
    const sys = booted();
    expect(sys.map(0, dm, 0, 1, PAGE_KERNEL)).toMatchObject({ ok: false, error: { errno: 'EEXIST', arg: 'vpn' } });
    expect(sys.map(1, dm, 0, 1, PAGE_KERNEL)).toMatchObject({ ok: false, error: { errno: 'EINVAL', arg: 'root' } });
    expect(sys.map(0, 5, 0, 1, PAGE_KERNEL)).toMatchObject({ ok: false, error: { errno: 'EINVAL', arg: 'vpn' } });
    const hole = kernelLayout(4).vmallocStart + 1024 * 1024;
    expect(sys.unmap(0, hole, 1)).toMatchObject({ ok: false, error: { errno: 'ENOENT', arg: 'vpn' } });
    expect(sys.translate(0, hole)).toMatchObject({ ok: false, error: { errno: 'ENOENT', arg: 'vpn' } });
    expect(sys.translate(0, dm + 0x105)).toEqual({ ok: true, value: { leaf: { vpn: dm, pfn: 0, size: '2M', prot: PAGE_KERNEL }, pfn: 0x105 } });
    expect(() => sys.split(0, dm)).toThrow('does not implement split (ptspec_supported_ops)');
  });

  it('forks independent copies (ptspec_fork)', () => {
    const sys = booted();
    const before = sys.abstract();
    const copy = sys.fork!();
    const vmalloc = kernelLayout(4).vmallocStart + 1;
    expect(copy.unmap(0, vmalloc, 64, { flush: false }).ok).toBe(true);
    expect(copy.abstract().pendingFlush).toEqual([{ vpn: vmalloc, pages: 64, reason: 'unmap' }]);
    expect(sys.abstract()).toEqual(before);
  });

  it('refuses a profile the module does not follow', () => {
    expect(() => wasmFactory(toy)({ ...linux, profile: 'strict' })).toThrow('does not follow the strict profile (ptspec_supported_ops lacks PTSPEC_SUPPORTS_STRICT)');
  });
});

describe('a fixed-seed campaign of the toy', () => {
  it('passes against the model under linux, on the operations the toy has', () => {
    const r = runFuzz(
      {
        scenario, makeModel: createModel, makeImpl: guardedFactory(wasmFactory(toy)), invariants: catalogueSuite, checkTables: null,
        profile: 'linux', maxCommands: 80, swarm: true, ops: toy.supported.ops,
      },
      { seed: 17, numRuns: 20 },
    );
    expect(r.failure).toBeUndefined();
    expect(r.failed).toBe(false);
    expect(Object.keys(r.coverage.outcomes).sort()).toEqual(['flush', 'flushAll', 'map', 'translate', 'unmap']);
    for (const op of ['map', 'unmap', 'translate']) expect(r.coverage.outcomes[op]!['ok']).toBeGreaterThan(0);
  });

  it('runs through the campaign target: the module\'s operations, the boot checked', async () => {
    const target = withProfile(moduleTarget(TOY, moduleUrl(TOY)), 'linux');
    const setup = await traceSetupFor('kernel', target, 50);
    expect((setup as { ops?: ReadonlySet<Op> }).ops).toEqual(toy.supported.ops);
    expect(setup.isolation).toBeUndefined();
    expect(setup.clients).toBeUndefined();
    expect(bootFailure(setup)).toBeNull();
    await expect(traceSetupFor('kernel', moduleTarget(TOY, moduleUrl(TOY)), 50)).rejects.toThrow('PTSPEC_SUPPORTS_STRICT');
    await expect(traceSetupFor('x86-64', target, 50)).rejects.toThrow('lacks protect, freeFrames, which the boot of scenario x86-64 needs');
  });
});

describe('generation keeps to the operations a module supports', () => {
  it('never generates another operation, nor a block using one', () => {
    const sample = (ops?: ReadonlySet<Op>): Set<Op> => {
      const seen = new Set<Op>();
      for (const swarm of [false, true]) {
        const arb = commandsArb(scenario, { maxCommands: 150, swarm, interior: true, ...(ops === undefined ? {} : { ops }) });
        for (const seq of fc.sample(arb, { seed: 5, numRuns: 40 })) for (const c of seq) seen.add(c.op);
      }
      return seen;
    };
    const toyOps = toy.supported.ops as ReadonlySet<Op>;
    expect([...sample(toyOps)].sort()).toEqual([...toyOps].sort());
    // Unfiltered, the same draws reach the operations the toy lacks (the blocks' allocFrames among them).
    expect(['allocFrames', 'protect', 'split', 'access'].every((op) => sample().has(op as Op))).toBe(true);
  });
});

describe('modules ptspec refuses', () => {
  it('names the problem of each', async () => {
    expect(await refusal(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]))).toMatch(/^--impl mod\.wasm: not a WebAssembly module/);
    expect(await refusal(assemble({ ...trapping, ptspec_abi_version: returns([], I32, i32(2)) })))
      .toBe('--impl mod.wasm: ptspec_abi_version() is 2, but this ptspec speaks ABI version 1 (c/ptspec.h)');
    const { ptspec_create: _create, ptspec_abstract: _abstract, ...lacking } = trapping;
    expect(await refusal(assemble(lacking))).toBe('--impl mod.wasm: does not export ptspec_create, ptspec_abstract (c/ptspec.h)');
    expect(await refusal(assemble({ ...trapping, ptspec_supported_ops: returns([], I64, i64((1n << 0n) | (1n << 49n))) })))
      .toBe('--impl mod.wasm: ptspec_supported_ops() lacks PTSPEC_OP_TRANSLATE, which every implementation needs');
    expect(await refusal(assemble({ ...trapping, ptspec_supported_ops: returns([], I64, i64(MAP_TRANSLATE_LINUX | (1n << 5n))) })))
      .toBe('--impl mod.wasm: supports split but does not export ptspec_split');
    expect(await refusal(assemble({ ...trapping, ptspec_supported_ops: returns([], I64, i64((1n << 0n) | (1n << 7n))) })))
      .toBe('--impl mod.wasm: ptspec_supported_ops() names no profile (PTSPEC_SUPPORTS_STRICT or PTSPEC_SUPPORTS_LINUX)');
  });

  it('exits 2 from ptspec fuzz, naming the file and the problem', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ptspec-wasm-'));
    const garbage = join(dir, 'garbage.wasm');
    writeFileSync(garbage, 'not wasm');
    const old = join(dir, 'old.wasm');
    writeFileSync(old, assemble({ ...trapping, ptspec_abi_version: returns([], I32, i32(2)) }));
    const out = ['--runs', '1', '--jobs', '1', '--out', join(dir, 'failures')];
    const cases: readonly (readonly [string[], string])[] = [
      [['--impl', garbage, ...out], `--impl ${garbage}: not a WebAssembly module`],
      [['--impl', old, ...out], `--impl ${old}: ptspec_abi_version() is 2, but this ptspec speaks ABI version 1`],
      [['--impl', join(dir, 'none.wasm'), ...out], `--impl ${join(dir, 'none.wasm')}: no such file`],
      [['--impl', TOY, ...out], 'does not follow the strict profile (ptspec_supported_ops lacks PTSPEC_SUPPORTS_STRICT); try --profile linux'],
      [['--impl', TOY, '--profile', 'linux', '--scenario', 'x86-64', ...out], 'lacks protect, freeFrames, which the boot of scenario x86-64 needs'],
    ];
    for (const [args, message] of cases) {
      const r = await ptspec('fuzz', ...args);
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 2, stderr: expect.stringContaining(message) });
    }
  });
});

describe('a trap inside the module', () => {
  it('is an exception failure of the impl at the command that trapped, and kills the instance', async () => {
    const m = await checkWasm('trap.wasm', assemble(trapping));
    const map = { op: 'map', root: 0, vpn: dm, pfn: 0, pages: 1, prot: PAGE_KERNEL } as const;
    let made: PageTableSystem | undefined;
    const r = runTrace({
      scenario: { ...scenario, boot: [] }, makeModel: createModel, invariants: catalogueSuite, checkTables: null, profile: 'linux',
      makeImpl: (s) => (made = wasmFactory(m)(s)), commands: [map],
    });
    expect(r.failure).toMatchObject({ kind: 'exception', cause: 'impl', phase: 'run', step: 0, command: map, impl: { outcome: 'exception' } });
    expect(r.failure!.detail).toContain('trap.wasm: ptspec_map trapped: unreachable');
    expect(r.failure!.detail).toMatch(/wasm-function\[\d+\]/);
    expect(() => made!.translate(0, dm)).toThrow('trap.wasm: the instance is unusable since ptspec_map trapped');
  });
});
