/*
 * lib/cli.h - what every program's command line shares: --version output,
 * usage errors (exit status 2) and credential output on the last stdout line.
 */
#ifndef LLMD_CLI_H
#define LLMD_CLI_H

#include "lib/log.h"

#define EXIT_USAGE 2

/* "PROG (llmd) VERSION" on stdout. */
void cli_print_version(const char *prog);
/* "PROG: message\nTry 'PROG --help'." on stderr, then exit(2). */
_Noreturn void cli_usage_error(const char *prog, const char *fmt, ...) LLMD_PRINTF(2, 3);

#endif
