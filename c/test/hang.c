/*
 * hang.c: stub.c whose map never returns, for the process adapter's per-command timeout
 * (test/process-impl.test.ts): everything else answers, so the hang is map's alone.
 */
#include <unistd.h>

#define STUB_MAP_HOOK() for (;;) pause()
#include "stub.c"
