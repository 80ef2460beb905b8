/*
 * tests/unit/test-model-forward.c - the paged KV cache allocator, the batched
 * forward pass (several sequences in one batch give the logits each gets
 * alone; chunked prefill equals one batch), model loading errors, and the
 * generation loop's stopping rules. Models come from make-model with a tiny
 * tokenizer written by the test.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/commands.h"
#include "engine/forward.h"
#include "engine/generate.h"
#include "engine/kvcache.h"
#include "engine/model.h"
#include "tests/unit/engine-fixture.h"

static char dir[64];
static char model_dir[128];

static void
make_model(const char *arch, const char *extra)
{
	cr_assert_eq(fx_tmpdir(dir, sizeof(dir), "test-model-forward"), 0);
	cr_assert_eq(fx_write_tokenizer(dir), 0);
	snprintf(model_dir, sizeof(model_dir), "%s/m", dir);
	cr_assert_eq(fx_make_model("--arch %s --out %s --tokenizer %s/tok.json --vocab 300 "
	    "--layers 2 --hidden 32 --heads 4 --kv-heads 2 --seed 3 %s", arch, model_dir, dir,
	    extra), 0);
}

static void
cleanup(void)
{
	cr_assert_eq(fx_remove_tree(dir), 0);
}

static void
setup_qwen2(void)
{
	make_model("qwen2", "");
}

TestSuite(forward, .init = setup_qwen2, .fini = cleanup, .timeout = 60);

/* Runs tokens of one sequence alone in a fresh cache; logits of the last. */
static void
run_alone(struct forward *fw, const int32_t *ids, int n, float *logits)
{
	struct kv_cache kv;
	struct kv_seq seq = { 0 };
	struct llmd_err e = LLMD_ERR_INIT;
	cr_assert_eq(kv_cache_init(&kv, fw->be, &fw->m->cfg, 4, 16, &e), 0);
	cr_assert_eq(kv_seq_reserve(&kv, &seq, n), 0);
	int32_t pos[64], sq[64] = { 0 };
	for (int i = 0; i < n; i++)
		pos[i] = i;
	struct batch_seq bs = { seq.blocks, seq.n_blocks };
	struct batch b = { n, ids, pos, sq, NULL, 1, &bs };
	cr_assert_eq(forward_batch(fw, &kv, &b, logits, &e), 1, "%s", e.msg);
	kv_seq_release(&kv, &seq);
	kv_cache_free(&kv);
}

static float
max_diff(const float *a, const float *b, int n)
{
	float d = 0;
	for (int i = 0; i < n; i++)
		d = fmaxf(d, fabsf(a[i] - b[i]));
	return d;
}

Test(forward, two_sequences_in_one_batch_match_each_alone)
{
	struct model m;
	struct llmd_err e = LLMD_ERR_INIT;
	cr_assert_eq(model_load(&m, model_dir, &e), 0, "%s: %s", e.field, e.msg);
	struct backend *be = backend_cpu_create(2);
	struct forward fw;
	cr_assert_eq(forward_init(&fw, &m, be, 32, &e), 0);
	int V = m.cfg.vocab;

	/* A: 6 tokens, B: 9 tokens (+ one decode token each) */
	const int32_t a[7] = { 5, 17, 42, 8, 99, 250, 7 };
	const int32_t bt[10] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 123 };
	float *ref_a = malloc(sizeof(float) * (size_t)V), *ref_b = malloc(sizeof(float) * (size_t)V);
	float *ref_a2 = malloc(sizeof(float) * (size_t)V), *ref_b2 = malloc(sizeof(float) * (size_t)V);
	run_alone(&fw, a, 6, ref_a);
	run_alone(&fw, bt, 9, ref_b);
	run_alone(&fw, a, 7, ref_a2);
	run_alone(&fw, bt, 10, ref_b2);

	/* both prompts interleaved in one batch, blocks allocated interleaved */
	struct kv_cache kv;
	struct kv_seq sa = { 0 }, sb = { 0 };
	cr_assert_eq(kv_cache_init(&kv, be, &m.cfg, 4, 16, &e), 0);
	for (int n = 4; n <= 12; n += 4) {
		cr_assert_eq(kv_seq_reserve(&kv, &sb, n), 0);
		cr_assert_eq(kv_seq_reserve(&kv, &sa, n), 0);
	}
	int32_t tok[15], pos[15], sq[15];
	uint8_t want[15] = { 0 };
	int n = 0;
	for (int i = 0; i < 9; i++) {
		if (i < 6) {
			tok[n] = a[i], pos[n] = i, sq[n] = 0, want[n] = i == 5;
			n++;
		}
		tok[n] = bt[i], pos[n] = i, sq[n] = 1, want[n] = i == 8;
		n++;
	}
	struct batch_seq seqs[2] = { { sa.blocks, sa.n_blocks }, { sb.blocks, sb.n_blocks } };
	struct batch b = { n, tok, pos, sq, want, 2, seqs };
	float *out = malloc(sizeof(float) * 2 * (size_t)V);
	cr_assert_eq(forward_batch(&fw, &kv, &b, out, &e), 2, "%s", e.msg);
	/* rows in batch order: A's last token comes before B's last */
	cr_expect_lt(max_diff(out, ref_a, V), 1e-4);
	cr_expect_lt(max_diff(out + V, ref_b, V), 1e-4);

	/* one decode step of both sequences in one batch (B first this time) */
	int32_t dtok[2] = { bt[9], a[6] }, dpos[2] = { 9, 6 }, dsq[2] = { 1, 0 };
	uint8_t dwant[2] = { 1, 1 };
	struct batch d = { 2, dtok, dpos, dsq, dwant, 2, seqs };
	cr_assert_eq(forward_batch(&fw, &kv, &d, out, &e), 2, "%s", e.msg);
	cr_expect_lt(max_diff(out, ref_b2, V), 1e-4);
	cr_expect_lt(max_diff(out + V, ref_a2, V), 1e-4);

	/* a position outside the block table is refused, not a crash */
	int32_t bad_pos[1] = { 12 };
	struct batch bad = { 1, dtok, bad_pos, dsq, NULL, 2, seqs };
	cr_assert_eq(forward_batch(&fw, &kv, &bad, out, &e), -EINVAL);
	cr_assert_not_null(strstr(e.msg, "outside its block table"));

	kv_seq_release(&kv, &sa);
	kv_seq_release(&kv, &sb);
	cr_assert_eq(kv.n_free, 16);
	kv_cache_free(&kv);
	free(out);
	free(ref_a);
	free(ref_b);
	free(ref_a2);
	free(ref_b2);
	forward_free(&fw);
	backend_destroy(be);
	model_free(&m);
}

static int32_t
greedy(void *ctx, float *logits, int vocab, const int32_t *ids, size_t n, size_t n_prompt)
{
	(void)ctx;
	(void)ids;
	(void)n;
	(void)n_prompt;
	int best = 0;
	for (int i = 1; i < vocab; i++)
		if (logits[i] > logits[best])
			best = i;
	return best;
}

static int32_t
fixed_seq(void *ctx, float *logits, int vocab, const int32_t *ids, size_t n, size_t n_prompt)
{
	(void)logits;
	(void)vocab;
	(void)ids;
	const int32_t *script = ctx;
	return script[n - n_prompt];
}

Test(forward, chunked_prefill_and_eos)
{
	struct model m;
	struct llmd_err e = LLMD_ERR_INIT;
	cr_assert_eq(model_load(&m, model_dir, &e), 0, "%s: %s", e.field, e.msg);
	struct backend *be = backend_cpu_create(1);
	struct forward fw1, fw3;
	struct kv_cache kv;
	cr_assert_eq(forward_init(&fw1, &m, be, 64, &e), 0);
	cr_assert_eq(forward_init(&fw3, &m, be, 3, &e), 0);
	cr_assert_eq(kv_cache_init(&kv, be, &m.cfg, 16, 8, &e), 0);
	const int32_t prompt[11] = { 10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110 };
	struct gen_params p = { .max_tokens = 12, .sample = greedy };
	struct gen_result r1, r3;
	cr_assert_eq(generate(&fw1, &kv, NULL, prompt, 11, &p, &r1, &e), 0, "%s", e.msg);
	cr_assert_eq(kv.n_free, 8);     /* blocks returned */
	cr_assert_eq(generate(&fw3, &kv, NULL, prompt, 11, &p, &r3, &e), 0, "%s", e.msg);
	cr_assert_eq(r1.n_ids, 12);
	cr_assert_eq(r1.finish, FINISH_LENGTH);
	cr_assert_eq(r3.n_ids, 12);
	cr_assert_arr_eq(r1.ids, r3.ids, 12 * sizeof(int32_t));
	gen_result_release(&r1);
	gen_result_release(&r3);

	/* the model's eos (id 2, from the tokenizer) stops and is kept */
	const int32_t script[5] = { 7, 8, 2, 9, 9 };
	struct gen_params ps = { .max_tokens = 5, .sample = fixed_seq, .sample_ctx = (void *)script };
	cr_assert_eq(m.cfg.n_eos, 1);
	cr_assert_eq(generate(&fw1, &kv, NULL, prompt, 3, &ps, &r1, &e), 0);
	cr_assert_eq(r1.n_ids, 3);
	cr_assert_eq(r1.ids[2], 2);
	cr_assert_eq(r1.finish, FINISH_EOS);
	gen_result_release(&r1);

	/* too long for the model's positions */
	struct gen_params pl = { .max_tokens = 1 << 20, .sample = greedy };
	cr_assert_eq(generate(&fw1, &kv, NULL, prompt, 3, &pl, &r1, &e), -EINVAL);
	gen_result_release(&r1);

	kv_cache_free(&kv);
	forward_free(&fw1);
	forward_free(&fw3);
	backend_destroy(be);
	model_free(&m);
}

Test(forward, missing_and_misshapen_tensors_are_named)
{
	char cfg[256], msg[1024];
	struct model m;
	struct llmd_err e = LLMD_ERR_INIT;

	/* config says 3 layers: layer 2 is missing from the file */
	snprintf(cfg, sizeof(cfg), "sed -i 's/\"num_hidden_layers\":[^,]*/\"num_hidden_layers\": 3/' "
	    "%s/config.json", model_dir);
	cr_assert_eq(system(cfg), 0);
	cr_assert_eq(model_load(&m, model_dir, &e), -ENOENT);
	err_str(&e, msg, sizeof(msg));
	cr_expect_not_null(strstr(msg, "model.safetensors"), "%s", msg);
	cr_expect_not_null(strstr(msg, "tensor model.layers.2.input_layernorm.weight: missing"),
	    "%s", msg);

	/* config says hidden 48: the embedding has the wrong shape */
	snprintf(cfg, sizeof(cfg), "sed -i -e 's/\"num_hidden_layers\": 3/\"num_hidden_layers\": 2/' "
	    "-e 's/\"hidden_size\":[^,]*/\"hidden_size\": 48/' %s/config.json", model_dir);
	cr_assert_eq(system(cfg), 0);
	cr_assert_lt(model_load(&m, model_dir, &e), 0);
	err_str(&e, msg, sizeof(msg));
	cr_expect_not_null(strstr(msg, "tensor model.embed_tokens.weight: shape [300, 32], "
	    "expected [300, 48]"), "%s", msg);
}

Test(kvcache, blocks_are_reserved_and_returned)
{
	struct model_config c;
	struct llmd_err e = LLMD_ERR_INIT;
	memset(&c, 0, sizeof(c));
	c.n_layers = 2;
	c.n_kv_heads = 2;
	c.head_dim = 8;
	struct backend *be = backend_cpu_create(1);
	struct kv_cache kv;
	struct kv_seq a = { 0 }, b = { 0 };
	cr_assert_eq(kv_cache_init(&kv, be, &c, 16, 4, &e), 0);
	cr_assert_eq(kv_bytes_per_token(&kv), 2 * 2 * 16 * sizeof(float));
	cr_assert_eq(kv_blocks_for(&kv, 17), 2);
	cr_assert_eq(kv_seq_reserve(&kv, &a, 17), 0);
	cr_assert_eq(a.n_blocks, 2);
	cr_assert_eq(kv_seq_reserve(&kv, &a, 32), 0);   /* still fits */
	cr_assert_eq(a.n_blocks, 2);
	cr_assert_eq(kv_seq_reserve(&kv, &b, 48), -ENOSPC);
	cr_assert_eq(b.n_blocks, 0);
	cr_assert_eq(kv.n_free, 2);
	cr_assert_eq(kv_seq_reserve(&kv, &b, 20), 0);
	cr_assert_neq(b.blocks[0], a.blocks[0]);
	cr_assert_neq(b.blocks[0], a.blocks[1]);
	/* blocks of one layer's K and V do not overlap another block's */
	cr_assert_eq(kv_block_v(&kv, 0, 0) - kv_block_k(&kv, 0, 0), 16 * 16);
	cr_assert_eq(kv_block_k(&kv, 1, 0) - kv_block_k(&kv, 0, 0), 2 * 2 * 16 * 16);
	kv_seq_release(&kv, &a);
	kv_seq_release(&kv, &b);
	cr_assert_eq(kv.n_free, 4);
	kv_cache_free(&kv);
	backend_destroy(be);
}

Test(generate, stop_holdback)
{
	const char *stops[2] = { "</end>", "STOP" };
	cr_assert_eq(stop_holdback("hello </e", 9, stops, 2), 3);
	cr_assert_eq(stop_holdback("hello ST", 8, stops, 2), 2);
	cr_assert_eq(stop_holdback("hello", 5, stops, 2), 0);
	cr_assert_eq(stop_holdback("x<", 2, stops, 2), 1);
	cr_assert_eq(stop_holdback("abc", 3, NULL, 0), 0);
	cr_assert_str_eq(finish_reason_name(FINISH_STOP), "stop");
}
