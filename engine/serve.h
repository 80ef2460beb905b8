/*
 * engine/serve.h - llmd-engine's serving runtime: the configuration from
 * `llmd-engine serve` flags, the request object shared by the event loop and
 * the compute thread, and the engine core (engine/engine-core.c) that runs
 * continuous batching on a compute thread: scheduler -> forward pass (or the
 * simulator's latency model) -> sampling -> incremental detokenization and
 * stop strings -> events back to the event loop (engine/server.c).
 */
#ifndef LLMD_ENGINE_SERVE_H
#define LLMD_ENGINE_SERVE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/forward.h"
#include "engine/jinja.h"
#include "engine/kv-connector.h"
#include "engine/kvcache.h"
#include "engine/model.h"
#include "engine/openai.h"
#include "engine/sampler.h"
#include "engine/scheduler.h"
#include "engine/tokenizer.h"
#include "lib/buf.h"
#include "lib/err.h"
#include "lib/metrics.h"

#define SERVE_MAX_NAMES 8

/* The simulator's latency model (--simulate). Times in milliseconds. */
struct sim_config {
	double ttft_ms;               /* fixed part of a prefill step */
	double prefill_ms_per_token;  /* plus this per prompt token computed */
	double itl_ms;                /* a decode step */
	double jitter;                /* +- fraction, uniform */
	double kv_transfer_ms_per_token; /* (P/D) pulling remote KV */
};

struct serve_config {
	const char *model_dir;
	const char *host;
	int port;
	const char *served_names[SERVE_MAX_NAMES];
	int n_served_names;
	int64_t max_model_len;          /* 0: the model's max_position_embeddings */
	int max_num_seqs;
	int max_num_batched_tokens;
	int block_size;
	uint64_t kv_cache_memory;       /* bytes; 0: default */
	double gpu_memory_utilization;  /* fraction of device memory for weights + KV (GPU) */
	bool prefix_caching;
	const char *api_key;
	const char *chat_template_file;
	int threads;
	int64_t seed;
	bool has_seed;
	const char *device;
	int tensor_parallel_size;       /* GPUs of one host (CUDA with NCCL); 1: none */
	bool simulate;
	struct sim_config sim;
	int64_t shutdown_grace_ms;
	size_t max_body;
	size_t max_stream_backlog;      /* bytes unread by a streaming client before abort */
	int max_queue;                  /* waiting requests before 503 */
	const char *kv_transfer_config; /* --kv-transfer-config JSON, or NULL */
};

void serve_config_default(struct serve_config *c);

/* One event from the compute thread about one request. */
struct engine_event {
	struct engine_event *next;
	struct engine_req *req;
	int32_t token;                  /* -1: none (abort or a finish without a token) */
	char *text;                     /* new final text (malloc'd; may be NULL) */
	size_t text_len;
	float logprob;
	int n_top;
	int32_t top_ids[OAI_MAX_TOP_LOGPROBS];
	float top_lp[OAI_MAX_TOP_LOGPROBS];
	enum sched_finish finish;       /* not NOT_FINISHED: the last event of req */
	int stop_is_str;                /* finish by a stop string (stop_str) */
	const char *stop_str;
	int32_t stop_token;             /* finish by a request stop_token_ids entry, else -1 */
	uint32_t n_cached;
	cJSON *kv_params;               /* prefill for a remote decoder: the response's kv_transfer_params */
};

/*
 * A request. Created by the event loop, submitted to the core, and freed by
 * the event loop after the finishing event (the compute thread never touches
 * it after emitting that event).
 */
struct engine_req {
	struct oai_request oai;
	char id[48];                    /* "cmpl-..." / "chatcmpl-..." */
	int64_t created;
	int32_t *prompt;                /* (n_prompt) */
	size_t n_prompt;
	uint32_t max_tokens;            /* resolved */
	uint64_t sched_id;
	uint64_t t_arrival_us;

	/* compute-thread state */
	struct sampler *sampler;
	int32_t *hist;                  /* (n_hist) prompt + generated, for penalties */
	size_t n_hist, cap_hist;
	struct detok detok;
	struct buf held;                /* decoded text not yet released (stop-string holdback) */
	size_t n_out;
	uint64_t t_first_us, t_last_us;
	bool done;
	struct kv_remote remote;        /* decode side of P/D: where the prompt's KV is */
	bool remote_started;

	/* event-loop state (engine/server.c) */
	void *http;                     /* struct http_req *, NULL once gone */
	void *server_data;
};

struct engine_core {
	struct serve_config cfg;
	struct model_config mc;
	struct model model;
	bool have_model;
	struct tokenizer *tok;
	struct jinja_template *chat_tmpl;   /* NULL: no template (chat requests get 400) */
	struct backend *be;
	struct forward fw;
	struct kv_cache kv;
	bool have_fw, have_kv;
	struct scheduler *sched;
	struct kv_connector *kvc;       /* P/D, with --kv-transfer-config */
	int max_model_len;
	int32_t vocab;
	struct oai_defaults defaults;
	float *logits;                  /* (max_num_seqs, vocab) */
	float *raw_logits;              /* (max_num_seqs, vocab) rows of logprobs requests before
	                                 * sampling (vLLM v1 reports raw logprobs); lazily */
	int32_t *sampled;               /* (max_num_seqs) */
	uint64_t sim_rng;

	pthread_t thread;
	bool thread_started;
	atomic_bool stop;

	/* outbox: compute thread -> event loop, signalled through an eventfd */
	pthread_mutex_t out_lock;
	struct engine_event *out_head, **out_tail;
	int out_fd;
	atomic_int n_active;            /* submitted and not finished */

	struct metrics *metrics;
	struct metric_family *m_running, *m_waiting, *m_kv_usage, *m_cache_info, *m_pq, *m_ph,
	    *m_prompt, *m_gen, *m_success, *m_preempt, *m_ttft, *m_itl, *m_tpot, *m_e2e,
	    *m_queue, *m_prompt_hist, *m_gen_hist;
	const char *label_vals[2];      /* model_name, engine */
	uint64_t last_pq, last_ph, last_prompt, last_gen, last_preempt;
	char started_note[256];
};

/* Loads the model (or, with --simulate, only its config and tokenizer),
 * sizes the KV pool and starts the compute thread. */
int engine_core_start(struct engine_core *ec, const struct serve_config *cfg, struct llmd_err *e);
/* Joins the compute thread (idempotent): no events come after it; requests
 * still queued stay with their owner. */
void engine_core_halt(struct engine_core *ec);
/* Halts, then frees everything (also after a failed engine_core_start). */
void engine_core_stop(struct engine_core *ec);

/* Tokenizes and queues a request; e names the field on a 400. -E2BIG: too long. */
int engine_core_submit(struct engine_core *ec, struct engine_req *r, struct llmd_err *e);
/* Renders and tokenizes a request and checks its length, without queueing
 * it. Thread-safe (the server runs it on a worker thread). */
int engine_core_prepare(struct engine_core *ec, struct engine_req *r, struct llmd_err *e);
/* Queues a prepared request (any thread). */
int engine_core_queue(struct engine_core *ec, struct engine_req *r, struct llmd_err *e);
/* Renders a chat request's messages with the chat template. */
int engine_core_render_chat(struct engine_core *ec, const struct oai_request *o, struct buf *out,
    struct llmd_err *e);
void engine_core_abort(struct engine_core *ec, struct engine_req *r);
/* Takes all pending events (event loop). */
struct engine_event *engine_core_take_events(struct engine_core *ec);
void engine_event_free(struct engine_event *ev);
void engine_req_free(struct engine_req *r);
/* Refreshes the gauges and counters from the scheduler (any thread). */
void engine_core_update_metrics(struct engine_core *ec);

#endif
