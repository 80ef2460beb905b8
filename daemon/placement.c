/*
 * daemon/placement.c - bin-packing, spreading, all-or-nothing group
 * placement of pods on GPU nodes with Kubernetes-style failure messages.
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/derive.h"
#include "daemon/placement.h"
#include "lib/buf.h"
#include "lib/util.h"
#include "lib/json.h"

struct pnode {
	const char *name;
	const cJSON *obj;
	long free_gpu;
	int cordoned, notready;
};

/* Per (role, node) pod counts for spreading, in a hash of role strings. */
struct roles {
	char **keys;
	int *ids;
	size_t cap;
	int n;
	int nnodes;
	int *counts;      /* n x nnodes */
	size_t counts_cap;
};

enum { R_CORDON, R_NOTREADY, R_TAINT, R_SELECTOR, R_GPU, R_MAX };

static int
str_eq(const char *a, const char *b)
{
	return a && b && strcmp(a, b) == 0;
}

static long
qty(const cJSON *v)
{
	if (cJSON_IsNumber(v))
		return (long)v->valuedouble;
	if (cJSON_IsString(v))
		return strtol(v->valuestring, NULL, 10);
	return -1;
}

static uint64_t
hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static int
role_id(struct roles *r, const char *key)
{
	size_t i;

	if ((size_t)r->n * 2 >= r->cap) {
		struct roles nr = { 0 };

		nr.cap = r->cap ? r->cap * 2 : 64;
		nr.keys = xcalloc(nr.cap, sizeof(*nr.keys));
		nr.ids = xcalloc(nr.cap, sizeof(*nr.ids));
		for (i = 0; i < r->cap; i++) {
			size_t j;

			if (!r->keys[i])
				continue;
			for (j = hash_str(r->keys[i]) % nr.cap; nr.keys[j]; j = (j + 1) % nr.cap)
				;
			nr.keys[j] = r->keys[i];
			nr.ids[j] = r->ids[i];
		}
		free(r->keys);
		free(r->ids);
		r->keys = nr.keys;
		r->ids = nr.ids;
		r->cap = nr.cap;
	}
	for (i = hash_str(key) % r->cap; r->keys[i]; i = (i + 1) % r->cap)
		if (strcmp(r->keys[i], key) == 0)
			return r->ids[i];
	r->keys[i] = xstrdup(key);
	r->ids[i] = r->n++;
	if ((size_t)r->n * (size_t)r->nnodes > r->counts_cap) {
		size_t old = r->counts_cap;

		r->counts_cap = MAX((size_t)r->n * (size_t)r->nnodes * 2, (size_t)r->nnodes);
		r->counts = xreallocarray(r->counts, r->counts_cap, sizeof(int));
		memset(r->counts + old, 0, (r->counts_cap - old) * sizeof(int));
	}
	return r->ids[i];
}

static void
roles_free(struct roles *r)
{
	for (size_t i = 0; i < r->cap; i++)
		free(r->keys[i]);
	free(r->keys);
	free(r->ids);
	free(r->counts);
}

/* The spreading key of a pod: its owner workload and its role. */
static void
pod_role(const cJSON *pod, char *out, size_t n)
{
	const cJSON *md = json_member(pod, "metadata"), *lb = json_member(md, "labels");
	const char *owner = json_member_str(cJSON_GetArrayItem(json_member(md, "ownerReferences"), 0), "name");
	const char *wi = json_member_str(lb, "leaderworkerset.sigs.k8s.io/worker-index");

	snprintf(out, n, "%s/%s/%s/%s", json_member_str(md, "namespace") ? json_member_str(md, "namespace") : "",
	    owner ? owner : json_member_str(md, "name") ? json_member_str(md, "name") : "",
	    json_member_str(lb, "llm-d.ai/role") ? json_member_str(lb, "llm-d.ai/role") : "",
	    wi ? (strcmp(wi, "0") == 0 ? "leader" : "worker") : "");
}

static int
find_node(const struct pnode *nodes, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (str_eq(nodes[i].name, name))
			return i;
	return -1;
}

static int
tolerated(const cJSON *taint, const cJSON *tols)
{
	const char *tk = json_member_str(taint, "key"), *tv = json_member_str(taint, "value"), *te = json_member_str(taint, "effect");
	const cJSON *t;

	cJSON_ArrayForEach(t, tols) {
		const char *k = json_member_str(t, "key"), *op = json_member_str(t, "operator"), *v = json_member_str(t, "value");
		const char *ef = json_member_str(t, "effect");

		if (ef && ef[0] && !str_eq(ef, te))
			continue;
		if (str_eq(op, "Exists")) {
			if (!k || !k[0] || str_eq(k, tk))
				return 1;
		} else if (str_eq(k, tk) && str_eq(v ? v : "", tv ? tv : "")) {
			return 1;
		}
	}
	return 0;
}

/* Returns -1 when the node fits, else the reason index (taint names the taint in tbuf). */
static int
node_fails(const struct pnode *nd, const cJSON *pod, long need, char *tbuf, size_t tl)
{
	const cJSON *ps = json_member(pod, "spec"), *t, *sel, *labels;

	if (nd->cordoned)
		return R_CORDON;
	if (nd->notready)
		return R_NOTREADY;
	cJSON_ArrayForEach(t, json_member(json_member(nd->obj, "spec"), "taints")) {
		const char *ef = json_member_str(t, "effect");

		if (!str_eq(ef, "NoSchedule") && !str_eq(ef, "NoExecute"))
			continue;
		if (!tolerated(t, json_member(ps, "tolerations"))) {
			snprintf(tbuf, tl, "{%s: %s}", json_member_str(t, "key") ? json_member_str(t, "key") : "",
			    json_member_str(t, "value") ? json_member_str(t, "value") : "");
			return R_TAINT;
		}
	}
	labels = json_member(json_member(nd->obj, "metadata"), "labels");
	cJSON_ArrayForEach(sel, json_member(ps, "nodeSelector")) {
		if (!cJSON_IsString(sel) || !str_eq(json_member_str(labels, sel->string), sel->valuestring))
			return R_SELECTOR;
	}
	if (nd->free_gpu < need)
		return R_GPU;
	return -1;
}

struct reason_count {
	char text[160];
	int count;
};

static int
rc_cmp(const void *a, const void *b)
{
	const struct reason_count *x = a, *y = b;

	if (x->count != y->count)
		return y->count - x->count;
	return strcmp(x->text, y->text);
}

static void
explain(const struct pnode *nodes, int n, const cJSON *pod, long need, struct buf *out)
{
	struct reason_count *rs = xcalloc((size_t)n + R_MAX, sizeof(*rs));
	int nr = 0;
	static const char *const text[] = { "node(s) were cordoned", "node(s) were not ready",
		NULL, "node(s) didn't match Pod's node selector", "Insufficient nvidia.com/gpu" };

	for (int i = 0; i < n; i++) {
		char tb[140], txt[160];
		int r = node_fails(&nodes[i], pod, need, tb, sizeof(tb)), j;

		if (r < 0)
			continue;
		if (r == R_TAINT)
			snprintf(txt, sizeof(txt), "node(s) had untolerated taint %s", tb);
		else
			snprintf(txt, sizeof(txt), "%s", text[r]);
		for (j = 0; j < nr; j++)
			if (strcmp(rs[j].text, txt) == 0)
				break;
		if (j == nr)
			snprintf(rs[nr++].text, sizeof(rs[0].text), "%s", txt);
		rs[j].count++;
	}
	qsort(rs, (size_t)nr, sizeof(*rs), rc_cmp);
	buf_addf(out, "0/%d nodes are available", n);
	for (int j = 0; j < nr; j++)
		buf_addf(out, "%s %d %s", j ? "," : ":", rs[j].count, rs[j].text);
	buf_addch(out, '.');
	free(rs);
}

struct unit {
	int first, count;     /* range in the ordered pod index list */
};

int
placement_schedule(cJSON *pods, const cJSON *nodes_json, const cJSON *bound,
    struct placement_result *res)
{
	int nn = cJSON_GetArraySize(nodes_json), np = cJSON_GetArraySize(pods), i, k;
	struct pnode *nodes;
	struct roles roles = { 0 };
	cJSON **pv, **order, *p;
	int *role_of, *chosen, *used;
	long *need;
	const cJSON *n;
	char key[512];

	memset(res, 0, sizeof(*res));
	res->failures = cJSON_CreateObject();
	if (!cJSON_IsArray(pods) || !cJSON_IsArray(nodes_json))
		return -EINVAL;
	nodes = xcalloc((size_t)MAX(nn, 1), sizeof(*nodes));
	i = 0;
	cJSON_ArrayForEach(n, nodes_json) {
		const cJSON *st = json_member(n, "status"), *c;
		long g = qty(json_member(json_member(st, "allocatable"), "nvidia.com/gpu"));

		if (g < 0)
			g = qty(json_member(json_member(st, "capacity"), "nvidia.com/gpu"));
		nodes[i].name = json_member_str(json_member(n, "metadata"), "name");
		nodes[i].obj = n;
		nodes[i].free_gpu = MAX(g, 0);
		nodes[i].cordoned = cJSON_IsTrue(json_member(json_member(n, "spec"), "unschedulable"));
		cJSON_ArrayForEach(c, json_member(st, "conditions")) {
			if (str_eq(json_member_str(c, "type"), "Ready") && !str_eq(json_member_str(c, "status"), "True"))
				nodes[i].notready = 1;
		}
		i++;
	}
	roles.nnodes = MAX(nn, 1);
	/* capacity used by bound pods and by pods already placed */
	for (int pass = 0; pass < 2; pass++) {
		const cJSON *arr = pass ? pods : bound;

		cJSON_ArrayForEach(n, arr) {
			int rid, ni = find_node(nodes, nn, json_member_str(json_member(n, "spec"), "nodeName"));

			if (ni < 0)
				continue;
			nodes[ni].free_gpu -= derive_pod_gpus(n);
			pod_role(n, key, sizeof(key));
			rid = role_id(&roles, key);   /* may grow roles.counts */
			roles.counts[(size_t)rid * (size_t)roles.nnodes + (size_t)ni]++;
		}
	}
	/* unscheduled pods in units: LWS groups together, others alone */
	pv = xcalloc((size_t)MAX(np, 1), sizeof(*pv));
	order = xcalloc((size_t)MAX(np, 1), sizeof(*order));
	role_of = xcalloc((size_t)MAX(np, 1), sizeof(int));
	chosen = xcalloc((size_t)MAX(np, 1), sizeof(int));
	used = xcalloc((size_t)MAX(np, 1), sizeof(int));
	need = xcalloc((size_t)MAX(np, 1), sizeof(long));
	k = 0;
	cJSON_ArrayForEach(p, pods) {
		if (!json_member_str(json_member(p, "spec"), "nodeName"))
			pv[k++] = p;
	}
	np = k;
	{
		struct unit *units = xcalloc((size_t)MAX(np, 1), sizeof(*units));
		int nu = 0, no = 0;

		for (i = 0; i < np; i++) {
			const char *gk;

			if (used[i])
				continue;
			gk = json_member_str(json_member(json_member(pv[i], "metadata"), "labels"), "leaderworkerset.sigs.k8s.io/group-key");
			units[nu].first = no;
			order[no++] = pv[i];
			used[i] = 1;
			for (int j = i + 1; gk && j < np; j++) {
				if (!used[j] && str_eq(gk, json_member_str(json_member(json_member(pv[j], "metadata"), "labels"),
				    "leaderworkerset.sigs.k8s.io/group-key"))) {
					order[no++] = pv[j];
					used[j] = 1;
				}
			}
			units[nu].count = no - units[nu].first;
			nu++;
		}
		for (i = 0; i < np; i++) {
			need[i] = derive_pod_gpus(order[i]);
			pod_role(order[i], key, sizeof(key));
			role_of[i] = role_id(&roles, key);
		}
		for (int u = 0; u < nu; u++) {
			int failed = -1;

			for (i = units[u].first; i < units[u].first + units[u].count; i++) {
				int best = -1;
				long best_left = 0;
				int best_same = 0;

				for (int j = 0; j < nn; j++) {
					char tb[8];
					int same;
					long left;

					if (nodes[j].free_gpu < need[i] ||
					    node_fails(&nodes[j], order[i], need[i], tb, sizeof(tb)) >= 0)
						continue;
					same = roles.counts[(size_t)role_of[i] * (size_t)roles.nnodes + (size_t)j];
					left = nodes[j].free_gpu - need[i];
					if (best < 0 || same < best_same ||
					    (same == best_same && left < best_left)) {
						best = j;
						best_same = same;
						best_left = left;
					}
				}
				chosen[i] = best;
				if (best < 0) {
					failed = i;
					break;
				}
				nodes[best].free_gpu -= need[i];
				roles.counts[(size_t)role_of[i] * (size_t)roles.nnodes + (size_t)best]++;
			}
			if (failed < 0) {
				for (i = units[u].first; i < units[u].first + units[u].count; i++) {
					cJSON *spec = cJSON_GetObjectItemCaseSensitive(order[i], "spec");

					if (!cJSON_IsObject(spec))
						spec = cJSON_AddObjectToObject(order[i], "spec");
					cJSON_AddStringToObject(spec, "nodeName", nodes[chosen[i]].name);
					res->scheduled++;
				}
				continue;
			}
			{
				struct buf why = BUF_INIT;
				const char *fname = json_member_str(json_member(order[failed], "metadata"), "name");

				/* explained before the group's tentative placements are undone */
				explain(nodes, nn, order[failed], need[failed], &why);
				for (i = units[u].first; i < failed; i++) {
					nodes[chosen[i]].free_gpu += need[i];
					roles.counts[(size_t)role_of[i] * (size_t)roles.nnodes + (size_t)chosen[i]]--;
				}
				for (i = units[u].first; i < units[u].first + units[u].count; i++) {
					const char *pn = json_member_str(json_member(order[i], "metadata"), "name");
					struct buf m = BUF_INIT;

					if (i == failed || units[u].count == 1)
						buf_adds(&m, why.buf);
					else
						buf_addf(&m, "pod group of %d placed all or nothing: pod %s: %s",
						    units[u].count, fname ? fname : "?", why.buf);
					cJSON_AddStringToObject(res->failures, pn ? pn : "", m.buf);
					buf_release(&m);
					res->unschedulable++;
				}
				buf_release(&why);
			}
		}
		free(units);
	}
	free(pv);
	free(order);
	free(role_of);
	free(chosen);
	free(used);
	free(need);
	free(nodes);
	roles_free(&roles);
	return 0;
}

void
placement_result_release(struct placement_result *res)
{
	cJSON_Delete(res->failures);
	res->failures = NULL;
}
