/*
 * router/gateway.c - the gateway: listener, live pools and routes, route
 * matching and path rewrite, body parsing (once) into the picker's input,
 * auth checks, 4xx/5xx JSON answers, the router's /metrics and /healthz.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>

#include "lib/http_client.h"
#include "lib/http_server.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/util.h"
#include "router/gateway.h"
#include "router/picker.h"
#include "router/pool.h"
#include "router/proxy.h"

struct gateway {
	struct event_base *base;
	struct gateway_opts opts;
	struct http_server *srv;
	struct scraper *scraper;
	struct router_config cfg;      /* routes in use (pools' configs live in the pools) */
	struct pool **pools;
	size_t n_pools;
	struct metrics *metrics;
	struct metric_family *m_tokens, *m_ep_ready, *m_ep_waiting, *m_ep_kv, *m_ep_inflight;
	struct metric_family *m_no_route;
	struct proxy_env env;
	uint64_t rng;
};

/* ---- matching ---- */

static int
host_matches(const char *rule, const char *host)
{
	size_t rl, hl;

	if (rule == NULL)
		return 1;
	if (host == NULL)
		return 0;
	if (strcasecmp(rule, host) == 0)
		return 1;
	if (rule[0] == '*' && rule[1] == '.') {
		rl = strlen(rule + 1);
		hl = strlen(host);
		return hl > rl && strcasecmp(host + hl - rl, rule + 1) == 0;
	}
	return 0;
}

static int
prefix_matches(const char *prefix, const char *path)
{
	size_t n = strlen(prefix);

	if (strcmp(prefix, "/") == 0)
		return 1;
	return strncmp(path, prefix, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

static int
extra_matches(const struct route_config *r, const struct route_request *rq)
{
	if (r->method != NULL && (rq->method == NULL || strcasecmp(r->method, rq->method) != 0))
		return 0;
	for (size_t i = 0; i < r->n_headers; i++) {
		const char *v = rq->header != NULL ? rq->header(rq->ctx, r->headers[i].name) : NULL;
		if (v == NULL || strcmp(v, r->headers[i].value) != 0)
			return 0;
	}
	return 1;
}

int
gateway_route_for(const struct route_config *routes, size_t n, const struct route_request *rq)
{
	int best = -1;
	size_t best_len = 0, best_specific = 0;

	for (size_t i = 0; i < n; i++) {
		const struct route_config *r = &routes[i];
		size_t len = strcmp(r->path_prefix, "/") == 0 ? 0 : strlen(r->path_prefix);
		size_t specific = (r->host != NULL) * 1000 + (r->model != NULL) * 100 +
		    (r->method != NULL) * 50 + r->n_headers;

		if (!host_matches(r->host, rq->host) || !prefix_matches(r->path_prefix, rq->path))
			continue;
		if (r->model != NULL && (rq->model == NULL || strcmp(r->model, rq->model) != 0))
			continue;
		if (!extra_matches(r, rq))
			continue;
		if (best < 0 || len > best_len || (len == best_len && specific > best_specific)) {
			best = (int)i;
			best_len = len;
			best_specific = specific;
		}
	}
	return best;
}

int
gateway_match_route(const struct route_config *routes, size_t n, const char *host,
    const char *path, const char *model)
{
	struct route_request rq = { host, path, model, NULL, NULL, NULL };

	return gateway_route_for(routes, n, &rq);
}

char *
gateway_rewrite_path(const struct route_config *r, const char *path)
{
	struct buf b = BUF_INIT;
	const char *rest;

	if (r->rewrite == NULL || strcmp(r->path_prefix, "/") == 0)
		return xstrdup(path);
	rest = path + strlen(r->path_prefix);
	if (strcmp(r->rewrite, "/") == 0) {
		buf_adds(&b, *rest == '\0' ? "/" : rest);
	} else {
		size_t n = strlen(r->rewrite);
		buf_add(&b, r->rewrite, n > 1 && r->rewrite[n - 1] == '/' && *rest == '/' ? n - 1 : n);
		buf_adds(&b, rest);
	}
	return buf_detach(&b, NULL);
}

/* ---- pools ---- */

static struct pool *
find_pool(struct gateway *g, const char *name)
{
	for (size_t i = 0; i < g->n_pools; i++)
		if (g->pools[i] != NULL && strcmp(g->pools[i]->name, name) == 0)
			return g->pools[i];
	return NULL;
}

void
gateway_apply(struct gateway *g, struct router_config *cfg)
{
	struct pool **next = xcalloc(cfg->n_pools + 1, sizeof(*next));

	for (size_t i = 0; i < cfg->n_pools; i++) {
		struct pool *p = find_pool(g, cfg->pools[i].name);
		if (p != NULL) {
			pool_update(p, &cfg->pools[i]);
			for (size_t j = 0; j < g->n_pools; j++)
				if (g->pools[j] == p)
					g->pools[j] = NULL;
		} else {
			p = pool_new(&cfg->pools[i]);
			scraper_add(g->scraper, p);
			log_info("pool %s: %zu endpoints", p->name, p->n_eps);
		}
		next[i] = p;
	}
	for (size_t j = 0; j < g->n_pools; j++)
		if (g->pools[j] != NULL) {
			log_info("pool %s removed", g->pools[j]->name);
			scraper_del(g->scraper, g->pools[j]);
			pool_remove(g->pools[j]);
			pool_unref(g->pools[j]);
		}
	free(g->pools);
	g->pools = next;
	g->n_pools = cfg->n_pools;
	router_config_release(&g->cfg);
	g->cfg = *cfg;
	memset(cfg, 0, sizeof(*cfg));
}

size_t
gateway_ready_endpoints(struct gateway *g, const char *name)
{
	struct pool *p = find_pool(g, name);
	uint64_t now = now_ms();
	size_t n = 0;

	for (size_t i = 0; p != NULL && i < p->n_eps; i++)
		n += endpoint_ready(p->eps[i], now);
	return n;
}

/* ---- requests ---- */

static uint64_t
gw_rand(struct gateway *g)
{
	g->rng ^= g->rng << 13;
	g->rng ^= g->rng >> 7;
	g->rng ^= g->rng << 17;
	return g->rng;
}

static const char *
pick_backend(struct gateway *g, const struct route_config *r)
{
	long total = 0, x;

	for (size_t i = 0; i < r->n_backends; i++)
		total += r->backends[i].weight;
	if (total <= 0)
		return r->backends[0].pool;
	x = (long)(gw_rand(g) % (uint64_t)total);
	for (size_t i = 0; i < r->n_backends; i++) {
		if (x < r->backends[i].weight)
			return r->backends[i].pool;
		x -= r->backends[i].weight;
	}
	return r->backends[0].pool;
}

/* The prefix-hash input of a parsed body; returns the estimated prompt tokens. */
static double
prompt_input(const cJSON *body, struct buf *out)
{
	const cJSON *prompt = cJSON_GetObjectItemCaseSensitive(body, "prompt");
	const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(body, "messages");
	const cJSON *it;
	double tokens = 0;

	if (cJSON_IsString(prompt)) {
		buf_adds(out, prompt->valuestring);
		return (double)out->len / 4;
	}
	if (cJSON_IsArray(prompt)) {
		cJSON_ArrayForEach(it, prompt) {
			if (cJSON_IsNumber(it)) {
				/* token ids: 4 bytes each, so a block of B tokens is 4B bytes */
				uint32_t t = (uint32_t)it->valuedouble;
				unsigned char le[4] = { (unsigned char)t, (unsigned char)(t >> 8),
				    (unsigned char)(t >> 16), (unsigned char)(t >> 24) };
				buf_add(out, le, 4);
				tokens++;
			} else if (cJSON_IsString(it)) {
				buf_adds(out, it->valuestring);
				tokens += (double)strlen(it->valuestring) / 4;
			} else if (cJSON_IsArray(it)) {
				const cJSON *t;
				cJSON_ArrayForEach(t, it) {
					uint32_t v = (uint32_t)t->valuedouble;
					unsigned char le[4] = { (unsigned char)v, (unsigned char)(v >> 8),
					    (unsigned char)(v >> 16), (unsigned char)(v >> 24) };
					buf_add(out, le, 4);
					tokens++;
				}
			}
		}
		return tokens;
	}
	if (cJSON_IsArray(msgs)) {
		json_print_compact(msgs, out);
		return (double)out->len / 4;
	}
	return 0;
}

static const char *
req_header(void *ctx, const char *name)
{
	return http_req_header(ctx, name);
}

static void
on_request(struct http_req *req, void *arg)
{
	struct gateway *g = arg;
	const char *path = http_req_path(req), *hosth = http_req_header(req, "Host");
	const char *method = http_req_method(req), *body, *model = NULL, *pool_name, *ctype;
	char host[256] = "";
	struct proxy_request pr;
	struct route_request rq;
	const struct route_config *r;
	struct pool *p;
	cJSON *doc = NULL;
	size_t blen;
	int idx;

	if (hosth != NULL) {
		snprintf(host, sizeof(host), "%s", hosth);
		if (host[0] != '[' && strchr(host, ':') != NULL)
			*strchr(host, ':') = '\0';
	}
	body = http_req_body(req, &blen);
	ctype = http_req_header(req, "Content-Type");
	if (blen > 0) {
		/*
		 * Parsed once here. Bodies are JSON on the engine API whatever their
		 * Content-Type says (curl -d sends a form type); a body that is not
		 * JSON is a 400 unless it declares another non-JSON type, then it
		 * passes through unparsed (an Ingress to some other service).
		 */
		struct llmd_err e = LLMD_ERR_INIT;
		int json_type = ctype == NULL || strstr(ctype, "json") != NULL ||
		    strstr(ctype, "x-www-form-urlencoded") != NULL;
		if (json_parse_named(body, blen, "request body", &doc, &e) < 0) {
			if (json_type) {
				http_reply_err(req, 400, "BadRequest", &e);
				return;
			}
			doc = NULL;
		} else if (!cJSON_IsObject(doc)) {
			cJSON_Delete(doc);
			doc = NULL;
			if (json_type) {
				http_reply_error(req, 400, "BadRequest",
				    "the request body must be a JSON object");
				return;
			}
		}
		if (doc != NULL)
			json_get_str(doc, "model", &model, 0, NULL);
	}
	if (model == NULL)
		model = http_req_header(req, "X-Gateway-Model-Name");
	rq = (struct route_request){ host, path, model, method, req_header, req };
	idx = gateway_route_for(g->cfg.routes, g->cfg.n_routes, &rq);
	if (idx < 0) {
		int any = 0;
		for (size_t i = 0; !any && i < g->cfg.n_routes; i++)
			any = host_matches(g->cfg.routes[i].host, host) &&
			    prefix_matches(g->cfg.routes[i].path_prefix, path);
		metric_add(g->m_no_route, NULL, 1);
		if (any && model != NULL)
			http_reply_error(req, 404, "NotFound", "The model `%s` does not exist.", model);
		else
			http_reply_error(req, 404, "NotFound", "no route for %s", path);
		cJSON_Delete(doc);
		return;
	}
	r = &g->cfg.routes[idx];
	if (r->auth != NULL) {
		const char *a = http_req_header(req, "Authorization");
		if (a == NULL || strcmp(a, r->auth) != 0) {
			http_reply_header(req, "WWW-Authenticate", "Bearer");
			http_reply_error(req, 401, "Unauthorized", "missing or wrong Authorization");
			cJSON_Delete(doc);
			return;
		}
	}
	pool_name = pick_backend(g, r);
	p = find_pool(g, pool_name);
	if (p == NULL) {
		http_reply_error(req, 503, "ServiceUnavailable", "service %s: pool %s is not known",
		    r->name, pool_name);
		cJSON_Delete(doc);
		return;
	}
	if (doc != NULL && model != NULL && !pool_serves_model(p, model)) {
		http_reply_error(req, 404, "NotFound", "The model `%s` does not exist.", model);
		cJSON_Delete(doc);
		return;
	}
	memset(&pr, 0, sizeof(pr));
	pr.req = req;
	pr.pool = p;
	pool_ref(p);
	pr.service = xstrdup(r->name);
	pr.path = gateway_rewrite_path(r, path);
	pr.timeout_ms = r->timeout_ms;
	pr.model = model != NULL ? xstrdup(model) : NULL;
	pr.crit = pool_model_criticality(p, model);
	pr.bodyless = doc == NULL || strcmp(method, "GET") == 0;
	if (p->cfg.sched.prefill_pool[0] != '\0') {
		for (size_t i = 0; i < g->n_pools; i++)
			if (strcmp(g->pools[i]->name, p->cfg.sched.prefill_pool) == 0) {
				pr.prefill = g->pools[i];
				pool_ref(pr.prefill);
				break;
			}
	}
	if (http_req_header(req, "x-session-token") != NULL)
		pr.session = xstrdup(http_req_header(req, "x-session-token"));
	if (doc != NULL) {
		const char *salt = NULL;
		double tokens = prompt_input(doc, &pr.prompt);
		pr.tokens = tokens;
		if (json_get_str(doc, "cache_salt", &salt, 0, NULL) == 0 && salt != NULL)
			pr.salt = xstrdup(salt);
		if (tokens > 0)
			metric_add(g->m_tokens, (const char *[]){ p->name }, tokens);
		cJSON_Delete(doc);
	}
	proxy_start(&g->env, &pr);
}

static void
on_metrics(struct http_req *req, void *arg)
{
	struct gateway *g = arg;
	struct buf out = BUF_INIT;
	uint64_t now = now_ms();

	for (size_t i = 0; i < g->n_pools; i++) {
		struct pool *p = g->pools[i];
		for (size_t j = 0; j < p->n_eps; j++) {
			struct endpoint *ep = p->eps[j];
			const char *lv[] = { p->name, ep->addr };
			metric_set(g->m_ep_ready, lv, endpoint_ready(ep, now));
			metric_set(g->m_ep_waiting, lv, ep->m.waiting);
			metric_set(g->m_ep_kv, lv, ep->m.kv_usage);
			metric_set(g->m_ep_inflight, lv, ep->inflight);
		}
	}
	metrics_render(g->metrics, &out);
	http_reply_buf(req, 200, "text/plain; version=0.0.4", &out);
	buf_release(&out);
}

static void
on_healthz(struct http_req *req, void *arg)
{
	(void)arg;
	http_reply_data(req, 200, "text/plain", "ok\n", 3);
}

struct gateway *
gateway_new(struct event_base *base, const struct gateway_opts *o, struct llmd_err *e)
{
	static const double lat[] = { 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
	    0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120 };
	static const char *const L_pool[] = { "pool" };
	static const char *const L_pe[] = { "pool", "endpoint" };
	static const char *const L_pec[] = { "pool", "endpoint", "code" };
	static const char *const L_pr[] = { "pool", "reason" };
	struct gateway *g = xcalloc(1, sizeof(*g));

	g->base = base;
	if (o != NULL)
		g->opts = *o;
	if (g->opts.max_body == 0)
		g->opts.max_body = 4u << 20;
	if (g->opts.scrape_interval_ms == 0)
		g->opts.scrape_interval_ms = 50;
	if (g->opts.shutdown_grace_ms == 0)
		g->opts.shutdown_grace_ms = 30000;
	if (g->opts.max_conns_per_endpoint == 0)
		g->opts.max_conns_per_endpoint = 1024;
	g->rng = now_us() | 1;
	g->srv = http_server_new(base, &(struct http_server_config){
	    .max_body = g->opts.max_body, .max_headers = g->opts.max_headers,
	    .timeout_ms = g->opts.client_timeout_ms,
	    .shutdown_grace_ms = g->opts.shutdown_grace_ms,
	    .make_bev = g->opts.make_bev, .make_bev_arg = g->opts.make_bev_arg,
	    .error_fmt = http_error_fmt_openai }, e);
	if (g->srv == NULL) {
		free(g);
		return NULL;
	}
	g->metrics = metrics_new();
	g->env.base = base;
	g->env.access_log = g->opts.access_log;
	g->env.high_water = 256u << 10;
	g->env.client = http_client_new(base, &(struct http_client_config){
	    .timeout_ms = -1, .max_conns_per_host = g->opts.max_conns_per_endpoint });
	g->env.m_requests = metrics_counter(g->metrics, "llmd_router_requests_total",
	    "Requests proxied, by pool, endpoint and status.", 3, L_pec);
	g->env.m_decisions = metrics_counter(g->metrics, "llmd_router_scheduler_decisions_total",
	    "Endpoint picker decisions, by pool and chosen endpoint.", 2, L_pe);
	g->env.m_rejected = metrics_counter(g->metrics, "llmd_router_rejected_total",
	    "Requests refused before proxying (saturated: 429, no_endpoint: 503).", 2, L_pr);
	g->env.m_retries = metrics_counter(g->metrics, "llmd_router_retries_total",
	    "Requests retried on another endpoint after a connection failure.", 1, L_pool);
	g->env.m_duration = metrics_histogram(g->metrics, "llmd_router_request_duration_seconds",
	    "Request duration through the router.", 1, L_pool, lat, (int)ARRAY_SIZE(lat));
	g->env.m_ttft = metrics_histogram(g->metrics, "llmd_router_time_to_first_byte_seconds",
	    "Time to the first response body byte (TTFT for streams).", 1, L_pool, lat,
	    (int)ARRAY_SIZE(lat));
	g->m_tokens = metrics_counter(g->metrics, "llmd_router_prompt_tokens_total",
	    "Prompt tokens routed (token-id prompts exactly, text estimated at 4 chars/token).",
	    1, L_pool);
	g->m_no_route = metrics_counter(g->metrics, "llmd_router_no_route_total",
	    "Requests answered 404 for want of a route or model.", 0, NULL);
	g->m_ep_ready = metrics_gauge(g->metrics, "llmd_router_endpoint_ready",
	    "1 when the endpoint takes traffic.", 2, L_pe);
	g->m_ep_waiting = metrics_gauge(g->metrics, "llmd_router_endpoint_waiting_requests",
	    "Last scraped vllm:num_requests_waiting.", 2, L_pe);
	g->m_ep_kv = metrics_gauge(g->metrics, "llmd_router_endpoint_kv_cache_usage",
	    "Last scraped vllm:kv_cache_usage_perc.", 2, L_pe);
	g->m_ep_inflight = metrics_gauge(g->metrics, "llmd_router_endpoint_inflight_requests",
	    "Requests the router has on the endpoint.", 2, L_pe);
	g->scraper = scraper_new(base, g->opts.scrape_interval_ms);
	http_server_route(g->srv, "GET", "/metrics", on_metrics, g);
	http_server_route(g->srv, "GET", "/healthz", on_healthz, g);
	http_server_route(g->srv, NULL, "/{rest...}", on_request, g);
	return g;
}

int
gateway_listen(struct gateway *g, const char *addr, struct llmd_err *e)
{
	return http_server_listen(g->srv, addr, e);
}

struct http_server *
gateway_server(struct gateway *g)
{
	return g->srv;
}

void
gateway_free(struct gateway *g)
{
	if (g == NULL)
		return;
	http_server_free(g->srv);
	http_client_free(g->env.client);
	scraper_free(g->scraper);
	for (size_t i = 0; i < g->n_pools; i++) {
		pool_remove(g->pools[i]);
		pool_unref(g->pools[i]);
	}
	free(g->pools);
	router_config_release(&g->cfg);
	metrics_free(g->metrics);
	free(g);
}
