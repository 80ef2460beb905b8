/*
 * daemon/merge.c - strategic merge of specs and preset selection by mode.
 */
#include "config.h"

#include <string.h>

#include "daemon/merge.h"
#include "lib/util.h"

static const char *
list_merge_key(const char *field)
{
	static const char *const by_name[] = {
		"containers", "initContainers", "ephemeralContainers", "env", "volumes",
		"imagePullSecrets",
	};

	if (!field)
		return NULL;
	for (size_t i = 0; i < ARRAY_SIZE(by_name); i++)
		if (strcmp(field, by_name[i]) == 0)
			return "name";
	if (strcmp(field, "volumeMounts") == 0)
		return "mountPath";
	if (strcmp(field, "ports") == 0)
		return "containerPort";
	return NULL;
}

static const char *
patch_directive(const cJSON *v)
{
	const cJSON *d;

	if (!cJSON_IsObject(v))
		return NULL;
	d = cJSON_GetObjectItemCaseSensitive(v, "$patch");
	return cJSON_IsString(d) ? d->valuestring : NULL;
}

static int
same_key(const cJSON *a, const cJSON *b, const char *key)
{
	const cJSON *x = cJSON_GetObjectItemCaseSensitive(a, key);
	const cJSON *y = cJSON_GetObjectItemCaseSensitive(b, key);

	if (!x || !y)
		return 0;
	if (cJSON_IsString(x) && cJSON_IsString(y))
		return strcmp(x->valuestring, y->valuestring) == 0;
	if (cJSON_IsNumber(x) && cJSON_IsNumber(y))
		return x->valuedouble == y->valuedouble;
	return 0;
}

/* A copy of v without "$patch" directives. */
static cJSON *
clean_dup(const cJSON *v)
{
	cJSON *d = cJSON_Duplicate(v, 1);

	if (cJSON_IsObject(d))
		cJSON_DeleteItemFromObjectCaseSensitive(d, "$patch");
	return d;
}

static void merge_value(cJSON *parent, const char *key, const cJSON *pv);

static void
merge_keyed_list(cJSON *base, const cJSON *patch, const char *key)
{
	const cJSON *pi;

	cJSON_ArrayForEach(pi, patch) {
		cJSON *bi, *match = NULL;
		const char *dir = patch_directive(pi);

		if (cJSON_IsObject(pi) && cJSON_GetObjectItemCaseSensitive(pi, key)) {
			cJSON_ArrayForEach(bi, base) {
				if (same_key(bi, pi, key)) {
					match = bi;
					break;
				}
			}
		}
		if (dir && strcmp(dir, "delete") == 0) {
			if (match)
				cJSON_Delete(cJSON_DetachItemViaPointer(base, match));
			continue;
		}
		if (match && cJSON_IsObject(match) && !(dir && strcmp(dir, "replace") == 0))
			merge_strategic(match, pi);
		else if (match)
			cJSON_ReplaceItemViaPointer(base, match, clean_dup(pi));
		else
			cJSON_AddItemToArray(base, clean_dup(pi));
	}
}

static void
merge_value(cJSON *parent, const char *key, const cJSON *pv)
{
	cJSON *bv = cJSON_GetObjectItemCaseSensitive(parent, key);
	const char *dir = patch_directive(pv);
	const char *lk;

	if (cJSON_IsNull(pv) || (dir && strcmp(dir, "delete") == 0)) {
		cJSON_DeleteItemFromObjectCaseSensitive(parent, key);
		return;
	}
	if (cJSON_IsObject(pv) && cJSON_IsObject(bv) && !(dir && strcmp(dir, "replace") == 0)) {
		merge_strategic(bv, pv);
		return;
	}
	lk = list_merge_key(key);
	if (cJSON_IsArray(pv) && cJSON_IsArray(bv) && lk) {
		merge_keyed_list(bv, pv, lk);
		return;
	}
	if (bv)
		cJSON_ReplaceItemInObjectCaseSensitive(parent, key, clean_dup(pv));
	else
		cJSON_AddItemToObject(parent, key, clean_dup(pv));
}

void
merge_strategic(cJSON *base, const cJSON *patch)
{
	const cJSON *pv;

	if (!cJSON_IsObject(base) || !cJSON_IsObject(patch))
		return;
	cJSON_ArrayForEach(pv, patch) {
		if (strcmp(pv->string, "$patch") == 0)
			continue;
		merge_value(base, pv->string, pv);
	}
}

static int
pint(const cJSON *par, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(par, k);

	return cJSON_IsNumber(v) ? v->valueint : 0;
}

/* 0 = no worker, 1 = data parallel, 2 = pipeline parallel (worker set). */
static int
worker_kind(const cJSON *w)
{
	const cJSON *worker = cJSON_GetObjectItemCaseSensitive(w, "worker");
	const cJSON *par = cJSON_GetObjectItemCaseSensitive(w, "parallelism");

	if (!worker || cJSON_IsNull(worker))
		return 0;
	if (pint(par, "data") > 0 || pint(par, "dataLocal") > 0)
		return 1;
	return 2;
}

static int
present(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	return v && !cJSON_IsNull(v);
}

int
merge_select_presets(const cJSON *spec, const char **names, int max)
{
	const cJSON *router = cJSON_GetObjectItemCaseSensitive(spec, "router");
	const cJSON *sched = cJSON_GetObjectItemCaseSensitive(router, "scheduler");
	const cJSON *route = cJSON_GetObjectItemCaseSensitive(router, "route");
	const cJSON *prefill = cJSON_GetObjectItemCaseSensitive(spec, "prefill");
	const cJSON *http = cJSON_GetObjectItemCaseSensitive(route, "http");
	const cJSON *pool = cJSON_GetObjectItemCaseSensitive(sched, "pool");
	int n = 0;

#define PUSH(s) do { if (n < max) names[n++] = (s); } while (0)
	if (present(router, "scheduler") && !present(pool, "ref"))
		PUSH(PRESET_SCHEDULER);
	if (present(router, "route") && !present(http, "refs"))
		PUSH(PRESET_ROUTER_ROUTE);
	if (present(spec, "prefill")) {
		static const char *const pf[] = { PRESET_PREFILL_TEMPLATE, PRESET_PREFILL_WORKER_DP,
			PRESET_PREFILL_WORKER_PP };
		static const char *const dc[] = { PRESET_DECODE_TEMPLATE, PRESET_DECODE_WORKER_DP,
			PRESET_DECODE_WORKER_PP };
		PUSH(pf[worker_kind(prefill)]);
		PUSH(dc[worker_kind(spec)]);
	} else {
		static const char *const mn[] = { PRESET_TEMPLATE, PRESET_WORKER_DP, PRESET_WORKER_PP };
		PUSH(mn[worker_kind(spec)]);
	}
#undef PUSH
	return n;
}
