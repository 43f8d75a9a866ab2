/**
 * A user's own implementation (`ptspec fuzz --impl MODULE`): a module whose default export,
 * or export named `createSystem`, is a `PageTableSystemFactory`, and which may also export
 * `checkTables(system, scope?) => Witness[]`, a checker of its concrete tables. It is
 * loaded and checked once before a campaign starts, so a module that cannot be imported
 * or lacks part of the `PageTableSystem` interface is refused with a message naming what
 * is missing, before any run starts (with a command timeout, in a worker under the
 * watchdog: fuzz/worker-task.ts, the 'trial' task).
 *
 * Modules are loaded through tsx's `tsImport`, so .ts, .mts, .js and .mjs adapters load
 * from anywhere: a plain `import()` of a .ts file outside an ESM package (no package.json
 * with "type": "module", e.g. in /tmp) makes tsx compile it to CommonJS, which Node 20
 * then refuses to require from the ESM graph that is importing it ("in a cycle").
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { tsImport } from 'tsx/esm/api';
import type { PageTableSystem, PageTableSystemFactory, SystemSetup } from '../spec/system.ts';
import type { TableChecker } from './check.ts';
import { guardedFactory } from './guard.ts';

/** Every required method of PageTableSystem (takeEvents is optional); the `satisfies` keeps the list complete as the interface grows. */
const METHODS = {
  map: true, unmap: true, protect: true, setDirectMapInvalid: true, setDirectMapDefault: true,
  split: true, collapse: true, translate: true, access: true, flush: true, flushAll: true,
  flushLocal: true, allocFrames: true, freeFrames: true, abstract: true,
} as const satisfies Record<Exclude<keyof PageTableSystem, 'config' | 'isolation' | 'clients' | 'profile' | 'takeEvents' | 'fork'>, true>;

export const REQUIRED_METHODS: readonly string[] = Object.keys(METHODS);

/**
 * The methods the TLB, paging-structure-cache and frame-lifecycle contracts added
 * (spec/system.ts): a module written before them lacks exactly these, and is told what
 * each stands for rather than only that it is missing.
 */
export const LIFECYCLE_METHODS: Readonly<Record<string, string>> = {
  flushLocal: 'flushLocal(cpu, vpn, pages): flush_tlb_one_kernel on one CPU (spec/contracts/access.ts)',
  allocFrames: 'allocFrames(pfn, count): alloc_pages, free frames become data (spec/contracts/frames.ts)',
  freeFrames: 'freeFrames(pfn, count): __free_pages, data frames become free (spec/contracts/frames.ts)',
};

export class UserImplError extends Error {}

/** What a campaign takes from a user module. */
export interface UserAdapter {
  readonly factory: PageTableSystemFactory;
  /** The module's own concrete-table checker, or null: then its tables get no check of their own. */
  readonly checkTables: TableChecker | null;
}

/** file: URL of a module path given on the command line (relative to the working directory). */
export function moduleUrl(path: string): string {
  return pathToFileURL(resolve(path)).href;
}

/** A value as a sentence fragment, for saying what a module exports instead of a function. */
function sayValue(v: unknown): string {
  if (v === undefined) return 'missing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (typeof v === 'object') {
    const keys = Object.keys(v);
    return keys.length === 0 ? 'an empty object' : `an object with keys ${keys.join(', ')}`;
  }
  return `a ${typeof v}`;
}

type Exports = Record<string, unknown>;

/**
 * The export object that holds the adapter's exports. A module tsx compiled to CommonJS
 * (a .ts or .js file outside an ESM package) comes back with its `exports` object as the
 * namespace's default, holding the module's own `default` and named exports.
 */
function adapterExports(ns: Exports): Exports {
  const d = ns['default'];
  const compiledToCjs = typeof d === 'object' && d !== null && ('default' in d || 'createSystem' in d || (d as Exports)['__esModule'] === true);
  return compiledToCjs ? (d as Exports) : ns;
}

/** Import the module and return its factory and optional table checker; throws UserImplError saying what is wrong. */
export async function loadAdapter(url: string): Promise<UserAdapter> {
  let mod: Exports;
  try {
    mod = adapterExports((await tsImport(url, import.meta.url)) as Exports);
  } catch (e) {
    throw new UserImplError(`cannot load ${url}: ${(e as Error).message.split('\n')[0]}`);
  }
  const factory = typeof mod['default'] === 'function' ? mod['default'] : mod['createSystem'];
  if (typeof factory !== 'function') {
    const named = Object.keys(mod).filter((k) => k !== 'default' && k !== '__esModule');
    const found = [
      `default export is ${sayValue(mod['default'])}`,
      ...('createSystem' in mod ? [`createSystem is ${sayValue(mod['createSystem'])}`] : named.length > 0 ? [`named exports ${named.join(', ')}`] : []),
    ];
    throw new UserImplError(`${url}: ${found.join(', ')}; expected a function (setup) => PageTableSystem as the default export, or a named export createSystem`);
  }
  const checker = mod['checkTables'];
  if (checker !== undefined && typeof checker !== 'function') {
    throw new UserImplError(`${url}: checkTables is ${sayValue(checker)}; expected a function (system, scope?) => Witness[] (or no such export)`);
  }
  return { factory: factory as PageTableSystemFactory, checkTables: checker === undefined ? null : (checker as TableChecker) };
}

/** What is missing from a system the factory built, as sentences; empty when complete. */
export function missingParts(sys: unknown): string[] {
  if (typeof sys !== 'object' || sys === null) return [`the factory returned ${sys === null ? 'null' : typeof sys}, not a PageTableSystem object`];
  const s = sys as Record<string, unknown>;
  const problems: string[] = [];
  const missing = REQUIRED_METHODS.filter((m) => typeof s[m] !== 'function');
  for (const m of missing) problems.push(s[m] === undefined ? `method ${m}() is missing` : `${m} is a ${typeof s[m]}, not a method`);
  if (typeof s['config'] !== 'object' || s['config'] === null) problems.push('property config (the SystemConfig it was built with) is missing');
  return problems;
}

/**
 * Load a user module (or take `load`'s import of it), build one system from `setup` and
 * check that it implements every operation. Returns the factory for the campaign to use.
 */
export async function loadUserImpl(path: string, setup: SystemSetup, load: (url: string) => Promise<UserAdapter> = loadAdapter): Promise<PageTableSystemFactory> {
  if (!existsSync(resolve(path))) throw new UserImplError(`--impl ${path}: no such file`);
  const { factory } = await load(moduleUrl(path));
  let sys: unknown;
  try {
    // Fenced as in the campaign, so a factory that mutates its setup is refused here already.
    sys = guardedFactory(factory)(setup);
  } catch (e) {
    throw new UserImplError(`--impl ${path}: the factory threw while building a system: ${(e as Error).message}`);
  }
  const problems = missingParts(sys);
  if (problems.length > 0) {
    const s = sys as Record<string, unknown> | null;
    const added = Object.keys(LIFECYCLE_METHODS).filter((m) => typeof s?.[m] !== 'function');
    const hint = added.length === 0 ? '' : ` (the frame-lifecycle and local-flush contracts need ${added.map((m) => LIFECYCLE_METHODS[m]).join('; ')})`;
    throw new UserImplError(`--impl ${path} does not implement PageTableSystem: ${problems.join('; ')}${hint}`);
  }
  return factory;
}
