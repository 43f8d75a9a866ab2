/*
 * ptspec-main.c: the protocol server of c/PROTOCOL.md, which makes any implementation of
 * c/ptspec.h a program that `ptspec fuzz --impl-cmd "./prog"` can drive:
 *
 *     cc -O2 c/ptspec-main.c my-page-tables.c -o prog
 *
 * It reads requests from stdin, calls the ptspec_* functions, writes one response per
 * request to stdout (flushed each time) and exits when stdin ends. The implementation
 * keeps stdout's fd for its own prints: the protocol moves to a duplicate of it and fd 1
 * becomes stderr, so a stray printf cannot corrupt a response. Operations the
 * implementation does not define are weak references answered with -ENOSYS, so it links
 * with only what it supports.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef __linux__
#include <signal.h>
#include <sys/prctl.h>
#endif
#include "ptspec.h"

#define PROTOCOL_MAGIC   0x50535450u /* "PTSP" */
#define PROTOCOL_VERSION 1u
#define MAX_REQUEST      (64u << 20)

enum { OP_HELLO = 0x100, OP_CREATE, OP_FORK, OP_ABSTRACT, OP_LAST_REFUSED, OP_DESTROY };

#pragma weak ptspec_destroy
#pragma weak ptspec_fork
#pragma weak ptspec_unmap
#pragma weak ptspec_protect
#pragma weak ptspec_set_direct_map_invalid
#pragma weak ptspec_set_direct_map_default
#pragma weak ptspec_split
#pragma weak ptspec_collapse
#pragma weak ptspec_access
#pragma weak ptspec_flush
#pragma weak ptspec_flush_all
#pragma weak ptspec_flush_local
#pragma weak ptspec_alloc_frames
#pragma weak ptspec_free_frames
#pragma weak ptspec_last_refused

/* A request's arguments, read front to back; `bad` once one is missing. */
struct args {
	const uint8_t *p, *end;
	int bad;
};

static uint64_t take(struct args *a, int bytes)
{
	uint64_t v = 0;
	if (a->end - a->p < bytes) {
		a->bad = 1;
		return 0;
	}
	for (int i = 0; i < bytes; i++)
		v |= (uint64_t)a->p[i] << 8 * i;
	a->p += bytes;
	return v;
}
static uint32_t u32(struct args *a) { return (uint32_t)take(a, 4); }
static uint64_t u64(struct args *a) { return take(a, 8); }

/* The response being built: 8 header bytes (length, result) and the payload. */
static uint8_t *out;
static size_t out_len, out_cap;

static uint8_t *reserve(size_t bytes)
{
	if (out_len + bytes > out_cap) {
		out_cap = 2 * (out_len + bytes);
		out = realloc(out, out_cap);
		if (!out) {
			perror("ptspec-main: response buffer");
			exit(1);
		}
	}
	out_len += bytes;
	return out + out_len - bytes;
}

static void put(uint64_t v, int bytes)
{
	uint8_t *p = reserve(bytes);
	for (int i = 0; i < bytes; i++)
		p[i] = (uint8_t)(v >> 8 * i);
}

static void put_translation(const struct ptspec_translation *t)
{
	put(t->leaf_vpn, 8), put(t->leaf_pfn, 8), put(t->leaf_size, 4), put(t->leaf_prot, 4), put(t->pfn, 8);
}

static ptspec_system *sys;

/* hello: the versions and the operations, whatever ptspec speaks; -EPROTONOSUPPORT when not this protocol. */
static int32_t hello(struct args *a)
{
	uint32_t theirs = u32(a);
	put(PROTOCOL_MAGIC, 4), put(PROTOCOL_VERSION, 4), put(ptspec_abi_version(), 4), put(0, 4);
	put(ptspec_supported_ops(), 8);
	return theirs == PROTOCOL_VERSION ? 0 : -EPROTONOSUPPORT;
}

/*
 * create: struct ptspec_setup as the wasm32 ABI lays it out (56 bytes), its frame_runs
 * pointer the offset of the runs in the request (56: right after it), then the runs.
 */
static int32_t create(struct args *a)
{
	struct ptspec_setup s;
	struct ptspec_frame_run *runs;
	uint32_t runs_at;
	if (sys)
		return -EEXIST;
	s.levels = u32(a), s.cpus = u32(a), s.max_phys_bits = u32(a), s.features = u32(a);
	s.frames = u64(a), s.table_pool_pfn = u64(a), s.table_pool_count = u64(a);
	s.profile = u32(a), s.nr_frame_runs = u32(a);
	runs_at = u32(a), u32(a);
	if (a->bad || runs_at != 56 || (size_t)(a->end - a->p) != 24ull * s.nr_frame_runs)
		return -EBADMSG;
	runs = calloc(s.nr_frame_runs + 1, sizeof(*runs));
	if (!runs)
		return -ENOMEM;
	for (uint32_t i = 0; i < s.nr_frame_runs; i++)
		runs[i].pfn = u64(a), runs[i].count = u64(a), runs[i].use = u32(a), runs[i].flags = u32(a);
	s.frame_runs = runs;
	sys = ptspec_create(&s);
	free(runs);
	return sys ? 0 : -ENOMEM;
}

/* abstract: the buffer ptspec_abstract fills, grown until it fits. */
static int32_t abstract(void)
{
	size_t start = out_len;
	uint64_t need = ptspec_abstract(sys, reserve(0), 0);
	for (;;) {
		if (need > MAX_REQUEST * 16ull)
			return -E2BIG;
		out_len = start;
		uint64_t got = ptspec_abstract(sys, reserve(need), need);
		if (got <= need) {
			out_len = start + got;
			return 0;
		}
		need = got;
	}
}

#define NEED(fn) do { if (!(fn)) return -ENOSYS; } while (0)

/* One operation of enum ptspec_op, its arguments in the order of its C parameters. */
static int32_t operation(uint32_t op, struct args *a)
{
	struct ptspec_translation t;
	struct ptspec_access_result r;
	uint32_t w0, w1, w2, w3;
	uint64_t d0, d1, d2;
	int32_t ret;

	switch (op) {
	case PTSPEC_OP_MAP:
		w0 = u32(a), d0 = u64(a), d1 = u64(a), d2 = u64(a), w1 = u32(a), w2 = u32(a);
		return a->bad ? -EBADMSG : ptspec_map(sys, w0, d0, d1, d2, w1, w2);
	case PTSPEC_OP_UNMAP:
		NEED(ptspec_unmap);
		w0 = u32(a), d0 = u64(a), d1 = u64(a), w1 = u32(a);
		return a->bad ? -EBADMSG : ptspec_unmap(sys, w0, d0, d1, w1);
	case PTSPEC_OP_PROTECT:
		NEED(ptspec_protect);
		d0 = u64(a), d1 = u64(a), w0 = u32(a), w1 = u32(a);
		return a->bad ? -EBADMSG : ptspec_protect(sys, d0, d1, w0, w1);
	case PTSPEC_OP_SET_DIRECT_MAP_INVALID:
		NEED(ptspec_set_direct_map_invalid);
		d0 = u64(a), d1 = u64(a), w0 = u32(a);
		return a->bad ? -EBADMSG : ptspec_set_direct_map_invalid(sys, d0, d1, w0);
	case PTSPEC_OP_SET_DIRECT_MAP_DEFAULT:
		NEED(ptspec_set_direct_map_default);
		d0 = u64(a), d1 = u64(a), w0 = u32(a);
		return a->bad ? -EBADMSG : ptspec_set_direct_map_default(sys, d0, d1, w0);
	case PTSPEC_OP_SPLIT:
		NEED(ptspec_split);
		w0 = u32(a), d0 = u64(a);
		return a->bad ? -EBADMSG : ptspec_split(sys, w0, d0);
	case PTSPEC_OP_COLLAPSE:
		NEED(ptspec_collapse);
		w0 = u32(a), d0 = u64(a), w1 = u32(a);
		return a->bad ? -EBADMSG : ptspec_collapse(sys, w0, d0, w1);
	case PTSPEC_OP_TRANSLATE:
		w0 = u32(a), d0 = u64(a);
		if (a->bad)
			return -EBADMSG;
		ret = ptspec_translate(sys, w0, d0, &t);
		if (ret == 0)
			put_translation(&t);
		return ret;
	case PTSPEC_OP_ACCESS:
		NEED(ptspec_access);
		w0 = u32(a), w1 = u32(a), d0 = u64(a), w2 = u32(a), w3 = u32(a);
		if (a->bad)
			return -EBADMSG;
		memset(&r, 0, sizeof(r));
		ret = ptspec_access(sys, w0, w1, d0, w2, w3, &r);
		if (ret == 0)
			put(r.fault, 4), put(r.from_tlb, 4), put_translation(&r.translation);
		return ret;
	case PTSPEC_OP_FLUSH:
		NEED(ptspec_flush);
		d0 = u64(a), d1 = u64(a);
		return a->bad ? -EBADMSG : ptspec_flush(sys, d0, d1);
	case PTSPEC_OP_FLUSH_ALL:
		NEED(ptspec_flush_all);
		return ptspec_flush_all(sys);
	case PTSPEC_OP_FLUSH_LOCAL:
		NEED(ptspec_flush_local);
		w0 = u32(a), d0 = u64(a), d1 = u64(a);
		return a->bad ? -EBADMSG : ptspec_flush_local(sys, w0, d0, d1);
	case PTSPEC_OP_ALLOC_FRAMES:
		NEED(ptspec_alloc_frames);
		d0 = u64(a), d1 = u64(a);
		return a->bad ? -EBADMSG : ptspec_alloc_frames(sys, d0, d1);
	case PTSPEC_OP_FREE_FRAMES:
		NEED(ptspec_free_frames);
		d0 = u64(a), d1 = u64(a);
		return a->bad ? -EBADMSG : ptspec_free_frames(sys, d0, d1);
	}
	return -ENOSYS;
}

/* The request's result; its payload is appended to the response. */
static int32_t serve(uint32_t op, struct args *a)
{
	if (op == OP_HELLO)
		return hello(a);
	if (op == OP_CREATE)
		return create(a);
	if (op > OP_DESTROY || (op > PTSPEC_OP_FREE_FRAMES && op < OP_HELLO))
		return -ENOSYS;
	if (!sys)
		return -ENODEV;
	/* Past here a request has no arguments but an operation's: a call takes exactly its own. */
	switch (op) {
	case OP_FORK:
		return -EOPNOTSUPP; /* one system per process in protocol version 1 */
	case OP_ABSTRACT:
		return a->p == a->end ? abstract() : -EBADMSG;
	case OP_LAST_REFUSED:
		NEED(ptspec_last_refused);
		return a->p == a->end ? (int32_t)ptspec_last_refused(sys) : -EBADMSG;
	case OP_DESTROY:
		if (ptspec_destroy)
			ptspec_destroy(sys);
		sys = NULL;
		return 0;
	}
	int32_t ret = operation(op, a);
	/* Unread arguments are a malformed request, unless the operation was refused before reading them. */
	return ret != -EBADMSG && ret != -ENOSYS && a->p != a->end ? -EBADMSG : ret;
}

/* Reads exactly `len` bytes; 0 at a clean end of input before the first byte, -1 mid-way. */
static int read_all(void *buf, size_t len)
{
	size_t got = fread(buf, 1, len, stdin);
	return got == len ? 1 : got == 0 && feof(stdin) ? 0 : -1;
}

int main(void)
{
	uint8_t head[4];
	uint8_t *req = NULL;
	size_t cap = 0;
	FILE *proto;
	int fd = dup(STDOUT_FILENO);

	if (fd < 0 || dup2(STDERR_FILENO, STDOUT_FILENO) < 0 || !(proto = fdopen(fd, "wb"))) {
		perror("ptspec-main: stdout");
		return 1;
	}
#ifdef __linux__
	/* Never outlive the thread that spawned us, even when it dies mid-command. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() == 1)
		return 1;
#endif
	for (;;) {
		int got = read_all(head, 4);
		uint32_t len = head[0] | head[1] << 8 | head[2] << 16 | (uint32_t)head[3] << 24;
		if (got == 0)
			break;
		if (got < 0 || len < 4 || len > MAX_REQUEST) {
			fprintf(stderr, "ptspec-main: bad request frame (length %u)\n", got < 0 ? 0 : len);
			return 1;
		}
		if (len > cap && !(req = realloc(req, cap = len))) {
			perror("ptspec-main: request buffer");
			return 1;
		}
		if (read_all(req, len) != 1) {
			fprintf(stderr, "ptspec-main: input ended inside a request of %u bytes\n", len);
			return 1;
		}
		struct args a = { req + 4, req + len, 0 };
		uint32_t op = req[0] | req[1] << 8 | req[2] << 16 | (uint32_t)req[3] << 24;
		out_len = 0;
		reserve(8);
		int32_t ret = serve(op, &a);
		uint32_t n = (uint32_t)(out_len - 4);
		for (int i = 0; i < 4; i++)
			out[i] = (uint8_t)(n >> 8 * i), out[4 + i] = (uint8_t)((uint32_t)ret >> 8 * i);
		if (fwrite(out, 1, out_len, proto) != out_len || fflush(proto) != 0)
			return 1;
	}
	if (sys && ptspec_destroy)
		ptspec_destroy(sys);
	return 0;
}
