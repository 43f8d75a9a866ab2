/*
 * frames.c: the frame runs (spec/state.ts FrameRun), kept canonical: sorted by pfn,
 * covering 0 .. frames-1, neighbours with the same use and flags merged. allocFrames and
 * freeFrames change the use of a range (their operations are here too); nothing else
 * changes a frame.
 */
#include "sys.h"

static int same_facts(const struct ptspec_frame_run *a, const struct ptspec_frame_run *b)
{
	return a->use == b->use && a->flags == b->flags;
}

/* Sorts and merges runs[0..n) in place; returns the count left. */
static uint32_t canonical(struct ptspec_frame_run *runs, uint32_t n)
{
	for (uint32_t i = 1; i < n; i++)
		for (uint32_t j = i; j > 0 && runs[j].pfn < runs[j - 1].pfn; j--) {
			struct ptspec_frame_run t = runs[j];
			runs[j] = runs[j - 1];
			runs[j - 1] = t;
		}
	uint32_t m = 0;
	for (uint32_t i = 0; i < n; i++) {
		if (runs[i].count == 0)
			continue;
		struct ptspec_frame_run *last = m > 0 ? &runs[m - 1] : NULL;
		if (last != NULL && last->pfn + last->count == runs[i].pfn && same_facts(last, &runs[i]))
			last->count += runs[i].count;
		else
			runs[m++] = runs[i];
	}
	return m;
}

int frames_init(struct ptspec_system *sys, const struct ptspec_frame_run *runs, uint32_t n)
{
	if (pt_reserve((void **)&sys->runs, &sys->runs_cap, n + 1, sizeof(*runs)) != 0)
		return -1;
	pt_memcpy(sys->runs, runs, sizeof(*runs) * n);
	sys->nruns = canonical(sys->runs, n);
	return 0;
}

int frames_any_not(const struct ptspec_system *sys, uint64_t pfn, uint64_t count, uint32_t use)
{
	for (uint32_t i = 0; i < sys->nruns; i++) {
		const struct ptspec_frame_run *r = &sys->runs[i];
		if (r->pfn < pfn + count && pfn < r->pfn + r->count && r->use != use)
			return 1;
	}
	return 0;
}

int frames_set_use(struct ptspec_system *sys, uint64_t pfn, uint64_t count, uint32_t use)
{
	/* Each run becomes at most three pieces: before, inside, after the range. */
	uint32_t cap = sys->nruns * 3;
	struct ptspec_frame_run *out = pt_alloc(sizeof(*out) * cap);
	if (out == NULL)
		return -1;
	uint32_t m = 0;
	uint64_t end = pfn + count;
	for (uint32_t i = 0; i < sys->nruns; i++) {
		struct ptspec_frame_run r = sys->runs[i];
		uint64_t r_end = r.pfn + r.count;
		uint64_t lo = r.pfn > pfn ? r.pfn : pfn;
		uint64_t hi = r_end < end ? r_end : end;
		if (lo >= hi) {
			out[m++] = r;
			continue;
		}
		if (r.pfn < lo)
			out[m++] = (struct ptspec_frame_run){ r.pfn, lo - r.pfn, r.use, r.flags };
		out[m++] = (struct ptspec_frame_run){ lo, hi - lo, use, r.flags };
		if (hi < r_end)
			out[m++] = (struct ptspec_frame_run){ hi, r_end - hi, r.use, r.flags };
	}
	pt_free(sys->runs);
	sys->runs = out;
	sys->runs_cap = cap;
	sys->nruns = canonical(out, m);
	return 0;
}

/* alloc_pages: free frames become data; their direct-map pages already map them. */
PTSPEC_EXPORT int ptspec_alloc_frames(ptspec_system *sys, uint64_t pfn, uint64_t count)
{
	if (frames_any_not(sys, pfn, count, PTSPEC_FRAME_FREE))
		return -PT_EBUSY;
	return frames_set_use(sys, pfn, count, PTSPEC_FRAME_DATA) == 0 ? 0 : -PT_ENOMEM;
}

/* __free_pages: under linux nothing is checked but that the frames are allocated data. */
PTSPEC_EXPORT int ptspec_free_frames(ptspec_system *sys, uint64_t pfn, uint64_t count)
{
	if (frames_any_not(sys, pfn, count, PTSPEC_FRAME_DATA))
		return -PT_ENOENT;
	return frames_set_use(sys, pfn, count, PTSPEC_FRAME_FREE) == 0 ? 0 : -PT_ENOMEM;
}
