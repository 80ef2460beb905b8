/*
 * engine/kernels-scalar.c - the portable C path of the CPU kernels: the
 * reference the SIMD paths are tested against, and the fallback on CPUs
 * without AVX2. Accumulates in f32 with four partial sums.
 */
#include "config.h"

#include <stdint.h>

#include "engine/kernels-impl.h"
#include "engine/tensor.h"

static inline float
elem(const void *row, enum dtype dt, int64_t i)
{
	switch (dt) {
	case DT_BF16:
		return bf16_to_f32(((const uint16_t *)row)[i]);
	case DT_F16:
		return f16_to_f32(((const uint16_t *)row)[i]);
	case DT_F32:
	default:
		return ((const float *)row)[i];
	}
}

static float
scalar_dot(const float *x, const void *row, enum dtype dt, int64_t k)
{
	float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
	int64_t i = 0;

	for (; i + 4 <= k; i += 4) {
		s0 += x[i] * elem(row, dt, i);
		s1 += x[i + 1] * elem(row, dt, i + 1);
		s2 += x[i + 2] * elem(row, dt, i + 2);
		s3 += x[i + 3] * elem(row, dt, i + 3);
	}
	for (; i < k; i++)
		s0 += x[i] * elem(row, dt, i);
	return (s0 + s1) + (s2 + s3);
}

static void
scalar_to_f32(float *out, const void *row, enum dtype dt, int64_t k)
{
	for (int64_t i = 0; i < k; i++)
		out[i] = elem(row, dt, i);
}

static void
scalar_tile(float *out, int64_t ldo, const float *x, const void *W, enum dtype dt, int64_t k,
    int64_t r0, int64_t r1, int n_tok, int acc)
{
	size_t rowb = (size_t)k * dtype_size(dt);

	for (int64_t r = r0; r < r1; r++) {
		const void *row = (const char *)W + (size_t)r * rowb;
		for (int t = 0; t < n_tok; t++) {
			float v = scalar_dot(x + (size_t)t * (size_t)k, row, dt, k);
			float *o = out + (size_t)t * (size_t)ldo + r;
			*o = acc ? *o + v : v;
		}
	}
}

const struct kernels_ops kernels_scalar_ops = {
	.name = "scalar",
	.supported = NULL,
	.dot = scalar_dot,
	.to_f32 = scalar_to_f32,
	.tile = scalar_tile,
};
