/**
 * The refinement checker catches deliberately broken systems with the right kind of
 * failure, and the report of a caught bug is something a kernel developer can act on:
 * the failed check, the witness with hex addresses, the seed and path, and the shrunk
 * command list with the failing step marked. Replaying the shrunk commands reproduces the
 * same failure exactly (what `ptspec replay` relies on).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PAGES, X86_64_LAYOUT_4LEVEL as L, vpnToHex } from '../spec/address.ts';
import { applyCommand, type Command } from '../spec/commands.ts';
import { kernelScenario, KERNEL_IMAGE } from '../spec/scenario.ts';
import { INIT_MM, PAGE_KERNEL, type AbstractState, type Leaf } from '../spec/state.ts';
import type { PageTableSystem, PageTableSystemFactory } from '../spec/system.ts';
import { createImpl } from '../impl/index.ts';
import { createModel } from '../model/index.ts';
import { commandsArb } from '../fuzz/arbitraries.ts';
import { runTrace } from '../fuzz/check.ts';
import { addCoverage, emptyCoverage, mergeCoverage } from '../fuzz/coverage.ts';
import { builtinTarget } from '../fuzz/defaults.ts';
import { leafEquals } from '../fuzz/compare.ts';
import { formatCommand, formatLeaf } from '../fuzz/format.ts';
import { runFuzz } from '../fuzz/property.ts';
import { formatFailure } from '../fuzz/report.ts';
import { touchedScopes } from '../fuzz/scope.ts';
import { fcParams, SEED } from './seed.ts';

const scenario = kernelScenario();

/** A system (the built-in impl by default) with some methods replaced: a hand-made broken implementation. */
function broken(overrides: (sys: PageTableSystem) => Partial<PageTableSystem>, make: PageTableSystemFactory = createImpl): PageTableSystemFactory {
  return (setup) => {
    const sys = make(setup);
    const o = overrides(sys) as Record<string | symbol, unknown>;
    return new Proxy(sys, {
      get(target, key) {
        if (key in o) return o[key];
        const v: unknown = Reflect.get(target, key);
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
  };
}

const dm = (pfn: number): number => L.pageOffset + pfn;

/**
 * Systems the factory has booted, for a scenario without boot commands: an abstraction
 * that lies from the first state on keeps every step's postcondition, so only the model
 * comparison or the catalogue can see the lie (one command runs the final full check).
 */
const preBooted = (make: PageTableSystemFactory): PageTableSystemFactory => (setup) => {
  const sys = make(setup);
  for (const c of scenario.boot) applyCommand(sys, c);
  return sys;
};
const unbooted = { ...scenario, boot: [] };
const oneStep: Command[] = [{ op: 'flushAll' }];

describe('runTrace on broken systems', () => {
  const target = builtinTarget(scenario);

  it('passes the real impl on a hand-written sequence', () => {
    const commands: Command[] = [
      { op: 'map', root: 0, vpn: L.vmallocStart + PAGES['1G'], pfn: 200 * 256, pages: 3 * PAGES['2M'] + 5, prot: PAGE_KERNEL },
      { op: 'protect', vpn: L.vmallocStart + PAGES['1G'] + 7, pages: 600, change: { write: false }, alias: true },
      { op: 'access', cpu: 1, root: 0, vpn: dm(200 * 256 + 8), kind: 'w', mode: 'kernel' },
      { op: 'unmap', root: 0, vpn: L.vmallocStart + PAGES['1G'], pages: PAGES['2M'] + 1 },
    ];
    const r = runTrace({ ...target, commands });
    expect(r.failure).toBeNull();
    expect(r.outcomes.map((o) => o.outcome)).toEqual(['ok', 'ok', 'ok', 'ok']);
    expect(r.coverage.outcomes['access']).toEqual({ ok: 1 });
    expect(r.coverage.access).toEqual({ protection: 1 });
  });

  it('reports a wrong translate result as an outcome mismatch with both results', () => {
    const makeImpl = broken((sys) => ({
      translate: (root, vpn) => {
        const t = sys.translate(root, vpn);
        return t.ok ? { ok: true, value: { ...t.value, pfn: t.value.pfn + 1 } } : t;
      },
    }));
    const commands: Command[] = [{ op: 'translate', root: 0, vpn: dm(5) }];
    const f = runTrace({ ...target, makeImpl, commands }).failure;
    expect(f).toMatchObject({ kind: 'outcome-mismatch', phase: 'run', step: 0, check: 'outcome' });
    const text = formatFailure(f!, { seed: 1, commands });
    expect(text).toContain('model:   ok -> 0x5000 via 2M 0xffff888000000000 -> 0x0');
    expect(text).toContain('impl:    ok -> 0x6000');
  });

  it('reports an abstraction that loses a leaf as a refinement failure with the leaf as witness', () => {
    const makeImpl = broken((sys) => ({
      abstract: (): AbstractState => {
        const s = sys.abstract();
        return { ...s, roots: s.roots.map((r) => (r.id === INIT_MM ? { ...r, leaves: r.leaves.filter((l) => l.vpn !== L.kernelText + KERNEL_IMAGE.dataPfn) } : r)) };
      },
    }), preBooted(createImpl));
    const f = runTrace({ ...target, scenario: unbooted, makeModel: preBooted(target.makeModel), makeImpl, commands: oneStep }).failure;
    expect(f).toMatchObject({ kind: 'refinement', phase: 'run', check: 'full' });
    expect(f!.witnesses[0]).toMatchObject({ root: 0, vpn: L.kernelText + KERNEL_IMAGE.dataPfn, pages: PAGES['2M'] });
    expect(f!.witnesses[0]!.detail).toMatch(/^model has 2M 0xffffffff82000000 -> 0x2000000 RW GLB NX WB; impl has/);
  });

  it('reports a state both systems agree on but the catalogue forbids as an invariant failure with its statement', () => {
    // Both abstractions show the kernel text writable: refinement holds, W^X does not.
    const textVpn = L.kernelText + KERNEL_IMAGE.textPfn;
    const writableText = (make: PageTableSystemFactory): PageTableSystemFactory => broken((sys) => ({
      abstract: (): AbstractState => {
        const st = sys.abstract();
        const leaves = st.roots[0]!.leaves.map((l) => (l.vpn === textVpn ? { ...l, prot: { ...l.prot, write: true } } : l));
        return { ...st, roots: [{ ...st.roots[0]!, leaves }] };
      },
    }), make);
    const f = runTrace({ ...target, scenario: unbooted, makeModel: writableText(preBooted(target.makeModel)), makeImpl: writableText(preBooted(target.makeImpl)), commands: oneStep }).failure;
    expect(f).toMatchObject({ kind: 'invariant', phase: 'run', check: 'full' });
    const text = formatFailure(f!, { seed: 7, commands: oneStep });
    expect(text).toContain(`Invariant ${f!.invariantId}: ${f!.invariantStatement}`);
    expect(text).toContain(vpnToHex(textVpn));
  });

  it('turns an exception inside the impl into a failure of kind exception', () => {
    const makeImpl = broken(() => ({ flushAll: () => { throw new Error('flush_tlb_all exploded'); } }));
    const f = runTrace({ ...target, makeImpl, commands: [{ op: 'flushAll' }] }).failure;
    expect(f).toMatchObject({ kind: 'exception', step: 0, impl: { outcome: 'exception' } });
    expect(f!.detail).toContain('flush_tlb_all exploded');
  });

  it('holds the fast checks to the definitions on the final state when asked, and reports a disagreement as kind checker', () => {
    const commands: Command[] = [{ op: 'map', root: 0, vpn: L.vmallocStart + PAGES['1G'], pfn: 200 * 256, pages: 5, prot: PAGE_KERNEL }];
    // The real catalogue agrees with its definitions on the state this reaches.
    expect(runTrace({ ...target, commands, checkDefinitions: true }).failure).toBeNull();
    // A disagreement (checker/agreement.ts finds them; test/invariants-holds.test.ts shows
    // it does) ends the trace at its last command, naming the invariant.
    const disagreeing = { ...target.invariants, definitions: () => [{ id: 'T1', detail: 'T1 no_two_leaves_of_a_root_share_a_page: only one finds something' }] };
    expect(runTrace({ ...target, invariants: disagreeing, commands }).failure).toBeNull();
    const f = runTrace({ ...target, invariants: disagreeing, commands, checkDefinitions: true }).failure;
    expect(f).toMatchObject({ kind: 'checker', phase: 'run', step: 0, check: 'full', invariantId: 'T1' });
    expect(f!.detail).toBe('the fast check of T1 no_two_leaves_of_a_root_share_a_page: only one finds something');
    expect(formatFailure(f!, { seed: 7, commands })).toContain("an invariant's fast check disagrees with its definition");
  });
});

describe('failure report of a mutant', () => {
  const target = builtinTarget(scenario, 'no-alias');
  const r = runFuzz({ ...target, maxCommands: 200, shortFraction: 0.8 }, fcParams({ numRuns: 300 }));

  it('names the check, the seed and path, and the shrunk commands', () => {
    expect(r.failed).toBe(true);
    const f = r.failure!;
    const commands = r.commands!;
    const text = formatFailure(f, { seed: r.seed, path: r.path!, commands, scenario: scenario.name, impl: 'mutant no-alias' });
    // A cache change the impl leaves off the direct map is refused there (T5: one memory
    // type per frame) while the model grants it, so the result comparison can catch the
    // mutant before protect's alias sentence does; either is what its catalogue entry lists.
    expect(text).toMatch(/^FAILED: (a step broke its operation's contract|model and impl returned different results)/);
    expect(text).toContain(`Reproduce: seed=${SEED} path=${r.path}`);
    expect(text).toContain('impl=mutant no-alias');
    // Every shrunk command, one per line, and the failing one marked.
    for (const c of commands) expect(text).toContain(formatCommand(c));
    expect(text).toContain(`${formatCommand(commands[f.step]!)}   <-- fails here`);
    expect(commands.some((c) => c.op === 'protect' && c.alias === true)).toBe(true);
    expect(commands.length).toBeLessThanOrEqual(3);
  });

  it('a write change the impl leaves off the direct map breaks protect.alias, with the witness in hex, expected and found', () => {
    const commands: Command[] = [{ op: 'protect', vpn: L.vmallocStart + 1, pages: 1, change: { write: false }, alias: true }];
    const f = runTrace({ ...target, commands }).failure!;
    const text = formatFailure(f, { seed: SEED, commands, scenario: scenario.name, impl: 'mutant no-alias' });
    // The impl's step breaks protect's alias sentence before the model comparison runs.
    expect(text).toMatch(/^FAILED: a step broke its operation's contract/);
    expect(text).toContain("the impl breaks protect's postcondition protect.alias");
    // The witness: the direct-map alias page the impl left unchanged, in hex, expected and found.
    const w = f.witnesses[0]!;
    expect(w.vpn).toBeGreaterThanOrEqual(L.pageOffset);
    expect(text).toContain(`va ${vpnToHex(w.vpn!)}`);
    expect(text).toMatch(/expected \S+ leaf 0xffff888[0-9a-f]+ -> 0x[0-9a-f]+ .*, found /);
    expect(text).toContain(`${formatCommand(commands[0]!)}   <-- fails here`);
  });

  it('replays exactly from the shrunk commands alone', () => {
    const again = runTrace({ ...target, commands: r.commands! });
    expect(again.failure).toEqual(r.failure);
  });
});

describe('readable commands', () => {
  it('prints one command per line with hex addresses, K/M/G lengths and ptdump-like protections', () => {
    expect(formatCommand({ op: 'map', root: 0, vpn: dm(512), pfn: 512, pages: 512, prot: PAGE_KERNEL, maxPage: '2M' }))
      .toBe('map root=0 va=0xffff888000200000 pa=0x200000 len=2M prot=RW GLB NX WB maxPage=2M');
    expect(formatCommand({ op: 'protect', vpn: dm(1), pages: 513, change: { write: false, exec: true }, alias: true }))
      .toBe('protect va=0xffff888000001000 len=2052K change=-RW,+x alias');
    expect(formatCommand({ op: 'setDirectMapInvalid', pfn: 3, count: 2, flush: false })).toBe('set_direct_map_invalid_noflush pa=0x3000 count=2');
    expect(formatCommand({ op: 'unmap', root: 0, vpn: -1, pages: 0 })).toBe('unmap root=0 va=-1 len=0pages');
    expect(formatCommand({ op: 'access', cpu: 1, root: 0, vpn: dm(0), kind: 'x', mode: 'user' })).toBe('access cpu=1 root=0 va=0xffff888000000000 x user');
  });
});

describe('scopes and coverage', () => {
  it('widens a touched range to the leaves it splits and adds the direct-map and high-map aliases of protected frames', () => {
    const before = [
      { vpn: dm(0), pfn: 0, size: '2M' as const, prot: PAGE_KERNEL },
      { vpn: L.vmallocStart, pfn: 7, size: '4K' as const, prot: PAGE_KERNEL },
    ];
    expect(touchedScopes({ op: 'unmap', root: 0, vpn: dm(3), pages: 1 }, before, 4)).toEqual([{ vpn: dm(0), pages: PAGES['2M'] }]);
    expect(touchedScopes({ op: 'protect', vpn: L.vmallocStart, pages: 1, change: { write: false }, alias: true }, before, 4)).toEqual([
      { vpn: dm(0), pages: PAGES['2M'] },
      { vpn: L.vmallocStart, pages: 1 },
      // cpa_process_alias's high-map alias (linux profile): __START_KERNEL_map + pa.
      { vpn: L.kernelText + 7, pages: 1 },
    ]);
    expect(touchedScopes({ op: 'collapse', root: 0, vpn: dm(PAGES['1G'] + 5), size: '1G' }, before, 4)).toEqual([{ vpn: dm(PAGES['1G']), pages: PAGES['1G'] }]);
    expect(touchedScopes({ op: 'flushAll' }, before, 4)).toEqual([]);
  });

  it('covers every leaf a command changes (the incremental check misses nothing the model does)', () => {
    const model = (): PageTableSystem => {
      const m = createModel(scenario);
      for (const c of scenario.boot) applyCommand(m, c);
      return m;
    };
    let changed = 0;
    for (const commands of fc.sample(commandsArb(scenario, { maxCommands: 60 }), { seed: SEED, numRuns: 40 })) {
      const m = model();
      for (const c of commands) {
        const before = m.abstract().roots[0]!.leaves;
        applyCommand(m, c);
        const after = m.abstract().roots[0]!.leaves;
        // Leaf arrays are sorted by vpn: a merge walk pairs equal leaves; every other leaf changed.
        const diff: Leaf[] = [];
        for (let i = 0, j = 0; i < before.length || j < after.length;) {
          const b = before[i];
          const a = after[j];
          if (b !== undefined && a !== undefined && leafEquals(b, a)) {
            i++;
            j++;
          } else if (a === undefined || (b !== undefined && b.vpn <= a.vpn)) {
            diff.push(b!);
            i++;
          } else {
            diff.push(a);
            j++;
          }
        }
        const scopes = touchedScopes(c, before, 4);
        const inScope = (l: Leaf): boolean => scopes.some((sc) => l.vpn >= sc.vpn && l.vpn + PAGES[l.size] <= sc.vpn + sc.pages);
        for (const l of diff) {
          changed++;
          expect(inScope(l), `${formatCommand(c)} changed ${formatLeaf(l)} outside ${JSON.stringify(scopes)}`).toBe(true);
        }
      }
    }
    expect(changed).toBeGreaterThan(1000);
  });

  it('merges coverage by adding every counter', () => {
    const a = runTrace({ ...builtinTarget(scenario), commands: [{ op: 'translate', root: 0, vpn: dm(1) }] }).coverage;
    const b = runTrace({ ...builtinTarget(scenario), commands: [{ op: 'translate', root: 0, vpn: 5 }, { op: 'flushAll' }] }).coverage;
    const m = mergeCoverage(a, b);
    expect(m.sequences).toBe(2);
    expect(m.commands).toBe(3);
    expect(m.outcomes['translate']).toEqual({ ok: 1, EINVAL: 1 });
    expect(m.fullChecks).toBe(a.fullChecks + b.fullChecks);
    const into = emptyCoverage();
    addCoverage(into, a);
    addCoverage(into, b);
    expect(into).toEqual(m);
  });
});
