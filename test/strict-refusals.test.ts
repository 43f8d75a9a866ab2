/**
 * The strict profile refuses, on the model and on the impl alike, every operation whose
 * result would break D1, D2, D3 or T5: EPERM naming the policy argument and the
 * invariant, a message that names it, and nothing changed. Each system decides on its own
 * (the model by the catalogue's checks, the impl by its counters and the written leaves),
 * so each case runs on both.
 */
import { describe, expect, it } from 'vitest';
import { createImpl } from '../impl/index.ts';
import { createModel } from '../model/index.ts';
import { X86_64_LAYOUT_4LEVEL as L } from '../spec/address.ts';
import { applyCommand } from '../spec/commands.ts';
import { STRICT_POLICY } from '../spec/contracts/outcome.ts';
import type { Result } from '../spec/errors.ts';
import { KERNEL_IMAGE as K, kernelScenario } from '../spec/scenario.ts';
import { PAGE_KERNEL, PAGE_KERNEL_RO, type Prot } from '../spec/state.ts';
import type { PageTableSystem } from '../spec/system.ts';
import { checkAll } from '../checker/index.ts';

const scenario = kernelScenario();
const DM = L.pageOffset;
const IMAGE = L.kernelText;
const VMALLOC = L.vmallocStart;
/** A data frame only the direct map maps; VPFN is the first frame of the booted 4K vmalloc area (VMALLOC + 1). */
const LONE = 50 * 256;
const VPFN = 100 * 256;
const UC: Prot = { ...PAGE_KERNEL, cache: 'UC-' };

const SYSTEMS: Record<string, () => PageTableSystem> = { model: () => createModel(scenario), impl: () => createImpl(scenario) };

function booted(make: () => PageTableSystem): PageTableSystem {
  const sys = make();
  for (const c of scenario.boot) {
    const r = applyCommand(sys, c);
    if (!r.ok) throw new Error(`boot failed: ${r.error.message}`);
  }
  return sys;
}

const nameOf = (id: string): string => STRICT_POLICY.find((p) => p.id === id)!.name;

/** `op` on a booted system (after `setup`) is refused with EPERM naming `arg` and `id`, and changes nothing. */
function expectRefused(make: () => PageTableSystem, setup: (s: PageTableSystem) => void, op: (s: PageTableSystem) => Result<unknown>, arg: string, id: string): void {
  const sys = booted(make);
  setup(sys);
  const before = sys.abstract();
  const r = op(sys);
  expect(r.ok).toBe(false);
  if (r.ok) return;
  expect([r.error.errno, r.error.arg, r.error.invariant]).toEqual(['EPERM', arg, id]);
  expect(r.error.message).toContain(`would break ${id} ${nameOf(id)}`);
  expect(sys.abstract()).toEqual(before);
}

for (const [side, make] of Object.entries(SYSTEMS)) {
  describe(`${side}: the strict profile refuses what would break the linear-map and memory-type rules`, () => {
    const ok = (r: Result<unknown>) => expect(r.ok, r.ok ? '' : r.error.message).toBe(true);

    it('D1: mapping another frame at a direct-map address unmapped before', () => {
      expectRefused(make, (s) => ok(s.unmap(0, DM + LONE, 1)), (s) => s.map(0, DM + LONE, LONE + 1, 1, PAGE_KERNEL_RO), 'prot', 'D1');
    });

    it('D2: mapping another frame at a high-map address of kernel data', () => {
      expectRefused(make, (s) => ok(s.unmap(0, IMAGE + K.dataPfn, 1)), (s) => s.map(0, IMAGE + K.dataPfn, K.dataPfn + 1, 1, PAGE_KERNEL), 'prot', 'D2');
    });

    it('D3: set_memory_x on a read-only direct-map page no other leaf maps', () => {
      expectRefused(make, (s) => ok(s.protect(DM + LONE, 1, { write: false })), (s) => s.protect(DM + LONE, 1, { exec: true }), 'change', 'D3');
    });

    it('T5: a UC- map of a frame the direct map maps WB, and set_memory_wc on a vmalloc page without its alias', () => {
      expectRefused(make, () => {}, (s) => s.map(0, VMALLOC + 5000, LONE, 1, UC), 'prot', 'T5');
      expectRefused(make, () => {}, (s) => s.protect(VMALLOC + 1, 1, { cache: 'WC' }), 'change', 'T5');
    });

    it('T5 allows a type all aliases share: set_memory_wc through the vmalloc alias carries it to the direct map', () => {
      const sys = booted(make);
      ok(sys.protect(VMALLOC + 1, 1, { cache: 'WC' }, { alias: true }));
      expect(checkAll(sys.abstract())).toEqual([]);
      // A second UC- alias of the now-WC frame is refused; one of its own type is not.
      expect(sys.map(0, VMALLOC + 5000, VPFN, 1, UC)).toMatchObject({ ok: false, error: { errno: 'EPERM', invariant: 'T5' } });
      ok(sys.map(0, VMALLOC + 5000, VPFN, 1, { ...PAGE_KERNEL, cache: 'WC' }));
    });

    it('an older rule keeps its precedence: a RW+X direct-map page is still P1, not D3', () => {
      expectRefused(make, () => {}, (s) => s.protect(DM + LONE, 1, { exec: true }), 'change', 'P1');
    });
  });
}
