/*
 * mem.h: the few memory helpers the reference library needs, so one source builds both
 * freestanding for wasm32 (no libc: a size-class free-list allocator over __heap_base,
 * growing linear memory) and natively (libc's allocator).
 */
#ifndef PTREF_MEM_H
#define PTREF_MEM_H

#include <stddef.h>
#include <stdint.h>

/* Zeroed memory of n bytes, or NULL. */
void *pt_alloc(size_t n);
void pt_free(void *p);
/* p (n_old bytes, may be NULL) grown to n bytes, its contents kept and the rest zeroed. */
void *pt_realloc(void *p, size_t n_old, size_t n);

void pt_memcpy(void *dst, const void *src, size_t n);
void pt_memzero(void *dst, size_t n);

/* Grow an array so it holds at least `need` elements of `elem` bytes: 0, or -1 without memory. */
int pt_reserve(void **arr, uint32_t *cap, uint32_t need, size_t elem);

#endif
