/*
 * engine/sample-ref.h - one logits row's sampling as the GPU does it
 * (engine/cuda-sample.cu), the per-row parameters that travel to the device,
 * and the steps both sides share. sample_row_ref (engine/sample-ref.c) is the
 * same algorithm in plain C: the GPU kernel's oracle, and forward.c's host
 * path for a backend without sample_rows.
 *
 * Semantics are engine/sampler.c's without penalties (vLLM's order:
 * temperature -> min_p -> top_k -> top_p -> draw), and the draw takes a
 * uniform u the caller drew from the request's own sampler
 * (sampler_uniform), so a seeded request picks the same token on either path
 * from the same logits. The steps, each a sweep over the row:
 *
 *   1. v_i = clean(clean(l_i) * inv_temp), clean: NaN -> -inf, +inf ->
 *      FLT_MAX (sampler.c's sanitize); m = v at the argmax of clean(l), the
 *      lowest id among ties. Nothing finite: token 0. Greedy: that argmax.
 *   2. min_p: drop v_i < m + log(min_p).
 *   3. top_k: kth = the k-th largest remaining value, by a radix select over
 *      order-preserving 32-bit keys (8 digits of SR_DIGIT_BITS = 4 bits, most
 *      significant first; -0 and +0 share a key); drop v_i < kth (all ties of
 *      the k-th stay). Off when k >= the number remaining.
 *   4. top_p: masses p_i = exp(v_i - lse) over what remains; a radix descent
 *      over the same keys with mass histograms finds the cut value c, the
 *      largest value whose mass at or above it reaches top_p (the smallest
 *      value when rounding leaves the total short of it). The ties of c stay
 *      in ascending id order while the mass before them is < top_p, so
 *      sampler.c's rule holds: in descending order (ties by ascending id) a
 *      token stays while the mass before it is < top_p.
 *   5. draw: masses over the kept tokens; the first kept id, ascending, whose
 *      cumulative mass exceeds u (sampler.c walks ids in order too); the last
 *      kept id when rounding leaves u above the total.
 *
 * Sums (lse, the histograms' masses, the draw's prefix) are taken in another
 * order on the GPU than here and in sampler.c, so the paths agree exactly
 * except when u or top_p lies within rounding (~1e-15 relative) of a
 * boundary.
 */
#ifndef LLMD_ENGINE_SAMPLE_REF_H
#define LLMD_ENGINE_SAMPLE_REF_H

#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "engine/sampler.h"

/* One row's sampling parameters, as the device reads them. */
struct sample_row_params {
	int32_t greedy;         /* 1: the argmax; the rest unused */
	float inv_temp;         /* 1.0f / temperature */
	float log_min_p;        /* logf(min_p); -INFINITY: off */
	int32_t top_k;          /* <= 0: off */
	float top_p;            /* >= 1: off */
	double u;               /* uniform in [0, 1), from the request's sampler */
};

/* 1 when p needs nothing but what the GPU does: no penalties. */
bool sample_row_supported(const struct sampler_params *p);
/* out = the row parameters of p with uniform u (unused when greedy). */
void sample_row_params_init(struct sample_row_params *out, const struct sampler_params *p,
    double u);
/* The token of logits (vocab) under p; sampler_sample's choice for the same
 * parameters and u. */
int32_t sample_row_ref(const float *logits, int32_t vocab, const struct sample_row_params *p);

/* ---- steps shared with engine/cuda-sample.cu ---- */

#ifdef __CUDACC__
#define SR_FN static __host__ __device__ inline
#else
#define SR_FN static inline
#endif

/* The radix: digits of SR_DIGIT_BITS bits, SR_BINS values; the first digit
 * is at SR_TOP_SHIFT. (Few bins: the GPU keeps a histogram per thread in
 * registers instead of contended shared-memory atomics.) */
#define SR_DIGIT_BITS 4
#define SR_BINS (1 << SR_DIGIT_BITS)
#define SR_TOP_SHIFT (32 - SR_DIGIT_BITS)

/* What survives the filters so far: v > -inf, v >= min_cut, v >= kth, and
 * v > cut_v or (v == cut_v and id <= cut_id). Off: -INFINITY / INT32_MAX. */
struct sample_row_cut {
	float inv_temp;
	float min_cut;
	float kth;
	float cut_v;
	int32_t cut_id;
};

/* A radix descent: the digits fixed so far (prefix under mask), the rank
 * still wanted below them (top_k), the mass above their range (top_p), and
 * the count of the last digit chosen (at the end: the ties of the value). */
struct sample_row_descent {
	uint32_t prefix, mask;
	uint32_t rank;
	double before;
	uint32_t cnt;
};

SR_FN float
sr_clean(float v)
{
	return isnan(v) ? -INFINITY : (v == INFINITY ? FLT_MAX : v);
}

/* v_i of raw logit l (step 1). */
SR_FN float
sr_value(float l, float inv_temp)
{
#ifdef __CUDA_ARCH__
	return sr_clean(__fmul_rn(sr_clean(l), inv_temp));
#else
	return sr_clean(sr_clean(l) * inv_temp);
#endif
}

/* (float)e^x as glibc's expf (correctly rounded in practice): the device's
 * expf is off by up to 2 ulp, its double exp rounded to float is not. */
SR_FN float
sr_expf(float x)
{
#ifdef __CUDA_ARCH__
	return (float)exp((double)x);
#else
	return expf(x);
#endif
}

SR_FN float
sr_sub(float a, float b)
{
#ifdef __CUDA_ARCH__
	return __fsub_rn(a, b);
#else
	return a - b;
#endif
}

/* Order-preserving key of a non-NaN float: larger value, larger key. */
SR_FN uint32_t
sr_key(float v)
{
	uint32_t b;

	if (v == 0.0f)
		v = 0.0f;       /* -0 ties with +0, as in sampler.c's comparisons */
#ifdef __CUDA_ARCH__
	b = __float_as_uint(v);
#else
	memcpy(&b, &v, sizeof(b));
#endif
	return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

SR_FN float
sr_unkey(uint32_t k)
{
	uint32_t b = (k & 0x80000000u) ? (k & 0x7fffffffu) : ~k;
#ifdef __CUDA_ARCH__
	return __uint_as_float(b);
#else
	float v;

	memcpy(&v, &b, sizeof(v));
	return v;
#endif
}

SR_FN bool
sr_kept(const struct sample_row_cut *c, float v, int32_t id)
{
	return v > -INFINITY && v >= c->min_cut && v >= c->kth &&
	    (v > c->cut_v || (v == c->cut_v && id <= c->cut_id));
}

/* The digit at shift of key k when k is under the descent's prefix, else -1. */
SR_FN int
sr_digit(const struct sample_row_descent *d, uint32_t k, int shift)
{
	return (k & d->mask) == d->prefix ? (int)((k >> shift) & (SR_BINS - 1u)) : -1;
}

/* top_k: fixes the digit (count histogram hc) that holds the rank-th largest. */
SR_FN void
sr_pick_rank(struct sample_row_descent *d, const uint32_t *hc, int shift)
{
	uint32_t above = 0;
	int b;

	for (b = SR_BINS - 1; b > 0; b--) {
		if (above + hc[b] >= d->rank)
			break;
		above += hc[b];
	}
	d->rank -= above;
	d->prefix |= (uint32_t)b << shift;
	d->mask |= (SR_BINS - 1u) << shift;
	d->cnt = hc[b];
}

/* top_p: fixes the largest digit whose mass at or above it (hm, with the
 * mass before the range) reaches top_p; the lowest non-empty one when none
 * does. */
SR_FN void
sr_pick_mass(struct sample_row_descent *d, const uint32_t *hc, const double *hm, double top_p,
    int shift)
{
	double t = d->before, t_low = d->before;
	int b, low = 0;

	for (b = SR_BINS - 1; b >= 0; b--) {
		if (hc[b] == 0)
			continue;
		if (t + hm[b] >= top_p)
			break;
		low = b;
		t_low = t;
		t += hm[b];
	}
	if (b < 0) {
		b = low;
		t = t_low;
	}
	d->before = t;
	d->prefix |= (uint32_t)b << shift;
	d->mask |= (SR_BINS - 1u) << shift;
	d->cnt = hc[b];
}

/* top_p among the cnt ties of the cut value, each of mass p, after mass
 * before: how many of them (in ascending id order) stay, less one. */
SR_FN uint32_t
sr_tie_rank(double before, double p, uint32_t cnt, double top_p)
{
	double acc = before;
	uint32_t j = 0;

	while (j + 1 < cnt && acc + p < top_p) {
		acc += p;
		j++;
	}
	return j;
}

#endif
