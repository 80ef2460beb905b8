/*
 * tests/unit/test-workpool.c - jobs run on workers, done callbacks on the
 * loop thread, the queue limit, draining on free, and workpool_run's
 * inline fallback.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>

#include <event2/event.h>

#include "lib/workpool.h"

struct count {
	pthread_t loop;
	atomic_int worked;
	int done;
	int done_off_loop;
	int work_on_loop;
	int n;
	struct event_base *base;
};

static void
count_work(void *arg)
{
	struct count *c = arg;

	if (pthread_equal(pthread_self(), c->loop))
		c->work_on_loop++;
	atomic_fetch_add(&c->worked, 1);
}

static void
count_done(void *arg)
{
	struct count *c = arg;

	if (!pthread_equal(pthread_self(), c->loop))
		c->done_off_loop++;
	if (++c->done == c->n)
		event_base_loopbreak(c->base);
}

Test(workpool, thousand_jobs_done_on_loop_thread)
{
	struct count c = { .loop = pthread_self(), .n = 1000 };
	struct workpool *wp;

	c.base = event_base_new();
	wp = workpool_new(c.base, 4, 0);
	cr_assert_not_null(wp);
	for (int i = 0; i < c.n; i++)
		cr_assert_eq(workpool_submit(wp, count_work, count_done, &c), 0);
	event_base_dispatch(c.base);
	cr_assert_eq(c.done, 1000);
	cr_assert_eq(atomic_load(&c.worked), 1000);
	cr_assert_eq(c.done_off_loop, 0);
	cr_assert_eq(c.work_on_loop, 0);
	cr_assert_eq(workpool_pending(wp), 0);
	workpool_free(wp);
	event_base_free(c.base);
}

struct gate {
	sem_t started, release;
	int done;
};

static void
gate_work(void *arg)
{
	struct gate *g = arg;

	sem_post(&g->started);
	sem_wait(&g->release);
}

static void
noop_work(void *arg)
{
	(void)arg;
}

static void
gate_done(void *arg)
{
	((struct gate *)arg)->done++;
}

Test(workpool, queue_limit_and_drain_on_free)
{
	struct event_base *base = event_base_new();
	struct workpool *wp = workpool_new(base, 1, 3);
	struct gate g = { .done = 0 };

	sem_init(&g.started, 0, 0);
	sem_init(&g.release, 0, 0);
	cr_assert_eq(workpool_submit(wp, gate_work, gate_done, &g), 0);
	sem_wait(&g.started);  /* the only worker is now busy */
	for (int i = 0; i < 3; i++)
		cr_assert_eq(workpool_submit(wp, noop_work, gate_done, &g), 0);
	cr_assert_eq(workpool_queued(wp), 3);
	cr_assert_eq(workpool_submit(wp, noop_work, gate_done, &g), -EAGAIN);
	cr_assert_eq(workpool_pending(wp), 4);
	sem_post(&g.release);
	/* free drains: the queued jobs run and their done callbacks too */
	workpool_free(wp);
	cr_assert_eq(g.done, 4);
	event_base_free(base);
}

/* workpool_run: queued when the pool takes it, else work and done at once */
Test(workpool, run_falls_back_to_inline)
{
	struct event_base *base = event_base_new();
	struct workpool *wp = workpool_new(base, 1, 1);
	struct gate g = { .done = 0 };

	cr_assert_eq(workpool_run(NULL, noop_work, gate_done, &g), 0);
	cr_assert_eq(g.done, 1, "no pool: done ran before workpool_run returned");
	sem_init(&g.started, 0, 0);
	sem_init(&g.release, 0, 0);
	cr_assert_eq(workpool_run(wp, gate_work, gate_done, &g), 1);
	sem_wait(&g.started);
	cr_assert_eq(workpool_run(wp, noop_work, gate_done, &g), 1);   /* the one queue slot */
	cr_assert_eq(g.done, 1, "queued jobs' done callbacks wait for the loop");
	cr_assert_eq(workpool_run(wp, noop_work, gate_done, &g), 0);   /* full: inline */
	cr_assert_eq(g.done, 2);
	sem_post(&g.release);
	workpool_free(wp);
	cr_assert_eq(g.done, 4);
	event_base_free(base);
}

Test(workpool, bad_arguments)
{
	struct event_base *base = event_base_new();
	struct workpool *wp;

	cr_assert_null(workpool_new(base, 0, 0));
	cr_assert_eq(errno, EINVAL);
	wp = workpool_new(base, 1, 0);
	cr_assert_eq(workpool_submit(wp, NULL, NULL, NULL), -EINVAL);
	workpool_free(wp);
	workpool_free(NULL);
	event_base_free(base);
}
