/*
 * engine/cuda-common.cuh - what every CUDA source of the engine shares: the
 * engine's C headers included with C linkage, the *_CHECK macros (every
 * CUDA runtime and cuBLASLt call goes through one; a failure prints
 * file:line, the call and the error name, then aborts, as llm.c does), the
 * launch helpers, and the kernel launchers of engine/cuda-*.cu.
 *
 * All launchers enqueue on the stream they are given and never synchronize.
 * Pointers are device memory unless named host_*.
 */
#ifndef LLMD_ENGINE_CUDA_COMMON_CUH
#define LLMD_ENGINE_CUDA_COMMON_CUH

#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <stddef.h>
#include <stdint.h>

#ifndef _Noreturn
#define _Noreturn [[noreturn]]
#endif
extern "C" {
#include "engine/forward.h"
#include "engine/kvcache.h"
#include "engine/model.h"
#include "lib/log.h"
}

void cuda_check_fail(const char *what, const char *err, const char *file, int line);

#define CUDA_CHECK(call) do {                                                   \
	cudaError_t cuda_check_rc_ = (call);                                    \
	if (cuda_check_rc_ != cudaSuccess)                                      \
		cuda_check_fail(#call, cudaGetErrorName(cuda_check_rc_),        \
		    __FILE__, __LINE__);                                        \
} while (0)

#define CUBLAS_CHECK(call) do {                                                 \
	cublasStatus_t cublas_check_rc_ = (call);                               \
	if (cublas_check_rc_ != CUBLAS_STATUS_SUCCESS)                          \
		cuda_check_fail(#call, cublasGetStatusName(cublas_check_rc_),   \
		    __FILE__, __LINE__);                                        \
} while (0)

/* After a kernel launch: launch errors (bad configuration, too much shared
 * memory) surface here, at the launch site. */
#define CUDA_CHECK_LAUNCH() CUDA_CHECK(cudaGetLastError())

static inline unsigned
cuda_div_up(size_t a, size_t b)
{
	return (unsigned)((a + b - 1) / b);
}

/* Grid for a grid-stride loop over n elements with 256-thread blocks. */
static inline unsigned
cuda_grid_1d(size_t n)
{
	size_t g = (n + 255) / 256;
	if (g > 65535u * 16u)
		g = 65535u * 16u;
	return (unsigned)(g ? g : 1);
}

/* Per-batch metadata in device memory (engine/backend-cuda.cu uploads it once
 * per forward step). All int32. */
struct cuda_batch {
	int n_tok;
	const int32_t *token;   /* (n_tok) */
	const int32_t *pos;     /* (n_tok) */
	const int32_t *tok_bt;  /* (n_tok) offset of the token's sequence table in bt */
	const int32_t *tok_blk; /* (n_tok) cache block holding the token's own position */
	const int32_t *bt;      /* (sum of n_blocks) block tables, back to back */
};

/* Host view of the same batch, for launch planning (tiles). */
struct cuda_batch_host {
	int n_tok;
	const int32_t *pos;     /* (n_tok) */
	const int32_t *seq;     /* (n_tok) */
};

/* ---- engine/cuda-kernels.cu ---- */
/* x (n, D) f32 = emb (V, D) bf16 rows token[i] */
void cuda_embed(cudaStream_t s, float *x, const __nv_bfloat16 *emb, const int32_t *token, int n,
    int D);
/* out (n, dim) = x / rms(x row) * w (dim) f32; out may be x */
void cuda_rmsnorm(cudaStream_t s, float *out, const float *x, const float *w, int n, int dim,
    float eps);
/* x (n, d) += b (d) */
void cuda_add_bias(cudaStream_t s, float *x, const float *b, int n, int d);
/* x (n, H, HD) rotate-half RoPE at pos[i]; inv_freq (HD/2); HD <= 512 and even */
void cuda_rope(cudaStream_t s, float *x, const int32_t *pos, int n, int n_heads, int hd,
    const float *inv_freq);
/* cache K/V rows of layer l <- k, v (n, kv_dim) at (tok_blk[i], pos[i] % bs) */
void cuda_kv_store(cudaStream_t s, const struct kv_cache *kv, int l, const float *k,
    const float *v, const struct cuda_batch *b);
/* g (n) = silu(g) * u */
void cuda_swiglu(cudaStream_t s, float *g, const float *u, size_t n);
/* out (m, dim) = x rows idx[i]; out must not overlap x */
void cuda_gather_rows(cudaStream_t s, float *out, const float *x, const int32_t *idx, int m,
    int dim);
/* dst (n) bf16 = src (n) f32, round to nearest even */
void cuda_f32_to_bf16(cudaStream_t s, __nv_bfloat16 *dst, const float *src, size_t n);
/* ids (n) = argmax of each row of logits (n, V): the lowest index among ties,
 * -1 for a row with nothing above -inf */
void cuda_argmax_rows(cudaStream_t s, int32_t *ids, const float *logits, int n, int V);
/* Loads every kernel of this file now (lazy module loading would load them at
 * their first launch, which may fall inside a CUDA graph capture). */
void cuda_kernels_preload(void);

/* ---- engine/cuda-attention.cu ---- */
/* Largest head_dim the attention kernel takes. */
#define CUDA_ATTN_MAX_HD 256

/* Loads the attention kernels and sets their shared memory opt-in. */
void cuda_attention_preload(void);

struct cuda_attn_scratch {
	float *part;            /* split-K partials */
	size_t part_floats;     /* capacity */
	int32_t *tiles;         /* device (n_tiles, 2) token ranges, uploaded by the caller */
};

/* Plans the query tiles of a batch: tiles (n_tok, 2) host array gets
 * (first token, token count) of runs of consecutive batch tokens of one
 * sequence at consecutive positions, at most qt per run. Returns the count. */
int cuda_attn_plan_tiles(const struct cuda_batch_host *hb, int qt, int32_t *tiles);
/* Tokens per query tile for a GQA group size (query heads per kv head). */
int cuda_attn_tile_tokens(int n_heads, int n_kv_heads);
/* Floats of split-K partial scratch the attention call needs (0: none). */
size_t cuda_attn_part_floats(int n_tok, int n_heads, int hd, int n_splits);
/* Split count for n_tiles tiles whose widest key span is span positions. */
int cuda_attn_splits(int n_tiles, int n_heads, int n_kv_heads, int span, int n_sm);
/* out (n, H*HD) = causal attention of q (n, H*HD) over the paged cache of layer
 * l; tiles: device copy of cuda_attn_plan_tiles's array; each tile's key span
 * is cut into n_splits chunks (empty ones allowed); part: n_splits > 1
 * scratch of cuda_attn_part_floats floats. */
void cuda_attention(cudaStream_t s, float *out, const float *q, const struct kv_cache *kv, int l,
    const struct cuda_batch *b, const int32_t *tiles, int n_tiles, int n_heads, int n_kv_heads,
    int hd, int window, int n_splits, float *part);

/* ---- engine/cuda-sample.cu ---- */
/* Pinned and device room for slots * FORWARD_LOGIT_ROWS rows of sampling
 * parameters; also loads the kernel. */
struct cuda_sampler;
struct cuda_sampler *cuda_sampler_create(int slots);
void cuda_sampler_destroy(struct cuda_sampler *cs);
/* ids (n) = the token of each row of logits (n, V) under host params p (n),
 * as sample_row_ref: p goes into slot slot of the pinned buffer, then (launch)
 * one copy to the device and the kernel. launch 0 only writes the slot (a
 * graph replay: its captured copy reads the slot at launch). */
void cuda_sample_rows(cudaStream_t s, struct cuda_sampler *cs, int slot, int32_t *ids,
    const float *logits, const struct sample_row_params *p, int n, int V, int launch);

/* ---- engine/cuda-gemm.cu ---- */
struct cuda_gemm;
struct cuda_gemm *cuda_gemm_create(cudaStream_t s);
void cuda_gemm_destroy(struct cuda_gemm *g);
/* out (n, d) f32 (+)= x (n, k) bf16 @ W (d, k)^T bf16, f32 accumulate (cuBLASLt,
 * heuristic algo, 32 MiB workspace); accumulate: beta = 1. */
void cuda_gemm_bf16(struct cuda_gemm *g, float *out, const __nv_bfloat16 *x,
    const __nv_bfloat16 *W, int n, int d, int k, int accumulate);

#endif
