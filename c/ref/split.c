/*
 * split.c: split and collapse (spec/contracts/hugepage.ts; split_large_page and
 * collapse_large_pages of arch/x86/mm/pat/set_memory.c read for facts). A split keeps
 * every attribute of the huge leaf exactly: PAT moves between bit 12 and bit 7 when the
 * pieces are 4K, NX, G and RW stay. A collapse takes 512 leaves a size down that agree
 * (one effective prot, not kept 4K, frames contiguous from an aligned frame) back into one
 * leaf and frees their table. Both flush the whole block.
 */
#include "sys.h"

/* A large leaf's flags without its frame: bit 12 is PAT, not frame, in a large leaf. */
static pte_t large_flags(pte_t e)
{
	return (e & ~PTE_PFN_MASK) | (e & _PAGE_PAT_LARGE);
}

int split_entry(struct ptspec_system *sys, pte_t *slot, int level)
{
	uint32_t idx;
	if (pool_alloc(&sys->pool, &idx) != 0)
		return -1;
	pte_t *t = sys->pool.table[idx];
	pte_t e = *slot;
	uint64_t pfn = pte_pfn(e, level);
	uint64_t step = entry_pages(level - 1);
	pte_t flags = level - 1 == 1 ? large_to_4k(e) : large_flags(e);
	if (MUTANT(SPLIT_DROPS_PAT))
		flags &= ~(level - 1 == 1 ? _PAGE_PAT : _PAGE_PAT_LARGE);
	if (MUTANT(SPLIT_DROPS_NX))
		flags &= ~_PAGE_NX;
	for (uint32_t i = 0; i < PTRS_PER_TABLE; i++)
		t[i] = flags | pfn_bits(pfn + i * step);
	*slot = mk_table_entry(sys->pool.pfn + idx);
	return 0;
}

PTSPEC_EXPORT int ptspec_split(ptspec_system *sys, uint32_t root, uint64_t vpn)
{
	(void)root;
	struct lookup l;
	lookup(sys, vpn, 1, &l);
	if (!pte_leaf(*l.slot, l.level))
		return -PT_ENOENT;
	if (l.level == 1)
		return -PT_EINVAL;
	if (split_entry(sys, l.slot, l.level) != 0)
		return -PT_ENOMEM;
	struct range r = { slot_vpn(vpn, l.level), entry_pages(l.level) };
	if (!MUTANT(SPLIT_KEEPS_LARGE_TLB))
		flush_ranges(sys, &r, 1);
	return 0;
}

/* Whether every page under table t (at `level`) is mapped by a present leaf. */
static int fully_mapped(const struct ptspec_system *sys, const pte_t *t, int level)
{
	for (uint32_t i = 0; i < PTRS_PER_TABLE; i++) {
		if (pte_leaf(t[i], level))
			continue;
		const pte_t *child = pte_table(t[i], level) ? pool_table(&sys->pool, t[i]) : NULL;
		if (child == NULL || !fully_mapped(sys, child, level - 1))
			return 0;
	}
	return 1;
}

/* Whether the 512 entries of t (at `level`, reached through b) can become one leaf a level up. */
static int uniform(const pte_t *t, int level, struct walk_bits b)
{
	uint64_t step = entry_pages(level);
	uint64_t pfn = pte_pfn(t[0], level);
	uint32_t prot = leaf_prot(t[0], level, b);
	if (pfn % entry_pages(level + 1) != 0 || (prot & PTSPEC_PROT_KERNEL4K) != 0)
		return 0;
	for (uint32_t i = 0; i < PTRS_PER_TABLE; i++) {
		if (!pte_leaf(t[i], level) || pte_pfn(t[i], level) != pfn + i * step)
			return 0;
		if (!MUTANT(COLLAPSE_NON_UNIFORM) && leaf_prot(t[i], level, b) != prot)
			return 0;
	}
	return 1;
}

PTSPEC_EXPORT int ptspec_collapse(ptspec_system *sys, uint32_t root, uint64_t vpn, uint32_t size)
{
	(void)root;
	int level = size_level(size);
	struct lookup l;
	lookup(sys, vpn, level, &l);
	pte_t e = *l.slot;
	/* A larger leaf maps the whole block, but not as 512 leaves a size down. */
	if (l.level > level || !pte_present(e))
		return pte_leaf(e, l.level) ? -PT_EINVAL : -PT_ENOENT;
	if (pte_leaf(e, level))
		return -PT_EINVAL;
	const pte_t *t = pool_table(&sys->pool, e);
	if (t == NULL || !fully_mapped(sys, t, level - 1))
		return -PT_ENOENT;
	if (!uniform(t, level - 1, walk_through(l.bits, e)))
		return -PT_EINVAL;
	pte_t flags = level - 1 == 1 ? small_to_large(t[0]) : large_flags(t[0]);
	*l.slot = flags | pfn_bits(pte_pfn(t[0], level - 1));
	if (!MUTANT(LEAK_EMPTY_TABLE))
		pool_release(&sys->pool, pool_index(&sys->pool, e));
	struct range r = { slot_vpn(vpn, level), entry_pages(level) };
	flush_ranges(sys, &r, 1);
	return 0;
}
