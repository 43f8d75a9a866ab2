/*
 * ptspec.h: the C interface of a page-table implementation that ptspec fuzzes against
 * its reference model (`ptspec fuzz --impl lib.wasm`, or `--impl-cmd "./prog"` for a
 * native process speaking c/PROTOCOL.md over stdin/stdout).
 *
 * An implementation exports the functions below. ptspec checks the arguments of every
 * call before making it (the argument validators of spec/contracts are shared, trusted
 * code, exactly as for the built-in implementations), so an implementation never sees an
 * EINVAL case of the contracts and never returns -EINVAL but for split's and collapse's
 * state checks. Every other decision is the implementation's: leaf sizes, splits, TLBs,
 * flush obligations, table lifetime, frame uses, refusals.
 *
 * Results are 0 or a negative errno as the kernel returns it (-EEXIST, -ENOENT, -ENOMEM,
 * -EBUSY, -EPERM, -EFAULT, -EINVAL). The argument an error names follows from the
 * operation and the errno (spec/contracts/outcome.ts) and is not returned; an -EPERM also
 * names the strict-policy invariant it refuses to break: ptspec_last_refused() gives its
 * index in STRICT_POLICY (spec/contracts/outcome.ts; `ptspec invariants` prints them).
 *
 * Numbers: page numbers (vpn: virtual address >> 12, the kernel half as the canonical
 * address gives it, e.g. 0xffff888000000 for __PAGE_OFFSET) and frame numbers (pfn) are
 * 64-bit; counts of pages and frames are 64-bit. All values are little-endian in the
 * abstraction buffer. In wasm32, pointers are 32-bit offsets into the module's memory.
 *
 * Versioned: ptspec_abi_version() must return PTSPEC_ABI_VERSION of the header the
 * implementation was built with; ptspec refuses a module of another version by name.
 * ptspec_supported_ops() says which operations it implements (bit 1 << PTSPEC_OP_*):
 * the fuzzer generates no other, as it generates no isolation or client operation for a
 * system without those capabilities. PTSPEC_OP_MAP and PTSPEC_OP_TRANSLATE are required.
 */
#ifndef PTSPEC_H
#define PTSPEC_H

#include <stdint.h>

#define PTSPEC_ABI_VERSION 1u

/* Operation numbers: bit positions in ptspec_supported_ops(), and opcodes of the protocol. */
enum ptspec_op {
	PTSPEC_OP_MAP = 0,
	PTSPEC_OP_UNMAP = 1,
	PTSPEC_OP_PROTECT = 2,
	PTSPEC_OP_SET_DIRECT_MAP_INVALID = 3,
	PTSPEC_OP_SET_DIRECT_MAP_DEFAULT = 4,
	PTSPEC_OP_SPLIT = 5,
	PTSPEC_OP_COLLAPSE = 6,
	PTSPEC_OP_TRANSLATE = 7,
	PTSPEC_OP_ACCESS = 8,
	PTSPEC_OP_FLUSH = 9,
	PTSPEC_OP_FLUSH_ALL = 10,
	PTSPEC_OP_FLUSH_LOCAL = 11,
	PTSPEC_OP_ALLOC_FRAMES = 12,
	PTSPEC_OP_FREE_FRAMES = 13,
};

/* Profiles (spec/system.ts Profile). */
enum ptspec_profile { PTSPEC_STRICT = 0, PTSPEC_LINUX = 1 };

/* Page sizes (a leaf's size, map's max_page, collapse's size). */
enum ptspec_page_size { PTSPEC_4K = 0, PTSPEC_2M = 1, PTSPEC_1G = 2 };

/* Cache modes, in spec/state.ts CACHE_MODES order. */
enum ptspec_cache { PTSPEC_WB = 0, PTSPEC_WC = 1, PTSPEC_UC_MINUS = 2, PTSPEC_UC = 3, PTSPEC_WT = 4, PTSPEC_WP = 5 };

/*
 * A protection (spec/state.ts Prot) packed in 32 bits: the effective permission of a
 * leaf, not its entry's bits (W and user ANDed over the walk, NX ORed).
 */
#define PTSPEC_PROT_WRITE       (1u << 0)
#define PTSPEC_PROT_USER        (1u << 1)
#define PTSPEC_PROT_EXEC_KERNEL (1u << 2)
#define PTSPEC_PROT_EXEC_USER   (1u << 3)
#define PTSPEC_PROT_GLOBAL      (1u << 4)
#define PTSPEC_PROT_KERNEL4K    (1u << 5) /* _PAGE_KERNEL_4K: made 4K on purpose (set_memory_4k) */
#define PTSPEC_PROT_CACHE_SHIFT 8         /* bits 8..10: enum ptspec_cache */
#define PTSPEC_PROT_CACHE_MASK  (7u << PTSPEC_PROT_CACHE_SHIFT)

/*
 * A set_memory_* request (spec/system.ts ProtChange): each PTSPEC_CHANGE_HAS_* bit says
 * the field is given, its value bit (or the cache field) what it is set to.
 */
#define PTSPEC_CHANGE_HAS_WRITE   (1u << 0)
#define PTSPEC_CHANGE_WRITE       (1u << 1)
#define PTSPEC_CHANGE_HAS_EXEC    (1u << 2)
#define PTSPEC_CHANGE_EXEC        (1u << 3)
#define PTSPEC_CHANGE_HAS_GLOBAL  (1u << 4)
#define PTSPEC_CHANGE_GLOBAL      (1u << 5)
#define PTSPEC_CHANGE_HAS_PRESENT (1u << 6)
#define PTSPEC_CHANGE_PRESENT     (1u << 7)
#define PTSPEC_CHANGE_KERNEL4K    (1u << 8)
#define PTSPEC_CHANGE_HAS_CACHE   (1u << 9)
#define PTSPEC_CHANGE_CACHE_SHIFT 12      /* bits 12..14: enum ptspec_cache */

/* protect's options (spec/system.ts ProtectOptions). */
#define PTSPEC_PROTECT_ALIAS    (1u << 0) /* cpa_process_alias */
#define PTSPEC_PROTECT_COLLAPSE (1u << 1) /* CPA_COLLAPSE (set_memory_rox) */

/* Frame uses, in spec/state.ts FRAME_USES order. */
enum ptspec_frame_use {
	PTSPEC_FRAME_FREE = 0, PTSPEC_FRAME_PAGETABLE = 1, PTSPEC_FRAME_KERNEL_TEXT = 2, PTSPEC_FRAME_KERNEL_RODATA = 3,
	PTSPEC_FRAME_KERNEL_DATA = 4, PTSPEC_FRAME_DATA = 5, PTSPEC_FRAME_USER = 6, PTSPEC_FRAME_ABSENT = 7,
};
/* Frame run flags (spec/state.ts FrameRun). */
#define PTSPEC_FRAME_SENSITIVE      (1u << 0)
#define PTSPEC_FRAME_NO_DIRECT_MAP  (1u << 1)
#define PTSPEC_FRAME_MEMTYPE_SHIFT  4         /* bits 4..5: 0 none (WB), 1 WC, 2 UC- */

struct ptspec_frame_run {
	uint64_t pfn;
	uint64_t count;
	uint32_t use;   /* enum ptspec_frame_use */
	uint32_t flags; /* PTSPEC_FRAME_* */
};

/* The machine (spec/state.ts SystemConfig) and its frames at power-on (spec/system.ts SystemSetup). */
struct ptspec_setup {
	uint32_t levels;        /* 4 or 5 */
	uint32_t cpus;
	uint32_t max_phys_bits; /* MAXPHYADDR */
	uint32_t features;      /* bit 0: PSE (2M pages), bit 1: GB pages (1G) */
	uint64_t frames;        /* frames 0 .. frames-1 */
	uint64_t table_pool_pfn;   /* page tables come from [table_pool_pfn, +table_pool_count) */
	uint64_t table_pool_count;
	uint32_t profile;       /* enum ptspec_profile */
	uint32_t nr_frame_runs; /* covering 0 .. frames-1; may come unsorted and unmerged */
	const struct ptspec_frame_run *frame_runs;
};

/* translate's and access's result: the leaf that maps the page, and the page's own frame. */
struct ptspec_translation {
	uint64_t leaf_vpn;
	uint64_t leaf_pfn;
	uint32_t leaf_size; /* enum ptspec_page_size */
	uint32_t leaf_prot; /* PTSPEC_PROT_* */
	uint64_t pfn;       /* leaf_pfn + (vpn - leaf_vpn) */
};

/* access's kinds and modes (spec/system.ts AccessKind, AccessMode). */
enum ptspec_access_kind { PTSPEC_READ = 0, PTSPEC_WRITE = 1, PTSPEC_EXEC = 2 };
enum ptspec_access_mode { PTSPEC_KERNEL = 0, PTSPEC_USERMODE = 1 };
/* access's outcome (spec/system.ts AccessOutcome). */
enum ptspec_access_fault { PTSPEC_NO_FAULT = 0, PTSPEC_FAULT_NOT_PRESENT = 1, PTSPEC_FAULT_PROTECTION = 2 };
struct ptspec_access_result {
	uint32_t fault;    /* enum ptspec_access_fault */
	uint32_t from_tlb; /* no fault: 1 when the TLB answered */
	struct ptspec_translation translation; /* no fault only */
};

/* One implementation instance: opaque to ptspec. */
typedef struct ptspec_system ptspec_system;

/* Bits of ptspec_supported_ops() above the operations: the profiles the implementation follows. */
#define PTSPEC_SUPPORTS_STRICT (1ull << 48)
#define PTSPEC_SUPPORTS_LINUX  (1ull << 49)

uint32_t ptspec_abi_version(void);
uint64_t ptspec_supported_ops(void);

/* A system in the power-on state of `setup` (no mapping yet: the scenario's boot is a
 * sequence of the operations below). NULL when it cannot be made. The setup's memory may
 * be reused after the call. */
ptspec_system *ptspec_create(const struct ptspec_setup *setup);
void ptspec_destroy(ptspec_system *sys);
/* An independent copy in the same state (optional: may return NULL, and ptspec boots afresh). */
ptspec_system *ptspec_fork(const ptspec_system *sys);

/* The operations (spec/system.ts PageTableSystem; contracts: docs/SPEC.md, "Operations"). */
int ptspec_map(ptspec_system *sys, uint32_t root, uint64_t vpn, uint64_t pfn, uint64_t pages, uint32_t prot, uint32_t max_page);
int ptspec_unmap(ptspec_system *sys, uint32_t root, uint64_t vpn, uint64_t pages, uint32_t flush);
int ptspec_protect(ptspec_system *sys, uint64_t vpn, uint64_t pages, uint32_t change, uint32_t options);
int ptspec_set_direct_map_invalid(ptspec_system *sys, uint64_t pfn, uint64_t count, uint32_t flush);
int ptspec_set_direct_map_default(ptspec_system *sys, uint64_t pfn, uint64_t count, uint32_t flush);
int ptspec_split(ptspec_system *sys, uint32_t root, uint64_t vpn);
int ptspec_collapse(ptspec_system *sys, uint32_t root, uint64_t vpn, uint32_t size);
int ptspec_translate(ptspec_system *sys, uint32_t root, uint64_t vpn, struct ptspec_translation *out);
int ptspec_access(ptspec_system *sys, uint32_t cpu, uint32_t root, uint64_t vpn, uint32_t kind, uint32_t mode, struct ptspec_access_result *out);
int ptspec_flush(ptspec_system *sys, uint64_t vpn, uint64_t pages);
int ptspec_flush_all(ptspec_system *sys);
int ptspec_flush_local(ptspec_system *sys, uint32_t cpu, uint64_t vpn, uint64_t pages);
int ptspec_alloc_frames(ptspec_system *sys, uint64_t pfn, uint64_t count);
int ptspec_free_frames(ptspec_system *sys, uint64_t pfn, uint64_t count);

/* After an -EPERM: the index in STRICT_POLICY of the invariant refused. */
uint32_t ptspec_last_refused(const ptspec_system *sys);

/*
 * The abstraction function: writes the abstract state into buf (c/ABSTRACT.md gives the
 * layout) if it fits in `size` bytes, and returns the number of bytes it needs either way
 * (ptspec calls again with a larger buffer when it did not fit).
 */
uint64_t ptspec_abstract(const ptspec_system *sys, uint8_t *buf, uint64_t size);

/* wasm32 only: memory for ptspec's arguments and buffers inside the module. */
void *ptspec_alloc(uint32_t size);
void ptspec_free(void *p);

#endif /* PTSPEC_H */
