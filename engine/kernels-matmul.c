/*
 * engine/kernels-matmul.c - the public entry points of engine/kernels.h:
 * picks the SIMD path once (best supported, or LLMD_KERNELS_ISA), dispatches
 * the row kernels (dot, conversion, attention step) to it, and splits the rows
 * of a weight matmul into chunks that the thread pool runs.
 */
#include "config.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/kernels-impl.h"
#include "engine/kernels.h"
#include "lib/log.h"
#include "lib/util.h"

const struct kernels_ops *const kernels_all_ops[] = {
#if defined(__x86_64__) && defined(__GNUC__)
	&kernels_avx512_ops,
	&kernels_avx2_ops,
#endif
	&kernels_scalar_ops,
	NULL,
};

static _Atomic(const struct kernels_ops *) chosen;

static const struct kernels_ops *
choose_ops(void)
{
	const char *want = getenv("LLMD_KERNELS_ISA");

	for (size_t i = 0; kernels_all_ops[i] != NULL; i++) {
		const struct kernels_ops *o = kernels_all_ops[i];
		if (o->supported != NULL && !o->supported())
			continue;
		if (want != NULL && *want != '\0' && strcmp(want, o->name) != 0)
			continue;
		return o;
	}
	if (want != NULL && *want != '\0')
		log_warnx("LLMD_KERNELS_ISA=%s is not available here; using scalar kernels", want);
	return &kernels_scalar_ops;
}

const struct kernels_ops *
kernels_ops_get(void)
{
	const struct kernels_ops *o = atomic_load_explicit(&chosen, memory_order_acquire);

	if (o == NULL) {
		o = choose_ops();
		atomic_store_explicit(&chosen, o, memory_order_release);
	}
	return o;
}

void
kernels_ops_set(const struct kernels_ops *o)
{
	atomic_store_explicit(&chosen, o, memory_order_release);
}

const char *
kernels_isa(void)
{
	return kernels_ops_get()->name;
}

float
dot_row(const float *x, const void *row, enum dtype dt, int64_t k)
{
	return kernels_ops_get()->dot(x, row, dt, k);
}

void
row_to_f32(float *out, const void *row, enum dtype dt, int64_t k)
{
	kernels_ops_get()->to_f32(out, row, dt, k);
}

void
attn_rows(float *acc, float *m, float *l, const float *q, int g, int hd, const float *K,
    const float *V, size_t ld, int n, float scale)
{
	kernels_ops_get()->attn_rows(acc, m, l, q, g, hd, K, V, ld, n, scale);
}

struct mm_job {
	const struct kernels_ops *ops;
	float *out;
	const float *x;
	const void *W;
	enum dtype dt;
	int64_t d, k;
	int64_t rows_per_chunk;
	int n_tok;
	int acc;
};

static void
mm_chunk(void *arg, int i, int n)
{
	const struct mm_job *j = arg;
	int64_t r0 = (int64_t)i * j->rows_per_chunk;
	int64_t r1 = MIN(j->d, r0 + j->rows_per_chunk);

	(void)n;
	if (r0 < r1)
		j->ops->tile(j->out, j->d, j->x, j->W, j->dt, j->k, r0, r1, j->n_tok, j->acc);
}

/* Row granularity of a chunk: keeps the SIMD row slabs whole. */
#define MM_ROW_ALIGN 32
/* Decode chunks: about this many weight bytes each. */
#define MM_CHUNK_BYTES (1024 * 1024)

static void
matmul(struct threadpool *tp, float *out, const float *x, const struct tensor *W, int n_tok,
    int acc)
{
	struct mm_job j = {
		.ops = kernels_ops_get(),
		.out = out,
		.x = x,
		.W = W->data,
		.dt = W->dtype,
		.d = W->shape[0],
		.k = W->ndim > 1 ? W->shape[1] : 1,
		.n_tok = n_tok,
		.acc = acc,
	};
	if (n_tok <= 0 || j.d <= 0)
		return;
	int nt = threadpool_size(tp);
	int64_t rpc = j.d;
	if (nt > 1) {
		/*
		 * At least four chunks per thread, and for decode chunks of
		 * about MM_CHUNK_BYTES, so that when a thread is preempted (the
		 * machine is shared) the others are left only a small chunk
		 * to wait for.
		 */
		int64_t nchunks = (int64_t)nt * 4;
		if (n_tok == 1) {
			int64_t rowb = j.k * (int64_t)dtype_size(j.dt);
			nchunks = MAX(nchunks, j.d * rowb / MM_CHUNK_BYTES);
		}
		rpc = (j.d + nchunks - 1) / nchunks;
		rpc = (rpc + MM_ROW_ALIGN - 1) / MM_ROW_ALIGN * MM_ROW_ALIGN;
	}
	j.rows_per_chunk = rpc;
	threadpool_run(tp, mm_chunk, &j, (int)((j.d + rpc - 1) / rpc));
}

void
matmul_wt(struct threadpool *tp, float *out, const float *x, const struct tensor *W, int n_tok)
{
	matmul(tp, out, x, W, n_tok, 0);
}

void
matmul_wt_acc(struct threadpool *tp, float *out, const float *x, const struct tensor *W,
    int n_tok)
{
	matmul(tp, out, x, W, n_tok, 1);
}
