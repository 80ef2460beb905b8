/*
 * daemon/reconciler.c - queue of service keys fed by store events, batches
 * of queued services reconciled in one store transaction on the workpool,
 * and the reconcile pass itself: combine -> derive -> write children ->
 * placement -> status. See reconciler.h.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "daemon/api-metrics.h"
#include "daemon/api.h"
#include "daemon/derive.h"
#include "daemon/reconcile.h"
#include "daemon/reconciler.h"
#include "daemon/store.h"
#include "daemon/surge.h"
#include "daemon/watch.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/util.h"
#include "lib/workpool.h"

#define SVC_RES "llminferenceservices"
#define CFG_RES "llminferenceserviceconfigs"

/* The reconciler's own /metrics families (api_metrics_registry). */
static struct metric_family *m_reconcile_seconds, *m_queue_depth, *m_placement_failures;
static const char *const M_KIND[] = { LLMISVC_KIND };

static void
metrics_init(void)
{
	static const double b[] = { 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
		0.5, 1, 2.5 };
	static const char *const L[] = { "kind" };

	if (m_reconcile_seconds != NULL)
		return;
	m_reconcile_seconds = metrics_histogram(api_metrics_registry(), "llmd_reconcile_seconds",
	    "Time to reconcile one object.", 1, L, b, (int)ARRAY_SIZE(b));
	m_queue_depth = metrics_gauge(api_metrics_registry(), "llmd_reconcile_queue_depth",
	    "Objects waiting to be reconciled.", 0, NULL);
	m_placement_failures = metrics_counter(api_metrics_registry(),
	    "llmd_placement_failures_total", "Pods that could not be placed on any node.", 0, NULL);
	metric_set(m_queue_depth, NULL, 0);
	metric_add(m_placement_failures, NULL, 0);
}

/* Child resources a service may own, in the order they are written. */
static const char *const child_resources[] = {
	"services", "deployments", "leaderworkersets", "inferencepools",
	"inferencemodels", "httproutes", "pods",
};

struct key {
	char *ns, *name;
	int unbound;             /* pods left unplaced by its last reconcile */
	struct key *next;
};

/*
 * What every service reads alike: the nodes and the GPUs that bound pods
 * take on each, loaded once (one pass over the pods, not one per service),
 * kept current as batches bind and delete pods, and loaded again after
 * anyone else wrote pods or nodes.
 */
struct batch_view {
	cJSON *nodes;   /* Node objects */
	cJSON *usage;   /* node name -> GPUs requested by the pods bound to it */
	int loaded;
};

/* Most services one batch (one transaction, one fsync) reconciles. */
#define BATCH_MAX 256
/* A batch stops taking services after this long, so API writes queued behind it wait little. */
#define BATCH_MS 100

struct reconciler {
	struct event_base *base;
	struct store *store;
	struct watch_hub *hub;
	struct workpool *wp;
	struct key *head, *tail;
	size_t n_queued;         /* keys in head..tail (llmd_reconcile_queue_depth) */
	struct key *running;     /* the batch on the workpool */
	struct key *unfinished;  /* of the batch: not reached in time, or the commit failed */
	/*
	 * resourceVersions (lo, hi] the last batch wrote (atomics: set by the
	 * worker, read on the loop): its own writes do not queue the services
	 * again, their reconcile already saw them.
	 */
	int64_t own_lo, own_hi;
	struct batch_view view;  /* used by the worker only */
	int64_t view_rv;         /* writes up to this rv are in view (worker only) */
	int view_stale;          /* atomic: reload view (resync, failed commit) */
	struct event *resync;
	struct event *kick;
	cJSON *node_prints;  /* node name -> what placement sees of it */
	/*
	 * "ns/name" of the services whose last reconcile left pods unplaced
	 * (loop thread): queued again when a bound pod goes, freeing its GPUs.
	 */
	cJSON *pending;
	int stopping;
};

/* ---- the reconcile pass (any thread) ---- */

struct cfg_cache {
	struct store *s;
	cJSON *held[64];
	int n;
};

static const cJSON *
get_config(void *ctx, const char *ns, const char *name)
{
	struct cfg_cache *c = ctx;
	cJSON *o = NULL;

	if (c->n == (int)ARRAY_SIZE(c->held))
		return NULL;
	if (store_get(c->s, CFG_RES, ns, name, &o, NULL) < 0)
		return NULL;
	c->held[c->n++] = o;
	return o;
}

static const char *
str_at(const cJSON *o, const char *a, const char *b)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, a);

	if (b)
		v = cJSON_GetObjectItemCaseSensitive(v, b);
	return cJSON_GetStringValue(v);
}


static void
batch_view_release(struct batch_view *v)
{
	cJSON_Delete(v->nodes);
	cJSON_Delete(v->usage);
	memset(v, 0, sizeof(*v));
}

static void
usage_add(struct batch_view *v, const char *node, int gpus)
{
	cJSON *u = cJSON_GetObjectItemCaseSensitive(v->usage, node);

	if (u == NULL)
		cJSON_AddNumberToObject(v->usage, node, gpus);
	else
		cJSON_SetNumberValue(u, u->valuedouble + gpus);
}

static int
batch_view_load(struct store *s, struct batch_view *v)
{
	cJSON *pods = NULL, *it;

	if (v->loaded)
		return 0;
	if (store_list(s, "nodes", NULL, &v->nodes, NULL, NULL) < 0)
		return -EIO;
	if (store_list(s, "pods", NULL, &pods, NULL, NULL) < 0) {
		cJSON_Delete(v->nodes);
		v->nodes = NULL;
		return -EIO;
	}
	v->usage = cJSON_CreateObject();
	cJSON_ArrayForEach(it, pods) {
		const char *node = str_at(it, "spec", "nodeName");

		if (node)
			usage_add(v, node, derive_pod_gpus(it));
	}
	cJSON_Delete(pods);
	v->loaded = 1;
	return 0;
}

/*
 * What placement needs to know of the bound pods when it places the pods of
 * one service: that service's own bound pods (they count for spreading its
 * replicas) and, per node, one stand-in pod requesting the GPUs every other
 * bound pod takes there (placement reads nothing else of them: their
 * workload roles are never the service's).
 */
static int
is_bound_pod(const cJSON *o)
{
	const char *k = str_at(o, "kind", NULL);

	return k && strcmp(k, "Pod") == 0 && str_at(o, "spec", "nodeName") != NULL;
}

static int
has_bound_pod(const cJSON *arr)
{
	const cJSON *it;

	cJSON_ArrayForEach(it, arr)
		if (is_bound_pod(it))
			return 1;
	return 0;
}

static cJSON *
bound_for_placement(const struct batch_view *v, const cJSON *observed)
{
	cJSON *bound = cJSON_CreateArray(), *u;
	const cJSON *it;

	cJSON_ArrayForEach(u, v->usage) {
		double others = u->valuedouble;
		cJSON *pod, *md, *spec, *c, *req;

		cJSON_ArrayForEach(it, observed)
			if (is_bound_pod(it) && strcmp(str_at(it, "spec", "nodeName"),
			    u->string) == 0)
				others -= derive_pod_gpus(it);
		if (others <= 0)
			continue;
		pod = cJSON_CreateObject();
		md = cJSON_AddObjectToObject(pod, "metadata");
		/* One name for all: a single workload role, no service's. */
		cJSON_AddStringToObject(md, "name", "bound-elsewhere");
		spec = cJSON_AddObjectToObject(pod, "spec");
		cJSON_AddStringToObject(spec, "nodeName", u->string);
		c = cJSON_CreateObject();
		req = cJSON_AddObjectToObject(cJSON_AddObjectToObject(c, "resources"), "requests");
		cJSON_AddNumberToObject(req, "nvidia.com/gpu", others);
		cJSON_AddItemToArray(cJSON_AddArrayToObject(spec, "containers"), c);
		cJSON_AddItemToArray(bound, pod);
	}
	cJSON_ArrayForEach(it, observed)
		if (is_bound_pod(it))
			cJSON_AddItemToArray(bound, cJSON_Duplicate(it, 1));
	return bound;
}

static int
owned_by(const cJSON *o, const char *uid)
{
	const cJSON *r, *refs = cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(o, "metadata"), "ownerReferences");

	cJSON_ArrayForEach(r, refs) {
		const char *u = str_at(r, "uid", NULL);

		if (u && strcmp(u, uid) == 0)
			return 1;
	}
	return 0;
}

/* Makes child owned by svc (ownerReferences entry with its uid). */
static void
set_owner(cJSON *child, const cJSON *svc)
{
	cJSON *md = cJSON_GetObjectItemCaseSensitive(child, "metadata"), *refs, *ref;
	const char *uid = str_at(svc, "metadata", "uid");

	if (md == NULL)
		md = cJSON_AddObjectToObject(child, "metadata");
	refs = cJSON_GetObjectItemCaseSensitive(md, "ownerReferences");
	if (!cJSON_IsArray(refs)) {
		cJSON_DeleteItemFromObjectCaseSensitive(md, "ownerReferences");
		refs = cJSON_AddArrayToObject(md, "ownerReferences");
	}
	if (owned_by(child, uid))
		return;
	ref = cJSON_CreateObject();
	cJSON_AddStringToObject(ref, "apiVersion", LLMISVC_API_VERSION);
	cJSON_AddStringToObject(ref, "kind", LLMISVC_KIND);
	cJSON_AddStringToObject(ref, "name", str_at(svc, "metadata", "name"));
	cJSON_AddStringToObject(ref, "uid", uid);
	cJSON_AddBoolToObject(ref, "controller", 1);
	cJSON_AddBoolToObject(ref, "blockOwnerDeletion", 1);
	/* The store cascades on the first reference that carries a uid. */
	cJSON_InsertItemInArray(refs, 0, ref);
}

/* Does the desired child differ from the stored one (server fields aside)? */
static int
child_differs(const cJSON *want, const cJSON *have)
{
	static const char *const server_md[] = { "uid", "resourceVersion", "generation",
		"creationTimestamp", "deletionTimestamp" };
	cJSON *a = cJSON_Duplicate(want, 1), *b = cJSON_Duplicate(have, 1);
	size_t i;
	int d;

	cJSON_DeleteItemFromObjectCaseSensitive(a, "status");
	cJSON_DeleteItemFromObjectCaseSensitive(b, "status");
	for (i = 0; i < ARRAY_SIZE(server_md); i++) {
		cJSON_DeleteItemFromObjectCaseSensitive(
		    cJSON_GetObjectItemCaseSensitive(a, "metadata"), server_md[i]);
		cJSON_DeleteItemFromObjectCaseSensitive(
		    cJSON_GetObjectItemCaseSensitive(b, "metadata"), server_md[i]);
	}
	d = !cJSON_Compare(a, b, 1);
	cJSON_Delete(a);
	cJSON_Delete(b);
	return d;
}

/* The object of kind and name in the array objs; NULL when absent. */
static cJSON *
find_child(cJSON *objs, const char *kind, const char *name)
{
	cJSON *o;

	cJSON_ArrayForEach(o, objs) {
		const char *k = str_at(o, "kind", NULL), *n = str_at(o, "metadata", "name");

		if (k && n && strcmp(k, kind) == 0 && strcmp(n, name) == 0)
			return o;
	}
	return NULL;
}

/* Puts the stored object out in place of old in observed (old NULL: appends). */
static void
observed_put(cJSON *observed, cJSON *old, cJSON *out)
{
	if (out == NULL)
		return;
	if (old)
		cJSON_ReplaceItemViaPointer(observed, old, out);
	else
		cJSON_AddItemToArray(observed, out);
}

/*
 * Writes one desired child, looking for the stored one among observed (the
 * service's children) and keeping observed current; returns 0 or a negative
 * errno.
 */
static int
apply_child(struct store *s, const cJSON *svc, cJSON *child, const char *ns,
    cJSON *observed)
{
	const char *kind = str_at(child, "kind", NULL);
	const struct api_resource *r = kind ? api_resource_by_name(kind) : NULL;
	cJSON *md, *have = NULL, *seen, *out = NULL;
	const char *name;
	struct llmd_err e = LLMD_ERR_INIT;
	int rc;

	if (r == NULL || !(r->flags & RES_NAMESPACED)) {
		log_debug("reconcile: skipping child of kind %s", kind ? kind : "?");
		return 0;
	}
	md = cJSON_GetObjectItemCaseSensitive(child, "metadata");
	name = str_at(child, "metadata", "name");
	if (!cJSON_IsObject(md) || name == NULL)
		return 0;
	cJSON_DeleteItemFromObjectCaseSensitive(md, "namespace");
	cJSON_AddStringToObject(md, "namespace", ns);
	set_owner(child, svc);
	seen = find_child(observed, r->kind, name);
	if (seen == NULL) {
		rc = store_create(s, r->plural, child, &out, &e);
		if (rc != -EEXIST) {
			observed_put(observed, NULL, out);
			return rc;
		}
		/* Someone else's object of that name: take it over, as an update. */
		if ((rc = store_get(s, r->plural, ns, name, &have, &e)) < 0)
			return rc == -ENOENT ? 0 : rc;
	} else {
		have = cJSON_Duplicate(seen, 1);
	}
	/* Placement decisions stick: keep a bound pod's node. */
	if (strcmp(r->plural, "pods") == 0) {
		const char *node = str_at(have, "spec", "nodeName");
		cJSON *spec = cJSON_GetObjectItemCaseSensitive(child, "spec");

		if (node && cJSON_IsObject(spec) && !str_at(child, "spec", "nodeName"))
			cJSON_AddStringToObject(spec, "nodeName", node);
	}
	rc = 0;
	if (child_differs(child, have) &&
	    (rc = store_update(s, r->plural, child, 0, &out, NULL, &e)) == 0)
		observed_put(observed, seen, out);
	cJSON_Delete(have);
	return rc;
}

static int
in_desired(const cJSON *children, const char *kind, const char *name)
{
	const cJSON *c;

	cJSON_ArrayForEach(c, children) {
		const char *k = str_at(c, "kind", NULL), *n = str_at(c, "metadata", "name");

		if (k && n && strcmp(k, kind) == 0 && strcmp(n, name) == 0)
			return 1;
	}
	return 0;
}

/* The resource (plural) of a child kind among child_resources; NULL if none. */
static const struct api_resource *
child_resource(const char *kind, size_t *idx)
{
	const struct api_resource *r = kind ? api_resource_by_name(kind) : NULL;
	size_t i;

	for (i = 0; r && i < ARRAY_SIZE(child_resources); i++)
		if (strcmp(r->plural, child_resources[i]) == 0) {
			*idx = i;
			return r;
		}
	return NULL;
}

/* Orders children as observed_children does: child_resources, then name. */
static int
child_cmp(const void *a, const void *b)
{
	const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;
	size_t i = ARRAY_SIZE(child_resources), j = ARRAY_SIZE(child_resources);
	const char *nx, *ny;

	child_resource(str_at(x, "kind", NULL), &i);
	child_resource(str_at(y, "kind", NULL), &j);
	if (i != j)
		return i < j ? -1 : 1;
	nx = str_at(x, "metadata", "name");
	ny = str_at(y, "metadata", "name");
	return strcmp(nx ? nx : "", ny ? ny : "");
}

static void
sort_children(cJSON *arr)
{
	int n = cJSON_GetArraySize(arr), i;
	cJSON **v;

	if (n < 2)
		return;
	v = xcalloc((size_t)n, sizeof(*v));
	for (i = 0; i < n; i++)
		v[i] = cJSON_DetachItemFromArray(arr, 0);
	qsort(v, (size_t)n, sizeof(*v), child_cmp);
	for (i = 0; i < n; i++)
		cJSON_AddItemToArray(arr, v[i]);
	free(v);
}

/*
 * Current children owned by uid in ns, of every child resource, in the
 * order of child_resources then name (one indexed lookup by owner).
 */
static cJSON *
observed_children(struct store *s, const char *ns, const char *uid)
{
	cJSON *all = cJSON_CreateArray(), *items = NULL, *it, *next;
	size_t i, k;

	if (store_list_owned(s, uid, &items, NULL) < 0)
		return all;
	for (i = 0; i < ARRAY_SIZE(child_resources); i++)
		for (it = items->child; it; it = next) {
			const char *ins = str_at(it, "metadata", "namespace");

			next = it->next;
			if (child_resource(str_at(it, "kind", NULL), &k) && k == i &&
			    ins && strcmp(ins, ns) == 0 && owned_by(it, uid))
				cJSON_AddItemToArray(all, cJSON_DetachItemViaPointer(items, it));
		}
	cJSON_Delete(items);
	return all;
}

/*
 * Records a Kubernetes Event about pod (one object per pod and reason,
 * counted; rewritten only when the message changes). Owned by the service,
 * so it goes with it.
 */
static void
pod_event(struct store *s, const cJSON *svc, const cJSON *pod, const char *type,
    const char *reason, const char *message)
{
	const char *pname = str_at(pod, "metadata", "name");
	const char *ns = str_at(pod, "metadata", "namespace");
	cJSON *ev, *old = NULL, *io, *md;
	char name[320], lower[64], ts[32];
	size_t i;
	double count = 1;

	if (pname == NULL || ns == NULL)
		return;
	for (i = 0; reason[i] && i < sizeof(lower) - 1; i++)
		lower[i] = (char)(reason[i] >= 'A' && reason[i] <= 'Z' ? reason[i] + 32 : reason[i]);
	lower[i] = '\0';
	snprintf(name, sizeof(name), "%s.%s", pname, lower);
	store_timestamp(ts, sizeof(ts));
	if (store_get(s, "events", ns, name, &old, NULL) == 0) {
		const char *m = str_at(old, "message", NULL);
		const cJSON *c = cJSON_GetObjectItemCaseSensitive(old, "count");

		if (m && strcmp(m, message) == 0) {
			cJSON_Delete(old);
			return;
		}
		if (cJSON_IsNumber(c))
			count = c->valuedouble + 1;
	}
	ev = cJSON_CreateObject();
	cJSON_AddStringToObject(ev, "apiVersion", "v1");
	cJSON_AddStringToObject(ev, "kind", "Event");
	md = cJSON_AddObjectToObject(ev, "metadata");
	cJSON_AddStringToObject(md, "name", name);
	cJSON_AddStringToObject(md, "namespace", ns);
	io = cJSON_AddObjectToObject(ev, "involvedObject");
	cJSON_AddStringToObject(io, "apiVersion", "v1");
	cJSON_AddStringToObject(io, "kind", "Pod");
	cJSON_AddStringToObject(io, "name", pname);
	cJSON_AddStringToObject(io, "namespace", ns);
	cJSON_AddStringToObject(ev, "type", type);
	cJSON_AddStringToObject(ev, "reason", reason);
	cJSON_AddStringToObject(ev, "message", message);
	cJSON_AddNumberToObject(ev, "count", count);
	cJSON_AddStringToObject(ev, "firstTimestamp", old && str_at(old, "firstTimestamp", NULL) ?
	    str_at(old, "firstTimestamp", NULL) : ts);
	cJSON_AddStringToObject(ev, "lastTimestamp", ts);
	cJSON_AddStringToObject(cJSON_AddObjectToObject(ev, "source"), "component",
	    "llmd-scheduler");
	set_owner(ev, svc);
	if (old)
		store_update(s, "events", ev, 0, NULL, NULL, NULL);
	else
		store_create(s, "events", ev, NULL, NULL);
	cJSON_Delete(ev);
	cJSON_Delete(old);
}

/*
 * Places the service's unbound pods (among observed, its children) on view's
 * nodes next to the bound pods; bound pods replace theirs in observed and
 * their GPUs are added to view for the next service of the batch.
 */
static void
schedule_pods(struct store *s, const cJSON *svc, const char *ns, const char *uid,
    struct batch_view *view, cJSON *observed)
{
	cJSON *mine = cJSON_CreateArray(), *bound = NULL, *it, **orig = NULL;
	struct placement_result res;
	int n = 0, i;

	cJSON_ArrayForEach(it, observed) {
		const char *k = str_at(it, "kind", NULL), *ins = str_at(it, "metadata", "namespace");

		if (k && strcmp(k, "Pod") == 0 && !str_at(it, "spec", "nodeName") &&
		    ins && strcmp(ins, ns) == 0 && owned_by(it, uid)) {
			orig = xreallocarray(orig, (size_t)n + 1, sizeof(*orig));
			orig[n++] = it;
			cJSON_AddItemToArray(mine, cJSON_Duplicate(it, 1));
		}
	}
	if (n == 0 || batch_view_load(s, view) < 0)
		goto out;
	bound = bound_for_placement(view, observed);
	if (placement_schedule(mine, view->nodes, bound, &res) < 0)
		goto out;
	cJSON_ArrayForEach(it, mine) {
		const char *node = str_at(it, "spec", "nodeName");
		const char *why = str_at(res.failures, str_at(it, "metadata", "name"), NULL);
		char msg[600];
		cJSON *out = NULL;

		if (node) {
			if (store_update(s, "pods", it, 0, &out, NULL, NULL) == 0) {
				usage_add(view, node, derive_pod_gpus(it));
				for (i = 0; i < n; i++)
					if (strcmp(str_at(orig[i], "metadata", "name"),
					    str_at(it, "metadata", "name")) == 0)
						break;
				observed_put(observed, i < n ? orig[i] : NULL, out);
				if (i < n)
					orig[i] = out;  /* the old one was freed */
			}
			snprintf(msg, sizeof(msg), "Successfully assigned %s/%s to %s", ns,
			    str_at(it, "metadata", "name"), node);
			pod_event(s, svc, it, "Normal", "Scheduled", msg);
		} else if (why) {
			pod_event(s, svc, it, "Warning", "FailedScheduling", why);
			if (m_placement_failures)
				metric_add(m_placement_failures, NULL, 1);
		}
	}
	placement_result_release(&res);
out:
	cJSON_Delete(bound);
	cJSON_Delete(mine);
	free(orig);
}

/* Status when the logic could not compute one. */
static cJSON *
fallback_status(const cJSON *svc, const struct llmd_err *err, const char *now)
{
	cJSON *st = cJSON_CreateObject(), *conds, *c;
	const cJSON *g = cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(svc, "metadata"), "generation");
	const cJSON *old = cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(svc, "status"), "conditions");
	const cJSON *oc;
	const char *ts = now;

	cJSON_ArrayForEach(oc, old)
		if (strcmp(str_at(oc, "type", NULL) ? str_at(oc, "type", NULL) : "",
		    "Ready") == 0 && str_at(oc, "lastTransitionTime", NULL) &&
		    strcmp(str_at(oc, "status", NULL) ? str_at(oc, "status", NULL) : "",
		    "False") == 0)
			ts = str_at(oc, "lastTransitionTime", NULL);
	cJSON_AddNumberToObject(st, "observedGeneration", cJSON_IsNumber(g) ? g->valuedouble : 1);
	conds = cJSON_AddArrayToObject(st, "conditions");
	c = cJSON_CreateObject();
	cJSON_AddStringToObject(c, "type", "Ready");
	cJSON_AddStringToObject(c, "status", "False");
	cJSON_AddStringToObject(c, "lastTransitionTime", ts);
	cJSON_AddStringToObject(c, "reason", "ReconcileError");
	cJSON_AddStringToObject(c, "message", err && err->msg[0] ? err->msg :
	    "reconcile failed");
	cJSON_AddItemToArray(conds, c);
	return st;
}

#define DEFAULT_GATEWAY "kserve-ingress-gateway"


/* "host:port" of the default Gateway: status.addresses[0] and its first
 * listener's port; -ENOENT while no router has registered it. */
static int
default_gateway_address(struct store *s, char *out, size_t outlen)
{
	cJSON *gw = NULL;
	const cJSON *addr, *l;
	const char *host;
	int rc;

	if ((rc = store_get(s, "gateways", LLMD_SYSTEM_NAMESPACE, DEFAULT_GATEWAY, &gw, NULL)) < 0)
		return rc;
	addr = cJSON_GetArrayItem(json_member(json_member(gw, "status"), "addresses"), 0);
	l = cJSON_GetArrayItem(json_member(json_member(gw, "spec"), "listeners"), 0);
	host = json_member_str(addr, "value");
	rc = -ENOENT;
	if (host != NULL && *host != '\0') {
		const cJSON *port = json_member(l, "port");
		if (cJSON_IsNumber(port) && port->valueint != 80)
			snprintf(out, outlen, strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port->valueint);
		else
			snprintf(out, outlen, "%s", host);
		rc = 0;
	}
	cJSON_Delete(gw);
	return rc;
}

static int
count_unbound(const cJSON *observed)
{
	const cJSON *it;
	int n = 0;

	cJSON_ArrayForEach(it, observed) {
		const char *k = str_at(it, "kind", NULL);

		n += k && strcmp(k, "Pod") == 0 && str_at(it, "spec", "nodeName") == NULL;
	}
	return n;
}

/* *unbound (if not NULL): the service's pods still without a node. */
static int
reconcile_one(struct store *s, const char *ns, const char *name, struct batch_view *view,
    int *unbound)
{
	struct cfg_cache cache = { s, { 0 }, 0 };
	struct reconcile_env env = { 0 };
	struct llmd_err e = LLMD_ERR_INIT, cerr = LLMD_ERR_INIT;
	cJSON *svc = NULL, *merged = NULL, *children = NULL, *observed = NULL;
	cJSON *status = NULL, *upd, *c;
	const char *uid;
	char now[32];
	size_t i;
	int rc, i2;

	if ((rc = store_get(s, SVC_RES, ns, name, &svc, &e)) < 0)
		return rc == -ENOENT ? 0 : rc;  /* deleted: the store removed its children */
	uid = str_at(svc, "metadata", "uid");
	env.get_config = get_config;
	env.ctx = &cache;
	/* status.url: the default Gateway's listener, as the router registered it */
	char gw_addr[300];
	env.gateway_name = DEFAULT_GATEWAY;
	env.gateway_namespace = LLMD_SYSTEM_NAMESPACE;
	if (default_gateway_address(s, gw_addr, sizeof(gw_addr)) == 0)
		env.gateway_address = gw_addr;
	rc = llmisvc_combine(svc, &env, &merged, &cerr);
	if (rc == 0 && (rc = llmisvc_derive(merged, &env, &children, &cerr)) < 0) {
		cJSON_Delete(merged);
		merged = NULL;
	}
	/* The children as stored: read once, then kept current by each write. */
	observed = observed_children(s, ns, uid);
	if (rc == 0 && cJSON_IsArray(children)) {
		cJSON *next;

		/* Pods on draining nodes: replacements first, the old ones after. */
		if (has_bound_pod(observed) && batch_view_load(s, view) == 0)
			surge_plan(children, observed, view->nodes);
		/* Write the desired children, then remove what is no longer desired. */
		cJSON_ArrayForEach(c, children)
			if ((rc = apply_child(s, svc, c, ns, observed)) < 0)
				log_warnx("reconcile %s/%s: child %s: %s", ns, name,
				    str_at(c, "metadata", "name"), strerror(-rc));
		for (c = observed->child; c; c = next) {
			const struct api_resource *r = child_resource(str_at(c, "kind", NULL), &i);

			next = c->next;
			if (r == NULL || in_desired(children, r->kind, str_at(c, "metadata", "name")))
				continue;
			if (store_delete(s, r->plural, ns, str_at(c, "metadata", "name"), 0,
			    NULL, NULL) == 0 && is_bound_pod(c) && view->loaded)
				usage_add(view, str_at(c, "spec", "nodeName"), -derive_pod_gpus(c));
			cJSON_Delete(cJSON_DetachItemViaPointer(observed, c));
		}
		schedule_pods(s, svc, ns, uid, view, observed);
		if (unbound != NULL)
			*unbound = count_unbound(observed);
		sort_children(observed);
		rc = 0;
	} else if (rc == 0) {
		rc = err_set(&cerr, -EINVAL, "", "derive returned no children");
	}
	store_timestamp(now, sizeof(now));
	if (llmisvc_status(svc, merged, rc < 0 ? &cerr : NULL, observed, &env, now,
	    &status) < 0 || status == NULL) {
		cJSON_Delete(status);
		status = fallback_status(svc, &cerr, now);
	}
	{
		const cJSON *g = cJSON_GetObjectItemCaseSensitive(
		    cJSON_GetObjectItemCaseSensitive(svc, "metadata"), "generation");

		cJSON_DeleteItemFromObjectCaseSensitive(status, "observedGeneration");
		cJSON_AddNumberToObject(status, "observedGeneration",
		    cJSON_IsNumber(g) ? g->valuedouble : 1);
	}
	upd = cJSON_Duplicate(svc, 1);
	cJSON_DeleteItemFromObjectCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(upd, "metadata"), "resourceVersion");
	cJSON_DeleteItemFromObjectCaseSensitive(upd, "status");
	cJSON_AddItemToObject(upd, "status", status);
	/* -ENOENT: deleted meanwhile, nothing to report. */
	if (store_update(s, SVC_RES, upd, STORE_STATUS, NULL, NULL, &e) < 0 &&
	    e.code != -ENOENT)
		log_warnx("reconcile %s/%s: status: %s", ns, name, e.msg);
	if (rc < 0)
		log_debug("reconcile %s/%s: %s", ns, name, cerr.msg);
	cJSON_Delete(upd);
	cJSON_Delete(observed);
	cJSON_Delete(children);
	cJSON_Delete(merged);
	cJSON_Delete(svc);
	for (i2 = 0; i2 < cache.n; i2++)
		cJSON_Delete(cache.held[i2]);
	return rc;
}

int
reconcile_service(struct store *s, const char *ns, const char *name)
{
	struct batch_view view = { 0 };
	int rc = reconcile_one(s, ns, name, &view, NULL);

	batch_view_release(&view);
	return rc;
}

/* ---- the queue (loop thread) ---- */

static void run_next(struct reconciler *r);

static void
key_free(struct key *k)
{
	if (k == NULL)
		return;
	free(k->ns);
	free(k->name);
	free(k);
}

void
reconciler_enqueue(struct reconciler *r, const char *ns, const char *name)
{
	struct key *k;

	for (k = r->head; k; k = k->next)
		if (strcmp(k->ns, ns) == 0 && strcmp(k->name, name) == 0)
			return;
	k = xcalloc(1, sizeof(*k));
	k->ns = xstrdup(ns);
	k->name = xstrdup(name);
	if (r->tail)
		r->tail->next = k;
	else
		r->head = k;
	r->tail = k;
	r->n_queued++;
	if (m_queue_depth)
		metric_set(m_queue_depth, NULL, (double)r->n_queued);
	if (!r->running)
		event_active(r->kick, 0, 0);
}

static void
enqueue_all(struct reconciler *r)
{
	cJSON *items = NULL, *it;

	if (store_list(r->store, SVC_RES, NULL, &items, NULL, NULL) < 0)
		return;
	cJSON_ArrayForEach(it, items) {
		const char *ns = str_at(it, "metadata", "namespace");
		const char *n = str_at(it, "metadata", "name");

		if (ns && n)
			reconciler_enqueue(r, ns, n);
	}
	cJSON_Delete(items);
}

static void
enqueue_pending(struct reconciler *r)
{
	const cJSON *it;

	cJSON_ArrayForEach(it, r->pending) {
		char ns[256];
		const char *slash = strchr(it->string, '/');

		if (slash == NULL || (size_t)(slash - it->string) >= sizeof(ns))
			continue;
		snprintf(ns, sizeof(ns), "%.*s", (int)(slash - it->string), it->string);
		reconciler_enqueue(r, ns, slash + 1);
	}
}

static int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
stop_at_first(const struct store_event *ev, void *arg)
{
	(void)ev;
	*(int *)arg = 1;
	return 1;
}

/* Did anyone write pods or nodes after rv (or is that history gone)? */
static int
others_wrote(struct store *s, int64_t rv)
{
	int any = 0;

	if (store_events_since(s, rv, "pods", NULL, stop_at_first, &any, NULL) < 0 ||
	    (!any && store_events_since(s, rv, "nodes", NULL, stop_at_first, &any, NULL) < 0))
		return 1;
	return any;
}

/*
 * Reconciles the batch in one store transaction (one fsync for all its
 * writes), sharing the nodes and bound pods between its services. Keys not
 * reached within BATCH_MS, or all of them when the commit fails, are left in
 * r->unfinished for done() to queue again.
 */
static void
work(void *arg)
{
	struct reconciler *r = arg;
	struct llmd_err e = LLMD_ERR_INIT;
	struct key *k;
	int64_t t0 = mono_ms();
	int batched = store_batch_begin(r->store, &e) == 0;
	int64_t lo = store_current_rv(r->store);

	if (!batched)
		log_warnx("reconcile: %s; one transaction per write", e.msg);
	if (__atomic_exchange_n(&r->view_stale, 0, __ATOMIC_ACQ_REL) ||
	    (r->view.loaded && others_wrote(r->store, r->view_rv)))
		batch_view_release(&r->view);
	if (!r->view.loaded)
		r->view_rv = lo;
	for (k = r->running; k; k = k->next) {
		if (k != r->running && mono_ms() - t0 > BATCH_MS) {
			r->unfinished = k;
			break;
		}
		int64_t t1 = mono_ms();
		k->unbound = 0;
		reconcile_one(r->store, k->ns, k->name, &r->view, &k->unbound);
		if (m_reconcile_seconds)
			metric_observe(m_reconcile_seconds, M_KIND, (double)(mono_ms() - t1) / 1000.0);
	}
	if (batched) {
		/* Before the commit makes the events visible to the loop. */
		__atomic_store_n(&r->own_lo, lo, __ATOMIC_RELEASE);
		__atomic_store_n(&r->own_hi, store_current_rv(r->store), __ATOMIC_RELEASE);
		r->view_rv = store_current_rv(r->store);
	}
	if (batched && store_batch_end(r->store, &e) < 0) {
		log_warnx("reconcile: commit: %s; retrying", e.msg);
		r->unfinished = r->running;
		/* The view counted what was not stored. */
		__atomic_store_n(&r->view_stale, 1, __ATOMIC_RELEASE);
	}
}

static void
done(void *arg)
{
	struct reconciler *r = arg;
	struct key *k, *next, *unfinished = r->unfinished;
	int requeue = 0;

	for (k = r->running; k; k = next) {
		next = k->next;
		if (k == unfinished)
			requeue = 1;
		if (requeue && !r->stopping) {
			reconciler_enqueue(r, k->ns, k->name);
		} else {
			char id[512];

			snprintf(id, sizeof(id), "%s/%s", k->ns, k->name);
			cJSON_DeleteItemFromObjectCaseSensitive(r->pending, id);
			if (k->unbound > 0)
				cJSON_AddNullToObject(r->pending, id);
		}
		key_free(k);
	}
	r->running = NULL;
	r->unfinished = NULL;
	if (r->stopping)
		return;
	watch_hub_pump(r->hub);
	run_next(r);
}

static void
run_next(struct reconciler *r)
{
	struct key *last;
	int n;

	if (r->running || r->head == NULL || r->stopping)
		return;
	r->running = last = r->head;
	for (n = 1; n < BATCH_MAX && last->next; n++)
		last = last->next;
	r->head = last->next;
	if (r->head == NULL)
		r->tail = NULL;
	last->next = NULL;
	r->n_queued = r->n_queued > (size_t)n ? r->n_queued - (size_t)n : 0;
	if (r->head == NULL)
		r->n_queued = 0;
	if (m_queue_depth)
		metric_set(m_queue_depth, NULL, (double)r->n_queued);
	workpool_run(r->wp, work, done, r);
}

static void
on_kick(evutil_socket_t fd, short what, void *arg)
{
	run_next(arg);
}

static void
on_resync(evutil_socket_t fd, short what, void *arg)
{
	struct reconciler *r = arg;

	__atomic_store_n(&r->view_stale, 1, __ATOMIC_RELEASE);
	enqueue_all(r);
}

/*
 * Did the node change in a way placement or status can see (labels, spec,
 * allocatable/capacity, Ready)? Agent heartbeats that only move timestamps
 * do not requeue every service.
 */
static int
node_changed(struct reconciler *r, const struct store_event *ev)
{
	const cJSON *o = ev->object, *st = cJSON_GetObjectItemCaseSensitive(o, "status"), *c;
	cJSON *fp, *old;
	int changed;

	fp = cJSON_CreateObject();
	cJSON_AddItemToObject(fp, "labels", cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(o, "metadata"), "labels"), 1));
	cJSON_AddItemToObject(fp, "spec", cJSON_Duplicate(
	    cJSON_GetObjectItemCaseSensitive(o, "spec"), 1));
	cJSON_AddItemToObject(fp, "allocatable", cJSON_Duplicate(
	    cJSON_GetObjectItemCaseSensitive(st, "allocatable"), 1));
	cJSON_AddItemToObject(fp, "capacity", cJSON_Duplicate(
	    cJSON_GetObjectItemCaseSensitive(st, "capacity"), 1));
	cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(st, "conditions"))
		if (str_at(c, "type", NULL) && strcmp(str_at(c, "type", NULL), "Ready") == 0 &&
		    str_at(c, "status", NULL))
			cJSON_AddStringToObject(fp, "ready", str_at(c, "status", NULL));
	if (ev->type == STORE_DELETED)
		cJSON_AddBoolToObject(fp, "deleted", 1);
	old = cJSON_GetObjectItemCaseSensitive(r->node_prints, ev->name);
	changed = old == NULL || !cJSON_Compare(old, fp, 1);
	cJSON_DeleteItemFromObjectCaseSensitive(r->node_prints, ev->name);
	if (ev->type == STORE_DELETED)
		cJSON_Delete(fp);
	else
		cJSON_AddItemToObject(r->node_prints, ev->name, fp);
	return changed;
}

static void
on_event(const struct store_event *ev, void *arg)
{
	struct reconciler *r = arg;
	const char *owner;

	/*
	 * A bound pod went (ours too: a scale-down, a drained pod): its GPUs may
	 * place another service's pending pods.
	 */
	if (ev->type == STORE_DELETED && strcmp(ev->resource, "pods") == 0 &&
	    str_at(ev->object, "spec", "nodeName") != NULL)
		enqueue_pending(r);
	/*
	 * Written by a batch of ours (the batch held the writer, so nobody
	 * else's write has a version in its range): nothing new to reconcile.
	 */
	if (ev->rv > __atomic_load_n(&r->own_lo, __ATOMIC_ACQUIRE) &&
	    ev->rv <= __atomic_load_n(&r->own_hi, __ATOMIC_ACQUIRE))
		return;

	if (strcmp(ev->resource, SVC_RES) == 0) {
		/* Our own status writes come back here; reconciling is idempotent. */
		if (ev->type != STORE_DELETED) {
			reconciler_enqueue(r, ev->ns, ev->name);
		} else {
			char id[512];

			snprintf(id, sizeof(id), "%s/%s", ev->ns, ev->name);
			cJSON_DeleteItemFromObjectCaseSensitive(r->pending, id);
		}
		return;
	}
	if (strcmp(ev->resource, "nodes") == 0) {
		if (node_changed(r, ev))
			enqueue_all(r);
		return;
	}
	if (strcmp(ev->resource, CFG_RES) == 0 || (strcmp(ev->resource, "gateways") == 0 &&
	    strcmp(ev->name, DEFAULT_GATEWAY) == 0)) {
		/* a config, or the default gateway's address (status.url), changed */
		enqueue_all(r);
		return;
	}
	/* A child changed (e.g. pod status from an agent): its owner. */
	owner = NULL;
	{
		const cJSON *refs = cJSON_GetObjectItemCaseSensitive(
		    cJSON_GetObjectItemCaseSensitive(ev->object, "metadata"),
		    "ownerReferences"), *ref;

		cJSON_ArrayForEach(ref, refs)
			if (str_at(ref, "kind", NULL) &&
			    strcmp(str_at(ref, "kind", NULL), LLMISVC_KIND) == 0)
				owner = str_at(ref, "name", NULL);
	}
	/* Deleted children too: a drained pod is recreated elsewhere. */
	if (owner)
		reconciler_enqueue(r, ev->ns, owner);
}

struct reconciler *
reconciler_new(struct event_base *base, struct store *s, struct watch_hub *hub,
    struct workpool *wp, int64_t resync_ms)
{
	struct reconciler *r = xcalloc(1, sizeof(*r));
	struct timeval tv = { (time_t)(resync_ms / 1000), (suseconds_t)((resync_ms % 1000) * 1000) };

	metrics_init();
	r->base = base;
	r->store = s;
	r->hub = hub;
	r->wp = wp;
	r->node_prints = cJSON_CreateObject();
	r->pending = cJSON_CreateObject();
	r->kick = event_new(base, -1, 0, on_kick, r);
	r->resync = event_new(base, -1, EV_PERSIST, on_resync, r);
	if (resync_ms > 0)
		event_add(r->resync, &tv);
	watch_hub_subscribe(hub, on_event, r);
	enqueue_all(r);
	return r;
}

void
reconciler_free(struct reconciler *r)
{
	struct key *k, *n;

	if (r == NULL)
		return;
	r->stopping = 1;
	event_free(r->kick);
	event_free(r->resync);
	for (k = r->head; k; k = n) {
		n = k->next;
		key_free(k);
	}
	/* r->running is freed by done() when the workpool drains. */
	batch_view_release(&r->view);
	cJSON_Delete(r->node_prints);
	cJSON_Delete(r->pending);
	free(r);
}
