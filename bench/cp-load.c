/*
 * bench/cp-load.c - load client of the control-plane benchmark
 * (bench/control-plane): many concurrent keep-alive HTTP/1.1 connections to
 * llmd's API over libevent's evhttp client.
 *
 *   cp-load nodes ADDR N GPUS CONC     create N Ready nodes with GPUS GPUs each
 *   cp-load apply ADDR N NSCOUNT CONC [MAXSECONDS]
 *                                      watch services, POST N services of mixed
 *                                      modes across NSCOUNT namespaces, wait
 *                                      until every one is reconciled (or give
 *                                      up after MAXSECONDS, default 600)
 *   cp-load latency ADDR get|list CONC SECONDS N NSCOUNT [INTERVAL_MS]
 *                                      GET one service / LIST one namespace
 *                                      in a loop on CONC connections: back to
 *                                      back (closed loop, the server's
 *                                      throughput) or each client starting a
 *                                      request every INTERVAL_MS (paced)
 *
 * Results are printed as "key value" lines for the script to show. Not part
 * of any test: figures depend on the machine.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>

#include "lib/log.h"
#include "lib/util.h"

#define SVC_PATH "/apis/serving.kserve.io/v1alpha1"

struct conn;

struct load {
	struct event_base *base;
	char host[128];
	int port;
	/* work */
	int n, next, done, failed, in_flight, nscount, gpus;
	const char *mode;        /* nodes, apply, get, list */
	double t_start, t_acked, t_reconciled;
	double until;            /* latency: end time; apply: seconds before giving up */
	/* latency samples (ms) */
	double *lat;
	size_t nlat, caplat;
	/* apply: the watch */
	unsigned char *reconciled;
	int nreconciled;
	struct evhttp_connection *wconn;
	struct evbuffer *wbuf;
	int watch_restarts;
	double interval;         /* latency: seconds between a client's starts; 0 back to back */
};

struct conn {
	struct load *l;
	struct evhttp_connection *c;
	struct event *pace;      /* paced latency runs: the next start */
	double t0;
};

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void issue(struct conn *c);

/* Body of service i: single-node (1-2 replicas), tensor 2, P/D or multi-node. */
static char *
service_body(int i, int nscount)
{
	char *b = xmalloc(1024);
	int kind = i % 20;
	int off = snprintf(b, 1024, "{\"apiVersion\":\"serving.kserve.io/v1alpha1\","
	    "\"kind\":\"LLMInferenceService\",\"metadata\":{\"name\":\"svc-%04d\","
	    "\"namespace\":\"bench-%d\",\"labels\":{\"bench\":\"cp\"}},\"spec\":"
	    "{\"model\":{\"uri\":\"hf://bench/model-%d\"},", i, i % nscount, i % 7);

	if (kind < 12)          /* 60%: single node, 1 or 2 replicas, 1 GPU */
		snprintf(b + off, 1024 - (size_t)off, "\"replicas\":%d,\"template\":"
		    "{\"containers\":[{\"name\":\"main\",\"resources\":{\"requests\":"
		    "{\"nvidia.com/gpu\":\"1\"}}}]}}}", 1 + i % 2);
	else if (kind < 16)     /* 20%: tensor 2 */
		snprintf(b + off, 1024 - (size_t)off, "\"replicas\":1,\"parallelism\":"
		    "{\"tensor\":2},\"template\":{\"containers\":[{\"name\":\"main\","
		    "\"resources\":{\"requests\":{\"nvidia.com/gpu\":\"2\"}}}]}}}");
	else if (kind < 19)     /* 15%: prefill/decode */
		snprintf(b + off, 1024 - (size_t)off, "\"replicas\":1,\"template\":"
		    "{\"containers\":[{\"name\":\"main\",\"resources\":{\"requests\":"
		    "{\"nvidia.com/gpu\":\"1\"}}}]},\"prefill\":{\"replicas\":1,"
		    "\"template\":{\"containers\":[{\"name\":\"main\",\"resources\":"
		    "{\"requests\":{\"nvidia.com/gpu\":\"1\"}}}]}},\"router\":"
		    "{\"scheduler\":{}}}}");
	else                    /* 5%: multi-node, pipeline 2 */
		snprintf(b + off, 1024 - (size_t)off, "\"replicas\":1,\"parallelism\":"
		    "{\"pipeline\":2},\"template\":{\"containers\":[{\"name\":\"main\","
		    "\"resources\":{\"requests\":{\"nvidia.com/gpu\":\"4\"}}}]},"
		    "\"worker\":{\"containers\":[{\"name\":\"main\",\"resources\":"
		    "{\"requests\":{\"nvidia.com/gpu\":\"4\"}}}]}}}");
	return b;
}

static char *
node_body(int i, int gpus)
{
	char *b = xmalloc(512);

	snprintf(b, 512, "{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":"
	    "{\"name\":\"node-%03d\",\"labels\":{\"bench\":\"cp\"}},\"spec\":"
	    "{\"unschedulable\":false},\"status\":{\"capacity\":{\"nvidia.com/gpu\":"
	    "\"%d\"},\"allocatable\":{\"nvidia.com/gpu\":\"%d\"},\"conditions\":"
	    "[{\"type\":\"Ready\",\"status\":\"True\"}]}}", i, gpus, gpus);
	return b;
}

static void
lat_add(struct load *l, double ms)
{
	if (l->nlat == l->caplat) {
		l->caplat = l->caplat ? l->caplat * 2 : 65536;
		l->lat = xreallocarray(l->lat, l->caplat, sizeof(*l->lat));
	}
	l->lat[l->nlat++] = ms;
}

static void
maybe_finish(struct load *l)
{
	if (l->in_flight > 0)
		return;
	if (strcmp(l->mode, "apply") == 0) {
		if (l->next >= l->n && l->t_acked == 0)
			l->t_acked = now_s();
		if (l->t_acked == 0 || l->nreconciled < l->n)
			return;
	} else if (strcmp(l->mode, "nodes") == 0) {
		if (l->next < l->n)
			return;
	} else if (now_s() < l->until) {
		return;
	}
	event_base_loopbreak(l->base);
}

static void
on_reply(struct evhttp_request *req, void *arg)
{
	struct conn *c = arg;
	struct load *l = c->l;
	int code = req ? evhttp_request_get_response_code(req) : 0;

	l->in_flight--;
	if (code < 200 || code >= 300) {
		if (l->failed++ < 5)
			log_warnx("request failed: HTTP %d", code);
	} else {
		l->done++;
	}
	if (strcmp(l->mode, "get") == 0 || strcmp(l->mode, "list") == 0) {
		double waited = now_s() - c->t0;

		lat_add(l, waited * 1000.0);
		if (c->pace && waited < l->interval) {
			double d = l->interval - waited;
			struct timeval tv = { (time_t)d, (suseconds_t)((d - (double)(time_t)d) * 1e6) };

			evtimer_add(c->pace, &tv);
			return;
		}
	}
	issue(c);
	maybe_finish(l);
}

static void
on_pace(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	(void)fd;
	(void)what;
	issue(c);
	maybe_finish(c->l);
}

static void
issue(struct conn *c)
{
	struct load *l = c->l;
	struct evhttp_request *req;
	char path[256];
	char *body = NULL;
	enum evhttp_cmd_type cmd = EVHTTP_REQ_GET;
	int i;

	if (strcmp(l->mode, "get") == 0 || strcmp(l->mode, "list") == 0) {
		if (now_s() >= l->until)
			return;
		i = rand() % l->n;
		if (l->mode[0] == 'g')
			snprintf(path, sizeof(path), SVC_PATH "/namespaces/bench-%d/"
			    "llminferenceservices/svc-%04d", i % l->nscount, i);
		else
			snprintf(path, sizeof(path), SVC_PATH "/namespaces/bench-%d/"
			    "llminferenceservices", i % l->nscount);
	} else {
		if (l->next >= l->n)
			return;
		i = l->next++;
		cmd = EVHTTP_REQ_POST;
		if (strcmp(l->mode, "nodes") == 0) {
			snprintf(path, sizeof(path), "/api/v1/nodes");
			body = node_body(i, l->gpus);
		} else {
			snprintf(path, sizeof(path), SVC_PATH "/namespaces/bench-%d/"
			    "llminferenceservices", i % l->nscount);
			body = service_body(i, l->nscount);
		}
	}
	req = evhttp_request_new(on_reply, c);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Host", l->host);
	if (body) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
		    "application/json");
		evbuffer_add(evhttp_request_get_output_buffer(req), body, strlen(body));
		free(body);
	}
	c->t0 = now_s();
	l->in_flight++;
	if (evhttp_make_request(c->c, req, cmd, path) < 0) {
		l->in_flight--;
		l->failed++;
	}
}

/* ---- apply: watch every service until each has its status ---- */

static void start_watch(struct load *l);

static int
reconciled(const cJSON *o)
{
	const cJSON *md = cJSON_GetObjectItemCaseSensitive(o, "metadata");
	const cJSON *st = cJSON_GetObjectItemCaseSensitive(o, "status");
	const cJSON *g = cJSON_GetObjectItemCaseSensitive(md, "generation");
	const cJSON *og = cJSON_GetObjectItemCaseSensitive(st, "observedGeneration");
	const cJSON *conds = cJSON_GetObjectItemCaseSensitive(st, "conditions");

	return cJSON_IsNumber(g) && cJSON_IsNumber(og) && g->valuedouble == og->valuedouble &&
	    cJSON_GetArraySize(conds) > 0;
}

static void
watch_line(struct load *l, const char *line)
{
	cJSON *ev = cJSON_Parse(line), *o;
	const char *name;
	int i;

	if (ev == NULL)
		return;
	o = cJSON_GetObjectItemCaseSensitive(ev, "object");
	name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(o, "metadata"), "name"));
	if (name && sscanf(name, "svc-%d", &i) == 1 && i >= 0 && i < l->n &&
	    !l->reconciled[i] && reconciled(o)) {
		l->reconciled[i] = 1;
		if (++l->nreconciled == l->n) {
			l->t_reconciled = now_s();
			maybe_finish(l);
		}
	}
	cJSON_Delete(ev);
}

static void
on_watch_chunk(struct evhttp_request *req, void *arg)
{
	struct load *l = arg;
	char *line;

	evbuffer_add_buffer(l->wbuf, evhttp_request_get_input_buffer(req));
	while ((line = evbuffer_readln(l->wbuf, NULL, EVBUFFER_EOL_LF)) != NULL) {
		watch_line(l, line);
		free(line);
	}
}

static void
on_watch_end(struct evhttp_request *req, void *arg)
{
	struct load *l = arg;

	(void)req;
	if (l->nreconciled < l->n) {
		/* Timed out or dropped (slow consumer): start over from a list. */
		l->watch_restarts++;
		evbuffer_drain(l->wbuf, evbuffer_get_length(l->wbuf));
		start_watch(l);
	}
}

static void
start_watch(struct load *l)
{
	struct evhttp_request *req = evhttp_request_new(on_watch_end, l);

	evhttp_request_set_chunked_cb(req, on_watch_chunk);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Host", l->host);
	if (evhttp_make_request(l->wconn, req, EVHTTP_REQ_GET,
	    SVC_PATH "/llminferenceservices?watch=true&timeoutSeconds=3600") < 0)
		fatalx("cannot start the watch");
}

/* Progress on stderr each second; gives up after MAXSECONDS. */
static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct load *l = arg;
	double t = now_s() - l->t_start;

	(void)fd;
	(void)what;
	fprintf(stderr, "  %5.1fs: posted %d acked %d reconciled %d\n", t, l->next,
	    l->done, l->nreconciled);
	if (t > l->until) {
		log_warnx("giving up after %.0f s", t);
		if (l->t_reconciled == 0)
			l->t_reconciled = now_s();
		event_base_loopbreak(l->base);
	}
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double
pct(const double *v, size_t n, double p)
{
	size_t i = (size_t)(p * (double)(n - 1) + 0.5);

	return n ? v[i < n ? i : n - 1] : 0;
}

static void
usage(void)
{
	fprintf(stderr, "usage: cp-load nodes ADDR N GPUS CONC\n"
	    "       cp-load apply ADDR N NSCOUNT CONC [MAXSECONDS]\n"
	    "       cp-load latency ADDR get|list CONC SECONDS N NSCOUNT [INTERVAL_MS]\n");
	exit(2);
}

static int
num(const char *s, long lo, long hi)
{
	long v;

	if (parse_long(s, lo, hi, &v) < 0)
		fatalx("bad number: %s", s);
	return (int)v;
}

int
main(int argc, char **argv)
{
	struct load l;
	struct conn *conns;
	struct event *tick = NULL;
	const char *colon;
	int conc, i;

	if (argc < 3)
		usage();
	memset(&l, 0, sizeof(l));
	colon = strrchr(argv[2], ':');
	if (colon == NULL || (size_t)(colon - argv[2]) >= sizeof(l.host))
		usage();
	memcpy(l.host, argv[2], (size_t)(colon - argv[2]));
	l.port = num(colon + 1, 1, 65535);
	l.mode = argv[1];
	if (strcmp(argv[1], "nodes") == 0 && argc == 6) {
		l.n = num(argv[3], 1, 100000);
		l.gpus = num(argv[4], 0, 1024);
		conc = num(argv[5], 1, 10000);
	} else if (strcmp(argv[1], "apply") == 0 && (argc == 6 || argc == 7)) {
		l.n = num(argv[3], 1, 10000);
		l.nscount = num(argv[4], 1, 1000);
		conc = num(argv[5], 1, 10000);
		l.until = argc == 7 ? num(argv[6], 1, 86400) : 600;
	} else if (strcmp(argv[1], "latency") == 0 && (argc == 8 || argc == 9)) {
		l.mode = argv[3];
		if (strcmp(l.mode, "get") && strcmp(l.mode, "list"))
			usage();
		conc = num(argv[4], 1, 10000);
		l.until = now_s() + num(argv[5], 1, 3600);
		l.n = num(argv[6], 1, 10000);
		l.nscount = num(argv[7], 1, 1000);
		l.interval = argc == 9 ? num(argv[8], 1, 60000) / 1000.0 : 0;
	} else {
		usage();
	}
	l.base = event_base_new();
	conns = xcalloc((size_t)conc, sizeof(*conns));
	for (i = 0; i < conc; i++) {
		conns[i].l = &l;
		conns[i].c = evhttp_connection_base_new(l.base, NULL, l.host,
		    (unsigned short)l.port);
		evhttp_connection_set_timeout(conns[i].c, 120);
		if (l.interval > 0)
			conns[i].pace = evtimer_new(l.base, on_pace, &conns[i]);
	}
	if (strcmp(l.mode, "apply") == 0) {
		l.reconciled = xcalloc((size_t)l.n, 1);
		l.wbuf = evbuffer_new();
		l.wconn = evhttp_connection_base_new(l.base, NULL, l.host,
		    (unsigned short)l.port);
		evhttp_connection_set_timeout(l.wconn, 3600);
		start_watch(&l);
		tick = event_new(l.base, -1, EV_PERSIST, on_tick, &l);
		event_add(tick, &(struct timeval){ 1, 0 });
	}
	l.t_start = now_s();
	for (i = 0; i < conc; i++) {
		if (conns[i].pace) {
			/* Spread the paced clients' starts over one interval. */
			double d = l.interval * i / conc;
			struct timeval tv = { (time_t)d, (suseconds_t)((d - (double)(time_t)d) * 1e6) };

			evtimer_add(conns[i].pace, &tv);
		} else {
			issue(&conns[i]);
		}
	}
	event_base_dispatch(l.base);
	if (strcmp(l.mode, "apply") == 0) {
		printf("applied %d failed %d reconciled %d\n", l.done, l.failed,
		    l.nreconciled);
		printf("apply_ack_s %.3f\n", l.t_acked - l.t_start);
		printf("reconciled_after_ack_s %.3f\n", l.t_reconciled > l.t_acked ?
		    l.t_reconciled - l.t_acked : 0.0);
		printf("apply_to_reconciled_s %.3f\n", l.t_reconciled - l.t_start);
		printf("watch_restarts %d\n", l.watch_restarts);
	} else if (strcmp(l.mode, "nodes") == 0) {
		printf("nodes %d failed %d seconds %.3f\n", l.done, l.failed,
		    now_s() - l.t_start);
	} else {
		double secs = now_s() - l.t_start;

		qsort(l.lat, l.nlat, sizeof(*l.lat), cmp_double);
		printf("%s %s requests %zu failed %d rps %.0f p50_ms %.3f p99_ms %.3f "
		    "max_ms %.3f\n", l.mode, l.interval > 0 ? "paced" : "closed-loop", l.nlat, l.failed, (double)l.nlat / secs,
		    pct(l.lat, l.nlat, 0.50), pct(l.lat, l.nlat, 0.99),
		    l.nlat ? l.lat[l.nlat - 1] : 0.0);
	}
	for (i = 0; i < conc; i++) {
		evhttp_connection_free(conns[i].c);
		if (conns[i].pace)
			event_free(conns[i].pace);
	}
	if (l.wconn)
		evhttp_connection_free(l.wconn);
	if (l.wbuf)
		evbuffer_free(l.wbuf);
	if (tick)
		event_free(tick);
	free(conns);
	free(l.lat);
	free(l.reconciled);
	event_base_free(l.base);
	return l.failed || (l.reconciled && l.nreconciled < l.n) ? 1 : 0;
}
