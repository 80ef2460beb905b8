/*
 * tests/unit/test-http.c - the HTTP server (routing, errors, limits,
 * deferred and streaming replies, graceful shutdown) against the HTTP client
 * (whole and streamed responses, keep-alive, cancel, timeouts). The server
 * runs in-process on its own thread, on 127.0.0.1 port 0.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "lib/http_client.h"
#include "lib/http_server.h"
#include "lib/json.h"
#include "lib/workpool.h"

struct fixture {
	struct event_base *base;
	struct http_server *srv;
	struct workpool *wp;
	pthread_t th;
	int port;
	char url[64];
	sem_t in_handler;     /* posted by handlers that block */
	sem_t release;        /* handlers' jobs wait on it */
	sem_t shutdown_hook;
	sem_t closed;         /* posted by on_close */
	sem_t stream_ended;   /* posted when a stream handler finished */
	atomic_int hook_runs;
};

static struct fixture F;

static void *
loop_main(void *arg)
{
	event_base_dispatch(arg);
	return NULL;
}

/* ---- handlers ---- */

static void
h_echo(struct http_req *req, void *arg)
{
	cJSON *o = cJSON_CreateObject();
	const char *q = http_req_query(req, "watch");
	const char *h = http_req_header(req, "x-test");
	size_t len;
	const char *body = http_req_body(req, &len);

	(void)arg;
	cJSON_AddStringToObject(o, "method", http_req_method(req));
	cJSON_AddStringToObject(o, "ns", http_req_param(req, "ns"));
	cJSON_AddStringToObject(o, "name", http_req_param(req, "name"));
	cJSON_AddStringToObject(o, "watch", q ? q : "");
	cJSON_AddStringToObject(o, "hdr", h ? h : "");
	cJSON_AddStringToObject(o, "body", body);
	cJSON_AddNumberToObject(o, "len", (double)len);
	cJSON_AddStringToObject(o, "peer", http_req_peer(req));
	http_reply_json(req, 200, o);
	cJSON_Delete(o);
}

static void
h_rest(struct http_req *req, void *arg)
{
	struct buf b = BUF_INIT;

	(void)arg;
	buf_addf(&b, "rest=%s", http_req_param(req, "path"));
	http_reply_buf(req, 200, "text/plain", &b);
	buf_release(&b);
}

struct job {
	struct http_req *req;
	int wait;
	char result[64];
};

static void
job_work(void *arg)
{
	struct job *j = arg;

	if (j->wait) {
		sem_post(&F.in_handler);
		sem_wait(&F.release);
	}
	snprintf(j->result, sizeof(j->result), "computed by a worker");
}

static void
job_done(void *arg)
{
	struct job *j = arg;

	http_reply_data(j->req, 200, "text/plain", j->result, strlen(j->result));
	free(j);
}

static void
h_deferred(struct http_req *req, void *arg)
{
	struct job *j = calloc(1, sizeof(*j));

	j->req = req;
	j->wait = arg != NULL;
	cr_assert_eq(workpool_submit(F.wp, job_work, job_done, j), 0);
}

struct streamer {
	struct http_req *req;
	struct event *tick;
	int n, max;
};

static void
stream_tick(evutil_socket_t fd, short what, void *arg)
{
	struct streamer *s = arg;
	char line[64];
	struct timeval tv = { 0, 5000 };

	(void)fd;
	(void)what;
	if (http_req_closed(s->req) || (s->max > 0 && s->n == s->max)) {
		http_stream_end(s->req);
		event_free(s->tick);
		free(s);
		sem_post(&F.stream_ended);
		return;
	}
	snprintf(line, sizeof(line), "data: %d\n\n", s->n++);
	http_stream_chunk(s->req, line, strlen(line));
	evtimer_add(s->tick, &tv);
}

static void
on_client_gone(struct http_req *req, void *arg)
{
	(void)req;
	(void)arg;
	sem_post(&F.closed);
}

static void
h_stream(struct http_req *req, void *arg)
{
	struct streamer *s = calloc(1, sizeof(*s));
	struct timeval tv = { 0, 1000 };

	s->req = req;
	s->max = (int)(intptr_t)arg;
	s->tick = evtimer_new(F.base, stream_tick, s);
	http_req_on_close(req, on_client_gone, NULL);
	http_stream_start(req, 200, "text/event-stream");
	evtimer_add(s->tick, &tv);
}

static struct http_req *never_req;

static void
h_never(struct http_req *req, void *arg)
{
	(void)arg;
	never_req = req;
	http_req_on_close(req, on_client_gone, NULL);
	/* no reply until after http_server_free(), see stop_server() */
}

static void
shutdown_hook(void *arg)
{
	(void)arg;
	atomic_fetch_add(&F.hook_runs, 1);
	sem_post(&F.shutdown_hook);
}

static int
start_server_on(const struct http_server_config *cfg, const char *addr)
{
	struct llmd_err e = LLMD_ERR_INIT;

	evthread_use_pthreads();
	sem_init(&F.in_handler, 0, 0);
	sem_init(&F.release, 0, 0);
	sem_init(&F.shutdown_hook, 0, 0);
	sem_init(&F.closed, 0, 0);
	sem_init(&F.stream_ended, 0, 0);
	F.base = event_base_new();
	F.srv = http_server_new(F.base, cfg, &e);
	cr_assert_not_null(F.srv, "%s", e.msg);
	F.wp = workpool_new(F.base, 2, 16);
	http_server_route(F.srv, "GET",
	    "/apis/serving.kserve.io/v1alpha1/namespaces/{ns}/llminferenceservices/{name}",
	    h_echo, NULL);
	http_server_route(F.srv, "POST", "/echo", h_echo, NULL);
	http_server_route(F.srv, "GET", "/files/{path...}", h_rest, NULL);
	http_server_route(F.srv, "GET", "/deferred", h_deferred, NULL);
	http_server_route(F.srv, "GET", "/blocking", h_deferred, (void *)1);
	http_server_route(F.srv, "GET", "/stream", h_stream, (void *)(intptr_t)5);
	http_server_route(F.srv, "GET", "/forever", h_stream, (void *)(intptr_t)0);
	http_server_route(F.srv, "GET", "/never", h_never, NULL);
	http_server_on_shutdown(F.srv, shutdown_hook, NULL);
	cr_assert_eq(http_server_handle_signals(F.srv), 0);
	F.port = http_server_listen(F.srv, addr, &e);
	if (F.port < 0)
		return F.port;
	if (addr[0] == '[')
		snprintf(F.url, sizeof(F.url), "http://[::1]:%d", F.port);
	else
		snprintf(F.url, sizeof(F.url), "http://127.0.0.1:%d", F.port);
	pthread_create(&F.th, NULL, loop_main, F.base);
	return 0;
}

static void
start_server(const struct http_server_config *cfg)
{
	cr_assert_eq(start_server_on(cfg, "127.0.0.1:0"), 0);
}

static void
stop_server(void)
{
	event_base_loopexit(F.base, NULL);
	pthread_join(F.th, NULL);
	workpool_free(F.wp);
	http_server_free(F.srv);
	if (never_req != NULL) {
		/* a request a handler finishes after the server is gone */
		http_reply_error(never_req, 500, "Late", "too late");
		never_req = NULL;
	}
	event_base_free(F.base);
}

static void setup_default(void) { start_server(NULL); }

static int
fetch(const char *method, const char *path, const char *const *hdrs, const char *body,
    size_t len, struct http_result *res)
{
	char url[256];
	struct llmd_err e = LLMD_ERR_INIT;

	snprintf(url, sizeof(url), "%s%s", F.url, path);
	return http_fetch(method, url, hdrs, body, len, 5000, res, &e);
}

/* ---- tests ---- */

TestSuite(http, .init = setup_default, .fini = stop_server);

Test(http, routing_with_params_query_headers)
{
	struct http_result res;
	const char *hdrs[] = { "X-Test", "hello", NULL };
	const char *name = NULL, *ns = NULL, *watch = NULL, *hdr = NULL, *m = NULL;
	cJSON *v;

	cr_assert_eq(fetch("GET", "/apis/serving.kserve.io/v1alpha1/namespaces/default/"
	    "llminferenceservices/my%2Dsvc%20x?watch=true&x=%2F", hdrs, NULL, 0, &res), 0);
	cr_assert_eq(res.status, 200);
	cr_assert_str_eq(http_result_header(&res, "content-type"), "application/json");
	cr_assert_eq(json_parse(res.body.buf, res.body.len, &v, NULL), 0);
	json_get_str(v, "name", &name, 1, NULL);
	json_get_str(v, "ns", &ns, 1, NULL);
	json_get_str(v, "watch", &watch, 1, NULL);
	json_get_str(v, "hdr", &hdr, 1, NULL);
	json_get_str(v, "method", &m, 1, NULL);
	cr_assert_str_eq(name, "my-svc x");
	cr_assert_str_eq(ns, "default");
	cr_assert_str_eq(watch, "true");
	cr_assert_str_eq(hdr, "hello");
	cr_assert_str_eq(m, "GET");
	cJSON_Delete(v);
	http_result_release(&res);

	cr_assert_eq(fetch("GET", "/files/a/b%20c/d.txt", NULL, NULL, 0, &res), 0);
	cr_assert_str_eq(res.body.buf, "rest=a/b%20c/d.txt");
	http_result_release(&res);
	cr_assert_eq(fetch("GET", "/files", NULL, NULL, 0, &res), 0);
	cr_assert_str_eq(res.body.buf, "rest=");
	http_result_release(&res);
}

Test(http, post_body_is_contiguous)
{
	struct http_result res;
	char body[20000];
	int64_t len = 0;
	cJSON *v;

	memset(body, 'z', sizeof(body));
	cr_assert_eq(fetch("POST", "/echo", NULL, body, sizeof(body), &res), 0);
	cr_assert_eq(res.status, 200);
	cr_assert_eq(json_parse(res.body.buf, res.body.len, &v, NULL), 0);
	json_get_int64(v, "len", &len, 1, NULL);
	cr_assert_eq(len, 20000);
	cr_assert_eq(strlen(cJSON_GetObjectItem(v, "body")->valuestring), 20000);
	cJSON_Delete(v);
	http_result_release(&res);
}

Test(http, not_found_and_method_not_allowed)
{
	struct http_result res;

	cr_assert_eq(fetch("GET", "/nope", NULL, NULL, 0, &res), 0);
	cr_assert_eq(res.status, 404);
	cr_assert(strstr(res.body.buf, "\"reason\":\"NotFound\"") != NULL, "%s", res.body.buf);
	cr_assert_str_eq(http_result_header(&res, "Content-Type"), "application/json");
	http_result_release(&res);

	cr_assert_eq(fetch("DELETE", "/echo", NULL, NULL, 0, &res), 0);
	cr_assert_eq(res.status, 405);
	cr_assert_str_eq(http_result_header(&res, "Allow"), "POST");
	cr_assert(strstr(res.body.buf, "MethodNotAllowed") != NULL);
	http_result_release(&res);

	/* {name} never matches an empty segment */
	cr_assert_eq(fetch("GET", "/apis/serving.kserve.io/v1alpha1/namespaces//"
	    "llminferenceservices/x", NULL, NULL, 0, &res), 0);
	cr_assert_eq(res.status, 404);
	http_result_release(&res);
}

Test(http, deferred_reply_through_workpool)
{
	struct http_result res;

	cr_assert_eq(fetch("GET", "/deferred", NULL, NULL, 0, &res), 0);
	cr_assert_eq(res.status, 200);
	cr_assert_str_eq(res.body.buf, "computed by a worker");
	http_result_release(&res);
}

/* ---- client side of streams ---- */

struct sink {
	struct event_base *base;
	struct http_client_req *req;
	struct buf data;
	int status, chunks, ended, cancel_after;
	struct llmd_err err;
	int has_err;
};

static void
sink_head(const struct http_response *resp, void *arg)
{
	struct sink *s = arg;

	s->status = resp->status;
}

static void
sink_data(const char *data, size_t len, void *arg)
{
	struct sink *s = arg;

	buf_add(&s->data, data, len);
	s->chunks++;
	if (s->cancel_after > 0 && s->chunks == s->cancel_after) {
		http_client_cancel(s->req);
		event_base_loopexit(s->base, NULL);
	}
}

static void
sink_end(const struct http_response *resp, const struct llmd_err *e, void *arg)
{
	struct sink *s = arg;

	s->ended = 1;
	if (e != NULL) {
		s->err = *e;
		s->has_err = 1;
	}
	if (resp != NULL)
		s->status = resp->status;
	event_base_loopexit(s->base, NULL);
}

static const struct http_stream_cbs sink_cbs = { sink_head, sink_data, sink_end };

Test(http, streaming_chunks_reach_the_client)
{
	struct sink s = { .data = BUF_INIT };
	struct http_client *c;
	char url[128];

	s.base = event_base_new();
	c = http_client_new(s.base, NULL);
	snprintf(url, sizeof(url), "%s/stream", F.url);
	s.req = http_client_stream(c, "GET", url, NULL, NULL, 0, &sink_cbs, &s, NULL);
	cr_assert_not_null(s.req);
	event_base_dispatch(s.base);
	cr_assert(s.ended);
	cr_assert(!s.has_err, "%s", s.err.msg);
	cr_assert_eq(s.status, 200);
	cr_assert_str_eq(s.data.buf, "data: 0\n\ndata: 1\n\ndata: 2\n\ndata: 3\n\ndata: 4\n\n");
	cr_assert_geq(s.chunks, 1);
	buf_release(&s.data);
	http_client_free(c);
	event_base_free(s.base);
}

Test(http, client_cancel_closes_the_server_stream)
{
	struct sink s = { .data = BUF_INIT, .cancel_after = 2 };
	struct http_client *c;
	char url[128];

	s.base = event_base_new();
	c = http_client_new(s.base, NULL);
	snprintf(url, sizeof(url), "%s/forever", F.url);
	s.req = http_client_stream(c, "GET", url, NULL, NULL, 0, &sink_cbs, &s, NULL);
	event_base_dispatch(s.base);
	event_base_loop(s.base, EVLOOP_NONBLOCK);  /* run the deferred cancel */
	cr_assert_eq(s.chunks, 2);
	cr_assert(!s.ended, "no callback after cancel");
	/* the server learns that its client went away, and ends the stream */
	sem_wait(&F.closed);
	sem_wait(&F.stream_ended);
	buf_release(&s.data);
	http_client_free(c);
	event_base_free(s.base);
}

Test(http, deferred_request_notices_client_gone)
{
	struct llmd_err e = LLMD_ERR_INIT;
	struct http_result res;
	char url[128];

	snprintf(url, sizeof(url), "%s/never", F.url);
	cr_assert_eq(http_fetch("GET", url, NULL, NULL, 0, 100, &res, &e), -ETIMEDOUT);
	http_result_release(&res);
	sem_wait(&F.closed);
}

Test(http, keep_alive_reuses_the_connection)
{
	struct sink s = { .data = BUF_INIT };
	struct http_client *c;
	char url[256];
	char peer[2][64];

	s.base = event_base_new();
	c = http_client_new(s.base, NULL);
	snprintf(url, sizeof(url), "%s/apis/serving.kserve.io/v1alpha1/namespaces/a/"
	    "llminferenceservices/b", F.url);
	for (int i = 0; i < 2; i++) {
		cJSON *v;
		const char *p;
		s.ended = 0;
		buf_reset(&s.data);
		cr_assert_not_null(http_client_stream(c, "GET", url, NULL, NULL, 0, &sink_cbs, &s, NULL));
		event_base_dispatch(s.base);
		cr_assert(s.ended && !s.has_err);
		cr_assert_eq(json_parse(s.data.buf, s.data.len, &v, NULL), 0);
		json_get_str(v, "peer", &p, 1, NULL);
		snprintf(peer[i], sizeof(peer[i]), "%s", p);
		cJSON_Delete(v);
	}
	cr_assert_str_eq(peer[0], peer[1]);
	buf_release(&s.data);
	http_client_free(c);
	event_base_free(s.base);
}

struct bg_fetch {
	int rc, status;
	char body[64];
	char url[128];
};

static void *
bg_fetch_main(void *arg)
{
	struct bg_fetch *b = arg;
	struct http_result res;

	b->rc = http_fetch("GET", b->url, NULL, NULL, 0, 10000, &res, NULL);
	b->status = res.status;
	snprintf(b->body, sizeof(b->body), "%s", res.body.buf);
	http_result_release(&res);
	return NULL;
}

Test(http, graceful_shutdown_lets_inflight_finish)
{
	struct bg_fetch b;
	struct http_result res;
	pthread_t th;

	snprintf(b.url, sizeof(b.url), "%s/blocking", F.url);
	pthread_create(&th, NULL, bg_fetch_main, &b);
	sem_wait(&F.in_handler);          /* the request is in flight */
	kill(getpid(), SIGTERM);
	sem_wait(&F.shutdown_hook);       /* listener closed, hooks ran */
	cr_assert_eq(fetch("GET", "/deferred", NULL, NULL, 0, &res), -ECONNREFUSED);
	http_result_release(&res);
	sem_post(&F.release);             /* let the in-flight job finish */
	pthread_join(th, NULL);
	cr_assert_eq(b.rc, 0);
	cr_assert_eq(b.status, 200);
	cr_assert_str_eq(b.body, "computed by a worker");
	pthread_join(F.th, NULL);         /* the loop exited by itself */
	cr_assert_eq(atomic_load(&F.hook_runs), 1);
	cr_assert_eq(http_server_inflight(F.srv), 0);
	pthread_create(&F.th, NULL, loop_main, F.base);  /* for .fini */
}

/* ---- configured servers ---- */

static void setup_small(void)
{
	struct http_server_config cfg = { .max_body = 1024, .error_fmt = http_error_fmt_k8s };

	start_server(&cfg);
}

Test(http_limits, oversize_body_is_413_with_json, .init = setup_small, .fini = stop_server)
{
	struct http_result res;
	char body[3000];
	cJSON *v;
	const char *kind = NULL, *reason = NULL;
	int64_t code = 0;

	memset(body, 'a', sizeof(body));
	cr_assert_eq(fetch("POST", "/echo", NULL, body, sizeof(body), &res), 0);
	cr_assert_eq(res.status, 413);
	cr_assert_eq(json_parse(res.body.buf, res.body.len, &v, NULL), 0, "%s", res.body.buf);
	json_get_str(v, "kind", &kind, 1, NULL);
	json_get_str(v, "reason", &reason, 1, NULL);
	json_get_int64(v, "code", &code, 1, NULL);
	cr_assert_str_eq(kind, "Status");
	cr_assert_str_eq(reason, "RequestEntityTooLarge");
	cr_assert_eq(code, 413);
	cJSON_Delete(v);
	http_result_release(&res);

	cr_assert_eq(fetch("POST", "/echo", NULL, body, 1000, &res), 0);
	cr_assert_eq(res.status, 200);
	http_result_release(&res);
}

Test(http_misc, hostport_parsing)
{
	char host[64];
	int port;

	cr_assert_eq(http_parse_hostport("127.0.0.1:8080", host, sizeof(host), &port), 0);
	cr_assert_str_eq(host, "127.0.0.1");
	cr_assert_eq(port, 8080);
	cr_assert_eq(http_parse_hostport("[::1]:0", host, sizeof(host), &port), 0);
	cr_assert_str_eq(host, "::1");
	cr_assert_eq(port, 0);
	cr_assert_eq(http_parse_hostport(":9", host, sizeof(host), &port), 0);
	cr_assert_str_eq(host, "");
	cr_assert_eq(http_parse_hostport("::1:80", host, sizeof(host), &port), -EINVAL);
	cr_assert_eq(http_parse_hostport("h:70000", host, sizeof(host), &port), -EINVAL);
	cr_assert_eq(http_parse_hostport("h", host, sizeof(host), &port), -EINVAL);
}

Test(http_misc, error_formatters)
{
	struct buf b = BUF_INIT;

	cr_assert_str_eq(http_error_fmt_openai(&b, 404, "NotFound", "no \"model\"", NULL),
	    "application/json");
	cr_assert_str_eq(b.buf, "{\"error\":{\"message\":\"no \\\"model\\\"\","
	    "\"type\":\"not_found_error\",\"param\":null,\"code\":null}}");
	buf_release(&b);
}

Test(http_misc, bad_routes_and_ipv6)
{
	struct event_base *base = event_base_new();
	struct http_server *srv = http_server_new(base, NULL, NULL);
	struct llmd_err e = LLMD_ERR_INIT;
	int port;

	cr_assert_eq(http_server_route(srv, "GET", "nope", h_echo, NULL), -EINVAL);
	cr_assert_eq(http_server_route(srv, "GET", "/a/{x", h_echo, NULL), -EINVAL);
	cr_assert_eq(http_server_route(srv, "GET", "/a/{rest...}/b", h_echo, NULL), -EINVAL);
	cr_assert_eq(http_server_route(srv, "GET", "/a//b", h_echo, NULL), -EINVAL);
	cr_assert_eq(http_server_route(srv, "GET", "/", h_echo, NULL), 0);
	cr_assert_lt(http_server_listen(srv, "nonsense", &e), 0);
	port = http_server_listen(srv, "[::1]:0", &e);
	if (port < 0)
		cr_log_warn("no IPv6 loopback here: %s", e.msg);
	else
		cr_assert_gt(port, 0);
	http_server_free(srv);
	event_base_free(base);
}

Test(http_misc, client_errors)
{
	struct http_result res;
	struct llmd_err e = LLMD_ERR_INIT;
	char url[64];
	int port;
	struct event_base *base = event_base_new();
	struct http_server *srv = http_server_new(base, NULL, NULL);

	/* a port that was just free */
	port = http_server_listen(srv, "127.0.0.1:0", &e);
	http_server_free(srv);
	event_base_free(base);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", port);
	cr_assert_eq(http_fetch("GET", url, NULL, NULL, 0, 2000, &res, &e), -ECONNREFUSED,
	    "%d %s", e.code, e.msg);
	http_result_release(&res);
	cr_assert_eq(http_fetch("GET", "ftp://x/", NULL, NULL, 0, 0, &res, &e), -EINVAL);
	http_result_release(&res);
	/* https:// is served (tests/unit/test-tls.c); a closed port is still refused */
	snprintf(url, sizeof(url), "https://127.0.0.1:%d/", port);
	cr_assert_lt(http_fetch("GET", url, NULL, NULL, 0, 2000, &res, &e), 0);
	http_result_release(&res);
	cr_assert_eq(http_fetch("BREW", "http://x/", NULL, NULL, 0, 0, &res, &e), -EINVAL);
	http_result_release(&res);
}

static void
count_done(const struct http_response *resp, const struct llmd_err *e, void *arg)
{
	(void)resp;
	(void)e;
	(*(int *)arg)++;
}

Test(http_misc, host_table_is_bounded)
{
	struct event_base *base = event_base_new();
	struct http_client *c = http_client_new(base, &(struct http_client_config){
	    .timeout_ms = 2000 });
	struct llmd_err e = LLMD_ERR_INIT;
	char url[64];
	int done = 0;

	/* 300 endpoints that come and go (closed ports on 127.0.0.x) */
	for (int i = 0; i < 300; i++) {
		snprintf(url, sizeof(url), "http://127.0.%d.%d:1/", 1 + i / 250, 1 + i % 250);
		cr_assert_not_null(http_client_request(c, "GET", url, NULL, NULL, 0, count_done,
		    &done, &e), "%s", e.msg);
		while (done <= i)
			event_base_loop(base, EVLOOP_ONCE);
	}
	cr_assert_eq(done, 300);
	cr_assert_leq(http_client_hosts(c), 256, "%zu hosts kept", http_client_hosts(c));
	cr_assert_gt(http_client_hosts(c), 0);
	http_client_free(c);
	event_base_free(base);
}

/* LLMD_STOP_SIGNAL=USR2: SIGTERM is ignored, SIGUSR2 shuts down gracefully. */
Test(http_misc, stop_signal_from_the_environment)
{
	struct event_base *base = event_base_new();
	struct http_server *srv = http_server_new(base, NULL, NULL);

	cr_assert_eq(setenv("LLMD_STOP_SIGNAL", "USR2", 1), 0);
	cr_assert_eq(http_server_stop_signal(), SIGUSR2);
	cr_assert_eq(http_server_handle_signals(srv), 0);
	raise(SIGTERM);
	for (int i = 0; i < 5; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
	cr_assert_eq(http_server_shutting_down(srv), 0, "SIGTERM must be ignored");
	raise(SIGUSR2);
	for (int i = 0; i < 5 && !http_server_shutting_down(srv); i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
	cr_assert_eq(http_server_shutting_down(srv), 1, "SIGUSR2 stops it");
	unsetenv("LLMD_STOP_SIGNAL");
	cr_assert_eq(http_server_stop_signal(), SIGTERM);
	http_server_free(srv);
	event_base_free(base);
}

Test(http_misc, ipv6_and_head)
{
	struct http_result res;

	if (start_server_on(NULL, "[::1]:0") < 0) {
		http_server_free(F.srv);
		workpool_free(F.wp);
		event_base_free(F.base);
		cr_skip_test("no IPv6 loopback here");
	}
	cr_assert_eq(fetch("GET", "/deferred", NULL, NULL, 0, &res), 0);
	cr_assert_eq(res.status, 200);
	http_result_release(&res);
	/* HEAD is served by the GET route, without a body */
	cr_assert_eq(fetch("HEAD", "/deferred", NULL, NULL, 0, &res), 0);
	cr_assert_eq(res.status, 200);
	cr_assert_eq(res.body.len, 0);
	http_result_release(&res);
	stop_server();
}
