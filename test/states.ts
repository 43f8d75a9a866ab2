/**
 * Hand-made abstract states for the invariant tests: a booted kernel state built the
 * way the scenario's boot sequence maps it (greedy leaf sizes, spec/contracts/map.ts), and small
 * edits that break exactly one thing. No vitest here, so scripts and benches can use it.
 */
import { emptyClients } from '../spec/clients.ts';
import { createModel } from '../model/index.ts';
import { PAGES, PAGE_SIZES, X86_64_LAYOUT_4LEVEL as L, type PageSize, type Pfn, type Vpn } from '../spec/address.ts';
import { applyCommand } from '../spec/commands.ts';
import { tableFootprint } from '../spec/footprint.ts';
import { kernelScenario, type Scenario } from '../spec/scenario.ts';
import { PAGE_KERNEL, PAGE_KERNEL_RO, type AbstractRoot, type AbstractState, type FrameRun, type Leaf, type Prot, type SystemConfig } from '../spec/state.ts';

export const DM = L.pageOffset;
export const IMAGE = L.kernelText;

export function leaf(vpn: Vpn, pfn: Pfn, size: PageSize = '4K', prot: Prot = PAGE_KERNEL): Leaf {
  return { vpn, pfn, size, prot };
}

/** map's leaf sizes (the postcondition in spec/contracts/map.ts): greedy from the start, largest size both addresses allow. */
export function greedyLeaves(config: SystemConfig, vpn: Vpn, pfn: Pfn, pages: number, prot: Prot, maxPage: PageSize = '1G'): Leaf[] {
  const allowed = PAGE_SIZES.filter(
    (s) => PAGES[s] <= PAGES[maxPage] && (s !== '2M' || config.features.pse) && (s !== '1G' || config.features.gbpages),
  ).reverse();
  const out: Leaf[] = [];
  for (let off = 0; off < pages; ) {
    const size = allowed.find((s) => (vpn + off) % PAGES[s] === 0 && (pfn + off) % PAGES[s] === 0 && pages - off >= PAGES[s])!;
    out.push(leaf(vpn + off, pfn + off, size, prot));
    off += PAGES[size];
  }
  return out;
}

/** A single-root state over a setup's memory, its table count the footprint of `leaves`. */
export function stateOf(config: SystemConfig, frames: readonly FrameRun[], leaves: readonly Leaf[]): AbstractState {
  const sorted = [...leaves].sort((a, b) => a.vpn - b.vpn);
  return {
    config,
    frames,
    roots: [{ id: 0, kind: 'kernel', leaves: sorted }],
    tlb: [],
    pendingFlush: [],
    tablesInUse: tableFootprint(config.levels, sorted),
    pendingTableFrees: 0,
  };
}

/** The scenario's boot `map` commands applied by hand (no model needed). */
export function bootedState(scenario: Scenario = kernelScenario()): AbstractState {
  const leaves: Leaf[] = [];
  for (const c of scenario.boot) {
    if (c.op !== 'map') throw new Error(`bootedState handles map commands only, not ${c.op}`);
    leaves.push(...greedyLeaves(scenario.config, c.vpn, c.pfn, c.pages, c.prot, c.maxPage));
  }
  // The built-in systems have the clients capability: their booted state holds its (empty) bookkeeping.
  return { ...stateOf(scenario.config, scenario.frames, leaves), clients: emptyClients(scenario.config.levels, scenario.config.cpus) };
}

/** Edit the leaves of root 0 (kept sorted unless `keepOrder`), leaving table accounting as it was. */
export function editLeaves(state: AbstractState, edit: (leaves: Leaf[]) => Leaf[], keepOrder = false): AbstractState {
  const [root0, ...rest] = state.roots;
  const edited = edit([...root0!.leaves]);
  const leaves = keepOrder ? edited : edited.sort((a, b) => a.vpn - b.vpn);
  const root: AbstractRoot = { ...root0!, leaves };
  return { ...state, roots: [root, ...rest] };
}

/** Recount tables from root 0's leaves, as a real map or unmap would leave them. */
export function recount(state: AbstractState): AbstractState {
  return { ...state, tablesInUse: tableFootprint(state.config.levels, state.roots[0]!.leaves) };
}

/** Add leaves to root 0 and recount tables. */
export function withLeaves(state: AbstractState, ...add: Leaf[]): AbstractState {
  return recount(editLeaves(state, (ls) => ls.concat(add)));
}

/** Remove the leaves of root 0 that intersect [vpn, vpn + pages), recounting tables. */
export function withoutRange(state: AbstractState, vpn: Vpn, pages: number): AbstractState {
  return recount(editLeaves(state, (ls) => ls.filter((l) => l.vpn + PAGES[l.size] <= vpn || l.vpn >= vpn + pages)));
}

/** Replace the leaf of root 0 that contains `vpn`. */
export function replaceLeafAt(state: AbstractState, vpn: Vpn, f: (l: Leaf) => Leaf): AbstractState {
  const hit = state.roots[0]!.leaves.findIndex((l) => l.vpn <= vpn && vpn < l.vpn + PAGES[l.size]);
  if (hit < 0) throw new Error(`no leaf at ${vpn}`);
  return editLeaves(state, (ls) => ls.map((l, i) => (i === hit ? f(l) : l)));
}

/** The leaf of root 0 containing vpn. */
export function leafAt(state: AbstractState, vpn: Vpn): Leaf {
  const l = state.roots[0]!.leaves.find((x) => x.vpn <= vpn && vpn < x.vpn + PAGES[x.size]);
  if (l === undefined) throw new Error(`no leaf at ${vpn}`);
  return l;
}

/** Set flags on the frames [pfn, pfn + count) of a state, splitting runs (no re-merge). */
export function withFrameFlags(state: AbstractState, pfn: Pfn, count: number, flags: Partial<Pick<FrameRun, 'noDirectMap' | 'sensitive' | 'use'>>): AbstractState {
  const out: FrameRun[] = [];
  const end = pfn + count;
  for (const r of state.frames) {
    const rEnd = r.pfn + r.count;
    if (rEnd <= pfn || r.pfn >= end) {
      out.push(r);
      continue;
    }
    if (r.pfn < pfn) out.push({ ...r, count: pfn - r.pfn });
    const from = Math.max(r.pfn, pfn);
    const to = Math.min(rEnd, end);
    out.push({ ...r, ...flags, pfn: from, count: to - from });
    if (rEnd > end) out.push({ ...r, pfn: end, count: rEnd - end });
  }
  return { ...state, frames: out };
}

/** A kernel state as a ptdump parse would give it: leaves only, no frame facts. */
export function dumpLike(state: AbstractState): AbstractState {
  return { ...state, frames: [], tablesInUse: 0 };
}

/** The built-in scenario booted by the reference model. */
export function modelBootedState(scenario: Scenario = kernelScenario()): AbstractState {
  const sys = createModel(scenario);
  for (const c of scenario.boot) {
    const r = applyCommand(sys, c);
    if (!r.ok) throw new Error(`boot failed at ${JSON.stringify(c)}: ${r.error.message}`);
  }
  return sys.abstract();
}

/** The kernel scenario's machine, and the same CPU without GB pages or without PSE, for the contract and semantics tests. */
export const KERNEL_CONFIG: SystemConfig = kernelScenario().config;
export const NO_GB_CONFIG: SystemConfig = { ...KERNEL_CONFIG, features: { pse: true, gbpages: false } };
export const NO_PSE_CONFIG: SystemConfig = { ...KERNEL_CONFIG, features: { pse: false, gbpages: false } };
/** A read-only user page: x86-representable, refused in the kernel half by P6. */
export const USER_RO: Prot = { ...PAGE_KERNEL_RO, user: true };
