/*
 * engine/cuda-attention.cu - causal GQA attention over the paged KV cache,
 * one kernel for decode and (chunked) prefill, with split-K over long
 * contexts. The CPU oracle is attn_task in engine/backend-cpu.c.
 *
 * Work split. The batch's tokens are cut into query tiles: runs of up to QT
 * consecutive batch tokens of one sequence at consecutive positions (a decode
 * token is a tile of 1; a prefill chunk gives tiles of QT). A thread block
 * (4 warps) takes one tile x one kv head (x one group of its query heads when
 * a kv head serves more than 16) x one split of the key range. Its rows are
 * (token, query head) pairs, at most ATTN_ROWS, so every K/V tile loaded into
 * shared memory is reused by up to ATTN_ROWS query rows (GQA and the prefill
 * tile both share it): flash-style tiling with an online softmax.
 *
 * Inner loop, per 32-position key tile and per row (one warp):
 *   lane j computes the score of position j0 + j (q row and K tile from shared
 *   memory; the K tile's row stride is HD + 1 so the 32 lanes hit 32 banks),
 *   masked to the row's causal (and sliding) window and the split's range;
 *   warp max / sum update the running (m, l); then for each of the 32
 *   positions the lane-held weight is broadcast and each lane accumulates its
 *   HD / 32 output dims from the V tile.
 * With one split the block writes out = acc / l; with several, each writes
 * (m, l, acc) partials and attn_combine_kernel merges them.
 */
#include "config.h"
#include "engine/cuda-common.cuh"

#include <math.h>

#define ATTN_WARPS 4
#define ATTN_THREADS (ATTN_WARPS * 32)
#define ATTN_ROWS 16                    /* (token, head) rows per block */
#define ATTN_ROWS_PER_WARP (ATTN_ROWS / ATTN_WARPS)
#define ATTN_KT 32                      /* key positions per shared tile */
#define ATTN_MIN_SPLIT 256              /* fewest key positions worth a split */
#define ATTN_MAX_SPLITS 64

struct attn_args {
	float *out;             /* (n_tok, H, HD) */
	const float *q;         /* (n_tok, H, HD) */
	const float *kv;        /* cache data (n_blocks, L, 2, bs, kv_dim) */
	size_t block_stride, half_stride, layer_off;
	int kv_dim, bs;
	const int32_t *pos, *tok_bt, *bt;
	const int32_t *tiles;   /* (n_tiles, 2) first token, token count */
	int n_heads, hd, window;
	int group;              /* query heads per kv head (G) */
	int hg;                 /* query heads per block: min(G, ATTN_ROWS) */
	int n_hgroups;          /* ceil(G / hg) */
	int n_splits;           /* key-range splits (grid z) */
	float scale;
	float *part;            /* (n_tok * H, n_splits, HD + 2) m, l, acc[HD] */
};

static size_t
attn_smem_bytes(int hd)
{
	/* q (ATTN_ROWS, HD), K (ATTN_KT, HD + 1), V (ATTN_KT, HD) */
	return sizeof(float) * ((size_t)ATTN_ROWS * hd + (size_t)ATTN_KT * (hd + 1) +
	    (size_t)ATTN_KT * hd);
}

/* DPL: output dims per lane, ceil(HD / 32) rounded up to 1, 2, 4 or 8. */
template <int DPL>
__global__ void __launch_bounds__(ATTN_THREADS)
attn_kernel(struct attn_args a)
{
	extern __shared__ float smem[];
	const int hd = a.hd;
	float *qs = smem;                                /* (ATTN_ROWS, HD) */
	float *ks = qs + ATTN_ROWS * hd;                 /* (ATTN_KT, HD + 1) */
	float *vs = ks + ATTN_KT * (hd + 1);             /* (ATTN_KT, HD) */
	const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;

	const int tok0 = a.tiles[2 * blockIdx.x], ntok = a.tiles[2 * blockIdx.x + 1];
	const int kvh = blockIdx.y / a.n_hgroups, hgrp = blockIdx.y % a.n_hgroups;
	const int head0 = kvh * a.group + hgrp * a.hg;   /* first query head of the block */
	const int heads = min(a.hg, a.group - hgrp * a.hg);
	const int n_rows = ntok * heads;
	const int split = blockIdx.z;

	/* key range of the tile: the first token's window start .. the last token's position */
	const int p_first = a.pos[tok0], p_last = a.pos[tok0 + ntok - 1];
	const int kstart = a.window > 0 ? max(0, p_first - a.window + 1) : 0;
	/* this tile's span cut into n_splits chunks of whole key tiles; the
	 * last splits of a short span are empty (they write l = 0) */
	const int span = p_last - kstart + 1;
	const int chunk = (span + a.n_splits - 1) / a.n_splits + ATTN_KT - 1;
	const int chunk32 = chunk - chunk % ATTN_KT;
	const int ks_lo = kstart + split * chunk32;
	const int ks_hi = min(p_last, ks_lo + chunk32 - 1);
	const int32_t *bt = a.bt + a.tok_bt[tok0];       /* the sequence's block table */

	/* q rows, pre-scaled by 1/sqrt(HD): row r = (token tok0 + r / heads, head head0 + r % heads) */
	for (int e = threadIdx.x; e < n_rows * hd; e += ATTN_THREADS) {
		int r = e / hd, d = e % hd;
		int t = tok0 + r / heads, h = head0 + r % heads;
		qs[r * hd + d] = a.q[((size_t)t * a.n_heads + h) * hd + d] * a.scale;
	}

	float m[ATTN_ROWS_PER_WARP], l[ATTN_ROWS_PER_WARP], acc[ATTN_ROWS_PER_WARP][DPL];
	int lo[ATTN_ROWS_PER_WARP], hi[ATTN_ROWS_PER_WARP];
#pragma unroll
	for (int rr = 0; rr < ATTN_ROWS_PER_WARP; rr++) {
		m[rr] = -INFINITY;
		l[rr] = 0.0f;
#pragma unroll
		for (int i = 0; i < DPL; i++)
			acc[rr][i] = 0.0f;
		int r = warp + rr * ATTN_WARPS;
		int pt = r < n_rows ? a.pos[tok0 + r / heads] : -1;
		int wlo = a.window > 0 ? max(0, pt - a.window + 1) : 0;
		lo[rr] = max(wlo, ks_lo);       /* the row's keys in this split: lo .. hi */
		hi[rr] = min(pt, ks_hi);
	}

	for (int j0 = ks_lo; j0 <= ks_hi; j0 += ATTN_KT) {
		__syncthreads();        /* q is stored / the previous tile is consumed */
		for (int e = threadIdx.x; e < ATTN_KT * hd; e += ATTN_THREADS) {
			int j = e / hd, d = e % hd, p = j0 + j;
			float kval = 0.0f, vval = 0.0f;
			if (p <= ks_hi) {
				const float *kr = a.kv + (size_t)bt[p / a.bs] * a.block_stride + a.layer_off +
				    (size_t)(p % a.bs) * a.kv_dim + (size_t)kvh * hd;
				kval = kr[d];
				vval = kr[a.half_stride + d];
			}
			ks[j * (hd + 1) + d] = kval;
			vs[j * hd + d] = vval;
		}
		__syncthreads();

#pragma unroll
		for (int rr = 0; rr < ATTN_ROWS_PER_WARP; rr++) {
			int r = warp + rr * ATTN_WARPS;
			if (r >= n_rows)
				break;          /* warp-uniform */
			int p = j0 + lane;
			bool valid = p >= lo[rr] && p <= hi[rr];
			float sc = -INFINITY;
			if (valid) {
				const float *qr = qs + r * hd, *kr = ks + lane * (hd + 1);
				float dot = 0.0f;
				for (int d = 0; d < hd; d++)
					dot += qr[d] * kr[d];
				sc = dot;
			}
			float tmax = sc;
			for (int o = 16; o > 0; o >>= 1)
				tmax = fmaxf(tmax, __shfl_xor_sync(0xffffffffu, tmax, o));
			if (tmax == -INFINITY)
				continue;       /* no key of this row in the tile (warp-uniform) */
			float m_new = fmaxf(m[rr], tmax);
			float corr = expf(m[rr] - m_new);        /* 0 while m was -inf */
			float w = valid ? expf(sc - m_new) : 0.0f;
			float wsum = w;
			for (int o = 16; o > 0; o >>= 1)
				wsum += __shfl_xor_sync(0xffffffffu, wsum, o);
			l[rr] = l[rr] * corr + wsum;
			m[rr] = m_new;
#pragma unroll
			for (int i = 0; i < DPL; i++)
				acc[rr][i] *= corr;
			for (int j = 0; j < ATTN_KT; j++) {
				float wj = __shfl_sync(0xffffffffu, w, j);
				if (wj == 0.0f)
					continue;       /* warp-uniform */
				const float *vr = vs + j * hd;
#pragma unroll
				for (int i = 0; i < DPL; i++) {
					int d = lane + 32 * i;
					if (d < hd)
						acc[rr][i] += wj * vr[d];
				}
			}
		}
	}

#pragma unroll
	for (int rr = 0; rr < ATTN_ROWS_PER_WARP; rr++) {
		int r = warp + rr * ATTN_WARPS;
		if (r >= n_rows)
			break;
		int t = tok0 + r / heads, h = head0 + r % heads;
		size_t row = (size_t)t * a.n_heads + h;
		if (a.n_splits == 1) {
			float inv = l[rr] > 0.0f ? 1.0f / l[rr] : 0.0f;
			float *o = a.out + row * hd;
#pragma unroll
			for (int i = 0; i < DPL; i++) {
				int d = lane + 32 * i;
				if (d < hd)
					o[d] = acc[rr][i] * inv;
			}
		} else {
			float *pp = a.part + (row * a.n_splits + split) * (size_t)(hd + 2);
			if (lane == 0) {
				pp[0] = m[rr];
				pp[1] = l[rr];
			}
#pragma unroll
			for (int i = 0; i < DPL; i++) {
				int d = lane + 32 * i;
				if (d < hd)
					pp[2 + d] = acc[rr][i];
			}
		}
	}
}

/* Merges split partials: grid (n_tok * H), block 128 threads over HD. */
__global__ void
attn_combine_kernel(float *out, const float *part, int n_splits, int hd)
{
	const float *pp = part + (size_t)blockIdx.x * n_splits * (size_t)(hd + 2);
	float M = -INFINITY;
	for (int s = 0; s < n_splits; s++)
		if (pp[(size_t)s * (hd + 2) + 1] > 0.0f)
			M = fmaxf(M, pp[(size_t)s * (hd + 2)]);
	float L = 0.0f;
	for (int s = 0; s < n_splits; s++) {
		const float *ps = pp + (size_t)s * (hd + 2);
		if (ps[1] > 0.0f)
			L += ps[1] * expf(ps[0] - M);
	}
	float inv = L > 0.0f ? 1.0f / L : 0.0f;
	float *o = out + (size_t)blockIdx.x * hd;
	for (int d = threadIdx.x; d < hd; d += blockDim.x) {
		float v = 0.0f;
		for (int s = 0; s < n_splits; s++) {
			const float *ps = pp + (size_t)s * (hd + 2);
			if (ps[1] > 0.0f)
				v += ps[2 + d] * expf(ps[0] - M);
		}
		o[d] = v * inv;
	}
}

int
cuda_attn_tile_tokens(int n_heads, int n_kv_heads)
{
	int g = n_heads / n_kv_heads;
	return g >= ATTN_ROWS ? 1 : ATTN_ROWS / g;
}

int
cuda_attn_plan_tiles(const struct cuda_batch_host *hb, int qt, int32_t *tiles)
{
	int n_tiles = 0;
	for (int i = 0; i < hb->n_tok;) {
		int j = i + 1;
		while (j < hb->n_tok && j - i < qt && hb->seq[j] == hb->seq[i] &&
		    hb->pos[j] == hb->pos[j - 1] + 1)
			j++;
		tiles[2 * n_tiles] = i;
		tiles[2 * n_tiles + 1] = j - i;
		n_tiles++;
		i = j;
	}
	return n_tiles;
}

int
cuda_attn_splits(int n_tiles, int n_heads, int n_kv_heads, int span, int n_sm)
{
	int g = n_heads / n_kv_heads, hg = g < ATTN_ROWS ? g : ATTN_ROWS;
	long blocks = (long)n_tiles * n_kv_heads * ((g + hg - 1) / hg);
	long want = 2L * n_sm;          /* two blocks per SM fill the machine */
	if (blocks >= want || span <= ATTN_MIN_SPLIT)
		return 1;
	long s = (want + blocks - 1) / blocks;
	long most = (span + ATTN_MIN_SPLIT - 1) / ATTN_MIN_SPLIT;
	if (s > most)
		s = most;
	if (s > ATTN_MAX_SPLITS)
		s = ATTN_MAX_SPLITS;
	return (int)(s < 1 ? 1 : s);
}

size_t
cuda_attn_part_floats(int n_tok, int n_heads, int hd, int n_splits)
{
	if (n_splits <= 1)
		return 0;
	return (size_t)n_tok * n_heads * n_splits * (size_t)(hd + 2);
}

/* The shared memory opt-in for the largest head dim an instance serves (above
 * 48 KiB needs it); also loads the kernel under lazy module loading. */
template <int DPL>
static void
preload(void)
{
	cudaFuncAttributes fa;
	CUDA_CHECK(cudaFuncSetAttribute(attn_kernel<DPL>, cudaFuncAttributeMaxDynamicSharedMemorySize,
	    (int)attn_smem_bytes(DPL * 32)));
	CUDA_CHECK(cudaFuncGetAttributes(&fa, attn_kernel<DPL>));
}

void
cuda_attention_preload(void)
{
	cudaFuncAttributes fa;
	preload<1>();
	preload<2>();
	preload<4>();
	preload<8>();
	CUDA_CHECK(cudaFuncGetAttributes(&fa, attn_combine_kernel));
}

template <int DPL>
static void
launch(cudaStream_t s, dim3 grid, const struct attn_args *a)
{
	attn_kernel<DPL><<<grid, ATTN_THREADS, attn_smem_bytes(a->hd), s>>>(*a);
	CUDA_CHECK_LAUNCH();
}

void
cuda_attention(cudaStream_t s, float *out, const float *q, const struct kv_cache *kv, int l,
    const struct cuda_batch *b, const int32_t *tiles, int n_tiles, int n_heads, int n_kv_heads,
    int hd, int window, int n_splits, float *part)
{
	if (n_tiles <= 0)
		return;
	if (hd > CUDA_ATTN_MAX_HD || n_kv_heads <= 0 || n_heads % n_kv_heads)
		fatalx("cuda attention: head_dim %d above %d or %d heads over %d kv heads", hd,
		    CUDA_ATTN_MAX_HD, n_heads, n_kv_heads);
	struct attn_args a;
	a.out = out;
	a.q = q;
	a.kv = kv->data;
	a.block_stride = kv->block_stride;
	a.half_stride = kv->half_stride;
	a.layer_off = (size_t)l * 2 * kv->half_stride;
	a.kv_dim = kv->kv_dim;
	a.bs = kv->block_size;
	a.pos = b->pos;
	a.tok_bt = b->tok_bt;
	a.bt = b->bt;
	a.tiles = tiles;
	a.n_heads = n_heads;
	a.hd = hd;
	a.window = window;
	a.group = n_heads / n_kv_heads;
	a.hg = a.group < ATTN_ROWS ? a.group : ATTN_ROWS;
	a.n_hgroups = (a.group + a.hg - 1) / a.hg;
	a.n_splits = n_splits < 1 ? 1 : n_splits;
	a.scale = 1.0f / sqrtf((float)hd);
	a.part = part;

	dim3 grid((unsigned)n_tiles, (unsigned)(n_kv_heads * a.n_hgroups), (unsigned)a.n_splits);
	int dpl = (hd + 31) / 32;
	if (dpl <= 1)
		launch<1>(s, grid, &a);
	else if (dpl <= 2)
		launch<2>(s, grid, &a);
	else if (dpl <= 4)
		launch<4>(s, grid, &a);
	else
		launch<8>(s, grid, &a);
	if (a.n_splits > 1) {
		attn_combine_kernel<<<(unsigned)(b->n_tok * n_heads), 128, 0, s>>>(out, part,
		    a.n_splits, hd);
		CUDA_CHECK_LAUNCH();
	}
}
