/*
 * daemon/conditions.c - status conditions of an LLMInferenceService computed
 * from its desired children (llmisvc_derive) and the observed ones (with
 * their status), plus status.url / addresses / observedGeneration.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/conditions.h"
#include "daemon/naming.h"
#include "daemon/reconcile.h"
#include "lib/buf.h"
#include "lib/util.h"
#include "lib/json.h"

static int
str_eq(const char *a, const char *b)
{
	return a && b && strcmp(a, b) == 0;
}

const cJSON *
cond_find(const cJSON *conds, const char *type)
{
	const cJSON *c;

	cJSON_ArrayForEach(c, conds) {
		if (str_eq(json_member_str(c, "type"), type))
			return c;
	}
	return NULL;
}

int
cond_is_true(const cJSON *conds, const char *type)
{
	return str_eq(json_member_str(cond_find(conds, type), "status"), "True");
}

int
cond_is_false(const cJSON *conds, const char *type)
{
	return str_eq(json_member_str(cond_find(conds, type), "status"), "False");
}

void
cond_set(cJSON *conds, const cJSON *prev, const char *type, const char *status,
    const char *reason, const char *message, const char *now)
{
	const cJSON *old = cond_find(prev, type);
	const char *ltt = now;
	cJSON *c = cJSON_CreateObject(), *it;
	int is_top = strcmp(type, COND_READY) == 0 || strcmp(type, COND_WORKLOADS) == 0 ||
	    strcmp(type, COND_ROUTER) == 0;

	if (old && str_eq(json_member_str(old, "status"), status) && json_member_str(old, "lastTransitionTime"))
		ltt = json_member_str(old, "lastTransitionTime");
	cJSON_AddStringToObject(c, "type", type);
	cJSON_AddStringToObject(c, "status", status);
	if (!is_top)
		cJSON_AddStringToObject(c, "severity", "Info");
	cJSON_AddStringToObject(c, "lastTransitionTime", ltt ? ltt : "");
	if (reason && reason[0])
		cJSON_AddStringToObject(c, "reason", reason);
	if (message && message[0])
		cJSON_AddStringToObject(c, "message", message);
	cJSON_ArrayForEach(it, conds) {
		if (str_eq(json_member_str(it, "type"), type)) {
			cJSON_ReplaceItemViaPointer(conds, it, c);
			return;
		}
	}
	cJSON_AddItemToArray(conds, c);
}

static const cJSON *
find_obj(const cJSON *arr, const char *kind, const char *name)
{
	const cJSON *o;

	cJSON_ArrayForEach(o, arr) {
		if (str_eq(json_member_str(o, "kind"), kind) && str_eq(json_member_str(json_member(o, "metadata"), "name"), name))
			return o;
	}
	return NULL;
}

static int
pod_ready(const cJSON *pod)
{
	const cJSON *st = json_member(pod, "status"), *conds = json_member(st, "conditions");

	if (cond_find(conds, "Ready"))
		return cond_is_true(conds, "Ready");
	return str_eq(json_member_str(st, "phase"), "Running");
}

/*
 * The pod's workload: the first owner reference that is not the service
 * (the reconciler puts the service's reference first for cascading deletes).
 */
static const char *
owner_name(const cJSON *pod)
{
	const cJSON *refs = json_member(json_member(pod, "metadata"), "ownerReferences"), *r;

	cJSON_ArrayForEach(r, refs)
		if (!str_eq(json_member_str(r, "kind"), "LLMInferenceService"))
			return json_member_str(r, "name");
	return json_member_str(cJSON_GetArrayItem(refs, 0), "name");
}

int
cond_workload_ready(const cJSON *observed, const cJSON *workload, char *reason, size_t rl,
    char *message, size_t ml)
{
	const char *kind = json_member_str(workload, "kind"), *name = json_member_str(json_member(workload, "metadata"), "name");
	const cJSON *obs = find_obj(observed, kind, name), *av, *p;
	const cJSON *spec = json_member(workload, "spec");
	int expected, ready = 0, unsched = 0;
	const char *why = NULL;

	av = cond_find(json_member(json_member(obs, "status"), "conditions"), "Available");
	if (av) {
		snprintf(reason, rl, "%s", json_member_str(av, "reason") ? json_member_str(av, "reason") : "");
		snprintf(message, ml, "%s", json_member_str(av, "message") ? json_member_str(av, "message") : "");
		return str_eq(json_member_str(av, "status"), "True");
	}
	{
		const cJSON *rp = json_member(spec, "replicas");

		expected = cJSON_IsNumber(rp) ? rp->valueint : 1;
	}
	if (str_eq(kind, "LeaderWorkerSet")) {
		const cJSON *sz = json_member(json_member(spec, "leaderWorkerTemplate"), "size");

		expected *= cJSON_IsNumber(sz) ? sz->valueint : 1;
	}
	cJSON_ArrayForEach(p, observed) {
		const cJSON *ps;

		if (!str_eq(json_member_str(p, "kind"), "Pod") || !str_eq(owner_name(p), name))
			continue;
		if (pod_ready(p)) {
			ready++;
			continue;
		}
		ps = cond_find(json_member(json_member(p, "status"), "conditions"), "PodScheduled");
		if (ps && str_eq(json_member_str(ps, "status"), "False")) {
			unsched++;
			if (!why)
				why = json_member_str(ps, "message");
		}
	}
	if (ready >= expected) {
		snprintf(reason, rl, "MinimumReplicasAvailable");
		snprintf(message, ml, "%s %s has %d/%d pods ready", kind, name, ready, expected);
		return 1;
	}
	if (unsched) {
		snprintf(reason, rl, "Unschedulable");
		snprintf(message, ml, "%s %s: %d/%d pods ready, %d unschedulable: %s", kind, name,
		    ready, expected, unsched, why ? why : "");
	} else {
		snprintf(reason, rl, "%s", obs ? "MinimumReplicasUnavailable" : "Progressing");
		snprintf(message, ml, "%s %s: %d/%d pods ready", kind, name, ready, expected);
	}
	return 0;
}

struct sctx {
	cJSON *conds;
	const cJSON *prev;
	const char *now;
};

static void
mark(struct sctx *s, const char *type, int ok, const char *reason, const char *msg)
{
	cond_set(s->conds, s->prev, type, ok ? "True" : "False", ok ? NULL : reason,
	    ok ? NULL : msg, s->now);
}

/* Of types[], the first one that is False, or NULL. */
static const cJSON *
first_false(const cJSON *conds, const char *const *types, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (cond_is_false(conds, types[i]))
			return cond_find(conds, types[i]);
	return NULL;
}

static void
workload_conditions(struct sctx *s, const cJSON *desired, const cJSON *observed)
{
	const cJSON *o;

	cJSON_ArrayForEach(o, desired) {
		const char *kind = json_member_str(o, "kind"), *comp;
		const cJSON *labels = json_member(json_member(o, "metadata"), "labels");
		char reason[128], msg[400];
		int ok, prefill;

		if (!str_eq(kind, "Deployment") && !str_eq(kind, "LeaderWorkerSet"))
			continue;
		comp = json_member_str(labels, LBL_COMPONENT);
		if (str_eq(comp, COMP_SCHEDULER)) {
			ok = cond_workload_ready(observed, o, reason, sizeof(reason), msg, sizeof(msg));
			mark(s, COND_SCHEDULER_WORKLOAD, ok, reason, msg);
			continue;
		}
		prefill = comp && strstr(comp, "prefill") != NULL;
		ok = cond_workload_ready(observed, o, reason, sizeof(reason), msg, sizeof(msg));
		mark(s, prefill ? COND_PREFILL_WORKLOAD : COND_MAIN_WORKLOAD, ok, reason, msg);
		if (str_eq(kind, "LeaderWorkerSet")) {
			/* workers: the pods with worker-index > 0 */
			const char *name = json_member_str(json_member(o, "metadata"), "name");
			const cJSON *p;
			int want = 0, have = 0;

			cJSON_ArrayForEach(p, desired) {
				const char *wi = json_member_str(json_member(json_member(p, "metadata"), "labels"),
				    "leaderworkerset.sigs.k8s.io/worker-index");
				const cJSON *op;

				if (!str_eq(json_member_str(p, "kind"), "Pod") || !str_eq(owner_name(p), name) ||
				    !wi || strcmp(wi, "0") == 0)
					continue;
				want++;
				op = find_obj(observed, "Pod", json_member_str(json_member(p, "metadata"), "name"));
				if (op && pod_ready(op))
					have++;
			}
			snprintf(msg, sizeof(msg), "%s %s: %d/%d worker pods ready", kind, name, have,
			    want);
			mark(s, prefill ? COND_PREFILL_WORKER_WORKLOAD : COND_WORKER_WORKLOAD,
			    have >= want, "WorkersNotReady", msg);
		}
	}
}

/* A route/pool whose status names a parent with Accepted=False is rejected. */
static const char *
rejected(const cJSON *o, const char *parents_key)
{
	const cJSON *p;

	cJSON_ArrayForEach(p, json_member(json_member(o, "status"), parents_key)) {
		const cJSON *a = cond_find(json_member(p, "conditions"), "Accepted");

		if (a && str_eq(json_member_str(a, "status"), "False"))
			return json_member_str(a, "message") ? json_member_str(a, "message") : "not accepted";
	}
	return NULL;
}

static void
router_conditions(struct sctx *s, const cJSON *name, const cJSON *ns, const cJSON *spec,
    const cJSON *desired, const cJSON *observed)
{
	const cJSON *router = json_member(spec, "router"), *r, *o;
	const cJSON *grefs = json_member(json_member(router, "gateway"), "refs");
	const cJSON *rrefs = json_member(json_member(json_member(router, "route"), "http"), "refs");
	const cJSON *poolref = json_member(json_member(json_member(router, "scheduler"), "pool"), "ref");
	struct buf missing = BUF_INIT, bad = BUF_INIT;

	/* Gateways */
	if (cJSON_IsArray(grefs) && grefs->child) {
		cJSON_ArrayForEach(r, grefs) {
			const char *gns = json_member_str(r, "namespace");
			const cJSON *gw = NULL;

			if (!gns || !gns[0])
				gns = ns->valuestring;
			cJSON_ArrayForEach(o, observed) {
				if (str_eq(json_member_str(o, "kind"), "Gateway") &&
				    str_eq(json_member_str(json_member(o, "metadata"), "name"), json_member_str(r, "name")) &&
				    str_eq(json_member_str(json_member(o, "metadata"), "namespace") ?
				    json_member_str(json_member(o, "metadata"), "namespace") : ns->valuestring, gns))
					gw = o;
			}
			if (!gw)
				buf_addf(&missing, "%sGateway %s/%s does not exist", missing.len ? "; " : "",
				    gns, json_member_str(r, "name"));
			else if (cond_is_false(json_member(json_member(gw, "status"), "conditions"), "Programmed"))
				buf_addf(&bad, "%sGateway %s/%s is not programmed", bad.len ? "; " : "", gns,
				    json_member_str(r, "name"));
		}
		if (missing.len)
			mark(s, COND_GATEWAYS, 0, "RefsInvalid", missing.buf);
		else
			mark(s, COND_GATEWAYS, !bad.len, "GatewaysNotReady", bad.buf);
	}
	buf_reset(&missing);
	buf_reset(&bad);
	/* HTTPRoutes: BYO refs must exist; the managed one must be observed and accepted */
	if (cJSON_IsArray(rrefs) && rrefs->child) {
		cJSON_ArrayForEach(r, rrefs) {
			if (!find_obj(observed, "HTTPRoute", json_member_str(r, "name")))
				buf_addf(&missing, "%sHTTPRoute %s/%s does not exist",
				    missing.len ? "; " : "", ns->valuestring, json_member_str(r, "name"));
		}
		mark(s, COND_HTTPROUTES, !missing.len, "RefsInvalid", missing.buf);
	} else if (router) {
		cJSON_ArrayForEach(o, desired) {
			const char *rn = json_member_str(json_member(o, "metadata"), "name");
			const cJSON *obs;
			const char *why;

			if (!str_eq(json_member_str(o, "kind"), "HTTPRoute"))
				continue;
			obs = find_obj(observed, "HTTPRoute", rn);
			if (!obs)
				buf_addf(&bad, "HTTPRoute %s/%s is not created yet", ns->valuestring, rn);
			else if ((why = rejected(obs, "parents")))
				buf_addf(&bad, "HTTPRoute %s/%s: %s", ns->valuestring, rn, why);
		}
		mark(s, COND_HTTPROUTES, !bad.len, "HTTPRoutesNotReady", bad.buf);
	}
	buf_reset(&bad);
	/* InferencePool */
	if (cJSON_IsObject(poolref) && json_member_str(poolref, "name")) {
		if (!find_obj(observed, "InferencePool", json_member_str(poolref, "name")))
			buf_addf(&bad, "InferencePool %s/%s does not exist", ns->valuestring,
			    json_member_str(poolref, "name"));
		mark(s, COND_INFERENCE_POOL, !bad.len, "InferencePoolFetchError", bad.buf);
	} else {
		int any = 0;

		cJSON_ArrayForEach(o, desired) {
			const char *pn = json_member_str(json_member(o, "metadata"), "name");
			const cJSON *obs;
			const char *why;

			if (!str_eq(json_member_str(o, "kind"), "InferencePool"))
				continue;
			any = 1;
			obs = find_obj(observed, "InferencePool", pn);
			if (!obs)
				buf_addf(&bad, "InferencePool %s/%s is not created yet", ns->valuestring, pn);
			else if ((why = rejected(obs, "parent")))
				buf_addf(&bad, "InferencePool %s/%s: %s", ns->valuestring, pn, why);
		}
		if (any)
			mark(s, COND_INFERENCE_POOL, !bad.len, "InferencePoolNotReady", bad.buf);
	}
	buf_release(&missing);
	buf_release(&bad);
	(void)name;
}

static void
set_url(cJSON *status, const cJSON *md, const cJSON *spec, const cJSON *observed,
    const struct reconcile_env *env)
{
	const cJSON *router = json_member(spec, "router");
	const cJSON *hspec = json_member(json_member(json_member(router, "route"), "http"), "spec");
	const cJSON *refs = json_member(json_member(json_member(router, "route"), "http"), "refs");

	/* bring-your-own routes: the first referenced route that exists */
	if (!cJSON_IsObject(hspec) && cJSON_IsArray(refs)) {
		const cJSON *r;

		cJSON_ArrayForEach(r, refs) {
			const cJSON *rt = find_obj(observed, "HTTPRoute", json_member_str(r, "name"));

			if (rt && cJSON_IsObject(json_member(rt, "spec"))) {
				hspec = json_member(rt, "spec");
				break;
			}
		}
	}
	const cJSON *m0 = cJSON_GetArrayItem(json_member(cJSON_GetArrayItem(json_member(hspec, "rules"), 0),
	    "matches"), 0);
	const char *path = json_member_str(json_member(m0, "path"), "value");
	const char *addr = env && env->gateway_address ? env->gateway_address : "localhost";
	struct buf u = BUF_INIT;
	cJSON *addrs, *a;

	if (!cJSON_IsObject(hspec))
		return;
	buf_addf(&u, "http://%s", addr);
	if (path && path[0] == '/')
		buf_adds(&u, path);
	else
		buf_addf(&u, "/%s/%s", json_member_str(md, "namespace") ? json_member_str(md, "namespace") : "default",
		    json_member_str(md, "name"));
	while (u.len > 8 && u.buf[u.len - 1] == '/')
		buf_setlen(&u, u.len - 1);
	cJSON_AddStringToObject(status, "url", u.buf);
	addrs = cJSON_AddArrayToObject(status, "addresses");
	a = cJSON_CreateObject();
	cJSON_AddStringToObject(a, "url", u.buf);
	cJSON_AddItemToArray(addrs, a);
	buf_release(&u);
}

int
llmisvc_status(const cJSON *svc, const cJSON *merged, const struct llmd_err *combine_err,
    const cJSON *observed, const struct reconcile_env *env, const char *now,
    cJSON **status)
{
	static const char *const wl_types[] = { COND_MAIN_WORKLOAD, COND_WORKER_WORKLOAD,
		COND_PREFILL_WORKLOAD, COND_PREFILL_WORKER_WORKLOAD };
	static const char *const rt_types[] = { COND_GATEWAYS, COND_HTTPROUTES,
		COND_INFERENCE_POOL, COND_SCHEDULER_WORKLOAD };
	const cJSON *md = json_member(svc, "metadata"), *prev = json_member(json_member(svc, "status"), "conditions");
	const cJSON *gen = json_member(md, "generation"), *f, *c;
	cJSON *st = cJSON_CreateObject(), *conds, *desired = NULL;
	struct sctx s;
	struct llmd_err de = LLMD_ERR_INIT;

	*status = NULL;
	if (!cJSON_IsObject(md) || !cJSON_IsString(json_member(md, "name"))) {
		cJSON_Delete(st);
		return -EINVAL;
	}
	if (cJSON_IsNumber(gen))
		cJSON_AddNumberToObject(st, "observedGeneration", gen->valuedouble);
	conds = cJSON_AddArrayToObject(st, "conditions");
	/* conditions are never removed: start from the previous set */
	cJSON_ArrayForEach(c, prev)
		cJSON_AddItemToArray(conds, cJSON_Duplicate(c, 1));
	s = (struct sctx){ conds, prev, now };

	if (!merged) {
		const char *msg = combine_err ? combine_err->msg : "failed to combine presets";

		mark(&s, COND_PRESETS_COMBINED, 0, "CombineBaseError", msg);
		mark(&s, COND_WORKLOADS, 0, "CombineBaseError", msg);
		mark(&s, COND_READY, 0, "CombineBaseError", msg);
		*status = st;
		return 0;
	}
	mark(&s, COND_PRESETS_COMBINED, 1, NULL, NULL);
	if (llmisvc_derive(merged, env, &desired, &de) < 0) {
		mark(&s, COND_MAIN_WORKLOAD, 0, "ReconcileWorkloadError", de.msg);
	} else {
		workload_conditions(&s, desired, observed);
		router_conditions(&s, json_member(json_member(merged, "metadata"), "name"),
		    json_member(json_member(merged, "metadata"), "namespace"), json_member(merged, "spec"), desired, observed);
	}
	f = first_false(conds, wl_types, ARRAY_SIZE(wl_types));
	cond_set(conds, prev, COND_WORKLOADS, f ? "False" : "True", f ? json_member_str(f, "reason") : NULL,
	    f ? json_member_str(f, "message") : NULL, now);
	f = first_false(conds, rt_types, ARRAY_SIZE(rt_types));
	cond_set(conds, prev, COND_ROUTER, f ? "False" : "True", f ? json_member_str(f, "reason") : NULL,
	    f ? json_member_str(f, "message") : NULL, now);
	{
		static const char *const top[] = { COND_WORKLOADS, COND_ROUTER };

		f = first_false(conds, top, ARRAY_SIZE(top));
		cond_set(conds, prev, COND_READY, f ? "False" : "True", f ? json_member_str(f, "reason") : NULL,
		    f ? json_member_str(f, "message") : NULL, now);
	}
	set_url(st, json_member(merged, "metadata"), json_member(merged, "spec"), observed, env);
	cJSON_Delete(desired);
	*status = st;
	return 0;
}
