/**
 * The printer: exact kernel text for every range line of the real dumps, and the round
 * trip parse(print(x)) = x over random leaf sets (4- and 5-level).
 */
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PAGES, hexToVpn, isCanonicalRange, vpnToHex, type PageSize, type PagingLevels } from '../spec/address.ts';
import { CACHE_MODES, type Leaf, type Prot } from '../spec/state.ts';
import { dumpLeaves } from '../io/ptdump/leaves.ts';
import { classifyLine } from '../io/ptdump/lines.ts';
import { parsePtdump } from '../io/ptdump/parse.ts';
import { kernelMarkers, printRoot, printState, rangeLine } from '../io/ptdump/print.ts';
import { dumpRanges, type ParsedText } from '../io/ptdump/types.ts';
import { SCENARIOS } from '../spec/scenario.ts';
import { bootScenario } from '../cli/dump.ts';
import { fcParams } from './seed.ts';

const FIXTURES = new URL('./fixtures/kernel/', import.meta.url);
const OWN = new URL('./fixtures/ptdump/', import.meta.url);
const X86_FIXTURES = ['x86-ptdump-01.txt', 'x86-ptdump-04.txt', 'x86-ptdump-05.txt', 'x86-ptdump-06.txt'];

function parsed(text: string): ParsedText {
  const r = parsePtdump(text);
  if (!r.ok) throw new Error(r.errors.map((e) => `${e.line}: ${e.reason}`).join('\n'));
  return r.value;
}

describe('printer: kernel text', () => {
  it.each(X86_FIXTURES)('reprints every range line of %s exactly', (name) => {
    const text = readFileSync(new URL(name, FIXTURES), 'utf8');
    const lines = text.split('\n');
    let checked = 0;
    for (const d of parsed(text).dumps) {
      for (const r of dumpRanges(d)) {
        const c = classifyLine(lines[r.line - 1]!);
        expect(c.kind).toBe('range');
        if (c.kind === 'range') expect(rangeLine(r.start, r.end, r.level, r.flags, d.paging)).toBe(c.payload);
        checked++;
      }
    }
    expect(checked).toBeGreaterThanOrEqual(7);
  });

  it('prints holes at the level of the missing entry and the kernel markers', () => {
    const lines = printRoot({ id: 0, kind: 'kernel', leaves: [] }, 4);
    expect(lines[0]).toBe('---[ User Space ]---');
    // Markers inside one pgd entry (EFI, High Kernel Mapping, …) are never reached: the
    // kernel only breaks a run at entry boundaries, and the last pgd entry runs to the top.
    expect(lines.slice(-2)).toEqual(['---[ ESPfix Area ]---', '0xffffff0000000000-0x0000000000000000           1T                               pgd']);
  });
});

describe('printer: the guard hole and the markers (ptdump_walk_pgd_level_core, note_page)', () => {
  // ptdump_walk_pgd_level_core's ranges: [0, half of the pgd) and [GUARD_HOLE_END_ADDR, top).
  it.each([
    [4, ['0x0000000000000000-0xffff880000000000    16777096T                               pgd', '0xffff880000000000-0xffff888000000000         512G                               pgd']],
    [5, ['0x0000000000000000-0xff10000000000000       16324P                               pgd', '0xff10000000000000-0xff11000000000000         256T                               pgd']],
  ] as const)('%i-level: no line in the guard hole; the lower half runs to GUARD_HOLE_END_ADDR', (levels, [userRun, ldtRun]) => {
    const lines = printRoot({ id: 0, kind: 'kernel', leaves: [] }, levels);
    // One break crosses Kernel Space and LDT remap; note_page advances one marker per break.
    expect(lines.slice(0, 5)).toEqual(['---[ User Space ]---', userRun, '---[ Kernel Space ]---', ldtRun, '---[ LDT remap ]---']);
  });

  it('a leaf in the guard hole is never walked, so never printed', () => {
    const leaf: Leaf = { vpn: hexToVpn('0xffff800000200000'), pfn: 0, size: '2M', prot: { write: true, user: false, execKernel: false, execUser: false, global: true, cache: 'WB' } };
    expect(printRoot({ id: 0, kind: 'kernel', leaves: [leaf] }, 4)).toEqual(printRoot({ id: 0, kind: 'kernel', leaves: [] }, 4));
  });

  it('the marker after a double crossing comes one line late: the first direct-map run is under LDT remap', () => {
    const p = parsed(readFileSync(new URL('init-mm-wx.txt', OWN), 'utf8'));
    const [d] = p.dumps;
    const ldt = d!.sections.find((s) => s.name === 'LDT remap')!;
    expect(ldt.ranges.map((r) => r.line)).toEqual([10]);
    expect(ldt.ranges[0]!.flags).toMatchObject({ rw: true, nx: true, pse: true });
    // The hand-checked fixture is the printer's text for its own leaves.
    const leaves = dumpLeaves(d!).map(({ vpn, size, prot }) => ({ vpn, pfn: 0, size, prot }));
    const body = readFileSync(new URL('init-mm-wx.txt', OWN), 'utf8').split('\n').filter((l) => l !== '' && !l.startsWith('#'));
    expect(printRoot({ id: 0, kind: 'kernel', leaves }, 4)).toEqual(body);
  });

  // address_markers with pt_dump_init's addresses, Documentation/arch/x86/x86_64/mm.rst.
  it.each([
    [4, false, ['0x0000000000000000 User Space', '0x8000000000000000 Kernel Space', '0xffff880000000000 LDT remap', '0xffff888000000000 Low Kernel Mapping',
      '0xffffc90000000000 vmalloc() Area', '0xffffea0000000000 Vmemmap']],
    [5, false, ['0x0000000000000000 User Space', '0x8000000000000000 Kernel Space', '0xff10000000000000 LDT remap', '0xff11000000000000 Low Kernel Mapping',
      '0xffa0000000000000 vmalloc() Area', '0xffd4000000000000 Vmemmap']],
    [4, true, ['0x0000000000000000 User Space', '0x8000000000000000 Kernel Space', '0xffff880000000000 LDT remap', '0xffff888000000000 Low Kernel Mapping',
      '0xffffc90000000000 vmalloc() Area', '0xffffea0000000000 Vmemmap', '0xffffec0000000000 KASAN shadow', '0xfffffc0000000000 KASAN shadow end']],
    [5, true, ['0x0000000000000000 User Space', '0x8000000000000000 Kernel Space', '0xff10000000000000 LDT remap', '0xff11000000000000 Low Kernel Mapping',
      '0xffa0000000000000 vmalloc() Area', '0xffd4000000000000 Vmemmap', '0xffdf000000000000 KASAN shadow', '0xfffffc0000000000 KASAN shadow end']],
  ] as const)('%i-level (KASAN %s): names and starts of the marker table', (levels, kasan, head) => {
    const common = ['0xfffffe0000000000 CPU entry Area', '0xffffff0000000000 ESPfix Area', '0xffffffef00000000 EFI Runtime Services', '0xffffffff80000000 High Kernel Mapping',
      '0xffffffffa0000000 Modules', '0xffffffffff000000 End Modules', '0xffffffffff576000 Fixmap Area'];
    const markers = kernelMarkers(levels, { kasan }).map((m) => `${vpnToHex(m.vpn)} ${m.name}`);
    expect(markers).toEqual([...head, ...common]);
  });
});

const protArb: fc.Arbitrary<Prot> = fc
  .record({ write: fc.boolean(), user: fc.boolean(), exec: fc.boolean(), global: fc.boolean(), cache: fc.constantFrom(...CACHE_MODES) })
  .map(({ write, user, exec, global, cache }) => ({ write, user, execKernel: exec, execUser: exec && user, global, cache }));

/** Random disjoint leaves clustered near the kernel's region starts, so runs merge and split. */
function leavesArb(levels: PagingLevels): fc.Arbitrary<Leaf[]> {
  const bases = kernelMarkers(levels).map((m) => m.vpn - (m.vpn % PAGES['1G']));
  const leaf = fc
    .record({ base: fc.constantFrom(...bases), size: fc.constantFrom<PageSize>('4K', '4K', '2M', '1G'), slot: fc.nat(40), n: fc.integer({ min: 1, max: 3 }), prot: protArb })
    .map(({ base, size, slot, n, prot }) => Array.from({ length: n }, (_, i) => ({ vpn: base + (slot + i) * PAGES[size], pfn: 0, size, prot })));
  return fc.array(leaf, { maxLength: 12 }).map((groups) => {
    const sorted = groups.flat().sort((a, b) => a.vpn - b.vpn);
    const out: Leaf[] = [];
    for (const l of sorted) {
      if (!isCanonicalRange(l.vpn, PAGES[l.size], levels)) continue;
      const prev = out[out.length - 1];
      if (prev === undefined || prev.vpn + PAGES[prev.size] <= l.vpn) out.push(l);
    }
    return out;
  });
}

describe('printer: round trip', () => {
  for (const levels of [4, 5] as const) {
    it(`parse(print(leaves)) gives the leaves back (${levels}-level)`, () => {
      fc.assert(
        fc.property(leavesArb(levels), (leaves) => {
          const text = printRoot({ id: 0, kind: 'kernel', leaves }, levels).join('\n');
          const p = parsed(text);
          expect(p.dumps).toHaveLength(1);
          expect(p.dumps[0]!.paging).toBe(levels === 5 ? '5-level' : '4-level');
          const back = dumpLeaves(p.dumps[0]!).map(({ vpn, size, prot }) => ({ vpn, size, prot }));
          expect(back).toEqual(leaves.map(({ vpn, size, prot }) => ({ vpn, size, prot })));
          // And the text itself is a fixed point: printing the parsed leaves gives it back.
          expect(printRoot({ id: 0, kind: 'kernel', leaves: back.map((l) => ({ ...l, pfn: 0 })) }, levels).join('\n')).toBe(text);
        }),
        fcParams({ numRuns: 100 }),
      );
    });
  }

  const systems = Object.keys(SCENARIOS).flatMap((name) => (['model', 'impl'] as const).map((system) => [name, system] as const));
  it.each(systems)('scenario %s booted on the %s round-trips', (name, system) => {
    const state = bootScenario(name, system);
    if (typeof state === 'string') throw new Error(state);
    const p = parsed(printState(state));
    expect(p.dumps).toHaveLength(1);
    const leaves = state.roots[0]!.leaves;
    expect(leaves.length).toBeGreaterThan(100);
    expect(dumpLeaves(p.dumps[0]!).map(({ vpn, size, prot }) => ({ vpn, size, prot }))).toEqual(leaves.map(({ vpn, size, prot }) => ({ vpn, size, prot })));
  });

  it('several roots print as grep-prefixed views and parse back apart', () => {
    const leaf = (vpn: number): Leaf => ({ vpn, pfn: 0, size: '4K', prot: { write: true, user: false, execKernel: false, execUser: false, global: true, cache: 'WB' } });
    const base = kernelMarkers(4)[4]!.vpn;
    const text = printState({
      config: { levels: 4, features: { pse: true, gbpages: true }, cpus: 1, maxPhysBits: 46, frames: 1, tablePool: { pfn: 0, count: 1 } },
      frames: [], tlb: [], pendingFlush: [], tablesInUse: 0, pendingTableFrees: 0,
      roots: [{ id: 0, kind: 'kernel', leaves: [leaf(base)] }, { id: 1, kind: 'process-user', leaves: [leaf(base + 7)] }],
    });
    const p = parsed(text);
    expect(p.dumps.map((d) => d.view)).toEqual(['root0', 'root1']);
    expect(p.dumps.map((d) => dumpLeaves(d).map((l) => l.vpn))).toEqual([[base], [base + 7]]);
  });
});
