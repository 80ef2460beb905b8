/*
 * cli/cmd-delete.c - "delete KIND NAME... | KIND/NAME... | -f FILE [-n NS]
 * [--ignore-not-found]".
 */
#include "config.h"

#include <getopt.h>
#include <string.h>

#include "cli/admin.h"
#include "lib/cli.h"
#include "lib/yaml.h"

static int
delete_one(struct admin *a, const struct api_resource *r, const char *ns,
    const char *name, int ignore_nf)
{
	struct buf path = BUF_INIT, ref = BUF_INIT;
	struct admin_resp resp;
	int rc = 0;

	admin_path(&path, r, ns, name);
	admin_kind_ref(&ref, r);
	if (admin_call(a, "DELETE", path.buf, NULL, NULL, 0, &resp) < 0) {
		rc = 1;
	} else {
		if (resp.code == 200)
			printf("%s \"%s\" deleted\n", ref.buf, name);
		else if (!(resp.code == 404 && ignore_nf))
			rc = admin_server_error(&resp);
		admin_resp_release(&resp);
	}
	buf_release(&path);
	buf_release(&ref);
	return rc;
}

static int
cmd_delete_exec(struct admin *a, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "namespace", required_argument, NULL, 'n' },
		{ "filename", required_argument, NULL, 'f' },
		{ "ignore-not-found", no_argument, NULL, 'i' },
		{ NULL, 0, NULL, 0 },
	};
	const char *ns = NULL, *file = NULL;
	const struct api_resource *r = NULL;
	int c, rc = 0, ignore = 0, i;

	optind = 0;
	while ((c = getopt_long(argc, argv, "n:f:", longopts, NULL)) != -1) {
		switch (c) {
		case 'n': ns = optarg; break;
		case 'f': file = optarg; break;
		case 'i': ignore = 1; break;
		default: return EXIT_USAGE;
		}
	}
	if (file) {
		struct llmd_err e = LLMD_ERR_INIT;
		cJSON **docs = NULL;
		size_t n = 0, k;

		if (yaml_parse_file(file, &docs, &n, &e) < 0) {
			fprintf(stderr, "error: %s: %s\n", e.field, e.msg);
			return 1;
		}
		for (k = 0; k < n; k++) {
			const cJSON *md = cJSON_GetObjectItemCaseSensitive(docs[k], "metadata");
			const char *kind = cJSON_GetStringValue(
			    cJSON_GetObjectItemCaseSensitive(docs[k], "kind"));
			const char *name = cJSON_GetStringValue(
			    cJSON_GetObjectItemCaseSensitive(md, "name"));
			const char *dns = cJSON_GetStringValue(
			    cJSON_GetObjectItemCaseSensitive(md, "namespace"));

			if (!kind || !name || (r = admin_resource(kind)) == NULL) {
				rc = 1;
				continue;
			}
			rc |= delete_one(a, r, dns ? dns : admin_ns(a, ns), name, ignore);
		}
		yaml_docs_free(docs, n);
		return rc;
	}
	if (optind >= argc) {
		fprintf(stderr, "error: you must provide one or more resources\n");
		return EXIT_USAGE;
	}
	for (i = optind; i < argc; i++) {
		char kind[128], name[256];

		if (admin_split_ref(argv[i], kind, sizeof(kind), name, sizeof(name)) == 0) {
			const struct api_resource *kr = admin_resource(kind);

			rc |= kr ? delete_one(a, kr, admin_ns(a, ns), name, ignore) : 1;
		} else if (r == NULL) {
			if ((r = admin_resource(argv[i])) == NULL)
				return 1;
			if (i + 1 == argc) {
				fprintf(stderr, "error: resource(s) were provided, but no "
				    "name was specified\n");
				return EXIT_USAGE;
			}
		} else {
			rc |= delete_one(a, r, admin_ns(a, ns), argv[i], ignore);
		}
	}
	return rc ? 1 : 0;
}

const struct cmd_entry cmd_delete_entry = {
	.name = "delete",
	.alias = "rm",
	.usage = "KIND NAME... | KIND/NAME... | -f FILE [-n NS] [--ignore-not-found]",
	.exec = cmd_delete_exec,
};
