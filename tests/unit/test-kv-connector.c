/*
 * tests/unit/test-kv-connector.c - the P/D connector's lifetime: freeing it
 * while a DONE (or pull) thread still talks to an unresponsive producer must
 * wait for that thread (which fails fast) instead of leaving it with a freed
 * connector (DONEs not yet sent are dropped: the producer's timeout frees
 * those blocks); held blocks are released by a DONE from the decoder.
 * Holds are named by random tokens (32 hex digits, one per hold) carried in
 * remote_request_id: the side channel serves a hold's own blocks under its
 * token only, and a DONE with another token frees nothing.
 */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "engine/kv-connector.h"
#include "engine/scheduler.h"
#include "lib/metrics.h"

static const char *const labels[] = { "m", "0" };

static struct kv_connector *
consumer_sim(struct scheduler **sched, struct metrics **m, double sim_ms_per_token)
{
	struct sched_config sc = { .n_blocks = 64, .block_size = 16, .max_model_len = 512 };
	struct kv_transfer_config c;
	struct kvx_layout l = { .model = "m", .dtype = "simulated", .block_size = 16, .n_layers = 1,
		.n_kv_heads = 1, .head_dim = 4, .tp_size = 1, .block_bytes = 64 };
	struct llmd_err e = LLMD_ERR_INIT;
	struct kv_connector *kc = NULL;

	cr_assert_eq(kv_transfer_config_parse("{\"kv_connector\":\"LlmdConnector\",\"kv_role\":\"kv_both\","
	    "\"kv_connector_extra_config\":{\"side_channel\":\"127.0.0.1:0\"}}", &c, &e), 0, "%s", e.msg);
	cr_assert_eq(scheduler_new(&sc, sched, &e), 0, "%s", e.msg);
	*m = metrics_new();
	cr_assert_eq(kv_connector_new(&c, &l, NULL, 1, 64, *sched, *m, labels, sim_ms_per_token, &kc,
	    &e), 0, "%s", e.msg);
	return kc;
}

static struct kv_connector *
consumer(struct scheduler **sched, struct metrics **m)
{
	return consumer_sim(sched, m, 0.0);
}

/* A producer that accepts and never answers. */
static int
silent_listener(int *port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	cr_assert_eq(listen(fd, 8), 0);
	getsockname(fd, (struct sockaddr *)&sa, &sl);
	*port = ntohs(sa.sin_port);
	return fd;
}

Test(kv_connector, free_waits_for_a_done_thread_stuck_on_a_silent_peer)
{
	struct scheduler *sched;
	struct metrics *m;
	struct kv_connector *kc = consumer(&sched, &m);
	struct kv_remote rem = { .valid = true, .request_id = "r1", .host = "127.0.0.1" };
	int lfd = silent_listener(&rem.port), cfd;
	char magic[4];

	kv_connector_notify(kc, &rem);
	/* the DONE thread connected and wrote its hello: it now waits for our answer */
	cfd = accept(lfd, NULL, NULL);
	cr_assert_geq(cfd, 0);
	cr_assert_eq(recv(cfd, magic, 4, MSG_WAITALL), 4);
	cr_assert_eq(memcmp(magic, "KVX2", 4), 0);
	/* must end the thread (its socket shut down) before freeing what it uses */
	kv_connector_free(kc);
	/* had the thread survived, waking it now would touch the freed connector */
	close(cfd);
	usleep(100000);
	close(lfd);
	scheduler_free(sched);
	metrics_free(m);
}

Test(kv_connector, free_waits_for_a_pull_thread)
{
	struct scheduler *sched;
	struct metrics *m;
	/* simulated pull: 2 ms a token, 100 tokens */
	struct kv_connector *kc = consumer_sim(&sched, &m, 2.0);
	int32_t table[] = { 1, 2 }, rids[] = { 7, 8 };
	struct sched_kv_load ld = { .req_id = 99, .block_table = table, .n_blocks = 2, .n_tokens = 100 };
	struct kv_remote rem = { .valid = true, .request_id = "r2", .host = "127.0.0.1", .port = 1,
		.block_ids = rids, .n_blocks = 2 };

	kv_connector_start_load(kc, &ld, &rem, 16);
	/* the pull thread still sleeps; it then uses the connector's scheduler
	 * and metrics, which must still be there */
	kv_connector_free(kc);
	scheduler_free(sched);
	metrics_free(m);
}

/* too few remote blocks: recompute, and DONE goes out on a thread, not on the
 * caller's (the compute thread) which would wait on the peer */
Test(kv_connector, start_load_never_blocks_on_the_peer, .timeout = 20)
{
	struct scheduler *sched;
	struct metrics *m;
	struct kv_connector *kc = consumer(&sched, &m);
	int32_t table[] = { 1, 2, 3 }, rids[] = { 7 };
	struct sched_kv_load ld = { .req_id = 5, .block_table = table, .n_blocks = 3, .n_tokens = 40 };
	struct kv_remote rem = { .valid = true, .request_id = "r3", .host = "127.0.0.1",
		.block_ids = rids, .n_blocks = 1 };
	int lfd = silent_listener(&rem.port), cfd;
	char magic[4];

	kv_connector_start_load(kc, &ld, &rem, 16);
	/* back at once: the DONE thread now waits for our (never sent) answer */
	cfd = accept(lfd, NULL, NULL);
	cr_assert_geq(cfd, 0);
	cr_assert_eq(recv(cfd, magic, 4, MSG_WAITALL), 4);
	kv_connector_free(kc);
	close(cfd);
	close(lfd);
	scheduler_free(sched);
	metrics_free(m);
}

Test(kv_connector, done_from_the_decoder_releases_held_blocks)
{
	struct scheduler *sched;
	struct metrics *m;
	struct kv_connector *kc = consumer(&sched, &m), *dec;
	struct scheduler *sched2;
	struct metrics *m2;
	int32_t *blocks = malloc(2 * sizeof(int32_t));
	struct kv_remote rem = { .valid = true };
	struct llmd_err e = LLMD_ERR_INIT;
	cJSON *p;

	blocks[0] = 3;
	blocks[1] = 4;
	p = kv_connector_hold(kc, "cmpl-abc", blocks, 2);
	cr_assert_eq(kv_connector_n_held(kc), 1);
	cr_assert_eq(kv_remote_parse(p, &rem, &e), 1, "%s", e.msg);
	cr_assert_eq(rem.n_blocks, 2);
	cr_assert_str_neq(rem.request_id, "cmpl-abc", "the token, not the client's request id");
	/* another engine sends DONE (on its own thread) */
	dec = consumer(&sched2, &m2);
	kv_connector_notify(dec, &rem);
	for (int i = 0; i < 200 && kv_connector_n_held(kc) > 0; i++)
		usleep(10000);
	cr_assert_eq(kv_connector_n_held(kc), 0, "DONE released the hold");
	kv_connector_free(dec);
	kv_remote_release(&rem);
	cJSON_Delete(p);
	kv_connector_free(kc);
	scheduler_free(sched);
	scheduler_free(sched2);
	metrics_free(m);
	metrics_free(m2);
}

/* A producer with a real 16-block pool of 64-byte blocks (block b filled with b+1). */
static struct kv_connector *
producer_pool(struct scheduler **sched, struct metrics **m, uint8_t *pool, struct kvx_layout *l)
{
	struct sched_config sc = { .n_blocks = 16, .block_size = 16, .max_model_len = 256 };
	struct kv_transfer_config c;
	struct llmd_err e = LLMD_ERR_INIT;
	struct kv_connector *kc = NULL;

	*l = (struct kvx_layout){ .model = "m", .dtype = "float32", .block_size = 16, .n_layers = 1,
		.n_kv_heads = 1, .head_dim = 1, .tp_size = 1, .block_bytes = 64 };
	for (int b = 0; b < 16; b++)
		memset(pool + b * 64, b + 1, 64);
	cr_assert_eq(kv_transfer_config_parse("{\"kv_connector\":\"LlmdConnector\",\"kv_role\":\"kv_producer\","
	    "\"kv_connector_extra_config\":{\"side_channel\":\"127.0.0.1:0\",\"transport\":\"tcp\"}}", &c,
	    &e), 0, "%s", e.msg);
	cr_assert_eq(scheduler_new(&sc, sched, &e), 0, "%s", e.msg);
	*m = metrics_new();
	cr_assert_eq(kv_connector_new(&c, l, pool, 16, 64, *sched, *m, labels, 0.0, &kc, &e), 0, "%s",
	    e.msg);
	return kc;
}

static int32_t *
ids2(int32_t a, int32_t b)
{
	int32_t *p = malloc(2 * sizeof(int32_t));
	p[0] = a;
	p[1] = b;
	return p;
}

Test(kv_connector, holds_authorize_reads_and_done_by_token)
{
	struct scheduler *sched;
	struct metrics *m;
	struct kvx_layout l;
	uint8_t pool[16 * 64], dst[16 * 64];
	struct kv_connector *kc = producer_pool(&sched, &m, pool, &l);
	struct kvx_config cc = { .transport = "tcp", .listen = "127.0.0.1:0" };
	struct kvx_engine *puller;
	struct kv_remote r1 = { .valid = false }, r2 = { .valid = false };
	struct llmd_err e = LLMD_ERR_INIT;
	cJSON *p1, *p2;
	int32_t loc[] = { 0, 1 }, other[] = { 7 }, mixed[] = { 3, 7 }, outside[] = { 9 };
	char wrong[KV_HOLD_TOKEN_LEN + 1];

	memset(dst, 0, sizeof(dst));
	cr_assert_eq(kvx_engine_new(&cc, &l, dst, 16, 64, &puller, &e), 0, "%s", e.msg);
	/* two clients with the same X-Request-Id get different tokens */
	p1 = kv_connector_hold(kc, "same-id", ids2(3, 4), 2);
	p2 = kv_connector_hold(kc, "same-id", ids2(7, 8), 2);
	cr_assert_not_null(p1);
	cr_assert_not_null(p2);
	cr_assert_eq(kv_remote_parse(p1, &r1, &e), 1, "%s", e.msg);
	cr_assert_eq(kv_remote_parse(p2, &r2, &e), 1, "%s", e.msg);
	cr_assert_eq(strlen(r1.request_id), KV_HOLD_TOKEN_LEN);
	for (int i = 0; i < KV_HOLD_TOKEN_LEN; i++)
		cr_assert(isxdigit((unsigned char)r1.request_id[i]) && !isupper((unsigned char)r1.request_id[i]),
		    "%s", r1.request_id);
	cr_assert_str_neq(r1.request_id, r2.request_id, "a token per hold");
	cr_assert_eq(kv_connector_n_held(kc), 2);

	/* hold 1's token reads hold 1's blocks */
	cr_assert_eq(kvx_pull(puller, r1.host, r1.port, r1.request_id, r1.block_ids, loc, 2, &e), 0, "%s",
	    e.msg);
	cr_assert(dst[0] == 4 && dst[63] == 4 && dst[64] == 5 && dst[127] == 5, "blocks 3, 4 landed");
	/* not hold 2's, not a mix, not a block nobody holds */
	memset(dst, 0, sizeof(dst));
	cr_assert_eq(kvx_pull(puller, r1.host, r1.port, r1.request_id, other, loc, 1, &e), -EACCES);
	cr_assert_eq(kvx_pull(puller, r1.host, r1.port, r1.request_id, mixed, loc, 2, &e), -EACCES);
	cr_assert_eq(kvx_pull(puller, r1.host, r1.port, r1.request_id, outside, loc, 1, &e), -EACCES);
	/* the client's request id, or a token one digit off, reads nothing */
	cr_assert_eq(kvx_pull(puller, r1.host, r1.port, "same-id", r1.block_ids, loc, 2, &e), -EACCES);
	snprintf(wrong, sizeof(wrong), "%s", r1.request_id);
	wrong[KV_HOLD_TOKEN_LEN - 1] = wrong[KV_HOLD_TOKEN_LEN - 1] == '0' ? '1' : '0';
	cr_assert_eq(kvx_pull(puller, r1.host, r1.port, wrong, r1.block_ids, loc, 2, &e), -EACCES);
	for (size_t i = 0; i < sizeof(dst); i++)
		cr_assert_eq(dst[i], 0, "a refused READ lands nothing");

	/* DONE with a wrong token (or the request id) frees nothing */
	cr_assert_eq(kvx_send_done(puller, r1.host, r1.port, wrong, &e), 0, "%s", e.msg);
	cr_assert_eq(kvx_send_done(puller, r1.host, r1.port, "same-id", &e), 0, "%s", e.msg);
	cr_assert_eq(kv_connector_n_held(kc), 2, "unknown tokens are ignored");
	cr_assert_eq(kvx_pull(puller, r1.host, r1.port, r1.request_id, r1.block_ids, loc, 2, &e), 0,
	    "%s", e.msg);
	/* the right one frees exactly its hold; its token then reads nothing */
	cr_assert_eq(kvx_send_done(puller, r1.host, r1.port, r1.request_id, &e), 0, "%s", e.msg);
	cr_assert_eq(kv_connector_n_held(kc), 1);
	cr_assert_eq(kvx_pull(puller, r1.host, r1.port, r1.request_id, r1.block_ids, loc, 2, &e), -EACCES);
	cr_assert_eq(kvx_pull(puller, r2.host, r2.port, r2.request_id, r2.block_ids, loc, 2, &e), 0,
	    "%s", e.msg);
	/* a local release by token */
	kv_connector_release(kc, r2.request_id);
	cr_assert_eq(kv_connector_n_held(kc), 0);

	kvx_engine_free(puller);
	kv_remote_release(&r1);
	kv_remote_release(&r2);
	cJSON_Delete(p1);
	cJSON_Delete(p2);
	kv_connector_free(kc);
	scheduler_free(sched);
	metrics_free(m);
}
