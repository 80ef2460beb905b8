/*
 * cli/cmd-config.c - "config view": the config file llmd-admin read (its
 * path as a comment, then its settings as YAML) with the token REDACTED
 * and inline CA data omitted.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "cli/admin-config.h"
#include "cli/admin.h"
#include "lib/cli.h"

static int
cmd_config_exec(struct admin *a, int argc, char **argv)
{
	struct buf out = BUF_INIT;
	struct llmd_err e = LLMD_ERR_INIT;
	char ebuf[1024];

	if (argc != 2 || strcmp(argv[1], "view") != 0) {
		fprintf(stderr, "error: USAGE: config view\n");
		return EXIT_USAGE;
	}
	if (a->config == NULL || a->config->path == NULL) {
		printf("# no config file\n");
		return 0;
	}
	if (admin_config_view(a->config, &out, &e) < 0) {
		fprintf(stderr, "error: %s\n", err_str(&e, ebuf, sizeof(ebuf)));
		buf_release(&out);
		return 1;
	}
	printf("# %s\n%s", a->config->path, out.buf ? out.buf : "");
	buf_release(&out);
	return 0;
}

const struct cmd_entry cmd_config_entry = {
	.name = "config", .alias = NULL, .usage = "view",
	.exec = cmd_config_exec,
};
