/**
 * The TypeScript side of the C interface (c/ptspec.h, ABI version 1) and of its
 * abstraction buffer (c/ABSTRACT.md): the codes of the spec's vocabulary both ways, a
 * SystemSetup as `struct ptspec_setup` bytes, translate's and access's result structs, the
 * error a negative errno stands for, and the abstraction buffer decoded into an
 * AbstractState in canonical form. Pure functions over bytes, so an adapter (the wasm one,
 * fuzz/wasm-impl.ts; a native process later) only moves bytes in and out.
 *
 * A C implementation may list its leaves, frame runs, cache entries and obligations in
 * the order its walk finds them: the decoder sorts and merges them as spec/state.ts's
 * canonical form asks, so the comparison with the model sees what they mean. A malformed
 * buffer is an AbiError naming the byte offset and the field.
 */
import type { Level, PageSize } from '../spec/address.ts';
import { POLICY_ARG, STRICT_POLICY, policyError, type MutatingOp } from '../spec/contracts/outcome.ts';
import type { Errno, PtError } from '../spec/errors.ts';
import {
  CACHE_MODES, CACHED_TABLE_STATES, FRAME_USES, sameFrameFacts,
  type AbstractRoot, type AbstractState, type FlushObligation, type FrameRun, type Leaf, type Prot, type RootKind, type SystemConfig,
  type TlbEntry, type WalkCacheEntry,
} from '../spec/state.ts';
import type { AccessKind, AccessMode, AccessOutcome, Profile, ProtChange, ProtectOptions, SystemSetup, Translation } from '../spec/system.ts';
import { addFlushObligation, compareTlbEntries } from '../model/tlb.ts';
import { compareWalkCacheEntries } from '../model/walkcache.ts';

export const PTSPEC_ABI_VERSION = 1;

/** The operations of the C interface: the core operations of spec/system.ts PageTableSystem. */
export type CoreOp =
  | 'map' | 'unmap' | 'protect' | 'setDirectMapInvalid' | 'setDirectMapDefault' | 'split' | 'collapse'
  | 'translate' | 'access' | 'flush' | 'flushAll' | 'flushLocal' | 'allocFrames' | 'freeFrames';

/** enum ptspec_op: each operation's bit in ptspec_supported_ops(). */
export const OP_CODES: { readonly [K in CoreOp]: number } = {
  map: 0, unmap: 1, protect: 2, setDirectMapInvalid: 3, setDirectMapDefault: 4, split: 5, collapse: 6,
  translate: 7, access: 8, flush: 9, flushAll: 10, flushLocal: 11, allocFrames: 12, freeFrames: 13,
};
const CORE_OPS = Object.keys(OP_CODES) as CoreOp[];
/** What every implementation must offer: the scenarios boot with map, and the checks translate. */
export const REQUIRED_OPS: readonly CoreOp[] = ['map', 'translate'];

/** PTSPEC_SUPPORTS_*: the profiles, above the operation bits. */
const PROFILE_BITS: { readonly [P in Profile]: bigint } = { strict: 1n << 48n, linux: 1n << 49n };

/** What ptspec_supported_ops() says: the operations and the profiles. */
export interface Supported {
  readonly ops: ReadonlySet<CoreOp>;
  readonly profiles: ReadonlySet<Profile>;
}

export function decodeSupported(mask: bigint): Supported {
  const has = (bit: bigint): boolean => (mask & bit) !== 0n;
  return {
    ops: new Set(CORE_OPS.filter((op) => has(1n << BigInt(OP_CODES[op])))),
    profiles: new Set((Object.keys(PROFILE_BITS) as Profile[]).filter((p) => has(PROFILE_BITS[p]))),
  };
}

// ---- enums, in their C order ----

/** enum ptspec_page_size. */
const PAGE_SIZE_CODES: readonly PageSize[] = ['4K', '2M', '1G'];
/** enum ptspec_profile. */
const PROFILE_CODES: readonly Profile[] = ['strict', 'linux'];
/** RootKind order (spec/state.ts). */
const ROOT_KINDS: readonly RootKind[] = ['kernel', 'process-kernel', 'process-user', 'asi', 'kernel-user', 'asi-global'];
/** enum ptspec_access_kind and enum ptspec_access_mode. */
const ACCESS_KIND_CODES: readonly AccessKind[] = ['r', 'w', 'x'];
const ACCESS_MODE_CODES: readonly AccessMode[] = ['kernel', 'user'];
/** Flush obligations' reasons (c/ABSTRACT.md). */
const REASON_CODES: readonly string[] = ['unmap', 'setDirectMapInvalid', 'setDirectMapDefault'];
/** The memtype field of a frame run's flags: 0 none (WB). */
const MEMTYPE_CODES: readonly (FrameRun['memtype'])[] = [undefined, 'WC', 'UC-'];

const code = <T>(codes: readonly T[], value: T): number => codes.indexOf(value);

export function pageSizeCode(size: PageSize): number {
  return code(PAGE_SIZE_CODES, size);
}
export function accessKindCode(kind: AccessKind): number {
  return code(ACCESS_KIND_CODES, kind);
}
export function accessModeCode(mode: AccessMode): number {
  return code(ACCESS_MODE_CODES, mode);
}

// ---- protections ----

const PROT = { write: 1 << 0, user: 1 << 1, execKernel: 1 << 2, execUser: 1 << 3, global: 1 << 4, kernel4k: 1 << 5 } as const;
const PROT_CACHE_SHIFT = 8;
const PROT_KNOWN = 0x3f | (7 << PROT_CACHE_SHIFT);

/** A Prot packed as PTSPEC_PROT_*. */
export function encodeProt(p: Prot): number {
  let bits = code(CACHE_MODES, p.cache) << PROT_CACHE_SHIFT;
  for (const k of ['write', 'user', 'execKernel', 'execUser', 'global', 'kernel4k'] as const) if (p[k] === true) bits |= PROT[k];
  return bits;
}

/** The Prot of PTSPEC_PROT_* bits (kernel4k present only when set, as the spec's prots have it); a string says what is wrong. */
export function decodeProt(bits: number): Prot | string {
  if ((bits & ~PROT_KNOWN) !== 0) return `unknown bits 0x${(bits & ~PROT_KNOWN).toString(16)}`;
  const cache = CACHE_MODES[(bits >> PROT_CACHE_SHIFT) & 7];
  if (cache === undefined) return `unknown cache mode ${(bits >> PROT_CACHE_SHIFT) & 7}`;
  const prot: Prot = {
    write: (bits & PROT.write) !== 0, user: (bits & PROT.user) !== 0, execKernel: (bits & PROT.execKernel) !== 0,
    execUser: (bits & PROT.execUser) !== 0, global: (bits & PROT.global) !== 0, cache,
  };
  return (bits & PROT.kernel4k) !== 0 ? { ...prot, kernel4k: true } : prot;
}

/** A ProtChange packed as PTSPEC_CHANGE_*: each given field's HAS bit and its value. */
export function encodeChange(c: ProtChange): number {
  const flag = (given: boolean | undefined, has: number): number => (given === undefined ? 0 : has | (given ? has << 1 : 0));
  return flag(c.write, 1 << 0) | flag(c.exec, 1 << 2) | flag(c.global, 1 << 4) | flag(c.present, 1 << 6) |
    (c.kernel4k === true ? 1 << 8 : 0) | (c.cache === undefined ? 0 : (1 << 9) | (code(CACHE_MODES, c.cache) << 12));
}

/** PTSPEC_PROTECT_ALIAS and PTSPEC_PROTECT_COLLAPSE. */
export function encodeProtectOptions(o: ProtectOptions): number {
  return (o.alias === true ? 1 : 0) | (o.collapse === true ? 2 : 0);
}

// ---- frame runs ----

const FRAME_SENSITIVE = 1 << 0;
const FRAME_NO_DIRECT_MAP = 1 << 1;
const FRAME_MEMTYPE_SHIFT = 4;
const FRAME_KNOWN = FRAME_SENSITIVE | FRAME_NO_DIRECT_MAP | (3 << FRAME_MEMTYPE_SHIFT);

export function encodeFrameFlags(r: FrameRun): number {
  return (r.sensitive ? FRAME_SENSITIVE : 0) | (r.noDirectMap ? FRAME_NO_DIRECT_MAP : 0) | (code(MEMTYPE_CODES, r.memtype) << FRAME_MEMTYPE_SHIFT);
}

/** A frame run of these codes (memtype present only when reserved); a string says what is wrong. */
export function decodeFrameRun(pfn: number, count: number, use: number, flags: number): FrameRun | string {
  const u = FRAME_USES[use];
  if (u === undefined) return `use: unknown frame use ${use}`;
  if ((flags & ~FRAME_KNOWN) !== 0) return `flags: unknown bits 0x${(flags & ~FRAME_KNOWN).toString(16)}`;
  const m = (flags >> FRAME_MEMTYPE_SHIFT) & 3;
  if (m >= MEMTYPE_CODES.length) return `flags: unknown memtype ${m}`;
  const memtype = MEMTYPE_CODES[m];
  const run: FrameRun = { pfn, count, use: u, sensitive: (flags & FRAME_SENSITIVE) !== 0, noDirectMap: (flags & FRAME_NO_DIRECT_MAP) !== 0 };
  return memtype === undefined ? run : { ...run, memtype };
}

// ---- struct ptspec_setup ----

export const SETUP_SIZE = 56;
export const FRAME_RUN_SIZE = 24;

/**
 * `struct ptspec_setup` for `setup`, its frame runs right after it (as given: C sorts and
 * merges nothing it is handed), for placing at address `at` of the module's memory.
 */
export function encodeSetup(setup: SystemSetup, at: number): Uint8Array {
  const { config, frames } = setup;
  const bytes = new Uint8Array(SETUP_SIZE + FRAME_RUN_SIZE * frames.length);
  const v = new DataView(bytes.buffer);
  v.setUint32(0, config.levels, true);
  v.setUint32(4, config.cpus, true);
  v.setUint32(8, config.maxPhysBits, true);
  v.setUint32(12, (config.features.pse ? 1 : 0) | (config.features.gbpages ? 2 : 0), true);
  v.setBigUint64(16, BigInt(config.frames), true);
  v.setBigUint64(24, BigInt(config.tablePool.pfn), true);
  v.setBigUint64(32, BigInt(config.tablePool.count), true);
  v.setUint32(40, code(PROFILE_CODES, setup.profile ?? 'strict'), true);
  v.setUint32(44, frames.length, true);
  v.setUint32(48, at + SETUP_SIZE, true);
  frames.forEach((r, i) => {
    const o = SETUP_SIZE + i * FRAME_RUN_SIZE;
    v.setBigUint64(o, BigInt(r.pfn), true);
    v.setBigUint64(o + 8, BigInt(r.count), true);
    v.setUint32(o + 16, code(FRAME_USES, r.use), true);
    v.setUint32(o + 20, encodeFrameFlags(r), true);
  });
  return bytes;
}

// ---- malformed data ----

/** What is wrong with bytes a C implementation wrote: the offset and the field. */
export class AbiError extends Error {
  constructor(readonly offset: number, readonly field: string, problem: string, what = 'abstraction buffer') {
    super(`${what}: offset ${offset}, ${field}: ${problem}`);
    this.name = 'AbiError';
  }
}

interface Counted {
  readonly field: string;
  readonly at: number;
  readonly n: number;
}

/** Little-endian reads that name the field when they run past the end. */
class Reader {
  private readonly view: DataView;
  at = 0;

  constructor(readonly bytes: Uint8Array, private readonly what?: string) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  private need(n: number, field: string): number {
    if (this.at + n > this.bytes.byteLength) throw this.error(this.at, field, `truncated: ${n} bytes needed, ${this.bytes.byteLength - this.at} left`);
    const o = this.at;
    this.at += n;
    return o;
  }

  u32(field: string): number {
    return this.view.getUint32(this.need(4, field), true);
  }

  /** A u64 as a number: every page, frame and count ptspec has is a safe integer. */
  u64(field: string): number {
    const at = this.at;
    const v = this.view.getBigUint64(this.need(8, field), true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw this.error(at, field, `${v} is too large for a page or frame number`);
    return Number(v);
  }

  /** A u32 record count, with where it was read, for `records`. */
  counted(field: string): Counted {
    const at = this.at;
    return { field, at, n: this.u32(field) };
  }

  /** The records a count says, each `size` bytes at least and read by `read`: the count must fit in what is left. */
  records<T>(c: Counted, size: number, read: (i: number) => T): T[] {
    if (c.n * size > this.bytes.byteLength - this.at) {
      throw this.error(c.at, c.field, `${c.n} records of ${size} bytes run past the end (${this.bytes.byteLength - this.at} bytes left at offset ${this.at})`);
    }
    return Array.from({ length: c.n }, (_, i) => read(i));
  }

  error(at: number, field: string, problem: string): AbiError {
    return new AbiError(at, field, problem, this.what);
  }

  enumOf<T>(values: readonly T[], field: string): T {
    const at = this.at;
    const c = this.u32(field);
    const v = values[c];
    if (v === undefined) throw this.error(at, field, `unknown value ${c}`);
    return v;
  }
}

// ---- translate's and access's results ----

export const TRANSLATION_SIZE = 32;
export const ACCESS_RESULT_SIZE = 40;

function readLeaf(r: Reader, what: string): Leaf {
  const vpn = r.u64(`${what} vpn`);
  const pfn = r.u64(`${what} pfn`);
  const size = r.enumOf(PAGE_SIZE_CODES, `${what} size`);
  const at = r.at;
  const prot = decodeProt(r.u32(`${what} prot`));
  if (typeof prot === 'string') throw r.error(at, `${what} prot`, prot);
  return { vpn, pfn, size, prot };
}

/** `struct ptspec_translation`. */
function readTranslation(r: Reader): Translation {
  const leaf = readLeaf(r, 'translation leaf');
  return { leaf, pfn: r.u64('translation pfn') };
}

export function decodeTranslation(bytes: Uint8Array): Translation {
  return readTranslation(new Reader(bytes, 'translation'));
}

/** `struct ptspec_access_result`. */
export function decodeAccessResult(bytes: Uint8Array): AccessOutcome {
  const r = new Reader(bytes, 'access result');
  const fault = r.enumOf([false, 'not-present', 'protection'] as const, 'access fault');
  const fromTlb = r.u32('access from_tlb');
  if (fault !== false) return { fault };
  return { fault: false, translation: readTranslation(r), fromTlb: fromTlb !== 0 };
}

// ---- errors ----

/** The errnos of the interface, by their Linux numbers. */
export const ERRNO_NUMBERS: { readonly [E in Errno]: number } = { EPERM: 1, ENOENT: 2, ENOMEM: 12, EFAULT: 14, EBUSY: 16, EEXIST: 17, EINVAL: 22 };
const ERRNO_OF: ReadonlyMap<number, Errno> = new Map((Object.entries(ERRNO_NUMBERS) as [Errno, number][]).map(([e, n]) => [n, e]));

/** The operations whose state refusals name their frames (`pfn`), not their pages. */
const FRAME_OPS: ReadonlySet<CoreOp> = new Set<CoreOp>(['setDirectMapInvalid', 'setDirectMapDefault', 'allocFrames', 'freeFrames']);

/**
 * The argument an error of `op` names (spec/errors.ts, spec/contracts/outcome.ts): ENOMEM
 * the table pool, EPERM the operation's policy argument, linux protect's memtype EBUSY
 * its change; every other refusal the frames of a frame operation and the pages of the
 * rest (split's and collapse's EINVAL state checks name vpn too).
 */
export function errorArg(op: CoreOp, errno: Errno): string {
  if (errno === 'ENOMEM') return 'tablePool';
  if (errno === 'EPERM') return POLICY_ARG[op as MutatingOp] ?? 'vpn';
  if (errno === 'EBUSY' && op === 'protect') return 'change';
  return FRAME_OPS.has(op) ? 'pfn' : 'vpn';
}

/**
 * The PtError a negative result of `op` stands for. An EPERM names the strict-policy
 * invariant `refused()` (ptspec_last_refused) gives by its index in STRICT_POLICY. A
 * value that is no errno of the interface, or an index outside the policy, is the
 * implementation's bug: an Error.
 */
export function errorOf(op: CoreOp, result: number, refused: () => number): PtError {
  const errno = ERRNO_OF.get(-result);
  if (errno === undefined) throw new Error(`ptspec_${op}: returned ${result}, which is not 0 or a negative errno of c/ptspec.h (${Object.values(ERRNO_NUMBERS).map((n) => -n).join(', ')})`);
  if (errno === 'EPERM') {
    const i = refused();
    const id = STRICT_POLICY[i]?.id;
    if (id === undefined) throw new Error(`ptspec_${op}: -EPERM, and ptspec_last_refused() gave ${i}, not an index of STRICT_POLICY (0..${STRICT_POLICY.length - 1})`);
    return policyError(op as MutatingOp, id, 'in the C implementation');
  }
  const arg = errorArg(op, errno);
  return { errno, arg, message: `${errno}: ${arg}: the C implementation returned -${errno}` };
}

// ---- the abstraction buffer ----

const ABSTRACT_MAGIC = 0x53415450;
const ABSTRACT_VERSION = 1;
const LEAF_SIZE = 24;
const ROOT_HEAD_SIZE = 24;
const TLB_SIZE = 32;
const WALK_SIZE = 24;
const OBLIGATION_SIZE = 24;

/** Runs sorted by pfn, empty ones dropped, neighbours with the same facts merged. */
function canonicalRuns(runs: readonly FrameRun[]): FrameRun[] {
  const out: FrameRun[] = [];
  for (const r of [...runs].sort((a, b) => a.pfn - b.pfn)) {
    if (r.count === 0) continue;
    const last = out[out.length - 1];
    if (last !== undefined && last.pfn + last.count === r.pfn && sameFrameFacts(last, r)) out[out.length - 1] = { ...last, count: last.count + r.count };
    else out.push(r);
  }
  return out;
}

const byVpn = <T extends { readonly vpn: number }>(list: T[]): T[] => list.sort((a, b) => a.vpn - b.vpn);

function readRoot(r: Reader, index: number): AbstractRoot {
  const what = `root ${index}`;
  const id = r.u32(`${what} id`);
  const kind = r.enumOf(ROOT_KINDS, `${what} kind`);
  const pid = r.u32(`${what} pid`);
  const [leafCount, npCount, divCount] = [r.counted(`${what} leaves`), r.counted(`${what} nonPresent`), r.counted(`${what} diverged`)];
  const leaves = r.records(leafCount, LEAF_SIZE, (i) => readLeaf(r, `${what} leaf ${i}`));
  const nonPresent = r.records(npCount, LEAF_SIZE, (i) => readLeaf(r, `${what} nonPresent ${i}`));
  const diverged = r.records(divCount, 8, (i) => r.u64(`${what} diverged ${i}`)).sort((a, b) => a - b);
  return {
    id, kind, ...(pid === 0 ? {} : { pid }), leaves: byVpn(leaves),
    ...(diverged.length > 0 ? { diverged } : {}), ...(nonPresent.length > 0 ? { nonPresent: byVpn(nonPresent) } : {}),
  };
}

/**
 * The abstract state in a buffer ptspec_abstract wrote (exactly the bytes it said it
 * needs), in canonical form, for a system built with `config`. Throws AbiError naming the
 * offset and field of the first thing wrong.
 */
export function decodeAbstract(bytes: Uint8Array, config: SystemConfig): AbstractState {
  const r = new Reader(bytes);
  const magic = r.u32('magic');
  if (magic !== ABSTRACT_MAGIC) throw new AbiError(0, 'magic', `0x${magic.toString(16)}, not 0x${ABSTRACT_MAGIC.toString(16)} ("PTAS")`);
  const version = r.u32('layout version');
  if (version !== ABSTRACT_VERSION) throw new AbiError(4, 'layout version', `${version}, but this ptspec reads layout ${ABSTRACT_VERSION}`);
  const [runsC, rootsC, tlbC, walkC, owedC] = ['frame runs', 'roots', 'TLB entries', 'walk-cache entries', 'flush obligations'].map((f) => r.counted(f)) as [
    Counted, Counted, Counted, Counted, Counted,
  ];
  const reserved = r.u32('reserved');
  if (reserved !== 0) throw new AbiError(28, 'reserved', `${reserved}, not 0`);
  const tablesInUse = r.u64('tablesInUse');
  const pendingTableFrees = r.u64('pendingTableFrees');

  const frames = r.records(runsC, FRAME_RUN_SIZE, (i) => {
    const at = r.at;
    const run = decodeFrameRun(r.u64(`frame run ${i} pfn`), r.u64(`frame run ${i} count`), r.u32(`frame run ${i} use`), r.u32(`frame run ${i} flags`));
    if (typeof run === 'string') {
      const [field, problem] = run.split(': ') as [string, string];
      throw new AbiError(at + (field === 'use' ? 16 : 20), `frame run ${i} ${field}`, problem);
    }
    return run;
  });
  const roots = r.records(rootsC, ROOT_HEAD_SIZE, (i) => readRoot(r, i)).sort((a, b) => a.id - b.id);
  const tlb = r.records(tlbC, TLB_SIZE, (i): TlbEntry => {
    const cpu = r.u32(`TLB entry ${i} cpu`);
    const root = r.u32(`TLB entry ${i} root`);
    return { cpu, root, leaf: readLeaf(r, `TLB entry ${i} leaf`) };
  }).sort(compareTlbEntries);
  const walkCache = r.records(walkC, WALK_SIZE, (i): WalkCacheEntry => {
    const cpu = r.u32(`walk-cache entry ${i} cpu`);
    const root = r.u32(`walk-cache entry ${i} root`);
    const at = r.at;
    const level = r.u32(`walk-cache entry ${i} level`);
    if (level < 1 || level > 5) throw new AbiError(at, `walk-cache entry ${i} level`, `unknown value ${level}`);
    const table = r.enumOf(CACHED_TABLE_STATES, `walk-cache entry ${i} table`);
    return { cpu, root, level: level as Level, vpn: r.u64(`walk-cache entry ${i} vpn`), table };
  }).sort(compareWalkCacheEntries);
  const owed = r.records(owedC, OBLIGATION_SIZE, (i): FlushObligation => {
    const vpn = r.u64(`flush obligation ${i} vpn`);
    const pages = r.u64(`flush obligation ${i} pages`);
    const reason = r.enumOf(REASON_CODES, `flush obligation ${i} reason`);
    const at = r.at;
    const zero = r.u32(`flush obligation ${i} padding`);
    if (zero !== 0) throw new AbiError(at, `flush obligation ${i} padding`, `${zero}, not 0`);
    return { vpn, pages, reason };
  });
  if (r.at !== bytes.byteLength) throw new AbiError(r.at, 'end', `${bytes.byteLength - r.at} bytes after the last record`);
  // Obligations that meet or touch are one, with their reasons joined (spec/contracts/flush.ts).
  const pendingFlush = byVpn(owed).reduce<FlushObligation[]>((acc, o) => addFlushObligation(acc, o.vpn, o.pages, o.reason), []);
  return {
    config, frames: canonicalRuns(frames), roots, tlb, ...(walkCache.length > 0 ? { walkCache } : {}), pendingFlush, tablesInUse, pendingTableFrees,
  };
}
