/*
 * engine/openai.c - parse and validate OpenAI/vLLM completion and chat
 * requests (see openai.h). Field meanings and defaults follow vLLM's
 * protocol.py: max_tokens 16 for completions, max_completion_tokens or
 * max_tokens for chat, unknown fields ignored, null means "default".
 */
#include "config.h"
#include "engine/openai.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/json.h"
#include "lib/util.h"

static int
bad(struct llmd_err *e, const char *field, const char *msg)
{
	return err_set(e, -EINVAL, field, "%s", msg);
}

/* A number field within [lo,hi]; absent or null leaves *out. */
static int
get_num(const cJSON *o, const char *key, double lo, double hi, double *out, struct llmd_err *e)
{
	double v;
	int rc;

	if ((rc = json_get_double(o, key, &v, 0, e)) < 0)
		return rc;
	if (cJSON_GetObjectItemCaseSensitive(o, key) == NULL ||
	    cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(o, key)))
		return 0;
	if (!isfinite(v) || v < lo || v > hi)
		return err_set(e, -EINVAL, key, "must be between %g and %g, got %g", lo, hi, v);
	*out = v;
	return 0;
}

static int
parse_stop(struct oai_request *r, const cJSON *o, struct llmd_err *e)
{
	const cJSON *stop = cJSON_GetObjectItemCaseSensitive(o, "stop");
	const cJSON *it;

	if (stop == NULL || cJSON_IsNull(stop))
		return 0;
	if (cJSON_IsString(stop)) {
		if (strlen(stop->valuestring) > OAI_MAX_STOP_LEN)
			return bad(e, "stop", "stop string too long");
		if (stop->valuestring[0] != '\0')
			r->stop[r->n_stop++] = xstrdup(stop->valuestring);
		return 0;
	}
	if (!cJSON_IsArray(stop))
		return bad(e, "stop", "must be a string or an array of strings");
	cJSON_ArrayForEach(it, stop) {
		if (!cJSON_IsString(it))
			return bad(e, "stop", "must be a string or an array of strings");
		if (r->n_stop >= OAI_MAX_STOP)
			return err_set(e, -EINVAL, "stop", "at most %d stop strings", OAI_MAX_STOP);
		if (strlen(it->valuestring) > OAI_MAX_STOP_LEN)
			return bad(e, "stop", "stop string too long");
		if (it->valuestring[0] != '\0')
			r->stop[r->n_stop++] = xstrdup(it->valuestring);
	}
	return 0;
}

static int
parse_ids(const cJSON *arr, const char *field, int32_t **out, size_t *n, size_t max,
    struct llmd_err *e)
{
	const cJSON *it;
	size_t cnt = (size_t)cJSON_GetArraySize(arr), i = 0;

	if (cnt > max)
		return err_set(e, -EINVAL, field, "at most %zu token ids", max);
	*out = xcalloc(cnt ? cnt : 1, sizeof(int32_t));
	cJSON_ArrayForEach(it, arr) {
		double d = cJSON_IsNumber(it) ? it->valuedouble : -1;
		if (d != floor(d) || d < 0 || d > INT32_MAX)
			return err_set(e, -EINVAL, field, "element %zu must be a non-negative token id", i);
		(*out)[i++] = (int32_t)d;
	}
	*n = cnt;
	return 0;
}

/* prompt: string | [string] | [int] | [[int]] (one prompt only: n > 1 batches are refused) */
static int
parse_prompt(struct oai_request *r, const cJSON *o, struct llmd_err *e)
{
	const cJSON *p = cJSON_GetObjectItemCaseSensitive(o, "prompt");

	if (p == NULL || cJSON_IsNull(p))
		return err_set(e, -ENOENT, "prompt", "is required");
	if (cJSON_IsString(p)) {
		r->prompt_text = p->valuestring;
		r->prompt_text_len = strlen(p->valuestring);
		return 0;
	}
	if (!cJSON_IsArray(p))
		return bad(e, "prompt", "must be a string, an array of strings or an array of token ids");
	if (cJSON_GetArraySize(p) == 0)
		return bad(e, "prompt", "must not be empty");
	const cJSON *first = p->child;
	if (cJSON_IsNumber(first))
		return parse_ids(p, "prompt", &r->prompt_ids, &r->n_prompt_ids, 1u << 20, e);
	if (cJSON_GetArraySize(p) != 1)
		return bad(e, "prompt", "batched prompts (more than one prompt per request) are not supported");
	if (cJSON_IsString(first)) {
		r->prompt_text = first->valuestring;
		r->prompt_text_len = strlen(first->valuestring);
		return 0;
	}
	if (cJSON_IsArray(first) && cJSON_GetArraySize(first) > 0)
		return parse_ids(first, "prompt", &r->prompt_ids, &r->n_prompt_ids, 1u << 20, e);
	return bad(e, "prompt", "must be a string, an array of strings or an array of token ids");
}

static int
parse_messages(struct oai_request *r, const cJSON *o, struct llmd_err *e)
{
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, "messages"), *it;
	size_t i = 0;

	if (m == NULL || cJSON_IsNull(m))
		return err_set(e, -ENOENT, "messages", "is required");
	if (!cJSON_IsArray(m) || cJSON_GetArraySize(m) == 0)
		return bad(e, "messages", "must be a non-empty array of messages");
	cJSON_ArrayForEach(it, m) {
		const cJSON *role, *content;
		char field[64];

		snprintf(field, sizeof(field), "messages[%zu]", i);
		if (!cJSON_IsObject(it))
			return bad(e, field, "must be an object");
		role = cJSON_GetObjectItemCaseSensitive(it, "role");
		if (!cJSON_IsString(role)) {
			snprintf(field, sizeof(field), "messages[%zu].role", i);
			return bad(e, field, "must be a string");
		}
		content = cJSON_GetObjectItemCaseSensitive(it, "content");
		if (content != NULL && !cJSON_IsNull(content) && !cJSON_IsString(content)) {
			const cJSON *part;
			snprintf(field, sizeof(field), "messages[%zu].content", i);
			if (!cJSON_IsArray(content))
				return bad(e, field, "must be a string or an array of content parts");
			cJSON_ArrayForEach(part, content) {
				const cJSON *type = cJSON_GetObjectItemCaseSensitive(part, "type");
				if (!cJSON_IsString(type))
					return bad(e, field, "each content part needs a string \"type\"");
				if (strcmp(type->valuestring, "text") != 0)
					return err_set(e, -EINVAL, field,
					    "content part type \"%s\" is not supported (text only)",
					    type->valuestring);
				if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(part, "text")))
					return bad(e, field, "a text part needs a string \"text\"");
			}
		}
		i++;
	}
	r->messages = m;
	return 0;
}

/* Fields present and not null that we cannot honour yet. */
static int
refuse_unsupported(const cJSON *o, enum oai_kind kind, struct llmd_err *e)
{
	const cJSON *v;
	int64_t n = 1;
	int rc;

	if ((rc = json_get_int64(o, "n", &n, 0, e)) < 0)
		return rc;
	if (n != 1)
		return bad(e, "n", "only n=1 is supported");
	if ((rc = json_get_int64(o, "best_of", &n, 0, e)) < 0)
		return rc;
	if (n != 1)
		return bad(e, "best_of", "only best_of=1 is supported");
	v = cJSON_GetObjectItemCaseSensitive(o, "use_beam_search");
	if (cJSON_IsTrue(v))
		return bad(e, "use_beam_search", "beam search is not supported");
	v = cJSON_GetObjectItemCaseSensitive(o, "tools");
	if (v != NULL && !cJSON_IsNull(v) && !(cJSON_IsArray(v) && cJSON_GetArraySize(v) == 0))
		return bad(e, "tools", "tool calling is not supported by this server");
	v = cJSON_GetObjectItemCaseSensitive(o, "response_format");
	if (v != NULL && !cJSON_IsNull(v)) {
		const cJSON *t = cJSON_GetObjectItemCaseSensitive(v, "type");
		if (!cJSON_IsString(t) || strcmp(t->valuestring, "text") != 0)
			return bad(e, "response_format", "structured output (response_format) is not supported");
	}
	if (kind == OAI_COMPLETION) {
		v = cJSON_GetObjectItemCaseSensitive(o, "suffix");
		if (v != NULL && !cJSON_IsNull(v))
			return bad(e, "suffix", "suffix is not supported");
		v = cJSON_GetObjectItemCaseSensitive(o, "prompt_logprobs");
		if (v != NULL && !cJSON_IsNull(v))
			return bad(e, "prompt_logprobs", "prompt_logprobs is not supported");
	}
	return 0;
}

int
oai_request_parse(struct oai_request *r, enum oai_kind kind, const char *body, size_t len,
    const struct oai_defaults *defs, struct llmd_err *e)
{
	const cJSON *o, *so;
	int64_t v64;
	int rc, b;

	memset(r, 0, sizeof(*r));
	r->kind = kind;
	r->temperature = defs ? defs->temperature : 1.0;
	r->top_p = defs ? defs->top_p : 1.0;
	r->min_p = defs ? defs->min_p : 0.0;
	r->top_k = defs ? defs->top_k : 0;
	r->repetition_penalty = defs ? defs->repetition_penalty : 1.0;
	r->max_tokens = kind == OAI_COMPLETION ? 16 : -1;
	r->add_generation_prompt = 1;
	r->add_special_tokens = kind == OAI_COMPLETION;
	r->skip_special_tokens = 1;

	if ((rc = json_parse_named(body, len, "request body", &r->root, e)) < 0)
		return rc;
	o = r->root;
	if (!cJSON_IsObject(o))
		return bad(e, "", "the request body must be a JSON object");
	if ((rc = json_get_str(o, "model", &r->model, 0, e)) < 0)
		return rc;
	if ((rc = refuse_unsupported(o, kind, e)) < 0)
		return rc;
	if ((rc = json_get_bool(o, "stream", &r->stream, 0, e)) < 0)
		return rc;
	if ((rc = json_get_object(o, "stream_options", &so, 0, e)) < 0)
		return rc;
	if (cJSON_GetObjectItemCaseSensitive(o, "stream_options") != NULL &&
	    !cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(o, "stream_options"))) {
		if (!r->stream)
			return bad(e, "stream_options", "stream_options can only be set when stream is true");
		r->include_usage = 1;   /* vLLM's StreamOptions: include_usage defaults to true */
		if ((rc = json_get_bool(so, "include_usage", &r->include_usage, 0, e)) < 0 ||
		    (rc = json_get_bool(so, "continuous_usage_stats", &r->continuous_usage, 0, e)) < 0)
			return json_path_prefix(e, "stream_options");
	}

	if (kind == OAI_COMPLETION) {
		if ((rc = parse_prompt(r, o, e)) < 0)
			return rc;
		if ((rc = json_get_int64(o, "max_tokens", &r->max_tokens, 0, e)) < 0)
			return rc;
		if ((rc = json_get_bool(o, "echo", &r->echo, 0, e)) < 0)
			return rc;
		v64 = -1;
		if ((rc = json_get_int64(o, "logprobs", &v64, 0, e)) < 0)
			return rc;
		if (v64 > OAI_MAX_TOP_LOGPROBS)
			return err_set(e, -EINVAL, "logprobs", "must be at most %d", OAI_MAX_TOP_LOGPROBS);
		if (v64 >= 0) {
			r->logprobs = 1;
			r->top_logprobs = (int)v64;
		} else if (cJSON_GetObjectItemCaseSensitive(o, "logprobs") != NULL &&
		    !cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(o, "logprobs"))) {
			return bad(e, "logprobs", "must be a non-negative integer");
		}
	} else {
		if ((rc = parse_messages(r, o, e)) < 0)
			return rc;
		if ((rc = json_get_int64(o, "max_tokens", &r->max_tokens, 0, e)) < 0)
			return rc;
		if ((rc = json_get_int64(o, "max_completion_tokens", &r->max_tokens, 0, e)) < 0)
			return rc;
		if ((rc = json_get_bool(o, "logprobs", &r->logprobs, 0, e)) < 0)
			return rc;
		v64 = 0;
		if ((rc = json_get_int64_range(o, "top_logprobs", 0, OAI_MAX_TOP_LOGPROBS, &v64, 0, e)) < 0)
			return rc;
		r->top_logprobs = (int)v64;
		if (r->top_logprobs > 0 && !r->logprobs)
			return bad(e, "top_logprobs", "top_logprobs requires logprobs to be true");
		if ((rc = json_get_bool(o, "add_generation_prompt", &r->add_generation_prompt, 0, e)) < 0 ||
		    (rc = json_get_bool(o, "continue_final_message", &r->continue_final_message, 0, e)) < 0)
			return rc;
		if (r->add_generation_prompt && r->continue_final_message &&
		    cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "add_generation_prompt")))
			return bad(e, "continue_final_message",
			    "cannot be true together with add_generation_prompt");
		if (r->continue_final_message)
			r->add_generation_prompt = 0;
		if ((rc = json_get_object(o, "chat_template_kwargs", &r->chat_template_kwargs, 0, e)) < 0)
			return rc;
		if (cJSON_GetObjectItemCaseSensitive(o, "chat_template") != NULL &&
		    !cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(o, "chat_template")))
			return bad(e, "chat_template", "a per-request chat_template is not accepted; start the server with --chat-template");
	}
	{
		const char *mt = NULL;
		const cJSON *v;
		if ((v = cJSON_GetObjectItemCaseSensitive(o, "max_tokens")) != NULL && !cJSON_IsNull(v))
			mt = "max_tokens";
		if (kind == OAI_CHAT && (v = cJSON_GetObjectItemCaseSensitive(o, "max_completion_tokens")) != NULL &&
		    !cJSON_IsNull(v))
			mt = "max_completion_tokens";
		if (mt != NULL && r->max_tokens < (kind == OAI_CHAT ? 1 : 0))
			return err_set(e, -EINVAL, mt, "must be at least %d, got %lld",
			    kind == OAI_CHAT ? 1 : 0, (long long)r->max_tokens);
	}
	if ((rc = json_get_int64_range(o, "min_tokens", 0, INT32_MAX, &r->min_tokens, 0, e)) < 0)
		return rc;
	if (r->max_tokens >= 0 && r->min_tokens > r->max_tokens)
		return bad(e, "min_tokens", "must be less than or equal to max_tokens");

	if ((rc = get_num(o, "temperature", 0, 100, &r->temperature, e)) < 0 ||
	    (rc = get_num(o, "top_p", 0, 1, &r->top_p, e)) < 0 ||
	    (rc = get_num(o, "min_p", 0, 1, &r->min_p, e)) < 0 ||
	    (rc = get_num(o, "presence_penalty", -2, 2, &r->presence_penalty, e)) < 0 ||
	    (rc = get_num(o, "frequency_penalty", -2, 2, &r->frequency_penalty, e)) < 0 ||
	    (rc = get_num(o, "repetition_penalty", 1e-6, 100, &r->repetition_penalty, e)) < 0)
		return rc;
	if (cJSON_GetObjectItemCaseSensitive(o, "top_p") && r->top_p <= 0)
		return bad(e, "top_p", "must be in (0, 1]");
	if ((rc = json_get_int64_range(o, "top_k", -1, INT32_MAX, &r->top_k, 0, e)) < 0)
		return rc;
	if (cJSON_GetObjectItemCaseSensitive(o, "seed") != NULL &&
	    !cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(o, "seed"))) {
		if ((rc = json_get_int64(o, "seed", &r->seed, 0, e)) < 0)
			return rc;
		r->has_seed = 1;
	}
	if ((rc = parse_stop(r, o, e)) < 0)
		return rc;
	const cJSON *sti = cJSON_GetObjectItemCaseSensitive(o, "stop_token_ids");
	if (sti != NULL && !cJSON_IsNull(sti)) {
		int32_t *ids = NULL;
		size_t n = 0;
		if (!cJSON_IsArray(sti))
			return bad(e, "stop_token_ids", "must be an array of token ids");
		rc = parse_ids(sti, "stop_token_ids", &ids, &n, OAI_MAX_STOP_IDS, e);
		if (rc == 0)
			memcpy(r->stop_token_ids, ids, n * sizeof(int32_t));
		r->n_stop_token_ids = rc == 0 ? n : 0;
		free(ids);
		if (rc < 0)
			return rc;
	}
	b = r->add_special_tokens;
	if ((rc = json_get_bool(o, "add_special_tokens", &b, 0, e)) < 0)
		return rc;
	r->add_special_tokens = b;
	if ((rc = json_get_bool(o, "include_stop_str_in_output", &r->include_stop_str_in_output, 0, e)) < 0 ||
	    (rc = json_get_bool(o, "ignore_eos", &r->ignore_eos, 0, e)) < 0 ||
	    (rc = json_get_bool(o, "skip_special_tokens", &r->skip_special_tokens, 0, e)) < 0)
		return rc;
	if ((rc = json_get_str(o, "request_id", &r->request_id, 0, e)) < 0 ||
	    (rc = json_get_str(o, "cache_salt", &r->cache_salt, 0, e)) < 0)
		return rc;
	if ((rc = json_get_int64(o, "priority", &r->priority, 0, e)) < 0)
		return rc;
	const cJSON *kv = cJSON_GetObjectItemCaseSensitive(o, "kv_transfer_params");
	if (kv != NULL && !cJSON_IsNull(kv)) {
		if (!cJSON_IsObject(kv))
			return bad(e, "kv_transfer_params", "must be an object");
		r->kv_transfer_params = kv;
	}
	return 0;
}

void
oai_request_release(struct oai_request *r)
{
	for (size_t i = 0; i < r->n_stop; i++)
		free(r->stop[i]);
	free(r->prompt_ids);
	cJSON_Delete(r->root);
	memset(r, 0, sizeof(*r));
}
