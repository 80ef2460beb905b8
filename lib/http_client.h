/*
 * lib/http_client.h - asynchronous HTTP/1.1 client over libevent's evhttp,
 * with keep-alive connections reused per host:port, whole-response and
 * streaming requests, cancellation and timeouts; plus http_fetch(), a
 * synchronous wrapper with its own event base for CLIs and tests.
 *
 * Callbacks run on the loop thread and are never called from inside the
 * call that started the request. A request ends with exactly one final
 * callback unless it was cancelled: after http_client_cancel() returns, no
 * callback of that request runs (cancel may be called from a callback).
 * "http://" and "https://" URLs (TLS: http_client_config.tls_ctx; the
 * server certificate must name the URL's host or IP).
 * Host names are resolved with a blocking getaddrinfo (IP literals are free).
 */
#ifndef LLMD_HTTP_CLIENT_H
#define LLMD_HTTP_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include <event2/keyvalq_struct.h>

#include "lib/buf.h"
#include "lib/err.h"

struct event_base;
struct ssl_ctx_st;
struct http_client;
struct http_client_req;

struct http_client_config {
	int64_t timeout_ms;         /* whole request (not streams); 0: 30 s; <0: none */
	int64_t stream_timeout_ms;  /* whole stream; 0: none */
	int max_conns_per_host;     /* 0: 16; beyond it requests queue on a connection */
	const char *user_agent;     /* NULL: "llmd/VERSION" */
	/*
	 * For https:// URLs (lib/tls.h tls_client_ctx_new: CA bundle, client
	 * certificate); the client keeps a reference. NULL: the system's CAs.
	 */
	struct ssl_ctx_st *tls_ctx;
};

struct http_response {
	int status;
	const struct evkeyvalq *headers;
	const char *body;           /* NUL-terminated; "" for streams */
	size_t body_len;
};

/* Response header, case-insensitive; NULL when absent. */
const char *http_response_header(const struct http_response *resp, const char *name);

/*
 * The final callback: resp is NULL on a transport failure (refused, reset,
 * timeout: e->code -ECONNREFUSED/-ECONNRESET/-ETIMEDOUT/-EIO); e is NULL on
 * success. Any HTTP status counts as success.
 */
typedef void (*http_client_cb)(const struct http_response *resp, const struct llmd_err *e,
    void *arg);

struct http_stream_cbs {
	/* Status and headers arrived (optional). */
	void (*on_head)(const struct http_response *resp, void *arg);
	/* A piece of the body as it arrived (whatever the status). */
	void (*on_data)(const char *data, size_t len, void *arg);
	/* The end: e NULL when the body was complete (resp: status, headers). */
	void (*on_end)(const struct http_response *resp, const struct llmd_err *e, void *arg);
};

/*
 * The TLS context of clients made without one (and of http_fetch), for
 * programs that talk to one cluster: its CA bundle and client certificate.
 * Takes a reference; NULL drops it. Call before starting threads.
 */
void http_client_set_default_tls(struct ssl_ctx_st *ctx);

struct http_client *http_client_new(struct event_base *base, const struct http_client_config *cfg);
/*
 * Cancels what is in flight (no callbacks) and closes connections; not from
 * inside one of its callbacks. NULL ok.
 */
void http_client_free(struct http_client *c);
/*
 * Hosts (name, port, scheme) with a connection pool: past 256, pools with
 * nothing in flight are dropped when a new host is contacted.
 */
size_t http_client_hosts(const struct http_client *c);

/*
 * headers: NULL or a NULL-terminated list of name, value pairs
 * ({"Content-Type", "application/json", NULL}). body may be NULL.
 * Returns a handle for http_client_cancel(), or NULL with e set (bad URL).
 */
struct http_client_req *http_client_request(struct http_client *c, const char *method,
    const char *url, const char *const *headers, const void *body, size_t len,
    http_client_cb cb, void *arg, struct llmd_err *e);
struct http_client_req *http_client_stream(struct http_client *c, const char *method,
    const char *url, const char *const *headers, const void *body, size_t len,
    const struct http_stream_cbs *cbs, void *arg, struct llmd_err *e);
void http_client_cancel(struct http_client_req *req);
/*
 * Back-pressure for streams: paused != 0 stops reading the response from the
 * connection (nothing more reaches on_data) until called again with 0.
 */
void http_client_pause(struct http_client_req *req, int paused);

/* ---- synchronous ---- */

struct http_result {
	int status;
	struct buf body;
	struct evkeyvalq headers;
};

/*
 * One request on a private event base; timeout_ms 0: 30 s. Returns 0 with
 * res filled (any HTTP status), or a negative errno with e set. Release res
 * with http_result_release() in both cases.
 */
int http_fetch(const char *method, const char *url, const char *const *headers,
    const void *body, size_t len, int64_t timeout_ms, struct http_result *res,
    struct llmd_err *e);
const char *http_result_header(const struct http_result *res, const char *name);
void http_result_release(struct http_result *res);

#endif
