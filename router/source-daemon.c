/*
 * router/source-daemon.c - the llmd daemon as the configuration source:
 * Kubernetes-shaped objects (HTTPRoute, Ingress, InferencePool,
 * InferenceModel, Service, Pod) to a struct router_config, the Gateway
 * registration, LIST + WATCH driven resyncs, and status.parents writes.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>

#include "lib/buf.h"
#include "lib/http_client.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/notify.h"
#include "lib/util.h"
#include "lib/yaml.h"
#include "router/gateway.h"
#include "router/source-daemon.h"

#define CONTROLLER_NAME "llmd.ai/router"

/* ---- small cJSON helpers ---- */

static cJSON *
first_child(const cJSON *a)
{
	return a != NULL ? a->child : NULL;
}

/* cJSON_ArrayForEach evaluating its array once */
#define EACH(el, arr) for ((el) = first_child(arr); (el) != NULL; (el) = (el)->next)

static double
num(const cJSON *o, const char *k)
{
	const cJSON *v = json_member(o, k);
	return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static const char *
meta(const cJSON *o, const char *k)
{
	return json_member_str(json_member(o, "metadata"), k);
}

static const char *
ns_of(const cJSON *o)
{
	const char *ns = meta(o, "namespace");
	return ns != NULL ? ns : "default";
}

/* every key of sel is in labels with the same value (sel non-empty) */
static int
labels_match(const cJSON *sel, const cJSON *labels)
{
	const cJSON *kv;

	if (!cJSON_IsObject(sel) || sel->child == NULL)
		return 0;
	EACH(kv, sel) {
		const char *v = json_member_str(labels, kv->string);
		if (!cJSON_IsString(kv) || v == NULL || strcmp(v, kv->valuestring) != 0)
			return 0;
	}
	return 1;
}

static int
pod_ready(const cJSON *pod)
{
	const cJSON *st = json_member(pod, "status");
	const char *phase = json_member_str(st, "phase"), *ip = json_member_str(st, "podIP");

	if (ip == NULL || *ip == '\0' || json_member(json_member(pod, "metadata"), "deletionTimestamp") != NULL)
		return 0;
	return phase == NULL || (strcmp(phase, "Failed") != 0 && strcmp(phase, "Succeeded") != 0);
}

/* a container port of the pod by name; -1 when none */
static int
pod_port_named(const cJSON *pod, const char *name)
{
	const cJSON *c, *p;

	EACH(c, json_member(json_member(pod, "spec"), "containers"))
		EACH(p, json_member(c, "ports"))
			if (json_member_str(p, "name") != NULL && strcmp(json_member_str(p, "name"), name) == 0 &&
			    num(p, "containerPort") > 0)
				return (int)num(p, "containerPort");
	return -1;
}

/* The port an agent bound the pod's HTTP server to (status.httpPort), or -1. */
static int
pod_host_port(const cJSON *pod)
{
	double p = num(json_member(pod, "status"), "httpPort");

	return p > 0 ? (int)p : -1;
}

static void
add_endpoint(struct pool_config *pc, const char *ip, int port)
{
	char a[300];

	if (strchr(ip, ':') != NULL)
		snprintf(a, sizeof(a), "[%s]:%d", ip, port);
	else
		snprintf(a, sizeof(a), "%s:%d", ip, port);
	for (size_t i = 0; i < pc->n_endpoints; i++)
		if (strcmp(pc->endpoints[i], a) == 0)
			return;
	pc->endpoints = xreallocarray(pc->endpoints, pc->n_endpoints + 2, sizeof(char *));
	pc->endpoints[pc->n_endpoints++] = xstrdup(a);
	pc->endpoints[pc->n_endpoints] = NULL;
}

struct tctx {
	const struct daemon_objects *o;
	const char *gw_ns, *gw_name;
	struct router_config *out;
	size_t cap_pools, cap_routes;
};

static struct pool_config *
new_pool(struct tctx *t, const char *name)
{
	struct pool_config *pc;

	for (size_t i = 0; i < t->out->n_pools; i++)
		if (strcmp(t->out->pools[i].name, name) == 0)
			return &t->out->pools[i];
	if (t->out->n_pools == t->cap_pools) {
		t->cap_pools = t->cap_pools ? 2 * t->cap_pools : 8;
		t->out->pools = xreallocarray(t->out->pools, t->cap_pools, sizeof(*pc));
	}
	pc = &t->out->pools[t->out->n_pools++];
	memset(pc, 0, sizeof(*pc));
	pc->name = xstrdup(name);
	pc->endpoints = xcalloc(1, sizeof(char *));
	sched_config_defaults(&pc->sched);
	return pc;
}

/* The scheduler config of a pool: --configText of its scheduler pod. */
static void
pool_sched(struct tctx *t, const cJSON *pool, struct pool_config *pc)
{
	const cJSON *pod, *c, *a;

	EACH(pod, t->o->pods) {
		if (strcmp(ns_of(pod), ns_of(pool)) != 0 ||
		    !labels_match(json_member(json_member(pool, "metadata"), "labels"), json_member(json_member(pod, "metadata"), "labels")))
			continue;
		EACH(c, json_member(json_member(pod, "spec"), "containers")) {
			EACH(a, json_member(c, "args")) {
				cJSON *doc = NULL;
				if (!cJSON_IsString(a) || strcmp(a->valuestring, "--configText") != 0 ||
				    !cJSON_IsString(a->next))
					continue;
				if (yaml_parse_one(a->next->valuestring, strlen(a->next->valuestring),
				    "configText", &doc, NULL) == 0) {
					struct sched_config s = pc->sched;
					if (sched_config_parse(doc, &s, NULL) == 0)
						pc->sched = s;
					cJSON_Delete(doc);
				}
				return;
			}
		}
	}
}

static void
translate_pools(struct tctx *t)
{
	const cJSON *pool, *pod, *m;
	char name[512];

	EACH(pool, t->o->pools) {
		const cJSON *spec = json_member(pool, "spec");
		const cJSON *tp = json_member(spec, "targetPortNumber");
		struct pool_config *pc;

		if (meta(pool, "name") == NULL)
			continue;
		snprintf(name, sizeof(name), "%s/%s", ns_of(pool), meta(pool, "name"));
		/* P/D: the pool's prefill pods (llm-d.ai/role=prefill) form a pool of
		 * their own that the decode pool's picker sends long prompts to */
		char pfname[600];
		int has_prefill = 0;
		snprintf(pfname, sizeof(pfname), "%s-prefill", name);
		EACH(pod, t->o->pods) {
			const char *role = json_member_str(json_member(json_member(pod, "metadata"), "labels"), "llm-d.ai/role");
			if (strcmp(ns_of(pod), ns_of(pool)) != 0 || !pod_ready(pod) || role == NULL ||
			    strcmp(role, "prefill") != 0 ||
			    !labels_match(json_member(spec, "selector"), json_member(json_member(pod, "metadata"), "labels")))
				continue;
			int hp = pod_host_port(pod) > 0 ? pod_host_port(pod) : pod_port_named(pod, "http");
			add_endpoint(new_pool(t, pfname), json_member_str(json_member(pod, "status"), "podIP"),
			    hp > 0 ? hp : cJSON_IsNumber(tp) ? tp->valueint : 8000);
			has_prefill = 1;
		}
		pc = new_pool(t, name);
		EACH(pod, t->o->pods) {
			const char *role = json_member_str(json_member(json_member(pod, "metadata"), "labels"), "llm-d.ai/role");
			if (strcmp(ns_of(pod), ns_of(pool)) == 0 && pod_ready(pod) &&
			    (role == NULL || strcmp(role, "prefill") != 0) &&
			    labels_match(json_member(spec, "selector"), json_member(json_member(pod, "metadata"), "labels"))) {
				int hp = pod_host_port(pod) > 0 ? pod_host_port(pod) :
				    pod_port_named(pod, "http");
				add_endpoint(pc, json_member_str(json_member(pod, "status"), "podIP"),
				    hp > 0 ? hp : cJSON_IsNumber(tp) ? tp->valueint : 8000);
			}
		}
		EACH(m, t->o->models) {
			const cJSON *ms = json_member(m, "spec");
			const char *mn = json_member_str(ms, "modelName"), *pr = json_member_str(json_member(ms, "poolRef"), "name");
			const char *crit = json_member_str(ms, "criticality");
			if (mn == NULL || pr == NULL || strcmp(ns_of(m), ns_of(pool)) != 0 ||
			    strcmp(pr, meta(pool, "name")) != 0)
				continue;
			pc->models = xreallocarray(pc->models, pc->n_models + 1, sizeof(*pc->models));
			pc->models[pc->n_models].name = xstrdup(mn);
			pc->models[pc->n_models].crit = CRIT_CRITICAL;
			if (crit != NULL)
				criticality_parse(crit, &pc->models[pc->n_models].crit);
			pc->n_models++;
		}
		pool_sched(t, pool, pc);
		if (has_prefill) {
			snprintf(pc->sched.prefill_pool, sizeof(pc->sched.prefill_pool), "%s", pfname);
			/* the prefill pool scores like its decode pool */
			struct pool_config *pf = new_pool(t, pfname);
			pc = new_pool(t, name);
			struct sched_config keep = pc->sched;
			keep.prefill_pool[0] = '\0';
			pf->sched = keep;
		}
	}
}

/* A pool for a Service backend: its ready pods at the target port. NULL when unknown. */
static const char *
service_pool(struct tctx *t, const char *ns, const char *svc, int port, const char *port_name)
{
	const cJSON *s, *p, *pod;
	char name[512];

	EACH(s, t->o->services) {
		const cJSON *spec = json_member(s, "spec");
		const cJSON *target = NULL;
		struct pool_config *pc;

		if (strcmp(ns_of(s), ns) != 0 || meta(s, "name") == NULL ||
		    strcmp(meta(s, "name"), svc) != 0)
			continue;
		EACH(p, json_member(spec, "ports")) {
			const cJSON *pn = json_member(p, "port");
			if ((port > 0 && cJSON_IsNumber(pn) && pn->valueint == port) ||
			    (port_name != NULL && json_member_str(p, "name") && !strcmp(json_member_str(p, "name"), port_name)) ||
			    (port <= 0 && port_name == NULL)) {
				target = json_member(p, "targetPort");
				if (target == NULL)
					target = pn;
				break;
			}
		}
		snprintf(name, sizeof(name), "service:%s/%s:%d", ns, svc, port);
		pc = new_pool(t, name);
		pc->sched.w_prefix = 0;    /* a Service balances: no scheduler */
		pc->sched.picker = PICKER_ROUND_ROBIN;
		EACH(pod, t->o->pods) {
			int tp = -1;
			if (strcmp(ns_of(pod), ns) != 0 || !pod_ready(pod) ||
			    !labels_match(json_member(spec, "selector"), json_member(json_member(pod, "metadata"), "labels")))
				continue;
			if (cJSON_IsNumber(target))
				tp = target->valueint;
			else if (cJSON_IsString(target))
				tp = pod_port_named(pod, target->valuestring);
			else if (port > 0)
				tp = port;
			/* an agent-run pod serves on the host port it was given */
			if (pod_host_port(pod) > 0)
				tp = pod_host_port(pod);
			if (tp > 0)
				add_endpoint(pc, json_member_str(json_member(pod, "status"), "podIP"), tp);
		}
		return pc->name;
	}
	return NULL;
}

static struct route_config *
new_route(struct tctx *t)
{
	struct route_config *r;

	if (t->out->n_routes == t->cap_routes) {
		t->cap_routes = t->cap_routes ? 2 * t->cap_routes : 8;
		t->out->routes = xreallocarray(t->out->routes, t->cap_routes, sizeof(*r));
	}
	r = &t->out->routes[t->out->n_routes++];
	memset(r, 0, sizeof(*r));
	return r;
}

static int
parent_is_us(struct tctx *t, const cJSON *route, const cJSON *pr)
{
	const char *kind = json_member_str(pr, "kind"), *name = json_member_str(pr, "name"), *ns = json_member_str(pr, "namespace");

	if (kind != NULL && strcmp(kind, "Gateway") != 0)
		return 0;
	if (ns == NULL)
		ns = ns_of(route);
	return name != NULL && strcmp(name, t->gw_name) == 0 && strcmp(ns, t->gw_ns) == 0;
}

static char *
prefix_of(const char *v)
{
	size_t n;

	if (v == NULL || v[0] != '/')
		return xstrdup("/");
	n = strlen(v);
	while (n > 1 && v[n - 1] == '/')
		n--;
	return xstrndup(v, n);
}

/* One HTTPRoute rule: its backends; returns 0 when some backend is unresolved. */
static int
rule_backends(struct tctx *t, const cJSON *route, const cJSON *rule, struct route_backend **out,
    size_t *n)
{
	const cJSON *b;
	int resolved = 1;

	*out = NULL;
	*n = 0;
	EACH(b, json_member(rule, "backendRefs")) {
		const char *kind = json_member_str(b, "kind"), *name = json_member_str(b, "name"), *ns = json_member_str(b, "namespace");
		const cJSON *w = json_member(b, "weight"), *port = json_member(b, "port");
		const char *pool = NULL;
		char pn[512];

		if (name == NULL)
			continue;
		if (ns == NULL)
			ns = ns_of(route);
		if (kind != NULL && strcmp(kind, "InferencePool") == 0) {
			snprintf(pn, sizeof(pn), "%s/%s", ns, name);
			for (size_t i = 0; i < t->out->n_pools; i++)
				if (strcmp(t->out->pools[i].name, pn) == 0)
					pool = t->out->pools[i].name;
		} else if (kind == NULL || strcmp(kind, "Service") == 0) {
			pool = service_pool(t, ns, name, cJSON_IsNumber(port) ? port->valueint : 0, NULL);
		}
		if (pool == NULL) {
			resolved = 0;
			continue;
		}
		*out = xreallocarray(*out, *n + 1, sizeof(**out));
		(*out)[*n].pool = xstrdup(pool);
		(*out)[*n].weight = cJSON_IsNumber(w) ? w->valueint : 1;
		(*n)++;
	}
	return resolved;
}

static void
copy_backends(struct route_config *r, const struct route_backend *b, size_t n)
{
	r->backends = xcalloc(n + 1, sizeof(*b));
	for (size_t i = 0; i < n; i++) {
		r->backends[i].pool = xstrdup(b[i].pool);
		r->backends[i].weight = b[i].weight;
	}
	r->n_backends = n;
}

/* Adds the routes of one HTTPRoute; returns its ResolvedRefs state. */
static int
translate_httproute(struct tctx *t, const cJSON *route)
{
	const cJSON *spec = json_member(route, "spec"), *rule, *hn = json_member(spec, "hostnames");
	int resolved = 1, nh = cJSON_IsArray(hn) ? cJSON_GetArraySize(hn) : 0;
	char rname[512];

	snprintf(rname, sizeof(rname), "%s/%s", ns_of(route), meta(route, "name"));
	EACH(rule, json_member(spec, "rules")) {
		struct route_backend *be;
		size_t nb;
		const cJSON *m, *f, *matches = json_member(rule, "matches");
		const char *rewrite = NULL;
		int64_t tmo = 0;
		const char *treq = json_member_str(json_member(rule, "timeouts"), "request");
		int nm = cJSON_IsArray(matches) ? cJSON_GetArraySize(matches) : 0;

		resolved &= rule_backends(t, route, rule, &be, &nb);
		if (treq != NULL)
			parse_duration_ms(treq, &tmo);
		EACH(f, json_member(rule, "filters")) {
			const cJSON *p = json_member(json_member(f, "urlRewrite"), "path");
			if (json_member_str(f, "type") && strcmp(json_member_str(f, "type"), "URLRewrite") == 0 &&
			    json_member_str(p, "type") && strcmp(json_member_str(p, "type"), "ReplacePrefixMatch") == 0)
				rewrite = json_member_str(p, "replacePrefixMatch");
		}
		for (int mi = 0; mi < (nm > 0 ? nm : 1) && nb > 0; mi++) {
			const char *model = NULL, *path = "/";
			const cJSON *h;
			int supported = 1;

			m = nm > 0 ? cJSON_GetArrayItem(matches, mi) : NULL;
			if (json_member_str(json_member(m, "path"), "value") != NULL)
				path = json_member_str(json_member(m, "path"), "value");
			EACH(h, json_member(m, "headers")) {
				const char *ht = json_member_str(h, "type");
				if (ht != NULL && strcmp(ht, "Exact") != 0)
					supported = 0;   /* RegularExpression: not served */
				else if (json_member_str(h, "name") &&
				    strcasecmp(json_member_str(h, "name"), "X-Gateway-Model-Name") == 0)
					model = json_member_str(h, "value");
			}
			if (json_member(m, "queryParams") != NULL || (json_member_str(json_member(m, "path"), "type") &&
			    strcmp(json_member_str(json_member(m, "path"), "type"), "RegularExpression") == 0))
				supported = 0;
			if (!supported)
				continue;
			for (int hi = 0; hi < (nh > 0 ? nh : 1); hi++) {
				const char *host = nh > 0 ? cJSON_GetArrayItem(hn, hi)->valuestring : NULL;
				struct route_config *r = new_route(t);

				r->name = xstrdup(rname);
				r->host = host != NULL && *host && strcmp(host, "*") ? xstrdup(host) : NULL;
				r->path_prefix = prefix_of(path);
				r->rewrite = rewrite != NULL ? xstrdup(rewrite) : NULL;
				r->model = model != NULL ? xstrdup(model) : NULL;
				r->method = json_member_str(m, "method") != NULL ? xstrdup(json_member_str(m, "method")) : NULL;
				EACH(h, json_member(m, "headers")) {
					if (!json_member_str(h, "name") || !json_member_str(h, "value") ||
					    strcasecmp(json_member_str(h, "name"), "X-Gateway-Model-Name") == 0)
						continue;
					r->headers = xreallocarray(r->headers, r->n_headers + 1,
					    sizeof(*r->headers));
					r->headers[r->n_headers].name = xstrdup(json_member_str(h, "name"));
					r->headers[r->n_headers].value = xstrdup(json_member_str(h, "value"));
					r->n_headers++;
				}
				r->timeout_ms = tmo;
				copy_backends(r, be, nb);
			}
		}
		for (size_t i = 0; i < nb; i++)
			free(be[i].pool);
		free(be);
	}
	return resolved;
}

static void
translate_ingress(struct tctx *t, const cJSON *ing)
{
	const cJSON *spec = json_member(ing, "spec"), *rule, *p;
	const char *cls = json_member_str(spec, "ingressClassName");
	char rname[512];

	if (cls != NULL && strcmp(cls, t->gw_name) != 0)
		return;
	snprintf(rname, sizeof(rname), "%s/%s", ns_of(ing), meta(ing, "name"));
	EACH(rule, json_member(spec, "rules")) {
		const char *host = json_member_str(rule, "host");
		EACH(p, json_member(json_member(rule, "http"), "paths")) {
			const cJSON *svc = json_member(json_member(p, "backend"), "service"), *port = json_member(svc, "port");
			const char *pool;
			struct route_config *r;

			if (json_member_str(svc, "name") == NULL)
				continue;
			pool = service_pool(t, ns_of(ing), json_member_str(svc, "name"),
			    (int)num(port, "number"),
			    json_member_str(port, "name"));
			if (pool == NULL)
				continue;
			r = new_route(t);
			r->name = xstrdup(rname);
			r->host = host != NULL && *host ? xstrdup(host) : NULL;
			r->path_prefix = prefix_of(json_member_str(p, "path"));
			r->backends = xcalloc(1, sizeof(*r->backends));
			r->backends[0].pool = xstrdup(pool);
			r->backends[0].weight = 1;
			r->n_backends = 1;
		}
	}
}

/* ---- status ---- */

static cJSON *
parent_ref(struct tctx *t)
{
	cJSON *r = cJSON_CreateObject();

	cJSON_AddStringToObject(r, "group", "gateway.networking.k8s.io");
	cJSON_AddStringToObject(r, "kind", "Gateway");
	cJSON_AddStringToObject(r, "name", t->gw_name);
	cJSON_AddStringToObject(r, "namespace", t->gw_ns);
	return r;
}

static cJSON *
condition(const char *type, int ok, const char *reason, const char *msg, double gen)
{
	cJSON *c = cJSON_CreateObject();

	cJSON_AddStringToObject(c, "type", type);
	cJSON_AddStringToObject(c, "status", ok ? "True" : "False");
	cJSON_AddStringToObject(c, "reason", reason);
	cJSON_AddStringToObject(c, "message", msg);
	cJSON_AddNumberToObject(c, "observedGeneration", gen);
	return c;
}

static int
same_parent(struct tctx *t, const cJSON *entry)
{
	const cJSON *pr = json_member(entry, "parentRef");
	const char *ns = json_member_str(pr, "namespace");

	return json_member_str(pr, "name") && strcmp(json_member_str(pr, "name"), t->gw_name) == 0 &&
	    (ns == NULL || strcmp(ns, t->gw_ns) == 0);
}

/*
 * Adds a status patch for obj when its status.KEY entry for our gateway
 * differs from entry (other gateways' entries are kept).
 */
static void
status_patch(struct tctx *t, cJSON *out, const char *api_path, const cJSON *obj, const char *key,
    cJSON *entry)
{
	const cJSON *cur = json_member(json_member(obj, "status"), key), *it;
	cJSON *list = cJSON_CreateArray(), *patch, *st, *p;
	int same = 0;

	EACH(it, cur) {
		if (same_parent(t, it)) {
			same = cJSON_Compare(it, entry, 1);
			continue;
		}
		cJSON_AddItemToArray(list, cJSON_Duplicate(it, 1));
	}
	if (same) {
		cJSON_Delete(list);
		cJSON_Delete(entry);
		return;
	}
	cJSON_AddItemToArray(list, entry);
	patch = cJSON_CreateObject();
	st = cJSON_AddObjectToObject(patch, "status");
	cJSON_AddItemToObject(st, key, list);
	p = cJSON_CreateObject();
	{
		struct buf b = BUF_INIT;
		buf_addf(&b, "%s/namespaces/%s/%s/%s/status", api_path, ns_of(obj), key[0] == 'p' &&
		    strcmp(key, "parents") == 0 ? "httproutes" : "inferencepools", meta(obj, "name"));
		cJSON_AddStringToObject(p, "path", b.buf);
		buf_release(&b);
	}
	cJSON_AddItemToObject(p, "body", patch);
	cJSON_AddItemToArray(out, p);
}

int
daemon_translate(const struct daemon_objects *o, const char *gw_ns, const char *gw_name,
    struct router_config *out, cJSON **status, struct llmd_err *e)
{
	struct tctx t = { o, gw_ns, gw_name, out, 0, 0 };
	cJSON *st = cJSON_CreateArray();
	const cJSON *route, *ing, *pool;
	char **served = NULL;
	size_t n_served = 0;

	(void)e;
	memset(out, 0, sizeof(*out));
	translate_pools(&t);
	EACH(route, o->routes) {
		const cJSON *pr;
		int ours = 0, resolved;
		double gen = num(json_member(route, "metadata"), "generation");
		cJSON *entry;

		if (meta(route, "name") == NULL)
			continue;
		EACH(pr, json_member(json_member(route, "spec"), "parentRefs"))
			ours |= parent_is_us(&t, route, pr);
		if (!ours)
			continue;
		resolved = translate_httproute(&t, route);
		entry = cJSON_CreateObject();
		cJSON_AddItemToObject(entry, "parentRef", parent_ref(&t));
		cJSON_AddStringToObject(entry, "controllerName", CONTROLLER_NAME);
		{
			cJSON *conds = cJSON_AddArrayToObject(entry, "conditions");
			cJSON_AddItemToArray(conds, condition("Accepted", 1, "Accepted",
			    "served by llmd-router", gen));
			cJSON_AddItemToArray(conds, condition("ResolvedRefs", resolved,
			    resolved ? "ResolvedRefs" : "BackendNotFound",
			    resolved ? "all backends resolved" : "a backendRef names no known pool or service",
			    gen));
		}
		status_patch(&t, st, "/apis/gateway.networking.k8s.io/v1", route, "parents", entry);
		/* the pools this route serves */
		{
			const cJSON *rule, *b;
			EACH(rule, json_member(json_member(route, "spec"), "rules"))
				EACH(b, json_member(rule, "backendRefs")) {
					char pn[512];
					if (!json_member_str(b, "kind") || strcmp(json_member_str(b, "kind"), "InferencePool") || !json_member_str(b, "name"))
						continue;
					snprintf(pn, sizeof(pn), "%s/%s", json_member_str(b, "namespace") ?
					    json_member_str(b, "namespace") : ns_of(route), json_member_str(b, "name"));
					served = xreallocarray(served, n_served + 1, sizeof(char *));
					served[n_served++] = xstrdup(pn);
				}
		}
	}
	EACH(ing, o->ingresses)
		if (meta(ing, "name") != NULL)
			translate_ingress(&t, ing);
	EACH(pool, o->pools) {
		char pn[512];
		int is = 0;
		double gen = num(json_member(pool, "metadata"), "generation");
		cJSON *entry, *conds;

		if (meta(pool, "name") == NULL)
			continue;
		snprintf(pn, sizeof(pn), "%s/%s", ns_of(pool), meta(pool, "name"));
		for (size_t i = 0; i < n_served; i++)
			is |= strcmp(served[i], pn) == 0;
		if (!is)
			continue;
		entry = cJSON_CreateObject();
		cJSON_AddItemToObject(entry, "parentRef", parent_ref(&t));
		conds = cJSON_AddArrayToObject(entry, "conditions");
		cJSON_AddItemToArray(conds, condition("Accepted", 1, "Accepted",
		    "scheduled in-process by llmd-router", gen));
		cJSON_AddItemToArray(conds, condition("ResolvedRefs", 1, "ResolvedRefs",
		    "the endpoint picker is built in", gen));
		status_patch(&t, st, "/apis/inference.networking.x-k8s.io/v1alpha2", pool, "parent",
		    entry);
	}
	for (size_t i = 0; i < n_served; i++)
		free(served[i]);
	free(served);
	if (status != NULL)
		*status = st;
	else
		cJSON_Delete(st);
	return 0;
}

/* ---- the running source ---- */

static const struct timeval retry_tv = { 2, 0 };

enum { K_ROUTES, K_INGRESSES, K_POOLS, K_MODELS, K_SERVICES, K_PODS, K_N };

static const char *const list_paths[K_N] = {
	"/apis/gateway.networking.k8s.io/v1/httproutes",
	"/apis/networking.k8s.io/v1/ingresses",
	"/apis/inference.networking.x-k8s.io/v1alpha2/inferencepools",
	"/apis/inference.networking.x-k8s.io/v1alpha2/inferencemodels",
	"/api/v1/services",
	"/api/v1/pods",
};

struct daemon_source;

struct watch {
	struct daemon_source *s;
	int kind;
	struct http_client_req *req;
};

struct daemon_source {
	struct event_base *base;
	struct gateway *gw;
	struct http_client *client;
	char *server, *auth, *gw_ns, *gw_name, *address;
	int port, tls;
	int registered, applied;
	struct event *resync, *retry;
	struct http_client_req *lists[K_N];
	cJSON *items[K_N];
	int pending;             /* LISTs in flight */
	int again;               /* a change arrived during a resync */
	struct watch watches[K_N];
	struct watch listers[K_N];
	int warned[K_N];
	struct http_client_req *writes[64];
};

static const char **
hdrs(struct daemon_source *s, const char *ctype)
{
	static const char *h[8];
	int n = 0;

	if (s->auth != NULL) {
		h[n++] = "Authorization";
		h[n++] = s->auth;
	}
	if (ctype != NULL) {
		h[n++] = "Content-Type";
		h[n++] = ctype;
	}
	h[n] = NULL;
	return h;
}

static void
schedule_resync(struct daemon_source *s, int ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	if (s->pending > 0) {
		s->again = 1;
		return;
	}
	if (!evtimer_pending(s->resync, NULL))
		evtimer_add(s->resync, &tv);
}

static void
write_done(const struct http_response *resp, const struct llmd_err *e, void *arg)
{
	struct http_client_req **slot = arg;

	*slot = NULL;
	if (e != NULL)
		log_warnx("daemon: status write failed: %s", e->msg);
	else if (resp->status >= 300)
		log_warnx("daemon: status write: HTTP %d %.200s", resp->status, resp->body);
}

static void
send_write(struct daemon_source *s, const char *method, const char *path, const cJSON *body)
{
	struct buf url = BUF_INIT, b = BUF_INIT;
	struct llmd_err e = LLMD_ERR_INIT;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(s->writes) && s->writes[i] != NULL; i++)
		;
	if (i == ARRAY_SIZE(s->writes))
		return;   /* too many in flight: the next resync writes it */
	buf_addf(&url, "%s%s", s->server, path);
	json_print_compact(body, &b);
	s->writes[i] = http_client_request(s->client, method, url.buf,
	    hdrs(s, strcmp(method, "PATCH") == 0 ? "application/merge-patch+json" : "application/json"),
	    b.buf, b.len, write_done, &s->writes[i], &e);
	if (s->writes[i] == NULL)
		log_warnx("daemon: %s %s: %s", method, path, e.msg);
	buf_release(&url);
	buf_release(&b);
}

static void
apply_lists(struct daemon_source *s)
{
	struct daemon_objects o = {
		s->items[K_ROUTES], s->items[K_INGRESSES], s->items[K_POOLS], s->items[K_MODELS],
		s->items[K_SERVICES], s->items[K_PODS],
	};
	struct router_config cfg;
	cJSON *status = NULL, *p;

	if (daemon_translate(&o, s->gw_ns, s->gw_name, &cfg, &status, NULL) < 0)
		return;
	log_debug("daemon: %zu pools, %zu routes", cfg.n_pools, cfg.n_routes);
	gateway_apply(s->gw, &cfg);
	if (!s->applied) {
		/* systemd readiness once the first configuration from the daemon is in */
		s->applied = 1;
		notify_ready("serving the daemon's routes");
	}
	EACH(p, status)
		send_write(s, "PATCH", json_member_str(p, "path"), json_member(p, "body"));
	cJSON_Delete(status);
}

static void start_watch(struct daemon_source *s, int kind);

static void
list_done(const struct http_response *resp, const struct llmd_err *e, void *arg)
{
	struct watch *w = arg;
	struct daemon_source *s = w->s;
	cJSON *doc = NULL;

	s->lists[w->kind] = NULL;
	s->pending--;
	if (e == NULL && resp->status == 200 &&
	    json_parse(resp->body, resp->body_len, &doc, NULL) == 0) {
		cJSON *items = cJSON_DetachItemFromObjectCaseSensitive(doc, "items");
		cJSON_Delete(s->items[w->kind]);
		s->items[w->kind] = items;
		cJSON_Delete(doc);
	} else if (resp != NULL && (resp->status == 404 || resp->status == 403)) {
		/* the daemon does not serve this kind, or our role may not read it */
		if (s->items[w->kind] != NULL || !s->warned[w->kind])
			log_warnx("daemon: LIST %s: HTTP %d; serving none of them", list_paths[w->kind],
			    resp->status);
		s->warned[w->kind] = 1;
		cJSON_Delete(s->items[w->kind]);
		s->items[w->kind] = NULL;
	} else {
		log_warnx("daemon: LIST %s: %s", list_paths[w->kind],
		    e != NULL ? e->msg : "bad response");
		s->again = 1;
	}
	if (s->pending > 0)
		return;
	apply_lists(s);
	if (s->again) {
		s->again = 0;
		schedule_resync(s, 500);
	}
}

static void
on_resync(evutil_socket_t fd, short what, void *arg)
{
	struct daemon_source *s = arg;

	(void)fd;
	(void)what;
	if (s->pending > 0) {
		s->again = 1;
		return;
	}
	for (int k = 0; k < K_N; k++) {
		struct llmd_err e = LLMD_ERR_INIT;
		struct buf url = BUF_INIT;

		buf_addf(&url, "%s%s", s->server, list_paths[k]);
		s->listers[k].s = s;
		s->listers[k].kind = k;
		s->lists[k] = http_client_request(s->client, "GET", url.buf, hdrs(s, NULL), NULL, 0,
		    list_done, &s->listers[k], &e);
		buf_release(&url);
		if (s->lists[k] != NULL)
			s->pending++;
		else
			log_warnx("daemon: LIST %s: %s", list_paths[k], e.msg);
	}
	for (int k = 0; k < K_N; k++)
		if (s->watches[k].req == NULL && !s->warned[k])
			start_watch(s, k);
}

/* Any watch event means something changed: resync soon (debounced). */
static void
watch_data(const char *d, size_t n, void *arg)
{
	struct watch *w = arg;

	(void)d;
	(void)n;
	schedule_resync(w->s, 20);
}

static void
watch_end(const struct http_response *resp, const struct llmd_err *e, void *arg)
{
	struct watch *w = arg;

	(void)resp;
	(void)e;
	w->req = NULL;
	/* restarted by the next resync; make sure there is one */
	schedule_resync(w->s, 1000);
}

static void
start_watch(struct daemon_source *s, int kind)
{
	struct llmd_err e = LLMD_ERR_INIT;
	struct buf url = BUF_INIT;

	buf_addf(&url, "%s%s?watch=true", s->server, list_paths[kind]);
	s->watches[kind].s = s;
	s->watches[kind].kind = kind;
	s->watches[kind].req = http_client_stream(s->client, "GET", url.buf, hdrs(s, NULL), NULL, 0,
	    &(struct http_stream_cbs){ NULL, watch_data, watch_end }, &s->watches[kind], &e);
	buf_release(&url);
}

static void
register_done(const struct http_response *resp, const struct llmd_err *e, void *arg)
{
	struct daemon_source *s = arg;
	struct buf path = BUF_INIT;
	cJSON *st, *addrs, *a, *conds, *c;

	if (e != NULL || (resp->status >= 300 && resp->status != 409)) {
		log_warnx("daemon: cannot register gateway %s/%s: %s", s->gw_ns, s->gw_name,
		    e != NULL ? e->msg : resp->body);
		evtimer_add(s->retry, &retry_tv);
		return;
	}
	buf_addf(&path, "/apis/gateway.networking.k8s.io/v1/namespaces/%s/gateways/%s",
	    s->gw_ns, s->gw_name);
	if (resp->status == 409) {
		/* it exists: make its listener ours */
		cJSON *patch = cJSON_CreateObject(), *spec = cJSON_AddObjectToObject(patch, "spec");
		cJSON *ls = cJSON_AddArrayToObject(spec, "listeners"), *l = cJSON_CreateObject();
		cJSON_AddStringToObject(spec, "gatewayClassName", "llmd");
		cJSON_AddStringToObject(l, "name", s->tls ? "https" : "http");
		cJSON_AddNumberToObject(l, "port", s->port);
		cJSON_AddStringToObject(l, "protocol", s->tls ? "HTTPS" : "HTTP");
		cJSON_AddItemToArray(ls, l);
		send_write(s, "PATCH", path.buf, patch);
		cJSON_Delete(patch);
	}
	st = cJSON_CreateObject();
	c = cJSON_AddObjectToObject(st, "status");
	addrs = cJSON_AddArrayToObject(c, "addresses");
	a = cJSON_CreateObject();
	cJSON_AddStringToObject(a, "type", strspn(s->address, "0123456789.:") == strlen(s->address) ?
	    "IPAddress" : "Hostname");
	cJSON_AddStringToObject(a, "value", s->address);
	cJSON_AddItemToArray(addrs, a);
	conds = cJSON_AddArrayToObject(c, "conditions");
	cJSON_AddItemToArray(conds, condition("Accepted", 1, "Accepted", "llmd-router", 0));
	cJSON_AddItemToArray(conds, condition("Programmed", 1, "Programmed", "listening", 0));
	buf_adds(&path, "/status");
	send_write(s, "PATCH", path.buf, st);
	cJSON_Delete(st);
	buf_release(&path);
	s->registered = 1;
	log_info("daemon: gateway %s/%s registered (%s:%d)", s->gw_ns, s->gw_name, s->address,
	    s->port);
	schedule_resync(s, 0);
}

static void
do_register(evutil_socket_t fd, short what, void *arg)
{
	struct daemon_source *s = arg;
	struct llmd_err e = LLMD_ERR_INIT;
	struct buf url = BUF_INIT, b = BUF_INIT;
	cJSON *gw = cJSON_CreateObject(), *md, *spec, *ls, *l;

	(void)fd;
	(void)what;
	cJSON_AddStringToObject(gw, "apiVersion", "gateway.networking.k8s.io/v1");
	cJSON_AddStringToObject(gw, "kind", "Gateway");
	md = cJSON_AddObjectToObject(gw, "metadata");
	cJSON_AddStringToObject(md, "name", s->gw_name);
	cJSON_AddStringToObject(md, "namespace", s->gw_ns);
	spec = cJSON_AddObjectToObject(gw, "spec");
	cJSON_AddStringToObject(spec, "gatewayClassName", "llmd");
	ls = cJSON_AddArrayToObject(spec, "listeners");
	l = cJSON_CreateObject();
	cJSON_AddStringToObject(l, "name", s->tls ? "https" : "http");
	cJSON_AddNumberToObject(l, "port", s->port);
	cJSON_AddStringToObject(l, "protocol", s->tls ? "HTTPS" : "HTTP");
	cJSON_AddItemToArray(ls, l);
	json_print_compact(gw, &b);
	cJSON_Delete(gw);
	buf_addf(&url, "%s/apis/gateway.networking.k8s.io/v1/namespaces/%s/gateways", s->server,
	    s->gw_ns);
	if (http_client_request(s->client, "POST", url.buf, hdrs(s, "application/json"), b.buf,
	    b.len, register_done, s, &e) == NULL) {
		log_warnx("daemon: %s", e.msg);
		evtimer_add(s->retry, &retry_tv);
	}
	buf_release(&url);
	buf_release(&b);
}

struct daemon_source *
daemon_source_new(struct event_base *base, struct gateway *gw, const char *server,
    const char *token, const char *gw_ns, const char *gw_name, const char *address, int port,
    int tls, struct llmd_err *e)
{
	struct daemon_source *s;
	size_t n;

	if (strncmp(server, "http://", 7) != 0) {
		err_set(e, -EINVAL, "--server", "must be an http:// URL");
		return NULL;
	}
	s = xcalloc(1, sizeof(*s));
	s->base = base;
	s->gw = gw;
	s->server = xstrdup(server);
	n = strlen(s->server);
	while (n > 0 && s->server[n - 1] == '/')
		s->server[--n] = '\0';
	if (token != NULL) {
		s->auth = xmalloc(strlen(token) + 8);
		sprintf(s->auth, "Bearer %s", token);
	}
	s->gw_ns = xstrdup(gw_ns);
	s->gw_name = xstrdup(gw_name);
	s->address = xstrdup(address);
	s->port = port;
	s->tls = tls;
	s->client = http_client_new(base, &(struct http_client_config){
	    .timeout_ms = 10000, .stream_timeout_ms = 0, .max_conns_per_host = 16 });
	s->resync = evtimer_new(base, on_resync, s);
	s->retry = evtimer_new(base, do_register, s);
	event_active(s->retry, EV_TIMEOUT, 0);
	/* a slow periodic resync besides the watches */
	return s;
}

void
daemon_source_free(struct daemon_source *s)
{
	if (s == NULL)
		return;
	http_client_free(s->client);
	event_free(s->resync);
	event_free(s->retry);
	for (int k = 0; k < K_N; k++)
		cJSON_Delete(s->items[k]);
	free(s->server);
	free(s->auth);
	free(s->gw_ns);
	free(s->gw_name);
	free(s->address);
	free(s);
}
