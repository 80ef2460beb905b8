/*
 * engine/tensor.c - dtype names and the IEEE half-precision (F16) <-> F32
 * scalar conversions declared in engine/tensor.h (BF16 ones are inline there).
 */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "engine/tensor.h"

const char *
dtype_name(enum dtype t)
{
	switch (t) {
	case DT_F32:
		return "F32";
	case DT_F16:
		return "F16";
	case DT_BF16:
		return "BF16";
	}
	return "?";
}

static uint32_t
f32_bits(float f)
{
	uint32_t u;

	memcpy(&u, &f, sizeof(u));
	return u;
}

static float
bits_f32(uint32_t u)
{
	float f;

	memcpy(&f, &u, sizeof(f));
	return f;
}

/* F16: 1 sign, 5 exponent (bias 15), 10 mantissa bits. */
float
f16_to_f32(uint16_t h)
{
	uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
	uint32_t exp = (h >> 10) & 0x1fu;
	uint32_t man = h & 0x3ffu;

	if (exp == 0x1f)                        /* inf / NaN (payload kept) */
		return bits_f32(sign | 0x7f800000u | (man << 13));
	if (exp != 0)                           /* normal */
		return bits_f32(sign | ((exp + 112u) << 23) | (man << 13));
	if (man == 0)                           /* +-0 */
		return bits_f32(sign);
	/* subnormal: man * 2^-24, exact in f32 */
	float v = (float)man * 0x1p-24f;
	return (h & 0x8000u) ? -v : v;
}

uint16_t
f32_to_f16(float f)
{
	uint32_t u = f32_bits(f);
	uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
	uint32_t a = u & 0x7fffffffu;

	if (a > 0x7f800000u)                    /* NaN: keep it quiet and non-zero */
		return (uint16_t)(sign | 0x7e00u | ((a >> 13) & 0x3ffu));
	if (a >= 0x477ff000u)                   /* >= 65520 rounds to inf */
		return (uint16_t)(sign | 0x7c00u);
	if (a >= 0x38800000u) {                 /* normal half (>= 2^-14) */
		uint32_t r = a + 0xfffu + ((a >> 13) & 1u) - (112u << 23);
		return (uint16_t)(sign | (r >> 13));
	}
	if (a < 0x33000000u)                    /* < 2^-25: rounds to 0 (ties to even) */
		return sign;
	/* subnormal half: value = m * 2^-24 with m in [0, 1024] after rounding */
	uint32_t e = a >> 23;                   /* 102..112 */
	uint32_t man = (a & 0x7fffffu) | 0x800000u;
	uint32_t shift = 126u - e;              /* 14..24: bits dropped from the 24-bit mantissa */
	uint32_t m = man >> shift;
	uint32_t rem = man & ((1u << shift) - 1u);
	uint32_t half = 1u << (shift - 1u);
	if (rem > half || (rem == half && (m & 1u)))
		m++;
	return (uint16_t)(sign | m);
}
