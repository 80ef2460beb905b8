/*
 * tests/unit/test-sampler.c - engine/sampler: greedy and its ties, seeded
 * reproducibility, the filters (top_k, top_p, min_p) against greedy and
 * against what they must remove, the penalties' effect on the argmax, the
 * top logprobs, and the sampled frequencies of a known distribution.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/sampler.h"

#define V 64

static void
random_logits(float *l, int n, unsigned seed)
{
	srand(seed);
	for (int i = 0; i < n; i++)
		l[i] = (float)rand() / (float)RAND_MAX * 8.0f - 4.0f;
}

static int32_t
sample_once(const struct sampler_params *p, const float *logits, int n, const int32_t *prev,
    size_t n_prev, size_t n_prompt)
{
	float *l = malloc((size_t)n * sizeof(float));
	memcpy(l, logits, (size_t)n * sizeof(float));
	struct sampler *s = sampler_create(p);
	int32_t t = sampler_sample(s, l, n, prev, n_prev, n_prompt, NULL);
	sampler_destroy(s);
	free(l);
	return t;
}

static int32_t
argmax_of(const float *l, int n)
{
	int32_t b = 0;
	for (int i = 1; i < n; i++)
		if (l[i] > l[b])
			b = i;
	return b;
}

Test(sampler, greedy_is_argmax_with_ties_to_lowest_id)
{
	struct sampler_params p;
	float l[V];

	sampler_params_default(&p);
	p.temperature = 0;
	for (unsigned seed = 1; seed < 20; seed++) {
		random_logits(l, V, seed);
		cr_assert_eq(sample_once(&p, l, V, NULL, 0, 0), argmax_of(l, V));
	}
	for (int i = 0; i < V; i++)
		l[i] = 0;
	l[17] = l[9] = l[40] = 3.0f;
	cr_assert_eq(sample_once(&p, l, V, NULL, 0, 0), 9);
	/* NaN never wins */
	l[2] = NAN;
	cr_assert_eq(sample_once(&p, l, V, NULL, 0, 0), 9);
}

Test(sampler, greedy_logprob)
{
	struct sampler_params p;
	float l[3] = { 0.0f, logf(3.0f), 0.0f };   /* probabilities 1/5, 3/5, 1/5 */
	float lp;

	sampler_params_default(&p);
	p.temperature = 0;
	struct sampler *s = sampler_create(&p);
	cr_assert_eq(sampler_sample(s, l, 3, NULL, 0, 0, &lp), 1);
	cr_assert_float_eq(lp, logf(0.6f), 1e-5);
	sampler_destroy(s);
}

Test(sampler, same_seed_same_tokens)
{
	struct sampler_params p;
	float base[V], l[V];
	int32_t a[50], b[50], c[50];

	sampler_params_default(&p);
	p.seed = 1234;
	p.has_seed = true;
	random_logits(base, V, 7);
	for (int run = 0; run < 3; run++) {
		if (run == 2)
			p.seed = 1235;
		struct sampler *s = sampler_create(&p);
		int32_t *out = run == 0 ? a : run == 1 ? b : c;
		for (int i = 0; i < 50; i++) {
			memcpy(l, base, sizeof(l));
			out[i] = sampler_sample(s, l, V, NULL, 0, 0, NULL);
			cr_assert(out[i] >= 0 && out[i] < V);
		}
		sampler_destroy(s);
	}
	cr_assert(memcmp(a, b, sizeof(a)) == 0, "same seed gave different tokens");
	cr_assert(memcmp(a, c, sizeof(a)) != 0, "different seeds gave the same 50 tokens");
}

Test(sampler, unseeded_samplers_differ)
{
	struct sampler_params p;
	float base[V], l[V];
	int32_t a[50], b[50];

	sampler_params_default(&p);
	for (int i = 0; i < V; i++)
		base[i] = 0;            /* uniform: 64^50 sequences */
	for (int run = 0; run < 2; run++) {
		struct sampler *s = sampler_create(&p);
		for (int i = 0; i < 50; i++) {
			memcpy(l, base, sizeof(l));
			(run ? b : a)[i] = sampler_sample(s, l, V, NULL, 0, 0, NULL);
		}
		sampler_destroy(s);
	}
	cr_assert(memcmp(a, b, sizeof(a)) != 0);
}

Test(sampler, top_k_1_and_tiny_top_p_are_greedy)
{
	struct sampler_params p;
	float l[V];

	for (unsigned seed = 1; seed < 30; seed++) {
		random_logits(l, V, seed);
		int32_t want = argmax_of(l, V);
		sampler_params_default(&p);
		p.temperature = 1.5f;
		p.seed = seed;
		p.has_seed = true;
		p.top_k = 1;
		cr_assert_eq(sample_once(&p, l, V, NULL, 0, 0), want);
		p.top_k = 0;
		p.top_p = 1e-6f;
		cr_assert_eq(sample_once(&p, l, V, NULL, 0, 0), want);
		p.top_p = 1.0f;
		p.min_p = 1.0f;
		cr_assert_eq(sample_once(&p, l, V, NULL, 0, 0), want);
	}
}

Test(sampler, filters_leave_the_expected_tokens)
{
	struct sampler_params p;
	/* probabilities 0.5, 0.25, 0.125, 0.0625, 0.0625 */
	float base[5] = { logf(8), logf(4), logf(2), logf(1), logf(1) };
	float l[5];
	int32_t ids[5];
	float lps[5];

	sampler_params_default(&p);
	p.seed = 1;
	p.has_seed = true;

	/* min_p 0.3: p_i / p_max >= 0.3 keeps tokens 0 and 1 */
	p.min_p = 0.3f;
	struct sampler *s = sampler_create(&p);
	for (int it = 0; it < 200; it++) {
		memcpy(l, base, sizeof(l));
		int32_t t = sampler_sample(s, l, 5, NULL, 0, 0, NULL);
		cr_assert(t == 0 || t == 1, "min_p let token %d through", t);
	}
	cr_assert(isinf(l[2]) && isinf(l[3]) && isinf(l[4]));
	cr_assert_eq(sampler_top_logprobs(l, 5, 5, ids, lps), 5);
	cr_assert_eq(ids[0], 0);
	cr_assert_float_eq(lps[0], logf(2.0f / 3.0f), 1e-5);    /* renormalized over {0, 1} */
	cr_assert_float_eq(lps[1], logf(1.0f / 3.0f), 1e-5);
	sampler_destroy(s);

	/* top_p 0.7: 0.5 < 0.7 so token 1 stays, 0.75 >= 0.7 so token 2 goes */
	p.min_p = 0;
	p.top_p = 0.7f;
	s = sampler_create(&p);
	int seen1 = 0;
	for (int it = 0; it < 200; it++) {
		memcpy(l, base, sizeof(l));
		int32_t t = sampler_sample(s, l, 5, NULL, 0, 0, NULL);
		cr_assert(t == 0 || t == 1, "top_p let token %d through", t);
		seen1 += t == 1;
	}
	cr_assert(seen1 > 0);
	sampler_destroy(s);

	/* top_p 0.8 reaches into token 2 */
	p.top_p = 0.8f;
	s = sampler_create(&p);
	int seen2 = 0;
	for (int it = 0; it < 400; it++) {
		memcpy(l, base, sizeof(l));
		int32_t t = sampler_sample(s, l, 5, NULL, 0, 0, NULL);
		cr_assert(t <= 2, "top_p 0.8 let token %d through", t);
		seen2 += t == 2;
	}
	cr_assert(seen2 > 0);
	sampler_destroy(s);

	/* top_k 3 keeps tokens 0..2; top_k 4 keeps the tie at the boundary too */
	p.top_p = 1.0f;
	p.top_k = 3;
	s = sampler_create(&p);
	for (int it = 0; it < 200; it++) {
		memcpy(l, base, sizeof(l));
		cr_assert_leq(sampler_sample(s, l, 5, NULL, 0, 0, NULL), 2);
	}
	sampler_destroy(s);
	p.top_k = 4;
	s = sampler_create(&p);
	memcpy(l, base, sizeof(l));
	sampler_sample(s, l, 5, NULL, 0, 0, NULL);
	cr_assert(!isinf(l[3]) && !isinf(l[4]));
	sampler_destroy(s);
}

Test(sampler, penalties_move_the_argmax)
{
	struct sampler_params p;
	float l[4] = { 2.0f, 1.8f, 1.0f, -1.0f };
	int32_t prev[3] = { 0, 0, 3 };   /* prompt: {0}; generated: {0, 3} */

	sampler_params_default(&p);
	p.temperature = 0;
	cr_assert_eq(sample_once(&p, l, 4, prev, 3, 1), 0);

	p.frequency_penalty = 0.5f;     /* 2.0 - 0.5 * 1 = 1.5 < 1.8 */
	cr_assert_eq(sample_once(&p, l, 4, prev, 3, 1), 1);
	/* counted over generated tokens only: both 0s in the prompt -> no penalty */
	cr_assert_eq(sample_once(&p, l, 4, prev, 3, 2), 0);
	p.frequency_penalty = 0.15f;    /* 2.0 - 0.15 * 2 = 1.7 < 1.8 when both are generated */
	cr_assert_eq(sample_once(&p, l, 4, prev, 3, 0), 1);
	cr_assert_eq(sample_once(&p, l, 4, prev, 3, 1), 0);

	sampler_params_default(&p);
	p.temperature = 0;
	p.presence_penalty = 0.3f;      /* once, however many times: 1.7 < 1.8 */
	cr_assert_eq(sample_once(&p, l, 4, prev, 3, 0), 1);
	p.presence_penalty = 0.1f;
	cr_assert_eq(sample_once(&p, l, 4, prev, 3, 0), 0);
	p.presence_penalty = -2.0f;     /* negative encourages: generated token 3 becomes 2.5 */
	float l2[4] = { 2.0f, 1.8f, 1.0f, 0.5f };
	cr_assert_eq(sample_once(&p, l2, 4, prev, 3, 2), 3);

	/* repetition: over prompt and generated, positive logits divided */
	sampler_params_default(&p);
	p.temperature = 0;
	p.repetition_penalty = 1.2f;    /* 2.0 / 1.2 = 1.67 < 1.8 */
	cr_assert_eq(sample_once(&p, l, 4, prev, 3, 3), 1);
	int32_t prev_neg[1] = { 1 };
	float l3[3] = { -1.0f, -0.9f, -5.0f };   /* negative logits multiplied */
	cr_assert_eq(sample_once(&p, l3, 3, prev_neg, 1, 1), 0);

	/* penalized logits are left in place */
	float l4[4] = { 2.0f, 1.8f, 1.0f, -1.0f };
	p.repetition_penalty = 2.0f;
	struct sampler *s = sampler_create(&p);
	sampler_sample(s, l4, 4, prev, 3, 1, NULL);
	cr_assert_float_eq(l4[0], 1.0f, 1e-6);
	cr_assert_float_eq(l4[3], -2.0f, 1e-6);
	cr_assert_float_eq(l4[1], 1.8f, 1e-6);
	/* token ids outside the vocabulary are ignored */
	int32_t bad[2] = { -5, 99 };
	float l5[4] = { 2.0f, 1.8f, 1.0f, -1.0f };
	cr_assert_eq(sampler_sample(s, l5, 4, bad, 2, 0, NULL), 0);
	sampler_destroy(s);
}

Test(sampler, distribution_of_draws)
{
	struct sampler_params p;
	const float probs[3] = { 0.2f, 0.5f, 0.3f };
	int counts[3] = { 0 };
	float l[3];

	sampler_params_default(&p);
	p.seed = 42;
	p.has_seed = true;
	struct sampler *s = sampler_create(&p);
	for (int it = 0; it < 10000; it++) {
		for (int i = 0; i < 3; i++)
			l[i] = logf(probs[i]) + 3.0f;
		int32_t t = sampler_sample(s, l, 3, NULL, 0, 0, NULL);
		cr_assert(t >= 0 && t < 3);
		counts[t]++;
	}
	sampler_destroy(s);
	for (int i = 0; i < 3; i++) {
		double f = counts[i] / 10000.0;
		cr_assert(fabs(f - probs[i]) < 0.03, "token %d drawn %.3f, want %.2f", i, f, probs[i]);
	}

	/* temperature 0.5 squares the ratios: 4 : 25 : 9 */
	p.temperature = 0.5f;
	memset(counts, 0, sizeof(counts));
	s = sampler_create(&p);
	for (int it = 0; it < 10000; it++) {
		for (int i = 0; i < 3; i++)
			l[i] = logf(probs[i]);
		counts[sampler_sample(s, l, 3, NULL, 0, 0, NULL)]++;
	}
	sampler_destroy(s);
	cr_assert(fabs(counts[1] / 10000.0 - 25.0 / 38) < 0.03);
	cr_assert(fabs(counts[0] / 10000.0 - 4.0 / 38) < 0.03);
}

Test(sampler, sampled_logprob_and_top_logprobs)
{
	struct sampler_params p;
	float l[4] = { 1.0f, 3.0f, 3.0f, 0.0f };
	float lp;
	int32_t ids[8];
	float lps[8];

	sampler_params_default(&p);
	p.seed = 3;
	p.has_seed = true;
	struct sampler *s = sampler_create(&p);
	int32_t t = sampler_sample(s, l, 4, NULL, 0, 0, &lp);
	double z = exp(1.0) + 2 * exp(3.0) + 1.0;
	float want[4] = { (float)(1.0 - log(z)), (float)(3.0 - log(z)), (float)(3.0 - log(z)),
		(float)-log(z) };
	cr_assert_float_eq(lp, want[t], 1e-5);
	sampler_destroy(s);

	cr_assert_eq(sampler_top_logprobs(l, 4, 8, ids, lps), 4);
	cr_assert_eq(ids[0], 1);         /* tie: lower id first */
	cr_assert_eq(ids[1], 2);
	cr_assert_eq(ids[2], 0);
	cr_assert_eq(ids[3], 3);
	for (int i = 0; i < 4; i++)
		cr_assert_float_eq(lps[i], want[ids[i]], 1e-5);
	cr_assert_eq(sampler_top_logprobs(l, 4, 1, ids, lps), 1);
	cr_assert_eq(ids[0], 1);
	cr_assert_eq(sampler_top_logprobs(l, 4, 0, ids, lps), 0);
}

Test(sampler, params_check)
{
	struct sampler_params p;
	const char *why;

	sampler_params_default(&p);
	cr_assert_eq(sampler_params_check(&p, &why), 0);
	cr_assert_null(why);
	p.top_p = 0;
	cr_assert_eq(sampler_params_check(&p, &why), -EINVAL);
	cr_assert_not_null(why);
	sampler_params_default(&p);
	p.temperature = -1;
	cr_assert_eq(sampler_params_check(&p, NULL), -EINVAL);
	sampler_params_default(&p);
	p.repetition_penalty = 0;
	cr_assert_eq(sampler_params_check(&p, NULL), -EINVAL);
	sampler_params_default(&p);
	p.presence_penalty = 2.5f;
	cr_assert_eq(sampler_params_check(&p, NULL), -EINVAL);
}

static int
desc_cmp(const void *a, const void *b)
{
	const float *x = *(const float *const *)a, *y = *(const float *const *)b;

	if (*x != *y)
		return *x > *y ? -1 : 1;
	return (x > y) - (x < y);
}

/* top_p against a sort-based reference, with many tied logits. */
Test(sampler, top_p_matches_sorted_reference)
{
	struct sampler_params p;
	float base[300], l[300];
	const float *order[300];

	for (int it = 0; it < 200; it++) {
		int n = 1 + it % 300;
		srand((unsigned)it);
		for (int i = 0; i < n; i++)
			base[i] = (float)(rand() % 7) * 0.5f;
		sampler_params_default(&p);
		p.top_p = 0.05f + 0.9f * (float)(rand() % 100) / 100.0f;
		p.seed = (uint64_t)it;
		p.has_seed = true;
		memcpy(l, base, (size_t)n * sizeof(float));
		struct sampler *s = sampler_create(&p);
		int32_t t = sampler_sample(s, l, n, NULL, 0, 0, NULL);
		sampler_destroy(s);

		double z = 0;
		for (int i = 0; i < n; i++) {
			z += exp((double)base[i]);
			order[i] = &base[i];
		}
		qsort(order, (size_t)n, sizeof(order[0]), desc_cmp);
		double above = 0;
		for (int r = 0; r < n; r++) {
			int id = (int)(order[r] - base);
			bool keep = above < p.top_p;
			cr_assert_eq(!isinf(l[id]), keep, "it %d n %d top_p %g: token %d (rank %d) %s", it,
			    n, p.top_p, id, r, keep ? "dropped" : "kept");
			above += exp((double)base[id]) / z;
		}
		cr_assert(!isinf(l[t]), "sampled a filtered token");
	}
}

Test(sampler, infinite_and_nan_logits)
{
	struct sampler_params p;
	float l[6];
	float lp;

	for (int greedy = 0; greedy < 2; greedy++) {
		sampler_params_default(&p);
		p.temperature = greedy ? 0.0f : 0.7f;
		p.top_p = 0.9f;
		p.min_p = 0.1f;
		p.seed = 5;
		p.has_seed = true;
		struct sampler *s = sampler_create(&p);
		float in[6] = { 1.0f, NAN, -INFINITY, 2.0f, INFINITY, 0.0f };
		memcpy(l, in, sizeof(l));
		cr_assert_eq(sampler_sample(s, l, 6, NULL, 0, 0, &lp), 4);
		cr_assert(isfinite(lp) && lp <= 0.0f && lp > -1e-3f, "logprob %g", lp);
		/* all -inf or NaN: a valid id and a -inf logprob, no crash */
		float none[3] = { -INFINITY, NAN, -INFINITY };
		int32_t t = sampler_sample(s, none, 3, NULL, 0, 0, &lp);
		cr_assert(t >= 0 && t < 3);
		cr_assert(isinf(lp) && lp < 0);
		sampler_destroy(s);
	}
}
