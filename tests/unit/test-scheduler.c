/*
 * tests/unit/test-scheduler.c - continuous batching: token budget, chunked
 * prefill beside running decodes, max_num_seqs, recompute preemption, abort,
 * max_model_len, stop tokens, held blocks and the thread-safe inbox.
 *
 * A fake model drives the scheduler: every step is checked against a shadow
 * copy of each request (the batch must carry exactly the request's tokens at
 * their positions, contiguous from what is already computed, with slots from
 * its block table). A fake KV cache stores, per slot, a hash of the context
 * up to that position; before sampling, every position a sequence attends to
 * must hold its own context's hash, so a block table pointing at a wrong,
 * evicted or overwritten block (prefix caching, preemption, sharing) fails.
 * The sampled token is a hash of the whole context.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "engine/scheduler.h"
#include "lib/util.h"

#define MAXTOK 1100
#define MAXREQ 64

struct shadow {
	uint64_t id;
	int32_t tok[MAXTOK];
	uint32_t n;           /* prompt + outputs */
	uint32_t h[MAXTOK];   /* h[p]: hash of tok[0..p] */
	uint32_t n_h;
	uint32_t computed;    /* positions the model has seen */
	uint32_t n_out;
	enum sched_finish finish;
	int32_t *held;
	uint32_t n_held;
};

struct sim {
	struct scheduler *s;
	struct shadow r[MAXREQ];
	int n;
	uint32_t *kv;         /* (n_blocks * block_size) fake KV: context hash per slot */
	uint32_t n_slots;
	/* last step */
	const struct sched_batch *b;
	int n_outputs;
};

/* Hash of r's tokens [0..p]. */
static uint32_t ctx_hash(struct shadow *r, uint32_t p)
{
	cr_assert(p < r->n);
	for (; r->n_h <= p; r->n_h++) {
		uint32_t h = r->n_h ? r->h[r->n_h - 1] : 2166136261u;
		r->h[r->n_h] = (h ^ (uint32_t)r->tok[r->n_h]) * 16777619u;
	}
	return r->h[p];
}

static int32_t fake_model(struct shadow *r, uint32_t ctx_len)
{
	return (int32_t)(1000 + ctx_hash(r, ctx_len - 1) % 30000);   /* never a stop token */
}

static uint32_t slot_of(const int32_t *table, int n_blocks, uint32_t bs, uint32_t p)
{
	cr_assert(p / bs < (uint32_t)n_blocks);
	return (uint32_t)table[p / bs] * bs + p % bs;
}

static struct shadow *find(struct sim *m, uint64_t id)
{
	for (int i = 0; i < m->n; i++)
		if (m->r[i].id == id)
			return &m->r[i];
	cr_assert_fail("unknown request %llu", (unsigned long long)id);
	return NULL;
}

static void sim_new(struct sim *m, const struct sched_config *cfg)
{
	struct llmd_err e = LLMD_ERR_INIT;

	memset(m, 0, sizeof(*m));
	cr_assert_eq(scheduler_new(cfg, &m->s, &e), 0, "%s", e.msg);
	m->n_slots = cfg->n_blocks * (cfg->block_size ? cfg->block_size : 16);
	m->kv = calloc(m->n_slots, sizeof(uint32_t));
}

static void sim_free(struct sim *m)
{
	cr_assert_eq(blockmgr_check(scheduler_blockmgr(m->s)), 0);
	scheduler_free(m->s);
	free(m->kv);
}

static struct shadow *sim_add(struct sim *m, uint32_t n_prompt, int32_t base, uint32_t max_tokens)
{
	struct shadow *r = &m->r[m->n++];
	struct sched_request rq = { 0 };

	for (uint32_t i = 0; i < n_prompt; i++)
		r->tok[i] = base + (int32_t)i;
	r->n = n_prompt;
	rq.prompt = r->tok;
	rq.n_prompt = n_prompt;
	rq.max_tokens = max_tokens;
	cr_assert_eq(scheduler_add_request(m->s, &rq, &r->id, NULL), 0);
	return r;
}

/* One schedule -> fake forward -> update, checking the batch. */
static void sim_step(struct sim *m)
{
	const struct sched_batch *b = scheduler_schedule(m->s);
	int32_t sampled[256];
	int tok_total = 0;

	m->b = b;
	cr_assert(b->n_seq <= 256);
	for (int i = 0; i < b->n_seq; i++) {
		const struct sched_seq *q = &b->seqs[i];
		struct shadow *r = find(m, q->req_id);

		cr_assert_eq(q->tok_off, tok_total, "seq tokens are contiguous in the batch");
		tok_total += q->n_tok;
		cr_assert(q->n_tok > 0);
		/* Positions are never skipped, except whole blocks of a prefix-cache hit. */
		cr_assert((uint32_t)q->pos0 <= r->computed ||
		    (q->pos0 % (int)b->block_size == 0 && (uint32_t)q->pos0 < r->n),
		    "no position skipped");
		cr_assert_eq(q->ctx_len, q->pos0 + q->n_tok);
		cr_assert((uint32_t)q->ctx_len <= r->n);
		cr_assert(q->n_blocks * (int)b->block_size >= q->ctx_len);
		for (int j = 0; j < q->n_tok; j++) {
			int t = q->tok_off + j;
			int p = q->pos0 + j;
			cr_assert_eq(b->token[t], r->tok[p], "token at pos %d", p);
			cr_assert_eq(b->pos[t], p);
			cr_assert_eq(b->seq[t], i);
			cr_assert_eq(b->slot[t], q->block_table[p / (int)b->block_size] *
			    (int)b->block_size + p % (int)b->block_size);
			cr_assert_eq(b->want_logits[t], q->want_logits && j == q->n_tok - 1);
		}
		cr_assert_eq(q->want_logits, (uint32_t)q->ctx_len == r->n);
		r->computed = (uint32_t)q->ctx_len;
		for (int j = 0; j < q->n_tok; j++) {   /* "kv_store" */
			uint32_t slot = (uint32_t)b->slot[q->tok_off + j];
			cr_assert(slot < m->n_slots);
			m->kv[slot] = ctx_hash(r, (uint32_t)(q->pos0 + j));
		}
	}
	cr_assert_eq(tok_total, b->n_tok);
	/* "attention": every position of every sequence reads its own context */
	for (int i = 0; i < b->n_seq; i++) {
		const struct sched_seq *q = &b->seqs[i];
		struct shadow *r = find(m, q->req_id);
		for (uint32_t p = 0; p < (uint32_t)q->ctx_len; p++)
			cr_assert_eq(m->kv[slot_of(q->block_table, q->n_blocks, b->block_size, p)],
			    ctx_hash(r, p), "request %llu reads wrong KV at position %u",
			    (unsigned long long)q->req_id, p);
		sampled[i] = q->want_logits ? fake_model(r, r->n) : -1;
	}
	/* remote KV loads complete (content-correct) at once; the test says when */
	for (int i = 0; i < b->n_loads; i++) {
		const struct sched_kv_load *l = &b->loads[i];
		struct shadow *r = find(m, l->req_id);
		for (uint32_t p = (uint32_t)l->first_block * b->block_size; p < (uint32_t)l->n_tokens; p++)
			m->kv[slot_of(l->block_table, l->n_blocks, b->block_size, p)] = ctx_hash(r, p);
	}

	const struct sched_output *out;
	size_t n_out;
	cr_assert_eq(scheduler_update(m->s, b, sampled, &out, &n_out), 0);
	m->n_outputs = (int)n_out;
	cr_assert_eq(blockmgr_check(scheduler_blockmgr(m->s)), 0);
	for (size_t k = 0; k < n_out; k++) {
		struct shadow *r = find(m, out[k].req_id);
		cr_assert_eq(r->finish, SCHED_NOT_FINISHED, "no output after finish");
		if (out[k].token >= 0) {
			cr_assert(r->n < MAXTOK);
			r->tok[r->n++] = out[k].token;
			r->n_out++;
			cr_assert_eq(out[k].n_output, r->n_out);
		}
		r->finish = out[k].finish;
		if (out[k].held_blocks) {
			r->held = out[k].held_blocks;
			r->n_held = out[k].n_held;
		}
	}
}

static int sim_run(struct sim *m, int max_steps)
{
	int steps = 0;

	while (scheduler_has_work(m->s) && steps < max_steps) {
		sim_step(m);
		steps++;
	}
	cr_assert_not(scheduler_has_work(m->s), "all requests finish");
	return steps;
}

static struct sched_config cfg_default(void)
{
	struct sched_config c = {
		.n_blocks = 256, .block_size = 16, .enable_prefix_caching = true,
		.max_num_batched_tokens = 256, .max_num_seqs = 16, .max_model_len = 2048,
	};
	return c;
}

Test(scheduler, config_is_validated)
{
	struct scheduler *s;
	struct llmd_err e = LLMD_ERR_INIT;
	struct sched_config c = cfg_default();

	c.max_model_len = 256 * 16 + 1;
	cr_assert_eq(scheduler_new(&c, &s, &e), -EINVAL);
	cr_assert_str_eq(e.field, "max_model_len");
	c = cfg_default();
	c.max_num_batched_tokens = 8;
	cr_assert_eq(scheduler_new(&c, &s, &e), -EINVAL);
	c = cfg_default();
	c.max_model_len = 0;
	cr_assert_eq(scheduler_new(&c, &s, &e), -EINVAL);
}

Test(scheduler, token_budget_and_outputs)
{
	struct sim m;
	struct sched_config c = cfg_default();

	c.max_num_batched_tokens = 64;
	sim_new(&m, &c);
	for (int i = 0; i < 5; i++)
		sim_add(&m, 50, 100 * i, 5);
	int steps = 0;
	while (scheduler_has_work(m.s) && steps < 100) {
		sim_step(&m);
		cr_assert(m.b->n_tok <= 64, "step %d has %d tokens", steps, m.b->n_tok);
		steps++;
	}
	cr_assert_not(scheduler_has_work(m.s));
	/* 250 prompt tokens at 64 a step need at least 4 steps; then decodes. */
	cr_assert(steps >= 8);
	for (int i = 0; i < 5; i++) {
		cr_assert_eq(m.r[i].n_out, 5);
		cr_assert_eq(m.r[i].finish, SCHED_FINISH_LENGTH);
	}
	struct sched_stats st;
	scheduler_get_stats(m.s, &st);
	cr_assert_eq(st.generation_tokens, 25);
	cr_assert_eq(st.prompt_tokens, 250);
	cr_assert_eq(st.finished[SCHED_FINISH_LENGTH], 5);
	cr_assert_eq(st.num_running, 0);
	cr_assert_float_eq(st.kv_usage, 0.0, 1e-9);
	sim_free(&m);
}

Test(scheduler, chunked_prefill_does_not_stall_a_decode)
{
	struct sim m;
	struct sched_config c = cfg_default();

	c.max_num_batched_tokens = 128;
	sim_new(&m, &c);
	struct shadow *d = sim_add(&m, 10, 1, 200);
	sim_step(&m);
	cr_assert_eq(d->n_out, 1, "short prompt prefilled in one step");

	struct shadow *p = sim_add(&m, 1000, 5000, 3);
	int prefill_steps = 0;
	while (p->n_out == 0) {
		uint32_t d_before = d->n_out;
		sim_step(&m);
		const struct sched_batch *b = m.b;
		cr_assert_eq(b->n_seq, 2);
		cr_assert_eq(b->seqs[0].req_id, d->id, "the decode comes first");
		cr_assert_eq(b->seqs[0].n_tok, 1);
		cr_assert_not(b->seqs[0].is_prefill);
		cr_assert_eq(d->n_out, d_before + 1, "the decode advanced this step");
		cr_assert_eq(b->seqs[1].req_id, p->id);
		cr_assert(b->seqs[1].is_prefill);
		cr_assert_eq(b->seqs[1].pos0, 127 * prefill_steps);
		cr_assert_eq(b->n_tok, b->seqs[1].n_tok + 1);
		cr_assert(b->n_tok <= 128);
		prefill_steps++;
		cr_assert(prefill_steps < 20);
	}
	cr_assert_eq(prefill_steps, 8, "1000 tokens at 127 a step");   /* ceil(1000/127) */
	cr_assert_eq(m.r[1].computed, 1000);
	scheduler_abort(m.s, d->id);
	sim_run(&m, 20);
	cr_assert_eq(p->n_out, 3);
	cr_assert_eq(d->finish, SCHED_FINISH_ABORT);
	sim_free(&m);
}

Test(scheduler, max_num_seqs_bounds_the_batch)
{
	struct sim m;
	struct sched_config c = cfg_default();

	c.max_num_seqs = 2;
	sim_new(&m, &c);
	for (int i = 0; i < 4; i++)
		sim_add(&m, 8, 10 * i, 3);
	sim_step(&m);
	cr_assert_eq(m.b->n_seq, 2);
	struct sched_stats st;
	scheduler_get_stats(m.s, &st);
	cr_assert_eq(st.num_running, 2);
	cr_assert_eq(st.num_waiting, 2);
	int steps = 1;
	while (scheduler_has_work(m.s)) {
		sim_step(&m);
		cr_assert(m.b->n_seq <= 2);
		steps++;
	}
	cr_assert_eq(steps, 6, "two waves of 3 steps");
	for (int i = 0; i < 4; i++)
		cr_assert_eq(m.r[i].n_out, 3);
	sim_free(&m);
}

/* Runs two long generations in a pool too small for both. */
static void run_pair(bool caching, uint32_t n_blocks, int32_t out_a[], int32_t out_b[],
    uint64_t *preemptions, uint64_t *hits)
{
	struct sim m;
	struct sched_config c = cfg_default();

	c.n_blocks = n_blocks;
	c.block_size = 4;
	c.max_model_len = 40;
	c.enable_prefix_caching = caching;
	sim_new(&m, &c);
	struct shadow *a = sim_add(&m, 9, 1, 24);
	struct shadow *b = sim_add(&m, 9, 50, 24);
	sim_run(&m, 500);
	cr_assert_eq(a->n_out, 24);
	cr_assert_eq(b->n_out, 24);
	memcpy(out_a, a->tok, sizeof(int32_t) * a->n);
	memcpy(out_b, b->tok, sizeof(int32_t) * b->n);
	struct sched_stats st;
	scheduler_get_stats(m.s, &st);
	*preemptions = st.num_preemptions;
	*hits = st.prefix_hits;
	cr_assert_float_eq(st.kv_usage, 0.0, 1e-9);
	sim_free(&m);
}

Test(scheduler, preemption_recomputes_the_same_sequence)
{
	int32_t ra[64], rb[64], pa[64], pb[64], qa[64], qb[64];
	uint64_t pre, hits;

	run_pair(true, 64, ra, rb, &pre, &hits);       /* room for both */
	cr_assert_eq(pre, 0);
	/* 12 blocks = 48 slots; both need 33 tokens' KV (9 + 24) */
	run_pair(false, 12, pa, pb, &pre, &hits);
	cr_assert(pre >= 1, "the pool forced a preemption");
	cr_assert_eq(hits, 0);
	cr_assert_arr_eq(pa, ra, sizeof(int32_t) * 33);
	cr_assert_arr_eq(pb, rb, sizeof(int32_t) * 33);
	/* With prefix caching the resumed request re-uses its own blocks. */
	run_pair(true, 12, qa, qb, &pre, &hits);
	cr_assert(pre >= 1);
	cr_assert(hits > 0, "the recompute hit the prefix cache");
	cr_assert_arr_eq(qa, ra, sizeof(int32_t) * 33);
	cr_assert_arr_eq(qb, rb, sizeof(int32_t) * 33);
}

Test(scheduler, preempts_the_newest_and_requeues_it_first)
{
	struct sim m;
	struct sched_config c = cfg_default();

	c.n_blocks = 6;
	c.block_size = 4;
	c.max_model_len = 24;
	c.enable_prefix_caching = false;
	sim_new(&m, &c);
	struct shadow *a = sim_add(&m, 8, 1, 16);
	struct shadow *b = sim_add(&m, 8, 100, 16);
	sim_step(&m);   /* both prefilled: 2 + 2 blocks, plus 1 token each */
	cr_assert_eq(a->n_out, 1);
	cr_assert_eq(b->n_out, 1);
	/* Decodes: each needs a third block, then a's 4th forces b out. */
	struct sched_stats st;
	int guard = 0;
	do {
		sim_step(&m);
		scheduler_get_stats(m.s, &st);
	} while (st.num_preemptions == 0 && ++guard < 20);
	cr_assert_eq(st.num_preemptions, 1);
	cr_assert_eq(m.b->n_preempted, 1);
	cr_assert_eq(st.num_running, 1);
	cr_assert_eq(st.num_waiting, 1);
	cr_assert_eq(m.b->n_seq, 1);
	cr_assert_eq(m.b->seqs[0].req_id, a->id, "the older request keeps running");

	const int32_t *toks;
	uint32_t n, computed;
	cr_assert_eq(scheduler_request_tokens(m.s, b->id, &toks, &n, &computed), 0);
	cr_assert_eq(computed, 0, "preempted: KV dropped");
	cr_assert_eq(n, b->n, "outputs kept, appended to the prompt");
	cr_assert_arr_eq(toks, b->tok, n * sizeof(int32_t));
	sim_run(&m, 200);
	cr_assert_eq(a->n_out, 16);
	cr_assert_eq(b->n_out, 16);
	sim_free(&m);
}

Test(scheduler, abort_frees_blocks)
{
	struct sim m;
	struct sched_config c = cfg_default();

	c.max_num_batched_tokens = 32;
	sim_new(&m, &c);
	struct shadow *a = sim_add(&m, 40, 1, 100);
	struct shadow *w = sim_add(&m, 10, 500, 100);
	sim_step(&m);
	sim_step(&m);
	struct sched_stats st;
	scheduler_get_stats(m.s, &st);
	cr_assert(st.kv_usage > 0);
	scheduler_abort(m.s, a->id);
	scheduler_abort(m.s, w->id);
	scheduler_abort(m.s, 12345);   /* unknown: ignored */
	sim_step(&m);
	cr_assert_eq(m.b->n_tok, 0);
	cr_assert_eq(m.n_outputs, 2);
	cr_assert_eq(a->finish, SCHED_FINISH_ABORT);
	cr_assert_eq(w->finish, SCHED_FINISH_ABORT);
	cr_assert_not(scheduler_has_work(m.s));
	scheduler_get_stats(m.s, &st);
	cr_assert_float_eq(st.kv_usage, 0.0, 1e-9);
	cr_assert_eq(st.finished[SCHED_FINISH_ABORT], 2);
	struct blockmgr_stats bs;
	blockmgr_get_stats(scheduler_blockmgr(m.s), &bs);
	cr_assert_eq(bs.n_used, 0);
	cr_assert(bs.n_cached_free >= 2, "computed full blocks stay cached");
	cr_assert_eq(scheduler_finish(m.s, a->id, SCHED_FINISH_STOP), -ENOENT);
	sim_free(&m);
}

Test(scheduler, max_model_len_is_enforced)
{
	struct sim m;
	struct sched_config c = cfg_default();
	struct llmd_err e = LLMD_ERR_INIT;

	c.max_model_len = 32;
	sim_new(&m, &c);
	int32_t big[33] = { 0 };
	struct sched_request rq = { .prompt = big, .n_prompt = 33 };
	uint64_t id;
	cr_assert_eq(scheduler_add_request(m.s, &rq, &id, &e), -E2BIG);
	cr_assert_str_eq(e.field, "prompt");
	rq.n_prompt = 0;
	cr_assert_eq(scheduler_add_request(m.s, &rq, &id, &e), -EINVAL);

	struct shadow *a = sim_add(&m, 30, 1, 0);     /* no max_tokens */
	struct shadow *b = sim_add(&m, 20, 1, 100);   /* asks for too many */
	struct shadow *f = sim_add(&m, 32, 1, 5);     /* full-length prompt */
	sim_run(&m, 100);
	cr_assert_eq(a->n_out, 2);
	cr_assert_eq(a->finish, SCHED_FINISH_LENGTH);
	cr_assert_eq(b->n_out, 12);
	cr_assert_eq(b->finish, SCHED_FINISH_LENGTH);
	cr_assert_eq(f->n_out, 1);
	cr_assert(a->computed <= 32 && b->computed <= 32 && f->computed <= 32);
	sim_free(&m);
}

Test(scheduler, stop_tokens_and_min_tokens)
{
	struct sim m;
	struct sched_config c = cfg_default();

	sim_new(&m, &c);
	/* Learn what the fake model samples first, then make it a stop token. */
	struct shadow *probe = sim_add(&m, 5, 1, 3);
	sim_run(&m, 10);
	int32_t second = probe->tok[6];

	struct shadow *r = &m.r[m.n++];
	for (int i = 0; i < 5; i++)
		r->tok[i] = 1 + i;
	r->n = 5;
	struct sched_request rq = { .prompt = r->tok, .n_prompt = 5, .max_tokens = 10,
		.stop_token_ids = &second, .n_stop = 1 };
	cr_assert_eq(scheduler_add_request(m.s, &rq, &r->id, NULL), 0);
	sim_run(&m, 20);
	cr_assert_eq(r->n_out, 2);
	cr_assert_eq(r->finish, SCHED_FINISH_STOP);

	/* min_tokens 3 ignores it; ignore_eos too. */
	struct shadow *r2 = &m.r[m.n++];
	memcpy(r2->tok, r->tok, 5 * sizeof(int32_t));
	r2->n = 5;
	rq.prompt = r2->tok;
	rq.min_tokens = 3;
	cr_assert_eq(scheduler_add_request(m.s, &rq, &r2->id, NULL), 0);
	sim_run(&m, 20);
	cr_assert_eq(r2->n_out, 10);
	cr_assert_eq(r2->finish, SCHED_FINISH_LENGTH);
	sim_free(&m);
}

Test(scheduler, waiting_queue_is_bounded)
{
	struct sim m;
	struct sched_config c = cfg_default();
	struct llmd_err e = LLMD_ERR_INIT;
	int32_t p[4] = { 1, 2, 3, 4 };
	struct sched_request rq = { .prompt = p, .n_prompt = 4, .max_tokens = 2 };
	uint64_t id;

	c.max_num_waiting = 3;
	c.max_num_seqs = 1;
	sim_new(&m, &c);
	sim_add(&m, 4, 1, 2);
	sim_add(&m, 4, 1, 2);
	sim_add(&m, 4, 1, 2);
	cr_assert_eq(scheduler_add_request(m.s, &rq, &id, &e), -EAGAIN);
	sim_step(&m);   /* one admitted, two still wait */
	sim_add(&m, 4, 1, 2);
	cr_assert_eq(scheduler_add_request(m.s, &rq, &id, &e), -EAGAIN);
	sim_run(&m, 50);
	for (int i = 0; i < 4; i++)
		cr_assert_eq(m.r[i].n_out, 2);
	sim_free(&m);
}

Test(scheduler, a_failed_step_advances_nothing)
{
	struct sim m;
	struct sched_config c = cfg_default();
	const struct sched_output *out;
	size_t n_out;

	sim_new(&m, &c);
	struct shadow *a = sim_add(&m, 20, 1, 4);
	const struct sched_batch *b = scheduler_schedule(m.s);
	cr_assert_eq(b->n_tok, 20);
	cr_assert_eq(scheduler_update(m.s, b, NULL, &out, &n_out), 0);
	cr_assert_eq(n_out, 0);
	const int32_t *toks;
	uint32_t n, computed;
	cr_assert_eq(scheduler_request_tokens(m.s, a->id, &toks, &n, &computed), 0);
	cr_assert_eq(computed, 0);
	cr_assert_eq(n, 20);
	sim_step(&m);   /* the same prompt again */
	cr_assert_eq(m.b->seqs[0].pos0, 0);
	cr_assert_eq(m.b->seqs[0].n_tok, 20);
	cr_assert_eq(a->n_out, 1);
	sim_run(&m, 10);
	cr_assert_eq(a->n_out, 4);
	sim_free(&m);
}

Test(scheduler, caller_finish_frees_at_once)
{
	struct sim m;
	struct sched_config c = cfg_default();

	sim_new(&m, &c);
	struct shadow *a = sim_add(&m, 20, 1, 50);
	sim_step(&m);
	cr_assert_eq(scheduler_finish(m.s, a->id, SCHED_FINISH_STOP), 0);
	cr_assert_float_eq(blockmgr_usage(scheduler_blockmgr(m.s)), 0.0, 1e-9);
	cr_assert_not(scheduler_has_work(m.s));
	struct sched_stats st;
	scheduler_get_stats(m.s, &st);
	cr_assert_eq(st.finished[SCHED_FINISH_STOP], 1);
	sim_free(&m);
}

Test(scheduler, prefix_cache_hits_are_reported)
{
	struct sim m;
	struct sched_config c = cfg_default();

	sim_new(&m, &c);
	sim_add(&m, 100, 1, 1);
	sim_run(&m, 10);
	sim_add(&m, 100, 1, 1);
	sim_step(&m);
	cr_assert_eq(m.b->seqs[0].pos0, 96, "6 cached blocks skipped");
	cr_assert_eq(m.b->seqs[0].n_tok, 4);
	struct sched_stats st;
	scheduler_get_stats(m.s, &st);
	cr_assert_eq(st.prefix_queries, 200);
	cr_assert_eq(st.prefix_hits, 96);
	sim_free(&m);
}

Test(scheduler, held_blocks_outlive_the_request)
{
	struct sim m;
	struct sched_config c = cfg_default();

	sim_new(&m, &c);
	struct shadow *r = &m.r[m.n++];
	for (int i = 0; i < 40; i++)
		r->tok[i] = i + 1;
	r->n = 40;
	struct sched_request rq = { .prompt = r->tok, .n_prompt = 40, .max_tokens = 1,
		.hold_blocks_on_finish = true };
	cr_assert_eq(scheduler_add_request(m.s, &rq, &r->id, NULL), 0);
	sim_run(&m, 5);
	cr_assert_eq(r->finish, SCHED_FINISH_LENGTH);
	cr_assert_eq(r->n_held, 3);
	cr_assert_not_null(r->held);
	struct blockmgr *bm = scheduler_blockmgr(m.s);
	cr_assert_float_eq(blockmgr_usage(bm), 3.0 / 256, 1e-9);
	cr_assert_eq(blockmgr_refcount(bm, r->held[2]), 1);
	scheduler_release_held(m.s, r->held, r->n_held);
	cr_assert(scheduler_has_work(m.s), "the release is queued");
	sim_step(&m);
	cr_assert_float_eq(blockmgr_usage(bm), 0.0, 1e-9);
	sim_free(&m);
}

static struct shadow *sim_add_remote(struct sim *m, uint32_t n_prompt, int32_t base)
{
	struct shadow *r = &m->r[m->n++];

	for (uint32_t i = 0; i < n_prompt; i++)
		r->tok[i] = base + (int32_t)i;
	r->n = n_prompt;
	struct sched_request rq = { .prompt = r->tok, .n_prompt = n_prompt, .max_tokens = 3,
		.remote_prefill = true };
	cr_assert_eq(scheduler_add_request(m->s, &rq, &r->id, NULL), 0);
	return r;
}

Test(scheduler, remote_prefill_loads_then_decodes)
{
	struct sim m;
	struct sched_config c = cfg_default();
	struct sched_stats st;

	sim_new(&m, &c);
	struct shadow *r = sim_add_remote(&m, 40, 1);
	sim_step(&m);
	const struct sched_batch *b = m.b;
	cr_assert_eq(b->n_tok, 0, "nothing to compute while the KV loads");
	cr_assert_eq(b->n_loads, 1);
	cr_assert_eq(b->loads[0].req_id, r->id);
	cr_assert_eq(b->loads[0].n_blocks, 3);
	cr_assert_eq(b->loads[0].first_block, 0);
	cr_assert_eq(b->loads[0].n_tokens, 40);
	int32_t table[3];
	memcpy(table, b->loads[0].block_table, sizeof(table));
	scheduler_get_stats(m.s, &st);
	cr_assert_eq(st.num_waiting, 1);
	cr_assert_eq(st.num_loading, 1);
	cr_assert_eq(st.num_running, 0);
	cr_assert_float_eq(st.kv_usage, 3.0 / 256, 1e-9, "blocks reserved for the load");
	cr_assert_not(scheduler_has_work(m.s), "idle until the load ends");

	scheduler_remote_kv_done(m.s, r->id, true);
	cr_assert(scheduler_has_work(m.s));
	r->computed = 39;   /* the shadow "loaded" the prompt */
	sim_step(&m);
	b = m.b;
	cr_assert_eq(b->n_seq, 1);
	cr_assert_eq(b->seqs[0].pos0, 39, "only the last prompt token is computed");
	cr_assert_eq(b->seqs[0].n_tok, 1);
	cr_assert(b->seqs[0].want_logits);
	cr_assert_arr_eq(b->seqs[0].block_table, table, sizeof(table));
	cr_assert_eq(r->n_out, 1);
	sim_run(&m, 10);
	cr_assert_eq(r->n_out, 3);

	/* The loaded blocks joined the prefix cache. */
	struct shadow *l = sim_add(&m, 40, 1, 1);
	sim_step(&m);
	cr_assert_eq(m.b->seqs[0].req_id, l->id);
	cr_assert_eq(m.b->seqs[0].pos0, 32);
	sim_run(&m, 10);
	sim_free(&m);
}

Test(scheduler, remote_prefill_failure_recomputes_and_abort_waits_for_the_load)
{
	struct sim m;
	struct sched_config c = cfg_default();

	sim_new(&m, &c);
	struct shadow *r = sim_add_remote(&m, 20, 1);
	sim_step(&m);
	cr_assert_eq(m.b->n_loads, 1);
	scheduler_remote_kv_done(m.s, r->id, false);
	sim_step(&m);
	cr_assert_eq(m.b->n_seq, 1);
	cr_assert_eq(m.b->seqs[0].pos0, 0, "the whole prompt is recomputed");
	cr_assert_eq(m.b->seqs[0].n_tok, 20);
	sim_run(&m, 10);
	cr_assert_eq(r->n_out, 3);

	struct shadow *a = sim_add_remote(&m, 20, 500);
	sim_step(&m);
	cr_assert_eq(m.b->n_loads, 1);
	scheduler_abort(m.s, a->id);
	sim_step(&m);
	cr_assert_eq(a->finish, SCHED_FINISH_ABORT, "the abort is reported at once");
	struct blockmgr *bm = scheduler_blockmgr(m.s);
	cr_assert_float_eq(blockmgr_usage(bm), 2.0 / 256, 1e-9, "blocks kept for the transfer");
	scheduler_remote_kv_done(m.s, a->id, true);
	sim_step(&m);
	cr_assert_eq(m.b->n_tok, 0);
	cr_assert_float_eq(blockmgr_usage(bm), 0.0, 1e-9);
	cr_assert_not(scheduler_has_work(m.s));
	struct sched_stats st;
	scheduler_get_stats(m.s, &st);
	cr_assert_eq(st.finished[SCHED_FINISH_ABORT], 1);

	/* Finishing a loading request also waits for the load. */
	struct shadow *f = sim_add_remote(&m, 20, 900);
	sim_step(&m);
	cr_assert_eq(scheduler_finish(m.s, f->id, SCHED_FINISH_STOP), 0);
	cr_assert_eq(scheduler_finish(m.s, f->id, SCHED_FINISH_STOP), -ENOENT);
	cr_assert_float_eq(blockmgr_usage(bm), 2.0 / 256, 1e-9);
	scheduler_remote_kv_done(m.s, f->id, true);
	sim_step(&m);
	cr_assert_eq(m.b->n_tok, 0);
	cr_assert_float_eq(blockmgr_usage(bm), 0.0, 1e-9);
	sim_free(&m);
}

static uint32_t rnd(uint64_t *st)
{
	*st ^= *st << 13;
	*st ^= *st >> 7;
	*st ^= *st << 17;
	return (uint32_t)(*st >> 11);
}

/*
 * Random arrivals with shared prefixes, random aborts, a pool too small for
 * the batch: every step passes sim_step's checks (tokens, positions, slots,
 * KV read back, pool invariants), and every request ends as it should.
 */
Test(scheduler, random_workload_keeps_every_invariant)
{
	struct sim *m = calloc(1, sizeof(*m));
	struct sched_config c = {
		.n_blocks = 40, .block_size = 4, .enable_prefix_caching = true,
		.max_num_batched_tokens = 48, .max_num_seqs = 6, .max_model_len = 64,
	};
	uint64_t st = 0x9e3779b97f4a7c15ull;
	int32_t prefix[3][32];
	uint32_t want_out[MAXREQ];
	bool aborted[MAXREQ] = { false };
	int added = 0, steps = 0;

	sim_new(m, &c);
	for (int i = 0; i < 3; i++)
		for (int j = 0; j < 32; j++)
			prefix[i][j] = (int32_t)(rnd(&st) % 50000);
	while ((added < 60 || scheduler_has_work(m->s)) && steps < 5000) {
		for (uint32_t k = rnd(&st) % 3; k > 0 && added < 60; k--) {
			struct shadow *r = &m->r[m->n];
			uint32_t pfx = rnd(&st) % 4, plen = pfx < 3 ? rnd(&st) % 33 : 0;
			uint32_t n = plen + 1 + rnd(&st) % 16;
			for (uint32_t j = 0; j < n; j++)
				r->tok[j] = j < plen ? prefix[pfx][j] : (int32_t)(rnd(&st) % 50000);
			r->n = n;
			struct sched_request rq = { .prompt = r->tok, .n_prompt = n,
				.max_tokens = 1 + rnd(&st) % 24 };
			want_out[m->n] = MIN(rq.max_tokens, 64 - n);
			cr_assert_eq(scheduler_add_request(m->s, &rq, &r->id, NULL), 0);
			m->n++;
			added++;
		}
		if (m->n > 0 && rnd(&st) % 20 == 0) {
			int i = (int)(rnd(&st) % (uint32_t)m->n);
			if (m->r[i].finish == SCHED_NOT_FINISHED && !aborted[i]) {
				scheduler_abort(m->s, m->r[i].id);
				aborted[i] = true;
			}
		}
		sim_step(m);
		cr_assert(m->b->n_tok <= 48);
		cr_assert(m->b->n_seq <= 6);
		steps++;
	}
	cr_assert_not(scheduler_has_work(m->s));
	for (int i = 0; i < m->n; i++) {
		if (aborted[i]) {
			cr_assert_eq(m->r[i].finish, SCHED_FINISH_ABORT, "request %d", i);
			continue;
		}
		cr_assert_eq(m->r[i].finish, SCHED_FINISH_LENGTH, "request %d", i);
		cr_assert_eq(m->r[i].n_out, want_out[i], "request %d", i);
	}
	struct sched_stats ss;
	scheduler_get_stats(m->s, &ss);
	cr_assert_float_eq(ss.kv_usage, 0.0, 1e-9);
	cr_assert(ss.num_preemptions > 0, "the pool was tight enough to preempt");
	cr_assert(ss.prefix_hits > 0, "shared prefixes hit the cache");
	cr_log_info("random workload: %d steps, %llu preemptions, %llu/%llu prefix tokens hit",
	    steps, (unsigned long long)ss.num_preemptions, (unsigned long long)ss.prefix_hits,
	    (unsigned long long)ss.prefix_queries);
	sim_free(m);
	free(m);
}

Test(scheduler, no_busy_loop_while_blocks_are_held)
{
	struct sim m;
	struct sched_config c = cfg_default();

	c.n_blocks = 8;
	c.block_size = 4;
	c.max_model_len = 32;
	sim_new(&m, &c);
	struct shadow *p = &m.r[m.n++];
	for (int i = 0; i < 24; i++)
		p->tok[i] = i + 1;
	p->n = 24;
	struct sched_request rq = { .prompt = p->tok, .n_prompt = 24, .max_tokens = 1,
		.hold_blocks_on_finish = true };
	cr_assert_eq(scheduler_add_request(m.s, &rq, &p->id, NULL), 0);
	sim_step(&m);
	cr_assert_eq(p->n_held, 6, "the prefill's blocks are held");

	struct shadow *q = sim_add(&m, 12, 100, 2);   /* needs 3 blocks, 2 are free */
	sim_step(&m);
	cr_assert_eq(m.b->n_tok, 0);
	cr_assert_not(scheduler_has_work(m.s), "nothing can run until the hold ends");
	cr_assert_not(scheduler_wait(m.s, 0));
	struct sched_stats st;
	scheduler_get_stats(m.s, &st);
	cr_assert_eq(st.num_waiting, 1);

	scheduler_release_held(m.s, p->held, p->n_held);
	cr_assert(scheduler_wait(m.s, 0));
	sim_run(&m, 10);
	cr_assert_eq(q->n_out, 2);
	sim_free(&m);
}

struct producer {
	struct scheduler *s;
	int n;
	uint64_t ids[40];
};

static void *produce(void *arg)
{
	struct producer *p = arg;
	int32_t prompt[20];

	for (int i = 0; i < 20; i++)
		prompt[i] = i + 7;
	for (int i = 0; i < p->n; i++) {
		struct sched_request rq = { .prompt = prompt, .n_prompt = 20, .max_tokens = 4 };
		if (scheduler_add_request(p->s, &rq, &p->ids[i], NULL) != 0)
			return NULL;
		if (i % 3 == 0)
			scheduler_abort(p->s, p->ids[i]);
	}
	return p;
}

Test(scheduler, inbox_is_thread_safe)
{
	struct scheduler *s;
	struct sched_config c = cfg_default();
	struct producer p = { .n = 40 };
	pthread_t th;
	int finished = 0, aborted = 0, tokens = 0;

	cr_assert_eq(scheduler_new(&c, &s, NULL), 0);
	p.s = s;
	cr_assert_eq(pthread_create(&th, NULL, produce, &p), 0);
	while (finished + aborted < 40) {
		if (!scheduler_wait(s, 1000))
			continue;
		const struct sched_batch *b = scheduler_schedule(s);
		int32_t sampled[64];
		for (int i = 0; i < b->n_seq; i++)
			sampled[i] = 1000 + i;
		const struct sched_output *out;
		size_t n_out;
		cr_assert_eq(scheduler_update(s, b, sampled, &out, &n_out), 0);
		for (size_t k = 0; k < n_out; k++) {
			if (out[k].token >= 0)
				tokens++;
			if (out[k].finish == SCHED_FINISH_ABORT)
				aborted++;
			else if (out[k].finish != SCHED_NOT_FINISHED)
				finished++;
		}
	}
	void *ret;
	pthread_join(th, &ret);
	cr_assert_eq(ret, &p);
	cr_assert_eq(aborted + finished, 40);
	cr_assert(aborted <= 14, "only every third request was aborted");
	cr_assert_eq(finished, 40 - aborted);
	cr_assert(tokens >= finished * 4);
	cr_assert_not(scheduler_has_work(s));
	cr_assert_float_eq(blockmgr_usage(scheduler_blockmgr(s)), 0.0, 1e-9);
	scheduler_free(s);
}
