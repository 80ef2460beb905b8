/*
 * cli/cmd-top.c - "top nodes": per node its readiness, GPUs requested by the
 * pods bound to it against its allocatable GPUs, and its pod count, from the
 * API's nodes and pods.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/admin.h"
#include "lib/cli.h"
#include "lib/util.h"

#define GPU_RESOURCE "nvidia.com/gpu"

static const cJSON *
get(const cJSON *o, const char *k)
{
	return cJSON_GetObjectItemCaseSensitive(o, k);
}

static cJSON *
list(struct admin *a, const char *path)
{
	struct admin_resp resp;
	cJSON *o, *items;

	if (admin_call(a, "GET", path, NULL, NULL, 0, &resp) < 0)
		return NULL;
	if (resp.code != 200) {
		admin_server_error(&resp);
		admin_resp_release(&resp);
		return NULL;
	}
	o = admin_resp_json(&resp);
	admin_resp_release(&resp);
	items = cJSON_DetachItemFromObjectCaseSensitive(o, "items");
	cJSON_Delete(o);
	return items ? items : cJSON_CreateArray();
}

/* A quantity string or number ("8", 8) as a count. */
static long
count(const cJSON *v)
{
	if (cJSON_IsNumber(v))
		return (long)v->valuedouble;
	if (cJSON_IsString(v))
		return strtol(v->valuestring, NULL, 10);
	return 0;
}

static long
pod_gpus(const cJSON *pod)
{
	const cJSON *c;
	long n = 0;

	cJSON_ArrayForEach(c, get(get(pod, "spec"), "containers")) {
		const cJSON *r = get(c, "resources");
		const cJSON *v = get(get(r, "limits"), GPU_RESOURCE);

		n += count(v ? v : get(get(r, "requests"), GPU_RESOURCE));
	}
	return n;
}

static const char *
ready(const cJSON *node)
{
	const cJSON *c;

	cJSON_ArrayForEach(c, get(get(node, "status"), "conditions")) {
		const char *t = cJSON_GetStringValue(get(c, "type"));
		const char *s = cJSON_GetStringValue(get(c, "status"));

		if (t && strcmp(t, "Ready") == 0)
			return s && strcmp(s, "True") == 0 ? "Ready" :
			    s && strcmp(s, "False") == 0 ? "NotReady" : "Unknown";
	}
	return "Unknown";
}

static int
cmd_top_exec(struct admin *a, int argc, char **argv)
{
	cJSON *nodes, *pods;
	const cJSON *n, *p;
	struct table t;

	if (argc != 2 || (strcmp(argv[1], "nodes") != 0 && strcmp(argv[1], "node") != 0)) {
		fprintf(stderr, "error: USAGE: top nodes\n");
		return EXIT_USAGE;
	}
	if ((nodes = list(a, "/api/v1/nodes")) == NULL)
		return 1;
	if ((pods = list(a, "/api/v1/pods")) == NULL) {
		cJSON_Delete(nodes);
		return 1;
	}
	table_init(&t, 6);
	table_add(&t, (const char *const[]){ "NAME", "STATUS", "GPUS(USED)", "GPUS(ALLOC)",
	    "GPUS%", "PODS" });
	cJSON_ArrayForEach(n, nodes) {
		const char *name = cJSON_GetStringValue(get(get(n, "metadata"), "name"));
		long alloc = count(get(get(get(n, "status"), "allocatable"), GPU_RESOURCE));
		long used = 0, npods = 0;
		char st[64], u[24], al[24], pct[16], np[24];

		if (name == NULL)
			continue;
		cJSON_ArrayForEach(p, pods) {
			const char *nn = cJSON_GetStringValue(get(get(p, "spec"), "nodeName"));
			const char *ph = cJSON_GetStringValue(get(get(p, "status"), "phase"));

			if (nn == NULL || strcmp(nn, name) != 0 ||
			    (ph && (strcmp(ph, "Succeeded") == 0 || strcmp(ph, "Failed") == 0)))
				continue;
			npods++;
			used += pod_gpus(p);
		}
		snprintf(st, sizeof(st), "%s%s", ready(n),
		    cJSON_IsTrue(get(get(n, "spec"), "unschedulable")) ? ",SchedulingDisabled" : "");
		snprintf(u, sizeof(u), "%ld", used);
		snprintf(al, sizeof(al), "%ld", alloc);
		if (alloc > 0)
			snprintf(pct, sizeof(pct), "%ld%%", used * 100 / alloc);
		else
			snprintf(pct, sizeof(pct), "-");
		snprintf(np, sizeof(np), "%ld", npods);
		table_add(&t, (const char *const[]){ name, st, u, al, pct, np });
	}
	table_print(stdout, &t);
	table_release(&t);
	cJSON_Delete(nodes);
	cJSON_Delete(pods);
	return 0;
}

const struct cmd_entry cmd_top_entry = {
	.name = "top", .alias = NULL, .usage = "nodes", .exec = cmd_top_exec,
};
