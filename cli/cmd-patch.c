/*
 * cli/cmd-patch.c - "patch KIND NAME | KIND/NAME -p PATCH [--type merge]"
 * (a JSON merge patch) and "scale KIND/NAME --replicas N".
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/admin.h"
#include "lib/cli.h"
#include "lib/util.h"

static int
cmd_patch_exec(struct admin *a, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "patch", required_argument, NULL, 'p' },
		{ "type", required_argument, NULL, 't' },
		{ "namespace", required_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 },
	};
	const char *patch = NULL, *ns = NULL;
	const struct api_resource *r;
	char name[256];
	int c, i, rc;

	optind = 0;
	while ((c = getopt_long(argc, argv, "p:n:", longopts, NULL)) != -1) {
		switch (c) {
		case 'p': patch = optarg; break;
		case 'n': ns = optarg; break;
		case 't':
			if (strcmp(optarg, "merge") != 0) {
				fprintf(stderr, "error: --type: only \"merge\" is supported\n");
				return EXIT_USAGE;
			}
			break;
		default: return EXIT_USAGE;
		}
	}
	if (patch == NULL) {
		fprintf(stderr, "error: must specify -p to patch\n");
		return EXIT_USAGE;
	}
	i = optind;
	if ((rc = admin_operand(argc, argv, &i, &r, name, sizeof(name))) != 0)
		return rc;
	return admin_patch(a, r, admin_ns(a, ns), name, patch, "patched");
}

static int
cmd_scale_exec(struct admin *a, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "replicas", required_argument, NULL, 'r' },
		{ "namespace", required_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 },
	};
	const char *ns = NULL;
	const struct api_resource *r;
	char name[256], patch[96];
	long replicas = -1;
	int c, i, rc;

	optind = 0;
	while ((c = getopt_long(argc, argv, "n:", longopts, NULL)) != -1) {
		switch (c) {
		case 'n': ns = optarg; break;
		case 'r':
			if (parse_long(optarg, 0, 1000000, &replicas) < 0) {
				fprintf(stderr, "error: --replicas must be a non-negative integer\n");
				return EXIT_USAGE;
			}
			break;
		default: return EXIT_USAGE;
		}
	}
	if (replicas < 0) {
		fprintf(stderr, "error: --replicas is required\n");
		return EXIT_USAGE;
	}
	i = optind;
	if ((rc = admin_operand(argc, argv, &i, &r, name, sizeof(name))) != 0)
		return rc;
	snprintf(patch, sizeof(patch), "{\"spec\":{\"replicas\":%ld}}", replicas);
	return admin_patch(a, r, admin_ns(a, ns), name, patch, "scaled");
}

const struct cmd_entry cmd_patch_entry = {
	.name = "patch",
	.alias = NULL,
	.usage = "KIND NAME | KIND/NAME -p PATCH [--type merge] [-n NS]",
	.exec = cmd_patch_exec,
};

const struct cmd_entry cmd_scale_entry = {
	.name = "scale",
	.alias = NULL,
	.usage = "KIND/NAME --replicas N [-n NS]",
	.exec = cmd_scale_exec,
};
