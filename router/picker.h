/*
 * router/picker.h - the in-process endpoint picker of a pool (upstream EPP
 * scheduling profile): candidates (ready endpoints) -> filters (saturation)
 * -> weighted scorers (queue, kv-cache utilization, approximate prefix
 * cache, LoRA affinity, session affinity) -> max-score picker with random
 * tie-break (or random / round-robin pickers). Also the admission check
 * that sheds Sheddable requests when the pool is saturated.
 */
#ifndef LLMD_ROUTER_PICKER_H
#define LLMD_ROUTER_PICKER_H

#include <stddef.h>
#include <stdint.h>

#include "router/router-config.h"
#include "router/pool.h"

struct pick_request {
	const char *model;           /* body model (base or LoRA adapter name); may be NULL */
	const char *cache_salt;      /* may be NULL */
	const void *prompt;          /* prefix-hash input: prompt text, messages JSON, token ids */
	size_t prompt_len;
	const char *session;         /* x-session-token header; may be NULL */
	enum criticality crit;
};

struct pick_result {
	struct endpoint *ep;         /* referenced; release with pick_result_release */
	double score;
	uint64_t *hashes;            /* the prompt's prefix hashes */
	size_t n_hashes;
	size_t n_candidates;
	double saturation;
	size_t matched;              /* prefix blocks the chosen endpoint already has */
};

/* What a scorer sees: the candidates and the request's prefix matches. */
struct pick_ctx {
	const struct pool *pool;
	struct endpoint *const *c;
	size_t n;
	const struct pick_request *req;
	const unsigned *prefix_counts;   /* per prefix slot */
	size_t n_hashes;
};

/* A scorer writes a score in [0,1] for each candidate. */
struct scorer {
	const char *name;                /* upstream plugin type */
	size_t weight_off;               /* offsetof(struct sched_config, w_...) */
	void (*score)(const struct pick_ctx *ctx, double *out);
};

extern const struct scorer scorer_queue, scorer_kv_cache, scorer_prefix_cache,
    scorer_lora_affinity, scorer_session_affinity;

/* The base64 session token naming ep in pool ("pool/host:port"); caller frees. */
char *session_token(const char *pool, const char *addr);

/* ---- saturation (utilization detector) ---- */

/* max(waiting/queue_threshold, kv/kv_threshold); stale or missing metrics: 1. */
double saturation_endpoint(const struct endpoint *ep, const struct sched_config *s, uint64_t now);
/* Mean over the candidates; none: 1. */
double saturation_pool(struct endpoint *const *c, size_t n, const struct sched_config *s,
    uint64_t now);
/* Keeps (in place, order kept) fresh endpoints under both thresholds; none kept: all stay. */
size_t saturation_filter(struct endpoint **c, size_t n, const struct sched_config *s,
    uint64_t now);

/* ---- picking ---- */

/*
 * Picks an endpoint of pool p for r, skipping those in exclude (already
 * tried). Returns 0 with *out filled, -ENODEV when no endpoint is ready
 * (503), -EBUSY when r is Sheddable and the pool is saturated (429).
 */
int picker_pick(struct pool *p, const struct pick_request *r, struct endpoint *const *exclude,
    size_t n_exclude, struct pick_result *out);
/* After the pick is used: its prefix hashes go to the endpoint's LRU. */
void picker_commit(struct pool *p, const struct pick_result *res);
void pick_result_release(struct pick_result *res);

/* The same with an explicit clock and candidate list, for tests: scores every candidate. */
void picker_score(const struct pool *p, const struct pick_request *r, struct endpoint *const *c,
    size_t n, const unsigned *prefix_counts, size_t n_hashes, double *total);

#endif
