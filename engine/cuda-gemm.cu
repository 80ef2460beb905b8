/*
 * engine/cuda-gemm.cu - the one GEMM wrapper of the CUDA backend: cuBLASLt,
 * bf16 inputs, f32 accumulate and f32 output (beta = 1 adds into the output,
 * which is how the residual adds after o_proj and down_proj happen), a 32 MiB
 * workspace, and the heuristic's first algo; no algo is a fatal error with
 * the shape, never a silent fallback.
 *
 * Row-major out (n, d) = x (n, k) @ W (d, k)^T is, in cuBLAS's column-major
 * terms, C (d, n) = op(A) B with A = W stored (k, d) ld k and op = T,
 * B = x stored (k, n) ld k, C stored (d, n) ld d: the "TN" layout cuBLASLt
 * prefers for tensor cores.
 *
 * Descriptors and the chosen algo are cached per (d, n, k, beta, alignments):
 * a serving engine sees a handful of weight shapes times the batch sizes it
 * runs.
 */
#include "config.h"
#include "engine/cuda-common.cuh"

#include <stdlib.h>
#include <string.h>

#define GEMM_WORKSPACE (32u << 20)
#define GEMM_CACHE 256

struct gemm_plan {
	int used;
	int d, n, k, acc;
	unsigned align_a, align_b, align_c;
	cublasLtMatmulDesc_t op;
	cublasLtMatrixLayout_t la, lb, lc;
	cublasLtMatmulAlgo_t algo;
};

struct cuda_gemm {
	cudaStream_t stream;
	cublasLtHandle_t lt;
	void *workspace;        /* (GEMM_WORKSPACE) device */
	struct gemm_plan plans[GEMM_CACHE];
	int next_evict;
};

struct cuda_gemm *
cuda_gemm_create(cudaStream_t s)
{
	struct cuda_gemm *g = (struct cuda_gemm *)calloc(1, sizeof(*g));
	if (g == NULL)
		fatalx("cuda gemm: out of memory");
	g->stream = s;
	CUBLAS_CHECK(cublasLtCreate(&g->lt));
	CUDA_CHECK(cudaMalloc(&g->workspace, GEMM_WORKSPACE));
	return g;
}

static void
plan_clear(struct gemm_plan *p)
{
	if (!p->used)
		return;
	CUBLAS_CHECK(cublasLtMatrixLayoutDestroy(p->la));
	CUBLAS_CHECK(cublasLtMatrixLayoutDestroy(p->lb));
	CUBLAS_CHECK(cublasLtMatrixLayoutDestroy(p->lc));
	CUBLAS_CHECK(cublasLtMatmulDescDestroy(p->op));
	memset(p, 0, sizeof(*p));
}

void
cuda_gemm_destroy(struct cuda_gemm *g)
{
	if (g == NULL)
		return;
	for (int i = 0; i < GEMM_CACHE; i++)
		plan_clear(&g->plans[i]);
	CUDA_CHECK(cudaFree(g->workspace));
	CUBLAS_CHECK(cublasLtDestroy(g->lt));
	free(g);
}

/* Largest power of two (<= 256) dividing the address. */
static unsigned
ptr_align(const void *p)
{
	uintptr_t a = (uintptr_t)p;
	unsigned al = 256;
	while (al > 1 && a % al)
		al >>= 1;
	return al;
}

static struct gemm_plan *
plan_get(struct cuda_gemm *g, int d, int n, int k, int acc, unsigned aa, unsigned ab, unsigned ac)
{
	struct gemm_plan *free_slot = NULL;
	for (int i = 0; i < GEMM_CACHE; i++) {
		struct gemm_plan *p = &g->plans[i];
		if (!p->used) {
			if (!free_slot)
				free_slot = p;
			continue;
		}
		if (p->d == d && p->n == n && p->k == k && p->acc == acc && p->align_a == aa &&
		    p->align_b == ab && p->align_c == ac)
			return p;
	}
	if (free_slot == NULL) {
		free_slot = &g->plans[g->next_evict];
		g->next_evict = (g->next_evict + 1) % GEMM_CACHE;
		plan_clear(free_slot);
	}
	struct gemm_plan *p = free_slot;
	cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
	CUBLAS_CHECK(cublasLtMatmulDescCreate(&p->op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
	CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSA, &ta,
	    sizeof(ta)));
	CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSB, &tb,
	    sizeof(tb)));
	/* A = W (k, d) ld k; B = x (k, n) ld k; C = D = out (d, n) ld d */
	CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->la, CUDA_R_16BF, (uint64_t)k, (uint64_t)d, k));
	CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->lb, CUDA_R_16BF, (uint64_t)k, (uint64_t)n, k));
	CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->lc, CUDA_R_32F, (uint64_t)d, (uint64_t)n, d));

	cublasLtMatmulPreference_t pref;
	size_t ws = GEMM_WORKSPACE;
	uint32_t a32 = aa, b32 = ab, c32 = ac;
	CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
	CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref,
	    CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws)));
	CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref,
	    CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &a32, sizeof(a32)));
	CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref,
	    CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &b32, sizeof(b32)));
	CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref,
	    CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &c32, sizeof(c32)));
	CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref,
	    CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &c32, sizeof(c32)));
	cublasLtMatmulHeuristicResult_t res;
	int n_res = 0;
	memset(&res, 0, sizeof(res));
	CUBLAS_CHECK(cublasLtMatmulAlgoGetHeuristic(g->lt, p->op, p->la, p->lb, p->lc, p->lc, pref,
	    1, &res, &n_res));
	CUBLAS_CHECK(cublasLtMatmulPreferenceDestroy(pref));
	if (n_res == 0 || res.state != CUBLAS_STATUS_SUCCESS)
		fatalx("cuda gemm: cuBLASLt has no algorithm for out (%d, %d) = x (%d, %d) @ W (%d, %d)^T "
		    "bf16 -> f32 (alignments %u/%u/%u)", n, d, n, k, d, k, aa, ab, ac);
	p->algo = res.algo;
	p->used = 1;
	p->d = d;
	p->n = n;
	p->k = k;
	p->acc = acc;
	p->align_a = aa;
	p->align_b = ab;
	p->align_c = ac;
	return p;
}

void
cuda_gemm_bf16(struct cuda_gemm *g, float *out, const __nv_bfloat16 *x, const __nv_bfloat16 *W,
    int n, int d, int k, int accumulate)
{
	if (n <= 0 || d <= 0 || k <= 0)
		return;
	struct gemm_plan *p = plan_get(g, d, n, k, accumulate != 0, ptr_align(W), ptr_align(x),
	    ptr_align(out));
	float alpha = 1.0f, beta = accumulate ? 1.0f : 0.0f;
	CUBLAS_CHECK(cublasLtMatmul(g->lt, p->op, &alpha, W, p->la, x, p->lb, &beta, out, p->lc,
	    out, p->lc, &p->algo, g->workspace, GEMM_WORKSPACE, g->stream));
}
