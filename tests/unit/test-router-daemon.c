/*
 * tests/unit/test-router-daemon.c - daemon objects to router config:
 * HTTPRoutes of this gateway only (hostnames x matches, model header,
 * rewrite, weights, timeouts), InferencePool endpoints from ready pods,
 * models and criticality from InferenceModels, the scheduler's
 * --configText, Service backends and Ingress rules; status.parents patches
 * that keep other gateways' entries and are not repeated once written.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "lib/json.h"
#include "lib/yaml.h"
#include "router/source-daemon.h"

static cJSON *
Y(const char *s)
{
	cJSON *v = NULL;
	struct llmd_err e = LLMD_ERR_INIT;

	cr_assert_eq(yaml_parse_one(s, strlen(s), NULL, &v, &e), 0, "%s %s", e.field, e.msg);
	return v;
}

static const char *ROUTES =
    "- metadata: {name: chat-route, namespace: team, generation: 3}\n"
    "  spec:\n"
    "    parentRefs: [{kind: Gateway, name: gw, namespace: llmd-system}]\n"
    "    hostnames: [a.example, b.example]\n"
    "    rules:\n"
    "    - matches:\n"
    "      - path: {type: PathPrefix, value: /team/chat}\n"
    "      - path: {type: PathPrefix, value: /}\n"
    "        headers: [{type: Exact, name: X-Gateway-Model-Name, value: chatm}]\n"
    "      filters: [{type: URLRewrite, urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /}}}]\n"
    "      backendRefs: [{kind: InferencePool, name: chat-pool, weight: 3},\n"
    "                    {name: chat-svc, port: 80, weight: 1}]\n"
    "      timeouts: {request: 45s}\n"
    "  status:\n"
    "    parents: [{parentRef: {name: other-gw, namespace: x}, conditions: []}]\n"
    "- metadata: {name: canary, namespace: team}\n"
    "  spec:\n"
    "    parentRefs: [{name: gw, namespace: llmd-system}]\n"
    "    rules:\n"
    "    - matches: [{path: {value: /c}, method: POST, headers: [{name: X-Canary, value: beta}]},\n"
    "                {path: {value: /re}, headers: [{type: RegularExpression, name: X, value: a.*}]}]\n"
    "      backendRefs: [{kind: InferencePool, name: chat-pool}]\n"
    "- metadata: {name: not-ours, namespace: team}\n"
    "  spec:\n"
    "    parentRefs: [{name: other-gw}]\n"
    "    rules: [{backendRefs: [{kind: InferencePool, name: chat-pool}]}]\n"
    "- metadata: {name: broken, namespace: team}\n"
    "  spec:\n"
    "    parentRefs: [{name: gw, namespace: llmd-system}]\n"
    "    rules: [{backendRefs: [{kind: InferencePool, name: nope}]}]\n";

static const char *POOLS =
    "- metadata: {name: chat-pool, namespace: team, generation: 1,\n"
    "             labels: {app.kubernetes.io/name: chat, app.kubernetes.io/component: sched}}\n"
    "  spec: {targetPortNumber: 8000, selector: {app: chat, kserve.io/component: workload}}\n";

static const char *MODELS =
    "- metadata: {name: m1, namespace: team}\n"
    "  spec: {modelName: chatm, poolRef: {name: chat-pool}, criticality: Sheddable}\n"
    "- metadata: {name: m2, namespace: team}\n"
    "  spec: {modelName: chatm-lora, poolRef: {name: chat-pool}}\n"
    "- metadata: {name: m3, namespace: other}\n"
    "  spec: {modelName: elsewhere, poolRef: {name: chat-pool}}\n";

static const char *SERVICES =
    "- metadata: {name: chat-svc, namespace: team}\n"
    "  spec: {selector: {app: chat}, ports: [{name: http, port: 80, targetPort: http}]}\n";

static const char *PODS =
    "- metadata: {name: p1, namespace: team, labels: {app: chat, kserve.io/component: workload}}\n"
    "  spec: {containers: [{name: main, ports: [{name: http, containerPort: 8000}]}]}\n"
    "  status: {phase: Running, podIP: 10.0.0.1}\n"
    "- metadata: {name: p2, namespace: team, labels: {app: chat, kserve.io/component: workload}}\n"
    "  spec: {containers: [{name: main, ports: [{name: http, containerPort: 8000}]}]}\n"
    "  status: {phase: Pending}\n"
    "- metadata: {name: p3, namespace: team, labels: {app: chat, kserve.io/component: workload}}\n"
    "  spec: {containers: [{name: main, ports: [{name: http, containerPort: 8000}]}]}\n"
    "  status: {phase: Failed, podIP: 10.0.0.3}\n"
    "- metadata: {name: p4, namespace: other, labels: {app: chat, kserve.io/component: workload}}\n"
    "  status: {phase: Running, podIP: 10.0.0.4}\n"
    "- metadata: {name: epp, namespace: team,\n"
    "             labels: {app.kubernetes.io/name: chat, app.kubernetes.io/component: sched}}\n"
    "  spec:\n"
    "    containers:\n"
    "    - name: main\n"
    "      args: [--configText, \"plugins: [{type: prefix-cache-scorer}, {type: queue-scorer}]\\n"
    "schedulingProfiles: [{name: default, plugins: [{pluginRef: prefix-cache-scorer, weight: 5}, {pluginRef: queue-scorer}]}]\"]\n"
    "  status: {phase: Running, podIP: 10.0.0.9}\n";

static const char *INGRESSES =
    "- metadata: {name: web, namespace: team}\n"
    "  spec:\n"
    "    ingressClassName: gw\n"
    "    rules: [{host: web.example, http: {paths: [{path: /api, pathType: Prefix,\n"
    "             backend: {service: {name: chat-svc, port: {number: 80}}}}]}}]\n"
    "- metadata: {name: theirs, namespace: team}\n"
    "  spec: {ingressClassName: nginx, rules: [{http: {paths: [{path: /, backend: {service: {name: chat-svc}}}]}}]}\n";

struct fx {
	cJSON *routes, *pools, *models, *services, *pods, *ingresses;
	struct daemon_objects o;
};

static void
load(struct fx *f)
{
	f->routes = Y(ROUTES);
	f->pools = Y(POOLS);
	f->models = Y(MODELS);
	f->services = Y(SERVICES);
	f->pods = Y(PODS);
	f->ingresses = Y(INGRESSES);
	f->o = (struct daemon_objects){ f->routes, f->ingresses, f->pools, f->models, f->services,
	    f->pods };
}

static void
unload(struct fx *f)
{
	cJSON_Delete(f->routes);
	cJSON_Delete(f->pools);
	cJSON_Delete(f->models);
	cJSON_Delete(f->services);
	cJSON_Delete(f->pods);
	cJSON_Delete(f->ingresses);
}

static const struct pool_config *
pool(const struct router_config *c, const char *name)
{
	const struct pool_config *p = router_config_pool(c, name);
	cr_assert_not_null(p, "pool %s", name);
	return p;
}

Test(router_daemon, translate_routes_pools_ingress)
{
	struct fx f;
	struct router_config c;
	const struct pool_config *p;
	cJSON *status = NULL;
	int n_chat = 0;

	load(&f);
	cr_assert_eq(daemon_translate(&f.o, "llmd-system", "gw", &c, &status, NULL), 0);
	p = pool(&c, "team/chat-pool");
	cr_assert_eq(p->n_endpoints, 1, "only the running pod with an IP, in the namespace");
	cr_assert_str_eq(p->endpoints[0], "10.0.0.1:8000");
	cr_assert_eq(p->n_models, 2);
	cr_assert_str_eq(p->models[0].name, "chatm");
	cr_assert_eq(p->models[0].crit, CRIT_SHEDDABLE);
	cr_assert_eq(p->models[1].crit, CRIT_CRITICAL, "InferenceModel default");
	cr_assert_float_eq(p->sched.w_prefix, 5, 1e-9, "from the scheduler's --configText");
	cr_assert_float_eq(p->sched.w_kv, 0, 1e-9);
	p = pool(&c, "service:team/chat-svc:80");
	cr_assert_eq(p->n_endpoints, 1);
	cr_assert_str_eq(p->endpoints[0], "10.0.0.1:8000", "targetPort by name");

	for (size_t i = 0; i < c.n_routes; i++) {
		const struct route_config *r = &c.routes[i];
		cr_assert_str_neq(r->name, "team/not-ours");
		if (strcmp(r->name, "team/chat-route") != 0)
			continue;
		n_chat++;
		cr_assert_not_null(r->host);
		cr_assert_str_eq(r->rewrite, "/");
		cr_assert_eq(r->timeout_ms, 45000);
		cr_assert_eq(r->n_backends, 2);
		cr_assert_str_eq(r->backends[0].pool, "team/chat-pool");
		cr_assert_eq(r->backends[0].weight, 3);
		if (strcmp(r->path_prefix, "/") == 0)
			cr_assert_str_eq(r->model, "chatm");
		else
			cr_assert_str_eq(r->path_prefix, "/team/chat");
	}
	cr_assert_eq(n_chat, 4, "2 hostnames x 2 matches");
	{
		int canary = 0;
		for (size_t i = 0; i < c.n_routes; i++) {
			const struct route_config *r = &c.routes[i];
			if (strcmp(r->name, "team/canary") != 0)
				continue;
			canary++;
			cr_assert_str_eq(r->path_prefix, "/c", "the regex match is not served");
			cr_assert_str_eq(r->method, "POST");
			cr_assert_eq(r->n_headers, 1);
			cr_assert_str_eq(r->headers[0].name, "X-Canary");
		}
		cr_assert_eq(canary, 1);
	}
	{
		int web = 0, theirs = 0;
		for (size_t i = 0; i < c.n_routes; i++) {
			web += strcmp(c.routes[i].name, "team/web") == 0 &&
			    strcmp(c.routes[i].host, "web.example") == 0 &&
			    strcmp(c.routes[i].path_prefix, "/api") == 0;
			theirs += strcmp(c.routes[i].name, "team/theirs") == 0;
		}
		cr_assert_eq(web, 1);
		cr_assert_eq(theirs, 0, "another ingress class");
	}

	/* status: the route (ours kept beside other-gw), the broken route, the pool */
	cr_assert_eq(cJSON_GetArraySize(status), 4, "chat-route, canary, broken, the pool");
	{
		const cJSON *s0 = cJSON_GetArrayItem(status, 0), *s1 = cJSON_GetArrayItem(status, 2);
		const cJSON *parents = cJSON_GetObjectItem(cJSON_GetObjectItem(
		    cJSON_GetObjectItem(s0, "body"), "status"), "parents");
		struct buf b = BUF_INIT;

		cr_assert_str_eq(cJSON_GetObjectItem(s0, "path")->valuestring,
		    "/apis/gateway.networking.k8s.io/v1/namespaces/team/httproutes/chat-route/status");
		cr_assert_eq(cJSON_GetArraySize(parents), 2, "other-gw's entry kept");
		json_print_compact(cJSON_GetArrayItem(parents, 1), &b);
		cr_assert(strstr(b.buf, "\"type\":\"Accepted\",\"status\":\"True\"") != NULL, "%s", b.buf);
		cr_assert(strstr(b.buf, "\"observedGeneration\":3") != NULL, "%s", b.buf);
		buf_reset(&b);
		json_print_compact(s1, &b);
		cr_assert(strstr(b.buf, "BackendNotFound") != NULL, "%s", b.buf);
		buf_release(&b);
		cr_assert_str_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(status, 3), "path")->valuestring,
		    "/apis/inference.networking.x-k8s.io/v1alpha2/namespaces/team/inferencepools/chat-pool/status");
		/* once written, no patch again */
		cJSON_ReplaceItemInObject(cJSON_GetArrayItem(f.routes, 0), "status",
		    cJSON_Duplicate(cJSON_GetObjectItem(cJSON_GetObjectItem(s0, "body"), "status"), 1));
	}
	cJSON_Delete(status);
	router_config_release(&c);
	cr_assert_eq(daemon_translate(&f.o, "llmd-system", "gw", &c, &status, NULL), 0);
	cr_assert_eq(cJSON_GetArraySize(status), 3, "the written route status is not repeated");
	cJSON_Delete(status);
	router_config_release(&c);
	/* another gateway serves nothing of it */
	cr_assert_eq(daemon_translate(&f.o, "llmd-system", "gw2", &c, NULL, NULL), 0);
	cr_assert_eq(c.n_routes, 0);
	router_config_release(&c);
	unload(&f);
}
