/*
 * engine/threadpool.c - the persistent worker pool the kernels run on.
 *
 * threadpool_create(n) starts n - 1 worker threads; the thread calling
 * threadpool_run() is the n-th and works too. A run publishes a job (fn, arg,
 * n) under a generation number; workers hand out indices with an atomic
 * counter so that every index in [0, n) runs exactly once, and the caller
 * returns when all n are done.
 *
 * Decode calls are short (0.1-1 ms) and come back to back, so idle workers
 * spin for a short while (TP_SPIN_US) before they sleep on a condition
 * variable; the caller only takes the mutex to wake sleepers.
 *
 * The generation is even while a job is published and odd while the caller
 * rewrites the job; a worker announces itself in `inside` before it reads
 * the job, and the caller waits for `inside` to drain before rewriting it.
 * Callers of threadpool_run() on one pool are serialized (run_mu); fn must
 * not call threadpool_run() on the same pool.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "engine/kernels.h"
#include "lib/log.h"
#include "lib/util.h"

#define TP_SPIN_US 200

struct threadpool {
	int size;                       /* workers + the calling thread */
	pthread_t *threads;
	pthread_mutex_t run_mu;         /* one job at a time */
	pthread_mutex_t mu;             /* sleepers wait on cv under it */
	pthread_cond_t cv;

	/* the job; written only while gen is odd and inside == 0 */
	void (*fn)(void *arg, int i, int n);
	void *arg;
	int n;

	_Atomic uint64_t gen;
	atomic_int next;                /* next index to hand out */
	atomic_int done;                /* indices finished */
	atomic_int inside;              /* workers reading the job */
	atomic_int sleepers;
	atomic_bool stop;
};

static inline void
cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

/* Runs indices of the published job until none are left. */
static void
tp_work(struct threadpool *tp, void (*fn)(void *, int, int), void *arg, int n)
{
	for (;;) {
		int i = atomic_fetch_add_explicit(&tp->next, 1, memory_order_relaxed);
		if (i >= n)
			return;
		fn(arg, i, n);
		atomic_fetch_add_explicit(&tp->done, 1, memory_order_release);
	}
}

/* Waits until gen differs from seen and is even (or stop); returns it. */
static uint64_t
tp_wait_job(struct threadpool *tp, uint64_t seen)
{
	uint64_t start = now_us();
	unsigned iter = 0;

	for (;;) {
		uint64_t g = atomic_load_explicit(&tp->gen, memory_order_acquire);
		if ((g != seen && !(g & 1)) || atomic_load_explicit(&tp->stop, memory_order_relaxed))
			return g;
		cpu_relax();
		if ((++iter & 63) == 0 && now_us() - start > TP_SPIN_US)
			break;
	}
	pthread_mutex_lock(&tp->mu);
	atomic_fetch_add(&tp->sleepers, 1);
	uint64_t g;
	for (;;) {
		g = atomic_load(&tp->gen);
		if ((g != seen && !(g & 1)) || atomic_load(&tp->stop))
			break;
		pthread_cond_wait(&tp->cv, &tp->mu);
	}
	atomic_fetch_sub(&tp->sleepers, 1);
	pthread_mutex_unlock(&tp->mu);
	return g;
}

static void *
tp_main(void *p)
{
	struct threadpool *tp = p;
	uint64_t seen = 0;

	for (;;) {
		uint64_t g = tp_wait_job(tp, seen);
		if (atomic_load(&tp->stop))
			return NULL;
		atomic_fetch_add(&tp->inside, 1);
		/* re-check after announcing: the caller may be rewriting the job */
		g = atomic_load(&tp->gen);
		if (g != seen && !(g & 1)) {
			tp_work(tp, tp->fn, tp->arg, tp->n);
			seen = g;
		}
		atomic_fetch_sub_explicit(&tp->inside, 1, memory_order_release);
	}
}

struct threadpool *
threadpool_create(int n)
{
	if (n <= 0) {
		long c = sysconf(_SC_NPROCESSORS_ONLN);
		n = c > 0 ? (int)c : 1;
	}
	struct threadpool *tp = xcalloc(1, sizeof(*tp));
	tp->size = n;
	pthread_mutex_init(&tp->run_mu, NULL);
	pthread_mutex_init(&tp->mu, NULL);
	pthread_cond_init(&tp->cv, NULL);
	atomic_init(&tp->gen, 0);
	atomic_init(&tp->next, 0);
	atomic_init(&tp->done, 0);
	atomic_init(&tp->inside, 0);
	atomic_init(&tp->sleepers, 0);
	atomic_init(&tp->stop, false);
	tp->threads = xcalloc((size_t)n, sizeof(*tp->threads));
	for (int i = 0; i < n - 1; i++) {
		int rc = pthread_create(&tp->threads[i], NULL, tp_main, tp);
		if (rc != 0) {
			errno = rc;
			log_warn("threadpool: pthread_create");
			tp->size = i + 1;
			break;
		}
	}
	return tp;
}

void
threadpool_destroy(struct threadpool *tp)
{
	if (tp == NULL)
		return;
	pthread_mutex_lock(&tp->mu);
	atomic_store(&tp->stop, true);
	pthread_cond_broadcast(&tp->cv);
	pthread_mutex_unlock(&tp->mu);
	for (int i = 0; i < tp->size - 1; i++)
		pthread_join(tp->threads[i], NULL);
	pthread_cond_destroy(&tp->cv);
	pthread_mutex_destroy(&tp->mu);
	pthread_mutex_destroy(&tp->run_mu);
	free(tp->threads);
	free(tp);
}

int
threadpool_size(const struct threadpool *tp)
{
	return tp ? tp->size : 1;
}

void
threadpool_run(struct threadpool *tp, void (*fn)(void *arg, int i, int n), void *arg, int n)
{
	if (n <= 0)
		return;
	if (tp == NULL || tp->size <= 1 || n == 1) {
		for (int i = 0; i < n; i++)
			fn(arg, i, n);
		return;
	}
	pthread_mutex_lock(&tp->run_mu);
	/* close the previous job and wait for late workers to leave it */
	uint64_t g = atomic_load_explicit(&tp->gen, memory_order_relaxed);
	atomic_store(&tp->gen, g + 1);
	unsigned iter = 0;
	while (atomic_load(&tp->inside) != 0) {
		cpu_relax();
		if ((++iter & 1023) == 0)
			sched_yield();
	}
	tp->fn = fn;
	tp->arg = arg;
	tp->n = n;
	atomic_store_explicit(&tp->next, 0, memory_order_relaxed);
	atomic_store_explicit(&tp->done, 0, memory_order_relaxed);
	atomic_store(&tp->gen, g + 2);
	if (atomic_load(&tp->sleepers) > 0) {
		pthread_mutex_lock(&tp->mu);
		pthread_cond_broadcast(&tp->cv);
		pthread_mutex_unlock(&tp->mu);
	}

	tp_work(tp, fn, arg, n);
	iter = 0;
	while (atomic_load_explicit(&tp->done, memory_order_acquire) != n) {
		cpu_relax();
		if ((++iter & 1023) == 0)
			sched_yield();
	}
	pthread_mutex_unlock(&tp->run_mu);
}
