/*
 * daemon/api.c - the API server: listening socket, bearer-token check,
 * /healthz /readyz /version, and routing of Kubernetes-style paths to the
 * verbs in api-verbs.c.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/crypto.h>

#include "daemon/api-internal.h"
#include "lib/log.h"
#include "lib/util.h"

int
api_host_is_loopback(const char *host)
{
	struct in_addr a4;
	struct in6_addr a6;

	if (strcmp(host, "localhost") == 0)
		return 1;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, host, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6);
	return 0;
}

static void
reply_text(struct evhttp_request *req, int code, const char *text)
{
	struct evbuffer *out = evbuffer_new();

	evbuffer_add_printf(out, "%s\n", text);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
	    "text/plain; charset=utf-8");
	evhttp_send_reply(req, code, code == 200 ? "OK" : "Service Unavailable", out);
	evbuffer_free(out);
}

static int
authorized(struct api *a, struct evhttp_request *req)
{
	const char *h;
	size_t n;

	if (a->token == NULL)
		return 1;
	h = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
	if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
		return 0;
	h += 7;
	n = strlen(a->token);
	return strlen(h) == n && CRYPTO_memcmp(h, a->token, n) == 0;
}

/* Splits a path into at most max segments (decoded); returns the count or -1. */
static int
split_path(const char *path, char **segs, int max)
{
	int n = 0;
	const char *p = path;

	while (*p) {
		const char *s;
		size_t len;

		while (*p == '/')
			p++;
		if (!*p)
			break;
		s = p;
		while (*p && *p != '/')
			p++;
		len = (size_t)(p - s);
		if (n == max)
			return -1;
		segs[n] = xstrndup(s, len);
		{
			char *d = evhttp_uridecode(segs[n], 0, NULL);

			free(segs[n]);
			segs[n] = d ? d : xstrdup("");
		}
		n++;
	}
	return n;
}

static void
route(struct api *a, struct evhttp_request *req, const char *path)
{
	struct api_call c;
	char *segs[10];
	int n, i, k;
	const char *group;

	memset(&c, 0, sizeof(c));
	c.api = a;
	c.req = req;
	c.method = evhttp_request_get_command(req);
	TAILQ_INIT(&c.query);
	n = split_path(path, segs, (int)ARRAY_SIZE(segs));
	if (n < 0) {
		api_reply_status(req, 404, "NotFound", "the server could not find the "
		    "requested resource", NULL, NULL, NULL);
		return;
	}
	{
		const char *q = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));

		if (q && evhttp_parse_query_str(q, &c.query) < 0) {
			api_reply_status(req, 400, "BadRequest", "malformed query string",
			    NULL, NULL, NULL);
			goto out;
		}
	}
	/* /api/v1/... or /apis/GROUP/VERSION/... */
	if (n >= 2 && strcmp(segs[0], "api") == 0 && strcmp(segs[1], "v1") == 0) {
		group = "";
		k = 2;
	} else if (n >= 3 && strcmp(segs[0], "apis") == 0) {
		group = segs[1];
		k = 3;
	} else {
		goto notfound;
	}
	if (*group == '\0' && n - k >= 1 && strcmp(segs[k], "namespaces") == 0 &&
	    n - k <= 2) {
		c.name = n - k == 2 ? segs[k + 1] : NULL;
		api_verbs_namespaces(&c);
		goto out;
	}
	if (n - k >= 3 && strcmp(segs[k], "namespaces") == 0) {
		c.ns = segs[k + 1];
		k += 2;
	}
	if (n - k < 1 || n - k > 3)
		goto notfound;
	c.res = api_resource_find(group, segs[k]);
	if (c.res == NULL || (k == 3 && strcmp(c.res->version, segs[2]) != 0) ||
	    (k == 2 && strcmp(c.res->version, "v1") != 0) ||
	    (k >= 4 && strcmp(segs[k - 3], c.res->version) != 0 && *group))
		goto notfound;
	if (c.ns && !(c.res->flags & RES_NAMESPACED))
		goto notfound;
	if (n - k >= 2)
		c.name = segs[k + 1];
	if (n - k == 3) {
		if (strcmp(segs[k + 2], "status") != 0 || !(c.res->flags & RES_STATUS))
			goto notfound;
		c.status_sub = 1;
	}
	if (c.name && (c.res->flags & RES_NAMESPACED) && c.ns == NULL)
		goto notfound;
	api_verbs_dispatch(&c);
	goto out;
notfound:
	api_reply_status(req, 404, "NotFound", "the server could not find the "
	    "requested resource", NULL, NULL, NULL);
out:
	evhttp_clear_headers(&c.query);
	for (i = 0; i < n; i++)
		free(segs[i]);
}

static void
on_request(struct evhttp_request *req, void *arg)
{
	struct api *a = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;

	if (path == NULL || *path != '/') {
		api_reply_status(req, 400, "BadRequest", "malformed request path", NULL,
		    NULL, NULL);
		return;
	}
	if (strcmp(path, "/healthz") == 0 || strcmp(path, "/livez") == 0) {
		reply_text(req, 200, "ok");
		return;
	}
	if (strcmp(path, "/readyz") == 0) {
		reply_text(req, a->ready ? 200 : 503, a->ready ? "ok" : "not ready");
		return;
	}
	if (!authorized(a, req)) {
		api_reply_status(req, 401, "Unauthorized", "Unauthorized", NULL, NULL, NULL);
		return;
	}
	if (strcmp(path, "/version") == 0) {
		cJSON *v = cJSON_CreateObject();

		cJSON_AddStringToObject(v, "major", "0");
		cJSON_AddStringToObject(v, "minor", "1");
		cJSON_AddStringToObject(v, "gitVersion", "v" PACKAGE_VERSION);
		cJSON_AddStringToObject(v, "platform", "linux");
		api_reply_json(req, 200, v);
		cJSON_Delete(v);
		return;
	}
	route(a, req, path);
}

/* "HOST:PORT", "[V6]:PORT" or ":PORT". */
static int
split_listen(const char *listen, char *host, size_t hostlen, unsigned short *port)
{
	const char *colon;
	long p;

	if (listen[0] == '[') {
		const char *end = strchr(listen, ']');

		if (end == NULL || end[1] != ':')
			return -EINVAL;
		snprintf(host, hostlen, "%.*s", (int)(end - listen - 1), listen + 1);
		colon = end + 1;
	} else {
		colon = strrchr(listen, ':');
		if (colon == NULL)
			return -EINVAL;
		snprintf(host, hostlen, "%.*s", (int)(colon - listen), listen);
	}
	if (parse_long(colon + 1, 0, 65535, &p) < 0)
		return -EINVAL;
	if (!*host)
		snprintf(host, hostlen, "0.0.0.0");
	*port = (unsigned short)p;
	return 0;
}

int
api_start(struct api **out, struct event_base *base, struct store *store,
    struct watch_hub *hub, const struct api_opts *o, struct llmd_err *e)
{
	struct api *a;
	char host[96];
	unsigned short port;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char addr[INET6_ADDRSTRLEN];

	if (split_listen(o->listen, host, sizeof(host), &port) < 0)
		return err_set(e, -EINVAL, "--listen", "expected HOST:PORT, got \"%s\"",
		    o->listen);
	if (o->token == NULL && !api_host_is_loopback(host))
		return err_set(e, -EACCES, "--listen", "refusing to serve the API on "
		    "non-loopback address %s without authentication: pass --token-file",
		    host);
	a = xcalloc(1, sizeof(*a));
	a->base = base;
	a->store = store;
	a->hub = hub;
	a->wp = o->workpool;
	a->token = o->token ? xstrdup(o->token) : NULL;
	a->max_body = o->max_body ? o->max_body : API_MAX_BODY;
	a->http = evhttp_new(base);
	/* evhttp answers far larger bodies itself; ours get a Status 413. */
	evhttp_set_max_body_size(a->http, (ev_ssize_t)(a->max_body * 2 + 65536));
	evhttp_set_max_headers_size(a->http, 64 * 1024);
	evhttp_set_timeout(a->http, o->write_timeout_s > 0 ? o->write_timeout_s : 60);
	evhttp_set_allowed_methods(a->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST |
	    EVHTTP_REQ_PUT | EVHTTP_REQ_PATCH | EVHTTP_REQ_DELETE | EVHTTP_REQ_HEAD);
	evhttp_set_gencb(a->http, on_request, a);
	a->sock = evhttp_bind_socket_with_handle(a->http, host, port);
	if (a->sock == NULL) {
		int rc = err_set(e, -EADDRINUSE, "--listen", "cannot listen on %s: %s",
		    o->listen, strerror(errno));

		api_stop(a);
		return rc;
	}
	if (getsockname(evhttp_bound_socket_get_fd(a->sock), (struct sockaddr *)&ss,
	    &sl) == 0) {
		if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

			inet_ntop(AF_INET6, &s6->sin6_addr, addr, sizeof(addr));
			snprintf(a->bound, sizeof(a->bound), "[%s]:%u", addr,
			    ntohs(s6->sin6_port));
		} else {
			struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

			inet_ntop(AF_INET, &s4->sin_addr, addr, sizeof(addr));
			snprintf(a->bound, sizeof(a->bound), "%s:%u", addr,
			    ntohs(s4->sin_port));
		}
	}
	if (a->token == NULL)
		log_warnx("API on %s is open without authentication (loopback only); "
		    "pass --token-file to require a bearer token", a->bound);
	*out = a;
	return 0;
}

const char *
api_bound_address(const struct api *a)
{
	return a->bound;
}

void
api_set_ready(struct api *a, int ready)
{
	a->ready = ready;
}

void
api_stop(struct api *a)
{
	if (a == NULL)
		return;
	if (a->http)
		evhttp_free(a->http);
	free(a->token);
	free(a);
}
