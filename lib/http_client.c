/*
 * lib/http_client.c - asynchronous HTTP client over evhttp connections kept
 * alive per host:port, streaming, cancellation, timeouts, and the
 * synchronous http_fetch() (see http_client.h).
 */
#include "config.h"
#include "lib/http_client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>

#include "lib/log.h"
#include "lib/tls.h"
#include "lib/util.h"

struct conn {
	struct evhttp_connection *evcon;
	int busy;          /* requests given to it and not finished */
	int timeout_s;     /* idle timeout currently set on it */
};

struct host {
	struct host *next;
	char *name;
	int port;
	int tls;           /* https:// */
	struct conn *conns;
	size_t nconns;
};

struct http_client {
	struct event_base *base;
	struct http_client_config cfg;
	struct host *hosts;
	struct http_client_req *reqs;   /* all live requests */
	SSL_CTX *tls_ctx;               /* for https://, made on first use */
};

struct http_client_req {
	struct http_client *c;
	struct http_client_req *prev, *next;
	struct conn *conn;
	struct evhttp_request *ev;      /* NULL once libevent is done with it */
	http_client_cb cb;
	struct http_stream_cbs cbs;
	int stream;
	void *arg;
	char *url;
	int in_cb;                      /* inside a libevent callback */
	int cancelled;
	int finished;                   /* the final callback ran (or must not) */
	enum evhttp_request_error error;
	int have_error;
	int got_head;
	struct event *timer;
	struct event *reaper;           /* deferred cancel */
	struct http_response head;      /* for streams */
};

static SSL_CTX *default_tls_ctx;

void
http_client_set_default_tls(struct ssl_ctx_st *ctx)
{
	if (ctx != NULL)
		SSL_CTX_up_ref(ctx);
	SSL_CTX_free(default_tls_ctx);
	default_tls_ctx = ctx;
}

const char *
http_response_header(const struct http_response *resp, const char *name)
{
	if (resp == NULL || resp->headers == NULL)
		return NULL;
	return evhttp_find_header((struct evkeyvalq *)resp->headers, name);
}

struct http_client *
http_client_new(struct event_base *base, const struct http_client_config *cfg)
{
	struct http_client *c = xcalloc(1, sizeof(*c));

	c->base = base;
	if (cfg != NULL)
		c->cfg = *cfg;
	if (c->cfg.timeout_ms == 0)
		c->cfg.timeout_ms = 30000;
	if (c->cfg.max_conns_per_host <= 0)
		c->cfg.max_conns_per_host = 16;
	if (c->cfg.user_agent == NULL)
		c->cfg.user_agent = "llmd/" PACKAGE_VERSION;
	if (c->cfg.tls_ctx == NULL)
		c->cfg.tls_ctx = default_tls_ctx;
	if (c->cfg.tls_ctx != NULL && SSL_CTX_up_ref(c->cfg.tls_ctx) == 1)
		c->tls_ctx = c->cfg.tls_ctx;
	return c;
}

/* A connection to name:port, through TLS when tls. */
static struct evhttp_connection *
new_evcon(struct http_client *c, const char *name, int port, int tls)
{
	struct bufferevent *bev;

	if (!tls)
		return evhttp_connection_base_new(c->base, NULL, name, (ev_uint16_t)port);
	if (c->tls_ctx == NULL && (c->tls_ctx = tls_client_ctx_new(NULL, NULL)) == NULL)
		return NULL;
	if ((bev = tls_client_bev(c->base, c->tls_ctx, name)) == NULL)
		return NULL;
	return evhttp_connection_base_bufferevent_new(c->base, NULL, bev, name, (ev_uint16_t)port);
}

/* Is a host's pool unused (no request on it, none live pointing into it)? */
static int
host_idle(const struct http_client *c, const struct host *h)
{
	const struct http_client_req *r;

	for (size_t i = 0; i < h->nconns; i++)
		if (h->conns[i].busy > 0)
			return 0;
	for (r = c->reqs; r != NULL; r = r->next)
		if (r->conn >= h->conns && r->conn < h->conns + h->nconns)
			return 0;
	return 1;
}

static void
host_free(struct host *h)
{
	for (size_t i = 0; i < h->nconns; i++)
		evhttp_connection_free(h->conns[i].evcon);
	free(h->conns);
	free(h->name);
	free(h);
}

/*
 * Bounds the host table: endpoints come and go (pods move, ports change),
 * so past HOSTS_PRUNE_AT entries the idle ones are dropped with their
 * keep-alive connections.
 */
#define HOSTS_PRUNE_AT 256

static void
prune_hosts(struct http_client *c)
{
	struct host **hp = &c->hosts, *h;

	if (http_client_hosts(c) < HOSTS_PRUNE_AT)
		return;
	while ((h = *hp) != NULL) {
		if (host_idle(c, h)) {
			*hp = h->next;
			host_free(h);
		} else {
			hp = &h->next;
		}
	}
}

static struct conn *
pick_conn(struct http_client *c, const char *name, int port, int tls)
{
	struct host *h;
	struct conn *best = NULL;

	for (h = c->hosts; h != NULL; h = h->next)
		if (h->port == port && h->tls == tls && strcmp(h->name, name) == 0)
			break;
	if (h == NULL) {
		prune_hosts(c);
		h = xcalloc(1, sizeof(*h));
		h->name = xstrdup(name);
		h->port = port;
		h->tls = tls;
		h->conns = xcalloc((size_t)c->cfg.max_conns_per_host, sizeof(*h->conns));
		h->next = c->hosts;
		c->hosts = h;
	}
	for (size_t i = 0; i < h->nconns; i++)
		if (best == NULL || h->conns[i].busy < best->busy)
			best = &h->conns[i];
	if (best != NULL && (best->busy == 0 || h->nconns == (size_t)c->cfg.max_conns_per_host))
		return best;
	best = &h->conns[h->nconns];
	best->evcon = new_evcon(c, name, port, tls);
	if (best->evcon == NULL)
		return NULL;
	h->nconns++;
	return best;
}

static void
set_idle_timeout(struct conn *cn, int64_t ms)
{
	/* libevent's idle timeout is whole seconds; 0 would mean its default. */
	int s = ms <= 0 ? 24 * 3600 : (int)MAX(1, (ms + 999) / 1000);

	if (cn->timeout_s != s) {
		evhttp_connection_set_timeout(cn->evcon, s);
		cn->timeout_s = s;
	}
}

static void
req_free(struct http_client_req *r)
{
	struct http_client *c = r->c;

	if (r->prev != NULL)
		r->prev->next = r->next;
	else
		c->reqs = r->next;
	if (r->next != NULL)
		r->next->prev = r->prev;
	if (r->timer != NULL)
		event_free(r->timer);
	if (r->reaper != NULL)
		event_free(r->reaper);
	free(r->url);
	free(r);
}

/* libevent no longer owns r->ev for us. */
static void
release_ev(struct http_client_req *r)
{
	if (r->ev != NULL) {
		r->ev = NULL;
		if (r->conn != NULL)
			r->conn->busy--;
	}
}

static int
error_code(const struct http_client_req *r, const char **what)
{
	if (!r->have_error) {
		*what = "connection failed";
		return -ECONNREFUSED;
	}
	switch (r->error) {
	case EVREQ_HTTP_TIMEOUT: *what = "timed out"; return -ETIMEDOUT;
	case EVREQ_HTTP_EOF:
		*what = r->got_head ? "connection closed mid-response" : "connection closed";
		return r->got_head ? -ECONNRESET : -ECONNREFUSED;
	case EVREQ_HTTP_INVALID_HEADER: *what = "invalid response"; return -EPROTO;
	case EVREQ_HTTP_DATA_TOO_LONG: *what = "response too large"; return -EFBIG;
	default: *what = "request failed"; return -EIO;
	}
}

/* The final callback, at most once, never after cancel. */
static void
deliver(struct http_client_req *r, const struct http_response *resp, const struct llmd_err *e)
{
	if (r->finished || r->cancelled)
		return;
	r->finished = 1;
	if (r->timer != NULL)
		event_del(r->timer);
	if (r->stream) {
		if (r->cbs.on_end != NULL)
			r->cbs.on_end(resp, e, r->arg);
	} else if (r->cb != NULL) {
		r->cb(resp, e, r->arg);
	}
}

static void
on_error(enum evhttp_request_error err, void *arg)
{
	struct http_client_req *r = arg;

	r->error = err;
	r->have_error = 1;
}

static int
on_head(struct evhttp_request *ev, void *arg)
{
	struct http_client_req *r = arg;

	r->got_head = 1;
	r->head.status = evhttp_request_get_response_code(ev);
	r->head.headers = evhttp_request_get_input_headers(ev);
	r->head.body = "";
	r->head.body_len = 0;
	if (r->stream && r->cbs.on_head != NULL && !r->cancelled) {
		r->in_cb++;
		r->cbs.on_head(&r->head, r->arg);
		r->in_cb--;
	}
	return 0;
}

static void
on_chunk(struct evhttp_request *ev, void *arg)
{
	struct http_client_req *r = arg;
	struct evbuffer *in = evhttp_request_get_input_buffer(ev);
	size_t n = evbuffer_get_length(in);

	if (r->cancelled || n == 0 || r->cbs.on_data == NULL)
		return;
	r->in_cb++;
	r->cbs.on_data((const char *)evbuffer_pullup(in, -1), n, r->arg);
	r->in_cb--;
	/* libevent drains the input buffer after this callback */
}

static void
on_done(struct evhttp_request *ev, void *arg)
{
	struct http_client_req *r = arg;
	struct llmd_err e = LLMD_ERR_INIT;
	struct http_response resp;

	release_ev(r);
	r->in_cb++;
	if (ev == NULL || evhttp_request_get_response_code(ev) == 0) {
		const char *what, *why = NULL;
		char tlsbuf[256];
		int code = error_code(r, &what);
		if (r->conn != NULL && r->conn->evcon != NULL && !r->got_head)
			why = tls_bev_error(evhttp_connection_get_bufferevent(r->conn->evcon),
			    tlsbuf, sizeof(tlsbuf));
		if (why != NULL)
			err_set(&e, -EPROTO, r->url, "TLS: %s", why);
		else
			err_set(&e, code, r->url, "%s", what);
		deliver(r, NULL, &e);
	} else {
		struct evbuffer *in = evhttp_request_get_input_buffer(ev);
		resp.status = evhttp_request_get_response_code(ev);
		resp.headers = evhttp_request_get_input_headers(ev);
		if (r->stream) {
			resp.body = "";
			resp.body_len = 0;
		} else {
			resp.body_len = evbuffer_get_length(in);
			evbuffer_add(in, "", 1);
			resp.body = (const char *)evbuffer_pullup(in, -1);
		}
		deliver(r, &resp, NULL);
	}
	r->in_cb--;
	if (r->reaper == NULL)
		req_free(r);
}

static void
do_cancel(struct http_client_req *r)
{
	if (r->ev != NULL) {
		struct evhttp_request *ev = r->ev;
		release_ev(r);
		evhttp_cancel_request(ev);  /* no done callback on cancel */
	}
	req_free(r);
}

static void
on_reaper(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	do_cancel(arg);
}

void
http_client_cancel(struct http_client_req *r)
{
	if (r == NULL || r->cancelled)
		return;
	r->cancelled = 1;
	if (r->in_cb == 0) {
		do_cancel(r);
		return;
	}
	/* Inside one of its libevent callbacks: finish on the next loop turn. */
	r->reaper = evtimer_new(r->c->base, on_reaper, r);
	event_active(r->reaper, EV_TIMEOUT, 1);
}

void
http_client_pause(struct http_client_req *r, int paused)
{
	struct bufferevent *bev;

	if (r == NULL || r->cancelled || r->ev == NULL || r->conn == NULL)
		return;
	bev = evhttp_connection_get_bufferevent(r->conn->evcon);
	if (bev == NULL)
		return;
	if (paused)
		bufferevent_disable(bev, EV_READ);
	else
		bufferevent_enable(bev, EV_READ);
}

static void
on_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct http_client_req *r = arg;
	struct llmd_err e = LLMD_ERR_INIT;

	(void)fd;
	(void)what;
	err_set(&e, -ETIMEDOUT, r->url, "timed out");
	r->in_cb++;
	deliver(r, NULL, &e);
	r->in_cb--;
	if (r->reaper != NULL)
		return;  /* the callback cancelled it; the reaper frees it */
	r->cancelled = 1;
	do_cancel(r);
}

static int
parse_method(const char *m, enum evhttp_cmd_type *t)
{
	static const struct { const char *name; enum evhttp_cmd_type t; } ms[] = {
		{ "GET", EVHTTP_REQ_GET }, { "POST", EVHTTP_REQ_POST },
		{ "HEAD", EVHTTP_REQ_HEAD }, { "PUT", EVHTTP_REQ_PUT },
		{ "DELETE", EVHTTP_REQ_DELETE }, { "OPTIONS", EVHTTP_REQ_OPTIONS },
		{ "PATCH", EVHTTP_REQ_PATCH },
	};

	for (size_t i = 0; i < ARRAY_SIZE(ms); i++)
		if (strcmp(m, ms[i].name) == 0) {
			*t = ms[i].t;
			return 0;
		}
	return -EINVAL;
}

static struct http_client_req *
start(struct http_client *c, const char *method, const char *url,
    const char *const *headers, const void *body, size_t len, int stream,
    struct llmd_err *e)
{
	struct evhttp_uri *u;
	enum evhttp_cmd_type cmd;
	const char *scheme, *host, *path, *query;
	char hostbuf[256], hosthdr[300];
	struct buf target = BUF_INIT;
	struct http_client_req *r;
	struct evkeyvalq *oh;
	struct conn *cn;
	int port, tls;
	int64_t tmo;

	if (method == NULL || parse_method(method, &cmd) < 0) {
		err_set(e, -EINVAL, "method", "unsupported method \"%s\"", method ? method : "");
		return NULL;
	}
	if (url == NULL || (u = evhttp_uri_parse(url)) == NULL) {
		err_set(e, -EINVAL, "url", "malformed URL \"%s\"", url ? url : "");
		return NULL;
	}
	scheme = evhttp_uri_get_scheme(u);
	host = evhttp_uri_get_host(u);
	tls = scheme != NULL && strcasecmp(scheme, "https") == 0;
	if (scheme == NULL || (strcasecmp(scheme, "http") != 0 && !tls) || host == NULL ||
	    !*host) {
		err_set(e, -EINVAL, "url", "\"%s\" is not an http[s]://HOST[:PORT]/ URL", url);
		evhttp_uri_free(u);
		return NULL;
	}
	snprintf(hostbuf, sizeof(hostbuf), "%s", host);
	if (hostbuf[0] == '[' && hostbuf[strlen(hostbuf) - 1] == ']') {
		memmove(hostbuf, hostbuf + 1, strlen(hostbuf) - 2);
		hostbuf[strlen(hostbuf) - 2] = '\0';
	}
	port = evhttp_uri_get_port(u);
	if (port < 0)
		port = tls ? 443 : 80;
	snprintf(hosthdr, sizeof(hosthdr), "%s:%d", host, port);
	path = evhttp_uri_get_path(u);
	query = evhttp_uri_get_query(u);
	buf_adds(&target, path && *path ? path : "/");
	if (query != NULL)
		buf_addf(&target, "?%s", query);
	evhttp_uri_free(u);

	cn = pick_conn(c, hostbuf, port, tls);
	if (cn == NULL) {
		buf_release(&target);
		err_set(e, -ENOMEM, "url", "cannot create a connection to %s", hosthdr);
		return NULL;
	}
	r = xcalloc(1, sizeof(*r));
	r->c = c;
	r->conn = cn;
	r->stream = stream;
	r->url = xstrdup(url);
	r->ev = evhttp_request_new(on_done, r);
	evhttp_request_set_error_cb(r->ev, on_error);
	evhttp_request_set_header_cb(r->ev, on_head);
	if (stream)
		evhttp_request_set_chunked_cb(r->ev, on_chunk);
	oh = evhttp_request_get_output_headers(r->ev);
	evhttp_add_header(oh, "Host", hosthdr);
	evhttp_add_header(oh, "User-Agent", c->cfg.user_agent);
	for (size_t i = 0; headers != NULL && headers[i] != NULL && headers[i + 1] != NULL; i += 2)
		evhttp_add_header(oh, headers[i], headers[i + 1]);
	if (body != NULL || cmd == EVHTTP_REQ_POST || cmd == EVHTTP_REQ_PUT ||
	    cmd == EVHTTP_REQ_PATCH) {
		char cl[32];
		snprintf(cl, sizeof(cl), "%zu", body ? len : 0);
		if (evhttp_find_header(oh, "Content-Length") == NULL)
			evhttp_add_header(oh, "Content-Length", cl);
		if (body != NULL && len > 0)
			evbuffer_add(evhttp_request_get_output_buffer(r->ev), body, len);
	}
	tmo = stream ? c->cfg.stream_timeout_ms : c->cfg.timeout_ms;
	set_idle_timeout(cn, tmo);
	cn->busy++;
	r->next = c->reqs;
	if (c->reqs != NULL)
		c->reqs->prev = r;
	c->reqs = r;
	if (evhttp_make_request(cn->evcon, r->ev, cmd, target.buf) < 0) {
		/* libevent freed the request */
		r->ev = NULL;
		cn->busy--;
		buf_release(&target);
		err_set(e, -EIO, "url", "cannot send the request to %s", hosthdr);
		req_free(r);
		return NULL;
	}
	buf_release(&target);
	if (tls)   /* the connection exists now: no Nagle stalls between TLS records */
		tls_bev_nodelay(evhttp_connection_get_bufferevent(cn->evcon));
	if (tmo > 0) {
		struct timeval tv = { tmo / 1000, (tmo % 1000) * 1000 };
		r->timer = evtimer_new(c->base, on_timeout, r);
		evtimer_add(r->timer, &tv);
	}
	return r;
}

struct http_client_req *
http_client_request(struct http_client *c, const char *method, const char *url,
    const char *const *headers, const void *body, size_t len,
    http_client_cb cb, void *arg, struct llmd_err *e)
{
	struct http_client_req *r = start(c, method, url, headers, body, len, 0, e);

	if (r != NULL) {
		r->cb = cb;
		r->arg = arg;
	}
	return r;
}

struct http_client_req *
http_client_stream(struct http_client *c, const char *method, const char *url,
    const char *const *headers, const void *body, size_t len,
    const struct http_stream_cbs *cbs, void *arg, struct llmd_err *e)
{
	struct http_client_req *r = start(c, method, url, headers, body, len, 1, e);

	if (r != NULL) {
		r->cbs = *cbs;
		r->arg = arg;
	}
	return r;
}

size_t
http_client_hosts(const struct http_client *c)
{
	const struct host *h;
	size_t n = 0;

	for (h = c->hosts; h != NULL; h = h->next)
		n++;
	return n;
}

void
http_client_free(struct http_client *c)
{
	struct host *h, *hn;

	if (c == NULL)
		return;
	while (c->reqs != NULL) {
		c->reqs->cancelled = 1;
		do_cancel(c->reqs);
	}
	for (h = c->hosts; h != NULL; h = hn) {
		hn = h->next;
		host_free(h);
	}
	SSL_CTX_free(c->tls_ctx);
	free(c);
}

/* ---- synchronous ---- */

struct fetch {
	struct event_base *base;
	struct http_result *res;
	struct llmd_err *e;
	int rc;
};

static void
fetch_done(const struct http_response *resp, const struct llmd_err *e, void *arg)
{
	struct fetch *f = arg;
	const struct evkeyval *kv;

	if (resp == NULL) {
		f->rc = err_set(f->e, e->code, e->field, "%s", e->msg);
	} else {
		f->rc = 0;
		f->res->status = resp->status;
		buf_add(&f->res->body, resp->body, resp->body_len);
		for (kv = resp->headers->tqh_first; kv != NULL; kv = kv->next.tqe_next)
			evhttp_add_header(&f->res->headers, kv->key, kv->value);
	}
	event_base_loopbreak(f->base);
}

int
http_fetch(const char *method, const char *url, const char *const *headers,
    const void *body, size_t len, int64_t timeout_ms, struct http_result *res,
    struct llmd_err *e)
{
	struct http_client_config cfg = { .timeout_ms = timeout_ms };
	struct fetch f = { .res = res, .e = e, .rc = -EIO };
	struct http_client *c;

	res->status = 0;
	buf_init(&res->body, 0);
	res->headers.tqh_first = NULL;
	res->headers.tqh_last = &res->headers.tqh_first;
	f.base = event_base_new();
	if (f.base == NULL)
		return err_set(e, -ENOMEM, "", "event_base_new failed");
	c = http_client_new(f.base, &cfg);
	if (http_client_request(c, method, url, headers, body, len, fetch_done, &f, e) == NULL)
		f.rc = e != NULL ? e->code : -EINVAL;
	else
		event_base_dispatch(f.base);
	http_client_free(c);
	event_base_free(f.base);
	return f.rc;
}

const char *
http_result_header(const struct http_result *res, const char *name)
{
	return evhttp_find_header(&res->headers, name);
}

void
http_result_release(struct http_result *res)
{
	buf_release(&res->body);
	evhttp_clear_headers(&res->headers);
}
