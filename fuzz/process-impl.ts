/**
 * A native implementation as a child process (`ptspec fuzz --impl-cmd "COMMAND"`): a
 * program speaking c/PROTOCOL.md over its stdin and stdout, usually c/ptspec-main.c
 * linked with an implementation of c/ptspec.h (kernel code built in userspace, as
 * tools/testing/vma builds mm/vma.c). One process per system; the factory's systems
 * check every argument with the trusted validators before it reaches the program, as
 * the wasm adapter's do (fuzz/wasm-impl.ts), and share its encodings (fuzz/c-abi.ts).
 *
 * The fuzzer calls a system synchronously, and Node has no synchronous read of a child's
 * pipe. So one I/O worker thread per thread that uses the adapter owns the children and
 * their pipes (asynchronous, as libuv wants them), and the calling thread blocks in
 * Atomics.wait until the worker has posted the response on a MessagePort, which it then
 * takes with receiveMessageOnPort. The wait has a deadline: a command that takes longer
 * (a hang) kills the process; a process that exits, dies by a signal or answers what the
 * protocol does not allow is a failure naming the exit code or signal, the offset in its
 * output, and the last lines of its stderr. Every such failure is thrown as a
 * ProcessImplError, which the refinement checker reports as the impl's exception at that
 * command (fuzz/check.ts), with the trace so far.
 *
 * The command is split into argv without a shell (splitCommand): the pid ptspec waits on
 * and kills is then the program's own, not a shell's that may leave the program running
 * when it is killed, and the command means the same on every machine. Who wants a shell
 * asks for one: --impl-cmd "sh -c '…'".
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';
import type { PtError } from '../spec/errors.ts';
import type { AbstractState, SystemConfig } from '../spec/state.ts';
import type { PageTableSystem, PageTableSystemFactory, Profile, SystemSetup } from '../spec/system.ts';
import { ERRNO_NUMBERS, OP_CODES, PTSPEC_ABI_VERSION, REQUIRED_OPS, decodeAbstract, decodeSupported, encodeSetup, errorOf, type CoreOp } from './c-abi.ts';
import { CSystem, type CAnswer, type CArg } from './c-system.ts';

/** A failure of the program rather than a disagreement with the model: hung, crashed, or off the protocol. */
export class ProcessImplError extends Error {}

/**
 * argv of a command line, split as a shell splits words but expanding nothing: blanks
 * separate words, '…' quotes literally, "…" quotes with \" and \\ escaped, and \ outside
 * quotes escapes the next character.
 */
export function splitCommand(command: string): string[] {
  const words: string[] = [];
  let word: string | null = null;
  for (let i = 0; i < command.length; i++) {
    const c = command[i]!;
    if (/\s/.test(c)) {
      if (word !== null) words.push(word);
      word = null;
    } else if (c === "'" || c === '"') {
      const end = closingQuote(command, i);
      const inner = command.slice(i + 1, end);
      word = (word ?? '') + (c === '"' ? inner.replace(/\\(["\\])/g, '$1') : inner);
      i = end;
    } else if (c === '\\' && i + 1 < command.length) {
      word = (word ?? '') + command[++i]!;
    } else {
      word = (word ?? '') + c;
    }
  }
  if (word !== null) words.push(word);
  if (words.length === 0) throw new ProcessImplError('--impl-cmd is empty: give the program to run, e.g. --impl-cmd "./my-page-tables"');
  return words;
}

function closingQuote(command: string, open: number): number {
  const q = command[open]!;
  for (let i = open + 1; i < command.length; i++) {
    if (q === '"' && command[i] === '\\') i++;
    else if (command[i] === q) return i;
  }
  throw new ProcessImplError(`--impl-cmd ${JSON.stringify(command)}: the ${q} at offset ${open} is never closed`);
}

/** The longest response ptspec reads (an abstraction of a large machine fits with room). */
export const MAX_RESPONSE = 256 << 20;
/** How much of a program's stderr is kept for its failure report. */
const STDERR_KEPT = 8192;
/** How long a program that was told to go (stdin closed) or killed has to be reaped. */
const REAP_MS = 1000;

type ToIo =
  | { readonly type: 'spawn'; readonly id: number; readonly argv: readonly string[] }
  | { readonly type: 'write'; readonly id: number; readonly bytes: Uint8Array }
  | { readonly type: 'end'; readonly id: number };

type FromIo =
  | { readonly type: 'spawned'; readonly id: number; readonly pid: number }
  | { readonly type: 'response'; readonly id: number; readonly offset: number; readonly body: Uint8Array }
  /** The output broke the framing at `offset` (the worker killed the program). */
  | { readonly type: 'broken'; readonly id: number; readonly offset: number; readonly message: string }
  | { readonly type: 'gone'; readonly id: number; readonly code: number | null; readonly signal: string | null; readonly stderr: string; readonly error?: string };

interface IoInit {
  readonly port: MessagePort;
  /** Int32Array slot 0: bumped after every message the worker posts. */
  readonly signal: SharedArrayBuffer;
}

/**
 * The I/O worker's side: spawns the programs, writes their requests, cuts their output
 * into frames (u32 length, then that many bytes) and posts each, waking the caller.
 */
export function serveIo({ port, signal }: IoInit): void {
  const wake = new Int32Array(signal);
  const post = (m: FromIo, transfer: ArrayBuffer[] = []): void => {
    port.postMessage(m, transfer);
    Atomics.add(wake, 0, 1);
    Atomics.notify(wake, 0);
  };
  const children = new Map<number, ChildProcess>();
  const start = (id: number, argv: readonly string[]): void => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
    children.set(id, child);
    let out: Buffer = Buffer.alloc(0);
    let consumed = 0;
    let stderr = '';
    let broken = false;
    let failure: string | undefined;
    child.on('spawn', () => post({ type: 'spawned', id, pid: child.pid! }));
    child.on('error', (e) => (failure = e.message));
    child.stdin!.on('error', () => {}); // EPIPE from a program that died: its exit says why.
    child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString('utf8')).slice(-STDERR_KEPT)));
    child.stdout!.on('data', (d: Buffer) => {
      if (broken) return;
      out = out.length === 0 ? d : Buffer.concat([out, d]);
      while (out.length >= 4) {
        const len = out.readUInt32LE(0);
        if (len < 4 || len > MAX_RESPONSE) {
          broken = true;
          post({ type: 'broken', id, offset: consumed, message: `a response of ${len} bytes (${len < 4 ? 'less than its 4-byte result' : `more than the ${MAX_RESPONSE >> 20} MiB limit`}); it starts ${sayBytes(out.subarray(0, 16))}` });
          child.kill('SIGKILL');
          return;
        }
        if (out.length < 4 + len) break;
        const body = new Uint8Array(len);
        body.set(out.subarray(4, 4 + len));
        post({ type: 'response', id, offset: consumed, body }, [body.buffer]);
        out = out.subarray(4 + len);
        consumed += 4 + len;
      }
    });
    child.on('close', (code, sig) => {
      children.delete(id);
      post({ type: 'gone', id, code, signal: sig, stderr, ...(failure === undefined ? {} : { error: failure }) });
    });
  };
  port.on('message', (m: ToIo) => {
    if (m.type === 'spawn') start(m.id, m.argv);
    else if (m.type === 'write') children.get(m.id)?.stdin!.write(m.bytes);
    else {
      const child = children.get(m.id);
      child?.stdin!.end();
      // A program that does not exit when its input ends is not waited for.
      setTimeout(() => child?.kill('SIGKILL'), REAP_MS).unref();
    }
  });
}

/** Bytes as hex and, where printable, as text: what a person recognises in a protocol error. */
function sayBytes(b: Uint8Array): string {
  const hex = [...b].map((x) => x.toString(16).padStart(2, '0')).join(' ');
  const text = [...b].map((x) => (x >= 0x20 && x < 0x7f ? String.fromCharCode(x) : '.')).join('');
  return `${hex} ("${text}")`;
}

/** The calling thread's side of the I/O worker: started once, shared by every process of the thread. */
class IoWorker {
  private readonly port: MessagePort;
  private readonly wake: Int32Array;
  private readonly inbox = new Map<number, FromIo[]>();
  private nextId = 1;
  /** Pids of the programs alive, killed when the thread's process exits. */
  readonly pids = new Map<number, number>();

  constructor() {
    const { port1, port2 } = new MessageChannel();
    const signal = new SharedArrayBuffer(4);
    const tsx = import.meta.resolve('tsx/esm/api');
    const entry = import.meta.url;
    // Worker threads do not inherit tsx's loader on Node 20 (fuzz/worker-start.ts).
    const code = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); }).then((m) => m.serveIo(require('node:worker_threads').workerData))`;
    const init: IoInit = { port: port2, signal };
    new Worker(code, { eval: true, workerData: init, transferList: [port2] }).unref();
    port1.unref();
    this.port = port1;
    this.wake = new Int32Array(signal);
    process.on('exit', () => {
      for (const pid of this.pids.values()) killQuietly(pid);
    });
  }

  send(m: ToIo): void {
    this.port.postMessage(m, m.type === 'write' ? [m.bytes.buffer as ArrayBuffer] : []);
  }

  newId(): number {
    return this.nextId++;
  }

  /** The next message for process `id`, or null at the deadline (performance.now() time). */
  receive(id: number, deadline: number): FromIo | null {
    for (;;) {
      const queued = this.inbox.get(id)?.shift();
      if (queued !== undefined) return queued;
      const seen = Atomics.load(this.wake, 0);
      const m = receiveMessageOnPort(this.port);
      if (m !== undefined) {
        const msg = m.message as FromIo;
        if (msg.type === 'gone') this.pids.delete(msg.id);
        const box = this.inbox.get(msg.id);
        if (box !== undefined) box.push(msg);
        continue;
      }
      const left = deadline - performance.now();
      if (left <= 0) return null;
      Atomics.wait(this.wake, 0, seen, left);
    }
  }

  open(id: number): void {
    this.inbox.set(id, []);
  }

  forget(id: number): void {
    this.inbox.delete(id);
  }
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

let io: IoWorker | undefined;

/** The last lines of a program's stderr, as a clause of a failure's sentence. */
function stderrTail(stderr: string): string {
  const lines = stderr.trimEnd().split('\n').filter((l) => l.trim() !== '').slice(-5);
  return lines.length === 0 ? 'its stderr was empty' : `its stderr ended:\n  ${lines.join('\n  ')}`;
}

/** What a `gone` message says happened to the program. */
function sayGone(m: Extract<FromIo, { type: 'gone' }>): string {
  return m.signal !== null ? `was killed by ${m.signal}` : `exited with code ${m.code}`;
}

/** A response: the request's i32 result, its payload, and where the frame began in the program's output. */
export interface Response {
  readonly result: number;
  readonly payload: Uint8Array;
  readonly offset: number;
}

/**
 * One program, one request at a time. After any failure it is dead: every later call
 * throws the same failure again, so a system that hung is never asked twice.
 */
export class ProcessChannel {
  private readonly id: number;
  private readonly io: IoWorker;
  private pid = 0;
  private dead: ProcessImplError | null = null;
  private closed = false;
  private why = '';

  constructor(readonly command: string, readonly timeoutMs: number) {
    const argv = splitCommand(command);
    this.io = io ??= new IoWorker();
    this.id = this.io.newId();
    this.io.open(this.id);
    this.io.send({ type: 'spawn', id: this.id, argv });
    const m = this.io.receive(this.id, performance.now() + Math.max(timeoutMs, 10_000));
    if (m?.type !== 'spawned') {
      this.io.forget(this.id);
      throw this.failed(m?.type === 'gone' ? this.goneText(m, 'starting') : `${command} did not start within ${Math.max(timeoutMs, 10_000) / 1000} s`);
    }
    this.pid = m.pid;
    this.io.pids.set(this.id, m.pid);
  }

  /**
   * Sends one request (opcode and its arguments, little-endian) and returns the response.
   * `what` names the request in a failure ("map", "hello"). Throws ProcessImplError.
   */
  call(what: string, request: Uint8Array): Response {
    if (this.dead !== null) throw this.dead;
    if (this.closed) throw new ProcessImplError(`${what} on a system whose process was ${this.why}`);
    const frame = new Uint8Array(4 + request.length);
    new DataView(frame.buffer).setUint32(0, request.length, true);
    frame.set(request, 4);
    this.io.send({ type: 'write', id: this.id, bytes: frame });
    const m = this.io.receive(this.id, performance.now() + this.timeoutMs);
    if (m === null) {
      killQuietly(this.pid);
      const gone = this.io.receive(this.id, performance.now() + REAP_MS);
      const tail = gone?.type === 'gone' ? `; ${stderrTail(gone.stderr)}` : '';
      throw this.failed(`the implementation did not answer ${what} within ${this.timeoutMs / 1000} s: ${this.command} was killed${tail}`);
    }
    if (m.type === 'response') {
      const result = new DataView(m.body.buffer, m.body.byteOffset).getInt32(0, true);
      return { result, payload: m.body.subarray(4), offset: m.offset };
    }
    throw this.failed(this.goneText(m, what));
  }

  /**
   * A response the protocol does not allow for `what` (a payload of the wrong size, a bad
   * magic): kills the program and throws, naming the offset of the response in its output.
   */
  protocolError(what: string, r: Response, problem: string): never {
    killQuietly(this.pid);
    const gone = this.io.receive(this.id, performance.now() + REAP_MS);
    const tail = gone?.type === 'gone' ? `; ${stderrTail(gone.stderr)}` : '';
    throw this.failed(`protocol error in the response to ${what} at byte ${r.offset} of ${this.command}'s output: ${problem}${tail}`);
  }

  /** Whether the program may still be asked: not closed and not failed. */
  get live(): boolean {
    return !this.closed && this.dead === null;
  }

  /** Ends the program's input (it exits; one that does not is killed a second later). Idempotent. */
  close(why = 'closed'): void {
    if (this.closed) return;
    this.closed = true;
    this.why = why;
    if (this.dead === null) this.io.send({ type: 'end', id: this.id });
    this.io.forget(this.id);
  }

  private goneText(m: Exclude<FromIo, { type: 'response' }>, what: string): string {
    if (m.type === 'broken') {
      const gone = this.io.receive(this.id, performance.now() + REAP_MS);
      const tail = gone?.type === 'gone' ? `; ${stderrTail(gone.stderr)}` : '';
      return `protocol error in the response to ${what} at byte ${m.offset} of ${this.command}'s output: ${m.message}${tail}`;
    }
    if (m.type === 'spawned') return `${this.command} started twice`;
    if (m.error !== undefined) return `${this.command} could not be run (${m.error})`;
    return `${this.command} ${sayGone(m)} during ${what}, without answering; ${stderrTail(m.stderr)}`;
  }

  private failed(message: string): ProcessImplError {
    this.dead = new ProcessImplError(message);
    this.io.pids.delete(this.id);
    return this.dead;
  }
}

/** The protocol this adapter speaks (c/PROTOCOL.md) and its special opcodes. */
export const PROTOCOL_VERSION = 1;
const PROTOCOL_MAGIC = 0x50535450;
const OP_HELLO = 0x100;
const OP_CREATE = 0x101;
const OP_ABSTRACT = 0x103;
const OP_LAST_REFUSED = 0x104;

/** Little-endian request bytes, built field by field. */
class Request {
  private readonly bytes: number[] = [];

  constructor(opcode: number) {
    this.u32(opcode);
  }

  u32(v: number): this {
    for (let i = 0; i < 4; i++) this.bytes.push((v >>> (8 * i)) & 0xff);
    return this;
  }

  u64(v: number): this {
    const lo = v % 2 ** 32;
    return this.u32(lo).u32((v - lo) / 2 ** 32);
  }

  raw(b: Uint8Array): this {
    for (const x of b) this.bytes.push(x);
    return this;
  }

  done(): Uint8Array {
    return Uint8Array.from(this.bytes);
  }
}

/** What hello says about a program. */
export interface ProcessImplInfo {
  readonly abiVersion: number;
  /** The operations it implements (the fuzzer generates no other). */
  readonly ops: ReadonlySet<CoreOp>;
  /** The profiles it follows (PTSPEC_SUPPORTS_*). */
  readonly profiles: ReadonlySet<Profile>;
}

function hello(channel: ProcessChannel): ProcessImplInfo {
  const r = channel.call('hello', new Request(OP_HELLO).u32(PROTOCOL_VERSION).done());
  const v = new DataView(r.payload.buffer, r.payload.byteOffset, r.payload.byteLength);
  if (r.payload.length !== 24 || v.getUint32(0, true) !== PROTOCOL_MAGIC) channel.protocolError('hello', r, `not a ptspec server: the answer is not 24 bytes starting "PTSP" (${r.payload.length} bytes)`);
  const protocol = v.getUint32(4, true);
  if (r.result !== 0 || protocol !== PROTOCOL_VERSION) throw new ProcessImplError(`${channel.command} speaks protocol version ${protocol}, ptspec speaks version ${PROTOCOL_VERSION} (c/PROTOCOL.md)`);
  const abiVersion = v.getUint32(8, true);
  if (abiVersion !== PTSPEC_ABI_VERSION) throw new ProcessImplError(`${channel.command} implements c/ptspec.h ABI version ${abiVersion}, ptspec speaks version ${PTSPEC_ABI_VERSION}`);
  const bits = v.getBigUint64(16, true);
  const info = { abiVersion, ...decodeSupported(bits) };
  for (const op of REQUIRED_OPS) {
    if (!info.ops.has(op)) throw new ProcessImplError(`${channel.command} does not support ${op} (ptspec_supported_ops() = 0x${bits.toString(16)}): every implementation must`);
  }
  return info;
}

const ERRNO_RESULTS: ReadonlySet<number> = new Set(Object.values(ERRNO_NUMBERS).map((n) => -n));

/**
 * A system in its own process: each method validates its arguments as the model does,
 * sends the call, and makes the answer a Result (the error's arg derived from op and
 * errno, an EPERM's invariant from last_refused).
 */
class ProcessSystem extends CSystem {
  readonly config: SystemConfig;
  readonly profile: Profile;
  /** The response being made a Result: where a protocol error points. */
  private last!: Response;

  constructor(private readonly channel: ProcessChannel, setup: SystemSetup) {
    super();
    this.config = setup.config;
    this.profile = setup.profile ?? 'strict';
    const r = channel.call('create', new Request(OP_CREATE).raw(encodeSetup(setup, 0)).done());
    if (r.result !== 0) throw new ProcessImplError(`${channel.command} could not create a system (create answered ${r.result}${r.result === -12 ? ', ptspec_create returned NULL' : ''})`);
  }

  /** The operation's request: its C arguments in order, each at its width (c/PROTOCOL.md). */
  protected call(op: CoreOp, args: readonly CArg[], out: number): CAnswer {
    const request = new Request(OP_CODES[op]);
    for (const a of args) if ('u64' in a) request.u64(a.u64); else request.u32(a.u32);
    return this.send(op, request, out);
  }

  abstract(): AbstractState {
    const r = this.channel.call('abstract', new Request(OP_ABSTRACT).done());
    this.last = r;
    if (r.result !== 0) this.channel.protocolError('abstract', r, `result ${r.result}, not 0`);
    return this.decoded('abstract', r, (b) => decodeAbstract(b, this.config));
  }

  /** Ends the process (the fuzzer's systems are otherwise ended when they are collected, or ptspec exits). */
  close(): void {
    this.channel.close();
  }

  /** The payload decoded; a malformed one (c-abi.ts AbiError: offset and field) is the program's protocol error. */
  protected override decoded<T>(what: string, r: { readonly payload: Uint8Array }, decode: (payload: Uint8Array) => T): T {
    try {
      return decode(r.payload);
    } catch (e) {
      return this.channel.protocolError(what, this.last, (e as Error).message);
    }
  }

  /** Sends one operation; a result that is no contract's errno, or a payload of the wrong size, is the program's failure. */
  private send(op: CoreOp, request: Request, okPayload: number): Response {
    const r = this.channel.call(op, request.done());
    this.last = r;
    if (r.result !== 0 && !ERRNO_RESULTS.has(r.result)) {
      this.channel.protocolError(op, r, `result ${r.result}${r.result === -38 ? ' (ENOSYS: the program does not implement it, though ptspec_supported_ops() says it does)' : ', not 0 or an errno of the contracts'}`);
    }
    const want = r.result === 0 ? okPayload : 0;
    if (r.payload.length !== want) this.channel.protocolError(op, r, `a payload of ${r.payload.length} bytes where ${want} belong`);
    return r;
  }

  /** The error of a negative result (its arg derived from op and errno; an EPERM's invariant from last_refused); one errorOf cannot read is the program's protocol error. */
  protected failure(op: CoreOp, result: number): PtError {
    // `result` is the last response's: send checked it is an errno of the contracts.
    try {
      return errorOf(op, result, () => this.lastRefused());
    } catch (e) {
      if (e instanceof ProcessImplError) throw e;
      return this.channel.protocolError(op, this.last, (e as Error).message);
    }
  }

  /** ptspec_last_refused(): its index in STRICT_POLICY, checked by errorOf. */
  private lastRefused(): number {
    const r = this.channel.call('last_refused', new Request(OP_LAST_REFUSED).done());
    if (r.payload.length !== 0) this.channel.protocolError('last_refused', r, `a payload of ${r.payload.length} bytes where none belong`);
    return r.result;
  }
}

/** Lives of the processes whose systems the fuzzer dropped: each is ended when its system is collected. */
const ended = new FinalizationRegistry<ProcessChannel>((channel) => channel.close());

export interface ProcessImplOptions {
  /** How long one command may take before the program is killed and the command is a failure (default 5 s). */
  readonly timeoutMs?: number;
}

export const DEFAULT_PROCESS_TIMEOUT_MS = 5_000;
/** Processes one factory keeps alive at once: a campaign uses one or two systems at a time. */
export const MAX_LIVE_PROCESSES = 32;

/** What a campaign takes from `--impl-cmd`: the program's factory and what hello said. */
export interface ProcessImpl extends ProcessImplInfo {
  readonly factory: PageTableSystemFactory;
  /** Ends every process the factory started (a campaign's end; they also end with ptspec). */
  closeAll(): void;
}

/**
 * Starts `command` once to ask what it supports (hello), and returns a factory whose every
 * system is a fresh process of it. Throws ProcessImplError when the program does not start
 * or does not speak the protocol.
 */
export function loadProcessImpl(command: string, opts: ProcessImplOptions = {}): ProcessImpl {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_PROCESS_TIMEOUT_MS;
  const channels = new Set<ProcessChannel>();
  const probe = new ProcessChannel(command, timeoutMs);
  let info: ProcessImplInfo;
  try {
    info = hello(probe);
  } finally {
    probe.close();
  }
  const factory = (setup: SystemSetup): PageTableSystem => {
    const profile = setup.profile ?? 'strict';
    if (!info.profiles.has(profile)) throw new ProcessImplError(`${command} does not follow the ${profile} profile (its ptspec_supported_ops() lacks PTSPEC_SUPPORTS_${profile.toUpperCase()})`);
    for (const c of channels) if (!c.live) channels.delete(c);
    // The fuzzer has no end-of-life for a system, and a synchronous run of traces lets
    // no FinalizationRegistry callback in: the oldest process goes when too many are alive.
    const oldest = channels.size >= MAX_LIVE_PROCESSES ? channels.values().next().value : undefined;
    if (oldest !== undefined) {
      oldest.close(`ended to make room: at most ${MAX_LIVE_PROCESSES} processes of ${command} live at once, and ${MAX_LIVE_PROCESSES} newer systems were made`);
      channels.delete(oldest);
    }
    const channel = new ProcessChannel(command, timeoutMs);
    channels.add(channel);
    try {
      hello(channel);
      const sys = new ProcessSystem(channel, setup);
      ended.register(sys, channel);
      return sys;
    } catch (e) {
      channel.close();
      throw e;
    }
  };
  const closeAll = (): void => {
    for (const c of channels) c.close();
    channels.clear();
  };
  return { ...info, factory, closeAll };
}
