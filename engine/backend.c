/*
 * engine/backend.c - picks the compute backend for --device auto|cpu|cuda.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "engine/forward.h"

int
backend_create(const char *device, int n_threads, struct backend **out, struct llmd_err *e)
{
	/* auto stays the CPU: tests pin CPU-exact tolerances on it (docs/cuda.md) */
	if (device == NULL || strcmp(device, "auto") == 0 || strcmp(device, "cpu") == 0) {
		*out = backend_cpu_create(n_threads);
		return 0;
	}
	if (strcmp(device, "cuda") == 0) {
#ifdef HAVE_CUDA
		(void)n_threads;
		return backend_cuda_create(out, e);
#else
		return err_set(e, -ENOTSUP, "--device",
		    "cuda: this llmd-engine was built without CUDA (configure --with-cuda)");
#endif
	}
	return err_set(e, -EINVAL, "--device", "unknown device '%s' (auto, cpu, cuda)", device);
}

#ifndef HAVE_CUDA
int
backend_cuda_available(void)
{
	return 0;
}
#endif

void
backend_destroy(struct backend *be)
{
	if (be)
		be->ops->destroy(be);
}
