/*
 * engine/kernels.h - CPU compute kernels of the engine: weight matmuls that
 * read BF16/F16/F32 weights directly and the online-softmax attention step
 * over paged K/V rows (SIMD path picked at run time), and the persistent
 * thread pool they run on. Activations are always f32.
 *
 * Owned by engine/kernels-*.c and engine/threadpool.c.
 */
#ifndef LLMD_ENGINE_KERNELS_H
#define LLMD_ENGINE_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "engine/tensor.h"

struct threadpool;

/* Persistent pool of n workers (n <= 0: number of online CPUs). */
struct threadpool *threadpool_create(int n);
void threadpool_destroy(struct threadpool *tp);
int threadpool_size(const struct threadpool *tp);
/* Runs fn(arg, i, n) for i in [0, n) across the pool and waits; tp may be NULL (serial). */
void threadpool_run(struct threadpool *tp, void (*fn)(void *arg, int i, int n), void *arg, int n);

/*
 * out (n_tok, d) = x (n_tok, k) @ W^T where W is (d, k) row-major in its file
 * dtype (W->shape = {d, k}). Rows of W are split across the pool. n_tok == 1
 * is the decode matrix-vector case; n_tok > 1 reuses each loaded W tile for
 * several tokens (prompt batch).
 */
void matmul_wt(struct threadpool *tp, float *out, const float *x, const struct tensor *W,
    int n_tok);
/* Same, with out (n_tok, d) += ... (used for residual-fused projections). */
void matmul_wt_acc(struct threadpool *tp, float *out, const float *x, const struct tensor *W,
    int n_tok);

/* Dot product of f32 x (k) with one row of W (dtype) - the inner kernel. */
float dot_row(const float *x, const void *row, enum dtype dt, int64_t k);
/* Converts one row of W into f32 (for embedding lookup). */
void row_to_f32(float *out, const void *row, enum dtype dt, int64_t k);

/* Query heads and K/V rows one attn_rows call takes at most. */
#define ATTN_MAX_GROUP 8
#define ATTN_MAX_ROWS 32

/*
 * One step of online-softmax attention for g (<= ATTN_MAX_GROUP) query heads
 * that share a KV head, over n (<= ATTN_MAX_ROWS) consecutive K/V rows, each
 * row loaded once for all g heads:
 *   s[h][i] = scale * q[h] . K[i]                 for h < g, i < n
 *   m'[h]   = max(m[h], max_i s[h][i])
 *   l[h]    = l[h] * exp(m[h] - m'[h]) + sum_i exp(s[h][i] - m'[h])
 *   acc[h]  = acc[h] * exp(m[h] - m'[h]) + sum_i exp(s[h][i] - m'[h]) V[i]
 * q (g, hd), acc (g, hd), m (g), l (g); row i of K and V (hd) at K + i * ld,
 * V + i * ld. Start with m = -INFINITY, l = 0, acc = 0; the result of the
 * last step is acc[h] / l[h]. f32 throughout; the SIMD paths use a
 * polynomial exp within 2 ulp of expf.
 */
void attn_rows(float *acc, float *m, float *l, const float *q, int g, int hd, const float *K,
    const float *V, size_t ld, int n, float scale);

/*
 * Name of the SIMD path chosen at run time: "avx512" (AVX-512F/BW/VL),
 * "avx2-f16c" (AVX2+FMA+F16C) or "scalar"; LLMD_KERNELS_ISA=name forces one.
 * All widen weights to f32 exactly and accumulate in f32.
 */
const char *kernels_isa(void);

#endif
