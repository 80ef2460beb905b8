/*
 * daemon/reconciler.c - queue of service keys fed by store events, one
 * reconcile at a time on the workpool, and the reconcile pass itself:
 * combine -> derive -> write children -> placement -> status. See
 * reconciler.h.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "daemon/api.h"
#include "daemon/reconcile.h"
#include "daemon/reconciler.h"
#include "daemon/store.h"
#include "daemon/watch.h"
#include "lib/log.h"
#include "lib/util.h"
#include "lib/workpool.h"

#define SVC_RES "llminferenceservices"
#define CFG_RES "llminferenceserviceconfigs"

/* Child resources a service may own, in the order they are written. */
static const char *const child_resources[] = {
	"services", "deployments", "leaderworkersets", "inferencepools",
	"inferencemodels", "httproutes", "pods",
};

struct key {
	char *ns, *name;
	struct key *next;
};

struct reconciler {
	struct event_base *base;
	struct store *store;
	struct watch_hub *hub;
	struct workpool *wp;
	struct key *head, *tail;
	struct key *running;
	struct event *resync;
	struct event *kick;
	cJSON *node_prints;  /* node name -> what placement sees of it */
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

/* Writes one desired child; returns 0 or a negative errno. */
static int
apply_child(struct store *s, const cJSON *svc, cJSON *child, const char *ns)
{
	const char *kind = str_at(child, "kind", NULL);
	const struct api_resource *r = kind ? api_resource_by_name(kind) : NULL;
	cJSON *md, *have = NULL;
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
	rc = store_get(s, r->plural, ns, name, &have, &e);
	if (rc == -ENOENT) {
		rc = store_create(s, r->plural, child, NULL, &e);
		return rc == -EEXIST ? 0 : rc;
	}
	if (rc < 0)
		return rc;
	/* Placement decisions stick: keep a bound pod's node. */
	if (strcmp(r->plural, "pods") == 0) {
		const char *node = str_at(have, "spec", "nodeName");
		cJSON *spec = cJSON_GetObjectItemCaseSensitive(child, "spec");

		if (node && cJSON_IsObject(spec) && !str_at(child, "spec", "nodeName"))
			cJSON_AddStringToObject(spec, "nodeName", node);
	}
	rc = 0;
	if (child_differs(child, have))
		rc = store_update(s, r->plural, child, 0, NULL, NULL, &e);
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

/* Current children owned by uid, of every child resource. */
static cJSON *
observed_children(struct store *s, const char *ns, const char *uid)
{
	cJSON *all = cJSON_CreateArray();
	size_t i;

	for (i = 0; i < ARRAY_SIZE(child_resources); i++) {
		cJSON *items = NULL, *it, *next;

		if (store_list(s, child_resources[i], ns, &items, NULL, NULL) < 0)
			continue;
		for (it = items->child; it; it = next) {
			next = it->next;
			if (owned_by(it, uid))
				cJSON_AddItemToArray(all, cJSON_DetachItemViaPointer(items, it));
		}
		cJSON_Delete(items);
	}
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

static void
schedule_pods(struct store *s, const cJSON *svc, const char *ns, const char *uid)
{
	cJSON *nodes = NULL, *bound = NULL, *mine = cJSON_CreateArray(), *all = NULL;
	cJSON *it, *next;
	struct placement_result res;

	if (store_list(s, "nodes", NULL, &nodes, NULL, NULL) < 0 ||
	    store_list(s, "pods", NULL, &all, NULL, NULL) < 0)
		goto out;
	bound = cJSON_CreateArray();
	for (it = all->child; it; it = next) {
		next = it->next;
		if (str_at(it, "spec", "nodeName"))
			cJSON_AddItemToArray(bound, cJSON_DetachItemViaPointer(all, it));
		else if (strcmp(str_at(it, "metadata", "namespace"), ns) == 0 &&
		    owned_by(it, uid))
			cJSON_AddItemToArray(mine, cJSON_DetachItemViaPointer(all, it));
	}
	if (cJSON_GetArraySize(mine) == 0)
		goto out;
	if (placement_schedule(mine, nodes, bound, &res) < 0)
		goto out;
	cJSON_ArrayForEach(it, mine) {
		const char *node = str_at(it, "spec", "nodeName");
		const char *why = str_at(res.failures, str_at(it, "metadata", "name"), NULL);
		char msg[600];

		if (node) {
			store_update(s, "pods", it, 0, NULL, NULL, NULL);
			snprintf(msg, sizeof(msg), "Successfully assigned %s/%s to %s", ns,
			    str_at(it, "metadata", "name"), node);
			pod_event(s, svc, it, "Normal", "Scheduled", msg);
		} else if (why) {
			pod_event(s, svc, it, "Warning", "FailedScheduling", why);
		}
	}
	placement_result_release(&res);
out:
	cJSON_Delete(nodes);
	cJSON_Delete(bound);
	cJSON_Delete(mine);
	cJSON_Delete(all);
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

int
reconcile_service(struct store *s, const char *ns, const char *name)
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
	rc = llmisvc_combine(svc, &env, &merged, &cerr);
	if (rc == 0 && (rc = llmisvc_derive(merged, &env, &children, &cerr)) < 0) {
		cJSON_Delete(merged);
		merged = NULL;
	}
	if (rc == 0 && cJSON_IsArray(children)) {
		/* Write the desired children, then remove what is no longer desired. */
		cJSON_ArrayForEach(c, children)
			if ((rc = apply_child(s, svc, c, ns)) < 0)
				log_warnx("reconcile %s/%s: child %s: %s", ns, name,
				    str_at(c, "metadata", "name"), strerror(-rc));
		for (i = 0; i < ARRAY_SIZE(child_resources); i++) {
			const struct api_resource *r = api_resource_find("", child_resources[i]);
			cJSON *items = NULL, *it;

			for (i2 = 0; r == NULL && api_resources[i2]; i2++)
				if (strcmp(api_resources[i2]->plural, child_resources[i]) == 0)
					r = api_resources[i2];
			if (r == NULL || store_list(s, r->plural, ns, &items, NULL, NULL) < 0)
				continue;
			cJSON_ArrayForEach(it, items)
				if (owned_by(it, uid) && !in_desired(children, r->kind,
				    str_at(it, "metadata", "name")))
					store_delete(s, r->plural, ns, str_at(it, "metadata",
					    "name"), 0, NULL, NULL);
			cJSON_Delete(items);
		}
		schedule_pods(s, svc, ns, uid);
		rc = 0;
	} else if (rc == 0) {
		rc = err_set(&cerr, -EINVAL, "", "derive returned no children");
	}
	observed = observed_children(s, ns, uid);
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
work(void *arg)
{
	struct reconciler *r = arg;

	reconcile_service(r->store, r->running->ns, r->running->name);
}

static void
done(void *arg)
{
	struct reconciler *r = arg;

	key_free(r->running);
	r->running = NULL;
	if (r->stopping)
		return;
	watch_hub_pump(r->hub);
	run_next(r);
}

static void
run_next(struct reconciler *r)
{
	if (r->running || r->head == NULL || r->stopping)
		return;
	r->running = r->head;
	r->head = r->head->next;
	if (r->head == NULL)
		r->tail = NULL;
	r->running->next = NULL;
	if (r->wp == NULL || workpool_submit(r->wp, work, done, r) < 0) {
		work(r);
		done(r);
	}
}

static void
on_kick(evutil_socket_t fd, short what, void *arg)
{
	run_next(arg);
}

static void
on_resync(evutil_socket_t fd, short what, void *arg)
{
	enqueue_all(arg);
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

	if (strcmp(ev->resource, SVC_RES) == 0) {
		/* Our own status writes come back here; reconciling is idempotent. */
		if (ev->type != STORE_DELETED)
			reconciler_enqueue(r, ev->ns, ev->name);
		return;
	}
	if (strcmp(ev->resource, "nodes") == 0) {
		if (node_changed(r, ev))
			enqueue_all(r);
		return;
	}
	if (strcmp(ev->resource, CFG_RES) == 0) {
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

	r->base = base;
	r->store = s;
	r->hub = hub;
	r->wp = wp;
	r->node_prints = cJSON_CreateObject();
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
	cJSON_Delete(r->node_prints);
	free(r);
}
