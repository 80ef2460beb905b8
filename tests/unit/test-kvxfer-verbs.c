/*
 * tests/unit/test-kvxfer-verbs.c - the device-free logic of the verbs KV
 * transport: READ work-request planning from block runs (addresses, lengths,
 * rkey, the per-WR cap, signal cadence, region bounds), the hello's "verbs"
 * object round trip and malformed objects refused with the field named,
 * transport selection from fake probes, "verbs" without a usable device as
 * a clear error, and the side channel's handling of a verbs hello (refused
 * when malformed, answered without verbs by a tcp engine).
 */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "rdma/kvxfer.h"
#include "rdma/verbs.h"

static struct kvx_layout
layout(uint64_t block_bytes)
{
	struct kvx_layout l = { .block_size = 16, .n_layers = 2, .n_kv_heads = 2, .head_dim = 8,
		.tp_rank = 0, .tp_size = 1, .block_bytes = block_bytes };
	snprintf(l.model, sizeof(l.model), "tiny");
	snprintf(l.dtype, sizeof(l.dtype), "float32");
	return l;
}

static struct kvx_read_plan
plan(uint64_t block_bytes, uint64_t rstride, uint64_t lstride, uint64_t n_blocks)
{
	return (struct kvx_read_plan){
		.remote_base = 0x10000000, .remote_len = n_blocks * rstride, .remote_stride = rstride,
		.rkey = 0xabcd,
		.local_base = 0x70000000, .local_len = n_blocks * lstride, .local_stride = lstride,
		.block_bytes = block_bytes, .max_wr_bytes = 1u << 20, .signal_every = 4,
	};
}

Test(verbs_plan, packed_runs_cut_at_the_cap_on_block_boundaries)
{
	/* 384 KiB blocks: 2 fit a 1 MiB WR; a run of 5 is 2+2+1 */
	struct kvx_run runs[] = { { 10, 3, 5 }, { 40, 20, 1 } };
	struct kvx_read_plan p = plan(384 << 10, 384 << 10, 384 << 10, 64);
	struct kvx_read_wr w[8];
	int64_t n = kvx_verbs_plan_reads(runs, 2, &p, NULL, 0);

	cr_assert_eq(n, 4);
	cr_assert_eq(kvx_verbs_plan_reads(runs, 2, &p, w, 8), 4);
	cr_assert_eq(w[0].remote_addr, 0x10000000 + 10ull * (384 << 10));
	cr_assert_eq(w[0].local_addr, 0x70000000 + 3ull * (384 << 10));
	cr_assert_eq(w[0].len, 2u * (384 << 10));
	cr_assert_eq(w[1].remote_addr, w[0].remote_addr + w[0].len);
	cr_assert_eq(w[1].local_addr, w[0].local_addr + w[0].len);
	cr_assert_eq(w[1].len, 2u * (384 << 10));
	cr_assert_eq(w[2].len, 384u << 10);
	cr_assert_eq(w[3].remote_addr, 0x10000000 + 40ull * (384 << 10));
	cr_assert_eq(w[3].local_addr, 0x70000000 + 20ull * (384 << 10));
	for (int i = 0; i < 4; i++) {
		cr_assert_eq(w[i].rkey, 0xabcd);
		cr_assert_leq(w[i].len, 1u << 20);
	}
}

Test(verbs_plan, padded_strides_read_block_by_block)
{
	/* remote packed, local padded: no multi-block extent */
	struct kvx_run runs[] = { { 2, 5, 3 } };
	struct kvx_read_plan p = plan(4096, 4096, 8192, 16);
	struct kvx_read_wr w[4];

	cr_assert_eq(kvx_verbs_plan_reads(runs, 1, &p, w, 4), 3);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(w[i].remote_addr, 0x10000000 + (2ull + i) * 4096);
		cr_assert_eq(w[i].local_addr, 0x70000000 + (5ull + i) * 8192);
		cr_assert_eq(w[i].len, 4096);
	}
}

Test(verbs_plan, a_block_over_the_cap_is_split)
{
	/* 2.5 MiB blocks: 1 MiB + 1 MiB + 0.5 MiB */
	uint64_t bb = 5ull << 19;
	struct kvx_run runs[] = { { 1, 0, 1 } };
	struct kvx_read_plan p = plan(bb, bb, bb, 4);
	struct kvx_read_wr w[4];

	cr_assert_eq(kvx_verbs_plan_reads(runs, 1, &p, w, 4), 3);
	cr_assert_eq(w[0].len, 1u << 20);
	cr_assert_eq(w[1].remote_addr, 0x10000000 + bb + (1u << 20));
	cr_assert_eq(w[2].len, 1u << 19);
	cr_assert_eq(w[2].local_addr, 0x70000000 + (2u << 20));
}

Test(verbs_plan, signal_cadence_every_kth_and_the_last)
{
	struct kvx_run runs[] = { { 0, 0, 10 } };
	struct kvx_read_plan p = plan(4096, 4096, 8192, 16);   /* 10 WRs */
	struct kvx_read_wr w[10];

	cr_assert_eq(kvx_verbs_plan_reads(runs, 1, &p, w, 10), 10);
	for (int i = 0; i < 10; i++)
		cr_assert_eq(w[i].signaled, i == 3 || i == 7 || i == 9, "WR %d", i);
	/* the default cadence keeps a signaled WR in every full window */
	cr_assert_geq(KVX_VERBS_WINDOW, KVX_VERBS_SIGNAL_EVERY);
}

Test(verbs_plan, blocks_outside_a_region_are_refused)
{
	struct kvx_run past_remote[] = { { 15, 0, 2 } };
	struct kvx_run past_local[] = { { 0, 16, 1 } };
	struct kvx_run negative[] = { { -1, 0, 1 } };
	struct kvx_read_plan p = plan(4096, 4096, 4096, 16);

	cr_assert_eq(kvx_verbs_plan_reads(past_remote, 1, &p, NULL, 0), -ERANGE);
	cr_assert_eq(kvx_verbs_plan_reads(past_local, 1, &p, NULL, 0), -ERANGE);
	cr_assert_eq(kvx_verbs_plan_reads(negative, 1, &p, NULL, 0), -ERANGE);
	p.remote_stride = 1024;    /* smaller than a block */
	cr_assert_eq(kvx_verbs_plan_reads(past_local, 1, &p, NULL, 0), -EINVAL);
}

/* ---- hello ---- */

static struct kvx_verbs_peer
sample_peer(void)
{
	struct kvx_verbs_peer p = { .qpn = 0x12345, .psn = 0xfedcba, .lid = 7, .mtu = 4096,
		.rkey = 0xdeadbeef, .addr = 0x7f12345678abcdefull, .len = 1ull << 40, .stride = 65536 };
	for (int i = 0; i < 16; i++)
		p.gid[i] = (uint8_t)(0xf0 + i);
	return p;
}

Test(verbs_hello, round_trip_through_json_text)
{
	struct kvx_verbs_peer a = sample_peer(), b;
	cJSON *o = cJSON_CreateObject(), *back;
	struct llmd_err e = LLMD_ERR_INIT;
	bool present = false;
	char *txt;

	kvx_verbs_peer_to_json(&a, o);
	txt = cJSON_PrintUnformatted(o);
	back = cJSON_Parse(txt);
	cr_assert_eq(kvx_verbs_peer_from_json(back, &b, &present, &e), 0, "%s", e.msg);
	cr_assert(present);
	cr_assert_eq(memcmp(&a, &b, sizeof(a)), 0);
	/* 64-bit addresses travel as hex, not as doubles */
	cr_assert_str_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(back, "verbs"), "addr")->valuestring,
	    "7f12345678abcdef");
	free(txt);
	cJSON_Delete(o);
	cJSON_Delete(back);
}

Test(verbs_hello, absent_is_not_an_error)
{
	cJSON *o = cJSON_Parse("{\"op\":\"hello\"}");
	struct kvx_verbs_peer p;
	bool present = true;

	cr_assert_eq(kvx_verbs_peer_from_json(o, &p, &present, NULL), 0);
	cr_assert_not(present);
	cJSON_Delete(o);
}

/* Replaces verbs.key by the JSON value v and checks it is refused naming field. */
static void
refused(const char *key, const char *v, const char *field)
{
	struct kvx_verbs_peer a = sample_peer(), b;
	cJSON *o = cJSON_CreateObject();
	struct llmd_err e = LLMD_ERR_INIT;
	bool present = true;

	kvx_verbs_peer_to_json(&a, o);
	cJSON *vo = cJSON_GetObjectItem(o, "verbs");
	if (v)
		cJSON_ReplaceItemInObject(vo, key, cJSON_Parse(v));
	else
		cJSON_DeleteItemFromObject(vo, key);
	cr_assert_lt(kvx_verbs_peer_from_json(o, &b, &present, &e), 0, "%s=%s accepted", key, v);
	cr_assert_not(present);
	cr_assert_str_eq(e.field, field, "%s=%s: field %s (%s)", key, v, e.field, e.msg);
	cJSON_Delete(o);
}

Test(verbs_hello, malformed_objects_are_refused_naming_the_field)
{
	refused("qpn", "16777216", "verbs.qpn");        /* over 24 bits */
	refused("qpn", "-1", "verbs.qpn");
	refused("psn", "\"1\"", "verbs.psn");
	refused("lid", "70000", "verbs.lid");
	refused("mtu", "1500", "verbs.mtu");
	refused("rkey", "1.5", "verbs.rkey");
	refused("gid", "\"f0f1\"", "verbs.gid");
	refused("gid", "\"zzf1f2f3f4f5f6f7f8f9fafbfcfdfeff\"", "verbs.gid");
	refused("addr", "\"12345678123456789\"", "verbs.addr");  /* 17 digits */
	refused("addr", "\"0x10\"", "verbs.addr");
	refused("len", "\"0\"", "verbs.len");
	refused("stride", NULL, "verbs.stride");

	cJSON *o = cJSON_Parse("{\"verbs\":[1]}");
	struct kvx_verbs_peer p;
	struct llmd_err e = LLMD_ERR_INIT;
	bool present;
	cr_assert_lt(kvx_verbs_peer_from_json(o, &p, &present, &e), 0);
	cr_assert_str_eq(e.field, "verbs");
	cJSON_Delete(o);
}

/* ---- transport selection ---- */

Test(verbs_select, from_fake_probes)
{
	struct kvx_verbs_probe none = { .built = true, .n_devices = 0 };
	struct kvx_verbs_probe down = { .built = true, .n_devices = 1, .active = false,
		.device = "mlx5_0" };
	struct kvx_verbs_probe up = { .built = true, .n_devices = 2, .active = true,
		.device = "mlx5_1", .port = 1 };
	struct kvx_verbs_probe unbuilt = { .built = false };
	struct llmd_err e = LLMD_ERR_INIT;
	enum kvx_transport t;

	cr_assert_eq(kvx_transport_select("auto", &up, &t, &e), 0);
	cr_assert_eq(t, KVX_TRANSPORT_VERBS);
	cr_assert_eq(kvx_transport_select(NULL, &up, &t, &e), 0);
	cr_assert_eq(t, KVX_TRANSPORT_VERBS);
	cr_assert_eq(kvx_transport_select("auto", &down, &t, &e), 0);
	cr_assert_eq(t, KVX_TRANSPORT_TCP);
	cr_assert_eq(kvx_transport_select("auto", &none, &t, &e), 0);
	cr_assert_eq(t, KVX_TRANSPORT_TCP);
	cr_assert_eq(kvx_transport_select("tcp", &up, &t, &e), 0);
	cr_assert_eq(t, KVX_TRANSPORT_TCP);
	cr_assert_eq(kvx_transport_select("verbs", &up, &t, &e), 0);
	cr_assert_eq(t, KVX_TRANSPORT_VERBS);

	cr_assert_eq(kvx_transport_select("verbs", &none, &t, &e), -ENOTSUP);
	cr_assert_str_eq(e.field, "transport");
	cr_assert(strstr(e.msg, "none was found"), "%s", e.msg);
	cr_assert_eq(kvx_transport_select("verbs", &down, &t, &e), -ENOTSUP);
	cr_assert(strstr(e.msg, "mlx5_0 has none"), "%s", e.msg);
	cr_assert(strstr(e.msg, "active port"), "%s", e.msg);
	cr_assert_eq(kvx_transport_select("verbs", &unbuilt, &t, &e), -ENOTSUP);
	cr_assert(strstr(e.msg, "without libibverbs"), "%s", e.msg);
	cr_assert_eq(kvx_transport_select("rdma", &up, &t, &e), -EINVAL);
	cr_assert(strstr(e.msg, "unknown transport"), "%s", e.msg);
}

/* Is an RDMA device with an active port usable here? */
static bool
have_device(void)
{
	struct kvx_verbs_probe p;

	kvx_verbs_probe(NULL, &p);
	return p.built && p.active;
}

Test(verbs_engine, verbs_without_a_device_is_a_clear_error)
{
	struct kvx_layout l = layout(1024);
	uint8_t *pool = calloc(4, 1024);
	struct kvx_config c = { .transport = "verbs", .listen = "127.0.0.1:0" };
	struct kvx_engine *x = NULL;
	struct llmd_err e = LLMD_ERR_INIT;

	if (have_device()) {
		free(pool);
		cr_skip_test("an RDMA device with an active port is present");
	}
	cr_assert_eq(kvx_engine_new(&c, &l, pool, 4, 1024, &x, &e), -ENOTSUP);
	cr_assert_null(x);
	cr_assert_str_eq(e.field, "transport");
	cr_assert(strstr(e.msg, "verbs transport") && strstr(e.msg, "\"tcp\""), "%s", e.msg);

	/* auto falls back to tcp, and says so */
	c.transport = "auto";
	cr_assert_eq(kvx_engine_new(&c, &l, pool, 4, 1024, &x, &e), 0, "%s", e.msg);
	cr_assert_str_eq(kvx_engine_transport(x), "tcp");
	struct buf m = BUF_INIT;
	kvx_engine_metadata(x, &m);
	cJSON *o = cJSON_ParseWithLength(m.buf, m.len);
	cr_assert_str_eq(cJSON_GetObjectItem(o, "transport")->valuestring, "tcp");
	cJSON_Delete(o);
	buf_release(&m);
	kvx_engine_free(x);
	free(pool);
}

/* Every token may read everything (authorization is test-kvxfer's). */
static int
authorize_any(void *arg, const char *token, const struct kvx_run *runs, uint32_t n_runs)
{
	(void)arg;
	(void)token;
	(void)runs;
	(void)n_runs;
	return 0;
}

Test(verbs_engine, auto_engines_pull_over_what_they_chose)
{
	struct kvx_layout l = layout(256);
	uint8_t *a = calloc(8, 256), *b = calloc(8, 256);
	struct kvx_config c = { .transport = "auto", .listen = "127.0.0.1:0",
		.authorize = authorize_any };
	struct kvx_engine *xa = NULL, *xb = NULL;
	struct llmd_err e = LLMD_ERR_INIT;
	int32_t r[] = { 1, 2, 6 }, lo[] = { 0, 1, 7 };

	for (int i = 0; i < 8 * 256; i++)
		a[i] = (uint8_t)(i * 7 + 3);
	cr_assert_eq(kvx_engine_new(&c, &l, a, 8, 256, &xa, &e), 0, "%s", e.msg);
	cr_assert_eq(kvx_engine_new(&c, &l, b, 8, 256, &xb, &e), 0, "%s", e.msg);
	cr_assert_str_eq(kvx_engine_transport(xa), have_device() ? "verbs" : "tcp");
	cr_assert_eq(kvx_pull(xb, "127.0.0.1", kvx_engine_port(xa), "req", r, lo, 3, &e), 0, "%s",
	    e.msg);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(memcmp(b + lo[i] * 256, a + r[i] * 256, 256), 0, "block %d", r[i]);
	cr_assert_eq(b[2 * 256], 0, "an unpulled block stays untouched");
	kvx_engine_free(xb);
	kvx_engine_free(xa);
	free(a);
	free(b);
}

/* ---- the side channel with a verbs hello ---- */

static void
send_all(int fd, const void *p, size_t n)
{
	cr_assert_eq(send(fd, p, n, MSG_NOSIGNAL), (ssize_t)n);
}

static void
recv_all(int fd, void *p, size_t n)
{
	cr_assert_eq(recv(fd, p, n, MSG_WAITALL), (ssize_t)n);
}

/* Sends a hello (layout of l, verbs_json as its verbs object); returns the reply. */
static cJSON *
raw_hello(int port, const struct kvx_layout *l, const char *verbs_json, uint32_t *status)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	cJSON *h = cJSON_CreateObject(), *reply;
	uint32_t len;
	char *txt, *rbuf;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	cJSON_AddStringToObject(h, "op", "hello");
	cJSON_AddStringToObject(h, "model", l->model);
	cJSON_AddStringToObject(h, "dtype", l->dtype);
	cJSON_AddNumberToObject(h, "block_size", l->block_size);
	cJSON_AddNumberToObject(h, "n_layers", l->n_layers);
	cJSON_AddNumberToObject(h, "n_kv_heads", l->n_kv_heads);
	cJSON_AddNumberToObject(h, "head_dim", l->head_dim);
	cJSON_AddNumberToObject(h, "tp_rank", l->tp_rank);
	cJSON_AddNumberToObject(h, "tp_size", l->tp_size);
	cJSON_AddNumberToObject(h, "block_bytes", (double)l->block_bytes);
	cJSON_AddItemToObject(h, "verbs", cJSON_Parse(verbs_json));
	txt = cJSON_PrintUnformatted(h);
	len = (uint32_t)strlen(txt);    /* little-endian host */
	send_all(fd, "KVX2", 4);
	send_all(fd, &len, 4);
	send_all(fd, txt, len);
	recv_all(fd, status, 4);
	recv_all(fd, &len, 4);
	cr_assert_lt(len, 65536);
	rbuf = calloc(1, len + 1);
	recv_all(fd, rbuf, len);
	reply = cJSON_Parse(rbuf);
	free(rbuf);
	free(txt);
	cJSON_Delete(h);
	close(fd);
	return reply;
}

Test(verbs_engine, side_channel_refuses_a_malformed_verbs_hello)
{
	struct kvx_layout l = layout(1024);
	uint8_t *pool = calloc(4, 1024);
	struct kvx_config c = { .transport = "tcp", .listen = "127.0.0.1:0", .io_timeout_ms = 2000 };
	struct kvx_engine *x = NULL;
	struct llmd_err e = LLMD_ERR_INIT;
	uint32_t status = 0;
	cJSON *r;

	cr_assert_eq(kvx_engine_new(&c, &l, pool, 4, 1024, &x, &e), 0, "%s", e.msg);
	r = raw_hello(kvx_engine_port(x), &l, "{\"qpn\":\"x\"}", &status);
	cr_assert_eq((int32_t)status, -EPROTO);
	cr_assert_str_eq(cJSON_GetObjectItem(r, "field")->valuestring, "verbs.qpn");
	cJSON_Delete(r);

	/* a well-formed one is accepted, and a tcp engine answers without verbs,
	 * so the puller falls back to TCP */
	struct kvx_verbs_peer p = sample_peer();
	cJSON *o = cJSON_CreateObject();
	kvx_verbs_peer_to_json(&p, o);
	char *vj = cJSON_PrintUnformatted(cJSON_GetObjectItem(o, "verbs"));
	r = raw_hello(kvx_engine_port(x), &l, vj, &status);
	cr_assert_eq(status, 0);
	cr_assert_null(cJSON_GetObjectItem(r, "verbs"));
	cr_assert_str_eq(cJSON_GetObjectItem(r, "model")->valuestring, "tiny");
	cJSON_Delete(r);
	free(vj);
	cJSON_Delete(o);
	kvx_engine_free(x);
	free(pool);
}
