/*
 * router/gateway.h - the gateway: the HTTP listener(s), the live set of
 * pools and routes (replaced atomically by gateway_apply without touching
 * in-flight requests), route matching (host, longest path prefix, body
 * model), request parsing (body parsed once), the router's own /metrics and
 * /healthz, and handing requests to the proxy.
 */
#ifndef LLMD_ROUTER_GATEWAY_H
#define LLMD_ROUTER_GATEWAY_H

#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"
#include "router/router-config.h"

struct event_base;
struct http_server;
struct gateway;

struct gateway_opts {
	size_t max_body;               /* 0: 4 MiB */
	size_t max_headers;            /* 0: 64 KiB */
	int64_t client_timeout_ms;     /* client idle timeout; 0: 60 s */
	int64_t scrape_interval_ms;    /* 0: 50 ms */
	int64_t shutdown_grace_ms;     /* 0: 30 s */
	int access_log;
	int max_conns_per_endpoint;    /* 0: 1024 */
	/* TLS listener: see http_server_config.make_bev (NULL: plain HTTP) */
	struct bufferevent *(*make_bev)(struct event_base *base, void *arg);
	void *make_bev_arg;
};

struct gateway *gateway_new(struct event_base *base, const struct gateway_opts *o,
    struct llmd_err *e);
/* Returns the bound port or a negative errno. */
int gateway_listen(struct gateway *g, const char *addr, struct llmd_err *e);
/*
 * Installs cfg, taking its contents (cfg is left empty): pools updated in
 * place by name (endpoints, metrics and prefix state kept), new pools
 * scraped, gone ones dropped once their requests end; routes replaced.
 */
void gateway_apply(struct gateway *g, struct router_config *cfg);
/* Pools and endpoints, for status: calls fn for each (ready: endpoint ready now). */
size_t gateway_ready_endpoints(struct gateway *g, const char *pool);
struct http_server *gateway_server(struct gateway *g);
void gateway_free(struct gateway *g);

/* What a route is matched against. */
struct route_request {
	const char *host, *path, *model, *method;   /* model, method may be NULL */
	const char *(*header)(void *ctx, const char *name);   /* NULL: no headers */
	void *ctx;
};

/*
 * The index of the route serving rq, or -1. Longest matching prefix wins (at
 * a segment boundary), then the most specific (host, model, method, header
 * count); host rules match exactly or as "*.suffix"; a route with a model
 * serves only that body model; method and header rules must all match.
 */
int gateway_route_for(const struct route_config *routes, size_t n,
    const struct route_request *rq);
/* The same without method and headers (routes needing them do not match). */
int gateway_match_route(const struct route_config *routes, size_t n, const char *host,
    const char *path, const char *model);
/*
 * The upstream path: path with the route's prefix replaced by rewrite
 * ("/ns/svc/v1/models" with prefix "/ns/svc" and rewrite "/" -> "/v1/models").
 * Caller frees.
 */
char *gateway_rewrite_path(const struct route_config *r, const char *path);

#endif
