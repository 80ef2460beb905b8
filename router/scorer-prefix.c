/*
 * router/scorer-prefix.c - prefix-cache-scorer: the share of the request's
 * prefix blocks the approximate index believes each endpoint holds.
 */
#include "config.h"

#include <stddef.h>

#include "router/picker.h"

static void
score_prefix(const struct pick_ctx *ctx, double *out)
{
	for (size_t i = 0; i < ctx->n; i++) {
		int slot = ctx->c[i]->slot;
		out[i] = ctx->n_hashes == 0 || slot < 0 || ctx->prefix_counts == NULL ? 0.0 :
		    (double)ctx->prefix_counts[slot] / (double)ctx->n_hashes;
	}
}

const struct scorer scorer_prefix_cache = {
	"prefix-cache-scorer", offsetof(struct sched_config, w_prefix), score_prefix,
};
