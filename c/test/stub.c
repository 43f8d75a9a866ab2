/*
 * stub.c: the smallest system that answers c/ptspec.h correctly enough for the process
 * adapter's tests (test/process-impl.test.ts): init_mm as an array of 4K leaves, the linux
 * profile's table accounting (a table once needed is kept), no TLB. It supports map,
 * unmap, translate, flush and flushAll; map ignores max_page, so only 4K mappings agree
 * with the model. hang.c and crash.c include it with STUB_MAP_HOOK set to misbehave.
 */
#include <stdlib.h>
#include <string.h>
#include "../ptspec.h"

#ifndef STUB_MAP_HOOK
#define STUB_MAP_HOOK()
#endif

#define EEXIST_ 17
#define ENOENT_ 2
#define ENOMEM_ 12
#define MAX_LEAVES 4096
#define MAX_TABLES 4096
#define MAX_OBLIGATIONS 256

struct leaf { uint64_t vpn, pfn; uint32_t prot; };
struct obligation { uint64_t vpn, pages; };

struct ptspec_system {
	struct ptspec_setup setup;
	struct ptspec_frame_run *runs;
	struct leaf leaves[MAX_LEAVES];
	uint32_t nr_leaves;
	uint64_t tables[MAX_TABLES]; /* (level << 56) | key of each table below the pgd */
	uint32_t nr_tables;
	struct obligation obligations[MAX_OBLIGATIONS];
	uint32_t nr_obligations;
};

uint32_t ptspec_abi_version(void) { return PTSPEC_ABI_VERSION; }

uint64_t ptspec_supported_ops(void)
{
	return 1ull << PTSPEC_OP_MAP | 1ull << PTSPEC_OP_UNMAP | 1ull << PTSPEC_OP_TRANSLATE |
	       1ull << PTSPEC_OP_FLUSH | 1ull << PTSPEC_OP_FLUSH_ALL | PTSPEC_SUPPORTS_LINUX;
}

ptspec_system *ptspec_create(const struct ptspec_setup *setup)
{
	ptspec_system *sys = calloc(1, sizeof(*sys));
	if (!sys)
		return NULL;
	sys->setup = *setup;
	sys->runs = malloc(setup->nr_frame_runs * sizeof(*sys->runs) + 1);
	memcpy(sys->runs, setup->frame_runs, setup->nr_frame_runs * sizeof(*sys->runs));
	return sys;
}

void ptspec_destroy(ptspec_system *sys)
{
	free(sys->runs);
	free(sys);
}

static struct leaf *find(ptspec_system *sys, uint64_t vpn)
{
	for (uint32_t i = 0; i < sys->nr_leaves; i++)
		if (sys->leaves[i].vpn == vpn)
			return &sys->leaves[i];
	return NULL;
}

/* The tables a 4K leaf at vpn hangs in: level L is keyed by vpn >> 9L (spec/footprint.ts). */
static int need_tables(ptspec_system *sys, uint64_t vpn)
{
	for (uint32_t level = 1; level < sys->setup.levels; level++) {
		uint64_t t = (uint64_t)level << 56 | vpn >> (9 * level);
		uint32_t i = 0;
		while (i < sys->nr_tables && sys->tables[i] != t)
			i++;
		if (i == sys->nr_tables) {
			if (sys->nr_tables == MAX_TABLES || sys->nr_tables + 1 >= sys->setup.table_pool_count)
				return -ENOMEM_;
			sys->tables[sys->nr_tables++] = t;
		}
	}
	return 0;
}

int ptspec_map(ptspec_system *sys, uint32_t root, uint64_t vpn, uint64_t pfn, uint64_t pages, uint32_t prot, uint32_t max_page)
{
	(void)root, (void)max_page;
	STUB_MAP_HOOK();
	for (uint64_t i = 0; i < pages; i++)
		if (find(sys, vpn + i))
			return -EEXIST_;
	if (sys->nr_leaves + pages > MAX_LEAVES)
		return -ENOMEM_;
	for (uint64_t i = 0; i < pages; i++) {
		int err = need_tables(sys, vpn + i);
		if (err)
			return err;
		sys->leaves[sys->nr_leaves++] = (struct leaf){ vpn + i, pfn + i, prot };
	}
	return 0;
}

int ptspec_unmap(ptspec_system *sys, uint32_t root, uint64_t vpn, uint64_t pages, uint32_t flush)
{
	uint32_t kept = 0;
	(void)root;
	for (uint32_t i = 0; i < sys->nr_leaves; i++)
		if (sys->leaves[i].vpn - vpn >= pages)
			sys->leaves[kept++] = sys->leaves[i];
	if (kept == sys->nr_leaves)
		return -ENOENT_;
	sys->nr_leaves = kept;
	if (!flush && sys->nr_obligations < MAX_OBLIGATIONS)
		sys->obligations[sys->nr_obligations++] = (struct obligation){ vpn, pages };
	return 0;
}

int ptspec_translate(ptspec_system *sys, uint32_t root, uint64_t vpn, struct ptspec_translation *out)
{
	struct leaf *l = find(sys, vpn);
	(void)root;
	if (!l)
		return -ENOENT_;
	*out = (struct ptspec_translation){ l->vpn, l->pfn, PTSPEC_4K, l->prot, l->pfn };
	return 0;
}

/* Drops the obligations inside [vpn, vpn + pages): a range flush discharges what it covers. */
int ptspec_flush(ptspec_system *sys, uint64_t vpn, uint64_t pages)
{
	uint32_t kept = 0;
	for (uint32_t i = 0; i < sys->nr_obligations; i++) {
		struct obligation o = sys->obligations[i];
		if (o.vpn < vpn || o.vpn + o.pages > vpn + pages)
			sys->obligations[kept++] = o;
	}
	sys->nr_obligations = kept;
	return 0;
}

int ptspec_flush_all(ptspec_system *sys)
{
	sys->nr_obligations = 0;
	return 0;
}

static uint8_t *put(uint8_t *p, uint64_t v, int bytes)
{
	for (int i = 0; i < bytes; i++)
		*p++ = (uint8_t)(v >> 8 * i);
	return p;
}

uint64_t ptspec_abstract(const ptspec_system *sys, uint8_t *buf, uint64_t size)
{
	uint64_t need = 48 + 24ull * sys->setup.nr_frame_runs + 24 + 24ull * sys->nr_leaves + 24ull * sys->nr_obligations;
	uint8_t *p = buf;
	if (need > size)
		return need;
	p = put(p, 0x53415450, 4), p = put(p, 1, 4), p = put(p, sys->setup.nr_frame_runs, 4), p = put(p, 1, 4);
	p = put(p, 0, 4), p = put(p, 0, 4), p = put(p, sys->nr_obligations, 4), p = put(p, 0, 4);
	p = put(p, 1 + sys->nr_tables, 8), p = put(p, 0, 8);
	for (uint32_t i = 0; i < sys->setup.nr_frame_runs; i++) {
		const struct ptspec_frame_run *r = &sys->runs[i];
		p = put(p, r->pfn, 8), p = put(p, r->count, 8), p = put(p, r->use, 4), p = put(p, r->flags, 4);
	}
	p = put(p, 0, 4), p = put(p, 0, 4), p = put(p, 0, 4), p = put(p, sys->nr_leaves, 4), p = put(p, 0, 4), p = put(p, 0, 4);
	for (uint32_t i = 0; i < sys->nr_leaves; i++) {
		const struct leaf *l = &sys->leaves[i];
		p = put(p, l->vpn, 8), p = put(p, l->pfn, 8), p = put(p, PTSPEC_4K, 4), p = put(p, l->prot, 4);
	}
	for (uint32_t i = 0; i < sys->nr_obligations; i++) {
		p = put(p, sys->obligations[i].vpn, 8), p = put(p, sys->obligations[i].pages, 8);
		p = put(p, 0, 4), p = put(p, 0, 4);
	}
	return need;
}
