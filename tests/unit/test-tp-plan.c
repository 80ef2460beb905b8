/*
 * tests/unit/test-tp-plan.c - the tensor-parallel shard plan (engine/
 * tp-plan.h) against an unsharded layer on the CPU: a random attention block
 * (q/k/v projections with Qwen2 biases, Qwen3 per-head q/k norms, causal GQA
 * attention, o_proj) and a SwiGLU MLP are computed whole, then per rank from
 * only that rank's slices (cut with tp_rows_view / tp_cols_copy), and the
 * rank partials summed (an emulated all-reduce) must equal the whole within
 * float tolerance; for 1, 2, 4 and 8 ranks, MHA and GQA, with the kv heads
 * split and replicated. Plus the divisibility errors, naming the field.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/tp-plan.h"

#define NTOK 5

static uint64_t rng = 88172645463325252ull;

static float
frand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (float)((double)(rng >> 11) / (double)(1ull << 53)) * 2.0f - 1.0f;
}

static float *
rand_vec(size_t n, float scale)
{
	float *v = malloc(n * sizeof(float));
	cr_assert_not_null(v);
	for (size_t i = 0; i < n; i++)
		v[i] = frand() * scale;
	return v;
}

static struct tensor
f32_tensor(const float *data, int64_t d, int64_t k)
{
	struct tensor t = { DT_F32, 2, { d, k, 0, 0 }, data };
	return t;
}

/* out (n, d) = x (n, k) @ W (d, k)^T (+ b (d)) */
static void
linear(float *out, const float *x, const struct tensor *W, const float *b, int n)
{
	int d = (int)W->shape[0], k = (int)W->shape[1];
	const float *w = W->data;
	for (int i = 0; i < n; i++)
		for (int j = 0; j < d; j++) {
			double s = b ? b[j] : 0;
			for (int c = 0; c < k; c++)
				s += (double)x[i * k + c] * w[(size_t)j * k + c];
			out[i * d + j] = (float)s;
		}
}

/* x (rows, hd) = rmsnorm per row with w (hd) */
static void
head_norm(float *x, const float *w, int rows, int hd)
{
	for (int i = 0; i < rows; i++) {
		double ss = 0;
		for (int j = 0; j < hd; j++)
			ss += (double)x[i * hd + j] * x[i * hd + j];
		float sc = (float)(1.0 / sqrt(ss / hd + 1e-6));
		for (int j = 0; j < hd; j++)
			x[i * hd + j] *= sc * w[j];
	}
}

/* out (n, H*HD) = causal softmax attention of q (n, H, HD) over k, v
 * (n, KV, HD); q head h reads kv head h / (H / KV) */
static void
attention(float *out, const float *q, const float *k, const float *v, int n, int H, int KV,
    int HD)
{
	for (int t = 0; t < n; t++)
		for (int h = 0; h < H; h++) {
			int kh = h / (H / KV);
			double sc[NTOK], mx = -INFINITY, sum = 0;
			for (int s = 0; s <= t; s++) {
				double d = 0;
				for (int j = 0; j < HD; j++)
					d += (double)q[(t * H + h) * HD + j] * k[(s * KV + kh) * HD + j];
				sc[s] = d / sqrt(HD);
				mx = sc[s] > mx ? sc[s] : mx;
			}
			for (int s = 0; s <= t; s++)
				sum += (sc[s] = exp(sc[s] - mx));
			for (int j = 0; j < HD; j++) {
				double o = 0;
				for (int s = 0; s <= t; s++)
					o += sc[s] / sum * v[(s * KV + kh) * HD + j];
				out[(t * H + h) * HD + j] = (float)o;
			}
		}
}

struct layer {
	struct model_config c;
	float *wq, *wk, *wv, *wo, *bq, *bk, *bv, *qn, *kn, *wg, *wu, *wd;
};

static void
layer_init(struct layer *L, int D, int H, int KV, int HD, int F)
{
	memset(L, 0, sizeof(*L));
	L->c.hidden = D;
	L->c.n_heads = H;
	L->c.n_kv_heads = KV;
	L->c.head_dim = HD;
	L->c.intermediate = F;
	L->wq = rand_vec((size_t)H * HD * D, 0.3f);
	L->wk = rand_vec((size_t)KV * HD * D, 0.3f);
	L->wv = rand_vec((size_t)KV * HD * D, 0.3f);
	L->wo = rand_vec((size_t)D * H * HD, 0.3f);
	L->bq = rand_vec((size_t)H * HD, 0.5f);
	L->bk = rand_vec((size_t)KV * HD, 0.5f);
	L->bv = rand_vec((size_t)KV * HD, 0.5f);
	L->qn = rand_vec((size_t)HD, 1.0f);
	L->kn = rand_vec((size_t)HD, 1.0f);
	L->wg = rand_vec((size_t)F * D, 0.3f);
	L->wu = rand_vec((size_t)F * D, 0.3f);
	L->wd = rand_vec((size_t)D * F, 0.3f);
}

static void
layer_free(struct layer *L)
{
	float *p[] = { L->wq, L->wk, L->wv, L->wo, L->bq, L->bk, L->bv, L->qn, L->kn, L->wg,
		L->wu, L->wd };
	for (size_t i = 0; i < sizeof(p) / sizeof(p[0]); i++)
		free(p[i]);
}

/* y (n, D) = o_proj(attention(norm(x Wq^T + bq), norm(x Wk^T + bk), x Wv^T + bv))
 * with H heads and KV kv heads of the given weights (whole or a rank's) */
static void
attn_block(float *y, const float *x, int n, int H, int KV, int HD, const struct tensor *wq,
    const struct tensor *wk, const struct tensor *wv, const struct tensor *wo, const float *bq,
    const float *bk, const float *bv, const float *qn, const float *kn)
{
	float *q = calloc((size_t)n * H * HD, sizeof(float));
	float *k = calloc((size_t)n * KV * HD, sizeof(float));
	float *v = calloc((size_t)n * KV * HD, sizeof(float));
	float *att = calloc((size_t)n * H * HD, sizeof(float));
	linear(q, x, wq, bq, n);
	linear(k, x, wk, bk, n);
	linear(v, x, wv, bv, n);
	head_norm(q, qn, n * H, HD);
	head_norm(k, kn, n * KV, HD);
	attention(att, q, k, v, n, H, KV, HD);
	linear(y, att, wo, NULL, n);
	free(q);
	free(k);
	free(v);
	free(att);
}

/* y (n, D) = (silu(x Wg^T) * x Wu^T) Wd^T */
static void
mlp_block(float *y, const float *x, int n, const struct tensor *wg, const struct tensor *wu,
    const struct tensor *wd)
{
	int F = (int)wg->shape[0];
	float *g = calloc((size_t)n * F, sizeof(float)), *u = calloc((size_t)n * F, sizeof(float));
	linear(g, x, wg, NULL, n);
	linear(u, x, wu, NULL, n);
	for (int i = 0; i < n * F; i++)
		g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
	linear(y, g, wd, NULL, n);
	free(g);
	free(u);
}

static void
expect_close(const float *a, const float *b, size_t n, const char *what, int N)
{
	for (size_t i = 0; i < n; i++)
		cr_assert(fabsf(a[i] - b[i]) <= 1e-4f + 1e-4f * fabsf(a[i]),
		    "%s, %d ranks: element %zu: whole %g, sum of ranks %g", what, N, i, a[i], b[i]);
}

/* The whole layer against N ranks' shards summed. */
static void
check_split(int D, int H, int KV, int HD, int F, int N)
{
	struct layer L;
	struct tp_plan p;
	struct llmd_err e = LLMD_ERR_INIT;
	layer_init(&L, D, H, KV, HD, F);
	cr_assert_eq(tp_plan_init(&p, &L.c, N, &e), 0, "%s: %s", e.field, e.msg);

	float *x = rand_vec((size_t)NTOK * D, 1.0f);
	float *want_a = calloc((size_t)NTOK * D, sizeof(float));
	float *want_m = calloc((size_t)NTOK * D, sizeof(float));
	float *got_a = calloc((size_t)NTOK * D, sizeof(float));
	float *got_m = calloc((size_t)NTOK * D, sizeof(float));
	float *part = calloc((size_t)NTOK * D, sizeof(float));
	struct tensor wq = f32_tensor(L.wq, H * HD, D), wk = f32_tensor(L.wk, KV * HD, D);
	struct tensor wv = f32_tensor(L.wv, KV * HD, D), wo = f32_tensor(L.wo, D, H * HD);
	struct tensor wg = f32_tensor(L.wg, F, D), wu = f32_tensor(L.wu, F, D);
	struct tensor wd = f32_tensor(L.wd, D, F);

	attn_block(want_a, x, NTOK, H, KV, HD, &wq, &wk, &wv, &wo, L.bq, L.bk, L.bv, L.qn, L.kn);
	mlp_block(want_m, x, NTOK, &wg, &wu, &wd);

	int q_seen = 0, ff_seen = 0;
	for (int r = 0; r < N; r++) {
		struct tp_rank_plan rp;
		tp_plan_rank(&p, r, &rp);
		cr_assert_eq(rp.q_rows.begin, q_seen, "rank %d q rows start where rank %d's end", r,
		    r - 1);
		cr_assert_eq(rp.ff_rows.begin, ff_seen);
		q_seen = rp.q_rows.end;
		ff_seen = rp.ff_rows.end;
		cr_assert_eq(rp.adds_residual, r == 0);
		/* the rank's slices only: rows of column-parallel weights, copied
		 * columns of row-parallel ones, bias ranges with their heads */
		struct tensor sq = tp_rows_view(&wq, rp.q_rows), sk = tp_rows_view(&wk, rp.kv_rows);
		struct tensor sv = tp_rows_view(&wv, rp.kv_rows);
		void *ob = malloc(tp_cols_bytes(&wo, rp.o_cols));
		struct tensor so = tp_cols_copy(ob, &wo, rp.o_cols);
		cr_assert_eq(so.shape[0], D);
		cr_assert_eq(so.shape[1], p.heads_per_rank * HD);
		attn_block(part, x, NTOK, p.heads_per_rank, p.kv_heads_per_rank, HD, &sq, &sk, &sv,
		    &so, L.bq + rp.q_rows.begin, L.bk + rp.kv_rows.begin, L.bv + rp.kv_rows.begin,
		    L.qn, L.kn);
		for (int i = 0; i < NTOK * D; i++)
			got_a[i] += part[i];
		free(ob);

		struct tensor sg = tp_rows_view(&wg, rp.ff_rows), su = tp_rows_view(&wu, rp.ff_rows);
		void *db = malloc(tp_cols_bytes(&wd, rp.down_cols));
		struct tensor sd = tp_cols_copy(db, &wd, rp.down_cols);
		mlp_block(part, x, NTOK, &sg, &su, &sd);
		for (int i = 0; i < NTOK * D; i++)
			got_m[i] += part[i];
		free(db);
	}
	cr_assert_eq(q_seen, H * HD, "the ranks' q rows cover wq");
	cr_assert_eq(ff_seen, F, "the ranks' MLP rows cover w_gate");
	expect_close(want_a, got_a, (size_t)NTOK * D, "attention block", N);
	expect_close(want_m, got_m, (size_t)NTOK * D, "MLP block", N);

	free(x);
	free(want_a);
	free(want_m);
	free(got_a);
	free(got_m);
	free(part);
	layer_free(&L);
}

Test(tp_plan, mha_splits_over_1_2_4_ranks)
{
	for (int N = 1; N <= 4; N *= 2)
		check_split(32, 8, 8, 8, 48, N);
}

Test(tp_plan, gqa_splits_kv_heads_over_1_2_ranks)
{
	for (int N = 1; N <= 2; N++)
		check_split(32, 8, 2, 8, 48, N);
}

Test(tp_plan, gqa_replicates_kv_heads_over_4_and_8_ranks)
{
	struct tp_plan p;
	struct layer L;
	struct tp_rank_plan rp;
	layer_init(&L, 32, 8, 2, 8, 48);
	cr_assert_eq(tp_plan_init(&p, &L.c, 4, NULL), 0);
	cr_assert_eq(p.kv_heads_per_rank, 1);
	cr_assert_eq(p.kv_replicas, 2);
	/* ranks 0, 1 read kv head 0 (q heads 0..3); ranks 2, 3 kv head 1 */
	int want[4] = { 0, 0, 1, 1 };
	for (int r = 0; r < 4; r++) {
		tp_plan_rank(&p, r, &rp);
		cr_expect_eq(rp.kv_heads.begin, want[r], "rank %d", r);
		cr_expect_eq(rp.kv_rows.begin, want[r] * 8);
	}
	layer_free(&L);
	check_split(32, 8, 2, 8, 48, 4);
	check_split(32, 8, 2, 8, 48, 8);
}

Test(tp_plan, kv_heads_per_rank)
{
	cr_expect_eq(tp_kv_heads_per_rank(8, 1), 8);
	cr_expect_eq(tp_kv_heads_per_rank(8, 0), 8);
	cr_expect_eq(tp_kv_heads_per_rank(8, 2), 4);
	cr_expect_eq(tp_kv_heads_per_rank(8, 8), 1);
	cr_expect_eq(tp_kv_heads_per_rank(2, 8), 1);
}

/* tp_plan_init(c, N) fails with -EINVAL naming field */
static void
expect_error(int H, int KV, int F, int N, const char *field, const char *msg_part)
{
	struct model_config c;
	struct tp_plan p;
	struct llmd_err e = LLMD_ERR_INIT;
	memset(&c, 0, sizeof(c));
	c.hidden = 64;
	c.n_heads = H;
	c.n_kv_heads = KV;
	c.head_dim = 8;
	c.intermediate = F;
	cr_assert_eq(tp_plan_init(&p, &c, N, &e), -EINVAL, "H %d KV %d F %d N %d", H, KV, F, N);
	cr_expect_str_eq(e.field, field);
	cr_expect(strstr(e.msg, msg_part) != NULL, "message '%s' lacks '%s'", e.msg, msg_part);
}

Test(tp_plan, errors_name_the_field)
{
	expect_error(6, 6, 48, 4, "num_attention_heads", "6 attention heads");
	expect_error(12, 6, 48, 4, "num_key_value_heads", "6 kv heads do not split");
	expect_error(6, 2, 48, 3, "num_key_value_heads", "cannot be replicated");
	expect_error(8, 8, 50, 4, "intermediate_size", "50");
	expect_error(8, 8, 48, 0, "--tensor-parallel-size", "0");
	expect_error(8, 8, 48, TP_MAX_RANKS + 1, "--tensor-parallel-size", "not in");
}
