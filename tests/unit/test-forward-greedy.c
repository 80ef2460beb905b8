/*
 * tests/unit/test-forward-greedy.c - forward_batch_greedy on the CPU backend
 * (no argmax_rows op: forward.c copies each logits chunk and scans it): the
 * ids equal the argmax of forward_batch's logits for the same batches, rows
 * that want logits only, across more rows than one logits chunk.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/commands.h"
#include "engine/forward.h"
#include "engine/kvcache.h"
#include "engine/model.h"
#include "tests/unit/engine-fixture.h"

static char dir[64];

static void
setup(void)
{
	cr_assert_eq(fx_tmpdir(dir, sizeof(dir), "test-forward-greedy"), 0);
	cr_assert_eq(fx_write_tokenizer(dir), 0);
	cr_assert_eq(fx_make_model("--arch llama --out %s/m --tokenizer %s/tok.json --vocab 300 "
	    "--layers 2 --hidden 32 --heads 4 --kv-heads 2 --seed 5", dir, dir), 0);
}

static void
cleanup(void)
{
	cr_assert_eq(fx_remove_tree(dir), 0);
}

TestSuite(forward_greedy, .init = setup, .fini = cleanup, .timeout = 60);

static int
argmax(const float *l, int n)
{
	int best = 0;
	for (int i = 1; i < n; i++)
		if (l[i] > l[best])
			best = i;
	return best;
}

Test(forward_greedy, ids_are_the_argmax_of_the_logits)
{
	struct model m;
	struct llmd_err e = LLMD_ERR_INIT;
	char path[128];
	snprintf(path, sizeof(path), "%s/m", dir);
	cr_assert_eq(model_load(&m, path, &e), 0, "%s", e.msg);
	struct backend *be = backend_cpu_create(1);
	struct forward fw;
	struct kv_cache kv;
	struct kv_seq seq[2] = { { 0 }, { 0 } };
	cr_assert_eq(forward_init(&fw, &m, be, 32, &e), 0);
	cr_assert_eq(kv_cache_init(&kv, be, &m.cfg, 4, 32, &e), 0);
	cr_assert_eq(kv_seq_reserve(&kv, &seq[0], 20), 0);
	cr_assert_eq(kv_seq_reserve(&kv, &seq[1], 12), 0);

	/* 20 tokens of sequence 0 and 12 of sequence 1; every other token wants
	 * logits: 16 rows, two logits chunks */
	int32_t tok[32], pos[32], sq[32];
	uint8_t want[32];
	for (int i = 0; i < 32; i++) {
		sq[i] = i < 20 ? 0 : 1;
		pos[i] = i < 20 ? i : i - 20;
		tok[i] = (i * 53 + 7) % 300;
		want[i] = i % 2;
	}
	struct batch_seq bs[2] = { { seq[0].blocks, seq[0].n_blocks },
		{ seq[1].blocks, seq[1].n_blocks } };
	struct batch b = { 32, tok, pos, sq, want, 2, bs };
	float *logits = calloc(16 * 300, sizeof(float));
	int32_t ids[16];
	cr_assert_eq(forward_batch(&fw, &kv, &b, logits, &e), 16);
	cr_assert_eq(forward_batch_greedy(&fw, &kv, &b, ids, &e), 16);
	for (int r = 0; r < 16; r++)
		cr_expect_eq(ids[r], argmax(logits + (size_t)r * 300, 300), "row %d", r);
	/* a batch that breaks the rules fails the same way */
	tok[3] = 300;
	cr_assert_eq(forward_batch_greedy(&fw, &kv, &b, ids, &e), -EINVAL);

	free(logits);
	kv_seq_release(&kv, &seq[0]);
	kv_seq_release(&kv, &seq[1]);
	kv_cache_free(&kv);
	forward_free(&fw);
	backend_destroy(be);
	model_free(&m);
}
