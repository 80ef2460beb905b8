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
 *
 * CUDA graphs (decode steps; LLMD_CUDA_GRAPHS=0 turns them off). A batch in
 * which every token is its own sequence and wants logits (n <= 256) is a
 * decode step. Its graph key is (n, block-table bucket, logits, greedy or sampled ids,
 * KV pool, activation buffers): the bucket is the longest block table rounded up to a power of
 * two, which fixes the layout of the step's metadata. The first step of a key
 * runs op by op (it creates the GEMM plans); the second is captured: the
 * metadata copy from the graph's own pinned buffer, every kernel and GEMM,
 * and the logits copies into a shared pinned buffer; later steps write their
 * metadata into that pinned buffer and launch the graph, the ops only count
 * themselves (the count must equal the captured one), and to_host copies
 * complete at begin_batch(NULL). Attention in a graph uses the split count of
 * the bucket's longest span; each tile cuts its own span by it.
 */
#include "config.h"
#include "engine/cuda-common.cuh"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

extern "C" {
#include "engine/backend-tp.h"
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

#define GRAPH_MAX_TOK 256
#define GRAPH_SLOTS 32
#define GRAPH_MAX_OUTS 64

enum graph_mode {
	G_OFF,          /* ops run as they come */
	G_PENDING,      /* a decode step began; the first op decides */
	G_CAPTURE,      /* ops are captured into the key's graph */
	G_REPLAY,       /* the key's graph runs at the end; ops only count */
};

/* One decode-step graph and the fixed buffers its nodes read. */
struct cuda_graph {
	int used, seen;
	uint64_t tick;                  /* last use, for LRU eviction */
	int n_tok, bucket, greedy;      /* key: tokens, block table bucket, ids out */
	const void *kv_data, *x;        /* key: KV pool, residual stream buffer */
	cudaGraphExec_t exec;           /* NULL until captured */
	char *meta_host, *meta_dev;     /* pinned / device, meta_bytes */
	size_t meta_bytes;
	struct cuda_batch db;           /* views into meta_dev */
	int32_t *tiles_dev, *rows_dev;  /* (n, 2) one-token tiles, (n) 0..n-1 */
	int n_ops, n_outs;              /* counted at capture */
	size_t out_bytes;
};

/* A to_host copy of a graph step, completed after the launch. */
struct graph_out {
	void *dst;
	size_t off, bytes;
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

	const struct model_config *cfg; /* of the prepared model */
	int graphs_on;
	enum graph_mode gmode;
	const struct batch *gb;         /* the pending decode step */
	const struct kv_cache *gkv;
	int gbucket, ggreedy;
	struct cuda_graph graphs[GRAPH_SLOTS];
	struct cuda_graph *g;           /* the step's graph (capture, replay) */
	uint64_t tick;
	int op_count;
	struct graph_out outs[GRAPH_MAX_OUTS];
	int n_outs;
	size_t out_used;
	int32_t *ids_dev;               /* (FORWARD_LOGIT_ROWS) argmax_rows / sample_rows output */
	struct cuda_sampler *sampler;   /* sample_rows' parameter slots (engine/cuda-sample.cu) */
	float *gout;                    /* pinned logits staging of all graphs */
	size_t gout_cap;                /* bytes */
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

static void graphs_drop(struct backend_cuda *c);

/* Grows device scratch *p to at least bytes (waits for the stream first:
 * queued kernels may still use the old buffer; captured graphs hold the old
 * address, so they go too, except the one being prepared, c->g). */
static void
grow(struct backend_cuda *c, void **p, size_t *cap, size_t bytes)
{
	if (bytes <= *cap)
		return;
	stream_sync(c);
	graphs_drop(c);
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
	if (c->gmode == G_CAPTURE)
		fatalx("cuda graph: a host array (%zu bytes) outside the step's metadata", bytes);
	ring_reserve(c, &c->sring, round_up(bytes ? bytes : 1, 256), 0);
	return ring_put(c, &c->sring, host, bytes);
}

static void *
cuda_alloc(struct backend *be, size_t bytes)
{
	struct backend_cuda *c = cu(be);
	void *p = NULL;
	if (c->gmode == G_CAPTURE || c->gmode == G_REPLAY)
		fatalx("cuda: alloc inside a graph step");
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
	struct backend_cuda *c = cu(be);
	if (c->gmode == G_CAPTURE || c->gmode == G_REPLAY)
		fatalx("cuda: free inside a graph step");
	c->xbf_src = NULL;
	stream_sync(c);
	graphs_drop(c);         /* graphs hold device addresses; p may be one */
	CUDA_CHECK(cudaFree(p));
}

static void
cuda_to_host(struct backend *be, void *dst, const void *src, size_t bytes)
{
	struct backend_cuda *c = cu(be);
	if (c->gmode == G_CAPTURE || c->gmode == G_REPLAY) {
		/* into the pinned staging; copied to dst after the graph ran */
		c->op_count++;
		if (c->n_outs == GRAPH_MAX_OUTS || c->out_used + bytes > c->gout_cap)
			fatalx("cuda graph: %d logits copies / %zu bytes exceed the staging", c->n_outs + 1,
			    c->out_used + bytes);
		if (c->gmode == G_CAPTURE)
			CUDA_CHECK(cudaMemcpyAsync((char *)c->gout + c->out_used, src, bytes,
			    cudaMemcpyDeviceToHost, c->stream));
		c->outs[c->n_outs].dst = dst;
		c->outs[c->n_outs].off = c->out_used;
		c->outs[c->n_outs].bytes = bytes;
		c->n_outs++;
		c->out_used += round_up(bytes, 256);
		return;
	}
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
	c->cfg = &m->cfg;
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

/* ---- decode-step graphs ---- */

static void
graph_free(struct cuda_graph *g)
{
	if (g->exec)
		CUDA_CHECK(cudaGraphExecDestroy(g->exec));
	if (g->meta_host)
		CUDA_CHECK(cudaFreeHost(g->meta_host));
	if (g->meta_dev)
		CUDA_CHECK(cudaFree(g->meta_dev));
	memset(g, 0, sizeof(*g));
}

/* Drops every graph but c->g (the one being prepared, not captured yet).
 * The stream is idle: callers synchronized. */
static void
graphs_drop(struct backend_cuda *c)
{
	for (int i = 0; i < GRAPH_SLOTS; i++)
		if (c->graphs[i].used && &c->graphs[i] != c->g)
			graph_free(&c->graphs[i]);
}

/* The block-table bucket of a decode step, or 0 when b is not one. */
static int
decode_bucket(const struct backend_cuda *c, const struct batch *b)
{
	if (!c->graphs_on || c->cfg == NULL || b->n_tok > GRAPH_MAX_TOK || b->n_seq != b->n_tok)
		return 0;
	int most = 1;
	for (int i = 0; i < b->n_tok; i++) {
		if (b->seq[i] != i || (b->want_logits ? !b->want_logits[i] : b->n_tok != 1))
			return 0;
		most = b->seqs[i].n_blocks > most ? b->seqs[i].n_blocks : most;
	}
	int bucket = 4;
	while (bucket < most)
		bucket *= 2;
	return bucket;
}

/* Writes b's metadata into g's pinned buffer, in g's fixed layout. */
static void
graph_fill(struct cuda_graph *g, const struct kv_cache *kv, const struct batch *b)
{
	int n = g->n_tok, B = g->bucket;
	char *h = g->meta_host;
	int32_t *tok = (int32_t *)h;
	int32_t *pos = (int32_t *)(h + ((const char *)g->db.pos - g->meta_dev));
	int32_t *tok_bt = (int32_t *)(h + ((const char *)g->db.tok_bt - g->meta_dev));
	int32_t *tok_blk = (int32_t *)(h + ((const char *)g->db.tok_blk - g->meta_dev));
	int32_t *bt = (int32_t *)(h + ((const char *)g->db.bt - g->meta_dev));
	int32_t *tiles = (int32_t *)(h + ((char *)g->tiles_dev - g->meta_dev));
	int32_t *rows = (int32_t *)(h + ((char *)g->rows_dev - g->meta_dev));
	memset(bt, 0, (size_t)n * B * sizeof(int32_t));
	for (int i = 0; i < n; i++) {
		const struct batch_seq *s = &b->seqs[i];
		int nb = s->n_blocks < B ? s->n_blocks : B;
		tok[i] = b->token[i];
		pos[i] = b->pos[i];
		tok_bt[i] = i * B;
		tok_blk[i] = s->block_table[b->pos[i] / kv->block_size];
		memcpy(bt + (size_t)i * B, s->block_table, (size_t)nb * sizeof(int32_t));
		tiles[2 * i] = i;
		tiles[2 * i + 1] = 1;
		rows[i] = i;
	}
}

/* A graph slot for the key: the existing one, or a fresh one (evicting the
 * least recently used). */
static struct cuda_graph *
graph_slot(struct backend_cuda *c, int n, int bucket, const void *x)
{
	struct cuda_graph *g = NULL, *lru = &c->graphs[0];
	for (int i = 0; i < GRAPH_SLOTS; i++) {
		struct cuda_graph *s = &c->graphs[i];
		if (s->used && s->n_tok == n && s->bucket == bucket && s->greedy == c->ggreedy &&
		    s->kv_data == c->gkv->data && s->x == x)
			g = s;
		if (!s->used || (lru->used && s->tick < lru->tick))
			lru = s;
	}
	if (g == NULL) {
		g = lru;
		if (g->used)
			graph_free(g);
		g->used = 1;
		g->n_tok = n;
		g->bucket = bucket;
		g->greedy = c->ggreedy;
		g->kv_data = c->gkv->data;
		g->x = x;
	}
	g->tick = ++c->tick;
	return g;
}

/* Device layout of a graph's metadata. */
static void
graph_layout(struct cuda_graph *g)
{
	size_t n4 = round_up((size_t)g->n_tok * 4, 256), off = 0;
	size_t bt = round_up((size_t)g->n_tok * g->bucket * 4, 256);
	g->meta_bytes = 6 * n4 + n4 + bt;       /* token pos tok_bt tok_blk tiles(2) rows bt */
	CUDA_CHECK(cudaMallocHost((void **)&g->meta_host, g->meta_bytes));
	CUDA_CHECK(cudaMalloc((void **)&g->meta_dev, g->meta_bytes));
	g->db.n_tok = g->n_tok;
	g->db.token = (const int32_t *)(g->meta_dev + off); off += n4;
	g->db.pos = (const int32_t *)(g->meta_dev + off); off += n4;
	g->db.tok_bt = (const int32_t *)(g->meta_dev + off); off += n4;
	g->db.tok_blk = (const int32_t *)(g->meta_dev + off); off += n4;
	g->tiles_dev = (int32_t *)(g->meta_dev + off); off += 2 * n4;
	g->rows_dev = (int32_t *)(g->meta_dev + off); off += n4;
	g->db.bt = (const int32_t *)(g->meta_dev + off);
}

/* Points the op state at g's metadata and fixed attention plan. */
static void
graph_use(struct backend_cuda *c, struct cuda_graph *g)
{
	const struct model_config *m = c->cfg;
	c->g = g;
	c->cur = c->gb;
	c->db = g->db;
	c->tiles_qt = cuda_attn_tile_tokens(m->n_heads, m->n_kv_heads);
	c->tiles_window = m->sliding_window;
	c->tiles_dev = g->tiles_dev;
	c->n_tiles = g->n_tok;
	c->span = g->bucket * c->gkv->block_size;
	c->op_count = 0;
	c->n_outs = 0;
	c->out_used = 0;
	c->xbf_src = NULL;      /* the graph must hold its own conversions */
}

/* The first op of a pending decode step decides: x is the embedding's output
 * (the forward's residual buffer, part of the key), NULL for any other op. */
static void
graph_resolve(struct backend_cuda *c, const void *x)
{
	struct cuda_graph *g = x ? graph_slot(c, c->gb->n_tok, c->gbucket, x) : NULL;
	if (g == NULL || !g->seen) {
		/* not a decode step's first op, or the key's first step: op by op */
		if (g)
			g->seen = 1;
		c->gmode = G_OFF;
		upload_batch(c, c->gkv, c->gb);
		c->sring.used = 0;
		c->cur = c->gb;
		return;
	}
	if (g->meta_host == NULL)
		graph_layout(g);
	graph_fill(g, c->gkv, c->gb);
	graph_use(c, g);
	if (g->exec) {
		c->gmode = G_REPLAY;
		return;
	}
	/* capture: everything an op could grow or upload is ready first */
	const struct model_config *m = c->cfg;
	size_t n = (size_t)g->n_tok, HD = (size_t)m->head_dim;
	size_t k_most = (size_t)m->hidden;
	if ((size_t)m->n_heads * HD > k_most)
		k_most = (size_t)m->n_heads * HD;
	if ((size_t)m->intermediate > k_most)
		k_most = (size_t)m->intermediate;
	grow(c, (void **)&c->xbf, &c->xbf_cap, n * k_most * sizeof(__nv_bfloat16));
	int splits = cuda_attn_splits(g->n_tok, m->n_heads, m->n_kv_heads, c->span, c->n_sm);
	size_t part = cuda_attn_part_floats(g->n_tok, m->n_heads, m->head_dim, splits);
	if (part)
		grow(c, (void **)&c->part, &c->part_cap, part * sizeof(float));
	size_t out = (size_t)GRAPH_MAX_TOK * (size_t)m->vocab * sizeof(float) +
	    GRAPH_MAX_OUTS * 256;
	if (c->gout == NULL) {
		CUDA_CHECK(cudaMallocHost((void **)&c->gout, out));
		c->gout_cap = out;
	}
	stream_sync(c);
	c->gmode = G_CAPTURE;
	CUDA_CHECK(cudaStreamBeginCapture(c->stream, cudaStreamCaptureModeThreadLocal));
	CUDA_CHECK(cudaMemcpyAsync(g->meta_dev, g->meta_host, g->meta_bytes,
	    cudaMemcpyHostToDevice, c->stream));
}

/* Ends a capture or replay step: launch, wait, hand out the logits. */
static void
graph_finish(struct backend_cuda *c)
{
	struct cuda_graph *g = c->g;
	if (c->gmode == G_CAPTURE) {
		cudaGraph_t graph;
		CUDA_CHECK(cudaStreamEndCapture(c->stream, &graph));
		CUDA_CHECK(cudaGraphInstantiate(&g->exec, graph, 0));
		CUDA_CHECK(cudaGraphDestroy(graph));
		g->n_ops = c->op_count;
		g->n_outs = c->n_outs;
		g->out_bytes = c->out_used;
	} else if (c->op_count != g->n_ops || c->n_outs != g->n_outs ||
	    c->out_used != g->out_bytes) {
		fatalx("cuda graph: this step made %d ops / %d copies (%zu bytes), the captured one "
		    "%d / %d (%zu)", c->op_count, c->n_outs, c->out_used, g->n_ops, g->n_outs,
		    g->out_bytes);
	}
	CUDA_CHECK(cudaGraphLaunch(g->exec, c->stream));
	stream_sync(c);
	for (int i = 0; i < c->n_outs; i++)
		memcpy(c->outs[i].dst, (const char *)c->gout + c->outs[i].off, c->outs[i].bytes);
	c->xbf_src = NULL;
	c->g = NULL;
}

/* In a graph step: counts the op; 1 when it must not run (replay). Resolves
 * a pending step (x: see graph_resolve). */
static int
graph_skip(struct backend_cuda *c, const void *x)
{
	if (c->gmode == G_PENDING)
		graph_resolve(c, x);
	if (c->gmode == G_CAPTURE || c->gmode == G_REPLAY) {
		c->op_count++;
		return c->gmode == G_REPLAY;
	}
	return 0;
}

static void
cuda_begin_batch(struct backend *be, const struct kv_cache *kv, const struct batch *b, int greedy)
{
	struct backend_cuda *c = cu(be);
	if (b == NULL) {
		if (c->gmode == G_CAPTURE || c->gmode == G_REPLAY)
			graph_finish(c);
		c->gmode = G_OFF;
		c->cur = NULL;
		c->gb = NULL;
		return;
	}
	CUDA_CHECK(cudaSetDevice(c->device));   /* the serving loop runs on its own thread */
	if (c->gmode != G_OFF)
		fatalx("cuda: begin_batch inside a graph step");
	c->cur = NULL;
	if ((c->gbucket = decode_bucket(c, b)) > 0) {
		/* the embedding (the first op) picks op by op, capture or replay */
		c->gmode = G_PENDING;
		c->gb = b;
		c->gkv = kv;
		c->ggreedy = greedy;
		return;
	}
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
	if (graph_skip(c, x))
		return;
	const int32_t *tok = dev_ints(c, tokens, c->cur ? c->cur->token : NULL, c->db.token, n);
	cuda_embed(c->stream, x, dev_weight(c, emb, "embed"), tok, n, (int)emb->shape[1]);
	wrote(c, x, (size_t)n * (size_t)emb->shape[1] * sizeof(float));
}

static void
cuda_rmsnorm_op(struct backend *be, float *out, const float *x, const float *w, int n, int dim,
    float eps)
{
	struct backend_cuda *c = cu(be);
	if (graph_skip(c, NULL))
		return;
	cuda_rmsnorm(c->stream, out, x, dev_vec(c, w, (size_t)dim), n, dim, eps);
	wrote(c, out, (size_t)n * (size_t)dim * sizeof(float));
}

static void
cuda_matmul_op(struct backend *be, float *out, const float *x, const struct tensor *W, int n,
    int accumulate)
{
	struct backend_cuda *c = cu(be);
	if (graph_skip(c, NULL))
		return;
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
	if (graph_skip(c, NULL))
		return;
	cuda_add_bias(c->stream, x, dev_vec(c, b, (size_t)d), n, d);
	wrote(c, x, (size_t)n * (size_t)d * sizeof(float));
}

static void
cuda_rope_op(struct backend *be, float *x, const int32_t *pos, int n, int n_heads, int hd,
    const float *inv_freq)
{
	struct backend_cuda *c = cu(be);
	if (graph_skip(c, NULL))
		return;
	const int32_t *p = dev_ints(c, pos, c->cur ? c->cur->pos : NULL, c->db.pos, n);
	cuda_rope(c->stream, x, p, n, n_heads, hd, dev_vec(c, inv_freq, (size_t)hd / 2));
	wrote(c, x, (size_t)n * (size_t)n_heads * (size_t)hd * sizeof(float));
}

static void
cuda_kv_store_op(struct backend *be, struct kv_cache *kv, int l, const float *k, const float *v,
    const struct batch *b)
{
	struct backend_cuda *c = cu(be);
	if (graph_skip(c, NULL))
		return;
	cuda_kv_store(c->stream, kv, l, k, v, batch_of(c, kv, b));
}

static void
cuda_attention_op(struct backend *be, float *out, const float *q, struct kv_cache *kv, int l,
    const struct batch *b, int n_heads, int n_kv_heads, int hd, int window)
{
	struct backend_cuda *c = cu(be);
	if (graph_skip(c, NULL))
		return;
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
	if (graph_skip(cu(be), NULL))
		return;
	cuda_swiglu(cu(be)->stream, g, u, n);
	wrote(cu(be), g, n * sizeof(float));
}

static void
cuda_gather_rows_op(struct backend *be, float *out, const float *x, const int *idx, int m,
    int dim)
{
	struct backend_cuda *c = cu(be);
	if (graph_skip(c, NULL) || m <= 0)
		return;
	const int32_t *di;
	if (c->gmode == G_CAPTURE) {
		/* a decode step wants every row: 0..m-1, in the graph's metadata */
		for (int i = 0; i < m; i++)
			if (idx[i] != i || m > c->g->n_tok)
				fatalx("cuda graph: logit rows are not 0..%d", m - 1);
		di = c->g->rows_dev;
	} else {
		di = (const int32_t *)upload_scratch(c, idx, (size_t)m * sizeof(int32_t));
	}
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
cuda_argmax_rows_op(struct backend *be, int32_t *ids, const float *logits, int n, int V)
{
	struct backend_cuda *c = cu(be);
	if (n > FORWARD_LOGIT_ROWS)
		fatalx("cuda argmax_rows: %d rows, at most %d at a time", n, FORWARD_LOGIT_ROWS);
	if (!graph_skip(c, NULL))
		cuda_argmax_rows(c->stream, c->ids_dev, logits, n, V);
	/* the ids leave through to_host: waits, or is deferred in a graph step */
	cuda_to_host(be, ids, c->ids_dev, (size_t)n * sizeof(int32_t));
}

static void
cuda_sample_rows_op(struct backend *be, int32_t *ids, const float *logits,
    const struct sample_row_params *p, int n, int V)
{
	struct backend_cuda *c = cu(be);
	int skip = graph_skip(c, NULL);
	/* a graph step's calls each take their own parameter slot (the index of
	 * their ids copy), which the captured copy reads at every launch; op by
	 * op, to_host waits before the next call rewrites slot 0 */
	int slot = c->gmode == G_CAPTURE || c->gmode == G_REPLAY ? c->n_outs : 0;
	cuda_sample_rows(c->stream, c->sampler, slot, c->ids_dev, logits, p, n, V, !skip);
	cuda_to_host(be, ids, c->ids_dev, (size_t)n * sizeof(int32_t));
}

static void
cuda_destroy(struct backend *be)
{
	struct backend_cuda *c = cu(be);
	stream_sync(c);
	graphs_drop(c);
	if (c->gout)
		CUDA_CHECK(cudaFreeHost(c->gout));
	cuda_gemm_destroy(c->gemm);
	ring_free(&c->bring);
	ring_free(&c->sring);
	cuda_sampler_destroy(c->sampler);
	void *bufs[] = { c->weights, c->xbf, c->part, c->tmp, c->ids_dev };
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
	/* .argmax_rows = */ cuda_argmax_rows_op,
	/* .sample_rows = */ cuda_sample_rows_op,
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
	return backend_cuda_create_device(0, 1, out, e);
}

/* engine/backend-tp.h: a rank of the tensor-parallel backend (engine/cuda-tp.cu) */
extern "C" void *
backend_cuda_stream(struct backend *be)
{
	return (void *)cu(be)->stream;
}

extern "C" int
backend_cuda_device(struct backend *be)
{
	return cu(be)->device;
}

extern "C" int
backend_cuda_create_device(int device, int graphs, struct backend **out, struct llmd_err *e)
{
	int n = 0;
	cudaError_t rc = cudaGetDeviceCount(&n);
	if (rc != cudaSuccess || n == 0) {
		(void)cudaGetLastError();
		return err_set(e, -ENODEV, "--device", "cuda: no usable GPU (%s)",
		    rc != cudaSuccess ? cudaGetErrorName(rc) : "no devices");
	}
	if (device < 0 || device >= n)
		return err_set(e, -ENODEV, "--device", "cuda: device %d of %d visible GPUs", device,
		    n);
	cudaDeviceProp prop;
	CUDA_CHECK(cudaSetDevice(device));
	CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
	if (prop.major < 8)
		return err_set(e, -ENODEV, "--device", "cuda: %s is compute capability %d.%d; the "
		    "bf16 kernels need 8.0 or newer", prop.name, prop.major, prop.minor);
	struct backend_cuda *c = (struct backend_cuda *)xcalloc(1, sizeof(*c));
	c->base.ops = &cuda_ops;
	c->base.n_threads = 1;
	c->device = device;
	c->n_sm = prop.multiProcessorCount;
	CUDA_CHECK(cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking));
	c->gemm = cuda_gemm_create(c->stream);
	CUDA_CHECK(cudaMalloc((void **)&c->ids_dev, FORWARD_LOGIT_ROWS * sizeof(int32_t)));
	c->sampler = cuda_sampler_create(GRAPH_MAX_OUTS);
	cuda_kernels_preload();
	cuda_attention_preload();
	const char *gv = getenv("LLMD_CUDA_GRAPHS");
	c->graphs_on = graphs && !(gv && strcmp(gv, "0") == 0);
	log_info("cuda: device %d: %s (sm_%d%d, %d SMs, %.1f GiB), decode graphs %s", device,
	    prop.name, prop.major, prop.minor, prop.multiProcessorCount,
	    (double)prop.totalGlobalMem / (1 << 30),
	    c->graphs_on ? "on" : graphs ? "off (LLMD_CUDA_GRAPHS=0)" : "off (tensor parallel)");
	*out = &c->base;
	return 0;
}
