/*
 * engine/generate.h - the generation loop for one sequence: prefill the
 * prompt in batches (matrix-matrix), then decode one token per step
 * (matrix-vector) until an eos id, max_tokens, or a stop string. Sampling
 * is a callback, so the loop does not care how a token is chosen.
 */
#ifndef LLMD_ENGINE_GENERATE_H
#define LLMD_ENGINE_GENERATE_H

#include <stddef.h>
#include <stdint.h>

#include "engine/forward.h"
#include "lib/buf.h"
#include "lib/err.h"

struct tokenizer;

enum finish_reason { FINISH_LENGTH = 0, FINISH_EOS, FINISH_STOP };

const char *finish_reason_name(enum finish_reason r);

/* Picks the next token from logits (vocab); may modify logits. seq_ids (n_ids)
 * is the sequence so far: n_prompt prompt ids, then the generated ones. */
typedef int32_t (*sample_fn)(void *ctx, float *logits, int vocab, const int32_t *seq_ids,
    size_t n_ids, size_t n_prompt);
/* Receives completion text as it becomes final (never part of a stop string). */
typedef void (*text_fn)(void *ctx, const char *text, size_t len);
/* Receives the logits (vocab) before each sampling step (tests). */
typedef void (*logits_fn)(void *ctx, const float *logits, int vocab);

struct gen_params {
	int max_tokens;
	const int32_t *stop_ids;        /* eos ids; NULL: the model's */
	int n_stop_ids;
	const char *const *stop_strings;
	int n_stop_strings;
	sample_fn sample;
	void *sample_ctx;
	text_fn on_text;                /* optional */
	void *text_ctx;
	logits_fn on_logits;            /* optional */
	void *logits_ctx;
};

struct gen_result {
	int32_t *ids;                   /* (n_ids) generated ids, a stopping eos included */
	size_t n_ids;
	struct buf text;                /* completion (no special tokens), cut at a stop string */
	enum finish_reason finish;
	double prefill_s, decode_s;     /* wall time of prefill and of the decode steps */
};

/*
 * Runs prompt (n_prompt ids) through fw and kv as one sequence and samples
 * up to p->max_tokens tokens. tok may be NULL (no text, no stop strings).
 * The sequence's blocks are returned to kv at the end. r is filled (release
 * with gen_result_release) also on error.
 */
int generate(struct forward *fw, struct kv_cache *kv, const struct tokenizer *tok,
    const int32_t *prompt, size_t n_prompt, const struct gen_params *p, struct gen_result *r,
    struct llmd_err *e);
void gen_result_release(struct gen_result *r);

/* Length of the longest suffix of text[0..len) that is a proper prefix of one
 * of the stop strings (the part to hold back while streaming). */
size_t stop_holdback(const char *text, size_t len, const char *const *stops, int n);

#endif
