/**
 * Every client mutant is caught (test/mutant-catch.ts says how): the list of a
 * walker that follows a table freed under it, apply_to_page_range writing through a huge
 * leaf, a kmap_local slot unmapped out of order, a mermap page freed without a flush, a
 * pool that hands out a page whose direct-map translation may still be cached, and a vfree
 * that frees before it flushes (a vunmap that leaves a huge leaf's tail mapped is
 * vunmap-keeps-huge-tail, in mutants-caught-linux.test.ts). The fuzzer's belief of what
 * the clients hold (fuzz/clients.ts) makes each show within a few hundred short sequences.
 */
import { describe, expect, it } from 'vitest';
import { CLIENTS } from '../fuzz/mutant-setup.ts';
import { catchMutant } from './mutant-catch.ts';

describe('every client mutant is caught', () => {
  it('there are some', () => expect(CLIENTS.size).toBeGreaterThan(0));
  it.each([...CLIENTS].map((name) => [name] as const))('%s', (name) => {
    catchMutant(name);
  });
});
