/*
 * lib/cli.c - shared command-line helpers (see cli.h).
 */
#include "config.h"
#include "lib/cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

void
cli_print_version(const char *prog)
{
	printf("%s (llmd) %s\n", prog, PACKAGE_VERSION);
}

void
cli_usage_error(const char *prog, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '%s --help' for more information.\n", prog);
	exit(EXIT_USAGE);
}
