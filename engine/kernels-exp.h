/*
 * engine/kernels-exp.h - the constants and polynomial of the SIMD exp used by
 * the attention step of engine/kernels-simd.h, shared by the AVX-512 and
 * AVX2 paths, whose v_exp expands SIMD_EXP_POLY with their v_fma and v_set1.
 *
 * exp(x) = 2^n * exp(r), n = round(x / ln 2), r = x - n ln 2 with ln 2 split
 * in a high part exact in f32 and a low part (Cody-Waite), |r| <= ln2 / 2;
 * exp(r) by its Taylor polynomial of degree 7, whose truncation error
 * (|r|^8 / 8! < 6e-9) is far below an f32 ulp, so the result is within a few
 * ulp of exp(x) (the unit test measures about 1 against exp() in double). x is
 * clamped to [-86, 88] first: softmax weights below e^-86 (~4e-38) are
 * zero to f32 accuracy next to the largest weight, which is 1.
 */
#ifndef LLMD_ENGINE_KERNELS_EXP_H
#define LLMD_ENGINE_KERNELS_EXP_H

#define SIMD_EXP_MIN (-86.0f)
#define SIMD_EXP_MAX 88.0f
#define SIMD_LOG2E 1.44269504088896341f
#define SIMD_LN2_HI 0.693145751953125f          /* 0x3f317200: 8 low bits zero */
#define SIMD_LN2_LO 1.42860682030941723212e-6f  /* ln 2 - SIMD_LN2_HI */

/* Horner form of sum_{i<=7} r^i / i! with the path's v_fma and v_set1. */
#define SIMD_EXP_POLY(r)                                                              \
	v_fma(v_fma(v_fma(v_fma(v_fma(v_fma(v_fma(v_set1(1.0f / 5040), (r),             \
	    v_set1(1.0f / 720)), (r), v_set1(1.0f / 120)), (r), v_set1(1.0f / 24)),     \
	    (r), v_set1(1.0f / 6)), (r), v_set1(0.5f)), (r), v_set1(1.0f)), (r),         \
	    v_set1(1.0f))

#endif
