/*
 * engine/engine-core.c - the serving engine's compute side (see serve.h):
 * model/tokenizer/KV set-up, the compute thread's continuous-batching loop
 * (schedule -> forward or simulate -> sample -> update), incremental
 * detokenization with stop strings, metrics, and the outbox of events the
 * event loop drains.
 */
#include "config.h"
#include "engine/serve.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "engine/backend-tp.h"
#include "engine/chat.h"
#include "engine/generate.h"
#include "engine/sample-ref.h"
#include "engine/tp-plan.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/util.h"

void
serve_config_default(struct serve_config *c)
{
	memset(c, 0, sizeof(*c));
	c->host = "0.0.0.0";
	c->port = 8000;
	c->max_num_seqs = 256;
	c->max_num_batched_tokens = 2048;
	c->block_size = 16;
	c->prefix_caching = true;
	c->gpu_memory_utilization = 0.9;
	c->threads = 0;
	c->device = "auto";
	c->tensor_parallel_size = 1;
	c->sim.ttft_ms = 10;
	c->sim.prefill_ms_per_token = 0.05;
	c->sim.itl_ms = 5;
	c->sim.jitter = 0.1;
	c->sim.kv_transfer_ms_per_token = 0.01;
	c->shutdown_grace_ms = 10000;
	c->max_body = 8u << 20;
	c->max_stream_backlog = 8u << 20;
	c->max_queue = 4096;
}

/* ---- metrics ---- */

static const double ttft_buckets[] = { 0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25,
	0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80, 160, 640, 2560 };
static const double itl_buckets[] = { 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5,
	0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80 };
static const double e2e_buckets[] = { 0.3, 0.5, 0.8, 1, 1.5, 2, 2.5, 5, 10, 15, 20, 30, 40, 50,
	60, 120, 240, 480, 960, 1920, 7680 };
static const double tok_buckets[] = { 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000,
	10000, 20000, 50000, 100000 };

static void
metrics_setup(struct engine_core *ec)
{
	static const char *const L[] = { "model_name", "engine" };
	static const char *const LR[] = { "model_name", "engine", "finished_reason" };
	static const char *const LC[] = { "block_size", "num_gpu_blocks", "enable_prefix_caching",
		"cache_dtype", "engine" };
	struct metrics *m = metrics_new();
	char bs[16], nb[16];

	ec->metrics = m;
	ec->label_vals[0] = ec->cfg.served_names[0];
	ec->label_vals[1] = "0";
	ec->m_running = metrics_gauge(m, "vllm:num_requests_running",
	    "Number of requests in model execution batches.", 2, L);
	ec->m_waiting = metrics_gauge(m, "vllm:num_requests_waiting",
	    "Number of requests waiting to be processed.", 2, L);
	ec->m_kv_usage = metrics_gauge(m, "vllm:kv_cache_usage_perc",
	    "KV-cache usage. 1 means 100 percent usage.", 2, L);
	ec->m_cache_info = metrics_gauge(m, "vllm:cache_config_info",
	    "Information of the LLMEngine CacheConfig", 5, LC);
	ec->m_pq = metrics_counter(m, "vllm:prefix_cache_queries_total",
	    "Prefix cache queries, in terms of number of queried tokens.", 2, L);
	ec->m_ph = metrics_counter(m, "vllm:prefix_cache_hits_total",
	    "Prefix cache hits, in terms of number of cached tokens.", 2, L);
	ec->m_prompt = metrics_counter(m, "vllm:prompt_tokens_total",
	    "Number of prefill tokens processed.", 2, L);
	ec->m_gen = metrics_counter(m, "vllm:generation_tokens_total",
	    "Number of generation tokens processed.", 2, L);
	ec->m_success = metrics_counter(m, "vllm:request_success_total",
	    "Count of successfully processed requests.", 3, LR);
	ec->m_preempt = metrics_counter(m, "vllm:num_preemptions_total",
	    "Cumulative number of preemption from the engine.", 2, L);
	ec->m_ttft = metrics_histogram(m, "vllm:time_to_first_token_seconds",
	    "Histogram of time to first token in seconds.", 2, L, ttft_buckets,
	    (int)ARRAY_SIZE(ttft_buckets));
	ec->m_itl = metrics_histogram(m, "vllm:inter_token_latency_seconds",
	    "Histogram of inter-token latency in seconds.", 2, L, itl_buckets,
	    (int)ARRAY_SIZE(itl_buckets));
	ec->m_tpot = metrics_histogram(m, "vllm:time_per_output_token_seconds",
	    "Histogram of time per output token in seconds.", 2, L, itl_buckets,
	    (int)ARRAY_SIZE(itl_buckets));
	ec->m_e2e = metrics_histogram(m, "vllm:e2e_request_latency_seconds",
	    "Histogram of e2e request latency in seconds.", 2, L, e2e_buckets,
	    (int)ARRAY_SIZE(e2e_buckets));
	ec->m_queue = metrics_histogram(m, "vllm:request_queue_time_seconds",
	    "Histogram of time spent in WAITING phase for request.", 2, L, e2e_buckets,
	    (int)ARRAY_SIZE(e2e_buckets));
	ec->m_prompt_hist = metrics_histogram(m, "vllm:request_prompt_tokens",
	    "Number of prefill tokens processed.", 2, L, tok_buckets, (int)ARRAY_SIZE(tok_buckets));
	ec->m_gen_hist = metrics_histogram(m, "vllm:request_generation_tokens",
	    "Number of generation tokens processed.", 2, L, tok_buckets, (int)ARRAY_SIZE(tok_buckets));

	snprintf(bs, sizeof(bs), "%d", ec->cfg.block_size);
	snprintf(nb, sizeof(nb), "%d", ec->kv.n_blocks);
	metric_set(ec->m_cache_info, (const char *[]){ bs, nb,
	    ec->cfg.prefix_caching ? "True" : "False", ec->cfg.simulate ? "auto" : "float32", "0" }, 1);
	/* series exist from the start, as vLLM's do */
	metric_set(ec->m_running, ec->label_vals, 0);
	metric_set(ec->m_waiting, ec->label_vals, 0);
	metric_set(ec->m_kv_usage, ec->label_vals, 0);
	metric_add(ec->m_pq, ec->label_vals, 0);
	metric_add(ec->m_ph, ec->label_vals, 0);
	metric_add(ec->m_prompt, ec->label_vals, 0);
	metric_add(ec->m_gen, ec->label_vals, 0);
	metric_add(ec->m_preempt, ec->label_vals, 0);
}

void
engine_core_update_metrics(struct engine_core *ec)
{
	struct sched_stats st;

	if (ec->sched == NULL)
		return;
	scheduler_get_stats(ec->sched, &st);
	metric_set(ec->m_running, ec->label_vals, st.num_running);
	metric_set(ec->m_waiting, ec->label_vals, st.num_waiting);
	metric_set(ec->m_kv_usage, ec->label_vals, st.kv_usage);
	/* counters move by deltas; the scheduler's totals only grow */
	pthread_mutex_lock(&ec->out_lock);
	metric_add(ec->m_pq, ec->label_vals, (double)(st.prefix_queries - ec->last_pq));
	metric_add(ec->m_ph, ec->label_vals, (double)(st.prefix_hits - ec->last_ph));
	metric_add(ec->m_prompt, ec->label_vals, (double)(st.prompt_tokens - ec->last_prompt));
	metric_add(ec->m_gen, ec->label_vals, (double)(st.generation_tokens - ec->last_gen));
	metric_add(ec->m_preempt, ec->label_vals, (double)(st.num_preemptions - ec->last_preempt));
	ec->last_pq = st.prefix_queries;
	ec->last_ph = st.prefix_hits;
	ec->last_prompt = st.prompt_tokens;
	ec->last_gen = st.generation_tokens;
	ec->last_preempt = st.num_preemptions;
	pthread_mutex_unlock(&ec->out_lock);
}

/* ---- outbox ---- */

static void
emit(struct engine_core *ec, struct engine_event *ev)
{
	uint64_t one = 1;

	pthread_mutex_lock(&ec->out_lock);
	*ec->out_tail = ev;
	ec->out_tail = &ev->next;
	pthread_mutex_unlock(&ec->out_lock);
	if (write(ec->out_fd, &one, sizeof(one)) < 0) {
		/* the counter is saturated or the loop is gone: it will drain anyway */
	}
}

struct engine_event *
engine_core_take_events(struct engine_core *ec)
{
	struct engine_event *head;
	uint64_t v;

	if (read(ec->out_fd, &v, sizeof(v)) < 0) {
		/* EAGAIN: nothing signalled */
	}
	pthread_mutex_lock(&ec->out_lock);
	head = ec->out_head;
	ec->out_head = NULL;
	ec->out_tail = &ec->out_head;
	pthread_mutex_unlock(&ec->out_lock);
	return head;
}

void
engine_event_free(struct engine_event *ev)
{
	cJSON_Delete(ev->kv_params);
	free(ev->text);
	free(ev);
}

void
engine_req_free(struct engine_req *r)
{
	if (r == NULL)
		return;
	oai_request_release(&r->oai);
	free(r->prompt);
	free(r->hist);
	if (r->sampler)
		sampler_destroy(r->sampler);
	if (r->detok.tok)
		detok_release(&r->detok);
	kv_remote_release(&r->remote);
	buf_release(&r->held);
	free(r);
}

/* ---- per-token processing on the compute thread ---- */

static int
is_req_stop_token(const struct engine_req *r, int32_t t)
{
	for (size_t i = 0; i < r->oai.n_stop_token_ids; i++)
		if (r->oai.stop_token_ids[i] == t)
			return 1;
	return 0;
}

/* Earliest stop string occurrence in text; returns its index or -1. */
static int
find_stop(const struct engine_req *r, const char *text, size_t len, size_t *at)
{
	int best = -1;
	size_t best_at = SIZE_MAX;

	for (size_t i = 0; i < r->oai.n_stop; i++) {
		const char *s = r->oai.stop[i];
		size_t sl = strlen(s);
		if (sl == 0 || sl > len)
			continue;
		for (size_t p = 0; p + sl <= len && p < best_at; p++) {
			if (memcmp(text + p, s, sl) == 0) {
				best = (int)i;
				best_at = p;
				break;
			}
		}
	}
	if (best >= 0)
		*at = best_at;
	return best;
}

static void
set_text(struct engine_event *ev, const char *s, size_t n)
{
	if (n == 0)
		return;
	ev->text = xmalloc(n + 1);
	memcpy(ev->text, s, n);
	ev->text[n] = '\0';
	ev->text_len = n;
}

static void
observe_finish(struct engine_core *ec, struct engine_req *r, enum sched_finish f)
{
	const char *reason = sched_finish_reason(f);
	double now_s = (double)now_us() / 1e6;

	metric_add(ec->m_success, (const char *[]){ ec->label_vals[0], "0", reason ? reason : "abort" }, 1);
	metric_observe(ec->m_e2e, ec->label_vals, now_s - (double)r->t_arrival_us / 1e6);
	metric_observe(ec->m_prompt_hist, ec->label_vals, (double)r->n_prompt);
	metric_observe(ec->m_gen_hist, ec->label_vals, (double)r->n_out);
	if (r->n_out > 1)
		metric_observe(ec->m_tpot, ec->label_vals,
		    (double)(r->t_last_us - r->t_first_us) / 1e6 / (double)(r->n_out - 1));
}

/*
 * Handles one scheduler output: detokenizes, applies stop strings and emits
 * an event. logits (processed, vocab) is the distribution the token came
 * from, or NULL.
 */
static void
handle_output(struct engine_core *ec, const struct sched_output *o, float logprob,
    const float *logits)
{
	struct engine_req *r = o->user;
	struct engine_event *ev = xcalloc(1, sizeof(*ev));
	enum sched_finish fin = o->finish;
	uint64_t t = now_us();

	ev->req = r;
	ev->token = o->token;
	ev->stop_token = -1;
	ev->n_cached = o->n_cached;
	if (o->token >= 0) {
		if (r->n_hist == r->cap_hist) {
			r->cap_hist = r->cap_hist ? r->cap_hist * 2 : 64;
			r->hist = xreallocarray(r->hist, r->cap_hist, sizeof(int32_t));
		}
		r->hist[r->n_hist++] = o->token;
		r->n_out++;
		if (r->n_out == 1) {
			r->t_first_us = t;
			metric_observe(ec->m_ttft, ec->label_vals, (double)(t - r->t_arrival_us) / 1e6);
		} else {
			metric_observe(ec->m_itl, ec->label_vals, (double)(t - r->t_last_us) / 1e6);
		}
		r->t_last_us = t;
		ev->logprob = logprob;
		if (logits != NULL && r->oai.logprobs && r->oai.top_logprobs > 0)
			ev->n_top = sampler_top_logprobs(logits, ec->vocab, r->oai.top_logprobs,
			    ev->top_ids, ev->top_lp);

		int stop_tok = fin == SCHED_FINISH_STOP;
		if (stop_tok && is_req_stop_token(r, o->token))
			ev->stop_token = o->token;
		/* the text of a stopping token is not part of the output */
		if (!stop_tok || (r->oai.include_stop_str_in_output && ev->stop_token >= 0))
			detok_push(&r->detok, o->token, &r->held);

		size_t at;
		int si = (r->n_out > (size_t)r->oai.min_tokens || r->oai.min_tokens == 0)
		    ? find_stop(r, r->held.buf, r->held.len, &at) : -1;
		if (si >= 0) {
			size_t keep = at + (r->oai.include_stop_str_in_output ? strlen(r->oai.stop[si]) : 0);
			set_text(ev, r->held.buf, keep);
			buf_reset(&r->held);
			ev->stop_is_str = 1;
			ev->stop_str = r->oai.stop[si];
			/* o->req_id, not r->sched_id: the event loop writes that after
			 * scheduler_add_request returns, maybe after this step ran */
			if (fin == SCHED_NOT_FINISHED)
				scheduler_finish(ec->sched, o->req_id, SCHED_FINISH_STOP);
			fin = SCHED_FINISH_STOP;
		} else if (fin != SCHED_NOT_FINISHED) {
			detok_flush(&r->detok, &r->held);
			set_text(ev, r->held.buf, r->held.len);
			buf_reset(&r->held);
		} else {
			size_t hold = r->oai.n_stop ? stop_holdback(r->held.buf, r->held.len,
			    (const char *const *)r->oai.stop, (int)r->oai.n_stop) : 0;
			size_t rel = r->held.len - hold;
			set_text(ev, r->held.buf, rel);
			buf_consume(&r->held, rel);
		}
	}
	ev->finish = fin;
	if (o->held_blocks != NULL) {
		if (ec->kvc != NULL)
			ev->kv_params = kv_connector_hold(ec->kvc, r->id, o->held_blocks, o->n_held);
		else
			scheduler_release_held(ec->sched, o->held_blocks, o->n_held);
	}
	if (fin != SCHED_NOT_FINISHED && r->remote.valid && !r->remote_started)
		kv_connector_notify(ec->kvc, &r->remote);   /* full local hit or abort: free the producer's blocks */
	if (fin != SCHED_NOT_FINISHED) {
		observe_finish(ec, r, fin);
		r->done = true;
		atomic_fetch_sub(&ec->n_active, 1);
	}
	emit(ec, ev);   /* r must not be touched after a finishing event */
}

/* ---- simulate mode ---- */

static uint64_t
splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void
sleep_ms(double ms)
{
	struct timespec ts;

	if (ms <= 0)
		return;
	ts.tv_sec = (time_t)(ms / 1000);
	ts.tv_nsec = (long)((ms - (double)ts.tv_sec * 1000) * 1e6);
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* The latency of a step: prefill work costs ttft + per-token time, a pure
 * decode step costs the inter-token latency; each with uniform jitter. */
static void
simulate_step(struct engine_core *ec, const struct sched_batch *b)
{
	const struct sim_config *sc = &ec->cfg.sim;
	int n_prefill = 0, any_prefill = 0;
	double ms;

	for (int i = 0; i < b->n_seq; i++)
		if (b->seqs[i].is_prefill) {
			any_prefill = 1;
			n_prefill += b->seqs[i].n_tok;
		}
	ms = any_prefill ? sc->ttft_ms + sc->prefill_ms_per_token * n_prefill : sc->itl_ms;
	if (sc->jitter > 0) {
		double u = (double)(splitmix(&ec->sim_rng) >> 11) / 9007199254740992.0;
		ms *= 1.0 + sc->jitter * (2 * u - 1);
	}
	sleep_ms(ms);
}

/* A plausible token: a regular (non-special) id, reproducible per request seed. */
static int32_t
simulate_token(struct engine_core *ec, struct engine_req *r)
{
	uint64_t s = r->oai.has_seed ? (uint64_t)r->oai.seed * 1000003u + r->n_out : splitmix(&ec->sim_rng);
	int32_t lim = ec->vocab > 1000 ? ec->vocab - 1000 : ec->vocab;

	for (int tries = 0; tries < 16; tries++) {
		int32_t t = (int32_t)(splitmix(&s) % (uint64_t)(lim > 1 ? lim : 1));
		if (!tokenizer_is_special(ec->tok, t) && !model_config_is_eos(&ec->mc, t))
			return t;
	}
	return 0;
}

/* ---- the compute thread ---- */

/* log_softmax(logits)[t] over the finite entries. */
static float
token_logprob(const float *lg, int32_t vocab, int32_t t)
{
	double mx = -INFINITY, sum = 0;

	for (int32_t v = 0; v < vocab; v++)
		if (lg[v] > mx)
			mx = lg[v];
	if (!isfinite(mx) || !isfinite(lg[t]))
		return -INFINITY;
	for (int32_t v = 0; v < vocab; v++)
		if (isfinite(lg[v]))
			sum += exp((double)lg[v] - mx);
	return (float)((double)lg[t] - mx - log(sum));
}

/* A request whose next token is the argmax of the raw logits. */
static int
req_is_plain_greedy(const struct engine_req *r)
{
	const struct oai_request *o = &r->oai;

	return o->temperature < 1e-5 && !o->logprobs && o->presence_penalty == 0 &&
	    o->frequency_penalty == 0 && o->repetition_penalty == 1.0;
}

/*
 * Sampling on the backend (the GPU's sample_rows): the row parameters of the
 * batch's logits rows, in row order, each sampled row's uniform drawn now
 * from its request's sampler (the number sampler_sample would draw, so a
 * seeded request gets the same tokens on either path). NULL, the host
 * samples, when the backend has no sample_rows or a row needs its logits on
 * the host: penalties (they read the sequence's tokens; engine/sampler.c
 * applies them) or logprobs (computed from the raw row).
 */
static struct sample_row_params *
backend_sample_params(struct engine_core *ec, const struct sched_batch *b)
{
	struct sample_row_params *sp;
	int row = 0;

	if (ec->fw.be->ops->sample_rows == NULL || b->n_logits <= 0)
		return NULL;
	for (int i = 0; i < b->n_seq; i++) {
		const struct engine_req *r = b->seqs[i].user;
		if (b->seqs[i].want_logits &&
		    (r->oai.logprobs || !sample_row_supported(sampler_get_params(r->sampler))))
			return NULL;
	}
	sp = xcalloc((size_t)b->n_logits, sizeof(*sp));
	for (int i = 0; i < b->n_seq; i++) {
		struct engine_req *r = b->seqs[i].user;
		if (!b->seqs[i].want_logits)
			continue;
		sample_row_params_init(&sp[row], sampler_get_params(r->sampler), 0.0);
		if (!sp[row].greedy)
			sp[row].u = sampler_uniform(r->sampler);
		row++;
	}
	return sp;
}

static int
run_step(struct engine_core *ec, const struct sched_batch *b)
{
	struct llmd_err e = LLMD_ERR_INIT;
	int row = 0;

	if (b->n_tok == 0)
		return 0;
	if (ec->cfg.simulate) {
		simulate_step(ec, b);
		for (int i = 0; i < b->n_seq; i++)
			if (b->seqs[i].want_logits)
				ec->sampled[i] = simulate_token(ec, b->seqs[i].user);
		return 0;
	}
	struct batch_seq *seqs = xcalloc((size_t)b->n_seq, sizeof(*seqs));
	for (int i = 0; i < b->n_seq; i++)
		seqs[i] = (struct batch_seq){ b->seqs[i].block_table, b->seqs[i].n_blocks };
	struct batch fb = { b->n_tok, b->token, b->pos, b->seq, b->want_logits, b->n_seq, seqs };
	/* every sequence greedy, no penalties, no logprobs: the backend's argmax
	 * gives the ids, and no logits are copied (the GPU backend keeps them);
	 * else a backend with sample_rows may sample them (backend_sample_params) */
	int greedy = 1;
	for (int i = 0; i < b->n_seq && greedy; i++) {
		const struct engine_req *r = b->seqs[i].user;
		if (b->seqs[i].want_logits && !req_is_plain_greedy(r))
			greedy = 0;
	}
	struct sample_row_params *sp = greedy ? NULL : backend_sample_params(ec, b);
	if ((greedy || sp != NULL) && b->n_logits > 0) {
		int32_t *ids = xcalloc((size_t)b->n_logits, sizeof(int32_t));
		int n = sp ? forward_batch_sample(&ec->fw, &ec->kv, &fb, sp, ids, &e) :
		    forward_batch_greedy(&ec->fw, &ec->kv, &fb, ids, &e);
		free(sp);
		free(seqs);
		if (n < 0) {
			free(ids);
			log_warnx("forward pass failed: %s", e.msg);
			return n;
		}
		for (int i = 0; i < b->n_seq; i++)
			if (b->seqs[i].want_logits)
				ec->sampled[i] = ids[row++];
		free(ids);
		return 0;
	}
	int n = forward_batch(&ec->fw, &ec->kv, &fb, ec->logits, &e);
	free(seqs);
	if (n < 0) {
		log_warnx("forward pass failed: %s", e.msg);
		return n;
	}
	for (int i = 0; i < b->n_seq; i++) {
		struct engine_req *r;
		float *lg;
		if (!b->seqs[i].want_logits)
			continue;
		r = b->seqs[i].user;
		/* logprobs come from the model's raw output, as vLLM v1's: keep the
		 * row before the sampler penalizes, scales and filters it in place */
		if (r->oai.logprobs) {
			if (ec->raw_logits == NULL)
				ec->raw_logits = xcalloc((size_t)ec->cfg.max_num_seqs * (size_t)ec->vocab,
				    sizeof(float));
			memcpy(ec->raw_logits + (size_t)row * (size_t)ec->vocab,
			    ec->logits + (size_t)row * (size_t)ec->vocab, (size_t)ec->vocab * sizeof(float));
		}
		lg = ec->logits + (size_t)row++ * (size_t)ec->vocab;
		ec->sampled[i] = sampler_sample(r->sampler, lg, ec->vocab, r->hist, r->n_hist,
		    r->n_prompt, NULL);
	}
	return 0;
}

static void *
compute_main(void *arg)
{
	struct engine_core *ec = arg;

	while (!atomic_load(&ec->stop)) {
		const struct sched_output *outs;
		size_t n_outs = 0;
		int row = 0;

		scheduler_wait(ec->sched, 200);
		if (atomic_load(&ec->stop))
			break;
		const struct sched_batch *b = scheduler_schedule(ec->sched);
		for (int i = 0; i < b->n_loads; i++) {
			struct engine_req *lr = b->loads[i].user;
			lr->remote_started = true;
			kv_connector_start_load(ec->kvc, &b->loads[i], &lr->remote, (uint32_t)ec->cfg.block_size);
		}
		kv_connector_expire(ec->kvc);
		if (run_step(ec, b) < 0) {
			/* a failed step: abort what it carried rather than spin */
			for (int i = 0; i < b->n_seq; i++)
				scheduler_abort(ec->sched, b->seqs[i].req_id);
			scheduler_update(ec->sched, b, NULL, &outs, &n_outs);
		} else {
			scheduler_update(ec->sched, b, b->n_logits ? ec->sampled : NULL, &outs, &n_outs);
		}
		for (size_t i = 0; i < n_outs; i++) {
			const float *lg = NULL;
			float lp = 0;
			struct engine_req *r = outs[i].user;

			/* find the logits row of this output's sequence (for logprobs) */
			if (!ec->cfg.simulate && outs[i].token >= 0 && r->oai.logprobs &&
			    ec->raw_logits != NULL) {
				row = 0;
				for (int s = 0; s < b->n_seq; s++) {
					if (!b->seqs[s].want_logits)
						continue;
					if (b->seqs[s].req_id == outs[i].req_id) {
						lg = ec->raw_logits + (size_t)row * (size_t)ec->vocab;
						lp = token_logprob(lg, ec->vocab, outs[i].token);
						break;
					}
					row++;
				}
			}
			handle_output(ec, &outs[i], lp, lg);
		}
		engine_core_update_metrics(ec);
	}
	return NULL;
}

/* ---- set-up ---- */

static uint64_t
mem_available(void)
{
	FILE *f = fopen("/proc/meminfo", "r");
	char line[256];
	unsigned long long kb = 0;

	if (f == NULL)
		return 1ull << 30;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1)
			break;
	fclose(f);
	return kb ? (uint64_t)kb * 1024 : (1ull << 30);
}

/* temperature/top_p/top_k/repetition_penalty from generation_config.json */
static void
load_generation_defaults(struct engine_core *ec)
{
	char path[4096], *text = NULL;
	size_t len;
	cJSON *root = NULL;
	struct llmd_err e = LLMD_ERR_INIT;

	ec->defaults = (struct oai_defaults){ 1.0, 1.0, 0.0, 1.0, 0 };
	snprintf(path, sizeof(path), "%s/generation_config.json", ec->cfg.model_dir);
	if (access(path, R_OK) != 0 || config_read_file(path, 1 << 20, &text, &len, &e) < 0)
		return;
	if (json_parse(text, len, &root, &e) == 0 && cJSON_IsObject(root)) {
		const cJSON *v;
		if (cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(root, "temperature")))
			ec->defaults.temperature = v->valuedouble;
		if (cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(root, "top_p")))
			ec->defaults.top_p = v->valuedouble;
		if (cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(root, "top_k")))
			ec->defaults.top_k = (int64_t)v->valuedouble;
		if (cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(root, "min_p")))
			ec->defaults.min_p = v->valuedouble;
		if (cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(root, "repetition_penalty")))
			ec->defaults.repetition_penalty = v->valuedouble;
	}
	cJSON_Delete(root);
	free(text);
}

static int
load_chat_template(struct engine_core *ec, struct llmd_err *e)
{
	const char *src = NULL;
	char *file_text = NULL;
	size_t len = 0;
	int rc;

	if (ec->cfg.chat_template_file != NULL) {
		if ((rc = config_read_file(ec->cfg.chat_template_file, 4u << 20, &file_text, &len, e)) < 0)
			return rc;
		src = file_text;
	} else if ((src = tokenizer_chat_template(ec->tok)) != NULL) {
		len = strlen(src);
	} else {
		/* newer HF layouts keep the template in its own file */
		char path[4096];
		snprintf(path, sizeof(path), "%s/chat_template.jinja", ec->cfg.model_dir);
		if (access(path, R_OK) == 0) {
			if ((rc = config_read_file(path, 4u << 20, &file_text, &len, e)) < 0)
				return rc;
			src = file_text;
		}
	}
	if (src == NULL) {
		log_warnx("the model has no chat template: /v1/chat/completions will answer 400 "
		    "(give one with --chat-template)");
		return 0;
	}
	rc = jinja_parse(src, len, &ec->chat_tmpl, e);
	if (rc < 0) {
		char field[sizeof(e->field)];
		snprintf(field, sizeof(field), "%s", e->field);
		err_set(e, rc, "--chat-template", "the chat template does not compile at %s: %s",
		    field, e->msg);
	}
	free(file_text);
	return rc;
}

static int
start_kv_connector(struct engine_core *ec, uint64_t per_tok, struct llmd_err *e)
{
	struct kv_transfer_config kc;
	struct kvx_layout l;
	int rc;

	if ((rc = kv_transfer_config_parse(ec->cfg.kv_transfer_config, &kc, e)) < 0)
		return rc;
	memset(&l, 0, sizeof(l));
	snprintf(l.model, sizeof(l.model), "%s", ec->cfg.served_names[0]);
	snprintf(l.dtype, sizeof(l.dtype), "%s", ec->cfg.simulate ? "simulated" : "float32");
	l.block_size = (uint32_t)ec->cfg.block_size;
	l.n_layers = (uint32_t)ec->mc.n_layers;
	l.n_kv_heads = (uint32_t)ec->mc.n_kv_heads;
	l.head_dim = (uint32_t)ec->mc.head_dim;
	l.tp_rank = 0;
	l.tp_size = 1;
	if (ec->cfg.simulate) {
		l.block_bytes = per_tok * (uint64_t)ec->cfg.block_size;
		/* a one-block stand-in region: the stride must hold a block */
		return kv_connector_new(&kc, &l, NULL, 1, (size_t)l.block_bytes, ec->sched, ec->metrics,
		    ec->label_vals, ec->cfg.sim.kv_transfer_ms_per_token, &ec->kvc, e);
	}
	l.block_bytes = ec->kv.block_stride * sizeof(float);
	return kv_connector_new(&kc, &l, ec->kv.data, (uint32_t)ec->kv.n_blocks,
	    ec->kv.block_stride * sizeof(float), ec->sched, ec->metrics, ec->label_vals, 0, &ec->kvc, e);
}

int
engine_core_start(struct engine_core *ec, const struct serve_config *cfg, struct llmd_err *e)
{
	int rc;
	uint64_t kv_bytes, per_tok;
	int n_blocks;

	memset(ec, 0, sizeof(*ec));
	ec->cfg = *cfg;
	ec->out_tail = &ec->out_head;
	ec->out_fd = -1;
	pthread_mutex_init(&ec->out_lock, NULL);
	ec->sim_rng = cfg->has_seed ? (uint64_t)cfg->seed : (uint64_t)now_us();

	if ((rc = model_config_load(&ec->mc, cfg->model_dir, e)) < 0)
		return rc;
	if ((rc = tokenizer_load(cfg->model_dir, &ec->tok, e)) < 0)
		return rc;
	ec->vocab = ec->mc.vocab;
	if (tokenizer_token_id(ec->tok, "") >= ec->vocab)
		log_warnx("tokenizer.json has ids beyond the model's vocab_size %d", ec->vocab);
	if ((rc = load_chat_template(ec, e)) < 0)
		return rc;
	load_generation_defaults(ec);

	ec->max_model_len = cfg->max_model_len > 0 ? (int)cfg->max_model_len : ec->mc.max_pos;
	if (ec->max_model_len <= 0)
		return err_set(e, -EINVAL, "--max-model-len", "the model has no max_position_embeddings; give --max-model-len");
	if (cfg->max_model_len > ec->mc.max_pos && ec->mc.max_pos > 0)
		return err_set(e, -EINVAL, "--max-model-len", "%lld is larger than the model's "
		    "max_position_embeddings (%d)", (long long)cfg->max_model_len, ec->mc.max_pos);

	/* tensor parallel: each GPU holds its rank's kv heads; sizes are per GPU */
	int tp = cfg->simulate || cfg->tensor_parallel_size < 1 ? 1 : cfg->tensor_parallel_size;
	struct tp_plan plan;
	if (tp > 1 && (rc = tp_plan_init(&plan, &ec->mc, tp, e)) < 0)
		return rc;
	if (tp > 1 && cfg->kv_transfer_config != NULL)
		return err_set(e, -ENOTSUP, "--kv-transfer-config", "P/D KV transfer with "
		    "--tensor-parallel-size %d is not supported yet", tp);
	struct model_config kv_cfg = ec->mc;
	kv_cfg.n_kv_heads = tp_kv_heads_per_rank(ec->mc.n_kv_heads, tp);
	per_tok = 2ull * (uint64_t)ec->mc.n_layers * (uint64_t)kv_cfg.n_kv_heads *
	    (uint64_t)ec->mc.head_dim * (cfg->simulate ? 2u : 4u);
	if (per_tok == 0)
		per_tok = 1;
	kv_bytes = cfg->kv_cache_memory;
	if (kv_bytes == 0) {
		uint64_t want = (uint64_t)cfg->max_num_seqs * (uint64_t)ec->max_model_len * per_tok;
		kv_bytes = mem_available() / 4;
		if (kv_bytes > (1ull << 30))
			kv_bytes = 1ull << 30;
		if (want < kv_bytes)
			kv_bytes = want;
	}
	n_blocks = (int)MIN(kv_bytes / (per_tok * (uint64_t)cfg->block_size), (uint64_t)INT32_MAX / 2);
	if (n_blocks < 1 || (uint64_t)n_blocks * (uint64_t)cfg->block_size < (uint64_t)MIN(ec->max_model_len, 16))
		return err_set(e, -EINVAL, "--kv-cache-memory", "%llu bytes hold %d blocks of %d tokens: "
		    "too small", (unsigned long long)kv_bytes, n_blocks, cfg->block_size);

	if (!cfg->simulate) {
		int max_tok = cfg->max_num_batched_tokens;
		size_t dev_free = 0, dev_total = 0;
		if ((rc = backend_create_tp(cfg->device, cfg->threads, tp, &ec->be, e)) < 0)
			return rc;
		if ((rc = model_load(&ec->model, cfg->model_dir, e)) < 0)
			return rc;
		ec->have_model = true;
		if ((rc = forward_init(&ec->fw, &ec->model, ec->be, max_tok, e)) < 0)
			return rc;
		ec->have_fw = true;
		/* The connector reads and writes KV blocks in host memory (rdma/kvxfer.h). */
		if (!cfg->simulate && cfg->kv_transfer_config != NULL &&
		    strcmp(ec->be->ops->name, "cpu") != 0)
			return err_set(e, -ENOTSUP, "--kv-transfer-config", "P/D KV transfer with "
			    "--device %s is not supported yet (the KV cache is in device memory; the "
			    "connector has no staging); use --device cpu", ec->be->ops->name);
		/* a device with its own memory: size the pool like vLLM's
		 * --gpu-memory-utilization, from what the weights left free */
		if (cfg->kv_cache_memory == 0 && ec->be->ops->device_memory != NULL &&
		    ec->be->ops->device_memory(ec->be, &dev_free, &dev_total) == 0 && dev_total > 0) {
			double budget = cfg->gpu_memory_utilization * (double)dev_total -
			    (double)(dev_total - dev_free);
			if (budget < (double)(per_tok * (uint64_t)cfg->block_size))
				return err_set(e, -ENOMEM, "--gpu-memory-utilization", "%.2f of %.1f GiB leaves "
				    "no room for the KV cache after the weights (%.1f GiB free)",
				    cfg->gpu_memory_utilization, (double)dev_total / 1073741824.0,
				    (double)dev_free / 1073741824.0);
			kv_bytes = (uint64_t)budget;
			n_blocks = (int)MIN(kv_bytes / (per_tok * (uint64_t)cfg->block_size), (uint64_t)INT32_MAX / 2);
		}
		if ((rc = kv_cache_init(&ec->kv, ec->be, &kv_cfg, cfg->block_size, n_blocks, e)) < 0)
			return rc;
		ec->have_kv = true;
		ec->logits = xcalloc((size_t)cfg->max_num_seqs * (size_t)ec->vocab, sizeof(float));
	} else {
		ec->kv.n_blocks = n_blocks;
		ec->kv.block_size = cfg->block_size;
	}
	ec->sampled = xcalloc((size_t)cfg->max_num_seqs, sizeof(int32_t));

	struct sched_config sc = {
		.n_blocks = (uint32_t)n_blocks,
		.block_size = (uint32_t)cfg->block_size,
		.enable_prefix_caching = cfg->prefix_caching,
		.max_num_batched_tokens = (uint32_t)cfg->max_num_batched_tokens,
		.max_num_seqs = (uint32_t)cfg->max_num_seqs,
		.max_model_len = (uint32_t)ec->max_model_len,
		.max_num_waiting = (uint32_t)cfg->max_queue,
	};
	if ((rc = scheduler_new(&sc, &ec->sched, e)) < 0)
		return rc;
	metrics_setup(ec);
	if (cfg->kv_transfer_config != NULL && (rc = start_kv_connector(ec, per_tok, e)) < 0)
		return rc;
	ec->out_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (ec->out_fd < 0)
		return err_set(e, -errno, "", "eventfd: %s", strerror(errno));
	snprintf(ec->started_note, sizeof(ec->started_note),
	    "KV cache: %d blocks of %d tokens (%llu tokens, %.1f MiB)%s", n_blocks, cfg->block_size,
	    (unsigned long long)n_blocks * (unsigned long long)cfg->block_size,
	    (double)n_blocks * (double)cfg->block_size * (double)per_tok / 1048576.0,
	    cfg->simulate ? " [simulated]" : "");
	log_info("%s", ec->started_note);
	if (pthread_create(&ec->thread, NULL, compute_main, ec) != 0)
		return err_set(e, -EAGAIN, "", "cannot start the compute thread");
	ec->thread_started = true;
	return 0;
}

void
engine_core_halt(struct engine_core *ec)
{
	if (ec->thread_started) {
		atomic_store(&ec->stop, true);
		scheduler_wakeup(ec->sched);
		pthread_join(ec->thread, NULL);
		ec->thread_started = false;
	}
}

void
engine_core_stop(struct engine_core *ec)
{
	struct engine_event *ev, *next;

	engine_core_halt(ec);
	for (ev = ec->out_head; ev; ev = next) {
		next = ev->next;
		engine_event_free(ev);
	}
	ec->out_head = NULL;
	kv_connector_free(ec->kvc);
	if (ec->sched)
		scheduler_free(ec->sched);
	if (ec->have_kv)
		kv_cache_free(&ec->kv);
	if (ec->have_fw)
		forward_free(&ec->fw);
	if (ec->have_model)
		model_free(&ec->model);
	if (ec->be)
		backend_destroy(ec->be);
	if (ec->chat_tmpl)
		jinja_free(ec->chat_tmpl);
	if (ec->tok)
		tokenizer_free(ec->tok);
	if (ec->out_fd >= 0)
		close(ec->out_fd);
	metrics_free(ec->metrics);
	free(ec->logits);
	free(ec->raw_logits);
	free(ec->sampled);
	pthread_mutex_destroy(&ec->out_lock);
	memset(ec, 0, sizeof(*ec));
}

/* ---- submission (event loop thread) ---- */

int
engine_core_render_chat(struct engine_core *ec, const struct oai_request *o, struct buf *out,
    struct llmd_err *e)
{
	cJSON *vars;
	const char *s;
	int rc;

	if (ec->chat_tmpl == NULL)
		return err_set(e, -EINVAL, "messages", "the model has no chat template; "
		    "start the server with --chat-template or use /v1/completions");
	vars = cJSON_CreateObject();
	cJSON_AddBoolToObject(vars, "add_generation_prompt", o->add_generation_prompt);
	if (tokenizer_bos_id(ec->tok) >= 0 && (s = tokenizer_id_token(ec->tok, tokenizer_bos_id(ec->tok))))
		cJSON_AddStringToObject(vars, "bos_token", s);
	if (tokenizer_eos_id(ec->tok) >= 0 && (s = tokenizer_id_token(ec->tok, tokenizer_eos_id(ec->tok))))
		cJSON_AddStringToObject(vars, "eos_token", s);
	if (o->chat_template_kwargs)
		cJSON_AddItemToObject(vars, "chat_template_kwargs", cJSON_Duplicate(o->chat_template_kwargs, 1));
	rc = chat_render(ec->chat_tmpl, o->messages, vars, out, e);
	cJSON_Delete(vars);
	return rc;
}

int
engine_core_prepare(struct engine_core *ec, struct engine_req *r, struct llmd_err *e)
{
	struct oai_request *o = &r->oai;
	struct sampler_params sp;
	const char *why = NULL;
	int rc;

	if (o->prompt_ids != NULL) {
		for (size_t i = 0; i < o->n_prompt_ids; i++)
			if (o->prompt_ids[i] >= ec->vocab)
				return err_set(e, -EINVAL, "prompt", "token id %d is out of vocabulary (size %d)",
				    o->prompt_ids[i], ec->vocab);
		r->prompt = xcalloc(o->n_prompt_ids ? o->n_prompt_ids : 1, sizeof(int32_t));
		memcpy(r->prompt, o->prompt_ids, o->n_prompt_ids * sizeof(int32_t));
		r->n_prompt = o->n_prompt_ids;
	} else {
		struct buf text = BUF_INIT;
		const char *src;
		size_t len;

		if (o->kind == OAI_CHAT) {
			if ((rc = engine_core_render_chat(ec, o, &text, e)) < 0) {
				buf_release(&text);
				return rc;
			}
			src = text.buf;
			len = text.len;
		} else {
			src = o->prompt_text;
			len = o->prompt_text_len;
		}
		rc = tokenizer_encode(ec->tok, src, len, o->add_special_tokens, &r->prompt, &r->n_prompt);
		buf_release(&text);
		if (rc < 0)
			return err_set(e, rc, o->kind == OAI_CHAT ? "messages" : "prompt",
			    rc == -EILSEQ ? "is not valid UTF-8" : "cannot be tokenized");
	}
	if (r->n_prompt == 0)
		return err_set(e, -EINVAL, o->kind == OAI_CHAT ? "messages" : "prompt",
		    "the prompt cannot be empty");
	if (o->max_tokens < 0) {
		if ((int64_t)r->n_prompt >= ec->max_model_len)
			return err_set(e, -E2BIG, "messages", "This model's maximum context length is %d "
			    "tokens. However, your messages resulted in %zu tokens. Please reduce the length "
			    "of the messages.", ec->max_model_len, r->n_prompt);
		r->max_tokens = (uint32_t)(ec->max_model_len - (int64_t)r->n_prompt);
	} else {
		if ((int64_t)r->n_prompt + o->max_tokens > ec->max_model_len)
			return err_set(e, -E2BIG, o->kind == OAI_CHAT ? "messages" : "prompt",
			    "This model's maximum context length is %d tokens. However, you requested "
			    "%lld tokens (%zu in the %s, %lld in the completion). Please reduce the "
			    "length of the %s or completion.", ec->max_model_len,
			    (long long)((int64_t)r->n_prompt + o->max_tokens), r->n_prompt,
			    o->kind == OAI_CHAT ? "messages" : "prompt", (long long)o->max_tokens,
			    o->kind == OAI_CHAT ? "messages" : "prompt");
		r->max_tokens = (uint32_t)o->max_tokens;
	}

	sampler_params_default(&sp);
	sp.temperature = (float)o->temperature;
	sp.top_k = (int32_t)o->top_k;
	sp.top_p = (float)o->top_p;
	sp.min_p = (float)o->min_p;
	sp.presence_penalty = (float)o->presence_penalty;
	sp.frequency_penalty = (float)o->frequency_penalty;
	sp.repetition_penalty = (float)o->repetition_penalty;
	sp.has_seed = o->has_seed;
	sp.seed = (uint64_t)o->seed;
	if (sampler_params_check(&sp, &why) < 0)
		return err_set(e, -EINVAL, "temperature", "%s", why ? why : "invalid sampling parameters");
	r->sampler = sampler_create(&sp);
	r->cap_hist = r->n_prompt + 64;
	r->hist = xcalloc(r->cap_hist, sizeof(int32_t));
	memcpy(r->hist, r->prompt, r->n_prompt * sizeof(int32_t));
	r->n_hist = r->n_prompt;
	detok_init(&r->detok, ec->tok, o->skip_special_tokens);
	buf_init(&r->held, 0);
	r->t_arrival_us = now_us();
	return 0;
}

int
engine_core_queue(struct engine_core *ec, struct engine_req *r, struct llmd_err *e)
{
	struct oai_request *o = &r->oai;
	int rc;

	int32_t stops[MODEL_MAX_EOS + OAI_MAX_STOP_IDS];
	uint32_t n_stops = 0;
	if (!o->ignore_eos)
		for (int i = 0; i < ec->mc.n_eos; i++)
			stops[n_stops++] = ec->mc.eos_ids[i];
	for (size_t i = 0; i < o->n_stop_token_ids; i++)
		stops[n_stops++] = o->stop_token_ids[i];

	struct sched_request sr = {
		.prompt = r->prompt,
		.n_prompt = (uint32_t)r->n_prompt,
		.max_tokens = r->max_tokens,
		.min_tokens = (uint32_t)o->min_tokens,
		.stop_token_ids = stops,
		.n_stop = n_stops,
		.ignore_eos = false,
		.cache_salt = o->cache_salt,
		.cache_salt_len = o->cache_salt ? strlen(o->cache_salt) : 0,
		.user = r,
	};
	enum kv_role role = kv_connector_role(ec->kvc);
	if (kv_params_want_remote_decode(o->kv_transfer_params) &&
	    (role == KV_ROLE_PRODUCER || role == KV_ROLE_BOTH))
		sr.hold_blocks_on_finish = true;
	if (o->kv_transfer_params != NULL && (role == KV_ROLE_CONSUMER || role == KV_ROLE_BOTH)) {
		struct llmd_err ke = LLMD_ERR_INIT;
		rc = kv_remote_parse(o->kv_transfer_params, &r->remote, &ke);
		if (rc < 0)
			log_warnx("request %s: %s: %s; computing the prompt locally", r->id, ke.field, ke.msg);
		else if (rc == 1)
			sr.remote_prefill = true;
	}
	atomic_fetch_add(&ec->n_active, 1);
	if ((rc = scheduler_add_request(ec->sched, &sr, &r->sched_id, e)) < 0) {
		atomic_fetch_sub(&ec->n_active, 1);
		return rc;
	}
	return 0;
}

int
engine_core_submit(struct engine_core *ec, struct engine_req *r, struct llmd_err *e)
{
	int rc;

	if ((rc = engine_core_prepare(ec, r, e)) < 0)
		return rc;
	return engine_core_queue(ec, r, e);
}

void
engine_core_abort(struct engine_core *ec, struct engine_req *r)
{
	scheduler_abort(ec->sched, r->sched_id);
}
