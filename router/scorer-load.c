/*
 * router/scorer-load.c - the load scorers: queue-scorer (min-max normalised
 * waiting requests, all equal -> 1) and kv-cache-utilization-scorer
 * (1 - KV usage).
 */
#include "config.h"

#include <stddef.h>

#include "router/picker.h"

static void
score_queue(const struct pick_ctx *ctx, double *out)
{
	double lo = 0, hi = 0;

	for (size_t i = 0; i < ctx->n; i++) {
		double q = ctx->c[i]->m.waiting;
		if (i == 0 || q < lo)
			lo = q;
		if (i == 0 || q > hi)
			hi = q;
	}
	for (size_t i = 0; i < ctx->n; i++)
		out[i] = hi == lo ? 1.0 : (hi - ctx->c[i]->m.waiting) / (hi - lo);
}

static void
score_kv(const struct pick_ctx *ctx, double *out)
{
	for (size_t i = 0; i < ctx->n; i++)
		out[i] = 1.0 - ctx->c[i]->m.kv_usage;
}

const struct scorer scorer_queue = {
	"queue-scorer", offsetof(struct sched_config, w_queue), score_queue,
};
const struct scorer scorer_kv_cache = {
	"kv-cache-utilization-scorer", offsetof(struct sched_config, w_kv), score_kv,
};
