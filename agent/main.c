/*
 * agent/main.c - llmd-agent entry point: the per-GPU-host agent: registers the node and runs its engine processes.
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "lib/cli.h"
#include "lib/log.h"

static void
usage(FILE *f)
{
	fprintf(f, "usage: llmd-agent [OPTIONS]\n\nthe per-GPU-host agent: registers the node and runs its engine processes.\n\n"
	    "Options:\n"
	    "  -h, --help       show this help and exit\n"
	    "  -V, --version    show the version and exit\n"
	    "Environment: LLMD_LOG_LEVEL=error|warn|info|debug\n");
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	log_init("llmd-agent", LOG_LVL_INFO);
	while ((c = getopt_long(argc, argv, "hV", opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			cli_print_version("llmd-agent");
			return 0;
		default:
			fprintf(stderr, "Try 'llmd-agent --help' for more information.\n");
			return EXIT_USAGE;
		}
	}
	fprintf(stderr, "llmd-agent: not available in this build yet\n");
	return EXIT_USAGE;
}
