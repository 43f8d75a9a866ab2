/**
 * The strict policy, decided the obvious way: run the catalogue's check of each
 * strict-policy invariant (spec/contracts/outcome.ts STRICT_POLICY, in order) on the
 * candidate state. The committed state is clean (every earlier result was refused if it
 * broke one), so a violation in the candidate involves a mapping the operation changed,
 * or a frame whose direct-map page it changed: the scoped checks look at exactly those,
 * with every alias of their frames (the catalogue's alias closure). The clients' rules
 * (family C) judge a client's item (an area, an allocation) where the scope meets it: an
 * operation that frees frames names the items holding them too (model/clients-state.ts
 * holdersOf), since they lie far from the frames' direct-map pages.
 *
 * The exemptions the clients bring (spec/contracts/clients.ts) the model applies itself,
 * on the state it hands each check: P7 does not judge leaves inside the mermap region
 * (mapping pages absent from the direct map is the mermap's purpose), D6 not the free
 * frames of an unmapped pageblock (the pool keeps them out of the direct map).
 */
import { pfnToHex, vpnToHex } from '../spec/address.ts';
import { mermapRegion } from '../spec/clients.ts';
import { directMapBase } from '../spec/invariants/terms.ts';
import { PAGEBLOCK_PAGES } from '../spec/contracts/isolation.ts';
import { STRICT_POLICY } from '../spec/contracts/outcome.ts';
import type { CheckScope, Witness } from '../spec/invariant.ts';
import { sweepChecks, withLookupOf } from '../checker/common.ts';
import { invariantById, type Invariant } from '../checker/index.ts';
import type { AbstractState } from '../spec/state.ts';
import { setFacts } from './frames.ts';
import { intersecting, replace } from './leaves.ts';

export interface PolicyBreak {
  readonly id: string;
  /** Where, for the EPERM message. */
  readonly where: string;
}

function whereText(w: Witness): string {
  const frame = w.frames?.[0];
  const at = [
    frame === undefined ? '' : `at frame ${pfnToHex(frame.pfn)}`,
    w.vpn === undefined ? '' : `through ${vpnToHex(w.vpn)}${w.root === undefined ? '' : ` in root ${w.root}`}`,
  ].filter(Boolean).join(' ');
  return `${at}${at === '' ? '' : ': '}${w.detail}`;
}

const CHECKS = STRICT_POLICY.map(({ id }) => {
  const inv = invariantById(id);
  if (inv === undefined) throw new Error(`strict-policy invariant ${id} is not in the catalogue`);
  return inv;
});

/**
 * The state without any root's leaves inside the mermap region (P7's exemption); the same
 * state when it has none. A root's lookup of its leaves outside the direct map
 * (checker/common.ts) carries over, without the leaves taken out.
 */
function withoutMermapLeaves(state: AbstractState): AbstractState {
  const region = mermapRegion(state.config.levels, state.config.cpus);
  let changed = false;
  const roots = state.roots.map((root) => {
    const [lo, hi] = intersecting(root.leaves, region.vpn, region.pages);
    const inside = new Set(root.leaves.slice(lo, hi).filter((l) => l.vpn >= region.vpn && l.vpn < region.vpn + region.pages));
    if (inside.size === 0) return root;
    changed = true;
    const without = { ...root, leaves: replace(root.leaves, lo, hi, root.leaves.slice(lo, hi).filter((l) => !inside.has(l))) };
    return withLookupOf(root, without, inside, [], directMapBase(state));
  });
  return changed ? { ...state, roots } : state;
}

/** The state with the pool's free frames counted back in the direct map (D6's exemption). */
function withPoolFramesMapped(state: AbstractState): AbstractState {
  const blocks = state.clients?.unmapped ?? [];
  if (blocks.length === 0) return state;
  let frames = state.frames;
  for (const b of blocks) frames = setFacts(frames, b, PAGEBLOCK_PAGES, (r) => (r.use === 'free' ? { ...r, noDirectMap: false } : r));
  return { ...state, frames };
}

/** What one check judges: the state with that invariant's client exemption applied. */
function judged(inv: Invariant, state: AbstractState): AbstractState {
  if (state.clients === undefined) return state;
  if (inv.id === 'P7') return withoutMermapLeaves(state);
  if (inv.id === 'D6') return withPoolFramesMapped(state);
  return state;
}

/**
 * The first strict-policy invariant the state breaks within the scopes (everywhere
 * without; nothing with none), or null. `only`: judge just these (vfree's refusal, made
 * before it changes anything), still in STRICT_POLICY order. The per-leaf and frame-use
 * checks of those judged on the state itself run in one sweep per scope
 * (checker/common.ts sweepChecks): the checks are pure, so the first break is the same.
 */
export function firstPolicyBreak(state: AbstractState, scopes: readonly CheckScope[] | undefined, only?: ReadonlySet<string>): PolicyBreak | null {
  if (scopes !== undefined && scopes.length === 0) return null;
  const where = scopes ?? [undefined];
  const checks = only === undefined ? CHECKS : CHECKS.filter((inv) => only.has(inv.id));
  const states = checks.map((inv) => judged(inv, state));
  const plain = checks.filter((_inv, i) => states[i] === state).map((inv) => inv.check);
  const swept = where.map((scope) => sweepChecks(state, scope, plain));
  for (let i = 0; i < checks.length; i++) {
    const inv = checks[i]!;
    const s = states[i]!;
    for (let k = 0; k < where.length; k++) {
      const w = ((s === state ? swept[k]!.get(inv.check) : undefined) ?? inv.check(s, where[k]))[0];
      if (w !== undefined) return { id: inv.id, where: whereText(w) };
    }
  }
  return null;
}
