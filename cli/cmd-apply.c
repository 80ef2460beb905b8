/*
 * cli/cmd-apply.c - "apply -f FILE|DIR|- [-n NS]": every document of every
 * YAML/JSON manifest is created, or replaced (keeping status) when it
 * exists; prints "KIND.GROUP/NAME created|configured|unchanged". Manifest
 * errors are reported as FILE:LINE:COL.
 */
#include "config.h"

#include <dirent.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/admin.h"
#include "lib/cli.h"
#include "lib/json.h"
#include "lib/util.h"
#include "lib/yaml.h"

static const char *
md_str(const cJSON *o, const char *k)
{
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(o, "metadata"), k));
}

static int
apply_one(struct admin *a, const char *file, const cJSON *doc, const char *flag_ns)
{
	const char *kind = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(doc, "kind"));
	const char *name = md_str(doc, "name"), *ns = md_str(doc, "namespace");
	const struct api_resource *r;
	struct buf path = BUF_INIT, ref = BUF_INIT, body = BUF_INIT;
	struct admin_resp resp;
	cJSON *obj = NULL, *got;
	const char *verb;
	char *old_rv = NULL;
	int rc = 1, attempt = 0;

	if (!cJSON_IsObject(doc) || kind == NULL || name == NULL) {
		fprintf(stderr, "error: error validating \"%s\": a manifest needs kind and "
		    "metadata.name\n", file);
		return 1;
	}
	if ((r = api_resource_by_name(kind)) == NULL) {
		fprintf(stderr, "error: resource mapping not found for kind \"%s\" in "
		    "\"%s\"\n", kind, file);
		return 1;
	}
	if (ns == NULL)
		ns = admin_ns(a, flag_ns);
	admin_kind_ref(&ref, r);
retry:
	buf_reset(&path);
	buf_reset(&body);
	admin_path(&path, r, ns, name);
	free(old_rv);
	old_rv = NULL;
	cJSON_Delete(obj);
	if (admin_call(a, "GET", path.buf, NULL, NULL, 0, &resp) < 0)
		goto out;
	obj = cJSON_Duplicate(doc, 1);
	if (resp.code == 404) {
		admin_resp_release(&resp);
		buf_reset(&path);
		admin_path(&path, r, ns, NULL);
		json_print_compact(obj, &body);
		if (admin_call(a, "POST", path.buf, "application/json", body.buf, body.len,
		    &resp) < 0)
			goto out;
		verb = "created";
	} else if (resp.code == 200) {
		cJSON *cur = admin_resp_json(&resp), *md;

		old_rv = xstrdup(md_str(cur, "resourceVersion") ? md_str(cur, "resourceVersion") : "");
		cJSON_Delete(cur);
		admin_resp_release(&resp);
		md = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
		cJSON_DeleteItemFromObjectCaseSensitive(md, "resourceVersion");
		cJSON_AddStringToObject(md, "resourceVersion", old_rv);
		cJSON_DeleteItemFromObjectCaseSensitive(obj, "status");
		json_print_compact(obj, &body);
		if (admin_call(a, "PUT", path.buf, "application/json", body.buf, body.len,
		    &resp) < 0)
			goto out;
		verb = "configured";
	} else {
		rc = admin_server_error(&resp);
		admin_resp_release(&resp);
		goto out;
	}
	/* Someone (the reconciler's status write) got in between: again. */
	if (resp.code == 409 && old_rv && ++attempt < 8) {
		admin_resp_release(&resp);
		goto retry;
	}
	if (resp.code != 200 && resp.code != 201) {
		fprintf(stderr, "error when applying \"%s\": ", file);
		rc = admin_server_error(&resp);
		admin_resp_release(&resp);
		goto out;
	}
	got = admin_resp_json(&resp);
	if (old_rv && md_str(got, "resourceVersion") &&
	    strcmp(old_rv, md_str(got, "resourceVersion")) == 0)
		verb = "unchanged";
	printf("%s/%s %s\n", ref.buf, name, verb);
	cJSON_Delete(got);
	admin_resp_release(&resp);
	rc = 0;
out:
	free(old_rv);
	cJSON_Delete(obj);
	buf_release(&path);
	buf_release(&ref);
	buf_release(&body);
	return rc;
}

static int
apply_file(struct admin *a, const char *file, const char *flag_ns)
{
	struct llmd_err e = LLMD_ERR_INIT;
	cJSON **docs = NULL;
	size_t n = 0, i;
	int rc = 0;

	if (yaml_parse_file(file, &docs, &n, &e) < 0) {
		fprintf(stderr, "error: %s%s%s\n", e.field, e.field[0] ? ": " : "", e.msg);
		return 1;
	}
	for (i = 0; i < n; i++) {
		const char *kind = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
		    docs[i], "kind"));

		if (kind && strcmp(kind, "List") == 0) {
			const cJSON *it;

			cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(docs[i], "items"))
				rc |= apply_one(a, file, it, flag_ns);
		} else {
			rc |= apply_one(a, file, docs[i], flag_ns);
		}
	}
	yaml_docs_free(docs, n);
	return rc;
}

static int
cmp_str(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

static int
is_manifest(const char *name)
{
	size_t n = strlen(name);

	return (n > 5 && strcmp(name + n - 5, ".yaml") == 0) ||
	    (n > 4 && strcmp(name + n - 4, ".yml") == 0) ||
	    (n > 5 && strcmp(name + n - 5, ".json") == 0);
}

static int
apply_path(struct admin *a, const char *path, const char *flag_ns)
{
	struct stat st;
	DIR *d;
	struct dirent *de;
	char **names = NULL;
	size_t n = 0, i;
	int rc = 0;

	if (strcmp(path, "-") == 0 || stat(path, &st) < 0 || !S_ISDIR(st.st_mode))
		return apply_file(a, path, flag_ns);
	if ((d = opendir(path)) == NULL) {
		fprintf(stderr, "error: %s: cannot read directory\n", path);
		return 1;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || !is_manifest(de->d_name))
			continue;
		names = xreallocarray(names, n + 1, sizeof(char *));
		names[n] = xmalloc(strlen(path) + strlen(de->d_name) + 2);
		sprintf(names[n], "%s/%s", path, de->d_name);
		n++;
	}
	closedir(d);
	qsort(names, n, sizeof(char *), cmp_str);
	for (i = 0; i < n; i++) {
		rc |= apply_file(a, names[i], flag_ns);
		free(names[i]);
	}
	free(names);
	return rc;
}

static int
cmd_apply_exec(struct admin *a, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "filename", required_argument, NULL, 'f' },
		{ "namespace", required_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 },
	};
	const char *files[64], *ns = NULL;
	int nf = 0, c, i, rc = 0;

	optind = 0;
	while ((c = getopt_long(argc, argv, "f:n:", longopts, NULL)) != -1) {
		switch (c) {
		case 'f':
			if (nf < (int)ARRAY_SIZE(files))
				files[nf++] = optarg;
			break;
		case 'n': ns = optarg; break;
		default: return EXIT_USAGE;
		}
	}
	if (nf == 0 || optind != argc) {
		fprintf(stderr, "error: must specify one of -f and -k\n");
		return EXIT_USAGE;
	}
	for (i = 0; i < nf; i++)
		rc |= apply_path(a, files[i], ns);
	return rc ? 1 : 0;
}

const struct cmd_entry cmd_apply_entry = {
	.name = "apply",
	.alias = NULL,
	.usage = "-f FILE|DIR|- [-n NS]",
	.exec = cmd_apply_exec,
};
