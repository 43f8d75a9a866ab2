/*
 * toy.c: the smallest page-table system the wasm adapter (fuzz/wasm-impl.ts) is tested
 * with, against the model, in test/wasm-impl.test.ts. It follows the linux profile and
 * implements map, unmap, translate, flush and flush_all only (no access, so no CPU ever
 * caches anything: no TLB entry, no paging-structure cache).
 *
 * It keeps no radix tree: its state is the abstract state itself (the leaves sorted by
 * vpn, the boot frame runs as given, the flushes owed, and the set of page tables that
 * exist), so ptspec_abstract copies it out. The tables are the radix footprint's notion
 * (spec/footprint.ts): the level-L table with key floor(vpn / pagesPerEntry(L + 1)).
 * Under linux vunmap frees none of them, and a huge leaf mapped where a kept table hangs
 * frees that table and every table below it, after a one-page flush there
 * (spec/contracts/linux.ts, "Page tables" and "Flushes").
 *
 * Built with no libc (the committed toy.wasm; test/wasm-impl.test.ts rebuilds it and
 * compares when clang is there):
 *   clang --target=wasm32 -O2 -nostdlib -ffreestanding -g0 -Wl,--no-entry -Wl,--export-dynamic
 *     -Wl,--strip-all -o c/test/toy.wasm c/test/toy.c
 */
/* wasm32 symbols are hidden by default: the interface's must be exported. */
#pragma GCC visibility push(default)
#include "../ptspec.h"
#pragma GCC visibility pop

#define ENOENT 2
#define ENOMEM 12
#define EEXIST 17
#define FLUSH_CEILING 33 /* tlb_single_page_flush_ceiling */

/* clang emits calls to these for struct copies; there is no libc to provide them. */
void *memcpy(void *dst, const void *src, __SIZE_TYPE__ n)
{
	unsigned char *d = dst;
	const unsigned char *s = src;
	while (n--)
		*d++ = *s++;
	return dst;
}

void *memset(void *dst, int c, __SIZE_TYPE__ n)
{
	unsigned char *d = dst;
	while (n--)
		*d++ = (unsigned char)c;
	return dst;
}

/* ---- memory: first-fit free list over a bump pointer from __heap_base ---- */

extern unsigned char __heap_base;

struct block {
	uint32_t size; /* bytes after the header */
	struct block *next;
};

static uintptr_t brk;
static struct block *free_list;

void *ptspec_alloc(uint32_t size)
{
	size = (size + 7u) & ~7u;
	for (struct block **p = &free_list; *p; p = &(*p)->next) {
		if ((*p)->size >= size) {
			struct block *b = *p;
			*p = b->next;
			return b + 1;
		}
	}
	if (!brk)
		brk = ((uintptr_t)&__heap_base + 7u) & ~(uintptr_t)7u;
	uintptr_t end = brk + sizeof(struct block) + size;
	uintptr_t have = __builtin_wasm_memory_size(0) * 65536u;
	if (end > have && __builtin_wasm_memory_grow(0, (end - have + 65535u) / 65536u) == (__SIZE_TYPE__)-1)
		return 0;
	struct block *b = (struct block *)brk;
	b->size = size;
	brk = end;
	return b + 1;
}

void ptspec_free(void *p)
{
	if (!p)
		return;
	struct block *b = (struct block *)p - 1;
	b->next = free_list;
	free_list = b;
}

/* ---- growable arrays ---- */

struct vec {
	unsigned char *p;
	uint32_t n, cap, size; /* elements, capacity, element size */
};

static int vec_reserve(struct vec *v, uint32_t n)
{
	if (n <= v->cap)
		return 0;
	uint32_t cap = v->cap ? v->cap : 16;
	while (cap < n)
		cap *= 2;
	unsigned char *p = ptspec_alloc(cap * v->size);
	if (!p)
		return -ENOMEM;
	memcpy(p, v->p, v->n * v->size);
	ptspec_free(v->p);
	v->p = p;
	v->cap = cap;
	return 0;
}

/* A gap of `count` elements at index i (the ones from i on move up); NULL without memory. */
static void *vec_open(struct vec *v, uint32_t i, uint32_t count)
{
	if (vec_reserve(v, v->n + count))
		return 0;
	unsigned char *at = v->p + i * v->size;
	uint32_t shift = count * v->size;
	for (unsigned char *q = v->p + v->n * v->size; q > at; q--)
		q[shift - 1] = q[-1];
	v->n += count;
	return at;
}

static void vec_remove(struct vec *v, uint32_t i, uint32_t count)
{
	memcpy(v->p + i * v->size, v->p + (i + count) * v->size, (v->n - i - count) * v->size);
	v->n -= count;
}

static int vec_copy(struct vec *dst, const struct vec *src)
{
	*dst = (struct vec){ .size = src->size };
	if (vec_reserve(dst, src->n))
		return -ENOMEM;
	memcpy(dst->p, src->p, src->n * src->size);
	dst->n = src->n;
	return 0;
}

/* ---- the system ---- */

struct leaf {
	uint64_t vpn, pfn;
	uint32_t size, prot;
};

struct owed {
	uint64_t vpn, pages;
	uint32_t reason, zero;
};

struct ptspec_system {
	struct ptspec_setup setup; /* frame_runs not kept: runs holds them */
	struct vec runs;   /* struct ptspec_frame_run, as the setup gave them */
	struct vec leaves; /* struct leaf, sorted by vpn, disjoint */
	struct vec tables; /* uint64_t key << 3 | level, every table below the pgd */
	struct vec owed;   /* struct owed, sorted, disjoint, not touching; reason always 0 (unmap) */
};

#define LEAF(s, i) (((struct leaf *)(s)->leaves.p)[i])
#define TABLE(s, i) (((uint64_t *)(s)->tables.p)[i])
#define OWED(s, i) (((struct owed *)(s)->owed.p)[i])

static uint64_t size_pages(uint32_t size) { return size == PTSPEC_1G ? 262144 : size == PTSPEC_2M ? 512 : 1; }
/* pagesPerEntry(level): the pages one entry of a level-`level` table covers. */
static uint64_t entry_pages(uint32_t level) { uint64_t n = 1; while (--level) n *= 512; return n; }

uint32_t ptspec_abi_version(void) { return PTSPEC_ABI_VERSION; }

uint64_t ptspec_supported_ops(void)
{
	return 1ull << PTSPEC_OP_MAP | 1ull << PTSPEC_OP_UNMAP | 1ull << PTSPEC_OP_TRANSLATE | 1ull << PTSPEC_OP_FLUSH |
	       1ull << PTSPEC_OP_FLUSH_ALL | PTSPEC_SUPPORTS_LINUX;
}

static void destroy_vecs(ptspec_system *s)
{
	ptspec_free(s->runs.p);
	ptspec_free(s->leaves.p);
	ptspec_free(s->tables.p);
	ptspec_free(s->owed.p);
}

void ptspec_destroy(ptspec_system *s)
{
	if (!s)
		return;
	destroy_vecs(s);
	ptspec_free(s);
}

ptspec_system *ptspec_create(const struct ptspec_setup *setup)
{
	if (setup->profile != PTSPEC_LINUX)
		return 0;
	ptspec_system *s = ptspec_alloc(sizeof(*s));
	if (!s)
		return 0;
	*s = (ptspec_system){
		.setup = *setup,
		.runs = { .size = sizeof(struct ptspec_frame_run) },
		.leaves = { .size = sizeof(struct leaf) },
		.tables = { .size = sizeof(uint64_t) },
		.owed = { .size = sizeof(struct owed) },
	};
	s->setup.frame_runs = 0;
	if (vec_reserve(&s->runs, setup->nr_frame_runs)) {
		ptspec_destroy(s);
		return 0;
	}
	memcpy(s->runs.p, setup->frame_runs, setup->nr_frame_runs * sizeof(struct ptspec_frame_run));
	s->runs.n = setup->nr_frame_runs;
	return s;
}

ptspec_system *ptspec_fork(const ptspec_system *from)
{
	ptspec_system *s = ptspec_alloc(sizeof(*s));
	if (!s)
		return 0;
	*s = (ptspec_system){ .setup = from->setup };
	if (vec_copy(&s->runs, &from->runs) || vec_copy(&s->leaves, &from->leaves) || vec_copy(&s->tables, &from->tables) ||
	    vec_copy(&s->owed, &from->owed)) {
		ptspec_destroy(s);
		return 0;
	}
	return s;
}

uint32_t ptspec_last_refused(const ptspec_system *s) { (void)s; return 0; }

/* The index of the first leaf ending after vpn. */
static uint32_t first_ending_after(const ptspec_system *s, uint64_t vpn)
{
	uint32_t lo = 0, hi = s->leaves.n;
	while (lo < hi) {
		uint32_t mid = (lo + hi) / 2;
		if (LEAF(s, mid).vpn + size_pages(LEAF(s, mid).size) <= vpn)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* ---- flushes owed ---- */

/* A range flush: more than the ceiling is a full flush; else the part of each obligation inside goes. */
static int range_flush(ptspec_system *s, uint64_t vpn, uint64_t pages)
{
	if (pages > FLUSH_CEILING) {
		s->owed.n = 0;
		return 0;
	}
	uint64_t end = vpn + pages;
	for (uint32_t i = 0; i < s->owed.n;) {
		struct owed o = OWED(s, i);
		uint64_t oend = o.vpn + o.pages;
		if (oend <= vpn || o.vpn >= end) {
			i++;
			continue;
		}
		/* The pieces outside the flush take its place. */
		uint32_t pieces = (o.vpn < vpn) + (oend > end);
		vec_remove(&s->owed, i, 1);
		if (pieces && !vec_open(&s->owed, i, pieces))
			return -ENOMEM;
		if (o.vpn < vpn)
			OWED(s, i++) = (struct owed){ o.vpn, vpn - o.vpn, 0, 0 };
		if (oend > end)
			OWED(s, i++) = (struct owed){ end, oend - end, 0, 0 };
	}
	return 0;
}

/* vunmap_range_noflush: [vpn, vpn+pages) is owed a flush, merged with every obligation it meets or touches. */
static int owe(ptspec_system *s, uint64_t vpn, uint64_t pages)
{
	uint64_t lo = vpn, hi = vpn + pages;
	uint32_t i = 0;
	while (i < s->owed.n && OWED(s, i).vpn + OWED(s, i).pages < lo)
		i++;
	while (i < s->owed.n && OWED(s, i).vpn <= hi) {
		struct owed o = OWED(s, i);
		if (o.vpn < lo)
			lo = o.vpn;
		if (o.vpn + o.pages > hi)
			hi = o.vpn + o.pages;
		vec_remove(&s->owed, i, 1);
	}
	struct owed *at = vec_open(&s->owed, i, 1);
	if (!at)
		return -ENOMEM;
	*at = (struct owed){ lo, hi - lo, 0, 0 };
	return 0;
}

/* ---- tables ---- */

static int has_table(const struct vec *t, uint64_t id)
{
	for (uint32_t i = 0; i < t->n; i++)
		if (((uint64_t *)t->p)[i] == id)
			return 1;
	return 0;
}

/*
 * `t` with a leaf of `size` at vpn added: a huge leaf frees every table below its entry
 * (and sets *freed), and the leaf needs its own table and those above it.
 */
static int add_leaf_tables(const ptspec_system *s, struct vec *t, uint64_t vpn, uint32_t size, int *freed)
{
	uint32_t level = size + 1;
	uint64_t end = vpn + size_pages(size);
	for (uint32_t i = 0; i < t->n;) {
		uint64_t id = ((uint64_t *)t->p)[i];
		uint64_t base = (id >> 3) * entry_pages((id & 7) + 1);
		if ((id & 7) < level && base >= vpn && base < end) {
			vec_remove(t, i, 1);
			*freed = 1;
		} else {
			i++;
		}
	}
	for (uint32_t l = level; l < s->setup.levels; l++) {
		uint64_t id = (vpn / entry_pages(l + 1)) << 3 | l;
		if (has_table(t, id))
			continue;
		uint64_t *at = vec_open(t, t->n, 1);
		if (!at)
			return -ENOMEM;
		*at = id;
	}
	return 0;
}

static int size_ok(const ptspec_system *s, uint32_t size)
{
	return size == PTSPEC_4K || (size == PTSPEC_2M ? s->setup.features & 1 : s->setup.features & 2);
}

/* ---- the operations ---- */

int ptspec_map(ptspec_system *s, uint32_t root, uint64_t vpn, uint64_t pfn, uint64_t pages, uint32_t prot, uint32_t max_page)
{
	(void)root;
	uint32_t at = first_ending_after(s, vpn);
	if (at < s->leaves.n && LEAF(s, at).vpn < vpn + pages)
		return -EEXIST;
	/* linux: the tables above a kernel-half leaf have no _PAGE_USER, so nothing reached through them is user. */
	if (prot & PTSPEC_PROT_USER)
		prot &= ~(PTSPEC_PROT_USER | PTSPEC_PROT_EXEC_USER);
	struct vec tables;
	if (vec_copy(&tables, &s->tables))
		return -ENOMEM;
	struct vec added = { .size = sizeof(struct leaf) };
	/* The first page of each huge leaf that freed tables: pmd/pud_free_*_page flush it. */
	struct vec flushes = { .size = sizeof(uint64_t) };
	int err = 0;
	for (uint64_t off = 0; off < pages && !err;) {
		uint32_t size = max_page;
		while (size > PTSPEC_4K && (!size_ok(s, size) || size_pages(size) > pages - off || (vpn + off) % size_pages(size) ||
					    (pfn + off) % size_pages(size)))
			size--;
		struct leaf *l = vec_open(&added, added.n, 1);
		int freed = 0;
		if (!l || add_leaf_tables(s, &tables, vpn + off, size, &freed)) {
			err = -ENOMEM;
			break;
		}
		*l = (struct leaf){ vpn + off, pfn + off, size, prot };
		if (freed) {
			uint64_t *f = vec_open(&flushes, flushes.n, 1);
			if (!f)
				err = -ENOMEM;
			else
				*f = vpn + off;
		}
		off += size_pages(size);
	}
	if (!err && 1 + tables.n > s->setup.table_pool_count)
		err = -ENOMEM;
	if (!err)
		err = vec_reserve(&s->leaves, s->leaves.n + added.n);
	if (err) {
		ptspec_free(tables.p);
		ptspec_free(added.p);
		ptspec_free(flushes.p);
		return err;
	}
	memcpy(vec_open(&s->leaves, at, added.n), added.p, added.n * sizeof(struct leaf));
	ptspec_free(s->tables.p);
	s->tables = tables;
	for (uint32_t i = 0; i < flushes.n && !err; i++)
		err = range_flush(s, ((uint64_t *)flushes.p)[i], 1);
	ptspec_free(added.p);
	ptspec_free(flushes.p);
	return err;
}

int ptspec_unmap(ptspec_system *s, uint32_t root, uint64_t vpn, uint64_t pages, uint32_t flush)
{
	(void)root;
	uint32_t lo = first_ending_after(s, vpn), hi = lo;
	while (hi < s->leaves.n && LEAF(s, hi).vpn < vpn + pages)
		hi++;
	if (hi == lo)
		return -ENOENT;
	/* linux: a huge leaf meeting the range is cleared whole (pmd/pud_clear_huge); no table is freed. */
	vec_remove(&s->leaves, lo, hi - lo);
	return flush ? range_flush(s, vpn, pages) : owe(s, vpn, pages);
}

int ptspec_translate(ptspec_system *s, uint32_t root, uint64_t vpn, struct ptspec_translation *out)
{
	(void)root;
	uint32_t i = first_ending_after(s, vpn);
	if (i == s->leaves.n || LEAF(s, i).vpn > vpn)
		return -ENOENT;
	struct leaf l = LEAF(s, i);
	*out = (struct ptspec_translation){ l.vpn, l.pfn, l.size, l.prot, l.pfn + (vpn - l.vpn) };
	return 0;
}

int ptspec_flush(ptspec_system *s, uint64_t vpn, uint64_t pages) { return range_flush(s, vpn, pages); }

int ptspec_flush_all(ptspec_system *s)
{
	s->owed.n = 0;
	return 0;
}

/* ---- the abstraction function (c/ABSTRACT.md) ---- */

static unsigned char *put(unsigned char *at, const void *src, uint32_t n)
{
	memcpy(at, src, n);
	return at + n;
}

uint64_t ptspec_abstract(const ptspec_system *s, uint8_t *buf, uint64_t size)
{
	/* Leaves, frame runs and obligations are kept in their record layouts: 24 bytes each. */
	uint64_t need = 48 + 24ull * s->runs.n + 24 + 24ull * s->leaves.n + 24ull * s->owed.n;
	if (need > size)
		return need;
	uint32_t head[8] = { 0x53415450, 1, s->runs.n, 1, 0, 0, s->owed.n, 0 };
	uint64_t tables[2] = { 1 + s->tables.n, 0 };
	uint32_t root[6] = { 0, 0, 0, s->leaves.n, 0, 0 };
	unsigned char *at = put(buf, head, sizeof(head));
	at = put(at, tables, sizeof(tables));
	at = put(at, s->runs.p, 24 * s->runs.n);
	at = put(at, root, sizeof(root));
	at = put(at, s->leaves.p, 24 * s->leaves.n);
	put(at, s->owed.p, 24 * s->owed.n);
	return need;
}

/* The record layouts this file copies out as they are. */
_Static_assert(sizeof(struct leaf) == 24 && sizeof(struct owed) == 24 && sizeof(struct ptspec_frame_run) == 24, "record sizes");
_Static_assert(sizeof(struct ptspec_setup) == 56 && __builtin_offsetof(struct ptspec_setup, frame_runs) == 48, "setup layout");
_Static_assert(sizeof(struct ptspec_translation) == 32 && __builtin_offsetof(struct ptspec_translation, pfn) == 24, "translation layout");
_Static_assert(sizeof(struct ptspec_access_result) == 40 && __builtin_offsetof(struct ptspec_access_result, translation) == 8, "access layout");
