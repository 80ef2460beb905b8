/*
 * tests/unit/test-kernels.c - engine CPU kernels: every SIMD path this CPU
 * supports against a double-precision reference over awkward shapes and all
 * weight dtypes, the threaded matmul entry points, the F16/BF16 conversions,
 * and the thread pool's run-every-index-exactly-once contract.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/kernels-impl.h"
#include "engine/kernels.h"
#include "engine/tensor.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t
rng_next(void)
{
	/* xorshift64* */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

static float
rng_uniform(void)
{
	return (float)((double)(rng_next() >> 11) * 0x1p-53 * 2.0 - 1.0);
}

static int
rng_int(int lo, int hi)
{
	return lo + (int)(rng_next() % (uint64_t)(hi - lo + 1));
}

/* W (d, k) of dtype dt with random values; *wf gets them as f32. */
static void *
make_weights(enum dtype dt, int d, int k, float **wf)
{
	size_t n = (size_t)d * (size_t)k;
	void *w = malloc(n * dtype_size(dt));
	float *f = malloc(n * sizeof(float));

	for (size_t i = 0; i < n; i++) {
		float v = rng_uniform();
		switch (dt) {
		case DT_BF16:
			((uint16_t *)w)[i] = f32_to_bf16(v);
			f[i] = bf16_to_f32(((uint16_t *)w)[i]);
			break;
		case DT_F16:
			((uint16_t *)w)[i] = f32_to_f16(v);
			f[i] = f16_to_f32(((uint16_t *)w)[i]);
			break;
		case DT_F32:
			((float *)w)[i] = v;
			f[i] = v;
			break;
		}
	}
	*wf = f;
	return w;
}

/* |got - sum x*w| within f32 summation error of sum |x*w|. */
static void
check_dot(float got, const float *x, const float *w, int k, const char *what)
{
	double ref = 0, mag = 0;

	for (int i = 0; i < k; i++) {
		ref += (double)x[i] * w[i];
		mag += fabs((double)x[i] * w[i]);
	}
	double tol = 1e-5 * mag + 1e-6;
	cr_assert(fabs(got - ref) <= tol, "%s: got %.9g want %.9g (tol %g, k %d)", what, got, ref,
	    tol, k);
}

static const enum dtype all_dtypes[] = { DT_F32, DT_F16, DT_BF16 };

Test(kernels, every_path_matches_reference)
{
	int paths = 0;

	for (size_t p = 0; kernels_all_ops[p] != NULL; p++) {
		const struct kernels_ops *o = kernels_all_ops[p];
		if (o->supported != NULL && !o->supported())
			continue;
		paths++;
		for (int iter = 0; iter < 40; iter++) {
			enum dtype dt = all_dtypes[iter % 3];
			int k = iter < 6 ? rng_int(1, 40) : rng_int(1, 300);
			int d = rng_int(1, 45);
			int n_tok = rng_int(1, 17);
			int acc = iter & 1;
			float *wf;
			void *w = make_weights(dt, d, k, &wf);
			float *x = malloc((size_t)n_tok * (size_t)k * sizeof(float));
			for (int i = 0; i < n_tok * k; i++)
				x[i] = rng_uniform();
			int ldo = d + 3;
			float *out = malloc((size_t)n_tok * (size_t)ldo * sizeof(float));
			for (int i = 0; i < n_tok * ldo; i++)
				out[i] = acc ? 0.5f : 1234.0f;
			/* a sub-range of rows, as the thread pool hands them out */
			int r0 = d > 2 ? rng_int(0, d / 2) : 0;
			o->tile(out, ldo, x, w, dt, k, r0, d, n_tok, acc);
			/* the scalar path on the same input, for a direct comparison */
			float *ref = malloc((size_t)n_tok * (size_t)ldo * sizeof(float));
			for (int i = 0; i < n_tok * ldo; i++)
				ref[i] = acc ? 0.5f : 1234.0f;
			kernels_scalar_ops.tile(ref, ldo, x, w, dt, k, r0, d, n_tok, acc);
			for (int t = 0; t < n_tok; t++)
				for (int r = r0; r < d; r++)
					cr_assert_float_eq(out[t * ldo + r], ref[t * ldo + r],
					    1e-4f * (1.0f + (float)k / 16.0f),
					    "%s vs scalar, %s k %d row %d tok %d", o->name, dtype_name(dt),
					    k, r, t);
			free(ref);
			for (int t = 0; t < n_tok; t++) {
				for (int r = 0; r < ldo; r++) {
					float got = out[t * ldo + r];
					if (r < r0 || r >= d) {
						cr_assert_eq(got, acc ? 0.5f : 1234.0f,
						    "%s wrote outside its rows", o->name);
						continue;
					}
					check_dot(got - (acc ? 0.5f : 0.0f), x + t * k, wf + r * k, k,
					    o->name);
				}
			}
			for (int r = 0; r < d; r++) {
				check_dot(o->dot(x, (const char *)w + (size_t)r * k * dtype_size(dt), dt, k),
				    x, wf + r * k, k, o->name);
			}
			float *row = malloc((size_t)k * sizeof(float));
			o->to_f32(row, (const char *)w + (size_t)(d - 1) * k * dtype_size(dt), dt, k);
			cr_assert(memcmp(row, wf + (size_t)(d - 1) * k, (size_t)k * sizeof(float)) == 0,
			    "%s to_f32 %s not exact", o->name, dtype_name(dt));
			free(row);
			free(out);
			free(x);
			free(w);
			free(wf);
		}
	}
	cr_assert_geq(paths, 1);
}

Test(kernels, isa_name_is_a_known_path)
{
	const char *isa = kernels_isa();
	int found = 0;

	for (size_t p = 0; kernels_all_ops[p] != NULL; p++)
		found |= strcmp(kernels_all_ops[p]->name, isa) == 0;
	cr_assert(found, "kernels_isa() = %s", isa);
}

static void
check_matmul(struct threadpool *tp, enum dtype dt, int d, int k, int n_tok)
{
	float *wf;
	void *w = make_weights(dt, d, k, &wf);
	float *x = malloc((size_t)n_tok * (size_t)k * sizeof(float));
	float *out = malloc((size_t)n_tok * (size_t)d * sizeof(float));
	struct tensor W = { .dtype = dt, .ndim = 2, .shape = { d, k }, .data = w };

	for (int i = 0; i < n_tok * k; i++)
		x[i] = rng_uniform();
	matmul_wt(tp, out, x, &W, n_tok);
	for (int t = 0; t < n_tok; t++)
		for (int r = 0; r < d; r++)
			check_dot(out[t * d + r], x + t * k, wf + r * k, k, "matmul_wt");
	matmul_wt_acc(tp, out, x, &W, n_tok);
	for (int t = 0; t < n_tok; t++)
		for (int r = 0; r < d; r++)
			check_dot(out[t * d + r] / 2, x + t * k, wf + r * k, k, "matmul_wt_acc");
	for (int r = 0; r < d; r++)
		check_dot(dot_row(x, (const char *)w + (size_t)r * k * dtype_size(dt), dt, k), x,
		    wf + r * k, k, "dot_row");
	float *row = malloc((size_t)k * sizeof(float));
	row_to_f32(row, w, dt, k);
	cr_assert(memcmp(row, wf, (size_t)k * sizeof(float)) == 0);
	free(row);
	free(out);
	free(x);
	free(w);
	free(wf);
}

Test(kernels, matmul_threaded_and_serial)
{
	struct threadpool *pools[3] = { NULL, threadpool_create(2), threadpool_create(3) };

	for (int p = 0; p < 3; p++) {
		for (int i = 0; i < 3; i++) {
			check_matmul(pools[p], all_dtypes[i], 1, 7, 1);
			check_matmul(pools[p], all_dtypes[i], 203, 67, 1);
			check_matmul(pools[p], all_dtypes[i], 101, 129, 5);
			check_matmul(pools[p], all_dtypes[i], 37, 33, 17);
		}
	}
	for (int p = 1; p < 3; p++)
		threadpool_destroy(pools[p]);
}

/* ---- conversions ---- */

static uint32_t
bits(float f)
{
	uint32_t u;
	memcpy(&u, &f, 4);
	return u;
}

Test(convert, f16_special_values)
{
	cr_assert_eq(f32_to_f16(0.0f), 0x0000);
	cr_assert_eq(f32_to_f16(-0.0f), 0x8000);
	cr_assert_eq(f32_to_f16(1.0f), 0x3c00);
	cr_assert_eq(f32_to_f16(-2.0f), 0xc000);
	cr_assert_eq(f32_to_f16(65504.0f), 0x7bff);
	cr_assert_eq(f32_to_f16(65519.0f), 0x7bff);
	cr_assert_eq(f32_to_f16(65520.0f), 0x7c00);     /* rounds up to inf */
	cr_assert_eq(f32_to_f16(INFINITY), 0x7c00);
	cr_assert_eq(f32_to_f16(-INFINITY), 0xfc00);
	cr_assert_eq(f32_to_f16(1e10f), 0x7c00);
	uint16_t n = f32_to_f16(NAN);
	cr_assert((n & 0x7c00) == 0x7c00 && (n & 0x3ff) != 0, "NaN -> %#x", n);
	/* round to nearest even at the 10-bit mantissa */
	cr_assert_eq(f32_to_f16(1.0f + 0x1p-11f), 0x3c00);          /* tie, down to even */
	cr_assert_eq(f32_to_f16(1.0f + 3 * 0x1p-11f), 0x3c02);      /* tie, up to even */
	cr_assert_eq(f32_to_f16(1.0f + 0x1p-11f + 0x1p-20f), 0x3c01);
	/* subnormals: unit 2^-24 */
	cr_assert_eq(f32_to_f16(0x1p-24f), 0x0001);
	cr_assert_eq(f32_to_f16(0x1p-25f), 0x0000);                 /* tie to 0 */
	cr_assert_eq(f32_to_f16(0x1p-25f + 0x1p-40f), 0x0001);
	cr_assert_eq(f32_to_f16(3 * 0x1p-25f), 0x0002);             /* 1.5 units: tie to 2 */
	cr_assert_eq(f32_to_f16(-0x1p-14f), 0x8400);                /* smallest normal */
	cr_assert_eq(f32_to_f16(0x3ffp-24f), 0x03ff);               /* largest subnormal */
	cr_assert_eq(f32_to_f16(0x1p-14f - 0x1p-26f), 0x0400);      /* rounds up to normal */

	cr_assert_eq(f16_to_f32(0x3c00), 1.0f);
	cr_assert_eq(f16_to_f32(0x0001), 0x1p-24f);
	cr_assert_eq(f16_to_f32(0x83ff), -0x3ffp-24f);
	cr_assert_eq(f16_to_f32(0x7bff), 65504.0f);
	cr_assert(isinf(f16_to_f32(0xfc00)) && f16_to_f32(0xfc00) < 0);
	cr_assert(isnan(f16_to_f32(0x7e00)));
	cr_assert(isnan(f16_to_f32(0xfc01)));
	cr_assert_eq(bits(f16_to_f32(0x8000)), 0x80000000u);
}

Test(convert, f16_round_trips_every_value)
{
	for (uint32_t h = 0; h < 0x10000; h++) {
		float f = f16_to_f32((uint16_t)h);
		if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff) != 0) {
			cr_assert(isnan(f));
			cr_assert(isnan(f16_to_f32(f32_to_f16(f))));
			continue;
		}
		cr_assert_eq(f32_to_f16(f), h, "%#x -> %a -> %#x", h, f, f32_to_f16(f));
	}
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

__attribute__((target("f16c"))) static uint16_t
hw_f32_to_f16(float f)
{
	return (uint16_t)_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}

Test(convert, f16_matches_f16c_hardware)
{
	__builtin_cpu_init();
	if (!__builtin_cpu_supports("f16c"))
		cr_skip_test("no F16C");
	for (int i = 0; i < 1 << 20; i++) {
		uint32_t u = (uint32_t)rng_next();
		/* bias towards the interesting exponents (subnormal to overflow) */
		if (i & 1)
			u = (u & 0x80ffffffu) | ((uint32_t)rng_int(96, 145) << 23);
		float f;
		memcpy(&f, &u, 4);
		if (isnan(f))
			continue;
		cr_assert_eq(f32_to_f16(f), hw_f32_to_f16(f), "%a (%#x)", f, u);
	}
}
#endif

Test(convert, bf16)
{
	cr_assert_eq(f32_to_bf16(1.0f), 0x3f80);
	cr_assert_eq(f32_to_bf16(-2.0f), 0xc000);
	cr_assert_eq(f32_to_bf16(1.0f + 0x1p-8f), 0x3f80);          /* tie, down to even */
	cr_assert_eq(f32_to_bf16(1.0f + 3 * 0x1p-8f), 0x3f82);      /* tie, up to even */
	cr_assert_eq(f32_to_bf16(1.0f + 0x1p-8f + 0x1p-20f), 0x3f81);
	cr_assert_eq(f32_to_bf16(INFINITY), 0x7f80);
	cr_assert_eq(f32_to_bf16(-INFINITY), 0xff80);
	cr_assert_eq(f32_to_bf16(3.4e38f), 0x7f80);                  /* overflows to inf */
	cr_assert_eq(f32_to_bf16(0x1p-130f), 0x0008);                /* subnormal kept */
	uint16_t n = f32_to_bf16(NAN);
	cr_assert((n & 0x7f80) == 0x7f80 && (n & 0x7f) != 0);
	/* a NaN whose payload lies only in the low bits stays NaN */
	uint32_t u = 0x7f800001u;
	float f;
	memcpy(&f, &u, 4);
	cr_assert(isnan(bf16_to_f32(f32_to_bf16(f))));
	for (uint32_t h = 0; h < 0x10000; h++) {
		float g = bf16_to_f32((uint16_t)h);
		cr_assert_eq(bits(g), h << 16);
		if (!isnan(g))
			cr_assert_eq(f32_to_bf16(g), h);
	}
	cr_assert_str_eq(dtype_name(DT_BF16), "BF16");
	cr_assert_str_eq(dtype_name(DT_F16), "F16");
	cr_assert_str_eq(dtype_name(DT_F32), "F32");
}

/* ---- thread pool ---- */

struct count_job {
	atomic_int *hits;
	int n;
	atomic_int bad_n;
};

static void
count_fn(void *arg, int i, int n)
{
	struct count_job *j = arg;

	if (n != j->n || i < 0 || i >= n)
		atomic_fetch_add(&j->bad_n, 1);
	else
		atomic_fetch_add(&j->hits[i], 1);
}

static void
check_pool(struct threadpool *tp, int runs)
{
	static const int sizes[] = { 1, 2, 3, 7, 64, 1000 };
	atomic_int hits[1000];

	for (int r = 0; r < runs; r++) {
		int n = sizes[r % 6];
		struct count_job j = { .hits = hits, .n = n };
		atomic_init(&j.bad_n, 0);
		for (int i = 0; i < n; i++)
			atomic_init(&hits[i], 0);
		threadpool_run(tp, count_fn, &j, n);
		cr_assert_eq(atomic_load(&j.bad_n), 0);
		for (int i = 0; i < n; i++)
			cr_assert_eq(atomic_load(&hits[i]), 1, "run %d: index %d of %d ran %d times", r,
			    i, n, atomic_load(&hits[i]));
	}
}

Test(threadpool, null_pool_runs_serially)
{
	cr_assert_eq(threadpool_size(NULL), 1);
	check_pool(NULL, 12);
	threadpool_run(NULL, count_fn, NULL, 0);        /* n == 0: nothing runs */
}

Test(threadpool, every_index_exactly_once)
{
	for (int size = 1; size <= 4; size++) {
		struct threadpool *tp = threadpool_create(size);
		cr_assert_eq(threadpool_size(tp), size);
		check_pool(tp, 600);
		threadpool_destroy(tp);
	}
	struct threadpool *tp = threadpool_create(0);
	cr_assert_geq(threadpool_size(tp), 1);
	check_pool(tp, 6);
	threadpool_destroy(tp);
	threadpool_destroy(NULL);
}

struct sleep_job {
	atomic_int sum;
};

static void
sum_fn(void *arg, int i, int n)
{
	struct sleep_job *j = arg;

	(void)n;
	atomic_fetch_add(&j->sum, i + 1);
}

Test(threadpool, wakes_sleeping_workers)
{
	struct threadpool *tp = threadpool_create(3);

	for (int r = 0; r < 3; r++) {
		struct sleep_job j;
		atomic_init(&j.sum, 0);
		/* long enough for the workers to stop spinning and sleep */
		struct timespec ts = { 0, 3 * 1000 * 1000 };
		nanosleep(&ts, NULL);
		threadpool_run(tp, sum_fn, &j, 100);
		cr_assert_eq(atomic_load(&j.sum), 5050);
	}
	threadpool_destroy(tp);
}

struct caller_arg {
	struct threadpool *tp;
	int failures;
};

static void *
caller_main(void *p)
{
	struct caller_arg *c = p;
	atomic_int hits[64];

	for (int r = 0; r < 300; r++) {
		struct count_job j = { .hits = hits, .n = 64 };
		atomic_init(&j.bad_n, 0);
		for (int i = 0; i < 64; i++)
			atomic_init(&hits[i], 0);
		threadpool_run(c->tp, count_fn, &j, 64);
		for (int i = 0; i < 64; i++)
			c->failures += atomic_load(&hits[i]) != 1;
		c->failures += atomic_load(&j.bad_n);
	}
	return NULL;
}

Test(threadpool, concurrent_callers_are_serialized)
{
	struct threadpool *tp = threadpool_create(2);
	struct caller_arg a = { tp, 0 }, b = { tp, 0 };
	pthread_t ta, tb;

	cr_assert_eq(pthread_create(&ta, NULL, caller_main, &a), 0);
	cr_assert_eq(pthread_create(&tb, NULL, caller_main, &b), 0);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	cr_assert_eq(a.failures + b.failures, 0);
	threadpool_destroy(tp);
}
