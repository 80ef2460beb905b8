/*
 * tests/unit/test-sample-gpu-ref.c - sample_row_ref (engine/sample-ref.c, the
 * GPU sampling kernel's algorithm in C and its oracle) against
 * engine/sampler.c: for random, peaked, tied, flat and non-finite logits and
 * a grid of (temperature, top_k, top_p, min_p), a sampler and a twin with the
 * same seed must give the same tokens, one through sampler_sample, the other
 * through sampler_uniform + sample_row_ref. Also: which parameters the GPU
 * path takes, the row parameters, and forward_batch_sample on the CPU: the
 * host path of a backend without sample_rows, and the dispatch to a backend
 * with one (chunks of rows, begin_batch's step kind).
 */
#include "config.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/commands.h"
#include "engine/forward.h"
#include "engine/kvcache.h"
#include "engine/model.h"
#include "engine/sample-ref.h"
#include "engine/sampler.h"
#include "tests/unit/engine-fixture.h"

static uint64_t rng_state;

static double
rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (double)(rng_state >> 11) * 0x1p-53;
}

enum logit_kind {
	L_UNIFORM,      /* U(-4, 4) */
	L_PEAKED,       /* a few large logits over a low floor */
	L_TIED,         /* multiples of 0.5 in [-3, 3]: many ties */
	L_FLAT,         /* all equal */
	L_NONFINITE,    /* uniform with NaN, +-inf, -0 and +0 sprinkled in */
	L_LARGE,        /* U(-3e38, 3e38): temperatures overflow to FLT_MAX */
	L_KINDS
};

static void
make_logits(float *l, int n, enum logit_kind kind)
{
	for (int i = 0; i < n; i++) {
		double r = rnd();
		switch (kind) {
		case L_UNIFORM:
			l[i] = (float)(r * 8 - 4);
			break;
		case L_PEAKED:
			l[i] = rnd() < 0.02 ? (float)(8 + r * 6) : (float)(r * 2 - 6);
			break;
		case L_TIED:
			l[i] = (float)floor(r * 13) * 0.5f - 3.0f;
			break;
		case L_FLAT:
			l[i] = 1.25f;
			break;
		case L_NONFINITE: {
			double k = rnd();
			l[i] = k < 0.05 ? NAN : k < 0.1 ? -INFINITY : k < 0.15 ? -0.0f :
			    k < 0.2 ? 0.0f : (float)(r * 6 - 3);
			break;
		}
		case L_LARGE:
			l[i] = (float)((r * 2 - 1) * 3e38);
			break;
		default:
			break;
		}
	}
	if (kind == L_NONFINITE && n > 3)
		l[n / 3] = INFINITY;
}

/*
 * n_draws tokens from the same logits through sampler_sample and through the
 * row path with a twin sampler (same seed); every pair must agree. Returns
 * how many rows the filters narrowed to a single token (for coverage).
 */
static int
check_same(const float *logits, int n, const struct sampler_params *sp, int n_draws,
    const char *what)
{
	struct sampler *a = sampler_create(sp), *b = sampler_create(sp);
	float *work = malloc((size_t)n * sizeof(float));
	int single = 0;

	for (int d = 0; d < n_draws; d++) {
		memcpy(work, logits, (size_t)n * sizeof(float));
		int32_t want = sampler_sample(a, work, n, NULL, 0, 0, NULL);
		int kept = 0;
		for (int i = 0; i < n; i++)
			kept += work[i] > -INFINITY;
		single += kept == 1;

		struct sample_row_params rp;
		sample_row_params_init(&rp, sampler_get_params(b), 0.0);
		if (!rp.greedy)
			rp.u = sampler_uniform(b);
		int32_t got = sample_row_ref(logits, n, &rp);
		cr_assert_eq(got, want, "%s draw %d: row path %d, sampler.c %d (temperature %g top_k %d "
		    "top_p %g min_p %g, u %.17g)", what, d, got, want, (double)sp->temperature, sp->top_k,
		    (double)sp->top_p, (double)sp->min_p, rp.u);
	}
	free(work);
	sampler_destroy(a);
	sampler_destroy(b);
	return single;
}

static const char *const kind_name[L_KINDS] = { "uniform", "peaked", "tied", "flat",
	"nonfinite", "large" };

/* The whole grid over one vocabulary size. */
static void
grid(int n, int n_draws)
{
	static const float temps[] = { 0.0f, 1e-6f, 0.3f, 0.7f, 1.0f, 1.5f, 10.0f };
	static const float top_ps[] = { 1.0f, 0.999f, 0.9f, 0.5f, 0.1f, 1e-6f };
	static const float min_ps[] = { 0.0f, 0.01f, 0.1f, 0.5f, 1.0f };
	const int32_t top_ks[] = { 0, -1, 1, 2, 5, 50, n, n + 10 };
	float *l = malloc((size_t)n * sizeof(float));
	char what[128];
	int single = 0, combos = 0;

	rng_state = 0x9e3779b97f4a7c15ull ^ (uint64_t)n;
	for (int k = 0; k < L_KINDS; k++) {
		make_logits(l, n, (enum logit_kind)k);
		for (size_t t = 0; t < sizeof(temps) / sizeof(temps[0]); t++)
			for (size_t tk = 0; tk < sizeof(top_ks) / sizeof(top_ks[0]); tk++)
				for (size_t tp = 0; tp < sizeof(top_ps) / sizeof(top_ps[0]); tp++)
					for (size_t mp = 0; mp < sizeof(min_ps) / sizeof(min_ps[0]); mp++) {
						struct sampler_params sp;
						sampler_params_default(&sp);
						sp.temperature = temps[t];
						sp.top_k = top_ks[tk];
						sp.top_p = top_ps[tp];
						sp.min_p = min_ps[mp];
						sp.has_seed = true;
						sp.seed = (uint64_t)combos * 7919u + (uint64_t)k;
						cr_assert_eq(sampler_params_check(&sp, NULL), 0);
						snprintf(what, sizeof(what), "vocab %d %s", n, kind_name[k]);
						single += check_same(l, n, &sp, n_draws, what);
						combos++;
					}
	}
	/* the grid reaches both narrow (one token left) and wide distributions */
	cr_expect_gt(single, 0);
	cr_expect_lt(single, combos * n_draws);
	free(l);
}

TestSuite(sample_gpu_ref, .timeout = 60);

Test(sample_gpu_ref, equals_sampler_on_a_small_vocabulary)
{
	grid(17, 3);
}

Test(sample_gpu_ref, equals_sampler_on_a_medium_vocabulary)
{
	grid(300, 3);
}

/* Qwen2's vocabulary, random combinations (the grid would take too long). */
Test(sample_gpu_ref, equals_sampler_on_a_large_vocabulary)
{
	enum { N = 151936 };
	float *l = malloc(N * sizeof(float));
	char what[64];

	rng_state = 12345;
	for (int c = 0; c < 40; c++) {
		struct sampler_params sp;
		make_logits(l, N, (enum logit_kind)(c % L_KINDS));
		sampler_params_default(&sp);
		sp.temperature = (float)(0.2 + rnd() * 1.5);
		sp.top_k = c % 3 == 0 ? 0 : 1 + (int32_t)(rnd() * 2000);
		sp.top_p = c % 4 == 0 ? 1.0f : (float)(0.05 + rnd() * 0.9);
		sp.min_p = c % 5 == 0 ? (float)(rnd() * 0.2) : 0.0f;
		sp.has_seed = true;
		sp.seed = (uint64_t)c;
		snprintf(what, sizeof(what), "vocab %d case %d", N, c);
		check_same(l, N, &sp, 2, what);
	}
	free(l);
}

/* Draws that land right at a token's cumulative boundary stay on the side
 * sampler.c takes: u just below and at the mass of the first token. */
Test(sample_gpu_ref, draw_boundaries)
{
	float l[4] = { 0.0f, 0.0f, 0.0f, 0.0f };       /* 0.25 each */
	struct sample_row_params rp = { 0, 1.0f, -INFINITY, 0, 1.0f, 0.0 };

	rp.u = 0.0;
	cr_expect_eq(sample_row_ref(l, 4, &rp), 0);
	rp.u = 0.2499999;
	cr_expect_eq(sample_row_ref(l, 4, &rp), 0);
	rp.u = 0.2500001;
	cr_expect_eq(sample_row_ref(l, 4, &rp), 1);
	rp.u = 0.9999999999;
	cr_expect_eq(sample_row_ref(l, 4, &rp), 3);
	rp.u = 1.5;             /* above any total: the last kept token */
	cr_expect_eq(sample_row_ref(l, 4, &rp), 3);
	rp.top_p = 0.5f;        /* ties: the lowest ids stay, mass before < 0.5 */
	rp.u = 0.9999999999;
	cr_expect_eq(sample_row_ref(l, 4, &rp), 1);
	rp.top_p = 1.0f;
	rp.top_k = 1;           /* the k-th's ties all stay */
	cr_expect_eq(sample_row_ref(l, 4, &rp), 3);
	/* -0 and +0 tie (masses 0.312, then 0.115 each): the top_p cut among them
	 * goes by id, whatever the sign */
	float zeros[7] = { 1.0f, -0.0f, 0.0f, -0.0f, 0.0f, -0.0f, 0.0f };
	struct sample_row_params zp = { 0, 1.0f, -INFINITY, 0, 0.5f, 0.9999999 };
	struct sampler_params sp;
	sampler_params_default(&sp);
	sp.top_p = 0.5f;
	sp.has_seed = true;
	sp.seed = 5;
	cr_expect_eq(sample_row_ref(zeros, 7, &zp), 2);
	cr_expect_eq(check_same(zeros, 7, &sp, 20, "signed zeros"), 0);
	float none[3] = { NAN, -INFINITY, NAN };
	cr_expect_eq(sample_row_ref(none, 3, &rp), 0, "nothing finite: token 0, as sampler.c");
	rp.greedy = 1;
	cr_expect_eq(sample_row_ref(none, 3, &rp), 0);
	float tie[3] = { 1.0f, 3.0f, 3.0f };
	cr_expect_eq(sample_row_ref(tie, 3, &rp), 1, "greedy: lowest id among ties");
}

Test(sample_gpu_ref, supported_parameters_and_row_params)
{
	struct sampler_params sp;
	struct sample_row_params rp;

	sampler_params_default(&sp);
	cr_expect(sample_row_supported(&sp));
	sp.presence_penalty = 0.5f;
	cr_expect_not(sample_row_supported(&sp));
	sampler_params_default(&sp);
	sp.frequency_penalty = -0.1f;
	cr_expect_not(sample_row_supported(&sp));
	sampler_params_default(&sp);
	sp.repetition_penalty = 1.1f;
	cr_expect_not(sample_row_supported(&sp));

	sampler_params_default(&sp);
	sp.temperature = 0.5f;
	sp.min_p = 0.25f;
	sp.top_k = 40;
	sp.top_p = 0.9f;
	sample_row_params_init(&rp, &sp, 0.125);
	cr_expect_eq(rp.greedy, 0);
	cr_expect_eq(rp.inv_temp, 2.0f);
	cr_expect_eq(rp.log_min_p, logf(0.25f));
	cr_expect_eq(rp.top_k, 40);
	cr_expect_eq(rp.top_p, 0.9f);
	cr_expect_eq(rp.u, 0.125);
	sp.min_p = 0.0f;
	sp.temperature = 0.99e-5f;      /* sampler.c's greedy threshold is 1e-5 */
	sample_row_params_init(&rp, &sp, 0.5);
	cr_expect_eq(rp.greedy, 1);
	cr_expect(isinf(rp.log_min_p) && rp.log_min_p < 0);
	sp.temperature = 1e-5f;
	sample_row_params_init(&rp, &sp, 0.5);
	cr_expect_eq(rp.greedy, 0);
}

/* A seeded sampler's stream: sampler_uniform takes the very number the next
 * sampler_sample draw would, so mixing the two paths keeps the tokens. */
Test(sample_gpu_ref, mixed_paths_share_one_stream)
{
	enum { N = 500 };
	float l[N], work[N];
	struct sampler_params sp;

	rng_state = 777;
	make_logits(l, N, L_UNIFORM);
	sampler_params_default(&sp);
	sp.temperature = 0.8f;
	sp.top_p = 0.95f;
	sp.has_seed = true;
	sp.seed = 42;
	struct sampler *a = sampler_create(&sp), *b = sampler_create(&sp);
	for (int d = 0; d < 20; d++) {
		memcpy(work, l, sizeof(l));
		int32_t want = sampler_sample(a, work, N, NULL, 0, 0, NULL), got;
		if (d % 2) {
			memcpy(work, l, sizeof(l));
			got = sampler_sample(b, work, N, NULL, 0, 0, NULL);
		} else {
			struct sample_row_params rp;
			sample_row_params_init(&rp, sampler_get_params(b), sampler_uniform(b));
			got = sample_row_ref(l, N, &rp);
		}
		cr_assert_eq(got, want, "draw %d", d);
	}
	sampler_destroy(a);
	sampler_destroy(b);
}

/* ---- forward_batch_sample on the CPU backend (no sample_rows op) ---- */

static char dir[64];

static void
model_setup(void)
{
	cr_assert_eq(fx_tmpdir(dir, sizeof(dir), "test-sample-gpu-ref"), 0);
	cr_assert_eq(fx_write_tokenizer(dir), 0);
	cr_assert_eq(fx_make_model("--arch llama --out %s/m --tokenizer %s/tok.json --vocab 300 "
	    "--layers 1 --hidden 32 --heads 4 --kv-heads 2 --seed 9", dir, dir), 0);
}

static void
model_cleanup(void)
{
	cr_assert_eq(fx_remove_tree(dir), 0);
}

static int rec_calls, rec_rows, rec_flags;

/* A sample_rows for the CPU backend (logits are host memory there). */
static void
rec_sample_rows(struct backend *be, int32_t *ids, const float *logits,
    const struct sample_row_params *p, int n, int V)
{
	rec_calls++;
	rec_rows += n;
	for (int i = 0; i < n; i++)
		ids[i] = sample_row_ref(logits + (size_t)i * V, V, &p[i]);
}

static void
rec_begin_batch(struct backend *be, const struct kv_cache *kv, const struct batch *b, int greedy)
{
	if (b != NULL)
		rec_flags = greedy;
}

Test(sample_gpu_ref, forward_batch_sample_on_the_cpu, .init = model_setup,
    .fini = model_cleanup)
{
	enum { T = 24, R = 12, V = 300 };
	struct model m;
	struct llmd_err e = LLMD_ERR_INIT;
	char path[128];
	snprintf(path, sizeof(path), "%s/m", dir);
	cr_assert_eq(model_load(&m, path, &e), 0, "%s", e.msg);
	struct backend *be = backend_cpu_create(1);
	struct forward fw;
	struct kv_cache kv;
	struct kv_seq seq = { 0 };
	cr_assert_null(be->ops->sample_rows, "the CPU backend samples on the host");
	cr_assert_eq(forward_init(&fw, &m, be, T, &e), 0);
	cr_assert_eq(kv_cache_init(&kv, be, &m.cfg, 4, 8, &e), 0);
	cr_assert_eq(kv_seq_reserve(&kv, &seq, T), 0);

	/* every other token wants logits: 12 rows, two logits chunks */
	int32_t tok[T], pos[T], sq[T], ids[R];
	uint8_t want[T];
	for (int i = 0; i < T; i++) {
		sq[i] = 0;
		pos[i] = i;
		tok[i] = (i * 31 + 3) % V;
		want[i] = i % 2;
	}
	struct batch_seq bs = { seq.blocks, seq.n_blocks };
	struct batch b = { T, tok, pos, sq, want, 1, &bs };
	float *logits = calloc((size_t)R * V, sizeof(float));
	struct sample_row_params rp[R];
	rng_state = 99;
	for (int r = 0; r < R; r++) {
		struct sampler_params sp;
		sampler_params_default(&sp);
		sp.temperature = r % 4 == 0 ? 0.0f : 0.5f + (float)r * 0.1f;
		sp.top_k = r % 3 ? 20 : 0;
		sp.top_p = r % 2 ? 0.8f : 1.0f;
		sample_row_params_init(&rp[r], &sp, rnd());
	}
	cr_assert_eq(forward_batch(&fw, &kv, &b, logits, &e), R);
	cr_assert_eq(forward_batch_sample(&fw, &kv, &b, rp, ids, &e), R);
	for (int r = 0; r < R; r++)
		cr_expect_eq(ids[r], sample_row_ref(logits + (size_t)r * V, V, &rp[r]), "row %d", r);
	/* a backend with sample_rows (the CPU's ops plus a recording one): the
	 * rows go to it in chunks of FORWARD_LOGIT_ROWS, with their own params,
	 * and begin_batch hears 2 (0 for logits, 1 for greedy ids) */
	struct backend_ops rec = *be->ops;
	const struct backend_ops *cpu_ops = be->ops;
	rec.sample_rows = rec_sample_rows;
	rec.begin_batch = rec_begin_batch;
	be->ops = &rec;
	rec_calls = rec_rows = 0;
	int32_t ids2[R];
	cr_assert_eq(forward_batch_sample(&fw, &kv, &b, rp, ids2, &e), R);
	cr_expect_eq(rec_calls, (R + FORWARD_LOGIT_ROWS - 1) / FORWARD_LOGIT_ROWS);
	cr_expect_eq(rec_rows, R);
	cr_expect_eq(rec_flags, 2);
	for (int r = 0; r < R; r++)
		cr_expect_eq(ids2[r], ids[r], "row %d", r);
	cr_assert_eq(forward_batch_greedy(&fw, &kv, &b, ids2, &e), R);
	cr_expect_eq(rec_flags, 1);
	cr_expect_eq(rec_calls, (R + FORWARD_LOGIT_ROWS - 1) / FORWARD_LOGIT_ROWS);
	cr_assert_eq(forward_batch(&fw, &kv, &b, logits, &e), R);
	cr_expect_eq(rec_flags, 0);
	be->ops = cpu_ops;

	tok[5] = V;     /* a batch that breaks the rules fails the same way */
	cr_assert_eq(forward_batch_sample(&fw, &kv, &b, rp, ids, &e), -EINVAL);

	free(logits);
	kv_seq_release(&kv, &seq);
	kv_cache_free(&kv);
	forward_free(&fw);
	backend_destroy(be);
	model_free(&m);
}
