/**
 * The policy rules (a)–(f) of spec/policy.ts on hand-built states: each finds its
 * violation with the right witness (mapping, other mapping, frames), and says nothing on
 * the clean variant of the same state.
 */
import { describe, expect, it } from 'vitest';
import { X86_64_LAYOUT_4LEVEL as L } from '../spec/address.ts';
import {
  crossAliasWxViolations, firstPolicyViolation, noDirectMapViolations, pagetableMappingViolations, policyViolations,
  staticProtectionViolations, userKernelHalfViolations, wxViolations, type PolicyState,
} from '../spec/policy.ts';
import { kernelScenario } from '../spec/scenario.ts';
import {
  PAGE_KERNEL, PAGE_KERNEL_EXEC, PAGE_KERNEL_RO, PAGE_KERNEL_ROX, type FrameRun, type Leaf, type Prot,
} from '../spec/state.ts';

const config = kernelScenario().config;
const run = (pfn: number, count: number, use: FrameRun['use'], noDirectMap = false): FrameRun => ({ pfn, count, use, sensitive: false, noDirectMap });
const frames: FrameRun[] = [
  run(0, 100, 'data'),
  run(100, 10, 'kernel-text'),
  run(110, 10, 'kernel-rodata'),
  run(120, 10, 'pagetable'),
  run(130, 10, 'data', true),
  run(140, config.frames - 140, 'data'),
];
const V = L.vmallocStart;
const leaf = (vpn: number, pfn: number, prot: Prot, size: Leaf['size'] = '4K'): Leaf => ({ vpn, pfn, size, prot });
const dm = (pfn: number, prot: Prot = PAGE_KERNEL): Leaf => leaf(L.pageOffset + pfn, pfn, prot);
const image = (pfn: number, prot: Prot): Leaf => leaf(L.kernelText + pfn, pfn, prot);
const state = (...leaves: Leaf[]): PolicyState => ({
  config, frames, roots: [{ id: 0, kind: 'kernel', leaves: [...leaves].sort((a, b) => a.vpn - b.vpn) }],
});

/** A clean state: data RW in the direct map, text ROX in the image and RO in the direct map, a table page RW. */
const clean = [dm(5), dm(100, PAGE_KERNEL_RO), image(100, PAGE_KERNEL_ROX), dm(110, PAGE_KERNEL_RO), image(110, PAGE_KERNEL_RO), dm(120), leaf(V, 5, PAGE_KERNEL)];

describe('policy', () => {
  it('finds nothing in a clean state', () => {
    expect(policyViolations(state(...clean))).toEqual([]);
    expect(firstPolicyViolation(state(...clean))).toBeNull();
  });

  it('(a) W+X: the writable, executable leaf', () => {
    const bad = leaf(V + 1, 7, PAGE_KERNEL_EXEC, '2M');
    expect(wxViolations(state(...clean))).toEqual([]);
    const [v, ...rest] = wxViolations(state(...clean, bad));
    expect(rest).toEqual([]);
    expect(v).toMatchObject({ rule: 'wx', mapping: { root: 0, leaf: bad }, pfn: 7, count: 512 });
    expect(v!.reason).toMatch(/writable and executable/);
  });

  it('(b) cross-alias W^X: the writable and the executable mapping of the same frames', () => {
    const x = leaf(V + 7, 5, PAGE_KERNEL_ROX);
    expect(crossAliasWxViolations(state(...clean))).toEqual([]);
    // The same frame RO in the direct map and X elsewhere is fine.
    expect(crossAliasWxViolations(state(dm(5, PAGE_KERNEL_RO), x))).toEqual([]);
    const vs = crossAliasWxViolations(state(...clean, x));
    // Frame 5 is writable through the direct map and through vmalloc.
    expect(vs.map((v) => [v.mapping.leaf.vpn, v.other?.leaf.vpn, v.pfn, v.count])).toEqual([
      [L.pageOffset + 5, V + 7, 5, 1],
      [V, V + 7, 5, 1],
    ]);
    // A 2M executable leaf over several writable 4K aliases: overlap frames reported.
    const big = leaf(V + 512, 0, PAGE_KERNEL_ROX, '2M');
    const [w] = crossAliasWxViolations(state(dm(300, PAGE_KERNEL_RO), dm(400), big));
    expect(w).toMatchObject({ rule: 'cross-alias-wx', mapping: { leaf: dm(400) }, other: { leaf: big }, pfn: 400, count: 1 });
    expect(crossAliasWxViolations(state(dm(5), x, leaf(V + 9, 5, PAGE_KERNEL)), 1)).toHaveLength(1);
  });

  it('(c) rodata and text writable through any mapping; image text NX', () => {
    expect(staticProtectionViolations(state(...clean))).toEqual([]);
    const [rw] = staticProtectionViolations(state(...clean, leaf(V + 3, 108, PAGE_KERNEL, '4K'), leaf(V + 4, 109, PAGE_KERNEL_RO)));
    expect(rw).toMatchObject({ rule: 'static', mapping: { leaf: { vpn: V + 3 } }, pfn: 108, count: 1 });
    expect(rw!.reason).toMatch(/kernel-text frame .* writable/);
    const ro = staticProtectionViolations(state(dm(112)));
    expect(ro).toMatchObject([{ pfn: 112, count: 1 }]);
    expect(ro[0]!.reason).toMatch(/kernel-rodata/);
    const [nx] = staticProtectionViolations(state(image(101, PAGE_KERNEL_RO)));
    expect(nx).toMatchObject({ rule: 'static', pfn: 101, count: 1 });
    expect(nx!.reason).toMatch(/not executable in the kernel image/);
    // An NX alias of text elsewhere is allowed; so is NX on image pages of rodata.
    expect(staticProtectionViolations(state(leaf(V, 101, PAGE_KERNEL_RO), image(111, PAGE_KERNEL_RO)))).toEqual([]);
  });

  it('(d) a page-table frame mapped anywhere but its direct-map page', () => {
    expect(pagetableMappingViolations(state(...clean))).toEqual([]);
    // The frames just below the pool are not table frames.
    expect(pagetableMappingViolations(state(...clean, leaf(V + 30, 118, PAGE_KERNEL_RO), leaf(V + 31, 119, PAGE_KERNEL_RO)))).toEqual([]);
    const big = leaf(V + 512, 0, PAGE_KERNEL_RO, '2M');
    expect(pagetableMappingViolations(state(big))).toMatchObject([{ rule: 'pagetable', mapping: { leaf: big }, pfn: 120, count: 10 }]);
    // The direct map of another frame's address is not "its own" page.
    const shifted = leaf(L.pageOffset + 1, 121, PAGE_KERNEL_RO);
    expect(pagetableMappingViolations(state(shifted))).toMatchObject([{ pfn: 121, count: 1 }]);
  });

  it('(e) user access in the kernel half', () => {
    expect(userKernelHalfViolations(state(...clean))).toEqual([]);
    const bad = leaf(V + 40, 6, { ...PAGE_KERNEL_RO, user: true });
    expect(userKernelHalfViolations(state(...clean, bad))).toMatchObject([{ rule: 'user-kernel-half', mapping: { leaf: bad }, pfn: 6, count: 1 }]);
    // User pages of the user half are not this rule's business.
    expect(userKernelHalfViolations(state(leaf(0x400, 6, { ...PAGE_KERNEL_RO, user: true })))).toEqual([]);
  });

  it('(f) a noDirectMap frame mapped in the kernel half', () => {
    expect(noDirectMapViolations(state(...clean))).toEqual([]);
    const bad = leaf(V + 50, 135, PAGE_KERNEL);
    expect(noDirectMapViolations(state(...clean, bad))).toMatchObject([{ rule: 'no-direct-map', mapping: { leaf: bad }, pfn: 135, count: 1 }]);
    expect(noDirectMapViolations(state(dm(131)))).toMatchObject([{ pfn: 131 }]);
  });

  it('with a scope, reports only violations involving a mapping inside it', () => {
    const wx = leaf(V + 100, 7, PAGE_KERNEL_EXEC);
    const x = leaf(V + 7, 5, PAGE_KERNEL_ROX);
    const s = state(...clean, wx, x);
    expect(policyViolations(s, Infinity, [{ vpn: V + 200, pages: 10 }])).toEqual([]);
    expect(policyViolations(s, Infinity, [{ vpn: V + 100, pages: 1 }]).map((v) => v.rule)).toEqual(['wx']);
    // The executable side in scope finds every writable alias, wherever it is.
    const fromX = crossAliasWxViolations(s, Infinity, [{ vpn: V + 7, pages: 1 }]);
    expect(fromX.map((v) => v.mapping.leaf.vpn)).toEqual([L.pageOffset + 5, V]);
    // The writable side in scope finds the executable aliases outside it.
    expect(crossAliasWxViolations(s, Infinity, [{ vpn: L.pageOffset + 5, pages: 1 }]).map((v) => v.other?.leaf.vpn)).toEqual([V + 7]);
    // Overlapping scope ranges report a leaf once.
    expect(wxViolations(s, Infinity, [{ vpn: V + 90, pages: 20 }, { vpn: V + 100, pages: 5 }])).toHaveLength(1);
  });

  it('reports rules in the order (a)..(f) and honours the limit', () => {
    const s = state(leaf(V, 135, { ...PAGE_KERNEL_EXEC, user: true, execUser: true }));
    expect(policyViolations(s).map((v) => v.rule)).toEqual(['wx', 'user-kernel-half', 'no-direct-map']);
    expect(firstPolicyViolation(s)?.rule).toBe('wx');
    expect(policyViolations(s, 2)).toHaveLength(2);
  });
});
