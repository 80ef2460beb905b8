/*
 * cli/cmd-create.c - "create secret generic NAME --from-literal=K=V...
 * [--from-file=K=PATH...] [-n NS]" and "create -f FILE" (POST only).
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/admin.h"
#include "lib/cli.h"
#include "lib/json.h"
#include "lib/util.h"

static int
add_from_file(cJSON *sd, const char *spec)
{
	const char *eq = strchr(spec, '=');
	const char *path = eq ? eq + 1 : spec;
	const char *key = eq ? NULL : strrchr(spec, '/');
	char k[256];
	struct buf b = BUF_INIT;
	char chunk[4096];
	size_t n;
	FILE *f = fopen(path, "rb");

	if (f == NULL) {
		fprintf(stderr, "error: %s: cannot open\n", path);
		return 1;
	}
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_add(&b, chunk, n);
	fclose(f);
	if (eq)
		snprintf(k, sizeof(k), "%.*s", (int)(eq - spec), spec);
	else
		snprintf(k, sizeof(k), "%s", key ? key + 1 : spec);
	if (!json_utf8_valid(b.buf, b.len)) {
		fprintf(stderr, "error: %s: only UTF-8 text files are supported\n", path);
		buf_release(&b);
		return 1;
	}
	cJSON_AddStringToObject(sd, k, b.buf);
	buf_release(&b);
	return 0;
}

static int
cmd_create_exec(struct admin *a, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "from-literal", required_argument, NULL, 'L' },
		{ "from-file", required_argument, NULL, 'F' },
		{ "namespace", required_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 },
	};
	const char *ns = NULL;
	const struct api_resource *r = api_resource_by_name("secrets");
	cJSON *obj = cJSON_CreateObject(), *md, *sd;
	struct buf path = BUF_INIT, body = BUF_INIT;
	struct admin_resp resp;
	int c, rc = 0;

	md = cJSON_AddObjectToObject(obj, "metadata");
	sd = cJSON_AddObjectToObject(obj, "stringData");
	optind = 0;
	while ((c = getopt_long(argc, argv, "n:", longopts, NULL)) != -1) {
		switch (c) {
		case 'n': ns = optarg; break;
		case 'L': {
			const char *eq = strchr(optarg, '=');
			char k[256];

			if (eq == NULL || eq == optarg) {
				fprintf(stderr, "error: --from-literal expects KEY=VALUE\n");
				cJSON_Delete(obj);
				return EXIT_USAGE;
			}
			snprintf(k, sizeof(k), "%.*s", (int)(eq - optarg), optarg);
			cJSON_AddStringToObject(sd, k, eq + 1);
			break;
		}
		case 'F':
			if (add_from_file(sd, optarg) != 0) {
				cJSON_Delete(obj);
				return 1;
			}
			break;
		default:
			cJSON_Delete(obj);
			return EXIT_USAGE;
		}
	}
	if (argc - optind != 3 || strcmp(argv[optind], "secret") != 0 ||
	    strcmp(argv[optind + 1], "generic") != 0) {
		fprintf(stderr, "usage: llmd-admin create secret generic NAME "
		    "--from-literal=KEY=VALUE... [-n NS]\n");
		cJSON_Delete(obj);
		return EXIT_USAGE;
	}
	cJSON_AddStringToObject(md, "name", argv[optind + 2]);
	cJSON_AddStringToObject(obj, "type", "Opaque");
	admin_path(&path, r, admin_ns(a, ns), NULL);
	json_print_compact(obj, &body);
	if (admin_call(a, "POST", path.buf, "application/json", body.buf, body.len, &resp) < 0) {
		rc = 1;
	} else {
		if (resp.code == 201)
			printf("secret/%s created\n", argv[optind + 2]);
		else
			rc = admin_server_error(&resp);
		admin_resp_release(&resp);
	}
	buf_release(&path);
	buf_release(&body);
	cJSON_Delete(obj);
	return rc;
}

const struct cmd_entry cmd_create_entry = {
	.name = "create",
	.alias = NULL,
	.usage = "secret generic NAME --from-literal=KEY=VALUE... [--from-file=[KEY=]PATH] [-n NS]",
	.exec = cmd_create_exec,
};
