/*
 * api.c: the life of a system (ptspec_create, _destroy, _fork), what it supports, and the
 * module's memory for ptspec's arguments. The reference library follows the linux profile
 * only: it refuses to be made for the strict one, and has neither protect nor the
 * set_direct_map_* operations (their entry points answer -EINVAL; ptspec never calls them,
 * since ptspec_supported_ops does not name them).
 */
#include "sys.h"

PTSPEC_EXPORT uint32_t ptspec_abi_version(void)
{
	return PTSPEC_ABI_VERSION;
}

PTSPEC_EXPORT uint64_t ptspec_supported_ops(void)
{
	static const uint32_t ops[] = {
		PTSPEC_OP_MAP, PTSPEC_OP_UNMAP, PTSPEC_OP_SPLIT, PTSPEC_OP_COLLAPSE, PTSPEC_OP_TRANSLATE, PTSPEC_OP_ACCESS,
		PTSPEC_OP_FLUSH, PTSPEC_OP_FLUSH_ALL, PTSPEC_OP_FLUSH_LOCAL, PTSPEC_OP_ALLOC_FRAMES, PTSPEC_OP_FREE_FRAMES,
	};
	uint64_t bits = PTSPEC_SUPPORTS_LINUX;
	for (uint32_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		bits |= 1ull << ops[i];
	return bits;
}

PTSPEC_EXPORT void ptspec_destroy(ptspec_system *sys)
{
	if (sys == NULL)
		return;
	pool_destroy(&sys->pool);
	pt_free(sys->runs);
	pt_free(sys->tlb);
	pt_free(sys->walk);
	pt_free(sys->owed);
	pt_free(sys);
}

PTSPEC_EXPORT ptspec_system *ptspec_create(const struct ptspec_setup *setup)
{
	if (setup->profile != PTSPEC_LINUX || (setup->levels != 4 && setup->levels != 5) || setup->cpus == 0)
		return NULL;
	ptspec_system *sys = pt_alloc(sizeof(*sys));
	if (sys == NULL)
		return NULL;
	sys->levels = setup->levels;
	sys->cpus = setup->cpus;
	sys->features = setup->features;
	sys->frames = setup->frames;
	/* init_mm's pgd: allocated at boot, never freed. */
	if (pool_init(&sys->pool, setup->table_pool_pfn, setup->table_pool_count) != 0 || pool_alloc(&sys->pool, &sys->pgd) != 0 ||
	    frames_init(sys, setup->frame_runs, setup->nr_frame_runs) != 0) {
		ptspec_destroy(sys);
		return NULL;
	}
	return sys;
}

/* A copy of the n elements of src (NULL for none), its capacity in *cap. */
static void *copy_array(const void *src, uint32_t n, size_t elem, uint32_t *cap, int *failed)
{
	*cap = n;
	if (n == 0)
		return NULL;
	void *dst = pt_alloc(elem * n);
	if (dst == NULL)
		*failed = 1;
	else
		pt_memcpy(dst, src, elem * n);
	return dst;
}

PTSPEC_EXPORT ptspec_system *ptspec_fork(const ptspec_system *sys)
{
	ptspec_system *copy = pt_alloc(sizeof(*copy));
	if (copy == NULL)
		return NULL;
	*copy = *sys;
	int failed = pool_copy(&copy->pool, &sys->pool) != 0;
	copy->runs = copy_array(sys->runs, sys->nruns, sizeof(*sys->runs), &copy->runs_cap, &failed);
	copy->tlb = copy_array(sys->tlb, sys->ntlb, sizeof(*sys->tlb), &copy->tlb_cap, &failed);
	copy->walk = copy_array(sys->walk, sys->nwalk, sizeof(*sys->walk), &copy->walk_cap, &failed);
	copy->owed = copy_array(sys->owed, sys->nowed, sizeof(*sys->owed), &copy->owed_cap, &failed);
	if (failed) {
		ptspec_destroy(copy);
		return NULL;
	}
	return copy;
}

/* The linux profile refuses nothing for a security reason: there is never an EPERM to explain. */
PTSPEC_EXPORT uint32_t ptspec_last_refused(const ptspec_system *sys)
{
	(void)sys;
	return 0;
}

PTSPEC_EXPORT int ptspec_protect(ptspec_system *sys, uint64_t vpn, uint64_t pages, uint32_t change, uint32_t options)
{
	(void)sys, (void)vpn, (void)pages, (void)change, (void)options;
	return -PT_EINVAL;
}

PTSPEC_EXPORT int ptspec_set_direct_map_invalid(ptspec_system *sys, uint64_t pfn, uint64_t count, uint32_t flush)
{
	(void)sys, (void)pfn, (void)count, (void)flush;
	return -PT_EINVAL;
}

PTSPEC_EXPORT int ptspec_set_direct_map_default(ptspec_system *sys, uint64_t pfn, uint64_t count, uint32_t flush)
{
	(void)sys, (void)pfn, (void)count, (void)flush;
	return -PT_EINVAL;
}

PTSPEC_EXPORT void *ptspec_alloc(uint32_t size)
{
	return pt_alloc(size);
}

PTSPEC_EXPORT void ptspec_free(void *p)
{
	pt_free(p);
}
