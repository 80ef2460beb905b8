/*
 * router/pool.h - pools of engine endpoints at run time: each endpoint's
 * scraped metrics (waiting, running, KV usage, block size, GPU blocks, LoRA
 * adapters) with their age, the router's own in-flight count, health from
 * failed connections, and the pool's prefix index. Endpoints are reference
 * counted so that a stream keeps its endpoint after a config change removed
 * it from the pool. pool_scrape_start() polls /metrics of every endpoint
 * every interval (50 ms) on the loop.
 */
#ifndef LLMD_ROUTER_POOL_H
#define LLMD_ROUTER_POOL_H

#include <stddef.h>
#include <stdint.h>

#include "router/router-config.h"

struct event_base;
struct http_client;
struct http_client_req;
struct prefix_index;

#define ENDPOINT_MAX_LORAS 16

struct endpoint_metrics {
	int valid;                  /* at least one scrape succeeded */
	uint64_t at_ms;             /* now_ms() of the last successful scrape */
	double waiting, running, kv_usage;
	int block_size;             /* cache_config_info; 0 unknown */
	long num_gpu_blocks;        /* 0 unknown */
	int max_lora;               /* lora_requests_info; 0 unknown */
	char running_loras[256];    /* comma-separated */
	char waiting_loras[256];
};

struct endpoint {
	int refs;
	char *addr;                 /* "host:port" */
	char *base_url;             /* "http://host:port" */
	int slot;                   /* prefix index slot in its pool, -1 none */
	int removed;                /* no longer in any pool */
	struct endpoint_metrics m;
	int scrape_failures;        /* consecutive */
	uint64_t down_until_ms;     /* connection failed: avoid until then */
	int inflight;               /* requests the router has on it */
	struct http_client_req *scrape;
	struct pool *pool;          /* NULL once removed */
};

struct pool {
	int refs;
	char *name;
	struct pool_config cfg;     /* own copy (endpoints list, models, sched) */
	struct endpoint **eps;
	size_t n_eps;
	struct prefix_index *prefix;
	uint64_t rr;                /* round-robin picker position */
	int removed;
};

void endpoint_ref(struct endpoint *ep);
void endpoint_unref(struct endpoint *ep);
void pool_ref(struct pool *p);
void pool_unref(struct pool *p);

/* A new pool from cfg (copied), endpoints created; no scraping yet. */
struct pool *pool_new(const struct pool_config *cfg);
/*
 * Applies a new config to a live pool: endpoints kept by address (metrics
 * and prefix state stay), new ones added, missing ones removed (in-flight
 * requests keep them through their reference).
 */
void pool_update(struct pool *p, const struct pool_config *cfg);
/* Marks the pool removed and drops its endpoints (callers still holding refs keep them). */
void pool_remove(struct pool *p);

/* The model's criticality in this pool; Critical when unlisted. */
enum criticality pool_model_criticality(const struct pool *p, const char *model);
/* 1 when model is served by the pool (or the pool lists no model). */
int pool_serves_model(const struct pool *p, const char *model);

/*
 * Ready for traffic: not marked down by a recent connection failure, and
 * its metrics are fresh (within 2 s) or it was never scraped and never
 * failed.
 */
int endpoint_ready(const struct endpoint *ep, uint64_t now);
/* Marks ep down for ms (a connection to it failed). */
void endpoint_mark_down(struct endpoint *ep, uint64_t ms);

/* Parses the engine's /metrics text into m (fields it finds). 0 or -EINVAL. */
int endpoint_parse_metrics(const char *text, size_t len, struct endpoint_metrics *m);

/*
 * Metric scraping of a set of pools: every interval_ms each endpoint not
 * already being scraped gets GET /metrics (timeout 1 s).
 */
struct scraper;
struct scraper *scraper_new(struct event_base *base, int64_t interval_ms);
void scraper_add(struct scraper *s, struct pool *p);
void scraper_del(struct scraper *s, struct pool *p);
void scraper_free(struct scraper *s);

#endif
