/**
 * The strict policy's isolation rules (spec/contracts/outcome.ts: K2, K3, A1, A2, the last
 * of STRICT_POLICY), decided on the tables where an operation wrote or changed leaves:
 * the state before breaks none of them, so the state after can break one only there.
 *
 *   K2  a leaf written into root 1 lies outside the PTI allowlist, or is a 1G leaf;
 *   K3  where root 1 or root 2 maps a page the operation touched, its leaf and the one a
 *       kernel root (init_mm, or root 2 for root 1) has there translate differently and
 *       one of them is global;
 *   A1  a leaf written into root 2, or into init_mm from VMALLOC_START up (the slots root 2
 *       and every ASI root share), maps a sensitive frame;
 *   A2  a root-2 leaf meeting a touched range is not mapped by init_mm all over, to the
 *       same frames with the same prot.
 * Process roots' own leaves are user pages and LDT pages, never global (mapUser refuses
 * global prots, LDT_PROT is not global) and never in a restricted root's kernel half; but
 * the LDT slot is each process's own, so a global leaf init_mm writes there is K3 against
 * every process root that maps its LDT under it.
 */
import { pfnToHex, vpnToHex, type Vpn } from '../spec/address.ts';
import type { PageRange } from '../spec/roots.ts';
import type { RootId } from '../spec/state.ts';
import * as prot from './prot.ts';
import { WRITTEN_RUN, type Radix } from './radix.ts';
import type { Members } from './runs.ts';
import * as tables from './tables.ts';

const { P_GLOBAL, leafCode } = prot;
const { SPAN } = tables;

/** What the rules read: the roots' top-level slots and the fixed geometry. */
export interface IsolationFacts {
  readonly radix: Radix;
  readonly ptiRoot: number;
  readonly asiRoot: number;
  readonly allowlist: readonly PageRange[];
  readonly vmallocStart: Vpn;
  readonly kernelHalf: Vpn;
  readonly sensitive: Members;
  /** False in the sensitive-frame-in-restricted-root mutant, which never asks A1. */
  readonly checksSensitive: boolean;
  /** The root id whose top-level table is `slot`, or undefined. */
  rootOfTop(slot: number): RootId | undefined;
  /** The LDT remap's top-level slot: [vpn, vpn + pages), which no process root mirrors. */
  readonly ldtSlot: PageRange;
  /** The top-level tables of the process roots whose LDT slot is their own (kernel and user copies). */
  ldtRoots(): readonly number[];
}

export interface IsolationBroken {
  readonly id: 'K2' | 'K3' | 'A1' | 'A2';
  readonly where: string;
}

/** The top-level table above table `slot`. */
function topOf(f: IsolationFacts, slot: number): number {
  const parent = f.radix.pool.parentSlot;
  let s = slot;
  while (parent[s]! >= 0) s = parent[s]!;
  return s;
}

/**
 * The first isolation rule (K2, K3, A1, A2) the running operation's result breaks, over
 * the leaves it wrote (radix.writtenRuns) and the ranges it changed (`touched`), or null.
 */
export function isolationBroken(f: IsolationFacts, touched: readonly PageRange[]): IsolationBroken | null {
  const r = f.radix;
  let k2: string | null = null;
  let a1: string | null = null;
  const checked: PageRange[] = [...touched];
  /** Leaves written into the LDT slot, by init_mm (global ones) or a process's LDT: [vpn, pfn, pages, code, top]. */
  const inLdtSlot: [Vpn, number, number, number, number][] = [];
  let ldtRoots: readonly number[] | undefined;
  /** The rules on `n` pages of leaves from vpn → pfn in the tree of top-level table `top`. */
  const leaves = (top: number, vpn: Vpn, pfn: number, n: number, level: number, lo: number, hi: number): void => {
    if (vpn < f.ldtSlot.vpn + f.ldtSlot.pages && f.ldtSlot.vpn < vpn + n) {
      // Rare (the LDT slot is the processes'): the code and the process roots only here.
      const code = leafCode(lo, hi, level > 1, true, true, false);
      ldtRoots ??= f.ldtRoots();
      if ((top === 0 && (code & P_GLOBAL) !== 0) || ldtRoots.includes(top)) inLdtSlot.push([vpn, pfn, n, code, top]);
    }
    if (top !== 0 && top !== f.ptiRoot && top !== f.asiRoot) return;
    checked.push({ vpn, pages: n });
    if (k2 === null && top === f.ptiRoot && (level === 3 || !f.allowlist.some((a) => vpn >= a.vpn && vpn + n <= a.vpn + a.pages))) {
      k2 = `at ${vpnToHex(vpn)} in root ${f.rootOfTop(top)}: outside the PTI allowlist`;
    }
    if (a1 === null && f.checksSensitive && (top === f.asiRoot || (top === 0 && vpn >= f.vmallocStart))) {
      const s = f.sensitive.first(pfn, n);
      if (s >= 0) a1 = `at frame ${pfnToHex(s)} through ${vpnToHex(vpn + (s - pfn))}: a sensitive frame a restricted root sees`;
    }
  };
  const len = r.writtenRuns();
  const runs = r.writtenOut;
  for (let k = 0; k < len; k += WRITTEN_RUN) {
    const vpn = runs[k + 3]!;
    if (vpn < f.kernelHalf) continue;
    const slot = runs[k]!;
    const level = runs[k + 1]!;
    const n = runs[k + 2]!;
    const pfn = runs[k + 4]!;
    const lo = runs[k + 5]!;
    const hi = runs[k + 6]!;
    const top = topOf(f, slot);
    const span = SPAN[level as 1]!;
    const end = vpn + n * span;
    // A run of leaves is one range for K3, A2 and A1 (their answers are per page); K2's
    // allowlist and the LDT slot are judged leaf by leaf, and so is a run across vmallocStart.
    const whole = top !== f.ptiRoot && !(vpn < f.ldtSlot.vpn + f.ldtSlot.pages && f.ldtSlot.vpn < end) && !(vpn < f.vmallocStart && f.vmallocStart < end);
    if (whole) leaves(top, vpn, pfn, n * span, level, lo, hi);
    else for (let i = 0; i < n; i++) leaves(top, vpn + i * span, pfn + i * span, span, level, lo, hi);
  }
  if (k2 !== null) return { id: 'K2', where: k2 };
  let k3: string | null = null;
  let a2: string | null = null;
  for (const range of checked) {
    const end = range.vpn + range.pages;
    r.forEachEntry(range.vpn, end, (qv, qp, ql, qc) => {
      if (k3 === null) k3 = differs(r, qv, qp, SPAN[ql as 1]!, qc, 0, true) ?? differs(r, qv, qp, SPAN[ql as 1]!, qc, f.asiRoot, true);
    }, false, f.ptiRoot);
    r.forEachEntry(range.vpn, end, (qv, qp, ql, qc) => {
      const n = SPAN[ql as 1]!;
      if (k3 === null) k3 = differs(r, qv, qp, n, qc, 0, true);
      if (a2 === null) a2 = differs(r, qv, qp, n, qc, 0, false);
    }, false, f.asiRoot);
    if (k3 !== null) break;
  }
  // The LDT slot: init_mm's global leaf against every process's LDT there, a process's LDT against init_mm's.
  for (const [vpn, pfn, n, code, top] of inLdtSlot) {
    for (const src of top === 0 ? ldtRoots! : [0]) k3 ??= differs(r, vpn, pfn, n, code, src, true);
  }
  if (k3 !== null) return { id: 'K3', where: k3 };
  if (a1 !== null) return { id: 'A1', where: a1 };
  return a2 === null ? null : { id: 'A2', where: a2 };
}

/**
 * How root `src`'s leaves over the leaf [vpn, +n) → pfn with `code` break K3 (`global`:
 * a different translation where one side is global) or A2 (not: any different
 * translation, or a page src does not map); null when they do not.
 */
function differs(r: Radix, vpn: Vpn, pfn: number, n: number, code: number, src: number, global: boolean): string | null {
  let covered = 0;
  let bad: Vpn = -1;
  r.forEachEntry(vpn, vpn + n, (v, p, level, c) => {
    const span = SPAN[level as 1]!;
    covered += Math.min(v + span, vpn + n) - Math.max(v, vpn);
    const same = v - p === vpn - pfn && c === code;
    if (!same && bad < 0 && (!global || ((c | code) & P_GLOBAL) !== 0)) bad = Math.max(v, vpn);
  }, false, src);
  if (bad >= 0) return `at ${vpnToHex(bad)}: ${global ? 'a global translation' : 'a restricted mapping'} differs from ${src === 0 ? 'root 0' : `the root of table ${src}`}'s`;
  return !global && covered < n ? `at ${vpnToHex(vpn)}: the restricted mapping is not all mapped by init_mm` : null;
}
