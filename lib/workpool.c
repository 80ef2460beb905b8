/*
 * lib/workpool.c - worker threads with completions delivered to a libevent
 * loop through an eventfd (see workpool.h).
 */
#include "config.h"
#include "lib/workpool.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <event2/event.h>

#include "lib/log.h"
#include "lib/util.h"

struct job {
	struct job *next;
	workpool_fn work, done;
	void *arg;
};

struct jobq {
	struct job *head, *tail;
	size_t len;
};

struct workpool {
	struct event_base *base;
	struct event *ev;
	int efd;
	pthread_mutex_t mu;
	pthread_cond_t cv;      /* workers wait for jobs */
	struct jobq todo;       /* waiting for a worker */
	struct jobq finished;   /* waiting for done() on the loop */
	size_t max_queue;
	size_t pending;         /* submitted, done() not yet run */
	int stopping;
	int nthreads;
	pthread_t *threads;
};

static void
jobq_push(struct jobq *q, struct job *j)
{
	j->next = NULL;
	if (q->tail != NULL)
		q->tail->next = j;
	else
		q->head = j;
	q->tail = j;
	q->len++;
}

static struct job *
jobq_pop(struct jobq *q)
{
	struct job *j = q->head;

	if (j != NULL) {
		q->head = j->next;
		if (q->head == NULL)
			q->tail = NULL;
		q->len--;
	}
	return j;
}

static void
wake_loop(struct workpool *wp)
{
	uint64_t one = 1;

	while (write(wp->efd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
}

static void *
worker_main(void *arg)
{
	struct workpool *wp = arg;

	pthread_mutex_lock(&wp->mu);
	for (;;) {
		struct job *j;

		while (wp->todo.head == NULL && !wp->stopping)
			pthread_cond_wait(&wp->cv, &wp->mu);
		if ((j = jobq_pop(&wp->todo)) == NULL)
			break;  /* stopping and drained */
		pthread_mutex_unlock(&wp->mu);
		j->work(j->arg);
		pthread_mutex_lock(&wp->mu);
		jobq_push(&wp->finished, j);
		if (wp->finished.len == 1)
			wake_loop(wp);
	}
	pthread_mutex_unlock(&wp->mu);
	return NULL;
}

/* Runs the done callbacks of finished jobs; on the loop thread. */
static void
run_finished(struct workpool *wp)
{
	struct jobq q;

	pthread_mutex_lock(&wp->mu);
	q = wp->finished;
	wp->finished = (struct jobq){ 0 };
	pthread_mutex_unlock(&wp->mu);
	while (q.head != NULL) {
		struct job *j = jobq_pop(&q);
		if (j->done != NULL)
			j->done(j->arg);
		free(j);
		pthread_mutex_lock(&wp->mu);
		wp->pending--;
		pthread_mutex_unlock(&wp->mu);
	}
}

static void
on_eventfd(evutil_socket_t fd, short what, void *arg)
{
	uint64_t n;

	(void)what;
	while (read(fd, &n, sizeof(n)) < 0 && errno == EINTR)
		;
	run_finished(arg);
}

struct workpool *
workpool_new(struct event_base *base, int nthreads, size_t max_queue)
{
	struct workpool *wp;

	if (base == NULL || nthreads < 1) {
		errno = EINVAL;
		return NULL;
	}
	wp = xcalloc(1, sizeof(*wp));
	wp->base = base;
	wp->max_queue = max_queue;
	wp->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (wp->efd < 0) {
		int saved = errno;
		free(wp);
		errno = saved;
		return NULL;
	}
	wp->ev = event_new(base, wp->efd, EV_READ | EV_PERSIST, on_eventfd, wp);
	if (wp->ev == NULL || event_add(wp->ev, NULL) < 0)
		fatalx("workpool: cannot add the eventfd event");
	pthread_mutex_init(&wp->mu, NULL);
	pthread_cond_init(&wp->cv, NULL);
	wp->threads = xcalloc((size_t)nthreads, sizeof(*wp->threads));
	for (int i = 0; i < nthreads; i++) {
		int rc = pthread_create(&wp->threads[i], NULL, worker_main, wp);
		if (rc != 0) {
			wp->nthreads = i;
			workpool_free(wp);
			errno = rc;
			return NULL;
		}
	}
	wp->nthreads = nthreads;
	return wp;
}

int
workpool_submit(struct workpool *wp, workpool_fn work, workpool_fn done, void *arg)
{
	struct job *j;

	if (work == NULL)
		return -EINVAL;
	j = xmalloc(sizeof(*j));
	j->work = work;
	j->done = done;
	j->arg = arg;
	pthread_mutex_lock(&wp->mu);
	if (wp->stopping || (wp->max_queue != 0 && wp->todo.len >= wp->max_queue)) {
		int rc = wp->stopping ? -ESHUTDOWN : -EAGAIN;
		pthread_mutex_unlock(&wp->mu);
		free(j);
		return rc;
	}
	jobq_push(&wp->todo, j);
	wp->pending++;
	pthread_cond_signal(&wp->cv);
	pthread_mutex_unlock(&wp->mu);
	return 0;
}

int
workpool_run(struct workpool *wp, workpool_fn work, workpool_fn done, void *arg)
{
	if (wp != NULL && workpool_submit(wp, work, done, arg) == 0)
		return 1;
	work(arg);
	if (done != NULL)
		done(arg);
	return 0;
}

size_t
workpool_queued(struct workpool *wp)
{
	size_t n;

	pthread_mutex_lock(&wp->mu);
	n = wp->todo.len;
	pthread_mutex_unlock(&wp->mu);
	return n;
}

size_t
workpool_pending(struct workpool *wp)
{
	size_t n;

	pthread_mutex_lock(&wp->mu);
	n = wp->pending;
	pthread_mutex_unlock(&wp->mu);
	return n;
}

void
workpool_free(struct workpool *wp)
{
	if (wp == NULL)
		return;
	pthread_mutex_lock(&wp->mu);
	wp->stopping = 1;
	pthread_cond_broadcast(&wp->cv);
	pthread_mutex_unlock(&wp->mu);
	for (int i = 0; i < wp->nthreads; i++)
		pthread_join(wp->threads[i], NULL);
	run_finished(wp);
	event_free(wp->ev);
	close(wp->efd);
	pthread_mutex_destroy(&wp->mu);
	pthread_cond_destroy(&wp->cv);
	free(wp->threads);
	free(wp);
}
