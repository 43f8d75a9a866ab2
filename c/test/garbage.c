/*
 * garbage.c: a program that does not speak c/PROTOCOL.md (the wrong --impl-cmd): it waits
 * for ptspec's hello and answers with text, for the process adapter's protocol error,
 * which must name the offset in the program's output where the protocol broke.
 */
#include <stdio.h>

int main(void)
{
	char hello[12];
	if (fread(hello, 1, sizeof(hello), stdin) != sizeof(hello))
		return 1;
	fputs("usage: garbage [OPTIONS]\n", stdout);
	fflush(stdout);
	return getchar() == EOF ? 0 : 1;
}
