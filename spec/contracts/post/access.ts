/**
 * The postconditions of translate, access, flush, flushAll and flushLocal (spec/contracts/access.ts),
 * clause by clause.
 */
import { PAGES, pagesPerEntry, pfnToHex, vpnToHex, type Level, type Vpn } from '../../address.ts';
import type { AbstractState, Leaf, Prot, TlbEntry, WalkCacheEntry } from '../../state.ts';
import type { AccessKind, AccessOutcome, Translation } from '../../system.ts';
import type { CommandOf } from '../../operations.ts';
import { validateAccess, validateFlush, validateFlushLocal, validateTranslate } from '../access.ts';
import { breach, leafText, type Clause, type PostViolation } from './clause.ts';
import { nothingBut, rangeFlush, rootEntries, viewLeafAt } from './effect.ts';
import { sameLeaf, windowsOf } from './leaves.ts';
import { RangeSet } from './ranges.ts';
import { contractClauses, type Contract } from './relation.ts';

/** The ids of the state's roots: what translate and access may name. */
const rootIdsOf = (s: AbstractState): ReadonlySet<number> => new Set(s.roots.map((r) => r.id));

/** One sentence for every part of the state (an operation leaves them alone, or one sentence says it all). */
const alone = (sentence: string): { leaves: string; frames: string; tlb: string; obligations: string; tables: string } =>
  ({ leaves: sentence, frames: sentence, tlb: sentence, obligations: sentence, tables: sentence });

const translateSay = contractClauses('translate', {
  ...alone('translate: nothing changes'),
  enoent: 'ENOENT vpn is not mapped',
  value: 'translate: {leaf, pfn: leaf.pfn + (vpn - leaf.vpn)}',
});

const accessSay = contractClauses('access', {
  ...alone('access: no other part of the state changes'),
  hit: 'the TLB entry of (cpu, root) covering vpn is used if present (of several, the smallest) (fromTlb: true, even when stale)',
  walk: "else the walk, from the deepest paging-structure-cache entry of (cpu, root) whose span holds vpn: through an 'unlinked' or 'freed' one it finds nothing; not mapped → {fault: 'not-present'} and no fill",
  tlb: "mapped → the leaf is inserted into that CPU's TLB and every table entry above it into its paging-structure caches as 'current' (a fill made by the walk stays)",
  permission: "then the permission check on the leaf's prot: a read needs kernel mode or a user page; a write needs that and write; a kernel-mode fetch needs execKernel on a supervisor page; a user-mode fetch needs execUser. Failing it: {fault: 'protection'}",
});

const flushSay = contractClauses('flush', {
  ...alone('flush: nothing else changes'),
  tlb: 'more than 33 pages → as flushAll; else on every CPU and root each TLB entry whose leaf intersects the range goes, and every paging-structure cache is emptied',
  obligations: 'the obligations lose their pages in the range (the pieces keep their reason)',
  tables: 'every pending table whose span intersects it is released (flush.ts)',
});

// The contract of flushAll is one sentence, about every part of the state.
const flushAllSay = contractClauses('flushAll', alone('flushAll: never fails; every TLB, paging-structure cache and obligation emptied, every pending table released (and nothing else changes)'));

const flushLocalSay = contractClauses('flushLocal', {
  ...alone('flushLocal: every other CPU, the obligations and the pending tables are unchanged'),
  tlb: "that CPU's TLB entries (every root) whose leaf intersects the range go and its paging-structure caches are emptied",
});

const pageAt = (c: { readonly vpn: Vpn }): { vpn: Vpn; pages: number } => ({ vpn: c.vpn, pages: 1 });
const walked = (leaf: Leaf, vpn: Vpn): Translation => ({ leaf, pfn: leaf.pfn + (vpn - leaf.vpn) });
const translationText = (t: Translation): string => `frame ${pfnToHex(t.pfn)} through ${leafText(t.leaf)}`;
const sameTranslation = (a: Translation, b: Translation): boolean => a.pfn === b.pfn && sameLeaf(a.leaf, b.leaf);

export const TRANSLATE: Contract<'translate'> = {
  source: 'spec/contracts/access.ts',
  say: translateSay,
  args: (config, c, before) => validateTranslate(config, c.root, c.vpn, rootIdsOf(before)),
  state: (before, c) => (viewLeafAt(before, c.root, c.vpn) !== undefined ? null : { error: { errno: 'ENOENT', arg: 'vpn' }, clause: translateSay.enoent }),
  scope: (_, c) => [pageAt(c)],
  effect: (before, c) => nothingBut(windowsOf(rootEntries(before), [pageAt(c)])),
  // value: the walk's leaf and the frame of vpn in it.
  value: (before, c, value) => {
    const want = walked(viewLeafAt(before, c.root, c.vpn)!, c.vpn);
    const got = value as Translation;
    return sameTranslation(want, got) ? [] : [breach(translateSay.value, `at ${vpnToHex(c.vpn)} expected ${translationText(want)}, found ${translationText(got)}`, [{ root: c.root, vpn: c.vpn, pages: 1, detail: 'translate' }])];
  },
};

/**
 * What the MMU needs for each kind of access (Intel SDM §4.6, CR0.WP and CR4.SMEP set as
 * Linux runs): user mode reaches only user pages; a write needs write; a fetch needs
 * the execute right of the mode, and the kernel never fetches from a user page.
 */
const PERMITS: Readonly<Record<AccessKind, (p: Prot, user: boolean) => boolean>> = {
  r: (p, user) => !user || p.user,
  w: (p, user) => (!user || p.user) && p.write,
  x: (p, user) => (user ? p.execUser : p.execKernel && !p.user),
};

/** Where an access looks: its CPU, root and page. */
type Looked = Pick<CommandOf<'access'>, 'cpu' | 'root' | 'vpn'>;

/** The TLB entries of (cpu, root) covering vpn, smallest first: the first is the one the access uses (a stale 4K entry beats a later 2M fill). */
export function coveringTlbEntries(tlb: readonly TlbEntry[], c: Looked): TlbEntry[] {
  const covering = tlb.filter((e) => e.cpu === c.cpu && e.root === c.root && e.leaf.vpn <= c.vpn && c.vpn < e.leaf.vpn + PAGES[e.leaf.size]);
  return covering.sort((a, b) => PAGES[a.leaf.size] - PAGES[b.leaf.size]);
}

/** The paging-structure-cache entry the walk of (cpu, root) for vpn starts from: the deepest (lowest level) whose span holds vpn. */
export function walkStart(cache: readonly WalkCacheEntry[], c: Looked): WalkCacheEntry | undefined {
  const covering = cache.filter((w) => w.cpu === c.cpu && w.root === c.root && w.vpn <= c.vpn && c.vpn < w.vpn + pagesPerEntry((w.level + 1) as Level));
  return covering.sort((a, b) => a.level - b.level)[0];
}

/** What access must return: through the entry (cpu, root) has cached for vpn, else through the walk. */
function accessed(before: AbstractState, c: CommandOf<'access'>): { hit?: TlbEntry; leaf?: Leaf; want: AccessOutcome } {
  const hit = coveringTlbEntries(before.tlb, c)[0];
  // Through a cached entry whose table is no longer in place the walk finds nothing.
  const start = hit === undefined ? walkStart(before.walkCache ?? [], c) : undefined;
  const dead = start !== undefined && start.table !== 'current';
  // The walk reads the root's view: a process root's kernel half is init_mm's (or root 1's, 2's) tables.
  const leaf = hit?.leaf ?? (dead ? undefined : viewLeafAt(before, c.root, c.vpn));
  if (leaf === undefined) return { want: { fault: 'not-present' } };
  const permitted = PERMITS[c.kind](leaf.prot, c.mode === 'user');
  const want: AccessOutcome = permitted ? { fault: false, translation: walked(leaf, c.vpn), fromTlb: hit !== undefined } : { fault: 'protection' };
  return { ...(hit === undefined ? {} : { hit }), leaf, want };
}

/** The clause a wrong outcome breaks: the hit's when there was one; else the walk's when what it found differs, the permission check's when only the verdict does. */
function clauseFor(hit: TlbEntry | undefined, want: AccessOutcome, got: AccessOutcome): Clause {
  if (hit !== undefined) return accessSay.hit;
  const verdictOnly = want.fault !== got.fault && want.fault !== 'not-present' && got.fault !== 'not-present';
  return verdictOnly ? accessSay.permission : accessSay.walk;
}

const outcomeText = (o: AccessOutcome): string => (o.fault !== false ? `fault ${o.fault}` : `${translationText(o.translation)}${o.fromTlb ? ' from the TLB' : ' by a walk'}`);

function sameOutcome(a: AccessOutcome, b: AccessOutcome): boolean {
  if (a.fault !== false || b.fault !== false) return a.fault === b.fault;
  return a.fromTlb === b.fromTlb && sameTranslation(a.translation, b.translation);
}

export const ACCESS: Contract<'access'> = {
  source: 'spec/contracts/access.ts',
  say: accessSay,
  args: (config, c, before) => validateAccess(config, c.cpu, c.root, c.vpn, c.kind, c.mode, rootIdsOf(before)),
  state: () => null,
  scope: (_, c) => [pageAt(c)],
  // tlb: a walk that found a leaf fills (cpu, root) with it; a hit or a miss fills nothing.
  effect: (before, c) => {
    const { hit, leaf } = accessed(before, c);
    return nothingBut(windowsOf(rootEntries(before), [pageAt(c)]), hit === undefined && leaf !== undefined ? { fill: { cpu: c.cpu, root: c.root, leaf } } : {});
  },
  // hit, walk, permission: the outcome.
  value: (before, c, value): PostViolation[] => {
    const { hit, want } = accessed(before, c);
    const got = value as AccessOutcome;
    if (sameOutcome(want, got)) return [];
    const what = `${c.kind} access in ${c.mode} mode on cpu ${c.cpu} at ${vpnToHex(c.vpn)}: expected ${outcomeText(want)}, found ${outcomeText(got)}`;
    return [breach(clauseFor(hit, want, got), what, [{ root: c.root, vpn: c.vpn, pages: 1, detail: what }])];
  },
};

export const FLUSH: Contract<'flush'> = {
  source: 'spec/contracts/access.ts',
  say: flushSay,
  args: (config, c) => validateFlush(config, c.vpn, c.pages),
  state: () => null,
  scope: () => [],
  // tlb, obligations, tables: the range flushed; leaves untouched.
  effect: (before, c) => nothingBut(RangeSet.EMPTY, { flushed: rangeFlush([c]) }),
};

export const FLUSH_LOCAL: Contract<'flushLocal'> = {
  source: 'spec/contracts/access.ts',
  say: flushLocalSay,
  args: (config, c) => validateFlushLocal(config, c.cpu, c.vpn, c.pages),
  state: () => null,
  scope: () => [],
  // tlb: the CPU's entries meeting the range and its paging-structure caches; nothing else.
  effect: (_, c) => nothingBut(RangeSet.EMPTY, { flushedLocal: { cpu: c.cpu, range: { vpn: c.vpn, pages: c.pages } } }),
};

export const FLUSH_ALL: Contract<'flushAll'> = {
  source: 'spec/contracts/access.ts',
  say: flushAllSay,
  args: () => null,
  state: () => null,
  scope: () => [],
  // tlb, obligations, tables: everything flushed.
  effect: () => nothingBut(RangeSet.EMPTY, { flushed: 'all' }),
};
