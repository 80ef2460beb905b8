/*
 * engine/backend-cuda.cu - the CUDA implementation of struct backend_ops
 * (engine/forward.h) on one GPU: device memory for activations and the KV
 * cache, weights uploaded once as BF16 (prepare_model, through pinned
 * staging buffers, progress logged), one stream for everything, GEMMs through
 * cuBLASLt (engine/cuda-gemm.cu), the other ops as own kernels
 * (engine/cuda-kernels.cu, engine/cuda-attention.cu).
 *
 * Host pointers that ops receive:
 *  - weights (struct tensor data, norm weights, biases, RoPE inv_freq) are
 *    found in the weight map filled by prepare_model: a sorted array of host
 *    ranges -> device copies;
 *  - the batch's arrays (tokens, positions, block tables) are uploaded once
 *    per forward step by begin_batch into the batch buffers; an op given the
 *    current batch's pointer uses that copy;
 *  - any other small host array (gather indices, a vector the map lacks) is
 *    copied through the scratch upload ring.
 * Synchronization: the stream is the only queue; the host waits for it in
 * to_host (the logits), before it rewrites a pinned buffer a pending copy may
 * still read, and before it frees or regrows device memory.
 */
#include "config.h"
#include "engine/cuda-common.cuh"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

extern "C" {
#include "lib/util.h"
}

static_assert(sizeof(int) == sizeof(int32_t), "gather indices are uploaded as int32");

#define STAGE_BYTES (64u << 20)         /* each of the two pinned upload buffers */
#define WEIGHT_ALIGN 256
#define RESERVE_BYTES (1ull << 30)      /* left free after the weights for cuBLASLt, scratch */

/* One host range of the model and its device copy. */
struct wmap_entry {
	const char *host;
	size_t host_bytes;
	enum dtype host_dtype;
	char *dev;
	enum dtype dev_dtype;   /* DT_BF16 for matrices, DT_F32 for vectors */
};

/* A pinned host buffer and its device twin, filled front to back. */
struct upload_ring {
	char *host;             /* pinned */
	char *dev;
	size_t cap, used;
};

struct backend_cuda {
	struct backend base;
	int device, n_sm;
	cudaStream_t stream;
	struct cuda_gemm *gemm;

	char *weights;                  /* device, all weights */
	struct wmap_entry *map;         /* (n_map) sorted by host */
	int n_map;

	/* the current batch (between begin_batch(b) and begin_batch(NULL)) */
	const struct batch *cur;
	struct upload_ring bring;       /* batch arrays */
	struct cuda_batch db;           /* device views into bring */
	int tiles_qt, tiles_window, n_tiles, span;      /* attention plan of cur */
	int32_t *tiles_dev;

	struct upload_ring sring;       /* scratch uploads */

	__nv_bfloat16 *xbf;             /* GEMM input, (n, k) bf16 */
	size_t xbf_cap;                 /* bytes */
	const float *xbf_src;           /* xbf holds bf16(xbf_src (xbf_elems)); NULL: nothing */
	size_t xbf_elems;
	float *part;                    /* attention split partials */
	size_t part_cap;                /* bytes */
	float *tmp;                     /* gather staging */
	size_t tmp_cap;                 /* bytes */
};

static struct backend_cuda *
cu(struct backend *be)
{
	return (struct backend_cuda *)be;
}

static size_t
round_up(size_t n, size_t a)
{
	return (n + a - 1) / a * a;
}

/* An op wrote device bytes at p: the bf16 copy of a GEMM input that overlaps
 * them is stale. (q, k and v read the same normed x, as do gate and up: one
 * conversion serves them.) */
static void
wrote(struct backend_cuda *c, const void *p, size_t bytes)
{
	const char *a = (const char *)p, *b = (const char *)c->xbf_src;
	if (b && a < b + c->xbf_elems * sizeof(float) && b < a + bytes)
		c->xbf_src = NULL;
}

/* ---- memory ---- */

static void
stream_sync(struct backend_cuda *c)
{
	CUDA_CHECK(cudaStreamSynchronize(c->stream));
}

/* Grows device scratch *p to at least bytes (waits for the stream first:
 * queued kernels may still use the old buffer). */
static void
grow(struct backend_cuda *c, void **p, size_t *cap, size_t bytes)
{
	if (bytes <= *cap)
		return;
	stream_sync(c);
	if (*p)
		CUDA_CHECK(cudaFree(*p));
	*p = NULL;
	size_t n = round_up(bytes + bytes / 4, 1u << 20);
	CUDA_CHECK(cudaMalloc(p, n));
	*cap = n;
}

static void
ring_free(struct upload_ring *r)
{
	if (r->host)
		CUDA_CHECK(cudaFreeHost(r->host));
	if (r->dev)
		CUDA_CHECK(cudaFree(r->dev));
	memset(r, 0, sizeof(*r));
}

/* Makes room for bytes more; may wait for the stream and restart the ring,
 * so earlier device copies from the ring are only valid for ops already
 * queued. reset: start over even when there is room. */
static void
ring_reserve(struct backend_cuda *c, struct upload_ring *r, size_t bytes, int reset)
{
	if (!reset && r->used + bytes <= r->cap)
		return;
	stream_sync(c);
	r->used = 0;
	if (bytes > r->cap) {
		ring_free(r);
		size_t n = round_up(bytes * 2 > (1u << 20) ? bytes * 2 : (1u << 20), 4096);
		CUDA_CHECK(cudaMallocHost((void **)&r->host, n));
		CUDA_CHECK(cudaMalloc((void **)&r->dev, n));
		r->cap = n;
	}
}

/* Copies host bytes into the ring (after ring_reserve made room); returns the
 * device copy. */
static void *
ring_put(struct backend_cuda *c, struct upload_ring *r, const void *host, size_t bytes)
{
	char *h = r->host + r->used, *d = r->dev + r->used;
	memcpy(h, host, bytes);
	CUDA_CHECK(cudaMemcpyAsync(d, h, bytes, cudaMemcpyHostToDevice, c->stream));
	r->used += round_up(bytes ? bytes : 1, 256);
	return d;
}

static void *
upload_scratch(struct backend_cuda *c, const void *host, size_t bytes)
{
	ring_reserve(c, &c->sring, round_up(bytes ? bytes : 1, 256), 0);
	return ring_put(c, &c->sring, host, bytes);
}

static void *
cuda_alloc(struct backend *be, size_t bytes)
{
	struct backend_cuda *c = cu(be);
	void *p = NULL;
	c->xbf_src = NULL;      /* an address may come back with other contents */
	cudaError_t rc = cudaMalloc(&p, bytes ? bytes : 1);
	if (rc == cudaErrorMemoryAllocation) {
		(void)cudaGetLastError();       /* clear it: out of memory is the caller's to report */
		return NULL;
	}
	CUDA_CHECK(rc);
	CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, c->stream));
	stream_sync(c);
	return p;
}

static void
cuda_free(struct backend *be, void *p)
{
	cu(be)->xbf_src = NULL;
	stream_sync(cu(be));
	CUDA_CHECK(cudaFree(p));
}

static void
cuda_to_host(struct backend *be, void *dst, const void *src, size_t bytes)
{
	struct backend_cuda *c = cu(be);
	CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, c->stream));
	stream_sync(c);
}

static int
cuda_device_memory(struct backend *be, size_t *free_bytes, size_t *total_bytes)
{
	CUDA_CHECK(cudaSetDevice(cu(be)->device));
	CUDA_CHECK(cudaMemGetInfo(free_bytes, total_bytes));
	return 0;
}

/* ---- the weight map ---- */

static int
map_cmp(const void *a, const void *b)
{
	const char *x = ((const struct wmap_entry *)a)->host, *y = ((const struct wmap_entry *)b)->host;
	return x < y ? -1 : x > y;
}

/* The entry whose host range holds p, or NULL. */
static const struct wmap_entry *
map_find(const struct backend_cuda *c, const void *p)
{
	const char *q = (const char *)p;
	int lo = 0, hi = c->n_map - 1;
	while (lo <= hi) {
		int mid = lo + (hi - lo) / 2;
		const struct wmap_entry *e = &c->map[mid];
		if (q < e->host)
			hi = mid - 1;
		else if (q >= e->host + e->host_bytes)
			lo = mid + 1;
		else
			return e;
	}
	return NULL;
}

/* Device address of host element p inside entry e. */
static char *
map_dev(const struct wmap_entry *e, const void *p)
{
	size_t elem = (size_t)((const char *)p - e->host) / dtype_size(e->host_dtype);
	return e->dev + elem * dtype_size(e->dev_dtype);
}

/* Device copy of a host f32 vector (mapped, or uploaded now). */
static const float *
dev_vec(struct backend_cuda *c, const float *host, size_t n)
{
	const struct wmap_entry *e = map_find(c, host);
	if (e && e->dev_dtype == DT_F32 &&
	    (const char *)host + n * sizeof(float) <= e->host + e->host_bytes)
		return (const float *)map_dev(e, host);
	return (const float *)upload_scratch(c, host, n * sizeof(float));
}

/* Device bf16 copy of weight W; fatal when prepare_model did not upload it. */
static const __nv_bfloat16 *
dev_weight(struct backend_cuda *c, const struct tensor *W, const char *op)
{
	const struct wmap_entry *e = map_find(c, W->data);
	if (e == NULL || e->dev_dtype != DT_BF16)
		fatalx("cuda %s: weight %p (%lld x %lld) is not on the GPU (prepare_model not run "
		    "for this model)", op, W->data, (long long)W->shape[0], (long long)W->shape[1]);
	return (const __nv_bfloat16 *)map_dev(e, W->data);
}

static void
map_add(struct wmap_entry *map, int *n, const void *host, size_t elems, enum dtype host_dtype,
    enum dtype dev_dtype)
{
	if (host == NULL || elems == 0)
		return;
	for (int i = 0; i < *n; i++)
		if (map[i].host == host)
			return;         /* tied embeddings: one copy */
	struct wmap_entry *e = &map[(*n)++];
	e->host = (const char *)host;
	e->host_bytes = elems * dtype_size(host_dtype);
	e->host_dtype = host_dtype;
	e->dev_dtype = dev_dtype;
	e->dev = NULL;
}

static size_t
tensor_elems(const struct tensor *t)
{
	size_t n = 1;
	for (int i = 0; i < t->ndim; i++)
		n *= (size_t)t->shape[i];
	return n;
}

static double
now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Converts elems host elements of e (from element off) into the staging buffer
 * in the device dtype. */
static void
stage_convert(void *dst, const struct wmap_entry *e, size_t off, size_t elems)
{
	const char *src = e->host + off * dtype_size(e->host_dtype);
	if (e->host_dtype == e->dev_dtype) {
		memcpy(dst, src, elems * dtype_size(e->host_dtype));
		return;
	}
	if (e->dev_dtype == DT_F32)     /* vectors are f32 on the host already */
		fatalx("cuda upload: f32 vector stored as %s", dtype_name(e->host_dtype));
	uint16_t *o = (uint16_t *)dst;
	if (e->host_dtype == DT_F32) {
		const float *s = (const float *)src;
		for (size_t i = 0; i < elems; i++)
			o[i] = f32_to_bf16(s[i]);
	} else {                        /* F16 */
		const uint16_t *s = (const uint16_t *)src;
		for (size_t i = 0; i < elems; i++)
			o[i] = f32_to_bf16(f16_to_f32(s[i]));
	}
}

static int
cuda_prepare_model(struct backend *be, const struct model *m, struct llmd_err *e)
{
	struct backend_cuda *c = cu(be);
	const struct model_config *cfg = &m->cfg;
	int max_entries = 4 + 13 * cfg->n_layers;

	if (c->map) {
		/* a second forward over the same model shares the upload */
		if (map_find(c, m->embed.data) && map_find(c, m->lm_head.data))
			return 0;
		return err_set(e, -EBUSY, "cuda", "another model is already on this GPU");
	}
	if (cfg->head_dim > CUDA_ATTN_MAX_HD || cfg->head_dim % 2)
		return err_set(e, -ENOTSUP, "cuda", "head_dim %d: the CUDA attention kernel takes "
		    "even head dims up to %d", cfg->head_dim, CUDA_ATTN_MAX_HD);
	CUDA_CHECK(cudaSetDevice(c->device));

	struct wmap_entry *map = (struct wmap_entry *)xcalloc((size_t)max_entries, sizeof(*map));
	int n = 0;
	size_t D = (size_t)cfg->hidden, HD = (size_t)cfg->head_dim;
	size_t QD = (size_t)cfg->n_heads * HD, KD = (size_t)cfg->n_kv_heads * HD;
	map_add(map, &n, m->embed.data, tensor_elems(&m->embed), m->embed.dtype, DT_BF16);
	map_add(map, &n, m->lm_head.data, tensor_elems(&m->lm_head), m->lm_head.dtype, DT_BF16);
	map_add(map, &n, m->final_norm, D, DT_F32, DT_F32);
	map_add(map, &n, m->rope_inv_freq, HD / 2, DT_F32, DT_F32);
	for (int l = 0; l < cfg->n_layers; l++) {
		const struct layer_weights *w = &m->layers[l];
		const struct tensor *mats[] = { &w->wq, &w->wk, &w->wv, &w->wo, &w->w_gate, &w->w_up,
			&w->w_down };
		for (size_t i = 0; i < ARRAY_SIZE(mats); i++)
			map_add(map, &n, mats[i]->data, tensor_elems(mats[i]), mats[i]->dtype, DT_BF16);
		map_add(map, &n, w->attn_norm, D, DT_F32, DT_F32);
		map_add(map, &n, w->ffn_norm, D, DT_F32, DT_F32);
		map_add(map, &n, w->bq, QD, DT_F32, DT_F32);
		map_add(map, &n, w->bk, KD, DT_F32, DT_F32);
		map_add(map, &n, w->bv, KD, DT_F32, DT_F32);
		map_add(map, &n, w->q_norm, HD, DT_F32, DT_F32);
		map_add(map, &n, w->k_norm, HD, DT_F32, DT_F32);
	}
	qsort(map, (size_t)n, sizeof(*map), map_cmp);
	for (int i = 1; i < n; i++)
		if (map[i - 1].host + map[i - 1].host_bytes > map[i].host) {
			free(map);
			return err_set(e, -EINVAL, "cuda", "model tensors overlap in memory");
		}

	/* one device allocation, each tensor 256-byte aligned (cuBLASLt alignment) */
	size_t total = 0;
	for (int i = 0; i < n; i++) {
		size_t elems = map[i].host_bytes / dtype_size(map[i].host_dtype);
		total = round_up(total, WEIGHT_ALIGN) + elems * dtype_size(map[i].dev_dtype);
	}
	size_t free_b = 0, total_b = 0;
	CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
	if (total + RESERVE_BYTES > free_b) {
		free(map);
		return err_set(e, -ENOMEM, "cuda", "the weights need %.2f GiB (+%.1f GiB working "
		    "room) but the GPU has %.2f GiB free of %.2f", (double)total / (1 << 30),
		    (double)RESERVE_BYTES / (1 << 30), (double)free_b / (1 << 30),
		    (double)total_b / (1 << 30));
	}
	if (cudaMalloc((void **)&c->weights, total) != cudaSuccess) {
		(void)cudaGetLastError();
		free(map);
		return err_set(e, -ENOMEM, "cuda", "cannot allocate %.2f GiB for the weights",
		    (double)total / (1 << 30));
	}
	size_t off = 0;
	for (int i = 0; i < n; i++) {
		off = round_up(off, WEIGHT_ALIGN);
		map[i].dev = c->weights + off;
		off += map[i].host_bytes / dtype_size(map[i].host_dtype) * dtype_size(map[i].dev_dtype);
	}

	/* upload: convert into pinned buffer k while the copy from buffer k ^ 1 runs */
	void *stage[2];
	cudaEvent_t done[2];
	for (int k = 0; k < 2; k++) {
		CUDA_CHECK(cudaMallocHost(&stage[k], STAGE_BYTES));
		CUDA_CHECK(cudaEventCreateWithFlags(&done[k], cudaEventDisableTiming));
		CUDA_CHECK(cudaEventRecord(done[k], c->stream));
	}
	double t0 = now_s(), last_log = t0;
	size_t sent = 0;
	int k = 0;
	log_info("cuda: uploading %.2f GiB of weights (%d tensors) as bf16",
	    (double)total / (1 << 30), n);
	for (int i = 0; i < n; i++) {
		size_t elems = map[i].host_bytes / dtype_size(map[i].host_dtype);
		size_t dsz = dtype_size(map[i].dev_dtype), per = STAGE_BYTES / dsz;
		for (size_t e0 = 0; e0 < elems; e0 += per) {
			size_t cnt = elems - e0 < per ? elems - e0 : per;
			CUDA_CHECK(cudaEventSynchronize(done[k]));      /* buffer k is free again */
			stage_convert(stage[k], &map[i], e0, cnt);
			CUDA_CHECK(cudaMemcpyAsync(map[i].dev + e0 * dsz, stage[k], cnt * dsz,
			    cudaMemcpyHostToDevice, c->stream));
			CUDA_CHECK(cudaEventRecord(done[k], c->stream));
			k ^= 1;
			sent += cnt * dsz;
			if (now_s() - last_log >= 2.0) {
				last_log = now_s();
				log_info("cuda: weights %.2f / %.2f GiB (%.0f%%, %.1f s)",
				    (double)sent / (1 << 30), (double)total / (1 << 30),
				    100.0 * (double)sent / (double)total, last_log - t0);
			}
		}
	}
	stream_sync(c);
	for (k = 0; k < 2; k++) {
		CUDA_CHECK(cudaEventDestroy(done[k]));
		CUDA_CHECK(cudaFreeHost(stage[k]));
	}
	double dt = now_s() - t0;
	log_info("cuda: weights on the GPU: %.2f GiB in %.1f s (%.2f GiB/s)",
	    (double)total / (1 << 30), dt, dt > 0 ? (double)total / (1 << 30) / dt : 0.0);
	c->map = map;
	c->n_map = n;
	return 0;
}

/* ---- the batch ---- */

/* Uploads b's arrays (waits for the stream: the previous batch's ops may
 * still read the ring). */
static void
upload_batch(struct backend_cuda *c, const struct kv_cache *kv, const struct batch *b)
{
	int n = b->n_tok;
	size_t n_bt = 0;
	for (int s = 0; s < b->n_seq; s++)
		n_bt += (size_t)b->seqs[s].n_blocks;
	/* token, pos, tok_bt, tok_blk (n each), bt (n_bt), tiles (2n) */
	size_t bytes = 6 * round_up((size_t)n * 4, 256) + round_up(n_bt * 4, 256) + 256;
	ring_reserve(c, &c->bring, bytes, 1);

	int32_t *tok_bt = (int32_t *)xmalloc((size_t)n * sizeof(int32_t));
	int32_t *tok_blk = (int32_t *)xmalloc((size_t)n * sizeof(int32_t));
	int32_t *bt = (int32_t *)xmalloc((n_bt ? n_bt : 1) * sizeof(int32_t));
	int32_t *seq_off = (int32_t *)xmalloc(((size_t)b->n_seq + 1) * sizeof(int32_t));
	size_t o = 0;
	for (int s = 0; s < b->n_seq; s++) {
		seq_off[s] = (int32_t)o;
		memcpy(bt + o, b->seqs[s].block_table, (size_t)b->seqs[s].n_blocks * sizeof(int32_t));
		o += (size_t)b->seqs[s].n_blocks;
	}
	for (int i = 0; i < n; i++) {
		tok_bt[i] = seq_off[b->seq[i]];
		tok_blk[i] = b->seqs[b->seq[i]].block_table[b->pos[i] / kv->block_size];
	}
	c->db.n_tok = n;
	c->db.token = (const int32_t *)ring_put(c, &c->bring, b->token, (size_t)n * 4);
	c->db.pos = (const int32_t *)ring_put(c, &c->bring, b->pos, (size_t)n * 4);
	c->db.tok_bt = (const int32_t *)ring_put(c, &c->bring, tok_bt, (size_t)n * 4);
	c->db.tok_blk = (const int32_t *)ring_put(c, &c->bring, tok_blk, (size_t)n * 4);
	c->db.bt = (const int32_t *)ring_put(c, &c->bring, bt, n_bt * 4);
	free(tok_bt);
	free(tok_blk);
	free(bt);
	free(seq_off);
	c->tiles_qt = 0;        /* no attention plan yet */
	c->tiles_dev = NULL;
}

static void
cuda_begin_batch(struct backend *be, const struct kv_cache *kv, const struct batch *b)
{
	struct backend_cuda *c = cu(be);
	c->cur = NULL;
	if (b == NULL)
		return;
	CUDA_CHECK(cudaSetDevice(c->device));   /* the serving loop runs on its own thread */
	upload_batch(c, kv, b);
	c->sring.used = 0;      /* upload_batch waited for the stream */
	c->cur = b;
}

/* Device arrays of b: the current batch's, or uploaded now. */
static const struct cuda_batch *
batch_of(struct backend_cuda *c, const struct kv_cache *kv, const struct batch *b)
{
	if (b != c->cur || c->cur == NULL) {
		upload_batch(c, kv, b);
		c->cur = NULL;  /* not begin_batch's: valid for this op only */
	}
	return &c->db;
}

/* Device int32 copy of a host array: the current batch's copy when arr is
 * one of its arrays, else a scratch upload. */
static const int32_t *
dev_ints(struct backend_cuda *c, const int32_t *arr, const int32_t *cur_host,
    const int32_t *cur_dev, int n)
{
	if (c->cur && arr == cur_host)
		return cur_dev;
	return (const int32_t *)upload_scratch(c, arr, (size_t)n * sizeof(int32_t));
}

/* ---- ops ---- */

static void
cuda_embed_op(struct backend *be, float *x, const struct tensor *emb, const int32_t *tokens, int n)
{
	struct backend_cuda *c = cu(be);
	const int32_t *tok = dev_ints(c, tokens, c->cur ? c->cur->token : NULL, c->db.token, n);
	cuda_embed(c->stream, x, dev_weight(c, emb, "embed"), tok, n, (int)emb->shape[1]);
	wrote(c, x, (size_t)n * (size_t)emb->shape[1] * sizeof(float));
}

static void
cuda_rmsnorm_op(struct backend *be, float *out, const float *x, const float *w, int n, int dim,
    float eps)
{
	struct backend_cuda *c = cu(be);
	cuda_rmsnorm(c->stream, out, x, dev_vec(c, w, (size_t)dim), n, dim, eps);
	wrote(c, out, (size_t)n * (size_t)dim * sizeof(float));
}

static void
cuda_matmul_op(struct backend *be, float *out, const float *x, const struct tensor *W, int n,
    int accumulate)
{
	struct backend_cuda *c = cu(be);
	int d = (int)W->shape[0], k = (int)W->shape[1];
	const __nv_bfloat16 *w = dev_weight(c, W, "matmul");
	size_t elems = (size_t)n * (size_t)k;
	/* xbf (n, k) bf16 = x, unless it already is */
	if (x != c->xbf_src || elems != c->xbf_elems) {
		if (elems * sizeof(__nv_bfloat16) > c->xbf_cap)
			grow(c, (void **)&c->xbf, &c->xbf_cap, elems * sizeof(__nv_bfloat16));
		cuda_f32_to_bf16(c->stream, c->xbf, x, elems);
		c->xbf_src = x;
		c->xbf_elems = elems;
	}
	/* out (n, d) (+)= xbf @ W^T */
	cuda_gemm_bf16(c->gemm, out, c->xbf, w, n, d, k, accumulate);
	wrote(c, out, (size_t)n * (size_t)d * sizeof(float));
}

static void
cuda_add_bias_op(struct backend *be, float *x, const float *b, int n, int d)
{
	struct backend_cuda *c = cu(be);
	cuda_add_bias(c->stream, x, dev_vec(c, b, (size_t)d), n, d);
	wrote(c, x, (size_t)n * (size_t)d * sizeof(float));
}

static void
cuda_rope_op(struct backend *be, float *x, const int32_t *pos, int n, int n_heads, int hd,
    const float *inv_freq)
{
	struct backend_cuda *c = cu(be);
	const int32_t *p = dev_ints(c, pos, c->cur ? c->cur->pos : NULL, c->db.pos, n);
	cuda_rope(c->stream, x, p, n, n_heads, hd, dev_vec(c, inv_freq, (size_t)hd / 2));
	wrote(c, x, (size_t)n * (size_t)n_heads * (size_t)hd * sizeof(float));
}

static void
cuda_kv_store_op(struct backend *be, struct kv_cache *kv, int l, const float *k, const float *v,
    const struct batch *b)
{
	struct backend_cuda *c = cu(be);
	cuda_kv_store(c->stream, kv, l, k, v, batch_of(c, kv, b));
}

static void
cuda_attention_op(struct backend *be, float *out, const float *q, struct kv_cache *kv, int l,
    const struct batch *b, int n_heads, int n_kv_heads, int hd, int window)
{
	struct backend_cuda *c = cu(be);
	const struct cuda_batch *db = batch_of(c, kv, b);
	int qt = cuda_attn_tile_tokens(n_heads, n_kv_heads);

	if (c->tiles_qt != qt || c->tiles_window != window || c->tiles_dev == NULL) {
		/* plan once per batch (every layer has the same tiles) */
		int32_t *tiles = (int32_t *)xmalloc((size_t)b->n_tok * 2 * sizeof(int32_t));
		struct cuda_batch_host hb = { b->n_tok, b->pos, b->seq };
		c->n_tiles = cuda_attn_plan_tiles(&hb, qt, tiles);
		c->span = 1;
		for (int t = 0; t < c->n_tiles; t++) {
			int p0 = b->pos[tiles[2 * t]], p1 = b->pos[tiles[2 * t] + tiles[2 * t + 1] - 1];
			int k0 = window > 0 ? (p0 - window + 1 > 0 ? p0 - window + 1 : 0) : 0;
			if (p1 - k0 + 1 > c->span)
				c->span = p1 - k0 + 1;
		}
		/* the batch ring keeps the tiles for the whole batch; planning twice
		 * in one batch (a different head layout) restarts nothing: room for
		 * 2n ints was reserved, and a second plan waits for the stream */
		if (c->tiles_dev != NULL)
			stream_sync(c);
		size_t bytes = (size_t)c->n_tiles * 2 * sizeof(int32_t);
		if (c->cur == b && c->bring.used + round_up(bytes, 256) <= c->bring.cap)
			c->tiles_dev = (int32_t *)ring_put(c, &c->bring, tiles, bytes);
		else
			c->tiles_dev = (int32_t *)upload_scratch(c, tiles, bytes);
		free(tiles);
		c->tiles_qt = c->cur == b ? qt : 0;     /* cache only inside begin_batch */
		c->tiles_window = window;
	}
	int n_splits = cuda_attn_splits(c->n_tiles, n_heads, n_kv_heads, c->span, c->n_sm);
	size_t part = cuda_attn_part_floats(b->n_tok, n_heads, hd, n_splits);
	if (part)
		grow(c, (void **)&c->part, &c->part_cap, part * sizeof(float));
	cuda_attention(c->stream, out, q, kv, l, db, c->tiles_dev, c->n_tiles, n_heads, n_kv_heads,
	    hd, window, n_splits, c->part);
	wrote(c, out, (size_t)b->n_tok * (size_t)n_heads * (size_t)hd * sizeof(float));
	if (c->cur != b)
		c->tiles_dev = NULL;
}

static void
cuda_swiglu_op(struct backend *be, float *g, const float *u, size_t n)
{
	cuda_swiglu(cu(be)->stream, g, u, n);
	wrote(cu(be), g, n * sizeof(float));
}

static void
cuda_gather_rows_op(struct backend *be, float *out, const float *x, const int *idx, int m,
    int dim)
{
	struct backend_cuda *c = cu(be);
	if (m <= 0)
		return;
	const int32_t *di = (const int32_t *)upload_scratch(c, idx, (size_t)m * sizeof(int32_t));
	size_t bytes = (size_t)m * (size_t)dim * sizeof(float);
	int max_i = 0;
	for (int i = 0; i < m; i++)
		max_i = idx[i] > max_i ? idx[i] : max_i;
	const char *xs = (const char *)x, *xe = xs + ((size_t)max_i + 1) * dim * sizeof(float);
	const char *os = (const char *)out, *oe = os + bytes;
	if (os < xe && xs < oe) {
		/* out overlaps x: gather into tmp, then copy (the CPU op allows aliasing) */
		grow(c, (void **)&c->tmp, &c->tmp_cap, bytes);
		cuda_gather_rows(c->stream, c->tmp, x, di, m, dim);
		CUDA_CHECK(cudaMemcpyAsync(out, c->tmp, bytes, cudaMemcpyDeviceToDevice, c->stream));
	} else {
		cuda_gather_rows(c->stream, out, x, di, m, dim);
	}
	wrote(c, out, bytes);
}

static void
cuda_destroy(struct backend *be)
{
	struct backend_cuda *c = cu(be);
	stream_sync(c);
	cuda_gemm_destroy(c->gemm);
	ring_free(&c->bring);
	ring_free(&c->sring);
	void *bufs[] = { c->weights, c->xbf, c->part, c->tmp };
	for (size_t i = 0; i < ARRAY_SIZE(bufs); i++)
		if (bufs[i])
			CUDA_CHECK(cudaFree(bufs[i]));
	CUDA_CHECK(cudaStreamDestroy(c->stream));
	free(c->map);
	free(c);
}

static const struct backend_ops cuda_ops = {
	/* .name = */ "cuda",
	/* .destroy = */ cuda_destroy,
	/* .alloc = */ cuda_alloc,
	/* .free = */ cuda_free,
	/* .to_host = */ cuda_to_host,
	/* .embed = */ cuda_embed_op,
	/* .rmsnorm = */ cuda_rmsnorm_op,
	/* .matmul = */ cuda_matmul_op,
	/* .add_bias = */ cuda_add_bias_op,
	/* .rope = */ cuda_rope_op,
	/* .kv_store = */ cuda_kv_store_op,
	/* .attention = */ cuda_attention_op,
	/* .swiglu = */ cuda_swiglu_op,
	/* .gather_rows = */ cuda_gather_rows_op,
	/* .prepare_model = */ cuda_prepare_model,
	/* .begin_batch = */ cuda_begin_batch,
	/* .device_memory = */ cuda_device_memory,
};

extern "C" int
backend_cuda_available(void)
{
	int n = 0;
	if (cudaGetDeviceCount(&n) != cudaSuccess) {
		(void)cudaGetLastError();
		return 0;
	}
	return n > 0;
}

extern "C" int
backend_cuda_create(struct backend **out, struct llmd_err *e)
{
	int n = 0;
	cudaError_t rc = cudaGetDeviceCount(&n);
	if (rc != cudaSuccess || n == 0) {
		(void)cudaGetLastError();
		return err_set(e, -ENODEV, "--device", "cuda: no usable GPU (%s)",
		    rc != cudaSuccess ? cudaGetErrorName(rc) : "no devices");
	}
	cudaDeviceProp prop;
	CUDA_CHECK(cudaSetDevice(0));
	CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
	if (prop.major < 8)
		return err_set(e, -ENODEV, "--device", "cuda: %s is compute capability %d.%d; the "
		    "bf16 kernels need 8.0 or newer", prop.name, prop.major, prop.minor);
	struct backend_cuda *c = (struct backend_cuda *)xcalloc(1, sizeof(*c));
	c->base.ops = &cuda_ops;
	c->base.n_threads = 1;
	c->device = 0;
	c->n_sm = prop.multiProcessorCount;
	CUDA_CHECK(cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking));
	c->gemm = cuda_gemm_create(c->stream);
	log_info("cuda: %s (sm_%d%d, %d SMs, %.1f GiB)", prop.name, prop.major, prop.minor,
	    prop.multiProcessorCount, (double)prop.totalGlobalMem / (1 << 30));
	*out = &c->base;
	return 0;
}
