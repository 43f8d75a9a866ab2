/**
 * The catalogue as a whole: shape and ids, the `ptspec invariants` command, the generated
 * docs, speed on a fully split direct map, and that the reference model keeps every
 * invariant true over random clustered operation sequences.
 */
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { commandsArb } from '../fuzz/arbitraries.ts';
import { createModel } from '../model/index.ts';
import { PAGES, hexToVpn } from '../spec/address.ts';
import { applyCommand } from '../spec/commands.ts';
import { CATALOGUE, checkAll, invariantById, invariantByKey } from '../checker/index.ts';
import { STRICT_POLICY } from '../spec/contracts/index.ts';
import { FAMILY_NAMES, KERNEL_STANCES } from '../spec/invariant.ts';
import { kernelScenario } from '../spec/scenario.ts';
import { PAGE_KERNEL } from '../spec/state.ts';
import { dumpToAbstractState } from '../io/ptdump/leaves.ts';
import { parsePtdump } from '../io/ptdump/parse.ts';
import type { AbstractState } from '../spec/state.ts';
import { ptspec } from './cli.ts';
import { fcParams } from './seed.ts';
import { DM, bootedState, editLeaves, leaf, recount, withoutRange } from './states.ts';

describe('catalogue', () => {
  it('has at least 56 invariants of the S, T, P, H, L, K, A, D and C families with unique, well-formed ids', () => {
    expect(CATALOGUE.length).toBeGreaterThanOrEqual(56);
    const ids = CATALOGUE.map((i) => i.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const inv of CATALOGUE) {
      expect(inv.id).toMatch(new RegExp(`^${inv.family}[1-9][0-9]*$`));
      expect(['S', 'T', 'P', 'H', 'L', 'K', 'A', 'D', 'C']).toContain(inv.family);
      expect(inv.statement.endsWith('.')).toBe(true);
      expect(inv.references.length).toBeGreaterThan(0);
    }
  });

  it('lists the families in id order, S, T, P, H, L, K, A, D, C, and has the TLB, KPTI, ASI and clients families and the direct-map lifecycle ids', () => {
    const families = CATALOGUE.map((i) => i.family).filter((f, k, all) => k === 0 || all[k - 1] !== f);
    expect(families).toEqual(['S', 'T', 'P', 'H', 'L', 'K', 'A', 'D', 'C']);
    for (const id of ['L1', 'L2', 'L3', 'L4', 'K1', 'K2', 'K3', 'K4', 'K5', 'A1', 'A2', 'D5', 'D6', 'D7', 'C1', 'C2', 'C3', 'C4', 'C5', 'C6', 'C7']) expect(invariantById(id), id).toBeDefined();
    expect(FAMILY_NAMES.L).toBe('TLB');
    expect(FAMILY_NAMES.C).toBe('clients');
  });

  it('names every invariant with a unique snake_case statement and says what the kernel does about it', () => {
    expect(new Set(CATALOGUE.map((i) => i.name)).size).toBe(CATALOGUE.length);
    for (const inv of CATALOGUE) {
      expect(inv.name, inv.id).toMatch(/^[a-z][a-z0-9]*(_[a-z0-9]+)+$/);
      expect(KERNEL_STANCES, inv.id).toContain(inv.kernel);
      expect(inv.kernelNote.endsWith('.'), inv.id).toBe(true);
      expect(invariantByKey(inv.name)).toBe(inv);
      expect(invariantByKey(inv.id)).toBe(inv);
    }
  });

  it('the strict policy of spec/contracts names its invariants as the catalogue does', () => {
    for (const p of STRICT_POLICY) expect(invariantById(p.id)?.name, p.id).toBe(p.name);
  });

  /** `ptspec invariants ARGS…` in-process: what it prints and its exit code. */
  async function run(...args: string[]): Promise<{ out: string; err: string; code: number | null }> {
    const r = await ptspec('invariants', ...args);
    return { out: r.stdout, err: r.stderr, code: r.code };
  }

  it('`ptspec invariants --json` prints the whole catalogue', async () => {
    const list = JSON.parse((await run('--json')).out) as Record<string, unknown>[];
    expect(list.length).toBeGreaterThanOrEqual(25);
    expect(new Set(list.map((i) => i['id'])).size).toBe(list.length);
    for (const inv of list) {
      for (const field of ['id', 'name', 'family', 'title', 'statement', 'rationale', 'kernel', 'kernelNote']) expect(String(inv[field] ?? '').length, `${String(inv['id'])}.${field}`).toBeGreaterThan(0);
      expect((inv['references'] as string[]).length).toBeGreaterThan(0);
    }
    expect(list.map((i) => i['id'])).toEqual(CATALOGUE.map((i) => i.id));
  });

  it('`ptspec invariants` lists id, name and kernel stance grouped by family', async () => {
    const { out, code } = await run();
    expect(code).toBe(0);
    for (const inv of CATALOGUE) expect(out).toMatch(new RegExp(`${inv.id.padEnd(4)} ${inv.name} +kernel ${inv.kernel}\n`));
    expect(out.indexOf(`S  ${FAMILY_NAMES.S}`)).toBeLessThan(out.indexOf(`P  ${FAMILY_NAMES.P}`));
    expect(out.indexOf(`H  ${FAMILY_NAMES.H}`)).toBeLessThan(out.indexOf(`L  ${FAMILY_NAMES.L}`));
    expect(out.indexOf(`L  ${FAMILY_NAMES.L}`)).toBeLessThan(out.indexOf(`D  ${FAMILY_NAMES.D}`));
    expect(out.indexOf(`D  ${FAMILY_NAMES.D}`)).toBeLessThan(out.indexOf(`C  ${FAMILY_NAMES.C}`));
  });

  it('`ptspec invariants P2 <name of S12>` prints those in full; an unknown one is bad usage (exit 2)', async () => {
    const named = await run('P2', 'page_table_frames_mapped_only_by_their_direct_map_page');
    expect(named.code).toBe(0);
    expect(named.out).toContain(`statement: ${invariantById('P2')!.statement}`);
    expect(named.out).toContain(`kernel: ${invariantById('P2')!.kernel}: ${invariantById('P2')!.kernelNote}`);
    expect(named.out).toContain(`S12 page_table_frames_mapped_only_by_their_direct_map_page: ${invariantById('S12')!.title}`);
    expect(named.out).toContain(`rationale: ${invariantById('S12')!.rationale}`);
    expect(named.out).not.toContain('T1 ');
    const json = JSON.parse((await run('--json', 'H1')).out) as { id: string }[];
    expect(json.map((i) => i.id)).toEqual(['H1']);
    const bad = await run('P2', 'X9');
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/unknown invariant X9/);
    expect(bad.out).toBe('');
  });
});

describe('speed: sweeps over leaves, never over pages', () => {
  // The second GiB of the direct map split to 4K: 262,144 leaves.
  const booted = bootedState();
  const small = Array.from({ length: PAGES['1G'] }, (_, i) => leaf(DM + PAGES['1G'] + i, PAGES['1G'] + i, '4K', PAGE_KERNEL));
  const split = recount(editLeaves(withoutRange(booted, DM + PAGES['1G'], PAGES['1G']), (ls) => ls.concat(small)));

  it('a full check of a direct map with a GiB split to 4K finds nothing within seconds', () => {
    const t = performance.now();
    expect(checkAll(split)).toEqual([]);
    expect(performance.now() - t).toBeLessThan(10_000);
  });

  it('with hundreds of cached translations and canonical obligations, the TLB checks stay a binary search each', () => {
    const tlb = small.filter((_, i) => i % 1024 === 0).flatMap((l) => [0, 1].map((cpu) => ({ cpu, root: 0, leaf: l })));
    const pendingFlush = Array.from({ length: 200 }, (_, k) => ({ vpn: DM + PAGES['1G'] + k * 1024 + 7, pages: 3, reason: 'unmap' }));
    const cached = { ...split, tlb, pendingFlush };
    const t = performance.now();
    expect(checkAll(cached).filter((v) => v.family === 'L' || v.family === 'D')).toEqual([]);
    expect(performance.now() - t).toBeLessThan(10_000);
  });

  it('a scoped check on the same state does not scan the map (well under a millisecond each, 20 ms allowed)', () => {
    const t = performance.now();
    for (let i = 0; i < 50; i++) expect(checkAll(split, { vpn: DM + PAGES['1G'] + i * 4096, pages: 16 })).toEqual([]);
    expect((performance.now() - t) / 50).toBeLessThan(20);
  });
});

describe('real kernel dumps (test/fixtures/kernel) through io/ptdump: leaves only, frame facts absent', () => {
  const dumpStates = (name: string): AbstractState[] => {
    const parsed = parsePtdump(readFileSync(new URL(`./fixtures/kernel/${name}`, import.meta.url), 'utf8'));
    if (!parsed.ok) throw new Error(`${name} does not parse`);
    return parsed.value.dumps.map((dump) => dumpToAbstractState([{ dump, kind: 'kernel' }]));
  };

  it('the PTI kernel and user tables of a 4.18 kernel, before and after c40a56a7818c, satisfy the catalogue', () => {
    const states = dumpStates('x86-ptdump-04.txt');
    expect(states.length).toBeGreaterThan(1);
    for (const s of states) expect(checkAll(s)).toEqual([]);
  });

  it('the 4.18 EFI page table shows W+X EFI runtime mappings and the legacy vsyscall page', () => {
    const [efi] = dumpStates('x86-ptdump-01.txt');
    const ids = checkAll(efi!).map((v) => v.id);
    expect(ids).toContain('P1');
    expect(ids).toContain('P6');
    expect(invariantById('P1')!.check(efi!)[0]).toMatchObject({ root: 0, vpn: 0, pages: 1 });
    expect(invariantById('P6')!.check(efi!)).toMatchObject([{ root: 0, vpn: hexToVpn('0xffffffffff600000'), pages: 1 }]);
  });
});

describe('the reference model keeps the catalogue true', () => {
  const scenario = kernelScenario();

  it('over random clustered operation sequences (incremental checks each step, a full check at the end)', () => {
    fc.assert(
      fc.property(commandsArb(scenario, { maxCommands: 30 }), (commands) => {
        const sys = createModel(scenario);
        for (const c of scenario.boot) applyCommand(sys, c);
        for (const c of commands) {
          const r = applyCommand(sys, c);
          if (r.ok && 'vpn' in c && 'pages' in c) expect(checkAll(sys.abstract(), { vpn: c.vpn, pages: c.pages }), JSON.stringify(c)).toEqual([]);
        }
        expect(checkAll(sys.abstract())).toEqual([]);
      }),
      fcParams({ numRuns: 40 }),
    );
  });
});
