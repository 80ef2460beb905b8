/*
 * router/router-config.h - what llmd-router serves, as plain data: pools of engine
 * endpoints with their models and scheduler settings, and routes (host, path
 * prefix, model match, rewrite, weighted pool backends, timeout, auth).
 * Sources (source-static.c from a file, source-daemon.c from the daemon's
 * API objects) produce a struct router_config; the gateway applies it.
 */
#ifndef LLMD_ROUTER_CONFIG_H
#define LLMD_ROUTER_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "lib/err.h"

enum criticality { CRIT_CRITICAL = 0, CRIT_STANDARD, CRIT_SHEDDABLE };

enum picker_kind { PICKER_MAX_SCORE = 0, PICKER_RANDOM, PICKER_ROUND_ROBIN };

/* Scheduler settings of a pool (upstream EPP defaults in sched_config_defaults). */
struct sched_config {
	double w_queue;              /* queue-scorer (2) */
	double w_kv;                 /* kv-cache-utilization-scorer (2) */
	double w_prefix;             /* prefix-cache-scorer (3) */
	double w_lora;               /* lora-affinity-scorer (0: off) */
	double w_session;            /* session-affinity-scorer (0: off) */
	enum picker_kind picker;
	int saturation_filter;       /* keep unsaturated endpoints when some are (1) */
	int block_size_tokens;       /* 16 */
	int auto_tune;               /* block size / LRU capacity from engine metrics (1) */
	int max_prefix_blocks;       /* 256 */
	size_t lru_capacity;         /* per endpoint, 31250 */
	int queue_threshold;         /* saturation: waiting >= this (5) */
	double kv_threshold;         /* saturation: kv usage >= this (0.8) */
	int64_t staleness_ms;        /* metrics older than this count as saturated (200) */
	/* P/D: the pool of prefill endpoints ("" none) and the non-cached prompt
	 * tokens above which a request is prefilled there (100; 0: never) */
	char prefill_pool[256];
	int pd_threshold_tokens;
};

struct pool_model {
	char *name;
	enum criticality crit;
};

struct pool_config {
	char *name;
	char **endpoints;            /* "host:port" */
	size_t n_endpoints;
	struct pool_model *models;   /* names served; empty: any */
	size_t n_models;
	struct sched_config sched;
};

struct route_backend {
	char *pool;
	int weight;
};

struct route_header {
	char *name;                  /* case-insensitive */
	char *value;                 /* exact */
};

struct route_config {
	char *name;                  /* for messages and status ("ns/name") */
	char *method;                /* NULL: any */
	struct route_header *headers;   /* all must match */
	size_t n_headers;
	char *host;                  /* NULL: any Host */
	char *path_prefix;           /* "/ns/name" or "/" */
	char *rewrite;               /* replacement of the prefix; NULL: keep the path */
	char *model;                 /* body model must equal this; NULL: any */
	struct route_backend *backends;
	size_t n_backends;
	int64_t timeout_ms;          /* 0: none */
	char *auth;                  /* required Authorization value; NULL: passed through */
};

struct router_config {
	struct pool_config *pools;
	size_t n_pools;
	struct route_config *routes;
	size_t n_routes;
};

void sched_config_defaults(struct sched_config *s);
/*
 * Reads a scheduler config: either llmd's short form {queue: 2, kvCache: 2,
 * prefixCache: 3, lora: 0, session: 0, picker: max-score|random|round-robin,
 * blockSizeTokens, maxPrefixBlocksToMatch, lruCapacityPerServer, autoTune,
 * queueDepthThreshold, kvCacheUtilThreshold, metricsStalenessThreshold,
 * saturationFilter, prefillPool, pdThresholdTokens} or an upstream EndpointPickerConfig (plugins +
 * schedulingProfiles with pluginRef/weight). Unset fields keep s's values.
 */
int sched_config_parse(const cJSON *v, struct sched_config *s, struct llmd_err *e);
int criticality_parse(const char *s, enum criticality *out);
const char *criticality_name(enum criticality c);

void router_config_release(struct router_config *c);
/* Finds a pool by name; NULL when absent. */
const struct pool_config *router_config_pool(const struct router_config *c, const char *name);

/*
 * The static source: a YAML or JSON document
 *   pools:  [{name, endpoints: [host:port...], models: [name | {name, criticality}],
 *             scheduler: {...}}]
 *   routes: [{name, host, pathPrefix, rewrite, model, method, headers: {NAME: VALUE},
 *             pool | backends: [{pool, weight}], timeout, authorization}]
 * A route without pathPrefix gets "/<name>" when name is "ns/svc"-shaped, else "/".
 * rewrite defaults to "/" (the managed-route prefix rewrite); "keep" keeps the path.
 */
int router_config_parse(const cJSON *doc, struct router_config *out, struct llmd_err *e);
int router_config_load(const char *path, struct router_config *out, struct llmd_err *e);

#endif
