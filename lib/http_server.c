/*
 * lib/http_server.c - routing, request contexts, replies, streaming, limits
 * and graceful shutdown over libevent's evhttp (see http_server.h).
 *
 * Request life cycle: the evhttp callback wraps the evhttp_request in a
 * struct http_req, counted in srv->inflight, and hands it to the handler.
 * The final reply call gives the evhttp_request back to libevent; the
 * http_req lives on until libevent reports the reply written (on_complete) or
 * the connection gone (closecb), so shutdown waits for replies to reach the
 * wire. While a handler holds a request (deferred or streaming) a small
 * read watch on the socket notices a client that hangs up (libevent 2.1 only
 * notices on the next write).
 */
#include "config.h"
#include "lib/http_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "lib/json.h"
#include "lib/log.h"
#include "lib/tls.h"
#include "lib/util.h"

#define MAX_SEGS 64
#define MAX_PARAMS 16

struct seg {
	char *text;   /* literal, or the parameter name */
	int param;
};

struct route {
	char *method;     /* NULL: any */
	struct seg *segs;
	size_t nseg;
	char *rest;       /* "{name...}" tail parameter, or NULL */
	http_handler_fn fn;
	void *arg;
};

struct hook {
	void (*fn)(void *arg);
	void *arg;
};

struct http_server {
	struct event_base *base;
	struct evhttp *http;
	struct http_server_config cfg;
	struct route *routes;
	size_t nroutes;
	struct evhttp_bound_socket **socks;
	size_t nsocks;
	struct hook *hooks;
	size_t nhooks;
	struct event *sig_term, *sig_int, *grace;
	struct event *sig_ignored;   /* SIGTERM when LLMD_STOP_SIGNAL names another */
	struct http_req *reqs;   /* in flight, for http_server_free() */
	size_t inflight;
	int shutting_down, exited;
};

enum req_state { RQ_HANDLING, RQ_STREAMING, RQ_FLUSHING, RQ_DONE };

struct http_req {
	struct http_server *srv;         /* NULL once the server is freed */
	struct http_req *prev, *next;
	struct evhttp_request *ev;       /* NULL once handed back to libevent */
	struct evhttp_connection *evcon; /* NULL once the connection is gone */
	enum req_state state;
	int busy;                        /* inside a call that may complete us */
	int closed;
	int close_notified;
	const char *method;
	char *path;
	struct evkeyvalq query;
	const char *pnames[MAX_PARAMS];
	char *pvals[MAX_PARAMS];
	size_t nparams;
	const char *body;
	size_t body_len;
	char peer[INET6_ADDRSTRLEN + 8];
	void *data;
	void (*close_fn)(struct http_req *, void *);
	void *close_arg;
	struct event *watch;
	uint64_t t0_us;
	int status;
};

/* ---- helpers ---- */

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

char *
http_urldecode(const char *s, size_t len)
{
	char *out = xmalloc(len + 1);
	size_t j = 0;

	for (size_t i = 0; i < len; i++) {
		int c = (unsigned char)s[i];
		if (c == '%' && len - i >= 3 && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
			c = hexval(s[i + 1]) * 16 + hexval(s[i + 2]);
			i += 2;
		}
		if (c == 0) {
			free(out);
			return NULL;
		}
		out[j++] = (char)c;
	}
	out[j] = '\0';
	return out;
}

int
http_parse_hostport(const char *s, char *host, size_t hostlen, int *port)
{
	const char *colon;
	size_t hl;
	long p;

	if (s == NULL)
		return -EINVAL;
	if (s[0] == '[') {
		const char *rb = strchr(s, ']');
		if (rb == NULL || rb[1] != ':')
			return -EINVAL;
		hl = (size_t)(rb - s - 1);
		s++;
		colon = rb + 1;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL || memchr(s, ':', (size_t)(colon - s)) != NULL)
			return -EINVAL;
		hl = (size_t)(colon - s);
	}
	if (hl + 1 > hostlen)
		return -ENAMETOOLONG;
	if (parse_long(colon + 1, 0, 65535, &p) < 0)
		return -EINVAL;
	memcpy(host, s, hl);
	host[hl] = '\0';
	*port = (int)p;
	return 0;
}

static const char *
method_name(enum evhttp_cmd_type t)
{
	switch (t) {
	case EVHTTP_REQ_GET: return "GET";
	case EVHTTP_REQ_POST: return "POST";
	case EVHTTP_REQ_HEAD: return "HEAD";
	case EVHTTP_REQ_PUT: return "PUT";
	case EVHTTP_REQ_DELETE: return "DELETE";
	case EVHTTP_REQ_OPTIONS: return "OPTIONS";
	case EVHTTP_REQ_TRACE: return "TRACE";
	case EVHTTP_REQ_CONNECT: return "CONNECT";
	case EVHTTP_REQ_PATCH: return "PATCH";
	}
	return "UNKNOWN";
}

/* ---- error bodies ---- */

const char *
http_error_fmt_default(struct buf *out, int status, const char *reason,
    const char *message, void *arg)
{
	(void)arg;
	buf_addf(out, "{\"error\":{\"code\":%d,\"reason\":", status);
	buf_add_json_str(out, reason, strlen(reason));
	buf_adds(out, ",\"message\":");
	buf_add_json_str(out, message, strlen(message));
	buf_adds(out, "}}");
	return "application/json";
}

const char *
http_error_fmt_k8s(struct buf *out, int status, const char *reason,
    const char *message, void *arg)
{
	(void)arg;
	buf_adds(out, "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},"
	    "\"status\":\"Failure\",\"message\":");
	buf_add_json_str(out, message, strlen(message));
	buf_adds(out, ",\"reason\":");
	buf_add_json_str(out, reason, strlen(reason));
	buf_addf(out, ",\"code\":%d}", status);
	return "application/json";
}

const char *
http_error_fmt_openai(struct buf *out, int status, const char *reason,
    const char *message, void *arg)
{
	const char *type;

	(void)arg;
	(void)reason;
	switch (status) {
	case 401: type = "authentication_error"; break;
	case 403: type = "permission_error"; break;
	case 404: type = "not_found_error"; break;
	case 429: type = "rate_limit_error"; break;
	default: type = status >= 500 ? "server_error" : "invalid_request_error"; break;
	}
	buf_adds(out, "{\"error\":{\"message\":");
	buf_add_json_str(out, message, strlen(message));
	buf_addf(out, ",\"type\":\"%s\",\"param\":null,\"code\":null}}", type);
	return "application/json";
}

/* ---- request life cycle ---- */

static void server_maybe_exit(struct http_server *srv);

static void
req_maybe_free(struct http_req *r)
{
	struct http_server *srv = r->srv;

	if (r->busy || r->state != RQ_DONE)
		return;
	if (r->watch != NULL)
		event_free(r->watch);
	if (srv != NULL) {
		if (r->prev != NULL)
			r->prev->next = r->next;
		else
			srv->reqs = r->next;
		if (r->next != NULL)
			r->next->prev = r->prev;
	}
	log_debug("%s %s %d %s %lluus", r->method, r->path, r->status, r->peer,
	    (unsigned long long)(now_us() - r->t0_us));
	evhttp_clear_headers(&r->query);
	for (size_t i = 0; i < r->nparams; i++)
		free(r->pvals[i]);
	free(r->path);
	free(r);
	if (srv != NULL) {
		srv->inflight--;
		server_maybe_exit(srv);
	}
}

static void
drop_watch(struct http_req *r)
{
	if (r->watch != NULL) {
		event_free(r->watch);
		r->watch = NULL;
	}
}

static void
notify_close(struct http_req *r)
{
	if (r->close_notified || r->close_fn == NULL)
		return;
	r->close_notified = 1;
	r->close_fn(r, r->close_arg);
}

/* libevent: the connection is going away. */
static void
on_conn_close(struct evhttp_connection *evcon, void *arg)
{
	struct http_req *r = arg;

	evhttp_connection_set_closecb(evcon, NULL, NULL);
	drop_watch(r);
	r->closed = 1;
	r->evcon = NULL;
	/*
	 * On a network error evhttp detaches the request and leaves it to us
	 * (we free it with the reply); when the connection is freed for other
	 * reasons (evhttp_free) the request still hangs on it and goes with it.
	 */
	if (r->ev != NULL && evhttp_request_get_connection(r->ev) != NULL)
		r->ev = NULL;
	if (r->state == RQ_FLUSHING) {
		r->state = RQ_DONE;
	} else if (r->state == RQ_HANDLING || r->state == RQ_STREAMING) {
		r->busy++;
		notify_close(r);
		r->busy--;
	}
	req_maybe_free(r);
}

/* libevent: the reply has been written out. */
static void
on_complete(struct evhttp_request *ev, void *arg)
{
	struct http_req *r = arg;

	(void)ev;
	if (r->evcon != NULL)
		evhttp_connection_set_closecb(r->evcon, NULL, NULL);
	r->evcon = NULL;
	r->state = RQ_DONE;
	req_maybe_free(r);
}

/* The socket became readable while a handler holds the request. */
static void
on_watch(evutil_socket_t fd, short what, void *arg)
{
	struct http_req *r = arg;
	char c;
	ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);

	(void)what;
	drop_watch(r);
	if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EINTR)))
		return;  /* pipelined bytes: we cannot watch any longer */
	if (r->evcon != NULL) {
		/* Same path as a failed write: evhttp detaches the request. */
		bufferevent_trigger_event(evhttp_connection_get_bufferevent(r->evcon),
		    BEV_EVENT_EOF | BEV_EVENT_READING, 0);
	}
}

static void
start_watch(struct http_req *r)
{
	struct bufferevent *bev;
	evutil_socket_t fd;

	if (r->watch != NULL || r->evcon == NULL || r->srv == NULL)
		return;
	bev = evhttp_connection_get_bufferevent(r->evcon);
	if (bev == NULL || (fd = bufferevent_getfd(bev)) < 0)
		return;
	r->watch = event_new(r->srv->base, fd, EV_READ, on_watch, r);
	if (r->watch != NULL)
		event_add(r->watch, NULL);
}

static void
common_headers(struct http_req *r)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(r->ev);

	if (r->srv->cfg.server_name != NULL)
		evhttp_add_header(h, "Server", r->srv->cfg.server_name);
	if (r->srv->shutting_down && evhttp_find_header(h, "Connection") == NULL)
		evhttp_add_header(h, "Connection", "close");
}

/*
 * Finishes a request whose connection or server is gone. An evhttp_request
 * still held here was detached from its connection by libevent and is ours.
 */
static void
orphan_done(struct http_req *r)
{
	if (r->ev != NULL)
		evhttp_request_free(r->ev);
	r->ev = NULL;
	r->state = RQ_DONE;
	req_maybe_free(r);
}

/* Hands the evhttp_request back to libevent with a complete reply. */
static void
finish(struct http_req *r, int status, const char *content_type, const void *data,
    size_t len)
{
	struct evbuffer *b;

	if (r->state != RQ_HANDLING) {
		log_warnx("http: %s %s replied twice", r->method, r->path);
		return;
	}
	drop_watch(r);
	r->status = status;
	if (r->ev == NULL || r->srv == NULL) {
		orphan_done(r);
		return;
	}
	b = evbuffer_new();
	if (data != NULL && len > 0)
		evbuffer_add(b, data, len);
	if (content_type != NULL)
		evhttp_add_header(evhttp_request_get_output_headers(r->ev), "Content-Type",
		    content_type);
	common_headers(r);
	r->state = r->closed ? RQ_DONE : RQ_FLUSHING;
	r->busy++;
	evhttp_send_reply(r->ev, status, NULL, b);
	r->busy--;
	r->ev = NULL;
	evbuffer_free(b);
	req_maybe_free(r);
}

void
http_reply_data(struct http_req *r, int status, const char *content_type,
    const void *data, size_t len)
{
	finish(r, status, content_type, data, len);
}

void
http_reply_buf(struct http_req *r, int status, const char *content_type,
    const struct buf *body)
{
	finish(r, status, content_type, body ? body->buf : NULL, body ? body->len : 0);
}

void
http_reply_json(struct http_req *r, int status, const cJSON *v)
{
	struct buf b = BUF_INIT;

	json_print_compact(v, &b);
	finish(r, status, "application/json", b.buf, b.len);
	buf_release(&b);
}

static void
reply_error_msg(struct http_req *r, int status, const char *reason, const char *msg)
{
	struct buf b = BUF_INIT;
	const char *ct;

	ct = r->srv == NULL ? NULL :
	    r->srv->cfg.error_fmt(&b, status, reason, msg, r->srv->cfg.error_fmt_arg);
	finish(r, status, ct, b.buf, b.len);
	buf_release(&b);
}

void
http_reply_error(struct http_req *r, int status, const char *reason, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	reply_error_msg(r, status, reason, msg);
}

void
http_reply_err(struct http_req *r, int status, const char *reason, const struct llmd_err *e)
{
	char msg[1024];

	reply_error_msg(r, status, reason, err_str(e, msg, sizeof(msg)));
}

void
http_reply_header(struct http_req *r, const char *name, const char *value)
{
	if (r->ev != NULL)
		evhttp_add_header(evhttp_request_get_output_headers(r->ev), name, value);
}

void
http_stream_start(struct http_req *r, int status, const char *content_type)
{
	if (r->state != RQ_HANDLING) {
		log_warnx("http: %s %s: stream started twice", r->method, r->path);
		return;
	}
	r->status = status;
	r->state = RQ_STREAMING;
	if (r->ev == NULL || r->srv == NULL)
		return;
	if (content_type != NULL)
		evhttp_add_header(evhttp_request_get_output_headers(r->ev), "Content-Type",
		    content_type);
	common_headers(r);
	evhttp_send_reply_start(r->ev, status, NULL);
	if (r->busy == 0)
		start_watch(r);
}

int
http_stream_chunk(struct http_req *r, const void *data, size_t len)
{
	struct evbuffer *b;

	if (r->state != RQ_STREAMING)
		return -EINVAL;
	if (r->closed || r->ev == NULL || r->srv == NULL)
		return -EPIPE;
	if (len == 0)
		return 0;
	b = evbuffer_new();
	evbuffer_add(b, data, len);
	evhttp_send_reply_chunk(r->ev, b);
	evbuffer_free(b);
	return 0;
}

size_t
http_stream_pending(const struct http_req *r)
{
	struct bufferevent *bev;

	if (r->evcon == NULL || (bev = evhttp_connection_get_bufferevent(r->evcon)) == NULL)
		return 0;
	return evbuffer_get_length(bufferevent_get_output(bev));
}

void
http_stream_end(struct http_req *r)
{
	if (r->state != RQ_STREAMING) {
		log_warnx("http: %s %s: stream ended without a start", r->method, r->path);
		return;
	}
	drop_watch(r);
	if (r->ev == NULL || r->srv == NULL) {
		orphan_done(r);
		return;
	}
	r->state = r->closed ? RQ_DONE : RQ_FLUSHING;
	r->busy++;
	evhttp_send_reply_end(r->ev);
	r->busy--;
	r->ev = NULL;
	req_maybe_free(r);
}

/* ---- accessors ---- */

const char *http_req_method(const struct http_req *r) { return r->method; }
const char *http_req_path(const struct http_req *r) { return r->path; }
const char *http_req_peer(const struct http_req *r) { return r->peer; }
struct http_server *http_req_server(const struct http_req *r) { return r->srv; }
struct bufferevent *
http_req_bufferevent(const struct http_req *r)
{
	return r->evcon != NULL ? evhttp_connection_get_bufferevent(r->evcon) : NULL;
}
void http_req_set_data(struct http_req *r, void *data) { r->data = data; }
void *http_req_data(const struct http_req *r) { return r->data; }
int http_req_closed(const struct http_req *r) { return r->closed; }

const char *
http_req_param(const struct http_req *r, const char *name)
{
	for (size_t i = 0; i < r->nparams; i++)
		if (strcmp(r->pnames[i], name) == 0)
			return r->pvals[i];
	return NULL;
}

const char *
http_req_query(const struct http_req *r, const char *name)
{
	return evhttp_find_header(&r->query, name);
}

const char *
http_req_header(const struct http_req *r, const char *name)
{
	if (r->ev == NULL)
		return NULL;
	return evhttp_find_header(evhttp_request_get_input_headers(r->ev), name);
}

const char *
http_req_body(const struct http_req *r, size_t *len)
{
	if (len != NULL)
		*len = r->body_len;
	return r->body;
}

void
http_req_on_close(struct http_req *r, void (*fn)(struct http_req *, void *), void *arg)
{
	r->close_fn = fn;
	r->close_arg = arg;
	if (r->closed && fn != NULL)
		notify_close(r);
}

/* ---- routing ---- */

static void
route_clear(struct route *rt)
{
	for (size_t i = 0; i < rt->nseg; i++)
		free(rt->segs[i].text);
	free(rt->segs);
	free(rt->method);
	free(rt->rest);
}

int
http_server_route(struct http_server *srv, const char *method, const char *pattern,
    http_handler_fn fn, void *arg)
{
	struct route rt = { 0 };
	const char *p;

	if (pattern == NULL || pattern[0] != '/' || fn == NULL)
		return -EINVAL;
	rt.segs = xcalloc(MAX_SEGS, sizeof(*rt.segs));
	p = pattern + 1;
	while (*p != '\0') {
		const char *end = strchr(p, '/');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		if (n == 0 || rt.rest != NULL || rt.nseg == MAX_SEGS)
			goto bad;
		if (p[0] == '{') {
			if (n < 3 || p[n - 1] != '}')
				goto bad;
			if (n > 5 && memcmp(p + n - 4, "...}", 4) == 0)
				rt.rest = xstrndup(p + 1, n - 5);
			else
				rt.segs[rt.nseg++] = (struct seg){ xstrndup(p + 1, n - 2), 1 };
		} else {
			if (memchr(p, '{', n) || memchr(p, '}', n))
				goto bad;
			rt.segs[rt.nseg++] = (struct seg){ xstrndup(p, n), 0 };
		}
		p += n;
		if (*p == '/')
			p++;
	}
	size_t nparams = rt.rest != NULL;
	for (size_t i = 0; i < rt.nseg; i++)
		nparams += rt.segs[i].param;
	if (nparams > MAX_PARAMS)
		goto bad;
	rt.method = method ? xstrdup(method) : NULL;
	rt.fn = fn;
	rt.arg = arg;
	srv->routes = xreallocarray(srv->routes, srv->nroutes + 1, sizeof(*srv->routes));
	srv->routes[srv->nroutes++] = rt;
	return 0;
bad:
	route_clear(&rt);
	return -EINVAL;
}

struct split {
	char *seg[MAX_SEGS];   /* decoded; NULL when it does not decode */
	size_t off[MAX_SEGS];  /* offset of each raw segment in the path */
	size_t n;
};

/* Splits a raw path; -1 when it has too many segments. */
static int
split_path(const char *path, struct split *sp)
{
	const char *p = path[0] == '/' ? path + 1 : path;
	size_t len = strlen(path);

	sp->n = 0;
	while (len > 1 && path[len - 1] == '/')
		len--;
	while ((size_t)(p - path) < len) {
		const char *end = memchr(p, '/', len - (size_t)(p - path));
		size_t n = end ? (size_t)(end - p) : len - (size_t)(p - path);
		if (sp->n == MAX_SEGS)
			return -1;
		sp->off[sp->n] = (size_t)(p - path);
		sp->seg[sp->n++] = http_urldecode(p, n);
		p += n + (end != NULL);
	}
	return 0;
}

static int
route_matches(const struct route *rt, const struct split *sp)
{
	if (rt->rest == NULL ? sp->n != rt->nseg : sp->n < rt->nseg)
		return 0;
	for (size_t i = 0; i < rt->nseg; i++) {
		const char *s = sp->seg[i];
		if (s == NULL)
			return 0;
		if (rt->segs[i].param) {
			if (s[0] == '\0')
				return 0;
		} else if (strcmp(s, rt->segs[i].text) != 0) {
			return 0;
		}
	}
	return 1;
}

static int
method_ok(const struct route *rt, const char *method)
{
	return rt->method == NULL || strcmp(rt->method, method) == 0 ||
	    (strcmp(method, "HEAD") == 0 && strcmp(rt->method, "GET") == 0);
}

static void
dispatch(struct http_req *r)
{
	struct http_server *srv = r->srv;
	struct split sp;
	struct buf allow = BUF_INIT;
	const struct route *hit = NULL;

	if (split_path(r->path, &sp) < 0) {
		reply_error_msg(r, 404, "NotFound", "the path has too many segments");
		return;
	}
	for (size_t i = 0; i < srv->nroutes && hit == NULL; i++) {
		const struct route *rt = &srv->routes[i];
		if (!route_matches(rt, &sp))
			continue;
		if (method_ok(rt, r->method)) {
			hit = rt;
		} else if (strstr(allow.buf, rt->method) == NULL) {
			buf_addf(&allow, "%s%s", allow.len ? ", " : "", rt->method);
		}
	}
	if (hit != NULL) {
		for (size_t i = 0; i < hit->nseg; i++) {
			if (!hit->segs[i].param)
				continue;
			r->pnames[r->nparams] = hit->segs[i].text;
			r->pvals[r->nparams++] = sp.seg[i];
			sp.seg[i] = NULL;
		}
		if (hit->rest != NULL) {
			r->pnames[r->nparams] = hit->rest;
			r->pvals[r->nparams++] = xstrdup(hit->nseg < sp.n ?
			    r->path + sp.off[hit->nseg] : "");
		}
	}
	for (size_t i = 0; i < sp.n; i++)
		free(sp.seg[i]);
	if (hit != NULL) {
		hit->fn(r, hit->arg);
	} else if (allow.len > 0) {
		http_reply_header(r, "Allow", allow.buf);
		reply_error_msg(r, 405, "MethodNotAllowed", "method not allowed");
	} else {
		reply_error_msg(r, 404, "NotFound", "the server could not find the requested resource");
	}
	buf_release(&allow);
}

/* The evhttp callback for every request. */
static void
on_request(struct evhttp_request *ev, void *arg)
{
	struct http_server *srv = arg;
	struct http_req *r = xcalloc(1, sizeof(*r));
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(ev);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
	const char *q = uri ? evhttp_uri_get_query(uri) : NULL;
	struct evbuffer *in = evhttp_request_get_input_buffer(ev);
	char *addr = NULL;
	ev_uint16_t port = 0;

	r->srv = srv;
	r->ev = ev;
	r->evcon = evhttp_request_get_connection(ev);
	if (srv->cfg.make_bev != NULL)   /* TLS (lib/tls.h): no Nagle stalls between records */
		tls_bev_nodelay(evhttp_connection_get_bufferevent(r->evcon));
	r->t0_us = now_us();
	r->method = method_name(evhttp_request_get_command(ev));
	r->path = xstrdup(path && *path ? path : "/");
	r->query.tqh_first = NULL;
	r->query.tqh_last = &r->query.tqh_first;
	if (q != NULL && evhttp_parse_query_str(q, &r->query) < 0)
		evhttp_clear_headers(&r->query);
	evhttp_connection_get_peer(r->evcon, &addr, &port);
	snprintf(r->peer, sizeof(r->peer), strchr(addr ? addr : "", ':') ? "[%s]:%u" : "%s:%u",
	    addr ? addr : "?", (unsigned)port);
	srv->inflight++;
	r->next = srv->reqs;
	if (srv->reqs != NULL)
		srv->reqs->prev = r;
	srv->reqs = r;
	evhttp_connection_set_closecb(r->evcon, on_conn_close, r);
	evhttp_request_set_on_complete_cb(ev, on_complete, r);
	r->body_len = evbuffer_get_length(in);
	evbuffer_add(in, "", 1);
	r->body = (const char *)evbuffer_pullup(in, -1);

	r->busy++;
	if (srv->shutting_down) {
		reply_error_msg(r, 503, "ServiceUnavailable", "the server is shutting down");
	} else if (r->body_len > srv->cfg.max_body) {
		http_reply_header(r, "Connection", "close");
		http_reply_error(r, 413, "RequestEntityTooLarge",
		    "request body of %zu bytes exceeds the limit of %zu bytes",
		    r->body_len, srv->cfg.max_body);
	} else {
		dispatch(r);
	}
	r->busy--;
	if (r->state == RQ_HANDLING || r->state == RQ_STREAMING)
		start_watch(r);
	req_maybe_free(r);
}

/* ---- server ---- */

static struct bufferevent *
make_bev(struct event_base *base, void *arg)
{
	struct http_server *srv = arg;

	return srv->cfg.make_bev(base, srv->cfg.make_bev_arg);
}

struct http_server *
http_server_new(struct event_base *base, const struct http_server_config *cfg,
    struct llmd_err *e)
{
	struct http_server *srv = xcalloc(1, sizeof(*srv));
	struct timeval tv;
	size_t hard;

	srv->base = base;
	if (cfg != NULL)
		srv->cfg = *cfg;
	if (srv->cfg.max_body == 0)
		srv->cfg.max_body = 1u << 20;
	if (srv->cfg.max_headers == 0)
		srv->cfg.max_headers = 64u << 10;
	if (srv->cfg.timeout_ms <= 0)
		srv->cfg.timeout_ms = 60000;
	if (srv->cfg.shutdown_grace_ms <= 0)
		srv->cfg.shutdown_grace_ms = 10000;
	if (srv->cfg.error_fmt == NULL)
		srv->cfg.error_fmt = http_error_fmt_default;
	srv->http = evhttp_new(base);
	if (srv->http == NULL) {
		free(srv);
		err_set(e, -ENOMEM, "", "evhttp_new failed");
		return NULL;
	}
	/*
	 * libevent answers bodies over its own limit with an HTML 413 before
	 * we see them; keep its limit above ours so that the usual oversize
	 * request gets our 413 with a proper error body.
	 */
	hard = srv->cfg.max_body > SIZE_MAX / 4 ? SIZE_MAX / 2 :
	    srv->cfg.max_body * 2 + (1u << 20);
	evhttp_set_max_body_size(srv->http, (ev_ssize_t)MIN(hard, (size_t)INT64_MAX));
	evhttp_set_max_headers_size(srv->http, (ev_ssize_t)srv->cfg.max_headers);
	tv.tv_sec = srv->cfg.timeout_ms / 1000;
	tv.tv_usec = (srv->cfg.timeout_ms % 1000) * 1000;
	evhttp_set_timeout_tv(srv->http, &tv);
	evhttp_set_allowed_methods(srv->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST |
	    EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS |
	    EVHTTP_REQ_PATCH);
	evhttp_set_default_content_type(srv->http, NULL);
	evhttp_set_gencb(srv->http, on_request, srv);
	if (srv->cfg.make_bev != NULL)
		evhttp_set_bevcb(srv->http, make_bev, srv);
	return srv;
}

int
http_server_listen(struct http_server *srv, const char *addr, struct llmd_err *e)
{
	char host[256];
	int port, rc;
	struct evhttp_bound_socket *bs;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	if ((rc = http_parse_hostport(addr, host, sizeof(host), &port)) < 0)
		return err_set(e, rc, "listen", "\"%s\" is not HOST:PORT", addr ? addr : "");
	bs = evhttp_bind_socket_with_handle(srv->http, host[0] ? host : "0.0.0.0",
	    (ev_uint16_t)port);
	if (bs == NULL)
		return err_set(e, errno ? -errno : -EADDRNOTAVAIL, "listen",
		    "cannot listen on %s: %s", addr, strerror(errno ? errno : EADDRNOTAVAIL));
	if (getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&ss, &sl) < 0) {
		rc = -errno;
		evhttp_del_accept_socket(srv->http, bs);
		return err_set(e, rc, "listen", "getsockname: %s", strerror(-rc));
	}
	srv->socks = xreallocarray(srv->socks, srv->nsocks + 1, sizeof(*srv->socks));
	srv->socks[srv->nsocks++] = bs;
	if (ss.ss_family == AF_INET6)
		port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	else
		port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	log_info("listening on %s (port %d)", addr, port);
	return port;
}

static void
server_exit(struct http_server *srv)
{
	if (srv->exited)
		return;
	srv->exited = 1;
	if (srv->grace != NULL)
		event_del(srv->grace);
	event_base_loopexit(srv->base, NULL);
}

static void
server_maybe_exit(struct http_server *srv)
{
	if (srv->shutting_down && srv->inflight == 0)
		server_exit(srv);
}

static void
on_grace_over(evutil_socket_t fd, short what, void *arg)
{
	struct http_server *srv = arg;

	(void)fd;
	(void)what;
	log_warnx("shutdown grace period over with %zu requests in flight", srv->inflight);
	server_exit(srv);
}

void
http_server_shutdown(struct http_server *srv)
{
	struct timeval tv;

	if (srv->shutting_down)
		return;
	srv->shutting_down = 1;
	log_info("shutting down: %zu requests in flight", srv->inflight);
	for (size_t i = 0; i < srv->nsocks; i++)
		evhttp_del_accept_socket(srv->http, srv->socks[i]);
	srv->nsocks = 0;
	for (size_t i = 0; i < srv->nhooks; i++)
		srv->hooks[i].fn(srv->hooks[i].arg);
	tv.tv_sec = srv->cfg.shutdown_grace_ms / 1000;
	tv.tv_usec = (srv->cfg.shutdown_grace_ms % 1000) * 1000;
	srv->grace = evtimer_new(srv->base, on_grace_over, srv);
	evtimer_add(srv->grace, &tv);
	server_maybe_exit(srv);
}

int
http_server_stop_signal(void)
{
	const char *v = getenv("LLMD_STOP_SIGNAL");

	if (v != NULL && (strcmp(v, "USR1") == 0 || strcmp(v, "SIGUSR1") == 0))
		return SIGUSR1;
	if (v != NULL && (strcmp(v, "USR2") == 0 || strcmp(v, "SIGUSR2") == 0))
		return SIGUSR2;
	return SIGTERM;
}

static void
on_ignored_term(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	(void)arg;
	log_info("SIGTERM ignored: this process stops on signal %d (LLMD_STOP_SIGNAL), "
	    "sent by its llmd-agent once its pod has moved", http_server_stop_signal());
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct http_server *srv = arg;

	(void)what;
	if (srv->shutting_down) {
		log_warnx("signal %d again: exiting now", (int)sig);
		server_exit(srv);
		return;
	}
	log_info("signal %d: graceful shutdown", (int)sig);
	http_server_shutdown(srv);
}

int
http_server_handle_signals(struct http_server *srv)
{
	if (srv->sig_term == NULL) {
		int stop = http_server_stop_signal();

		srv->sig_term = evsignal_new(srv->base, stop, on_signal, srv);
		srv->sig_int = evsignal_new(srv->base, SIGINT, on_signal, srv);
		if (stop != SIGTERM) {
			srv->sig_ignored = evsignal_new(srv->base, SIGTERM, on_ignored_term, srv);
			if (srv->sig_ignored == NULL || evsignal_add(srv->sig_ignored, NULL) < 0)
				return -EINVAL;
		}
		if (srv->sig_term == NULL || srv->sig_int == NULL ||
		    evsignal_add(srv->sig_term, NULL) < 0 || evsignal_add(srv->sig_int, NULL) < 0)
			return -EINVAL;
	}
	return 0;
}

void
http_server_on_shutdown(struct http_server *srv, void (*fn)(void *arg), void *arg)
{
	srv->hooks = xreallocarray(srv->hooks, srv->nhooks + 1, sizeof(*srv->hooks));
	srv->hooks[srv->nhooks++] = (struct hook){ fn, arg };
}

int http_server_shutting_down(const struct http_server *srv) { return srv->shutting_down; }
size_t http_server_inflight(const struct http_server *srv) { return srv->inflight; }
struct evhttp *http_server_evhttp(struct http_server *srv) { return srv->http; }

void
http_server_free(struct http_server *srv)
{
	if (srv == NULL)
		return;
	/* evhttp_free() closes connections; their closecb frees our requests. */
	srv->shutting_down = 1;
	srv->exited = 1;
	/* Requests still on a connection go with it (see on_conn_close). */
	for (struct http_req *r = srv->reqs; r != NULL; r = r->next)
		if (r->ev != NULL && evhttp_request_get_connection(r->ev) != NULL &&
		    r->state != RQ_FLUSHING)
			r->ev = NULL;
	evhttp_free(srv->http);
	/* Requests handlers still hold finish without a server. */
	for (struct http_req *r = srv->reqs, *next; r != NULL; r = next) {
		next = r->next;
		r->srv = NULL;
		r->prev = r->next = NULL;
		drop_watch(r);
	}
	for (size_t i = 0; i < srv->nroutes; i++)
		route_clear(&srv->routes[i]);
	free(srv->routes);
	free(srv->socks);
	free(srv->hooks);
	if (srv->sig_term)
		event_free(srv->sig_term);
	if (srv->sig_int)
		event_free(srv->sig_int);
	if (srv->sig_ignored)
		event_free(srv->sig_ignored);
	if (srv->grace)
		event_free(srv->grace);
	free(srv);
}
