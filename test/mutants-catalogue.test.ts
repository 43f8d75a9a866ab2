/**
 * The mutant catalogue itself (impl/mutants.ts): well-formed, every name injectable, and
 * listed by `ptspec mutants`. That each mutant is *caught* is the fuzz suite's job
 * (test/mutant-catch.ts).
 */
import { describe, expect, it } from 'vitest';
import { PAGES, X86_64_LAYOUT_4LEVEL as L } from '../spec/address.ts';
import { PAGE_KERNEL } from '../spec/state.ts';
import { kernelScenario } from '../spec/scenario.ts';
import { MUTANTS, MUTANT_NAMES, createImpl, isMutantName } from '../impl/index.ts';

describe('mutant catalogue', () => {
  it('has at least 8 mutants, one per name, each described and tied to a kernel bug or commit', () => {
    expect(MUTANTS.length).toBeGreaterThanOrEqual(8);
    expect(MUTANTS.map((m) => m.name)).toEqual([...MUTANT_NAMES]);
    for (const m of MUTANTS) {
      expect(m.description.length, m.name).toBeGreaterThan(40);
      expect(m.reference, m.name).toMatch(/arch\/x86|mm\/|[0-9a-f]{12}/);
      expect(m.caughtBy.length, m.name).toBeGreaterThan(5);
    }
  });

  it('cites commits by 12-hex abbreviated hashes', () => {
    // A tree read at a version ("gregkh/linux 6bf94737") names the snapshot, not a commit.
    const hashes = MUTANTS.flatMap((m) => m.reference.replace(/\b[\w-]+\/[\w.-]+ [0-9a-f]{8}\b/g, '').match(/\b[0-9a-f]{7,40}\b/g) ?? []);
    expect(hashes.length).toBeGreaterThanOrEqual(3);
    for (const h of hashes) expect(h).toHaveLength(12);
  });

  it('isMutantName accepts exactly the catalogue', () => {
    expect(MUTANT_NAMES.every(isMutantName)).toBe(true);
    expect(isMutantName('split-drops-everything')).toBe(false);
  });

  it('every mutant builds an impl that boots the kernel scenario', () => {
    const s = kernelScenario();
    for (const name of MUTANT_NAMES) {
      const sys = createImpl(s, { mutant: name });
      expect(sys.mutant).toBe(name);
      expect(sys.map(0, L.vmallocStart, 100 * 256, PAGES['2M'], PAGE_KERNEL).ok, name).toBe(true);
    }
  });
});
