/*
 * tests/unit/daemon-fixtures.c - fixtures for the daemon logic tests.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "lib/util.h"
#include "lib/yaml.h"
#include "tests/unit/daemon-fixtures.h"

cJSON *
fx_yaml(const char *text)
{
	struct llmd_err e = LLMD_ERR_INIT;
	cJSON *o = NULL;
	char buf[800];

	if (yaml_parse_one(text, strlen(text), "fixture", &o, &e) < 0)
		cr_assert_fail("fixture: %s", err_str(&e, buf, sizeof(buf)));
	return o;
}

const char *
fx_src(const char *rel)
{
	static char path[4096];
	const char *top = getenv("top_srcdir");
	char dir[2048] = "";

	if (!top) {
		FILE *f = fopen("srcdir.txt", "r");

		if (f && fgets(dir, sizeof(dir), f))
			dir[strcspn(dir, "\n")] = '\0';
		if (f)
			fclose(f);
		top = dir[0] ? dir : "..";
	}
	snprintf(path, sizeof(path), "%s/%s", top, rel);
	return path;
}

static cJSON **store;
static size_t nstore;
static struct reconcile_env env;

void
fx_env_add(cJSON *config)
{
	store = xreallocarray(store, nstore + 1, sizeof(*store));
	store[nstore++] = config;
}

static const cJSON *
get_config(void *ctx, const char *ns, const char *name)
{
	for (size_t i = 0; i < nstore; i++) {
		const cJSON *md = cJSON_GetObjectItem(store[i], "metadata");
		const cJSON *n = cJSON_GetObjectItem(md, "name"), *s = cJSON_GetObjectItem(md, "namespace");

		if (cJSON_IsString(n) && strcmp(n->valuestring, name) == 0 &&
		    strcmp(cJSON_IsString(s) ? s->valuestring : "default", ns) == 0)
			return store[i];
	}
	return NULL;
}

static void
load_dir(const char *rel, int configs_only)
{
	DIR *d = opendir(fx_src(rel));
	struct dirent *de;
	char path[4200];

	cr_assert_not_null(d, "cannot open %s", fx_src(rel));
	while ((de = readdir(d))) {
		cJSON **docs = NULL;
		size_t n = 0;
		struct llmd_err e = LLMD_ERR_INIT;
		char eb[800];

		if (!strstr(de->d_name, ".yaml"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", fx_src(rel), de->d_name);
		if (yaml_parse_file(path, &docs, &n, &e) < 0)
			cr_assert_fail("%s", err_str(&e, eb, sizeof(eb)));
		for (size_t i = 0; i < n; i++) {
			const cJSON *k = cJSON_GetObjectItem(docs[i], "kind");

			if (!configs_only || (cJSON_IsString(k) &&
			    strcmp(k->valuestring, LLMISVC_CONFIG_KIND) == 0)) {
				fx_env_add(docs[i]);
				docs[i] = NULL;
			}
		}
		yaml_docs_free(docs, n);
	}
	closedir(d);
}

struct reconcile_env *
fx_env(void)
{
	if (!nstore) {
		load_dir("etc/presets", 0);
		load_dir("etc/examples", 1);
	}
	env.get_config = get_config;
	env.gateway_address = "gw.example:8080";
	return &env;
}

void
fx_env_free(void)
{
	for (size_t i = 0; i < nstore; i++)
		cJSON_Delete(store[i]);
	free(store);
	store = NULL;
	nstore = 0;
}

const cJSON *
fx_find(const cJSON *arr, const char *kind, const char *name)
{
	const cJSON *o;

	cJSON_ArrayForEach(o, arr) {
		const char *k = fx_str(o, "kind"), *n = fx_str(o, "metadata.name");

		if (k && n && strcmp(k, kind) == 0 && strcmp(n, name) == 0)
			return o;
	}
	return NULL;
}

int
fx_count(const cJSON *arr, const char *kind)
{
	const cJSON *o;
	int n = 0;

	cJSON_ArrayForEach(o, arr) {
		const char *k = fx_str(o, "kind");

		if (k && strcmp(k, kind) == 0)
			n++;
	}
	return n;
}

const cJSON *
fx_at(const cJSON *o, const char *path)
{
	char *dup = xstrdup(path), *p = dup;

	while (o && *p) {
		char *end = p + strcspn(p, ".[");
		char c = *end;

		*end = '\0';
		if (*p)
			o = cJSON_GetObjectItemCaseSensitive(o, p);
		p = end + (c ? 1 : 0);
		if (c == '[') {
			o = cJSON_GetArrayItem(o, atoi(p));
			p = strchr(p, ']');
			if (!p)
				break;
			p++;
			if (*p == '.')
				p++;
		}
		if (!c)
			break;
	}
	free(dup);
	return o;
}

const char *
fx_str(const cJSON *o, const char *path)
{
	const cJSON *v = fx_at(o, path);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

int
fx_has(const cJSON *o, const char *path, const char *s)
{
	const cJSON *it, *arr = fx_at(o, path);

	cJSON_ArrayForEach(it, arr) {
		if (cJSON_IsString(it) && strcmp(it->valuestring, s) == 0)
			return 1;
	}
	return 0;
}
