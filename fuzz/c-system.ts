/**
 * A C implementation of c/ptspec.h behind the PageTableSystem interface, whatever carries
 * the calls: each operation's arguments are checked with the shared validators (the
 * contracts' trusted code, as model and impl share it), then passed in the order of its C
 * parameters with their widths, and the answer made a Result. The wasm adapter
 * (fuzz/wasm-impl.ts) calls the module's exports; the process adapter
 * (fuzz/process-impl.ts) sends the same arguments over c/PROTOCOL.md, whose fields are
 * the C parameters in order.
 */
import type { Pfn, Vpn } from '../spec/address.ts';
import {
  validateAccess, validateCollapse, validateFlush, validateFlushLocal, validateFrames, validateMap, validateProtect, validateSetDirectMap,
  validateSplit, validateTranslate, validateUnmap,
} from '../spec/contracts/index.ts';
import { OK, ok, type PtError, type Result } from '../spec/errors.ts';
import type { AbstractState, Prot, RootId, SystemConfig } from '../spec/state.ts';
import type {
  AccessKind, AccessMode, AccessOutcome, FlushOptions, MapOptions, PageTableSystem, Profile, ProtChange, ProtectOptions, Translation,
} from '../spec/system.ts';
import {
  ACCESS_RESULT_SIZE, TRANSLATION_SIZE, accessKindCode, accessModeCode, decodeAccessResult, decodeTranslation, encodeChange, encodeProt,
  encodeProtectOptions, pageSizeCode, type CoreOp,
} from './c-abi.ts';

/** One argument of a C call: its width in c/ptspec.h and its value. */
export type CArg = { readonly u32: number } | { readonly u64: number };
const u32 = (v: number): CArg => ({ u32: v });
const u64 = (v: number): CArg => ({ u64: v });
const flag = (b: boolean): CArg => u32(b ? 1 : 0);

/** What a call answered: its int result and, on success of translate or access, the bytes of its result struct. */
export interface CAnswer {
  readonly result: number;
  readonly payload: Uint8Array;
}

export abstract class CSystem implements PageTableSystem {
  abstract readonly config: SystemConfig;
  abstract readonly profile: Profile;

  /** Calls `op` with `args` in its C parameter order; `out`: the size of the result struct it fills on success (0: none). */
  protected abstract call(op: CoreOp, args: readonly CArg[], out: number): CAnswer;
  /** The error a negative result stands for (its arg derived from op and errno; an EPERM's invariant from ptspec_last_refused). */
  protected abstract failure(op: CoreOp, result: number): PtError;
  /** A result struct decoded; an adapter may report a malformed one its own way. */
  protected decoded<T>(_op: CoreOp, a: CAnswer, decode: (bytes: Uint8Array) => T): T {
    return decode(a.payload);
  }
  abstract abstract(): AbstractState;

  /** An operation with no result struct: the validator's EINVAL, else the call's answer. */
  private run(op: CoreOp, bad: PtError | null, args: readonly CArg[]): Result<void> {
    if (bad !== null) return { ok: false, error: bad };
    const a = this.call(op, args, 0);
    return a.result === 0 ? OK : { ok: false, error: this.failure(op, a.result) };
  }

  /** An operation that fills a result struct of `size` bytes. */
  private answer<T>(op: CoreOp, bad: PtError | null, args: readonly CArg[], size: number, decode: (bytes: Uint8Array) => T): Result<T> {
    if (bad !== null) return { ok: false, error: bad };
    const a = this.call(op, args, size);
    return a.result === 0 ? ok(this.decoded(op, a, decode)) : { ok: false, error: this.failure(op, a.result) };
  }

  map(root: RootId, vpn: Vpn, pfn: Pfn, pages: number, prot: Prot, opts: MapOptions = {}): Result<void> {
    return this.run('map', validateMap(this.config, root, vpn, pfn, pages, prot, opts),
      [u32(root), u64(vpn), u64(pfn), u64(pages), u32(encodeProt(prot)), u32(pageSizeCode(opts.maxPage ?? '1G'))]);
  }

  unmap(root: RootId, vpn: Vpn, pages: number, opts: FlushOptions = { flush: true }): Result<void> {
    return this.run('unmap', validateUnmap(this.config, root, vpn, pages), [u32(root), u64(vpn), u64(pages), flag(opts.flush)]);
  }

  protect(vpn: Vpn, pages: number, change: ProtChange, opts: ProtectOptions = {}): Result<void> {
    return this.run('protect', validateProtect(this.config, vpn, pages, change), [u64(vpn), u64(pages), u32(encodeChange(change)), u32(encodeProtectOptions(opts))]);
  }

  setDirectMapInvalid(pfn: Pfn, count: number, opts: FlushOptions): Result<void> {
    return this.run('setDirectMapInvalid', validateSetDirectMap(this.config, pfn, count), [u64(pfn), u64(count), flag(opts.flush)]);
  }

  setDirectMapDefault(pfn: Pfn, count: number, opts: FlushOptions): Result<void> {
    return this.run('setDirectMapDefault', validateSetDirectMap(this.config, pfn, count), [u64(pfn), u64(count), flag(opts.flush)]);
  }

  split(root: RootId, vpn: Vpn): Result<void> {
    return this.run('split', validateSplit(this.config, root, vpn), [u32(root), u64(vpn)]);
  }

  collapse(root: RootId, vpn: Vpn, size: '2M' | '1G'): Result<void> {
    return this.run('collapse', validateCollapse(this.config, root, vpn, size), [u32(root), u64(vpn), u32(pageSizeCode(size))]);
  }

  translate(root: RootId, vpn: Vpn): Result<Translation> {
    return this.answer('translate', validateTranslate(this.config, root, vpn), [u32(root), u64(vpn)], TRANSLATION_SIZE, decodeTranslation);
  }

  access(cpu: number, root: RootId, vpn: Vpn, kind: AccessKind, mode: AccessMode): Result<AccessOutcome> {
    return this.answer('access', validateAccess(this.config, cpu, root, vpn, kind, mode),
      [u32(cpu), u32(root), u64(vpn), u32(accessKindCode(kind)), u32(accessModeCode(mode))], ACCESS_RESULT_SIZE, decodeAccessResult);
  }

  flush(vpn: Vpn, pages: number): Result<void> {
    return this.run('flush', validateFlush(this.config, vpn, pages), [u64(vpn), u64(pages)]);
  }

  flushAll(): Result<void> {
    return this.run('flushAll', null, []);
  }

  flushLocal(cpu: number, vpn: Vpn, pages: number): Result<void> {
    return this.run('flushLocal', validateFlushLocal(this.config, cpu, vpn, pages), [u32(cpu), u64(vpn), u64(pages)]);
  }

  allocFrames(pfn: Pfn, count: number): Result<void> {
    return this.run('allocFrames', validateFrames(this.config, pfn, count), [u64(pfn), u64(count)]);
  }

  freeFrames(pfn: Pfn, count: number): Result<void> {
    return this.run('freeFrames', validateFrames(this.config, pfn, count), [u64(pfn), u64(count)]);
  }
}
