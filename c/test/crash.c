/*
 * crash.c: stub.c whose map says why on stderr and aborts (SIGABRT), for the process
 * adapter's crash report (test/process-impl.test.ts): the report must name the signal and
 * the last lines of stderr.
 */
#include <stdio.h>

#define STUB_MAP_HOOK() (fprintf(stderr, "crash.c: map of vpn %#llx: giving up\n", (unsigned long long)vpn), abort())
#include "stub.c"
