/*
 * engine/cuda-sample.cu - sampling on the GPU: one block per logits row runs
 * engine/sample-ref.h's algorithm (temperature, min_p, top_k and top_p by
 * radix descents over order-preserving keys, then the inverse-CDF draw in id
 * order with the uniform the host drew from the request's sampler), and the
 * pinned / device buffer the per-row parameters travel through.
 * sample_row_ref (engine/sample-ref.c) is the oracle: the same steps, one
 * sweep of the row each, with the same shared helpers.
 */
#include "config.h"
#include "engine/cuda-common.cuh"

#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

extern "C" {
#include "engine/sample-ref.h"
#include "lib/util.h"
}

#define SAMPLE_THREADS 512
#define SAMPLE_WARPS (SAMPLE_THREADS / 32)

struct cuda_sampler {
	struct sample_row_params *host;         /* pinned (slots * FORWARD_LOGIT_ROWS) */
	struct sample_row_params *dev;          /* its device twin */
	int slots;
};

/* Scratch of one row's block. */
struct sample_smem {
	uint32_t hc[SR_BINS];   /* digit counts */
	double hm[SR_BINS];     /* digit masses */
	uint32_t wc[SAMPLE_WARPS][SR_BINS];     /* per warp, before the sum */
	double wm[SAMPLE_WARPS][SR_BINS];
	double red_d[SAMPLE_WARPS];
	uint32_t red_u[SAMPLE_WARPS];
	float red_v[SAMPLE_WARPS];
	int red_i[SAMPLE_WARPS];
	int pick, last, tie;
};

/* ---- block-wide helpers (blockDim.x == SAMPLE_THREADS); every thread gets
 * the result, the same in all ---- */

__device__ static void
argmax_merge(float *bv, int *bi, float v, int i)
{
	if (i < 0)
		return;
	if (*bi < 0 || v > *bv || (v == *bv && i < *bi)) {
		*bv = v;
		*bi = i;
	}
}

/* The argmax (lowest id among ties, -1 when nothing is above -inf). */
__device__ static int
block_argmax(float bv, int bi, struct sample_smem *sm)
{
	int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
	for (int o = 16; o > 0; o >>= 1) {
		float ov = __shfl_xor_sync(0xffffffffu, bv, o);
		int oi = __shfl_xor_sync(0xffffffffu, bi, o);
		argmax_merge(&bv, &bi, ov, oi);
	}
	__syncthreads();
	if (lane == 0) {
		sm->red_v[warp] = bv;
		sm->red_i[warp] = bi;
	}
	__syncthreads();
	bv = -INFINITY;
	bi = -1;
	for (int w = 0; w < SAMPLE_WARPS; w++)
		argmax_merge(&bv, &bi, sm->red_v[w], sm->red_i[w]);
	return bi;
}

__device__ static double
block_sum(double v, struct sample_smem *sm)
{
	int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
	for (int o = 16; o > 0; o >>= 1)
		v += __shfl_xor_sync(0xffffffffu, v, o);
	__syncthreads();
	if (lane == 0)
		sm->red_d[warp] = v;
	__syncthreads();
	double t = 0;
	for (int w = 0; w < SAMPLE_WARPS; w++)
		t += sm->red_d[w];
	return t;
}

/* Exclusive prefix of v over the threads in order; *total: the sum of all.
 * red: SAMPLE_WARPS of shared scratch. */
template <typename T>
__device__ static T
block_excl_scan(T v, T *red, T *total)
{
	int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
	T incl = v;
	for (int o = 1; o < 32; o <<= 1) {
		T y = __shfl_up_sync(0xffffffffu, incl, o);
		if (lane >= o)
			incl += y;
	}
	T excl = __shfl_up_sync(0xffffffffu, incl, 1);
	if (lane == 0)
		excl = 0;
	__syncthreads();
	if (lane == 31)
		red[warp] = incl;
	__syncthreads();
	T before = 0, all = 0;
	for (int w = 0; w < SAMPLE_WARPS; w++) {
		if (w == warp)
			before = all;
		all += red[w];
	}
	*total = all;
	return before + excl;
}

/* ---- the row's steps ---- */

/* Count (and mass, with_mass) histograms of the digit at shift of the kept
 * values under d's prefix, into sm->hc, sm->hm: each thread counts its own
 * values in registers (no atomics: a row's values crowd into few bins, and
 * the sums come out in one fixed order), then warps, then the block. */
__device__ static void
histogram(const float *l, int V, const struct sample_row_cut *c,
    const struct sample_row_descent *d, int shift, int with_mass, double lse,
    struct sample_smem *sm)
{
	uint32_t cnt[SR_BINS];
	double mass[SR_BINS];
	int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
#pragma unroll
	for (int j = 0; j < SR_BINS; j++) {
		cnt[j] = 0;
		mass[j] = 0;
	}
	for (int i = threadIdx.x; i < V; i += blockDim.x) {
		float v = sr_value(l[i], c->inv_temp);
		if (!sr_kept(c, v, i))
			continue;
		int b = sr_digit(d, sr_key(v), shift);
		if (b < 0)
			continue;
		double w = with_mass ? exp((double)v - lse) : 0.0;
#pragma unroll
		for (int j = 0; j < SR_BINS; j++) {
			cnt[j] += b == j;
			mass[j] += b == j ? w : 0.0;
		}
	}
#pragma unroll
	for (int j = 0; j < SR_BINS; j++) {
		uint32_t cj = cnt[j];
		double mj = mass[j];
		for (int o = 16; o > 0; o >>= 1) {
			cj += __shfl_xor_sync(0xffffffffu, cj, o);
			if (with_mass)
				mj += __shfl_xor_sync(0xffffffffu, mj, o);
		}
		if (lane == 0) {
			sm->wc[warp][j] = cj;
			sm->wm[warp][j] = mj;
		}
	}
	__syncthreads();        /* and every thread is done with the last hc, hm */
	if (threadIdx.x < SR_BINS) {
		uint32_t tc = 0;
		double tm = 0;
		for (int w = 0; w < SAMPLE_WARPS; w++) {
			tc += sm->wc[w][threadIdx.x];
			tm += sm->wm[w][threadIdx.x];
		}
		sm->hc[threadIdx.x] = tc;
		sm->hm[threadIdx.x] = tm;
	}
	__syncthreads();
}

/* log(sum(exp(v))) over the kept values, m their maximum. */
__device__ static double
kept_lse(const float *l, int V, const struct sample_row_cut *c, float m, struct sample_smem *sm)
{
	double s = 0;
	for (int i = threadIdx.x; i < V; i += blockDim.x) {
		float v = sr_value(l[i], c->inv_temp);
		if (sr_kept(c, v, i))
			s += (double)sr_expf(sr_sub(v, m));
	}
	return (double)m + log(block_sum(s, sm));
}

/* The thread's own run of ids for the in-order steps: [*lo, *hi). */
__device__ static void
chunk_of(int V, int *lo, int *hi)
{
	int per = (V + (int)blockDim.x - 1) / (int)blockDim.x;
	*lo = min(V, (int)threadIdx.x * per);
	*hi = min(V, *lo + per);
}

/* The id of the j-th (0-based, ascending id) kept value whose key is key. */
__device__ static int
nth_with_key(const float *l, int V, const struct sample_row_cut *c, uint32_t key, uint32_t j,
    struct sample_smem *sm)
{
	int lo, hi;
	chunk_of(V, &lo, &hi);
	uint32_t n = 0, total;
	for (int i = lo; i < hi; i++) {
		float v = sr_value(l[i], c->inv_temp);
		n += sr_kept(c, v, i) && sr_key(v) == key;
	}
	if (threadIdx.x == 0)
		sm->tie = INT32_MAX;
	uint32_t k = block_excl_scan<uint32_t>(n, sm->red_u, &total);
	if (j >= k && j < k + n) {
		for (int i = lo; i < hi; i++) {
			float v = sr_value(l[i], c->inv_temp);
			if (sr_kept(c, v, i) && sr_key(v) == key && k++ == j) {
				sm->tie = i;
				break;
			}
		}
	}
	__syncthreads();
	return sm->tie;
}

/* grid (n rows), block SAMPLE_THREADS: ids[r] = the token of logits row r
 * (n, V) under p[r], as sample_row_ref. */
__global__ void __launch_bounds__(SAMPLE_THREADS)
sample_kernel(int32_t *ids, const float *logits, const struct sample_row_params *params, int V)
{
	__shared__ struct sample_smem sm;
	const float *l = logits + (size_t)blockIdx.x * (size_t)V;      /* (V) */
	const struct sample_row_params p = params[blockIdx.x];
	struct sample_row_cut c = { p.inv_temp, -INFINITY, -INFINITY, -INFINITY, INT32_MAX };

	/* 1. the argmax of the cleaned logits (strided ascending: each thread's
	 * first maximum) and the largest value m */
	float bv = -INFINITY;
	int bi = -1;
	for (int i = threadIdx.x; i < V; i += blockDim.x) {
		float v = sr_clean(l[i]);
		if (v > bv) {
			bv = v;
			bi = i;
		}
	}
	int mi = block_argmax(bv, bi, &sm);
	if (mi < 0 || p.greedy) {
		if (threadIdx.x == 0)
			ids[blockIdx.x] = mi < 0 ? 0 : mi;
		return;
	}
	float m = sr_value(l[mi], c.inv_temp);

	/* 2. min_p */
	if (p.log_min_p > -INFINITY)
		c.min_cut = __fadd_rn(m, p.log_min_p);

	/* 3. top_k: radix select of the k-th largest */
	if (p.top_k > 0) {
		struct sample_row_descent d = { 0, 0, (uint32_t)p.top_k, 0.0, 0 };
		uint32_t total = 0;
		for (int shift = SR_TOP_SHIFT; shift >= 0; shift -= SR_DIGIT_BITS) {
			histogram(l, V, &c, &d, shift, 0, 0.0, &sm);
			if (shift == SR_TOP_SHIFT) {
				for (int b = 0; b < SR_BINS; b++)
					total += sm.hc[b];
				if ((uint32_t)p.top_k >= total)
					break;
			}
			sr_pick_rank(&d, sm.hc, shift);
		}
		if ((uint32_t)p.top_k < total)
			c.kth = sr_unkey(d.prefix);
	}

	/* 4. top_p: radix descent by mass, then the ties of the cut value */
	if (p.top_p < 1.0f) {
		double lse = kept_lse(l, V, &c, m, &sm), top_p = p.top_p;
		struct sample_row_descent d = { 0, 0, 0, 0.0, 0 };
		for (int shift = SR_TOP_SHIFT; shift >= 0; shift -= SR_DIGIT_BITS) {
			histogram(l, V, &c, &d, shift, 1, lse, &sm);
			sr_pick_mass(&d, sm.hc, sm.hm, top_p, shift);
		}
		float cv = sr_unkey(d.prefix);
		uint32_t j = sr_tie_rank(d.before, exp((double)cv - lse), d.cnt, top_p);
		c.cut_v = cv;
		if (j + 1 < d.cnt)
			c.cut_id = nth_with_key(l, V, &c, d.prefix, j, &sm);
	}

	/* 5. the draw: each thread sums the masses of its run of ids; the first
	 * run whose inclusive prefix exceeds u walks its ids */
	double lse = kept_lse(l, V, &c, m, &sm);
	int lo, hi, last = -1;
	chunk_of(V, &lo, &hi);
	double s = 0, total;
	for (int i = lo; i < hi; i++) {
		float v = sr_value(l[i], c.inv_temp);
		if (sr_kept(&c, v, i)) {
			s += exp((double)v - lse);
			last = i;
		}
	}
	if (threadIdx.x == 0) {
		sm.pick = INT32_MAX;
		sm.last = -1;
	}
	double before = block_excl_scan<double>(s, sm.red_d, &total);
	if (last >= 0)
		atomicMax(&sm.last, last);
	if (s > 0 && p.u < before + s) {
		/* runs past the one holding u stop at their first kept id */
		double acc = before;
		int got = last;
		for (int i = lo; i < hi; i++) {
			float v = sr_value(l[i], c.inv_temp);
			if (!sr_kept(&c, v, i))
				continue;
			acc += exp((double)v - lse);
			if (p.u < acc) {
				got = i;
				break;
			}
		}
		atomicMin(&sm.pick, got);
	}
	__syncthreads();
	if (threadIdx.x == 0)
		ids[blockIdx.x] = sm.pick != INT32_MAX ? sm.pick : sm.last;
}

/* ---- the parameter buffer and the launch ---- */

struct cuda_sampler *
cuda_sampler_create(int slots)
{
	struct cuda_sampler *cs = (struct cuda_sampler *)xcalloc(1, sizeof(*cs));
	size_t bytes = (size_t)slots * FORWARD_LOGIT_ROWS * sizeof(struct sample_row_params);
	cs->slots = slots;
	CUDA_CHECK(cudaMallocHost((void **)&cs->host, bytes));
	CUDA_CHECK(cudaMalloc((void **)&cs->dev, bytes));
	/* load the kernel now, not at its first launch (maybe inside a capture) */
	cudaFuncAttributes fa;
	CUDA_CHECK(cudaFuncGetAttributes(&fa, (const void *)sample_kernel));
	return cs;
}

void
cuda_sampler_destroy(struct cuda_sampler *cs)
{
	if (cs == NULL)
		return;
	CUDA_CHECK(cudaFreeHost(cs->host));
	CUDA_CHECK(cudaFree(cs->dev));
	free(cs);
}

void
cuda_sample_rows(cudaStream_t s, struct cuda_sampler *cs, int slot, int32_t *ids,
    const float *logits, const struct sample_row_params *p, int n, int V, int launch)
{
	if (n <= 0)
		return;
	if (slot < 0 || slot >= cs->slots || n > FORWARD_LOGIT_ROWS)
		fatalx("cuda sample_rows: slot %d of %d, %d rows (at most %d)", slot, cs->slots, n,
		    FORWARD_LOGIT_ROWS);
	struct sample_row_params *h = cs->host + (size_t)slot * FORWARD_LOGIT_ROWS;
	struct sample_row_params *d = cs->dev + (size_t)slot * FORWARD_LOGIT_ROWS;
	memcpy(h, p, (size_t)n * sizeof(*p));
	if (!launch)
		return;
	CUDA_CHECK(cudaMemcpyAsync(d, h, (size_t)n * sizeof(*p), cudaMemcpyHostToDevice, s));
	sample_kernel<<<n, SAMPLE_THREADS, 0, s>>>(ids, logits, d, V);
	CUDA_CHECK_LAUNCH();
}
