/*
 * tests/unit/test-tp-forward.c - the tensor-parallel backend (engine/
 * backend-tp.c) end to end through forward.c on CPU ranks with the host
 * all-reduce: the logits of a prefill of two sequences and of two decode
 * steps over the per-rank KV caches equal the single CPU backend's within
 * f32 tolerance, for llama (GQA, kv heads split and replicated), qwen2
 * (q/k/v biases) and qwen3 (q/k norms) on 2 and 4 ranks; greedy and sampled
 * ids agree;
 * every rank op runs with its rank entered (the CUDA communicator's
 * cudaSetDevice), the LM head on rank 0 only; the serving errors for TP on
 * the CPU and without CUDA.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/backend-tp.h"
#include "engine/commands.h"
#include "engine/forward.h"
#include "engine/kvcache.h"
#include "engine/model.h"
#include "engine/sample-ref.h"
#include "engine/tp-plan.h"
#include "tests/unit/engine-fixture.h"

#define VOCAB 300

static char dir[64];

static void
setup(void)
{
	cr_assert_eq(fx_tmpdir(dir, sizeof(dir), "test-tp-forward"), 0);
	cr_assert_eq(fx_write_tokenizer(dir), 0);
}

static void
cleanup(void)
{
	cr_assert_eq(fx_remove_tree(dir), 0);
}

TestSuite(tp_forward, .init = setup, .fini = cleanup, .timeout = 120);

/* An f32 model dir/name of arch with heads/kv heads. */
static void
make_model(const char *name, const char *arch, int heads, int kv)
{
	cr_assert_eq(fx_make_model("--arch %s --out %s/%s --tokenizer %s/tok.json "
	    "--vocab %d --layers 2 --hidden 32 --heads %d --kv-heads %d --head-dim 8 "
	    "--intermediate 48 --dtype f32 --seed 11", arch, dir, name, dir, VOCAB, heads, kv), 0);
}

/* A run of the same three steps on be: logits (3 steps, up to 12 rows, V)
 * and the greedy ids of the last step. */
struct run {
	float logits[3][12 * VOCAB];
	int n_rows[3];
	int32_t ids[2];
	int32_t sampled[2];
};

static void
run_steps(const struct model *m, struct backend *be, struct run *out)
{
	struct llmd_err e = LLMD_ERR_INIT;
	struct forward fw;
	struct kv_cache kv;
	struct kv_seq seq[2] = { { 0 }, { 0 } };
	/* the cache holds each rank's kv heads */
	struct model_config kc = m->cfg;
	kc.n_kv_heads = tp_kv_heads_per_rank(m->cfg.n_kv_heads, backend_tp_size(be));
	cr_assert_eq(forward_init(&fw, m, be, 16, &e), 0, "%s: %s", e.field, e.msg);
	cr_assert_eq(kv_cache_init(&kv, be, &kc, 4, 16, &e), 0);
	cr_assert_eq(kv_seq_reserve(&kv, &seq[0], 12), 0);
	cr_assert_eq(kv_seq_reserve(&kv, &seq[1], 12), 0);
	struct batch_seq bs[2] = { { seq[0].blocks, seq[0].n_blocks },
		{ seq[1].blocks, seq[1].n_blocks } };

	/* prefill: 7 tokens of sequence 0, 5 of sequence 1, every row's logits */
	int32_t tok[12], pos[12], sq[12];
	uint8_t want[12];
	for (int i = 0; i < 12; i++) {
		sq[i] = i < 7 ? 0 : 1;
		pos[i] = i < 7 ? i : i - 7;
		tok[i] = (i * 37 + 5) % VOCAB;
		want[i] = 1;
	}
	struct batch b = { 12, tok, pos, sq, want, 2, bs };
	out->n_rows[0] = forward_batch(&fw, &kv, &b, out->logits[0], &e);
	/* two decode steps, one token of each sequence */
	for (int s = 1; s < 3; s++) {
		int32_t dt[2] = { (s * 101) % VOCAB, (s * 13 + 1) % VOCAB };
		int32_t dp[2] = { 7 + s - 1, 5 + s - 1 }, ds[2] = { 0, 1 };
		uint8_t dw[2] = { 1, 1 };
		struct batch d = { 2, dt, dp, ds, dw, 2, bs };
		if (s < 2) {
			out->n_rows[s] = forward_batch(&fw, &kv, &d, out->logits[s], &e);
		} else {
			/* the greedy and sampling paths over the same step, then its logits */
			struct sample_row_params sp[2] = {
				{ 0, 1.0f / 0.8f, -INFINITY, 50, 0.95f, 0.37 },
				{ 0, 1.0f / 1.3f, -INFINITY, 0, 1.0f, 0.81 },
			};
			cr_assert_eq(forward_batch_greedy(&fw, &kv, &d, out->ids, &e), 2);
			cr_assert_eq(forward_batch_sample(&fw, &kv, &d, sp, out->sampled, &e), 2);
			out->n_rows[s] = forward_batch(&fw, &kv, &d, out->logits[s], &e);
		}
	}
	kv_seq_release(&kv, &seq[0]);
	kv_seq_release(&kv, &seq[1]);
	kv_cache_free(&kv);
	forward_free(&fw);
}

/* The model name arch/heads/kv on one CPU backend and on n CPU ranks. */
static void
check_tp(const char *arch, int heads, int kv, int n)
{
	char name[64], path[128];
	struct model m;
	struct llmd_err e = LLMD_ERR_INIT;
	struct backend *one, *tp;
	struct run *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));

	snprintf(name, sizeof(name), "%s-%d-%d-%d", arch, heads, kv, n);
	make_model(name, arch, heads, kv);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	cr_assert_eq(model_load(&m, path, &e), 0, "%s", e.msg);
	one = backend_cpu_create(1);
	cr_assert_eq(backend_tp_create_host(n, 1, &tp, &e), 0, "%s", e.msg);
	cr_assert_eq(backend_tp_size(tp), n);
	cr_assert_eq(backend_tp_size(one), 1);
	run_steps(&m, one, a);
	run_steps(&m, tp, b);
	int want_rows[3] = { 12, 2, 2 };
	for (int s = 0; s < 3; s++) {
		cr_assert_eq(a->n_rows[s], want_rows[s], "%s step %d", name, s);
		cr_assert_eq(b->n_rows[s], want_rows[s], "%s step %d (tp)", name, s);
		for (int i = 0; i < want_rows[s] * VOCAB; i++) {
			float x = a->logits[s][i], y = b->logits[s][i];
			cr_assert(fabsf(x - y) <= 1e-4f + 1e-4f * fabsf(x),
			    "%s, %d ranks, step %d, row %d logit %d: one backend %g, tp %g", name, n,
			    s, i / VOCAB, i % VOCAB, x, y);
		}
	}
	cr_expect_eq(a->ids[0], b->ids[0], "%s greedy id of sequence 0", name);
	cr_expect_eq(a->ids[1], b->ids[1], "%s greedy id of sequence 1", name);
	cr_expect_eq(a->sampled[0], b->sampled[0], "%s sampled id of sequence 0", name);
	cr_expect_eq(a->sampled[1], b->sampled[1], "%s sampled id of sequence 1", name);
	backend_destroy(tp);
	backend_destroy(one);
	model_free(&m);
	free(a);
	free(b);
}

Test(tp_forward, llama_gqa_2_ranks)
{
	check_tp("llama", 4, 2, 2);
}

Test(tp_forward, llama_gqa_4_ranks_replicated_kv)
{
	check_tp("llama", 4, 2, 4);
}

Test(tp_forward, qwen2_biases_2_ranks)
{
	check_tp("qwen2", 4, 2, 2);
}

Test(tp_forward, qwen3_qk_norm_4_ranks)
{
	check_tp("qwen3", 8, 4, 4);
}

/* ---- every rank op runs with its rank entered (what cudaSetDevice needs) ---- */

/* A CPU backend that checks the communicator entered its rank before each op
 * and counts its matmuls. */
struct checked {
	struct backend base;
	struct backend *inner;
	int rank;
	int matmuls;
};

static int entered = -1;        /* the rank the communicator last entered */
static int wrong_rank_ops;

static struct backend *
inner_of(struct backend *be)
{
	struct checked *c = (struct checked *)be;
	if (entered != c->rank)
		wrong_rank_ops++;
	return c->inner;
}

static void
ck_destroy(struct backend *be)
{
	backend_destroy(inner_of(be));
	free(be);
}

static void *
ck_alloc(struct backend *be, size_t bytes)
{
	struct backend *in = inner_of(be);
	return in->ops->alloc(in, bytes);
}

static void
ck_free(struct backend *be, void *p)
{
	struct backend *in = inner_of(be);
	in->ops->free(in, p);
}

static void
ck_to_host(struct backend *be, void *dst, const void *src, size_t bytes)
{
	struct backend *in = inner_of(be);
	in->ops->to_host(in, dst, src, bytes);
}

static void
ck_embed(struct backend *be, float *x, const struct tensor *emb, const int32_t *tokens, int n)
{
	struct backend *in = inner_of(be);
	in->ops->embed(in, x, emb, tokens, n);
}

static void
ck_rmsnorm(struct backend *be, float *out, const float *x, const float *w, int n, int dim,
    float eps)
{
	struct backend *in = inner_of(be);
	in->ops->rmsnorm(in, out, x, w, n, dim, eps);
}

static void
ck_matmul(struct backend *be, float *out, const float *x, const struct tensor *W, int n,
    int accumulate)
{
	struct backend *in = inner_of(be);
	((struct checked *)be)->matmuls++;
	in->ops->matmul(in, out, x, W, n, accumulate);
}

static void
ck_add_bias(struct backend *be, float *x, const float *b, int n, int d)
{
	struct backend *in = inner_of(be);
	in->ops->add_bias(in, x, b, n, d);
}

static void
ck_rope(struct backend *be, float *x, const int32_t *pos, int n, int n_heads, int hd,
    const float *inv_freq)
{
	struct backend *in = inner_of(be);
	in->ops->rope(in, x, pos, n, n_heads, hd, inv_freq);
}

static void
ck_kv_store(struct backend *be, struct kv_cache *kv, int l, const float *k, const float *v,
    const struct batch *b)
{
	struct backend *in = inner_of(be);
	in->ops->kv_store(in, kv, l, k, v, b);
}

static void
ck_attention(struct backend *be, float *out, const float *q, struct kv_cache *kv, int l,
    const struct batch *b, int n_heads, int n_kv_heads, int hd, int window)
{
	struct backend *in = inner_of(be);
	in->ops->attention(in, out, q, kv, l, b, n_heads, n_kv_heads, hd, window);
}

static void
ck_swiglu(struct backend *be, float *g, const float *u, size_t n)
{
	struct backend *in = inner_of(be);
	in->ops->swiglu(in, g, u, n);
}

static void
ck_gather_rows(struct backend *be, float *out, const float *x, const int *idx, int m, int dim)
{
	struct backend *in = inner_of(be);
	in->ops->gather_rows(in, out, x, idx, m, dim);
}

static const struct backend_ops checked_ops = {
	.name = "checked-cpu", .destroy = ck_destroy, .alloc = ck_alloc, .free = ck_free,
	.to_host = ck_to_host, .embed = ck_embed, .rmsnorm = ck_rmsnorm, .matmul = ck_matmul,
	.add_bias = ck_add_bias, .rope = ck_rope, .kv_store = ck_kv_store,
	.attention = ck_attention, .swiglu = ck_swiglu, .gather_rows = ck_gather_rows,
};

static void
ck_enter(void *ctx, int rank)
{
	(void)ctx;
	entered = rank;
}

/* The sum, checking it gets one buffer per rank, each a different one. */
static void
ck_all_reduce(void *ctx, float *const *bufs, size_t count)
{
	int n = *(int *)ctx;
	for (int r = 1; r < n; r++) {
		cr_assert_neq(bufs[r], bufs[0], "rank %d reduces rank 0's buffer", r);
		for (size_t i = 0; i < count; i++)
			bufs[0][i] += bufs[r][i];
	}
	for (int r = 1; r < n; r++)
		memcpy(bufs[r], bufs[0], count * sizeof(float));
}

Test(tp_forward, rank_ops_run_on_their_entered_rank)
{
	char path[128];
	struct model m;
	struct llmd_err e = LLMD_ERR_INIT;
	struct backend *ranks[2], *tp, *one;
	struct checked *ck[2];
	static int n_ctx = 2;
	struct run *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));

	make_model("ck", "qwen2", 4, 2);
	snprintf(path, sizeof(path), "%s/ck", dir);
	cr_assert_eq(model_load(&m, path, &e), 0, "%s", e.msg);
	for (int r = 0; r < 2; r++) {
		ck[r] = calloc(1, sizeof(*ck[r]));
		ck[r]->base.ops = &checked_ops;
		ck[r]->base.n_threads = 1;
		ck[r]->inner = backend_cpu_create(1);
		ck[r]->rank = r;
		ranks[r] = &ck[r]->base;
	}
	struct tp_comm comm = { &n_ctx, ck_enter, ck_all_reduce, NULL, 0 };
	cr_assert_eq(backend_tp_create(ranks, 2, &comm, &tp, &e), 0, "%s", e.msg);
	one = backend_cpu_create(1);
	run_steps(&m, one, a);
	run_steps(&m, tp, b);
	cr_expect_eq(wrong_rank_ops, 0, "%d rank ops ran with another rank entered",
	    wrong_rank_ops);
	/* the LM head runs on rank 0 only: one matmul per logits chunk of each of
	 * the 5 forward calls (12 rows: 2 chunks; then 4 decode calls of 2 rows) */
	cr_expect_eq(ck[0]->matmuls - ck[1]->matmuls, 2 + 4, "rank 0 %d matmuls, rank 1 %d",
	    ck[0]->matmuls, ck[1]->matmuls);
	cr_expect_eq(ck[1]->matmuls, 5 * 2 * 7, "rank 1: 7 matmuls a layer, 2 layers, 5 calls");
	for (int i = 0; i < 12 * VOCAB; i++)
		cr_assert(fabsf(a->logits[0][i] - b->logits[0][i]) <= 1e-4f + 1e-4f *
		    fabsf(a->logits[0][i]), "prefill logit %d", i);
	entered = -1;
	backend_destroy(tp);
	backend_destroy(one);
	model_free(&m);
	free(a);
	free(b);
}

Test(tp_forward, indivisible_model_fails_in_forward_init)
{
	char path[128];
	struct model m;
	struct forward fw;
	struct backend *tp;
	struct llmd_err e = LLMD_ERR_INIT;
	make_model("odd", "llama", 6, 2);
	snprintf(path, sizeof(path), "%s/odd", dir);
	cr_assert_eq(model_load(&m, path, &e), 0, "%s", e.msg);
	cr_assert_eq(backend_tp_create_host(4, 1, &tp, &e), 0);
	cr_assert_eq(forward_init(&fw, &m, tp, 8, &e), -EINVAL);
	cr_expect_str_eq(e.field, "num_attention_heads");
	backend_destroy(tp);
	model_free(&m);
}

Test(tp_forward, serving_errors_without_cuda)
{
	struct backend *be = NULL;
	struct llmd_err e = LLMD_ERR_INIT;
	cr_assert_eq(backend_create_tp("cpu", 1, 2, &be, &e), -ENOTSUP);
	cr_expect(strstr(e.msg, "--device cuda") != NULL, "%s", e.msg);
	cr_expect_str_eq(e.field, "--tensor-parallel-size");
#ifndef HAVE_CUDA
	cr_assert_eq(backend_create_tp("cuda", 1, 2, &be, &e), -ENOTSUP);
	cr_expect(strstr(e.msg, "without CUDA") != NULL, "%s", e.msg);
	cr_assert_eq(backend_create_tp("auto", 1, 2, &be, &e), -ENOTSUP);
#endif
	/* one rank is the plain backend */
	cr_assert_eq(backend_create_tp("cpu", 1, 1, &be, &e), 0);
	cr_expect_eq(backend_tp_size(be), 1);
	cr_expect_str_eq(be->ops->name, "cpu");
	backend_destroy(be);
}
