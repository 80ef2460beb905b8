/*
 * engine/tensor.h - a view of a weight or activation tensor: dtype, shape and
 * a pointer that is not owned (weights point into the mmapped safetensors
 * file, activations into engine-owned scratch). Row-major, shape[0] outermost.
 */
#ifndef LLMD_ENGINE_TENSOR_H
#define LLMD_ENGINE_TENSOR_H

#include <stddef.h>
#include <stdint.h>

enum dtype { DT_F32 = 0, DT_F16, DT_BF16 };

struct tensor {
	enum dtype dtype;
	int ndim;
	int64_t shape[4];
	const void *data;
};

static inline size_t
dtype_size(enum dtype t)
{
	return t == DT_F32 ? 4 : 2;
}

const char *dtype_name(enum dtype t);

/* BF16/F16 <-> F32 scalar conversions (round to nearest even). */
static inline float
bf16_to_f32(uint16_t h)
{
	union { uint32_t u; float f; } v = { .u = (uint32_t)h << 16 };
	return v.f;
}

static inline uint16_t
f32_to_bf16(float f)
{
	union { float f; uint32_t u; } v = { .f = f };
	if ((v.u & 0x7fffffffu) > 0x7f800000u)   /* NaN stays NaN */
		return (uint16_t)((v.u >> 16) | 0x40);
	uint32_t rounding = 0x7fffu + ((v.u >> 16) & 1u);
	return (uint16_t)((v.u + rounding) >> 16);
}

float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);

#endif
