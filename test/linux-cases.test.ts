/**
 * The kernel-derived cases of test/linux-cases.ts, run on the impl and, once the model
 * follows the linux profile, on the model: each case's results, pages, aliases, events
 * and TLB entries as the kernel function it cites decides them.
 */
import { describe, expect, it } from 'vitest';
import { PAGES, type Vpn } from '../spec/address.ts';
import { applyCommand } from '../spec/commands.ts';
import { outcome } from '../spec/errors.ts';
import { scenarioNamed } from '../spec/scenario.ts';
import type { AbstractState, Leaf } from '../spec/state.ts';
import type { PageTableSystem, SystemSetup } from '../spec/system.ts';
import { Model } from '../model/index.ts';
import { checkTables, createImpl, RadixSystem } from '../impl/index.ts';
import { LINUX_CASES, type LinuxCase, type PageExpect } from './linux-cases.ts';

interface Target {
  readonly name: string;
  readonly make: (setup: SystemSetup) => PageTableSystem;
}

const covers = (l: Leaf, at: Vpn): boolean => l.vpn <= at && at < l.vpn + PAGES[l.size];

/** The entry containing `at`: a leaf, or a non-present entry. */
function entryAt(state: AbstractState, at: Vpn): { leaf: Leaf; present: boolean } | undefined {
  const root = state.roots[0]!;
  const leaf = root.leaves.find((l) => covers(l, at));
  if (leaf !== undefined) return { leaf, present: true };
  const np = root.nonPresent?.find((l) => covers(l, at));
  return np === undefined ? undefined : { leaf: np, present: false };
}

/** What the case says about a page, read back from the state in the same shape. */
function observed(state: AbstractState, p: PageExpect): PageExpect {
  const e = entryAt(state, p.at);
  if (e === undefined) return { at: p.at, what: p.what, size: null };
  const { prot } = e.leaf;
  const seen: Record<string, unknown> = {
    present: e.present, write: prot.write, exec: prot.execKernel, global: prot.global, cache: prot.cache, kernel4k: prot.kernel4k === true,
  };
  const out: Record<string, unknown> = { at: p.at, what: p.what, size: e.leaf.size };
  for (const k of Object.keys(p)) if (k in seen) out[k] = seen[k];
  return out as unknown as PageExpect;
}

function boot(target: Target, c: LinuxCase): PageTableSystem {
  const scenario = scenarioNamed(c.scenario)!();
  const sys = target.make({ config: scenario.config, frames: scenario.frames, profile: 'linux' });
  for (const cmd of scenario.boot) expect(outcome(applyCommand(sys, cmd)), JSON.stringify(cmd)).toBe('ok');
  expect(sys.takeEvents?.() ?? [], 'the boot prints nothing').toEqual([]);
  return sys;
}

function runCase(target: Target, c: LinuxCase): void {
  const sys = boot(target, c);
  const bootTables = sys.abstract().tablesInUse;
  const results = c.commands.map((cmd) => outcome(applyCommand(sys, cmd)));
  expect(results, 'results').toEqual(c.expect.results);
  expect(sys.takeEvents?.() ?? [], 'events').toEqual(c.expect.events);
  const state = sys.abstract();
  for (const p of c.expect.pages) expect(observed(state, p), p.what).toEqual(p);
  for (const t of c.expect.tlb ?? []) {
    const hit = state.tlb.find((e) => e.cpu === t.cpu && covers(e.leaf, t.at));
    const seen = { ...t, cached: hit !== undefined, ...(t.write === undefined || hit === undefined ? {} : { write: hit.leaf.prot.write }) };
    expect(seen, `TLB of CPU ${t.cpu} at ${t.at}`).toEqual(t);
  }
  for (const f of c.expect.noDirectMap ?? []) {
    const run = state.frames.find((r) => r.pfn <= f.pfn && f.pfn < r.pfn + r.count);
    expect({ pfn: f.pfn, value: run?.noDirectMap }, 'noDirectMap').toEqual(f);
  }
  for (const f of c.expect.memtype ?? []) {
    const run = state.frames.find((r) => r.pfn <= f.pfn && f.pfn < r.pfn + r.count);
    expect({ pfn: f.pfn, value: run?.memtype ?? null }, 'memtype').toEqual(f);
  }
  if (c.expect.tablesAdded !== undefined) expect(state.tablesInUse - bootTables, 'page tables added').toBe(c.expect.tablesAdded);
  if (c.expect.pendingFlush !== undefined) expect(state.pendingFlush, 'flush obligations').toEqual(c.expect.pendingFlush);
  if (sys instanceof RadixSystem) expect(checkTables(sys), 'the impl\'s tables').toEqual([]);
}

const impl: Target = { name: 'impl', make: (setup) => createImpl(setup) };
const model: Target = { name: 'model', make: (setup) => new Model(setup) };

describe('kernel-derived cases under the linux profile', () => {
  it('every case cites a kernel function and expects one result per command', () => {
    for (const c of LINUX_CASES) {
      expect(c.kernelFunction, c.name).toMatch(/[a-z_]+/);
      expect(c.expect.results.length, c.name).toBe(c.commands.length);
    }
  });

  describe.each(LINUX_CASES.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    it(`impl (${c.kernelFunction})`, () => runCase(impl, c));
    it(`model (${c.kernelFunction})`, () => runCase(model, c));
    it('impl and model agree on the whole state and on what was printed', () => {
      const [a, b] = [impl, model].map((t) => {
        const sys = boot(t, c);
        for (const cmd of c.commands) applyCommand(sys, cmd);
        return { state: sys.abstract(), events: sys.takeEvents?.() ?? [] };
      });
      expect(a!.events).toEqual(b!.events);
      expect(a!.state).toEqual(b!.state);
    });
  });
});
