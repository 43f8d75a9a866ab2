/*
 * test.c: the native unit test of the reference library (`make -C c test`). It holds the
 * entry encoding to a round trip (every protection through a leaf of each size and
 * back, PAT moved by a split's conversion and back) and checks a few operations' effects
 * as ptspec sees them, through ptspec_abstract: leaves, table counts, TLB and
 * paging-structure caches, obligations, frames. The fuzzer holds the rest to the model.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../ptspec.h"
#include "entry.h"

static int failures;

#define CHECK(cond)                                                                     \
	do {                                                                            \
		if (!(cond)) {                                                          \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
			failures++;                                                     \
		}                                                                       \
	} while (0)

static void test_entry_round_trip(void)
{
	for (int level = 1; level <= 3; level++) {
		uint64_t pfn = level == 1 ? 0x12345 : level == 2 ? 0x12200 : 0x40000;
		for (uint32_t cache = 0; cache < 6; cache++)
			for (uint32_t bits = 0; bits < 32; bits++) {
				uint32_t prot = (cache << PTSPEC_PROT_CACHE_SHIFT) | (bits & 1 ? PTSPEC_PROT_WRITE : 0) | (bits & 2 ? PTSPEC_PROT_USER : 0) |
					(bits & 4 ? PTSPEC_PROT_EXEC_KERNEL : 0) | (bits & 8 ? PTSPEC_PROT_GLOBAL : 0) | (bits & 16 ? PTSPEC_PROT_KERNEL4K : 0);
				if ((prot & PTSPEC_PROT_USER) && (prot & PTSPEC_PROT_EXEC_KERNEL))
					prot |= PTSPEC_PROT_EXEC_USER;
				pte_t e = mk_leaf(level, pfn, prot);
				CHECK(pte_leaf(e, level));
				CHECK(pte_pfn(e, level) == pfn);
				CHECK(leaf_prot(e, level, WALK_START) == prot);
				/* A kernel table above the leaf takes user access away, nothing else. */
				struct walk_bits kernel = walk_through(WALK_START, mk_table_entry(7));
				CHECK(leaf_prot(e, level, kernel) == (prot & ~(PTSPEC_PROT_USER | PTSPEC_PROT_EXEC_USER)));
				if (level == 2) {
					pte_t small = large_to_4k(e) | pfn_bits(pfn + 3);
					CHECK(leaf_prot(small, 1, WALK_START) == prot);
					CHECK(pte_pfn(small, 1) == pfn + 3);
					CHECK((small_to_large(small) | pfn_bits(pfn)) == e);
				}
			}
	}
	/* WT is PAT index 7: PAT at bit 7 in a 4K PTE, at bit 12 in a 2M leaf. */
	uint32_t wt = (uint32_t)PTSPEC_WT << PTSPEC_PROT_CACHE_SHIFT;
	CHECK((mk_leaf(1, 1, wt) & (_PAGE_PAT | _PAGE_PCD | _PAGE_PWT)) == (_PAGE_PAT | _PAGE_PCD | _PAGE_PWT));
	CHECK((mk_leaf(2, 512, wt) & _PAGE_PAT_LARGE) != 0);
	CHECK((mk_leaf(1, 1, 0) & _PAGE_NX) != 0);
}

/* ---- the abstract state, read back from ptspec_abstract ---- */

struct leaf {
	uint64_t vpn, pfn;
	uint32_t size, prot;
};

struct state {
	uint32_t runs, tlb, walk, owed, leaves;
	uint64_t tables, pending;
	struct leaf leaf[2048];
	uint32_t walk_table[64];
	uint64_t owed_vpn[16], owed_pages[16];
	uint32_t run_use[64];
	uint64_t run_pfn[64];
};

static uint32_t get32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t get64(const uint8_t *p) { return get32(p) | (uint64_t)get32(p + 4) << 32; }

static void read_leaf(const uint8_t *p, struct leaf *l)
{
	l->vpn = get64(p);
	l->pfn = get64(p + 8);
	l->size = get32(p + 16);
	l->prot = get32(p + 20);
}

static void abstract(ptspec_system *sys, struct state *s)
{
	uint64_t need = ptspec_abstract(sys, NULL, 0);
	uint8_t *buf = malloc(need);
	CHECK(ptspec_abstract(sys, buf, need) == need);
	memset(s, 0, sizeof(*s));
	CHECK(get32(buf) == 0x53415450u && get32(buf + 4) == 1 && get32(buf + 12) == 1);
	s->runs = get32(buf + 8);
	s->tlb = get32(buf + 16);
	s->walk = get32(buf + 20);
	s->owed = get32(buf + 24);
	s->tables = get64(buf + 32);
	s->pending = get64(buf + 40);
	const uint8_t *p = buf + 48;
	for (uint32_t i = 0; i < s->runs; i++, p += 24)
		if (i < 64) {
			s->run_pfn[i] = get64(p);
			s->run_use[i] = get32(p + 16);
		}
	s->leaves = get32(p + 12);
	uint32_t non_present = get32(p + 16);
	CHECK(non_present == 0 && s->leaves <= 2048);
	p += 24;
	for (uint32_t i = 0; i < s->leaves; i++, p += 24)
		read_leaf(p, &s->leaf[i]);
	p += 32 * (uint64_t)s->tlb;
	for (uint32_t i = 0; i < s->walk; i++, p += 24)
		if (i < 64)
			s->walk_table[i] = get32(p + 12);
	for (uint32_t i = 0; i < s->owed && i < 16; i++, p += 24) {
		s->owed_vpn[i] = get64(p);
		s->owed_pages[i] = get64(p + 8);
	}
	CHECK(p == buf + need || s->owed > 16);
	free(buf);
}

#define DIRECT_MAP 0xffff888000000ull /* __PAGE_OFFSET >> 12, 4-level */
#define PAGE_KERNEL (PTSPEC_PROT_WRITE | PTSPEC_PROT_GLOBAL)

static ptspec_system *boot(uint64_t pool)
{
	static const struct ptspec_frame_run runs[] = {
		{ 0x100, 0x100, PTSPEC_FRAME_PAGETABLE, 0 }, /* unsorted on purpose */
		{ 0, 0x100, PTSPEC_FRAME_DATA, 0 },
		{ 0x200, 0x40000 - 0x200, PTSPEC_FRAME_FREE, 0 },
	};
	struct ptspec_setup setup = { 4, 2, 46, 3, 0x40000, 0x100, pool, PTSPEC_LINUX, 3, runs };
	return ptspec_create(&setup);
}

static void test_operations(void)
{
	struct state s;
	ptspec_system *sys = boot(64);
	CHECK(sys != NULL);
	abstract(sys, &s);
	CHECK(s.leaves == 0 && s.tables == 1 && s.runs == 3 && s.run_use[0] == PTSPEC_FRAME_DATA);

	/* Two 2M leaves: the pgd, a PUD and a PMD table. */
	CHECK(ptspec_map(sys, 0, DIRECT_MAP, 0, 1024, PAGE_KERNEL, PTSPEC_1G) == 0);
	CHECK(ptspec_map(sys, 0, DIRECT_MAP + 5, 5, 1, PAGE_KERNEL, PTSPEC_1G) == -17);
	abstract(sys, &s);
	CHECK(s.leaves == 2 && s.leaf[0].size == PTSPEC_2M && s.leaf[1].vpn == DIRECT_MAP + 512 && s.tables == 3);
	CHECK(s.leaf[0].prot == PAGE_KERNEL);

	/* A split keeps the attributes and takes a table; a collapse gives it back. */
	CHECK(ptspec_split(sys, 0, DIRECT_MAP + 7) == 0);
	abstract(sys, &s);
	CHECK(s.leaves == 513 && s.tables == 4 && s.leaf[7].pfn == 7 && s.leaf[7].prot == PAGE_KERNEL);
	CHECK(ptspec_split(sys, 0, DIRECT_MAP + 7) == -22);
	CHECK(ptspec_collapse(sys, 0, DIRECT_MAP + 9, PTSPEC_2M) == 0);
	abstract(sys, &s);
	CHECK(s.leaves == 2 && s.tables == 3 && s.leaf[0].size == PTSPEC_2M);
	CHECK(ptspec_collapse(sys, 0, DIRECT_MAP, PTSPEC_1G) == -2);

	/* access fills the TLB and the paging-structure caches (PMD, PUD tables); the TLB answers next time. */
	struct ptspec_access_result a;
	CHECK(ptspec_access(sys, 1, 0, DIRECT_MAP + 600, PTSPEC_WRITE, PTSPEC_KERNEL, &a) == 0);
	CHECK(a.fault == PTSPEC_NO_FAULT && !a.from_tlb && a.translation.pfn == 600 && a.translation.leaf_vpn == DIRECT_MAP + 512);
	CHECK(ptspec_access(sys, 1, 0, DIRECT_MAP + 601, PTSPEC_EXEC, PTSPEC_KERNEL, &a) == 0);
	CHECK(a.fault == PTSPEC_FAULT_PROTECTION);
	CHECK(ptspec_access(sys, 1, 0, DIRECT_MAP + 602, PTSPEC_READ, PTSPEC_USERMODE, &a) == 0);
	CHECK(a.fault == PTSPEC_FAULT_PROTECTION);
	abstract(sys, &s);
	CHECK(s.tlb == 1 && s.walk == 2 && s.walk_table[0] == 0 && s.walk_table[1] == 0);

	/* vunmap without a flush: the whole 2M leaf goes, the TLB keeps it, the range is owed. */
	CHECK(ptspec_unmap(sys, 0, DIRECT_MAP + 520, 4, 0) == 0);
	abstract(sys, &s);
	CHECK(s.leaves == 1 && s.tables == 3 && s.tlb == 1 && s.owed == 1 && s.owed_vpn[0] == DIRECT_MAP + 520 && s.owed_pages[0] == 4);
	CHECK(ptspec_access(sys, 1, 0, DIRECT_MAP + 700, PTSPEC_READ, PTSPEC_KERNEL, &a) == 0);
	CHECK(a.fault == PTSPEC_NO_FAULT && a.from_tlb);
	CHECK(ptspec_unmap(sys, 0, DIRECT_MAP + 520, 4, 1) == -2);
	/* A flush of part of the debt leaves the rest owed; a local flush pays nothing. */
	CHECK(ptspec_flush_local(sys, 1, DIRECT_MAP + 512, 1) == 0);
	CHECK(ptspec_flush(sys, DIRECT_MAP + 521, 1) == 0);
	abstract(sys, &s);
	CHECK(s.tlb == 0 && s.walk == 0 && s.owed == 2 && s.owed_pages[0] == 1 && s.owed_pages[1] == 2);
	CHECK(ptspec_flush(sys, DIRECT_MAP, 34) == 0);
	abstract(sys, &s);
	CHECK(s.owed == 0);

	/* Tables stay after a vunmap; a 2M map over the kept PTE table frees it. */
	CHECK(ptspec_map(sys, 0, DIRECT_MAP + 1024, 1024, 3, PAGE_KERNEL, PTSPEC_1G) == 0);
	abstract(sys, &s);
	CHECK(s.tables == 4);
	CHECK(ptspec_unmap(sys, 0, DIRECT_MAP + 1024, 3, 1) == 0);
	abstract(sys, &s);
	CHECK(s.leaves == 1 && s.tables == 4);
	CHECK(ptspec_map(sys, 0, DIRECT_MAP + 1024, 1024, 512, PAGE_KERNEL, PTSPEC_2M) == 0);
	abstract(sys, &s);
	CHECK(s.leaves == 2 && s.tables == 3);

	/* The frame lifecycle. */
	CHECK(ptspec_alloc_frames(sys, 0x300, 4) == 0);
	CHECK(ptspec_alloc_frames(sys, 0x302, 4) == -16);
	CHECK(ptspec_free_frames(sys, 0x2ff, 2) == -2);
	abstract(sys, &s);
	CHECK(s.runs == 5 && s.run_pfn[3] == 0x300 && s.run_use[3] == PTSPEC_FRAME_DATA);
	CHECK(ptspec_free_frames(sys, 0x300, 4) == 0);
	abstract(sys, &s);
	CHECK(s.runs == 3);

	/* A fork is independent. */
	ptspec_system *copy = ptspec_fork(sys);
	CHECK(copy != NULL && ptspec_unmap(copy, 0, DIRECT_MAP, 1, 1) == 0);
	abstract(sys, &s);
	CHECK(s.leaves == 2);
	ptspec_destroy(copy);
	ptspec_destroy(sys);
}

static void test_enomem(void)
{
	/* Three tables: the 2M leaves fit, a split does not, and a refused map changes nothing. */
	struct state s;
	ptspec_system *sys = boot(3);
	CHECK(ptspec_map(sys, 0, DIRECT_MAP, 0, 512, PAGE_KERNEL, PTSPEC_1G) == 0);
	CHECK(ptspec_split(sys, 0, DIRECT_MAP) == -12);
	CHECK(ptspec_map(sys, 0, DIRECT_MAP + 512, 512, 2, PAGE_KERNEL, PTSPEC_1G) == -12);
	abstract(sys, &s);
	CHECK(s.leaves == 1 && s.tables == 3);
	ptspec_destroy(sys);
}

int main(void)
{
	CHECK(ptspec_abi_version() == PTSPEC_ABI_VERSION);
	CHECK((ptspec_supported_ops() & PTSPEC_SUPPORTS_LINUX) && (ptspec_supported_ops() & (1ull << PTSPEC_OP_PROTECT)) == 0);
	test_entry_round_trip();
	test_operations();
	test_enomem();
	if (failures > 0) {
		fprintf(stderr, "%d checks failed\n", failures);
		return 1;
	}
	printf("ref test: all checks passed\n");
	return 0;
}
