/**
 * The catching of a mutant of impl/mutants.ts (a historical kernel bug class injected into
 * the impl) under a fixed seed: the fuzzer finds a failing sequence, shrinks it, the
 * failure is one of the harness's checks (not a crash), and the same shrunk sequence
 * passes on the unmutated impl, so it is the injected bug that fails. The strict-profile
 * mutants run in mutants-caught.test.ts (npm test); the linux-profile ones, whose
 * campaigns are slower, in mutants-caught-linux.test.ts, and the isolation ones, which
 * need processes, clones and LDTs in a sequence before their bug shows, in
 * mutants-caught-isolation.test.ts (slow suites of .ci/run), the client ones in
 * mutants-caught-clients.test.ts and the memory-hotplug ones in
 * mutants-caught-hotplug.test.ts (npm test).
 */
import { expect } from 'vitest';
import type { MutantName } from '../impl/index.ts';
import { X86_64_LAYOUT_4LEVEL } from '../spec/address.ts';
import type { Command } from '../spec/commands.ts';
import { kernelScenario, ptiBoot, type Scenario } from '../spec/scenario.ts';
import { INIT_MM } from '../spec/state.ts';
import type { Profile } from '../spec/system.ts';
import { runTrace } from '../fuzz/check.ts';
import { builtinTarget } from '../fuzz/defaults.ts';
import { runFuzz } from '../fuzz/property.ts';
import { formatFailure } from '../fuzz/report.ts';
import { hotplugScenario } from './hotplug-scenario.ts';
import { fcParams } from './seed.ts';

/**
 * collapse-without-pse only differs from the impl on a CPU that lacks a page size; without
 * PSE the boot would map 4 GiB with 4K leaves, so that mutant runs on a CPU with PSE but
 * without GB pages, where a 1G collapse must be refused.
 *
 * split-drops-pat only differs when a leaf with the PAT bit set (WT or WP) is split; the
 * kernel scenario boots with none, so that mutant's boot ends with a _set_memory_wt of
 * the first 2M page of the direct map (whole, so nothing splits yet), and every
 * set_direct_map_*, protect or unmap of a low frame then splits it.
 *
 * free-before-flush only differs when a `_noflush` removal empties a table, and the
 * kernel scenario's direct map is all huge leaves; as in the kernel, whose
 * init_mem_mapping maps the ISA range first and so in 4K pages, that mutant's boot leaves
 * the first 2 MiB of the direct map 4K-mapped.
 *
 * collapse-ignores-kernel4k only differs where set_memory_4k marked a whole 2M block and
 * something then collapses it; that mutant's boot ends with set_memory_4k of the second
 * 2M block of the direct map (an address the pool holds), as a kernel does for a range it
 * must keep in 4K pages.
 *
 * The memory-hotplug mutants (HOTPLUG) only differ where memory is removed, so they run on
 * a machine with hotplug space above its RAM (test/hotplug-scenario.ts).
 */
const SCENARIO: Partial<Record<MutantName, () => Scenario>> = {
  'collapse-without-pse': () => kernelScenario({ features: { pse: true, gbpages: false } }),
  'split-drops-pat': () => {
    const s = kernelScenario();
    return { ...s, boot: [...s.boot, { op: 'protect', vpn: X86_64_LAYOUT_4LEVEL.pageOffset, pages: 512, change: { cache: 'WT' }, alias: false }] };
  },
  'collapse-ignores-kernel4k': () => {
    const s = kernelScenario();
    return { ...s, boot: [...s.boot, { op: 'protect', vpn: X86_64_LAYOUT_4LEVEL.pageOffset + 512, pages: 512, change: { kernel4k: true }, alias: false }] };
  },
  'freed-image-hole-in-user-copy': () => {
    const s = kernelScenario();
    const clone = s.isolationBoot![0]!;
    if (clone.op !== 'ptiClone') throw new Error('the kernel scenario\'s isolation boot starts with the entry-text clone');
    // The entry text's 2M block in 4K pages before pti_init clones it, then one page of it
    // freed from init_mm (free_kernel_image_pages' set_memory_np_noalias): a later PMD-level
    // clone of the block must drop it from the user copy too.
    return {
      ...s,
      boot: [...s.boot, { op: 'split', root: INIT_MM, vpn: clone.vpn }],
      isolationBoot: [...s.isolationBoot!, { op: 'unmap', root: INIT_MM, vpn: clone.vpn + 300, pages: 1 }],
    };
  },
  'free-before-flush': () => {
    const s = kernelScenario();
    return { ...s, boot: [...s.boot, { op: 'split', root: INIT_MM, vpn: X86_64_LAYOUT_4LEVEL.pageOffset }] };
  },
  'hot-remove-keeps-direct-map': () => hotplugScenario(),
  'hot-remove-no-flush': () => hotplugScenario(),
};

/**
 * memtype-no-reserve injects a bug in the linux profile's set_memory_uc / set_memory_wc
 * (strict reserves no memory type), and vunmap-keeps-huge-tail one in its vunmap_range
 * (strict splits on unmap by contract), so they are fuzzed under linux, where only a
 * result, postcondition or refinement mismatch fails a run (a broken invariant is a finding).
 */
export const PROFILE: Partial<Record<MutantName, Profile>> = {
  'memtype-no-reserve': 'linux',
  'vunmap-keeps-huge-tail': 'linux',
  // pmd_free_pte_page's flush exists only where a huge vmap meets a kept table: linux.
  'table-freed-before-purge': 'linux',
  // A hole needs init_mm to stop mapping a page the user copy cloned, which strict refuses (K3).
  'freed-image-hole-in-user-copy': 'linux',
};

/**
 * The isolation mutants inject their bug into the isolation capability (processes, KPTI
 * clones, the LDT remap, ASI), so they are fuzzed with it, from the scenario's isolation
 * boot, as campaigns fuzz the built-in impl.
 */
export const ISOLATION: ReadonlySet<MutantName> = new Set<MutantName>([
  'pti-clone-unaligned-advance', 'freed-image-hole-in-user-copy', 'kernel-half-user-bit', 'ldt-old-slot-not-unmapped',
  'ldt-pte-global', 'asi-clone-fixed-pgd-count', 'sensitive-frame-in-restricted-root', 'missing-pgd-sync',
]);

/**
 * The client mutants inject their bug into the clients capability (vmalloc, kmap_local,
 * the mermap, the unmapped pool, apply_to_page_range, the pagewalk), so they are fuzzed
 * with the client operations generated, as campaigns fuzz the built-in impl.
 */
export const CLIENTS: ReadonlySet<MutantName> = new Set<MutantName>([
  'walker-follows-pending-table', 'apply-writes-through-huge-leaf', 'kunmap-out-of-order', 'mermap-free-without-flush',
  'unmapped-pool-no-flush', 'vfree-frees-before-flush', 'gather-frees-without-flush',
]);

/**
 * The memory-hotplug mutants inject their bug into removeMemory, a client operation: fuzzed
 * with the client operations too, on their scenario's hotplug space (SCENARIO).
 */
export const HOTPLUG: ReadonlySet<MutantName> = new Set<MutantName>(['hot-remove-keeps-direct-map', 'hot-remove-no-flush']);

/** The client mutants on a process's teardown (zapPageRange): fuzzed with the isolation capability too. */
const CLIENTS_ON_PROCESSES: ReadonlySet<MutantName> = new Set<MutantName>(['gather-frees-without-flush']);

/**
 * Fuzz the impl with mutant `name` until it fails, and check the failure is the mutant's
 * (vitest assertions); the shrunk sequence that caught it.
 */
export function catchMutant(name: MutantName): readonly Command[] {
  const base = (SCENARIO[name] ?? kernelScenario)();
  const isolated = ISOLATION.has(name) || CLIENTS_ON_PROCESSES.has(name);
  const scenario = isolated ? { ...base, boot: ptiBoot(base) } : base;
  const profile = {
    ...(PROFILE[name] === undefined ? {} : { profile: PROFILE[name] }), ...(isolated ? { isolation: true } : {}), ...(CLIENTS.has(name) || HOTPLUG.has(name) ? { clients: true } : {}),
  };
  const target = { ...builtinTarget(scenario, name), ...profile };
  const r = runFuzz({ ...target, maxCommands: 100, shortFraction: 0.8 }, fcParams({ numRuns: 300 }), 300);
  expect(r.failed, `mutant ${name} survived 300 sequences`).toBe(true);
  const f = r.failure!;
  const report = formatFailure(f, { seed: r.seed, ...(r.path === undefined ? {} : { path: r.path }), commands: r.commands!, scenario: scenario.name, impl: `mutant ${name}` });
  // A sensible check caught it: a result, postcondition, refinement, invariant or table check, not a crash.
  expect(['outcome-mismatch', 'postcondition', 'refinement', 'invariant', 'tables'], report).toContain(f.kind);
  expect(report).toContain(`mutant ${name}`);
  expect(r.commands!.length).toBeLessThanOrEqual(r.unshrunkLength!);
  // The shrunk sequence is the mutant's fault: the real impl passes it.
  const control = runTrace({ ...builtinTarget(scenario), ...profile, commands: r.commands! });
  expect(control.failure, `the unmutated impl fails the shrunk sequence too:\n${report}`).toBeNull();
  return r.commands!;
}
