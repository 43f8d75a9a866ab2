/**
 * How each mutant of impl/mutants.ts is fuzzed so its bug can show: the scenario (some need
 * a boot that sets up what the bug needs), the profile (a bug in a linux-only path is
 * fuzzed under linux) and the capabilities whose operations are generated (isolation,
 * clients). One declaration for the test suites that catch every mutant
 * (test/mutant-catch.ts) and for `ptspec zoo` (fuzz/zoo.ts), so both fuzz the same target.
 */
import type { MutantName } from '../impl/index.ts';
import { X86_64_LAYOUT_4LEVEL } from '../spec/address.ts';
import { kernelScenario, ptiBoot, type Scenario } from '../spec/scenario.ts';
import { INIT_MM } from '../spec/state.ts';
import type { Profile } from '../spec/system.ts';
import type { CommandsArbOptions } from './arbitraries.ts';
import type { TraceSetup } from './campaign-run.ts';
import type { FailureKind } from './check.ts';
import { builtinTarget } from './defaults.ts';
import { hotplugScenario } from './hotplug-scenario.ts';

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
 * a machine with hotplug space above its RAM (fuzz/hotplug-scenario.ts).
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
 * Sequences of up to 100 commands, four in five of them short (at most 12): every mutant
 * shows within a few hundred such sequences, and short ones shrink in few traces.
 */
const GENERATE = { maxCommands: 100, shortFraction: 0.8 } as const;

/**
 * The checks a mutant must be caught by: a result, postcondition, refinement, invariant or
 * table check. An exception, a hang or a checker disagreement is a crash, not a catch.
 */
export const MUTANT_CATCHING_KINDS: readonly FailureKind[] = ['outcome-mismatch', 'postcondition', 'refinement', 'invariant', 'tables'];

/** Traces the shrinker may run on a mutant's failure (a count, so the shrunk trace is the same on any machine). */
export const MUTANT_SHRINK_BUDGET = 300;

export interface MutantSetup {
  /** The scenario as the mutant needs it: its custom boot, and the isolation boot folded in when isolated. */
  readonly scenario: Scenario;
  /** The mutated impl against the model, with the mutant's profile and capabilities. */
  readonly mutated: TraceSetup;
  /** The same without the mutant: a trace that fails here is not the mutant's fault. */
  readonly control: TraceSetup;
  /** How its sequences are generated (the capabilities' operations included). */
  readonly generate: CommandsArbOptions;
}

export function mutantSetup(name: MutantName): MutantSetup {
  const base = (SCENARIO[name] ?? kernelScenario)();
  const isolated = ISOLATION.has(name) || CLIENTS_ON_PROCESSES.has(name);
  const scenario = isolated ? { ...base, boot: ptiBoot(base) } : base;
  const profile = PROFILE[name];
  const clients = CLIENTS.has(name) || HOTPLUG.has(name);
  const capabilities = {
    ...(profile === undefined ? {} : { profile }), ...(isolated ? { isolation: true } : {}), ...(clients ? { clients: true } : {}),
  };
  return {
    scenario,
    mutated: { ...builtinTarget(scenario, name), ...capabilities },
    control: { ...builtinTarget(scenario), ...capabilities },
    generate: { ...GENERATE, ...(isolated ? { isolation: true } : {}), ...(clients ? { clients: true } : {}) },
  };
}
