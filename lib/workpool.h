/*
 * lib/workpool.h - a small pool of worker threads for blocking work (SQLite,
 * disk, downloads, compute) whose completion callbacks run on the thread of
 * a libevent event loop.
 *
 * work(arg) runs on a worker thread; done(arg) then runs on the thread that
 * runs event_base_dispatch(base), in completion order, where it may touch
 * loop-owned state (reply to an HTTP request, update the store cache).
 * The pool wakes the loop through an eventfd; the base needs no
 * evthread_use_pthreads().
 */
#ifndef LLMD_WORKPOOL_H
#define LLMD_WORKPOOL_H

#include <stddef.h>

struct event_base;
struct workpool;

typedef void (*workpool_fn)(void *arg);

/*
 * nthreads workers (>= 1); at most max_queue jobs waiting for a worker
 * (0: unlimited). Returns NULL with errno set on failure.
 */
struct workpool *workpool_new(struct event_base *base, int nthreads, size_t max_queue);
/*
 * Queues work (required) and done (may be NULL). Callable from any thread.
 * -EAGAIN when max_queue jobs are already waiting, -ESHUTDOWN after
 * workpool_free() began.
 */
int workpool_submit(struct workpool *wp, workpool_fn work, workpool_fn done, void *arg);
/*
 * workpool_submit(), or, when wp is NULL or refuses the job (full, shutting
 * down), work(arg) then done(arg) at once on the calling thread (call it
 * from the loop thread). 1 when queued, 0 when it ran inline.
 */
int workpool_run(struct workpool *wp, workpool_fn work, workpool_fn done, void *arg);
/* Jobs waiting for a worker, and jobs submitted but whose done has not run. */
size_t workpool_queued(struct workpool *wp);
size_t workpool_pending(struct workpool *wp);
/*
 * Drains: every queued job still runs, then the remaining done callbacks run
 * on the calling thread (call it from the loop thread, or after the loop
 * ended), then the workers are joined and the pool freed. NULL is a no-op.
 */
void workpool_free(struct workpool *wp);

#endif
