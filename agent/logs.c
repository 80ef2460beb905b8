/*
 * agent/logs.c - the agent's own HTTP server: GET /healthz and
 * GET /v1/logs/{ns}/{pod}[/{container}]?tail=N&follow=1, the output of a
 * pod's process from its log file (followed by polling the file). Log
 * requests must carry a bearer token the daemon accepts (checked with
 * GET /version on the daemon, answers cached for a minute); an open daemon
 * (no token) means open logs.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "agent/agent.h"
#include "lib/buf.h"
#include "lib/http_client.h"
#include "lib/http_server.h"
#include "lib/log.h"
#include "lib/util.h"

struct follow {
	struct follow *next;
	struct http_req *req;
	struct event *ev;
	int fd;
	int closed;
};

/* Open follow streams, ended by logs_stop(). */
static struct follow *follows;

static void
follow_free(struct follow *f)
{
	struct follow **pp;

	for (pp = &follows; *pp; pp = &(*pp)->next)
		if (*pp == f) {
			*pp = f->next;
			break;
		}
	event_free(f->ev);
	close(f->fd);
	free(f);
}

static void
follow_tick(evutil_socket_t fd, short what, void *arg)
{
	struct follow *f = arg;
	char chunk[16384];
	ssize_t n;

	(void)fd;
	(void)what;
	if (f->closed) {
		http_stream_end(f->req);
		follow_free(f);
		return;
	}
	while ((n = read(f->fd, chunk, sizeof(chunk))) > 0)
		if (http_stream_chunk(f->req, chunk, (size_t)n) < 0)
			break;
}

static void
follow_closed(struct http_req *req, void *arg)
{
	struct follow *f = arg;

	(void)req;
	f->closed = 1;
}

/* Offset where the last n lines of fd begin. */
static off_t
tail_offset(int fd, long n)
{
	struct stat st;
	char buf[8192];
	off_t pos, end;
	long lines = 0;

	if (fstat(fd, &st) < 0)
		return 0;
	end = st.st_size;
	if (n < 0)
		return 0;
	pos = end;
	while (pos > 0) {
		size_t want = (size_t)MIN((off_t)sizeof(buf), pos);
		ssize_t got, i;

		pos -= (off_t)want;
		got = pread(fd, buf, want, pos);
		if (got <= 0)
			return 0;
		for (i = got - 1; i >= 0; i--) {
			if (buf[i] != '\n' || pos + i == end - 1)
				continue;
			if (++lines == n + 0 && n > 0)
				return pos + i + 1;
		}
	}
	return n == 0 ? end : 0;
}

/* Authorization headers the daemon accepted in the last minute (a few). */
struct okay {
	char *auth;
	uint64_t until;
};
static struct okay okays[16];

static int
auth_cached(const char *auth)
{
	uint64_t now = now_ms();
	size_t i;

	for (i = 0; i < ARRAY_SIZE(okays); i++)
		if (okays[i].auth && okays[i].until > now && strcmp(okays[i].auth, auth) == 0)
			return 1;
	return 0;
}

static void
auth_remember(const char *auth)
{
	size_t i, slot = 0;

	for (i = 0; i < ARRAY_SIZE(okays); i++)
		if (okays[i].until < okays[slot].until)
			slot = i;
	free(okays[slot].auth);
	okays[slot].auth = xstrdup(auth);
	okays[slot].until = now_ms() + 60000;
}

static void serve_logs(struct http_req *req, struct agent *a);

struct auth_check {
	struct auth_check *next;
	struct http_req *req;
	struct agent *a;
	char *auth;
	struct http_client_req *creq;
};

/* Credential checks in flight, answered 503 by logs_stop(). */
static struct auth_check *checks;

static void
check_unlink(struct auth_check *c)
{
	struct auth_check **pp;

	for (pp = &checks; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
}

static void
auth_done(const struct http_response *resp, const struct llmd_err *e, void *arg)
{
	struct auth_check *c = arg;

	(void)e;
	check_unlink(c);
	if (resp && resp->status == 200) {
		auth_remember(c->auth);
		serve_logs(c->req, c->a);
	} else if (resp) {
		http_reply_error(c->req, 401, "Unauthorized", "the llmd API did not accept these "
		    "credentials");
	} else {
		http_reply_error(c->req, 503, "ServiceUnavailable", "cannot reach the llmd API "
		    "to check credentials");
	}
	free(c->auth);
	free(c);
}

static void
get_logs(struct http_req *req, void *arg)
{
	struct agent *a = arg;
	const char *auth = http_req_header(req, "Authorization");
	struct auth_check *c;
	struct buf url = BUF_INIT;
	const char *hdrs[3] = { "Authorization", auth, NULL };

	if (auth && auth_cached(auth)) {
		serve_logs(req, a);
		return;
	}
	c = xcalloc(1, sizeof(*c));
	c->req = req;
	c->a = a;
	c->auth = xstrdup(auth ? auth : "");
	buf_addf(&url, "%s/version", a->server);
	c->creq = http_client_request(a->hc, "GET", url.buf, auth ? hdrs : NULL, NULL, 0,
	    auth_done, c, NULL);
	buf_release(&url);
	if (c->creq == NULL) {
		http_reply_error(req, 503, "ServiceUnavailable", "cannot check credentials");
		free(c->auth);
		free(c);
		return;
	}
	c->next = checks;
	checks = c;
}

static void
serve_logs(struct http_req *req, struct agent *a)
{
	const char *ns = http_req_param(req, "ns"), *name = http_req_param(req, "pod");
	const char *cname = http_req_param(req, "container");
	const char *tail = http_req_query(req, "tail"), *fl = http_req_query(req, "follow");
	struct pod_rt *p = pods_find(a, ns, name);
	const struct proc *x = NULL;
	long n = -1;
	int fd, i;
	struct buf b = BUF_INIT;
	char chunk[16384];
	ssize_t got;

	if (p == NULL) {
		http_reply_error(req, 404, "NotFound", "pod %s/%s does not run on node %s", ns, name,
		    a->node);
		return;
	}
	for (i = 0; i < p->nprocs; i++)
		if (cname == NULL || strcmp(p->procs[i].container, cname) == 0) {
			x = &p->procs[i];
			break;
		}
	if (x == NULL || x->log_path == NULL) {
		http_reply_error(req, 404, "NotFound", "pod %s/%s has no container %s here", ns, name,
		    cname ? cname : "running");
		return;
	}
	if (tail && parse_long(tail, -1, 100000000, &n) < 0) {
		http_reply_error(req, 400, "BadRequest", "tail: expected a number");
		return;
	}
	if ((fd = open(x->log_path, O_RDONLY | O_CLOEXEC)) < 0) {
		http_reply_error(req, 404, "NotFound", "no output yet from %s", x->container);
		return;
	}
	lseek(fd, tail_offset(fd, n), SEEK_SET);
	if (fl && (strcmp(fl, "1") == 0 || strcmp(fl, "true") == 0)) {
		struct follow *f = xcalloc(1, sizeof(*f));
		struct timeval tv = { 0, 250 * 1000 };

		f->req = req;
		f->fd = fd;
		f->ev = event_new(a->base, -1, EV_PERSIST, follow_tick, f);
		f->next = follows;
		follows = f;
		http_stream_start(req, 200, "text/plain; charset=utf-8");
		http_req_on_close(req, follow_closed, f);
		follow_tick(-1, 0, f);
		event_add(f->ev, &tv);
		return;
	}
	while ((got = read(fd, chunk, sizeof(chunk))) > 0)
		buf_add(&b, chunk, (size_t)got);
	close(fd);
	http_reply_buf(req, 200, "text/plain; charset=utf-8", &b);
	buf_release(&b);
}

static void
get_health(struct http_req *req, void *arg)
{
	(void)arg;
	http_reply_data(req, 200, "text/plain", "ok\n", 3);
}

int
logs_start(struct agent *a, struct llmd_err *e)
{
	struct http_server_config cfg = { 0 };
	int port;
	struct buf b = BUF_INIT;

	cfg.shutdown_grace_ms = 1000;
	if ((a->srv = http_server_new(a->base, &cfg, e)) == NULL)
		return e->code ? e->code : -EIO;
	http_server_route(a->srv, "GET", "/healthz", get_health, a);
	http_server_route(a->srv, "GET", "/v1/logs/{ns}/{pod}", get_logs, a);
	http_server_route(a->srv, "GET", "/v1/logs/{ns}/{pod}/{container}", get_logs, a);
	if ((port = http_server_listen(a->srv, a->listen, e)) < 0)
		return port;
	buf_addf(&b, "http://%s:%d", a->address ? a->address : "127.0.0.1", port);
	free(a->agent_url);
	a->agent_url = buf_detach(&b, NULL);
	log_info("agent API on %s", a->agent_url);
	return 0;
}

void
logs_stop(struct agent *a)
{
	while (checks) {
		struct auth_check *c = checks;

		checks = c->next;
		http_client_cancel(c->creq);
		http_reply_error(c->req, 503, "ServiceUnavailable", "the agent is stopping");
		free(c->auth);
		free(c);
	}
	while (follows) {
		http_stream_end(follows->req);
		follow_free(follows);
	}
	http_server_free(a->srv);
	a->srv = NULL;
}
