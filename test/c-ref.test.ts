/**
 * The reference C implementation (c/ref, linux profile) held to the model through both
 * adapters: the committed c/ptspec-ref.wasm in process, and the same sources built with cc
 * behind the protocol server (c/ptspec-main.c) as a child process. A mutant of the C
 * library, built natively, is caught at the step it breaks. The long campaigns, every C
 * mutant through both adapters and the byte-for-byte rebuild of the .wasm are .ci/run's.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { catalogueSuite } from '../fuzz/defaults.ts';
import { guardedFactory } from '../fuzz/guard.ts';
import { loadProcessImpl, type ProcessImpl } from '../fuzz/process-impl.ts';
import { runFuzz } from '../fuzz/property.ts';
import { moduleUrl } from '../fuzz/user-impl.ts';
import { loadWasm, wasmFactory, type WasmModule } from '../fuzz/wasm-impl.ts';
import { createModel } from '../model/index.ts';
import type { Op } from '../spec/commands.ts';
import { kernelScenario } from '../spec/scenario.ts';
import type { PageTableSystemFactory } from '../spec/system.ts';
import { ROOT } from './cli.ts';

const scenario = kernelScenario();
const SOURCES = readdirSync(join(ROOT, 'c/ref')).filter((f) => f.endsWith('.c') && f !== 'test.c').sort().map((f) => join(ROOT, 'c/ref', f));
const dir = mkdtempSync(join(tmpdir(), 'ptspec-cref-'));

/** The protocol server linked with the C library, optionally with mutant number `mutant` (c/ref/mutant.h). */
function server(name: string, mutant = 0): string {
  const out = join(dir, name);
  execFileSync('cc', ['-O2', '-std=c11', `-DPTSPEC_MUTANT=${mutant}`, '-o', out, join(ROOT, 'c/ptspec-main.c'), ...SOURCES], { stdio: 'pipe' });
  return out;
}

const fuzz = (makeImpl: PageTableSystemFactory, ops: ReadonlySet<string>, seed: number, numRuns: number) => runFuzz(
  { scenario, makeModel: createModel, makeImpl: guardedFactory(makeImpl), invariants: catalogueSuite, checkTables: null, profile: 'linux', maxCommands: 60, swarm: true, ops: ops as ReadonlySet<Op> },
  { seed, numRuns },
);

describe('the reference C implementation', () => {
  let wasm: WasmModule;
  const processes: ProcessImpl[] = [];
  beforeAll(async () => {
    wasm = await loadWasm(moduleUrl('c/ptspec-ref.wasm'));
  });
  afterAll(() => {
    for (const p of processes) p.closeAll();
  });

  it('says what it implements: the linux profile, the core operations but protect and set_direct_map_*', () => {
    expect([...wasm.supported.profiles]).toEqual(['linux']);
    expect([...wasm.supported.ops].sort()).toEqual(['access', 'allocFrames', 'collapse', 'flush', 'flushAll', 'flushLocal', 'freeFrames', 'map', 'split', 'translate', 'unmap']);
  });

  it('agrees with the model through the wasm adapter (seed 23, 40 sequences)', () => {
    const r = fuzz(wasmFactory(wasm), wasm.supported.ops, 23, 40);
    expect(r.failure, JSON.stringify(r.failure)).toBeUndefined();
    for (const op of ['map', 'unmap', 'split', 'collapse', 'access']) expect(Object.keys(r.coverage.outcomes[op] ?? {}).length, op).toBeGreaterThan(0);
  });

  it('agrees with the model as a native process behind c/ptspec-main.c (seed 29, 12 sequences)', () => {
    const p = loadProcessImpl(server('ref'));
    processes.push(p);
    expect(p.ops).toEqual(wasm.supported.ops);
    const r = fuzz(p.factory, p.ops, 29, 12);
    expect(r.failure, JSON.stringify(r.failure)).toBeUndefined();
  });

  it('is caught with a mutant built in: walk-cache-survives-flush (7) through the process adapter', () => {
    const p = loadProcessImpl(server('walk-cache-survives-flush', 7));
    processes.push(p);
    const r = fuzz(p.factory, p.ops, 5, 40);
    // Caught where the caches should have gone: the flush's postcondition, or the caches differing from the model's.
    expect(r.failed).toBe(true);
    expect(['postcondition', 'refinement']).toContain(r.failure?.kind);
    expect(r.failure?.detail).toMatch(/walk|cache|tlb/i);
  });
});
