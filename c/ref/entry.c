/*
 * entry.c: building and reading x86-64 leaf entries (entry.h). The kernel's PAT MSR
 * programming: PA0 WB, PA1 WC, PA2 UC-, PA3 UC, PA4 WB, PA5 WP, PA6 UC-, PA7 WT; each
 * cache mode is written with the index the kernel's __cachemode2pte_tbl uses for it.
 */
#include "entry.h"
#include "../ptspec.h"

/* The PAT index of each enum ptspec_cache (WB, WC, UC-, UC, WT, WP). */
static const uint8_t CACHE_INDEX[6] = { 0, 1, 2, 3, 7, 5 };
/* The enum ptspec_cache of each PAT index, as the kernel programs the MSR. */
static const uint8_t PAT_MODE[8] = { PTSPEC_WB, PTSPEC_WC, PTSPEC_UC_MINUS, PTSPEC_UC, PTSPEC_WB, PTSPEC_WP, PTSPEC_UC_MINUS, PTSPEC_WT };

static pte_t pat_bit(int level) { return level == 1 ? _PAGE_PAT : _PAGE_PAT_LARGE; }

pte_t mk_leaf(int level, uint64_t pfn, uint32_t prot)
{
	uint32_t cache = (prot & PTSPEC_PROT_CACHE_MASK) >> PTSPEC_PROT_CACHE_SHIFT;
	uint32_t index = CACHE_INDEX[cache < 6 ? cache : 0];
	pte_t e = _PAGE_PRESENT | _PAGE_ACCESSED | pfn_bits(pfn);
	if (prot & PTSPEC_PROT_WRITE)
		e |= _PAGE_RW | _PAGE_DIRTY;
	if (prot & PTSPEC_PROT_USER)
		e |= _PAGE_USER;
	if ((prot & PTSPEC_PROT_EXEC_KERNEL) == 0)
		e |= _PAGE_NX;
	if (prot & PTSPEC_PROT_GLOBAL)
		e |= _PAGE_GLOBAL;
	if (prot & PTSPEC_PROT_KERNEL4K)
		e |= _PAGE_KERNEL_4K;
	if (index & 1)
		e |= _PAGE_PWT;
	if (index & 2)
		e |= _PAGE_PCD;
	if (index & 4)
		e |= pat_bit(level);
	if (level > 1)
		e |= _PAGE_PSE;
	return e;
}

uint32_t leaf_prot(pte_t e, int level, struct walk_bits b)
{
	int write = b.rw && (e & _PAGE_RW) != 0;
	int user = b.user && (e & _PAGE_USER) != 0;
	int exec = !b.nx && (e & _PAGE_NX) == 0;
	uint32_t index = ((e & pat_bit(level)) ? 4u : 0u) | ((e & _PAGE_PCD) ? 2u : 0u) | ((e & _PAGE_PWT) ? 1u : 0u);
	uint32_t prot = (uint32_t)PAT_MODE[index] << PTSPEC_PROT_CACHE_SHIFT;
	if (write)
		prot |= PTSPEC_PROT_WRITE;
	if (user)
		prot |= PTSPEC_PROT_USER;
	if (exec)
		prot |= PTSPEC_PROT_EXEC_KERNEL;
	/* One NX bit: a user page the kernel may execute, user mode may too. */
	if (exec && user)
		prot |= PTSPEC_PROT_EXEC_USER;
	if (e & _PAGE_GLOBAL)
		prot |= PTSPEC_PROT_GLOBAL;
	if (e & _PAGE_KERNEL_4K)
		prot |= PTSPEC_PROT_KERNEL4K;
	return prot;
}

pte_t large_to_4k(pte_t e)
{
	pte_t flags = e & ~(PTE_PFN_MASK | _PAGE_PSE);
	return (e & _PAGE_PAT_LARGE) ? flags | _PAGE_PAT : flags;
}

pte_t small_to_large(pte_t e)
{
	pte_t flags = (e & ~(PTE_PFN_MASK | _PAGE_PAT)) | _PAGE_PSE;
	return (e & _PAGE_PAT) ? flags | _PAGE_PAT_LARGE : flags;
}
