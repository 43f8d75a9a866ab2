/*
 * access.c: translate, access and the flush operations (spec/contracts/access.ts). The
 * MMU: a TLB hit answers (the smallest entry covering the page, stale or not); a miss
 * walks from the deepest table this CPU's paging-structure caches hold for the page, and a
 * cached table no longer linked there (or freed) leads nowhere; a walk that reaches a leaf
 * fills the TLB and caches every table it passed. The permission check comes after the
 * fill (Intel SDM §4.6 with CR0.WP and SMEP on, as Linux runs).
 */
#include "sys.h"

/* The leaf a walk found, as translate and the TLB give it. */
static void leaf_of(const struct lookup *l, uint64_t vpn, struct tlb_entry *out)
{
	out->vpn = slot_vpn(vpn, l->level);
	out->pfn = pte_pfn(*l->slot, l->level);
	out->size = (uint32_t)l->level - 1;
	out->prot = leaf_prot(*l->slot, l->level, l->bits);
}

static void translation_of(const struct tlb_entry *leaf, uint64_t vpn, struct ptspec_translation *out)
{
	out->leaf_vpn = leaf->vpn;
	out->leaf_pfn = leaf->pfn;
	out->leaf_size = leaf->size;
	out->leaf_prot = leaf->prot;
	out->pfn = leaf->pfn + (vpn - leaf->vpn);
}

PTSPEC_EXPORT int ptspec_translate(ptspec_system *sys, uint32_t root, uint64_t vpn, struct ptspec_translation *out)
{
	(void)root;
	struct lookup l;
	lookup(sys, vpn, 1, &l);
	if (!pte_leaf(*l.slot, l.level))
		return -PT_ENOENT;
	struct tlb_entry leaf;
	leaf_of(&l, vpn, &leaf);
	translation_of(&leaf, vpn, out);
	return 0;
}

static int allowed(uint32_t prot, uint32_t kind, uint32_t mode)
{
	int user = (prot & PTSPEC_PROT_USER) != 0;
	int reach = mode == PTSPEC_KERNEL || user;
	if (kind == PTSPEC_READ)
		return reach;
	if (kind == PTSPEC_WRITE)
		return reach && (prot & PTSPEC_PROT_WRITE) != 0;
	return mode == PTSPEC_KERNEL ? (prot & PTSPEC_PROT_EXEC_KERNEL) != 0 && !user : (prot & PTSPEC_PROT_EXEC_USER) != 0;
}

PTSPEC_EXPORT int ptspec_access(ptspec_system *sys, uint32_t cpu, uint32_t root, uint64_t vpn, uint32_t kind, uint32_t mode, struct ptspec_access_result *out)
{
	pt_memzero(out, sizeof(*out));
	const struct tlb_entry *hit = tlb_lookup(sys, cpu, root, vpn);
	struct tlb_entry leaf;
	if (hit != NULL) {
		leaf = *hit;
	} else {
		const struct walk_entry *w = walk_start(sys, cpu, root, vpn);
		struct lookup l;
		if (w != NULL && walk_entry_state(sys, w) != 0) {
			out->fault = PTSPEC_FAULT_NOT_PRESENT;
			return 0;
		}
		lookup(sys, vpn, 1, &l);
		if (!pte_leaf(*l.slot, l.level)) {
			out->fault = PTSPEC_FAULT_NOT_PRESENT;
			return 0;
		}
		leaf_of(&l, vpn, &leaf);
		leaf.cpu = cpu;
		leaf.root = root;
		if (tlb_fill(sys, &leaf) != 0)
			return -PT_ENOMEM;
		for (int level = l.level; level < (int)sys->levels; level++)
			if (walk_cache_fill(sys, cpu, root, level, vpn, l.table[level]) != 0)
				return -PT_ENOMEM;
	}
	if (!allowed(leaf.prot, kind, mode)) {
		out->fault = PTSPEC_FAULT_PROTECTION;
		return 0;
	}
	out->from_tlb = hit != NULL;
	translation_of(&leaf, vpn, &out->translation);
	return 0;
}

PTSPEC_EXPORT int ptspec_flush(ptspec_system *sys, uint64_t vpn, uint64_t pages)
{
	struct range r = { vpn, pages };
	flush_ranges(sys, &r, 1);
	return 0;
}

PTSPEC_EXPORT int ptspec_flush_all(ptspec_system *sys)
{
	flush_everything(sys);
	return 0;
}

PTSPEC_EXPORT int ptspec_flush_local(ptspec_system *sys, uint32_t cpu, uint64_t vpn, uint64_t pages)
{
	flush_local(sys, cpu, vpn, pages);
	return 0;
}
