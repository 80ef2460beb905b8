/*
 * engine/kernels-avx2.c - the AVX2 + FMA + F16C path of the CPU kernels (8
 * f32 lanes, scalar tails). BF16 weights are widened with a shift, F16 with
 * vcvtph2ps, and multiplied in f32. Compiled with target attributes only.
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

#define SIMD_TARGET __attribute__((target("avx2,fma,f16c")))
#define SIMD_FN(name) avx2_##name
#define SIMD_W 8
#define SIMD_MASKED_TAIL 0
/* prompt blocks of 4 rows x 3 tokens: 12 accumulators of the 16 ymm */
#define SIMD_PR 4
#define SIMD_PT 3
typedef __m256 vec;

#include "engine/kernels-exp.h"

static inline SIMD_TARGET vec
v_zero(void)
{
	return _mm256_setzero_ps();
}

static inline SIMD_TARGET vec
v_fma(vec a, vec b, vec c)
{
	return _mm256_fmadd_ps(a, b, c);
}

static inline SIMD_TARGET float
v_hsum(vec v)
{
	__m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
	s = _mm_add_ps(s, _mm_movehl_ps(s, s));
	s = _mm_add_ss(s, _mm_movehdup_ps(s));
	return _mm_cvtss_f32(s);
}

static inline SIMD_TARGET vec
v_set1(float f)
{
	return _mm256_set1_ps(f);
}

static inline SIMD_TARGET vec
v_add(vec a, vec b)
{
	return _mm256_add_ps(a, b);
}

static inline SIMD_TARGET vec
v_mul(vec a, vec b)
{
	return _mm256_mul_ps(a, b);
}

/*
 * exp(x) for x clamped to [SIMD_EXP_MIN, SIMD_EXP_MAX] (kernels-exp.h): the
 * clamp keeps n within the normal exponents, so 2^n is added to the bits.
 */
static inline __attribute__((always_inline)) SIMD_TARGET vec
v_exp(vec x)
{
	x = _mm256_min_ps(_mm256_max_ps(x, v_set1(SIMD_EXP_MIN)), v_set1(SIMD_EXP_MAX));
	vec n = _mm256_round_ps(v_mul(x, v_set1(SIMD_LOG2E)),
	    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
	vec r = _mm256_fnmadd_ps(n, v_set1(SIMD_LN2_HI), x);
	r = _mm256_fnmadd_ps(n, v_set1(SIMD_LN2_LO), r);
	__m256i e = _mm256_slli_epi32(_mm256_cvtps_epi32(n), 23);
	return _mm256_castsi256_ps(_mm256_add_epi32(_mm256_castps_si256(SIMD_EXP_POLY(r)), e));
}

static inline SIMD_TARGET vec
v_loadx(const float *p)
{
	return _mm256_loadu_ps(p);
}

static inline SIMD_TARGET void
v_storeu(float *p, vec v)
{
	_mm256_storeu_ps(p, v);
}

static inline __attribute__((always_inline)) SIMD_TARGET vec
v_loadw(const void *row, int64_t i, enum dtype dt)
{
	if (dt == DT_BF16) {
		__m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)row + i));
		return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
	}
	if (dt == DT_F16)
		return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)row + i)));
	return _mm256_loadu_ps((const float *)row + i);
}

#include "engine/kernels-simd.h"

static int
avx2_supported(void)
{
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
	    __builtin_cpu_supports("f16c");
}

const struct kernels_ops kernels_avx2_ops = {
	.name = "avx2-f16c",
	.supported = avx2_supported,
	.dot = avx2_dot,
	.to_f32 = avx2_to_f32,
	.tile = avx2_tile,
	.attn_rows = avx2_attn_rows,
};
#endif
