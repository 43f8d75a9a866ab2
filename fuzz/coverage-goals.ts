/**
 * What a campaign could exercise, so its summary can say plainly what it never did: each
 * operation's possible outcomes by the shared semantics (argument errors, the state
 * errors of its contract, policy, table memory) under the campaign's profile and on its
 * scenarios (memory hotplug succeeds only where there is hotplug space), the access
 * results, the leaf sizes the scenario's CPU supports, the scenario's regions, and the
 * TLB, cache and obligation rules the profile can reach (fuzz/coverage-rules.ts).
 */
import * as t from 'io-ts';
import type { PageSize } from '../spec/address.ts';
import type { Op } from '../spec/commands.ts';
import type { Errno } from '../spec/errors.ts';
import type { Profile } from '../spec/system.ts';
import { POSSIBLE_OUTCOMES } from '../spec/contracts/outcome.ts';
import { OPERATIONS, OPS, type Capability } from '../spec/operations.ts';
import { PageSizeC, strictObject } from '../io/trace.ts';
import type { Scenario } from '../spec/scenario.ts';
import { hotplugBlocks } from './clients.ts';
import { AXES, possibleAxes, type Axis, type Coverage } from './coverage.ts';
import { reachableRules } from './coverage-rules.ts';

export const ACCESS_RESULTS = ['tlb', 'walk', 'not-present', 'protection'] as const;

/** The level whose entry maps a leaf of each size, for readers who think in levels. */
export const LEVEL_OF_SIZE: Readonly<Record<PageSize, string>> = { '4K': 'pte', '2M': 'pmd', '1G': 'pud' };

/**
 * The outcomes of the operation table that one profile's contracts never give, so a
 * campaign under it is not told it missed them:
 *   strict  protect's EFAULT (CPA's walk stopping at a zero pte) and EBUSY (a memtype
 *           reservation) are the kernel's, spec/contracts/linux.ts;
 *   linux   no operation refuses with EPERM ("nothing in CPA refuses a request for a
 *           security reason"; __free_pages checks nothing), protect has no ENOENT (a
 *           hole is skipped or EFAULT), set_direct_map_* have no ENOENT / EEXIST (both
 *           idempotent), and vunmap_range neither splits nor needs a table (no ENOMEM);
 *           of the clients (spec/contracts/clients.ts), vfree ignores the direct-map steps'
 *           errors (no ENOMEM), x86-64's kmap_local is page_address (kmapLocal only
 *           EINVAL, kunmapLocal no ENOENT), and memory hotplug's removal allocates nothing
 *           (spec/contracts/hotplug.ts: no ENOMEM).
 */
export const UNREACHABLE_OUTCOMES: { readonly [P in Profile]: Readonly<Partial<Record<Op, readonly Errno[]>>> } = {
  strict: { protect: ['EFAULT', 'EBUSY'] },
  linux: {
    map: ['EPERM'], unmap: ['ENOMEM', 'EPERM'], protect: ['EPERM', 'ENOENT'], setDirectMapInvalid: ['ENOENT', 'EPERM'],
    setDirectMapDefault: ['EEXIST', 'EPERM'], freeFrames: ['EPERM'], allocFrames: ['EPERM', 'ENOMEM'],
    ptiClone: ['EPERM'], asiMap: ['EPERM'], mapUser: ['EPERM'], setLdt: ['EPERM'],
    vmalloc: ['EPERM'], vfree: ['EPERM', 'ENOMEM'], kmapLocal: ['EEXIST', 'EBUSY', 'EPERM', 'ENOMEM'], kunmapLocal: ['ENOENT'],
    mermapGet: ['EPERM'], allocUnmapped: ['EPERM'], applyToPageRange: ['EPERM'], addMemory: ['EPERM'], removeMemory: ['EPERM', 'ENOMEM'],
  },
};

/**
 * Each operation's outcomes that a campaign under `profile` can reach, in the table's
 * order; with no profile known (a report that does not say), every outcome of the table.
 * Only the operations of the capabilities given (the target's: a module may offer neither
 * isolation nor the clients); every capability when none is given.
 */
export function possibleOutcomes(profile?: Profile, capabilities?: ReadonlySet<Capability>): [string, readonly ('ok' | Errno)[]][] {
  const offered = (op: Op): boolean => capabilities === undefined || capabilities.has(OPERATIONS[op].capability);
  return Object.entries(POSSIBLE_OUTCOMES).filter(([op]) => offered(op as Op)).map(([op, outs]) => {
    const never = profile === undefined ? [] : UNREACHABLE_OUTCOMES[profile][op as Op] ?? [];
    return [op, outs.filter((o) => o === 'ok' || !never.includes(o))];
  });
}

export interface Gaps {
  /** `op → outcome` pairs never seen. */
  readonly outcomes: readonly string[];
  readonly access: readonly string[];
  readonly pageSizes: readonly PageSize[];
  readonly regions: readonly string[];
  /** Invariants of the suite never checked. */
  readonly invariants: readonly string[];
  /** Scenario axes (AXES) the campaign's scenarios could exercise and no sequence did. */
  readonly axes: readonly string[];
  /** TLB, cache and obligation rules (fuzz/coverage-rules.ts) the profile can reach and no step met. */
  readonly rules: readonly string[];
}

export const GapsC = strictObject('what the campaign never exercised', {
  outcomes: t.readonlyArray(t.string), access: t.readonlyArray(t.string), pageSizes: t.readonlyArray(PageSizeC),
  regions: t.readonlyArray(t.string), invariants: t.readonlyArray(t.string), axes: t.readonlyArray(t.string),
  rules: t.readonlyArray(t.string),
}) satisfies t.Type<Gaps, unknown, unknown>;

/** A campaign's scenarios: one, or a matrix's (fuzz/matrix.ts). */
export type Scenarios = Scenario | readonly Scenario[];

const listOf = (s: Scenarios): readonly Scenario[] => ('config' in s ? [s as Scenario] : (s as readonly Scenario[]));

/** The leaf sizes some CPU of the scenarios supports. */
export function supportedSizes(scenarios: Scenarios): PageSize[] {
  const list = listOf(scenarios);
  return (['4K', '2M', '1G'] as const).filter((z) => z === '4K' || list.some((s) => (z === '2M' ? s.config.features.pse : s.config.features.gbpages)));
}

/** The names of the scenarios' regions, each once. */
export function regionNames(scenarios: Scenarios): string[] {
  return [...new Set(listOf(scenarios).flatMap((s) => s.regions.map((r) => r.name)))];
}

/** The axes the scenarios can exercise, in AXES' order. */
export function campaignAxes(scenarios: Scenarios): Axis[] {
  const possible = new Set(listOf(scenarios).flatMap((s) => possibleAxes(s.config)));
  return AXES.filter((a) => possible.has(a));
}

/**
 * The capabilities whose operations the campaign ran (the core ones always): a target
 * without a capability (a module that does not offer it) never generates its operations,
 * and its report leaves them out.
 */
export function capabilitiesFuzzed(cov: Coverage): ReadonlySet<Capability> {
  const ran = OPS.filter((op) => Object.values(cov.outcomes[op] ?? {}).some((k) => k > 0)).map((op) => OPERATIONS[op].capability);
  return new Set<Capability>(['core', ...ran]);
}

/**
 * The outcomes of memory hotplug that need hotplug space (a whole memory block of absent
 * frames, fuzz/clients.ts hotplugBlocks): without it nothing can be added, so nothing
 * removed, and only the argument and state errors are left (spec/contracts/hotplug.ts).
 */
const NEED_HOTPLUG_SPACE: readonly string[] = ['addMemory→ok', 'addMemory→EPERM', 'addMemory→ENOMEM', 'removeMemory→ok', 'removeMemory→EBUSY', 'removeMemory→EPERM', 'removeMemory→ENOMEM'];

/** What the campaign never exercised of what it could have under its profile (with none given, under any profile). */
export function coverageGaps(cov: Coverage, scenarios: Scenarios, invariantIds: readonly string[], profile?: Profile): Gaps {
  const outcomes: string[] = [];
  const hotplug = listOf(scenarios).some((s) => hotplugBlocks(s).length > 0);
  for (const [op, possible] of possibleOutcomes(profile, capabilitiesFuzzed(cov))) {
    for (const o of possible) if ((cov.outcomes[op]?.[o] ?? 0) === 0 && (hotplug || !NEED_HOTPLUG_SPACE.includes(`${op}→${o}`))) outcomes.push(`${op}→${o}`);
  }
  return {
    outcomes,
    access: ACCESS_RESULTS.filter((a) => (cov.access[a] ?? 0) === 0),
    pageSizes: supportedSizes(scenarios).filter((s) => cov.pageSizes[s] === 0),
    regions: regionNames(scenarios).filter((n) => (cov.regions[n] ?? 0) === 0),
    invariants: invariantIds.filter((id) => (cov.invariants[id] ?? 0) === 0),
    axes: campaignAxes(scenarios).filter((a) => (cov.axes[a] ?? 0) === 0),
    rules: reachableRules(profile).map((r) => r.id).filter((id) => (cov.rules[id] ?? 0) === 0),
  };
}

/** Exercised / possible op→outcome pairs under the profile, for the progress line. */
export function outcomePairs(cov: Coverage, profile?: Profile): { readonly seen: number; readonly possible: number } {
  let seen = 0;
  let possible = 0;
  for (const [op, outs] of possibleOutcomes(profile, capabilitiesFuzzed(cov))) {
    possible += outs.length;
    for (const o of outs) if ((cov.outcomes[op]?.[o] ?? 0) > 0) seen++;
  }
  return { seen, possible };
}
