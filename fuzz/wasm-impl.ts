/**
 * A C implementation compiled to WebAssembly (`ptspec fuzz --impl lib.wasm`) as a
 * PageTableSystemFactory. The module is compiled and checked once (its exports, its ABI
 * version, the operations and profiles it supports: c/ptspec.h); each system the factory
 * builds gets an instance of its own, so a trap in one trace cannot corrupt another's
 * memory, and its forks (ptspec_fork) live in that instance beside it.
 *
 * Every argument is checked on this side with the spec's trusted validators before the
 * call, exactly as model and impl share them, so C sees no EINVAL case of the contracts;
 * a negative errno comes back as the PtError fuzz/c-abi.ts derives from the operation.
 * A trap (unreachable, an out-of-bounds access) is an exception naming the export that
 * trapped, with the module's stack: the checker reports it as a failure with its trace,
 * and the instance is dead after it.
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { PtError } from '../spec/errors.ts';
import type { AbstractState, SystemConfig } from '../spec/state.ts';
import type { PageTableSystem, PageTableSystemFactory, Profile, SystemSetup } from '../spec/system.ts';
import {
  ACCESS_RESULT_SIZE, FRAME_RUN_SIZE, SETUP_SIZE, PTSPEC_ABI_VERSION, REQUIRED_OPS, TRANSLATION_SIZE, decodeAbstract, decodeSupported, encodeSetup,
  errorOf, type CoreOp, type Supported,
} from './c-abi.ts';
import { CSystem, type CAnswer, type CArg } from './c-system.ts';
import { UserImplError } from './user-impl.ts';

/** The C name of each operation's export. */
const EXPORT_OF: { readonly [K in CoreOp]: string } = {
  map: 'ptspec_map', unmap: 'ptspec_unmap', protect: 'ptspec_protect', setDirectMapInvalid: 'ptspec_set_direct_map_invalid',
  setDirectMapDefault: 'ptspec_set_direct_map_default', split: 'ptspec_split', collapse: 'ptspec_collapse', translate: 'ptspec_translate',
  access: 'ptspec_access', flush: 'ptspec_flush', flushAll: 'ptspec_flush_all', flushLocal: 'ptspec_flush_local',
  allocFrames: 'ptspec_alloc_frames', freeFrames: 'ptspec_free_frames',
};

/** What every module exports besides its operations. */
const BASE_EXPORTS = [
  'ptspec_abi_version', 'ptspec_supported_ops', 'ptspec_create', 'ptspec_destroy', 'ptspec_fork', 'ptspec_last_refused', 'ptspec_abstract',
  'ptspec_alloc', 'ptspec_free',
] as const;

type Fn = (...args: (number | bigint)[]) => number | bigint;
type Exports = { readonly [name: string]: Fn } & { readonly memory: { readonly buffer: ArrayBuffer } };

/** A compiled module (WebAssembly.Module). */
interface CompiledModule {
  readonly compiled: unique symbol;
}

/**
 * The part of the WebAssembly JavaScript API used here: Node has it, but the project's
 * libs (ES2023, no DOM) do not declare it.
 */
interface WebAssemblyApi {
  compile(bytes: Uint8Array): Promise<CompiledModule>;
  readonly Module: {
    imports(m: CompiledModule): readonly { readonly module: string; readonly name: string }[];
    exports(m: CompiledModule): readonly { readonly name: string; readonly kind: string }[];
  };
  readonly Instance: new (m: CompiledModule, imports: object) => { readonly exports: unknown };
  readonly RuntimeError: new () => Error;
}
const WebAssembly = (globalThis as unknown as { readonly WebAssembly: WebAssemblyApi }).WebAssembly;

/** A checked module: compiled, with what it supports. */
export interface WasmModule {
  /** The file, for messages. */
  readonly file: string;
  readonly module: CompiledModule;
  readonly supported: Supported;
}

/** A module ptspec refuses: the message names the file and the problem. */
export class WasmModuleError extends UserImplError {}

/** The exports of a fresh instance (no imports: the interface needs none). */
function instantiate(m: CompiledModule): Exports {
  return new WebAssembly.Instance(m, {}).exports as Exports;
}

/** Compile `bytes` and check its interface; `file` names it in every message. */
export async function checkWasm(file: string, bytes: Uint8Array): Promise<WasmModule> {
  const refuse = (problem: string): never => {
    throw new WasmModuleError(`--impl ${file}: ${problem}`);
  };
  let module: CompiledModule;
  try {
    module = await WebAssembly.compile(bytes);
  } catch (e) {
    return refuse(`not a WebAssembly module (${(e as Error).message})`);
  }
  const imports = WebAssembly.Module.imports(module);
  if (imports.length > 0) refuse(`imports ${imports.map((i) => `${i.module}.${i.name}`).join(', ')}; a module of c/ptspec.h must need no imports (build with -nostdlib)`);
  const kinds = new Map(WebAssembly.Module.exports(module).map((e) => [e.name, e.kind]));
  if (kinds.get('memory') !== 'memory') refuse('exports no memory named "memory"');
  const lacking = BASE_EXPORTS.filter((name) => kinds.get(name) !== 'function');
  if (lacking.length > 0) refuse(`does not export ${lacking.join(', ')} (c/ptspec.h)`);
  const x = instantiate(module);
  const version = Number(x['ptspec_abi_version']!());
  if (version !== PTSPEC_ABI_VERSION) refuse(`ptspec_abi_version() is ${version}, but this ptspec speaks ABI version ${PTSPEC_ABI_VERSION} (c/ptspec.h)`);
  const supported = decodeSupported(BigInt.asUintN(64, BigInt(x['ptspec_supported_ops']!())));
  const missing = REQUIRED_OPS.filter((op) => !supported.ops.has(op));
  if (missing.length > 0) refuse(`ptspec_supported_ops() lacks ${missing.map((op) => `PTSPEC_OP_${EXPORT_OF[op].slice(7).toUpperCase()}`).join(', ')}, which every implementation needs`);
  if (supported.profiles.size === 0) refuse('ptspec_supported_ops() names no profile (PTSPEC_SUPPORTS_STRICT or PTSPEC_SUPPORTS_LINUX)');
  const unexported = [...supported.ops].filter((op) => kinds.get(EXPORT_OF[op]) !== 'function');
  if (unexported.length > 0) refuse(`supports ${unexported.join(', ')} but does not export ${unexported.map((op) => EXPORT_OF[op]).join(', ')}`);
  return { file, module, supported };
}

/** Read and check the module at a file: URL or path. */
export async function loadWasm(location: string): Promise<WasmModule> {
  const file = location.startsWith('file:') ? fileURLToPath(location) : location;
  let bytes: Uint8Array;
  try {
    bytes = await readFile(file);
  } catch (e) {
    throw new WasmModuleError(`--impl ${file}: cannot read it: ${(e as Error).message}`);
  }
  return checkWasm(file, bytes);
}

/** Whether `--impl` names a wasm module (by its extension) rather than a TypeScript or JavaScript one. */
export const isWasmPath = (path: string): boolean => /\.wasm$/i.test(path);

/** A trap inside the module, as an exception: the export that trapped and the module's own stack. */
class WasmTrap extends Error {
  constructor(file: string, name: string, e: Error) {
    super(`${file}: ${name} trapped: ${e.message}`, { cause: e });
    this.name = 'WasmTrap';
    const frames = (e.stack ?? '').split('\n').filter((l) => /^\s+at /.test(l));
    this.stack = [`${this.name}: ${this.message}`, ...frames].join('\n');
  }
}

/**
 * One instance and what its systems share: the exports, a scratch area for translate's
 * and access's results, and the abstraction buffer (grown when a state needs more).
 */
class Instance {
  private readonly x: Exports;
  private dead: string | null = null;
  readonly out: number;
  private buf = 0;
  private bufSize = 0;

  constructor(readonly m: WasmModule) {
    this.x = instantiate(m.module);
    this.out = this.alloc(Math.max(TRANSLATION_SIZE, ACCESS_RESULT_SIZE));
  }

  /** Call export `name`; a trap kills the instance (its memory may be half-written). */
  call(name: string, ...args: (number | bigint)[]): number | bigint {
    if (this.dead !== null) throw new Error(`${this.m.file}: the instance is unusable since ${this.dead} trapped`);
    try {
      return this.x[name]!(...args);
    } catch (e) {
      // A trap, or the module's own stack overflowing (a RangeError, as JavaScript's does).
      if (!(e instanceof WebAssembly.RuntimeError) && !(e instanceof RangeError)) throw e;
      this.dead = name;
      throw new WasmTrap(this.m.file, name, e);
    }
  }

  get alive(): boolean {
    return this.dead === null;
  }

  alloc(size: number): number {
    const p = Number(this.call('ptspec_alloc', size)) >>> 0;
    if (p === 0) throw new Error(`${this.m.file}: ptspec_alloc(${size}) returned NULL`);
    return p;
  }

  /** A copy of `n` bytes of the module's memory at `at` (the memory may grow, detaching views, on the next call). */
  read(at: number, n: number): Uint8Array {
    return new Uint8Array(this.x.memory.buffer, at, n).slice();
  }

  write(at: number, bytes: Uint8Array): void {
    new Uint8Array(this.x.memory.buffer, at, bytes.length).set(bytes);
  }

  /** The abstraction buffer of system `sys`: asked once, and again with a buffer as large as it said it needs. */
  abstract(sys: number): Uint8Array {
    for (;;) {
      const need = Number(this.call('ptspec_abstract', sys, this.buf, BigInt(this.bufSize)));
      if (need <= this.bufSize) return this.read(this.buf, need);
      if (this.buf !== 0) this.call('ptspec_free', this.buf);
      this.bufSize = Math.max(need, 2 * this.bufSize, 4096);
      this.buf = this.alloc(this.bufSize);
    }
  }
}

const NO_PAYLOAD = new Uint8Array(0);

/** Forks live in their instance's memory: one no one holds any more is destroyed there. */
const released = new FinalizationRegistry<{ readonly inst: Instance; readonly sys: number }>(({ inst, sys }) => {
  if (inst.alive) inst.call('ptspec_destroy', sys);
});

/** One C system behind the PageTableSystem interface (fuzz/c-system.ts), its calls the module's exports. */
class WasmSystem extends CSystem {
  readonly profile: Profile;

  constructor(
    readonly config: SystemConfig,
    profile: Profile,
    private readonly inst: Instance,
    private readonly sys: number,
  ) {
    super();
    this.profile = profile;
    released.register(this, { inst, sys });
  }

  /** The export called with the system first, then the arguments (i64 as BigInt), then the result struct's place when there is one. */
  protected call(op: CoreOp, args: readonly CArg[], out: number): CAnswer {
    if (!this.inst.m.supported.ops.has(op)) throw new Error(`${this.inst.m.file} does not implement ${op} (ptspec_supported_ops), yet it was called`);
    const values = args.map((a) => ('u64' in a ? BigInt(a.u64) : a.u32));
    const result = Number(this.inst.call(EXPORT_OF[op], this.sys, ...values, ...(out > 0 ? [this.inst.out] : [])));
    return { result, payload: result === 0 && out > 0 ? this.inst.read(this.inst.out, out) : NO_PAYLOAD };
  }

  protected failure(op: CoreOp, result: number): PtError {
    return errorOf(op, result, () => Number(this.inst.call('ptspec_last_refused', this.sys)) >>> 0);
  }

  abstract(): AbstractState {
    return decodeAbstract(this.inst.abstract(this.sys), this.config);
  }

  /**
   * ptspec_fork's copy. Its NULL ("boot afresh") cannot be said through
   * PageTableSystem.fork, which a system either has or not: it is an Error here (the
   * campaigns boot a module's systems afresh for every trace and do not fork them).
   */
  fork(): PageTableSystem {
    const copy = Number(this.inst.call('ptspec_fork', this.sys)) >>> 0;
    if (copy === 0) throw new Error(`${this.inst.m.file}: ptspec_fork returned NULL`);
    return new WasmSystem(this.config, this.profile, this.inst, copy);
  }
}

/**
 * The factory of a checked module. A setup asking for a profile the module does not
 * follow is an Error (the campaign refuses such a run before it starts).
 */
export function wasmFactory(m: WasmModule): PageTableSystemFactory {
  return (setup: SystemSetup): PageTableSystem => {
    const profile = setup.profile ?? 'strict';
    if (!m.supported.profiles.has(profile)) throw new Error(`${m.file} does not follow the ${profile} profile (ptspec_supported_ops lacks PTSPEC_SUPPORTS_${profile.toUpperCase()})`);
    const inst = new Instance(m);
    const at = inst.alloc(SETUP_SIZE + FRAME_RUN_SIZE * setup.frames.length);
    inst.write(at, encodeSetup(setup, at));
    const sys = Number(inst.call('ptspec_create', at)) >>> 0;
    inst.call('ptspec_free', at);
    if (sys === 0) throw new Error(`${m.file}: ptspec_create returned NULL for this setup`);
    return new WasmSystem(setup.config, profile, inst, sys);
  };
}
