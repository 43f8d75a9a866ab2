/**
 * zapPageRange's postcondition (CONTRACTS.zapPageRange, spec/contracts/clients.ts): the teardown
 * of zap_page_range_single through an mmu_gather. Its first half is unmapUser's relation
 * (process.ts), sentence for sentence, under this operation's name; its second is
 * tlb_finish_mmu's tlb_flush_mmu_free: the gathered pages whose last reference the unmap
 * dropped go back to the page allocator.
 *
 * Which frames those are, as the contract words it: the frames the two KPTI copies'
 * leaves mapped inside the range before (a huge leaf straddling an end gathers only its
 * part inside: the pieces the split keeps stay mapped), less those that are no
 * page-allocator page (not data, or noDirectMap: the unmapped pool's), less those some
 * leaf of any root maps after the unmap at a page other than the frame's own direct-map
 * page (folio_put: another mapping still holds the folio). "After the unmap" is the state
 * the first half's effect leaves, derived from the state before; the step's after-state
 * is then held to the whole effect. Non-present entries (set_memory_np's) hold no frame:
 * the contract counts leaves.
 */
import { PAGES, type Pfn, type Vpn } from '../../address.ts';
import { processRootIds } from '../../roots.ts';
import type { AbstractState, Leaf, RootId } from '../../state.ts';
import { validateZap } from '../clients.ts';
import { directMapVpn } from '../directmap.ts';
import { clauses } from './clause.ts';
import { rootLeaves, type FrameChange } from './effect.ts';
import { leafEnd, meeting } from './leaves.ts';
import { unmapUserEffect, unmapUserRefusal, unmapUserSay } from './process.ts';
import { RangeSet, rangeEnd, type Range } from './ranges.ts';
import { contractClauses, needsClients, needsIsolation, type Capability, type Contract } from './relation.ts';

const say = contractClauses('zapPageRange', {
  enoent: unmapUserSay.enoent.sentence,
  leaves: unmapUserSay.leaves.sentence,
  tlb: unmapUserSay.tlb.sentence,
  obligations: unmapUserSay.obligations.sentence,
  tables: unmapUserSay.tables.sentence,
  frames:
    'after the process flush, every frame a removed leaf mapped inside the range that is data, not noDirectMap, and mapped by no leaf of any root but at its own direct-map page becomes free (tlb_flush_mmu_free), strict keeping those a TLB may still reach (D7, C1); every other frame keeps its use',
  clients: "zapPageRange: the clients' bookkeeping is unchanged",
});

/**
 * Both capabilities, one refusal: EINVAL op without the clients' (it is a client
 * operation) or without isolation (it works on a process). Either way the same errno,
 * argument and clause id, so one sentence names both.
 */
function needsClientsAndIsolation(): Capability {
  const clients = needsClients('zapPageRange');
  const isolation = needsIsolation('zapPageRange');
  const clause = clauses('zapPageRange', { capability: `${clients.clause.sentence}, or the isolation capability (no processes), before anything else` }).capability;
  return { error: clients.error, clause, has: (s) => clients.has(s) && isolation.has(s) };
}

/*
 * Sets of frames are RangeSets over frame numbers: a Range's `vpn` is a pfn here and its
 * `pages` a count (the set arithmetic is the same for physical pages).
 */
const frameRange = (pfn: Pfn, count: number): Range => ({ vpn: pfn, pages: count });

/** A run of pages a leaf maps, [vpn, +pages) → [pfn, +pages): a whole leaf, or the part of one a split keeps. */
interface Run {
  readonly vpn: Vpn;
  readonly pfn: Pfn;
  readonly pages: number;
}

/** The part of leaf `l` on [lo, hi), if any. */
function part(l: Leaf, lo: Vpn, hi: Vpn): Run | null {
  const from = Math.max(l.vpn, lo);
  const to = Math.min(leafEnd(l), hi);
  return from < to ? { vpn: from, pfn: l.pfn + (from - l.vpn), pages: to - from } : null;
}

/** A user-half range of process `pid`. */
type UserRange = Range & { readonly pid: number };

/** The two KPTI copies, whose leaves the unmap removes. */
const copiesOf = (pid: number): readonly RootId[] => [processRootIds(pid).userRoot, processRootIds(pid).kernelRoot];

/** The gathered frames: those the copies' leaves map inside the range (the copies map the same frames; a hand-built state may not). */
function gathered(before: AbstractState, c: UserRange): RangeSet {
  const runs = copiesOf(c.pid).flatMap((id) => {
    const leaves = rootLeaves(before, id);
    const [lo, hi] = meeting(leaves, c);
    return leaves.slice(lo, hi).map((l) => part(l, c.vpn, rangeEnd(c))!);
  });
  return new RangeSet(runs.map((r) => frameRange(r.pfn, r.pages)));
}

/**
 * The runs every root's leaves map after the unmap, as the contract's first half leaves
 * them: the copies without the range (a straddling leaf's pieces outside it kept), every
 * other root as it was. Derived from the state before, so what the relation expects does
 * not bend to a wrong after-state (whose leaves the first half judges).
 */
function mappedAfterUnmap(before: AbstractState, c: UserRange): Run[] {
  const copies = copiesOf(c.pid);
  return before.roots.flatMap((r) =>
    r.leaves.flatMap((l): Run[] => {
      if (!copies.includes(r.id)) return [{ vpn: l.vpn, pfn: l.pfn, pages: PAGES[l.size] }];
      return [part(l, l.vpn, c.vpn), part(l, rangeEnd(c), leafEnd(l))].filter((x): x is Run => x !== null);
    }),
  );
}

/**
 * The gathered frames that keep their use: no page-allocator page (not data, or
 * noDirectMap), or still mapped after the unmap elsewhere than at their own direct-map
 * page. A run maps its frames at a linear offset, as __va does, so it is at its frames'
 * own direct-map pages either for all of them or for none.
 */
function kept(before: AbstractState, c: UserRange, frames: RangeSet): RangeSet {
  const dmOffset = directMapVpn(before.config.levels, 0);
  const meets = (pfn: Pfn, count: number): boolean => frames.meets(pfn, pfn + count);
  const notPages = before.frames.filter((r) => (r.use !== 'data' || r.noDirectMap) && meets(r.pfn, r.count));
  const aliases = mappedAfterUnmap(before, c).filter((r) => r.vpn - r.pfn !== dmOffset && meets(r.pfn, r.pages));
  return new RangeSet([...notPages.map((r) => frameRange(r.pfn, r.count)), ...aliases.map((r) => frameRange(r.pfn, r.pages))]);
}

/**
 * Strict: the frames some TLB may still reach after the process flush elsewhere than at
 * their direct-map page: cached by another root's entry (D7), or a stale mermap
 * allocation's, or a lazily freed vmalloc area's with its range still owed (C1).
 */
function stillReached(before: AbstractState, c: UserRange): RangeSet {
  const dmOffset = directMapVpn(before.config.levels, 0);
  const ours = Object.values(processRootIds(c.pid));
  const cached = before.tlb.filter((e) => !ours.includes(e.root) && e.leaf.vpn - e.leaf.pfn !== dmOffset).map((e) => frameRange(e.leaf.pfn, PAGES[e.leaf.size]));
  const cs = before.clients;
  const stale = (cs?.mermap ?? []).flatMap((m) => m.stale.map((a) => frameRange(a.pfn, a.pages)));
  const owed = new RangeSet(before.pendingFlush.map((o) => ({ vpn: o.vpn, pages: o.pages })));
  const lazy = (cs?.lazy ?? []).filter((a) => owed.meets(a.vpn, a.vpn + a.pages)).map((a) => frameRange(a.pfn, a.pages));
  return new RangeSet([...cached, ...stale, ...lazy]);
}

/** The frames tlb_flush_mmu_free frees: the gathered ones nothing else holds (strict: and no TLB may still reach). */
function freedFrames(before: AbstractState, c: UserRange, strict: boolean): FrameChange[] {
  const frames = gathered(before, c);
  if (frames.ranges.length === 0) return [];
  const held = strict ? new RangeSet([...kept(before, c, frames).ranges, ...stillReached(before, c).ranges]) : kept(before, c, frames);
  return frames.ranges.flatMap((g) => held.outside(g.vpn, rangeEnd(g))).map((r) => ({ pfn: r.vpn, count: r.pages, value: 'free' as const }));
}

export const ZAP_PAGE_RANGE: Contract<'zapPageRange'> = {
  source: 'spec/contracts/clients.ts',
  capability: needsClientsAndIsolation(),
  say,
  args: (config, c) => validateZap(config, c.pid, c.vpn, c.pages),
  state: (before, c) => unmapUserRefusal(before, c, say.enoent),
  scope: () => [],
  // leaves, tlb, obligations, tables: unmapUser's, under this operation's sentences; frames:
  // the gathered pages freed (strict keeps those a TLB may still reach; the relation is not told the profile).
  effect: (before, c) => [true, false].map((strict) => ({ ...unmapUserEffect(before, c, say.leaves), frameUse: freedFrames(before, c, strict) })),
};
