/*
 * tests/unit/test-router-config.c - the static config (pools, models with
 * criticality, routes, scheduler short form and upstream
 * EndpointPickerConfig), its errors with field paths, route matching and
 * prefix rewrite, the engine /metrics parser, and http_client_pause
 * (back-pressure on a streamed response).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>

#include "lib/http_client.h"
#include "lib/http_server.h"
#include "lib/yaml.h"
#include "router/router-config.h"
#include "router/gateway.h"
#include "router/pool.h"

static int
parse(const char *yaml, struct router_config *c, struct llmd_err *e)
{
	cJSON *doc;
	int rc;

	cr_assert_eq(yaml_parse_one(yaml, strlen(yaml), NULL, &doc, NULL), 0);
	rc = router_config_parse(doc, c, e);
	cJSON_Delete(doc);
	return rc;
}

Test(router_config, pools_routes_and_defaults)
{
	struct router_config c;
	struct llmd_err e = LLMD_ERR_INIT;

	cr_assert_eq(parse(
	    "pools:\n"
	    "- name: p1\n"
	    "  endpoints: [\"127.0.0.1:8001\", \"[::1]:8002\"]\n"
	    "  models: [base, {name: bulk, criticality: Sheddable}]\n"
	    "- name: p2\n"
	    "  endpoints: [\"h:1\"]\n"
	    "  scheduler: {queue: 1, prefixCache: 0, picker: round-robin, queueDepthThreshold: 7,\n"
	    "              metricsStalenessThreshold: 2s}\n"
	    "routes:\n"
	    "- {name: ns/svc, pool: p1, timeout: 30s}\n"
	    "- {name: canary, pathPrefix: /x/, rewrite: keep, host: a.example,\n"
	    "   backends: [{pool: p1, weight: 9}, {pool: p2, weight: 1}]}\n", &c, &e), 0,
	    "%s", e.msg);
	cr_assert_eq(c.n_pools, 2);
	cr_assert_eq(c.pools[0].n_endpoints, 2);
	cr_assert_eq(c.pools[0].models[0].crit, CRIT_CRITICAL);
	cr_assert_eq(c.pools[0].models[1].crit, CRIT_SHEDDABLE);
	cr_assert_float_eq(c.pools[0].sched.w_prefix, 3, 1e-9);
	cr_assert_float_eq(c.pools[1].sched.w_queue, 1, 1e-9);
	cr_assert_float_eq(c.pools[1].sched.w_kv, 2, 1e-9);
	cr_assert_float_eq(c.pools[1].sched.w_prefix, 0, 1e-9);
	cr_assert_eq(c.pools[1].sched.picker, PICKER_ROUND_ROBIN);
	cr_assert_eq(c.pools[1].sched.queue_threshold, 7);
	cr_assert_eq(c.pools[1].sched.staleness_ms, 2000);
	cr_assert_str_eq(c.routes[0].path_prefix, "/ns/svc");
	cr_assert_str_eq(c.routes[0].rewrite, "/");
	cr_assert_eq(c.routes[0].timeout_ms, 30000);
	cr_assert_str_eq(c.routes[1].path_prefix, "/x");
	cr_assert_null(c.routes[1].rewrite);
	cr_assert_eq(c.routes[1].n_backends, 2);
	cr_assert_eq(c.routes[1].backends[0].weight, 9);
	router_config_release(&c);
}

Test(router_config, upstream_endpoint_picker_config)
{
	struct router_config c;
	struct llmd_err e = LLMD_ERR_INIT;

	cr_assert_eq(parse(
	    "pools:\n"
	    "- name: p\n"
	    "  scheduler:\n"
	    "    apiVersion: inference.networking.x-k8s.io/v1alpha1\n"
	    "    kind: EndpointPickerConfig\n"
	    "    plugins:\n"
	    "    - type: prefix-cache-scorer\n"
	    "      parameters: {blockSizeTokens: 64, lruCapacityPerServer: 1000}\n"
	    "    - {type: queue-scorer}\n"
	    "    - {name: lora, type: lora-affinity-scorer}\n"
	    "    - {type: max-score-picker}\n"
	    "    schedulingProfiles:\n"
	    "    - name: default\n"
	    "      plugins: [{pluginRef: prefix-cache-scorer, weight: 2}, {pluginRef: lora, weight: 5},\n"
	    "                {pluginRef: queue-scorer}]\n", &c, &e), 0, "%s", e.msg);
	cr_assert_float_eq(c.pools[0].sched.w_prefix, 2, 1e-9);
	cr_assert_float_eq(c.pools[0].sched.w_lora, 5, 1e-9);
	cr_assert_float_eq(c.pools[0].sched.w_queue, 1, 1e-9);
	cr_assert_float_eq(c.pools[0].sched.w_kv, 0, 1e-9, "not listed: off");
	cr_assert_eq(c.pools[0].sched.block_size_tokens, 64);
	cr_assert_eq(c.pools[0].sched.lru_capacity, 1000);
	router_config_release(&c);
}

Test(router_config, errors_name_the_field)
{
	struct router_config c;
	struct llmd_err e = LLMD_ERR_INIT;

	cr_assert_lt(parse("pools:\n- name: p\n  endpoints: [nohostport]\n", &c, &e), 0);
	cr_assert_str_eq(e.field, "pools[0].endpoints[0]");
	err_clear(&e);
	cr_assert_lt(parse("pools:\n- name: p\n  models: [{name: m, criticality: Urgent}]\n",
	    &c, &e), 0);
	cr_assert_str_eq(e.field, "pools[0].models[0].criticality");
	err_clear(&e);
	cr_assert_lt(parse("pools: [{name: p}]\nroutes: [{name: r, pool: q}]\n", &c, &e), 0);
	cr_assert_str_eq(e.field, "routes[0].backends");
	cr_assert(strstr(e.msg, "unknown pool q") != NULL);
	err_clear(&e);
	cr_assert_lt(parse("pools: [{name: p}, {name: p}]\n", &c, &e), 0);
	cr_assert_str_eq(e.field, "pools[1].name");
	err_clear(&e);
	cr_assert_lt(parse("pools: [{name: p, scheduler: {queue: -1}}]\n", &c, &e), 0);
}

Test(router_routes, longest_prefix_host_and_model)
{
	struct router_config c;
	struct llmd_err e = LLMD_ERR_INIT;
	char *p;

	cr_assert_eq(parse(
	    "pools: [{name: p}]\n"
	    "routes:\n"
	    "- {name: root, pathPrefix: /, rewrite: keep, pool: p}\n"
	    "- {name: ns/a, pool: p}\n"
	    "- {name: ns/a-lora, pathPrefix: /ns/a, model: lora1, pool: p}\n"
	    "- {name: hosted, pathPrefix: /ns/a, host: '*.example.com', pool: p}\n"
	    "- {name: deep, pathPrefix: /ns/a/v1/x, pool: p}\n", &c, &e), 0, "%s", e.msg);
	cr_assert_eq(gateway_match_route(c.routes, c.n_routes, "h", "/ns/a/v1/models", NULL), 1);
	cr_assert_eq(gateway_match_route(c.routes, c.n_routes, "h", "/ns/a", NULL), 1);
	cr_assert_eq(gateway_match_route(c.routes, c.n_routes, "h", "/ns/ab/v1", NULL), 0,
	    "prefixes match whole segments");
	cr_assert_eq(gateway_match_route(c.routes, c.n_routes, "h", "/ns/a/v1", "lora1"), 2);
	cr_assert_eq(gateway_match_route(c.routes, c.n_routes, "x.example.com", "/ns/a/v1", "m"), 3);
	cr_assert_eq(gateway_match_route(c.routes, c.n_routes, "example.com", "/ns/a/v1", "m"), 1);
	cr_assert_eq(gateway_match_route(c.routes, c.n_routes, "h", "/ns/a/v1/x/y", NULL), 4);
	p = gateway_rewrite_path(&c.routes[1], "/ns/a/v1/chat/completions");
	cr_assert_str_eq(p, "/v1/chat/completions");
	free(p);
	p = gateway_rewrite_path(&c.routes[1], "/ns/a");
	cr_assert_str_eq(p, "/");
	free(p);
	p = gateway_rewrite_path(&c.routes[0], "/v1/models");
	cr_assert_str_eq(p, "/v1/models");
	free(p);
	router_config_release(&c);
	cr_assert_eq(parse("pools: [{name: p}]\nroutes: [{name: r, pathPrefix: /old, rewrite: /new/, pool: p}]\n",
	    &c, &e), 0);
	p = gateway_rewrite_path(&c.routes[0], "/old/v1/models");
	cr_assert_str_eq(p, "/new/v1/models");
	free(p);
	router_config_release(&c);
}

static const char *
hdr(void *ctx, const char *name)
{
	const char *const *kv = ctx;

	for (; kv[0] != NULL; kv += 2)
		if (strcasecmp(kv[0], name) == 0)
			return kv[1];
	return NULL;
}

Test(router_routes, method_and_header_rules)
{
	struct router_config c;
	struct llmd_err e = LLMD_ERR_INIT;
	const char *none[] = { NULL }, *beta[] = { "x-canary", "beta", NULL };
	const char *other[] = { "X-Canary", "gamma", NULL };
	struct route_request rq = { "h", "/svc/v1/completions", NULL, "POST", hdr, (void *)none };

	cr_assert_eq(parse(
	    "pools: [{name: p}]\n"
	    "routes:\n"
	    "- {name: base, pathPrefix: /svc, pool: p}\n"
	    "- {name: canary, pathPrefix: /svc, headers: {X-Canary: beta}, pool: p}\n"
	    "- {name: reads, pathPrefix: /svc, method: GET, pool: p}\n", &c, &e), 0, "%s", e.msg);
	cr_assert_eq(c.routes[1].n_headers, 1);
	cr_assert_eq(gateway_route_for(c.routes, c.n_routes, &rq), 0);
	rq.ctx = (void *)beta;
	cr_assert_eq(gateway_route_for(c.routes, c.n_routes, &rq), 1, "header rule, name case-insensitive");
	rq.ctx = (void *)other;
	cr_assert_eq(gateway_route_for(c.routes, c.n_routes, &rq), 0, "values are exact");
	rq.method = "GET";
	cr_assert_eq(gateway_route_for(c.routes, c.n_routes, &rq), 2);
	cr_assert_eq(gateway_match_route(c.routes, c.n_routes, "h", "/svc/x", NULL), 0,
	    "without method and headers only the plain route");
	router_config_release(&c);
	cr_assert_lt(parse("pools: [{name: p}]\nroutes: [{name: r, pool: p, headers: {A: 1}}]\n", &c, &e), 0);
	cr_assert_str_eq(e.field, "routes[0].headers.A");
}

Test(router_metrics, engine_metrics_parse)
{
	const char *text =
	    "# HELP vllm:num_requests_running x\n"
	    "vllm:num_requests_running{model_name=\"m\",engine=\"0\"} 3\n"
	    "vllm:num_requests_waiting{model_name=\"m\",engine=\"0\"} 7\n"
	    "vllm:kv_cache_usage_perc{model_name=\"m\",engine=\"0\"} 0.25\n"
	    "vllm:cache_config_info{block_size=\"32\",engine=\"0\",num_gpu_blocks=\"1234\"} 1\n"
	    "vllm:lora_requests_info{max_lora=\"2\",running_lora_adapters=\"a,b\",waiting_lora_adapters=\"\"} 100\n"
	    "vllm:lora_requests_info{max_lora=\"2\",running_lora_adapters=\"c\",waiting_lora_adapters=\"d\"} 200\n";
	struct endpoint_metrics m = { 0 };

	cr_assert_eq(endpoint_parse_metrics(text, strlen(text), &m), 0);
	cr_assert_float_eq(m.running, 3, 1e-9);
	cr_assert_float_eq(m.waiting, 7, 1e-9);
	cr_assert_float_eq(m.kv_usage, 0.25, 1e-9);
	cr_assert_eq(m.block_size, 32);
	cr_assert_eq(m.num_gpu_blocks, 1234);
	cr_assert_eq(m.max_lora, 2);
	cr_assert_str_eq(m.running_loras, "c", "the newest series");
	cr_assert_str_eq(m.waiting_loras, "d");
	cr_assert_eq(endpoint_parse_metrics("garbage\n", 8, &m), -EINVAL);
}

/* ---- http_client_pause ---- */

struct pause_fx {
	struct event_base *base;
	struct http_req *req;
	struct event *tick;
	int sent;
	size_t got;
	int ended;
	struct http_client_req *creq;
};

static void
pause_tick(evutil_socket_t fd, short what, void *arg)
{
	struct pause_fx *f = arg;
	char chunk[4096];

	(void)fd;
	(void)what;
	memset(chunk, 'z', sizeof(chunk));
	if (f->sent < 64) {
		http_stream_chunk(f->req, chunk, sizeof(chunk));
		f->sent++;
	} else if (f->sent == 64) {
		http_stream_end(f->req);
		f->sent++;
		event_del(f->tick);
	}
}

static void
pause_handler(struct http_req *req, void *arg)
{
	struct pause_fx *f = arg;
	struct timeval tv = { 0, 1000 };

	f->req = req;
	http_stream_start(req, 200, "text/plain");
	f->tick = event_new(f->base, -1, EV_PERSIST, pause_tick, f);
	event_add(f->tick, &tv);
}

static void
pause_data(const char *d, size_t n, void *arg)
{
	struct pause_fx *f = arg;

	(void)d;
	if (f->got == 0)
		http_client_pause(f->creq, 1);
	f->got += n;
}

static void
pause_end(const struct http_response *r, const struct llmd_err *e, void *arg)
{
	struct pause_fx *f = arg;

	(void)r;
	cr_assert_null(e);
	f->ended = 1;
	event_base_loopexit(f->base, NULL);
}

Test(router_backpressure, http_client_pause_stops_reading)
{
	struct pause_fx f = { 0 };
	struct http_server *srv;
	struct http_client *cl;
	struct llmd_err e = LLMD_ERR_INIT;
	struct timeval tv = { 0, 300000 };
	char url[64];
	size_t got_paused;
	int port;

	f.base = event_base_new();
	srv = http_server_new(f.base, &(struct http_server_config){ 0 }, &e);
	http_server_route(srv, "GET", "/s", pause_handler, &f);
	port = http_server_listen(srv, "127.0.0.1:0", &e);
	cr_assert_gt(port, 0);
	cl = http_client_new(f.base, NULL);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/s", port);
	f.creq = http_client_stream(cl, "GET", url, NULL, NULL, 0,
	    &(struct http_stream_cbs){ NULL, pause_data, pause_end }, &f, &e);
	cr_assert_not_null(f.creq);
	event_base_loopexit(f.base, &tv);
	event_base_dispatch(f.base);
	got_paused = f.got;
	cr_assert_gt(got_paused, 0);
	cr_assert_lt(got_paused, 64 * 4096, "paused: not everything was read");
	cr_assert_eq(f.ended, 0);
	cr_assert_eq(f.sent, 65, "the server finished writing into the socket buffers");
	http_client_pause(f.creq, 0);
	tv.tv_sec = 5;
	event_base_loopexit(f.base, &tv);
	event_base_dispatch(f.base);
	cr_assert_eq(f.ended, 1);
	cr_assert_eq(f.got, 64 * 4096);
	event_free(f.tick);
	http_client_free(cl);
	http_server_free(srv);
	event_base_free(f.base);
}
