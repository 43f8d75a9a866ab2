/*
 * tlb.c: every CPU's TLB and paging-structure caches, the flushes that empty them and
 * the flushes owed (spec/contracts/flush.ts). A range flush is flush_tlb_kernel_range on
 * every CPU: INVLPG of each page drops the TLB entries (any root) whose leaf meets the
 * range and empties that CPU's paging-structure caches whatever the address, and pays
 * what is owed there; the ranges one operation flushes are merged where they overlap or
 * touch, and one longer than tlb_single_page_flush_ceiling makes it a full flush.
 */
#include "sys.h"

static int meets(uint64_t a, uint64_t an, uint64_t b, uint64_t bn) { return a < b + bn && b < a + an; }

/* Whether a range flush reaches this CPU (every CPU: flush_tlb_kernel_range sends the IPI). */
static int reached(uint32_t cpu)
{
	return !MUTANT(REMOTE_CPU_NOT_FLUSHED) || cpu == 0;
}

static void flush_range(struct ptspec_system *sys, uint64_t vpn, uint64_t pages)
{
	uint32_t kept = 0;
	for (uint32_t i = 0; i < sys->ntlb; i++) {
		const struct tlb_entry *e = &sys->tlb[i];
		if (!reached(e->cpu) || !meets(e->vpn, size_pages(e->size), vpn, pages))
			sys->tlb[kept++] = *e;
	}
	sys->ntlb = kept;
	if (!MUTANT(WALK_CACHE_SURVIVES_FLUSH)) {
		kept = 0;
		for (uint32_t i = 0; i < sys->nwalk; i++)
			if (!reached(sys->walk[i].cpu))
				sys->walk[kept++] = sys->walk[i];
		sys->nwalk = kept;
	}
	/* Each obligation loses its pages in the range; a piece on either side keeps its reason. */
	if (sys->nowed == 0)
		return;
	/* The obligations are disjoint, so at most one (the one holding the range) becomes two. */
	uint32_t cap = sys->nowed + 1;
	struct obligation *o = pt_alloc(sizeof(*o) * cap);
	if (o == NULL)
		return;
	uint32_t out = 0;
	uint64_t end = vpn + pages;
	for (uint32_t i = 0; i < sys->nowed; i++) {
		struct obligation cur = sys->owed[i];
		if (!meets(cur.vpn, cur.pages, vpn, pages)) {
			o[out++] = cur;
			continue;
		}
		if (cur.vpn < vpn)
			o[out++] = (struct obligation){ cur.vpn, vpn - cur.vpn, cur.reason };
		if (cur.vpn + cur.pages > end)
			o[out++] = (struct obligation){ end, cur.vpn + cur.pages - end, cur.reason };
	}
	pt_free(sys->owed);
	sys->owed = o;
	sys->owed_cap = cap;
	sys->nowed = out;
}

void flush_everything(struct ptspec_system *sys)
{
	sys->ntlb = 0;
	if (!MUTANT(WALK_CACHE_SURVIVES_FLUSH))
		sys->nwalk = 0;
	sys->nowed = 0;
}

void flush_ranges(struct ptspec_system *sys, struct range *r, uint32_t n)
{
	/* Sorted by vpn, then merged where they overlap or touch. */
	for (uint32_t i = 1; i < n; i++)
		for (uint32_t j = i; j > 0 && r[j].vpn < r[j - 1].vpn; j--) {
			struct range t = r[j];
			r[j] = r[j - 1];
			r[j - 1] = t;
		}
	uint32_t m = 0;
	for (uint32_t i = 0; i < n; i++) {
		if (m > 0 && r[i].vpn <= r[m - 1].vpn + r[m - 1].pages) {
			uint64_t end = r[i].vpn + r[i].pages;
			if (end > r[m - 1].vpn + r[m - 1].pages)
				r[m - 1].pages = end - r[m - 1].vpn;
		} else {
			r[m++] = r[i];
		}
	}
	for (uint32_t i = 0; i < m; i++)
		if (r[i].pages > TLB_SINGLE_PAGE_FLUSH_CEILING) {
			flush_everything(sys);
			return;
		}
	for (uint32_t i = 0; i < m; i++)
		flush_range(sys, r[i].vpn, r[i].pages);
}

int owe_flush(struct ptspec_system *sys, uint64_t vpn, uint64_t pages, uint32_t reason)
{
	uint64_t lo = vpn;
	uint64_t hi = vpn + pages;
	uint32_t why = 1u << reason;
	uint32_t out = 0;
	/* Every obligation overlapping or touching the new one joins it. */
	for (uint32_t i = 0; i < sys->nowed; i++) {
		struct obligation o = sys->owed[i];
		if (o.vpn + o.pages < lo || o.vpn > hi) {
			sys->owed[out++] = o;
			continue;
		}
		if (o.vpn < lo)
			lo = o.vpn;
		if (o.vpn + o.pages > hi)
			hi = o.vpn + o.pages;
		why |= o.reason;
	}
	if (pt_reserve((void **)&sys->owed, &sys->owed_cap, out + 1, sizeof(*sys->owed)) != 0)
		return -1;
	uint32_t at = out;
	while (at > 0 && sys->owed[at - 1].vpn > lo) {
		sys->owed[at] = sys->owed[at - 1];
		at--;
	}
	sys->owed[at] = (struct obligation){ lo, hi - lo, why };
	sys->nowed = out + 1;
	return 0;
}

int tlb_fill(struct ptspec_system *sys, const struct tlb_entry *e)
{
	if (pt_reserve((void **)&sys->tlb, &sys->tlb_cap, sys->ntlb + 1, sizeof(*e)) != 0)
		return -1;
	sys->tlb[sys->ntlb++] = *e;
	return 0;
}

int walk_cache_fill(struct ptspec_system *sys, uint32_t cpu, uint32_t root, int level, uint64_t vpn, uint32_t idx)
{
	struct walk_entry w = { cpu, root, (uint32_t)level, idx, sys->pool.gen[idx], table_base(vpn, level) };
	for (uint32_t i = 0; i < sys->nwalk; i++) {
		struct walk_entry *o = &sys->walk[i];
		if (o->cpu == cpu && o->root == root && o->level == w.level && o->vpn == w.vpn) {
			*o = w;
			return 0;
		}
	}
	if (pt_reserve((void **)&sys->walk, &sys->walk_cap, sys->nwalk + 1, sizeof(w)) != 0)
		return -1;
	sys->walk[sys->nwalk++] = w;
	return 0;
}

const struct tlb_entry *tlb_lookup(const struct ptspec_system *sys, uint32_t cpu, uint32_t root, uint64_t vpn)
{
	const struct tlb_entry *best = NULL;
	for (uint32_t i = 0; i < sys->ntlb; i++) {
		const struct tlb_entry *e = &sys->tlb[i];
		if (e->cpu != cpu || e->root != root || vpn < e->vpn || vpn >= e->vpn + size_pages(e->size))
			continue;
		/* Of several (a stale 4K entry under a later 2M fill), the smallest answers. */
		if (best == NULL || e->size < best->size)
			best = e;
	}
	return best;
}

const struct walk_entry *walk_start(const struct ptspec_system *sys, uint32_t cpu, uint32_t root, uint64_t vpn)
{
	const struct walk_entry *best = NULL;
	for (uint32_t i = 0; i < sys->nwalk; i++) {
		const struct walk_entry *w = &sys->walk[i];
		if (w->cpu != cpu || w->root != root || vpn < w->vpn || vpn >= w->vpn + entry_pages((int)w->level + 1))
			continue;
		if (best == NULL || w->level < best->level)
			best = w;
	}
	return best;
}

uint32_t walk_entry_state(const struct ptspec_system *sys, const struct walk_entry *w)
{
	if (sys->pool.table[w->idx] == NULL || sys->pool.gen[w->idx] != w->gen)
		return 2;
	struct lookup l;
	lookup(sys, w->vpn, (int)w->level, &l);
	return l.level == (int)w->level && l.table[w->level] == w->idx ? 0 : 1;
}

void flush_local(struct ptspec_system *sys, uint32_t cpu, uint64_t vpn, uint64_t pages)
{
	uint32_t kept = 0;
	for (uint32_t i = 0; i < sys->ntlb; i++) {
		const struct tlb_entry *e = &sys->tlb[i];
		if (e->cpu != cpu || !meets(e->vpn, size_pages(e->size), vpn, pages))
			sys->tlb[kept++] = *e;
	}
	sys->ntlb = kept;
	if (MUTANT(WALK_CACHE_SURVIVES_FLUSH))
		return;
	kept = 0;
	for (uint32_t i = 0; i < sys->nwalk; i++)
		if (sys->walk[i].cpu != cpu)
			sys->walk[kept++] = sys->walk[i];
	sys->nwalk = kept;
}
