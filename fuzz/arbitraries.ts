/**
 * Command arbitraries with clustered addresses.
 *
 * Page-table bugs live at edges: the first and last page of a region, a 2M or 1G boundary
 * and the page either side of it, the start of an existing huge leaf, a range that is one
 * page longer than a huge page. Uniform 52-bit page numbers would almost never land there,
 * so every address is drawn from a *pool* of interesting page numbers derived from the
 * scenario (its regions and boot mappings) plus a small offset, or reuses an address a
 * recent command used (split then collapse the same block, map then protect then unmap
 * it). Commands are generated as small "sketches" (pool indices, offsets, choices) and
 * resolved into plain `Command` data by one pass over the sequence, so a shrunk
 * counterexample is again `Command[]` that replays exactly.
 */
import fc from 'fast-check';
import {
  PAGES, kernelLayout, lowerHalfEnd, upperHalfStart, VPN_LIMIT,
  type PageSize, type Pfn, type Vpn,
} from '../spec/address.ts';
import type { Command, Op } from '../spec/commands.ts';
import { OPERATIONS, OPS, fieldsOf, type CommandOf, type FieldKind } from '../spec/operations.ts';
import type { Scenario } from '../spec/scenario.ts';
import { CACHE_MODES, type CacheMode, type Prot } from '../spec/state.ts';
import type { AccessKind, AccessMode, ProtChange } from '../spec/system.ts';
import { TLB_SINGLE_PAGE_FLUSH_CEILING } from '../spec/contracts/linux.ts';
import { LIFECYCLES, LIFECYCLE_KINDS, LifecycleResolver, blockFrameRuns, type BlockSketch, type LifecycleKind } from './lifecycles.ts';
import { isWorkloadKind } from './workload.ts';
import { ProcessBelief, asiRange, ldtPages, ldtPfn, ptiRange, userPfn, userProt } from './processes.ts';
import { ClientBelief } from './clients.ts';
import { processRootIds } from '../spec/roots.ts';

export interface CommandsArbOptions {
  /** Longest sequence generated (sequences of every length up to this are produced). */
  readonly maxCommands: number;
  /** Also generate KPTI/ASI/process commands (for systems with the isolation capability). */
  readonly isolation?: boolean;
  /** Also generate the client commands (for systems with the clients capability: spec/contracts/clients.ts). */
  readonly clients?: boolean;
  /**
   * Fraction of sequences (0..1, default 0) kept short: at most maxCommands/8 commands.
   * The rest spread over every length up to maxCommands. A CI budget buys many more
   * distinct sequences this way while still running some of full length.
   */
  readonly shortFraction?: number;
  /**
   * Also pick addresses anywhere inside each region, each region as likely as another
   * (the linux profile: a finding such as set_memory_rw on a 4K page of kernel text needs
   * an address inside a small region, which the edge pool reaches rarely). Absent: off,
   * so strict campaigns keep generating what their seeds always generated.
   */
  readonly interior?: boolean;
  /**
   * Swarm testing (Groce et al., ISSTA 2012): each sequence first draws its own subset of
   * the operations, each kept with probability 1/2 (`map` always: it gives the others
   * fresh mappings to act on, and the subset is never empty), and uses only those. With
   * every operation always on, a frequent one (translate, access) crowds out the long
   * runs of, say, splits and set_direct_map_* that a bug needs; a swarm sequence without
   * them gets those runs often. The lifecycle blocks (fuzz/lifecycles.ts) are members
   * of the subset like operations. Drawn from the sequence's own random stream, so a seed
   * still gives one sequence.
   */
  readonly swarm?: boolean;
  /**
   * The operations the system implements (a C module's ptspec_supported_ops): no other is
   * generated, and a lifecycle or workload block that would use another is left out
   * whole. Absent: every operation its capabilities offer.
   */
  readonly ops?: ReadonlySet<Op>;
}

const M2 = PAGES['2M'];
const G1 = PAGES['1G'];

const alignDown = (n: number, a: number): number => Math.floor(n / a) * a;
const alignUp = (n: number, a: number): number => Math.ceil(n / a) * a;

/** A point, the page either side of it, and the 2M and 1G boundaries around it. */
function edgesAround(p: number, out: Set<number>): void {
  for (const q of [p - 1, p, p + 1, alignDown(p, M2), alignUp(p, M2), alignDown(p, G1), alignUp(p, G1)]) out.add(q);
}

/**
 * Interesting virtual page numbers of a scenario: region starts and ends, boot mappings'
 * starts and ends, the 2M and 1G boundaries inside and around them, plus a few addresses
 * at the very edges (user half, the non-canonical hole, the last page).
 */
export function vpnPool(scenario: Scenario): Vpn[] {
  const levels = scenario.config.levels;
  const pts = new Set<number>();
  for (const r of scenario.regions) {
    edgesAround(r.vpn, pts);
    edgesAround(r.vpn + r.pages, pts);
    // 1G boundaries inside a large region (the direct map's 1G leaves).
    for (let g = alignUp(r.vpn, G1); g < r.vpn + r.pages && g < r.vpn + 8 * G1; g += G1) edgesAround(g, pts);
  }
  const pageOffset = kernelLayout(levels).pageOffset;
  for (const c of scenario.boot) {
    if (c.op !== 'map') continue;
    edgesAround(c.vpn, pts);
    edgesAround(c.vpn + c.pages, pts);
    // The direct-map alias of what the boot maps elsewhere (the image, a vmalloc area):
    // where CPA's alias walk changes entries and must flush.
    edgesAround(pageOffset + c.pfn, pts);
  }
  const kernel = [...pts].filter((v) => v >= upperHalfStart(levels) && v < VPN_LIMIT);
  kernel.sort((a, b) => a - b);
  // The user half and the non-canonical hole (EINVAL), and the very last page (any range longer than one page runs off the end).
  return [...kernel, 0x400, lowerHalfEnd(levels) - 1, lowerHalfEnd(levels), VPN_LIMIT - 1];
}

/** Interesting frames: starts and ends of every use run (text, rodata, data, table pool, user) and huge boundaries. */
export function pfnPool(scenario: Scenario): Pfn[] {
  const pts = new Set<number>();
  for (const r of scenario.frames) {
    edgesAround(r.pfn, pts);
    edgesAround(r.pfn + r.count - 1, pts);
    // A frame in no alignment class: only 4K leaves can map it.
    pts.add(r.pfn + M2 + 3);
  }
  pts.add(scenario.config.frames); // one past the end: EINVAL
  return [...pts].filter((p) => p >= 0 && p <= scenario.config.frames).sort((a, b) => a - b);
}

// ---- sketches: what the arbitrary generates before resolution ----

type AddrSketch =
  | { readonly from: 'pool'; readonly i: number; readonly delta: number }
  | { readonly from: 'recent'; readonly k: number; readonly delta: number }
  /** Just after the end of a recent range (adjacent mappings, merging and splitting neighbours). */
  | { readonly from: 'recentEnd'; readonly k: number }
  /**
   * The direct-map page of the frame behind a recent address: where cpa_process_alias
   * changes entries for a vmalloc or image page, and so where a missed alias flush leaves
   * a stale translation for an access to find.
   */
  | { readonly from: 'alias'; readonly k: number }
  /** Anywhere inside a scenario region (CommandsArbOptions.interior). */
  | { readonly from: 'region'; readonly r: number; readonly at: number };

type PfnSketch =
  | { readonly from: 'pool'; readonly i: number; readonly delta: number }
  /** The frame currently behind a recent address through its kernel alias (direct map or image). */
  | { readonly from: 'aliasOf'; readonly k: number }
  /** A pool frame with the same offset in a 2M/1G block as the vpn, so huge leaves are possible. */
  | { readonly from: 'congruent'; readonly i: number; readonly size: '2M' | '1G' };

type LenSketch = { readonly kind: 'fixed'; readonly n: number } | { readonly kind: 'region'; readonly i: number };

/**
 * The frames of allocFrames / freeFrames: frames the sequence believes free (for
 * allocFrames) or allocated (for freeFrames), frames that can be taken whole (free in the
 * scenario, else data mapped only by the direct map), or the ordinary frame sketch, which
 * reaches kernel text, tables and vmalloc'ed data: the EBUSY, ENOENT and EPERM cases.
 */
type FramesSketch =
  | { readonly from: 'tracked'; readonly k: number }
  | { readonly from: 'takeable'; readonly i: number; readonly at: number }
  | { readonly from: 'any' };

interface Sketch {
  readonly op: Command['op'];
  readonly addr: AddrSketch;
  readonly pfn: PfnSketch;
  readonly len: LenSketch;
  readonly prot: Prot;
  readonly change: ProtChange;
  readonly flag: boolean;
  /** CPA_COLLAPSE: asked for by most set_memory_rox changes (its one kernel user) and a few others. */
  readonly collapse: number;
  /** Undo or revisit the last partner command (see PARTNER), instead of a fresh address. */
  readonly repeat: boolean;
  readonly maxPage: PageSize | undefined;
  readonly size: '2M' | '1G';
  readonly cpu: number;
  readonly root: number;
  readonly kind: AccessKind;
  readonly mode: AccessMode;
  readonly pid: number;
  /** unmap: vunmap_range_noflush (flush: false). */
  readonly lazy: boolean;
  /** flush / flushLocal: mostly a few pages near a recent address, sometimes past the ceiling. */
  readonly near: AddrSketch;
  readonly flushLen: LenSketch;
  readonly frames: FramesSketch;
  readonly frameCount: number;
  /** A free choice (0..23, so uniform modulo 2, 3, 4 and 8) for the argument shapes of fuzz/processes.ts that need one of their own. */
  readonly pick: number;
}

/** One element of a sequence before resolution: a command, or a lifecycle block of several. */
type Element = { readonly one: Sketch } | { readonly block: BlockSketch };

const RECENT = 8;
/** Most 4K leaves one command may create (see `mapPages`). */
const MAX_4K_LEAVES = 600;

const deltaArb: fc.Arbitrary<number> = fc.oneof(
  { weight: 8, arbitrary: fc.constant(0) },
  { weight: 3, arbitrary: fc.integer({ min: -2, max: 2 }) },
  { weight: 2, arbitrary: fc.constantFrom(-513, -512, -511, 511, 512, 513, G1 - 1, G1, -G1) },
  { weight: 2, arbitrary: fc.integer({ min: -4096, max: 4096 }) },
  { weight: 1, arbitrary: fc.integer({ min: -2 * G1, max: 2 * G1 }) },
);

function addrArb(poolSize: number, interior: boolean): fc.Arbitrary<AddrSketch> {
  const edges: fc.WeightedArbitrary<AddrSketch>[] = [
    { weight: 5, arbitrary: fc.record({ from: fc.constant('pool' as const), i: fc.nat(poolSize - 1), delta: deltaArb }) },
    { weight: 4, arbitrary: fc.record({ from: fc.constant('recent' as const), k: fc.nat(RECENT - 1), delta: deltaArb }) },
    { weight: 1, arbitrary: fc.record({ from: fc.constant('recentEnd' as const), k: fc.nat(RECENT - 1) }) },
    { weight: 1, arbitrary: fc.record({ from: fc.constant('alias' as const), k: fc.nat(RECENT - 1) }) },
  ];
  const inside: fc.WeightedArbitrary<AddrSketch> = { weight: 3, arbitrary: fc.record({ from: fc.constant('region' as const), r: fc.nat(), at: fc.nat() }) };
  return fc.oneof(...edges, ...(interior ? [inside] : []));
}

function pfnArb(poolSize: number): fc.Arbitrary<PfnSketch> {
  return fc.oneof(
    { weight: 4, arbitrary: fc.record({ from: fc.constant('pool' as const), i: fc.nat(poolSize - 1), delta: fc.oneof(fc.constant(0), fc.integer({ min: -3, max: 600 })) }) },
    { weight: 2, arbitrary: fc.record({ from: fc.constant('aliasOf' as const), k: fc.nat(RECENT - 1) }) },
    { weight: 3, arbitrary: fc.record({ from: fc.constant('congruent' as const), i: fc.nat(poolSize - 1), size: fc.constantFrom('2M' as const, '1G' as const) }) },
  );
}

function lenArb(regions: number): fc.Arbitrary<LenSketch> {
  const fixed = (a: fc.Arbitrary<number>): fc.Arbitrary<LenSketch> => a.map((n) => ({ kind: 'fixed' as const, n }));
  return fc.oneof(
    { weight: 8, arbitrary: fixed(fc.constant(1)) },
    { weight: 4, arbitrary: fixed(fc.integer({ min: 2, max: 16 })) },
    { weight: 4, arbitrary: fixed(fc.constantFrom(511, 512, 513, 1024, 1536)) },
    { weight: 2, arbitrary: fixed(fc.constantFrom(G1 - 1, G1, G1 + 1)) },
    { weight: 2, arbitrary: fixed(fc.integer({ min: 1, max: 4096 })) },
    { weight: 1, arbitrary: fc.nat(regions - 1).map((i) => ({ kind: 'region' as const, i })) },
    // EINVAL on purpose.
    { weight: 1, arbitrary: fixed(fc.constantFrom(0, -1)) },
  );
}

/** A recent address mostly: a flush follows the change it flushes. */
function nearArb(poolSize: number): fc.Arbitrary<AddrSketch> {
  return fc.oneof(
    { weight: 6, arbitrary: fc.record({ from: fc.constant('recent' as const), k: fc.nat(RECENT - 1), delta: fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: -16, max: 16 }) }) }) },
    { weight: 1, arbitrary: fc.record({ from: fc.constant('recentEnd' as const), k: fc.nat(RECENT - 1) }) },
    { weight: 2, arbitrary: fc.record({ from: fc.constant('pool' as const), i: fc.nat(poolSize - 1), delta: deltaArb }) },
  );
}

const CEILING = TLB_SINGLE_PAGE_FLUSH_CEILING;

/**
 * Flush lengths: one page and a few (INVLPG page by page) mostly, the ceiling and one
 * past it (flush_tlb_kernel_range's switch to a full flush), longer ones, and the
 * ordinary lengths (2M, 1G, a region, invalid ones) now and then.
 */
function flushLenArb(regions: number): fc.Arbitrary<LenSketch> {
  const fixed = (a: fc.Arbitrary<number>): fc.Arbitrary<LenSketch> => a.map((n) => ({ kind: 'fixed' as const, n }));
  return fc.oneof(
    { weight: 6, arbitrary: fixed(fc.constant(1)) },
    { weight: 5, arbitrary: fixed(fc.integer({ min: 2, max: CEILING })) },
    { weight: 3, arbitrary: fixed(fc.constantFrom(CEILING, CEILING + 1)) },
    { weight: 3, arbitrary: fixed(fc.integer({ min: CEILING + 1, max: 1024 })) },
    { weight: 2, arbitrary: lenArb(regions) },
  );
}

function framesArb(): fc.Arbitrary<FramesSketch> {
  return fc.oneof(
    { weight: 4, arbitrary: fc.record({ from: fc.constant('tracked' as const), k: fc.nat(RECENT - 1) }) },
    { weight: 3, arbitrary: fc.record({ from: fc.constant('takeable' as const), i: fc.nat(), at: fc.nat() }) },
    { weight: 2, arbitrary: fc.constant({ from: 'any' as const }) },
  );
}

/** Frames per allocFrames / freeFrames: one page, a small folio, a 2M one; 0 is EINVAL. */
const frameCountArb: fc.Arbitrary<number> = fc.oneof(
  { weight: 6, arbitrary: fc.constant(1) },
  { weight: 3, arbitrary: fc.integer({ min: 2, max: 16 }) },
  { weight: 1, arbitrary: fc.constantFrom(0, 512) },
);

/** true once in n. */
const oneIn = (n: number): fc.Arbitrary<boolean> =>
  fc.oneof({ weight: n - 1, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) });

/**
 * Protections, including ones the system must refuse: W+X (CONFIG_DEBUG_WX), user pages
 * in the kernel half, and combinations x86 cannot encode (user execute without kernel).
 */
const protArb: fc.Arbitrary<Prot> = fc
  .record({
    write: fc.boolean(),
    exec: oneIn(4),
    user: oneIn(9),
    nonGlobal: oneIn(5),
    cache: fc.oneof({ weight: 3, arbitrary: fc.constant<CacheMode>('WB') }, { weight: 1, arbitrary: fc.constantFrom(...CACHE_MODES) }),
    unrepresentable: oneIn(21),
  })
  .map(({ write, exec, user, nonGlobal, cache, unrepresentable }) => ({
    write, user, execKernel: exec, execUser: unrepresentable ? !(user && exec) : user && exec, global: !nonGlobal, cache,
  }));

/** set_memory_ro/rw/x/nx/wc/uc/wb/global/nonglobal/np/p/4k, set_memory_rox's change, and combinations of them. */
const changeArb: fc.Arbitrary<ProtChange> = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom<ProtChange>({ write: false }, { write: true }, { exec: true }, { exec: false }, { cache: 'WC' }, { cache: 'UC-' }, { cache: 'WB' }) },
  // WT and WP need the PAT bit, which moves between bit 7 (4K) and bit 12 (2M/1G) on split.
  { weight: 1, arbitrary: fc.constantFrom<ProtChange>({ cache: 'WT' }, { cache: 'WP' }, { cache: 'UC' }) },
  { weight: 2, arbitrary: fc.constantFrom<ProtChange>({ write: false, exec: true }, { write: true, exec: false }, { global: false }, { global: true }) },
  { weight: 2, arbitrary: fc.constantFrom<ProtChange>({ present: false }, { present: true }, { kernel4k: true }) },
  {
    weight: 1,
    arbitrary: fc.record(
      { write: fc.boolean(), exec: fc.boolean(), global: fc.boolean(), cache: fc.constantFrom(...CACHE_MODES), present: fc.boolean(), kernel4k: fc.constant(true) },
      { requiredKeys: [] },
    ),
  },
);

function sketchArb(scenario: Scenario, vpns: number, pfns: number, ops: readonly Op[], interior: boolean): fc.Arbitrary<Sketch> {
  const cpus = scenario.config.cpus;
  return fc.record({
    op: fc.oneof(...ops.map((op) => ({ weight: OPERATIONS[op].fuzz.weight, arbitrary: fc.constant(op) }))),
    addr: addrArb(vpns, interior),
    pfn: pfnArb(pfns),
    len: lenArb(scenario.regions.length),
    prot: protArb,
    change: changeArb,
    flag: fc.boolean(),
    collapse: fc.nat(5),
    repeat: oneIn(3),
    maxPage: fc.constantFrom<PageSize | undefined>(undefined, undefined, '4K', '2M', '1G'),
    size: fc.constantFrom('2M' as const, '1G' as const),
    // One CPU past the last: EINVAL.
    cpu: fc.oneof({ weight: 12, arbitrary: fc.nat(cpus - 1) }, { weight: 1, arbitrary: fc.constant(cpus) }),
    // Root 0 is init_mm; another root is EINVAL until isolation exists.
    root: fc.oneof({ weight: 30, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.constant(1) }),
    kind: fc.constantFrom<AccessKind>('r', 'w', 'x'),
    mode: fc.oneof({ weight: 4, arbitrary: fc.constant<AccessMode>('kernel') }, { weight: 1, arbitrary: fc.constant<AccessMode>('user') }),
    pid: fc.nat(3),
    lazy: oneIn(3),
    near: nearArb(vpns),
    flushLen: flushLenArb(scenario.regions.length),
    frames: framesArb(),
    frameCount: frameCountArb,
    pick: fc.nat(23),
  });
}

function blockArb(kinds: readonly LifecycleKind[]): fc.Arbitrary<BlockSketch> {
  return fc.record({
    kind: fc.oneof(...kinds.map((k) => ({ weight: LIFECYCLES[k].weight, arbitrary: fc.constant(k) }))),
    end: fc.boolean(),
    at: fc.nat(),
    size: fc.nat(),
    rox: fc.boolean(),
  });
}

/** A sequence element: one operation (weighted as the table says) or, at the lifecycles' weights, a block. */
function elementArb(scenario: Scenario, vpns: number, pfns: number, ops: readonly Op[], kinds: readonly LifecycleKind[], interior: boolean): fc.Arbitrary<Element> {
  const one = sketchArb(scenario, vpns, pfns, ops, interior).map((s): Element => ({ one: s }));
  if (kinds.length === 0) return one;
  const opWeight = ops.reduce((n, op) => n + OPERATIONS[op].fuzz.weight, 0);
  const blockWeight = kinds.reduce((n, k) => n + LIFECYCLES[k].weight, 0);
  return fc.oneof(
    { weight: opWeight, arbitrary: one },
    { weight: blockWeight, arbitrary: blockArb(kinds).map((b): Element => ({ block: b })) },
  );
}

/**
 * Turns sketches into commands, remembering the last few addresses so later commands
 * can return to them. Deterministic: the same sketches give the same commands.
 */
class Resolver {
  private readonly recent: { vpn: Vpn; pages: number }[] = [];
  private readonly last = new Map<Command['op'], Command>();
  /**
   * Frames the sequence so far believes free (freed by a freeFrames, or free in the
   * scenario) and allocated (by an allocFrames), newest first: what allocFrames and
   * freeFrames return to. A belief: the commands may have failed.
   */
  private readonly freed: { pfn: Pfn; count: number }[] = [];
  private readonly allocated: { pfn: Pfn; count: number }[] = [];
  private readonly lifecycles: LifecycleResolver;
  /** The frames of each CPU's newest mermapGet. */
  private readonly mermapFrames = new Map<number, { pfn: Pfn; count: number }>();
  /** Mappings outside the linear maps, newest first: the boot's and the sequence's own maps, to find the frame behind an address. */
  private readonly mapped: { vpn: Vpn; pfn: Pfn; pages: number }[] = [];

  private readonly pageOffset: Vpn;
  private readonly kernelText: Vpn;
  /** The processes the sequence believes alive (isolation operations only). */
  private readonly processes = new ProcessBelief();
  /** The clients' areas, slots and pool as the sequence believes them, and their rule for every command (fuzz/clients.ts). */
  private readonly clientBelief: ClientBelief;
  /** Whether the sequence has client commands. */
  private readonly clients: boolean;

  constructor(
    private readonly scenario: Scenario,
    private readonly vpns: readonly Vpn[],
    private readonly pfns: readonly Pfn[],
    private readonly takeable: readonly { pfn: Pfn; count: number }[],
    private readonly isolation: boolean,
    clients: boolean,
    private readonly ops: ReadonlySet<Op> | undefined,
  ) {
    ({ pageOffset: this.pageOffset, kernelText: this.kernelText } = kernelLayout(scenario.config.levels));
    // The clients' rule holds for every sequence (the built-in systems have the capability,
    // so their states carry its bookkeeping): only the client commands need `clients`.
    this.clientBelief = new ClientBelief(scenario);
    this.clients = clients;
    this.lifecycles = new LifecycleResolver(scenario, { isolation, clients, nextPid: () => this.processes.nextPid });
    for (const r of scenario.frames) if (r.use === 'free' && this.freed.length < RECENT) this.freed.push({ pfn: r.pfn, count: r.count });
    for (const c of scenario.boot) if (c.op === 'map') this.noteMapping(c.vpn, c.pfn, c.pages);
  }

  private noteMapping(vpn: Vpn, pfn: Pfn, pages: number): void {
    // The linear maps need no record: their frame is the address minus their base.
    if (vpn - pfn === this.pageOffset || vpn - pfn === this.kernelText) return;
    this.mapped.unshift({ vpn, pfn, pages });
    if (this.mapped.length > 4 * RECENT) this.mapped.pop();
  }

  /** The frame behind v as far as the sequence knows: the linear maps' arithmetic, else the newest mapping covering it. */
  private frameBehind(v: Vpn): Pfn | undefined {
    const m = this.mapped.find((r) => v >= r.vpn && v < r.vpn + r.pages);
    if (m !== undefined) return m.pfn + (v - m.vpn);
    const pfn = v >= this.kernelText ? v - this.kernelText : v - this.pageOffset;
    return pfn >= 0 && pfn < this.scenario.config.frames ? pfn : undefined;
  }

  /** An element's commands: one, or a lifecycle block's. */
  resolveElement(e: Element): Command[] {
    if ('one' in e) {
      // An operation on a process mostly meets one: where none is believed alive, three in
      // four are preceded by the createProcess that makes it (the fourth is ENOENT).
      const s = e.one;
      const before: Command[] = [];
      if (this.isolation && actsOnProcess(s.op) && !this.processes.anyAlive() && s.pid % 4 !== 3) {
        const create: Command = { op: 'createProcess' };
        this.note(create);
        before.push(create);
      }
      // An unmapUser or a zap mostly meets a mapping too: where none is believed, the mapUser that makes one first.
      const unmapsUser = s.op === 'unmapUser' || s.op === 'zapPageRange';
      if (this.isolation && unmapsUser && !this.processes.anyMapping() && s.pid % 4 !== 3) before.push(this.resolve({ ...s, op: 'mapUser', repeat: false }));
      // A client operation on a process (zapPageRange) takes its fields as the process operations do.
      if (this.clients && OPERATIONS[s.op].capability === 'clients' && OPERATIONS[s.op].alsoIsolation !== true) return [...before, ...this.resolveClient(s)];
      const c = this.resolve(s);
      // A zap mostly meets pages the process used: its user copy caches them, and the gather must flush before it frees.
      if (c.op === 'zapPageRange' && s.flag) return [...before, { op: 'access', cpu: s.cpu, root: processRootIds(c.pid).userRoot, vpn: c.vpn, kind: 'r', mode: 'user' }, c];
      return [...before, c];
    }
    const block = this.lifecycles.block(e.block).map((c) => this.clientBelief.discipline(c));
    // Half a kernel path is not what the block stands for: one the system cannot run goes whole.
    if (this.ops !== undefined && block.some((c) => !this.ops!.has(c.op))) return [];
    // A workload block is a dozen commands of its own addresses and frames: the beliefs
    // learn them all, but the recent addresses and tracked frames only its first, so the
    // random commands around it keep drawing from the whole sequence.
    const workload = isWorkloadKind(e.block.kind);
    for (const [i, c] of block.entries()) {
      if (workload && i > 0) this.noteBeliefs(c);
      else this.note(c);
    }
    return block;
  }

  /** A client command (fuzz/clients.ts), with what the belief puts before and after it. */
  private resolveClient(s: Sketch): Command[] {
    const vpn = this.vpn(s.addr);
    const draw = { vpn, pfn: this.pfn(s.pfn, vpn), pages: this.pages(s.len), cpu: s.cpu, prot: s.prot, flag: s.flag, pick: s.frameCount * 7 + s.collapse + s.pid };
    const belief = this.clientBelief;
    const commands = belief.resolve(s.op, draw).map((c) => belief.discipline(c));
    for (const c of commands) this.note(c);
    // Half the puts are followed by the free a careless caller makes before the flush the
    // mermap asks for (C1), of the frames of the put CPU's newest allocation: the put is
    // mostly of it. Read after the commands are noted: a put that came with its own
    // mermapGet is of that allocation, not of the one the CPU had before.
    const put = commands.at(-1);
    const got = put?.op === 'mermapPut' ? this.mermapFrames.get(put.cpu) : undefined;
    if (!s.flag || got === undefined) return commands;
    const free: Command = { op: 'freeFrames', pfn: got.pfn, count: got.count };
    this.note(free);
    return [...commands, free];
  }

  /** The frames of an allocFrames / freeFrames. */
  private frameRange(s: Sketch, pfn: Pfn): { pfn: Pfn; count: number } {
    const f = s.frames;
    const count = s.frameCount;
    if (f.from === 'tracked') {
      const list = s.op === 'allocFrames' ? this.freed : this.allocated;
      const r = list.length === 0 ? undefined : list[f.k % list.length]!;
      // Part of a tracked run, from its start (one frame of a freed folio) or whole.
      if (r !== undefined) return { pfn: r.pfn, count: count === 0 || count > r.count ? r.count : count };
    }
    // Nothing tracked yet: frames that can be taken whole.
    const take = f.from === 'takeable' ? f : f.from === 'tracked' ? { i: f.k, at: 0 } : undefined;
    if (take !== undefined && this.takeable.length > 0) {
      const r = this.takeable[take.i % this.takeable.length]!;
      return { pfn: r.pfn + (take.at % Math.max(1, r.count - count)), count };
    }
    return { pfn, count };
  }

  /** Bookkeeping after a command: the partner table, recent addresses, believed frame use. */
  /** What every command teaches: the partner table, the processes and the clients' state. */
  private noteBeliefs(command: Command): void {
    this.last.set(command.op, command);
    this.processes.note(command);
    this.clientBelief.note(command);
  }

  private note(command: Command): void {
    this.noteBeliefs(command);
    // A map's frames are also reached through their direct-map alias: remember it (before
    // the mapping itself, which stays the most recent), so that later accesses, protects
    // and flushes meet the alias CPA changes too (cpa_process_alias, missed alias flushes).
    if (command.op === 'map') {
      this.noteMapping(command.vpn, command.pfn, command.pages);
      this.remember(this.pageOffset + command.pfn, command.pages);
    }
    // Kernel addresses only: a user-half page (mapUser, unmapUser) means nothing to init_mm.
    const fields = OPERATIONS[command.op].fields as Readonly<Record<string, FieldKind>>;
    if ('vpn' in command && fields['vpn'] === 'vpn') this.remember(command.vpn, 'pages' in command ? command.pages : 1);
    else if ('pfn' in command && !('vpn' in command)) this.remember(this.pageOffset + command.pfn, 'count' in command ? command.count : 'pages' in command ? command.pages : 1);
    const track = (into: { pfn: Pfn; count: number }[], from: { pfn: Pfn; count: number }[], r: { pfn: Pfn; count: number }): void => {
      const i = from.findIndex((x) => x.pfn === r.pfn);
      if (i >= 0) from.splice(i, 1);
      into.unshift({ pfn: r.pfn, count: r.count });
      if (into.length > RECENT) into.pop();
    };
    if (command.op === 'allocFrames' && command.count > 0) track(this.allocated, this.freed, command);
    if (command.op === 'mermapGet') this.mermapFrames.set(command.cpu, { pfn: command.pfn, count: command.pages });
    if (command.op === 'freeFrames' && command.count > 0) track(this.freed, this.allocated, command);
  }

  private recentAt(k: number): { vpn: Vpn; pages: number } | undefined {
    return this.recent.length === 0 ? undefined : this.recent[k % this.recent.length];
  }

  private vpn(a: AddrSketch): Vpn {
    const fallback = (): Vpn => this.vpns[0]!;
    switch (a.from) {
      case 'pool': return this.vpns[a.i % this.vpns.length]! + a.delta;
      case 'recent': { const r = this.recentAt(a.k); return r === undefined ? fallback() : r.vpn + a.delta; }
      case 'recentEnd': { const r = this.recentAt(a.k); return r === undefined ? fallback() : r.vpn + Math.max(r.pages, 1); }
      case 'alias': {
        const r = this.recentAt(a.k);
        const pfn = r === undefined ? undefined : this.frameBehind(r.vpn);
        return pfn === undefined ? fallback() : this.pageOffset + pfn;
      }
      case 'region': {
        const g = this.scenario.regions[a.r % this.scenario.regions.length];
        return g === undefined ? fallback() : g.vpn + (a.at % Math.max(1, g.pages));
      }
    }
  }

  private pfn(p: PfnSketch, vpn: Vpn): Pfn {
    switch (p.from) {
      case 'pool': return Math.max(0, this.pfns[p.i % this.pfns.length]! + p.delta);
      case 'aliasOf': {
        const r = this.recentAt(p.k);
        // The frame behind it (the linear maps' arithmetic, or a mapping the sequence knows); else a pool frame.
        return this.frameBehind(r === undefined ? vpn : r.vpn) ?? this.pfns[p.k % this.pfns.length]!;
      }
      case 'congruent': {
        const block = PAGES[p.size];
        return alignDown(this.pfns[p.i % this.pfns.length]!, block) + (((vpn % block) + block) % block);
      }
    }
  }

  private pages(l: LenSketch): number {
    return l.kind === 'fixed' ? l.n : this.scenario.regions[l.i % this.scenario.regions.length]!.pages;
  }

  /**
   * A map that can only use 4K leaves (maxPage 4K, or vpn and pfn not congruent modulo 2M)
   * is capped: a 1G range of 4K leaves would make every later check walk 262,144 leaves
   * without exercising anything a few hundred do not.
   */
  private mapPages(maxPage: PageSize | undefined, vpn: Vpn, pfn: Pfn, pages: number): number {
    const only4K = maxPage === '4K' || !this.scenario.config.features.pse || (vpn - pfn) % M2 !== 0;
    return only4K ? Math.min(pages, MAX_4K_LEAVES) : pages;
  }

  private remember(vpn: Vpn, pages: number): void {
    this.recent.unshift({ vpn, pages });
    if (this.recent.length > RECENT) this.recent.pop();
  }

  resolve(s: Sketch): Command {
    const revisit = OPERATIONS[s.op].fuzz.revisit;
    const prev = s.repeat && revisit !== undefined ? this.last.get(revisit.partner) : undefined;
    const flushing = s.op === 'flush' || s.op === 'flushLocal';
    const vpn = this.vpn(flushing ? s.near : s.addr);
    const fresh = this.build(s, vpn, this.pfn(s.pfn, vpn), this.pages(flushing ? s.flushLen : s.len));
    // A revisit is the fresh command with the fields it keeps taken from its partner's last command.
    const kept = prev === undefined ? fresh : ({ ...fresh, ...pick(prev, revisit!.keep) } as Command);
    // A mapUser taking its partner's address is capped again: the address it now has may allow 4K leaves only.
    const capped = kept.op === 'mapUser' && prev !== undefined ? { ...kept, pages: this.mapPages(undefined, kept.vpn, kept.pfn, kept.pages) } : kept;
    const reused = capped.op === 'map' && prev?.op === 'unmap' ? this.reuseArea(capped, prev) : capped;
    const command = this.clientBelief.discipline(reused);
    this.note(command);
    return command;
  }

  /**
   * A map revisiting an unmap takes over the 2M block the unmap emptied: the block's first
   * page, a frame congruent to it and the whole block, so that a huge leaf can land on
   * the tables the unmap left behind (vmap_try_huge_pmd over a kept PTE table under linux,
   * a pending one under strict) unless its maxPage forbids it.
   */
  private reuseArea(c: CommandOf<'map'>, unmapped: CommandOf<'unmap'>): Command {
    const vpn = alignDown(unmapped.vpn, M2);
    return { ...c, vpn, pfn: alignDown(c.pfn, M2), pages: M2 };
  }

  /** The value of one field of the sketch's command, by its kind in the operation table. */
  private field(kind: FieldKind, s: Sketch, vpn: Vpn, pfn: Pfn, pages: number): unknown {
    switch (kind) {
      // With isolation, translate and access also walk the PTI, ASI and process roots.
      case 'root': return this.isolation && (s.op === 'translate' || s.op === 'access') ? this.processes.root(s.pid * 6 + s.collapse) : s.root;
      case 'vpn': return vpn;
      // User-half addresses: where a process lays out its mappings, or one it mapped recently.
      case 'userVpn': return this.processes.userVpn(vpn % 97, s.collapse);
      case 'pfn': return pfn;
      case 'pages': return pages;
      // Counts stay small: secretmem and guest_memfd remove a few pages at a time, and each restored frame is a 4K leaf.
      case 'count': return Math.min(pages, MAX_4K_LEAVES);
      case 'cpu': return s.cpu;
      case 'pid': return this.processes.pid(s.pid);
      case 'prot': return s.op === 'mapUser' ? userProt(s.prot, s.frameCount) : s.prot;
      case 'change': return s.change;
      case 'maxPage': return s.maxPage;
      case 'hugeSize': return s.size;
      case 'cloneLevel': return s.flag ? 'pmd' : 'pte';
      case 'accessKind': return s.kind;
      case 'accessMode': return s.mode;
      case 'flush': return s.flag;
      case 'lazy': return s.lazy ? false : undefined;
      case 'alias': return s.flag ? true : undefined;
      case 'collapse': return s.collapse === 0 || (s.collapse < 4 && s.change.write === false && s.change.exec === true) ? true : undefined;
      // The client operations resolve their own fields (fuzz/clients.ts); a command built here gets the sketch's flags.
      case 'huge': return s.flag;
      case 'resetPerms': return s.lazy;
    }
  }

  private build(s: Sketch, vpn: Vpn, pfn: Pfn, pages: number): Command {
    const c: Record<string, unknown> = { op: s.op };
    for (const [name, kind] of fieldsOf(s.op)) {
      const value = this.field(kind, s, vpn, pfn, pages);
      if (value !== undefined) c[name] = value;
    }
    if (s.op === 'allocFrames' || s.op === 'freeFrames') {
      const r = this.frameRange(s, pfn);
      c['pfn'] = r.pfn;
      c['count'] = r.count;
    }
    if (s.op === 'asiMap' || s.op === 'asiUnmap') Object.assign(c, asiRange(this.scenario, vpn, pfn, pages, s.frameCount));
    if (s.op === 'ptiClone') Object.assign(c, ptiRange(this.scenario, vpn, pages, s.pick));
    if (s.op === 'unmapUser' || s.op === 'zapPageRange') Object.assign(c, this.processes.unmapRange(c as unknown as CommandOf<'unmapUser'>, s.collapse));
    if (s.op === 'setLdt') Object.assign(c, { pfn: ldtPfn(this.scenario, pfn, s.pick, this.processes.lastLdt), pages: ldtPages(pages, s.frameCount) });
    // An access or translate through a process root looks at the user half half the time.
    if ((s.op === 'access' || s.op === 'translate') && (c['root'] as number) >= 3 && s.flag) c['vpn'] = this.processes.userVpn(s.cpu, s.collapse);
    // A command that creates mappings and can only use 4K leaves is capped (see mapPages).
    if (typeof c['pfn'] === 'number' && typeof c['pages'] === 'number') {
      c['pages'] = this.mapPages(c['maxPage'] as PageSize | undefined, c['vpn'] as Vpn, c['pfn'], c['pages']);
    }
    // set_memory_4k makes every page of its range a 4K entry: capped the same way.
    if ((c['change'] as ProtChange | undefined)?.kernel4k === true) c['pages'] = Math.min(c['pages'] as number, MAX_4K_LEAVES);
    // A user mapping's frames from the page allocator, for the capped length: they keep the
    // drawn frame's offset in its 2M block, so the cap above still holds.
    if (s.op === 'mapUser') c['pfn'] = userPfn(this.scenario, pfn, c['pages'] as number, s.pick);
    return c as unknown as Command;
  }
}

/** The named fields of a command. */
function pick(c: Command, keys: readonly string[]): Record<string, unknown> {
  const all = c as unknown as Record<string, unknown>;
  return Object.fromEntries(keys.filter((k) => k in all).map((k) => [k, all[k]]));
}

/**
 * Sequences of commands for every core operation (and the isolation operations when
 * asked), with clustered addresses, lengths biased to 1, 511/512/513, 1G and whole
 * regions, mixed maxPage, and protections the system must refuse; with `swarm`, each
 * sequence on its own subset of them. The result is plain `Command[]` data, also after
 * shrinking.
 */
export function commandsArb(scenario: Scenario, opts: CommandsArbOptions): fc.Arbitrary<Command[]> {
  const vpns = vpnPool(scenario);
  const pfns = pfnPool(scenario);
  const takeable = blockFrameRuns(scenario);
  const short = Math.round(Math.min(1, Math.max(0, opts.shortFraction ?? 0)) * 100);
  /** Sequences drawing their operations from `ops`, weighted as the operation table says. */
  const sequencesOf = (ops: readonly Op[], kinds: readonly LifecycleKind[]): fc.Arbitrary<Command[]> => {
    const element = elementArb(scenario, vpns.length, pfns.length, ops, kinds, opts.interior === true);
    const upTo = (maxLength: number): fc.Arbitrary<Element[]> => fc.array(element, { maxLength, size: 'max' });
    const shortOnes = upTo(Math.ceil(opts.maxCommands / 8));
    const longOnes = upTo(opts.maxCommands);
    const lengths = short === 0 ? longOnes
      : short === 100 ? shortOnes
      : fc.oneof({ weight: short, arbitrary: shortOnes }, { weight: 100 - short, arbitrary: longOnes });
    return lengths.map((elements) => {
      const r = new Resolver(scenario, vpns, pfns, takeable, opts.isolation === true, opts.clients === true, opts.ops);
      // A block is several commands: the sequence still ends at maxCommands.
      return elements.flatMap((e) => r.resolveElement(e)).slice(0, opts.maxCommands);
    });
  };
  const offered = (op: Op): boolean => {
    const cap = OPERATIONS[op].capability;
    const clients = cap === 'clients' && opts.clients === true && (OPERATIONS[op].alsoIsolation !== true || opts.isolation === true);
    const implemented = opts.ops === undefined || opts.ops.has(op);
    return implemented && (cap === 'core' || (cap === 'isolation' && opts.isolation === true) || clients);
  };
  const ops = OPS.filter(offered);
  if (opts.swarm !== true) return sequencesOf(ops, LIFECYCLE_KINDS);
  const kept = fc.tuple(...ops.map((op) => (op === SWARM_ALWAYS ? fc.constant(true) : fc.boolean())), ...LIFECYCLE_KINDS.map(() => fc.boolean()));
  return kept.chain((keep) => {
    const subset = ops.filter((_, i) => keep[i]);
    // An operation on a process needs one to exist: the subset keeps createProcess with them.
    const needsProcess = subset.some(actsOnProcess);
    const withProcesses = needsProcess && !subset.includes('createProcess') ? [...subset, 'createProcess' as Op] : subset;
    return sequencesOf(withProcesses, LIFECYCLE_KINDS.filter((_, i) => keep[ops.length + i]));
  });
}

/** An operation on an existing process (it names a pid), which needs a createProcess before it. */
const actsOnProcess = (op: Op): boolean => op !== 'createProcess' && 'pid' in OPERATIONS[op].fields;

/** The operation every swarm subset keeps (see CommandsArbOptions.swarm). */
const SWARM_ALWAYS: Op = 'map';
