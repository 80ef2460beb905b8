/*
 * router/proxy.h - one proxied request: pick an endpoint of the pool, send
 * the (already parsed, possibly rewritten) request over a keep-alive
 * connection, stream the response back chunk by chunk with back-pressure
 * (upstream reading pauses while the client is slow), cancel upstream when
 * the client goes away, retry on another endpoint when the connection fails
 * before any response byte, enforce the route timeout, count and log it.
 */
#ifndef LLMD_ROUTER_PROXY_H
#define LLMD_ROUTER_PROXY_H

#include <stddef.h>
#include <stdint.h>

#include "router/picker.h"
#include "router/pool.h"

struct http_client;
struct http_req;
struct metric_family;
struct event_base;

/* Shared by every proxied request of a gateway. */
struct proxy_env {
	struct event_base *base;
	struct http_client *client;
	int access_log;
	size_t high_water;             /* pause upstream above this many pending bytes */
	struct metric_family *m_requests;    /* {pool, endpoint, code} */
	struct metric_family *m_decisions;   /* {pool, endpoint} */
	struct metric_family *m_rejected;    /* {pool, reason} */
	struct metric_family *m_retries;     /* {pool} */
	struct metric_family *m_duration;    /* {pool} */
	struct metric_family *m_ttft;        /* {pool} */
};

/* What the gateway hands over; the proxy takes ownership of the strings. */
struct proxy_request {
	struct http_req *req;
	struct pool *pool;               /* referenced by the proxy */
	char *service;                   /* route name, for messages */
	char *path;                      /* upstream path (rewritten) */
	int64_t timeout_ms;              /* 0: none */
	char *model, *salt, *session;
	struct buf prompt;               /* prefix-hash input */
	enum criticality crit;
	int bodyless;                    /* GET & co: no scoring input */
	double tokens;                   /* estimated prompt tokens (ids counted exactly) */
	struct pool *prefill;            /* P/D: the prefill pool (referenced), or NULL */
};

/* Starts it; the request is always finished by the proxy. */
void proxy_start(struct proxy_env *env, struct proxy_request *pr);

#endif
