/*
 * daemon/api-metrics.c - GET /metrics: the daemon's own Prometheus metrics.
 * Computed from the store at each scrape: objects by resource, objects by
 * resource, condition and status (services, pods, nodes), unschedulable
 * pods (placement failures) and cordoned nodes; then every family other
 * parts of the daemon registered in api_metrics_registry() (e.g. reconcile
 * latency, queue depth).
 */
#include "config.h"
#include "daemon/api-metrics.h"

#include <stdio.h>
#include <string.h>

#include "daemon/store.h"
#include "lib/buf.h"
#include "lib/http_server.h"
#include "lib/metrics.h"
#include "lib/util.h"

static const char *const counted[] = { "llminferenceservices", "llminferenceserviceconfigs",
    "pods", "nodes", "deployments", "leaderworkersets", "services", "inferencepools",
    "httproutes", "secrets", "events" };

/* resource -> the conditions reported per status */
static const struct {
	const char *resource;
	const char *conditions[3];
} with_conditions[] = {
	{ "llminferenceservices", { "Ready", NULL } },
	{ "pods", { "Ready", "PodScheduled", NULL } },
	{ "nodes", { "Ready", NULL } },
};

struct metrics *
api_metrics_registry(void)
{
	static struct metrics *reg;

	if (reg == NULL)
		reg = metrics_new();
	return reg;
}

static const char *
cond_status(const cJSON *obj, const char *type, const char **reason)
{
	const cJSON *c;

	*reason = NULL;
	cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(obj, "status"), "conditions")) {
		const char *t = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "type"));

		if (t && strcmp(t, type) == 0) {
			*reason = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "reason"));
			return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "status"));
		}
	}
	return NULL;
}

static void
render_store(struct store *s, struct buf *out)
{
	struct metrics *m = metrics_new();
	struct metric_family *objs, *conds, *unsched, *cordoned, *info;
	const char *rl[] = { "resource" };
	const char *cl[] = { "resource", "condition", "status" };

	info = metrics_gauge(m, "llmd_build_info", "llmd version.", 1,
	    (const char *[]){ "version" });
	metric_set(info, (const char *[]){ PACKAGE_VERSION }, 1);
	objs = metrics_gauge(m, "llmd_objects", "Objects in the store by resource.", 1, rl);
	conds = metrics_gauge(m, "llmd_objects_condition",
	    "Objects by resource, condition type and status (Unknown when absent).", 3, cl);
	unsched = metrics_gauge(m, "llmd_pods_unschedulable",
	    "Pods whose PodScheduled condition is False (placement failures).", 0, NULL);
	cordoned = metrics_gauge(m, "llmd_nodes_unschedulable", "Cordoned nodes.", 0, NULL);
	metric_set(unsched, NULL, 0);
	metric_set(cordoned, NULL, 0);
	for (size_t i = 0; i < ARRAY_SIZE(counted); i++) {
		cJSON *items = NULL, *it;
		size_t w;

		if (store_list(s, counted[i], NULL, &items, NULL, NULL) < 0)
			continue;
		metric_set(objs, (const char *[]){ counted[i] }, cJSON_GetArraySize(items));
		for (w = 0; w < ARRAY_SIZE(with_conditions); w++)
			if (strcmp(with_conditions[w].resource, counted[i]) == 0)
				break;
		cJSON_ArrayForEach(it, items) {
			for (int k = 0; w < ARRAY_SIZE(with_conditions) &&
			    with_conditions[w].conditions[k]; k++) {
				const char *type = with_conditions[w].conditions[k], *reason;
				const char *st = cond_status(it, type, &reason);

				metric_add(conds, (const char *[]){ counted[i], type,
				    st ? st : "Unknown" }, 1);
				if (strcmp(type, "PodScheduled") == 0 && st && strcmp(st, "False") == 0)
					metric_add(unsched, NULL, 1);
			}
			if (strcmp(counted[i], "nodes") == 0 && cJSON_IsTrue(
			    cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(it,
			    "spec"), "unschedulable")))
				metric_add(cordoned, NULL, 1);
		}
		cJSON_Delete(items);
	}
	metrics_render(m, out);
	metrics_free(m);
}

void
api_metrics_reply(struct store *s, struct http_req *req)
{
	struct buf out = BUF_INIT;

	render_store(s, &out);
	metrics_render(api_metrics_registry(), &out);
	http_reply_buf(req, 200, "text/plain; version=0.0.4; charset=utf-8", &out);
	buf_release(&out);
}
