/**
 * The impl against the reference model: the booted kernel scenario abstracts to exactly
 * the model's state, and random command sequences (clustered on huge-page edges, small
 * pools for ENOMEM) give the same result, the same abstract state and sound tables after
 * every command, under the strict and the linux profile (events too). The fuzz suites do
 * this at scale; this is the impl's own quick check.
 */
import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PAGES, X86_64_LAYOUT_4LEVEL as L } from '../spec/address.ts';
import { applyCommand, type Command } from '../spec/commands.ts';
import { kernelScenario, KERNEL_IMAGE, TABLE_POOL, type Scenario } from '../spec/scenario.ts';
import { CACHE_MODES, type Prot } from '../spec/state.ts';
import type { Profile } from '../spec/system.ts';
import { createModel } from '../model/index.ts';
import { checkTables, createImpl } from '../impl/index.ts';
import { fcParams } from './seed.ts';

function boot(s: Scenario, profile: Profile = 'strict') {
  const setup = profile === 'strict' ? s : { ...s, profile };
  const model = createModel(setup);
  const impl = createImpl(setup);
  for (const c of s.boot) {
    const a = applyCommand(model, c);
    const b = applyCommand(impl, c);
    expect(b.ok, JSON.stringify(c)).toBe(a.ok);
  }
  return { model, impl };
}

describe('impl refines the model', () => {
  it('the booted kernel scenario: same abstract state, sound tables', () => {
    const { model, impl } = boot(kernelScenario());
    const m = model.abstract();
    const x = impl.abstract();
    expect(x).toEqual(m);
    expect(x.roots[0]!.leaves.length).toBeGreaterThan(500);
    // pgd + the direct map's pud and pmds + the image, vmalloc and cpu_entry_area tables.
    expect(x.tablesInUse).toBe(m.tablesInUse);
    expect(checkTables(impl)).toEqual([]);
  });

  it('the booted scenario with 5-level paging', () => {
    const { model, impl } = boot(kernelScenario({ levels: 5 }));
    expect(impl.abstract()).toEqual(model.abstract());
  });

  const bases = [L.vmallocStart, L.vmallocStart + PAGES['1G'] - 512, L.pageOffset, L.pageOffset + KERNEL_IMAGE.textPfn, L.kernelText + KERNEL_IMAGE.textPfn, L.modules, L.pageOffset + TABLE_POOL.pfn];
  const vpn = fc.tuple(fc.constantFrom(...bases), fc.constantFrom(0, 1, 511, 512, 1024, PAGES['1G'] - 1, PAGES['1G']), fc.nat(600))
    .map(([b, o, d]) => b + o + (d < 300 ? 0 : d));
  const pages = fc.constantFrom(1, 2, 3, 511, 512, 513, 1024, PAGES['1G']);
  const pfn = fc.tuple(fc.constantFrom(0, 512, KERNEL_IMAGE.textPfn, 100 * 256, TABLE_POOL.pfn, PAGES['1G'], 3000 * 256), fc.constantFrom(0, 1, 512))
    .map(([a, b]) => a + b);
  // Mostly policy-clean prots (W^X, and WB as the direct-map alias of every frame has, T5), so maps succeed often enough to build interesting trees.
  const cache = fc.oneof({ weight: 4, arbitrary: fc.constant('WB' as const) }, { weight: 1, arbitrary: fc.constantFrom(...CACHE_MODES) });
  const prot: fc.Arbitrary<Prot> = fc.record({ write: fc.boolean(), exec: fc.boolean(), global: fc.boolean(), cache })
    .map(({ write, exec, global, cache }) => ({ write, user: false, execKernel: exec && !write, execUser: false, global, cache }));
  const change = fc.record({ write: fc.boolean(), exec: fc.boolean(), global: fc.boolean(), cache }, { requiredKeys: [] });
  const command: fc.Arbitrary<Command> = fc.oneof(
    { weight: 4, arbitrary: fc.record({ op: fc.constant('map' as const), root: fc.constant(0), vpn, pfn, pages: fc.constantFrom(1, 3, 511, 512, 513, 1024), prot, maxPage: fc.constantFrom('4K' as const, '2M' as const, '1G' as const) }) },
    { weight: 3, arbitrary: fc.record({ op: fc.constant('unmap' as const), root: fc.constant(0), vpn, pages }) },
    { weight: 3, arbitrary: fc.record({ op: fc.constant('protect' as const), vpn, pages, change, alias: fc.boolean() }) },
    { weight: 2, arbitrary: fc.record({ op: fc.constant('split' as const), root: fc.constant(0), vpn }) },
    { weight: 2, arbitrary: fc.record({ op: fc.constant('collapse' as const), root: fc.constant(0), vpn, size: fc.constantFrom('2M' as const, '1G' as const) }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('setDirectMapInvalid' as const), pfn, count: fc.constantFrom(1, 2, 512), flush: fc.boolean() }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('setDirectMapDefault' as const), pfn, count: fc.constantFrom(1, 2, 512), flush: fc.boolean() }) },
    { weight: 3, arbitrary: fc.record({ op: fc.constant('access' as const), cpu: fc.constantFrom(0, 1), root: fc.constant(0), vpn, kind: fc.constantFrom('r' as const, 'w' as const, 'x' as const), mode: fc.constantFrom('kernel' as const, 'user' as const) }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('flush' as const), vpn, pages }) },
    { weight: 1, arbitrary: fc.constant({ op: 'flushAll' as const }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('translate' as const), root: fc.constant(0), vpn }) },
  );

  const seen = new Map<string, number>();

  /** Runs the commands on both; throws at the first divergence, naming the step. */
  function agree(s: Scenario, commands: readonly Command[], profile: Profile = 'strict'): void {
    const d = diverges(s, commands, profile);
    if (d !== null) throw new Error(d);
  }

  function diverges(s: Scenario, commands: readonly Command[], profile: Profile): string | null {
    const { model, impl } = boot(s, profile);
    for (const [k, c] of commands.entries()) {
      const a = applyCommand(model, c);
      const b = applyCommand(impl, c);
      const key = a.ok ? 'ok' : a.error.errno;
      seen.set(key, (seen.get(key) ?? 0) + 1);
      const same = a.ok && b.ok ? isDeepStrictEqual(a.value, b.value) : !a.ok && !b.ok && a.error.errno === b.error.errno && a.error.arg === b.error.arg && a.error.invariant === b.error.invariant;
      if (!same) return `step ${k} ${JSON.stringify(c)}: model ${JSON.stringify(a)} impl ${JSON.stringify(b)}`;
      const printed = [model.takeEvents?.() ?? [], impl.takeEvents?.() ?? []] as const;
      if (!isDeepStrictEqual(printed[0], printed[1])) return `step ${k} ${JSON.stringify(c)}: model printed ${JSON.stringify(printed[0])}, impl ${JSON.stringify(printed[1])}`;
      if (!isDeepStrictEqual(model.abstract(), impl.abstract())) return `step ${k} ${JSON.stringify(c)}: abstract states differ`;
      const bad = checkTables(impl);
      if (bad.length > 0) return `step ${k} ${JSON.stringify(c)}: ${bad[0]!.detail}`;
    }
    return null;
  }

  it('random sequences: same results, same abstract state, sound tables', () => {
    fc.assert(fc.property(fc.array(command, { minLength: 10, maxLength: 40 }), (cs) => agree(kernelScenario(), cs)), fcParams({ numRuns: 18 }));
    // The sequences reach every outcome the core operations have.
    expect([...seen.keys()].sort()).toEqual(['EEXIST', 'EINVAL', 'ENOENT', 'EPERM', 'ok']);
  });

  it('random sequences on a nearly full table pool (ENOMEM and its rollback)', () => {
    const tight = kernelScenario({ tablePool: { pfn: TABLE_POOL.pfn, count: 16 } });
    seen.clear();
    fc.assert(fc.property(fc.array(command, { minLength: 10, maxLength: 40 }), (cs) => agree(tight, cs)), fcParams({ numRuns: 20 }));
    expect(seen.get('ENOMEM') ?? 0).toBeGreaterThan(10);
  });

  it('random sequences with 5-level paging on a CPU without GB pages', () => {
    const la57 = kernelScenario({ levels: 5, features: { pse: true, gbpages: false } });
    fc.assert(fc.property(fc.array(command, { minLength: 10, maxLength: 30 }), (cs) => agree(la57, cs)), fcParams({ numRuns: 10 }));
  });

  const linuxModel = createModel({ ...kernelScenario(), profile: 'linux' }).profile === 'linux';
  const underLinux = linuxModel ? it : it.skip;
  const why = linuxModel ? '' : ' (skipped: the model does not follow the linux profile yet)';

  underLinux(`under the linux profile: same results, events, abstract state and sound tables, EFAULT and non-atomic ENOMEM included${why}`, () => {
    seen.clear();
    fc.assert(fc.property(fc.array(command, { minLength: 10, maxLength: 40 }), (cs) => agree(kernelScenario(), cs, 'linux')), fcParams({ numRuns: 15 }));
    const tight = kernelScenario({ tablePool: { pfn: TABLE_POOL.pfn, count: 16 } });
    fc.assert(fc.property(fc.array(command, { minLength: 10, maxLength: 40 }), (cs) => agree(tight, cs, 'linux')), fcParams({ numRuns: 15 }));
    // No policy under linux: nothing is refused with EPERM.
    expect(seen.has('EPERM')).toBe(false);
    expect(seen.get('EFAULT') ?? 0).toBeGreaterThan(0);
    expect(seen.get('ENOMEM') ?? 0).toBeGreaterThan(0);
  });
});
