/*
 * engine/sampler.c - sampling of the next token from logits: penalties,
 * temperature, min_p / top_k / top_p filters and the draw, with a per-sequence
 * PRNG (xoshiro256**). See engine/sampler.h for the order and conventions.
 */
#include "config.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "engine/sampler.h"
#include "lib/util.h"

#define SAMPLER_EPS 1e-5f

struct cand {
	float v;
	int32_t id;
};

struct sampler {
	struct sampler_params p;
	uint64_t rng[4];
	/* scratch, grown to the vocabulary on demand */
	int32_t cap;
	int32_t *counts;        /* generated-token counts */
	uint8_t *seen;          /* 1: in prompt or generated, 2: already penalized */
	struct cand *cand;
};

void
sampler_params_default(struct sampler_params *p)
{
	*p = (struct sampler_params){
		.temperature = 1.0f,
		.top_k = 0,
		.top_p = 1.0f,
		.min_p = 0.0f,
		.presence_penalty = 0.0f,
		.frequency_penalty = 0.0f,
		.repetition_penalty = 1.0f,
		.seed = 0,
		.has_seed = false,
	};
}

int
sampler_params_check(const struct sampler_params *p, const char **why)
{
	const char *w = NULL;

	if (!(p->temperature >= 0.0f) || isinf(p->temperature))
		w = "temperature must be a finite number >= 0";
	else if (!(p->top_p > 0.0f && p->top_p <= 1.0f))
		w = "top_p must be in (0, 1]";
	else if (!(p->min_p >= 0.0f && p->min_p <= 1.0f))
		w = "min_p must be in [0, 1]";
	else if (!(p->presence_penalty >= -2.0f && p->presence_penalty <= 2.0f))
		w = "presence_penalty must be in [-2, 2]";
	else if (!(p->frequency_penalty >= -2.0f && p->frequency_penalty <= 2.0f))
		w = "frequency_penalty must be in [-2, 2]";
	else if (!(p->repetition_penalty > 0.0f) || isinf(p->repetition_penalty))
		w = "repetition_penalty must be a finite number > 0";
	else if (p->top_k < -1)
		w = "top_k must be -1, 0 (off) or positive";
	if (why != NULL)
		*why = w;
	return w != NULL ? -EINVAL : 0;
}

/* ---- PRNG: xoshiro256** seeded through splitmix64 ---- */

static uint64_t
splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static inline uint64_t
rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t
rng_next(uint64_t s[4])
{
	uint64_t r = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return r;
}

/* Uniform in [0, 1). */
static double
rng_uniform(uint64_t s[4])
{
	return (double)(rng_next(s) >> 11) * 0x1p-53;
}

struct sampler *
sampler_create(const struct sampler_params *p)
{
	struct sampler *s = xcalloc(1, sizeof(*s));
	uint64_t seed;

	s->p = *p;
	if (p->has_seed) {
		seed = p->seed;
	} else if (getrandom(&seed, sizeof(seed), 0) != (ssize_t)sizeof(seed)) {
		seed = now_us() ^ (uint64_t)(uintptr_t)s;
	}
	for (int i = 0; i < 4; i++)
		s->rng[i] = splitmix64(&seed);
	return s;
}

void
sampler_destroy(struct sampler *s)
{
	if (s == NULL)
		return;
	free(s->counts);
	free(s->seen);
	free(s->cand);
	free(s);
}

const struct sampler_params *
sampler_get_params(const struct sampler *s)
{
	return &s->p;
}

double
sampler_uniform(struct sampler *s)
{
	return rng_uniform(s->rng);
}

static void
reserve(struct sampler *s, int32_t vocab)
{
	if (vocab <= s->cap)
		return;
	free(s->counts);
	free(s->seen);
	free(s->cand);
	s->counts = xcalloc((size_t)vocab, sizeof(*s->counts));
	s->seen = xcalloc((size_t)vocab, sizeof(*s->seen));
	s->cand = xcalloc((size_t)vocab, sizeof(*s->cand));
	s->cap = vocab;
}

/*
 * vLLM's penalties: repetition over prompt + generated tokens (positive
 * logits divided, others multiplied), then frequency (per occurrence) and
 * presence (once) over the generated tokens only.
 */
static void
apply_penalties(struct sampler *s, float *logits, int32_t vocab, const int32_t *prev,
    size_t n_prev, size_t n_prompt)
{
	const struct sampler_params *p = &s->p;
	bool rep = p->repetition_penalty != 1.0f;
	bool freq = p->frequency_penalty != 0.0f || p->presence_penalty != 0.0f;

	if ((!rep && !freq) || n_prev == 0)
		return;
	for (size_t i = 0; i < n_prev; i++) {
		int32_t t = prev[i];
		if (t < 0 || t >= vocab)
			continue;
		s->seen[t] = 1;
		if (i >= n_prompt)
			s->counts[t]++;
	}
	for (size_t i = 0; i < n_prev; i++) {
		int32_t t = prev[i];
		if (t < 0 || t >= vocab || s->seen[t] != 1)
			continue;
		s->seen[t] = 2;
		float l = logits[t];
		if (rep)
			l = l > 0 ? l / p->repetition_penalty : l * p->repetition_penalty;
		if (s->counts[t] > 0)
			l -= p->frequency_penalty * (float)s->counts[t] + p->presence_penalty;
		logits[t] = l;
	}
	for (size_t i = 0; i < n_prev; i++) {
		int32_t t = prev[i];
		if (t >= 0 && t < vocab) {
			s->seen[t] = 0;
			s->counts[t] = 0;
		}
	}
}

/* Index of the largest logit, the lowest id among ties; -1 if all are NaN/-inf. */
static int32_t
argmax(const float *l, int32_t vocab)
{
	int32_t best = -1;
	float bv = -INFINITY;

	for (int32_t i = 0; i < vocab; i++) {
		if (l[i] > bv) {
			bv = l[i];
			best = i;
		}
	}
	return best;
}

/* log(sum(exp(l))) over the finite logits, with m their maximum. */
static double
logsumexp(const float *l, int32_t vocab, float m)
{
	double sum = 0;

	for (int32_t i = 0; i < vocab; i++)
		if (l[i] > -INFINITY)
			sum += (double)expf(l[i] - m);
	return (double)m + log(sum);
}

/* The k-th largest value of c[0..n) (1-based k <= n); reorders c. */
static float
kth_largest(struct cand *c, int32_t n, int32_t k)
{
	int32_t lo = 0, hi = n - 1, want = k - 1;

	while (lo < hi) {
		float pivot = c[lo + (hi - lo) / 2].v;
		int32_t i = lo, j = hi;
		while (i <= j) {
			while (c[i].v > pivot)
				i++;
			while (c[j].v < pivot)
				j--;
			if (i <= j) {
				struct cand t = c[i];
				c[i] = c[j];
				c[j] = t;
				i++;
				j--;
			}
		}
		if (want <= j)
			hi = j;
		else if (want >= i)
			lo = i;
		else
			return c[want].v;
	}
	return c[want].v;
}

static void
apply_min_p(const struct sampler *s, float *l, int32_t vocab, float m)
{
	/* p_i / p_max = exp(l_i - m) < min_p */
	float cut = m + logf(s->p.min_p);

	for (int32_t i = 0; i < vocab; i++)
		if (l[i] < cut)
			l[i] = -INFINITY;
}

/* Keeps the tokens whose logit is >= the k-th largest (ties all kept, as vLLM). */
static void
apply_top_k(struct sampler *s, float *l, int32_t vocab)
{
	int32_t n = 0;

	for (int32_t i = 0; i < vocab; i++)
		if (l[i] > -INFINITY)
			s->cand[n++] = (struct cand){ l[i], i };
	if (s->p.top_k >= n)
		return;
	float kth = kth_largest(s->cand, n, s->p.top_k);
	for (int32_t i = 0; i < vocab; i++)
		if (l[i] < kth)
			l[i] = -INFINITY;
}

/* Ascending id (ties in value are kept lowest id first). */
static int
cand_id_cmp(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;

	return (x->id > y->id) - (x->id < y->id);
}

/*
 * Keeps the smallest set of most likely tokens whose mass reaches top_p: in
 * descending order (ties by ascending id) a token stays when the mass of the
 * tokens before it is < top_p. Found with a weighted quickselect (expected
 * linear time: the nucleus of a flat 150k-token distribution is large).
 */
static void
apply_top_p(struct sampler *s, float *l, int32_t vocab, float m)
{
	double lse = logsumexp(l, vocab, m);
	double top_p = s->p.top_p;
	struct cand *c = s->cand;
	int32_t n = 0;

	for (int32_t i = 0; i < vocab; i++)
		if (l[i] > -INFINITY)
			c[n++] = (struct cand){ l[i], i };
	/* c[0, lo) sorts before the range, c[hi, n) after; before holds their mass */
	int32_t lo = 0, hi = n;
	double before = 0;
	float cut_v = -INFINITY;        /* keep l > cut_v, and l == cut_v with id <= cut_id */
	int32_t cut_id = INT32_MAX;
	uint64_t pick = 0x9e3779b97f4a7c15ull;
	while (lo < hi) {
		pick = pick * 6364136223846793005ull + 1442695040888963407ull;
		float pivot = c[lo + (int32_t)((pick >> 33) % (uint64_t)(hi - lo))].v;
		/* three-way partition: [lo, gt) > pivot, [gt, lt) == pivot, [lt, hi) < pivot */
		int32_t gt = lo, i = lo, lt = hi;
		double mg = 0, me = 0;
		while (i < lt) {
			struct cand t = c[i];
			if (t.v > pivot) {
				c[i] = c[gt];
				c[gt++] = t;
				i++;
				mg += exp((double)t.v - lse);
			} else if (t.v < pivot) {
				c[i] = c[--lt];
				c[lt] = t;
			} else {
				i++;
				me += exp((double)t.v - lse);
			}
		}
		if (before + mg >= top_p && gt > lo) {
			hi = gt;                /* the cut is among the greater ones */
		} else if (before + mg + me >= top_p || lt == hi) {
			/* the cut is among the ties (or nothing lies below them) */
			qsort(c + gt, (size_t)(lt - gt), sizeof(*c), cand_id_cmp);
			double acc = before + mg;
			int32_t j = gt;
			while (j < lt - 1 && acc + exp((double)c[j].v - lse) < top_p) {
				acc += exp((double)c[j].v - lse);
				j++;
			}
			cut_v = pivot;
			cut_id = c[j].id;
			break;
		} else {
			before += mg + me;
			lo = lt;
		}
	}
	for (int32_t i = 0; i < vocab; i++) {
		if (l[i] < cut_v || (l[i] == cut_v && i > cut_id))
			l[i] = -INFINITY;
	}
}

static int32_t
draw(struct sampler *s, const float *l, int32_t vocab, double lse)
{
	double u = rng_uniform(s->rng);
	double acc = 0;
	int32_t last = -1;

	for (int32_t i = 0; i < vocab; i++) {
		if (!(l[i] > -INFINITY))
			continue;
		acc += exp((double)l[i] - lse);
		last = i;
		if (u < acc)
			return i;
	}
	return last;    /* rounding left u just above the total */
}

/* NaN can never be chosen (-inf); +inf becomes the largest float so sums stay finite. */
static void
sanitize(float *l, int32_t vocab)
{
	for (int32_t i = 0; i < vocab; i++) {
		if (isnan(l[i]))
			l[i] = -INFINITY;
		else if (l[i] == INFINITY)
			l[i] = FLT_MAX;
	}
}

int32_t
sampler_sample(struct sampler *s, float *logits, int32_t vocab, const int32_t *prev_tokens,
    size_t n_prev, size_t n_prompt, float *out_logprob)
{
	const struct sampler_params *p = &s->p;

	if (vocab <= 0)
		return -1;
	reserve(s, vocab);
	sanitize(logits, vocab);
	apply_penalties(s, logits, vocab, prev_tokens, n_prev, n_prompt);
	sanitize(logits, vocab);

	int32_t mi = argmax(logits, vocab);
	if (mi < 0) {                   /* nothing finite to choose from */
		if (out_logprob != NULL)
			*out_logprob = -INFINITY;
		return 0;
	}
	if (p->temperature < SAMPLER_EPS) {
		if (out_logprob != NULL)
			*out_logprob = (float)((double)logits[mi] - logsumexp(logits, vocab, logits[mi]));
		return mi;
	}
	float inv = 1.0f / p->temperature;
	for (int32_t i = 0; i < vocab; i++)
		logits[i] *= inv;
	sanitize(logits, vocab);
	float m = logits[mi];           /* scaling by a positive factor keeps the argmax */
	if (p->min_p > 0.0f)
		apply_min_p(s, logits, vocab, m);
	if (p->top_k > 0)
		apply_top_k(s, logits, vocab);
	if (p->top_p < 1.0f)
		apply_top_p(s, logits, vocab, m);
	double lse = logsumexp(logits, vocab, m);
	int32_t tok = draw(s, logits, vocab, lse);
	if (out_logprob != NULL)
		*out_logprob = (float)((double)logits[tok] - lse);
	return tok;
}

int
sampler_top_logprobs(const float *logits, int32_t vocab, int n, int32_t *ids, float *logprobs)
{
	if (n <= 0 || vocab <= 0)
		return 0;
	if (n > vocab)
		n = vocab;
	int32_t mi = argmax(logits, vocab);
	double lse = mi < 0 ? 0.0 : logsumexp(logits, vocab, logits[mi]);
	int have = 0;

	/* insertion into the n best so far; ids ascend, so ties keep the lower id */
	for (int32_t i = 0; i < vocab; i++) {
		float v = logits[i];
		if (isnan(v))
			v = -INFINITY;
		if (have == n && !(v > logprobs[n - 1]))
			continue;
		int pos = have < n ? have++ : n - 1;
		while (pos > 0 && v > logprobs[pos - 1]) {
			logprobs[pos] = logprobs[pos - 1];
			ids[pos] = ids[pos - 1];
			pos--;
		}
		logprobs[pos] = v;
		ids[pos] = i;
	}
	for (int k = 0; k < have; k++)
		logprobs[k] = (float)((double)logprobs[k] - lse);
	return have;
}
