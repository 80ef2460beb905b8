/*
 * engine/scheduler.c - continuous batching: the request queues, the per-step
 * batch builder (decodes, chunked prefill, admission, recompute preemption),
 * applying sampled tokens and finishing requests, and the thread-safe inbox.
 * See engine/scheduler.h.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/scheduler.h"
#include "lib/log.h"
#include "lib/util.h"

enum req_state { REQ_QUEUED, REQ_WAITING, REQ_RUNNING, REQ_LOADING };

struct req {
	uint64_t id;
	void *user;
	enum req_state state;
	int32_t *tokens;            /* (n_tokens) prompt then outputs */
	uint32_t n_tokens, cap_tokens;
	uint32_t n_prompt;
	uint32_t n_output;
	uint32_t n_computed;        /* tokens whose KV is written */
	uint32_t prefill_len;       /* n_tokens when last admitted: below it is prefill */
	uint32_t max_tokens;        /* effective, >= 1 */
	uint32_t min_tokens;
	int32_t *stop;              /* (n_stop) */
	uint32_t n_stop;
	bool ignore_eos;
	bool hold;
	bool remote_kv;             /* prompt KV to be loaded from a remote prefill */
	bool abort_pending;         /* aborted while loading: free when the load ends */
	bool admitted;              /* admitted at least once (n_cached is set) */
	bool in_step;               /* scheduled in the batch being computed */
	uint32_t n_cached;
	struct blockmgr_seq seq;
	struct req *prev, *next;    /* waiting queue links */
};

enum op_kind { OP_ADD, OP_ABORT, OP_RELEASE, OP_KV_DONE };

struct op {
	enum op_kind kind;
	struct req *r;              /* OP_ADD */
	uint64_t id;                /* OP_ABORT, OP_KV_DONE */
	bool ok;                    /* OP_KV_DONE */
	int32_t *blocks;            /* OP_RELEASE */
	uint32_t n_blocks;
};

struct scheduler {
	struct sched_config cfg;
	struct blockmgr *bm;

	/* compute thread state */
	struct req **running;       /* (n_running) in admission order, oldest first */
	uint32_t n_running;
	struct req *wait_head, *wait_tail;
	uint32_t n_waiting;
	struct req **loading;       /* (n_loading) holding blocks, KV being loaded */
	uint32_t n_loading, cap_loading;
	uint32_t cap_loads;         /* of batch.loads */
	struct sched_batch batch;
	struct req **batch_req;     /* (max_num_seqs) the request of batch.seqs[i] */
	struct sched_output *outs;
	size_t n_outs, cap_outs;
	uint32_t budget;
	bool preempted;
	bool stalled;               /* waiting requests, but no blocks until an inbox op */
	struct sched_stats counters;   /* cumulative counters; gauges filled on publish */

	/* shared with other threads, under mu */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct op *inbox;
	size_t n_inbox, cap_inbox;
	uint32_t inbox_adds;
	uint64_t next_id;
	bool woken;
	bool snap_stalled;
	struct sched_stats snap;
};

const char *sched_finish_reason(enum sched_finish f)
{
	switch (f) {
	case SCHED_FINISH_STOP: return "stop";
	case SCHED_FINISH_LENGTH: return "length";
	case SCHED_FINISH_ABORT: return "abort";
	case SCHED_NOT_FINISHED: break;
	}
	return NULL;
}

/* ---- requests ---- */

static void req_free(struct req *r)
{
	if (!r)
		return;
	free(r->tokens);
	free(r->stop);
	blockmgr_seq_release(&r->seq);
	free(r);
}

static void req_append(struct req *r, int32_t tok)
{
	if (r->n_tokens == r->cap_tokens) {
		r->cap_tokens = r->cap_tokens ? 2 * r->cap_tokens : 16;
		r->tokens = xreallocarray(r->tokens, r->cap_tokens, sizeof(int32_t));
	}
	r->tokens[r->n_tokens++] = tok;
}

static void wait_unlink(struct scheduler *s, struct req *r)
{
	if (r->prev)
		r->prev->next = r->next;
	else
		s->wait_head = r->next;
	if (r->next)
		r->next->prev = r->prev;
	else
		s->wait_tail = r->prev;
	r->prev = r->next = NULL;
	s->n_waiting--;
}

static void wait_push_back(struct scheduler *s, struct req *r)
{
	r->state = REQ_WAITING;
	r->next = NULL;
	r->prev = s->wait_tail;
	if (s->wait_tail)
		s->wait_tail->next = r;
	else
		s->wait_head = r;
	s->wait_tail = r;
	s->n_waiting++;
}

static void wait_push_front(struct scheduler *s, struct req *r)
{
	r->state = REQ_WAITING;
	r->prev = NULL;
	r->next = s->wait_head;
	if (s->wait_head)
		s->wait_head->prev = r;
	else
		s->wait_tail = r;
	s->wait_head = r;
	s->n_waiting++;
}

static void running_remove(struct scheduler *s, struct req *r)
{
	for (uint32_t i = 0; i < s->n_running; i++) {
		if (s->running[i] != r)
			continue;
		memmove(&s->running[i], &s->running[i + 1],
		    (s->n_running - i - 1) * sizeof(*s->running));
		s->n_running--;
		return;
	}
}

static void loading_remove(struct scheduler *s, struct req *r)
{
	for (uint32_t i = 0; i < s->n_loading; i++) {
		if (s->loading[i] != r)
			continue;
		memmove(&s->loading[i], &s->loading[i + 1],
		    (s->n_loading - i - 1) * sizeof(*s->loading));
		s->n_loading--;
		return;
	}
}

static struct req *find_req(struct scheduler *s, uint64_t id)
{
	for (uint32_t i = 0; i < s->n_running; i++)
		if (s->running[i]->id == id)
			return s->running[i];
	for (uint32_t i = 0; i < s->n_loading; i++)
		if (s->loading[i]->id == id)
			return s->loading[i];
	for (struct req *r = s->wait_head; r; r = r->next)
		if (r->id == id)
			return r;
	return NULL;
}

static struct sched_output *out_push(struct scheduler *s, const struct req *r)
{
	if (s->n_outs == s->cap_outs) {
		s->cap_outs = s->cap_outs ? 2 * s->cap_outs : 64;
		s->outs = xreallocarray(s->outs, s->cap_outs, sizeof(*s->outs));
	}
	struct sched_output *o = &s->outs[s->n_outs++];
	memset(o, 0, sizeof(*o));
	o->req_id = r->id;
	o->user = r->user;
	o->token = -1;
	o->n_output = r->n_output;
	o->n_prompt = r->n_prompt;
	o->n_cached = r->n_cached;
	return o;
}

/* Removes r from its queue, frees its blocks and r. */
static void req_retire(struct scheduler *s, struct req *r, enum sched_finish why)
{
	if (r->state == REQ_RUNNING)
		running_remove(s, r);
	else if (r->state == REQ_WAITING)
		wait_unlink(s, r);
	blockmgr_free(s->bm, &r->seq);
	s->counters.finished[why]++;
	req_free(r);
}

/* ---- life cycle ---- */

int scheduler_new(const struct sched_config *cfg, struct scheduler **out, struct llmd_err *e)
{
	struct sched_config c = *cfg;

	*out = NULL;
	if (c.block_size == 0)
		c.block_size = BLOCKMGR_DEFAULT_BLOCK_SIZE;
	if (c.max_num_batched_tokens == 0)
		c.max_num_batched_tokens = 2048;
	if (c.max_num_seqs == 0)
		c.max_num_seqs = 256;
	if (c.max_num_waiting == 0)
		c.max_num_waiting = 1000;
	if (c.n_blocks == 0)
		return err_set(e, -EINVAL, "num_gpu_blocks", "the KV cache has no blocks");
	if (c.max_model_len == 0)
		return err_set(e, -EINVAL, "max_model_len", "must be > 0");
	if (c.max_num_batched_tokens > INT32_MAX / 2 || c.max_model_len > INT32_MAX / 2)
		return err_set(e, -EINVAL, "max_num_batched_tokens", "too large");
	if ((uint64_t)c.max_model_len > (uint64_t)c.n_blocks * c.block_size)
		return err_set(e, -EINVAL, "max_model_len",
		    "%u tokens do not fit the KV cache (%u blocks of %u tokens)",
		    c.max_model_len, c.n_blocks, c.block_size);
	if (c.max_num_batched_tokens < c.max_num_seqs)
		return err_set(e, -EINVAL, "max_num_batched_tokens",
		    "must be >= max_num_seqs (%u)", c.max_num_seqs);
	if (c.disable_chunked_prefill && c.max_num_batched_tokens < c.max_model_len)
		return err_set(e, -EINVAL, "max_num_batched_tokens",
		    "must be >= max_model_len (%u) without chunked prefill", c.max_model_len);

	struct blockmgr *bm = blockmgr_new(c.n_blocks, c.block_size, c.enable_prefix_caching);
	if (!bm)
		return err_set(e, -EINVAL, "num_gpu_blocks", "invalid KV cache geometry");

	struct scheduler *s = xcalloc(1, sizeof(*s));
	s->cfg = c;
	s->bm = bm;
	s->running = xcalloc(c.max_num_seqs, sizeof(*s->running));
	s->batch_req = xcalloc(c.max_num_seqs, sizeof(*s->batch_req));
	s->batch.token = xcalloc(c.max_num_batched_tokens, sizeof(int32_t));
	s->batch.pos = xcalloc(c.max_num_batched_tokens, sizeof(int32_t));
	s->batch.seq = xcalloc(c.max_num_batched_tokens, sizeof(int32_t));
	s->batch.slot = xcalloc(c.max_num_batched_tokens, sizeof(int32_t));
	s->batch.want_logits = xcalloc(c.max_num_batched_tokens, 1);
	s->batch.seqs = xcalloc(c.max_num_seqs, sizeof(*s->batch.seqs));
	s->batch.block_size = c.block_size;
	s->next_id = 1;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	s->counters.n_blocks = c.n_blocks;
	s->counters.block_size = c.block_size;
	s->snap = s->counters;
	*out = s;
	return 0;
}

void scheduler_free(struct scheduler *s)
{
	if (!s)
		return;
	for (uint32_t i = 0; i < s->n_running; i++)
		req_free(s->running[i]);
	for (struct req *r = s->wait_head, *n; r; r = n) {
		n = r->next;
		req_free(r);
	}
	for (uint32_t i = 0; i < s->n_loading; i++)
		req_free(s->loading[i]);
	free(s->loading);
	free(s->batch.loads);
	for (size_t i = 0; i < s->n_inbox; i++) {
		req_free(s->inbox[i].r);
		free(s->inbox[i].blocks);
	}
	free(s->inbox);
	free(s->running);
	free(s->batch_req);
	free(s->batch.token);
	free(s->batch.pos);
	free(s->batch.seq);
	free(s->batch.slot);
	free(s->batch.want_logits);
	free(s->batch.seqs);
	free(s->outs);
	blockmgr_destroy(s->bm);
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

struct blockmgr *scheduler_blockmgr(struct scheduler *s)
{
	return s->bm;
}

/* ---- inbox (any thread) ---- */

static void inbox_push(struct scheduler *s, const struct op *op)
{
	if (s->n_inbox == s->cap_inbox) {
		s->cap_inbox = s->cap_inbox ? 2 * s->cap_inbox : 16;
		s->inbox = xreallocarray(s->inbox, s->cap_inbox, sizeof(*s->inbox));
	}
	s->inbox[s->n_inbox++] = *op;
	pthread_cond_signal(&s->cv);
}

int scheduler_add_request(struct scheduler *s, const struct sched_request *rq, uint64_t *id,
    struct llmd_err *e)
{
	if (!rq->prompt || rq->n_prompt == 0)
		return err_set(e, -EINVAL, "prompt", "the prompt is empty");
	if (rq->n_prompt > s->cfg.max_model_len)
		return err_set(e, -E2BIG, "prompt",
		    "this model's maximum context length is %u tokens, the prompt has %u",
		    s->cfg.max_model_len, rq->n_prompt);

	struct req *r = xcalloc(1, sizeof(*r));
	r->user = rq->user;
	r->state = REQ_QUEUED;
	r->cap_tokens = rq->n_prompt + 16;
	r->tokens = xreallocarray(NULL, r->cap_tokens, sizeof(int32_t));
	memcpy(r->tokens, rq->prompt, rq->n_prompt * sizeof(int32_t));
	r->n_tokens = r->n_prompt = rq->n_prompt;
	uint32_t room = s->cfg.max_model_len - rq->n_prompt;
	r->max_tokens = rq->max_tokens == 0 || rq->max_tokens > room ? room : rq->max_tokens;
	if (r->max_tokens == 0)
		r->max_tokens = 1;   /* a full-length prompt still yields one token */
	r->min_tokens = rq->min_tokens;
	if (rq->n_stop) {
		r->stop = xreallocarray(NULL, rq->n_stop, sizeof(int32_t));
		memcpy(r->stop, rq->stop_token_ids, rq->n_stop * sizeof(int32_t));
		r->n_stop = rq->n_stop;
	}
	r->ignore_eos = rq->ignore_eos;
	r->hold = rq->hold_blocks_on_finish;
	r->remote_kv = rq->remote_prefill;
	blockmgr_seq_init(&r->seq, rq->cache_salt, rq->cache_salt_len);

	pthread_mutex_lock(&s->mu);
	if (s->snap.num_waiting + s->inbox_adds >= s->cfg.max_num_waiting) {
		pthread_mutex_unlock(&s->mu);
		req_free(r);
		return err_set(e, -EAGAIN, "", "the waiting queue is full (%u requests)",
		    s->cfg.max_num_waiting);
	}
	r->id = s->next_id++;
	/* r belongs to the compute thread once unlocked: it may finish and free it */
	if (id)
		*id = r->id;
	struct op op = { .kind = OP_ADD, .r = r };
	inbox_push(s, &op);
	s->inbox_adds++;
	pthread_mutex_unlock(&s->mu);
	return 0;
}

void scheduler_abort(struct scheduler *s, uint64_t id)
{
	struct op op = { .kind = OP_ABORT, .id = id };

	pthread_mutex_lock(&s->mu);
	inbox_push(s, &op);
	pthread_mutex_unlock(&s->mu);
}

void scheduler_release_held(struct scheduler *s, int32_t *blocks, uint32_t n)
{
	struct op op = { .kind = OP_RELEASE, .blocks = blocks, .n_blocks = n };

	if (!blocks)
		return;
	pthread_mutex_lock(&s->mu);
	inbox_push(s, &op);
	pthread_mutex_unlock(&s->mu);
}

void scheduler_remote_kv_done(struct scheduler *s, uint64_t id, bool ok)
{
	struct op op = { .kind = OP_KV_DONE, .id = id, .ok = ok };

	pthread_mutex_lock(&s->mu);
	inbox_push(s, &op);
	pthread_mutex_unlock(&s->mu);
}

void scheduler_wakeup(struct scheduler *s)
{
	pthread_mutex_lock(&s->mu);
	s->woken = true;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

/* Under mu. */
static bool has_work_locked(const struct scheduler *s)
{
	/* Waiting requests that did not fit need blocks that only an inbox op
	 * (release, load end, abort) frees: nothing to do until one comes. */
	return s->n_inbox > 0 || s->snap.num_running > 0 ||
	    (s->snap.num_waiting > s->snap.num_loading && !s->snap_stalled);
}

bool scheduler_has_work(struct scheduler *s)
{
	pthread_mutex_lock(&s->mu);
	bool w = has_work_locked(s);
	pthread_mutex_unlock(&s->mu);
	return w;
}

bool scheduler_wait(struct scheduler *s, int timeout_ms)
{
	struct timespec until;

	if (timeout_ms >= 0) {
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += timeout_ms / 1000;
		until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
	}
	pthread_mutex_lock(&s->mu);
	while (!has_work_locked(s) && !s->woken) {
		if (timeout_ms < 0)
			pthread_cond_wait(&s->cv, &s->mu);
		else if (pthread_cond_timedwait(&s->cv, &s->mu, &until) != 0)
			break;
	}
	s->woken = false;
	bool w = has_work_locked(s);
	pthread_mutex_unlock(&s->mu);
	return w;
}

/* Copies the counters and gauges for other threads. */
static void publish_stats(struct scheduler *s)
{
	struct blockmgr_stats bs;

	blockmgr_get_stats(s->bm, &bs);
	s->counters.num_running = s->n_running;
	s->counters.num_waiting = s->n_waiting + s->n_loading;
	s->counters.num_loading = s->n_loading;
	s->counters.kv_usage = bs.usage;
	s->counters.prefix_queries = bs.prefix_queries;
	s->counters.prefix_hits = bs.prefix_hits;
	pthread_mutex_lock(&s->mu);
	s->snap = s->counters;
	s->snap_stalled = s->stalled;
	pthread_mutex_unlock(&s->mu);
}

void scheduler_get_stats(struct scheduler *s, struct sched_stats *out)
{
	pthread_mutex_lock(&s->mu);
	*out = s->snap;
	out->num_waiting += s->inbox_adds;
	pthread_mutex_unlock(&s->mu);
}

/* A remote KV load ended: decode from the loaded prompt, or recompute it. */
static void kv_done(struct scheduler *s, uint64_t id, bool ok)
{
	struct req *r = NULL;

	for (uint32_t i = 0; i < s->n_loading; i++)
		if (s->loading[i]->id == id)
			r = s->loading[i];
	if (!r) {
		log_warnx("scheduler: KV load end for unknown request %llu", (unsigned long long)id);
		return;
	}
	loading_remove(s, r);
	r->remote_kv = false;
	if (r->abort_pending) {
		blockmgr_free(s->bm, &r->seq);
		req_free(r);
		return;
	}
	if (ok) {
		/* The last prompt token is computed again for its logits. */
		r->n_computed = r->n_tokens - 1;
		blockmgr_commit_full_blocks(s->bm, &r->seq, r->tokens, r->n_computed);
	} else {
		log_warnx("scheduler: KV load of request %llu failed, recomputing its prompt",
		    (unsigned long long)id);
		blockmgr_free(s->bm, &r->seq);
		r->n_computed = 0;
	}
	wait_push_front(s, r);
}

/* Applies queued adds, aborts, releases and KV load ends in arrival order. */
static void drain_inbox(struct scheduler *s)
{
	struct op *ops;
	size_t n;

	pthread_mutex_lock(&s->mu);
	ops = s->inbox;
	n = s->n_inbox;
	s->inbox = NULL;
	s->n_inbox = s->cap_inbox = 0;
	/* They wait now: keep them counted until the stats are published. */
	s->snap.num_waiting += s->inbox_adds;
	s->inbox_adds = 0;
	pthread_mutex_unlock(&s->mu);

	for (size_t i = 0; i < n; i++) {
		struct op *op = &ops[i];
		switch (op->kind) {
		case OP_ADD:
			wait_push_back(s, op->r);
			break;
		case OP_ABORT: {
			struct req *r = find_req(s, op->id);
			if (!r)
				break;
			if (r->abort_pending)
				break;
			struct sched_output *o = out_push(s, r);
			o->finish = SCHED_FINISH_ABORT;
			if (r->state == REQ_LOADING) {
				/* A transfer may still write its blocks: free them
				 * when the load reports its end. */
				r->abort_pending = true;
				s->counters.finished[SCHED_FINISH_ABORT]++;
				break;
			}
			req_retire(s, r, SCHED_FINISH_ABORT);
			break;
		}
		case OP_KV_DONE:
			kv_done(s, op->id, op->ok);
			break;
		case OP_RELEASE:
			blockmgr_release(s->bm, op->blocks, op->n_blocks);
			free(op->blocks);
			break;
		}
	}
	free(ops);
}

/* ---- building a step ---- */

static void batch_add(struct scheduler *s, struct req *r, uint32_t n_new)
{
	struct sched_batch *b = &s->batch;
	int idx = b->n_seq++;
	struct sched_seq *q = &b->seqs[idx];
	uint32_t bsz = s->cfg.block_size;

	s->batch_req[idx] = r;
	q->req_id = r->id;
	q->user = r->user;
	q->block_table = r->seq.blocks;
	q->n_blocks = (int)r->seq.n_blocks;
	q->tok_off = b->n_tok;
	q->n_tok = (int)n_new;
	q->pos0 = (int)r->n_computed;
	q->ctx_len = (int)(r->n_computed + n_new);
	q->want_logits = r->n_computed + n_new == r->n_tokens;
	q->is_prefill = r->n_computed < r->prefill_len;
	for (uint32_t j = 0; j < n_new; j++) {
		uint32_t p = r->n_computed + j;
		int t = b->n_tok++;
		b->token[t] = r->tokens[p];
		b->pos[t] = (int32_t)p;
		b->seq[t] = idx;
		b->slot[t] = r->seq.blocks[p / bsz] * (int32_t)bsz + (int32_t)(p % bsz);
		b->want_logits[t] = q->want_logits && j + 1 == n_new;
	}
	if (q->want_logits)
		b->n_logits++;
	if (!q->is_prefill)
		b->n_decode++;
	r->in_step = true;
	s->budget -= n_new;
}

/* Makes r's block table cover n_new tokens after those computed. */
static int reserve(struct scheduler *s, struct req *r, uint32_t n_new)
{
	uint32_t want = r->n_computed + n_new;

	if (r->seq.n_tokens >= want)
		return 0;
	return blockmgr_allocate(s->bm, &r->seq, want - r->seq.n_tokens);
}

static void preempt(struct scheduler *s, struct req *r)
{
	running_remove(s, r);
	blockmgr_free(s->bm, &r->seq);
	r->n_computed = 0;
	wait_push_front(s, r);
	s->counters.num_preemptions++;
	s->batch.n_preempted++;
	s->preempted = true;
	log_debug("scheduler: preempted request %llu (%u tokens to recompute)",
	    (unsigned long long)r->id, r->n_tokens);
}

/*
 * Schedules n_new tokens of running request r, preempting the newest running
 * requests not yet in this step while blocks are short. Returns false when r
 * itself had to be preempted.
 */
static bool schedule_running(struct scheduler *s, struct req *r, uint32_t n_new)
{
	while (reserve(s, r, n_new) != 0) {
		struct req *victim = NULL;
		for (uint32_t i = s->n_running; i > 0; i--) {
			if (!s->running[i - 1]->in_step) {
				victim = s->running[i - 1];
				break;
			}
		}
		if (!victim || victim == r) {
			preempt(s, r);
			return false;
		}
		preempt(s, victim);
	}
	batch_add(s, r, n_new);
	return true;
}

/* Lists r's blocks for the caller to fill from the remote prefill. */
static void batch_add_load(struct scheduler *s, struct req *r, uint32_t hit)
{
	struct sched_batch *b = &s->batch;

	if ((uint32_t)b->n_loads == s->cap_loads) {
		s->cap_loads = s->cap_loads ? 2 * s->cap_loads : 8;
		b->loads = xreallocarray(b->loads, s->cap_loads, sizeof(*b->loads));
	}
	struct sched_kv_load *l = &b->loads[b->n_loads++];
	l->req_id = r->id;
	l->user = r->user;
	l->block_table = r->seq.blocks;
	l->n_blocks = (int)r->seq.n_blocks;
	l->first_block = (int)(hit / s->cfg.block_size);
	l->n_tokens = (int)r->n_tokens;
}

/*
 * Finds r's cached prefix and reserves blocks for its first chunk (or, to
 * load remotely, for all of it). Returns the cached token count or -errno.
 */
static int admit_blocks(struct scheduler *s, struct req *r)
{
	int rc = 0;

	for (int attempt = 0; attempt < 2; attempt++) {
		uint32_t hit = blockmgr_match_prefix(s->bm, &r->seq, r->tokens, r->n_tokens);
		uint32_t n_new = r->n_tokens - hit;

		r->n_computed = hit;
		if (!r->remote_kv) {
			if (s->cfg.disable_chunked_prefill && n_new > s->budget)
				rc = -EAGAIN;
			n_new = MIN(n_new, s->budget);
		}
		if (rc == 0)
			rc = blockmgr_allocate(s->bm, &r->seq, n_new);
		if (rc == 0)
			return (int)hit;
		blockmgr_free(s->bm, &r->seq);
		r->n_computed = 0;
		if (rc != -ESTALE)
			break;
	}
	return rc;
}

/* Moves waiting requests to running while budget, seats and blocks allow. */
static void admit_waiting(struct scheduler *s)
{
	while (s->wait_head && s->budget > 0 && s->n_running < s->cfg.max_num_seqs) {
		struct req *r = s->wait_head;
		uint32_t hit;

		if (r->seq.n_blocks > 0) {
			/* Its prompt KV was loaded: only the last token is left. */
			hit = r->n_computed;
			if (reserve(s, r, r->n_tokens - r->n_computed) != 0)
				return;
		} else {
			int rc = admit_blocks(s, r);
			if (rc < 0)
				return;
			hit = (uint32_t)rc;
		}
		wait_unlink(s, r);
		if (!r->admitted) {
			r->admitted = true;
			r->n_cached = hit;
		}
		if (r->remote_kv) {
			r->state = REQ_LOADING;
			if (s->n_loading == s->cap_loading) {
				s->cap_loading = s->cap_loading ? 2 * s->cap_loading : 8;
				s->loading = xreallocarray(s->loading, s->cap_loading,
				    sizeof(*s->loading));
			}
			s->loading[s->n_loading++] = r;
			batch_add_load(s, r, hit);
			continue;
		}
		r->state = REQ_RUNNING;
		s->running[s->n_running++] = r;
		r->prefill_len = r->n_tokens;
		batch_add(s, r, MIN(r->n_tokens - r->n_computed, s->budget));
	}
}

const struct sched_batch *scheduler_schedule(struct scheduler *s)
{
	struct sched_batch *b = &s->batch;

	s->n_outs = 0;
	b->step = ++s->counters.steps;
	b->n_tok = b->n_seq = b->n_logits = b->n_decode = b->n_preempted = b->n_loads = 0;
	s->budget = s->cfg.max_num_batched_tokens;
	s->preempted = false;
	drain_inbox(s);
	for (uint32_t i = 0; i < s->n_running; i++)
		s->running[i]->in_step = false;

	/* 1. decodes, oldest first */
	bool full = false;
	for (uint32_t i = 0; i < s->n_running && s->budget > 0; i++) {
		struct req *r = s->running[i];
		if (r->n_computed < r->prefill_len)
			continue;
		if (!schedule_running(s, r, 1)) {
			full = true;   /* it preempted itself: nothing newer is left */
			break;
		}
	}
	/* 2. running requests in chunked prefill */
	for (uint32_t i = 0; !full && i < s->n_running && s->budget > 0;) {
		struct req *r = s->running[i];
		if (r->in_step || r->n_computed >= r->prefill_len) {
			i++;
			continue;
		}
		if (!schedule_running(s, r, MIN(r->n_tokens - r->n_computed, s->budget)))
			break;
		i++;
	}
	/* 3. new (and preempted) requests, unless this step had to preempt */
	if (!s->preempted)
		admit_waiting(s);

	s->stalled = b->n_tok == 0 && b->n_loads == 0 && s->n_waiting > 0;
	publish_stats(s);
	return b;
}

/* ---- applying a step ---- */

static enum sched_finish check_finish(const struct scheduler *s, const struct req *r, int32_t tok)
{
	if (!r->ignore_eos && r->n_output >= r->min_tokens) {
		for (uint32_t i = 0; i < r->n_stop; i++)
			if (r->stop[i] == tok)
				return SCHED_FINISH_STOP;
	}
	if (r->n_output >= r->max_tokens || r->n_tokens >= s->cfg.max_model_len)
		return SCHED_FINISH_LENGTH;
	return SCHED_NOT_FINISHED;
}

int scheduler_update(struct scheduler *s, const struct sched_batch *b, const int32_t *sampled,
    const struct sched_output **out, size_t *n_out)
{
	if (b != &s->batch)
		return -EINVAL;
	/* No samples for a step that needs them: it failed, nothing advances. */
	bool failed = b->n_logits > 0 && !sampled;
	for (int i = 0; i < b->n_seq; i++) {
		struct req *r = s->batch_req[i];
		const struct sched_seq *q = &b->seqs[i];

		s->batch_req[i] = NULL;
		if (!r || !r->in_step)
			continue;   /* finished in between */
		r->in_step = false;
		if (failed)
			continue;
		r->n_computed += (uint32_t)q->n_tok;
		blockmgr_commit_full_blocks(s->bm, &r->seq, r->tokens, r->n_computed);
		if (!q->want_logits)
			continue;

		int32_t tok = sampled[i];
		req_append(r, tok);
		r->n_output++;
		s->counters.generation_tokens++;
		if (r->n_output == 1)
			s->counters.prompt_tokens += r->n_prompt;

		struct sched_output *o = out_push(s, r);
		o->token = tok;
		o->finish = check_finish(s, r, tok);
		if (o->finish == SCHED_NOT_FINISHED)
			continue;
		if (r->hold && o->finish == SCHED_FINISH_LENGTH &&
		    blockmgr_hold(s->bm, &r->seq, &o->held_blocks, &o->n_held) != 0)
			o->n_held = 0;
		req_retire(s, r, o->finish);
	}
	publish_stats(s);
	*out = s->outs;
	*n_out = s->n_outs;
	return 0;
}

int scheduler_finish(struct scheduler *s, uint64_t id, enum sched_finish reason)
{
	struct req *r = find_req(s, id);

	if (!r || r->abort_pending)
		return -ENOENT;
	if (r->in_step)
		return -EBUSY;
	if (reason == SCHED_NOT_FINISHED)
		reason = SCHED_FINISH_STOP;
	if (r->state == REQ_LOADING) {
		/* A transfer may still write its blocks: free them when it ends. */
		r->abort_pending = true;
		s->counters.finished[reason]++;
		return 0;
	}
	req_retire(s, r, reason);
	s->stalled = false;   /* blocks were freed */
	publish_stats(s);
	return 0;
}

int scheduler_request_tokens(struct scheduler *s, uint64_t id, const int32_t **tokens,
    uint32_t *n_tokens, uint32_t *n_computed)
{
	struct req *r = find_req(s, id);

	if (!r)
		return -ENOENT;
	*tokens = r->tokens;
	*n_tokens = r->n_tokens;
	*n_computed = r->n_computed;
	return 0;
}
