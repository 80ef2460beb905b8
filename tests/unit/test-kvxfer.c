/*
 * tests/unit/test-kvxfer.c - KV-block transfer: layout compatibility (a
 * mismatch names the field), run merging and slicing, and real pulls over the
 * TCP transport between two engines in this process (non-contiguous block
 * lists, padded strides, several streams, DONE notification, bad ids), and a
 * hostile side-channel peer (silence, garbage, huge lengths, trickled bytes)
 * that is dropped without hurting the engine or its shutdown, and a hostile
 * producer trickling its answer, which a pull gives up on. Authorization: a
 * READ under a wrong token, of blocks outside the token's hold or with no
 * authorize callback is refused (-EACCES) and serves no byte; an old KVX1
 * peer is told why it is refused.
 */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rdma/kvxfer.h"

static struct kvx_layout
layout(uint64_t block_bytes)
{
	struct kvx_layout l = { .block_size = 16, .n_layers = 2, .n_kv_heads = 2, .head_dim = 8,
		.tp_rank = 0, .tp_size = 1, .block_bytes = block_bytes };
	snprintf(l.model, sizeof(l.model), "tiny");
	snprintf(l.dtype, sizeof(l.dtype), "float32");
	return l;
}

Test(kvxfer, layout_check_names_field)
{
	struct kvx_layout a = layout(4096), b = layout(4096);
	struct llmd_err e = LLMD_ERR_INIT;

	cr_assert_eq(kvx_layout_check(&a, &b, &e), 0);
	cr_assert_eq(kvx_layout_hash(&a), kvx_layout_hash(&b));
	b.block_size = 32;
	cr_assert_lt(kvx_layout_check(&a, &b, &e), 0);
	cr_assert_str_eq(e.field, "block_size");
	cr_assert_neq(kvx_layout_hash(&a), kvx_layout_hash(&b));
	b = layout(4096);
	snprintf(b.dtype, sizeof(b.dtype), "bfloat16");
	cr_assert_lt(kvx_layout_check(&a, &b, &e), 0);
	cr_assert_str_eq(e.field, "dtype");
}

Test(kvxfer, merge_runs)
{
	int32_t r[] = { 4, 5, 6, 10, 11, 2 };
	int32_t l[] = { 0, 1, 2, 3, 9, 10 };
	struct kvx_run runs[6];
	size_t n = kvx_merge_runs(r, l, 6, runs);

	cr_assert_eq(n, 4);
	cr_assert(runs[0].rfirst == 4 && runs[0].lfirst == 0 && runs[0].n == 3);
	cr_assert(runs[1].rfirst == 10 && runs[1].lfirst == 3 && runs[1].n == 1, "local not adjacent");
	cr_assert(runs[2].rfirst == 11 && runs[2].lfirst == 9 && runs[2].n == 1);
	cr_assert(runs[3].rfirst == 2 && runs[3].lfirst == 10 && runs[3].n == 1);
}

Test(kvxfer, split_runs_balances_and_caps)
{
	struct kvx_run runs[] = { { 0, 100, 10 }, { 50, 0, 3 } };
	struct kvx_run out[16];
	size_t starts[8], n;
	uint32_t total = 0;

	n = kvx_split_runs(runs, 2, 3, 0, out, 16, starts);
	cr_assert_eq(n, 3);
	for (size_t s = 0; s < n; s++) {
		uint32_t sum = 0;
		for (size_t i = starts[s]; i < starts[s + 1]; i++)
			sum += out[i].n;
		cr_assert(sum == 5 || (s == n - 1 && sum == 3), "slice %zu has %u", s, sum);
		total += sum;
	}
	cr_assert_eq(total, 13);
	/* a cut run keeps remote/local offsets in step */
	cr_assert(out[1].rfirst == 5 && out[1].lfirst == 105 && out[1].n == 5);
	n = kvx_split_runs(runs, 2, 1, 4, out, 16, starts);
	cr_assert_eq(n, 4, "max_blocks 4 over 13 blocks gives 4 slices");
}

struct pair {
	struct kvx_engine *prod, *cons;
	uint8_t *pbuf, *cbuf;
	atomic_int done;
	char done_id[64];
	/* the producer's one hold: token "tok-1" over the blocks marked here */
	bool held[64];
	atomic_int n_auth;
};

static void
on_done(void *arg, const char *id)
{
	struct pair *p = arg;
	snprintf(p->done_id, sizeof(p->done_id), "%s", id);
	atomic_fetch_add(&p->done, 1);
}

static int
authorize_hold(void *arg, const char *token, const struct kvx_run *runs, uint32_t n_runs)
{
	struct pair *p = arg;

	atomic_fetch_add(&p->n_auth, 1);
	if (strcmp(token, "tok-1") != 0)
		return -EACCES;
	for (uint32_t i = 0; i < n_runs; i++)
		for (uint32_t b = 0; b < runs[i].n; b++)
			if (runs[i].rfirst + (int32_t)b >= 64 || !p->held[runs[i].rfirst + (int32_t)b])
				return -EACCES;
	return 0;
}

static void
hold_blocks(struct pair *p, const int32_t *ids, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p->held[ids[i]] = true;
}

/* For engines whose tests are not about authorization. */
static int
authorize_any(void *arg, const char *token, const struct kvx_run *runs, uint32_t n_runs)
{
	(void)arg;
	(void)token;
	(void)runs;
	(void)n_runs;
	return 0;
}

static void
setup_pair(struct pair *p, uint32_t n_blocks, size_t bb, size_t stride, int streams)
{
	struct kvx_layout l = layout(bb);
	struct kvx_config pc = { .transport = "tcp", .listen = "127.0.0.1:0", .n_streams = streams,
		.on_done = on_done, .on_done_arg = p, .authorize = authorize_hold, .authorize_arg = p };
	struct kvx_config cc = { .transport = "auto", .listen = "127.0.0.1:0", .n_streams = streams };
	struct llmd_err e = LLMD_ERR_INIT;

	memset(p, 0, sizeof(*p));
	p->pbuf = malloc((size_t)n_blocks * stride);
	p->cbuf = calloc(n_blocks, stride);
	for (size_t i = 0; i < (size_t)n_blocks * stride; i++)
		p->pbuf[i] = (uint8_t)(i * 131 + i / 7);
	cr_assert_eq(kvx_engine_new(&pc, &l, p->pbuf, n_blocks, stride, &p->prod, &e), 0, "%s", e.msg);
	cr_assert_eq(kvx_engine_new(&cc, &l, p->cbuf, n_blocks, stride, &p->cons, &e), 0, "%s", e.msg);
	cr_assert_gt(kvx_engine_port(p->prod), 0);
}

static void
teardown_pair(struct pair *p)
{
	kvx_engine_free(p->prod);
	kvx_engine_free(p->cons);
	free(p->pbuf);
	free(p->cbuf);
}

static void
pull_and_verify(size_t bb, size_t stride, int streams)
{
	struct pair p;
	struct llmd_err e = LLMD_ERR_INIT;
	int32_t rem[] = { 7, 8, 9, 10, 3, 60, 61, 0 };
	int32_t loc[] = { 20, 21, 22, 23, 1, 2, 3, 63 };

	setup_pair(&p, 64, bb, stride, streams);
	hold_blocks(&p, rem, 8);
	cr_assert_eq(kvx_pull(p.cons, "127.0.0.1", kvx_engine_port(p.prod), "tok-1", rem, loc, 8, &e), 0,
	    "%s", e.msg);
	cr_assert_geq(atomic_load(&p.n_auth), 1, "the server asked authorize");
	for (int i = 0; i < 8; i++)
		cr_assert_eq(memcmp(p.cbuf + (size_t)loc[i] * stride, p.pbuf + (size_t)rem[i] * stride, bb), 0,
		    "block %d differs", i);
	/* untouched blocks stay zero */
	for (size_t i = 0; i < bb; i++)
		cr_assert_eq(p.cbuf[(size_t)30 * stride + i], 0);
	cr_assert_eq(kvx_send_done(p.cons, "127.0.0.1", kvx_engine_port(p.prod), "tok-1", &e), 0, "%s", e.msg);
	cr_assert_eq(atomic_load(&p.done), 1);
	cr_assert_str_eq(p.done_id, "tok-1");
	teardown_pair(&p);
}

Test(kvxfer, tcp_pull_packed_one_stream) { pull_and_verify(4096, 4096, 1); }
Test(kvxfer, tcp_pull_packed_four_streams) { pull_and_verify(1 << 20, 1 << 20, 4); }
Test(kvxfer, tcp_pull_padded_stride) { pull_and_verify(4000, 4096, 3); }

Test(kvxfer, refuses_mismatch_and_bad_ids)
{
	struct pair p;
	struct llmd_err e = LLMD_ERR_INIT;
	struct kvx_layout other = layout(4096);
	struct kvx_config cc = { .transport = "tcp", .listen = "127.0.0.1:0" };
	struct kvx_engine *odd;
	uint8_t *buf = calloc(64, 4096);
	int32_t rem[] = { 100 }, loc[] = { 1 };

	setup_pair(&p, 64, 4096, 4096, 2);
	hold_blocks(&p, loc, 1);
	other.n_layers = 3;
	cr_assert_eq(kvx_engine_new(&cc, &other, buf, 64, 4096, &odd, &e), 0);
	cr_assert_lt(kvx_pull(odd, "127.0.0.1", kvx_engine_port(p.prod), "r", loc, loc, 1, &e), 0);
	cr_assert_str_eq(e.field, "n_layers", "field: %s (%s)", e.field, e.msg);
	cr_assert(strstr(e.msg, "n_layers") != NULL, "%s", e.msg);
	cr_assert_eq(kvx_pull(p.cons, "127.0.0.1", kvx_engine_port(p.prod), "tok-1", rem, loc, 1, &e),
	    -ERANGE, "a remote block beyond the pool is refused");
	cr_assert_lt(kvx_pull(p.cons, "127.0.0.1", 1, "r", loc, loc, 1, &e), 0, "nothing listens on port 1");
	err_clear(&e);
	cr_assert_lt(kvx_engine_new(&(struct kvx_config){ .transport = "carrier-pigeon" }, &other, buf, 64,
	    4096, &odd, &e), 0);
	cr_assert_str_eq(e.field, "transport");
	kvx_engine_free(odd);
	free(buf);
	teardown_pair(&p);
}

/* ---- hostile peers on the side channel ---- */

static int
raw_connect(int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_geq(fd, 0);
	cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

/* 1 when the server closed fd (EOF or reset) within 20 s (a bound for a
 * hang, not a timing check); its replies are read and dropped. */
static int
closed_by_server(int fd)
{
	char b[4096];

	for (int i = 0; i < 200; i++) {
		struct pollfd p = { fd, POLLIN, 0 };
		if (poll(&p, 1, 100) == 1) {
			ssize_t r = recv(fd, b, sizeof(b), 0);
			if (r <= 0)
				return 1;
		}
	}
	return 0;
}

static void
send_u32(int fd, uint32_t v)
{
	uint8_t b[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };
	cr_assert_eq(send(fd, b, 4, MSG_NOSIGNAL), 4);
}

/* A valid hello for layout(4096) ("KVX2", length, JSON). */
static void
send_hello(int fd)
{
	const char *j = "{\"op\":\"hello\",\"model\":\"tiny\",\"dtype\":\"float32\",\"block_size\":16,"
	    "\"n_layers\":2,\"n_kv_heads\":2,\"head_dim\":8,\"tp_rank\":0,\"tp_size\":1,"
	    "\"block_bytes\":4096,\"engine_id\":\"test\"}";
	uint32_t status = 1;
	uint8_t st[4], lb[4];
	uint32_t len;
	char buf[8192];

	cr_assert_eq(send(fd, "KVX2", 4, MSG_NOSIGNAL), 4);
	send_u32(fd, (uint32_t)strlen(j));
	cr_assert_eq(send(fd, j, strlen(j), MSG_NOSIGNAL), (ssize_t)strlen(j));
	cr_assert_eq(recv(fd, st, 4, MSG_WAITALL), 4);
	status = (uint32_t)st[0] | (uint32_t)st[1] << 8 | (uint32_t)st[2] << 16 | (uint32_t)st[3] << 24;
	cr_assert_eq(status, 0, "the test's hello is accepted");
	cr_assert_eq(recv(fd, lb, 4, MSG_WAITALL), 4);
	len = (uint32_t)lb[0] | (uint32_t)lb[1] << 8 | (uint32_t)lb[2] << 16 | (uint32_t)lb[3] << 24;
	cr_assert_lt(len, sizeof(buf));
	cr_assert_eq(recv(fd, buf, len, MSG_WAITALL), (ssize_t)len);
}

Test(kvxfer, hostile_side_channel_peers_are_dropped)
{
	struct kvx_layout l = layout(4096);
	struct kvx_config pc = { .transport = "tcp", .listen = "127.0.0.1:0", .io_timeout_ms = 300,
		.authorize = authorize_any };
	struct kvx_config cc = { .transport = "tcp", .listen = "127.0.0.1:0" };
	struct kvx_engine *prod, *cons;
	struct llmd_err e = LLMD_ERR_INIT;
	uint8_t *pbuf = calloc(64, 4096), *cbuf = calloc(64, 4096);
	int32_t rem[] = { 5 }, loc[] = { 9 };
	int port, fd;
	const char *hello_head = "KVX2\x40\x00\x00\x00{\"op\":\"hello\",\"model\":\"tiny\",";

	memset(pbuf + 5 * 4096, 0xab, 4096);
	cr_assert_eq(kvx_engine_new(&pc, &l, pbuf, 64, 4096, &prod, &e), 0, "%s", e.msg);
	cr_assert_eq(kvx_engine_new(&cc, &l, cbuf, 64, 4096, &cons, &e), 0, "%s", e.msg);
	port = kvx_engine_port(prod);

	/* connects and never speaks: dropped after the I/O timeout */
	fd = raw_connect(port);
	cr_assert(closed_by_server(fd), "a silent peer is disconnected");
	close(fd);

	/* not our protocol */
	fd = raw_connect(port);
	cr_assert_eq(send(fd, "GET / HTTP/1.1\r\n\r\n", 18, MSG_NOSIGNAL), 18);
	cr_assert(closed_by_server(fd), "garbage is disconnected");
	close(fd);

	/* a 4 GiB hello */
	fd = raw_connect(port);
	cr_assert_eq(send(fd, "KVX2", 4, MSG_NOSIGNAL), 4);
	send_u32(fd, 0xffffffffu);
	cr_assert(closed_by_server(fd), "a huge hello length is refused");
	close(fd);

	/* slowloris: a hello trickled a byte at a time never completes */
	fd = raw_connect(port);
	int dropped = 0;
	for (size_t i = 0; i < strlen(hello_head) + 4 && !dropped; i++) {
		struct pollfd p = { fd, POLLIN, 0 };
		if (send(fd, hello_head + (i < 8 ? i : 8), 1, MSG_NOSIGNAL) != 1)
			dropped = 1;
		if (poll(&p, 1, 100) == 1)
			dropped = 1;
	}
	for (int i = 0; i < 200 && !dropped; i++) {
		struct pollfd p = { fd, POLLIN, 0 };
		if (send(fd, " ", 1, MSG_NOSIGNAL) != 1 || poll(&p, 1, 100) == 1)
			dropped = 1;
	}
	cr_assert(dropped, "a trickling peer is cut off although it keeps sending");
	close(fd);

	/* after a good hello: 4 billion runs, huge READ and DONE tokens, an unknown op */
	fd = raw_connect(port);
	send_hello(fd);
	send_u32(fd, 1);
	send_u32(fd, 0);
	send_u32(fd, 0xffffffffu);
	cr_assert(closed_by_server(fd), "n_runs beyond the limit is refused");
	close(fd);
	fd = raw_connect(port);
	send_hello(fd);
	send_u32(fd, 1);
	send_u32(fd, 1u << 30);
	cr_assert(closed_by_server(fd), "a huge READ token is refused");
	close(fd);
	fd = raw_connect(port);
	send_hello(fd);
	send_u32(fd, 2);
	send_u32(fd, 1u << 30);
	cr_assert(closed_by_server(fd), "a huge DONE id is refused");
	close(fd);
	fd = raw_connect(port);
	send_hello(fd);
	send_u32(fd, 77);
	cr_assert(closed_by_server(fd), "an unknown op is refused");
	close(fd);
	/* a READ of a block beyond the pool gets an error status, then EOF */
	fd = raw_connect(port);
	send_hello(fd);
	send_u32(fd, 1);
	send_u32(fd, 1);
	cr_assert_eq(send(fd, "r", 1, MSG_NOSIGNAL), 1);
	send_u32(fd, 1);
	send_u32(fd, 0x7fffffffu);
	send_u32(fd, 2);
	cr_assert(closed_by_server(fd), "a run beyond the pool is refused");
	close(fd);

	/* the engine still serves a real pull */
	cr_assert_eq(kvx_pull(cons, "127.0.0.1", port, "r", rem, loc, 1, &e), 0, "%s", e.msg);
	cr_assert_eq(memcmp(cbuf + 9 * 4096, pbuf + 5 * 4096, 4096), 0);

	/* and shuts down while a peer sits connected in the middle of a hello */
	fd = raw_connect(port);
	cr_assert_eq(send(fd, "KVX2", 4, MSG_NOSIGNAL), 4);
	kvx_engine_free(prod);
	cr_assert(closed_by_server(fd), "shutdown closes a connected peer");
	close(fd);
	kvx_engine_free(cons);
	free(pbuf);
	free(cbuf);
}

/* ---- a hostile producer: answers the hello a byte at a time ---- */

struct trickler {
	int lfd;
	atomic_int stop;
};

static void *
trickle_main(void *arg)
{
	struct trickler *t = arg;
	int fd = accept(t->lfd, NULL, NULL);
	uint8_t lb[8];
	char buf[4096];
	uint32_t len;

	if (fd < 0 || recv(fd, lb, 8, MSG_WAITALL) != 8)
		return NULL;
	len = (uint32_t)lb[4] | (uint32_t)lb[5] << 8 | (uint32_t)lb[6] << 16 | (uint32_t)lb[7] << 24;
	while (len > 0) {
		ssize_t r = recv(fd, buf, len < sizeof(buf) ? len : sizeof(buf), 0);
		if (r <= 0)
			break;
		len -= (uint32_t)r;
	}
	/* status 0, a 60000-byte reply, one byte every 50 ms until the puller hangs up */
	static const char head[8] = { 0, 0, 0, 0, (char)0x60, (char)0xea, 0, 0 };
	for (int i = 0; !atomic_load(&t->stop); i++) {
		if (send(fd, i < 8 ? head + i : " ", 1, MSG_NOSIGNAL) != 1)
			break;
		usleep(50000);
	}
	close(fd);
	return NULL;
}

Test(kvxfer, pull_from_a_trickling_peer_gives_up, .timeout = 30)
{
	struct kvx_layout l = layout(4096);
	struct kvx_config cc = { .transport = "tcp", .listen = "127.0.0.1:0", .io_timeout_ms = 300 };
	struct kvx_engine *cons;
	struct llmd_err e = LLMD_ERR_INIT;
	uint8_t *cbuf = calloc(8, 4096);
	int32_t rem[] = { 1 }, loc[] = { 2 };
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);
	struct trickler t = { .lfd = socket(AF_INET, SOCK_STREAM, 0) };
	pthread_t th;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(bind(t.lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	cr_assert_eq(listen(t.lfd, 4), 0);
	getsockname(t.lfd, (struct sockaddr *)&sa, &sl);
	cr_assert_eq(pthread_create(&th, NULL, trickle_main, &t), 0);
	cr_assert_eq(kvx_engine_new(&cc, &l, cbuf, 8, 4096, &cons, &e), 0, "%s", e.msg);
	/* each byte comes well within the per-call timeout, the whole answer never */
	cr_assert_lt(kvx_pull(cons, "127.0.0.1", ntohs(sa.sin_port), "r", rem, loc, 1, &e), 0,
	    "a trickled hello answer is given up on");
	atomic_store(&t.stop, 1);
	pthread_join(th, NULL);
	close(t.lfd);
	kvx_engine_free(cons);
	free(cbuf);
}

/* ---- authorization ---- */

/* The u32 status of a raw READ of n blocks from first under token
 * (after a good hello), and whether the server then hung up. */
static int32_t
raw_read_status(int port, const char *token, uint32_t first, uint32_t n, int *closed)
{
	int fd = raw_connect(port);
	uint8_t st[4];

	send_hello(fd);
	send_u32(fd, 1);
	send_u32(fd, (uint32_t)strlen(token));
	cr_assert_eq(send(fd, token, strlen(token), MSG_NOSIGNAL), (ssize_t)strlen(token));
	send_u32(fd, 1);
	send_u32(fd, first);
	send_u32(fd, n);
	cr_assert_eq(recv(fd, st, 4, MSG_WAITALL), 4);
	*closed = closed_by_server(fd);
	close(fd);
	return (int32_t)((uint32_t)st[0] | (uint32_t)st[1] << 8 | (uint32_t)st[2] << 16 |
	    (uint32_t)st[3] << 24);
}

Test(kvxfer, reads_are_authorized_by_the_holds_token)
{
	struct pair p;
	struct llmd_err e = LLMD_ERR_INIT;
	int32_t mine[] = { 7, 8, 20 }, loc[] = { 1, 2, 3 };
	int32_t other[] = { 9 }, mixed[] = { 8, 9 }, oloc[] = { 4, 5 };
	int closed = 0;

	setup_pair(&p, 64, 4096, 4096, 2);
	hold_blocks(&p, mine, 3);
	/* a wrong token: refused, nothing lands */
	cr_assert_eq(kvx_pull(p.cons, "127.0.0.1", kvx_engine_port(p.prod), "tok-2", mine, loc, 3, &e),
	    -EACCES, "%s", e.msg);
	cr_assert_str_eq(e.field, "remote_request_id");
	cr_assert_eq(p.cbuf[1 * 4096], 0, "a refused READ serves no byte");
	/* blocks outside the hold, alone or beside its own: refused */
	cr_assert_eq(kvx_pull(p.cons, "127.0.0.1", kvx_engine_port(p.prod), "tok-1", other, oloc, 1, &e),
	    -EACCES, "%s", e.msg);
	cr_assert_eq(kvx_pull(p.cons, "127.0.0.1", kvx_engine_port(p.prod), "tok-1", mixed, oloc, 2, &e),
	    -EACCES, "%s", e.msg);
	cr_assert_eq(p.cbuf[4 * 4096], 0);
	/* on the wire: -EACCES, then the server hangs up */
	cr_assert_eq(raw_read_status(kvx_engine_port(p.prod), "tok-2", 7, 1, &closed), -EACCES);
	cr_assert(closed, "a refused peer is disconnected");
	cr_assert_eq(raw_read_status(kvx_engine_port(p.prod), "", 7, 1, &closed), -EACCES, "no token");
	/* its own blocks: served */
	cr_assert_eq(kvx_pull(p.cons, "127.0.0.1", kvx_engine_port(p.prod), "tok-1", mine, loc, 3, &e), 0,
	    "%s", e.msg);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(memcmp(p.cbuf + (size_t)loc[i] * 4096, p.pbuf + (size_t)mine[i] * 4096, 4096), 0);
	/* a DONE is passed on with its token, whatever it is (the owner decides) */
	cr_assert_eq(kvx_send_done(p.cons, "127.0.0.1", kvx_engine_port(p.prod), "tok-2", &e), 0, "%s",
	    e.msg);
	cr_assert_str_eq(p.done_id, "tok-2");
	teardown_pair(&p);
}

Test(kvxfer, no_authorize_callback_serves_nothing)
{
	struct kvx_layout l = layout(4096);
	struct kvx_config c = { .transport = "tcp", .listen = "127.0.0.1:0" };
	struct kvx_engine *prod, *cons;
	struct llmd_err e = LLMD_ERR_INIT;
	uint8_t *pbuf = calloc(8, 4096), *cbuf = calloc(8, 4096);
	int32_t rem[] = { 1 }, loc[] = { 2 };

	cr_assert_eq(kvx_engine_new(&c, &l, pbuf, 8, 4096, &prod, &e), 0, "%s", e.msg);
	cr_assert_eq(kvx_engine_new(&c, &l, cbuf, 8, 4096, &cons, &e), 0, "%s", e.msg);
	cr_assert_eq(kvx_pull(cons, "127.0.0.1", kvx_engine_port(prod), "anything", rem, loc, 1, &e),
	    -EACCES, "%s", e.msg);
	kvx_engine_free(prod);
	kvx_engine_free(cons);
	free(pbuf);
	free(cbuf);
}

Test(kvxfer, an_old_peer_is_told_the_protocol_changed)
{
	struct pair p;
	const char *j = "{\"op\":\"hello\",\"model\":\"tiny\"}";
	uint8_t st[4], lb[4];
	char buf[4096] = "";
	uint32_t len;
	int fd;

	setup_pair(&p, 8, 4096, 4096, 1);
	fd = raw_connect(kvx_engine_port(p.prod));
	cr_assert_eq(send(fd, "KVX1", 4, MSG_NOSIGNAL), 4);
	send_u32(fd, (uint32_t)strlen(j));
	cr_assert_eq(send(fd, j, strlen(j), MSG_NOSIGNAL), (ssize_t)strlen(j));
	cr_assert_eq(recv(fd, st, 4, MSG_WAITALL), 4);
	cr_assert_eq((int32_t)((uint32_t)st[0] | (uint32_t)st[1] << 8 | (uint32_t)st[2] << 16 |
	    (uint32_t)st[3] << 24), -EPROTO);
	cr_assert_eq(recv(fd, lb, 4, MSG_WAITALL), 4);
	len = (uint32_t)lb[0] | (uint32_t)lb[1] << 8 | (uint32_t)lb[2] << 16 | (uint32_t)lb[3] << 24;
	cr_assert_lt(len, sizeof(buf));
	cr_assert_eq(recv(fd, buf, len, MSG_WAITALL), (ssize_t)len);
	cr_assert(strstr(buf, "KVX1 is not supported") != NULL, "%s", buf);
	cr_assert(closed_by_server(fd));
	close(fd);
	teardown_pair(&p);
}
