/*
 * engine/cuda-tp.cu - the CUDA side of tensor parallelism: N single-GPU
 * backends (engine/backend-cuda.cu, devices 0..N-1, decode graphs off), one
 * NCCL communicator per GPU from ncclCommInitAll (one process drives all N),
 * and the f32 in-place all-reduce (sum) that engine/backend-tp.c calls after
 * o_proj and down_proj: one ncclAllReduce per rank on that rank's stream,
 * inside ncclGroupStart/End as NCCL requires when one thread issues the
 * collective for several devices.
 */
#include "config.h"
#include "engine/cuda-common.cuh"

#include <errno.h>
#include <stdlib.h>

extern "C" {
#include "engine/backend-tp.h"
#include "engine/tp-plan.h"
#include "lib/util.h"
}

#ifdef HAVE_NCCL
#include <nccl.h>

#define NCCL_CHECK(call) do {                                                   \
	ncclResult_t nccl_check_rc_ = (call);                                   \
	if (nccl_check_rc_ != ncclSuccess)                                      \
		cuda_check_fail(#call, ncclGetErrorString(nccl_check_rc_),      \
		    __FILE__, __LINE__);                                        \
} while (0)

struct cuda_tp_comm {
	int n;
	int device[TP_MAX_RANKS];
	cudaStream_t stream[TP_MAX_RANKS];
	ncclComm_t comm[TP_MAX_RANKS];
};

static void
comm_enter(void *ctx, int rank)
{
	struct cuda_tp_comm *c = (struct cuda_tp_comm *)ctx;
	CUDA_CHECK(cudaSetDevice(c->device[rank]));
}

static void
comm_all_reduce(void *ctx, float *const *bufs, size_t count)
{
	struct cuda_tp_comm *c = (struct cuda_tp_comm *)ctx;
	/* bufs[r] (count) f32 = sum over ranks, in place, on rank r's stream:
	 * ordered after the GEMM that wrote it and before the next op */
	NCCL_CHECK(ncclGroupStart());
	for (int r = 0; r < c->n; r++)
		NCCL_CHECK(ncclAllReduce(bufs[r], bufs[r], count, ncclFloat, ncclSum, c->comm[r],
		    c->stream[r]));
	NCCL_CHECK(ncclGroupEnd());
}

static void
comm_destroy(void *ctx)
{
	struct cuda_tp_comm *c = (struct cuda_tp_comm *)ctx;
	/* after the rank backends: they waited for their streams */
	for (int r = 0; r < c->n; r++)
		NCCL_CHECK(ncclCommDestroy(c->comm[r]));
	free(c);
}

extern "C" int
backend_cuda_tp_create(int n, struct backend **out, struct llmd_err *e)
{
	int visible = 0;
	cudaError_t rc = cudaGetDeviceCount(&visible);
	if (rc != cudaSuccess) {
		(void)cudaGetLastError();
		visible = 0;
	}
	if (n < 2 || n > TP_MAX_RANKS)
		return err_set(e, -EINVAL, "--tensor-parallel-size", "%d is not in [2, %d]", n,
		    TP_MAX_RANKS);
	if (visible < n)
		return err_set(e, -ENODEV, "--tensor-parallel-size", "%d needs %d GPUs; %d visible "
		    "(CUDA_VISIBLE_DEVICES)%s%s", n, n, visible, rc != cudaSuccess ? ": " : "",
		    rc != cudaSuccess ? cudaGetErrorName(rc) : "");

	struct backend *ranks[TP_MAX_RANKS];
	struct cuda_tp_comm *c = (struct cuda_tp_comm *)xcalloc(1, sizeof(*c));
	c->n = n;
	for (int r = 0; r < n; r++) {
		int erc = backend_cuda_create_device(r, 0, &ranks[r], e);
		if (erc < 0) {
			while (r-- > 0)
				backend_destroy(ranks[r]);
			free(c);
			return erc;
		}
		c->device[r] = r;
		c->stream[r] = (cudaStream_t)backend_cuda_stream(ranks[r]);
	}
	ncclResult_t nr = ncclCommInitAll(c->comm, n, c->device);
	if (nr != ncclSuccess) {
		for (int r = 0; r < n; r++)
			backend_destroy(ranks[r]);
		free(c);
		return err_set(e, -EIO, "--tensor-parallel-size", "NCCL: cannot connect %d GPUs: %s",
		    n, ncclGetErrorString(nr));
	}
	int version = 0;
	NCCL_CHECK(ncclGetVersion(&version));
	log_info("tp: NCCL %d.%d.%d communicator over %d GPUs (one process), f32 all-reduce",
	    version / 10000, version / 100 % 100, version % 100, n);
	struct tp_comm tc;
	tc.ctx = c;
	tc.enter = comm_enter;
	tc.all_reduce = comm_all_reduce;
	tc.destroy = comm_destroy;
	tc.weights_copied = 1;
	return backend_tp_create(ranks, n, &tc, out, e);
}

#else   /* a CUDA build without NCCL */

extern "C" int
backend_cuda_tp_create(int n, struct backend **out, struct llmd_err *e)
{
	(void)out;
	return err_set(e, -ENOTSUP, "--tensor-parallel-size", "%d: this llmd-engine was built "
	    "without NCCL (nccl.h not found at configure time)", n);
}

#endif
