/*
 * bench/membw.c - streaming read bandwidth of main memory: the ceiling that
 * batch-1 decode on the CPU backend is measured against (bench/engine-cpu).
 *
 *   membw [-s SIZE] [-t THREADS] [-p PASSES]
 *
 * Fills a SIZE buffer (default 2GiB, far beyond the caches), then times
 * PASSES full reads split across THREADS threads (default 2) and prints the
 * best pass as "membw: read N.NN GB/s ..." (GB = 1e9 bytes). The read loop
 * uses 256-bit loads where the CPU has AVX2 (selected at run time).
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/util.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_X86 1
#else
#define HAVE_X86 0
#endif

struct slice {
	const uint64_t *p;
	size_t n;               /* uint64 words, a multiple of 16 */
	uint64_t sum;
	int fill;
	pthread_barrier_t *bar;
	int passes;
	uint64_t *pass_us;      /* per pass, filled by thread 0 */
};

#if HAVE_X86
__attribute__((target("avx2"))) static uint64_t
read_avx2(const uint64_t *p, size_t n)
{
	__m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;

	for (size_t i = 0; i < n; i += 16) {
		a0 = _mm256_xor_si256(a0, _mm256_load_si256((const __m256i *)(p + i)));
		a1 = _mm256_xor_si256(a1, _mm256_load_si256((const __m256i *)(p + i + 4)));
		a2 = _mm256_xor_si256(a2, _mm256_load_si256((const __m256i *)(p + i + 8)));
		a3 = _mm256_xor_si256(a3, _mm256_load_si256((const __m256i *)(p + i + 12)));
	}
	a0 = _mm256_xor_si256(_mm256_xor_si256(a0, a1), _mm256_xor_si256(a2, a3));
	uint64_t out[4];
	_mm256_storeu_si256((__m256i *)out, a0);
	return out[0] ^ out[1] ^ out[2] ^ out[3];
}
#endif

static uint64_t
read_plain(const uint64_t *p, size_t n)
{
	uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;

	for (size_t i = 0; i < n; i += 4) {
		a0 ^= p[i];
		a1 ^= p[i + 1];
		a2 ^= p[i + 2];
		a3 ^= p[i + 3];
	}
	return a0 ^ a1 ^ a2 ^ a3;
}

static uint64_t
read_words(const uint64_t *p, size_t n)
{
#if HAVE_X86
	if (__builtin_cpu_supports("avx2"))
		return read_avx2(p, n);
#endif
	return read_plain(p, n);
}

static void *
worker(void *arg)
{
	struct slice *s = arg;

	/* first touch by the thread that reads it (NUMA locality) */
	uint64_t *w = (uint64_t *)s->p;
	for (size_t i = 0; i < s->n; i++)
		w[i] = i * 0x9e3779b97f4a7c15ull;
	for (int pass = 0; pass < s->passes; pass++) {
		pthread_barrier_wait(s->bar);
		uint64_t t0 = now_us();
		s->sum ^= read_words(s->p, s->n);
		pthread_barrier_wait(s->bar);
		if (s->pass_us != NULL)
			s->pass_us[pass] = now_us() - t0;
	}
	return NULL;
}

int
main(int argc, char **argv)
{
	uint64_t size = 2ull << 30;
	long threads = 2, passes = 5;
	int c;

	log_init("membw", LOG_LVL_INFO);
	while ((c = getopt(argc, argv, "s:t:p:")) != -1) {
		switch (c) {
		case 's':
			if (parse_size(optarg, &size) < 0 || size < (1u << 20))
				fatalx("bad size %s", optarg);
			break;
		case 't':
			if (parse_long(optarg, 1, 256, &threads) < 0)
				fatalx("bad thread count %s", optarg);
			break;
		case 'p':
			if (parse_long(optarg, 1, 1000, &passes) < 0)
				fatalx("bad pass count %s", optarg);
			break;
		default:
			fprintf(stderr, "usage: membw [-s SIZE] [-t THREADS] [-p PASSES]\n");
			return 2;
		}
	}
	size_t words = size / 8 / 16 / (size_t)threads * 16 * (size_t)threads;
	uint64_t *buf;
	int rc = posix_memalign((void **)&buf, 2u << 20, words * 8);
	if (rc != 0) {
		errno = rc;
		fatal("posix_memalign %zu bytes", words * 8);
	}
	pthread_barrier_t bar;
	pthread_barrier_init(&bar, NULL, (unsigned)threads);
	struct slice *sl = xcalloc((size_t)threads, sizeof(*sl));
	pthread_t *th = xcalloc((size_t)threads, sizeof(*th));
	uint64_t *pass_us = xcalloc((size_t)passes, sizeof(*pass_us));
	size_t per = words / (size_t)threads;
	for (long i = 0; i < threads; i++) {
		sl[i] = (struct slice){ .p = buf + (size_t)i * per, .n = per, .bar = &bar,
			.passes = (int)passes, .pass_us = i == 0 ? pass_us : NULL };
		if (i > 0 && (rc = pthread_create(&th[i], NULL, worker, &sl[i])) != 0) {
			errno = rc;
			fatal("pthread_create");
		}
	}
	worker(&sl[0]);
	uint64_t sum = sl[0].sum;
	for (long i = 1; i < threads; i++) {
		pthread_join(th[i], NULL);
		sum ^= sl[i].sum;
	}
	uint64_t best = UINT64_MAX;
	for (long p = 0; p < passes; p++)
		best = MIN(best, pass_us[p]);
	double gbs = (double)(words * 8) / ((double)best * 1e3);
	printf("membw: read %.2f GB/s (threads %ld, buffer %zu MiB, best of %ld passes, check %llx)\n",
	    gbs, threads, words * 8 >> 20, passes, (unsigned long long)(sum & 0xff));
	free(pass_us);
	free(th);
	free(sl);
	free(buf);
	pthread_barrier_destroy(&bar);
	return 0;
}
