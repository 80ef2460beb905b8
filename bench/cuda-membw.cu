/*
 * bench/cuda-membw.cu - device memory read bandwidth, the ceiling of batch-1
 * decode: a grid-stride kernel reads a buffer much larger than L2 with 16-byte
 * loads and folds it into one value per thread (so the loads cannot be
 * dropped). Prints one JSON line {"gpu","bytes","read_GBps"} (best of 20).
 * Built and run by bench/engine-cuda on the GPU machine:
 *   nvcc -O3 -arch=native bench/cuda-membw.cu -o cuda-membw && ./cuda-membw [GiB]
 */
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>

#define CUDA_CHECK(call) do {                                                   \
	cudaError_t rc_ = (call);                                               \
	if (rc_ != cudaSuccess) {                                               \
		fprintf(stderr, "cuda-membw: %s at %s:%d: %s\n",                \
		    cudaGetErrorName(rc_), __FILE__, __LINE__, #call);          \
		exit(1);                                                        \
	}                                                                       \
} while (0)

__global__ void
read_kernel(const float4 *p, size_t n, float *sink)
{
	float acc = 0.0f;
	for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
	    i += (size_t)gridDim.x * blockDim.x) {
		float4 v = __ldcs(p + i);       /* streaming: do not keep in L2 */
		acc += v.x + v.y + v.z + v.w;
	}
	if (acc == 12345.678f)          /* never true for the zeroed buffer; keeps the loads */
		*sink = acc;
}

int
main(int argc, char **argv)
{
	double gib = argc > 1 ? atof(argv[1]) : 4.0;
	size_t bytes = (size_t)(gib * (1u << 30)) / 16 * 16, n = bytes / 16;
	cudaDeviceProp prop;
	float4 *buf;
	float *sink;
	CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
	CUDA_CHECK(cudaMalloc(&buf, bytes));
	CUDA_CHECK(cudaMalloc(&sink, sizeof(float)));
	CUDA_CHECK(cudaMemset(buf, 0, bytes));
	int blocks = prop.multiProcessorCount * 8;
	cudaEvent_t a, b;
	CUDA_CHECK(cudaEventCreate(&a));
	CUDA_CHECK(cudaEventCreate(&b));
	read_kernel<<<blocks, 512>>>(buf, n, sink);     /* warm up */
	CUDA_CHECK(cudaGetLastError());
	CUDA_CHECK(cudaDeviceSynchronize());
	float best = 1e30f;
	for (int it = 0; it < 20; it++) {
		CUDA_CHECK(cudaEventRecord(a));
		read_kernel<<<blocks, 512>>>(buf, n, sink);
		CUDA_CHECK(cudaEventRecord(b));
		CUDA_CHECK(cudaEventSynchronize(b));
		float ms;
		CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
		if (ms < best)
			best = ms;
	}
	printf("{\"gpu\":\"%s\",\"bytes\":%zu,\"read_GBps\":%.1f}\n", prop.name, bytes,
	    (double)bytes / (best / 1e3) / 1e9);
	CUDA_CHECK(cudaFree(buf));
	CUDA_CHECK(cudaFree(sink));
	return 0;
}
