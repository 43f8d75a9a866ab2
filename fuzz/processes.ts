/**
 * What the command generator believes about the isolation capability's processes
 * (spec/contracts/isolation.ts): which pids are alive and which user addresses they
 * mapped, so that later commands name live processes and revisit their mappings. A
 * belief: a createProcess may have failed (ENOMEM), and then the pids it predicts name no
 * process (ENOENT), which the contract covers too.
 */
import { PAGES, kernelLayout, type Pfn, type Vpn } from '../spec/address.ts';
import type { Command } from '../spec/commands.ts';
import { PAGEBLOCK_PAGES } from '../spec/contracts/isolation.ts';
import { kernelImage } from '../spec/contracts/linux.ts';
import { ASI_GLOBAL_ROOT, LDT_SLOT_PAGES, PTI_USER_ROOT, processRootIds } from '../spec/roots.ts';
import { INIT_MM, type Prot, type RootId } from '../spec/state.ts';
import type { Scenario } from '../spec/scenario.ts';

const M2 = PAGES['2M'];
/**
 * User addresses as a process lays them out: the executable at 4 MiB, the heap after it,
 * mmap's area below 0x7f0000000000 and the stack near the top of the half, each at a 2M
 * boundary so that THP-sized mappings are possible, and one page off it.
 */
const USER_BASES: readonly Vpn[] = [0x400, 0x400 + M2, 0x7effffe00, 0x7f0000000, 0x7ffffe000, 0x7fffffe00];
const RECENT = 8;

export class ProcessBelief {
  private readonly live: number[] = [];
  private next = 1;
  private readonly userRecent: Vpn[] = [];
  /** The user mappings believed live, newest first: what an unmapUser names. */
  private readonly mappings: { pid: number; vpn: Vpn; pages: number }[] = [];
  /** The first frame of the last LDT set, for EBUSY. */
  lastLdt: Pfn | undefined;

  /** After a command: what it did to the process set and the user addresses, if it succeeded. */
  note(c: Command): void {
    if (c.op === 'createProcess') this.live.push(this.next++);
    if (c.op === 'exitProcess') {
      const i = this.live.indexOf(c.pid);
      if (i >= 0) this.live.splice(i, 1);
    }
    if (c.op === 'setLdt') this.lastLdt = c.pfn;
    if (c.op === 'exitProcess') this.forget(c.pid, 0, Infinity);
    if (c.op === 'unmapUser' || c.op === 'zapPageRange') this.forget(c.pid, c.vpn, c.pages);
    if (c.op === 'mapUser' && c.pages > 0) {
      this.mappings.unshift({ pid: c.pid, vpn: c.vpn, pages: c.pages });
      this.mappings.splice(RECENT);
    }
    if (c.op === 'mapUser' || c.op === 'unmapUser') {
      this.userRecent.unshift(c.vpn);
      if (this.userRecent.length > RECENT) this.userRecent.pop();
    }
  }

  /** The mappings of process `pid` that meet [vpn, vpn + pages) are believed gone. */
  private forget(pid: number, vpn: Vpn, pages: number): void {
    const kept = this.mappings.filter((m) => m.pid !== pid || m.vpn + m.pages <= vpn || vpn + pages <= m.vpn);
    this.mappings.splice(0, this.mappings.length, ...kept);
  }

  /** Whether the belief has a live user mapping. */
  anyMapping(): boolean {
    return this.mappings.length > 0;
  }

  /**
   * What an unmapUser names: mostly a mapping believed live, whole (the newest most often);
   * one draw in four, or with none believed, as drawn (a hole: ENOENT; EINVAL).
   */
  unmapRange(drawn: { pid: number; vpn: Vpn; pages: number }, pick: number): { pid: number; vpn: Vpn; pages: number } {
    if (this.mappings.length === 0 || pick % 4 === 3) return drawn;
    const m = this.mappings[pick % 4 === 0 ? 0 : pick % this.mappings.length]!;
    return { pid: m.pid, vpn: m.vpn, pages: m.pages };
  }

  /** The pid the next createProcess is believed to get. */
  get nextPid(): number {
    return this.next;
  }

  /** Whether the belief has a live process. */
  anyAlive(): boolean {
    return this.live.length > 0;
  }

  /** A pid: mostly a live one; one draw in four the next one, which does not exist yet (ENOENT). */
  pid(pick: number): number {
    if (this.live.length === 0 || pick % 4 === 3) return this.next;
    return this.live[pick % this.live.length]!;
  }

  /** A root for translate or access: init_mm mostly, else the PTI or ASI global root or a live process's. */
  root(pick: number): RootId {
    const roots: RootId[] = [INIT_MM, PTI_USER_ROOT, ASI_GLOBAL_ROOT];
    for (const pid of this.live) {
      const r = processRootIds(pid);
      roots.push(r.kernelRoot, r.userRoot, r.asiRoot);
    }
    return pick < 8 ? INIT_MM : roots[pick % roots.length]!;
  }

  /** A user-half page: a recent one (revisiting a mapping) or a layout base, shifted by a few pages. */
  userVpn(pick: number, delta: number): Vpn {
    const from = pick % 2 === 0 && this.userRecent.length > 0 ? this.userRecent[pick % this.userRecent.length]! : USER_BASES[pick % USER_BASES.length]!;
    return Math.max(0, from + (delta % 3 === 0 ? 0 : delta % 16));
  }
}

/**
 * A pageblock-aligned direct-map range near `vpn` for asiMap / asiUnmap: the pageblock of
 * the direct-map page `vpn` is or of frame `pfn`, and 1 to 8 pageblocks (2M to 16M); one
 * draw in sixteen stays as drawn, mostly EINVAL.
 */
export function asiRange(scenario: Scenario, vpn: Vpn, pfn: Pfn, pages: number, pick: number): { vpn: Vpn; pages: number } {
  if (pick % 16 === 15) return { vpn, pages };
  const base = kernelLayout(scenario.config.levels).pageOffset;
  const inDm = vpn >= base && vpn < base + scenario.config.frames;
  const frame = inDm ? vpn - base : pfn;
  const at = base + Math.floor(frame / PAGEBLOCK_PAGES) * PAGEBLOCK_PAGES;
  const blocks = 1 + (Math.ceil(pages / PAGEBLOCK_PAGES) - 1) % 8;
  return { vpn: at, pages: Math.min(blocks * PAGEBLOCK_PAGES, base + scenario.config.frames - at) };
}

/**
 * `pages` frames from the page allocator: `pfn` when they lie in a `data` run of the
 * scenario the direct map maps; else frames of such a run (the one `pick` names among
 * those with room) at the offset `pfn` has in its 2M block, so that a mapping whose
 * address allows a huge leaf still gets one. `pfn` itself when no run has room.
 */
function allocatorPfn(scenario: Scenario, pfn: Pfn, pages: number, pick: number): Pfn {
  const count = Math.max(1, pages);
  const runs = scenario.frames.filter((r) => r.use === 'data' && !r.noDirectMap);
  if (runs.some((r) => pfn >= r.pfn && pfn + count <= r.pfn + r.count)) return pfn;
  const offset = pfn % M2;
  const fits = runs.flatMap((r) => {
    const first = r.pfn + (((offset - r.pfn) % M2) + M2) % M2;
    const slots = Math.floor((r.pfn + r.count - count - first) / M2) + 1;
    return slots > 0 ? [{ first, slots }] : [];
  });
  if (fits.length === 0) return pfn;
  const f = fits[pick % fits.length]!;
  return f.first + (Math.floor(pfn / M2) % f.slots) * M2;
}

/**
 * An LDT's first frame: the page allocator's (with room for the largest LDT), mostly; one
 * draw in eight the current LDT's of `busy` (EBUSY) when there is one, one in eight as
 * drawn (ENOENT where it is no data frame).
 */
export function ldtPfn(scenario: Scenario, pfn: Pfn, pick: number, busy: Pfn | undefined): Pfn {
  if (pick % 8 === 7) return pfn;
  if (pick % 8 === 6 && busy !== undefined) return busy;
  return allocatorPfn(scenario, pfn, LDT_SLOT_PAGES, pick);
}

/**
 * A user mapping's first frame: the page allocator's, as the fault path gets its pages,
 * mostly; one draw in eight as drawn, where the frame pool reaches kernel text, tables
 * and free frames (EPERM S12, P2, T5, D4 under strict).
 */
export function userPfn(scenario: Scenario, pfn: Pfn, pages: number, pick: number): Pfn {
  return pick % 8 === 7 ? pfn : allocatorPfn(scenario, pfn, pages, pick);
}

/**
 * A user mapping's prot, mostly shaped as mapUser wants it (user-accessible, never
 * global, executable by user mode exactly when it is by the kernel); one draw in eight as
 * drawn, mostly EINVAL.
 */
export function userProt(p: Prot, pick: number): Prot {
  return pick % 8 === 7 ? p : { ...p, user: true, global: false, execUser: p.execKernel };
}

/**
 * A ptiClone range, by `pick` (uniform over 0..23): a quarter of the draws one of the
 * scenario's own boot clones again, whole (pti_finalise clones the entry and kernel text a
 * second time, after free_initmem: a page freed from init_mm since must leave the user
 * copy); half inside the kernel image's [_text, end of rodata), the range
 * pti_clone_entry_text and pti_clone_kernel_text clone (a page of it and the pages drawn,
 * clipped to it); a quarter as drawn, where the address pool holds the cpu_entry_area,
 * espfix and every other region (mostly EPERM K2 under strict).
 */
export function ptiRange(scenario: Scenario, vpn: Vpn, pages: number, pick: number): { vpn: Vpn; pages: number } {
  const clones = (scenario.isolationBoot ?? []).flatMap((c) => (c.op === 'ptiClone' ? [c] : []));
  if (pick % 4 === 0 && clones.length > 0) {
    const c = clones[Math.floor(pick / 4) % clones.length]!;
    return { vpn: c.vpn, pages: c.pages };
  }
  const image = kernelImage(scenario.config, scenario.frames);
  if (pick % 4 === 3 || image === undefined || image.rodataHpageEnd <= image.textStart) return { vpn, pages };
  const span = image.rodataHpageEnd - image.textStart;
  const at = image.textStart + (vpn % span);
  return { vpn: at, pages: Math.max(1, Math.min(pages, image.rodataHpageEnd - at)) };
}

/** An LDT size: 1 to 16 pages (8192 descriptors of 8 bytes at most), one draw in sixteen one too many. */
export function ldtPages(pages: number, pick: number): number {
  return pick % 16 === 15 ? LDT_SLOT_PAGES + 1 : 1 + ((pages - 1) % LDT_SLOT_PAGES);
}
