/*
 * router/proxy.c - the proxied request: endpoint pick, upstream streaming
 * request, chunk-by-chunk relay with back-pressure, client-close
 * cancellation, retry before the first byte, route timeout, in-band SSE
 * error on a broken stream, access log and metrics.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>

#include "lib/http_client.h"
#include "lib/http_server.h"
#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/util.h"
#include "router/proxy.h"

#define MAX_ATTEMPTS 3
#define DOWN_MS 1000
#define BUFFERED_MAX (64u << 10)

struct proxy {
	struct proxy_env *env;
	struct proxy_request r;
	struct http_req *req;            /* NULL once finished */
	struct pick_result pick;
	struct endpoint *tried[MAX_ATTEMPTS];
	size_t n_tried;
	struct http_client_req *up;
	int head_sent, sse, status, paused, inflight;
	int retry_503;                   /* the endpoint turned it away: try another */
	int buffered;                    /* small Content-Length reply: sent whole at the end */
	char *ctype;
	struct buf body;
	size_t bytes;
	uint64_t t0_us, ttft_us;
	struct event *timer, *drain;
};

static void attempt(struct proxy *px);

static void
px_free(struct proxy *px)
{
	if (px->up != NULL)
		http_client_cancel(px->up);
	if (px->inflight && px->pick.ep != NULL)
		px->pick.ep->inflight--;
	if (px->timer != NULL)
		event_free(px->timer);
	if (px->drain != NULL)
		event_free(px->drain);
	pick_result_release(&px->pick);
	free(px->ctype);
	buf_release(&px->body);
	for (size_t i = 0; i < px->n_tried; i++)
		endpoint_unref(px->tried[i]);
	pool_unref(px->r.pool);
	if (px->r.prefill != NULL)
		pool_unref(px->r.prefill);
	free(px->r.service);
	free(px->r.path);
	free(px->r.model);
	free(px->r.salt);
	free(px->r.session);
	buf_release(&px->r.prompt);
	free(px);
}

/* Counts, logs and forgets the request; the reply must be finished by the caller. */
static void
account(struct proxy *px, int status)
{
	struct proxy_env *env = px->env;
	const char *pool = px->r.pool->name;
	const char *ep = px->pick.ep != NULL ? px->pick.ep->addr : "-";
	char code[16];
	double dur = (double)(now_us() - px->t0_us) / 1e6;

	snprintf(code, sizeof(code), "%d", status);
	metric_add(env->m_requests, (const char *[]){ pool, ep, code }, 1);
	metric_observe(env->m_duration, (const char *[]){ pool }, dur);
	if (px->ttft_us != 0)
		metric_observe(env->m_ttft, (const char *[]){ pool },
		    (double)(px->ttft_us - px->t0_us) / 1e6);
	if (env->access_log)
		log_info("access: %s %s %s -> %s %s status=%d ttft_ms=%.1f duration_ms=%.1f bytes=%zu",
		    px->req != NULL ? http_req_peer(px->req) : "-",
		    px->req != NULL ? http_req_method(px->req) : "-",
		    px->req != NULL ? http_req_path(px->req) : "-", pool, ep, status,
		    px->ttft_us ? (double)(px->ttft_us - px->t0_us) / 1e3 : -1.0, dur * 1e3,
		    px->bytes);
}

static void
reply_error(struct proxy *px, int status, const char *reason, const char *msg)
{
	account(px, status);
	http_reply_error(px->req, status, reason, "%s", msg);
	px->req = NULL;
	px_free(px);
}

/* Ends a stream whose upstream broke: an in-band error for SSE, then the end. */
static void
end_broken_stream(struct proxy *px, const char *msg)
{
	if (px->sse) {
		struct buf b = BUF_INIT;
		buf_adds(&b, "data: {\"error\":{\"message\":");
		buf_add_json_str(&b, msg, strlen(msg));
		buf_adds(&b, ",\"type\":\"BadGateway\",\"param\":null,\"code\":502}}\n\ndata: [DONE]\n\n");
		http_stream_chunk(px->req, b.buf, b.len);
		buf_release(&b);
	}
	account(px, px->status);
	http_stream_end(px->req);
	px->req = NULL;
	px_free(px);
}

static void
on_drain(evutil_socket_t fd, short what, void *arg)
{
	struct proxy *px = arg;

	(void)fd;
	(void)what;
	if (px->req == NULL || !px->paused)
		return;
	if (http_req_closed(px->req) || http_stream_pending(px->req) <= px->env->high_water / 2) {
		px->paused = 0;
		http_client_pause(px->up, 0);
		event_del(px->drain);
	}
}

/*
 * 503 from an engine means it did not take the request (shutting down,
 * queue full): another endpoint may, as when a drained pod stops.
 */
static int
turned_away(const struct proxy *px, int status)
{
	return status == 503 && px->n_tried + 1 < MAX_ATTEMPTS;
}

static void
up_head(const struct http_response *resp, void *arg)
{
	struct proxy *px = arg;
	const char *ct = http_response_header(resp, "Content-Type");
	const char *rid = http_response_header(resp, "X-Request-Id");
	const char *cl = http_response_header(resp, "Content-Length");

	if (px->head_sent || px->req == NULL || px->retry_503)
		return;
	if (turned_away(px, resp->status)) {
		px->retry_503 = 1;
		return;
	}
	px->head_sent = 1;
	px->status = resp->status;
	px->sse = ct != NULL && strncasecmp(ct, "text/event-stream", 17) == 0;
	http_reply_header(px->req, "x-gateway-destination-endpoint", px->pick.ep->addr);
	if (rid != NULL)
		http_reply_header(px->req, "X-Request-Id", rid);
	if (px->r.pool->cfg.sched.w_session > 0) {
		char *tok = session_token(px->r.pool->name, px->pick.ep->addr);
		http_reply_header(px->req, "x-session-token", tok);
		free(tok);
	}
	if (!px->sse && cl != NULL && strtoul(cl, NULL, 10) <= BUFFERED_MAX) {
		/* a small whole reply: one write with its Content-Length, not a chunked stream */
		px->buffered = 1;
		px->ctype = ct != NULL ? xstrdup(ct) : NULL;
		return;
	}
	if (px->sse)
		http_reply_header(px->req, "Cache-Control", "no-cache");
	http_stream_start(px->req, resp->status, ct);
}

static void
up_data(const char *data, size_t len, void *arg)
{
	struct proxy *px = arg;

	if (px->req == NULL || px->retry_503)
		return;
	if (px->ttft_us == 0)
		px->ttft_us = now_us();
	px->bytes += len;
	if (px->buffered) {
		buf_add(&px->body, data, len);
		return;
	}
	if (http_stream_chunk(px->req, data, len) < 0)
		return;   /* the client is gone; its close callback cancels us */
	if (!px->paused && http_stream_pending(px->req) > px->env->high_water) {
		struct timeval tv = { 0, 5000 };
		px->paused = 1;
		http_client_pause(px->up, 1);
		if (px->drain == NULL)
			px->drain = event_new(px->env->base, -1, EV_PERSIST, on_drain, px);
		event_add(px->drain, &tv);
	}
}

static void
up_end(const struct http_response *resp, const struct llmd_err *e, void *arg)
{
	struct proxy *px = arg;
	char msg[768];

	px->up = NULL;
	if (px->inflight) {
		px->pick.ep->inflight--;
		px->inflight = 0;
	}
	/* (a bodiless 503 never went through up_head) */
	if (px->retry_503 || (e == NULL && !px->head_sent && turned_away(px, resp->status))) {
		log_info("endpoint %s answered 503; retrying elsewhere", px->pick.ep->addr);
		px->retry_503 = 0;
		endpoint_mark_down(px->pick.ep, DOWN_MS);
		metric_add(px->env->m_retries, (const char *[]){ px->r.pool->name }, 1);
		attempt(px);
		return;
	}
	if (e == NULL) {
		if (!px->head_sent) {   /* no head callback: a bodiless reply */
			px->status = resp->status;
			account(px, resp->status);
			http_reply_header(px->req, "x-gateway-destination-endpoint", px->pick.ep->addr);
			http_reply_data(px->req, resp->status, http_response_header(resp, "Content-Type"),
			    "", 0);
			px->req = NULL;
			px_free(px);
			return;
		}
		account(px, px->status);
		if (px->buffered)
			http_reply_buf(px->req, px->status, px->ctype, &px->body);
		else
			http_stream_end(px->req);
		px->req = NULL;
		px_free(px);
		return;
	}
	/* refused, or a pooled connection the engine closed as it stopped */
	if (!px->head_sent && px->bytes == 0 && (e->code == -ECONNREFUSED ||
	    e->code == -ECONNRESET || e->code == -EPIPE)) {
		log_warnx("endpoint %s: %s; retrying elsewhere", px->pick.ep->addr, e->msg);
		endpoint_mark_down(px->pick.ep, DOWN_MS);
		metric_add(px->env->m_retries, (const char *[]){ px->r.pool->name }, 1);
		if (px->n_tried < MAX_ATTEMPTS) {
			attempt(px);
			return;
		}
	}
	snprintf(msg, sizeof(msg), "upstream %s of %s: %s", px->pick.ep->addr, px->r.service,
	    e->msg);
	if (!px->head_sent || px->buffered) {
		reply_error(px, e->code == -ETIMEDOUT ? 504 : 502,
		    e->code == -ETIMEDOUT ? "GatewayTimeout" : "BadGateway", msg);
		return;
	}
	log_warnx("%s (mid-stream)", msg);
	end_broken_stream(px, msg);
}

static void
on_client_close(struct http_req *req, void *arg)
{
	struct proxy *px = arg;

	(void)req;
	if (px->up != NULL) {
		http_client_cancel(px->up);
		px->up = NULL;
	}
	if (px->head_sent && !px->buffered) {
		account(px, px->status);
		http_stream_end(px->req);
		px->req = NULL;
		px_free(px);
	} else {
		reply_error(px, 499, "ClientClosedRequest", "client went away");
	}
}

static void
on_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct proxy *px = arg;
	char msg[512];

	(void)fd;
	(void)what;
	if (px->up != NULL) {
		http_client_cancel(px->up);
		px->up = NULL;
	}
	snprintf(msg, sizeof(msg), "%s: request timed out after %lld ms", px->r.service,
	    (long long)px->r.timeout_ms);
	if (px->head_sent && !px->buffered)
		end_broken_stream(px, msg);
	else
		reply_error(px, 504, "GatewayTimeout", msg);
}

/*
 * The P/D decision (upstream's prefix-based-pd-decider): when the service has
 * a prefill pool and the prompt's tokens not already cached on the chosen
 * decode endpoint exceed the threshold, pick a prefill endpoint there and
 * tell the decode side's sidecar with x-prefiller-host-port. A client-sent
 * x-prefiller-host-port is never forwarded (only headers listed in fwd are).
 */
static void
pd_decide(struct proxy *px, const struct pick_request *pr, char *out, size_t outlen)
{
	const struct sched_config *s = &px->r.pool->cfg.sched;
	struct pick_result pf;
	double hit, non_cached;

	if (px->r.prefill == NULL || px->r.bodyless || s->pd_threshold_tokens <= 0)
		return;
	hit = (double)px->pick.matched * (double)(s->block_size_tokens > 0 ? s->block_size_tokens : 16);
	non_cached = px->r.tokens - hit;
	if (non_cached <= (double)s->pd_threshold_tokens)
		return;
	if (picker_pick(px->r.prefill, pr, NULL, 0, &pf) < 0) {
		log_debug("%s: no prefill endpoint ready; decoding with local prefill", px->r.service);
		return;
	}
	picker_commit(px->r.prefill, &pf);
	snprintf(out, outlen, "%s", pf.ep->addr);
	metric_add(px->env->m_decisions, (const char *[]){ px->r.prefill->name, pf.ep->addr }, 1);
	pick_result_release(&pf);
}

static void
attempt(struct proxy *px)
{
	static const char *const fwd[] = { "Content-Type", "Authorization", "Accept",
	    "X-Request-Id", "traceparent", "tracestate" };
	const char *hdrs[2 * ARRAY_SIZE(fwd) + 3];
	char prefiller[300] = "";
	struct pick_request pr = {
		.model = px->r.model, .cache_salt = px->r.salt,
		.prompt = px->r.bodyless ? NULL : px->r.prompt.buf,
		.prompt_len = px->r.prompt.len, .session = px->r.session, .crit = px->r.crit,
	};
	struct llmd_err e = LLMD_ERR_INIT;
	struct buf url = BUF_INIT;
	const char *body;
	size_t blen, nh = 0;
	int rc;

	if (px->pick.ep != NULL) {
		px->tried[px->n_tried++] = px->pick.ep;
		endpoint_ref(px->pick.ep);
		pick_result_release(&px->pick);
	}
	rc = picker_pick(px->r.pool, &pr, px->tried, px->n_tried, &px->pick);
	if (rc == -EBUSY) {
		char msg[512];
		metric_add(px->env->m_rejected, (const char *[]){ px->r.pool->name, "saturated" }, 1);
		http_reply_header(px->req, "x-llm-d-request-dropped-reason", "rejected-saturated");
		snprintf(msg, sizeof(msg), "%s is saturated: sheddable request dropped",
		    px->r.service);
		reply_error(px, 429, "TooManyRequests", msg);
		return;
	}
	if (rc < 0) {
		char msg[512];
		metric_add(px->env->m_rejected, (const char *[]){ px->r.pool->name, "no_endpoint" }, 1);
		snprintf(msg, sizeof(msg), "service %s has no ready endpoint%s", px->r.service,
		    px->n_tried > 0 ? " left" : "");
		reply_error(px, 503, "ServiceUnavailable", msg);
		return;
	}
	picker_commit(px->r.pool, &px->pick);
	metric_add(px->env->m_decisions, (const char *[]){ px->r.pool->name, px->pick.ep->addr }, 1);
	pd_decide(px, &pr, prefiller, sizeof(prefiller));
	for (size_t i = 0; i < ARRAY_SIZE(fwd); i++) {
		const char *v = http_req_header(px->req, fwd[i]);
		if (v != NULL) {
			hdrs[nh++] = fwd[i];
			hdrs[nh++] = v;
		}
	}
	if (prefiller[0] != '\0') {
		hdrs[nh++] = "x-prefiller-host-port";
		hdrs[nh++] = prefiller;
	}
	hdrs[nh] = NULL;
	body = http_req_body(px->req, &blen);
	buf_addf(&url, "%s%s", px->pick.ep->base_url, px->r.path);
	px->up = http_client_stream(px->env->client, http_req_method(px->req), url.buf, hdrs,
	    blen > 0 ? body : NULL, blen,
	    &(struct http_stream_cbs){ up_head, up_data, up_end }, px, &e);
	buf_release(&url);
	if (px->up == NULL && e.code == -EINVAL) {
		/* The client's path is no valid URL (backslashes, raw non-ASCII bytes). */
		reply_error(px, 400, "BadRequest", "path cannot be forwarded: not a valid URL path");
		return;
	}
	if (px->up == NULL) {
		char msg[768];
		snprintf(msg, sizeof(msg), "cannot proxy to %s: %s", px->pick.ep->addr, e.msg);
		reply_error(px, 502, "BadGateway", msg);
		return;
	}
	px->pick.ep->inflight++;
	px->inflight = 1;
}

void
proxy_start(struct proxy_env *env, struct proxy_request *r)
{
	struct proxy *px = xcalloc(1, sizeof(*px));

	px->env = env;
	px->r = *r;
	px->req = r->req;
	px->t0_us = now_us();
	memset(r, 0, sizeof(*r));
	http_req_on_close(px->req, on_client_close, px);
	if (px->r.timeout_ms > 0) {
		struct timeval tv = { px->r.timeout_ms / 1000, (px->r.timeout_ms % 1000) * 1000 };
		px->timer = evtimer_new(env->base, on_timeout, px);
		evtimer_add(px->timer, &tv);
	}
	attempt(px);
}
