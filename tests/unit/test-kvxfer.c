/*
 * tests/unit/test-kvxfer.c - KV-block transfer: layout compatibility (a
 * mismatch names the field), run merging and slicing, and real pulls over the
 * TCP transport between two engines in this process (non-contiguous block
 * lists, padded strides, several streams, DONE notification, bad ids).
 */
#include <criterion/criterion.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
};

static void
on_done(void *arg, const char *id)
{
	struct pair *p = arg;
	snprintf(p->done_id, sizeof(p->done_id), "%s", id);
	atomic_fetch_add(&p->done, 1);
}

static void
setup_pair(struct pair *p, uint32_t n_blocks, size_t bb, size_t stride, int streams)
{
	struct kvx_layout l = layout(bb);
	struct kvx_config pc = { .transport = "tcp", .listen = "127.0.0.1:0", .n_streams = streams,
		.on_done = on_done, .on_done_arg = p };
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
	cr_assert_eq(kvx_pull(p.cons, "127.0.0.1", kvx_engine_port(p.prod), "req-1", rem, loc, 8, &e), 0,
	    "%s", e.msg);
	for (int i = 0; i < 8; i++)
		cr_assert_eq(memcmp(p.cbuf + (size_t)loc[i] * stride, p.pbuf + (size_t)rem[i] * stride, bb), 0,
		    "block %d differs", i);
	/* untouched blocks stay zero */
	for (size_t i = 0; i < bb; i++)
		cr_assert_eq(p.cbuf[(size_t)30 * stride + i], 0);
	cr_assert_eq(kvx_send_done(p.cons, "127.0.0.1", kvx_engine_port(p.prod), "req-1", &e), 0, "%s", e.msg);
	cr_assert_eq(atomic_load(&p.done), 1);
	cr_assert_str_eq(p.done_id, "req-1");
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
	other.n_layers = 3;
	cr_assert_eq(kvx_engine_new(&cc, &other, buf, 64, 4096, &odd, &e), 0);
	cr_assert_lt(kvx_pull(odd, "127.0.0.1", kvx_engine_port(p.prod), "r", loc, loc, 1, &e), 0);
	cr_assert_str_eq(e.field, "n_layers", "field: %s (%s)", e.field, e.msg);
	cr_assert(strstr(e.msg, "n_layers") != NULL, "%s", e.msg);
	cr_assert_lt(kvx_pull(p.cons, "127.0.0.1", kvx_engine_port(p.prod), "r", rem, loc, 1, &e), 0,
	    "a remote block beyond the pool is refused");
	cr_assert_lt(kvx_pull(p.cons, "127.0.0.1", 1, "r", loc, loc, 1, &e), 0, "nothing listens on port 1");
	err_clear(&e);
	cr_assert_lt(kvx_engine_new(&(struct kvx_config){ .transport = "carrier-pigeon" }, &other, buf, 64,
	    4096, &odd, &e), 0);
	cr_assert_str_eq(e.field, "transport");
	kvx_engine_free(odd);
	free(buf);
	teardown_pair(&p);
}
