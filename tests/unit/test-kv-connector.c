/*
 * tests/unit/test-kv-connector.c - the P/D connector's lifetime: freeing it
 * while a DONE (or pull) thread still talks to an unresponsive producer must
 * wait for that thread (which fails fast) instead of leaving it with a freed
 * connector (DONEs not yet sent are dropped: the producer's timeout frees
 * those blocks); held blocks are released by a DONE from the decoder.
 */
#include <criterion/criterion.h>
#include <arpa/inet.h>
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
	cr_assert_eq(memcmp(magic, "KVX1", 4), 0);
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
	cr_assert_str_eq(rem.request_id, "cmpl-abc");
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
