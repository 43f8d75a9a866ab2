/*
 * abstract.c: the abstraction function (c/ABSTRACT.md): the tables walked into init_mm's
 * leaves and non-present entries with their effective prots, the frame runs, every CPU's
 * TLB and paging-structure-cache entries, the obligations and the table counts, written
 * little-endian in the documented layout. It writes nothing unless all of it fits.
 */
#include "sys.h"

#define ABSTRACT_MAGIC 0x53415450u
#define ABSTRACT_VERSION 1u

struct out {
	uint8_t *buf; /* NULL: only count */
	uint64_t pos;
};

static void put32(struct out *o, uint32_t v)
{
	if (o->buf != NULL)
		for (int i = 0; i < 4; i++)
			o->buf[o->pos + i] = (uint8_t)(v >> (8 * i));
	o->pos += 4;
}

static void put64(struct out *o, uint64_t v)
{
	put32(o, (uint32_t)v);
	put32(o, (uint32_t)(v >> 32));
}

static void put_leaf(struct out *o, uint64_t vpn, uint64_t pfn, uint32_t size, uint32_t prot)
{
	put64(o, vpn);
	put64(o, pfn);
	put32(o, size);
	put32(o, prot);
}

static uint32_t put_entries(const struct ptspec_system *sys, struct out *o, const pte_t *t, int level, uint64_t base, struct walk_bits b, int present);

/*
 * Writes the entry e at `level` mapping from vpn if it is a leaf (present) or a
 * non-present entry (!present), or those under it if it is a table; returns how many.
 */
static uint32_t put_entry(const struct ptspec_system *sys, struct out *o, pte_t e, int level, uint64_t vpn, struct walk_bits b, int present)
{
	if (e == 0)
		return 0;
	const pte_t *child = pte_table(e, level) ? pool_table(&sys->pool, e) : NULL;
	if (child != NULL)
		return put_entries(sys, o, child, level - 1, vpn, walk_through(b, e), present);
	if (pte_present(e) != present)
		return 0;
	put_leaf(o, vpn, pte_pfn(e, level), (uint32_t)level - 1, leaf_prot(e, level, b));
	return 1;
}

static uint32_t put_entries(const struct ptspec_system *sys, struct out *o, const pte_t *t, int level, uint64_t base, struct walk_bits b, int present)
{
	uint32_t n = 0;
	for (uint32_t i = 0; i < PTRS_PER_TABLE; i++)
		n += put_entry(sys, o, t[i], level, base + (uint64_t)i * entry_pages(level), b, present);
	return n;
}

/* init_mm's entries of one kind. The pgd's slots 256..511 are the kernel half, whose page numbers are sign-extended. */
static uint32_t put_root(const struct ptspec_system *sys, struct out *o, int present)
{
	int top = (int)sys->levels;
	const pte_t *pgd = sys->pool.table[sys->pgd];
	uint64_t kernel_base = VPN_LIMIT - entry_pages(top + 1);
	uint32_t n = 0;
	for (uint32_t i = 0; i < PTRS_PER_TABLE; i++) {
		uint64_t vpn = (i < PTRS_PER_TABLE / 2 ? 0 : kernel_base) + (uint64_t)i * entry_pages(top);
		n += put_entry(sys, o, pgd[i], top, vpn, WALK_START, present);
	}
	return n;
}

/* The obligation records: one per reason of each obligation. */
static uint32_t obligation_records(const struct ptspec_system *sys)
{
	uint32_t n = 0;
	for (uint32_t i = 0; i < sys->nowed; i++)
		n += (uint32_t)__builtin_popcount(sys->owed[i].reason);
	return n;
}

static void put_all(const struct ptspec_system *sys, struct out *o, uint32_t leaves, uint32_t non_present)
{
	put32(o, ABSTRACT_MAGIC);
	put32(o, ABSTRACT_VERSION);
	put32(o, sys->nruns);
	put32(o, 1);
	put32(o, sys->ntlb);
	put32(o, sys->nwalk);
	put32(o, obligation_records(sys));
	put32(o, 0);
	put64(o, pool_in_use(&sys->pool));
	put64(o, 0);
	for (uint32_t i = 0; i < sys->nruns; i++) {
		const struct ptspec_frame_run *r = &sys->runs[i];
		put64(o, r->pfn);
		put64(o, r->count);
		put32(o, r->use);
		put32(o, r->flags);
	}
	/* init_mm: id 0, kind kernel, no pid, nothing diverged. */
	put32(o, 0);
	put32(o, 0);
	put32(o, 0);
	put32(o, leaves);
	put32(o, non_present);
	put32(o, 0);
	put_root(sys, o, 1);
	put_root(sys, o, 0);
	for (uint32_t i = 0; i < sys->ntlb; i++) {
		const struct tlb_entry *e = &sys->tlb[i];
		put32(o, e->cpu);
		put32(o, e->root);
		put_leaf(o, e->vpn, e->pfn, e->size, e->prot);
	}
	for (uint32_t i = 0; i < sys->nwalk; i++) {
		const struct walk_entry *w = &sys->walk[i];
		put32(o, w->cpu);
		put32(o, w->root);
		put32(o, w->level);
		put32(o, walk_entry_state(sys, w));
		put64(o, w->vpn);
	}
	/* An obligation owed for several reasons is one record per reason over the same pages (ptspec joins them). */
	for (uint32_t i = 0; i < sys->nowed; i++)
		for (uint32_t reason = 0; reason < 32; reason++) {
			if ((sys->owed[i].reason & (1u << reason)) == 0)
				continue;
			put64(o, sys->owed[i].vpn);
			put64(o, sys->owed[i].pages);
			put32(o, reason);
			put32(o, 0);
		}
}

PTSPEC_EXPORT uint64_t ptspec_abstract(const ptspec_system *sys, uint8_t *buf, uint64_t size)
{
	struct out count = { NULL, 0 };
	uint32_t leaves = put_root(sys, &count, 1);
	uint32_t non_present = put_root(sys, &count, 0);
	count.pos = 0;
	put_all(sys, &count, leaves, non_present);
	if (buf != NULL && count.pos <= size) {
		struct out o = { buf, 0 };
		put_all(sys, &o, leaves, non_present);
	}
	return count.pos;
}
