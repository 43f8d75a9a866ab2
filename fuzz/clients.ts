/**
 * What the command generator believes about the clients capability
 * (spec/contracts/clients.ts): the vmalloc areas it allocated, each CPU's kmap_local
 * stack and mermap allocations, the frames it took for the unmapped pool. With it a
 * client command mostly names what exists (vfree of a live area, kunmap_local of the top
 * slot, mermap_put of an allocation the CPU holds, add_memory of the scenario's hotplug
 * space and remove_memory of a block it added), and sometimes what does not (ENOENT, the
 * out-of-order EINVAL, a block of RAM). A belief: a command may have failed.
 *
 * It also keeps the clients' rule for the other commands (`discipline`): a CPU-local
 * mapping is touched only by its own CPU and only through its client, so an access to a
 * kmap_local slot or a mermap slice runs on the CPU that owns it, and a core command that
 * would map, unmap or change pages there (or unmap a live vmalloc area, which only its
 * vfree does) is moved out of the way. Breaking that rule is the client's bug (C2, C3, C4,
 * C5), not the library's.
 */
import { PAGES, kernelLayout, type Pfn, type Vpn } from '../spec/address.ts';
import {
  KM_MAX_IDX, MEMMAP_PAGES, MEMORY_BLOCK_PAGES, MERMAP_ALLOCS, MERMAP_USABLE_PAGES, kmapRegion, kmapSlotOf, kmapSlotVpn, memoryBlocks,
  mermapCpuOf, mermapRegion, mermapSlice,
} from '../spec/clients.ts';
import type { Command, Op } from '../spec/commands.ts';
import { PAGEBLOCK_PAGES } from '../spec/contracts/isolation.ts';
import type { Scenario } from '../spec/scenario.ts';
import { INIT_MM, type Prot } from '../spec/state.ts';
import { blockFrameRuns, directMapOnlyRuns } from './lifecycles.ts';

const M2 = PAGES['2M'];
const G1 = PAGES['1G'];
/** The clients' vmalloc areas start 2G into the vmalloc region (past boot's and the lifecycle blocks'), 4M apart. */
const AREA_BASE = 2 * G1;
const APPLY_BASE = 3 * G1;
const AREA_STRIDE = 1024;
/** Small areas (a BPF program, a module section) and one huge one. */
const AREA_PAGES = [1, 2, 3, 8, 16, 64] as const;
/** The frames the clients take: 2M apart, from the end of the runs (the lifecycle blocks take from the start). */
const FRAME_STRIDE = 512;

/** What one client command is drawn from (the sketch's values, resolved as for any command). */
export interface ClientDraw {
  readonly vpn: Vpn;
  readonly pfn: Pfn;
  readonly pages: number;
  readonly cpu: number;
  readonly prot: Prot;
  readonly flag: boolean;
  /** A free choice among the variants (0..). */
  readonly pick: number;
}

/** The scenario's hotplug space: the memory blocks wholly inside its absent frame runs, in order. */
export function hotplugBlocks(scenario: Scenario): Pfn[] {
  return scenario.frames.filter((r) => r.use === 'absent').flatMap((r) => {
    const first = Math.ceil(r.pfn / MEMORY_BLOCK_PAGES) * MEMORY_BLOCK_PAGES;
    const end = Math.floor((r.pfn + r.count) / MEMORY_BLOCK_PAGES) * MEMORY_BLOCK_PAGES;
    return end > first ? memoryBlocks(first, end - first) : [];
  });
}

/** The range a command's vpn and pages (or one page) name. */
function rangeOf(c: Command): { vpn: Vpn; pages: number } | undefined {
  if (!('vpn' in c)) return undefined;
  return { vpn: c.vpn, pages: 'pages' in c && typeof c.pages === 'number' ? Math.max(1, c.pages) : 1 };
}

const meets = (a: { vpn: Vpn; pages: number }, b: { vpn: Vpn; pages: number }): boolean => a.vpn < b.vpn + b.pages && b.vpn < a.vpn + a.pages;

/** Core operations that change what init_mm maps at the pages they name. */
const MAPPING_OPS: ReadonlySet<Op> = new Set<Op>(['map', 'unmap', 'protect', 'split', 'collapse', 'ptiClone', 'asiMap', 'asiUnmap', 'applyToPageRange']);

export class ClientBelief {
  private readonly vmallocStart: Vpn;
  private readonly cpus: number;
  private readonly runs: readonly { pfn: Pfn; count: number }[];
  /** Data frames only the direct map maps: what kmap_local is mostly of. */
  private readonly dataRuns: readonly { pfn: Pfn; count: number }[];
  private readonly startsFree: boolean;
  private readonly local: readonly { vpn: Vpn; pages: number }[];
  /** Where the clients' vmalloc areas go. */
  private readonly areaZone: { vpn: Vpn; pages: number };
  private readonly areas: { vpn: Vpn; pages: number }[] = [];
  private readonly kmap: Vpn[][];
  private readonly mermap: { vpn: Vpn; pages: number }[][];
  private readonly mermapNext: Vpn[];
  /** Frames handed out from the unmapped pool (they are what the mermap is for). */
  private readonly unmapped: Pfn[] = [];
  /** The memory blocks of the scenario with no memory yet (its hotplug space), and those believed added. */
  private readonly pluggable: readonly Pfn[];
  private readonly added: Pfn[] = [];
  /**
   * Where a removal without a flush may have emptied a table that waits pending free,
   * newest first: an unmap or set_direct_map_invalid without flush, a kunmap_local, a
   * mermap_put, a vfree (a walker that follows such a table walks freed memory).
   */
  private readonly emptied: { vpn: Vpn; pages: number }[] = [];
  private frameSlot = 0;
  private areaSlot = 0;
  private applySlot = 0;

  constructor(private readonly scenario: Scenario) {
    const levels = scenario.config.levels;
    this.vmallocStart = kernelLayout(levels).vmallocStart;
    this.areaZone = { vpn: this.vmallocStart + AREA_BASE, pages: 4096 * AREA_STRIDE };
    this.cpus = scenario.config.cpus;
    this.runs = blockFrameRuns(scenario);
    this.dataRuns = directMapOnlyRuns(scenario, 'data');
    this.startsFree = scenario.frames.some((r) => r.use === 'free');
    this.local = [kmapRegion(this.cpus), mermapRegion(levels, this.cpus)];
    this.kmap = Array.from({ length: this.cpus }, () => []);
    this.mermap = Array.from({ length: this.cpus }, () => []);
    this.mermapNext = Array.from({ length: this.cpus }, (_, cpu) => mermapSlice(levels, cpu));
    this.pluggable = hotplugBlocks(scenario);
  }

  /**
   * The blocks an addMemory names: a block of hotplug space not believed added, two when
   * the next one is free too now and then; one added already (EEXIST) now and then, or a
   * block of RAM (EEXIST) when the scenario has no hotplug space.
   */
  private toAdd(d: ClientDraw): { pfn: Pfn; count: number } {
    const fresh = this.pluggable.filter((b) => !this.added.includes(b));
    if (fresh.length === 0 || d.pick % 8 === 7) {
      const again = this.added.length > 0 && d.pick % 2 === 0 ? this.added[d.pick % this.added.length] : undefined;
      return { pfn: again ?? Math.floor(d.pfn / MEMORY_BLOCK_PAGES) * MEMORY_BLOCK_PAGES, count: MEMORY_BLOCK_PAGES };
    }
    const b = fresh[d.pick % fresh.length]!;
    const two = d.pick % 5 === 0 && fresh.includes(b + MEMORY_BLOCK_PAGES);
    return { pfn: b, count: two ? 2 * MEMORY_BLOCK_PAGES : MEMORY_BLOCK_PAGES };
  }

  /** 2M-aligned frames for `count` pages that boot maps only through the direct map, a fresh slot each time. */
  private frames(pick: number): Pfn | undefined {
    if (this.runs.length === 0) return undefined;
    const r = this.runs[pick % this.runs.length]!;
    const last = Math.floor((r.pfn + r.count) / M2) * M2 - M2;
    const slots = Math.max(1, Math.floor((last - r.pfn) / FRAME_STRIDE / 2));
    return last - (this.frameSlot++ % slots) * FRAME_STRIDE;
  }

  /**
   * A data frame that boot maps only through the direct map (no slot taken: kmap_local
   * does not own it). Not of the free runs the blocks take from: a free frame is no page to
   * kmap (EPERM D4).
   */
  private dataFrame(pick: number): Pfn {
    const r = this.dataRuns[pick % Math.max(1, this.dataRuns.length)];
    return r === undefined ? pick : r.pfn + (pick % r.count);
  }

  /** The allocator gets frames back first when the scenario boots with none free (as the lifecycle blocks do). */
  private freed(pfn: Pfn, count: number): Command[] {
    return this.startsFree ? [] : [{ op: 'freeFrames', pfn, count }];
  }

  /** The commands of one client operation: the command, with what makes it meaningful before or after it. */
  resolve(op: Op, d: ClientDraw): Command[] {
    const odd = d.pick % 10 === 9;
    switch (op) {
      case 'vmalloc': {
        const huge = d.flag && d.pick % 3 === 0;
        const pages = huge ? M2 : AREA_PAGES[d.pick % AREA_PAGES.length]!;
        const pfn = this.frames(d.pick);
        if (odd || pfn === undefined) return [{ op, vpn: d.vpn, pfn: d.pfn, pages: d.pages, huge, resetPerms: d.flag }];
        const vpn = this.vmallocStart + AREA_BASE + (this.areaSlot++ % 4096) * AREA_STRIDE;
        const cmd: Command = { op, vpn, pfn, pages, huge, resetPerms: d.pick % 4 === 1 };
        const use: Command[] = d.pick % 2 === 0 ? [{ op: 'access', cpu: d.cpu, root: INIT_MM, vpn, kind: 'w', mode: 'kernel' }] : [];
        return [...this.freed(pfn, pages), cmd, ...use];
      }
      case 'vfree': {
        // With no live area, mostly the vmalloc that makes one first (as a process operation gets its createProcess).
        if (this.areas.length === 0 && d.pick % 4 !== 3) return this.after('vmalloc', d, (c) => ({ op, vpn: (c as { vpn: Vpn }).vpn }));
        const a = this.areas.length === 0 || odd ? undefined : this.areas[d.pick % this.areas.length]!;
        // Now and then the vm_unmap_aliases that purges the lazily freed areas at once (as vm_reset_perms and the
        // set_memory_* callers that need the aliases gone call it).
        const purge: Command[] = d.pick % 4 === 1 ? [{ op: 'vmUnmapAliases' }] : [];
        return [{ op, vpn: a?.vpn ?? (d.pick % 2 === 0 ? this.vmallocStart + AREA_BASE : d.vpn) }, ...purge];
      }
      case 'vmUnmapAliases': return [{ op }];
      case 'kmapLocal': {
        // A page the kernel would kmap (a data page only the direct map maps) mostly; an unmapped pool page (EPERM P7) or as drawn now and then.
        const pfn = this.unmapped.length > 0 && d.pick % 5 === 0 ? this.unmapped[0]! : d.pick % 5 === 1 ? d.pfn : this.dataFrame(d.pick);
        const stack = this.kmap[d.cpu % this.cpus]!;
        // Now and then nesting as deep as the slots go, and one more (the kernel's BUG_ON, strict's EBUSY).
        if (d.pick % 13 === 12) return Array.from({ length: KM_MAX_IDX - stack.length + 1 }, (): Command => ({ op, cpu: d.cpu, pfn }));
        const use: Command[] = stack.length < KM_MAX_IDX && d.pick % 2 === 0
          ? [{ op: 'access', cpu: d.cpu, root: INIT_MM, vpn: kmapSlotVpn(d.cpu % this.cpus, stack.length), kind: 'r', mode: 'kernel' }] : [];
        return [{ op, cpu: d.cpu, pfn }, ...use];
      }
      case 'kunmapLocal': {
        // The CPU with the deepest stack mostly, where an out-of-order unmap is possible.
        const deepest = this.kmap.reduce((best, st, i) => (st.length > this.kmap[best]!.length ? i : best), 0);
        const cpu = d.pick % 3 === 0 ? d.cpu % this.cpus : deepest;
        const stack = this.kmap[cpu]!;
        // With nothing mapped on it, mostly the kmap_local of that CPU first, then the walk a
        // kunmap_local may leave a pending table for (the path most kunmaps take).
        if (stack.length === 0 && d.pick % 4 !== 3) {
          return [...this.after('kmapLocal', { ...d, cpu }, () => ({ op, cpu, vpn: kmapSlotVpn(cpu, 0) })), ...this.walkAfter(kmapSlotVpn(cpu, 0), d)];
        }
        // The top mostly; the one below it (out of order) or a free slot now and then.
        const vpn = stack.length === 0 || d.pick % 8 === 7 ? kmapSlotVpn(cpu, d.pick % KM_MAX_IDX)
          : d.pick % 4 === 2 && stack.length > 1 ? stack[stack.length - 2]! : stack[stack.length - 1]!;
        return [{ op, cpu, vpn: odd ? d.vpn : vpn }, ...this.walkAfter(vpn, d)];
      }
      case 'mermapGet': {
        const cpu = d.cpu % this.cpus;
        const pages = 1 + (d.pick % 4 === 3 ? d.pages % (MERMAP_USABLE_PAGES + 1) : d.pick % 3);
        const pfn = this.unmapped.length > 0 && d.pick % 3 !== 2 ? this.unmapped[d.pick % this.unmapped.length]! : d.pfn;
        const at = this.mermapNext[cpu]!;
        const use: Command[] = d.pick % 2 === 0 ? [{ op: 'access', cpu, root: INIT_MM, vpn: at, kind: 'w', mode: 'kernel' }] : [];
        return [{ op, cpu, pfn, pages: odd ? d.pages : pages }, ...use];
      }
      case 'mermapPut': {
        const cpu = d.cpu % this.cpus;
        const held = this.mermap[cpu]!;
        if (held.length === 0 && d.pick % 4 !== 3) {
          const at = this.mermapNext[cpu]!;
          return this.after('mermapGet', { ...d, cpu }, () => ({ op, cpu, vpn: at }));
        }
        // One it holds mostly; its slice's start (ENOENT) or an address as drawn (EINVAL outside the kernel half) now and then.
        const vpn = odd ? d.vpn : held.length === 0 ? mermapSlice(this.scenario.config.levels, cpu) : held[d.pick % held.length]!.vpn;
        return [{ op, cpu, vpn }];
      }
      case 'allocUnmapped': {
        const count = 1 + (d.pick % 4);
        if (odd) return [{ op, pfn: d.pfn, count }];
        // A pageblock already taken (the frames freed back to it), or a fresh one.
        if (this.unmapped.length > 0 && d.pick % 3 === 0) return [{ op, pfn: this.unmapped[0]!, count: 1 }];
        const block = this.frames(d.pick);
        if (block === undefined) return [{ op, pfn: d.pfn, count }];
        return [...this.freed(block, PAGEBLOCK_PAGES), { op, pfn: block + (d.pfn % (PAGEBLOCK_PAGES - count)), count }];
      }
      case 'applyToPageRange': {
        // A fresh stretch of the vmalloc area (kasan's shadow, alloc_vm_area), the boot's huge area (EINVAL), or as drawn.
        const pages = 1 + (d.pages > 0 ? (d.pages - 1) % 64 : 0);
        const vpn = d.pick % 4 === 0 ? this.vmallocStart + M2 * 2 + (d.pick % M2)
          : d.pick % 4 === 1 ? d.vpn
          : this.vmallocStart + APPLY_BASE + (this.applySlot++ % 4096) * AREA_STRIDE + (d.pick % 3);
        return [{ op, vpn, pages, pfn: d.pfn, prot: d.prot }];
      }
      case 'addMemory': {
        if (odd) return [{ op, pfn: d.pfn, count: d.pages }];
        const blocks = this.toAdd(d);
        // The new memory in use: a write through its direct map fills a TLB entry the removal must flush.
        const use: Command[] = d.flag ? [{ op: 'access', cpu: d.cpu, root: INIT_MM, vpn: kernelLayout(this.scenario.config.levels).pageOffset + blocks.pfn + MEMMAP_PAGES + (d.pick % 64), kind: 'w', mode: 'kernel' }] : [];
        return [{ op, ...blocks }, ...use];
      }
      case 'removeMemory': {
        // With no block believed added, mostly the addMemory that makes one first.
        if (this.added.length === 0 && d.pick % 4 !== 3) return this.after('addMemory', d, (c) => ({ op, pfn: (c as { pfn: Pfn }).pfn, count: MEMORY_BLOCK_PAGES }));
        if (odd) return [{ op, pfn: d.pfn, count: d.pages }];
        // A block it added mostly; one of them with a page handed out first (EBUSY), or a block of RAM or of hotplug space not added (ENOENT).
        const b = this.added.length === 0 || d.pick % 6 === 5 ? (this.pluggable.find((x) => !this.added.includes(x)) ?? 0) : this.added[d.pick % this.added.length]!;
        const busy: Command[] = d.pick % 6 === 4 ? [{ op: 'allocFrames', pfn: b + MEMMAP_PAGES + (d.pick % 32), count: 1 }] : [];
        return [...busy, { op, pfn: b, count: MEMORY_BLOCK_PAGES }];
      }
      case 'walkPageRange': {
        // As drawn now and then (EINVAL); the 2M block of a recent removal without flush often:
        // a walk through the tables it may have left pending.
        if (odd) return [{ op, vpn: d.vpn, pages: d.pages }];
        const e = this.emptied.length > 0 && d.pick % 3 === 1 ? this.emptied[d.pick % this.emptied.length]! : undefined;
        if (e !== undefined) return [{ op, vpn: Math.floor(e.vpn / M2) * M2, pages: M2 }];
        const a = this.areas.length > 0 && d.pick % 3 === 0 ? this.areas[d.pick % this.areas.length]! : undefined;
        const pages = d.pick % 7 === 6 ? G1 : Math.max(1, Math.min(d.pages, 4096));
        return [{ op, vpn: a?.vpn ?? d.vpn, pages: a?.pages ?? pages }];
      }
      default: return [];
    }
  }

  /**
   * Half the time a walk of the 2M block a kunmap_local left without a flush of every CPU:
   * its emptied table waits pending free, a hole to the walker. (A mermap_put is followed
   * by its careless free instead, fuzz/arbitraries.ts; walkPageRange's own draws walk
   * where it left a table pending.)
   */
  private walkAfter(vpn: Vpn, d: ClientDraw): Command[] {
    return d.pick % 2 === 0 ? [{ op: 'walkPageRange', vpn: Math.floor(vpn / M2) * M2, pages: M2 }] : [];
  }

  /**
   * The commands of `first` (what makes something to undo), then `then` of its main
   * command: the one of that operation. The belief notes only what the resolver notes, so
   * the second command reads the first's fields, not the belief.
   */
  private after(first: Op, d: ClientDraw, then: (c: Command) => Command): Command[] {
    const made = this.resolve(first, d);
    const main = made.find((c) => c.op === first);
    return main === undefined ? made : [...made, then(main)];
  }

  /** After a command: what it did to the believed areas, stacks, allocations, pool and memory blocks. */
  note(c: Command): void {
    this.noteEmptied(c);
    switch (c.op) {
      // Every area it made is remembered (a forgotten one could be unmapped under its owner: C2).
      case 'vmalloc': this.areas.unshift({ vpn: c.vpn, pages: c.pages }); break;
      case 'vfree': { const i = this.areas.findIndex((a) => a.vpn === c.vpn); if (i >= 0) this.areas.splice(i, 1); break; }
      case 'kmapLocal': { const s = this.kmap[c.cpu % this.cpus]; if (s !== undefined && s.length < KM_MAX_IDX) s.push(kmapSlotVpn(c.cpu, s.length)); break; }
      case 'kunmapLocal': {
        const slot = kmapSlotOf(this.cpus, c.vpn);
        const s = slot === undefined ? undefined : this.kmap[slot.cpu];
        if (s !== undefined && s[s.length - 1] === c.vpn) s.pop();
        break;
      }
      case 'mermapGet': {
        const cpu = c.cpu % this.cpus;
        const held = this.mermap[cpu];
        if (held === undefined || held.length >= MERMAP_ALLOCS || c.pages < 1 || c.pages > MERMAP_USABLE_PAGES) break;
        const slice = mermapSlice(this.scenario.config.levels, cpu);
        let at = this.mermapNext[cpu]!;
        if (at + c.pages > slice + MERMAP_USABLE_PAGES) at = held.reduce((end, a) => Math.max(end, a.vpn + a.pages), slice);
        if (at + c.pages > slice + MERMAP_USABLE_PAGES) break;
        held.push({ vpn: at, pages: c.pages });
        this.mermapNext[cpu] = at + c.pages;
        break;
      }
      case 'mermapPut': {
        const cpu = mermapCpuOf(this.scenario.config.levels, this.cpus, c.vpn);
        const held = cpu === undefined ? undefined : this.mermap[cpu];
        const i = held?.findIndex((a) => a.vpn === c.vpn) ?? -1;
        if (i >= 0) held!.splice(i, 1);
        break;
      }
      case 'allocUnmapped':
        for (let p = c.pfn; p < c.pfn + Math.min(c.count, 8); p++) if (!this.unmapped.includes(p)) this.unmapped.unshift(p);
        this.unmapped.splice(16);
        break;
      case 'addMemory':
        for (const b of this.pluggable) if (b >= c.pfn && b < c.pfn + c.count && !this.added.includes(b)) this.added.push(b);
        break;
      case 'removeMemory': {
        const kept = this.added.filter((b) => b < c.pfn || b >= c.pfn + c.count);
        this.added.splice(0, this.added.length, ...kept);
        break;
      }
      default: break;
    }
  }

  /** The range a removal without a flush names (ClientBelief.emptied), before note() forgets what it removed. */
  private noteEmptied(c: Command): void {
    const pageOffset = kernelLayout(this.scenario.config.levels).pageOffset;
    const range = c.op === 'unmap' && c.flush === false ? { vpn: c.vpn, pages: c.pages }
      : c.op === 'setDirectMapInvalid' && !c.flush ? { vpn: pageOffset + c.pfn, pages: c.count }
      : c.op === 'kunmapLocal' ? { vpn: c.vpn, pages: 1 }
      : c.op === 'mermapPut' ? this.mermap.flat().find((a) => a.vpn === c.vpn)
      : c.op === 'vfree' ? this.areas.find((a) => a.vpn === c.vpn)
      : undefined;
    if (range === undefined) return;
    this.emptied.unshift(range);
    this.emptied.splice(4);
  }

  /**
   * The clients' rule for every other command: an access to a CPU-local page runs on the
   * CPU that owns it; a command that would change mappings there moves just past the
   * CPU-local regions.
   */
  discipline(c: Command): Command {
    // A command moved past one region may land in another: moved until it meets none.
    let at = c;
    for (let k = 0; k < 4; k++) {
      const next = this.disciplineOnce(at);
      if (next === at) return at;
      at = next;
    }
    return at;
  }

  private disciplineOnce(c: Command): Command {
    const r = rangeOf(c);
    if (r === undefined) return c;
    if (c.op === 'access') {
      // Any root: a CPU-local page is touched by its CPU only, whatever it walks (C4).
      const owner = kmapSlotOf(this.cpus, c.vpn)?.cpu ?? mermapCpuOf(this.scenario.config.levels, this.cpus, c.vpn);
      return owner === undefined || owner === c.cpu ? c : { ...c, cpu: owner };
    }
    if (!MAPPING_OPS.has(c.op)) return c;
    // A live vmalloc area is unmapped by its vfree only (C2), and a vfree may have failed:
    // no unmap in the clients' part of the vmalloc area. set_memory_* there is what its users do.
    const area = c.op !== 'unmap' ? undefined : meets(r, this.areaZone) ? this.areaZone : this.areas.find((a) => meets(r, a));
    const hit = area ?? this.local.find((l) => meets(r, l));
    if (hit === undefined) return c;
    // Moved past it by whole gigabytes: the pages keep their offset in every 2M and 1G block,
    // so the leaves it can make stay those it was drawn for (a 4K-only map was capped as one,
    // and a huge one stays huge).
    const shift = Math.ceil((hit.vpn + hit.pages - r.vpn) / G1) * G1;
    return { ...c, vpn: r.vpn + shift } as Command;
  }
}
