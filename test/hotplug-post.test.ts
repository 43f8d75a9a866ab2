/**
 * The memory-hotplug postconditions (spec/contracts/post/hotplug.ts): the model's steps
 * satisfy them on the fuzzer's client sequences over a machine with hotplug space, under
 * both profiles; and each relation on a real step of the model, accepted, then tampered so
 * that one clause breaks (a wrong system it catches, whatever the other system does).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PAGES, kernelLayout } from '../spec/address.ts';
import { MEMMAP_PAGES, MEMORY_BLOCK_PAGES, vmemmapVpn } from '../spec/clients.ts';
import { applyCommand, type Command } from '../spec/commands.ts';
import { postcondition, type PostMode } from '../spec/contracts/post/index.ts';
import { fail, ok, type Result } from '../spec/errors.ts';
import type { AbstractState, FrameRun, Leaf } from '../spec/state.ts';
import type { Profile } from '../spec/system.ts';
import { commandsArb } from '../fuzz/arbitraries.ts';
import { Model } from '../model/index.ts';
import { hotplugBase, hotplugScenario } from './hotplug-scenario.ts';
import { fcParams } from './seed.ts';

const S = hotplugScenario();
const B = hotplugBase(S);
const BLOCK = MEMORY_BLOCK_PAGES;
const PO = kernelLayout(4).pageOffset;
const VMEMMAP = vmemmapVpn(4, B);
const add: Command = { op: 'addMemory', pfn: B, count: BLOCK };
const remove: Command = { op: 'removeMemory', pfn: B, count: BLOCK };

function booted(profile: Profile = 'strict'): Model {
  const m = new Model({ config: S.config, frames: S.frames, profile });
  for (const c of S.boot) expect(applyCommand(m, c).ok).toBe(true);
  return m;
}

/** The clauses a step breaks, each once, in order. */
function clausesOf(before: AbstractState, c: Command, r: Result<unknown>, after: AbstractState, mode: PostMode = 'full'): string[] {
  return [...new Set(postcondition(before, c, r, after, mode).map((v) => v.clause))];
}

/** A real step of the model: the states around it and its result. */
function step(m: Model, c: Command): { before: AbstractState; r: Result<unknown>; after: AbstractState } {
  const before = m.abstract();
  const r = applyCommand(m, c);
  return { before, r, after: m.abstract() };
}

const withLeaves = (s: AbstractState, leaves: readonly Leaf[]): AbstractState => ({ ...s, roots: [{ ...s.roots[0]!, leaves }, ...s.roots.slice(1)] });
const withoutLeafAt = (s: AbstractState, vpn: number): AbstractState => withLeaves(s, s.roots[0]!.leaves.filter((l) => l.vpn !== vpn));
const withFrames = (s: AbstractState, frames: readonly FrameRun[]): AbstractState => ({ ...s, frames });

describe('the hotplug relations hold for the model', () => {
  it.each(['strict', 'linux'] as const)('on the fuzzer\'s client sequences with hotplug space (%s)', (profile) => {
    fc.assert(
      fc.property(commandsArb(S, { maxCommands: 60, clients: true }), (commands) => {
        const m = booted(profile);
        let before = m.abstract();
        for (const c of commands) {
          const r = applyCommand(m, c);
          const after = m.abstract();
          // Linux's failed addMemory keeps what its failed block did: prose only.
          const prose = profile === 'linux' && c.op === 'addMemory' && !r.ok;
          if ((c.op === 'addMemory' || c.op === 'removeMemory') && !prose) expect(clausesOf(before, c, r, after, 'local'), JSON.stringify(c)).toEqual([]);
          before = after;
        }
      }),
      fcParams({ numRuns: 10 }),
    );
  });
});

describe('addMemory\'s relation', () => {
  it('accepts the model\'s step and catches each wrong one', () => {
    const { before, r, after } = step(booted(), add);
    expect(clausesOf(before, add, r, after)).toEqual([]);
    // A missing leaf: its table goes too.
    expect(clausesOf(before, add, r, withoutLeafAt(after, VMEMMAP))).toEqual(['addMemory.leaves', 'addMemory.tables']);
    const wrongMemmap = after.roots[0]!.leaves.map((l) => (l.vpn === VMEMMAP ? { ...l, pfn: B + 2 * MEMMAP_PAGES } : l));
    expect(clausesOf(before, add, r, withLeaves(after, wrongMemmap))).toEqual(['addMemory.leaves']);
    expect(clausesOf(before, add, r, withFrames(after, before.frames))).toEqual(['addMemory.frames']);
    expect(clausesOf(before, add, r, { ...after, tablesInUse: after.tablesInUse + 1 })).toEqual(['addMemory.tables']);
  });

  it('holds a refusal to its precondition and to changing nothing', () => {
    const m = booted();
    const s = m.abstract();
    expect(clausesOf(s, add, fail('ENOMEM', 'tablePool', 'no table'), s)).toEqual([]);
    expect(clausesOf(s, add, fail('EEXIST', 'pfn', 'busy'), s)).toEqual(['addMemory.outcome']);
    expect(clausesOf(s, add, fail('ENOMEM', 'tablePool', 'no table'), withoutLeafAt(s, PO))).toEqual(['addMemory.refusal']);
    const ram: Command = { op: 'addMemory', pfn: 0, count: BLOCK };
    expect(clausesOf(s, ram, ok(undefined), s)).toEqual(['addMemory.eexist']);
    expect(clausesOf(s, { op: 'addMemory', pfn: B + 1, count: BLOCK }, fail('EINVAL', 'count', 'x'), s)).toEqual(['addMemory.einval']);
  });
});

describe('removeMemory\'s relation', () => {
  it.each(['strict', 'linux'] as const)('accepts the model\'s step and catches each wrong one (%s)', (profile) => {
    const m = booted(profile);
    expect(applyCommand(m, add).ok).toBe(true);
    expect(applyCommand(m, { op: 'access', cpu: 2, root: 0, vpn: PO + B + 900, kind: 'r', mode: 'kernel' }).ok).toBe(true);
    const { before, r, after } = step(m, remove);
    expect(clausesOf(before, remove, r, after)).toEqual([]);
    const directMap = before.roots[0]!.leaves.find((l) => l.vpn === PO + B)!;
    const kept = withLeaves(after, [...after.roots[0]!.leaves, directMap].sort((a, b) => a.vpn - b.vpn));
    expect(clausesOf(before, remove, r, kept)[0]).toBe('removeMemory.leaves');
    expect(clausesOf(before, remove, r, { ...after, tlb: before.tlb })).toEqual(['removeMemory.tlb']);
    expect(clausesOf(before, remove, r, withFrames(after, before.frames))).toEqual(['removeMemory.frames']);
  });

  it('names ENOENT for a block not added and EBUSY for one in use', () => {
    const m = booted();
    const s = m.abstract();
    expect(clausesOf(s, remove, ok(undefined), s)).toEqual(['removeMemory.enoent']);
    expect(clausesOf(s, remove, fail('ENOENT', 'pfn', 'not added'), s)).toEqual([]);
    expect(applyCommand(m, add).ok).toBe(true);
    // The memmap frames are data, yet they keep no block busy.
    const added = m.abstract();
    expect(clausesOf(added, remove, fail('EBUSY', 'pfn', 'in use'), added)).toEqual(['removeMemory.outcome']);
    expect(applyCommand(m, { op: 'allocFrames', pfn: B + PAGES['2M'], count: 1 }).ok).toBe(true);
    const busy = m.abstract();
    expect(clausesOf(busy, remove, ok(undefined), busy)).toEqual(['removeMemory.ebusy']);
    expect(clausesOf(busy, remove, fail('EBUSY', 'pfn', 'in use'), busy)).toEqual([]);
  });
});
