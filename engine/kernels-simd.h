/*
 * engine/kernels-simd.h - the SIMD matmul and attention kernels, written once and
 * instantiated per instruction set by engine/kernels-avx512.c and
 * engine/kernels-avx2.c, which define before including this file:
 *
 *   SIMD_FN(name)       function name with the path's prefix
 *   SIMD_TARGET         __attribute__((target(...))) of the path
 *   SIMD_W              lanes of vec (f32)
 *   vec                 the f32 vector type
 *   v_zero() v_fma(a, b, c) v_hsum(v) v_set1(f) v_add(a, b) v_mul(a, b)
 *   v_exp(x)            exp of each lane (engine/kernels-exp.h)
 *   v_loadx(p) v_storeu(p, v)  SIMD_W f32 activations in / out
 *   v_loadw(row, i, dt) SIMD_W weights of dtype dt from element i, as f32
 *   SIMD_MASKED_TAIL    1 if v_loadx_n / v_loadw_n (first n < SIMD_W lanes,
 *                       rest zero) exist; else the tail is scalar
 *   SIMD_PR SIMD_PT SIMD_SLAB  prompt blocking (optional, defaults below)
 *
 * Weights are widened to f32 exactly (BF16 is a shift, F16 is vcvtph2ps) and
 * multiplied with the f32 activations in f32: results match the scalar path
 * up to summation order. A micro-kernel computes an R x T block of out (R
 * weight rows, T tokens) over the whole of k, so each weight vector loaded is
 * used T times and each activation vector R times.
 */
#ifndef SIMD_FN
#error "engine/kernels-simd.h is included by a kernels-<isa>.c file only"
#endif

#ifndef SIMD_PR
#define SIMD_PR 4               /* prompt micro-kernel: weight rows */
#endif
#ifndef SIMD_PT
#define SIMD_PT 4               /* prompt micro-kernel: tokens (2..8) */
#endif
#ifndef SIMD_SLAB
#define SIMD_SLAB 16            /* rows of W per slab */
#endif
#ifndef SIMD_PF_HINT
#define SIMD_PF_HINT 3
#endif

#define SIMD_AI static inline __attribute__((always_inline)) SIMD_TARGET

/* Scalar weight element (for the tails of paths without masked loads). */
SIMD_AI float
SIMD_FN(elem)(const void *row, enum dtype dt, int64_t i)
{
	if (dt == DT_BF16)
		return bf16_to_f32(((const uint16_t *)row)[i]);
	if (dt == DT_F16)
		return f16_to_f32(((const uint16_t *)row)[i]);
	return ((const float *)row)[i];
}

/*
 * out[t * ldo + r + i] (+)= x[t] . W[r + i] for i < R, t < T.
 * R, T and dt are constants at each call site, so this unrolls fully.
 * pf > 0: prefetch the weights pf bytes ahead of each row being read (the
 * same place in the next block of rows): decode reads short rows that the
 * hardware prefetcher alone does not run far enough ahead on.
 */
SIMD_AI void
SIMD_FN(block)(float *out, int64_t ldo, const float *x, int64_t k, const char *W, size_t rowb,
    enum dtype dt, int64_t r, int R, int T, int acc, size_t pf)
{
	vec a[8][8];
	const void *w[8];
	const float *xs[8];

	_Pragma("GCC unroll 8")
	for (int i = 0; i < R; i++) {
		w[i] = W + (size_t)(r + i) * rowb;
		_Pragma("GCC unroll 8")
		for (int t = 0; t < T; t++)
			a[i][t] = v_zero();
	}
	_Pragma("GCC unroll 8")
	for (int t = 0; t < T; t++)
		xs[t] = x + (size_t)t * (size_t)k;

	int64_t j = 0;
	size_t esz = dtype_size(dt);
	for (; j + SIMD_W <= k; j += SIMD_W) {
		vec xv[8];
		_Pragma("GCC unroll 8")
		for (int t = 0; t < T; t++)
			xv[t] = v_loadx(xs[t] + j);
		_Pragma("GCC unroll 8")
		for (int i = 0; i < R; i++) {
			if (pf != 0)
				__builtin_prefetch((const char *)w[i] + (size_t)j * esz + pf, 0, SIMD_PF_HINT);
			vec wv = v_loadw(w[i], j, dt);
			_Pragma("GCC unroll 8")
			for (int t = 0; t < T; t++)
				a[i][t] = v_fma(wv, xv[t], a[i][t]);
		}
	}
#if SIMD_MASKED_TAIL
	if (j < k) {
		int n = (int)(k - j);
		vec xv[8];
		_Pragma("GCC unroll 8")
		for (int t = 0; t < T; t++)
			xv[t] = v_loadx_n(xs[t] + j, n);
		_Pragma("GCC unroll 8")
		for (int i = 0; i < R; i++) {
			vec wv = v_loadw_n(w[i], j, dt, n);
			_Pragma("GCC unroll 8")
			for (int t = 0; t < T; t++)
				a[i][t] = v_fma(wv, xv[t], a[i][t]);
		}
	}
#endif
	_Pragma("GCC unroll 8")
	for (int i = 0; i < R; i++) {
		_Pragma("GCC unroll 8")
		for (int t = 0; t < T; t++) {
			float s = v_hsum(a[i][t]);
#if !SIMD_MASKED_TAIL
			for (int64_t jj = j; jj < k; jj++)
				s += xs[t][jj] * SIMD_FN(elem)(w[i], dt, jj);
#endif
			float *o = out + (size_t)t * (size_t)ldo + r + i;
			*o = acc ? *o + s : s;
		}
	}
}

/* block() with T a run-time value in [1, SIMD_PT] (<= 8) made a constant. */
SIMD_AI void
SIMD_FN(block_t)(float *out, int64_t ldo, const float *x, int64_t k, const char *W, size_t rowb,
    enum dtype dt, int64_t r, int R, int T, int acc)
{
	switch (T) {
#define SIMD_CASE(n)                                                              \
	case n:                                                                   \
		SIMD_FN(block)(out, ldo, x, k, W, rowb, dt, r, R, n, acc, 0);     \
		break;
#if SIMD_PT >= 8
	SIMD_CASE(8)
#endif
#if SIMD_PT >= 7
	SIMD_CASE(7)
#endif
#if SIMD_PT >= 6
	SIMD_CASE(6)
#endif
#if SIMD_PT >= 5
	SIMD_CASE(5)
#endif
#if SIMD_PT >= 4
	SIMD_CASE(4)
#endif
#if SIMD_PT >= 3
	SIMD_CASE(3)
#endif
	SIMD_CASE(2)
	default:
		SIMD_FN(block)(out, ldo, x, k, W, rowb, dt, r, R, 1, acc, 0);
		break;
#undef SIMD_CASE
	}
}

/* Rows [r0, r1) for tokens [0, n_tok) with dtype dt a constant. */
SIMD_AI void
SIMD_FN(tile_dt)(float *out, int64_t ldo, const float *x, const void *W, enum dtype dt, int64_t k,
    int64_t r0, int64_t r1, int n_tok, int acc)
{
	const char *Wb = W;
	size_t rowb = (size_t)k * dtype_size(dt);

	if (n_tok == 1) {
		/* decode: eight independent rows in flight */
		int64_t r = r0;
		for (; r + 8 <= r1; r += 8)
			SIMD_FN(block)(out, ldo, x, k, Wb, rowb, dt, r, 8, 1, acc, 8 * rowb);
		for (; r < r1; r++)
			SIMD_FN(block)(out, ldo, x, k, Wb, rowb, dt, r, 1, 1, acc, 0);
		return;
	}
	/*
	 * prompt batch: a slab of SIMD_SLAB rows of W stays in L1/L2 while every
	 * group of SIMD_PT tokens passes over it in SIMD_PR x SIMD_PT blocks
	 */
	for (int64_t rs = r0; rs < r1; rs += SIMD_SLAB) {
		int64_t re = MIN(rs + SIMD_SLAB, r1);
		for (int t = 0; t < n_tok; t += SIMD_PT) {
			int T = MIN(SIMD_PT, n_tok - t);
			const float *xt = x + (size_t)t * (size_t)k;
			float *ot = out + (size_t)t * (size_t)ldo;
			int64_t r = rs;
			for (; r + SIMD_PR <= re; r += SIMD_PR)
				SIMD_FN(block_t)(ot, ldo, xt, k, Wb, rowb, dt, r, SIMD_PR, T, acc);
			for (; r < re; r++)
				SIMD_FN(block_t)(ot, ldo, xt, k, Wb, rowb, dt, r, 1, T, acc);
		}
	}
}

static SIMD_TARGET void
SIMD_FN(tile)(float *out, int64_t ldo, const float *x, const void *W, enum dtype dt, int64_t k,
    int64_t r0, int64_t r1, int n_tok, int acc)
{
	switch (dt) {
	case DT_BF16:
		SIMD_FN(tile_dt)(out, ldo, x, W, DT_BF16, k, r0, r1, n_tok, acc);
		break;
	case DT_F16:
		SIMD_FN(tile_dt)(out, ldo, x, W, DT_F16, k, r0, r1, n_tok, acc);
		break;
	case DT_F32:
		SIMD_FN(tile_dt)(out, ldo, x, W, DT_F32, k, r0, r1, n_tok, acc);
		break;
	}
}

static SIMD_TARGET float
SIMD_FN(dot)(const float *x, const void *row, enum dtype dt, int64_t k)
{
	float s = 0;

	switch (dt) {
	case DT_BF16:
		SIMD_FN(block)(&s, 1, x, k, row, 0, DT_BF16, 0, 1, 1, 0, 0);
		break;
	case DT_F16:
		SIMD_FN(block)(&s, 1, x, k, row, 0, DT_F16, 0, 1, 1, 0, 0);
		break;
	case DT_F32:
		SIMD_FN(block)(&s, 1, x, k, row, 0, DT_F32, 0, 1, 1, 0, 0);
		break;
	}
	return s;
}

static SIMD_TARGET void
SIMD_FN(to_f32)(float *out, const void *row, enum dtype dt, int64_t k)
{
	int64_t j = 0;

	switch (dt) {
	case DT_BF16:
		for (; j + SIMD_W <= k; j += SIMD_W)
			v_storeu(out + j, v_loadw(row, j, DT_BF16));
		break;
	case DT_F16:
		for (; j + SIMD_W <= k; j += SIMD_W)
			v_storeu(out + j, v_loadw(row, j, DT_F16));
		break;
	case DT_F32:
		memcpy(out, row, (size_t)k * sizeof(float));
		return;
	}
	for (; j < k; j++)
		out[j] = SIMD_FN(elem)(row, dt, j);
}

/*
 * attn_rows (engine/kernels.h). The scores of the run of rows for all g
 * heads come first (each K row read from memory once, then from L1 for the
 * other heads), then per head one rescale of acc, a vector exp of its
 * scores, and one pass over the V rows with four independent accumulators.
 */
SIMD_AI float
SIMD_FN(dot_f32)(const float *a, const float *b, int n)
{
	vec s0 = v_zero(), s1 = v_zero();
	int d = 0;

	for (; d + 2 * SIMD_W <= n; d += 2 * SIMD_W) {
		s0 = v_fma(v_loadx(a + d), v_loadx(b + d), s0);
		s1 = v_fma(v_loadx(a + d + SIMD_W), v_loadx(b + d + SIMD_W), s1);
	}
	if (d + SIMD_W <= n) {
		s0 = v_fma(v_loadx(a + d), v_loadx(b + d), s0);
		d += SIMD_W;
	}
	float s = v_hsum(v_add(s0, s1));
	for (; d < n; d++)
		s += a[d] * b[d];
	return s;
}

/* a (hd) = a * r + sum_{i<n} w[i] V[i] (row i at V + i * ld) */
SIMD_AI void
SIMD_FN(axpy_rows)(float *a, float r, const float *w, const float *V, size_t ld, int n, int hd)
{
	vec rv = v_set1(r);
	int d = 0;

	for (; d + 4 * SIMD_W <= hd; d += 4 * SIMD_W) {
		vec a0 = v_mul(v_loadx(a + d), rv), a1 = v_mul(v_loadx(a + d + SIMD_W), rv);
		vec a2 = v_mul(v_loadx(a + d + 2 * SIMD_W), rv);
		vec a3 = v_mul(v_loadx(a + d + 3 * SIMD_W), rv);
		for (int i = 0; i < n; i++) {
			const float *v = V + (size_t)i * ld + d;
			vec wv = v_set1(w[i]);
			a0 = v_fma(wv, v_loadx(v), a0);
			a1 = v_fma(wv, v_loadx(v + SIMD_W), a1);
			a2 = v_fma(wv, v_loadx(v + 2 * SIMD_W), a2);
			a3 = v_fma(wv, v_loadx(v + 3 * SIMD_W), a3);
		}
		v_storeu(a + d, a0);
		v_storeu(a + d + SIMD_W, a1);
		v_storeu(a + d + 2 * SIMD_W, a2);
		v_storeu(a + d + 3 * SIMD_W, a3);
	}
	for (; d + SIMD_W <= hd; d += SIMD_W) {
		vec a0 = v_mul(v_loadx(a + d), rv);
		for (int i = 0; i < n; i++)
			a0 = v_fma(v_set1(w[i]), v_loadx(V + (size_t)i * ld + d), a0);
		v_storeu(a + d, a0);
	}
	for (; d < hd; d++) {
		float x = a[d] * r;
		for (int i = 0; i < n; i++)
			x += w[i] * V[(size_t)i * ld + d];
		a[d] = x;
	}
}

static SIMD_TARGET void
SIMD_FN(attn_rows)(float *acc, float *m, float *l, const float *q, int g, int hd, const float *K,
    const float *V, size_t ld, int n, float scale)
{
	/* rows padded to whole vectors (ATTN_MAX_ROWS is a multiple of SIMD_W) */
	float s[ATTN_MAX_GROUP][ATTN_MAX_ROWS], w[ATTN_MAX_ROWS];
	int nv = (n + SIMD_W - 1) / SIMD_W * SIMD_W;

	/* s (g, n) = scale * q K^T */
	for (int i = 0; i < n; i++) {
		const float *k = K + (size_t)i * ld;
		for (int h = 0; h < g; h++)
			s[h][i] = scale * SIMD_FN(dot_f32)(q + (size_t)h * hd, k, hd);
	}
	for (int h = 0; h < g; h++) {
		float mx = m[h];
		for (int i = 0; i < n; i++)
			mx = s[h][i] > mx ? s[h][i] : mx;
		for (int i = n; i < nv; i++)
			s[h][i] = mx;
		/* w (n) = exp(s - mx) */
		vec mv = v_set1(-mx);
		for (int i = 0; i < nv; i += SIMD_W)
			v_storeu(w + i, v_exp(v_add(v_loadx(s[h] + i), mv)));
		float r = expf(m[h] - mx), sum = 0;
		for (int i = 0; i < n; i++)
			sum += w[i];
		l[h] = l[h] * r + sum;
		m[h] = mx;
		SIMD_FN(axpy_rows)(acc + (size_t)h * hd, r, w, V, ld, n, hd);
	}
}

#undef SIMD_AI
