/**
 * A user's own implementation (`ptspec fuzz --impl MODULE`): a module whose default export,
 * or export named `createSystem`, is a `PageTableSystemFactory`. It is loaded and checked
 * once before a campaign starts, so a module that cannot be imported or lacks part of the
 * `PageTableSystem` interface is refused with a message naming what is missing, before
 * any worker starts.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { PageTableSystem, PageTableSystemFactory, SystemSetup } from '../spec/system.ts';

/** Every method of PageTableSystem; the `satisfies` keeps the list complete as the interface grows. */
const METHODS = {
  map: true, unmap: true, protect: true, setDirectMapInvalid: true, setDirectMapDefault: true,
  split: true, collapse: true, translate: true, access: true, flush: true, flushAll: true, abstract: true,
} as const satisfies Record<Exclude<keyof PageTableSystem, 'config' | 'isolation'>, true>;

export const REQUIRED_METHODS: readonly string[] = Object.keys(METHODS);

export class UserImplError extends Error {}

/** file: URL of a module path given on the command line (relative to the working directory). */
export function moduleUrl(path: string): string {
  return pathToFileURL(resolve(path)).href;
}

/** Import the module and return its factory; throws UserImplError saying what is wrong. */
export async function loadFactory(url: string): Promise<PageTableSystemFactory> {
  let mod: Record<string, unknown>;
  try {
    mod = (await import(url)) as Record<string, unknown>;
  } catch (e) {
    throw new UserImplError(`cannot load ${url}: ${(e as Error).message.split('\n')[0]}`);
  }
  const factory = typeof mod['default'] === 'function' ? mod['default'] : mod['createSystem'];
  if (typeof factory !== 'function') {
    const exported = Object.keys(mod).join(', ') || 'nothing';
    throw new UserImplError(`${url} must export a PageTableSystemFactory as its default export or as \`createSystem\` (it exports ${exported})`);
  }
  return factory as PageTableSystemFactory;
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
 * Load a user module, build one system from `setup` and check that it implements every
 * operation. Returns the factory for the campaign to use.
 */
export async function loadUserImpl(path: string, setup: SystemSetup): Promise<PageTableSystemFactory> {
  if (!existsSync(resolve(path))) throw new UserImplError(`--impl ${path}: no such file`);
  const factory = await loadFactory(moduleUrl(path));
  let sys: unknown;
  try {
    sys = factory(setup);
  } catch (e) {
    throw new UserImplError(`--impl ${path}: the factory threw while building a system: ${(e as Error).message}`);
  }
  const problems = missingParts(sys);
  if (problems.length > 0) {
    throw new UserImplError(`--impl ${path} does not implement PageTableSystem: ${problems.join('; ')}`);
  }
  return factory;
}
