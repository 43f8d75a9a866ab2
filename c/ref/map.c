/*
 * map.c: map and unmap as the linux profile does them (spec/contracts/map.ts and
 * unmap.ts, their `linux` parts; mm/vmalloc.c and arch/x86/mm/init_64.c read for facts).
 *
 * map places leaves greedily (the largest size up to max_page the CPU has, page and frame
 * aligned to it, that still fits), reuses a table the kernel kept where it needs one and
 * frees the kept table hanging where a huge leaf goes (vmap_try_huge_pmd / _pud through
 * pmd_free_pte_page / pud_free_pmd_page, which flush one page there first). ENOMEM is
 * judged on the table count after the operation, so a map is planned first and then done.
 *
 * unmap is vunmap_range: every entry meeting the range is cleared whole, a huge leaf
 * too; no table is freed; then the range is flushed, or owed a flush (vunmap_range_noflush).
 */
#include "sys.h"

/* The leaves map makes, one at a time. */
struct placer {
	uint64_t vpn, pfn, left;
	uint32_t max_page, features;
};

static int size_supported(uint32_t features, uint32_t size)
{
	return size == PTSPEC_4K || (size == PTSPEC_2M ? (features & 1u) != 0 : (features & 2u) != 0);
}

static int next_leaf(struct placer *p, uint64_t *vpn, uint64_t *pfn, uint32_t *size)
{
	if (p->left == 0)
		return 0;
	uint32_t s = p->max_page;
	for (; s > PTSPEC_4K; s--) {
		uint64_t n = size_pages(s);
		if (n <= p->left && p->vpn % n == 0 && p->pfn % n == 0 && size_supported(p->features, s))
			break;
	}
	*vpn = p->vpn;
	*pfn = p->pfn;
	*size = s;
	p->vpn += size_pages(s);
	p->pfn += size_pages(s);
	p->left -= size_pages(s);
	return 1;
}

/* Whether some page of [lo, hi) has an entry (a leaf, or a non-present entry holding its slot) under table t. */
static int has_entry(const struct ptspec_system *sys, const pte_t *t, int level, uint64_t base, uint64_t lo, uint64_t hi)
{
	uint64_t span = entry_pages(level);
	uint64_t from = lo > base ? lo : base;
	uint64_t to = hi < base + PTRS_PER_TABLE * span ? hi : base + PTRS_PER_TABLE * span;
	for (uint64_t i = (from - base) / span; i <= (to - 1 - base) / span; i++) {
		pte_t e = t[i];
		if (e == 0)
			continue;
		const pte_t *child = pte_table(e, level) ? pool_table(&sys->pool, e) : NULL;
		if (child == NULL || has_entry(sys, child, level - 1, base + i * span, lo, hi))
			return 1;
	}
	return 0;
}

static int range_has_entry(const struct ptspec_system *sys, uint64_t vpn, uint64_t pages)
{
	int top = (int)sys->levels;
	return has_entry(sys, sys->pool.table[sys->pgd], top, table_base(vpn, top), vpn, vpn + pages);
}

/*
 * The plan of a map over an empty range: the tables it allocates, those it frees (kept
 * tables where its huge leaves go, with everything below them) and how many of those
 * frees flush. The tables it allocates are counted once each: the leaves come in vpn
 * order, so a missing table is the one the previous leaf found missing or a new one.
 */
struct map_plan {
	uint64_t allocs, frees, flushes;
};

static void plan_map(const struct ptspec_system *sys, struct placer p, struct map_plan *plan)
{
	uint64_t last[6] = { ~0ull, ~0ull, ~0ull, ~0ull, ~0ull, ~0ull };
	uint64_t vpn, pfn;
	uint32_t size;
	pt_memzero(plan, sizeof(*plan));
	while (next_leaf(&p, &vpn, &pfn, &size)) {
		int leaf_level = size_level(size);
		const pte_t *t = sys->pool.table[sys->pgd];
		int missing = 0;
		for (int level = (int)sys->levels; level > leaf_level; level--) {
			if (!missing) {
				pte_t e = t[table_index(vpn, level)];
				if (pte_table(e, level)) {
					t = pool_table(&sys->pool, e);
					continue;
				}
				missing = 1;
			}
			if (last[level - 1] != table_base(vpn, level - 1)) {
				last[level - 1] = table_base(vpn, level - 1);
				plan->allocs++;
			}
		}
		pte_t e = missing ? 0 : t[table_index(vpn, leaf_level)];
		if (pte_table(e, leaf_level)) {
			plan->frees += count_subtree(&sys->pool, e, leaf_level);
			plan->flushes++;
		}
	}
}

/* The level-`level` slot of vpn, allocating the tables above it that are missing (the plan made room). */
static pte_t *slot_alloc(struct ptspec_system *sys, uint64_t vpn, int level)
{
	pte_t *t = sys->pool.table[sys->pgd];
	for (int l = (int)sys->levels; l > level; l--) {
		pte_t *slot = &t[table_index(vpn, l)];
		if (!pte_table(*slot, l)) {
			uint32_t idx;
			if (pool_alloc(&sys->pool, &idx) != 0)
				return NULL;
			*slot = mk_table_entry(sys->pool.pfn + idx);
		}
		t = pool_table(&sys->pool, *slot);
	}
	return &t[table_index(vpn, level)];
}

PTSPEC_EXPORT int ptspec_map(ptspec_system *sys, uint32_t root, uint64_t vpn, uint64_t pfn, uint64_t pages, uint32_t prot, uint32_t max_page)
{
	(void)root;
	if (range_has_entry(sys, vpn, pages))
		return -PT_EEXIST;
	struct placer start = { vpn, pfn, pages, max_page, sys->features };
	struct map_plan plan;
	plan_map(sys, start, &plan);
	if (pool_in_use(&sys->pool) + plan.allocs - plan.frees > sys->pool.count)
		return -PT_ENOMEM;
	struct range *flushes = pt_alloc(sizeof(*flushes) * (plan.flushes + 1));
	if (flushes == NULL)
		return -PT_ENOMEM;
	uint32_t nflush = 0;
	uint64_t at, to;
	uint32_t size;
	/* First the kept tables where huge leaves go, so the allocations below always fit. */
	struct placer p = start;
	while (plan.frees > 0 && next_leaf(&p, &at, &to, &size)) {
		struct lookup l;
		lookup(sys, at, size_level(size), &l);
		if (size == PTSPEC_4K || l.level != size_level(size) || !pte_table(*l.slot, l.level))
			continue;
		free_subtree(&sys->pool, *l.slot, l.level);
		*l.slot = 0;
		/* pmd_free_pte_page / pud_free_pmd_page: "INVLPG to clear all paging-structure caches". */
		if (!MUTANT(TABLE_FREED_BEFORE_PURGE))
			flushes[nflush++] = (struct range){ at, 1 };
	}
	p = start;
	while (next_leaf(&p, &at, &to, &size)) {
		pte_t *slot = slot_alloc(sys, at, size_level(size));
		if (slot == NULL)
			break;
		*slot = mk_leaf(size_level(size), to, prot);
	}
	flush_ranges(sys, flushes, nflush);
	pt_free(flushes);
	return 0;
}

/* __vunmap_range_noflush under table t: every entry meeting [lo, hi) cleared, every table kept. */
static void vunmap_table(struct ptspec_system *sys, pte_t *t, int level, uint64_t base, uint64_t lo, uint64_t hi)
{
	uint64_t span = entry_pages(level);
	uint64_t from = lo > base ? lo : base;
	uint64_t to = hi < base + PTRS_PER_TABLE * span ? hi : base + PTRS_PER_TABLE * span;
	for (uint64_t i = (from - base) / span; i <= (to - 1 - base) / span; i++) {
		uint64_t at = base + i * span;
		int partial = at < lo || at + span > hi;
		if (MUTANT(VUNMAP_KEEPS_HUGE_TAIL) && partial && pte_leaf(t[i], level) && level > 1)
			(void)split_entry(sys, &t[i], level);
		pte_t *child = pte_table(t[i], level) ? pool_table(&sys->pool, t[i]) : NULL;
		if (child != NULL)
			vunmap_table(sys, child, level - 1, at, lo, hi);
		else
			t[i] = 0;
	}
}

PTSPEC_EXPORT int ptspec_unmap(ptspec_system *sys, uint32_t root, uint64_t vpn, uint64_t pages, uint32_t flush)
{
	(void)root;
	if (!range_has_entry(sys, vpn, pages))
		return -PT_ENOENT;
	int top = (int)sys->levels;
	vunmap_table(sys, sys->pool.table[sys->pgd], top, table_base(vpn, top), vpn, vpn + pages);
	struct range r = { vpn, pages };
	if (flush)
		flush_ranges(sys, &r, 1);
	else if (owe_flush(sys, vpn, pages, 0) != 0)
		return -PT_ENOMEM;
	return 0;
}
