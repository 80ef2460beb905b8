/*
 * engine/server.c - llmd-engine's HTTP front: the vLLM-compatible OpenAI API
 * (/v1/completions, /v1/chat/completions with SSE streaming, /v1/models,
 * /tokenize, /detokenize), /health, /version and /metrics, on lib/http_server.
 * Requests are parsed and submitted here (event loop thread); the compute
 * thread's events come back through the engine core's eventfd and are turned
 * into SSE chunks or one JSON response.
 */
#include "config.h"
#include "engine/server.h"

#include <errno.h>
#include <event2/event.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/http_server.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/notify.h"
#include "lib/util.h"
#include "lib/workpool.h"

/* Loop-side state of a request. */
struct srv_req {
	struct srv_req *prev, *next;  /* es->live */
	struct engine_req *r;
	int aborted;                  /* engine_core_abort() called */
	struct engine_server *es;
	int prep_rc;                  /* result of engine_core_prepare on the worker */
	struct llmd_err prep_err;
	struct http_req *http;
	int stream;
	int sent_first;
	struct buf text;              /* non-streaming: the whole completion */
	size_t n_tokens;
	uint32_t n_cached;
	cJSON *lp;                    /* non-streaming logprobs accumulator */
	size_t text_offset;
};

/* ---- errors in vLLM's shape ---- */

static const char *
error_type(int status)
{
	switch (status) {
	case 400: return "BadRequestError";
	case 401: return "UnauthorizedError";
	case 404: return "NotFoundError";
	case 405: return "MethodNotAllowed";
	case 413: return "RequestEntityTooLarge";
	case 429: return "RateLimitError";
	case 503: return "ServiceUnavailableError";
	default: return status >= 500 ? "InternalServerError" : "BadRequestError";
	}
}

static void
error_body(struct buf *out, int status, const char *param, const char *message)
{
	buf_adds(out, "{\"error\":{\"message\":");
	buf_add_json_str(out, message, strlen(message));
	buf_addf(out, ",\"type\":\"%s\",\"param\":", error_type(status));
	if (param && *param)
		buf_add_json_str(out, param, strlen(param));
	else
		buf_adds(out, "null");
	buf_addf(out, ",\"code\":%d}}", status);
}

static const char *
error_fmt_vllm(struct buf *out, int status, const char *reason, const char *message, void *arg)
{
	(void)reason;
	(void)arg;
	error_body(out, status, NULL, message);
	return "application/json";
}

static void
reply_error(struct http_req *req, int status, const char *param, const char *fmt, ...)
    LLMD_PRINTF(4, 5);

static void
reply_error(struct http_req *req, int status, const char *param, const char *fmt, ...)
{
	struct buf b = BUF_INIT, msg = BUF_INIT;
	va_list ap;

	va_start(ap, fmt);
	buf_vaddf(&msg, fmt, ap);
	va_end(ap);
	error_body(&b, status, param, msg.buf);
	http_reply_buf(req, status, "application/json", &b);
	buf_release(&b);
	buf_release(&msg);
}

/* 400 (or 413/404) from an llmd_err: message "field: msg" as vLLM words it. */
static void
reply_llmd_err(struct http_req *req, int status, const struct llmd_err *e)
{
	if (e->field[0])
		reply_error(req, status, e->field, "%s: %s", e->field, e->msg);
	else
		reply_error(req, status, NULL, "%s", e->msg);
}

/* ---- helpers ---- */

static int
check_api_key(struct engine_server *es, struct http_req *req)
{
	const char *h;

	if (es->cfg.api_key == NULL)
		return 1;
	h = http_req_header(req, "Authorization");
	if (h && strncmp(h, "Bearer ", 7) == 0 && strcmp(h + 7, es->cfg.api_key) == 0)
		return 1;
	reply_error(req, 401, NULL, "Unauthorized: a valid API key is required");
	return 0;
}

static int
model_known(struct engine_server *es, const char *name)
{
	for (int i = 0; i < es->cfg.n_served_names; i++)
		if (strcmp(es->cfg.served_names[i], name) == 0)
			return 1;
	return 0;
}

/* The text of one token, as vLLM shows it in logprobs. */
static void
token_text(struct engine_server *es, int32_t id, struct buf *out)
{
	tokenizer_decode(es->core.tok, &id, 1, 0, out);
}

static void
random_id(char *out, size_t n, const char *prefix)
{
	static const char hex[] = "0123456789abcdef";
	uint64_t x = now_us() ^ ((uint64_t)rand() << 20) ^ (uint64_t)(uintptr_t)out;
	size_t p = (size_t)snprintf(out, n, "%s", prefix);

	for (int i = 0; i < 24 && p + 1 < n; i++) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		out[p++] = hex[(x >> 59) & 15];
	}
	out[p] = '\0';
}

/* ---- GET endpoints ---- */

static void
h_health(struct http_req *req, void *arg)
{
	(void)arg;
	http_reply_data(req, 200, NULL, "", 0);
}

static void
h_version(struct http_req *req, void *arg)
{
	const char body[] = "{\"version\":\"" PACKAGE_VERSION "\",\"engine\":\"llmd-engine\"}";

	(void)arg;
	http_reply_data(req, 200, "application/json", body, sizeof(body) - 1);
}

static void
h_models(struct http_req *req, void *arg)
{
	struct engine_server *es = arg;
	cJSON *o, *data;

	if (!check_api_key(es, req))
		return;
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "object", "list");
	data = cJSON_AddArrayToObject(o, "data");
	for (int i = 0; i < es->cfg.n_served_names; i++) {
		cJSON *m = cJSON_CreateObject();
		cJSON_AddStringToObject(m, "id", es->cfg.served_names[i]);
		cJSON_AddStringToObject(m, "object", "model");
		cJSON_AddNumberToObject(m, "created", (double)es->started);
		cJSON_AddStringToObject(m, "owned_by", "llmd");
		cJSON_AddStringToObject(m, "root", es->cfg.model_dir);
		cJSON_AddNullToObject(m, "parent");
		cJSON_AddNumberToObject(m, "max_model_len", es->core.max_model_len);
		cJSON_AddItemToObject(m, "permission", cJSON_CreateArray());
		cJSON_AddItemToArray(data, m);
	}
	http_reply_json(req, 200, o);
	cJSON_Delete(o);
}

static void
h_metrics(struct http_req *req, void *arg)
{
	struct engine_server *es = arg;
	struct buf b = BUF_INIT;

	engine_core_update_metrics(&es->core);
	metrics_render(es->core.metrics, &b);
	http_reply_buf(req, 200, "text/plain; version=0.0.4; charset=utf-8", &b);
	buf_release(&b);
}

/* ---- /tokenize and /detokenize ---- */

/*
 * Tokenizing or decoding a body of megabytes is work: it runs on a prep
 * worker, and the reply is sent from the loop.
 */
struct util_job {
	struct engine_server *es;
	struct http_req *req;
	const char *body;             /* the request's, valid until it is finished */
	size_t len;
	cJSON *out;                   /* the reply, or NULL: e is the 400 */
	struct llmd_err e;
};

static void
tokenize_work(void *arg)
{
	struct util_job *j = arg;
	struct engine_server *es = j->es;
	struct llmd_err *e = &j->e;
	const char *prompt = NULL;
	size_t n = 0;
	cJSON *root = NULL, *o;
	int32_t *ids = NULL;
	int add_special = 1, strs = 0, rc;

	if ((rc = json_parse_named(j->body, j->len, "request body", &root, e)) < 0 || !cJSON_IsObject(root)) {
		if (rc == 0)
			err_set(e, -EINVAL, "", "the request body must be a JSON object");
		goto out;
	}
	if (json_get_bool(root, "add_special_tokens", &add_special, 0, e) < 0 ||
	    json_get_bool(root, "return_token_strs", &strs, 0, e) < 0)
		goto out;
	if (cJSON_GetObjectItemCaseSensitive(root, "messages") != NULL) {
		struct engine_req *tmp = xcalloc(1, sizeof(*tmp));
		struct oai_request *orq = &tmp->oai;
		rc = oai_request_parse(orq, OAI_CHAT, j->body, j->len, &es->core.defaults, e);
		if (rc == 0) {
			/* reuse the chat path: render and encode, without queueing */
			struct buf text = BUF_INIT;
			rc = engine_core_render_chat(&es->core, orq, &text, e);
			if (rc == 0)
				rc = tokenizer_encode(es->core.tok, text.buf, text.len, 0, &ids, &n);
			buf_release(&text);
		}
		engine_req_free(tmp);
		if (rc < 0) {
			if (e->msg[0] == '\0')
				err_set(e, rc, "messages", "cannot be tokenized");
			goto out;
		}
	} else {
		if (json_get_str(root, "prompt", &prompt, 1, e) < 0)
			goto out;
		if (tokenizer_encode(es->core.tok, prompt, strlen(prompt), add_special, &ids, &n) < 0) {
			err_set(e, -EINVAL, "prompt", "cannot be tokenized");
			goto out;
		}
	}
	o = cJSON_CreateObject();
	cJSON_AddNumberToObject(o, "count", (double)n);
	cJSON_AddNumberToObject(o, "max_model_len", es->core.max_model_len);
	cJSON *toks = cJSON_AddArrayToObject(o, "tokens");
	for (size_t i = 0; i < n; i++)
		cJSON_AddItemToArray(toks, cJSON_CreateNumber(ids[i]));
	if (strs) {
		cJSON *ts = cJSON_AddArrayToObject(o, "token_strs");
		for (size_t i = 0; i < n; i++) {
			const char *s = tokenizer_id_token(es->core.tok, ids[i]);
			cJSON_AddItemToArray(ts, cJSON_CreateString(s ? s : ""));
		}
	} else {
		cJSON_AddNullToObject(o, "token_strs");
	}
	j->out = o;
out:
	cJSON_Delete(root);
	free(ids);
}

static void
detokenize_work(void *arg)
{
	struct util_job *j = arg;
	struct engine_server *es = j->es;
	struct llmd_err *e = &j->e;
	size_t i = 0;
	cJSON *root = NULL;
	const cJSON *arr, *it;
	int32_t *ids;
	struct buf text = BUF_INIT;
	int rc;

	if ((rc = json_parse_named(j->body, j->len, "request body", &root, e)) < 0 || !cJSON_IsObject(root) ||
	    json_get_array(root, "tokens", &arr, 1, e) < 0) {
		if (e->msg[0] == '\0')
			err_set(e, -EINVAL, "", "the request body must be a JSON object");
		cJSON_Delete(root);
		return;
	}
	ids = xcalloc((size_t)cJSON_GetArraySize(arr) + 1, sizeof(int32_t));
	cJSON_ArrayForEach(it, arr) {
		if (!cJSON_IsNumber(it) || it->valuedouble < 0 || it->valuedouble >= es->core.vocab ||
		    it->valuedouble != floor(it->valuedouble)) {
			err_set(e, -EINVAL, "tokens", "element %zu is not a token id of this model", i);
			free(ids);
			cJSON_Delete(root);
			return;
		}
		ids[i++] = (int32_t)it->valuedouble;
	}
	tokenizer_decode(es->core.tok, ids, i, 0, &text);
	j->out = cJSON_CreateObject();
	cJSON_AddStringToObject(j->out, "prompt", text.buf);
	cJSON_Delete(root);
	buf_release(&text);
	free(ids);
}

/* loop thread */
static void
util_done(void *arg)
{
	struct util_job *j = arg;

	if (j->out != NULL)
		http_reply_json(j->req, 200, j->out);
	else
		reply_llmd_err(j->req, 400, &j->e);
	cJSON_Delete(j->out);
	free(j);
}

static void
util_submit(struct http_req *req, struct engine_server *es, workpool_fn work)
{
	struct util_job *j = xcalloc(1, sizeof(*j));

	j->es = es;
	j->req = req;
	j->body = http_req_body(req, &j->len);
	if (es->stopping || workpool_submit(es->prep, work, util_done, j) < 0) {
		reply_error(req, 503, NULL, "too many requests being prepared");
		free(j);
	}
}

static void
h_tokenize(struct http_req *req, void *arg)
{
	util_submit(req, arg, tokenize_work);
}

static void
h_detokenize(struct http_req *req, void *arg)
{
	util_submit(req, arg, detokenize_work);
}

/* ---- completions ---- */

static const char *
finish_str(const struct engine_event *ev)
{
	return ev->finish == SCHED_NOT_FINISHED ? NULL : sched_finish_reason(ev->finish);
}

static void
add_stop_reason(cJSON *choice, const struct engine_event *ev)
{
	if (ev->stop_is_str)
		cJSON_AddStringToObject(choice, "stop_reason", ev->stop_str);
	else if (ev->stop_token >= 0)
		cJSON_AddNumberToObject(choice, "stop_reason", ev->stop_token);
	else
		cJSON_AddNullToObject(choice, "stop_reason");
}

static cJSON *
usage_json(const struct engine_req *r, const struct srv_req *s)
{
	cJSON *u = cJSON_CreateObject();

	cJSON_AddNumberToObject(u, "prompt_tokens", (double)r->n_prompt);
	cJSON_AddNumberToObject(u, "total_tokens", (double)(r->n_prompt + s->n_tokens));
	cJSON_AddNumberToObject(u, "completion_tokens", (double)s->n_tokens);
	cJSON_AddNullToObject(u, "prompt_tokens_details");
	return u;
}

/* The logprobs entries of one token: chat {"token","logprob","bytes","top_logprobs"}. */
static cJSON *
chat_lp_entry(struct engine_server *es, const struct engine_event *ev)
{
	cJSON *c = cJSON_CreateObject(), *tops, *bytes;
	struct buf t = BUF_INIT;

	token_text(es, ev->token, &t);
	cJSON_AddStringToObject(c, "token", t.buf);
	cJSON_AddNumberToObject(c, "logprob", isfinite(ev->logprob) ? ev->logprob : -9999.0);
	bytes = cJSON_AddArrayToObject(c, "bytes");
	for (size_t i = 0; i < t.len; i++)
		cJSON_AddItemToArray(bytes, cJSON_CreateNumber((unsigned char)t.buf[i]));
	tops = cJSON_AddArrayToObject(c, "top_logprobs");
	for (int i = 0; i < ev->n_top; i++) {
		cJSON *tp = cJSON_CreateObject();
		buf_reset(&t);
		token_text(es, ev->top_ids[i], &t);
		cJSON_AddStringToObject(tp, "token", t.buf);
		cJSON_AddNumberToObject(tp, "logprob", isfinite(ev->top_lp[i]) ? ev->top_lp[i] : -9999.0);
		bytes = cJSON_AddArrayToObject(tp, "bytes");
		for (size_t k = 0; k < t.len; k++)
			cJSON_AddItemToArray(bytes, cJSON_CreateNumber((unsigned char)t.buf[k]));
		cJSON_AddItemToArray(tops, tp);
	}
	buf_release(&t);
	return c;
}

/* Completions logprobs object {"text_offset","token_logprobs","tokens","top_logprobs"}. */
static cJSON *
cmpl_lp_new(void)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddArrayToObject(o, "text_offset");
	cJSON_AddArrayToObject(o, "token_logprobs");
	cJSON_AddArrayToObject(o, "tokens");
	cJSON_AddArrayToObject(o, "top_logprobs");
	return o;
}

static void
cmpl_lp_add(struct engine_server *es, cJSON *o, const struct engine_event *ev, size_t offset)
{
	struct buf t = BUF_INIT;
	cJSON *top = cJSON_CreateObject();

	token_text(es, ev->token, &t);
	cJSON_AddItemToArray(cJSON_GetObjectItem(o, "text_offset"), cJSON_CreateNumber((double)offset));
	cJSON_AddItemToArray(cJSON_GetObjectItem(o, "token_logprobs"),
	    cJSON_CreateNumber(isfinite(ev->logprob) ? ev->logprob : -9999.0));
	cJSON_AddItemToArray(cJSON_GetObjectItem(o, "tokens"), cJSON_CreateString(t.buf));
	/* as vLLM's: the sampled token is in the dict too, besides the top ones */
	if (ev->n_top > 0)
		cJSON_AddNumberToObject(top, t.buf, isfinite(ev->logprob) ? ev->logprob : -9999.0);
	for (int i = 0; i < ev->n_top; i++) {
		buf_reset(&t);
		token_text(es, ev->top_ids[i], &t);
		if (cJSON_GetObjectItemCaseSensitive(top, t.buf) == NULL)
			cJSON_AddNumberToObject(top, t.buf, isfinite(ev->top_lp[i]) ? ev->top_lp[i] : -9999.0);
	}
	cJSON_AddItemToArray(cJSON_GetObjectItem(o, "top_logprobs"), top);
	buf_release(&t);
}

static cJSON *
chunk_base(const struct engine_req *r, struct engine_server *es)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "id", r->id);
	cJSON_AddStringToObject(o, "object", r->oai.kind == OAI_CHAT ? "chat.completion.chunk" : "text_completion");
	cJSON_AddNumberToObject(o, "created", (double)r->created);
	cJSON_AddStringToObject(o, "model", r->oai.model ? r->oai.model : es->cfg.served_names[0]);
	return o;
}

static void
send_sse(struct http_req *req, const cJSON *o)
{
	struct buf b = BUF_INIT;

	buf_adds(&b, "data: ");
	json_print_compact(o, &b);
	buf_adds(&b, "\n\n");
	http_stream_chunk(req, b.buf, b.len);
	buf_release(&b);
}

static void
stream_event(struct engine_server *es, struct engine_req *r, struct srv_req *s,
    const struct engine_event *ev)
{
	cJSON *o, *choices, *c;
	const char *fin = finish_str(ev);

	if (ev->text_len == 0 && fin == NULL && !(r->oai.logprobs && ev->token >= 0))
		return;
	o = chunk_base(r, es);
	choices = cJSON_AddArrayToObject(o, "choices");
	c = cJSON_CreateObject();
	cJSON_AddNumberToObject(c, "index", 0);
	if (r->oai.kind == OAI_CHAT) {
		cJSON *d = cJSON_AddObjectToObject(c, "delta");
		cJSON_AddStringToObject(d, "content", ev->text ? ev->text : "");
		if (r->oai.logprobs && ev->token >= 0) {
			cJSON *lp = cJSON_AddObjectToObject(c, "logprobs");
			cJSON *content = cJSON_AddArrayToObject(lp, "content");
			cJSON_AddItemToArray(content, chat_lp_entry(es, ev));
		} else {
			cJSON_AddNullToObject(c, "logprobs");
		}
	} else {
		cJSON_AddStringToObject(c, "text", ev->text ? ev->text : "");
		if (r->oai.logprobs && ev->token >= 0) {
			cJSON *lp = cmpl_lp_new();
			cmpl_lp_add(es, lp, ev, s->text_offset);
			cJSON_AddItemToObject(c, "logprobs", lp);
		} else {
			cJSON_AddNullToObject(c, "logprobs");
		}
	}
	s->text_offset += ev->text_len;
	if (fin)
		cJSON_AddStringToObject(c, "finish_reason", fin);
	else
		cJSON_AddNullToObject(c, "finish_reason");
	/* completions chunks always carry stop_reason, chat ones on the last */
	if (fin || r->oai.kind == OAI_COMPLETION)
		add_stop_reason(c, ev);
	cJSON_AddItemToArray(choices, c);
	if (r->oai.continuous_usage && r->oai.include_usage)
		cJSON_AddItemToObject(o, "usage", usage_json(r, s));
	send_sse(s->http, o);
	cJSON_Delete(o);
}

static void
stream_first(struct engine_server *es, struct engine_req *r, struct srv_req *s)
{
	http_reply_header(s->http, "Cache-Control", "no-cache");
	http_stream_start(s->http, 200, "text/event-stream");
	if (r->oai.kind == OAI_CHAT) {
		cJSON *o = chunk_base(r, es);
		cJSON *c = cJSON_CreateObject(), *d;
		cJSON_AddNumberToObject(c, "index", 0);
		d = cJSON_AddObjectToObject(c, "delta");
		cJSON_AddStringToObject(d, "role", "assistant");
		cJSON_AddStringToObject(d, "content", "");
		cJSON_AddNullToObject(c, "logprobs");
		cJSON_AddNullToObject(c, "finish_reason");
		cJSON_AddItemToArray(cJSON_AddArrayToObject(o, "choices"), c);
		send_sse(s->http, o);
		cJSON_Delete(o);
	}
	if (r->oai.kind == OAI_COMPLETION && r->oai.echo) {
		struct engine_event ev = { .token = -1, .stop_token = -1 };
		struct buf t = BUF_INIT;
		tokenizer_decode(es->core.tok, r->prompt, r->n_prompt, 1, &t);
		ev.text = t.buf;
		ev.text_len = t.len;
		stream_event(es, r, s, &ev);
		buf_release(&t);
	}
	s->sent_first = 1;
}

static void
finish_nonstream(struct engine_server *es, struct engine_req *r, struct srv_req *s,
    const struct engine_event *ev)
{
	cJSON *o = cJSON_CreateObject(), *choices, *c;

	cJSON_AddStringToObject(o, "id", r->id);
	cJSON_AddStringToObject(o, "object", r->oai.kind == OAI_CHAT ? "chat.completion" : "text_completion");
	cJSON_AddNumberToObject(o, "created", (double)r->created);
	cJSON_AddStringToObject(o, "model", r->oai.model ? r->oai.model : es->cfg.served_names[0]);
	choices = cJSON_AddArrayToObject(o, "choices");
	c = cJSON_CreateObject();
	cJSON_AddNumberToObject(c, "index", 0);
	if (r->oai.kind == OAI_CHAT) {
		cJSON *m = cJSON_AddObjectToObject(c, "message");
		cJSON_AddStringToObject(m, "role", "assistant");
		cJSON_AddStringToObject(m, "content", s->text.buf);
		cJSON_AddItemToObject(m, "tool_calls", cJSON_CreateArray());
		cJSON_AddNullToObject(m, "reasoning_content");
	} else {
		cJSON_AddStringToObject(c, "text", s->text.buf);
	}
	if (s->lp) {
		cJSON_AddItemToObject(c, "logprobs", s->lp);
		s->lp = NULL;
	} else {
		cJSON_AddNullToObject(c, "logprobs");
	}
	cJSON_AddStringToObject(c, "finish_reason", finish_str(ev));
	add_stop_reason(c, ev);
	if (r->oai.kind == OAI_COMPLETION)
		cJSON_AddNullToObject(c, "prompt_logprobs");
	cJSON_AddItemToArray(choices, c);
	cJSON_AddItemToObject(o, "usage", usage_json(r, s));
	if (r->oai.kind == OAI_CHAT)
		cJSON_AddNullToObject(o, "prompt_logprobs");
	if (ev->kv_params != NULL)
		cJSON_AddItemReferenceToObject(o, "kv_transfer_params", ev->kv_params);
	else
		cJSON_AddNullToObject(o, "kv_transfer_params");
	http_reply_json(s->http, 200, o);
	cJSON_Delete(o);
}

static void
srv_req_free(struct engine_req *r)
{
	struct srv_req *s = r->server_data;

	if (s) {
		struct engine_server *es = s->es;
		if (s->prev)
			s->prev->next = s->next;
		else if (es->live == s)
			es->live = s->next;
		if (s->next)
			s->next->prev = s->prev;
		es->n_live--;
		buf_release(&s->text);
		cJSON_Delete(s->lp);
		free(s);
	}
	engine_req_free(r);
}

static void
on_event(struct engine_server *es, struct engine_event *ev)
{
	struct engine_req *r = ev->req;
	struct srv_req *s = r->server_data;

	if (ev->token >= 0)
		s->n_tokens++;
	s->n_cached = ev->n_cached;
	if (s->stream) {
		if (!s->sent_first)
			stream_first(es, r, s);
		stream_event(es, r, s, ev);
		/* a client that stops reading while tokens keep coming: the queue
		 * would grow with every token (logprobs included) */
		if (ev->finish == SCHED_NOT_FINISHED && !s->aborted && es->cfg.max_stream_backlog > 0 &&
		    http_stream_pending(s->http) > es->cfg.max_stream_backlog) {
			log_warnx("%s: the client reads too slowly (%zu bytes queued); aborting",
			    r->id, http_stream_pending(s->http));
			s->aborted = 1;
			engine_core_abort(&es->core, r);
		}
	} else {
		if (r->oai.logprobs && ev->token >= 0) {
			if (r->oai.kind == OAI_CHAT) {
				if (s->lp == NULL) {
					s->lp = cJSON_CreateObject();
					cJSON_AddArrayToObject(s->lp, "content");
				}
				cJSON_AddItemToArray(cJSON_GetObjectItem(s->lp, "content"), chat_lp_entry(es, ev));
			} else {
				if (s->lp == NULL)
					s->lp = cmpl_lp_new();
				cmpl_lp_add(es, s->lp, ev, s->text.len);
			}
		}
		if (ev->text_len)
			buf_add(&s->text, ev->text, ev->text_len);
	}
	if (ev->finish == SCHED_NOT_FINISHED)
		return;
	/* held prefill blocks whose kv_transfer_params nobody will read (only a
	 * non-streamed response carries them): free now, not at the timeout */
	if (ev->kv_params != NULL && (s->stream || http_req_closed(s->http)))
		kv_connector_release(es->core.kvc, cJSON_GetStringValue(
		    cJSON_GetObjectItemCaseSensitive(ev->kv_params, "remote_request_id")));
	if (s->stream) {
		if (r->oai.include_usage) {
			cJSON *o = chunk_base(r, es);
			cJSON_AddArrayToObject(o, "choices");
			cJSON_AddItemToObject(o, "usage", usage_json(r, s));
			send_sse(s->http, o);
			cJSON_Delete(o);
		}
		http_stream_chunk(s->http, "data: [DONE]\n\n", 14);
		http_stream_end(s->http);
	} else if (ev->finish == SCHED_FINISH_ABORT && http_req_closed(s->http)) {
		http_reply_data(s->http, 499, NULL, "", 0);
	} else {
		finish_nonstream(es, r, s, ev);
	}
	srv_req_free(r);
}

static void
on_outbox(evutil_socket_t fd, short what, void *arg)
{
	struct engine_server *es = arg;
	struct engine_event *ev, *next;

	(void)fd;
	(void)what;
	for (ev = engine_core_take_events(&es->core); ev; ev = next) {
		next = ev->next;
		on_event(es, ev);
		engine_event_free(ev);
	}
}

static void
on_client_close(struct http_req *req, void *arg)
{
	struct engine_req *r = arg;
	struct srv_req *s = r->server_data;

	(void)req;
	engine_core_abort(&s->es->core, r);
}

static void prep_work(void *arg);
static void prep_done(void *arg);

static void
handle_generate(struct http_req *req, struct engine_server *es, enum oai_kind kind)
{
	struct llmd_err e = LLMD_ERR_INIT;
	struct engine_req *r;
	struct srv_req *s;
	const char *body, *rid;
	size_t len;
	int rc;

	if (!check_api_key(es, req))
		return;
	if (http_server_shutting_down(es->http)) {
		reply_error(req, 503, NULL, "the server is shutting down");
		return;
	}
	if (atomic_load(&es->core.n_active) >= es->cfg.max_queue) {
		reply_error(req, 503, NULL, "too many requests in flight (%d)", es->cfg.max_queue);
		return;
	}
	body = http_req_body(req, &len);
	r = xcalloc(1, sizeof(*r));
	rc = oai_request_parse(&r->oai, kind, body, len, &es->core.defaults, &e);
	if (rc < 0) {
		reply_llmd_err(req, 400, &e);
		engine_req_free(r);
		return;
	}
	if (r->oai.model != NULL && !model_known(es, r->oai.model)) {
		reply_error(req, 404, "model", "The model `%s` does not exist.", r->oai.model);
		engine_req_free(r);
		return;
	}
	rid = http_req_header(req, "X-Request-Id");
	if (rid == NULL)
		rid = r->oai.request_id;
	if (rid != NULL && strlen(rid) < 40)
		snprintf(r->id, sizeof(r->id), "%s%s", kind == OAI_CHAT ? "chatcmpl-" : "cmpl-", rid);
	else
		random_id(r->id, sizeof(r->id), kind == OAI_CHAT ? "chatcmpl-" : "cmpl-");
	r->created = (int64_t)time(NULL);

	s = xcalloc(1, sizeof(*s));
	s->es = es;
	s->r = r;
	s->next = es->live;
	if (es->live)
		es->live->prev = s;
	es->live = s;
	es->n_live++;
	s->http = req;
	s->stream = r->oai.stream;
	buf_init(&s->text, 0);
	r->server_data = s;
	r->http = req;

	/* rendering and tokenizing a long prompt is work: do it on a worker */
	if (workpool_submit(es->prep, prep_work, prep_done, r) < 0) {
		reply_error(req, 503, NULL, "too many requests being prepared");
		srv_req_free(r);
	}
}

/* worker thread: chat template and tokenizer (both read-only, thread-safe) */
static void
prep_work(void *arg)
{
	struct engine_req *r = arg;
	struct srv_req *s = r->server_data;

	s->prep_rc = engine_core_prepare(&s->es->core, r, &s->prep_err);
}

/* loop thread */
static void
prep_done(void *arg)
{
	struct engine_req *r = arg;
	struct srv_req *s = r->server_data;
	struct engine_server *es = s->es;
	struct http_req *req = s->http;
	int rc = s->prep_rc;

	if (es->stopping) {
		/* drained by workpool_free after the loop ended */
		reply_error(req, 503, NULL, "the server is shutting down");
		srv_req_free(r);
		return;
	}
	if (rc < 0) {
		reply_llmd_err(req, 400, &s->prep_err);
		srv_req_free(r);
		return;
	}
	/* max_tokens 0 (completions): nothing to generate; echo may still apply */
	if (r->oai.kind == OAI_COMPLETION && r->oai.max_tokens == 0) {
		struct engine_event ev = { .req = r, .token = -1, .stop_token = -1,
		    .finish = SCHED_FINISH_LENGTH };
		if (r->oai.echo && !s->stream)
			tokenizer_decode(es->core.tok, r->prompt, r->n_prompt, 1, &s->text);
		on_event(es, &ev);
		return;
	}
	if ((rc = engine_core_queue(&es->core, r, &s->prep_err)) < 0) {
		reply_llmd_err(req, rc == -EAGAIN ? 503 : 400, &s->prep_err);
		srv_req_free(r);
		return;
	}
	if (!s->stream && r->oai.echo)
		tokenizer_decode(es->core.tok, r->prompt, r->n_prompt, 1, &s->text);
	http_req_on_close(req, on_client_close, r);
}

/*
 * After the loop ended (the grace period is over, or every request is done):
 * prep jobs are answered 503, the compute thread is stopped, its last events
 * delivered, and requests it still had finish as aborted, so no request
 * (engine_req, http_req) outlives the core.
 */
static void
finish_all(struct engine_server *es)
{
	es->stopping = 1;
	workpool_free(es->prep);
	es->prep = NULL;
	engine_core_halt(&es->core);
	on_outbox(-1, 0, es);
	while (es->live != NULL) {
		struct srv_req *s = es->live;
		struct engine_event ev = { .req = s->r, .token = -1, .stop_token = -1,
		    .finish = SCHED_FINISH_ABORT };
		/* the core is stopping: no abort from a close callback */
		http_req_on_close(s->http, NULL, NULL);
		on_event(es, &ev);
	}
}

static void
h_completions(struct http_req *req, void *arg)
{
	handle_generate(req, arg, OAI_COMPLETION);
}

static void
h_chat(struct http_req *req, void *arg)
{
	handle_generate(req, arg, OAI_CHAT);
}

/* ---- set-up ---- */

int
engine_server_run(struct engine_server *es, const struct serve_config *cfg, struct llmd_err *e)
{
	struct http_server_config hc = { 0 };
	char addr[300];
	int port, rc;

	memset(es, 0, sizeof(*es));
	es->cfg = *cfg;
	es->started = (int64_t)time(NULL);
	if ((rc = engine_core_start(&es->core, cfg, e)) < 0) {
		engine_core_stop(&es->core);
		return rc;
	}
	if ((es->base = event_base_new()) == NULL) {
		engine_core_stop(&es->core);
		return err_set(e, -ENOMEM, "", "cannot create the event loop");
	}
	hc.max_body = cfg->max_body;
	hc.shutdown_grace_ms = cfg->shutdown_grace_ms;
	hc.error_fmt = error_fmt_vllm;
	hc.server_name = "llmd-engine/" PACKAGE_VERSION;
	if ((es->http = http_server_new(es->base, &hc, e)) == NULL) {
		rc = e->code ? e->code : -ENOMEM;
		goto fail;
	}
	http_server_route(es->http, "GET", "/health", h_health, es);
	http_server_route(es->http, "GET", "/ping", h_health, es);
	http_server_route(es->http, "GET", "/version", h_version, es);
	http_server_route(es->http, "GET", "/v1/models", h_models, es);
	http_server_route(es->http, "GET", "/metrics", h_metrics, es);
	http_server_route(es->http, "POST", "/tokenize", h_tokenize, es);
	http_server_route(es->http, "POST", "/detokenize", h_detokenize, es);
	http_server_route(es->http, "POST", "/v1/completions", h_completions, es);
	http_server_route(es->http, "POST", "/v1/chat/completions", h_chat, es);
	if (strchr(cfg->host, ':') != NULL)
		snprintf(addr, sizeof(addr), "[%s]:%d", cfg->host, cfg->port);
	else
		snprintf(addr, sizeof(addr), "%s:%d", cfg->host, cfg->port);
	if ((port = http_server_listen(es->http, addr, e)) < 0) {
		rc = port;
		goto fail;
	}
	if ((es->prep = workpool_new(es->base, 2, (size_t)cfg->max_queue)) == NULL) {
		rc = err_set(e, -errno, "", "cannot start the prep workers: %s", strerror(errno));
		goto fail;
	}
	es->outbox_ev = event_new(es->base, es->core.out_fd, EV_READ | EV_PERSIST, on_outbox, es);
	event_add(es->outbox_ev, NULL);
	http_server_handle_signals(es->http);
	log_info("serving %s as \"%s\" on %s:%d (%s)", cfg->model_dir, cfg->served_names[0],
	    cfg->host, port, cfg->simulate ? "simulated" : es->core.be->ops->name);
	/* the bound port alone on stdout's last line, for scripts (port 0) */
	printf("%d\n", port);
	fflush(stdout);
	notify_ready("serving");
	event_base_dispatch(es->base);
	notify_stopping();
	log_info("shutting down");
	finish_all(es);
	engine_core_stop(&es->core);
	event_free(es->outbox_ev);
	http_server_free(es->http);
	event_base_free(es->base);
	return 0;
fail:
	engine_core_stop(&es->core);
	http_server_free(es->http);
	event_base_free(es->base);
	return rc;
}
