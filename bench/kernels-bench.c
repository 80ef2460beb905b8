/*
 * bench/kernels-bench.c - the CPU matmul kernels alone, on the weight
 * matrices of a Llama-shaped model (default: Qwen2.5-0.5B shapes with the
 * Qwen3 tokenizer's 151669-token vocabulary in BF16,
 * about 1 GB): decode (n_tok 1) over every matrix in layer order, reported as
 * weight GB/s, and a prompt batch (n_tok tokens) over one layer, reported as
 * GFLOP/s and tokens/s.
 *
 *   kernels-bench [-L layers] [-H hidden] [-I intermediate] [-q q_dim]
 *                 [-k kv_dim] [-V vocab] [-t threads] [-n prompt_tokens]
 *                 [-d f32|f16|bf16] [-r decode_rounds] [-m FILE]
 *
 * -m FILE carves the weights out of FILE mmapped read-only (e.g. a
 * model.safetensors at least as large), as the engine reads them, instead
 * of anonymous memory.
 * LLMD_KERNELS_ISA=scalar|avx2-f16c|avx512 forces a path.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/kernels.h"
#include "engine/tensor.h"
#include "lib/log.h"
#include "lib/util.h"

static struct tensor
make_matrix(enum dtype dt, int64_t d, int64_t k, uint64_t *seed)
{
	size_t n = (size_t)(d * k);
	uint16_t *h = NULL;
	float *f = NULL;

	if (dt == DT_F32)
		f = xmalloc(n * 4);
	else
		h = xmalloc(n * 2);
	for (size_t i = 0; i < n; i++) {
		*seed = *seed * 6364136223846793005ull + 1442695040888963407ull;
		float v = (float)((int64_t)(*seed >> 40) - (1 << 23)) * 0x1p-30f;
		if (dt == DT_F32)
			f[i] = v;
		else
			h[i] = dt == DT_BF16 ? f32_to_bf16(v) : f32_to_f16(v);
	}
	return (struct tensor){ .dtype = dt, .ndim = 2, .shape = { d, k },
		.data = dt == DT_F32 ? (const void *)f : (const void *)h };
}

int
main(int argc, char **argv)
{
	long layers = 24, hidden = 896, inter = 4864, qdim = 896, kvdim = 128, vocab = 151669;
	long threads = 2, ntok = 128, rounds = 5;
	enum dtype dt = DT_BF16;
	const char *map_path = NULL;
	int c;

	log_init("kernels-bench", LOG_LVL_INFO);
	while ((c = getopt(argc, argv, "L:H:I:q:k:V:t:n:d:r:m:")) != -1) {
		long *dst = NULL;
		switch (c) {
		case 'L': dst = &layers; break;
		case 'H': dst = &hidden; break;
		case 'I': dst = &inter; break;
		case 'q': dst = &qdim; break;
		case 'k': dst = &kvdim; break;
		case 'V': dst = &vocab; break;
		case 't': dst = &threads; break;
		case 'n': dst = &ntok; break;
		case 'r': dst = &rounds; break;
		case 'm':
			map_path = optarg;
			break;
		case 'd':
			dt = strcmp(optarg, "f32") == 0 ? DT_F32 : strcmp(optarg, "f16") == 0 ? DT_F16 : DT_BF16;
			break;
		default:
			fprintf(stderr, "usage: see bench/kernels-bench.c\n");
			return 2;
		}
		if (dst != NULL && parse_long(optarg, 1, 1L << 30, dst) < 0)
			fatalx("bad -%c %s", c, optarg);
	}

	/* per layer: q, k, v, o, gate, up, down; then the LM head */
	int per = 7;
	int nm = (int)layers * per + 1;
	struct tensor *m = xcalloc((size_t)nm, sizeof(*m));
	uint64_t seed = 1;
	size_t bytes = 0;
	int64_t maxd = vocab;
	for (long l = 0; l < layers; l++) {
		struct tensor *t = m + l * per;
		t[0] = make_matrix(dt, qdim, hidden, &seed);
		t[1] = make_matrix(dt, kvdim, hidden, &seed);
		t[2] = make_matrix(dt, kvdim, hidden, &seed);
		t[3] = make_matrix(dt, hidden, qdim, &seed);
		t[4] = make_matrix(dt, inter, hidden, &seed);
		t[5] = make_matrix(dt, inter, hidden, &seed);
		t[6] = make_matrix(dt, hidden, inter, &seed);
	}
	m[nm - 1] = make_matrix(dt, vocab, hidden, &seed);
	int64_t maxk = MAX(MAX(hidden, inter), qdim);
	for (int i = 0; i < nm; i++)
		bytes += (size_t)(m[i].shape[0] * m[i].shape[1]) * dtype_size(dt);
	if (map_path != NULL) {
		int fd = open(map_path, O_RDONLY);
		struct stat st;
		if (fd < 0 || fstat(fd, &st) < 0)
			fatal("%s", map_path);
		if ((size_t)st.st_size < bytes + 4096)
			fatalx("%s: %zu bytes, need %zu", map_path, (size_t)st.st_size, bytes + 4096);
		const char *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (map == MAP_FAILED)
			fatal("mmap %s", map_path);
		close(fd);
		size_t off = 4096;      /* past a header, 2-byte aligned like tensor data */
		for (int i = 0; i < nm; i++) {
			free((void *)m[i].data);
			m[i].data = map + off;
			off += (size_t)(m[i].shape[0] * m[i].shape[1]) * dtype_size(dt);
		}
		/* the values are the file's bytes: only the timing means anything */
	}

	struct threadpool *tp = threadpool_create((int)threads);
	float *x = xmalloc((size_t)(ntok * maxk) * sizeof(float));
	float *out = xmalloc((size_t)(ntok * MAX(maxd, maxk)) * sizeof(float));
	for (int64_t i = 0; i < ntok * maxk; i++)
		x[i] = (float)((i * 7919) % 1000) * 1e-3f - 0.5f;

	printf("kernels-bench: isa %s, dtype %s, threads %d, %d matrices, %.1f MB of weights%s%s\n",
	    kernels_isa(), dtype_name(dt), threadpool_size(tp), nm, (double)bytes / 1e6,
	    map_path ? " mmapped from " : "", map_path ? map_path : "");

	uint64_t best = UINT64_MAX, total = 0;
	for (long r = 0; r < rounds; r++) {
		uint64_t t0 = now_us();
		for (int i = 0; i < nm; i++)
			matmul_wt(tp, out, x, &m[i], 1);
		uint64_t t = now_us() - t0;
		best = MIN(best, t);
		total += t;
	}
	printf("decode  n_tok 1: %.2f ms per token, %.2f GB/s of weights (best of %ld; mean %.2f GB/s)\n",
	    (double)best / 1e3, (double)bytes / ((double)best * 1e3), rounds,
	    (double)bytes * (double)rounds / ((double)total * 1e3));

	/* prompt batch over the first layer's matrices */
	size_t layer_params = 0;
	for (int i = 0; i < per && i < nm - 1; i++)
		layer_params += (size_t)(m[i].shape[0] * m[i].shape[1]);
	best = UINT64_MAX;
	for (int r = 0; r < 3; r++) {
		uint64_t t0 = now_us();
		for (int i = 0; i < per && i < nm - 1; i++)
			matmul_wt(tp, out, x, &m[i], (int)ntok);
		best = MIN(best, now_us() - t0);
	}
	double flops = 2.0 * (double)layer_params * (double)ntok;
	printf("prompt  n_tok %ld: %.2f ms per layer, %.1f GFLOP/s, %.0f tok/s per layer\n", ntok,
	    (double)best / 1e3, flops / ((double)best * 1e3), (double)ntok / ((double)best / 1e6));
	threadpool_destroy(tp);
	if (map_path == NULL)
		for (int i = 0; i < nm; i++)
			free((void *)m[i].data);
	free(m);
	free(x);
	free(out);
	return 0;
}
