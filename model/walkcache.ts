/**
 * The paging-structure caches (spec/state.ts WalkCacheEntry; spec/contracts/access.ts and
 * flush.ts): per (cpu, root), the non-leaf entries a walk went through, on a plain array
 * in canonical order (cpu, root, level, vpn). A walk that reaches a leaf caches every
 * table above it; a later walk starts from the deepest cached entry covering its page, so
 * a table unlinked without a flush is still walked through (and found empty) until a
 * flush empties the caches.
 */
import { leafLevel, pagesPerEntry, type Level, type PagingLevels, type Vpn } from '../spec/address.ts';
import { INIT_MM, type Leaf, type RootId, type WalkCacheEntry } from '../spec/state.ts';

/** The canonical order: (cpu, root, level, vpn). */
export function compareWalkCacheEntries(a: WalkCacheEntry, b: WalkCacheEntry): number {
  return a.cpu - b.cpu || a.root - b.root || a.level - b.level || a.vpn - b.vpn;
}

/** Pages the level-L table spans: one entry of the table above it. */
const tableSpan = (level: Level): number => pagesPerEntry((level + 1) as Level);

/** The first page of the level-L table holding vpn. */
export const tableBase = (level: Level, vpn: Vpn): Vpn => Math.floor(vpn / tableSpan(level)) * tableSpan(level);

/** The entry a walk of (cpu, root) for vpn starts from: the deepest (lowest level) cached table whose span holds vpn. */
export function walkStart(cache: readonly WalkCacheEntry[], cpu: number, root: RootId, vpn: Vpn): WalkCacheEntry | undefined {
  let best: WalkCacheEntry | undefined;
  for (const w of cache) {
    if (w.cpu !== cpu || w.root !== root || vpn < w.vpn || vpn >= w.vpn + tableSpan(w.level)) continue;
    if (best === undefined || w.level < best.level) best = w;
  }
  return best;
}

/**
 * The caches after a walk of (cpu, root) reached `leaf`: every table the walk passed
 * below the root (the level of the leaf's own table up to levels - 1) cached as
 * 'current', each replacing what that CPU had cached under the same key.
 */
export function fillWalkCache(cache: readonly WalkCacheEntry[], levels: PagingLevels, cpu: number, root: RootId, leaf: Leaf): WalkCacheEntry[] {
  const filled: WalkCacheEntry[] = [];
  for (let L = leafLevel(leaf.size); L < levels; L++) {
    const level = L as Level;
    filled.push({ cpu, root, level, vpn: tableBase(level, leaf.vpn), table: 'current' });
  }
  const kept = cache.filter((w) => !filled.some((f) => compareWalkCacheEntries(f, w) === 0));
  return kept.concat(filled).sort(compareWalkCacheEntries);
}

/**
 * The caches after init_mm's tables `removed` (level and first page) left their places
 * without a flush: every CPU's 'current' entry for one of them becomes 'unlinked' (the
 * table is empty and waits on the deferred-free list; it is not freed, so never 'freed').
 * `walksInit` says whether a root's walk at a page goes through init_mm's tables (every
 * process's kernel half does: spec/roots.ts); without isolation only init_mm's does.
 */
export function unlinkTables(
  cache: readonly WalkCacheEntry[], removed: readonly { readonly level: Level; readonly vpn: Vpn }[],
  walksInit: (root: RootId, vpn: Vpn) => boolean = (root) => root === INIT_MM,
): readonly WalkCacheEntry[] {
  if (cache.length === 0 || removed.length === 0) return cache;
  const keys = new Set(removed.map((t) => `${t.level}:${t.vpn}`));
  let changed = false;
  const out = cache.map((w) => {
    if (w.table !== 'current' || !keys.has(`${w.level}:${w.vpn}`) || !walksInit(w.root, w.vpn)) return w;
    changed = true;
    return { ...w, table: 'unlinked' as const };
  });
  return changed ? out : cache;
}

/** The caches without one CPU's entries (its INVLPG empties all of them, whatever the address). */
export function dropCpu(cache: readonly WalkCacheEntry[], cpu: number): readonly WalkCacheEntry[] {
  return cache.some((w) => w.cpu === cpu) ? cache.filter((w) => w.cpu !== cpu) : cache;
}
