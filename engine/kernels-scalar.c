/*
 * engine/kernels-scalar.c - the portable C path of the CPU kernels: the
 * reference the SIMD paths are tested against, and the fallback on CPUs
 * without AVX2. Accumulates in f32 with four partial sums.
 */
#include "config.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/kernels-impl.h"
#include "engine/kernels.h"
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

/* attn_rows of engine/kernels.h, one row at a time with expf. */
static void
scalar_attn_rows(float *acc, float *m, float *l, const float *q, int g, int hd, const float *K,
    const float *V, size_t ld, int n, float scale)
{
	float s[ATTN_MAX_GROUP][ATTN_MAX_ROWS];

	/* s (g, n) = scale * q K^T, each K row read once for the g heads */
	for (int i = 0; i < n; i++)
		for (int h = 0; h < g; h++)
			s[h][i] = scale * scalar_dot(q + (size_t)h * hd, K + (size_t)i * ld, DT_F32, hd);
	for (int h = 0; h < g; h++) {
		float mx = m[h];
		for (int i = 0; i < n; i++)
			mx = s[h][i] > mx ? s[h][i] : mx;
		float r = expf(m[h] - mx), sum = 0;
		float *a = acc + (size_t)h * hd;
		for (int d = 0; d < hd; d++)
			a[d] *= r;
		for (int i = 0; i < n; i++) {
			float w = expf(s[h][i] - mx);
			const float *v = V + (size_t)i * ld;
			sum += w;
			for (int d = 0; d < hd; d++)
				a[d] += w * v[d];
		}
		l[h] = l[h] * r + sum;
		m[h] = mx;
	}
}

const struct kernels_ops kernels_scalar_ops = {
	.name = "scalar",
	.supported = NULL,
	.dot = scalar_dot,
	.to_f32 = scalar_to_f32,
	.tile = scalar_tile,
	.attn_rows = scalar_attn_rows,
};
