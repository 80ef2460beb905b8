/*
 * engine/openai.h - OpenAI/vLLM request parsing and validation for
 * /v1/completions and /v1/chat/completions. Every error is a 400 naming the
 * parameter (e->field), as vLLM answers; features we do not have (n > 1,
 * tools, response_format, beam search, suffix, batched prompts) are refused
 * clearly, never ignored.
 */
#ifndef LLMD_ENGINE_OPENAI_H
#define LLMD_ENGINE_OPENAI_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "lib/err.h"

enum oai_kind { OAI_COMPLETION, OAI_CHAT };

/* Model defaults (generation_config.json), applied to unset fields as vLLM does. */
struct oai_defaults {
	double temperature, top_p, min_p, repetition_penalty;
	int64_t top_k;
};

#define OAI_MAX_STOP 16
#define OAI_MAX_STOP_LEN 256
#define OAI_MAX_STOP_IDS 64
#define OAI_MAX_TOP_LOGPROBS 20

struct oai_request {
	enum oai_kind kind;
	cJSON *root;                 /* the parsed body; owns everything borrowed below */
	const char *model;           /* NULL when absent */
	int stream, include_usage, continuous_usage;

	/* prompt: text (completions) or ids (completions), or messages (chat) */
	const char *prompt_text;
	size_t prompt_text_len;
	int32_t *prompt_ids;         /* malloc'd; NULL unless the prompt was token ids */
	size_t n_prompt_ids;
	const cJSON *messages;       /* chat */
	int add_generation_prompt, continue_final_message, add_special_tokens;
	const cJSON *chat_template_kwargs;

	int64_t max_tokens;          /* -1: until max_model_len (chat default) */
	int64_t min_tokens;
	double temperature, top_p, min_p;
	int64_t top_k;               /* 0 or -1: off */
	double presence_penalty, frequency_penalty, repetition_penalty;
	int has_seed;
	int64_t seed;
	char *stop[OAI_MAX_STOP];    /* malloc'd copies */
	size_t n_stop;
	int32_t stop_token_ids[OAI_MAX_STOP_IDS];
	size_t n_stop_token_ids;
	int include_stop_str_in_output, ignore_eos, skip_special_tokens;
	int logprobs;                /* return the sampled token's logprob */
	int top_logprobs;            /* and this many alternatives */
	int echo;
	const char *request_id;      /* "request_id" field; X-Request-Id is the caller's */
	const char *cache_salt;
	const cJSON *kv_transfer_params;
	int64_t priority;
};

/*
 * Parses body[0..len) as a request of the given kind. On error returns a
 * negative code with e->field naming the parameter and e->msg the reason.
 * Release with oai_request_release() in both cases.
 */
int oai_request_parse(struct oai_request *r, enum oai_kind kind, const char *body, size_t len,
    const struct oai_defaults *defs, struct llmd_err *e);
void oai_request_release(struct oai_request *r);

#endif
