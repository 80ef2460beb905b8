/*
 * engine/kernels-avx512.c - the AVX-512 path of the CPU kernels (16 f32
 * lanes, masked tails). BF16 weights are widened to f32 with a shift and
 * multiplied in f32 (vfmadd231ps) rather than with vdpbf16ps: the latter
 * rounds the activations to BF16 (measured error ~1e-4 of sum|x*w| against
 * ~1e-7 here), and the CPU backend is the numerical oracle of the engine.
 * It is not faster either: on this Xeon a 4x6 vdpbf16ps block (activations
 * converted once per matmul) ran a 4864x896 matmul with 126 tokens at 71
 * GFLOP/s per core, this path at 95; decode is bandwidth-bound either way.
 * Compiled with target attributes only, so the binary still runs on CPUs
 * without AVX-512 (avx512bf16 is not needed).
 */
#include "config.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "engine/kernels-impl.h"
#include "engine/kernels.h"
#include "engine/tensor.h"
#include "lib/util.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define SIMD_TARGET __attribute__((target("avx512f,avx512bw,avx512vl")))
#define SIMD_FN(name) avx512_##name
#define SIMD_W 16
#define SIMD_MASKED_TAIL 1
/* prompt blocks of 4 rows x 6 tokens (24 of the 32 zmm), 32-row slabs: measured best */
#define SIMD_PR 4
#define SIMD_PT 6
#define SIMD_SLAB 32
typedef __m512 vec;

#include "engine/kernels-exp.h"

static inline SIMD_TARGET vec
v_zero(void)
{
	return _mm512_setzero_ps();
}

static inline SIMD_TARGET vec
v_fma(vec a, vec b, vec c)
{
	return _mm512_fmadd_ps(a, b, c);
}

static inline SIMD_TARGET float
v_hsum(vec v)
{
	return _mm512_reduce_add_ps(v);
}

static inline SIMD_TARGET vec
v_set1(float f)
{
	return _mm512_set1_ps(f);
}

static inline SIMD_TARGET vec
v_add(vec a, vec b)
{
	return _mm512_add_ps(a, b);
}

static inline SIMD_TARGET vec
v_mul(vec a, vec b)
{
	return _mm512_mul_ps(a, b);
}

/* exp(x) for x clamped to [SIMD_EXP_MIN, SIMD_EXP_MAX] (kernels-simd.h has the scheme). */
static inline __attribute__((always_inline)) SIMD_TARGET vec
v_exp(vec x)
{
	x = _mm512_min_ps(_mm512_max_ps(x, v_set1(SIMD_EXP_MIN)), v_set1(SIMD_EXP_MAX));
	vec n = _mm512_roundscale_ps(v_mul(x, v_set1(SIMD_LOG2E)),
	    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
	vec r = _mm512_fnmadd_ps(n, v_set1(SIMD_LN2_HI), x);
	r = _mm512_fnmadd_ps(n, v_set1(SIMD_LN2_LO), r);
	return _mm512_scalef_ps(SIMD_EXP_POLY(r), n);
}

static inline SIMD_TARGET vec
v_loadx(const float *p)
{
	return _mm512_loadu_ps(p);
}

static inline SIMD_TARGET void
v_storeu(float *p, vec v)
{
	_mm512_storeu_ps(p, v);
}

static inline SIMD_TARGET vec
v_loadx_n(const float *p, int n)
{
	return _mm512_maskz_loadu_ps((__mmask16)((1u << n) - 1u), p);
}

static inline SIMD_TARGET vec
v_widen_bf16(__m256i h)
{
	return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

static inline __attribute__((always_inline)) SIMD_TARGET vec
v_loadw(const void *row, int64_t i, enum dtype dt)
{
	if (dt == DT_BF16)
		return v_widen_bf16(_mm256_loadu_si256((const __m256i *)((const uint16_t *)row + i)));
	if (dt == DT_F16)
		return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)((const uint16_t *)row + i)));
	return _mm512_loadu_ps((const float *)row + i);
}

static inline __attribute__((always_inline)) SIMD_TARGET vec
v_loadw_n(const void *row, int64_t i, enum dtype dt, int n)
{
	__mmask16 m = (__mmask16)((1u << n) - 1u);

	if (dt == DT_BF16)
		return v_widen_bf16(_mm256_maskz_loadu_epi16(m, (const uint16_t *)row + i));
	if (dt == DT_F16)
		return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, (const uint16_t *)row + i));
	return _mm512_maskz_loadu_ps(m, (const float *)row + i);
}

#include "engine/kernels-simd.h"

static int
avx512_supported(void)
{
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
	    __builtin_cpu_supports("avx512vl");
}

const struct kernels_ops kernels_avx512_ops = {
	.name = "avx512",
	.supported = avx512_supported,
	.dot = avx512_dot,
	.to_f32 = avx512_to_f32,
	.tile = avx512_tile,
	.attn_rows = avx512_attn_rows,
};
#endif
