/*
 * mem.c: the allocator and byte helpers of mem.h. Under wasm32 there is no libc, so
 * memory comes from a bump pointer over __heap_base (growing linear memory as it goes)
 * with one free list per power-of-two size class; a freed block is reused by the next
 * request of its class. Natively the same calls are libc's.
 */
#include "mem.h"

#ifdef __wasm__

/* The compiler may emit calls to these for struct copies and zeroing. */
void *memcpy(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
void *memmove(void *dst, const void *src, size_t n);

void *memcpy(void *dst, const void *src, size_t n)
{
	unsigned char *d = dst;
	const unsigned char *s = src;
	while (n--)
		*d++ = *s++;
	return dst;
}

void *memmove(void *dst, const void *src, size_t n)
{
	unsigned char *d = dst;
	const unsigned char *s = src;
	if (d < s) {
		while (n--)
			*d++ = *s++;
	} else {
		while (n--)
			d[n] = s[n];
	}
	return dst;
}

void *memset(void *dst, int c, size_t n)
{
	unsigned char *d = dst;
	while (n--)
		*d++ = (unsigned char)c;
	return dst;
}

extern unsigned char __heap_base;

/* A block's header: its size class, kept 16 bytes so the payload stays 16-aligned. */
#define HEADER 16u
#define CLASSES 32u

static uintptr_t heap_top;
static void *free_lists[CLASSES];

static void *bump(size_t n)
{
	if (heap_top == 0)
		heap_top = ((uintptr_t)&__heap_base + 15u) & ~(uintptr_t)15u;
	uintptr_t end = heap_top + n;
	if (end < heap_top)
		return NULL;
	size_t have = __builtin_wasm_memory_size(0) * 65536u;
	if (end > have && __builtin_wasm_memory_grow(0, (end - have + 65535u) / 65536u) == (size_t)-1)
		return NULL;
	void *p = (void *)heap_top;
	heap_top = end;
	return p;
}

void *pt_alloc(size_t n)
{
	unsigned c = 5;
	while (c < CLASSES && ((size_t)1 << c) < n + HEADER)
		c++;
	if (c == CLASSES)
		return NULL;
	unsigned char *blk = free_lists[c];
	if (blk != NULL)
		free_lists[c] = *(void **)(blk + HEADER);
	else if ((blk = bump((size_t)1 << c)) == NULL)
		return NULL;
	*(uint32_t *)blk = c;
	pt_memzero(blk + HEADER, ((size_t)1 << c) - HEADER);
	return blk + HEADER;
}

void pt_free(void *p)
{
	if (p == NULL)
		return;
	unsigned char *blk = (unsigned char *)p - HEADER;
	uint32_t c = *(uint32_t *)blk;
	*(void **)p = free_lists[c];
	free_lists[c] = blk;
}

#else

#include <stdlib.h>
#include <string.h>

void *pt_alloc(size_t n)
{
	return calloc(1, n == 0 ? 1 : n);
}

void pt_free(void *p)
{
	free(p);
}

#endif

void pt_memcpy(void *dst, const void *src, size_t n)
{
	unsigned char *d = dst;
	const unsigned char *s = src;
	while (n--)
		*d++ = *s++;
}

void pt_memzero(void *dst, size_t n)
{
	unsigned char *d = dst;
	while (n--)
		*d++ = 0;
}

void *pt_realloc(void *p, size_t n_old, size_t n)
{
	void *q = pt_alloc(n);
	if (q == NULL)
		return NULL;
	if (p != NULL)
		pt_memcpy(q, p, n_old < n ? n_old : n);
	pt_free(p);
	return q;
}

int pt_reserve(void **arr, uint32_t *cap, uint32_t need, size_t elem)
{
	if (need <= *cap)
		return 0;
	uint32_t next = *cap < 16 ? 16 : *cap * 2;
	while (next < need)
		next *= 2;
	void *grown = pt_realloc(*arr, (size_t)*cap * elem, (size_t)next * elem);
	if (grown == NULL)
		return -1;
	*arr = grown;
	*cap = next;
	return 0;
}
