/**
 * The fence around a user's module (`--impl`): ptspec's own systems are trusted and run
 * bare, a module's are not. Every input it gets (the setup, each operation's arguments)
 * is a frozen deep copy, so a module that mutates what it is given cannot change the
 * fuzzer's record of the trace (and fails with a TypeError in strict mode, which is a
 * failure of its own that reproduces); every operation must return a Result; and what
 * it throws keeps only the module's own stack frames, not ptspec's.
 */
import { fileURLToPath } from 'node:url';
import type { PageTableSystem, PageTableSystemFactory, SystemSetup } from '../spec/system.ts';

/** A plain-data copy of `v`, frozen all the way down (functions are kept, not copied). */
export function frozenCopy<T>(v: T): T {
  if (typeof v !== 'object' || v === null) return v;
  const copy: Record<string, unknown> | unknown[] = Array.isArray(v) ? v.map(frozenCopy) : {};
  if (!Array.isArray(v)) for (const [k, x] of Object.entries(v)) (copy as Record<string, unknown>)[k] = frozenCopy(x);
  return Object.freeze(copy) as T;
}

/** The repository root: frames in its own directories are ptspec's; so are Node's and any package's. */
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const OWN_FRAME = new RegExp(`\\(?(?:file://)?${ROOT.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?:fuzz|spec|cli|model|impl|checker|io|bin)/|\\(?node:internal/|/node_modules/`);

/**
 * An exception from user code with ptspec's frames removed and the repository's path cut
 * from the module's (a module inside the repository then shows as `test/fixtures/…`).
 * A thrown non-Error (a string) stays as it is: it has no stack.
 */
export function userError(e: unknown): unknown {
  if (!(e instanceof Error) || e.stack === undefined) return e;
  const lines = e.stack.split('\n');
  const frames = lines.filter((l) => /^\s+at /.test(l));
  const head = lines.filter((l) => !/^\s+at /.test(l));
  // tsx tags the modules it loads with a `?tsx-namespace=…` query: not part of the path.
  const kept = frames.filter((l) => !OWN_FRAME.test(l)).map((l) => l.split(`file://${ROOT}`).join('').split(ROOT).join('').replace(/\?tsx-namespace=[\w-]+/, ''));
  e.stack = [...head, ...kept].join('\n');
  return e;
}

/** What a non-Result is, for the message. */
function sayReturned(v: unknown): string {
  if (v instanceof Promise) return 'a Promise (operations are synchronous)';
  if (v === null || v === undefined) return String(v);
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  if (typeof v === 'object') return `an object with keys ${Object.keys(v).join(', ') || '(none)'}`;
  return `a ${typeof v}`;
}

const isResult = (v: unknown): boolean => typeof v === 'object' && v !== null && typeof (v as { ok?: unknown }).ok === 'boolean';

/** `obj`'s methods, each given frozen copies of its arguments and (unless `raw`) held to return a Result. */
function fenced<T extends object>(obj: T, raw: ReadonlySet<PropertyKey>): T {
  return new Proxy(obj, {
    get(target, prop, receiver) {
      const v: unknown = Reflect.get(target, prop, receiver);
      if ((prop === 'isolation' || prop === 'clients') && typeof v === 'object' && v !== null) return fenced(v, raw);
      if (typeof v !== 'function') return v;
      return (...args: unknown[]): unknown => {
        let r: unknown;
        try {
          r = (v as (...a: unknown[]) => unknown).apply(target, args.map(frozenCopy));
        } catch (e) {
          throw userError(e);
        }
        if (raw.has(prop) || isResult(r)) return r;
        const e = new Error(`the impl returned ${sayReturned(r)} from ${String(prop)}, expected a Result {ok, …}`);
        // The message is the whole story: ptspec's stack would only point at this fence.
        e.stack = e.message;
        throw e;
      };
    },
  });
}

/** abstract() returns a state, and takeEvents() what the kernel printed (spec/system.ts), not a Result. */
const NOT_RESULTS: ReadonlySet<PropertyKey> = new Set(['abstract', 'takeEvents']);

/** A user module's factory behind the fence: the setup frozen (one copy per setup), every system fenced. */
export function guardedFactory(factory: PageTableSystemFactory): PageTableSystemFactory {
  const copies = new WeakMap<SystemSetup, SystemSetup>();
  return (setup) => {
    let copy = copies.get(setup);
    if (copy === undefined) copies.set(setup, (copy = frozenCopy(setup)));
    let sys: PageTableSystem;
    try {
      sys = factory(copy);
    } catch (e) {
      throw userError(e);
    }
    // Not an object: nothing to fence, and the checks that follow say what it is instead.
    return typeof sys === 'object' && sys !== null ? fenced(sys, NOT_RESULTS) : sys;
  };
}
