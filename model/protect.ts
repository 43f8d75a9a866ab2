/**
 * What set_memory_* does to a page's prot, and cpa_process_alias's direct-map alias
 * (spec/contracts/protect.ts).
 */
import { PAGES, type Vpn } from '../spec/address.ts';
import { directMapVpn } from '../spec/contracts/directmap.ts';
import { protEquals, type Leaf, type Prot, type SystemConfig } from '../spec/state.ts';
import type { ProtChange } from '../spec/system.ts';

/**
 * Each field present replaces the old one; `exec: v` sets execKernel = v and execUser =
 * v && user (x86's NX covers every privilege that can reach the page), so the result
 * stays x86-representable. kernel4k is only ever set (set_memory_4k) and otherwise kept;
 * a prot without it has no such key at all, so prots stay deep-equal to the spec's
 * PAGE_KERNEL* constants. `present` is not a prot field: the callers move the entry.
 */
export function applyProtChange(prot: Prot, change: ProtChange): Prot {
  const out: Prot = {
    write: change.write ?? prot.write,
    user: prot.user,
    execKernel: change.exec ?? prot.execKernel,
    execUser: change.exec === undefined ? prot.execUser : change.exec && prot.user,
    global: change.global ?? prot.global,
    cache: change.cache ?? prot.cache,
  };
  return change.kernel4k === true || prot.kernel4k === true ? { ...out, kernel4k: true } : out;
}

/** Whether the change alters this prot (a partly covered leaf whose prot stays is not split). */
export function protChanges(prot: Prot, change: ProtChange): boolean {
  return !protEquals(prot, applyProtChange(prot, change));
}

/**
 * Whether the change alters an entry: its prot, or its presence (`present` given and
 * different from what the entry is).
 */
export function entryChanges(prot: Prot, present: boolean, change: ProtChange): boolean {
  return (change.present !== undefined && change.present !== present) || protChanges(prot, change);
}

/**
 * The part of a change carried to the direct-map alias under strict: write and cache,
 * never exec (the direct map stays NX), global, present or kernel4k (the alias stays
 * mapped, at its own page size).
 */
export function aliasChange(change: ProtChange): ProtChange {
  return {
    ...(change.write === undefined ? {} : { write: change.write }),
    ...(change.cache === undefined ? {} : { cache: change.cache }),
  };
}

/**
 * The direct-map ranges a protect with alias also changes: the direct-map pages of the
 * frames behind the pages of [vpn, vpn+pages) that lie outside the direct map, as sorted,
 * merged ranges. `leaves` are the leaves intersecting the range, in vpn order.
 */
export function aliasRanges(config: SystemConfig, leaves: readonly Leaf[], vpn: Vpn, pages: number): { vpn: Vpn; pages: number }[] {
  const dmLo = directMapVpn(config.levels, 0);
  const dmHi = dmLo + config.frames;
  const pieces: { vpn: Vpn; pages: number }[] = [];
  for (const l of leaves) {
    const lo = Math.max(l.vpn, vpn);
    const hi = Math.min(l.vpn + PAGES[l.size], vpn + pages);
    // The direct map is one interval, so the part of [lo, hi) outside it is at most two pieces.
    for (const [a, b] of [[lo, Math.min(hi, dmLo)], [Math.max(lo, dmHi), hi]] as const) {
      if (a < b) pieces.push({ vpn: directMapVpn(config.levels, l.pfn + (a - l.vpn)), pages: b - a });
    }
  }
  pieces.sort((x, y) => x.vpn - y.vpn);
  const out: { vpn: Vpn; pages: number }[] = [];
  for (const p of pieces) {
    const last = out[out.length - 1];
    if (last !== undefined && last.vpn + last.pages >= p.vpn) last.pages = Math.max(last.pages, p.vpn + p.pages - last.vpn);
    else out.push({ ...p });
  }
  return out;
}
