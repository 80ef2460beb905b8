/*
 * rdma/kvxfer.c - the transport-neutral part of KV-block transfer: layout
 * compatibility, run merging/splitting, the engine object, its side-channel
 * thread and the TCP transport (see kvxfer.h).
 *
 * Side-channel protocol (TCP, little-endian, one request per connection
 * after the hello):
 *   client -> "KVX2" u32 json_len, json {"op":"hello", layout fields}
 *   server -> u32 status (0 ok, else -errno), u32 json_len, json {layout, reason}
 *   client -> u32 op: 1 READ (u32 token_len, token, u32 n_runs, then
 *                             n_runs x {i32 first, u32 n}),
 *                     2 DONE (u32 token_len, token)
 *   server -> READ: u32 status (-ERANGE, -EACCES: then it hangs up), then
 *                   the blocks' bytes in run order;
 *             DONE: u32 status.
 * The token is the hold's (kvx_config.authorize decides); a "KVX1" peer
 * (no tokens) gets -EPROTO and a reason saying so.
 * A verbs puller adds a "verbs" object (its queue pair, rkey, pool) and the
 * hold's "token" to the hello; a verbs server checks the token names a live
 * hold and answers with its own, its queue pair connected for as long as the
 * connection lasts, and the puller READs (rdma/verbs.h); without one in the
 * reply the pull goes over TCP. See docs/rdma.md.
 */
#include "config.h"
#include "rdma/kvxfer.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <openssl/rand.h>

#include "lib/http_server.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/util.h"
#include "rdma/verbs.h"

#define KVX_MAGIC "KVX2"
#define KVX_MAGIC_V1 "KVX1"     /* before hold tokens: refused with a reason */
#define KVX_OP_READ 1
#define KVX_OP_DONE 2
#define KVX_MAX_JSON (64u << 10)
#define KVX_MAX_RUNS (1u << 20)
#define KVX_MAX_STREAMS 16
#define KVX_MAX_CONNS 256       /* side-channel connections served at once */
#define KVX_MIN_RATE (1u << 20) /* bytes/s a pull's blocks must arrive at, at least */

struct kvx_engine {
	struct kvx_config cfg;
	struct kvx_layout layout;
	uint64_t hash;
	uint8_t *base;
	uint32_t n_blocks;
	size_t stride;
	char id[40];
	char host[256];
	int port;
	int lfd;
	pthread_t thread;
	atomic_bool stop;
	atomic_int n_conns;
	/* every open side-channel socket (served and ours), so that
	 * kvx_engine_shutdown() can wake whatever blocks on one */
	pthread_mutex_t fd_lock;
	pthread_cond_t fd_cond;
	int *fds;
	size_t n_fds, cap_fds;
	bool closing;                   /* kvx_engine_shutdown() ran: no new sockets */
	enum kvx_transport transport;
	struct kvx_verbs *verbs;        /* device, PD and MR over the pool (verbs only) */
};

/* ---- socket registry ---- */

/* Registers fd; -ESHUTDOWN (fd not registered) once the engine is closing. */
static int
fd_register(struct kvx_engine *x, int fd)
{
	int rc = 0;

	pthread_mutex_lock(&x->fd_lock);
	if (x->closing) {
		rc = -ESHUTDOWN;
	} else {
		if (x->n_fds == x->cap_fds) {
			x->cap_fds = x->cap_fds ? 2 * x->cap_fds : 16;
			x->fds = xreallocarray(x->fds, x->cap_fds, sizeof(int));
		}
		x->fds[x->n_fds++] = fd;
	}
	pthread_mutex_unlock(&x->fd_lock);
	return rc;
}

/* Unregisters and closes fd. */
static void
fd_close(struct kvx_engine *x, int fd)
{
	pthread_mutex_lock(&x->fd_lock);
	for (size_t i = 0; i < x->n_fds; i++)
		if (x->fds[i] == fd) {
			x->fds[i] = x->fds[--x->n_fds];
			break;
		}
	close(fd);
	pthread_cond_broadcast(&x->fd_cond);
	pthread_mutex_unlock(&x->fd_lock);
}

/* ---- layout ---- */

static uint64_t
fnv(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

static uint64_t
fnv_u64(uint64_t h, uint64_t v)
{
	uint8_t b[8];

	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	return fnv(h, b, 8);
}

uint64_t
kvx_layout_hash(const struct kvx_layout *l)
{
	uint64_t h = 0xcbf29ce484222325ull;

	h = fnv(h, l->model, strnlen(l->model, sizeof(l->model)));
	h = fnv(h, "|", 1);
	h = fnv(h, l->dtype, strnlen(l->dtype, sizeof(l->dtype)));
	h = fnv_u64(h, l->block_size);
	h = fnv_u64(h, l->n_layers);
	h = fnv_u64(h, l->n_kv_heads);
	h = fnv_u64(h, l->head_dim);
	h = fnv_u64(h, l->tp_rank);
	h = fnv_u64(h, l->tp_size);
	h = fnv_u64(h, l->block_bytes);
	return h;
}

int
kvx_layout_check(const struct kvx_layout *a, const struct kvx_layout *b, struct llmd_err *e)
{
#define CMP_U(f) \
	if (a->f != b->f) \
		return err_set(e, -EPROTO, #f, "KV layouts differ: " #f " %llu here vs %llu at the peer", \
		    (unsigned long long)a->f, (unsigned long long)b->f)
	if (strncmp(a->model, b->model, sizeof(a->model)) != 0)
		return err_set(e, -EPROTO, "model", "KV layouts differ: model \"%s\" here vs \"%s\" at the peer",
		    a->model, b->model);
	if (strncmp(a->dtype, b->dtype, sizeof(a->dtype)) != 0)
		return err_set(e, -EPROTO, "dtype", "KV layouts differ: dtype %s here vs %s at the peer",
		    a->dtype, b->dtype);
	CMP_U(block_size);
	CMP_U(n_layers);
	CMP_U(n_kv_heads);
	CMP_U(head_dim);
	CMP_U(tp_size);
	CMP_U(tp_rank);
	CMP_U(block_bytes);
#undef CMP_U
	return 0;
}

static cJSON *
layout_json(const struct kvx_layout *l)
{
	cJSON *o = cJSON_CreateObject();
	char h[24];

	cJSON_AddStringToObject(o, "model", l->model);
	cJSON_AddStringToObject(o, "dtype", l->dtype);
	cJSON_AddNumberToObject(o, "block_size", l->block_size);
	cJSON_AddNumberToObject(o, "n_layers", l->n_layers);
	cJSON_AddNumberToObject(o, "n_kv_heads", l->n_kv_heads);
	cJSON_AddNumberToObject(o, "head_dim", l->head_dim);
	cJSON_AddNumberToObject(o, "tp_rank", l->tp_rank);
	cJSON_AddNumberToObject(o, "tp_size", l->tp_size);
	cJSON_AddNumberToObject(o, "block_bytes", (double)l->block_bytes);
	snprintf(h, sizeof(h), "%016" PRIx64, kvx_layout_hash(l));
	cJSON_AddStringToObject(o, "compat_hash", h);
	return o;
}

static int
layout_from_json(const cJSON *o, struct kvx_layout *l, struct llmd_err *e)
{
	const char *s;
	int64_t v;
	int rc;

	memset(l, 0, sizeof(*l));
	if ((rc = json_get_str(o, "model", &s, 1, e)) < 0)
		return rc;
	snprintf(l->model, sizeof(l->model), "%s", s);
	if ((rc = json_get_str(o, "dtype", &s, 1, e)) < 0)
		return rc;
	snprintf(l->dtype, sizeof(l->dtype), "%s", s);
#define GET(f) \
	if ((rc = json_get_int64_range(o, #f, 0, INT64_MAX, &v, 1, e)) < 0) \
		return rc; \
	l->f = (__typeof__(l->f))v
	GET(block_size);
	GET(n_layers);
	GET(n_kv_heads);
	GET(head_dim);
	GET(tp_rank);
	GET(tp_size);
	GET(block_bytes);
#undef GET
	return 0;
}

/* ---- runs ---- */

size_t
kvx_merge_runs(const int32_t *r, const int32_t *l, size_t n, struct kvx_run *runs)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		if (k > 0 && runs[k - 1].rfirst + (int32_t)runs[k - 1].n == r[i] &&
		    runs[k - 1].lfirst + (int32_t)runs[k - 1].n == l[i]) {
			runs[k - 1].n++;
			continue;
		}
		runs[k].rfirst = r[i];
		runs[k].lfirst = l[i];
		runs[k].n = 1;
		k++;
	}
	return k;
}

size_t
kvx_split_runs(const struct kvx_run *runs, size_t n_runs, size_t parts, uint32_t max_blocks,
    struct kvx_run *out, size_t out_cap, size_t *starts)
{
	uint64_t total = 0, per, acc = 0;
	size_t k = 0, s = 0;

	for (size_t i = 0; i < n_runs; i++)
		total += runs[i].n;
	if (total == 0 || parts == 0) {
		starts[0] = 0;
		return 0;
	}
	per = (total + parts - 1) / parts;
	if (max_blocks && per > max_blocks)
		per = max_blocks;
	starts[s++] = 0;
	for (size_t i = 0; i < n_runs; i++) {
		struct kvx_run r = runs[i];
		while (r.n > 0) {
			uint64_t room = per - acc;
			uint32_t take = (uint32_t)MIN((uint64_t)r.n, room);
			if (k == out_cap)
				return s - 1;
			out[k++] = (struct kvx_run){ r.rfirst, r.lfirst, take };
			r.rfirst += (int32_t)take;
			r.lfirst += (int32_t)take;
			r.n -= take;
			acc += take;
			if (acc == per) {
				acc = 0;
				starts[s++] = k;
			}
		}
	}
	if (acc != 0)
		starts[s++] = k;
	return s - 1;
}

/* ---- sockets ---- */

static int
set_timeouts(int fd, int64_t ms)
{
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000) };
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static int
write_all(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;

	while (n > 0) {
		ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

/*
 * Reads n bytes. deadline_ms (now_ms() clock) bounds the whole read, so a
 * peer trickling bytes cannot hold it open forever; 0: only the socket's
 * per-call timeout applies.
 */
static int
read_all(int fd, void *p, size_t n, uint64_t deadline_ms)
{
	uint8_t *b = p;

	while (n > 0) {
		if (deadline_ms != 0) {
			uint64_t now = now_ms();
			struct pollfd pf = { fd, POLLIN, 0 };
			int pr;
			if (now >= deadline_ms)
				return -ETIMEDOUT;
			pr = poll(&pf, 1, (int)MIN(deadline_ms - now, (uint64_t)INT32_MAX));
			if (pr < 0 && errno == EINTR)
				continue;
			if (pr < 0)
				return -errno;
			if (pr == 0)
				return -ETIMEDOUT;
		}
		ssize_t r = recv(fd, b, n, deadline_ms != 0 ? MSG_DONTWAIT : MSG_WAITALL);
		if (r < 0) {
			if (errno == EINTR || (deadline_ms != 0 && errno == EAGAIN))
				continue;
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		}
		if (r == 0)
			return -ECONNRESET;
		b += r;
		n -= (size_t)r;
	}
	return 0;
}

static int
write_u32(int fd, uint32_t v)
{
	uint8_t b[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };
	return write_all(fd, b, 4);
}

static void
put_u32le(struct buf *b, uint32_t v)
{
	uint8_t le[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };
	buf_add(b, le, 4);
}

static int
read_u32(int fd, uint32_t *v, uint64_t deadline_ms)
{
	uint8_t b[4] = { 0, 0, 0, 0 };
	int rc = read_all(fd, b, 4, deadline_ms);

	*v = 0;
	if (rc == 0)
		*v = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
	return rc;
}

static int
write_json(int fd, const cJSON *o)
{
	struct buf b = BUF_INIT;
	int rc;

	json_print_compact(o, &b);
	rc = write_u32(fd, (uint32_t)b.len);
	if (rc == 0)
		rc = write_all(fd, b.buf, b.len);
	buf_release(&b);
	return rc;
}

static int
read_json(int fd, cJSON **out, uint64_t deadline_ms, struct llmd_err *e)
{
	uint32_t len;
	char *s;
	int rc;

	if ((rc = read_u32(fd, &len, deadline_ms)) < 0)
		return err_set(e, rc, "", "side channel: %s", strerror(-rc));
	if (len > KVX_MAX_JSON)
		return err_set(e, -EMSGSIZE, "", "side channel: message of %u bytes is too large", len);
	s = xmalloc(len + 1);
	if ((rc = read_all(fd, s, len, deadline_ms)) < 0) {
		free(s);
		return err_set(e, rc, "", "side channel: %s", strerror(-rc));
	}
	rc = json_parse(s, len, out, e);
	free(s);
	return rc;
}

/* A registered socket connected to host:port (close it with fd_close). */
static int
connect_to(struct kvx_engine *x, const char *host, int port, int64_t timeout_ms,
    struct llmd_err *e)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL, *ai;
	char ps[16];
	int fd = -1, rc;

	snprintf(ps, sizeof(ps), "%d", port);
	if ((rc = getaddrinfo(host, ps, &hints, &res)) != 0)
		return err_set(e, -EHOSTUNREACH, "", "cannot resolve %s: %s", host, gai_strerror(rc));
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		if (fd_register(x, fd) < 0) {
			close(fd);
			freeaddrinfo(res);
			return err_set(e, -ESHUTDOWN, "", "the KV transfer engine is shutting down");
		}
		set_timeouts(fd, timeout_ms);
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		rc = errno;
		fd_close(x, fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		return err_set(e, -ECONNREFUSED, "", "cannot connect to %s:%d: %s", host, port,
		    strerror(rc ? rc : ECONNREFUSED));
	return fd;
}

/*
 * hello: send our layout (and our queue pair and the hold's token when mine
 * is set), get the peer's verdict and layout; *theirs_ok says whether the
 * reply carried the peer's queue pair (theirs).
 */
static int
handshake(struct kvx_engine *x, int fd, const struct kvx_verbs_peer *mine, const char *token,
    struct kvx_verbs_peer *theirs, bool *theirs_ok, struct llmd_err *e)
{
	cJSON *hello = layout_json(&x->layout), *reply = NULL;
	uint32_t status;
	uint64_t dl;
	int rc;

	cJSON_AddStringToObject(hello, "op", "hello");
	cJSON_AddStringToObject(hello, "engine_id", x->id);
	if (mine) {
		kvx_verbs_peer_to_json(mine, hello);
		cJSON_AddStringToObject(hello, "token", token);
	}
	rc = write_all(fd, KVX_MAGIC, 4);
	if (rc == 0)
		rc = write_json(fd, hello);
	cJSON_Delete(hello);
	if (rc < 0)
		return err_set(e, rc, "", "side channel: %s", strerror(-rc));
	/* the peer's answer arrives whole within the I/O timeout (no trickling) */
	dl = now_ms() + (uint64_t)x->cfg.io_timeout_ms;
	if ((rc = read_u32(fd, &status, dl)) < 0)
		return err_set(e, rc, "", "side channel: no answer to the hello (%s); an engine "
		    "older than protocol %s hangs up on it", strerror(-rc), KVX_MAGIC);
	if ((rc = read_json(fd, &reply, dl, e)) < 0)
		return rc;
	if (status != 0) {
		const char *why = NULL, *field = "";
		json_get_str(reply, "reason", &why, 0, NULL);
		json_get_str(reply, "field", &field, 0, NULL);
		rc = err_set(e, (int32_t)status == -EACCES ? -EACCES : -EPROTO, field,
		    "the peer refused the transfer: %s", why ? why : "?");
	} else if (theirs) {
		rc = kvx_verbs_peer_from_json(reply, theirs, theirs_ok, e);
	}
	cJSON_Delete(reply);
	return rc;
}

/* ---- server side ---- */

struct conn_arg {
	struct kvx_engine *x;
	int fd;
};

/* Reads a u32-length-prefixed token into tok (KVX_MAX_TOKEN + 1 bytes). */
static int
read_token(int fd, char *tok, uint64_t deadline_ms)
{
	uint32_t len;
	int rc;

	if ((rc = read_u32(fd, &len, deadline_ms)) < 0)
		return rc;
	if (len > KVX_MAX_TOKEN)
		return -EMSGSIZE;
	if ((rc = read_all(fd, tok, len, deadline_ms)) < 0)
		return rc;
	tok[len] = '\0';
	return 0;
}

/* "ADDR:PORT" of fd's peer, for logs. */
static void
peer_name(int fd, char *out, size_t cap)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char a[INET6_ADDRSTRLEN] = "?";
	int port = 0;

	if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0) {
		if (ss.ss_family == AF_INET6) {
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, a, sizeof(a));
			port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
		} else if (ss.ss_family == AF_INET) {
			inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, a, sizeof(a));
			port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
		}
	}
	snprintf(out, cap, "%s:%d", a, port);
}

/* Asks the owner whether token may read runs (n_runs 0: names a live hold). */
static int
authorized(struct kvx_engine *x, const char *token, const struct kvx_run *runs, uint32_t n_runs)
{
	int rc;

	if (x->cfg.authorize == NULL || token[0] == '\0')
		return -EACCES;
	rc = x->cfg.authorize(x->cfg.authorize_arg, token, runs, n_runs);
	return rc < 0 ? rc : 0;
}

static int
serve_read(struct kvx_engine *x, int fd, uint64_t deadline_ms)
{
	uint32_t n_runs, i;
	struct kvx_run *runs;
	char token[KVX_MAX_TOKEN + 1];
	uint64_t n_blocks = 0;
	int rc = 0, bad = 0;

	if ((rc = read_token(fd, token, deadline_ms)) < 0)
		return rc;
	if ((rc = read_u32(fd, &n_runs, deadline_ms)) < 0)
		return rc;
	if (n_runs > KVX_MAX_RUNS)
		return -EMSGSIZE;
	runs = xcalloc(n_runs ? n_runs : 1, sizeof(*runs));
	for (i = 0; i < n_runs && rc == 0; i++) {
		uint32_t first, n;
		if ((rc = read_u32(fd, &first, deadline_ms)) < 0 || (rc = read_u32(fd, &n, deadline_ms)) < 0)
			break;
		runs[i].rfirst = (int32_t)first;
		runs[i].n = n;
		n_blocks += n;
		if ((uint64_t)first + n > x->n_blocks)
			bad = -ERANGE;
	}
	if (rc < 0) {
		free(runs);
		return rc;
	}
	if (bad == 0 && (bad = authorized(x, token, runs, n_runs)) < 0) {
		char peer[INET6_ADDRSTRLEN + 8];
		peer_name(fd, peer, sizeof(peer));
		/* never the token: it would let a log reader take the hold */
		log_warnx("kvxfer: refusing a READ of %llu blocks in %u runs from %s: %s",
		    (unsigned long long)n_blocks, n_runs, peer,
		    token[0] ? "they are not its hold's (wrong or expired token)" : "no token");
		bad = -EACCES;
	}
	if ((rc = write_u32(fd, (uint32_t)bad)) < 0 || bad) {
		free(runs);
		return rc < 0 ? rc : bad;
	}
	/* a run of blocks is one contiguous write when blocks are packed */
	for (i = 0; i < n_runs && rc == 0; i++) {
		if (x->stride == x->layout.block_bytes) {
			rc = write_all(fd, x->base + (size_t)runs[i].rfirst * x->stride,
			    (size_t)runs[i].n * x->stride);
			continue;
		}
		for (uint32_t b = 0; b < runs[i].n && rc == 0; b++)
			rc = write_all(fd, x->base + (size_t)(runs[i].rfirst + (int32_t)b) * x->stride,
			    x->layout.block_bytes);
	}
	free(runs);
	return rc;
}

static void *
conn_main(void *arg)
{
	struct conn_arg *ca = arg;
	struct kvx_engine *x = ca->x;
	int fd = ca->fd;
	char magic[4];
	const char *token = NULL;
	cJSON *hello = NULL, *reply;
	struct kvx_layout peer;
	struct kvx_verbs_peer vpeer, vmine;
	struct kvx_verbs_qp *qp = NULL;
	bool has_verbs = false;
	struct llmd_err e = LLMD_ERR_INIT;
	uint32_t op;
	uint64_t deadline;
	int hrc;

	free(ca);
	set_timeouts(fd, x->cfg.io_timeout_ms);
	/* each message must arrive whole within the I/O timeout (slowloris) */
	deadline = now_ms() + (uint64_t)x->cfg.io_timeout_ms;
	if (read_all(fd, magic, 4, deadline) < 0 ||
	    (memcmp(magic, KVX_MAGIC, 4) != 0 && memcmp(magic, KVX_MAGIC_V1, 4) != 0))
		goto out;
	if (read_json(fd, &hello, deadline, &e) < 0)
		goto out;
	reply = layout_json(&x->layout);
	cJSON_AddStringToObject(reply, "engine_id", x->id);
	if (memcmp(magic, KVX_MAGIC_V1, 4) == 0) {
		/* an older engine: tell it, rather than misread its requests */
		hrc = err_set(&e, -EPROTO, "protocol", "side-channel protocol %s is not supported: "
		    "this engine speaks %s (READ and DONE carry the hold's token); upgrade the peer",
		    KVX_MAGIC_V1, KVX_MAGIC);
	} else if ((hrc = layout_from_json(hello, &peer, &e)) == 0 &&
	    (hrc = kvx_layout_check(&x->layout, &peer, &e)) == 0 &&
	    (hrc = kvx_verbs_peer_from_json(hello, &vpeer, &has_verbs, &e)) == 0 &&
	    has_verbs && x->verbs) {
		/* a verbs peer can READ the whole registered pool: it must hold a
		 * live hold's token (docs/rdma.md) */
		if ((hrc = json_get_str(hello, "token", &token, 1, &e)) == 0 &&
		    authorized(x, token, NULL, 0) < 0)
			hrc = err_set(&e, -EACCES, "token", "the hello's token names no live hold");
		if (hrc == 0 && (hrc = kvx_verbs_qp_new(x->verbs, &qp, &vmine, &e)) == 0)
			hrc = kvx_verbs_qp_connect(qp, &vpeer, &e);
	}
	if (hrc < 0) {
		char msg[800], peer_s[INET6_ADDRSTRLEN + 8];
		cJSON_AddStringToObject(reply, "reason", err_str(&e, msg, sizeof(msg)));
		cJSON_AddStringToObject(reply, "field", e.field);
		peer_name(fd, peer_s, sizeof(peer_s));
		log_warnx("kvxfer: refusing a peer at %s: %s", peer_s, msg);
		write_u32(fd, (uint32_t)(hrc == -EACCES ? -EACCES : -EPROTO));
		write_json(fd, reply);
		cJSON_Delete(reply);
		goto out;
	}
	/* both sides have verbs: our queue pair is ready for the peer's READs
	 * and lives as long as this connection */
	if (qp)
		kvx_verbs_peer_to_json(&vmine, reply);
	write_u32(fd, 0);
	write_json(fd, reply);
	cJSON_Delete(reply);
	for (;;) {
		deadline = now_ms() + (uint64_t)x->cfg.io_timeout_ms;
		if (atomic_load(&x->stop) || read_u32(fd, &op, deadline) < 0)
			break;
		if (op == KVX_OP_READ) {
			if (serve_read(x, fd, deadline) < 0)
				break;
		} else if (op == KVX_OP_DONE) {
			char tok[KVX_MAX_TOKEN + 1];
			if (read_token(fd, tok, deadline) < 0)
				break;
			/* the owner ignores a token that names no hold */
			if (x->cfg.on_done && tok[0] != '\0')
				x->cfg.on_done(x->cfg.on_done_arg, tok);
			write_u32(fd, 0);
		} else {
			break;
		}
	}
out:
	kvx_verbs_qp_free(qp);
	cJSON_Delete(hello);
	fd_close(x, fd);
	/* last: kvx_engine_free() may free x once this reaches 0 */
	pthread_mutex_lock(&x->fd_lock);
	atomic_fetch_sub(&x->n_conns, 1);
	pthread_cond_broadcast(&x->fd_cond);
	pthread_mutex_unlock(&x->fd_lock);
	return NULL;
}

static void *
accept_main(void *arg)
{
	struct kvx_engine *x = arg;

	while (!atomic_load(&x->stop)) {
		struct pollfd p = { x->lfd, POLLIN, 0 };
		pthread_t t;
		pthread_attr_t at;
		int fd;

		if (poll(&p, 1, 200) <= 0)
			continue;
		fd = accept4(x->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			/* out of descriptors: don't spin on a listener that stays readable */
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
				usleep(100000);
			continue;
		}
		if (atomic_load(&x->n_conns) >= KVX_MAX_CONNS || fd_register(x, fd) < 0) {
			close(fd);
			continue;
		}
		struct conn_arg *ca = xmalloc(sizeof(*ca));
		ca->x = x;
		ca->fd = fd;
		atomic_fetch_add(&x->n_conns, 1);
		pthread_attr_init(&at);
		pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
		if (pthread_create(&t, &at, conn_main, ca) != 0) {
			atomic_fetch_sub(&x->n_conns, 1);
			fd_close(x, fd);
			free(ca);
		}
		pthread_attr_destroy(&at);
	}
	return NULL;
}

/* ---- engine ---- */

static void
engine_release(struct kvx_engine *x)
{
	kvx_verbs_close(x->verbs);
	pthread_mutex_destroy(&x->fd_lock);
	pthread_cond_destroy(&x->fd_cond);
	free(x->fds);
	free(x);
}

int
kvx_engine_new(const struct kvx_config *cfg, const struct kvx_layout *layout, void *base,
    uint32_t n_blocks, size_t block_stride, struct kvx_engine **out, struct llmd_err *e)
{
	struct kvx_engine *x;
	char host[256];
	int port, one = 1;
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE }, *res = NULL;
	char ps[16];
	uint8_t rnd[12];

	struct kvx_verbs_probe probe = { .built = false };
	enum kvx_transport tr = KVX_TRANSPORT_TCP;
	int rc;

	if (cfg->transport == NULL || strcmp(cfg->transport, "tcp") != 0)
		kvx_verbs_probe(cfg->rdma_device, &probe);
	if ((rc = kvx_transport_select(cfg->transport, &probe, &tr, e)) < 0)
		return rc;
	if (block_stride < layout->block_bytes || n_blocks == 0)
		return err_set(e, -EINVAL, "block_bytes", "a block of %llu bytes does not fit a stride of %zu",
		    (unsigned long long)layout->block_bytes, block_stride);
	if (http_parse_hostport(cfg->listen ? cfg->listen : ":0", host, sizeof(host), &port) < 0)
		return err_set(e, -EINVAL, "listen", "bad side-channel address \"%s\"", cfg->listen);

	x = xcalloc(1, sizeof(*x));
	x->cfg = *cfg;
	pthread_mutex_init(&x->fd_lock, NULL);
	pthread_cond_init(&x->fd_cond, NULL);
	if (x->cfg.n_streams <= 0)
		x->cfg.n_streams = 4;
	if (x->cfg.n_streams > KVX_MAX_STREAMS)
		x->cfg.n_streams = KVX_MAX_STREAMS;
	if (x->cfg.io_timeout_ms <= 0)
		x->cfg.io_timeout_ms = 30000;
	x->layout = *layout;
	x->hash = kvx_layout_hash(layout);
	x->base = base;
	x->n_blocks = n_blocks;
	x->stride = block_stride;
	x->transport = tr;
	if (tr == KVX_TRANSPORT_VERBS &&
	    (rc = kvx_verbs_open(&probe, base, (uint64_t)n_blocks * block_stride, block_stride, -1, 0,
	    &x->verbs, e)) < 0) {
		if (cfg->transport && strcmp(cfg->transport, "verbs") == 0) {
			engine_release(x);
			return rc;
		}
		log_warnx("kvxfer: RDMA device %s unusable, using tcp: %s", probe.device,
		    e ? e->msg : "");
		x->transport = KVX_TRANSPORT_TCP;
		x->verbs = NULL;
	}
	RAND_bytes(rnd, sizeof(rnd));
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(x->id + 2 * i, 3, "%02x", rnd[i]);

	snprintf(ps, sizeof(ps), "%d", port);
	if (getaddrinfo(host[0] ? host : NULL, ps, &hints, &res) != 0 || res == NULL) {
		engine_release(x);
		return err_set(e, -EINVAL, "listen", "cannot resolve \"%s\"", host);
	}
	x->lfd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	setsockopt(x->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (x->lfd < 0 || bind(x->lfd, res->ai_addr, res->ai_addrlen) < 0 || listen(x->lfd, 128) < 0) {
		int err = errno;
		freeaddrinfo(res);
		if (x->lfd >= 0)
			close(x->lfd);
		engine_release(x);
		return err_set(e, -err, "listen", "cannot listen on %s: %s", cfg->listen, strerror(err));
	}
	freeaddrinfo(res);
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	getsockname(x->lfd, (struct sockaddr *)&ss, &sl);
	x->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
	    : ((struct sockaddr_in *)&ss)->sin_port);
	snprintf(x->host, sizeof(x->host), "%s", cfg->advertise && *cfg->advertise ? cfg->advertise
	    : (host[0] && strcmp(host, "0.0.0.0") != 0 ? host : "127.0.0.1"));
	if (pthread_create(&x->thread, NULL, accept_main, x) != 0) {
		close(x->lfd);
		engine_release(x);
		return err_set(e, -EAGAIN, "", "cannot start the side-channel thread");
	}
	*out = x;
	return 0;
}

void
kvx_engine_shutdown(struct kvx_engine *x)
{
	if (x == NULL)
		return;
	atomic_store(&x->stop, true);
	pthread_mutex_lock(&x->fd_lock);
	x->closing = true;
	for (size_t i = 0; i < x->n_fds; i++)
		shutdown(x->fds[i], SHUT_RDWR);
	pthread_mutex_unlock(&x->fd_lock);
}

void
kvx_engine_free(struct kvx_engine *x)
{
	if (x == NULL)
		return;
	kvx_engine_shutdown(x);
	pthread_join(x->thread, NULL);
	close(x->lfd);
	/* serving threads hold x: their sockets are shut down, so they end
	 * promptly; wait for every one of them (and any pull still running) */
	pthread_mutex_lock(&x->fd_lock);
	while (atomic_load(&x->n_conns) > 0 || x->n_fds > 0)
		pthread_cond_wait(&x->fd_cond, &x->fd_lock);
	pthread_mutex_unlock(&x->fd_lock);
	engine_release(x);
}

const char *kvx_engine_id(const struct kvx_engine *x) { return x->id; }
const char *
kvx_engine_transport(const struct kvx_engine *x)
{
	return x->transport == KVX_TRANSPORT_VERBS ? "verbs" : "tcp";
}

const char *kvx_engine_host(const struct kvx_engine *x) { return x->host; }
int kvx_engine_port(const struct kvx_engine *x) { return x->port; }

void
kvx_engine_metadata(const struct kvx_engine *x, struct buf *out)
{
	cJSON *o = layout_json(&x->layout);

	cJSON_AddStringToObject(o, "engine_id", x->id);
	cJSON_AddStringToObject(o, "transport", kvx_engine_transport(x));
	if (x->verbs)
		cJSON_AddStringToObject(o, "rdma_device", kvx_verbs_device(x->verbs));
	cJSON_AddStringToObject(o, "host", x->host);
	cJSON_AddNumberToObject(o, "port", x->port);
	cJSON_AddNumberToObject(o, "n_blocks", x->n_blocks);
	json_print_compact(o, out);
	cJSON_Delete(o);
}

/* ---- pull ---- */

struct stream_job {
	struct kvx_engine *x;
	const char *host;
	int port;
	const char *token;
	const struct kvx_run *runs;
	size_t n_runs;
	int rc;
	struct llmd_err e;
};

static void *
stream_main(void *arg)
{
	struct stream_job *j = arg;
	struct kvx_engine *x = j->x;
	int fd, rc;
	uint32_t status;

	fd = connect_to(x, j->host, j->port, x->cfg.io_timeout_ms, &j->e);
	if (fd < 0) {
		j->rc = fd;
		return NULL;
	}
	if ((rc = handshake(x, fd, NULL, NULL, NULL, NULL, &j->e)) < 0)
		goto out;
	/* request */
	{
		struct buf b = BUF_INIT;
		uint32_t tl = (uint32_t)strlen(j->token);
		put_u32le(&b, KVX_OP_READ);
		put_u32le(&b, tl);
		buf_add(&b, j->token, tl);
		put_u32le(&b, (uint32_t)j->n_runs);
		for (size_t i = 0; i < j->n_runs; i++) {
			put_u32le(&b, (uint32_t)j->runs[i].rfirst);
			put_u32le(&b, j->runs[i].n);
		}
		rc = write_all(fd, b.buf, b.len);
		buf_release(&b);
		if (rc < 0) {
			err_set(&j->e, rc, "", "sending the block list: %s", strerror(-rc));
			goto out;
		}
	}
	if ((rc = read_u32(fd, &status, now_ms() + (uint64_t)x->cfg.io_timeout_ms)) < 0) {
		err_set(&j->e, rc, "", "reading the status: %s", strerror(-rc));
		goto out;
	}
	if ((int32_t)status == -EACCES) {
		rc = err_set(&j->e, -EACCES, "remote_request_id", "the peer refused the READ: the "
		    "blocks are not its hold's, or the hold is gone");
		goto out;
	}
	if (status != 0) {
		rc = err_set(&j->e, -ERANGE, "remote_block_ids", "the peer has no such blocks");
		goto out;
	}
	/* the blocks must come at KVX_MIN_RATE at least: a peer trickling them
	 * cannot hold the pull (and its request) forever */
	uint64_t bytes = 0;
	for (size_t i = 0; i < j->n_runs; i++)
		bytes += (uint64_t)j->runs[i].n * x->layout.block_bytes;
	uint64_t dl = now_ms() + (uint64_t)x->cfg.io_timeout_ms + bytes / (KVX_MIN_RATE / 1000);
	for (size_t i = 0; i < j->n_runs && rc == 0; i++) {
		if (x->stride == x->layout.block_bytes) {
			rc = read_all(fd, x->base + (size_t)j->runs[i].lfirst * x->stride,
			    (size_t)j->runs[i].n * x->stride, dl);
		} else {
			for (uint32_t b = 0; b < j->runs[i].n && rc == 0; b++)
				rc = read_all(fd, x->base + (size_t)(j->runs[i].lfirst + (int32_t)b) * x->stride,
				    x->layout.block_bytes, dl);
		}
		if (rc < 0)
			err_set(&j->e, rc, "", "receiving blocks: %s", strerror(-rc));
	}
out:
	fd_close(x, fd);
	j->rc = rc;
	return NULL;
}

/*
 * Pulls runs with RDMA READs over one queue pair set up in the hello of one
 * side-channel connection (the peer's queue pair lives as long as it). 1
 * when the peer offers no verbs (the caller may fall back to TCP).
 */
static int
verbs_pull(struct kvx_engine *x, const char *host, int port, const char *token,
    const struct kvx_run *runs, size_t n_runs, struct llmd_err *e)
{
	struct kvx_verbs_qp *qp = NULL;
	struct kvx_verbs_peer mine, theirs;
	struct kvx_read_wr *wrs = NULL;
	bool ok = false;
	int64_t n_wr;
	int fd, rc;

	if ((rc = kvx_verbs_qp_new(x->verbs, &qp, &mine, e)) < 0)
		return rc;
	if ((fd = connect_to(x, host, port, x->cfg.io_timeout_ms, e)) < 0) {
		kvx_verbs_qp_free(qp);
		return fd;
	}
	if ((rc = handshake(x, fd, &mine, token, &theirs, &ok, e)) < 0)
		goto out;
	if (!ok) {
		rc = 1;
		goto out;
	}
	if ((rc = kvx_verbs_qp_connect(qp, &theirs, e)) < 0)
		goto out;
	struct kvx_read_plan plan = {
		.remote_base = theirs.addr, .remote_len = theirs.len, .remote_stride = theirs.stride,
		.rkey = theirs.rkey,
		.local_base = (uint64_t)(uintptr_t)x->base, .local_len = (uint64_t)x->n_blocks * x->stride,
		.local_stride = x->stride,
		.block_bytes = x->layout.block_bytes,
		.max_wr_bytes = KVX_VERBS_MAX_WR_BYTES,
		.signal_every = KVX_VERBS_SIGNAL_EVERY,
	};
	if ((n_wr = kvx_verbs_plan_reads(runs, n_runs, &plan, NULL, 0)) < 0) {
		rc = err_set(e, -ERANGE, "remote_block_ids", "blocks outside the peer's registered "
		    "region (%llu bytes)", (unsigned long long)theirs.len);
		goto out;
	}
	wrs = xcalloc((size_t)n_wr + 1, sizeof(*wrs));
	kvx_verbs_plan_reads(runs, n_runs, &plan, wrs, (size_t)n_wr);
	rc = kvx_verbs_qp_read(qp, wrs, (size_t)n_wr, KVX_VERBS_WINDOW, x->cfg.io_timeout_ms, e);
out:
	free(wrs);
	kvx_verbs_qp_free(qp);
	fd_close(x, fd);
	return rc;
}

int
kvx_pull(struct kvx_engine *x, const char *host, int port, const char *token,
    const int32_t *remote_ids, const int32_t *local_ids, size_t n, struct llmd_err *e)
{
	struct kvx_run *runs, *slices;
	size_t n_runs, n_slices, *starts, cap;
	struct stream_job jobs[KVX_MAX_STREAMS];
	pthread_t th[KVX_MAX_STREAMS];
	int rc = 0;

	if (n == 0)
		return 0;
	if (strlen(token) > KVX_MAX_TOKEN)
		return err_set(e, -EINVAL, "remote_request_id", "longer than %d bytes", KVX_MAX_TOKEN);
	for (size_t i = 0; i < n; i++)
		if (local_ids[i] < 0 || (uint32_t)local_ids[i] >= x->n_blocks || remote_ids[i] < 0)
			return err_set(e, -ERANGE, "block_ids", "block id out of range at %zu", i);
	runs = xcalloc(n, sizeof(*runs));
	n_runs = kvx_merge_runs(remote_ids, local_ids, n, runs);
	if (x->verbs) {
		rc = verbs_pull(x, host, port, token, runs, n_runs, e);
		if (rc == 1 && x->cfg.transport && strcmp(x->cfg.transport, "verbs") == 0)
			rc = err_set(e, -EPROTONOSUPPORT, "transport", "the peer at %s:%d offers no verbs "
			    "transport (it runs tcp)", host, port);
		if (rc != 1) {
			free(runs);
			return rc;
		}
		rc = 0;
	}
	cap = n_runs + (size_t)x->cfg.n_streams + 1;
	slices = xcalloc(cap, sizeof(*slices));
	starts = xcalloc((size_t)x->cfg.n_streams + 2, sizeof(size_t));
	/* don't open more streams than there is work for: ~1 MiB a stream at least */
	size_t parts = (size_t)x->cfg.n_streams;
	uint64_t bytes = (uint64_t)n * x->layout.block_bytes;
	if (bytes / (1u << 20) + 1 < parts)
		parts = (size_t)(bytes / (1u << 20) + 1);
	n_slices = kvx_split_runs(runs, n_runs, parts, 0, slices, cap, starts);
	for (size_t s = 0; s < n_slices; s++) {
		jobs[s] = (struct stream_job){ x, host, port, token, slices + starts[s],
			starts[s + 1] - starts[s], 0, LLMD_ERR_INIT };
		if (s + 1 == n_slices) {
			stream_main(&jobs[s]);
		} else if (pthread_create(&th[s], NULL, stream_main, &jobs[s]) != 0) {
			stream_main(&jobs[s]);
			th[s] = 0;
		}
	}
	for (size_t s = 0; s + 1 < n_slices; s++)
		if (th[s])
			pthread_join(th[s], NULL);
	for (size_t s = 0; s < n_slices; s++)
		if (jobs[s].rc < 0 && rc == 0) {
			rc = jobs[s].rc;
			if (e)
				*e = jobs[s].e;
		}
	free(runs);
	free(slices);
	free(starts);
	return rc;
}

int
kvx_send_done(struct kvx_engine *x, const char *host, int port, const char *token,
    struct llmd_err *e)
{
	int fd, rc;
	uint32_t status = 0;
	size_t len = strlen(token);

	if (len > KVX_MAX_TOKEN)
		return err_set(e, -EINVAL, "remote_request_id", "longer than %d bytes", KVX_MAX_TOKEN);
	if ((fd = connect_to(x, host, port, x->cfg.io_timeout_ms, e)) < 0)
		return fd;
	if ((rc = handshake(x, fd, NULL, NULL, NULL, NULL, e)) == 0) {
		if ((rc = write_u32(fd, KVX_OP_DONE)) == 0 && (rc = write_u32(fd, (uint32_t)len)) == 0 &&
		    (rc = write_all(fd, token, len)) == 0)
			rc = read_u32(fd, &status, now_ms() + (uint64_t)x->cfg.io_timeout_ms);
		if (rc < 0)
			err_set(e, rc, "", "sending done: %s", strerror(-rc));
	}
	fd_close(x, fd);
	return rc;
}
