/*
 * tables.c: the table pool and the walk from init_mm's pgd. Each table is one frame of
 * the setup's pool (pfn + index); its 512 entries live in memory this library allocates
 * when the frame becomes a table, so a table entry holds the real frame number and the
 * walk follows it back through the pool.
 */
#include "sys.h"

int pool_init(struct pool *p, uint64_t pfn, uint64_t count)
{
	pt_memzero(p, sizeof(*p));
	if (count == 0 || count > 0xffffffffull)
		return -1;
	p->pfn = pfn;
	p->count = (uint32_t)count;
	p->table = pt_alloc(sizeof(*p->table) * p->count);
	p->gen = pt_alloc(sizeof(*p->gen) * p->count);
	p->free = pt_alloc(sizeof(*p->free) * p->count);
	if (p->table == NULL || p->gen == NULL || p->free == NULL)
		return -1;
	/* The top of the stack is the lowest frame: tables come from the start of the pool. */
	for (uint32_t i = 0; i < p->count; i++)
		p->free[i] = p->count - 1 - i;
	p->nfree = p->count;
	return 0;
}

int pool_copy(struct pool *dst, const struct pool *src)
{
	if (pool_init(dst, src->pfn, src->count) != 0)
		return -1;
	pt_memcpy(dst->gen, src->gen, sizeof(*dst->gen) * src->count);
	pt_memcpy(dst->free, src->free, sizeof(*dst->free) * src->count);
	dst->nfree = src->nfree;
	for (uint32_t i = 0; i < src->count; i++) {
		if (src->table[i] == NULL)
			continue;
		dst->table[i] = pt_alloc(sizeof(pte_t) * PTRS_PER_TABLE);
		if (dst->table[i] == NULL)
			return -1;
		pt_memcpy(dst->table[i], src->table[i], sizeof(pte_t) * PTRS_PER_TABLE);
	}
	return 0;
}

void pool_destroy(struct pool *p)
{
	if (p->table != NULL)
		for (uint32_t i = 0; i < p->count; i++)
			pt_free(p->table[i]);
	pt_free(p->table);
	pt_free(p->gen);
	pt_free(p->free);
	pt_memzero(p, sizeof(*p));
}

int pool_alloc(struct pool *p, uint32_t *idx)
{
	if (p->nfree == 0)
		return -1;
	pte_t *t = pt_alloc(sizeof(pte_t) * PTRS_PER_TABLE);
	if (t == NULL)
		return -1;
	*idx = p->free[--p->nfree];
	p->table[*idx] = t;
	return 0;
}

void pool_release(struct pool *p, uint32_t idx)
{
	pt_free(p->table[idx]);
	p->table[idx] = NULL;
	p->gen[idx]++;
	p->free[p->nfree++] = idx;
}

pte_t *pool_table(const struct pool *p, pte_t e)
{
	uint64_t pfn = pte_pfn(e, 2);
	if (pfn < p->pfn || pfn - p->pfn >= p->count)
		return NULL;
	return p->table[pfn - p->pfn];
}

void free_subtree(struct pool *p, pte_t e, int level)
{
	pte_t *t = pool_table(p, e);
	if (t == NULL)
		return;
	for (uint32_t i = 0; i < PTRS_PER_TABLE; i++)
		if (pte_table(t[i], level - 1))
			free_subtree(p, t[i], level - 1);
	pool_release(p, pool_index(p, e));
}

uint32_t count_subtree(const struct pool *p, pte_t e, int level)
{
	const pte_t *t = pool_table(p, e);
	if (t == NULL)
		return 0;
	uint32_t n = 1;
	for (uint32_t i = 0; i < PTRS_PER_TABLE; i++)
		if (pte_table(t[i], level - 1))
			n += count_subtree(p, t[i], level - 1);
	return n;
}

void lookup(const struct ptspec_system *sys, uint64_t vpn, int stop, struct lookup *out)
{
	const pte_t *t = sys->pool.table[sys->pgd];
	int level = (int)sys->levels;
	out->bits = WALK_START;
	out->table[level] = sys->pgd;
	for (;;) {
		pte_t *slot = (pte_t *)&t[table_index(vpn, level)];
		const pte_t *next = level > stop && pte_table(*slot, level) ? pool_table(&sys->pool, *slot) : NULL;
		if (next == NULL) {
			out->slot = slot;
			out->level = level;
			return;
		}
		out->bits = walk_through(out->bits, *slot);
		level--;
		out->table[level] = pool_index(&sys->pool, *slot);
		t = next;
	}
}
