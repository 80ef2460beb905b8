/*
 * engine/cmd-stubs.c - subcommands not built yet. Each answers with a clear
 * message and exit status 2; its real file replaces the stub.
 */
#include "config.h"

#include <stdio.h>

#include "engine/commands.h"

#define STUB(fn, name)                                                        \
	int fn(int argc, char **argv)                                          \
	{                                                                      \
		(void)argc;                                                    \
		(void)argv;                                                    \
		fprintf(stderr, "llmd-engine %s: not available in this build yet\n", name); \
		return 2;                                                      \
	}

