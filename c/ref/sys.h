/*
 * sys.h: the state of one reference system (struct ptspec_system) and the functions its
 * modules share. The state is what the hardware and the kernel keep, not the abstract
 * state: radix tables in frames of the setup's table pool, per-CPU TLB entries and
 * paging-structure-cache entries, the flush obligations and the frame runs. abstract.c
 * turns it into the abstract state.
 *
 * The linux profile only: every table the kernel allocated for the kernel half stays
 * (vunmap frees none); a huge map frees the kept table in its slot, a collapse the table
 * it replaces. No operation frees a table without flushing, so no table ever waits on a
 * deferred-free list (pendingTableFrees is always 0).
 */
#ifndef PTREF_SYS_H
#define PTREF_SYS_H

#include "../ptspec.h"
#include "entry.h"
#include "mem.h"
#include "mutant.h"

#define PTRS_PER_TABLE 512u
/* tlb_single_page_flush_ceiling (arch/x86/mm/tlb.c): a longer range flush is a full one. */
#define TLB_SINGLE_PAGE_FLUSH_CEILING 33u
/* Page numbers are the unsigned VA >> 12: 52 bits. */
#define VPN_LIMIT (1ull << 52)

#define PT_EEXIST 17
#define PT_ENOENT 2
#define PT_ENOMEM 12
#define PT_EBUSY 16
#define PT_EINVAL 22

/* The table pool: frame pfn + i holds table i while table[i] is set. */
struct pool {
	uint64_t pfn;
	uint32_t count;
	pte_t **table;
	/* Bumped each time frame i is freed: a cached pointer of an older generation is to a freed table. */
	uint32_t *gen;
	/* The free frames, lowest on top. */
	uint32_t *free;
	uint32_t nfree;
};

struct tlb_entry {
	uint32_t cpu, root;
	uint64_t vpn, pfn;
	uint32_t size, prot;
};

/* A paging-structure-cache entry: the level-`level` table covering [vpn, +2^(9·level)), as pool frame idx of generation gen. */
struct walk_entry {
	uint32_t cpu, root, level, idx, gen;
	uint64_t vpn;
};

/* A flush owed: its reasons a set, bit n for reason code n of c/ABSTRACT.md (0 unmap). */
struct obligation {
	uint64_t vpn, pages;
	uint32_t reason;
};

struct range {
	uint64_t vpn, pages;
};

struct ptspec_system {
	uint32_t levels, cpus, features;
	uint64_t frames;
	struct pool pool;
	/* The pool frame of init_mm's pgd. */
	uint32_t pgd;
	struct ptspec_frame_run *runs;
	uint32_t nruns, runs_cap;
	struct tlb_entry *tlb;
	uint32_t ntlb, tlb_cap;
	struct walk_entry *walk;
	uint32_t nwalk, walk_cap;
	struct obligation *owed;
	uint32_t nowed, owed_cap;
};

/* Pages one entry of a level-`level` table covers. */
static inline uint64_t entry_pages(int level) { return 1ull << (9 * (level - 1)); }
/* The index of vpn in a level-`level` table. */
static inline uint32_t table_index(uint64_t vpn, int level) { return (uint32_t)(vpn >> (9 * (level - 1))) & (PTRS_PER_TABLE - 1); }
/* The first page of the level-`level` table holding vpn (its span is one entry of the level above). */
static inline uint64_t table_base(uint64_t vpn, int level) { return vpn & ~(entry_pages(level + 1) - 1); }
static inline int size_level(uint32_t size) { return (int)size + 1; }
static inline uint64_t size_pages(uint32_t size) { return entry_pages(size_level(size)); }

/* tables.c */
int pool_init(struct pool *p, uint64_t pfn, uint64_t count);
int pool_copy(struct pool *dst, const struct pool *src);
void pool_destroy(struct pool *p);
/* A zeroed table, its pool index in *idx: 0, or -1 when the pool is empty. */
int pool_alloc(struct pool *p, uint32_t *idx);
void pool_release(struct pool *p, uint32_t idx);
static inline uint32_t pool_in_use(const struct pool *p) { return p->count - p->nfree; }
/* The table a table entry points to, or NULL when its frame holds no table. */
pte_t *pool_table(const struct pool *p, pte_t e);
/* The table pool index of a table entry (valid when pool_table is not NULL). */
static inline uint32_t pool_index(const struct pool *p, pte_t e) { return (uint32_t)(pte_pfn(e, 2) - p->pfn); }
/* Frees the table behind a table entry at `level` and every table below it. */
void free_subtree(struct pool *p, pte_t e, int level);
/* How many tables the table entry at `level` and those below it hold. */
uint32_t count_subtree(const struct pool *p, pte_t e, int level);

/* What a walk from the pgd for one page found. */
struct lookup {
	pte_t *slot;       /* the entry it stopped at */
	int level;         /* that entry's level */
	struct walk_bits bits; /* the table entries above it */
	uint32_t table[6]; /* pool index of the table at each level walked, table[level] holding slot */
};
/* Walk to vpn, stopping at level `stop` or at the first entry that is not a table. */
void lookup(const struct ptspec_system *sys, uint64_t vpn, int stop, struct lookup *out);
/* The first page of the span of the level-`level` entry holding vpn in the pgd. */
static inline uint64_t slot_vpn(uint64_t vpn, int level) { return vpn & ~(entry_pages(level) - 1); }

/* split.c: the huge leaf in *slot (at `level`) becomes a table of 512 leaves a size down; 0, or -1 when the pool is empty. */
int split_entry(struct ptspec_system *sys, pte_t *slot, int level);

/* tlb.c: flushes, TLBs, paging-structure caches, obligations. */
void flush_ranges(struct ptspec_system *sys, struct range *ranges, uint32_t n);
void flush_everything(struct ptspec_system *sys);
/* flush_tlb_one_kernel of each page on one CPU: no ceiling, nothing owed is paid. */
void flush_local(struct ptspec_system *sys, uint32_t cpu, uint64_t vpn, uint64_t pages);
int owe_flush(struct ptspec_system *sys, uint64_t vpn, uint64_t pages, uint32_t reason);
int tlb_fill(struct ptspec_system *sys, const struct tlb_entry *e);
int walk_cache_fill(struct ptspec_system *sys, uint32_t cpu, uint32_t root, int level, uint64_t vpn, uint32_t idx);
const struct tlb_entry *tlb_lookup(const struct ptspec_system *sys, uint32_t cpu, uint32_t root, uint64_t vpn);
const struct walk_entry *walk_start(const struct ptspec_system *sys, uint32_t cpu, uint32_t root, uint64_t vpn);
/* enum: 0 current, 1 unlinked, 2 freed (spec/state.ts CachedTableState). */
uint32_t walk_entry_state(const struct ptspec_system *sys, const struct walk_entry *w);

/* frames.c */
int frames_init(struct ptspec_system *sys, const struct ptspec_frame_run *runs, uint32_t n);
/* Whether some frame of [pfn, pfn+count) has another use than `use`. */
int frames_any_not(const struct ptspec_system *sys, uint64_t pfn, uint64_t count, uint32_t use);
int frames_set_use(struct ptspec_system *sys, uint64_t pfn, uint64_t count, uint32_t use);

#ifdef __wasm__
#define PTSPEC_EXPORT __attribute__((visibility("default")))
#else
#define PTSPEC_EXPORT
#endif

#endif
