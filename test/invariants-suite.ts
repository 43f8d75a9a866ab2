/** The table-driven negative suite every invariant family test runs. */
import { expect, it } from 'vitest';
import type { Pfn, Vpn } from '../spec/address.ts';
import type { CheckScope, Family } from '../spec/invariant.ts';
import { CATALOGUE, invariantById } from '../checker/index.ts';
import type { AbstractState } from '../spec/state.ts';

/** What a negative test expects of the first witness. */
export interface WitnessWant {
  readonly root?: number;
  readonly vpn?: Vpn;
  readonly pages?: number;
  readonly frames?: readonly { readonly pfn: Pfn; readonly count: number }[];
  /** What the detail must say: `expect.stringMatching(...)`. */
  readonly detail?: string;
}

/** A bad state and where the invariant must point. */
export interface NegativeCase {
  readonly name: string;
  readonly state: () => AbstractState;
  readonly want: WitnessWant;
  readonly scope?: CheckScope;
}

/**
 * Run every case of a family through vitest: each invariant's check catches its bad state
 * with the wanted first witness, and its definition (`holds`, which has no scope and lists
 * violations in the order it quantifies) has that witness among its own.
 */
export function negativeSuite(cases: Readonly<Record<string, readonly NegativeCase[]>>): void {
  for (const [id, list] of Object.entries(cases)) {
    const inv = invariantById(id);
    for (const c of list) {
      it(`${id} catches: ${c.name}`, () => {
        expect(inv, `${id} is in the catalogue`).toBeDefined();
        const ws = inv!.check(c.state(), c.scope);
        expect(ws.length, `${id} finds a witness`).toBeGreaterThan(0);
        const w = ws[0]!;
        expect(w.detail.length).toBeGreaterThan(0);
        expect(w).toMatchObject(c.want);
      });
      it(`${id} holds is false: ${c.name}`, () => {
        const ws = inv!.holds(c.state());
        expect(ws.every((w) => w.detail.length > 0)).toBe(true);
        expect(ws).toContainEqual(expect.objectContaining(c.want));
      });
    }
  }
}

/** Catalogue ids of one family, for checking a suite covers all of them. */
export function familyIds(family: Family): string[] {
  return CATALOGUE.filter((i) => i.family === family).map((i) => i.id);
}
