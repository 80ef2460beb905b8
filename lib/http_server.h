/*
 * lib/http_server.h - the HTTP server of every llmd program, over libevent's
 * evhttp: a routing table (method + path pattern with named segments),
 * request contexts, JSON/error/streaming replies, limits and graceful
 * shutdown.
 *
 * Everything runs on the thread of the event loop the server was created on.
 * A handler receives a struct http_req and must, now or later (deferred, e.g.
 * from a workpool done callback), finish it with exactly one of
 * http_reply_json/http_reply_buf/http_reply_error/http_reply_status, or
 * http_stream_start + http_stream_chunk* + http_stream_end. The http_req is
 * freed by that final call; do not touch it afterwards.
 *
 * Patterns: "/v1/models", "/apis/{group}/{version}/namespaces/{ns}/{res}" —
 * "{name}" matches one non-empty segment, URL-decoded; a last segment
 * "{name...}" matches the rest of the path (possibly empty), raw. Routes are
 * tried in registration order, first match wins. A path that matches some
 * route with another method is a 405 (with Allow), no match is a 404; both
 * bodies come from the error formatter.
 *
 * Typical use:
 *	static void get_model(struct http_req *req, void *arg) {
 *		const char *name = http_req_param(req, "name");
 *		if (!known(name)) {
 *			http_reply_error(req, 404, "NotFound", "model %s not found", name);
 *			return;
 *		}
 *		http_reply_json(req, 200, model_json(name));   // or reply later
 *	}
 *	srv = http_server_new(base, &(struct http_server_config){
 *	    .error_fmt = http_error_fmt_openai, .shutdown_grace_ms = 30000 }, &e);
 *	http_server_route(srv, "GET", "/v1/models/{name}", get_model, NULL);
 *	port = http_server_listen(srv, "127.0.0.1:8000", &e);
 *	http_server_handle_signals(srv);
 *	event_base_dispatch(base);   // returns after a graceful shutdown
 *	http_server_free(srv);
 */
#ifndef LLMD_HTTP_SERVER_H
#define LLMD_HTTP_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "lib/buf.h"
#include "lib/err.h"

struct bufferevent;
struct event_base;
struct evhttp;
struct http_server;
struct http_req;

typedef void (*http_handler_fn)(struct http_req *req, void *arg);

/*
 * Writes an error body for status into out and returns its content type.
 * reason is a short CamelCase token ("NotFound", "MethodNotAllowed",
 * "RequestEntityTooLarge", "ServiceUnavailable", "BadRequest", ...).
 */
typedef const char *(*http_error_fmt_fn)(struct buf *out, int status, const char *reason,
    const char *message, void *arg);

/* {"error":{"code":404,"reason":"NotFound","message":"..."}} (the default). */
const char *http_error_fmt_default(struct buf *out, int status, const char *reason,
    const char *message, void *arg);
/* Kubernetes metav1.Status: {"kind":"Status","apiVersion":"v1",...,"code":404}. */
const char *http_error_fmt_k8s(struct buf *out, int status, const char *reason,
    const char *message, void *arg);
/* OpenAI: {"error":{"message":"...","type":"not_found_error","param":null,"code":null}}. */
const char *http_error_fmt_openai(struct buf *out, int status, const char *reason,
    const char *message, void *arg);

struct http_server_config {
	/*
	 * Request body bytes; 0: 1 MiB. More gets a 413 with the error body.
	 * (A body declared larger than 2*max_body + 1 MiB is refused by
	 * libevent itself, before reading, with its own HTML 413.)
	 */
	size_t max_body;
	size_t max_headers;         /* request header bytes; 0: 64 KiB */
	int64_t timeout_ms;         /* connection read/write idle timeout; 0: 60 s */
	int64_t shutdown_grace_ms;  /* in-flight requests get this long; 0: 10 s */
	http_error_fmt_fn error_fmt;  /* NULL: http_error_fmt_default */
	void *error_fmt_arg;
	const char *server_name;    /* "Server:" header; NULL: none */
	/*
	 * TLS seam: when set, called for each accepted connection to make its
	 * bufferevent (e.g. bufferevent_openssl_socket_new); passed to
	 * evhttp_set_bevcb. NULL: plain TCP.
	 */
	struct bufferevent *(*make_bev)(struct event_base *base, void *arg);
	void *make_bev_arg;
};

struct http_server *http_server_new(struct event_base *base,
    const struct http_server_config *cfg, struct llmd_err *e);
/* Closes listeners and connections (in-flight requests are dropped). NULL ok. */
void http_server_free(struct http_server *srv);

/*
 * Listens on "HOST:PORT", "[IPV6]:PORT" or ":PORT" (0.0.0.0); port 0
 * picks a free one. Returns the bound port (> 0) or a negative errno. May be
 * called several times.
 */
int http_server_listen(struct http_server *srv, const char *addr, struct llmd_err *e);

/* method NULL: any. -EINVAL on a malformed pattern. */
int http_server_route(struct http_server *srv, const char *method, const char *pattern,
    http_handler_fn fn, void *arg);

/*
 * Graceful shutdown: stop accepting, run the on_shutdown hooks, let
 * in-flight requests finish (new ones on kept-alive connections get 503),
 * then event_base_loopexit() once none is left or the grace period ended.
 * Idempotent. http_server_handle_signals() does it on SIGTERM and SIGINT.
 */
void http_server_shutdown(struct http_server *srv);
/*
 * Shuts down gracefully on SIGTERM and SIGINT (a second one: at once). With
 * LLMD_STOP_SIGNAL=USR1 or USR2 in the environment, that signal replaces
 * SIGTERM, which is then logged and ignored: llmd-agent under Slurm sets it,
 * so the SIGTERM Slurm sends every process of an ending job step leaves the
 * engines serving until the agent, once their pods have moved, stops them.
 */
int http_server_handle_signals(struct http_server *srv);
/* The signal LLMD_STOP_SIGNAL names (USR1, USR2), else SIGTERM. */
int http_server_stop_signal(void);
void http_server_on_shutdown(struct http_server *srv, void (*fn)(void *arg), void *arg);
int http_server_shutting_down(const struct http_server *srv);
/* Requests handed to handlers and not yet finished. */
size_t http_server_inflight(const struct http_server *srv);
struct evhttp *http_server_evhttp(struct http_server *srv);

/* ---- the request ---- */

const char *http_req_method(const struct http_req *req);   /* "GET" */
const char *http_req_path(const struct http_req *req);     /* raw, no query */
/* Named path segment, URL-decoded; NULL when the route has none by that name. */
const char *http_req_param(const struct http_req *req, const char *name);
/* Query argument, URL-decoded; NULL when absent. */
const char *http_req_query(const struct http_req *req, const char *name);
/* Request header, case-insensitive; NULL when absent. */
const char *http_req_header(const struct http_req *req, const char *name);
/*
 * Body, contiguous and NUL-terminated (len excludes the NUL); "" when none.
 * Valid until the request is finished or the server freed.
 */
const char *http_req_body(const struct http_req *req, size_t *len);
/* Peer address "IP:PORT". */
const char *http_req_peer(const struct http_req *req);
/* The connection's bufferevent (for TLS: lib/tls.h http_req_peer_cert); NULL when gone. */
struct bufferevent *http_req_bufferevent(const struct http_req *req);
/* The server; and a slot for the handler's own per-request state. */
struct http_server *http_req_server(const struct http_req *req);
void http_req_set_data(struct http_req *req, void *data);
void *http_req_data(const struct http_req *req);

/*
 * Called once if the client goes away before the reply is finished; the
 * request stays valid and must still be finished (chunks are then dropped).
 */
void http_req_on_close(struct http_req *req, void (*fn)(struct http_req *req, void *arg),
    void *arg);
int http_req_closed(const struct http_req *req);

/* Adds a response header; before the reply (or http_stream_start). */
void http_reply_header(struct http_req *req, const char *name, const char *value);

/* ---- finishing it ---- */

/* Serializes v (not freed) as application/json. */
void http_reply_json(struct http_req *req, int status, const cJSON *v);
/* body may be NULL for an empty body; content_type NULL: none. */
void http_reply_buf(struct http_req *req, int status, const char *content_type,
    const struct buf *body);
void http_reply_data(struct http_req *req, int status, const char *content_type,
    const void *data, size_t len);
/* A body from the server's error formatter. */
void http_reply_error(struct http_req *req, int status, const char *reason,
    const char *fmt, ...) LLMD_PRINTF(4, 5);
/* An error reply whose message is the llmd_err ("field: msg"). */
void http_reply_err(struct http_req *req, int status, const char *reason,
    const struct llmd_err *e);

/* Streaming (chunked transfer encoding, e.g. text/event-stream). */
void http_stream_start(struct http_req *req, int status, const char *content_type);
/* 0, or -EPIPE once the client is gone. */
int http_stream_chunk(struct http_req *req, const void *data, size_t len);
/* Bytes queued for the client and not yet written (for back-pressure). */
size_t http_stream_pending(const struct http_req *req);
void http_stream_end(struct http_req *req);

/* "host:port" / "[v6]:port" / ":port" -> host ("" for any) and port. */
int http_parse_hostport(const char *s, char *host, size_t hostlen, int *port);
/* Percent-decodes s (not '+'); NULL when it decodes to a NUL byte. Caller frees. */
char *http_urldecode(const char *s, size_t len);

#endif
