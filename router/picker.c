/*
 * router/picker.c - one scheduling decision: ready candidates, the
 * admission check (Sheddable shed when saturated), the saturation filter,
 * the weighted scorer table and the picker (max score with random
 * tie-break, random, round-robin); and the prefix-index update after it.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/util.h"
#include "router/picker.h"
#include "router/prefix.h"

/* The plugin table: every scorer, weighted by its sched_config slot. */
static const struct scorer *const scorers[] = {
	&scorer_queue,
	&scorer_kv_cache,
	&scorer_prefix_cache,
	&scorer_lora_affinity,
	&scorer_session_affinity,
};

static uint64_t rng_state;

static uint64_t
rng_next(void)
{
	if (rng_state == 0)
		rng_state = ((uint64_t)time(NULL) << 20) ^ (uint64_t)getpid() ^ 0x9e3779b97f4a7c15ULL;
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static double
weight_of(const struct sched_config *s, const struct scorer *sc)
{
	return *(const double *)((const char *)s + sc->weight_off);
}

void
picker_score(const struct pool *p, const struct pick_request *r, struct endpoint *const *c,
    size_t n, const unsigned *prefix_counts, size_t n_hashes, double *total)
{
	struct pick_ctx ctx = { p, c, n, r, prefix_counts, n_hashes };
	double *part = xcalloc(n + 1, sizeof(double));

	for (size_t i = 0; i < n; i++)
		total[i] = 0;
	for (size_t k = 0; k < ARRAY_SIZE(scorers); k++) {
		double w = weight_of(&p->cfg.sched, scorers[k]);
		if (w <= 0)
			continue;
		scorers[k]->score(&ctx, part);
		for (size_t i = 0; i < n; i++)
			total[i] += w * MIN(1.0, MAX(0.0, part[i]));
	}
	free(part);
}

static int
excluded(const struct endpoint *ep, struct endpoint *const *ex, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (ex[i] == ep)
			return 1;
	return 0;
}

/* Block size in characters and LRU capacity, auto-tuned from the first candidate. */
static void
prefix_geometry(const struct sched_config *s, struct endpoint *const *c, size_t n,
    size_t *block_chars, size_t *capacity)
{
	int bs = s->block_size_tokens;

	*capacity = s->lru_capacity;
	if (s->auto_tune && n > 0 && c[0]->m.valid) {
		if (c[0]->m.block_size > 0)
			bs = c[0]->m.block_size;
		if (c[0]->m.num_gpu_blocks > 0)
			*capacity = (size_t)c[0]->m.num_gpu_blocks;
	}
	*block_chars = (size_t)bs * 4;
}

int
picker_pick(struct pool *p, const struct pick_request *r, struct endpoint *const *exclude,
    size_t n_exclude, struct pick_result *out)
{
	const struct sched_config *s = &p->cfg.sched;
	uint64_t now = now_ms();
	struct endpoint **c = xcalloc(p->n_eps + 1, sizeof(*c));
	unsigned counts[PREFIX_MAX_SLOTS] = { 0 };
	double *score = NULL, best = 0;
	size_t n = 0, pick = 0;

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < p->n_eps; i++)
		if (endpoint_ready(p->eps[i], now) && !excluded(p->eps[i], exclude, n_exclude))
			c[n++] = p->eps[i];
	out->n_candidates = n;
	if (n == 0) {
		free(c);
		return -ENODEV;
	}
	out->saturation = saturation_pool(c, n, s, now);
	if (r->crit == CRIT_SHEDDABLE && out->saturation >= 1.0) {
		free(c);
		return -EBUSY;
	}
	if (s->saturation_filter)
		n = saturation_filter(c, n, s, now);
	if (s->w_prefix > 0 && r->prompt != NULL) {
		size_t block_chars, cap;
		prefix_geometry(s, c, n, &block_chars, &cap);
		out->n_hashes = prefix_hashes(r->model, r->cache_salt, r->prompt, r->prompt_len,
		    block_chars, (size_t)s->max_prefix_blocks, &out->hashes);
		prefix_index_match(p->prefix, out->hashes, out->n_hashes, counts);
	}
	switch (s->picker) {
	case PICKER_RANDOM:
		pick = (size_t)(rng_next() % n);
		break;
	case PICKER_ROUND_ROBIN:
		pick = (size_t)(p->rr++ % n);
		break;
	default: {
		size_t ties = 0;
		score = xcalloc(n, sizeof(double));
		picker_score(p, r, c, n, counts, out->n_hashes, score);
		for (size_t i = 0; i < n; i++) {
			if (i == 0 || score[i] > best + 1e-9) {
				best = score[i];
				pick = i;
				ties = 1;
			} else if (score[i] >= best - 1e-9) {
				/* reservoir sampling over the tied group */
				if (rng_next() % ++ties == 0)
					pick = i;
			}
		}
		out->score = best;
		break;
	}
	}
	out->ep = c[pick];
	if (out->ep->slot >= 0 && out->ep->slot < PREFIX_MAX_SLOTS)
		out->matched = counts[out->ep->slot];
	endpoint_ref(out->ep);
	free(score);
	free(c);
	return 0;
}

void
picker_commit(struct pool *p, const struct pick_result *res)
{
	size_t block_chars, cap;
	struct endpoint *one[1];

	if (res->ep == NULL || res->n_hashes == 0 || res->ep->removed || res->ep->slot < 0)
		return;
	one[0] = res->ep;
	prefix_geometry(&p->cfg.sched, one, 1, &block_chars, &cap);
	prefix_index_insert(p->prefix, res->ep->slot, cap, res->hashes, res->n_hashes);
}

void
pick_result_release(struct pick_result *res)
{
	if (res->ep != NULL)
		endpoint_unref(res->ep);
	free(res->hashes);
	memset(res, 0, sizeof(*res));
}
