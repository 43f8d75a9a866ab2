/**
 * The impl's incremental abstract(): after entries are written it walks again only the
 * ranges written (tables.ts takeDirty, abstract.ts rewalkEntries) and keeps the previous
 * walk's leaves elsewhere. After every command of random sequences on the x86-64 machine
 * with the isolation capability (fixed seed), under both profiles, its state equals a full
 * walk of the same tables (a fork whose pool is touched walks everything); the isolation
 * roots' walks take the same written ranges (isolation.ts root).
 */
import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PAGES, X86_64_LAYOUT_4LEVEL as L } from '../spec/address.ts';
import { applyCommand } from '../spec/commands.ts';
import { ptiBoot, type Scenario } from '../spec/scenario.ts';
import { PAGE_KERNEL } from '../spec/state.ts';
import type { Profile } from '../spec/system.ts';
import { x86Scenario } from '../spec/x86-64.ts';
import { commandsArb } from '../fuzz/arbitraries.ts';
import { createImpl, type RadixSystem } from '../impl/index.ts';
import { fcParams } from './seed.ts';

const x86 = x86Scenario();
const scenario: Scenario = { ...x86, isolation: true, boot: ptiBoot(x86) };

function boot(profile: Profile): RadixSystem {
  const sys = createImpl({ ...scenario, profile });
  for (const c of scenario.boot) applyCommand(sys, c);
  return sys;
}

/** The abstraction of the same tables from a full walk. */
function fullWalk(sys: RadixSystem) {
  const twin = sys.fork();
  twin.tables().touch();
  return twin.abstract();
}

describe('impl: incremental abstract()', () => {
  for (const profile of ['strict', 'linux'] as const) {
    it(`equals a full walk after every command of random sequences (${profile})`, () => {
      const booted = boot(profile);
      booted.abstract();
      const commands = commandsArb(scenario, { maxCommands: 60, isolation: true, clients: true, swarm: true });
      let rewalks = 0;
      fc.assert(
        fc.property(commands, (cs) => {
          const sys = booted.fork();
          for (const c of cs) {
            const before = sys.tables().writes;
            applyCommand(sys, c);
            if (sys.tables().writes !== before) rewalks++;
            const got = sys.abstract();
            const want = fullWalk(sys);
            if (!isDeepStrictEqual(got, want)) expect(got, JSON.stringify(c)).toEqual(want);
          }
        }),
        fcParams({ numRuns: 8 }),
      );
      // The sequences wrote entries: the incremental walk ran.
      expect(rewalks).toBeGreaterThan(50);
    });
  }

  it('walks again only what a small change wrote: leaves elsewhere are the same objects', () => {
    const sys = boot('strict');
    const vm = L.vmallocStart + 8 * PAGES['1G'];
    // Data frames (a free one may be mapped only by its direct-map page: D4).
    expect(sys.allocFrames(3 << 20, 8193).ok).toBe(true);
    expect(sys.map(0, vm, 3 << 20, 4096, PAGE_KERNEL, { maxPage: '4K' }).ok).toBe(true);
    const before = sys.abstract().roots[0]!.leaves;
    expect(sys.map(0, vm + PAGES['1G'], (3 << 20) + 8192, 1, PAGE_KERNEL).ok).toBe(true);
    const after = sys.abstract().roots[0]!.leaves;
    expect(after.length).toBe(before.length + 1);
    const at = after.findIndex((l) => l.vpn === vm + PAGES['1G']);
    expect(after.slice(0, at)).toEqual(before.slice(0, at));
    for (let i = 0; i < at; i++) expect(after[i]).toBe(before[i]);
    expect(after).toEqual(fullWalk(sys).roots[0]!.leaves);
  });

  it('the isolation roots too: after a small change their leaves are the previous walk\'s objects', () => {
    const sys = boot('strict');
    const before = sys.abstract().roots.filter((r) => r.id !== 0);
    expect(before.some((r) => r.leaves.length > 0)).toBe(true);
    const vm = L.vmallocStart + 8 * PAGES['1G'];
    expect(sys.allocFrames(3 << 20, 1).ok).toBe(true);
    expect(sys.map(0, vm, 3 << 20, 1, PAGE_KERNEL).ok).toBe(true);
    const after = sys.abstract().roots.filter((r) => r.id !== 0);
    expect(after).toEqual(fullWalk(sys).roots.filter((r) => r.id !== 0));
    for (const [i, root] of after.entries()) {
      // The one new leaf aside (a root mirroring init_mm's vmalloc entry sees it), every leaf is the same object.
      const old = new Set(before[i]!.leaves);
      expect(root.leaves.filter((l) => !old.has(l)).every((l) => l.vpn === vm)).toBe(true);
    }
  });
});
