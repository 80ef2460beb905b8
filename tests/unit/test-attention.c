/*
 * tests/unit/test-attention.c - the CPU attention: attn_rows (the online
 * softmax step of engine/kernels.h) on every SIMD path this CPU supports
 * against a double-precision softmax, the accuracy of the SIMD exp it uses,
 * and the CPU backend's paged attention (GQA/MQA/MHA, query-head groups wider
 * than ATTN_MAX_GROUP, context lengths off the block size and the SIMD width,
 * sliding windows, decode / prefill / mixed batches over scattered KV blocks)
 * against a plain scalar reference, on each path and thread count.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/forward.h"
#include "engine/kernels-impl.h"
#include "engine/kernels.h"
#include "engine/kvcache.h"
#include "engine/model-config.h"
#include "lib/util.h"

static uint64_t rng_state = 0x2545f4914f6cdd1dull;

static uint64_t
rng_next(void)
{
	/* xorshift64* */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

/* uniform in [-1, 1) */
static float
rng_uniform(void)
{
	return (float)((double)(rng_next() >> 11) * 0x1p-53 * 2.0 - 1.0);
}

static int
rng_int(int lo, int hi)
{
	return lo + (int)(rng_next() % (uint64_t)(hi - lo + 1));
}

static float *
random_floats(size_t n, float amp)
{
	float *p = malloc(n * sizeof(float));
	for (size_t i = 0; i < n; i++)
		p[i] = amp * rng_uniform();
	return p;
}

/*
 * out (hd) = softmax_i(scale * q . k_i) v_i over the n rows k_i = K[idx[i]],
 * v_i = V[idx[i]] (hd each), in double.
 */
static void
ref_softmax(double *out, const float *q, const float *const *k, const float *const *v, int n,
    int hd, double scale)
{
	double *s = malloc((size_t)n * sizeof(double));
	double mx = -INFINITY, sum = 0;

	for (int i = 0; i < n; i++) {
		double d = 0;
		for (int j = 0; j < hd; j++)
			d += (double)q[j] * k[i][j];
		s[i] = d * scale;
		mx = fmax(mx, s[i]);
	}
	for (int j = 0; j < hd; j++)
		out[j] = 0;
	for (int i = 0; i < n; i++) {
		double w = exp(s[i] - mx);
		sum += w;
		for (int j = 0; j < hd; j++)
			out[j] += w * v[i][j];
	}
	for (int j = 0; j < hd; j++)
		out[j] /= sum;
	free(s);
}

/* Outputs are convex combinations of V entries in [-1, 1]. */
#define ATTN_TOL 2e-5

static int
path_supported(const struct kernels_ops *o)
{
	return o->supported == NULL || o->supported();
}

Test(attention, exp_within_a_few_ulp)
{
	for (size_t p = 0; kernels_all_ops[p] != NULL; p++) {
		const struct kernels_ops *o = kernels_all_ops[p];
		if (!path_supported(o))
			continue;
		/*
		 * scores (0, x) over V rows (0, 1): the max is 0 with weight
		 * exp(0), so acc = exp(x) exactly as the path computes it
		 */
		double worst = 0;
		for (int i = 0; i <= 85000; i++) {
			float x = -(float)i * 0.001f + (i % 7) * 1e-7f;
			float q = 1, K[2] = { 0, x }, V[2] = { 0, 1 };
			float acc = 0, m = -INFINITY, l = 0;
			o->attn_rows(&acc, &m, &l, &q, 1, 1, K, V, 1, 2, 1.0f);
			cr_assert_eq(m, 0.0f, "%s: max", o->name);
			cr_assert_eq(l, 1.0f + acc, "%s: sum of weights", o->name);
			double want = exp((double)x);
			double rel = fabs(acc - want) / want;
			worst = fmax(worst, rel);
			cr_assert(rel < 2.4e-7, "%s: exp(%.9g) = %.9g, want %.9g (rel %.3g)", o->name,
			    (double)x, (double)acc, want, rel);
		}
		cr_log_info("%s: worst relative exp error %.3g", o->name, worst);
		/* far below the clamp: a weight of at most e^-86 next to 1 */
		float q = 1, K[2] = { 0, -1000.0f }, V[2] = { 0, 1 };
		float acc = 0, m = -INFINITY, l = 0;
		o->attn_rows(&acc, &m, &l, &q, 1, 1, K, V, 1, 2, 1.0f);
		cr_assert(acc >= 0 && acc < 1e-37f, "%s: exp(-1000) = %g", o->name, (double)acc);
	}
}

Test(attention, rows_match_double_softmax)
{
	static const int hds[] = { 1, 7, 16, 24, 40, 64, 72, 128 };
	int paths = 0;

	for (size_t p = 0; kernels_all_ops[p] != NULL; p++) {
		const struct kernels_ops *o = kernels_all_ops[p];
		if (!path_supported(o))
			continue;
		paths++;
		for (int iter = 0; iter < 60; iter++) {
			int hd = hds[iter % 8], g = rng_int(1, ATTN_MAX_GROUP);
			int total = rng_int(1, 100), ld = hd + rng_int(0, 5);
			/* large q: peaked softmax whose max moves between steps */
			float amp = iter % 3 == 0 ? 8.0f : 1.0f;
			float scale = 1.0f / sqrtf((float)hd);
			float *q = random_floats((size_t)g * hd, amp);
			float *K = random_floats((size_t)total * ld, 1.0f);
			float *V = random_floats((size_t)total * ld, 1.0f);
			float *acc = calloc((size_t)g * hd, sizeof(float));
			float m[ATTN_MAX_GROUP], l[ATTN_MAX_GROUP];
			for (int h = 0; h < g; h++) {
				m[h] = -INFINITY;
				l[h] = 0;
			}
			/* the rows in steps of random length, as runs within KV blocks */
			for (int i = 0; i < total;) {
				int n = rng_int(1, ATTN_MAX_ROWS);
				n = MIN(n, total - i);
				o->attn_rows(acc, m, l, q, g, hd, K + (size_t)i * ld, V + (size_t)i * ld,
				    (size_t)ld, n, scale);
				i += n;
			}
			const float **kr = malloc((size_t)total * sizeof(*kr));
			const float **vr = malloc((size_t)total * sizeof(*vr));
			for (int i = 0; i < total; i++) {
				kr[i] = K + (size_t)i * ld;
				vr[i] = V + (size_t)i * ld;
			}
			double *want = malloc((size_t)hd * sizeof(double));
			for (int h = 0; h < g; h++) {
				ref_softmax(want, q + (size_t)h * hd, kr, vr, total, hd, scale);
				for (int d = 0; d < hd; d++) {
					double got = acc[(size_t)h * hd + d] / l[h];
					cr_assert(fabs(got - want[d]) <= ATTN_TOL,
					    "%s: g %d hd %d rows %d head %d dim %d: got %.9g want %.9g",
					    o->name, g, hd, total, h, d, got, want[d]);
				}
			}
			free(want);
			free(kr);
			free(vr);
			free(acc);
			free(V);
			free(K);
			free(q);
		}
	}
	cr_assert_geq(paths, 1);
}

/* ---- the CPU backend's paged attention ---- */

struct attn_case {
	int H, KV, hd, block_size, window;
};

#define MAX_SEQ 4

/*
 * A batch over n_seq sequences of context lengths len[] (block tables drawn
 * from a shuffled pool so blocks are scattered): decode (one token per
 * sequence at len - 1), prefill (every position of sequence 0), or mixed (a
 * chunk of the last positions of sequence 0, then one token of each other).
 */
enum batch_kind { BATCH_DECODE, BATCH_PREFILL, BATCH_MIXED };

static void
check_backend(struct backend *be, const struct attn_case *c, const int *len, int n_seq,
    enum batch_kind kind, const char *path)
{
	struct model_config cfg;
	struct kv_cache kv;
	struct llmd_err e;
	int bs = c->block_size, kvd = c->KV * c->hd, layers = 2;

	memset(&cfg, 0, sizeof(cfg));
	cfg.n_layers = layers;
	cfg.n_kv_heads = c->KV;
	cfg.head_dim = c->hd;
	int need = 0;
	for (int s = 0; s < n_seq; s++)
		need += (len[s] + bs - 1) / bs;
	int n_blocks = need + 3;
	cr_assert_eq(kv_cache_init(&kv, be, &cfg, bs, n_blocks, &e), 0, "kv_cache_init: %s", e.msg);
	size_t nf = (size_t)n_blocks * kv.block_stride;
	for (size_t i = 0; i < nf; i++)
		kv.data[i] = rng_uniform();

	/* block tables: a shuffled permutation of the pool */
	int32_t *perm = malloc((size_t)n_blocks * sizeof(int32_t));
	for (int i = 0; i < n_blocks; i++)
		perm[i] = i;
	for (int i = n_blocks - 1; i > 0; i--) {
		int r = rng_int(0, i);
		int32_t tmp = perm[i];
		perm[i] = perm[r];
		perm[r] = tmp;
	}
	struct batch_seq seqs[MAX_SEQ];
	for (int s = 0, used = 0; s < n_seq; s++) {
		seqs[s].block_table = perm + used;
		seqs[s].n_blocks = (len[s] + bs - 1) / bs;
		used += seqs[s].n_blocks;
	}

	int32_t tok_pos[256], tok_seq[256];
	int n_tok = 0;
	if (kind == BATCH_PREFILL || kind == BATCH_MIXED) {
		int from = kind == BATCH_PREFILL ? 0 : MAX(0, len[0] - 9);
		for (int p = from; p < len[0]; p++) {
			tok_pos[n_tok] = p;
			tok_seq[n_tok++] = 0;
		}
	}
	for (int s = kind == BATCH_DECODE ? 0 : 1; s < n_seq && kind != BATCH_PREFILL; s++) {
		tok_pos[n_tok] = len[s] - 1;
		tok_seq[n_tok++] = s;
	}
	struct batch b = {
		.n_tok = n_tok, .pos = tok_pos, .seq = tok_seq, .n_seq = n_seq, .seqs = seqs,
	};

	size_t qn = (size_t)n_tok * c->H * c->hd;
	float *q = random_floats(qn, 2.0f);
	float *out = malloc(qn * sizeof(float));
	for (size_t i = 0; i < qn; i++)
		out[i] = NAN;
	int l = 1;
	be->ops->attention(be, out, q, &kv, l, &b, c->H, c->KV, c->hd, c->window);

	int maxlen = 0;
	for (int s = 0; s < n_seq; s++)
		maxlen = MAX(maxlen, len[s]);
	const float **kr = malloc((size_t)maxlen * sizeof(*kr));
	const float **vr = malloc((size_t)maxlen * sizeof(*vr));
	double *want = malloc((size_t)c->hd * sizeof(double));
	double scale = 1.0 / sqrt((double)c->hd);
	for (int t = 0; t < n_tok; t++) {
		const struct batch_seq *s = &seqs[tok_seq[t]];
		int first = c->window > 0 ? MAX(0, tok_pos[t] - c->window + 1) : 0;
		for (int h = 0; h < c->H; h++) {
			int kvh = h / (c->H / c->KV), n = 0;
			for (int p = first; p <= tok_pos[t]; p++, n++) {
				size_t off = (size_t)(p % bs) * kvd + (size_t)kvh * c->hd;
				kr[n] = kv_block_k(&kv, s->block_table[p / bs], l) + off;
				vr[n] = kv_block_v(&kv, s->block_table[p / bs], l) + off;
			}
			const float *qh = q + ((size_t)t * c->H + h) * c->hd;
			ref_softmax(want, qh, kr, vr, n, c->hd, scale);
			for (int d = 0; d < c->hd; d++) {
				float got = out[((size_t)t * c->H + h) * c->hd + d];
				cr_assert(fabs(got - want[d]) <= ATTN_TOL,
				    "%s: H %d KV %d hd %d bs %d win %d batch %d tok %d (pos %d) head %d "
				    "dim %d: got %.9g want %.9g", path, c->H, c->KV, c->hd, bs,
				    c->window, (int)kind, t, tok_pos[t], h, d, (double)got, want[d]);
			}
		}
	}
	free(want);
	free(kr);
	free(vr);
	free(out);
	free(q);
	free(perm);
	kv_cache_free(&kv);
}

Test(attention, backend_matches_scalar_reference)
{
	static const struct attn_case cases[] = {
		{ 8, 4, 64, 16, 0 },    /* the bench model's shape */
		{ 4, 1, 24, 5, 0 },     /* MQA, hd off the SIMD width, odd blocks */
		{ 12, 1, 16, 4, 0 },    /* a group of 12 > ATTN_MAX_GROUP */
		{ 3, 3, 7, 16, 0 },     /* MHA, hd below one vector */
		{ 16, 2, 128, 16, 0 },
		{ 8, 2, 40, 8, 7 },     /* sliding window */
	};
	static const int lens[][MAX_SEQ] = {
		{ 1, 17, 33, 5 },
		{ 16, 70, 2, 31 },
		{ 48, 1, 9, 64 },
	};
	static const int threads[] = { 1, 3 };
	int paths = 0;

	for (size_t p = 0; kernels_all_ops[p] != NULL; p++) {
		const struct kernels_ops *o = kernels_all_ops[p];
		if (!path_supported(o))
			continue;
		paths++;
		kernels_ops_set(o);
		for (int th = 0; th < 2; th++) {
			struct backend *be = backend_cpu_create(threads[th]);
			for (size_t ci = 0; ci < sizeof(cases) / sizeof(cases[0]); ci++) {
				for (size_t li = 0; li < sizeof(lens) / sizeof(lens[0]); li++) {
					int n_seq = 1 + (int)((ci + li) % MAX_SEQ);
					check_backend(be, &cases[ci], lens[li], n_seq, BATCH_DECODE,
					    o->name);
					check_backend(be, &cases[ci], lens[li], 1, BATCH_PREFILL, o->name);
					check_backend(be, &cases[ci], lens[li], MAX(2, n_seq),
					    BATCH_MIXED, o->name);
				}
			}
			be->ops->destroy(be);
		}
	}
	kernels_ops_set(NULL);
	cr_assert_geq(paths, 1);
}
