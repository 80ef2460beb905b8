/*
 * router/sidecar.c - the P/D routing sidecar (see sidecar.h), on
 * lib/http_server and lib/http_client. Protocol as llm-d's nixlv2 connector:
 *   prefill leg: same path, headers and body, except kv_transfer_params =
 *     {do_remote_decode:true, do_remote_prefill:false, remote_*: null},
 *     stream:false, no stream_options, max_tokens:1, max_completion_tokens:1;
 *   prefill 400-451: copied to the client; other failures (5xx, connection,
 *     timeout): fall back to the original body on the local decoder;
 *   decode leg: the original body with kv_transfer_params = the prefill
 *     response's, streamed back chunk by chunk.
 * Both legs carry the same x-request-id.
 */
#include "config.h"
#include "router/sidecar.h"

#include <errno.h>
#include <event2/event.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "lib/cli.h"
#include "lib/http_client.h"
#include "lib/http_server.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/notify.h"
#include "lib/util.h"

#define SIDECAR_MAX_ALLOW 64
/* a client slower than the decoder: stop reading the decoder past this many
 * bytes queued for the client, resume below half of it */
#define SIDECAR_HIGH_WATER (1u << 20)

struct sidecar {
	struct event_base *base;
	struct http_server *http;
	struct http_client *client;
	char decoder[300];              /* "http://127.0.0.1:8001" */
	int64_t prefill_timeout_ms;
	int ssrf;                       /* only allowed prefill hosts */
	char *allow[SIDECAR_MAX_ALLOW];
	int n_allow;
	unsigned long n_pd, n_fallback, n_local;
	struct leg *legs;               /* in flight, finished at shutdown */
};

/* One client request in flight. */
struct leg {
	struct sidecar *sc;
	struct http_req *req;
	struct http_client_req *up;
	cJSON *body;                    /* the client's JSON body (P/D path) */
	char rid[40];
	char path[512];
	int started;
	int is_pd;
	int paused;                     /* decoder reading paused (back-pressure) */
	struct event *drain;            /* polls the client's backlog while paused */
	struct leg *prev, *next;        /* sc->legs */
};

static const char *
flat_error(struct buf *out, int status, const char *reason, const char *message, void *arg)
{
	(void)arg;
	(void)reason;
	buf_adds(out, "{\"object\":\"error\",\"message\":");
	buf_add_json_str(out, message, strlen(message));
	buf_addf(out, ",\"type\":\"%s\",\"param\":null,\"code\":%d}",
	    status == 400 ? "BadRequestError" : status == 403 ? "Forbidden" :
	    status == 404 ? "NotFoundError" : status == 503 ? "ServiceUnavailable" : "BadGateway", status);
	return "application/json";
}

static struct leg *
leg_new(struct sidecar *sc, struct http_req *req)
{
	struct leg *l = xcalloc(1, sizeof(*l));

	l->sc = sc;
	l->req = req;
	l->next = sc->legs;
	if (sc->legs)
		sc->legs->prev = l;
	sc->legs = l;
	return l;
}

static void
leg_free(struct leg *l)
{
	if (l->prev)
		l->prev->next = l->next;
	else
		l->sc->legs = l->next;
	if (l->next)
		l->next->prev = l->prev;
	if (l->drain)
		event_free(l->drain);
	cJSON_Delete(l->body);
	free(l);
}

/* ---- decoder leg: stream back ---- */

static void
dec_head(const struct http_response *resp, void *arg)
{
	struct leg *l = arg;
	const char *ct = http_response_header(resp, "Content-Type");

	http_stream_start(l->req, resp->status, ct ? ct : "application/json");
	l->started = 1;
}

static void
on_drain(evutil_socket_t fd, short what, void *arg)
{
	struct leg *l = arg;

	(void)fd;
	(void)what;
	if (!l->paused || l->up == NULL)
		return;
	if (http_req_closed(l->req) || http_stream_pending(l->req) <= SIDECAR_HIGH_WATER / 2) {
		l->paused = 0;
		http_client_pause(l->up, 0);
		event_del(l->drain);
	}
}

static void
dec_data(const char *data, size_t len, void *arg)
{
	struct leg *l = arg;

	if (http_stream_chunk(l->req, data, len) < 0)
		return;   /* the client is gone; its close callback cancels us */
	if (!l->paused && http_stream_pending(l->req) > SIDECAR_HIGH_WATER) {
		struct timeval tv = { 0, 5000 };
		l->paused = 1;
		http_client_pause(l->up, 1);
		if (l->drain == NULL)
			l->drain = event_new(l->sc->base, -1, EV_PERSIST, on_drain, l);
		event_add(l->drain, &tv);
	}
}

static void
dec_end(const struct http_response *resp, const struct llmd_err *e, void *arg)
{
	struct leg *l = arg;

	(void)resp;
	l->up = NULL;
	if (!l->started) {
		/* the decoder never answered */
		if (e && e->code == -ECONNREFUSED)
			http_reply_error(l->req, 503, "ServiceUnavailable", "decode node is not ready");
		else
			http_reply_error(l->req, 502, "BadGateway", "decoder: %s", e ? e->msg : "no response");
	} else {
		http_stream_end(l->req);
	}
	leg_free(l);
}

static void
on_client_close(struct http_req *req, void *arg)
{
	struct leg *l = arg;

	(void)req;
	if (l->up) {
		http_client_cancel(l->up);
		l->up = NULL;
		if (l->started)
			http_stream_end(l->req);
		else
			http_reply_error(l->req, 499, "ClientClosed", "client went away");
		leg_free(l);
	}
}

static void
send_to_decoder(struct leg *l, const void *body, size_t len)
{
	struct sidecar *sc = l->sc;
	struct llmd_err e = LLMD_ERR_INIT;
	static const struct http_stream_cbs cbs = { dec_head, dec_data, dec_end };
	char url[1024];
	const char *auth = http_req_header(l->req, "Authorization");
	const char *hdrs[] = { "Content-Type", "application/json", "X-Request-Id", l->rid,
		auth ? "Authorization" : NULL, auth, NULL };

	snprintf(url, sizeof(url), "%s%s", sc->decoder, l->path);
	l->up = http_client_stream(sc->client, http_req_method(l->req), url, hdrs, body, len, &cbs, l, &e);
	if (l->up == NULL && e.code == -EINVAL) {
		/* The client's path is no valid URL (backslashes, raw non-ASCII bytes). */
		http_reply_error(l->req, 400, "BadRequest", "path cannot be forwarded: not a "
		    "valid URL path");
		leg_free(l);
	} else if (l->up == NULL) {
		http_reply_error(l->req, 502, "BadGateway", "decoder: %s", e.msg);
		leg_free(l);
	}
}

/* ---- prefill leg ---- */

static void
set_null(cJSON *o, const char *k)
{
	cJSON_DeleteItemFromObjectCaseSensitive(o, k);
	cJSON_AddNullToObject(o, k);
}

static void
decode_with(struct leg *l, const cJSON *kv_params)
{
	cJSON *d = cJSON_Duplicate(l->body, 1);
	struct buf b = BUF_INIT;

	cJSON_DeleteItemFromObjectCaseSensitive(d, "kv_transfer_params");
	if (kv_params)
		cJSON_AddItemToObject(d, "kv_transfer_params", cJSON_Duplicate(kv_params, 1));
	else
		cJSON_AddNullToObject(d, "kv_transfer_params");
	json_print_compact(d, &b);
	cJSON_Delete(d);
	send_to_decoder(l, b.buf, b.len);
	buf_release(&b);
}

static void
fallback(struct leg *l, const char *why)
{
	struct buf b = BUF_INIT;

	log_warnx("request %s: prefill failed (%s); prefilling on the decoder", l->rid, why);
	l->sc->n_fallback++;
	json_print_compact(l->body, &b);
	send_to_decoder(l, b.buf, b.len);
	buf_release(&b);
}

static void
prefill_done(const struct http_response *resp, const struct llmd_err *e, void *arg)
{
	struct leg *l = arg;
	cJSON *pr = NULL;

	l->up = NULL;
	if (resp == NULL) {
		fallback(l, e ? e->msg : "no response");
		return;
	}
	if (resp->status >= 400 && resp->status <= 451) {
		/* the client's mistake: pass it through */
		const char *ct = http_response_header(resp, "Content-Type");
		http_reply_data(l->req, resp->status, ct ? ct : "application/json", resp->body, resp->body_len);
		leg_free(l);
		return;
	}
	if (resp->status < 200 || resp->status > 299) {
		char why[64];
		snprintf(why, sizeof(why), "status %d", resp->status);
		fallback(l, why);
		return;
	}
	if (json_parse(resp->body, resp->body_len, &pr, NULL) < 0 || !cJSON_IsObject(pr)) {
		cJSON_Delete(pr);
		fallback(l, "unparsable response");
		return;
	}
	const cJSON *kv = cJSON_GetObjectItemCaseSensitive(pr, "kv_transfer_params");
	if (kv == NULL || cJSON_IsNull(kv))
		log_warnx("request %s: the prefill response has no kv_transfer_params", l->rid);
	l->sc->n_pd++;
	decode_with(l, cJSON_IsObject(kv) ? kv : NULL);
	cJSON_Delete(pr);
}

static int
prefill_allowed(struct sidecar *sc, const char *hostport)
{
	char host[256];
	int port;

	if (!sc->ssrf)
		return 1;
	if (http_parse_hostport(hostport, host, sizeof(host), &port) < 0)
		return 0;
	for (int i = 0; i < sc->n_allow; i++)
		if (strcmp(sc->allow[i], host) == 0)
			return 1;
	return 0;
}

static void
h_generate(struct http_req *req, void *arg)
{
	struct sidecar *sc = arg;
	struct leg *l = leg_new(sc, req);
	const char *hp = http_req_header(req, "x-prefiller-host-port"), *body;
	const char *rid = http_req_header(req, "X-Request-Id");
	struct llmd_err e = LLMD_ERR_INIT;
	char target[300], url[1024];
	size_t len;
	uint8_t rnd[16];

	snprintf(l->path, sizeof(l->path), "%s", http_req_path(req));
	if (rid && strlen(rid) < sizeof(l->rid)) {
		snprintf(l->rid, sizeof(l->rid), "%s", rid);
	} else {
		RAND_bytes(rnd, sizeof(rnd));
		for (size_t i = 0; i < sizeof(rnd); i++)
			snprintf(l->rid + 2 * i, 3, "%02x", rnd[i]);
	}
	http_req_on_close(req, on_client_close, l);
	body = http_req_body(req, &len);
	if (hp == NULL || *hp == '\0') {
		sc->n_local++;
		send_to_decoder(l, body, len);
		return;
	}
	/* first of a comma list; "http://" stripped */
	if (strncmp(hp, "http://", 7) == 0)
		hp += 7;
	snprintf(target, sizeof(target), "%.*s", (int)strcspn(hp, ", "), hp);
	if (!prefill_allowed(sc, target)) {
		http_reply_error(req, 403, "Forbidden", "Forbidden: prefill target not allowed by SSRF protection");
		leg_free(l);
		return;
	}
	if (json_parse(body, len, &l->body, &e) < 0 || !cJSON_IsObject(l->body)) {
		http_reply_error(req, 400, "BadRequest", "invalid JSON body: %s", e.msg[0] ? e.msg : "not an object");
		leg_free(l);
		return;
	}
	l->is_pd = 1;
	cJSON *p = cJSON_Duplicate(l->body, 1), *kv;
	cJSON_DeleteItemFromObjectCaseSensitive(p, "kv_transfer_params");
	kv = cJSON_AddObjectToObject(p, "kv_transfer_params");
	cJSON_AddBoolToObject(kv, "do_remote_decode", 1);
	cJSON_AddBoolToObject(kv, "do_remote_prefill", 0);
	set_null(kv, "remote_engine_id");
	set_null(kv, "remote_block_ids");
	set_null(kv, "remote_host");
	set_null(kv, "remote_port");
	cJSON_DeleteItemFromObjectCaseSensitive(p, "stream");
	cJSON_AddBoolToObject(p, "stream", 0);
	cJSON_DeleteItemFromObjectCaseSensitive(p, "stream_options");
	cJSON_DeleteItemFromObjectCaseSensitive(p, "max_tokens");
	cJSON_AddNumberToObject(p, "max_tokens", 1);
	if (strstr(l->path, "chat/completions") != NULL) {
		cJSON_DeleteItemFromObjectCaseSensitive(p, "max_completion_tokens");
		cJSON_AddNumberToObject(p, "max_completion_tokens", 1);
	}
	struct buf b = BUF_INIT;
	json_print_compact(p, &b);
	cJSON_Delete(p);
	const char *auth = http_req_header(req, "Authorization");
	const char *hdrs[] = { "Content-Type", "application/json", "X-Request-Id", l->rid,
		auth ? "Authorization" : NULL, auth, NULL };
	snprintf(url, sizeof(url), "http://%s%s", target, l->path);
	l->up = http_client_request(sc->client, "POST", url, hdrs, b.buf, b.len, prefill_done, l, &e);
	buf_release(&b);
	if (l->up == NULL)
		fallback(l, e.msg);
}

static void
h_health(struct http_req *req, void *arg)
{
	(void)arg;
	http_reply_data(req, 200, NULL, "", 0);
}

static void
h_metrics(struct http_req *req, void *arg)
{
	struct sidecar *sc = arg;
	struct buf b = BUF_INIT;

	buf_addf(&b, "# HELP llmd_sidecar_requests_total Requests by path taken.\n"
	    "# TYPE llmd_sidecar_requests_total counter\n"
	    "llmd_sidecar_requests_total{path=\"pd\"} %lu\n"
	    "llmd_sidecar_requests_total{path=\"fallback\"} %lu\n"
	    "llmd_sidecar_requests_total{path=\"local\"} %lu\n", sc->n_pd, sc->n_fallback, sc->n_local);
	http_reply_buf(req, 200, "text/plain; version=0.0.4", &b);
	buf_release(&b);
}

/* Anything else goes to the decoder unchanged (its /metrics included). */
static void
h_proxy(struct http_req *req, void *arg)
{
	struct sidecar *sc = arg;
	struct leg *l = leg_new(sc, req);
	const char *body, *q;
	size_t len;

	q = http_req_query(req, "watch");
	(void)q;
	snprintf(l->path, sizeof(l->path), "%s", http_req_path(req));
	snprintf(l->rid, sizeof(l->rid), "-");
	http_req_on_close(req, on_client_close, l);
	body = http_req_body(req, &len);
	send_to_decoder(l, len ? body : NULL, len);
}

static void
usage(FILE *f)
{
	fprintf(f, "usage: llmd-router sidecar [OPTIONS]\n\n"
	    "The decode-side P/D coordinator in front of a decode engine.\n\n"
	    "Options (llm-d routing sidecar names):\n"
	    "  --port PORT                   listen port (default 8000; 0 picks one, printed)\n"
	    "  --host HOST                   listen address (default 0.0.0.0)\n"
	    "  --vllm-port PORT              the local decode engine's port (default 8001)\n"
	    "  --decoder-host HOST           where the decode engine listens (default 127.0.0.1)\n"
	    "  --kv-connector NAME           nixlv2 (default; the only protocol)\n"
	    "  --enable-ssrf-protection      only prefill hosts given by --allowed-prefill-hosts\n"
	    "  --allowed-prefill-hosts LIST  comma-separated IPs allowed as prefill targets\n"
	    "  --prefill-timeout DURATION    give up on the prefill leg and fall back (default 60s)\n"
	    "  --secure-proxy=false          accepted (TLS comes with the security work)\n");
}

int
sidecar_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "port", required_argument, NULL, 'p' },
		{ "host", required_argument, NULL, 'H' },
		{ "vllm-port", required_argument, NULL, 'v' },
		{ "decoder-host", required_argument, NULL, 'd' },
		{ "kv-connector", required_argument, NULL, 'k' },
		{ "connector", required_argument, NULL, 'k' },
		{ "enable-ssrf-protection", no_argument, NULL, 's' },
		{ "allowed-prefill-hosts", required_argument, NULL, 'a' },
		{ "prefill-timeout", required_argument, NULL, 't' },
		{ "secure-proxy", required_argument, NULL, 'S' },
		{ NULL, 0, NULL, 0 },
	};
	struct sidecar sc;
	struct http_server_config hc = { 0 };
	struct http_client_config cc = { 0 };
	struct llmd_err e = LLMD_ERR_INIT;
	const char *host = "0.0.0.0", *dhost = "127.0.0.1";
	long port = 8000, vport = 8001;
	char addr[300];
	int c, bound;

	memset(&sc, 0, sizeof(sc));
	sc.prefill_timeout_ms = 60000;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			usage(stdout);
			return 0;
		case 'p':
			if (parse_long(optarg, 0, 65535, &port) < 0)
				cli_usage_error("llmd-router sidecar", "--port: '%s' is not a port", optarg);
			break;
		case 'H':
			host = optarg;
			break;
		case 'v':
			if (parse_long(optarg, 1, 65535, &vport) < 0)
				cli_usage_error("llmd-router sidecar", "--vllm-port: '%s' is not a port", optarg);
			break;
		case 'd':
			dhost = optarg;
			break;
		case 'k':
			if (strcmp(optarg, "nixlv2") != 0 && strcmp(optarg, "nixl") != 0 &&
			    strcmp(optarg, "llmd") != 0)
				cli_usage_error("llmd-router sidecar", "--kv-connector: '%s' is not supported "
				    "(nixlv2)", optarg);
			break;
		case 's':
			sc.ssrf = 1;
			break;
		case 'a': {
			char *list = xstrdup(optarg), *save = NULL;
			for (char *tok = strtok_r(list, ",", &save); tok && sc.n_allow < SIDECAR_MAX_ALLOW;
			    tok = strtok_r(NULL, ",", &save))
				sc.allow[sc.n_allow++] = xstrdup(tok);
			free(list);
			break;
		}
		case 't':
			if (parse_duration_ms(optarg, &sc.prefill_timeout_ms) < 0)
				cli_usage_error("llmd-router sidecar", "--prefill-timeout: '%s' is not a duration", optarg);
			break;
		case 'S':
			if (strcmp(optarg, "false") != 0)
				cli_usage_error("llmd-router sidecar", "--secure-proxy=%s: TLS is not built yet; "
				    "use --secure-proxy=false", optarg);
			break;
		default:
			return EXIT_USAGE;
		}
	}
	if (optind < argc)
		cli_usage_error("llmd-router sidecar", "unexpected argument '%s'", argv[optind]);
	snprintf(sc.decoder, sizeof(sc.decoder), "http://%s:%ld", dhost, vport);
	/* a peer gone while we write to it must not kill the sidecar */
	signal(SIGPIPE, SIG_IGN);
	sc.base = event_base_new();
	hc.error_fmt = flat_error;
	hc.max_body = 16u << 20;
	hc.server_name = "llmd-router-sidecar/" PACKAGE_VERSION;
	if ((sc.http = http_server_new(sc.base, &hc, &e)) == NULL)
		fatalx("%s", e.msg);
	cc.timeout_ms = sc.prefill_timeout_ms;
	cc.stream_timeout_ms = 0;
	sc.client = http_client_new(sc.base, &cc);
	http_server_route(sc.http, "GET", "/health", h_health, &sc);
	http_server_route(sc.http, "GET", "/sidecar/metrics", h_metrics, &sc);
	http_server_route(sc.http, "POST", "/v1/completions", h_generate, &sc);
	http_server_route(sc.http, "POST", "/v1/chat/completions", h_generate, &sc);
	http_server_route(sc.http, NULL, "/{rest...}", h_proxy, &sc);
	snprintf(addr, sizeof(addr), strchr(host, ':') ? "[%s]:%ld" : "%s:%ld", host, port);
	if ((bound = http_server_listen(sc.http, addr, &e)) < 0)
		fatalx("%s", e.msg);
	http_server_handle_signals(sc.http);
	log_info("sidecar on %s:%d in front of the decoder at %s", host, bound, sc.decoder);
	printf("%d\n", bound);
	fflush(stdout);
	notify_ready("sidecar serving");
	event_base_dispatch(sc.base);
	/* the grace ran out with legs in flight: finish them while the client
	 * and the server still exist (their close callbacks would use both) */
	while (sc.legs != NULL) {
		struct leg *l = sc.legs;
		if (l->up)
			http_client_cancel(l->up);
		l->up = NULL;
		http_req_on_close(l->req, NULL, NULL);
		if (l->started)
			http_stream_end(l->req);
		else
			http_reply_error(l->req, 503, "ServiceUnavailable", "the sidecar is shutting down");
		leg_free(l);
	}
	http_client_free(sc.client);
	http_server_free(sc.http);
	event_base_free(sc.base);
	for (int i = 0; i < sc.n_allow; i++)
		free(sc.allow[i]);
	return 0;
}
