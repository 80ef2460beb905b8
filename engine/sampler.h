/*
 * engine/sampler.h - turns the logits of one sequence into its next token,
 * with vLLM's sampling parameters and order of processing:
 *
 *   penalties (repetition over prompt + generated tokens, then frequency and
 *   presence over generated tokens) -> temperature (0: greedy argmax, ties to
 *   the lowest id) -> min_p -> top_k -> top_p -> draw from the softmax.
 *
 * Each sequence owns a struct sampler with its own PRNG: the same seed and
 * inputs give the same tokens; without a seed the PRNG starts from
 * getrandom(2).
 */
#ifndef LLMD_ENGINE_SAMPLER_H
#define LLMD_ENGINE_SAMPLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sampler_params {
	float temperature;              /* < 1e-5: greedy */
	int32_t top_k;                  /* <= 0: off */
	float top_p;                    /* >= 1: off */
	float min_p;                    /* <= 0: off; relative to the top probability */
	float presence_penalty;         /* 0: off */
	float frequency_penalty;        /* 0: off */
	float repetition_penalty;       /* 1: off; > 1 discourages repeats */
	uint64_t seed;
	bool has_seed;
};

/* vLLM's defaults: temperature 1, every filter and penalty off, no seed. */
void sampler_params_default(struct sampler_params *p);
/* -EINVAL with e-style message in why (may be NULL) for out-of-range values. */
int sampler_params_check(const struct sampler_params *p, const char **why);

struct sampler;

struct sampler *sampler_create(const struct sampler_params *p);
void sampler_destroy(struct sampler *s);
/* The parameters s was created with. */
const struct sampler_params *sampler_get_params(const struct sampler *s);
/*
 * The next uniform in [0, 1) of s's PRNG: the one sampler_sample's draw would
 * take, for a token sampled elsewhere (the GPU's sample_rows) with the same
 * stream of random numbers. sampler_sample draws nothing when greedy.
 */
double sampler_uniform(struct sampler *s);

/*
 * Picks the next token from logits (vocab). prev_tokens (n_prev) are the
 * sequence so far: the first n_prompt the prompt, the rest generated. On
 * return logits holds the processed logits the token was drawn from
 * (penalized, divided by the temperature unless greedy, filtered-out tokens
 * -INFINITY), ready for sampler_top_logprobs(). *out_logprob (may be NULL)
 * gets the log-probability of the token under that distribution.
 */
int32_t sampler_sample(struct sampler *s, float *logits, int32_t vocab,
    const int32_t *prev_tokens, size_t n_prev, size_t n_prompt, float *out_logprob);

/*
 * The n most likely tokens of log_softmax(logits) (most likely first, ties to
 * the lowest id) into ids and logprobs; returns how many (<= n, <= vocab).
 */
int sampler_top_logprobs(const float *logits, int32_t vocab, int n, int32_t *ids,
    float *logprobs);

#endif
