/*
 * engine/sample-ref.c - sample_row_ref: engine/sample-ref.h's row sampling
 * (the GPU kernel's algorithm) in plain C, one sweep of the row per step as
 * the kernel makes them, and the conversion of a sampler's parameters into
 * the row parameters the device reads.
 */
#include "config.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "engine/sample-ref.h"

/* sampler.c's SAMPLER_EPS: a lower temperature is greedy */
#define SAMPLE_ROW_GREEDY_EPS 1e-5f

bool
sample_row_supported(const struct sampler_params *p)
{
	return p->presence_penalty == 0.0f && p->frequency_penalty == 0.0f &&
	    p->repetition_penalty == 1.0f;
}

void
sample_row_params_init(struct sample_row_params *out, const struct sampler_params *p, double u)
{
	memset(out, 0, sizeof(*out));
	out->greedy = p->temperature < SAMPLE_ROW_GREEDY_EPS;
	out->inv_temp = out->greedy ? 1.0f : 1.0f / p->temperature;
	out->log_min_p = p->min_p > 0.0f ? logf(p->min_p) : -INFINITY;
	out->top_k = p->top_k;
	out->top_p = p->top_p;
	out->u = u;
}

/* Count (and mass, when lse is finite) histograms of the digit at shift of
 * the kept values under d's prefix. */
static void
histogram(const float *l, int32_t vocab, const struct sample_row_cut *c,
    const struct sample_row_descent *d, int shift, double lse, uint32_t *hc, double *hm)
{
	memset(hc, 0, SR_BINS * sizeof(*hc));
	memset(hm, 0, SR_BINS * sizeof(*hm));
	for (int32_t i = 0; i < vocab; i++) {
		float v = sr_value(l[i], c->inv_temp);
		if (!sr_kept(c, v, i))
			continue;
		int b = sr_digit(d, sr_key(v), shift);
		if (b < 0)
			continue;
		hc[b]++;
		if (isfinite(lse))
			hm[b] += exp((double)v - lse);
	}
}

/* log(sum(exp(v))) over the kept values, m their maximum (sampler.c's logsumexp). */
static double
kept_lse(const float *l, int32_t vocab, const struct sample_row_cut *c, float m)
{
	double sum = 0;

	for (int32_t i = 0; i < vocab; i++) {
		float v = sr_value(l[i], c->inv_temp);
		if (sr_kept(c, v, i))
			sum += (double)sr_expf(sr_sub(v, m));
	}
	return (double)m + log(sum);
}

int32_t
sample_row_ref(const float *l, int32_t vocab, const struct sample_row_params *p)
{
	struct sample_row_cut c = { p->inv_temp, -INFINITY, -INFINITY, -INFINITY, INT32_MAX };
	uint32_t hc[SR_BINS];
	double hm[SR_BINS];
	int32_t mi = -1;
	float best = -INFINITY;

	/* 1. the argmax (lowest id among ties) and the largest value m */
	for (int32_t i = 0; i < vocab; i++) {
		float v = sr_clean(l[i]);
		if (v > best) {
			best = v;
			mi = i;
		}
	}
	if (mi < 0)
		return 0;
	if (p->greedy)
		return mi;
	float m = sr_value(l[mi], c.inv_temp);

	/* 2. min_p */
	if (p->log_min_p > -INFINITY)
		c.min_cut = m + p->log_min_p;

	/* 3. top_k: radix select of the k-th largest */
	if (p->top_k > 0) {
		struct sample_row_descent d = { 0, 0, (uint32_t)p->top_k, 0.0, 0 };
		uint32_t total = 0;
		for (int shift = SR_TOP_SHIFT; shift >= 0; shift -= SR_DIGIT_BITS) {
			histogram(l, vocab, &c, &d, shift, NAN, hc, hm);
			if (shift == SR_TOP_SHIFT) {
				for (int b = 0; b < SR_BINS; b++)
					total += hc[b];
				if ((uint32_t)p->top_k >= total)
					break;
			}
			sr_pick_rank(&d, hc, shift);
		}
		if ((uint32_t)p->top_k < total)
			c.kth = sr_unkey(d.prefix);
	}

	/* 4. top_p: radix descent by mass, then the ties of the cut value */
	if (p->top_p < 1.0f) {
		double lse = kept_lse(l, vocab, &c, m), top_p = p->top_p;
		struct sample_row_descent d = { 0, 0, 0, 0.0, 0 };
		for (int shift = SR_TOP_SHIFT; shift >= 0; shift -= SR_DIGIT_BITS) {
			histogram(l, vocab, &c, &d, shift, lse, hc, hm);
			sr_pick_mass(&d, hc, hm, top_p, shift);
		}
		float cv = sr_unkey(d.prefix);
		uint32_t j = sr_tie_rank(d.before, exp((double)cv - lse), d.cnt, top_p);
		c.cut_v = cv;
		if (j + 1 < d.cnt) {
			/* the j-th tie in ascending id order is the last to stay */
			uint32_t k = 0;
			for (int32_t i = 0; i < vocab; i++) {
				float v = sr_value(l[i], c.inv_temp);
				if (sr_kept(&c, v, i) && sr_key(v) == d.prefix && k++ == j) {
					c.cut_id = i;
					break;
				}
			}
		}
	}

	/* 5. the draw: the first id whose cumulative mass exceeds u */
	double lse = kept_lse(l, vocab, &c, m), acc = 0;
	int32_t last = -1;
	for (int32_t i = 0; i < vocab; i++) {
		float v = sr_value(l[i], c.inv_temp);
		if (!sr_kept(&c, v, i))
			continue;
		acc += exp((double)v - lse);
		last = i;
		if (p->u < acc)
			return i;
	}
	return last;
}
