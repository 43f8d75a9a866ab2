/**
 * The strict policy, decided the obvious way: run the catalogue's check of each
 * strict-policy invariant (spec/contracts/outcome.ts STRICT_POLICY, in order) on the
 * candidate state. The committed state is clean (every earlier result was refused if it
 * broke one), so a violation in the candidate involves a mapping the operation changed,
 * or a frame whose direct-map page it changed: the scoped checks look at exactly those,
 * with every alias of their frames (the catalogue's alias closure).
 */
import { pfnToHex, vpnToHex } from '../spec/address.ts';
import { STRICT_POLICY } from '../spec/contracts/outcome.ts';
import type { CheckScope, Witness } from '../spec/invariant.ts';
import { invariantById } from '../checker/index.ts';
import type { AbstractState } from '../spec/state.ts';

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

/** The first strict-policy invariant the state breaks within the scopes (everywhere without), or null. */
export function firstPolicyBreak(state: AbstractState, scopes: readonly CheckScope[] | undefined): PolicyBreak | null {
  for (const inv of CHECKS) {
    for (const scope of scopes ?? [undefined]) {
      const w = inv.check(state, scope)[0];
      if (w !== undefined) return { id: inv.id, where: whereText(w) };
    }
  }
  return null;
}
