/*
 * engine/scheduler.h - continuous batching for the engine's serving mode
 * (vLLM v1 style), backend-neutral: it decides which tokens of which requests
 * the next forward step computes, and owns the KV block manager
 * (engine/blockmgr.h) that gives them cache blocks.
 *
 * Threads. The compute thread runs
 *
 *     for (;;) {
 *         scheduler_wait(s, -1);                    // sleeps while idle
 *         const struct sched_batch *b = scheduler_schedule(s);
 *         if (b->n_tok) forward (b) and sample one token per want_logits seq;
 *         scheduler_update(s, b, sampled, &outs, &n_outs);  // always, even if empty
 *         deliver outs (tokens, finishes) to the event loop;
 *     }
 *
 * scheduler_add_request(), scheduler_abort(), scheduler_release_held(),
 * scheduler_remote_kv_done(), scheduler_get_stats(), scheduler_has_work() and
 * scheduler_wakeup() may be called from any thread (the event loop): they go
 * through a mutex-protected inbox that the next scheduler_schedule() applies in
 * order. Everything else is compute thread only.
 *
 * P/D disaggregation: a prefill request with hold_blocks_on_finish (and
 * max_tokens 1) finishes with its block ids held for the remote decoder; a
 * decode request with remote_prefill gets its prompt blocks listed in the
 * step's loads, and decodes once scheduler_remote_kv_done() says they are
 * filled.
 *
 * A step (scheduler_schedule): running requests whose prompt is done decode one
 * token each, oldest first; then running requests still in chunked prefill get
 * the rest of the token budget (max_num_batched_tokens); then waiting requests
 * are admitted (FCFS, prefix-cache hits skipped) while budget and max_num_seqs
 * allow, their prompts split into chunks. When blocks run out the newest running
 * request not yet scheduled this step is preempted by recompute: its blocks are
 * freed (full ones stay in the prefix cache), it goes to the front of the
 * waiting queue with its generated tokens appended to its prompt, and no new
 * request is admitted that step.
 *
 * The batch's arrays have the types and meaning of engine/forward.h's
 * struct batch (token, pos, seq, want_logits, n_seq); its per-sequence block
 * tables convert one to one into struct batch_seq:
 *     fb = (struct batch){ b->n_tok, b->token, b->pos, b->seq, b->want_logits,
 *                          b->n_seq, seqs };
 *     for (i < b->n_seq) seqs[i] = (struct batch_seq){ b->seqs[i].block_table,
 *                                                      b->seqs[i].n_blocks };
 * The block ids index the KV pool of engine/kvcache.h, which must have the same
 * n_blocks and block_size (and whose own free list is then unused).
 */
#ifndef LLMD_ENGINE_SCHEDULER_H
#define LLMD_ENGINE_SCHEDULER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/blockmgr.h"
#include "lib/err.h"

struct scheduler;

struct sched_config {
	uint32_t n_blocks;                /* KV pool size in blocks */
	uint32_t block_size;              /* tokens per block (0: 16) */
	bool enable_prefix_caching;
	uint32_t max_num_batched_tokens;  /* token budget per step (0: 2048) */
	uint32_t max_num_seqs;            /* running requests at most (0: 256) */
	uint32_t max_model_len;           /* prompt + output tokens at most (required) */
	bool disable_chunked_prefill;     /* a prompt must fit one step's budget */
	uint32_t max_num_waiting;         /* queued requests at most (0: 1000) */
};

enum sched_finish {
	SCHED_NOT_FINISHED = 0,
	SCHED_FINISH_STOP,      /* EOS or a stop token/string: finish_reason "stop" */
	SCHED_FINISH_LENGTH,    /* max_tokens or max_model_len: "length" */
	SCHED_FINISH_ABORT,     /* aborted (client went away): "abort" */
};

/* "stop", "length", "abort" or NULL. */
const char *sched_finish_reason(enum sched_finish f);

struct sched_request {
	const int32_t *prompt;            /* (n_prompt) token ids, copied */
	uint32_t n_prompt;
	uint32_t max_tokens;              /* 0: until max_model_len */
	uint32_t min_tokens;              /* stop tokens ignored before this many outputs */
	const int32_t *stop_token_ids;    /* (n_stop) EOS and stop_token_ids, copied */
	uint32_t n_stop;
	bool ignore_eos;                  /* never stop on stop_token_ids */
	const void *cache_salt;           /* prefix-cache isolation key, copied; may be NULL */
	size_t cache_salt_len;
	/* Keep the KV blocks when the request finishes by length (a prefill for a
	 * remote decoder): the finish output carries their ids, released with
	 * scheduler_release_held(). */
	bool hold_blocks_on_finish;
	/* Decode side of P/D: the prompt's KV comes from a remote prefill. On
	 * admission the request gets blocks for its whole prompt and a
	 * struct sched_kv_load in the step; the caller pulls the KV into them
	 * and reports scheduler_remote_kv_done(). */
	bool remote_prefill;
	void *user;                       /* caller's pointer, returned in outputs */
};

/* One sequence of a step's batch. */
struct sched_seq {
	uint64_t req_id;                  /* from scheduler_add_request */
	void *user;
	const int32_t *block_table;       /* (n_blocks) covers positions < ctx_len */
	int n_blocks;
	int tok_off;                      /* first of its tokens in the batch arrays */
	int n_tok;                        /* tokens computed this step */
	int pos0;                         /* position of the first = tokens already in KV */
	int ctx_len;                      /* pos0 + n_tok */
	bool want_logits;                 /* last prompt chunk or decode: sample after */
	bool is_prefill;                  /* computing prompt (or recomputed) tokens */
};

/*
 * A remote KV load to start: fill blocks [first_block, n_blocks) of
 * block_table with positions first_block * block_size .. n_tokens-1 of the
 * prompt (blocks before first_block hit the local prefix cache; the remote
 * side's block list covers the whole prompt in the same order). block_table
 * stays valid until scheduler_remote_kv_done() for this request, which must
 * come exactly once, also when the transfer failed or the request was aborted.
 */
struct sched_kv_load {
	uint64_t req_id;
	void *user;
	const int32_t *block_table;
	int n_blocks;
	int first_block;
	int n_tokens;
};

/* A step. Arrays valid until the next scheduler_schedule()/scheduler_update(). */
struct sched_batch {
	uint64_t step;
	int n_tok;
	int32_t *token;                   /* (n_tok) token ids */
	int32_t *pos;                     /* (n_tok) positions in their sequences */
	int32_t *seq;                     /* (n_tok) index into seqs */
	uint8_t *want_logits;             /* (n_tok) 1 on the last token of a want_logits seq */
	int32_t *slot;                    /* (n_tok) KV slot: block * block_size + pos % block_size */
	int n_seq;
	struct sched_seq *seqs;           /* (n_seq) decodes first, then prefill chunks */
	int n_logits;                     /* seqs with want_logits = tokens to sample */
	int n_decode;                     /* seqs decoding one token */
	int n_preempted;                  /* requests preempted while building this step */
	int n_loads;
	struct sched_kv_load *loads;      /* (n_loads) remote KV loads to start */
	uint32_t block_size;
};

/* What a step (or an abort) did to one request. */
struct sched_output {
	uint64_t req_id;
	void *user;
	int32_t token;                    /* the new token, or -1 (abort, no token) */
	uint32_t n_output;                /* generated tokens so far, this one included */
	uint32_t n_prompt;
	uint32_t n_cached;                /* prompt tokens served from the prefix cache
	                                   * at first admission (usage cached_tokens) */
	enum sched_finish finish;
	/* Held blocks (hold_blocks_on_finish and finish == LENGTH): the caller owns
	 * the array and passes it to scheduler_release_held() exactly once. */
	int32_t *held_blocks;
	uint32_t n_held;
};

struct sched_stats {
	uint32_t num_running;             /* vllm:num_requests_running */
	uint32_t num_waiting;             /* vllm:num_requests_waiting (inbox, loading included) */
	uint32_t num_loading;             /* waiting for remote KV (P/D decode side) */
	double kv_usage;                  /* vllm:kv_cache_usage_perc */
	uint64_t prefix_queries;          /* vllm:prefix_cache_queries (tokens) */
	uint64_t prefix_hits;             /* vllm:prefix_cache_hits (tokens) */
	uint64_t num_preemptions;         /* vllm:num_preemptions */
	uint64_t prompt_tokens;           /* vllm:prompt_tokens: prompt tokens computed or cached */
	uint64_t generation_tokens;       /* vllm:generation_tokens */
	uint64_t finished[4];             /* by enum sched_finish */
	uint32_t n_blocks;
	uint32_t block_size;
	uint64_t steps;
};

int scheduler_new(const struct sched_config *cfg, struct scheduler **out, struct llmd_err *e);
/* Frees everything, pending and running requests included (no outputs). */
void scheduler_free(struct scheduler *s);

/*
 * Queues a request (any thread). Fails with -EINVAL (empty prompt), -E2BIG
 * (prompt longer than max_model_len) or -EAGAIN (max_num_waiting requests
 * already wait: answer 429/503), with e naming the field. On success *id is
 * the request's handle for abort and outputs.
 */
int scheduler_add_request(struct scheduler *s, const struct sched_request *r, uint64_t *id,
    struct llmd_err *e);
/* Aborts a request wherever it is (any thread); its blocks are freed at the
 * next step (while its remote KV loads: when the load ends) and an output with
 * finish ABORT follows. Unknown ids are ignored. */
void scheduler_abort(struct scheduler *s, uint64_t id);
/* Drops held blocks from a finish output and frees the array (any thread). */
void scheduler_release_held(struct scheduler *s, int32_t *blocks, uint32_t n);

/*
 * A remote KV load ended (any thread): ok, the request decodes from the loaded
 * prompt (its last token is computed again for logits); not ok, its prompt is
 * recomputed locally. An aborted request's blocks are freed now.
 */
void scheduler_remote_kv_done(struct scheduler *s, uint64_t id, bool ok);

/* Compute thread: blocks until there is work, a wakeup, or timeout_ms passes
 * (-1: no timeout). Returns true when there is work. */
bool scheduler_wait(struct scheduler *s, int timeout_ms);
/* Wakes scheduler_wait (any thread), e.g. for shutdown. */
void scheduler_wakeup(struct scheduler *s);
/*
 * Whether a step can do anything: requests running or queued in the inbox, or
 * waiting ones, unless the last step could admit none of them for lack of
 * blocks that only an inbox op (release, KV load end, abort) can free; so the
 * compute thread sleeps, not spins, while remote decoders hold the blocks.
 */
bool scheduler_has_work(struct scheduler *s);

/* Builds the next step (compute thread). Never NULL; n_tok 0 when idle. */
const struct sched_batch *scheduler_schedule(struct scheduler *s);

/*
 * Applies a step's results (compute thread): sampled[i] is the token sampled
 * for b->seqs[i] (read only where want_logits). sampled NULL for a step that
 * wanted logits means the step failed: no request advances (abort them, or
 * they are computed again next step); pending outputs are still returned.
 * Finishes requests on stop tokens, max_tokens and max_model_len, frees their
 * blocks, and returns one output per new token or finish (aborts included) in
 * *out (valid until the next schedule/update).
 */
int scheduler_update(struct scheduler *s, const struct sched_batch *b, const int32_t *sampled,
    const struct sched_output **out, size_t *n_out);

/*
 * Finishes a request now (compute thread, between update and the next
 * schedule), e.g. when the caller matched a stop string: frees its blocks; no
 * output follows. -ENOENT when unknown or already finished.
 */
int scheduler_finish(struct scheduler *s, uint64_t id, enum sched_finish reason);

/* Snapshot of counters (any thread); updated at each schedule/update. */
void scheduler_get_stats(struct scheduler *s, struct sched_stats *out);

/* The block manager (compute thread; tests and KV transfer). */
struct blockmgr *scheduler_blockmgr(struct scheduler *s);
/* A live request's tokens (prompt + outputs) and computed count; tests. */
int scheduler_request_tokens(struct scheduler *s, uint64_t id, const int32_t **tokens,
    uint32_t *n_tokens, uint32_t *n_computed);

#endif
