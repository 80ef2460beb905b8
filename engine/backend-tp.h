/*
 * engine/backend-tp.h - tensor parallelism as a backend: one struct backend
 * (forward.h's vtable, so forward.c and the serving loop are unchanged) that
 * drives N rank backends from one thread. prepare_model cuts the model into
 * the ranks' shards with the plan of engine/tp-plan.h; each op runs on every
 * rank with that rank's buffers, head counts and shards; after the
 * row-parallel GEMMs (o_proj, down_proj) the communicator sums the partials
 * (all-reduce, f32, in place); the LM head, logits, argmax and sampling run
 * on rank 0.
 *
 * Activations: alloc allocates the same bytes on every rank and returns rank
 * 0's pointer; ops translate it (or a pointer inside it) to each rank's twin.
 * The KV cache must be built for the per-rank kv heads
 * (tp_kv_heads_per_rank): every rank holds its heads' K/V for the same
 * block ids, so one block table serves all ranks.
 */
#ifndef LLMD_ENGINE_BACKEND_TP_H
#define LLMD_ENGINE_BACKEND_TP_H

#include <stddef.h>

#include "engine/forward.h"
#include "lib/err.h"

/* How the ranks talk: supplied by the device code (engine/cuda-tp.cu: NCCL)
 * or by backend_tp_create_host (a host-memory sum, for CPU ranks). */
struct tp_comm {
	void *ctx;
	/* Makes rank r's device current before the wrapper calls rank r's ops
	 * (NULL: nothing to do). */
	void (*enter)(void *ctx, int rank);
	/* bufs[r] (count f32, rank r's memory) = the sum over all ranks, in
	 * place; enqueued on every rank (the ranks' own queues order it). */
	void (*all_reduce)(void *ctx, float *const *bufs, size_t count);
	void (*destroy)(void *ctx);
	/* 1: the ranks copy the weights in prepare_model, so host copies made
	 * for a rank's shard may be released once it returns */
	int weights_copied;
};

/* A backend over ranks[0..n) (n >= 2; their ops must not be graphs-capturing);
 * takes ownership of the ranks and of comm (destroyed with the backend, or
 * here on failure). */
int backend_tp_create(struct backend **ranks, int n, const struct tp_comm *comm,
    struct backend **out, struct llmd_err *e);
/* Ranks of be: n for a tensor-parallel backend, else 1. */
int backend_tp_size(const struct backend *be);
/* n CPU rank backends summed in host memory: the CPU emulation of the
 * CUDA+NCCL path, for tests (the serving command refuses TP on the CPU). */
int backend_tp_create_host(int n, int n_threads, struct backend **out, struct llmd_err *e);

/* The CUDA backend over n GPUs (devices 0..n-1 of CUDA_VISIBLE_DEVICES) with
 * an NCCL communicator (engine/cuda-tp.cu; builds with HAVE_CUDA and
 * HAVE_NCCL). -ENODEV with fewer than n usable GPUs. */
int backend_cuda_tp_create(int n, struct backend **out, struct llmd_err *e);

/* The single-GPU CUDA backend on device `device` (engine/backend-cuda.cu);
 * graphs: 0 turns decode-step CUDA graphs off (TP ranks: the all-reduces are
 * outside the rank backends' streams' captures). */
int backend_cuda_create_device(int device, int graphs, struct backend **out,
    struct llmd_err *e);
/* The cudaStream_t (as void *) and device of a backend made by the above. */
void *backend_cuda_stream(struct backend *be);
int backend_cuda_device(struct backend *be);

/* --device and --tensor-parallel-size: backend_create for tp <= 1; for tp > 1
 * the CUDA TP backend, or -ENOTSUP naming why not (CPU device, no CUDA or no
 * NCCL in this build). "auto" means cuda when tp > 1. */
int backend_create_tp(const char *device, int n_threads, int tp, struct backend **out,
    struct llmd_err *e);

#endif
