/*
 * engine/backend-cpu.c - the CPU implementation of struct backend_ops:
 * host memory, weight matmuls through engine/kernels.h on a persistent
 * thread pool, and attention parallel over (token, KV head) pairs reading the
 * paged KV cache, all query heads of a GQA group in one pass (attn_rows).
 */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/forward.h"
#include "engine/kernels.h"
#include "lib/util.h"

/* Largest head_dim the attention and RoPE loops support (model_load checks). */
#define CPU_MAX_HEAD_DIM 512

struct backend_cpu {
	struct backend base;
	struct threadpool *tp;
};

static struct threadpool *
pool(struct backend *be)
{
	return ((struct backend_cpu *)be)->tp;
}

static void
cpu_destroy(struct backend *be)
{
	threadpool_destroy(pool(be));
	free(be);
}

static void *
cpu_alloc(struct backend *be, size_t bytes)
{
	(void)be;
	return calloc(1, bytes ? bytes : 1);
}

static void
cpu_free(struct backend *be, void *p)
{
	(void)be;
	free(p);
}

static void
cpu_to_host(struct backend *be, void *dst, const void *src, size_t bytes)
{
	(void)be;
	if (dst != src)
		memcpy(dst, src, bytes);
}

static void
cpu_embed(struct backend *be, float *x, const struct tensor *emb, const int32_t *tokens, int n)
{
	(void)be;
	int64_t D = emb->shape[1];
	size_t row_bytes = (size_t)D * dtype_size(emb->dtype);
	/* x[i] (D) = emb[tokens[i]] */
	for (int i = 0; i < n; i++)
		row_to_f32(x + (size_t)i * D, (const char *)emb->data + (size_t)tokens[i] * row_bytes,
		    emb->dtype, D);
}

static void
cpu_rmsnorm(struct backend *be, float *out, const float *x, const float *w, int n, int dim,
    float eps)
{
	(void)be;
	for (int i = 0; i < n; i++) {
		const float *xr = x + (size_t)i * dim;
		float *o = out + (size_t)i * dim;
		double ss = 0;
		for (int j = 0; j < dim; j++)
			ss += (double)xr[j] * xr[j];
		float scale = (float)(1.0 / sqrt(ss / dim + eps));
		for (int j = 0; j < dim; j++)
			o[j] = xr[j] * scale * w[j];
	}
}

static void
cpu_matmul(struct backend *be, float *out, const float *x, const struct tensor *W, int n,
    int accumulate)
{
	if (accumulate)
		matmul_wt_acc(pool(be), out, x, W, n);
	else
		matmul_wt(pool(be), out, x, W, n);
}

static void
cpu_add_bias(struct backend *be, float *x, const float *b, int n, int d)
{
	(void)be;
	for (int i = 0; i < n; i++)
		for (int j = 0; j < d; j++)
			x[(size_t)i * d + j] += b[j];
}

static void
cpu_rope(struct backend *be, float *x, const int32_t *pos, int n, int n_heads, int hd,
    const float *inv_freq)
{
	(void)be;
	int half = hd / 2;
	float cs[CPU_MAX_HEAD_DIM / 2], sn[CPU_MAX_HEAD_DIM / 2];

	for (int i = 0; i < n; i++) {
		for (int j = 0; j < half; j++) {
			double a = (double)pos[i] * (double)inv_freq[j];
			cs[j] = (float)cos(a);
			sn[j] = (float)sin(a);
		}
		/* head (hd): (x0, x1) = (x[j], x[j+half]) -> (x0 c - x1 s, x1 c + x0 s) */
		for (int h = 0; h < n_heads; h++) {
			float *v = x + ((size_t)i * n_heads + h) * hd;
			for (int j = 0; j < half; j++) {
				float x0 = v[j], x1 = v[j + half];
				v[j] = x0 * cs[j] - x1 * sn[j];
				v[j + half] = x1 * cs[j] + x0 * sn[j];
			}
		}
	}
}

static void
cpu_kv_store(struct backend *be, struct kv_cache *kv, int l, const float *k, const float *v,
    const struct batch *b)
{
	(void)be;
	size_t row = (size_t)kv->kv_dim;
	for (int i = 0; i < b->n_tok; i++) {
		const struct batch_seq *s = &b->seqs[b->seq[i]];
		int32_t blk = s->block_table[b->pos[i] / kv->block_size];
		size_t slot = (size_t)(b->pos[i] % kv->block_size);
		memcpy(kv_block_k(kv, blk, l) + slot * row, k + (size_t)i * row, row * sizeof(float));
		memcpy(kv_block_v(kv, blk, l) + slot * row, v + (size_t)i * row, row * sizeof(float));
	}
}

struct attn_job {
	float *out;
	const float *q;
	struct kv_cache *kv;
	int l;
	const struct batch *b;
	int n_heads, n_kv_heads, hd, window;
	int group;              /* query heads per KV head: n_heads / n_kv_heads */
	int n_sub;              /* sub-groups of <= ATTN_MAX_GROUP heads per KV head */
};

/*
 * One (token, KV head, sub-group of the query heads that share it): online
 * softmax over positions 0..pos (or the last `window` of them), one
 * attn_rows step per run of positions within a KV block, so each K/V row is
 * read once for the whole sub-group.
 */
static void
attn_task(void *arg, int task, int n_tasks)
{
	(void)n_tasks;
	const struct attn_job *j = arg;
	const struct kv_cache *kv = j->kv;
	int per_tok = j->n_kv_heads * j->n_sub, hd = j->hd;
	int t = task / per_tok, kvh = task % per_tok / j->n_sub, sub = task % j->n_sub;
	int h0 = kvh * j->group + sub * ATTN_MAX_GROUP;
	int g = MIN(ATTN_MAX_GROUP, j->group - sub * ATTN_MAX_GROUP);
	const struct batch_seq *s = &j->b->seqs[j->b->seq[t]];
	const float *q = j->q + ((size_t)t * j->n_heads + h0) * hd;    /* (g, HD) */
	float *o = j->out + ((size_t)t * j->n_heads + h0) * hd;         /* (g, HD) */
	float acc[ATTN_MAX_GROUP * CPU_MAX_HEAD_DIM];                   /* (g, HD) */
	float mx[ATTN_MAX_GROUP], sum[ATTN_MAX_GROUP];
	float scale = 1.0f / sqrtf((float)hd);
	int bs = kv->block_size, last = j->b->pos[t];

	memset(acc, 0, (size_t)g * hd * sizeof(float));
	for (int h = 0; h < g; h++) {
		mx[h] = -INFINITY;
		sum[h] = 0;
	}
	int p = j->window > 0 ? MAX(0, last - j->window + 1) : 0;
	while (p <= last) {
		int32_t blk = s->block_table[p / bs];
		int slot = p % bs;
		int n = MIN(MIN(bs - slot, last - p + 1), ATTN_MAX_ROWS);
		size_t off = (size_t)slot * kv->kv_dim + (size_t)kvh * hd;
		/* K, V rows p..p+n of this KV head: (n, HD) with row stride kv_dim */
		attn_rows(acc, mx, sum, q, g, hd, kv_block_k(kv, blk, j->l) + off,
		    kv_block_v(kv, blk, j->l) + off, (size_t)kv->kv_dim, n, scale);
		p += n;
	}
	for (int h = 0; h < g; h++)
		for (int d = 0; d < hd; d++)
			o[(size_t)h * hd + d] = acc[(size_t)h * hd + d] / sum[h];
}

static void
cpu_attention(struct backend *be, float *out, const float *q, struct kv_cache *kv, int l,
    const struct batch *b, int n_heads, int n_kv_heads, int hd, int window)
{
	int group = n_heads / n_kv_heads;
	struct attn_job j = {
		out, q, kv, l, b, n_heads, n_kv_heads, hd, window,
		group, (group + ATTN_MAX_GROUP - 1) / ATTN_MAX_GROUP,
	};
	threadpool_run(pool(be), attn_task, &j, b->n_tok * n_kv_heads * j.n_sub);
}

static void
cpu_swiglu(struct backend *be, float *g, const float *u, size_t n)
{
	(void)be;
	for (size_t i = 0; i < n; i++)
		g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

static void
cpu_gather_rows(struct backend *be, float *out, const float *x, const int *idx, int m, int dim)
{
	(void)be;
	for (int i = 0; i < m; i++)
		if (out + (size_t)i * dim != x + (size_t)idx[i] * dim)
			memmove(out + (size_t)i * dim, x + (size_t)idx[i] * dim,
			    (size_t)dim * sizeof(float));
}

static const struct backend_ops cpu_ops = {
	.name = "cpu",
	.destroy = cpu_destroy,
	.alloc = cpu_alloc,
	.free = cpu_free,
	.to_host = cpu_to_host,
	.embed = cpu_embed,
	.rmsnorm = cpu_rmsnorm,
	.matmul = cpu_matmul,
	.add_bias = cpu_add_bias,
	.rope = cpu_rope,
	.kv_store = cpu_kv_store,
	.attention = cpu_attention,
	.swiglu = cpu_swiglu,
	.gather_rows = cpu_gather_rows,
};

struct backend *
backend_cpu_create(int n_threads)
{
	struct backend_cpu *c = xcalloc(1, sizeof(*c));
	c->tp = threadpool_create(n_threads);
	c->base.ops = &cpu_ops;
	c->base.n_threads = threadpool_size(c->tp);
	return &c->base;
}
