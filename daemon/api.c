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
#include <sys/socket.h>

#include <openssl/crypto.h>

#include "daemon/api-certs.h"
#include "daemon/api-drain.h"
#include "daemon/api-internal.h"
#include "daemon/api-metrics.h"
#include "daemon/api-podsecrets.h"
#include "daemon/api-tokens.h"
#include "daemon/auth.h"
#include "daemon/nodes.h"
#include "lib/buf.h"
#include "lib/log.h"
#include "lib/tls.h"
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
reply_text(struct http_req *req, int code, const char *text)
{
	struct buf b = BUF_INIT;

	buf_addf(&b, "%s\n", text);
	http_reply_data(req, code, "text/plain; charset=utf-8", b.buf, b.len);
	buf_release(&b);
}

static int
authorized(struct api *a, struct http_req *req)
{
	const char *h;
	size_t n;

	if (a->token == NULL)
		return 1;
	h = http_req_header(req, "Authorization");
	if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
		return 0;
	h += 7;
	n = strlen(a->token);
	return strlen(h) == n && CRYPTO_memcmp(h, a->token, n) == 0;
}

/*
 * Splits a path into at most max URL-decoded segments; returns the count,
 * -1 when there are more, -2 when a segment decodes to a NUL byte.
 */
static int
split_path(const char *path, char **segs, int max)
{
	int n = 0;
	const char *p = path;

	while (*p) {
		const char *s;

		while (*p == '/')
			p++;
		if (!*p)
			break;
		s = p;
		while (*p && *p != '/')
			p++;
		if (n == max || (segs[n] = http_urldecode(s, (size_t)(p - s))) == NULL) {
			int rc = n == max ? -1 : -2;

			while (n > 0)
				free(segs[--n]);
			return rc;
		}
		n++;
	}
	return n;
}

static void
route(struct api *a, struct http_req *req, const char *path)
{
	struct api_call c;
	char *segs[10];
	int n, i, k;
	const char *group;

	memset(&c, 0, sizeof(c));
	c.api = a;
	c.req = req;
	c.method = http_req_method(req);
	n = split_path(path, segs, (int)ARRAY_SIZE(segs));
	if (n < 0) {
		api_reply_status(req, n == -2 ? 400 : 404, n == -2 ? "BadRequest" :
		    "NotFound", n == -2 ? "malformed request path" : "the server could "
		    "not find the requested resource", NULL, NULL, NULL);
		return;
	}
	/* Discovery documents. */
	if (strcmp(c.method, "GET") == 0 && n >= 1 && n <= 3) {
		if (n == 1 && strcmp(segs[0], "api") == 0) {
			api_discovery_versions(&c);
			goto out;
		}
		if (n == 1 && strcmp(segs[0], "apis") == 0) {
			api_discovery_groups(&c);
			goto out;
		}
		if (n == 2 && strcmp(segs[0], "api") == 0) {
			api_discovery_resources(&c, "", segs[1]);
			goto out;
		}
		if (n == 3 && strcmp(segs[0], "apis") == 0) {
			api_discovery_resources(&c, segs[1], segs[2]);
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
	for (i = 0; i < n; i++)
		free(segs[i]);
}

static void
on_request(struct http_req *req, void *arg)
{
	struct api *a = arg;
	const char *path = http_req_path(req);
	struct nodes_api na;

	if (strcmp(path, "/healthz") == 0 || strcmp(path, "/livez") == 0) {
		reply_text(req, 200, "ok");
		return;
	}
	if (strcmp(path, "/readyz") == 0) {
		reply_text(req, a->ready ? 200 : 503, a->ready ? "ok" : "not ready");
		return;
	}
	if (!auth_check_cert_binding(a->store, req))
		return;   /* a node's certificate with another node's credential: 403 */
	na.store = a->store;
	na.hub = a->hub;
	na.admin_token = a->token;
	na.wp = a->wp;
	if (strncmp(path, "/agent/", 7) == 0 && (api_certs_request(a->store, a->token, req, path) ||
	    api_drain_request(a->store, a->hub, a->wp, req, path) ||
	    api_podsecrets_request(a->store, req, path)))
		return;
	if (strncmp(path, "/agent/", 7) == 0 && api_agent_request(&na, req, path))
		return;
	if (strncmp(path, "/auth/", 6) == 0 && api_tokens_request(a->store, a->hub, a->wp, a->token,
	    req, path))
		return;
	if (!authorized(a, req) && !api_agent_authorized(&na, req, path) &&
	    !auth_check_request(a->store, req, path))
		return;   /* auth_check_request replied 401 or 403 */
	if (strcmp(path, "/metrics") == 0 && strcmp(http_req_method(req), "GET") == 0) {
		api_metrics_reply(a->store, req);
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

int
api_start(struct api **out, struct event_base *base, struct store *store,
    struct watch_hub *hub, const struct api_opts *o, struct llmd_err *e)
{
	struct http_server_config cfg = { 0 };
	struct api *a;
	char host[96];
	int port, rc;

	if (http_parse_hostport(o->listen, host, sizeof(host), &port) < 0)
		return err_set(e, -EINVAL, "--listen", "expected HOST:PORT, got \"%s\"",
		    o->listen);
	if (!*host)
		snprintf(host, sizeof(host), "0.0.0.0");
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
	cfg.max_body = a->max_body;
	cfg.max_headers = 64 * 1024;
	cfg.timeout_ms = o->write_timeout_s > 0 ? (int64_t)o->write_timeout_s * 1000 : 0;
	cfg.shutdown_grace_ms = 5000;
	cfg.error_fmt = http_error_fmt_k8s;
	if (o->tls_ctx != NULL) {
		cfg.make_bev = tls_server_make_bev;
		cfg.make_bev_arg = o->tls_ctx;
	}
	if ((a->srv = http_server_new(base, &cfg, e)) == NULL) {
		api_stop(a);
		return e && e->code ? e->code : -ENOMEM;
	}
	if ((rc = http_server_route(a->srv, NULL, "/{path...}", on_request, a)) < 0 ||
	    (rc = http_server_listen(a->srv, o->listen, e)) < 0) {
		api_stop(a);
		return rc;
	}
	snprintf(a->bound, sizeof(a->bound), strchr(host, ':') ? "[%s]:%d" : "%s:%d",
	    host, rc);
	if (a->token == NULL)
		log_warnx("API on %s is open without authentication (loopback only); "
		    "pass --token-file to require a bearer token", a->bound);
	*out = a;
	return 0;
}

void
api_shutdown(struct api *a)
{
	http_server_shutdown(a->srv);
}

void
api_on_shutdown(struct api *a, void (*fn)(void *arg), void *arg)
{
	http_server_on_shutdown(a->srv, fn, arg);
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
	http_server_free(a->srv);
	free(a->token);
	free(a);
}
