/*
 * entry.h: the x86-64 page-table entry encoding (Intel SDM vol. 3 §4.5; the bit names
 * are the kernel's _PAGE_* of arch/x86/include/asm/pgtable_types.h), and the translation
 * between an entry and ptspec's protection (PTSPEC_PROT_*). Cache modes go through the
 * PAT MSR as the kernel programs it (spec/state.ts X86_KERNEL_PAT): the PAT index is
 * PAT*4 + PCD*2 + PWT, and PAT sits at bit 7 in a 4K PTE but at bit 12 in a 2M/1G leaf,
 * where bit 7 is PS.
 */
#ifndef PTREF_ENTRY_H
#define PTREF_ENTRY_H

#include <stdint.h>

typedef uint64_t pte_t;

#define _PAGE_PRESENT   (1ull << 0)
#define _PAGE_RW        (1ull << 1)
#define _PAGE_USER      (1ull << 2)
#define _PAGE_PWT       (1ull << 3)
#define _PAGE_PCD       (1ull << 4)
#define _PAGE_ACCESSED  (1ull << 5)
#define _PAGE_DIRTY     (1ull << 6)
#define _PAGE_PSE       (1ull << 7) /* in a PMD or PUD entry */
#define _PAGE_PAT       (1ull << 7) /* in a 4K PTE */
#define _PAGE_GLOBAL    (1ull << 8)
#define _PAGE_KERNEL_4K (1ull << 11) /* _PAGE_SOFTW3: set_memory_4k's "keep this 4K" */
#define _PAGE_PAT_LARGE (1ull << 12)
#define _PAGE_NX        (1ull << 63)
/* The frame field, bits 12..51 (a large leaf's bit 12 is PAT, its frame is aligned above it). */
#define PTE_PFN_MASK    0x000ffffffffff000ull

/* _KERNPG_TABLE: a kernel table entry. No _PAGE_USER, no NX, no G: the leaf decides. */
#define _KERNPG_TABLE (_PAGE_PRESENT | _PAGE_RW | _PAGE_ACCESSED | _PAGE_DIRTY)

/* What the table entries above a leaf allow: RW and US are ANDed over the walk, NX ORed. */
struct walk_bits {
	int rw, user, nx;
};

static const struct walk_bits WALK_START = { 1, 1, 0 };

static inline struct walk_bits walk_through(struct walk_bits b, pte_t table_entry)
{
	b.rw = b.rw && (table_entry & _PAGE_RW) != 0;
	b.user = b.user && (table_entry & _PAGE_USER) != 0;
	b.nx = b.nx || (table_entry & _PAGE_NX) != 0;
	return b;
}

static inline int pte_present(pte_t e) { return (e & _PAGE_PRESENT) != 0; }

/* A present entry at `level` (1 PTE .. 5 PGD) that points to a table. */
static inline int pte_table(pte_t e, int level) { return level > 1 && pte_present(e) && (e & _PAGE_PSE) == 0; }

/* A present entry at `level` that maps memory itself. */
static inline int pte_leaf(pte_t e, int level) { return pte_present(e) && (level == 1 || (e & _PAGE_PSE) != 0); }

/* The frame an entry holds (a table's, or a leaf's first). */
static inline uint64_t pte_pfn(pte_t e, int level)
{
	pte_t field = e & PTE_PFN_MASK;
	if (level > 1 && (e & _PAGE_PSE) != 0)
		field &= ~_PAGE_PAT_LARGE;
	return field >> 12;
}

static inline pte_t pfn_bits(uint64_t pfn) { return (pfn << 12) & PTE_PFN_MASK; }

static inline pte_t mk_table_entry(uint64_t pfn) { return pfn_bits(pfn) | _KERNPG_TABLE; }

/* A leaf at level 1 (4K), 2 (2M) or 3 (1G) mapping `pfn` with the PTSPEC_PROT_* `prot`. */
pte_t mk_leaf(int level, uint64_t pfn, uint32_t prot);

/* The effective PTSPEC_PROT_* of a leaf (or a non-present entry's kept bits) reached through `b`. */
uint32_t leaf_prot(pte_t e, int level, struct walk_bits b);

/*
 * The flags of a large leaf as a 4K PTE carries them (the kernel's pgprot_large_2_4k): PS
 * dropped, PAT moved from bit 12 to bit 7. The frame bits are cleared; the caller sets them.
 */
pte_t large_to_4k(pte_t e);
/* The inverse (pgprot_4k_2_large): PAT from bit 7 to bit 12, PS set, frame bits cleared. */
pte_t small_to_large(pte_t e);

#endif
