/*
 * engine/kernels-impl.h - what each SIMD path of the CPU kernels provides
 * (internal to engine/kernels-*.c and their unit tests).
 *
 * A path is a table of functions: three over one weight matrix W (d, k) of
 * dtype dt, activations f32, and the attention step over f32 K/V rows. kernels-matmul.c picks the best path the CPU
 * supports and splits rows across the thread pool.
 */
#ifndef LLMD_ENGINE_KERNELS_IMPL_H
#define LLMD_ENGINE_KERNELS_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "engine/tensor.h"

struct kernels_ops {
	const char *name;
	/* CPU check; NULL means always available */
	int (*supported)(void);
	float (*dot)(const float *x, const void *row, enum dtype dt, int64_t k);
	void (*to_f32)(float *out, const void *row, enum dtype dt, int64_t k);
	/*
	 * For rows r in [r0, r1) and tokens t in [0, n_tok):
	 *   out[t * ldo + r] (+)= dot(x + t * k, W row r)
	 * x (n_tok, k), W (d, k) in dt, out (n_tok, ldo); acc selects +=.
	 */
	void (*tile)(float *out, int64_t ldo, const float *x, const void *W, enum dtype dt,
	    int64_t k, int64_t r0, int64_t r1, int n_tok, int acc);
	/* attn_rows of engine/kernels.h */
	void (*attn_rows)(float *acc, float *m, float *l, const float *q, int g, int hd,
	    const float *K, const float *V, size_t ld, int n, float scale);
};

extern const struct kernels_ops kernels_scalar_ops;
extern const struct kernels_ops kernels_avx2_ops;
extern const struct kernels_ops kernels_avx512_ops;

/* All paths compiled in, best first, NULL-terminated (supported or not). */
extern const struct kernels_ops *const kernels_all_ops[];
/* The path in use (chosen on first use; LLMD_KERNELS_ISA=name forces one). */
const struct kernels_ops *kernels_ops_get(void);
/* Makes o the path in use (unit tests run every path through the public entry points). */
void kernels_ops_set(const struct kernels_ops *o);

#endif
